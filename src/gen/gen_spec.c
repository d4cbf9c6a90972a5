/*
 * gen_spec.c — speculative decoding: the vocabulary check between a draft and its
 * target, the accept/reject rule of speculative sampling, draws from a distribution, the
 * adaptation of k, and the step's draft pass (how many tokens each choice proposes, the
 * draft's catch-up and proposal decodes, the verification of the proposals against the
 * model's rows). gen.c's step calls gen_spec_plan, gen_spec_run_draft, then
 * gen_spec_verify_choice for every row that carries proposals.
 *
 * Why the rule preserves the target's distribution p (Leviathan et al. 2023, Chen et al.
 * 2023): a draft token x ~ q is kept with probability min(1, p(x)/q(x)), so
 * P(keep x) = min(q(x), p(x)); the rejection mass is 1 - sum_x min(p, q) = sum_x max(0, p - q),
 * and on rejection the token is drawn from max(0, p - q) normalised, so
 * P(y) = min(p(y), q(y)) + max(0, p(y) - q(y)) = p(y).
 */
#include "gen/gen_internal.h"
#include "ponder/gguf.h"

#include <math.h>
#include <stdlib.h>
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

/* ---- the draft pass of a step ---- */

/* Token i of choice c's whole sequence: the prompt, then its tokens. */
static ponder_token seq_token(const gen_req *r, const gen_choice *c, int32_t i)
{
    return i < r->n_prompt ? r->prompt[i] : c->tokens[i - r->n_prompt];
}

/* How many tokens each running choice proposes this step: its k, within max_tokens (the
 * step commits up to k + 1 tokens) and the context (the proposals take the positions
 * after the pending token). */
void gen_spec_plan(ponder_gen *g)
{
    for (int32_t i = 0; i < g->n_reqs; i++) {
        gen_req *r = g->reqs[i];
        for (int32_t ci = 0; ci < r->n_choices; ci++) {
            gen_choice *c = &r->choices[ci];
            c->n_draft = 0;
            if (!g->dctx || r->state != REQ_RUNNING || c->next == PONDER_TOKEN_NULL || r->released)
                continue;
            if (c->pause > 0) {
                c->pause--;
                continue;
            }
            const int32_t committed = r->n_prompt + c->n_tokens - 1; /* the pending token's position */
            int32_t k = c->k;
            if (k > g->n_ctx - committed - 1)
                k = g->n_ctx - committed - 1;
            if (r->max_tokens > 0 && k > r->max_tokens - c->n_tokens - 1)
                k = r->max_tokens - c->n_tokens - 1;
            c->n_draft = k > 0 ? k : 0;
        }
    }
}

/* Room for need tokens in the draft's batch arrays. */
static bool draft_reserve(ponder_gen *g, size_t need)
{
    if (need <= g->cap_d)
        return true;
    size_t cap = g->cap_d ? 2 * g->cap_d : 64;
    cap = cap < need ? need : cap;
    int32_t *t = realloc(g->d_tokens, cap * sizeof *t);
    if (t)
        g->d_tokens = t;
    ponder_seq_id *sq = realloc(g->d_seq, cap * sizeof *sq);
    if (sq)
        g->d_seq = sq;
    bool *w = realloc(g->d_want, cap * sizeof *w);
    if (w)
        g->d_want = w;
    if (!t || !sq || !w)
        return false;
    g->cap_d = cap;
    return true;
}

static bool draft_add(ponder_gen *g, int32_t *n, ponder_token t, ponder_seq_id s, bool want)
{
    if (!draft_reserve(g, (size_t)*n + 1))
        return false;
    g->d_tokens[*n] = t;
    g->d_seq[*n] = s;
    g->d_want[*n] = want;
    (*n)++;
    return true;
}

