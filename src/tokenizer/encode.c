/*
 * encode.c — ponder_tokenizer_encode: validate the text, cut special tokens out of it
 * (llama.cpp's tokenizer_st_partition), tokenize the remaining fragments with SPM or BPE,
 * and add BOS/EOS (llama_vocab::impl::tokenize at c392e509).
 *
 * Special tokens are matched one at a time, longest text first: every occurrence of the
 * first one is cut out of every text fragment, then the second one from what is left, and
 * so on. Without parse_special only USER_DEFINED tokens are cut (Hugging Face pre-splits
 * added tokens the same way); CONTROL and UNKNOWN texts stay plain text.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct frag {
    size_t off, len;    /* raw text span (token < 0) */
    ponder_token token; /* >= 0: an already matched special token */
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static ponder_status frags_push(frags *f, size_t off, size_t len, ponder_token token, ponder_error *err)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *f->v)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: too many text fragments");
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %zu fragments", cap);
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->v[f->n].token = token;
    f->n++;
    return PONDER_OK;
}

/* C-locale isspace, as llama.cpp uses for LSTRIP/RSTRIP */
static inline bool c_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Which byte pairs occur in the text: a cheap test that lets most special tokens skip the
 * scan (deepseek-llm has 2,400 user-defined tokens). */
typedef struct text_index {
    uint64_t pair[65536 / 64];
    uint64_t byte[4];
} text_index;

static void index_text(text_index *ix, const unsigned char *s, size_t n)
{
    memset(ix, 0, sizeof *ix);
    for (size_t i = 0; i < n; i++) {
        ix->byte[s[i] >> 6] |= 1ull << (s[i] & 63);
        if (i + 1 < n) {
            unsigned p = (unsigned)s[i] << 8 | s[i + 1];
            ix->pair[p >> 6] |= 1ull << (p & 63);
        }
    }
}

static bool may_occur(const text_index *ix, const unsigned char *s, size_t n)
{
    if (n == 1)
        return ix->byte[s[0] >> 6] >> (s[0] & 63) & 1;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned p = (unsigned)s[i] << 8 | s[i + 1];
        if (!(ix->pair[p >> 6] >> (p & 63) & 1))
            return false;
    }
    return true;
}

