/*
 * calibrate.c — the cascade's accept rule and `ponder calibrate`'s offline threshold sweep
 * (cascade.h). No sockets, no models: every item's stage results are measured once, then
 * each threshold pair is an O(items) recount, so the whole grid costs nothing next to one
 * model call.
 */
#include "ponder/cascade.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_DEFAULT_LEVELS 200
#define CALIB_EPS 1e-12 /* accuracies are ratios of small integers: compare with slack */

bool ponder_cascade_accept(const ponder_route_stage_cfg *st, bool last, const ponder_cascade_signals *s, char *why,
                           size_t cap)
{
    char tmp[160]; /* the reason is built even when nobody reads it */
    if (!why) {
        why = tmp;
        cap = sizeof tmp;
    }
    if (last) {
        snprintf(why, cap, "last stage");
        return true;
    }
    /* every given threshold must hold: the two signals fail differently (a confident wrong
     * chain has high logprob but, sampled again, often disagrees; a hesitant right one the
     * reverse), so each can veto */
    if (st->has_min_agreement && !(s->agreement >= st->min_agreement)) {
        snprintf(why, cap, "agreement %.3f < %.3f", s->agreement, st->min_agreement);
        return false;
    }
    if (st->has_min_mean_logprob && !(s->mean_logprob >= st->min_mean_logprob)) {
        if (isfinite(s->mean_logprob))
            snprintf(why, cap, "mean_logprob %.4f < %.4f", s->mean_logprob, st->min_mean_logprob);
        else
            snprintf(why, cap, "mean_logprob unknown (the backend reported no chains) < %.4f", st->min_mean_logprob);
        return false;
    }
    if (st->has_min_agreement && st->has_min_mean_logprob)
        snprintf(why, cap, "agreement %.3f >= %.3f and mean_logprob %.4f >= %.4f", s->agreement, st->min_agreement,
                 s->mean_logprob, st->min_mean_logprob);
    else if (st->has_min_agreement)
        snprintf(why, cap, "agreement %.3f >= %.3f", s->agreement, st->min_agreement);
    else
        snprintf(why, cap, "mean_logprob %.4f >= %.4f", s->mean_logprob, st->min_mean_logprob);
    return true;
}

ponder_calib_params ponder_calib_params_default(void)
{
    ponder_calib_params p = { .signals = PONDER_CALIB_AGREEMENT | PONDER_CALIB_MEAN_LOGPROB,
                              .tolerance = 0.01,
                              .max_levels = CALIB_DEFAULT_LEVELS };
    return p;
}

