/* tensor_test.h — helpers shared by the tensor tests: a seeded RNG, Gaussian data and
 * error measures. Header-only (static) so each test stays one executable. */
#ifndef PONDER_TENSOR_TEST_H
#define PONDER_TENSOR_TEST_H

#include "ponder/tensor.h"
#include "tensor/quants.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t s;
} tt_rng;

/* splitmix64: deterministic across platforms, so failures reproduce */
static inline uint64_t tt_next(tt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static inline double tt_uniform(tt_rng *r)
{
    return (double)(tt_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* standard normal (Box-Muller) */
static inline double tt_gauss(tt_rng *r)
{
    const double u1 = 1.0 - tt_uniform(r); /* (0, 1] */
    const double u2 = tt_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline void tt_fill_gauss(tt_rng *r, float *x, int64_t n, double sigma)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(sigma * tt_gauss(r));
}

/* sqrt(sum (a-b)^2 / sum b^2), b the reference */
static inline double tt_rel_rms(const float *a, const float *b, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline double tt_dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* sum |a_i b_i|: the scale a dot product's rounding error is relative to */
static inline double tt_dot_abs(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)a[i] * (double)b[i]);
    return s;
}

/* Bytes of a row of n elements of type t (t known, n block-aligned). */
static inline size_t tt_row_bytes(int t, int64_t n)
{
    size_t b = 0;
    ponder_type_row_bytes(t, n, &b, NULL);
    return b;
}

/* For Q4_1/Q5_1 weights the activation block sum s is stored as f16, so vec_dot differs
 * from the dot of the dequantized rows by up to half an f16 ulp of m*s per block. This is
 * that slack for one weight row wq against dequantized activations adeq (0 for others). */
static inline double tt_q8_1_slack(int t, const void *wq, const float *adeq, int64_t n)
{
    double slack = 0.0;
    for (int64_t b = 0; b < n / PONDER_QK; b++) {
        ponder_f16 m;
        if (t == PONDER_TYPE_Q4_1)
            m = ((const ponder_block_q4_1 *)wq)[b].m;
        else if (t == PONDER_TYPE_Q5_1)
            m = ((const ponder_block_q5_1 *)wq)[b].m;
        else
            return 0.0;
        double s = 0.0;
        for (int i = 0; i < PONDER_QK; i++)
            s += adeq[b * PONDER_QK + i];
        slack += fabs((double)ponder_f16_to_f32(m) * s) * 0x1p-11;
    }
    return slack;
}

#endif
