/*
 * quants.c — the 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, IQ4_NL.
 *
 * Dequantizers and dots follow ggml's ggml-quants.c / ggml-cpu/quants.c scalar code:
 * within a block the products are summed in int, across blocks in float, with the block
 * scales multiplied in the same order as ggml so the float rounding matches.
 *
 * Q8_0 and Q8_1 are the activation types of these weights; llama.cpp quantizes every
 * activation row with them before a product, so their quantizers must be bit-identical to
 * ggml's quantize_row_q8_0_ref / _q8_1_ref (roundf, d = amax/127, id = 1/d).
 * The weight quantizers follow the *_ref functions too (what llama-quantize uses without
 * an importance matrix), except IQ4_NL, which follows quantize_iq4_nl (ntry = 7): that is
 * what llama-quantize writes, and it is more accurate than the -1 "ref" shortcut.
 */
#include "tensor/quants.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define HALF (PONDER_QK / 2)

const int8_t ponder_kvalues_iq4nl[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* (int)v clamped to [lo, hi]: what ggml's `MIN(hi, (int8_t)v)` computes for in-range v,
 * without the undefined float-to-int conversion when v is NaN or huge. */
static int trunc_clamp(float v, int lo, int hi)
{
    if (!(v >= (float)lo))
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

static uint32_t load_u32(const uint8_t b[4])
{
    uint32_t u;
    memcpy(&u, b, sizeof u);
    return u;
}

/* Element with the largest |x| in x[0..n), sign kept (first one on ties). */
static float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out)
        *amax_out = amax;
    return max;
}

static void min_max(const float *x, int n, float *min_out, float *max_out)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    *min_out = min;
    *max_out = max;
}

/* ---- Q4_0: x = d * (q - 8) ---- */

void ponder_q4_0_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q4_0 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d);
        for (int j = 0; j < HALF; j++) {
            y[j] = (float)((x[ib].qs[j] & 0x0f) - 8) * d;
            y[j + HALF] = (float)((x[ib].qs[j] >> 4) - 8) * d;
        }
    }
}

void ponder_q4_0_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q4_0 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        /* the signed extreme maps to -8, so the other side gets the full +7 */
        const float d = signed_absmax(x, PONDER_QK, NULL) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[ib].d = ponder_f32_to_f16(d);
        for (int j = 0; j < HALF; j++) {
            const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
            const int q1 = trunc_clamp(x[j + HALF] * id + 8.5f, 0, 15);
            y[ib].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void ponder_vec_dot_q4_0_q8_0(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q4_0 *x = vx;
    const ponder_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < HALF; j++) {
            sumi0 += ((x[ib].qs[j] & 0x0f) - 8) * y[ib].qs[j];
            sumi1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + HALF];
        }
        sum += (float)(sumi0 + sumi1) * f16(x[ib].d) * f16(y[ib].d);
    }
    *out = sum;
}

/* ---- Q4_1: x = d * q + m ---- */

void ponder_q4_1_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q4_1 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d), m = f16(x[ib].m);
        for (int j = 0; j < HALF; j++) {
            y[j] = (float)(x[ib].qs[j] & 0x0f) * d + m;
            y[j + HALF] = (float)(x[ib].qs[j] >> 4) * d + m;
        }
    }
}

void ponder_q4_1_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q4_1 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        float min, max;
        min_max(x, PONDER_QK, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[ib].d = ponder_f32_to_f16(d);
        y[ib].m = ponder_f32_to_f16(min);
        for (int j = 0; j < HALF; j++) {
            const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 0, 15);
            const int q1 = trunc_clamp((x[j + HALF] - min) * id + 0.5f, 0, 15);
            y[ib].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void ponder_vec_dot_q4_1_q8_1(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q4_1 *x = vx;
    const ponder_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < HALF; j++) {
            sumi0 += (x[ib].qs[j] & 0x0f) * y[ib].qs[j];
            sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + HALF];
        }
        /* sum(d_x q_x + m)(d_y q_y) = d_x d_y sum(q_x q_y) + m * (d_y sum q_y), the last
         * factor being the precomputed s of the Q8_1 block */
        sum += (f16(x[ib].d) * f16(y[ib].d)) * (float)(sumi0 + sumi1) + f16(x[ib].m) * f16(y[ib].s);
    }
    *out = sum;
}

/* ---- Q5_0: x = d * (q - 16), q = nibble | qh bit << 4 ---- */

