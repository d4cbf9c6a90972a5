/*
 * sampler.c — the sampling chain of sample.h: penalties → top-k → top-p →
 * min-p → temperature → draw.
 *
 * Semantics follow llama.cpp's common sampler (common/sampling.cpp, default order
 * penalties, top_k, top_p, min_p, temperature, then the `dist` sampler):
 *  - penalty: each DISTINCT token among the last repeat_last_n accepted tokens has its
 *    logit divided by repeat_penalty if positive, multiplied by it otherwise
 *    (llama_sampler_penalties_apply), then loses frequency_penalty * count +
 *    presence_penalty (count = its occurrences in the window; OpenAI's formula, which
 *    llama.cpp applies in the same stage). It runs before everything, greedy included: in
 *    llama.cpp temp <= 0 is the temperature stage keeping only the maximum, which comes
 *    after the penalty, so a penalised greedy run picks argmax of the penalised logits.
 *  - top-p and min-p see the untempered (temperature 1) distribution of the candidates
 *    left by top-k, because temperature comes after them in the chain.
 *  - top-p keeps the shortest prefix of the sorted candidates whose probabilities sum to
 *    >= top_p (at least one token); min-p keeps tokens with p >= min_p * p_max, i.e.
 *    logit >= max_logit + log(min_p), as llama.cpp computes it.
 *
 * Cost for a 152k vocabulary: top-k selects with a k-element heap in one pass
 * (O(n log k)) and sorts only the k survivors; with top-k off, top-p/min-p first drop
 * the tokens they provably cannot keep, then pop a heap built in O(n) only as far as
 * they keep tokens; with every truncation off nothing is sorted. The logits are copied
 * only when a penalty must be applied.
 */
#include "ponder/sample.h"
#include "sample/rng.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct ponder_sampler {
    ponder_sampler_params p;
    int32_t n_vocab;
    uint64_t seed;     /* resolved: never PONDER_SEED_RANDOM */
    ponder_rng rng;
    int32_t *window;   /* ring of the last repeat_last_n accepted tokens */
    int32_t window_len;
    int32_t window_head; /* next slot to write */
    int32_t *distinct; /* scratch, repeat_last_n ids: the window sorted and deduplicated */
    float *work;       /* n_vocab: penalised logits, then the kept tokens' weights */
    cand *cands;       /* n_vocab candidates */
    const uint32_t *mask; /* allowed tokens (a grammar's), or NULL; not owned */
};

ponder_sampler_params ponder_sampler_params_default(void)
{
    /* llama.cpp common_params_sampling defaults. */
    ponder_sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = PONDER_SEED_RANDOM,
    };
    return p;
}

static uint64_t seed_from_clock(const void *salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_sec * 1000000000ULL) ^ (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 32;
    x ^= (uint64_t)(uintptr_t)salt;
    /* One splitmix64 round so consecutive clock readings give unrelated seeds. */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    /* 63 bits: the seed round-trips through JSON's signed integers (and never equals the
     * PONDER_SEED_RANDOM sentinel) */
    return x & (uint64_t)INT64_MAX;
}

ponder_status ponder_sampler_create(const ponder_sampler_params *p, int32_t n_vocab, ponder_sampler **out,
                                    ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "sampler: out is NULL");
    *out = NULL;
    ponder_sampler_params prm = p ? *p : ponder_sampler_params_default();
    if (n_vocab <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "sampler: n_vocab must be > 0, got %d",
                                (int)n_vocab);
    if (isnan(prm.temp) || isnan(prm.top_p) || isnan(prm.min_p))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "sampler: temp, top_p and min_p must be numbers");
    if (!isfinite(prm.presence_penalty) || !isfinite(prm.frequency_penalty))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "sampler: presence_penalty and frequency_penalty must be finite numbers, got %g and %g",
                                (double)prm.presence_penalty, (double)prm.frequency_penalty);
    if (!(prm.repeat_penalty > 0.0f) || !isfinite(prm.repeat_penalty))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "sampler: repeat_penalty must be a finite number > 0, got %g",
                                (double)prm.repeat_penalty);
    if (prm.repeat_last_n < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "sampler: repeat_last_n must be >= 0, got %d (pass the context size "
                                "for a whole-context window)",
                                (int)prm.repeat_last_n);

    /* n_vocab is a positive int32, so these products cannot overflow a 64-bit size_t;
     * the check keeps 32-bit builds honest. */
    if ((size_t)n_vocab > SIZE_MAX / sizeof(cand))
        return ponder_error_set(err, PONDER_ERR_RANGE, "sampler: n_vocab %d too large", (int)n_vocab);

    ponder_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "sampler: out of memory");
    s->p = prm;
    s->n_vocab = n_vocab;
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (prm.repeat_last_n > 0) {
        s->window = malloc((size_t)prm.repeat_last_n * sizeof *s->window);
        s->distinct = malloc((size_t)prm.repeat_last_n * sizeof *s->distinct);
    }
    if (!s->work || !s->cands || (prm.repeat_last_n > 0 && (!s->window || !s->distinct))) {
        ponder_sampler_free(s);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "sampler: out of memory for vocabulary of %d",
                                (int)n_vocab);
    }
    s->seed = prm.seed == PONDER_SEED_RANDOM ? seed_from_clock(s) : prm.seed;
    ponder_rng_seed(&s->rng, s->seed);
    *out = s;
    return PONDER_OK;
}

