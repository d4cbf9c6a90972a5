/*
 * arch_gemma2.c — the Gemma 2 block (llama.cpp llm_build_gemma2): embeddings scaled by
 * sqrt(n_embd) (forward.c, through arch_desc), Q scaled before Q·K, attention logits
 * soft-capped (hparam), a sliding window on even layers, RMSNorm also after attention and
 * after the FFN, GeGLU; the final logits are soft-capped too (hparam).
 */
#include "model/blocks.h"

void gemma2_layer(ponder_context *ctx, const layer_weights *l, int il, int n)
{
    const ponder_model *m = ctx->model;
    const ponder_hparams *hp = &m->hp;
    float *x = ctx->x, *xb = ctx->xb, *xb2 = ctx->xb2;

    /* attention: RMSNorm, Q/K/V, RoPE, Q pre-scaled, store K/V, attend, output, post-norm */
    blk_rmsnorm(ctx, xb, x, l->attn_norm, n);
    blk_qkv(ctx, l, n, xb);
    blk_rope_qk(ctx, n);
    blk_scale(ctx->q, (size_t)n * hp->n_head * hp->head_dim_k, m->q_scale);
    blk_kv_store(ctx, il, n);
    blk_attention(ctx, il, n, 1.0f);
    blk_matmul(ctx, &l->wo, n, ctx->attn, xb2);
    blk_add_bias(xb2, l->bo, n, hp->n_embd);
    blk_rmsnorm(ctx, xb2, xb2, l->attn_post_norm, n);
    blk_residual(ctx, x, xb2, n);

    /* feed-forward: RMSNorm, GeGLU, post-norm, residual */
    blk_rmsnorm(ctx, xb, x, l->ffn_norm, n);
    blk_ffn_geglu(ctx, l, n, xb, xb2);
    blk_rmsnorm(ctx, xb2, xb2, l->ffn_post_norm, n);
    blk_residual(ctx, x, xb2, n);
}
