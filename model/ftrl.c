/*
 * ftrl.c -- FTRL-Proximal logistic regression on dense vectors (ftrl.h).
 *
 * Algorithm 1 of McMahan et al. (KDD 2013), per example (x, y) with importance weight c:
 *
 *     w_i   = closed form of (z_i, n_i)                 (ftrl.h; 0 when |z_i| <= l1)
 *     p     = sigmoid(w . x)
 *     g_i   = c (p - y) x_i
 *     s_i   = (sqrt(n_i + g_i^2) - sqrt(n_i)) / alpha
 *     z_i  += g_i - s_i w_i
 *     n_i  += g_i^2
 *
 * State and derived values. The state is (z, n, version), the averaged weights (below) and
 * the four parameters; that is all tl_ftrl_encode() writes. Beside it the model keeps two
 * derived arrays: sq[i] = sqrt(n[i]) and w[i] = the closed form of (z[i], sq[i]). They are the paper's lazily
 * computed weights, computed once per change instead of once per use: (z, n) only change
 * in learn, which refreshes them from the sqrt(n_i + g_i^2) that the update needs anyway.
 * Invariant: sq[i] == sqrt(n[i]) and w[i] == weight_of(z[i], sq[i]) bit for bit, so a
 * decoded model, which recomputes both from (z, n), predicts identically. predict is then
 * one dot product; the closed form on every call would cost d square roots and d divisions
 * per prediction.
 *
 * Averaged weights (ftrl.h, tl_ftrl_avg_weight). Beside each w_i the model keeps avg_i, the
 * average of w_i over the updates so far, and at_i, the version avg_i was last brought up
 * to. With the parameter eta the average's recurrence is
 *     avg_t = avg_{t-1} + (eta + 1) (w_t - avg_{t-1}) / (t + eta)
 * (eta 0: the plain mean; 1: iterate t weighs t). w_i only changes when coordinate i
 * learns, so between two of its updates it is constant, and from version a to T the
 * recurrence has a closed form: avg_T = w + (avg_a - w) * prod_{j=0..eta} (a + j) / (T + j)
 * (the product of (s - 1) / (s + eta) for s = a+1..T telescopes). So the average costs
 * eta + 1 multiplications and divisions per coordinate update, and nothing for the
 * coordinates an example lacks. It is state: it cannot be recomputed from (z, n), and
 * tl_ftrl_encode() writes it (eta is configuration, not state).
 *
 * Coordinates with x_i = 0. The paper touches only the features present in x. Here g_i = 0
 * there, and the update then rewrites exactly the same n_i, sq_i, w_i and adds 0 to z_i, so
 * learn runs the same branch-free body over every coordinate: with a quarter of the
 * coordinates 0 at random, branching on x_i (and on the L1 dead zone in the closed form)
 * cost more in mispredictions than the skipped work saved
 * (about 1.5x slower at d = 64 on the machine bench_ftrl was run on).
 *
 * Numerics. s_i is computed as g_i^2 / ((sqrt(n_i + g_i^2) + sqrt(n_i)) alpha): the same
 * quantity without the cancellation of the difference of two close square roots (late in
 * a stream n_i is large and g_i^2 small). w_i is the paper's expression rearranged
 * (weight_of). Both differ from the printed formulas by rounding only; the integration test
 * (tests/integration/test_ftrl.py) holds predictions to 1e-9 of a literal transcription of
 * the paper and of River's FTRLProximal, and sees about 1e-15. The sigmoid never overflows:
 * exp() only ever gets a non-positive argument.
 *
 * The dot product is a loop with four accumulators in a fixed order, not cblas_ddot.
 * Measured per prediction (dot + sigmoid, best of 7 runs of 1M, -O2, one core of the
 * development machine): d = 16: 16 ns vs 27 ns with cblas_ddot; d = 44 (the journey
 * model's dimension): 17 vs 32; d = 64: 24 vs 25; d = 256: 74 vs 51 (bench_ftrl's medians
 * agree: about 41M vs 27M predictions/s at d = 44; at d = 64 between parity and cblas_ddot
 * 20% ahead, on a loaded machine). For the small d this model is used at, OpenBLAS's call
 * and dispatch overhead dominates; and a fixed order keeps
 * predictions bit-identical on every CPU, where OpenBLAS picks its kernel, and so its
 * summation order, at run time. BLAS pays when scoring many vectors at once:
 * tl_ftrl_weights() + one cblas_dgemv. bench_ftrl prints all three (predictions_per_s,
 * predictions_cblas_per_s, batch_predictions_per_s) for any --dim.
 *
 * Rejected: a separate, unregularised intercept (the paper regularises every coordinate,
 * and a bias feature keeps one code path; ftrl.h says so); float state (the reference tests
 * require 1e-9 agreement, and the state is tiny).
 */
