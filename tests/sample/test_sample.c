/*
 * test_sample.c — the sampling chain against independently computed distributions.
 *
 * The reference below is the chain written the slow, obvious way (full sort, explicit
 * softmax per stage, in double). Draw frequencies are compared with it by a chi-square
 * statistic; tokens the reference excludes must never be drawn. Seeds are fixed, so the
 * statistical checks are deterministic: the bounds are loose enough for any correct
 * sampler and far too tight for a wrong stage order or a missing stage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/sample.h"

/* ---- helpers ---- */

static uint64_t lcg_state;
static double test_uniform(void)
{
    /* Test-side generator (independent of the sampler's) for making logits. */
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

static void random_logits(float *l, int n, double scale, uint64_t seed)
{
    lcg_state = seed;
    for (int i = 0; i < n; i++)
        l[i] = (float)((test_uniform() * 2.0 - 1.0) * scale);
}

static ponder_sampler *make(ponder_sampler_params p, int n_vocab)
{
    ponder_sampler *s = NULL;
    ponder_error err = { 0 };
    assert_int_equal(ponder_sampler_create(&p, n_vocab, &s, &err), PONDER_OK);
    assert_non_null(s);
    return s;
}

static ponder_sampler_params plain(float temp, uint64_t seed)
{
    ponder_sampler_params p = ponder_sampler_params_default();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

typedef struct ref_item {
    double logit;
    int id;
} ref_item;

static int ref_cmp(const void *a, const void *b)
{
    const ref_item *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* Reference chain: probs[n] receives the final distribution (0 for excluded tokens).
 * window: accepted tokens (already restricted to the last repeat_last_n). */
static void reference_probs(const float *logits, int n, const ponder_sampler_params *p, const int *window,
                            int n_window, double *probs)
{
    ref_item *it = calloc((size_t)n, sizeof *it);
    assert_non_null(it);
    double *l = calloc((size_t)n, sizeof *l);
    assert_non_null(l);
    for (int i = 0; i < n; i++)
        l[i] = logits[i];
    /* penalties: the repetition penalty once per distinct token, then OpenAI's
     * count * frequency + presence */
    int *count = calloc((size_t)n, sizeof *count);
    assert_non_null(count);
    for (int i = 0; i < n_window; i++)
        if (window[i] >= 0 && window[i] < n)
            count[window[i]]++;
    for (int t = 0; t < n; t++) {
        if (count[t] == 0)
            continue;
        l[t] = l[t] <= 0 ? l[t] * p->repeat_penalty : l[t] / p->repeat_penalty;
        l[t] -= count[t] * (double)p->frequency_penalty + (double)p->presence_penalty;
    }
    free(count);
    for (int i = 0; i < n; i++)
        it[i] = (ref_item){ (float)l[i], i };
    qsort(it, (size_t)n, sizeof *it, ref_cmp);
    int m = n;
    if (p->top_k > 0 && p->top_k < m)
        m = p->top_k;
    if (p->top_p < 1.0f) {
        double z = 0;
        for (int i = 0; i < m; i++)
            z += exp(it[i].logit - it[0].logit);
        double cum = 0;
        for (int i = 0; i < m; i++) {
            cum += exp(it[i].logit - it[0].logit) / z;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        int keep = 1;
        while (keep < m && exp(it[keep].logit - it[0].logit) >= p->min_p)
            keep++;
        m = keep;
    }
    memset(probs, 0, (size_t)n * sizeof *probs);
    double z = 0;
    for (int i = 0; i < m; i++)
        z += exp((it[i].logit - it[0].logit) / p->temp);
    for (int i = 0; i < m; i++)
        probs[it[i].id] = exp((it[i].logit - it[0].logit) / p->temp) / z;
    free(it);
    free(l);
}

/* Draws n_draws tokens and checks them against probs: no excluded token ever, and a
 * chi-square statistic below dof + 8*sqrt(2*dof) + 10 (about 5.6 sigma plus slack). */
static void check_draws(ponder_sampler *s, const float *logits, int n, const double *probs, int n_draws)
{
    long *counts = calloc((size_t)n, sizeof *counts);
    assert_non_null(counts);
    for (int d = 0; d < n_draws; d++) {
        int32_t t = ponder_sampler_sample(s, logits);
        assert_true(t >= 0 && t < n);
        if (probs[t] == 0.0)
            fail_msg("token %d drawn but excluded by the reference", (int)t);
        counts[t]++;
    }
    double chi2 = 0;
    int dof = -1;
    for (int i = 0; i < n; i++) {
        if (probs[i] == 0.0)
            continue;
        double e = probs[i] * n_draws;
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
        dof++;
    }
    if (dof > 0) {
        double bound = dof + 8.0 * sqrt(2.0 * dof) + 10.0;
        if (chi2 > bound)
            fail_msg("chi-square %.1f exceeds %.1f (dof %d)", chi2, bound, dof);
    }
    free(counts);
}

/* ---- tests ---- */

static void test_argmax(void **state)
{
    (void)state;
    float a[] = { 1.0f, 3.0f, 2.0f, 3.0f };
    assert_int_equal(ponder_argmax(a, 4), 1); /* tie → lowest id */
    float b[] = { NAN, -5.0f, -1.0f };
    assert_int_equal(ponder_argmax(b, 3), 2);
    float c[] = { -INFINITY, -INFINITY };
    assert_int_equal(ponder_argmax(c, 2), 0);
    assert_int_equal(ponder_argmax(a, 0), -1);
}

static void test_greedy_is_argmax(void **state)
{
    (void)state;
    enum { N = 3000 };
    static float l[N];
    for (uint64_t seed = 1; seed <= 5; seed++) {
        random_logits(l, N, 10.0, seed);
        int32_t want = ponder_argmax(l, N);
        ponder_sampler_params p = ponder_sampler_params_default(); /* top-k etc. ignored */
        p.temp = seed % 2 ? 0.0f : -1.0f;
        p.seed = seed;
        ponder_sampler *s = make(p, N);
        for (int i = 0; i < 10; i++)
            assert_int_equal(ponder_sampler_sample(s, l), want);
        ponder_sampler_free(s);
    }
    /* ties go to the lowest id under greedy */
    float t[] = { 0.5f, 2.0f, 2.0f, 1.0f };
    ponder_sampler *s = make(plain(0.0f, 1), 4);
    assert_int_equal(ponder_sampler_sample(s, t), 1);
    ponder_sampler_free(s);
}

static void test_same_seed_same_draws(void **state)
{
    (void)state;
    enum { N = 100, D = 300 };
    float l[N];
    random_logits(l, N, 2.0, 7);
    int32_t a[D], b[D], c[D];
    ponder_sampler *s1 = make(plain(1.0f, 42), N);
    ponder_sampler *s2 = make(plain(1.0f, 42), N);
    ponder_sampler *s3 = make(plain(1.0f, 43), N);
    for (int i = 0; i < D; i++) {
        a[i] = ponder_sampler_sample(s1, l);
        b[i] = ponder_sampler_sample(s2, l);
        c[i] = ponder_sampler_sample(s3, l);
    }
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (int i = 0; i < D; i++)
        differ += a[i] != c[i];
    assert_true(differ > D / 2); /* 100 near-uniform tokens: different streams rarely agree */
    assert_int_equal(ponder_sampler_seed(s1), 42);

    /* reset replays the same stream */
    ponder_sampler_reset(s1);
    for (int i = 0; i < D; i++)
        assert_int_equal(ponder_sampler_sample(s1, l), a[i]);
    ponder_sampler_free(s1);
    ponder_sampler_free(s2);
    ponder_sampler_free(s3);
}

static void test_random_seed_is_reported(void **state)
{
    (void)state;
    enum { N = 50, D = 100 };
    float l[N];
    random_logits(l, N, 2.0, 9);
    ponder_sampler *s = make(plain(1.0f, PONDER_SEED_RANDOM), N);
    uint64_t seed = ponder_sampler_seed(s);
    assert_true(seed != PONDER_SEED_RANDOM);
    ponder_sampler *r = make(plain(1.0f, seed), N);
    for (int i = 0; i < D; i++)
        assert_int_equal(ponder_sampler_sample(s, l), ponder_sampler_sample(r, l));
    ponder_sampler_free(s);
    ponder_sampler_free(r);
}

static void test_frequencies_match_softmax(void **state)
{
    (void)state;
    enum { N = 6 };
    const float l[N] = { 1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 1.5f };
    const float temps[] = { 1.0f, 0.5f, 2.0f };
    for (size_t k = 0; k < sizeof temps / sizeof temps[0]; k++) {
        ponder_sampler_params p = plain(temps[k], 1234 + k);
        double probs[N], z = 0;
        for (int i = 0; i < N; i++)
            z += exp(l[i] / temps[k]);
        for (int i = 0; i < N; i++)
            probs[i] = exp(l[i] / temps[k]) / z;
        ponder_sampler *s = make(p, N);
        check_draws(s, l, N, probs, 60000);
        ponder_sampler_free(s);
    }
    /* The chi-square bound must reject a wrong distribution: check temp-1 draws against
     * temp-0.5 probabilities by hand. */
    ponder_sampler *s = make(plain(1.0f, 5), N);
    long counts[N] = { 0 };
    for (int d = 0; d < 60000; d++)
        counts[ponder_sampler_sample(s, l)]++;
    double wrong[N], z = 0, chi2 = 0;
    for (int i = 0; i < N; i++)
        z += exp(l[i] / 0.5);
    for (int i = 0; i < N; i++) {
        wrong[i] = exp(l[i] / 0.5) / z * 60000;
        chi2 += (counts[i] - wrong[i]) * (counts[i] - wrong[i]) / wrong[i];
    }
    assert_true(chi2 > 5.0 + 8.0 * sqrt(10.0) + 10.0);
    ponder_sampler_free(s);
}

static void test_top_k_1_is_greedy(void **state)
{
    (void)state;
    enum { N = 5000 };
    static float l[N];
    random_logits(l, N, 3.0, 11);
    ponder_sampler_params p = plain(1.5f, 3);
    p.top_k = 1;
    ponder_sampler *s = make(p, N);
    int32_t want = ponder_argmax(l, N);
    for (int i = 0; i < 200; i++)
        assert_int_equal(ponder_sampler_sample(s, l), want);
    ponder_sampler_free(s);
}

static void test_top_p_excludes_tail(void **state)
{
    (void)state;
    /* probabilities 0.5, 0.3, 0.15, 0.05 (as logits = log p) */
    const float l[4] = { logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f) };
    ponder_sampler_params p = plain(1.0f, 77);
    p.top_p = 0.75f; /* 0.5 < 0.75 <= 0.8: keep ids 1 and 3 */
    ponder_sampler *s = make(p, 4);
    const double probs[4] = { 0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8 };
    check_draws(s, l, 4, probs, 20000);
    ponder_sampler_free(s);

    p.top_p = 0.2f; /* the first token alone reaches it */
    s = make(p, 4);
    for (int i = 0; i < 500; i++)
        assert_int_equal(ponder_sampler_sample(s, l), 1);
    ponder_sampler_free(s);
}

static void test_min_p_excludes_unlikely(void **state)
{
    (void)state;
    const float l[4] = { logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f) };
    ponder_sampler_params p = plain(1.0f, 78);
    p.min_p = 0.2f; /* threshold 0.2 * 0.5 = 0.1: drops id 2 (0.05), keeps id 0 (0.15) */
    ponder_sampler *s = make(p, 4);
    const double probs[4] = { 0.15 / 0.95, 0.5 / 0.95, 0.0, 0.3 / 0.95 };
    check_draws(s, l, 4, probs, 20000);
    ponder_sampler_free(s);

    p.min_p = 0.4f; /* threshold 0.2: only ids 1 and 3 */
    s = make(p, 4);
    const double probs2[4] = { 0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8 };
    check_draws(s, l, 4, probs2, 20000);
    ponder_sampler_free(s);
}

static void test_repetition_penalty(void **state)
{
    (void)state;
    ponder_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 1.2f;
    p.repeat_last_n = 2;

    /* positive logit divided: 2.0 / 1.2 = 1.67 < 1.9 */
    const float a[3] = { 2.0f, 1.9f, -1.0f };
    ponder_sampler *s = make(p, 3);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 1);
    /* id 0 leaves the 2-token window */
    ponder_sampler_accept(s, 2);
    ponder_sampler_accept(s, 2);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);

    /* negative logit multiplied: -1.0 * 1.2 = -1.2 < -1.1 */
    const float b[2] = { -1.0f, -1.1f };
    s = make(p, 2);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, b), 1);
    ponder_sampler_free(s);

    /* applied once per distinct token: 2.0/1.2 = 1.67 > 1.5 (twice would be 1.39) */
    const float c[2] = { 2.0f, 1.5f };
    s = make(p, 2);
    ponder_sampler_accept(s, 0);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, c), 0);
    /* reset clears the window; out-of-vocabulary ids are ignored */
    ponder_sampler_reset(s);
    ponder_sampler_accept(s, -3);
    ponder_sampler_accept(s, 99);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);

    /* a long window that wraps many times: penalise exactly the distinct ids of the
     * last 500 accepted tokens, whatever came before */
    {
        enum { V = 40, W = 500, A = 1234 };
        float l[V], pen[V];
        random_logits(l, V, 2.0, 31); /* largest: id 26 (1.95), outside the final window */
        l[5] = 3.5f;                  /* inside it: 3.5 / 3 = 1.17 falls below id 26 */
        ponder_sampler_params q = plain(0.0f, 1);
        q.repeat_penalty = 3.0f;
        q.repeat_last_n = W;
        ponder_sampler *w = make(q, V);
        bool in_window[V] = { false };
        for (int i = 0; i < A; i++) {
            int t = i < A - W ? (i * 7) % V : (i * 11) % (V / 2); /* the window holds ids < 20 */
            ponder_sampler_accept(w, t);
            if (i >= A - W)
                in_window[t] = true;
        }
        for (int i = 0; i < V; i++)
            pen[i] = in_window[i] ? (l[i] <= 0 ? l[i] * 3.0f : l[i] / 3.0f) : l[i];
        int32_t want = ponder_argmax(pen, V);
        assert_int_equal(want, 26); /* no penalty, or one on older ids too, would give 5 */
        assert_int_equal(ponder_sampler_sample(w, l), want);
        ponder_sampler_free(w);
    }

    /* repeat_last_n = 0 disables the penalty */
    p.repeat_last_n = 0;
    s = make(p, 3);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);
}

