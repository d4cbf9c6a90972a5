/*
 * test_spec.c — speculative decoding in gen (gen.h, gen_spec.c).
 *
 * Greedy: a generator with a draft must give exactly the tokens, text and finish of the
 * same generator without one, on every pair tried (a synthetic F32 model with itself —
 * every proposal accepted —, its Q8_0 and Q4_0 copies, an unrelated model with the same
 * vocabulary, a phi3 and a qwen2 pair, the trained arithmetic models), several prompts,
 * k fixed small and large, several choices and requests at once, stop strings, too few
 * KV cells for the proposals.
 *
 * Sampling: the accept/reject rule is checked exactly on hand-made distributions
 * (stratified uniforms: no randomness), then end to end: the first two tokens sampled
 * with a draft over many fixed seeds are compared with the model's own distribution
 * (computed here from its logits, without the sampler) by a chi-square test whose bound
 * sits at a tail probability of 1e-6 — the seeds are fixed, so it cannot flake, and a
 * rule that kept the draft's distribution fails it by orders of magnitude.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen/gen_internal.h"
#include "ponder/gen.h"
#include "ponder/gguf.h"
#include "testutil.h"
#include "testmodel.h"

#define SYN "models/synthetic/"
#define MAX_TOK 256

static ponder_gen *make_gen(const loaded *t, const ponder_model *draft, int32_t n_seq_max, int32_t n_ctx,
                            int32_t n_kv_cells, int32_t k, int32_t k_max)
{
    ponder_error err = {0};
    ponder_gen_params p = ponder_gen_params_default();
    p.n_seq_max = n_seq_max;
    p.context.n_ctx = n_ctx;
    p.context.n_kv_cells = n_kv_cells;
    p.draft = draft;
    p.draft_k = k;
    p.draft_k_max = k_max;
    ponder_gen *g = NULL;
    if (ponder_gen_create(t->m, t->tok, &p, &g, &err) != PONDER_OK)
        fail_msg("gen_create: %s", err.msg);
    return g;
}

static ponder_token *encode(const loaded *t, const char *text, int32_t *n)
{
    ponder_error err = {0};
    ponder_token *ids = NULL;
    size_t len = 0;
    assert_int_equal(ponder_tokenizer_encode(t->tok, text, strlen(text), true, false, &ids, &len, &err), PONDER_OK);
    *n = (int32_t)len;
    return ids;
}

/* What one choice produced. */
typedef struct outcome {
    ponder_token tokens[MAX_TOK];
    int32_t n_tokens;
    char text[4096];
    size_t text_len;
    char streamed[4096]; /* the events' text, concatenated */
    size_t streamed_len;
    ponder_finish finish;
} outcome;

typedef struct collector {
    outcome *o; /* one per choice */
} collector;

static void on_event(const ponder_gen_event *ev, void *user)
{
    collector *c = user;
    outcome *o = &c->o[ev->choice];
    assert_true(o->streamed_len + ev->text_len < sizeof o->streamed);
    memcpy(o->streamed + o->streamed_len, ev->text, ev->text_len);
    o->streamed_len += ev->text_len;
}

static ponder_gen_request greedy_request(const ponder_token *prompt, int32_t n_prompt, int32_t max_tokens)
{
    ponder_gen_request r = {0};
    r.prompt = prompt;
    r.n_prompt = n_prompt;
    r.n_choices = 1;
    r.max_tokens = max_tokens;
    r.sampling = ponder_sampler_params_default();
    r.sampling.temp = 0.0f;
    r.ignore_eos = true;
    return r;
}

/* Submits every request, steps until all are done, reads the outcomes (o[i] holds request
 * i's choices one after the other) and the usage summed over the requests. */
static void run_requests(ponder_gen *g, ponder_gen_request *reqs, int32_t n_reqs, outcome *o, ponder_gen_usage *sum)
{
    ponder_error err = {0};
    int32_t ids[16];
    collector cols[16];
    assert_true(n_reqs <= 16);
    int32_t at = 0;
    for (int32_t i = 0; i < n_reqs; i++) {
        memset(o + at, 0, (size_t)reqs[i].n_choices * sizeof *o);
        cols[i].o = o + at;
        at += reqs[i].n_choices;
        reqs[i].on_event = on_event;
        reqs[i].user = &cols[i];
        if (ponder_gen_submit(g, &reqs[i], &ids[i], &err) != PONDER_OK)
            fail_msg("submit: %s", err.msg);
    }
    for (int guard = 0; ponder_gen_n_pending(g) > 0; guard++) {
        bool did = false;
        if (ponder_gen_step(g, &did, &err) != PONDER_OK)
            fail_msg("step: %s", err.msg);
        assert_true(did);
        assert_true(guard < 100000);
    }
    if (sum)
        memset(sum, 0, sizeof *sum);
    at = 0;
    for (int32_t i = 0; i < n_reqs; i++) {
        for (int32_t c = 0; c < reqs[i].n_choices; c++, at++) {
            ponder_gen_choice_result res;
            assert_int_equal(ponder_gen_result(g, ids[i], c, &res, &err), PONDER_OK);
            assert_true(res.n_tokens <= MAX_TOK && res.text_len < sizeof o[at].text);
            memcpy(o[at].tokens, res.tokens, (size_t)res.n_tokens * sizeof *res.tokens);
            o[at].n_tokens = res.n_tokens;
            memcpy(o[at].text, res.text, res.text_len);
            o[at].text_len = res.text_len;
            o[at].finish = res.finish;
            /* the stream said exactly the final text */
            assert_int_equal(o[at].streamed_len, res.text_len);
            assert_memory_equal(o[at].streamed, res.text, res.text_len);
        }
        ponder_gen_usage u;
        assert_int_equal(ponder_gen_usage_of(g, ids[i], &u, &err), PONDER_OK);
        if (sum) {
            sum->completion_tokens += u.completion_tokens;
            sum->flops += u.flops;
            sum->draft_tokens += u.draft_tokens;
            sum->draft_accepted += u.draft_accepted;
            sum->verify_steps += u.verify_steps;
        }
        ponder_gen_release(g, ids[i]);
    }
}

