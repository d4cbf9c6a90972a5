/*
 * vote.c — majority vote over extracted answers, Adaptive-Consistency's Beta stopping
 * rule (with the regularized incomplete beta it needs) and the Wilson score interval that
 * `ponder eval` reports accuracy with.
 */
#include "ponder/think.h"

#include <math.h>
#include <string.h>

int32_t ponder_vote_tally(const char *const *answers, int32_t n, ponder_vote *votes, int32_t *n_answered)
{
    int32_t n_votes = 0, answered = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *a = answers ? answers[i] : NULL;
        if (!a || !*a)
            continue;
        answered++;
        int32_t k = 0;
        while (k < n_votes && strcmp(votes[k].answer, a) != 0)
            k++;
        if (k == n_votes) {
            memset(&votes[k], 0, sizeof votes[k]);
            strncpy(votes[k].answer, a, PONDER_ANSWER_BYTES - 1);
            votes[k].first = i;
            n_votes++;
        }
        votes[k].count++;
    }
    /* insertion sort: count descending, then earliest first occurrence (the documented tie-break) */
    for (int32_t i = 1; i < n_votes; i++) {
        ponder_vote v = votes[i];
        int32_t j = i;
        while (j > 0 && (votes[j - 1].count < v.count || (votes[j - 1].count == v.count && votes[j - 1].first > v.first))) {
            votes[j] = votes[j - 1];
            j--;
        }
        votes[j] = v;
    }
    if (n_answered)
        *n_answered = answered;
    return n_votes;
}

/* Continued fraction for I_x(a, b) by the modified Lentz method (Numerical Recipes 6.4,
 * betacf); converges fast for x < (a + 1) / (a + b + 2). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    const int max_iter = 1000;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= max_iter; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < eps)
            break;
    }
    return h;
}

double ponder_incbeta(double a, double b, double x)
{
    if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0) || !(x <= 1.0))
        return NAN;
    if (x == 0.0 || x == 1.0)
        return x;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    if (x < (a + 1.0) / (a + b + 2.0))
        return bt * betacf(a, b, x) / a;
    return 1.0 - bt * betacf(b, a, 1.0 - x) / b;
}

double ponder_asc_majority_prob(int32_t v1, int32_t v2)
{
    if (v1 < 0 || v2 < 0)
        return NAN;
    return 1.0 - ponder_incbeta(v1 + 1.0, v2 + 1.0, 0.5);
}

void ponder_wilson_interval(int32_t k, int32_t n, double z, double *lo, double *hi)
{
    if (n <= 0 || k < 0 || k > n) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double p = (double)k / n, z2 = z * z;
    double den = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / den;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * (double)n)) / den;
    /* at k = 0 (k = n) the bound is exactly 0 (1); rounding must not move it inside */
    *lo = k == 0 ? 0.0 : fmax(0.0, centre - half);
    *hi = k == n ? 1.0 : fmin(1.0, centre + half);
}
