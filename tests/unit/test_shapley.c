/*
 * test_shapley.c -- model/shapley.c: exact Shapley values on hand-computed games, the
 * axioms (efficiency, symmetry, null player, additivity) on random games for n = 1..12,
 * an independent implementation by the permutation definition (all n! orders, n <= 7),
 * the batching contract, permutation sampling against the exact values for n = 13..20
 * (error within 4 standard errors, standard errors calibrated, efficiency per
 * permutation), removal, normalisation (negative credits kept), the grouped shortcut,
 * argument and non-finite errors, and a printed (not asserted) timing of the exact path
 * for n = 12.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/shapley.h"

#define TOL 1e-12

/* ---- helpers ------------------------------------------------------------------- */

static void check_near(double got, double want, double tol, const char *what, int i)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.17g, expected %.17g (tolerance %g)", what, i, got, want, tol);
}

static void check_vec(const double *got, const double *want, int n, double tol, const char *what)
{
    for (int i = 0; i < n; i++) check_near(got[i], want[i], tol, what, i);
}

static double sum(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

/* xorshift64*: the tests' own generator, unrelated to the module's splitmix64. */
static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static double rnd01(void) { return (double)(rnd64() >> 11) * 0x1.0p-53; }
static int rnd_below(int n) { return (int)(rnd64() % (uint64_t)n); }

/* A game given by a table of all 2^n values, with call accounting. */
typedef struct table_game {
    int n;
    const double *v;
    long calls, evals;
    int max_count, min_count;
    long bad_masks;           /* masks with bits >= n */
    unsigned char *seen;      /* optional: times each coalition was asked for */
    int ascending;            /* every mask above the previous one */
    uint64_t last;
    int started;
} table_game;

static void tg_init(table_game *g, int n, const double *v)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    g->v = v;
    g->min_count = 1 << 30;
    g->ascending = 1;
}

static void table_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    table_game *g = arg;
    g->calls++;
    g->evals += count;
    if (count > g->max_count) g->max_count = count;
    if (count < g->min_count) g->min_count = count;
    for (int k = 0; k < count; k++) {
        uint64_t m = masks[k];
        if (g->started && m <= g->last) g->ascending = 0;
        g->last = m;
        g->started = 1;
        if (g->n < 64 && (m >> g->n)) {
            g->bad_masks++;
            v[k] = NAN;
            continue;
        }
        v[k] = g->v[m];
        if (g->seen) g->seen[m]++;
    }
}

static double *random_table(int n, int zero_empty)
{
    size_t sz = (size_t)1 << n;
    double *v = malloc(sz * sizeof(double));
    assert_non_null(v);
    for (size_t s = 0; s < sz; s++) v[s] = rnd01();
    if (zero_empty) v[0] = 0;
    return v;
}

static int exact_table(int n, const double *v, double *phi)
{
    table_game g;
    tg_init(&g, n, v);
    int rc = tl_shapley_exact(n, table_fn, &g, phi);
    assert_int_equal(g.bad_masks, 0);
    return rc;
}

/* The permutation definition, enumerated: phi_i = mean over all n! orders of i's
 * marginal gain. Independent of the module (no weights, no batches). */
static void perm_rec(int n, int depth, int *perm, int *used, const double *v, double *acc)
{
    if (depth == n) {
        uint64_t s = 0;
        for (int k = 0; k < n; k++) {
            uint64_t t = s | ((uint64_t)1 << perm[k]);
            acc[perm[k]] += v[t] - v[s];
            s = t;
        }
        return;
    }
    for (int p = 0; p < n; p++) {
        if (used[p]) continue;
        used[p] = 1;
        perm[depth] = p;
        perm_rec(n, depth + 1, perm, used, v, acc);
        used[p] = 0;
    }
}

static void shapley_by_permutations(int n, const double *v, double *phi)
{
    int perm[8], used[8] = {0};
    double acc[8] = {0}, fact = 1;
    for (int k = 2; k <= n; k++) fact *= k;
    perm_rec(n, 0, perm, used, v, acc);
    for (int i = 0; i < n; i++) phi[i] = acc[i] / fact;
}

/* A game of 13..64 players without a table: v(S) a hash of S in [0, 1), v(empty) = 0. */
typedef struct hash_game {
    uint64_t key;
    long evals;
} hash_game;