static void same_outcome(const outcome *a, const outcome *b)
{
    assert_int_equal(a->n_tokens, b->n_tokens);
    assert_memory_equal(a->tokens, b->tokens, (size_t)a->n_tokens * sizeof *a->tokens);
    assert_int_equal(a->text_len, b->text_len);
    assert_memory_equal(a->text, b->text, a->text_len);
    assert_int_equal(a->finish, b->finish);
}

static const char *const PROMPTS[] = {
    "Once upon a time",
    "The little dog ran to the park and",
    /* not from shared: mixed case, digits, punctuation, a non-ASCII character */
    "Zebra 42 quietly juggled; xylophones hummed at 7:15 \xc3\xa9t\xc3\xa9!",
};
#define N_PROMPTS (int32_t)(sizeof PROMPTS / sizeof PROMPTS[0])

/* Greedy with the draft == greedy without, for each prompt and k; returns the acceptance
 * over all runs (proposed tokens > 0 asserted). */
static double greedy_pair(const char *target_path, const char *draft_path, int32_t max_tokens)
{
    loaded t, d;
    if (!load(target_path, &t))
        fail_msg("missing %s", target_path);
    if (!load(draft_path, &d))
        fail_msg("missing %s", draft_path);
    static outcome plain[2], spec[2];
    ponder_gen *g0 = make_gen(&t, NULL, 1, 256, 0, 0, 0);
    int32_t proposed = 0, accepted = 0;
    for (int32_t pi = 0; pi < N_PROMPTS; pi++) {
        int32_t n;
        ponder_token *ids = encode(&t, PROMPTS[pi], &n);
        ponder_gen_request r = greedy_request(ids, n, max_tokens);
        ponder_gen_usage u0;
        run_requests(g0, &r, 1, plain, &u0);
        assert_int_equal(plain[0].n_tokens, max_tokens);
        const int32_t ks[][2] = {{1, 1}, {4, 16}, {16, 16}};
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            ponder_gen *g = make_gen(&t, d.m, 1, 256, 0, ks[ki][0], ks[ki][1]);
            ponder_gen_usage u;
            r = greedy_request(ids, n, max_tokens);
            run_requests(g, &r, 1, spec, &u);
            same_outcome(&plain[0], &spec[0]);
            assert_true(u.verify_steps > 0);
            assert_true(u.draft_accepted <= u.draft_tokens);
            /* each verify commits its accepted proposals and one token of the model's */
            assert_true(u.draft_accepted + u.verify_steps <= u.completion_tokens);
            assert_true(u.flops > u0.flops); /* the draft's work and the rejected positions count */
            proposed += u.draft_tokens;
            accepted += u.draft_accepted;
            ponder_gen_free(g);
        }
        free(ids);
    }
    ponder_gen_free(g0);
    unload(&d);
    unload(&t);
    assert_true(proposed > 0);
    return (double)accepted / proposed;
}

static void test_greedy_self_draft_accepts_all(void **state)
{
    (void)state;
    const double a = greedy_pair(tu_shared(SYN "syn-tiny-F32.gguf"), tu_shared(SYN "syn-tiny-F32.gguf"), 96);
    assert_true(a == 1.0);
}

static void test_greedy_quantized_drafts(void **state)
{
    (void)state;
    const double a8 = greedy_pair(tu_shared(SYN "syn-tiny-F32.gguf"), tu_shared(SYN "syn-tiny-Q8_0.gguf"), 96);
    const double a4 = greedy_pair(tu_shared(SYN "syn-tiny-F32.gguf"), tu_shared(SYN "syn-tiny-Q4_0.gguf"), 96);
    print_message("acceptance: Q8_0 draft %.3f, Q4_0 draft %.3f\n", a8, a4);
    assert_true(a8 > 0.5); /* a close copy agrees most of the time */
    assert_true(a8 < 1.0 || a4 < 1.0); /* and the pairs do exercise rejections */
}