void ponder_sampler_free(ponder_sampler *s)
{
    if (!s)
        return;
    free(s->window);
    free(s->distinct);
    free(s->work);
    free(s->cands);
    free(s);
}

void ponder_sampler_accept(ponder_sampler *s, int32_t token)
{
    if (!s || s->p.repeat_last_n <= 0)
        return;
    s->window[s->window_head] = token;
    s->window_head = (s->window_head + 1) % s->p.repeat_last_n;
    if (s->window_len < s->p.repeat_last_n)
        s->window_len++;
}

void ponder_sampler_reset(ponder_sampler *s)
{
    if (!s)
        return;
    s->window_len = 0;
    s->window_head = 0;
    ponder_rng_seed(&s->rng, s->seed);
}

uint64_t ponder_sampler_seed(const ponder_sampler *s)
{
    return s ? s->seed : 0;
}

int32_t ponder_argmax(const float *x, int32_t n)
{
    if (!x || n <= 0)
        return -1;
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        /* Strict '>' keeps the lowest id on ties; a NaN never wins over a number. */
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i])))
            best = i;
    }
    return best;
}

/* ---- candidates ---- */

/* Total order used everywhere: higher logit first, then lower id (ties → lowest id). */
static inline bool cand_before(cand a, cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    cand a = *(const cand *)pa, b = *(const cand *)pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* NaN → -inf (never chosen), +inf → FLT_MAX (so differences of logits stay numbers). */
static float sanitize(float l)
{
    if (isnan(l))
        return -INFINITY;
    if (l == INFINITY)
        return FLT_MAX;
    return l;
}

/* Heap over h[0..n) whose root is the element that comes LAST in cand order when
 * `worst_root`, FIRST otherwise. */
static bool heap_above(cand a, cand b, bool worst_root)
{
    return worst_root ? cand_before(b, a) : cand_before(a, b);
}

static void sift_down(cand *h, size_t n, size_t i, bool worst_root)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && heap_above(h[l], h[top], worst_root))
            top = l;
        if (r < n && heap_above(h[r], h[top], worst_root))
            top = r;
        if (top == i)
            return;
        cand t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void sift_up(cand *h, size_t i, bool worst_root)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_above(h[i], h[parent], worst_root))
            return;
        cand t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* The k best of l[0..n) into out[0..k), sorted best first. One pass with a heap whose
 * root is the worst kept candidate: most logits lose a single float comparison against
 * it. Ids grow along the scan, so a logit equal to the root's never displaces it (the
 * root has the lower id) — hence the strict '>'. */
static void select_top_k(const float *l, int32_t n, int32_t k, cand *out)
{
    for (int32_t i = 0; i < k; i++) {
        out[i] = (cand){ sanitize(l[i]), i };
        sift_up(out, (size_t)i, true);
    }
    for (int32_t i = k; i < n; i++) {
        float x = sanitize(l[i]);
        if (x > out[0].logit) {
            out[0] = (cand){ x, i };
            sift_down(out, (size_t)k, 0, true);
        }
    }
    qsort(out, (size_t)k, sizeof *out, cand_cmp);
}

static int id_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* For each distinct window token: divides a positive logit by the repetition penalty and
 * multiplies the others (llama.cpp: "logit <= 0 ? logit * penalty : logit / penalty"),
 * then subtracts count * frequency_penalty + presence_penalty, in llama.cpp's order. */
