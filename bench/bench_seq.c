/*
 * bench_seq.c -- the cost of the sequence model (model/seq.h): examples learned per
 * second on journeys of 1 to 20 touchpoints, and a purchase's credits (Shapley values
 * and removal effects of its game) at 12 touchpoints (exact, from the table of every
 * coalition) and 50 (sampled permutations, the coalitions of a permutation grown one
 * touchpoint at a time).
 *
 *   build/bench_seq [--dim 16] [--examples 200000] [--samples 512]
 *
 * Prints key=value pairs; docs/benchmarks.md, "The online model".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "lib/rng.h"
#include "model/seq.h"
#include "model/shapley.h"

#define HOUR 3600000LL

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void journey(gen_rng *r, tl_seq_tp *tps, int n, int64_t at)
{
    int64_t ts = at;
    for (int i = n - 1; i >= 0; i--) {
        ts -= (int64_t)rng_below(r, 12 * HOUR);
        tps[i].type = (int)rng_below(r, 5);
        tps[i].chan_key = 1 + rng_below(r, 5);
        tps[i].cat_key = 100 + rng_below(r, 1000);
        tps[i].ts = ts;
    }
}

static void table_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    const double *table = arg;
    for (int i = 0; i < count; i++) v[i] = table[masks[i]];
}

/* Microseconds per purchase for the credits of an n-touchpoint journey (Shapley exact up
 * to 12 touchpoints, sampled beyond; and removal), the median of `reps`. */
static double credits_us(tl_seq *m, gen_rng *r, int n, int samples, int reps)
{
    tl_seq_tp tps[64];
    double phi[64], se[64], rm[64], *t = tl_xmalloc((size_t)reps * sizeof(double));
    double *table = tl_xmalloc(((size_t)1 << 12) * sizeof(double));
    int64_t at = 1700000000000LL;
    for (int k = 0; k < reps; k++) {
        journey(r, tps, n, at);
        double t0 = now();
        tl_seq_pass *p = tl_seq_prepare(m, tps, n, at);
        tl_seq_game gm;
        tl_seq_game_init(&gm, p, -3.0);
        if (n <= 12) {
            tl_seq_table(p, -3.0, table);
            tl_shapley_exact(n, table_fn, table, phi);
        } else {
            tl_shapley_sampled(n, samples, (uint64_t)k, tl_seq_game_fn, &gm, phi, se);
        }
        tl_removal(n, tl_seq_game_fn, &gm, rm);
        tl_seq_game_fini(&gm);
        tl_seq_pass_free(p);
        t[k] = (now() - t0) * 1e6;
    }
    for (int i = 1; i < reps; i++) /* insertion sort: a few dozen */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    double med = t[reps / 2];
    free(t);
    free(table);
    return med;
}

int main(int argc, char **argv)
{
    int dim = 16, examples = 200000, samples = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dim")) dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--examples")) examples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples")) samples = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_seq [--dim N] [--examples N] [--samples N]\n");
            return 2;
        }
    }
    tl_seq_cfg cfg = {.dim = dim, .buckets = 4096, .lr = 0.05, .l2 = 1e-6, .seed = 1};
    char err[256];
    tl_seq *m = tl_seq_new(&cfg, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "bench_seq: %s\n", err);
        return 2;
    }
    gen_rng r;
    rng_seed(&r, 42);
    tl_seq_tp tps[20];
    int64_t at = 1700000000000LL;
    double t0 = now(), touch = 0;
    for (int k = 0; k < examples; k++) {
        int n = 1 + (int)rng_below(&r, 20);
        journey(&r, tps, n, at);
        touch += n;
        tl_seq_learn(m, tps, n, at, -3.0, rng_below(&r, 50) == 0, 1, NULL);
    }
    double secs = now() - t0;
    printf("dim=%d weights=%zu examples=%d mean_touchpoints=%.1f examples_per_s=%.0f "
           "credits_12_us=%.1f credits_50_us=%.1f samples=%d\n",
           dim, tl_seq_size(m), examples, touch / examples, examples / secs,
           credits_us(m, &r, 12, samples, 31), credits_us(m, &r, 50, samples, 31), samples);
    tl_seq_free(m);
    return 0;
}
