/*
 * spm.c — SentencePiece-style tokenization (tokenizer.ggml.model = "llama"), as llama.cpp's
 * llm_tokenizer_spm: start from one symbol per UTF-8 character, repeatedly merge the
 * adjacent pair whose concatenation is the vocabulary token with the highest score (ties:
 * the leftmost pair), then emit each final symbol's token. A symbol that is not a token
 * (a character no merge reached) falls back to one byte token <0xNN> per byte.
 *
 * The caller has already added the leading space and replaced spaces by U+2581.
 */
#include "tokenizer/tok_internal.h"

#include <limits.h>
#include <stdlib.h>

typedef struct spm_sym {
    int prev, next; /* neighbours in the live chain, -1 at the ends */
    size_t off, n;  /* bytes of the text; n = 0 once merged into the left neighbour */
} spm_sym;


static ponder_status try_add_bigram(const ponder_tokenizer *t, const char *text, const spm_sym *syms,
                                    int left, int right, tok_bigram_heap *q, ponder_error *err)
{
    if (left < 0 || right < 0)
        return PONDER_OK;
    size_t size = syms[left].n + syms[right].n;
    ponder_token id = tok_lookup(t, text + syms[left].off, size);
    if (id < 0)
        return PONDER_OK;
    tok_bigram b = {left, right, t->scores[id], size};
    return tok_bigram_push(q, b, err);
}

static ponder_status emit_bytes(const ponder_tokenizer *t, const unsigned char *s, size_t n, size_t at,
                                tok_ids *out, ponder_error *err)
{
    for (size_t j = 0; j < n; j++) {
        ponder_token id = t->byte_tok[s[j]];
        if (id < 0)
            id = t->unk; /* llama.cpp throws here; SentencePiece would emit <unk> */
        if (id < 0)
            return ponder_error_set(err, PONDER_ERR_NOT_FOUND,
                                    "tokenizer: byte 0x%02X at text byte %zu has no token (no <0x%02X>, no unknown token)",
                                    s[j], at + j, s[j]);
        ponder_status st = tok_ids_push(out, id, err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

/* Tokenizes symbols [lo, hi) on their own (no token can span their outer edges). */
static ponder_status encode_segment(const ponder_tokenizer *t, const char *text, spm_sym *syms, int lo, int hi,
                                    tok_bigram_heap *q, tok_ids *out, ponder_error *err)
{
    ponder_status st;
    for (int i = lo; i < hi; i++) {
        syms[i].prev = i == lo ? -1 : i - 1;
        syms[i].next = i == hi - 1 ? -1 : i + 1;
    }

    q->n = 0;
    for (int i = lo + 1; i < hi; i++)
        if ((st = try_add_bigram(t, text, syms, i - 1, i, q, err)) != PONDER_OK)
            return st;

    while (q->n > 0) {
        tok_bigram b = tok_bigram_pop(q);
        spm_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* one side already merged elsewhere */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        if ((st = try_add_bigram(t, text, syms, l->prev, b.left, q, err)) != PONDER_OK)
            return st;
        if ((st = try_add_bigram(t, text, syms, b.left, l->next, q, err)) != PONDER_OK)
            return st;
    }

    /* Every merged symbol is a token (merges only form tokens), so llama.cpp's resegment
     * reduces to: token if the text is one, else byte fallback. */
    for (int i = lo; i != -1; i = syms[i].next) {
        const char *s = text + syms[i].off;
        ponder_token id = tok_lookup(t, s, syms[i].n);
        if (id >= 0)
            st = tok_ids_push(out, id, err);
        else
            st = emit_bytes(t, (const unsigned char *)s, syms[i].n, syms[i].off, out, err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

ponder_status tok_spm_encode(const ponder_tokenizer *t, const char *text, size_t len, tok_ids *out,
                             ponder_error *err)
{
    ponder_status st = PONDER_OK;
    spm_sym *syms = NULL;
    tok_bigram_heap q = {0};
    int n_syms = 0;

    if (len == 0)
        return PONDER_OK;
    if (len > (size_t)INT_MAX)
        return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: text of %zu bytes is too long for SPM", len);

    syms = malloc(len * sizeof *syms); /* at most one symbol per byte */
    if (!syms)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %zu SPM symbols", len);
    for (size_t off = 0; off < len;) {
        size_t n = tok_utf8_len((unsigned char)text[off]);
        if (n > len - off)
            n = len - off;
        syms[n_syms].off = off;
        syms[n_syms].n = n;
        n_syms++;
        off += n;
    }

    /* cut where two neighbouring characters never occur side by side in a token */
    int lo = 0;
    for (int i = 1; i <= n_syms; i++) {
        if (i < n_syms && tok_map_get(&t->spm_pairs, text + syms[i - 1].off, syms[i - 1].n + syms[i].n) >= 0)
            continue;
        if ((st = encode_segment(t, text, syms, lo, i, &q, out, err)) != PONDER_OK)
            break;
        lo = i;
    }

    free(syms);
    free(q.v);
    return st;
}
