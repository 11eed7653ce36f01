/*
 * test_markov.c -- model/markov.c: removal effects of hand-computed chains, the collapse
 * of repeated states, a null player, the LU identity against removal by definition on
 * random chains and on a chain that needs pivoting, merge and copy, encode/decode (round trip and corruption), errors.
 *
 * The three-channel chain with a loop (test_hand_three_channels), paths with weights
 * (conversions, nulls, value):
 *
 *     P1  A > B > A   (1, 1, 10)
 *     P2  B > C       (2, 2, 6)
 *     P3  C           (0, 4, 0)
 *
 * Transition weights (each path's conversions + nulls on every step):
 *     start: A 2, B 4, C 4          (out 10)
 *     A:     B 2, conv 1, null 1    (out 4)
 *     B:     A 2, C 4               (out 6)
 *     C:     conv 2, null 6         (out 8)
 * so Q: start->A .2, start->B .4, start->C .4; A->B 1/2; B->A 1/3, B->C 2/3; and the
 * one-step conversion probabilities r_A = 1/4, r_C = 1/4.
 *
 * Conversion probabilities b (b = r + Q b):
 *     b_C = 1/4
 *     b_A = 1/4 + b_B / 2,  b_B = b_A / 3 + (2/3)(1/4)  =>  b_A = 2/5, b_B = 3/10
 *     b_s = .2 (2/5) + .4 (3/10) + .4 (1/4) = .08 + .12 + .10 = 3/10
 * Removing a channel makes it absorbing (null):
 *     without A: b_B = (2/3)(1/4) = 1/6, b_s = .4/6 + .4/4 = 1/6     RE_A = (3/10 - 1/6)/(3/10) = 4/9
 *     without B: b_A = 1/4,               b_s = .2/4 + .4/4 = 3/20    RE_B = 1/2
 *     without C: b_A = 1/4 + b_B/2, b_B = b_A/3 => b_A = 3/10, b_B = 1/10,
 *                b_s = .06 + .04 = 1/10                                RE_C = 2/3
 * Identity check for A: P(reach A from start) = .2 + .4 (1/3) = 1/3, and
 * (1/3)(2/5)/(3/10) = 4/9.
 * Sum RE = 4/9 + 1/2 + 2/3 = 29/18; 3 conversions, value 16:
 *     Markov conversions A 3 (8/29) = 24/29, B 27/29, C 36/29;  value A 128/29, B 144/29,
 *     C 192/29.
 * Rule-based: first A (1, 10), B (2, 6); last A (1, 10), C (2, 6); linear (1/3 per touch
 * of P1, 1/2 per touch of P2): A 2/3 (20/3), B 1/3 + 1 (10/3 + 3), C 1 (3).
 *
 * Order 2 (test_order2), paths (conversions, nulls):
 *
 *     a > b (1, 0);  b > a (0, 1);  c > b (1, 0);  c (0, 1);  a > a > b (0, 1)
 *
 * States are windows of two touches of the path as given: ab, ba, cb, c (a path shorter
 * than the order is one state) and aa -> ab. start goes to ab, ba, cb, c, aa with weight 1
 * each (out 5); ab: conv 1, null 1; aa -> ab. So b_ab = b_aa = 1/2, b_cb = 1, b_ba = b_c =
 * 0, and b_s = (1/2 + 1 + 1/2) / 5 = 2/5. Removing a channel removes every state it is in:
 *     without a (ab, ba, aa): b_s = 1/5        RE_a = 1/2
 *     without b (ab, ba, cb): b_s = 0          RE_b = 1
 *     without c (cb, c):      b_s = 1/5        RE_c = 1/2
 * Sum 2, 2 conversions: Markov conversions a 1/2, b 1, c 1/2. Five states in the chain
 * (reading the windows of the collapsed path a > b instead would make four).
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
#include "model/markov.h"
#include "fixtures.h"

#define EPS 1e-12

static void add(tl_markov *m, const char *path, double c, double n, double v)
{
    char buf[512], *save = NULL;
    const char *states[64];
    int k = 0;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *t = strtok_r(buf, " >", &save); t; t = strtok_r(NULL, " >", &save)) states[k++] = t;
    assert_int_equal(tl_markov_add_path(m, states, k, c, n, v), TL_MARKOV_OK);
}

static const tl_markov_channel *chan(const tl_markov_result *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->channels[i].name, name)) return &r->channels[i];
    fail_msg("no channel %s", name);
    return NULL;
}

static void near(double got, double want)
{
    if (fabs(got - want) > EPS) fail_msg("got %.17g, want %.17g", got, want);
}

/* The result of m; free it with tl_markov_result_free. */
static tl_markov_result solve(const tl_markov *m)
{
    tl_markov_result r;
    assert_int_equal(tl_markov_removal_effects(m, &r), TL_MARKOV_OK);
    return r;
}

