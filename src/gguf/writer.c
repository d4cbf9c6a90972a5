/*
 * writer.c — builds a GGUF v3 file in memory and writes it out in the layout llama.cpp's
 * gguf_write_to_file produces: header, key/values, tensor infos, zero padding to the
 * alignment, then each tensor's data padded with zeros to the alignment (so the file
 * size is a multiple of it). Tensor offsets are assigned in insertion order.
 *
 * The writer owns deep copies of everything it is given (keys, values, tensor data).
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    ponder_gguf_value v; /* owns its strings, numeric data and elems */
} wkv;

typedef struct wtensor {
    char *name;
    ponder_type type;
    uint32_t n_dims;
    int64_t ne[PONDER_GGUF_MAX_DIMS];
    uint64_t n_bytes;
    void *data;
} wtensor;

struct ponder_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t alignment;
};

static const char ALIGNMENT_KEY[] = "general.alignment";

ponder_status ponder_gguf_writer_create(ponder_gguf_writer **out, ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_writer_create: NULL out");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: out of memory");
    (*out)->alignment = PONDER_GGUF_ALIGNMENT_DEFAULT;
    return PONDER_OK;
}

void ponder_gguf_writer_free(ponder_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        gguf_value_free(&w->kv[i].v, true);
    }
    free(w->kv);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    free(w);
}

/* Grows *arr (of elem_bytes elements) so that one more fits. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem_bytes)
{
    if (n < *cap)
        return true;
    size_t new_cap = *cap ? *cap * 2 : 16;
    if (new_cap > SIZE_MAX / elem_bytes)
        return false;
    void *p = realloc(*arr, new_cap * elem_bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = new_cap;
    return true;
}

/* Deep copy of src into dst (zeroed on entry), validating types, counts and nesting. On
 * failure dst holds what was copied so far and gguf_value_free(dst, true) releases it. */
