/*
 * reader.c — maps a GGUF file and validates all of it at open time (GGUF spec v2/v3,
 * little-endian), so accessors never fail afterwards.
 *
 * Every read goes through a cursor that checks the bytes remain; every count read from
 * the file is compared with what the remaining bytes could possibly hold before anything
 * is allocated, so allocations stay proportional to the file size. Errors name the file,
 * the byte offset and the problem. Tensor checks follow llama.cpp's gguf.cpp: known type
 * id, n_dims <= 4, ne >= 0, ne0 a multiple of the block size, no size overflow, offsets
 * aligned, data inside the file, no duplicate names.
 */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ponder_gguf {
    char *path;            /* as given to open (or the memory name) */
    const uint8_t *base;   /* file bytes */
    uint64_t size;
    void *map;             /* mmap'ed region, NULL for open_memory */
    size_t map_bytes;

    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;

    uint64_t n_kv;
    char **keys;                 /* n_kv NUL-terminated copies */
    ponder_gguf_value *values;   /* n_kv */
    gguf_index kv_index;

    uint64_t n_tensors;
    ponder_gguf_tensor *tensors; /* n_tensors; names are owned copies */
    gguf_index tensor_index;
};

/* A bounds-checked cursor over the file. */
typedef struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t off;
    const char *name;
    const char *key; /* key whose value is being read, for messages; NULL elsewhere */
    ponder_error *err;
} cursor;

#define FMT_ERR(c, at, ...) gguf_fmt_err((c), (at), __VA_ARGS__)

/* Sets a FORMAT error "name: offset N: [key 'k': ]<message>". */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ponder_status gguf_fmt_err(const cursor *c, uint64_t at, const char *fmt, ...)
{
    char what[PONDER_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->key)
        return ponder_error_set(c->err, PONDER_ERR_FORMAT, "%s: offset %" PRIu64 ": key '%s': %s", c->name, at,
                                c->key, what);
    return ponder_error_set(c->err, PONDER_ERR_FORMAT, "%s: offset %" PRIu64 ": %s", c->name, at, what);
}

static uint64_t remaining(const cursor *c)
{
    return c->size - c->off;
}

static ponder_status need(cursor *c, uint64_t n, const char *what)
{
    if (n > remaining(c))
        return FMT_ERR(c, c->off, "truncated: %s needs %" PRIu64 " bytes, only %" PRIu64 " remain", what, n,
                       remaining(c));
    return PONDER_OK;
}

static ponder_status read_bytes(cursor *c, void *dst, size_t n, const char *what)
{
    ponder_status st = need(c, n, what);
    if (st != PONDER_OK)
        return st;
    memcpy(dst, c->base + c->off, n);
    c->off += n;
    return PONDER_OK;
}

static ponder_status read_u32(cursor *c, uint32_t *out, const char *what)
{
    return read_bytes(c, out, 4, what); /* little-endian host assumed (x86-64, aarch64) */
}

static ponder_status read_u64(cursor *c, uint64_t *out, const char *what)
{
    return read_bytes(c, out, 8, what);
}

/* A GGUF string: u64 length + bytes; the result points into the mapping. */
static ponder_status read_str(cursor *c, ponder_gguf_str *out, const char *what)
{
    uint64_t at = c->off;
    uint64_t len;
    ponder_status st = read_u64(c, &len, what);
    if (st != PONDER_OK)
        return st;
    if (len > remaining(c))
        return FMT_ERR(c, at, "%s length %" PRIu64 " exceeds file size (%" PRIu64 " bytes remain)", what, len,
                       remaining(c));
    out->data = (const char *)(c->base + c->off);
    out->len = len;
    c->off += len;
    return PONDER_OK;
}

