/*
 * bench_ftrl.c -- speed of the FTRL-Proximal model (model/ftrl.h), and a replay mode that
 * the reference test (tests/integration/test_ftrl.py) drives.
 *
 *   bench_ftrl [--dim D] [--calls N] [--runs N]
 *   bench_ftrl --replay FILE --alpha A --beta B --l1 L1 --l2 L2 [--roundtrip K]
 *
 * Bench mode: a pool of 1,024 synthetic examples (features uniform in [-1, 1], a quarter of
 * them 0, the last coordinate a constant bias, labels drawn from a fixed logistic model) is
 * cycled through. Each figure is the median over the runs (default 5) of N calls (default
 * 1,000,000) at dimension D (default 64), after one warm-up run:
 *   updates_per_s          tl_ftrl_learn (predict + update)
 *   predictions_per_s      tl_ftrl_predict (the model's own dot product)
 *   predictions_cblas_per_s  the same prediction with cblas_ddot over tl_ftrl_weights()
 *   batch_predictions_per_s  the pool scored in one cblas_dgemv, then a sigmoid per row
 * One key=value line each. Timing: CLOCK_MONOTONIC around the whole run.
 *
 * Replay mode: FILE has one example per line, "y,weight,x_0,...,x_{d-1}" (d from the first
 * line; lines starting with '#' are skipped). For each example it prints the prediction made
 * before the update, as "%.17g" (round-trips exactly), then "w,<w_0>,...,<w_{d-1}>" and
 * "version=<n>". With --roundtrip K the model is encoded and decoded again after every K
 * examples, so the replay also checks that a restored model continues identically.
 * Exit status 2 on bad arguments or input.
 */
#include "lib/util.h"
#include "model/ftrl.h"
#include "bench_util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now_ns(void) { return (double)tl_mono_ns(); }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform01(void)   /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* ---- bench -------------------------------------------------------------------- */

#define POOL 1024

enum {
    OP_LEARN,
    OP_PREDICT,
    OP_PREDICT_CBLAS,
    OP_BATCH
};

/* Calls per second, median over runs (plus one warm-up) of n calls of op. */
static double measure(int op, int d, long n, int runs, const double *xs, const int *ys)
{
    double *t = tl_xcalloc((size_t)runs, sizeof(*t));
    double *w = tl_xcalloc((size_t)d, sizeof(*w));
    double *scores = tl_xcalloc(POOL, sizeof(*scores));
    volatile double sink = 0;
    for (int r = -1; r < runs; r++) {
        tl_ftrl *m = tl_ftrl_new(d, 0.05, 1.0, 0.5, 1.0);
        /* Prediction runs score a trained model, as in production. */
        if (op != OP_LEARN)
            for (long i = 0; i < 100000; i++)
                tl_ftrl_learn(m, xs + (size_t)(i % POOL) * d, ys[i % POOL], 1.0);
        tl_ftrl_weights(m, w);
        double acc = 0, t0 = now_ns();
        long calls = 0;
        switch (op) {
        case OP_LEARN:
            for (long i = 0; i < n; i++)
                acc += tl_ftrl_learn(m, xs + (size_t)(i % POOL) * d, ys[i % POOL], 1.0);
            calls = n;
            break;
        case OP_PREDICT:
            for (long i = 0; i < n; i++) acc += tl_ftrl_predict(m, xs + (size_t)(i % POOL) * d);
            calls = n;
            break;
        case OP_PREDICT_CBLAS:
            for (long i = 0; i < n; i++)
                acc += tl_sigmoid(cblas_ddot(d, w, 1, xs + (size_t)(i % POOL) * d, 1));
            calls = n;
            break;
        case OP_BATCH:
            for (long i = 0; i < n; i += POOL) {
                cblas_dgemv(CblasRowMajor, CblasNoTrans, POOL, d, 1.0, xs, d, w, 1, 0.0, scores, 1);
                for (int k = 0; k < POOL; k++) acc += tl_sigmoid(scores[k]);
                calls += POOL;
            }
            break;
        }
        double dt = now_ns() - t0;
        sink += acc;
        if (r >= 0) t[r] = (double)calls / (dt * 1e-9);
        tl_ftrl_destroy(m);
    }
    (void)sink;
    double med = bench_median(t, runs);
    free(t);
    free(w);
    free(scores);
    return med;
}

