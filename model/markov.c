/*
 * markov.c -- Markov-chain attribution of order 1 to 4 (markov.h, docs/attribution.md).
 *
 * DESIGN
 *
 * State. The model is a set of sums, so adding paths, merging windows and encoding are
 * exact and order-free: per transient pair (from, to) the weight of the journeys that went
 * from -> to, per state the weight into conversion and into null, the first/last/linear
 * sums, and the totals. Transient index 0 is start; channel i is transient i + 1. Pairs are
 * in an open-addressing table keyed (from << 32 | to): a path adds at most its length in
 * entries, and a window of n channels has far fewer than n^2 distinct pairs. Names are
 * interned in a second open-addressing table. Consecutive repeats are collapsed when a
 * path is added, so there are no self-loops (Q[i][i] = 0).
 *
 * The chain. Transient states T = {start} + channels, absorbing {conversion, null}.
 * Q[i][j] = w(i -> j) / out(i), r[i] = w(i -> conversion) / out(i), with out(i) the
 * weight leaving i. N = (I - Q)^-1 (N[i][j]: expected visits to j from i), b = N r
 * (b[i]: probability of converting from i), p = b[s], s = start.
 *
 * The removal effect of j is the relative drop of p when j is removed, i.e. when j turns
 * into an absorbing null state: RE_j = (b[s] - b'[s]) / b[s]. With h_ij the probability
 * of ever reaching j from i, a journey from s either converts without touching j
 * (probability b'[s]) or reaches j and then converts (the chain restarts at j: strong
 * Markov property), so b[s] = b'[s] + h_sj b[j]. Visits to j from i are a first arrival
 * (probability h_ij) followed by the visits from j, so N[i][j] = h_ij N[j][j] for i != j.
 * Hence
 *
 *     RE_j = h_sj b[j] / b[s] = (N[s][j] / N[j][j]) * b[j] / b[s],
 *
 * which is also P(the journey visits j | it converts): the quantity ChannelAttribution
 * estimates by simulating journeys (it counts the channels on simulated converting paths).
 *
 * One factorisation. P (I - Q) = L U once (dgetrf). Then b from one solve (dgetrs 'N'),
 * row s of N from one transposed solve (dgetrs 'T' with e_s), and the diagonal of N from
 * the factors: (I - Q)^-1 = U^-1 L^-1 P, so N[j][j] = sum_k U^-1[j][k] L^-1[k][q(j)] with
 * q the row P moves j to; U^-1 and L^-1 are formed in place by two dtrtri calls (after the
 * solves, which need the factors) and the diagonal is then O(n^2). Cost: 2/3 n^3 for
 * dgetrf plus 2/3 n^3 for the two triangular inverses.
 *
 * Rejected: re-solving the chain once per removed state (n factorisations, O(n^4));
 * simulation (ChannelAttribution's way: approximate, and its error shrinks only as
 * 1/sqrt(runs)); the diagonal from dgetrs against all n unit vectors (2 n^3, three times
 * the triangular inverses) or from dgetri (the full inverse, of which n entries are used).
 *
 * Degenerate cases. A state with no weight leaving it (seen only in paths of weight 0)
 * has a zero row in Q and r: it is effectively null, b = 0, RE = 0. Without conversions
 * (b[s] = 0) every RE and credit is 0. Rounding can leave an RE a few ulps outside [0, 1];
 * it is clamped.
 *
 * Order k > 1 (removal_sets): a channel's removal removes a set of states, so each
 * channel gets its own low-rank update of the inverse (the Woodbury identity) instead.
 *
 * Encoding (version 1, little-endian; version 2 for order k > 1, a u8 k after the
 * version byte, the rest alike): "TLMK", u8 version, varint n, n x (varint len,
 * bytes), varint paths, f64 conversions, nulls, value, n x 8 f64 (conversion, null, first
 * conversions/value, last conversions/value, linear conversions/value), varint edges,
 * edges x (varint from, varint to, f64 weight) sorted by (from, to), then u64 FNV-1a of
 * everything before it. The same model (same sums, same interning order) always gives the
 * same bytes. Decoding checks the checksum, every index, duplicates and that every weight
 * is finite and non-negative.
 */
#include "markov.h"

#include "lib/rng.h"
#include "lib/wire.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_KEY UINT64_MAX

typedef struct mk_state {
    double conv, null;          /* weight into conversion / null */
    double first_c, first_v, last_c, last_v, lin_c, lin_v;
} mk_state;

struct tl_markov {
    int n, cap;                 /* channel states */
    char **names;
    uint32_t *name_len;
    mk_state *st;
    int32_t *slots;             /* name table: channel index or -1 */
    size_t slot_cap;            /* power of two, >= 2 n */
    uint64_t *ekey;             /* edge table: from << 32 | to (transient indices) */
    double *ew;
    size_t ecap, ecount;        /* ecap power of two, >= 2 ecount */
    double conversions, nulls, value;
    uint64_t paths;
    int order;                  /* 1..TL_MARKOV_MAX_ORDER */
};

