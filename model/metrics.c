/*
 * metrics.c -- windowed progressive-validation metrics and the running-rate baseline
 * (metrics.h).
 *
 * The window is a ring of W slots held as parallel arrays (model score, baseline score,
 * weight, label): `head` is the slot the next example overwrites, `n` the number of slots
 * in use (n < W only until the ring first fills). The oldest example is at head - n (mod W).
 *
 * Queries recompute from the window rather than keeping running sums that add the new
 * example and subtract the evicted one: subtraction would accumulate rounding error over
 * millions of examples (and turn +inf into NaN), while queries are rare (a metrics scrape),
 * so O(W) for log-loss and O(W log W) for AUC per query cost little. The only running
 * values are exact integer counts and the baseline's two sums, which only ever add.
 *
 * AUC: the window's (score, label, weight) triples are copied and sorted by score; walking
 * groups of equal score upwards, each group adds pos_weight(group) * (neg_weight(below) +
 * neg_weight(group) / 2), and the total is divided by pos_weight * neg_weight. Ties are
 * exact equality of the doubles. This is the trapezoidal area under the weighted ROC curve
 * (what sklearn's roc_auc_score computes with sample_weight).
 *
 * Log-loss uses log1p(-p) for the negative class: exact where 1 - p would round.
 *
 * Rejected: a fixed-bin histogram AUC (approximate, where the metrics are meant exact), and
 * sharing one tracker between model and baseline by adding each example twice (the
 * baseline must see exactly the model's examples, weights and window).
 */
#include "metrics.h"
#include "lib/wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define P_MIN 1e-15

/* What adding an example changes besides the window's slots. */
typedef struct mt_state {
    int head, n;
    int win_pos;                 /* positives in the window */
    uint64_t count, positives;   /* all time */
    double sum_w, sum_wy;        /* all time, for the baseline rate */
} mt_state;

struct tl_metrics {
    int window;
    double prior, prior_weight;
    mt_state c;
    double *p, *pb, *w;          /* [window] */
    unsigned char *y;            /* [window] */
    /* Undo (tl_metrics_undo_mark): c as the mark left it, and the slots overwritten
     * since, from its head on, in their order (at most a window's). */
    struct {
        int on, saved;
        mt_state c;
        double *p, *pb, *w;
        unsigned char *y;
    } u;
};

static tl_metrics *alloc(int window, double prior, double prior_weight)
{
    if (window < 1 || window > TL_METRICS_MAX_WINDOW) return NULL;
    if (!(prior >= 0 && prior <= 1) || !isfinite(prior_weight) || prior_weight < 0) return NULL;
    tl_metrics *m = tl_xcalloc(1, sizeof(*m));
    m->window = window;
    m->prior = prior;
    m->prior_weight = prior_weight;
    /* One block: three double arrays, then the labels. */
    m->p = tl_xcalloc((size_t)window, 3 * sizeof(double) + 1);
    m->pb = m->p + window;
    m->w = m->pb + window;
    m->y = (unsigned char *)(m->w + window);
    return m;
}

tl_metrics *tl_metrics_new_baseline(int window, double prior, double prior_weight)
{
    return alloc(window, prior, prior_weight);
}

tl_metrics *tl_metrics_new(int window) { return alloc(window, 0.5, 0.0); }

void tl_metrics_destroy(tl_metrics *m)
{
    if (!m) return;
    free(m->p);
    free(m->u.p);
    free(m);
}

double tl_metrics_baseline_rate(const tl_metrics *m)
{
    double den = m->prior_weight + m->c.sum_w;
    if (!(den > 0)) return m->prior;
    double r = (m->prior_weight * m->prior + m->c.sum_wy) / den;
    return r > 1 ? 1 : r;   /* rounding cannot push it past 1 by more than an ulp */
}

