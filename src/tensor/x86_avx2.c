/*
 * x86_avx2.c — AVX2 + FMA + F16C kernels. Compiled with -mavx2 -mfma -mf16c (and only
 * this file), called only when dispatch.c has seen those features at run time.
 *
 * The same source is built twice more as the VNNI paths (x86_avxvnni.c and
 * x86_avx512vnni.c include it): with
 * PONDER_X86_VNNI set to 1 (AVX-VNNI, VEX) or 2 (AVX512-VNNI on 256-bit registers,
 * EVEX), the 8-bit dot step of the Q8_0 family (maddubs, then madd with ones) becomes one
 * vpdpbusd. The int32 lane sums are the same numbers (maddubs cannot saturate here: one
 * operand is at most 128 and the other at most 127 in magnitude), so every VNNI result is
 * bit-identical to this path's; only the speed differs.
 *
 * Contract with the scalar oracle (quants.c, quants_k.c, floats.c):
 *  - activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16) give identical bytes, NaN and
 *    ties included: roundf is rebuilt from truncation (half away from zero), Q8_K's
 *    nearest_int keeps its magic-number form, max-abs ignores NaN as the scalar compare
 *    does, and out-of-range Q8_K values wrap as the scalar (int8_t) cast does;
 *  - dots compute the same exact integer block sums and the same scale products, so
 *    they differ from the oracle only in the order float terms are added.
 * Layout facts (nibble order, Q5 high bits, K-quant scale packing) are documented at the
 * block structs in quants.h and at the scalar kernels; the vector forms follow them.
 *
 * Tile kernels (gemm_*) serve prompt processing: several weight rows x several tokens per
 * pass, so decoded weights and loaded activations are reused from registers (llamafile's
 * tinyBLAS idea). Single tokens use the vec_dots, which stream one row at a time.
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <immintrin.h>
#include <string.h>

#ifndef PONDER_X86_VNNI
#define PONDER_X86_VNNI 0
#endif

#define QK PONDER_QK
#define QK_K PONDER_QK_K
#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* How far ahead the single-row dots prefetch their weights. A token's weights stream
 * from memory once; the hardware prefetchers alone left ~30% of the bandwidth unused
 * (Q8_0 rows: 8.5 -> 12.5 GB/s on one Zen 3 core with this). */
#define PREFETCH_BYTES 1024

/* ---- helpers ---- */

/* Prefetches the cache lines PREFETCH_BYTES past [p, p + bytes). Prefetches never fault,
 * so running past the end of a row is harmless. */
ALWAYS_INLINE void prefetch_ahead(const void *p, size_t bytes)
{
    for (size_t off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)p + PREFETCH_BYTES + off, _MM_HINT_T0);
}

ALWAYS_INLINE float hsum_ps128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE float hsum_ps(__m256 v)
{
    return hsum_ps128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

ALWAYS_INLINE int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

ALWAYS_INLINE float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

ALWAYS_INLINE float f16s(ponder_f16 h)
{
    return _cvtsh_ss(h);
}

ALWAYS_INLINE ponder_f16 f16_of(float f)
{
    return (ponder_f16)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

ALWAYS_INLINE ponder_f16 load_f16(const uint8_t *p)
{
    ponder_f16 h;
    memcpy(&h, p, sizeof h);
    return h;
}

/* 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then the high ones. */
ALWAYS_INLINE __m256i nibbles32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* Byte j = 0xff if bit j of the little-endian u32 at qh is set, else 0. */
ALWAYS_INLINE __m256i bits32(const uint8_t *qh)
{
    uint32_t u;
    memcpy(&u, qh, sizeof u);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)u),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    /* all bits set except bit j%8 of byte j: the OR is all-ones exactly when bit j is set */
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
}

/* Unsigned u (<= 128) times signed y (|y| <= 127), 4 adjacent products summed, as 8 int32. */
ALWAYS_INLINE __m256i dot_u8(__m256i u, __m256i y)
{
#if PONDER_X86_VNNI == 1
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, y);
#elif PONDER_X86_VNNI == 2
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
#endif
}

/* Sums of 4 adjacent products of signed x and signed y (y never -128: activations are
 * clamped to +-127), as 8 int32. The 8-bit products need an unsigned operand: |x| and
 * sign(x)*y. */
ALWAYS_INLINE __m256i dot_i8(__m256i x, __m256i y)
{
    return dot_u8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Same, with x already split into |x| (ax) and kept for the sign. */
ALWAYS_INLINE __m256i dot_i8_abs(__m256i ax, __m256i x, __m256i y)
{
    return dot_u8(ax, _mm256_sign_epi8(y, x));
}

/* ---- float rows ---- */

static void f32_to_f16_row(const float *x, ponder_f16 *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = f16_of(x[i]);
}

static void f16_to_f32_row(const ponder_f16 *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++)
        y[i] = f16s(x[i]);
}

static void f16_from_float(const float *x, void *y, int64_t n)
{
    f32_to_f16_row(x, y, n);
}

/* bf16 as ponder_f32_to_bf16: round to nearest even on the top 16 bits, NaN made quiet. */
static void bf16_from_float(const float *x, void *vy, int64_t n)
{
    ponder_bf16 *y = vy;
    int64_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        const __m256i hi = _mm256_srli_epi32(u, 16);
        const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)));
        const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
        const __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
        const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(y + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++)
        y[i] = ponder_f32_to_bf16(x[i]);
}

/* Loads 8 elements of a float-like row as f32. */
typedef __m256 (*load8_fn)(const void *p, int64_t i);

ALWAYS_INLINE __m256 load8_f32(const void *p, int64_t i)
{
    return _mm256_loadu_ps((const float *)p + i);
}

ALWAYS_INLINE __m256 load8_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const ponder_f16 *)p + i)));
}

