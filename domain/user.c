/*
 * user.c -- a user's record: editing it, and its encoding (user.h).
 *
 * Encoding (version 8), all integers little-endian varints, signed ones zig-zag:
 *   u8 version | svarint timer | svarint labelled | svarint sampled | svarint first_ts
 *              | varint purchases | svarint last_purchase | f64 expected
 *              | n_ent | n_ent * (u8 dim | str id | f64 f | f64 h | svarint t)
 *              | n_tp  | n_tp  * (str event_id | str item_id | ostr category_id
 *                                 | ostr channel | u8 type | svarint ts | f32 share
 *                                 | f32 propensity | svarint dwell | ostr campaign)
 *              | n_attr | n_attr * (str event_id | str item_id | ostr category_id
 *                                   | svarint ts | f64 p_conversion | str explanation)
 *              | f64 intent | svarint intent_ts
 *              | n_pend | n_pend * (svarint ts | svarint since_ts | varint purchases | f32 z
 *                                   | f32 p | u8 flags: 1 since_purchase, 2 bought)
 *              | varint nc_len | nc_len bytes (the next-category view last published,
 *                                domain/nextcat.h; 0: none)
 * where str = varint len + bytes, ostr = varint (len+1) + bytes, 0 meaning NULL; f64 and
 * f32 are IEEE 754 little-endian. n_attr <= TL_LAST_ATTR_MAX, newest first; an
 * explanation is at most TL_LAST_ATTR_TEXT_MAX bytes; expected is in [0,
 * TL_EXPECTED_MAX]. Version 7 is version 8 without expected (decoded as 0). Version 6 is version 7 without the
 * next-category view (decoded as none). Version 5 is version 6 without the
 * intent last published (decoded as none yet). Version 4 is version 5 without a
 * touchpoint's campaign (decoded as none). Version 3 is version 4 without
 * sampled, first_ts, purchases and last_purchase (decoded as none yet), version 2 also without the n_attr section (no
 * last attributions); both still decode. Every time lies within +-TL_STORED_TIME_MAX
 * (util.h); the record-level ones, a since_ts and the intent's may be INT64_MIN, none.
 * A record outside these does not decode (the store quarantines it).
 */
#include "user.h"
#include "lib/util.h"
#include "lib/wire.h"
#include "nextcat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- record editing ---------------------------------------------------------- */

static uint32_t interest_hash(const char *id, size_t n) { return (uint32_t)tl_hash64(id, n); }

tl_interest *tl_user_find_interest(tl_user *u, tl_dim dim, const char *id)
{
    size_t n = strlen(id);
    uint32_t h = interest_hash(id, n);
    for (int i = 0; i < u->n_ent; i++) {
        tl_interest *e = &u->ent[i];
        if (e->id_hash == h && e->dim == dim && e->id_len == n && memcmp(e->id, id, n) == 0)
            return e;
    }
    return NULL;
}

/* What the allocator takes beyond the bytes asked for, per allocation (glibc: an 8-byte
 * header, sizes rounded up to 16), and the arrays' unused capacity: a record's mem counts
 * both, so that state.cache.mb bounds what the process holds, not only what it asked for
 * (measured, bench/run.py memory: without them a cache of 64 MiB held 400 MiB). */
#define MALLOC_OVERHEAD 16

/* A record without entries: the struct, its id, its slot in the store's table. */
size_t tl_user_base_mem(const char *user_id)
{
    return sizeof(tl_user) + (user_id ? strlen(user_id) + 1 : 0) + 2 * MALLOC_OVERHEAD + 16;
}