const char *tl_markov_strerror(int rc)
{
    switch (rc) {
    case TL_MARKOV_OK: return "ok";
    case TL_MARKOV_EINVAL:
        return "invalid path (no states, an empty or overlong state name, "
               "or a weight that is negative or not finite)";
    case TL_MARKOV_ETOOMANY: return "too many states (more than TL_MARKOV_MAX_STATES = 4096)";
    case TL_MARKOV_ESOLVE: return "the linear solve failed (I - Q is singular)";
    case TL_MARKOV_ECORRUPT: return "not an encoded Markov model (corrupt or truncated)";
    case TL_MARKOV_EORDER: return "the two chains have different orders";
    default: return "unknown error";
    }
}

/* --- tables -------------------------------------------------------------------------- */

static int name_find(const tl_markov *m, const char *s, size_t len, uint64_t h)
{
    if (!m->slot_cap) return -1;
    size_t mask = m->slot_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        int32_t k = m->slots[i];
        if (k < 0) return -1;
        if (m->name_len[k] == len && !memcmp(m->names[k], s, len)) return k;
    }
}

static void name_slot_put(int32_t *slots, size_t cap, uint64_t h, int32_t k)
{
    size_t mask = cap - 1, i = h & mask;
    while (slots[i] >= 0) i = (i + 1) & mask;
    slots[i] = k;
}

/* Appends a new state (the caller checked it is absent and within the bound). */
static int name_add(tl_markov *m, const char *s, size_t len, uint64_t h)
{
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        m->names = tl_xrealloc(m->names, (size_t)cap * sizeof(*m->names));
        m->name_len = tl_xrealloc(m->name_len, (size_t)cap * sizeof(*m->name_len));
        m->st = tl_xrealloc(m->st, (size_t)cap * sizeof(*m->st));
        m->cap = cap;
    }
    if ((size_t)(m->n + 1) * 2 > m->slot_cap) {
        size_t cap = m->slot_cap ? m->slot_cap * 2 : 32;
        int32_t *slots = tl_xmalloc(cap * sizeof(*slots));
        memset(slots, 0xff, cap * sizeof(*slots));
        for (int k = 0; k < m->n; k++)
            name_slot_put(slots, cap, tl_hash64(m->names[k], m->name_len[k]), k);
        free(m->slots);
        m->slots = slots;
        m->slot_cap = cap;
    }
    int k = m->n++;
    char *copy = tl_xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    m->names[k] = copy;
    m->name_len[k] = (uint32_t)len;
    memset(&m->st[k], 0, sizeof(m->st[k]));
    name_slot_put(m->slots, m->slot_cap, h, k);
    return k;
}

static uint64_t edge_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return key;
}

static double *edge_ref(tl_markov *m, uint32_t from, uint32_t to)
{
    if ((m->ecount + 1) * 2 > m->ecap) {
        size_t cap = m->ecap ? m->ecap * 2 : 64;
        uint64_t *key = tl_xmalloc(cap * sizeof(*key));
        double *w = tl_xmalloc(cap * sizeof(*w));
        memset(key, 0xff, cap * sizeof(*key));
        for (size_t i = 0; i < m->ecap; i++) {
            if (m->ekey[i] == EMPTY_KEY) continue;
            size_t j = edge_hash(m->ekey[i]) & (cap - 1);
            while (key[j] != EMPTY_KEY) j = (j + 1) & (cap - 1);
            key[j] = m->ekey[i];
            w[j] = m->ew[i];
        }
        free(m->ekey);
        free(m->ew);
        m->ekey = key;
        m->ew = w;
        m->ecap = cap;
    }
    uint64_t k = (uint64_t)from << 32 | to;
    size_t mask = m->ecap - 1, i = edge_hash(k) & mask;
    while (m->ekey[i] != EMPTY_KEY) {
        if (m->ekey[i] == k) return &m->ew[i];
        i = (i + 1) & mask;
    }
    m->ekey[i] = k;
    m->ew[i] = 0;
    m->ecount++;
    return &m->ew[i];
}

/* --- life cycle ---------------------------------------------------------------------- */

tl_markov *tl_markov_new(void) { return tl_markov_new_order(1); }

tl_markov *tl_markov_new_order(int order)
{
    if (order < 1 || order > TL_MARKOV_MAX_ORDER) return NULL;
    tl_markov *m = tl_xcalloc(1, sizeof(tl_markov));
    m->order = order;
    return m;
}

int tl_markov_order(const tl_markov *m) { return m->order; }

void tl_markov_clear(tl_markov *m)
{
    int order = m->order;
    for (int k = 0; k < m->n; k++) free(m->names[k]);
    TL_FREE_ALL(m->names, m->name_len, m->st, m->slots, m->ekey, m->ew);
    memset(m, 0, sizeof(*m));
    m->order = order;
}

void tl_markov_destroy(tl_markov *m)
{
    if (!m) return;
    tl_markov_clear(m);
    free(m);
}

int tl_markov_states(const tl_markov *m) { return m->n; }
uint64_t tl_markov_paths(const tl_markov *m) { return m->paths; }

const char *tl_markov_state_name(const tl_markov *m, int i)
{
    return i >= 0 && i < m->n ? m->names[i] : NULL;
}

static int weight_ok(double w) { return isfinite(w) && w >= 0; }

