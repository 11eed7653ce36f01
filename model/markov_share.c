/*
 * markov_share.c -- one Markov chain for every instance (markov_share.h).
 *
 * The record, the same for a sender's partial and for the owner's state (little-endian):
 *   "TLMK", version 1, kind (1 partial, 2 state), dim (int32; -1 unknown),
 *   closed_end (int64; INT64_MIN none), windows closed, late journeys (uint64 each),
 *   n_times (uint32), then n x {partition int32, stream time int64},
 *   n_windows (uint32), then n x {start int64 (INT64_MIN: the closed windows' chain),
 *                                 length uint32, tl_markov_encode bytes},
 *   n_credits (uint32), then n x {length uint32, name bytes, credit double}.
 * The chains' own encoding is versioned and checksummed (markov.h).
 */
#include "markov_share.h"
#include "markov.h"
#include "lib/wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MK_MAGIC "TLMK"
#define MK_VERSION 1
#define MK_PARTIAL 1
#define MK_STATE 2
#define MK_MAX_TIME ((int64_t)1 << 53)   /* event times beyond move no window */
#define MK_MAX_WINDOW ((int64_t)1 << 50)   /* above markov.window.ms's bound (1e15) */
#define MK_MAX_PARTITIONS 100000

typedef struct win {
    int64_t start;
    tl_markov *chain;
} win;

typedef struct rec {
    int kind, dim;
    int64_t closed_end;
    uint64_t windows, late;
    int n_times;
    int32_t *part;
    int64_t *time;
    int n_win;
    win *w;
    int n_cred;
    char **name;
    double *cred;
} rec;

static void rec_free(rec *r)
{
    for (int i = 0; i < r->n_win; i++) tl_markov_destroy(r->w[i].chain);
    for (int i = 0; i < r->n_cred; i++) free(r->name[i]);
    TL_FREE_ALL(r->part, r->time, r->w, r->name, r->cred);
    memset(r, 0, sizeof(*r));
}

static void rec_encode(const rec *r, tl_buf *b)
{
    tl_buf_append(b, MK_MAGIC, 4);
    tl_buf_putc(b, MK_VERSION);
    tl_buf_putc(b, (char)r->kind);
    tl_wire_put_u32(b, (uint32_t)r->dim);
    tl_wire_put_u64(b, (uint64_t)r->closed_end);
    tl_wire_put_u64(b, r->windows);
    tl_wire_put_u64(b, r->late);
    tl_wire_put_u32(b, (uint32_t)r->n_times);
    for (int i = 0; i < r->n_times; i++) {
        tl_wire_put_u32(b, (uint32_t)r->part[i]);
        tl_wire_put_u64(b, (uint64_t)r->time[i]);
    }
    tl_wire_put_u32(b, (uint32_t)r->n_win);
    for (int i = 0; i < r->n_win; i++) {
        tl_wire_put_u64(b, (uint64_t)r->w[i].start);
        size_t at = b->len;
        tl_wire_put_u32(b, 0);
        tl_markov_encode(r->w[i].chain, b);
        uint32_t n = (uint32_t)(b->len - at - 4);
        memcpy(b->data + at, &n, 4);
    }
    tl_wire_put_u32(b, (uint32_t)r->n_cred);
    for (int i = 0; i < r->n_cred; i++) {
        uint32_t n = (uint32_t)strlen(r->name[i]);
        tl_wire_put_u32(b, n);
        tl_buf_append(b, r->name[i], n);
        tl_buf_append(b, &r->cred[i], 8);
    }
}

typedef tl_wire_rd rd;

/* A count of items of at least `each` bytes: refused when the rest cannot hold them. */
static int get_count(rd *r, size_t each)
{
    uint32_t n = tl_wire_u32(r);
    if (!r->fail && (size_t)n > (size_t)(r->end - r->p) / each) r->fail = "a count past the end";
    return r->fail ? 0 : (int)n;
}

