/*
 * model.c -- the conversion model, model-based credits and Markov windows (model.h).
 *
 * The model is a discrete-time purchase hazard, learned by case-base sampling: the
 * examples are every purchase (label 1, the journey as it was at the purchase) and
 * control moments (label 0), the points of a fixed event-time grid
 * (model.control.interval.ms) that each user lived through without purchasing, with the
 * journey as it was at each. A logistic model of cases against uniformly sampled
 * person-time estimates how the purchase rate depends on the features (Hanley and
 * Miettinen, "Fitting smooth-in-time prognostic risk functions via logistic regression",
 * 2009): a journey's length is no longer a label (no journey "expires" into a negative),
 * and nothing waits for an outcome: a control moment is known once the user's next event
 * or the journey's expiry passes it.
 *
 * Scoring coalitions. The features are additive over touchpoints (journey_features.h), so
 * the logit of a coalition is the bias plus the sum of its members' contributions phi_j,
 * computed once per purchase. Exact Shapley walks all 2^k coalitions in Gray-code order
 * (one addition per step) into a table; sampled permutations are scored in batches, a
 * 0/1 membership matrix times phi with one cblas_dgemv per 1024 coalitions.
 *
 * Order matters for an online model: a purchase is credited with the model as it is,
 * then learned from (progressive validation), so a record's p_conversion never saw
 * its own label. The model is one per process; with several partitions its examples
 * interleave in arrival order, so model-based numbers depend on that order (rule-based
 * ones do not). A replay of a file is the single-partition case.
 *
 * Checkpoint: one file (model.bin in state.dir), written to a temporary name and
 * renamed after every state flush, so it matches the stores written just before.
 *
 * Rejected: labels "the journey ended in a purchase" against "it expired" (length-biased:
 * converting journeys stop at the purchase, the others run on; and delayed by a lookback);
 * one example per touchpoint prefix labelled by a purchase within a window (measured
 * worse on generated data with a known truth: docs/benchmarks.md); a model per partition
 * (each would see a fraction of the labels, and partitions move between instances); the
 * sequence model alone as model.kind=seq, without this model underneath (its credits
 * and predictions were worse on the ground truth and the Taobao journeys:
 * docs/benchmarks.md).
 */
#define _XOPEN_SOURCE 700
#include "model.h"
#include "intent.h"
#include "categories.h"
#include "ftrl.h"
#include "journey_features.h"
#include "markov.h"
#include "metrics.h"
#include "seq.h"
#include "shapley.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/wire.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D TL_JF_DIM
/* Coordinates of one example: the bias and TL_JF_TP_NNZ per touchpoint, for at most
 * TL_MODEL_MAX_TPS touchpoints (a longer journey gives its last ones). */
#define TL_MODEL_MAX_TPS 64
#define NNZ_MAX (1 + TL_JF_USER_NNZ + TL_MODEL_MAX_TPS * TL_JF_TP_NNZ)

/* The event times (ms) a Markov window may start at: +-2^53 ms, about 285,000 years
 * either side of 1970. A checkpoint's window start outside is refused, and times
 * outside move no window, so window arithmetic (start + markov.window.ms, at most
 * 1e15) never overflows. */
#define TL_MODEL_MAX_TIME ((int64_t)1 << 53)

/* model.kind's choices, in the order of TL_MODEL_FTRL and TL_MODEL_SEQ */
static const char *const model_kinds[] = {"ftrl", "seq", NULL};

/* markov.dim's choices, in the order of its values before tl_model_cfg_load maps them */
static const char *const markov_dims[] = {"auto", "channel", "category", NULL};

