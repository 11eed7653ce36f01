/*
 * test_attribution.c -- model/attribution.c against docs/attribution.md: the five
 * rule-based methods for n = 1, 2, 3, 5 with hand-computed credits, and touchpoint
 * selection through tl_attribution_apply: lookback (inclusive bound), touchpoints
 * after the purchase, max touchpoints, reset on conversion on and off, ties on ts,
 * out-of-order touch events, purchases without touchpoints, the touch-type list and
 * the record's fields.
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

#include "app/config.h"
#include "lib/config.h"
#include "engine/state.h"
#include "model/attribution.h"
#include "fixtures.h"
#include "memsink.h"

static const int64_t DAY = 86400000;

/* ---- fixture -------------------------------------------------------------------- */

static memsink ms;
static tl_arena arena;
static tl_user user;
static tl_attr_cfg cfg;       /* the documented defaults; a test changes what it needs */
static tl_attr_stage stage;   /* no model, no timers: the rule-based stage alone */
#define ast stage.st

static int setup(void **state)
{
    (void)state;
    fx_stage_open(&ms, &arena, &user, "u1");
    cfg = fx_attr_cfg();
    stage = (tl_attr_stage){.cfg = &cfg};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_stage_close(&ms, &arena, &user);
    return 0;
}

static void check_near(double got, double want, const char *what, int i)
{
    if (!(fabs(got - want) <= 1e-12))
        fail_msg("%s[%d]: got %.17g, expected %.17g", what, i, got, want);
}

static void check_credits(const double *got, const double *want, int n, const char *what)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        check_near(got[i], want[i], what, i);
        sum += got[i];
    }
    if (!(fabs(sum - 1) <= 1e-12)) fail_msg("%s: credits sum to %.17g", what, sum);
}

static tl_event mkev(const char *id, tl_event_type type, int64_t ts)
{
    return fx_event(id, "u1", "item", NULL, NULL, type, ts);
}

static void apply_ev(const tl_event *ev)
{
    assert_int_equal(tl_attribution_apply(&stage, NULL, &user, ev, &arena, &ms.sink), TL_OK);
}

static void apply(const char *id, tl_event_type type, int64_t ts)
{
    tl_event ev = mkev(id, type, ts);
    apply_ev(&ev);
}

/* A CLICK at each of the n times, in that order, each named "t<ts>". */
static void clicks(const int64_t *ts, int n)
{
    for (int i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof(id), "t%lld", (long long)ts[i]);
        apply(id, TL_CLICK, ts[i]);
    }
}

/* Two touches (a BROWSE at 1000, b CLICK at 2000), then purchases p1 at 3000 and p2 at
 * 4000. */
static void touch_twice_buy_twice(void)
{
    apply("a", TL_BROWSE, 1000);
    apply("b", TL_CLICK, 2000);
    apply("p1", TL_PURCHASE, 3000);
    apply("p2", TL_PURCHASE, 4000);
}

/* The stage's counters: purchases, attributed, without touchpoints, touchpoints credited. */
static void expect_counts(uint64_t purchases, uint64_t attributed, uint64_t no_touchpoints,
                          uint64_t credited)
{
    assert_int_equal(ast.purchases, purchases);
    assert_int_equal(ast.attributed, attributed);
    assert_int_equal(ast.no_touchpoints, no_touchpoints);
    assert_int_equal(ast.touchpoints_credited, credited);
}

/* No records and an empty journey, the counters kept. */
static void start_over(void)
{
    ms_clear(&ms);
    tl_user_clear(&user);
}

/* The i-th attribution's touchpoint event ids equal the space-separated list want. */
static void expect_tps(int i, const char *want)
{
    const tl_attribution *r = ms_attribution(&ms, i);
    if (!r) fail_msg("no attribution record %d (have %d)", i, ms.count[MS_ATTRIBUTION]);
    char got[512] = "";
    for (int k = 0; k < r->n_touchpoints; k++) {
        if (k) strcat(got, " ");
        strcat(got, r->touchpoints[k].event_id);
    }
    if (strcmp(got, want) != 0)
        fail_msg("attribution %d touchpoints: \"%s\", expected \"%s\"", i, got, want);
}