static void apply_penalty(ponder_sampler *s, float *l)
{
    int32_t n = s->window_len;
    memcpy(s->distinct, s->window, (size_t)n * sizeof *s->distinct);
    /* Sorting makes duplicates adjacent; O(w log w) also for a whole-context window. */
    qsort(s->distinct, (size_t)n, sizeof *s->distinct, id_cmp);
    const float pen = s->p.repeat_penalty;
    const float freq = s->p.frequency_penalty, pres = s->p.presence_penalty;
    for (int32_t i = 0; i < n;) {
        int32_t id = s->distinct[i], count = 0;
        while (i < n && s->distinct[i] == id) {
            count++;
            i++;
        }
        if (id < 0 || id >= s->n_vocab) /* accepted ids outside the vocabulary are ignored */
            continue;
        if (pen != 1.0f)
            l[id] = l[id] <= 0.0f ? l[id] * pen : l[id] / pen;
        l[id] -= (float)count * freq + pres;
    }
}

static void apply_mask(float *l, int32_t n, const uint32_t *mask)
{
    for (int32_t w = 0; w * 32 < n; w++) {
        const uint32_t bits = mask[w];
        if (bits == UINT32_MAX)
            continue;
        const int32_t end = (w + 1) * 32 < n ? (w + 1) * 32 : n;
        for (int32_t t = w * 32; t < end; t++)
            if (!(bits >> (t & 31) & 1u))
                l[t] = -INFINITY;
    }
}

/* ponder_argmax over the allowed tokens (ties to the lowest id, NaN loses); the lowest
 * allowed id when every allowed logit is NaN, -1 when none is allowed. */
static int32_t masked_argmax(const float *l, int32_t n, const uint32_t *mask)
{
    int32_t best = -1;
    for (int32_t w = 0; w * 32 < n; w++) {
        uint32_t bits = mask[w];
        while (bits) {
            const int32_t t = w * 32 + __builtin_ctz(bits);
            bits &= bits - 1;
            if (t >= n)
                break;
            if (best < 0 || l[t] > l[best] || (l[best] != l[best] && l[t] == l[t]))
                best = t;
        }
    }
    return best;
}

/* The chain up to the draw: the kept tokens kept[0..n) with their weights w[0..n)
 * (exp((logit - max) / temp), into s->work), or for greedy (and when every logit is -inf
 * or NaN) n = 0 and *only the token to return. The one chain behind both
 * ponder_sampler_sample and ponder_sampler_probs. */
