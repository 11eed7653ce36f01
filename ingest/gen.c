/*
 * gen.c -- the synthetic behaviour-event generator (gen.h).
 *
 * What: events shaped like the Taobao UserBehavior data, produced in time order, as a
 * tl_source or as canonical CSV.
 *
 * How: a discrete-event simulation with a fixed number K of session slots. Each slot
 * holds one session (a user, a channel, a focus category, the items seen and carted so
 * far) and the time of its next event; a binary min-heap on that time yields the next
 * event, so the output is in time order. When a session's last event is out, its slot
 * starts a new session a little later for another user. K is chosen so that the
 * expected n_events fill about span_ms:
 *     K = (n_events / session_events) * (mean session length in time) / span_ms.
 *   - Users are drawn by activity weight (lognormal, sigma = user_skew). A user has at
 *     most one session at a time (free_at[u] = ACTIVE), and the next one starts at least
 *     30 min (plus an exponential with mean 6 h) after the last ended. A drawn user who
 *     is busy or resting is redrawn a few times, then the session waits for them.
 *   - Categories have Zipf(zipf_s) popularity; each category owns a contiguous range of
 *     items (more items for more popular categories) with Zipf(zipf_s) popularity inside
 *     the category. All weighted draws use Walker/Vose alias tables: O(1) per draw, one
 *     64-bit random number (high half picks the column, low half the threshold). The
 *     items' tables are one array, one alias table per category's range.
 *   - A "fresh" item comes from the session's focus category (70%) or from a new
 *     category draw (which becomes the focus 30% of the time). Both are Zipf draws, so
 *     the share of a category among fresh items is exactly its Zipf share; re-used items
 *     (re-views, carts and favourites of viewed items, purchases of carted or viewed
 *     items) were fresh before, so the per-event share stays Zipf in expectation.
 *   - Event types: a session's first event is a BROWSE (IMPRESSION with impressions on);
 *     later events are drawn with probabilities p_t / (1 - 1/session_events) for the
 *     other types, which makes the overall rates the targets (session lengths are
 *     geometric with mean session_events, so 1/session_events of events are firsts).
 *   - Times: a browse lasts dwell_ms (lognormal, median 15 s), then a pause (exp, 6 s);
 *     other events are followed by an exp(15 s) pause. Prices are a lognormal function
 *     of a hash of the item (median 40.00), so an item always has the same price and no
 *     memory is needed. Propensity is a logistic function of a per-user hash, the
 *     session's channel and noise, in steps of 0.0001.
 *   - Randomness: xoshiro256** seeded with splitmix64 (never rand()): one stream for the
 *     setup (user weights), one for the simulation.
 *
 * Invariants:
 *   - heap[0] is the slot with the smallest next-event time; every scheduled time is
 *     >= the time of the event being emitted, so ts never decreases.
 *   - free_at[u] == GEN_ACTIVE exactly while a slot holds a session of u.
 *   - memory: alias tables (8 B per user, item, category, channel) + free_at (8 B per
 *     user) + K slots; nothing grows with n_events.
 *
 * Alternatives rejected:
 *   - Iterating users and writing each one's journey: gives per-user order but not a
 *     global time order, which a stream replay needs; sorting 10M events costs memory.
 *   - Rejection-inversion Zipf sampling (Hoermann): no tables, but a pow() per draw and
 *     no easy per-category item ranges; the tables cost 8 B per item.
 *   - Independent event types per event: puts purchases before any browse; the funnel
 *     needs session state.
 */
#include "gen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/rng.h"

#define GEN_ACTIVE INT64_MAX
#define GEN_SEEN 6
#define GEN_CART 3
#define GEN_IMP 4
#define GEN_MAX_K (1u << 20)

/* ---- randomness: lib/rng.h ----------------------------------------------------- */

static double rng_normal(gen_rng *r)
{
    double a = rng_unit(r);
    return normal2(a, rng_unit(r));
}

/* ---- alias tables ------------------------------------------------------------------ */

typedef struct gen_alias {
    uint32_t thr;     /* keep the column when the low 32 random bits are below thr */
    uint32_t alias;   /* global index otherwise */
} gen_alias;

