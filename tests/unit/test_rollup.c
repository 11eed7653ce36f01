/*
 * test_rollup.c -- model/rollup.c on hand-computed cases: purchases, touchpoints,
 * conversions and value per channel, per group and per category; day and hour windows;
 * a purchase touching one value twice counts once; Markov credit deltas of the roll-up's dimension only; channel-group
 * rules (order, '*', case, Other and (none)); malformed rules refused with a message;
 * spend joined per channel or group and day, also where nothing was credited; spend
 * lines parsed; totals taking a spend table's spend; the sampling variance of the
 * shapley conversions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/rollup.h"

static const int64_t DAY = 86400000, HOUR = 3600000;
static const int64_t T0 = 1511568000000LL;   /* 2017-11-25 00:00 UTC */

/* A roll-up of dim by window with these channel-group rules; fails the test with the
 * reason when it cannot be made. */
static tl_rollup *rollup(tl_ru_dim dim, tl_ru_window window, const char *groups)
{
    char err[128] = "";
    tl_rollup *r = tl_rollup_new(dim, window, groups, err, sizeof(err));
    if (!r) fail_msg("tl_rollup_new: %s", err);
    return r;
}

/* A Markov credit delta of channel id for the window [start, end): credit now, before
 * the credit it had. */
static tl_credit_delta markov(const char *id, int64_t start, int64_t end, double credit,
                              double before)
{
    return (tl_credit_delta){.window_start = start,
                             .window_end = end,
                             .dim = TL_DIM_CHANNEL,
                             .dim_id = id,
                             .method = "markov",
                             .credit = credit,
                             .credit_before = before};
}

/* A purchase with touchpoints on channels ch[] (NULL: none), categories cat[], one
 * method's credits each for linear and shapley. */
static void add(tl_rollup *r, int64_t ts, double value, int n, const char *const *ch,
                const char *const *cat, const double *linear, const double *shapley)
{
    tl_touchpoint tp[8];
    for (int i = 0; i < n; i++) tp[i] = (tl_touchpoint){.channel = ch[i], .category_id = cat[i]};
    tl_attribution a = {
        .ts = ts, .value = value, .has_value = value > 0, .touchpoints = tp, .n_touchpoints = n};
    a.credits[TL_M_LINEAR] = linear;
    a.has_method[TL_M_LINEAR] = 1;
    if (shapley) {
        a.credits[TL_M_SHAPLEY] = shapley;
        a.has_method[TL_M_SHAPLEY] = 1;
    }
    tl_rollup_add(r, &a);
}

static const tl_rollup_row *find(tl_rollup *r, const char *id, int64_t w)
{
    size_t n;
    const tl_rollup_row *rows = tl_rollup_rows(r, &n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].id, id) && rows[i].window_start == w) return &rows[i];
    return NULL;
}

/* Purchase i of three. */
static void feed_one(tl_rollup *r, int i)
{
    if (i == 0) {
        /* P1, day 0 10:00, value 30: search, email, search (linear 1/3 each; shapley .6 .1 .3) */
        const char *ch1[] = {"search", "Email-Weekly", "search"}, *cat1[] = {"a", "b", "a"};
        const double l1[] = {1.0 / 3, 1.0 / 3, 1.0 / 3}, s1[] = {0.6, 0.1, 0.3};
        add(r, T0 + 10 * HOUR, 30, 3, ch1, cat1, l1, s1);
    } else if (i == 1) {
        /* P2, day 0 10:30, no value: social, no channel (linear .5 .5, no shapley) */
        const char *ch2[] = {"social", NULL}, *cat2[] = {"b", NULL};
        const double l2[] = {0.5, 0.5};
        add(r, T0 + 10 * HOUR + HOUR / 2, 0, 2, ch2, cat2, l2, NULL);
    } else {
        /* P3, day 1 02:00, value 10: search (1) */
        const char *ch3[] = {"search"}, *cat3[] = {"a"};
        const double l3[] = {1};
        add(r, T0 + DAY + 2 * HOUR, 10, 1, ch3, cat3, l3, l3);
    }
}

static void feed(tl_rollup *r)
{
    for (int i = 0; i < 3; i++) feed_one(r, i);
}

/* Partials merged into totals give the rows of one roll-up fed everything: feed() split
 * in its purchases, each into its own roll-up, the changed rows merged into a total; a
 * total set from a row read back replaces, and is not marked changed. */
