/*
 * test_categories.c -- the next-category view's bytes (domain/nextcat.h) and the category
 * embeddings (model/categories.h): scores and the user's embedding by hand, one learning
 * step by hand, the successors' sketch, a learned pattern, "like", the checkpoint part,
 * and the records with their sentences.
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

#include "domain/nextcat.h"
#include "features/interest.h"
#include "lib/arena.h"
#include "model/categories.h"
#include "fixtures.h"
#include "memsink.h"

#define HOUR 3600000LL
#define T0 1700000000000LL

static tl_categories_cfg cfg(void)
{
    return (tl_categories_cfg){.enabled = 1,
                               .dim = 8,
                               .max = 64,
                               .top = 5,
                               .candidates = 16,
                               .threshold = 0.05,
                               .rate = 0.05};
}

/* ---- the view's bytes ------------------------------------------------------------ */

static tl_nc_view view_of(const char *const *ids, const float *p, int n, float other)
{
    tl_nc_view v;
    memset(&v, 0, sizeof(v));
    v.p_other = other;
    v.n = n;
    for (int i = 0; i < n; i++) v.cat[i] = (tl_nc_entry){ids[i], (uint32_t)strlen(ids[i]), p[i]};
    return v;
}

static void test_view_bytes(void **state)
{
    (void)state;
    static const char *const ids[] = {"x", "yy"};
    const float p[] = {0.5f, 0.25f};
    tl_nc_view v = view_of(ids, p, 2, 0.25f);
    v.ts = -3;
    v.n_like = 1;
    v.like[0] = (tl_nc_entry){"z", 1, 1.5f};
    v.dim = 2;
    v.emb[0] = -1, v.emb[1] = 0.5f;
    tl_buf b = {0};
    tl_nc_encode(&v, &b);
    tl_nc_view d;
    assert_int_equal(tl_nc_decode(&d, b.data, b.len), 0);
    assert_true(d.ts == -3 && d.p_other == 0.25f && d.n == 2 && d.n_like == 1 && d.dim == 2);
    assert_memory_equal(d.cat[1].id, "yy", 2);
    assert_true(d.cat[1].p == 0.25f && d.like[0].p == 1.5f && d.emb[0] == -1);
    assert_true(b.len <= tl_nc_bound(2));
    /* every cut and a byte more are refused */
    for (size_t k = 0; k < b.len; k++) assert_int_equal(tl_nc_decode(&d, b.data, k), -1);
    tl_buf_append(&b, "", 1);
    assert_int_equal(tl_nc_decode(&d, b.data, b.len), -1);
    /* a probability outside [0, 1], a non-positive affinity, too many entries */
    const float bad_p[] = {1.5f, 0.0f};
    tl_nc_view w = view_of(ids, bad_p, 2, 0.0f);
    tl_buf_clear(&b);
    tl_nc_encode(&w, &b);
    assert_int_equal(tl_nc_decode(&d, b.data, b.len), -1);
    w = view_of(ids, p, 2, 0.25f);
    w.n_like = 1;
    w.like[0] = (tl_nc_entry){"z", 1, 0.0f};
    tl_buf_clear(&b);
    tl_nc_encode(&w, &b);
    assert_int_equal(tl_nc_decode(&d, b.data, b.len), -1);
    tl_buf_clear(&b);
    w = view_of(ids, p, 2, 0.25f);
    tl_nc_encode(&w, &b);
    b.data[1 + 1 + 4] = TL_NC_TOP_MAX + 1;   /* the count after format, ts, p_other */
    assert_int_equal(tl_nc_decode(&d, b.data, b.len), -1);
    tl_buf_free(&b);
}

static void test_view_moved(void **state)
{
    (void)state;
    static const char *const a_ids[] = {"x", "y"}, *const b_ids[] = {"x", "z"};
    const float pa[] = {0.5f, 0.2f}, pb[] = {0.4f, 0.3f};
    tl_nc_view a = view_of(a_ids, pa, 2, 0.3f), b = view_of(b_ids, pb, 2, 0.3f);
    /* 0.5 (|0.5 - 0.4| + |0.2 - 0| + |0 - 0.3| + |0.3 - 0.3|) */
    assert_true(fabs(tl_nc_moved(&a, &b) - 0.3) < 1e-6);
    assert_true(fabs(tl_nc_moved(&b, &a) - 0.3) < 1e-6);
    assert_true(tl_nc_moved(&a, &a) == 0);
    /* from nothing (all "other"): 0.5 (0.7 + |0.3 - 1|) */
    assert_true(fabs(tl_nc_moved(NULL, &b) - 0.7) < 1e-6);
}

