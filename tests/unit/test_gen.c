/*
 * test_gen.c -- the synthetic generator: determinism, funnel rates, time order, Zipf
 * shares, session structure, and the CSV -> file source round trip.
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
#include <unistd.h>

#include "lib/log.h"
#include "engine/source.h"
#include "lib/util.h"
#include "ingest/file_source.h"
#include "ingest/gen.h"
#include "ingest/gen_truth.h"

/* Writes the CSV of p into memory; the caller frees *out. */
static size_t gen_csv_mem(const tl_gen_params *p, char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    assert_non_null(f);
    assert_int_equal(tl_gen_write_csv(p, f), 0);
    fclose(f);
    return len;
}

/* The defaults but for the size of the run and of its world. */
static void world_params(tl_gen_params *p, uint64_t events, uint32_t users, uint32_t items,
                         uint32_t categories)
{
    tl_gen_params_default(p);
    p->n_events = events;
    p->n_users = users;
    p->n_items = items;
    p->n_categories = categories;
}

static void small_params(tl_gen_params *p) { world_params(p, 20000, 2000, 5000, 100); }

/* A generator source over the small world making n_events (0: endless); its parameters in
 * *p. */
static tl_source *small_source(tl_gen_params *p, uint64_t n_events)
{
    small_params(p);
    p->n_events = n_events;
    tl_source *src = tl_gen_source_new(p);
    assert_non_null(src);
    return src;
}

static void test_determinism(void **state)
{
    (void)state;
    tl_gen_params p;
    char *a, *b, *c;
    small_params(&p);
    p.propensity = 1;
    size_t la = gen_csv_mem(&p, &a);
    size_t lb = gen_csv_mem(&p, &b);
    p.seed = 43;
    size_t lc = gen_csv_mem(&p, &c);
    assert_true(la > 20000 * 20);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_true(la != lc || memcmp(a, c, la) != 0);
    /* header and first row look right */
    const char *head = "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,"
                       "value,propensity\ng1,u";
    assert_true(strncmp(a, head, strlen(head)) == 0);
    free(a);
    free(b);
    free(c);
}

/* Statistics over a generator run, gathered through the source interface. */
typedef struct gen_stats {
    uint64_t n, by_type[TL_EVENT_TYPE_COUNT];
    uint64_t top_cat;          /* events in category "c1" */
    uint64_t order_violations; /* ts decreasing overall */
    uint64_t user_violations;  /* ts decreasing per user */
    uint64_t id_mismatch;      /* event_id != "g<offset>" */
    uint64_t dwell_wrong, value_wrong, chan_null, prop_bad;
    uint64_t gaps_short, gaps_long, gaps;   /* per-user gaps: < 5 min, > 30 min */
    int64_t first_ts, last_ts;
} gen_stats;

static void run_gen(const tl_gen_params *p, gen_stats *st)
{
    tl_source *src = tl_gen_source_new(p);
    tl_batch b;
    int64_t *last = tl_xcalloc(p->n_users + 1, sizeof *last);
    int64_t prev = INT64_MIN;
    char idbuf[32];
    int rc;

    assert_non_null(src);
    memset(st, 0, sizeof *st);
    for (uint32_t u = 0; u <= p->n_users; u++) last[u] = INT64_MIN;
    tl_batch_init(&b);
    do {
        rc = src->poll(src->ctx, &b, 4096, 0);
        assert_true(rc == TL_SRC_OK || rc == TL_SRC_EOF);
        for (int i = 0; i < b.n; i++) {
            const tl_event *ev = &b.events[i];
            st->n++;
            st->by_type[ev->type]++;
            if (ev->category_id && strcmp(ev->category_id, "c1") == 0) st->top_cat++;
            if (ev->ts < prev) st->order_violations++;
            prev = ev->ts;
            if (st->n == 1) st->first_ts = ev->ts;
            st->last_ts = ev->ts;
            unsigned long u = strtoul(ev->user_id + 1, NULL, 10);
            assert_true(ev->user_id[0] == 'u' && u >= 1 && u <= p->n_users);
            if (last[u] != INT64_MIN) {
                int64_t gap = ev->ts - last[u];
                if (gap < 0) st->user_violations++;
                st->gaps++;
                if (gap < 5 * 60000) st->gaps_short++;
                if (gap > 30 * 60000) st->gaps_long++;
            }
            last[u] = ev->ts;
            snprintf(idbuf, sizeof idbuf, "g%lld", (long long)ev->offset);
            if (strcmp(idbuf, ev->event_id) != 0 || (uint64_t)ev->offset != st->n)
                st->id_mismatch++;
            if (ev->has_dwell != (ev->type == TL_BROWSE) || (ev->has_dwell && ev->dwell_ms <= 0))
                st->dwell_wrong++;
            if (ev->has_value != (ev->type == TL_PURCHASE) || (ev->has_value && ev->value <= 0))
                st->value_wrong++;
            if (!ev->channel) st->chan_null++;
            if (ev->has_propensity && !(ev->propensity > 0 && ev->propensity < 1)) st->prop_bad++;
        }
    } while (rc != TL_SRC_EOF);
    tl_batch_destroy(&b);
    free(last);
    tl_gen_source_destroy(src);
}

