/*
 * gguf.h — read and write GGUF files (versions 2 and 3).
 *
 * The reader maps the file (mmap) and validates everything before exposing it: every
 * count, length and offset is bounds-checked against the file size, so a truncated or
 * corrupt file yields PONDER_ERR_FORMAT with a message naming the file, the byte offset
 * and the problem — never a crash. After a successful open, all accessors are cheap and
 * cannot fail except for "absent" or "wrong type".
 *
 * Strings in GGUF are length-prefixed, not NUL-terminated; ponder_gguf_str points into
 * the mapping. Keys and tensor names are additionally offered NUL-terminated (copied at
 * open time) because they are looked up by name.
 *
 * Layout (GGUF spec): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, n_kv key/value
 * pairs, n_tensors tensor infos, padding to general.alignment (default 32), tensor data.
 */
#ifndef PONDER_GGUF_H
#define PONDER_GGUF_H

#include "ponder/common.h"
#include "ponder/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PONDER_GGUF_MAGIC "GGUF"
#define PONDER_GGUF_ALIGNMENT_DEFAULT 32 /* GGUF spec: used when general.alignment is absent */
#define PONDER_GGUF_MAX_DIMS 4           /* GGML_MAX_DIMS */

/* Metadata value types, numbered as in the GGUF spec (gguf_metadata_value_type). */
typedef enum ponder_gguf_type {
    PONDER_GGUF_UINT8 = 0,
    PONDER_GGUF_INT8 = 1,
    PONDER_GGUF_UINT16 = 2,
    PONDER_GGUF_INT16 = 3,
    PONDER_GGUF_UINT32 = 4,
    PONDER_GGUF_INT32 = 5,
    PONDER_GGUF_FLOAT32 = 6,
    PONDER_GGUF_BOOL = 7,
    PONDER_GGUF_STRING = 8,
    PONDER_GGUF_ARRAY = 9,
    PONDER_GGUF_UINT64 = 10,
    PONDER_GGUF_INT64 = 11,
    PONDER_GGUF_FLOAT64 = 12,
    PONDER_GGUF_TYPE_COUNT
} ponder_gguf_type;

/* A length-delimited string inside the file (not NUL-terminated). */
typedef struct ponder_gguf_str {
    const char *data;
    uint64_t len;
} ponder_gguf_str;

typedef struct ponder_gguf ponder_gguf;

/* An array value. For numeric/bool element types `data` points at n packed little-endian
 * elements in the mapping (possibly unaligned: read with memcpy or the helpers below).
 * For STRING elements use ponder_gguf_array_str(). For nested ARRAY elements use
 * ponder_gguf_array_sub(). */
typedef struct ponder_gguf_array {
    ponder_gguf_type elem_type;
    uint64_t n;
    const void *data;          /* numeric elements; NULL for strings and arrays */
    const struct ponder_gguf_value *elems; /* STRING/ARRAY elements: n values; NULL otherwise */
} ponder_gguf_array;

typedef struct ponder_gguf_value {
    ponder_gguf_type type;
    union {
        uint64_t u64;   /* UINT8/16/32/64 */
        int64_t i64;    /* INT8/16/32/64 */
        double f64;     /* FLOAT32/64 */
        bool b;         /* BOOL */
        ponder_gguf_str str;
        ponder_gguf_array arr;
    } v;
} ponder_gguf_value;

