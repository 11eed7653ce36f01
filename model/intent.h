/*
 * intent.h -- each user's purchase intent: the conversion model's probability that the user
 * buys within a window, published when it moves (docs/attribution.md, "Purchase intent").
 *
 * The model (model.h) gives the purchase log-odds of a moment, and its examples sample the
 * users' time on a grid of model.control.interval.ms (case-base sampling), so its odds are
 * the purchase rate times that interval: lambda(t) = exp(logit(t)) / interval. The intent at
 * time t is 1 - exp(-integral of lambda over (t, t + W]) with the journey as it is at t,
 * its touchpoints ageing (and leaving the lookback) as the window goes on: what the model
 * expects if nothing else is seen of the user. The integral is over the logits at the model's
 * age anchors that fall inside the window and at its end, exp of a straight line between
 * each two (exact for a logit linear between them).
 *
 * That integral is not yet the intent: what the model projects "if nothing more is seen"
 * is too high right after a session's touches (the purchase rate during a session, held
 * while the touches age), and it leaves out the user's own history's weight. So the intent
 * is a second, small logistic model (the calibration, FTRL over 32 coordinates) of "a
 * purchase within the window", on the logarithm of that integral (over anchors, so the
 * curve is free), the user's purchases so far and the time since the last one; it learns
 * from the outcomes of scored moments. A moment scored after a touch is kept in the user's
 * record (at most TL_INTENT_PENDING_MAX, at least window / TL_INTENT_PENDING_MAX apart)
 * until its outcome is known: a purchase within the window after it (label 1), the user's
 * next event after the window or its journey's expiry without one (label 0). The window
 * is at most the lookback, so every such moment is resolved by the expiry at the latest.
 *
 * The attribution stage calls tl_intent_update after each event of a user and when the
 * user's journey expires; a record (tl_intent_delta) goes out when the intent differs from
 * the last one published for that user by at least intent.threshold (a user's first counts
 * from 0). Nothing is published while the model or the calibration warms up (fewer than
 * model.warmup.examples outcomes of each kind).
 */
#ifndef TL_INTENT_H
#define TL_INTENT_H

#include "lib/arena.h"
#include "lib/config.h"
#include "engine/sink.h"
#include "model/model.h"

/* The calibration: its weights, outcomes learned and progressive metrics. Kept with the
 * conversion model (model.c checkpoints it). */
typedef struct tl_intent_model tl_intent_model;
tl_intent_model *tl_intent_model_new(double alpha, double beta, double l1, double l2);
void tl_intent_model_free(tl_intent_model *im);
/* exactly_once (model.h, tl_model_undo_start): after tl_intent_model_undo_start, what the
 * calibration learned in a transaction that does not commit (tl_intent_model_txn_end) is
 * taken back, bit for bit; NULL is a no-op. */
void tl_intent_model_undo_start(tl_intent_model *im);
void tl_intent_model_txn_end(tl_intent_model *im, int committed);
/* "TLIN" | u32 format 1 | u64 outcomes | u64 positives | ftrl (ftrl.h) | metrics (metrics.h),
 * each of the last two as u64 length + bytes. */
void tl_intent_model_encode(const tl_intent_model *im, tl_buf *out);
/* NULL when buf is not exactly one such record. */
tl_intent_model *tl_intent_model_decode(const void *buf, size_t len);
/* Outcomes learned, of them purchases; progressive log-loss and AUC of the intents scored
 * for them (NaN before any). */
void tl_intent_model_stats(const tl_intent_model *im, uint64_t *outcomes, uint64_t *positives,
                           double *logloss, double *auc);

/* The calibration's coordinates of a moment (at most 6; idx into out_idx): the bias, z over
 * its anchors, log(1 + purchases) and the age of since_ts over the journey's age anchors.
 * Returns the count. */
int tl_intent_features(const tl_intent_moment *m, int32_t *idx, double *x);

typedef struct tl_intent_cfg {
    int enabled;
    int64_t window_ms;
    double threshold;
} tl_intent_cfg;

/* The keys intent.*, filled into tl_intent_cfg. */
extern const tl_config_def tl_intent_config[];
int tl_intent_cfg_load(tl_intent_cfg *ic, const tl_config *c, char *err, size_t errlen);

/* 1 - exp(-sum over the k - 1 spans of the integral of exp(logit) / interval_ms), the logit
 * linear between (t[i], logit[i]) and (t[i+1], logit[i+1]); t ascending, k >= 1. */
double tl_intent_integrate(const int64_t *t, const double *logit, int k, double interval_ms);

/* The model's projection, before the calibration: 1 - exp(-the rate integral) of a user
 * with history `user` and journey tps[0..n) at time now (the moments of
 * tl_intent_integrate: now, now + each age anchor inside the window, now + window). */
double tl_intent_projection(tl_model *m, const tl_model_user *user, const tl_journey_tp *tps, int n,
                            int64_t lookback_ms, int64_t now, int64_t window_ms, tl_arena *a);

/* Learns the outcomes that the event ev of user u at now (ev NULL: its journey's expiry)
 * decides, and forgets those moments. window_ms is intent.window.ms. */
void tl_intent_resolve(tl_intent_model *im, tl_user *u, const tl_event *ev, int64_t now,
                       int64_t window_ms);

/* After event ev of user u (its journey the entries tps[0..n) credited at now) or, with ev
 * NULL, when its journey expired at now: emits an intent_delta to out when the intent moved
 * by at least the threshold, and remembers it in u. */
tl_rc tl_intent_update(const tl_intent_cfg *ic, tl_model *m, int64_t lookback_ms, tl_user *u,
                       const tl_journey_tp *tps, int n, const tl_event *ev, int64_t now,
                       tl_arena *a, const tl_sink *out);

#endif
