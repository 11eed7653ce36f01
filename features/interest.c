/*
 * interest.c -- decayed interest weights and their deltas (docs/interests.md).
 *
 * An entry stores (f, h) as of its time t; reading it at T multiplies both by
 * 2^(-(T-t)/H). An event at ts updates the entry as of as_of = max(ts, t): the stored
 * part decays forward to as_of, the new evidence (1 to f, heat to h) decays from ts to
 * as_of, and they add. That merge is commutative and associative, so out-of-order
 * events need no special path and the final state does not depend on arrival order.
 *
 * Every change of the weight w = alpha*f + beta*h splits into decay_part (what time
 * took away from the stored weight) and evidence_part (what this event added): the
 * delta's explanation says exactly that.
 *
 * Rank and dropping share one pass over the user's other entries of the same
 * dimension: each is read at as_of; those below epsilon are deleted, the others are
 * counted when strictly greater than the new weight. Deleting at an event (not at a
 * commit) keeps outputs independent of batch boundaries.
 */
#include "interest.h"
#include "lib/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tl_config_def tl_features_config[] = {
    {"features.half.life.ms", TL_CT_DOUBLE, "86400000", 1, 1e15,
     "Half-life H of interest weights: a weight halves every H ms without new events.",
     TL_CFG_FIELD(tl_features_cfg, half_life_ms)},
    {"features.alpha", TL_CT_DOUBLE, "0.5", 0, 1e9, "Weight of decayed frequency f in w.",
     TL_CFG_FIELD(tl_features_cfg, alpha)},
    {"features.beta", TL_CT_DOUBLE, "0.5", 0, 1e9, "Weight of decayed heat h in w.",
     TL_CFG_FIELD(tl_features_cfg, beta)},
    {"features.heat.impression", TL_CT_DOUBLE, "0.1", 0, 1e9, "Heat of an IMPRESSION.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_IMPRESSION])},
    {"features.heat.browse", TL_CT_DOUBLE, "1", 0, 1e9, "Heat of a BROWSE.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_BROWSE])},
    {"features.heat.click", TL_CT_DOUBLE, "2", 0, 1e9, "Heat of a CLICK.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_CLICK])},
    {"features.heat.favorite", TL_CT_DOUBLE, "3", 0, 1e9, "Heat of a FAVORITE.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_FAVORITE])},
    {"features.heat.add_to_cart", TL_CT_DOUBLE, "4", 0, 1e9, "Heat of an ADD_TO_CART.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_ADD_TO_CART])},
    {"features.heat.purchase", TL_CT_DOUBLE, "5", 0, 1e9, "Heat of a PURCHASE.",
     TL_CFG_FIELD(tl_features_cfg, heat[TL_PURCHASE])},
    {"features.dims", TL_CT_STRING, "category", TL_NORANGE,
     "Interest dimensions, comma-separated: category, item, channel.",
     TL_CFG_FIELD(tl_features_cfg, dims_list)},
    {"features.epsilon", TL_CT_DOUBLE, "1e-6", 0, 1e9, "Weights that decay below this are deleted.",
     TL_CFG_FIELD(tl_features_cfg, epsilon)},
    {"features.max.interests", TL_CT_INT, "1000", 1, 100000,
     "Interest entries kept per user, all dimensions together: a new one past this replaces "
     "the weakest (by its weight at the event's time). Bounds every stored user record "
     "(docs/operations.md).",
     TL_CFG_FIELD(tl_features_cfg, max_interests)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

int tl_features_cfg_load(tl_features_cfg *fc, const tl_config *c, char *err, size_t errlen)
{
    memset(fc, 0, sizeof(*fc));
    if (tl_config_fill(c, tl_features_config, fc, err, errlen) != 0) return -1;
    char *list = tl_xstrdup(fc->dims_list), *save = NULL;
    for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int d = tl_dim_parse(tok);
        if (d < 0) {
            snprintf(err, errlen, "features.dims: unknown dimension '%s' (category, item, channel)",
                     tok);
            free(list);
            return -1;
        }
        fc->dims[d] = 1;
    }
    free(list);
    fc->dims[TL_DIM_CATEGORY] = 1;   /* always on */
    return 0;
}

/* Appends s to the explanation being built at *p (bounded by end). */
static void put(char **p, char *end, const char *s)
{
    while (*s && *p < end) *(*p)++ = *s++;
}

static const char *explain(tl_arena *a, const tl_interest_delta *d, tl_event_type type,
                           int64_t ev_ts, int64_t stored_t, int is_new)
{
    char buf[512], num[32], dur[32];
    char *p = buf;
    char *end = buf + sizeof(buf) - 1;
    if (!is_new) {
        put(&p, end, "interest in ");
    } else {
        put(&p, end, "new interest in ");
    }
    put(&p, end, tl_dim_name(d->dim));
    put(&p, end, " ");
    put(&p, end, d->dim_id);
    if (is_new) {
        put(&p, end, ": ");
        tl_fmt_num(num, d->weight_after, 0);
        put(&p, end, num);
    } else {
        put(&p, end, d->weight_after >= d->weight_before ? " rose from " : " fell from ");
        tl_fmt_num(num, d->weight_before, 0);
        put(&p, end, num);
        put(&p, end, " to ");
        tl_fmt_num(num, d->weight_after, 0);
        put(&p, end, num);
        put(&p, end, ": ");
        tl_fmt_num(num, d->evidence_part, 1);
        put(&p, end, num);
    }
    put(&p, end, " from ");
    put(&p, end, tl_event_type_article(type));
    put(&p, end, " ");
    put(&p, end, tl_event_type_phrase(type));
    if (ev_ts < d->ts) {
        tl_fmt_duration(dur, sizeof(dur), d->ts - ev_ts);
        put(&p, end, " (a late event, ");
        put(&p, end, dur);
        put(&p, end, " before)");
    }
    if (!is_new) {
        put(&p, end, ", ");
        tl_fmt_num(num, d->decay_part, 1);
        put(&p, end, num);
        put(&p, end, " decay since ");
        if (d->ts == stored_t) {
            put(&p, end, "0 s");
        } else {
            tl_fmt_duration(dur, sizeof(dur), d->ts - stored_t);
            put(&p, end, dur);
        }
        put(&p, end, " ago");
    }
    return tl_arena_strndup(a, buf, (size_t)(p - buf));
}

static tl_rc apply_dim(const tl_features_cfg *fc, tl_user *u, const tl_event *ev, tl_dim dim,
                       const char *id, tl_arena *a, const tl_sink *out, tl_features_stats *st)
{
    const double H = fc->half_life_ms;
    const double heat = fc->heat[ev->type];
    tl_interest *e = tl_user_find_interest(u, dim, id);
    int is_new = e == NULL;
    if (is_new && fc->max_interests > 0 && u->n_ent >= fc->max_interests) {
        /* A bounded record: the weakest entry (read at this event's time) makes room. */
        int weakest = 0;
        double wmin = INFINITY;
        for (int i = 0; i < u->n_ent; i++) {
            const tl_interest *o = &u->ent[i];
            double w =
                (fc->alpha * o->f + fc->beta * o->h) * tl_decay((double)ev->ts - (double)o->t, H);
            if (w < wmin) {
                wmin = w;
                weakest = i;
            }
        }
        tl_user_remove_interest(u, weakest);
        st->evicted++;
    }
    if (is_new) {
        e = tl_user_add_interest(u, dim, id);
        e->t = ev->ts;
    }
    const int64_t stored_t = e->t;
    const int64_t as_of = ev->ts > stored_t ? ev->ts : stored_t;
    const double keep = tl_decay((double)as_of - (double)stored_t, H);
    const double fresh = tl_decay((double)as_of - (double)ev->ts, H);

    tl_interest_delta d = {
        .user_id = u->user_id,
        .dim = dim,
        .dim_id = e->id,
        .event_id = ev->event_id,
        .ts = as_of,
    };
    d.weight_before = fc->alpha * e->f + fc->beta * e->h;
    d.decay_part = d.weight_before * keep - d.weight_before;
    d.evidence_part = (fc->alpha * 1.0 + fc->beta * heat) * fresh;
    d.weight_after = d.weight_before + d.decay_part + d.evidence_part;
    e->f = e->f * keep + fresh;
    e->h = e->h * keep + heat * fresh;
    e->t = as_of;
    d.f = e->f;
    d.h = e->h;

    /* Rank among the user's other entries of this dimension; drop the faded ones. */
    int rank = 1;
    int self = (int)(e - u->ent);
    for (int i = 0; i < u->n_ent; i++) {
        if (i == self || u->ent[i].dim != dim) continue;
        const tl_interest *o = &u->ent[i];
        double w = (fc->alpha * o->f + fc->beta * o->h) * tl_decay((double)as_of - (double)o->t, H);
        if (w < fc->epsilon) {
            int last = u->n_ent - 1;
            tl_user_remove_interest(u, i);   /* moves the last entry into slot i */
            if (self == last) self = i;
            st->dropped++;
            i--;
            continue;
        }
        if (w > d.weight_after) rank++;
    }
    e = &u->ent[self];
    d.dim_id = e->id;   /* the string stays put even if the entry struct moved */
    d.rank = rank;
    d.explanation = explain(a, &d, ev->type, ev->ts, stored_t, is_new);
    st->deltas++;
    return out->emit_interest(out->ctx, &d);
}

tl_rc tl_features_apply(const tl_features_cfg *fc, tl_user *u, const tl_event *ev, tl_arena *a,
                        const tl_sink *out, tl_features_stats *st)
{
    const char *ids[TL_DIM_COUNT] = {ev->category_id, ev->item_id, ev->channel};
    for (int dim = 0; dim < TL_DIM_COUNT; dim++) {
        if (!fc->dims[dim] || !ids[dim] || !*ids[dim]) continue;
        tl_rc rc = apply_dim(fc, u, ev, (tl_dim)dim, ids[dim], a, out, st);
        if (rc != TL_OK) return rc;
    }
    return TL_OK;
}

float tl_features_share(const tl_features_cfg *fc, const tl_user *u, const char *category_id,
                        int64_t at)
{
    if (!category_id) return -1.0f;
    double total = 0, mine = 0;
    for (int i = 0; i < u->n_ent; i++) {
        const tl_interest *e = &u->ent[i];
        if (e->dim != TL_DIM_CATEGORY) continue;
        double w = (fc->alpha * e->f + fc->beta * e->h) *
            tl_decay((double)at - (double)e->t, fc->half_life_ms);
        total += w;
        if (!strcmp(e->id, category_id)) mine = w;
    }
    return total > 0 ? (float)(mine / total) : -1.0f;
}