/* What every run must be: in time order overall and per user, ids "g<offset>", dwell on
 * BROWSE alone and value on PURCHASE alone (both positive), propensities in (0, 1). */
static void expect_well_formed(const gen_stats *st)
{
    assert_int_equal(st->order_violations, 0);
    assert_int_equal(st->user_violations, 0);
    assert_int_equal(st->id_mismatch, 0);
    assert_int_equal(st->dwell_wrong, 0);
    assert_int_equal(st->value_wrong, 0);
    assert_int_equal(st->prop_bad, 0);
}

static void assert_rate(uint64_t count, uint64_t n, double target, const char *what)
{
    double r = (double)count / (double)n;
    print_message("  %-12s %.4f (target %.4f)\n", what, r, target);
    assert_true(fabs(r - target) <= 0.01);
}

/* 1M events: funnel rates, time order, Zipf share of the top category, ids. */
static void test_shape_1m(void **state)
{
    (void)state;
    tl_gen_params p;
    gen_stats st;
    world_params(&p, 1000000, 100000, 50000, 1000);
    int64_t t0 = tl_mono_ns();
    run_gen(&p, &st);
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    print_message("  generated %llu events in %.2f s (%.2f M events/s through the source)\n",
                  (unsigned long long)st.n, secs, (double)st.n / secs / 1e6);

    assert_int_equal(st.n, 1000000);
    assert_rate(st.by_type[TL_BROWSE], st.n, 0.89, "BROWSE");
    assert_rate(st.by_type[TL_ADD_TO_CART], st.n, 0.055, "ADD_TO_CART");
    assert_rate(st.by_type[TL_FAVORITE], st.n, 0.03, "FAVORITE");
    assert_rate(st.by_type[TL_PURCHASE], st.n, 0.023, "PURCHASE");
    assert_int_equal(st.by_type[TL_IMPRESSION], 0);
    assert_int_equal(st.by_type[TL_CLICK], 0);

    /* Zipf: P(rank 1) = 1 / H(n, s), H(n, s) = sum_{k=1..n} k^-s. */
    double h = 0;
    for (uint32_t k = 1; k <= p.n_categories; k++) h += pow((double)k, -p.zipf_s);
    double expect = 1.0 / h, got = (double)st.top_cat / (double)st.n;
    print_message("  top category share %.4f, Zipf(s=%.2f, n=%u) predicts %.4f\n", got, p.zipf_s,
                  p.n_categories, expect);
    assert_true(fabs(got - expect) <= 0.1 * expect);

    expect_well_formed(&st);
    assert_int_equal(st.chan_null, 0);
    assert_true(st.first_ts >= p.start_ts);

    /* Sessions: most per-user gaps are seconds to minutes, some are hours. */
    double short_frac = (double)st.gaps_short / (double)st.gaps;
    double long_frac = (double)st.gaps_long / (double)st.gaps;
    print_message("  per-user gaps: %.3f under 5 min, %.3f over 30 min; span %.1f days\n",
                  short_frac, long_frac, (double)(st.last_ts - st.first_ts) / 86400000.0);
    assert_true(short_frac > 0.7);
    assert_true(long_frac > 0.03);
    /* The span is roughly span_ms. */
    double span = (double)(st.last_ts - st.first_ts);
    assert_true(span > 0.5 * (double)p.span_ms && span < 2.0 * (double)p.span_ms);
}