#include "ftrl.h"
#include "lib/undo.h"
#include "lib/wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tl_ftrl {
    int d;
    double alpha, beta, l1, l2;
    double k;             /* beta + alpha * l2 */
    uint64_t version;
    double *z, *n;        /* the state */
    double *sq, *w;       /* derived: sqrt(n), weights */
    double *avg;          /* state: the averaged weights, each as of version at[i] */
    uint64_t *at;
    int eta;              /* the average's weighting (tl_ftrl_set_average) */
    /* Sharing (tl_ftrl_delta_track): what learning added to z and n since the last take,
     * at the coordinates listed in touched (mark[i] says whether i is listed). */
    double *dz, *dn;
    int32_t *touched;
    unsigned char *mark;
    int n_touched;
    uint64_t d_updates;
    /* Undo (tl_ftrl_undo_mark): each coordinate's state as the last mark left it, saved
     * at its first change since (rows: struct undo_row), and the version then. */
    tl_undo undo;
    uint64_t u_version;
};

struct undo_row {
    int32_t i;
    double z, n, sq, w, avg;
    uint64_t at;
};

static int params_ok(int d, double alpha, double beta, double l1, double l2)
{
    return d >= 1 && d <= TL_FTRL_MAX_DIM && isfinite(alpha) && alpha > 0 && isfinite(beta) &&
        beta >= 0 && isfinite(l1) && l1 >= 0 && isfinite(l2) && l2 >= 0;
}

/* The closed form of w_i, given sqrt(n_i), as -sgn(z)(|z| - l1) * alpha / (beta + alpha l2
 * + sqrt(n)): the paper's expression with numerator and denominator multiplied by alpha
 * (one division instead of two), and without a branch: max(|z| - l1, 0) is 0 in the dead
 * zone. The denominator is 0 only for beta = l2 = n = 0, where z = 0 too (z moves only
 * with a non-zero gradient, which makes n > 0): 1 stands in for it so that 0 * inf never
 * happens. "+ 0.0" turns the -0.0 that copysign gives in the dead zone into +0.0. */
static inline double weight_of(const tl_ftrl *m, double z, double sq)
{
    double a = fabs(z) - m->l1, den = m->k + sq;
    return -copysign(a > 0 ? a : 0.0, z) * (m->alpha / (den > 0 ? den : 1.0)) + 0.0;
}

tl_ftrl *tl_ftrl_new(int d, double alpha, double beta, double l1, double l2)
{
    if (!params_ok(d, alpha, beta, l1, l2)) return NULL;
    tl_ftrl *m = tl_xcalloc(1, sizeof(*m));
    m->d = d;
    m->alpha = alpha;
    m->beta = beta;
    m->l1 = l1;
    m->l2 = l2;
    m->k = beta + alpha * l2;
    /* One block for the arrays: they are read together on every learn. */
    m->z = tl_xcalloc((size_t)d * 6, sizeof(double));
    m->n = m->z + d;
    m->sq = m->n + d;
    m->w = m->sq + d;
    m->avg = m->w + d;
    m->at = (uint64_t *)(void *)(m->avg + d);
    m->eta = 1;
    return m;
}

