/*
 * test_features.c -- features/interest.c against docs/interests.md: the worked example
 * (also through a RocksDB store, across a close and reopen), every field of the
 * delta on a hand-computed three-event case with the default parameters, order
 * independence over all permutations and random shuffles, rank (strictly greater,
 * ties not counted, other dimensions ignored, entries read at as_of), epsilon
 * dropping (same dimension only, dropped entries not ranked), the dimensions switched
 * on and off, and late events.
 *
 * Expected numbers are written out by hand or computed here from the documented
 * formulas (pow(2, -dt/H) sums), never by calling the stage a second way.
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

#include "app/config.h"
#include "lib/config.h"
#include "engine/state.h"
#include "features/interest.h"
#include "fixtures.h"
#include "memsink.h"

/* ---- fixture -------------------------------------------------------------------- */

static memsink ms;
static tl_arena arena;
static tl_user user;
static tl_features_stats fst;

static int setup(void **state)
{
    (void)state;
    fx_stage_open(&ms, &arena, &user, "u1");
    memset(&fst, 0, sizeof(fst));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_stage_close(&ms, &arena, &user);
    return 0;
}

static tl_event mkev(const char *id, const char *cat, const char *item, const char *ch,
                     tl_event_type type, int64_t ts)
{
    return fx_event(id, "u1", item, cat, ch, type, ts);
}

static void apply_ok(const tl_features_cfg *fc, tl_user *u, const tl_event *ev)
{
    assert_int_equal(tl_features_apply(fc, u, ev, &arena, &ms.sink, &fst), TL_OK);
}

/* |got - want| <= 1e-12 * |want| (or 1e-15 absolute when want is 0). */
static void check_rel(double got, double want, const char *what)
{
    double tol = want == 0 ? 1e-15 : 1e-12 * fabs(want);
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.17g, expected %.17g", what, got, want);
}

static void check_delta(const tl_interest_delta *d, const char *dim_id, const char *event_id,
                        int64_t ts, double wb, double dp, double ep, double wa, double f, double h,
                        int rank)
{
    assert_non_null(d);
    assert_string_equal(d->user_id, "u1");
    assert_string_equal(d->dim_id, dim_id);
    assert_string_equal(d->event_id, event_id);
    assert_int_equal(d->ts, ts);
    check_rel(d->weight_before, wb, "weight_before");
    check_rel(d->decay_part, dp, "decay_part");
    check_rel(d->evidence_part, ep, "evidence_part");
    check_rel(d->weight_after, wa, "weight_after");
    check_rel(d->f, f, "f");
    check_rel(d->h, h, "h");
    assert_int_equal(d->rank, rank);
    assert_non_null(d->explanation);
}

/* ---- configuration ----------------------------------------------------------------- */

