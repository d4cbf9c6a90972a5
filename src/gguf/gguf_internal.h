/*
 * gguf_internal.h — pieces shared by the GGUF reader, accessors and writer: the on-disk
 * sizes of value types, the nesting cap, the name index and deep value freeing.
 */
#ifndef PONDER_GGUF_INTERNAL_H
#define PONDER_GGUF_INTERNAL_H

#include "ponder/gguf.h"

#include <stddef.h>
#include <stdint.h>

/* Arrays of arrays may nest this deep (the top-level array is depth 1). The spec sets no
 * limit; without one a file of nested headers (12 bytes each) would recurse once per 12
 * bytes and exhaust the stack. No known writer nests at all. */
#define PONDER_GGUF_MAX_ARRAY_DEPTH 16

/* GGML_MAX_NAME: llama.cpp's gguf reader rejects tensor names of this many bytes or more,
 * so the writer refuses them (the reader accepts them). */
#define GGUF_LLAMA_MAX_NAME 64

/* Bytes a scalar of type t occupies in the file; 0 for STRING/ARRAY/unknown. */
size_t gguf_scalar_size(ponder_gguf_type t);

/* Fewest bytes one value of type t can occupy in the file (used to bound counts before
 * allocating): the scalar size, 8 for a string (its length), 12 for an array (type+count). */
size_t gguf_min_value_bytes(ponder_gguf_type t);

/* Frees what a value owns: the `elems` arrays of STRING/ARRAY arrays, recursively. When
 * `owns_data` (writer copies) also the string bytes and numeric array data. Safe on
 * partially built values as long as unbuilt parts are zeroed. */
void gguf_value_free(ponder_gguf_value *v, bool owns_data);

/* Open-addressing hash index from names to positions 0..n-1. The names themselves live
 * elsewhere and are reached through `name_at`, so the index stores only positions. */
typedef const char *(*gguf_name_fn)(const void *ctx, uint64_t i);

typedef struct gguf_index {
    uint64_t *slots; /* position + 1; 0 = empty */
    uint64_t cap;    /* power of two, at least twice the number of entries */
} gguf_index;

ponder_status gguf_index_init(gguf_index *ix, uint64_t n, ponder_error *err);
void gguf_index_free(gguf_index *ix);
/* Position of `name`, or -1. */
int64_t gguf_index_find(const gguf_index *ix, const char *name, gguf_name_fn name_at, const void *ctx);
/* Inserts position i (whose name is name_at(ctx, i)); returns the existing position if
 * the name is already present (nothing inserted), else -1. */
int64_t gguf_index_insert(gguf_index *ix, uint64_t i, gguf_name_fn name_at, const void *ctx);

#endif /* PONDER_GGUF_INTERNAL_H */
