/*
 * arch_qwen2.c — the Qwen2/2.5 block: llama's, with Q/K/V biases (required) and NEOX RoPE
 * (the rope kind is an hparam, arch.c).
 */
#include "model/blocks.h"

void qwen2_layer(ponder_context *ctx, const layer_weights *l, int il, int n)
{
    const ponder_model *m = ctx->model;
    float *x = ctx->x, *xb = ctx->xb, *xb2 = ctx->xb2;

    /* attention: RMSNorm, Q/K/V projections plus biases, RoPE, store K/V, attend, output */
    blk_rmsnorm(ctx, xb, x, l->attn_norm, n);
    blk_qkv(ctx, l, n, xb);
    blk_rope_qk(ctx, n);
    blk_kv_store(ctx, il, n);
    blk_attention(ctx, il, n, m->q_scale);
    blk_matmul(ctx, &l->wo, n, ctx->attn, xb2);
    blk_add_bias(xb2, l->bo, n, m->hp.n_embd);
    blk_residual(ctx, x, xb2, n);

    /* feed-forward: RMSNorm, SwiGLU, residual */
    blk_rmsnorm(ctx, xb, x, l->ffn_norm, n);
    blk_ffn_swiglu(ctx, l, n, xb, xb2);
    blk_residual(ctx, x, xb2, n);
}