static int rec_decode(const void *data, size_t len, rec *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    rd r = {data, (const unsigned char *)data + len, NULL};
    const unsigned char *m = tl_wire_take(&r, 6);
    if (!m || memcmp(m, MK_MAGIC, 4) || m[4] != MK_VERSION ||
        (m[5] != MK_PARTIAL && m[5] != MK_STATE)) {
        snprintf(err, errlen, "Markov share record: no TLMK header of version %d", MK_VERSION);
        return -1;
    }
    o->kind = m[5];
    o->dim = (int32_t)tl_wire_u32(&r);
    o->closed_end = (int64_t)tl_wire_u64(&r);
    o->windows = tl_wire_u64(&r);
    o->late = tl_wire_u64(&r);
    if (!r.fail && o->dim != -1 && o->dim != TL_DIM_CHANNEL && o->dim != TL_DIM_CATEGORY)
        r.fail = "an unknown dimension";
    /* a window's end is its start (within +-MK_MAX_TIME) plus its length */
    if (!r.fail && o->closed_end != INT64_MIN &&
        (o->closed_end < -MK_MAX_TIME || o->closed_end > MK_MAX_TIME + MK_MAX_WINDOW))
        r.fail = "a window end out of range";
    int n = get_count(&r, 12);
    o->part = tl_xmalloc((size_t)(n ? n : 1) * sizeof(*o->part));
    o->time = tl_xmalloc((size_t)(n ? n : 1) * sizeof(*o->time));
    for (; o->n_times < n && !r.fail; o->n_times++) {
        o->part[o->n_times] = (int32_t)tl_wire_u32(&r);
        o->time[o->n_times] = (int64_t)tl_wire_u64(&r);
        if (!r.fail && (o->part[o->n_times] < 0 || o->part[o->n_times] >= MK_MAX_PARTITIONS))
            r.fail = "a partition out of range";
    }
    n = get_count(&r, 12);
    o->w = tl_xcalloc((size_t)(n ? n : 1), sizeof(*o->w));
    for (int i = 0; i < n && !r.fail; i++) {
        int64_t start = (int64_t)tl_wire_u64(&r);
        uint32_t bl = tl_wire_u32(&r);
        const unsigned char *blob = tl_wire_take(&r, bl);
        if (!blob) break;
        if (start != INT64_MIN && (start < -MK_MAX_TIME || start > MK_MAX_TIME)) {
            r.fail = "a window start out of range";
            break;
        }
        if (start == INT64_MIN && o->kind != MK_STATE) {
            r.fail = "a partial with a closed chain";
            break;
        }
        tl_markov *c = tl_markov_decode(blob, bl, NULL);
        if (!c) {
            r.fail = "a chain that does not decode";
            break;
        }
        o->w[o->n_win++] = (win){start, c};
    }
    n = get_count(&r, 12);
    o->name = tl_xcalloc((size_t)(n ? n : 1), sizeof(*o->name));
    o->cred = tl_xmalloc((size_t)(n ? n : 1) * sizeof(*o->cred));
    for (int i = 0; i < n && !r.fail; i++) {
        uint32_t l = tl_wire_u32(&r);
        const unsigned char *s = tl_wire_take(&r, l);
        const unsigned char *c = tl_wire_take(&r, 8);
        if (!s || !c) break;
        if (memchr(s, 0, l)) {
            r.fail = "a name with a NUL";
            break;
        }
        o->name[i] = tl_xmalloc(l + 1);
        memcpy(o->name[i], s, l);
        o->name[i][l] = 0;
        memcpy(&o->cred[i], c, 8);
        o->n_cred = i + 1;
        if (!isfinite(o->cred[i])) r.fail = "a credit that is not finite";
    }
    if (!r.fail && r.p != r.end) r.fail = "bytes after the record";
    if (r.fail) {
        snprintf(err, errlen, "Markov share record: %s", r.fail);
        rec_free(o);
        return -1;
    }
    return 0;
}

/* r's stream times: the known ones of time[0..n) (INT64_MIN: none). */
static void rec_times(rec *r, const int64_t *time, int n)
{
    r->part = tl_xmalloc((size_t)(n ? n : 1) * sizeof(*r->part));
    r->time = tl_xmalloc((size_t)(n ? n : 1) * sizeof(*r->time));
    for (int p = 0; p < n; p++) {
        if (time[p] == INT64_MIN) continue;
        r->part[r->n_times] = p;
        r->time[r->n_times++] = time[p];
    }
}

