/*
 * test_model.c -- model/journey_features.c and model/model.c against docs/attribution.md
 * ("The conversion model", "Model-based credits"), every expected number computed here by
 * a second path:
 *   - a touchpoint's coordinates, from the documented keys, hash (FNV-1a, itself checked
 *     against the published vectors, as is tl_hash64), anchors and hat weights, written
 *     out here; the anchors' weights by hand;
 *   - a shadow learner: a tl_ftrl with the model's parameters, trained on the vectors
 *     built here (the bias and every touchpoint's coordinates at the example's time, merged),
 *     with inverse-propensity weights computed here, in the same order. p(S) comes from
 *     it; Shapley values by walking every permutation (3 and 5 touchpoints) or by the
 *     subset formula (12), sampled beyond model.shapley.exact.max; removal from
 *     leave-one-out; both normalised here; the progressive log-loss and AUC (model and
 *     running-rate baseline) from the shadow's scores before each update;
 *   - the fallback to linear credits when the touchpoints lower p;
 *   - examples through the attribution stage with a RocksDB store: control moments on the
 *     grid (negative) with the journey as it was, purchases (positive), nothing learned
 *     twice, the journey kept;
 *   - no leakage of the purchase's item or category into the model's numbers;
 *   - the checkpoint: a restored model scores, reports and continues identically, and a
 *     corrupt file is refused with an error naming it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/arena.h"
#include "engine/state.h"
#include "lib/util.h"
#include "model/attribution.h"
#include "model/ftrl.h"
#include "model/journey_features.h"
#include "model/intent.h"
#include "model/model.h"
#include "model/shapley.h"
#include "fixtures.h"
#include "memsink.h"

#define DAY 86400000LL
#define HOUR 3600000LL
#define DIM (1 << 18)   /* TL_JF_DIM, as documented */
#define GRID (6 * HOUR)     /* model.control.interval.ms of fx_model_cfg() */

/* ---- helpers ------------------------------------------------------------------------ */

static void near(double got, double want, double tol, const char *what, int i)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.17g, expected %.17g (diff %.3g)", what, i, got, want, got - want);
}

static void same_bits(double a, double b, const char *what, int i)
{
    if (memcmp(&a, &b, sizeof(double)) != 0)
        fail_msg("%s[%d]: %.17g and %.17g differ", what, i, a, b);
}

/* FNV-1a 64 over the bytes of s (offset basis 0xcbf29ce484222325, prime 2^40 + 435):
 * the hash lib/util.h documents for tl_hash64, which the buckets use. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static tl_journey_tp mktp(const char *id, tl_event_type type, int64_t ts, int32_t dwell,
                          const char *channel, const char *category, float share, float propensity)
{
    tl_journey_tp t;
    memset(&t, 0, sizeof(t));
    t.event_id = (char *)id;
    t.item_id = (char *)id;
    t.category_id = (char *)category;
    t.channel = (char *)channel;
    t.ts = ts;
    t.type = (uint8_t)type;
    t.dwell_ms = dwell;
    t.share = share;
    t.propensity = propensity;
    return t;
}

/* The second feature path, from docs/attribution.md: a touchpoint's keys are the bytes
 * kind, '0' + type, name, hashed with FNV-1a; (key, anchor) goes to coordinate
 * 1 + splitmix64-finaliser(key + golden * (anchor + 1)) mod (2^18 - 1); its value is the
 * key's value times the hat weight of the touchpoint's age at the anchor. */
static const int64_t ref_anchor[8] = {0,       3 * HOUR, 12 * HOUR, DAY,
                                      2 * DAY, 4 * DAY,  8 * DAY,   16 * DAY};

static uint64_t ref_key(char kind, int type, const char *name)
{
    char b[600];
    snprintf(b, sizeof(b), "%c%c%s", kind, '0' + type, name ? name : "");
    return fnv1a(b);
}

static int32_t ref_index(uint64_t key, int anchor)
{
    uint64_t z = key + 0x9E3779B97F4A7C15ULL * (uint64_t)(anchor + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return 1 + (int32_t)(z % (uint64_t)(DIM - 1));
}

/* The anchors around age and their weights (1 - f, f), f the position between them. */
static int ref_hat(int64_t age, int *an, double *w)
{
    if (age >= ref_anchor[7]) {
        an[0] = 7;
        w[0] = 1;
        return 1;
    }
    int k = 0;
    while (age >= ref_anchor[k + 1]) k++;
    double f = (double)(age - ref_anchor[k]) / (double)(ref_anchor[k + 1] - ref_anchor[k]);
    an[0] = k;
    w[0] = 1 - f;
    an[1] = k + 1;
    w[1] = f;
    return f > 0 ? 2 : 1;
}

typedef struct rvec {
    int32_t idx[1024];
    double x[1024];
    int n;
} rvec;

static void rvec_add(rvec *v, int32_t i, double x)
{
    for (int k = 0; k < v->n; k++)
        if (v->idx[k] == i) {
            v->x[k] += x;
            return;
        }
    assert_true(v->n < 1024);
    v->idx[v->n] = i;
    v->x[v->n++] = x;
}

/* Touchpoint t's coordinates at decision time at, added to v. */
static void ref_tp(const tl_journey_tp *t, int64_t at, rvec *v)
{
    uint64_t key[4];
    double val[4];
    int nk = 0;
    key[nk] = ref_key('c', t->type, t->channel);
    val[nk++] = 1;
    if (t->category_id) {
        key[nk] = ref_key('g', 0, t->category_id);
        val[nk++] = 1;
    }
    if (t->dwell_ms >= 0) {
        key[nk] = ref_key('d', t->type,
                          t->dwell_ms < 10000       ? "1"
                              : t->dwell_ms < 60000 ? "2"
                                                    : "3");
        val[nk++] = 1;
    }
    if (t->share >= 0) {
        key[nk] = ref_key('s', t->type, NULL);
        val[nk++] = t->share;
    }
    int an[2];
    double w[2];
    int h = ref_hat(at - t->ts, an, w);
    for (int i = 0; i < nk; i++)
        for (int j = 0; j < h; j++) rvec_add(v, ref_index(key[i], an[j]), val[i] * w[j]);
}

/* The example of the moment at with the touchpoints of mask: the bias, the user's
 * history (h: purchases before, first event; NULL: none), then the touchpoints'. */
static void ref_vec(const tl_model_user *h, const tl_journey_tp *tps, int n, int64_t at,
                    uint64_t mask, rvec *v)
{
    v->n = 0;
    rvec_add(v, 0, 1);
    /* the intent estimate, log((a + purchases) / (a + expected)) with a the prior's
     * shape, when not 0 */
    const double a = TL_JF_INTENT_PRIOR;
    double intent = h ? log((a + h->purchases) / (a + h->expected)) : 0;
    if (intent != 0) rvec_add(v, ref_index(ref_key('u', 0, "intent"), 0), intent);
    if (h && h->purchases)
        rvec_add(v, ref_index(ref_key('u', 0, "purchases"), 0), log1p(h->purchases));
    int64_t since =
        h ? (h->last_purchase != INT64_MIN ? h->last_purchase : h->first_ts) : INT64_MIN;
    if (since != INT64_MIN) {   /* the time since the last purchase (or the first event) */
        uint64_t key =
            ref_key('u', 0, h->last_purchase != INT64_MIN ? "since_purchase" : "since_first");
        int an[2];
        double w[2];
        int k = ref_hat(at - since, an, w);
        for (int j = 0; j < k; j++) rvec_add(v, ref_index(key, an[j]), w[j]);
    }
    for (int i = 0; i < n; i++)
        if (mask >> i & 1) ref_tp(&tps[i], at, v);
}

static double ref_sigmoid(double t) { return t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t)); }

/* Mean of 1/propensity over the touchpoints that have one, clipped; 1 when none has. */
static double ref_weight(const tl_journey_tp *tps, int n, double clip)
{
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (tps[i].propensity > 0) {
            sum += 1.0 / tps[i].propensity;
            k++;
        }
    if (!k) return 1.0;
    return sum / k > clip ? clip : sum / k;
}

/* A model checkpointing to path (none when NULL); fails the test when refused. */
static tl_model *model_new_at(const tl_model_cfg *mc, const char *path)
{
    char err[512] = "";
    tl_model *m = tl_model_new(mc, path, err, sizeof(err));
    if (!m) fail_msg("tl_model_new: %s", err);
    return m;
}

static tl_model *model_new(const tl_model_cfg *mc) { return model_new_at(mc, NULL); }

/* The checkpoint file and a scratch file beside it, in the test's directory. */
static void checkpoint_paths(char *path, char *bad, size_t size)
{
    snprintf(path, size, "%s/model.bin", fx_tmpdir);
    snprintf(bad, size, "%s/bad.bin", fx_tmpdir);
}

/* ---- the shadow learner --------------------------------------------------------------- */

#define MAX_EX 1024

typedef struct shadow {
    tl_ftrl *f;
    /* the averaged weights the credits use (ftrl.h), by their plain recurrence over every
     * coordinate that ever learned */
    int eta;
    double *avg;
    int32_t *used;
    int n_used;
    double clip;
    int n;                       /* examples learned */
    double p[MAX_EX], c[MAX_EX];  /* score before the update, weight */
    int y[MAX_EX];
} shadow;

static void shadow_init(shadow *sh, const tl_model_cfg *mc)
{
    memset(sh, 0, sizeof(*sh));
    sh->f = tl_ftrl_new(DIM, mc->alpha, mc->beta, mc->l1, mc->l2);
    sh->clip = mc->ipw ? mc->ipw_clip : 0;
    sh->eta = mc->average_eta;
    sh->avg = tl_xcalloc(DIM, sizeof(double));
    sh->used = tl_xcalloc(DIM, sizeof(int32_t));
    assert_non_null(sh->f);
}

static void shadow_fini(shadow *sh)
{
    tl_ftrl_destroy(sh->f);
    free(sh->avg);
    free(sh->used);
}

/* The model's offset (model.c): the log-odds of a purchase among the examples so far,
 * with one of each added. */
static double shadow_offset(const shadow *sh)
{
    double pos = 0;
    for (int i = 0; i < sh->n; i++) pos += sh->y[i];
    return log((pos + 1) / (sh->n - pos + 1));
}

/* What the model should learn from the moment at with the touchpoints tps[0..n); h's
 * expected purchases then grow by the moment's p before the update, without the intent
 * estimate (the first coordinate after the bias when there is one). */
static void shadow_learn(shadow *sh, tl_model_user *h, const tl_journey_tp *tps, int n, int label,
                         int64_t at)
{
    static rvec v;
    ref_vec(h, tps, n, at, ~(uint64_t)0, &v);
    double c = sh->clip > 0 ? ref_weight(tps, n, sh->clip) : 1.0;
    assert_true(sh->n < MAX_EX);
    if (h) {
        double z = shadow_offset(sh);
        for (int k = 0; k < v.n; k++)
            if (v.idx[k] != ref_index(ref_key('u', 0, "intent"), 0))
                z += tl_ftrl_weight(sh->f, v.idx[k]) * v.x[k];
        h->expected += ref_sigmoid(z);
    }
    uint64_t before = tl_ftrl_version(sh->f);
    sh->p[sh->n] = tl_ftrl_learn_sparse(sh->f, v.idx, v.x, v.n, shadow_offset(sh), label, c);
    uint64_t t = tl_ftrl_version(sh->f);
    if (t != before) {
        for (int k = 0; k < v.n; k++) {
            int seen = 0;
            for (int j = 0; j < sh->n_used && !seen; j++) seen = sh->used[j] == v.idx[k];
            if (!seen) sh->used[sh->n_used++] = v.idx[k];
        }
        for (int j = 0; j < sh->n_used; j++) {
            int32_t i = sh->used[j];
            sh->avg[i] += (sh->eta + 1) * (tl_ftrl_weight(sh->f, i) - sh->avg[i]) /
                (double)(t + (uint64_t)sh->eta);
        }
    }
    sh->c[sh->n] = c;
    sh->y[sh->n] = label;
    sh->n++;
}

/* The control moments of the grid in (from, until), each with the touchpoints of tps that
 * are at most 7 days old then. */
static void shadow_controls(shadow *sh, tl_model_user *h, const tl_journey_tp *tps, int n,
                            int64_t from, int64_t until)
{
    for (int64_t g = (from / GRID + 1) * GRID; g < until; g += GRID) {
        int b = 0, e = n;
        while (e > 0 && tps[e - 1].ts > g) e--;
        while (b < e && tps[b].ts < g - 7 * DAY) b++;
        shadow_learn(sh, h, tps + b, e - b, 0, g);
    }
}

/* p(S) at the moment at for a purchase's touchpoints tps[0..n), S a mask over them. */
static double shadow_p(const shadow *sh, const tl_model_user *h, const tl_journey_tp *tps, int n,
                       int64_t at, uint64_t mask)
{
    static rvec v;
    ref_vec(h, tps, n, at, mask, &v);
    double s = 0;
    for (int k = 0; k < v.n; k++) s += sh->avg[v.idx[k]] * v.x[k];
    return ref_sigmoid(shadow_offset(sh) + s);
}

/* ---- synthetic training data ------------------------------------------------------------ */

typedef struct example {
    tl_journey_tp tp[5];
    int n, label;
} example;

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng01(uint64_t *s) { return (double)(rng(s) >> 11) / 9007199254740992.0; }

/* Journeys of 1-5 touchpoints; one with an ADD_TO_CART ends in a purchase 3 times in 4,
 * one without 1 time in 7 (all_negative: never). */
static void gen_examples(example *ex, int count, uint64_t seed, int all_negative)
{
    static const char *const channels[] = {"web", "app", "email", NULL};
    static const char *const cats[] = {"c1", "c2", "c3", "c4", "c5", NULL};
    uint64_t s = seed;
    for (int i = 0; i < count; i++) {
        example *e = &ex[i];
        e->n = 1 + (int)(rng(&s) % 5);
        int64_t ts = (int64_t)(i + 1) * 10 * DAY;
        int cart = 0;
        for (int k = 0; k < e->n; k++) {
            ts += (int64_t)(rng(&s) % (uint64_t)(2 * DAY));
            tl_event_type type = (tl_event_type)(rng(&s) % 5);
            if (type == TL_ADD_TO_CART) cart = 1;
            int32_t dwell = rng(&s) % 4 == 0 ? -1 : (int32_t)(rng(&s) % 120000);
            float share = rng(&s) % 2 ? -1.0f : (float)rng01(&s);
            float prop = rng(&s) % 3 ? -1.0f : (float)(0.04 + 0.96 * rng01(&s));
            e->tp[k] =
                mktp("x", type, ts, dwell, channels[rng(&s) % 4], cats[rng(&s) % 6], share, prop);
        }
        int r = (int)(rng(&s) % 28);
        e->label = all_negative ? 0 : cart ? r < 21 : r < 4;
    }
}