/* Builds t[0..n) from weights w (destroyed), for indices base..base+n-1. work: n uint32. */
static void alias_build(gen_alias *t, double *w, uint32_t n, uint32_t base, uint32_t *work)
{
    double sum = 0;
    uint32_t ns = 0, nl = n;     /* small ones from work[0], large ones down from work[n] */
    for (uint32_t i = 0; i < n; i++) sum += w[i];
    for (uint32_t i = 0; i < n; i++) {
        w[i] = w[i] * n / sum;
        t[i].thr = UINT32_MAX;
        t[i].alias = base + i;   /* a full column returns itself either way */
        if (w[i] < 1.0) work[ns++] = i;
        else work[--nl] = i;
    }
    while (ns > 0 && nl < n) {
        uint32_t s = work[--ns], l = work[nl];
        t[s].thr =
            (uint32_t)(w[s] * 4294967296.0 > 4294967295.0 ? 4294967295.0 : w[s] * 4294967296.0);
        t[s].alias = base + l;
        w[l] -= 1.0 - w[s];
        if (w[l] < 1.0) {
            nl++;
            work[ns++] = l;
        }
    }
}

static inline uint32_t alias_draw(const gen_alias *t, uint32_t n, uint32_t base, gen_rng *r)
{
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * n) >> 32);
    return (uint32_t)x < t[i].thr ? base + i : t[i].alias;
}

/* ---- the simulation ---------------------------------------------------------------- */

typedef struct gen_sess {
    uint32_t user, remaining, focus, channel, campaign;
    uint8_t first, n_seen, seen_pos, n_cart, cart_pos, n_imp, imp_pos;
    uint32_t seen_item[GEN_SEEN], seen_cat[GEN_SEEN];
    uint32_t cart_item[GEN_CART], cart_cat[GEN_CART];
    uint32_t imp_item[GEN_IMP], imp_cat[GEN_IMP];
} gen_sess;

typedef struct gen_heap_ent {
    int64_t ts;
    uint32_t slot;
} gen_heap_ent;

/* One event, before it becomes strings. */
typedef struct gen_ev {
    uint64_t n;               /* 1-based event number */
    uint32_t user, item, cat, channel;
    int32_t campaign;         /* index into camp_names; -1: none */
    tl_event_type type;
    int64_t ts;
    int32_t dwell;            /* -1: none */
    int64_t cents;            /* -1: none */
    int32_t prop;             /* in 1e-4; -1: none */
} gen_ev;

typedef struct tl_gen {
    tl_gen_params p;
    gen_rng r;
    gen_alias *users, *cats, *items, *chans;
    uint32_t *cat_off;        /* n_categories + 1 */
    int64_t *free_at;         /* per user: GEN_ACTIVE or when the next session may start */
    gen_sess *sess;
    gen_heap_ent *heap;
    uint32_t k;
    uint64_t emitted;
    tl_event_type first_type;
    double later_p[TL_EVENT_TYPE_COUNT];   /* type probabilities after the first event */
    double chan_effect[16];
    char **chan_names;
    uint8_t *chan_lens;
    char **camp_names;        /* [channel * n_campaigns + k]: "<channel>-<k + 1>" */
    double sess_len_ms;       /* expected time a session lasts */
} tl_gen;

static const char *const gen_channel_names[] = {"search", "feed",   "ads",       "email",
                                                "social", "direct", "affiliate", "push"};

/* Taobao slice rates (user_behavior_slice.csv): pv 89.2%, cart 5.5%, fav 3.07%, buy 2.26%. */
static const double gen_p_cart = 0.0550, gen_p_fav = 0.0307, gen_p_buy = 0.0226;
/* With impressions on: their share and that of clicks; the rest is scaled down. */
static const double gen_p_imp = 0.30, gen_p_click = 0.05;

void tl_gen_params_default(tl_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->seed = 42;
    p->n_events = 1000000;
    p->n_users = 100000;
    p->n_items = 50000;
    p->n_categories = 1000;
    p->n_channels = 5;
    p->start_ts = 1511539200000LL;        /* 2017-11-25T00:00:00+08:00 */
    p->span_ms = 9LL * 24 * 3600 * 1000;
    p->session_events = 8.0;
    p->zipf_s = 1.1;
    p->user_skew = 1.0;
}