static int merge_into(void *arg, const tl_rollup_row *row)
{
    tl_rollup_merge(arg, row);
    return 0;
}

static void test_merge(void **st)
{
    (void)st;
    tl_rollup *whole = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    tl_rollup *total = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    tl_rollup *part = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    feed(whole);
    feed_one(part, 0);
    assert_int_equal(tl_rollup_each_changed(part, merge_into, total), 0);
    tl_rollup_clear(part);
    size_t n;
    tl_rollup_rows(part, &n);
    assert_int_equal(n, 0);
    feed_one(part, 1);
    feed_one(part, 2);
    assert_int_equal(tl_rollup_each_changed(part, merge_into, total), 0);
    size_t nw, nt;
    const tl_rollup_row *w = tl_rollup_rows(whole, &nw);
    tl_rollup_rows(total, &nt);
    assert_int_equal(nw, nt);
    for (size_t i = 0; i < nw; i++) {
        const tl_rollup_row *t = find(total, w[i].id, w[i].window_start);
        assert_non_null(t);
        assert_true(t->purchases == w[i].purchases && t->touchpoints == w[i].touchpoints);
        for (int m = 0; m < TL_RU_METHODS; m++) {
            assert_int_equal(t->has[m], w[i].has[m]);
            assert_true(fabs(t->conversions[m] - w[i].conversions[m]) < 1e-12);
            assert_true(fabs(t->value[m] - w[i].value[m]) < 1e-12);
        }
        assert_true(fabs(t->shapley_var - w[i].shapley_var) < 1e-12);
    }
    /* each row is handed over once: a second walk over part finds nothing changed */
    tl_rollup *empty = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    assert_int_equal(tl_rollup_each_changed(part, merge_into, empty), 0);
    tl_rollup_rows(empty, &n);
    assert_int_equal(n, 0);
    tl_rollup_destroy(empty);
    tl_rollup_row x = {.id = "search", .window_start = T0, .purchases = 9, .touchpoints = 9};
    tl_rollup_set(total, &x);
    const tl_rollup_row *s = find(total, "search", T0);
    assert_true(s->purchases == 9 && s->touchpoints == 9 && !s->has[TL_M_LINEAR] && !s->changed);
    tl_rollup_destroy(whole);
    tl_rollup_destroy(total);
    tl_rollup_destroy(part);
}

static void test_channel_all(void **st)
{
    (void)st;
    tl_rollup *r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_ALL, "");
    assert_non_null(r);
    feed(r);
    const tl_rollup_row *s = find(r, "search", TL_RU_ALL);
    assert_non_null(s);
    assert_int_equal(s->purchases, 2); /* P1 once though touched twice, P3 */
    assert_int_equal(s->touchpoints, 3);
    assert_true(fabs(s->conversions[TL_M_LINEAR] - (2.0 / 3 + 1)) < 1e-12);
    assert_true(fabs(s->value[TL_M_LINEAR] - (2.0 / 3 * 30 + 10)) < 1e-12);
    assert_true(fabs(s->conversions[TL_M_SHAPLEY] - (0.9 + 1)) < 1e-12);
    assert_true(fabs(s->value[TL_M_SHAPLEY] - (0.9 * 30 + 10)) < 1e-12);
    assert_int_equal(s->has[TL_M_SHAPLEY], 1);
    assert_int_equal(s->has[TL_M_LAST_TOUCH], 0);
    const tl_rollup_row *none = find(r, "(none)", TL_RU_ALL);
    assert_non_null(none);
    assert_true(fabs(none->conversions[TL_M_LINEAR] - 0.5) < 1e-12);
    assert_int_equal(none->has[TL_M_SHAPLEY], 0);
    /* every purchase's linear credits sum to 1: 3 over all rows */
    size_t n;
    const tl_rollup_row *rows = tl_rollup_rows(r, &n);
    assert_int_equal(n, 4);
    double total = 0;
    for (size_t i = 0; i < n; i++) total += rows[i].conversions[TL_M_LINEAR];
    assert_true(fabs(total - 3) < 1e-12);
    /* sorted by linear conversions: search 1.667, then social and (none) 0.5 (by id), email */
    assert_string_equal(rows[0].id, "search");
    assert_string_equal(rows[1].id, "(none)");
    assert_string_equal(rows[2].id, "social");
    assert_string_equal(rows[3].id, "Email-Weekly");
    /* adding after reading the rows still finds the same rows */
    const tl_credit_delta d = markov("search", T0, T0 + HOUR, 3.5, 1.25);
    tl_rollup_add_credit_delta(r, &d);
    tl_rollup_add_credit_delta(r, &d);
    s = find(r, "search", TL_RU_ALL);
    assert_true(fabs(s->conversions[TL_RU_MARKOV] - 4.5) < 1e-12);
    assert_int_equal(s->purchases, 2);
    tl_rollup_rows(r, &n);
    assert_int_equal(n, 4);
    tl_rollup_destroy(r);
}

