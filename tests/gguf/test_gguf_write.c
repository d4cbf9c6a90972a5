/*
 * test_gguf_write.c — the writer: stories260K.gguf copied key by key and tensor by tensor
 * reads back identical (and byte-identical to the original, which llama.cpp's writer
 * produced, so the layout matches theirs); a handcrafted file with every value type,
 * nested and string arrays and alignment 64 round-trips; bad writer input is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "testutil.h"

static char g_tmp[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ponder-gguf-write-%d.gguf", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_tmp);
    return 0;
}

/* Deep equality of two values (numbers by bit pattern via the widened fields). */
static bool value_eq(const ponder_gguf_value *a, const ponder_gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case PONDER_GGUF_STRING:
        return a->v.str.len == b->v.str.len &&
               (a->v.str.len == 0 || memcmp(a->v.str.data, b->v.str.data, a->v.str.len) == 0);
    case PONDER_GGUF_BOOL:
        return a->v.b == b->v.b;
    case PONDER_GGUF_FLOAT32:
    case PONDER_GGUF_FLOAT64:
        return memcmp(&a->v.f64, &b->v.f64, sizeof(double)) == 0;
    case PONDER_GGUF_ARRAY: {
        const ponder_gguf_array *x = &a->v.arr, *y = &b->v.arr;
        if (x->elem_type != y->elem_type || x->n != y->n)
            return false;
        if (x->elem_type == PONDER_GGUF_STRING || x->elem_type == PONDER_GGUF_ARRAY) {
            for (uint64_t i = 0; i < x->n; i++)
                if (!value_eq(&x->elems[i], &y->elems[i]))
                    return false;
            return true;
        }
        for (uint64_t i = 0; i < x->n; i++)
            if (ponder_gguf_array_i64(x, i) != ponder_gguf_array_i64(y, i) ||
                memcmp(&(double){ponder_gguf_array_f64(x, i)}, &(double){ponder_gguf_array_f64(y, i)}, 8) != 0)
                return false;
        return true;
    }
    default:
        return a->v.u64 == b->v.u64;
    }
}

static void assert_same_content(const ponder_gguf *a, const ponder_gguf *b)
{
    assert_int_equal(ponder_gguf_n_kv(a), ponder_gguf_n_kv(b));
    for (int64_t i = 0; i < ponder_gguf_n_kv(a); i++) {
        assert_string_equal(ponder_gguf_kv_key(a, i), ponder_gguf_kv_key(b, i));
        if (!value_eq(ponder_gguf_kv_value(a, i), ponder_gguf_kv_value(b, i)))
            fail_msg("value of '%s' differs", ponder_gguf_kv_key(a, i));
    }
    assert_int_equal(ponder_gguf_n_tensors(a), ponder_gguf_n_tensors(b));
    for (int64_t i = 0; i < ponder_gguf_n_tensors(a); i++) {
        const ponder_gguf_tensor *x = ponder_gguf_tensor_at(a, i), *y = ponder_gguf_tensor_at(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->n_dims, y->n_dims);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        assert_int_equal(x->n_bytes, y->n_bytes);
        assert_memory_equal(x->data, y->data, x->n_bytes);
    }
}

static void copy_all(ponder_gguf_writer *w, const ponder_gguf *src)
{
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_copy_kv(w, src, &err), PONDER_OK);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(src); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(src, i);
        if (ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) != PONDER_OK)
            fail_msg("%s", err.msg);
    }
}

