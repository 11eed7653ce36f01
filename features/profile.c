/*
 * profile.c -- a user's state as JSON (profile.h, docs/interests.md "Profile").
 *
 * The record is decoded into a private tl_user, so rendering needs nothing of the store
 * and can run on any thread. An interest entry (f, h, t) read at as_of is
 * (f, h) * 2^(-(as_of - t)/H), the factor the interest deltas use (tl_decay): read at
 * the entry's own time t the factor is exactly 1, so f and h are the last delta's, and
 * w = alpha*f + beta*h its weight_after up to rounding.
 */
#include "profile.h"
#include "lib/json.h"
#include "engine/state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ranked {
    const tl_interest *e;
    double f, h, w;
} ranked;

/* w descending (NaN last), then dimension, then id: a total order, so the output does
 * not depend on the order of entries in the record. */
static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    int an = isnan(a->w), bn = isnan(b->w);
    if (an != bn) return an - bn;
    if (!an && a->w != b->w) return a->w > b->w ? -1 : 1;
    if (a->e->dim != b->e->dim) return a->e->dim < b->e->dim ? -1 : 1;
    uint32_t n = a->e->id_len < b->e->id_len ? a->e->id_len : b->e->id_len;
    int c = memcmp(a->e->id, b->e->id, n);
    if (c) return c;
    return (a->e->id_len > b->e->id_len) - (a->e->id_len < b->e->id_len);
}

/* a - b, saturated to +-INT64_MAX (records may hold any time). */
static int64_t span(int64_t a, int64_t b)
{
    int64_t d;
    if (__builtin_sub_overflow(a, b, &d) || d == INT64_MIN) return a > b ? INT64_MAX : -INT64_MAX;
    return d;
}

/* Within +-2^53 ms (285,000 years): tl_fmt_duration rounds by adding half a unit, which
 * must not overflow. */
static int64_t clamp_ms(int64_t v)
{
    const int64_t m = INT64_C(1) << 53;
    return v < -m ? -m : v > m ? m : v;
}

static const char *tp_value(const tl_journey_tp *tp, tl_dim dim)
{
    return dim == TL_DIM_CATEGORY ? tp->category_id
        : dim == TL_DIM_ITEM      ? tp->item_id
                                  : tp->channel;
}

/* The type of the event that last updated e, when the record still shows it: an open
 * journey touchpoint or a last attribution's purchase with e's value at e's time. -1
 * when unknown (e.g. touchpoints already credited). */
static int last_event_type(const tl_user *u, const tl_interest *e)
{
    for (int i = u->n_tp - 1; i >= 0; i--) {
        const tl_journey_tp *tp = &u->tp[i];
        const char *v = tp_value(tp, (tl_dim)e->dim);
        if (tp->ts == e->t && v && strcmp(v, e->id) == 0) return tp->type;
    }
    for (int i = 0; i < u->n_attr; i++) {
        const tl_last_attr *a = &u->attr[i];
        const char *v = e->dim == TL_DIM_CATEGORY ? a->category_id
            : e->dim == TL_DIM_ITEM               ? a->item_id
                                                  : NULL;
        if (a->ts == e->t && v && strcmp(v, e->id) == 0) return TL_PURCHASE;
    }
    return -1;
}

static void put_num(tl_buf *b, double x)
{
    char num[32];
    tl_buf_append(b, num, (size_t)tl_fmt_num(num, x, 0));
}

/* "category c473: weight 1.4 from 3.1 decayed events (last a purchase 2 h before) and
 * engagement heat 0.8", in the interest deltas' style: numbers rounded for reading. */
static void explain(tl_buf *b, const tl_user *u, const ranked *r, int64_t as_of)
{
    const tl_interest *e = r->e;
    tl_buf_clear(b);
    tl_buf_puts(b, tl_dim_name((tl_dim)e->dim));
    tl_buf_putc(b, ' ');
    tl_buf_append(b, e->id, e->id_len);
    tl_buf_puts(b, ": weight ");
    put_num(b, r->w);
    tl_buf_puts(b, " from ");
    put_num(b, r->f);
    tl_buf_puts(b, " decayed events (last ");
    int type = last_event_type(u, e);
    if (type >= 0) {
        tl_buf_puts(b, tl_event_type_article((tl_event_type)type));
        tl_buf_puts(b, " ");
        tl_buf_puts(b, tl_event_type_phrase((tl_event_type)type));
    } else {
        tl_buf_puts(b, "event");
    }
    char dur[32] = "0 s";
    int64_t ago = span(as_of, e->t);
    if (ago) tl_fmt_duration(dur, sizeof(dur), clamp_ms(ago));
    tl_buf_putc(b, ' ');
    tl_buf_puts(b, dur);
    tl_buf_puts(b, ago >= 0 ? " before" : " later");
    tl_buf_puts(b, ") and engagement heat ");
    put_num(b, r->h);
}

