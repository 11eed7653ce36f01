/*
 * test_metrics.c -- model/metrics.c: AUC on hand cases (perfect, inverted, all ties, a
 * 2 + 2 case with a tie, one class, weighted), log-loss by hand (with clipping and
 * weights), window eviction and counts, the running-rate baseline with and without a
 * prior weight, input validation, and the encode / decode round trip of the ring.
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
#include "model/metrics.h"
#include "fixtures.h"

/* For fx_expect_exact_record. */
static int metrics_decodes(const void *data, size_t len)
{
    tl_metrics *m = tl_metrics_decode(data, len);
    tl_metrics_destroy(m);
    return m != NULL;
}

static tl_metrics *fill(int window, int n, const double *p, const int *y, const double *w)
{
    tl_metrics *m = tl_metrics_new(window);
    assert_non_null(m);
    for (int i = 0; i < n; i++) assert_int_equal(tl_metrics_add(m, p[i], y[i], w ? w[i] : 1), 0);
    return m;
}

static double auc_of(int n, const double *p, const int *y, const double *w)
{
    tl_metrics *m = fill(100, n, p, y, w);
    double a = tl_metrics_auc(m);
    tl_metrics_destroy(m);
    return a;
}

static void test_auc_hand_cases(void **state)
{
    (void)state;
    const double p[4] = {0.1, 0.2, 0.8, 0.9};
    const int up[4] = {0, 0, 1, 1}, down[4] = {1, 1, 0, 0};
    assert_true(auc_of(4, p, up, NULL) == 1.0);     /* perfect */
    assert_true(auc_of(4, p, down, NULL) == 0.0);   /* inverted */

    const double tie[5] = {0.3, 0.3, 0.3, 0.3, 0.3};
    const int ty[5] = {1, 0, 0, 1, 0};
    assert_true(auc_of(5, tie, ty, NULL) == 0.5);   /* all ties */

    /* Positives {0.4, 0.8}, negatives {0.4, 0.3} (added in mixed order). Pairs:
     * (0.4, 0.4) tie 1/2, (0.4, 0.3) 1, (0.8, 0.4) 1, (0.8, 0.3) 1: 3.5 / 4 = 0.875. */
    const double p22[4] = {0.4, 0.4, 0.8, 0.3};
    const int y22[4] = {0, 1, 1, 0};
    assert_true(auc_of(4, p22, y22, NULL) == 0.875);

    /* Positives {0.9, 0.2, 0.6}, negatives {0.5, 0.6}: (0.9: 2) + (0.2: 0) + (0.6: 1/2 + 1)
     * = 3.5 of 6 pairs. */
    const double p32[5] = {0.9, 0.5, 0.2, 0.6, 0.6};
    const int y32[5] = {1, 0, 1, 0, 1};
    fx_near(auc_of(5, p32, y32, NULL), 3.5 / 6, 1e-15, "3 + 2");

    /* One class only, and nothing at all: undefined. */
    assert_true(isnan(auc_of(4, p, (const int[4]){1, 1, 1, 1}, NULL)));
    assert_true(isnan(auc_of(4, p, (const int[4]){0, 0, 0, 0}, NULL)));
    assert_true(isnan(auc_of(0, p, up, NULL)));
}

static void test_logloss_hand_cases(void **state)
{
    (void)state;
    /* (-ln 0.8 - ln(1 - 0.4)) / 2 = (0.22314355131420976 + 0.51082562376599072) / 2 */
    const double p[2] = {0.8, 0.4};
    const int y[2] = {1, 0};
    tl_metrics *m = fill(10, 2, p, y, NULL);
    fx_near(tl_metrics_logloss(m), 0.36698458754010024, 1e-15, "log-loss");
    tl_metrics_destroy(m);

    /* Clipping: p = 0 for a positive costs -ln(1e-15) = 34.538776394910684, p = 1 for a
     * negative costs -ln(1 - (1 - 1e-15)), and neither is infinite. */
    m = fill(10, 1, (const double[1]){0.0}, (const int[1]){1}, NULL);
    fx_near(tl_metrics_logloss(m), 34.538776394910684, 1e-12, "clipped p = 0");
    tl_metrics_destroy(m);
    m = fill(10, 1, (const double[1]){1.0}, (const int[1]){0}, NULL);
    fx_near(tl_metrics_logloss(m), -log(1 - (1 - 1e-15)), 1e-12, "clipped p = 1");
    assert_true(isfinite(tl_metrics_logloss(m)));
    tl_metrics_destroy(m);

    m = tl_metrics_new(5);
    assert_true(isnan(tl_metrics_logloss(m)));   /* empty window */
    tl_metrics_destroy(m);
}