/* The window of start in ws (creating it with an empty chain of order). */
static win *win_of(win **ws, int *n, int *cap, int64_t start, int order)
{
    for (int i = 0; i < *n; i++)
        if ((*ws)[i].start == start) return &(*ws)[i];
    TL_GROW(*ws, *n, *cap, 8);
    (*ws)[*n] = (win){start, tl_markov_new_order(order)};
    return &(*ws)[(*n)++];
}

/* ---- senders ------------------------------------------------------------------------ */

struct tl_mk_out {
    int order;
    int64_t window_ms;
    int dim;
    win *w;
    int n_w, cap_w;
    int64_t *time, *sent;   /* by partition; INT64_MIN none */
    int n_time;
};

tl_mk_out *tl_mk_out_new(int order, int64_t window_ms)
{
    tl_mk_out *o = tl_xcalloc(1, sizeof(*o));
    o->order = order;
    o->window_ms = window_ms;
    o->dim = -1;
    return o;
}

static void clear_windows(tl_mk_out *o)
{
    for (int i = 0; i < o->n_w; i++) tl_markov_destroy(o->w[i].chain);
    o->n_w = 0;
}

void tl_mk_out_clear(tl_mk_out *o)
{
    clear_windows(o);
    for (int p = 0; p < o->n_time; p++) o->sent[p] = INT64_MIN;   /* said again next time */
}

void tl_mk_out_destroy(tl_mk_out *o)
{
    if (!o) return;
    tl_mk_out_clear(o);
    TL_FREE_ALL(o->w, o->time, o->sent, o);
}

int tl_mk_out_path(tl_mk_out *o, int dim, int64_t at, const char *const *states, int n,
                   int converted)
{
    if (at < -MK_MAX_TIME || at > MK_MAX_TIME) return TL_MARKOV_OK;   /* no window of its own */
    o->dim = dim;
    win *w = win_of(&o->w, &o->n_w, &o->cap_w, tl_floor_to(at, o->window_ms), o->order);
    return tl_markov_add_path(w->chain, states, n, converted ? 1.0 : 0.0, converted ? 0.0 : 1.0,
                              0.0);
}

void tl_mk_out_time(tl_mk_out *o, int32_t p, int64_t t)
{
    if (p < 0 || p >= MK_MAX_PARTITIONS || t == INT64_MIN) return;
    if (p >= o->n_time) {
        o->time = tl_xrealloc(o->time, (size_t)(p + 1) * sizeof(*o->time));
        o->sent = tl_xrealloc(o->sent, (size_t)(p + 1) * sizeof(*o->sent));
        for (int i = o->n_time; i <= p; i++) o->time[i] = o->sent[i] = INT64_MIN;
        o->n_time = p + 1;
    }
    if (t > o->time[p]) o->time[p] = t;
}

int tl_mk_out_take(tl_mk_out *o, tl_buf *out)
{
    int moved = 0;
    for (int p = 0; p < o->n_time; p++) moved |= o->time[p] != o->sent[p];
    if (!moved && !o->n_w) return 0;
    rec r = {.kind = MK_PARTIAL, .dim = o->dim, .closed_end = INT64_MIN};
    rec_times(&r, o->time, o->n_time);
    if (o->n_time) memcpy(o->sent, o->time, (size_t)o->n_time * sizeof(*o->sent));
    r.w = o->w;
    r.n_win = o->n_w;
    rec_encode(&r, out);
    free(r.part);
    free(r.time);
    clear_windows(o);
    return 1;
}

/* ---- the owner ---------------------------------------------------------------------- */

struct tl_mk_share {
    tl_mk_share_cfg cfg;
    int dim;
    tl_markov *chain;          /* the windows closed so far */
    win *open;
    int n_open, cap_open;
    int64_t *time;             /* by input partition; INT64_MIN none yet */
    int n_time;
    int64_t closed_end;        /* INT64_MIN: none closed */
    char **name;               /* the credits last published */
    double *cred;
    int n_cred, cap_cred;
    uint64_t late, windows, dropped;
    int dirty;
};

/* Frees what the state holds (the arrays stay for reuse). */
static void share_free(tl_mk_share *s)
{
    tl_markov_destroy(s->chain);
    s->chain = NULL;
    for (int i = 0; i < s->n_open; i++) tl_markov_destroy(s->open[i].chain);
    for (int i = 0; i < s->n_cred; i++) free(s->name[i]);
    s->n_open = s->n_cred = s->n_time = 0;
}

