/*
 * attention.c — the KV store and attention over a sequence's own cells, for every cache
 * type (F32, F16, Q8_0, Q4_0), in two forms:
 *
 * - exact: llama.cpp's graph without flash attention, the default for F16/F32 V caches.
 *   All of a query's scores first, then the softmax (double sum), the weights rounded to
 *   F16 for an F16 V cache, then the weighted sum of V in position order. The reference
 *   logits in shared/reference/logits were made this way.
 * - flash: attention fused over the KV blocks (online softmax: a running max and sum per
 *   query, the V sum rescaled when the max grows), as llama.cpp's flash-attention kernel.
 *   No buffer grows with the context: a query's state is its max, its sum and its output
 *   row. A work unit is a run of consecutive tokens of one sequence times the query heads
 *   of one KV head (GQA), and the cells are walked block by block with the inner loop over
 *   the unit's queries, so each K and V block is read from memory once per unit and from
 *   L1 for the other queries. Each query's arithmetic does not depend on the unit it is
 *   in, so batching stays bit-invariant. A quantized V cache always uses it (llama.cpp
 *   requires flash attention for one); otherwise the context's flash_attn setting decides.
 *
 * With an F16 K and V cache, the exact form runs on the path's lanes kernel when it has
 * one (kernels.h, attn_f16; today AVX-512): the queries of a tile's tokens times a KV
 * head's query heads, 16 at a time, each K and V row widened once for all of them.
 *
 * Quantized K (Q8_0, Q4_0): the query is quantized to Q8_0 per head and dotted with the
 * type's integer kernel, as ggml converts the F32 operand to the K type's vec_dot_type.
 * Quantized V: each cell's head slice is dequantized (d * q) and added with its weight in
 * F32, as ggml's flash kernel does with v_to_float.
 */
#include "model/blocks.h"
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- storing K and V ---- */

/* One row of n floats into the cache's type (the reference quantizers give ggml's bytes). */
static void store_row(ponder_type type, const float *x, void *dst, size_t n)
{
    if (type == PONDER_TYPE_F16)
        ponder_f32_to_f16_row(x, dst, (int64_t)n);
    else if (type == PONDER_TYPE_F32)
        memcpy(dst, x, n * sizeof(float));
    else
        ponder_type_get_traits(type)->from_float(x, dst, (int64_t)n);
}

void blk_kv_store(ponder_context *ctx, int il, int n)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const size_t n_k = (size_t)hp->n_head_kv * hp->head_dim_k, n_v = (size_t)hp->n_head_kv * hp->head_dim_v;
    for (int t = 0; t < n; t++) {
        const size_t cell = kv_cell(&ctx->kv, ctx->ub_seq[t], ctx->ub_pos[t]);
        store_row(ctx->params.type_k, ctx->k + (size_t)t * n_k, (char *)ctx->k_cache[il] + cell * ctx->k_row_bytes, n_k);
        store_row(ctx->params.type_v, ctx->v + (size_t)t * n_v, (char *)ctx->v_cache[il] + cell * ctx->v_row_bytes, n_v);
    }
}

/* ---- the pieces both forms share ---- */

/* First cache position visible from pos in layer il (sliding-window layers see only the
 * last n_swa positions, as llama.cpp's mask: p - pos_cell < n_swa). */
static int32_t attn_window_start(const ponder_model *m, int il, int32_t pos)
{
    const int32_t n_swa = m->hp.sliding_window;
    const int every = m->desc->swa_every;
    if (n_swa <= 0 || every == 0 || il % every != 0)
        return 0;
    return pos - n_swa + 1 > 0 ? pos - n_swa + 1 : 0;
}

/* Bytes of a head's slice of a row of type t with head_dim elements per head. */
static size_t head_bytes(ponder_type t, int head_dim)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    return (size_t)head_dim / (size_t)tr->block_elems * tr->block_bytes;
}

/* A query head converted for its products with K: F16 for an F16 cache, Q8_0 for a
 * quantized one (the K type's vec_dot_type), kept as is for F32. qc holds at least
 * head_dim floats' bytes. */
