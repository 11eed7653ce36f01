/*
 * interest.h -- the features stage: time-decayed interest weights per user and
 * dimension, and one interest_delta per event and dimension (docs/interests.md).
 */
#ifndef TL_INTEREST_H
#define TL_INTEREST_H

#include <math.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "engine/sink.h"
#include "engine/state.h"

typedef struct tl_features_cfg {
    double half_life_ms;
    double alpha, beta;
    double heat[TL_EVENT_TYPE_COUNT];
    double epsilon;
    int max_interests;                   /* entries per user (all dimensions) */
    unsigned char dims[TL_DIM_COUNT];    /* 1 = enabled */
    const char *dims_list;               /* features.dims, as set */
} tl_features_cfg;

/* The features' configuration keys (features.*), filled into tl_features_cfg. */
extern const tl_config_def tl_features_config[];

int tl_features_cfg_load(tl_features_cfg *fc, const tl_config *c, char *err, size_t errlen);

/* 2^(-dt/H): the factor that takes a value dt ms forward in time. Callers pass dt as the
 * difference of two times made doubles ((double)a - (double)b), which a stored record's
 * times cannot overflow, and which is exact for times within 2^53 ms. */
static inline double tl_decay(double dt_ms, double half_life_ms)
{
    return exp2(-dt_ms / half_life_ms);
}

/* The share of category_id in u's category interest weights, all read at time at:
 * w(category_id) / sum of w(c). -1 when unknown (no category, or no weight at all). */
float tl_features_share(const tl_features_cfg *fc, const tl_user *u, const char *category_id,
                        int64_t at);

typedef struct tl_features_stats {
    uint64_t deltas, dropped;
    uint64_t evicted;   /* the weakest entry, to make room under max_interests */
} tl_features_stats;

/* Applies ev to u's interest entries and emits one delta per enabled dimension the
 * event has a value for. Strings of the emitted deltas live in a. */
tl_rc tl_features_apply(const tl_features_cfg *fc, tl_user *u, const tl_event *ev, tl_arena *a,
                        const tl_sink *out, tl_features_stats *st);

#endif