static void share_reset(tl_mk_share *s)
{
    share_free(s);
    s->chain = tl_markov_new_order(s->cfg.order);
    s->dim = -1;
    s->closed_end = INT64_MIN;
    s->late = s->windows = s->dropped = 0;
}

tl_mk_share *tl_mk_share_new(const tl_mk_share_cfg *cfg)
{
    tl_mk_share *s = tl_xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    share_reset(s);
    return s;
}

void tl_mk_share_destroy(tl_mk_share *s)
{
    if (!s) return;
    share_free(s);
    TL_FREE_ALL(s->open, s->time, s->name, s->cred, s);
}

/* 1 when partition p's stream time moved. */
static int set_time(tl_mk_share *s, int32_t p, int64_t t)
{
    if (p >= s->n_time) {
        s->time = tl_xrealloc(s->time, (size_t)(p + 1) * sizeof(*s->time));
        for (int i = s->n_time; i <= p; i++) s->time[i] = INT64_MIN;
        s->n_time = p + 1;
    }
    if (t <= s->time[p]) return 0;
    s->time[p] = t;
    return 1;
}

/* 0 when the decoded record r can be taken: why is NULL and each of its chains has the
 * configured order. Else -1 with "Markov share WHAT: reason" in err, r freed. */
static int rec_check(const tl_mk_share *s, rec *r, const char *why, const char *what, char *err,
                     size_t errlen)
{
    for (int i = 0; !why && i < r->n_win; i++)
        if (tl_markov_order(r->w[i].chain) != s->cfg.order)
            why = "a chain of another order (markov.order)";
    if (!why) return 0;
    snprintf(err, errlen, "Markov share %s: %s", what, why);
    rec_free(r);
    return -1;
}

int tl_mk_share_add(tl_mk_share *s, const void *data, size_t len, char *err, size_t errlen)
{
    rec r;
    if (rec_decode(data, len, &r, err, errlen) != 0) return -1;
    const char *why = r.kind != MK_PARTIAL           ? "a state where a partial was expected"
        : r.n_win && r.dim == -1                     ? "journeys without a dimension"
        : r.n_win && s->dim != -1 && r.dim != s->dim ? "journeys of another dimension"
                                                     : NULL;
    if (rec_check(s, &r, why, "record", err, errlen) != 0) return -1;
    for (int i = 0; i < r.n_win; i++) {
        int64_t start = r.w[i].start;
        if (s->closed_end != INT64_MIN && start < s->closed_end) {   /* late: the next window */
            s->late += tl_markov_paths(r.w[i].chain);
            start = s->closed_end;
        }
        win *w = win_of(&s->open, &s->n_open, &s->cap_open, start, s->cfg.order);
        if (tl_markov_merge(w->chain, r.w[i].chain) != TL_MARKOV_OK)   /* too many states */
            s->dropped += tl_markov_paths(r.w[i].chain);
        s->dim = r.dim;
    }
    int moved = r.n_win > 0;
    for (int i = 0; i < r.n_times; i++) moved |= set_time(s, r.part[i], r.time[i]);
    if (moved) s->dirty = 1;   /* else nothing to write again */
    rec_free(&r);
    return 0;
}

static double *credit_of(tl_mk_share *s, const char *name)
{
    for (int i = 0; i < s->n_cred; i++)
        if (!strcmp(s->name[i], name)) return &s->cred[i];
    if (s->n_cred == s->cap_cred) {
        s->cap_cred = s->cap_cred ? 2 * s->cap_cred : 16;
        s->name = tl_xrealloc(s->name, (size_t)s->cap_cred * sizeof(*s->name));
        s->cred = tl_xrealloc(s->cred, (size_t)s->cap_cred * sizeof(*s->cred));
    }
    s->name[s->n_cred] = tl_xstrdup(name);
    s->cred[s->n_cred] = 0;
    return &s->cred[s->n_cred++];
}

