/*
 * gen_rng.h -- the generators' randomness: xoshiro256** seeded with splitmix64 (never
 * rand()), so that the same seed gives the same events (on one platform: libm). Shared by the
 * behaviour generator (gen.c) and the ground-truth generator (gen_truth.c).
 */
#ifndef TL_GEN_RNG_H
#define TL_GEN_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct gen_rng {
    uint64_t s[4];
} gen_rng;

static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t mix64(uint64_t x)
{
    return splitmix64(&x);
}

static inline void rng_seed(gen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double u01(uint64_t x)       /* [0, 1) */
{
    return (double)(x >> 11) * 0x1.0p-53;
}

static inline double rng_unit(gen_rng *r)
{
    return u01(rng_next(r));
}

static inline uint32_t rng_below(gen_rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static inline double rng_exp(gen_rng *r, double mean)
{
    return -log1p(-rng_unit(r)) * mean;
}

/* Standard normal from two uniforms (Box-Muller). */
static inline double normal2(double a, double b)
{
    return sqrt(-2.0 * log1p(-a)) * cos(6.283185307179586 * b);
}

#endif