/* The longest state name: a window of order touches and the separators between them. */
static size_t max_name(int order) { return (size_t)order * (TL_MARKOV_MAX_NAME + 1) - 1; }

/* The chain's states of a path, for order k > 1: its windows of k consecutive touches (the
 * whole path when it is shorter), each named by its touches joined by TL_MARKOV_SEP.
 * Writes the names into buf (NUL-terminated, one after another) and returns how many. */
static int path_windows(const char *const *states, int n, int k, char *buf)
{
    int nw = n <= k ? 1 : n - k + 1;
    for (int w = 0; w < nw; w++) {
        int len = n <= k ? n : k;
        for (int i = 0; i < len; i++) {
            size_t l = strlen(states[w + i]);
            if (i) *buf++ = TL_MARKOV_SEP;
            memcpy(buf, states[w + i], l);
            buf += l;
        }
        *buf++ = '\0';
    }
    return nw;
}

/* The index of name s, interned if new (the caller checked the bound). */
static int intern(tl_markov *m, const char *s)
{
    size_t len = strlen(s);
    uint64_t h = tl_hash64(s, len);
    int k = name_find(m, s, len, h);
    return k >= 0 ? k : name_add(m, s, len, h);
}

/* Whether interning names[0..n) would pass TL_MARKOV_MAX_STATES. */
static int too_many(const tl_markov *m, const char *const *names, int n)
{
    if (m->n + n <= TL_MARKOV_MAX_STATES) return 0;
    int fresh = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (name_find(m, names[i], len, tl_hash64(names[i], len)) >= 0) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(names[j], names[i]);
        fresh += !seen;
    }
    return m->n + fresh > TL_MARKOV_MAX_STATES;
}

int tl_markov_add_path(tl_markov *m, const char *const *states, int n, double conversions,
                       double nulls, double value)
{
    if (!states || n < 1 || !weight_ok(conversions) || !weight_ok(nulls) || !weight_ok(value))
        return TL_MARKOV_EINVAL;
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (!states[i]) return TL_MARKOV_EINVAL;
        size_t len = strnlen(states[i], TL_MARKOV_MAX_NAME + 1);
        if (len == 0 || len > TL_MARKOV_MAX_NAME) return TL_MARKOV_EINVAL;
        if (m->order > 1 && memchr(states[i], TL_MARKOV_SEP, len)) return TL_MARKOV_EINVAL;
        bytes += len + 1;
    }
    /* The names to intern: the touches' channels, then (order > 1) the windows. */
    const char **wn = NULL;
    char *wbuf = NULL;
    int nw = n;
    if (m->order > 1) {
        wbuf = tl_xmalloc(bytes * (size_t)m->order);
        wn = tl_xmalloc((size_t)n * 2 * sizeof(*wn));
        memcpy(wn, states, (size_t)n * sizeof(*wn));
        nw = path_windows(states, n, m->order, wbuf);
        for (int i = 0, o = 0; i < nw; i++) {
            wn[n + i] = wbuf + o;
            o += (int)strlen(wbuf + o) + 1;
        }
    }
    const char *const *names = m->order > 1 ? wn : states;
    const char *const *windows = m->order > 1 ? wn + n : states;
    int rc = TL_MARKOV_OK;
    if (too_many(m, names, m->order > 1 ? n + nw : n)) {
        rc = TL_MARKOV_ETOOMANY;
        goto done;
    }

    double w = conversions + nulls, share_c = conversions / n, share_v = value / n;
    int k = 0;
    for (int i = 0; i < n; i++) {   /* the heuristic credits, per channel */
        k = intern(m, states[i]);
        m->st[k].lin_c += share_c;
        m->st[k].lin_v += share_v;
        if (i == 0) {
            m->st[k].first_c += conversions;
            m->st[k].first_v += value;
        }
    }
    m->st[k].last_c += conversions;
    m->st[k].last_v += value;
    uint32_t prev = 0;   /* start */
    for (int i = 0; i < nw; i++) {   /* the chain: equal neighbours are one state */
        k = intern(m, windows[i]);
        uint32_t t = (uint32_t)k + 1;
        if (t != prev && w > 0) *edge_ref(m, prev, t) += w;
        prev = t;
    }
    m->st[k].conv += conversions;
    m->st[k].null += nulls;
    m->conversions += conversions;
    m->nulls += nulls;
    m->value += value;
    m->paths++;
done:
    free(wn);
    free(wbuf);
    return rc;
}

