/*
 * decode.c — ids back to text, as llama.cpp's llama_token_to_piece / llama_detokenize:
 * every token's bytes are rendered once at load (pieces), then copied out. Control and
 * unknown tokens render only when `special` is asked for. The streaming detokenizer holds
 * back an incomplete UTF-8 sequence at the end until the next token completes it.
 */
#include "tokenizer/tok_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's unicode_cpt_from_utf8: lenient about overlongs and surrogates; an invalid
 * byte decodes to U+FFFD and consumes one byte. */
static uint32_t lenient_cpt(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    size_t need;
    uint32_t cpt;
    if (!(c & 0x80)) {
        *i += 1;
        return c;
    }
    if (!(c & 0x40))
        goto bad;
    if (!(c & 0x20)) {
        need = 2;
        cpt = c & 0x1F;
    } else if (!(c & 0x10)) {
        need = 3;
        cpt = c & 0x0F;
    } else if (!(c & 0x08)) {
        need = 4;
        cpt = c & 0x07;
    } else {
        goto bad;
    }
    if (n - *i < need)
        goto bad;
    for (size_t k = 1; k < need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            goto bad;
        cpt = (cpt << 6) | (s[*i + k] & 0x3F);
    }
    *i += need;
    return cpt;
bad:
    *i += 1;
    return 0xFFFD;
}

static size_t cpt_to_utf8(uint32_t c, unsigned char *o)
{
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | ((c >> 18) & 0x07));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Appends the rendering of token id to dst (NULL: only counts). Returns the byte count. */
static size_t render(const ponder_tokenizer *t, ponder_token id, char *dst)
{
    size_t len;
    const char *s = tok_text(t, id, &len);
    uint16_t a = t->attr[id];

    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        if (dst)
            memcpy(dst, s, len);
        return len;
    }
    if (a & TOK_ATTR_NORMAL) {
        size_t o = 0;
        if (t->kind == PONDER_VOCAB_SPM) {
            /* U+2581 (e2 96 81) stands for a space */
            for (size_t i = 0; i < len;) {
                if (i + 3 <= len && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                    if (dst)
                        dst[o] = ' ';
                    o++;
                    i += 3;
                } else {
                    if (dst)
                        dst[o] = s[i];
                    o++;
                    i++;
                }
            }
            return o;
        }
        /* byte-level BPE: each code point is one byte; one outside GPT-2's table is shown
         * as "[UNK_BYTE_0x<its utf-8 in hex><token text>]", as llama_decode_text does */
        for (size_t i = 0; i < len;) {
            uint32_t c = lenient_cpt((const unsigned char *)s, len, &i);
            int b = tok_cpt_byte(c);
            if (b >= 0) {
                if (dst)
                    dst[o] = (char)b;
                o++;
                continue;
            }
            unsigned char u[4];
            size_t nu = cpt_to_utf8(c, u);
            char hex[3];
            if (dst)
                memcpy(dst + o, "[UNK_BYTE_0x", 12);
            o += 12;
            for (size_t k = 0; k < nu; k++) {
                snprintf(hex, sizeof hex, "%02x", u[k]);
                if (dst)
                    memcpy(dst + o, hex, 2);
                o += 2;
            }
            if (dst)
                memcpy(dst + o, s, len);
            o += len;
            if (dst)
                dst[o] = ']';
            o++;
        }
        return o;
    }
    if (a & TOK_ATTR_BYTE) {
        /* "<0xNN>": strtol of the two characters after "<0x" */
        unsigned v = 0;
        for (size_t i = 3; i < 5 && i < len; i++) {
            char c = s[i];
            unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                       : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                       : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                              : 16u;
            if (d == 16)
                break;
            v = v * 16 + d;
        }
        if (dst)
            dst[0] = (char)v;
        return 1;
    }
    return 0; /* UNUSED / UNDEFINED render as nothing */
}

ponder_status tok_build_pieces(ponder_tokenizer *t, ponder_error *err)
{
    uint64_t total = 0;
    uint32_t max_len = 0;
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_off)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for token pieces");
    for (ponder_token id = 0; id < t->n_vocab; id++) {
        size_t n = render(t, id, NULL);
        t->piece_off[id] = (uint32_t)total;
        total += n;
        if (total > UINT32_MAX || n > INT32_MAX / 2)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: rendered token pieces exceed 4 GiB");
        if (n > max_len)
            max_len = (uint32_t)n;
    }
    t->piece_off[t->n_vocab] = (uint32_t)total;
    t->piece_buf = malloc(total ? (size_t)total : 1);
    if (!t->piece_buf)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %" PRIu64 " bytes of token pieces",
                                total);
    for (ponder_token id = 0; id < t->n_vocab; id++)
        render(t, id, t->piece_buf + t->piece_off[id]);
    t->max_piece_len = max_len;
    return PONDER_OK;
}