/* Importance weights: weighted means, weighted pairs; weight 2 = the example twice;
 * weight 0 is counted but takes part in nothing. */
static void test_weights(void **state)
{
    (void)state;
    const double p[2] = {0.8, 0.4};
    const int y[2] = {1, 0};
    tl_metrics *m = fill(10, 2, p, y, (const double[2]){3, 1});
    fx_near(tl_metrics_logloss(m), (3 * -log(0.8) + 1 * -log(0.6)) / 4, 1e-15, "weighted");
    tl_metrics_destroy(m);

    /* Positives 0.9 (w 1), 0.2 (w 3); negative 0.5 (w 2): pairs 1*2 above, 3*2 below:
     * AUC = 2 / (4 * 2) = 0.25. */
    const double pw[3] = {0.9, 0.2, 0.5};
    const int yw[3] = {1, 1, 0};
    assert_true(auc_of(3, pw, yw, (const double[3]){1, 3, 2}) == 0.25);

    /* weight 2 == the example twice */
    const double pa[4] = {0.3, 0.7, 0.6, 0.2};
    const int ya[4] = {0, 1, 0, 1};
    const double pd[6] = {0.3, 0.7, 0.7, 0.6, 0.2, 0.2};
    const int yd[6] = {0, 1, 1, 0, 1, 1};
    tl_metrics *a = fill(10, 4, pa, ya, (const double[4]){1, 2, 1, 2});
    tl_metrics *b = fill(10, 6, pd, yd, NULL);
    fx_near(tl_metrics_auc(a), tl_metrics_auc(b), 1e-15, "auc w2 = twice");
    fx_near(tl_metrics_logloss(a), tl_metrics_logloss(b), 1e-15, "logloss w2 = twice");
    tl_metrics_destroy(a);
    tl_metrics_destroy(b);

    /* weight 0: counted, but changes neither metric */
    m = fill(10, 2, p, y, NULL);
    double ll = tl_metrics_logloss(m), au = tl_metrics_auc(m);
    assert_int_equal(tl_metrics_add(m, 0.01, 1, 0.0), 0);
    assert_int_equal(tl_metrics_count(m), 3);
    assert_int_equal(tl_metrics_window_count(m), 3);
    assert_true(tl_metrics_logloss(m) == ll);
    assert_true(tl_metrics_auc(m) == au);
    tl_metrics_destroy(m);

    /* positives all of weight 0: the AUC is undefined */
    m = fill(10, 2, p, y, (const double[2]){0, 1});
    assert_true(isnan(tl_metrics_auc(m)));
    tl_metrics_destroy(m);
}