tl_interest *tl_user_add_interest(tl_user *u, tl_dim dim, const char *id)
{
    if (u->n_ent == u->cap_ent) {
        int old = u->cap_ent;
        u->cap_ent = u->cap_ent ? u->cap_ent * 2 : 4;
        u->ent = tl_xrealloc(u->ent, (size_t)u->cap_ent * sizeof(*u->ent));
        u->mem += (size_t)(u->cap_ent - old) * sizeof(*u->ent) + (old ? 0 : MALLOC_OVERHEAD);
    }
    tl_interest *e = &u->ent[u->n_ent++];
    memset(e, 0, sizeof(*e));
    size_t n = strlen(id);
    e->dim = (uint8_t)dim;
    e->id = tl_xmalloc(n + 1);
    memcpy(e->id, id, n + 1);
    e->id_len = (uint32_t)n;
    e->id_hash = interest_hash(id, n);
    u->mem += n + 1 + MALLOC_OVERHEAD;
    return e;
}

void tl_user_remove_interest(tl_user *u, int i)
{
    u->mem -= u->ent[i].id_len + 1 + MALLOC_OVERHEAD;
    free(u->ent[i].id);
    u->ent[i] = u->ent[--u->n_ent];   /* order of entries carries no meaning */
}

static size_t tp_strlen(const char *s) { return s ? strlen(s) : 0; }

/* Copies the n strings src[k] of len[k] bytes (NULL: none) into one allocation, each
 * NUL-terminated, and points dst[k] at them; src[0] must not be NULL (dst[0] owns the
 * allocation). */
static void pack(int n, const char *const *src, const uint32_t *len, char **dst)
{
    size_t total = 0;
    for (int k = 0; k < n; k++) total += src[k] ? len[k] + 1 : 0;
    char *p = tl_xmalloc(total);
    for (int k = 0; k < n; k++) {
        dst[k] = NULL;
        if (!src[k]) continue;
        dst[k] = memcpy(p, src[k], len[k]);
        p[len[k]] = '\0';
        p += len[k] + 1;
    }
}

static void tp_set(tl_journey_tp *tp, const char *event_id, const char *item_id,
                   const char *category_id, const char *channel, const char *campaign)
{
    const char *src[5] = {event_id, item_id, category_id, channel, campaign};
    char *dst[5];
    tp->key_cache[0] = tp->key_cache[1] = 0;
    for (int k = 0; k < 5; k++) tp->len[k] = (uint32_t)tp_strlen(src[k]);
    pack(5, src, tp->len, dst);
    tp->event_id = dst[0];
    tp->item_id = dst[1];
    tp->category_id = dst[2];
    tp->channel = dst[3];
    tp->campaign = dst[4];
}

/* A touchpoint's strings (one allocation); its slot is counted with the array. */
static size_t tp_mem(const tl_journey_tp *tp)
{
    return tp->len[0] + tp->len[1] + tp->len[2] + tp->len[3] + tp->len[4] + 5 + MALLOC_OVERHEAD;
}

/* Room for one more touchpoint at the end of the journey. */
static void tp_reserve(tl_user *u)
{
    int off = (int)(u->tp - u->tp_alloc);
    if (off + u->n_tp < u->cap_tp) return;
    if (off > 0 && off >= u->cap_tp / 2) {   /* slide back: amortised O(1) */
        memmove(u->tp_alloc, u->tp, (size_t)u->n_tp * sizeof(*u->tp));
    } else {
        int old = u->cap_tp;
        u->cap_tp = u->cap_tp ? u->cap_tp * 2 : 2;   /* most journeys are short */
        u->mem += (size_t)(u->cap_tp - old) * sizeof(*u->tp) + (old ? 0 : MALLOC_OVERHEAD);
        tl_journey_tp *a = tl_xmalloc((size_t)u->cap_tp * sizeof(*a));
        if (u->n_tp) memcpy(a, u->tp, (size_t)u->n_tp * sizeof(*a));
        free(u->tp_alloc);
        u->tp_alloc = a;
    }
    u->tp = u->tp_alloc;
}

