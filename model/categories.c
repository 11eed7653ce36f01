/*
 * categories.c -- category embeddings and the next category's distribution (categories.h).
 *
 * The table is open addressing over the categories' 64-bit hashes (room for twice
 * categories.max, so a probe ends soon), with the numbers in arrays by index: v and o
 * (dim floats each), the bias, and the successors'
 * sketch (space-saving: a successor not among the TL_CAT_SUCC takes the place of the
 * least counted one, with its count plus one). New vectors start at small values hashed
 * from the category's name, so every instance and every replay starts them alike.
 *
 * Learning is plain stochastic gradient descent at categories.learning.rate, with an L2
 * of CAT_L2 on the vectors it touches; every learned number is held within +-CAT_LIMIT
 * (and a checkpoint with one outside is refused), so scores stay finite. The negatives of the sampled loss are drawn
 * uniformly from the table, by a hash of the number of steps taken (checkpointed), so a
 * replay learns exactly as the stream did.
 */
#include "categories.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/rng.h"
#include "lib/undo.h"
#include "lib/wire.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_L2 1e-4
#define CAT_INIT 0.1
#define CAT_LIMIT                                                                                  \
    1e4   /* every learned number stays within +-this (a checkpoint's too), so
                         * that no score overflows */
#define CAT_RECENT_MS 3600000.0   /* the half-life of the recency feature */

