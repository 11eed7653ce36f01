/*
 * model.c -- the conversion model, model-based credits and Markov windows (model.h).
 *
 * Scoring coalitions. A coalition is a bitmask over a purchase's players (touchpoints,
 * or their categories). Exact Shapley needs every coalition: they are scored in
 * Gray-code order, each step toggling one player and updating w.x only where that
 * player's features change (tl_jf_coalition_logits), into a table the Shapley sum reads.
 * Sampled permutations come as runs of coalitions, each adding one touchpoint to the one
 * before: only the first of a run is pooled; the others are scored by what the added
 * touchpoint changes. Pooled coalitions (run starts, removal's) are the rows of a matrix
 * scored with one cblas_dgemv per 1024 coalitions. The Gray-code table
 * replaced the matrix for the exact path: 4096 incremental updates cost about a third of
 * 4096 pools (bench_attribution).
 *
 * Order matters for an online model: a purchase is credited with the model as it is,
 * then learned from (progressive validation), so a record's p_conversion never saw
 * its own label. The model is one per process; with several partitions its examples
 * interleave in arrival order, so model-based numbers depend on that order (rule-based
 * ones do not). A replay of a file is the single-partition case.
 *
 * Checkpoint: one file (model.bin in state.dir), written to a temporary name and
 * renamed after every state flush, so it matches the stores written just before.
 *
 * Rejected: scoring coalitions one by one with tl_ftrl_predict (simple, but no batching
 * and twice as slow at 12 players); a model per partition (each would see a fraction
 * of the labels, and partitions move between instances).
 */
#define _XOPEN_SOURCE 700
#include "model.h"
#include "ftrl.h"
#include "journey_features.h"
#include "markov.h"
#include "metrics.h"
#include "shapley.h"
#include "core/log.h"
#include "core/util.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D TL_JF_DIM

/* The event times (ms) a Markov window may start at: +-2^53 ms, about 285,000 years
 * either side of 1970. A checkpoint's window start outside is refused, and times
 * outside move no window, so window arithmetic (start + markov.window.ms, at most
 * 1e15) never overflows. */
#define TL_MODEL_MAX_TIME ((int64_t)1 << 53)

int tl_model_cfg_load(tl_model_cfg *mc, const tl_config *c, char *err, size_t errlen)
{
    memset(mc, 0, sizeof(*mc));
    mc->enabled = tl_config_bool(c, "model.enabled");
    mc->alpha = tl_config_double(c, "model.ftrl.alpha");
    mc->beta = tl_config_double(c, "model.ftrl.beta");
    mc->l1 = tl_config_double(c, "model.ftrl.l1");
    mc->l2 = tl_config_double(c, "model.ftrl.l2");
    mc->ipw = tl_config_bool(c, "model.ipw");
    mc->ipw_clip = tl_config_double(c, "model.ipw.clip");
    mc->shapley_exact_max = (int)tl_config_int(c, "model.shapley.exact.max");
    mc->shapley_samples = (int)tl_config_int(c, "model.shapley.samples");
    mc->metrics_window = (int)tl_config_int(c, "model.metrics.window");
    mc->warmup_examples = tl_config_int(c, "model.warmup.examples");
    mc->signed_credits = tl_config_bool(c, "model.credits.signed");
    mc->markov_enabled = tl_config_bool(c, "markov.enabled");
    mc->markov_window_ms = tl_config_int(c, "markov.window.ms");
    const char *dim = tl_config_str(c, "markov.dim");
    if (!strcmp(dim, "auto")) mc->markov_dim = -1;
    else if (!strcmp(dim, "channel")) mc->markov_dim = TL_DIM_CHANNEL;
    else if (!strcmp(dim, "category")) mc->markov_dim = TL_DIM_CATEGORY;
    else {
        snprintf(err, errlen, "markov.dim: expected auto, channel or category, got '%s'", dim);
        return -1;
    }
    return 0;
}

