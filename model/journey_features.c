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
#include <stdlib.h>
#include <string.h>

static int8_t bucket(const char *s, int n)
{
    if (!s) return -1;
    return (int8_t)(tl_hash64(s, strlen(s)) % (uint64_t)n);
}

/* log(1 + k) for the counts a pool can have, filled by tl_jf_prepare (every pool
 * follows a prepare): coalition scoring pools thousands of sets per purchase. */
static double log1p_table[129];

static inline double log1p_count(double k)
{
    int i = (int)(k + 0.5);   /* counts are whole numbers, also after add and remove */
    return i >= 0 && i < 129 ? log1p_table[i] : log1p(k);
}

void tl_jf_prepare(const tl_journey_tp *tps, int n, int64_t t_last, tl_jf_tp *out)
{
    if (log1p_table[1] == 0)
        for (int i = 0; i < 129; i++) log1p_table[i] = log1p((double)i);
    for (int i = 0; i < n; i++) {
        const tl_journey_tp *t = &tps[i];
        out[i].recency = exp2(-(double)(t_last - t->ts) / 86400000.0);
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

void tl_jf_agg_add(tl_jf_agg *g, const tl_jf_tp *t)
{
    g->count++;
    g->type_n[t->type]++;
    if (t->recency > g->rec_max[t->type]) g->rec_max[t->type] = t->recency;
    g->dwell_n[t->dwell_bucket]++;
    if (t->channel_bucket >= 0) g->chan_n[t->channel_bucket]++;
    if (t->category_bucket >= 0) g->cat_n[t->category_bucket]++;
    if (t->share >= 0) {
        g->share_sum += t->share;
        g->share_n++;
        if (t->share > g->share_max) g->share_max = t->share;
    }
}

void tl_jf_agg_finish(const tl_jf_agg *g, double *x)
{
    x[F_BIAS] = 1;
    for (int k = 0; k < 6; k++) x[F_TYPE + k] = log1p_count(g->type_n[k]);
    for (int k = 0; k < 6; k++) x[F_RECENCY + k] = g->rec_max[k];
    for (int k = 0; k < 4; k++) x[F_DWELL + k] = log1p_count(g->dwell_n[k]);
    for (int k = 0; k < TL_JF_CHANNEL_BUCKETS; k++) x[F_CHANNEL + k] = g->chan_n[k] > 0.5;
    for (int k = 0; k < TL_JF_CATEGORY_BUCKETS; k++) x[F_CATEGORY + k] = log1p_count(g->cat_n[k]);
    x[F_SHARE_MAX] = g->share_max;
    x[F_SHARE_MEAN] = g->share_n > 0.5 ? g->share_sum / g->share_n : 0;
    x[F_COUNT] = log1p_count(g->count);
}

/* x[f] = v, and what that changes of w . x. */
static inline double set_feature(double *x, int f, double v, const double *w)
{
    double d = w[f] * (v - x[f]);
    x[f] = v;
    return d;
}

double tl_jf_agg_add_scored(tl_jf_agg *g, double *x, const tl_jf_tp *t, const double *w)
{
    tl_jf_agg_add(g, t);
    double dz = set_feature(x, F_TYPE + t->type, log1p_count(g->type_n[t->type]), w) +
                set_feature(x, F_RECENCY + t->type, g->rec_max[t->type], w) +
                set_feature(x, F_DWELL + t->dwell_bucket, log1p_count(g->dwell_n[t->dwell_bucket]), w) +
                set_feature(x, F_COUNT, log1p_count(g->count), w);
    if (t->channel_bucket >= 0) dz += set_feature(x, F_CHANNEL + t->channel_bucket, 1, w);
    if (t->category_bucket >= 0)
        dz += set_feature(x, F_CATEGORY + t->category_bucket,
                          log1p_count(g->cat_n[t->category_bucket]), w);
    if (t->share >= 0)
        dz += set_feature(x, F_SHARE_MAX, g->share_max, w) +
              set_feature(x, F_SHARE_MEAN, g->share_sum / g->share_n, w);
    return dz;
}

void tl_jf_agg_pool(const tl_jf_tp *tps, int n, const int *group_of, uint64_t mask, tl_jf_agg *g)
{
    memset(g, 0, sizeof(*g));
    for (int i = 0; i < n; i++) {
        int k = group_of ? group_of[i] : i;
        if (k < 64 && !(mask >> k & 1)) continue;
        tl_jf_agg_add(g, &tps[i]);
    }
}

void tl_jf_pool(const tl_jf_tp *tps, int n, const int *group_of, uint64_t mask, double *x)
{
    tl_jf_agg g;
    tl_jf_agg_pool(tps, n, group_of, mask, &g);
    tl_jf_agg_finish(&g, x);
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

/* The count fields of an aggregate, as (feature, count) slots: what a player adds. */
#define SLOTS (6 + 4 + TL_JF_CHANNEL_BUCKETS + TL_JF_CATEGORY_BUCKETS + 1)

static void slot_counts(const tl_jf_agg *g, double *c)
{
    int s = 0;
    for (int k = 0; k < 6; k++) c[s++] = g->type_n[k];
    for (int k = 0; k < 4; k++) c[s++] = g->dwell_n[k];
    for (int k = 0; k < TL_JF_CHANNEL_BUCKETS; k++) c[s++] = g->chan_n[k];
    for (int k = 0; k < TL_JF_CATEGORY_BUCKETS; k++) c[s++] = g->cat_n[k];
    c[s++] = g->count;
}

static int slot_feature(int s)
{
    if (s < 6) return F_TYPE + s;
    s -= 6;
    if (s < 4) return F_DWELL + s;
    s -= 4;
    if (s < TL_JF_CHANNEL_BUCKETS) return F_CHANNEL + s;
    s -= TL_JF_CHANNEL_BUCKETS;
    if (s < TL_JF_CATEGORY_BUCKETS) return F_CATEGORY + s;
    return F_COUNT;
}

static double slot_value(int f, double c)
{
    return f >= F_CHANNEL && f < F_CATEGORY ? (c > 0.5) : log1p_count(c);
}

void tl_jf_coalition_logits(const tl_jf_agg *players, int k, const double *w, double *out)
{
    /* Each player's non-zero count slots, so a step touches only what changes. */
    struct {
        int n;
        int slot[SLOTS];
        double c[SLOTS];
    } *sp = malloc((size_t)k * sizeof(*sp));
    for (int j = 0; j < k; j++) {
        double c[SLOTS];
        slot_counts(&players[j], c);
        sp[j].n = 0;
        for (int s = 0; s < SLOTS; s++)
            if (c[s] != 0) {
                sp[j].slot[sp[j].n] = s;
                sp[j].c[sp[j].n++] = c[s];
            }
    }
    /* The maxima (recency per type, share): each with the players that have a value for
     * it, largest first, so a coalition's maximum is its first member in that order; and
     * per player, which maxima it can move at all (a touchpoint has one type). */
    enum { NMAX = 7 };
    double mval[TL_JF_MAX_PLAYERS][NMAX];
    int ord[NMAX][TL_JF_MAX_PLAYERS], nord[NMAX] = {0};
    unsigned moves[TL_JF_MAX_PLAYERS] = {0};
    for (int j = 0; j < k; j++)
        for (int f = 0; f < NMAX; f++)
            mval[j][f] = f < 6 ? players[j].rec_max[f] : players[j].share_max;
    for (int f = 0; f < NMAX; f++)
        for (int j = 0; j < k; j++) {
            if (!(mval[j][f] > 0)) continue;
            moves[j] |= 1u << f;
            int t = nord[f]++;
            while (t > 0 && mval[ord[f][t - 1]][f] < mval[j][f]) {   /* insertion sort */
                ord[f][t] = ord[f][t - 1];
                t--;
            }
            ord[f][t] = j;
        }
    double c[SLOTS] = {0}, x[TL_JF_DIM] = {0};
    double share_sum = 0, share_n = 0;
    x[F_BIAS] = 1;
    double z = w[F_BIAS];
    out[0] = z;
    uint64_t prev = 0;
    for (uint64_t i = 1; i < ((uint64_t)1 << k); i++) {
        uint64_t g = i ^ (i >> 1);
        int b = __builtin_ctzll(g ^ prev);
        double sign = (g >> b & 1) ? 1.0 : -1.0;
        for (int t = 0; t < sp[b].n; t++) {
            int s = sp[b].slot[t], f = slot_feature(s);
            c[s] += sign * sp[b].c[t];
            z += set_feature(x, f, slot_value(f, c[s]), w);
        }
        share_sum += sign * players[b].share_sum;
        share_n += sign * players[b].share_n;
        /* Maxima cannot be undone: those the player moves are found again, as the
         * coalition's first member in their order (0 when none has a value). */
        double smax = x[F_SHARE_MAX];
        for (int f = 0; f < NMAX; f++) {
            if (!(moves[b] >> f & 1)) continue;
            double m = 0;
            for (int t = 0; t < nord[f]; t++)
                if (g >> ord[f][t] & 1) {
                    m = mval[ord[f][t]][f];
                    break;
                }
            if (f < 6) z += set_feature(x, F_RECENCY + f, m, w);
            else smax = m;
        }
        double smean = share_n > 0.5 ? share_sum / share_n : 0;
        z += w[F_SHARE_MAX] * (smax - x[F_SHARE_MAX]) + w[F_SHARE_MEAN] * (smean - x[F_SHARE_MEAN]);
        x[F_SHARE_MAX] = smax;
        x[F_SHARE_MEAN] = smean;
        out[g] = z;
        prev = g;
    }
    free(sp);
}