static double hash_value(uint64_t key, uint64_t m)
{
    if (m == 0) return 0;
    uint64_t z = m ^ key;
    z ^= z >> 33;
    z *= 0xff51afd7ed558ccdULL;
    z ^= z >> 33;
    z *= 0xc4ceb9fe1a85ec53ULL;
    z ^= z >> 33;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void hash_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    hash_game *g = arg;
    g->evals += count;
    for (int k = 0; k < count; k++) v[k] = hash_value(g->key, masks[k]);
}

/* Additive game: v(S) = c0 + sum of a[j] over j in S, any number of players. */
typedef struct additive_game {
    int n;
    double c0, a[64];
    long evals, calls;
    int max_count;
    long bad_masks;
} additive_game;

static void additive_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    additive_game *g = arg;
    g->calls++;
    g->evals += count;
    if (count > g->max_count) g->max_count = count;
    for (int k = 0; k < count; k++) {
        uint64_t m = masks[k];
        if (g->n < 64 && (m >> g->n)) g->bad_masks++;
        double s = g->c0;
        for (int j = 0; j < g->n; j++)
            if ((m >> j) & 1) s += g->a[j];
        v[k] = s;
    }
}

/* ---- hand-computed games ------------------------------------------------------- */

/* Two players: v(A) = 0.10, v(B) = 0.05, v(AB) = 0.25.
 * phi_A = (v(A) - 0 + v(AB) - v(B)) / 2 = (0.10 + 0.20) / 2 = 0.15,
 * phi_B = (v(B) - 0 + v(AB) - v(A)) / 2 = (0.05 + 0.15) / 2 = 0.10. */
static const double two_v[4] = {0, 0.10, 0.05, 0.25};

static void test_two_players(void **state)
{
    (void)state;
    double phi[2];
    assert_int_equal(exact_table(2, two_v, phi), TL_SHAPLEY_OK);
    const double want[2] = {0.15, 0.10};
    check_vec(phi, want, 2, 1e-15, "phi");
}

/* Glove game: player 0 holds a left glove, players 1 and 2 a right glove each; a
 * coalition is worth 1 if it can make a pair (0 and at least one of 1, 2), else 0.
 * Over the 6 orders: player 0 completes a pair when it comes after at least one right
 * glove: orders 102, 120, 201, 210 -> phi_0 = 4/6 = 2/3. Player 1 completes the pair
 * only when 0 is before it and 2 is not: order 012 -> phi_1 = 1/6; likewise phi_2 = 1/6
 * (order 021). Sum = 1 = v(N). */
static const double glove_v[8] = {
    /* {}  {0} {1} {01} {2} {02} {12} {012} */
    0, 0, 0, 1, 0, 1, 0, 1,
};

/* The exact values of a three-player game v: phi_0 = 2/3, phi_1 = phi_2 = 1/6. */
static void check_two_thirds_sixths(const double v[8])
{
    double phi[3];
    assert_int_equal(exact_table(3, v, phi), TL_SHAPLEY_OK);
    const double want[3] = {2.0 / 3, 1.0 / 6, 1.0 / 6};
    check_vec(phi, want, 3, 1e-15, "phi");
}

static void test_glove(void **state)
{
    (void)state;
    check_two_thirds_sixths(glove_v);
}

/* Weighted majority [quota 3; weights 2, 1, 1]: a coalition wins (1) when its weight is
 * at least 3: {0,1}, {0,2}, {0,1,2}. Player 0 is pivotal when it comes second (after 1
 * or 2: orders 102, 201) or third (orders 120, 210: 1+1 = 2 < 3 before it, 4 after):
 * 4 of 6 -> 2/3. Player 1 is pivotal only in order 012 -> 1/6; player 2 in 021 -> 1/6.
 * (The same values as the glove game: the two games are the same function.) Then add
 * the constant 0.3 to every coalition including the empty one: marginal gains are
 * unchanged, so phi is too, and sum(phi) = v(N) - v(empty) = 1. */
static void test_majority_with_offset(void **state)
{
    (void)state;
    const int w[3] = {2, 1, 1};
    double v[8];
    for (int s = 0; s < 8; s++) {
        int tot = 0;
        for (int j = 0; j < 3; j++)
            if ((s >> j) & 1) tot += w[j];
        v[s] = (tot >= 3 ? 1.0 : 0.0) + 0.3;
    }
    check_two_thirds_sixths(v);
}

/* ---- axioms on random games ---------------------------------------------------- */

