/*
 * pack.c — weight matrices repacked at load into a kernel path's interleaved layout.
 *
 * A prompt's product reads each weight row once per tile of tokens, and a file row of
 * Q8_0-family blocks makes the kernel fold every block's sum and scale separately per
 * row. Interleaving 16 rows (see PONDER_PACK_Q8U_R16 in kernels.h) lets one 512-bit
 * vpdpbusd produce 16 rows' partial sums and one FMA scale them, for one token or many:
 * the layout llama.cpp's CPU repack and ik_llama.cpp's run-time repacking use. Packing is
 * one scalar pass over the rows (it runs once per model load); the file mapping is left
 * untouched, and with drop_source its pages are given back so memory holds one copy.
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define QK PONDER_QK
#define PACK_ALIGN 64

size_t ponder_pack_group_bytes(int layout, int64_t n)
{
    if (n <= 0)
        return 0;
    if (layout == PONDER_PACK_F16_R16 || layout == PONDER_PACK_BF16_R16)
        return (size_t)n * PONDER_PACK_ROWS * sizeof(ponder_f16); /* a multiple of 32: aligned columns */
    if (layout == PONDER_PACK_Q4K_R16 || layout == PONDER_PACK_Q6K_R16) {
        if (n % PONDER_QK_K != 0)
            return 0;
        return (size_t)(n / PONDER_QK_K) * (layout == PONDER_PACK_Q4K_R16 ? PONDER_PACK_Q4K_SB : PONDER_PACK_Q6K_SB);
    }
    if ((layout != PONDER_PACK_Q8U_R16 && layout != PONDER_PACK_Q5U_R16) || n % QK != 0)
        return 0;
    const size_t nb = (size_t)(n / QK);
    const size_t d_bytes = (nb * PONDER_PACK_ROWS * sizeof(ponder_f16) + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
    return d_bytes + nb * (layout == PONDER_PACK_Q5U_R16 ? PONDER_PACK_Q5U_BLOCK : PONDER_PACK_ROWS * QK);
}

/* The int8 levels of one 32-element block whose value is d * level (the layout of each
 * type is documented at its struct in quants.h). False for other types. */
static bool block_levels(ponder_type t, const uint8_t *blk, int8_t lv[QK])
{
    switch (t) {
    case PONDER_TYPE_Q8_0:
        memcpy(lv, ((const ponder_block_q8_0 *)blk)->qs, QK);
        return true;
    case PONDER_TYPE_Q4_0: {
        const ponder_block_q4_0 *b = (const ponder_block_q4_0 *)blk;
        for (int j = 0; j < QK / 2; j++) {
            lv[j] = (int8_t)((b->qs[j] & 0x0f) - 8);
            lv[j + QK / 2] = (int8_t)((b->qs[j] >> 4) - 8);
        }
        return true;
    }
    case PONDER_TYPE_Q5_0: {
        const ponder_block_q5_0 *b = (const ponder_block_q5_0 *)blk;
        uint32_t qh;
        memcpy(&qh, b->qh, sizeof qh);
        for (int j = 0; j < QK / 2; j++) {
            lv[j] = (int8_t)(((b->qs[j] & 0x0f) | (((qh >> j) & 1u) << 4)) - 16);
            lv[j + QK / 2] = (int8_t)(((b->qs[j] >> 4) | (((qh >> (j + QK / 2)) & 1u) << 4)) - 16);
        }
        return true;
    }
    case PONDER_TYPE_IQ4_NL: {
        const ponder_block_iq4_nl *b = (const ponder_block_iq4_nl *)blk;
        for (int j = 0; j < QK / 2; j++) {
            lv[j] = ponder_kvalues_iq4nl[b->qs[j] & 0x0f];
            lv[j + QK / 2] = ponder_kvalues_iq4nl[b->qs[j] >> 4];
        }
        return true;
    }
    default:
        return false;
    }
}

/* One group of PONDER_PACK_ROWS rows starting at `rows` into dst (group_bytes long). */
static void pack_group_q8u(const ponder_matrix *w, const uint8_t *rows, uint8_t *dst)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    const int64_t nb = w->n_cols / QK;
    const size_t d_bytes = (size_t)nb * PONDER_PACK_ROWS * sizeof(ponder_f16);
    const size_t d_pad = (d_bytes + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
    ponder_f16 *d = (ponder_f16 *)dst;
    uint8_t *qs = dst + d_pad;
    memset(dst + d_bytes, 0, d_pad - d_bytes);
    for (int r = 0; r < PONDER_PACK_ROWS; r++) {
        const uint8_t *row = rows + (size_t)r * w->row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * tr->block_bytes;
            int8_t lv[QK] = {0};
            (void)block_levels(w->type, blk, lv); /* pack_layout is set only for its types */
            memcpy(&d[b * PONDER_PACK_ROWS + r], blk, sizeof(ponder_f16)); /* every one starts with d */
            uint8_t *q = qs + (size_t)b * PONDER_PACK_ROWS * QK + (size_t)r * 4;
            for (int j = 0; j < QK / 4; j++) {
                uint32_t u;
                memcpy(&u, lv + 4 * j, 4);
                u ^= 0x80808080u; /* level + 128 in each byte */
                memcpy(q + (size_t)j * 4 * PONDER_PACK_ROWS, &u, 4);
            }
        }
    }
}