/* Proposal i of choice c from the draft's logits row (ours: ignore_eos bans in place). */
static void propose(ponder_gen *g, const gen_req *r, gen_choice *c, float *row, int32_t i)
{
    if (r->ignore_eos)
        for (int32_t e = 0; e < g->n_eog; e++)
            row[g->eog[e]] = -INFINITY;
    ponder_token d;
    if (!gen_grammar_restrict(g, r, c, c->dsmp, i)) { /* the grammar allows nothing after these proposals */
        gen_grammar_unrestrict(c->dsmp);
        c->n_draft = i;
        return;
    }
    if (c->q) {
        float *q = c->q + (size_t)i * (size_t)g->n_vocab;
        ponder_sampler_probs(c->dsmp, row, q);
        /* the draws of a choice all come from its own generator, so a seed fixes them */
        d = gen_spec_draw(q, g->n_vocab, ponder_sampler_uniform(c->smp));
    } else {
        d = ponder_sampler_sample(c->dsmp, row);
    }
    gen_grammar_unrestrict(c->dsmp);
    if (d < 0 || !gen_grammar_draft_accept(c, d)) {
        c->n_draft = i;
        return;
    }
    ponder_sampler_accept(c->dsmp, d);
    c->draft[i] = d;
    c->n_proposed = i + 1;
}

/* Runs the draft for every choice with n_draft > 0: first the tokens its sequence lacks
 * (the prompt the first time, then what the model committed since; the other choices of
 * a request fork the prompt from its first one), then one proposal per decode. A draft
 * decode that fails (cells, say) only shortens the proposals: speculation is an
 * optimization, never a reason to fail a request. */
