/*
 * seq.c -- the sequence model of a journey (seq.h).
 *
 * Weights, one array (tl_seq_weights), in this order: E_type (TL_SEQ_TYPES rows of d),
 * E_age (TL_SEQ_AGES rows), E_chan and E_cat (buckets rows each), Wq and Wk (d x d, row
 * r of Wq is q_r's weights), u, g (d each), b, sink. AdaGrad keeps one accumulator per
 * weight beside them.
 *
 * Numerics: touchpoint i's attention scores are shifted by m_i, the largest of the sink
 * and every s_ij (j < i) of the whole journey, so every exp() gets a non-positive argument;
 * a subset of the journey uses the same shift, so tl_seq_logit and tl_seq_grow agree.
 */
#include "seq.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftrl.h" /* tl_sigmoid */
#include "journey_features.h"
#include "lib/rng.h"
#include "lib/undo.h"
#include "lib/util.h"
#include "lib/wire.h"

#define SEQ_MAX_TPS 64

struct tl_seq {
    tl_seq_cfg cfg;
    uint64_t version;
    int d;
    size_t n_w;
    double *w, *acc;
    /* offsets into w */
    size_t o_type, o_age, o_chan, o_cat, o_wq, o_wk, o_u, o_g, o_b, o_sink;
    /* sharing (tl_seq_delta_track): the weights as last sent or applied, the embedding
     * rows learned since (listed once each: mark), the examples learned since */
    double *sent;
    uint32_t *touched;
    unsigned char *mark;
    size_t n_touched;
    uint64_t d_updates;
    /* Undo (tl_seq_undo_mark): each weight's w, acc and sent as the mark left them, saved
     * at its first change since (rows: struct seq_undo_row), and the version then. */
    tl_undo undo;
    uint64_t u_version;
};

struct seq_undo_row {
    size_t at;
    double w, acc, sent;
};

/* Before weight at changes: its state as the mark left it, if not saved yet. */
static inline void save(tl_seq *m, size_t at)
{
    struct seq_undo_row *r = tl_undo_save(&m->undo, at);
    if (r) *r = (struct seq_undo_row){at, m->w[at], m->acc[at], m->sent ? m->sent[at] : 0.0};
}

struct tl_seq_pass {
    int n, d;
    double b, sqrt_d;
    double *x;    /* n x d; the start of one block with the arrays below */
    double *q;    /* n x d */
    double *k;    /* n x d */
    double *r;    /* n */
    double *v;    /* n */
    double *ex;   /* n x n: e^{s_ij - m_i}, j < i */
    double *e0;   /* n: e^{sink - m_i} */
};

struct tl_seq_grow_state {
    const tl_seq_pass *p;
    double logit;
    double *num, *den;
    unsigned char *in;
};

tl_seq *tl_seq_new(const tl_seq_cfg *cfg, char *err, size_t errlen)
{
    if (cfg->dim < 4 || cfg->dim > 64 || cfg->buckets < 16 || cfg->buckets > (1 << 20) ||
        (cfg->buckets & (cfg->buckets - 1)) || !(cfg->lr > 0 && cfg->lr <= 10) ||
        !(cfg->l2 >= 0 && cfg->l2 <= 100)) {
        snprintf(err, errlen,
                 "sequence model: dim 4..64, buckets a power of two in 16..2^20, step in "
                 "(0, 10], L2 in [0, 100]");
        return NULL;
    }
    tl_seq *m = tl_xcalloc(1, sizeof(*m));
    m->cfg = *cfg;
    int d = m->d = cfg->dim;

    m->o_type = 0;
    m->o_age = m->o_type + (size_t)TL_SEQ_TYPES * d;
    m->o_chan = m->o_age + (size_t)TL_SEQ_AGES * d;
    m->o_cat = m->o_chan + (size_t)cfg->buckets * d;
    m->o_wq = m->o_cat + (size_t)cfg->buckets * d;
    m->o_wk = m->o_wq + (size_t)d * d;
    m->o_u = m->o_wk + (size_t)d * d;
    m->o_g = m->o_u + d;
    m->o_b = m->o_g + d;
    m->o_sink = m->o_b + 1;
    m->n_w = m->o_sink + 1;
    m->w = tl_xcalloc(m->n_w, sizeof(double));
    m->acc = tl_xcalloc(m->n_w, sizeof(double));
    gen_rng r;
    rng_seed(&r, cfg->seed);
    /* Embeddings small, projections of unit scale; u, g, b and the sink start at 0, so
     * the first prediction is the offset alone. */
    for (size_t i = 0; i < m->o_wq; i++) m->w[i] = (rng_unit(&r) - 0.5) * 0.1;
    double s = 1.0 / sqrt((double)d);
    for (size_t i = m->o_wq; i < m->o_u; i++) m->w[i] = (rng_unit(&r) - 0.5) * 2 * s;
    return m;
}