/* Q5_0 (PONDER_PACK_Q5U_R16 in kernels.h): the d section as Q8U, then per block the
 * nibbles of level + 16 and the 5th bits as masks. */
static void pack_group_q5u(const ponder_matrix *w, const uint8_t *rows, uint8_t *dst)
{
    const int64_t nb = w->n_cols / QK;
    const size_t d_bytes = (size_t)nb * PONDER_PACK_ROWS * sizeof(ponder_f16);
    const size_t d_pad = (d_bytes + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
    ponder_f16 *d = (ponder_f16 *)dst;
    uint8_t *qs = dst + d_pad;
    memset(dst, 0, d_pad + (size_t)nb * PONDER_PACK_Q5U_BLOCK);
    for (int r = 0; r < PONDER_PACK_ROWS; r++) {
        const uint8_t *row = rows + (size_t)r * w->row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * sizeof(ponder_block_q5_0);
            int8_t lv[QK] = {0};
            (void)block_levels(w->type, blk, lv);
            memcpy(&d[b * PONDER_PACK_ROWS + r], blk, sizeof(ponder_f16));
            uint8_t *q = qs + (size_t)b * PONDER_PACK_Q5U_BLOCK;
            uint8_t u[QK];
            for (int k = 0; k < QK; k++)
                u[k] = (uint8_t)(lv[k] + 16);
            for (int p = 0; p < 4; p++) {
                uint8_t four[4];
                for (int e = 0; e < 4; e++)
                    four[e] = (uint8_t)((u[8 * p + e] & 15) | ((u[8 * p + 4 + e] & 15) << 4));
                memcpy(q + 64 * p + 4 * r, four, 4);
            }
            for (int j = 0; j < 8; j++) { /* bits 4r..4r+3 of quad j's mask: a nibble */
                const unsigned bits = (unsigned)((u[4 * j] >> 4) | ((u[4 * j + 1] >> 4) << 1) | ((u[4 * j + 2] >> 4) << 2) |
                                                 ((u[4 * j + 3] >> 4) << 3));
                q[256 + 8 * j + r / 2] |= (uint8_t)(bits << (4 * (r % 2)));
            }
        }
    }
}

/* Q4_K's 6-bit scale and min of sub-block j (quants_k.c's get_scale_min_k4). */
static void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q4_K: per super-block [d x16][dmin x16][scale s, 16 rows: u8][min pairs k: 16 rows x
 * (i16 m_2k, i16 m_2k+1)][levels: sub-block s (32 elements), vector p (0..3): byte 4r+e
 * = level 8p+e | level 8p+4+e << 4]. */
static void pack_group_q4k(const ponder_matrix *w, const uint8_t *rows, uint8_t *dst)
{
    const int64_t nsb = w->n_cols / PONDER_QK_K;
    memset(dst, 0, (size_t)nsb * PONDER_PACK_Q4K_SB);
    for (int r = 0; r < PONDER_PACK_ROWS; r++) {
        const ponder_block_q4_K *x = (const ponder_block_q4_K *)(rows + (size_t)r * w->row_bytes);
        for (int64_t i = 0; i < nsb; i++) {
            uint8_t *o = dst + (size_t)i * PONDER_PACK_Q4K_SB;
            memcpy(o + 2 * r, &x[i].d, 2);
            memcpy(o + 32 + 2 * r, &x[i].dmin, 2);
            for (int sb = 0; sb < 8; sb++) {
                uint8_t sc, m;
                k4_scale_min(sb, x[i].scales, &sc, &m);
                o[64 + 16 * sb + r] = sc;
                const int16_t m16 = m;
                memcpy(o + 192 + 64 * (sb / 2) + 4 * r + 2 * (sb % 2), &m16, 2);
            }
            uint8_t lv[PONDER_QK_K];
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) {
                    lv[64 * c + l] = x[i].qs[32 * c + l] & 0x0f;
                    lv[64 * c + 32 + l] = x[i].qs[32 * c + l] >> 4;
                }
            for (int sb = 0; sb < 8; sb++)
                for (int p = 0; p < 4; p++) {
                    const uint8_t *l = lv + 32 * sb + 8 * p;
                    const uint8_t four[4] = {(uint8_t)(l[0] | (l[4] << 4)), (uint8_t)(l[1] | (l[5] << 4)),
                                             (uint8_t)(l[2] | (l[6] << 4)), (uint8_t)(l[3] | (l[7] << 4))};
                    memcpy(o + 448 + 256 * sb + 64 * p + 4 * r, four, 4);
                }
        }
    }
}

/* Q6_K: per super-block [d x16, 32 bytes of padding][scale s (16 elements), 16 rows: i8]
 * [levels + 32: sub-block s, vector p (0..3): byte 4r+e = level 4p+e of the sub-block]. */