static ponder_status copy_value(ponder_gguf_value *dst, const ponder_gguf_value *src, int depth, const char *key,
                                ponder_error *err)
{
    if ((unsigned)src->type >= PONDER_GGUF_TYPE_COUNT)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': unknown value type %d", key,
                                (int)src->type);
    if (src->type == PONDER_GGUF_STRING) {
        const ponder_gguf_str *s = &src->v.str;
        if (s->len > 0 && !s->data)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string data", key);
        if (s->len >= SIZE_MAX)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': string too long", key);
        char *copy = malloc((size_t)s->len + 1);
        if (!copy)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: key '%s': out of memory", key);
        if (s->len > 0)
            memcpy(copy, s->data, (size_t)s->len);
        copy[s->len] = '\0';
        dst->type = PONDER_GGUF_STRING;
        dst->v.str.data = copy;
        dst->v.str.len = s->len;
        return PONDER_OK;
    }
    if (src->type != PONDER_GGUF_ARRAY) {
        *dst = *src;
        return PONDER_OK;
    }

    const ponder_gguf_array *a = &src->v.arr;
    ponder_gguf_type et = a->elem_type;
    if ((unsigned)et >= PONDER_GGUF_TYPE_COUNT)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': unknown array element type %d",
                                key, (int)et);
    if (depth + 1 > PONDER_GGUF_MAX_ARRAY_DEPTH)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': arrays nested deeper than %d",
                                key, PONDER_GGUF_MAX_ARRAY_DEPTH);
    dst->type = PONDER_GGUF_ARRAY;
    dst->v.arr.elem_type = et;
    if (et != PONDER_GGUF_STRING && et != PONDER_GGUF_ARRAY) {
        size_t size = gguf_scalar_size(et);
        if (a->n > SIZE_MAX / size)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': array too long", key);
        if (a->n > 0 && !a->data)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': NULL array data", key);
        void *copy = malloc(a->n ? (size_t)a->n * size : 1);
        if (!copy)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: key '%s': out of memory", key);
        if (a->n > 0)
            memcpy(copy, a->data, (size_t)a->n * size);
        dst->v.arr.data = copy;
        dst->v.arr.n = a->n;
        return PONDER_OK;
    }
    if (a->n > SIZE_MAX / sizeof(ponder_gguf_value))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': array too long", key);
    if (a->n > 0 && !a->elems)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': NULL array elements", key);
    ponder_gguf_value *elems = calloc(a->n ? (size_t)a->n : 1, sizeof *elems);
    if (!elems)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: key '%s': out of memory", key);
    dst->v.arr.elems = elems;
    dst->v.arr.n = a->n;
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->elems[i].type != et)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "gguf writer: key '%s': element %" PRIu64 " has type %s in an array of %s", key, i,
                                    ponder_gguf_type_name(a->elems[i].type), ponder_gguf_type_name(et));
        ponder_status st = copy_value(&elems[i], &a->elems[i], depth + 1, key, err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

static ponder_status check_alignment(uint64_t a, ponder_error *err)
{
    if (a < 8 || a > UINT32_MAX || (a & (a - 1)) != 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "gguf writer: alignment %" PRIu64 " is not a power of two >= 8", a);
    return PONDER_OK;
}

ponder_status ponder_gguf_writer_set(ponder_gguf_writer *w, const char *key, const ponder_gguf_value *v,
                                     ponder_error *err)
{
    if (!w || !key || !v)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_writer_set: NULL argument");
    bool is_alignment = strcmp(key, ALIGNMENT_KEY) == 0;
    if (is_alignment) {
        if (v->type != PONDER_GGUF_UINT32)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: %s must be u32, got %s",
                                    ALIGNMENT_KEY, ponder_gguf_type_name(v->type));
        ponder_status st = check_alignment(v->v.u64, err);
        if (st != PONDER_OK)
            return st;
    }
    ponder_gguf_value copy = {0};
    ponder_status st = copy_value(&copy, v, 0, key, err);
    if (st != PONDER_OK) {
        gguf_value_free(&copy, true);
        return st;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            gguf_value_free(&w->kv[i].v, true);
            w->kv[i].v = copy;
            if (is_alignment)
                w->alignment = (uint32_t)v->v.u64;
            return PONDER_OK;
        }
    }
    char *key_copy = strdup(key);
    if (!key_copy || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(key_copy);
        gguf_value_free(&copy, true);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
    }
    w->kv[w->n_kv].key = key_copy;
    w->kv[w->n_kv].v = copy;
    w->n_kv++;
    if (is_alignment)
        w->alignment = (uint32_t)v->v.u64;
    return PONDER_OK;
}

ponder_status ponder_gguf_writer_set_alignment(ponder_gguf_writer *w, uint32_t alignment, ponder_error *err)
{
    ponder_gguf_value v = {.type = PONDER_GGUF_UINT32, .v.u64 = alignment};
    return ponder_gguf_writer_set(w, ALIGNMENT_KEY, &v, err);
}

ponder_status ponder_gguf_writer_set_u32(ponder_gguf_writer *w, const char *key, uint32_t x, ponder_error *err)
{
    ponder_gguf_value v = {.type = PONDER_GGUF_UINT32, .v.u64 = x};
    return ponder_gguf_writer_set(w, key, &v, err);
}

ponder_status ponder_gguf_writer_set_f32(ponder_gguf_writer *w, const char *key, float x, ponder_error *err)
{
    ponder_gguf_value v = {.type = PONDER_GGUF_FLOAT32, .v.f64 = x};
    return ponder_gguf_writer_set(w, key, &v, err);
}

ponder_status ponder_gguf_writer_set_bool(ponder_gguf_writer *w, const char *key, bool x, ponder_error *err)
{
    ponder_gguf_value v = {.type = PONDER_GGUF_BOOL, .v.b = x};
    return ponder_gguf_writer_set(w, key, &v, err);
}

ponder_status ponder_gguf_writer_set_str(ponder_gguf_writer *w, const char *key, const char *x, ponder_error *err)
{
    if (!x)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string", key ? key : "?");
    ponder_gguf_value v = {.type = PONDER_GGUF_STRING, .v.str = {x, strlen(x)}};
    return ponder_gguf_writer_set(w, key, &v, err);
}

