/*
 * avro_out.c -- hand-written Avro binary encoders for the output records.
 *
 * Why not avro-c's generic value API: building an avro_value_t per record costs
 * about ten times the encoding itself, and the output path runs once per event and
 * dimension. The encoders below are straight-line code over a growable buffer.
 * Their correctness is checked by decoding their output with avro-c against the
 * schema files (tests/unit/test_sink.c), so the two cannot drift silently.
 *
 * Roll-up records are also read back (the aggregator reads its partials and, on a new
 * assignment, its totals): tl_avro_get_rollup is a bounded decoder of exactly the
 * layout tl_avro_put_rollup writes (fuzzed: tests/fuzz/fuzz_rollup.c).
 */
#include "avro_out.h"
#include "lib/wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Avro's long and double (lib/wire.h: a zig-zag varint, little-endian IEEE 754). */
static inline void put_long(tl_buf *b, int64_t v) { tl_wire_put_svarint(b, v); }
static inline void put_double(tl_buf *b, double d) { tl_wire_put_f64(b, d); }

static inline void put_string(tl_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_long(b, (int64_t)n);
    if (n) tl_buf_append(b, s, n);
}

static inline void put_opt_string(tl_buf *b, const char *s)
{
    put_long(b, s ? 1 : 0);
    if (s) put_string(b, s);
}

static inline void put_opt_double(tl_buf *b, int has, double d)
{
    put_long(b, has ? 1 : 0);
    if (has) put_double(b, d);
}

/* An array of n doubles: one block of n (none when n is 0), then the end. */
static inline void put_doubles(tl_buf *b, const double *v, int n)
{
    if (n > 0) {
        put_long(b, n);
        for (int i = 0; i < n; i++) put_double(b, v[i]);
    }
    put_long(b, 0);
}

/* The Confluent framing: a zero byte, then the schema id, big-endian (5 bytes). */
static char *w_frame(char *p, int32_t schema_id)
{
    *p++ = 0;
    for (int sh = 24; sh >= 0; sh -= 8) *p++ = (char)(unsigned char)(schema_id >> sh);
    return p;
}

static void put_frame(tl_buf *b, int32_t schema_id)
{
    char h[5];
    tl_buf_append(b, h, (size_t)(w_frame(h, schema_id) - h));
}

/* A string through a pointer into room already reserved: its length, then its bytes. */
static char *w_string(char *p, const char *s, size_t n)
{
    p = tl_wire_w_svarint(p, (int64_t)n);
    return tl_wire_w_bytes(p, s, n);
}

/* Once per event and dimension: the room for the whole record is reserved once, and the
 * fields are written through a pointer. */
void tl_avro_put_interest(tl_buf *b, int32_t schema_id, const tl_interest_delta *d)
{
    const char *str[5] = {d->user_id, tl_dim_name(d->dim), d->dim_id, d->event_id, d->explanation};
    size_t len[5], bound = 5 + 10 + 6 * 8 + 10;   /* frame, ts, six doubles, rank */
    for (int k = 0; k < 5; k++) {
        len[k] = str[k] ? strlen(str[k]) : 0;
        bound += 10 + len[k];
    }
    tl_buf_reserve(b, bound);
    char *p = w_frame(b->data + b->len, schema_id);
    for (int k = 0; k < 4; k++) p = w_string(p, str[k], len[k]);
    p = tl_wire_w_svarint(p, d->ts);
    p = tl_wire_w_f64(p, d->f);
    p = tl_wire_w_f64(p, d->h);
    p = tl_wire_w_f64(p, d->weight_before);
    p = tl_wire_w_f64(p, d->weight_after);
    p = tl_wire_w_f64(p, d->decay_part);
    p = tl_wire_w_f64(p, d->evidence_part);
    p = tl_wire_w_svarint(p, d->rank);
    p = w_string(p, str[4], len[4]);
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';   /* as tl_buf_append leaves it */
}