int tl_gen_params_check(const tl_gen_params *p, char *err, size_t errlen)
{
    if (!p) {
        snprintf(err, errlen, "no generator parameters");
        return -1;
    }
    if (p->n_users < 1 || p->n_users > UINT32_MAX - 1) {
        snprintf(err, errlen, "n_users must be at least 1");
        return -1;
    }
    if (p->n_categories < 1) {
        snprintf(err, errlen, "n_categories must be at least 1");
        return -1;
    }
    if (p->n_items < p->n_categories || p->n_items > UINT32_MAX - 1) {
        snprintf(err, errlen, "n_items (%u) must be at least n_categories (%u)", p->n_items,
                 p->n_categories);
        return -1;
    }
    if (p->n_channels > 1000000) {
        snprintf(err, errlen, "n_channels must be at most 1000000");
        return -1;
    }
    if (p->n_campaigns > 1000 || (p->n_campaigns && !p->n_channels)) {
        snprintf(err, errlen, "n_campaigns must be at most 1000, and needs channels");
        return -1;
    }
    if (p->start_ts < 0) {
        snprintf(err, errlen, "start_ts must not be negative");
        return -1;
    }
    if (p->span_ms <= 0) {
        snprintf(err, errlen, "span_ms must be positive");
        return -1;
    }
    if (!(p->session_events >= 1.0 && p->session_events <= 1e6)) {
        snprintf(err, errlen, "session_events must be in 1..1000000");
        return -1;
    }
    if (!(p->zipf_s > 0.0 && p->zipf_s <= 10.0)) {
        snprintf(err, errlen, "zipf_s must be in (0, 10]");
        return -1;
    }
    if (!(p->user_skew >= 0.0 && p->user_skew <= 10.0)) {
        snprintf(err, errlen, "user_skew must be in [0, 10]");
        return -1;
    }
    return 0;
}

static void gen_free(tl_gen *g)
{
    if (!g) return;
    if (g->chan_names) {
        for (uint32_t i = 0; i < g->p.n_channels; i++)
            if (i >= sizeof gen_channel_names / sizeof gen_channel_names[0]) free(g->chan_names[i]);
        free(g->chan_names);
    }
    free(g->chan_lens);
    if (g->camp_names) {
        for (uint64_t i = 0; i < (uint64_t)g->p.n_channels * g->p.n_campaigns; i++)
            free(g->camp_names[i]);
        free(g->camp_names);
    }
    TL_FREE_ALL(g->users, g->cats, g->items, g->chans, g->cat_off, g->free_at, g->sess, g->heap, g);
}

static void heap_down(gen_heap_ent *h, uint32_t n, uint32_t i)
{
    gen_heap_ent e = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].ts < h[c].ts) c++;
        if (h[c].ts >= e.ts) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

/* Fills s with a new session that starts no earlier than not_before; returns its start. */
static int64_t sess_start(tl_gen *g, gen_sess *s, int64_t not_before)
{
    uint32_t u = 0;
    for (int tries = 0; tries < 4; tries++) {
        u = alias_draw(g->users, g->p.n_users, 0, &g->r);
        if (g->free_at[u] <= not_before) break;
    }
    for (int tries = 0; g->free_at[u] == GEN_ACTIVE; tries++) {
        if (tries == 64) {
            /* every draw is busy: more slots than free users; take the next free one */
            do u = (u + 1) % g->p.n_users;
            while (g->free_at[u] == GEN_ACTIVE);
            break;
        }
        u = alias_draw(g->users, g->p.n_users, 0, &g->r);
    }
    int64_t start = g->free_at[u] > not_before ? g->free_at[u] : not_before;
    g->free_at[u] = GEN_ACTIVE;
    memset(s, 0, sizeof *s);
    s->user = u;
    s->first = 1;
    double m = g->p.session_events;
    if (m <= 1.0) {
        s->remaining = 1;
    } else {
        double len = 1.0 + floor(log1p(-rng_unit(&g->r)) / log1p(-1.0 / m));
        s->remaining = len > 1e9 ? 1000000000u : (uint32_t)len;
    }
    s->focus = alias_draw(g->cats, g->p.n_categories, 0, &g->r);
    s->channel = g->p.n_channels ? alias_draw(g->chans, g->p.n_channels, 0, &g->r) : 0;
    if (g->p.n_campaigns) {
        /* From a hash, not the generator's stream: with campaigns on, the events are the
         * same as without, plus the column. */
        uint64_t h = tl_hash64(&(uint64_t[3]){g->p.seed, u, (uint64_t)start}, 24);
        s->campaign = s->channel * g->p.n_campaigns + (uint32_t)(h % g->p.n_campaigns);
    }
    return start;
}