void gen_spec_run_draft(ponder_gen *g)
{
    const size_t nv = (size_t)g->n_vocab;
    int32_t max_k = 0;
    for (int32_t i = 0; i < g->n_reqs; i++)
        for (int32_t ci = 0; ci < g->reqs[i]->n_choices; ci++)
            g->reqs[i]->choices[ci].n_proposed = 0;
    /* two catch-up passes: the second for choices that fork their first choice's prompt */
    for (int pass = 0; pass < 2; pass++) {
        int32_t n = 0, n_rows = 0;
        bool ok = true;
        for (int32_t i = 0; i < g->n_reqs && ok; i++) {
            gen_req *r = g->reqs[i];
            int32_t first = -1; /* the first choice of r that speculates */
            for (int32_t ci = 0; ci < r->n_choices && ok; ci++) {
                gen_choice *c = &r->choices[ci];
                if (c->n_draft == 0)
                    continue;
                if (first < 0)
                    first = ci;
                int32_t dlen = ponder_context_seq_len(g->dctx, c->seq);
                const int32_t committed = r->n_prompt + c->n_tokens - 1; /* the pending token's position */
                const bool forks = dlen < r->n_prompt && first != ci;
                if (pass == 0 && forks && ponder_context_seq_len(g->dctx, r->choices[first].seq) < r->n_prompt)
                    continue; /* pass 1 forks it from `first` once that has the prompt */
                if (pass == 1) {
                    if (!forks)
                        continue; /* done in pass 0 */
                    if (ponder_context_seq_fork(g->dctx, r->choices[first].seq, c->seq, NULL) != PONDER_OK ||
                        ponder_context_seq_truncate(g->dctx, c->seq, r->n_prompt, NULL) != PONDER_OK) {
                        ponder_context_seq_clear(g->dctx, c->seq, NULL);
                        c->n_draft = 0;
                        continue;
                    }
                    dlen = r->n_prompt;
                }
                if (dlen > committed) { /* not expected: each step cuts it back to the committed tokens */
                    ponder_context_seq_truncate(g->dctx, c->seq, committed, NULL);
                    dlen = committed;
                }
                for (int32_t pos = dlen; pos <= committed && ok; pos++) {
                    ok = draft_add(g, &n, seq_token(r, c, pos), c->seq, pos == committed);
                    r->usage.flops += ponder_model_flops_per_token(g->draft, pos);
                }
                g->d_rows[n_rows++] = (gen_row){r, ci, 1};
            }
        }
        if (n_rows == 0)
            continue;
        ponder_batch b = {.n_tokens = n, .tokens = g->d_tokens, .seq = g->d_seq, .want_logits = g->d_want};
        if (!ok || ponder_context_decode_batch(g->dctx, &b, g->d_logits, NULL) != PONDER_OK) {
            for (int32_t k = 0; k < n_rows; k++) /* out of memory or cells: no proposals this step */
                g->d_rows[k].r->choices[g->d_rows[k].choice].n_draft = 0;
            continue;
        }
        for (int32_t k = 0; k < n_rows; k++) {
            gen_req *r = g->d_rows[k].r;
            gen_choice *c = &r->choices[g->d_rows[k].choice];
            /* the penalty window of its chain: the choice's last tokens, as the model's */
            ponder_sampler_reset(c->dsmp);
            int32_t w0 = r->repeat_last_n > 0 && c->n_tokens > r->repeat_last_n ? c->n_tokens - r->repeat_last_n : 0;
            for (int32_t t = r->repeat_last_n > 0 ? w0 : c->n_tokens; t < c->n_tokens; t++)
                ponder_sampler_accept(c->dsmp, c->tokens[t]);
            propose(g, r, c, g->d_logits + (size_t)k * nv, 0);
            max_k = c->n_draft > max_k ? c->n_draft : max_k;
        }
    }
    /* then one token a decode: proposal i - 1 in, proposal i out */
    if (max_k > 1 && !draft_reserve(g, (size_t)g->n_seq_max)) {
        max_k = 1;
        for (int32_t q = 0; q < g->n_reqs; q++)
            for (int32_t ci = 0; ci < g->reqs[q]->n_choices; ci++)
                if (g->reqs[q]->choices[ci].n_draft > 1)
                    g->reqs[q]->choices[ci].n_draft = 1;
    }
    for (int32_t i = 1; i < max_k; i++) {
        int32_t n = 0;
        for (int32_t q = 0; q < g->n_reqs; q++) {
            gen_req *r = g->reqs[q];
            for (int32_t ci = 0; ci < r->n_choices; ci++) {
                gen_choice *c = &r->choices[ci];
                if (c->n_draft <= i)
                    continue;
                g->d_tokens[n] = c->draft[i - 1]; /* n <= n_seq_max <= what catch-up grew */
                g->d_seq[n] = c->seq;
                g->d_want[n] = true;
                g->d_rows[n++] = (gen_row){r, ci, 1};
            }
        }
        if (n == 0)
            break;
        ponder_batch b = {.n_tokens = n, .tokens = g->d_tokens, .seq = g->d_seq, .want_logits = g->d_want};
        if (ponder_context_decode_batch(g->dctx, &b, g->d_logits, NULL) != PONDER_OK) {
            for (int32_t k = 0; k < n; k++)
                g->d_rows[k].r->choices[g->d_rows[k].choice].n_draft = i;
            break;
        }
        for (int32_t k = 0; k < n; k++) {
            gen_req *r = g->d_rows[k].r;
            gen_choice *c = &r->choices[g->d_rows[k].choice];
            r->usage.flops += ponder_model_flops_per_token(g->draft, ponder_context_seq_len(g->dctx, c->seq) - 1);
            propose(g, r, c, g->d_logits + (size_t)k * nv, i);
        }
    }
    /* whatever failed on the way, a choice verifies only the proposals it has */
    for (int32_t q = 0; q < g->n_reqs; q++)
        for (int32_t ci = 0; ci < g->reqs[q]->n_choices; ci++) {
            gen_choice *c = &g->reqs[q]->choices[ci];
            if (c->n_draft > c->n_proposed)
                c->n_draft = c->n_proposed;
            gen_grammar_draft_rollback(c); /* verification replays the accepted proposals */
        }
}

