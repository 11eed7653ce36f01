/*
 * memsink.h -- an in-memory tl_sink for unit tests.
 *
 * Every emitted record is deep-copied (strings, touchpoints, credit arrays, payload
 * bytes), so a test can inspect it after the stage's arena has been reset. Records
 * are kept in emission order, one list for all kinds, so a test can compare whole
 * output sequences (ms_compare) as well as look records up by kind (ms_nth).
 *
 * Failure injection: flush() returns flush_script[k] on its k-th call (0-based) while
 * k < n_flush_script, TL_OK afterwards; every emit returns emit_rc (TL_OK unless set).
 *
 * Acknowledgements: `acked` counts the records (from the first) that are durable. A
 * successful flush() acknowledges everything. After ms_use_progress(), the sink also
 * has progress(), which acknowledges lazily: each call reports as acknowledged what
 * had been emitted MS_ACK_LAG calls earlier, or nothing at all when progress_stall is
 * set (then only flush() acknowledges), and from call progress_fail_at on (1-based;
 * 0 = never) it returns TL_ERROR.
 *
 * Header-only: every function is static inline, so a test that uses part of it
 * compiles without unused-function warnings.
 */
#ifndef TALLY_TEST_MEMSINK_H
#define TALLY_TEST_MEMSINK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/records.h"
#include "engine/sink.h"
#include "lib/util.h"

typedef enum ms_kind {
    MS_INTEREST = 0,
    MS_ATTRIBUTION,
    MS_CREDIT,
    MS_DLQ,
    MS_INTENT,
    MS_NEXTCAT,
    MS_KIND_COUNT
} ms_kind;

typedef struct ms_record {
    ms_kind kind;
    tl_interest_delta interest;     /* MS_INTEREST: strings owned */
    tl_attribution attribution;     /* MS_ATTRIBUTION: everything it points to owned */
    tl_credit_delta credit;         /* MS_CREDIT: strings owned */
    tl_dlq_record dlq;              /* MS_DLQ: strings and bytes owned */
    tl_intent_delta intent;         /* MS_INTENT: strings owned */
    tl_next_categories nextcat;     /* MS_NEXTCAT: strings and the view owned (its
                                     * category ids in nc_bytes) */
    unsigned char *nc_bytes;
} ms_record;

typedef struct memsink {
    tl_sink sink;
    ms_record *rec;
    int n, cap;
    int count[MS_KIND_COUNT];
    int flushes;                    /* flush() calls so far */
    int records_at_flush;           /* n at the last flush() returning TL_OK */
    tl_rc flush_script[16];
    int n_flush_script;
    tl_rc emit_rc;
    uint64_t acked;                 /* records acknowledged, counted from the first */
    uint64_t seen[8];               /* emitted counts at the last progress() calls */
    int progress_calls, progress_fail_at, progress_stall;
} memsink;

static inline char *ms_dup(const char *s) { return s ? tl_xstrdup(s) : NULL; }

static inline void *ms_dup_bytes(const void *p, size_t n)
{
    if (!p) return NULL;
    void *q = tl_xmalloc(n ? n : 1);
    memcpy(q, p, n);
    return q;
}