int tl_markov_merge(tl_markov *dst, const tl_markov *src)
{
    if (dst == src) {
        tl_markov *copy = tl_markov_copy(src);
        int rc = tl_markov_merge(dst, copy);
        tl_markov_destroy(copy);
        return rc;
    }
    if (dst->order != src->order) return TL_MARKOV_EORDER;
    int fresh = 0;
    for (int k = 0; k < src->n; k++)
        fresh += name_find(dst, src->names[k], src->name_len[k],
                           tl_hash64(src->names[k], src->name_len[k])) < 0;
    if (dst->n + fresh > TL_MARKOV_MAX_STATES) return TL_MARKOV_ETOOMANY;

    int *map = tl_xmalloc(((size_t)src->n + 1) * sizeof(*map));
    map[0] = 0;
    for (int k = 0; k < src->n; k++) {
        uint64_t h = tl_hash64(src->names[k], src->name_len[k]);
        int d = name_find(dst, src->names[k], src->name_len[k], h);
        if (d < 0) d = name_add(dst, src->names[k], src->name_len[k], h);
        map[k + 1] = d + 1;
        mk_state *a = &dst->st[d];
        const mk_state *b = &src->st[k];
        a->conv += b->conv;
        a->null += b->null;
        a->first_c += b->first_c;
        a->first_v += b->first_v;
        a->last_c += b->last_c;
        a->last_v += b->last_v;
        a->lin_c += b->lin_c;
        a->lin_v += b->lin_v;
    }
    for (size_t i = 0; i < src->ecap; i++) {
        uint64_t key = src->ekey[i];
        if (key == EMPTY_KEY) continue;
        *edge_ref(dst, (uint32_t)map[key >> 32], (uint32_t)map[key & 0xffffffffu]) += src->ew[i];
    }
    free(map);
    dst->conversions += src->conversions;
    dst->nulls += src->nulls;
    dst->value += src->value;
    dst->paths += src->paths;
    return TL_MARKOV_OK;
}

tl_markov *tl_markov_copy(const tl_markov *m)
{
    tl_markov *c = tl_markov_new_order(m->order);
    tl_markov_merge(c, m);   /* cannot fail: c is empty, of m's order, and within the bound */
    return c;
}

/* --- the solve ----------------------------------------------------------------------- */

void tl_markov_result_free(tl_markov_result *r)
{
    if (!r) return;
    free(r->channels);
    free(r->names_);
    memset(r, 0, sizeof(*r));
}

tl_credit_delta tl_markov_credit_delta(const tl_markov_result *r, int i, int64_t start, int64_t len,
                                       tl_dim dim, double before)
{
    const tl_markov_channel *c = &r->channels[i];
    return (tl_credit_delta){
        .window_start = start,
        .window_end = start + len,
        .dim = dim,
        .dim_id = c->name,
        .method = "markov",
        .credit = c->markov_conversions,
        .credit_before = before,
        .conversions = r->conversions,
        .removal_effect = c->removal_effect,
        .has_removal_effect = 1,
        .credit_lo = c->markov_conversions_lo,
        .credit_hi = c->markov_conversions_hi,
        .interval_level = r->bootstrap_level,
        .has_interval = r->bootstrap_samples > 0,
    };
}

/* Whether state k is a channel: every state of a first-order chain; for order k > 1, the
 * states named by one touch (the channels themselves, which carry the heuristic sums). */
static int is_channel(const tl_markov *m, int k)
{
    return m->order == 1 || !memchr(m->names[k], TL_MARKOV_SEP, m->name_len[k]);
}

/* Fills the heuristic credits, names and totals of the channels; the Markov fields are
 * left 0. chan[i]: the state of result row i. */
static void result_init(const tl_markov *m, tl_markov_result *r, int *chan)
{
    memset(r, 0, sizeof(*r));
    r->conversions = m->conversions;
    r->nulls = m->nulls;
    r->value = m->value;
    r->paths = m->paths;
    r->order = m->order;
    size_t bytes = 0;
    for (int k = 0; k < m->n; k++)
        if (is_channel(m, k)) {
            chan[r->n++] = k;
            bytes += m->name_len[k] + 1;
        }
    if (!r->n) return;
    r->names_ = tl_xmalloc(bytes);
    r->channels = tl_xcalloc((size_t)r->n, sizeof(*r->channels));
    char *p = r->names_;
    for (int i = 0; i < r->n; i++) {
        int k = chan[i];
        tl_markov_channel *c = &r->channels[i];
        memcpy(p, m->names[k], m->name_len[k] + 1);
        c->name = p;
        p += m->name_len[k] + 1;
        c->first_conversions = m->st[k].first_c;
        c->first_value = m->st[k].first_v;
        c->last_conversions = m->st[k].last_c;
        c->last_value = m->st[k].last_v;
        c->linear_conversions = m->st[k].lin_c;
        c->linear_value = m->st[k].lin_v;
    }
}

/* Order k > 1: removing channel c removes every state with c among its touches (they turn
 * into null), a set R of states rather than one, so the identity of the first-order case
 * does not apply. Turning the rows R of A = I - Q into identity rows (and r_R into 0) is a
 * low-rank change, A' = A + E_R Q_R, so with N = A^-1 (Woodbury)
 *
 *     b'[s] = y[s] - N[s,R] M^-1 Q_R y,   y = b - N[:,R] r_R,   M = I + Q_R N[:,R],
 *
 * an |R| x |R| solve per channel after one inverse. M is invertible whenever A' is (det A'
 * = det A det M), and A' is: every state still reaches an absorbing one. Each state has at
 * most k touches, so the |R| of all channels add up to at most k times the states: the
 * cost is the inverse (about 2 n^3 in all with the factorisation) plus sum |R|^3 <= k n^3
 * in the worst case, and far less when the channels share the states out.
 *
 * a: the LU factors of A (dgetrf's, with ipiv), overwritten by N; b: A^-1 r; rr: r;
 * out: the weight leaving each transient state. Fills re[i] for result row i. */
