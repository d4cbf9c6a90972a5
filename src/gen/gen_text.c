/*
 * gen_text.c — stop-string matching on generated text and the log-softmax behind
 * logprobs.
 *
 * Stop strings follow OpenAI's rule: matched on the text, not on tokens (a stop string
 * may span tokens, or end inside one), the text is cut before the match. While the end
 * of the text could still grow into a stop string it is held back, so no text that a
 * later match would remove is ever handed out. Because held-back text always starts at
 * the first byte a match could start at, matches are only searched from the end of the
 * text already handed out.
 */
#include "gen/gen_internal.h"
#include "ponder/tensor.h"

#include <math.h>
#include <string.h>

size_t gen_stop_find(const gen_stops *st, const char *text, size_t n, size_t from)
{
    size_t best = SIZE_MAX;
    for (int32_t i = 0; i < st->n; i++) {
        const size_t len = st->len[i];
        if (len > n - from)
            continue;
        for (size_t p = from; p + len <= n && p < best; p++) {
            if (text[p] == st->s[i][0] && memcmp(text + p, st->s[i], len) == 0) {
                best = p;
                break;
            }
        }
    }
    return best;
}

size_t gen_stop_holdback(const gen_stops *st, const char *text, size_t n, size_t from)
{
    size_t hold = 0;
    const size_t avail = n - from;
    for (int32_t i = 0; i < st->n; i++) {
        size_t k = st->len[i] - 1; /* proper prefixes only: a whole match is found above */
        if (k > avail)
            k = avail;
        for (; k > hold; k--) {
            if (memcmp(text + n - k, st->s[i], k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/* The largest non-NaN value of l[0..n) (-inf if none) and whether a NaN is there, in
 * eight lanes the compiler turns into vector max and compare (the branchy one-value loop
 * took as long as the exps of a 49k vocabulary). */
static float max_and_nan(const float *l, int32_t n, bool *has_nan)
{
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int nan[8] = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            const float v = l[i + k];
            m[k] = v > m[k] ? v : m[k];
            nan[k] |= v != v;
        }
    for (; i < n; i++) {
        m[0] = l[i] > m[0] ? l[i] : m[0];
        nan[0] |= l[i] != l[i];
    }
    float mx = m[0];
    bool any = nan[0];
    for (int k = 1; k < 8; k++) {
        mx = m[k] > mx ? m[k] : mx;
        any |= nan[k];
    }
    *has_nan = any;
    return mx;
}

double gen_log_sum_exp(const float *l, int32_t n, float *scratch)
{
    bool has_nan;
    const float mx = max_and_nan(l, n, &has_nan);
    if (!(mx > -INFINITY))
        return -INFINITY;
    if (mx == INFINITY)
        return INFINITY;
    if (!has_nan) /* the vector exp: a 150k vocabulary in well under a millisecond */
        return (double)mx + log(ponder_vec_exp_sub(n, scratch, l, mx));
    double z = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (l[i] > -INFINITY)
            z += exp((double)l[i] - (double)mx);
    return (double)mx + log(z);
}

/* Higher logit first, then the lower id; NaN ranks last. */
static bool ranks_before(float a, int32_t ia, float b, int32_t ib)
{
    if (isnan(b))
        return !isnan(a) || ia < ib;
    if (isnan(a))
        return false;
    return a > b || (a == b && ia < ib);
}

int32_t gen_top_logprobs(const float *l, int32_t n, double lse, int32_t k, ponder_gen_token_logprob *out)
{
    if (k > PONDER_GEN_MAX_TOP_LOGPROBS)
        k = PONDER_GEN_MAX_TOP_LOGPROBS;
    if (k > n)
        k = n;
    if (k <= 0)
        return 0;
    /* insertion into a sorted list of at most 20: one comparison for most tokens */
    int32_t m = 0;
    for (int32_t id = 0; id < n; id++) {
        if (m == k && !ranks_before(l[id], id, l[out[m - 1].token], out[m - 1].token))
            continue;
        int32_t j = m < k ? m++ : k - 1;
        while (j > 0 && ranks_before(l[id], id, l[out[j - 1].token], out[j - 1].token)) {
            out[j] = out[j - 1];
            j--;
        }
        out[j].token = id;
    }
    for (int32_t i = 0; i < m; i++)
        out[i].logprob = (float)((double)l[out[i].token] - lse);
    return m;
}