void tl_seq_free(tl_seq *m)
{
    if (!m) return;
    free(m->w);
    free(m->acc);
    free(m->sent); /* one block with touched and mark */
    tl_undo_free(&m->undo);
    free(m);
}

void tl_seq_undo_mark(tl_seq *m)
{
    tl_undo_mark(&m->undo, m->n_w, sizeof(struct seq_undo_row));
    m->u_version = m->version;
}

void tl_seq_undo_off(tl_seq *m) { tl_undo_off(&m->undo); }

size_t tl_seq_undo(tl_seq *m)
{
    if (!m->undo.on) return 0;
    size_t n = m->undo.n_rows;
    for (size_t k = 0; k < n; k++) {
        const struct seq_undo_row *r = tl_undo_row(&m->undo, k);
        m->w[r->at] = r->w;
        m->acc[r->at] = r->acc;
        if (m->sent) m->sent[r->at] = r->sent;
    }
    m->version = m->u_version;
    tl_undo_off(&m->undo);
    return n;
}

size_t tl_seq_size(const tl_seq *m) { return m->n_w; }

uint64_t tl_seq_version(const tl_seq *m) { return m->version; }

/* The state: "TLSQ", format 1, dim and buckets (u32 each), version (u64), then every
 * weight and every AdaGrad sum (f64 each), little-endian. */
void tl_seq_encode(const tl_seq *m, tl_buf *out)
{
    char head[24], *q = tl_wire_w_frame(head, "TLSQ", 1);
    q = tl_le_put_u32(q, (uint32_t)m->d);
    q = tl_le_put_u32(q, (uint32_t)m->cfg.buckets);
    tl_le_put_u64(q, m->version);
    tl_buf_append(out, head, sizeof(head));
    char w[8];
    for (size_t i = 0; i < m->n_w; i++)
        tl_buf_append(out, w, (size_t)(tl_le_put_f64(w, m->w[i]) - w));
    for (size_t i = 0; i < m->n_w; i++)
        tl_buf_append(out, w, (size_t)(tl_le_put_f64(w, m->acc[i]) - w));
}

tl_seq *tl_seq_decode(const void *data, size_t len, const tl_seq_cfg *cfg, char *why, size_t whylen)
{
    const unsigned char *b = data;
    if (len < 24 || tl_wire_frame_format(data, len, "TLSQ") != 1) {
        snprintf(why, whylen, "not a sequence model's state");
        return NULL;
    }
    uint32_t dim = tl_le_get_u32(b + 8), buckets = tl_le_get_u32(b + 12);
    if ((int)dim != cfg->dim || (int)buckets != cfg->buckets) {
        snprintf(why, whylen,
                 "a sequence model of dim %u and %u buckets, where the configuration has %d "
                 "and %d",
                 dim, buckets, cfg->dim, cfg->buckets);
        return NULL;
    }
    tl_seq *m = tl_seq_new(cfg, why, whylen);
    if (!m) return NULL;
    if (len != 24 + 16 * m->n_w) {
        snprintf(why, whylen, "a sequence model's state of %zu bytes, expected %zu", len,
                 24 + 16 * m->n_w);
        tl_seq_free(m);
        return NULL;
    }
    m->version = tl_le_get_u64(b + 16);
    for (size_t i = 0; i < 2 * m->n_w; i++) {
        double x = tl_le_get_f64(b + 24 + 8 * i);
        if (!isfinite(x) || (i >= m->n_w && x < 0)) {
            snprintf(why, whylen, "a sequence model's weight is not a finite number");
            tl_seq_free(m);
            return NULL;
        }
        (i < m->n_w ? m->w : m->acc)[i % m->n_w] = x;
    }
    if (cfg->residual) { /* a state learned without: its own part goes */
        memset(m->w + m->o_u, 0, (size_t)m->d * sizeof(double));
        m->w[m->o_b] = 0;
    }
    return m;
}

