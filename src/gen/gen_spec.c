/*
 * gen_spec.c — the pieces of speculative decoding that do not touch requests: the
 * vocabulary check between a draft and its target, the accept/reject rule of speculative
 * sampling, draws from a distribution and the adaptation of k. gen.c drives them.
 *
 * Why the rule preserves the target's distribution p (Leviathan et al. 2023, Chen et al.
 * 2023): a draft token x ~ q is kept with probability min(1, p(x)/q(x)), so
 * P(keep x) = min(q(x), p(x)); the rejection mass is 1 - sum_x min(p, q) = sum_x max(0, p - q),
 * and on rejection the token is drawn from max(0, p - q) normalised, so
 * P(y) = min(p(y), q(y)) + max(0, p(y) - q(y)) = p(y).
 */
#include "gen/gen_internal.h"
#include "ponder/gguf.h"

#include <string.h>

int32_t gen_spec_draw(const float *p, int32_t n, double u)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (p[i] > 0.0f)
            sum += (double)p[i];
    const double target = u * sum;
    double acc = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (!(p[i] > 0.0f))
            continue;
        acc += (double)p[i];
        last = i;
        if (target < acc)
            return i;
    }
    return last; /* u on the rounding slack at the top; -1 only if nothing is positive */
}

int32_t gen_spec_verify(const float *p, const float *q, int32_t n, int32_t x, double u_accept, double u_resample,
                        bool *accepted)
{
    /* u < p/q without dividing: q(x) > 0 because x was drawn from q */
    if (u_accept * (double)q[x] < (double)p[x]) {
        *accepted = true;
        return x;
    }
    *accepted = false;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (p[i] > q[i])
            sum += (double)p[i] - (double)q[i];
    if (!(sum > 0.0)) /* p == q up to rounding: the residual is empty, p itself is the answer */
        return gen_spec_draw(p, n, u_resample);
    const double target = u_resample * sum;
    double acc = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (!(p[i] > q[i]))
            continue;
        acc += (double)p[i] - (double)q[i];
        last = i;
        if (target < acc)
            return i;
    }
    return last;
}

int32_t gen_spec_next_k(int32_t k, int32_t n_accepted, int32_t k_max)
{
    /* Growing by one while everything is accepted and halving on an early reject: a step
     * costs the draft k decodes and the target one batch of k + 1, so k follows the
     * acceptance run length (a run of r accepted tokens gives r + 1 tokens per step) and
     * falls quickly when the draft disagrees from the start. */
    if (n_accepted >= k)
        k++;
    else if (2 * n_accepted < k)
        k /= 2;
    if (k < 1)
        k = 1;
    if (k > k_max)
        k = k_max;
    return k;
}

static const char *const special_keys[] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
};

ponder_status ponder_gen_check_draft(const ponder_model *target, const ponder_model *draft, ponder_error *err)
{
    if (!target || !draft)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_check_draft: both models are required");
    const int32_t nt = ponder_model_hparams(target)->n_vocab, nd = ponder_model_hparams(draft)->n_vocab;
    if (nt != nd)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "draft model: its vocabulary has %d tokens, the model's has %d (a draft must share "
                                "the model's vocabulary)",
                                nd, nt);
    const ponder_gguf *gt = ponder_model_gguf(target), *gd = ponder_model_gguf(draft);
    const ponder_gguf_array *at = NULL, *ad = NULL;
    const bool ht = ponder_gguf_get_arr(gt, "tokenizer.ggml.tokens", PONDER_GGUF_STRING, &at, NULL) == PONDER_OK;
    const bool hd = ponder_gguf_get_arr(gd, "tokenizer.ggml.tokens", PONDER_GGUF_STRING, &ad, NULL) == PONDER_OK;
    if (ht != hd)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "draft model: only %s has tokenizer.ggml.tokens",
                                ht ? "the model" : "the draft");
    if (ht) {
        if (at->n != ad->n)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "draft model: its tokenizer has %llu tokens, the model's has %llu",
                                    (unsigned long long)ad->n, (unsigned long long)at->n);
        for (uint64_t i = 0; i < at->n; i++) {
            const ponder_gguf_str a = ponder_gguf_array_str(at, i), b = ponder_gguf_array_str(ad, i);
            if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
                return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                        "draft model: token %llu is '%.*s' in the draft but '%.*s' in the model (a "
                                        "draft must share the model's vocabulary)",
                                        (unsigned long long)i, (int)(b.len > 40 ? 40 : b.len), b.data,
                                        (int)(a.len > 40 ? 40 : a.len), a.data);
        }
    }
    for (size_t k = 0; k < sizeof special_keys / sizeof special_keys[0]; k++) {
        /* absent, -1 and 0xFFFFFFFF (as some converters write "none") all mean no such token */
        int64_t vt = -1, vd = -1;
        if (ponder_gguf_get_i64(gt, special_keys[k], &vt, NULL) != PONDER_OK || vt < 0 || vt >= nt)
            vt = -1;
        if (ponder_gguf_get_i64(gd, special_keys[k], &vd, NULL) != PONDER_OK || vd < 0 || vd >= nd)
            vd = -1;
        if (vt != vd)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "draft model: %s is %lld in the draft but %lld in the model",
                                    special_keys[k], (long long)vd, (long long)vt);
    }
    return PONDER_OK;
}
