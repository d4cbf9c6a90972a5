/*
 * util.c — small pieces the tokenizer files share: a byte-string hash map (token text ->
 * id, merge "a b" -> rank), strict UTF-8 validation and a growable id list.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64-bit. Streamed so that "a b" can be hashed from its two halves. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static inline uint64_t fnv_feed(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

ponder_status tok_map_init(tok_map *m, size_t n_expected, ponder_error *err)
{
    /* load factor <= 1/2 keeps probe chains short */
    size_t n_slots = 16;
    while (n_slots < n_expected * 2) {
        if (n_slots > SIZE_MAX / 4 / sizeof(tok_map_entry))
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: hash map for %zu keys is too large",
                                    n_expected);
        n_slots *= 2;
    }
    m->slots = calloc(n_slots, sizeof *m->slots);
    if (!m->slots)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for a %zu-slot hash map",
                                n_slots);
    m->mask = n_slots - 1;
    m->n = 0;
    return PONDER_OK;
}

void tok_map_free(tok_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
    m->n = 0;
}

bool tok_map_insert(tok_map *m, const char *key, size_t len, int32_t val)
{
    size_t i = (size_t)fnv_feed(FNV_OFFSET, key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        tok_map_entry *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->len = (uint32_t)len;
            e->val = val;
            m->n++;
            return true;
        }
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return false;
    }
}

int32_t tok_map_get(const tok_map *m, const char *key, size_t len)
{
    size_t i = (size_t)fnv_feed(FNV_OFFSET, key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const tok_map_entry *e = &m->slots[i];
        if (!e->key)
            return -1;
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e->val;
    }
}

int32_t tok_map_get_pair(const tok_map *m, const char *a, size_t a_len, const char *b, size_t b_len)
{
    uint64_t h = fnv_feed(FNV_OFFSET, a, a_len);
    h = fnv_feed(h, " ", 1);
    h = fnv_feed(h, b, b_len);
    size_t len = a_len + 1 + b_len;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const tok_map_entry *e = &m->slots[i];
        if (!e->key)
            return -1;
        if (e->len == len && memcmp(e->key, a, a_len) == 0 && e->key[a_len] == ' ' &&
            memcmp(e->key + a_len + 1, b, b_len) == 0)
            return e->val;
    }
}

size_t tok_utf8_invalid_at(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        const size_t n = ponder_utf8_len(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

ponder_status tok_ids_push(tok_ids *ids, ponder_token id, ponder_error *err)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *ids->v)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: too many tokens");
        ponder_token *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %zu token ids", cap);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return PONDER_OK;
}

/* ---- the merge queue (a binary heap) ---- */

static inline bool bigram_before(const tok_bigram *a, const tok_bigram *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

ponder_status tok_bigram_push(tok_bigram_heap *h, tok_bigram b, ponder_error *err)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *h->v)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: merge queue too large");
        tok_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for the merge queue");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return PONDER_OK;
}

tok_bigram tok_bigram_pop(tok_bigram_heap *h)
{
    tok_bigram top = h->v[0];
    tok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!bigram_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}