int tl_user_add_tp(tl_user *u, const tl_event *ev, float share)
{
    tp_reserve(u);
    /* After every entry with ts <= ev->ts: equal ts keep arrival order. */
    int pos = u->n_tp;
    while (pos > 0 && u->tp[pos - 1].ts > ev->ts) pos--;
    memmove(&u->tp[pos + 1], &u->tp[pos], (size_t)(u->n_tp - pos) * sizeof(*u->tp));
    u->n_tp++;
    tl_journey_tp *tp = &u->tp[pos];
    tp_set(tp, ev->event_id, ev->item_id, ev->category_id, ev->channel, ev->campaign);
    tp->ts = ev->ts;
    tp->type = (uint8_t)ev->type;
    tp->share = share;
    tp->propensity = ev->has_propensity ? (float)ev->propensity : -1.0f;
    tp->dwell_ms = ev->has_dwell ? ev->dwell_ms : -1;
    u->mem += tp_mem(tp);
    return pos;
}

void tl_user_remove_tps(tl_user *u, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        u->mem -= tp_mem(&u->tp[i]);
        free(u->tp[i].event_id);
    }
    if (from == 0) u->tp += n;   /* the oldest go: no copy */
    else memmove(&u->tp[from], &u->tp[from + n], (size_t)(u->n_tp - from - n) * sizeof(*u->tp));
    u->n_tp -= n;
}

/* ---- last attributions ----------------------------------------------------------- */

static size_t attr_mem(const tl_last_attr *a)
{
    return a->len[0] + a->len[1] + a->len[2] + a->len[3] + 4 + MALLOC_OVERHEAD;
}

/* A new newest slot attr[0] (the oldest dropped when full), its strings set. */
static tl_last_attr *attr_push(tl_user *u, const char *const src[4], const uint32_t len[4])
{
    if (!u->attr) {
        u->attr = tl_xmalloc(TL_LAST_ATTR_MAX * sizeof(*u->attr));
        u->mem += TL_LAST_ATTR_MAX * sizeof(*u->attr) + MALLOC_OVERHEAD;
    }
    if (u->n_attr == TL_LAST_ATTR_MAX) {
        u->n_attr--;
        u->mem -= attr_mem(&u->attr[u->n_attr]);
        free(u->attr[u->n_attr].event_id);
    }
    memmove(&u->attr[1], &u->attr[0], (size_t)u->n_attr * sizeof(*u->attr));
    u->n_attr++;
    tl_last_attr *a = &u->attr[0];
    char *dst[4];
    memcpy(a->len, len, sizeof(a->len));
    pack(4, src, len, dst);
    a->event_id = dst[0];
    a->item_id = dst[1];
    a->category_id = dst[2];
    a->explanation = dst[3];
    u->mem += attr_mem(a);
    return a;
}

void tl_user_add_attribution(tl_user *u, const char *event_id, const char *item_id,
                             const char *category_id, int64_t ts, double p_conversion,
                             const char *explanation)
{
    const char *src[4] = {event_id ? event_id : "", item_id ? item_id : "", category_id,
                          explanation ? explanation : ""};
    uint32_t len[4] = {(uint32_t)strlen(src[0]), (uint32_t)strlen(src[1]),
                       (uint32_t)tp_strlen(category_id),
                       (uint32_t)tl_utf8_cut(src[3], TL_LAST_ATTR_TEXT_MAX)};
    tl_last_attr *a = attr_push(u, src, len);
    a->ts = ts;
    a->p_conversion = p_conversion;
}

int tl_user_add_intent_moment(tl_user *u, const tl_intent_moment *m)
{
    if (u->n_pend >= TL_INTENT_PENDING_MAX) return 0;
    if (!u->pend) {
        u->pend = tl_xmalloc(TL_INTENT_PENDING_MAX * sizeof(*u->pend));
        u->mem += TL_INTENT_PENDING_MAX * sizeof(*u->pend) + MALLOC_OVERHEAD;
    }
    u->pend[u->n_pend++] = *m;
    return 1;
}