static void test_windows_and_categories(void **st)
{
    (void)st;
    tl_rollup *r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    feed(r);
    assert_int_equal(find(r, "search", T0)->purchases, 1);
    assert_int_equal(find(r, "search", T0 + DAY)->purchases, 1);
    assert_null(find(r, "search", TL_RU_ALL));
    tl_rollup_destroy(r);

    r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_HOUR, "");
    feed(r);
    assert_non_null(find(r, "search", T0 + 10 * HOUR));
    assert_non_null(find(r, "social", T0 + 10 * HOUR)); /* 10:30 is in the 10:00 hour */
    assert_non_null(find(r, "search", T0 + DAY + 2 * HOUR));
    tl_rollup_destroy(r);

    r = rollup(TL_RU_CATEGORY, TL_RU_WINDOW_ALL, "");
    feed(r);
    const tl_rollup_row *a = find(r, "a", TL_RU_ALL), *b = find(r, "b", TL_RU_ALL);
    assert_int_equal(a->purchases, 2);
    assert_true(fabs(a->conversions[TL_M_LINEAR] - 5.0 / 3) < 1e-12);
    assert_int_equal(b->purchases, 2);
    assert_true(fabs(b->conversions[TL_M_LINEAR] - (1.0 / 3 + 0.5)) < 1e-12);
    /* a chain over channels is not in a category roll-up; one over categories is */
    tl_credit_delta d = markov("a", T0, 0, 1, 0);
    tl_rollup_add_credit_delta(r, &d);
    assert_int_equal(find(r, "a", TL_RU_ALL)->has[TL_RU_MARKOV], 0);
    d.dim = TL_DIM_CATEGORY;
    tl_rollup_add_credit_delta(r, &d);
    assert_true(fabs(find(r, "a", TL_RU_ALL)->conversions[TL_RU_MARKOV] - 1) < 1e-12);
    tl_rollup_destroy(r);
}

/* By campaign: a purchase's touchpoints' campaigns (none: "(none)", so the rows add up to
 * the purchases); no Markov column and no spend. */
static void test_campaigns(void **st)
{
    (void)st;
    assert_int_equal(tl_ru_dim_parse("campaign"), TL_RU_CAMPAIGN);
    assert_string_equal(tl_ru_dim_name(TL_RU_CAMPAIGN), "campaign");
    tl_rollup *r = rollup(TL_RU_CAMPAIGN, TL_RU_WINDOW_ALL, "");
    /* search-1, (none), search-1 (linear 1/3 each, value 30); then spring alone (value 10) */
    tl_touchpoint tp[3] = {{.channel = "search", .campaign = "search-1"},
                           {.channel = "feed"},
                           {.channel = "search", .campaign = "search-1"}};
    const double l1[] = {1.0 / 3, 1.0 / 3, 1.0 / 3}, l2[] = {1};
    tl_attribution a = {
        .ts = T0, .value = 30, .has_value = 1, .touchpoints = tp, .n_touchpoints = 3};
    a.credits[TL_M_LINEAR] = l1;
    a.has_method[TL_M_LINEAR] = 1;
    tl_rollup_add(r, &a);
    tl_touchpoint one = {.channel = "email", .campaign = "spring"};
    a = (tl_attribution){
        .ts = T0 + DAY, .value = 10, .has_value = 1, .touchpoints = &one, .n_touchpoints = 1};
    a.credits[TL_M_LINEAR] = l2;
    a.has_method[TL_M_LINEAR] = 1;
    tl_rollup_add(r, &a);
    const tl_rollup_row *s1 = find(r, "search-1", TL_RU_ALL), *none = find(r, "(none)", TL_RU_ALL),
                        *sp = find(r, "spring", TL_RU_ALL);
    assert_int_equal(s1->purchases, 1);
    assert_int_equal(s1->touchpoints, 2);
    assert_true(fabs(s1->conversions[TL_M_LINEAR] - 2.0 / 3) < 1e-12);
    assert_true(fabs(s1->value[TL_M_LINEAR] - 20) < 1e-12);
    assert_int_equal(none->touchpoints, 1);
    assert_true(fabs(none->conversions[TL_M_LINEAR] - 1.0 / 3) < 1e-12);
    assert_true(fabs(sp->conversions[TL_M_LINEAR] - 1) < 1e-12);
    /* no chain over campaigns: channel and category deltas leave it alone */
    tl_credit_delta d = markov("search-1", T0, 0, 1, 0);
    tl_rollup_add_credit_delta(r, &d);
    d.dim = TL_DIM_CATEGORY;
    tl_rollup_add_credit_delta(r, &d);
    assert_int_equal(find(r, "search-1", TL_RU_ALL)->has[TL_RU_MARKOV], 0);
    assert_int_equal(tl_rollup_add_spend(r, "search", T0, 5), -1);
    tl_rollup_destroy(r);
}