/* A channel's figures, in the order of tl_markov_channel. */
enum {
    FIGURES = 9
};
static const char *const figure_name[FIGURES] = {
    "removal_effect",    "markov_conversions", "markov_value",
    "first_conversions", "first_value",        "last_conversions",
    "last_value",        "linear_conversions", "linear_value"};

typedef struct want_channel {
    const char *name;
    double fig[FIGURES];
} want_channel;

/* Every figure of each of the n channels in want (within EPS). */
static void expect_channels(const tl_markov_result *r, const want_channel *want, int n)
{
    for (int k = 0; k < n; k++) {
        const tl_markov_channel *c = chan(r, want[k].name);
        const double got[FIGURES] = {
            c->removal_effect,    c->markov_conversions, c->markov_value,
            c->first_conversions, c->first_value,        c->last_conversions,
            c->last_value,        c->linear_conversions, c->linear_value};
        for (int f = 0; f < FIGURES; f++)
            if (fabs(got[f] - want[k].fig[f]) > EPS)
                fail_msg("%s %s: got %.17g, want %.17g", want[k].name, figure_name[f], got[f],
                         want[k].fig[f]);
    }
}

/* The removal effects of the channels named (space-separated), against want[]. */
static void expect_removal(const tl_markov_result *r, const char *names, const double *want)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", names);
    int k = 0;
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save), k++) {
        double got = chan(r, t)->removal_effect;
        if (fabs(got - want[k]) > EPS)
            fail_msg("%s removal_effect: got %.17g, want %.17g", t, got, want[k]);
    }
}

/* The paths of the three-channel chain of the comment at the top, added to m. */
static void add_three_channels(tl_markov *m)
{
    add(m, "A > B > A", 1, 1, 10);
    add(m, "B > C", 2, 2, 6);
    add(m, "C", 0, 4, 0);
}

static tl_markov *three_channels(void)
{
    tl_markov *m = tl_markov_new();
    add_three_channels(m);
    return m;
}

static void test_hand_three_channels(void **state)
{
    (void)state;
    tl_markov *m = three_channels();
    tl_markov_result r = solve(m);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.channels[0].name, "A");   /* interning order */
    assert_string_equal(r.channels[1].name, "B");
    assert_string_equal(r.channels[2].name, "C");
    near(r.conversion_probability, 0.3);
    near(r.conversions, 3);
    near(r.nulls, 7);
    near(r.value, 16);
    assert_int_equal(r.paths, 3);
    /* removal effect, Markov conversions and value, first, last, linear (conversions,
     * value): the figures of the comment at the top */
    static const want_channel want[] = {
        {"A", {4.0 / 9, 24.0 / 29, 128.0 / 29, 1, 10, 1, 10, 2.0 / 3, 20.0 / 3}},
        {"B", {0.5, 27.0 / 29, 144.0 / 29, 2, 6, 0, 0, 4.0 / 3, 10.0 / 3 + 3}},
        {"C", {2.0 / 3, 36.0 / 29, 192.0 / 29, 0, 0, 2, 6, 1, 3}},
    };
    expect_channels(&r, want, 3);
    tl_markov_result_free(&r);
    tl_markov_destroy(m);
}

/* The worked example of docs/attribution.md:
 *     A > B (1 conversion, 1 null, value 10), B (0, 2, 0), A (1, 1, 5)
 * start: A 4/6, B 2/6; A: B 1/2, conv 1/4, null 1/4; B: conv 1/4, null 3/4.
 * b_B = 1/4, b_A = 1/4 + 1/8 = 3/8, b_s = (2/3)(3/8) + (1/3)(1/4) = 1/3.
 * Without A: b_s = (1/3)(1/4) = 1/12, RE_A = 3/4. Without B: b_A = 1/4, b_s = 1/6,
 * RE_B = 1/2. Credits 2 (3/4)/(5/4) = 6/5 and 4/5; value 9 and 6. */