/* The journey's event ids, in order. */
static void expect_journey(const char *want)
{
    char got[512] = "";
    for (int k = 0; k < user.n_tp; k++) {
        if (k) strcat(got, " ");
        strcat(got, user.tp[k].event_id);
    }
    if (strcmp(got, want) != 0) fail_msg("journey: \"%s\", expected \"%s\"", got, want);
}

/* The journey is want (event ids); a purchase id at ts then credits all of it. */
static void buy_whole_journey(const char *id, int64_t ts, const char *want)
{
    int i = ms.count[MS_ATTRIBUTION];
    expect_journey(want);
    apply(id, TL_PURCHASE, ts);
    expect_tps(i, want);
}

/* ---- tl_credits_rule ---------------------------------------------------------------- */

static void test_rule_last_first_linear(void **state)
{
    (void)state;
    const int ns[] = {1, 2, 3, 5};
    int64_t ts[5] = {10, 20, 30, 40, 50};
    for (int k = 0; k < 4; k++) {
        int n = ns[k];
        double out[5], want[5];
        char what[64];

        for (int i = 0; i < n; i++) want[i] = i == n - 1 ? 1 : 0;
        tl_credits_rule(TL_M_LAST_TOUCH, n, ts, 60, DAY, out);
        snprintf(what, sizeof(what), "last_touch n=%d", n);
        check_credits(out, want, n, what);

        for (int i = 0; i < n; i++) want[i] = i == 0 ? 1 : 0;
        tl_credits_rule(TL_M_FIRST_TOUCH, n, ts, 60, DAY, out);
        snprintf(what, sizeof(what), "first_touch n=%d", n);
        check_credits(out, want, n, what);

        static const double lin[] = {0, 1, 0.5, 1.0 / 3, 0, 0.2};
        for (int i = 0; i < n; i++) want[i] = lin[n];
        tl_credits_rule(TL_M_LINEAR, n, ts, 60, DAY, out);
        snprintf(what, sizeof(what), "linear n=%d", n);
        check_credits(out, want, n, what);
    }
}

static void test_rule_position_based(void **state)
{
    (void)state;
    int64_t ts[5] = {1, 2, 3, 4, 5};
    double out[5];
    tl_credits_rule(TL_M_POSITION_BASED, 1, ts, 9, DAY, out);
    check_credits(out, (double[]){1}, 1, "position_based n=1");
    tl_credits_rule(TL_M_POSITION_BASED, 2, ts, 9, DAY, out);
    check_credits(out, (double[]){0.5, 0.5}, 2, "position_based n=2");
    tl_credits_rule(TL_M_POSITION_BASED, 3, ts, 9, DAY, out);
    check_credits(out, (double[]){0.4, 0.2, 0.4}, 3, "position_based n=3");
    tl_credits_rule(TL_M_POSITION_BASED, 5, ts, 9, DAY, out);
    check_credits(out, (double[]){0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4}, 5, "position_based n=5");
}

static void test_rule_time_decay(void **state)
{
    (void)state;
    const int64_t P = 100 * DAY;
    double out[5];
    /* n = 1: all of it */
    tl_credits_rule(TL_M_TIME_DECAY, 1, (int64_t[]){P - 3 * DAY}, P, DAY, out);
    check_credits(out, (double[]){1}, 1, "time_decay n=1");
    /* 1 day and 0 before: 1/2 and 1 -> 1/3, 2/3 */
    tl_credits_rule(TL_M_TIME_DECAY, 2, (int64_t[]){P - DAY, P}, P, DAY, out);
    check_credits(out, (double[]){1.0 / 3, 2.0 / 3}, 2, "time_decay n=2");
    /* 2, 1, 0 days before: 1/4, 1/2, 1 -> 1/7, 2/7, 4/7 */
    tl_credits_rule(TL_M_TIME_DECAY, 3, (int64_t[]){P - 2 * DAY, P - DAY, P}, P, DAY, out);
    check_credits(out, (double[]){1.0 / 7, 2.0 / 7, 4.0 / 7}, 3, "time_decay n=3");
    /* 4..0 days before: 1/16 .. 1 -> 1/31, 2/31, 4/31, 8/31, 16/31 */
    tl_credits_rule(TL_M_TIME_DECAY, 5,
                    (int64_t[]){P - 4 * DAY, P - 3 * DAY, P - 2 * DAY, P - DAY, P}, P, DAY, out);
    check_credits(out, (double[]){1.0 / 31, 2.0 / 31, 4.0 / 31, 8.0 / 31, 16.0 / 31}, 5,
                  "time_decay n=5");
    /* equal times: equal shares; half a half-life apart with Ha = 2 days */
    tl_credits_rule(TL_M_TIME_DECAY, 3, (int64_t[]){P - 5, P - 5, P - 5}, P, DAY, out);
    check_credits(out, (double[]){1.0 / 3, 1.0 / 3, 1.0 / 3}, 3, "time_decay equal ts");
    const double r = 0.70710678118654752440;   /* 2^-1/2 */
    tl_credits_rule(TL_M_TIME_DECAY, 2, (int64_t[]){P - DAY, P}, P, 2.0 * DAY, out);
    check_credits(out, (double[]){r / (1 + r), 1 / (1 + r)}, 2, "time_decay Ha=2d");
}