static void test_groups(void **st)
{
    (void)st;
    char err[128];
    tl_rollup *r = rollup(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL,
                          " Paid = search , *cpc* ; Mail=email*;Everything=*");
    assert_non_null(r);
    assert_string_equal(tl_rollup_group(r, "search"), "Paid");
    assert_string_equal(tl_rollup_group(r, "SEARCH"), "Paid");
    assert_string_equal(tl_rollup_group(r, "google-CPC-brand"), "Paid");
    assert_string_equal(tl_rollup_group(r, "Email-Weekly"), "Mail");
    assert_string_equal(tl_rollup_group(r, "social"), "Everything"); /* the first match */
    assert_string_equal(tl_rollup_group(r, NULL), "(none)");
    feed(r);
    assert_int_equal(find(r, "Paid", TL_RU_ALL)->purchases, 2);
    assert_true(fabs(find(r, "Mail", TL_RU_ALL)->conversions[TL_M_SHAPLEY] - 0.1) < 1e-12);
    const tl_credit_delta d = markov("search", T0, 0, 2, 0.5);
    tl_rollup_add_credit_delta(r, &d);
    assert_true(fabs(find(r, "Paid", TL_RU_ALL)->conversions[TL_RU_MARKOV] - 1.5) < 1e-12);
    tl_rollup_destroy(r);

    r = rollup(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL, "A=x");
    assert_string_equal(tl_rollup_group(r, "y"), "Other");
    assert_string_equal(tl_rollup_group(r, "X"), "A");
    tl_rollup_destroy(r);

    assert_null(
        tl_rollup_new(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL, "Paid Search", err, sizeof(err)));
    assert_non_null(strstr(err, "'Paid Search' is not Group=pattern"));
    assert_null(tl_rollup_new(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL, "A=x,,y", err, sizeof(err)));
    assert_non_null(strstr(err, "group 'A' has an empty pattern"));
    assert_null(tl_rollup_new(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL, "=x", err, sizeof(err)));

    assert_int_equal(tl_ru_dim_parse("channel_group"), TL_RU_CHANNEL_GROUP);
    assert_int_equal(tl_ru_window_parse("hour"), TL_RU_WINDOW_HOUR);
    assert_int_equal(tl_ru_window_parse("week"), -1);
}

static void test_shapley_error(void **st)
{
    (void)st;
    tl_rollup *r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_ALL, "");
    tl_touchpoint tp[3] = {{.channel = "a"}, {.channel = "b"}, {.channel = "a"}};
    const double sh[3] = {0.5, 0.25, 0.25}, se1[3] = {0.01, 0.02, 0.03}, se2[3] = {0.1, 0, 0};
    tl_attribution x = {.touchpoints = tp, .n_touchpoints = 3, .shapley_stderr = se1};
    x.credits[TL_M_SHAPLEY] = sh;
    x.has_method[TL_M_SHAPLEY] = 1;
    tl_rollup_add(r, &x); /* a: (0.01 + 0.03)^2, b: 0.02^2 */
    x.shapley_stderr = se2;
    tl_rollup_add(r, &x); /* a: + 0.1^2 */
    x.shapley_stderr = NULL;
    tl_rollup_add(r, &x); /* exact: nothing */
    assert_true(fabs(find(r, "a", TL_RU_ALL)->shapley_var - (0.04 * 0.04 + 0.01)) < 1e-15);
    assert_true(fabs(find(r, "b", TL_RU_ALL)->shapley_var - 0.0004) < 1e-15);
    const double unknown[3] = {INFINITY, 0, 0};
    x.shapley_stderr = unknown;
    tl_rollup_add(r, &x);
    assert_true(isinf(find(r, "a", TL_RU_ALL)->shapley_var));
    assert_true(isfinite(find(r, "b", TL_RU_ALL)->shapley_var));
    tl_rollup_destroy(r);
}