/* A key or tensor name: must not contain NUL since it is used as a C string. */
static ponder_status read_name(cursor *c, char **out, const char *what)
{
    uint64_t at = c->off;
    ponder_gguf_str s = {0};
    ponder_status st = read_str(c, &s, what);
    if (st != PONDER_OK)
        return st;
    if (s.len > 0 && memchr(s.data, 0, (size_t)s.len))
        return FMT_ERR(c, at, "%s contains a NUL byte", what);
    if (s.len >= SIZE_MAX)
        return FMT_ERR(c, at, "%s too long", what);
    char *copy = malloc((size_t)s.len + 1);
    if (!copy)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte %s", c->name,
                                s.len, what);
    if (s.len > 0)
        memcpy(copy, s.data, (size_t)s.len);
    copy[s.len] = '\0';
    *out = copy;
    return PONDER_OK;
}

static ponder_status read_value(cursor *c, ponder_gguf_type type, int depth, ponder_gguf_value *out);

/* An array body: u32 element type, u64 count, elements. `depth` is 0 for a top-level
 * array (level 1 in PONDER_GGUF_MAX_ARRAY_DEPTH's terms). */
static ponder_status read_array(cursor *c, int depth, ponder_gguf_array *arr)
{
    uint64_t at = c->off;
    uint32_t et;
    uint64_t n;
    ponder_status st;
    if ((st = read_u32(c, &et, "array element type")) != PONDER_OK)
        return st;
    if (et >= PONDER_GGUF_TYPE_COUNT)
        return FMT_ERR(c, at, "unknown array element type %" PRIu32, et);
    if (et == PONDER_GGUF_ARRAY && depth + 2 > PONDER_GGUF_MAX_ARRAY_DEPTH) /* children at level depth+2 */
        return FMT_ERR(c, at, "arrays nested deeper than %d levels", PONDER_GGUF_MAX_ARRAY_DEPTH);
    if ((st = read_u64(c, &n, "array count")) != PONDER_OK)
        return st;
    /* Reject impossible counts before allocating: each element needs at least min bytes. */
    uint64_t min = gguf_min_value_bytes((ponder_gguf_type)et);
    if (n > remaining(c) / min)
        return FMT_ERR(c, at + 4, "array count %" PRIu64 " of %s exceeds file size (%" PRIu64 " bytes remain)", n,
                       ponder_gguf_type_name((ponder_gguf_type)et), remaining(c));
    arr->elem_type = (ponder_gguf_type)et;
    if (et != PONDER_GGUF_STRING && et != PONDER_GGUF_ARRAY) {
        arr->data = c->base + c->off;
        arr->n = n;
        c->off += n * min; /* cannot overflow or pass the end: checked above */
        return PONDER_OK;
    }
    if (n > SIZE_MAX / sizeof(ponder_gguf_value))
        return FMT_ERR(c, at + 4, "array count %" PRIu64 " too large", n);
    ponder_gguf_value *elems = calloc(n ? (size_t)n : 1, sizeof *elems);
    if (!elems)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "%s: offset %" PRIu64 ": out of memory for %" PRIu64
                                " array elements", c->name, at, n);
    /* Set before filling so that the caller's cleanup frees what was built so far; the
     * elements not reached yet are zeroed (u8 values), which freeing skips. */
    arr->elems = elems;
    arr->n = n;
    for (uint64_t i = 0; i < n; i++) {
        if ((st = read_value(c, (ponder_gguf_type)et, depth + 1, &elems[i])) != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

/* A value of known type. Integers widen into u64/i64, floats into f64. */
static ponder_status read_value(cursor *c, ponder_gguf_type type, int depth, ponder_gguf_value *out)
{
    uint8_t b[8];
    ponder_status st;
    out->type = type;
    switch (type) {
    case PONDER_GGUF_STRING:
        return read_str(c, &out->v.str, "string");
    case PONDER_GGUF_ARRAY:
        return read_array(c, depth, &out->v.arr);
    default:
        break;
    }
    size_t n = gguf_scalar_size(type);
    if ((st = read_bytes(c, b, n, ponder_gguf_type_name(type))) != PONDER_OK)
        return st;
    switch (type) {
    case PONDER_GGUF_UINT8: out->v.u64 = b[0]; break;
    case PONDER_GGUF_INT8: out->v.i64 = (int8_t)b[0]; break;
    case PONDER_GGUF_BOOL: out->v.b = b[0] != 0; break; /* llama.cpp accepts any byte */
    case PONDER_GGUF_UINT16: { uint16_t x; memcpy(&x, b, 2); out->v.u64 = x; break; }
    case PONDER_GGUF_INT16: { int16_t x; memcpy(&x, b, 2); out->v.i64 = x; break; }
    case PONDER_GGUF_UINT32: { uint32_t x; memcpy(&x, b, 4); out->v.u64 = x; break; }
    case PONDER_GGUF_INT32: { int32_t x; memcpy(&x, b, 4); out->v.i64 = x; break; }
    case PONDER_GGUF_FLOAT32: { float x; memcpy(&x, b, 4); out->v.f64 = x; break; }
    case PONDER_GGUF_UINT64: memcpy(&out->v.u64, b, 8); break;
    case PONDER_GGUF_INT64: memcpy(&out->v.i64, b, 8); break;
    case PONDER_GGUF_FLOAT64: memcpy(&out->v.f64, b, 8); break;
    default: return FMT_ERR(c, c->off, "unknown value type %d", (int)type); /* unreachable */
    }
    return PONDER_OK;
}

static const char *key_at(const void *ctx, uint64_t i)
{
    return ((const ponder_gguf *)ctx)->keys[i];
}

static const char *tensor_name_at(const void *ctx, uint64_t i)
{
    return ((const ponder_gguf *)ctx)->tensors[i].name;
}

static const char ALIGNMENT_KEY[] = "general.alignment";

/* *alignment_at receives the offset of general.alignment's type field, for messages. */
static ponder_status read_kvs(cursor *c, ponder_gguf *g, uint64_t *alignment_at)
{
    ponder_status st;
    if (g->n_kv == 0)
        return PONDER_OK;
    g->keys = calloc((size_t)g->n_kv, sizeof *g->keys);
    g->values = calloc((size_t)g->n_kv, sizeof *g->values);
    if (!g->keys || !g->values)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "%s: out of memory for %" PRIu64 " key/value pairs",
                                c->name, g->n_kv);
    if ((st = gguf_index_init(&g->kv_index, g->n_kv, c->err)) != PONDER_OK)
        return st;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        uint64_t at = c->off;
        if ((st = read_name(c, &g->keys[i], "key")) != PONDER_OK)
            return st;
        int64_t dup = gguf_index_insert(&g->kv_index, i, key_at, g);
        if (dup >= 0)
            return FMT_ERR(c, at, "duplicate key '%s' (also key #%" PRId64 ")", g->keys[i], dup);
        uint64_t type_at = c->off;
        if (strcmp(g->keys[i], ALIGNMENT_KEY) == 0)
            *alignment_at = type_at;
        uint32_t type;
        if ((st = read_u32(c, &type, "value type")) != PONDER_OK)
            return st;
        if (type >= PONDER_GGUF_TYPE_COUNT)
            return FMT_ERR(c, type_at, "key '%s' has unknown value type %" PRIu32, g->keys[i], type);
        c->key = g->keys[i];
        st = read_value(c, (ponder_gguf_type)type, 0, &g->values[i]);
        c->key = NULL;
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

/* general.alignment: u32, non-zero power of two (GGUF spec); default 32. */
static ponder_status read_alignment(cursor *c, ponder_gguf *g, uint64_t at)
{
    g->alignment = PONDER_GGUF_ALIGNMENT_DEFAULT;
    int64_t i = gguf_index_find(&g->kv_index, ALIGNMENT_KEY, key_at, g);
    if (i < 0)
        return PONDER_OK;
    const ponder_gguf_value *v = &g->values[i];
    if (v->type != PONDER_GGUF_UINT32)
        return FMT_ERR(c, at, "%s has type %s, expected u32", ALIGNMENT_KEY, ponder_gguf_type_name(v->type));
    uint64_t a = v->v.u64;
    if (a == 0 || (a & (a - 1)) != 0)
        return FMT_ERR(c, at, "%s %" PRIu64 " is not a non-zero power of two", ALIGNMENT_KEY, a);
    g->alignment = (uint32_t)a;
    return PONDER_OK;
}

/* Tensor infos; offsets are checked afterwards, once the data section start is known.
 * info_at[i] records where tensor i's info begins, for messages. */
static ponder_status read_tensor_infos(cursor *c, ponder_gguf *g, uint64_t *info_at)
{
    ponder_status st;
    if (g->n_tensors == 0)
        return PONDER_OK;
    g->tensors = calloc((size_t)g->n_tensors, sizeof *g->tensors);
    if (!g->tensors)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "%s: out of memory for %" PRIu64 " tensor infos",
                                c->name, g->n_tensors);
    if ((st = gguf_index_init(&g->tensor_index, g->n_tensors, c->err)) != PONDER_OK)
        return st;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ponder_gguf_tensor *t = &g->tensors[i];
        uint64_t at = c->off;
        info_at[i] = at;
        char *name = NULL;
        if ((st = read_name(c, &name, "tensor name")) != PONDER_OK)
            return st;
        t->name = name;
        int64_t dup = gguf_index_insert(&g->tensor_index, i, tensor_name_at, g);
        if (dup >= 0)
            return FMT_ERR(c, at, "duplicate tensor name '%s' (also tensor #%" PRId64 ")", name, dup);

        uint64_t dims_at = c->off;
        if ((st = read_u32(c, &t->n_dims, "tensor n_dims")) != PONDER_OK)
            return st;
        if (t->n_dims > PONDER_GGUF_MAX_DIMS)
            return FMT_ERR(c, dims_at, "tensor '%s' has %" PRIu32 " dimensions, at most %d supported", name,
                           t->n_dims, PONDER_GGUF_MAX_DIMS);
        for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne_at = c->off;
            uint64_t ne;
            if ((st = read_u64(c, &ne, "tensor dimension")) != PONDER_OK)
                return st;
            if (ne > (uint64_t)INT64_MAX)
                return FMT_ERR(c, ne_at, "tensor '%s' dimension %" PRIu32 " is negative (%" PRId64 ")", name, d,
                               (int64_t)ne);
            t->ne[d] = (int64_t)ne;
        }

        uint64_t type_at = c->off;
        uint32_t type;
        if ((st = read_u32(c, &type, "tensor type")) != PONDER_OK)
            return st;
        const ponder_type_traits *tr = ponder_type_get_traits((int)type);
        if (type > INT32_MAX || !tr)
            return FMT_ERR(c, type_at, "tensor '%s' has unknown type id %" PRIu32, name, type);
        t->type = (ponder_type)type;

        /* bytes = ne0/block_elems*block_bytes * ne1*ne2*ne3, each step overflow-checked;
         * the element count must also fit in int64 as ggml's nelements does. */
        if (t->ne[0] % tr->block_elems != 0)
            return FMT_ERR(c, dims_at, "tensor '%s' row length %" PRId64 " is not a multiple of the %s block size %"
                           PRId64, name, t->ne[0], tr->name, tr->block_elems);
        uint64_t n_elems = 1;
        uint64_t n_bytes = (uint64_t)(t->ne[0] / tr->block_elems);
        bool overflow = __builtin_mul_overflow(n_bytes, (uint64_t)tr->block_bytes, &n_bytes);
        for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++) {
            overflow |= __builtin_mul_overflow(n_elems, (uint64_t)t->ne[d], &n_elems);
            if (d > 0)
                overflow |= __builtin_mul_overflow(n_bytes, (uint64_t)t->ne[d], &n_bytes);
        }
        if (overflow || n_elems > (uint64_t)INT64_MAX || n_bytes > SIZE_MAX)
            return FMT_ERR(c, dims_at, "tensor '%s' shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                           "] overflows the element or byte count", name, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
        t->n_bytes = n_bytes;

        if ((st = read_u64(c, &t->offset, "tensor offset")) != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

/* Now that the data section start is known: alignment and bounds of each tensor's data. */
static ponder_status check_tensor_data(cursor *c, ponder_gguf *g, const uint64_t *info_at)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ponder_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return FMT_ERR(c, info_at[i], "tensor '%s' data offset %" PRIu64 " is not a multiple of the alignment %"
                           PRIu32, t->name, t->offset, g->alignment);
        uint64_t start, end;
        if (__builtin_add_overflow(g->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->n_bytes, &end) || end > g->size)
            return FMT_ERR(c, info_at[i], "tensor '%s' data at offset %" PRIu64 "+%" PRIu64 " needs %" PRIu64
                           " bytes; file has %" PRIu64, t->name, g->data_offset, t->offset, t->n_bytes, g->size);
        t->data = g->base + start;
    }
    return PONDER_OK;
}