/* ---- selection ------------------------------------------------------------------------- */

/* The full record for three touchpoints 2, 1, 0 days before with Ha = 1 day. */
static void test_record_fields(void **state)
{
    (void)state;
    cfg.time_decay_half_life_ms = (double)DAY;
    const int64_t P = 50 * DAY;
    tl_event t1 = mkev("t1", TL_IMPRESSION, P - 2 * DAY);
    t1.item_id = "i1";
    t1.category_id = "c1";
    t1.channel = "web";
    tl_event t2 = mkev("t2", TL_CLICK, P - DAY);
    t2.item_id = "i2";   /* no category, no channel */
    tl_event t3 = mkev("t3", TL_ADD_TO_CART, P);
    t3.item_id = "i3";
    t3.channel = "app";
    tl_event p = mkev("p1", TL_PURCHASE, P);
    p.item_id = "i3";
    p.category_id = "c3";
    p.value = 19.5;
    p.has_value = 1;
    tl_event *evs[] = {&t1, &t2, &t3, &p};
    for (int i = 0; i < 4; i++) apply_ev(evs[i]);
    assert_int_equal(ms.n, 1);
    const tl_attribution *r = ms_attribution(&ms, 0);
    assert_string_equal(r->conversion_event_id, "p1");
    assert_string_equal(r->user_id, "u1");
    assert_string_equal(r->item_id, "i3");
    assert_string_equal(r->category_id, "c3");
    assert_int_equal(r->ts, P);
    assert_int_equal(r->has_value, 1);
    assert_true(r->value == 19.5);
    assert_int_equal(r->n_touchpoints, 3);
    const tl_touchpoint *tp = r->touchpoints;
    assert_string_equal(tp[0].event_id, "t1");
    assert_string_equal(tp[0].item_id, "i1");
    assert_string_equal(tp[0].category_id, "c1");
    assert_string_equal(tp[0].channel, "web");
    assert_int_equal(tp[0].type, TL_IMPRESSION);
    assert_int_equal(tp[0].ts, P - 2 * DAY);
    assert_string_equal(tp[1].item_id, "i2");
    assert_null(tp[1].category_id);
    assert_null(tp[1].channel);
    assert_int_equal(tp[1].type, TL_CLICK);
    assert_int_equal(tp[1].ts, P - DAY);
    assert_null(tp[2].category_id);
    assert_string_equal(tp[2].channel, "app");
    assert_int_equal(tp[2].type, TL_ADD_TO_CART);
    assert_int_equal(tp[2].ts, P);
    for (int m = TL_M_LAST_TOUCH; m <= TL_M_POSITION_BASED; m++) assert_true(r->has_method[m]);
    assert_false(r->has_method[TL_M_SHAPLEY]);
    assert_false(r->has_method[TL_M_REMOVAL]);
    assert_false(r->has_model);
    check_credits(r->credits[TL_M_LAST_TOUCH], (double[]){0, 0, 1}, 3, "last_touch");
    check_credits(r->credits[TL_M_FIRST_TOUCH], (double[]){1, 0, 0}, 3, "first_touch");
    check_credits(r->credits[TL_M_LINEAR], (double[]){1.0 / 3, 1.0 / 3, 1.0 / 3}, 3, "linear");
    check_credits(r->credits[TL_M_TIME_DECAY], (double[]){1.0 / 7, 2.0 / 7, 4.0 / 7}, 3,
                  "time_decay");
    check_credits(r->credits[TL_M_POSITION_BASED], (double[]){0.4, 0.2, 0.4}, 3, "position_based");
    assert_non_null(r->explanation);
    if (!strstr(r->explanation, "3 touchpoints")) fail_msg("explanation: %s", r->explanation);
    expect_counts(1, 1, 0, 3);
    assert_int_equal(user.n_tp, 0);   /* reset on conversion */

    /* a purchase without value or category */
    apply("t4", TL_BROWSE, P + 1);
    apply("p2", TL_PURCHASE, P + 2);
    r = ms_attribution(&ms, 1);
    assert_non_null(r);
    assert_int_equal(r->has_value, 0);
    assert_null(r->category_id);
    assert_int_equal(r->n_touchpoints, 1);
    for (int m = TL_M_LAST_TOUCH; m <= TL_M_POSITION_BASED; m++)
        check_credits(r->credits[m], (double[]){1}, 1, tl_method_name((tl_method)m));
}

