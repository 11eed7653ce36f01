/*
 * test_state.c -- domain/user.c, engine/state.c: record editing (journey order), the record encoding
 * (hand-assembled byte strings of version 3 and of version 2, which still decodes;
 * round trips with NULL/empty strings, extreme numbers and the last attributions, kept
 * to TL_LAST_ATTR_MAX with explanations cut at a UTF-8 boundary; every truncation,
 * out-of-bounds count or length and random or mutated input rejected without crashing),
 * and the store: get/flush/close/reopen with next_offset, peek, deletion of emptied
 * records, partitions kept apart, eviction under a tiny cache budget with reload, LRU
 * order, dirty records surviving until they are flushed, the over-budget signal,
 * records loaded by peek() being evicted like the others, and tl_store_read_raw (the
 * bytes last flushed, also from another thread while the owner processes and flushes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/state.h"
#include "lib/util.h"
#include "fixtures.h"

/* ---- helpers ------------------------------------------------------------------------ */

static void add_tp(tl_user *u, const char *eid, const char *item, const char *cat, const char *ch,
                   tl_event_type type, int64_t ts)
{
    tl_event ev = fx_event(eid, u->user_id, item, cat, ch, type, ts);
    tl_user_add_tp(u, &ev, -1.0f);
}

static void add_ent(tl_user *u, tl_dim dim, const char *id, double f, double h, int64_t t)
{
    tl_interest *e = tl_user_add_interest(u, dim, id);
    e->f = f;
    e->h = h;
    e->t = t;
}

static int same_dbl(double a, double b) { return memcmp(&a, &b, sizeof(a)) == 0; }

static int same_str(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

/* Field-by-field equality of two records' contents (entries in stored order). */
static void assert_same_user(const tl_user *a, const tl_user *b)
{
    if (!same_dbl(a->expected, b->expected))
        fail_msg("expected purchases: %a vs %a", a->expected, b->expected);
    assert_int_equal(a->n_ent, b->n_ent);
    for (int i = 0; i < a->n_ent; i++) {
        const tl_interest *x = &a->ent[i], *y = &b->ent[i];
        assert_int_equal(x->dim, y->dim);
        assert_string_equal(x->id, y->id);
        if (!same_dbl(x->f, y->f) || !same_dbl(x->h, y->h))
            fail_msg("entry %d: (%a, %a) vs (%a, %a)", i, x->f, x->h, y->f, y->h);
        assert_int_equal(x->t, y->t);
    }
    assert_int_equal(a->n_tp, b->n_tp);
    for (int i = 0; i < a->n_tp; i++) {
        const tl_journey_tp *x = &a->tp[i], *y = &b->tp[i];
        assert_string_equal(x->event_id, y->event_id);
        assert_string_equal(x->item_id, y->item_id);
        if (!same_str(x->category_id, y->category_id)) fail_msg("tp %d category differs", i);
        if (!same_str(x->channel, y->channel)) fail_msg("tp %d channel differs", i);
        if (!same_str(x->campaign, y->campaign)) fail_msg("tp %d campaign differs", i);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->ts, y->ts);
    }
    assert_int_equal(a->n_attr, b->n_attr);
    for (int i = 0; i < a->n_attr; i++) {
        const tl_last_attr *x = &a->attr[i], *y = &b->attr[i];
        assert_int_equal(x->len[0], y->len[0]);
        assert_memory_equal(x->event_id, y->event_id, x->len[0]);
        assert_memory_equal(x->item_id, y->item_id, x->len[1]);
        if (!same_str(x->category_id, y->category_id)) fail_msg("attr %d category differs", i);
        assert_int_equal(x->len[3], y->len[3]);
        assert_memory_equal(x->explanation, y->explanation, x->len[3]);
        assert_int_equal(x->ts, y->ts);
        if (!same_dbl(x->p_conversion, y->p_conversion)) fail_msg("attr %d p differs", i);
    }
}

/* A record using every feature of the encoding. */
static void fill_rich(tl_user *u)
{
    tl_nc_view v = {.ts = INT64_MIN,
                    .p_other = 0.25f,
                    .n = 2,
                    .n_like = 1,
                    .dim = 3,
                    .emb = {0.5f, 0.0f, -1.0f}};
    v.cat[0] = (tl_nc_entry){"4756105", 7, 0.5f};
    v.cat[1] = (tl_nc_entry){"c\xc3\xa9", 3, 0.25f};
    v.like[0] = (tl_nc_entry){"big", 3, 2.5f};
    tl_buf vb = {0};
    tl_nc_encode(&v, &vb);
    tl_user_set_nc(u, vb.data, vb.len);
    tl_buf_free(&vb);
    add_ent(u, TL_DIM_CATEGORY, "4756105", 1.5, 3.25, 1511544070000LL);
    add_ent(u, TL_DIM_ITEM, "", 0.0, -0.0, 0);                 /* empty id, -0 */
    add_ent(u, TL_DIM_CHANNEL, "app-\xc3\xa9", 1e-300, 4.9e-324, -1);   /* UTF-8, subnormal */
    add_ent(u, TL_DIM_CATEGORY, "big", 1.7976931348623157e308, 12345.678, TL_STORED_TIME_MAX);
    add_ent(u, TL_DIM_ITEM, "neg", 2.5, 0.1, -TL_STORED_TIME_MAX);
    add_tp(u, "e1", "i1", NULL, NULL, TL_IMPRESSION, 1000);
    add_tp(u, "e2", "i2", "c2", NULL, TL_CLICK, 2000);
    add_tp(u, "e3", "i3", NULL, "web", TL_ADD_TO_CART, 3000);
    add_tp(u, "e4", "i4", "", "", TL_PURCHASE, -5);            /* empty, not NULL */
    add_tp(u, "e5", "", "c5", "app", TL_FAVORITE, TL_STORED_TIME_MAX);
    {   /* one with a campaign, one with an empty one */
        tl_event ev = fx_event("e6", u->user_id, "i6", NULL, "ads", TL_IMPRESSION, 4000);
        ev.campaign = "spring-sale";
        tl_user_add_tp(u, &ev, -1.0f);
        ev.event_id = "e7";
        ev.campaign = "";
        tl_user_add_tp(u, &ev, -1.0f);
    }
    /* four attributions: the first is dropped; an explanation too long, cut before the
     * two-byte character that would cross the limit */
    char text[TL_LAST_ATTR_TEXT_MAX + 8];
    memset(text, 'x', sizeof(text));
    memcpy(text + TL_LAST_ATTR_TEXT_MAX - 1, "\xc3\xa9", 2);
    text[sizeof(text) - 1] = '\0';
    tl_user_add_attribution(u, "p0", "i0", "c0", 1, 0.5, "dropped");
    tl_user_add_attribution(u, "p1", "i1", NULL, -TL_STORED_TIME_MAX, NAN, "");
    tl_user_add_attribution(u, "p2", "", "", -7, -0.0, text);
    tl_user_add_attribution(u, "p3", "i3", "c3", TL_STORED_TIME_MAX, 0.25, "purchase of item i3");
}

/* u, a fresh user "u" given fill_rich's record, encoded into b. */
static void encode_rich(tl_user *u, tl_buf *b)
{
    fx_user_init(u, "u");
    fill_rich(u);
    tl_user_encode(u, b);
}

/* Decodes into d (made here) the first n bytes of rec as a record of the given version
 * (a copy with its version byte set so); tl_user_decode must return rc. */
static void decode_as(tl_user *d, const unsigned char *rec, size_t n, unsigned char version, int rc)
{
    unsigned char buf[160];
    assert_true(n <= sizeof(buf));
    memcpy(buf, rec, n);
    buf[0] = version;
    fx_user_init(d, "u");
    assert_int_equal(tl_user_decode(d, buf, n), rc);
}

/* ---- record editing --------------------------------------------------------------------- */