void ponder_q5_0_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q5_0 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d);
        const uint32_t qh = load_u32(x[ib].qh);
        for (int j = 0; j < HALF; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
            y[j] = (float)(((x[ib].qs[j] & 0x0f) | h0) - 16) * d;
            y[j + HALF] = (float)(((x[ib].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* The Q5_0/Q5_1 layout of 32 five-bit values: low nibbles of j and j+16 share qs[j],
 * the fifth bits go to bit j of the little-endian u32 qh. */
static void pack_q5(const uint8_t q[PONDER_QK], uint8_t qs[HALF], uint8_t qh_out[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < HALF; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + HALF] & 0x0f) << 4));
        qh |= (uint32_t)(q[j] >> 4) << j;
        qh |= (uint32_t)(q[j + HALF] >> 4) << (j + HALF);
    }
    memcpy(qh_out, &qh, sizeof qh);
}

void ponder_q5_0_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q5_0 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        const float d = signed_absmax(x, PONDER_QK, NULL) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[ib].d = ponder_f32_to_f16(d);
        uint8_t q[PONDER_QK];
        for (int j = 0; j < PONDER_QK; j++)
            q[j] = (uint8_t)trunc_clamp(x[j] * id + 16.5f, 0, 31);
        pack_q5(q, y[ib].qs, y[ib].qh);
    }
}

void ponder_vec_dot_q5_0_q8_0(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q5_0 *x = vx;
    const ponder_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        const uint32_t qh = load_u32(x[ib].qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < HALF; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
            sumi0 += (((x[ib].qs[j] & 0x0f) | h0) - 16) * y[ib].qs[j];
            sumi1 += (((x[ib].qs[j] >> 4) | h1) - 16) * y[ib].qs[j + HALF];
        }
        sum += (f16(x[ib].d) * f16(y[ib].d)) * (float)(sumi0 + sumi1);
    }
    *out = sum;
}

/* ---- Q5_1: x = d * q + m, 5-bit q ---- */

void ponder_q5_1_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q5_1 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d), m = f16(x[ib].m);
        const uint32_t qh = load_u32(x[ib].qh);
        for (int j = 0; j < HALF; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
            y[j] = (float)((x[ib].qs[j] & 0x0f) | h0) * d + m;
            y[j + HALF] = (float)((x[ib].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void ponder_q5_1_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q5_1 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        float min, max;
        min_max(x, PONDER_QK, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[ib].d = ponder_f32_to_f16(d);
        y[ib].m = ponder_f32_to_f16(min);
        uint8_t q[PONDER_QK];
        for (int j = 0; j < PONDER_QK; j++)
            q[j] = (uint8_t)trunc_clamp((x[j] - min) * id + 0.5f, 0, 31);
        pack_q5(q, y[ib].qs, y[ib].qh);
    }
}

void ponder_vec_dot_q5_1_q8_1(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q5_1 *x = vx;
    const ponder_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        const uint32_t qh = load_u32(x[ib].qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < HALF; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + HALF)) & 1) << 4;
            sumi0 += ((x[ib].qs[j] & 0x0f) | h0) * y[ib].qs[j];
            sumi1 += ((x[ib].qs[j] >> 4) | h1) * y[ib].qs[j + HALF];
        }
        sum += (f16(x[ib].d) * f16(y[ib].d)) * (float)(sumi0 + sumi1) + f16(x[ib].m) * f16(y[ib].s);
    }
    *out = sum;
}

/* ---- Q8_0: x = d * q; also the activation type of Q4_0, Q5_0, Q8_0, IQ4_NL ---- */

void ponder_q8_0_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q8_0 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d);
        for (int j = 0; j < PONDER_QK; j++)
            y[j] = (float)x[ib].qs[j] * d;
    }
}

/* Shared by Q8_0 and Q8_1; returns the block's d (before f16 rounding) and the q sum.
 * roundf (half away from zero) and id = 1/d exactly as quantize_row_q8_0_ref. */
static float quantize_block_q8(const float *x, int8_t *qs, int *sum_out)
{
    float amax;
    signed_absmax(x, PONDER_QK, &amax);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < PONDER_QK; j++) {
        /* |x*id| <= 127 up to rounding; clamp only guards NaN/inf input */
        const float v = roundf(x[j] * id);
        const int q = v >= 127.0f ? 127 : v <= -127.0f ? -127 : v == v ? (int)v : 0;
        qs[j] = (int8_t)q;
        sum += q;
    }
    *sum_out = sum;
    return d;
}

void ponder_q8_0_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_0 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        int sum;
        const float d = quantize_block_q8(x, y[ib].qs, &sum);
        y[ib].d = ponder_f32_to_f16(d);
    }
}