/* Credits a Markov state had at the end of the previous window. */
typedef struct prev_credit {
    char *name;
    double credit;
} prev_credit;

struct tl_model {
    tl_model_cfg cfg;
    char *checkpoint;
    tl_ftrl *ftrl;
    tl_metrics *metrics;
    double w[D];
    uint64_t w_version;          /* ftrl version w was read at */
    double *X, *z;               /* coalition batch scratch: TL_SHAPLEY_BATCH x D, and scores */
    int *run_row;                /* per coalition of a batch: the row its run started at */
    double *run_dz;              /* ... and its logit's change since that row */
    FILE *export;
    tl_model_report rep;
    /* Markov */
    tl_markov *markov;
    int markov_dim;              /* resolved: TL_DIM_CHANNEL or TL_DIM_CATEGORY, -1 unknown */
    int64_t window_start;        /* 0: no window yet */
    prev_credit *prev;
    int n_prev, cap_prev;
};

/* ---- checkpoint ------------------------------------------------------------------ */

static void put_blob(tl_buf *b, const tl_buf *blob)
{
    uint64_t n = blob->len;
    tl_buf_append(b, &n, 8);
    tl_buf_append(b, blob->data, blob->len);
}

static const char *get_blob(const char **p, const char *end, size_t *len)
{
    uint64_t n;
    if (end - *p < 8) return NULL;
    memcpy(&n, *p, 8);
    *p += 8;
    if ((uint64_t)(end - *p) < n) return NULL;
    const char *s = *p;
    *p += n;
    *len = (size_t)n;
    return s;
}