static void test_journey_order(void **state)
{
    (void)state;
    tl_user u;
    fx_user_init(&u, "u");
    add_tp(&u, "a", "i", NULL, NULL, TL_CLICK, 100);
    add_tp(&u, "c", "i", NULL, NULL, TL_CLICK, 300);
    add_tp(&u, "b", "i", NULL, NULL, TL_CLICK, 200);
    add_tp(&u, "a2", "i", NULL, NULL, TL_CLICK, 100);   /* equal ts: after a */
    add_tp(&u, "z", "i", NULL, NULL, TL_CLICK, 50);
    static const char *const want[] = {"z", "a", "a2", "b", "c"};
    assert_int_equal(u.n_tp, 5);
    for (int i = 0; i < 5; i++) assert_string_equal(u.tp[i].event_id, want[i]);
    tl_user_remove_tps(&u, 1, 2);
    assert_int_equal(u.n_tp, 3);
    assert_string_equal(u.tp[0].event_id, "z");
    assert_string_equal(u.tp[1].event_id, "b");
    assert_string_equal(u.tp[2].event_id, "c");

    add_ent(&u, TL_DIM_CATEGORY, "x", 1, 1, 1);
    add_ent(&u, TL_DIM_ITEM, "x", 2, 2, 2);
    add_ent(&u, TL_DIM_CATEGORY, "y", 3, 3, 3);
    assert_true(tl_user_find_interest(&u, TL_DIM_ITEM, "x")->f == 2);
    assert_null(tl_user_find_interest(&u, TL_DIM_CHANNEL, "x"));
    tl_user_remove_interest(&u, 0);
    assert_int_equal(u.n_ent, 2);
    assert_null(tl_user_find_interest(&u, TL_DIM_CATEGORY, "x"));
    assert_true(tl_user_find_interest(&u, TL_DIM_CATEGORY, "y")->f == 3);
    fx_user_fini(&u);
}

/* ---- encoding -------------------------------------------------------------------------- */

/* The documented layout, assembled by hand. */
static void test_encoding_bytes(void **state)
{
    (void)state;
    tl_user u;
    fx_user_init(&u, "u");
    tl_buf b = {0};
    /* version | no timer | labelled, sampled, first_ts (as the caller set them) | no
     * purchases | no entries | no
     * touchpoints | no attributions | intent 0.0 at 0 | no pending intent moments | no next
     * categories */
    u.labelled = 0;
    u.sampled = 0;
    u.first_ts = 0;
    u.last_purchase = 0;
    tl_user_encode(&u, &b);
    static const char zeros[28];   /* (and no expected purchases: f64 0.0) */
    assert_int_equal(b.len, 29);
    assert_int_equal(b.data[0], 8);
    assert_memory_equal(b.data + 1, zeros, 28);

    /* entry: dim 1 | "ab" | f 1.0 | h 2.0 | t -1 (zig-zag 1); tp: "e" | "i" | NULL |
     * "w" | type 2 | ts 64 (zig-zag 128 = 0x80 0x01) | share -1.0f | propensity -1.0f |
     * dwell -1 (zig-zag 1); timer 0 */
    add_ent(&u, TL_DIM_ITEM, "ab", 1.0, 2.0, -1);
    add_tp(&u, "e", "i", NULL, "w", TL_CLICK, 64);
    unsigned char want[160];
    size_t n = 0;
    want[n++] = 7;                       /* version */
    want[n++] = 0;                       /* timer */
    want[n++] = 0;                       /* labelled */
    want[n++] = 0;                       /* sampled */
    want[n++] = 0;                       /* first_ts */
    want[n++] = 0;                       /* purchases */
    want[n++] = 0;                       /* last_purchase */
    want[n++] = 1;                       /* n_ent */
    want[n++] = 1;                       /* dim */
    want[n++] = 2;
    want[n++] = 'a';
    want[n++] = 'b';
    const unsigned char one[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};   /* 1.0 little-endian */
    const unsigned char two[8] = {0, 0, 0, 0, 0, 0, 0x00, 0x40};   /* 2.0 */
    memcpy(want + n, one, 8);
    n += 8;
    memcpy(want + n, two, 8);
    n += 8;
    want[n++] = 1;                       /* t = -1 */
    want[n++] = 1;                       /* n_tp */
    want[n++] = 1;
    want[n++] = 'e';
    want[n++] = 1;
    want[n++] = 'i';
    want[n++] = 0;                       /* category NULL */
    want[n++] = 2;                       /* channel: len + 1 */
    want[n++] = 'w';
    want[n++] = 2;                       /* CLICK */
    want[n++] = 0x80;                    /* ts 64 */
    want[n++] = 0x01;
    const unsigned char minus_one_f[4] = {0, 0, 0x80, 0xbf};         /* -1.0f little-endian */
    memcpy(want + n, minus_one_f, 4);    /* share */
    n += 4;
    memcpy(want + n, minus_one_f, 4);    /* propensity */
    n += 4;
    want[n++] = 1;                       /* dwell -1 */
    /* version 2 ends here, but for version 5's campaign */
    const size_t n_v2 = n, camp_at = n;
    want[n++] = 0;                       /* campaign NULL */
    /* attribution: "p" | "i" | category NULL | ts -2 (zig-zag 3) | p 1.0 | "ok" */
    want[n++] = 1;                       /* n_attr */
    want[n++] = 1;
    want[n++] = 'p';
    want[n++] = 1;
    want[n++] = 'i';
    want[n++] = 0;
    want[n++] = 3;
    memcpy(want + n, one, 8);
    n += 8;
    want[n++] = 2;
    want[n++] = 'o';
    want[n++] = 'k';
    /* intent 2.0 at ts 5 (zig-zag 10); version 5 ends before it */
    const size_t n5 = n;
    memcpy(want + n, two, 8);
    n += 8;
    want[n++] = 10;
    /* a pending intent moment: ts 3 (zig-zag 6) | since_ts 1 (2) | purchases 2 | z 2.0f |
     * p 0.5f | since a purchase */
    want[n++] = 1;
    want[n++] = 6;
    want[n++] = 2;
    want[n++] = 2;
    const unsigned char two_f[4] = {0, 0, 0, 0x40}, half_f[4] = {0, 0, 0, 0x3f};
    memcpy(want + n, two_f, 4);
    n += 4;
    memcpy(want + n, half_f, 4);
    n += 4;
    want[n++] = 1;
    const size_t n6 = n;   /* version 6 ends here */
    /* the next-category view (domain/nextcat.h): format 1 | ts 4 (zig-zag 8) | p_other
     * 0.5f | one category "c" at 0.5f | no like | an embedding of 2: 2.0f, 0.5f */
    static const unsigned char view[] = {1,    8, 0, 0, 0, 0x3f, 1,    1, 'c', 0, 0,   0,
                                         0x3f, 0, 2, 0, 0, 0,    0x40, 0, 0,   0, 0x3f};
    want[n++] = sizeof(view);
    memcpy(want + n, view, sizeof(view));
    n += sizeof(view);
    tl_nc_view nv = {.ts = 4, .p_other = 0.5f, .n = 1, .dim = 2, .emb = {2.0f, 0.5f}};
    nv.cat[0] = (tl_nc_entry){"c", 1, 0.5f};
    tl_buf vb = {0};
    tl_nc_encode(&nv, &vb);
    assert_int_equal(vb.len, sizeof(view));
    assert_memory_equal(vb.data, view, sizeof(view));
    tl_user_set_nc(&u, vb.data, vb.len);
    tl_buf_free(&vb);
    u.intent = 2.0;
    u.intent_ts = 5;
    const tl_intent_moment mo = {
        .ts = 3, .since_ts = 1, .purchases = 2, .z = 2.0f, .p = 0.5f, .since_purchase = 1};
    assert_int_equal(tl_user_add_intent_moment(&u, &mo), 1);
    tl_user_add_attribution(&u, "p", "i", NULL, -2, 1.0, "ok");
    /* version 8: version 7 (want) with the expected purchases, f64 2.0, after last_purchase */
    unsigned char want8[168];
    want8[0] = 8;
    memcpy(want8 + 1, want + 1, 6);
    memcpy(want8 + 7, two, 8);
    memcpy(want8 + 15, want + 7, n - 7);
    u.expected = 2.0;
    b.len = 0;
    tl_user_encode(&u, &b);
    assert_int_equal(b.len, n + 8);
    assert_memory_equal(b.data, want8, n + 8);
    tl_user d;
    decode_as(&d, want8, n + 8, 8, 0);
    assert_same_user(&u, &d);
    fx_user_fini(&d);
    /* expected purchases below 0, past TL_EXPECTED_MAX or not a number: refused */
    const double refused[3] = {-1.0, 2 * TL_EXPECTED_MAX, NAN};
    for (int i = 0; i < 3; i++) {
        unsigned char bad8[168];
        memcpy(bad8, want8, n + 8);
        memcpy(bad8 + 7, &refused[i], 8);
        decode_as(&d, bad8, n + 8, 8, -1);
        fx_user_fini(&d);
    }
    u.expected = 0;   /* what the older versions below decode as */

    /* and the hand-made version 7 bytes decode */
    decode_as(&d, want, n, 7, 0);
    assert_same_user(&u, &d);
    assert_null(d.tp[0].category_id);
    assert_string_equal(d.tp[0].channel, "w");
    assert_null(d.tp[0].campaign);
    assert_string_equal(d.attr[0].explanation, "ok");
    assert_null(d.attr[0].category_id);
    assert_true(d.intent == 2.0 && d.intent_ts == 5);
    assert_int_equal(d.n_pend, 1);
    assert_true(d.pend[0].ts == 3 && d.pend[0].since_ts == 1 && d.pend[0].purchases == 2 &&
                d.pend[0].z == 2.0f && d.pend[0].p == 0.5f && d.pend[0].since_purchase == 1);
    assert_int_equal(d.nc_len, sizeof(view));
    assert_memory_equal(d.nc, view, sizeof(view));
    fx_user_fini(&d);

    /* a view that does not decode is refused with the record */
    unsigned char bad[160];
    memcpy(bad, want, n);
    bad[n6 + 1 + 6] = 2;   /* two categories, one there */
    decode_as(&d, bad, n, 7, -1);
    fx_user_fini(&d);

    /* a version 6 record: the same without the view, decoded as none */
    decode_as(&d, want, n6, 6, 0);
    assert_null(d.nc);
    assert_true(d.intent == 2.0 && d.n_pend == 1);
    fx_user_fini(&d);

    /* a version 5 record: the same without the intent, decoded as none yet */
    decode_as(&d, want, n5, 5, 0);
    assert_same_user(&u, &d);
    assert_true(d.intent == 0 && d.intent_ts == INT64_MIN);
    fx_user_fini(&d);
    n = n5;   /* the older versions below are made from version 5 */

    /* a version 4 record: the same without the touchpoint's campaign */
    unsigned char v4[128];
    memcpy(v4, want, camp_at);
    memcpy(v4 + camp_at, want + camp_at + 1, n - camp_at - 1);
    decode_as(&d, v4, n - 1, 4, 0);
    assert_same_user(&u, &d);
    assert_null(d.tp[0].campaign);
    fx_user_fini(&d);

    /* a version 3 record: version 4 without sampled, first_ts, purchases and
     * last_purchase (bytes 3-6), decoded as none yet */
    unsigned char old[128];
    memcpy(old, v4, 3);
    memcpy(old + 3, v4 + 7, n - 1 - 7);
    size_t n3 = n - 1 - 4, n2 = n_v2 - 4;
    decode_as(&d, old, n3, 3, 0);
    assert_true(d.sampled == INT64_MIN && d.first_ts == INT64_MIN);
    assert_int_equal(d.purchases, 0);
    assert_true(d.last_purchase == INT64_MIN);
    assert_int_equal(d.n_attr, 1);
    fx_user_fini(&d);

    /* a version 2 record: version 3 without the attributions */
    decode_as(&d, old, n2, 2, 0);
    assert_int_equal(d.n_attr, 0);
    assert_null(d.attr);
    assert_int_equal(d.n_ent, 1);
    assert_int_equal(d.n_tp, 1);
    assert_string_equal(d.tp[0].event_id, "e");
    fx_user_fini(&d);
    /* version 2 has no attribution section: its bytes are trailing garbage there, and a
     * version 3 record must have the section */
    decode_as(&d, old, n3, 2, -1);
    fx_user_fini(&d);
    decode_as(&d, old, n2, 3, -1);
    fx_user_fini(&d);
    /* re-encoding a version 2 record writes version 8: sampled and first_ts none yet
     * (INT64_MIN: 10-byte varints), no purchases, none last, no expected purchases (0.0),
     * no attributions, no intent (0.0 at INT64_MIN), no next categories */
    decode_as(&d, old, n2, 2, 0);
    b.len = 0;
    tl_user_encode(&d, &b);
    assert_int_equal(b.data[0], 8);
    assert_memory_equal(b.data + 1, old + 1, 2);
    assert_int_equal(b.len, 3 + 10 + 10 + 1 + 10 + 8 + (n2 - 3) + 1 + 1 + 8 + 10 + 1 + 1);
    assert_int_equal(b.data[23], 0);
    assert_memory_equal(b.data + 34, zeros, 8);
    assert_memory_equal(b.data + 42, old + 3, n2 - 3);
    assert_int_equal(b.data[b.len - 22], 0);   /* no campaign */
    assert_int_equal(b.data[b.len - 21], 0);   /* no attributions */
    assert_int_equal(b.data[b.len - 2], 0);    /* no pending intent moments */
    assert_int_equal(b.data[b.len - 1], 0);    /* no next categories */
    fx_user_fini(&d);
    fx_user_fini(&u);
    tl_buf_free(&b);
}