static void test_hand_two_channels(void **state)
{
    (void)state;
    tl_markov *m = tl_markov_new();
    add(m, "A > B", 1, 1, 10);
    add(m, "B", 0, 2, 0);
    add(m, "A", 1, 1, 5);
    tl_markov_result r = solve(m);
    near(r.conversion_probability, 1.0 / 3);
    /* first touch: A twice (10 + 5); last touch: B (10), A (5); linear: A 1/2 + 1 (5 + 5),
     * B 1/2 (5) */
    static const want_channel want[] = {
        {"A", {0.75, 1.2, 9, 2, 15, 1, 5, 1.5, 10}},
        {"B", {0.5, 0.8, 6, 0, 0, 1, 10, 0.5, 5}},
    };
    expect_channels(&r, want, 2);
    tl_markov_result_free(&r);
    tl_markov_destroy(m);
}

/* a > a > b > b > b is a > b for the chain (same removal effects, bit for bit), while
 * the linear credit counts every touch as given (2/5 and 3/5). */
static void test_collapse(void **state)
{
    (void)state;
    tl_markov *m1 = tl_markov_new(), *m2 = tl_markov_new();
    add(m1, "a > a > b > b > b", 1, 1, 5);
    add(m1, "b > b", 0, 3, 0);
    add(m1, "b > a > a", 2, 1, 4);
    add(m2, "a > b", 1, 1, 5);
    add(m2, "b", 0, 3, 0);
    add(m2, "b > a", 2, 1, 4);
    tl_markov_result r1 = solve(m1), r2 = solve(m2);
    assert_true(r1.conversion_probability == r2.conversion_probability);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(r1.channels[i].name, r2.channels[i].name);
        assert_true(r1.channels[i].removal_effect == r2.channels[i].removal_effect);
        assert_true(r1.channels[i].markov_conversions == r2.channels[i].markov_conversions);
    }
    /* linear: path 1 gives a 2/5, b 3/5; path 3 gives b 1/3, a 2/3 */
    near(chan(&r1, "a")->linear_conversions, 2.0 / 5 + 2 * 2.0 / 3);
    near(chan(&r1, "b")->linear_conversions, 3.0 / 5 + 2 * 1.0 / 3);
    near(chan(&r2, "a")->linear_conversions, 1.0 / 2 + 2 * 1.0 / 2);
    /* a single channel repeated is one visit: start -> x -> conversion */
    tl_markov *m3 = tl_markov_new();
    add(m3, "x > x > x", 1, 3, 0);
    tl_markov_result r3 = solve(m3);
    near(r3.conversion_probability, 0.25);
    near(r3.channels[0].removal_effect, 1);
    near(r3.channels[0].markov_conversions, 1);
    tl_markov_result_free(&r1);
    tl_markov_result_free(&r2);
    tl_markov_result_free(&r3);
    tl_markov_destroy(m1);
    tl_markov_destroy(m2);
    tl_markov_destroy(m3);
}

/* D only ever leads to null: removal effect 0, no credit, and the others' removal
 * effects (P(visit j | conversion)) are unchanged, while p(conversion) drops from 3/10
 * to 3/13 (start now leaves with weight 13, 3 of it to D). */
static void test_null_player(void **state)
{
    (void)state;
    tl_markov *m = three_channels();
    add(m, "D > D", 0, 3, 0);
    tl_markov_result r = solve(m);
    assert_int_equal(r.n, 4);
    const tl_markov_channel *d = chan(&r, "D");
    assert_true(d->removal_effect == 0);
    assert_true(d->markov_conversions == 0);
    assert_true(d->markov_value == 0);
    near(r.conversion_probability, 3.0 / 13);
    expect_removal(&r, "A B C", (const double[]){4.0 / 9, 0.5, 2.0 / 3});
    near(chan(&r, "C")->markov_conversions, 36.0 / 29);
    /* a state seen only in paths of weight 0 is interned, has no row, and gets 0 */
    add(m, "E > A", 0, 0, 0);
    tl_markov_result r2 = solve(m);
    assert_int_equal(r2.n, 5);
    assert_true(chan(&r2, "E")->removal_effect == 0);
    near(chan(&r2, "A")->removal_effect, 4.0 / 9);
    tl_markov_result_free(&r);
    tl_markov_result_free(&r2);
    tl_markov_destroy(m);
}