const tl_config_def tl_categories_config[] = {
    {"categories.enabled", TL_CT_BOOL, "false", TL_NORANGE,
     "With the model on: learn category embeddings and publish each user's next-category "
     "distribution (the categories the user's next event is most likely in, the user's "
     "embedding and the categories like the user's) whenever it moves by "
     "categories.threshold (output.categories.topic; docs/attribution.md, \"Next "
     "categories\").",
     TL_CFG_FIELD(tl_categories_cfg, enabled)},
    {"categories.dim", TL_CT_INT, "16", 2, TL_NC_DIM_MAX,
     "Numbers in a category's (and a user's) embedding.", TL_CFG_FIELD(tl_categories_cfg, dim)},
    {"categories.max", TL_CT_INT, "65536", 16, 1000000,
     "Categories learned: past this many, a new category is counted "
     "(tally_categories_unlearned_total) and not learned. Each costs about 16 + 8 x dim bytes.",
     TL_CFG_FIELD(tl_categories_cfg, max)},
    {"categories.top", TL_CT_INT, "5", 1, TL_NC_TOP_MAX,
     "Categories listed in a next_categories record, most likely first.",
     TL_CFG_FIELD(tl_categories_cfg, top)},
    {"categories.candidates", TL_CT_INT, "16", 1, TL_CAT_CAND_MAX - TL_CAT_SUCC,
     "The user's strongest categories (by interest weight) that the user's embedding is made "
     "of and that are scored as the next category, beside those that follow the user's last "
     "one.",
     TL_CFG_FIELD(tl_categories_cfg, candidates)},
    {"categories.threshold", TL_CT_DOUBLE, "0.1", 0.0001, 1,
     "A next_categories record goes out when the user's distribution moved by at least this "
     "much from the last one published (half the sum of the differences; a user's first: "
     "from nothing).",
     TL_CFG_FIELD(tl_categories_cfg, threshold)},
    {"categories.learning.rate", TL_CT_DOUBLE, "0.05", 1e-6, 10,
     "Step size of the embeddings' and the scores' learning.",
     TL_CFG_FIELD(tl_categories_cfg, rate)},
    {"categories.embeddings.topic", TL_CT_STRING, "", TL_NORANGE,
     "With categories.enabled, for tally run: a topic (compacted, one partition) of externally "
     "computed category embeddings, JSON {\"category_id\": ..., \"embedding\": [categories.dim "
     "numbers] or null}, read from its start and followed; each replaces that category's "
     "learned v (docs/attribution.md, \"Next categories\"). Empty: none.",
     TL_CFG_FIELD(tl_categories_cfg, embeddings_topic)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

int tl_categories_cfg_load(tl_categories_cfg *cc, const tl_config *c, char *err, size_t errlen)
{
    memset(cc, 0, sizeof(*cc));
    return tl_config_fill(c, tl_categories_config, cc, err, errlen);
}

struct tl_cat_model {
    int dim, max, candidates;
    double rate;
    uint32_t n, cap, room;   /* categories; hash slots (a power of 2); arrays' room */
    int32_t *slot;           /* -1: empty */
    uint64_t *key;
    char **name;
    uint32_t *name_len;
    float *v, *o, *b;
    int32_t *succ;           /* n x TL_CAT_SUCC, -1: empty */
    float *succ_n, *succ_tot;
    double a[TL_CAT_FEATURES], b_other;
    uint64_t steps;
    tl_cat_stats st;
    float *sims;             /* scratch of tl_cat_like, by index */
    unsigned char *fixed;    /* 1: v is external (tl_cat_external), not learned */
    /* Undo (tl_cat_undo_start): 0 off; 1 nothing learned in the open transaction; 2
     * learned, journaled since the mark: a category's numbers at their first change (rows:
     * struct undo_row, then v and o), the table's size and the scalars then, and the
     * external embeddings read since (each as u32 length | the record) */
    int undo;
    tl_undo journal;
    uint32_t u_n;
    double u_a[TL_CAT_FEATURES], u_b_other;
    uint64_t u_steps;
    tl_cat_stats u_st;
    tl_buf u_ext;
};

struct undo_row {
    int32_t x;
    float b, succ_tot;
    int32_t succ[TL_CAT_SUCC];
    float succ_n[TL_CAT_SUCC];
    int32_t fixed;
};

static void grow(tl_cat_model *cm, uint32_t room)
{
    size_t d = (size_t)cm->dim;
    cm->key = tl_xrealloc(cm->key, room * sizeof(*cm->key));
    cm->name = tl_xrealloc(cm->name, room * sizeof(*cm->name));
    cm->name_len = tl_xrealloc(cm->name_len, room * sizeof(*cm->name_len));
    cm->v = tl_xrealloc(cm->v, room * d * sizeof(float));
    cm->o = tl_xrealloc(cm->o, room * d * sizeof(float));
    cm->b = tl_xrealloc(cm->b, room * sizeof(float));
    cm->succ = tl_xrealloc(cm->succ, room * TL_CAT_SUCC * sizeof(int32_t));
    cm->succ_n = tl_xrealloc(cm->succ_n, room * TL_CAT_SUCC * sizeof(float));
    cm->succ_tot = tl_xrealloc(cm->succ_tot, room * sizeof(float));
    cm->sims = tl_xrealloc(cm->sims, room * sizeof(float));
    cm->fixed = tl_xrealloc(cm->fixed, room);
    memset(cm->fixed + cm->room, 0, room - cm->room);
    cm->room = room;
}

static tl_cat_model *model_alloc(const tl_categories_cfg *cc, int dim, int max)
{
    tl_cat_model *cm = tl_xcalloc(1, sizeof(*cm));
    cm->dim = dim;
    cm->max = max;
    cm->rate = cc->rate;
    cm->candidates = cc->candidates < 1                  ? 1
        : cc->candidates > TL_CAT_CAND_MAX - TL_CAT_SUCC ? TL_CAT_CAND_MAX - TL_CAT_SUCC
                                                         : cc->candidates;
    cm->cap = 16;
    while (cm->cap < 2 * (uint32_t)max) cm->cap <<= 1;
    cm->slot = tl_xmalloc(cm->cap * sizeof(*cm->slot));
    memset(cm->slot, 0xff, cm->cap * sizeof(*cm->slot));
    grow(cm, 64);
    return cm;
}

tl_cat_model *tl_cat_model_new(const tl_categories_cfg *cc)
{
    if (cc->dim < 1 || cc->dim > TL_NC_DIM_MAX || cc->max < 16) return NULL;
    tl_cat_model *cm = model_alloc(cc, cc->dim, cc->max);
    /* the scores start as a plain rule: the user's strongest and last categories, and the
     * usual successors, first */
    for (int f = 0; f < TL_CAT_FEATURES; f++) cm->a[f] = 1;
    return cm;
}

void tl_cat_model_free(tl_cat_model *cm)
{
    if (!cm) return;
    for (uint32_t i = 0; i < cm->n; i++) free(cm->name[i]);
    tl_undo_free(&cm->journal);
    tl_buf_free(&cm->u_ext);
    TL_FREE_ALL(cm->slot, cm->key, cm->name, cm->name_len, cm->v, cm->o, cm->b, cm->succ,
                cm->succ_n, cm->succ_tot, cm->sims, cm->fixed, cm);
}

/* ---- the table ------------------------------------------------------------------- */

static int32_t find(const tl_cat_model *cm, const char *s, uint32_t len, uint64_t h, uint32_t *at)
{
    uint32_t mask = cm->cap - 1, i = (uint32_t)h & mask;
    for (;; i = (i + 1) & mask) {
        int32_t x = cm->slot[i];
        if (x < 0) break;
        if (cm->key[x] == h && cm->name_len[x] == len && !memcmp(cm->name[x], s, len)) return x;
    }
    if (at) *at = i;
    return -1;
}

static int32_t lookup(const tl_cat_model *cm, const char *s, uint32_t len)
{
    return find(cm, s, len, tl_hash64(s, len), NULL);
}

static int32_t insert_at(tl_cat_model *cm, const char *s, uint32_t len, uint64_t h, uint32_t at)
{
    if (cm->n == cm->room)
        grow(cm, cm->room * 2 > (uint32_t)cm->max ? (uint32_t)cm->max : cm->room * 2);
    int32_t x = (int32_t)cm->n++;
    cm->slot[at] = x;
    cm->key[x] = h;
    cm->name[x] = tl_xstrndup(s, len);
    cm->name_len[x] = len;
    cm->b[x] = 0;
    cm->succ_tot[x] = 0;
    for (int j = 0; j < TL_CAT_SUCC; j++) {
        cm->succ[(size_t)x * TL_CAT_SUCC + j] = -1;
        cm->succ_n[(size_t)x * TL_CAT_SUCC + j] = 0;
    }
    return x;
}

/* The category's index, added with fresh vectors when new (-1: the table is full). */
static int32_t intern(tl_cat_model *cm, const char *s, uint32_t len)
{
    uint64_t h = tl_hash64(s, len);
    uint32_t at;
    int32_t x = find(cm, s, len, h, &at);
    if (x >= 0) return x;
    if (cm->n >= (uint32_t)cm->max) return -1;
    x = insert_at(cm, s, len, h, at);
    float *v = cm->v + (size_t)x * cm->dim, *o = cm->o + (size_t)x * cm->dim;
    for (int i = 0; i < cm->dim; i++) {
        v[i] = (float)((u01(mix64(h + 2 * (uint64_t)i)) - 0.5) * 2 * CAT_INIT);
        o[i] = (float)((u01(mix64(h + 2 * (uint64_t)i + 1)) - 0.5) * 2 * CAT_INIT);
    }
    return x;
}

/* Before category x's numbers change: saved, at their first change since the mark (a
 * category added since has nothing to go back to). */
static void save(tl_cat_model *cm, int32_t x)
{
    if (cm->undo != 2 || (uint32_t)x >= cm->u_n) return;
    struct undo_row *r = tl_undo_save(&cm->journal, (size_t)x);
    if (!r) return;
    const size_t d = (size_t)cm->dim, k = (size_t)x * TL_CAT_SUCC;
    r->x = x;
    r->b = cm->b[x];
    r->succ_tot = cm->succ_tot[x];
    memcpy(r->succ, cm->succ + k, sizeof(r->succ));
    memcpy(r->succ_n, cm->succ_n + k, sizeof(r->succ_n));
    r->fixed = cm->fixed[x];
    float *vo = (float *)(r + 1);
    memcpy(vo, cm->v + (size_t)x * d, d * sizeof(float));
    memcpy(vo + d, cm->o + (size_t)x * d, d * sizeof(float));
}

static void count_successor(tl_cat_model *cm, int32_t from, int32_t to)
{
    save(cm, from);
    int32_t *s = cm->succ + (size_t)from * TL_CAT_SUCC;
    float *c = cm->succ_n + (size_t)from * TL_CAT_SUCC;
    cm->succ_tot[from] += 1;
    int least = 0;
    for (int j = 0; j < TL_CAT_SUCC; j++) {
        if (s[j] == to) {
            c[j] += 1;
            return;
        }
        if (s[j] < 0) {
            s[j] = to;
            c[j] = 1;
            return;
        }
        if (c[j] < c[least]) least = j;
    }
    s[least] = to;
    c[least] += 1;
}

static inline double clampd(double x)
{
    return x > CAT_LIMIT ? CAT_LIMIT : x < -CAT_LIMIT ? -CAT_LIMIT : x;
}

/* ---- scoring --------------------------------------------------------------------- */

static double dotf(const float *x, const float *y, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * y[i];
    return s;
}

static int cand_pos(const tl_cat_pred *pr, int32_t idx)
{
    for (int i = 0; i < pr->n; i++)
        if (pr->idx[i] == idx) return i;
    return -1;
}

/* The user's last category: the category entry updated last (the most weight on a tie). */
static const tl_interest *last_entry(const tl_user *u)
{
    const tl_interest *best = NULL;
    for (int i = 0; i < u->n_ent; i++) {
        const tl_interest *e = &u->ent[i];
        if (e->dim != TL_DIM_CATEGORY) continue;
        if (!best || e->t > best->t || (e->t == best->t && e->h > best->h)) best = e;
    }
    return best;
}

static void predict(tl_cat_model *cm, const tl_features_cfg *fc, const tl_user *u, int64_t at,
                    int kmax, tl_cat_pred *pr)
{
    const int d = cm->dim;
    pr->n = pr->n_k = 0;
    pr->k_sum = 0;
    double total = 0;
    /* the strongest kmax categories in the table, weight descending */
    for (int i = 0; i < u->n_ent; i++) {
        const tl_interest *e = &u->ent[i];
        if (e->dim != TL_DIM_CATEGORY) continue;
        double w = (fc->alpha * e->f + fc->beta * e->h) *
            tl_decay((double)at - (double)e->t, fc->half_life_ms);
        if (!(w > 0) || !isfinite(w)) continue;   /* (a stored record's numbers may be any) */
        total += w;
        if (pr->n_k == kmax && w <= pr->k_w[kmax - 1]) continue;
        int32_t x = lookup(cm, e->id, e->id_len);
        if (x < 0) continue;
        int j = pr->n_k < kmax ? pr->n_k++ : kmax - 1;
        while (j > 0 && pr->k_w[j - 1] < w) {
            pr->k_w[j] = pr->k_w[j - 1];
            pr->k_idx[j] = pr->k_idx[j - 1];
            pr->k_t[j] = pr->k_t[j - 1];
            j--;
        }
        pr->k_w[j] = w;
        pr->k_idx[j] = x;
        pr->k_t[j] = e->t;
    }
    memset(pr->u, 0, sizeof(pr->u));
    for (int k = 0; k < pr->n_k; k++) pr->k_sum += pr->k_w[k];
    for (int k = 0; k < pr->n_k; k++) {
        float f = (float)(pr->k_w[k] / pr->k_sum);
        const float *v = cm->v + (size_t)pr->k_idx[k] * d;
        for (int i = 0; i < d; i++) pr->u[i] += f * v[i];
    }
    const tl_interest *le = last_entry(u);
    pr->last = le ? lookup(cm, le->id, le->id_len) : -1;
    /* candidates: the strongest, then the last one's successors */
    for (int k = 0; k < pr->n_k; k++) {
        pr->idx[pr->n] = pr->k_idx[k];
        float *x = pr->x[pr->n++];
        x[0] = (float)(pr->k_w[k] / total);
        x[1] = pr->k_idx[k] == pr->last;
        x[2] = 0;
        x[3] = 1;
        /* recency: before the user's last event, not before now, so that a record made
         * at an event and the score learned at the next one (whenever it comes) see the
         * same number */
        x[4] = (float)tl_decay((double)le->t - (double)pr->k_t[k], CAT_RECENT_MS);
    }
    if (pr->last >= 0) {
        const int32_t *s = cm->succ + (size_t)pr->last * TL_CAT_SUCC;
        const float *c = cm->succ_n + (size_t)pr->last * TL_CAT_SUCC;
        for (int j = 0; j < TL_CAT_SUCC && s[j] >= 0; j++) {
            int i = cand_pos(pr, s[j]);
            if (i < 0) {
                i = pr->n++;
                pr->idx[i] = s[j];
                memset(pr->x[i], 0, sizeof(pr->x[i]));
            }
            pr->x[i][2] = c[j] / cm->succ_tot[pr->last];
        }
    }
    double mx = pr->s_other = cm->b_other;
    for (int i = 0; i < pr->n; i++) {
        double s = cm->b[pr->idx[i]] + dotf(pr->u, cm->o + (size_t)pr->idx[i] * d, d);
        for (int f = 0; f < TL_CAT_FEATURES; f++) s += cm->a[f] * pr->x[i][f];
        pr->s[i] = s;
        if (s > mx) mx = s;
    }
    double z = pr->p_other = exp(pr->s_other - mx);
    for (int i = 0; i < pr->n; i++) z += pr->p[i] = exp(pr->s[i] - mx);
    pr->p_other /= z;
    for (int i = 0; i < pr->n; i++) pr->p[i] /= z;
}

void tl_cat_predict(tl_cat_model *cm, const tl_features_cfg *fc, const tl_user *u, int64_t at,
                    tl_cat_pred *pr)
{
    predict(cm, fc, u, at, cm->candidates, pr);
}

/* ---- learning -------------------------------------------------------------------- */

/* v of the embedding's categories -= rate * (gu * their part + L2). */
static void step_v(tl_cat_model *cm, const tl_cat_pred *pr, const double *gu)
{
    const int d = cm->dim;
    for (int k = 0; k < pr->n_k; k++) {
        if (cm->fixed[pr->k_idx[k]]) continue;   /* external: not learned */
        save(cm, pr->k_idx[k]);
        float *v = cm->v + (size_t)pr->k_idx[k] * d;
        double f = pr->k_w[k] / pr->k_sum;
        for (int i = 0; i < d; i++)
            v[i] = (float)clampd(v[i] - cm->rate * (gu[i] * f + CAT_L2 * v[i]));
    }
}

/* o -= rate * (g u + L2 o), and gu += g o (with o as it was). */
static void step_o(tl_cat_model *cm, int32_t x, double g, const float *u, double *gu)
{
    const int d = cm->dim;
    float *o = cm->o + (size_t)x * d;
    save(cm, x);
    for (int i = 0; i < d; i++) {
        gu[i] += g * o[i];
        o[i] = (float)clampd(o[i] - cm->rate * (g * u[i] + CAT_L2 * o[i]));
    }
}

static int rank_of(const tl_cat_pred *pr, int i)
{
    int r = 1;
    for (int j = 0; j < pr->n; j++)
        if (pr->p[j] > pr->p[i] || (pr->p[j] == pr->p[i] && j < i)) r++;
    return r;
}

/* ---- undo ------------------------------------------------------------------------- */

void tl_cat_undo_start(tl_cat_model *cm)
{
    if (cm && !cm->undo) cm->undo = 1;
}

/* Before the transaction's first learning step: the state to go back to. */
static void mark(tl_cat_model *cm)
{
    tl_undo_mark(&cm->journal, (size_t)cm->max,
                 sizeof(struct undo_row) + 2 * (size_t)cm->dim * sizeof(float));
    cm->u_n = cm->n;
    memcpy(cm->u_a, cm->a, sizeof(cm->a));
    cm->u_b_other = cm->b_other;
    cm->u_steps = cm->steps;
    cm->u_st = cm->st;
    tl_buf_clear(&cm->u_ext);
    cm->undo = 2;
}

static void take_back(tl_cat_model *cm)
{
    const size_t d = (size_t)cm->dim;
    for (size_t k = 0; k < cm->journal.n_rows; k++) {
        const struct undo_row *r = tl_undo_row(&cm->journal, k);
        const int32_t x = r->x;
        cm->b[x] = r->b;
        cm->succ_tot[x] = r->succ_tot;
        memcpy(cm->succ + (size_t)x * TL_CAT_SUCC, r->succ, sizeof(r->succ));
        memcpy(cm->succ_n + (size_t)x * TL_CAT_SUCC, r->succ_n, sizeof(r->succ_n));
        cm->fixed[x] = (unsigned char)r->fixed;
        const float *vo = (const float *)(r + 1);
        memcpy(cm->v + (size_t)x * d, vo, d * sizeof(float));
        memcpy(cm->o + (size_t)x * d, vo + d, d * sizeof(float));
    }
    /* The categories added since: the table never deletes, so those are the indexes from
     * u_n on, and emptying their slots leaves every older category's probe run whole (the
     * slots it passed when it was added were taken by categories older still). */
    for (uint32_t i = 0; i < cm->cap; i++)
        if (cm->slot[i] >= (int32_t)cm->u_n) cm->slot[i] = -1;
    for (uint32_t x = cm->u_n; x < cm->n; x++) free(cm->name[x]);
    memset(cm->fixed + cm->u_n, 0, cm->n - cm->u_n);
    cm->n = cm->u_n;
    memcpy(cm->a, cm->u_a, sizeof(cm->a));
    cm->b_other = cm->u_b_other;
    cm->steps = cm->u_steps;
    uint64_t bad = cm->st.external_bad;   /* refusals are not learning: they stay counted */
    cm->st = cm->u_st;
    cm->st.external_bad = bad;
}

void tl_cat_txn_end(tl_cat_model *cm, int committed)
{
    if (!cm || cm->undo != 2) return;
    cm->undo = 1;   /* (before the externals below: they are not journaled) */
    if (!committed) {
        size_t rows = cm->journal.n_rows;
        uint32_t added = cm->n - cm->u_n;
        take_back(cm);
        char err[160];
        tl_wire_rd r = tl_wire_rd_of(cm->u_ext.data, cm->u_ext.len);
        const unsigned char *rec;
        size_t len;
        while ((rec = tl_wire_record(&r, &len)) != NULL)
            if (tl_cat_external(cm, rec, len, err, sizeof(err)) != 0)
                TL_LOG_ERROR("categories",
                             "an embedding applied before could not be applied again: %s", err);
        if (rows || added)
            TL_LOG_WARN("categories",
                        "a transaction did not commit: its learning is taken back (%zu "
                        "categories' numbers, %u categories added)",
                        rows, added);
    }
    tl_undo_off(&cm->journal);
    tl_buf_clear(&cm->u_ext);
}

void tl_cat_learn(tl_cat_model *cm, const tl_features_cfg *fc, const tl_user *u, const tl_event *ev)
{
    if (!ev->category_id) return;
    if (cm->undo == 1) mark(cm);
    uint32_t len = (uint32_t)strlen(ev->category_id);
    int32_t t = intern(cm, ev->category_id, len);
    if (t < 0) {
        cm->st.unlearned++;
        return;
    }
    tl_cat_pred pr;
    predict(cm, fc, u, ev->ts, cm->candidates, &pr);
    if (pr.last < 0 && pr.n_k == 0) return;   /* the user's first: nothing to score */
    const int d = cm->dim;
    int ti = cand_pos(&pr, t);
    cm->st.scored++;
    cm->st.last_hit += t == pr.last;
    if (ti >= 0) {
        int r = rank_of(&pr, ti);
        cm->st.hit1 += r == 1;
        cm->st.hit5 += r <= 5;
    }
    double pt = ti >= 0 ? pr.p[ti] : pr.p_other;
    cm->st.logloss += -log(pt > 1e-300 ? pt : 1e-300);

    /* the softmax's log-loss: g = p - [the one it was] for each score */
    double gu[TL_NC_DIM_MAX] = {0}, ga[TL_CAT_FEATURES] = {0};
    for (int i = 0; i < pr.n; i++) {
        double g = pr.p[i] - (i == ti);
        for (int f = 0; f < TL_CAT_FEATURES; f++) ga[f] += g * pr.x[i][f];
        step_o(cm, pr.idx[i], g, pr.u, gu);   /* (saves the category before b changes) */
        cm->b[pr.idx[i]] = (float)clampd(cm->b[pr.idx[i]] - cm->rate * g);
    }
    cm->b_other = clampd(cm->b_other - cm->rate * (pr.p_other - (ti < 0)));
    for (int f = 0; f < TL_CAT_FEATURES; f++) cm->a[f] = clampd(cm->a[f] - cm->rate * ga[f]);
    /* the sampled loss: where the user went against TL_CAT_NEGATIVES others */
    if (pr.n_k > 0) {
        step_o(cm, t, 1 / (1 + exp(dotf(pr.u, cm->o + (size_t)t * d, d))) * -1, pr.u, gu);
        for (int j = 0; j < TL_CAT_NEGATIVES; j++) {
            int32_t x = (int32_t)(mix64(cm->steps * TL_CAT_NEGATIVES + (uint64_t)j) % cm->n);
            if (x == t) continue;
            step_o(cm, x, 1 / (1 + exp(-dotf(pr.u, cm->o + (size_t)x * d, d))), pr.u, gu);
        }
        step_v(cm, &pr, gu);
    }
    cm->steps++;
    if (pr.last >= 0 && pr.last != t) count_successor(cm, pr.last, t);
}

/* ---- like ------------------------------------------------------------------------ */

int tl_cat_like(tl_cat_model *cm, const tl_user *user, const float *u, const tl_nc_view *listed,
                tl_nc_entry *out, int n)
{
    const int d = cm->dim;
    if (cm->n == 0) return 0;
    float *sims = cm->sims;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)cm->n, d, 1.0f, cm->o, d, u, 1, 0.0f, sims, 1);
    for (int i = 0; i < user->n_ent; i++) {   /* the user's own are not "like" */
        const tl_interest *e = &user->ent[i];
        if (e->dim != TL_DIM_CATEGORY) continue;
        int32_t x = lookup(cm, e->id, e->id_len);
        if (x >= 0) sims[x] = 0;
    }
    for (int j = 0; listed && j < listed->n; j++) {   /* nor those already listed */
        int32_t x = lookup(cm, listed->cat[j].id, listed->cat[j].len);
        if (x >= 0) sims[x] = 0;
    }
    int k = 0;
    int32_t best[TL_NC_LIKE_MAX];
    float bs[TL_NC_LIKE_MAX], floor = 0;   /* above 0, and above the n-th best so far */
    if (n > TL_NC_LIKE_MAX) n = TL_NC_LIKE_MAX;
    for (uint32_t x = 0, end = cm->n; x < end; x++) {
        float c = sims[x];
        if (!(c > floor)) continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && bs[j - 1] < c) {
            bs[j] = bs[j - 1];
            best[j] = best[j - 1];
            j--;
        }
        bs[j] = c;
        best[j] = (int32_t)x;
        if (k == n) floor = bs[n - 1];
    }
    for (int j = 0; j < k; j++)
        out[j] = (tl_nc_entry){cm->name[best[j]], cm->name_len[best[j]], bs[j]};
    return k;
}