static void test_greedy_other_pairs(void **state)
{
    (void)state;
    /* same vocabulary, unrelated weights: most proposals rejected, output unchanged */
    greedy_pair(tu_shared(SYN "syn-tiny-F32.gguf"), tu_shared("models/stories260K/stories260K.gguf"), 64);
    greedy_pair(tu_shared(SYN "syn-tiny-phi3-F32.gguf"), tu_shared(SYN "syn-tiny-phi3-Q8_0.gguf"), 64);
    const char *qwen = tu_model_path("shared/" SYN "syn-tiny-qwen2-F32.gguf");
    if (qwen)
        greedy_pair(qwen, tu_shared(SYN "syn-tiny-qwen2-Q8_0.gguf"), 64);
    else
        print_message("skipping the qwen2 pair: run scripts/make-fixtures.sh for syn-tiny-qwen2-F32\n");
}

/* The trained pair: arith-s1 (0.85M) drafting for arith-s2 (4.6M), same tokenizer, on
 * arithmetic questions in their training format; EOS ends them as it would. */
static void test_greedy_arith_pair(void **state)
{
    (void)state;
    loaded t, d;
    if (!load(REPO_MODELS "/arith-s2.gguf", &t) || !load(REPO_MODELS "/arith-s1.gguf", &d)) {
        print_message("skipping: models/arith-s1.gguf or arith-s2.gguf missing\n");
        return;
    }
    static const char *const q[] = {
        "Ann has 19 apples. She gives away 10. She gets 5 more. How many apples does Ann have?\n",
        "Ben has 19 apples. He gets 15 more. He gives away 9. How many apples does Ben have?\n",
        "Tom has 7 books. He gets 19 more. He gets 14 more. How many books does Tom have?\n",
    };
    static outcome plain[1], spec[1];
    ponder_gen *g0 = make_gen(&t, NULL, 1, 256, 0, 0, 0);
    ponder_gen *g = make_gen(&t, d.m, 1, 256, 0, 0, 0);
    int32_t proposed = 0, accepted = 0;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        int32_t n;
        ponder_token *ids = encode(&t, q[i], &n);
        ponder_gen_request r = greedy_request(ids, n, 120);
        r.ignore_eos = false;
        run_requests(g0, &r, 1, plain, NULL);
        ponder_gen_usage u;
        run_requests(g, &r, 1, spec, &u);
        same_outcome(&plain[0], &spec[0]);
        assert_non_null(strstr(spec[0].text, "The answer is"));
        proposed += u.draft_tokens;
        accepted += u.draft_accepted;
        free(ids);
    }
    print_message("arith-s1 drafting for arith-s2: %d of %d accepted\n", accepted, proposed);
    assert_true(accepted > proposed / 2); /* both learnt the same format */
    ponder_gen_free(g);
    ponder_gen_free(g0);
    unload(&d);
    unload(&t);
}

/* Several requests and choices at once (the draft's forked prompts), stop strings, and a
 * context whose cells fit the tokens but not every proposal: still the same output. */
static void test_greedy_batched_stops_and_cells(void **state)
{
    (void)state;
    loaded t, d;
    assert_true(load(tu_shared(SYN "syn-tiny-F32.gguf"), &t));
    assert_true(load(tu_shared(SYN "syn-tiny-Q4_0.gguf"), &d));
    static outcome plain[8], spec[8];
    ponder_token *ids[N_PROMPTS];
    int32_t n[N_PROMPTS];
    ponder_gen_request reqs[N_PROMPTS];
    for (int32_t i = 0; i < N_PROMPTS; i++) {
        ids[i] = encode(&t, PROMPTS[i], &n[i]);
        reqs[i] = greedy_request(ids[i], n[i], 40 + 13 * i);
        reqs[i].n_choices = i == 1 ? 3 : 1;
    }
    ponder_gen *g0 = make_gen(&t, NULL, 8, 128, 0, 0, 0);
    ponder_gen *g = make_gen(&t, d.m, 8, 128, 0, 8, 16);
    run_requests(g0, reqs, N_PROMPTS, plain, NULL);
    ponder_gen_usage u;
    run_requests(g, reqs, N_PROMPTS, spec, &u);
    for (int32_t i = 0; i < 5; i++)
        same_outcome(&plain[i], &spec[i]);
    assert_true(u.draft_tokens > 0);

    /* stop strings: cut where the plain run's text has them (a string spanning tokens) */
    char stop[8];
    assert_true(plain[0].text_len > 30);
    memcpy(stop, plain[0].text + 20, 3);
    stop[3] = '\0';
    const char *stops[] = {stop};
    ponder_gen_request r = greedy_request(ids[0], n[0], 80);
    r.stop = stops;
    r.n_stop = 1;
    run_requests(g0, &r, 1, plain, NULL);
    run_requests(g, &r, 1, spec, NULL);
    same_outcome(&plain[0], &spec[0]);
    assert_int_equal(spec[0].finish, PONDER_FINISH_STOP);
    /* penalised greedy: the model's window gets each committed token in order */
    r = greedy_request(ids[1], n[1], 70);
    r.sampling.repeat_penalty = 1.3f;
    r.sampling.frequency_penalty = 0.2f;
    run_requests(g0, &r, 1, plain, NULL);
    run_requests(g, &r, 1, spec, NULL);
    same_outcome(&plain[0], &spec[0]);
    ponder_gen_free(g);
    ponder_gen_free(g0);

    /* 64 cells: the prompt and 50 tokens fit, 16 proposals on top do not always */
    g0 = make_gen(&t, NULL, 1, 128, 64, 0, 0);
    g = make_gen(&t, d.m, 1, 128, 64, 16, 16);
    r = greedy_request(ids[0], n[0], 50);
    run_requests(g0, &r, 1, plain, NULL);
    run_requests(g, &r, 1, spec, &u);
    same_outcome(&plain[0], &spec[0]);
    assert_int_equal(spec[0].n_tokens, 50);
    /* the end of the context: -n larger than the context allows */
    ponder_gen_free(g);
    ponder_gen_free(g0);
    g0 = make_gen(&t, NULL, 1, 40, 0, 0, 0);
    g = make_gen(&t, d.m, 1, 40, 0, 16, 16);
    r = greedy_request(ids[0], n[0], 0);
    run_requests(g0, &r, 1, plain, NULL);
    run_requests(g, &r, 1, spec, NULL);
    same_outcome(&plain[0], &spec[0]);
    assert_int_equal(spec[0].finish, PONDER_FINISH_LENGTH);
    assert_int_equal(spec[0].n_tokens, 40 - n[0] + 1);
    ponder_gen_free(g);
    ponder_gen_free(g0);
    for (int32_t i = 0; i < N_PROMPTS; i++)
        free(ids[i]);
    unload(&d);
    unload(&t);
}