/* A chain where LU needs row interchanges, so the diagonal of N must undo them: A always
 * goes to B and B mostly back to A, so once A is eliminated B's diagonal entry is 1/3,
 * below C's entry -1 in the same column.
 *     P1  A > B > A > B > A > B > A > B > A > B   (1, 0)   A->B 5, B->A 4, B->conv 1
 *     P2  C > B                                    (1, 0)   C->B 1, B->conv 1
 * Every journey converts (b = 1 everywhere), so RE_j = P(visit j): from B the chain
 * reaches A with probability 2/3 (B: A 4/6, conversion 2/6), hence A 1/2 + 1/2 (2/3) = 5/6,
 * B 1, C 1/2. */
static void test_pivoting(void **state)
{
    (void)state;
    tl_markov *m = tl_markov_new();
    add(m, "A > B > A > B > A > B > A > B > A > B", 1, 0, 0);
    add(m, "C > B", 1, 0, 0);
    tl_markov_result r = solve(m);
    near(r.conversion_probability, 1);
    expect_removal(&r, "A B C", (const double[]){5.0 / 6, 1, 0.5});
    tl_markov_result_free(&r);
    tl_markov_destroy(m);
}

static void test_no_conversions(void **state)
{
    (void)state;
    tl_markov *m = tl_markov_new();
    tl_markov_result r = solve(m);   /* empty */
    assert_int_equal(r.n, 0);
    assert_true(r.conversion_probability == 0);
    tl_markov_result_free(&r);
    add(m, "a > b", 0, 5, 0);
    add(m, "b", 0, 1, 0);
    r = solve(m);
    assert_int_equal(r.n, 2);
    assert_true(r.conversion_probability == 0);
    for (int i = 0; i < 2; i++) {
        assert_true(r.channels[i].removal_effect == 0);
        assert_true(r.channels[i].markov_conversions == 0);
    }
    tl_markov_result_free(&r);
    tl_markov_result_free(NULL);
    tl_markov_destroy(m);
    tl_markov_destroy(NULL);
}

/* --- the identity against the definition ------------------------------------------- */

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) { return fx_xorshift64(&rng); }

#define RN 21   /* start + 20 channels */

/* p(start -> conversion) of the chain given by weights w (RN x RN transient, start 0)
 * and wc, wn (into conversion, null), with state `removed` absorbing (-1: none), by
 * Gaussian elimination with partial pivoting. */
static double p_conv(double w[RN][RN], const double *wc, const double *wn, int removed)
{
    double a[RN][RN + 1];
    for (int i = 0; i < RN; i++) {
        double out = wc[i] + wn[i];
        for (int j = 0; j < RN; j++) out += w[i][j];
        for (int j = 0; j < RN; j++)
            a[i][j] = (i == j) - (i == removed || out == 0 ? 0 : w[i][j] / out);
        a[i][RN] = i == removed || out == 0 ? 0 : wc[i] / out;
    }
    for (int c = 0; c < RN; c++) {
        int p = c;
        for (int i = c + 1; i < RN; i++)
            if (fabs(a[i][c]) > fabs(a[p][c])) p = i;
        for (int j = 0; j <= RN; j++) {
            double t = a[c][j];
            a[c][j] = a[p][j];
            a[p][j] = t;
        }
        for (int i = 0; i < RN; i++) {
            if (i == c) continue;
            double f = a[i][c] / a[c][c];
            for (int j = c; j <= RN; j++) a[i][j] -= f * a[c][j];
        }
    }
    return a[0][RN] / a[0][0];
}