/* ---- the model ------------------------------------------------------------------- */

typedef struct env {
    tl_categories_cfg cc;
    tl_features_cfg fc;
    tl_cat_model *cm;
    memsink ms;
    tl_arena a;
    tl_features_stats fst;
} env;

static void env_open(env *e)
{
    e->cc = cfg();
    e->fc = fx_features_cfg(24 * HOUR, 0.5, 0.5);
    e->cm = tl_cat_model_new(&e->cc);
    assert_non_null(e->cm);
    tl_user dummy;
    fx_stage_open(&e->ms, &e->a, &dummy, "x");
    fx_user_fini(&dummy);
    memset(&e->fst, 0, sizeof(e->fst));
}

static void env_close(env *e)
{
    tl_user dummy;
    fx_user_init(&dummy, "x");
    fx_stage_close(&e->ms, &e->a, &dummy);
    tl_cat_model_free(e->cm);
}

/* One event of u in category cat at ts, through the stage's three steps. */
static void step(env *e, tl_user *u, const char *id, const char *cat, tl_event_type type,
                 int64_t ts)
{
    tl_event ev = fx_event(id, u->user_id, "item", cat, NULL, type, ts);
    tl_cat_learn(e->cm, &e->fc, u, &ev);
    assert_int_equal(tl_features_apply(&e->fc, u, &ev, &e->a, &e->ms.sink, &e->fst), TL_OK);
    assert_int_equal(tl_cat_update(&e->cc, e->cm, &e->fc, u, &ev, &e->a, &e->ms.sink), TL_OK);
    tl_arena_reset(&e->a);
}

/* u made afresh, its id the prefix followed by k ("u7"). */
static void user_k(tl_user *u, const char *prefix, int k)
{
    char id[16];
    snprintf(id, sizeof(id), "%s%d", prefix, k);
    fx_user_init(u, id);
}

static double weight_at(const tl_features_cfg *fc, const tl_interest *x, int64_t at)
{
    return (fc->alpha * x->f + fc->beta * x->h) * exp2(-(double)(at - x->t) / fc->half_life_ms);
}

/* The scores, the embedding and the softmax, from the documented formula. */
static void test_predict_by_hand(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    tl_user o, u;
    fx_user_init(&o, "other");
    fx_user_init(&u, "u");
    /* another user makes A -> B -> C known, with a successor or two */
    step(&e, &o, "o1", "A", TL_BROWSE, T0);
    step(&e, &o, "o2", "B", TL_BROWSE, T0 + 1000);
    step(&e, &o, "o3", "C", TL_CLICK, T0 + 2000);
    step(&e, &o, "o4", "A", TL_BROWSE, T0 + 3000);
    step(&e, &o, "o5", "C", TL_BROWSE, T0 + 4000);
    /* u: A twice, then B */
    step(&e, &u, "u1", "A", TL_BROWSE, T0 + HOUR);
    step(&e, &u, "u2", "A", TL_ADD_TO_CART, T0 + 2 * HOUR);
    step(&e, &u, "u3", "B", TL_BROWSE, T0 + 3 * HOUR);
    const int64_t at = T0 + 4 * HOUR;
    tl_cat_pred pr;
    tl_cat_predict(e.cm, &e.fc, &u, at, &pr);

    double a[TL_CAT_FEATURES], b_other;
    tl_cat_model_weights(e.cm, a, &b_other);
    const tl_interest *ea = NULL, *eb = NULL;
    for (int i = 0; i < u.n_ent; i++) {
        if (!strcmp(u.ent[i].id, "A")) ea = &u.ent[i];
        if (!strcmp(u.ent[i].id, "B")) eb = &u.ent[i];
    }
    assert_non_null(ea);
    assert_non_null(eb);
    double wa = weight_at(&e.fc, ea, at), wb = weight_at(&e.fc, eb, at), W = wa + wb;
    const float *va, *oa, *vb, *ob, *vc, *oc;
    float ba, bb, bc;
    assert_int_equal(tl_cat_lookup(e.cm, "A", &va, &oa, &ba), 0);
    assert_int_equal(tl_cat_lookup(e.cm, "B", &vb, &ob, &bb), 0);
    assert_int_equal(tl_cat_lookup(e.cm, "C", &vc, &oc, &bc), 0);
    /* the embedding: the weighted mean of A's and B's v */
    double ua[8];
    for (int i = 0; i < 8; i++) {
        ua[i] = (wa * va[i] + wb * vb[i]) / W;
        assert_true(fabs(ua[i] - pr.u[i]) < 1e-6);
    }
    /* candidates: A and B (the user's, A first: more weight), then C, B's successor */
    assert_int_equal(pr.n, 3);
    uint32_t l;
    const char *n0 = tl_cat_name(e.cm, pr.idx[0], &l);
    assert_true(l == 1 && *n0 == 'A');
    n0 = tl_cat_name(e.cm, pr.idx[2], &l);
    assert_true(l == 1 && *n0 == 'C');
    /* recency: 2^-(hours before the user's last event), not before now */
    const double x[3][TL_CAT_FEATURES] = {
        {wa / W, 0, 0, 1, exp2(-1.0)},   /* A: an hour before B */
        {wb / W, 1, 0, 1, 1.0},          /* B: the last */
        {0, 0, 1, 0, 0},                 /* C: all of B's successors */
    };
    const float *ov[3] = {oa, ob, oc};
    const float bv[3] = {ba, bb, bc};
    double s[3], z = exp(b_other), mx = 0;
    for (int k = 0; k < 3; k++) {
        s[k] = bv[k];
        for (int f = 0; f < TL_CAT_FEATURES; f++) {
            s[k] += a[f] * x[k][f];
            if (fabs(x[k][f] - pr.x[k][f]) > 1e-6)
                fail_msg("candidate %d feature %d: %g, by hand %g", k, f, pr.x[k][f], x[k][f]);
        }
        for (int i = 0; i < 8; i++) s[k] += ua[i] * ov[k][i];
        assert_true(fabs(s[k] - pr.s[k]) < 1e-6);
        z += exp(s[k]);
        mx = fmax(mx, s[k]);
    }
    assert_true(fabs(pr.p_other - exp(b_other) / z) < 1e-6);
    double total = pr.p_other;
    for (int k = 0; k < 3; k++) {
        assert_true(fabs(pr.p[k] - exp(s[k]) / z) < 1e-6);
        total += pr.p[k];
    }
    assert_true(fabs(total - 1) < 1e-12);
    fx_user_fini(&o);
    fx_user_fini(&u);
    env_close(&e);
}