static void query_convert(ponder_type type_k, const float *q, int head_dim, void *qc)
{
    if (type_k == PONDER_TYPE_F16)
        ponder_f32_to_f16_row(q, qc, head_dim);
    else if (type_k == PONDER_TYPE_F32)
        memcpy(qc, q, (size_t)head_dim * sizeof(float));
    else
        ponder_kernels()->type[PONDER_TYPE_Q8_0].from_float(q, qc, head_dim);
}

/* s[j] = q · K[j] for the run of n_rows cells starting at k0 (row stride `stride`),
 * k0 already offset to the head's slice. */
static void scores_run(ponder_type type_k, int head_dim, const char *k0, size_t stride, int32_t n_rows,
                       const void *qc, float *s)
{
    if (type_k == PONDER_TYPE_F16) {
        ponder_vec_dot_f16_rows(head_dim, n_rows, s, (const ponder_f16 *)k0, stride, qc);
    } else if (type_k == PONDER_TYPE_F32) {
        const float *q = qc;
        for (int32_t j = 0; j < n_rows; j++) {
            const float *k = (const float *)(k0 + (size_t)j * stride);
            float dot = 0.0f;
            for (int d = 0; d < head_dim; d++)
                dot += q[d] * k[d];
            s[j] = dot;
        }
    } else {
        const ponder_vec_dot_fn dot = ponder_kernels()->type[type_k].vec_dot;
        for (int32_t j = 0; j < n_rows; j++)
            dot(head_dim, s + j, k0 + (size_t)j * stride, qc);
    }
}

/* out += w[j] · V[j] for the run of n_rows cells at v0 (head slice), in position order. */
static void values_run(ponder_type type_v, int head_dim, const char *v0, size_t stride, int32_t n_rows,
                       const float *w, float *out)
{
    if (type_v == PONDER_TYPE_F16) {
        ponder_vec_mad_f16_rows(head_dim, n_rows, out, (const ponder_f16 *)v0, stride, w);
    } else if (type_v == PONDER_TYPE_F32) {
        for (int32_t j = 0; j < n_rows; j++) {
            const float *v = (const float *)(v0 + (size_t)j * stride);
            for (int d = 0; d < head_dim; d++)
                out[d] += w[j] * v[d];
        }
    } else if (type_v == PONDER_TYPE_Q8_0) {
        for (int32_t j = 0; j < n_rows; j++) {
            const ponder_block_q8_0 *b = (const ponder_block_q8_0 *)(v0 + (size_t)j * stride);
            for (int ib = 0; ib < head_dim / PONDER_QK; ib++) {
                const float d = ponder_f16_to_f32(b[ib].d);
                float *o = out + ib * PONDER_QK;
                for (int i = 0; i < PONDER_QK; i++)
                    o[i] += w[j] * (d * (float)b[ib].qs[i]);
            }
        }
    } else { /* Q4_0: element i in the low nibble of qs[i], i + 16 in the high one, minus 8 */
        for (int32_t j = 0; j < n_rows; j++) {
            const ponder_block_q4_0 *b = (const ponder_block_q4_0 *)(v0 + (size_t)j * stride);
            for (int ib = 0; ib < head_dim / PONDER_QK; ib++) {
                const float d = ponder_f16_to_f32(b[ib].d);
                float *o = out + ib * PONDER_QK;
                for (int i = 0; i < PONDER_QK / 2; i++) {
                    o[i] += w[j] * (d * (float)((b[ib].qs[i] & 0x0F) - 8));
                    o[i + PONDER_QK / 2] += w[j] * (d * (float)((b[ib].qs[i] >> 4) - 8));
                }
            }
        }
    }
}

/* Soft-cap (gemma2) and scale, in the order of llama.cpp's graph. */
static void scores_finish(float *s, int32_t n, float cap, float kq_scale)
{
    for (int32_t j = 0; j < n; j++) {
        if (cap > 0.0f)
            s[j] = cap * tanhf(s[j] / cap);
        s[j] *= kq_scale;
    }
}

/* ---- exact form ---- */

/* One query head over its sequence's cells: out = softmax(cap(q·K) * scale) · V for
 * positions [start, pos]. q is already pre-scaled when the architecture does so. With an
 * F16 V cache the softmax weights are rounded to F16 first, as llama.cpp's product with
 * the F16 V view does. The cells of a block are contiguous, so the row kernels take one
 * call per block; their results do not depend on how the rows are split (see tensor.h),
 * so the paging changes no bits. */