void tl_ftrl_destroy(tl_ftrl *m)
{
    if (!m) return;
    free(m->z);
    free(m->dz);
    tl_undo_free(&m->undo);
    free(m);
}

int tl_ftrl_dim(const tl_ftrl *m) { return m->d; }

uint64_t tl_ftrl_version(const tl_ftrl *m) { return m->version; }

void tl_ftrl_params(const tl_ftrl *m, double *alpha, double *beta, double *l1, double *l2)
{
    if (alpha) *alpha = m->alpha;
    if (beta) *beta = m->beta;
    if (l1) *l1 = m->l1;
    if (l2) *l2 = m->l2;
}

void tl_ftrl_weights(const tl_ftrl *m, double *w)
{
    memcpy(w, m->w, (size_t)m->d * sizeof(double));
}

/* w . x with four accumulators (i mod 4), combined as (a0 + a1) + (a2 + a3). */
static inline double dot(const double *restrict a, const double *restrict b, int d)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= d; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < d; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

double tl_ftrl_weight(const tl_ftrl *m, int i) { return i >= 0 && i < m->d ? m->w[i] : 0.0; }

/* avg_i brought to version T (the closed form above); w_i has not changed since at_i. */
static inline double avg_at(const tl_ftrl *m, int i, uint64_t T)
{
    double a = (double)m->at[i], t = (double)T, w = m->w[i], f = 1;
    if (!T) return w;
    for (int j = 0; j <= m->eta; j++) f *= (a + j) / (t + j);
    return w + (m->avg[i] - w) * f;
}

int tl_ftrl_set_average(tl_ftrl *m, int eta)
{
    if (eta < 0 || eta > TL_FTRL_MAX_ETA) return -1;
    m->eta = eta;
    return 0;
}

double tl_ftrl_avg_weight(const tl_ftrl *m, int i)
{
    return i >= 0 && i < m->d ? avg_at(m, i, m->version) : 0.0;
}

double tl_ftrl_dot_sparse_avg(const tl_ftrl *m, const int32_t *idx, const double *x, int nnz)
{
    double s = 0;
    for (int k = 0; k < nnz; k++) s += avg_at(m, idx[k], m->version) * x[k];
    return s;
}

/* Before coordinate i changes: its state as the mark left it, if not saved yet. */
static inline void save(tl_ftrl *m, int i)
{
    struct undo_row *r = tl_undo_save(&m->undo, (size_t)i);
    if (r) *r = (struct undo_row){i, m->z[i], m->n[i], m->sq[i], m->w[i], m->avg[i], m->at[i]};
}

/* Before w_i changes: the average up to now, with the old w_i. */
static inline void settle(tl_ftrl *m, int i)
{
    save(m, i);
    m->avg[i] = avg_at(m, i, m->version);
    m->at[i] = m->version;
}

/* Adds one coordinate's step to the delta being gathered (tl_ftrl_delta_track). */
static inline void track(tl_ftrl *m, int i, double dz, double dn)
{
    if (!m->mark[i]) {
        m->mark[i] = 1;
        m->touched[m->n_touched++] = i;
    }
    m->dz[i] += dz;
    m->dn[i] += dn;
}

double tl_ftrl_dot_sparse(const tl_ftrl *m, const int32_t *idx, const double *x, int nnz)
{
    double s = 0;
    for (int k = 0; k < nnz; k++) s += m->w[idx[k]] * x[k];
    return s;
}

double tl_ftrl_predict(const tl_ftrl *m, const double *x) { return tl_sigmoid(dot(m->w, x, m->d)); }