static uint32_t cat_item(tl_gen *g, uint32_t cat)
{
    uint32_t base = g->cat_off[cat];
    return alias_draw(g->items + base, g->cat_off[cat + 1] - base, base, &g->r);
}

/* A new item for the session: from its focus category or from a new draw. */
static void fresh_item(tl_gen *g, gen_sess *s, uint32_t *item, uint32_t *cat)
{
    uint64_t x = rng_next(&g->r);
    uint32_t c;
    if (u01(x) < 0.7) {
        c = s->focus;
    } else {
        c = alias_draw(g->cats, g->p.n_categories, 0, &g->r);
        if ((x & 0xff) < 77) /* about 30%: the new category becomes the focus */
            s->focus = c;
    }
    *cat = c;
    *item = cat_item(g, c);
}

static void ring_push(uint32_t *items, uint32_t *cats, uint8_t *n, uint8_t *pos, int cap,
                      uint32_t item, uint32_t cat)
{
    items[*pos] = item;
    cats[*pos] = cat;
    *pos = (uint8_t)((*pos + 1) % cap);
    if (*n < cap) (*n)++;
}

/* With chance p, when the ring holds any, one of its n items at random into item and cat:
 * 1 if so, 0 if not (then only the chance was drawn). */
static int ring_pick(tl_gen *g, const uint32_t *items, const uint32_t *cats, uint8_t n, double p,
                     uint32_t *item, uint32_t *cat)
{
    if (!n || rng_unit(&g->r) >= p) return 0;
    uint32_t i = rng_below(&g->r, n);
    *item = items[i];
    *cat = cats[i];
    return 1;
}

/* With chance p one of the items the session has seen, else a fresh one it now has seen. */
static void seen_or_fresh(tl_gen *g, gen_sess *s, double p, uint32_t *item, uint32_t *cat)
{
    if (ring_pick(g, s->seen_item, s->seen_cat, s->n_seen, p, item, cat)) return;
    fresh_item(g, s, item, cat);
    ring_push(s->seen_item, s->seen_cat, &s->n_seen, &s->seen_pos, GEN_SEEN, *item, *cat);
}

/* Price of an item in cents: lognormal, median 40.00, from a hash of the item. */
static int64_t item_cents(const tl_gen *g, uint32_t item)
{
    uint64_t h = mix64(g->p.seed ^ 0x5851F42D4C957F2Dull ^ ((uint64_t)item << 20));
    double z = normal2(u01(h), u01(mix64(h)));
    double cents = floor(4000.0 * exp(0.9 * z) + 0.5);
    return cents < 50 ? 50 : cents > 1e9 ? 1000000000 : (int64_t)cents;
}

static int32_t event_prop(tl_gen *g, const gen_sess *s)
{
    uint64_t h = mix64(g->p.seed ^ 0x2545F4914F6CDD1Dull ^ ((uint64_t)s->user << 17));
    double zu = normal2(u01(h), u01(mix64(h)));
    double ce = g->chan_effect[s->channel % 16];
    double x = -1.0 + 0.8 * zu + ce + 0.3 * rng_normal(&g->r);
    long q = lround(10000.0 / (1.0 + exp(-x)));
    return (int32_t)(q < 1 ? 1 : q > 9999 ? 9999 : q);
}

static tl_event_type pick_type(tl_gen *g)
{
    double u = rng_unit(&g->r);
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++) {
        if (u < g->later_p[t]) return (tl_event_type)t;
        u -= g->later_p[t];
    }
    return g->first_type;
}

