/*
 * journey_features.h -- what the conversion model sees of a journey: a dense vector
 * pooled over a set of touchpoints (docs/attribution.md, "The conversion model").
 *
 * Every feature is known at the journey's last touchpoint: the touchpoints' own types,
 * times relative to that last touchpoint, dwell, channel, category and the category's
 * share of the user's interest when the touchpoint happened. Nothing comes from the
 * purchase, its item, its time or the label.
 */
#ifndef TL_JOURNEY_FEATURES_H
#define TL_JOURNEY_FEATURES_H

#include <stdint.h>

#include "core/state.h"

#define TL_JF_CHANNEL_BUCKETS 8
#define TL_JF_CATEGORY_BUCKETS 16
#define TL_JF_DIM (1 + 6 + 6 + 4 + TL_JF_CHANNEL_BUCKETS + TL_JF_CATEGORY_BUCKETS + 3)

/* One touchpoint, reduced to what the features need. */
typedef struct tl_jf_tp {
    double recency;        /* 2^(-(t_last - ts) / 1 day) */
    float share;           /* -1: unknown */
    uint8_t type, dwell_bucket;
    int8_t channel_bucket, category_bucket;   /* -1: none */
} tl_jf_tp;

/* Reduces n touchpoints; t_last is the time of the last of them. */
void tl_jf_prepare(const tl_journey_tp *tps, int n, int64_t t_last, tl_jf_tp *out);

/* Pools the touchpoints i with bit group_of[i] set in mask (group_of NULL: bit i; mask
 * ~0: all) into x[TL_JF_DIM]. The empty set gives the bias alone. */
void tl_jf_pool(const tl_jf_tp *tps, int n, const int *group_of, uint64_t mask, double *x);

/* A partial pool: what tl_jf_pool accumulates before the final transform; it grows one
 * touchpoint at a time (tl_jf_agg_add, tl_jf_agg_add_scored), and players' pools are
 * combined inside tl_jf_coalition_logits. */
typedef struct tl_jf_agg {
    double type_n[6], rec_max[6], dwell_n[4], chan_n[TL_JF_CHANNEL_BUCKETS];
    double cat_n[TL_JF_CATEGORY_BUCKETS];
    double share_sum, share_n, share_max, count;
} tl_jf_agg;

/* g = the partial pool of the touchpoints tl_jf_pool would take for (group_of, mask). */
void tl_jf_agg_pool(const tl_jf_tp *tps, int n, const int *group_of, uint64_t mask, tl_jf_agg *g);
void tl_jf_agg_add(tl_jf_agg *g, const tl_jf_tp *t);
void tl_jf_agg_finish(const tl_jf_agg *g, double *x);
/* Adds t to g, whose finished vector is x (tl_jf_agg_finish), and updates x to match:
 * only the few features t touches change. Returns the change of w . x. */
double tl_jf_agg_add_scored(tl_jf_agg *g, double *x, const tl_jf_tp *t, const double *w);

#define TL_JF_MAX_PLAYERS 20
/* w . x(S) for all 2^k coalitions S of k <= TL_JF_MAX_PLAYERS players, into out[mask]:
 * coalitions in Gray-code order, each step changing only the features the toggled player
 * touches (its counts, and the maxima it has a value for). */
void tl_jf_coalition_logits(const tl_jf_agg *players, int k, const double *w, double *out);

/* Feature names, for exported examples. */
const char *tl_jf_name(int i);

#endif