/* Purchases are mostly of an item the same user browsed or carted before. */
static void test_purchases_follow_views(void **state)
{
    (void)state;
    tl_gen_params p;
    tl_source *src = small_source(&p, 200000);
    tl_batch b;
    int rc;
    /* open-addressing set of (user, item) pairs seen by browse/cart/favorite */
    size_t cap = 1u << 19, used = 0;
    uint64_t *set = tl_xcalloc(cap, sizeof *set);
    uint64_t buys = 0, buys_seen = 0;
    /* price per item must be constant */
    double *price = tl_xcalloc(p.n_items + 1, sizeof *price);

    tl_batch_init(&b);
    do {
        rc = src->poll(src->ctx, &b, 1000, 0);
        for (int i = 0; i < b.n; i++) {
            const tl_event *ev = &b.events[i];
            uint64_t u = strtoull(ev->user_id + 1, NULL, 10);
            uint64_t it = strtoull(ev->item_id + 1, NULL, 10);
            uint64_t key = (u << 32 | it) + 1;
            size_t pos = (size_t)(tl_hash64(&key, sizeof key) & (cap - 1));
            while (set[pos] && set[pos] != key) pos = (pos + 1) & (cap - 1);
            if (ev->type == TL_PURCHASE) {
                buys++;
                if (set[pos] == key) buys_seen++;
                if (price[it] == 0) price[it] = ev->value;
                assert_true(price[it] == ev->value);
            } else if (!set[pos]) {
                set[pos] = key;
                assert_true(++used < cap / 2);
            }
        }
    } while (rc == TL_SRC_OK);
    assert_int_equal(rc, TL_SRC_EOF);
    double frac = (double)buys_seen / (double)buys;
    print_message("  %.3f of %llu purchases follow a view of the item\n", frac,
                  (unsigned long long)buys);
    assert_true(frac > 0.7);
    tl_batch_destroy(&b);
    free(set);
    free(price);
    tl_gen_source_destroy(src);
}

static void test_options(void **state)
{
    (void)state;
    tl_gen_params p;
    gen_stats st;
    small_params(&p);
    p.n_channels = 0;
    p.impressions = 1;
    p.propensity = 1;
    run_gen(&p, &st);
    assert_int_equal(st.n, p.n_events);
    assert_int_equal(st.chan_null, st.n);
    assert_true(st.by_type[TL_IMPRESSION] > st.n / 5);
    assert_true(st.by_type[TL_CLICK] > st.n / 50);
    assert_true(st.by_type[TL_PURCHASE] > 0);
    expect_well_formed(&st);

    /* many channels: names beyond the built-in list */
    small_params(&p);
    p.n_channels = 12;
    p.n_events = 3000;
    char *csv;
    size_t len = gen_csv_mem(&p, &csv);
    assert_true(len > 0);
    assert_non_null(strstr(csv, ",search,"));
    free(csv);

    /* tiny worlds work */
    world_params(&p, 500, 1, 1, 1);
    p.session_events = 1;
    run_gen(&p, &st);
    assert_int_equal(st.n, 500);
    expect_well_formed(&st);
}

static void test_endless(void **state)
{
    (void)state;
    tl_gen_params p;
    tl_source *src = small_source(&p, 0);
    tl_batch b;
    tl_batch_init(&b);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(src->poll(src->ctx, &b, 5000, 0), TL_SRC_OK);
        assert_int_equal(b.n, 5000);
    }
    assert_string_equal(b.events[b.n - 1].event_id, "g100000");
    tl_batch_destroy(&b);
    tl_gen_source_destroy(src);
}