static ponder_status parse(ponder_gguf *g, ponder_error *err)
{
    cursor c = {g->base, g->size, 0, g->path, NULL, err};
    cursor *cp = &c;
    ponder_status st;
    uint64_t *info_at = NULL;

    char magic[4];
    if ((st = read_bytes(cp, magic, 4, "magic")) != PONDER_OK)
        return st;
    if (memcmp(magic, PONDER_GGUF_MAGIC, 4) != 0)
        return FMT_ERR(cp, 0, "bad magic %02x %02x %02x %02x, not a GGUF file (expected \"GGUF\")",
                       (uint8_t)magic[0], (uint8_t)magic[1], (uint8_t)magic[2], (uint8_t)magic[3]);
    if ((st = read_u32(cp, &g->version, "version")) != PONDER_OK)
        return st;
    if (g->version == 1)
        return FMT_ERR(cp, 4, "GGUF version 1 is not supported (32-bit counts); re-convert the model");
    if (g->version == 0 || g->version > 3) {
        if (g->version != 0 && (g->version & 0xFFFF) == 0) /* a byte-swapped small number */
            return FMT_ERR(cp, 4, "unsupported GGUF version %" PRIu32 " (a big-endian file?)", g->version);
        return FMT_ERR(cp, 4, "unsupported GGUF version %" PRIu32 " (supported: 2, 3)", g->version);
    }
    if ((st = read_u64(cp, &g->n_tensors, "tensor count")) != PONDER_OK)
        return st;
    if ((st = read_u64(cp, &g->n_kv, "key/value count")) != PONDER_OK)
        return st;
    /* Smallest kv: empty key (8) + type (4) + u8 value (1); smallest tensor info: empty
     * name (8) + n_dims (4) + type (4) + offset (8). Both live in the remaining bytes. */
    if (g->n_kv > remaining(cp) / 13)
        return FMT_ERR(cp, 16, "key/value count %" PRIu64 " exceeds what the file size %" PRIu64 " can hold",
                       g->n_kv, g->size);
    if (g->n_tensors > remaining(cp) / 24)
        return FMT_ERR(cp, 8, "tensor count %" PRIu64 " exceeds what the file size %" PRIu64 " can hold",
                       g->n_tensors, g->size);

    uint64_t alignment_at = 0;
    if ((st = read_kvs(cp, g, &alignment_at)) != PONDER_OK)
        return st;
    if ((st = read_alignment(cp, g, alignment_at)) != PONDER_OK)
        return st;
    if (g->n_tensors > 0) {
        info_at = calloc((size_t)g->n_tensors, sizeof *info_at);
        if (!info_at)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory for %" PRIu64 " tensor infos",
                                    g->path, g->n_tensors);
    }
    if ((st = read_tensor_infos(cp, g, info_at)) != PONDER_OK)
        goto done;
    /* The data section starts at the next multiple of the alignment. A file without
     * tensors may end before it (vocab-only files have no padding). */
    uint64_t pad = (g->alignment - cp->off % g->alignment) % g->alignment;
    g->data_offset = cp->off + pad;
    st = check_tensor_data(cp, g, info_at);