ALWAYS_INLINE __m256 load8_bf16(const void *p, int64_t i)
{
    const __m128i h = _mm_loadu_si128((const __m128i *)((const ponder_bf16 *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

typedef float (*load1_fn)(const void *p, int64_t i);

ALWAYS_INLINE float load1_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
ALWAYS_INLINE float load1_f16(const void *p, int64_t i) { return f16s(((const ponder_f16 *)p)[i]); }
ALWAYS_INLINE float load1_bf16(const void *p, int64_t i) { return ponder_bf16_to_f32(((const ponder_bf16 *)p)[i]); }

/* Float-accumulated dot: four 8-wide FMA chains, then the tail one element at a time.
 * x and y may be read through different loaders (same values, e.g. f16 and its f32
 * widening): the result depends only on the values. x (xsz bytes per element) is the
 * streamed operand, the one prefetched. */
ALWAYS_INLINE float dot_float_row2(int64_t n, const void *x, size_t xsz, const void *y, load8_fn ldx, load1_fn ldx1,
                                   load8_fn ldy, load1_fn ldy1)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_ahead((const char *)x + (size_t)i * xsz, 32 * xsz);
        a0 = _mm256_fmadd_ps(ldx(x, i), ldy(y, i), a0);
        a1 = _mm256_fmadd_ps(ldx(x, i + 8), ldy(y, i + 8), a1);
        a2 = _mm256_fmadd_ps(ldx(x, i + 16), ldy(y, i + 16), a2);
        a3 = _mm256_fmadd_ps(ldx(x, i + 24), ldy(y, i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(ldx(x, i), ldy(y, i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++)
        sum += ldx1(x, i) * ldy1(y, i);
    return sum;
}

ALWAYS_INLINE float dot_float_row(int64_t n, const void *x, size_t xsz, const void *y, load8_fn ld, load1_fn ld1)
{
    return dot_float_row2(n, x, xsz, y, ld, ld1, ld, ld1);
}

static void vec_dot_f32(int64_t n, float *out, const void *x, const void *y)
{
    *out = dot_float_row(n, x, sizeof(float), y, load8_f32, load1_f32);
}

static void vec_dot_f16_f16(int64_t n, float *out, const void *x, const void *y)
{
    *out = dot_float_row(n, x, sizeof(ponder_f16), y, load8_f16, load1_f16);
}

static void vec_dot_f16(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y)
{
    *out = dot_float_row(n, x, sizeof(ponder_f16), y, load8_f16, load1_f16);
}

/* mul then add, never fused: the same roundings as the scalar loop */
static void vec_mad_f16(int64_t n, float *y, const ponder_f16 *x, float a)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 p0 = _mm256_mul_ps(va, load8_f16(x, i)), p1 = _mm256_mul_ps(va, load8_f16(x, i + 8));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), p0));
        _mm256_storeu_ps(y + i + 8, _mm256_add_ps(_mm256_loadu_ps(y + i + 8), p1));
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, load8_f16(x, i))));
    for (; i < n; i++) {
        const float p = a * f16s(x[i]);
        y[i] += p;
    }
}

/* Per row the same sums as vec_dot_f16 (x widened once: the same values). */
enum { F16_ROWS_STACK = 1024, F16_MAD_SPAN = 64 };

static void vec_dot_f16_rows(int64_t n, int64_t n_rows, float *out, const ponder_f16 *rows, size_t row_stride,
                             const ponder_f16 *x)
{
    const uint8_t *rb = (const uint8_t *)rows;
    if (n > F16_ROWS_STACK) {
        for (int64_t j = 0; j < n_rows; j++)
            out[j] = dot_float_row(n, rb + (size_t)j * row_stride, sizeof(ponder_f16), x, load8_f16, load1_f16);
        return;
    }
    float xf[F16_ROWS_STACK];
    f16_to_f32_row(x, xf, n);
    int64_t j = 0;
    /* Attention rows are short (head size 64), so a horizontal sum per row weighed as
     * much as the products: four rows are reduced together, each through the same tree
     * of additions as hsum_ps, hence the same bits as dot_float_row2. */
    if (n % 8 == 0) {
        for (; j + 4 <= n_rows; j += 4) {
            __m256 v[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *row = rb + (size_t)(j + k) * row_stride;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                int64_t i = 0;
                for (; i + 32 <= n; i += 32) {
                    prefetch_ahead(row + (size_t)i * sizeof(ponder_f16), 32 * sizeof(ponder_f16));
                    a0 = _mm256_fmadd_ps(load8_f16(row, i), load8_f32(xf, i), a0);
                    a1 = _mm256_fmadd_ps(load8_f16(row, i + 8), load8_f32(xf, i + 8), a1);
                    a2 = _mm256_fmadd_ps(load8_f16(row, i + 16), load8_f32(xf, i + 16), a2);
                    a3 = _mm256_fmadd_ps(load8_f16(row, i + 24), load8_f32(xf, i + 24), a3);
                }
                for (; i < n; i += 8)
                    a0 = _mm256_fmadd_ps(load8_f16(row, i), load8_f32(xf, i), a0);
                v[k] = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            }
            /* per row: s = lo + hi, t = (s0 + s2, s1 + s3), u = t0 + t1 */
            const __m256 s01 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20),
                                             _mm256_permute2f128_ps(v[0], v[1], 0x31));
            const __m256 s23 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20),
                                             _mm256_permute2f128_ps(v[2], v[3], 0x31));
            const __m256 t = _mm256_add_ps(_mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(1, 0, 1, 0)),
                                           _mm256_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 2, 3, 2)));
            const __m256 u = _mm256_add_ps(_mm256_shuffle_ps(t, t, _MM_SHUFFLE(2, 0, 2, 0)),
                                           _mm256_shuffle_ps(t, t, _MM_SHUFFLE(3, 1, 3, 1)));
            /* u = [u0 u2 u0 u2 | u1 u3 u1 u3] */
            _mm_storeu_ps(out + j, _mm_unpacklo_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
        }
    }
    for (; j < n_rows; j++)
        out[j] = dot_float_row2(n, rb + (size_t)j * row_stride, sizeof(ponder_f16), xf, load8_f16, load1_f16, load8_f32,
                                 load1_f32);
}

/* y stays in registers, F16_MAD_SPAN floats at a time, across all rows; per element the
 * rows are added in order with the product rounded first, as vec_mad_f16. */
static void vec_mad_f16_rows(int64_t n, int64_t n_rows, float *y, const ponder_f16 *rows, size_t row_stride,
                             const float *w)
{
    const uint8_t *rb = (const uint8_t *)rows;
    int64_t i0 = 0;
    for (; i0 + F16_MAD_SPAN <= n; i0 += F16_MAD_SPAN) {
        __m256 acc[F16_MAD_SPAN / 8];
        for (int k = 0; k < F16_MAD_SPAN / 8; k++)
            acc[k] = _mm256_loadu_ps(y + i0 + 8 * k);
        for (int64_t j = 0; j < n_rows; j++) {
            const __m256 a = _mm256_set1_ps(w[j]);
            const void *row = rb + (size_t)j * row_stride;
            for (int k = 0; k < F16_MAD_SPAN / 8; k++)
                acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(a, load8_f16(row, i0 + 8 * k)));
        }
        for (int k = 0; k < F16_MAD_SPAN / 8; k++)
            _mm256_storeu_ps(y + i0 + 8 * k, acc[k]);
    }
    if (i0 < n)
        for (int64_t j = 0; j < n_rows; j++)
            vec_mad_f16(n - i0, y + i0, (const ponder_f16 *)(rb + (size_t)j * row_stride) + i0, w[j]);
}

/* expf of 8 lanes: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two so k ln2 is exact
 * for |k| <= 150), e^r by its Taylor polynomial to degree 7 (truncation < 1e-8 relative),
 * then 2^k applied as two normal powers 2^(k/2) 2^(k - k/2), so results that underflow
 * into subnormals or to 0 and those that overflow to inf round once, as expf does.
 * Inputs are clamped to [-104, 89] (beyond, expf is 0 or inf); NaN passes through. */
ALWAYS_INLINE __m256 exp8(__m256 x)
{
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i ki = _mm256_cvtps_epi32(k);
    const __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

ALWAYS_INLINE __m256d sum8_pd(__m256d acc, __m256 v)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static double vec_exp_sub(int64_t n, float *y, const float *x, float max)
{
    const __m256 m = _mm256_set1_ps(max);
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(y + i, e);
        acc = sum8_pd(acc, e);
    }
    if (i < n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), lane);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), m));
        _mm256_maskstore_ps(y + i, mask, e);
        acc = sum8_pd(acc, _mm256_and_ps(e, _mm256_castsi256_ps(mask)));
    }
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

