/*
 * model.h -- the online conversion model and the model-based credits
 * (docs/attribution.md, "The conversion model").
 *
 * p(S): the model's probability that a moment with the touchpoints S behind it sees a
 * purchase (a discrete-time purchase hazard), an FTRL-Proximal logistic regression
 * (ftrl.h) on hashed features that add up over touchpoints (journey_features.h). The
 * examples come from the stream (model.c): every purchase, with the journey as it was
 * (label 1), and control moments on a grid of event time that the user lived through
 * without a purchase (label 0). Every example is scored before it is learned
 * (progressive validation, metrics.h).
 *
 * Credits of a purchase: Shapley values of v(S) = p(S) - p(empty) over its touchpoints
 * (exact up to model.shapley.exact.max touchpoints; beyond, permutation sampling) and removal
 * p(N) - p(N \ {j}); each made into shares in [0, 1] that sum to 1 (tl_credits_normalise),
 * or linear when the model gives no positive total (the record's model_status says which).
 * p(N) / p(empty) is how many times more likely the purchase was with its touchpoints, and
 * 1 - p(empty) / p(N) the part of it the model says they are owed.
 *
 * One tl_model per process, shared by all partitions (a global model; see
 * docs/operations.md on what that means when partitions move). Not thread-safe.
 */
#ifndef TL_MODEL_H
#define TL_MODEL_H

#include <stdio.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "engine/sink.h"
#include "engine/state.h"
#include "categories.h"
#include "journey_features.h"

typedef struct tl_model_cfg {
    int enabled;
    double alpha, beta, l1, l2;
    int ipw;                     /* weight examples by inverse propensity when known */
    double ipw_clip;
    int shapley_exact_max;
    int shapley_samples;
    int metrics_window;
    int64_t warmup_examples;     /* of each class, before model credits */
    int64_t control_interval_ms; /* the grid of control moments */
    int controls_max;            /* control moments learned per gap between two events */
    int signed_credits;          /* model.credits.signed */
    int average_eta;             /* model.credits.average.eta */
    int markov_enabled;
    int64_t markov_window_ms;
    int markov_order;            /* 1..TL_MARKOV_MAX_ORDER; 0: 1 */
    int markov_bootstrap;        /* chains per window for the credits' interval; 0: none */
    double markov_level;         /* its coverage */
    int markov_dim;              /* TL_DIM_CHANNEL or TL_DIM_CATEGORY; -1: channel when known */
    int shared;                  /* model.shared: one model for the group (with rollup.topic) */
    int kind;                    /* model.kind: TL_MODEL_FTRL or TL_MODEL_SEQ */
    int seq_dim, seq_buckets;    /* model.seq.*: the sequence model's sizes (model/seq.h) */
    double seq_lr, seq_l2;
    tl_categories_cfg cats;      /* categories.*: set by the caller (model/categories.h) */
} tl_model_cfg;

#define TL_MODEL_FTRL 0
#define TL_MODEL_SEQ 1

/* The model's and the Markov chain's configuration keys (model.*, markov.*), filled into
 * tl_model_cfg. */
extern const tl_config_def tl_model_config[];

int tl_model_cfg_load(tl_model_cfg *mc, const tl_config *c, char *err, size_t errlen);

typedef struct tl_model tl_model;

/* What the model knows of the user at a moment beside its journey: its own history
 * (journey_features.h, tl_jf_user). NULL where none is known. */
typedef struct tl_model_user {
    uint32_t purchases;   /* before the moment */
    int64_t first_ts;     /* of the user's first event; INT64_MIN: unknown */
    int64_t last_purchase; /* before the moment; INT64_MIN: none */
    double expected;      /* purchases expected of it before the moment (tl_model_learn) */
} tl_model_user;

typedef struct tl_model_report {
    uint64_t examples, positives, version;
    double logloss, auc, baseline_logloss, baseline_auc;   /* over the metrics window */
    uint64_t credited, fallbacks, sampled;
    uint64_t warming_up, no_negatives;   /* attributions without model credits, and why */
    uint64_t markov_windows, credit_deltas;
    uint64_t markov_dropped;             /* journeys the chain refused (too many states) */
    uint64_t controls_skipped;           /* past model.controls.max in one gap */
    uint64_t shared_records, shared_examples;   /* the other instances' updates added */
    uint64_t shared_bad;                 /* updates that did not decode (skipped) */
    /* the purchase intent (intent.h): outcomes learned, of them purchases, and the
     * progressive log-loss and AUC of the intents scored for them (NaN before any) */
    uint64_t intent_outcomes, intent_positives;
    double intent_logloss, intent_auc;
} tl_model_report;

/* checkpoint: file the model is saved to and resumed from (NULL: none). */
tl_model *tl_model_new(const tl_model_cfg *mc, const char *checkpoint, char *err, size_t errlen);
void tl_model_destroy(tl_model *m);

/* Also write every example (features, label, weight, both scores) as CSV to f; NULL
 * stops. */
void tl_model_export_examples(tl_model *m, FILE *f);

/* Adds the model fields, Shapley and removal credits to r (whose touchpoints are the
 * journey entries tps[0..n)), and appends a sentence on them to *explanation. */
void tl_model_credit(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                     tl_attribution *r, tl_arena *a, const char **explanation);

/* An example: the moment ts with the touchpoints tps[0..n) (the journey as it was then;
 * n may be 0), label 1 (a purchase at ts) or 0 (a control moment: none at ts). Returns
 * what the moment adds to the user's expected purchases (tl_model_user.expected): the
 * model's p of a purchase at it, scored before learning, without the user's intent
 * estimate; 0 when the model is off. */
double tl_model_learn(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                      int label, int64_t ts);

