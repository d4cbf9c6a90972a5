/*
 * test_gguf_corrupt.c — stories260K.gguf truncated at every header offset (and sampled
 * offsets inside the data) must fail with PONDER_ERR_FORMAT and a message; each header
 * byte overwritten with 0x00, 0xFF, 0x80 and +1 must either open (then every accessor
 * and every tensor byte is touched) or fail cleanly. Buffers are exact-size heap copies
 * so that ASan flags any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "testutil.h"

static uint8_t *g_file;
static size_t g_size;
static uint64_t g_data_offset;

static int setup(void **state)
{
    (void)state;
    g_file = (uint8_t *)tu_read_file(tu_shared("models/stories260K/stories260K.gguf"), &g_size);
    if (!g_file)
        return -1;
    ponder_gguf *g = NULL;
    if (ponder_gguf_open_memory(g_file, g_size, "stories260K.gguf", &g, NULL) != PONDER_OK)
        return -1;
    g_data_offset = ponder_gguf_data_offset(g);
    ponder_gguf_free(g);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_file);
    return 0;
}

/* Reads every value reachable from v; returns a checksum so the reads are not elided. */
static uint64_t walk_value(const ponder_gguf_value *v)
{
    uint64_t h = (uint64_t)v->type;
    switch (v->type) {
    case PONDER_GGUF_STRING:
        for (uint64_t i = 0; i < v->v.str.len; i++)
            h += (uint8_t)v->v.str.data[i];
        break;
    case PONDER_GGUF_ARRAY: {
        const ponder_gguf_array *a = &v->v.arr;
        for (uint64_t i = 0; i < a->n; i++) {
            if (a->elems)
                h += walk_value(&a->elems[i]);
            else
            {
                /* hash the double's bits: converting an out-of-range double to an integer is UB */
                const double d = ponder_gguf_array_f64(a, i);
                uint64_t bits;
                memcpy(&bits, &d, sizeof bits);
                h += (uint64_t)ponder_gguf_array_i64(a, i) + bits;
            }
        }
        break;
    }
    default:
        h += v->v.u64;
        break;
    }
    return h;
}

static uint64_t touch_all(const ponder_gguf *g)
{
    uint64_t h = ponder_gguf_version(g) + ponder_gguf_alignment(g) + ponder_gguf_data_offset(g);
    for (int64_t i = 0; i < ponder_gguf_n_kv(g); i++) {
        const char *key = ponder_gguf_kv_key(g, i);
        assert_non_null(key);
        assert_int_equal(ponder_gguf_find_kv(g, key), i);
        h += walk_value(ponder_gguf_kv_value(g, i));
    }
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        assert_ptr_equal(ponder_gguf_find_tensor(g, t->name), t);
        assert_true(ponder_gguf_data_offset(g) + t->offset + t->n_bytes <= ponder_gguf_file_size(g));
        const uint8_t *p = t->data;
        for (uint64_t j = 0; j < t->n_bytes; j += 61)
            h += p[j];
        if (t->n_bytes)
            h += p[t->n_bytes - 1];
    }
    return h;
}

static void test_truncation(void **state)
{
    (void)state;
    size_t n_cuts = 0;
    for (size_t cut = 0; cut < g_size; cut += cut < g_data_offset + 64 ? 1 : 4093) {
        uint8_t *buf = malloc(cut ? cut : 1);
        assert_non_null(buf);
        memcpy(buf, g_file, cut);
        ponder_gguf *g = NULL;
        ponder_error err = {0};
        ponder_status st = ponder_gguf_open_memory(buf, cut, "stories260K.gguf", &g, &err);
        if (st != PONDER_ERR_FORMAT)
            fail_msg("truncated at %zu: status %d (%s)", cut, st, err.msg);
        assert_null(g);
        assert_non_null(strstr(err.msg, "stories260K.gguf: offset "));
        free(buf);
        n_cuts++;
    }
    assert_true(n_cuts > 14000);
    /* the last byte too */
    ponder_gguf *g = NULL;
    assert_int_equal(ponder_gguf_open_memory(g_file, g_size - 1, "s", &g, NULL), PONDER_ERR_FORMAT);
}

static void test_byte_overwrites(void **state)
{
    (void)state;
    uint8_t *buf = malloc(g_size);
    assert_non_null(buf);
    memcpy(buf, g_file, g_size);
    size_t n_ok = 0, n_fail = 0;
    /* Every byte of the fixed header and the first keys, then a dense sample (stride 7)
     * of the rest of the header region: enough to hit every length, count and type field. */
    for (size_t at = 0; at < g_data_offset; at += at < 1024 ? 1 : 7) {
        const uint8_t orig = g_file[at];
        const uint8_t vals[4] = {0x00, 0xFF, 0x80, (uint8_t)(orig + 1)};
        for (int k = 0; k < 4; k++) {
            if (vals[k] == orig)
                continue;
            buf[at] = vals[k];
            ponder_gguf *g = NULL;
            ponder_error err = {0};
            ponder_status st = ponder_gguf_open_memory(buf, g_size, "stories260K.gguf", &g, &err);
            if (st == PONDER_OK) {
                (void)touch_all(g);
                ponder_gguf_free(g);
                n_ok++;
            } else {
                if (st != PONDER_ERR_FORMAT)
                    fail_msg("byte %zu = 0x%02x: status %d (%s)", at, vals[k], st, err.msg);
                assert_null(g);
                assert_true(strlen(err.msg) > 0);
                n_fail++;
            }
        }
        buf[at] = orig;
    }
    /* Both outcomes must occur: string bytes can change freely, lengths cannot. */
    assert_true(n_ok > 100);
    assert_true(n_fail > 100);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_byte_overwrites),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
