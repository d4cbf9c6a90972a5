/*
 * data.c — training data: plain text cut into context windows, or JSONL prompt/completion
 * pairs with the loss on the completion only (see train.h for the exact rules).
 *
 * A completion is tokenized together with its prompt, as the model will see it when it
 * continues that prompt; the loss starts at the first token past the longest common
 * prefix with the prompt's own tokens, so a merge across the boundary is still learned.
 */
#include "train/train_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_MAX_FILE_BYTES ((size_t)1 << 31) /* 2 GiB: far beyond what a CPU run reads */

struct ponder_train_data {
    int32_t *tokens; /* all sequences back to back */
    uint8_t *mask;
    int64_t n_tokens, cap_tokens;
    int64_t *start; /* (n_seqs + 1) offsets into tokens */
    int64_t n_seqs, cap_seqs;
    int64_t n_skipped;
};

static bool grow(ponder_train_data *d, int64_t more_tokens)
{
    if (d->n_tokens + more_tokens > d->cap_tokens) {
        int64_t cap = d->cap_tokens ? d->cap_tokens : 4096;
        while (cap < d->n_tokens + more_tokens)
            cap *= 2;
        int32_t *t = realloc(d->tokens, (size_t)cap * sizeof *t);
        if (!t)
            return false;
        d->tokens = t;
        uint8_t *m = realloc(d->mask, (size_t)cap);
        if (!m)
            return false;
        d->mask = m;
        d->cap_tokens = cap;
    }
    if (d->n_seqs + 2 > d->cap_seqs) {
        int64_t cap = d->cap_seqs ? d->cap_seqs * 2 : 256;
        int64_t *s = realloc(d->start, (size_t)cap * sizeof *s);
        if (!s)
            return false;
        d->start = s;
        d->cap_seqs = cap;
    }
    return true;
}

