/*
 * test_ftrl.c -- model/ftrl.c: two updates worked by hand for d = 2; w exactly 0 wherever
 * |z| <= l1 (z read from the encoded state); a weight-0 example changes nothing; encode /
 * decode round trip continues with identical predictions; decode rejects truncated,
 * padded and corrupted records; invalid parameters; the sigmoid at extreme margins.
 * (The agreement with independent implementations over long streams is
 * tests/integration/test_ftrl.py.)
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
#include "model/ftrl.h"
#include "fixtures.h"

/* For fx_expect_exact_record. */
static int ftrl_decodes(const void *data, size_t len)
{
    tl_ftrl *m = tl_ftrl_decode(data, len);
    tl_ftrl_destroy(m);
    return m != NULL;
}

/* Encoded layout (ftrl.h): header of 52 bytes, then z[d], then n[d], little-endian f64. */
static double enc_f64(const tl_buf *b, size_t off)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)(unsigned char)b->data[off + i] << (8 * i);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static void enc_put_f64(tl_buf *b, size_t off, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    for (int i = 0; i < 8; i++) b->data[off + i] = (char)(v >> (8 * i));
}

#define HDR 52

static uint64_t rng = 12345;
static double uni(void)   /* xorshift64*, uniform in [0, 1) */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

static void random_example(double *x, int d, int *y)
{
    x[0] = 1.0;   /* bias */
    for (int i = 1; i < d; i++) x[i] = uni() < 0.3 ? 0.0 : 4 * uni() - 2;
    *y = uni() < 0.3 + 0.4 * (x[1] > 0);
}

/* m (of dimension d) learns n random examples, their weights cycling through w[0..nw). */
static void train(tl_ftrl *m, int d, int n, const double *w, int nw)
{
    double x[TL_FTRL_DENSE_DIM];
    int y;
    assert_true(d <= TL_FTRL_DENSE_DIM);
    for (int t = 0; t < n; t++) {
        random_example(x, d, &y);
        tl_ftrl_learn(m, x, y, w[t % nw]);
    }
}

/* m and o, of dimension d, have the same averaged weights, bit for bit; when says
 * when, in the message. */
static void same_avg(const tl_ftrl *m, const tl_ftrl *o, int d, const char *when)
{
    for (int i = 0; i < d; i++)
        if (tl_ftrl_avg_weight(m, i) != tl_ftrl_avg_weight(o, i))
            fail_msg("avg[%d] differs%s", i, when);
}

/*
 * d = 2, alpha = 0.5, beta = 1, l1 = 0.6, l2 = 1. Coordinate 0 is the bias.
 *
 * Update 1: x = (1, 2), y = 1, weight 1. z = n = 0, so w = (0, 0), p = sigmoid(0) = 0.5.
 *   g = (0.5 - 1) * x = (-0.5, -1)
 *   s_i = (sqrt(n_i + g_i^2) - sqrt(n_i)) / alpha = (0.5 / 0.5, 1 / 0.5) = (1, 2)
 *   z = g - s * w = (-0.5, -1)        (w = 0)
 *   n = g^2 = (0.25, 1)
 *   w_0: |z_0| = 0.5 <= l1 = 0.6, so w_0 = 0
 *   w_1 = -(z_1 - sgn(z_1) l1) / ((beta + sqrt(n_1)) / alpha + l2)
 *       = -(-1 + 0.6) / ((1 + 1) / 0.5 + 1) = 0.4 / 5 = 0.08
 *
 * Update 2: x = (1, -1), y = 0, weight 2.
 *   w . x = -0.08, p = 1 / (1 + e^0.08) = 0.48001065984441826
 *   g = 2 * (p - 0) * x = (q, -q), q = 2p = 0.96002131968883653, q^2 = 0.92164093425709526
 *   coordinate 0: n_0 = 0.25 + q^2 = 1.1716409342570953
 *                 z_0 = -0.5 + q - s_0 * 0 = 0.46002131968883653; |z_0| <= 0.6 so w_0 = 0
 *   coordinate 1: n_1 = 1 + q^2 = 1.9216409342570953, sqrt(n_1) = 1.3862326407414793
 *                 s_1 = (1.3862326407414793 - 1) / 0.5 = 0.77246528148295868
 *                 z_1 = -1 - q - s_1 * 0.08 = -2.0218185422074733
 *                 w_1 = -(z_1 + 0.6) / ((1 + 1.3862326407414793) / 0.5 + 1)
 *                     = 1.4218185422074733 / 5.7724652814829586 = 0.24631045365806081
 *   probe x = (0, 1): p = sigmoid(w_1) = 0.56126817043780952
 * Averaged weights (version t weighs t): after update 1, avg_1 = 0.08; after update 2,
 *   avg_1 = (1 * 0.08 + 2 * 0.24631045365806081) / 3 = 0.19087363577204054, avg_0 = 0.
 */