static void test_cfg_defaults(void **state)
{
    (void)state;
    tl_config *c = tl_config_new(tl_app_config);
    tl_features_cfg fc;
    char err[256] = "";
    assert_int_equal(tl_features_cfg_load(&fc, c, err, sizeof(err)), 0);
    assert_true(fc.half_life_ms == 86400000.0);
    assert_true(fc.alpha == 0.5);
    assert_true(fc.beta == 0.5);
    assert_true(fc.epsilon == 1e-6);
    const double heat[TL_EVENT_TYPE_COUNT] = {0.1, 1, 2, 3, 4, 5};
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++) assert_true(fc.heat[t] == heat[t]);
    assert_int_equal(fc.dims[TL_DIM_CATEGORY], 1);
    assert_int_equal(fc.dims[TL_DIM_ITEM], 0);
    assert_int_equal(fc.dims[TL_DIM_CHANNEL], 0);
    assert_int_equal(fc.max_interests, 1000);

    assert_int_equal(tl_config_set(c, "features.dims", "item,bogus", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_features_cfg_load(&fc, c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bogus"));
    tl_config_destroy(c);
}

/* ---- the worked example --------------------------------------------------------------- */

static void test_worked_example(void **state)
{
    (void)state;
    tl_features_cfg fc = fx_features_cfg(1800000, 1, 0);
    tl_event e1 = mkev("e1", "c1", "i1", NULL, TL_CLICK, 0);
    tl_event e2 = mkev("e2", "c1", "i1", NULL, TL_CLICK, 1800000);
    apply_ok(&fc, &user, &e1);
    apply_ok(&fc, &user, &e2);
    assert_int_equal(ms.n, 2);
    /* heat of a CLICK is 2: h = 2, then 2*0.5 + 2 = 3 */
    check_delta(ms_interest(&ms, 0), "c1", "e1", 0, 0, 0, 1, 1, 1, 2, 1);
    check_delta(ms_interest(&ms, 1), "c1", "e2", 1800000, 1, -0.5, 1, 1.5, 1.5, 3, 1);
    assert_int_equal(ms_interest(&ms, 0)->dim, TL_DIM_CATEGORY);

    tl_interest *e = tl_user_find_interest(&user, TL_DIM_CATEGORY, "c1");
    assert_non_null(e);
    assert_int_equal(e->t, 1800000);
    check_rel(e->f, 1.5, "stored f");
    check_rel(e->h, 3, "stored h");
    /* read at 3600 s: one half-life later */
    check_rel(e->f * pow(2, -(3600000.0 - (double)e->t) / 1800000.0), 0.75, "f at 3600 s");
    assert_int_equal(user.n_ent, 1);
    assert_int_equal(fst.deltas, 2);
    assert_int_equal(fst.dropped, 0);
}

/* The same example with the record kept in a store between the two events. */
static void test_worked_example_store(void **state)
{
    (void)state;
    char dir[64];
    assert_int_equal(fx_mkdtemp(dir, sizeof(dir), "tally_feat"), 0);
    char err[512] = "";
    tl_features_cfg fc = fx_features_cfg(1800000, 1, 0);

    tl_store *s = tl_store_open(dir, 3, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    tl_event e1 = mkev("e1", "c1", "i1", NULL, TL_BROWSE, 0);
    apply_ok(&fc, tl_store_get(s, "u1"), &e1);
    assert_int_equal(tl_store_flush(s, 11, err, sizeof(err)), 0);
    tl_store_close(s);

    s = tl_store_open(dir, 3, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(tl_store_next_offset(s), 11);
    tl_event e2 = mkev("e2", "c1", "i1", NULL, TL_BROWSE, 1800000);
    tl_user *u = tl_store_get(s, "u1");
    apply_ok(&fc, u, &e2);
    check_delta(ms_interest(&ms, 1), "c1", "e2", 1800000, 1, -0.5, 1, 1.5, 1.5, 1.5, 1);
    assert_int_equal(tl_store_flush(s, 12, err, sizeof(err)), 0);
    tl_store_close(s);

    s = tl_store_open(dir, 3, 1 << 20, err, sizeof(err));
    assert_non_null(s);
    u = tl_store_peek(s, "u1");
    assert_non_null(u);
    tl_interest *e = tl_user_find_interest(u, TL_DIM_CATEGORY, "c1");
    assert_non_null(e);
    check_rel(e->f * pow(2, -(3600000.0 - (double)e->t) / 1800000.0), 0.75, "f at 3600 s");
    tl_store_close(s);
    assert_int_equal(fx_rm_rf(dir), 0);
}

/* ---- every field, default alpha/beta/heat ---------------------------------------------- */

static void test_delta_fields_defaults(void **state)
{
    (void)state;
    tl_config *c = tl_config_new(tl_app_config);
    tl_features_cfg fc;
    char err[256];
    assert_int_equal(tl_features_cfg_load(&fc, c, err, sizeof(err)), 0);
    tl_config_destroy(c);
    const int64_t DAY = 86400000;

    /* CLICK at 0: new entry, evidence 0.5*1 + 0.5*2 = 1.5 */
    tl_event e1 = mkev("e1", "c", "i", NULL, TL_CLICK, 0);
    /* ADD_TO_CART one day later: stored (1, 2) halves to (0.5, 1); w 1.5 -> 0.75;
     * evidence 0.5 + 0.5*4 = 2.5; f = 1.5, h = 5, w = 3.25 */
    tl_event e2 = mkev("e2", "c", "i", NULL, TL_ADD_TO_CART, DAY);
    /* BROWSE at 12 h, late: as_of stays at 1 day, no decay of the stored part;
     * evidence (0.5 + 0.5*1) * 2^-0.5 = 0.70710678118654752 */
    tl_event e3 = mkev("e3", "c", "i", NULL, TL_BROWSE, DAY / 2);
    apply_ok(&fc, &user, &e1);
    apply_ok(&fc, &user, &e2);
    apply_ok(&fc, &user, &e3);
    assert_int_equal(ms.n, 3);
    const double r = 0.70710678118654752440;
    check_delta(ms_interest(&ms, 0), "c", "e1", 0, 0, 0, 1.5, 1.5, 1, 2, 1);
    check_delta(ms_interest(&ms, 1), "c", "e2", DAY, 1.5, -0.75, 2.5, 3.25, 1.5, 5, 1);
    check_delta(ms_interest(&ms, 2), "c", "e3", DAY, 3.25, 0, r, 3.25 + r, 1.5 + r, 5 + r, 1);

    const char *x0 = ms_interest(&ms, 0)->explanation;
    if (!strstr(x0, "new interest in category c")) fail_msg("explanation of a new entry: %s", x0);
    const char *x1 = ms_interest(&ms, 1)->explanation;
    if (!strstr(x1, "rose") || !strstr(x1, "add-to-cart") || !strstr(x1, "decay"))
        fail_msg("explanation: %s", x1);
    const char *x2 = ms_interest(&ms, 2)->explanation;
    if (!strstr(x2, "late event")) fail_msg("explanation of a late event: %s", x2);

    tl_interest *e = tl_user_find_interest(&user, TL_DIM_CATEGORY, "c");
    assert_non_null(e);
    assert_int_equal(e->t, DAY);
    check_rel(e->f, 1.5 + r, "stored f");
    check_rel(e->h, 5 + r, "stored h");
}

/* A decaying entry: FAVORITE after 6 h with H = 12 h, alpha 0.25, beta 2 (weights not
 * 0.5/0.5, so f and h are not interchangeable). */
static void test_delta_fields_weights(void **state)
{
    (void)state;
    tl_features_cfg fc = fx_features_cfg(43200000, 0.25, 2);
    tl_event e1 = mkev("e1", "c", "i", NULL, TL_IMPRESSION, 1000);
    tl_event e2 = mkev("e2", "c", "i", NULL, TL_FAVORITE, 1000 + 21600000);
    apply_ok(&fc, &user, &e1);
    apply_ok(&fc, &user, &e2);
    /* e1: f 1, h 0.1, w = 0.25 + 0.2 = 0.45 */
    check_delta(ms_interest(&ms, 0), "c", "e1", 1000, 0, 0, 0.45, 0.45, 1, 0.1, 1);
    /* e2: keep = 2^-0.5; w_before 0.45 -> 0.45*k; evidence 0.25 + 2*3 = 6.25 */
    const double k = 0.70710678118654752440;
    check_delta(ms_interest(&ms, 1), "c", "e2", 1000 + 21600000, 0.45, 0.45 * k - 0.45, 6.25,
                0.45 * k + 6.25, k + 1, 0.1 * k + 3, 1);
}

/* ---- order independence --------------------------------------------------------------- */

typedef struct spec {
    tl_event_type type;
    int64_t ts;
    const char *cat, *item, *ch;
} spec;

static const double HEAT[TL_EVENT_TYPE_COUNT] = {0.1, 1, 2, 3, 4, 5};

/* sum over events of 2^-(T - ts)/H (and of heat * that), from the formula */
static void expected_fh(const spec *s, int n, const char *cat, double T, double H, double *f,
                        double *h)
{
    *f = *h = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(s[i].cat, cat) != 0) continue;
        double k = pow(2, -(T - (double)s[i].ts) / H);
        *f += k;
        *h += HEAT[s[i].type] * k;
    }
}

/* The entry e read at time T (half-life H) has f = fw and h = hw. */
static void check_read_at(const tl_interest *e, double T, double H, double fw, double hw)
{
    double k = pow(2, -(T - (double)e->t) / H);
    check_rel(e->f * k, fw, "f");
    check_rel(e->h * k, hw, "h");
}

static int next_permutation(int *a, int n)
{
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1]) i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return 1;
}

