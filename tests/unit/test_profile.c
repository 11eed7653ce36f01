/*
 * test_profile.c -- features/profile.c: a user built by the attribution and features
 * stages on hand events, encoded and rendered, the JSON parsed back: f, h and w equal
 * the last interest delta of every entry read at the user's last event and at a later
 * time (decay computed here from the documented formula), interests ordered by w with
 * top_n, the open journey, the explanations, the last attributions as the attribution
 * stage recorded them (with and without the model; newest first, three kept), a
 * version 2 record (no last attributions, otherwise the same output), escaping of odd
 * user ids and dimension values, and corrupt records rejected with the output left as
 * it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "engine/state.h"
#include "features/interest.h"
#include "features/profile.h"
#include "model/attribution.h"
#include "model/model.h"
#include "fixtures.h"
#include "memsink.h"

static const int64_t HOUR = 3600000;
static const int64_t T0 = 1700000000000LL;

/* ---- fixture -------------------------------------------------------------------- */

static memsink ms;
static tl_arena arena, jarena;
static tl_user user;
static tl_features_cfg fc;
static tl_attr_cfg ac;
static tl_attr_stage stage;
static tl_features_stats fst;
static tl_buf rec, out;

static int setup(void **state)
{
    (void)state;
    fx_stage_open(&ms, &arena, &user, "u1");
    tl_arena_init(&jarena, 4096);
    user.labelled = user.sampled = user.first_ts = user.last_purchase = user.intent_ts = INT64_MIN;
    fc = fx_features_cfg(2.0 * HOUR, 0.5, 0.5);
    fc.dims[TL_DIM_ITEM] = fc.dims[TL_DIM_CHANNEL] = 1;
    ac = fx_attr_cfg();
    stage = (tl_attr_stage){.cfg = &ac, .fc = &fc};
    memset(&fst, 0, sizeof(fst));
    memset(&rec, 0, sizeof(rec));
    memset(&out, 0, sizeof(out));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_stage_close(&ms, &arena, &user);
    tl_arena_destroy(&jarena);
    tl_buf_free(&rec);
    tl_buf_free(&out);
    return 0;
}

/* One event through both stages, in the pipeline's order. */
static void feed(const char *id, const char *cat, const char *item, const char *ch,
                 tl_event_type type, int64_t ts)
{
    tl_event ev = fx_event(id, user.user_id, item, cat, ch, type, ts);
    if (type == TL_CLICK) {
        ev.has_dwell = 1;
        ev.dwell_ms = 1500;
    }
    assert_int_equal(tl_attribution_apply(&stage, NULL, &user, &ev, &arena, &ms.sink), TL_OK);
    assert_int_equal(tl_features_apply(&fc, &user, &ev, &arena, &ms.sink, &fst), TL_OK);
}

/* Renders the user's encoded record and parses the JSON back. */
static const tl_json *render(const char *user_id, int64_t as_of, int top_n)
{
    tl_buf_clear(&rec);
    tl_user_encode(&user, &rec);
    tl_buf_clear(&out);
    char err[256] = "";
    if (tl_profile_render(&fc, user_id, 3, rec.data, rec.len, as_of, top_n, &out, err,
                          sizeof(err)) != 0)
        fail_msg("render: %s", err);
    const tl_json *j = tl_json_parse(out.data, out.len, &jarena, err, sizeof(err));
    if (!j) fail_msg("%s in %s", err, out.data);
    assert_int_equal(j->type, TL_JSON_OBJECT);
    return j;
}

static double num(const tl_json *o, const char *key)
{
    const tl_json *v = tl_json_get(o, key);
    if (!v || v->type != TL_JSON_NUMBER) fail_msg("%s is not a number", key);
    return v->num;
}

static int64_t inum(const tl_json *o, const char *key)
{
    const tl_json *v = tl_json_get(o, key);
    if (!v || v->type != TL_JSON_NUMBER || !v->is_int) fail_msg("%s is not an integer", key);
    return v->i;
}

static void near(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= 1e-9)) fail_msg("%s: got %.17g, expected %.17g", what, got, want);
}

/* A journey of two sessions: touches, a purchase (attributed, journey reset), more
 * touches; three dimensions. */
