/*
 * score.c — log-likelihood of continuations, lm-eval-harness's way of scoring multiple
 * choice: sum over the continuation's tokens of log-softmax(logits)[token], given the
 * context. acc takes the argmax of the sum, acc_norm of the sum per continuation byte.
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
    ponder_token *ctx_ids = NULL, *full = NULL;
    size_t n_ctx_ids = 0, n_full = 0;
    char *joined = NULL;
    float *prev = malloc((size_t)n_vocab * sizeof *prev), *rows = NULL;
    out->sum_logprob = calloc((size_t)n_conts, sizeof *out->sum_logprob);
    out->n_tokens = calloc((size_t)n_conts, sizeof *out->n_tokens);
    out->n_bytes = calloc((size_t)n_conts, sizeof *out->n_bytes);
    if (!prev || !out->sum_logprob || !out->n_tokens || !out->n_bytes) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory");
        goto fail;
    }
    const size_t ctx_len = strlen(context);
    if ((st = ponder_tokenizer_encode(tok, context, ctx_len, true, false, &ctx_ids, &n_ctx_ids, err)) != PONDER_OK)
        goto fail;
    double best = -INFINITY, best_norm = -INFINITY;
    for (int32_t c = 0; c < n_conts; c++) {
        const size_t cl = strlen(conts[c]);
        joined = malloc(ctx_len + cl + 1);
        if (!joined) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory");
            goto fail;
        }
        memcpy(joined, context, ctx_len);
        memcpy(joined + ctx_len, conts[c], cl + 1);
        if ((st = ponder_tokenizer_encode(tok, joined, ctx_len + cl, true, false, &full, &n_full, err)) != PONDER_OK)
            goto fail;
        size_t start = 0;
        while (start < n_full && start < n_ctx_ids && full[start] == ctx_ids[start])
            start++;
        if (start == 0 || start >= n_full) {
            st = ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                  "score: choice %d: %s", (int)c,
                                  start == 0 ? "the context has no tokens to condition on" : "the continuation has no tokens");
            goto fail;
        }
        const int32_t n_cont = (int32_t)(n_full - start);
        /* the last continuation token's own logits are never needed */
        if (n_cont > 1) {
            free(rows);
            rows = malloc((size_t)(n_cont - 1) * (size_t)n_vocab * sizeof *rows);
            if (!rows) {
                st = ponder_error_set(err, PONDER_ERR_NOMEM, "score: out of memory for %d rows", (int)n_cont);
                goto fail;
            }
        }
        /* No shared-prefix reuse across choices yet: the context is decoded per choice (a KV
         * truncate would save it); the accounting below counts what actually ran. */
        ponder_context_reset(ctx);
        if ((st = ponder_context_decode(ctx, full, (int32_t)start, NULL, err)) != PONDER_OK)
            goto fail;
        memcpy(prev, ponder_context_logits(ctx), (size_t)n_vocab * sizeof *prev);
        if (n_cont > 1 && (st = ponder_context_decode(ctx, full + start, n_cont - 1, rows, err)) != PONDER_OK)
            goto fail;
        const int32_t n_run = (int32_t)start + n_cont - 1;
        out->tokens_evaluated += (uint64_t)n_run;
        out->flops += flops_of(m, 0, n_run);
        double sum = log_softmax_at(prev, n_vocab, full[start]);
        for (int32_t j = 1; j < n_cont; j++)
            sum += log_softmax_at(rows + (size_t)(j - 1) * (size_t)n_vocab, n_vocab, full[start + (size_t)j]);
        out->sum_logprob[c] = sum;
        out->n_tokens[c] = n_cont;
        out->n_bytes[c] = cl;
        const double norm = sum / (double)(cl > 0 ? cl : 1);
        if (sum > best) {
            best = sum;
            out->best = c;
        }
        if (norm > best_norm) {
            best_norm = norm;
            out->best_norm = c;
        }
        free(full);
        full = NULL;
        free(joined);
        joined = NULL;
    }
    ponder_context_reset(ctx);
    free(rows);
    free(prev);
    free(ctx_ids);
    return PONDER_OK;

fail:
    ponder_context_reset(ctx);
    free(rows);
    free(prev);
    free(ctx_ids);
    free(full);
    free(joined);
    ponder_choice_scores_free(out);
    return st;
}