int tl_model_checkpoint(tl_model *m)
{
    if (!m->checkpoint) return 0;
    tl_buf b = {0}, part = {0};
    tl_buf_append(&b, "TLMODEL1", 8);
    tl_ftrl_encode(m->ftrl, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    tl_metrics_encode(m->metrics, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    tl_markov_encode(m->markov, &part);
    put_blob(&b, &part);
    tl_buf_clear(&part);
    int32_t dim = m->markov_dim;
    tl_buf_append(&part, &dim, 4);
    tl_buf_append(&part, &m->window_start, 8);
    int32_t np = m->n_prev;
    tl_buf_append(&part, &np, 4);
    for (int i = 0; i < m->n_prev; i++) {
        uint32_t l = (uint32_t)strlen(m->prev[i].name);
        tl_buf_append(&part, &l, 4);
        tl_buf_append(&part, m->prev[i].name, l);
        tl_buf_append(&part, &m->prev[i].credit, 8);
    }
    put_blob(&b, &part);
    tl_buf_free(&part);

    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->checkpoint);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (f) {
        size_t w = fwrite(b.data, 1, b.len, f);
        if (fclose(f) == 0 && w == b.len && rename(tmp, m->checkpoint) == 0) rc = 0;
    }
    if (rc != 0) TL_LOG_ERROR("model", "cannot write checkpoint %s: %s", m->checkpoint, strerror(errno));
    tl_buf_free(&b);
    return rc;
}

/* Restores from the checkpoint file if there is one. 0, or -1 if it is corrupt. */
static int model_restore(tl_model *m, char *err, size_t errlen)
{
    FILE *f = fopen(m->checkpoint, "rb");
    if (!f) return 0;
    tl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) tl_buf_append(&b, chunk, n);
    fclose(f);
    /* An empty file has no buffer at all (b.data NULL, where even NULL + 0 is undefined)
     * and a short one no magic: tl_model_checkpoint renames a whole file into place, so
     * either is damage from outside, and named as such. */
    if (b.len < 8) {
        snprintf(err, errlen, "model checkpoint %s is corrupt: %zu bytes, too short for one "
                 "(remove it to start the model afresh)", m->checkpoint, b.len);
        tl_buf_free(&b);
        return -1;
    }
    const char *p = b.data, *end = b.data + b.len, *s;
    size_t len;
    int rc = -1;
    char why[160] = "";
    if (memcmp(p, "TLMODEL1", 8) != 0) goto done;
    p += 8;
    tl_ftrl *ftrl = NULL;
    tl_metrics *met = NULL;
    tl_markov *mk = NULL;
    if (!(s = get_blob(&p, end, &len)) || !(ftrl = tl_ftrl_decode(s, len)) ||
        tl_ftrl_dim(ftrl) != D) {
        tl_ftrl_destroy(ftrl);
        goto done;
    }
    if (!(s = get_blob(&p, end, &len)) || !(met = tl_metrics_decode(s, len))) {
        tl_ftrl_destroy(ftrl);
        goto done;
    }
    if (!(s = get_blob(&p, end, &len)) || !(mk = tl_markov_decode(s, len, NULL))) {
        tl_ftrl_destroy(ftrl);
        tl_metrics_destroy(met);
        goto done;
    }
    tl_ftrl_destroy(m->ftrl);
    tl_metrics_destroy(m->metrics);
    tl_markov_destroy(m->markov);
    m->ftrl = ftrl;
    m->metrics = met;
    m->markov = mk;
    if (!(s = get_blob(&p, end, &len)) || len < 16 || p != end) {
        /* the Markov window part is missing or the file has trailing bytes */
        goto done;
    }
    {
        const char *q = s, *qe = s + len;
        int32_t dim, np;
        memcpy(&dim, q, 4);
        memcpy(&m->window_start, q + 4, 8);
        memcpy(&np, q + 12, 4);
        q += 16;
        if (m->window_start < -TL_MODEL_MAX_TIME || m->window_start > TL_MODEL_MAX_TIME) {
            snprintf(why, sizeof(why), ": its Markov window starts at %" PRId64 " ms, outside "
                     "+-%" PRId64 " ms", m->window_start, TL_MODEL_MAX_TIME);
            m->window_start = 0;
            goto done;
        }
        m->markov_dim = dim;
        for (int i = 0; i < np && qe - q >= 4; i++) {
            uint32_t l;
            memcpy(&l, q, 4);
            q += 4;
            if ((size_t)(qe - q) < (size_t)l + 8) break;
            if (m->n_prev == m->cap_prev) {
                m->cap_prev = m->cap_prev ? m->cap_prev * 2 : 16;
                m->prev = tl_xrealloc(m->prev, (size_t)m->cap_prev * sizeof(*m->prev));
            }
            m->prev[m->n_prev].name = tl_xmalloc(l + 1);
            memcpy(m->prev[m->n_prev].name, q, l);
            m->prev[m->n_prev].name[l] = '\0';
            memcpy(&m->prev[m->n_prev].credit, q + l, 8);
            m->n_prev++;
            q += l + 8;
        }
        if (m->n_prev != np || q != qe) goto done;
    }
    rc = 0;
    TL_LOG_INFO("model", "resumed from %s version=%" PRIu64 " examples=%" PRIu64, m->checkpoint,
                tl_ftrl_version(m->ftrl), tl_metrics_count(m->metrics));
done:
    if (rc != 0) snprintf(err, errlen, "model checkpoint %s is corrupt%s", m->checkpoint, why);
    tl_buf_free(&b);
    return rc;
}

