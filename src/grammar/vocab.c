/*
 * vocab.c — the vocabulary as the grammar matcher walks it: every token's bytes, and the
 * tokens sorted by those bytes with each one's common prefix with the one before, so a
 * mask is one pass in which a shared prefix is matched once and a prefix the grammar
 * rejects is skipped with every token that starts with it (first[] jumps over a whole
 * first byte at once). End-of-generation tokens and empty pieces are left out of the
 * walk: the first are allowed only when the grammar is complete, the second never.
 */
#include "grammar/grammar_vocab.h"

#include <stdlib.h>
#include <string.h>

typedef struct sort_item {
    const unsigned char *p;
    uint32_t len;
    int32_t id;
} sort_item;

static int item_cmp(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    const uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

ponder_status ponder_grammar_vocab_create(int32_t n_vocab, const char *const *pieces, const int32_t *lens,
                                          const bool *is_eog, ponder_grammar_vocab **out, ponder_error *err)
{
    if (!out || n_vocab <= 0 || !pieces || !lens)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar vocabulary: bad arguments");
    *out = NULL;
    size_t total = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (lens[i] < 0 || (lens[i] > 0 && !pieces[i]))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar vocabulary: token %d has no bytes", i);
        total += (size_t)lens[i];
    }
    ponder_grammar_vocab *v = calloc(1, sizeof *v);
    sort_item *items = malloc((size_t)n_vocab * sizeof *items);
    if (!v || !items)
        goto nomem;
    v->n_vocab = n_vocab;
    v->bytes = malloc(total + 1);
    v->off = malloc((size_t)n_vocab * sizeof *v->off);
    v->len = malloc((size_t)n_vocab * sizeof *v->len);
    v->is_eog = calloc((size_t)n_vocab, sizeof *v->is_eog);
    v->order = malloc((size_t)n_vocab * sizeof *v->order);
    v->lcp = malloc((size_t)n_vocab * sizeof *v->lcp);
    v->eog = malloc((size_t)n_vocab * sizeof *v->eog);
    if (!v->bytes || !v->off || !v->len || !v->is_eog || !v->order || !v->lcp || !v->eog)
        goto nomem;
    size_t o = 0;
    int32_t n_items = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        v->off[i] = (uint32_t)o;
        v->len[i] = (uint32_t)lens[i];
        if (lens[i] > 0)
            memcpy(v->bytes + o, pieces[i], (size_t)lens[i]);
        o += (size_t)lens[i];
        if (is_eog && is_eog[i]) {
            v->is_eog[i] = true;
            v->eog[v->n_eog++] = i;
            continue;
        }
        if (lens[i] == 0)
            continue;
        if (v->len[i] > v->max_len)
            v->max_len = v->len[i];
    }
    for (int32_t i = 0; i < n_vocab; i++)
        if (!v->is_eog[i] && lens[i] > 0)
            items[n_items++] = (sort_item){ (const unsigned char *)v->bytes + v->off[i], v->len[i], i };
    qsort(items, (size_t)n_items, sizeof *items, item_cmp);
    for (int32_t i = 0; i < n_items; i++) {
        v->order[i] = items[i].id;
        uint32_t l = 0;
        if (i > 0) {
            const uint32_t m = items[i].len < items[i - 1].len ? items[i].len : items[i - 1].len;
            while (l < m && items[i].p[l] == items[i - 1].p[l])
                l++;
        }
        v->lcp[i] = l;
    }
    v->n_sorted = n_items;
    /* first[b]: the first sorted index whose first byte is >= b */
    int32_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < n_items && items[k].p[0] < b)
            k++;
        v->first[b] = k;
    }
    free(items);
    *out = v;
    return PONDER_OK;
nomem:
    free(items);
    ponder_grammar_vocab_free(v);
    return ponder_error_set(err, PONDER_ERR_NOMEM, "grammar vocabulary: out of memory (%d tokens)", n_vocab);
}

ponder_status ponder_grammar_vocab_from_tokenizer(const ponder_tokenizer *tok, ponder_grammar_vocab **out,
                                                  ponder_error *err)
{
    if (!tok || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar vocabulary: NULL tokenizer");
    const int32_t n = ponder_tokenizer_n_vocab(tok);
    char **pieces = calloc((size_t)n, sizeof *pieces);
    int32_t *lens = calloc((size_t)n, sizeof *lens);
    bool *eog = calloc((size_t)n, sizeof *eog);
    ponder_status st = PONDER_OK;
    if (!pieces || !lens || !eog) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "grammar vocabulary: out of memory");
        goto done;
    }
    char buf[256];
    for (int32_t i = 0; i < n; i++) {
        int32_t m = ponder_tokenizer_token_to_piece(tok, i, buf, (int32_t)sizeof buf, false);
        if (m < 0) {
            pieces[i] = malloc((size_t)-m);
            if (!pieces[i]) {
                st = ponder_error_set(err, PONDER_ERR_NOMEM, "grammar vocabulary: out of memory");
                goto done;
            }
            m = ponder_tokenizer_token_to_piece(tok, i, pieces[i], -m, false);
        } else if (m > 0) {
            pieces[i] = malloc((size_t)m);
            if (!pieces[i]) {
                st = ponder_error_set(err, PONDER_ERR_NOMEM, "grammar vocabulary: out of memory");
                goto done;
            }
            memcpy(pieces[i], buf, (size_t)m);
        }
        lens[i] = m > 0 ? m : 0;
        eog[i] = ponder_tokenizer_is_eog(tok, i);
    }
    st = ponder_grammar_vocab_create(n, (const char *const *)pieces, lens, eog, out, err);
done:
    if (pieces)
        for (int32_t i = 0; i < n; i++)
            free(pieces[i]);
    free(pieces);
    free(lens);
    free(eog);
    return st;
}

void ponder_grammar_vocab_free(ponder_grammar_vocab *v)
{
    if (!v)
        return;
    free(v->bytes);
    free(v->off);
    free(v->len);
    free(v->is_eog);
    free(v->order);
    free(v->lcp);
    free(v->eog);
    free(v);
}

int32_t ponder_grammar_vocab_n(const ponder_grammar_vocab *v)
{
    return v ? v->n_vocab : 0;
}

ponder_status gr_vocab_bytes(ponder_grammar_vocab **out, ponder_error *err)
{
    char bytes[256];
    const char *pieces[257];
    int32_t lens[257];
    bool eog[257] = { 0 };
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    pieces[256] = NULL;
    lens[256] = 0;
    eog[256] = true;
    return ponder_grammar_vocab_create(257, pieces, lens, eog, out, err);
}