/* Appends one sequence; mask_from: first position with loss (positions >= 1). */
static bool push_seq(ponder_train_data *d, const int32_t *tok, int64_t n, int64_t mask_from)
{
    if (!grow(d, n))
        return false;
    memcpy(d->tokens + d->n_tokens, tok, (size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++)
        d->mask[d->n_tokens + i] = i >= mask_from && i >= 1;
    d->start[d->n_seqs] = d->n_tokens;
    d->n_tokens += n;
    d->n_seqs++;
    d->start[d->n_seqs] = d->n_tokens;
    return true;
}

static ponder_status load_text(ponder_train_data *d, const char *text, size_t len, const char *name,
                               const ponder_tokenizer *tok, int32_t n_ctx, ponder_error *err)
{
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_status st = ponder_tokenizer_encode(tok, text, len, true, false, &ids, &n, err);
    if (st != PONDER_OK) {
        ponder_error_prefix(err, "%s", name);
        return st;
    }
    /* windows of n_ctx tokens overlapping by one, so every token is a target once */
    for (size_t off = 0; off + 1 < n; off += (size_t)n_ctx - 1) {
        const size_t m = n - off < (size_t)n_ctx ? n - off : (size_t)n_ctx;
        if (!push_seq(d, ids + off, (int64_t)m, 1)) {
            free(ids);
            return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", name);
        }
    }
    free(ids);
    return PONDER_OK;
}

/* The pair of one JSONL object: prompt/completion, or question/solution. */
static bool pair_of(json_t *obj, const char **prompt, const char **completion, bool *question_form)
{
    json_t *p = json_object_get(obj, "prompt"), *c = json_object_get(obj, "completion");
    *question_form = false;
    if (!p || !c) {
        p = json_object_get(obj, "question");
        c = json_object_get(obj, "solution");
        *question_form = true;
    }
    if (!json_is_string(p) || !json_is_string(c))
        return false;
    *prompt = json_string_value(p);
    *completion = json_string_value(c);
    return true;
}

static ponder_status add_pair(ponder_train_data *d, const char *prompt, const char *completion, bool question_form,
                              const char *name, int64_t line, const ponder_tokenizer *tok, int32_t n_ctx,
                              ponder_error *err)
{
    const size_t lp = strlen(prompt), lc = strlen(completion);
    char *joint = malloc(lp + lc + 2);
    if (!joint)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", name);
    memcpy(joint, prompt, lp);
    size_t lpp = lp;
    if (question_form)
        joint[lpp++] = '\n';
    memcpy(joint + lpp, completion, lc);
    joint[lpp + lc] = '\0';
    ponder_token *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    ponder_status st = ponder_tokenizer_encode(tok, joint, lpp, true, false, &a, &na, err);
    if (st == PONDER_OK)
        st = ponder_tokenizer_encode(tok, joint, lpp + lc, true, false, &b, &nb, err);
    free(joint);
    if (st != PONDER_OK) {
        ponder_error_prefix(err, "%s:%lld", name, (long long)line);
        free(a);
        free(b);
        return st;
    }
    const ponder_token eos = ponder_tokenizer_eos(tok);
    const bool has_eos = ponder_tokenizer_add_eos(tok) && nb > 0 && b[nb - 1] == eos;
    if (ponder_tokenizer_add_eos(tok) && na > 0 && a[na - 1] == eos)
        na--;
    size_t k = 0;
    while (k < na && k < nb && a[k] == b[k])
        k++;
    int64_t n = (int64_t)nb;
    if (!has_eos && eos != PONDER_TOKEN_NULL) {
        ponder_token *grown = realloc(b, (nb + 1) * sizeof *b);
        if (!grown) {
            free(a);
            free(b);
            return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", name);
        }
        b = grown;
        b[n++] = eos; /* the model learns to stop after the answer */
    }
    if (n > n_ctx || (int64_t)k >= n)
        d->n_skipped++;
    else if (!push_seq(d, b, n, (int64_t)k))
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", name);
    free(a);
    free(b);
    return st;
}

static ponder_status load_jsonl(ponder_train_data *d, const char *text, size_t len, const char *name,
                                const ponder_tokenizer *tok, int32_t n_ctx, ponder_error *err)
{
    size_t pos = 0;
    int64_t line = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        const size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        size_t b = pos;
        while (b < end && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r'))
            b++;
        if (b < end) {
            json_error_t je;
            json_t *obj = json_loadb(text + b, end - b, 0, &je);
            const char *prompt = NULL, *completion = NULL;
            bool qform = false;
            if (!obj || !json_is_object(obj) || !pair_of(obj, &prompt, &completion, &qform)) {
                json_decref(obj);
                return ponder_error_set(err, PONDER_ERR_FORMAT,
                                        "%s:%lld: expected a JSON object with string \"prompt\"/\"completion\" or "
                                        "\"question\"/\"solution\"%s%s",
                                        name, (long long)line, obj ? "" : ": ", obj ? "" : je.text);
            }
            ponder_status st = add_pair(d, prompt, completion, qform, name, line, tok, n_ctx, err);
            json_decref(obj);
            if (st != PONDER_OK)
                return st;
        }
        pos = end + 1;
    }
    return PONDER_OK;
}

ponder_status ponder_train_data_from_text(const char *text, size_t len, const char *name,
                                          const ponder_tokenizer *tok, int32_t n_ctx, ponder_train_data **out,
                                          ponder_error *err)
{
    *out = NULL;
    if (!text || !tok || n_ctx < 2)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train data: needs text, a tokenizer and n_ctx >= 2");
    ponder_train_data *d = calloc(1, sizeof *d);
    if (!d)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", name);
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
        i++;
    ponder_status st = i < len && text[i] == '{' ? load_jsonl(d, text, len, name, tok, n_ctx, err)
                                                 : load_text(d, text, len, name, tok, n_ctx, err);
    if (st == PONDER_OK && d->n_seqs == 0)
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: no training sequence (empty, or every line longer than "
                                                      "%d tokens)", name, n_ctx);
    if (st != PONDER_OK) {
        ponder_train_data_free(d);
        return st;
    }
    *out = d;
    return PONDER_OK;
}

ponder_status ponder_train_data_load(const char *path, const ponder_tokenizer *tok, int32_t n_ctx,
                                     ponder_train_data **out, ponder_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot open", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ponder_status st = PONDER_OK;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = cap <= DATA_MAX_FILE_BYTES ? realloc(buf, cap) : NULL;
            if (!nb) {
                st = ponder_error_set(err, PONDER_ERR_RANGE, "%s: too large or out of memory", path);
                break;
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = ponder_error_set(err, PONDER_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st == PONDER_OK)
        st = ponder_train_data_from_text(buf ? buf : "", len, path, tok, n_ctx, out, err);
    free(buf);
    return st;
}

void ponder_train_data_free(ponder_train_data *d)
{
    if (!d)
        return;
    free(d->tokens);
    free(d->mask);
    free(d->start);
    free(d);
}

int64_t ponder_train_data_n_seqs(const ponder_train_data *d) { return d->n_seqs; }
int64_t ponder_train_data_n_skipped(const ponder_train_data *d) { return d->n_skipped; }
int64_t ponder_train_data_n_tokens(const ponder_train_data *d) { return d->n_tokens; }

ponder_train_seq ponder_train_data_seq(const ponder_train_data *d, int64_t i)
{
    if (i < 0 || i >= d->n_seqs)
        return (ponder_train_seq){0};
    const int64_t s = d->start[i];
    return (ponder_train_seq){.tokens = d->tokens + s, .loss_mask = d->mask + s, .n = (int32_t)(d->start[i + 1] - s)};
}

int64_t ponder_train_data_pick(const ponder_train_data *d, uint64_t seed, int64_t step, int64_t i)
{
    uint64_t s = seed ^ ((uint64_t)step * 0x9E3779B97F4A7C15ull);
    s = tr_splitmix64(&s) ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
    return (int64_t)(tr_splitmix64(&s) % (uint64_t)d->n_seqs);
}