tl_model *tl_model_new(const tl_model_cfg *mc, const char *checkpoint, char *err, size_t errlen)
{
    /* The matrices here are small (at most 1024 x 44): OpenBLAS's worker threads would
     * spin and yield for nothing (measured: 40% of the time in sched_yield). */
    openblas_set_num_threads(1);
    tl_model *m = tl_xcalloc(1, sizeof(*m));
    m->cfg = *mc;
    m->ftrl = tl_ftrl_new(D, mc->alpha, mc->beta, mc->l1, mc->l2);
    m->metrics = tl_metrics_new(mc->metrics_window);
    m->markov = tl_markov_new();
    m->markov_dim = mc->markov_dim;
    m->X = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * D * sizeof(double));
    m->z = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * sizeof(double));
    m->run_row = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * sizeof(int));
    m->run_dz = tl_xmalloc((size_t)TL_SHAPLEY_BATCH * sizeof(double));
    m->w_version = UINT64_MAX;
    if (!m->ftrl || !m->metrics || !m->markov) {
        snprintf(err, errlen, "model: invalid parameters (FTRL alpha/beta/l1/l2, metrics window)");
        tl_model_destroy(m);
        return NULL;
    }
    if (checkpoint) {
        m->checkpoint = tl_xstrdup(checkpoint);
        if (model_restore(m, err, errlen) != 0) {
            tl_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

void tl_model_destroy(tl_model *m)
{
    if (!m) return;
    tl_ftrl_destroy(m->ftrl);
    tl_metrics_destroy(m->metrics);
    tl_markov_destroy(m->markov);
    for (int i = 0; i < m->n_prev; i++) free(m->prev[i].name);
    free(m->prev);
    free(m->X);
    free(m->run_row);
    free(m->run_dz);
    free(m->z);
    free(m->checkpoint);
    free(m);
}

void tl_model_export_examples(tl_model *m, FILE *f)
{
    m->export = f;
    fprintf(f, "ts,label,weight,p_model,p_rate");
    for (int i = 0; i < D; i++) fprintf(f, ",%s", tl_jf_name(i));
    fputc('\n', f);
}

/* ---- coalition scoring ----------------------------------------------------------- */

static const double *weights(tl_model *m)
{
    uint64_t v = tl_ftrl_version(m->ftrl);
    if (v != m->w_version) {
        tl_ftrl_weights(m->ftrl, m->w);
        m->w_version = v;
    }
    return m->w;
}

typedef struct game {
    tl_model *m;
    const tl_jf_tp *tps;
    int n;
    double p_empty;
} game;

/* v(S) = p(S) - p(empty) for a batch of coalitions. A coalition that adds one
 * touchpoint to the one before (the sampled estimator passes runs of them) is scored by
 * what that touchpoint changes: a few features, O(1). The others are pooled from their
 * touchpoints and scored together with one matrix-vector product; a run's logits are
 * its first coalition's plus the changes since. */
static void game_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    game *g = arg;
    tl_model *m = g->m;
    const double *w = weights(m);
    tl_jf_agg cur;
    double x[D], dz = 0;
    int run_row = 0;
    for (int done = 0; done < count; done += TL_SHAPLEY_BATCH) {
        int k = count - done < TL_SHAPLEY_BATCH ? count - done : TL_SHAPLEY_BATCH;
        int rows = 0;
        uint64_t cur_mask = 0;
        for (int i = 0; i < k; i++) {
            uint64_t mask = masks[done + i], added = mask & ~cur_mask;
            if (i > 0 && !(cur_mask & ~mask) && added && !(added & (added - 1)) &&
                __builtin_ctzll(added) < g->n) {
                dz += tl_jf_agg_add_scored(&cur, x, &g->tps[__builtin_ctzll(added)], w);
            } else {
                tl_jf_agg_pool(g->tps, g->n, NULL, mask, &cur);
                tl_jf_agg_finish(&cur, x);
                memcpy(m->X + (size_t)rows * D, x, sizeof(x));
                run_row = rows++;
                dz = 0;
            }
            cur_mask = mask;
            m->run_row[i] = run_row;
            m->run_dz[i] = dz;
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, D, 1.0, m->X, D, w, 1, 0.0, m->z, 1);
        for (int i = 0; i < k; i++)
            v[done + i] = tl_sigmoid(m->z[m->run_row[i]] + m->run_dz[i]) - g->p_empty;
    }
}

/* v(S) = p(S) - p(empty) of all 2^k coalitions of k players (each an aggregate of
 * touchpoints), into v[mask], scored incrementally in Gray-code order
 * (tl_jf_coalition_logits). Exact Shapley then reads this table instead of pooling
 * touchpoints per coalition: 12 players cost 4096 small updates, not 4096 pools. */
static void coalition_table(tl_model *m, const tl_jf_agg *players, int k, double p_empty,
                            double *v)
{
    tl_jf_coalition_logits(players, k, weights(m), v);
    for (uint64_t i = 0; i < ((uint64_t)1 << k); i++) v[i] = tl_sigmoid(v[i]) - p_empty;
    v[0] = 0;
}

static void table_fn(void *arg, const uint64_t *masks, int count, double *v)
{
    const double *table = arg;
    for (int i = 0; i < count; i++) v[i] = table[masks[i]];
}

/* Exact Shapley values of k <= 20 players, each an aggregate of touchpoints; the value of
 * player j goes to out[j]. */
static int shapley_players(tl_model *m, const tl_jf_agg *players, int k, double p_empty,
                           tl_arena *a, double *out)
{
    double *table = tl_arena_alloc(a, ((size_t)1 << k) * sizeof(double));
    coalition_table(m, players, k, p_empty, table);
    return tl_shapley_exact(k, table_fn, table, out);
}

static double score_mask(game *g, uint64_t mask)
{
    double v;
    game_fn(g, &mask, 1, &v);
    return v + g->p_empty;
}

/* Groups touchpoints by category; returns the number of groups. */
static int group_by_category(const tl_journey_tp *tps, int n, int *group_of)
{
    int groups = 0;
    for (int i = 0; i < n; i++) {
        group_of[i] = -1;
        for (int j = 0; j < i; j++) {
            const char *a = tps[i].category_id, *b = tps[j].category_id;
            if ((a == NULL && b == NULL) || (a && b && !strcmp(a, b))) {
                group_of[i] = group_of[j];
                break;
            }
        }
        if (group_of[i] < 0) group_of[i] = groups++;
    }
    return groups;
}

static void linear(int n, double *out)
{
    for (int i = 0; i < n; i++) out[i] = 1.0 / n;
}

void tl_model_credit(tl_model *m, const tl_journey_tp *tps, int n, tl_attribution *r,
                     tl_arena *a, const char **explanation)
{
    if (!m->cfg.enabled || n <= 0) return;
    tl_jf_tp *jf = tl_arena_alloc(a, (size_t)n * sizeof(*jf));
    tl_jf_prepare(tps, n, tps[n - 1].ts, jf);
    game g = {.m = m, .tps = jf, .n = n};
    g.p_empty = 0;
    g.p_empty = score_mask(&g, 0);
    uint64_t all = n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    double p_all = score_mask(&g, all);

    double *raw = tl_arena_alloc(a, (size_t)n * sizeof(*raw));
    double *shap = tl_arena_alloc(a, (size_t)n * sizeof(*shap));
    double *rem = tl_arena_alloc(a, (size_t)n * sizeof(*rem));
    int ok_shap = 0, ok_rem = 0;
    const char *how = "exact";
    /* Warm-up: model credits only from a model that has seen both outcomes enough; before,
     * the credits are linear and not computed at all. */
    uint64_t pos = tl_metrics_positives(m->metrics);
    uint64_t neg = tl_metrics_count(m->metrics) - pos;
    uint64_t k = (uint64_t)m->cfg.warmup_examples;
    const char *ready = neg == 0 ? "no_negatives" : (pos < k || neg < k) ? "warming_up" : NULL;
    if (!ready && n <= 64) {
        int rc;
        if (n <= m->cfg.shapley_exact_max) {
            tl_jf_agg *players = tl_arena_alloc(a, (size_t)n * sizeof(*players));
            memset(players, 0, (size_t)n * sizeof(*players));
            for (int i = 0; i < n; i++) tl_jf_agg_add(&players[i], &jf[i]);
            rc = shapley_players(m, players, n, g.p_empty, a, raw);
        } else {
            int *group_of = tl_arena_alloc(a, (size_t)n * sizeof(int));
            int groups = group_by_category(tps, n, group_of);
            if (groups <= m->cfg.shapley_exact_max) {
                /* The categories are the players (exact); each category's value is split
                 * equally among its touchpoints. */
                tl_jf_agg *players = tl_arena_alloc(a, (size_t)groups * sizeof(*players));
                double *phi = tl_arena_alloc(a, (size_t)groups * sizeof(*phi));
                int *members = tl_arena_alloc(a, (size_t)groups * sizeof(int));
                memset(players, 0, (size_t)groups * sizeof(*players));
                memset(members, 0, (size_t)groups * sizeof(int));
                for (int i = 0; i < n; i++) {
                    tl_jf_agg_add(&players[group_of[i]], &jf[i]);
                    members[group_of[i]]++;
                }
                rc = shapley_players(m, players, groups, g.p_empty, a, phi);
                for (int i = 0; i < n; i++) raw[i] = phi[group_of[i]] / members[group_of[i]];
                how = "exact over categories";
                m->rep.grouped++;
            } else {
                uint64_t seed = tl_hash64(r->conversion_event_id, strlen(r->conversion_event_id));
                rc = tl_shapley_sampled(n, m->cfg.shapley_samples, seed, game_fn, &g, raw, NULL);
                how = "sampled";
                m->rep.sampled++;
            }
        }
        ok_shap = rc == TL_SHAPLEY_OK && tl_credits_normalise(n, raw, shap, m->cfg.signed_credits);
        ok_rem = tl_removal(n, game_fn, &g, raw) == TL_SHAPLEY_OK &&
                 tl_credits_normalise(n, raw, rem, m->cfg.signed_credits);
    }
    if (!ok_shap) linear(n, shap);
    if (!ok_rem) linear(n, rem);
    r->credits[TL_M_SHAPLEY] = shap;
    r->credits[TL_M_REMOVAL] = rem;
    r->has_method[TL_M_SHAPLEY] = r->has_method[TL_M_REMOVAL] = 1;
    r->model_status[TL_M_SHAPLEY] = ready ? ready : ok_shap ? "ok" : "fallback_linear";
    r->model_status[TL_M_REMOVAL] = ready ? ready : ok_rem ? "ok" : "fallback_linear";
    r->has_model = 1;
    r->p_conversion = p_all;
    r->p_baseline = g.p_empty;
    r->model_version = (int64_t)tl_ftrl_version(m->ftrl);
    m->rep.credited++;

    /* The sentence: model numbers only from a model that is ready; the two touchpoints
     * with the most Shapley credit (shares in [0, 1], so percentages in [0, 100]). */
    char buf[768];
    int len = 0;
    if (ready && neg == 0) {
        m->rep.no_negatives++;
        len = snprintf(buf, sizeof(buf),
                       "; the model has learned from no journey without a purchase yet (%" PRIu64
                       " with one), so it cannot tell what raises p(purchase): model credits are "
                       "linear", pos);
    } else if (ready) {
        m->rep.warming_up++;
        len = snprintf(buf, sizeof(buf),
                       "; the model is warming up (%" PRIu64 " journeys with a purchase and %" PRIu64
                       " without learned, %" PRIu64 " of each needed): model credits are linear",
                       pos, neg, k);
    } else if (!ok_shap) {
        m->rep.fallbacks++;
        len = snprintf(buf, sizeof(buf),
                       "; the model (version %" PRId64 ") finds that no touchpoint raised "
                       "p(purchase) (%.3f against %.3f with none), so Shapley falls back to linear%s",
                       r->model_version, p_all, g.p_empty,
                       ok_rem ? " (removal credits the touchpoints whose removal lowers it)"
                              : ", and so does removal");
    } else {
        int top = 0, second = -1;
        for (int i = 1; i < n; i++) {
            if (shap[i] > shap[top]) {
                second = top;
                top = i;
            } else if (second < 0 || shap[i] > shap[second]) {
                second = i;
            }
        }
        char ago[32];
        tl_fmt_duration(ago, sizeof(ago), r->ts - tps[top].ts);
        len = snprintf(buf, sizeof(buf),
                       "; the model (version %" PRId64 ") puts p(purchase) at %.3f against %.3f "
                       "with no touchpoints, and Shapley (%s) gives %.0f%% of the gain to the %s of "
                       "item %s (%s before)",
                       r->model_version, p_all, g.p_empty, how, 100 * shap[top],
                       tl_event_type_phrase((tl_event_type)tps[top].type), tps[top].item_id, ago);
        if (second >= 0 && shap[second] > 0 && len < (int)sizeof(buf)) {
            tl_fmt_duration(ago, sizeof(ago), r->ts - tps[second].ts);
            len += snprintf(buf + len, sizeof(buf) - (size_t)len, " and %.0f%% to the %s of item %s (%s before)",
                            100 * shap[second], tl_event_type_phrase((tl_event_type)tps[second].type),
                            tps[second].item_id, ago);
        }
        if (!ok_rem && len < (int)sizeof(buf))
            snprintf(buf + len, sizeof(buf) - (size_t)len, "; removal falls back to linear");
    }
    *explanation = tl_arena_printf(a, "%s%s", *explanation, buf);
}

/* ---- learning ------------------------------------------------------------------- */

static double ipw_weight(const tl_model *m, const tl_journey_tp *tps, int n)
{
    if (!m->cfg.ipw) return 1.0;
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (tps[i].propensity > 0) {
            sum += 1.0 / tps[i].propensity;
            k++;
        }
    }
    if (!k) return 1.0;
    double w = sum / k;
    return w > m->cfg.ipw_clip ? m->cfg.ipw_clip : w;
}