/* The last attributions: newest first, TL_LAST_ATTR_MAX kept, explanation cut at a
 * UTF-8 boundary, memory accounted. */
static void test_last_attributions(void **state)
{
    (void)state;
    tl_user u;
    fx_user_init(&u, "u");
    tl_user_clear(&u);   /* mem: the record alone */
    size_t mem0 = u.mem;
    fill_rich(&u);
    assert_int_equal(u.n_attr, TL_LAST_ATTR_MAX);
    assert_string_equal(u.attr[0].event_id, "p3");
    assert_string_equal(u.attr[1].event_id, "p2");
    assert_string_equal(u.attr[2].event_id, "p1");
    assert_null(u.attr[2].category_id);
    assert_true(isnan(u.attr[2].p_conversion));
    /* 'x' * 239 then a two-byte character that would end at byte 241: cut before it */
    assert_int_equal(u.attr[1].len[3], TL_LAST_ATTR_TEXT_MAX - 1);
    assert_int_equal(strlen(u.attr[1].explanation), TL_LAST_ATTR_TEXT_MAX - 1);
    assert_string_equal(u.attr[1].category_id, "");
    /* an ASCII explanation is cut at exactly the limit */
    char text[TL_LAST_ATTR_TEXT_MAX + 2];
    memset(text, 'y', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    tl_user_add_attribution(&u, NULL, NULL, NULL, 5, 0.1, text);
    assert_int_equal(u.attr[0].len[3], TL_LAST_ATTR_TEXT_MAX);
    assert_string_equal(u.attr[0].event_id, "");
    assert_string_equal(u.attr[1].event_id, "p3");
    assert_string_equal(u.attr[2].event_id, "p2");
    assert_true(u.mem > mem0);
    tl_user_clear(&u);
    assert_int_equal(u.mem, mem0);
    assert_int_equal(u.n_attr, 0);
    fx_user_fini(&u);
}

static void test_round_trip(void **state)
{
    (void)state;
    tl_user u, d;
    tl_buf b = {0};
    encode_rich(&u, &b);
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, b.data, b.len), 0);
    assert_same_user(&u, &d);
    /* journey order: e4 (ts -5), e1, e2, e3, e6, e7, e5; NULL and "" stay apart */
    static const char *const order[] = {"e4", "e1", "e2", "e3", "e6", "e7", "e5"};
    for (int i = 0; i < 7; i++) assert_string_equal(d.tp[i].event_id, order[i]);
    assert_null(d.tp[0].campaign);
    assert_string_equal(d.tp[4].campaign, "spring-sale");
    assert_non_null(d.tp[5].campaign);
    assert_string_equal(d.tp[5].campaign, "");
    assert_non_null(d.tp[0].category_id);
    assert_string_equal(d.tp[0].category_id, "");
    assert_non_null(d.tp[0].channel);
    assert_string_equal(d.tp[0].channel, "");
    assert_null(d.tp[1].category_id);
    assert_null(d.tp[1].channel);
    assert_string_equal(d.tp[2].category_id, "c2");
    assert_null(d.tp[2].channel);
    assert_null(d.tp[3].category_id);
    assert_string_equal(d.tp[3].channel, "web");
    assert_string_equal(d.tp[6].item_id, "");
    assert_int_equal(d.tp[6].ts, TL_STORED_TIME_MAX);
    assert_string_equal(d.ent[1].id, "");
    assert_int_equal(d.ent[3].t, TL_STORED_TIME_MAX);
    assert_int_equal(d.ent[4].t, -TL_STORED_TIME_MAX);
    assert_true(signbit(d.ent[1].h));
    assert_int_equal(d.n_attr, 3);
    assert_string_equal(d.attr[0].explanation, "purchase of item i3");
    assert_int_equal(d.attr[0].ts, TL_STORED_TIME_MAX);
    assert_true(signbit(d.attr[1].p_conversion));
    assert_int_equal(d.attr[2].ts, -TL_STORED_TIME_MAX);
    tl_nc_view v;
    assert_int_equal(d.nc_len, u.nc_len);
    assert_int_equal(tl_nc_decode(&v, d.nc, d.nc_len), 0);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.n_like, 1);
    assert_int_equal(v.dim, 3);
    assert_memory_equal(v.cat[1].id, "c\xc3\xa9", 3);
    assert_true(v.like[0].p == 2.5f && v.emb[2] == -1.0f && v.ts == INT64_MIN);
    /* encoding the decoded record gives the same bytes */
    tl_buf b2 = {0};
    tl_user_encode(&d, &b2);
    fx_same_bytes_free(&b2, &b);
    fx_user_fini(&d);
    fx_user_fini(&u);
}