static void train(tl_model *m, shadow *sh, const example *ex, int count)
{
    for (int i = 0; i < count; i++) {
        tl_model_learn(m, NULL, ex[i].tp, ex[i].n, ex[i].label, ex[i].tp[ex[i].n - 1].ts);
        tl_model_path(m, ex[i].tp, ex[i].n, ex[i].label, 0, NULL); /* the Markov chain's (if on) */
        if (sh) shadow_learn(sh, NULL, ex[i].tp, ex[i].n, ex[i].label, ex[i].tp[ex[i].n - 1].ts);
    }
}

/* ---- reference credits ------------------------------------------------------------------ */

/* Shapley values of v over n players by walking every permutation (v[mask], v[0] = 0). */
static void perm_walk(int n, int depth, int *order, uint64_t used, const double *v, double *phi,
                      long *perms)
{
    if (depth == n) {
        uint64_t S = 0;
        for (int k = 0; k < n; k++) {
            uint64_t b = (uint64_t)1 << order[k];
            phi[order[k]] += v[S | b] - v[S];
            S |= b;
        }
        (*perms)++;
        return;
    }
    for (int j = 0; j < n; j++) {
        if (used >> j & 1) continue;
        order[depth] = j;
        perm_walk(n, depth + 1, order, used | (uint64_t)1 << j, v, phi, perms);
    }
}

static void ref_shapley_game(int n, const double *v, double *phi)
{
    int order[8];
    long perms = 0;
    for (int j = 0; j < n; j++) phi[j] = 0;
    perm_walk(n, 0, order, 0, v, phi, &perms);
    for (int j = 0; j < n; j++) phi[j] /= (double)perms;
}

/* The documented shares (model/shapley.h): positive parts over their sum; 0 (the
 * fallback) when that sum is under 1e-6. */
static int ref_normalise(int n, const double *raw, double *out)
{
    double sum = 0;
    for (int j = 0; j < n; j++) sum += raw[j] > 0 ? raw[j] : 0;
    if (!(sum >= 1e-6)) return 0;
    for (int j = 0; j < n; j++) out[j] = (raw[j] > 0 ? raw[j] : 0) / sum;
    return 1;
}

typedef struct ref_credits {
    double p_all, p_empty;
    double shap_raw[8], shap[8], rem_raw[8], rem[8];
    int shap_ok, rem_ok;
} ref_credits;

static void ref_compute(const shadow *sh, const tl_model_user *h, const tl_journey_tp *tps, int n,
                        int64_t at, ref_credits *rc)
{
    double v[256];
    assert_true(n <= 8);
    uint64_t all = ((uint64_t)1 << n) - 1;
    rc->p_empty = shadow_p(sh, h, tps, n, at, 0);
    rc->p_all = shadow_p(sh, h, tps, n, at, all);
    for (uint64_t S = 0; S <= all; S++) v[S] = shadow_p(sh, h, tps, n, at, S) - rc->p_empty;
    ref_shapley_game(n, v, rc->shap_raw);
    for (int j = 0; j < n; j++) rc->rem_raw[j] = v[all] - v[all & ~((uint64_t)1 << j)];
    rc->shap_ok = ref_normalise(n, rc->shap_raw, rc->shap);
    rc->rem_ok = ref_normalise(n, rc->rem_raw, rc->rem);
    for (int j = 0; j < n && !rc->shap_ok; j++) rc->shap[j] = 1.0 / n;
    for (int j = 0; j < n && !rc->rem_ok; j++) rc->rem[j] = 1.0 / n;
}

/* Calls tl_model_credit for a purchase at pts with touchpoints tps[0..n). */
static void credit(tl_model *m, const tl_journey_tp *tps, int n, int64_t pts, tl_arena *a,
                   tl_attribution *r)
{
    memset(r, 0, sizeof(*r));
    r->conversion_event_id = "purchase";
    r->user_id = "u";
    r->item_id = "bought";
    r->ts = pts;
    r->n_touchpoints = n;
    r->explanation = "";
    tl_model_credit(m, NULL, tps, n, r, a, &r->explanation);
}

/* What m reports now. */
static tl_model_report report(const tl_model *m)
{
    tl_model_report rep;
    tl_model_report_get(m, &rep);
    return rep;
}

/* Both model methods of r fell back to the linear split with the given status: each of
 * the n touchpoints has 1/n (within tol). */
static void expect_linear_credits(const tl_attribution *r, int n, const char *status, double tol)
{
    assert_string_equal(r->model_status[TL_M_SHAPLEY], status);
    assert_string_equal(r->model_status[TL_M_REMOVAL], status);
    for (int j = 0; j < n; j++) {
        near(r->credits[TL_M_SHAPLEY][j], 1.0 / n, tol, "shapley (linear)", j);
        near(r->credits[TL_M_REMOVAL][j], 1.0 / n, tol, "removal (linear)", j);
    }
}

static void check_against_ref(const tl_attribution *r, const ref_credits *rc, int n)
{
    assert_true(r->has_model);
    assert_true(r->has_method[TL_M_SHAPLEY]);
    assert_true(r->has_method[TL_M_REMOVAL]);
    near(r->p_conversion, rc->p_all, 1e-12, "p_conversion", 0);
    near(r->p_baseline, rc->p_empty, 1e-12, "p_baseline", 0);
    double s1 = 0, s2 = 0;
    for (int j = 0; j < n; j++) {
        near(r->credits[TL_M_SHAPLEY][j], rc->shap[j], 1e-12, "shapley", j);
        near(r->credits[TL_M_REMOVAL][j], rc->rem[j], 1e-12, "removal", j);
        s1 += r->credits[TL_M_SHAPLEY][j];
        s2 += r->credits[TL_M_REMOVAL][j];
    }
    near(s1, 1, 1e-12, "shapley sum", 0);
    near(s2, 1, 1e-12, "removal sum", 0);
}

/* The model's p on a fixed probe journey equals the shadow's: the model has learned
 * exactly the examples the shadow did (one extra, missing or different example moves
 * p by far more than 1e-12). */
static void probe(tl_model *m, const shadow *sh, const char *when)
{
    const int64_t T = 5000 * DAY;
    tl_journey_tp tps[3] = {
        mktp("q1", TL_BROWSE, T - 2 * DAY, 20000, "web", "c1", 0.3f, -1),
        mktp("q2", TL_CLICK, T - HOUR, 3000, "app", "c2", -1, -1),
        mktp("q3", TL_ADD_TO_CART, T, 70000, "email", "c1", 0.6f, -1),
    };
    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution r;
    credit(m, tps, 3, T + HOUR, &a, &r);
    double pa = shadow_p(sh, NULL, tps, 3, T + HOUR, 7),
           pe = shadow_p(sh, NULL, tps, 3, T + HOUR, 0);
    if (!(fabs(r.p_conversion - pa) <= 1e-12) || !(fabs(r.p_baseline - pe) <= 1e-12))
        fail_msg("%s: model p = %.17g, p0 = %.17g; expected %.17g, %.17g from the examples "
                 "the model should have learned",
                 when, r.p_conversion, r.p_baseline, pa, pe);
    tl_arena_destroy(&a);
}

/* ==== 1. journey features ================================================================ */

static const int64_t T1 = 1000 * DAY;

static void three_tps(tl_journey_tp *tps)
{
    tps[0] = mktp("a", TL_CLICK, T1 - 2 * DAY, 5000, "web", "c1", 0.25f, -1);
    tps[1] = mktp("b", TL_ADD_TO_CART, T1 - DAY / 2, 90000, "app", "c1", 0.5f, -1);
    tps[2] = mktp("c", TL_CLICK, T1, -1, NULL, "c2", -1, -1);
}

/* lib/util.h documents tl_hash64 as FNV-1a 64, the hash the feature buckets are
 * documented to use: the published test vectors, and the local implementation. */
static void test_hash_fnv1a(void **state)
{
    (void)state;
    const struct {
        const char *s;
        uint64_t h;
    } v[] = {{"", 0xcbf29ce484222325ULL},
             {"a", 0xaf63dc4c8601ec8cULL},
             {"foobar", 0x85944171f73967e8ULL}};
    for (int i = 0; i < 3; i++) {
        if (fnv1a(v[i].s) != v[i].h) fail_msg("local FNV-1a of \"%s\" is wrong", v[i].s);
        uint64_t h = tl_hash64(v[i].s, strlen(v[i].s));
        if (h != v[i].h)
            fail_msg("tl_hash64(\"%s\") = %#llx, FNV-1a 64 is %#llx", v[i].s, (unsigned long long)h,
                     (unsigned long long)v[i].h);
    }
    const char *const w[] = {"web", "app", "email", "c1", "c2", "category-with-a-long-name"};
    for (int i = 0; i < 6; i++)
        if (fnv1a(w[i]) != tl_hash64(w[i], strlen(w[i]))) fail_msg("tl_hash64(\"%s\")", w[i]);
}

/* The anchors' hat weights by hand; a touchpoint's coordinates as the documented keys
 * give them (ref_tp); additivity: the example of a set is the bias plus its members'. */
static void test_features(void **state)
{
    (void)state;
    int an[2];
    double w[2];
    struct {
        int64_t age;
        int n, a0, a1;
        double w0, w1;
    } h[] = {
        {0, 1, 0, -1, 1, 0}, /* at the touch */
        {-HOUR, 1, 0, -1, 1, 0}, /* a touch "after" the moment: age 0 */
        {HOUR, 2, 0, 1, 2.0 / 3, 1.0 / 3}, /* 1 h: between 0 and 3 h */
        {6 * HOUR, 2, 1, 2, 2.0 / 3, 1.0 / 3}, /* 6 h: between 3 h and 12 h */
        {DAY, 1, 3, -1, 1, 0}, /* exactly on the 1-day anchor */
        {3 * DAY, 2, 4, 5, 0.5, 0.5}, /* halfway from 2 to 4 days */
        {16 * DAY, 1, 7, -1, 1, 0}, /* the last anchor */
        {40 * DAY, 1, 7, -1, 1, 0}, /* past it */
    };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        int n = tl_jf_hat(h[i].age, an, w);
        assert_int_equal(n, h[i].n);
        assert_int_equal(an[0], h[i].a0);
        near(w[0], h[i].w0, 1e-15, "hat weight", (int)i);
        if (n == 2) {
            assert_int_equal(an[1], h[i].a1);
            near(w[1], h[i].w1, 1e-15, "hat weight", (int)i);
        }
    }
    for (int k = 0; k < 8; k++) assert_int_equal(tl_jf_anchor_ms[k], ref_anchor[k]);
    assert_int_equal(tl_jf_key('c', TL_CLICK, "web"), ref_key('c', TL_CLICK, "web"));
    assert_int_equal(tl_jf_key('c', TL_CLICK, NULL), ref_key('c', TL_CLICK, NULL));
    assert_true(tl_jf_key('c', TL_CLICK, "web") != tl_jf_key('c', TL_BROWSE, "web"));

    /* the user's history against the reference's: 2 purchases, the last 1 day before, 1.5
     * expected: log1p(2), the 1-day anchor of since_purchase, and the intent estimate
     * log((a + 2) / (a + 1.5)) (a = TL_JF_INTENT_PRIOR), first */
    const tl_model_user uh = {2, T1 - 30 * DAY, T1 - DAY, 1.5};
    int32_t uidx[TL_JF_USER_NNZ];
    double ux[TL_JF_USER_NNZ];
    int un = tl_jf_user(uh.purchases, uh.first_ts, uh.last_purchase, uh.expected, T1, uidx, ux);
    assert_int_equal(un, 3);
    assert_int_equal(uidx[0], ref_index(ref_key('u', 0, "intent"), 0));
    near(ux[0], log((TL_JF_INTENT_PRIOR + 2) / (TL_JF_INTENT_PRIOR + 1.5)), 1e-15,
         "intent estimate", 0);
    rvec uwant;
    ref_vec(&uh, NULL, 0, T1, 0, &uwant);
    assert_int_equal(uwant.n, 1 + un); /* (the bias first) */
    for (int k = 0; k < un; k++) {
        assert_int_equal(uidx[k], uwant.idx[1 + k]);
        near(ux[k], uwant.x[1 + k], 1e-15, "user history", k);
    }
    /* no purchase and none expected (a user's first moments): no intent pair */
    assert_int_equal(tl_jf_user(0, T1, INT64_MIN, 0, T1, uidx, ux), 1);
    assert_true(uidx[0] != tl_jf_intent_index());

    tl_journey_tp tps[3];
    three_tps(tps);
    tl_jf_tp jf[3];
    tl_jf_prepare(tps, 3, jf);
    const int64_t at = T1 + 6 * HOUR;
    for (int i = 0; i < 3; i++) {
        int32_t idx[TL_JF_TP_NNZ];
        double x[TL_JF_TP_NNZ];
        int n = tl_jf_features(&jf[i], at, idx, x);
        rvec want;
        want.n = 0;
        ref_tp(&tps[i], at, &want);
        rvec got;
        got.n = 0;
        for (int k = 0; k < n; k++) {
            assert_true(idx[k] >= 1 && idx[k] < DIM);
            rvec_add(&got, idx[k], x[k]);
        }
        assert_int_equal(got.n, want.n);
        for (int k = 0; k < want.n; k++) {
            int found = 0;
            for (int j = 0; j < got.n; j++)
                if (got.idx[j] == want.idx[k]) {
                    near(got.x[j], want.x[k], 1e-15, "coordinate value", k);
                    found = 1;
                }
            if (!found) fail_msg("touchpoint %d: coordinate %d missing", i, (int)want.idx[k]);
        }
    }
    /* a: click on web, category c1, dwell 5 s, share 0.25, 2 d 6 h old: 4 keys x 2 anchors */
    rvec v;
    v.n = 0;
    ref_tp(&tps[0], at, &v);
    assert_int_equal(v.n, 8);
    /* c: no channel, no dwell, no share, 6 h old: its type key and its category */
    v.n = 0;
    ref_tp(&tps[2], at, &v);
    assert_int_equal(v.n, 4);
}

/* ==== 2. model credits against the shadow ================================================== */

#define N_TRAIN 400

static example train_set[N_TRAIN];

static const int64_t P2 = 9000 * DAY;

static void purchase3(tl_journey_tp *t)
{
    t[0] = mktp("p3a", TL_BROWSE, P2 - 3 * DAY, 30000, "web", "c1", 0.2f, -1);
    t[1] = mktp("p3b", TL_CLICK, P2 - DAY, 5000, "app", "c2", 0.1f, 0.5f);
    t[2] = mktp("p3c", TL_ADD_TO_CART, P2 - 2 * HOUR, 80000, "web", "c1", 0.4f, -1);
}

