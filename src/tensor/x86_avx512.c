/*
 * x86_avx512.c — 512-bit kernels for CPUs with AVX-512 F/BW/VL/VNNI (Ice Lake, Zen 4,
 * Zen 5). Compiled with those flags (and only this file); dispatch.c lays this table over
 * the avx512vnni one (x86_avx2.c's kernels with an EVEX vpdpbusd), so every slot left
 * NULL here runs that path's kernel.
 *
 * The Q8_0 family (Q8_0, Q4_0, Q5_0, IQ4_NL) runs on weights repacked at load into
 * PONDER_PACK_Q8U_R16 (kernels.h, pack.c): 16 rows interleaved 4 bytes at a time, levels
 * stored + 128 as unsigned bytes. Per 32-column block and token, eight vpdpbusd of a
 * 64-byte weight vector against 4 broadcast activation bytes give the 16 rows' sums of
 * (level + 128) * y, started from -128 * (sum of y) so they are the exact sums of
 * level * y; then one convert and one FMA by d_w * d_y (16 rows at once). A token's
 * results depend only on its own operations (each token has its own accumulator), so a
 * prompt tile of 8 tokens and a single decoded token give the same bits, and batching
 * never changes a result. Against the scalar oracle the only difference is the fused
 * multiply-add: the oracle rounds sumi * (dx * dy) before adding it.
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <immintrin.h>
#include <string.h>

#define QK PONDER_QK
#define ALWAYS_INLINE static inline __attribute__((always_inline))
enum { PR = PONDER_PACK_ROWS, PT = 8 }; /* rows per group, tokens per tile */

ALWAYS_INLINE int32_t load_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A decode step (one token, or a few of several sequences or of a speculative verify)
 * streams the weights from memory once: fetch well ahead of the hardware prefetchers.
 * 8 KiB ahead (about a memory latency's worth of bytes at full bandwidth) measured 1.9x
 * less CPU time than 1 KiB for a 1-token Q5_0 product, and 4x less for an 8-token Q8_0
 * one, which then costs what one token does (bench/results/decode.md). Prompt tiles
 * find the lines in the cache after their first tile; the prefetches cost them nothing
 * measurable. */
#define PF_AHEAD 8192
ALWAYS_INLINE void prefetch_lines(int RN, const uint8_t *p, int bytes)
{
    (void)RN;
    for (int off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)p + PF_AHEAD + off, _MM_HINT_T0);
}

/* One group x RN tokens (RN <= PT), all nb blocks; Q5 says the PONDER_PACK_Q5U_R16 layout
 * (levels + 16 from nibbles and a 5th-bit mask) instead of Q8U's (levels + 128 as bytes).
 * The weights stay in registers for the RN tokens; the activations' 4-byte groups are
 * broadcast from memory into each vpdpbusd. */
ALWAYS_INLINE void q8u_tile(int64_t nb, int RN, bool Q5, const uint8_t *d16, const uint8_t *qs, const uint8_t *a,
                            size_t as, const int32_t *sums, size_t ss, float *y, size_t ys)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const size_t blk_bytes = Q5 ? PONDER_PACK_Q5U_BLOCK : PR * QK;
    __m512 acc[PT];
    for (int t = 0; t < RN; t++)
        acc[t] = _mm512_setzero_ps();
#pragma GCC unroll 1
    for (int64_t b = 0; b < nb; b++) {
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(d16 + (size_t)b * PR * 2)));
        const uint8_t *q = qs + (size_t)b * blk_bytes;
        prefetch_lines(RN, q, (int)blk_bytes);
        if (b % 2 == 0)
            prefetch_lines(RN, d16 + (size_t)b * PR * 2, 64);
        __m512i w[8];
        if (Q5) {
            for (int p = 0; p < 4; p++) {
                const __m512i v = _mm512_load_si512((const void *)(q + 64 * p));
                w[2 * p] = _mm512_and_si512(v, m4);
                w[2 * p + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            for (int j = 0; j < 8; j++) {
                uint64_t hb;
                memcpy(&hb, q + 256 + 8 * j, sizeof hb);
                w[j] = _mm512_mask_add_epi8(w[j], (__mmask64)hb, w[j], b4);
            }
        } else {
            for (int j = 0; j < 8; j++)
                w[j] = _mm512_load_si512((const void *)(q + 64 * j));
        }
#pragma GCC unroll 8
        for (int t = 0; t < RN; t++) {
            const uint8_t *yb = a + (size_t)t * as + (size_t)b * sizeof(ponder_block_q8_0);
            const uint8_t *yq = yb + offsetof(ponder_block_q8_0, qs);
            /* two chains of exact int32 sums (their order cannot change the total), the
             * first started from the levels' offset times the block's level sum */
            __m512i s0 = _mm512_set1_epi32((Q5 ? -16 : -128) * sums[(size_t)t * ss + (size_t)b]);
            __m512i s1 = _mm512_setzero_si512();
            for (int j = 0; j < 8; j += 2) {
                s0 = _mm512_dpbusd_epi32(s0, w[j], _mm512_set1_epi32(load_i32(yq + 4 * j)));
                s1 = _mm512_dpbusd_epi32(s1, w[j + 1], _mm512_set1_epi32(load_i32(yq + 4 * j + 4)));
            }
            ponder_f16 dyh;
            memcpy(&dyh, yb, sizeof dyh);
            const __m512 p = _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(dyh)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), p, acc[t]);
        }
    }
    for (int t = 0; t < RN; t++)
        _mm512_storeu_ps(y + (size_t)t * ys, acc[t]);
}

