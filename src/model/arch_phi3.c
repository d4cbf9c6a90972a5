/*
 * arch_phi3.c — the Phi-3 block (llama.cpp llm_build_phi3): one fused Q/K/V weight, Q
 * scaled before Q·K, NEOX RoPE, a sliding window on every layer, fused gate/up SwiGLU.
 */
#include "model/blocks.h"

void phi3_layer(ponder_context *ctx, const layer_weights *l, int il, int n)
{
    const ponder_model *m = ctx->model;
    const ponder_hparams *hp = &m->hp;
    float *x = ctx->x, *xb = ctx->xb, *xb2 = ctx->xb2;

    /* attention: RMSNorm, fused Q/K/V, RoPE, Q pre-scaled, store K/V, attend, output */
    blk_rmsnorm(ctx, xb, x, l->attn_norm, n);
    blk_qkv_fused(ctx, l, n, xb);
    blk_rope_qk(ctx, n);
    blk_scale(ctx->q, (size_t)n * hp->n_head * hp->head_dim_k, m->q_scale);
    blk_kv_store(ctx, il, n);
    blk_attention(ctx, il, n, 1.0f);
    blk_matmul(ctx, &l->wo, n, ctx->attn, xb2);
    blk_add_bias(xb2, l->bo, n, hp->n_embd);
    blk_residual(ctx, x, xb2, n);

    /* feed-forward: RMSNorm, SwiGLU from the fused [gate; up], residual */
    blk_rmsnorm(ctx, xb, x, l->ffn_norm, n);
    blk_ffn_swiglu_fused(ctx, l, n, xb, xb2);
    blk_residual(ctx, x, xb2, n);
}