static int count_row(void *arg, const tl_rollup_row *row)
{
    (void)row;
    ++*(int *)arg;
    return 0;
}

static void test_spend(void **st)
{
    (void)st;
    tl_rollup *r = rollup(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_DAY, "Paid=search,cpc");
    feed(r);
    assert_int_equal(tl_rollup_add_spend(r, "search", T0, 40), 0);
    assert_int_equal(tl_rollup_add_spend(r, "cpc", T0, 2), 0);
    assert_int_equal(tl_rollup_add_spend(r, "tv", T0 + DAY, 7), 0); /* nothing credited */
    const tl_rollup_row *paid = find(r, "Paid", T0), *other = find(r, "Other", T0 + DAY);
    assert_true(paid->has_spend && fabs(paid->spend - 42) < 1e-12);
    assert_int_equal(paid->purchases, 1);
    assert_true(other->has_spend && fabs(other->spend - 7) < 1e-12);
    assert_int_equal(other->purchases, 0);
    assert_int_equal(find(r, "Paid", T0 + DAY)->has_spend, 0);
    tl_rollup_destroy(r);
    r = rollup(TL_RU_CATEGORY, TL_RU_WINDOW_ALL, "");
    assert_int_equal(tl_rollup_add_spend(r, "search", T0, 1), -1);
    tl_rollup_destroy(r);
    r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_HOUR, "");
    assert_int_equal(tl_rollup_add_spend(r, "search", T0, 1), -1);
    tl_rollup_destroy(r);
}

/* A spend line: its day's start (against timegm-free arithmetic: 2017-11-25 is T0), its
 * channel and amount; each malformed kind refused with its reason. */
static void test_spend_parse(void **st)
{
    (void)st;
    int64_t day = 0;
    double v = 0;
    const char *ch = NULL;
    char ok[] = "2017-11-25,search,1250.50\r\n";
    assert_null(tl_rollup_spend_parse(ok, &day, &ch, &v));
    assert_true(day == T0 && v == 1250.5);
    assert_string_equal(ch, "search");
    char leap[] = "2000-02-29,tv,0", epoch[] = "1970-01-01,tv,1";
    assert_null(tl_rollup_spend_parse(leap, &day, &ch, &v));
    assert_true(day == 951782400000LL); /* date -u -d 2000-02-29 +%s */
    assert_null(tl_rollup_spend_parse(epoch, &day, &ch, &v));
    assert_true(day == 0);
    static const char *const bad[][2] = {
        {"2017-11-25,search", "not three fields"},
        {"2017-11-25,search,1,2", "not three fields"},
        {"2017-11-31,search,1", "the date is not YYYY-MM-DD"},
        {"1900-02-29,search,1", "the date is not YYYY-MM-DD"},
        {"2017-1-25,search,1", "the date is not YYYY-MM-DD"},
        {"2017/11/25,search,1", "the date is not YYYY-MM-DD"},
        {"2017-11-25,,1", "the channel is empty"},
        {"2017-11-25,search,-1", "the spend is not a number at least 0"},
        {"2017-11-25,search,1e999", "the spend is not a number at least 0"},
        {"2017-11-25,search,12abc", "the spend is not a number at least 0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s", bad[i][0]);
        const char *why = tl_rollup_spend_parse(line, &day, &ch, &v);
        if (!why || strcmp(why, bad[i][1])) fail_msg("%s: %s", bad[i][0], why ? why : "accepted");
    }
}

/* Totals take the spend table's spend (set, not added) for their changed rows only; a
 * touched row with no credit is made; rows the table lacks keep theirs; merged rows keep
 * the later window's Markov interval. */