double *tl_seq_weights(tl_seq *m) { return m->w; }

/* The rows a touchpoint's x is the sum of, with their weights: type, channel, category
 * (when known), and up to two age anchors. Returns how many. */
static int rows_of(const tl_seq *m, const tl_seq_tp *t, int64_t at, size_t *row, double *wt)
{
    int n = 0, d = m->d;
    int type = t->type < 0 || t->type >= TL_SEQ_TYPES ? 0 : t->type;
    row[n] = m->o_type + (size_t)type * d;
    wt[n++] = 1;
    size_t mask = (size_t)m->cfg.buckets - 1;
    if (t->chan_key) {
        row[n] = m->o_chan + (size_t)(mix64(t->chan_key) & mask) * d;
        wt[n++] = 1;
    }
    if (t->cat_key) {
        row[n] = m->o_cat + (size_t)(mix64(t->cat_key) & mask) * d;
        wt[n++] = 1;
    }
    int anchor[2];
    double aw[2];
    int h = tl_jf_hat(at - t->ts, anchor, aw);
    for (int i = 0; i < h; i++) {
        row[n] = m->o_age + (size_t)anchor[i] * d;
        wt[n++] = aw[i];
    }
    return n;
}

tl_seq_pass *tl_seq_prepare(const tl_seq *m, const tl_seq_tp *tps, int n, int64_t at)
{
    if (n > SEQ_MAX_TPS) n = SEQ_MAX_TPS;
    int d = m->d;
    tl_seq_pass *p = tl_xcalloc(1, sizeof(*p));
    p->n = n;
    p->d = d;
    p->b = m->w[m->o_b];
    p->sqrt_d = sqrt((double)d);
    /* One block: x, q and k (n x d each), r, v and e0 (n each), ex (n x n). */
    size_t nn = n ? (size_t)n : 1;
    double *block = tl_xcalloc(3 * nn * d + 3 * nn + nn * nn, sizeof(double));
    p->x = block;
    p->q = p->x + nn * d;
    p->k = p->q + nn * d;
    p->r = p->k + nn * d;
    p->v = p->r + nn;
    p->e0 = p->v + nn;
    p->ex = p->e0 + nn;
    if (!n) return p;
    for (int i = 0; i < n; i++) {
        size_t row[5];
        double wt[5];
        int k = rows_of(m, &tps[i], at, row, wt);
        double *xi = p->x + (size_t)i * d;
        for (int j = 0; j < k; j++)
            for (int c = 0; c < d; c++) xi[c] += wt[j] * m->w[row[j] + c];
    }
    /* Q = X Wq^T, K = X Wk^T (n x d each), then S = Q K^T / sqrt(d) into ex. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1.0, p->x, d, m->w + m->o_wq, d,
                0.0, p->q, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1.0, p->x, d, m->w + m->o_wk, d,
                0.0, p->k, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0 / p->sqrt_d, p->q, d, p->k, d,
                0.0, p->ex, n);
    const double *u = m->w + m->o_u, *g = m->w + m->o_g, sink = m->w[m->o_sink];
    for (int i = 0; i < n; i++) {
        const double *xi = p->x + (size_t)i * d;
        double r = 0, v = 0;
        for (int c = 0; c < d; c++) {
            r += u[c] * xi[c];
            v += g[c] * xi[c];
        }
        p->r[i] = r;
        p->v[i] = v;
        double *ei = p->ex + (size_t)i * n, mx = sink;
        for (int j = 0; j < i; j++)
            if (ei[j] > mx) mx = ei[j];
        for (int j = 0; j < i; j++) ei[j] = exp(ei[j] - mx);
        for (int j = i; j < n; j++) ei[j] = 0;
        p->e0[i] = exp(sink - mx);
    }
    return p;
}

void tl_seq_pass_add(tl_seq_pass *p, const double *add)
{
    for (int i = 0; i < p->n; i++) p->r[i] += add[i];
}

void tl_seq_pass_free(tl_seq_pass *p)
{
    if (!p) return;
    free(p->x); /* the block */
    free(p);
}