static void pack_group_q6k(const ponder_matrix *w, const uint8_t *rows, uint8_t *dst)
{
    const int64_t nsb = w->n_cols / PONDER_QK_K;
    memset(dst, 0, (size_t)nsb * PONDER_PACK_Q6K_SB);
    for (int r = 0; r < PONDER_PACK_ROWS; r++) {
        const ponder_block_q6_K *x = (const ponder_block_q6_K *)(rows + (size_t)r * w->row_bytes);
        for (int64_t i = 0; i < nsb; i++) {
            uint8_t *o = dst + (size_t)i * PONDER_PACK_Q6K_SB;
            memcpy(o + 2 * r, &x[i].d, 2);
            for (int sb = 0; sb < 16; sb++)
                o[64 + 16 * sb + r] = (uint8_t)x[i].scales[sb];
            uint8_t u[PONDER_QK_K]; /* level + 32 */
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
                for (int l = 0; l < 32; l++) { /* elements l, l+32, l+64, l+96 of the half */
                    u[128 * h + l] = (uint8_t)((ql[l] & 0x0f) | ((qh[l] & 3) << 4));
                    u[128 * h + l + 32] = (uint8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4));
                    u[128 * h + l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                    u[128 * h + l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
                }
            }
            for (int sb = 0; sb < 16; sb++)
                for (int p = 0; p < 4; p++)
                    memcpy(o + 320 + 256 * sb + 64 * p + 4 * r, u + 16 * sb + 4 * p, 4);
        }
    }
}

/* F16 and BF16: column k of the group = the 16 rows' element k. */
static void pack_group_f16(const ponder_matrix *w, const uint8_t *rows, uint8_t *dst)
{
    ponder_f16 *o = (ponder_f16 *)dst;
    for (int r = 0; r < PONDER_PACK_ROWS; r++) {
        const ponder_f16 *row = (const ponder_f16 *)(rows + (size_t)r * w->row_bytes);
        for (int64_t k = 0; k < w->n_cols; k++)
            o[k * PONDER_PACK_ROWS + r] = row[k];
    }
}

/* Gives the whole pages inside [p, p + bytes) back to the page cache. */
static void drop_pages(const void *p, size_t bytes)
{
    const long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || bytes == 0)
        return;
    const uintptr_t lo = ((uintptr_t)p + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    const uintptr_t hi = ((uintptr_t)p + bytes) / (uintptr_t)ps * (uintptr_t)ps;
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice only: failure changes nothing */
}

ponder_status ponder_matrix_pack(ponder_matrix *w, bool drop_source, ponder_error *err)
{
    if (!w || !w->data || w->packed)
        return PONDER_OK;
    if (w->type < 0 || w->type >= PONDER_TYPE_COUNT)
        return PONDER_OK;
    const int layout = ponder_kernels()->type[w->type].pack_layout;
    const size_t gb = ponder_pack_group_bytes(layout, w->n_cols);
    const int64_t groups = w->n_rows / PONDER_PACK_ROWS;
    if (gb == 0 || groups == 0)
        return PONDER_OK;
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    if (!tr || w->row_bytes < (size_t)(w->n_cols / tr->block_elems) * tr->block_bytes)
        return PONDER_OK;
    const size_t total = (gb * (size_t)groups + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
    uint8_t *dst = aligned_alloc(PACK_ALIGN, total);
    if (!dst)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory repacking a %lld x %lld %s matrix (%zu bytes)",
                                (long long)w->n_rows, (long long)w->n_cols, tr->name, total);
    const uint8_t *src = w->data;
    for (int64_t g = 0; g < groups; g++) {
        const uint8_t *rows = src + (size_t)g * PONDER_PACK_ROWS * w->row_bytes;
        if (layout == PONDER_PACK_Q5U_R16)
            pack_group_q5u(w, rows, dst + (size_t)g * gb);
        else if (layout == PONDER_PACK_F16_R16 || layout == PONDER_PACK_BF16_R16)
            pack_group_f16(w, rows, dst + (size_t)g * gb);
        else if (layout == PONDER_PACK_Q4K_R16)
            pack_group_q4k(w, rows, dst + (size_t)g * gb);
        else if (layout == PONDER_PACK_Q6K_R16)
            pack_group_q6k(w, rows, dst + (size_t)g * gb);
        else
            pack_group_q8u(w, rows, dst + (size_t)g * gb);
        if (drop_source)
            drop_pages(rows, PONDER_PACK_ROWS * w->row_bytes);
    }
    if (drop_source) /* the pages straddling two groups too */
        drop_pages(src, (size_t)groups * PONDER_PACK_ROWS * w->row_bytes);
    w->packed = dst;
    w->packed_rows = groups * PONDER_PACK_ROWS;
    w->packed_layout = layout;
    return PONDER_OK;
}

void ponder_matrix_unpack(ponder_matrix *w)
{
    if (!w)
        return;
    free((void *)w->packed);
    w->packed = NULL;
    w->packed_rows = 0;
    w->packed_layout = PONDER_PACK_NONE;
}
