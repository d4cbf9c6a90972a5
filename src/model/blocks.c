/*
 * blocks.c — the building blocks every architecture's layer is made of: RMSNorm, the matrix
 * products (grouped when they share an input), RoPE, the FFN variants (SwiGLU, fused
 * SwiGLU, GeGLU) and routed experts; the KV store and attention are in attention.c.
 * The arch_<name>.c files put them together; blocks.h gives the shapes.
 *
 * Rounding follows llama.cpp's CPU graph so logits agree with it: RMSNorm sums in double,
 * RoPE angles are built by repeated multiplication (ggml_rope_cache_init), the softmax
 * sums in double. Matrix products convert activations to the weight type's dot type
 * (ponder_matmul).
 */
#include "model/blocks.h"

#include <math.h>
#include <string.h>

/* ---- elementwise ops ---- */

/* out = x / rms(x) * w  (ggml_rms_norm then ggml_mul) */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

/* up[i] *= silu(gate[i]) = gate / (1 + exp(-gate)) for n elements, with exp(-gate) from the path's vector exp
 * (ponder_vec_exp_sub: expf itself on the scalar path, llama.cpp's CPU backend also uses
 * a vector exp here): the scalar expf of every one of n_ff elements was the largest part
 * of a decoded token's work done by one thread between two matrix products. */
#define SWIGLU_PIECE 512
static void swiglu_rows(float *up, size_t up_stride, const float *gate, size_t gate_stride, int n_rows, int n)
{
    float neg[SWIGLU_PIECE], e[SWIGLU_PIECE];
    for (int r = 0; r < n_rows; r++) {
        float *u = up + (size_t)r * up_stride;
        const float *g = gate + (size_t)r * gate_stride;
        for (int i0 = 0; i0 < n; i0 += SWIGLU_PIECE) {
            const int len = n - i0 < SWIGLU_PIECE ? n - i0 : SWIGLU_PIECE;
            for (int i = 0; i < len; i++)
                neg[i] = -g[i0 + i];
            (void)ponder_vec_exp_sub(len, e, neg, 0.0f);
            for (int i = 0; i < len; i++)
                u[i0 + i] *= g[i0 + i] / (1.0f + e[i]);
        }
    }
}

/* GELU (tanh form) as llama.cpp's CPU backend computes it: the input rounded to F16 and
 * the result read from an F16 table (GGML_GELU_FP16), with the table's ±10 cut-offs. */
static float gelu(float x)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    const float SQRT_2_OVER_PI = 0.79788456080286535587989211986876f;
    const float GELU_COEF_A = 0.044715f;
    float h = ponder_f16_to_f32(ponder_f32_to_f16(x));
    float y = 0.5f * h * (1.0f + tanhf(SQRT_2_OVER_PI * h * (1.0f + GELU_COEF_A * h * h)));
    return ponder_f16_to_f32(ponder_f32_to_f16(y));
}

/* rmsnorm of four rows at once: the same sequential double sums, four independent chains
 * (a decode step of several sequences waits on one add's latency per element, not four) */
static void rmsnorm4(float *out, const float *x, const float *w, int n, float eps)
{
    const float *x0 = x, *x1 = x + n, *x2 = x + 2 * (size_t)n, *x3 = x + 3 * (size_t)n;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int i = 0; i < n; i++) {
        s0 += (double)(x0[i] * x0[i]);
        s1 += (double)(x1[i] * x1[i]);
        s2 += (double)(x2[i] * x2[i]);
        s3 += (double)(x3[i] * x3[i]);
    }
    const double sum[4] = {s0, s1, s2, s3};
    for (int r = 0; r < 4; r++) {
        const float mean = (float)(sum[r] / n);
        const float scale = 1.0f / sqrtf(mean + eps);
        const float *xr = x + (size_t)r * n;
        float *o = out + (size_t)r * n;
        for (int i = 0; i < n; i++)
            o[i] = (xr[i] * scale) * w[i];
    }
}

void blk_rmsnorm(const ponder_context *ctx, float *out, const float *x, const float *w, int n)
{
    const int n_embd = ctx->model->hp.n_embd;
    int t = 0;
    for (; t + 4 <= n; t += 4)
        rmsnorm4(out + (size_t)t * n_embd, x + (size_t)t * n_embd, w, n_embd, ctx->model->hp.norm_rms_eps);
    for (; t < n; t++)
        rmsnorm(out + (size_t)t * n_embd, x + (size_t)t * n_embd, w, n_embd, ctx->model->hp.norm_rms_eps);
}