/* OpenAI's presence/frequency penalties on hand-made logits: logit -= presence * (count
 * > 0) + frequency * count over the window, after the repetition penalty. */
static void test_presence_frequency_penalty(void **state)
{
    (void)state;
    const float a[3] = { 2.0f, 1.5f, 1.1f };

    /* presence: 2.0 - 0.6 = 1.4 < 1.5, however often id 0 appeared */
    ponder_sampler_params p = plain(0.0f, 1);
    p.presence_penalty = 0.6f;
    ponder_sampler *s = make(p, 3);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 1);
    ponder_sampler_free(s);
    p.presence_penalty = 0.4f; /* 1.6 > 1.5 after one or ten occurrences */
    s = make(p, 3);
    for (int i = 0; i < 10; i++)
        ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);

    /* frequency scales with the count: 2.0 - 0.3 = 1.7 (wins), 2.0 - 0.6 = 1.4 (loses) */
    p = plain(0.0f, 1);
    p.frequency_penalty = 0.3f;
    s = make(p, 3);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 1);
    /* id 1 once: 1.5 - 0.3 = 1.2 < id 0's 1.4 */
    ponder_sampler_accept(s, 1);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    /* id 0 four times: 2.0 - 1.2 = 0.8; id 1 (1.2) beats id 2 (1.1) */
    ponder_sampler_accept(s, 0);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 1);
    ponder_sampler_accept(s, 1); /* 1.5 - 0.6 = 0.9: id 2 (1.1) */
    assert_int_equal(ponder_sampler_sample(s, a), 2);
    ponder_sampler_free(s);

    /* negative penalties encourage repetition */
    p = plain(0.0f, 1);
    p.presence_penalty = -1.0f;
    s = make(p, 3);
    ponder_sampler_accept(s, 2); /* 1.1 + 1.0 = 2.1 > 2.0 */
    assert_int_equal(ponder_sampler_sample(s, a), 2);
    ponder_sampler_free(s);

    /* order: repetition penalty first, then the subtraction: (2.0 / 2) - 0.3 = 0.7 for
     * id 0; subtracting first would give (2.0 - 0.3) / 2 = 0.85 > 0.8 */
    const float b[2] = { 2.0f, 0.8f };
    p = plain(0.0f, 1);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.3f;
    s = make(p, 2);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, b), 1);
    ponder_sampler_free(s);
    const float c[2] = { 2.0f, 0.75f }; /* 0.7 < 0.75 but 0.85 would win: same check */
    p.repeat_penalty = 2.0f;
    s = make(p, 2);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, c), 1);
    ponder_sampler_free(s);

    /* only the window counts: id 0 twice long ago, then two other tokens (window 2) */
    p = plain(0.0f, 1);
    p.frequency_penalty = 0.3f;
    p.repeat_last_n = 2;
    s = make(p, 3);
    ponder_sampler_accept(s, 0);
    ponder_sampler_accept(s, 0);
    ponder_sampler_accept(s, 2);
    ponder_sampler_accept(s, 1); /* 1.5 - 0.3 = 1.2 < 2.0 */
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);

    /* the draw distribution is the softmax of the penalised logits */
    {
        enum { V = 6 };
        const float l[V] = { 1.0f, 0.5f, 0.0f, -0.5f, 0.2f, 0.9f };
        ponder_sampler_params q = plain(1.0f, 77);
        q.presence_penalty = 0.5f;
        q.frequency_penalty = 0.25f;
        ponder_sampler *w = make(q, V);
        const int win[] = { 0, 5, 0, 3 };
        for (int i = 0; i < 4; i++)
            ponder_sampler_accept(w, win[i]);
        double pen[V], probs[V], z = 0;
        for (int i = 0; i < V; i++)
            pen[i] = l[i];
        pen[0] -= 2 * 0.25 + 0.5;
        pen[5] -= 0.25 + 0.5;
        pen[3] -= 0.25 + 0.5;
        for (int i = 0; i < V; i++)
            z += exp(pen[i]);
        for (int i = 0; i < V; i++)
            probs[i] = exp(pen[i]) / z;
        check_draws(w, l, V, probs, 30000);
        ponder_sampler_free(w);
    }

    /* repeat_last_n = 0 disables every penalty, as llama.cpp's penalty_last_n = 0 */
    p = plain(0.0f, 1);
    p.presence_penalty = 5.0f;
    p.repeat_last_n = 0;
    s = make(p, 3);
    ponder_sampler_accept(s, 0);
    assert_int_equal(ponder_sampler_sample(s, a), 0);
    ponder_sampler_free(s);
}