/* A draft that never agrees pauses (its acceptance is below its cost: stories260K is a
 * tenth of syn-tiny's bytes), probing now and then; one that always agrees never does. */
static void test_pause_when_draft_does_not_pay(void **state)
{
    (void)state;
    loaded t, bad;
    assert_true(load(tu_shared(SYN "syn-tiny-F32.gguf"), &t));
    assert_true(load(tu_shared("models/stories260K/stories260K.gguf"), &bad));
    int32_t n;
    ponder_token *ids = encode(&t, PROMPTS[0], &n);
    static outcome o[1];
    ponder_gen_usage u;
    ponder_gen *g = make_gen(&t, bad.m, 1, 256, 0, 4, 16);
    ponder_gen_request r = greedy_request(ids, n, 120);
    run_requests(g, &r, 1, o, &u);
    print_message("unrelated draft: %d proposed over %d tokens, %d accepted\n", u.draft_tokens, u.completion_tokens,
                  u.draft_accepted);
    assert_true(u.draft_accepted * 10 < u.draft_tokens); /* it does disagree */
    assert_true(u.draft_tokens >= 8);                     /* four verifies before judging */
    assert_true(u.draft_tokens < 24);                     /* then mostly paused: 16 steps each */
    assert_true(u.verify_steps > 5);                      /* with probes in between */
    ponder_gen_free(g);
    g = make_gen(&t, t.m, 1, 256, 0, 4, 16);
    run_requests(g, &r, 1, o, &u);
    assert_int_equal(u.draft_accepted, u.draft_tokens);
    assert_true(u.draft_tokens + u.verify_steps >= 119); /* every token after the first came from a verify */
    ponder_gen_free(g);
    free(ids);
    unload(&bad);
    unload(&t);
}

/* ---- the accept/reject rule, exactly ---- */

/* The output distribution of gen_spec_verify for x ~ q, over stratified uniforms: with
 * N strata per uniform the result is exact up to 1/N per decision. */
static void rule_distribution(const float *p, const float *q, int32_t n, double *out)
{
    enum { N = 2000 };
    for (int32_t y = 0; y < n; y++)
        out[y] = 0.0;
    for (int32_t x = 0; x < n; x++) {
        if (!(q[x] > 0.0f))
            continue;
        for (int a = 0; a < N; a++) {
            const double ua = (a + 0.5) / N;
            bool acc;
            int32_t t = gen_spec_verify(p, q, n, x, ua, 0.5, &acc);
            if (acc) {
                assert_int_equal(t, x);
                out[x] += (double)q[x] / N;
                continue;
            }
            for (int b = 0; b < 50; b++) { /* the residual draw, stratified too */
                t = gen_spec_verify(p, q, n, x, ua, (b + 0.5) / 50, &acc);
                assert_false(acc);
                assert_true(t >= 0 && t < n);
                out[t] += (double)q[x] / N / 50;
            }
        }
    }
}