void blk_add_bias(float *x, const float *b, int n_tokens, int n)
{
    if (!b)
        return;
    for (int t = 0; t < n_tokens; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * n + i] += b[i];
}

void blk_scale(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

void blk_residual(const ponder_context *ctx, float *x, const float *y, int n)
{
    for (size_t i = 0; i < (size_t)n * (size_t)ctx->model->hp.n_embd; i++)
        x[i] += y[i];
}

void blk_matmul(ponder_context *ctx, const ponder_matrix *w, int n_tokens, const float *x, float *y)
{
    ponder_matmul(w, n_tokens, x, y, ctx->work, ctx->params.float_activations, ctx->params.pool);
}

/* Several products of the same input in one parallel region (Q/K/V; gate/up): the
 * activations are converted once and the threads meet once. */
void blk_matmul_shared(ponder_context *ctx, const ponder_matmul_job *jobs, int n_jobs, int n_tokens,
                                const float *x)
{
    ponder_matmul_multi(jobs, n_jobs, n_tokens, x, ctx->work, ctx->params.float_activations, ctx->params.pool);
}

/* ---- RoPE ---- */

/* (cos, sin) for every rotated pair at position pos, as ggml_rope_cache_init builds them. */
static void rope_cache(const ponder_context *ctx, int32_t pos, float *cs)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const float *divisors = ctx->rope_divisors, mscale = hp->rope_attn_factor;
    const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int i0 = 0; i0 < hp->n_rot; i0 += 2) {
        const float ff = divisors ? divisors[i0 / 2] : 1.0f;
        const float angle = hp->rope_freq_scale * (theta / ff);
        cs[i0] = cosf(angle) * mscale; /* ggml's mscale: 1 unless the file sets attn_factor */
        cs[i0 + 1] = sinf(angle) * mscale;
        theta *= theta_scale;
    }
}

void blk_rope_cache(ponder_context *ctx, int n)
{
    for (int t = 0; t < n; t++)
        rope_cache(ctx, ctx->ub_pos[t], ctx->rope_cs + (size_t)t * ctx->model->hp.n_rot);
}

/* Rotates the first n_rot dims of each of n_heads heads of x in place. */
static void rope(const ponder_hparams *hp, float *x, int n_heads, int head_dim, const float *cs)
{
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * head_dim;
        for (int i0 = 0; i0 < hp->n_rot; i0 += 2) {
            /* NORM pairs adjacent elements; NEOX pairs element i with i + n_rot/2 */
            const int a = hp->rope_kind == PONDER_ROPE_NEOX ? i0 / 2 : i0;
            const int b = hp->rope_kind == PONDER_ROPE_NEOX ? i0 / 2 + hp->n_rot / 2 : i0 + 1;
            const float c = cs[i0], s = cs[i0 + 1];
            const float x0 = xh[a], x1 = xh[b];
            xh[a] = x0 * c - x1 * s;
            xh[b] = x0 * s + x1 * c;
        }
    }
}

void blk_rope_qk(ponder_context *ctx, int n)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const int n_q = hp->n_head * hp->head_dim_k, n_k = hp->n_head_kv * hp->head_dim_k;
    for (int t = 0; t < n; t++) {
        const float *cs = ctx->rope_cs + (size_t)t * hp->n_rot;
        rope(hp, ctx->q + (size_t)t * n_q, hp->n_head, hp->head_dim_k, cs);
        rope(hp, ctx->k + (size_t)t * n_k, hp->n_head_kv, hp->head_dim_k, cs);
    }
}

/* ---- Q/K/V ---- */

void blk_qkv(ponder_context *ctx, const layer_weights *l, int n, const float *in)
{
    const ponder_hparams *hp = &ctx->model->hp;
    blk_matmul_shared(ctx, (ponder_matmul_job[]){{&l->wq, ctx->q}, {&l->wk, ctx->k}, {&l->wv, ctx->v}}, 3, n, in);
    blk_add_bias(ctx->q, l->bq, n, hp->n_head * hp->head_dim_k);
    blk_add_bias(ctx->k, l->bk, n, hp->n_head_kv * hp->head_dim_k);
    blk_add_bias(ctx->v, l->bv, n, hp->n_head_kv * hp->head_dim_v);
}

