/*
 * arch_llama.c — the llama block (Llama 2/3, SmolLM2, Mistral, TinyStories), pre-norm:
 *   x += Wo · attention(RoPE(Wq · norm(x)), RoPE(Wk · norm(x)), Wv · norm(x))
 *   x += FFN(norm(x)), FFN = SwiGLU, or routed SwiGLU experts when n_expert > 0 (Mixtral)
 * Optional biases (some converters write them) are added when present.
 */
#include "model/blocks.h"

void llama_layer(ponder_context *ctx, const layer_weights *l, int il, int n)
{
    const ponder_model *m = ctx->model;
    float *x = ctx->x, *xb = ctx->xb, *xb2 = ctx->xb2;

    /* attention: RMSNorm, Q/K/V projections, RoPE, store K/V, attend, output projection */
    blk_rmsnorm(ctx, xb, x, l->attn_norm, n);
    blk_qkv(ctx, l, n, xb);
    blk_rope_qk(ctx, n);
    blk_kv_store(ctx, il, n);
    blk_attention(ctx, il, n, m->q_scale); /* 1/sqrt(head_dim) inside the softmax */
    blk_matmul(ctx, &l->wo, n, ctx->attn, xb2);
    blk_add_bias(xb2, l->bo, n, m->hp.n_embd);
    blk_residual(ctx, x, xb2, n);

    /* feed-forward: RMSNorm, SwiGLU or the token's experts, residual */
    blk_rmsnorm(ctx, xb, x, l->ffn_norm, n);
    if (m->hp.n_expert > 0)
        blk_ffn_moe(ctx, l, n, xb, xb2);
    else
        blk_ffn_swiglu(ctx, l, n, xb, xb2);
    blk_residual(ctx, x, xb2, n);
}