ponder_status ponder_gguf_writer_copy_kv(ponder_gguf_writer *w, const ponder_gguf *src, ponder_error *err)
{
    if (!w || !src)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_writer_copy_kv: NULL argument");
    for (int64_t i = 0; i < ponder_gguf_n_kv(src); i++) {
        const char *key = ponder_gguf_kv_key(src, i);
        if (strcmp(key, ALIGNMENT_KEY) == 0)
            continue;
        ponder_status st = ponder_gguf_writer_set(w, key, ponder_gguf_kv_value(src, i), err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

ponder_status ponder_gguf_writer_add_tensor(ponder_gguf_writer *w, const char *name, ponder_type type,
                                            uint32_t n_dims, const int64_t *ne, const void *data,
                                            ponder_error *err)
{
    if (!w || !name || !ne)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_writer_add_tensor: NULL argument");
    const ponder_type_traits *tr = ponder_type_get_traits((int)type);
    if (!tr)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown type id %d", name,
                                (int)type);
    if (n_dims < 1 || n_dims > PONDER_GGUF_MAX_DIMS)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %" PRIu32
                                " not in 1..%d", name, n_dims, PONDER_GGUF_MAX_DIMS);
    if (strlen(name) >= GGUF_LLAMA_MAX_NAME)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor name '%s' is %zu bytes; llama.cpp "
                                "accepts at most %d", name, strlen(name), GGUF_LLAMA_MAX_NAME - 1);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: duplicate tensor name '%s'", name);

    wtensor t = {.type = type, .n_dims = n_dims};
    for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++)
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    uint64_t n_bytes = 0, n_elems = 1;
    bool bad = false;
    for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++) {
        bad |= t.ne[d] < 0;
        bad |= __builtin_mul_overflow(n_elems, (uint64_t)t.ne[d], &n_elems);
    }
    if (bad || n_elems > (uint64_t)INT64_MAX || t.ne[0] % tr->block_elems != 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor '%s': bad shape [%" PRId64 ", %"
                                PRId64 ", %" PRId64 ", %" PRId64 "] for type %s", name, t.ne[0], t.ne[1], t.ne[2],
                                t.ne[3], tr->name);
    n_bytes = n_elems / (uint64_t)tr->block_elems;
    if (__builtin_mul_overflow(n_bytes, (uint64_t)tr->block_bytes, &n_bytes) || n_bytes >= SIZE_MAX)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor '%s' too large", name);
    if (n_bytes > 0 && !data)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    t.n_bytes = n_bytes;
    t.name = strdup(name);
    t.data = malloc(n_bytes ? (size_t)n_bytes : 1);
    if (!t.name || !t.data || !grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors)) {
        free(t.name);
        free(t.data);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s'", name);
    }
    if (n_bytes > 0)
        memcpy(t.data, data, (size_t)n_bytes);
    w->tensors[w->n_tensors++] = t;
    return PONDER_OK;
}

/* ---- output ---- */

typedef struct out {
    FILE *f;
    uint64_t off; /* bytes written so far */
    bool failed;
} out;

static void put(out *o, const void *p, size_t n)
{
    if (o->failed || n == 0)
        return;
    if (fwrite(p, 1, n, o->f) != n)
        o->failed = true;
    o->off += n;
}

static void put_u32(out *o, uint32_t x) { put(o, &x, 4); }
static void put_u64(out *o, uint64_t x) { put(o, &x, 8); }

static void put_str(out *o, const char *s, uint64_t len)
{
    put_u64(o, len);
    put(o, s, (size_t)len);
}

static void put_pad(out *o, uint32_t alignment)
{
    static const uint8_t zeros[64];
    uint64_t pad = (alignment - o->off % alignment) % alignment;
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        put(o, zeros, n);
        pad -= n;
    }
}