static void test_roundtrip_stories(void **state)
{
    (void)state;
    const char *path = tu_shared("models/stories260K/stories260K.gguf");
    ponder_gguf *src = NULL, *back = NULL;
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_open(path, &src, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    copy_all(w, src);
    if (ponder_gguf_writer_write(w, g_tmp, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    ponder_gguf_writer_free(w);

    assert_int_equal(ponder_gguf_open(g_tmp, &back, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_version(back), 3);
    assert_int_equal(ponder_gguf_data_offset(back), 14176);
    assert_same_content(src, back);
    const ponder_gguf_array *tok;
    assert_int_equal(ponder_gguf_get_arr(back, "tokenizer.ggml.tokens", PONDER_GGUF_STRING, &tok, &err), PONDER_OK);
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(tok, 1), "<s>"));

    /* Same layout as the llama.cpp-written original, down to the byte. */
    size_t n_a, n_b;
    char *a = tu_read_file(path, &n_a), *b = tu_read_file(g_tmp, &n_b);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(n_a, n_b);
    assert_memory_equal(a, b, n_a);
    free(a);
    free(b);
    ponder_gguf_free(back);
    ponder_gguf_free(src);
}

/* Values built from static storage; the writer deep-copies them. */
static void test_handcrafted_all_types(void **state)
{
    (void)state;
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 16, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 64, &err), PONDER_OK); /* replaces */

    const ponder_gguf_value scalars[] = {
        {.type = PONDER_GGUF_UINT8, .v.u64 = 255},
        {.type = PONDER_GGUF_INT8, .v.i64 = -128},
        {.type = PONDER_GGUF_UINT16, .v.u64 = 65535},
        {.type = PONDER_GGUF_INT16, .v.i64 = -32768},
        {.type = PONDER_GGUF_UINT32, .v.u64 = 4294967295u},
        {.type = PONDER_GGUF_INT32, .v.i64 = INT32_MIN},
        {.type = PONDER_GGUF_FLOAT32, .v.f64 = 0.1f},
        {.type = PONDER_GGUF_BOOL, .v.b = true},
        {.type = PONDER_GGUF_STRING, .v.str = {"h\xc3\xa9llo", 6}},
        {.type = PONDER_GGUF_UINT64, .v.u64 = UINT64_MAX},
        {.type = PONDER_GGUF_INT64, .v.i64 = INT64_MIN},
        {.type = PONDER_GGUF_FLOAT64, .v.f64 = 0.1},
    };
    char key[32];
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        snprintf(key, sizeof key, "scalar.%s", ponder_gguf_type_name(scalars[i].type));
        assert_int_equal(ponder_gguf_writer_set(w, key, &scalars[i], &err), PONDER_OK);
    }
    const int16_t i16s[] = {-1, 2, -3};
    const ponder_gguf_value strs[] = {
        {.type = PONDER_GGUF_STRING, .v.str = {"<s>", 3}},
        {.type = PONDER_GGUF_STRING, .v.str = {NULL, 0}},
        {.type = PONDER_GGUF_STRING, .v.str = {"a\0b", 3}},
    };
    const double f64s[] = {1.0, -0.0};
    const ponder_gguf_value inner[] = {
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_INT16, 3, i16s, NULL}},
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_STRING, 3, NULL, strs}},
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_FLOAT64, 0, NULL, NULL}},
    };
    const ponder_gguf_value arrays[] = {
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_INT16, 3, i16s, NULL}},
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_STRING, 3, NULL, strs}},
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_ARRAY, 3, NULL, inner}},
        {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_FLOAT64, 2, f64s, NULL}},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        snprintf(key, sizeof key, "array.%zu", i);
        assert_int_equal(ponder_gguf_writer_set(w, key, &arrays[i], &err), PONDER_OK);
    }
    assert_int_equal(ponder_gguf_writer_set_u32(w, "conv.u32", 7, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_f32(w, "conv.f32", 1.25f, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_bool(w, "conv.bool", false, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_str(w, "conv.str", "first", &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_str(w, "conv.str", "second", &err), PONDER_OK); /* replaces */

    /* Sizes chosen so that every tensor needs padding: 36, 18*2, 2*3*5*7 bytes. */
    float f32[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint8_t q4[36], f16[210];
    for (size_t i = 0; i < sizeof q4; i++)
        q4[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof f16; i++)
        f16[i] = (uint8_t)(i ^ 0x5a);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "f32", PONDER_TYPE_F32, 1, (int64_t[]){9}, f32, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "q4", PONDER_TYPE_Q4_0, 2, (int64_t[]){32, 2}, q4, &err),
                     PONDER_OK);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "f16", PONDER_TYPE_F16, 4, (int64_t[]){3, 5, 7, 1}, f16, &err),
                     PONDER_OK);
    assert_int_equal(ponder_gguf_writer_write(w, g_tmp, &err), PONDER_OK);
    ponder_gguf_writer_free(w);

    ponder_gguf *g = NULL;
    if (ponder_gguf_open(g_tmp, &g, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ponder_gguf_alignment(g), 64);
    assert_int_equal(ponder_gguf_data_offset(g) % 64, 0);
    assert_int_equal(ponder_gguf_file_size(g) % 64, 0);
    assert_int_equal(ponder_gguf_n_kv(g), 1 + 12 + 4 + 4);
    assert_string_equal(ponder_gguf_kv_key(g, 0), "general.alignment");
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        snprintf(key, sizeof key, "scalar.%s", ponder_gguf_type_name(scalars[i].type));
        const ponder_gguf_value *v = ponder_gguf_get(g, key);
        assert_non_null(v);
        ponder_gguf_value want = scalars[i];
        if (want.type == PONDER_GGUF_FLOAT32)
            want.v.f64 = (float)want.v.f64;
        if (!value_eq(v, &want))
            fail_msg("%s differs", key);
    }
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        snprintf(key, sizeof key, "array.%zu", i);
        const ponder_gguf_value *v = ponder_gguf_get(g, key);
        assert_non_null(v);
        if (!value_eq(v, &arrays[i]))
            fail_msg("%s differs", key);
    }
    const ponder_gguf_array *nested = &ponder_gguf_get(g, "array.2")->v.arr;
    assert_true(ponder_gguf_str_eq(ponder_gguf_array_str(ponder_gguf_array_sub(nested, 1), 0), "<s>"));
    assert_int_equal(ponder_gguf_array_i64(ponder_gguf_array_sub(nested, 0), 2), -3);
    ponder_gguf_str s;
    assert_int_equal(ponder_gguf_get_str(g, "conv.str", &s, &err), PONDER_OK);
    assert_true(ponder_gguf_str_eq(s, "second"));
    double d;
    assert_int_equal(ponder_gguf_get_f64(g, "conv.f32", &d, &err), PONDER_OK);
    assert_true(d == 1.25);

    /* copy_kv leaves general.alignment behind: the copy gets the default again */
    ponder_gguf_writer *w2 = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w2, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w2, g, &err), PONDER_OK);
    char tmp2[80];
    snprintf(tmp2, sizeof tmp2, "%s.2", g_tmp);
    assert_int_equal(ponder_gguf_writer_write(w2, tmp2, &err), PONDER_OK);
    ponder_gguf_writer_free(w2);
    ponder_gguf *g2 = NULL;
    assert_int_equal(ponder_gguf_open(tmp2, &g2, &err), PONDER_OK);
    unlink(tmp2);
    assert_int_equal(ponder_gguf_n_kv(g2), ponder_gguf_n_kv(g) - 1);
    assert_int_equal(ponder_gguf_find_kv(g2, "general.alignment"), -1);
    assert_int_equal(ponder_gguf_alignment(g2), 32);
    assert_true(value_eq(ponder_gguf_get(g2, "array.2"), ponder_gguf_get(g, "array.2")));
    ponder_gguf_free(g2);

    const void *want_data[] = {f32, q4, f16};
    const uint64_t want_bytes[] = {36, 36, 210};
    for (int i = 0; i < 3; i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        assert_int_equal(t->n_bytes, want_bytes[i]);
        assert_int_equal(t->offset % 64, 0);
        assert_memory_equal(t->data, want_data[i], want_bytes[i]);
    }
    assert_int_equal(ponder_gguf_tensor_at(g, 1)->offset, 64);
    assert_int_equal(ponder_gguf_tensor_at(g, 2)->offset, 128);
    assert_int_equal(ponder_gguf_tensor_at(g, 2)->n_dims, 4);
    assert_int_equal(ponder_gguf_file_size(g), ponder_gguf_data_offset(g) + 128 + 256);
    /* padding is zeros */
    const uint8_t *pad = (const uint8_t *)ponder_gguf_tensor_at(g, 0)->data + 36;
    for (int i = 0; i < 64 - 36; i++)
        assert_int_equal(pad[i], 0);
    ponder_gguf_free(g);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    ponder_gguf_writer *w = NULL;
    ponder_error err = {0};
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 48, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "power of two"));
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 4, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_set_alignment(w, 0, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_set_str(w, "general.alignment", "32", &err), PONDER_ERR_INVALID_ARG);

    float x[64] = {0};
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "a", PONDER_TYPE_F32, 1, (int64_t[]){4}, x, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "a", PONDER_TYPE_F32, 1, (int64_t[]){4}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "duplicate tensor name 'a'"));
    char long_name[65];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    assert_int_equal(ponder_gguf_writer_add_tensor(w, long_name, PONDER_TYPE_F32, 1, (int64_t[]){4}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "at most 63"));
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "b", PONDER_TYPE_Q4_0, 1, (int64_t[]){16}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "b", (ponder_type)4, 1, (int64_t[]){4}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "b", PONDER_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "b", PONDER_TYPE_F32, 2, (int64_t[]){4, -1}, x, &err),
                     PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_gguf_writer_add_tensor(w, "b", PONDER_TYPE_F32, 4,
                                                   (int64_t[]){1 << 20, 1 << 20, 1 << 20, 1 << 20}, x, &err),
                     PONDER_ERR_INVALID_ARG);

    const ponder_gguf_value mixed_elems[] = {
        {.type = PONDER_GGUF_STRING, .v.str = {"a", 1}},
        {.type = PONDER_GGUF_UINT32, .v.u64 = 1},
    };
    ponder_gguf_value mixed = {.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_STRING, 2, NULL, mixed_elems}};
    assert_int_equal(ponder_gguf_writer_set(w, "mixed", &mixed, &err), PONDER_ERR_INVALID_ARG);
    ponder_gguf_value bad_type = {.type = (ponder_gguf_type)42};
    assert_int_equal(ponder_gguf_writer_set(w, "bad", &bad_type, &err), PONDER_ERR_INVALID_ARG);

    /* 17 nested arrays: one level over the cap the reader enforces */
    ponder_gguf_value levels[17];
    levels[16] = (ponder_gguf_value){.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_UINT8, 0, NULL, NULL}};
    for (int i = 15; i >= 0; i--)
        levels[i] = (ponder_gguf_value){.type = PONDER_GGUF_ARRAY, .v.arr = {PONDER_GGUF_ARRAY, 1, NULL, &levels[i + 1]}};
    assert_int_equal(ponder_gguf_writer_set(w, "deep", &levels[0], &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "nested deeper"));
    assert_int_equal(ponder_gguf_writer_set(w, "deep", &levels[1], &err), PONDER_OK); /* 16 levels fit */

    assert_int_equal(ponder_gguf_writer_write(w, "/dev/full", &err), PONDER_ERR_IO); /* ENOSPC */
    assert_non_null(strstr(err.msg, "/dev/full: write failed"));
    assert_int_equal(ponder_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.gguf"));

    /* The failed calls left the writer usable: one tensor, one key. */
    assert_int_equal(ponder_gguf_writer_write(w, g_tmp, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    ponder_gguf *g = NULL;
    assert_int_equal(ponder_gguf_open(g_tmp, &g, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_n_kv(g), 1);
    assert_int_equal(ponder_gguf_n_tensors(g), 1);
    assert_int_equal(ponder_gguf_alignment(g), 32);
    ponder_gguf_free(g);
    ponder_gguf_writer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_stories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handcrafted_all_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_rejects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
