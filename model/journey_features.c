/*
 * journey_features.c -- a journey moment as a sparse hashed vector (journey_features.h).
 *
 * Keys are hashed once per touchpoint (tl_jf_prepare); the anchors depend on the decision
 * time, so a touchpoint's coordinates are made at each use: two hashes of (key, anchor)
 * per key, no allocation. A key is the 64-bit hash of its kind, the event type and the
 * name; a coordinate mixes that with the anchor (splitmix64's finaliser) and reduces it
 * into [1, TL_JF_DIM).
 *
 * Rejected: count and maximum pooling (the previous layout): a coalition's value was not
 * a sum of its members' parts, and the journey's length itself became evidence (longer
 * journeys were the ones that expired unbought); per-channel dense slots (a fixed
 * channel count, and collisions between channels hashed into 8 of them).
 */
#include "journey_features.h"
#include "lib/util.h"

#include <math.h>
#include <string.h>

#define H 3600000LL
const int64_t tl_jf_anchor_ms[TL_JF_ANCHORS] = {0,      3 * H,  12 * H,  24 * H,
                                                48 * H, 96 * H, 192 * H, 384 * H};

uint64_t tl_jf_key(char kind, int type, const char *name)
{
    char buf[512];
    size_t n = 0;
    buf[n++] = kind;
    buf[n++] = (char)('0' + type);
    if (name) {
        size_t l = strlen(name);
        if (l > sizeof(buf) - n) {   /* a name too long for buf: its own hash stands in */
            uint64_t hn = tl_hash64(name, l);
            memcpy(buf + n, &hn, 8);
            n += 8;
        } else {
            memcpy(buf + n, name, l);
            n += l;
        }
    }
    return tl_hash64(buf, n);
}

static inline uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int32_t tl_jf_index(uint64_t key, int anchor)
{
    return 1 +
        (int32_t)(mix(key + 0x9E3779B97F4A7C15ull * (uint64_t)(anchor + 1)) %
                  (uint64_t)(TL_JF_DIM - 1));
}

int tl_jf_hat(int64_t age, int *anchor, double *weight)
{
    if (age <= 0) {
        anchor[0] = 0;
        weight[0] = 1;
        return 1;
    }
    for (int k = 0; k + 1 < TL_JF_ANCHORS; k++) {
        if (age >= tl_jf_anchor_ms[k + 1]) continue;
        double f = (double)(age - tl_jf_anchor_ms[k]) /
            (double)(tl_jf_anchor_ms[k + 1] - tl_jf_anchor_ms[k]);
        anchor[0] = k;
        weight[0] = 1 - f;
        anchor[1] = k + 1;
        weight[1] = f;
        return f > 0 ? 2 : 1;
    }
    anchor[0] = TL_JF_ANCHORS - 1;
    weight[0] = 1;
    return 1;
}

void tl_jf_prepare(const tl_journey_tp *tps, int n, tl_jf_tp *out)
{
    for (int i = 0; i < n; i++) {
        const tl_journey_tp *t = &tps[i];
        tl_jf_tp *o = &out[i];
        o->ts = t->ts;
        o->n = 0;
        /* the string keys, hashed once per journey entry: its cache is written here, the
         * only field of an entry the model writes (its strings and type never change) */
        uint64_t *cache = ((tl_journey_tp *)t)->key_cache;
        if (!cache[0]) cache[0] = tl_jf_key('c', t->type, t->channel);
        o->key[o->n] = cache[0];
        o->val[o->n++] = 1;
        if (t->category_id) {
            if (!cache[1]) cache[1] = tl_jf_key('g', 0, t->category_id);
            o->key[o->n] = cache[1];
            o->val[o->n++] = 1;
        }
        if (t->dwell_ms >= 0) {
            const char *b = t->dwell_ms < 10000 ? "1" : t->dwell_ms < 60000 ? "2" : "3";
            o->key[o->n] = tl_jf_key('d', t->type, b);
            o->val[o->n++] = 1;
        }
        if (t->share >= 0) {
            o->key[o->n] = tl_jf_key('s', t->type, NULL);
            o->val[o->n++] = t->share;
        }
    }
}

int tl_jf_features(const tl_jf_tp *t, int64_t at, int32_t *idx, double *x)
{
    int anchor[2];
    double wt[2];
    int h = tl_jf_hat(at - t->ts, anchor, wt), k = 0;
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < h; j++) {
            idx[k] = tl_jf_index(t->key[i], anchor[j]);
            x[k++] = t->val[i] * wt[j];
        }
    return k;
}

int tl_jf_anchor_features(const tl_jf_tp *t, int anchor, int32_t *idx, double *x)
{
    for (int i = 0; i < t->n; i++) {
        idx[i] = tl_jf_index(t->key[i], anchor);
        x[i] = t->val[i];
    }
    return t->n;
}

int32_t tl_jf_intent_index(void)
{
    static int32_t i; /* made once (a race writes the same value) */
    if (!__atomic_load_n(&i, __ATOMIC_ACQUIRE))
        __atomic_store_n(&i, tl_jf_index(tl_jf_key('u', 0, "intent"), 0), __ATOMIC_RELEASE);
    return __atomic_load_n(&i, __ATOMIC_RELAXED);
}

int tl_jf_user(uint32_t purchases, int64_t first_ts, int64_t last_purchase, double expected,
               int64_t at, int32_t *idx, double *x)
{
    /* the three keys, hashed once (a race writes the same value) */
    static uint64_t keys[3];
    if (!__atomic_load_n(&keys[2], __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&keys[0], tl_jf_key('u', 0, "purchases"), __ATOMIC_RELAXED);
        __atomic_store_n(&keys[1], tl_jf_key('u', 0, "since_purchase"), __ATOMIC_RELAXED);
        __atomic_store_n(&keys[2], tl_jf_key('u', 0, "since_first"), __ATOMIC_RELEASE);
    }
    int k = 0;
    double intent = log((TL_JF_INTENT_PRIOR + (double)purchases) / (TL_JF_INTENT_PRIOR + expected));
    if (intent != 0) {
        idx[k] = tl_jf_intent_index();
        x[k++] = intent;
    }
    if (purchases) {
        idx[k] = tl_jf_index(__atomic_load_n(&keys[0], __ATOMIC_RELAXED), 0);
        x[k++] = log1p((double)purchases);
    }
    int64_t since = last_purchase != INT64_MIN ? last_purchase : first_ts;
    if (since == INT64_MIN) return k;
    uint64_t key = __atomic_load_n(&keys[last_purchase != INT64_MIN ? 1 : 2], __ATOMIC_RELAXED);
    int anchor[2];
    double wt[2];
    int h = tl_jf_hat(at - since, anchor, wt);
    for (int j = 0; j < h; j++) {
        idx[k] = tl_jf_index(key, anchor[j]);
        x[k++] = wt[j];
    }
    return k;
}