/* A fresh user u1 (id not owned) given the events s[order[0]], s[order[1]], ... */
static void apply_in_order(const tl_features_cfg *fc, tl_user *u, const spec *s, const int *order,
                           int n)
{
    memset(u, 0, sizeof(*u));
    u->user_id = "u1";
    for (int k = 0; k < n; k++) {
        const spec *p = &s[order[k]];
        tl_event ev = mkev("e", p->cat, p->item, p->ch, p->type, p->ts);
        apply_ok(fc, u, &ev);
    }
}

static void test_order_all_permutations(void **state)
{
    (void)state;
    const double H = 3600000;   /* 1 h */
    tl_features_cfg fc = fx_features_cfg(H, 0.5, 0.5);
    const spec s[4] = {
        {TL_CLICK, 1000000, "c", "i1", NULL},
        {TL_IMPRESSION, 7000000, "c", "i2", NULL},
        {TL_ADD_TO_CART, 2500000, "c", "i3", NULL},
        {TL_PURCHASE, 7000000, "c", "i1", NULL},   /* same ts as the second */
    };
    const double T = 9000000;
    double fw, hw;
    expected_fh(s, 4, "c", T, H, &fw, &hw);
    int perm[4] = {0, 1, 2, 3}, count = 0;
    do {
        tl_user u;
        apply_in_order(&fc, &u, s, perm, 4);
        tl_interest *e = tl_user_find_interest(&u, TL_DIM_CATEGORY, "c");
        assert_non_null(e);
        assert_int_equal(e->t, 7000000);   /* the newest event time, whatever the order */
        check_read_at(e, T, H, fw, hw);
        u.user_id = NULL;
        tl_user_clear(&u);
        count++;
    } while (next_permutation(perm, 4));
    assert_int_equal(count, 24);
    assert_int_equal(ms.n, 24 * 4);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33);
}

