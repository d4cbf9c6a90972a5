/*
 * content.c — a conversation rendered and tokenized so that content is content: the
 * template's own text is tokenized with special-token parsing (its <|im_start|> is the real
 * token), the messages' contents without it, so a user who writes
 * "<|im_end|><|im_start|>system ..." gets plain text, not a forged turn. Contents are
 * wrapped in private sentinels before rendering, the sentinels are cut out of the output
 * and the spans between them are the plain spans of ponder_tokenizer_encode_spans. A
 * template may trim a content (Llama 3, Gemma): the sentinels go inside the surrounding
 * whitespace, so trimming gives the same text. The text is one piece for the tokenizer,
 * cut only at the template's specials, so contents without special-token texts give the
 * very ids of tokenizing the whole rendering with parse_special.
 */
#include "ponder/chat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SENT_MAX = 32 };

typedef struct sentinels {
    char open[SENT_MAX], close[SENT_MAX];
} sentinels;

static bool py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* True when s (or a string anywhere under v) contains needle. */
static bool any_contains(const json_t *v, const char *needle)
{
    if (json_is_string(v))
        return memmem(json_string_value(v), json_string_length(v), needle, strlen(needle)) != NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (any_contains(json_array_get(v, i), needle))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (strstr(k, needle) || any_contains(x, needle))
                return true;
        }
    }
    return false;
}

/* A content string with the sentinels inside its surrounding whitespace. */
static json_t *wrapped(const json_t *s, const sentinels *m)
{
    const char *t = json_string_value(s);
    size_t n = json_string_length(s), a = 0, b = n;
    while (a < n && py_space(t[a]))
        a++;
    while (b > a && py_space(t[b - 1]))
        b--;
    if (a == b)
        return json_incref((json_t *)s);
    size_t lo = strlen(m->open), lc = strlen(m->close);
    char *w = malloc(n + lo + lc + 1);
    if (!w)
        return NULL;
    memcpy(w, t, a);
    memcpy(w + a, m->open, lo);
    memcpy(w + a + lo, t + a, b - a);
    memcpy(w + lo + b, m->close, lc);
    memcpy(w + lo + b + lc, t + b, n - b);
    json_t *r = json_stringn(w, n + lo + lc);
    free(w);
    return r;
}

/* Wraps every message's content (a string, or the text of each content part). */
static bool wrap_contents(json_t *vars, const sentinels *m)
{
    json_t *msgs = json_object_get(vars, "messages");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *msg = json_array_get(msgs, i);
        json_t *c = json_object_get(msg, "content");
        if (json_is_string(c)) {
            if (json_object_set_new(msg, "content", wrapped(c, m)) != 0)
                return false;
        } else if (json_is_array(c)) {
            for (size_t k = 0; k < json_array_size(c); k++) {
                json_t *part = json_array_get(c, k);
                json_t *tx = json_object_get(part, "text");
                if (json_is_string(tx) && json_object_set_new(part, "text", wrapped(tx, m)) != 0)
                    return false;
            }
        }
    }
    return true;
}

typedef struct spans {
    ponder_text_span *v;
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t off, size_t len)
{
    if (len == 0)
        return true;
    if (s->n && s->v[s->n - 1].off + s->v[s->n - 1].len == off) {
        s->v[s->n - 1].len += len;
        return true;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        ponder_text_span *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (ponder_text_span){ off, len };
    return true;
}

/* Cuts the sentinels out of text in place (the result is *len bytes) and records the
 * spans between them. An opening sentinel the template cut the close of runs to the end:
 * the safe side. */
static bool cut_sentinels(char *text, size_t *len, const sentinels *m, spans *sp)
{
    size_t lo = strlen(m->open), lc = strlen(m->close), r = 0, w = 0, start = 0;
    bool open = false;
    while (r < *len) {
        if (*len - r >= lo && memcmp(text + r, m->open, lo) == 0) {
            if (!open)
                start = w;
            open = true;
            r += lo;
        } else if (*len - r >= lc && memcmp(text + r, m->close, lc) == 0) {
            if (open && !spans_push(sp, start, w - start))
                return false;
            open = false;
            r += lc;
        } else {
            text[w++] = text[r++];
        }
    }
    if (open && !spans_push(sp, start, w - start))
        return false;
    text[w] = '\0';
    *len = w;
    return true;
}

ponder_status ponder_chat_tokenize(const ponder_chat_template *t, const ponder_tokenizer *tok, const char *vars_json,
                                   size_t vars_len, const char *suffix, bool add_special,
                                   bool parse_special_in_content, ponder_token **ids, size_t *n, ponder_error *err)
{
    if (!t || !tok || !ids || !n || (!vars_json && vars_len))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_chat_tokenize: NULL argument");
    *ids = NULL;
    *n = 0;
    json_error_t je;
    json_t *vars = json_loadb(vars_json ? vars_json : "", vars_len, JSON_ALLOW_NUL, &je);
    if (!vars)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "template variables: bad JSON at line %d, column %d: %s",
                                je.line, je.column, je.text);
    sentinels m;
    ponder_status st = PONDER_OK;
    if (!parse_special_in_content) {
        /* U+10FFFD (private use) and a tag no template or variable holds */
        int k = 0;
        do {
            snprintf(m.open, sizeof m.open, "\xF4\x8F\xBF\xBDponder<%d\xF4\x8F\xBF\xBD", k);
            snprintf(m.close, sizeof m.close, "\xF4\x8F\xBF\xBDponder>%d\xF4\x8F\xBF\xBD", k);
            k++;
        } while ((any_contains(vars, m.open) || any_contains(vars, m.close)) && k < 1000000);
        if (!wrap_contents(vars, &m))
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    char *vjs = st == PONDER_OK ? json_dumps(vars, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(vars);
    if (st != PONDER_OK)
        return st;
    if (!vjs)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    st = ponder_chat_render_json(t, vjs, strlen(vjs), &text, &len, err);
    free(vjs);
    if (st != PONDER_OK)
        return st;
    spans sp = { 0 };
    size_t sl = suffix ? strlen(suffix) : 0;
    if (!parse_special_in_content && !cut_sentinels(text, &len, &m, &sp))
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    if (st == PONDER_OK && sl) {
        /* continue_final_message: the answer so far, verbatim and content */
        char *t2 = realloc(text, len + sl + 1);
        if (!t2 || (!parse_special_in_content && !spans_push(&sp, len, sl))) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
            if (t2)
                text = t2;
        } else {
            text = t2;
            memcpy(text + len, suffix, sl + 1);
            len += sl;
        }
    }
    if (st == PONDER_OK)
        st = ponder_tokenizer_encode_spans(tok, text, len, add_special, true, sp.v, sp.n, ids, n, err);
    free(sp.v);
    free(text);
    return st;
}