static void purchase5(tl_journey_tp *t)
{
    t[0] = mktp("p5a", TL_IMPRESSION, P2 - 5 * DAY, -1, "email", "c3", -1, 0.2f);
    t[1] = mktp("p5b", TL_CLICK, P2 - 4 * DAY, 12000, "web", "c1", 0.3f, -1);
    t[2] = mktp("p5c", TL_FAVORITE, P2 - 2 * DAY, 45000, "app", "c2", 0.05f, -1);
    t[3] = mktp("p5d", TL_CLICK, P2 - DAY, 2000, "web", "c1", 0.35f, -1);
    t[4] = mktp("p5e", TL_ADD_TO_CART, P2 - HOUR, 95000, "app", "c1", 0.5f, -1);
}

static void check_purchase(tl_model *m, const shadow *sh, const tl_journey_tp *tps, int n)
{
    tl_arena a;
    tl_arena_init(&a, 4096);
    ref_credits rc;
    ref_compute(sh, NULL, tps, n, tps[n - 1].ts + HOUR, &rc);
    /* the test is meaningful only if the model finds these touchpoints useful and the
     * credits are not all equal */
    assert_true(rc.shap_ok && rc.rem_ok);
    double spread = 0;
    for (int j = 0; j < n; j++) spread += fabs(rc.shap[j] - 1.0 / n);
    assert_true(spread > 0.05);
    /* efficiency of the reference: Shapley values sum to v(N) */
    double sum = 0;
    for (int j = 0; j < n; j++) sum += rc.shap_raw[j];
    near(sum, rc.p_all - rc.p_empty, 1e-14, "sum of Shapley values", n);

    tl_model_report r0, r1;
    tl_model_report_get(m, &r0);
    tl_attribution r;
    credit(m, tps, n, tps[n - 1].ts + HOUR, &a, &r);
    check_against_ref(&r, &rc, n);
    assert_int_equal(r.model_version, N_TRAIN);
    char want[64];
    snprintf(want, sizeof(want), "the model (version %d)", N_TRAIN);
    if (!strstr(r.explanation, want) || !strstr(r.explanation, "Shapley (exact)") ||
        strstr(r.explanation, "fall back"))
        fail_msg("explanation: %s", r.explanation);
    /* crediting does not learn */
    tl_model_report_get(m, &r1);
    assert_int_equal(r1.version, r0.version);
    assert_int_equal(r1.examples, r0.examples);
    assert_int_equal(r1.credited, r0.credited + 1);
    assert_int_equal(r1.fallbacks, r0.fallbacks);
    tl_arena_destroy(&a);
}

/* Weighted log-loss and AUC of (p, y, c) as metrics.h defines them. */
static double ref_logloss(const double *p, const int *y, const double *c, int n)
{
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double q = p[i] < 1e-15 ? 1e-15 : p[i] > 1 - 1e-15 ? 1 - 1e-15 : p[i];
        num += c[i] * -(y[i] ? log(q) : log(1 - q));
        den += c[i];
    }
    return num / den;
}

static double ref_auc(const double *p, const int *y, const double *c, int n)
{
    double num = 0, wp = 0, wn = 0;
    for (int i = 0; i < n; i++) {
        if (y[i]) wp += c[i];
        else wn += c[i];
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (y[i] && !y[j]) num += c[i] * c[j] * (p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0);
    return num / (wp * wn);
}

/* A model and its shadow, both trained on n generated examples (as gen_examples makes
 * them). */
static tl_model *trained_model(const tl_model_cfg *mc, shadow *sh, int n, uint64_t seed,
                               int all_negative)
{
    tl_model *m = model_new(mc);
    shadow_init(sh, mc);
    gen_examples(train_set, n, seed, all_negative);
    train(m, sh, train_set, n);
    return m;
}

/* ==== purchase intent (model/intent.h) ======================================================= */

/* The shadow's purchase log-odds of the moment at: the touchpoints at most 7 days old then. */
static double shadow_logit(const shadow *sh, const tl_model_user *h, const tl_journey_tp *tps,
                           int n, int64_t at)
{
    uint64_t mask = 0;
    for (int i = 0; i < n; i++)
        if (tps[i].ts >= at - 7 * DAY && tps[i].ts <= at) mask |= UINT64_C(1) << i;
    double p = shadow_p(sh, h, tps, n, at, mask);
    return log(p / (1 - p));
}

static void test_intent(void **state)
{
    (void)state;
    /* the integral, by hand: a constant logit z over W gives 1 - exp(-e^z W / interval); one
     * rising linearly from z0 to z1, 1 - exp(-(e^z1 - e^z0) / (z1 - z0) W / interval) */
    const int64_t t2[2] = {0, 7 * DAY}, t3[3] = {0, DAY, 7 * DAY};
    const double flat[3] = {-6, -6, -6}, line[2] = {-7, -5};
    near(tl_intent_integrate(t2, flat, 2, (double)GRID), 1 - exp(-exp(-6) * 28), 1e-15, "flat", 0);
    near(tl_intent_integrate(t3, flat, 3, (double)GRID), 1 - exp(-exp(-6) * 28), 1e-15,
         "flat in two spans", 0);
    near(tl_intent_integrate(t2, line, 2, (double)GRID), 1 - exp(-(exp(-5) - exp(-7)) / 2 * 28),
         1e-15, "linear", 0);
    near(tl_intent_integrate(t2, flat, 1, (double)GRID), 0, 0, "one moment", 0);

    /* The intent's rate is the model's odds over the control interval (examples sample the
     * users' time once per interval): with this model's odds near 1, a long interval keeps
     * the day's score away from 1. */
    tl_model_cfg mc = fx_model_cfg();
    mc.control_interval_ms = 100 * DAY;
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, N_TRAIN, 42, 0);
    tl_journey_tp tps[5];
    purchase5(tps);
    const tl_model_user h = {2, P2 - 30 * DAY, P2 - 10 * DAY, 1.5};
    const int64_t now = P2;
    tl_arena a;
    tl_arena_init(&a, 4096);
    /* the score over a day from the shadow's log-odds at the same moments: now, now + each
     * anchor below a day, now + a day */
    const int64_t at[4] = {now, now + 3 * HOUR, now + 12 * HOUR, now + DAY};
    double z[4];
    for (int i = 0; i < 4; i++) z[i] = shadow_logit(&sh, &h, tps, 5, at[i]);
    double got = tl_intent_projection(m, &h, tps, 5, 7 * DAY, now, DAY, &a);
    near(got, tl_intent_integrate(at, z, 4, (double)mc.control_interval_ms), 1e-9,
         "intent against the shadow", 0);
    /* and the log-odds at now are those of the purchase the model would credit then */
    tl_attribution r;
    credit(m, tps, 5, now, &a, &r);
    double zl;
    tl_model_logits(m, NULL, tps, 5, 7 * DAY, &now, 1, &a, &zl);
    near(zl, log(r.p_conversion / (1 - r.p_conversion)), 1e-9, "logit = p_conversion's", 0);
    /* The grid is coarse: against a 10-minute one (the same log-odds, straight between
     * every 10 minutes), the score is within 5% of itself. */
    enum {
        FINE = 24 * 6 + 1
    };
    static int64_t ft[FINE];
    static double fz[FINE];
    for (int i = 0; i < FINE; i++) {
        ft[i] = now + (int64_t)i * 10 * 60000;
        fz[i] = shadow_logit(&sh, &h, tps, 5, ft[i]);
    }
    double fine = tl_intent_integrate(ft, fz, FINE, (double)mc.control_interval_ms);
    if (!(fabs(got - fine) <= 0.05 * fine)) fail_msg("intent %.6f, on a fine grid %.6f", got, fine);
    assert_true(got > 0.01 && got < 0.5); /* a case where the window matters */
    assert_true(got > 0.001 && got < 0.999); /* a case where the window matters */
    tl_arena_destroy(&a);
    tl_model_destroy(m);
    shadow_fini(&sh);
}

/* Outcomes: a moment is learned once its window is over, bought or not (a purchase within
 * the window marks it; the user's next event or its journey's expiry after the window
 * decides it); an event from before it leaves it alone. */
static void test_intent_outcomes(void **state)
{
    (void)state;
    const int64_t W = DAY, T = 100 * DAY;
    tl_intent_model *im = tl_intent_model_new(0.2, 1, 0, 0.1);
    tl_user u;
    fx_user_init(&u, "u");
    tl_intent_moment a = {.ts = T, .since_ts = INT64_MIN, .z = -3, .p = 0.25f},
                     b = {.ts = T + 2 * HOUR,
                          .since_ts = T + 2 * HOUR - DAY,
                          .purchases = 1,
                          .z = -5,
                          .p = 0.125f,
                          .since_purchase = 1};
    tl_user_add_intent_moment(&u, &a);
    tl_user_add_intent_moment(&u, &b);
    uint64_t n, pos;
    double ll, auc;
    tl_event buy = fx_event("p", "u", "i", "c", NULL, TL_PURCHASE, T + HOUR),
             old = fx_event("o", "u", "i", "c", NULL, TL_BROWSE, T - HOUR),
             late = fx_event("l", "u", "i", "c", NULL, TL_BROWSE, T + W + HOUR);
    tl_intent_resolve(im, &u, &old, old.ts, W); /* from before both: nothing */
    assert_int_equal(u.n_pend, 2);
    assert_false(u.pend[0].bought || u.pend[1].bought);
    tl_intent_resolve(im, &u, &buy, buy.ts, W); /* within a's window, before b */
    assert_int_equal(u.n_pend, 2);
    assert_true(u.pend[0].bought && !u.pend[1].bought);
    tl_intent_model_stats(im, &n, &pos, &ll, &auc);
    assert_int_equal(n, 0); /* not learned before its window is over */
    assert_true(isnan(ll));
    tl_intent_resolve(im, &u, &late, late.ts, W); /* a's window is over, b's not */
    tl_intent_model_stats(im, &n, &pos, &ll, &auc);
    assert_int_equal(n, 1);
    assert_int_equal(pos, 1);
    near(ll, -log(0.25), 1e-6, "log-loss of a bought moment scored 0.25", 0);
    assert_int_equal(u.n_pend, 1);
    assert_true(u.pend[0].ts == b.ts);
    tl_intent_resolve(im, &u, NULL, b.ts + W - 1, W); /* an expiry just before: nothing */
    assert_int_equal(u.n_pend, 1);
    tl_intent_resolve(im, &u, NULL, b.ts + W, W);
    assert_int_equal(u.n_pend, 0);
    tl_intent_model_stats(im, &n, &pos, &ll, &auc);
    assert_int_equal(n, 2);
    assert_int_equal(pos, 1);
    near(ll, (-log(0.25) - log(1 - 0.125)) / 2, 1e-6, "log-loss of both", 0);
    near(auc, 1, 0, "the bought one scored higher", 0);

    /* its coordinates: the bias; z between its anchors -4 and -6 (at -5, half each);
     * log(1 + 1 purchase); a day since the purchase (the anchor of 1 d, index 3) */
    int32_t idx[6];
    double x[6];
    int k = tl_intent_features(&b, idx, x);
    assert_int_equal(k, 5);
    assert_true(idx[0] == 0 && x[0] == 1);
    assert_true(idx[1] == 1 + 2 && idx[2] == 1 + 3);
    near(x[1], 0.5, 1e-12, "z's lower anchor", 0);
    near(x[2], 0.5, 1e-12, "z's upper anchor", 0);
    assert_true(idx[3] == 9);
    near(x[3], log(2), 1e-12, "purchases", 0);
    assert_true(idx[4] == 10 + 8 + 3 && x[4] == 1);

    /* the checkpoint's part: the same predictions and counts after a round trip; a part cut
     * short or with bytes after it is refused */
    tl_buf enc = {0};
    tl_intent_model_encode(im, &enc);
    tl_intent_model *back = tl_intent_model_decode(enc.data, enc.len);
    assert_non_null(back);
    uint64_t n2, pos2;
    double ll2, auc2;
    tl_intent_model_stats(back, &n2, &pos2, &ll2, &auc2);
    assert_true(n2 == n && pos2 == pos && ll2 == ll && auc2 == auc);
    for (size_t cut = 0; cut < enc.len; cut += 7)
        assert_null(tl_intent_model_decode(enc.data, cut));
    tl_buf_putc(&enc, 0);
    assert_null(tl_intent_model_decode(enc.data, enc.len));
    tl_buf_free(&enc);
    tl_intent_model_free(back);
    tl_intent_model_free(im);
    fx_user_fini(&u);
}

/* u with n (at most TL_INTENT_PENDING_MAX) pending intent moments an hour apart from t,
 * every other one bought. */
static void pending_moments(tl_user *u, int64_t t, int n)
{
    for (int i = 0; i < n; i++) {
        tl_intent_moment mo = {.ts = t + i * HOUR,
                               .since_ts = INT64_MIN,
                               .z = -2.0f - (float)i / 4,
                               .p = 0.1f + 0.05f * (float)i,
                               .bought = i & 1};
        tl_user_add_intent_moment(u, &mo);
    }
}

/* exactly_once: outcomes the calibration learned in a transaction that does not commit
 * are taken back; learned again, the calibration is, bit for bit, the one that learned
 * them once. */
static void test_intent_undo(void **state)
{
    (void)state;
    const int64_t W = DAY, T = 100 * DAY;
    tl_intent_model *undo = tl_intent_model_new(0.2, 1, 0, 0.1),
                    *once = tl_intent_model_new(0.2, 1, 0, 0.1);
    tl_intent_model_undo_start(undo);
    tl_user a, b, b2;
    fx_user_init(&a, "a");
    fx_user_init(&b, "b");
    fx_user_init(&b2, "b");
    /* a transaction: a's four outcomes, committed */
    pending_moments(&a, T, 4);
    tl_intent_resolve(undo, &a, NULL, T + 10 * W, W);
    tl_intent_model_txn_end(undo, 1);
    /* b's three, not committed; then again (its record as it was), committed */
    pending_moments(&b, T + W, 3);
    pending_moments(&b2, T + W, 3);
    tl_intent_resolve(undo, &b, NULL, T + 10 * W, W);
    tl_intent_model_txn_end(undo, 0);
    tl_intent_resolve(undo, &b2, NULL, T + 10 * W, W);
    tl_intent_model_txn_end(undo, 1);
    /* the reference: each once */
    fx_user_fini(&a);
    fx_user_fini(&b2);
    fx_user_init(&a, "a");
    fx_user_init(&b2, "b");
    pending_moments(&a, T, 4);
    pending_moments(&b2, T + W, 3);
    tl_intent_resolve(once, &a, NULL, T + 10 * W, W);
    tl_intent_resolve(once, &b2, NULL, T + 10 * W, W);
    uint64_t n, pos;
    double ll, auc;
    tl_intent_model_stats(undo, &n, &pos, &ll, &auc);
    assert_int_equal(n, 7);
    assert_int_equal(pos, 3);
    tl_buf x = {0}, y = {0};
    tl_intent_model_encode(undo, &x);
    tl_intent_model_encode(once, &y);
    fx_same_bytes_free(&x, &y);
    fx_user_fini(&a);
    fx_user_fini(&b);
    fx_user_fini(&b2);
    tl_intent_model_free(undo);
    tl_intent_model_free(once);
}