static void test_efficiency(void **state)
{
    (void)state;
    for (int n = 1; n <= 12; n++) {
        double *v = random_table(n, 1), phi[12];
        assert_int_equal(exact_table(n, v, phi), TL_SHAPLEY_OK);
        check_near(sum(phi, n), v[((size_t)1 << n) - 1] - v[0], TOL, "efficiency n", n);
        /* and with v(empty) != 0: sum = v(N) - v(empty) */
        v[0] = 0.7;
        assert_int_equal(exact_table(n, v, phi), TL_SHAPLEY_OK);
        check_near(sum(phi, n), v[((size_t)1 << n) - 1] - 0.7, TOL, "efficiency, v(0)=0.7, n", n);
        free(v);
    }
}

static uint64_t swap_bits(uint64_t s, int a, int b)
{
    uint64_t ba = (s >> a) & 1, bb = (s >> b) & 1;
    s &= ~(((uint64_t)1 << a) | ((uint64_t)1 << b));
    return s | (ba << b) | (bb << a);
}

static void test_symmetry(void **state)
{
    (void)state;
    for (int n = 2; n <= 12; n++) {
        double *v = random_table(n, 1), phi[12];
        int a = rnd_below(n), b = (a + 1 + rnd_below(n - 1)) % n;
        /* interchangeable by construction: v(S) = v(S with a and b swapped) */
        for (uint64_t s = 0; s < ((uint64_t)1 << n); s++)
            if (((s >> a) & 1) && !((s >> b) & 1)) v[s] = v[swap_bits(s, a, b)];
        assert_int_equal(exact_table(n, v, phi), TL_SHAPLEY_OK);
        check_near(phi[a], phi[b], TOL, "symmetry n", n);
        /* and the game is not trivially symmetric elsewhere: a player differs */
        int differs = 0;
        for (int i = 0; i < n; i++)
            if (i != a && fabs(phi[i] - phi[a]) > 1e-9) differs = 1;
        if (n > 2) assert_true(differs);
        free(v);
    }
}

static void test_null_player(void **state)
{
    (void)state;
    for (int n = 1; n <= 12; n++) {
        double *v = random_table(n, 1), phi[12];
        int k = rnd_below(n);
        uint64_t kb = (uint64_t)1 << k;
        for (uint64_t s = 0; s < ((uint64_t)1 << n); s++)
            if (s & kb) v[s] = v[s ^ kb];
        assert_int_equal(exact_table(n, v, phi), TL_SHAPLEY_OK);
        check_near(phi[k], 0, TOL, "null player n", n);
        /* the others share v(N) - v(empty), which is not 0 */
        check_near(sum(phi, n), v[((size_t)1 << n) - 1], TOL, "efficiency with a null player n", n);
        free(v);
    }
}

static void test_additivity(void **state)
{
    (void)state;
    for (int n = 1; n <= 12; n++) {
        size_t sz = (size_t)1 << n;
        double *v = random_table(n, 1), *w = random_table(n, 1), *vw = malloc(sz * sizeof(double));
        assert_non_null(vw);
        for (size_t s = 0; s < sz; s++) vw[s] = v[s] + w[s];
        double pv[12], pw[12], pvw[12], want[12];
        assert_int_equal(exact_table(n, v, pv), TL_SHAPLEY_OK);
        assert_int_equal(exact_table(n, w, pw), TL_SHAPLEY_OK);
        assert_int_equal(exact_table(n, vw, pvw), TL_SHAPLEY_OK);
        for (int i = 0; i < n; i++) want[i] = pv[i] + pw[i];
        check_vec(pvw, want, n, TOL, "additivity");
        free(v);
        free(w);
        free(vw);
    }
}

/* ---- second implementation ----------------------------------------------------- */

static void test_matches_permutation_definition(void **state)
{
    (void)state;
    for (int n = 1; n <= 7; n++) {
        for (int rep = 0; rep < 3; rep++) {
            double *v = random_table(n, rep != 2), phi[7], ref[7];   /* rep 2: v(empty) != 0 */
            assert_int_equal(exact_table(n, v, phi), TL_SHAPLEY_OK);
            shapley_by_permutations(n, v, ref);
            check_vec(phi, ref, n, TOL, "exact vs permutations");
            free(v);
        }
    }
}

/* ---- batching contract --------------------------------------------------------- */

