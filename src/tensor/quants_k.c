/*
 * quants_k.c — the K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K over 256-element super-blocks,
 * and their activation type Q8_K.
 *
 * A super-block has one f16 scale d (and for Q2/Q4/Q5_K an f16 dmin) and 16 or 8
 * sub-blocks, each with a small integer scale (and min) that d multiplies. The weight
 * quantizers follow ggml's quantize_row_<type>_ref, the path llama-quantize takes without
 * an importance matrix: a per-sub-block scale search (make_qx_quants, make_q3_quants,
 * make_qkx2_quants), then the sub-block scales are themselves quantized and the elements
 * requantized against the rounded scales. quantize_row_q8_K_ref is the activation
 * quantizer llama.cpp uses, so ours must give the same bits.
 *
 * Dots: integer sums within a super-block (the sub-block scales are integers too), one
 * float multiply-add per super-block, as ggml's scalar ggml_vec_dot_<type>_q8_K. The
 * mins of Q2/Q4/Q5_K factor out through Q8_K's bsums: sum(q8 * (d*sc*q - dmin*m)) =
 * d*sum(sc*sum(q8*q)) - dmin*sum(m*bsum).
 */
#include "tensor/quants.h"

#include <math.h>
#include <string.h>

#define QK_K PONDER_QK_K

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- scale searches (ggml-quants.c) ---- */

/* Symmetric quantization of x[0..n) to L in [0, 2*nmax) (stored with +nmax bias); returns
 * the scale. Starts from the scale that puts the signed extreme on -nmax, then tries 18
 * nearby inverse scales and keeps the one with the best weighted (w = x^2) fit. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < PONDER_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(ponder_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ponder_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(ponder_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's search (make_q3_quants with do_rmse): round at the extreme's scale, then up to 5
 * passes moving single elements to the level that most improves the weighted fit. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < PONDER_GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clampi(ponder_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = clampi(ponder_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric quantization x ~ scale*L - the_min with L in [0, nmax]: starts from the
 * min/max fit, then tries nstep+1 inverse scales (rmin + rdelta*is + nmax)/(max - min),
 * solving the weighted least-squares scale and min for each, and keeps the one with the
 * lowest weighted error (absolute if use_mad, else squared). Returns the scale. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(ponder_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ponder_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* 6-bit scale and min of sub-block j (0..7) from Q4_K/Q5_K's 12 packed bytes: bytes 0-3
 * hold scales 0-3 (low 6 bits), 4-7 mins 0-3; 8-11 the low nibbles of scale and min 4-7,
 * whose top 2 bits sit in the spare top bits of bytes 0-7. */
static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void set_scale_min_k4(int j, uint8_t *q, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* Signed 6-bit scale j (0..15) of Q3_K: low nibbles in bytes 0-7 (j and j+8 share a
 * byte), high 2 bits in bytes 8-11 (byte 8 + j%4, bit pair j/4); stored biased by 32. */
static int q3_K_scale(const uint8_t *s, int j)
{
    const int lo = j < 8 ? s[j] & 0x0f : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Packs 2-bit values L[0..256) as Q2_K/Q3_K do: byte l of each 32-byte group holds
 * elements l, l+32, l+64, l+96 of its 128 in bit pairs 0, 2, 4, 6. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* ---- Q2_K: x = d*sc*q - dmin*m per 16 elements, 4-bit sc and m ---- */

void ponder_q2_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q2_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(x[i].d), dmin = f16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) { /* two sub-blocks of 16 per bit pair */
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void ponder_q2_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q2_K *y = dst;
    const float q4scale = 15.0f;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K], Laux[16];
        float weights[16], mins[QK_K / 16], scales[QK_K / 16];
        float max_scale = 0.0f, max_min = 0.0f; /* the min is subtracted, so scales are >= 0 */
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)clampi(ponder_nearest_int(iscale * scales[j]), 0, 15);
            y[i].d = ponder_f32_to_f16(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = ponder_f32_to_f16(0.0f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)(clampi(ponder_nearest_int(iscale * mins[j]), 0, 15) << 4);
            y[i].dmin = ponder_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = ponder_f32_to_f16(0.0f);
        }
        /* requantize against the rounded scales actually stored */
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = f16(y[i].d) * (float)(y[i].scales[j] & 0x0f);
            if (!d)
                continue;
            const float dm = f16(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (uint8_t)clampi(ponder_nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

void ponder_vec_dot_q2_K_q8_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q2_K *x = vx;
    const ponder_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++)
            summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * f16(x[i].d);
        const float dmin = y[i].d * f16(x[i].dmin);
        int isum = 0, is = 0;
        for (int half = 0; half < QK_K / 128; half++, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) {
                    int isuml = 0;
                    for (int l = 16 * k; l < 16 * k + 16; l++)
                        isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += (sc[is++] & 0x0f) * isuml;
                }
                q8 += 32;
            }
        }
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *out = sum;
}