static void vec_dot_bf16(int64_t n, float *out, const void *x, const void *y)
{
    *out = dot_float_row(n, x, sizeof(ponder_bf16), y, load8_bf16, load1_bf16);
}

/* F16 weights x F16 activations, one row x F16_RN tokens at a time. Batching must not
 * change a result, so each (row, token) output is computed by exactly the float
 * operations of vec_dot_f16_f16 (dot_float_row2): the same four FMA chains (chain k takes
 * the 8 columns at 8k mod 32, chain 0 also the 8-column steps past the last multiple of
 * 32), the same (a0 + a1) + (a2 + a3) and hsum_ps, the same scalar tail. Four chains per
 * token make 12 accumulators, so the tile is one row wide; each weight vector is widened
 * once for the F16_RN tokens. Widening f16 is the bottleneck (two conversions per FMA
 * otherwise), so the F16_RN activation rows are widened to f32 once per call, on the
 * stack, and serve every row. The columns are walked in F16_KB segments (a multiple of
 * 32, so the chains do not move) across a group of rows, their accumulators parked on the
 * stack between segments, so a segment of activations stays in L1 however long the rows.
 * Rows too long for F16_STACK_FLOATS widen both operands in the loop instead. */
enum { F16_RM = 1, F16_RN = 3, F16_STACK_FLOATS = 3 * 4096, F16_KB = 512, F16_GROUP = 16 };

/* acc += the products of columns [k0, k1) of one row (k0 a multiple of 32; k1 <= n8,
 * n32 <= n8 the last multiples of 32 and 8 in the row) */
ALWAYS_INLINE void f16_row_span(const uint8_t *wr, const uint8_t *ab, size_t as, int64_t k0, int64_t k1, int64_t n32,
                                __m256 acc_io[F16_RN][4], load8_fn lda)
{
    __m256 acc[F16_RN][4];
    for (int t = 0; t < F16_RN; t++)
        for (int k = 0; k < 4; k++)
            acc[t][k] = acc_io[t][k];
    const int64_t e32 = k1 < n32 ? k1 : n32;
    int64_t i = k0;
    for (; i < e32; i += 32) {
        for (int k = 0; k < 4; k++) {
            const __m256 wv = load8_f16(wr, i + 8 * k);
            for (int t = 0; t < F16_RN; t++)
                acc[t][k] = _mm256_fmadd_ps(wv, lda(ab + (size_t)t * as, i + 8 * k), acc[t][k]);
        }
    }
    for (; i < k1; i += 8) {
        const __m256 wv = load8_f16(wr, i);
        for (int t = 0; t < F16_RN; t++)
            acc[t][0] = _mm256_fmadd_ps(wv, lda(ab + (size_t)t * as, i), acc[t][0]);
    }
    for (int t = 0; t < F16_RN; t++)
        for (int k = 0; k < 4; k++)
            acc_io[t][k] = acc[t][k];
}

/* y of one row from its accumulators, plus the columns past the last multiple of 8 */
ALWAYS_INLINE void f16_row_finish(int64_t n, int64_t n8, const uint8_t *wr, const uint8_t *ab, size_t as, float *y,
                                  size_t ys, __m256 acc[F16_RN][4], load1_fn lda1)
{
    for (int t = 0; t < F16_RN; t++) {
        float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
        for (int64_t k = n8; k < n; k++)
            sum += load1_f16(wr, k) * lda1(ab + (size_t)t * as, k);
        y[(size_t)t * ys] = sum;
    }
}

static void gemm_f16(int64_t n, int n_rows, int n_tok, const void *w, size_t ws, const void *a, size_t as,
                     float *y, size_t ys)
{
    const uint8_t *wb = w;
    const int64_t n8 = n / 8 * 8, n32 = n / 32 * 32;
    (void)n_tok; /* always F16_RN */
    const bool widen = n * F16_RN <= F16_STACK_FLOATS;
    float wide[F16_STACK_FLOATS];
    const uint8_t *ab = a;
    size_t abs_ = as;
    if (widen) {
        for (int t = 0; t < F16_RN; t++)
            f16_to_f32_row((const ponder_f16 *)((const uint8_t *)a + (size_t)t * as), wide + (size_t)t * (size_t)n, n);
        ab = (const uint8_t *)wide;
        abs_ = (size_t)n * sizeof(float);
    }
    if (n8 <= F16_KB) { /* one segment: the accumulators stay in registers */
        for (int r = 0; r < n_rows; r++) {
            __m256 acc[F16_RN][4];
            for (int t = 0; t < F16_RN; t++)
                for (int k = 0; k < 4; k++)
                    acc[t][k] = _mm256_setzero_ps();
            if (widen) {
                f16_row_span(wb + (size_t)r * ws, ab, abs_, 0, n8, n32, acc, load8_f32);
                f16_row_finish(n, n8, wb + (size_t)r * ws, ab, abs_, y + r, ys, acc, load1_f32);
            } else {
                f16_row_span(wb + (size_t)r * ws, ab, abs_, 0, n8, n32, acc, load8_f16);
                f16_row_finish(n, n8, wb + (size_t)r * ws, ab, abs_, y + r, ys, acc, load1_f16);
            }
        }
        return;
    }
    for (int g = 0; g < n_rows; g += F16_GROUP) {
        const int n_g = n_rows - g < F16_GROUP ? n_rows - g : F16_GROUP;
        __m256 acc[F16_GROUP][F16_RN][4];
        for (int r = 0; r < n_g; r++)
            for (int t = 0; t < F16_RN; t++)
                for (int k = 0; k < 4; k++)
                    acc[r][t][k] = _mm256_setzero_ps();
        for (int64_t k0 = 0; k0 < n8; k0 += F16_KB) {
            const int64_t k1 = k0 + F16_KB < n8 ? k0 + F16_KB : n8;
            for (int r = 0; r < n_g; r++) {
                if (widen)
                    f16_row_span(wb + (size_t)(g + r) * ws, ab, abs_, k0, k1, n32, acc[r], load8_f32);
                else
                    f16_row_span(wb + (size_t)(g + r) * ws, ab, abs_, k0, k1, n32, acc[r], load8_f16);
            }
        }
        for (int r = 0; r < n_g; r++) {
            if (widen)
                f16_row_finish(n, n8, wb + (size_t)(g + r) * ws, ab, abs_, y + g + r, ys, acc[r], load1_f32);
            else
                f16_row_finish(n, n8, wb + (size_t)(g + r) * ws, ab, abs_, y + g + r, ys, acc[r], load1_f16);
        }
    }
}

/* ---- activation quantizers: Q8_0, Q8_1, Q8_K ---- */