double tl_seq_logit(const tl_seq_pass *p, uint64_t mask)
{
    double l = p->b;
    for (int i = 0; i < p->n; i++) {
        if (!(mask >> i & 1)) continue;
        const double *ei = p->ex + (size_t)i * p->n;
        double num = 0, den = p->e0[i];
        for (int j = 0; j < i; j++)
            if (mask >> j & 1) {
                num += ei[j] * p->v[j];
                den += ei[j];
            }
        l += p->r[i] + num / den;
    }
    return l;
}

void tl_seq_table(const tl_seq_pass *p, double offset, double *v)
{
    int n = p->n > 20 ? 20 : p->n;
    uint64_t all = UINT64_C(1) << n;
    /* v holds the logits first, then their probabilities */
    v[0] = p->b;
    for (uint64_t mask = 1; mask < all; mask++) {
        int h = 63 - __builtin_clzll(mask);
        uint64_t rest = mask ^ (UINT64_C(1) << h);
        const double *eh = p->ex + (size_t)h * p->n;
        double num = 0, den = p->e0[h];
        for (uint64_t r = rest; r; r &= r - 1) {
            int j = __builtin_ctzll(r);
            num += eh[j] * p->v[j];
            den += eh[j];
        }
        v[mask] = v[rest] + p->r[h] + num / den;
    }
    for (uint64_t mask = 0; mask < all; mask++) v[mask] = tl_sigmoid(offset + v[mask]);
}

tl_seq_grow_state *tl_seq_grow_init(const tl_seq_pass *p)
{
    tl_seq_grow_state *g = tl_xcalloc(1, sizeof(*g));
    size_t nn = p->n ? (size_t)p->n : 1;
    g->p = p;
    g->logit = p->b;
    g->num = tl_xcalloc(2 * nn, sizeof(double));
    g->den = g->num + nn;
    g->in = tl_xcalloc(nn, 1);
    memcpy(g->den, p->e0, (size_t)p->n * sizeof(double));
    return g;
}

double tl_seq_grow(tl_seq_grow_state *g, int m)
{
    const tl_seq_pass *p = g->p;
    if (m < 0 || m >= p->n || g->in[m]) return g->logit;
    /* Every later touchpoint now has m before it; those in the coalition change. */
    for (int i = m + 1; i < p->n; i++) {
        double e = p->ex[(size_t)i * p->n + m];
        double before = g->num[i] / g->den[i];
        g->num[i] += e * p->v[m];
        g->den[i] += e;
        if (g->in[i]) g->logit += g->num[i] / g->den[i] - before;
    }
    g->in[m] = 1;
    g->logit += p->r[m] + g->num[m] / g->den[m];
    return g->logit;
}

void tl_seq_grow_free(tl_seq_grow_state *g)
{
    if (!g) return;
    free(g->num); /* and den */
    free(g->in);
    free(g);
}

void tl_seq_game_init(tl_seq_game *gm, const tl_seq_pass *p, double offset)
{
    gm->p = p;
    gm->offset = offset;
    gm->g = NULL;
    gm->last = 0;
}

void tl_seq_game_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    tl_seq_game *gm = arg;
    for (int k = 0; k < count; k++) {
        uint64_t m = masks[k], added = m ^ gm->last;
        double logit;
        if (gm->g && (m & gm->last) == gm->last && added && !(added & (added - 1))) {
            logit = tl_seq_grow(gm->g, __builtin_ctzll(added));
        } else {
            tl_seq_grow_free(gm->g);
            gm->g = tl_seq_grow_init(gm->p);
            logit = gm->p->b;
            for (uint64_t r = m; r; r &= r - 1) logit = tl_seq_grow(gm->g, __builtin_ctzll(r));
        }
        gm->last = m;
        v[k] = tl_sigmoid(gm->offset + logit);
    }
}

