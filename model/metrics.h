/*
 * metrics.h -- progressive-validation metrics of the conversion model: every example is
 * scored before it is learned, and the score is added here with its label.
 *
 * A tl_metrics keeps the last W examples (a ring buffer of W slots, 25 bytes each) and
 * reports over that window:
 *   - log-loss: sum_i c_i * -[y_i log p_i + (1 - y_i) log(1 - p_i)] / sum_i c_i, with c_i the
 *     importance weight and p_i clipped to [1e-15, 1 - 1e-15];
 *   - ROC AUC, exact and weighted: the probability that a positive scores above a negative,
 *     ties counting one half, each (positive, negative) pair weighted by c_pos * c_neg
 *     (with unit weights this is the usual AUC, the normalised Mann-Whitney U).
 * and, over all examples ever added, the counts of examples and of positives.
 *
 * The baseline. Beside each model score the tracker records what a model-free predictor
 * would have said: the running conversion rate before that example,
 *     rate = (prior_weight * prior + sum c_i y_i) / (prior_weight + sum c_i)
 * over the examples added so far (prior before the first one, or while sum c_i = 0). With
 * unit weights and prior_weight 0 it is positives / examples. It is updated AFTER the
 * example is scored, exactly like the model, and its log-loss and AUC come from the same
 * window, so the two sit side by side (tl_metrics_baseline_*).
 *
 * Conventions:
 *   - Memory: tl_metrics_new*() and tl_metrics_decode() return an object owned by the
 *     caller, freed by tl_metrics_destroy() (NULL accepted).
 *   - Errors: constructors return NULL for invalid arguments or malformed input;
 *     tl_metrics_add() returns -1 (and changes nothing) for an invalid example.
 *     Metrics that are undefined return NaN.
 *   - Threading: no internal locking; queries may run concurrently with each other, not
 *     with tl_metrics_add().
 *   - Cost: add is O(1); logloss is O(W); auc is O(W log W) and allocates scratch space.
 */
#ifndef TL_METRICS_H
#define TL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define TL_METRICS_MAX_WINDOW (1 << 22)

typedef struct tl_metrics tl_metrics;

/* A tracker over the last `window` examples (1 <= window <= TL_METRICS_MAX_WINDOW), with
 * the baseline starting at prior 0.5 and prior_weight 0. NULL if window is out of range. */
tl_metrics *tl_metrics_new(int window);

/* The same with a configured baseline prior: 0 <= prior <= 1, prior_weight >= 0 (in
 * examples' worth of weight; > 0 keeps the early baseline away from 0 and 1). */
tl_metrics *tl_metrics_new_baseline(int window, double prior, double prior_weight);

void tl_metrics_destroy(tl_metrics *m);

/* Adds an example scored p (0 <= p <= 1) with label y (0 or 1; any non-zero counts as 1)
 * and importance weight >= 0 (finite). The oldest example leaves a full window. Returns 0,
 * or -1 when p or weight is invalid (NaN included); the example is then not counted. */
int tl_metrics_add(tl_metrics *m, double p, int y, double weight);

/* tl_metrics_undo_mark starts (or restarts) a journal of what tl_metrics_add changes (at
 * most the window's slots); tl_metrics_undo takes every example added since the mark
 * back, bit for bit, and ends the journal. It returns the number of window slots put back (0
 * without a journal). tl_metrics_undo_off ends the journal. */
void tl_metrics_undo_mark(tl_metrics *m);
int tl_metrics_undo(tl_metrics *m);
void tl_metrics_undo_off(tl_metrics *m);

/* Over the window. logloss: NaN when the window's total weight is 0 (e.g. empty).
 * auc: NaN when the positive or the negative weight in the window is 0, in particular
 * when the window holds one class only. */
double tl_metrics_logloss(const tl_metrics *m);
double tl_metrics_auc(const tl_metrics *m);

/* The same for the baseline's scores, and the rate the baseline predicts next. */
double tl_metrics_baseline_logloss(const tl_metrics *m);
double tl_metrics_baseline_auc(const tl_metrics *m);
double tl_metrics_baseline_rate(const tl_metrics *m);

/* Examples and positives added so far (all time), and in the window. */
uint64_t tl_metrics_count(const tl_metrics *m);
uint64_t tl_metrics_positives(const tl_metrics *m);
int tl_metrics_window_count(const tl_metrics *m);
int tl_metrics_window_positives(const tl_metrics *m);
int tl_metrics_window_size(const tl_metrics *m);   /* W */

/* Appends the whole tracker (window contents oldest first, counts, baseline) to out as a
 * little-endian record; tl_metrics_decode() gives back a tracker that reports the same
 * values and continues identically. decode: NULL unless buf is exactly one valid record
 * (every read bounds-checked, every value range-checked). */
void tl_metrics_encode(const tl_metrics *m, tl_buf *out);
tl_metrics *tl_metrics_decode(const void *buf, size_t len);

#endif