/* 40 events over three dimensions and several keys, 30 random orders. Everything
 * stays within a few half-lives, so nothing is dropped and the final entries must
 * agree with the formula for every key. */
static void test_order_shuffled(void **state)
{
    (void)state;
    const double H = 86400000;
    tl_features_cfg fc = fx_features_cfg(H, 0.3, 0.7);
    fc.dims[TL_DIM_ITEM] = fc.dims[TL_DIM_CHANNEL] = 1;
    static const char *cats[] = {"c0", "c1", "c2"}, *items[] = {"i0", "i1", "i2", "i3"},
                      *chans[] = {"web", "app"};
    enum {
        N = 40
    };
    spec s[N];
    for (int i = 0; i < N; i++) {
        s[i].type = (tl_event_type)(rnd() % TL_EVENT_TYPE_COUNT);
        s[i].ts = (int64_t)(rnd() % (3u * 86400u)) * 1000;
        s[i].cat = cats[rnd() % 3];
        s[i].item = items[rnd() % 4];
        s[i].ch = chans[rnd() % 2];
    }
    const double T = 4.0 * 86400000;
    int order[N];
    for (int i = 0; i < N; i++) order[i] = i;
    for (int round = 0; round < 30; round++) {
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(rnd() % (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        tl_user u;
        apply_in_order(&fc, &u, s, order, N);
        /* every key, in each of its dimensions, against the formula */
        for (int d = 0; d < 3; d++) {
            int nkeys = d == 0 ? 3 : d == 1 ? 4 : 2;
            for (int k = 0; k < nkeys; k++) {
                const char *key = d == 0 ? cats[k] : d == 1 ? items[k] : chans[k];
                double fw = 0, hw = 0;
                for (int i = 0; i < N; i++) {
                    const char *v = d == 0 ? s[i].cat : d == 1 ? s[i].item : s[i].ch;
                    if (strcmp(v, key) != 0) continue;
                    double w = pow(2, -(T - (double)s[i].ts) / H);
                    fw += w;
                    hw += HEAT[s[i].type] * w;
                }
                tl_interest *e = tl_user_find_interest(&u, (tl_dim)d, key);
                if (fw == 0) {
                    assert_null(e);
                    continue;
                }
                assert_non_null(e);
                check_read_at(e, T, H, fw, hw);
            }
        }
        u.user_id = NULL;
        tl_user_clear(&u);
        ms_clear(&ms);
    }
}

/* ---- rank ---------------------------------------------------------------------------- */

static void put_entry(tl_user *u, tl_dim dim, const char *id, double f, double h, int64_t t)
{
    tl_interest *e = tl_user_add_interest(u, dim, id);
    e->f = f;
    e->h = h;
    e->t = t;
}

static void test_rank(void **state)
{
    (void)state;
    /* w = f (alpha 1, beta 0: h must not matter); H = 1 s */
    tl_features_cfg fc = fx_features_cfg(1000, 1, 0);
    put_entry(&user, TL_DIM_CATEGORY, "a", 5, 9, 10000);     /* 5 at 10 s */
    put_entry(&user, TL_DIM_CATEGORY, "b", 1, 9, 10000);     /* 1: a tie with the new 1 */
    put_entry(&user, TL_DIM_CATEGORY, "c", 4, 9, 9000);      /* 2 at 10 s */
    put_entry(&user, TL_DIM_CATEGORY, "d", 1.5, 9, 9000);    /* 0.75 at 10 s */
    put_entry(&user, TL_DIM_CATEGORY, "e", 2, 9, 9000);      /* exactly 1 at 10 s: tie */
    put_entry(&user, TL_DIM_CATEGORY, "f", 0.6, 9, 11000);   /* read earlier: 1.2 at 10 s */
    put_entry(&user, TL_DIM_ITEM, "z", 100, 9, 10000);       /* other dimension */

    /* new "x" at 10 s: w 1; strictly greater: a, c, f -> rank 4 */
    tl_event e1 = mkev("e1", "x", "i", NULL, TL_CLICK, 10000);
    apply_ok(&fc, &user, &e1);
    check_delta(ms_interest(&ms, 0), "x", "e1", 10000, 0, 0, 1, 1, 1, 2, 4);

    /* "b" again at 10 s: w 1 -> 2; greater: a only (c ties at 2) -> rank 2 */
    tl_event e2 = mkev("e2", "b", "i", NULL, TL_CLICK, 10000);
    apply_ok(&fc, &user, &e2);
    check_delta(ms_interest(&ms, 1), "b", "e2", 10000, 1, 0, 1, 2, 2, 11, 2);

    /* late event on "c" at 8 s: as_of 9 s (c's time); evidence 0.5 -> 4.5. Others read
     * at 9 s: a 10, b 4, x 2, d 1.5, e 2, f 2.4 -> only a is greater: rank 2 */
    tl_event e3 = mkev("e3", "c", "i", NULL, TL_CLICK, 8000);
    apply_ok(&fc, &user, &e3);
    check_delta(ms_interest(&ms, 2), "c", "e3", 9000, 4, 0, 0.5, 4.5, 4.5, 10, 2);

    /* an item delta ranks among items only: item dimension on, no category */
    fc.dims[TL_DIM_ITEM] = 1;
    tl_event e4 = mkev("e4", NULL, "tiny", NULL, TL_IMPRESSION, 10000);
    apply_ok(&fc, &user, &e4);
    /* item "z" (100) is greater than the new item entry (1): rank 2 */
    check_delta(ms_interest(&ms, 3), "tiny", "e4", 10000, 0, 0, 1, 1, 1, 0.1, 2);
    assert_int_equal(ms_interest(&ms, 3)->dim, TL_DIM_ITEM);
    assert_int_equal(ms.n, 4);
    assert_int_equal(fst.dropped, 0);
    assert_int_equal(user.n_ent, 9);
}

/* ---- epsilon dropping ------------------------------------------------------------------- */

static void test_epsilon_drop(void **state)
{
    (void)state;
    /* alpha 1e-9 makes the new entry's weight (1e-9) smaller than the faded ones
     * (1e-7, 5e-7): if they were not dropped they would be counted in the rank. */
    tl_features_cfg fc = fx_features_cfg(1000, 1e-9, 0);
    const int64_t T = 21000;
    put_entry(&user, TL_DIM_CATEGORY, "old1", 100, 0, T);        /* 1e-7: dropped */
    put_entry(&user, TL_DIM_CATEGORY, "keep", 2000, 0, T);       /* 2e-6: kept, greater */
    put_entry(&user, TL_DIM_CATEGORY, "old2", 1000, 0, T - 1000);/* 5e-7: dropped */
    put_entry(&user, TL_DIM_ITEM, "olditem", 100, 0, T);         /* 1e-7, other dimension */
    put_entry(&user, TL_DIM_CHANNEL, "oldch", 100, 0, T);        /* 1e-7, other dimension */

    tl_event e1 = mkev("e1", "x", "i1", NULL, TL_CLICK, T);
    apply_ok(&fc, &user, &e1);
    assert_int_equal(ms.n, 1);
    check_delta(ms_interest(&ms, 0), "x", "e1", T, 0, 0, 1e-9, 1e-9, 1, 2, 2);
    assert_int_equal(fst.dropped, 2);
    assert_int_equal(user.n_ent, 4);
    assert_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "old1"));
    assert_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "old2"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "keep"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_ITEM, "olditem"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CHANNEL, "oldch"));
    tl_interest *x = tl_user_find_interest(&user, TL_DIM_CATEGORY, "x");
    assert_non_null(x);   /* the new entry itself is never dropped, even below epsilon */
    assert_true(x->f == 1 && x->h == 2 && x->t == T);

    /* With the item dimension on, the item delta drops faded items only: "olditem"
     * goes, the channel entry stays (channel is off). Category "keep" is updated
     * and the faded "x" (1e-9) is dropped by that category pass. */
    fc.dims[TL_DIM_ITEM] = 1;
    tl_event e2 = mkev("e2", "keep", "i1", "web", TL_CLICK, T);
    apply_ok(&fc, &user, &e2);
    assert_int_equal(ms.n, 3);
    const tl_interest_delta *dc = ms_interest(&ms, 1), *di = ms_interest(&ms, 2);
    assert_int_equal(dc->dim, TL_DIM_CATEGORY);
    assert_string_equal(dc->dim_id, "keep");
    assert_int_equal(dc->rank, 1);
    assert_int_equal(di->dim, TL_DIM_ITEM);
    assert_string_equal(di->dim_id, "i1");
    assert_int_equal(di->rank, 1);
    assert_int_equal(fst.dropped, 4);
    assert_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "x"));
    assert_null(tl_user_find_interest(&user, TL_DIM_ITEM, "olditem"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CHANNEL, "oldch"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_ITEM, "i1"));
    assert_int_equal(user.n_ent, 3);
    tl_interest *k = tl_user_find_interest(&user, TL_DIM_CATEGORY, "keep");
    assert_non_null(k);
    check_rel(k->f, 2001, "keep f");
}