static void test_window_eviction(void **state)
{
    (void)state;
    /* Window 3, five examples: the metrics are those of the last three. */
    const double p[5] = {0.9, 0.1, 0.2, 0.7, 0.6};
    const int y[5] = {0, 1, 0, 1, 0};
    tl_metrics *m = fill(3, 5, p, y, NULL);
    tl_metrics *last = fill(3, 3, p + 2, y + 2, NULL);
    assert_int_equal(tl_metrics_window_size(m), 3);
    assert_int_equal(tl_metrics_count(m), 5);
    assert_int_equal(tl_metrics_positives(m), 2);
    assert_int_equal(tl_metrics_window_count(m), 3);
    assert_int_equal(tl_metrics_window_positives(m), 1);
    /* last three: {0.2: 0, 0.7: 1, 0.6: 0}: the positive beats both negatives */
    assert_true(tl_metrics_auc(m) == 1.0);
    assert_true(tl_metrics_logloss(m) == tl_metrics_logloss(last));
    fx_near(tl_metrics_logloss(m), (-log(0.8) - log(0.7) - log(0.4)) / 3, 1e-15, "window");
    /* the first two (an inverted pair) would have made it < 1 */
    tl_metrics *all = fill(10, 5, p, y, NULL);
    assert_true(tl_metrics_auc(all) < 1.0);
    tl_metrics_destroy(all);

    /* Many wraps of the ring: still the last three. */
    for (int i = 0; i < 1000; i++) tl_metrics_add(m, (i % 7) / 7.0, i % 2, 1);
    tl_metrics *tail = tl_metrics_new(3);
    for (int i = 997; i < 1000; i++) tl_metrics_add(tail, (i % 7) / 7.0, i % 2, 1);
    assert_true(tl_metrics_logloss(m) == tl_metrics_logloss(tail));
    assert_true(tl_metrics_auc(m) == tl_metrics_auc(tail));
    assert_int_equal(tl_metrics_window_positives(m), tl_metrics_window_positives(tail));
    assert_int_equal(tl_metrics_count(m), 1005);
    assert_int_equal(tl_metrics_positives(m), 502);
    tl_metrics_destroy(tail);
    tl_metrics_destroy(last);
    tl_metrics_destroy(m);

    /* Window 1: one example, so AUC is always undefined. */
    m = fill(1, 2, p, y, NULL);
    assert_true(isnan(tl_metrics_auc(m)));
    fx_near(tl_metrics_logloss(m), -log(0.1), 1e-15, "window 1");
    tl_metrics_destroy(m);
}

/* The baseline scores each example with the rate before it, then updates. */
static void test_baseline_running_rate(void **state)
{
    (void)state;
    tl_metrics *m = tl_metrics_new(10);
    assert_true(tl_metrics_baseline_rate(m) == 0.5);   /* the prior */
    tl_metrics_add(m, 0.9, 1, 1);   /* baseline said 0.5; rate 1/1 */
    assert_true(tl_metrics_baseline_rate(m) == 1.0);
    tl_metrics_add(m, 0.2, 0, 1);   /* baseline said 1 (clipped to 1 - 1e-15); rate 1/2 */
    assert_true(tl_metrics_baseline_rate(m) == 0.5);
    tl_metrics_add(m, 0.3, 0, 1);   /* baseline said 0.5; rate 1/3 */
    fx_near(tl_metrics_baseline_rate(m), 1.0 / 3, 1e-16, "rate");
    tl_metrics_add(m, 0.6, 1, 1);   /* baseline said 1/3; rate 2/4 */
    double want = (-log(0.5) - log1p(-(1 - 1e-15)) - log(0.5) - log(1.0 / 3)) / 4;
    fx_near(tl_metrics_baseline_logloss(m), want, 1e-12, "baseline log-loss");
    /* Baseline scores 0.5 (+), 1 (-), 0.5 (-), 1/3 (+): positive 0.5 vs negatives {1, 0.5}:
     * 0 + 1/2; positive 1/3: 0 + 0; AUC = 0.5 / 4 = 0.125. */
    assert_true(tl_metrics_baseline_auc(m) == 0.125);
    /* The model's own scores: positives {0.9, 0.6} beat negatives {0.2, 0.3}. */
    assert_true(tl_metrics_auc(m) == 1.0);
    tl_metrics_destroy(m);

    /* With a prior weight of 1 and weights: rate = (1 * 0.2 + sum c y) / (1 + sum c). */
    m = tl_metrics_new_baseline(10, 0.2, 1.0);
    assert_true(tl_metrics_baseline_rate(m) == 0.2);
    tl_metrics_add(m, 0.5, 1, 3);   /* baseline said 0.2; rate (0.2 + 3) / 4 = 0.8 */
    fx_near(tl_metrics_baseline_rate(m), 0.8, 1e-16, "prior rate 1");
    tl_metrics_add(m, 0.5, 0, 0);   /* weight 0 leaves the rate alone */
    fx_near(tl_metrics_baseline_rate(m), 0.8, 1e-16, "prior rate 2");
    tl_metrics_add(m, 0.5, 0, 4);   /* baseline said 0.8; rate 3.2 / 8 = 0.4 */
    fx_near(tl_metrics_baseline_rate(m), 0.4, 1e-16, "prior rate 3");
    want = (3 * -log(0.2) + 4 * -log(1 - 0.8)) / 7;
    fx_near(tl_metrics_baseline_logloss(m), want, 1e-14, "weighted baseline log-loss");
    tl_metrics_destroy(m);

    /* The baseline rate runs over all examples, not over the window. */
    m = tl_metrics_new(2);
    for (int i = 0; i < 10; i++) tl_metrics_add(m, 0.5, i < 3, 1);
    fx_near(tl_metrics_baseline_rate(m), 0.3, 1e-16, "all-time rate");
    tl_metrics_destroy(m);
}