static int removal_sets(const tl_markov *m, double *a, lapack_int *ipiv, const double *b,
                        const double *rr, const double *out, size_t ld, const int *chan, int nchan,
                        double *re)
{
    if (LAPACKE_dgetri(LAPACK_COL_MAJOR, (lapack_int)ld, a, (lapack_int)ld, ipiv) != 0)
        return TL_MARKOV_ESOLVE;
    const double *N = a;   /* N[i][j] = a[i + j ld] */
    const double bs = b[0];
    const int k = m->order;

    /* Q by rows (CSR over the transient states) */
    size_t *row = tl_xcalloc(ld + 1, sizeof(*row));
    for (size_t e = 0; e < m->ecap; e++)
        if (m->ekey[e] != EMPTY_KEY) row[(m->ekey[e] >> 32) + 1]++;
    for (size_t i = 0; i < ld; i++) row[i + 1] += row[i];
    size_t *fill = tl_xmalloc(ld * sizeof(*fill));
    memcpy(fill, row, ld * sizeof(*fill));
    uint32_t *col = tl_xmalloc((m->ecount + 1) * sizeof(*col));
    double *q = tl_xmalloc((m->ecount + 1) * sizeof(*q));
    for (size_t e = 0; e < m->ecap; e++) {
        if (m->ekey[e] == EMPTY_KEY) continue;
        size_t from = m->ekey[e] >> 32, at = fill[from]++;
        col[at] = (uint32_t)(m->ekey[e] & 0xffffffffu);
        q[at] = m->ew[e] / out[from];
    }

    /* comp[t * k + i]: the state of touch i of state t's name, -1 past its end */
    int *comp = tl_xmalloc((size_t)m->n * (size_t)k * sizeof(*comp));
    for (int t = 0; t < m->n; t++) {
        const char *p = m->names[t], *e = p + m->name_len[t];
        for (int i = 0; i < k; i++) {
            int c = -1;
            if (p < e) {
                const char *x = memchr(p, TL_MARKOV_SEP, (size_t)(e - p));
                size_t l = (size_t)((x ? x : e) - p);
                c = name_find(m, p, l, tl_hash64(p, l));
                p = x ? x + 1 : e;
            }
            comp[(size_t)t * (size_t)k + (size_t)i] = c;
        }
    }
    size_t *R = tl_xmalloc(ld * sizeof(*R));
    double *y = tl_xmalloc(ld * sizeof(*y));
    double *w = tl_xmalloc(ld * sizeof(*w));
    double *M = NULL;
    lapack_int *piv = tl_xmalloc(ld * sizeof(*piv));
    int rc = TL_MARKOV_OK;
    for (int j = 0; j < nchan && rc == TL_MARKOV_OK; j++) {
        size_t nr = 0;   /* R: the states with channel j that weight leaves */
        for (int t = 0; t < m->n; t++) {
            if (!(out[t + 1] > 0)) continue;
            int has = 0;
            for (int i = 0; i < k && !has; i++)
                has = comp[(size_t)t * (size_t)k + (size_t)i] == chan[j];
            if (has) R[nr++] = (size_t)t + 1;
        }
        re[j] = 0;
        if (!nr) continue;
        memcpy(y, b, ld * sizeof(*y));   /* y = b - N[:,R] r_R */
        for (size_t c = 0; c < nr; c++) {
            double rc_ = rr[R[c]];
            if (rc_ == 0) continue;
            const double *Nc = N + R[c] * ld;
            for (size_t i = 0; i < ld; i++) y[i] -= Nc[i] * rc_;
        }
        M = tl_xrealloc(M, nr * nr * sizeof(*M));   /* M = I + Q_R N[:,R], column-major */
        for (size_t ra = 0; ra < nr; ra++) {
            double wa = 0;
            for (size_t e = row[R[ra]]; e < row[R[ra] + 1]; e++) wa += q[e] * y[col[e]];
            w[ra] = wa;   /* (Q_R y)_a */
            for (size_t cb = 0; cb < nr; cb++) {
                const double *Nc = N + R[cb] * ld;
                double v = ra == cb;
                for (size_t e = row[R[ra]]; e < row[R[ra] + 1]; e++) v += q[e] * Nc[col[e]];
                M[ra + cb * nr] = v;
            }
        }
        if (LAPACKE_dgesv(LAPACK_COL_MAJOR, (lapack_int)nr, 1, M, (lapack_int)nr, piv, w,
                          (lapack_int)nr) != 0) {
            rc = TL_MARKOV_ESOLVE;
            break;
        }
        double bj = y[0];   /* b'[s] = y[s] - N[s,R] z */
        for (size_t c = 0; c < nr; c++) bj -= N[R[c] * ld] * w[c];
        double v = (bs - bj) / bs;
        re[j] = v > 0 ? (v < 1 ? v : 1) : 0;   /* rounding, and NaN, clamped */
    }
    free(row);
    free(fill);
    free(col);
    free(q);
    free(comp);
    free(R);
    free(y);
    free(w);
    free(M);
    free(piv);
    return rc;
}

