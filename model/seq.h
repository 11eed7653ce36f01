/*
 * seq.h -- a small sequence model of a journey: learned embeddings of each touchpoint and
 * one causal attention step over the touchpoints before it, read out as the log-odds of a
 * purchase at a moment (the same examples as the conversion model: docs/attribution.md).
 *
 * A touchpoint i of a journey at decision time t is the sum of four learned rows,
 *     x_i = E_type[type] + E_chan[h(channel)] + E_cat[h(category)] + E_age[bucket(t - ts)],
 * (h: a hash into `buckets` rows; the age buckets are the conversion model's anchors). It
 * contributes its own part r_i = u . x_i, and it looks back at the touchpoints before it:
 *     att_i = sum_{j < i} e^{s_ij} v_j / (e^{sink} + sum_{j < i} e^{s_ij}),
 *     s_ij = (Wq x_i) . (Wk x_j) / sqrt(d),  v_j = g . x_j,
 * where the sink is a learned score with value 0: a touchpoint that finds nothing before
 * it worth attending to adds about nothing. So a search after a display can add what a
 * search after an email does not, and the same two touchpoints the other way round add
 * something else: the order of a journey is visible, which a sum of per-touchpoint
 * contributions cannot see. The logit of a set S of the journey's touchpoints is
 *     b + offset + sum_{i in S} (r_i + att_i(S)),
 * att_i(S) counting only the j in S: what a Shapley value or a removal effect needs. With
 * cfg.residual, u and b stay 0 and the offset carries another model's logit (the
 * conversion model's, whose per-touchpoint contributions tl_seq_pass_add puts in r_i):
 * this model then learns only what attention adds to it.
 *
 * Learning: one step of AdaGrad per example on the log-loss (rows of the embedding tables
 * are updated only when used), with an L2 penalty. Cost: an example with n touchpoints
 * is O(n^2 d + n d^2) (the d x d projections are one OpenBLAS product each); a coalition's
 * logit after tl_seq_prepare is O(|S|^2), and growing a coalition by one touchpoint
 * (tl_seq_grow) O(n).
 */
#ifndef TL_SEQ_H
#define TL_SEQ_H

#include <stddef.h>
#include <stdint.h>

#define TL_SEQ_TYPES 8
#define TL_SEQ_AGES 8

typedef struct tl_seq_cfg {
    int dim;          /* d, the embedding size (4..64) */
    int buckets;      /* rows of the channel and category tables (a power of two) */
    double lr;        /* AdaGrad's step */
    double l2;        /* L2 penalty on every weight */
    uint64_t seed;    /* the initial weights' */
    int residual;     /* u and b stay 0: the model learns only what attention adds to a
                       * logit given as the offset (model.kind=seq's use) */
} tl_seq_cfg;

/* One touchpoint as the model sees it. */
typedef struct tl_seq_tp {
    int type;            /* 0 .. TL_SEQ_TYPES - 1 */
    uint64_t chan_key;   /* hashes of the channel and the category (0: none) */
    uint64_t cat_key;
    int64_t ts;
} tl_seq_tp;

typedef struct tl_seq tl_seq;

/* NULL with a message when cfg is out of range. */
tl_seq *tl_seq_new(const tl_seq_cfg *cfg, char *err, size_t errlen);
void tl_seq_free(tl_seq *m);
/* The number of weights. */
size_t tl_seq_size(const tl_seq *m);

/* A journey of n touchpoints (oldest first) at time at, made ready for the logits of its
 * subsets: every x_i, r_i, v_i and s_ij. n at most 64. */
typedef struct tl_seq_pass tl_seq_pass;
tl_seq_pass *tl_seq_prepare(const tl_seq *m, const tl_seq_tp *tps, int n, int64_t at);
void tl_seq_pass_free(tl_seq_pass *p);

/* Adds add[i] to touchpoint i's own term r_i: another model's additive contributions,
 * which every subset's logit then counts for its members. */
void tl_seq_pass_add(tl_seq_pass *p, const double *add);

/* The logit (without the offset) of the touchpoints in mask (bit i: touchpoint i). */
double tl_seq_logit(const tl_seq_pass *p, uint64_t mask);

/* v[mask] = sigmoid(offset + logit(mask)) for every mask of the n <= 20 touchpoints, in
 * O(2^n n): a set's logit is that of the set without its newest touchpoint h plus h's own
 * part and look back (h changes nothing before it). For exact Shapley values. */
void tl_seq_table(const tl_seq_pass *p, double offset, double *v);