static inline ms_record *ms_push(memsink *ms, ms_kind kind)
{
    TL_GROW(ms->rec, ms->n, ms->cap, 64);
    ms_record *r = &ms->rec[ms->n++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    ms->count[kind]++;
    return r;
}

/* Makes r own what it points to: every string, touchpoint, credit array and byte
 * buffer is replaced by a copy (ms_record_free frees them). */
static inline void ms_record_own(ms_record *r)
{
    switch (r->kind) {
    case MS_INTEREST:
        r->interest.user_id = ms_dup(r->interest.user_id);
        r->interest.dim_id = ms_dup(r->interest.dim_id);
        r->interest.event_id = ms_dup(r->interest.event_id);
        r->interest.explanation = ms_dup(r->interest.explanation);
        break;
    case MS_ATTRIBUTION: {
        tl_attribution *c = &r->attribution;
        c->conversion_event_id = ms_dup(c->conversion_event_id);
        c->user_id = ms_dup(c->user_id);
        c->item_id = ms_dup(c->item_id);
        c->category_id = ms_dup(c->category_id);
        c->explanation = ms_dup(c->explanation);
        tl_touchpoint *tps = NULL;
        if (c->n_touchpoints > 0) {
            tps = tl_xcalloc((size_t)c->n_touchpoints, sizeof(*tps));
            for (int i = 0; i < c->n_touchpoints; i++) {
                tps[i] = c->touchpoints[i];
                tps[i].event_id = ms_dup(c->touchpoints[i].event_id);
                tps[i].item_id = ms_dup(c->touchpoints[i].item_id);
                tps[i].category_id = ms_dup(c->touchpoints[i].category_id);
                tps[i].channel = ms_dup(c->touchpoints[i].channel);
            }
        }
        c->touchpoints = tps;
        for (int m = 0; m < TL_M_COUNT; m++)
            c->credits[m] = c->has_method[m] && c->n_touchpoints > 0
                ? ms_dup_bytes(c->credits[m], (size_t)c->n_touchpoints * sizeof(double))
                : NULL;
        break;
    }
    case MS_CREDIT:
        r->credit.dim_id = ms_dup(r->credit.dim_id);
        r->credit.method = ms_dup(r->credit.method);
        break;
    case MS_DLQ:
        r->dlq.error = ms_dup(r->dlq.error);
        r->dlq.topic = ms_dup(r->dlq.topic);
        r->dlq.key = ms_dup_bytes(r->dlq.key, r->dlq.key_len);
        r->dlq.payload = ms_dup_bytes(r->dlq.payload, r->dlq.payload_len);
        break;
    case MS_INTENT:
        r->intent.user_id = ms_dup(r->intent.user_id);
        r->intent.event_id = ms_dup(r->intent.event_id);
        r->intent.explanation = ms_dup(r->intent.explanation);
        break;
    case MS_NEXTCAT: {
        /* the view, its category ids copied into one allocation (nc_bytes) */
        tl_nc_view *v = tl_xmemdup(r->nextcat.view, sizeof(*v));
        size_t total = 1;
        for (int i = 0; i < v->n; i++) total += v->cat[i].len;
        for (int i = 0; i < v->n_like; i++) total += v->like[i].len;
        char *pool = tl_xmalloc(total), *at = pool;
        for (int i = 0; i < v->n + v->n_like; i++) {
            tl_nc_entry *e = i < v->n ? &v->cat[i] : &v->like[i - v->n];
            memcpy(at, e->id, e->len);
            e->id = at;
            at += e->len;
        }
        r->nc_bytes = (unsigned char *)pool;
        r->nextcat.view = v;
        r->nextcat.user_id = ms_dup(r->nextcat.user_id);
        r->nextcat.event_id = ms_dup(r->nextcat.event_id);
        r->nextcat.explanation = ms_dup(r->nextcat.explanation);
        break;
    }
    default: break;
    }
}

/* Appends a copy of rec that owns what it points to; the emit callbacks' result. */
static inline tl_rc ms_add(void *ctx, const ms_record *rec)
{
    memsink *ms = ctx;
    ms_record *r = ms_push(ms, rec->kind);
    *r = *rec;
    ms_record_own(r);
    return ms->emit_rc;
}

/* ms_emit_NAME: the sink's callback for a record of type TYPE, kept as an ms_record of
 * kind TAG in its member MEMBER. */
#define MS_EMIT(name, type, tag, member)                                                           \
    static inline tl_rc ms_emit_##name(void *ctx, const type *r)                                   \
    {                                                                                              \
        return ms_add(ctx, &(ms_record){.kind = tag, .member = *r});                               \
    }

MS_EMIT(interest, tl_interest_delta, MS_INTEREST, interest)
MS_EMIT(attribution, tl_attribution, MS_ATTRIBUTION, attribution)
MS_EMIT(credit, tl_credit_delta, MS_CREDIT, credit)
MS_EMIT(dlq, tl_dlq_record, MS_DLQ, dlq)
MS_EMIT(intent, tl_intent_delta, MS_INTENT, intent)
MS_EMIT(next_categories, tl_next_categories, MS_NEXTCAT, nextcat)

static inline tl_rc ms_flush(void *ctx, int timeout_ms)
{
    (void)timeout_ms;
    memsink *ms = ctx;
    int k = ms->flushes++;
    tl_rc rc = k < ms->n_flush_script ? ms->flush_script[k] : TL_OK;
    if (rc == TL_OK) {
        ms->records_at_flush = ms->n;
        ms->acked = (uint64_t)ms->n;
    }
    return rc;
}

enum {
    MS_ACK_LAG = 5
};

static inline tl_rc ms_progress(void *ctx, uint64_t *emitted, uint64_t *acked)
{
    memsink *ms = ctx;
    int k = ms->progress_calls++;
    if (ms->progress_fail_at && ms->progress_calls >= ms->progress_fail_at) return TL_ERROR;
    ms->seen[k % 8] = (uint64_t)ms->n;
    if (!ms->progress_stall && k >= MS_ACK_LAG) {
        uint64_t then = ms->seen[(k - MS_ACK_LAG) % 8];
        if (then > ms->acked) ms->acked = then;
    }
    *emitted = (uint64_t)ms->n;
    *acked = ms->acked;
    return TL_OK;
}

static inline void ms_record_free(ms_record *r)
{
    switch (r->kind) {
    case MS_INTEREST:
        TL_FREE_ALL((char *)r->interest.user_id, (char *)r->interest.dim_id,
                    (char *)r->interest.event_id, (char *)r->interest.explanation);
        break;
    case MS_ATTRIBUTION: {
        tl_attribution *c = &r->attribution;
        TL_FREE_ALL((char *)c->conversion_event_id, (char *)c->user_id, (char *)c->item_id,
                    (char *)c->category_id, (char *)c->explanation);
        for (int i = 0; i < c->n_touchpoints; i++) {
            const tl_touchpoint *t = &c->touchpoints[i];
            TL_FREE_ALL((char *)t->event_id, (char *)t->item_id, (char *)t->category_id,
                        (char *)t->channel);
        }
        free((tl_touchpoint *)c->touchpoints);
        for (int m = 0; m < TL_M_COUNT; m++) free((double *)c->credits[m]);
        break;
    }
    case MS_CREDIT:
        free((char *)r->credit.dim_id);
        free((char *)r->credit.method);
        break;
    case MS_DLQ:
        TL_FREE_ALL((char *)r->dlq.error, (char *)r->dlq.topic, (void *)r->dlq.key,
                    (void *)r->dlq.payload);
        break;
    case MS_INTENT:
        TL_FREE_ALL((char *)r->intent.user_id, (char *)r->intent.event_id,
                    (char *)r->intent.explanation);
        break;
    case MS_NEXTCAT:
        TL_FREE_ALL((void *)r->nextcat.view, r->nc_bytes, (char *)r->nextcat.user_id,
                    (char *)r->nextcat.event_id, (char *)r->nextcat.explanation);
        break;
    default: break;
    }
}

/* Drops every record; keeps the failure script. */
static inline void ms_clear(memsink *ms)
{
    for (int i = 0; i < ms->n; i++) ms_record_free(&ms->rec[i]);
    ms->n = 0;
    memset(ms->count, 0, sizeof(ms->count));
    ms->records_at_flush = 0;
    ms->acked = 0;
    memset(ms->seen, 0, sizeof(ms->seen));
}

static inline void ms_init(memsink *ms)
{
    memset(ms, 0, sizeof(*ms));
    ms->emit_rc = TL_OK;
    ms->sink = (tl_sink){
        .name = "memory",
        .ctx = ms,
        .emit_interest = ms_emit_interest,
        .emit_attribution = ms_emit_attribution,
        .emit_credit = ms_emit_credit,
        .emit_dlq = ms_emit_dlq,
        .emit_intent = ms_emit_intent,
        .emit_next_categories = ms_emit_next_categories,
        .flush = ms_flush,
    };
}

/* Gives the sink a progress() callback: acknowledgements become asynchronous. */
static inline void ms_use_progress(memsink *ms) { ms->sink.progress = ms_progress; }

/* flush() answers rcs[0..n) on its first n calls, TL_OK afterwards. 0, or -1 (nothing
 * set) when n is not 0 to 16. */
static inline int ms_script_flushes(memsink *ms, const tl_rc *rcs, int n)
{
    if (n < 0 || (size_t)n > sizeof(ms->flush_script) / sizeof(ms->flush_script[0])) return -1;
    memcpy(ms->flush_script, rcs, (size_t)n * sizeof(*rcs));
    ms->n_flush_script = n;
    return 0;
}

static inline void ms_free(memsink *ms)
{
    ms_clear(ms);
    free(ms->rec);
    ms->rec = NULL;
    ms->cap = 0;
}

/* The i-th record (0-based) of one kind, or NULL. */
static inline const ms_record *ms_nth(const memsink *ms, ms_kind kind, int i)
{
    for (int k = 0; k < ms->n; k++)
        if (ms->rec[k].kind == kind && i-- == 0) return &ms->rec[k];
    return NULL;
}

static inline const tl_interest_delta *ms_interest(const memsink *ms, int i)
{
    const ms_record *r = ms_nth(ms, MS_INTEREST, i);
    return r ? &r->interest : NULL;
}

static inline const tl_attribution *ms_attribution(const memsink *ms, int i)
{
    const ms_record *r = ms_nth(ms, MS_ATTRIBUTION, i);
    return r ? &r->attribution : NULL;
}

/* ---- comparison: exact, doubles bit for bit ------------------------------------- */

static inline int ms_str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static inline int ms_dbl_eq(double a, double b) { return memcmp(&a, &b, sizeof(double)) == 0; }

/* 1 when equal; otherwise 0 with the first differing field named in why. */
static inline int ms_record_eq(const ms_record *a, const ms_record *b, char *why, size_t whylen)
{
#define MS_DIFF(name)                                                                              \
    do {                                                                                           \
        snprintf(why, whylen, "%s", name);                                                         \
        return 0;                                                                                  \
    } while (0)
    if (a->kind != b->kind) MS_DIFF("kind");
    switch (a->kind) {
    case MS_INTEREST: {
        const tl_interest_delta *x = &a->interest, *y = &b->interest;
        if (!ms_str_eq(x->user_id, y->user_id)) MS_DIFF("user_id");
        if (x->dim != y->dim) MS_DIFF("dim");
        if (!ms_str_eq(x->dim_id, y->dim_id)) MS_DIFF("dim_id");
        if (!ms_str_eq(x->event_id, y->event_id)) MS_DIFF("event_id");
        if (x->ts != y->ts) MS_DIFF("ts");
        if (!ms_dbl_eq(x->f, y->f)) MS_DIFF("f");
        if (!ms_dbl_eq(x->h, y->h)) MS_DIFF("h");
        if (!ms_dbl_eq(x->weight_before, y->weight_before)) MS_DIFF("weight_before");
        if (!ms_dbl_eq(x->weight_after, y->weight_after)) MS_DIFF("weight_after");
        if (!ms_dbl_eq(x->decay_part, y->decay_part)) MS_DIFF("decay_part");
        if (!ms_dbl_eq(x->evidence_part, y->evidence_part)) MS_DIFF("evidence_part");
        if (x->rank != y->rank) MS_DIFF("rank");
        if (!ms_str_eq(x->explanation, y->explanation)) MS_DIFF("explanation");
        return 1;
    }
    case MS_ATTRIBUTION: {
        const tl_attribution *x = &a->attribution, *y = &b->attribution;
        if (!ms_str_eq(x->conversion_event_id, y->conversion_event_id))
            MS_DIFF("conversion_event_id");
        if (!ms_str_eq(x->user_id, y->user_id)) MS_DIFF("user_id");
        if (!ms_str_eq(x->item_id, y->item_id)) MS_DIFF("item_id");
        if (!ms_str_eq(x->category_id, y->category_id)) MS_DIFF("category_id");
        if (x->ts != y->ts) MS_DIFF("ts");
        if (x->has_value != y->has_value) MS_DIFF("has_value");
        if (x->has_value && !ms_dbl_eq(x->value, y->value)) MS_DIFF("value");
        if (x->n_touchpoints != y->n_touchpoints) MS_DIFF("n_touchpoints");
        for (int i = 0; i < x->n_touchpoints; i++) {
            const tl_touchpoint *p = &x->touchpoints[i], *q = &y->touchpoints[i];
            if (!ms_str_eq(p->event_id, q->event_id)) MS_DIFF("touchpoint.event_id");
            if (!ms_str_eq(p->item_id, q->item_id)) MS_DIFF("touchpoint.item_id");
            if (!ms_str_eq(p->category_id, q->category_id)) MS_DIFF("touchpoint.category_id");
            if (!ms_str_eq(p->channel, q->channel)) MS_DIFF("touchpoint.channel");
            if (p->type != q->type) MS_DIFF("touchpoint.type");
            if (p->ts != q->ts) MS_DIFF("touchpoint.ts");
        }
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!x->has_method[m] != !y->has_method[m]) MS_DIFF("has_method");
            if (!x->has_method[m]) continue;
            for (int i = 0; i < x->n_touchpoints; i++)
                if (!ms_dbl_eq(x->credits[m][i], y->credits[m][i])) MS_DIFF("credits");
        }
        if (x->has_model != y->has_model) MS_DIFF("has_model");
        if (x->has_model &&
            (!ms_dbl_eq(x->p_conversion, y->p_conversion) ||
             !ms_dbl_eq(x->p_baseline, y->p_baseline) || x->model_version != y->model_version))
            MS_DIFF("model");
        if (!ms_str_eq(x->explanation, y->explanation)) MS_DIFF("explanation");
        return 1;
    }
    case MS_CREDIT: {
        const tl_credit_delta *x = &a->credit, *y = &b->credit;
        if (x->window_start != y->window_start || x->window_end != y->window_end) MS_DIFF("window");
        if (x->dim != y->dim || !ms_str_eq(x->dim_id, y->dim_id)) MS_DIFF("dim");
        if (!ms_str_eq(x->method, y->method)) MS_DIFF("method");
        if (!ms_dbl_eq(x->credit, y->credit) || !ms_dbl_eq(x->credit_before, y->credit_before) ||
            !ms_dbl_eq(x->conversions, y->conversions))
            MS_DIFF("credit");
        if (x->has_removal_effect != y->has_removal_effect ||
            (x->has_removal_effect && !ms_dbl_eq(x->removal_effect, y->removal_effect)))
            MS_DIFF("removal_effect");
        return 1;
    }
    case MS_DLQ: {
        const tl_dlq_record *x = &a->dlq, *y = &b->dlq;
        if (x->reason != y->reason) MS_DIFF("reason");
        if (!ms_str_eq(x->error, y->error)) MS_DIFF("error");
        if (x->partition != y->partition || x->offset != y->offset) MS_DIFF("position");
        if (x->payload_len != y->payload_len ||
            (x->payload_len && memcmp(x->payload, y->payload, x->payload_len) != 0))
            MS_DIFF("payload");
        return 1;
    }
    default: MS_DIFF("unknown kind");
    }
#undef MS_DIFF
}

/* -1 when both sinks hold the same records in the same order; otherwise the index of
 * the first difference (or the shorter length), with the reason in why. */
static inline int ms_compare(const memsink *a, const memsink *b, char *why, size_t whylen)
{
    int n = a->n < b->n ? a->n : b->n;
    for (int i = 0; i < n; i++)
        if (!ms_record_eq(&a->rec[i], &b->rec[i], why, whylen)) return i;
    if (a->n != b->n) {
        snprintf(why, whylen, "record counts differ: %d vs %d", a->n, b->n);
        return n;
    }
    return -1;
}

#endif