int tl_markov_removal_effects(const tl_markov *m, tl_markov_result *r)
{
    int *chan = tl_xmalloc(((size_t)m->n + 1) * sizeof(*chan));
    result_init(m, r, chan);
    if (!m->n) {
        free(chan);
        return TL_MARKOV_OK;
    }

    const int nt = m->n + 1;   /* transient states: start + channels */
    const size_t ld = (size_t)nt;
    double *a = tl_xcalloc(ld * ld, sizeof(*a));   /* I - Q, column-major */
    double *out = tl_xcalloc(ld, sizeof(*out));
    double *b = tl_xcalloc(ld, sizeof(*b));
    double *x = tl_xcalloc(ld, sizeof(*x));
    lapack_int *ipiv = tl_xmalloc(ld * sizeof(*ipiv));
    int *q = tl_xmalloc(ld * sizeof(*q));
    double *r0 = NULL;   /* order > 1: r, kept for the removals */
    int rc = TL_MARKOV_OK;

    for (int k = 0; k < m->n; k++) out[k + 1] = m->st[k].conv + m->st[k].null;
    for (size_t i = 0; i < m->ecap; i++)
        if (m->ekey[i] != EMPTY_KEY) out[m->ekey[i] >> 32] += m->ew[i];
    for (int k = 0; k < m->n; k++) r->chain_states += m->order == 1 || out[k + 1] > 0;
    for (size_t i = 0; i < m->ecap; i++) {
        if (m->ekey[i] == EMPTY_KEY) continue;
        size_t from = m->ekey[i] >> 32, to = m->ekey[i] & 0xffffffffu;
        a[from + to * ld] = -m->ew[i] / out[from];
    }
    for (size_t i = 0; i < ld; i++) a[i + i * ld] = 1.0;
    for (int k = 0; k < m->n; k++)
        b[k + 1] = out[k + 1] > 0 ? m->st[k].conv / out[k + 1] : 0.0;   /* r */
    if (m->order > 1) {
        r0 = tl_xmalloc(ld * sizeof(*r0));
        memcpy(r0, b, ld * sizeof(*r0));
    }

    if (LAPACKE_dgetrf(LAPACK_COL_MAJOR, nt, nt, a, nt, ipiv) != 0 ||
        LAPACKE_dgetrs(LAPACK_COL_MAJOR, 'N', nt, 1, a, nt, ipiv, b, nt) != 0) {
        rc = TL_MARKOV_ESOLVE;
        goto done;
    }
    double bs = b[0];
    r->conversion_probability = bs;
    if (!(bs > 0)) goto done;   /* no conversion: every RE is 0 */
    double sum = 0;
    if (m->order > 1) {
        double *re = tl_xcalloc((size_t)r->n, sizeof(*re));
        rc = removal_sets(m, a, ipiv, b, r0, out, ld, chan, r->n, re);
        for (int i = 0; i < r->n; i++) {
            r->channels[i].removal_effect = re[i];
            sum += re[i];
        }
        free(re);
        if (rc != TL_MARKOV_OK) goto done;
        goto shares;
    }

    x[0] = 1.0;   /* (I - Q)^T x = e_s: x[j] = N[s][j] */
    if (LAPACKE_dgetrs(LAPACK_COL_MAJOR, 'T', nt, 1, a, nt, ipiv, x, nt) != 0 ||
        LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', nt, a, nt) != 0 ||
        LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'L', 'U', nt, a, nt) != 0) {
        rc = TL_MARKOV_ESOLVE;
        goto done;
    }
    /* P applies the swaps ipiv in order: row i of P(I-Q) is row perm[i] of I-Q; q is the
     * inverse of perm (P e_j = e_q[j]). */
    for (int i = 0; i < nt; i++) q[i] = i;
    for (int i = 0; i < nt; i++) {
        int p = ipiv[i] - 1, t = q[i];
        q[i] = q[p];
        q[p] = t;
    }
    /* q now holds perm; invert it in place via ipiv's storage. */
    for (int i = 0; i < nt; i++) ipiv[q[i]] = i;

    for (int j = 1; j < nt; j++) {
        if (!(b[j] > 0) || !(x[j] > 0)) continue;   /* never reached, or never converts */
        size_t c = (size_t)ipiv[j];   /* column of L^-1 that P e_j selects */
        size_t k0 = (size_t)j > c ? (size_t)j : c;
        double d = 0;
        for (size_t k = k0; k < ld; k++) {
            double l = k == c ? 1.0 : a[k + c * ld];   /* unit diagonal of L^-1 */
            d += a[(size_t)j + k * ld] * l;            /* U^-1[j][k], k >= j */
        }
        double re = x[j] / d * b[j] / bs;
        if (!(re > 0)) re = 0;   /* also NaN */
        if (re > 1) re = 1;
        r->channels[j - 1].removal_effect = re;
        sum += re;
    }
shares:
    if (sum > 0)
        for (int i = 0; i < r->n; i++) {
            double share = r->channels[i].removal_effect / sum;
            r->channels[i].markov_conversions = m->conversions * share;
            r->channels[i].markov_value = m->value * share;
        }