static void test_exact_batches(void **state)
{
    (void)state;
    for (int n = 1; n <= 14; n++) {
        size_t sz = (size_t)1 << n;
        double *v = random_table(n, 1), phi[14];
        unsigned char *seen = calloc(sz, 1);
        assert_non_null(seen);
        table_game g;
        tg_init(&g, n, v);
        g.seen = seen;
        assert_int_equal(tl_shapley_exact(n, table_fn, &g, phi), TL_SHAPLEY_OK);
        assert_int_equal(g.bad_masks, 0);
        assert_true(g.max_count <= TL_SHAPLEY_BATCH);
        assert_true(g.min_count >= 1);
        assert_true(g.ascending);
        assert_int_equal(g.evals, (long)sz);
        for (size_t s = 0; s < sz; s++)
            if (seen[s] != 1) fail_msg("n=%d: coalition %zu evaluated %d times", n, s, seen[s]);
        free(seen);
        free(v);
    }
}

/* n = 20, the function's limit: efficiency and agreement with an additive game. */
static void test_exact_twenty(void **state)
{
    (void)state;
    hash_game h = {.key = 0x5eed20};
    double phi[20];
    assert_int_equal(tl_shapley_exact(20, hash_fn, &h, phi), TL_SHAPLEY_OK);
    assert_int_equal(h.evals, 1L << 20);
    check_near(sum(phi, 20), hash_value(h.key, (1u << 20) - 1), TOL, "efficiency n", 20);

    additive_game a = {.n = 20, .c0 = 0.25};
    for (int j = 0; j < 20; j++) a.a[j] = rnd01() - 0.5;
    assert_int_equal(tl_shapley_exact(20, additive_fn, &a, phi), TL_SHAPLEY_OK);
    check_vec(phi, a.a, 20, TOL, "additive n=20");
}

/* ---- sampling ------------------------------------------------------------------ */

static void test_sampled_vs_exact(void **state)
{
    (void)state;
    const int samples = 4000;          /* 2000 antithetic pairs */
    const double zmax_allowed = 4.0;
    double z2 = 0, zmax = 0;
    int nz = 0;
    for (int n = 13; n <= 20; n++) {
        hash_game h = {.key = 0x9000u + (uint64_t)n};
        double exact[20], phi[20], se[20];
        assert_int_equal(tl_shapley_exact(n, hash_fn, &h, exact), TL_SHAPLEY_OK);
        h.evals = 0;
        assert_int_equal(tl_shapley_sampled(n, samples, 42 + (uint64_t)n, hash_fn, &h, phi, se),
                         TL_SHAPLEY_OK);
        assert_int_equal(h.evals, 2 + 2L * (n - 1) * (samples / 2));
        double vn = hash_value(h.key, ((uint64_t)1 << n) - 1);
        check_near(sum(phi, n), vn, TOL, "sampled efficiency n", n);
        for (int i = 0; i < n; i++) {
            assert_true(se[i] > 0 && isfinite(se[i]));
            double z = (phi[i] - exact[i]) / se[i];
            if (!(fabs(z) <= zmax_allowed))
                fail_msg("n=%d player %d: sampled %.6f, exact %.6f, se %.6f, |z| = %.2f > %.1f", n,
                         i, phi[i], exact[i], se[i], fabs(z), zmax_allowed);
            z2 += z * z;
            if (fabs(z) > zmax) zmax = fabs(z);
            nz++;
        }
    }
    /* Standard errors calibrated: the errors' RMS in units of se is about 1. A standard
     * error inflated (or shrunk) by 30% fails here even if the 4-se test passes. */
    double rms = sqrt(z2 / nz);
    printf("shapley sampled: n=13..20, %d permutations each, %d players: max |err|/se = %.2f "
           "(tolerance 4), rms = %.2f (allowed 0.7..1.3)\n",
           samples, nz, zmax, rms);
    assert_true(rms > 0.7 && rms < 1.3);
}

/* Every marginal of an additive game is a[j]: the estimate is exact and se is 0. */
static void test_sampled_additive(void **state)
{
    (void)state;
    const int ns[3] = {2, 30, 64};
    for (int t = 0; t < 3; t++) {
        additive_game a = {.n = ns[t], .c0 = -0.125};
        for (int j = 0; j < a.n; j++) a.a[j] = rnd01() - 0.3;
        double phi[64], se[64];
        assert_int_equal(tl_shapley_sampled(a.n, 101, 7, additive_fn, &a, phi, se), TL_SHAPLEY_OK);
        assert_int_equal(a.bad_masks, 0);
        assert_true(a.max_count <= TL_SHAPLEY_BATCH);
        assert_int_equal(a.evals, 2 + 2L * (a.n - 1) * 51);     /* 101 -> 51 pairs */
        check_vec(phi, a.a, a.n, TOL, "sampled additive");
        for (int j = 0; j < a.n; j++) check_near(se[j], 0, 1e-12, "se additive", j);
    }
}