typedef void (*q8u_tile_fn)(int64_t nb, const uint8_t *d16, const uint8_t *qs, const uint8_t *a, size_t as,
                            const int32_t *sums, size_t ss, float *y, size_t ys);
#define Q8U_TILE(kind, Q5, RN)                                                                                     \
    static void kind##_tile_##RN(int64_t nb, const uint8_t *d16, const uint8_t *qs, const uint8_t *a, size_t as, \
                                 const int32_t *sums, size_t ss, float *y, size_t ys)                            \
    {                                                                                                              \
        q8u_tile(nb, RN, Q5, d16, qs, a, as, sums, ss, y, ys);                                                     \
    }
Q8U_TILE(q8u, false, 1)
Q8U_TILE(q8u, false, 2)
Q8U_TILE(q8u, false, 4)
Q8U_TILE(q8u, false, 8)
Q8U_TILE(q5u, true, 1)
Q8U_TILE(q5u, true, 2)
Q8U_TILE(q5u, true, 4)
Q8U_TILE(q5u, true, 8)

/* Every group, its tokens in tiles of 8, then 4, 2, 1 (each token's result is the same in any). */
ALWAYS_INLINE void q8u_gemm(int64_t n, int64_t n_groups, int n_tok, const void *packed, size_t group_bytes,
                            const void *a, size_t as, const int32_t *sums, size_t ss, float *y, size_t ys, bool Q5,
                            const q8u_tile_fn tiles[4])
{
    const int64_t nb = n / QK;
    const size_t d_bytes = group_bytes - (size_t)nb * (Q5 ? PONDER_PACK_Q5U_BLOCK : PR * QK);
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *d16 = (const uint8_t *)packed + (size_t)g * group_bytes;
        int t0 = 0;
        for (int k = 3; k >= 0; k--) {
            const int rn = 1 << k;
            for (; t0 + rn <= n_tok; t0 += rn)
                tiles[k](nb, d16, d16 + d_bytes, (const uint8_t *)a + (size_t)t0 * as, as, sums + (size_t)t0 * ss, ss,
                         y + (size_t)t0 * ys + (size_t)g * PR, ys);
        }
    }
}

static void gemm_q8u_r16(int64_t n, int64_t n_groups, int n_tok, const void *packed, size_t group_bytes,
                         const void *a, size_t as, const int32_t *sums, size_t ss, float *y, size_t ys)
{
    static const q8u_tile_fn tiles[4] = {q8u_tile_1, q8u_tile_2, q8u_tile_4, q8u_tile_8};
    q8u_gemm(n, n_groups, n_tok, packed, group_bytes, a, as, sums, ss, y, ys, false, tiles);
}

static void gemm_q5u_r16(int64_t n, int64_t n_groups, int n_tok, const void *packed, size_t group_bytes,
                         const void *a, size_t as, const int32_t *sums, size_t ss, float *y, size_t ys)
{
    static const q8u_tile_fn tiles[4] = {q5u_tile_1, q5u_tile_2, q5u_tile_4, q5u_tile_8};
    q8u_gemm(n, n_groups, n_tok, packed, group_bytes, a, as, sums, ss, y, ys, true, tiles);
}

/* ---- the K-quant and F16 kernels' driver: a tile takes one group and RN tokens over len
 * (super-blocks or columns); tokens in tiles of 8, then 4, 2, 1 (each token's result is
 * the same in any of them). */
typedef void (*group_tile_fn)(int64_t len, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys);

