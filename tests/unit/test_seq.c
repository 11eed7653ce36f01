/*
 * test_seq.c -- the sequence model (model/seq.h): its gradient against finite
 * differences, a coalition's logit against the same coalition grown one touchpoint at a
 * time, additivity when the attention carries nothing, and that it learns an effect of
 * order that no sum of per-touchpoint contributions can represent.
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

#include "lib/util.h"
#include "model/seq.h"
#include "model/shapley.h"
#include "fixtures.h"

#define HOUR 3600000LL

static tl_seq *model(int dim, uint64_t seed)
{
    tl_seq_cfg cfg = {.dim = dim, .buckets = 64, .lr = 0.1, .l2 = 0, .seed = seed};
    char err[256];
    tl_seq *m = tl_seq_new(&cfg, err, sizeof(err));
    if (!m) fail_msg("%s", err);
    return m;
}

/* A journey of n touchpoints on channels and categories drawn from a few, the last one
 * hour before `at`, each older one up to a day before the next. */
static void journey(uint64_t *rng, tl_seq_tp *tps, int n, int64_t at)
{
    int64_t ts = at - HOUR;
    for (int i = n - 1; i >= 0; i--) {
        tps[i].type = (int)(fx_xorshift64(rng) % 4);
        tps[i].chan_key = 1 + fx_xorshift64(rng) % 5;
        tps[i].cat_key = fx_xorshift64(rng) % 3 ? 100 + fx_xorshift64(rng) % 7 : 0;
        tps[i].ts = ts;
        ts -= (int64_t)(fx_xorshift64(rng) % (24 * HOUR));
    }
}

/* Every weight made nonzero, so that no part of the gradient is trivially 0. */
static void scramble(tl_seq *m, uint64_t *rng)
{
    double *w = tl_seq_weights(m);
    for (size_t i = 0; i < tl_seq_size(m); i++)
        w[i] = ((double)(fx_xorshift64(rng) % 2001) - 1000) / 1000.0 * 0.5;
}

/* A model with every weight nonzero and a journey of n touchpoints at `at`. */
typedef struct seq_case {
    tl_seq *m;
    uint64_t rng;
    tl_seq_tp tps[20];
    int n;
    int64_t at;
} seq_case;

static void case_init(seq_case *c, int dim, uint64_t seed, int n)
{
    c->rng = seed * 31 + 1;
    c->m = model(dim, seed);
    scramble(c->m, &c->rng);
    c->n = n;
    c->at = 1700000000000LL;
    journey(&c->rng, c->tps, n, c->at);
}

static double sigmoid(double z) { return 1 / (1 + exp(-z)); }

static double full_logit(const tl_seq *m, const tl_seq_tp *tps, int n, int64_t at)
{
    tl_seq_pass *p = tl_seq_prepare(m, tps, n, at);
    double l = tl_seq_logit(p, (UINT64_C(1) << n) - 1);
    tl_seq_pass_free(p);
    return l;
}

static void test_gradient(void **state)
{
    (void)state;
    seq_case c;
    case_init(&c, 6, 3, 6);
    tl_seq *m = c.m;
    const tl_seq_tp *tps = c.tps;
    const int N = c.n;
    int64_t at = c.at;
    size_t n_w = tl_seq_size(m);
    double *grad = tl_xmalloc(n_w * sizeof(double)), *w = tl_seq_weights(m);
    tl_seq_logit_grad(m, tps, N, at, grad);
    int nonzero = 0;
    double worst = 0;
    for (size_t i = 0; i < n_w; i++) {
        double keep = w[i], h = 1e-5;
        w[i] = keep + h;
        double up = full_logit(m, tps, N, at);
        w[i] = keep - h;
        double down = full_logit(m, tps, N, at);
        w[i] = keep;
        double fd = (up - down) / (2 * h), diff = fabs(fd - grad[i]);
        if (diff > 1e-6 * (1 + fabs(fd)))
            fail_msg("weight %zu: gradient %.10g, finite difference %.10g", i, grad[i], fd);
        if (diff > worst) worst = diff;
        nonzero += grad[i] != 0;
    }
    /* type, channel, category and age rows, Wq, Wk, u, g, b and the sink all take part */
    assert_true(nonzero > 2 * 6 * 6 + 4 * 6);
    print_message("gradient: %d of %zu weights nonzero, largest difference %.2g\n", nonzero, n_w,
                  worst);
    free(grad);
    tl_seq_free(m);
}