static void test_sampled_glove(void **state)
{
    (void)state;
    table_game g;
    tg_init(&g, 3, glove_v);
    double phi[3], se[3];
    assert_int_equal(tl_shapley_sampled(3, 20000, 1, table_fn, &g, phi, se), TL_SHAPLEY_OK);
    assert_int_equal(g.bad_masks, 0);
    const double want[3] = {2.0 / 3, 1.0 / 6, 1.0 / 6};
    for (int i = 0; i < 3; i++) {
        assert_true(se[i] > 0 && se[i] < 0.01);
        check_near(phi[i], want[i], 4 * se[i], "sampled glove", i);
    }
    check_near(sum(phi, 3), 1.0, TOL, "sampled glove efficiency", 0);
}

static void test_sampled_deterministic(void **state)
{
    (void)state;
    hash_game h = {.key = 77};
    double p1[16], s1[16], p2[16], s2[16], p3[16];
    assert_int_equal(tl_shapley_sampled(16, 300, 123, hash_fn, &h, p1, s1), TL_SHAPLEY_OK);
    assert_int_equal(tl_shapley_sampled(16, 300, 123, hash_fn, &h, p2, s2), TL_SHAPLEY_OK);
    assert_memory_equal(p1, p2, sizeof(p1));
    assert_memory_equal(s1, s2, sizeof(s1));
    assert_int_equal(tl_shapley_sampled(16, 300, 124, hash_fn, &h, p3, NULL), TL_SHAPLEY_OK);
    int differ = 0;
    for (int i = 0; i < 16; i++) differ |= p1[i] != p3[i];
    assert_true(differ);
}

static void test_sampled_edges(void **state)
{
    (void)state;
    double phi[3], se[3];
    /* n = 1: exact, se 0 */
    const double one_v[2] = {0.2, 0.9};
    table_game g;
    tg_init(&g, 1, one_v);
    assert_int_equal(tl_shapley_sampled(1, 10, 5, table_fn, &g, phi, se), TL_SHAPLEY_OK);
    check_near(phi[0], 0.7, 1e-15, "n=1 phi", 0);
    check_near(se[0], 0, 0, "n=1 se", 0);
    /* one pair (samples 1 or 2): se unknown -> +inf, efficiency still exact */
    for (int samples = 1; samples <= 2; samples++) {
        tg_init(&g, 3, glove_v);
        assert_int_equal(tl_shapley_sampled(3, samples, 9, table_fn, &g, phi, se), TL_SHAPLEY_OK);
        assert_int_equal(g.evals, 2 + 2 * 2);
        for (int i = 0; i < 3; i++) assert_true(isinf(se[i]) && se[i] > 0);
        check_near(sum(phi, 3), 1.0, TOL, "one pair efficiency", samples);
    }
}

/* ---- removal ------------------------------------------------------------------- */

static void test_removal(void **state)
{
    (void)state;
    double out[3];
    table_game g;
    tg_init(&g, 2, two_v);
    assert_int_equal(tl_removal(2, table_fn, &g, out), TL_SHAPLEY_OK);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.evals, 3);
    const double want2[2] = {0.25 - 0.05, 0.25 - 0.10};
    check_vec(out, want2, 2, 1e-15, "removal two players");

    /* glove: without the left glove nothing is left (1); either right glove is replaceable (0) */
    tg_init(&g, 3, glove_v);
    assert_int_equal(tl_removal(3, table_fn, &g, out), TL_SHAPLEY_OK);
    const double want3[3] = {1, 0, 0};
    check_vec(out, want3, 3, 0, "removal glove");

    additive_game a = {.n = 64, .c0 = 1};
    for (int j = 0; j < 64; j++) a.a[j] = (j + 1) / 128.0;
    double out64[64];
    assert_int_equal(tl_removal(64, additive_fn, &a, out64), TL_SHAPLEY_OK);
    check_vec(out64, a.a, 64, TOL, "removal additive n=64");
}

/* ---- normalisation ------------------------------------------------------------- */