ALWAYS_INLINE void group_gemm(int64_t len, int64_t n_groups, int n_tok, const void *packed, size_t group_bytes,
                              const void *a, size_t as, float *y, size_t ys, const group_tile_fn tiles[4])
{
    for (int64_t g = 0; g < n_groups; g++) {
        const uint8_t *gp = (const uint8_t *)packed + (size_t)g * group_bytes;
        int t0 = 0;
        for (int k = 3; k >= 0; k--) {
            const int rn = 1 << k;
            for (; t0 + rn <= n_tok; t0 += rn)
                tiles[k](len, gp, (const uint8_t *)a + (size_t)t0 * as, as, y + (size_t)t0 * ys + (size_t)g * PR, ys);
        }
    }
}

/* A packed_gemm slot over group_gemm (these layouts need no activation sums). */
#define GROUP_GEMM(name, per, t1, t2, t4, t8)                                                                      \
    static void name(int64_t n, int64_t n_groups, int n_tok, const void *packed, size_t group_bytes, const void *a, \
                     size_t as, const int32_t *sums, size_t ss, float *y, size_t ys)                               \
    {                                                                                                              \
        static const group_tile_fn tiles[4] = {t1, t2, t4, t8};                                                    \
        (void)sums;                                                                                                \
        (void)ss;                                                                                                  \
        group_gemm(n / (per), n_groups, n_tok, packed, group_bytes, a, as, y, ys, tiles);                          \
    }

/* ---- K-quants (records in pack.c) ----
 * Per super-block and token, each sub-block's exact int32 sums of level * y (16 rows) are
 * multiplied by the rows' scales (vpmulld) and added up exactly; then one convert and one
 * FMA by d_w * d_y, and for Q4_K the mins' term (vpmaddwd of int16 min pairs with the
 * token's 32-element sums) by dmin_w * d_y. As for the Q8_0 family a token's operations do
 * not depend on the other tokens of the tile. The oracle adds the same integers but rounds
 * its scale products differently (d * isum, then - dmin * mins). */
enum { Q4K_SC = 64, Q4K_MN = 192, Q4K_QS = 448, Q6K_SC = 64, Q6K_QS = 320 };

ALWAYS_INLINE const ponder_block_q8_K *q8k_block(const uint8_t *a, size_t as, int t, int64_t i)
{
    return (const ponder_block_q8_K *)(a + (size_t)t * as) + i;
}

ALWAYS_INLINE void q4k_tile(int64_t nsb, int RN, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[PT];
    for (int t = 0; t < RN; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *blk = g + (size_t)i * PONDER_PACK_Q4K_SB;
        __m512i tot[PT];
        for (int t = 0; t < RN; t++)
            tot[t] = _mm512_setzero_si512();
        for (int sb = 0; sb < 8; sb++) {
            const __m512i sc = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(blk + Q4K_SC + 16 * sb)));
            prefetch_lines(RN, blk + 256 * sb, 256);
            if (sb == 7)
                prefetch_lines(RN, blk + 2048, PONDER_PACK_Q4K_SB - 2048);
            __m512i w[8];
            for (int p = 0; p < 4; p++) {
                const __m512i v = _mm512_load_si512((const void *)(blk + Q4K_QS + 256 * sb + 64 * p));
                w[2 * p] = _mm512_and_si512(v, m4);
                w[2 * p + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            for (int t = 0; t < RN; t++) {
                const uint8_t *yq = (const uint8_t *)q8k_block(a, as, t, i)->qs + 32 * sb;
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                for (int p = 0; p < 4; p++) {
                    s0 = _mm512_dpbusd_epi32(s0, w[2 * p], _mm512_set1_epi32(load_i32(yq + 8 * p)));
                    s1 = _mm512_dpbusd_epi32(s1, w[2 * p + 1], _mm512_set1_epi32(load_i32(yq + 8 * p + 4)));
                }
                tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)blk));
        const __m512 dm = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(blk + 32)));
        for (int t = 0; t < RN; t++) {
            const ponder_block_q8_K *yb = q8k_block(a, as, t, i);
            __m512i mt = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) {
                const int b0 = yb->bsums[4 * k] + yb->bsums[4 * k + 1], b1 = yb->bsums[4 * k + 2] + yb->bsums[4 * k + 3];
                const int pair = (int)(((uint32_t)(uint16_t)b0) | ((uint32_t)(uint16_t)b1 << 16));
                mt = _mm512_add_epi32(
                    mt, _mm512_madd_epi16(_mm512_load_si512((const void *)(blk + Q4K_MN + 64 * k)), _mm512_set1_epi32(pair)));
            }
            const __m512 dy = _mm512_set1_ps(yb->d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(dw, dy), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mt), _mm512_mul_ps(dm, dy), acc[t]);
        }
    }
    for (int t = 0; t < RN; t++)
        _mm512_storeu_ps(y + (size_t)t * ys, acc[t]);
}