/* roundf (half away from zero) of each lane, exactly: x - trunc(x) is exact in float. */
ALWAYS_INLINE __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign, v));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* One block of 32 as quantize_block_q8 in quants.c: returns d (before f16 rounding). */
ALWAYS_INLINE float quantize_block_q8(const float *x, int8_t *qs, int *sum_out)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m); /* a NaN lane keeps m, as the scalar compare */
    }
    const float amax = hmax_ps(m);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) {
        __m256 r = round_away(_mm256_mul_ps(v[k], vid));
        r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN -> 0 */
        r = _mm256_max_ps(_mm256_min_ps(r, _mm256_set1_ps(127.0f)), _mm256_set1_ps(-127.0f));
        q[k] = _mm256_cvtps_epi32(r);
    }
    if (sum_out)
        *sum_out = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]); /* 0-3 8-11 | 4-7 12-15 */
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);  /* dword order 0 2 4 6 | 1 3 5 7 */
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return d;
}

static void quantize_q8_0(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_0 *y = dst;
    for (int64_t ib = 0; ib < n / QK; ib++, x += QK)
        y[ib].d = f16_of(quantize_block_q8(x, y[ib].qs, NULL));
}

static void quantize_q8_1(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_1 *y = dst;
    for (int64_t ib = 0; ib < n / QK; ib++, x += QK) {
        int sum;
        const float d = quantize_block_q8(x, y[ib].qs, &sum);
        y[ib].d = f16_of(d);
        y[ib].s = f16_of((float)sum * d);
    }
}

static void quantize_q8_K(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8)
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), m);
        const float amax = hmax_ps(m);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the scalar keeps the first element reaching amax, with its sign */
        int jmax = 0;
        for (int k = 0; k < QK_K; k += 8) {
            const int hit = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hit) {
                jmax = k + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = -127.0f / x[jmax];
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int u = 0; u < 4; u++) {
                /* ponder_nearest_int: the integer lands in the low mantissa bits */
                const __m256 f = _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + k + 8 * u)),
                                               _mm256_set1_ps(12582912.f));
                __m256i v = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), _mm256_set1_epi32(0x007fffff)),
                                             _mm256_set1_epi32(0x00400000));
                v = _mm256_min_epi32(v, _mm256_set1_epi32(127));
                q[u] = _mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24); /* (int8_t) wraps */
            }
            y[i].bsums[k / 16] = (int16_t)hsum_epi32(_mm256_add_epi32(q[0], q[1]));
            y[i].bsums[k / 16 + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(q[2], q[3]));
            const __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + k),
                                _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- 32-element weight blocks against Q8_0 ---- */

/* Signed 8-bit values of one weight block, in element order. */
typedef __m256i (*decode32_fn)(const uint8_t *blk);

ALWAYS_INLINE __m256i decode_q8_0(const uint8_t *blk)
{
    return _mm256_loadu_si256((const __m256i *)(blk + offsetof(ponder_block_q8_0, qs)));
}

ALWAYS_INLINE __m256i decode_q4_0(const uint8_t *blk)
{
    return _mm256_sub_epi8(nibbles32(blk + offsetof(ponder_block_q4_0, qs)), _mm256_set1_epi8(8));
}