static void build_user(void)
{
    feed("e1", "c1", "i1", "web", TL_IMPRESSION, T0);
    feed("e2", "c1", "i2", "web", TL_CLICK, T0 + HOUR);
    feed("e3", "c2", "i3", "app", TL_ADD_TO_CART, T0 + 2 * HOUR);
    feed("e4", "c2", "i3", "app", TL_PURCHASE, T0 + 3 * HOUR);
    feed("e5", "c3", "i4", NULL, TL_FAVORITE, T0 + 5 * HOUR);
    feed("e6", "c1", "i1", "web", TL_CLICK, T0 + 6 * HOUR);
}

/* The last delta of (dim, id) in the sink. */
static const tl_interest_delta *last_delta(const char *dim, const char *id)
{
    const tl_interest_delta *found = NULL;
    for (int i = 0; i < ms.count[MS_INTEREST]; i++) {
        const tl_interest_delta *d = ms_interest(&ms, i);
        if (!strcmp(tl_dim_name(d->dim), dim) && !strcmp(d->dim_id, id)) found = d;
    }
    if (!found) fail_msg("no delta for %s %s", dim, id);
    return found;
}

/* Every rendered interest against its last delta, decayed by hand to as_of. */
static void check_interests(const tl_json *j, int64_t as_of, size_t want_n)
{
    const tl_json *in = tl_json_get(j, "interests");
    assert_int_equal(tl_json_len(in), want_n);
    double prev = INFINITY;
    for (size_t i = 0; i < tl_json_len(in); i++) {
        const tl_json *o = tl_json_at(in, i);
        const char *dim = tl_json_str(tl_json_get(o, "dim")),
                   *id = tl_json_str(tl_json_get(o, "id"));
        assert_non_null(dim);
        assert_non_null(id);
        const tl_interest_delta *d = last_delta(dim, id);
        double k = pow(2.0, -(double)(as_of - d->ts) / (2.0 * HOUR));
        near(num(o, "f"), d->f * k, "f decayed");
        near(num(o, "h"), d->h * k, "h decayed");
        near(num(o, "w"), d->weight_after * k, "w decayed");
        assert_int_equal(inum(o, "last_ts"), d->ts);
        double w = num(o, "w");
        assert_true(w <= prev);
        prev = w;
        const char *ex = tl_json_str(tl_json_get(o, "explanation"));
        assert_non_null(ex);
        char head[128];
        snprintf(head, sizeof(head), "%s %s: weight ", dim, id);
        if (strncmp(ex, head, strlen(head)) != 0) fail_msg("explanation: %s", ex);
        assert_non_null(strstr(ex, " decayed events (last "));
        assert_non_null(strstr(ex, ") and engagement heat "));
    }
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_values_match_deltas(void **state)
{
    (void)state;
    build_user();
    assert_int_equal(ms.count[MS_ATTRIBUTION], 1);
    /* c1 c2 c3, i1 i2 i3 i4, web app */
    assert_int_equal(user.n_ent, 9);
    const int64_t last = T0 + 6 * HOUR;
    const tl_json *j = render("u1", last, 0);
    assert_string_equal(tl_json_str(tl_json_get(j, "user_id")), "u1");
    assert_int_equal(inum(j, "partition"), 3);
    assert_int_equal(inum(j, "as_of"), last);
    check_interests(j, last, 9);
    /* the entries the last event touched are exactly the delta's numbers */
    const tl_json *top = tl_json_at(tl_json_get(j, "interests"), 0);
    const tl_interest_delta *c1 = last_delta("category", "c1");
    assert_string_equal(tl_json_str(tl_json_get(top, "id")), "c1");
    assert_true(num(top, "f") == c1->f && num(top, "h") == c1->h);

    /* three hours later, every weight halves and a half again (H = 2 h) */
    j = render("u1", last + 3 * HOUR, 0);
    check_interests(j, last + 3 * HOUR, 9);
    /* and earlier than the entries (as_of before last_ts): the same formula grows them */
    j = render("u1", T0, 0);
    check_interests(j, T0, 9);
}

static void test_top_n_and_order(void **state)
{
    (void)state;
    build_user();
    const int64_t as_of = T0 + 7 * HOUR;
    const tl_json *all = tl_json_get(render("u1", as_of, -1), "interests");
    assert_int_equal(tl_json_len(all), 9);
    const tl_json *three = tl_json_get(render("u1", as_of, 3), "interests");
    assert_int_equal(tl_json_len(three), 3);
    for (size_t i = 0; i < 3; i++) {
        const tl_json *a = tl_json_at(all, i), *b = tl_json_at(three, i);
        assert_string_equal(tl_json_str(tl_json_get(a, "dim")), tl_json_str(tl_json_get(b, "dim")));
        assert_string_equal(tl_json_str(tl_json_get(a, "id")), tl_json_str(tl_json_get(b, "id")));
        assert_true(num(a, "w") == num(b, "w"));
    }
    assert_int_equal(tl_json_len(tl_json_get(render("u1", as_of, 100), "interests")), 9);
    /* an entry faded below epsilon by as_of is not shown; read earlier, it is */
    tl_interest *f = tl_user_add_interest(&user, TL_DIM_ITEM, "faded");
    f->f = f->h = 1e-3;
    f->t = as_of - 20 * (int64_t)fc.half_life_ms;   /* 1e-3 * 2^-20 < 1e-6 */
    assert_int_equal(tl_json_len(tl_json_get(render("u1", as_of, 0), "interests")), 9);
    assert_int_equal(tl_json_len(tl_json_get(render("u1", f->t, 0), "interests")), 10);

    /* equal weights: by dimension, then id */
    tl_user_clear(&user);
    const char *ids[] = {"b", "a", "c"};
    for (int d = TL_DIM_COUNT - 1; d >= 0; d--) {
        for (int k = 0; k < 3; k++) {
            tl_interest *e = tl_user_add_interest(&user, (tl_dim)d, ids[k]);
            e->f = e->h = 1;
            e->t = as_of;
        }
    }
    const tl_json *tied = tl_json_get(render("u1", as_of, 0), "interests");
    static const char *const want[] = {"category a", "category b", "category c",
                                       "item a",     "item b",     "item c",
                                       "channel a",  "channel b",  "channel c"};
    for (size_t i = 0; i < 9; i++) {
        const tl_json *o = tl_json_at(tied, i);
        char got[64];
        snprintf(got, sizeof(got), "%s %s", tl_json_str(tl_json_get(o, "dim")),
                 tl_json_str(tl_json_get(o, "id")));
        assert_string_equal(got, want[i]);
        near(num(o, "w"), 1, "w");
    }
}

static void test_journey_and_explanations(void **state)
{
    (void)state;
    build_user();
    const int64_t as_of = T0 + 8 * HOUR;
    const tl_json *j = render("u1", as_of, 0);
    /* the purchase reset the journey: e5 and e6 are open */
    const tl_json *jr = tl_json_get(j, "journey");
    assert_int_equal(tl_json_len(jr), 2);
    const tl_json *a = tl_json_at(jr, 0), *b = tl_json_at(jr, 1);
    assert_string_equal(tl_json_str(tl_json_get(a, "event_id")), "e5");
    assert_string_equal(tl_json_str(tl_json_get(a, "type")), "FAVORITE");
    assert_int_equal(inum(a, "ts"), T0 + 5 * HOUR);
    assert_string_equal(tl_json_str(tl_json_get(a, "item_id")), "i4");
    assert_string_equal(tl_json_str(tl_json_get(a, "category_id")), "c3");
    assert_true(tl_json_is_null(tl_json_get(a, "channel")) && tl_json_get(a, "channel"));
    assert_true(tl_json_is_null(tl_json_get(a, "dwell_ms")) && tl_json_get(a, "dwell_ms"));
    assert_string_equal(tl_json_str(tl_json_get(b, "event_id")), "e6");
    assert_string_equal(tl_json_str(tl_json_get(b, "type")), "CLICK");
    assert_string_equal(tl_json_str(tl_json_get(b, "channel")), "web");
    assert_int_equal(inum(b, "dwell_ms"), 1500);

    /* the purchase, as the attribution record has it; no model: p_conversion null */
    const tl_json *la = tl_json_get(j, "last_attributions");
    assert_int_equal(tl_json_len(la), 1);
    const tl_attribution *rec0 = ms_attribution(&ms, 0);
    const tl_json *p = tl_json_at(la, 0);
    assert_string_equal(tl_json_str(tl_json_get(p, "event_id")), "e4");
    assert_int_equal(inum(p, "ts"), T0 + 3 * HOUR);
    assert_string_equal(tl_json_str(tl_json_get(p, "item_id")), "i3");
    assert_string_equal(tl_json_str(tl_json_get(p, "category_id")), "c2");
    assert_true(tl_json_is_null(tl_json_get(p, "p_conversion")) && tl_json_get(p, "p_conversion"));
    assert_string_equal(tl_json_str(tl_json_get(p, "explanation")), rec0->explanation);

    /* explanations: the event type when the journey still shows it, else "event" */
    const tl_json *in = tl_json_get(j, "interests");
    int seen = 0;
    for (size_t i = 0; i < tl_json_len(in); i++) {
        const tl_json *o = tl_json_at(in, i);
        const char *id = tl_json_str(tl_json_get(o, "id"));
        const char *ex = tl_json_str(tl_json_get(o, "explanation"));
        if (!strcmp(id, "c1")) {
            /* f = 2^-3 + 2^-2.5 + 1 at e6, 2 h before as_of: halved */
            char want[256], fnum[32], hnum[32], wnum[32];
            double k = 0.5, f = (pow(2, -3) + pow(2, -2.5) + 1) * k,
                   h = (0.1 * pow(2, -3) + 2 * pow(2, -2.5) + 2) * k;
            tl_fmt_num(fnum, f, 0);
            tl_fmt_num(hnum, h, 0);
            tl_fmt_num(wnum, 0.5 * f + 0.5 * h, 0);
            snprintf(want, sizeof(want),
                     "category c1: weight %s from %s decayed events (last a click 2 h before) "
                     "and engagement heat %s",
                     wnum, fnum, hnum);
            assert_string_equal(ex, want);
            seen++;
        } else if (!strcmp(id, "c3")) {
            assert_non_null(strstr(ex, "(last a favorite 3 h before)"));
            seen++;
        } else if (!strcmp(id, "c2") || !strcmp(id, "i3")) {
            /* known from the last attribution */
            assert_non_null(strstr(ex, "(last a purchase 5 h before)"));
            seen++;
        } else if (!strcmp(id, "app")) {
            /* the purchase's touchpoints are gone from the journey and the attribution
             * does not keep the channel */
            assert_non_null(strstr(ex, "(last event 5 h before)"));
            seen++;
        }
    }
    assert_int_equal(seen, 5);
    /* read before the entries' time */
    j = render("u1", T0 + 4 * HOUR, 0);
    in = tl_json_get(j, "interests");
    for (size_t i = 0; i < tl_json_len(in); i++) {
        const tl_json *o = tl_json_at(in, i);
        if (!strcmp(tl_json_str(tl_json_get(o, "id")), "c1"))
            assert_non_null(strstr(tl_json_str(tl_json_get(o, "explanation")), "2 h later)"));
    }
}

/* Purchases through the stage with the model: p_conversion and the explanation as in
 * the record (cut to TL_LAST_ATTR_TEXT_MAX bytes), newest first, three kept. */
static void test_last_attributions_with_model(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    mc.shapley_samples = 64;
    mc.metrics_window = 100;
    char err[256];
    stage.model = tl_model_new(&mc, NULL, err, sizeof(err));
    if (!stage.model) fail_msg("tl_model_new: %s", err);
    static const char *const purchases[] = {"p1", "p2", "p3", "p4"};
    for (int k = 0; k < 4; k++) {
        char id[16];
        int64_t t = T0 + k * 10 * HOUR;
        snprintf(id, sizeof(id), "t%d-a", k);
        feed(id, "c1", "i1", "web", TL_CLICK, t);
        snprintf(id, sizeof(id), "t%d-b", k);
        feed(id, "c2", "i2", "app", TL_BROWSE, t + HOUR);
        feed(purchases[k], "c2", "i2", NULL, TL_PURCHASE, t + 2 * HOUR);
    }
    assert_int_equal(ms.count[MS_ATTRIBUTION], 4);
    const tl_json *la = tl_json_get(render("u1", T0 + 40 * HOUR, 0), "last_attributions");
    assert_int_equal(tl_json_len(la), TL_LAST_ATTR_MAX);
    for (int i = 0; i < TL_LAST_ATTR_MAX; i++) {
        const tl_attribution *r = ms_attribution(&ms, 3 - i);
        const tl_json *o = tl_json_at(la, (size_t)i);
        assert_string_equal(tl_json_str(tl_json_get(o, "event_id")), purchases[3 - i]);
        assert_int_equal(inum(o, "ts"), r->ts);
        assert_true(r->has_model);
        assert_true(num(o, "p_conversion") == r->p_conversion);
        const tl_json *ex = tl_json_get(o, "explanation");
        size_t full = strlen(r->explanation);
        assert_int_equal(ex->len, full < TL_LAST_ATTR_TEXT_MAX ? full : TL_LAST_ATTR_TEXT_MAX);
        assert_memory_equal(ex->str, r->explanation, ex->len);
        if (full <= TL_LAST_ATTR_TEXT_MAX) fail_msg("explanation of %zu bytes: not cut", full);
    }
    tl_model_destroy(stage.model);
    stage.model = NULL;
}

/* The intent last published (the user's record keeps it): null before one, then {p, ts}. */
static void test_intent(void **state)
{
    (void)state;
    feed("e1", "c1", "i1", "web", TL_CLICK, T0);
    assert_int_equal(tl_json_get(render("u1", T0, 0), "intent")->type, TL_JSON_NULL);
    user.intent = 0.375;
    user.intent_ts = T0 + HOUR;
    const tl_json *in = tl_json_get(render("u1", T0 + HOUR, 0), "intent");
    assert_int_equal(in->type, TL_JSON_OBJECT);
    assert_true(num(in, "p") == 0.375);
    assert_int_equal(inum(in, "ts"), T0 + HOUR);
    assert_int_equal(tl_json_len(in), 2);
}

static void test_next_categories(void **state)
{
    (void)state;
    feed("e1", "c1", "i1", "web", TL_CLICK, T0);
    assert_int_equal(tl_json_get(render("u1", T0, 0), "next_categories")->type, TL_JSON_NULL);
    tl_nc_view v = {
        .ts = T0, .p_other = 0.25f, .n = 1, .n_like = 1, .dim = 2, .emb = {0.5f, -2.0f}};
    v.cat[0] = (tl_nc_entry){"c1", 2, 0.75f};
    v.like[0] = (tl_nc_entry){"c\"7", 3, 1.25f};
    tl_buf b = {0};
    tl_nc_encode(&v, &b);
    tl_user_set_nc(&user, b.data, b.len);
    tl_buf_free(&b);
    const tl_json *nc = tl_json_get(render("u1", T0 + HOUR, 0), "next_categories");
    assert_int_equal(nc->type, TL_JSON_OBJECT);
    assert_int_equal(inum(nc, "ts"), T0);
    assert_true(num(nc, "p_other") == 0.25);
    const tl_json *c = tl_json_get(nc, "categories"), *l = tl_json_get(nc, "like");
    assert_int_equal(tl_json_len(c), 1);
    assert_string_equal(tl_json_str(tl_json_get(tl_json_at(c, 0), "category_id")), "c1");
    assert_true(num(tl_json_at(c, 0), "p") == 0.75);
    assert_string_equal(tl_json_str(tl_json_get(tl_json_at(l, 0), "category_id")), "c\"7");
    assert_true(num(tl_json_at(l, 0), "affinity") == 1.25);
    const tl_json *e = tl_json_get(nc, "embedding");
    assert_int_equal(tl_json_len(e), 2);
    assert_true(tl_json_at(e, 1)->num == -2.0);
    assert_int_equal(tl_json_len(nc), 5);
}

/* Version 5's record as version 4: each touchpoint's campaign (here NULL: one 0 byte
 * after its dwell) taken out, by a walk of the layout engine/state.c describes. */
static size_t skip_varint(const char *d, size_t off)
{
    while ((unsigned char)d[off++] & 0x80) {}
    return off;
}

static size_t skip_str(const char *d, size_t off, int optional)
{
    size_t at = off;
    uint64_t v = 0;
    for (int sh = 0;; sh += 7) {
        unsigned char c = (unsigned char)d[at++];
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) break;
    }
    return at + (optional ? (v ? v - 1 : 0) : v);
}