/* ---- the record ------------------------------------------------------------------ */

/* The name of candidate i's largest positive part of its score. */
static const char *reason(const tl_cat_model *cm, const tl_cat_pred *pr, int i, tl_arena *a)
{
    const int32_t x = pr->idx[i];
    const double part[5] = {
        cm->a[0] * pr->x[i][0] + cm->a[3] * pr->x[i][3] +
            cm->a[4] * pr->x[i][4],                        /* the user's interest */
        cm->a[1] * pr->x[i][1],                            /* the last */
        cm->a[2] * pr->x[i][2],                            /* follows the last */
        dotf(pr->u, cm->o + (size_t)x * cm->dim, cm->dim), /* the embedding */
        cm->b[x],                                          /* where users go */
    };
    int best = 0;
    for (int j = 1; j < 5; j++)
        if (part[j] > part[best]) best = j;
    if (!(part[best] > 0)) return "no part of its score stands out";
    switch (best) {
    case 0:
        return pr->n_k && pr->k_idx[0] == x ? "the user's strongest interest"
                                            : "one of the user's interests";
    case 1: return "the category of the user's last event";
    case 2:
        return tl_arena_printf(a, "often follows %.*s across users", (int)cm->name_len[pr->last],
                               cm->name[pr->last]);
    case 3: return "close to the user's embedding";
    default: return "where users often go next";
    }
}