void tl_avro_put_attribution(tl_buf *b, int32_t schema_id, const tl_attribution *r)
{
    put_frame(b, schema_id);
    put_string(b, r->conversion_event_id);
    put_string(b, r->user_id);
    put_string(b, r->item_id);
    put_opt_string(b, r->category_id);
    put_long(b, r->ts);
    put_opt_double(b, r->has_value, r->value);
    if (r->n_touchpoints > 0) {
        put_long(b, r->n_touchpoints);
        for (int i = 0; i < r->n_touchpoints; i++) {
            const tl_touchpoint *t = &r->touchpoints[i];
            put_string(b, t->event_id);
            put_string(b, t->item_id);
            put_opt_string(b, t->category_id);
            put_opt_string(b, t->channel);
            put_long(b, t->type);
            put_long(b, t->ts);
            put_opt_string(b, t->campaign);
        }
    }
    put_long(b, 0);
    int n_methods = 0;
    for (int m = 0; m < TL_M_COUNT; m++) n_methods += r->has_method[m] != 0;
    if (n_methods > 0) {
        put_long(b, n_methods);
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!r->has_method[m]) continue;
            put_string(b, tl_method_name((tl_method)m));
            put_doubles(b, r->credits[m], r->n_touchpoints);
        }
    }
    put_long(b, 0);
    put_opt_double(b, r->has_model, r->p_conversion);
    put_opt_double(b, r->has_model, r->p_baseline);
    put_long(b, r->has_model ? 1 : 0);
    if (r->has_model) put_long(b, r->model_version);
    put_string(b, r->explanation);
    int n_status = 0;
    for (int m = 0; m < TL_M_COUNT; m++) n_status += r->has_model && r->model_status[m] != NULL;
    put_long(b, r->has_model ? 1 : 0);
    if (r->has_model) {
        if (n_status) {
            put_long(b, n_status);
            for (int m = 0; m < TL_M_COUNT; m++) {
                if (!r->model_status[m]) continue;
                put_string(b, tl_method_name((tl_method)m));
                put_string(b, r->model_status[m]);
            }
        }
        put_long(b, 0);
    }
    put_long(b, r->shapley_stderr ? 1 : 0);
    if (r->shapley_stderr) put_doubles(b, r->shapley_stderr, r->n_touchpoints);
}

void tl_avro_put_credit(tl_buf *b, int32_t schema_id, const tl_credit_delta *c)
{
    put_frame(b, schema_id);
    put_long(b, c->window_start);
    put_long(b, c->window_end);
    put_string(b, tl_dim_name(c->dim));
    put_string(b, c->dim_id);
    put_string(b, c->method);
    put_double(b, c->credit);
    put_double(b, c->credit_before);
    put_double(b, c->conversions);
    put_opt_double(b, c->has_removal_effect, c->removal_effect);
    put_opt_double(b, c->has_interval, c->credit_lo);
    put_opt_double(b, c->has_interval, c->credit_hi);
    put_opt_double(b, c->has_interval, c->interval_level);
}

void tl_avro_put_intent(tl_buf *b, int32_t schema_id, const tl_intent_delta *d)
{
    put_frame(b, schema_id);
    put_string(b, d->user_id);
    put_opt_string(b, d->event_id);
    put_long(b, d->ts);
    put_long(b, d->window_ms);
    put_double(b, d->p);
    put_double(b, d->previous);
    put_long(b, d->model_version);
    put_string(b, d->explanation);
}

static void put_nc_entries(tl_buf *b, const tl_nc_entry *e, int n)
{
    if (n > 0) {
        put_long(b, n);
        for (int i = 0; i < n; i++) {
            put_long(b, e[i].len);
            tl_buf_append(b, e[i].id, e[i].len);
            put_double(b, e[i].p);
        }
    }
    put_long(b, 0);
}

void tl_avro_put_next_categories(tl_buf *b, int32_t schema_id, const tl_next_categories *r)
{
    const tl_nc_view *v = r->view;
    put_frame(b, schema_id);
    put_string(b, r->user_id);
    put_string(b, r->event_id);
    put_long(b, r->ts);
    put_double(b, r->moved);
    put_nc_entries(b, v->cat, v->n);
    put_double(b, v->p_other);
    if (v->dim > 0) {
        put_long(b, v->dim);
        for (int i = 0; i < v->dim; i++) tl_wire_put_f32(b, v->emb[i]);
    }
    put_long(b, 0);
    put_nc_entries(b, v->like, v->n_like);
    put_string(b, r->explanation);
}