static void test_two_updates_by_hand(void **state)
{
    (void)state;
    tl_ftrl *m = tl_ftrl_new(2, 0.5, 1.0, 0.6, 1.0);
    assert_non_null(m);
    assert_int_equal(tl_ftrl_dim(m), 2);
    double w[2];

    double x1[2] = {1, 2};
    double p = tl_ftrl_learn(m, x1, 1, 1.0);
    assert_true(p == 0.5);
    tl_ftrl_weights(m, w);
    assert_true(w[0] == 0.0);
    fx_near(w[1], 0.08, 1e-15, "w1 after update 1");
    assert_int_equal(tl_ftrl_version(m), 1);

    fx_near(tl_ftrl_avg_weight(m, 1), 0.08, 1e-15, "avg1 after update 1");

    tl_buf b = {0};
    tl_ftrl_encode(m, &b);
    assert_int_equal(b.len, HDR + 2 * 32);
    fx_near(enc_f64(&b, HDR), -0.5, 0, "z0");
    fx_near(enc_f64(&b, HDR + 8), -1, 0, "z1");
    fx_near(enc_f64(&b, HDR + 16), 0.25, 0, "n0");
    fx_near(enc_f64(&b, HDR + 24), 1, 0, "n1");

    double x2[2] = {1, -1};
    p = tl_ftrl_learn(m, x2, 0, 2.0);
    fx_near(p, 0.48001065984441826, 1e-15, "p before update 2");
    tl_ftrl_weights(m, w);
    assert_true(w[0] == 0.0);
    fx_near(w[1], 0.24631045365806081, 1e-14, "w1 after update 2");
    assert_int_equal(tl_ftrl_version(m), 2);

    tl_buf_clear(&b);
    tl_ftrl_encode(m, &b);
    fx_near(enc_f64(&b, HDR), 0.46002131968883653, 1e-15, "z0");
    fx_near(enc_f64(&b, HDR + 8), -2.0218185422074733, 1e-14, "z1");
    fx_near(enc_f64(&b, HDR + 16), 1.1716409342570953, 1e-15, "n0");
    fx_near(enc_f64(&b, HDR + 24), 1.9216409342570953, 1e-15, "n1");
    /* the averages as of the version before each coordinate's last change, and that version */
    fx_near(enc_f64(&b, HDR + 32), 0, 0, "avg0");
    fx_near(enc_f64(&b, HDR + 40), 0.08, 1e-15, "avg1");
    assert_int_equal(tl_le_get_u64((const unsigned char *)b.data + HDR + 56), 1);
    fx_near(tl_ftrl_avg_weight(m, 1), 0.19087363577204054, 1e-14, "avg1 after update 2");
    assert_true(tl_ftrl_avg_weight(m, 0) == 0.0 && tl_ftrl_avg_weight(m, 2) == 0.0);

    double probe[2] = {0, 1};
    fx_near(tl_ftrl_predict(m, probe), 0.56126817043780952, 1e-15, "probe");
    tl_buf_free(&b);
    tl_ftrl_destroy(m);
}

/* With a large l1 most coordinates stay inside the dead zone: their w must be exactly 0,
 * and every other w must follow the closed form of the encoded (z, n). */