static void as_version4(tl_buf *r)
{
    char *d = r->data;
    size_t off = 1;
    for (int f = 0; f < 6; f++) off = skip_varint(d, off);   /* timer .. last_purchase */
    assert_true((unsigned char)d[off] < 0x80);
    int n_ent = d[off++];
    for (int i = 0; i < n_ent; i++) off = skip_varint(d, skip_str(d, off + 1, 0) + 16);
    assert_true((unsigned char)d[off] < 0x80);
    int n_tp = d[off++];
    for (int i = 0; i < n_tp; i++) {
        off = skip_str(d, skip_str(d, off, 0), 0);
        off = skip_str(d, skip_str(d, off, 1), 1);
        off = skip_varint(d, off + 1);        /* type, ts */
        off = skip_varint(d, off + 8);        /* share, propensity, dwell */
        assert_int_equal(d[off], 0);          /* the campaign: NULL */
        memmove(d + off, d + off + 1, r->len - off - 1);
        r->len--;
    }
    d[0] = 4;
}

/* A version 2 record (written before the last attributions existed) renders like the
 * same state in version 3, with no last attributions. */
static void test_version2_record(void **state)
{
    (void)state;
    feed("e1", "c1", "i1", "web", TL_CLICK, T0);
    feed("e2", "c2", "i2", NULL, TL_BROWSE, T0 + HOUR);
    render("u1", T0 + 2 * HOUR, 0);
    tl_buf v3 = {0};
    tl_buf_append(&v3, out.data, out.len);
    /* version 4 has sampled, first_ts, purchases and last_purchase after labelled, version 3
     * not; version 3 ends with the (empty)
     * attribution count, version 2 has none */
    tl_buf_clear(&rec);
    tl_user_encode(&user, &rec);
    assert_int_equal(rec.data[0], 8);
    /* version 7 is version 8 without the expected purchases (an f64 after last_purchase) */
    size_t at = 1;
    for (int f = 0; f < 6; f++) at = skip_varint(rec.data, at);
    memmove(rec.data + at, rec.data + at + 8, rec.len - at - 8);
    rec.len -= 8;
    /* version 5 is version 7 without the next categories (none: one byte) and the intent
     * (its f64, none's svarint and no pending moment, 19 bytes) */
    rec.len -= 1 + 19;
    rec.data[0] = 5;
    as_version4(&rec);
    assert_int_equal(rec.data[rec.len - 1], 0);
    size_t off = 1;
    for (int field = 0; field < 2; field++)   /* timer, labelled */
        while ((unsigned char)rec.data[off++] & 0x80) {}
    size_t end = off;
    for (int field = 0; field < 4; field++)   /* sampled, first_ts, purchases, last_purchase */
        while ((unsigned char)rec.data[end++] & 0x80) {}
    memmove(rec.data + off, rec.data + end, rec.len - end);
    rec.len -= end - off;
    rec.data[0] = 3;
    tl_buf_clear(&out);
    char err3[256] = "";
    if (tl_profile_render(&fc, "u1", 3, rec.data, rec.len, T0 + 2 * HOUR, 0, &out, err3,
                          sizeof(err3)) != 0)
        fail_msg("render of version 3: %s", err3);
    assert_int_equal(out.len, v3.len);
    assert_memory_equal(out.data, v3.data, v3.len);
    rec.data[0] = 2;
    tl_buf_clear(&out);
    char err[256] = "";
    if (tl_profile_render(&fc, "u1", 3, rec.data, rec.len - 1, T0 + 2 * HOUR, 0, &out, err,
                          sizeof(err)) != 0)
        fail_msg("render: %s", err);
    assert_int_equal(out.len, v3.len);
    assert_memory_equal(out.data, v3.data, v3.len);
    assert_non_null(
        strstr(out.data, "\"last_attributions\":[],\"intent\":null,\"next_categories\":null}"));
    /* the same bytes labelled version 3 lack the section: corrupt */
    rec.data[0] = 3;
    assert_int_equal(
        tl_profile_render(&fc, "u1", 3, rec.data, rec.len - 1, T0, 0, &out, err, sizeof(err)), -1);
    tl_buf_free(&v3);
}

