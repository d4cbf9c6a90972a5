/*
 * embed.h — sentence embeddings from a decoder model, as llama.cpp's llama-embedding
 * computes them: the hidden states after the final norm, pooled over an input's tokens
 * (mean, first token, last token), optionally L2-normalised. Part of the model module
 * (src/model/embed.c); the vectors agree with llama.cpp's within the tolerances of
 * shared/reference/embeddings/README.md.
 */
#ifndef PONDER_EMBED_H
#define PONDER_EMBED_H

#include "ponder/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How an input's token states become one vector; the numbers are GGUF's
 * <arch>.pooling_type values. */
typedef enum ponder_pooling {
    PONDER_POOLING_MEAN = 1, /* the mean over all tokens */
    PONDER_POOLING_CLS = 2,  /* the first token (BOS when the model adds one) */
    PONDER_POOLING_LAST = 3, /* the last token */
} ponder_pooling;

/* The model's pooling: <arch>.pooling_type when it is mean, cls or last; mean otherwise
 * (absent, none, rank). */
ponder_pooling ponder_model_pooling(const ponder_model *m);
const char *ponder_pooling_name(ponder_pooling p); /* "mean", "cls", "last" */
/* "mean", "cls" or "last" into *out; false for anything else. */
bool ponder_pooling_parse(const char *s, ponder_pooling *out);

/* One input: its token ids (BOS included when the model adds one — as tokenized for a
 * prompt). */
typedef struct ponder_embed_input {
    const int32_t *tokens;
    int32_t n_tokens;
} ponder_embed_input;

/* Context sizes for embedding these n inputs: n_ctx = the longest input, as many sequences
 * as inputs (at most 64), KV cells for all of them at once but at most max_cells (0: no
 * limit; never fewer than the longest input needs), so a large request runs in several
 * batches instead of taking memory for all. Other fields are the defaults; set pool
 * (threads) as wanted. */
ponder_context_params ponder_embed_context_params(const ponder_embed_input *inputs, int32_t n, int32_t max_cells);

/* Embeds n inputs into out (n rows of n_embd floats): each input runs causally from
 * position 0 in its own sequence, the final-norm states of its tokens are pooled, then
 * L2-normalised when normalize (a zero vector stays zero). Inputs are decoded together,
 * as many per batch as ctx has sequences and free KV cells; the results do not depend on
 * the batching. ctx is borrowed whole: every sequence is emptied before and after. An
 * empty input, a token id outside the vocabulary, or an input longer than ctx's n_ctx (or
 * its cells) is an error naming the input's index; out is then unspecified. */
ponder_status ponder_embed(ponder_context *ctx, const ponder_embed_input *inputs, int32_t n,
                           ponder_pooling pooling, bool normalize, float *out, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_EMBED_H */
