/*
 * rng.h -- seeded randomness: xoshiro256** seeded with splitmix64 (never rand()), so that
 * the same seed gives the same output (on one platform: libm). Used by the behaviour
 * generator (gen.c), the ground-truth generator (gen_truth.c) and the Markov bootstrap
 * (model/markov.c).
 */
#ifndef TL_RNG_H
#define TL_RNG_H

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

static inline uint64_t mix64(uint64_t x) { return splitmix64(&x); }

static inline void rng_seed(gen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

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

static inline double u01(uint64_t x) /* [0, 1) */ { return (double)(x >> 11) * 0x1.0p-53; }

static inline double rng_unit(gen_rng *r) { return u01(rng_next(r)); }

static inline uint32_t rng_below(gen_rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static inline double rng_exp(gen_rng *r, double mean) { return -log1p(-rng_unit(r)) * mean; }

/* Standard normal from two uniforms (Box-Muller). */
static inline double normal2(double a, double b)
{
    return sqrt(-2.0 * log1p(-a)) * cos(6.283185307179586 * b);
}

/* Gamma(a, 1), a > 0 (0 for a <= 0): Marsaglia and Tsang's squeeze (2000) for a >= 1;
 * Gamma(a + 1) U^(1/a) below. */
static inline double rng_gamma(gen_rng *r, double a)
{
    if (!(a > 0)) return 0;
    if (a < 1) return rng_gamma(r, a + 1) * pow(rng_unit(r), 1.0 / a);
    const double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x, v;
        do {
            x = normal2(rng_unit(r), rng_unit(r));
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = rng_unit(r);
        if (u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)))
            return d * v;
    }
}

#endif