/* The stage publishes a user's intent when it moved by the threshold: each record's previous
 * is the last one published (0 before any), its sentence says both, and the user keeps the
 * last; its moments are decided by its later events. */
static void test_intent_stage(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    mc.warmup_examples = 0;
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, N_TRAIN, 42, 0);
    tl_attr_cfg ac = fx_attr_cfg();
    tl_intent_cfg ic = {.enabled = 1, .window_ms = DAY, .threshold = 0.01};
    tl_attr_stage as = {.cfg = &ac, .model = m, .intent = &ic};
    memsink ms;
    tl_arena a;
    tl_user u;
    fx_stage_open(&ms, &a, &u, "u");
    u.labelled = u.sampled = u.first_ts = u.last_purchase = u.intent_ts = INT64_MIN;
    const int64_t T = P2 + 10 * DAY;
    const struct {
        const char *id;
        tl_event_type type;
        int64_t ts;
    } evs[] = {
        {"e1", TL_BROWSE, T},           {"e2", TL_ADD_TO_CART, T + HOUR},
        {"e3", TL_CLICK, T + 3 * HOUR}, {"e4", TL_PURCHASE, T + 4 * HOUR},
        {"e5", TL_BROWSE, T + 2 * DAY}, {"e6", TL_BROWSE, T + 4 * DAY},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        tl_event ev = fx_event(evs[i].id, "u", "item", "c1", "web", evs[i].type, evs[i].ts);
        assert_int_equal(tl_attribution_apply(&as, NULL, &u, &ev, &a, &ms.sink), TL_OK);
        tl_arena_reset(&a);
    }
    int n = ms.count[MS_INTENT];
    assert_true(n >= 2);
    double last = 0;
    for (int i = 0; i < n; i++) {
        const tl_intent_delta *d = &ms_nth(&ms, MS_INTENT, i)->intent;
        assert_string_equal(d->user_id, "u");
        assert_true(d->window_ms == DAY);
        near(d->previous, last, 0, "previous", i);
        if (!(fabs(d->p - d->previous) >= ic.threshold)) fail_msg("record %d moved too little", i);
        char want[96];
        snprintf(want, sizeof(want), "p(purchase within 1 d) %s from %.3f to %.3f after ",
                 d->p >= d->previous ? "rose" : "fell", d->previous, d->p);
        if (!strstr(d->explanation, want)) fail_msg("%s\nwanted %s", d->explanation, want);
        last = d->p;
    }
    near(u.intent, last, 0, "the user keeps the last published", 0);
    /* e1..e3 left moments (an hour apart is less than a quarter of the window: e1's only);
     * the purchase marked it, and e5, a day after its window, decided it: one outcome, a
     * purchase; e5's own moment was decided by e6 (none bought) */
    uint64_t outcomes, pos;
    double ll, auc;
    tl_intent_model_stats(tl_model_intent(m), &outcomes, &pos, &ll, &auc);
    assert_int_equal(outcomes, 2);
    assert_int_equal(pos, 1);
    assert_int_equal(u.n_pend, 1); /* e6's */
    assert_true(u.pend[0].ts == T + 4 * DAY);
    fx_stage_close(&ms, &a, &u);
    tl_model_destroy(m);
    shadow_fini(&sh);
}

static void test_model_credits(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, N_TRAIN, 42, 0);

    /* the report: version = examples learned; progressive validation from the scores
     * before each update, with the inverse-propensity weights */
    tl_model_report rep = report(m);
    int pos = 0, weighted = 0;
    for (int i = 0; i < N_TRAIN; i++) {
        pos += train_set[i].label;
        weighted += sh.c[i] != 1.0;
    }
    assert_true(pos > 40 && pos < N_TRAIN - 40);
    assert_true(weighted > 20); /* the weights matter in this data */
    assert_int_equal(rep.version, N_TRAIN);
    assert_int_equal(rep.examples, N_TRAIN);
    assert_int_equal(rep.positives, pos);
    near(rep.logloss, ref_logloss(sh.p, sh.y, sh.c, sh.n), 1e-12, "logloss", 0);
    near(rep.auc, ref_auc(sh.p, sh.y, sh.c, sh.n), 1e-12, "auc", 0);
    /* the baseline: the running weighted rate before each example, 0.5 at first */
    static double rate[N_TRAIN];
    double sy = 0, sc = 0;
    for (int i = 0; i < N_TRAIN; i++) {
        rate[i] = sc > 0 ? sy / sc : 0.5;
        sy += sh.c[i] * sh.y[i];
        sc += sh.c[i];
    }
    near(rep.baseline_logloss, ref_logloss(rate, sh.y, sh.c, sh.n), 1e-12, "baseline logloss", 0);
    near(rep.baseline_auc, ref_auc(rate, sh.y, sh.c, sh.n), 1e-12, "baseline auc", 0);
    /* the model learned something: it beats the running rate (0.5 or below here) */
    if (!(rep.auc > 0.6 && rep.baseline_auc < 0.55))
        fail_msg("auc %.4f, the running rate's %.4f", rep.auc, rep.baseline_auc);

    /* the weights by channel: every (type, channel) of the purchases' journeys, each
     * anchor's weight the shadow's at the documented coordinate, largest fresh first */
    tl_model_weights w[64];
    int nw = tl_model_channel_weights(m, w, 64);
    int want_pairs = 0;
    unsigned seen[6] = {0}; /* per type, a bit per channel */
    static const char *const chans[] = {"web", "app", "email"};
    for (int i = 0; i < N_TRAIN; i++)
        for (int k = 0; train_set[i].label && k < train_set[i].n; k++)
            for (int c = 0; c < 3; c++)
                if (train_set[i].tp[k].channel && !strcmp(train_set[i].tp[k].channel, chans[c]) &&
                    !(seen[train_set[i].tp[k].type] >> c & 1)) {
                    seen[train_set[i].tp[k].type] |= 1u << c;
                    want_pairs++;
                }
    assert_int_equal(nw, want_pairs);
    assert_true(nw > 5);
    for (int i = 0; i < nw; i++) {
        assert_true(i == 0 || w[i].w[0] <= w[i - 1].w[0]);
        for (int a = 0; a < TL_JF_ANCHORS; a++)
            near(w[i].w[a], sh.avg[ref_index(ref_key('c', w[i].type, w[i].channel), a)], 1e-12,
                 "channel weight", a);
    }
    assert_int_equal(tl_model_channel_weights(m, w, 2), 2);

    tl_journey_tp t3[3], t5[5];
    purchase3(t3);
    purchase5(t5);
    check_purchase(m, &sh, t3, 3);
    check_purchase(m, &sh, t5, 5);

    tl_model_destroy(m);
    shadow_fini(&sh);
}

/* Twelve touchpoints (model.shapley.exact.max): Shapley values by the subset formula of
 * docs/attribution.md, phi_j = sum over S in N\{j} of |S|!(n-|S|-1)!/n! (v(S+j) - v(S)). */
static void test_model_credits_12(void **state)
{
    (void)state;
    enum {
        N = 12
    };
    tl_model_cfg mc = fx_model_cfg();
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, N_TRAIN, 42, 0);

    static const char *const chans[] = {"web", "app", "email", NULL};
    static const char *const cats[] = {"c1", "c2", "c3", "c4", "c5", NULL, "c1"};
    static const char *const ids[N] = {"t0", "t1", "t2", "t3", "t4",  "t5",
                                       "t6", "t7", "t8", "t9", "t10", "t11"};
    tl_journey_tp t[N];
    for (int i = 0; i < N; i++)
        t[i] = mktp(ids[i], i % 3 == 0 ? TL_ADD_TO_CART : (tl_event_type)(i % 5),
                    P2 - (N - i) * 9 * HOUR, i % 4 == 0 ? -1 : 4000 * i * i, chans[i % 4],
                    cats[i % 7], i % 3 ? (float)(0.05 * i) : -1.0f, -1);
    static double v[1 << N];
    double p0 = shadow_p(&sh, NULL, t, N, P2, 0), fact[N + 1];
    fact[0] = 1;
    for (int k = 1; k <= N; k++) fact[k] = fact[k - 1] * k;
    for (uint64_t S = 0; S < (1u << N); S++) v[S] = shadow_p(&sh, NULL, t, N, P2, S) - p0;
    double phi[N], rem[N], want_s[N], want_r[N];
    for (int j = 0; j < N; j++) {
        phi[j] = 0;
        uint64_t bj = (uint64_t)1 << j;
        for (uint64_t S = 0; S < (1u << N); S++) {
            if (S & bj) continue;
            int k = __builtin_popcountll(S);
            phi[j] += fact[k] * fact[N - k - 1] / fact[N] * (v[S | bj] - v[S]);
        }
        rem[j] = v[(1u << N) - 1] - v[((1u << N) - 1) & ~bj];
    }
    /* the premise: the touchpoints raise p, and the credits are not all equal */
    if (!ref_normalise(N, phi, want_s))
        fail_msg("p(N) = %g is not above p(empty) = %g", v[(1u << N) - 1] + p0, p0);
    double spread = 0;
    for (int j = 0; j < N; j++) spread += fabs(want_s[j] - 1.0 / N);
    assert_true(spread > 0.05);
    assert_true(ref_normalise(N, rem, want_r));

    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution r;
    credit(m, t, N, P2, &a, &r);
    assert_null(r.shapley_stderr); /* exact: no sampling error */
    near(r.p_conversion, v[(1u << N) - 1] + p0, 1e-12, "p_conversion", 0);
    near(r.p_baseline, p0, 1e-12, "p_baseline", 0);
    for (int j = 0; j < N; j++) {
        near(r.credits[TL_M_SHAPLEY][j], want_s[j], 1e-12, "shapley", j);
        near(r.credits[TL_M_REMOVAL][j], want_r[j], 1e-12, "removal", j);
    }
    if (!strstr(r.explanation, "Shapley (exact)")) fail_msg("explanation: %s", r.explanation);
    tl_arena_destroy(&a);
    tl_model_destroy(m);
    shadow_fini(&sh);
}

/* The documented worked example's arithmetic, through the reference path: the
 * reference Shapley and removal code is right before it judges the model. */
static void test_reference_worked_example(void **state)
{
    (void)state;
    double v[4] = {0, 0.10, 0.05, 0.25}, phi[2], out[2] = {0, 0};
    ref_shapley_game(2, v, phi);
    near(phi[0], 0.15, 1e-15, "phi", 0);
    near(phi[1], 0.10, 1e-15, "phi", 1);
    assert_true(ref_normalise(2, phi, out));
    near(out[0], 0.6, 1e-15, "shapley", 0);
    near(out[1], 0.4, 1e-15, "shapley", 1);
    double rem[2] = {v[3] - v[2], v[3] - v[1]};
    assert_true(ref_normalise(2, rem, out));
    near(out[0], 0.20 / 0.35, 1e-15, "removal", 0);
    near(out[1], 0.15 / 0.35, 1e-15, "removal", 1);
}

/* The sampled estimator's game: v(S) = p(S) - p(empty), every coalition's example built
 * from the journey entries (ref_vec), none from per-touchpoint sums. */
typedef struct shadow_game {
    const shadow *sh;
    const tl_journey_tp *tps;
    int n;
    int64_t at;
    double p0;
} shadow_game;

static void shadow_game_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    const shadow_game *g = arg;
    for (int i = 0; i < count; i++)
        v[i] = shadow_p(g->sh, NULL, g->tps, g->n, g->at, masks[i]) - g->p0;
}

/* More touchpoints and categories than model.shapley.exact.max: sampled Shapley. The
 * model pools each coalition of a permutation's run by adding one touchpoint to the
 * last pool; the same estimator (same permutations) over pools made from scratch must
 * give the same credits, and each share's standard error must cover the exact share. */
static void test_model_credits_sampled(void **state)
{
    (void)state;
    enum {
        N = 16
    };
    tl_model_cfg mc = fx_model_cfg();
    mc.shapley_exact_max = 3;
    mc.shapley_samples = 64;
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, N_TRAIN, 42, 0);

    static const char *const chans[] = {"web", "app", "email", NULL};
    static const char *const ids[N] = {"s0", "s1", "s2",  "s3",  "s4",  "s5",  "s6",  "s7",
                                       "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15"};
    static const char *const cats[N] = {"c0", "c1", "c2",  "c3",  "c4",  "c5",  "c6",  "c7",
                                        "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15"};
    tl_journey_tp t[N];
    for (int i = 0; i < N; i++)
        t[i] = mktp(ids[i], (tl_event_type)(i % 6 == 5 ? TL_ADD_TO_CART : i % 5),
                    P2 - (N - i) * 7 * HOUR, i % 4 == 0 ? -1 : 3000 * i * i, chans[i % 4], cats[i],
                    i % 3 ? (float)(0.03 * i + 0.01) : -1.0f, -1);
    shadow_game g = {&sh, t, N, P2, shadow_p(&sh, NULL, t, N, P2, 0)};
    double raw[N], want_s[N], rem[N], want_r[N], se[N], exact[N], exact_s[N];
    assert_int_equal(tl_shapley_sampled(N, mc.shapley_samples, tl_hash64("purchase", 8),
                                        shadow_game_fn, &g, raw, se),
                     TL_SHAPLEY_OK);
    if (!ref_normalise(N, raw, want_s)) fail_msg("the touchpoints do not raise p in this case");
    double mass = 0;
    for (int j = 0; j < N; j++) mass += raw[j] > 0 ? raw[j] : 0;
    assert_int_equal(tl_shapley_exact(N, shadow_game_fn, &g, exact), TL_SHAPLEY_OK);
    assert_true(ref_normalise(N, exact, exact_s));
    uint64_t all = ((uint64_t)1 << N) - 1;
    for (int j = 0; j < N; j++)
        rem[j] = shadow_p(&sh, NULL, t, N, P2, all) -
            shadow_p(&sh, NULL, t, N, P2, all & ~((uint64_t)1 << j));
    assert_true(ref_normalise(N, rem, want_r));

    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution r;
    credit(m, t, N, P2, &a, &r);
    for (int j = 0; j < N; j++) {
        near(r.credits[TL_M_SHAPLEY][j], want_s[j], 1e-9, "sampled shapley", j);
        near(r.credits[TL_M_REMOVAL][j], want_r[j], 1e-12, "removal", j);
    }
    if (!strstr(r.explanation, "Shapley (sampled)")) fail_msg("explanation: %s", r.explanation);
    /* each share's standard error: the sampled raw value's over the positive mass; and the
     * exact shares (2^16 coalitions) lie within 4 of them of the sampled ones */
    assert_non_null(r.shapley_stderr);
    int wide = 0;
    for (int j = 0; j < N; j++) {
        near(r.shapley_stderr[j], se[j] / mass, 1e-12, "shapley stderr", j);
        assert_true(r.shapley_stderr[j] >= 0 && isfinite(r.shapley_stderr[j]));
        if (fabs(r.credits[TL_M_SHAPLEY][j] - exact_s[j]) > 4 * r.shapley_stderr[j] + 1e-12)
            fail_msg("touchpoint %d: sampled %.6f, exact %.6f, stderr %.6f", j,
                     r.credits[TL_M_SHAPLEY][j], exact_s[j], r.shapley_stderr[j]);
        wide += fabs(r.credits[TL_M_SHAPLEY][j] - exact_s[j]) > 2 * r.shapley_stderr[j];
    }
    assert_true(wide <= 3); /* about 5% of them beyond 2 standard errors */
    tl_model_report rep = report(m);
    assert_int_equal(rep.sampled, 1);
    tl_arena_destroy(&a);
    tl_model_destroy(m);
    shadow_fini(&sh);
}

