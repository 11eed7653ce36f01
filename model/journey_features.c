/*
 * journey_features.c -- pooling a set of touchpoints into the model's feature vector.
 *
 * Layout (TL_JF_DIM = 44):
 *   0        bias (1, also for the empty set: p(empty) is the model's baseline)
 *   1..6     log(1 + count) per event type
 *   7..12    max recency per event type (0 when the type is absent)
 *   13..16   log(1 + count) per dwell bucket: none, < 10 s, < 60 s, >= 60 s
 *   17..24   channel buckets (hashed): 1 when present
 *   25..40   category buckets (hashed): log(1 + count)
 *   41       max interest share of the touchpoints' categories
 *   42       mean interest share (over touchpoints that have one)
 *   43       log(1 + number of touchpoints)
 * Counts go through log(1 + c) and recency through max, so the value of a coalition is
 * not a sum of per-touchpoint parts: Shapley values then say more than a split of a
 * linear score would. Hashing keeps the dimension fixed whatever the number of
 * channels and categories; collisions only merge evidence.
 */
#include "journey_features.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

static int8_t bucket(const char *s, int n)
{
    if (!s) return -1;
    return (int8_t)(tl_hash64(s, strlen(s)) % (uint64_t)n);
}

void tl_jf_prepare(const tl_journey_tp *tps, int n, int64_t t_last, tl_jf_tp *out)
{
    for (int i = 0; i < n; i++) {
        const tl_journey_tp *t = &tps[i];
        out[i].recency = pow(2.0, -(double)(t_last - t->ts) / 86400000.0);
        out[i].share = t->share;
        out[i].type = t->type;
        out[i].dwell_bucket = t->dwell_ms < 0 ? 0 : t->dwell_ms < 10000 ? 1 : t->dwell_ms < 60000 ? 2 : 3;
        out[i].channel_bucket = bucket(t->channel, TL_JF_CHANNEL_BUCKETS);
        out[i].category_bucket = bucket(t->category_id, TL_JF_CATEGORY_BUCKETS);
    }
}

enum {
    F_BIAS = 0,
    F_TYPE = 1,
    F_RECENCY = F_TYPE + 6,
    F_DWELL = F_RECENCY + 6,
    F_CHANNEL = F_DWELL + 4,
    F_CATEGORY = F_CHANNEL + TL_JF_CHANNEL_BUCKETS,
    F_SHARE_MAX = F_CATEGORY + TL_JF_CATEGORY_BUCKETS,
    F_SHARE_MEAN,
    F_COUNT,
};
_Static_assert(F_COUNT + 1 == TL_JF_DIM, "feature layout");

void tl_jf_pool(const tl_jf_tp *tps, int n, const int *group_of, uint64_t mask, double *x)
{
    double type_n[6] = {0}, dwell_n[4] = {0}, cat_n[TL_JF_CATEGORY_BUCKETS] = {0};
    double share_sum = 0, share_max = 0;
    int share_n = 0, count = 0;
    memset(x, 0, TL_JF_DIM * sizeof(*x));
    x[F_BIAS] = 1;
    for (int i = 0; i < n; i++) {
        int g = group_of ? group_of[i] : i;
        if (g < 64 && !(mask >> g & 1)) continue;
        const tl_jf_tp *t = &tps[i];
        count++;
        type_n[t->type]++;
        if (t->recency > x[F_RECENCY + t->type]) x[F_RECENCY + t->type] = t->recency;
        dwell_n[t->dwell_bucket]++;
        if (t->channel_bucket >= 0) x[F_CHANNEL + t->channel_bucket] = 1;
        if (t->category_bucket >= 0) cat_n[t->category_bucket]++;
        if (t->share >= 0) {
            share_sum += t->share;
            share_n++;
            if (t->share > share_max) share_max = t->share;
        }
    }
    for (int k = 0; k < 6; k++) x[F_TYPE + k] = log1p(type_n[k]);
    for (int k = 0; k < 4; k++) x[F_DWELL + k] = log1p(dwell_n[k]);
    for (int k = 0; k < TL_JF_CATEGORY_BUCKETS; k++) x[F_CATEGORY + k] = log1p(cat_n[k]);
    x[F_SHARE_MAX] = share_max;
    x[F_SHARE_MEAN] = share_n ? share_sum / share_n : 0;
    x[F_COUNT] = log1p(count);
}

const char *tl_jf_name(int i)
{
    static const char *const names[TL_JF_DIM] = {
        "bias",
        "n_impression", "n_browse", "n_click", "n_favorite", "n_add_to_cart", "n_purchase",
        "rec_impression", "rec_browse", "rec_click", "rec_favorite", "rec_add_to_cart",
        "rec_purchase",
        "dwell_none", "dwell_lt10s", "dwell_lt60s", "dwell_ge60s",
        "channel_0", "channel_1", "channel_2", "channel_3", "channel_4", "channel_5",
        "channel_6", "channel_7",
        "category_0", "category_1", "category_2", "category_3", "category_4", "category_5",
        "category_6", "category_7", "category_8", "category_9", "category_10", "category_11",
        "category_12", "category_13", "category_14", "category_15",
        "share_max", "share_mean", "n_touchpoints",
    };
    return i >= 0 && i < TL_JF_DIM ? names[i] : "?";
}