static void test_chain_matches_reference(void **state)
{
    (void)state;
    enum { N = 40 };
    float l[N];
    struct {
        int top_k;
        float top_p, min_p, temp, penalty, presence, frequency;
    } cases[] = {
        { 10, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f }, /* top-k alone */
        { 0, 0.6f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f },  /* top-p alone (heap path) */
        { 0, 1.0f, 0.1f, 1.0f, 1.0f, 0.0f, 0.0f },  /* min-p alone (heap path) */
        { 20, 0.9f, 0.05f, 0.8f, 1.0f, 0.0f, 0.0f }, /* llama.cpp-like defaults */
        { 0, 0.8f, 0.02f, 1.7f, 1.3f, 0.0f, 0.0f }, /* heap path, temperature above 1, penalty */
        { 25, 0.7f, 0.0f, 0.6f, 1.5f, 0.0f, 0.0f }, /* top-k + top-p + penalty */
        { 0, 1.0f, 0.0f, 1.0f, 1.0f, 0.7f, 0.4f },  /* presence + frequency alone */
        { 15, 0.9f, 0.03f, 0.9f, 1.2f, -0.5f, 0.8f }, /* all three penalties in the chain */
    };
    const int window[] = { 3, 17, 3, 25, 8, 3 };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        random_logits(l, N, 3.0, 100 + k);
        /* make sure the penalised ids matter: lift them near the top */
        l[3] = 2.9f;
        l[17] = -2.9f;
        ponder_sampler_params p = plain(cases[k].temp, 500 + k);
        p.top_k = cases[k].top_k;
        p.top_p = cases[k].top_p;
        p.min_p = cases[k].min_p;
        p.repeat_penalty = cases[k].penalty;
        p.presence_penalty = cases[k].presence;
        p.frequency_penalty = cases[k].frequency;
        p.repeat_last_n = 5; /* window sees 17, 3, 25, 8, 3: id 3 twice */
        ponder_sampler *s = make(p, N);
        for (size_t i = 0; i < sizeof window / sizeof window[0]; i++)
            ponder_sampler_accept(s, window[i]);
        double probs[N];
        reference_probs(l, N, &p, window + 1, 5, probs);
        /* the distribution it draws from, as speculative decoding reads it */
        float given[N];
        double sum = 0.0;
        ponder_sampler_probs(s, l, given);
        for (int i = 0; i < N; i++) {
            if (fabs((double)given[i] - probs[i]) > 1e-6)
                fail_msg("case %zu token %d: probs %.7f, reference %.7f", k, i, (double)given[i], probs[i]);
            sum += given[i];
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
        check_draws(s, l, N, probs, 30000);
        ponder_sampler_free(s);
    }
}