/* After a verify of nd proposals with n_acc accepted: the next k (gen_spec_next_k), and a
 * pause when the draft does not pay. A step proposing one token costs about a draft
 * decode (draft_cost of a model decode, memory-bound) plus a model decode, and gains the
 * acceptance rate in tokens: below draft_cost it loses even if verifying were free. So
 * when the running acceptance (mean over verifies, weight 1/4 to the latest, from the
 * fourth verify on) falls below draft_cost, the choice decodes GEN_SPEC_PAUSE steps
 * without proposals, then probes again with k = 1 and the mean set to the threshold, so
 * the next verify alone decides. Deterministic: no clocks, so a seed still fixes the
 * output. */
#define GEN_SPEC_PAUSE 16

static void spec_after_verify(ponder_gen *g, gen_choice *c, int32_t nd, int32_t n_acc)
{
    c->k = gen_spec_next_k(nd, n_acc, g->draft_k_max);
    c->acceptance = 0.75f * c->acceptance + 0.25f * (float)n_acc / (float)nd;
    if (++c->n_verifies >= 4 && c->acceptance < g->draft_cost) {
        c->pause = GEN_SPEC_PAUSE;
        c->k = 1;
        c->acceptance = g->draft_cost;
    }
}

/* Verifies choice ci's proposals against the model's rows (row 0: after its pending
 * token, row i: after proposal i - 1): commits the accepted prefix and then the model's
 * own token (a correction, or after all k the bonus one), drops the rest from both KV
 * caches and adapts k. */
ponder_status gen_spec_verify_choice(ponder_gen *g, gen_req *r, int32_t ci, float *rows, ponder_error *err)
{
    gen_choice *c = &r->choices[ci];
    const int32_t nd = c->n_draft;
    const size_t nv = (size_t)g->n_vocab;
    int32_t n_acc = 0;
    ponder_status st = PONDER_OK;
    r->usage.draft_tokens += nd;
    r->usage.verify_steps++;
    for (int32_t j = 0; j <= nd; j++) {
        if (c->finish != PONDER_FINISH_NONE || r->state == REQ_DONE) /* finished, or cancelled by a callback */
            break;
        float *row = rows + (size_t)j * nv;
        int32_t n_top;
        const double lse = gen_prepare_row(g, r, row, &n_top);
        ponder_token t;
        bool accepted = false;
        if (!gen_grammar_restrict(g, r, c, c->smp, 0)) {
            /* cannot happen after a proposal the grammar allowed; after the grammar's
             * last token the choice has already stopped */
            gen_grammar_unrestrict(c->smp);
            break;
        }
        if (j == nd) {
            t = ponder_sampler_sample(c->smp, row); /* every proposal accepted: the model's next */
        } else if (!c->q) {
            t = ponder_sampler_sample(c->smp, row); /* greedy: the model's own pick decides */
            accepted = t == c->draft[j];
        } else {
            ponder_sampler_probs(c->smp, row, g->p);
            const double u_accept = ponder_sampler_uniform(c->smp), u_resample = ponder_sampler_uniform(c->smp);
            t = gen_spec_verify(g->p, c->q + (size_t)j * nv, g->n_vocab, c->draft[j], u_accept, u_resample, &accepted);
        }
        gen_grammar_unrestrict(c->smp);
        n_acc += accepted;
        if ((st = gen_commit_token(g, r, ci, t, row, lse, n_top, err)) != PONDER_OK)
            return st;
        if (!accepted)
            break;
    }
    r->usage.draft_accepted += n_acc;
    spec_after_verify(g, c, nd, n_acc);
    if (c->finish == PONDER_FINISH_NONE && c->seq >= 0) {
        /* keep the prompt and the committed tokens but the pending one */
        const int32_t keep = r->n_prompt + c->n_tokens - 1;
        if ((st = ponder_context_seq_truncate(g->ctx, c->seq, keep, err)) != PONDER_OK)
            return st;
        if (ponder_context_seq_len(g->dctx, c->seq) > keep)
            ponder_context_seq_truncate(g->dctx, c->seq, keep, NULL);
    }
    return PONDER_OK;
}