static void test_rule_preserves_target(void **state)
{
    (void)state;
    /* overlapping, disjoint-ish, identical, one-hot (greedy) and q wider than p */
    static const float cases[][2][6] = {
        {{0.5f, 0.2f, 0.1f, 0.1f, 0.1f, 0.0f}, {0.1f, 0.4f, 0.1f, 0.2f, 0.0f, 0.2f}},
        {{0.0f, 0.0f, 0.0f, 0.3f, 0.3f, 0.4f}, {0.6f, 0.4f, 0.0f, 0.0f, 0.0f, 0.0f}},
        {{0.25f, 0.25f, 0.25f, 0.25f, 0.0f, 0.0f}, {0.25f, 0.25f, 0.25f, 0.25f, 0.0f, 0.0f}},
        {{0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f}},
        {{0.9f, 0.1f, 0.0f, 0.0f, 0.0f, 0.0f}, {0.2f, 0.2f, 0.2f, 0.2f, 0.1f, 0.1f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double out[6];
        rule_distribution(cases[c][0], cases[c][1], 6, out);
        for (int y = 0; y < 6; y++)
            if (fabs(out[y] - cases[c][0][y]) > 2e-3)
                fail_msg("case %zu token %d: %.5f, want %.5f", c, y, out[y], (double)cases[c][0][y]);
    }
    /* a draw never lands on a zero */
    const float p[4] = {0.0f, 0.5f, 0.0f, 0.5f};
    for (int i = 0; i < 100; i++) {
        int32_t t = gen_spec_draw(p, 4, (i + 0.5) / 100);
        assert_true(t == 1 || t == 3);
    }
    const float zero[2] = {0.0f, 0.0f};
    assert_int_equal(gen_spec_draw(zero, 2, 0.3), -1);
}

static void test_k_adaptation(void **state)
{
    (void)state;
    assert_int_equal(gen_spec_next_k(4, 4, 16), 5);   /* all accepted: grow */
    assert_int_equal(gen_spec_next_k(16, 16, 16), 16); /* bounded */
    assert_int_equal(gen_spec_next_k(8, 1, 16), 4);    /* early reject: halve */
    assert_int_equal(gen_spec_next_k(8, 5, 16), 8);    /* late reject: keep */
    assert_int_equal(gen_spec_next_k(1, 0, 16), 1);    /* never below 1 */
    assert_int_equal(gen_spec_next_k(2, 0, 16), 1);
}

/* ---- sampling end to end ---- */

/* The model's distribution at each step, computed here: top-k of the logits, softmax at
 * temperature T, in double (the sampler's chain with top-p and min-p off). */
static void topk_softmax(const float *l, int32_t n, int32_t k, double temp, double *out)
{
    for (int32_t i = 0; i < n; i++)
        out[i] = 0.0;
    int32_t best[64];
    for (int32_t j = 0; j < k; j++) {
        int32_t b = -1;
        for (int32_t i = 0; i < n; i++) {
            bool taken = false;
            for (int32_t q = 0; q < j; q++)
                taken |= best[q] == i;
            if (!taken && (b < 0 || l[i] > l[b]))
                b = i;
        }
        best[j] = b;
    }
    double z = 0.0;
    for (int32_t j = 0; j < k; j++)
        z += exp(((double)l[best[j]] - l[best[0]]) / temp);
    for (int32_t j = 0; j < k; j++)
        out[best[j]] = exp(((double)l[best[j]] - l[best[0]]) / temp) / z;
}

/* Chi-square critical value at tail probability 1e-6 (Wilson-Hilferty, z = 4.753). */
static double chi2_crit(int df)
{
    const double z = 4.753, a = 2.0 / (9.0 * df);
    return df * pow(1.0 - a + z * sqrt(a), 3.0);
}

/* Chi-square of counts against expected probabilities, cells with expected < 5 pooled. */
static double chi2(const int32_t *count, const double *prob, int32_t n_cells, int32_t total, int *df)
{
    double stat = 0.0, pool_e = 0.0, pool_o = 0.0;
    int cells = 0;
    for (int32_t i = 0; i < n_cells; i++) {
        const double e = prob[i] * total;
        if (e < 5.0) {
            pool_e += e;
            pool_o += count[i];
            assert_true(prob[i] > 0.0 || count[i] == 0); /* never a token the model cannot give */
            continue;
        }
        stat += (count[i] - e) * (count[i] - e) / e;
        cells++;
    }
    if (pool_e > 0.0) {
        stat += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1.0 ? pool_e : 1.0);
        cells++;
    }
    *df = cells - 1;
    return stat;
}

static void sampled_matches_target(const char *draft_path, int32_t k, int32_t n_runs)
{
    enum { TOPK = 6 };
    const double temp = 1.5;
    loaded t, d;
    assert_true(load(tu_shared(SYN "syn-tiny-F32.gguf"), &t));
    assert_true(load(draft_path, &d));
    ponder_error err = {0};
    int32_t n_prompt;
    ponder_token *prompt = encode(&t, "Once upon a time", &n_prompt);
    const int32_t nv = ponder_model_hparams(t.m)->n_vocab;

    /* the exact joint distribution of the first two tokens: p(t0) p(t1 | t0) */
    ponder_context_params cp = ponder_context_params_default();
    cp.n_ctx = 64;
    ponder_context *ctx = NULL;
    assert_int_equal(ponder_context_create(t.m, &cp, &ctx, &err), PONDER_OK);
    double *p0 = malloc((size_t)nv * sizeof *p0), *p1 = malloc((size_t)nv * sizeof *p1);
    double *joint = calloc((size_t)nv * (size_t)nv, sizeof *joint);
    int32_t *count = calloc((size_t)nv * (size_t)nv, sizeof *count);
    assert_non_null(p0);
    assert_non_null(p1);
    assert_non_null(joint);
    assert_non_null(count);
    assert_int_equal(ponder_context_decode(ctx, prompt, n_prompt, NULL, &err), PONDER_OK);
    topk_softmax(ponder_context_logits(ctx), nv, TOPK, temp, p0);
    for (int32_t a = 0; a < nv; a++) {
        if (p0[a] == 0.0)
            continue;
        assert_int_equal(ponder_context_seq_truncate(ctx, 0, n_prompt, &err), PONDER_OK);
        assert_int_equal(ponder_context_decode(ctx, &a, 1, NULL, &err), PONDER_OK);
        topk_softmax(ponder_context_logits(ctx), nv, TOPK, temp, p1);
        for (int32_t b = 0; b < nv; b++)
            joint[(size_t)a * nv + b] = p0[a] * p1[b];
    }

    /* many seeds, 16 requests at a time */
    ponder_gen *g = make_gen(&t, d.m, 16, 64, 0, k, k);
    int32_t proposed = 0, accepted = 0;
    static outcome o[16];
    for (int32_t base = 0; base < n_runs; base += 16) {
        ponder_gen_request reqs[16];
        for (int32_t i = 0; i < 16; i++) {
            ponder_gen_request r = {0};
            r.prompt = prompt;
            r.n_prompt = n_prompt;
            r.n_choices = 1;
            r.max_tokens = 2 + k; /* the first token, then one verify of k proposals */
            r.sampling = ponder_sampler_params_default();
            r.sampling.temp = (float)temp;
            r.sampling.top_k = TOPK;
            r.sampling.top_p = 1.0f;
            r.sampling.min_p = 0.0f;
            r.sampling.seed = 1000 + (uint64_t)(base + i);
            r.ignore_eos = true;
            reqs[i] = r;
        }
        ponder_gen_usage u;
        run_requests(g, reqs, 16, o, &u);
        proposed += u.draft_tokens;
        accepted += u.draft_accepted;
        for (int32_t i = 0; i < 16; i++)
            count[(size_t)o[i].tokens[0] * nv + o[i].tokens[1]]++;
    }
    const int32_t total = (n_runs + 15) / 16 * 16;
    int df;
    const double stat = chi2(count, joint, nv * nv, total, &df);
    print_message("draft %s, k %d: acceptance %.3f, chi-square %.1f on %d df (bound %.1f)\n", draft_path, k,
                  (double)accepted / proposed, stat, df, chi2_crit(df));
    assert_true(df >= 10);
    assert_true(stat < chi2_crit(df));
    assert_true(proposed > 0 && accepted < proposed); /* rejections happened: the residual was used */

    /* the draft's own distribution is far from it: the test tells the two apart */
    ponder_context *dctx = NULL;
    assert_int_equal(ponder_context_create(d.m, &cp, &dctx, &err), PONDER_OK);
    assert_int_equal(ponder_context_decode(dctx, prompt, n_prompt, NULL, &err), PONDER_OK);
    double *q0 = malloc((size_t)nv * sizeof *q0);
    assert_non_null(q0);
    topk_softmax(ponder_context_logits(dctx), nv, TOPK, temp, q0);
    double tv = 0.0;
    for (int32_t i = 0; i < nv; i++)
        tv += fabs(q0[i] - p0[i]) / 2;
    print_message("total variation between draft and model at the first token: %.3f\n", tv);
    free(q0);
    ponder_context_free(dctx);

    ponder_gen_free(g);
    ponder_context_free(ctx);
    free(count);
    free(joint);
    free(p1);
    free(p0);
    free(prompt);
    unload(&d);
    unload(&t);
}

static void test_sampled_preserves_distribution(void **state)
{
    (void)state;
    /* an unrelated draft (most proposals rejected: the residual does the work) and a close one */
    sampled_matches_target(tu_shared("models/stories260K/stories260K.gguf"), 1, 1600);
    sampled_matches_target(tu_shared(SYN "syn-tiny-Q4_0.gguf"), 2, 1600);
}

/* The first token is sampled by the model alone; the statistic also sees t1, which a
 * rule keeping the draft's proposal unconditionally would give from the draft. This
 * checks that such a rule fails the same test: the draft's joint against the model's. */
static void test_chi2_detects_draft_distribution(void **state)
{
    (void)state;
    /* counts drawn from q, tested against p: must exceed the bound (deterministic) */
    enum { N = 8, TOTAL = 4000 };
    const double p[N] = {0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05};
    const double q[N] = {0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05};
    int32_t count[N];
    for (int i = 0; i < N; i++)
        count[i] = (int32_t)lround(q[i] * TOTAL);
    int df;
    const double stat = chi2(count, p, N, TOTAL, &df);
    assert_true(stat > chi2_crit(df));
}

/* Sampled with a draft, the gen.h promise holds: a request of n choices gives the texts
 * of n one-choice requests with seeds seed + i, whatever runs beside it. */
static void test_sampled_choices_equal_separate(void **state)
{
    (void)state;
    loaded t, d;
    assert_true(load(tu_shared(SYN "syn-tiny-F32.gguf"), &t));
    assert_true(load(tu_shared(SYN "syn-tiny-Q8_0.gguf"), &d));
    int32_t n;
    ponder_token *ids = encode(&t, PROMPTS[1], &n);
    ponder_gen_request r = greedy_request(ids, n, 60);
    r.sampling.temp = 0.9f;
    r.sampling.seed = 77;
    r.sampling.repeat_penalty = 1.1f; /* the draft's chain rebuilds the penalty window */
    r.n_choices = 3;
    static outcome together[3], alone[3], again[1];
    ponder_gen *g = make_gen(&t, d.m, 4, 128, 0, 0, 0);
    run_requests(g, &r, 1, together, NULL);
    for (int32_t i = 0; i < 3; i++) {
        ponder_gen_request one = r;
        one.n_choices = 1;
        one.sampling.seed = 77 + (uint64_t)i;
        run_requests(g, &one, 1, again, NULL);
        alone[i] = again[0];
        same_outcome(&together[i], &alone[i]);
    }
    assert_true(together[0].n_tokens != together[1].n_tokens ||
                memcmp(together[0].tokens, together[1].tokens, (size_t)together[0].n_tokens * sizeof(ponder_token)) != 0);
    ponder_gen_free(g);
    free(ids);
    unload(&d);
    unload(&t);
}

/* ---- vocabulary checks ---- */

static void test_vocab_mismatch(void **state)
{
    (void)state;
    loaded t, other;
    assert_true(load(tu_shared(SYN "syn-tiny-F32.gguf"), &t));
    assert_true(load(tu_shared(SYN "syn-tiny-qwen2-Q8_0.gguf"), &other));
    ponder_error err = {0};
    ponder_gen_params p = ponder_gen_params_default();
    p.draft = other.m;
    ponder_gen *g = NULL;
    assert_int_equal(ponder_gen_create(t.m, t.tok, &p, &g, &err), PONDER_ERR_INVALID_ARG);
    assert_null(g);
    assert_non_null(strstr(err.msg, "vocabulary"));
    unload(&other);

    /* same size, one token text changed: a copy of the Q4_0 model with token 300 renamed */
    char path[] = "/tmp/ponder-test-spec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ponder_gguf *src = NULL;
    assert_int_equal(ponder_gguf_open(tu_shared(SYN "syn-tiny-Q4_0.gguf"), &src, &err), PONDER_OK);
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w, &err), PONDER_OK);
    assert_int_equal(ponder_gguf_writer_copy_kv(w, src, &err), PONDER_OK);
    const ponder_gguf_array *tokens = NULL;
    assert_int_equal(ponder_gguf_get_arr(src, "tokenizer.ggml.tokens", PONDER_GGUF_STRING, &tokens, &err), PONDER_OK);
    ponder_gguf_value *elems = calloc(tokens->n, sizeof *elems);
    assert_non_null(elems);
    for (uint64_t i = 0; i < tokens->n; i++)
        elems[i] = tokens->elems[i];
    elems[300].v.str = (ponder_gguf_str){"renamed", 7};
    ponder_gguf_value v = {.type = PONDER_GGUF_ARRAY};
    v.v.arr = (ponder_gguf_array){.elem_type = PONDER_GGUF_STRING, .n = tokens->n, .elems = elems};
    assert_int_equal(ponder_gguf_writer_set(w, "tokenizer.ggml.tokens", &v, &err), PONDER_OK);
    for (int64_t i = 0; i < ponder_gguf_n_tensors(src); i++) {
        const ponder_gguf_tensor *tt = ponder_gguf_tensor_at(src, i);
        assert_int_equal(ponder_gguf_writer_add_tensor(w, tt->name, tt->type, tt->n_dims, tt->ne, tt->data, &err),
                         PONDER_OK);
    }
    assert_int_equal(ponder_gguf_writer_write(w, path, &err), PONDER_OK);
    ponder_gguf_writer_free(w);
    free(elems);
    ponder_gguf_free(src);
    loaded renamed;
    assert_true(load(path, &renamed));
    assert_int_equal(ponder_gen_check_draft(t.m, renamed.m, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "token 300"));
    assert_non_null(strstr(err.msg, "renamed"));

    /* the CLI: one line, exit status 1 */
    tu_cli_result r = TU_RUN_CLI(NULL, "run", "-m", tu_shared(SYN "syn-tiny-F32.gguf"), "--draft",
                                 path, "-n", "4");
    if (getenv("PONDER_BIN")) {
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "token 300"));
        assert_non_null(strchr(r.err, '\n'));
        assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
    }
    tu_cli_result_free(&r);
    unload(&renamed);
    unlink(path);

    /* bad k */
    loaded d;
    assert_true(load(tu_shared(SYN "syn-tiny-Q4_0.gguf"), &d));
    p.draft = d.m;
    p.draft_k = 17;
    assert_int_equal(ponder_gen_create(t.m, t.tok, &p, &g, &err), PONDER_ERR_INVALID_ARG);
    unload(&d);
    unload(&t);
}