static void put_interests(tl_buf *out, const tl_features_cfg *fc, const tl_user *u, int64_t as_of,
                          int top_n)
{
    tl_buf_puts(out, ",\"interests\":[");
    if (u->n_ent == 0) {
        tl_buf_putc(out, ']');
        return;
    }
    ranked *r = tl_xmalloc((size_t)u->n_ent * sizeof(*r));
    int live = 0;
    for (int i = 0; i < u->n_ent; i++) {
        const tl_interest *e = &u->ent[i];
        double k = tl_decay((double)span(as_of, e->t), fc->half_life_ms);
        ranked x = {.e = e, .f = e->f * k, .h = e->h * k};
        x.w = fc->alpha * x.f + fc->beta * x.h;
        /* Faded below epsilon by as_of: the next event of its dimension deletes it, so
         * the profile does not show it (docs/interests.md). */
        if (x.w < fc->epsilon) continue;
        r[live++] = x;
    }
    qsort(r, (size_t)live, sizeof(*r), cmp_ranked);
    int n = top_n > 0 && top_n < live ? top_n : live;
    tl_buf text = {0};
    for (int i = 0; i < n; i++) {
        const tl_interest *e = r[i].e;
        tl_buf_puts(out, i ? ",{\"dim\":" : "{\"dim\":");
        tl_json_put_str(out, tl_dim_name((tl_dim)e->dim));
        tl_json_member_strn(out, "id", e->id, e->id_len);
        tl_json_member_double(out, "f", r[i].f);
        tl_json_member_double(out, "h", r[i].h);
        tl_json_member_double(out, "w", r[i].w);
        tl_json_member_i64(out, "last_ts", e->t);
        explain(&text, u, &r[i], as_of);
        tl_json_member_strn(out, "explanation", text.data, text.len);
        tl_buf_putc(out, '}');
    }
    tl_buf_putc(out, ']');
    tl_buf_free(&text);
    free(r);
}

static void put_journey(tl_buf *out, const tl_user *u)
{
    tl_buf_puts(out, ",\"journey\":[");
    for (int i = 0; i < u->n_tp; i++) {
        const tl_journey_tp *tp = &u->tp[i];
        tl_buf_puts(out, i ? ",{\"event_id\":" : "{\"event_id\":");
        tl_json_put_strn(out, tp->event_id, tp->len[0]);
        tl_json_put_key(out, "type");
        tl_json_put_str(out, tl_event_type_name((tl_event_type)tp->type));
        tl_json_member_i64(out, "ts", tp->ts);
        tl_json_member_strn(out, "item_id", tp->item_id, tp->len[1]);
        tl_json_member_strn(out, "category_id", tp->category_id, tp->len[2]);
        tl_json_member_strn(out, "channel", tp->channel, tp->len[3]);
        if (tp->campaign) tl_json_member_strn(out, "campaign", tp->campaign, tp->len[4]);
        tl_json_put_key(out, "dwell_ms");
        if (tp->dwell_ms < 0) tl_buf_puts(out, "null");
        else tl_json_put_i64(out, tp->dwell_ms);
        tl_buf_putc(out, '}');
    }
    tl_buf_putc(out, ']');
}

static void put_last_attributions(tl_buf *out, const tl_user *u)
{
    tl_buf_puts(out, ",\"last_attributions\":[");
    for (int i = 0; i < u->n_attr; i++) {
        const tl_last_attr *a = &u->attr[i];
        tl_buf_puts(out, i ? ",{\"event_id\":" : "{\"event_id\":");
        tl_json_put_strn(out, a->event_id, a->len[0]);
        tl_json_member_i64(out, "ts", a->ts);
        tl_json_member_strn(out, "item_id", a->item_id, a->len[1]);
        tl_json_member_strn(out, "category_id", a->category_id, a->len[2]);
        tl_json_member_double(out, "p_conversion", a->p_conversion);
        tl_json_member_strn(out, "explanation", a->explanation, a->len[3]);
        tl_buf_putc(out, '}');
    }
    tl_buf_putc(out, ']');
}

int tl_profile_render(const tl_features_cfg *fc, const char *user_id, int32_t partition,
                      const void *rec, size_t len, int64_t as_of_ms, int top_n, tl_buf *out,
                      char *err, size_t errlen)
{
    tl_user u;
    memset(&u, 0, sizeof(u));
    if (tl_user_decode(&u, rec, len) != 0) {
        tl_user_clear(&u);
        snprintf(err, errlen, "the state record of user %s (%zu bytes) does not decode",
                 user_id ? user_id : "(none)", len);
        return -1;
    }
    /* No time given: the user's own newest time, or the partition's stream time if later
     * (a stream time not yet known, 0, as after a restore from the changelog before the
     * partition's next event, must not put the profile in 1970). */
    if (as_of_ms < 0) {
        as_of_ms = -as_of_ms - 1;
        for (int i = 0; i < u.n_ent; i++)
            if (u.ent[i].t > as_of_ms) as_of_ms = u.ent[i].t;
        for (int i = 0; i < u.n_tp; i++)
            if (u.tp[i].ts > as_of_ms) as_of_ms = u.tp[i].ts;
        for (int i = 0; i < u.n_attr; i++)
            if (u.attr[i].ts > as_of_ms) as_of_ms = u.attr[i].ts;
    }
    tl_buf_puts(out, "{\"user_id\":");
    tl_json_put_str(out, user_id);
    tl_json_member_i64(out, "partition", partition);
    tl_json_member_i64(out, "as_of", as_of_ms);
    put_interests(out, fc, &u, as_of_ms, top_n);
    put_journey(out, &u);
    put_last_attributions(out, &u);
    /* the purchase intent last published (model/intent.h), null before any */
    tl_json_put_key(out, "intent");
    if (u.intent_ts == INT64_MIN) {
        tl_buf_puts(out, "null");
    } else {
        tl_buf_puts(out, "{\"p\":");
        tl_json_put_double(out, u.intent);
        tl_json_member_i64(out, "ts", u.intent_ts);
        tl_buf_putc(out, '}');
    }
    /* the next-category view last published (model/categories.h), null before any */
    tl_json_put_key(out, "next_categories");
    tl_nc_view v;
    if (!u.nc || tl_nc_decode(&v, u.nc, u.nc_len) != 0) {   /* decoded with the record */
        tl_buf_puts(out, "null");
    } else {
        tl_buf_puts(out, "{\"ts\":");
        tl_json_put_i64(out, v.ts);
        tl_nc_put_json(out, &v);
        tl_buf_putc(out, '}');
    }
    tl_buf_putc(out, '}');
    tl_user_clear(&u);
    return 0;
}