static void test_l1_zeroes_weights(void **state)
{
    (void)state;
    const int d = 12;
    const double alpha = 0.2, beta = 1, l1 = 3, l2 = 0.5;
    tl_ftrl *m = tl_ftrl_new(d, alpha, beta, l1, l2);
    double w[12];
    train(m, d, 400, (const double[]){0.5, 1.0, 1.0}, 3);
    tl_ftrl_weights(m, w);
    tl_buf b = {0};
    tl_ftrl_encode(m, &b);
    int zeros = 0, nonzeros = 0;
    for (int i = 0; i < d; i++) {
        double z = enc_f64(&b, HDR + 8 * (size_t)i), n = enc_f64(&b, HDR + 8 * (size_t)(d + i));
        if (fabs(z) <= l1) {
            if (w[i] != 0.0) fail_msg("w[%d] = %g with |z| = %g <= l1", i, w[i], fabs(z));
            zeros++;
        } else {
            double want = -(z - copysign(l1, z)) / ((beta + sqrt(n)) / alpha + l2);
            fx_near(w[i], want, 1e-15 * fabs(want), "closed form");
            assert_true(w[i] * z < 0);
            nonzeros++;
        }
    }
    /* The stream is built so that both cases occur (x[1] drives the label). */
    assert_true(zeros > 0);
    assert_true(nonzeros > 0);
    tl_buf_free(&b);
    tl_ftrl_destroy(m);
}

