/*
 * journey_features.h -- what the conversion model sees of a moment in a user's journey
 * (docs/attribution.md, "The conversion model"): a sparse vector over a hashed feature
 * space, the sum of one small vector per touchpoint plus a bias.
 *
 * A touchpoint's vector at decision time t (t >= the touchpoint's time) is its keys, each
 * spread over the two age anchors around its age a = t - ts (linear interpolation between
 * them: a hat basis, so the model learns a piecewise-linear curve of how a touchpoint's
 * effect fades with time). Its keys:
 *   - its type and channel together ("an impression on search"; the type alone when it
 *     has no channel). A key for the type alone beside it was measured worse on the
 *     ground truth (docs/benchmarks.md): the shared part shrank the channels' differences;
 *   - its category, when it has one;
 *   - its type and dwell bucket (< 10 s, < 60 s, >= 60 s), when it has a dwell time;
 *   - its type, with the category's share of the user's interest as the value, when the
 *     share is known.
 * Each (key, anchor) is hashed to one of TL_JF_DIM coordinates (coordinate 0 is the bias);
 * with 2^18 of them, a few thousand keys collide with probability well under 1%.
 *
 * Additivity is the point: the logit of any subset S of a purchase's touchpoints is
 * bias + sum over j in S of phi_j, where phi_j is touchpoint j's own contribution, so
 * every coalition a Shapley value needs is a sum of numbers known up front. Nothing comes
 * from the purchase itself (its item, its category) or from the label.
 */
#ifndef TL_JOURNEY_FEATURES_H
#define TL_JOURNEY_FEATURES_H

#include <stdint.h>

#include "engine/state.h"

#define TL_JF_BITS 18
#define TL_JF_DIM (1 << TL_JF_BITS)
#define TL_JF_BIAS 0
#define TL_JF_ANCHORS 8
#define TL_JF_KEYS 4                             /* keys per touchpoint, at most */
#define TL_JF_TP_NNZ (2 * TL_JF_KEYS)            /* coordinates per touchpoint, at most */

/* The anchors' ages in ms: 0, 3 h, 12 h, 1 d, 2 d, 4 d, 8 d, 16 d. Past the last, its
 * weight alone. */
extern const int64_t tl_jf_anchor_ms[TL_JF_ANCHORS];

/* One touchpoint, reduced to its hashed keys and their values. */
typedef struct tl_jf_tp {
    int64_t ts;
    uint64_t key[TL_JF_KEYS];
    double val[TL_JF_KEYS];
    int n;
} tl_jf_tp;

void tl_jf_prepare(const tl_journey_tp *tps, int n, tl_jf_tp *out);

/* The (at most two) anchors of an age and their weights, which sum to 1. Returns how
 * many (1 at the anchors themselves and past the last one). */
int tl_jf_hat(int64_t age_ms, int *anchor, double *weight);

/* The coordinate of key k at anchor a, in [1, TL_JF_DIM). */
int32_t tl_jf_index(uint64_t key, int anchor);
/* The key tl_jf_prepare hashes for a kind ('c': type and channel, name the channel or
 * NULL; 'g': the category, type ignored; 'd': type and dwell bucket "1".."3"; 's': the
 * type's interest share, name NULL), e.g. to read a channel's weights back. */
uint64_t tl_jf_key(char kind, int type, const char *name);

/* The user's own history at time at, the same for every subset of a journey (part of the
 * baseline): log(1 + purchases before at), and the time since the user's last purchase
 * (or, before the first, since its first event) over the age anchors. An intent proxy (a
 * user who buys often is likely to buy again, whatever it is shown), and what makes the
 * touchpoints comparable: a purchase closes the journey, so a user who buys often has
 * shorter journeys; given the time since the last purchase, a journey's contents no
 * longer say how often its user buys. Appends up to 3 pairs; INT64_MIN: unknown.
 *
 * And the user's intent estimate, log((TL_JF_INTENT_PRIOR + purchases) /
 * (TL_JF_INTENT_PRIOR + expected)), where expected is the sum, over every moment of the
 * user the model has learned from (its purchases and control moments), of the model's
 * probability of a purchase there without this term: the purchases an average user would
 * have made in its place, with its journeys. It is the log of the posterior mean of the
 * user's own rate multiplier under a gamma prior of mean 1 and shape TL_JF_INTENT_PRIOR
 * (the gamma-Poisson model of a frailty): a user who bought more than its exposures
 * explain is likely to buy again whatever it is shown, and one that went long without
 * buying despite them is not. Its pair, when the estimate is not 0, comes first. */
#define TL_JF_INTENT_PRIOR 1.0
#define TL_JF_USER_NNZ 4
int tl_jf_user(uint32_t purchases, int64_t first_ts, int64_t last_purchase, double expected,
               int64_t at, int32_t *idx, double *x);
/* The coordinate of the intent estimate. */
int32_t tl_jf_intent_index(void);

/* Touchpoint t's coordinates at decision time at: appends up to TL_JF_TP_NNZ pairs to
 * (idx, x) and returns how many (indices may repeat across keys). */
int tl_jf_features(const tl_jf_tp *t, int64_t at, int32_t *idx, double *x);

/* Its coordinates at an age of exactly anchor's (TL_JF_KEYS pairs at most): its
 * contribution at any age is the hat-weighted sum of those at the two anchors around it
 * (tl_jf_hat). */
int tl_jf_anchor_features(const tl_jf_tp *t, int anchor, int32_t *idx, double *x);

#endif