static long pct(double p) { return lround(p * 100); }

/* The listed categories from 1% up, each with its percentage and reason (those below are
 * counted), what is left to others, and the categories like the user's. */
static const char *explain(const tl_cat_model *cm, const tl_cat_pred *pr, const int *order,
                           const tl_nc_view *v, tl_arena *a)
{
    int said = 0;
    while (said < v->n && pct(v->cat[said].p) >= 1) said++;
    tl_buf b = {0};
    if (said == 0) tl_buf_puts(&b, "no category stands out for the user's next event yet");
    for (int j = 0; j < said; j++)
        tl_buf_printf(&b, "%s%.*s (%ld%%: %s)",
                      j == 0             ? "next category most likely "
                          : j == 1       ? ", then "
                          : j < said - 1 ? ", "
                                         : " and ",
                      (int)v->cat[j].len, v->cat[j].id, pct(v->cat[j].p),
                      reason(cm, pr, order[j], a));
    if (said < v->n)
        tl_buf_printf(&b, " (%d %slisted, each below 1%%)", v->n - said, said ? "more " : "");
    if (v->n) tl_buf_printf(&b, "; %ld%% another category", pct(v->p_other));
    for (int j = 0; j < v->n_like; j++)
        tl_buf_printf(&b, "%s%.*s",
                      j == 0                  ? "; interested in categories like "
                          : j < v->n_like - 1 ? ", "
                                              : " and ",
                      (int)v->like[j].len, v->like[j].id);
    if (v->n_like) tl_buf_puts(&b, " (not visited yet; the closest to the user's embedding)");
    const char *s = tl_arena_strndup(a, b.data, b.len);
    tl_buf_free(&b);
    return s;
}