/* A stored time out of +-TL_STORED_TIME_MAX (util.h) does not decode, each field on its
 * own: the stages subtract times in int64, and a damaged record must not overflow them.
 * The record-level times may also be INT64_MIN (none); a touchpoint's may not. */
static void test_decode_times_out_of_range(void **state)
{
    (void)state;
    static const int64_t bad[] = {TL_STORED_TIME_MAX + 1, -TL_STORED_TIME_MAX - 1, INT64_MAX};
    for (int field = 0; field < 6; field++)
        for (int k = 0; k < 4; k++) {
            /* k < 3: a value out of range; k == 3: INT64_MIN */
            int64_t t = k < 3 ? bad[k] : INT64_MIN;
            tl_user u;
            fx_user_init(&u, "u");
            fill_rich(&u);
            switch (field) {
            case 0: u.timer = t; break;
            case 1: u.first_ts = t; break;
            case 2: u.last_purchase = t; break;
            case 3: u.ent[0].t = t; break;
            case 4: u.tp[0].ts = t; break;
            default: u.attr[0].ts = t; break;
            }
            tl_buf b = {0};
            tl_user_encode(&u, &b);
            tl_user d;
            fx_user_init(&d, "u");
            int expect = k == 3 && field < 3 ? 0 : -1;
            if (tl_user_decode(&d, b.data, b.len) != expect)
                fail_msg("field %d, time %lld: decode did not return %d", field, (long long)t,
                         expect);
            fx_user_fini(&d);
            fx_user_fini(&u);
            tl_buf_free(&b);
        }
}

/* Every strict prefix of a valid encoding is rejected, and so is a trailing byte.
 * Each prefix is copied into a buffer of exactly its length, so a read past the end
 * is caught by the address sanitizer. */
static void test_decode_truncated(void **state)
{
    (void)state;
    tl_user u;
    tl_buf b = {0};
    encode_rich(&u, &b);
    for (size_t len = 0; len < b.len; len++) {
        unsigned char *p = tl_xmalloc(len ? len : 1);
        memcpy(p, b.data, len);
        tl_user d;
        fx_user_init(&d, "u");
        if (tl_user_decode(&d, p, len) != -1)
            fail_msg("prefix of %zu/%zu bytes accepted", len, b.len);
        fx_user_fini(&d);
        free(p);
    }
    unsigned char *p = tl_xmalloc(b.len + 1);
    memcpy(p, b.data, b.len);
    p[b.len] = 0;
    tl_user d;
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, p, b.len + 1), -1);
    fx_user_fini(&d);
    free(p);
    fx_user_fini(&u);
    tl_buf_free(&b);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint32_t rnd(void) { return (uint32_t)fx_xorshift64(&rng); }

static void test_decode_garbage(void **state)
{
    (void)state;
    int accepted = 0;
    /* random bytes, with and without a valid version byte */
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rnd() % 96;
        unsigned char *p = tl_xmalloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) p[i] = (unsigned char)rnd();
        if (len && (iter & 1)) p[0] = 1;
        if (len > 1 && (iter & 2)) p[1] = (unsigned char)(rnd() % 3);
        tl_user d;
        fx_user_init(&d, "u");
        int rc = tl_user_decode(&d, p, len);
        assert_true(rc == 0 || rc == -1);
        if (rc == 0) {
            /* whatever was accepted is a well-formed record: it re-encodes, and
             * that decodes to the same record */
            accepted++;
            tl_buf b = {0};
            tl_user_encode(&d, &b);
            tl_user d2;
            fx_user_init(&d2, "u");
            assert_int_equal(tl_user_decode(&d2, b.data, b.len), 0);
            assert_same_user(&d, &d2);
            fx_user_fini(&d2);
            tl_buf_free(&b);
        }
        fx_user_fini(&d);
        free(p);
    }
    /* mutations of a valid record: one byte changed, one byte dropped */
    tl_user u;
    tl_buf b = {0};
    encode_rich(&u, &b);
    for (size_t pos = 0; pos < b.len; pos++) {
        for (int v = 0; v < 256; v += 17) {
            unsigned char *p = tl_xmalloc(b.len);
            memcpy(p, b.data, b.len);
            p[pos] = (unsigned char)v;
            tl_user d;
            fx_user_init(&d, "u");
            int rc = tl_user_decode(&d, p, b.len);
            assert_true(rc == 0 || rc == -1);
            fx_user_fini(&d);
            /* the same buffer with byte pos removed */
            memmove(p + pos, p + pos + 1, b.len - pos - 1);
            fx_user_init(&d, "u");
            rc = tl_user_decode(&d, p, b.len - 1);
            assert_true(rc == 0 || rc == -1);
            fx_user_fini(&d);
            free(p);
        }
    }
    /* a count far beyond the input is rejected, not allocated */
    const unsigned char huge[] = {2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
    tl_user d;
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, huge, sizeof(huge)), -1);
    fx_user_fini(&d);
    /* an unknown version and an unknown dimension / event type */
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, "\x04\x00\x00\x00\x00\x00", 6), -1);
    fx_user_fini(&d);
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, "\x01\x00\x00\x00\x00", 5), -1);
    fx_user_fini(&d);
    fx_user_init(&d, "u");
    /* version | timer 0 | labelled 0 | 1 entry | dim | "" | f 0 | h 0 | t 0 | no
     * touchpoints: 24 bytes */
    unsigned char one_ent[24] = {2, 0, 0, 1, 3, 0};
    assert_int_equal(tl_user_decode(&d, one_ent, sizeof(one_ent)), -1);
    fx_user_fini(&d);
    fx_user_init(&d, "u");
    one_ent[4] = TL_DIM_CHANNEL;
    assert_int_equal(tl_user_decode(&d, one_ent, sizeof(one_ent)), 0);
    assert_int_equal(d.n_ent, 1);
    assert_int_equal(d.ent[0].dim, TL_DIM_CHANNEL);
    fx_user_fini(&d);
    fx_user_init(&d, "u");
    const unsigned char bad_type[] = {2, 0, 0, 0, 1, 1, 'e', 1, 'i', 0, 0,
                                      6, 0, 0, 0, 0, 0, 0,   0, 0,   0, 1};
    assert_int_equal(tl_user_decode(&d, bad_type, sizeof(bad_type)), -1);
    fx_user_fini(&d);
    fx_user_init(&d, "u");
    const unsigned char ok_type[] = {2, 0, 0, 0, 1, 1, 'e', 1, 'i', 0, 0,
                                     5, 0, 0, 0, 0, 0, 0,   0, 0,   0, 1};
    assert_int_equal(tl_user_decode(&d, ok_type, sizeof(ok_type)), 0);
    assert_int_equal(d.tp[0].type, TL_PURCHASE);
    fx_user_fini(&d);
    /* version 3 bounds: more attributions than are kept, an explanation over the limit */
    unsigned char attrs[3 + 2 + (TL_LAST_ATTR_MAX + 1) * 14 + TL_LAST_ATTR_TEXT_MAX + 4];
    size_t n = 0;
    attrs[n++] = 3;
    attrs[n++] = 0;
    attrs[n++] = 0;
    attrs[n++] = 0;   /* no entries */
    attrs[n++] = 0;   /* no touchpoints */
    size_t count_at = n;
    attrs[n++] = TL_LAST_ATTR_MAX;
    for (int k = 0; k < TL_LAST_ATTR_MAX; k++) {
        const unsigned char a[] = {1, 'p', 1, 'i', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(attrs + n, a, sizeof(a));
        n += sizeof(a);
    }
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, attrs, n), 0);
    assert_int_equal(d.n_attr, TL_LAST_ATTR_MAX);
    assert_int_equal(d.attr[0].ts, 1);
    fx_user_fini(&d);
    attrs[count_at] = TL_LAST_ATTR_MAX + 1;
    fx_user_init(&d, "u");
    assert_int_equal(tl_user_decode(&d, attrs, n), -1);
    fx_user_fini(&d);
    /* one attribution whose explanation is TL_LAST_ATTR_TEXT_MAX (+1) bytes */
    for (int over = 0; over <= 1; over++) {
        n = count_at;
        attrs[n++] = 1;
        const unsigned char a[] = {1, 'p', 1, 'i', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(attrs + n, a, sizeof(a));
        n += sizeof(a);
        size_t tl = TL_LAST_ATTR_TEXT_MAX + (size_t)over;
        attrs[n++] = (unsigned char)(0x80 | (tl & 0x7f));
        attrs[n++] = (unsigned char)(tl >> 7);
        memset(attrs + n, 'z', tl);
        n += tl;
        fx_user_init(&d, "u");
        assert_int_equal(tl_user_decode(&d, attrs, n), over ? -1 : 0);
        if (!over) assert_int_equal(d.attr[0].len[3], TL_LAST_ATTR_TEXT_MAX);
        fx_user_fini(&d);
    }
    fx_user_fini(&u);
    tl_buf_free(&b);
    (void)accepted;
}