static void test_weight_zero_changes_nothing(void **state)
{
    (void)state;
    const int d = 5;
    tl_ftrl *m = tl_ftrl_new(d, 0.1, 1, 0.01, 0.1);
    train(m, d, 50, (const double[]){1.0}, 1);
    double x[5];
    int y;
    tl_buf before = {0}, after = {0};
    tl_ftrl_encode(m, &before);
    random_example(x, d, &y);
    double p = tl_ftrl_predict(m, x);
    assert_true(tl_ftrl_learn(m, x, y, 0.0) == p);
    assert_true(tl_ftrl_learn(m, x, y, -1.0) == p);   /* invalid weights are no-ops too */
    assert_true(tl_ftrl_learn(m, x, y, NAN) == p);
    tl_ftrl_encode(m, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    assert_int_equal(tl_ftrl_version(m), 50);
    assert_true(tl_ftrl_predict(m, x) == p);
    tl_buf_free(&before);
    tl_buf_free(&after);
    tl_ftrl_destroy(m);
}

/* An undo puts the dense model back, bit for bit, to its mark: the weights, averages and
 * version of a model that never learned what came after; and the journal ends. */
static void test_undo_dense(void **state)
{
    (void)state;
    const int d = 6;
    tl_ftrl *m = tl_ftrl_new(d, 0.1, 1, 0.01, 0.1), *ref = tl_ftrl_new(d, 0.1, 1, 0.01, 0.1);
    assert_int_equal(tl_ftrl_undo(m), 0); /* no mark: nothing */
    uint64_t seed = rng;   /* the same 30 examples for both */
    train(m, d, 30, (const double[]){1.0}, 1);
    rng = seed;
    train(ref, d, 30, (const double[]){1.0}, 1);
    tl_ftrl_undo_mark(m);
    train(m, d, 20, (const double[]){1.0}, 1);
    assert_true(tl_ftrl_undo(m) > 0);
    tl_buf a = {0}, b = {0};
    tl_ftrl_encode(m, &a);
    tl_ftrl_encode(ref, &b);
    fx_same_bytes_free(&a, &b);
    assert_int_equal(tl_ftrl_version(m), 30);
    same_avg(m, ref, d, "");
    assert_int_equal(tl_ftrl_undo(m), 0); /* the journal ended: nothing to put back */
    tl_ftrl_destroy(m);
    tl_ftrl_destroy(ref);
}

static void test_encode_decode_round_trip(void **state)
{
    (void)state;
    const int d = 9;
    tl_ftrl *m = tl_ftrl_new(d, 0.05, 0.5, 0.2, 1.5);
    train(m, d, 300, (const double[]){1.0, 2.0, 3.0, 4.0}, 4);
    double x[9], w1[9], w2[9];
    int y;
    tl_buf b = {0}, b2 = {0};
    tl_buf_append(&b, "prefix", 6);   /* encode appends */
    tl_ftrl_encode(m, &b);
    tl_ftrl *m2 = tl_ftrl_decode(b.data + 6, b.len - 6);
    assert_non_null(m2);
    assert_int_equal(tl_ftrl_dim(m2), d);
    assert_int_equal(tl_ftrl_version(m2), tl_ftrl_version(m));
    double a, be, l1, l2;
    tl_ftrl_params(m2, &a, &be, &l1, &l2);
    assert_true(a == 0.05 && be == 0.5 && l1 == 0.2 && l2 == 1.5);
    tl_ftrl_weights(m, w1);
    tl_ftrl_weights(m2, w2);
    assert_memory_equal(w1, w2, sizeof(w1));
    same_avg(m, m2, d, "");
    tl_ftrl_encode(m2, &b2);
    assert_int_equal(b2.len, b.len - 6);
    assert_memory_equal(b2.data, b.data + 6, b2.len);
    /* Both continue identically, bit for bit. */
    for (int t = 0; t < 300; t++) {
        random_example(x, d, &y);
        double p1 = tl_ftrl_learn(m, x, y, 0.7), p2 = tl_ftrl_learn(m2, x, y, 0.7);
        if (p1 != p2) fail_msg("step %d: %.17g != %.17g", t, p1, p2);
    }
    same_avg(m, m2, d, " later");
    tl_buf_free(&b);
    tl_buf_free(&b2);
    tl_ftrl_destroy(m);
    tl_ftrl_destroy(m2);
}

static void test_decode_rejects_malformed(void **state)
{
    (void)state;
    const int d = 3;
    tl_ftrl *m = tl_ftrl_new(d, 0.1, 1, 0, 0);
    double x[3] = {1, 0.5, -2};
    tl_ftrl_learn(m, x, 1, 1);
    tl_buf b = {0};
    tl_ftrl_encode(m, &b);
    assert_int_equal(b.len, HDR + 32 * d);

    fx_expect_exact_record(b.data, b.len, ftrl_decodes);   /* truncated, a trailing byte */
    assert_null(tl_ftrl_decode(NULL, 0));

    struct {
        size_t off;
        int byte;
        double f64;
        int is_f64;
        const char *what;
    } bad[] = {
        {0, 'X', 0, 0, "magic"},
        {4, 2, 0, 0, "format"},
        {8, 0, 0, 0, "d = 0"},
        {8, 4, 0, 0, "d disagrees with the length"},
        {12, 0, -0.1, 1, "alpha < 0"},
        {12, 0, 0, 1, "alpha = 0"},
        {20, 0, NAN, 1, "beta NaN"},
        {28, 0, -1, 1, "l1 < 0"},
        {36, 0, INFINITY, 1, "l2 inf"},
        {HDR + 8, 0, NAN, 1, "z NaN"},
        {HDR + 8 * d, 0, -1, 1, "n < 0"},
        {HDR + 8 * d + 8, 0, INFINITY, 1, "n inf"},
        {HDR + 16 * d + 8, 0, NAN, 1, "avg NaN"},
        {HDR + 24 * d + 7, 0x7f, 0, 0, "at after the version"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        tl_buf c = {0};
        tl_buf_append(&c, b.data, b.len);
        if (bad[k].is_f64) enc_put_f64(&c, bad[k].off, bad[k].f64);
        else c.data[bad[k].off] = (char)bad[k].byte;
        if (tl_ftrl_decode(c.data, c.len)) fail_msg("decoded a record with %s", bad[k].what);
        tl_buf_free(&c);
    }
    /* d = 257 with a matching length is still rejected. */
    tl_buf big = {0};
    tl_buf_append(&big, b.data, HDR);
    big.data[8] = (char)(257 & 0xff);
    big.data[9] = (char)(257 >> 8);
    for (int i = 0; i < 257 * 32; i++) tl_buf_putc(&big, 0);
    assert_null(tl_ftrl_decode(big.data, big.len));

    tl_buf_free(&big);
    tl_buf_free(&b);
    tl_ftrl_destroy(m);
}

static void test_invalid_parameters(void **state)
{
    (void)state;
    assert_null(tl_ftrl_new(0, 0.1, 1, 0, 0));
    assert_null(tl_ftrl_new(TL_FTRL_MAX_DIM + 1, 0.1, 1, 0, 0));
    assert_null(tl_ftrl_new(4, 0, 1, 0, 0));
    assert_null(tl_ftrl_new(4, 0.1, -1, 0, 0));
    assert_null(tl_ftrl_new(4, 0.1, 1, -0.1, 0));
    assert_null(tl_ftrl_new(4, 0.1, 1, 0, -0.1));
    assert_null(tl_ftrl_new(4, NAN, 1, 0, 0));
    /* beta = l2 = 0 is allowed: an untouched coordinate (n = 0) still has w = 0. */
    tl_ftrl *m = tl_ftrl_new(TL_FTRL_DENSE_DIM, 0.1, 0, 0, 0);
    assert_non_null(m);
    double x[TL_FTRL_DENSE_DIM] = {1, 0.5}, w[TL_FTRL_DENSE_DIM];
    for (int t = 0; t < 3; t++) tl_ftrl_learn(m, x, t % 2, 1);
    tl_ftrl_weights(m, w);
    assert_true(w[0] != 0 && w[1] != 0 && isfinite(w[0]) && isfinite(w[1]));
    for (int i = 2; i < TL_FTRL_DENSE_DIM; i++)
        if (w[i] != 0.0 || signbit(w[i])) fail_msg("w[%d] = %g, expected +0", i, w[i]);
    double p = tl_ftrl_predict(m, x);
    assert_true(p > 0 && p < 1);
    tl_ftrl_destroy(m);
    tl_ftrl_destroy(NULL);
}

/* A random sparse example of nnz coordinates from the generator state *r: coordinate 0
 * at 1, then one distinct index in each block [k span, (k + 1) span) with a value in
 * [-0.5, 1.5). */
static void random_sparse(uint64_t *r, int32_t *idx, double *v, int nnz, int span)
{
    for (int k = 0; k < nnz; k++) {
        *r = *r * 6364136223846793005ull + 1442695040888963407ull;
        idx[k] = k == 0 ? 0 : (int32_t)(k * span + (*r >> 33) % (uint64_t)span);
        v[k] = k == 0 ? 1.0 : (double)((*r >> 20) % 1000) / 500.0 - 0.5;
    }
}

/* A hashed feature space (d above TL_FTRL_DENSE_DIM): learning from sparse vectors is the
 * dense update on the same vectors, bit for bit, averages included; the encoding holds only
 * the coordinates that learned (format 4) and decodes to the same model; damaged records
 * are refused. */
static void test_sparse(void **state)
{
    (void)state;
    enum {
        D = 4096,
        NNZ = 5
    };
    tl_ftrl *a = tl_ftrl_new(D, 0.1, 1, 0.5, 0.1), *b = tl_ftrl_new(D, 0.1, 1, 0.5, 0.1);
    static double x[D];
    uint64_t r = 7;
    for (int t = 0; t < 300; t++) {
        int32_t idx[NNZ];
        double v[NNZ];
        random_sparse(&r, idx, v, NNZ, 800);
        memset(x, 0, sizeof(x));
        for (int k = 0; k < NNZ; k++) x[idx[k]] = v[k];
        int y = (r >> 40) % 3 == 0;
        double pa = tl_ftrl_learn(a, x, y, 1.5),
               pb = tl_ftrl_learn_sparse(b, idx, v, NNZ, 0, y, 1.5);
        if (pa != pb) fail_msg("example %d: dense p %.17g, sparse p %.17g", t, pa, pb);
        assert_true(tl_ftrl_dot_sparse(b, idx, v, NNZ) == tl_ftrl_dot_sparse(a, idx, v, NNZ));
    }
    assert_int_equal(tl_ftrl_version(a), tl_ftrl_version(b));
    int used = 0;
    for (int i = 0; i < D; i++) {
        if (!(fabs(tl_ftrl_weight(a, i) - tl_ftrl_weight(b, i)) <= 1e-12))
            fail_msg("w[%d] differs", i);
        if (tl_ftrl_avg_weight(a, i) != tl_ftrl_avg_weight(b, i)) fail_msg("avg[%d] differs", i);
        used += tl_ftrl_weight(b, i) != 0;
    }
    assert_true(used > 50);
    assert_true(tl_ftrl_weight(b, -1) == 0 && tl_ftrl_weight(b, D) == 0);

    tl_buf e = {0};
    tl_ftrl_encode(b, &e);
    assert_int_equal(tl_le_get_u32((const unsigned char *)(e.data + 4)), 4);
    uint32_t k = tl_le_get_u32((const unsigned char *)(e.data + 52));
    assert_true(k > 50 && k < 5 * 300);
    assert_int_equal(e.len, 56 + (size_t)k * 36);
    tl_ftrl *c = tl_ftrl_decode(e.data, e.len);
    assert_non_null(c);
    assert_int_equal(tl_ftrl_version(c), tl_ftrl_version(b));
    for (int i = 0; i < D; i++)
        if (tl_ftrl_weight(c, i) != tl_ftrl_weight(b, i) ||
            tl_ftrl_avg_weight(c, i) != tl_ftrl_avg_weight(b, i))
            fail_msg("decoded w[%d] differs", i);
    tl_buf e2 = {0};
    tl_ftrl_encode(c, &e2);
    assert_int_equal(e2.len, e.len);
    assert_memory_equal(e2.data, e.data, e.len);
    /* damage: a trailing byte, a count above d, indices out of order, n = 0 */
    assert_null(tl_ftrl_decode(e.data, e.len - 1));
    tl_buf_append(&e2, "x", 1);
    assert_null(tl_ftrl_decode(e2.data, e2.len));
    memcpy(e2.data, e.data, e.len);
    tl_le_put_u32(e2.data + 52, D + 1);
    assert_null(tl_ftrl_decode(e2.data, e.len));
    memcpy(e2.data, e.data, e.len);
    tl_le_put_u32(e2.data + 56 + 36,
                  tl_le_get_u32((const unsigned char *)(e.data + 56))); /* second index = first */
    assert_null(tl_ftrl_decode(e2.data, e.len));
    memcpy(e2.data, e.data, e.len);
    tl_le_put_f64(e2.data + 56 + 12, 0.0);
    assert_null(tl_ftrl_decode(e2.data, e.len));
    tl_buf_free(&e);
    tl_buf_free(&e2);
    tl_ftrl_destroy(a);
    tl_ftrl_destroy(b);
    tl_ftrl_destroy(c);
}

/* The averaged weights against a second computation: after every update, every weight
 * folded into a plain running average by its recurrence (avg += (eta + 1) (w - avg) /
 * (t + eta): eta 0 the plain mean, 1 version t weighing t), over all coordinates, against the
 * model's lazy closed form, for eta 0, 1 (a new model's) and 3. Updates of weight 0 are not
 * versions and change nothing. A record of format 1 (dense, from before the averages)
 * decodes with each average at its weight. */
static void test_averaged_weights(void **state)
{
    (void)state;
    enum {
        D = 200,
        NNZ = 4
    }; /* dense: format 1 below */
    static const int etas[] = {1, 0, 3};
    tl_ftrl *bad = tl_ftrl_new(1, 1, 1, 0, 0);
    assert_int_equal(tl_ftrl_set_average(bad, -1), -1);
    assert_int_equal(tl_ftrl_set_average(bad, TL_FTRL_MAX_ETA + 1), -1);
    tl_ftrl_destroy(bad);
    for (size_t e = 0; e < sizeof(etas) / sizeof(etas[0]); e++) {
        int eta = etas[e];
        tl_ftrl *m = tl_ftrl_new(D, 0.3, 1, 0.1, 0.1);
        if (eta != 1) assert_int_equal(tl_ftrl_set_average(m, eta), 0);
        static double avg[D];
        memset(avg, 0, sizeof(avg));
        uint64_t r = 11;
        for (int t = 0; t < 2000; t++) {
            int32_t idx[NNZ];
            double v[NNZ];
            random_sparse(&r, idx, v, NNZ, 45);
            uint64_t before = tl_ftrl_version(m);
            tl_ftrl_learn_sparse(m, idx, v, NNZ, -1.0, (r >> 40) % 4 == 0, t % 50 == 7 ? 0.0 : 1.0);
            uint64_t ver = tl_ftrl_version(m);
            if (ver == before) continue;
            for (int i = 0; i < D; i++)
                avg[i] +=
                    (eta + 1) * (tl_ftrl_weight(m, i) - avg[i]) / (double)(ver + (uint64_t)eta);
            if (t % 97 == 0 || t == 1999)
                for (int i = 0; i < D; i++)
                    if (!(fabs(tl_ftrl_avg_weight(m, i) - avg[i]) <= 1e-12))
                        fail_msg("eta %d, step %d, avg[%d]: %.17g, recurrence %.17g", eta, t, i,
                                 tl_ftrl_avg_weight(m, i), avg[i]);
        }
        assert_int_equal(tl_ftrl_version(m), 2000 - 40);
        int moved = 0; /* the average is not the last iterate */
        for (int i = 0; i < D; i++) moved += tl_ftrl_avg_weight(m, i) != tl_ftrl_weight(m, i);
        assert_true(moved > 60);
        assert_true(tl_ftrl_avg_weight(m, -1) == 0 && tl_ftrl_avg_weight(m, D) == 0);

        /* format 1: the header and z, n of the current record */
        tl_buf b = {0}, old = {0};
        tl_ftrl_encode(m, &b);
        tl_buf_append(&old, b.data, HDR + 16 * D);
        tl_le_put_u32(old.data + 4, 1);
        tl_ftrl *o = tl_ftrl_decode(old.data, old.len);
        assert_non_null(o);
        for (int i = 0; i < D; i++)
            if (tl_ftrl_avg_weight(o, i) != tl_ftrl_weight(m, i) ||
                tl_ftrl_weight(o, i) != tl_ftrl_weight(m, i))
                fail_msg("format 1, coordinate %d", i);
        tl_buf_free(&b);
        tl_buf_free(&old);
        tl_ftrl_destroy(o);
        tl_ftrl_destroy(m);
    }
}

/* Extreme margins give 0 or 1, never NaN; a fresh model says 0.5 everywhere. */
static void test_sigmoid_extremes(void **state)
{
    (void)state;
    tl_ftrl *m = tl_ftrl_new(2, 10, 0, 0, 0);
    double x0[2] = {1, 3};
    assert_true(tl_ftrl_predict(m, x0) == 0.5);
    double x[2] = {1, 1};
    for (int t = 0; t < 20; t++) tl_ftrl_learn(m, x, 1, 1e6); /* drives w . x far up */
    double w[2];
    tl_ftrl_weights(m, w);
    assert_true(w[0] > 0 && w[1] > 0);
    double big[2] = {1e6, 1e6}, small[2] = {-1e6, -1e6}, huge[2] = {1e300, 1e300};
    assert_true(tl_ftrl_predict(m, big) == 1.0);
    assert_true(tl_ftrl_predict(m, small) == 0.0);
    double ph = tl_ftrl_predict(m, huge); /* w . x overflows to +inf */
    assert_true(ph == 1.0);
    tl_ftrl_destroy(m);
}

/* Two models learn different examples from one state and exchange their deltas (in
 * parts): both end with the same weights (each coordinate gets the same sums, added in
 * another order: equal to rounding), and the version counts every update. A delta that
 * does not decode changes nothing. */
static void learn_some(tl_ftrl *m, uint64_t r, int n)
{
    for (int t = 0; t < n; t++) {
        int32_t idx[3];
        double v[3];
        for (int k = 0; k < 3; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            idx[k] = (int32_t)(k * 300 + (r >> 33) % 300); /* distinct */
            v[k] = (double)((r >> 20) % 1000) / 500.0 - 0.5;
        }
        tl_ftrl_learn_sparse(m, idx, v, 3, -1.0, (r >> 40) % 3 == 0, 1.0);
    }
}

static void test_delta_sharing(void **state)
{
    (void)state;
    enum {
        D = 900
    };
    tl_ftrl *a = tl_ftrl_new(D, 0.2, 1, 0, 0.1), *b = tl_ftrl_new(D, 0.2, 1, 0, 0.1);
    tl_buf buf = {0};
    assert_int_equal(tl_ftrl_delta_take(a, &buf, 100), 0); /* not tracking */
    tl_ftrl_delta_track(a);
    tl_ftrl_delta_track(b);
    learn_some(a, 5, 40);
    tl_ftrl_delta_clear(a); /* forgotten: never sent */
    assert_int_equal(tl_ftrl_delta_pending(a), 0);
    assert_int_equal(tl_ftrl_delta_take(a, &buf, 100), 0);
    tl_ftrl *a0 = tl_ftrl_new(D, 0.2, 1, 0, 0.1); /* what a had then, for b */
    learn_some(a0, 5, 40);
    tl_buf enc = {0};
    tl_ftrl_encode(a0, &enc);
    tl_ftrl_destroy(b);
    b = tl_ftrl_decode(enc.data, enc.len);
    tl_ftrl_delta_track(b);
    learn_some(a, 7, 300);
    learn_some(b, 9, 200);
    /* a's delta in parts of at most 50 coordinates */
    tl_buf parts[64];
    int np = 0;
    while (np < 64) {
        parts[np] = (tl_buf){0};
        if (!tl_ftrl_delta_take(a, &parts[np], 50)) break;
        np++;
    }
    assert_true(np > 2);
    tl_buf db = {0};
    assert_int_equal(tl_ftrl_delta_take(b, &db, 1000000), 1);
    assert_int_equal(tl_ftrl_delta_take(b, &db, 1000000), 0); /* nothing left */
    /* malformed deltas change nothing */
    double w_before = tl_ftrl_weight(a, 5);
    uint64_t v_before = tl_ftrl_version(a);
    tl_buf bad = {0};
    tl_buf_append(&bad, db.data, db.len);
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len - 1), -1); /* truncated */
    bad.data[8] ^= 1; /* d */
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len), -1);
    bad.data[8] ^= 1;
    bad.data[0] = 'X'; /* magic */
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len), -1);
    bad.data[0] = 'T';
    double nan = NAN, neg = -1;
    memcpy(bad.data + 24 + 4, &nan, 8); /* dz NaN */
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len), -1);
    memcpy(bad.data + 24 + 4, db.data + 24 + 4, 8);
    memcpy(bad.data + 24 + 12, &neg, 8); /* dn < 0 */
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len), -1);
    memcpy(bad.data + 24 + 12, db.data + 24 + 12, 8);
    uint32_t big = D;
    memcpy(bad.data + 24, &big, 4); /* index */
    assert_int_equal(tl_ftrl_delta_apply(a, bad.data, bad.len), -1);
    assert_true(tl_ftrl_weight(a, 5) == w_before && tl_ftrl_version(a) == v_before);
    /* the exchange */
    assert_int_equal(tl_ftrl_delta_apply(a, db.data, db.len), 200);
    uint64_t got = 0;
    for (int i = 0; i < np; i++) {
        int64_t u = tl_ftrl_delta_apply(b, parts[i].data, parts[i].len);
        assert_true(u >= 0);
        got += (uint64_t)u;
        tl_buf_free(&parts[i]);
    }
    assert_int_equal(got, 300); /* counted once, in the first part */
    assert_int_equal(tl_ftrl_version(a), 40 + 300 + 200);
    assert_int_equal(tl_ftrl_version(b), 40 + 300 + 200);
    int nonzero = 0;
    for (int i = 0; i < D; i++) {
        if (!(fabs(tl_ftrl_weight(a, i) - tl_ftrl_weight(b, i)) <= 1e-12))
            fail_msg("weight %d: %.17g against %.17g", i, tl_ftrl_weight(a, i),
                     tl_ftrl_weight(b, i));
        nonzero += tl_ftrl_weight(a, i) != 0;
        assert_true(isfinite(tl_ftrl_avg_weight(a, i)) && isfinite(tl_ftrl_avg_weight(b, i)));
    }
    assert_true(nonzero > 500);
    tl_buf_free(&bad);
    tl_buf_free(&db);
    tl_buf_free(&enc);
    tl_buf_free(&buf);
    tl_ftrl_destroy(a);
    tl_ftrl_destroy(a0);
    tl_ftrl_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_updates_by_hand),
        cmocka_unit_test(test_l1_zeroes_weights),
        cmocka_unit_test(test_weight_zero_changes_nothing),
        cmocka_unit_test(test_undo_dense),
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_decode_rejects_malformed),
        cmocka_unit_test(test_invalid_parameters),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_averaged_weights),
        cmocka_unit_test(test_delta_sharing),
        cmocka_unit_test(test_sigmoid_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