int tl_metrics_add(tl_metrics *m, double p, int y, double weight)
{
    if (!(p >= 0 && p <= 1) || !(weight >= 0) || !isfinite(weight)) return -1;
    int yy = y != 0;
    int slot = m->c.head;
    if (m->u.on && m->u.saved < m->window) {
        int k = m->u.saved++;
        m->u.p[k] = m->p[slot];
        m->u.pb[k] = m->pb[slot];
        m->u.w[k] = m->w[slot];
        m->u.y[k] = m->y[slot];
    }
    if (m->c.n == m->window) {
        m->c.win_pos -= m->y[slot];   /* evict the oldest */
    } else {
        m->c.n++;
    }
    m->p[slot] = p;
    m->pb[slot] = tl_metrics_baseline_rate(m);   /* scored before the update */
    m->w[slot] = weight;
    m->y[slot] = (unsigned char)yy;
    m->c.win_pos += yy;
    m->c.head = slot + 1 == m->window ? 0 : slot + 1;
    m->c.count++;
    m->c.positives += (uint64_t)yy;
    m->c.sum_w += weight;
    if (yy) m->c.sum_wy += weight;
    return 0;
}

void tl_metrics_undo_mark(tl_metrics *m)
{
    if (!m->u.p) {
        m->u.p = tl_xcalloc((size_t)m->window, 3 * sizeof(double) + 1);
        m->u.pb = m->u.p + m->window;
        m->u.w = m->u.pb + m->window;
        m->u.y = (unsigned char *)(m->u.w + m->window);
    }
    m->u.c = m->c;
    m->u.saved = 0;
    m->u.on = 1;
}

void tl_metrics_undo_off(tl_metrics *m) { m->u.on = 0; }

int tl_metrics_undo(tl_metrics *m)
{
    if (!m->u.on) return 0;
    int n = m->u.saved;
    for (int k = 0, slot = m->u.c.head; k < n; k++, slot = slot + 1 == m->window ? 0 : slot + 1) {
        m->p[slot] = m->u.p[k];
        m->pb[slot] = m->u.pb[k];
        m->w[slot] = m->u.w[k];
        m->y[slot] = m->u.y[k];
    }
    m->c = m->u.c;
    m->u.on = 0;
    return n;
}

/* ---- queries ------------------------------------------------------------------ */

/* Queries visit the window oldest first, so that a decoded tracker (whose ring starts at
 * slot 0) sums in the same order and reports bit-identical values. */
static int oldest(const tl_metrics *m) { return m->c.n == m->window ? m->c.head : 0; }

static double logloss(const tl_metrics *m, const double *score)
{
    double num = 0, den = 0;
    for (int k = 0, i = oldest(m); k < m->c.n; k++, i = i + 1 == m->window ? 0 : i + 1) {
        double c = m->w[i];
        if (c == 0) continue;
        double p = score[i];
        if (p < P_MIN) p = P_MIN;
        if (p > 1 - P_MIN) p = 1 - P_MIN;
        num += c * -(m->y[i] ? log(p) : log1p(-p));
        den += c;
    }
    return den > 0 ? num / den : NAN;
}