/* ---- store ------------------------------------------------------------------------------ */

static tl_store *open_ok(int32_t partition, size_t cache)
{
    char err[512] = "";
    tl_store *s = tl_store_open(fx_tmpdir, partition, cache, err, sizeof(err));
    if (!s) fail_msg("open: %s", err);
    return s;
}

static void flush_ok(tl_store *s, int64_t next)
{
    char err[512] = "";
    if (tl_store_flush(s, next, err, sizeof(err)) != 0) fail_msg("flush: %s", err);
}

/* A flush with nothing dirty (a store only opened, or a partition whose batch held
 * only dead letters) records the offset and nothing else. */
static void test_store_flush_empty(void **state)
{
    (void)state;
    tl_store *s = open_ok(7, 1 << 20);
    flush_ok(s, 7);
    assert_int_equal(tl_store_next_offset(s), 7);
    flush_ok(s, 8);
    tl_store_close(s);
    s = open_ok(7, 1 << 20);
    assert_int_equal(tl_store_next_offset(s), 8);
    assert_null(tl_store_peek(s, "anyone"));
    tl_store_close(s);
}

/* An aborted transaction's changes are dropped, the stream time with them: it goes back
 * to its value at the last flush (which a reopen reads too). */
static void test_store_discard_stream_time(void **state)
{
    (void)state;
    tl_store *s = open_ok(9, 1 << 20);
    assert_true(tl_store_observe_ts(s, 100) == 100);
    tl_store_get(s, "alice");
    flush_ok(s, 1);
    assert_true(tl_store_observe_ts(s, 200) == 200);
    assert_true(tl_store_observe_ts(s, 150) == 200);
    tl_store_get(s, "bob");
    tl_store_discard_dirty(s);
    assert_true(tl_store_stream_time(s) == 100);
    assert_null(tl_store_peek(s, "bob"));
    assert_true(tl_store_observe_ts(s, 120) == 120);   /* the events read again */
    flush_ok(s, 2);
    tl_store_close(s);
    s = open_ok(9, 1 << 20);
    assert_true(tl_store_stream_time(s) == 120);
    tl_store_discard_dirty(s);
    assert_true(tl_store_stream_time(s) == 120);
    tl_store_close(s);
}

static void test_store_reopen(void **state)
{
    (void)state;
    tl_store *s = open_ok(0, 1 << 20);
    assert_int_equal(tl_store_next_offset(s), -1);
    assert_int_equal(tl_store_partition(s), 0);
    assert_null(tl_store_peek(s, "nobody"));

    tl_user *a = tl_store_get(s, "alice");
    assert_string_equal(a->user_id, "alice");
    assert_int_equal(a->n_ent + a->n_tp, 0);
    fill_rich(a);
    tl_user *b = tl_store_get(s, "bob");
    add_ent(b, TL_DIM_CATEGORY, "c", 2, 3, 4);
    assert_ptr_equal(tl_store_get(s, "alice"), a);   /* cached */
    flush_ok(s, 42);
    assert_int_equal(tl_store_next_offset(s), 42);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_created, 2);
    assert_int_equal(st.users_written, 2);
    assert_int_equal(st.flushes, 1);

    tl_user ref;
    fx_user_init(&ref, "alice");
    fill_rich(&ref);
    tl_store_close(s);

    s = open_ok(0, 1 << 20);
    assert_int_equal(tl_store_next_offset(s), 42);
    tl_user *a2 = tl_store_peek(s, "alice");
    assert_non_null(a2);
    assert_same_user(a2, &ref);
    tl_user *b2 = tl_store_get(s, "bob");
    assert_int_equal(b2->n_ent, 1);
    assert_true(b2->ent[0].f == 2 && b2->ent[0].h == 3 && b2->ent[0].t == 4);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_loaded, 2);
    assert_int_equal(st.users_created, 0);

    /* a record emptied by the stages is deleted */
    tl_user_remove_interest(b2, 0);
    flush_ok(s, 43);
    tl_store_close(s);
    s = open_ok(0, 1 << 20);
    assert_int_equal(tl_store_next_offset(s), 43);
    assert_null(tl_store_peek(s, "bob"));
    assert_non_null(tl_store_peek(s, "alice"));
    tl_store_close(s);
    fx_user_fini(&ref);
}

/* Closing without a flush loses the batch, offset included: nothing half-written. */
static void test_store_close_without_flush(void **state)
{
    (void)state;
    tl_store *s = open_ok(0, 1 << 20);
    add_ent(tl_store_get(s, "u1"), TL_DIM_CATEGORY, "c", 1, 1, 1);
    flush_ok(s, 10);
    add_ent(tl_store_get(s, "u1"), TL_DIM_CATEGORY, "d", 1, 1, 1);
    add_ent(tl_store_get(s, "u2"), TL_DIM_CATEGORY, "d", 1, 1, 1);
    tl_store_close(s);
    s = open_ok(0, 1 << 20);
    assert_int_equal(tl_store_next_offset(s), 10);
    tl_user *u = tl_store_peek(s, "u1");
    assert_non_null(u);
    assert_int_equal(u->n_ent, 1);
    assert_null(tl_store_peek(s, "u2"));
    tl_store_close(s);
}

static void test_store_partitions(void **state)
{
    (void)state;
    tl_store *p0 = open_ok(0, 1 << 20), *p1 = open_ok(1, 1 << 20);
    add_ent(tl_store_get(p0, "u"), TL_DIM_CATEGORY, "zero", 1, 1, 1);
    add_ent(tl_store_get(p1, "u"), TL_DIM_CATEGORY, "one", 1, 1, 1);
    flush_ok(p0, 5);
    flush_ok(p1, 900);
    tl_store_close(p0);
    tl_store_close(p1);
    p0 = open_ok(0, 1 << 20);
    p1 = open_ok(1, 1 << 20);
    assert_int_equal(tl_store_next_offset(p0), 5);
    assert_int_equal(tl_store_next_offset(p1), 900);
    assert_string_equal(tl_store_peek(p0, "u")->ent[0].id, "zero");
    assert_string_equal(tl_store_peek(p1, "u")->ent[0].id, "one");
    assert_int_equal(tl_store_partition(p1), 1);
    tl_store_close(p0);
    tl_store_close(p1);
}