/* A user's entries are bounded: a new one past max_interests replaces the weakest of any
 * dimension, weighed at the event's time; an existing entry grows without evicting. */
static void test_max_interests(void **state)
{
    (void)state;
    tl_features_cfg fc = fx_features_cfg(1000, 1, 0);
    fc.max_interests = 3;
    const int64_t T = 10000;
    put_entry(&user, TL_DIM_CATEGORY, "a", 8, 0, T - 1000);   /* 4 at T */
    put_entry(&user, TL_DIM_CATEGORY, "b", 5, 0, T);          /* 5 */
    put_entry(&user, TL_DIM_ITEM, "i", 12, 0, T - 2000);      /* 3: the weakest at T */
    tl_event e1 = mkev("e1", "b", NULL, NULL, TL_CLICK, T);   /* existing: no eviction */
    apply_ok(&fc, &user, &e1);
    assert_int_equal(user.n_ent, 3);
    assert_int_equal(fst.evicted, 0);
    tl_event e2 = mkev("e2", "c", NULL, NULL, TL_CLICK, T);   /* new: "i" goes */
    apply_ok(&fc, &user, &e2);
    assert_int_equal(user.n_ent, 3);
    assert_int_equal(fst.evicted, 1);
    assert_null(tl_user_find_interest(&user, TL_DIM_ITEM, "i"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "a"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "c"));
    /* the new entry's own delta is the usual first one; "a" (4) ranks above c (1) */
    check_delta(ms_interest(&ms, 1), "c", "e2", T, 0, 0, 1, 1, 1, 2, 3);
    for (int k = 0; k < 50; k++) {                            /* many more: still 3 */
        char id[16];
        snprintf(id, sizeof(id), "n%d", k);
        tl_event e = mkev("e", id, NULL, NULL, TL_CLICK, T + k);
        apply_ok(&fc, &user, &e);
        assert_int_equal(user.n_ent, 3);
    }
    assert_int_equal(fst.evicted, 51);
}

