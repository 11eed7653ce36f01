/*
 * ftrl.h -- online logistic regression trained with FTRL-Proximal (McMahan et al., "Ad
 * Click Prediction: a View from the Trenches", KDD 2013, Algorithm 1) over dense feature
 * vectors of a fixed dimension d (1 <= d <= TL_FTRL_MAX_DIM).
 *
 * The model: p(y = 1 | x) = sigmoid(w . x). The state is, per coordinate i, z[i] and n[i]
 * (the sum of squared gradients); the weights follow from them in closed form:
 *
 *     w[i] = 0                                                  if |z[i]| <= l1
 *     w[i] = -(z[i] - sgn(z[i]) l1) / ((beta + sqrt(n[i])) / alpha + l2)   otherwise
 *
 * Bias: there is no separate intercept. The caller reserves one coordinate of x that is
 * always 1.0; that coordinate is an ordinary feature, so L1 and L2 apply to it exactly as
 * to every other coordinate (as in the paper, which regularises all coordinates). With
 * l1 > 0 the bias is therefore 0 until |z[bias]| exceeds l1.
 *
 * Conventions:
 *   - Memory: tl_ftrl_new() and tl_ftrl_decode() return a model owned by the caller, freed
 *     with tl_ftrl_destroy() (NULL is accepted). Vectors x and w are caller-owned arrays of
 *     tl_ftrl_dim() doubles; x must be finite.
 *   - Errors: constructors return NULL for invalid parameters or malformed input; nothing
 *     else can fail (allocation failure aborts, lib/util.h).
 *   - Threading: a model has no internal locking. Concurrent readers (predict, weights,
 *     encode, version) are safe; learn needs exclusive access.
 *   - Determinism: the same parameters and the same sequence of learn calls give bit-identical
 *     state and predictions, and so does a model decoded from tl_ftrl_encode().
 */
#ifndef TL_FTRL_H
#define TL_FTRL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define TL_FTRL_MAX_DIM (1 << 22)
/* Up to this d the encoding is dense (format 1); above it, hashed feature spaces where few
 * coordinates are ever used, only the coordinates that learned (format 2). */
#define TL_FTRL_DENSE_DIM 256

typedef struct tl_ftrl tl_ftrl;

/* A model with z = n = 0 (so w = 0, every prediction 0.5). Requires 1 <= d <= 2^22,
 * alpha > 0, beta >= 0, l1 >= 0, l2 >= 0, all finite; NULL otherwise. The paper's
 * defaults are in the range alpha 0.01-0.1, beta 1. */
tl_ftrl *tl_ftrl_new(int d, double alpha, double beta, double l1, double l2);
void tl_ftrl_destroy(tl_ftrl *m);

int tl_ftrl_dim(const tl_ftrl *m);

/* The parameters the model was created with (any pointer may be NULL). */
void tl_ftrl_params(const tl_ftrl *m, double *alpha, double *beta, double *l1, double *l2);

/* Writes the current weights (d doubles) into w, e.g. to score a batch of vectors with one
 * cblas_dgemv. Exactly 0 for every coordinate with |z| <= l1. */
void tl_ftrl_weights(const tl_ftrl *m, double *w);

/* sigmoid(w . x), evaluated without overflow for any finite w . x (it may round to exactly
 * 0 or 1 when |w . x| > ~37; clip before taking logarithms). */
double tl_ftrl_predict(const tl_ftrl *m, const double *x);