/* q - 16 with a clear 5th bit is the nibble with 0xf0 set (two's complement) */
ALWAYS_INLINE __m256i decode_q5_0(const uint8_t *blk)
{
    const __m256i hi = _mm256_andnot_si256(bits32(blk + offsetof(ponder_block_q5_0, qh)), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(nibbles32(blk + offsetof(ponder_block_q5_0, qs)), hi);
}

ALWAYS_INLINE __m256i decode_iq4_nl(const uint8_t *blk)
{
    const __m128i kv = _mm_loadu_si128((const __m128i *)ponder_kvalues_iq4nl);
    return _mm256_shuffle_epi8(_mm256_set_m128i(kv, kv), nibbles32(blk + offsetof(ponder_block_iq4_nl, qs)));
}

/* [sum p0, sum p1, sum p2, sum p3] within each 128-bit half */
ALWAYS_INLINE __m256i fold4(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    const __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    const __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

/* f16 scales of 4 blocks at p, p + stride, ... as floats */
ALWAYS_INLINE __m128 scales4(const uint8_t *p, size_t stride)
{
    __m128i h = _mm_cvtsi32_si128(load_f16(p));
    h = _mm_insert_epi16(h, load_f16(p + stride), 1);
    h = _mm_insert_epi16(h, load_f16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_f16(p + 3 * stride), 3);
    return _mm_cvtph_ps(h);
}

/* The float step of the Q8_0-family dots, shared by dot32_q8_0 and gemm32_q8_0 so both
 * round alike: four blocks' integer sums folded as [block 0..3 | block 0..3] (halves:
 * elements 0-15 and 16-31), converted, times their scale products d (the same four in
 * both halves), added into the eight lanes. */
ALWAYS_INLINE __m256 q8_acc4(__m256 acc, __m256i sums, __m128 d)
{
    return _mm256_fmadd_ps(_mm256_set_m128(d, d), _mm256_cvtepi32_ps(sums), acc);
}

/* Every type here starts with its f16 scale d. Four blocks per step: their integer lane
 * sums folded into one vector [block 0..3 | block 0..3], so the eight scales are widened
 * together and one convert and one FMA serve four blocks. The last 1-3 blocks make a
 * group padded with zero sums and zero scales (adding 0 * 0 leaves a lane as it is), so
 * the tile kernel needs no separate tail either. */
ALWAYS_INLINE void dot32_q8_0(int64_t n, float *out, const uint8_t *x, size_t block_bytes, const void *vy,
                              decode32_fn decode)
{
    const ponder_block_q8_0 *y = vy;
    const int64_t nb = n / QK;
    __m256 acc = _mm256_setzero_ps();
    int64_t ib = 0;
    for (; ib + 4 <= nb; ib += 4) {
        const uint8_t *b = x + (size_t)ib * block_bytes;
        prefetch_ahead(b, 4 * block_bytes);
        const __m256i sums = fold4(dot_i8(decode(b), _mm256_loadu_si256((const __m256i *)y[ib].qs)),
                                   dot_i8(decode(b + block_bytes), _mm256_loadu_si256((const __m256i *)y[ib + 1].qs)),
                                   dot_i8(decode(b + 2 * block_bytes), _mm256_loadu_si256((const __m256i *)y[ib + 2].qs)),
                                   dot_i8(decode(b + 3 * block_bytes), _mm256_loadu_si256((const __m256i *)y[ib + 3].qs)));
        acc = q8_acc4(acc, sums, _mm_mul_ps(scales4(b, block_bytes), scales4((const uint8_t *)&y[ib], sizeof *y)));
    }
    if (ib < nb) {
        __m256i p[4];
        float dx[4] = {0}, dy[4] = {0};
        for (int k = 0; k < 4; k++) {
            p[k] = _mm256_setzero_si256();
            if (ib + k < nb) {
                const uint8_t *b = x + (size_t)(ib + k) * block_bytes;
                p[k] = dot_i8(decode(b), _mm256_loadu_si256((const __m256i *)y[ib + k].qs));
                dx[k] = f16s(load_f16(b));
                dy[k] = f16s(y[ib + k].d);
            }
        }
        acc = q8_acc4(acc, fold4(p[0], p[1], p[2], p[3]), _mm_mul_ps(_mm_loadu_ps(dx), _mm_loadu_ps(dy)));
    }
    *out = hsum_ps(acc);
}

static void vec_dot_q8_0(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_0(n, out, x, sizeof(ponder_block_q8_0), y, decode_q8_0);
}

static void vec_dot_q4_0(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_0(n, out, x, sizeof(ponder_block_q4_0), y, decode_q4_0);
}

static void vec_dot_q5_0(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_0(n, out, x, sizeof(ponder_block_q5_0), y, decode_q5_0);
}

static void vec_dot_iq4_nl(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_0(n, out, x, sizeof(ponder_block_iq4_nl), y, decode_iq4_nl);
}

/* Tile kernel for the same family: one weight row at a time x Q8_RN tokens. Batching
 * must not change a result (a sequence decoded inside a batch gives the tokens it gives
 * alone), so each (row, token) output is computed by exactly the float operations of
 * dot32_q8_0: the same four-block groups (the last one padded) folded into
 * [block 0..3 | block 0..3], the same scale products, the same FMA (q8_acc4) into the
 * same lanes, hsum_ps. (A tile folding four rows' sums into one vector, as llamafile's
 * tinyBLAS does, rounds differently from any fast single-row dot.) The reuse comes from
 * the tokens: per group the row is decoded (and |x| taken) once for all Q8_RN tokens;
 * their scales are widened once per call into dy (zero-padded to whole groups). Rows
 * longer than Q8_DY_BLOCKS blocks use the single-row dot (the same bits, slower). */
enum { Q8_RM = 1, Q8_RN = 4, Q8_DY_BLOCKS = 1024 };

ALWAYS_INLINE void gemm32_q8_0(int64_t n, int n_rows, int RN, const uint8_t *w, size_t ws, const uint8_t *a,
                               size_t as, float *y, size_t ys, size_t block_bytes, decode32_fn decode)
{
    const int64_t nb = n / QK, nb4 = nb / 4 * 4;
    if (nb > Q8_DY_BLOCKS) {
        for (int r = 0; r < n_rows; r++)
            for (int t = 0; t < RN; t++)
                dot32_q8_0(n, &y[(size_t)t * ys + (size_t)r], w + (size_t)r * ws, block_bytes, a + (size_t)t * as,
                           decode);
        return;
    }
    float dy[Q8_RN][Q8_DY_BLOCKS];
    for (int t = 0; t < RN; t++) {
        const ponder_block_q8_0 *yb = (const ponder_block_q8_0 *)(a + (size_t)t * as);
        for (int64_t ib = 0; ib < nb; ib++)
            dy[t][ib] = f16s(yb[ib].d);
        for (int64_t ib = nb; ib < nb4 + 4 && ib < Q8_DY_BLOCKS; ib++)
            dy[t][ib] = 0.0f;
    }
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *wr = w + (size_t)r * ws;
        __m256 acc[Q8_RN];
        for (int t = 0; t < RN; t++)
            acc[t] = _mm256_setzero_ps();
        for (int64_t ib = 0; ib < nb4; ib += 4) {
            const uint8_t *b = wr + (size_t)ib * block_bytes;
            __m256i qx[4], ax[4];
            for (int k = 0; k < 4; k++) {
                qx[k] = decode(b + (size_t)k * block_bytes);
                ax[k] = _mm256_sign_epi8(qx[k], qx[k]);
            }
            const __m128 dx = scales4(b, block_bytes);
            for (int t = 0; t < RN; t++) {
                const ponder_block_q8_0 *yb = (const ponder_block_q8_0 *)(a + (size_t)t * as) + ib;
                const __m256i sums = fold4(dot_i8_abs(ax[0], qx[0], _mm256_loadu_si256((const __m256i *)yb[0].qs)),
                                           dot_i8_abs(ax[1], qx[1], _mm256_loadu_si256((const __m256i *)yb[1].qs)),
                                           dot_i8_abs(ax[2], qx[2], _mm256_loadu_si256((const __m256i *)yb[2].qs)),
                                           dot_i8_abs(ax[3], qx[3], _mm256_loadu_si256((const __m256i *)yb[3].qs)));
                acc[t] = q8_acc4(acc[t], sums, _mm_mul_ps(dx, _mm_loadu_ps(&dy[t][ib])));
            }
        }
        if (nb4 < nb) { /* the padded group, as in dot32_q8_0 */
            const int rem = (int)(nb - nb4);
            __m256i qx[3], ax[3];
            float dxs[4] = {0};
            for (int k = 0; k < rem; k++) {
                const uint8_t *b = wr + (size_t)(nb4 + k) * block_bytes;
                qx[k] = decode(b);
                ax[k] = _mm256_sign_epi8(qx[k], qx[k]);
                dxs[k] = f16s(load_f16(b));
            }
            const __m128 dx = _mm_loadu_ps(dxs);
            for (int t = 0; t < RN; t++) {
                const ponder_block_q8_0 *yb = (const ponder_block_q8_0 *)(a + (size_t)t * as) + nb4;
                __m256i p[4];
                for (int k = 0; k < 4; k++)
                    p[k] = k < rem ? dot_i8_abs(ax[k], qx[k], _mm256_loadu_si256((const __m256i *)yb[k].qs))
                                   : _mm256_setzero_si256();
                acc[t] = q8_acc4(acc[t], fold4(p[0], p[1], p[2], p[3]), _mm_mul_ps(dx, _mm_loadu_ps(&dy[t][nb4])));
            }
        }
        for (int t = 0; t < RN; t++)
            y[(size_t)t * ys + (size_t)r] = hsum_ps(acc[t]);
    }
}

#define GEMM32(name, block, decode)                                                                    \
    static void name(int64_t n, int n_rows, int n_tok, const void *w, size_t ws, const void *a, size_t as,   \
                     float *y, size_t ys)                                                                    \
    {                                                                                                        \
        (void)n_tok; /* always Q8_RN */                                                                      \
        gemm32_q8_0(n, n_rows, Q8_RN, w, ws, a, as, y, ys, sizeof(block), decode);                           \
    }
GEMM32(gemm_q8_0, ponder_block_q8_0, decode_q8_0)
GEMM32(gemm_q4_0, ponder_block_q4_0, decode_q4_0)
GEMM32(gemm_q5_0, ponder_block_q5_0, decode_q5_0)
GEMM32(gemm_iq4_nl, ponder_block_iq4_nl, decode_iq4_nl)

/* Rows rewritten as Q8_0 blocks (see to_q8_0_row in kernels.h): d copied, levels decoded. */
#define TO_Q8_0(name, block, decode)                                                                         \
    static void name(int64_t n, const void *w, void *dst)                                                    \
    {                                                                                                        \
        const uint8_t *src = w;                                                                              \
        ponder_block_q8_0 *out = dst;                                                                        \
        for (int64_t ib = 0; ib < n / QK; ib++) {                                                            \
            const uint8_t *blk = src + (size_t)ib * sizeof(block);                                           \
            out[ib].d = load_f16(blk);                                                                       \
            _mm256_storeu_si256((__m256i *)out[ib].qs, decode(blk));                                         \
        }                                                                                                    \
    }
TO_Q8_0(q4_0_to_q8_0_row, ponder_block_q4_0, decode_q4_0)
TO_Q8_0(q5_0_to_q8_0_row, ponder_block_q5_0, decode_q5_0)
TO_Q8_0(iq4_nl_to_q8_0_row, ponder_block_iq4_nl, decode_iq4_nl)

/* ---- Q4_1 and Q5_1 against Q8_1: unsigned levels, the min folded in through s ---- */

ALWAYS_INLINE __m256i decode_q4_1(const uint8_t *blk)
{
    return nibbles32(blk + offsetof(ponder_block_q4_1, qs));
}

ALWAYS_INLINE __m256i decode_q5_1(const uint8_t *blk)
{
    const __m256i hi = _mm256_and_si256(bits32(blk + offsetof(ponder_block_q5_1, qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(blk + offsetof(ponder_block_q5_1, qs)), hi);
}

/* Both block types start with f16 d then f16 m. */
ALWAYS_INLINE void dot32_q8_1(int64_t n, float *out, const uint8_t *x, size_t block_bytes, const void *vy,
                              decode32_fn decode)
{
    const ponder_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t ib = 0; ib < n / QK; ib++) {
        const uint8_t *b = x + (size_t)ib * block_bytes;
        if (ib % 2 == 0)
            prefetch_ahead(b, 1);
        const __m256i p = dot_u8(decode(b), _mm256_loadu_si256((const __m256i *)y[ib].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(load_f16(b)) * f16s(y[ib].d)), _mm256_cvtepi32_ps(p), acc);
        summ += f16s(load_f16(b + sizeof(ponder_f16))) * f16s(y[ib].s);
    }
    *out = hsum_ps(acc) + summ;
}

static void vec_dot_q4_1(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_1(n, out, x, sizeof(ponder_block_q4_1), y, decode_q4_1);
}

static void vec_dot_q5_1(int64_t n, float *out, const void *x, const void *y)
{
    dot32_q8_1(n, out, x, sizeof(ponder_block_q5_1), y, decode_q5_1);
}

/* ---- K-quants against Q8_K ---- */

/* The byte-selection masks that spread scale pair (2k, 2k+1) of 8 int16 scales (present
 * in both 128-bit lanes) over a 32-element quarter: 16 elements per scale, i.e. the low
 * lane of a maddubs result gets scale 2k, the high lane scale 2k+1. */
ALWAYS_INLINE __m256i scale_pair_mask(int k)
{
    const short lo = (short)(((4 * k + 1) << 8) | (4 * k));
    const short hi = (short)(((4 * k + 3) << 8) | (4 * k + 2));
    return _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
}

/* Scales 8h..8h+7 of a 16-scale int16 vector, in both lanes. */
ALWAYS_INLINE __m256i scales_half(__m256i s16, int h)
{
    return h == 0 ? _mm256_permute2x128_si256(s16, s16, 0x00) : _mm256_permute2x128_si256(s16, s16, 0x11);
}

static void vec_dot_q2_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q2_K *x = vx;
    const ponder_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        const float d = y[i].d * f16s(x[i].d), dmin = y[i].d * f16s(x[i].dmin);
        const __m128i packed = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i sc8 = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
        const __m128i m8 = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f));
        const __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(m8), _mm256_loadu_si256((const __m256i *)y[i].bsums));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins), accm);
        const __m256i s16 = _mm256_cvtepu8_epi16(sc8);
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i sh = scales_half(s16, h);
            const __m256i q2 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int k = 0; k < 4; k++) {
                const __m256i lv = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
                const __m256i p = _mm256_maddubs_epi16(lv, _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * k)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_shuffle_epi8(sh, scale_pair_mask(k)), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum_ps(acc) - hsum_ps(accm);
}