static void test_join_spend(void **st)
{
    (void)st;
    tl_rollup *t = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    tl_rollup *sp = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_DAY, "");
    feed(t);
    assert_int_equal(tl_rollup_add_spend(sp, "search", T0, 40), 0);
    assert_int_equal(tl_rollup_add_spend(sp, "search", T0, 2), 0);
    assert_int_equal(tl_rollup_add_spend(sp, "tv", T0, 7), 0);
    assert_true(tl_rollup_find(sp, "search", T0)->spend == 42);
    assert_null(tl_rollup_find(sp, "search", T0 + DAY));
    int changed = 0;
    tl_rollup_each_changed(t, count_row, &changed); /* nothing marked after this */
    tl_rollup_touch(t, "tv", T0);
    tl_rollup_join_spend(t, sp);
    tl_rollup_join_spend(t, sp); /* set, not added */
    assert_true(tl_rollup_find(t, "tv", T0)->has_spend && tl_rollup_find(t, "tv", T0)->spend == 7);
    assert_int_equal(tl_rollup_find(t, "tv", T0)->purchases, 0);
    assert_false(tl_rollup_find(t, "search", T0)->has_spend); /* not changed */
    /* a merged row's Markov interval is the later window's, whatever the order */
    tl_rollup_row late = {.id = "search",
                          .window_start = T0,
                          .markov_lo = 3,
                          .markov_hi = 4,
                          .markov_level = 0.9,
                          .markov_at = T0 + DAY,
                          .has_markov_interval = 1};
    tl_rollup_row early = late;
    early.markov_lo = 1;
    early.markov_at = T0 + HOUR;
    tl_rollup_merge(t, &late);
    tl_rollup_merge(t, &early);
    assert_true(tl_rollup_find(t, "search", T0)->markov_lo == 3);
    tl_rollup_touch(t, "search", T0);
    tl_rollup_join_spend(t, sp);
    assert_true(tl_rollup_find(t, "search", T0)->spend == 42);
    assert_int_equal(tl_rollup_find(t, "search", T0)->purchases, 1);
    tl_rollup_destroy(t);
    tl_rollup_destroy(sp);
}

/* The Markov interval of a row is the latest window's, whatever order the deltas come in;
 * a delta without one leaves it; channel groups keep none. */
static void test_markov_interval(void **st)
{
    (void)st;
    tl_rollup *r = rollup(TL_RU_CHANNEL, TL_RU_WINDOW_ALL, "");
    tl_credit_delta d = markov("search", T0 + HOUR, T0 + 2 * HOUR, 3, 1);
    d.credit_lo = 2.5;
    d.credit_hi = 3.5;
    d.interval_level = 0.9;
    d.has_interval = 1;
    tl_rollup_add_credit_delta(r, &d);
    tl_credit_delta older = d; /* an earlier window, read after */
    older.window_start = T0;
    older.window_end = T0 + HOUR;
    older.credit = 1;
    older.credit_before = 0;
    older.credit_lo = 0.5;
    older.credit_hi = 1.5;
    tl_rollup_add_credit_delta(r, &older);
    tl_credit_delta none = d; /* a later one without an interval */
    none.window_start = T0 + 2 * HOUR;
    none.window_end = T0 + 3 * HOUR;
    none.has_interval = 0;
    none.credit_before = 3;
    tl_rollup_add_credit_delta(r, &none);
    const tl_rollup_row *x = find(r, "search", TL_RU_ALL);
    assert_true(fabs(x->conversions[TL_RU_MARKOV] - 3) < 1e-12);
    assert_int_equal(x->has_markov_interval, 1);
    assert_true(x->markov_lo == 2.5 && x->markov_hi == 3.5 && x->markov_level == 0.9);
    assert_int_equal(x->markov_at, T0 + 2 * HOUR);
    tl_rollup_destroy(r);

    r = rollup(TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_ALL, "Paid=search");
    tl_rollup_add_credit_delta(r, &d);
    assert_int_equal(find(r, "Paid", TL_RU_ALL)->has_markov_interval, 0);
    tl_rollup_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_all),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_windows_and_categories),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_campaigns),
        cmocka_unit_test(test_spend),
        cmocka_unit_test(test_spend_parse),
        cmocka_unit_test(test_join_spend),
        cmocka_unit_test(test_shapley_error),
        cmocka_unit_test(test_markov_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