void tl_avro_rollup_key(tl_buf *b, tl_ru_dim dim, tl_ru_window w, const tl_rollup_row *row)
{
    char head[96];
    int n = snprintf(head, sizeof(head), "%s|%s|%" PRId64 "|", tl_ru_dim_name(dim),
                     tl_ru_window_name(w), row->window_start);
    tl_buf_append(b, head, (size_t)n);
    tl_buf_append(b, row->id, strlen(row->id));
}

/* A window's end, saturated: a start near the end of time has no later end. */
static int64_t ru_window_end(int64_t start, tl_ru_window w)
{
    int64_t len = tl_ru_window_ms(w);
    return start > INT64_MAX - len ? INT64_MAX : start + len;
}

static const char *ru_method_name(int m)
{
    return m == TL_RU_MARKOV ? "markov" : tl_method_name((tl_method)m);
}

/* Method m's cost per conversion (map 0: spend / conversions) or return on ad spend (map
 * 1: conversion value / spend, not for markov) into *v: 1, or 0 where there is none. */
static int ru_cost(const tl_rollup_row *row, int m, int map, double *v)
{
    if (!row->has[m]) return 0;
    double x = map == 0 ? tl_rollup_cost_per_conversion(row, m) : tl_rollup_roas(row, m);
    if (!isfinite(x)) return 0;
    if (v) *v = x;
    return 1;
}

void tl_avro_put_rollup(tl_buf *b, int32_t schema_id, tl_ru_dim dim, tl_ru_window w,
                        const tl_rollup_row *row)
{
    put_frame(b, schema_id);
    put_string(b, tl_ru_dim_name(dim));
    put_string(b, row->id);
    put_string(b, tl_ru_window_name(w));
    put_long(b, row->window_start);
    put_long(b, ru_window_end(row->window_start, w));
    put_long(b, (int64_t)row->purchases);
    put_long(b, (int64_t)row->touchpoints);
    int n = 0;
    for (int m = 0; m < TL_RU_METHODS; m++) n += row->has[m];
    if (n) {
        put_long(b, n);
        for (int m = 0; m < TL_RU_METHODS; m++) {
            if (!row->has[m]) continue;
            put_string(b, ru_method_name(m));
            put_double(b, row->conversions[m]);
            put_double(b, row->value[m]);
        }
    }
    put_long(b, 0);
    put_opt_double(b, row->has[TL_M_SHAPLEY], row->shapley_var);
    put_opt_double(b, row->has_spend, row->spend);
    /* the cost per conversion and the return on ad spend, per method (model/rollup.h, as
     * tally report gives them) */
    for (int map = 0; map < 2; map++) {
        n = 0;
        for (int m = 0; m < TL_RU_METHODS; m++) n += ru_cost(row, m, map, NULL);
        if (n) {
            put_long(b, n);
            for (int m = 0; m < TL_RU_METHODS; m++) {
                double v;
                if (!ru_cost(row, m, map, &v)) continue;
                put_string(b, ru_method_name(m));
                put_double(b, v);
            }
        }
        put_long(b, 0);
    }
    put_long(b, row->has_markov_interval);
    if (row->has_markov_interval) {
        put_double(b, row->markov_lo);
        put_double(b, row->markov_hi);
        put_double(b, row->markov_level);
        put_long(b, row->markov_at);
    }
}

/* ---- reading roll-up records back ------------------------------------------------ */

typedef tl_wire_rd rd;

static int64_t get_long(rd *r) { return tl_wire_svarint(r); }
static double get_double(rd *r) { return tl_wire_f64(r); }

/* A string's bytes (not terminated) and length (Avro's: a zig-zag long, then the
 * bytes); NULL on failure. */