/* A mask (a grammar's): the chain runs on the allowed tokens only — the reference chain
 * on logits with the others at -inf — greedy picks the best allowed token, and with no
 * finite allowed logit greedy still stays inside the mask. */
static void test_mask(void **state)
{
    (void)state;
    enum { N = 70 };
    float l[N], lm[N];
    uint32_t mask[(N + 31) / 32] = { 0 };
    random_logits(l, N, 3.0, 77);
    for (int t = 0; t < N; t++) {
        const bool allow = t % 3 == 1 || t == 64;
        if (allow)
            mask[t >> 5] |= 1u << (t & 31);
        lm[t] = allow ? l[t] : -INFINITY;
    }
    ponder_sampler_params p = plain(0.9f, 9);
    p.top_k = 12;
    p.top_p = 0.9f;
    p.min_p = 0.02f;
    ponder_sampler *s = make(p, N);
    ponder_sampler_set_mask(s, mask);
    double probs[N];
    reference_probs(lm, N, &p, NULL, 0, probs);
    float given[N];
    ponder_sampler_probs(s, l, given);
    for (int i = 0; i < N; i++)
        if (fabs((double)given[i] - probs[i]) > 1e-6)
            fail_msg("token %d: probs %.7f, reference %.7f", i, (double)given[i], probs[i]);
    check_draws(s, l, N, probs, 20000);
    ponder_sampler_set_mask(s, NULL);
    bool outside = false;
    for (int d = 0; d < 2000 && !outside; d++) {
        const int32_t t = ponder_sampler_sample(s, l);
        outside = !(mask[t >> 5] >> (t & 31) & 1u);
    }
    assert_true(outside); /* lifted */
    ponder_sampler_free(s);

    ponder_sampler *g = make(plain(0.0f, 1), N);
    ponder_sampler_set_mask(g, mask);
    assert_int_equal(ponder_sampler_sample(g, l), ponder_argmax(lm, N));
    float nan_l[N];
    for (int t = 0; t < N; t++)
        nan_l[t] = t == 5 ? 100.0f : NAN;
    assert_int_equal(ponder_sampler_sample(g, nan_l), 1); /* the lowest allowed id */
    uint32_t none[(N + 31) / 32] = { 0 };
    ponder_sampler_set_mask(g, none);
    assert_int_equal(ponder_sampler_sample(g, l), -1);
    ponder_sampler_free(g);
}