/* ==== 3. warm-up and fallback ============================================================== */

/* No model credits before the model has learned model.warmup.examples of each outcome:
 * linear credits, the status and the sentence say why, and the sentence has no model
 * number. */
static void test_model_warmup(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    mc.warmup_examples = 5;
    tl_model *m = model_new(&mc);
    tl_journey_tp t[2] = {
        mktp("w1", TL_BROWSE, P2 - DAY, 30000, "web", "c1", -1, -1),
        mktp("w2", TL_CLICK, P2 - HOUR, 5000, "app", "c2", -1, -1),
    };
    tl_arena a;
    tl_arena_init(&a, 4096);
    struct {
        int pos, neg;
        const char *status, *words;
    } steps[] = {
        {6, 0, "no_negatives", "no moment without a purchase"},
        {0, 4, "warming_up", "warming up (6 purchases and 4 moments without one learned"},
        {0, 1, NULL, NULL},
    };
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < steps[s].pos; i++) tl_model_learn(m, NULL, t, 2, 1, P2);
        for (int i = 0; i < steps[s].neg; i++) tl_model_learn(m, NULL, t, 1, 0, P2);
        tl_attribution r;
        credit(m, t, 2, P2, &a, &r);
        if (!steps[s].status) { /* ready: the model's own verdict */
            assert_true(!strcmp(r.model_status[TL_M_SHAPLEY], "ok") ||
                        !strcmp(r.model_status[TL_M_SHAPLEY], "fallback_linear"));
            continue;
        }
        expect_linear_credits(&r, 2, steps[s].status, 0);
        if (!strstr(r.explanation, steps[s].words) || strstr(r.explanation, "times the rate"))
            fail_msg("step %d: %s", s, r.explanation);
    }
    tl_model_report rep = report(m);
    assert_int_equal(rep.no_negatives, 1);
    assert_int_equal(rep.warming_up, 1);
    tl_arena_destroy(&a);
    tl_model_destroy(m);
}

/* ==== 3b. fallback ======================================================================== */

static void test_model_fallback(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    shadow sh;
    tl_model *m = trained_model(&mc, &sh, 200, 7, 1);

    /* no shares: every feature then grows with the set, and every weight is <= 0 */
    tl_journey_tp t[3] = {
        mktp("f1", TL_BROWSE, P2 - 2 * DAY, 30000, "web", "c1", -1, -1),
        mktp("f2", TL_CLICK, P2 - DAY, 5000, "app", "c2", -1, -1),
        mktp("f3", TL_ADD_TO_CART, P2 - HOUR, 80000, "web", "c3", -1, -1),
    };
    ref_credits rc;
    ref_compute(&sh, NULL, t, 3, P2, &rc);
    assert_true(rc.p_all < rc.p_empty); /* the premise, from the shadow */
    assert_false(rc.shap_ok);
    assert_false(rc.rem_ok);

    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution r;
    credit(m, t, 3, P2, &a, &r);
    assert_true(r.has_model);
    near(r.p_conversion, rc.p_all, 1e-12, "p_conversion", 0);
    near(r.p_baseline, rc.p_empty, 1e-12, "p_baseline", 0);
    assert_true(r.p_conversion < r.p_baseline);
    expect_linear_credits(&r, 3, "fallback_linear", 1e-15);
    assert_int_equal(r.model_version, 200);
    if (!strstr(r.explanation, "falls back to linear")) fail_msg("explanation: %s", r.explanation);
    assert_null(r.model_status[TL_M_LINEAR]);
    tl_model_report rep = report(m);
    assert_int_equal(rep.fallbacks, 1);
    assert_int_equal(rep.positives, 0);
    tl_arena_destroy(&a);
    tl_model_destroy(m);
    shadow_fini(&sh);
}

/* ==== 4. labels through the attribution stage ============================================= */

/* The documented defaults, with reset on conversion on or off. */
static tl_attr_cfg attr_cfg(int reset)
{
    tl_attr_cfg ac = fx_attr_cfg();
    ac.reset_on_conversion = reset;
    return ac;
}

static tl_event mkev(const char *user, const char *id, tl_event_type type, int64_t ts,
                     const char *item, const char *category, const char *channel)
{
    return fx_event(id, user, item, category, channel, type, ts);
}

static void apply_s(tl_attr_stage *as, tl_store *s, tl_arena *a, memsink *ms, const tl_event *ev)
{
    tl_user *u = tl_store_get(s, ev->user_id);
    assert_int_equal(tl_attribution_apply(as, s, u, ev, a, &ms->sink), TL_OK);
}

static void expect_report(tl_model *m, uint64_t version, uint64_t examples, uint64_t positives,
                          const char *when)
{
    tl_model_report r;
    tl_model_report_get(m, &r);
    if (r.version != version || r.examples != examples || r.positives != positives)
        fail_msg("%s: version %llu, examples %llu, positives %llu; expected %llu, %llu, %llu", when,
                 (unsigned long long)r.version, (unsigned long long)r.examples,
                 (unsigned long long)r.positives, (unsigned long long)version,
                 (unsigned long long)examples, (unsigned long long)positives);
}

static void expect_journey(tl_store *s, const char *user, const char *want)
{
    tl_user *u = tl_store_peek(s, user);
    assert_non_null(u);
    char got[256] = "";
    for (int k = 0; k < u->n_tp; k++) {
        if (k) strcat(got, " ");
        strcat(got, u->tp[k].event_id);
    }
    if (strcmp(got, want) != 0) fail_msg("journey of %s: \"%s\", expected \"%s\"", user, got, want);
}

/* The user's expected purchases (the intent estimate's denominator) as the shadow's. */
static void expect_expected(tl_store *s, const char *user, const tl_model_user *h)
{
    tl_user *u = tl_store_peek(s, user);
    assert_non_null(u);
    if (!(fabs(u->expected - h->expected) <= 1e-12 * (1 + h->expected)))
        fail_msg("expected purchases of %s: %.17g, the shadow's %.17g", user, u->expected,
                 h->expected);
}

static void test_labels_through_stage(void **state)
{
    (void)state;
    char err[256] = "";
    tl_store *s = tl_store_open(fx_tmpdir, 0, 1 << 20, err, sizeof(err));
    if (!s) fail_msg("tl_store_open: %s", err);
    tl_model_cfg mc = fx_model_cfg();
    tl_model *m = model_new(&mc);
    shadow sh;
    shadow_init(&sh, &mc);
    tl_attr_cfg ac = attr_cfg(1), ac_keep = attr_cfg(0);
    tl_attr_stage as = {.cfg = &ac, .model = m};
    tl_attr_stage as_keep = {.cfg = &ac_keep, .model = m};
    memsink ms;
    ms_init(&ms);
    tl_arena a;
    tl_arena_init(&a, 4096);
    const int64_t L = 7 * DAY, T0 = 100 * DAY;

    /* u1: a, b; no purchase */
    tl_event ea = mkev("u1", "a", TL_CLICK, T0, "i1", "c1", "web");
    tl_event eb = mkev("u1", "b", TL_ADD_TO_CART, T0 + HOUR, "i1", "c1", "app");
    eb.dwell_ms = 30000;
    eb.has_dwell = 1;
    apply_s(&as, s, &a, &ms, &ea);
    apply_s(&as, s, &a, &ms, &eb);
    tl_journey_tp ab[2];
    tl_user *u1 = tl_store_peek(s, "u1");
    assert_int_equal(u1->sampled, T0 + HOUR);
    assert_non_null(u1);
    memcpy(ab, u1->tp, sizeof(ab)); /* the entries as learned (strings stay in u1) */

    /* The first event only starts u1's clock; b's event is 1 h later, before the first
     * grid point (T0 + 6 h). */
    expect_report(m, 0, 0, 0, "two touches");
    assert_int_equal(u1->sampled, T0 + HOUR);

    /* one ms before last + L: nothing */
    assert_int_equal(tl_attribution_advance(&as, s, T0 + HOUR + L - 1, &a, &ms.sink), TL_OK);
    expect_report(m, 0, 0, 0, "before expiry");
    assert_int_equal(as.st.expired, 0);

    /* at last + L: the control moments T0 + 6 h, T0 + 12 h, ..., T0 + 7 d (28 of them), each
     * with {a, b}; the journey is kept, the timer off */
    assert_int_equal(tl_attribution_advance(&as, s, T0 + HOUR + L, &a, &ms.sink), TL_OK);
    expect_report(m, 28, 28, 0, "at expiry");
    assert_int_equal(as.st.expired, 1);
    tl_model_user h1 = {0, T0, INT64_MIN, 0}; /* u1's history: no purchase, first event a */
    shadow_controls(&sh, &h1, ab, 2, T0 + HOUR, T0 + HOUR + L);
    assert_int_equal(sh.n, 28);
    expect_expected(s, "u1", &h1);
    probe(m, &sh, "after the control moments of {a, b}");
    expect_journey(s, "u1", "a b");
    u1 = tl_store_peek(s, "u1");
    assert_int_equal(u1->tp[0].ts, T0);
    assert_int_equal(u1->tp[1].ts, T0 + HOUR);
    assert_int_equal(u1->tp[1].type, TL_ADD_TO_CART);
    assert_int_equal(u1->tp[1].dwell_ms, 30000);
    assert_int_equal(u1->timer, 0);
    assert_int_equal(u1->sampled, T0 + HOUR + L);
    assert_int_equal(ms.n, 0);

    /* a second advance learns nothing more */
    assert_int_equal(tl_attribution_advance(&as, s, T0 + HOUR + L + DAY, &a, &ms.sink), TL_OK);
    expect_report(m, 28, 28, 0, "second advance");
    assert_int_equal(as.st.expired, 1);

    /* a late touch f (before the sampled time): no control moment is learned twice, and
     * its expiry (T0 + 3 h + L) passes no grid point after T0 + 1 h + L */
    tl_event ef = mkev("u1", "f", TL_BROWSE, T0 + 3 * HOUR, "i2", "c2", "web");
    apply_s(&as, s, &a, &ms, &ef);
    expect_journey(s, "u1", "a b f");
    assert_int_equal(tl_store_peek(s, "u1")->timer, T0 + 3 * HOUR + L);
    assert_int_equal(tl_attribution_advance(&as, s, T0 + 3 * HOUR + L, &a, &ms.sink), TL_OK);
    expect_report(m, 28, 28, 0, "expiry of f");
    assert_int_equal(as.st.expired, 2);
    expect_journey(s, "u1", "a b f");

    /* a late purchase still gets a, b, f with the rule-based credits as if nothing had
     * expired, and is a positive example with them, at its own time */
    u1 = tl_store_peek(s, "u1");
    tl_journey_tp abf[3];
    memcpy(abf, u1->tp, sizeof(abf));
    const int64_t P = T0 + 4 * HOUR;
    ref_credits rc;
    ref_compute(&sh, &h1, abf, 3, P, &rc);
    shadow_learn(&sh, &h1, abf, 3, 1, P); /* now: the purchase frees these entries */
    tl_event p1 = mkev("u1", "p1", TL_PURCHASE, P, "i9", "c1", "web");
    apply_s(&as, s, &a, &ms, &p1);
    expect_expected(s, "u1", &h1);
    assert_int_equal(ms.count[MS_ATTRIBUTION], 1);
    const tl_attribution *r = ms_attribution(&ms, 0);
    assert_int_equal(r->n_touchpoints, 3);
    assert_string_equal(r->touchpoints[0].event_id, "a");
    assert_string_equal(r->touchpoints[1].event_id, "b");
    assert_string_equal(r->touchpoints[2].event_id, "f");
    const double wlin[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3}, wlast[3] = {0, 0, 1}, wfirst[3] = {1, 0, 0},
                 wpos[3] = {0.4, 0.2, 0.4};
    const double d0 = exp2(-4.0 / 168), d1 = exp2(-3.0 / 168), d2 = exp2(-1.0 / 168);
    const double wtd[3] = {d0 / (d0 + d1 + d2), d1 / (d0 + d1 + d2), d2 / (d0 + d1 + d2)};
    for (int j = 0; j < 3; j++) {
        near(r->credits[TL_M_LINEAR][j], wlin[j], 1e-12, "linear", j);
        near(r->credits[TL_M_LAST_TOUCH][j], wlast[j], 0, "last_touch", j);
        near(r->credits[TL_M_FIRST_TOUCH][j], wfirst[j], 0, "first_touch", j);
        near(r->credits[TL_M_POSITION_BASED][j], wpos[j], 1e-12, "position_based", j);
        near(r->credits[TL_M_TIME_DECAY][j], wtd[j], 1e-12, "time_decay", j);
    }
    check_against_ref(r, &rc, 3); /* scored before learning from it */
    assert_int_equal(r->model_version, 28);
    expect_report(m, 29, 29, 1, "purchase p1");
    probe(m, &sh, "after the purchase p1");
    expect_journey(s, "u1", "");
    assert_int_equal(tl_store_peek(s, "u1")->timer, 0);
    assert_int_equal(tl_attribution_advance(&as, s, P + 30 * DAY, &a, &ms.sink), TL_OK);
    expect_report(m, 29, 29, 1, "advance after p1");

    /* u2: a purchase 1 h after its only touch -> one positive example */
    const int64_t T2 = 200 * DAY;
    tl_event ec = mkev("u2", "c", TL_FAVORITE, T2, "i3", "c3", NULL);
    apply_s(&as, s, &a, &ms, &ec);
    tl_model_user h2 = {0, T2, INT64_MIN, 0}; /* before p2 */
    shadow_learn(&sh, &h2, &tl_store_peek(s, "u2")->tp[0], 1, 1,
                 T2 + HOUR); /* before p2 frees it */
    tl_model_user h2b = {1, T2, T2 + HOUR, h2.expected}; /* after it */
    tl_event p2 = mkev("u2", "p2", TL_PURCHASE, T2 + HOUR, "i3", "c3", NULL);
    apply_s(&as, s, &a, &ms, &p2);
    expect_report(m, 30, 30, 2, "purchase p2");
    probe(m, &sh, "after the purchase p2");

    /* ... and its next event, 13 h later, brings the control moments T2 + 6 h and T2 + 12 h
     * with an empty journey */
    tl_event eg = mkev("u2", "g", TL_CLICK, T2 + 13 * HOUR, "i3", "c3", NULL);
    apply_s(&as, s, &a, &ms, &eg);
    shadow_controls(&sh, &h2b, NULL, 0, T2 + HOUR, T2 + 13 * HOUR);
    expect_report(m, 32, 32, 2, "the next event of u2");
    probe(m, &sh, "after the control moments of u2");
    /* g's expiry: the 28 moments after it, with {g} */
    tl_journey_tp g1 = tl_store_peek(s, "u2")->tp[0];
    assert_int_equal(tl_attribution_advance(&as, s, T2 + 13 * HOUR + L, &a, &ms.sink), TL_OK);
    shadow_controls(&sh, &h2b, &g1, 1, T2 + 13 * HOUR, T2 + 13 * HOUR + L);
    expect_expected(s, "u2", &h2b);
    expect_report(m, 60, 60, 2, "the expiry of g");
    probe(m, &sh, "after the expiry of g");

    /* u3, reset off: d is credited (positive), e is after the purchase; e's expiry learns
     * the control moments after e, with d and e (d is still in the journey) */
    const int64_t T3 = 300 * DAY;
    tl_event ed = mkev("u3", "d", TL_CLICK, T3, "i4", "c4", "app");
    tl_event ee = mkev("u3", "e", TL_IMPRESSION, T3 + 2 * HOUR, "i5", "c5", "email");
    apply_s(&as_keep, s, &a, &ms, &ed);
    apply_s(&as_keep, s, &a, &ms, &ee);
    tl_journey_tp de[2];
    memcpy(de, tl_store_peek(s, "u3")->tp, sizeof(de));
    tl_event p3 = mkev("u3", "p3", TL_PURCHASE, T3 + HOUR, "i4", "c4", "app");
    apply_s(&as_keep, s, &a, &ms, &p3);
    assert_int_equal(ms.count[MS_ATTRIBUTION], 3);
    assert_int_equal(ms_attribution(&ms, 2)->n_touchpoints, 1);
    expect_report(m, 61, 61, 3, "purchase p3");
    tl_model_user h3 = {0, T3, INT64_MIN, 0};
    shadow_learn(&sh, &h3, &de[0], 1, 1, T3 + HOUR);
    tl_model_user h3b = {1, T3, T3 + HOUR, h3.expected};
    probe(m, &sh, "after the purchase p3");
    expect_journey(s, "u3", "d e");
    assert_int_equal(tl_attribution_advance(&as_keep, s, T3 + 2 * HOUR + L, &a, &ms.sink), TL_OK);
    expect_report(m, 89, 89, 3, "expiry of u3");
    shadow_controls(&sh, &h3b, de, 2, T3 + 2 * HOUR, T3 + 2 * HOUR + L);
    expect_expected(s, "u3", &h3b);
    probe(m, &sh, "after the control moments of u3");
    expect_journey(s, "u3", "d e");
    assert_int_equal(tl_attribution_advance(&as_keep, s, T3 + 30 * DAY, &a, &ms.sink), TL_OK);
    expect_report(m, 89, 89, 3, "advance after u3's expiry");
    assert_int_equal(as.st.expired + as_keep.st.expired, 4);

    ms_free(&ms);
    tl_arena_destroy(&a);
    shadow_fini(&sh);
    tl_model_destroy(m);
    tl_store_close(s);
}