static void fill_user_n(tl_user *u, int k)
{
    char id[32];
    for (int j = 0; j < 3; j++) {
        snprintf(id, sizeof(id), "c%d-%d", k, j);
        add_ent(u, (tl_dim)(j % 3), id, k + j * 0.5, k * 0.25, 1000 * k + j);
    }
    snprintf(id, sizeof(id), "e%d", k);
    add_tp(u, id, "item", k % 2 ? "cat" : NULL, NULL, (tl_event_type)(k % 5), 77 * k);
}

/* The stored record of user <prefix><k> equals fill_user_n(k)'s. */
static void check_nth(tl_store *s, const char *prefix, int k)
{
    char id[32];
    snprintf(id, sizeof(id), "%s%d", prefix, k);
    tl_user *u = tl_store_peek(s, id);
    assert_non_null(u);
    tl_user ref;
    fx_user_init(&ref, id);
    fill_user_n(&ref, k);
    assert_same_user(u, &ref);
    fx_user_fini(&ref);
}

/* The record of user <prefix><k>: loaded or created (get_nth), or read (peek_nth). */
static tl_user *get_nth(tl_store *s, const char *prefix, int k)
{
    char id[32];
    snprintf(id, sizeof(id), "%s%d", prefix, k);
    return tl_store_get(s, id);
}

static tl_user *peek_nth(tl_store *s, const char *prefix, int k)
{
    char id[32];
    snprintf(id, sizeof(id), "%s%d", prefix, k);
    return tl_store_peek(s, id);
}

static void test_store_eviction(void **state)
{
    (void)state;
    enum {
        N = 300
    };
    tl_store *s = open_ok(2, 1);   /* a 1-byte budget: every clean record is evicted */
    for (int k = 0; k < N; k++) fill_user_n(get_nth(s, "user-", k), k);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_evicted, 0);   /* nothing before the flush */
    assert_int_equal(st.users_cached, N);
    flush_ok(s, 1);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_evicted, N);
    assert_int_equal(st.users_cached, 0);
    assert_int_equal(st.cache_bytes, 0);

    /* reloaded from RocksDB, equal to what was written */
    for (int k = 0; k < N; k += 7) check_nth(s, "user-", k);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_loaded, (N + 6) / 7);
    tl_store_close(s);

    /* a generous budget keeps them all */
    s = open_ok(2, 64 << 20);
    for (int k = 0; k < N; k++) get_nth(s, "user-", k);
    flush_ok(s, 2);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_evicted, 0);
    assert_int_equal(st.users_cached, N);
    assert_true(st.cache_bytes > 0);
    tl_store_close(s);
}

/* Least recently used first: with room for some records, the ones touched last stay. */
static void test_store_lru_order(void **state)
{
    (void)state;
    /* measure one record's footprint with a big budget */
    tl_store *s = open_ok(3, 64 << 20);
    for (int k = 0; k < 10; k++)
        fill_user_n(get_nth(s, "u", k), 1); /* same shape: same size (ids differ by length 0) */
    flush_ok(s, 1);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    size_t per = st.cache_bytes / 10;
    tl_store_close(s);

    /* room for 4 of them after an eviction (which leaves 7/8 of the budget); touch
     * u0..u9, then u2 and u3 again */
    s = open_ok(3, per * 4 * 8 / 7 + per / 4);
    for (int k = 0; k < 10; k++) get_nth(s, "u", k);
    tl_store_get(s, "u2");
    tl_store_get(s, "u3");
    flush_ok(s, 2);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_cached, 4);
    assert_int_equal(st.users_evicted, 6);
    /* the four most recently used: u8, u9, u2, u3; peeking them loads nothing */
    uint64_t loaded = st.users_loaded;
    const char *kept[] = {"u8", "u9", "u2", "u3"};
    for (int i = 0; i < 4; i++) assert_non_null(tl_store_peek(s, kept[i]));
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_loaded, loaded);
    assert_non_null(tl_store_peek(s, "u0"));
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_loaded, loaded + 1);
    tl_store_close(s);
}

/* The budget counts what the records hold now: a dirty record's growth counts before
 * any flush (so the runtime writes and evicts in time: tl_store_room), its arrays'
 * unused capacity and the allocator's overhead are in it; the records changed since the
 * last flush may hold a quarter of it; an eviction leaves 7/8 of it. */
static void test_store_room(void **state)
{
    (void)state;
    char id[32];
    /* one record's footprint, clean, with a big budget */
    tl_store *s = open_ok(5, 64 << 20);
    fill_user_n(tl_store_get(s, "u0"), 1);
    flush_ok(s, 1);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    size_t per = st.cache_bytes;
    /* 3 interest ids, a touchpoint's strings, the record and its id: one allocation
     * each, 16 bytes of overhead or more apiece, and the arrays' slots */
    assert_true(per >=
                sizeof(tl_user) + 6 * 16 + 4 * sizeof(tl_interest) + 2 * sizeof(tl_journey_tp));
    tl_store_close(s);

    size_t budget = 8 * per;
    s = open_ok(6, budget);
    /* empty: a quarter of the budget, what the records changed before a flush may hold */
    assert_int_equal(tl_store_room(s), budget / 4);
    tl_user *u = tl_store_get(s, "grows");
    size_t room0 = tl_store_room(s);
    assert_true(room0 < budget / 4 && room0 > budget / 4 - per);
    for (int k = 0; k < 1000 && !tl_store_over_budget(s); k++) {
        snprintf(id, sizeof(id), "grows-%d", k);
        add_ent(u, TL_DIM_ITEM, id, 1, 1, k);
        assert_true(tl_store_room(s) < room0); /* the dirty record's growth counts */
    }
    assert_true(tl_store_over_budget(s));
    assert_int_equal(tl_store_room(s), 0);
    flush_ok(s, 2); /* written; the only record, so it stays however big */
    /* many small records: a flush over the budget evicts down to 7/8 of it */
    for (int k = 0; k < 30; k++) fill_user_n(get_nth(s, "v", k), 1);
    assert_true(tl_store_over_budget(s));
    flush_ok(s, 3);
    tl_store_stats_get(s, &st);
    assert_true(st.cache_bytes <= budget - budget / 8);
    assert_true(st.cache_bytes + 2 * per > budget - budget / 8); /* no more than needed */
    assert_true(tl_store_room(s) >= budget / 8);
    tl_store_close(s);
}

/* A cache squeezed (the process over its memory bound) works to its budget less the
 * squeeze, never below half of it; unsqueezed it has its whole budget back. A flush
 * evicts to 7/8 of the budget it has then. */
static void test_store_squeeze(void **state)
{
    (void)state;
    size_t budget = 1 << 20;
    tl_store *s = open_ok(7, budget);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.cache_budget, budget);
    assert_int_equal(tl_store_room(s), budget / 4);
    tl_store_squeeze(s, budget / 4);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.cache_budget, budget - budget / 4);
    assert_int_equal(tl_store_room(s), (budget - budget / 4) / 4);
    /* records past 60% of the whole budget, unsqueezed: not over it */
    tl_store_squeeze(s, 0);
    int n = 0;
    for (int64_t off = 1; st.cache_bytes < budget / 2 + budget / 10; off++) {
        for (int k = 0; k < 20; k++, n++) fill_user_n(get_nth(s, "sq", n), 1);
        flush_ok(s, off);
        tl_store_stats_get(s, &st);
    }
    assert_int_equal(st.users_evicted, 0);
    assert_false(tl_store_over_budget(s));
    /* squeezed by more than half: half of the budget, so over it, and a flush evicts
     * to 7/8 of that half */
    tl_store_squeeze(s, 10 * budget);
    assert_true(tl_store_over_budget(s));
    assert_int_equal(tl_store_room(s), 0);
    flush_ok(s, 1000);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.cache_budget, budget / 2);
    assert_true(st.users_evicted > 0);
    assert_true(st.cache_bytes <= budget / 2 - budget / 16);
    /* given back: the whole budget again */
    tl_store_squeeze(s, 0);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.cache_budget, budget);
    assert_false(tl_store_over_budget(s));
    tl_store_close(s);
}