done:
    free(info_at);
    return st;
}

static const char *display_name(const char *name)
{
    return name ? name : "<memory>";
}

ponder_status ponder_gguf_open_memory(const void *data, size_t size, const char *name, ponder_gguf **out,
                                      ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_open_memory: NULL out");
    *out = NULL;
    if (!data && size > 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_open_memory: NULL data");
    ponder_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", display_name(name));
    g->path = strdup(display_name(name));
    if (!g->path) {
        free(g);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", display_name(name));
    }
    g->base = data;
    g->size = size;
    ponder_status st = parse(g, err);
    if (st != PONDER_OK) {
        ponder_gguf_free(g);
        return st;
    }
    *out = g;
    return PONDER_OK;
}

ponder_status ponder_gguf_open(const char *path, ponder_gguf **out, ponder_error *err)
{
    if (!out || !path)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gguf_open: NULL path or out");
    *out = NULL;
    ponder_status st;
    ponder_gguf *g = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ponder_error_set(err, PONDER_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ponder_error_set(err, PONDER_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    if (sb.st_size == 0) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: offset 0: file is empty, not a GGUF file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = ponder_error_set(err, PONDER_ERR_IO, "%s: file too large to map", path);
        goto fail;
    }
    g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    g->map_bytes = (size_t)sb.st_size;
    g->map = mmap(NULL, g->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (g->map == MAP_FAILED) {
        g->map = NULL;
        st = ponder_error_set(err, PONDER_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, g->map_bytes,
                              strerror(errno));
        goto fail;
    }
    g->base = g->map;
    g->size = g->map_bytes;
    if ((st = parse(g, err)) != PONDER_OK)
        goto fail;
    close(fd);
    *out = g;
    return PONDER_OK;
fail:
    close(fd);
    ponder_gguf_free(g);
    return st;
}

void ponder_gguf_free(ponder_gguf *g)
{
    if (!g)
        return;
    if (g->keys) {
        for (uint64_t i = 0; i < g->n_kv; i++)
            free(g->keys[i]);
        free(g->keys);
    }
    if (g->values) {
        for (uint64_t i = 0; i < g->n_kv; i++)
            gguf_value_free(&g->values[i], false);
        free(g->values);
    }
    if (g->tensors) {
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free((char *)g->tensors[i].name);
        free(g->tensors);
    }
    gguf_index_free(&g->kv_index);
    gguf_index_free(&g->tensor_index);
    if (g->map)
        munmap(g->map, g->map_bytes);
    free(g->path);
    free(g);
}

/* ---- accessors ---- */

const char *ponder_gguf_path(const ponder_gguf *g) { return g->path; }
uint32_t ponder_gguf_version(const ponder_gguf *g) { return g->version; }
uint64_t ponder_gguf_file_size(const ponder_gguf *g) { return g->size; }
uint32_t ponder_gguf_alignment(const ponder_gguf *g) { return g->alignment; }
uint64_t ponder_gguf_data_offset(const ponder_gguf *g) { return g->data_offset; }
int64_t ponder_gguf_n_kv(const ponder_gguf *g) { return (int64_t)g->n_kv; }
int64_t ponder_gguf_n_tensors(const ponder_gguf *g) { return (int64_t)g->n_tensors; }

const char *ponder_gguf_kv_key(const ponder_gguf *g, int64_t i)
{
    if (i < 0 || (uint64_t)i >= g->n_kv)
        return NULL;
    return g->keys[i];
}

const ponder_gguf_value *ponder_gguf_kv_value(const ponder_gguf *g, int64_t i)
{
    if (i < 0 || (uint64_t)i >= g->n_kv)
        return NULL;
    return &g->values[i];
}

int64_t ponder_gguf_find_kv(const ponder_gguf *g, const char *key)
{
    if (!g || !key)
        return -1;
    return gguf_index_find(&g->kv_index, key, key_at, g);
}

const ponder_gguf_value *ponder_gguf_get(const ponder_gguf *g, const char *key)
{
    int64_t i = ponder_gguf_find_kv(g, key);
    return i < 0 ? NULL : &g->values[i];
}

const ponder_gguf_tensor *ponder_gguf_tensor_at(const ponder_gguf *g, int64_t i)
{
    if (i < 0 || (uint64_t)i >= g->n_tensors)
        return NULL;
    return &g->tensors[i];
}

const ponder_gguf_tensor *ponder_gguf_find_tensor(const ponder_gguf *g, const char *name)
{
    if (!g || !name)
        return NULL;
    int64_t i = gguf_index_find(&g->tensor_index, name, tensor_name_at, g);
    return i < 0 ? NULL : &g->tensors[i];
}