static void test_identity_vs_removal(void **state)
{
    (void)state;
    static const char *names[RN - 1] = {"c0",  "c1",  "c2",  "c3",  "c4",  "c5",  "c6",
                                        "c7",  "c8",  "c9",  "c10", "c11", "c12", "c13",
                                        "c14", "c15", "c16", "c17", "c18", "c19"};
    for (int round = 0; round < 5; round++) {
        tl_markov *m = tl_markov_new();
        double w[RN][RN] = {{0}}, wc[RN] = {0}, wn[RN] = {0};
        int idx[RN - 1];   /* name -> interning index + 1, 0 until seen */
        memset(idx, 0, sizeof(idx));
        int seen = 0;
        for (int p = 0; p < 300; p++) {
            const char *st[12];
            int len = 1 + (int)(next() % 12), ids[12];
            for (int k = 0; k < len; k++) {
                /* skewed: low channels more often, so some are rare */
                int c = (int)(next() % (RN - 1));
                if (next() % 2) c = c / 3;
                ids[k] = c;
                st[k] = names[c];
            }
            double conv = (double)(next() % 4), nul = (double)(next() % 7);
            if (next() % 5 == 0) conv = 0;
            assert_int_equal(tl_markov_add_path(m, st, len, conv, nul, conv * 2.5), TL_MARKOV_OK);
            /* the reference chain, in interning order, collapsed */
            int prev = 0;
            for (int k = 0; k < len; k++) {
                if (!idx[ids[k]]) idx[ids[k]] = ++seen;
                int t = idx[ids[k]];
                if (t != prev) w[prev][t] += conv + nul;
                prev = t;
            }
            wc[prev] += conv;
            wn[prev] += nul;
        }
        tl_markov_result r = solve(m);
        assert_int_equal(r.n, seen);
        double p = p_conv(w, wc, wn, -1);
        near(r.conversion_probability, p);
        for (int j = 1; j <= seen; j++) {
            double re = (p - p_conv(w, wc, wn, j)) / p;
            if (fabs(r.channels[j - 1].removal_effect - re) > 1e-10)
                fail_msg("round %d state %d: %.17g vs %.17g", round, j,
                         r.channels[j - 1].removal_effect, re);
        }
        tl_markov_result_free(&r);
        tl_markov_destroy(m);
    }
}

/* --- merge, copy, encoding ----------------------------------------------------------- */

static void encode(const tl_markov *m, tl_buf *b)
{
    tl_buf_clear(b);
    tl_markov_encode(m, b);
}

/* m encoded into enc and decoded (*rc set as tl_markov_decode sets it): the decoded
 * model, which encodes to the same bytes again. */
static tl_markov *decode_same(const tl_markov *m, tl_buf *enc, int *rc)
{
    encode(m, enc);
    tl_markov *d = tl_markov_decode(enc->data, enc->len, rc);
    assert_non_null(d);
    tl_buf again = {0};
    encode(d, &again);
    assert_int_equal(enc->len, again.len);
    assert_memory_equal(enc->data, again.data, enc->len);
    tl_buf_free(&again);
    return d;
}