/* An entry just above epsilon survives; the same entry one half-life older does not. */
static void test_epsilon_threshold(void **state)
{
    (void)state;
    tl_features_cfg fc = fx_features_cfg(1000, 1, 0);
    /* 2^-19 = 1.9e-6 >= 1e-6: kept;  2^-20 = 9.5e-7 < 1e-6: dropped */
    put_entry(&user, TL_DIM_CATEGORY, "k19", 1, 0, 1000);
    put_entry(&user, TL_DIM_CATEGORY, "d20", 1, 0, 0);
    tl_event e1 = mkev("e1", "x", "i", NULL, TL_BROWSE, 20000);
    apply_ok(&fc, &user, &e1);
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "k19"));
    assert_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "d20"));
    assert_int_equal(fst.dropped, 1);
    assert_int_equal(ms_interest(&ms, 0)->rank, 1);
}

/* ---- dimensions ---------------------------------------------------------------------- */

static void load_dims(tl_features_cfg *fc, const char *dims)
{
    tl_config *c = tl_config_new(tl_app_config);
    char err[256] = "";
    assert_int_equal(tl_config_set(c, "features.dims", dims, "-X", err, sizeof(err)), 0);
    if (tl_features_cfg_load(fc, c, err, sizeof(err)) != 0) fail_msg("%s: %s", dims, err);
    tl_config_destroy(c);
}