double tl_ftrl_learn(tl_ftrl *m, const double *x, int y, double weight)
{
    double p = tl_sigmoid(dot(m->w, x, m->d));
    if (!(weight > 0) || !isfinite(weight)) return p;
    double c = weight * (p - (y ? 1.0 : 0.0));
    const double alpha = m->alpha;
    double *restrict z = m->z, *restrict n = m->n, *restrict sq = m->sq, *restrict w = m->w;
    /* Branch-free over every coordinate: where x[i] == 0, g = 0 and the body rewrites
     * the same n, sq and w (sqrt(n + 0) == sq exactly) and adds 0 to z. */
    for (int i = 0; i < m->d; i++)
        if (x[i] != 0) settle(m, i);
    for (int i = 0; i < m->d; i++) {
        double g = c * x[i], g2 = g * g;
        double nn = n[i] + g2, sqn = sqrt(nn);
        double den = (sqn + sq[i]) * alpha;
        double s = g2 / (den > 0 ? den : 1.0);   /* den = 0 only when n = g = 0 */
        double dz = g - s * w[i];
        z[i] += dz;
        n[i] = nn;
        sq[i] = sqn;
        w[i] = weight_of(m, z[i], sqn);
        if (m->dz && x[i] != 0) track(m, i, dz, g2);   /* loop-invariant test: unswitched */
    }
    m->version++;
    if (m->dz) m->d_updates++;
    return p;
}

/* The update of coordinate i by gradient g (the body of tl_ftrl_learn's loop). */
static inline void update_one(tl_ftrl *m, int i, double g)
{
    settle(m, i);
    double g2 = g * g, nn = m->n[i] + g2, sqn = sqrt(nn);
    double den = (sqn + m->sq[i]) * m->alpha;
    double s = g2 / (den > 0 ? den : 1.0);
    double dz = g - s * m->w[i];
    m->z[i] += dz;
    m->n[i] = nn;
    m->sq[i] = sqn;
    m->w[i] = weight_of(m, m->z[i], sqn);
    if (m->dz) track(m, i, dz, g2);
}

double tl_ftrl_learn_sparse(tl_ftrl *m, const int32_t *idx, const double *x, int nnz, double offset,
                            int y, double weight)
{
    double p = tl_sigmoid(offset + tl_ftrl_dot_sparse(m, idx, x, nnz));
    if (!(weight > 0) || !isfinite(weight)) return p;
    double c = weight * (p - (y ? 1.0 : 0.0));
    for (int k = 0; k < nnz; k++)
        if (x[k] != 0) update_one(m, idx[k], c * x[k]);
    m->version++;
    if (m->dz) m->d_updates++;
    return p;
}

/* ---- encoding: little-endian, fixed layout (ftrl.h) ----------------------------- */

#define FTRL_MAGIC "TLFT"
#define FTRL_FORMAT 1u          /* dense, without the averages (read only) */
#define FTRL_FORMAT_SPARSE 2u   /* sparse, without the averages (read only) */
#define FTRL_FORMAT_AVG 3u
#define FTRL_FORMAT_SPARSE_AVG 4u
#define FTRL_HEADER (4 + 4 + 4 + 4 * 8 + 8)
#define FTRL_SPARSE_ROW (4 + 8 + 8 + 8 + 8)

/* Reserves len bytes in out and writes the header of the given format; returns where the
 * body goes. */
static char *encode_header(const tl_ftrl *m, tl_buf *out, size_t len, uint32_t format)
{
    tl_buf_reserve(out, len);
    char *p = tl_wire_w_frame(out->data + out->len, FTRL_MAGIC, format);
    p = tl_le_put_u32(p, (uint32_t)m->d);
    p = tl_le_put_f64(p, m->alpha);
    p = tl_le_put_f64(p, m->beta);
    p = tl_le_put_f64(p, m->l1);
    p = tl_le_put_f64(p, m->l2);
    return tl_le_put_u64(p, m->version);
}