/* A stored record's numbers may be anything: infinite or huge weights leave every p
 * finite, summing to 1. */
static void test_stored_extremes(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    tl_user u;
    fx_user_init(&u, "u");
    step(&e, &u, "1", "A", TL_BROWSE, T0);
    step(&e, &u, "2", "B", TL_BROWSE, T0 + 1000);
    step(&e, &u, "3", "C", TL_BROWSE, T0 + 2000);
    u.ent[0].f = INFINITY;
    u.ent[1].h = 1.7e308;
    u.ent[2].f = 1.7e308;
    u.ent[2].t = INT64_MIN;
    tl_cat_pred pr;
    tl_cat_predict(e.cm, &e.fc, &u, T0 + 3000, &pr);
    double sum = pr.p_other;
    for (int i = 0; i < pr.n; i++) {
        assert_true(isfinite(pr.p[i]));
        sum += pr.p[i];
    }
    assert_true(fabs(sum - 1) < 1e-9);
    for (int i = 0; i < 8; i++) assert_true(isfinite(pr.u[i]));
    step(&e, &u, "4", "A", TL_BROWSE, T0 + 4000);   /* learns and publishes without harm */
    const tl_next_categories *r = &ms_nth(&e.ms, MS_NEXTCAT, e.ms.count[MS_NEXTCAT] - 1)->nextcat;
    assert_true(isfinite(r->view->p_other));
    fx_user_fini(&u);
    env_close(&e);
}