static void test_merge_copy(void **state)
{
    (void)state;
    /* integral weights: every sum is exact, so the order of additions cannot show */
    tl_markov *all = three_channels(), *w1 = tl_markov_new(), *w2 = tl_markov_new();
    add(all, "D > A", 1, 2, 3);
    add(w1, "A > B > A", 1, 1, 10);
    add(w1, "B > C", 2, 2, 6);
    add(w2, "C", 0, 4, 0);
    add(w2, "D > A", 1, 2, 3);
    assert_int_equal(tl_markov_merge(w1, w2), TL_MARKOV_OK);
    tl_buf a = {0}, b = {0};
    encode(all, &a);
    encode(w1, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    tl_markov *c = tl_markov_copy(all);
    encode(c, &b);
    assert_memory_equal(a.data, b.data, a.len);
    /* merging a model into itself doubles it */
    assert_int_equal(tl_markov_merge(c, c), TL_MARKOV_OK);
    assert_int_equal(tl_markov_paths(c), 8);
    tl_markov_result r = solve(c);
    near(r.conversions, 8);
    tl_markov_result_free(&r);
    tl_markov_clear(c);
    assert_int_equal(tl_markov_states(c), 0);
    assert_int_equal(tl_markov_paths(c), 0);
    add(c, "z", 1, 0, 0);
    assert_string_equal(tl_markov_state_name(c, 0), "z");
    assert_null(tl_markov_state_name(c, 1));
    tl_buf_free(&a);
    tl_buf_free(&b);
    tl_markov_destroy(all);
    tl_markov_destroy(w1);
    tl_markov_destroy(w2);
    tl_markov_destroy(c);
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    tl_markov *m = three_channels();
    add(m, "D > A > A", 0.25, 1.5, 0.125);
    tl_buf a = {0}, b = {0};
    int rc = 1;
    tl_markov *d = decode_same(m, &a, &rc);
    assert_int_equal(rc, TL_MARKOV_OK);
    tl_markov_result r1 = solve(m), r2 = solve(d);
    assert_int_equal(r1.n, r2.n);
    assert_int_equal(r1.paths, r2.paths);
    assert_memory_equal(r1.channels[0].name, r2.channels[0].name, 2);
    for (int i = 0; i < r1.n; i++) {
        assert_true(r1.channels[i].removal_effect == r2.channels[i].removal_effect);
        assert_true(r1.channels[i].linear_value == r2.channels[i].linear_value);
    }
    /* a decoded model goes on learning */
    add(d, "E", 1, 0, 1);
    assert_int_equal(tl_markov_states(d), 5);
    tl_markov_result_free(&r1);
    tl_markov_result_free(&r2);
    tl_markov_destroy(d);

    /* the empty model */
    tl_markov *e = tl_markov_new();
    encode(e, &b);
    d = tl_markov_decode(b.data, b.len, NULL);
    assert_non_null(d);
    assert_int_equal(tl_markov_states(d), 0);
    tl_markov_destroy(d);
    tl_markov_destroy(e);

    /* every truncation and every single-bit flip is refused */
    for (size_t n = 0; n < a.len; n++) {
        assert_null(tl_markov_decode(a.data, n, &rc));
        assert_int_equal(rc, TL_MARKOV_ECORRUPT);
    }
    for (size_t i = 0; i < a.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            a.data[i] ^= (char)(1 << bit);
            assert_null(tl_markov_decode(a.data, a.len, &rc));
            a.data[i] ^= (char)(1 << bit);
        }
    /* trailing bytes */
    tl_buf_putc(&a, 0);
    assert_null(tl_markov_decode(a.data, a.len, &rc));
    tl_buf_free(&a);
    tl_buf_free(&b);
    tl_markov_destroy(m);
}

/* Well-checksummed bytes with bad content are refused too. */
static void test_decode_bad_content(void **state)
{
    (void)state;
    tl_buf b = {0};
    /* "TLMK" v1, 2 names "a" "a" (duplicate), paths 0, totals, states, 0 edges */
    static const unsigned char head[] = {'T', 'L', 'M', 'K', 1, 2, 1, 'a', 1, 'a', 0};
    tl_buf_append(&b, head, sizeof(head));
    for (int i = 0; i < 3 + 2 * 8; i++) tl_buf_append(&b, "\0\0\0\0\0\0\0\0", 8);
    tl_buf_putc(&b, 0);
    uint64_t h = tl_hash64(b.data, b.len);
    for (int i = 0; i < 8; i++) tl_buf_putc(&b, (char)(h >> (8 * i)));
    int rc = 0;
    assert_null(tl_markov_decode(b.data, b.len, &rc));
    assert_int_equal(rc, TL_MARKOV_ECORRUPT);
    /* the same with distinct names decodes */
    b.data[9] = 'b';
    b.len -= 8;
    h = tl_hash64(b.data, b.len);
    for (int i = 0; i < 8; i++) tl_buf_putc(&b, (char)(h >> (8 * i)));
    tl_markov *m = tl_markov_decode(b.data, b.len, &rc);
    assert_non_null(m);
    tl_markov_destroy(m);
    /* a negative weight (the first total: conversions = -1.0) */
    b.len -= 8;
    double neg = -1.0;
    memcpy(b.data + sizeof(head), &neg, 8);   /* little-endian hosts, as the tests run */
    h = tl_hash64(b.data, b.len);
    for (int i = 0; i < 8; i++) tl_buf_putc(&b, (char)(h >> (8 * i)));
    assert_null(tl_markov_decode(b.data, b.len, &rc));
    tl_buf_free(&b);
}

static void test_errors(void **state)
{
    (void)state;
    tl_markov *m = tl_markov_new();
    const char *ok[] = {"a", "b"}, *null_el[] = {"a", NULL}, *empty[] = {"a", ""};
    assert_int_equal(tl_markov_add_path(m, ok, 0, 1, 0, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, NULL, 1, 1, 0, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, null_el, 2, 1, 0, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, empty, 2, 1, 0, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, ok, 2, -1, 0, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, ok, 2, 1, NAN, 0), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_add_path(m, ok, 2, 1, 0, INFINITY), TL_MARKOV_EINVAL);
    char *longname = tl_xmalloc(TL_MARKOV_MAX_NAME + 2);
    memset(longname, 'x', TL_MARKOV_MAX_NAME + 1);
    longname[TL_MARKOV_MAX_NAME + 1] = '\0';
    const char *lp[] = {longname};
    assert_int_equal(tl_markov_add_path(m, lp, 1, 1, 0, 0), TL_MARKOV_EINVAL);
    longname[TL_MARKOV_MAX_NAME] = '\0';   /* exactly the limit */
    assert_int_equal(tl_markov_add_path(m, lp, 1, 1, 0, 0), TL_MARKOV_OK);
    free(longname);
    assert_int_equal(tl_markov_states(m), 1);   /* the failures changed nothing */
    assert_int_equal(tl_markov_paths(m), 1);
    tl_markov_clear(m);

    /* the state bound: TL_MARKOV_MAX_STATES names fit, one more does not */
    char name[32];
    for (int i = 0; i < TL_MARKOV_MAX_STATES; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        const char *p[] = {name};
        assert_int_equal(tl_markov_add_path(m, p, 1, 0, 1, 0), TL_MARKOV_OK);
    }
    const char *over[] = {"s0", "new", "new"};
    assert_int_equal(tl_markov_add_path(m, over, 3, 1, 0, 0), TL_MARKOV_ETOOMANY);
    assert_int_equal(tl_markov_states(m), TL_MARKOV_MAX_STATES);
    assert_int_equal(tl_markov_paths(m), TL_MARKOV_MAX_STATES);
    const char *known[] = {"s1", "s2", "s1"};
    assert_int_equal(tl_markov_add_path(m, known, 3, 1, 0, 0), TL_MARKOV_OK);
    tl_markov *other = tl_markov_new();
    add(other, "s3 > another", 1, 0, 0);
    assert_int_equal(tl_markov_merge(m, other), TL_MARKOV_ETOOMANY);
    assert_int_equal(tl_markov_states(m), TL_MARKOV_MAX_STATES);
    tl_markov_destroy(other);

    for (int rc = 0; rc >= -5; rc--) assert_non_null(tl_markov_strerror(rc));
    tl_markov_destroy(m);
}

static tl_markov *order2(void)
{
    tl_markov *m = tl_markov_new_order(2);
    assert_non_null(m);
    add(m, "a > b", 1, 0, 0);
    add(m, "b > a", 0, 1, 0);
    add(m, "c > b", 1, 0, 0);
    add(m, "c", 0, 1, 0);
    add(m, "a > a > b", 0, 1, 0);
    return m;
}

static void test_order2(void **state)
{
    (void)state;
    tl_markov *m = order2();
    tl_markov_result r = solve(m);
    assert_int_equal(r.order, 2);
    assert_int_equal(r.chain_states, 5);
    assert_int_equal(r.n, 3);   /* the channels, not the windows */
    near(r.conversion_probability, 0.4);
    /* the rule-based sums are per channel, whatever the order; no path has a value */
    static const want_channel want[] = {
        {"a", {0.5, 0.5, 0, 1, 0, 0, 0, 0.5, 0}},
        {"b", {1, 1, 0, 0, 0, 2, 0, 1, 0}},
        {"c", {0.5, 0.5, 0, 1, 0, 0, 0, 0.5, 0}},
    };
    expect_channels(&r, want, 3);
    tl_markov_result_free(&r);
    tl_markov_destroy(m);
}

/* The order survives copy, clear, merge and the encoding; orders do not mix. */
static void test_order_state(void **state)
{
    (void)state;
    assert_null(tl_markov_new_order(0));
    assert_null(tl_markov_new_order(TL_MARKOV_MAX_ORDER + 1));
    tl_markov *m = order2();
    const char *bad[] = {"a", "x\x1fy"};   /* the separator cannot be part of a name */
    assert_int_equal(tl_markov_add_path(m, bad, 2, 1, 0, 0), TL_MARKOV_EINVAL);

    tl_buf b = {0};
    int rc = -1;
    tl_markov *d = decode_same(m, &b, &rc);
    assert_int_equal(tl_markov_order(d), 2);
    tl_markov_result r1 = solve(m), r2 = solve(d);
    near(r1.conversion_probability, r2.conversion_probability);
    tl_markov_result_free(&r1);
    tl_markov_result_free(&r2);

    /* an order byte out of range, after fixing the checksum: refused */
    unsigned char *p = (unsigned char *)b.data;
    p[5] = TL_MARKOV_MAX_ORDER + 1;
    uint64_t h = tl_hash64(p, b.len - 8);
    for (int i = 0; i < 8; i++) p[b.len - 8 + i] = (unsigned char)(h >> (8 * i));
    assert_null(tl_markov_decode(b.data, b.len, &rc));
    assert_int_equal(rc, TL_MARKOV_ECORRUPT);

    tl_markov *one = tl_markov_new();
    assert_int_equal(tl_markov_merge(one, m), TL_MARKOV_EORDER);
    assert_int_equal(tl_markov_states(one), 0);
    tl_markov *c = tl_markov_copy(m);
    assert_int_equal(tl_markov_order(c), 2);
    assert_int_equal(tl_markov_merge(c, m), TL_MARKOV_OK);
    tl_markov_clear(c);
    assert_int_equal(tl_markov_order(c), 2);

    tl_buf_free(&b);
    tl_markov_destroy(one);
    tl_markov_destroy(c);
    tl_markov_destroy(d);
    tl_markov_destroy(m);
}

/* The interval holds the estimate, narrows with more data, repeats with the seed. */
static void test_bootstrap(void **state)
{
    (void)state;
    tl_markov *m = three_channels(), *big = tl_markov_new();
    for (int i = 0; i < 100; i++) add_three_channels(big);   /* 100 times the journeys */
    tl_markov_result r = solve(m);
    assert_int_equal(tl_markov_bootstrap(m, 1, 1, 0.9, &r), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_bootstrap(m, 100, 1, 1.0, &r), TL_MARKOV_EINVAL);
    assert_int_equal(tl_markov_bootstrap(m, 400, 7, 0.9, &r), TL_MARKOV_OK);
    assert_int_equal(r.bootstrap_samples, 400);
    tl_markov_result r2 = solve(m);
    assert_int_equal(tl_markov_bootstrap(m, 400, 7, 0.9, &r2), TL_MARKOV_OK);
    tl_markov_result rb = solve(big);
    assert_int_equal(tl_markov_bootstrap(big, 400, 7, 0.9, &rb), TL_MARKOV_OK);
    for (int i = 0; i < r.n; i++) {
        const tl_markov_channel *c = &r.channels[i], *c2 = &r2.channels[i];
        const tl_markov_channel *b = chan(&rb, c->name);
        assert_true(c->removal_effect_lo <= c->removal_effect_hi);
        assert_true(c->removal_effect_lo >= 0 && c->removal_effect_hi <= 1);
        assert_true(c->markov_conversions_lo <= c->markov_conversions_hi);
        assert_true(c->removal_effect_lo == c2->removal_effect_lo &&
                    c->removal_effect_hi == c2->removal_effect_hi);   /* same seed */
        /* 100 times the counts: the same estimate, an interval about 10 times narrower
         * that holds it */
        near(b->removal_effect, c->removal_effect);
        assert_true(b->removal_effect_lo <= b->removal_effect &&
                    b->removal_effect <= b->removal_effect_hi);
        double w = c->removal_effect_hi - c->removal_effect_lo;
        double wb = b->removal_effect_hi - b->removal_effect_lo;
        if (!(wb > 0.05 * w && wb < 0.2 * w))
            fail_msg("%s: width %.4f with the counts, %.4f with 100 times them", c->name, w, wb);
    }
    tl_markov_result_free(&r);
    tl_markov_result_free(&r2);
    tl_markov_result_free(&rb);
    tl_markov_destroy(m);
    tl_markov_destroy(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_three_channels),
        cmocka_unit_test(test_hand_two_channels),
        cmocka_unit_test(test_collapse),
        cmocka_unit_test(test_null_player),
        cmocka_unit_test(test_pivoting),
        cmocka_unit_test(test_no_conversions),
        cmocka_unit_test(test_identity_vs_removal),
        cmocka_unit_test(test_merge_copy),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_decode_bad_content),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_order2),
        cmocka_unit_test(test_order_state),
        cmocka_unit_test(test_bootstrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