static void expect_dims(const char *what, int n, const tl_dim *dims, const char **ids)
{
    if (ms.n != n) fail_msg("%s: %d deltas, expected %d", what, ms.n, n);
    for (int i = 0; i < n; i++) {
        const tl_interest_delta *d = ms_interest(&ms, i);
        if (d->dim != dims[i] || strcmp(d->dim_id, ids[i]) != 0)
            fail_msg("%s: delta %d is %s/%s, expected %s/%s", what, i, tl_dim_name(d->dim),
                     d->dim_id, tl_dim_name(dims[i]), ids[i]);
    }
    ms_clear(&ms);
}

static void test_dims(void **state)
{
    (void)state;
    tl_features_cfg fc;
    tl_event full = mkev("e1", "cat", "itm", "web", TL_CLICK, 5000);
    tl_event no_ch = mkev("e2", "cat", "itm", NULL, TL_CLICK, 5000);
    tl_event no_cat = mkev("e3", NULL, "itm", "app", TL_CLICK, 5000);

    load_dims(&fc, "category,item,channel");
    apply_ok(&fc, &user, &full);
    expect_dims("all on, full event", 3, (tl_dim[]){TL_DIM_CATEGORY, TL_DIM_ITEM, TL_DIM_CHANNEL},
                (const char *[]){"cat", "itm", "web"});
    apply_ok(&fc, &user, &no_ch);
    expect_dims("all on, no channel", 2, (tl_dim[]){TL_DIM_CATEGORY, TL_DIM_ITEM},
                (const char *[]){"cat", "itm"});
    apply_ok(&fc, &user, &no_cat);
    expect_dims("all on, no category", 2, (tl_dim[]){TL_DIM_ITEM, TL_DIM_CHANNEL},
                (const char *[]){"itm", "app"});

    load_dims(&fc, "category");
    apply_ok(&fc, &user, &full);
    expect_dims("category", 1, (tl_dim[]){TL_DIM_CATEGORY}, (const char *[]){"cat"});
    apply_ok(&fc, &user, &no_cat);
    expect_dims("category, no category", 0, NULL, NULL);

    /* category is always on, whatever the list says */
    load_dims(&fc, "channel");
    apply_ok(&fc, &user, &full);
    expect_dims("channel", 2, (tl_dim[]){TL_DIM_CATEGORY, TL_DIM_CHANNEL},
                (const char *[]){"cat", "web"});

    load_dims(&fc, " item , category ");
    apply_ok(&fc, &user, &full);
    expect_dims("item", 2, (tl_dim[]){TL_DIM_CATEGORY, TL_DIM_ITEM},
                (const char *[]){"cat", "itm"});

    /* the same id in two dimensions is two entries */
    tl_event same = mkev("e4", "x1", "x1", "x1", TL_CLICK, 6000);
    load_dims(&fc, "category,item,channel");
    apply_ok(&fc, &user, &same);
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CATEGORY, "x1"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_ITEM, "x1"));
    assert_non_null(tl_user_find_interest(&user, TL_DIM_CHANNEL, "x1"));
    for (int i = 0; i < 3; i++) assert_int_equal(ms_interest(&ms, i)->weight_before, 0);
}