static int bench(int d, long n, int runs)
{
    double *xs = tl_xmalloc((size_t)POOL * d * sizeof(*xs));
    int *ys = tl_xmalloc(POOL * sizeof(*ys));
    double *truth = tl_xmalloc((size_t)d * sizeof(*truth));
    for (int i = 0; i < d; i++) truth[i] = 2 * uniform01() - 1;
    for (int k = 0; k < POOL; k++) {
        double *x = xs + (size_t)k * d, s = 0;
        for (int i = 0; i < d; i++) {
            x[i] = i == d - 1 ? 1.0 : uniform01() < 0.25 ? 0.0 : 2 * uniform01() - 1;
            s += truth[i] * x[i];
        }
        ys[k] = uniform01() < tl_sigmoid(s);
    }
    printf("dim=%d\ncalls=%ld\nruns=%d\n", d, n, runs);
    printf("updates_per_s=%.0f\n", measure(OP_LEARN, d, n, runs, xs, ys));
    printf("predictions_per_s=%.0f\n", measure(OP_PREDICT, d, n, runs, xs, ys));
    printf("predictions_cblas_per_s=%.0f\n", measure(OP_PREDICT_CBLAS, d, n, runs, xs, ys));
    printf("batch_predictions_per_s=%.0f\n", measure(OP_BATCH, d, n, runs, xs, ys));
    free(xs);
    free(ys);
    free(truth);
    return 0;
}

/* ---- replay ------------------------------------------------------------------- */

/* Parses "y,weight,x_0,...": returns the number of x values read (<= cap), -1 if bad. */
static int parse_line(char *line, int *y, double *weight, double *x, int cap)
{
    char *end;
    long yl = strtol(line, &end, 10);
    if (end == line || *end != ',' || (yl != 0 && yl != 1)) return -1;
    *y = (int)yl;
    char *s = end + 1;
    *weight = strtod(s, &end);
    if (end == s) return -1;
    int k = 0;
    while (*end == ',') {
        s = end + 1;
        if (k == cap) return -1;
        x[k] = strtod(s, &end);
        if (end == s || !isfinite(x[k])) return -1;
        k++;
    }
    if (*end != '\n' && *end != '\0' && *end != '\r') return -1;
    return k;
}

static int replay(const char *path, double alpha, double beta, double l1, double l2, long roundtrip)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    double x[TL_FTRL_DENSE_DIM];
    tl_ftrl *m = NULL;
    tl_buf buf = {0};
    long lineno = 0, examples = 0;
    int rc = 0, d = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        int y;
        double weight;
        int k = parse_line(line, &y, &weight, x, TL_FTRL_DENSE_DIM);
        if (k < 1 || (m && k != d)) {
            fprintf(stderr, "%s:%ld: bad example\n", path, lineno);
            rc = 2;
            break;
        }
        if (!m) {
            d = k;
            m = tl_ftrl_new(d, alpha, beta, l1, l2);
            if (!m) {
                fprintf(stderr, "bench_ftrl: invalid model parameters\n");
                rc = 2;
                break;
            }
        }
        printf("%.17g\n", tl_ftrl_learn(m, x, y, weight));
        if (roundtrip > 0 && ++examples % roundtrip == 0) {
            tl_buf_clear(&buf);
            tl_ftrl_encode(m, &buf);
            tl_ftrl *m2 = tl_ftrl_decode(buf.data, buf.len);
            if (!m2) {
                fprintf(stderr, "bench_ftrl: decode of an encoded model failed\n");
                rc = 1;
                break;
            }
            tl_ftrl_destroy(m);
            m = m2;
        }
    }
    if (rc == 0 && m) {
        double w[TL_FTRL_DENSE_DIM];
        tl_ftrl_weights(m, w);
        printf("w");
        for (int i = 0; i < d; i++) printf(",%.17g", w[i]);
        printf("\nversion=%llu\n", (unsigned long long)tl_ftrl_version(m));
    }
    tl_buf_free(&buf);
    tl_ftrl_destroy(m);
    free(line);
    fclose(f);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ftrl [--dim D] [--calls N] [--runs N]\n"
            "       bench_ftrl --replay FILE --alpha A --beta B --l1 L1 --l2 L2 "
            "[--roundtrip K]\n");
}

int main(int argc, char **argv)
{
    long n = 1000000, roundtrip = 0;
    int runs = 5, d = 64;
    const char *replay_path = NULL;
    double alpha = 0.1, beta = 1.0, l1 = 0.0, l2 = 0.0;
    for (int i = 1; i < argc; i += 2) {   /* --key value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--dim")) d = atoi(v);
        else if (!strcmp(a, "--calls")) n = strtol(v, NULL, 10);
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--replay")) replay_path = v;
        else if (!strcmp(a, "--alpha")) alpha = strtod(v, NULL);
        else if (!strcmp(a, "--beta")) beta = strtod(v, NULL);
        else if (!strcmp(a, "--l1")) l1 = strtod(v, NULL);
        else if (!strcmp(a, "--l2")) l2 = strtod(v, NULL);
        else if (!strcmp(a, "--roundtrip")) roundtrip = strtol(v, NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (replay_path) return replay(replay_path, alpha, beta, l1, l2, roundtrip);
    if (n <= 0 || runs <= 0 || d < 1 || d > TL_FTRL_DENSE_DIM) {
        usage();
        return 2;
    }
    return bench(d, n, runs);
}
