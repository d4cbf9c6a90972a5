/*
 * embed.c — sentence embeddings (ponder/embed.h). llama.cpp's llama-embedding runs the
 * decoder over the text and pools the hidden states after the final norm; we do the same
 * through the ordinary batched decode, with the context's embeddings hook (embd_out)
 * asking forward_ubatch for those states instead of logits. Several inputs go in one
 * batch, one sequence each, so their matrix products are shared; a sequence's states do
 * not depend on its batch-mates (the context's invariance), so neither do the vectors.
 */
#include "ponder/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

/* Sequences one embedding context holds at most (the batch of inputs decoded together). */
#define EMBED_MAX_SEQ 64

ponder_pooling ponder_model_pooling(const ponder_model *m)
{
    char key[64];
    snprintf(key, sizeof key, "%s.pooling_type", m->arch_name);
    int64_t v = 0;
    if (ponder_gguf_get(m->gguf, key) && ponder_gguf_get_i64(m->gguf, key, &v, NULL) == PONDER_OK &&
        (v == PONDER_POOLING_MEAN || v == PONDER_POOLING_CLS || v == PONDER_POOLING_LAST))
        return (ponder_pooling)v;
    return PONDER_POOLING_MEAN;
}

const char *ponder_pooling_name(ponder_pooling p)
{
    switch (p) {
    case PONDER_POOLING_MEAN: return "mean";
    case PONDER_POOLING_CLS: return "cls";
    case PONDER_POOLING_LAST: return "last";
    }
    return "?";
}

bool ponder_pooling_parse(const char *s, ponder_pooling *out)
{
    static const ponder_pooling all[] = { PONDER_POOLING_MEAN, PONDER_POOLING_CLS, PONDER_POOLING_LAST };
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, ponder_pooling_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

static int32_t blocks_of(int32_t n_tokens) { return (n_tokens + KV_BLOCK_CELLS - 1) / KV_BLOCK_CELLS; }

ponder_context_params ponder_embed_context_params(const ponder_embed_input *inputs, int32_t n, int32_t max_cells)
{
    ponder_context_params p = ponder_context_params_default();
    int32_t longest = 1;
    int64_t blocks = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t t = inputs[i].n_tokens > 0 ? inputs[i].n_tokens : 1;
        longest = t > longest ? t : longest;
        blocks += blocks_of(t);
    }
    if (max_cells > 0 && blocks > blocks_of(max_cells))
        blocks = blocks_of(max_cells);
    if (blocks < blocks_of(longest))
        blocks = blocks_of(longest);
    p.n_ctx = longest;
    p.n_seq_max = n < 1 ? 1 : n > EMBED_MAX_SEQ ? EMBED_MAX_SEQ : n;
    p.n_kv_cells = (int32_t)blocks * KV_BLOCK_CELLS;
    return p;
}

/* Every input is one the context can take on its own; ids are in the vocabulary. */
static ponder_status check_inputs(const ponder_context *ctx, const ponder_embed_input *in, int32_t n,
                                  ponder_error *err)
{
    const int32_t n_vocab = ctx->model->hp.n_vocab;
    for (int32_t i = 0; i < n; i++) {
        if (in[i].n_tokens <= 0 || !in[i].tokens)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "input %d is empty (no tokens to embed)", i);
        if (in[i].n_tokens > ctx->n_ctx)
            return ponder_error_set(err, PONDER_ERR_RANGE, "input %d has %d tokens, more than the context's %d", i,
                                    in[i].n_tokens, ctx->n_ctx);
        if (blocks_of(in[i].n_tokens) > ctx->kv.n_blocks)
            return ponder_error_set(err, PONDER_ERR_RANGE, "input %d has %d tokens, more than the context's %d KV cells",
                                    i, in[i].n_tokens, ctx->kv.n_blocks * KV_BLOCK_CELLS);
        for (int32_t t = 0; t < in[i].n_tokens; t++)
            if (in[i].tokens[t] < 0 || in[i].tokens[t] >= n_vocab)
                return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                        "input %d: token id %d at index %d is outside the vocabulary (0..%d)", i,
                                        in[i].tokens[t], t, n_vocab - 1);
    }
    return PONDER_OK;
}