/* ---- Q3_K: x = d*sc*(q - 4) per 16 elements, q = 2 low bits + hmask bit (set = +4) ---- */

void ponder_q3_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q3_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = f16(x[i].d);
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d_all * (float)q3_K_scale(x[i].scales, is++);
                    for (int l = 16 * k; l < 16 * k + 16; l++)
                        *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void ponder_q3_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q3_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale) {
            /* the signed extreme maps to -32, so the 6-bit range [-32, 31] is used fully */
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                const int l = clampi((int8_t)ponder_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0x0f);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = ponder_f32_to_f16(1 / iscale);
        } else {
            y[i].d = ponder_f32_to_f16(0.0f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = f16(y[i].d) * (float)q3_K_scale(y[i].scales, j);
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(clampi(ponder_nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
        }
        /* high bit of element j goes to hmask[j % 32], bit j / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t Lu[QK_K];
        for (int j = 0; j < QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            Lu[j] = (uint8_t)l;
        }
        pack_2bit(Lu, y[i].qs);
    }
}

void ponder_vec_dot_q3_K_q8_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q3_K *x = vx;
    const ponder_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q3 = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        uint8_t m = 1;
        int isum = 0, is = 0;
        for (int half = 0; half < QK_K / 128; half++, q3 += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++) {
                    int isuml = 0;
                    for (int l = 16 * k; l < 16 * k + 16; l++)
                        isuml += q8[l] * (((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                    isum += q3_K_scale(x[i].scales, is++) * isuml;
                }
                q8 += 32;
            }
        }
        sum += (f16(x[i].d) * y[i].d) * (float)isum;
    }
    *out = sum;
}

/* ---- Q4_K and Q5_K: x = d*sc*q - dmin*m per 32 elements, 6-bit sc and m ---- */

/* The shared part of quantize_row_q4_K_ref / _q5_K_ref: chooses the super-block's d, dmin
 * and 12 packed scale bytes, and the levels L[0..256) in [0, nmax] against them. */
static void quantize_k4_scales(const float *x, int nmax, float rmin, int nstep, ponder_f16 *d_out,
                               ponder_f16 *dmin_out, uint8_t *packed, uint8_t *L)
{
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                     0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(packed, 0, 12);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)ponder_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)ponder_nearest_int(inv_min * mins[j]);
        set_scale_min_k4(j, packed, ls > 63 ? 63 : ls, lm > 63 ? 63 : lm);
    }
    *d_out = ponder_f32_to_f16(max_scale / 63.0f);
    *dmin_out = ponder_f32_to_f16(max_min / 63.0f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        const float d = f16(*d_out) * (float)sc;
        if (!d)
            continue;
        const float dm = f16(*dmin_out) * (float)m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)clampi(ponder_nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

void ponder_q4_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(x[i].d), dmin = f16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int is = 0; is < QK_K / 32; is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void ponder_q4_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q4_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        quantize_k4_scales(x, 15, -1.0f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        /* 64 elements per 32 bytes: the first 32 in the low nibbles */
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* The mins' contribution: sum over sub-blocks of m_j times the q8 sum of its 32 elements. */
static int k4_min_sum(const uint8_t *packed, const int16_t *bsums)
{
    int sumi = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        sumi += m * (bsums[2 * j] + bsums[2 * j + 1]);
    }
    return sumi;
}

void ponder_vec_dot_q4_K_q8_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q4_K *x = vx;
    const ponder_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int j = 0; j < QK_K / 32; j += 2, q4 += 32, q8 += 64) {
            uint8_t sc1, sc2, m;
            get_scale_min_k4(j, x[i].scales, &sc1, &m);
            get_scale_min_k4(j + 1, x[i].scales, &sc2, &m);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += q8[l] * (q4[l] & 0x0f);
                s2 += q8[l + 32] * (q4[l] >> 4);
            }
            isum += sc1 * s1 + sc2 * s2;
        }
        const float d = f16(x[i].d) * y[i].d;
        const float dmin = f16(x[i].dmin) * y[i].d;
        sum += d * (float)isum;
        sum -= dmin * (float)k4_min_sum(x[i].scales, y[i].bsums);
    }
    *out = sum;
}