/* One step of the scores' weights by hand: a -= rate sum (p - y) x, b_other likewise. */
static void test_learning_step(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    tl_user u;
    fx_user_init(&u, "u");
    step(&e, &u, "u1", "A", TL_BROWSE, T0);
    step(&e, &u, "u2", "B", TL_BROWSE, T0 + HOUR);
    tl_cat_pred pr;
    const int64_t at = T0 + 2 * HOUR;
    tl_cat_predict(e.cm, &e.fc, &u, at, &pr);
    double a0[TL_CAT_FEATURES], bo0, a1[TL_CAT_FEATURES], bo1;
    tl_cat_model_weights(e.cm, a0, &bo0);
    tl_cat_stats st0, st1;
    tl_cat_model_stats(e.cm, &st0);
    /* u goes to A: a candidate (index 0 or 1) */
    int ti = -1;
    for (int i = 0; i < pr.n; i++) {
        uint32_t l;
        if (*tl_cat_name(e.cm, pr.idx[i], &l) == 'A') ti = i;
    }
    assert_true(ti >= 0);
    tl_event ev = fx_event("u3", "u", "item", "A", NULL, TL_BROWSE, at);
    tl_cat_learn(e.cm, &e.fc, &u, &ev);
    tl_cat_model_weights(e.cm, a1, &bo1);
    for (int f = 0; f < TL_CAT_FEATURES; f++) {
        double g = 0;
        for (int i = 0; i < pr.n; i++) g += (pr.p[i] - (i == ti)) * pr.x[i][f];
        assert_true(fabs(a1[f] - (a0[f] - e.cc.rate * g)) < 1e-12);
    }
    assert_true(fabs(bo1 - (bo0 - e.cc.rate * pr.p_other)) < 1e-12);
    tl_cat_model_stats(e.cm, &st1);
    assert_int_equal(st1.scored, st0.scored + 1);
    assert_int_equal(st1.last_hit, st0.last_hit);   /* the last was B */
    int first = 1;
    for (int i = 0; i < pr.n; i++) first &= pr.p[i] <= pr.p[ti];
    assert_int_equal(st1.hit1 - st0.hit1, first);
    assert_int_equal(st1.hit5, st0.hit5 + 1);
    assert_true(fabs((st1.logloss - st0.logloss) + log(pr.p[ti])) < 1e-9);
    /* and it learned toward A: A scores higher for the same user now */
    tl_cat_pred after;
    tl_cat_predict(e.cm, &e.fc, &u, at, &after);
    assert_true(after.p[ti] > pr.p[ti]);
    fx_user_fini(&u);
    env_close(&e);
}

/* The sketch: the counts by hand, and space-saving past TL_CAT_SUCC successors. */
static void test_successors(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    char cat[16];
    /* three users go A -> B, one A -> C */
    const char *to[] = {"B", "B", "B", "C"};
    for (int i = 0; i < 4; i++) {
        tl_user u;
        user_k(&u, "s", i);
        step(&e, &u, "1", "A", TL_BROWSE, T0 + i * HOUR);
        step(&e, &u, "2", to[i], TL_BROWSE, T0 + i * HOUR + 1000);
        fx_user_fini(&u);
    }
    tl_user u;
    fx_user_init(&u, "probe");
    step(&e, &u, "1", "A", TL_BROWSE, T0 + 10 * HOUR);
    tl_cat_pred pr;
    tl_cat_predict(e.cm, &e.fc, &u, T0 + 10 * HOUR, &pr);
    assert_int_equal(pr.n, 3);   /* A (its own), then B and C */
    uint32_t l;
    assert_true(*tl_cat_name(e.cm, pr.idx[1], &l) == 'B' && fabs(pr.x[1][2] - 0.75) < 1e-6);
    assert_true(*tl_cat_name(e.cm, pr.idx[2], &l) == 'C' && fabs(pr.x[2][2] - 0.25) < 1e-6);
    fx_user_fini(&u);
    /* TL_CAT_SUCC more successors of A, once each: C (count 1) goes first, the newcomer
     * takes its count plus one */
    for (int i = 0; i < TL_CAT_SUCC; i++) {
        snprintf(cat, sizeof(cat), "N%d", i);
        user_k(&u, "n", i);
        step(&e, &u, "1", "A", TL_BROWSE, T0 + 20 * HOUR + i);
        step(&e, &u, "2", cat, TL_BROWSE, T0 + 21 * HOUR + i);
        fx_user_fini(&u);
    }
    fx_user_init(&u, "probe2");
    step(&e, &u, "1", "A", TL_BROWSE, T0 + 30 * HOUR);
    tl_cat_predict(e.cm, &e.fc, &u, T0 + 30 * HOUR, &pr);
    assert_int_equal(pr.n, 1 + TL_CAT_SUCC);
    double sum = 0;
    int has_c = 0;
    for (int i = 1; i < pr.n; i++) {
        sum += pr.x[i][2];
        has_c |= *tl_cat_name(e.cm, pr.idx[i], &l) == 'C';
    }
    /* space-saving keeps the counts' sum equal to the transitions counted */
    assert_false(has_c);
    assert_true(fabs(sum - 1) < 1e-6);
    assert_true(*tl_cat_name(e.cm, pr.idx[1], &l) == 'B' &&
                fabs(pr.x[1][2] * (4 + TL_CAT_SUCC) - 3) < 1e-5);
    fx_user_fini(&u);
    env_close(&e);
}

/* Users who always go X -> Y -> Z: the model learns where they go better than "the
 * user's last category" (which is never right here). */
