/*
 * x86_avx512_attn.c — attention over an F16 KV cache with AVX-512, one query per lane.
 *
 * attention.c's exact form, done a query head at a time, spent a third of a prompt's time
 * in row dots of 64 elements (a horizontal sum per score) and in re-reading each V row
 * for every query head. Here up to 16 queries of one KV head (the tokens of a tile times
 * the query heads sharing that KV head) sit in the 16 lanes of a vector: a score is a
 * chain of FMAs of the queries' column d with K's element d broadcast, the softmax runs
 * down the positions lane-wise (no horizontal sums anywhere), and each K and V row is
 * widened to f32 once for all 16 queries. The arithmetic of a lane is fixed by its own
 * query and positions: the scores' FMA chain in d order, exps as x86_avx2's exp8, the
 * double sum in position order, the weights rounded to F16, then mul-then-add of V in
 * position order (kernels.h, ponder_attn_lanes). Positions a lane does not see weigh an
 * exact 0, so a token gives the same bits in a prompt tile and decoded alone.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
enum { NL = PONDER_ATTN_LANES, KU = 8 }; /* lanes; keys per unrolled score step */

/* expf of 16 lanes: x86_avx2_floats.inc's exp8, 512 bits wide (the same operations, so
 * the same bits per lane). */
ALWAYS_INLINE __m512 exp16(__m512 x)
{
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), xc);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i ki = _mm512_cvtps_epi32(k);
    const __m512i k1 = _mm512_srai_epi32(ki, 1), k2 = _mm512_sub_epi32(ki, k1);
    const __m512i bias = _mm512_set1_epi32(127);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k1, bias), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k2, bias), 23));
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* Rows [0, n) of a block (cell c0 on) widened to f32, hd floats a row, into dst. */
ALWAYS_INLINE void widen_rows(const uint8_t *base, size_t row_bytes, size_t c0, int n, int hd, float *dst)
{
    for (int j = 0; j < n; j++) {
        const ponder_f16 *r = (const ponder_f16 *)(base + (c0 + (size_t)j) * row_bytes);
        for (int d = 0; d < hd; d += 16)
            _mm512_store_ps(dst + (size_t)j * hd + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + d))));
    }
}

/* The lanes that see position p. */
ALWAYS_INLINE __mmask16 seen(__m512i lo, __m512i hi, int32_t p)
{
    const __m512i vp = _mm512_set1_epi32(p);
    return (__mmask16)(_mm512_cmple_epi32_mask(lo, vp) & _mm512_cmpge_epi32_mask(hi, vp));
}

/* Scores of keys [j0, j0 + U) of a widened block: st[j] = mask(scale * sum_d qt[d] k[j][d]). */
ALWAYS_INLINE void score_keys(int U, const float *qt, const float *kf, int hd, int j0, int32_t p0, __m512i lo,
                              __m512i hi, __m512 scale, float *st, __m512 *vmax)
{
    __m512 acc[KU];
    for (int u = 0; u < U; u++)
        acc[u] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const __m512 q = _mm512_load_ps(qt + (size_t)d * NL);
        for (int u = 0; u < U; u++)
            acc[u] = _mm512_fmadd_ps(q, _mm512_set1_ps(kf[(size_t)(j0 + u) * hd + d]), acc[u]);
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int u = 0; u < U; u++) {
        const __m512 s = _mm512_mask_mov_ps(ninf, seen(lo, hi, p0 + j0 + u), _mm512_mul_ps(acc[u], scale));
        _mm512_store_ps(st + (size_t)(j0 + u) * NL, s);
        *vmax = _mm512_max_ps(*vmax, s);
    }
}

/* out[c0 .. c0+16) of every lane += p_j * v_j over the n rows of a widened V block. */
ALWAYS_INLINE void values_chunk(const float *st, const float *vf, int hd, int n, int c0, float *ot)
{
    __m512 acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_load_ps(ot + (size_t)(c0 + i) * NL);
    for (int j = 0; j < n; j++) {
        const __m512 p = _mm512_load_ps(st + (size_t)j * NL);
        const float *v = vf + (size_t)j * hd + c0;
        for (int i = 0; i < 16; i++)
            acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(p, _mm512_set1_ps(v[i])));
    }
    for (int i = 0; i < 16; i++)
        _mm512_store_ps(ot + (size_t)(c0 + i) * NL, acc[i]);
}