/* 1 / (1 + e^-t), without overflow for any t. */
static inline double tl_sigmoid(double t)
{
    if (t >= 0) return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* One step of Algorithm 1 on the example (x, y), y in {0, 1} (any non-zero y counts as 1),
 * with importance weight `weight` >= 0 scaling the gradient: g = weight * (p - y) * x, where
 * p is the prediction made BEFORE the update; returns that p (progressive validation:
 * score it, then it has been learned). Coordinates with x[i] == 0 are left unchanged.
 * A weight of 0 (or a negative or non-finite weight) changes nothing, not even the
 * version: the call is then a plain prediction. */
double tl_ftrl_learn(tl_ftrl *m, const double *x, int y, double weight);

/* The same on a sparse vector: nnz pairs (idx[k], x[k]) with distinct indices in [0, d);
 * every other coordinate is 0 and left untouched. Costs O(nnz), whatever d is. The model
 * is p = sigmoid(offset + w . x): offset is a known part of the logit that is not learned
 * (0 for the plain model). */
double tl_ftrl_learn_sparse(tl_ftrl *m, const int32_t *idx, const double *x, int nnz, double offset,
                            int y, double weight);

/* w . x of a sparse vector (indices as above), and one weight. */
double tl_ftrl_dot_sparse(const tl_ftrl *m, const int32_t *idx, const double *x, int nnz);
double tl_ftrl_weight(const tl_ftrl *m, int i);

/* The averaged weights: w_i averaged over the model's versions so far, version t weighing
 * about t^eta (the "polynomial-decay" average of Shamir and Zhang, ICML 2013): eta 0 is the
 * plain mean of every version; eta 1 (a new model's) puts three quarters of the weight on
 * the last half of the updates; a larger eta forgets faster. An online learner's last
 * iterate wanders around the optimum with its step size; the average does not, and the
 * first, immature iterates fade as the version grows. The model learns and predicts with
 * w; the journey model credits with the average (model.c). 0 before any update. */
double tl_ftrl_avg_weight(const tl_ftrl *m, int i);
double tl_ftrl_dot_sparse_avg(const tl_ftrl *m, const int32_t *idx, const double *x, int nnz);
/* Sets eta, 0..TL_FTRL_MAX_ETA (-1 outside); from the next update on, the average goes on
 * with that weighting. Not encoded: a decoded model has eta 1 until this is called. */
#define TL_FTRL_MAX_ETA 16
int tl_ftrl_set_average(tl_ftrl *m, int eta);

/* The number of updates so far (learn calls with weight > 0). */
uint64_t tl_ftrl_version(const tl_ftrl *m);

/* Appends the model to out: a self-describing little-endian record of d, the parameters,
 * the version, z, n and the averaged weights (avg[i], as of version at[i]; the weights are
 * derived, not stored). Layout:
 *   "TLFT" | u32 format | u32 d | f64 alpha, beta, l1, l2 | u64 version | then
 *   format 3 (d <= TL_FTRL_DENSE_DIM): f64 z[d] | f64 n[d] | f64 avg[d] | u64 at[d]
 *   format 4 (larger d): u32 k | k x (u32 i | f64 z[i] | f64 n[i] | f64 avg[i] | u64 at[i]),
 *   i increasing, for the coordinates with n[i] > 0 (every other one has z = n = avg = 0)
 * Formats 1 and 2, the same without avg and at, are still read (each average then starts
 * at the weight it averages).
 */
void tl_ftrl_encode(const tl_ftrl *m, tl_buf *out);

/* A model from an encoded record, or NULL when buf is not exactly one valid record (wrong
 * magic or format, bad d or parameters, truncated or trailing bytes, non-finite z, n or
 * avg, negative n, at after the version). Every read is bounds-checked. */
tl_ftrl *tl_ftrl_decode(const void *buf, size_t len);

/* ---- sharing: one model learned by several processes ------------------------------
 *
 * Each process learns its own examples and sends what they added to (z, n) -- a delta --
 * to the others, which add it to theirs: z and n are sums over the examples, so every
 * process ends with the sums over all of them (up to the order of the additions, and to
 * each example's step having been taken with the weights of the process that learned it,
 * as in asynchronous parameter-server FTRL). The averages go on as if the delta's updates
 * had all happened at the moment it is added.
 *
 * tl_ftrl_delta_track starts gathering (costs 21 bytes per coordinate); from then on every
 * learn adds its steps to the delta. tl_ftrl_delta_take appends a delta of at most
 * max_rows coordinates to out and forgets them: 1, or 0 (nothing appended) when nothing is
 * pending (tl_ftrl_delta_pending); a delta larger than that goes in several parts, the
 * updates counted in the first. Layout:
 *   "TLFD" | u32 format 1 | u32 d | u64 updates | u32 k | k x (u32 i | f64 dz | f64 dn)
 * tl_ftrl_delta_put_empty appends a delta of no update and no row (a record that must
 * carry one when nothing is pending).
 * tl_ftrl_delta_clear forgets what was gathered (it is then never sent).
 * tl_ftrl_delta_apply adds a delta to m and moves its version on by the delta's updates:
 * their number, or -1, with m unchanged, when buf is not one valid delta of m's dimension
 * (wrong magic, format or d, truncated or trailing bytes, an index out of range, a
 * non-finite or negative step, a sum that would overflow). */
void tl_ftrl_delta_track(tl_ftrl *m);
int tl_ftrl_delta_pending(const tl_ftrl *m);
int tl_ftrl_delta_take(tl_ftrl *m, tl_buf *out, size_t max_rows);
void tl_ftrl_delta_put_empty(const tl_ftrl *m, tl_buf *out);
void tl_ftrl_delta_clear(tl_ftrl *m);
int64_t tl_ftrl_delta_apply(tl_ftrl *m, const void *buf, size_t len);
/* The length of the delta at the start of buf, as its header says (what follows it may be
 * something else), or 0 when buf does not start with a whole delta's header and rows. */
size_t tl_ftrl_delta_len(const void *buf, size_t len);

/* ---- undo: taking back what was learned since a mark ---------------------------------
 *
 * tl_ftrl_undo_mark starts (or restarts) a journal: from then on, the first change to a
 * coordinate (a learn step, a delta applied) saves its state as the mark left it (z, n,
 * the average; a byte per coordinate of the dimension once, and 56 per coordinate
 * changed). tl_ftrl_undo puts every changed coordinate and the version back as they were
 * at the mark, bit for bit, and ends the journal; it returns the number of coordinates put
 * back (0 without a journal). tl_ftrl_undo_off ends the journal. None of them touches the
 * delta being gathered for sharing. */
void tl_ftrl_undo_mark(tl_ftrl *m);
size_t tl_ftrl_undo(tl_ftrl *m);
void tl_ftrl_undo_off(tl_ftrl *m);

#endif