/* 16 Q3_K scales as signed bytes (q3_K_scale in quants_k.c, four at a time). */
ALWAYS_INLINE __m128i q3_K_scales(const uint8_t *s)
{
    uint32_t a0, a1, a2;
    memcpy(&a0, s, 4);
    memcpy(&a1, s + 4, 4);
    memcpy(&a2, s + 8, 4);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const __m128i v = _mm_setr_epi32((int)((a0 & m4) | ((a2 & m2) << 4)), (int)((a1 & m4) | (((a2 >> 2) & m2) << 4)),
                                     (int)(((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4)),
                                     (int)(((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

static void vec_dot_q3_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q3_K *x = vx;
    const ponder_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        const float d = f16s(x[i].d) * y[i].d;
        const __m256i s16 = _mm256_cvtepi8_epi16(q3_K_scales(x[i].scales));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i sh = scales_half(s16, h);
            const __m256i q3 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int k = 0; k < 4; k++) {
                const __m256i lv = _mm256_and_si256(_mm256_srli_epi16(q3, 2 * k), m3);
                const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + k)));
                /* a clear hmask bit means -4 */
                const __m256i minus4 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), _mm256_setzero_si256()), four);
                const __m256i q8v = _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * k));
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(lv, q8v), _mm256_maddubs_epi16(minus4, q8v));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_shuffle_epi8(sh, scale_pair_mask(k)), p));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum_ps(acc);
}

/* Q4_K and Q6_K dots add each super-block's integer lanes in two float partial sums, one
 * per 128-bit half, which is what their tile kernels can do for four rows at once (one
 * row per lane): so a (row, token) output rounds alike on both paths and batching does
 * not change a result. Every lane of a half gets that half's exact total. */
ALWAYS_INLINE __m256i half_totals(__m256i v)
{
    v = _mm256_add_epi32(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_add_epi32(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
}

ALWAYS_INLINE __m128i totals_128(__m128i v)
{
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* (half 0 + half 1) of an accumulator of half_totals terms */
ALWAYS_INLINE float sum_halves(__m256 acc)
{
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)));
}

/* Q4_K/Q5_K's 8 scales and 8 mins (get_scale_min_k4, four at a time). */
ALWAYS_INLINE void k4_scales(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    uint32_t a, b, c;
    memcpy(&a, q, 4);
    memcpy(&b, q + 4, 4);
    memcpy(&c, q + 8, 4);
    const uint32_t s_lo = a & 0x3f3f3f3f, m_lo = b & 0x3f3f3f3f;
    const uint32_t s_hi = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
    const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
    memcpy(sc, &s_lo, 4);
    memcpy(sc + 4, &s_hi, 4);
    memcpy(mn, &m_lo, 4);
    memcpy(mn + 4, &m_hi, 4);
}

/* sum over the 8 sub-blocks of min_j * (q8 sum of sub-block j), as 4 int32 partials */
ALWAYS_INLINE __m128i k4_min_products(const uint8_t mn[8], const int16_t *bsums)
{
    const __m128i pair_sums = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums),
                                             _mm_loadu_si128((const __m128i *)(bsums + 8)));
    uint64_t m64;
    memcpy(&m64, mn, 8);
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m64)), pair_sums);
}

/* One Q4_K super-block against Q8_K: the integer lanes of the level products and of the
 * min products (the q8 sums of the sub-blocks times the mins). */