done:
    free(chan);
    free(r0);
    free(a);
    free(out);
    free(b);
    free(x);
    free(ipiv);
    free(q);
    if (rc != TL_MARKOV_OK) {
        tl_markov_result_free(r);
    }
    return rc;
}

/* --- bootstrap ----------------------------------------------------------------------- */

static int dbl_cmp(const void *pa, const void *pb)
{
    double x = *(const double *)pa, y = *(const double *)pb;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n), linear between order statistics. */
static double quantile(const double *v, int n, double q)
{
    double h = q * (n - 1);
    int lo = (int)floor(h);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo]);
}

int tl_markov_bootstrap(const tl_markov *m, int samples, uint64_t seed, double level,
                        tl_markov_result *r)
{
    if (samples < 2 || !(level > 0 && level < 1)) return TL_MARKOV_EINVAL;
    const int nc = r->n;
    if (!nc) return TL_MARKOV_OK;
    double *re = tl_xmalloc((size_t)samples * (size_t)nc * sizeof(*re));
    double *cv = tl_xmalloc((size_t)samples * (size_t)nc * sizeof(*cv));
    gen_rng g;
    rng_seed(&g, seed);
    int rc = TL_MARKOV_OK;
    /* One copy redrawn in place each time, from its own weights kept aside. */
    tl_markov *c = tl_markov_copy(m);
    double *ew = tl_xmalloc((c->ecap + 1) * sizeof(*ew));
    double *cn = tl_xmalloc(((size_t)c->n * 2 + 1) * sizeof(*cn));
    memcpy(ew, c->ew, c->ecap * sizeof(*ew));
    for (int k = 0; k < c->n; k++) {
        cn[2 * k] = c->st[k].conv;
        cn[2 * k + 1] = c->st[k].null;
    }
    for (int b = 0; b < samples && rc == TL_MARKOV_OK; b++) {
        for (size_t i = 0; i < c->ecap; i++)
            if (c->ekey[i] != EMPTY_KEY) c->ew[i] = rng_gamma(&g, ew[i]);
        for (int k = 0; k < c->n; k++) {
            c->st[k].conv = rng_gamma(&g, cn[2 * k]);
            c->st[k].null = rng_gamma(&g, cn[2 * k + 1]);
        }
        tl_markov_result rb;
        rc = tl_markov_removal_effects(c, &rb);
        for (int j = 0; j < nc && rc == TL_MARKOV_OK; j++) {   /* same channels, same order */
            re[(size_t)j * (size_t)samples + (size_t)b] = rb.channels[j].removal_effect;
            cv[(size_t)j * (size_t)samples + (size_t)b] = rb.channels[j].markov_conversions;
        }
        tl_markov_result_free(&rb);
    }
    tl_markov_destroy(c);
    free(ew);
    free(cn);
    if (rc == TL_MARKOV_OK) {
        double qlo = (1 - level) / 2, qhi = (1 + level) / 2;
        for (int j = 0; j < nc; j++) {
            double *x = re + (size_t)j * (size_t)samples, *y = cv + (size_t)j * (size_t)samples;
            qsort(x, (size_t)samples, sizeof(*x), dbl_cmp);
            qsort(y, (size_t)samples, sizeof(*y), dbl_cmp);
            tl_markov_channel *ch = &r->channels[j];
            ch->removal_effect_lo = quantile(x, samples, qlo);
            ch->removal_effect_hi = quantile(x, samples, qhi);
            ch->markov_conversions_lo = quantile(y, samples, qlo);
            ch->markov_conversions_hi = quantile(y, samples, qhi);
        }
        r->bootstrap_samples = samples;
        r->bootstrap_level = level;
    }
    free(re);
    free(cv);
    return rc;
}

/* --- encoding ------------------------------------------------------------------------ */

static const char MAGIC[4] = {'T', 'L', 'M', 'K'};
enum {
    VERSION = 1,
    VERSION_ORDER = 2
};   /* 2: an order byte follows (order > 1) */

typedef struct mk_edge {
    uint64_t key;
    double w;
} mk_edge;

static int edge_cmp(const void *pa, const void *pb)
{
    uint64_t x = ((const mk_edge *)pa)->key, y = ((const mk_edge *)pb)->key;
    return x < y ? -1 : x > y;
}