static void test_learns_a_pattern(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    uint64_t rng = 7;
    char cat[16];
    tl_cat_stats half;
    for (int k = 0; k < 400; k++) {
        if (k == 200) tl_cat_model_stats(e.cm, &half);
        int g = (int)(fx_xorshift64(&rng) % 4);
        tl_user u;
        user_k(&u, "u", k);
        for (int s = 0; s < 6; s++) {
            snprintf(cat, sizeof(cat), "g%d-%d", g, s % 3);
            step(&e, &u, "e", cat, TL_BROWSE, T0 + k * HOUR + s * 60000);
        }
        fx_user_fini(&u);
    }
    tl_cat_stats st;
    tl_cat_model_stats(e.cm, &st);
    assert_int_equal(st.last_hit, 0);
    double hit1 = (double)(st.hit1 - half.hit1) / (double)(st.scored - half.scored);
    if (!(hit1 > 0.9)) fail_msg("hit@1 in the second half %.3f", hit1);
    env_close(&e);
}

/* "Like": none of the user's own, affinity u . o by hand, most first. */
static void test_like(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    char cat[16];
    tl_user o, u;
    fx_user_init(&o, "o");
    for (int i = 0; i < 20; i++) {
        snprintf(cat, sizeof(cat), "c%d", i);
        step(&e, &o, "e", cat, TL_BROWSE, T0 + i * 1000);
    }
    fx_user_init(&u, "u");
    step(&e, &u, "1", "c1", TL_BROWSE, T0 + HOUR);
    step(&e, &u, "2", "c2", TL_BROWSE, T0 + HOUR + 1000);
    tl_cat_pred pr;
    tl_cat_predict(e.cm, &e.fc, &u, T0 + HOUR + 1000, &pr);
    tl_nc_entry like[TL_NC_LIKE_MAX];
    int n = tl_cat_like(e.cm, &u, pr.u, NULL, like, TL_NC_LIKE_MAX);
    /* by hand: the largest three positive u . o among c0, c3..c19 */
    double best[3] = {0, 0, 0};
    for (int i = 0; i < 20; i++) {
        if (i == 1 || i == 2) continue;
        snprintf(cat, sizeof(cat), "c%d", i);
        const float *v, *ov;
        float b;
        assert_int_equal(tl_cat_lookup(e.cm, cat, &v, &ov, &b), 0);
        double d = 0;
        for (int j = 0; j < 8; j++) d += (double)pr.u[j] * ov[j];
        for (int k = 0; k < 3; k++)
            if (d > best[k]) {
                for (int m = 2; m > k; m--) best[m] = best[m - 1];
                best[k] = d;
                break;
            }
    }
    int want = (best[0] > 0) + (best[1] > 0) + (best[2] > 0);
    assert_int_equal(n, want);
    assert_true(n > 0);
    for (int k = 0; k < n; k++) {
        assert_true(fabs(like[k].p - best[k]) < 1e-5);
        assert_false(like[k].len == 2 &&
                     (!memcmp(like[k].id, "c1", 2) || !memcmp(like[k].id, "c2", 2)));
    }
    /* a category listed as a next one is not "like" either: the second moves up */
    char first[16];
    snprintf(first, sizeof(first), "%.*s", (int)like[0].len, like[0].id);
    tl_nc_view listed = {.n = 1};
    listed.cat[0] = (tl_nc_entry){first, (uint32_t)strlen(first), 0.5f};
    tl_nc_entry again[TL_NC_LIKE_MAX];
    int m = tl_cat_like(e.cm, &u, pr.u, &listed, again, TL_NC_LIKE_MAX);
    assert_true(m >= n - 1 && m >= 1);
    for (int k = 0; k < m; k++)
        assert_false(again[k].len == listed.cat[0].len &&
                     !memcmp(again[k].id, first, again[k].len));
    if (n > 1) assert_true(fabs(again[0].p - best[1]) < 1e-5);
    fx_user_fini(&o);
    fx_user_fini(&u);
    env_close(&e);
}

/* The checkpoint part: the same bytes again, the same scores, cuts and bad values
 * refused, another dim refused. */