static void attend_head(const ponder_context *ctx, int il, int kv_head, const float *q, ponder_seq_id seq,
                        int32_t start, int32_t pos, float kq_scale, float *s, void *qc, ponder_f16 *p16,
                        float *out)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const int hd_k = hp->head_dim_k, hd_v = hp->head_dim_v;
    const int32_t n_pos = pos - start + 1;
    const ponder_type tk = ctx->params.type_k, tv = ctx->params.type_v;
    const size_t k_off = (size_t)kv_head * head_bytes(tk, hd_k), v_off = (size_t)kv_head * head_bytes(tv, hd_v);
    const char *kc = (const char *)ctx->k_cache[il] + k_off, *vc = (const char *)ctx->v_cache[il] + v_off;

    query_convert(tk, q, hd_k, qc);
    /* s[j] = q · K[start + j], one run of cells per block */
    for (int32_t p = start, run; p <= pos; p += run) {
        run = KV_BLOCK_CELLS - p % KV_BLOCK_CELLS;
        run = run < pos - p + 1 ? run : pos - p + 1;
        scores_run(tk, hd_k, kc + kv_cell(&ctx->kv, seq, p) * ctx->k_row_bytes, ctx->k_row_bytes, run, qc,
                   s + (p - start));
    }
    scores_finish(s, n_pos, hp->attn_logit_softcap, kq_scale);
    float max = -INFINITY;
    for (int32_t j = 0; j < n_pos; j++)
        max = s[j] > max ? s[j] : max;
    const double sum = ponder_vec_exp_sub(n_pos, s, s, max); /* float exps, double sum, as ggml's softmax */
    const float inv_sum = (float)(1.0 / sum);
    for (int32_t j = 0; j < n_pos; j++)
        s[j] *= inv_sum;
    if (tv == PONDER_TYPE_F16) {
        /* round the weights to F16 (through the vectorized row conversions) */
        ponder_f32_to_f16_row(s, p16, n_pos);
        ponder_f16_to_f32_row(p16, s, n_pos);
    }
    for (int d = 0; d < hd_v; d++)
        out[d] = 0.0f;
    /* out += p_j · V[start + j] in position order, one run of cells per block */
    for (int32_t p = start, run; p <= pos; p += run) {
        run = KV_BLOCK_CELLS - p % KV_BLOCK_CELLS;
        run = run < pos - p + 1 ? run : pos - p + 1;
        values_run(tv, hd_v, vc + kv_cell(&ctx->kv, seq, p) * ctx->v_row_bytes, ctx->v_row_bytes, run,
                   s + (p - start), out);
    }
}

/* ---- flash form ---- */

/* The queries of one unit: n_tok consecutive tokens of one sequence (from ub index t0)
 * times query heads h0 .. h0 + n_h - 1, all reading KV head kv_head. Per query: its
 * converted q (qc rows of qc_stride bytes), running max m, running sum l, and its output
 * row in ctx->attn, used as the accumulator. s holds one block of scores per query. */
typedef struct flash_unit {
    int t0, n_tok, h0, n_h, kv_head;
} flash_unit;