/* ==== 5. no leakage ====================================================================== */

static void user_init(tl_user *u, const char *id)
{
    memset(u, 0, sizeof(*u));
    u->user_id = tl_xstrdup(id);
    u->labelled = u->sampled = u->first_ts = u->last_purchase = INT64_MIN;
}

static void user_fini(tl_user *u)
{
    tl_user_clear(u);
    free(u->user_id);
}

/* One journey c1, c2, c3 and a purchase (item, category, ts) through a fresh stage whose
 * model learned train_set; returns the model (to compare what it learned). */
static tl_model *leak_run(memsink *ms, const char *item, const char *category, int64_t pts)
{
    tl_model_cfg mc = fx_model_cfg();
    tl_model *m = model_new(&mc);
    train(m, NULL, train_set, N_TRAIN);
    tl_attr_cfg ac = attr_cfg(1);
    tl_attr_stage as = {.cfg = &ac, .model = m};
    tl_user u;
    user_init(&u, "u");
    tl_arena a;
    tl_arena_init(&a, 4096);
    const int64_t T = 7000 * DAY;
    tl_event ev[3] = {
        mkev("u", "t1", TL_BROWSE, T, "i1", "c1", "web"),
        mkev("u", "t2", TL_CLICK, T + HOUR, "i2", "c2", "app"),
        mkev("u", "t3", TL_ADD_TO_CART, T + 2 * HOUR, "i3", "c3", "web"),
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal(tl_attribution_apply(&as, NULL, &u, &ev[i], &a, &ms->sink), TL_OK);
    tl_event p = mkev("u", "p", TL_PURCHASE, pts, item, category, "web");
    assert_int_equal(tl_attribution_apply(&as, NULL, &u, &p, &a, &ms->sink), TL_OK);
    assert_int_equal(ms->count[MS_ATTRIBUTION], 1);
    user_fini(&u);
    tl_arena_destroy(&a);
    return m;
}

static void test_no_leakage(void **state)
{
    (void)state;
    gen_examples(train_set, N_TRAIN, 42, 0);
    const int64_t T = 7000 * DAY;
    /* (The purchase's time is not among these: the touchpoints' ages at the moment of
     * purchase are features, as they are at every control moment.) */
    memsink ms[3];
    tl_model *m[3];
    for (int i = 0; i < 3; i++) ms_init(&ms[i]);
    m[0] = leak_run(&ms[0], "i2", "c2", T + 3 * HOUR); /* a touchpoint's item and category */
    m[1] = leak_run(&ms[1], "zz", "c9", T + 3 * HOUR); /* neither seen before */
    m[2] = leak_run(&ms[2], "i3", NULL, T + 3 * HOUR); /* no category */
    const tl_attribution *r0 = ms_attribution(&ms[0], 0);
    assert_true(r0->has_model);
    for (int i = 1; i < 3; i++) {
        const tl_attribution *r = ms_attribution(&ms[i], 0);
        assert_int_equal(r->n_touchpoints, 3);
        same_bits(r->p_conversion, r0->p_conversion, "p_conversion", i);
        same_bits(r->p_baseline, r0->p_baseline, "p_baseline", i);
        assert_int_equal(r->model_version, r0->model_version);
        for (int j = 0; j < 3; j++) {
            same_bits(r->credits[TL_M_SHAPLEY][j], r0->credits[TL_M_SHAPLEY][j], "shapley", j);
            same_bits(r->credits[TL_M_REMOVAL][j], r0->credits[TL_M_REMOVAL][j], "removal", j);
        }
    }
    /* and what each model learned from its purchase is the same too */
    tl_journey_tp probe_tps[2] = {
        mktp("x", TL_ADD_TO_CART, T, 1000, "web", "c2", 0.5f, -1),
        mktp("y", TL_CLICK, T + HOUR, 1000, "app", "c9", -1, -1),
    };
    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution q0, q;
    credit(m[0], probe_tps, 2, T + 2 * HOUR, &a, &q0);
    for (int i = 1; i < 3; i++) {
        credit(m[i], probe_tps, 2, T + 2 * HOUR, &a, &q);
        same_bits(q.p_conversion, q0.p_conversion, "p after learning", i);
        assert_int_equal(q.model_version, N_TRAIN + 1);
    }
    /* the check can fail: a model that learned a different example scores differently */
    tl_model_learn(m[2], NULL, probe_tps, 1, 1, T);
    credit(m[2], probe_tps, 2, T + 2 * HOUR, &a, &q);
    assert_false(q.p_conversion == q0.p_conversion);
    tl_arena_destroy(&a);
    for (int i = 0; i < 3; i++) {
        tl_model_destroy(m[i]);
        ms_free(&ms[i]);
    }
}

/* ==== 6. checkpoint ====================================================================== */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void same_report(const tl_model_report *x, const tl_model_report *y)
{
    assert_int_equal(x->version, y->version);
    assert_int_equal(x->examples, y->examples);
    assert_int_equal(x->positives, y->positives);
    same_bits(x->logloss, y->logloss, "logloss", 0);
    same_bits(x->auc, y->auc, "auc", 0);
    same_bits(x->baseline_logloss, y->baseline_logloss, "baseline_logloss", 0);
    same_bits(x->baseline_auc, y->baseline_auc, "baseline_auc", 0);
}

static void same_credit(const tl_attribution *x, const tl_attribution *y, int n)
{
    same_bits(x->p_conversion, y->p_conversion, "p_conversion", 0);
    same_bits(x->p_baseline, y->p_baseline, "p_baseline", 0);
    assert_int_equal(x->model_version, y->model_version);
    for (int j = 0; j < n; j++) {
        same_bits(x->credits[TL_M_SHAPLEY][j], y->credits[TL_M_SHAPLEY][j], "shapley", j);
        same_bits(x->credits[TL_M_REMOVAL][j], y->credits[TL_M_REMOVAL][j], "removal", j);
    }
}

/* tl_model_new on path must fail and name the file. */
static void expect_refused(const tl_model_cfg *mc, const char *path, const char *what)
{
    char err[512] = "";
    tl_model *m = tl_model_new(mc, path, err, sizeof(err));
    if (m) {
        tl_model_destroy(m);
        fail_msg("%s: tl_model_new accepted %s", what, path);
    }
    if (!strstr(err, path)) fail_msg("%s: error \"%s\" does not name %s", what, err, path);
}

/* The message of tl_model_new refusing path, in err. */
static const char *err_of(const tl_model_cfg *mc, const char *path, char *err, size_t errlen)
{
    err[0] = '\0';
    tl_model *m = tl_model_new(mc, path, err, errlen);
    if (m) {
        tl_model_destroy(m);
        fail_msg("tl_model_new accepted %s", path);
    }
    return err;
}

static void test_checkpoint(void **state)
{
    (void)state;
    char path[128], tmp[160], bad[128];
    checkpoint_paths(path, bad, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    tl_model_cfg mc = fx_model_cfg();
    char err[512] = "";

    /* no file yet: a fresh model */
    tl_model *m1 = tl_model_new(&mc, path, err, sizeof(err));
    if (!m1) fail_msg("tl_model_new: %s", err);
    tl_model_report rep1, rep2;
    tl_model_report_get(m1, &rep1);
    assert_int_equal(rep1.version, 0);
    assert_int_equal(rep1.examples, 0);

    gen_examples(train_set, N_TRAIN, 42, 0);
    train(m1, NULL, train_set, N_TRAIN);
    assert_int_equal(tl_model_checkpoint(m1), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(access(tmp, F_OK), -1);

    tl_model *m2 = tl_model_new(&mc, path, err, sizeof(err));
    if (!m2) fail_msg("tl_model_new from the checkpoint: %s", err);
    tl_model_report_get(m1, &rep1);
    tl_model_report_get(m2, &rep2);
    assert_int_equal(rep2.version, N_TRAIN);
    assert_int_equal(rep2.examples, N_TRAIN);
    same_report(&rep1, &rep2);

    tl_journey_tp t5[5];
    purchase5(t5);
    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_attribution x, y;
    credit(m1, t5, 5, P2, &a, &x);
    credit(m2, t5, 5, P2, &a, &y);
    same_credit(&x, &y, 5);
    assert_int_equal(y.model_version, N_TRAIN);

    /* both continue identically */
    for (int i = 0; i < 20; i++) {
        const example *e = &train_set[(i * 37) % N_TRAIN];
        tl_model_learn(m1, NULL, e->tp, e->n, !e->label, e->tp[e->n - 1].ts);
        tl_model_learn(m2, NULL, e->tp, e->n, !e->label, e->tp[e->n - 1].ts);
    }
    tl_model_report_get(m1, &rep1);
    tl_model_report_get(m2, &rep2);
    same_report(&rep1, &rep2);
    assert_int_equal(rep2.version, N_TRAIN + 20);
    credit(m1, t5, 5, P2, &a, &x);
    credit(m2, t5, 5, P2, &a, &y);
    same_credit(&x, &y, 5);
    /* ...and differently from before: the check is not vacuous */
    tl_model_destroy(m2);
    m2 = tl_model_new(&mc, path, err, sizeof(err));
    assert_non_null(m2);
    credit(m2, t5, 5, P2, &a, &y);
    assert_false(x.p_conversion == y.p_conversion);
    tl_model_destroy(m2);

    /* corrupt files are refused, naming the file */
    size_t len;
    char *good = read_all(path, &len);
    assert_true(len > 64);
    write_file(bad, "this is not a model checkpoint", 30);
    expect_refused(&mc, bad, "garbage");
    write_file(bad, "", 0);
    expect_refused(&mc, bad, "empty file");
    char *mut = malloc(len);
    memcpy(mut, good, len);
    mut[0] ^= 0x20;
    write_file(bad, mut, len);
    expect_refused(&mc, bad, "wrong magic");
    memcpy(mut, good, len);
    memset(mut + 8, 0xff, 8); /* the first section's length */
    write_file(bad, mut, len);
    expect_refused(&mc, bad, "impossible length");
    write_file(bad, good, 8);
    expect_refused(&mc, bad, "magic only");
    write_file(bad, good, len / 2);
    expect_refused(&mc, bad, "truncated to half");
    free(mut);
    free(good);

    tl_arena_destroy(&a);
    tl_model_destroy(m1);
}

/* A checkpoint cut anywhere is corrupt, also in its last section (the Markov windows). */
static void test_checkpoint_truncated(void **state)
{
    (void)state;
    char path[128], bad[128];
    checkpoint_paths(path, bad, sizeof(path));
    tl_model_cfg mc = fx_model_cfg();
    tl_model *m = model_new_at(&mc, path);
    gen_examples(train_set, 50, 3, 0);
    train(m, NULL, train_set, 50);
    assert_int_equal(tl_model_checkpoint(m), 0);
    tl_model_destroy(m);
    size_t len;
    char *good = read_all(path, &len);
    write_file(bad, good, len - 1);
    free(good);
    expect_refused(&mc, bad, "one byte short");
}

/* The offset of the Markov window start in checkpoint bytes c[0..len): past the magic, the
 * FTRL, metrics and Markov chain blobs (each a u64 length and its bytes), the window
 * blob's length and its dim (int32). */
static size_t window_start_offset(const char *c, size_t len)
{
    size_t off = 8;
    for (int i = 0; i < 3; i++) {
        uint64_t n;
        assert_true(off + 8 <= len);
        memcpy(&n, c + off, 8);
        off += 8 + (size_t)n;
    }
    assert_true(off + 8 + 4 + 8 <= len);
    return off + 8 + 4;
}

/* A checkpoint's Markov window start is an event time: one far out of range (near
 * INT64_MAX, where closing the window overflowed) is refused, naming the file and the
 * reason; times that far out open and close no window. */
/* The Markov credit deltas of a window, as (channel, credit, credit_before, effect). */
static void same_credits(const memsink *x, const memsink *y)
{
    assert_int_equal(x->count[MS_CREDIT], y->count[MS_CREDIT]);
    assert_true(x->count[MS_CREDIT] > 0);
    for (int i = 0, j = 0; i < x->n && j < y->n; i++, j++) {
        while (i < x->n && x->rec[i].kind != MS_CREDIT) i++;
        while (j < y->n && y->rec[j].kind != MS_CREDIT) j++;
        if (i == x->n || j == y->n) break;
        const tl_credit_delta *a = &x->rec[i].credit, *b = &y->rec[j].credit;
        assert_string_equal(a->dim_id, b->dim_id);
        assert_true(a->credit == b->credit && a->credit_before == b->credit_before &&
                    a->removal_effect == b->removal_effect && a->window_start == b->window_start);
    }
}

/* exactly_once: an aborted transaction's journeys and closed windows are taken back
 * (tl_model_txn_end), so the events read again give the credit deltas one pass gives --
 * whether the abort came before the window closed or after. */
static void test_markov_abort(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    mc.markov_enabled = 1;
    const int64_t T0 = 1000 * DAY;
    gen_examples(train_set, 60, 11, 0);
    tl_arena a;
    tl_arena_init(&a, 4096);
    memsink once, again, late;
    ms_init(&once);
    ms_init(&again);
    ms_init(&late);
    tl_model *m1 = model_new(&mc), *m2 = model_new(&mc), *m3 = model_new(&mc);
    tl_model *all[3] = {m1, m2, m3};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tl_model_tick(all[k], T0, &a, &once.sink), TL_OK); /* opens the window */
        tl_model_txn_end(all[k], 1);
    }
    /* one pass */
    train(m1, NULL, train_set, 60);
    assert_int_equal(tl_model_tick(m1, T0 + HOUR, &a, &once.sink), TL_OK);
    tl_model_txn_end(m1, 1);
    /* the journeys added, aborted, added again */
    train(m2, NULL, train_set, 60);
    tl_model_txn_end(m2, 0);
    train(m2, NULL, train_set, 60);
    assert_int_equal(tl_model_tick(m2, T0 + HOUR, &a, &again.sink), TL_OK);
    tl_model_txn_end(m2, 1);
    same_credits(&once, &again);
    /* the window closed in the aborted transaction, and closed again */
    train(m3, NULL, train_set, 60);
    tl_model_txn_end(m3, 1);
    memsink dropped;
    ms_init(&dropped);
    assert_int_equal(tl_model_tick(m3, T0 + HOUR, &a, &dropped.sink), TL_OK);
    assert_true(dropped.count[MS_CREDIT] > 0);
    tl_model_txn_end(m3, 0);
    assert_int_equal(tl_model_tick(m3, T0 + HOUR, &a, &late.sink), TL_OK);
    tl_model_txn_end(m3, 1);
    same_credits(&once, &late);
    for (int k = 0; k < 3; k++) tl_model_destroy(all[k]);
    ms_free(&once);
    ms_free(&again);
    ms_free(&late);
    ms_free(&dropped);
    tl_arena_destroy(&a);
}

static void test_checkpoint_window_start(void **state)
{
    (void)state;
    char path[128], bad[128], err[512] = "";
    checkpoint_paths(path, bad, sizeof(path));
    tl_model_cfg mc = fx_model_cfg();
    mc.markov_enabled = 1;
    tl_model *m = model_new_at(&mc, path);
    memsink ms;
    ms_init(&ms);
    tl_arena a;
    tl_arena_init(&a, 4096);
    tl_model_report rep;

    /* Far-out times open no window, ... */
    const int64_t T0 = 1000 * DAY + 5;
    assert_int_equal(tl_model_tick(m, INT64_MAX, &a, &ms.sink), TL_OK);
    assert_int_equal(tl_model_tick(m, INT64_MIN, &a, &ms.sink), TL_OK);
    assert_int_equal(tl_model_tick(m, T0, &a, &ms.sink), TL_OK); /* opens [1000 d, +1 h) */
    gen_examples(train_set, 50, 7, 0);
    train(m, NULL, train_set, 50);
    /* ...nor close one (INT64_MAX is not past the window's end: it is no time at all) */
    assert_int_equal(tl_model_tick(m, INT64_MAX, &a, &ms.sink), TL_OK);
    assert_int_equal(tl_model_tick(m, INT64_MIN, &a, &ms.sink), TL_OK);
    tl_model_report_get(m, &rep);
    assert_int_equal(rep.markov_windows, 0);
    assert_int_equal(ms.count[MS_CREDIT], 0);
    assert_int_equal(tl_model_tick(m, T0 + HOUR - 6, &a, &ms.sink), TL_OK); /* its last ms */
    tl_model_report_get(m, &rep);
    assert_int_equal(rep.markov_windows, 0);
    assert_int_equal(tl_model_tick(m, T0 + HOUR - 5, &a, &ms.sink), TL_OK); /* its end */
    tl_model_report_get(m, &rep);
    assert_int_equal(rep.markov_windows, 1);
    assert_true(ms.count[MS_CREDIT] > 0);
    assert_int_equal(ms.rec[0].credit.window_start, 1000 * DAY);
    assert_int_equal(ms.rec[0].credit.window_end, 1000 * DAY + HOUR);
    assert_int_equal(tl_model_checkpoint(m), 0);
    tl_model_destroy(m);

    size_t len;
    char *good = read_all(path, &len);
    size_t off = window_start_offset(good, len);
    int64_t ws;
    memcpy(&ws, good + off, 8);
    assert_int_equal(ws, 1000 * DAY + HOUR); /* the window now open */

    const struct {
        int64_t ws;
        int ok;
    } cases[] = {
        {INT64_C(0x7fffffffffffff00), 0}, /* the fuzzer's: start + 1 h overflowed */
        {INT64_MAX, 0},
        {INT64_MIN, 0},
        {(INT64_C(1) << 53) + 1, 0},
        {-(INT64_C(1) << 53) - 1, 0},
        {INT64_C(1) << 53, 1}, /* the bounds are in range */
        {-(INT64_C(1) << 53), 1},
        {0, 1}, /* no window yet */
    };
    char *mut = malloc(len);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(mut, good, len);
        memcpy(mut + off, &cases[i].ws, 8);
        write_file(bad, mut, len);
        if (!cases[i].ok) {
            char want[128];
            snprintf(want, sizeof(want), "Markov window starts at %" PRId64 " ms", cases[i].ws);
            err_of(&mc, bad, err, sizeof(err));
            if (!strstr(err, bad) || !strstr(err, want))
                fail_msg("case %zu: \"%s\" does not name %s and say \"%s\"", i, err, bad, want);
            continue;
        }
        m = tl_model_new(&mc, bad, err, sizeof(err));
        if (!m) fail_msg("case %zu: window start %" PRId64 " refused: %s", i, cases[i].ws, err);
        /* ticks at either end of time and in between: no overflow (UBSan in the
         * sanitizer build), and a window from the checkpoint closes as it should */
        assert_int_equal(tl_model_tick(m, INT64_MAX, &a, &ms.sink), TL_OK);
        assert_int_equal(tl_model_tick(m, INT64_MIN, &a, &ms.sink), TL_OK);
        assert_int_equal(tl_model_tick(m, (INT64_C(1) << 53), &a, &ms.sink), TL_OK);
        assert_int_equal(tl_model_tick(m, -(INT64_C(1) << 53), &a, &ms.sink), TL_OK);
        tl_model_destroy(m);
    }

    /* Too short for the magic, empty included: refused, saying so. */
    write_file(bad, "", 0);
    assert_non_null(strstr(err_of(&mc, bad, err, sizeof(err)), "0 bytes, too short"));
    write_file(bad, good, 7);
    assert_non_null(strstr(err_of(&mc, bad, err, sizeof(err)), "7 bytes, too short"));

    free(mut);
    free(good);
    ms_free(&ms);
    tl_arena_destroy(&a);
}

