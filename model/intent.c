/*
 * intent.c -- each user's purchase intent, published when it moves (intent.h).
 *
 * Per event: the outcomes the event decides are learned (tl_intent_resolve), the model's
 * projection over the window is taken (each touchpoint's part at the anchors its age passes,
 * once, then the logits at up to TL_JF_ANCHORS + 1 moments), the calibration scores it, the
 * moment may join the user's pending ones, and a record goes out only when the intent moved
 * by the threshold. No allocation but the arena's.
 */
#include "intent.h"
#include "ftrl.h"
#include "journey_features.h"
#include "lib/util.h"
#include "lib/wire.h"
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tl_config_def tl_intent_config[] = {
    {"intent.enabled", TL_CT_BOOL, "false", TL_NORANGE,
     "With the model on: publish each user's purchase intent, the model's probability that the "
     "user buys within intent.window.ms, whenever it moves by intent.threshold "
     "(output.intent.topic; docs/attribution.md, \"Purchase intent\"). Off by default: it "
     "costs about as much per event as the rest of the model (docs/benchmarks.md).",
     TL_CFG_FIELD(tl_intent_cfg, enabled)},
    {"intent.window.ms", TL_CT_INT, "0", 0, 1e15,
     "The window of the purchase intent: p(a purchase within this much event time). 0: "
     "attribution.lookback.ms; at most that (a scored moment's outcome must be known when its "
     "journey expires).",
     TL_CFG_FIELD(tl_intent_cfg, window_ms)},
    {"intent.threshold", TL_CT_DOUBLE, "0.05", 0.0001, 1,
     "An intent record goes out when the user's intent differs by at least this much from the "
     "last one published for the user (a user's first: from 0).",
     TL_CFG_FIELD(tl_intent_cfg, threshold)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

int tl_intent_cfg_load(tl_intent_cfg *ic, const tl_config *c, char *err, size_t errlen)
{
    memset(ic, 0, sizeof(*ic));
    return tl_config_fill(c, tl_intent_config, ic, err, errlen);
}

/* ---- the calibration ---------------------------------------------------------- */

#define IM_DIM 32
#define IM_Z0 1    /* z over its anchors: coordinates 1..8 */
#define IM_BUYS 9  /* log(1 + purchases) */
#define IM_SINCE                                                                                   \
    10 /* the age of since_ts over the journey's anchors: 10..17 since the first
                     * event, 18..25 since the last purchase */
static const double z_anchor[8] = {-12, -9, -6, -4, -2, 0, 2, 4};

struct tl_intent_model {
    tl_ftrl *ftrl;
    tl_metrics *metrics;   /* the intents scored, against their outcomes */
    uint64_t outcomes, positives;
    /* Undo (tl_intent_model_undo_start): 0 off; 1 nothing learned in the open transaction;
     * 2 learned, journaled since just before (and the counts then) */
    int undo;
    uint64_t u_outcomes, u_positives;
};

void tl_intent_model_undo_start(tl_intent_model *im)
{
    if (im && !im->undo) im->undo = 1;
}

void tl_intent_model_txn_end(tl_intent_model *im, int committed)
{
    if (!im || im->undo != 2) return;
    if (!committed) {
        tl_ftrl_undo(im->ftrl);
        tl_metrics_undo(im->metrics);
        im->outcomes = im->u_outcomes;
        im->positives = im->u_positives;
    }
    tl_ftrl_undo_off(im->ftrl);
    tl_metrics_undo_off(im->metrics);
    im->undo = 1;
}

tl_intent_model *tl_intent_model_new(double alpha, double beta, double l1, double l2)
{
    tl_ftrl *f = tl_ftrl_new(IM_DIM, alpha, beta, l1, l2);
    if (!f) return NULL;
    tl_intent_model *im = tl_xcalloc(1, sizeof(*im));
    im->ftrl = f;
    im->metrics = tl_metrics_new(10000);
    return im;
}

void tl_intent_model_free(tl_intent_model *im)
{
    if (!im) return;
    tl_ftrl_destroy(im->ftrl);
    tl_metrics_destroy(im->metrics);
    free(im);
}

static void put_part(tl_buf *out, const tl_buf *part)
{
    char n[8];
    tl_le_put_u64(n, part->len);
    tl_buf_append(out, n, 8);
    tl_buf_append(out, part->data, part->len);
}

void tl_intent_model_encode(const tl_intent_model *im, tl_buf *out)
{
    char head[24];
    tl_le_put_u64(tl_le_put_u64(tl_wire_w_frame(head, "TLIN", 1), im->outcomes), im->positives);
    tl_buf_append(out, head, sizeof(head));
    tl_buf part = {0};
    tl_ftrl_encode(im->ftrl, &part);
    put_part(out, &part);
    tl_buf_clear(&part);
    tl_metrics_encode(im->metrics, &part);
    put_part(out, &part);
    tl_buf_free(&part);
}

tl_intent_model *tl_intent_model_decode(const void *buf, size_t len)
{
    const unsigned char *p = buf, *end = p + len;
    if (len < 24 || tl_wire_frame_format(buf, len, "TLIN") != 1) return NULL;
    uint64_t outcomes = tl_le_get_u64(p + 8), positives = tl_le_get_u64(p + 16);
    p += 24;
    const void *part[2];
    size_t plen[2];
    for (int i = 0; i < 2; i++) {
        if (end - p < 8) return NULL;
        uint64_t n = tl_le_get_u64(p);
        p += 8;
        if ((uint64_t)(end - p) < n) return NULL;
        part[i] = p;
        plen[i] = (size_t)n;
        p += n;
    }
    if (p != end || positives > outcomes) return NULL;
    tl_ftrl *f = tl_ftrl_decode(part[0], plen[0]);
    tl_metrics *met = tl_metrics_decode(part[1], plen[1]);
    if (!f || !met || tl_ftrl_dim(f) != IM_DIM) {
        tl_ftrl_destroy(f);
        tl_metrics_destroy(met);
        return NULL;
    }
    tl_intent_model *im = tl_xcalloc(1, sizeof(*im));
    im->ftrl = f;
    im->metrics = met;
    im->outcomes = outcomes;
    im->positives = positives;
    return im;
}

void tl_intent_model_stats(const tl_intent_model *im, uint64_t *outcomes, uint64_t *positives,
                           double *logloss, double *auc)
{
    *outcomes = im->outcomes;
    *positives = im->positives;
    *logloss = im->outcomes ? tl_metrics_logloss(im->metrics) : NAN;
    *auc = im->outcomes ? tl_metrics_auc(im->metrics) : NAN;
}

int tl_intent_features(const tl_intent_moment *m, int32_t *idx, double *x)
{
    int k = 0;
    idx[k] = 0;
    x[k++] = 1;
    double z = m->z;
    if (z <= z_anchor[0]) {
        idx[k] = IM_Z0;
        x[k++] = 1;
    } else if (z >= z_anchor[7]) {
        idx[k] = IM_Z0 + 7;
        x[k++] = 1;
    } else {
        int i = 0;
        while (z >= z_anchor[i + 1]) i++;
        double f = (z - z_anchor[i]) / (z_anchor[i + 1] - z_anchor[i]);
        idx[k] = IM_Z0 + i;
        x[k++] = 1 - f;
        if (f > 0) {
            idx[k] = IM_Z0 + i + 1;
            x[k++] = f;
        }
    }
    if (m->purchases) {
        idx[k] = IM_BUYS;
        x[k++] = log1p((double)m->purchases);
    }
    if (m->since_ts != INT64_MIN) {
        int anchor[2];
        double wt[2];
        int h = tl_jf_hat(m->ts - m->since_ts, anchor, wt);
        for (int j = 0; j < h; j++) {
            idx[k] = IM_SINCE + 8 * (m->since_purchase != 0) + anchor[j];
            x[k++] = wt[j];
        }
    }
    return k;
}

static double im_predict(const tl_intent_model *im, const tl_intent_moment *m)
{
    int32_t idx[6];
    double x[6];
    int k = tl_intent_features(m, idx, x);
    return tl_sigmoid(tl_ftrl_dot_sparse_avg(im->ftrl, idx, x, k));
}

void tl_intent_resolve(tl_intent_model *im, tl_user *u, const tl_event *ev, int64_t now,
                       int64_t window_ms)
{
    for (int i = 0; i < u->n_pend;) {
        tl_intent_moment *m = &u->pend[i];
        if (now < m->ts) {   /* an event from before it (a stream out of time order) */
            i++;
            continue;
        }
        if (ev && ev->type == TL_PURCHASE && now - m->ts <= window_ms) m->bought = 1;
        /* Learned when its window is over, bought or not: learning a purchase as soon as it
         * comes and a moment without one only a window later would teach the calibration,
         * at every point of the stream, more purchases than there are. */
        if (now - m->ts < window_ms) {
            i++;
            continue;
        }
        int32_t idx[6];
        double x[6];
        int k = tl_intent_features(m, idx, x);
        if (im->undo == 1) { /* the transaction's first outcome: the state to go back to */
            tl_ftrl_undo_mark(im->ftrl);
            tl_metrics_undo_mark(im->metrics);
            im->u_outcomes = im->outcomes;
            im->u_positives = im->positives;
            im->undo = 2;
        }
        tl_ftrl_learn_sparse(im->ftrl, idx, x, k, 0, m->bought, 1);
        tl_metrics_add(im->metrics, m->p, m->bought, 1);
        im->outcomes++;
        im->positives += m->bought;
        tl_user_remove_intent_moment(u, i);
    }
}

/* ---- the rate integral ---------------------------------------------------------- */

/* The integral of exp(logit) / interval_ms over the spans (logit straight between each two
 * moments). */
static double rate_integral(const int64_t *t, const double *logit, int k, double interval_ms)
{
    double area = 0; /* of exp(logit) over the spans, in ms */
    for (int i = 0; i + 1 < k; i++) {
        double dt = (double)(t[i + 1] - t[i]), d = logit[i + 1] - logit[i];
        /* the mean of exp over a straight line from logit[i] to logit[i+1] */
        double mean = fabs(d) < 1e-9 ? exp(logit[i]) : exp(logit[i]) * expm1(d) / d;
        area += dt * mean;
    }
    return area / interval_ms;
}

double tl_intent_integrate(const int64_t *t, const double *logit, int k, double interval_ms)
{
    return -expm1(-rate_integral(t, logit, k, interval_ms));
}

/* now, now + every age anchor inside the window, now + window: at most TL_JF_ANCHORS + 1 */
static int moments(int64_t now, int64_t window_ms, int64_t *t)
{
    int k = 0;
    t[k++] = now;
    for (int i = 1; i < TL_JF_ANCHORS && tl_jf_anchor_ms[i] < window_ms; i++)
        t[k++] = now + tl_jf_anchor_ms[i];
    t[k++] = now + window_ms;
    return k;
}

/* The rate integral over the window of a user at now (tl_intent_projection's). */
static double projected_rate(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps,
                             int n, int64_t lookback_ms, int64_t now, int64_t window_ms,
                             tl_arena *a)
{
    int64_t t[TL_JF_ANCHORS + 1];
    double z[TL_JF_ANCHORS + 1];
    int k = moments(now, window_ms, t);
    tl_model_logits(m, user, tps, n, lookback_ms, t, k, a, z);
    return rate_integral(t, z, k, (double)tl_model_cfg_of(m)->control_interval_ms);
}

double tl_intent_projection(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                            int64_t lookback_ms, int64_t now, int64_t window_ms, tl_arena *a)
{
    return -expm1(-projected_rate(m, user, tps, n, lookback_ms, now, window_ms, a));
}

/* "an add-to-cart of item 7 on search" */
static const char *event_phrase(tl_arena *a, const char *article, int type, const char *item,
                                const char *channel)
{
    return tl_arena_printf(a, "%s%s%s of item %s%s%s", article ? article : "the", " ",
                           tl_event_type_phrase((tl_event_type)type), item, channel ? " on " : "",
                           channel ? channel : "");
}

static const char *explain(const tl_intent_cfg *ic, tl_model *m, const tl_journey_tp *tps, int n,
                           const tl_event *ev, int64_t now, double before, double after,
                           tl_arena *a)
{
    char win[32];
    tl_fmt_duration(win, sizeof(win), ic->window_ms);
    const char *why = ev ? tl_arena_printf(a, "after %s",
                                           event_phrase(a, tl_event_type_article(ev->type),
                                                        ev->type, ev->item_id, ev->channel))
                         : "as the journey's touchpoints aged out of the lookback";
    const char *part;
    int top = -1;
    double *phi = NULL;
    if (n > 0) {
        phi = tl_arena_alloc(a, (size_t)n * sizeof(*phi));
        tl_model_tp_logits(m, tps, n, now, a, phi);
        for (int j = 0; j < n; j++)
            if (phi[j] > 0 && (top < 0 || phi[j] >= phi[top])) top = j; /* the latest of ties */
    }
    if (n == 0) {
        part = "no touchpoint in the journey";
    } else if (top < 0) {
        part = n == 1 ? "the journey's one touchpoint does not raise it"
                      : tl_arena_printf(a, "none of the journey's %d touchpoints raises it", n);
    } else {
        char ago[48] = "just now";
        if (now - tps[top].ts >= 1000) {
            tl_fmt_duration(ago, sizeof(ago) - 8, now - tps[top].ts);
            strcat(ago, " before");
        }
        const char *what = event_phrase(a, NULL, tps[top].type, tps[top].item_id, tps[top].channel);
        part = n == 1 ? tl_arena_printf(a,
                                        "the journey's one touchpoint, %s %s, adds %+.2f to the "
                                        "log-odds",
                                        what, ago, phi[top])
                      : tl_arena_printf(a,
                                        "of the journey's %d touchpoints, %s %s adds the most "
                                        "(%+.2f to the log-odds)",
                                        n, what, ago, phi[top]);
    }
    return tl_arena_printf(a, "p(purchase within %s) %s from %.3f to %.3f %s; %s", win,
                           after >= before ? "rose" : "fell", before, after, why, part);
}

tl_rc tl_intent_update(const tl_intent_cfg *ic, tl_model *m, int64_t lookback_ms, tl_user *u,
                       const tl_journey_tp *tps, int n, const tl_event *ev, int64_t now,
                       tl_arena *a, const tl_sink *out)
{
    if (!ic->enabled || !m || !tl_model_cfg_of(m)->enabled || !out->emit_intent) return TL_OK;
    tl_intent_model *im = tl_model_intent(m);
    tl_intent_resolve(im, u, ev, now, ic->window_ms);
    const tl_model_user hist = {u->purchases, u->first_ts, u->last_purchase, u->expected};
    double rate = projected_rate(m, &hist, tps, n, lookback_ms, now, ic->window_ms, a);
    tl_intent_moment mo = {
        .ts = now,
        .since_ts = u->last_purchase != INT64_MIN ? u->last_purchase : u->first_ts,
        .purchases = u->purchases,
        .z = (float)log(fmax(rate, 1e-30)),
        .since_purchase = u->last_purchase != INT64_MIN,
    };
    double p = im_predict(im, &mo);
    mo.p = (float)p;
    /* learned from once its outcome is known: moments after an event that leaves a journey
     * (whose expiry decides them at the latest; not the expiry's own), spread over the
     * window */
    if (ev && n > 0 &&
        (!u->n_pend || now - u->pend[u->n_pend - 1].ts >= ic->window_ms / TL_INTENT_PENDING_MAX))
        tl_user_add_intent_moment(u, &mo);
    uint64_t kmin = (uint64_t)tl_model_cfg_of(m)->warmup_examples;
    if (tl_model_unready(m) || im->positives < kmin || im->outcomes - im->positives < kmin)
        return TL_OK;
    double before = u->intent_ts == INT64_MIN ? 0 : u->intent;
    if (!(fabs(p - before) >= ic->threshold)) return TL_OK;
    tl_intent_delta d = {
        .user_id = u->user_id,
        .event_id = ev ? ev->event_id : NULL,
        .ts = now,
        .window_ms = ic->window_ms,
        .p = p,
        .previous = before,
        .model_version = tl_model_version(m),
        .explanation = explain(ic, m, tps, n, ev, now, before, p, a),
    };
    size_t cut = tl_utf8_cut(d.explanation, TL_EXPLANATION_MAX); /* the record's bound */
    if (d.explanation[cut]) d.explanation = tl_arena_strndup(a, d.explanation, cut);
    tl_rc rc = out->emit_intent(out->ctx, &d);
    if (rc == TL_OK) {
        u->intent = p;
        u->intent_ts = now;
    }
    return rc;
}