/* Greedy: all the mass on the token ponder_sampler_sample picks; NULL arguments. */
static void test_probs_greedy(void **state)
{
    (void)state;
    enum { N = 50 };
    float l[N], pr[N];
    random_logits(l, N, 2.0, 9);
    ponder_sampler *s = make(plain(0.0f, 1), N);
    const int32_t t = ponder_sampler_sample(s, l);
    assert_int_equal(ponder_sampler_probs(s, l, pr), t);
    for (int i = 0; i < N; i++)
        assert_true(pr[i] == (i == t ? 1.0f : 0.0f));
    assert_int_equal(ponder_sampler_probs(NULL, l, pr), -1);
    assert_int_equal(ponder_sampler_probs(s, NULL, pr), -1);
    const double u = ponder_sampler_uniform(s);
    assert_true(u >= 0.0 && u < 1.0);
    ponder_sampler_free(s);
}

static void test_large_vocab(void **state)
{
    (void)state;
    enum { N = 152064 }; /* Qwen2 vocabulary */
    float *l = malloc(N * sizeof *l);
    float *copy = malloc(N * sizeof *copy);
    assert_non_null(l);
    assert_non_null(copy);
    random_logits(l, N, 8.0, 21);
    memcpy(copy, l, N * sizeof *l);

    /* top-k 40: every draw is among the 40 largest logits */
    float *sorted = malloc(N * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, l, N * sizeof *l);
    for (int i = 0; i < 40; i++) { /* partial selection sort for the 40th largest */
        int best = i;
        for (int j = i + 1; j < N; j++)
            if (sorted[j] > sorted[best])
                best = j;
        float t = sorted[i];
        sorted[i] = sorted[best];
        sorted[best] = t;
    }
    const float kth = sorted[39];
    ponder_sampler_params p = ponder_sampler_params_default();
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.temp = 5.0f; /* flat enough that many of the 40 get drawn */
    p.seed = 8;
    ponder_sampler *s = make(p, N);
    for (int i = 0; i < 100; i++) {
        int32_t t = ponder_sampler_sample(s, l);
        assert_true(t >= 0 && t < N);
        assert_true(l[t] >= kth);
    }
    ponder_sampler_free(s);

    /* top-k off, min-p on: the heap path must keep exactly logit >= max + log(min_p) */
    p = plain(1.0f, 9);
    p.min_p = 0.5f;
    s = make(p, N);
    const float thr = sorted[0] + logf(0.5f);
    int drew_other = 0;
    for (int i = 0; i < 60; i++) {
        int32_t t = ponder_sampler_sample(s, l);
        assert_true(l[t] >= thr);
        drew_other += l[t] != sorted[0];
    }
    assert_true(drew_other > 0 || sorted[1] < thr);
    ponder_sampler_free(s);

    /* top-p alone on the heap path (with its pre-cut): against the full-sort reference */
    p = plain(1.0f, 10);
    p.top_p = 0.3f;
    s = make(p, N);
    double *probs = malloc(N * sizeof *probs);
    assert_non_null(probs);
    reference_probs(l, N, &p, NULL, 0, probs);
    int n_kept = 0;
    for (int i = 0; i < N; i++)
        n_kept += probs[i] > 0.0;
    assert_true(n_kept > 1 && n_kept < N / 10);
    for (int i = 0; i < 60; i++) {
        int32_t t = ponder_sampler_sample(s, l);
        assert_true(probs[t] > 0.0);
    }
    ponder_sampler_free(s);
    free(probs);

    assert_memory_equal(l, copy, N * sizeof *l); /* logits are never modified */
    free(sorted);
    free(l);
    free(copy);
}