static void test_lookback(void **state)
{
    (void)state;
    static const int64_t ts[] = {100, 600, 1000};
    cfg.lookback_ms = 1000;
    clicks(ts, 3);
    expect_journey("t100 t600 t1000");   /* all within 1000 of the newest */
    /* P - L = 600: the bound is inclusive, 100 is too old */
    apply("p", TL_PURCHASE, 1600);
    expect_tps(0, "t600 t1000");
    expect_journey("t100");   /* only the credited ones are removed */

    /* one ms further and 600 is out too */
    start_over();
    clicks(ts, 3);
    apply("p", TL_PURCHASE, 1601);
    expect_tps(0, "t1000");

    /* a purchase whose whole journey is too old gets nothing */
    start_over();
    memset(&ast, 0, sizeof(ast));
    apply("t0", TL_CLICK, 0);
    apply("p", TL_PURCHASE, 1001);
    assert_int_equal(ms.n, 0);
    assert_int_equal(ast.no_touchpoints, 1);
    expect_journey("t0");
}

/* The journey itself drops entries more than L before its newest one. */
static void test_journey_trim_lookback(void **state)
{
    (void)state;
    cfg.lookback_ms = 1000;
    apply("a", TL_CLICK, 0);
    apply("b", TL_CLICK, 1000);   /* exactly L after: a stays */
    expect_journey("a b");
    apply("c", TL_CLICK, 1001);   /* a is now more than L before c */
    expect_journey("b c");
    apply("d", TL_CLICK, 500);    /* late, but within L of the newest */
    expect_journey("d b c");
    apply("e", TL_CLICK, 0);      /* late and too old: dropped at once */
    expect_journey("d b c");
}

static void test_future_touchpoints_excluded(void **state)
{
    (void)state;
    clicks((const int64_t[]){1000, 3000, 2000}, 3);   /* the purchase's own ts is included */
    apply("p", TL_PURCHASE, 2000);
    expect_tps(0, "t1000 t2000");
    expect_journey("t3000");
    /* a second purchase later gets the one left */
    apply("p2", TL_PURCHASE, 4000);
    expect_tps(1, "t3000");
    expect_journey("");
}

static void test_max_touchpoints(void **state)
{
    (void)state;
    cfg.max_touchpoints = 3;
    clicks((const int64_t[]){1, 2, 3, 4, 5}, 5);
    expect_journey("t3 t4 t5");
    apply("t0", TL_CLICK, 0);   /* late: inserted first, then trimmed as the oldest */
    expect_journey("t3 t4 t5");
    apply("t35", TL_CLICK, 3);  /* ties with t3, after it: t3 is the oldest, trimmed */
    buy_whole_journey("p", 10, "t35 t4 t5");

    /* a journey longer than N (written under a larger N): the purchase takes the
     * N most recent ones at or before its ts */
    start_over();
    for (int i = 1; i <= 6; i++) {
        char id[8];
        snprintf(id, sizeof(id), "j%d", i);
        tl_event ev = mkev(id, TL_BROWSE, i * 10);
        tl_user_add_tp(&user, &ev, -1.0f);
    }
    apply("p", TL_PURCHASE, 55);
    expect_tps(0, "j3 j4 j5");
    expect_journey("j1 j2 j6");
    assert_int_equal(ast.touchpoints_credited, 6);
}