static void test_params_check(void **state)
{
    (void)state;
    tl_gen_params p;
    char err[160];
    tl_gen_params_default(&p);
    assert_int_equal(tl_gen_params_check(&p, err, sizeof err), 0);
    p.n_items = 10;
    p.n_categories = 20;
    assert_int_equal(tl_gen_params_check(&p, err, sizeof err), -1);
    assert_non_null(strstr(err, "n_items"));
    assert_null(tl_gen_source_new(&p));
    tl_gen_params_default(&p);
    p.n_users = 0;
    assert_int_equal(tl_gen_params_check(&p, err, sizeof err), -1);
    assert_non_null(strstr(err, "n_users"));
    tl_gen_params_default(&p);
    p.zipf_s = 0;
    assert_int_equal(tl_gen_params_check(&p, err, sizeof err), -1);
    tl_gen_params_default(&p);
    p.session_events = 0.5;
    assert_int_equal(tl_gen_params_check(&p, err, sizeof err), -1);
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(tl_gen_write_csv(&p, f), -1);
    fclose(f);
}

static int same_str(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Polls a and b for up to max events each: both say the same and give as many events,
 * pairwise with the same ids, type and time. */
static int poll_both(tl_source *a, tl_batch *ba, tl_source *b, tl_batch *bb, int max)
{
    int ra = a->poll(a->ctx, ba, max, 0), rb = b->poll(b->ctx, bb, max, 0);
    assert_int_equal(ra, rb);
    assert_int_equal(ba->n, bb->n);
    for (int i = 0; i < ba->n; i++) {
        const tl_event *x = &ba->events[i], *y = &bb->events[i];
        assert_string_equal(x->event_id, y->event_id);
        assert_string_equal(x->user_id, y->user_id);
        assert_string_equal(x->item_id, y->item_id);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->ts, y->ts);
    }
    return ra;
}

/* CSV written by tl_gen_write_csv, read back by the file source, equals the events the
 * generator source produces. */
static void round_trip(tl_gen_params *p)
{
    char path[] = "/tmp/tally_gen_rt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(tl_gen_write_csv(p, f), 0);
    fclose(f);

    char err[256];
    tl_source *fs = tl_file_source_new(path, TL_FMT_CANONICAL, 1, err, sizeof err);
    assert_non_null(fs);
    tl_source *gs = tl_gen_source_new(p);
    assert_non_null(gs);
    tl_batch fb, gb;
    tl_batch_init(&fb);
    tl_batch_init(&gb);
    uint64_t n = 0;
    int frc;
    do {
        frc = poll_both(fs, &fb, gs, &gb, 777);
        for (int i = 0; i < fb.n; i++) {
            const tl_event *x = &fb.events[i], *y = &gb.events[i];
            assert_true(same_str(x->category_id, y->category_id));
            assert_true(same_str(x->channel, y->channel));
            assert_true(same_str(x->campaign, y->campaign));
            assert_int_equal(x->has_dwell, y->has_dwell);
            assert_int_equal(x->dwell_ms, y->dwell_ms);
            assert_int_equal(x->has_value, y->has_value);
            assert_true(x->value == y->value);
            assert_int_equal(x->has_propensity, y->has_propensity);
            assert_true(x->propensity == y->propensity);
            assert_int_equal(x->offset, y->offset);
            assert_int_equal(x->partition, y->partition);
            n++;
        }
    } while (frc == TL_SRC_OK);
    assert_int_equal(frc, TL_SRC_EOF);
    assert_int_equal(n, p->n_events);
    uint64_t rows, bad;
    tl_file_source_stats(fs, &rows, &bad);
    assert_int_equal(rows, p->n_events);
    assert_int_equal(bad, 0);
    tl_batch_destroy(&fb);
    tl_batch_destroy(&gb);
    tl_file_source_destroy(fs);
    tl_gen_source_destroy(gs);
    unlink(path);
}

static void test_round_trip(void **state)
{
    (void)state;
    tl_gen_params p;
    small_params(&p);
    p.n_events = 100000;       /* several MiB: crosses read-buffer boundaries */
    p.propensity = 1;
    round_trip(&p);
    small_params(&p);
    p.n_channels = 0;
    p.impressions = 1;
    round_trip(&p);
    small_params(&p);
    p.impressions = 1;
    p.propensity = 1;
    p.n_campaigns = 3;
    round_trip(&p);
}