static void markov_add(tl_model *m, const tl_journey_tp *tps, int n, int label)
{
    if (!m->cfg.markov_enabled) return;
    if (m->markov_dim < 0) {   /* auto: channels if the first closed journey has them */
        m->markov_dim = TL_DIM_CATEGORY;
        for (int i = 0; i < n; i++)
            if (tps[i].channel) m->markov_dim = TL_DIM_CHANNEL;
    }
    const char *states[64];
    int k = 0;
    for (int i = n > 64 ? n - 64 : 0; i < n; i++) {
        const char *s = m->markov_dim == TL_DIM_CHANNEL ? tps[i].channel : tps[i].category_id;
        if (s) states[k++] = s;
    }
    if (k) tl_markov_add_path(m->markov, states, k, label ? 1.0 : 0.0, label ? 0.0 : 1.0, 0.0);
}

void tl_model_learn(tl_model *m, const tl_journey_tp *tps, int n, int label, int64_t ts)
{
    if (n <= 0) return;
    markov_add(m, tps, n, label);
    if (!m->cfg.enabled) return;
    tl_jf_tp jf[64];
    const tl_journey_tp *t = n > 64 ? tps + (n - 64) : tps;   /* the features of the last 64 */
    int k = n > 64 ? 64 : n;
    tl_jf_prepare(t, k, t[k - 1].ts, jf);
    double x[D];
    tl_jf_pool(jf, k, NULL, ~(uint64_t)0, x);
    double weight = ipw_weight(m, t, k);
    double p_rate = tl_metrics_baseline_rate(m->metrics);
    double p = tl_ftrl_learn(m->ftrl, x, label, weight);   /* p: scored before the update */
    tl_metrics_add(m->metrics, p, label, weight);
    if (m->export) {
        fprintf(m->export, "%" PRId64 ",%d,%.17g,%.17g,%.17g", ts, label, weight, p, p_rate);
        for (int i = 0; i < D; i++) fprintf(m->export, ",%.17g", x[i]);
        fputc('\n', m->export);
    }
}