static void flash_attend(const ponder_context *ctx, int il, const flash_unit *u, float kq_scale, float *s,
                         char *qc, size_t qc_stride, float *m, double *l)
{
    const ponder_model *mdl = ctx->model;
    const ponder_hparams *hp = &mdl->hp;
    const int hd_k = hp->head_dim_k, hd_v = hp->head_dim_v, n_q = u->n_tok * u->n_h;
    const ponder_type tk = ctx->params.type_k, tv = ctx->params.type_v;
    const size_t k_off = (size_t)u->kv_head * head_bytes(tk, hd_k), v_off = (size_t)u->kv_head * head_bytes(tv, hd_v);
    const char *kc = (const char *)ctx->k_cache[il] + k_off, *vc = (const char *)ctx->v_cache[il] + v_off;
    const size_t q_row = (size_t)hp->n_head * hd_k, o_row = (size_t)hp->n_head * hd_v;
    const ponder_seq_id seq = ctx->ub_seq[u->t0];
    const int32_t pos_first = ctx->ub_pos[u->t0], pos_last = ctx->ub_pos[u->t0 + u->n_tok - 1];
    const int32_t start = attn_window_start(mdl, il, pos_first);

    for (int i = 0; i < n_q; i++) {
        const int t = u->t0 + i / u->n_h, h = u->h0 + i % u->n_h;
        query_convert(tk, ctx->q + (size_t)t * q_row + (size_t)h * hd_k, hd_k, qc + (size_t)i * qc_stride);
        float *o = ctx->attn + (size_t)t * o_row + (size_t)h * hd_v;
        memset(o, 0, (size_t)hd_v * sizeof(float));
        m[i] = -INFINITY;
        l[i] = 0.0;
    }
    for (int32_t p = start - start % KV_BLOCK_CELLS; p <= pos_last; p += KV_BLOCK_CELLS) {
        const size_t cell = kv_cell(&ctx->kv, seq, p);
        const char *k0 = kc + cell * ctx->k_row_bytes, *v0 = vc + cell * ctx->v_row_bytes;
        for (int i = 0; i < n_q; i++) {
            const int t = u->t0 + i / u->n_h, h = u->h0 + i % u->n_h;
            const int32_t pos = ctx->ub_pos[t], lo = attn_window_start(mdl, il, pos);
            /* this query's cells of the block: [a, b) */
            const int32_t a = lo > p ? lo - p : 0;
            const int32_t b = pos - p + 1 < KV_BLOCK_CELLS ? pos - p + 1 : KV_BLOCK_CELLS;
            if (a >= b)
                continue;
            float *sq = s + (size_t)i * KV_BLOCK_CELLS;
            const int32_t n = b - a;
            scores_run(tk, hd_k, k0 + (size_t)a * ctx->k_row_bytes, ctx->k_row_bytes, n, qc + (size_t)i * qc_stride,
                       sq);
            scores_finish(sq, n, hp->attn_logit_softcap, kq_scale);
            float bmax = m[i];
            for (int32_t j = 0; j < n; j++)
                bmax = sq[j] > bmax ? sq[j] : bmax;
            float *o = ctx->attn + (size_t)t * o_row + (size_t)h * hd_v;
            if (bmax > m[i]) {
                /* a new maximum: what was summed so far shrinks by exp(old - new) */
                const float ms = m[i] == -INFINITY ? 0.0f : expf(m[i] - bmax);
                if (ms != 1.0f) {
                    for (int d = 0; d < hd_v; d++)
                        o[d] *= ms;
                    l[i] *= ms;
                }
                m[i] = bmax;
            }
            l[i] += ponder_vec_exp_sub(n, sq, sq, m[i]);
            values_run(tv, hd_v, v0 + (size_t)a * ctx->v_row_bytes, ctx->v_row_bytes, n, sq, o);
        }
    }
    for (int i = 0; i < n_q; i++) {
        const int t = u->t0 + i / u->n_h, h = u->h0 + i % u->n_h;
        float *o = ctx->attn + (size_t)t * o_row + (size_t)h * hd_v;
        const float inv = (float)(1.0 / l[i]);
        for (int d = 0; d < hd_v; d++)
            o[d] *= inv;
    }
}

/* ---- scheduling ---- */

/* Work handed out one item at a time through a shared counter (the pool's dynamic mode),
 * so a thread the OS has descheduled delays nothing; each thread has its own scratch.
 * Exact: an item is one (token, head) pair. Flash: an item is one unit, numbered
 * (tile, KV head, head group) with tiles of consecutive tokens of one sequence. */
typedef struct attention_task {
    ponder_context *ctx;
    int il, n;
    float kq_scale;
    bool flash;
    ponder_attn_fn lanes; /* exact form by a lanes kernel: items as flash's, heads_per_unit = lane groups */
    int n_tiles, heads_per_unit, groups_per_kv; /* flash */
    int n_items;
    _Atomic int next; /* next item to take */
    _Atomic int done; /* items finished */
} attention_task;

