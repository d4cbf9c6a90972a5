/*
 * score.c — log-likelihood of continuations, lm-eval-harness's way of scoring multiple
 * choice: sum over the continuation's tokens of log-softmax(logits)[token], given the
 * context. acc takes the argmax of the sum, acc_norm of the sum per continuation byte.
 * The prefix the choices share is decoded once; each choice truncates the KV back to it.
 */
#include "ponder/think.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ponder_choice_scores_free(ponder_choice_scores *s)
{
    if (!s)
        return;
    free(s->sum_logprob);
    free(s->n_tokens);
    free(s->n_bytes);
    memset(s, 0, sizeof *s);
}

static double log_softmax_at(const float *row, int32_t n_vocab, int32_t tok)
{
    float mx = row[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (row[i] > mx)
            mx = row[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += exp((double)row[i] - mx);
    return (double)row[tok] - mx - log(sum);
}

static uint64_t flops_of(const ponder_model *m, int32_t n_past, int32_t n)
{
    uint64_t f = 0;
    for (int32_t i = 0; i < n; i++)
        f += ponder_model_flops_per_token(m, n_past + i);
    return f;
}

ponder_status ponder_think_score_choices(ponder_context *ctx, const ponder_model *m, const ponder_tokenizer *tok,
                                         const char *context, const char *const *conts, int32_t n_conts,
                                         ponder_choice_scores *out, ponder_error *err)
{
    if (!ctx || !m || !tok || !context || !conts || !out || n_conts < 1)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "score: bad arguments");
    memset(out, 0, sizeof *out);
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    ponder_status st = PONDER_OK;
    ponder_token *ctx_ids = NULL;
    size_t n_ctx_ids = 0;
    ponder_token **full = calloc((size_t)n_conts, sizeof *full);
    size_t *n_full = calloc((size_t)n_conts, sizeof *n_full), *start = calloc((size_t)n_conts, sizeof *start);
    char *joined = NULL;
    float *prev = malloc((size_t)n_vocab * sizeof *prev), *rows = NULL;
    out->sum_logprob = calloc((size_t)n_conts, sizeof *out->sum_logprob);
    out->n_tokens = calloc((size_t)n_conts, sizeof *out->n_tokens);
    out->n_bytes = calloc((size_t)n_conts, sizeof *out->n_bytes);
    if (!full || !n_full || !start || !prev || !out->sum_logprob || !out->n_tokens || !out->n_bytes) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory");
        goto fail;
    }
    const size_t ctx_len = strlen(context);
    if ((st = ponder_tokenizer_encode(tok, context, ctx_len, true, false, &ctx_ids, &n_ctx_ids, err)) != PONDER_OK)
        goto fail;
    /* tokenize every context + continuation; the continuation starts where it stops sharing
     * tokens with the context alone; P is the prefix every choice shares */
    size_t shared = SIZE_MAX;
    for (int32_t c = 0; c < n_conts; c++) {
        const size_t cl = strlen(conts[c]);
        joined = malloc(ctx_len + cl + 1);
        if (!joined) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory");
            goto fail;
        }
        memcpy(joined, context, ctx_len);
        memcpy(joined + ctx_len, conts[c], cl + 1);
        st = ponder_tokenizer_encode(tok, joined, ctx_len + cl, true, false, &full[c], &n_full[c], err);
        free(joined);
        joined = NULL;
        if (st != PONDER_OK)
            goto fail;
        size_t k = 0;
        while (k < n_full[c] && k < n_ctx_ids && full[c][k] == ctx_ids[k])
            k++;
        if (k == 0 || k >= n_full[c]) {
            st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "score: choice %d: %s", (int)c,
                                  k == 0 ? "the context has no tokens to condition on" : "the continuation has no tokens");
            goto fail;
        }
        start[c] = k;
        out->n_tokens[c] = (int32_t)(n_full[c] - k);
        out->n_bytes[c] = cl;
        if (k < shared)
            shared = k;
    }
    /* the shared prefix once; each choice then from there (KV truncated back to it) */
    ponder_context_reset(ctx);
    if ((st = ponder_context_decode(ctx, ctx_ids, (int32_t)shared, NULL, err)) != PONDER_OK)
        goto fail;
    memcpy(prev, ponder_context_logits(ctx), (size_t)n_vocab * sizeof *prev);
    out->tokens_evaluated = shared;
    out->flops = flops_of(m, 0, (int32_t)shared);
    double best = -INFINITY, best_norm = -INFINITY;
    for (int32_t c = 0; c < n_conts; c++) {
        /* positions shared .. n_full-2 are run; the last token's own logits are never needed */
        const int32_t n_run = (int32_t)(n_full[c] - 1 - shared);
        if (n_run > 0) {
            free(rows);
            rows = malloc((size_t)n_run * (size_t)n_vocab * sizeof *rows);
            if (!rows) {
                st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory for %d rows", (int)n_run);
                goto fail;
            }
            if ((st = ponder_context_seq_truncate(ctx, 0, (int32_t)shared, err)) != PONDER_OK ||
                (st = ponder_context_decode(ctx, full[c] + shared, n_run, rows, err)) != PONDER_OK)
                goto fail;
            out->tokens_evaluated += (uint64_t)n_run;
            out->flops += flops_of(m, (int32_t)shared, n_run);
        }
        /* the logits predicting token j are prev for j == shared, else row j - 1 - shared */
        double sum = 0.0;
        for (size_t j = start[c]; j < n_full[c]; j++) {
            const float *row = j == shared ? prev : rows + (j - 1 - shared) * (size_t)n_vocab;
            sum += log_softmax_at(row, n_vocab, full[c][j]);
        }
        out->sum_logprob[c] = sum;
        const double norm = sum / (double)(out->n_bytes[c] > 0 ? out->n_bytes[c] : 1);
        if (sum > best) {
            best = sum;
            out->best = c;
        }
        if (norm > best_norm) {
            best_norm = norm;
            out->best_norm = c;
        }
    }
    goto done;

fail:
    ponder_choice_scores_free(out);
done:
    ponder_context_reset(ctx);
    for (int32_t c = 0; full && c < n_conts; c++)
        free(full[c]);
    free(full);
    free(n_full);
    free(start);
    free(rows);
    free(prev);
    free(ctx_ids);
    free(joined);
    return st;
}