/* A coalition grown one touchpoint at a time (a permutation's prefixes): tl_seq_grow_init
 * starts the empty one, tl_seq_grow adds touchpoint i and returns the new logit (without
 * the offset). Equal to tl_seq_logit of the same set, up to rounding. */
typedef struct tl_seq_grow_state tl_seq_grow_state;
tl_seq_grow_state *tl_seq_grow_init(const tl_seq_pass *p);
double tl_seq_grow(tl_seq_grow_state *g, int i);
void tl_seq_grow_free(tl_seq_grow_state *g);

/* The game a purchase's credits need, as a tl_game_fn (model/shapley.h): v(S) =
 * sigmoid(offset + logit(S)) over a prepared journey. A coalition that adds one
 * touchpoint to the one before it (a permutation's run, as tl_shapley_sampled passes
 * them) costs O(n); any other is built from the empty one, O(|S| n). */
typedef struct tl_seq_game {
    const tl_seq_pass *p;
    double offset;
    tl_seq_grow_state *g;
    uint64_t last;
} tl_seq_game;
void tl_seq_game_init(tl_seq_game *gm, const tl_seq_pass *p, double offset);
void tl_seq_game_fn(void *arg, const uint64_t *masks, int count, double *v);
void tl_seq_game_fini(tl_seq_game *gm);

/* One step on an example: the journey at `at`, the offset added to its logit, its label
 * (1: a purchase) and weight. Returns the prediction made before the step; *logit (when
 * not NULL) gets the model's own part of it, the logit without the offset. */
double tl_seq_learn(tl_seq *m, const tl_seq_tp *tps, int n, int64_t at, double offset, int label,
                    double weight, double *logit);

/* Examples learned so far. */
uint64_t tl_seq_version(const tl_seq *m);

/* The model's state (sizes, examples learned, weights and AdaGrad's sums) appended to
 * out; tl_seq_decode reads it back with cfg's step, L2 and seed (its dim and buckets
 * must be the state's). NULL, with why, for bytes that are not such a state or a state
 * of other sizes. */
struct tl_buf;
void tl_seq_encode(const tl_seq *m, struct tl_buf *out);
tl_seq *tl_seq_decode(const void *data, size_t len, const tl_seq_cfg *cfg, char *why,
                      size_t whylen);

/* Sharing the model between instances: from tl_seq_delta_track on, the model keeps what
 * it sent (its weights as of the last take, plus what it applied since), and
 * tl_seq_delta_take appends to out a delta, "TLSD" format 1:
 *     u32 dim, u32 buckets, u64 examples learned since the last take, u32 k,
 *     the dense weights' changes (f64 each: Wq, Wk, u, g, b, sink),
 *     k rows: u32 row, then its d changes (f64 each),
 * with as many of the embedding rows learned since as fit in max_bytes (the rest stay for
 * the next take). tl_seq_delta_apply adds another instance's delta to the weights (AdaGrad's sums
 * stay each instance's own); tl_seq_delta_check says whether a delta would apply, without
 * changing anything (apply checks it too). tl_seq_delta_clear forgets what was learned
 * since the last take (it is not sent); tl_seq_delta_pending whether anything was learned
 * since the last take. Returns: take 1 when it wrote a delta (0 when not
 * tracking), check and apply 0, or -1 for bytes that are not a delta for this model. */
int tl_seq_delta_track(tl_seq *m);
int tl_seq_delta_pending(const tl_seq *m);
int tl_seq_delta_take(tl_seq *m, struct tl_buf *out, size_t max_bytes);
void tl_seq_delta_clear(tl_seq *m);
int tl_seq_delta_check(const tl_seq *m, const void *data, size_t len);
int tl_seq_delta_apply(tl_seq *m, const void *data, size_t len);

/* Undo, as the FTRL model's (ftrl.h): tl_seq_undo_mark starts (or restarts) a journal of
 * every weight changed from then on (its w, AdaGrad sum and last-sent value as they
 * were); tl_seq_undo puts them and the version back, bit for bit, and ends the journal (the
 * number of weights put back; 0 without a journal); tl_seq_undo_off ends the journal. */
void tl_seq_undo_mark(tl_seq *m);
size_t tl_seq_undo(tl_seq *m);
void tl_seq_undo_off(tl_seq *m);

/* The gradient of the logit of the whole journey with respect to every weight, in the
 * order of tl_seq_weights (for checking the learner against finite differences). */
void tl_seq_logit_grad(const tl_seq *m, const tl_seq_tp *tps, int n, int64_t at, double *grad);
/* The weights, in one array of tl_seq_size (read and write). */
double *tl_seq_weights(tl_seq *m);

#endif