void tl_ftrl_encode(const tl_ftrl *m, tl_buf *out)
{
    size_t len;
    if (m->d > TL_FTRL_DENSE_DIM) {   /* the coordinates that learned */
        uint32_t k = 0;
        for (int i = 0; i < m->d; i++) k += m->n[i] > 0;
        len = FTRL_HEADER + 4 + (size_t)k * FTRL_SPARSE_ROW;
        char *p = tl_le_put_u32(encode_header(m, out, len, FTRL_FORMAT_SPARSE_AVG), k);
        for (int i = 0; i < m->d; i++) {
            if (!(m->n[i] > 0)) continue;
            p = tl_le_put_u32(p, (uint32_t)i);
            p = tl_le_put_f64(p, m->z[i]);
            p = tl_le_put_f64(p, m->n[i]);
            p = tl_le_put_f64(p, m->avg[i]);
            p = tl_le_put_u64(p, m->at[i]);
        }
    } else {
        len = FTRL_HEADER + (size_t)m->d * 32;
        char *p = encode_header(m, out, len, FTRL_FORMAT_AVG);
        for (int i = 0; i < m->d; i++) p = tl_le_put_f64(p, m->z[i]);
        for (int i = 0; i < m->d; i++) p = tl_le_put_f64(p, m->n[i]);
        for (int i = 0; i < m->d; i++) p = tl_le_put_f64(p, m->avg[i]);
        for (int i = 0; i < m->d; i++) p = tl_le_put_u64(p, m->at[i]);
    }
    out->len += len;
    out->data[out->len] = '\0';   /* tl_buf keeps its contents terminated */
}

/* One coordinate's decoded state; 0 when it is not valid. A record without averages (formats
 * 1 and 2, written before they existed: has_avg 0) starts each average at the weight. */
static int set_coord(tl_ftrl *m, uint32_t i, double z, double n, int has_avg, double avg,
                     uint64_t at)
{
    if (!isfinite(z) || !isfinite(n) || n < 0) return 0;
    m->z[i] = z;
    m->n[i] = n;
    m->sq[i] = sqrt(n);
    m->w[i] = weight_of(m, z, m->sq[i]);
    m->avg[i] = has_avg ? avg : m->w[i];
    m->at[i] = has_avg ? at : m->version;
    return isfinite(m->avg[i]) && m->at[i] <= m->version;
}

static tl_ftrl *decode_header(const unsigned char *p, uint32_t d)
{
    tl_ftrl *m = tl_ftrl_new((int)d, tl_le_get_f64(p + 12), tl_le_get_f64(p + 20),
                             tl_le_get_f64(p + 28), tl_le_get_f64(p + 36));
    if (m) m->version = tl_le_get_u64(p + 44);
    return m;
}

static tl_ftrl *decode_sparse(const unsigned char *p, size_t len, uint32_t d, int with_avg)
{
    size_t row = with_avg ? FTRL_SPARSE_ROW : 20;
    if (d <= TL_FTRL_DENSE_DIM || d > TL_FTRL_MAX_DIM || len < FTRL_HEADER + 4) return NULL;
    uint32_t k = tl_le_get_u32(p + FTRL_HEADER);
    if (k > d || len != FTRL_HEADER + 4 + (size_t)k * row) return NULL;
    tl_ftrl *m = decode_header(p, d);
    if (!m) return NULL;
    const unsigned char *q = p + FTRL_HEADER + 4;
    int64_t last = -1;
    for (uint32_t j = 0; j < k; j++, q += row) {
        uint32_t i = tl_le_get_u32(q);
        double n = tl_le_get_f64(q + 12);
        if ((int64_t)i <= last || i >= d || !(n > 0) ||
            !set_coord(m, i, tl_le_get_f64(q + 4), n, with_avg,
                       with_avg ? tl_le_get_f64(q + 20) : 0,
                       with_avg ? tl_le_get_u64(q + 28) : 0)) {
            tl_ftrl_destroy(m);
            return NULL;
        }
        last = i;
    }
    return m;
}