static void test_normalise(void **state)
{
    (void)state;
    double out[4];
    const double raw[2] = {0.15, 0.10};
    assert_int_equal(tl_credits_normalise(2, raw, out, 0), 1);
    const double want[2] = {0.6, 0.4};
    check_vec(out, want, 2, 1e-15, "normalise");

    /* default: a negative credit gets 0, the others share the positive part */
    const double neg[3] = {0.3, -0.1, 0.05};
    assert_int_equal(tl_credits_normalise(3, neg, out, 0), 1);
    const double wantn[3] = {0.3 / 0.35, 0, 0.05 / 0.35};
    check_vec(out, wantn, 3, 1e-15, "normalise with a negative credit");
    check_near(sum(out, 3), 1, 1e-15, "normalised sum", 0);
    /* signed: shares of the absolute mass, the negative kept */
    assert_int_equal(tl_credits_normalise(3, neg, out, 1), 1);
    const double wants[3] = {0.3 / 0.45, -0.1 / 0.45, 0.05 / 0.45};
    check_vec(out, wants, 3, 1e-15, "signed shares");
    /* gains and losses that nearly cancel: the raw total is 1e-4, the shares stay bounded
     * (dividing by the total would give 2001 and -2000) */
    const double cancel_[2] = {0.2001, -0.2};
    assert_int_equal(tl_credits_normalise(2, cancel_, out, 0), 1);
    check_near(out[0], 1, 0, "near cancel", 0);
    check_near(out[1], 0, 0, "near cancel", 1);
    assert_int_equal(tl_credits_normalise(2, cancel_, out, 1), 1);
    assert_true(fabs(out[0]) <= 1 && fabs(out[1]) <= 1);

    /* no gain worth sharing: returns 0, out untouched */
    const double zero[3] = {0, 0, 0}, allneg[3] = {-0.1, -0.3, 0}, tiny[2] = {4e-7, 5e-7},
                 nan_[2] = {NAN, 1}, inf_[2] = {INFINITY, 1};
    const double *bad[5] = {zero, allneg, tiny, nan_, inf_};
    const int badn[5] = {3, 3, 2, 2, 2};
    for (int t = 0; t < 5; t++) {
        for (int j = 0; j < 4; j++) out[j] = -7;
        assert_int_equal(tl_credits_normalise(badn[t], bad[t], out, 0), 0);
        for (int j = 0; j < 4; j++) check_near(out[j], -7, 0, "untouched", t);
    }
    /* at the threshold it is normalised */
    const double small[2] = {5e-7, 5e-7};
    assert_int_equal(tl_credits_normalise(2, small, out, 0), 1);
    check_near(out[0], 0.5, 1e-15, "small total", 0);
    assert_int_equal(tl_credits_normalise(0, raw, out, 0), 0);

    /* random vectors, in place: sum to 1 */
    for (int rep = 0; rep < 200; rep++) {
        int n = 1 + rnd_below(50);
        double x[50], copy[50];
        for (int j = 0; j < n; j++) x[j] = copy[j] = rnd01() - 0.2;
        double pos = 0;
        for (int j = 0; j < n; j++) pos += fmax(copy[j], 0);
        int rc = tl_credits_normalise(n, x, x, 0);
        assert_int_equal(rc, pos >= TL_CREDITS_MIN_MASS);
        if (!rc) continue;
        check_near(sum(x, n), 1, 1e-12, "random normalised sum", rep);
        for (int j = 0; j < n; j++) {
            check_near(x[j], fmax(copy[j], 0) / pos, 1e-15, "in place", j);
            assert_true(x[j] >= 0 && x[j] <= 1);
        }
    }
}

/* ---- grouped ------------------------------------------------------------------- */

static void test_grouped_singletons(void **state)
{
    (void)state;
    for (int n = 1; n <= 12; n++) {
        double *v = random_table(n, 1), exact[12], grouped[12];
        int group_of[12];
        for (int j = 0; j < n; j++) group_of[j] = j;
        for (int j = n - 1; j > 0; j--) { /* group ids in a random order */
            int r = rnd_below(j + 1), t = group_of[j];
            group_of[j] = group_of[r];
            group_of[r] = t;
        }
        assert_int_equal(exact_table(n, v, exact), TL_SHAPLEY_OK);
        table_game g;
        tg_init(&g, n, v);
        assert_int_equal(tl_shapley_grouped(n, group_of, n, table_fn, &g, grouped), TL_SHAPLEY_OK);
        assert_int_equal(g.bad_masks, 0);
        check_vec(grouped, exact, n, TOL, "grouped singletons");
        free(v);
    }
}

