/*
 * value.c — GGUF metadata values: type sizes and names, the typed getters with their
 * conversion rules, array element helpers, and the name index used for key and tensor
 * lookup (a hash, so that duplicate detection on a hostile file with a million entries
 * stays linear).
 */
#include "gguf/gguf_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per ponder_gguf_type: on-disk scalar size (gguf_metadata_value_type in the spec) and name. */
static const struct {
    size_t size;
    const char *name;
} TYPE_INFO[PONDER_GGUF_TYPE_COUNT] = {
    [PONDER_GGUF_UINT8] = {1, "u8"},     [PONDER_GGUF_INT8] = {1, "i8"},
    [PONDER_GGUF_UINT16] = {2, "u16"},   [PONDER_GGUF_INT16] = {2, "i16"},
    [PONDER_GGUF_UINT32] = {4, "u32"},   [PONDER_GGUF_INT32] = {4, "i32"},
    [PONDER_GGUF_FLOAT32] = {4, "f32"},  [PONDER_GGUF_BOOL] = {1, "bool"},
    [PONDER_GGUF_STRING] = {0, "string"}, [PONDER_GGUF_ARRAY] = {0, "array"},
    [PONDER_GGUF_UINT64] = {8, "u64"},   [PONDER_GGUF_INT64] = {8, "i64"},
    [PONDER_GGUF_FLOAT64] = {8, "f64"},
};

size_t gguf_scalar_size(ponder_gguf_type t)
{
    if ((unsigned)t >= PONDER_GGUF_TYPE_COUNT)
        return 0;
    return TYPE_INFO[t].size;
}

size_t gguf_min_value_bytes(ponder_gguf_type t)
{
    if (t == PONDER_GGUF_STRING)
        return 8; /* u64 length */
    if (t == PONDER_GGUF_ARRAY)
        return 12; /* u32 element type + u64 count */
    return gguf_scalar_size(t);
}

const char *ponder_gguf_type_name(ponder_gguf_type t)
{
    if ((unsigned)t >= PONDER_GGUF_TYPE_COUNT)
        return "?";
    return TYPE_INFO[t].name;
}

void gguf_value_free(ponder_gguf_value *v, bool owns_data)
{
    if (!v)
        return;
    if (v->type == PONDER_GGUF_STRING) {
        if (owns_data)
            free((void *)v->v.str.data);
    } else if (v->type == PONDER_GGUF_ARRAY) {
        ponder_gguf_array *a = &v->v.arr;
        if (a->elems) {
            for (uint64_t i = 0; i < a->n; i++)
                gguf_value_free((ponder_gguf_value *)&a->elems[i], owns_data);
            free((void *)a->elems);
        }
        if (owns_data)
            free((void *)a->data);
    }
    memset(v, 0, sizeof *v);
}

bool ponder_gguf_str_eq(ponder_gguf_str s, const char *c)
{
    if (!c)
        return false;
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.data, c, n) == 0);
}

/* ---- typed getters ---- */

static bool is_unsigned(ponder_gguf_type t)
{
    return t == PONDER_GGUF_UINT8 || t == PONDER_GGUF_UINT16 || t == PONDER_GGUF_UINT32 ||
           t == PONDER_GGUF_UINT64;
}

static bool is_signed(ponder_gguf_type t)
{
    return t == PONDER_GGUF_INT8 || t == PONDER_GGUF_INT16 || t == PONDER_GGUF_INT32 ||
           t == PONDER_GGUF_INT64;
}

static ponder_status wrong_type(ponder_error *err, const char *key, const ponder_gguf_value *v,
                                const char *wanted)
{
    if (v->type == PONDER_GGUF_ARRAY)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "key '%s' has type array of %s, expected %s", key,
                                ponder_gguf_type_name(v->v.arr.elem_type), wanted);
    return ponder_error_set(err, PONDER_ERR_FORMAT, "key '%s' has type %s, expected %s", key,
                            ponder_gguf_type_name(v->type), wanted);
}

