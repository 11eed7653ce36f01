/*
 * avro_out.c -- hand-written Avro binary encoders for the output records.
 *
 * Why not avro-c's generic value API: building an avro_value_t per record costs
 * about ten times the encoding itself, and the output path runs once per event and
 * dimension. The encoders below are straight-line code over a growable buffer.
 * Their correctness is checked by decoding their output with avro-c against the
 * schema files (tests/unit/test_sink.c), so the two cannot drift silently.
 */
#include "avro_out.h"

#include <string.h>

static inline void put_long(tl_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    tl_buf_reserve(b, 10);
    while (z >= 0x80) {
        b->data[b->len++] = (char)(z | 0x80);
        z >>= 7;
    }
    b->data[b->len++] = (char)z;
}

static inline void put_double(tl_buf *b, double d)
{
    /* Avro doubles are little-endian IEEE 754, as on every platform tally targets. */
    tl_buf_append(b, &d, 8);
}

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

static void put_frame(tl_buf *b, int32_t schema_id)
{
    unsigned char h[5] = {0, (unsigned char)(schema_id >> 24), (unsigned char)(schema_id >> 16),
                          (unsigned char)(schema_id >> 8), (unsigned char)schema_id};
    tl_buf_append(b, h, 5);
}

void tl_avro_put_interest(tl_buf *b, int32_t schema_id, const tl_interest_delta *d)
{
    put_frame(b, schema_id);
    put_string(b, d->user_id);
    put_string(b, tl_dim_name(d->dim));
    put_string(b, d->dim_id);
    put_string(b, d->event_id);
    put_long(b, d->ts);
    put_double(b, d->f);
    put_double(b, d->h);
    put_double(b, d->weight_before);
    put_double(b, d->weight_after);
    put_double(b, d->decay_part);
    put_double(b, d->evidence_part);
    put_long(b, d->rank);
    put_string(b, d->explanation);
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
            if (r->n_touchpoints > 0) {
                put_long(b, r->n_touchpoints);
                for (int i = 0; i < r->n_touchpoints; i++) put_double(b, r->credits[m][i]);
            }
            put_long(b, 0);
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
    if (r->shapley_stderr) {
        if (r->n_touchpoints > 0) {
            put_long(b, r->n_touchpoints);
            for (int i = 0; i < r->n_touchpoints; i++) put_double(b, r->shapley_stderr[i]);
        }
        put_long(b, 0);
    }
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

/* Bounds: a long is at most 10 bytes, a string its length's long plus its bytes, a union
 * branch 1 byte (its index). Explanations: an interest delta's is built in 512 bytes
 * (features/interest.c), an attribution's is cut to TL_EXPLANATION_MAX. Method and
 * dimension names are short constants (under 32 bytes). */
#define B_LONG 10
#define B_STR(n) (long_len((int64_t)(n)) + (n))
#define B_OPT_STR(n) (1 + B_STR(n))
#define B_OPT_DOUBLE 9
#define B_NAME B_STR(32)
#define B_INTEREST_TEXT 512

static size_t long_len(int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 1;
    while (z >= 0x80) {
        z >>= 7;
        n++;
    }
    return n;
}

size_t tl_avro_interest_bound(size_t S)
{
    return 5 + B_STR(S) + B_NAME + 2 * B_STR(S) + B_LONG + 6 * 8 + B_LONG + B_STR(B_INTEREST_TEXT);
}

size_t tl_avro_attribution_bound(size_t S, size_t tps)
{
    size_t tp = 2 * B_STR(S) + 2 * B_OPT_STR(S) + 1 + B_LONG;   /* the type: an enum index */
    size_t method = B_NAME + B_LONG + tps * 8 + 1;
    return 5 + 3 * B_STR(S) + B_OPT_STR(S) + B_LONG + B_OPT_DOUBLE +   /* the purchase */
           B_LONG + tps * tp + 1 +                                     /* touchpoints */
           B_LONG + TL_M_COUNT * method + 1 +                          /* credits */
           2 * B_OPT_DOUBLE + 1 + B_LONG +                             /* the model */
           B_STR(TL_EXPLANATION_MAX) +
           1 + B_LONG + 2 * 2 * B_NAME + 1 +  /* model_status: shapley, removal */
           1 + B_LONG + tps * 8 + 1;          /* shapley_stderr */
}

size_t tl_avro_credit_bound(size_t S)
{
    return 5 + 2 * B_LONG + B_NAME + B_STR(S) + B_NAME + 3 * 8 + 4 * B_OPT_DOUBLE;
}