static void test_checkpoint(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    char cat[16];
    uint64_t rng = 3;
    tl_user u;
    for (int k = 0; k < 30; k++) {
        user_k(&u, "u", k);
        for (int s = 0; s < 5; s++) {
            snprintf(cat, sizeof(cat), "c%d", (int)(fx_xorshift64(&rng) % 12));
            step(&e, &u, "e", cat, TL_BROWSE, T0 + k * HOUR + s * 1000);
        }
        if (k < 29) fx_user_fini(&u);
    }
    tl_buf b = {0}, b2 = {0};
    tl_cat_model_encode(e.cm, &b);
    char why[128];
    tl_cat_model *d = tl_cat_model_decode(&e.cc, b.data, b.len, why, sizeof(why));
    assert_non_null(d);
    tl_cat_model_encode(d, &b2);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    tl_cat_pred p1, p2;
    tl_cat_predict(e.cm, &e.fc, &u, T0 + 40 * HOUR, &p1);
    tl_cat_predict(d, &e.fc, &u, T0 + 40 * HOUR, &p2);
    assert_int_equal(p1.n, p2.n);
    for (int i = 0; i < p1.n; i++) assert_true(p1.p[i] == p2.p[i]);
    tl_cat_stats s1, s2;
    tl_cat_model_stats(e.cm, &s1);
    tl_cat_model_stats(d, &s2);
    assert_memory_equal(&s1, &s2, sizeof(s1));
    tl_cat_model_free(d);
    for (size_t k = 0; k < b.len; k += 7)
        assert_null(tl_cat_model_decode(&e.cc, b.data, k, why, sizeof(why)));
    tl_buf_append(&b2, "", 1);
    assert_null(tl_cat_model_decode(&e.cc, b2.data, b2.len, why, sizeof(why)));
    /* a NaN weight */
    memcpy(b2.data, b.data, b.len);
    const double nan_ = NAN;
    memcpy(b2.data + 8 + 4 + 4 + 8, &nan_, 8);
    assert_null(tl_cat_model_decode(&e.cc, b2.data, b.len, why, sizeof(why)));
    /* another dim */
    tl_categories_cfg other = e.cc;
    other.dim = 4;
    assert_null(tl_cat_model_decode(&other, b.data, b.len, why, sizeof(why)));
    assert_non_null(strstr(why, "categories.dim is 4"));
    tl_buf_free(&b);
    tl_buf_free(&b2);
    fx_user_fini(&u);
    env_close(&e);
}

/* External embeddings: taken as v and left by learning; null gives v back; bad records
 * refused with their reason and counted. */
static void test_external(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    char err[256];
    const char *ok = "{\"category_id\":\"A\",\"embedding\":[1,2,3,4,5,6,7,-8.5]}";
    assert_int_equal(tl_cat_external(e.cm, ok, strlen(ok), err, sizeof(err)), 0);
    const float *v, *o;
    float b;
    assert_int_equal(tl_cat_lookup(e.cm, "A", &v, &o, &b), 0);
    assert_true(v[0] == 1 && v[7] == -8.5f);
    tl_cat_stats st;
    tl_cat_model_stats(e.cm, &st);
    assert_int_equal(st.external, 1);
    /* learning leaves it: a user of A goes elsewhere many times */
    tl_user u;
    fx_user_init(&u, "u");
    for (int i = 0; i < 20; i++) {
        step(&e, &u, "a", "A", TL_BROWSE, T0 + i * 2000);
        step(&e, &u, "b", i % 2 ? "B" : "C", TL_BROWSE, T0 + i * 2000 + 1000);
    }
    assert_int_equal(tl_cat_lookup(e.cm, "A", &v, &o, &b), 0);
    assert_true(v[0] == 1 && v[1] == 2 && v[7] == -8.5f);
    /* the user's embedding is the weighted mean of A's (external) v and the others' */
    tl_cat_pred pr;
    tl_cat_predict(e.cm, &e.fc, &u, T0 + 50000, &pr);
    double want = 0;
    for (int k = 0; k < pr.n_k; k++) {
        uint32_t l;
        const char *name = tl_cat_name(e.cm, pr.k_idx[k], &l);
        char id[8];
        snprintf(id, sizeof(id), "%.*s", (int)l, name);
        const float *vk, *ok2;
        assert_int_equal(tl_cat_lookup(e.cm, id, &vk, &ok2, &b), 0);
        want += pr.k_w[k] / pr.k_sum * vk[0];
    }
    assert_true(fabs(pr.u[0] - want) < 1e-6);
    /* null gives v back to learning */
    const char *rel = "{\"category_id\":\"A\",\"embedding\":null}";
    assert_int_equal(tl_cat_external(e.cm, rel, strlen(rel), err, sizeof(err)), 0);
    tl_cat_model_stats(e.cm, &st);
    assert_int_equal(st.external, 0);
    step(&e, &u, "a2", "A", TL_BROWSE, T0 + 60000);
    step(&e, &u, "b2", "B", TL_BROWSE, T0 + 61000);
    assert_int_equal(tl_cat_lookup(e.cm, "A", &v, &o, &b), 0);
    assert_true(v[0] != 1 || v[1] != 2);
    /* refused, each with its reason, and counted */
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{\"category_id\":\"A\",", "not JSON"},
        {"[1,2]", "category_id"},
        {"{\"category_id\":\"\",\"embedding\":null}", "category_id"},
        {"{\"category_id\":\"A\"}", "categories.dim (8)"},
        {"{\"category_id\":\"A\",\"embedding\":[1,2,3]}", "categories.dim (8)"},
        {"{\"category_id\":\"A\",\"embedding\":[1,2,3,4,5,6,7,\"x\"]}", "within +-1e4"},
        {"{\"category_id\":\"A\",\"embedding\":[1,2,3,4,5,6,7,1e5]}", "within +-1e4"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(tl_cat_external(e.cm, bad[i].json, strlen(bad[i].json), err, sizeof(err)),
                         -1);
        if (!strstr(err, bad[i].why)) fail_msg("%s: %s", bad[i].json, err);
    }
    tl_cat_model_stats(e.cm, &st);
    assert_int_equal(st.external_bad, sizeof(bad) / sizeof(bad[0]));
    /* a full table */
    tl_categories_cfg small = e.cc;
    small.max = 16;
    tl_cat_model *full = tl_cat_model_new(&small);
    char rec[128];
    for (int i = 0; i <= 16; i++) {
        snprintf(rec, sizeof(rec), "{\"category_id\":\"k%d\",\"embedding\":[0,0,0,0,0,0,0,1]}", i);
        int rc = tl_cat_external(full, rec, strlen(rec), err, sizeof(err));
        assert_int_equal(rc, i < 16 ? 0 : -1);
    }
    assert_non_null(strstr(err, "categories.max (16)"));
    tl_cat_model_free(full);
    fx_user_fini(&u);
    env_close(&e);
}