/* ---- late events --------------------------------------------------------------------- */

static void test_late_event(void **state)
{
    (void)state;
    tl_features_cfg fc = fx_features_cfg(1000, 1, 0.5);
    tl_event e1 = mkev("e1", "c", "i", NULL, TL_FAVORITE, 5000);   /* f 1, h 3, w 2.5 */
    tl_event e2 = mkev("e2", "c", "i", NULL, TL_BROWSE, 3000);     /* 2 s late: x 1/4 */
    apply_ok(&fc, &user, &e1);
    apply_ok(&fc, &user, &e2);
    /* evidence (1 + 0.5*1) / 4 = 0.375; f = 1.25, h = 3.25, w = 2.875, no decay */
    check_delta(ms_interest(&ms, 1), "c", "e2", 5000, 2.5, 0, 0.375, 2.875, 1.25, 3.25, 1);
    tl_interest *e = tl_user_find_interest(&user, TL_DIM_CATEGORY, "c");
    assert_int_equal(e->t, 5000);   /* the stored time does not go back */

    /* a late event for a new key: as_of is its own ts, nothing decays */
    tl_event e3 = mkev("e3", "n", "i", NULL, TL_CLICK, 1000);
    apply_ok(&fc, &user, &e3);
    check_delta(ms_interest(&ms, 2), "n", "e3", 1000, 0, 0, 2, 2, 1, 2, 2);
    /* "c" read at 1 s is 2.875 * 2^4 = 46 > 2: rank 2 */

    /* the next on-time event decays from 5 s: at 6 s everything halves */
    tl_event e4 = mkev("e4", "c", "i", NULL, TL_IMPRESSION, 6000);
    apply_ok(&fc, &user, &e4);
    check_delta(ms_interest(&ms, 3), "c", "e4", 6000, 2.875, -1.4375, 1.05, 2.4875, 1.625, 1.725,
                1);
}

/* Explanation numbers below 1e-3 (a delta's decay part, a few millionths within a
 * session) are formatted without printf; they read as printf's %.2g would write them. */
static void test_fmt_small_numbers(void **state)
{
    (void)state;
    uint64_t seed = 7;
    char got[32], want[32];
    for (int i = 0; i < 1000000; i++) {
        /* log-uniform over 1e-290 .. 1e-3, with every tenth value on two significant
         * digits and a half (the rounding boundaries) */
        double u = (double)(fx_xorshift64(&seed) >> 11) / 9007199254740992.0;
        double x = pow(10.0, -3 - u * 287);
        if (i % 10 == 0) {
            double e = floor(log10(x));
            x = (floor(x / pow(10.0, e - 1)) + 0.5) * pow(10.0, e - 1);
        }
        if (!(x < 1e-3)) continue;
        double v = (i & 1) ? -x : x;
        tl_fmt_num(got, v, 1);
        snprintf(want, sizeof(want), "%s%.2g", v < 0 ? "-" : "+", x);
        if (strcmp(got, want)) fail_msg("%.17g: %s, printf %s", v, got, want);
    }
    const double edges[] = {1e-3 * (1 - 1e-12), 9.95e-4, 9.5e-5, 1e-4, 1e-5, 1.5e-5, 2.5e-7, 1e-290,
                            9.99e-100,          0};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        tl_fmt_num(got, edges[i], 0);
        snprintf(want, sizeof(want), "%.2g", edges[i]);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_cfg_defaults),
        FX_TEST(test_max_interests),
        FX_TEST(test_worked_example),
        FX_TEST(test_worked_example_store),
        FX_TEST(test_delta_fields_defaults),
        FX_TEST(test_delta_fields_weights),
        FX_TEST(test_order_all_permutations),
        FX_TEST(test_order_shuffled),
        FX_TEST(test_rank),
        FX_TEST(test_epsilon_drop),
        FX_TEST(test_epsilon_threshold),
        FX_TEST(test_dims),
        FX_TEST(test_late_event),
        FX_TEST(test_fmt_small_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