static const char *get_bytes(rd *r, size_t *n)
{
    int64_t len = get_long(r);
    *n = 0;
    if (r->fail) return NULL;
    if (len < 0 || len > r->end - r->p) {
        tl_wire_fail(r, "a string longer than the record");
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += len;
    *n = (size_t)len;
    return s;
}

/* A ["null", T] union's branch: 0 or 1 (0, failed, for anything else). */
static int get_branch(rd *r)
{
    int64_t b = r->fail ? 0 : get_long(r);
    if (!r->fail && b != 0 && b != 1) r->fail = "a union branch out of range";
    return r->fail ? 0 : (int)b;
}

/* The item count of an array's or map's next block, 0 at its end or on failure (a
 * negative count is followed by the block's size in bytes). */
static int64_t get_block(rd *r)
{
    if (r->fail) return 0;
    int64_t block = get_long(r);
    if (block < 0) {
        if (block == INT64_MIN) {
            r->fail = r->fail ? r->fail : "a block count out of range";
            return 0;
        }
        block = -block;
        get_long(r);
    }
    return r->fail ? 0 : block;
}

/* The index of the string read in names[0..n), -1 if none (r->fail set). */
static int get_name(rd *r, const char *const *names, int n, const char *what)
{
    size_t len = 0;
    const char *s = get_bytes(r, &len);
    for (int i = 0; s && i < n; i++)
        if (names[i] && strlen(names[i]) == len && !memcmp(names[i], s, len)) return i;
    if (!r->fail) r->fail = what;
    return -1;
}

int tl_avro_get_rollup(const void *data, size_t len, tl_rollup_rec *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    const unsigned char *u = data;
    if (len < 5 || u[0] != 0) {
        snprintf(err, errlen, "roll-up record: no Confluent frame (magic byte 0 and schema id)");
        return -1;
    }
    o->schema_id =
        (int32_t)((uint32_t)u[1] << 24 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 8 | u[4]);
    rd r = {u + 5, u + len, NULL};
    const char *dims[TL_RU_DIMS];
    for (int d = 0; d < TL_RU_DIMS; d++) dims[d] = tl_ru_dim_name((tl_ru_dim)d);
    const char *windows[3] = {NULL, tl_ru_window_name(TL_RU_WINDOW_HOUR),
                              tl_ru_window_name(TL_RU_WINDOW_DAY)};
    const char *methods[TL_RU_METHODS];
    for (int m = 0; m < TL_RU_METHODS; m++) methods[m] = ru_method_name(m);
    int dim = get_name(&r, dims, TL_RU_DIMS, "an unknown dimension");
    size_t id_len = 0;
    const char *id = get_bytes(&r, &id_len);
    int w = get_name(&r, windows, 3, "an unknown window (hour or day)");
    int64_t start = get_long(&r), end = get_long(&r);
    int64_t purchases = get_long(&r), touchpoints = get_long(&r);
    if (!r.fail &&
        (start % tl_ru_window_ms((tl_ru_window)w) != 0 ||
         end != ru_window_end(start, (tl_ru_window)w)))
        r.fail = "a window start or end that is not the window's";
    if (!r.fail && (purchases < 0 || touchpoints < 0)) r.fail = "a negative count";
    for (int64_t block; (block = get_block(&r)) != 0;) {
        for (int64_t i = 0; i < block && !r.fail; i++) {
            int m = get_name(&r, methods, TL_RU_METHODS, "an unknown method");
            double c = get_double(&r), v = get_double(&r);
            if (r.fail) break;
            /* (a method named twice adds up: its sums must stay finite too) */
            c += o->row.conversions[m];
            v += o->row.value[m];
            if (!isfinite(c) || !isfinite(v))
                r.fail = "a conversion count or value that is not finite";
            o->row.conversions[m] = c;
            o->row.value[m] = v;
            o->row.has[m] = 1;
        }
    }
    if (get_branch(&r)) o->row.shapley_var = get_double(&r);
    if (!r.fail && r.p != r.end) {   /* schema 9: the spend and the costs it gives */
        if (get_branch(&r)) {
            o->row.spend = get_double(&r);
            o->row.has_spend = 1;
            if (!r.fail && !(o->row.spend >= 0 && isfinite(o->row.spend)))
                r.fail = "a spend that is not a number at least 0";
        }
        for (int map = 0; map < 2 && !r.fail; map++)   /* derived: checked, not kept */
            for (int64_t block; (block = get_block(&r)) != 0;)
                for (int64_t i = 0; i < block && !r.fail; i++) {
                    get_name(&r, methods, TL_RU_METHODS, "an unknown method");
                    double v = get_double(&r);
                    if (!r.fail && !isfinite(v)) r.fail = "a cost that is not finite";
                }
        if (get_branch(&r)) {
            o->row.markov_lo = get_double(&r);
            o->row.markov_hi = get_double(&r);
            o->row.markov_level = get_double(&r);
            o->row.markov_at = get_long(&r);
            o->row.has_markov_interval = 1;
            if (!r.fail &&
                !(o->row.markov_lo <= o->row.markov_hi && isfinite(o->row.markov_lo) &&
                  isfinite(o->row.markov_hi) && o->row.markov_level > 0 && o->row.markov_level < 1))
                r.fail = "a Markov interval that is not one (lo <= hi, a level in (0, 1))";
        }
    }
    if (!r.fail && r.p != r.end) r.fail = "bytes after the record";
    if (r.fail) {
        snprintf(err, errlen, "roll-up record: %s", r.fail);
        return -1;
    }
    o->dim = (tl_ru_dim)dim;
    o->window = (tl_ru_window)w;
    o->row.window_start = start;
    o->row.purchases = (uint64_t)purchases;
    o->row.touchpoints = (uint64_t)touchpoints;
    o->row.id = tl_xmalloc(id_len + 1);
    memcpy(o->row.id, id, id_len);
    o->row.id[id_len] = 0;
    return 0;
}

/* Bounds: a long is at most 10 bytes, a string its length's long plus its bytes, a union
 * branch 1 byte (its index). Explanations: an interest delta's is built in 512 bytes
 * (features/interest.c), an attribution's is cut to TL_EXPLANATION_MAX. Method and
 * dimension names are short constants (under 32 bytes). */
#define B_LONG 10
#define B_STR(n) (tl_wire_svarint_len((int64_t)(n)) + (n))
#define B_OPT_STR(n) (1 + B_STR(n))
#define B_OPT_DOUBLE 9
#define B_NAME B_STR(32)
#define B_INTEREST_TEXT 512

size_t tl_avro_interest_bound(size_t S)
{
    return 5 + B_STR(S) + B_NAME + 2 * B_STR(S) + B_LONG + 6 * 8 + B_LONG + B_STR(B_INTEREST_TEXT);
}

size_t tl_avro_attribution_bound(size_t S, size_t tps)
{
    size_t tp = 2 * B_STR(S) + 3 * B_OPT_STR(S) + 1 + B_LONG;   /* the type: an enum index */
    size_t method = B_NAME + B_LONG + tps * 8 + 1;
    return 5 + 3 * B_STR(S) + B_OPT_STR(S) + B_LONG + B_OPT_DOUBLE +   /* the purchase */
        B_LONG + tps * tp + 1 +                                     /* touchpoints */
        B_LONG + TL_M_COUNT * method + 1 +                          /* credits */
        2 * B_OPT_DOUBLE + 1 + B_LONG +                             /* the model */
        B_STR(TL_EXPLANATION_MAX) + 1 + B_LONG + 2 * 2 * B_NAME +
        1 +  /* model_status: shapley, removal */
        1 + B_LONG + tps * 8 + 1;          /* shapley_stderr */
}

size_t tl_avro_rollup_bound(size_t S)
{
    return 5 + 3 * B_NAME + B_STR(S) + 4 * B_LONG + B_LONG + TL_RU_METHODS * (B_NAME + 16) + 1 +
        2 * B_OPT_DOUBLE + 2 * (B_LONG + TL_RU_METHODS * (B_NAME + 8) + 1) + 1 + 3 * 8 + B_LONG;
}

size_t tl_avro_intent_bound(size_t S)
{
    /* user_id, event_id (a union), ts, window_ms, p, previous, model_version, explanation */
    return 5 + B_STR(S) + B_OPT_STR(S) + 2 * B_LONG + 2 * 8 + B_LONG + B_STR(TL_EXPLANATION_MAX);
}

size_t tl_avro_next_categories_bound(size_t S)
{
    /* user_id, event_id, ts, categories, p_other, moved, embedding, like, explanation */
    return 5 + 2 * B_STR(S) + B_LONG + B_LONG + TL_NC_TOP_MAX * (B_STR(S) + 8) + 1 + 2 * 8 +
        B_LONG + TL_NC_DIM_MAX * 4 + 1 + B_LONG + TL_NC_LIKE_MAX * (B_STR(S) + 8) + 1 +
        B_STR(TL_EXPLANATION_MAX);
}

size_t tl_avro_credit_bound(size_t S)
{
    return 5 + 2 * B_LONG + B_NAME + B_STR(S) + B_NAME + 3 * 8 + 4 * B_OPT_DOUBLE;
}