/* Odd user ids and dimension values come back byte for byte. */
static void test_escaping(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "q\"uote",
        "back\\slash",
        "new\nline\ttab\r",
        "ctl\x01\x1f",
        "</script>",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "",
        "{\"a\":[1]}",
    };
    const size_t n = sizeof(odd) / sizeof(odd[0]);
    for (size_t i = 0; i < n; i++)
        feed("e", odd[i], odd[(i + 1) % n], odd[(i + 2) % n], TL_CLICK, T0);
    feed(odd[2], odd[3], odd[0], odd[1], TL_PURCHASE, T0);   /* its explanation names odd[0] */
    assert_int_equal(ms.count[MS_ATTRIBUTION], 1);
    for (size_t i = 0; i < n; i++) {
        const tl_json *j = render(odd[i], T0, 0);
        assert_string_equal(tl_json_str(tl_json_get(j, "user_id")), odd[i]);
        const tl_json *in = tl_json_get(j, "interests");
        int found = 0;
        for (size_t k = 0; k < tl_json_len(in); k++) {
            const tl_json *o = tl_json_at(in, k);
            const tl_json *id = tl_json_get(o, "id");
            if (id->len == strlen(odd[i]) && !memcmp(id->str, odd[i], id->len)) {
                found = 1;
                /* the id is in the explanation, and the explanation survives a round trip */
                assert_non_null(strstr(tl_json_str(tl_json_get(o, "explanation")), odd[i]));
            }
        }
        if (odd[i][0] && !found) fail_msg("id %zu not rendered", i);
    }
    const tl_json *j = render("u1", T0, 0);
    const tl_json *a = tl_json_at(tl_json_get(j, "last_attributions"), 0);
    assert_string_equal(tl_json_str(tl_json_get(a, "event_id")), odd[2]);
    assert_string_equal(tl_json_str(tl_json_get(a, "item_id")), odd[0]);
    assert_string_equal(tl_json_str(tl_json_get(a, "category_id")), odd[3]);
    assert_string_equal(tl_json_str(tl_json_get(a, "explanation")),
                        ms_attribution(&ms, 0)->explanation);
    assert_non_null(strstr(tl_json_str(tl_json_get(a, "explanation")), odd[0]));
    /* NULL user id: null, not a crash */
    j = render(NULL, T0, 0);
    assert_true(tl_json_is_null(tl_json_get(j, "user_id")) && tl_json_get(j, "user_id"));
}