/* The next event; 0 when n_events are out. */
static int gen_next(tl_gen *g, gen_ev *ev)
{
    if (g->p.n_events && g->emitted >= g->p.n_events) return 0;
    uint32_t slot = g->heap[0].slot;
    gen_sess *s = &g->sess[slot];
    int64_t now = g->heap[0].ts;
    uint32_t item, cat;
    tl_event_type t = s->first ? g->first_type : pick_type(g);
    double gap;
    int landing = s->first;

    s->first = 0;
    ev->dwell = -1;
    ev->cents = -1;
    switch (t) {
    case TL_IMPRESSION:
        fresh_item(g, s, &item, &cat);
        ring_push(s->imp_item, s->imp_cat, &s->n_imp, &s->imp_pos, GEN_IMP, item, cat);
        gap = 100 + rng_exp(&g->r, 4000);
        break;
    case TL_CLICK:
        if (!ring_pick(g, s->imp_item, s->imp_cat, s->n_imp, 0.9, &item, &cat))
            fresh_item(g, s, &item, &cat);
        ring_push(s->seen_item, s->seen_cat, &s->n_seen, &s->seen_pos, GEN_SEEN, item, cat);
        gap = 500 + rng_exp(&g->r, 15000);
        break;
    case TL_BROWSE: {
        seen_or_fresh(g, s, 0.15, &item, &cat);
        double d = floor(15000.0 * exp(0.9 * rng_normal(&g->r)));
        ev->dwell = d < 300 ? 300 : d > 1800000 ? 1800000 : (int32_t)d;
        gap = ev->dwell + 200 + rng_exp(&g->r, 6000);
        break;
    }
    case TL_PURCHASE:
        if (!ring_pick(g, s->cart_item, s->cart_cat, s->n_cart, 0.6, &item, &cat) &&
            !ring_pick(g, s->seen_item, s->seen_cat, s->n_seen, 0.85, &item, &cat))
            fresh_item(g, s, &item, &cat);
        ev->cents = item_cents(g, item);
        gap = 500 + rng_exp(&g->r, 15000);
        break;
    default: /* TL_FAVORITE, TL_ADD_TO_CART */
        seen_or_fresh(g, s, 0.85, &item, &cat);
        if (t == TL_ADD_TO_CART)
            ring_push(s->cart_item, s->cart_cat, &s->n_cart, &s->cart_pos, GEN_CART, item, cat);
        gap = 500 + rng_exp(&g->r, 15000);
        break;
    }
    ev->n = ++g->emitted;
    ev->user = s->user;
    ev->item = item;
    ev->cat = cat;
    ev->channel = s->channel;
    /* paid exposures carry the session's campaign; without them, its landing event does */
    ev->campaign =
        g->p.n_campaigns && (t == TL_IMPRESSION || t == TL_CLICK || (landing && !g->p.impressions))
        ? (int32_t)s->campaign
        : -1;
    ev->type = t;
    ev->ts = now;
    ev->prop = g->p.propensity ? event_prop(g, s) : -1;

    if (--s->remaining == 0) {
        /* Sessions of a user are hours apart. */
        g->free_at[s->user] = now + 1800000 + (int64_t)rng_exp(&g->r, 6.0 * 3600000);
        g->heap[0].ts = sess_start(g, s, now + 1 + (int64_t)rng_exp(&g->r, 30000));
    } else {
        g->heap[0].ts = now + (int64_t)gap;
    }
    heap_down(g->heap, g->k, 0);
    return 1;
}

