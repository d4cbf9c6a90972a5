/*
 * gguf_fuzz.c — libFuzzer harness for the GGUF reader: parses the input with
 * ponder_gguf_open_memory and, when it opens, reads everything the API exposes (every
 * key through every typed getter, every array element, every tensor's first and last
 * byte) and checks the reader's promises: lookups find what iteration lists, tensor
 * data lies inside the input, failures carry a FORMAT message. A broken promise aborts
 * so the fuzzer records it. Also compiled into the corpus replay test (tests/gguf).
 */
#include "ponder/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)      \
    do {                 \
        if (!(cond))     \
            abort();     \
    } while (0)

static uint64_t walk_array(const ponder_gguf_array *a, int depth);

static uint64_t walk_value(const ponder_gguf_value *v, int depth)
{
    CHECK((unsigned)v->type < PONDER_GGUF_TYPE_COUNT);
    CHECK(ponder_gguf_type_name(v->type)[0] != '?');
    switch (v->type) {
    case PONDER_GGUF_STRING: {
        uint64_t h = v->v.str.len;
        if (v->v.str.len > 0)
            h += (uint8_t)v->v.str.data[0] + (uint8_t)v->v.str.data[v->v.str.len - 1];
        return h;
    }
    case PONDER_GGUF_ARRAY:
        return walk_array(&v->v.arr, depth + 1);
    default:
        return v->v.u64;
    }
}

static uint64_t walk_array(const ponder_gguf_array *a, int depth)
{
    CHECK(depth <= 64);
    uint64_t h = a->n;
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->elem_type == PONDER_GGUF_STRING) {
            ponder_gguf_str s = ponder_gguf_array_str(a, i);
            h += s.len;
            if (s.len)
                h += (uint8_t)s.data[s.len - 1];
        } else if (a->elem_type == PONDER_GGUF_ARRAY) {
            const ponder_gguf_array *sub = ponder_gguf_array_sub(a, i);
            CHECK(sub != NULL);
            h += walk_array(sub, depth + 1);
        } else {
            h += (uint64_t)ponder_gguf_array_i64(a, i);
            double d = ponder_gguf_array_f64(a, i);
            h += d == d; /* NaN-safe use of the value */
        }
    }
    return h;
}

static void exercise_getters(const ponder_gguf *g, const char *key)
{
    ponder_error err;
    int64_t i64;
    uint32_t u32;
    double f64;
    bool b;
    ponder_gguf_str s;
    const ponder_gguf_array *a;
    /* The key exists, so each getter either succeeds or reports a type mismatch. */
    ponder_status st[6] = {
        ponder_gguf_get_i64(g, key, &i64, &err),
        ponder_gguf_get_u32(g, key, &u32, &err),
        ponder_gguf_get_f64(g, key, &f64, &err),
        ponder_gguf_get_bool(g, key, &b, &err),
        ponder_gguf_get_str(g, key, &s, &err),
        ponder_gguf_get_arr(g, key, PONDER_GGUF_TYPE_COUNT, &a, &err),
    };
    for (int k = 0; k < 6; k++)
        CHECK(st[k] == PONDER_OK || st[k] == PONDER_ERR_FORMAT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ponder_gguf *g = NULL;
    ponder_error err = {0};
    ponder_status st = ponder_gguf_open_memory(data, size, "fuzz.gguf", &g, &err);
    if (st != PONDER_OK) {
        CHECK(g == NULL);
        CHECK(st == PONDER_ERR_FORMAT || st == PONDER_ERR_NOMEM);
        CHECK(err.code == st && err.msg[0] != '\0');
        return 0;
    }
    volatile uint64_t sink = 0;
    CHECK(ponder_gguf_version(g) == 2 || ponder_gguf_version(g) == 3);
    uint32_t align = ponder_gguf_alignment(g);
    CHECK(align != 0 && (align & (align - 1)) == 0);
    CHECK(ponder_gguf_file_size(g) == size);
    for (int64_t i = 0; i < ponder_gguf_n_kv(g); i++) {
        const char *key = ponder_gguf_kv_key(g, i);
        CHECK(key != NULL);
        CHECK(ponder_gguf_find_kv(g, key) == i);
        CHECK(ponder_gguf_get(g, key) == ponder_gguf_kv_value(g, i));
        sink += walk_value(ponder_gguf_kv_value(g, i), 0);
        exercise_getters(g, key);
    }
    CHECK(ponder_gguf_kv_key(g, ponder_gguf_n_kv(g)) == NULL);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        CHECK(t != NULL && ponder_gguf_find_tensor(g, t->name) == t);
        CHECK(t->n_dims <= PONDER_GGUF_MAX_DIMS);
        CHECK(t->offset % align == 0);
        const uint8_t *p = t->data;
        CHECK(p >= data && (uint64_t)(p - data) + t->n_bytes <= size);
        if (t->n_bytes)
            sink += p[0] + p[t->n_bytes - 1];
    }
    CHECK(ponder_gguf_tensor_at(g, ponder_gguf_n_tensors(g)) == NULL);
    (void)sink;
    ponder_gguf_free(g);
    return 0;
}
