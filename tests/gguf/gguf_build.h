/*
 * gguf_build.h — a byte-level GGUF builder for tests and the fuzz seed generator. It
 * writes whatever it is told, including malformed fields, so each test can craft
 * exactly one defect. Values are little-endian as the spec requires.
 */
#ifndef PONDER_TEST_GGUF_BUILD_H
#define PONDER_TEST_GGUF_BUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct gb {
    uint8_t *p;
    size_t n, cap;
} gb;

void gb_raw(gb *b, const void *p, size_t n);
void gb_u8(gb *b, uint8_t x);
void gb_u16(gb *b, uint16_t x);
void gb_u32(gb *b, uint32_t x);
void gb_u64(gb *b, uint64_t x);
void gb_str(gb *b, const char *s); /* u64 length + bytes (no NUL) */
void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
void gb_kv_u32(gb *b, const char *key, uint32_t v);
void gb_kv_str(gb *b, const char *key, const char *v);
/* Tensor info with n_dims entries of ne. */
void gb_tensor(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset);
void gb_pad(gb *b, size_t alignment);  /* zeros up to a multiple of alignment */
void gb_zeros(gb *b, size_t n);
void gb_free(gb *b);

#endif
