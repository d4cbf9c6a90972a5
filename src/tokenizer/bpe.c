/*
 * bpe.c — byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's llm_tokenizer_bpe:
 * the pre-tokenizer splits the text into pieces; each piece's bytes are written as GPT-2
 * byte-level characters; adjacent symbols are merged by merge rank (lowest rank first, ties
 * leftmost) until no listed merge applies; each final symbol becomes its token. A symbol
 * that is not a token is emitted byte by byte of its (byte-level, UTF-8) text, each byte
 * only if it is itself a token — llama.cpp's behaviour, which usually drops such symbols.
 */
#include "tokenizer/tok_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct bpe_sym {
    int prev, next;
    size_t off, n; /* bytes of the encoded word; n = 0 once merged away */
} bpe_sym;


typedef struct bpe_work {
    char *word;    /* byte-level encoding of the current piece */
    bpe_sym *syms; /* one per byte of the piece at most */
    size_t cap;    /* bytes of the largest piece the buffers hold */
    tok_bigram_heap q;
} bpe_work;

static ponder_status add_bigram(const ponder_tokenizer *t, bpe_work *w, int left, int right, ponder_error *err)
{
    if (left < 0 || right < 0)
        return PONDER_OK;
    const bpe_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = tok_map_get_pair(&t->merge_map, w->word + l->off, l->n, w->word + r->off, r->n);
    if (rank < 0)
        return PONDER_OK;
    /* lower rank merges first: the heap pops the highest priority */
    tok_bigram b = {left, right, -(double)rank, l->n + r->n};
    return tok_bigram_push(&w->q, b, err);
}

static ponder_status encode_piece(const ponder_tokenizer *t, bpe_work *w, const unsigned char *piece,
                                  size_t len, tok_ids *out, ponder_error *err)
{
    ponder_status st;

    /* each byte becomes a code point below U+0800: at most 2 UTF-8 bytes */
    size_t wl = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = tok_byte_cpt(piece[i]);
        if (c < 0x80) {
            w->word[wl++] = (char)c;
        } else {
            w->word[wl++] = (char)(0xC0 | (c >> 6));
            w->word[wl++] = (char)(0x80 | (c & 0x3F));
        }
    }

    if (t->ignore_merges) {
        ponder_token id = tok_lookup(t, w->word, wl);
        if (id >= 0)
            return tok_ids_push(out, id, err);
    }

    /* one symbol per byte-level character, i.e. per byte of the piece */
    size_t n_syms = 0;
    for (size_t off = 0; off < wl;) {
        size_t n = tok_utf8_len((unsigned char)w->word[off]);
        w->syms[n_syms].off = off;
        w->syms[n_syms].n = n;
        w->syms[n_syms].prev = (int)n_syms - 1;
        off += n;
        w->syms[n_syms].next = off == wl ? -1 : (int)n_syms + 1;
        n_syms++;
    }

    w->q.n = 0;
    for (size_t i = 1; i < n_syms; i++)
        if ((st = add_bigram(t, w, (int)i - 1, (int)i, err)) != PONDER_OK)
            return st;

    while (w->q.n > 0) {
        tok_bigram b = tok_bigram_pop(&w->q);
        bpe_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        /* stale if a side merged since: the left start is fixed, so equal total size means
         * the same text (llama.cpp compares the strings) */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = b.left;
        if ((st = add_bigram(t, w, l->prev, b.left, err)) != PONDER_OK)
            return st;
        if ((st = add_bigram(t, w, b.left, l->next, err)) != PONDER_OK)
            return st;
    }

    for (int i = 0; i != -1; i = w->syms[i].next) {
        const char *s = w->word + w->syms[i].off;
        size_t n = w->syms[i].n;
        ponder_token id = tok_lookup(t, s, n);
        if (id >= 0) {
            if ((st = tok_ids_push(out, id, err)) != PONDER_OK)
                return st;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            ponder_token b = tok_lookup(t, s + j, 1);
            if (b >= 0 && (st = tok_ids_push(out, b, err)) != PONDER_OK)
                return st;
        }
    }
    return PONDER_OK;
}

ponder_status tok_bpe_encode(const ponder_tokenizer *t, const char *text, size_t len, tok_ids *out,
                             ponder_error *err)
{
    ponder_status st;
    tok_spans pieces = {0};
    bpe_work w = {0};

    if (len == 0)
        return PONDER_OK;
    if (len > (size_t)INT_MAX)
        return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: text of %zu bytes is too long for BPE", len);
    if ((st = tok_pretok_split(&t->pretok, text, len, &pieces, err)) != PONDER_OK)
        goto done;

    size_t max_len = 0;
    for (size_t k = 0; k < pieces.n; k++)
        if (pieces.v[k].len > max_len)
            max_len = pieces.v[k].len;
    w.word = malloc(2 * max_len + 1);
    w.syms = malloc((max_len + 1) * sizeof *w.syms);
    if (!w.word || !w.syms) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte BPE piece", max_len);
        goto done;
    }
    w.cap = max_len;

    for (size_t k = 0; k < pieces.n; k++) {
        st = encode_piece(t, &w, (const unsigned char *)text + pieces.v[k].off, pieces.v[k].len, out, err);
        if (st != PONDER_OK)
            goto done;
    }

done:
    free(pieces.v);
    free(w.word);
    free(w.syms);
    free(w.q.v);
    return st;
}