/* Scalars narrow back from the widened u64/i64/f64 the value holds. */
static void put_value(out *o, const ponder_gguf_value *v)
{
    switch (v->type) {
    case PONDER_GGUF_UINT8: case PONDER_GGUF_INT8: { uint8_t x = (uint8_t)v->v.u64; put(o, &x, 1); break; }
    case PONDER_GGUF_BOOL: { uint8_t x = v->v.b ? 1 : 0; put(o, &x, 1); break; }
    case PONDER_GGUF_UINT16: case PONDER_GGUF_INT16: { uint16_t x = (uint16_t)v->v.u64; put(o, &x, 2); break; }
    case PONDER_GGUF_UINT32: case PONDER_GGUF_INT32: put_u32(o, (uint32_t)v->v.u64); break;
    case PONDER_GGUF_UINT64: case PONDER_GGUF_INT64: put_u64(o, v->v.u64); break;
    case PONDER_GGUF_FLOAT32: { float x = (float)v->v.f64; put(o, &x, 4); break; }
    case PONDER_GGUF_FLOAT64: put(o, &v->v.f64, 8); break;
    case PONDER_GGUF_STRING: put_str(o, v->v.str.data, v->v.str.len); break;
    case PONDER_GGUF_ARRAY: {
        const ponder_gguf_array *a = &v->v.arr;
        put_u32(o, (uint32_t)a->elem_type);
        put_u64(o, a->n);
        if (a->elems) {
            for (uint64_t i = 0; i < a->n; i++)
                put_value(o, &a->elems[i]);
        } else {
            put(o, a->data, (size_t)a->n * gguf_scalar_size(a->elem_type));
        }
        break;
    }
    default: break; /* rejected by copy_value */
    }
}

ponder_status ponder_gguf_writer_write(ponder_gguf_writer *w, const char *path, ponder_error *err)
{
    if (!w || !path)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_writer_write: NULL argument");
    uint32_t align = w->alignment;

    /* Offsets relative to the data section: each tensor starts aligned (GGML_PAD). */
    uint64_t *offsets = calloc(w->n_tensors ? w->n_tensors : 1, sizeof *offsets);
    if (!offsets)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
    uint64_t next = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        offsets[i] = next;
        uint64_t padded = w->tensors[i].n_bytes + (align - w->tensors[i].n_bytes % align) % align;
        if (__builtin_add_overflow(next, padded, &next)) {
            free(offsets);
            return ponder_error_set(err, PONDER_ERR_RANGE, "%s: tensor data exceeds 2^64 bytes", path);
        }
    }

    /* Crash-safe: a temporary file renamed over `path` once complete and synced. */
    ponder_atomic_file *af = NULL;
    ponder_status st = ponder_atomic_file_open(path, &af, err);
    if (st != PONDER_OK) {
        free(offsets);
        return st;
    }
    out o = {ponder_atomic_file_stream(af), 0, false};
    put(&o, PONDER_GGUF_MAGIC, 4);
    put_u32(&o, 3);
    put_u64(&o, w->n_tensors);
    put_u64(&o, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&o, w->kv[i].key, strlen(w->kv[i].key));
        put_u32(&o, (uint32_t)w->kv[i].v.type);
        put_value(&o, &w->kv[i].v);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(&o, t->name, strlen(t->name));
        put_u32(&o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(&o, (uint64_t)t->ne[d]);
        put_u32(&o, (uint32_t)t->type);
        put_u64(&o, offsets[i]);
    }
    put_pad(&o, align);
    for (size_t i = 0; i < w->n_tensors; i++) {
        put(&o, w->tensors[i].data, (size_t)w->tensors[i].n_bytes);
        put_pad(&o, align);
    }
    free(offsets);
    if (o.failed) {
        int saved = errno;
        ponder_atomic_file_abort(af); /* the previous file, if any, stays as it was */
        return ponder_error_set(err, PONDER_ERR_IO, "%s: write failed: %s", path, strerror(saved ? saved : EIO));
    }
    return ponder_atomic_file_commit(af, err);
}