/* The category embeddings (categories.h), kept and checkpointed with the model: NULL
 * unless categories.enabled with the model on. */
struct tl_cat_model *tl_model_categories(tl_model *m);

/* The purchase intent's calibration (intent.h), kept and checkpointed with the model. */
struct tl_intent_model *tl_model_intent(tl_model *m);

/* The model's version: the examples it has learned (the record's model_version). */
int64_t tl_model_version(const tl_model *m);

/* Why the model gives no credits yet: "warming_up" (fewer than model.warmup.examples of a
 * class learned), "no_negatives" (no control moment learned yet), or NULL when it does. */
const char *tl_model_unready(const tl_model *m);

/* The purchase log-odds (a moment's, offset included, by the averaged weights) of a user
 * with history `user` (may be NULL) and journey tps[0..n) (oldest first) at each of the
 * moments at[0..k): at a moment, the touchpoints more than lookback_ms old are left out,
 * as the attribution stage leaves them out of a journey. Into out[0..k); scratch from a. */
void tl_model_logits(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                     int64_t lookback_ms, const int64_t *at, int k, tl_arena *a, double *out);

/* Each touchpoint's own part of the log-odds at time at (the additive model's; the
 * sequence model's attention is not split), into phi[0..n). */
void tl_model_tp_logits(tl_model *m, const tl_journey_tp *tps, int n, int64_t at, tl_arena *a,
                        double *phi);

/* A closed journey for the Markov chain: it ended in a purchase or it expired, at time
 * `at`. With a sink that takes paths (out->emit_path: one chain for every instance) it is
 * handed over to the sink instead; out may be NULL (the instance's own chain). */
tl_rc tl_model_path(tl_model *m, const tl_journey_tp *tps, int n, int converted, int64_t at,
                    const tl_sink *out);

/* What the model says a touch of one type on one channel adds to the log-odds of a
 * purchase, at each age anchor (journey_features.h): the learned fading curve, in the
 * averaged weights the credits use (ftrl.h, tl_ftrl_avg_weight). */
typedef struct tl_model_weights {
    int type;               /* tl_event_type */
    const char *channel;    /* borrowed from the model */
    double w[TL_JF_ANCHORS];
} tl_model_weights;

/* The weights of the (type, channel) pairs the model has seen in purchases' journeys since
 * it started (at most 64; not checkpointed: found again as they recur), largest fresh
 * weight first, into out[0..max). Returns the count. */
int tl_model_channel_weights(const tl_model *m, tl_model_weights *out, int max);

/* Counts control moments the stage skipped (model.controls.max). */
void tl_model_count_skipped(tl_model *m, uint64_t n);

/* The configuration the attribution stage reads (control moments). */
const tl_model_cfg *tl_model_cfg_of(const tl_model *m);

/* Event time moved to now: emits the credit deltas of every Markov window it closed. */
tl_rc tl_model_tick(tl_model *m, int64_t now, tl_arena *a, const tl_sink *out);

/* exactly_once, after each transaction: committed, the Markov part (the chain, its window,
 * the credits last published) is remembered as it is; aborted, it goes back to what was
 * remembered, so that the events read again do not add their journeys twice nor close a
 * window twice. With tl_model_undo_start, the conversion model (its FTRL weights, the
 * attention step's of model.kind=seq, and its progressive metrics) does the same: an
 * aborted transaction's examples are taken back, and learned once when its input is
 * processed again; the other instances' updates read in the meantime are applied again
 * after; the intent's calibration too (intent.h). Not taken back: the category model. */
void tl_model_undo_start(tl_model *m);
void tl_model_txn_end(tl_model *m, int committed);

int tl_model_checkpoint(tl_model *m);
void tl_model_report_get(const tl_model *m, tl_model_report *r);
/* The Markov credits (conversions credited) published at the end of the last window, by
 * channel or category (*dim): up to max names (borrowed until the next tick) and
 * credits. Returns the count. */
int tl_model_credits(const tl_model *m, tl_dim *dim, const char **names, double *credits, int max);

/* ---- one model for every instance (docs/attribution.md, "One model across instances")
 *
 * Each instance learns from its own examples and sends, with the outputs of the
 * transaction that made them, a model update: those examples' predictions (made before
 * learning them, for the others' progressive metrics) and what they added to the FTRL
 * state (ftrl.h, "sharing"). Every instance adds the others' updates to its own model, so
 * all of them learn from every example, once per committed transaction.
 *
 * tl_model_share_start: from now on, gather updates (no-op when the model is off).
 * tl_model_share_take: appends the update gathered since the last take to out, at most
 *   max_bytes of it (the rest stays for the next call), and forgets what it appended: 1,
 *   or 0 (nothing appended) when nothing is pending. Format:
 *   "TLMS" | u32 format 1 | u32 n | n x (f64 p | f64 weight | u8 label) | an FTRL delta
 *   (ftrl.h). Call it until it returns 0.
 * tl_model_share_clear: forgets the update gathered (an aborted transaction: its examples
 *   are learned again when its input is).
 * tl_model_share_apply: adds another instance's update, read at offset `offset` of the
 *   model topic (-1: none), which is remembered (checkpointed) as read. 0, or -1 with a
 *   message when it does not decode (the model is then unchanged).
 * tl_model_share_next: the offset of the model topic to read next (-1: from its start). */
void tl_model_share_start(tl_model *m);
int tl_model_share_take(tl_model *m, tl_buf *out, size_t max_bytes);
void tl_model_share_clear(tl_model *m);
int tl_model_share_apply(tl_model *m, const void *data, size_t len, int64_t offset, char *err,
                         size_t errlen);
int64_t tl_model_share_next(const tl_model *m);

#endif
