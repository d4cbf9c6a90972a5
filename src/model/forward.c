/*
 * forward.c — one micro-batch through the model: embed, every layer through its
 * architecture's layer function (arch_<name>.c), final norm and logits (or, for
 * embeddings, the final-norm hidden states of every token).
 */
#include "model/blocks.h"

#include <math.h>

void forward_ubatch(ponder_context *ctx, const int32_t *tokens, int32_t n, int32_t n_out, float *out)
{
    const ponder_model *m = ctx->model;
    blk_embed(ctx, tokens, n, m->desc->embd_scale_sqrt ? sqrtf((float)m->hp.n_embd) : 1.0f);
    blk_rope_cache(ctx, n);
    for (int il = 0; il < m->hp.n_layer; il++)
        m->desc->layer(ctx, &m->layers[il], il, n);
    if (ctx->embd_out) { /* embeddings (embed.c): every token's final-norm state, no logits */
        blk_rmsnorm(ctx, ctx->embd_out, ctx->x, m->output_norm, n);
        ctx->embd_out += (size_t)n * (size_t)m->hp.n_embd;
        return;
    }
    blk_output(ctx, n_out, out);
}
