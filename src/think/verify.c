/*
 * verify.c — an outcome verifier for bon:N: a small language model trained to say whether a
 * chain reached the right answer. Why a verifier: on the arithmetic task the model's wrong
 * chains are systematic (one confident slip that most samples repeat), so a majority vote
 * only averages the model's own bias, while at least one of 16 sampled chains is right far
 * more often than the vote is (bench/results/arith/ttc-sampling.md). A judge that reads the
 * whole chain — all digits of "34 - 12 = 22." at once, where the generator had to commit to
 * the tens digit before the units — can tell the right chain apart.
 *
 * The verifier is an ordinary GGUF model trained with `ponder train` on prompt/completion
 * pairs (scripts/train-arith-verifier.sh): the prompt is the text the chain continued, the
 * chain and PONDER_VERIFIER_CUE; the completion PONDER_VERIFIER_YES or PONDER_VERIFIER_NO.
 * Its score for a chain is P(yes) / (P(yes) + P(no)) by log-likelihood of the two
 * continuations (score.c), so nothing here depends on how the tokenizer splits them.
 */
#include "ponder/think.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ponder_verifier {
    const ponder_model *model;
    const ponder_tokenizer *tok;
    ponder_context *ctx;
};

ponder_status ponder_verifier_create(const ponder_model *m, const ponder_tokenizer *tok,
                                     const ponder_context_params *cp, ponder_verifier **out, ponder_error *err)
{
    if (!m || !tok || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "verifier: NULL argument");
    *out = NULL;
    ponder_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "verifier: out of memory");
    const ponder_context_params dflt = ponder_context_params_default();
    ponder_status st = ponder_context_create(m, cp ? cp : &dflt, &v->ctx, err);
    if (st != PONDER_OK) {
        ponder_error_prefix(err, "verifier");
        free(v);
        return st;
    }
    v->model = m;
    v->tok = tok;
    *out = v;
    return PONDER_OK;
}

void ponder_verifier_free(ponder_verifier *v)
{
    if (!v)
        return;
    ponder_context_free(v->ctx);
    free(v);
}

ponder_status ponder_verifier_score(ponder_verifier *v, const char *prompt, const char *chain, size_t chain_len,
                                    double *p_yes, uint64_t *flops, ponder_error *err)
{
    if (!v || !prompt || (!chain && chain_len) || !p_yes)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "verifier: NULL argument");
    *p_yes = 0.0;
    const size_t lp = strlen(prompt), lq = strlen(PONDER_VERIFIER_CUE);
    char *text = malloc(lp + chain_len + lq + 1);
    if (!text)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "verifier: out of memory");
    memcpy(text, prompt, lp);
    if (chain_len)
        memcpy(text + lp, chain, chain_len);
    memcpy(text + lp + chain_len, PONDER_VERIFIER_CUE, lq + 1);
    /* a chain longer than the verifier's context cannot be judged: it scores 0 (it never
     * wins bon against a chain that could be read), which is not an error of the request */
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    ponder_status st = ponder_tokenizer_encode(v->tok, text, strlen(text), true, false, &ids, &n_ids, err);
    free(ids);
    if (st != PONDER_OK) {
        free(text);
        ponder_error_prefix(err, "verifier");
        return st;
    }
    if (n_ids + 4 > (size_t)ponder_context_n_ctx(v->ctx)) {
        free(text);
        return PONDER_OK;
    }
    const char *conts[2] = { PONDER_VERIFIER_YES, PONDER_VERIFIER_NO };
    ponder_choice_scores sc;
    st = ponder_think_score_choices(v->ctx, v->model, v->tok, text, conts, 2, &sc, err);
    free(text);
    if (st != PONDER_OK) {
        ponder_error_prefix(err, "verifier");
        return st;
    }
    /* P(yes) / (P(yes) + P(no)) = 1 / (1 + exp(lp_no - lp_yes)) */
    *p_yes = 1.0 / (1.0 + exp(sc.sum_logprob[1] - sc.sum_logprob[0]));
    if (flops)
        *flops += sc.flops;
    ponder_choice_scores_free(&sc);
    return PONDER_OK;
}
