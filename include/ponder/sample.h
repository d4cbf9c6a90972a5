/*
 * sample.h — choosing the next token from logits.
 *
 * The chain follows llama.cpp's common sampler order: penalties → top-k →
 * top-p → min-p → temperature → draw. temp <= 0 means greedy (argmax; ties to the lowest
 * id) of the logits after the penalties — as in llama.cpp, where the penalty
 * stage precedes the temperature stage that keeps only the maximum. top-p and min-p see
 * the untempered probabilities. A sampler is per-request state: the RNG (xoshiro256**,
 * seeded, so the same seed gives the same draws on every platform) and the recent-token
 * window for the penalties. Not thread-safe; one per request.
 */
#ifndef PONDER_SAMPLE_H
#define PONDER_SAMPLE_H

#include "ponder/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_sampler_params {
    float temp;             /* <= 0: greedy. llama.cpp default 0.8 */
    int32_t top_k;          /* <= 0: off. default 40 */
    float top_p;            /* >= 1: off. default 0.95 */
    float min_p;            /* <= 0: off. default 0.05 */
    float repeat_penalty;   /* 1: off. default 1.0 */
    int32_t repeat_last_n;  /* window for the penalties; default 64; 0: off (>= 0; a caller
                             * wanting llama.cpp's -1 passes the context size) */
    float presence_penalty; /* 0: off. logit -= presence_penalty if the token is in the window */
    float frequency_penalty;/* 0: off. logit -= frequency_penalty * its count in the window
                             * (OpenAI's formula; llama.cpp's penalties stage, after the
                             * repetition penalty, over the same window) */
    uint64_t seed;          /* PONDER_SEED_RANDOM: from the clock */
} ponder_sampler_params;

#define PONDER_SEED_RANDOM UINT64_MAX

ponder_sampler_params ponder_sampler_params_default(void);

typedef struct ponder_sampler ponder_sampler;

/* p NULL: the defaults. n_vocab <= 0, a NaN parameter, repeat_penalty <= 0, a non-finite
 * presence/frequency penalty or repeat_last_n < 0 → PONDER_ERR_INVALID_ARG. Allocates
 * O(n_vocab) scratch once. */
ponder_status ponder_sampler_create(const ponder_sampler_params *p, int32_t n_vocab, ponder_sampler **out,
                                    ponder_error *err);
void ponder_sampler_free(ponder_sampler *s);

/* Picks a token from logits[0..n_vocab); does not modify logits. NaN logits are never
 * picked; -1 only if s or logits is NULL. */
int32_t ponder_sampler_sample(ponder_sampler *s, const float *logits);
/* The distribution ponder_sampler_sample draws from for these logits (the same chain:
 * penalties, top-k, top-p, min-p, temperature) into probs[0..n_vocab): it sums to 1 and
 * is 0 on every token the chain cuts; greedy (temp <= 0): 1 on the token it would pick.
 * Draws nothing. Returns the most likely kept token (-1 if an argument is NULL).
 * Speculative decoding's accept/reject rule works on these distributions. */
int32_t ponder_sampler_probs(ponder_sampler *s, const float *logits, float *probs);
/* Restricts the following draws and distributions to the tokens whose bit is set in
 * mask (bit t % 32 of word t / 32; a grammar's mask), applied after the penalties and
 * before the truncations, as llama.cpp applies its grammar first; NULL lifts it. The mask
 * is read, not copied: it must stay valid while set. When no allowed token has a finite
 * logit, greedy still returns an allowed token (the lowest id); with no allowed token at
 * all, ponder_sampler_sample returns -1 under greedy (callers check for an empty mask
 * first). */
void ponder_sampler_set_mask(ponder_sampler *s, const uint32_t *mask);
/* A uniform number in [0, 1) from the sampler's generator (the one its draws use), for
 * callers that combine distributions themselves; 0 if s is NULL. */
double ponder_sampler_uniform(ponder_sampler *s);
/* Records a token (prompt or generated) in the penalty window; ids outside
 * the vocabulary are kept in the window but penalise nothing. */
void ponder_sampler_accept(ponder_sampler *s, int32_t token);
/* Clears the window and reseeds with the original seed. */
void ponder_sampler_reset(ponder_sampler *s);
/* The seed actually used (resolved if PONDER_SEED_RANDOM was asked). */
uint64_t ponder_sampler_seed(const ponder_sampler *s);

/* Index of the largest value; ties to the lowest index; NaN loses to any number.
 * -1 if n <= 0. */
int32_t ponder_argmax(const float *x, int32_t n);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_SAMPLE_H */