/* Timers of records that are not cached are not held in memory: they come from the
 * store's timer keys as they fall due, merged with the cached ones' in (time, user id)
 * order, also after a reopen. */
static void test_store_timers_from_disk(void **state)
{
    (void)state;
    enum {
        N = 300
    };
    char id[32];
    tl_store *s = open_ok(7, 1); /* every clean record is evicted */
    for (int k = 0; k < N; k++) {
        snprintf(id, sizeof(id), "t%03d", k);
        tl_store_set_timer(s, tl_store_get(s, id), 1000 + (k * 37) % N); /* distinct */
    }
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.timers_queued, N);
    flush_ok(s, 1);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_cached, 0);
    assert_int_equal(st.timers_queued, 0);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { /* again from a reopened store: nothing was disarmed */
            tl_store_close(s);
            s = open_ok(7, 1);
            tl_store_stats_get(s, &st);
            assert_int_equal(st.timers_queued, 0);
        }
        /* a cached record's timer between them: merged in order */
        tl_user *c = tl_store_get(s, "cached");
        tl_store_set_timer(s, c, 1150);
        int64_t last = 0;
        char last_id[32] = "";
        int n = 0, saw_cached = 0;
        tl_user *u;
        while ((u = tl_store_next_due(s, 1000 + N)) != NULL) {
            /* (time, user id) order: "cached" before the t### of its time */
            assert_true(u->timer > last || (u->timer == last && strcmp(u->user_id, last_id) > 0));
            last = u->timer;
            snprintf(last_id, sizeof(last_id), "%s", u->user_id);
            if (!strcmp(u->user_id, "cached")) saw_cached = 1;
            else n++;
            if (pass == 0) tl_store_set_timer(s, u, 0); /* handled: disarmed */
            else u->timer = 0; /* disarmed, not written */
        }
        assert_int_equal(n, N);
        assert_true(saw_cached);
        assert_null(tl_store_next_due(s, 1000 + N));
        if (pass == 0) { /* undo: the reopened store still has every timer on disk */
            tl_store_close(s);
            s = open_ok(7, 1);
            for (int k = 0; k < N; k++) {
                snprintf(id, sizeof(id), "t%03d", k);
                u = tl_store_peek(s, id);
                assert_non_null(u);
                assert_int_equal(u->timer, 1000 + (k * 37) % N);
            }
        }
    }
    tl_store_close(s);
}

/* Records reached through get() stay in memory, intact, however far the cache is
 * over budget, until a flush has written them. */
static void test_store_dirty_not_evicted(void **state)
{
    (void)state;
    char id[32];
    tl_store *s = open_ok(4, 1);
    /* some clean records first */
    for (int k = 0; k < 50; k++) fill_user_n(get_nth(s, "old-", k), k);
    flush_ok(s, 100);

    /* a dirty record, then lots of other traffic: loads (peek) and creations (get) */
    tl_user *d = tl_store_get(s, "dirty");
    add_ent(d, TL_DIM_CATEGORY, "kept", 9, 9, 9);
    for (int k = 0; k < 50; k++) {
        snprintf(id, sizeof(id), "old-%d", k);
        assert_non_null(tl_store_peek(s, id));
        snprintf(id, sizeof(id), "new-%d", k);
        fill_user_n(tl_store_get(s, id), k);
    }
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_evicted, 50); /* only by the first flush */
    /* the pointer is still the record (the sanitizer would catch a freed one) */
    assert_ptr_equal(tl_store_get(s, "dirty"), d);
    assert_int_equal(d->n_ent, 1);
    assert_string_equal(d->ent[0].id, "kept");
    add_ent(d, TL_DIM_CATEGORY, "kept2", 8, 8, 8);

    flush_ok(s, 101);
    tl_store_close(s);
    s = open_ok(4, 1);
    assert_int_equal(tl_store_next_offset(s), 101);
    tl_user *r = tl_store_peek(s, "dirty");
    assert_non_null(r);
    assert_int_equal(r->n_ent, 2);
    assert_string_equal(r->ent[1].id, "kept2");
    for (int k = 0; k < 50; k += 10) check_nth(s, "new-", k);
    tl_store_close(s);
}

/* Over budget counts clean and dirty records; a flush evicts back under it. */
static void test_store_over_budget(void **state)
{
    (void)state;
    tl_store *s = open_ok(5, 1 << 20);
    fill_user_n(tl_store_get(s, "x"), 1);
    assert_false(tl_store_over_budget(s));
    flush_ok(s, 1);
    assert_false(tl_store_over_budget(s));
    tl_store_close(s);

    s = open_ok(5, 1);
    assert_false(tl_store_over_budget(s)); /* empty */
    tl_store_get(s, "x");
    assert_true(tl_store_over_budget(s)); /* a loaded, dirty record */
    flush_ok(s, 2);
    assert_false(tl_store_over_budget(s)); /* written and evicted */
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_cached, 0);
    tl_store_close(s);
}

/* Records loaded by peek() are clean cache entries like any other: with a one-byte
 * budget, the next flush evicts them, and the stats count their bytes until then. */
static void test_store_peeked_records_evicted(void **state)
{
    (void)state;
    tl_store *s = open_ok(6, 64 << 20);
    for (int k = 0; k < 20; k++) fill_user_n(get_nth(s, "p-", k), k);
    flush_ok(s, 1);
    tl_store_close(s);

    s = open_ok(6, 1);
    for (int k = 0; k < 20; k++) assert_non_null(peek_nth(s, "p-", k));
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.users_cached, 20);
    flush_ok(s, 2);
    tl_store_stats_get(s, &st);
    tl_store_close(s);
    if (st.users_cached != 0)
        fail_msg("after a flush with a 1-byte budget, %llu peeked records are still cached "
                 "(cache_bytes %zu, evicted %llu)",
                 (unsigned long long)st.users_cached, st.cache_bytes,
                 (unsigned long long)st.users_evicted);
    assert_int_equal(st.users_evicted, 20);
}

/* read_raw returns the record as last flushed: the encoding's bytes, not the batch in
 * progress; 0 for unknown users, long ids included. */
static void test_store_read_raw(void **state)
{
    (void)state;
    tl_store *s = open_ok(8, 1 << 20);
    tl_buf raw = {0}, want = {0};
    char err[256] = "";
    assert_int_equal(tl_store_read_raw(s, "alice", &raw, err, sizeof(err)), 0);
    assert_int_equal(raw.len, 0);
    tl_user *a = tl_store_get(s, "alice");
    fill_rich(a);
    assert_int_equal(tl_store_read_raw(s, "alice", &raw, err, sizeof(err)), 0); /* not flushed */
    flush_ok(s, 1);
    tl_user_encode(tl_store_peek(s, "alice"), &want);
    tl_buf_puts(&raw, "stale"); /* cleared by the call */
    assert_int_equal(tl_store_read_raw(s, "alice", &raw, err, sizeof(err)), 1);
    assert_int_equal(raw.len, want.len);
    assert_memory_equal(raw.data, want.data, want.len);
    /* a change not yet flushed is not seen */
    add_ent(tl_store_get(s, "alice"), TL_DIM_ITEM, "later", 1, 1, 1);
    assert_int_equal(tl_store_read_raw(s, "alice", &raw, err, sizeof(err)), 1);
    assert_int_equal(raw.len, want.len);
    /* an id longer than the on-stack key */
    char id[1000];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    add_ent(tl_store_get(s, id), TL_DIM_CATEGORY, "c", 1, 1, 1);
    flush_ok(s, 2);
    assert_int_equal(tl_store_read_raw(s, id, &raw, err, sizeof(err)), 1);
    tl_user d;
    fx_user_init(&d, id);
    assert_int_equal(tl_user_decode(&d, raw.data, raw.len), 0);
    assert_int_equal(d.n_ent, 1);
    fx_user_fini(&d);
    id[500] = '\0';
    assert_int_equal(tl_store_read_raw(s, id, &raw, err, sizeof(err)), 0);
    tl_store_close(s);
    tl_buf_free(&raw);
    tl_buf_free(&want);
}

