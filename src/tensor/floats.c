/*
 * floats.c — the plain float types: F32, F16 and BF16 conversions and dot products.
 *
 * The f16 conversions are done in integer arithmetic so that they give the same bits as
 * the x86 F16C instructions llama.cpp uses (VCVTPS2PH with imm 0 = round to nearest even;
 * VCVTPH2PS), on any host and under any FPU rounding mode. bf16 follows ggml's
 * ggml_compute_fp32_to_bf16 (round to nearest even, NaN forced quiet, subnormals kept).
 *
 * The dots accumulate in double like ggml's scalar ggml_vec_dot_f32/_f16/_bf16
 * (ggml_float): a product of two f16 or bf16 values is exact in float, so only the final
 * rounding to float is lost.
 *
 * The *_ref row functions are the oracle; the public ponder_f32_to_f16_row & co. dispatch
 * to the active kernel path (dispatch.c).
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <math.h>
#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ponder_f16_to_f32(ponder_f16 h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf, or NaN made quiet as VCVTPH2PS does */
        return f32_from_bits(sign | 0x7f800000 | (mant << 13) | (mant ? 0x400000u : 0));
    if (exp != 0)
        return f32_from_bits(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
    if (mant == 0)
        return f32_from_bits(sign);
    /* subnormal: normalize so the leading 1 lands in bit 10 */
    int e = -1;
    uint32_t m = mant;
    do {
        m <<= 1;
        e++;
    } while (!(m & 0x400));
    return f32_from_bits(sign | ((uint32_t)(127 - 15 - e) << 23) | ((m & 0x3ff) << 13));
}

ponder_f16 ponder_f32_to_f16(float f)
{
    const uint32_t x = f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) /* NaN: keep the top payload bits, set the quiet bit (F16C) */
        return (ponder_f16)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000) /* >= 65520, halfway past the largest f16 65504: rounds to inf */
        return (ponder_f16)(sign | 0x7c00);
    if (ax >= 0x38800000) { /* >= 2^-14: normal f16 */
        uint32_t h = (ax - ((127u - 15u) << 23)) >> 13;
        const uint32_t rem = ax & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
            h++; /* a carry out of the mantissa correctly bumps the exponent */
        return (ponder_f16)(sign | h);
    }
    /* subnormal f16 (or zero): h = round(|f| * 2^24) */
    const uint32_t exp = ax >> 23;
    if (exp < 127 - 15 - 10) /* |f| < 2^-25, under half the smallest subnormal 2^-24 */
        return (ponder_f16)sign;
    const uint32_t mant = (ax & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - exp; /* 14 ... 24 */
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
        h++;
    return (ponder_f16)(sign | h);
}

float ponder_bf16_to_f32(ponder_bf16 h)
{
    return f32_from_bits((uint32_t)h << 16);
}

ponder_bf16 ponder_f32_to_bf16(float f)
{
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000)
        return (ponder_bf16)((x >> 16) | 0x40);
    return (ponder_bf16)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

void ponder_f16_to_f32_row_ref(const ponder_f16 *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = ponder_f16_to_f32(x[i]);
}

void ponder_f32_to_f16_row_ref(const float *x, ponder_f16 *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = ponder_f32_to_f16(x[i]);
}

void ponder_vec_dot_f16_ref(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(ponder_f16_to_f32(x[i]) * ponder_f16_to_f32(y[i]));
    *out = (float)sum;
}

void ponder_vec_mad_f16_ref(int64_t n, float *y, const ponder_f16 *x, float a)
{
    for (int64_t i = 0; i < n; i++) {
        const float p = a * ponder_f16_to_f32(x[i]); /* rounded here: no fused multiply-add */
        y[i] += p;
    }
}

double ponder_vec_exp_sub_ref(int64_t n, float *y, const float *x, float max)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - max);
        sum += (double)y[i];
    }
    return sum;
}

/* ---- traits-table entry points ---- */

void ponder_f32_to_float(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ponder_f32_from_float(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ponder_vec_dot_f32(int64_t n, float *out, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * y[i]);
    *out = (float)sum;
}

void ponder_f16_to_float(const void *src, float *dst, int64_t n)
{
    ponder_f16_to_f32_row_ref(src, dst, n);
}

void ponder_f16_from_float(const float *src, void *dst, int64_t n)
{
    ponder_f32_to_f16_row_ref(src, dst, n);
}

void ponder_vec_dot_f16_f16(int64_t n, float *out, const void *x, const void *y)
{
    ponder_vec_dot_f16_ref(n, out, x, y);
}

void ponder_bf16_to_float(const void *src, float *dst, int64_t n)
{
    const ponder_bf16 *x = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = ponder_bf16_to_f32(x[i]);
}

void ponder_bf16_from_float(const float *src, void *dst, int64_t n)
{
    ponder_bf16 *y = dst;
    for (int64_t i = 0; i < n; i++)
        y[i] = ponder_f32_to_bf16(src[i]);
}

void ponder_vec_dot_bf16(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_bf16 *x = vx, *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(ponder_bf16_to_f32(x[i]) * ponder_bf16_to_f32(y[i]));
    *out = (float)sum;
}