void ponder_vec_dot_q8_0_q8_0(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q8_0 *x = vx;
    const ponder_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        int sumi = 0;
        for (int j = 0; j < PONDER_QK; j++)
            sumi += x[ib].qs[j] * y[ib].qs[j];
        sum += (float)sumi * (f16(x[ib].d) * f16(y[ib].d));
    }
    *out = sum;
}

/* ---- Q8_1: activation type of Q4_1 and Q5_1 (no dot of its own, as in ggml) ---- */

void ponder_q8_1_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q8_1 *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d);
        for (int j = 0; j < PONDER_QK; j++)
            y[j] = (float)x[ib].qs[j] * d;
    }
}

void ponder_q8_1_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_1 *y = dst;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        int sum;
        const float d = quantize_block_q8(x, y[ib].qs, &sum);
        y[ib].d = ponder_f32_to_f16(d);
        y[ib].s = ponder_f32_to_f16((float)sum * d); /* unrounded d, as ggml */
    }
}

/* ---- IQ4_NL: x = d * kvalues[q] ---- */

void ponder_iq4_nl_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_iq4_nl *x = src;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, y += PONDER_QK) {
        const float d = f16(x[ib].d);
        for (int j = 0; j < HALF; j++) {
            y[j] = d * (float)ponder_kvalues_iq4nl[x[ib].qs[j] & 0x0f];
            y[j + HALF] = d * (float)ponder_kvalues_iq4nl[x[ib].qs[j] >> 4];
        }
    }
}

/* Index of the level nearest to v (ties go up): v picks level i once it reaches the
 * midpoint of levels i-1 and i; doubling v keeps the midpoints exact integers. */
static int iq4nl_best_index(float v)
{
    const float v2 = v + v;
    int idx = 0;
    for (int step = 8; step > 0; step >>= 1) {
        const int j = idx + step;
        if (v2 >= (float)(ponder_kvalues_iq4nl[j - 1] + ponder_kvalues_iq4nl[j]))
            idx = j;
    }
    return idx;
}

/* Weighted least-squares scale for the levels chosen at inverse scale id. */
static void iq4nl_fit(const float *x, const float *w, float id, float *sumqx, float *sumq2)
{
    float sx = 0.0f, s2 = 0.0f;
    for (int j = 0; j < PONDER_QK; j++) {
        const float q = ponder_kvalues_iq4nl[iq4nl_best_index(id * x[j])];
        sx += w[j] * q * x[j];
        s2 += w[j] * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

#define IQ4NL_NTRY 7 /* scale candidates each side, as quantize_iq4_nl */

void ponder_iq4_nl_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_iq4_nl *y = dst;
    const int8_t *kv = ponder_kvalues_iq4nl;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++, x += PONDER_QK) {
        float w[PONDER_QK];
        for (int j = 0; j < PONDER_QK; j++)
            w[j] = x[j] * x[j];
        float amax;
        const float max = signed_absmax(x, PONDER_QK, &amax);
        float d = 0.0f;
        if (amax >= PONDER_GROUP_MAX_EPS) {
            /* start with the extreme on the -127 level, then try nearby inverse scales
             * and keep the best weighted fit */
            float sumqx, sumq2;
            iq4nl_fit(x, w, 1.0f / (-max / kv[0]), &sumqx, &sumq2);
            d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
            float best = d * sumqx;
            for (int itry = -IQ4NL_NTRY; itry <= IQ4NL_NTRY; itry++) {
                iq4nl_fit(x, w, (float)(itry + kv[0]) / max, &sumqx, &sumq2);
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
        }
        y[ib].d = ponder_f32_to_f16(d);
        const float id = d ? 1.0f / d : 0.0f;
        for (int j = 0; j < HALF; j++) {
            const int q0 = iq4nl_best_index(id * x[j]);
            const int q1 = iq4nl_best_index(id * x[j + HALF]);
            y[ib].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void ponder_vec_dot_iq4_nl_q8_0(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_iq4_nl *x = vx;
    const ponder_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / PONDER_QK; ib++) {
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < HALF; j++) {
            sumi1 += y[ib].qs[j] * ponder_kvalues_iq4nl[x[ib].qs[j] & 0x0f];
            sumi2 += y[ib].qs[j + HALF] * ponder_kvalues_iq4nl[x[ib].qs[j] >> 4];
        }
        sum += (f16(x[ib].d) * f16(y[ib].d)) * (float)(sumi1 + sumi2);
    }
    *out = sum;
}