typedef struct scored {
    double s, w;
    int y;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

static double auc(const tl_metrics *m, const double *score)
{
    double wpos = 0, wneg = 0;
    int k = 0;
    scored *v = tl_xmalloc((size_t)(m->c.n ? m->c.n : 1) * sizeof(*v));
    for (int j = 0, i = oldest(m); j < m->c.n; j++, i = i + 1 == m->window ? 0 : i + 1) {
        if (m->w[i] == 0) continue;   /* a zero weight takes part in no pair */
        v[k++] = (scored){score[i], m->w[i], m->y[i]};
        if (m->y[i]) wpos += m->w[i];
        else wneg += m->w[i];
    }
    if (!(wpos > 0) || !(wneg > 0)) {
        free(v);
        return NAN;
    }
    qsort(v, (size_t)k, sizeof(*v), cmp_scored);
    double area = 0, neg_below = 0;
    for (int i = 0; i < k;) {
        double gp = 0, gn = 0;
        int j = i;
        for (; j < k && v[j].s == v[i].s; j++) {
            if (v[j].y) gp += v[j].w;
            else gn += v[j].w;
        }
        area += gp * (neg_below + 0.5 * gn);
        neg_below += gn;
        i = j;
    }
    free(v);
    return area / (wpos * wneg);
}

double tl_metrics_logloss(const tl_metrics *m) { return logloss(m, m->p); }
double tl_metrics_auc(const tl_metrics *m) { return auc(m, m->p); }
double tl_metrics_baseline_logloss(const tl_metrics *m) { return logloss(m, m->pb); }
double tl_metrics_baseline_auc(const tl_metrics *m) { return auc(m, m->pb); }

uint64_t tl_metrics_count(const tl_metrics *m) { return m->c.count; }
uint64_t tl_metrics_positives(const tl_metrics *m) { return m->c.positives; }
int tl_metrics_window_count(const tl_metrics *m) { return m->c.n; }
int tl_metrics_window_positives(const tl_metrics *m) { return m->c.win_pos; }
int tl_metrics_window_size(const tl_metrics *m) { return m->window; }

/* ---- encoding ------------------------------------------------------------------
 * "TLMT" | u32 format | u32 window | u32 n | u64 count | u64 positives
 * | f64 prior, prior_weight, sum_w, sum_wy | n x (f64 p, f64 pb, f64 w, u8 y), oldest first
 */

#define MT_MAGIC "TLMT"
#define MT_FORMAT 1u
#define MT_HEADER (4 + 4 + 4 + 4 + 8 + 8 + 4 * 8)
#define MT_ENTRY 25

void tl_metrics_encode(const tl_metrics *m, tl_buf *out)
{
    size_t len = MT_HEADER + (size_t)m->c.n * MT_ENTRY;
    tl_buf_reserve(out, len);
    char *p = tl_wire_w_frame(out->data + out->len, MT_MAGIC, MT_FORMAT);
    p = tl_le_put_u32(p, (uint32_t)m->window);
    p = tl_le_put_u32(p, (uint32_t)m->c.n);
    p = tl_le_put_u64(p, m->c.count);
    p = tl_le_put_u64(p, m->c.positives);
    p = tl_le_put_f64(p, m->prior);
    p = tl_le_put_f64(p, m->prior_weight);
    p = tl_le_put_f64(p, m->c.sum_w);
    p = tl_le_put_f64(p, m->c.sum_wy);
    int slot = oldest(m);
    for (int i = 0; i < m->c.n; i++) {
        p = tl_le_put_f64(p, m->p[slot]);
        p = tl_le_put_f64(p, m->pb[slot]);
        p = tl_le_put_f64(p, m->w[slot]);
        *p++ = (char)m->y[slot];
        slot = slot + 1 == m->window ? 0 : slot + 1;
    }
    out->len += len;
    out->data[out->len] = '\0';   /* tl_buf keeps its contents terminated */
}

static int prob_ok(double p) { return p >= 0 && p <= 1; }
static int weight_ok(double w) { return isfinite(w) && w >= 0; }

tl_metrics *tl_metrics_decode(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (tl_wire_frame_format(buf, len, MT_MAGIC) != MT_FORMAT || len < MT_HEADER) return NULL;
    uint32_t window = tl_le_get_u32(p + 8), n = tl_le_get_u32(p + 12);
    if (window < 1 || window > TL_METRICS_MAX_WINDOW || n > window) return NULL;
    if (len != MT_HEADER + (size_t)n * MT_ENTRY) return NULL;
    uint64_t count = tl_le_get_u64(p + 16), positives = tl_le_get_u64(p + 24);
    double prior = tl_le_get_f64(p + 32), prior_weight = tl_le_get_f64(p + 40);
    double sum_w = tl_le_get_f64(p + 48), sum_wy = tl_le_get_f64(p + 56);
    if (n > count || positives > count || !weight_ok(sum_w) || !weight_ok(sum_wy) || sum_wy > sum_w)
        return NULL;
    tl_metrics *m = alloc((int)window, prior, prior_weight);   /* checks the prior */
    if (!m) return NULL;
    m->c.count = count;
    m->c.positives = positives;
    m->c.sum_w = sum_w;
    m->c.sum_wy = sum_wy;
    const unsigned char *e = p + MT_HEADER;
    for (uint32_t i = 0; i < n; i++, e += MT_ENTRY) {
        double sp = tl_le_get_f64(e), sb = tl_le_get_f64(e + 8), w = tl_le_get_f64(e + 16);
        unsigned y = e[24];
        if (!prob_ok(sp) || !prob_ok(sb) || !weight_ok(w) || y > 1) {
            tl_metrics_destroy(m);
            return NULL;
        }
        m->p[i] = sp;
        m->pb[i] = sb;
        m->w[i] = w;
        m->y[i] = (unsigned char)y;
        m->c.win_pos += (int)y;
    }
    if ((uint64_t)m->c.win_pos > positives) {
        tl_metrics_destroy(m);
        return NULL;
    }
    m->c.n = (int)n;
    m->c.head = (int)n == m->window ? 0 : (int)n;
    return m;
}