tl_ftrl *tl_ftrl_decode(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t format = tl_wire_frame_format(buf, len, FTRL_MAGIC);
    if (!format || len < FTRL_HEADER) return NULL;
    uint32_t d = tl_le_get_u32(p + 8);
    if (format == FTRL_FORMAT_SPARSE || format == FTRL_FORMAT_SPARSE_AVG)
        return decode_sparse(p, len, d, format == FTRL_FORMAT_SPARSE_AVG);
    if (format != FTRL_FORMAT && format != FTRL_FORMAT_AVG) return NULL;
    size_t per = format == FTRL_FORMAT_AVG ? 32 : 16;
    if (d < 1 || d > TL_FTRL_DENSE_DIM || len != FTRL_HEADER + (size_t)d * per) return NULL;
    tl_ftrl *m = decode_header(p, d);
    if (!m) return NULL;
    const unsigned char *zp = p + FTRL_HEADER, *np = zp + (size_t)d * 8;
    int has_avg = per == 32;   /* format 3: avg[d] and at[d] follow n */
    for (uint32_t i = 0; i < d; i++) {
        size_t o = 8 * (size_t)i;
        if (!set_coord(m, i, tl_le_get_f64(zp + o), tl_le_get_f64(np + o), has_avg,
                       has_avg ? tl_le_get_f64(np + (size_t)d * 8 + o) : 0,
                       has_avg ? tl_le_get_u64(np + (size_t)d * 16 + o) : 0)) {
            tl_ftrl_destroy(m);
            return NULL;
        }
    }
    return m;
}

/* ---- sharing: deltas of (z, n) between models (ftrl.h) ------------------------- */

#define DELTA_MAGIC "TLFD"
#define DELTA_FORMAT 1u
#define DELTA_HEADER (4 + 4 + 4 + 8 + 4)
#define DELTA_ROW (4 + 8 + 8)

void tl_ftrl_delta_track(tl_ftrl *m)
{
    if (m->dz) return;
    size_t d = (size_t)m->d;
    /* one block: dz[d], dn[d], touched[d], mark[d] */
    m->dz = tl_xcalloc(1, d * (8 + 8 + 4 + 1));
    m->dn = m->dz + d;
    m->touched = (int32_t *)(void *)(m->dn + d);
    m->mark = (unsigned char *)(m->touched + d);
}

void tl_ftrl_delta_clear(tl_ftrl *m)
{
    if (!m->dz) return;
    for (int k = 0; k < m->n_touched; k++) {
        int i = m->touched[k];
        m->dz[i] = m->dn[i] = 0;
        m->mark[i] = 0;
    }
    m->n_touched = 0;
    m->d_updates = 0;
}

int tl_ftrl_delta_pending(const tl_ftrl *m) { return m->dz && (m->d_updates || m->n_touched); }

/* ---- undo ---------------------------------------------------------------------------- */

void tl_ftrl_undo_mark(tl_ftrl *m)
{
    tl_undo_mark(&m->undo, (size_t)m->d, sizeof(struct undo_row));
    m->u_version = m->version;
}

void tl_ftrl_undo_off(tl_ftrl *m) { tl_undo_off(&m->undo); }

size_t tl_ftrl_undo(tl_ftrl *m)
{
    if (!m->undo.on) return 0;
    size_t n = m->undo.n_rows;
    for (size_t k = 0; k < n; k++) {
        const struct undo_row *r = tl_undo_row(&m->undo, k);
        m->z[r->i] = r->z;
        m->n[r->i] = r->n;
        m->sq[r->i] = r->sq;
        m->w[r->i] = r->w;
        m->avg[r->i] = r->avg;
        m->at[r->i] = r->at;
    }
    m->version = m->u_version;
    tl_undo_off(&m->undo);
    return n;
}