static tl_gen *gen_new(const tl_gen_params *p)
{
    char err[160];
    tl_gen *g = NULL;
    double *w = NULL;
    uint32_t *work = NULL;

    if (tl_gen_params_check(p, err, sizeof err) < 0) {
        TL_LOG_ERROR("gen", "invalid parameters: %s", err);
        goto fail;
    }
    g = tl_xcalloc(1, sizeof *g);
    g->p = *p;
    uint32_t nu = p->n_users, nc = p->n_categories, ni = p->n_items, nch = p->n_channels;
    uint32_t nmax = nu > ni ? nu : ni;
    if (nch > nmax) nmax = nch;
    w = tl_xmalloc((size_t)nmax * sizeof *w);
    work = tl_xmalloc((size_t)nmax * sizeof *work);

    /* Users: lognormal activity, from the setup stream. */
    gen_rng setup;
    rng_seed(&setup, p->seed ^ 0xA0761D6478BD642Full);
    for (uint32_t u = 0; u < nu; u++) w[u] = exp(p->user_skew * rng_normal(&setup));
    g->users = tl_xmalloc((size_t)nu * sizeof *g->users);
    alias_build(g->users, w, nu, 0, work);

    /* Categories: Zipf. */
    g->cats = tl_xmalloc((size_t)nc * sizeof *g->cats);
    for (uint32_t c = 0; c < nc; c++) w[c] = pow(c + 1.0, -p->zipf_s);
    /* Items per category: 1 each, the rest by zipf weight^0.7 (largest remainders). */
    g->cat_off = tl_xmalloc(((size_t)nc + 1) * sizeof *g->cat_off);
    {
        double sum = 0;
        uint64_t given = 0, rest = ni - nc;
        for (uint32_t c = 0; c < nc; c++) sum += pow(w[c], 0.7);
        g->cat_off[0] = 0;
        for (uint32_t c = 0; c < nc; c++) {
            uint64_t extra = (uint64_t)floor((double)rest * pow(w[c], 0.7) / sum);
            if (given + extra > rest) extra = rest - given;
            given += extra;
            work[c] = (uint32_t)(1 + extra);
        }
        for (uint32_t c = 0; given < rest; c = (c + 1) % nc, given++) work[c]++;
        for (uint32_t c = 0; c < nc; c++) g->cat_off[c + 1] = g->cat_off[c] + work[c];
    }
    alias_build(g->cats, w, nc, 0, work);

    /* Items: Zipf inside each category's range. */
    g->items = tl_xmalloc((size_t)ni * sizeof *g->items);
    for (uint32_t c = 0; c < nc; c++) {
        uint32_t base = g->cat_off[c], n = g->cat_off[c + 1] - base;
        for (uint32_t i = 0; i < n; i++) w[i] = pow(i + 1.0, -p->zipf_s);
        alias_build(g->items + base, w, n, base, work);
    }

    /* Channels: Zipf(1) over the list order; names. */
    if (nch) {
        g->chans = tl_xmalloc((size_t)nch * sizeof *g->chans);
        for (uint32_t c = 0; c < nch; c++) w[c] = 1.0 / (c + 1.0);
        alias_build(g->chans, w, nch, 0, work);
        g->chan_names = tl_xcalloc(nch, sizeof *g->chan_names);
        g->chan_lens = tl_xcalloc(nch, sizeof *g->chan_lens);
        size_t nfixed = sizeof gen_channel_names / sizeof gen_channel_names[0];
        for (uint32_t c = 0; c < nch; c++) {
            if (c < nfixed) {
                g->chan_names[c] = (char *)gen_channel_names[c];
            } else {
                char tmp[24];
                snprintf(tmp, sizeof tmp, "ch%u", c + 1);
                g->chan_names[c] = tl_xstrdup(tmp);
            }
            g->chan_lens[c] = (uint8_t)strlen(g->chan_names[c]);
        }
        if (p->n_campaigns) {
            g->camp_names = tl_xcalloc((size_t)nch * p->n_campaigns, sizeof *g->camp_names);
            for (uint32_t c = 0; c < nch; c++)
                for (uint32_t k = 0; k < p->n_campaigns; k++) {
                    char tmp[64];
                    snprintf(tmp, sizeof tmp, "%s-%u", g->chan_names[c], k + 1);
                    g->camp_names[(size_t)c * p->n_campaigns + k] = tl_xstrdup(tmp);
                }
        }
    }
    for (int i = 0; i < 16; i++) g->chan_effect[i] = 0.25 * (double)((i * 7) % 5 - 2);
    free(w);
    w = NULL;
    free(work);
    work = NULL;

    /* Event types after the first one of a session. */
    double f = 1.0 / p->session_events, later = 1.0 - f;
    double target[TL_EVENT_TYPE_COUNT] = {0};
    double scale = p->impressions ? 1.0 - gen_p_imp - gen_p_click : 1.0;
    target[TL_ADD_TO_CART] = gen_p_cart * scale;
    target[TL_FAVORITE] = gen_p_fav * scale;
    target[TL_PURCHASE] = gen_p_buy * scale;
    if (p->impressions) {
        target[TL_CLICK] = gen_p_click;
        target[TL_BROWSE] =
            scale - target[TL_ADD_TO_CART] - target[TL_FAVORITE] - target[TL_PURCHASE];
        g->first_type = TL_IMPRESSION;
    } else {
        g->first_type = TL_BROWSE;
    }
    {
        double others = 0;
        for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++)
            if (t != (int)g->first_type) others += target[t];
        /* Short sessions cannot hold all the non-first events: scale them down. */
        double k = later > 0 ? 1.0 / later : 0;
        if (others * k > 1.0) k = 1.0 / others;
        for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++)
            g->later_p[t] = t == (int)g->first_type ? 0 : target[t] * k;
    }

    /* Slots: enough concurrent sessions to spread the events over span_ms. */
    g->sess_len_ms = p->session_events * (p->impressions ? 20000.0 : 26000.0);
    double n_ev = p->n_events ? (double)p->n_events : 10.0 * nu;
    double kd = ceil(n_ev / p->session_events * g->sess_len_ms / (double)p->span_ms);
    double kmax = nu / 2 > 1 ? nu / 2 : 1;
    if (kd > kmax) kd = kmax;
    if (kd > GEN_MAX_K) kd = GEN_MAX_K;
    g->k = kd < 1 ? 1 : (uint32_t)kd;
    g->free_at = tl_xcalloc(nu, sizeof *g->free_at);
    for (uint32_t u = 0; u < nu; u++) g->free_at[u] = INT64_MIN;
    g->sess = tl_xcalloc(g->k, sizeof *g->sess);
    g->heap = tl_xmalloc((size_t)g->k * sizeof *g->heap);
    rng_seed(&g->r, p->seed);
    for (uint32_t i = 0; i < g->k; i++) {
        int64_t at = p->start_ts + (int64_t)(rng_unit(&g->r) * g->sess_len_ms);
        g->heap[i].slot = i;
        g->heap[i].ts = sess_start(g, &g->sess[i], at);
    }
    for (uint32_t i = g->k / 2 + 1; i-- > 0;) heap_down(g->heap, g->k, i);
    return g;