static void test_invalid_input(void **state)
{
    (void)state;
    assert_null(tl_metrics_new(0));
    assert_null(tl_metrics_new(TL_METRICS_MAX_WINDOW + 1));
    assert_null(tl_metrics_new_baseline(10, 1.5, 0));
    assert_null(tl_metrics_new_baseline(10, 0.5, -1));
    tl_metrics *m = tl_metrics_new(4);
    assert_int_equal(tl_metrics_add(m, NAN, 1, 1), -1);
    assert_int_equal(tl_metrics_add(m, 1.5, 1, 1), -1);
    assert_int_equal(tl_metrics_add(m, -0.1, 1, 1), -1);
    assert_int_equal(tl_metrics_add(m, 0.5, 1, -1), -1);
    assert_int_equal(tl_metrics_add(m, 0.5, 1, INFINITY), -1);
    assert_int_equal(tl_metrics_count(m), 0);
    assert_int_equal(tl_metrics_add(m, 0.5, 7, 1), 0);   /* non-zero label = 1 */
    assert_int_equal(tl_metrics_positives(m), 1);
    tl_metrics_destroy(m);
    tl_metrics_destroy(NULL);
}

static void test_encode_decode(void **state)
{
    (void)state;
    tl_metrics *m = tl_metrics_new_baseline(7, 0.3, 2.0);
    tl_buf b = {0}, b2 = {0};
    for (int round = 0; round < 3; round++) {   /* empty, partly filled, wrapped */
        tl_buf_clear(&b);
        tl_metrics_encode(m, &b);
        tl_metrics *d = tl_metrics_decode(b.data, b.len);
        assert_non_null(d);
        tl_buf_clear(&b2);
        tl_metrics_encode(d, &b2);
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        /* identical now, and after the same further examples */
        for (int k = 0; k < 2; k++) {
            assert_int_equal(tl_metrics_count(d), tl_metrics_count(m));
            assert_int_equal(tl_metrics_positives(d), tl_metrics_positives(m));
            assert_int_equal(tl_metrics_window_count(d), tl_metrics_window_count(m));
            assert_int_equal(tl_metrics_window_positives(d), tl_metrics_window_positives(m));
            assert_true(tl_metrics_baseline_rate(d) == tl_metrics_baseline_rate(m));
            double x1 = tl_metrics_logloss(m), x2 = tl_metrics_logloss(d);
            assert_true(x1 == x2 || (isnan(x1) && isnan(x2)));
            x1 = tl_metrics_auc(m), x2 = tl_metrics_auc(d);
            assert_true(x1 == x2 || (isnan(x1) && isnan(x2)));
            x1 = tl_metrics_baseline_logloss(m), x2 = tl_metrics_baseline_logloss(d);
            assert_true(x1 == x2 || (isnan(x1) && isnan(x2)));
            x1 = tl_metrics_baseline_auc(m), x2 = tl_metrics_baseline_auc(d);
            assert_true(x1 == x2 || (isnan(x1) && isnan(x2)));
            for (int i = 0; i < 4; i++) {
                double p = 0.1 + 0.17 * ((round * 5 + k * 3 + i) % 5), c = 0.5 + i % 3;
                int y = (round + i) % 3 == 0;
                tl_metrics_add(m, p, y, c);
                tl_metrics_add(d, p, y, c);
            }
        }
        tl_metrics_destroy(d);
    }
    assert_true(tl_metrics_count(m) > 7);

    /* malformed: every truncation, a trailing byte, bad values */
    tl_buf_clear(&b);
    tl_metrics_encode(m, &b);
    fx_expect_exact_record(b.data, b.len, metrics_decodes);
    const size_t hdr = 64, entry = 25;
    struct {
        size_t off;
        unsigned char byte;
        const char *what;
    } bad[] = {
        {0, 'x', "magic"},
        {4, 9, "format"},
        {8, 0, "window 0 (n > window)"},
        {12, 6, "n disagrees with the length"},
        {39, 0xff, "prior negative"},
        {hdr + 7, 0xff, "p negative"},
        {hdr + 15, 0xbf, "baseline p < 0"},
        {hdr + 23, 0xff, "weight negative"},
        {hdr + 24, 2, "label 2"},
        {hdr + entry + 24, 9, "label 9"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        tl_buf c = {0};
        tl_buf_append(&c, b.data, b.len);
        c.data[bad[k].off] = (char)bad[k].byte;
        if (tl_metrics_decode(c.data, c.len)) fail_msg("decoded a record with %s", bad[k].what);
        tl_buf_free(&c);
    }
    tl_buf_free(&b);
    tl_buf_free(&b2);
    tl_metrics_destroy(m);
}

/* m and ref encode to the same bytes: the two trackers are the same, bit for bit. */
static void same_encoding(const tl_metrics *m, const tl_metrics *ref)
{
    tl_buf a = {0}, b = {0};
    tl_metrics_encode(m, &a);
    tl_metrics_encode(ref, &b);
    fx_same_bytes_free(&a, &b);
}

/* An undo takes back every example added since the mark, also past a whole window's
 * worth (the ring wrapped), and ends the journal; without one it changes nothing. */
static void test_undo(void **state)
{
    (void)state;
    tl_metrics *m = tl_metrics_new(8), *ref = tl_metrics_new(8);
    assert_int_equal(tl_metrics_undo(m), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tl_metrics_add(m, 0.1 * i, i & 1, 1.0 + i), 0);
        assert_int_equal(tl_metrics_add(ref, 0.1 * i, i & 1, 1.0 + i), 0);
    }
    for (int round = 0; round < 3; round++) {
        tl_metrics_undo_mark(m);
        int n = round == 0 ? 3 : round == 1 ? 8 : 11; /* less than, a whole, more than a window */
        for (int i = 0; i < n; i++) assert_int_equal(tl_metrics_add(m, 0.9, 1, 2.5), 0);
        assert_int_equal(tl_metrics_undo(m), n < 8 ? n : 8);
        same_encoding(m, ref);
        assert_int_equal(tl_metrics_count(m), 5);
        assert_int_equal(tl_metrics_positives(m), 2);
    }
    /* then the same examples in both: still the same */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(tl_metrics_add(m, 0.05 * i, !(i & 1), 0.5), 0);
        assert_int_equal(tl_metrics_add(ref, 0.05 * i, !(i & 1), 0.5), 0);
    }
    same_encoding(m, ref);
    assert_true(tl_metrics_auc(m) == tl_metrics_auc(ref));
    tl_metrics_destroy(m);
    tl_metrics_destroy(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_hand_cases),
        cmocka_unit_test(test_logloss_hand_cases),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_window_eviction),
        cmocka_unit_test(test_baseline_running_rate),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_undo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