void tl_user_set_nc(tl_user *u, const void *bytes, size_t len)
{
    if (u->nc) u->mem -= u->nc_len + MALLOC_OVERHEAD;
    free(u->nc);
    u->nc = len ? tl_xmemdup(bytes, len) : NULL;
    u->nc_len = (uint32_t)len;
    if (u->nc) u->mem += len + MALLOC_OVERHEAD;
}

void tl_user_remove_intent_moment(tl_user *u, int i)
{
    if (i < 0 || i >= u->n_pend) return;
    memmove(u->pend + i, u->pend + i + 1, (size_t)(u->n_pend - i - 1) * sizeof(*u->pend));
    u->n_pend--;
}

void tl_user_clear(tl_user *u)
{
    for (int i = 0; i < u->n_ent; i++) free(u->ent[i].id);
    for (int i = 0; i < u->n_tp; i++) free(u->tp[i].event_id);
    for (int i = 0; i < u->n_attr; i++) free(u->attr[i].event_id);
    TL_FREE_ALL(u->ent, u->tp_alloc, u->attr, u->pend, u->nc);
    u->nc = NULL;
    u->nc_len = 0;
    u->pend = NULL;
    u->n_pend = 0;
    u->ent = NULL;
    u->tp = u->tp_alloc = NULL;
    u->attr = NULL;
    u->n_ent = u->cap_ent = u->n_tp = u->cap_tp = u->n_attr = 0;
    u->mem = tl_user_base_mem(u->user_id);
}

/* ---- encoding ---------------------------------------------------------------- */

/* Encoding writes through a cursor into room reserved once per record (an upper
 * bound from the record's lengths), not through a bounds-checked append per field:
 * a flush encodes every dirty record, so this is on the state path (lib/wire.h). */
static inline char *w_str(char *p, const char *s, size_t n)
{
    return tl_wire_w_bytes(tl_wire_w_varint(p, n), s, n);
}

static inline char *w_ostr(char *p, const char *s, size_t n)
{
    return s ? tl_wire_w_bytes(tl_wire_w_varint(p, n + 1), s, n) : tl_wire_w_varint(p, 0);
}

#define STATE_VERSION 8

static char *encode_entries(const tl_user *u, char *p)
{
    *p++ = STATE_VERSION;
    /* The timer first: a restore indexes timers without decoding the rest. */
    p = tl_wire_w_svarint(p, u->timer);
    p = tl_wire_w_svarint(p, u->labelled);
    p = tl_wire_w_svarint(p, u->sampled);
    p = tl_wire_w_svarint(p, u->first_ts);
    p = tl_wire_w_varint(p, u->purchases);
    p = tl_wire_w_svarint(p, u->last_purchase);
    p = tl_wire_w_f64(p, u->expected);
    p = tl_wire_w_varint(p, (uint64_t)u->n_ent);
    for (int i = 0; i < u->n_ent; i++) {
        const tl_interest *e = &u->ent[i];
        *p++ = (char)e->dim;
        p = w_str(p, e->id, e->id_len);
        p = tl_wire_w_f64(p, e->f);
        p = tl_wire_w_f64(p, e->h);
        p = tl_wire_w_svarint(p, e->t);
    }
    return p;
}

static char *encode_tp(const tl_journey_tp *tp, char *p)
{
    p = w_str(p, tp->event_id, tp->len[0]);
    p = w_str(p, tp->item_id, tp->len[1]);
    p = w_ostr(p, tp->category_id, tp->len[2]);
    p = w_ostr(p, tp->channel, tp->len[3]);
    *p++ = (char)tp->type;
    p = tl_wire_w_svarint(p, tp->ts);
    p = tl_wire_w_f32(p, tp->share);
    p = tl_wire_w_f32(p, tp->propensity);
    p = tl_wire_w_svarint(p, tp->dwell_ms);
    return w_ostr(p, tp->campaign, tp->len[4]);
}