fail:
    free(w);
    free(work);
    gen_free(g);
    return NULL;
}

/* ---- formatting -------------------------------------------------------------------- */

static const char gen_digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes v in decimal at out, two digits per step; returns the end (no NUL). */
static inline char *put_u64(char *out, uint64_t v)
{
    char tmp[20];
    int n = 20;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        tmp[--n] = gen_digits2[d + 1];
        tmp[--n] = gen_digits2[d];
    }
    if (v >= 10) {
        tmp[--n] = gen_digits2[v * 2 + 1];
        tmp[--n] = gen_digits2[v * 2];
    } else {
        tmp[--n] = (char)('0' + v);
    }
    memcpy(out, tmp + n, (size_t)(20 - n));
    return out + (20 - n);
}

static inline char *put_id(char *out, char prefix, uint64_t v)
{
    *out++ = prefix;
    return put_u64(out, v);
}

/* ---- the source -------------------------------------------------------------------- */

static int gen_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    tl_gen *g = ctx;
    gen_ev ge;
    (void)timeout_ms;
    tl_batch_reset(b);
    if (max < 1) max = 1;
    while (b->n < max) {
        if (!gen_next(g, &ge)) return TL_SRC_EOF;
        /* "g<n>\0u<n>\0i<n>\0c<n>\0": at most 4 * 22 bytes */
        char *p = tl_arena_alloc(&b->arena, 88);
        tl_event *ev = tl_batch_push(b);
        ev->event_id = p;
        p = put_id(p, 'g', ge.n);
        *p++ = '\0';
        ev->user_id = p;
        p = put_id(p, 'u', (uint64_t)ge.user + 1);
        *p++ = '\0';
        ev->item_id = p;
        p = put_id(p, 'i', (uint64_t)ge.item + 1);
        *p++ = '\0';
        ev->category_id = p;
        p = put_id(p, 'c', (uint64_t)ge.cat + 1);
        *p = '\0';
        ev->channel = g->p.n_channels ? g->chan_names[ge.channel] : NULL;
        ev->campaign = ge.campaign >= 0 ? g->camp_names[ge.campaign] : NULL;
        ev->type = ge.type;
        ev->ts = ge.ts;
        if (ge.dwell >= 0) {
            ev->dwell_ms = ge.dwell;
            ev->has_dwell = 1;
        }
        if (ge.cents >= 0) {
            ev->value = (double)ge.cents / 100.0;
            ev->has_value = 1;
        }
        if (ge.prop >= 0) {
            ev->propensity = (double)ge.prop / 10000.0;
            ev->has_propensity = 1;
        }
        ev->partition = 0;
        ev->offset = (int64_t)ge.n;
    }
    if (g->p.n_events && g->emitted >= g->p.n_events) return TL_SRC_EOF;
    return TL_SRC_OK;
}

typedef struct gen_src {
    tl_source src; /* first */
    tl_gen *g;
} gen_src;