static void run_exact(attention_task *a, int i, int ith)
{
    ponder_context *ctx = a->ctx;
    const ponder_model *m = ctx->model;
    const ponder_hparams *hp = &m->hp;
    const int n_q = hp->n_head * hp->head_dim_k, n_attn = hp->n_head * hp->head_dim_v;
    const int group = hp->n_head / hp->n_head_kv; /* query heads per KV head (GQA) */
    const int t = i / hp->n_head, h = i % hp->n_head;
    const int32_t pos = ctx->ub_pos[t];
    attend_head(ctx, a->il, h / group, ctx->q + (size_t)t * n_q + (size_t)h * hp->head_dim_k, ctx->ub_seq[t],
                attn_window_start(m, a->il, pos), pos, a->kq_scale, ctx->scores + (size_t)ith * ctx->n_scores,
                (char *)ctx->attn_qc + (size_t)ith * ctx->attn_qc_bytes, ctx->p16 + (size_t)ith * (size_t)ctx->n_ctx,
                ctx->attn + (size_t)t * n_attn + (size_t)h * hp->head_dim_v);
}

static void run_flash(attention_task *a, int i, int ith)
{
    ponder_context *ctx = a->ctx;
    const ponder_hparams *hp = &ctx->model->hp;
    const int group = hp->n_head / hp->n_head_kv;
    const int per_tile = hp->n_head_kv * a->groups_per_kv;
    const int tile = i / per_tile, r = i % per_tile;
    flash_unit u = {.t0 = ctx->attn_tiles[tile], .kv_head = r / a->groups_per_kv};
    u.n_tok = ctx->attn_tiles[tile + 1] - u.t0;
    const int g0 = (r % a->groups_per_kv) * a->heads_per_unit;
    u.h0 = u.kv_head * group + g0;
    u.n_h = group - g0 < a->heads_per_unit ? group - g0 : a->heads_per_unit;
    const size_t n_q = (size_t)ATTN_TILE_TOKENS * (size_t)group;
    flash_attend(ctx, a->il, &u, a->kq_scale, ctx->scores + (size_t)ith * ctx->n_scores,
                 (char *)ctx->attn_qc + (size_t)ith * ctx->attn_qc_bytes, ctx->attn_qc_bytes / n_q,
                 ctx->attn_m + (size_t)ith * n_q, ctx->attn_l + (size_t)ith * n_q);
}

/* Exact form, F16 K and V, by the path's lanes kernel (kernels.h): item i is lane group
 * g of (tile, KV head), the lanes being the tile's tokens times the KV head's query
 * heads, token by token. */
static void run_lanes(attention_task *a, int i, int ith)
{
    ponder_context *ctx = a->ctx;
    const ponder_model *m = ctx->model;
    const ponder_hparams *hp = &m->hp;
    const int group = hp->n_head / hp->n_head_kv;
    const int per_tile = hp->n_head_kv * a->groups_per_kv;
    const int tile = i / per_tile, kv_head = (i % per_tile) / a->groups_per_kv, g = i % a->groups_per_kv;
    const int t0 = ctx->attn_tiles[tile], n_lanes_all = (ctx->attn_tiles[tile + 1] - t0) * group;
    const int l0 = g * PONDER_ATTN_LANES;
    if (l0 >= n_lanes_all)
        return;
    const ponder_seq_id seq = ctx->ub_seq[t0];
    ponder_attn_lanes al = {
        .n_lanes = n_lanes_all - l0 < PONDER_ATTN_LANES ? n_lanes_all - l0 : PONDER_ATTN_LANES,
        .head_dim_k = hp->head_dim_k,
        .head_dim_v = hp->head_dim_v,
        .block_cells = KV_BLOCK_CELLS,
        .blocks = ctx->kv.tables + (size_t)seq * (size_t)ctx->kv.max_blocks_seq,
        .k = (const uint8_t *)ctx->k_cache[a->il] + (size_t)kv_head * (size_t)hp->head_dim_k * sizeof(ponder_f16),
        .v = (const uint8_t *)ctx->v_cache[a->il] + (size_t)kv_head * (size_t)hp->head_dim_v * sizeof(ponder_f16),
        .k_row_bytes = ctx->k_row_bytes,
        .v_row_bytes = ctx->v_row_bytes,
        .kq_scale = a->kq_scale,
    };
    const size_t q_row = (size_t)hp->n_head * hp->head_dim_k, o_row = (size_t)hp->n_head * hp->head_dim_v;
    for (int l = 0; l < al.n_lanes; l++) {
        const int t = t0 + (l0 + l) / group, h = kv_head * group + (l0 + l) % group;
        al.q[l] = ctx->q + (size_t)t * q_row + (size_t)h * hp->head_dim_k;
        al.out[l] = ctx->attn + (size_t)t * o_row + (size_t)h * hp->head_dim_v;
        al.hi[l] = ctx->ub_pos[t];
        al.lo[l] = attn_window_start(m, a->il, al.hi[l]);
    }
    a->lanes(&al, ctx->scores + (size_t)ith * ctx->n_scores);
}