struct reader {
    tl_store *s;
    atomic_int stop;
    atomic_long found;
    long bad;
    int64_t last_time;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    tl_buf raw = {0};
    char err[256];
    while (!atomic_load(&r->stop)) {
        int64_t t = tl_store_stream_time(r->s);
        if (t < r->last_time) r->bad++; /* stream time never goes back */
        r->last_time = t;
        int rc = tl_store_read_raw(r->s, "hot", &raw, err, sizeof(err));
        if (rc == 1) {
            tl_user d;
            fx_user_init(&d, "hot");
            if (tl_user_decode(&d, raw.data, raw.len) != 0) r->bad++;
            fx_user_fini(&d);
            atomic_fetch_add(&r->found, 1);
        } else if (rc != 0) {
            r->bad++;
        }
    }
    tl_buf_free(&raw);
    return NULL;
}

/* Another thread reads records and stream time while the owner edits, flushes and
 * evicts: every record it sees decodes (the sanitizers watch the rest). */
static void test_store_read_raw_concurrent(void **state)
{
    (void)state;
    tl_store *s = open_ok(9, 1); /* every flush evicts: reads never meet the cache */
    struct reader r = {.s = s};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    char id[32];
    for (int k = 0; k < 400; k++) {
        tl_store_observe_ts(s, 1000 + k);
        tl_user *u = tl_store_get(s, "hot");
        snprintf(id, sizeof(id), "c%d", k % 17);
        if (!tl_user_find_interest(u, TL_DIM_CATEGORY, id))
            add_ent(u, TL_DIM_CATEGORY, id, k, k, k);
        add_tp(u, id, "item", k % 2 ? "cat" : NULL, NULL, TL_CLICK, k);
        if (u->n_tp > 20) tl_user_remove_tps(u, 0, 5);
        fill_user_n(tl_store_get(s, id), k);
        if (k % 3 == 0) flush_ok(s, k);
    }
    flush_ok(s, 400);
    while (atomic_load(&r.found) == 0) sched_yield(); /* at least one read saw the record */
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(r.bad, 0);
    assert_int_equal(tl_store_stream_time(s), 1399);
    tl_store_close(s);
}

/* The bound of an encoded record holds for the largest record the bounds allow, and is
 * not far above it. */
static void test_encoded_bound(void **state)
{
    (void)state;
    const size_t S = 300;
    const int ENT = 40, TP = 25;
    char *s = malloc(S + 1);
    tl_user u;
    fx_user_init(&u, "u");
    u.timer = u.timer_saved = INT64_MIN;
    u.labelled = u.sampled = u.first_ts = u.last_purchase = INT64_MIN;
    for (int i = 0; i < ENT; i++) {
        memset(s, 'a' + i % 26, S);
        s[S] = '\0';
        snprintf(s, 8, "%07d", i);
        s[7] = 'x';
        tl_interest *e = tl_user_add_interest(&u, TL_DIM_ITEM, s);
        e->t = INT64_MIN;
    }
    memset(s, 'z', S);
    s[S] = '\0';
    for (int i = 0; i < TP; i++) {
        tl_event ev = fx_event(s, "u", s, s, s, TL_CLICK, INT64_MIN + i);
        ev.campaign = s;
        ev.dwell_ms = INT32_MIN;
        ev.has_dwell = 1;
        tl_user_add_tp(&u, &ev, 0.5f);
    }
    char text[TL_LAST_ATTR_TEXT_MAX + 20];
    memset(text, 'e', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (int i = 0; i < TL_LAST_ATTR_MAX; i++)
        tl_user_add_attribution(&u, s, s, s, INT64_MIN, 0.5, text);
    tl_buf b = {0};
    tl_user_encode(&u, &b);
    size_t bound = tl_user_encoded_bound(S, ENT, TP);
    if (b.len > bound || b.len < bound * 9 / 10)
        fail_msg("encoded %zu bytes, bound %zu", b.len, bound);
    tl_buf_free(&b);
    fx_user_fini(&u);
    free(s);
}

static void restore_ok(tl_store *s, const char *user, const void *v, size_t len, int64_t off)
{
    char err[512] = "";
    if (tl_store_restore(s, user, strlen(user), v, len, off, err, sizeof(err)) != 0)
        fail_msg("restore %s: %s", user, err);
}

/* A stored or restored record that does not decode never stops the store: it is moved
 * aside (counted), and the user starts afresh; an older good record of the same user
 * does not come back. */
static void test_store_quarantine(void **state)
{
    (void)state;
    char err[512] = "";
    tl_buf good = {0};
    tl_user ref;
    fx_user_init(&ref, "good");
    fill_rich(&ref);
    tl_user_encode(&ref, &good);

    tl_store *s = open_ok(3, 1 << 20);
    restore_ok(s, "good", good.data, good.len, 0);
    restore_ok(s, "worse", good.data, good.len, 1); /* good first ... */
    restore_ok(s, "worse", "\x09\x00\x00", 3, 2); /* ... then an unknown version */
    /* a known version and timer, then garbage: passes the restore's cheap check */
    restore_ok(s, "bad", "\x03\x00\xff\xff\xff", 5, 3);
    if (tl_store_restore_done(s, err, sizeof(err)) != 0) fail_msg("restore_done: %s", err);
    tl_store_stats st;
    tl_store_stats_get(s, &st);
    assert_int_equal(st.quarantined, 1);
    assert_null(tl_store_peek(s, "worse"));
    assert_same_user(tl_store_peek(s, "good"), &ref);

    tl_user *b = tl_store_get(s, "bad"); /* decodes at its first use */
    assert_non_null(b);
    assert_int_equal(b->n_ent + b->n_tp + b->n_attr, 0);
    assert_int_equal(b->timer, 0);
    tl_store_stats_get(s, &st);
    assert_int_equal(st.quarantined, 2);
    add_ent(b, TL_DIM_CATEGORY, "fresh", 1, 2, 3);
    flush_ok(s, 10);
    tl_store_close(s);

    s = open_ok(3, 1 << 20); /* the fresh record replaced it */
    b = tl_store_peek(s, "bad");
    assert_non_null(b);
    assert_int_equal(b->n_ent, 1);
    assert_string_equal(b->ent[0].id, "fresh");
    tl_store_stats_get(s, &st);
    assert_int_equal(st.quarantined, 0);
    tl_store_close(s);

    /* a corrupt record read by a peek is moved aside too, and the user is unknown */
    s = open_ok(4, 1 << 20);
    restore_ok(s, "p", "\x03\x00\xff", 3, 0);
    if (tl_store_restore_done(s, err, sizeof(err)) != 0) fail_msg("restore_done: %s", err);
    assert_null(tl_store_peek(s, "p"));
    assert_null(tl_store_peek(s, "p"));
    tl_store_stats_get(s, &st);
    assert_int_equal(st.quarantined, 1);
    tl_store_close(s);
    tl_buf_free(&good);
    fx_user_fini(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journey_order),
        cmocka_unit_test(test_encoding_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_last_attributions),
        cmocka_unit_test(test_decode_times_out_of_range),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_encoded_bound),
        FX_TMPDIR_TEST(test_store_flush_empty),
        FX_TMPDIR_TEST(test_store_reopen),
        FX_TMPDIR_TEST(test_store_discard_stream_time),
        FX_TMPDIR_TEST(test_store_close_without_flush),
        FX_TMPDIR_TEST(test_store_partitions),
        FX_TMPDIR_TEST(test_store_eviction),
        FX_TMPDIR_TEST(test_store_lru_order),
        FX_TMPDIR_TEST(test_store_dirty_not_evicted),
        FX_TMPDIR_TEST(test_store_room),
        FX_TMPDIR_TEST(test_store_timers_from_disk),
        FX_TMPDIR_TEST(test_store_over_budget),
        FX_TMPDIR_TEST(test_store_squeeze),
        FX_TMPDIR_TEST(test_store_peeked_records_evicted),
        FX_TMPDIR_TEST(test_store_read_raw),
        FX_TMPDIR_TEST(test_store_read_raw_concurrent),
        FX_TMPDIR_TEST(test_store_quarantine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