/* One input's vector from its token states h (n_tokens rows of n_embd). */
static void pool_one(const float *h, int32_t n_tokens, int32_t n_embd, ponder_pooling pooling, bool normalize,
                     float *out)
{
    if (pooling == PONDER_POOLING_MEAN) {
        for (int32_t d = 0; d < n_embd; d++) {
            double sum = 0.0;
            for (int32_t t = 0; t < n_tokens; t++)
                sum += h[(size_t)t * n_embd + d];
            out[d] = (float)(sum / n_tokens);
        }
    } else {
        const int32_t t = pooling == PONDER_POOLING_CLS ? 0 : n_tokens - 1;
        memcpy(out, h + (size_t)t * n_embd, (size_t)n_embd * sizeof(float));
    }
    if (!normalize)
        return;
    /* as llama.cpp's common_embd_normalize(…, 2): the Euclidean norm in double */
    double sum = 0.0;
    for (int32_t d = 0; d < n_embd; d++)
        sum += (double)out[d] * out[d];
    const float scale = sum > 0.0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int32_t d = 0; d < n_embd; d++)
        out[d] *= scale;
}

/* Decodes inputs[first, first + count) as one batch (sequence k for input first + k) and
 * pools each into its row of out. */
static ponder_status embed_group(ponder_context *ctx, const ponder_embed_input *in, int32_t first, int32_t count,
                                 ponder_pooling pooling, bool normalize, float *out, ponder_error *err)
{
    const int32_t n_embd = ctx->model->hp.n_embd;
    int32_t total = 0;
    for (int32_t k = 0; k < count; k++)
        total += in[first + k].n_tokens;
    int32_t *tokens = malloc((size_t)total * sizeof *tokens);
    ponder_seq_id *seq = malloc((size_t)total * sizeof *seq);
    float *hidden = malloc((size_t)total * (size_t)n_embd * sizeof *hidden);
    ponder_status st = PONDER_OK;
    if (!tokens || !seq || !hidden) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory embedding %d tokens", total);
        goto done;
    }
    int32_t at = 0;
    for (int32_t k = 0; k < count; k++) {
        const ponder_embed_input *x = &in[first + k];
        memcpy(tokens + at, x->tokens, (size_t)x->n_tokens * sizeof *tokens);
        for (int32_t t = 0; t < x->n_tokens; t++)
            seq[at + t] = k;
        at += x->n_tokens;
    }
    ponder_context_reset(ctx);
    const ponder_batch b = { .n_tokens = total, .tokens = tokens, .seq = seq, .want_logits = NULL };
    ctx->embd_out = hidden; /* rows come in batch order, one per token */
    st = ponder_context_decode_batch(ctx, &b, NULL, err);
    ctx->embd_out = NULL;
    ponder_context_reset(ctx);
    if (st != PONDER_OK)
        goto done;
    at = 0;
    for (int32_t k = 0; k < count; k++) {
        const int32_t nt = in[first + k].n_tokens;
        pool_one(hidden + (size_t)at * n_embd, nt, n_embd, pooling, normalize, out + (size_t)(first + k) * n_embd);
        at += nt;
    }
done:
    free(tokens);
    free(seq);
    free(hidden);
    return st;
}

ponder_status ponder_embed(ponder_context *ctx, const ponder_embed_input *inputs, int32_t n, ponder_pooling pooling,
                           bool normalize, float *out, ponder_error *err)
{
    if (!ctx || (!inputs && n > 0) || (!out && n > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_embed: context, inputs and output are required");
    if (pooling != PONDER_POOLING_MEAN && pooling != PONDER_POOLING_CLS && pooling != PONDER_POOLING_LAST)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_embed: unknown pooling %d", (int)pooling);
    ponder_status st = check_inputs(ctx, inputs, n, err);
    if (st != PONDER_OK)
        return st;
    /* greedy groups: as many inputs as there are sequences and cells for */
    const int32_t max_seq = ctx->kv.n_seq, max_blocks = ctx->kv.n_blocks;
    for (int32_t first = 0; first < n && st == PONDER_OK;) {
        int32_t count = 0, blocks = 0;
        while (first + count < n && count < max_seq && blocks + blocks_of(inputs[first + count].n_tokens) <= max_blocks)
            blocks += blocks_of(inputs[first + count++].n_tokens);
        st = embed_group(ctx, inputs, first, count, pooling, normalize, out, err);
        first += count;
    }
    return st;
}