/* The records: published when moved by the threshold, the user keeps the last, the
 * probabilities add up, and each sentence's numbers are its record's. */
static void test_records(void **state)
{
    (void)state;
    env e;
    env_open(&e);
    tl_user u;
    fx_user_init(&u, "u");
    const char *cats[] = {"A", "B", "A", "C", "A", "B", "B", "D", "A", "A"};
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof(id), "e%d", i);
        step(&e, &u, id, cats[i], TL_BROWSE, T0 + i * 600000);
    }
    int n = e.ms.count[MS_NEXTCAT];
    assert_true(n >= 3);
    const tl_nc_view *prev = NULL;
    for (int i = 0; i < n; i++) {
        const tl_next_categories *r = &ms_nth(&e.ms, MS_NEXTCAT, i)->nextcat;
        const tl_nc_view *v = r->view;
        assert_string_equal(r->user_id, "u");
        assert_true(fabs(r->moved - tl_nc_moved(prev, v)) < 1e-6);
        assert_true(r->moved >= e.cc.threshold);
        double sum = v->p_other;
        for (int j = 0; j < v->n; j++) {
            sum += v->cat[j].p;
            if (j) assert_true(v->cat[j].p <= v->cat[j - 1].p);
        }
        assert_true(fabs(sum - 1) < 1e-5);
        assert_int_equal(v->dim, e.cc.dim);
        /* the sentence: each listed category from 1% with its percentage, the others
         * counted, then "another" */
        const char *s = r->explanation;
        int said = 0;
        while (said < v->n && lround(v->cat[said].p * 100) >= 1) said++;
        if (said < v->n) {
            char more[64];
            snprintf(more, sizeof(more), "(%d %slisted, each below 1%%)", v->n - said,
                     said ? "more " : "");
            assert_non_null(strstr(r->explanation, more));
        }
        for (int j = 0; j < said; j++) {
            char want[64];
            snprintf(want, sizeof(want), "%.*s (%ld%%: ", (int)v->cat[j].len, v->cat[j].id,
                     lround(v->cat[j].p * 100));
            const char *at = strstr(s, want);
            if (!at) fail_msg("record %d: no \"%s\" in \"%s\"", i, want, r->explanation);
            s = at + strlen(want);
        }
        char other[48];
        snprintf(other, sizeof(other), "; %ld%% another category", lround(v->p_other * 100));
        if (!strstr(r->explanation, other)) fail_msg("%s\nwanted %s", r->explanation, other);
        for (int j = 0; j < v->n_like; j++) {
            char want[32];
            snprintf(want, sizeof(want), "%.*s", (int)v->like[j].len, v->like[j].id);
            assert_non_null(strstr(r->explanation, want));
        }
        prev = v;
    }
    /* the user keeps the last published */
    tl_nc_view kept;
    assert_int_equal(tl_nc_decode(&kept, u.nc, u.nc_len), 0);
    assert_true(tl_nc_moved(prev, &kept) == 0);
    assert_true(kept.ts == ms_nth(&e.ms, MS_NEXTCAT, n - 1)->nextcat.ts);
    fx_user_fini(&u);
    env_close(&e);
}