/* Looks the key up; NOT_FOUND leaves err untouched so callers can apply a default. */
static ponder_status lookup(const ponder_gguf *g, const char *key, const ponder_gguf_value **v,
                            ponder_error *err)
{
    if (!g || !key)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf getter: NULL handle or key");
    *v = ponder_gguf_get(g, key);
    return *v ? PONDER_OK : PONDER_ERR_NOT_FOUND;
}

ponder_status ponder_gguf_get_i64(const ponder_gguf *g, const char *key, int64_t *out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (is_signed(v->type)) {
        *out = v->v.i64;
    } else if (is_unsigned(v->type)) {
        if (v->v.u64 > (uint64_t)INT64_MAX)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "key '%s' value %" PRIu64 " does not fit in i64",
                                    key, v->v.u64);
        *out = (int64_t)v->v.u64;
    } else if (v->type == PONDER_GGUF_BOOL) {
        *out = v->v.b ? 1 : 0;
    } else {
        return wrong_type(err, key, v, "an integer");
    }
    return PONDER_OK;
}

ponder_status ponder_gguf_get_u32(const ponder_gguf *g, const char *key, uint32_t *out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (is_signed(v->type)) {
        if (v->v.i64 < 0 || v->v.i64 > (int64_t)UINT32_MAX)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "key '%s' value %" PRId64 " does not fit in u32",
                                    key, v->v.i64);
        *out = (uint32_t)v->v.i64;
    } else if (is_unsigned(v->type)) {
        if (v->v.u64 > UINT32_MAX)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "key '%s' value %" PRIu64 " does not fit in u32",
                                    key, v->v.u64);
        *out = (uint32_t)v->v.u64;
    } else if (v->type == PONDER_GGUF_BOOL) {
        *out = v->v.b ? 1 : 0;
    } else {
        return wrong_type(err, key, v, "an integer");
    }
    return PONDER_OK;
}

ponder_status ponder_gguf_get_f64(const ponder_gguf *g, const char *key, double *out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (v->type == PONDER_GGUF_FLOAT32 || v->type == PONDER_GGUF_FLOAT64)
        *out = v->v.f64;
    else if (is_signed(v->type))
        *out = (double)v->v.i64;
    else if (is_unsigned(v->type))
        *out = (double)v->v.u64;
    else
        return wrong_type(err, key, v, "a number");
    return PONDER_OK;
}

ponder_status ponder_gguf_get_bool(const ponder_gguf *g, const char *key, bool *out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (v->type != PONDER_GGUF_BOOL)
        return wrong_type(err, key, v, "bool");
    *out = v->v.b;
    return PONDER_OK;
}

ponder_status ponder_gguf_get_str(const ponder_gguf *g, const char *key, ponder_gguf_str *out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (v->type != PONDER_GGUF_STRING)
        return wrong_type(err, key, v, "string");
    *out = v->v.str;
    return PONDER_OK;
}