/* One model for two instances: each learns half the examples and adds the other's
 * updates (in parts); both then count every example in their reports and metrics, and
 * their versions agree. A record that does not decode is refused and counted, the model
 * unchanged; the offset read is checkpointed. */
static void test_model_share(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/model.bin", fx_tmpdir);
    tl_model_cfg mc = fx_model_cfg();
    tl_model *m1 = tl_model_new(&mc, path, err, sizeof(err)), *m2 = model_new(&mc);
    assert_non_null(m1);
    tl_buf b = {0};
    assert_int_equal(tl_model_share_take(m1, &b, 1 << 20), 0); /* not sharing */
    tl_model_share_start(m1);
    gen_examples(train_set, N_TRAIN, 7, 0);
    train(m1, NULL, train_set, 10);
    tl_model_share_clear(m1); /* an aborted transaction */
    assert_int_equal(tl_model_share_take(m1, &b, 1 << 20), 0);
    train(m2, NULL, train_set, 10); /* m2 starts where m1 is */
    tl_model_share_start(m2);
    int half = N_TRAIN / 2, pos = 0;
    for (int i = 10; i < N_TRAIN; i++) pos += train_set[i].label;
    train(m1, NULL, train_set + 10, half - 10);
    train(m2, NULL, train_set + half, N_TRAIN - half);
    tl_buf parts1[64], parts2[64];
    int n1 = 0, n2 = 0;
    while (n1 < 64 && (parts1[n1] = (tl_buf){0}, tl_model_share_take(m1, &parts1[n1], 4096))) n1++;
    while (n2 < 64 && (parts2[n2] = (tl_buf){0}, tl_model_share_take(m2, &parts2[n2], 4096))) n2++;
    assert_true(n1 > 1 && n2 > 1 && n1 < 64 && n2 < 64);
    /* refused: not an update; an example with p outside [0, 1]; a delta cut short */
    tl_model_report r0, r1, r2;
    tl_model_report_get(m1, &r0);
    assert_int_equal(tl_model_share_apply(m1, "garbage!", 8, 0, err, sizeof(err)), -1);
    tl_buf bad = {0};
    tl_buf_append(&bad, parts2[0].data, parts2[0].len);
    double two = 2;
    memcpy(bad.data + 12, &two, 8);
    assert_int_equal(tl_model_share_apply(m1, bad.data, bad.len, 1, err, sizeof(err)), -1);
    assert_int_equal(
        tl_model_share_apply(m1, parts2[0].data, parts2[0].len - 3, 2, err, sizeof(err)), -1);
    tl_model_report_get(m1, &r1);
    assert_int_equal(r1.shared_bad, 3);
    assert_int_equal(r1.examples, r0.examples);
    assert_int_equal(r1.version, r0.version);
    int64_t off = 3;
    for (int i = 0; i < n2; i++, off++)
        if (tl_model_share_apply(m1, parts2[i].data, parts2[i].len, off, err, sizeof(err)) != 0)
            fail_msg("m1 applies part %d of m2's update: %s", i, err);
    for (int i = 0; i < n1; i++)
        if (tl_model_share_apply(m2, parts1[i].data, parts1[i].len, -1, err, sizeof(err)) != 0)
            fail_msg("m2 applies part %d of m1's update: %s", i, err);
    tl_model_report_get(m1, &r1);
    tl_model_report_get(m2, &r2);
    /* 10 learned before sharing: m1's are its own, m2's its own copy of them */
    assert_int_equal(r1.examples, N_TRAIN);
    assert_int_equal(r2.examples, N_TRAIN);
    assert_int_equal(r1.version, N_TRAIN);
    assert_int_equal(r2.version, N_TRAIN);
    assert_int_equal(r1.shared_examples, N_TRAIN - half);
    assert_int_equal(r2.shared_examples, half - 10);
    assert_int_equal(r1.shared_records, n2);
    int pos_all = pos;
    for (int i = 0; i < 10; i++) pos_all += train_set[i].label;
    assert_int_equal(r1.positives, pos_all);
    assert_int_equal(r2.positives, pos_all);
    assert_int_equal(tl_model_share_next(m1), off);
    assert_int_equal(tl_model_checkpoint(m1), 0);
    tl_model *m3 = tl_model_new(&mc, path, err, sizeof(err));
    if (!m3) fail_msg("from the checkpoint: %s", err);
    assert_int_equal(tl_model_share_next(m3), off);
    for (int i = 0; i < n1; i++) tl_buf_free(&parts1[i]);
    for (int i = 0; i < n2; i++) tl_buf_free(&parts2[i]);
    tl_buf_free(&bad);
    tl_buf_free(&b);
    tl_model_destroy(m1);
    tl_model_destroy(m2);
    tl_model_destroy(m3);
}

/* The bytes m's checkpoint writes to path (of fx_tmpdir). */
static char *checkpoint_at(tl_model *m, const char *path, size_t *len)
{
    assert_int_equal(tl_model_checkpoint(m), 0);
    char *b = fx_slurp(path, len);
    assert_non_null(b);
    return b;
}

/* The update m sends at a commit (all its parts, concatenated into out, which is cleared
 * first), as the Kafka sink takes it. */
static void take_all(tl_model *m, tl_buf *out)
{
    tl_buf_clear(out);
    tl_buf part = {0};
    while (tl_model_share_take(m, &part, 4096)) {
        tl_buf_append(out, part.data, part.len);
        tl_buf_clear(&part);
    }
    tl_buf_free(&part);
}

/* exactly_once with tl_model_undo_start, for the model of mc: a transaction that does not
 * commit takes back what the model learned in it (weights, averages, the sequence model's
 * weights and sums, version, progressive metrics), and applies again the other
 * instance's updates read meanwhile. Learning its examples again then gives, bit for bit,
 * the checkpoint of a model that learned them once, and the same update for the others;
 * without the undo, it does not. */