static int gen_src_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    return gen_poll(((gen_src *)ctx)->g, b, max, timeout_ms);
}

static void gen_src_destroy(void *ctx)
{
    gen_src *s = ctx;
    if (!s) return;
    gen_free(s->g);
    free(s);
}

tl_source *tl_gen_source_new(const tl_gen_params *p)
{
    gen_src *s = NULL;
    tl_gen *g = gen_new(p);
    if (!g) goto fail;
    s = tl_xcalloc(1, sizeof *s);
    s->g = g;
    /* no commit: nothing to acknowledge */
    s->src = (tl_source){.name = "gen", .ctx = s, .poll = gen_src_poll, .destroy = gen_src_destroy};
    return &s->src;

fail:
    gen_free(g);
    return NULL;
}

void tl_gen_source_destroy(tl_source *s) { tl_source_destroy(s); }

/* ---- CSV --------------------------------------------------------------------------- */

int tl_gen_write_csv(const tl_gen_params *p, FILE *out)
{
    enum {
        CAP = 1 << 20,
        LINE_MAX_BYTES = 512
    };
    tl_gen *g = NULL;
    char *buf = NULL, *w;
    gen_ev ev;
    int rc = -1;
    size_t type_len[TL_EVENT_TYPE_COUNT];
    const char *type_name[TL_EVENT_TYPE_COUNT];

    g = gen_new(p);
    if (!g) {
        errno = EINVAL;
        goto done;
    }
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++) {
        type_name[t] = tl_event_type_name((tl_event_type)t);
        type_len[t] = strlen(type_name[t]);
    }
    buf = tl_xmalloc(CAP);
    w = buf +
        snprintf(buf, CAP,
                 "event_id,user_id,item_id,category_id,type,ts,channel,"
                 "dwell_ms,value%s%s\n",
                 p->propensity ? ",propensity" : "", p->n_campaigns ? ",campaign" : "");
    while (gen_next(g, &ev)) {
        w = put_id(w, 'g', ev.n);
        *w++ = ',';
        w = put_id(w, 'u', (uint64_t)ev.user + 1);
        *w++ = ',';
        w = put_id(w, 'i', (uint64_t)ev.item + 1);
        *w++ = ',';
        w = put_id(w, 'c', (uint64_t)ev.cat + 1);
        *w++ = ',';
        memcpy(w, type_name[ev.type], type_len[ev.type]);
        w += type_len[ev.type];
        *w++ = ',';
        w = put_u64(w, (uint64_t)ev.ts);
        *w++ = ',';
        if (p->n_channels) {
            memcpy(w, g->chan_names[ev.channel], g->chan_lens[ev.channel]);
            w += g->chan_lens[ev.channel];
        }
        *w++ = ',';
        if (ev.dwell >= 0) w = put_u64(w, (uint64_t)ev.dwell);
        *w++ = ',';
        if (ev.cents >= 0) {
            w = put_u64(w, (uint64_t)ev.cents / 100);
            *w++ = '.';
            *w++ = (char)('0' + ev.cents / 10 % 10);
            *w++ = (char)('0' + ev.cents % 10);
        }
        if (p->propensity) {
            *w++ = ',';
            if (ev.prop >= 0) {
                *w++ = '0';
                *w++ = '.';
                *w++ = (char)('0' + ev.prop / 1000 % 10);
                *w++ = (char)('0' + ev.prop / 100 % 10);
                *w++ = (char)('0' + ev.prop / 10 % 10);
                *w++ = (char)('0' + ev.prop % 10);
            }
        }
        if (p->n_campaigns) {
            *w++ = ',';
            if (ev.campaign >= 0) {
                size_t l = strlen(g->camp_names[ev.campaign]);
                memcpy(w, g->camp_names[ev.campaign], l);
                w += l;
            }
        }
        *w++ = '\n';
        if ((size_t)(w - buf) > CAP - LINE_MAX_BYTES) {
            if (fwrite(buf, 1, (size_t)(w - buf), out) != (size_t)(w - buf)) goto done;
            w = buf;
        }
    }
    if (w > buf && fwrite(buf, 1, (size_t)(w - buf), out) != (size_t)(w - buf)) goto done;
    if (fflush(out) != 0 || ferror(out)) goto done;
    rc = 0;

done:
    free(buf);
    gen_free(g);
    return rc;
}