static void attention_slice(void *arg, int ith, int nth)
{
    (void)nth;
    attention_task *a = arg;
    for (int i; (i = atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed)) < a->n_items;) {
        if (a->lanes)
            run_lanes(a, i, ith);
        else if (a->flash)
            run_flash(a, i, ith);
        else
            run_exact(a, i, ith);
        atomic_fetch_add_explicit(&a->done, 1, memory_order_release);
    }
    /* the caller returns only when every item is finished, by whichever thread */
    if (ith == 0)
        while (atomic_load_explicit(&a->done, memory_order_acquire) < a->n_items)
            ;
}

/* Cuts the micro-batch into tiles of at most ATTN_TILE_TOKENS consecutive tokens of one
 * sequence at consecutive positions; returns their number (bounds in ctx->attn_tiles). */
static int make_tiles(ponder_context *ctx, int n)
{
    int n_tiles = 0;
    ctx->attn_tiles[0] = 0;
    for (int t = 1; t <= n; t++) {
        const int t0 = ctx->attn_tiles[n_tiles];
        if (t == n || t - t0 == ATTN_TILE_TOKENS || ctx->ub_seq[t] != ctx->ub_seq[t0] ||
            ctx->ub_pos[t] != ctx->ub_pos[t - 1] + 1)
            ctx->attn_tiles[++n_tiles] = t;
    }
    return n_tiles;
}

void blk_attention(ponder_context *ctx, int il, int n, float kq_scale)
{
    const ponder_hparams *hp = &ctx->model->hp;
    attention_task at = {.ctx = ctx, .il = il, .n = n, .kq_scale = kq_scale, .flash = ctx->flash};
    const ponder_attn_fn lanes = ponder_kernels()->attn_f16;
    if (lanes && !at.flash && ctx->params.type_k == PONDER_TYPE_F16 && ctx->params.type_v == PONDER_TYPE_F16 &&
        hp->attn_logit_softcap <= 0.0f && hp->head_dim_k % 16 == 0 && hp->head_dim_v % 16 == 0 &&
        hp->head_dim_k <= PONDER_ATTN_MAX_HD && hp->head_dim_v <= PONDER_ATTN_MAX_HD) {
        const int group = hp->n_head / hp->n_head_kv;
        at.lanes = lanes;
        at.n_tiles = make_tiles(ctx, n);
        at.groups_per_kv = (ATTN_TILE_TOKENS * group + PONDER_ATTN_LANES - 1) / PONDER_ATTN_LANES;
        at.n_items = at.n_tiles * hp->n_head_kv * at.groups_per_kv;
    } else if (at.flash) {
        const int group = hp->n_head / hp->n_head_kv, nth = ponder_pool_n_threads(ctx->params.pool);
        at.n_tiles = make_tiles(ctx, n);
        /* split a KV head's query heads while there are too few units to keep every
         * thread busy (one decoded token has only n_head_kv of them) */
        at.heads_per_unit = group;
        while (at.heads_per_unit > 1 && at.n_tiles * hp->n_head_kv * ((group + at.heads_per_unit - 1) / at.heads_per_unit) < 4 * nth)
            at.heads_per_unit = (at.heads_per_unit + 1) / 2;
        at.groups_per_kv = (group + at.heads_per_unit - 1) / at.heads_per_unit;
        at.n_items = at.n_tiles * hp->n_head_kv * at.groups_per_kv;
    } else {
        at.n_items = n * hp->n_head;
    }
    atomic_init(&at.next, 0);
    atomic_init(&at.done, 0);
    ponder_pool_run_dynamic(ctx->params.pool, attention_slice, &at);
}