/* Campaigns: the same events as without, plus the campaign; "<channel>-<k>" with k in
 * 1..n, one per session, on impressions and clicks (or, without impressions, on each
 * session's first event, a BROWSE). */
static void test_campaigns(void **state)
{
    (void)state;
    for (int imp = 0; imp < 2; imp++) {
        tl_gen_params p;
        small_params(&p);
        p.n_events = 20000;
        p.impressions = imp;
        tl_source *a = tl_gen_source_new(&p);
        p.n_campaigns = 3;
        tl_source *b = tl_gen_source_new(&p);
        tl_batch ba, bb;
        tl_batch_init(&ba);
        tl_batch_init(&bb);
        int ra, with = 0, types[TL_EVENT_TYPE_COUNT] = {0};
        do {
            ra = poll_both(a, &ba, b, &bb, 1000);
            for (int i = 0; i < ba.n; i++) {
                const tl_event *x = &ba.events[i], *y = &bb.events[i];
                assert_null(x->campaign);
                if (!y->campaign) continue;
                with++;
                types[y->type]++;
                size_t l = strlen(y->channel);
                assert_memory_equal(y->campaign, y->channel, l);
                assert_true(y->campaign[l] == '-' && y->campaign[l + 1] >= '1' &&
                            y->campaign[l + 1] <= '3' && !y->campaign[l + 2]);
            }
        } while (ra == TL_SRC_OK);
        if (imp) {
            assert_true(types[TL_IMPRESSION] > 0 && types[TL_CLICK] > 0);
            assert_int_equal(with, types[TL_IMPRESSION] + types[TL_CLICK]);
        } else {
            assert_true(with > 1000 && with == types[TL_BROWSE]);   /* a session's first */
        }
        tl_batch_destroy(&ba);
        tl_batch_destroy(&bb);
        tl_gen_source_destroy(a);
        tl_gen_source_destroy(b);
    }
}

/* --order FIRST,THEN,EFFECT of the ground-truth generator: what it sets, and what it
 * refuses with a message naming the problem (and leaves the parameters as they were). */
static void test_truth_order(void **state)
{
    (void)state;
    tl_truth_params p;
    char err[256];
    tl_truth_params_default(&p);
    assert_int_equal(p.order_first, -1);
    assert_int_equal(tl_truth_params_check(&p, err, sizeof(err)), 0);
    assert_int_equal(tl_truth_params_order(&p, "display,search,0.5", err, sizeof(err)), 0);
    assert_string_equal(p.ch[p.order_first].name, "display");
    assert_string_equal(p.ch[p.order_then].name, "search");
    assert_true(p.order_effect == 0.5);
    assert_int_equal(tl_truth_params_check(&p, err, sizeof(err)), 0);
    tl_truth_params_null(&p);
    assert_true(p.order_effect == 0);

    static const struct {
        const char *spec, *says;
    } bad[] = {
        {"display,search", "expected FIRST,THEN,EFFECT"},
        {"display,search,", "expected FIRST,THEN,EFFECT"},
        {"display,search,0.5x", "expected FIRST,THEN,EFFECT"},
        {"display,search,21", "expected FIRST,THEN,EFFECT"},
        {"display,search,nan", "expected FIRST,THEN,EFFECT"},
        {"", "expected FIRST,THEN,EFFECT"},
        {"tv,search,1", "'tv' is not a channel"},
        {"display,,1", "'' is not a channel"},
        {"display,searches,1", "'searches' is not a channel"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tl_truth_params_default(&p);
        err[0] = 0;
        if (tl_truth_params_order(&p, bad[i].spec, err, sizeof(err)) != -1 ||
            !strstr(err, bad[i].says) || p.order_first != -1)
            fail_msg("order '%s': accepted or said '%s'", bad[i].spec, err);
    }
    tl_truth_params_default(&p);
    p.order_first = 2; /* a first without a then */
    assert_int_equal(tl_truth_params_check(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "order"));
}

int main(void)
{
    tl_log_level = TL_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_shape_1m),
        cmocka_unit_test(test_purchases_follow_views),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_endless),
        cmocka_unit_test(test_params_check),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_campaigns),
        cmocka_unit_test(test_truth_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