ALWAYS_INLINE void q6k_tile(int64_t nsb, int RN, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)
{
    __m512 acc[PT];
    for (int t = 0; t < RN; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *blk = g + (size_t)i * PONDER_PACK_Q6K_SB;
        __m512i tot[PT];
        for (int t = 0; t < RN; t++)
            tot[t] = _mm512_setzero_si512();
        for (int sb = 0; sb < 16; sb++) {
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(blk + Q6K_SC + 16 * sb)));
            prefetch_lines(RN, blk + 256 * sb, 256);
            if (sb == 15)
                prefetch_lines(RN, blk + 4096, PONDER_PACK_Q6K_SB - 4096);
            __m512i w[4];
            for (int p = 0; p < 4; p++)
                w[p] = _mm512_load_si512((const void *)(blk + Q6K_QS + 256 * sb + 64 * p));
            for (int t = 0; t < RN; t++) {
                const ponder_block_q8_K *yb = q8k_block(a, as, t, i);
                const uint8_t *yq = (const uint8_t *)yb->qs + 16 * sb;
                /* the levels are stored + 32: start from -32 * (sum of the 16 y) */
                __m512i s0 = _mm512_set1_epi32(-32 * yb->bsums[sb]), s1 = _mm512_setzero_si512();
                s0 = _mm512_dpbusd_epi32(s0, w[0], _mm512_set1_epi32(load_i32(yq)));
                s1 = _mm512_dpbusd_epi32(s1, w[1], _mm512_set1_epi32(load_i32(yq + 4)));
                s0 = _mm512_dpbusd_epi32(s0, w[2], _mm512_set1_epi32(load_i32(yq + 8)));
                s1 = _mm512_dpbusd_epi32(s1, w[3], _mm512_set1_epi32(load_i32(yq + 12)));
                tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)blk));
        for (int t = 0; t < RN; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(dw, _mm512_set1_ps(q8k_block(a, as, t, i)->d)),
                                     acc[t]);
    }
    for (int t = 0; t < RN; t++)
        _mm512_storeu_ps(y + (size_t)t * ys, acc[t]);
}


#define K_TILES(kind)                                                                                              \
    static void kind##_1(int64_t nsb, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)         \
    {                                                                                                              \
        kind##_tile(nsb, 1, g, a, as, y, ys);                                                                      \
    }                                                                                                              \
    static void kind##_2(int64_t nsb, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)         \
    {                                                                                                              \
        kind##_tile(nsb, 2, g, a, as, y, ys);                                                                      \
    }                                                                                                              \
    static void kind##_4(int64_t nsb, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)         \
    {                                                                                                              \
        kind##_tile(nsb, 4, g, a, as, y, ys);                                                                      \
    }                                                                                                              \
    static void kind##_8(int64_t nsb, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)         \
    {                                                                                                              \
        kind##_tile(nsb, 8, g, a, as, y, ys);                                                                      \
    }
K_TILES(q4k)
K_TILES(q6k)

GROUP_GEMM(gemm_q4k_r16, PONDER_QK_K, q4k_1, q4k_2, q4k_4, q4k_8)
GROUP_GEMM(gemm_q6k_r16, PONDER_QK_K, q6k_1, q6k_2, q6k_4, q6k_8)

/* ---- F16 and BF16 (PONDER_PACK_F16_R16 / BF16_R16: column k of a group is 16 rows'
 * 16-bit values, 32 bytes) ----
 * Per column, one widened weight vector times each token's activation (f16 rounded, as
 * the F16 dot's activations are, widened to f32 exactly) into that token's 16 row sums.
 * Each token sums F16_KB columns at a time in two chains (even and odd columns), then
 * adds (c0 + c1) to its total: short chains keep the rounding error near a blocked sum's,
 * and a token's operations are the same in any tile. */
enum { F16_KB = 32, F16_SEG = 512 };

/* 16 f16 or bf16 values widened to f32 (both exactly) */
ALWAYS_INLINE __m512 widen16(const void *p, bool bf16)
{
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}

ALWAYS_INLINE float widen1(uint16_t h, bool bf16)
{
    return bf16 ? ponder_bf16_to_f32(h) : _cvtsh_ss(h);
}