/* Non-finite numbers in a record render as null; the JSON stays valid. */
static void test_nonfinite(void **state)
{
    (void)state;
    tl_interest *e = tl_user_add_interest(&user, TL_DIM_CATEGORY, "nan");
    e->f = NAN;
    e->h = 1;
    e->t = T0;
    e = tl_user_add_interest(&user, TL_DIM_CATEGORY, "inf");
    e->f = INFINITY;
    e->h = 1;
    e->t = T0;
    e = tl_user_add_interest(&user, TL_DIM_ITEM, "far");
    e->f = e->h = 1;
    e->t = -TL_STORED_TIME_MAX; /* the earliest a stored record holds */
    const tl_json *j = render("u1", INT64_MAX, 0);
    const tl_json *in = tl_json_get(j, "interests");
    /* "far" has faded below epsilon by then: not shown; inf * 0 is NaN, shown */
    assert_int_equal(tl_json_len(in), 2);
    /* NaN sorts last */
    assert_string_equal(tl_json_str(tl_json_get(tl_json_at(in, 1), "id")), "nan");
    for (size_t i = 0; i < 2; i++) {
        const tl_json *o = tl_json_at(in, i);
        assert_true(tl_json_get(o, "w")->type == TL_JSON_NULL ||
                    tl_json_get(o, "w")->type == TL_JSON_NUMBER);
    }
}