static char *encode_attr(const tl_last_attr *a, char *p)
{
    p = w_str(p, a->event_id, a->len[0]);
    p = w_str(p, a->item_id, a->len[1]);
    p = w_ostr(p, a->category_id, a->len[2]);
    p = tl_wire_w_svarint(p, a->ts);
    p = tl_wire_w_f64(p, a->p_conversion);
    return w_str(p, a->explanation, a->len[3]);
}

void tl_user_encode(const tl_user *u, tl_buf *b)
{
    /* u->mem covers every string byte; add the fixed-size fields and varints. */
    size_t bound = 95 + u->mem + (size_t)u->n_pend * 35 + (size_t)u->n_ent * 40 +
        (size_t)u->n_tp * 82 + (size_t)u->n_attr * 58;
    tl_buf_reserve(b, bound);
    char *p = b->data + b->len;
    p = encode_entries(u, p);
    p = tl_wire_w_varint(p, (uint64_t)u->n_tp);
    for (int i = 0; i < u->n_tp; i++) p = encode_tp(&u->tp[i], p);
    p = tl_wire_w_varint(p, (uint64_t)u->n_attr);
    for (int i = 0; i < u->n_attr; i++) p = encode_attr(&u->attr[i], p);
    p = tl_wire_w_f64(p, u->intent);
    p = tl_wire_w_svarint(p, u->intent_ts);
    p = tl_wire_w_varint(p, (uint64_t)u->n_pend);
    for (int i = 0; i < u->n_pend; i++) {
        const tl_intent_moment *m = &u->pend[i];
        p = tl_wire_w_svarint(p, m->ts);
        p = tl_wire_w_svarint(p, m->since_ts);
        p = tl_wire_w_varint(p, m->purchases);
        p = tl_wire_w_f32(p, m->z);
        p = tl_wire_w_f32(p, m->p);
        *p++ = (char)((m->since_purchase ? 1 : 0) | (m->bought ? 2 : 0));
    }
    p = w_str(p, (const char *)u->nc, u->nc_len);
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
}

size_t tl_user_encoded_bound(size_t max_string, size_t max_interests, size_t max_touchpoints)
{
    const size_t str = 10 + max_string;   /* a varint length, then the bytes */
    const size_t head = 1 + 10 + 10 + 10 + 10 + 10 + 10 + 8 + 10, ent = 1 + str + 8 + 8 + 10;
    const size_t tp = 5 * str + 1 + 10 + 4 + 4 + 10;
    const size_t attr = 3 * str + 10 + 8 + 10 + TL_LAST_ATTR_TEXT_MAX;
    return head + max_interests * ent + 10 + max_touchpoints * tp + 10 + TL_LAST_ATTR_MAX * attr +
        8 + 10 + 10 + TL_INTENT_PENDING_MAX * (10 + 10 + 10 + 4 + 4 + 1) + 10 +
        tl_nc_bound(max_string);
}

typedef tl_wire_rd rd;

/* Returns a pointer into the buffer and its length; *is_null for an absent ostr. */
static const char *get_bytes(rd *r, int optional, size_t *len, int *is_null)
{
    *is_null = 0;
    *len = 0;
    if (!optional) return tl_wire_bytes(r, len);
    uint64_t n = tl_wire_varint(r);
    if (n == 0) {   /* (also on failure: r->fail says which) */
        *is_null = 1;
        return NULL;
    }
    if (r->fail) return NULL;
    if (n - 1 > (uint64_t)(r->end - r->p)) {
        tl_wire_fail(r, "a length past the end");
        return NULL;
    }
    const char *q = (const char *)r->p;
    r->p += n - 1;
    *len = (size_t)(n - 1);
    return q;
}

/* The encodings this build reads: the current one, version 7 (no expected purchases), version 6 (no next categories), version 5 (no intent), version 4 (no
 * campaign either), version 3 (no sampled either) and version 2 (no last attributions
 * either). */
static int known_version(unsigned v) { return v >= 2 && v <= STATE_VERSION; }