void ponder_q5_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q5_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(x[i].d), dmin = f16(x[i].dmin);
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2; /* qh[l] bit `is` holds the 5th bit of element l of sub-block is */
        for (int is = 0; is < QK_K / 32; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

void ponder_q5_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q5_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        quantize_k4_scales(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < QK_K; j += 64, m1 <<= 2, m2 <<= 2) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    y[i].qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    y[i].qh[l] |= m2;
                }
                y[i].qs[j / 2 + l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

void ponder_vec_dot_q5_K_q8_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q5_K *x = vx;
    const ponder_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        uint8_t u1 = 1, u2 = 2;
        int isum = 0;
        for (int j = 0; j < QK_K / 32; j += 2, ql += 32, q8 += 64, u1 <<= 2, u2 <<= 2) {
            uint8_t sc1, sc2, m;
            get_scale_min_k4(j, x[i].scales, &sc1, &m);
            get_scale_min_k4(j + 1, x[i].scales, &sc2, &m);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += q8[l] * ((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0));
                s2 += q8[l + 32] * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0));
            }
            isum += sc1 * s1 + sc2 * s2;
        }
        const float d = f16(x[i].d) * y[i].d;
        const float dmin = f16(x[i].dmin) * y[i].d;
        sum += d * (float)isum;
        sum -= dmin * (float)k4_min_sum(x[i].scales, y[i].bsums);
    }
    *out = sum;
}

/* ---- Q6_K: x = d*sc*(q - 32) per 16 elements, 8-bit signed sc ---- */

/* The 6-bit level of element l (0..127) within 128-element half h: low 4 bits from ql
 * (elements l and l+64 share a byte, l+32 and l+96 the next 32 bytes), high 2 bits from
 * qh[l % 32] bit pair l / 32. */
static int q6_K_level(const uint8_t *ql, const uint8_t *qh, int l)
{
    const int lo = (ql[l % 64] >> (4 * (l / 64))) & 0x0f;
    const int hi = (qh[l % 32] >> (2 * (l / 32))) & 3;
    return (lo | (hi << 4)) - 32;
}

void ponder_q6_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q6_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = f16(x[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h;
            const uint8_t *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h;
            for (int l = 0; l < 128; l++)
                *y++ = d * (float)sc[l / 16] * (float)q6_K_level(ql, qh, l);
        }
    }
}

void ponder_q6_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q6_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < PONDER_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.0f / max_scale;
        y[i].d = ponder_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const int s = ponder_nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(s > 127 ? 127 : s);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = f16(y[i].d) * (float)y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(clampi(ponder_nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t *ql = y[i].ql + 64 * h;
            uint8_t *qh = y[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

void ponder_vec_dot_q6_K_q8_K(int64_t n, float *out, const void *vx, const void *vy)
{
    const ponder_block_q6_K *x = vx;
    const ponder_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h;
            const uint8_t *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h;
            for (int g = 0; g < 8; g++) { /* 16-element groups sharing one scale */
                int s = 0;
                for (int l = 16 * g; l < 16 * g + 16; l++)
                    s += q8[l] * q6_K_level(ql, qh, l);
                isum += sc[g] * s;
            }
            q8 += 128;
        }
        sum += (f16(x[i].d) * y[i].d) * (float)isum;
    }
    *out = sum;
}

/* ---- Q8_K: activations of the K-quants; x = d*q with a float d ---- */

void ponder_q8_K_to_float(const void *src, float *y, int64_t n)
{
    const ponder_block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            *y++ = x[i].d * (float)x[i].qs[j];
}

void ponder_q8_K_from_float(const float *x, void *dst, int64_t n)
{
    ponder_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* -127 (not -128) so that q8 never holds -128, as ggml (kept for IQ2_XXS's AVX code) */
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = ponder_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}