int tl_mk_share_close(tl_mk_share *s, int (*emit)(void *arg, const tl_credit_delta *d), void *arg)
{
    if (s->n_time < s->cfg.n_inputs) return 0;
    int64_t wm = INT64_MAX;
    for (int p = 0; p < s->cfg.n_inputs; p++)
        if (s->time[p] < wm) wm = s->time[p];
    if (wm == INT64_MIN) return 0;   /* a partition has not reported yet */
    const int64_t len = s->cfg.window_ms;
    for (;;) {
        int k = -1;
        for (int i = 0; i < s->n_open; i++)
            if (k < 0 || s->open[i].start < s->open[k].start) k = i;
        /* start + len <= wm, without the sum: starts are within +-2^53 */
        if (k < 0 || s->open[k].start > wm || wm - s->open[k].start < len) return 0;
        win w = s->open[k];
        s->open[k] = s->open[--s->n_open];
        if (tl_markov_merge(s->chain, w.chain) != TL_MARKOV_OK)
            s->dropped += tl_markov_paths(w.chain);
        tl_markov_destroy(w.chain);
        s->closed_end = w.start + len;
        s->windows++;
        s->dirty = 1;
        tl_markov_result res;
        memset(&res, 0, sizeof(res));
        int rc = 0;
        if (tl_markov_paths(s->chain) > 0 &&
            tl_markov_removal_effects(s->chain, &res) == TL_MARKOV_OK) {
            if (s->cfg.bootstrap >= 2)
                tl_markov_bootstrap(s->chain, s->cfg.bootstrap, (uint64_t)w.start, s->cfg.level,
                                    &res);
            for (int i = 0; i < res.n && !rc; i++) {
                double *prev = credit_of(s, res.channels[i].name);
                double credit = res.channels[i].markov_conversions;
                if (fabs(credit - *prev) <= 1e-12 * (1 + fabs(credit))) continue;
                tl_credit_delta d = tl_markov_credit_delta(
                    &res, i, w.start, len,
                    s->dim == TL_DIM_CATEGORY ? TL_DIM_CATEGORY : TL_DIM_CHANNEL, *prev);
                *prev = credit;
                rc = emit(arg, &d);
            }
        }
        tl_markov_result_free(&res);
        if (rc) return rc;
    }
}

int tl_mk_share_dirty(const tl_mk_share *s) { return s->dirty; }
uint64_t tl_mk_share_late(const tl_mk_share *s) { return s->late; }
uint64_t tl_mk_share_windows(const tl_mk_share *s) { return s->windows; }
uint64_t tl_mk_share_dropped(const tl_mk_share *s) { return s->dropped; }

void tl_mk_share_state(tl_mk_share *s, tl_buf *out)
{
    rec r = {.kind = MK_STATE,
             .dim = s->dim,
             .closed_end = s->closed_end,
             .windows = s->windows,
             .late = s->late,
             .n_cred = s->n_cred,
             .name = s->name,
             .cred = s->cred};
    rec_times(&r, s->time, s->n_time);
    r.w = tl_xmalloc((size_t)(s->n_open + 1) * sizeof(*r.w));
    r.w[r.n_win++] = (win){INT64_MIN, s->chain};
    for (int i = 0; i < s->n_open; i++) r.w[r.n_win++] = s->open[i];
    rec_encode(&r, out);
    free(r.part);
    free(r.time);
    free(r.w);
    s->dirty = 0;
}

int tl_mk_share_restore(tl_mk_share *s, const void *data, size_t len, char *err, size_t errlen)
{
    share_reset(s);
    s->dirty = 0;
    rec r;
    if (rec_decode(data, len, &r, err, errlen) != 0) return -1;
    const char *why = r.kind != MK_STATE ? "a partial where a state was expected" : NULL;
    if (rec_check(s, &r, why, "state", err, errlen) != 0) return -1;
    s->dim = r.dim;
    s->closed_end = r.closed_end;
    s->windows = r.windows;
    s->late = r.late;
    for (int i = 0; i < r.n_times; i++) set_time(s, r.part[i], r.time[i]);
    for (int i = 0; i < r.n_win; i++) {
        win *w = r.w[i].start == INT64_MIN
            ? NULL
            : win_of(&s->open, &s->n_open, &s->cap_open, r.w[i].start, s->cfg.order);
        tl_markov_merge(w ? w->chain : s->chain, r.w[i].chain);
    }
    for (int i = 0; i < r.n_cred; i++) *credit_of(s, r.name[i]) = r.cred[i];
    rec_free(&r);
    return 0;
}