static int decode_entries(tl_user *u, rd *r, size_t len)
{
    unsigned v = tl_wire_u8(r);
    if (!known_version(v)) return -1;
    u->timer = u->timer_saved = tl_wire_svarint(r);
    u->labelled = tl_wire_svarint(r);
    u->sampled = v >= 4 ? tl_wire_svarint(r) : INT64_MIN;
    u->first_ts = v >= 4 ? tl_wire_svarint(r) : INT64_MIN;
    uint64_t purchases = v >= 4 ? tl_wire_varint(r) : 0;
    if (purchases > UINT32_MAX) return -1;
    u->purchases = (uint32_t)purchases;
    u->last_purchase = v >= 4 ? tl_wire_svarint(r) : INT64_MIN;
    u->expected = v >= 8 ? tl_wire_f64(r) : 0;
    uint64_t n_ent = tl_wire_varint(r);
    if (r->fail || n_ent > len || !tl_stored_time_ok(u->timer) || !tl_stored_time_ok(u->labelled) ||
        !tl_stored_time_ok(u->sampled) || !tl_stored_time_ok(u->first_ts) ||
        !tl_stored_time_ok(u->last_purchase) ||
        !(u->expected >= 0 && u->expected <= TL_EXPECTED_MAX))
        return -1;
    for (uint64_t i = 0; i < n_ent && !r->fail; i++) {
        unsigned dim = tl_wire_u8(r);
        size_t n;
        int isnull;
        const char *id = get_bytes(r, 0, &n, &isnull);
        double f = tl_wire_f64(r), h = tl_wire_f64(r);
        int64_t t = tl_wire_svarint(r);
        if (r->fail || dim >= TL_DIM_COUNT || !tl_stored_time_set(t)) return -1;
        char *tmp = tl_xstrndup(id, n);
        tl_interest *e = tl_user_add_interest(u, (tl_dim)dim, tmp);
        free(tmp);
        e->f = f;
        e->h = h;
        e->t = t;
    }
    return r->fail ? -1 : 0;
}

/* Appends one encoded touchpoint at the end of the journey (encoded in journey order). */
static int decode_tp(tl_user *u, rd *r, unsigned version)
{
    size_t l[5] = {0};
    int isnull[5] = {0, 0, 0, 0, 1};
    const char *s[5] = {0};
    s[0] = get_bytes(r, 0, &l[0], &isnull[0]);
    s[1] = get_bytes(r, 0, &l[1], &isnull[1]);
    s[2] = get_bytes(r, 1, &l[2], &isnull[2]);
    s[3] = get_bytes(r, 1, &l[3], &isnull[3]);
    unsigned type = tl_wire_u8(r);
    int64_t ts = tl_wire_svarint(r);
    float share = tl_wire_f32(r), propensity = tl_wire_f32(r);
    int64_t dwell = tl_wire_svarint(r);
    if (version >= 5) s[4] = get_bytes(r, 1, &l[4], &isnull[4]);
    if (r->fail || type >= TL_EVENT_TYPE_COUNT || dwell < -1 || dwell > INT32_MAX ||
        !tl_stored_time_set(ts))
        return -1;
    char *c[5];
    for (int k = 0; k < 5; k++) c[k] = isnull[k] ? NULL : tl_xstrndup(s[k], l[k]);
    tp_reserve(u);
    tl_journey_tp *tp = &u->tp[u->n_tp++];
    tp_set(tp, c[0], c[1], c[2], c[3], c[4]);
    tp->ts = ts;
    tp->type = (uint8_t)type;
    tp->share = share;
    tp->propensity = propensity;
    tp->dwell_ms = (int32_t)dwell;
    u->mem += tp_mem(tp);
    for (int k = 0; k < 5; k++) free(c[k]);
    return 0;
}