void tl_seq_game_fini(tl_seq_game *gm)
{
    tl_seq_grow_free(gm->g);
    gm->g = NULL;
}

/* The gradient of the whole journey's logit: with respect to each x_i into dx (n x d),
 * and to the dense weights (Wq, Wk, u, g, b, sink, in the order of tl_seq_weights) into
 * dense, which must be zero on entry. */
static void backward(const tl_seq *m, const tl_seq_pass *p, double *dx, double *dense)
{
    int n = p->n, d = p->d;
    double *dwq = dense, *dwk = dwq + (size_t)d * d, *du = dwk + (size_t)d * d, *dg = du + d;
    double *db = dg + d, *dsink = db + 1;
    const double *u = m->w + m->o_u, *g = m->w + m->o_g;
    const double *wq = m->w + m->o_wq, *wk = m->w + m->o_wk;
    double dq[64], dk_all[SEQ_MAX_TPS * 64], dv[SEQ_MAX_TPS];
    memset(dk_all, 0, (size_t)n * d * sizeof(double));
    memset(dv, 0, (size_t)n * sizeof(double));
    *db = 1;
    for (int i = 0; i < n; i++) {
        const double *ei = p->ex + (size_t)i * n;
        double num = 0, den = p->e0[i];
        for (int j = 0; j < i; j++) {
            num += ei[j] * p->v[j];
            den += ei[j];
        }
        double att = num / den;
        *dsink += -att * p->e0[i] / den;
        memset(dq, 0, (size_t)d * sizeof(double));
        const double *qi = p->q + (size_t)i * d;
        for (int j = 0; j < i; j++) {
            double a = ei[j] / den;
            dv[j] += a;
            double ds = a * (p->v[j] - att) / p->sqrt_d;
            const double *kj = p->k + (size_t)j * d;
            double *dkj = dk_all + (size_t)j * d;
            for (int c = 0; c < d; c++) {
                dq[c] += ds * kj[c];
                dkj[c] += ds * qi[c];
            }
        }
        /* q_i = Wq x_i: dWq += dq x_i^T, dx_i += Wq^T dq */
        const double *xi = p->x + (size_t)i * d;
        double *dxi = dx + (size_t)i * d;
        for (int r = 0; r < d; r++) {
            if (dq[r] == 0) continue;
            for (int c = 0; c < d; c++) {
                dwq[(size_t)r * d + c] += dq[r] * xi[c];
                dxi[c] += wq[(size_t)r * d + c] * dq[r];
            }
        }
    }
    for (int j = 0; j < n; j++) {
        const double *xj = p->x + (size_t)j * d;
        double *dxj = dx + (size_t)j * d;
        const double *dkj = dk_all + (size_t)j * d;
        for (int c = 0; c < d; c++) {
            du[c] += xj[c];
            dg[c] += dv[j] * xj[c];
            dxj[c] += u[c] + dv[j] * g[c];
        }
        for (int r = 0; r < d; r++) {
            if (dkj[r] == 0) continue;
            for (int c = 0; c < d; c++) {
                dwk[(size_t)r * d + c] += dkj[r] * xj[c];
                dxj[c] += wk[(size_t)r * d + c] * dkj[r];
            }
        }
    }
}

static size_t dense_size(const tl_seq *m) { return 2 * (size_t)m->d * m->d + 2 * (size_t)m->d + 2; }

void tl_seq_logit_grad(const tl_seq *m, const tl_seq_tp *tps, int n, int64_t at, double *grad)
{
    memset(grad, 0, m->n_w * sizeof(double));
    tl_seq_pass *p = tl_seq_prepare(m, tps, n, at);
    n = p->n;
    int d = m->d;
    double *dx = tl_xcalloc((size_t)(n ? n : 1) * d, sizeof(double));
    backward(m, p, dx, grad + m->o_wq);
    for (int i = 0; i < n; i++) {
        size_t row[5];
        double wt[5];
        int k = rows_of(m, &tps[i], at, row, wt);
        for (int j = 0; j < k; j++)
            for (int c = 0; c < d; c++) grad[row[j] + c] += wt[j] * dx[(size_t)i * d + c];
    }
    free(dx);
    tl_seq_pass_free(p);
}