/* The CLI: `ponder run --draft` prints the tokens `ponder run` prints (greedy), with the
 * counts under "speculative"; `ponder bench --draft` reports both speeds. */
static char *json_field(const char *s, const char *key)
{
    const char *at = strstr(s, key);
    if (!at)
        return NULL;
    const char *end = strchr(at, ']');
    if (!end)
        return NULL;
    char *out = strndup(at, (size_t)(end - at));
    return out;
}

static void test_cli(void **state)
{
    (void)state;
    if (!getenv("PONDER_BIN")) {
        print_message("skipping: PONDER_BIN is not set (run through ctest)\n");
        return;
    }
    const char *m = tu_shared(SYN "syn-tiny-F32.gguf");
    tu_cli_result a = TU_RUN_CLI(NULL, "run", "-m", m, "-p", PROMPTS[2], "--temp", "0", "-n", "40", "-t", "1", "--json");
    tu_cli_result b = TU_RUN_CLI(NULL, "run", "-m", m, "--draft", tu_shared(SYN "syn-tiny-Q8_0.gguf"), "--draft-k", "3",
                                 "-p", PROMPTS[2], "--temp", "0", "-n", "40", "-t", "1", "--json");
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    char *ta = json_field(a.out, "\"tokens\""), *tb = json_field(b.out, "\"tokens\"");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    assert_non_null(strstr(b.out, "\"speculative\""));
    assert_non_null(strstr(b.out, "\"acceptance_rate\""));
    assert_non_null(strstr(b.err, "speculative: draft"));
    free(ta);
    free(tb);
    tu_cli_result_free(&a);
    tu_cli_result_free(&b);

    /* sampled: runs, same seed same text */
    tu_cli_result c = TU_RUN_CLI(NULL, "run", "-m", m, "--draft", tu_shared(SYN "syn-tiny-Q4_0.gguf"), "--temp", "0.8",
                                 "-s", "7", "-n", "30", "-t", "1");
    tu_cli_result d = TU_RUN_CLI(NULL, "run", "-m", m, "--draft", tu_shared(SYN "syn-tiny-Q4_0.gguf"), "--temp", "0.8",
                                 "-s", "7", "-n", "30", "-t", "1");
    assert_int_equal(c.status, 0);
    assert_int_equal(d.status, 0);
    assert_true(c.out_len > 0);
    assert_int_equal(c.out_len, d.out_len);
    assert_memory_equal(c.out, d.out, c.out_len);
    tu_cli_result_free(&c);
    tu_cli_result_free(&d);

    /* a think strategy decodes its chains on gen: with the draft, greedy, the same chain */
    tu_cli_result sa = TU_RUN_CLI(NULL, "run", "-m", m, "-p", PROMPTS[0], "--strategy", "direct", "--answer", "text", "-n",
                                  "30", "-t", "1");
    tu_cli_result sb = TU_RUN_CLI(NULL, "run", "-m", m, "--draft", tu_shared(SYN "syn-tiny-Q4_0.gguf"), "-p", PROMPTS[0],
                                  "--strategy", "direct", "--answer", "text", "-n", "30", "-t", "1");
    assert_int_equal(sa.status, 0);
    assert_int_equal(sb.status, 0);
    assert_true(sa.out_len > 0);
    assert_int_equal(sa.out_len, sb.out_len);
    assert_memory_equal(sa.out, sb.out, sa.out_len);
    tu_cli_result_free(&sa);
    tu_cli_result_free(&sb);

    tu_cli_result e = TU_RUN_CLI(NULL, "bench", "-m", m, "--draft", m, "-n", "24", "-r", "1", "-t", "1", "--json");
    assert_int_equal(e.status, 0);
    assert_non_null(strstr(e.out, "\"speedup\""));
    assert_non_null(strstr(e.out, "\"acceptance_rate\": 1.0"));
    tu_cli_result_free(&e);
    tu_cli_result f = TU_RUN_CLI(NULL, "bench", "-m", m, "--draft-k", "2");
    assert_int_equal(f.status, 2);
    tu_cli_result_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_preserves_target),
        cmocka_unit_test(test_k_adaptation),
        cmocka_unit_test(test_chi2_detects_draft_distribution),
        cmocka_unit_test(test_greedy_self_draft_accepts_all),
        cmocka_unit_test(test_greedy_quantized_drafts),
        cmocka_unit_test(test_greedy_other_pairs),
        cmocka_unit_test(test_greedy_arith_pair),
        cmocka_unit_test(test_greedy_batched_stops_and_cells),
        cmocka_unit_test(test_pause_when_draft_does_not_pay),
        cmocka_unit_test(test_sampled_preserves_distribution),
        cmocka_unit_test(test_sampled_choices_equal_separate),
        cmocka_unit_test(test_vocab_mismatch),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