/* Corrupt records: -1 with a reason, out as it was. */
static void test_corrupt(void **state)
{
    (void)state;
    build_user();
    tl_user_encode(&user, &rec);
    tl_buf_puts(&out, "kept");
    char err[256];
    for (size_t len = 0; len < rec.len; len++) {
        unsigned char *p = tl_xmalloc(len ? len : 1);
        memcpy(p, rec.data, len);
        err[0] = '\0';
        if (tl_profile_render(&fc, "u1", 0, p, len, T0, 0, &out, err, sizeof(err)) != -1)
            fail_msg("prefix of %zu/%zu bytes rendered", len, rec.len);
        assert_true(err[0] != '\0');
        assert_int_equal(out.len, 4);
        free(p);
    }
    static const unsigned char junk[] = {0x7f, 1, 2, 3};
    assert_int_equal(
        tl_profile_render(&fc, "u1", 0, junk, sizeof(junk), T0, 0, &out, err, sizeof(err)), -1);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "kept", 4);
    /* a valid record is appended after what out held */
    assert_int_equal(
        tl_profile_render(&fc, "u1", 0, rec.data, rec.len, T0, 0, &out, err, sizeof(err)), 0);
    assert_memory_equal(out.data, "kept{\"user_id\":\"u1\"", 19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_values_match_deltas),
        FX_TEST(test_top_n_and_order),
        FX_TEST(test_journey_and_explanations),
        FX_TEST(test_last_attributions_with_model),
        FX_TEST(test_intent),
        FX_TEST(test_next_categories),
        FX_TEST(test_version2_record),
        FX_TEST(test_escaping),
        FX_TEST(test_nonfinite),
        FX_TEST(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