static void test_degenerate_logits(void **state)
{
    (void)state;
    const float l[4] = { NAN, -INFINITY, INFINITY, 1.0f };
    ponder_sampler_params p = plain(1.0f, 3);
    ponder_sampler *s = make(p, 4);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ponder_sampler_sample(s, l), 2);
    ponder_sampler_free(s);
    const float m[3] = { -INFINITY, -INFINITY, -INFINITY };
    p.top_p = 0.5f;
    s = make(p, 3);
    int32_t t = ponder_sampler_sample(s, m);
    assert_true(t >= 0 && t < 3);
    ponder_sampler_free(s);
}

static void test_create_rejects_bad_params(void **state)
{
    (void)state;
    ponder_sampler *s = (ponder_sampler *)1;
    ponder_error err = { 0 };
    ponder_sampler_params p = ponder_sampler_params_default();
    assert_int_equal(ponder_sampler_create(&p, 0, &s, &err), PONDER_ERR_INVALID_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "n_vocab"));
    p.repeat_penalty = 0.0f;
    assert_int_equal(ponder_sampler_create(&p, 10, &s, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "repeat_penalty"));
    p = ponder_sampler_params_default();
    p.repeat_last_n = -1;
    assert_int_equal(ponder_sampler_create(&p, 10, &s, &err), PONDER_ERR_INVALID_ARG);
    p = ponder_sampler_params_default();
    p.presence_penalty = INFINITY;
    assert_int_equal(ponder_sampler_create(&p, 10, &s, &err), PONDER_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "presence_penalty"));
    p = ponder_sampler_params_default();
    p.frequency_penalty = NAN;
    assert_int_equal(ponder_sampler_create(&p, 10, &s, &err), PONDER_ERR_INVALID_ARG);
    p = ponder_sampler_params_default();
    p.temp = NAN;
    assert_int_equal(ponder_sampler_create(&p, 10, &s, &err), PONDER_ERR_INVALID_ARG);
    /* NULL params: defaults */
    assert_int_equal(ponder_sampler_create(NULL, 10, &s, &err), PONDER_OK);
    ponder_sampler_free(s);
    ponder_sampler_free(NULL);

    p = ponder_sampler_params_default();
    assert_true(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f &&
                p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.seed == PONDER_SEED_RANDOM &&
                p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_greedy_is_argmax),
        cmocka_unit_test(test_same_seed_same_draws),
        cmocka_unit_test(test_random_seed_is_reported),
        cmocka_unit_test(test_frequencies_match_softmax),
        cmocka_unit_test(test_top_k_1_is_greedy),
        cmocka_unit_test(test_top_p_excludes_tail),
        cmocka_unit_test(test_min_p_excludes_unlikely),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_presence_frequency_penalty),
        cmocka_unit_test(test_chain_matches_reference),
        cmocka_unit_test(test_probs_greedy),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_degenerate_logits),
        cmocka_unit_test(test_create_rejects_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