ALWAYS_INLINE __m256i q4_K_sumi(const ponder_block_q4_K *x, const ponder_block_q8_K *y, __m128i *mins)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    uint8_t sc[8], mn[8];
    k4_scales(x->scales, sc, mn);
    *mins = k4_min_products(mn, y->bsums);
    const int8_t *q8 = y->qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        const __m256i q4 = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
        const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
        const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j])));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1])));
    }
    return sumi;
}

static void vec_dot_q4_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q4_K *x = vx;
    const ponder_block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m128i m;
        const __m256i s = q4_K_sumi(&x[i], &y[i], &m);
        const float d = f16s(x[i].d) * y[i].d, dmin = f16s(x[i].dmin) * y[i].d;
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(totals_128(m)), accm);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(half_totals(s)), acc);
    }
    *out = sum_halves(acc) - _mm_cvtss_f32(accm);
}

/* Q4_K tile kernel: K_RM = 4 rows x K_RN = 2 tokens. Each row's scales are unpacked and
 * its nibbles split once per super-block for all tokens; the rows' integer sums are
 * folded four rows to a vector, [row 0..3 half 0 | row 0..3 half 1] (fold4), so one
 * convert and one FMA serve four (row, token) pairs. Lane r of a half holds exactly what
 * every lane of that half holds in vec_dot_q4_K (half_totals), and the mins and the end
 * are added as there, so batching does not change a result. */
enum { K_RM = 4, K_RN = 2 };

ALWAYS_INLINE __m128i fold4_128(__m128i p0, __m128i p1, __m128i p2, __m128i p3)
{
    const __m128i a = _mm_add_epi32(_mm_unpacklo_epi32(p0, p1), _mm_unpackhi_epi32(p0, p1));
    const __m128i b = _mm_add_epi32(_mm_unpacklo_epi32(p2, p3), _mm_unpackhi_epi32(p2, p3));
    return _mm_add_epi32(_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b));
}

ALWAYS_INLINE void gemm_q4_K_tile(int64_t n, int RN, const uint8_t *w, size_t ws, const uint8_t *a, size_t as,
                                  float *y, size_t ys)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[K_RN];
    __m128 accm[K_RN];
    for (int t = 0; t < RN; t++) {
        acc[t] = _mm256_setzero_ps();
        accm[t] = _mm_setzero_ps();
    }
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *x0 = w + (size_t)i * sizeof(ponder_block_q4_K);
        int16_t sc16[K_RM][8];
        __m128i mn16[K_RM];
        for (int r = 0; r < K_RM; r++) {
            uint8_t sc[8], mn[8];
            k4_scales(((const ponder_block_q4_K *)(x0 + (size_t)r * ws))->scales, sc, mn);
            for (int k = 0; k < 8; k++)
                sc16[r][k] = sc[k];
            uint64_t m64;
            memcpy(&m64, mn, 8);
            mn16[r] = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m64));
        }
        const __m128 dx = scales4(x0 + offsetof(ponder_block_q4_K, d), ws);
        const __m128 mx = scales4(x0 + offsetof(ponder_block_q4_K, dmin), ws);
        __m256i sumi[K_RM][K_RN];
        for (int r = 0; r < K_RM; r++)
            for (int t = 0; t < RN; t++)
                sumi[r][t] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            for (int r = 0; r < K_RM; r++) {
                const __m256i q4 = _mm256_loadu_si256(
                    (const __m256i *)(((const ponder_block_q4_K *)(x0 + (size_t)r * ws))->qs + 32 * j));
                const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
                const __m256i s0 = _mm256_set1_epi16(sc16[r][2 * j]), s1 = _mm256_set1_epi16(sc16[r][2 * j + 1]);
                for (int t = 0; t < RN; t++) {
                    const int8_t *q8 = ((const ponder_block_q8_K *)(a + (size_t)t * as) + i)->qs + 64 * j;
                    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8)), s0);
                    const __m256i p1 =
                        _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))), s1);
                    sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_add_epi32(p0, p1));
                }
            }
        }
        for (int t = 0; t < RN; t++) {
            const ponder_block_q8_K *yb = (const ponder_block_q8_K *)(a + (size_t)t * as) + i;
            const __m128 dy = _mm_set1_ps(yb->d);
            const __m128 d = _mm_mul_ps(dx, dy);
            acc[t] = _mm256_fmadd_ps(_mm256_set_m128(d, d),
                                     _mm256_cvtepi32_ps(fold4(sumi[0][t], sumi[1][t], sumi[2][t], sumi[3][t])), acc[t]);
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)yb->bsums),
                                              _mm_loadu_si128((const __m128i *)(yb->bsums + 8)));
            const __m128i m = fold4_128(_mm_madd_epi16(mn16[0], bs), _mm_madd_epi16(mn16[1], bs),
                                        _mm_madd_epi16(mn16[2], bs), _mm_madd_epi16(mn16[3], bs));
            accm[t] = _mm_fmadd_ps(_mm_mul_ps(mx, dy), _mm_cvtepi32_ps(m), accm[t]);
        }
    }
    for (int t = 0; t < RN; t++)
        _mm_storeu_ps(y + (size_t)t * ys,
                      _mm_sub_ps(_mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1)), accm[t]));
}

static void gemm_q4_K(int64_t n, int n_rows, int n_tok, const void *w, size_t ws, const void *a, size_t as, float *y,
                      size_t ys)
{
    (void)n_tok;
    for (int r = 0; r < n_rows; r += K_RM) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
        gemm_q4_K_tile(n, K_RN, wr, ws, a, as, y + r, ys);
    }
}

static void vec_dot_q5_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q5_K *x = vx;
    const ponder_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        uint8_t sc[8], mn[8];
        k4_scales(x[i].scales, sc, mn);
        const float d = f16s(x[i].d) * y[i].d, dmin = f16s(x[i].dmin) * y[i].d;
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_products(mn, y[i].bsums)), accm);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            /* bit 2j of qh[l] is the 5th bit of the low-nibble sub-block, 2j+1 of the high */
            const __m256i h0 = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j), 4), b4);
            const __m256i h1 = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * j + 1), 4), b4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), h1);
            const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
            const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum_ps(acc) - hsum_ps128(accm);
}

/* The four 32-element quarters of a Q6_K half as unsigned 6-bit levels (q6_K_level + 32). */
ALWAYS_INLINE void q6_K_quarters(const uint8_t *ql, const uint8_t *qhp, __m256i q[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i la = _mm256_loadu_si256((const __m256i *)ql), lb = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
    q[0] = _mm256_or_si256(_mm256_and_si256(la, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(lb, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(qh, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
}

/* One Q6_K super-block against Q8_K: the integer lanes of its products, the -32 offset
 * of every level included (-32 * sum_g scale_g * bsum_g). */
ALWAYS_INLINE __m256i q6_K_sumi(const ponder_block_q6_K *x, const ponder_block_q8_K *y)
{
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    const __m256i offs = _mm256_madd_epi16(s16, _mm256_loadu_si256((const __m256i *)y->bsums));
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offs, 5));
    const int8_t *q8 = y->qs;
    for (int h = 0; h < 2; h++) {
        __m256i q[4];
        q6_K_quarters(x->ql + 64 * h, x->qh + 32 * h, q);
        const __m256i sh = scales_half(s16, h);
        for (int k = 0; k < 4; k++) {
            const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * k)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_shuffle_epi8(sh, scale_pair_mask(k)), p));
        }
    }
    return sumi;
}