void blk_qkv_fused(ponder_context *ctx, const layer_weights *l, int n, const float *in)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const int n_q = hp->n_head * hp->head_dim_k, n_k = hp->n_head_kv * hp->head_dim_k;
    const int n_v = hp->n_head_kv * hp->head_dim_v, n_qkv = n_q + n_k + n_v;
    blk_matmul(ctx, &l->wqkv, n, in, ctx->q);
    /* split rows [Q | K | V] in place: Q stays packed at the front */
    for (int t = 0; t < n; t++) {
        const float *row = ctx->q + (size_t)t * n_qkv;
        memcpy(ctx->k + (size_t)t * n_k, row + n_q, (size_t)n_k * sizeof(float));
        memcpy(ctx->v + (size_t)t * n_v, row + n_q + n_k, (size_t)n_v * sizeof(float));
    }
    for (int t = 0; t < n; t++)
        memmove(ctx->q + (size_t)t * n_q, ctx->q + (size_t)t * n_qkv, (size_t)n_q * sizeof(float));
}

/* ---- feed-forward ---- */

/* hb = gate·x, hb2 = up·x: the two products of the gated FFNs, sharing their input */
static void gate_up(ponder_context *ctx, const layer_weights *l, int n, const float *in)
{
    blk_matmul_shared(ctx, (ponder_matmul_job[]){{&l->w_gate, ctx->hb}, {&l->w_up, ctx->hb2}}, 2, n, in);
}

void blk_ffn_swiglu(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out)
{
    const int n_ff = ctx->model->hp.n_ff;
    gate_up(ctx, l, n, in);
    swiglu_rows(ctx->hb2, (size_t)n_ff, ctx->hb, (size_t)n_ff, n, n_ff);
    blk_matmul(ctx, &l->w_down, n, ctx->hb2, out);
}

void blk_ffn_geglu(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out)
{
    gate_up(ctx, l, n, in);
    for (size_t i = 0; i < (size_t)n * (size_t)ctx->model->hp.n_ff; i++)
        ctx->hb2[i] *= gelu(ctx->hb[i]);
    blk_matmul(ctx, &l->w_down, n, ctx->hb2, out);
}

void blk_ffn_swiglu_fused(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out)
{
    const int n_ff = ctx->model->hp.n_ff;
    float *hb = ctx->hb, *hb2 = ctx->hb2;
    blk_matmul(ctx, &l->w_up, n, in, hb); /* rows hold [gate; up] */
    for (int t = 0; t < n; t++)
        memcpy(hb2 + (size_t)t * n_ff, hb + (size_t)t * 2 * n_ff + n_ff, (size_t)n_ff * sizeof *hb2);
    swiglu_rows(hb2, (size_t)n_ff, hb, 2 * (size_t)n_ff, n, n_ff);
    blk_matmul(ctx, &l->w_down, n, hb2, out);
}

static ponder_matrix expert(const ponder_matrix *stack, size_t stride, int e)
{
    ponder_matrix w = *stack;
    w.data = (const char *)stack->data + (size_t)e * stride;
    return w;
}

/* The router's choice for one token (llama.cpp llm_build_moe_ffn with softmax gating and
 * normalized weights): softmax over the router logits, the top n_used experts (ties to the
 * lower id), their weights renormalized to sum 1. */
static void route_token(float *router, int n_exp, int n_used, int32_t *chosen, float *weight)
{
    float max = -INFINITY;
    for (int e = 0; e < n_exp; e++)
        max = router[e] > max ? router[e] : max;
    double sum = 0.0;
    for (int e = 0; e < n_exp; e++) {
        router[e] = expf(router[e] - max);
        sum += (double)router[e];
    }
    const float inv = (float)(1.0 / sum);
    for (int e = 0; e < n_exp; e++)
        router[e] *= inv;
    /* top n_used by ggml's argsort, an exchange sort: slot j swaps with every later slot
     * holding a strictly larger value. Its first n_used slots depend only on the first
     * n_used passes, and ties land where llama.cpp's do. */
    int order[MOE_MAX_EXPERTS];
    for (int e = 0; e < n_exp; e++)
        order[e] = e;
    float wsum = 0.0f;
    for (int j = 0; j < n_used; j++) {
        for (int k = j + 1; k < n_exp; k++)
            if (router[order[j]] < router[order[k]]) {
                const int tmp = order[j];
                order[j] = order[k];
                order[k] = tmp;
            }
        chosen[j] = order[j];
        weight[j] = router[order[j]];
        wsum += weight[j];
    }
    for (int j = 0; j < n_used; j++)
        weight[j] /= wsum;
}