static void undo_case(const tl_model_cfg *mc, const char *name)
{
    char pa[128], pb[128], pc[128], err[256];
    snprintf(pa, sizeof(pa), "%s/undo-%s.bin", fx_tmpdir, name);
    snprintf(pb, sizeof(pb), "%s/once-%s.bin", fx_tmpdir, name);
    snprintf(pc, sizeof(pc), "%s/twice-%s.bin", fx_tmpdir, name);
    tl_model *undo = tl_model_new(mc, pa, err, sizeof(err)),
             *once = tl_model_new(mc, pb, err, sizeof(err)),
             *twice = tl_model_new(mc, pc, err, sizeof(err)), *other = model_new(mc);
    assert_true(undo && once && twice && other);
    gen_examples(train_set, N_TRAIN, 23, 0);
    /* the other instance's update, in parts */
    tl_model_share_start(other);
    tl_buf parts[64];
    int np = 0;
    for (int round = 0; round < 4; round++) { /* four transactions of the other's */
        train(other, NULL, train_set + 300 + 25 * round, 25);
        while (np < 64 && (parts[np] = (tl_buf){0}, tl_model_share_take(other, &parts[np], 4096)))
            np++;
    }
    assert_true(np >= 4 && np < 64);

    tl_buf sent[3] = {{0}}; /* each model's update of its last transaction */
    tl_model *tried[2] = {undo, twice};
    tl_model_undo_start(undo);
    for (int k = 0; k < 2; k++) {
        tl_model *m = tried[k];
        tl_model_share_start(m);
        train(m, NULL, train_set, 100);
        take_all(m, &sent[k]);
        tl_model_txn_end(m, 1);
        /* between transactions, the other's first part is read; then a transaction learns
         * 100 examples, reads the second part, learns 50 more and reads the rest, sends
         * its update and does not commit */
        if (tl_model_share_apply(m, parts[0].data, parts[0].len, 0, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        train(m, NULL, train_set + 100, 100);
        if (tl_model_share_apply(m, parts[1].data, parts[1].len, 1, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        train(m, NULL, train_set + 200, 50);
        for (int i = 2; i < np; i++)
            if (tl_model_share_apply(m, parts[i].data, parts[i].len, i, err, sizeof(err)) != 0)
                fail_msg("%s", err);
        take_all(m, &sent[k]);
        tl_model_txn_end(m, 0);
        tl_model_share_clear(m); /* the sink, at the next transaction's start */
        /* its input processed again, committed */
        train(m, NULL, train_set + 100, 150);
        take_all(m, &sent[k]);
        tl_model_txn_end(m, 1);
    }
    /* the same examples and updates, each once */
    tl_model_share_start(once);
    train(once, NULL, train_set, 100);
    take_all(once, &sent[2]);
    for (int i = 0; i < np; i++)
        if (tl_model_share_apply(once, parts[i].data, parts[i].len, i, err, sizeof(err)) != 0)
            fail_msg("%s", err);
    train(once, NULL, train_set + 100, 150);
    take_all(once, &sent[2]);

    tl_model_report r, r1;
    tl_model_report_get(undo, &r);
    tl_model_report_get(once, &r1);
    assert_int_equal(r.examples, 350);
    assert_int_equal(r.shared_records, r1.shared_records); /* each read counted once */
    assert_int_equal(r.shared_examples, r1.shared_examples);
    size_t la, lb, lc;
    char *a = checkpoint_at(undo, pa, &la), *b = checkpoint_at(once, pb, &lb),
         *c = checkpoint_at(twice, pc, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(sent[0].len, sent[2].len);
    assert_memory_equal(sent[0].data, sent[2].data, sent[0].len);
    assert_true(lc != lb || memcmp(c, b, lb) != 0); /* learned twice without the undo */
    tl_model_report_get(twice, &r);
    assert_int_equal(r.examples, 500);
    free(a);
    free(b);
    free(c);
    for (int i = 0; i < np; i++) tl_buf_free(&parts[i]);
    for (int i = 0; i < 3; i++) tl_buf_free(&sent[i]);
    tl_model_destroy(undo);
    tl_model_destroy(once);
    tl_model_destroy(twice);
    tl_model_destroy(other);
}

static void test_model_undo(void **state)
{
    (void)state;
    tl_model_cfg mc = fx_model_cfg();
    undo_case(&mc, "ftrl");
}

/* model.kind=seq: the model learns an order effect from the stream's examples (a purchase
 * follows display then search, never search then display), credits a purchase after
 * that order with shares in [0, 1] that sum to 1 and a p_conversion above the same
 * touchpoints the other way round, and resumes from its checkpoint with the same
 * credits. */
static void seq_order(tl_journey_tp *t, int display_first, int64_t at, uint64_t *s)
{
    int64_t older = at - 2 * HOUR - (int64_t)(rng(s) % HOUR);
    int64_t newer = older + HOUR / 2 + (int64_t)(rng(s) % HOUR);
    t[0] = mktp("a", TL_IMPRESSION, older, -1, display_first ? "display" : "search", NULL, -1, -1);
    t[1] = mktp("b", TL_IMPRESSION, newer, -1, display_first ? "search" : "display", NULL, -1, -1);
}

/* A small sequence model (model.kind=seq) for the tests, warm after `warmup` examples. */
static tl_model_cfg seq_cfg(int warmup)
{
    tl_model_cfg mc = fx_model_cfg();
    mc.kind = TL_MODEL_SEQ;
    mc.seq_dim = 8;
    mc.seq_buckets = 64;
    mc.seq_lr = 0.1;
    mc.seq_l2 = 0;
    mc.warmup_examples = warmup;
    return mc;
}

static void test_seq_kind(void **state)
{
    (void)state;
    char path[512], bad[512], err[512];
    checkpoint_paths(path, bad, sizeof(path));
    tl_model_cfg mc = seq_cfg(50);
    tl_model *m = model_new_at(&mc, path);
    tl_journey_tp t[2];
    uint64_t s = 5;
    int64_t at = 1700000000000LL;
    for (int i = 0; i < 6000; i++) {
        int first = (int)(rng(&s) & 1);
        seq_order(t, first, at, &s);
        tl_model_learn(m, NULL, t, 2, first, at);
    }
    assert_int_equal(report(m).version, 6000);
    tl_arena arena, *a = &arena;
    tl_arena_init(a, 1 << 16);
    tl_attribution r, back;
    seq_order(t, 1, at, &s);
    credit(m, t, 2, at, a, &r);
    seq_order(t, 0, at, &s);
    credit(m, t, 2, at, a, &back);
    if (strcmp(r.model_status[TL_M_SHAPLEY], "ok") || strcmp(r.model_status[TL_M_REMOVAL], "ok"))
        fail_msg("display then search: status %s, %s", r.model_status[TL_M_SHAPLEY],
                 r.model_status[TL_M_REMOVAL]);
    for (int mth = TL_M_SHAPLEY; mth <= TL_M_REMOVAL; mth++) {
        double sum = 0;
        for (int i = 0; i < 2; i++) {
            assert_true(r.credits[mth][i] >= 0 && r.credits[mth][i] <= 1);
            sum += r.credits[mth][i];
        }
        fx_near(sum, 1, 1e-12, "the shares' sum");
    }
    if (!(r.p_conversion > 0.9 && back.p_conversion < 0.1))
        fail_msg("p: display then search %.3f, search then display %.3f", r.p_conversion,
                 back.p_conversion);
    assert_int_equal(r.model_version, 6000);

    /* the checkpoint: the same credits after a restart */
    assert_int_equal(tl_model_checkpoint(m), 0);
    tl_model *m2 = model_new_at(&mc, path);
    seq_order(t, 1, at, &s);
    tl_attribution r1, r2;
    credit(m, t, 2, at, a, &r1);
    credit(m2, t, 2, at, a, &r2);
    for (int i = 0; i < 2; i++) {
        same_bits(r1.credits[TL_M_SHAPLEY][i], r2.credits[TL_M_SHAPLEY][i], "shapley", i);
        same_bits(r1.credits[TL_M_REMOVAL][i], r2.credits[TL_M_REMOVAL][i], "removal", i);
    }
    same_bits(r1.p_conversion, r2.p_conversion, "p_conversion", 0);
    assert_int_equal(r2.model_version, 6000);
    /* other sizes: the sequence model starts afresh, the rest resumes */
    mc.seq_dim = 16;
    tl_model *m3 = model_new_at(&mc, path);
    assert_int_equal(report(m3).version, 0);
    assert_int_equal(report(m3).examples, report(m).examples);
    /* a sequence model's part cut short is refused, with a message */
    size_t len;
    char *file = fx_slurp(path, &len);
    fx_write_file_n(fx_tmpdir, "bad.bin", file, len - 8);
    tl_model *m4 = tl_model_new(&mc, bad, err, sizeof(err));
    if (m4 || !strstr(err, "corrupt")) fail_msg("a cut checkpoint: %s", m4 ? "resumed" : err);
    free(file);
    tl_model_destroy(m);
    tl_model_destroy(m2);
    tl_model_destroy(m3);
    tl_arena_destroy(a);
}

/* Learns one example and returns the logit of the prediction it was scored with, read
 * from the examples' export. */
static double learn_logit(tl_model *m, const tl_journey_tp *t, int n, int label, int64_t at)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    tl_model_export_examples(m, f);
    tl_model_learn(m, NULL, t, n, label, at);
    tl_model_export_examples(m, NULL);
    rewind(f);
    char head[64];
    long long ts;
    int y;
    double w, p;
    if (!fgets(head, sizeof(head), f) || fscanf(f, "%lld,%d,%lf,%lf,", &ts, &y, &w, &p) != 4)
        fail_msg("no exported example");
    fclose(f);
    return log(p / (1 - p));
}

/* The same undo with model.kind=seq: the attention step's weights and sums go back too. */
static void test_seq_undo(void **state)
{
    (void)state;
    tl_model_cfg mc = seq_cfg(50);
    undo_case(&mc, "seq");
}

/* model.kind=seq shared: two instances learn from their own examples and add each other's
 * updates (in parts); both then hold the same model (FTRL's weights and the attention
 * step's), so they predict alike, and not as either did alone. An update from a
 * sequence model of other sizes is refused, the model unchanged; an instance with
 * model.kind=ftrl takes the FTRL part of a sequence model's update. */
static void test_seq_share(void **state)
{
    (void)state;
    char err[256];
    tl_model_cfg mc = seq_cfg(10);
    tl_model *m1 = model_new(&mc), *m2 = model_new(&mc), *alone = model_new(&mc);
    tl_model_share_start(m1);
    tl_model_share_start(m2);
    tl_journey_tp t[2];
    uint64_t s = 11;
    int64_t at = 1700000000000LL;
    for (int i = 0; i < 1200; i++) { /* m1 and alone learn the same; m2 others */
        int first = (int)(rng(&s) & 1);
        seq_order(t, first, at, &s);
        tl_model_learn(i % 2 ? m2 : m1, NULL, t, 2, first, at);
        if (!(i % 2)) tl_model_learn(alone, NULL, t, 2, first, at);
    }
    tl_buf parts1[256], parts2[256];
    int n1 = 0, n2 = 0;
    while (n1 < 256 && (parts1[n1] = (tl_buf){0}, tl_model_share_take(m1, &parts1[n1], 4096))) n1++;
    while (n2 < 256 && (parts2[n2] = (tl_buf){0}, tl_model_share_take(m2, &parts2[n2], 4096))) n2++;
    assert_true(n1 > 1 && n2 > 1 && n1 < 256 && n2 < 256);

    /* refused: an update of a sequence model with another dim; an FTRL instance takes it */
    tl_model_cfg other = mc;
    other.seq_dim = 4;
    tl_model *small = model_new(&other);
    uint64_t v0 = report(small).version;
    assert_int_equal(
        tl_model_share_apply(small, parts1[0].data, parts1[0].len, 0, err, sizeof(err)), -1);
    assert_int_equal(report(small).shared_bad, 1);
    assert_int_equal(report(small).version, v0);
    tl_model_cfg fc = mc;
    fc.kind = TL_MODEL_FTRL;
    tl_model *ftrl = model_new(&fc);
    for (int i = 0; i < n1; i++)
        if (tl_model_share_apply(ftrl, parts1[i].data, parts1[i].len, i, err, sizeof(err)) != 0)
            fail_msg("an ftrl instance applies part %d: %s", i, err);
    assert_int_equal(report(ftrl).version, 600);

    for (int i = 0; i < n2; i++)
        if (tl_model_share_apply(m1, parts2[i].data, parts2[i].len, i, err, sizeof(err)) != 0)
            fail_msg("m1 applies part %d of m2's update: %s", i, err);
    for (int i = 0; i < n1; i++)
        if (tl_model_share_apply(m2, parts1[i].data, parts1[i].len, i, err, sizeof(err)) != 0)
            fail_msg("m2 applies part %d of m1's update: %s", i, err);
    assert_int_equal(report(m1).version, 1200);
    assert_int_equal(report(m2).version, 1200);

    /* the same prediction for the next examples (each made with the last weights, which
     * the updates share; the averaged weights the credits use are each instance's own) */
    for (int order = 0; order < 2; order++) {
        seq_order(t, order, at, &s);
        double z1 = learn_logit(m1, t, 2, order, at), z2 = learn_logit(m2, t, 2, order, at),
               z0 = learn_logit(alone, t, 2, order, at);
        fx_near(z1, z2, 1e-9, "the logit of m1 against m2's");
        if (!(fabs(z1 - z0) > 1e-3))
            fail_msg("shared %.9f, alone %.9f: the updates changed nothing", z1, z0);
    }
    for (int i = 0; i < n1; i++) tl_buf_free(&parts1[i]);
    for (int i = 0; i < n2; i++) tl_buf_free(&parts2[i]);
    tl_model_destroy(m1);
    tl_model_destroy(m2);
    tl_model_destroy(alone);
    tl_model_destroy(small);
    tl_model_destroy(ftrl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_fnv1a),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_reference_worked_example),
        cmocka_unit_test(test_model_credits),
        cmocka_unit_test(test_model_credits_12),
        cmocka_unit_test(test_model_credits_sampled),
        cmocka_unit_test(test_model_fallback),
        FX_TMPDIR_TEST(test_labels_through_stage),
        cmocka_unit_test(test_no_leakage),
        cmocka_unit_test(test_model_warmup),
        cmocka_unit_test(test_intent),
        cmocka_unit_test(test_intent_outcomes),
        cmocka_unit_test(test_intent_undo),
        cmocka_unit_test(test_intent_stage),
        FX_TMPDIR_TEST(test_checkpoint),
        FX_TMPDIR_TEST(test_model_share),
        FX_TMPDIR_TEST(test_model_undo),
        FX_TMPDIR_TEST(test_seq_undo),
        FX_TMPDIR_TEST(test_checkpoint_truncated),
        FX_TMPDIR_TEST(test_checkpoint_window_start),
        FX_TMPDIR_TEST(test_seq_kind),
        cmocka_unit_test(test_seq_share),
        cmocka_unit_test(test_markov_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