/* ---- Markov windows ------------------------------------------------------------- */

static prev_credit *prev_find(tl_model *m, const char *name)
{
    for (int i = 0; i < m->n_prev; i++)
        if (!strcmp(m->prev[i].name, name)) return &m->prev[i];
    if (m->n_prev == m->cap_prev) {
        m->cap_prev = m->cap_prev ? m->cap_prev * 2 : 16;
        m->prev = tl_xrealloc(m->prev, (size_t)m->cap_prev * sizeof(*m->prev));
    }
    prev_credit *p = &m->prev[m->n_prev++];
    p->name = tl_xstrdup(name);
    p->credit = 0;
    return p;
}

tl_rc tl_model_tick(tl_model *m, int64_t now, tl_arena *a, const tl_sink *out)
{
    if (!m->cfg.markov_enabled) return TL_OK;
    const int64_t len = m->cfg.markov_window_ms;
    /* A time this far out is no event time (ingest.ts.min/max can be set that wide): it
     * neither opens nor closes a window, so every window start stays within what a
     * checkpoint is checked against, and start + len cannot overflow. */
    if (now < -TL_MODEL_MAX_TIME || now > TL_MODEL_MAX_TIME) return TL_OK;
    const int64_t start = now - ((now % len) + len) % len;   /* of the window now is in */
    if (start < -TL_MODEL_MAX_TIME) return TL_OK;
    if (m->window_start == 0) {
        m->window_start = start;
        return TL_OK;
    }
    /* now < window_start + len, without computing the sum: the window start may come
     * from a checkpoint (checked on restore, but this stays right whatever it holds). */
    if (now < m->window_start || (uint64_t)now - (uint64_t)m->window_start < (uint64_t)len)
        return TL_OK;
    /* Close the current window; windows after it with no new journey change nothing. */
    tl_markov_result res;
    memset(&res, 0, sizeof(res));
    tl_rc rc = TL_OK;
    if (tl_markov_paths(m->markov) > 0 && tl_markov_removal_effects(m->markov, &res) == TL_MARKOV_OK) {
        for (int i = 0; i < res.n; i++) {
            prev_credit *p = prev_find(m, res.channels[i].name);
            double credit = res.channels[i].markov_conversions;
            if (fabs(credit - p->credit) <= 1e-12 * (1 + fabs(credit))) continue;
            tl_credit_delta d = {
                .window_start = m->window_start, .window_end = m->window_start + len,
                .dim = m->markov_dim == TL_DIM_CHANNEL ? TL_DIM_CHANNEL : TL_DIM_CATEGORY,
                .dim_id = res.channels[i].name, .method = "markov", .credit = credit,
                .credit_before = p->credit, .conversions = res.conversions,
                .removal_effect = res.channels[i].removal_effect, .has_removal_effect = 1,
            };
            p->credit = credit;
            m->rep.credit_deltas++;
            if ((rc = out->emit_credit(out->ctx, &d)) != TL_OK) break;
        }
        m->rep.markov_windows++;
    }
    tl_markov_result_free(&res);
    m->window_start = start;
    (void)a;
    return rc;
}

void tl_model_report_get(const tl_model *m, tl_model_report *r)
{
    *r = m->rep;
    r->examples = tl_metrics_count(m->metrics);
    r->positives = tl_metrics_positives(m->metrics);
    r->version = tl_ftrl_version(m->ftrl);
    r->logloss = tl_metrics_logloss(m->metrics);
    r->auc = tl_metrics_auc(m->metrics);
    r->baseline_logloss = tl_metrics_baseline_logloss(m->metrics);
    r->baseline_auc = tl_metrics_baseline_auc(m->metrics);
}

int tl_model_credits(const tl_model *m, tl_dim *dim, const char **names, double *credits, int max)
{
    *dim = m->markov_dim == TL_DIM_CHANNEL ? TL_DIM_CHANNEL : TL_DIM_CATEGORY;
    int n = 0;
    for (int i = 0; i < m->n_prev && n < max; i++) {
        names[n] = m->prev[i].name;
        credits[n++] = m->prev[i].credit;
    }
    return n;
}
