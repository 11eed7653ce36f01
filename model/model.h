/*
 * model.h -- the online conversion model and the model-based credits
 * (docs/attribution.md, "The conversion model").
 *
 * p(S): the probability that a journey with touchpoints S ends in a purchase, an
 * FTRL-Proximal logistic regression (ftrl.h) on the pooled journey features
 * (journey_features.h). Labels come from the stream: a purchase closes the credited
 * touchpoints as a positive example; a journey with no purchase within the lookback
 * after its last touchpoint expires (event time) as a negative one. Every example is
 * scored before it is learned (progressive validation, metrics.h).
 *
 * Credits of a purchase: Shapley values of v(S) = p(S) - p(empty) over its touchpoints
 * (exact up to model.shapley.exact.max players; beyond, touchpoints grouped by category
 * when that gives few enough groups, else permutation sampling) and removal
 * p(N) - p(N \ {j}); both normalised to sum to 1, or linear when the model gives no
 * positive total (the explanation says so).
 *
 * One tl_model per process, shared by all partitions (a global model; see
 * docs/operations.md on what that means when partitions move). Not thread-safe.
 */
#ifndef TL_MODEL_H
#define TL_MODEL_H

#include <stdio.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/sink.h"
#include "core/state.h"

typedef struct tl_model_cfg {
    int enabled;
    double alpha, beta, l1, l2;
    int ipw;                     /* weight examples by inverse propensity when known */
    double ipw_clip;
    int shapley_exact_max;
    int shapley_samples;
    int metrics_window;
    int64_t warmup_examples;     /* of each class, before model credits */
    int signed_credits;          /* model.credits.signed */
    int markov_enabled;
    int64_t markov_window_ms;
    int markov_dim;              /* TL_DIM_CHANNEL or TL_DIM_CATEGORY; -1: channel when known */
} tl_model_cfg;

int tl_model_cfg_load(tl_model_cfg *mc, const tl_config *c, char *err, size_t errlen);

typedef struct tl_model tl_model;

typedef struct tl_model_report {
    uint64_t examples, positives, version;
    double logloss, auc, baseline_logloss, baseline_auc;   /* over the metrics window */
    uint64_t credited, fallbacks, grouped, sampled;
    uint64_t warming_up, no_negatives;   /* attributions without model credits, and why */
    uint64_t markov_windows, credit_deltas;
} tl_model_report;

/* checkpoint: file the model is saved to and resumed from (NULL: none). */
tl_model *tl_model_new(const tl_model_cfg *mc, const char *checkpoint, char *err, size_t errlen);
void tl_model_destroy(tl_model *m);

/* Also write every example (features, label, weight, both scores) as CSV to f. */
void tl_model_export_examples(tl_model *m, FILE *f);

/* Adds the model fields, Shapley and removal credits to r (whose touchpoints are the
 * journey entries tps[0..n)), and appends a sentence on them to *explanation. */
void tl_model_credit(tl_model *m, const tl_journey_tp *tps, int n, tl_attribution *r,
                     tl_arena *a, const char **explanation);

/* A closed journey: label 1 (it ended in a purchase at ts) or 0 (it expired at ts). */
void tl_model_learn(tl_model *m, const tl_journey_tp *tps, int n, int label, int64_t ts);

/* Event time moved to now: emits the credit deltas of every Markov window it closed. */
tl_rc tl_model_tick(tl_model *m, int64_t now, tl_arena *a, const tl_sink *out);

int tl_model_checkpoint(tl_model *m);
void tl_model_report_get(const tl_model *m, tl_model_report *r);
/* The Markov credits (conversions credited) published at the end of the last window, by
 * channel or category (*dim): up to max names (borrowed until the next tick) and
 * credits. Returns the count. */
int tl_model_credits(const tl_model *m, tl_dim *dim, const char **names, double *credits, int max);

#endif