static int same_entry(const tl_nc_entry *a, const tl_nc_entry *b)
{
    return a->len == b->len && !memcmp(a->id, b->id, a->len);
}

/* The categories like the user's are looked for again (a pass over the table) only when
 * the most likely category changed or one of the last record's has since been visited or
 * is now listed:
 * else the last record's carry over (their affinity as it was then). 1 when they do. */
static int keep_like(const tl_nc_view *last, const tl_nc_view *v, const tl_user *u,
                     tl_nc_entry *like, int *n_like)
{
    if (!last || !last->n_like || !last->n || !v->n || !same_entry(&last->cat[0], &v->cat[0]))
        return 0;
    for (int j = 0; j < last->n_like; j++) {
        for (int i = 0; i < u->n_ent; i++)
            if (u->ent[i].dim == TL_DIM_CATEGORY && u->ent[i].id_len == last->like[j].len &&
                !memcmp(u->ent[i].id, last->like[j].id, last->like[j].len))
                return 0;
        for (int i = 0; i < v->n; i++)
            if (same_entry(&v->cat[i], &last->like[j])) return 0;
    }
    memcpy(like, last->like, (size_t)last->n_like * sizeof(*like));
    *n_like = last->n_like;
    return 1;
}

tl_rc tl_cat_update(const tl_categories_cfg *cc, tl_cat_model *cm, const tl_features_cfg *fc,
                    tl_user *u, const tl_event *ev, tl_arena *a, const tl_sink *out)
{
    if (!cc->enabled || !cm || !out->emit_next_categories || !ev->category_id) return TL_OK;
    tl_cat_pred *pr = tl_arena_alloc(a, sizeof(*pr));
    predict(cm, fc, u, ev->ts, cm->candidates, pr);
    tl_nc_view *v = tl_arena_alloc(a, sizeof(*v));
    memset(v, 0, sizeof(*v));
    v->ts = ev->ts;
    int order[TL_CAT_CAND_MAX];
    for (int i = 0; i < pr->n; i++) order[i] = i;
    for (int i = 1; i < pr->n; i++)   /* most likely first; the candidates' order on a tie */
        for (int j = i; j > 0 && pr->p[order[j]] > pr->p[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double listed = 0;
    v->n = pr->n < cc->top ? pr->n : cc->top;
    for (int j = 0; j < v->n; j++) {
        int32_t x = pr->idx[order[j]];
        v->cat[j] = (tl_nc_entry){cm->name[x], cm->name_len[x], (float)pr->p[order[j]]};
        listed += v->cat[j].p;
    }
    v->p_other = (float)fmax(0, 1 - listed);
    tl_nc_view last, *lastp = NULL;
    if (u->nc && tl_nc_decode(&last, u->nc, u->nc_len) == 0) lastp = &last;
    double moved = tl_nc_moved(lastp, v);
    if (!(moved >= cc->threshold)) return TL_OK;
    v->dim = cm->dim;
    memcpy(v->emb, pr->u, (size_t)cm->dim * sizeof(float));
    if (!keep_like(lastp, v, u, v->like, &v->n_like))
        v->n_like = tl_cat_like(cm, u, pr->u, v, v->like, TL_NC_LIKE_MAX);
    tl_next_categories r = {
        .user_id = u->user_id,
        .event_id = ev->event_id,
        .ts = ev->ts,
        .view = v,
        .moved = moved,
        .explanation = explain(cm, pr, order, v, a),
    };
    size_t cut = tl_utf8_cut(r.explanation, TL_EXPLANATION_MAX); /* the record's bound */
    if (r.explanation[cut]) r.explanation = tl_arena_strndup(a, r.explanation, cut);
    tl_rc rc = out->emit_next_categories(out->ctx, &r);
    if (rc == TL_OK) {
        tl_buf b = {0};
        tl_nc_encode(v, &b);
        tl_user_set_nc(u, b.data, b.len);
        tl_buf_free(&b);
    }
    return rc;
}

/* ---- the checkpoint part -------------------------------------------------------- */

/* "TLNC" | u32 format 1 | u32 dim | u32 n | u64 steps | 5 f64 (a, b_other)
 * | u64 unlearned, scored, hit1, hit5, last_hit | f64 logloss
 * | n x (varint length + name | f32 b | f32 successors' total
 *        | TL_CAT_SUCC x (u32 successor, or 0xffffffff | f32 count) | dim f32 v | dim f32 o) */
void tl_cat_model_encode(const tl_cat_model *cm, tl_buf *out)
{
    char head[8];
    tl_wire_w_frame(head, "TLNC", 1);
    tl_buf_append(out, head, 8);
    tl_wire_put_u32(out, (uint32_t)cm->dim);
    tl_wire_put_u32(out, cm->n);
    tl_wire_put_u64(out, cm->steps);
    for (int f = 0; f < TL_CAT_FEATURES; f++) tl_wire_put_f64(out, cm->a[f]);
    tl_wire_put_f64(out, cm->b_other);
    const uint64_t c[5] = {cm->st.unlearned, cm->st.scored, cm->st.hit1, cm->st.hit5,
                           cm->st.last_hit};
    for (int i = 0; i < 5; i++) tl_wire_put_u64(out, c[i]);
    tl_wire_put_f64(out, cm->st.logloss);
    for (uint32_t x = 0; x < cm->n; x++) {
        tl_wire_put_varint(out, cm->name_len[x]);
        tl_buf_append(out, cm->name[x], cm->name_len[x]);
        tl_wire_put_f32(out, cm->b[x]);
        tl_wire_put_f32(out, cm->succ_tot[x]);
        for (int j = 0; j < TL_CAT_SUCC; j++) {
            tl_wire_put_u32(out, (uint32_t)cm->succ[(size_t)x * TL_CAT_SUCC + j]);
            tl_wire_put_f32(out, cm->succ_n[(size_t)x * TL_CAT_SUCC + j]);
        }
        for (int i = 0; i < cm->dim; i++) tl_wire_put_f32(out, cm->v[(size_t)x * cm->dim + i]);
        for (int i = 0; i < cm->dim; i++) tl_wire_put_f32(out, cm->o[(size_t)x * cm->dim + i]);
    }
}

static int finite_f32(tl_wire_rd *r, float *out)
{
    *out = tl_wire_f32(r);
    return !r->fail && isfinite(*out);
}

static int learned(double x) { return fabs(x) <= CAT_LIMIT; }   /* NaN: no */

static int learned_f32(tl_wire_rd *r, float *out)
{
    *out = tl_wire_f32(r);
    return !r->fail && learned(*out);
}

tl_cat_model *tl_cat_model_decode(const tl_categories_cfg *cc, const void *buf, size_t len,
                                  char *why, size_t whylen)
{
    snprintf(why, whylen, "it does not decode");
    if (tl_wire_frame_format(buf, len, "TLNC") != 1) return NULL;
    tl_wire_rd r = tl_wire_rd_of((const char *)buf + 8, len - 8);
    uint32_t dim = tl_wire_u32(&r), n = tl_wire_u32(&r);
    if (r.fail) return NULL;
    if ((int)dim != cc->dim || dim > TL_NC_DIM_MAX) {
        snprintf(why, whylen, "its embeddings have %u numbers and categories.dim is %d", dim,
                 cc->dim);
        return NULL;
    }
    /* each category takes at least 1 + 8 + 8 * TL_CAT_SUCC + 8 * dim bytes */
    if (n > 1000000 || (uint64_t)n * (9 + 8 * TL_CAT_SUCC + 8 * dim) > (uint64_t)(r.end - r.p))
        return NULL;
    tl_cat_model *cm = model_alloc(cc, (int)dim, (int)n > cc->max ? (int)n : cc->max);
    cm->steps = tl_wire_u64(&r);
    for (int f = 0; f < TL_CAT_FEATURES; f++) cm->a[f] = tl_wire_f64(&r);
    cm->b_other = tl_wire_f64(&r);
    uint64_t c[5];
    for (int i = 0; i < 5; i++) c[i] = tl_wire_u64(&r);
    cm->st = (tl_cat_stats){.unlearned = c[0],
                            .scored = c[1],
                            .hit1 = c[2],
                            .hit5 = c[3],
                            .last_hit = c[4],
                            .logloss = tl_wire_f64(&r)};
    int ok = !r.fail && learned(cm->b_other) && cm->st.logloss >= 0 && c[2] <= c[3] &&
        c[3] <= c[1] && c[4] <= c[1];
    for (int f = 0; f < TL_CAT_FEATURES; f++) ok = ok && learned(cm->a[f]);
    for (uint32_t x = 0; ok && x < n; x++) {
        size_t l;
        const char *s = tl_wire_bytes(&r, &l);
        uint32_t at;
        uint64_t h = s ? tl_hash64(s, l) : 0;
        if (!s || l > UINT32_MAX || find(cm, s, (uint32_t)l, h, &at) >= 0) break;
        insert_at(cm, s, (uint32_t)l, h, at);
        ok = learned_f32(&r, &cm->b[x]) && finite_f32(&r, &cm->succ_tot[x]) && cm->succ_tot[x] >= 0;
        for (int j = 0; ok && j < TL_CAT_SUCC; j++) {
            uint32_t y = tl_wire_u32(&r);
            float *cnt = &cm->succ_n[(size_t)x * TL_CAT_SUCC + j];
            cm->succ[(size_t)x * TL_CAT_SUCC + j] = y == UINT32_MAX ? -1 : (int32_t)y;
            ok = (y == UINT32_MAX || y < n) && finite_f32(&r, cnt) && *cnt >= 0 &&
                *cnt <= cm->succ_tot[x];
        }
        for (uint32_t i = 0; ok && i < dim; i++) ok = learned_f32(&r, &cm->v[(size_t)x * dim + i]);
        for (uint32_t i = 0; ok && i < dim; i++) ok = learned_f32(&r, &cm->o[(size_t)x * dim + i]);
    }
    if (!ok || cm->n != n || r.fail || r.p != r.end) {
        tl_cat_model_free(cm);
        return NULL;
    }
    return cm;
}

int tl_cat_external(tl_cat_model *cm, const void *json, size_t len, char *err, size_t errlen)
{
    tl_arena a;
    tl_arena_init(&a, 4096);
    int rc = -1;
    char jerr[160];
    const tl_json *j = tl_json_parse(json, len, &a, jerr, sizeof(jerr));
    const tl_json *id = j ? tl_json_get(j, "category_id") : NULL;
    const tl_json *e = j ? tl_json_get(j, "embedding") : NULL;
    if (!j) {
        snprintf(err, errlen, "a category embedding is not JSON: %s", jerr);
    } else if (j->type != TL_JSON_OBJECT || !id || id->type != TL_JSON_STRING || !id->len ||
               id->len > 1024) {
        snprintf(err, errlen,
                 "a category embedding is not an object with a category_id (a string of 1 to "
                 "1024 bytes)");
    } else if (!e ||
               (e->type != TL_JSON_NULL &&
                (e->type != TL_JSON_ARRAY || e->len != (size_t)cm->dim))) {
        snprintf(err, errlen,
                 "category embedding of %.64s: \"embedding\" is not null nor an array of "
                 "categories.dim (%d) numbers",
                 id->str, cm->dim);
    } else {
        float v[TL_NC_DIM_MAX];
        int ok = 1;
        for (int i = 0; ok && e->type == TL_JSON_ARRAY && i < cm->dim; i++) {
            const tl_json *x = tl_json_at(e, (size_t)i);
            ok = x->type == TL_JSON_NUMBER && learned(x->num);
            v[i] = ok ? (float)x->num : 0;
        }
        int32_t c = ok ? intern(cm, id->str, (uint32_t)id->len) : -1;
        if (!ok) {
            snprintf(err, errlen,
                     "category embedding of %.64s: a value that is not a number "
                     "within +-1e4",
                     id->str);
        } else if (c < 0) {
            snprintf(err, errlen,
                     "category embedding of %.64s: the table holds categories.max "
                     "(%d) categories",
                     id->str, cm->max);
        } else {
            int was = cm->fixed[c], now = e->type == TL_JSON_ARRAY;
            if (cm->undo == 2 && len <= UINT32_MAX) /* applied again if taken back */
                tl_wire_put_record(&cm->u_ext, json, (uint32_t)len);
            if (now) memcpy(cm->v + (size_t)c * cm->dim, v, (size_t)cm->dim * sizeof(float));
            cm->fixed[c] = (unsigned char)now;
            cm->st.external += (uint64_t)(now - was);
            rc = 0;
        }
    }
    tl_arena_destroy(&a);
    if (rc) cm->st.external_bad++;
    return rc;
}

int tl_cat_lookup(const tl_cat_model *cm, const char *id, const float **v, const float **o,
                  float *b)
{
    int32_t x = lookup(cm, id, (uint32_t)strlen(id));
    if (x < 0) return -1;
    *v = cm->v + (size_t)x * cm->dim;
    *o = cm->o + (size_t)x * cm->dim;
    *b = cm->b[x];
    return 0;
}

void tl_cat_model_weights(const tl_cat_model *cm, double a[TL_CAT_FEATURES], double *b_other)
{
    memcpy(a, cm->a, sizeof(cm->a));
    *b_other = cm->b_other;
}

const char *tl_cat_name(const tl_cat_model *cm, int32_t x, uint32_t *len)
{
    *len = cm->name_len[x];
    return cm->name[x];
}

void tl_cat_model_stats(const tl_cat_model *cm, tl_cat_stats *st)
{
    *st = cm->st;
    st->categories = cm->n;
}