static void adagrad(tl_seq *m, size_t at, double grad)
{
    save(m, at);
    double gr = grad + m->cfg.l2 * m->w[at];
    m->acc[at] += gr * gr;
    m->w[at] -= m->cfg.lr * gr / (sqrt(m->acc[at]) + 1e-8);
}

double tl_seq_learn(tl_seq *m, const tl_seq_tp *tps, int n, int64_t at, double offset, int label,
                    double weight, double *logit)
{
    tl_seq_pass *p = tl_seq_prepare(m, tps, n, at);
    n = p->n;
    int d = m->d;
    double own = tl_seq_logit(p, n >= 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1);
    if (logit) *logit = own;
    double pred = tl_sigmoid(offset + own);
    double dl = weight * (pred - (label ? 1 : 0));
    double dense[2 * 64 * 64 + 2 * 64 + 2];
    size_t nd = dense_size(m);
    memset(dense, 0, nd * sizeof(double));
    double *dx = tl_xcalloc((size_t)(n ? n : 1) * d, sizeof(double));
    backward(m, p, dx, dense);
    for (size_t i = 0; i < nd; i++) {
        size_t at_w = m->o_wq + i;
        if (m->cfg.residual && ((at_w >= m->o_u && at_w < m->o_g) || at_w == m->o_b)) continue;
        adagrad(m, at_w, dl * dense[i]);
    }
    /* Each row a touchpoint used, once per touchpoint (a row shared by two touchpoints
     * takes two steps, as sparse AdaGrad does). */
    for (int i = 0; i < n; i++) {
        size_t row[5];
        double wt[5];
        int k = rows_of(m, &tps[i], at, row, wt);
        for (int j = 0; j < k; j++) {
            for (int c = 0; c < d; c++) adagrad(m, row[j] + c, dl * wt[j] * dx[(size_t)i * d + c]);
            size_t r = row[j] / (size_t)d;
            if (m->sent && !m->mark[r]) {
                m->mark[r] = 1;
                m->touched[m->n_touched++] = (uint32_t)r;
            }
        }
    }
    free(dx);
    tl_seq_pass_free(p);
    m->version++;
    m->d_updates++;
    return pred;
}

/* ---- sharing ---------------------------------------------------------------------- */

#define DELTA_HEAD 32 /* frame, dim, buckets, updates, k */

int tl_seq_delta_track(tl_seq *m)
{
    if (m->sent) return 0;
    size_t rows = m->o_wq / (size_t)m->d;
    /* one block: sent (n_w), touched (rows), mark (rows) */
    m->sent = tl_xcalloc(1, m->n_w * sizeof(double) + rows * (sizeof(*m->touched) + 1));
    memcpy(m->sent, m->w, m->n_w * sizeof(double));
    m->touched = (uint32_t *)(m->sent + m->n_w);
    m->mark = (unsigned char *)(m->touched + rows);
    m->n_touched = 0;
    m->d_updates = 0;
    return 0;
}

int tl_seq_delta_pending(const tl_seq *m) { return m->sent && (m->n_touched || m->d_updates); }

/* Appends w[at..at+n) - sent[at..at+n) and makes sent those weights. */
static void put_changes(tl_seq *m, tl_buf *out, size_t at, size_t n)
{
    char v[8];
    for (size_t i = at; i < at + n; i++) {
        save(m, i);
        tl_buf_append(out, v, (size_t)(tl_le_put_f64(v, m->w[i] - m->sent[i]) - v));
        m->sent[i] = m->w[i];
    }
}