void tl_markov_encode(const tl_markov *m, tl_buf *out)
{
    size_t start = out->len;
    tl_buf_append(out, MAGIC, sizeof(MAGIC));
    tl_buf_putc(out, (char)(m->order > 1 ? VERSION_ORDER : VERSION));
    if (m->order > 1) tl_buf_putc(out, (char)m->order);
    tl_wire_put_varint(out, (uint64_t)m->n);
    for (int k = 0; k < m->n; k++) {
        tl_wire_put_varint(out, m->name_len[k]);
        tl_buf_append(out, m->names[k], m->name_len[k]);
    }
    tl_wire_put_varint(out, m->paths);
    tl_wire_put_f64(out, m->conversions);
    tl_wire_put_f64(out, m->nulls);
    tl_wire_put_f64(out, m->value);
    for (int k = 0; k < m->n; k++) {
        const mk_state *s = &m->st[k];
        const double v[8] = {s->conv,   s->null,   s->first_c, s->first_v,
                             s->last_c, s->last_v, s->lin_c,   s->lin_v};
        for (int i = 0; i < 8; i++) tl_wire_put_f64(out, v[i]);
    }
    /* Edges sorted by (from, to), so the bytes do not depend on the table's layout. */
    mk_edge *e = tl_xmalloc((m->ecount + 1) * sizeof(*e));
    size_t ne = 0;
    for (size_t i = 0; i < m->ecap; i++)
        if (m->ekey[i] != EMPTY_KEY) e[ne++] = (mk_edge){m->ekey[i], m->ew[i]};
    qsort(e, ne, sizeof(*e), edge_cmp);
    tl_wire_put_varint(out, ne);
    for (size_t i = 0; i < ne; i++) {
        tl_wire_put_varint(out, e[i].key >> 32);
        tl_wire_put_varint(out, e[i].key & 0xffffffffu);
        tl_wire_put_f64(out, e[i].w);
    }
    free(e);
    tl_wire_put_u64(out, tl_hash64(out->data + start, out->len - start));
}

/* A state name as add_path makes them: order 1, one channel of at most TL_MARKOV_MAX_NAME
 * bytes; order k, up to k of them joined by TL_MARKOV_SEP, none empty. */
static int window_ok(const char *s, size_t l, int order)
{
    if (order == 1) return l <= TL_MARKOV_MAX_NAME;
    const char *e = s + l;
    for (int i = 0; i < order; i++) {
        const char *q = memchr(s, TL_MARKOV_SEP, (size_t)(e - s));
        size_t part = (size_t)((q ? q : e) - s);
        if (part == 0 || part > TL_MARKOV_MAX_NAME) return 0;
        if (!q) return 1;
        s = q + 1;
    }
    return 0;   /* more than order touches */
}

typedef tl_wire_rd rd;

static double get_weight(rd *r)
{
    double d = tl_wire_f64(r);
    if (!weight_ok(d)) tl_wire_fail(r, "a weight out of range");
    return r->fail ? 0 : d;
}

tl_markov *tl_markov_decode(const void *data, size_t len, int *rc)
{
    const unsigned char *p = data;
    tl_markov *m = NULL;
    if (len < sizeof(MAGIC) + 2 + 8 || memcmp(p, MAGIC, sizeof(MAGIC)) ||
        (p[sizeof(MAGIC)] != VERSION && p[sizeof(MAGIC)] != VERSION_ORDER))
        goto bad;
    int order = p[sizeof(MAGIC)] == VERSION ? 1 : p[sizeof(MAGIC) + 1];
    if (order < 2 && p[sizeof(MAGIC)] == VERSION_ORDER) goto bad;
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++) sum |= (uint64_t)p[len - 8 + i] << (8 * i);
    if (sum != tl_hash64(p, len - 8)) goto bad;

    rd r = {p + sizeof(MAGIC) + 1 + (order > 1), p + len - 8, NULL};
    if (!(m = tl_markov_new_order(order))) goto bad;
    uint64_t n = tl_wire_varint(&r);
    if (r.fail || n > TL_MARKOV_MAX_STATES) goto bad;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t l = tl_wire_varint(&r);
        if (r.fail || l == 0 || l > max_name(order) || (uint64_t)(r.end - r.p) < l) goto bad;
        const char *s = (const char *)r.p;
        if (memchr(s, '\0', l) || !window_ok(s, l, order)) goto bad;
        uint64_t h = tl_hash64(s, l);
        if (name_find(m, s, l, h) >= 0) goto bad;   /* duplicate name */
        name_add(m, s, l, h);
        r.p += l;
    }
    m->paths = tl_wire_varint(&r);
    m->conversions = get_weight(&r);
    m->nulls = get_weight(&r);
    m->value = get_weight(&r);
    for (uint64_t k = 0; k < n && !r.fail; k++) {
        mk_state *s = &m->st[k];
        double *v[8] = {&s->conv,   &s->null,   &s->first_c, &s->first_v,
                        &s->last_c, &s->last_v, &s->lin_c,   &s->lin_v};
        for (int i = 0; i < 8; i++) *v[i] = get_weight(&r);
    }
    uint64_t ne = tl_wire_varint(&r);
    if (r.fail || ne > (uint64_t)(r.end - r.p) / 10) goto bad;   /* >= 10 bytes each */
    for (uint64_t i = 0; i < ne; i++) {
        uint64_t from = tl_wire_varint(&r), to = tl_wire_varint(&r);
        double w = get_weight(&r);
        if (r.fail || from > n || to < 1 || to > n || from == to) goto bad;
        size_t before = m->ecount;
        double *e = edge_ref(m, (uint32_t)from, (uint32_t)to);
        if (m->ecount == before) goto bad;   /* duplicate edge */
        *e = w;
    }
    if (r.fail || r.p != r.end) goto bad;
    if (rc) *rc = TL_MARKOV_OK;
    return m;
bad:
    tl_markov_destroy(m);
    if (rc) *rc = TL_MARKOV_ECORRUPT;
    return NULL;
}