/* ---- undo ------------------------------------------------------------------------ */

/* Users k in [from, to), five events each in categories prefix0 .. prefix<span - 1> (a walk
 * seeded by from, so a span learned again is the same events). */
static void learn_span(env *e, int from, int to, const char *prefix, int span)
{
    char cat[16];
    uint64_t rng = 11 + (uint64_t)from;
    for (int k = from; k < to; k++) {
        tl_user u;
        user_k(&u, "u", k);
        for (int s = 0; s < 5; s++) {
            snprintf(cat, sizeof(cat), "%s%d", prefix, (int)(fx_xorshift64(&rng) % (uint64_t)span));
            step(e, &u, "e", cat, TL_BROWSE, T0 + k * HOUR + s * 1000);
        }
        fx_user_fini(&u);
    }
}

static void external(tl_cat_model *cm, const char *json)
{
    char err[256];
    assert_int_equal(tl_cat_external(cm, json, strlen(json), err, sizeof(err)), 0);
}

/* The same checkpoint bytes and statistics. */
static void same_model(const tl_cat_model *a, const tl_cat_model *b)
{
    tl_buf x = {0}, y = {0};
    tl_cat_model_encode(a, &x);
    tl_cat_model_encode(b, &y);
    fx_same_bytes_free(&x, &y);
    tl_cat_stats sa, sb;
    tl_cat_model_stats(a, &sa);
    tl_cat_model_stats(b, &sb);
    assert_memory_equal(&sa, &sb, sizeof(sa));
}

/* exactly_once: an aborted transaction's learning is taken back, bit for bit, with the
 * categories it added dropped and the external embeddings read during it kept; learning
 * its input again then gives the model that learned it once. */
static void test_undo(void **state)
{
    (void)state;
    static const char *emb_old = "{\"category_id\":\"c1\",\"embedding\":[1,2,3,4,5,6,7,8]}";
    static const char *emb_new = "{\"category_id\":\"x0\",\"embedding\":[8,7,6,5,4,3,2,1]}";
    env e, r;   /* journaled; the reference, which learns what is kept, once */
    env_open(&e);
    env_open(&r);
    tl_cat_undo_start(e.cm);

    learn_span(&e, 0, 20, "c", 8);   /* committed */
    tl_cat_txn_end(e.cm, 1);
    learn_span(&r, 0, 20, "c", 8);
    same_model(e.cm, r.cm);

    /* aborted: old categories and new ones, and two embeddings in its middle */
    learn_span(&e, 20, 30, "c", 8);
    learn_span(&e, 30, 40, "d", 4);
    external(e.cm, emb_old);
    external(e.cm, emb_new);
    learn_span(&e, 40, 45, "c", 8);
    tl_cat_stats before;
    tl_cat_model_stats(e.cm, &before);
    assert_true(before.categories == 8 + 4 + 1);
    tl_cat_txn_end(e.cm, 0);
    external(r.cm, emb_old);
    external(r.cm, emb_new);
    same_model(e.cm, r.cm);
    const float *v, *o;
    float b;
    assert_int_equal(tl_cat_lookup(e.cm, "d0", &v, &o, &b), -1);
    assert_int_equal(tl_cat_lookup(e.cm, "x0", &v, &o, &b), 0);
    assert_true(v[0] == 8 && v[7] == 1);

    /* its input processed again, committed */
    learn_span(&e, 20, 30, "c", 8);
    learn_span(&e, 30, 40, "d", 4);
    learn_span(&e, 40, 45, "c", 8);
    tl_cat_txn_end(e.cm, 1);
    learn_span(&r, 20, 30, "c", 8);
    learn_span(&r, 30, 40, "d", 4);
    learn_span(&r, 40, 45, "c", 8);
    same_model(e.cm, r.cm);

    /* a transaction that learned nothing has nothing to take back */
    tl_cat_txn_end(e.cm, 0);
    same_model(e.cm, r.cm);
    env_close(&e);
    env_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_bytes),
        cmocka_unit_test(test_view_moved),
        cmocka_unit_test(test_predict_by_hand),
        cmocka_unit_test(test_learning_step),
        cmocka_unit_test(test_successors),
        cmocka_unit_test(test_learns_a_pattern),
        cmocka_unit_test(test_like),
        cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_external),
        cmocka_unit_test(test_undo),
        cmocka_unit_test(test_stored_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