static void test_reset_on_conversion(void **state)
{
    (void)state;
    touch_twice_buy_twice();
    assert_int_equal(ms.count[MS_ATTRIBUTION], 1);
    expect_tps(0, "a b");
    expect_counts(2, 1, 1, 2);
    /* a new touch after the conversion is credited to the next purchase alone */
    apply("c", TL_CLICK, 5000);
    apply("p3", TL_PURCHASE, 6000);
    expect_tps(1, "c");
}

static void test_no_reset(void **state)
{
    (void)state;
    cfg.reset_on_conversion = 0;
    touch_twice_buy_twice();
    apply("c", TL_CLICK, 5000);
    apply("p3", TL_PURCHASE, 6000);
    assert_int_equal(ms.count[MS_ATTRIBUTION], 3);
    expect_tps(0, "a b");
    expect_tps(1, "a b");
    expect_tps(2, "a b c");
    expect_counts(3, 3, 0, 7);
    expect_journey("a b c");
}

static void test_ties_arrival_order(void **state)
{
    (void)state;
    apply("x", TL_IMPRESSION, 100);
    apply("y", TL_CLICK, 100);
    apply("z", TL_BROWSE, 100);
    apply("p", TL_PURCHASE, 100);
    expect_tps(0, "x y z");
    const tl_attribution *r = ms_attribution(&ms, 0);
    check_credits(r->credits[TL_M_FIRST_TOUCH], (double[]){1, 0, 0}, 3, "first_touch");
    check_credits(r->credits[TL_M_LAST_TOUCH], (double[]){0, 0, 1}, 3, "last_touch");
    check_credits(r->credits[TL_M_POSITION_BASED], (double[]){0.4, 0.2, 0.4}, 3, "position");

    /* a late arrival with an existing ts goes after the entries with that ts */
    apply("a", TL_CLICK, 100);
    apply("c", TL_CLICK, 200);
    apply("b", TL_CLICK, 100);
    apply("d", TL_CLICK, 100);
    buy_whole_journey("p2", 300, "a b d c");
    r = ms_attribution(&ms, 1);
    check_credits(r->credits[TL_M_FIRST_TOUCH], (double[]){1, 0, 0, 0}, 4, "first_touch");
    check_credits(r->credits[TL_M_LAST_TOUCH], (double[]){0, 0, 0, 1}, 4, "last_touch");
}

static void test_out_of_order_touch(void **state)
{
    (void)state;
    cfg.time_decay_half_life_ms = 100;
    apply("t300", TL_CLICK, 300);
    apply("t100", TL_BROWSE, 100);
    apply("t200", TL_FAVORITE, 200);
    buy_whole_journey("p", 400, "t100 t200 t300");
    const tl_attribution *r = ms_attribution(&ms, 0);
    assert_int_equal(r->touchpoints[0].ts, 100);
    assert_int_equal(r->touchpoints[0].type, TL_BROWSE);
    assert_int_equal(r->touchpoints[2].type, TL_CLICK);
    /* 300, 200, 100 ms before with Ha = 100 ms: 1/8, 1/4, 1/2 -> 1/7, 2/7, 4/7 */
    check_credits(r->credits[TL_M_TIME_DECAY], (double[]){1.0 / 7, 2.0 / 7, 4.0 / 7}, 3,
                  "time_decay");
    check_credits(r->credits[TL_M_FIRST_TOUCH], (double[]){1, 0, 0}, 3, "first_touch");
}

static void test_no_touchpoints(void **state)
{
    (void)state;
    apply("p", TL_PURCHASE, 1000);
    assert_int_equal(ms.n, 0);
    expect_counts(1, 0, 1, 0);
    /* PURCHASE is not a touch type by default: it is not in the journey */
    assert_int_equal(user.n_tp, 0);
    apply("p2", TL_PURCHASE, 2000);
    assert_int_equal(ms.n, 0);
    assert_int_equal(ast.no_touchpoints, 2);
}