/* Separable game with symmetric members: v(S) = sum over groups g of h_g(|S cap g|). */
typedef struct sep_game {
    int n, n_groups;
    const int *group_of;
    double h[12][65];
    long bad_masks;
} sep_game;

static void sep_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    sep_game *g = arg;
    for (int k = 0; k < count; k++) {
        int cnt[12] = {0};
        if (g->n < 64 && (masks[k] >> g->n)) g->bad_masks++;
        for (int j = 0; j < g->n; j++)
            if ((masks[k] >> j) & 1) cnt[g->group_of[j]]++;
        double s = 0;
        for (int gi = 0; gi < g->n_groups; gi++) s += g->h[gi][cnt[gi]];
        v[k] = s;
    }
}

static void test_grouped_symmetric(void **state)
{
    (void)state;
    /* 10 players in 4 interleaved groups of sizes 3, 1, 4, 2 */
    const int group_of[10] = {0, 2, 1, 2, 0, 3, 2, 0, 3, 2};
    const int size[4] = {3, 1, 4, 2};
    sep_game sg = {.n = 10, .n_groups = 4, .group_of = group_of};
    for (int gi = 0; gi < 4; gi++)
        for (int c = 1; c <= size[gi]; c++) sg.h[gi][c] = rnd01() - 0.25;
    double exact[10], grouped[10];
    assert_int_equal(tl_shapley_exact(10, sep_fn, &sg, exact), TL_SHAPLEY_OK);
    assert_int_equal(tl_shapley_grouped(10, group_of, 4, sep_fn, &sg, grouped), TL_SHAPLEY_OK);
    assert_int_equal(sg.bad_masks, 0);
    check_vec(grouped, exact, 10, TOL, "grouped symmetric");
    for (int j = 0; j < 10; j++) /* and both are h_g(|g|)/|g| */
        check_near(exact[j], sg.h[group_of[j]][size[group_of[j]]] / size[group_of[j]], TOL,
                   "separable value", j);

    /* more players than the exact path takes: 40 players in 8 groups of 5 */
    int g40[40], sz40[8] = {0};
    for (int j = 0; j < 40; j++) g40[j] = (j * 3) % 8, sz40[g40[j]]++;
    sep_game big = {.n = 40, .n_groups = 8, .group_of = g40};
    for (int gi = 0; gi < 8; gi++)
        for (int c = 1; c <= sz40[gi]; c++) big.h[gi][c] = rnd01();
    double p40[40];
    assert_int_equal(tl_shapley_grouped(40, g40, 8, sep_fn, &big, p40), TL_SHAPLEY_OK);
    assert_int_equal(big.bad_masks, 0);
    for (int j = 0; j < 40; j++)
        check_near(p40[j], big.h[g40[j]][sz40[g40[j]]] / sz40[g40[j]], TOL, "grouped n=40", j);
}

/* The documented loss: v(S) = 1 iff C and (A or B). Shapley (1/6, 1/6, 2/3); grouped
 * {A,B},{C}: the group game is a two-player unanimity game (1/2, 1/2), split equally:
 * (1/4, 1/4, 1/2) -- the Owen value, not the Shapley value. */
static void test_grouped_is_not_shapley(void **state)
{
    (void)state;
    double v[8];
    for (int s = 0; s < 8; s++) v[s] = ((s & 4) && (s & 3)) ? 1 : 0;
    const int group_of[3] = {0, 0, 1};
    double exact[3], grouped[3];
    assert_int_equal(exact_table(3, v, exact), TL_SHAPLEY_OK);
    table_game g;
    tg_init(&g, 3, v);
    assert_int_equal(tl_shapley_grouped(3, group_of, 2, table_fn, &g, grouped), TL_SHAPLEY_OK);
    const double want_exact[3] = {1.0 / 6, 1.0 / 6, 2.0 / 3}, want_grouped[3] = {0.25, 0.25, 0.5};
    check_vec(exact, want_exact, 3, 1e-15, "exact");
    check_vec(grouped, want_grouped, 3, 1e-15, "grouped");
}