/* True when [off, off+n) overlaps one of the sorted plain spans. */
static bool in_plain(const ponder_text_span *plain, size_t n_plain, size_t off, size_t n)
{
    size_t lo = 0, hi = n_plain;
    while (lo < hi) { /* the first span that ends after off */
        size_t mid = lo + (hi - lo) / 2;
        if (plain[mid].off + plain[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_plain && plain[lo].off < off + n;
}

/* plain: spans where control and unknown texts stay plain text even with parse_special. */
static ponder_status partition(const ponder_tokenizer *t, const char *text, size_t len, bool parse_special,
                               const ponder_text_span *plain, size_t n_plain, frags *cur, ponder_error *err)
{
    ponder_status st = PONDER_OK;
    frags next = {0};
    text_index *ix = NULL;

    cur->n = 0;
    if (len == 0)
        return PONDER_OK;
    if ((st = frags_push(cur, 0, len, PONDER_TOKEN_NULL, err)) != PONDER_OK)
        return st;
    if (t->n_special == 0)
        return PONDER_OK;

    ix = malloc(sizeof *ix);
    if (!ix)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for the text index");
    index_text(ix, (const unsigned char *)text, len);

    for (int32_t k = 0; k < t->n_special; k++) {
        ponder_token id = t->special[k];
        uint16_t attr = t->attr[id];
        if (!parse_special && (attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            continue;
        size_t slen;
        const char *s = tok_text(t, id, &slen);
        if (slen > len || !may_occur(ix, (const unsigned char *)s, slen))
            continue;

        next.n = 0;
        for (size_t f = 0; f < cur->n; f++) {
            frag fr = cur->v[f];
            if (fr.token >= 0 || fr.len < slen) {
                if ((st = frags_push(&next, fr.off, fr.len, fr.token, err)) != PONDER_OK)
                    goto done;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (pos < end) {
                const char *m = memmem(text + pos, end - pos, s, slen);
                bool ctl = attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN);
                /* a control text inside a plain span is not a match: look past its start */
                while (m && ctl && n_plain && in_plain(plain, n_plain, (size_t)(m - text), slen)) {
                    size_t from = (size_t)(m - text) + 1;
                    m = from + slen <= end ? memmem(text + from, end - from, s, slen) : NULL;
                }
                if (!m) {
                    if ((st = frags_push(&next, pos, end - pos, PONDER_TOKEN_NULL, err)) != PONDER_OK)
                        goto done;
                    break;
                }
                size_t ms = (size_t)(m - text);
                size_t left = ms - pos;
                if (attr & TOK_ATTR_LSTRIP)
                    while (left > 0 && c_space(text[pos + left - 1]))
                        left--;
                if (left > 0 && (st = frags_push(&next, pos, left, PONDER_TOKEN_NULL, err)) != PONDER_OK)
                    goto done;
                if ((st = frags_push(&next, 0, 0, id, err)) != PONDER_OK)
                    goto done;
                pos = ms + slen;
                if (pos < end && (attr & TOK_ATTR_RSTRIP))
                    while (pos < end && c_space(text[pos]))
                        pos++;
            }
        }
        frags tmp = *cur;
        *cur = next;
        next = tmp;
    }
done:
    free(next.v);
    free(ix);
    return st;
}

/* SPM input for one fragment: an optional leading space, then every space as U+2581. */
static size_t spm_escape(const char *src, size_t n, bool prefix, char *dst)
{
    size_t o = 0;
    if (prefix) {
        memcpy(dst, "\xE2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (src[i] == ' ') {
            memcpy(dst + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

ponder_status ponder_tokenizer_encode(const ponder_tokenizer *t, const char *text, size_t len, bool add_special,
                                      bool parse_special, ponder_token **out, size_t *n_out, ponder_error *err)
{
    return ponder_tokenizer_encode_spans(t, text, len, add_special, parse_special, NULL, 0, out, n_out, err);
}

ponder_status ponder_tokenizer_encode_spans(const ponder_tokenizer *t, const char *text, size_t len,
                                            bool add_special, bool parse_special, const ponder_text_span *plain,
                                            size_t n_plain, ponder_token **out, size_t *n_out, ponder_error *err)
{
    ponder_status st = PONDER_OK;
    frags fr = {0};
    tok_ids ids = {0};
    char *esc = NULL;

    if (!out || !n_out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_encode: out or n_out is NULL");
    *out = NULL;
    *n_out = 0;
    if (!t || (!text && len > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_encode: NULL tokenizer or text");

    size_t bad = tok_utf8_invalid_at(text, len);
    if (bad < len)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "invalid UTF-8 at byte %zu", bad);

    for (size_t i = 0; i < n_plain; i++)
        if (plain[i].off > len || plain[i].len > len - plain[i].off || (i && plain[i].off < plain[i - 1].off + plain[i - 1].len))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_encode_spans: span %zu is out of order or outside the text", i);
    if ((st = partition(t, text, len, parse_special, plain, n_plain, &fr, err)) != PONDER_OK)
        goto done;

    if (add_special && t->add_bos && (st = tok_ids_push(&ids, t->bos, err)) != PONDER_OK)
        goto done;

    if (t->kind == PONDER_VOCAB_SPM) {
        size_t max_len = 0;
        for (size_t i = 0; i < fr.n; i++)
            if (fr.v[i].token < 0 && fr.v[i].len > max_len)
                max_len = fr.v[i].len;
        if (max_len > (SIZE_MAX - 3) / 3) {
            st = ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: text of %zu bytes is too long", len);
            goto done;
        }
        esc = malloc(3 * max_len + 3);
        if (!esc) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", 3 * max_len + 3);
            goto done;
        }
        /* llama.cpp prefixes the space to the first fragment and to every fragment that
         * follows a special token */
        bool prev_special = true;
        for (size_t i = 0; i < fr.n; i++) {
            if (fr.v[i].token >= 0) {
                st = tok_ids_push(&ids, fr.v[i].token, err);
                prev_special = true;
            } else {
                size_t n = spm_escape(text + fr.v[i].off, fr.v[i].len, t->add_space_prefix && prev_special, esc);
                st = tok_spm_encode(t, esc, n, &ids, err);
                prev_special = false;
            }
            if (st != PONDER_OK)
                goto done;
        }
    } else {
        for (size_t i = 0; i < fr.n; i++) {
            if (fr.v[i].token >= 0)
                st = tok_ids_push(&ids, fr.v[i].token, err);
            else
                st = tok_bpe_encode(t, text + fr.v[i].off, fr.v[i].len, &ids, err);
            if (st != PONDER_OK)
                goto done;
        }
    }

    if (add_special && t->add_eos && (st = tok_ids_push(&ids, t->eos, err)) != PONDER_OK)
        goto done;

    if (!ids.v) {
        ids.v = malloc(sizeof *ids.v); /* callers free() the result even when it is empty */
        if (!ids.v) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
    }
    *out = ids.v;
    *n_out = ids.n;
    ids.v = NULL;
done:
    free(ids.v);
    free(fr.v);
    free(esc);
    return st;
}