ponder_calib_point ponder_calib_evaluate(const ponder_calib_item *items, int32_t n, bool use_agreement,
                                         double min_agreement, bool use_mean_logprob, double min_mean_logprob)
{
    ponder_calib_point pt;
    memset(&pt, 0, sizeof pt);
    pt.use_agreement = use_agreement;
    pt.use_mean_logprob = use_mean_logprob;
    pt.min_agreement = use_agreement ? min_agreement : 0;
    pt.min_mean_logprob = use_mean_logprob ? min_mean_logprob : 0;
    ponder_route_stage_cfg st;
    memset(&st, 0, sizeof st);
    st.has_min_agreement = use_agreement;
    st.min_agreement = min_agreement;
    st.has_min_mean_logprob = use_mean_logprob;
    st.min_mean_logprob = min_mean_logprob;
    double flops = 0, cost = 0;
    for (int32_t i = 0; i < n; i++) {
        const ponder_calib_item *it = &items[i];
        bool acc = ponder_cascade_accept(&st, false, &it->s1, NULL, 0);
        flops += it->s1_flops + (acc ? 0 : it->s2_flops);
        cost += it->s1_cost_usd + (acc ? 0 : it->s2_cost_usd);
        pt.n_accepted += acc;
        pt.n_correct += acc ? it->s1_correct : it->s2_correct;
    }
    if (n > 0) {
        pt.accuracy = (double)pt.n_correct / n;
        pt.flops_per_item = flops / n;
        pt.cost_per_item = cost / n;
        pt.escalation_rate = (double)(n - pt.n_accepted) / n;
    }
    return pt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Thresholds for one signal: the midpoints between distinct finite values, and one past
 * the largest when it stays inside [lo, hi]; thinned to max_levels by quantile. The "no
 * threshold" level is the caller's. Returns the count written to *out (malloc'ed). */
static int32_t levels(const double *vals, int32_t n, double lo, double hi, int32_t max_levels, double **out)
{
    *out = NULL;
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    double *t = malloc((size_t)(n + 1) * sizeof *t);
    if (!v || !t) {
        free(v);
        free(t);
        return -1;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (isfinite(vals[i]))
            v[k++] = vals[i];
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    int32_t d = 0;
    for (int32_t i = 0; i < k; i++)
        if (d == 0 || v[i] != v[d - 1])
            v[d++] = v[i];
    int32_t m = 0;
    for (int32_t i = 0; i + 1 < d; i++)
        t[m++] = (v[i] + v[i + 1]) / 2;
    if (d > 0) {
        /* past the largest: half the last gap (or a small step), clipped to the range */
        double step = d > 1 ? (v[d - 1] - v[d - 2]) / 2 : 0.05;
        double past = v[d - 1] + (step > 0 ? step : 0.05);
        if (past > hi)
            past = v[d - 1] < hi ? hi : NAN;
        if (isfinite(past) && past >= lo)
            t[m++] = past;
    }
    free(v);
    if (max_levels > 0 && m > max_levels) {
        /* keep evenly spaced ranks, always the first and the last */
        for (int32_t i = 0; i < max_levels; i++)
            t[i] = t[(int64_t)i * (m - 1) / (max_levels - 1 > 0 ? max_levels - 1 : 1)];
        m = max_levels;
    }
    *out = t;
    return m;
}

static int cmp_point(const void *a, const void *b)
{
    const ponder_calib_point *x = a, *y = b;
    if (x->flops_per_item != y->flops_per_item)
        return x->flops_per_item < y->flops_per_item ? -1 : 1;
    if (x->accuracy != y->accuracy)
        return x->accuracy > y->accuracy ? -1 : 1;
    int nx = x->use_agreement + x->use_mean_logprob, ny = y->use_agreement + y->use_mean_logprob;
    return nx - ny;
}

typedef struct cost_ix {
    double cost, acc;
    int32_t i;
} cost_ix;

static int cmp_cost(const void *a, const void *b)
{
    const cost_ix *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    if (x->acc != y->acc)
        return x->acc > y->acc ? -1 : 1;
    return x->i - y->i;
}

ponder_status ponder_calib_sweep(const ponder_calib_item *items, int32_t n, const ponder_calib_params *p,
                                 ponder_calib_result **out, ponder_error *err)
{
    *out = NULL;
    ponder_calib_params prm = p ? *p : ponder_calib_params_default();
    if (n <= 0 || !items)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "calibration needs at least one item");
    if (!(prm.signals & (PONDER_CALIB_AGREEMENT | PONDER_CALIB_MEAN_LOGPROB)))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "no signal to sweep (agreement, mean_logprob)");
    ponder_calib_result *r = calloc(1, sizeof *r);
    double *vals = malloc((size_t)n * sizeof *vals);
    double *ta = NULL, *tl = NULL;
    if (!r || !vals)
        goto oom;
    r->n_items = n;
    int32_t na = 0, nl = 0;
    if (prm.signals & PONDER_CALIB_AGREEMENT) {
        for (int32_t i = 0; i < n; i++)
            vals[i] = items[i].s1.agreement;
        if ((na = levels(vals, n, 0, 1, prm.max_levels, &ta)) < 0)
            goto oom;
    }
    if (prm.signals & PONDER_CALIB_MEAN_LOGPROB) {
        for (int32_t i = 0; i < n; i++)
            vals[i] = items[i].s1.mean_logprob;
        if ((nl = levels(vals, n, -1e6, 0, prm.max_levels, &tl)) < 0)
            goto oom;
    }
    /* index -1 of each signal is "not used" */
    size_t cap = (size_t)(na + 1) * (size_t)(nl + 1);
    if (!(r->points = malloc(cap * sizeof *r->points)))
        goto oom;
    for (int32_t a = -1; a < na; a++)
        for (int32_t l = -1; l < nl; l++)
            r->points[r->n_points++] =
                ponder_calib_evaluate(items, n, a >= 0, a >= 0 ? ta[a] : 0, l >= 0, l >= 0 ? tl[l] : 0);
    qsort(r->points, (size_t)r->n_points, sizeof *r->points, cmp_point);
    /* the frontier: in FLOPs order, each point more accurate than every cheaper one */
    double best = -1;
    for (int32_t i = 0; i < r->n_points; i++) {
        ponder_calib_point *pt = &r->points[i];
        /* an equal-cost point before it is at least as accurate (the sort), so it is in best */
        pt->frontier = pt->accuracy > best + CALIB_EPS;
        if (pt->accuracy > best)
            best = pt->accuracy;
    }
    /* the same in dollars: (cost, accuracy, index) sorted cheapest first, more accurate first */
    cost_ix *ix = malloc((size_t)r->n_points * sizeof *ix);
    if (!ix)
        goto oom;
    for (int32_t i = 0; i < r->n_points; i++)
        ix[i] = (cost_ix){ r->points[i].cost_per_item, r->points[i].accuracy, i };
    qsort(ix, (size_t)r->n_points, sizeof *ix, cmp_cost);
    best = -1;
    for (int32_t i = 0; i < r->n_points; i++) {
        ponder_calib_point *pt = &r->points[ix[i].i];
        pt->frontier_usd = pt->accuracy > best + CALIB_EPS;
        if (pt->accuracy > best)
            best = pt->accuracy;
    }
    free(ix);
    double s1c = 0, s2c = 0;
    int32_t k1 = 0, k2 = 0;
    for (int32_t i = 0; i < n; i++) {
        k1 += items[i].s1_correct;
        k2 += items[i].s2_correct;
        r->s1_flops += items[i].s1_flops;
        r->s2_flops += items[i].s2_flops;
        s1c += items[i].s1_cost_usd;
        s2c += items[i].s2_cost_usd;
    }
    r->s1_accuracy = (double)k1 / n;
    r->s2_accuracy = (double)k2 / n;
    r->s1_flops /= n;
    r->s2_flops /= n;
    r->s1_cost_usd = s1c / n;
    r->s2_cost_usd = s2c / n;
    /* the rule (cascade.h): points are sorted cheapest first, the more accurate first on
     * equal cost, so the first qualifying point is the pick */
    r->chosen = -1;
    for (int32_t i = 0; i < r->n_points && r->chosen < 0; i++)
        if (r->points[i].accuracy >= r->s2_accuracy - prm.tolerance - CALIB_EPS)
            r->chosen = i;
    r->within_tolerance = r->chosen >= 0;
    if (r->chosen < 0) {
        r->chosen = 0;
        for (int32_t i = 1; i < r->n_points; i++)
            if (r->points[i].accuracy > r->points[r->chosen].accuracy + CALIB_EPS)
                r->chosen = i;
    }
    free(vals);
    free(ta);
    free(tl);
    *out = r;
    return PONDER_OK;
oom:
    free(vals);
    free(ta);
    free(tl);
    ponder_calib_result_free(r);
    return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
}

void ponder_calib_result_free(ponder_calib_result *r)
{
    if (!r)
        return;
    free(r->points);
    free(r);
}
