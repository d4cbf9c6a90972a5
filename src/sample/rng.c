/* rng.c — xoshiro256** seeded by splitmix64; see rng.h for why these two. */
#include "sample/rng.h"

/* splitmix64 (Steele, Lea & Flood 2014): a fast, full-period mixer of a counter. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ponder_rng_seed(ponder_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t ponder_rng_next(ponder_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ponder_rng_uniform(ponder_rng *r)
{
    /* The top 53 bits are the best ones of xoshiro256** and fill a double's mantissa. */
    return (double)(ponder_rng_next(r) >> 11) * 0x1.0p-53;
}