/* Mixtral-style MoE over a micro-batch: route every token, then run each expert once, as
 * one product over the tokens routed to it (gathered rows), and add each token's expert
 * outputs weighted in its routing order — the order a token alone would use, so with a
 * batch-invariant matmul the result is the token-by-token one bit for bit. */
void blk_ffn_moe(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out)
{
    const ponder_hparams *hp = &ctx->model->hp;
    const int n_embd = hp->n_embd, n_ff = hp->n_ff, n_exp = hp->n_expert;
    const int n_used = hp->n_expert_used; /* <= MOE_MAX_EXPERTS_USED, checked at load */
    const size_t row = (size_t)n_embd * sizeof(float);
    int32_t *chosen = ctx->moe_ids, *slot_of = ctx->moe_rows;
    float *weight = ctx->moe_w;

    /* router logits of every token in one product, then each token's top experts */
    blk_matmul(ctx, &l->w_router, n, in, ctx->router);
    for (int t = 0; t < n; t++)
        route_token(ctx->router + (size_t)t * n_exp, n_exp, n_used, chosen + (size_t)t * n_used,
                    weight + (size_t)t * n_used);

    /* each expert over its tokens: gather, gate and up, SwiGLU, down, scatter into the
     * (token, choice) slots */
    for (int e = 0; e < n_exp; e++) {
        int m = 0;
        for (int i = 0; i < n * n_used; i++)
            if (chosen[i] == e) {
                slot_of[m] = i;
                memcpy(ctx->moe_in + (size_t)m * n_embd, in + (size_t)(i / n_used) * n_embd, row);
                m++;
            }
        if (m == 0)
            continue;
        ponder_matrix wg = expert(&l->w_gate_exps, l->gate_exps_stride, e);
        ponder_matrix wu = expert(&l->w_up_exps, l->up_exps_stride, e);
        ponder_matrix wd = expert(&l->w_down_exps, l->down_exps_stride, e);
        blk_matmul_shared(ctx, (ponder_matmul_job[]){{&wg, ctx->moe_gate}, {&wu, ctx->moe_up}}, 2, m, ctx->moe_in);
        swiglu_rows(ctx->moe_up, (size_t)n_ff, ctx->moe_gate, (size_t)n_ff, m, n_ff);
        blk_matmul(ctx, &wd, m, ctx->moe_up, ctx->moe_out);
        for (int r = 0; r < m; r++)
            memcpy(ctx->moe_slots + (size_t)slot_of[r] * n_embd, ctx->moe_out + (size_t)r * n_embd, row);
    }

    /* out = sum over the token's choices of weight × expert output */
    for (int t = 0; t < n; t++) {
        float *o = out + (size_t)t * n_embd;
        for (int i = 0; i < n_embd; i++)
            o[i] = 0.0f;
        for (int k = 0; k < n_used; k++) {
            const float *y = ctx->moe_slots + ((size_t)t * n_used + k) * n_embd;
            const float w = weight[(size_t)t * n_used + k];
            for (int i = 0; i < n_embd; i++)
                o[i] += y[i] * w;
        }
    }
}

/* ---- input and output ---- */

void blk_embed(ponder_context *ctx, const int32_t *tokens, int n, float scale)
{
    const ponder_model *m = ctx->model;
    const int n_embd = m->hp.n_embd;
    for (int t = 0; t < n; t++) {
        const void *row = (const char *)m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.row_bytes;
        ponder_dequantize_row(m->tok_embd.type, row, ctx->x + (size_t)t * n_embd, n_embd, NULL);
        if (scale != 1.0f)
            blk_scale(ctx->x + (size_t)t * n_embd, (size_t)n_embd, scale);
    }
}

void blk_output(ponder_context *ctx, int n_out, float *out)
{
    const ponder_model *m = ctx->model;
    const ponder_hparams *hp = &m->hp;
    const int n_embd = hp->n_embd;
    if (n_out == 0)
        return;
    for (int j = 0; j < n_out; j++)
        rmsnorm(ctx->xb + (size_t)j * n_embd, ctx->x + (size_t)ctx->ub_out[j] * n_embd, m->output_norm, n_embd,
                hp->norm_rms_eps);
    blk_matmul(ctx, &m->output, n_out, ctx->xb, out);
    blk_add_bias(out, m->output_bias, n_out, hp->n_vocab);
    if (hp->final_logit_softcap > 0.0f) {
        const float cap = hp->final_logit_softcap;
        for (size_t i = 0; i < (size_t)n_out * hp->n_vocab; i++)
            out[i] = cap * tanhf(out[i] / cap);
    }
}