static size_t chain(ponder_sampler *s, const float *logits, const cand **kept_out, const float **w_out,
                    int32_t *only)
{
    const ponder_sampler_params *p = &s->p;
    const int32_t n = s->n_vocab;

    const float *l = logits;
    const bool penalise = p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
    if (penalise && s->window_len > 0) {
        memcpy(s->work, logits, (size_t)n * sizeof *s->work);
        apply_penalty(s, s->work);
        l = s->work;
    }
    if (s->mask) {
        if (p->temp <= 0.0f) { /* greedy: the best allowed token, no copy */
            *only = masked_argmax(l, n, s->mask);
            return 0;
        }
        if (l != s->work)
            memcpy(s->work, logits, (size_t)n * sizeof *s->work);
        l = s->work;
        apply_mask(s->work, n, s->mask);
    }

    if (p->temp <= 0.0f) {
        *only = ponder_argmax(l, n);
        return 0;
    }

    /* top-k */
    cand *c = s->cands;
    size_t n_cand;
    bool sorted;
    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(l, n, p->top_k, c);
        n_cand = (size_t)p->top_k;
        sorted = true;
    } else {
        for (int32_t i = 0; i < n; i++)
            c[i] = (cand){ sanitize(l[i]), i };
        n_cand = (size_t)n;
        sorted = false;
    }

    /* Kept tokens end up in kept[0..n_kept). */
    const cand *kept = c;
    size_t n_kept = n_cand;
    const bool use_top_p = p->top_p < 1.0f;
    const bool use_min_p = p->min_p > 0.0f;
    if (use_top_p || use_min_p) {
        float lmax = c[0].logit;
        for (size_t i = 1; i < n_cand; i++)
            lmax = c[i].logit > lmax ? c[i].logit : lmax;
        double z = 0.0;
        if (lmax > -INFINITY)
            for (size_t i = 0; i < n_cand; i++)
                z += exp((double)c[i].logit - (double)lmax);
        const double min_logit = use_min_p ? (double)lmax + log((double)p->min_p) : -INFINITY;

        if (!sorted && z > 0.0) {
            /* Drop, before heapifying, tokens no stage can keep. min-p: logit below
             * min_logit. top-p: tokens with p < (1 - top_p) / n together hold less than
             * 1 - top_p, so the tokens above them already reach top_p and the prefix
             * ends before them; half that bound leaves room for rounding. Both cuts keep
             * the best token. */
            double cut = min_logit;
            if (use_top_p && p->top_p > 0.0f) {
                double eps = 0.5 * (1.0 - (double)p->top_p) / (double)n_cand;
                double top_p_cut = (double)lmax + log(z * eps);
                cut = top_p_cut > cut ? top_p_cut : cut;
            }
            size_t w = 0;
            for (size_t i = 0; i < n_cand; i++)
                if ((double)c[i].logit >= cut || c[i].logit == lmax)
                    c[w++] = c[i];
            n_cand = w;
        }

        /* Visit candidates best first: the sorted array, or pops from a max-heap whose
         * popped elements collect at the end of the array (so they are kept[] there). */
        size_t heap_n = n_cand;
        if (!sorted)
            for (size_t i = n_cand / 2; i-- > 0;)
                sift_down(c, n_cand, i, false);
        double cum = 0.0;
        size_t m = 0;
        while (m < n_cand) {
            cand next = sorted ? c[m] : c[0];
            if (m > 0 && (double)next.logit < min_logit)
                break;
            if (!sorted) {
                c[0] = c[heap_n - 1];
                c[heap_n - 1] = next;
                heap_n--;
                sift_down(c, heap_n, 0, false);
            }
            m++;
            if (z > 0.0)
                cum += exp((double)next.logit - (double)lmax) / z;
            if (use_top_p && cum >= (double)p->top_p)
                break;
        }
        kept = sorted ? c : c + heap_n;
        n_kept = m;
    }

    /* temperature, softmax: weights relative to the best kept logit */
    float lmax = -INFINITY;
    int32_t best_id = kept[0].id;
    for (size_t i = 0; i < n_kept; i++) {
        if (cand_before(kept[i], (cand){ lmax, best_id })) {
            lmax = kept[i].logit;
            best_id = kept[i].id;
        }
    }
    *only = best_id;
    if (!(lmax > -INFINITY)) /* every logit -inf or NaN: nothing to weigh */
        return 0;
    float *w = s->work;
    for (size_t i = 0; i < n_kept; i++)
        w[i] = expf((kept[i].logit - lmax) / p->temp);
    *kept_out = kept;
    *w_out = w;
    return n_kept;
}

int32_t ponder_sampler_sample(ponder_sampler *s, const float *logits)
{
    if (!s || !logits)
        return -1;
    const cand *kept = NULL;
    const float *w = NULL;
    int32_t only = -1;
    const size_t n_kept = chain(s, logits, &kept, &w, &only);
    if (n_kept == 0)
        return only;
    double sum = 0.0;
    for (size_t i = 0; i < n_kept; i++)
        sum += (double)w[i];
    const double u = ponder_rng_uniform(&s->rng) * sum;
    double acc = 0.0;
    int32_t last_nonzero = only;
    for (size_t i = 0; i < n_kept; i++) {
        if (w[i] <= 0.0f)
            continue;
        acc += (double)w[i];
        last_nonzero = kept[i].id;
        if (u < acc)
            return kept[i].id;
    }
    return last_nonzero; /* u landed on the rounding slack at the top */
}

int32_t ponder_sampler_probs(ponder_sampler *s, const float *logits, float *probs)
{
    if (!s || !logits || !probs)
        return -1;
    const cand *kept = NULL;
    const float *w = NULL;
    int32_t only = -1;
    const size_t n_kept = chain(s, logits, &kept, &w, &only);
    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    if (n_kept == 0) {
        probs[only] = 1.0f;
        return only;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n_kept; i++)
        sum += (double)w[i];
    for (size_t i = 0; i < n_kept; i++)
        probs[kept[i].id] = (float)((double)w[i] / sum);
    return only;
}

void ponder_sampler_set_mask(ponder_sampler *s, const uint32_t *mask)
{
    if (s)
        s->mask = mask;
}

double ponder_sampler_uniform(ponder_sampler *s)
{
    return s ? ponder_rng_uniform(&s->rng) : 0.0;
}