ponder_status ponder_gguf_get_arr(const ponder_gguf *g, const char *key, ponder_gguf_type elem_type,
                                  const ponder_gguf_array **out, ponder_error *err)
{
    const ponder_gguf_value *v = NULL;
    ponder_status st = lookup(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (v->type != PONDER_GGUF_ARRAY ||
        (elem_type != PONDER_GGUF_TYPE_COUNT && v->v.arr.elem_type != elem_type)) {
        char wanted[48];
        if (elem_type == PONDER_GGUF_TYPE_COUNT)
            strcpy(wanted, "an array");
        else
            snprintf(wanted, sizeof wanted, "array of %s", ponder_gguf_type_name(elem_type));
        return wrong_type(err, key, v, wanted);
    }
    *out = &v->v.arr;
    return PONDER_OK;
}

/* ---- array elements ---- */

int64_t ponder_gguf_array_i64(const ponder_gguf_array *arr, uint64_t i)
{
    const uint8_t *p = arr->data;
    if (!p)
        return 0;
    switch (arr->elem_type) {
    case PONDER_GGUF_UINT8: return p[i];
    case PONDER_GGUF_INT8: return (int8_t)p[i];
    case PONDER_GGUF_BOOL: return p[i] != 0;
    case PONDER_GGUF_UINT16: { uint16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case PONDER_GGUF_INT16: { int16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case PONDER_GGUF_UINT32: { uint32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case PONDER_GGUF_INT32: { int32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case PONDER_GGUF_UINT64: { uint64_t x; memcpy(&x, p + 8 * i, 8); return (int64_t)x; }
    case PONDER_GGUF_INT64: { int64_t x; memcpy(&x, p + 8 * i, 8); return x; }
    default: return 0;
    }
}

double ponder_gguf_array_f64(const ponder_gguf_array *arr, uint64_t i)
{
    const uint8_t *p = arr->data;
    if (!p)
        return 0.0;
    switch (arr->elem_type) {
    case PONDER_GGUF_FLOAT32: { float x; memcpy(&x, p + 4 * i, 4); return x; }
    case PONDER_GGUF_FLOAT64: { double x; memcpy(&x, p + 8 * i, 8); return x; }
    case PONDER_GGUF_UINT64: { uint64_t x; memcpy(&x, p + 8 * i, 8); return (double)x; }
    default: return (double)ponder_gguf_array_i64(arr, i);
    }
}

ponder_gguf_str ponder_gguf_array_str(const ponder_gguf_array *arr, uint64_t i)
{
    if (arr->elem_type != PONDER_GGUF_STRING || !arr->elems)
        return (ponder_gguf_str){NULL, 0};
    return arr->elems[i].v.str;
}

const ponder_gguf_array *ponder_gguf_array_sub(const ponder_gguf_array *arr, uint64_t i)
{
    if (arr->elem_type != PONDER_GGUF_ARRAY || !arr->elems)
        return NULL;
    return &arr->elems[i].v.arr;
}

/* ---- name index ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

ponder_status gguf_index_init(gguf_index *ix, uint64_t n, ponder_error *err)
{
    uint64_t cap = 16;
    while (cap < n * 2) {
        if (cap > (UINT64_MAX >> 2) / sizeof *ix->slots)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf: name index for %" PRIu64 " entries too large", n);
        cap *= 2;
    }
    if (cap > SIZE_MAX / sizeof *ix->slots)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf: name index for %" PRIu64 " entries too large", n);
    ix->slots = calloc((size_t)cap, sizeof *ix->slots);
    if (!ix->slots)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf: out of memory for a name index of %" PRIu64 " entries", n);
    ix->cap = cap;
    return PONDER_OK;
}

void gguf_index_free(gguf_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = 0;
}

int64_t gguf_index_find(const gguf_index *ix, const char *name, gguf_name_fn name_at, const void *ctx)
{
    if (!ix->slots)
        return -1;
    uint64_t mask = ix->cap - 1;
    for (uint64_t s = hash_name(name) & mask;; s = (s + 1) & mask) {
        uint64_t e = ix->slots[s];
        if (e == 0)
            return -1;
        if (strcmp(name_at(ctx, e - 1), name) == 0)
            return (int64_t)(e - 1);
    }
}

int64_t gguf_index_insert(gguf_index *ix, uint64_t i, gguf_name_fn name_at, const void *ctx)
{
    const char *name = name_at(ctx, i);
    uint64_t mask = ix->cap - 1;
    for (uint64_t s = hash_name(name) & mask;; s = (s + 1) & mask) {
        uint64_t e = ix->slots[s];
        if (e == 0) {
            ix->slots[s] = i + 1;
            return -1;
        }
        if (strcmp(name_at(ctx, e - 1), name) == 0)
            return (int64_t)(e - 1);
    }
}