void ponder_attn_f16_avx512(const ponder_attn_lanes *a, float *scratch)
{
    const int hk = a->head_dim_k, hv = a->head_dim_v, bc = a->block_cells, n = a->n_lanes;
    const int hd = hk > hv ? hk : hv;
    float *qt = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63); /* [hk][NL] */
    float *ot = qt + (size_t)hk * NL;                                   /* [hv][NL] */
    float *kf = ot + (size_t)hv * NL;                                   /* [bc][hd] */
    float *st = kf + (size_t)bc * hd;                                   /* [positions][NL] */

    int32_t lo_a[NL], hi_a[NL], p_lo = INT32_MAX, p_hi = INT32_MIN;
    for (int l = 0; l < NL; l++) {
        lo_a[l] = l < n ? a->lo[l] : INT32_MAX; /* an unused lane sees nothing */
        hi_a[l] = l < n ? a->hi[l] : INT32_MIN;
        if (l < n) {
            p_lo = a->lo[l] < p_lo ? a->lo[l] : p_lo;
            p_hi = a->hi[l] > p_hi ? a->hi[l] : p_hi;
        }
    }
    const __m512i lo = _mm512_loadu_si512(lo_a), hi = _mm512_loadu_si512(hi_a);
    const __m512i lane_d = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    /* the queries, rounded to F16 (the F16 dot's operand), column by column */
    memset(qt, 0, (size_t)hk * NL * sizeof(float));
    for (int l = 0; l < n; l++)
        for (int d = 0; d < hk; d += 16) {
            const __m512 x = _mm512_loadu_ps(a->q[l] + d);
            const __m512 r = _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm512_i32scatter_ps(qt + (size_t)d * NL + l, _mm512_mullo_epi32(lane_d, _mm512_set1_epi32(NL)), r, 4);
        }

    /* pass 1: scores and their running max */
    const int32_t p_start = p_lo - p_lo % bc;
    const __m512 scale = _mm512_set1_ps(a->kq_scale);
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int32_t p0 = p_start; p0 <= p_hi; p0 += bc) {
        const int nr = p_hi - p0 + 1 < bc ? p_hi - p0 + 1 : bc;
        const size_t c0 = (size_t)a->blocks[p0 / bc] * (size_t)bc;
        widen_rows(a->k, a->k_row_bytes, c0, nr, hk, kf);
        float *sb = st + (size_t)(p0 - p_start) * NL;
        int j = 0;
        for (; j + KU <= nr; j += KU)
            score_keys(KU, qt, kf, hk, j, p0, lo, hi, scale, sb, &vmax);
        for (; j < nr; j++)
            score_keys(1, qt, kf, hk, j, p0, lo, hi, scale, sb, &vmax);
    }

    /* softmax: float exps, their double sum in position order, weights rounded to F16 */
    const int32_t n_pos = p_hi - p_start + 1;
    __m512d sum_lo = _mm512_setzero_pd(), sum_hi = _mm512_setzero_pd();
    for (int32_t j = 0; j < n_pos; j++) {
        const __mmask16 m = seen(lo, hi, p_start + j);
        const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_load_ps(st + (size_t)j * NL), vmax)));
        _mm512_store_ps(st + (size_t)j * NL, e);
        sum_lo = _mm512_add_pd(sum_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        sum_hi = _mm512_add_pd(sum_hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    const __m512d one = _mm512_set1_pd(1.0);
    const __m256 inv_lo = _mm512_cvtpd_ps(_mm512_div_pd(one, sum_lo)), inv_hi = _mm512_cvtpd_ps(_mm512_div_pd(one, sum_hi));
    const __m512 inv = _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(inv_lo)), _mm256_castps_pd(inv_hi), 1));
    for (int32_t j = 0; j < n_pos; j++) {
        const __m512 w = _mm512_mul_ps(_mm512_load_ps(st + (size_t)j * NL), inv);
        _mm512_store_ps(st + (size_t)j * NL,
                        _mm512_cvtph_ps(_mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    }

    /* pass 2: out = sum_j p_j v_j in position order, 16 dimensions of every lane at a time */
    memset(ot, 0, (size_t)hv * NL * sizeof(float));
    for (int32_t p0 = p_start; p0 <= p_hi; p0 += bc) {
        const int nr = p_hi - p0 + 1 < bc ? p_hi - p0 + 1 : bc;
        const size_t c0 = (size_t)a->blocks[p0 / bc] * (size_t)bc;
        widen_rows(a->v, a->v_row_bytes, c0, nr, hv, kf);
        for (int c = 0; c < hv; c += 16)
            values_chunk(st + (size_t)(p0 - p_start) * NL, kf, hv, nr, c, ot);
    }
    const __m512i col = _mm512_mullo_epi32(lane_d, _mm512_set1_epi32(NL));
    for (int l = 0; l < n; l++)
        for (int d = 0; d < hv; d += 16)
            _mm512_storeu_ps(a->out[l] + d, _mm512_i32gather_ps(col, ot + (size_t)d * NL + l, 4));
}