/* A delta's header (DELTA_HEADER bytes) at p; returns where its k rows go. */
static char *delta_header(const tl_ftrl *m, char *p, uint64_t updates, uint32_t k)
{
    p = tl_le_put_u32(tl_wire_w_frame(p, DELTA_MAGIC, DELTA_FORMAT), (uint32_t)m->d);
    return tl_le_put_u32(tl_le_put_u64(p, updates), k);
}

int tl_ftrl_delta_take(tl_ftrl *m, tl_buf *out, size_t max_rows)
{
    if (!tl_ftrl_delta_pending(m)) return 0;
    uint32_t k = (size_t)m->n_touched < max_rows ? (uint32_t)m->n_touched : (uint32_t)max_rows;
    size_t len = DELTA_HEADER + (size_t)k * DELTA_ROW;
    tl_buf_reserve(out, len);
    char *p = delta_header(m, out->data + out->len, m->d_updates, k);
    for (uint32_t j = 0; j < k; j++) {   /* the last k listed */
        int i = m->touched[--m->n_touched];
        p = tl_le_put_u32(p, (uint32_t)i);
        p = tl_le_put_f64(p, m->dz[i]);
        p = tl_le_put_f64(p, m->dn[i]);
        m->dz[i] = m->dn[i] = 0;
        m->mark[i] = 0;
    }
    m->d_updates = 0;   /* counted once, in the first part */
    out->len += len;
    out->data[out->len] = '\0';
    return 1;
}

void tl_ftrl_delta_put_empty(const tl_ftrl *m, tl_buf *out)
{
    char h[DELTA_HEADER];
    delta_header(m, h, 0, 0);
    tl_buf_append(out, h, sizeof(h));
}

size_t tl_ftrl_delta_len(const void *buf, size_t len)
{
    if (len < DELTA_HEADER || tl_wire_frame_format(buf, len, DELTA_MAGIC) != DELTA_FORMAT) return 0;
    uint32_t k = tl_le_get_u32((const unsigned char *)buf + 20);
    if ((len - DELTA_HEADER) / DELTA_ROW < k) return 0;
    return DELTA_HEADER + (size_t)k * DELTA_ROW;
}

int64_t tl_ftrl_delta_apply(tl_ftrl *m, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (tl_wire_frame_format(buf, len, DELTA_MAGIC) != DELTA_FORMAT || len < DELTA_HEADER ||
        tl_le_get_u32(p + 8) != (uint32_t)m->d)
        return -1;
    uint64_t updates = tl_le_get_u64(p + 12);
    uint32_t k = tl_le_get_u32(p + 20);
    if (updates > (uint64_t)INT64_MAX - m->version || k > (uint32_t)m->d ||
        len != DELTA_HEADER + (size_t)k * DELTA_ROW)
        return -1;
    /* everything is checked before anything changes */
    const unsigned char *q = p + DELTA_HEADER;
    for (uint32_t j = 0; j < k; j++, q += DELTA_ROW) {
        uint32_t i = tl_le_get_u32(q);
        double dz = tl_le_get_f64(q + 4), dn = tl_le_get_f64(q + 12);
        if (i >= (uint32_t)m->d || !isfinite(dz) || !isfinite(dn) || dn < 0 ||
            !isfinite(m->z[i] + dz) || !isfinite(m->n[i] + dn))
            return -1;
    }
    q = p + DELTA_HEADER;
    for (uint32_t j = 0; j < k; j++, q += DELTA_ROW) {
        uint32_t i = tl_le_get_u32(q);
        settle(m, (int)i);
        m->z[i] += tl_le_get_f64(q + 4);
        m->n[i] += tl_le_get_f64(q + 12);
        m->sq[i] = sqrt(m->n[i]);
        m->w[i] = weight_of(m, m->z[i], m->sq[i]);
    }
    m->version += updates;
    return (int64_t)updates;
}