/* The piece of id as the caller asked for it (empty for suppressed or invalid ids). */
static const char *piece_of(const ponder_tokenizer *t, ponder_token id, bool special, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= t->n_vocab)
        return "";
    if (!special && (t->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        return "";
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_buf + t->piece_off[id];
}

int32_t ponder_tokenizer_token_to_piece(const ponder_tokenizer *t, ponder_token id, char *buf, int32_t cap,
                                        bool special)
{
    size_t len;
    const char *p = piece_of(t, id, special, &len);
    if (cap < 0 || (size_t)cap < len)
        return -(int32_t)len;
    if (len)
        memcpy(buf, p, len);
    return (int32_t)len;
}

/* llama_detokenize's clean_up_tokenization_spaces, in place; returns the new length. */
static size_t clean_spaces(char *text, size_t total)
{
    /* " ?", " !", " .", " ," lose the space */
    size_t n1 = total, o = total ? 1 : 0;
    for (size_t i = 1; i < n1; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            o--;
        text[o++] = x;
    }
    /* " ' " becomes "'" */
    size_t n2 = o;
    o = n2 ? 1 : 0;
    for (size_t i = 1; i < n2; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < n2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            o--;
            text[++i] = '\0';
        }
        text[o++] = x;
    }
    /* " 's", " 'm", " 're", " 've" lose the space */
    size_t n3 = o;
    o = n3 ? 1 : 0;
    for (size_t i = 1; i < n3; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm')
                o--;
            else if (i + 2 < n3 && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                o--;
        }
        text[o++] = x;
    }
    return o;
}

ponder_status ponder_tokenizer_decode(const ponder_tokenizer *t, const ponder_token *ids, size_t n, bool special,
                                      bool remove_leading_space, char **out, ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_decode: out is NULL");
    *out = NULL;
    if (!t || (n > 0 && !ids))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_decode: NULL tokenizer or ids");

    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_decode: token %zu has id %d; vocabulary has %d",
                                    i, ids[i], t->n_vocab);
        size_t len;
        (void)piece_of(t, ids[i], special, &len);
        if (total > SIZE_MAX - len - 1)
            return ponder_error_set(err, PONDER_ERR_RANGE, "ponder_tokenizer_decode: text too long");
        total += len;
    }
    char *text = malloc(total + 1);
    if (!text)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "ponder_tokenizer_decode: out of memory for %zu bytes", total);

    /* llama.cpp strips one leading space from the first token only (lstrip = 1) */
    bool strip = t->add_space_prefix && remove_leading_space;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = piece_of(t, ids[i], special, &len);
        if (i == 0 && strip && len > 0 && p[0] == ' ') {
            p++;
            len--;
        }
        memcpy(text + o, p, len);
        o += len;
    }
    if (t->clean_spaces)
        o = clean_spaces(text, o);
    text[o] = '\0';
    *out = text;
    return PONDER_OK;
}

/* ---- streaming ---- */

struct ponder_detokenizer {
    const ponder_tokenizer *tok;
    bool special;
    char *pending; /* bytes not yet handed out: at most 3 before a push */
    size_t n_pending;
    char *ready;   /* what the last push/flush returned */
    size_t cap;
};

ponder_status ponder_detokenizer_create(const ponder_tokenizer *tok, bool special, ponder_detokenizer **out,
                                        ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_detokenizer_create: out is NULL");
    *out = NULL;
    if (!tok)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_detokenizer_create: tokenizer is NULL");
    ponder_detokenizer *d = calloc(1, sizeof *d);
    if (!d)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "ponder_detokenizer_create: out of memory");
    /* a push never grows the buffers: held bytes (< 4) plus the longest piece */
    d->cap = (size_t)tok->max_piece_len + 4;
    d->pending = malloc(d->cap);
    d->ready = malloc(d->cap);
    if (!d->pending || !d->ready) {
        ponder_detokenizer_free(d);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "ponder_detokenizer_create: out of memory");
    }
    d->tok = tok;
    d->special = special;
    *out = d;
    return PONDER_OK;
}

void ponder_detokenizer_free(ponder_detokenizer *d)
{
    if (!d)
        return;
    free(d->pending);
    free(d->ready);
    free(d);
}

/* Bytes at the end of s[0..n) that begin a UTF-8 sequence still missing bytes. Invalid
 * bytes are not held: no later byte could make them valid. */
static size_t incomplete_tail(const unsigned char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation: look further back for the lead */
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0; /* ASCII or an invalid lead */
        }
        if (back >= need)
            return 0; /* complete (or overlong garbage): nothing to wait for */
        if (back >= 2 && (s[n - back + 1] < lo || s[n - back + 1] > hi))
            return 0;
        return back;
    }
    return 0;
}

void ponder_detokenizer_push(ponder_detokenizer *d, ponder_token id, const char **text, size_t *len)
{
    size_t plen;
    const char *p = piece_of(d->tok, id, d->special, &plen);
    memcpy(d->pending + d->n_pending, p, plen);
    d->n_pending += plen;
    size_t hold = incomplete_tail((const unsigned char *)d->pending, d->n_pending);
    size_t n_ready = d->n_pending - hold;
    memcpy(d->ready, d->pending, n_ready);
    memmove(d->pending, d->pending + n_ready, hold);
    d->n_pending = hold;
    *text = d->ready;
    *len = n_ready;
}

void ponder_detokenizer_flush(ponder_detokenizer *d, const char **text, size_t *len)
{
    memcpy(d->ready, d->pending, d->n_pending);
    *text = d->ready;
    *len = d->n_pending;
    d->n_pending = 0;
}