ALWAYS_INLINE void f16_tile(int64_t n, int RN, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys,
                            bool bf16)
{
    _Alignas(64) float xw[PT][F16_SEG];
    __m512 tot[PT];
    for (int t = 0; t < RN; t++)
        tot[t] = _mm512_setzero_ps();
    for (int64_t s0 = 0; s0 < n; s0 += F16_SEG) {
        const int64_t len = n - s0 < F16_SEG ? n - s0 : F16_SEG;
        for (int t = 0; t < RN; t++) {
            const ponder_f16 *xr = (const ponder_f16 *)(a + (size_t)t * as) + s0;
            int64_t k = 0;
            for (; k + 16 <= len; k += 16)
                _mm512_store_ps(&xw[t][k], widen16(xr + k, bf16));
            for (; k < len; k++)
                xw[t][k] = widen1(xr[k], bf16);
        }
        for (int64_t k0 = 0; k0 < len; k0 += F16_KB) {
            const int64_t k1 = k0 + F16_KB < len ? k0 + F16_KB : len;
            __m512 c0[PT], c1[PT];
            for (int t = 0; t < RN; t++)
                c0[t] = c1[t] = _mm512_setzero_ps();
            int64_t k = k0;
            for (; k + 2 <= k1; k += 2) {
                const uint8_t *col = g + (size_t)(s0 + k) * PR * 2;
                prefetch_lines(RN, col, 64);
                const __m512 w0 = widen16(col, bf16), w1 = widen16(col + PR * 2, bf16);
                for (int t = 0; t < RN; t++) {
                    c0[t] = _mm512_fmadd_ps(w0, _mm512_set1_ps(xw[t][k]), c0[t]);
                    c1[t] = _mm512_fmadd_ps(w1, _mm512_set1_ps(xw[t][k + 1]), c1[t]);
                }
            }
            if (k < k1) {
                const __m512 w0 = widen16(g + (size_t)(s0 + k) * PR * 2, bf16);
                for (int t = 0; t < RN; t++)
                    c0[t] = _mm512_fmadd_ps(w0, _mm512_set1_ps(xw[t][k]), c0[t]);
            }
            for (int t = 0; t < RN; t++)
                tot[t] = _mm512_add_ps(tot[t], _mm512_add_ps(c0[t], c1[t]));
        }
    }
    for (int t = 0; t < RN; t++)
        _mm512_storeu_ps(y + (size_t)t * ys, tot[t]);
}

#define F16_TILE(RN)                                                                                               \
    static void f16_tile_##RN(int64_t n, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)      \
    {                                                                                                              \
        f16_tile(n, RN, g, a, as, y, ys, false);                                                                   \
    }                                                                                                              \
    static void bf16_tile_##RN(int64_t n, const uint8_t *g, const uint8_t *a, size_t as, float *y, size_t ys)     \
    {                                                                                                              \
        f16_tile(n, RN, g, a, as, y, ys, true);                                                                    \
    }
F16_TILE(1)
F16_TILE(2)
F16_TILE(4)
F16_TILE(8)

GROUP_GEMM(gemm_f16_r16, 1, f16_tile_1, f16_tile_2, f16_tile_4, f16_tile_8)
GROUP_GEMM(gemm_bf16_r16, 1, bf16_tile_1, bf16_tile_2, bf16_tile_4, bf16_tile_8)

#define PACKED_Q8U .pack_layout = PONDER_PACK_Q8U_R16, .packed_gemm = gemm_q8u_r16

const ponder_isa_kernels ponder_kernels_avx512 = {
    .name = "avx512",
    .type = {
        [PONDER_TYPE_F16] = {.pack_layout = PONDER_PACK_F16_R16, .packed_gemm = gemm_f16_r16},
        [PONDER_TYPE_BF16] = {.pack_layout = PONDER_PACK_BF16_R16, .packed_gemm = gemm_bf16_r16},
        [PONDER_TYPE_Q8_0] = {PACKED_Q8U},
        [PONDER_TYPE_Q4_0] = {PACKED_Q8U},
        [PONDER_TYPE_Q5_0] = {.pack_layout = PONDER_PACK_Q5U_R16, .packed_gemm = gemm_q5u_r16},
        [PONDER_TYPE_IQ4_NL] = {PACKED_Q8U},
        [PONDER_TYPE_Q4_K] = {.pack_layout = PONDER_PACK_Q4K_R16, .packed_gemm = gemm_q4k_r16},
        [PONDER_TYPE_Q6_K] = {.pack_layout = PONDER_PACK_Q6K_R16, .packed_gemm = gemm_q6k_r16},
    },
    .attn_f16 = ponder_attn_f16_avx512,
};