typedef struct ponder_gguf_tensor {
    const char *name;            /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[PONDER_GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    ponder_type type;
    uint64_t offset;             /* relative to the start of the data section */
    uint64_t n_bytes;            /* validated: n_elems / block_elems * block_bytes */
    const void *data;            /* points into the mapping */
} ponder_gguf_tensor;

/* Maps and validates `path`. On failure *out is NULL and err says why. */
ponder_status ponder_gguf_open(const char *path, ponder_gguf **out, ponder_error *err);

/* Same, over a caller-owned buffer that must outlive the handle (fuzzing, tests).
 * `name` is used in error messages. */
ponder_status ponder_gguf_open_memory(const void *data, size_t size, const char *name,
                                      ponder_gguf **out, ponder_error *err);

void ponder_gguf_free(ponder_gguf *g); /* NULL is a no-op */

const char *ponder_gguf_path(const ponder_gguf *g);
uint32_t ponder_gguf_version(const ponder_gguf *g);
uint64_t ponder_gguf_file_size(const ponder_gguf *g);
uint32_t ponder_gguf_alignment(const ponder_gguf *g);
uint64_t ponder_gguf_data_offset(const ponder_gguf *g); /* absolute byte offset of tensor data */

/* ---- metadata ---- */
int64_t ponder_gguf_n_kv(const ponder_gguf *g);
const char *ponder_gguf_kv_key(const ponder_gguf *g, int64_t i);
const ponder_gguf_value *ponder_gguf_kv_value(const ponder_gguf *g, int64_t i);
int64_t ponder_gguf_find_kv(const ponder_gguf *g, const char *key); /* -1 if absent */
const ponder_gguf_value *ponder_gguf_get(const ponder_gguf *g, const char *key); /* NULL if absent */

const char *ponder_gguf_type_name(ponder_gguf_type t); /* "u32", "string", ...; "?" if unknown */

/* Typed getters. They return PONDER_ERR_NOT_FOUND if the key is absent (err untouched in
 * that case, so callers can apply a default) and PONDER_ERR_FORMAT naming key and actual
 * type if the value has an incompatible type. Integer getters accept any integer type
 * (and bool) whose value fits; float getters accept FLOAT32/FLOAT64 and integers. */
ponder_status ponder_gguf_get_i64(const ponder_gguf *g, const char *key, int64_t *out, ponder_error *err);
ponder_status ponder_gguf_get_u32(const ponder_gguf *g, const char *key, uint32_t *out, ponder_error *err);
ponder_status ponder_gguf_get_f64(const ponder_gguf *g, const char *key, double *out, ponder_error *err);
ponder_status ponder_gguf_get_bool(const ponder_gguf *g, const char *key, bool *out, ponder_error *err);
ponder_status ponder_gguf_get_str(const ponder_gguf *g, const char *key, ponder_gguf_str *out, ponder_error *err);
/* Array of the given element type (PONDER_GGUF_TYPE_COUNT = any). */
ponder_status ponder_gguf_get_arr(const ponder_gguf *g, const char *key, ponder_gguf_type elem_type,
                                  const ponder_gguf_array **out, ponder_error *err);

/* Element helpers for numeric arrays (no bounds check beyond i < arr->n being the caller's duty). */
int64_t ponder_gguf_array_i64(const ponder_gguf_array *arr, uint64_t i);  /* any integer/bool type */
double ponder_gguf_array_f64(const ponder_gguf_array *arr, uint64_t i);   /* float or integer type */
ponder_gguf_str ponder_gguf_array_str(const ponder_gguf_array *arr, uint64_t i);
const ponder_gguf_array *ponder_gguf_array_sub(const ponder_gguf_array *arr, uint64_t i);

/* True if s equals the NUL-terminated string c. */
bool ponder_gguf_str_eq(ponder_gguf_str s, const char *c);

/* ---- tensors ---- */
int64_t ponder_gguf_n_tensors(const ponder_gguf *g);
const ponder_gguf_tensor *ponder_gguf_tensor_at(const ponder_gguf *g, int64_t i);
const ponder_gguf_tensor *ponder_gguf_find_tensor(const ponder_gguf *g, const char *name); /* NULL if absent */

/* ---- writer ----
 * Collects metadata and tensors in memory order of insertion and writes a GGUF v3 file
 * that this reader and llama.cpp read back. Tensor data is copied at add time. */
typedef struct ponder_gguf_writer ponder_gguf_writer;

ponder_status ponder_gguf_writer_create(ponder_gguf_writer **out, ponder_error *err);
void ponder_gguf_writer_free(ponder_gguf_writer *w);
/* Sets general.alignment (and writes the key). Must be a power of two >= 8. */
ponder_status ponder_gguf_writer_set_alignment(ponder_gguf_writer *w, uint32_t alignment, ponder_error *err);
/* Adds (or replaces) a key with a value of any type, including nested arrays; the value's
 * strings/arrays are deep-copied. */
ponder_status ponder_gguf_writer_set(ponder_gguf_writer *w, const char *key, const ponder_gguf_value *v,
                                     ponder_error *err);
ponder_status ponder_gguf_writer_set_u32(ponder_gguf_writer *w, const char *key, uint32_t v, ponder_error *err);
ponder_status ponder_gguf_writer_set_f32(ponder_gguf_writer *w, const char *key, float v, ponder_error *err);
ponder_status ponder_gguf_writer_set_bool(ponder_gguf_writer *w, const char *key, bool v, ponder_error *err);
ponder_status ponder_gguf_writer_set_str(ponder_gguf_writer *w, const char *key, const char *v, ponder_error *err);
/* Copies every key of `src` (except general.alignment), preserving types. */
ponder_status ponder_gguf_writer_copy_kv(ponder_gguf_writer *w, const ponder_gguf *src, ponder_error *err);
/* Adds a tensor; `data` must hold the tensor's exact byte size for (type, ne). */
ponder_status ponder_gguf_writer_add_tensor(ponder_gguf_writer *w, const char *name, ponder_type type,
                                            uint32_t n_dims, const int64_t *ne, const void *data,
                                            ponder_error *err);
/* Writes the file crash-safely (ponder_atomic_file: a temporary file beside `path`, synced
 * and renamed over it), so a kill at any moment leaves the previous file or none. */
ponder_status ponder_gguf_writer_write(ponder_gguf_writer *w, const char *path, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_GGUF_H */