static void test_grouped_empty_group_and_asymmetric(void **state)
{
    (void)state;
    /* group 1 has no member; members of group 0 are not symmetric: equal split anyway */
    double *v = random_table(5, 1), grouped[5];
    const int group_of[5] = {0, 2, 0, 2, 3};
    table_game g;
    tg_init(&g, 5, v);
    assert_int_equal(tl_shapley_grouped(5, group_of, 4, table_fn, &g, grouped), TL_SHAPLEY_OK);
    assert_int_equal(g.bad_masks, 0);
    assert_int_equal(g.evals, 16); /* 2^4 group coalitions */
    check_near(grouped[0], grouped[2], 0, "equal split", 0);
    check_near(grouped[1], grouped[3], 0, "equal split", 1);
    check_near(sum(grouped, 5), v[31], TOL, "grouped efficiency", 0);
    free(v);
}

/* ---- errors -------------------------------------------------------------------- */

static void nan_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    uint64_t bad = *(const uint64_t *)arg;
    for (int k = 0; k < count; k++) v[k] = masks[k] == bad ? NAN : (double)(masks[k] & 7);
}

static void test_errors(void **state)
{
    (void)state;
    double out[64], se[64];
    table_game g;
    tg_init(&g, 2, two_v);
    assert_int_equal(tl_shapley_exact(0, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_exact(TL_SHAPLEY_EXACT_LIMIT + 1, table_fn, &g, out),
                     TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_exact(2, NULL, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_exact(2, table_fn, &g, NULL), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_sampled(0, 10, 1, table_fn, &g, out, se), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_sampled(65, 10, 1, table_fn, &g, out, se), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_sampled(2, 0, 1, table_fn, &g, out, se), TL_SHAPLEY_EARG);
    assert_int_equal(tl_removal(0, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_removal(65, table_fn, &g, out), TL_SHAPLEY_EARG);
    const int group_of[3] = {0, 1, 2}, bad_hi[3] = {0, 1, 3}, bad_lo[3] = {0, -1, 1};
    assert_int_equal(tl_shapley_grouped(3, group_of, TL_SHAPLEY_EXACT_MAX + 1, table_fn, &g, out),
                     TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_grouped(3, group_of, 0, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_grouped(3, bad_hi, 3, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_grouped(3, bad_lo, 3, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(tl_shapley_grouped(3, NULL, 3, table_fn, &g, out), TL_SHAPLEY_EARG);
    assert_int_equal(g.calls, 0); /* never called on bad arguments */

    /* a NaN from the game is reported, whichever coalition it is */
    for (uint64_t bad = 0; bad < 8; bad++) {
        assert_int_equal(tl_shapley_exact(3, nan_fn, &bad, out), TL_SHAPLEY_ENONFINITE);
        assert_int_equal(tl_shapley_grouped(3, group_of, 3, nan_fn, &bad, out),
                         TL_SHAPLEY_ENONFINITE);
        assert_int_equal(tl_shapley_sampled(3, 50, 3, nan_fn, &bad, out, se),
                         TL_SHAPLEY_ENONFINITE);
    }
    uint64_t bad = 7;
    assert_int_equal(tl_removal(3, nan_fn, &bad, out), TL_SHAPLEY_ENONFINITE);
    bad = 3;
    assert_int_equal(tl_removal(3, nan_fn, &bad, out), TL_SHAPLEY_ENONFINITE);
    bad = 1; /* not asked for by removal */
    assert_int_equal(tl_removal(3, nan_fn, &bad, out), TL_SHAPLEY_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_players),
        cmocka_unit_test(test_glove),
        cmocka_unit_test(test_majority_with_offset),
        cmocka_unit_test(test_efficiency),
        cmocka_unit_test(test_symmetry),
        cmocka_unit_test(test_null_player),
        cmocka_unit_test(test_additivity),
        cmocka_unit_test(test_matches_permutation_definition),
        cmocka_unit_test(test_exact_batches),
        cmocka_unit_test(test_exact_twenty),
        cmocka_unit_test(test_sampled_vs_exact),
        cmocka_unit_test(test_sampled_additive),
        cmocka_unit_test(test_sampled_glove),
        cmocka_unit_test(test_sampled_deterministic),
        cmocka_unit_test(test_sampled_edges),
        cmocka_unit_test(test_removal),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_grouped_singletons),
        cmocka_unit_test(test_grouped_symmetric),
        cmocka_unit_test(test_grouped_is_not_shapley),
        cmocka_unit_test(test_grouped_empty_group_and_asymmetric),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