int tl_seq_delta_take(tl_seq *m, tl_buf *out, size_t max_bytes)
{
    if (!m->sent) return 0;
    size_t fixed = DELTA_HEAD + 8 * dense_size(m), row = 4 + 8 * (size_t)m->d;
    size_t max_rows = max_bytes > fixed ? (max_bytes - fixed) / row : 0;
    size_t k = m->n_touched < max_rows ? m->n_touched : max_rows;
    char head[DELTA_HEAD], *q = tl_wire_w_frame(head, "TLSD", 1);
    q = tl_le_put_u32(q, (uint32_t)m->d);
    q = tl_le_put_u32(q, (uint32_t)m->cfg.buckets);
    q = tl_le_put_u64(q, m->d_updates);
    tl_le_put_u32(q, (uint32_t)k);
    tl_buf_append(out, head, sizeof(head));
    put_changes(m, out, m->o_wq, dense_size(m));
    for (size_t j = 0; j < k; j++) { /* the last k listed */
        uint32_t r = m->touched[--m->n_touched];
        char h[4];
        tl_le_put_u32(h, r);
        tl_buf_append(out, h, sizeof(h));
        put_changes(m, out, (size_t)r * m->d, (size_t)m->d);
        m->mark[r] = 0;
    }
    m->d_updates = 0; /* counted once, in the first part */
    return 1;
}

void tl_seq_delta_clear(tl_seq *m)
{
    if (!m->sent) return;
    memcpy(m->sent + m->o_wq, m->w + m->o_wq, dense_size(m) * sizeof(double));
    while (m->n_touched) {
        uint32_t r = m->touched[--m->n_touched];
        memcpy(m->sent + (size_t)r * m->d, m->w + (size_t)r * m->d, (size_t)m->d * sizeof(double));
        m->mark[r] = 0;
    }
    m->d_updates = 0;
}

/* Calls fn(m, at, change) for every weight a delta changes, in order; -1 (having called
 * nothing) unless the whole delta is well-formed for m and every weight it makes is
 * finite. */
static int delta_walk(const tl_seq *m, const unsigned char *b, size_t len,
                      void (*fn)(tl_seq *, size_t, double), tl_seq *target)
{
    if (len < DELTA_HEAD || tl_wire_frame_format(b, len, "TLSD") != 1 ||
        tl_le_get_u32(b + 8) != (uint32_t)m->d || tl_le_get_u32(b + 12) != (uint32_t)m->cfg.buckets)
        return -1;
    uint64_t updates = tl_le_get_u64(b + 16);
    uint32_t k = tl_le_get_u32(b + 24);
    size_t nd = dense_size(m), rows = m->o_wq / (size_t)m->d, row_len = 4 + 8 * (size_t)m->d;
    if (updates > UINT64_MAX - m->version || k > rows || len != DELTA_HEAD + 8 * nd + k * row_len)
        return -1;
    unsigned char *seen = tl_xcalloc(rows, 1); /* a row listed twice is refused */
    int rc = 0;
    for (int pass = 0; pass < (fn ? 2 : 1) && !rc; pass++) {
        const unsigned char *q = b + DELTA_HEAD;
        for (size_t i = 0; i < nd && !rc; i++, q += 8) {
            double c = tl_le_get_f64(q);
            if (!pass && !isfinite(m->w[m->o_wq + i] + c)) rc = -1;
            if (pass) fn(target, m->o_wq + i, c);
        }
        for (uint32_t j = 0; j < k && !rc; j++) {
            uint32_t r = tl_le_get_u32(q);
            q += 4;
            if (!pass && (r >= rows || seen[r]++)) {
                rc = -1;
                break;
            }
            for (int c = 0; c < m->d && !rc; c++, q += 8) {
                size_t at = (size_t)r * m->d + c;
                double ch = tl_le_get_f64(q);
                if (!pass && !isfinite(m->w[at] + ch)) rc = -1;
                if (pass) fn(target, at, ch);
            }
        }
    }
    free(seen);
    return rc;
}

int tl_seq_delta_check(const tl_seq *m, const void *data, size_t len)
{
    return delta_walk(m, data, len, NULL, NULL);
}

static void add_change(tl_seq *m, size_t at, double change)
{
    save(m, at);
    m->w[at] += change;
    if (m->sent) m->sent[at] += change; /* another's: not to be sent again */
}

int tl_seq_delta_apply(tl_seq *m, const void *data, size_t len)
{
    if (delta_walk(m, data, len, add_change, m) != 0) return -1;
    m->version += tl_le_get_u64((const unsigned char *)data + 16);
    return 0;
}