static void vec_dot_q6_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q6_K *x = vx;
    const ponder_block_q8_K *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        const __m256i s = q6_K_sumi(&x[i], &y[i]);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(x[i].d) * y[i].d), _mm256_cvtepi32_ps(half_totals(s)), acc);
    }
    *out = sum_halves(acc);
}

/* Q6_K tile kernel: K_RM = 4 rows x K_RN = 2 tokens, as gemm_q4_K: each row's levels are
 * unpacked once per half super-block for both tokens, and lane r of each half of a
 * token's accumulator takes the float steps of vec_dot_q6_K. */
ALWAYS_INLINE void gemm_q6_K_tile(int64_t n, const uint8_t *w, size_t ws, const uint8_t *a, size_t as, float *y,
                                  size_t ys)
{
    __m256 acc[K_RN];
    for (int t = 0; t < K_RN; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *x0 = w + (size_t)i * sizeof(ponder_block_q6_K);
        const ponder_block_q8_K *yb[K_RN];
        for (int t = 0; t < K_RN; t++)
            yb[t] = (const ponder_block_q8_K *)(a + (size_t)t * as) + i;
        __m256i s16[K_RM], sumi[K_RM][K_RN];
        for (int r = 0; r < K_RM; r++) {
            s16[r] = _mm256_cvtepi8_epi16(
                _mm_loadu_si128((const __m128i *)((const ponder_block_q6_K *)(x0 + (size_t)r * ws))->scales));
            for (int t = 0; t < K_RN; t++) {
                /* the -32 offset of every level, as in vec_dot_q6_K */
                const __m256i offs = _mm256_madd_epi16(s16[r], _mm256_loadu_si256((const __m256i *)yb[t]->bsums));
                sumi[r][t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offs, 5));
            }
        }
        for (int h = 0; h < 2; h++) {
            for (int r = 0; r < K_RM; r++) {
                const ponder_block_q6_K *xb = (const ponder_block_q6_K *)(x0 + (size_t)r * ws);
                __m256i q[4];
                q6_K_quarters(xb->ql + 64 * h, xb->qh + 32 * h, q);
                const __m256i sh = scales_half(s16[r], h);
                for (int k = 0; k < 4; k++) {
                    const __m256i sk = _mm256_shuffle_epi8(sh, scale_pair_mask(k));
                    for (int t = 0; t < K_RN; t++) {
                        const __m256i p = _mm256_maddubs_epi16(
                            q[k], _mm256_loadu_si256((const __m256i *)(yb[t]->qs + 128 * h + 32 * k)));
                        sumi[r][t] = _mm256_add_epi32(sumi[r][t], _mm256_madd_epi16(sk, p));
                    }
                }
            }
        }
        const __m128 dx = scales4(x0 + offsetof(ponder_block_q6_K, d), ws);
        for (int t = 0; t < K_RN; t++) {
            const __m128 d = _mm_mul_ps(dx, _mm_set1_ps(yb[t]->d));
            acc[t] = _mm256_fmadd_ps(_mm256_set_m128(d, d),
                                     _mm256_cvtepi32_ps(fold4(sumi[0][t], sumi[1][t], sumi[2][t], sumi[3][t])), acc[t]);
        }
    }
    for (int t = 0; t < K_RN; t++)
        _mm_storeu_ps(y + (size_t)t * ys, _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1)));
}

static void gemm_q6_K(int64_t n, int n_rows, int n_tok, const void *w, size_t ws, const void *a, size_t as, float *y,
                      size_t ys)
{
    (void)n_tok;
    for (int r = 0; r < n_rows; r += K_RM)
        gemm_q6_K_tile(n, (const uint8_t *)w + (size_t)r * ws, ws, a, as, y + r, ys);
}

/* ---- the table ---- */

#if PONDER_X86_VNNI == 1
const ponder_isa_kernels ponder_kernels_avxvnni = {
    .name = "avxvnni",
#elif PONDER_X86_VNNI == 2
const ponder_isa_kernels ponder_kernels_avx512vnni = {
    .name = "avx512vnni",
#else
const ponder_isa_kernels ponder_kernels_avx2 = {
    .name = "avx2",
#endif
    .type = {
        [PONDER_TYPE_F32] = {.vec_dot = vec_dot_f32},
        [PONDER_TYPE_F16] = {.vec_dot = vec_dot_f16_f16, .from_float = f16_from_float,
                             .gemm = gemm_f16, .gemm_rows = F16_RM, .gemm_tokens = F16_RN},
        [PONDER_TYPE_BF16] = {.vec_dot = vec_dot_bf16, .from_float = bf16_from_float},
        [PONDER_TYPE_Q4_0] = {.vec_dot = vec_dot_q4_0, .gemm = gemm_q4_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN,
                              .to_q8_0_row = q4_0_to_q8_0_row},
        [PONDER_TYPE_Q4_1] = {.vec_dot = vec_dot_q4_1},
        [PONDER_TYPE_Q5_0] = {.vec_dot = vec_dot_q5_0, .gemm = gemm_q5_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN,
                              .to_q8_0_row = q5_0_to_q8_0_row},
        [PONDER_TYPE_Q5_1] = {.vec_dot = vec_dot_q5_1},
        [PONDER_TYPE_Q8_0] = {.vec_dot = vec_dot_q8_0, .from_float = quantize_q8_0,
                              .gemm = gemm_q8_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN},
        [PONDER_TYPE_Q8_1] = {.from_float = quantize_q8_1},
        [PONDER_TYPE_IQ4_NL] = {.vec_dot = vec_dot_iq4_nl, .gemm = gemm_iq4_nl, .gemm_rows = Q8_RM,
                                .gemm_tokens = Q8_RN, .to_q8_0_row = iq4_nl_to_q8_0_row},
        [PONDER_TYPE_Q2_K] = {.vec_dot = vec_dot_q2_K},
        [PONDER_TYPE_Q3_K] = {.vec_dot = vec_dot_q3_K},
        [PONDER_TYPE_Q4_K] = {.vec_dot = vec_dot_q4_K, .gemm = gemm_q4_K, .gemm_rows = K_RM, .gemm_tokens = K_RN},
        [PONDER_TYPE_Q5_K] = {.vec_dot = vec_dot_q5_K},
        [PONDER_TYPE_Q6_K] = {.vec_dot = vec_dot_q6_K, .gemm = gemm_q6_K, .gemm_rows = K_RM, .gemm_tokens = K_RN},
        [PONDER_TYPE_Q8_K] = {.from_float = quantize_q8_K},
    },
    .f32_to_f16_row = f32_to_f16_row,
    .f16_to_f32_row = f16_to_f32_row,
    .vec_dot_f16 = vec_dot_f16,
    .vec_mad_f16 = vec_mad_f16,
    .vec_dot_f16_rows = vec_dot_f16_rows,
    .vec_mad_f16_rows = vec_mad_f16_rows,
    .vec_exp_sub = vec_exp_sub,
};