/* cfg as the configuration gives it with attribution.touch.types = types. */
static void load_types(const char *types)
{
    tl_config *c = tl_config_new(tl_app_config);
    char err[256] = "";
    assert_int_equal(tl_config_set(c, "attribution.touch.types", types, "-X", err, sizeof(err)), 0);
    if (tl_attr_cfg_load(&cfg, c, err, sizeof(err)) != 0) fail_msg("%s: %s", types, err);
    tl_config_destroy(c);
}

static void test_touch_types(void **state)
{
    (void)state;
    /* the defaults from the configuration */
    memset(&cfg, 0, sizeof(cfg));
    tl_config *c = tl_config_new(tl_app_config);
    char err[256] = "";
    assert_int_equal(tl_attr_cfg_load(&cfg, c, err, sizeof(err)), 0);
    tl_config_destroy(c);
    assert_int_equal(cfg.lookback_ms, 7 * DAY);
    assert_int_equal(cfg.max_touchpoints, 50);
    assert_int_equal(cfg.reset_on_conversion, 1);
    assert_true(cfg.time_decay_half_life_ms == 7.0 * DAY);
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++)
        assert_int_equal(!!(cfg.touch_mask & (1u << t)), t != TL_PURCHASE);

    /* IMPRESSION excluded */
    load_types("BROWSE, CLICK,FAVORITE,add_to_cart");
    assert_int_equal(cfg.touch_mask & (1u << TL_IMPRESSION), 0);
    apply("imp", TL_IMPRESSION, 100);
    apply("clk", TL_CLICK, 200);
    apply("imp2", TL_IMPRESSION, 250);
    apply("atc", TL_ADD_TO_CART, 260);
    apply("p", TL_PURCHASE, 300);
    expect_tps(0, "clk atc");

    /* PURCHASE as a touch type: a purchase is attributed before it joins the journey */
    start_over();
    load_types("CLICK,PURCHASE");
    apply("c1", TL_CLICK, 100);
    apply("p1", TL_PURCHASE, 200);
    expect_tps(0, "c1");
    expect_journey("p1");
    apply("p2", TL_PURCHASE, 300);
    expect_tps(1, "p1");
    assert_int_equal(ms_attribution(&ms, 1)->touchpoints[0].type, TL_PURCHASE);
    expect_journey("p2");

    /* an unknown type is a configuration error naming it */
    c = tl_config_new(tl_app_config);
    assert_int_equal(
        tl_config_set(c, "attribution.touch.types", "CLICK,TAP", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_attr_cfg_load(&cfg, c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TAP"));
    tl_config_destroy(c);
}

/* Touchpoints in the record are copies: removing them from the journey (reset) and
 * reusing the journey's memory does not change what the sink saw. */
static void test_touchpoints_survive_reset(void **state)
{
    (void)state;
    tl_event t = mkev("t-long-event-id-0123456789", TL_CLICK, 10);
    t.item_id = "item-long-0123456789";
    t.category_id = "cat-long-0123456789";
    t.channel = "channel-long-0123456789";
    apply_ev(&t);
    /* a sink that checks the record during the call: the arena copy must be intact */
    apply("p", TL_PURCHASE, 20);
    const tl_attribution *r = ms_attribution(&ms, 0);
    assert_string_equal(r->touchpoints[0].event_id, "t-long-event-id-0123456789");
    assert_string_equal(r->touchpoints[0].item_id, "item-long-0123456789");
    assert_string_equal(r->touchpoints[0].category_id, "cat-long-0123456789");
    assert_string_equal(r->touchpoints[0].channel, "channel-long-0123456789");
    assert_int_equal(user.n_tp, 0);
}

/* The time-decay part of the sentence: "the most" only for a credit that reads larger than
 * every other at the two decimals shown; credits that read the same are said as shared. */
static void test_sentence_time_decay_ties(void **state)
{
    (void)state;
    cfg.time_decay_half_life_ms = 7.0 * DAY;
    const int64_t P = 50 * DAY;
    /* 64, 32 and 16 s before: 0.33333 +- 0.00001 each, the latest the largest */
    apply("a", TL_CLICK, P - 64000);
    apply("b", TL_CLICK, P - 32000);
    apply("c", TL_CLICK, P - 16000);
    apply("p1", TL_PURCHASE, P);
    const tl_attribution *r = ms_attribution(&ms, 0);
    assert_non_null(r);
    assert_true(r->credits[TL_M_TIME_DECAY][2] > r->credits[TL_M_TIME_DECAY][1]);
    if (!strstr(r->explanation, "; time decay gives each the same (0.33)"))
        fail_msg("explanation: %s", r->explanation);
    /* two a second apart, one a day before them: the two share the most */
    apply("d", TL_CLICK, P);
    apply("e", TL_CLICK, P + DAY);
    apply("f", TL_CLICK, P + DAY + 1000);
    apply("p2", TL_PURCHASE, P + DAY + 1000);
    r = ms_attribution(&ms, 1);
    assert_non_null(r);
    /* 2^(-1/7) against 1 and 1: 0.31, 0.34 and 0.34 */
    if (!strstr(r->explanation,
                "; time decay gives the most (0.34 each) to 2 touchpoints, the "
                "latest the click of item item 0 ms before"))
        fail_msg("explanation: %s", r->explanation);
    /* one clearly the most: 1/3 and 2/3 */
    apply("g", TL_CLICK, P + 2 * DAY);
    apply("h", TL_CLICK, P + 9 * DAY);
    apply("p3", TL_PURCHASE, P + 9 * DAY);
    r = ms_attribution(&ms, 2);
    assert_non_null(r);
    if (!strstr(r->explanation, "; time decay gives the most (0.67) to the click of item item"))
        fail_msg("explanation: %s", r->explanation);
}

/* tl_same_2dp against what it stands for: two printf "%.2f" strings compared (for values
 * less than 0.01 apart), on random credits, near pairs, the rounding boundaries and the
 * values it leaves to printf. */
static int same_2dp_printf(double x, double y)
{
    char a[48], b[48];
    snprintf(a, sizeof(a), "%.2f", x);
    snprintf(b, sizeof(b), "%.2f", y);
    return fabs(x - y) < 0.01 && !strcmp(a, b);
}

static void test_same_2dp_matches_printf(void **state)
{
    (void)state;
    uint64_t seed = 11;
    int same = 0;
    for (int i = 0; i < 1000000; i++) {
        double u = (double)(fx_xorshift64(&seed) >> 11) / 9007199254740992.0;
        double v = (double)(fx_xorshift64(&seed) >> 11) / 9007199254740992.0;
        double x = u, y = u + (v - 0.5) * 0.024;
        if (i % 4 == 1) x = (floor(u * 100) + 0.5) / 100;   /* on a boundary */
        if (i % 4 == 2) y = x + (v - 0.5) * 1e-9;            /* nearly equal */
        if (i % 16 == 3) x = -x;
        int want = same_2dp_printf(x, y);
        same += want;
        if (tl_same_2dp(x, y) != want) fail_msg("%.17g %.17g: %d, printf %d", x, y, !want, want);
    }
    assert_true(same > 100000 && same < 900000);   /* both answers were exercised */
    const double pairs[][2] = {{0, -0.0},     {-1e-12, 1e-12},   {0.005, 0.0049999}, {0.125, 0.12},
                               {0.135, 0.13}, {1e7, 1e7 + 1e-3}, {NAN, NAN},         {1, 1}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        assert_int_equal(tl_same_2dp(pairs[i][0], pairs[i][1]),
                         same_2dp_printf(pairs[i][0], pairs[i][1]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_last_first_linear),
        cmocka_unit_test(test_same_2dp_matches_printf),
        cmocka_unit_test(test_rule_position_based),
        cmocka_unit_test(test_rule_time_decay),
        FX_TEST(test_record_fields),
        FX_TEST(test_lookback),
        FX_TEST(test_journey_trim_lookback),
        FX_TEST(test_future_touchpoints_excluded),
        FX_TEST(test_max_touchpoints),
        FX_TEST(test_reset_on_conversion),
        FX_TEST(test_no_reset),
        FX_TEST(test_ties_arrival_order),
        FX_TEST(test_out_of_order_touch),
        FX_TEST(test_no_touchpoints),
        FX_TEST(test_touch_types),
        FX_TEST(test_touchpoints_survive_reset),
        FX_TEST(test_sentence_time_decay_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