/* Appends one encoded attribution (encoded newest first). */
static int decode_attr(tl_user *u, rd *r)
{
    const char *src[4];
    size_t l[4];
    int isnull[4];
    src[0] = get_bytes(r, 0, &l[0], &isnull[0]);
    src[1] = get_bytes(r, 0, &l[1], &isnull[1]);
    src[2] = get_bytes(r, 1, &l[2], &isnull[2]);
    int64_t ts = tl_wire_svarint(r);
    double p = tl_wire_f64(r);
    src[3] = get_bytes(r, 0, &l[3], &isnull[3]);
    if (r->fail || l[3] > TL_LAST_ATTR_TEXT_MAX || !tl_stored_time_set(ts)) return -1;
    uint32_t len[4] = {(uint32_t)l[0], (uint32_t)l[1], (uint32_t)l[2], (uint32_t)l[3]};
    /* pushed at the front, so the caller decodes from the oldest: see tl_user_decode */
    tl_last_attr *a = attr_push(u, src, len);
    a->ts = ts;
    a->p_conversion = p;
    return 0;
}

int tl_user_decode(tl_user *u, const void *buf, size_t len)
{
    rd r = {buf, (const unsigned char *)buf + len, 0};
    if (decode_entries(u, &r, len) != 0) return -1;
    uint64_t n_tp = tl_wire_varint(&r);
    if (r.fail || n_tp > len) return -1;
    for (uint64_t i = 0; i < n_tp; i++)
        if (decode_tp(u, &r, ((const unsigned char *)buf)[0]) != 0) return -1;
    if (((const unsigned char *)buf)[0] >= 3) {
        uint64_t n_attr = tl_wire_varint(&r);
        if (r.fail || n_attr > TL_LAST_ATTR_MAX) return -1;
        /* Newest first in the encoding, each pushed as the newest: decode into place,
         * then reverse. */
        for (uint64_t i = 0; i < n_attr; i++)
            if (decode_attr(u, &r) != 0) return -1;
        for (int i = 0, j = u->n_attr - 1; i < j; i++, j--) {
            tl_last_attr t = u->attr[i];
            u->attr[i] = u->attr[j];
            u->attr[j] = t;
        }
    }
    if (((const unsigned char *)buf)[0] >= 6) {
        u->intent = tl_wire_f64(&r);
        u->intent_ts = tl_wire_svarint(&r);
        uint64_t n_pend = tl_wire_varint(&r);
        if (r.fail || n_pend > TL_INTENT_PENDING_MAX || !tl_stored_time_ok(u->intent_ts)) return -1;
        for (uint64_t i = 0; i < n_pend; i++) {
            tl_intent_moment m;
            m.ts = tl_wire_svarint(&r);
            m.since_ts = tl_wire_svarint(&r);
            uint64_t purchases = tl_wire_varint(&r);
            m.z = tl_wire_f32(&r);
            m.p = tl_wire_f32(&r);
            unsigned flags = tl_wire_u8(&r);
            m.since_purchase = flags & 1;
            m.bought = (flags >> 1) & 1;
            if (r.fail || purchases > UINT32_MAX || flags > 3 || !isfinite(m.z) ||
                !(m.p >= 0 && m.p <= 1) || !tl_stored_time_set(m.ts) ||
                !tl_stored_time_ok(m.since_ts))
                return -1;
            m.purchases = (uint32_t)purchases;
            tl_user_add_intent_moment(u, &m);
        }
    } else {
        u->intent = 0;
        u->intent_ts = INT64_MIN;
    }
    if (((const unsigned char *)buf)[0] >= 7) {
        size_t n;
        const char *nc = tl_wire_bytes(&r, &n);
        tl_nc_view v;
        if (r.fail || (n && tl_nc_decode(&v, nc, n) != 0)) return -1;
        tl_user_set_nc(u, nc, n);
    }
    return r.fail || r.p != r.end ? -1 : 0;
}

int tl_user_encoded_timer(const void *value, size_t len, int64_t *timer)
{
    rd r = {value, (const unsigned char *)value + len, 0};
    if (!len || !known_version(tl_wire_u8(&r))) return -1;
    *timer = tl_wire_svarint(&r); /* the first field after the version */
    return r.fail ? -1 : 0;
}
