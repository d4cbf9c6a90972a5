/*
 * blocks.h — the building blocks of a transformer layer (blocks.c), shared by the
 * architectures in arch_<name>.c. They work on the context's micro-batch scratch: n tokens
 * in ctx->x (the residual stream, n × n_embd), ctx->xb/xb2 (n × n_embd), ctx->q/k/v
 * (n × heads × head_dim), ctx->attn (n × n_head × head_dim_v); each token's sequence and
 * position in ctx->ub_seq/ub_pos.
 */
#ifndef PONDER_MODEL_BLOCKS_H
#define PONDER_MODEL_BLOCKS_H

#include "model/model_internal.h"

/* x = the embeddings of tokens (n rows), times scale (gemma2: sqrt(n_embd); else 1) */
void blk_embed(ponder_context *ctx, const int32_t *tokens, int n, float scale);
/* (cos, sin) of every rotated pair at each token's position, into ctx->rope_cs */
void blk_rope_cache(ponder_context *ctx, int n);
/* out = RMSNorm(x) * w over n rows of n_embd (out may be x) */
void blk_rmsnorm(const ponder_context *ctx, float *out, const float *x, const float *w, int n);
/* y = w · x for n rows; blk_matmul_shared: several products of one input in one pass */
void blk_matmul(ponder_context *ctx, const ponder_matrix *w, int n_tokens, const float *x, float *y);
void blk_matmul_shared(ponder_context *ctx, const ponder_matmul_job *jobs, int n_jobs, int n_tokens, const float *x);
/* x[t] += b for n_tokens rows of n (b NULL: nothing) */
void blk_add_bias(float *x, const float *b, int n_tokens, int n);
void blk_scale(float *x, size_t n, float s);
/* x += y over n rows of n_embd (the residual connection) */
void blk_residual(const ponder_context *ctx, float *x, const float *y, int n);

/* ctx->q/k/v = the projections of in (separate weights; the optional biases added) */
void blk_qkv(ponder_context *ctx, const layer_weights *l, int n, const float *in);
/* the same from one fused [Q | K | V] weight (phi3) */
void blk_qkv_fused(ponder_context *ctx, const layer_weights *l, int n, const float *in);
/* RoPE on ctx->q and ctx->k at each token's position */
void blk_rope_qk(ponder_context *ctx, int n);
/* each token's K and V rows into its cell of layer il */
void blk_kv_store(ponder_context *ctx, int il, int n);
/* ctx->attn = softmax(cap(Q·K) * kq_scale) · V per (token, head) over that token's own
 * sequence's cells up to its position (the sliding window in that sequence's positions) */
void blk_attention(ponder_context *ctx, int il, int n, float kq_scale);

/* out = down(silu(gate in) * up in) */
void blk_ffn_swiglu(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out);
/* out = down(gelu(gate in) * up in) (gemma2) */
void blk_ffn_geglu(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out);
/* out = down(silu(g) * u) with [g; u] = up in (phi3's fused gate/up) */
void blk_ffn_swiglu_fused(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out);
/* out = the routed experts' SwiGLU outputs, weighted (Mixtral); each expert runs once over
 * the tokens routed to it */
void blk_ffn_moe(ponder_context *ctx, const layer_weights *l, int n, const float *in, float *out);

/* final RMSNorm and logits (bias, soft-cap) of the tokens ctx->ub_out[0..n_out) into out */
void blk_output(ponder_context *ctx, int n_out, float *out);

#endif
