/*
 * rng.h — the sampler's pseudo-random generator (internal to src/sample).
 *
 * xoshiro256** (Blackman & Vigna, 2018): 256 bits of state, period 2^256 - 1, passes
 * BigCrush; its four state words are filled from the user's 64-bit seed with splitmix64,
 * as the authors recommend, so nearby seeds give unrelated streams and the all-zero state
 * (the one forbidden state) cannot occur. Same seed → same sequence on every platform:
 * only 64-bit integer arithmetic is involved.
 */
#ifndef PONDER_SAMPLE_RNG_H
#define PONDER_SAMPLE_RNG_H

#include <stdint.h>

typedef struct ponder_rng {
    uint64_t s[4];
} ponder_rng;

void ponder_rng_seed(ponder_rng *r, uint64_t seed);
uint64_t ponder_rng_next(ponder_rng *r);
/* Uniform in [0, 1) with 53 random bits (every double of the form k / 2^53). */
double ponder_rng_uniform(ponder_rng *r);

#endif
