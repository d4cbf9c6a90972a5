/* gguf_build.c — see gguf_build.h. Test-only code: aborts on out-of-memory. */
#include "gguf_build.h"

#include <stdlib.h>
#include <string.h>

void gb_raw(gb *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

void gb_u8(gb *b, uint8_t x) { gb_raw(b, &x, 1); }
void gb_u16(gb *b, uint16_t x) { gb_raw(b, &x, 2); }
void gb_u32(gb *b, uint32_t x) { gb_raw(b, &x, 4); }
void gb_u64(gb *b, uint64_t x) { gb_raw(b, &x, 8); }

void gb_str(gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_raw(b, s, strlen(s));
}

void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_raw(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

void gb_kv_u32(gb *b, const char *key, uint32_t v)
{
    gb_str(b, key);
    gb_u32(b, 4); /* UINT32 */
    gb_u32(b, v);
}

void gb_kv_str(gb *b, const char *key, const char *v)
{
    gb_str(b, key);
    gb_u32(b, 8); /* STRING */
    gb_str(b, v);
}

void gb_tensor(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

void gb_zeros(gb *b, size_t n)
{
    static const uint8_t z[64];
    while (n > 0) {
        size_t k = n < sizeof z ? n : sizeof z;
        gb_raw(b, z, k);
        n -= k;
    }
}

void gb_pad(gb *b, size_t alignment)
{
    gb_zeros(b, (alignment - b->n % alignment) % alignment);
}

void gb_free(gb *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