static void test_grow_equals_logit(void **state)
{
    (void)state;
    enum {
        N = 20
    };
    seq_case c;
    case_init(&c, 8, 5, N);
    tl_seq *m = c.m;
    uint64_t rng = c.rng;
    tl_seq_pass *p = tl_seq_prepare(m, c.tps, N, c.at);
    for (int round = 0; round < 50; round++) {
        int order[N];
        for (int i = 0; i < N; i++) order[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(fx_xorshift64(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        tl_seq_grow_state *g = tl_seq_grow_init(p);
        uint64_t mask = 0;
        for (int s = 0; s < N; s++) {
            mask |= UINT64_C(1) << order[s];
            double grown = tl_seq_grow(g, order[s]), direct = tl_seq_logit(p, mask);
            if (fabs(grown - direct) > 1e-10)
                fail_msg("round %d, step %d: grown %.15g, direct %.15g", round, s, grown, direct);
        }
        tl_seq_grow_free(g);
    }
    assert_true(fabs(tl_seq_logit(p, 0) - tl_seq_weights(m)[tl_seq_size(m) - 2]) < 1e-15);
    tl_seq_pass_free(p);
    tl_seq_free(m);
}

/* With g = 0 every touchpoint's look back is worth 0, so a set's logit is the bias plus
 * the single touchpoints' parts; with g != 0 it is not (the attention is what makes the
 * difference). */
static void test_additive_without_attention(void **state)
{
    (void)state;
    enum {
        N = 8
    };
    seq_case c;
    case_init(&c, 8, 9, N);
    tl_seq *m = c.m;
    double *w = tl_seq_weights(m);
    size_t n_w = tl_seq_size(m), o_g = n_w - 2 - 8; /* g: the 8 weights before b and the sink */
    double gap_with[2];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            for (int k = 0; k < 8; k++) w[o_g + k] = 0;
        tl_seq_pass *p = tl_seq_prepare(m, c.tps, N, c.at);
        double b = tl_seq_logit(p, 0), worst = 0;
        for (uint64_t mask = 1; mask < (UINT64_C(1) << N); mask++) {
            double sum = b;
            for (int i = 0; i < N; i++)
                if (mask >> i & 1) sum += tl_seq_logit(p, UINT64_C(1) << i) - b;
            double gap = fabs(tl_seq_logit(p, mask) - sum);
            if (gap > worst) worst = gap;
        }
        gap_with[pass] = worst;
        tl_seq_pass_free(p);
        if (pass == 0) scramble(m, &c.rng);
    }
    if (gap_with[0] > 1e-12) fail_msg("g = 0, yet a set is %.3g off its parts", gap_with[0]);
    if (gap_with[1] < 1e-3) fail_msg("g != 0, yet every set is the sum of its parts");
    tl_seq_free(m);
}

/* Two impressions, channel A and channel B, each between 0 and 2 hours old: a purchase
 * follows when A came first, never when B did. Every touchpoint's own part depends on its
 * channel and age alone, so a sum of such parts gives both orders the same logit whenever
 * the ages are swapped: only the look back can tell them apart. */
static void order_example(uint64_t *rng, tl_seq_tp tps[2], int a_first, int64_t at)
{
    int64_t older = at - HOUR - (int64_t)(fx_xorshift64(rng) % HOUR);
    int64_t newer = older + 1 + (int64_t)(fx_xorshift64(rng) % (uint64_t)(at - older - 1));
    tps[0] = (tl_seq_tp){.type = 1, .chan_key = a_first ? 11 : 22, .ts = older};
    tps[1] = (tl_seq_tp){.type = 1, .chan_key = a_first ? 22 : 11, .ts = newer};
}

static void test_learns_order(void **state)
{
    (void)state;
    uint64_t rng = 2024;
    tl_seq *m = model(8, 1);
    int64_t at = 1700000000000LL;
    tl_seq_tp tps[2];
    for (int i = 0; i < 20000; i++) {
        int a_first = (int)(fx_xorshift64(&rng) & 1);
        order_example(&rng, tps, a_first, at);
        tl_seq_learn(m, tps, 2, at, 0, a_first, 1, NULL);
    }
    double p_ab = 0, p_ba = 0;
    enum {
        TRIALS = 500
    };
    for (int i = 0; i < TRIALS; i++) {
        for (int a_first = 0; a_first < 2; a_first++) {
            order_example(&rng, tps, a_first, at);
            double z = full_logit(m, tps, 2, at);
            *(a_first ? &p_ab : &p_ba) += sigmoid(z) / TRIALS;
        }
    }
    print_message("p(purchase): A then B %.3f, B then A %.3f\n", p_ab, p_ba);
    if (!(p_ab > 0.8 && p_ba < 0.2))
        fail_msg("the order is not learned: A then B %.3f, B then A %.3f", p_ab, p_ba);
    tl_seq_free(m);
}

/* The game as tl_shapley_* call it: the same values as scoring every coalition from
 * nothing, whether the coalitions come in permutation runs (sampled) or in mask order
 * (exact). */
static void direct_game(void *arg, const uint64_t *masks, int count, double *v)
{
    const tl_seq_game *gm = arg;
    for (int k = 0; k < count; k++) v[k] = sigmoid(gm->offset + tl_seq_logit(gm->p, masks[k]));
}

static void test_game(void **state)
{
    (void)state;
    enum {
        N = 14
    };
    seq_case c;
    case_init(&c, 8, 13, N);
    tl_seq_pass *p = tl_seq_prepare(c.m, c.tps, N, c.at);
    double a[N], b[N], se[N];
    for (int exact = 0; exact < 2; exact++) {
        tl_seq_game fast, slow;
        tl_seq_game_init(&fast, p, -3.0);
        tl_seq_game_init(&slow, p, -3.0);
        int r1 = exact ? tl_shapley_exact(N, tl_seq_game_fn, &fast, a)
                       : tl_shapley_sampled(N, 64, 5, tl_seq_game_fn, &fast, a, se);
        int r2 = exact ? tl_shapley_exact(N, direct_game, &slow, b)
                       : tl_shapley_sampled(N, 64, 5, direct_game, &slow, b, se);
        assert_int_equal(r1, TL_SHAPLEY_OK);
        assert_int_equal(r2, TL_SHAPLEY_OK);
        for (int i = 0; i < N; i++)
            if (fabs(a[i] - b[i]) > 1e-12)
                fail_msg("%s, touchpoint %d: %.15g against %.15g", exact ? "exact" : "sampled", i,
                         a[i], b[i]);
        tl_seq_game_fini(&fast);
    }
    /* The table of every coalition, against scoring each from nothing. */
    double *table = tl_xmalloc(((size_t)1 << N) * sizeof(double));
    tl_seq_table(p, -3.0, table);
    for (uint64_t mask = 0; mask < (UINT64_C(1) << N); mask++) {
        double want = sigmoid(-3.0 + tl_seq_logit(p, mask));
        if (fabs(table[mask] - want) > 1e-13)
            fail_msg("table, mask %#llx: %.15g against %.15g", (unsigned long long)mask,
                     table[mask], want);
    }
    free(table);
    tl_seq_pass_free(p);
    tl_seq_free(c.m);
}

static void test_config_refused(void **state)
{
    (void)state;
    static const tl_seq_cfg bad[] = {
        {.dim = 3, .buckets = 64, .lr = 0.1},           {.dim = 65, .buckets = 64, .lr = 0.1},
        {.dim = 8, .buckets = 100, .lr = 0.1},          {.dim = 8, .buckets = 64, .lr = 0},
        {.dim = 8, .buckets = 64, .lr = 0.1, .l2 = -1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        tl_seq *m = tl_seq_new(&bad[i], err, sizeof(err));
        if (m || !strstr(err, "sequence model")) fail_msg("configuration %zu: accepted", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_grow_equals_logit),
        cmocka_unit_test(test_additive_without_attention),
        cmocka_unit_test(test_learns_order),
        cmocka_unit_test(test_game),
        cmocka_unit_test(test_config_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