const tl_config_def tl_model_config[] = {
    {"model.enabled", TL_CT_BOOL, "true", TL_NORANGE,
     "Learn the conversion model online and add model-based credits (shapley, removal) "
     "and p_conversion/p_baseline to every attribution.",
     TL_CFG_FIELD(tl_model_cfg, enabled)},
    {"model.kind", TL_CT_ENUM, "ftrl", TL_NORANGE,
     "The conversion model: ftrl, a logistic regression on the journey's touchpoints summed "
     "(FTRL-Proximal), or seq, the same plus a sequence model that sees their order "
     "(learned embeddings and one causal attention step; docs/attribution.md, \"The "
     "sequence model\"). Every instance of a group should have the same.",
     TL_CFG_ENUM(tl_model_cfg, kind, model_kinds)},
    {"model.seq.dim", TL_CT_INT, "16", 4, 64,
     "model.kind=seq: the size of its embeddings. The cost of an example grows as the "
     "square of the journey's length times this, plus its square.",
     TL_CFG_FIELD(tl_model_cfg, seq_dim)},
    {"model.seq.buckets", TL_CT_INT, "4096", 16, 1048576,
     "model.kind=seq: rows of its channel and of its category embeddings (a power of two); "
     "channels and categories are hashed into them.",
     TL_CFG_FIELD(tl_model_cfg, seq_buckets)},
    {"model.seq.lr", TL_CT_DOUBLE, "0.05", 1e-6, 10, "model.kind=seq: AdaGrad's step.",
     TL_CFG_FIELD(tl_model_cfg, seq_lr)},
    {"model.seq.l2", TL_CT_DOUBLE, "0.000001", 0, 100,
     "model.kind=seq: the L2 penalty on every weight.", TL_CFG_FIELD(tl_model_cfg, seq_l2)},
    {"model.ftrl.alpha", TL_CT_DOUBLE, "0.2", 1e-9, 1e6, "FTRL-Proximal learning rate alpha.",
     TL_CFG_FIELD(tl_model_cfg, alpha)},
    {"model.ftrl.beta", TL_CT_DOUBLE, "1", 0, 1e6, "FTRL-Proximal beta (smooths early rates).",
     TL_CFG_FIELD(tl_model_cfg, beta)},
    {"model.ftrl.l1", TL_CT_DOUBLE, "0", 0, 1e6,
     "FTRL-Proximal L1 regularisation: a weight stays 0 until its gradients add up to more than this (docs/attribution.md).",
     TL_CFG_FIELD(tl_model_cfg, l1)},
    {"model.ftrl.l2", TL_CT_DOUBLE, "0.1", 0, 1e6, "FTRL-Proximal L2 regularisation.",
     TL_CFG_FIELD(tl_model_cfg, l2)},
    {"model.ipw", TL_CT_BOOL, "true", TL_NORANGE,
     "Weight training examples by the inverse of their touchpoints' propensity, when the "
     "events carry one (docs/attribution.md).",
     TL_CFG_FIELD(tl_model_cfg, ipw)},
    {"model.ipw.clip", TL_CT_DOUBLE, "20", 1, 1e6, "Largest inverse-propensity weight.",
     TL_CFG_FIELD(tl_model_cfg, ipw_clip)},
    {"model.shapley.exact.max", TL_CT_INT, "12", 1, 20,
     "Exact Shapley values up to this many touchpoints; "
     "permutation sampling beyond.",
     TL_CFG_FIELD(tl_model_cfg, shapley_exact_max)},
    {"model.shapley.samples", TL_CT_INT, "512", 2, 1000000,
     "Permutations sampled when Shapley values are not computed exactly.",
     TL_CFG_FIELD(tl_model_cfg, shapley_samples)},
    {"model.warmup.examples", TL_CT_INT, "50", 0, 1e9,
     "Model credits only once the model has learned from this many purchases and as many "
     "control moments without one; before, shapley and removal are linear (model_status "
     "warming_up or no_negatives).",
     TL_CFG_FIELD(tl_model_cfg, warmup_examples)},
    {"model.control.interval.ms", TL_CT_INT, "21600000", 60000, 1e15,
     "The grid of control moments: every multiple of this much event time that a user lives "
     "through without a purchase is a negative example, with the journey as it was then "
     "(default 6 hours; docs/attribution.md).",
     TL_CFG_FIELD(tl_model_cfg, control_interval_ms)},
    {"model.controls.max", TL_CT_INT, "256", 1, 1e6,
     "At most this many control moments are learned from one gap between a user's events; "
     "the rest are counted as skipped (tally_model_controls_skipped_total).",
     TL_CFG_FIELD(tl_model_cfg, controls_max)},
    {"model.credits.signed", TL_CT_BOOL, "false", TL_NORANGE,
     "Signed model credits: a touchpoint the model says lowered p(purchase) keeps a negative "
     "share (shares in [-1, 1], absolute values summing to 1). Default: shares in [0, 1] of "
     "the gain, summing to 1.",
     TL_CFG_FIELD(tl_model_cfg, signed_credits)},
    {"model.credits.average.eta", TL_CT_INT, "1", 0, 16,
     "The model credits with its weights averaged over its versions, version t weighing about "
     "t^eta: 0 is the plain mean of the whole stream (steadiest, slowest to follow a change), "
     "1 puts 3/4 of the weight on the last half of the updates, larger forgets faster "
     "(docs/attribution.md).",
     TL_CFG_FIELD(tl_model_cfg, average_eta)},
    {"model.shared", TL_CT_BOOL, "true", TL_NORANGE,
     "With rollup.topic set (run): one conversion model for every instance of the group. Each "
     "instance sends what its examples taught the model to the topic <group>-model, in the "
     "transaction of the outputs that made them, and adds the others' to its own model "
     "(docs/attribution.md, \"One model across instances\"). false: each instance learns "
     "only from its own partitions.",
     TL_CFG_FIELD(tl_model_cfg, shared)},
    {"model.metrics.window", TL_CT_INT, "10000", 1, 4194304,
     "Examples in the window of the progressive log-loss and AUC.",
     TL_CFG_FIELD(tl_model_cfg, metrics_window)},
    {"markov.enabled", TL_CT_BOOL, "true", TL_NORANGE,
     "Keep a Markov chain of closed journeys and publish credit deltas every window.",
     TL_CFG_FIELD(tl_model_cfg, markov_enabled)},
    {"markov.window.ms", TL_CT_INT, "3600000", 1000, 1e15,
     "Event-time window after which Markov removal effects are recomputed.",
     TL_CFG_FIELD(tl_model_cfg, markov_window_ms)},
    {"markov.dim", TL_CT_ENUM, "auto", TL_NORANGE,
     "States of the chain: channel, category, or auto (channel when the events carry one).",
     TL_CFG_ENUM(tl_model_cfg, markov_dim, markov_dims)},
    {"markov.bootstrap.samples", TL_CT_INT, "0", 0, 10000,
     "Bootstrap chains per closed window for an interval of each Markov credit (credit_lo, "
     "credit_hi); 0: none. Each costs one more solve of the chain.",
     TL_CFG_FIELD(tl_model_cfg, markov_bootstrap)},
    {"markov.bootstrap.level", TL_CT_DOUBLE, "0.9", 0.5, 0.999,
     "Coverage of the Markov credits' bootstrap interval.",
     TL_CFG_FIELD(tl_model_cfg, markov_level)},
    {"markov.order", TL_CT_INT, "1", 1, 4,
     "Order of the chain: its states are the last k touches (as ChannelAttribution's "
     "markov_model order); removing a channel removes every state it is part of.",
     TL_CFG_FIELD(tl_model_cfg, markov_order)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

int tl_model_cfg_load(tl_model_cfg *mc, const tl_config *c, char *err, size_t errlen)
{
    memset(mc, 0, sizeof(*mc));
    if (tl_config_fill(c, tl_model_config, mc, err, errlen) != 0) return -1;
    if (mc->markov_bootstrap == 1) {
        snprintf(err, errlen,
                 "markov.bootstrap.samples: expected 0 (no interval) or 2 to 10000, "
                 "got 1");
        return -1;
    }
    if (mc->seq_buckets & (mc->seq_buckets - 1)) {
        snprintf(err, errlen, "model.seq.buckets: expected a power of two, got %d",
                 mc->seq_buckets);
        return -1;
    }
    static const int dims[] = {-1, TL_DIM_CHANNEL, TL_DIM_CATEGORY};   /* markov_dims */
    mc->markov_dim = dims[mc->markov_dim];
    return 0;
}

/* The sequence model's settings from the model's. */
static tl_seq_cfg seq_cfg(const tl_model_cfg *mc)
{
    return (tl_seq_cfg){.dim = mc->seq_dim,
                        .buckets = mc->seq_buckets,
                        .lr = mc->seq_lr,
                        .l2 = mc->seq_l2,
                        .seed = 1,
                        .residual = 1};
}

/* Credits a Markov state had at the end of the previous window. */
typedef struct prev_credit {
    char *name;
    double credit;
} prev_credit;

struct tl_model {
    tl_model_cfg cfg;
    char *checkpoint;
    tl_ftrl *ftrl;
    tl_seq *seq;                 /* model.kind=seq: the model that learns and credits */
    tl_intent_model *intent;     /* the purchase intent's calibration (intent.h) */
    tl_cat_model *cats;          /* the category embeddings (categories.h), or NULL */
    tl_metrics *metrics;
    /* one example's sparse vector, merged: pos[i] is coordinate i's place in (idx, x), -1
     * when absent */
    int32_t *pos, idx[NNZ_MAX];
    double x[NNZ_MAX];
    double *M;                   /* TL_SHAPLEY_BATCH x 64 membership rows (sampled) */
    double *z;                   /* their logits */
    FILE *export;
    tl_model_report rep;
    /* (type, channel) pairs seen in purchases' journeys, for tl_model_channel_weights */
    struct {
        int type;
        char *channel;
    } seen[64];
    int n_seen;
    /* Markov */
    tl_markov *markov;
    int markov_dim;              /* resolved: TL_DIM_CHANNEL or TL_DIM_CATEGORY, -1 unknown */
    int64_t window_start;        /* 0: no window yet */
    prev_credit *prev;
    int n_prev, cap_prev;
    /* Sharing (tl_model_share_start): the examples learned since the last take, as
     * (p, weight, label) rows for the others' metrics; the next offset of the model topic
     * to read (-1: from its start). */
    int sharing;
    tl_buf share_ex;
    uint32_t n_share_ex;
    int64_t feed_next;
    /* The Markov part (chain, window, last credits) as the last committed transaction left
     * it (tl_model_txn_end), and whether it changed since. */
    tl_buf mk_snap;
    int mk_dirty;
    /* Undo (tl_model_undo_start): 0 off; 1 between transactions, nothing to take back;
     * 2 learned in the open transaction, the weights and metrics journaled since just
     * before, and since: the other instances' updates applied since then (each as u32
     * length | the record), to apply again after an undo. */
    int undo;
    tl_buf since;
};

/* Updates the model that credits has taken. */
static uint64_t model_version(const tl_model *m)
{
    return m->seq ? tl_seq_version(m->seq) : tl_ftrl_version(m->ftrl);
}

/* ---- checkpoint ------------------------------------------------------------------ */

static void put_blob(tl_buf *b, const tl_buf *blob)
{
    uint64_t n = blob->len;
    tl_buf_append(b, &n, 8);
    tl_buf_append(b, blob->data, blob->len);
}

static const char *get_blob(const char **p, const char *end, size_t *len)
{
    uint64_t n;
    if (end - *p < 8) return NULL;
    memcpy(&n, *p, 8);
    *p += 8;
    if ((uint64_t)(end - *p) < n) return NULL;
    const char *s = *p;
    *p += n;
    *len = (size_t)n;
    return s;
}

/* The Markov part beside the chain: its dimension, window and last published credits. */
static void markov_window_encode(const tl_model *m, tl_buf *part)
{
    int32_t dim = m->markov_dim;
    tl_buf_append(part, &dim, 4);
    tl_buf_append(part, &m->window_start, 8);
    int32_t np = m->n_prev;
    tl_buf_append(part, &np, 4);
    for (int i = 0; i < m->n_prev; i++) {
        uint32_t l = (uint32_t)strlen(m->prev[i].name);
        tl_buf_append(part, &l, 4);
        tl_buf_append(part, m->prev[i].name, l);
        tl_buf_append(part, &m->prev[i].credit, 8);
    }
}

static void prev_clear(tl_model *m)
{
    for (int i = 0; i < m->n_prev; i++) free(m->prev[i].name);
    m->n_prev = 0;
}

/* Reads markov_window_encode's bytes into m. 0, or -1 (why says, when it can). */
static int markov_window_decode(tl_model *m, const char *s, size_t len, char *why, size_t whylen)
{
    if (len < 16) return -1;
    const char *q = s, *qe = s + len;
    int32_t dim, np;
    memcpy(&dim, q, 4);
    memcpy(&m->window_start, q + 4, 8);
    memcpy(&np, q + 12, 4);
    q += 16;
    if (m->window_start < -TL_MODEL_MAX_TIME || m->window_start > TL_MODEL_MAX_TIME) {
        snprintf(why, whylen,
                 ": its Markov window starts at %" PRId64 " ms, outside "
                 "+-%" PRId64 " ms",
                 m->window_start, TL_MODEL_MAX_TIME);
        m->window_start = 0;
        return -1;
    }
    m->markov_dim = dim;
    prev_clear(m);
    for (int i = 0; i < np && qe - q >= 4; i++) {
        uint32_t l;
        memcpy(&l, q, 4);
        q += 4;
        if ((size_t)(qe - q) < (size_t)l + 8) break;
        TL_GROW(m->prev, m->n_prev, m->cap_prev, 16);
        m->prev[m->n_prev].name = tl_xmalloc(l + 1);
        memcpy(m->prev[m->n_prev].name, q, l);
        m->prev[m->n_prev].name[l] = '\0';
        memcpy(&m->prev[m->n_prev].credit, q + l, 8);
        m->n_prev++;
        q += l + 8;
    }
    return m->n_prev == np && q == qe ? 0 : -1;
}

/* The Markov part as it is now, into m->mk_snap. */
static void markov_snapshot(tl_model *m)
{
    tl_buf part = {0};
    tl_buf_clear(&m->mk_snap);
    tl_markov_encode(m->markov, &part);
    put_blob(&m->mk_snap, &part);
    tl_buf_clear(&part);
    markov_window_encode(m, &part);
    put_blob(&m->mk_snap, &part);
    tl_buf_free(&part);
    m->mk_dirty = 0;
}

static int share_apply(tl_model *m, const void *data, size_t len, char *err, size_t errlen);

void tl_model_undo_start(tl_model *m)
{
    if (!m || !m->cfg.enabled || m->undo) return;
    m->undo = 1;
    tl_intent_model_undo_start(m->intent);
    tl_cat_undo_start(m->cats);
}

/* Before the first example of a transaction: the state to go back to, if it aborts. */
static void undo_mark(tl_model *m)
{
    tl_ftrl_undo_mark(m->ftrl);
    if (m->seq) tl_seq_undo_mark(m->seq);
    tl_metrics_undo_mark(m->metrics);
    tl_buf_clear(&m->since);
    m->undo = 2;
}

/* Between transactions: nothing to take back. */
static void undo_off(tl_model *m)
{
    tl_ftrl_undo_off(m->ftrl);
    if (m->seq) tl_seq_undo_off(m->seq);
    tl_metrics_undo_off(m->metrics);
    tl_buf_clear(&m->since);
    m->undo = 1;
}

/* The conversion model back to where it was before the aborted transaction's first
 * example: what this instance learned since is taken back, the others' updates read since
 * are applied again. */
static void model_undo(tl_model *m)
{
    size_t coords = tl_ftrl_undo(m->ftrl) + (m->seq ? tl_seq_undo(m->seq) : 0);
    int slots = tl_metrics_undo(m->metrics);
    int again = 0;
    char err[160];
    /* counted once, when they were read */
    uint64_t records = m->rep.shared_records, examples = m->rep.shared_examples;
    tl_wire_rd r = tl_wire_rd_of(m->since.data, m->since.len);
    const unsigned char *rec;
    size_t len;
    for (; (rec = tl_wire_record(&r, &len)) != NULL; again++)
        if (share_apply(m, rec, len, err, sizeof(err)) != 0)
            TL_LOG_ERROR("model", "an update applied before could not be applied again: %s", err);
    m->rep.shared_records = records;
    m->rep.shared_examples = examples;
    if (coords || slots)
        TL_LOG_WARN("model",
                    "a transaction did not commit: its learning is taken back (%zu weights, %d "
                    "examples of the progressive metrics)%s; its examples are learned when "
                    "its input is processed again",
                    coords, slots,
                    again ? ", and the other instances' updates read since applied again" : "");
}

void tl_model_txn_end(tl_model *m, int committed)
{
    tl_intent_model_txn_end(m->intent, committed);
    tl_cat_txn_end(m->cats, committed);
    if (m->undo == 2) {
        if (!committed) model_undo(m);
        undo_off(m);
    }
    if (!m->markov || !m->mk_dirty) return;
    if (committed) {
        markov_snapshot(m);
        return;
    }
    /* aborted: back to the snapshot, which this process wrote itself */
    const char *p = m->mk_snap.data, *end = p + m->mk_snap.len, *s;
    size_t len;
    tl_markov *mk = (s = get_blob(&p, end, &len)) ? tl_markov_decode(s, len, NULL) : NULL;
    char why[160];
    if (!mk || !(s = get_blob(&p, end, &len)) ||
        markov_window_decode(m, s, len, why, sizeof(why)) != 0) {
        tl_markov_destroy(mk);
        TL_LOG_ERROR("model",
                     "the Markov chain could not be taken back to the last commit; it "
                     "keeps what the aborted transaction added");
        m->mk_dirty = 0;
        return;
    }
    tl_markov_destroy(m->markov);
    m->markov = mk;
    m->mk_dirty = 0;
}

int tl_model_checkpoint(tl_model *m)
{
    if (!m->checkpoint) return 0;
    tl_buf b = {0}, part = {0};
    tl_buf_append(&b, "TLMODEL2", 8);
    tl_ftrl_encode(m->ftrl, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    tl_metrics_encode(m->metrics, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    tl_markov_encode(m->markov, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    markov_window_encode(m, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    /* the model topic's next offset (a later addition: files without it are still read) */
    tl_buf_append(&part, &m->feed_next, 8);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    /* the purchase intent's calibration (later still) */
    tl_intent_model_encode(m->intent, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    if (m->cats) {   /* the category embeddings (only with categories.enabled) */
        tl_cat_model_encode(m->cats, &part);
        put_blob(&b, &part);
        tl_buf_clear(&part);
    }
    if (m->seq) {   /* the sequence model (only with model.kind=seq) */
        tl_seq_encode(m->seq, &part);
        put_blob(&b, &part);
    }
    tl_buf_free(&part);

    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->checkpoint);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (f) {
        size_t w = fwrite(b.data, 1, b.len, f);
        if (fclose(f) == 0 && w == b.len && rename(tmp, m->checkpoint) == 0) rc = 0;
    }
    if (rc != 0)
        TL_LOG_ERROR("model", "cannot write checkpoint %s: %s", m->checkpoint, strerror(errno));
    tl_buf_free(&b);
    return rc;
}

/* The checkpoint's category embeddings: taken with categories.enabled and the same
 * categories.dim; with another dim they start afresh (said), and with categories.enabled
 * off they are left. 0 for bytes that do not decode. */
static int restore_cats(tl_model *m, const char *data, size_t len, char *why, size_t whylen)
{
    if (!m->cats) return 1;
    uint32_t dim = len >= 12 ? tl_le_get_u32((const unsigned char *)data + 8) : 0;
    if ((int)dim != m->cfg.cats.dim) {
        TL_LOG_WARN("model",
                    "checkpoint %s holds category embeddings of %u numbers, where "
                    "categories.dim is %d: they start afresh",
                    m->checkpoint, dim, m->cfg.cats.dim);
        return 1;
    }
    char msg[120];
    tl_cat_model *cm = tl_cat_model_decode(&m->cfg.cats, data, len, msg, sizeof(msg));
    if (!cm) {
        snprintf(why, whylen, ": its category embeddings part: %s", msg);
        return 0;
    }
    tl_cat_model_free(m->cats);
    m->cats = cm;
    return 1;
}

/* The checkpoint's sequence model: taken with model.kind=seq and the same sizes; with
 * other sizes it starts afresh (said), and with model.kind=ftrl it is left (an FTRL
 * model's checkpoint does not carry it on). 0 for bytes that are no such state. */
static int restore_seq(tl_model *m, const char *data, size_t len, char *why, size_t whylen)
{
    if (len < 24 || tl_wire_frame_format(data, len, "TLSQ") != 1) {
        snprintf(why, whylen, ": its last part is not a sequence model's state");
        return 0;
    }
    if (!m->seq) return 1;
    tl_seq_cfg sc = seq_cfg(&m->cfg);
    uint32_t dim = tl_le_get_u32((const unsigned char *)data + 8);
    uint32_t buckets = tl_le_get_u32((const unsigned char *)data + 12);
    if ((int)dim != sc.dim || (int)buckets != sc.buckets) {
        TL_LOG_WARN("model",
                    "checkpoint %s holds a sequence model of dim %u and %u buckets, where "
                    "model.seq.dim is %d and model.seq.buckets %d: it starts afresh",
                    m->checkpoint, dim, buckets, sc.dim, sc.buckets);
        return 1;
    }
    char msg[120];
    tl_seq *seq = tl_seq_decode(data, len, &sc, msg, sizeof(msg));
    if (!seq) {
        snprintf(why, whylen, ": %s", msg);
        return 0;
    }
    tl_seq_free(m->seq);
    m->seq = seq;
    return 1;
}

/* Restores from the checkpoint file if there is one. 0, or -1 if it is corrupt. */
static int model_restore(tl_model *m, char *err, size_t errlen)
{
    tl_buf b = {0};
    if (tl_buf_read_file(&b, m->checkpoint, SIZE_MAX, NULL, 0) == -1) return 0;   /* none */
    /* An empty file has no buffer at all (b.data NULL, where even NULL + 0 is undefined)
     * and a short one no magic: tl_model_checkpoint renames a whole file into place, so
     * either is damage from outside, and named as such. */
    if (b.len < 8) {
        snprintf(err, errlen,
                 "model checkpoint %s is corrupt: %zu bytes, too short for one "
                 "(remove it to start the model afresh)",
                 m->checkpoint, b.len);
        tl_buf_free(&b);
        return -1;
    }
    const char *p = b.data, *end = b.data + b.len, *s;
    size_t len;
    int rc = -1;
    char why[160] = "";
    /* TLMODEL1: the earlier feature layout (44 pooled features). Its Markov chain is
     * kept; the conversion model starts afresh. */
    int v1 = memcmp(p, "TLMODEL1", 8) == 0;
    if (!v1 && memcmp(p, "TLMODEL2", 8) != 0) goto done;
    p += 8;
    tl_ftrl *ftrl = NULL;
    tl_metrics *met = NULL;
    tl_markov *mk = NULL;
    if (!(s = get_blob(&p, end, &len)) ||
        (v1 ? !(ftrl = tl_ftrl_new(D, m->cfg.alpha, m->cfg.beta, m->cfg.l1, m->cfg.l2))
            : (!(ftrl = tl_ftrl_decode(s, len)) || tl_ftrl_dim(ftrl) != D))) {
        tl_ftrl_destroy(ftrl);
        goto done;
    }
    if (!(s = get_blob(&p, end, &len)) ||
        !(met = v1 ? tl_metrics_new(m->cfg.metrics_window) : tl_metrics_decode(s, len))) {
        tl_ftrl_destroy(ftrl);
        goto done;
    }
    if (v1)
        TL_LOG_WARN("model",
                    "checkpoint %s has the earlier feature layout: the conversion "
                    "model starts afresh (the Markov chain is kept)",
                    m->checkpoint);
    if (!(s = get_blob(&p, end, &len)) || !(mk = tl_markov_decode(s, len, NULL))) {
        tl_ftrl_destroy(ftrl);
        tl_metrics_destroy(met);
        goto done;
    }
    if (m->markov && tl_markov_order(mk) != tl_markov_order(m->markov)) {
        /* markov.order changed: a chain of the other order cannot take these paths */
        TL_LOG_WARN("model",
                    "checkpoint %s has a Markov chain of order %d and markov.order "
                    "is %d: the chain starts afresh (its credits are recomputed from the "
                    "journeys closed from now on)",
                    m->checkpoint, tl_markov_order(mk), tl_markov_order(m->markov));
        tl_markov_destroy(mk);
        mk = tl_markov_new_order(tl_markov_order(m->markov));
    }
    tl_ftrl_destroy(m->ftrl);
    tl_metrics_destroy(m->metrics);
    tl_markov_destroy(m->markov);
    tl_ftrl_set_average(ftrl, m->cfg.average_eta);   /* in range: the configuration's */
    m->ftrl = ftrl;
    m->metrics = met;
    m->markov = mk;
    if (!(s = get_blob(&p, end, &len)) || len < 16) goto done;   /* the Markov window part */
    {
        const char *fb;
        size_t flen;
        if (p != end) {   /* the model topic's next offset */
            if (!(fb = get_blob(&p, end, &flen)) || flen != 8) goto done;
            memcpy(&m->feed_next, fb, 8);
            if (m->feed_next < -1) goto done;
        }
        /* then the intent's calibration and a sequence model, each known by its magic
         * (files from before either lack it) */
        while (p != end) {
            if (!(fb = get_blob(&p, end, &flen))) goto done;
            if (tl_wire_frame_format(fb, flen, "TLIN")) {
                tl_intent_model *im = tl_intent_model_decode(fb, flen);
                if (!im) {
                    snprintf(why, sizeof(why), ": its purchase intent part does not decode");
                    goto done;
                }
                tl_intent_model_free(m->intent);
                m->intent = im;
            } else if (tl_wire_frame_format(fb, flen, "TLNC")) {
                if (!restore_cats(m, fb, flen, why, sizeof(why))) goto done;
            } else if (p != end || !restore_seq(m, fb, flen, why, sizeof(why))) {
                goto done;
            }
        }
    }
    if (markov_window_decode(m, s, len, why, sizeof(why)) != 0) goto done;
    rc = 0;
    TL_LOG_INFO("model", "resumed from %s version=%" PRIu64 " examples=%" PRIu64, m->checkpoint,
                model_version(m), tl_metrics_count(m->metrics));
done:
    if (rc != 0) snprintf(err, errlen, "model checkpoint %s is corrupt%s", m->checkpoint, why);
    tl_buf_free(&b);
    return rc;
}

tl_model *tl_model_new(const tl_model_cfg *mc, const char *checkpoint, char *err, size_t errlen)
{
    /* The matrices here are small (at most 1024 x 64): OpenBLAS's worker threads would
     * spin and yield for nothing (measured: 40% of the time in sched_yield). */
    openblas_set_num_threads(1);
    tl_model *m = tl_xcalloc(1, sizeof(*m));
    m->cfg = *mc;
    /* 0: the defaults (a configuration made by hand rather than by tl_model_cfg_load) */
    if (m->cfg.control_interval_ms <= 0) m->cfg.control_interval_ms = 6 * 3600000LL;
    if (m->cfg.controls_max <= 0) m->cfg.controls_max = 256;
    m->ftrl = tl_ftrl_new(D, mc->alpha, mc->beta, mc->l1, mc->l2);
    if (m->ftrl) tl_ftrl_set_average(m->ftrl, mc->average_eta);
    if (mc->kind == TL_MODEL_SEQ) {
        tl_seq_cfg sc = seq_cfg(mc);
        if (!(m->seq = tl_seq_new(&sc, err, errlen))) {
            tl_model_destroy(m);
            return NULL;
        }
    }
    m->metrics = tl_metrics_new(mc->metrics_window);
    m->intent = tl_intent_model_new(mc->alpha, mc->beta, mc->l1, mc->l2);
    if (mc->enabled && mc->cats.enabled && !(m->cats = tl_cat_model_new(&mc->cats))) {
        snprintf(err, errlen, "model: invalid category embedding parameters (categories.*)");
        tl_model_destroy(m);
        return NULL;
    }
    m->markov = tl_markov_new_order(mc->markov_order > 0 ? mc->markov_order : 1);
    m->markov_dim = mc->markov_dim;
    m->feed_next = -1;
    m->pos = tl_xmalloc((size_t)D * sizeof(*m->pos));
    memset(m->pos, 0xff, (size_t)D * sizeof(*m->pos));   /* -1 */
    m->M = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * TL_MODEL_MAX_TPS * sizeof(double));
    m->z = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * sizeof(double));
    if (!m->ftrl || !m->metrics || !m->markov || !m->intent) {
        snprintf(err, errlen, "model: invalid parameters (FTRL alpha/beta/l1/l2, metrics window)");
        tl_model_destroy(m);
        return NULL;
    }
    if (checkpoint) {
        m->checkpoint = tl_xstrdup(checkpoint);
        if (model_restore(m, err, errlen) != 0) {
            tl_model_destroy(m);
            return NULL;
        }
    }
    if (m->markov) markov_snapshot(m);   /* what an abort before the first commit goes back to */
    return m;
}

void tl_model_destroy(tl_model *m)
{
    if (!m) return;
    tl_ftrl_destroy(m->ftrl);
    tl_seq_free(m->seq);
    tl_intent_model_free(m->intent);
    tl_cat_model_free(m->cats);
    tl_metrics_destroy(m->metrics);
    tl_markov_destroy(m->markov);
    for (int i = 0; i < m->n_prev; i++) free(m->prev[i].name);
    for (int i = 0; i < m->n_seen; i++) free(m->seen[i].channel);
    tl_buf_free(&m->share_ex);
    tl_buf_free(&m->mk_snap);
    tl_buf_free(&m->since);
    TL_FREE_ALL(m->prev, m->pos, m->M, m->z, m->checkpoint, m);
}

void tl_model_export_examples(tl_model *m, FILE *f)
{
    m->export = f;
    if (f) fprintf(f, "ts,label,weight,p_model,p_rate,features\n");
}

/* ---- features and scores --------------------------------------------------------- */

/* The example of a moment at time at with touchpoints tps[0..n) (the last
 * TL_MODEL_MAX_TPS of them): the bias and every touchpoint's coordinates, merged, into
 * (m->idx, m->x); returns the count. */
static int example(tl_model *m, const tl_model_user *user, const tl_jf_tp *tps, int n, int64_t at)
{
    int k = 0;
    m->idx[k] = TL_JF_BIAS;
    m->x[k++] = 1;
    m->pos[TL_JF_BIAS] = 0;
    if (user) {
        int c = tl_jf_user(user->purchases, user->first_ts, user->last_purchase, user->expected, at,
                           m->idx + k, m->x + k);
        for (int i = 0; i < c; i++) m->pos[m->idx[k + i]] = k + i;
        k += c;
    }
    for (int j = n > TL_MODEL_MAX_TPS ? n - TL_MODEL_MAX_TPS : 0; j < n; j++) {
        int32_t idx[TL_JF_TP_NNZ];
        double x[TL_JF_TP_NNZ];
        int c = tl_jf_features(&tps[j], at, idx, x);
        for (int i = 0; i < c; i++) {
            int32_t at_k = m->pos[idx[i]];
            if (at_k >= 0) {
                m->x[at_k] += x[i];
            } else {
                m->pos[idx[i]] = k;
                m->idx[k] = idx[i];
                m->x[k++] = x[i];
            }
        }
    }
    for (int i = 0; i < k; i++) m->pos[m->idx[i]] = -1;
    return k;
}

/* The part of the logit that is not learned: the log-odds of a purchase among the examples
 * so far (with one of each added). Purchases are rare against control moments (one in a
 * few hundred); learning that rate into the bias, from 0, would push every feature seen
 * early far below 0 while the bias catches up, and an online learner's decaying rates
 * would leave them there. With the rate as an offset, the weights learn how the features
 * move a purchase away from it. */
static double offset(const tl_model *m)
{
    double pos = (double)tl_metrics_positives(m->metrics);
    double all = (double)tl_metrics_count(m->metrics);
    return log((pos + 1) / (all - pos + 1));
}

/* Each touchpoint's contribution to the logit at time at, into phi[0..n), by the averaged
 * weights (ftrl.h): the credits follow what the model has settled on, not its last step. */
static void contributions(const tl_model *m, const tl_jf_tp *tps, int n, int64_t at, double *phi)
{
    for (int j = 0; j < n; j++) {
        int32_t idx[TL_JF_TP_NNZ];
        double x[TL_JF_TP_NNZ];
        int c = tl_jf_features(&tps[j], at, idx, x);
        phi[j] = tl_ftrl_dot_sparse_avg(m->ftrl, idx, x, c);
    }
}

/* A journey's touchpoints as the sequence model takes them. */
static void seq_tps(const tl_journey_tp *tps, int n, tl_seq_tp *out)
{
    for (int i = 0; i < n; i++) {
        const tl_journey_tp *t = &tps[i];
        out[i] = (tl_seq_tp){
            .type = t->type,
            .chan_key = t->channel ? tl_hash64(t->channel, strlen(t->channel)) : 0,
            .cat_key = t->category_id ? tl_hash64(t->category_id, strlen(t->category_id)) : 0,
            .ts = t->ts};
    }
}

typedef struct game {
    tl_model *m;
    const double *phi;   /* per player */
    int n;
    double bias, p_empty;
} game;

/* v(S) = p(S) - p(empty) for a batch of coalitions. The sampled estimator passes runs of
 * coalitions, each adding one player to the one before: such a coalition's sum is the one
 * before plus that player's phi. The first of each run is a row of a 0/1 membership
 * matrix, and their sums are one cblas_dgemv (M phi) per batch. */
static void game_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    game *g = arg;
    tl_model *m = g->m;
    for (int done = 0; done < count; done += TL_SHAPLEY_BATCH) {
        int k = count - done < TL_SHAPLEY_BATCH ? count - done : TL_SHAPLEY_BATCH;
        int rows = 0;
        for (int i = 0; i < k; i++) {   /* the run starts, as rows */
            uint64_t mask = masks[done + i], prev = i ? masks[done + i - 1] : 0,
                     added = mask & ~prev;
            if (i > 0 && !(prev & ~mask) && added && !(added & (added - 1))) continue;
            for (int j = 0; j < g->n; j++) m->M[(size_t)rows * g->n + j] = (double)(mask >> j & 1);
            rows++;
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, g->n, 1.0, m->M, g->n, g->phi, 1, 0.0, m->z,
                    1);
        double s = 0;
        int row = 0;
        for (int i = 0; i < k; i++) {
            uint64_t mask = masks[done + i], prev = i ? masks[done + i - 1] : 0,
                     added = mask & ~prev;
            if (i > 0 && !(prev & ~mask) && added && !(added & (added - 1)))
                s += g->phi[__builtin_ctzll(added)];
            else s = m->z[row++];
            v[done + i] = tl_sigmoid(g->bias + s) - g->p_empty;
        }
    }
}

static void table_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    const double *table = arg;
    for (int i = 0; i < count; i++) v[i] = table[masks[i]];
}

/* The sequence model's raw credits of a purchase (its journey prepared in p at the
 * purchase's time, the offset off; id, the purchase's event id, seeds the permutations):
 * Shapley values from the table of every coalition up to
 * model.shapley.exact.max touchpoints, sampled beyond (se: their standard errors); and
 * removal effects. Returns the Shapley values' rc; *rem_rc the removal effects'. */
static int seq_raw(tl_model *m, tl_seq_pass *p, int n, double off, const char *id, tl_arena *a,
                   double *shap, double **se, double *rem, int *rem_rc)
{
    tl_seq_game gm;
    tl_seq_game_init(&gm, p, off);
    int rc;
    if (n <= m->cfg.shapley_exact_max) {
        double *table = tl_arena_alloc(a, ((size_t)1 << n) * sizeof(double));
        tl_seq_table(p, off, table);
        rc = tl_shapley_exact(n, table_fn, table, shap);
    } else {
        *se = tl_arena_alloc(a, (size_t)n * sizeof(**se));
        rc = tl_shapley_sampled(n, m->cfg.shapley_samples, tl_hash64(id, strlen(id)),
                                tl_seq_game_fn, &gm, shap, *se);
        m->rep.sampled++;
    }
    *rem_rc = tl_removal(n, tl_seq_game_fn, &gm, rem);
    tl_seq_game_fini(&gm);
    return rc;
}

/* Exact Shapley values of k <= 20 players with contributions phi: every coalition's
 * value, in Gray-code order (one addition per step), then the Shapley sum over the table. */
static int shapley_players(const game *g, const double *phi, int k, tl_arena *a, double *out)
{
    double *table = tl_arena_alloc(a, ((size_t)1 << k) * sizeof(double));
    double s = 0;
    uint64_t prev = 0;
    table[0] = 0;
    for (uint64_t i = 1; i < ((uint64_t)1 << k); i++) {
        uint64_t gc = i ^ (i >> 1);
        int b = __builtin_ctzll(gc ^ prev);
        s += (gc >> b & 1) ? phi[b] : -phi[b];
        table[gc] = tl_sigmoid(g->bias + s) - g->p_empty;
        prev = gc;
    }
    return tl_shapley_exact(k, table_fn, table, out);
}

static void linear(int n, double *out)
{
    for (int i = 0; i < n; i++) out[i] = 1.0 / n;
}

/* The model's part of the explanation: model numbers only from a model that is ready;
 * the two touchpoints with the most Shapley credit (shares in [0, 1], so percentages in
 * [0, 100]). */
static const char *sentence(tl_arena *a, const tl_attribution *r, const tl_journey_tp *tps, int n,
                            const char *how, const char *ready, uint64_t pos, uint64_t neg,
                            uint64_t k, int ok_shap, int ok_rem)
{
    const double *shap = r->credits[TL_M_SHAPLEY];
    double lift = r->p_conversion / r->p_baseline;
    if (ready && neg == 0)
        return tl_arena_printf(a,
                               "; the model has learned from no moment without a purchase yet "
                               "(%" PRIu64 " with one), so it cannot tell what raises the purchase "
                               "rate: model credits are linear",
                               pos);
    if (ready)
        return tl_arena_printf(a,
                               "; the model is warming up (%" PRIu64 " purchases and %" PRIu64
                               " moments without one learned, %" PRIu64 " of each needed): model "
                               "credits are linear",
                               pos, neg, k);
    if (!ok_shap)
        return tl_arena_printf(a,
                               "; the model (version %" PRId64 ") finds that the touchpoints did "
                               "not raise the purchase rate (%.2f times the rate with none), so "
                               "Shapley falls back to linear%s",
                               r->model_version, lift,
                               ok_rem ? " (removal credits the touchpoints whose removal lowers it)"
                                      : ", and so does removal");
    int top = 0, second = -1;
    for (int i = 1; i < n; i++) {
        if (shap[i] > shap[top]) {
            second = top;
            top = i;
        } else if (second < 0 || shap[i] > shap[second]) {
            second = i;
        }
    }
    char ago[32];
    tl_fmt_duration(ago, sizeof(ago), r->ts - tps[top].ts);
    /* lift <= 1: together they did not raise the rate, though some of them did (the
     * shares are of what those raised) */
    const char *owed = lift > 1
        ? tl_arena_printf(a, "%.0f%% of this purchase is owed to them, and", 100 * (1 - 1 / lift))
        : "none of this purchase is owed to them together; of what some raised,";
    const char *s = tl_arena_printf(
        a,
        "; the model (version %" PRId64 ") puts the purchase rate with these touchpoints at "
        "%.2f times the rate with none, so %s Shapley (%s) gives %.0f%% to the %s of item %s "
        "(%s before)",
        r->model_version, lift, owed, how, 100 * shap[top],
        tl_event_type_phrase((tl_event_type)tps[top].type), tps[top].item_id, ago);
    if (second >= 0 && shap[second] > 0) {
        tl_fmt_duration(ago, sizeof(ago), r->ts - tps[second].ts);
        s = tl_arena_printf(
            a, "%s and %.0f%% to the %s of item %s (%s before)", s, 100 * shap[second],
            tl_event_type_phrase((tl_event_type)tps[second].type), tps[second].item_id, ago);
    }
    return ok_rem ? s : tl_arena_printf(a, "%s; removal falls back to linear", s);
}

void tl_model_credit(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                     tl_attribution *r, tl_arena *a, const char **explanation)
{
    if (!m->cfg.enabled || n <= 0) return;
    tl_seq_pass *sp = NULL;
    double *phi = NULL, sum = 0, p_all;
    game g = {.m = m, .n = n};
    tl_jf_tp *jf = tl_arena_alloc(a, (size_t)n * sizeof(*jf));
    tl_jf_prepare(tps, n, jf);
    phi = tl_arena_alloc(a, (size_t)n * sizeof(*phi));
    contributions(m, jf, n, r->ts, phi);
    for (int j = 0; j < n; j++) sum += phi[j];
    /* the baseline: the bias and the user's own history */
    g.phi = phi;
    g.bias = offset(m) + tl_ftrl_avg_weight(m->ftrl, TL_JF_BIAS);
    if (user) {
        int32_t idx[TL_JF_USER_NNZ];
        double x[TL_JF_USER_NNZ];
        int c = tl_jf_user(user->purchases, user->first_ts, user->last_purchase, user->expected,
                           r->ts, idx, x);
        g.bias += tl_ftrl_dot_sparse_avg(m->ftrl, idx, x, c);
    }
    if (m->seq) {
        /* its journey's last TL_MODEL_MAX_TPS touchpoints (a longer one falls back below),
         * each with its additive contribution beside what attention adds */
        int k = n < TL_MODEL_MAX_TPS ? n : TL_MODEL_MAX_TPS;
        tl_seq_tp *st = tl_arena_alloc(a, (size_t)k * sizeof(*st));
        seq_tps(tps + (n - k), k, st);
        sp = tl_seq_prepare(m->seq, st, k, r->ts);
        tl_seq_pass_add(sp, phi + (n - k));
        g.p_empty = tl_sigmoid(g.bias + tl_seq_logit(sp, 0));
        p_all =
            tl_sigmoid(g.bias + tl_seq_logit(sp, k == 64 ? UINT64_MAX : (UINT64_C(1) << k) - 1));
    } else {
        g.p_empty = tl_sigmoid(g.bias);
        p_all = tl_sigmoid(g.bias + sum);
    }

    double *raw = tl_arena_alloc(a, (size_t)n * sizeof(*raw));
    double *shap = tl_arena_alloc(a, (size_t)n * sizeof(*shap));
    double *rem = tl_arena_alloc(a, (size_t)n * sizeof(*rem));
    int ok_shap = 0, ok_rem = 0;
    const char *how = "exact";
    double *se = NULL; /* sampled: each raw value's standard error */
    /* Warm-up: model credits only from a model that has seen both outcomes enough; before,
     * the credits are linear and not computed at all. */
    uint64_t pos = tl_metrics_positives(m->metrics);
    uint64_t neg = tl_metrics_count(m->metrics) - pos;
    uint64_t k = (uint64_t)m->cfg.warmup_examples;
    const char *ready = tl_model_unready(m);
    if (!ready) {
        /* raw Shapley values into raw (rc) and raw removal effects into rem (rem_rc), by
         * the model that credits; then each made into shares */
        int rc = TL_SHAPLEY_EARG, rem_rc = TL_SHAPLEY_EARG;
        const char *id = r->conversion_event_id; /* its hash seeds sampled permutations */
        if (m->seq) {
            /* more touchpoints than a coalition mask holds: both fall back */
            if (n <= TL_MODEL_MAX_TPS)
                rc = seq_raw(m, sp, n, g.bias, id, a, raw, &se, rem, &rem_rc);
        } else {
            if (n <= m->cfg.shapley_exact_max) {
                rc = shapley_players(&g, phi, n, a, raw);
            } else if (n <= TL_MODEL_MAX_TPS) {
                /* Sampled, not grouped by category: with additive contributions, grouping
                 * would only average the touchpoints of a category, a bias sampling has
                 * not. */
                se = tl_arena_alloc(a, (size_t)n * sizeof(*se));
                rc = tl_shapley_sampled(n, m->cfg.shapley_samples, tl_hash64(id, strlen(id)),
                                        game_fn, &g, raw, se);
                m->rep.sampled++;
            } /* else more touchpoints than a coalition mask holds: Shapley falls back */
            for (int j = 0; j < n; j++) rem[j] = p_all - tl_sigmoid(g.bias + sum - phi[j]);
            rem_rc = TL_SHAPLEY_OK;
        }
        if (se) how = "sampled";
        ok_shap = rc == TL_SHAPLEY_OK && tl_credits_normalise(n, raw, shap, m->cfg.signed_credits);
        if (ok_shap && se) { /* a share is raw / mass: its error, raw's over the mass */
            double mass = tl_credits_mass(n, raw, m->cfg.signed_credits);
            for (int j = 0; j < n; j++) se[j] /= mass;
            r->shapley_stderr = se;
        }
        memcpy(raw, rem, (size_t)n * sizeof(*raw));
        ok_rem =
            rem_rc == TL_SHAPLEY_OK && tl_credits_normalise(n, raw, rem, m->cfg.signed_credits);
    }
    if (!ok_shap) linear(n, shap);
    if (!ok_rem) linear(n, rem);
    r->credits[TL_M_SHAPLEY] = shap;
    r->credits[TL_M_REMOVAL] = rem;
    r->has_method[TL_M_SHAPLEY] = r->has_method[TL_M_REMOVAL] = 1;
    r->model_status[TL_M_SHAPLEY] = ready ? ready : ok_shap ? "ok" : "fallback_linear";
    r->model_status[TL_M_REMOVAL] = ready ? ready : ok_rem ? "ok" : "fallback_linear";
    r->has_model = 1;
    r->p_conversion = p_all;
    r->p_baseline = g.p_empty;
    r->model_version = (int64_t)model_version(m);
    tl_seq_pass_free(sp);
    m->rep.credited++;
    *explanation = tl_arena_printf(
        a, "%s%s", *explanation, sentence(a, r, tps, n, how, ready, pos, neg, k, ok_shap, ok_rem));
    if (ready && neg == 0) {
        /* Said once, when it first matters; the end of a run says it again if it lasted. */
        if (!m->rep.no_negatives++)
            TL_LOG_WARN("model",
                        "a purchase was credited before the model learned from any "
                        "control moment: model credits stay linear (model_status no_negatives) "
                        "until a user lives through a multiple of model.control.interval.ms "
                        "(%.1f h of event time) without a purchase",
                        (double)m->cfg.control_interval_ms / 3.6e6);
    } else if (ready) {
        m->rep.warming_up++;
    } else if (!ok_shap) {
        m->rep.fallbacks++;
    }
}

struct tl_intent_model *tl_model_intent(tl_model *m) { return m->intent; }
struct tl_cat_model *tl_model_categories(tl_model *m) { return m ? m->cats : NULL; }

int64_t tl_model_version(const tl_model *m) { return (int64_t)model_version(m); }

const char *tl_model_unready(const tl_model *m)
{
    uint64_t pos = tl_metrics_positives(m->metrics);
    uint64_t neg = tl_metrics_count(m->metrics) - pos;
    uint64_t k = (uint64_t)m->cfg.warmup_examples;
    return neg == 0 ? "no_negatives" : (pos < k || neg < k) ? "warming_up" : NULL;
}

void tl_model_logits(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                     int64_t lookback_ms, const int64_t *at, int k, tl_arena *a, double *out)
{
    tl_jf_tp *jf = n ? tl_arena_alloc(a, (size_t)n * sizeof(*jf)) : NULL;
    if (n) tl_jf_prepare(tps, n, jf);
    double base = offset(m) + tl_ftrl_avg_weight(m->ftrl, TL_JF_BIAS);
    /* Without the sequence model, a touchpoint's part at any age is the hat-weighted sum of
     * its parts at the two anchors around that age: each is computed once, when a moment
     * first needs it (NAN: not yet), whatever the number of moments. */
    double *av = NULL, *phi = NULL;
    tl_seq_tp *st = NULL;
    if (m->seq && n) {
        phi = tl_arena_alloc(a, (size_t)n * sizeof(*phi));
        st = tl_arena_alloc(a, (size_t)n * sizeof(*st));
        seq_tps(tps, n, st);
    } else if (n) {
        av = tl_arena_alloc(a, (size_t)n * TL_JF_ANCHORS * sizeof(*av));
        for (int j = 0; j < n * TL_JF_ANCHORS; j++) av[j] = NAN;
    }
    for (int i = 0; i < k; i++) {
        /* the touchpoints a moment at[i] would credit: at most a lookback old */
        int from = 0;
        while (from < n && tps[from].ts < at[i] - lookback_ms) from++;
        double z = base;
        if (user) {
            int32_t idx[TL_JF_USER_NNZ];
            double x[TL_JF_USER_NNZ];
            int c = tl_jf_user(user->purchases, user->first_ts, user->last_purchase, user->expected,
                               at[i], idx, x);
            z += tl_ftrl_dot_sparse_avg(m->ftrl, idx, x, c);
        }
        if (m->seq && n - from > 0) {
            contributions(m, jf + from, n - from, at[i], phi);
            int c = n - from < TL_MODEL_MAX_TPS ? n - from : TL_MODEL_MAX_TPS;
            tl_seq_pass *sp = tl_seq_prepare(m->seq, st + (n - c), c, at[i]);
            tl_seq_pass_add(sp, phi + (n - from - c));
            z += tl_seq_logit(sp, c == 64 ? UINT64_MAX : (UINT64_C(1) << c) - 1);
            for (int j = 0; j < n - from - c; j++) z += phi[j];
            tl_seq_pass_free(sp);
        } else {
            for (int j = from; j < n; j++) {
                int anchor[2];
                double wt[2];
                int h = tl_jf_hat(at[i] - jf[j].ts, anchor, wt);
                for (int q = 0; q < h; q++) {
                    double *v = &av[(size_t)j * TL_JF_ANCHORS + (size_t)anchor[q]];
                    if (isnan(*v)) {
                        int32_t idx[TL_JF_KEYS];
                        double x[TL_JF_KEYS];
                        int c = tl_jf_anchor_features(&jf[j], anchor[q], idx, x);
                        *v = tl_ftrl_dot_sparse_avg(m->ftrl, idx, x, c);
                    }
                    z += wt[q] * *v;
                }
            }
        }
        out[i] = z;
    }
}

void tl_model_tp_logits(tl_model *m, const tl_journey_tp *tps, int n, int64_t at, tl_arena *a,
                        double *phi)
{
    if (n <= 0) return;
    tl_jf_tp *jf = tl_arena_alloc(a, (size_t)n * sizeof(*jf));
    tl_jf_prepare(tps, n, jf);
    contributions(m, jf, n, at, phi);
}

/* ---- learning ------------------------------------------------------------------- */

static double ipw_weight(const tl_model *m, const tl_journey_tp *tps, int n)
{
    if (!m->cfg.ipw) return 1.0;
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (tps[i].propensity > 0) {
            sum += 1.0 / tps[i].propensity;
            k++;
        }
    }
    if (!k) return 1.0;
    double w = sum / k;
    return w > m->cfg.ipw_clip ? m->cfg.ipw_clip : w;
}

/* Notes a purchase's touchpoint's (type, channel), while there is room. */
static void see(tl_model *m, const tl_journey_tp *t)
{
    if (!t->channel) return;
    for (int i = 0; i < m->n_seen; i++)
        if (m->seen[i].type == t->type && !strcmp(m->seen[i].channel, t->channel)) return;
    if (m->n_seen == (int)(sizeof(m->seen) / sizeof(m->seen[0]))) return;
    m->seen[m->n_seen].type = t->type;
    m->seen[m->n_seen++].channel = tl_xstrdup(t->channel);
}

int tl_model_channel_weights(const tl_model *m, tl_model_weights *out, int max)
{
    int n = 0;
    if (m->seq) return 0; /* its touchpoints' effects depend on what comes before them */
    for (int i = 0; i < m->n_seen && n < max; i++) {
        tl_model_weights *o = &out[n++];
        o->type = m->seen[i].type;
        o->channel = m->seen[i].channel;
        uint64_t key = tl_jf_key('c', o->type, o->channel);
        for (int a = 0; a < TL_JF_ANCHORS; a++)
            o->w[a] = tl_ftrl_avg_weight(m->ftrl, tl_jf_index(key, a));
    }
    for (int i = 1; i < n; i++) /* insertion sort, largest fresh weight first */
        for (int j = i; j > 0 && out[j].w[0] > out[j - 1].w[0]; j--) {
            tl_model_weights t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

void tl_model_count_skipped(tl_model *m, uint64_t n) { m->rep.controls_skipped += n; }

const tl_model_cfg *tl_model_cfg_of(const tl_model *m) { return &m->cfg; }

tl_rc tl_model_path(tl_model *m, const tl_journey_tp *tps, int n, int converted, int64_t at,
                    const tl_sink *out)
{
    if (!m->cfg.markov_enabled || n <= 0) return TL_OK;
    if (m->markov_dim < 0) { /* auto: channels if the first closed journey has them */
        m->markov_dim = TL_DIM_CATEGORY;
        for (int i = 0; i < n; i++)
            if (tps[i].channel) m->markov_dim = TL_DIM_CHANNEL;
        m->mk_dirty = 1;
    }
    const char *states[64];
    int k = 0;
    for (int i = n > 64 ? n - 64 : 0; i < n; i++) {
        const char *s = m->markov_dim == TL_DIM_CHANNEL ? tps[i].channel : tps[i].category_id;
        if (s) states[k++] = s;
    }
    if (!k) return TL_OK;
    if (out && out->emit_path)
        return out->emit_path(out->ctx, m->markov_dim, at, states, k, converted);
    m->mk_dirty = 1;
    int rc =
        tl_markov_add_path(m->markov, states, k, converted ? 1.0 : 0.0, converted ? 0.0 : 1.0, 0.0);
    if (rc != TL_MARKOV_OK && !m->rep.markov_dropped++) /* said once; the count is reported */
        TL_LOG_WARN("model",
                    "the Markov chain leaves out a closed journey: %s (order %d); "
                    "a lower markov.order or markov.dim=channel keeps fewer states",
                    tl_markov_strerror(rc), tl_markov_order(m->markov));
    return TL_OK;
}

double tl_model_learn(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                      int label, int64_t ts)
{
    if (!m->cfg.enabled || n < 0) return 0;
    if (m->undo == 1) undo_mark(m);
    tl_jf_tp jf[TL_MODEL_MAX_TPS];
    const tl_journey_tp *t = n > TL_MODEL_MAX_TPS ? tps + (n - TL_MODEL_MAX_TPS) : tps;
    int k = n > TL_MODEL_MAX_TPS ? TL_MODEL_MAX_TPS : n;
    double weight = ipw_weight(m, t, k);
    double p_rate = tl_metrics_baseline_rate(m->metrics);
    /* p: scored before the update */
    double p;
    int nnz;
    tl_jf_prepare(t, k, jf);
    nnz = example(m, user, jf, k, ts);
    double off = offset(m);
    if (m->seq) {
        /* one prediction, the sum's logit plus what attention adds; each learns from it */
        tl_seq_tp st[TL_MODEL_MAX_TPS];
        seq_tps(t, k, st);
        double att;
        tl_seq_learn(m->seq, st, k, ts, off + tl_ftrl_dot_sparse(m->ftrl, m->idx, m->x, nnz), label,
                     weight, &att);
        off += att;
    }
    /* the moment's part of the user's expected purchases: p without its intent estimate
     * (the first user pair, after the bias, when there is one) */
    double z = off + tl_ftrl_dot_sparse(m->ftrl, m->idx, m->x, nnz);
    if (nnz > 1 && m->idx[1] == tl_jf_intent_index())
        z -= tl_ftrl_weight(m->ftrl, m->idx[1]) * m->x[1];
    p = tl_ftrl_learn_sparse(m->ftrl, m->idx, m->x, nnz, off, label, weight);
    tl_metrics_add(m->metrics, p, label, weight);
    if (m->sharing) {
        char row[17], *q = tl_le_put_f64(tl_le_put_f64(row, p), weight);
        *q = (char)(label != 0);
        tl_buf_append(&m->share_ex, row, sizeof(row));
        m->n_share_ex++;
    }
    if (label)
        for (int i = 0; i < k; i++) see(m, &t[i]);
    if (m->export) {
        fprintf(m->export, "%" PRId64 ",%d,%.17g,%.17g,%.17g,", ts, label, weight, p, p_rate);
        for (int i = 0; i < nnz; i++)
            fprintf(m->export, "%s%d:%.17g", i ? " " : "", (int)m->idx[i], m->x[i]);
        fputc('\n', m->export);
    }
    return tl_sigmoid(z);
}

/* ---- Markov windows ------------------------------------------------------------- */

static prev_credit *prev_find(tl_model *m, const char *name)
{
    for (int i = 0; i < m->n_prev; i++)
        if (!strcmp(m->prev[i].name, name)) return &m->prev[i];
    TL_GROW(m->prev, m->n_prev, m->cap_prev, 16);
    prev_credit *p = &m->prev[m->n_prev++];
    p->name = tl_xstrdup(name);
    p->credit = 0;
    return p;
}

tl_rc tl_model_tick(tl_model *m, int64_t now, tl_arena *a, const tl_sink *out)
{
    if (!m->cfg.markov_enabled || out->emit_path)
        return TL_OK; /* a shared chain's windows:
                                                                   * sink/rollup_agg.c */
    const int64_t len = m->cfg.markov_window_ms;
    /* A time this far out is no event time (ingest.ts.min/max can be set that wide): it
     * neither opens nor closes a window, so every window start stays within what a
     * checkpoint is checked against, and start + len cannot overflow. */
    if (now < -TL_MODEL_MAX_TIME || now > TL_MODEL_MAX_TIME) return TL_OK;
    const int64_t start = tl_floor_to(now, len); /* of the window now is in */
    if (start < -TL_MODEL_MAX_TIME) return TL_OK;
    if (m->window_start == 0) {
        m->window_start = start;
        m->mk_dirty = 1;
        return TL_OK;
    }
    /* now < window_start + len, without computing the sum: the window start may come
     * from a checkpoint (checked on restore, but this stays right whatever it holds). */
    if (now < m->window_start || (uint64_t)now - (uint64_t)m->window_start < (uint64_t)len)
        return TL_OK;
    /* Close the current window; windows after it with no new journey change nothing. */
    tl_markov_result res;
    memset(&res, 0, sizeof(res));
    tl_rc rc = TL_OK;
    if (tl_markov_paths(m->markov) > 0 &&
        tl_markov_removal_effects(m->markov, &res) == TL_MARKOV_OK) {
        /* The interval's draws are seeded by the window, so a replay repeats the stream's;
         * without one (not configured, or a failed solve) the deltas go out without it. */
        if (m->cfg.markov_bootstrap >= 2)
            tl_markov_bootstrap(m->markov, m->cfg.markov_bootstrap, (uint64_t)m->window_start,
                                m->cfg.markov_level, &res);
        for (int i = 0; i < res.n; i++) {
            prev_credit *p = prev_find(m, res.channels[i].name);
            double credit = res.channels[i].markov_conversions;
            if (fabs(credit - p->credit) <= 1e-12 * (1 + fabs(credit))) continue;
            tl_credit_delta d = tl_markov_credit_delta(
                &res, i, m->window_start, len,
                m->markov_dim == TL_DIM_CHANNEL ? TL_DIM_CHANNEL : TL_DIM_CATEGORY, p->credit);
            p->credit = credit;
            m->rep.credit_deltas++;
            if ((rc = out->emit_credit(out->ctx, &d)) != TL_OK) break;
        }
        m->rep.markov_windows++;
    }
    tl_markov_result_free(&res);
    m->window_start = start;
    m->mk_dirty = 1;
    (void)a;
    return rc;
}

void tl_model_report_get(const tl_model *m, tl_model_report *r)
{
    *r = m->rep;
    r->examples = tl_metrics_count(m->metrics);
    r->positives = tl_metrics_positives(m->metrics);
    r->version = model_version(m);
    r->logloss = tl_metrics_logloss(m->metrics);
    r->auc = tl_metrics_auc(m->metrics);
    r->baseline_logloss = tl_metrics_baseline_logloss(m->metrics);
    r->baseline_auc = tl_metrics_baseline_auc(m->metrics);
    tl_intent_model_stats(m->intent, &r->intent_outcomes, &r->intent_positives, &r->intent_logloss,
                          &r->intent_auc);
}

int tl_model_credits(const tl_model *m, tl_dim *dim, const char **names, double *credits, int max)
{
    *dim = m->markov_dim == TL_DIM_CHANNEL ? TL_DIM_CHANNEL : TL_DIM_CATEGORY;
    int n = 0;
    for (int i = 0; i < m->n_prev && n < max; i++) {
        names[n] = m->prev[i].name;
        credits[n++] = m->prev[i].credit;
    }
    return n;
}

/* ---- one model for every instance (model.h) ------------------------------------- */

#define SHARE_MAGIC "TLMS"
#define SHARE_FORMAT 1u
#define SHARE_ROW 17 /* f64 p | f64 weight | u8 label */

void tl_model_share_start(tl_model *m)
{
    if (!m->cfg.enabled || m->sharing) return;
    tl_ftrl_delta_track(m->ftrl);
    if (m->seq) tl_seq_delta_track(m->seq);
    m->sharing = 1;
}

int tl_model_share_take(tl_model *m, tl_buf *out, size_t max_bytes)
{
    if (!m->sharing ||
        (!m->n_share_ex && !tl_ftrl_delta_pending(m->ftrl) &&
         !(m->seq && tl_seq_delta_pending(m->seq))))
        return 0;
    if (max_bytes < 4096) max_bytes = 4096;
    size_t start = out->len;
    uint32_t n = m->n_share_ex, cap = (uint32_t)(max_bytes / 2 / SHARE_ROW);
    if (n > cap) n = cap;
    char h[TL_WIRE_FRAME_LEN + 4];
    tl_le_put_u32(tl_wire_w_frame(h, SHARE_MAGIC, SHARE_FORMAT), n);
    tl_buf_append(out, h, sizeof(h));
    tl_buf_append(out, m->share_ex.data, (size_t)n * SHARE_ROW);
    /* the rows sent leave the buffer (the rest go in the next part) */
    size_t sent = (size_t)n * SHARE_ROW;
    memmove(m->share_ex.data, m->share_ex.data + sent, m->share_ex.len - sent);
    m->share_ex.len -= sent;
    m->n_share_ex -= n;
    size_t rows = (max_bytes - 12 - sent - 24) / 20;
    if (m->seq) rows /= 2; /* half of what is left for the sequence model's rows */
    if (!tl_ftrl_delta_take(m->ftrl, out, rows)) tl_ftrl_delta_put_empty(m->ftrl, out);
    if (m->seq && tl_seq_delta_pending(m->seq)) { /* after the FTRL model's delta */
        size_t used = out->len - start;
        tl_seq_delta_take(m->seq, out, max_bytes > used ? max_bytes - used : 0);
    }
    return 1;
}

void tl_model_share_clear(tl_model *m)
{
    if (!m->sharing) return;
    tl_ftrl_delta_clear(m->ftrl);
    if (m->seq) tl_seq_delta_clear(m->seq);
    tl_buf_clear(&m->share_ex);
    m->n_share_ex = 0;
}

int tl_model_share_apply(tl_model *m, const void *data, size_t len, int64_t offset, char *err,
                         size_t errlen)
{
    if (offset >= 0) m->feed_next = offset + 1; /* a refused record is not read again */
    if (!m->cfg.enabled) return 0;
    int rc = share_apply(m, data, len, err, errlen);
    if (rc == 0 && m->undo == 2 && len <= UINT32_MAX)
        tl_wire_put_record(&m->since, data, (uint32_t)len);
    return rc;
}

static int share_apply(tl_model *m, const void *data, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = data;
    if (tl_wire_frame_format(data, len, SHARE_MAGIC) != SHARE_FORMAT || len < 12) {
        snprintf(err, errlen, "not a model update (magic or format)");
        m->rep.shared_bad++;
        return -1;
    }
    uint32_t n = tl_le_get_u32(p + 8);
    if ((len - 12) / SHARE_ROW < n) {
        snprintf(err, errlen, "model update: %" PRIu32 " examples announced, %zu bytes", n, len);
        m->rep.shared_bad++;
        return -1;
    }
    const unsigned char *ex = p + 12;
    for (uint32_t i = 0; i < n; i++) {
        double pi = tl_le_get_f64(ex + (size_t)i * SHARE_ROW),
               wi = tl_le_get_f64(ex + (size_t)i * SHARE_ROW + 8);
        unsigned char yi = ex[(size_t)i * SHARE_ROW + 16];
        if (!(pi >= 0 && pi <= 1) || !(wi >= 0) || !isfinite(wi) || yi > 1) {
            snprintf(err, errlen, "model update: example %" PRIu32 " is not valid", i);
            m->rep.shared_bad++;
            return -1;
        }
    }
    size_t off = 12 + (size_t)n * SHARE_ROW;
    /* the FTRL model's delta, then, from an instance with model.kind=seq, the sequence
     * model's (an instance without one takes only the first, if the second is one) */
    size_t flen = tl_ftrl_delta_len(p + off, len - off);
    const unsigned char *sq = p + off + flen;
    size_t slen = flen ? len - off - flen : 0;
    int64_t updates = -1;
    if (!flen ||
        (slen &&
         (m->seq ? tl_seq_delta_check(m->seq, sq, slen) != 0
                 : tl_wire_frame_format(sq, slen, "TLSD") != 1)) ||
        (updates = tl_ftrl_delta_apply(m->ftrl, p + off, flen)) < 0) {
        snprintf(err, errlen, "model update: the weights' delta does not decode for this model");
        m->rep.shared_bad++;
        return -1;
    }
    if (slen && m->seq) tl_seq_delta_apply(m->seq, sq, slen); /* checked above */
    for (uint32_t i = 0; i < n; i++)
        tl_metrics_add(m->metrics, tl_le_get_f64(ex + (size_t)i * SHARE_ROW),
                       ex[(size_t)i * SHARE_ROW + 16],
                       tl_le_get_f64(ex + (size_t)i * SHARE_ROW + 8));
    m->rep.shared_records++;
    m->rep.shared_examples += n;
    return 0;
}

int64_t tl_model_share_next(const tl_model *m) { return m->feed_next; }
