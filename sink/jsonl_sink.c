/*
 * jsonl_sink.c -- JSON-lines sink (replay output) and the encode-only Avro sink.
 *
 * Each record becomes one line: {"type": "interest_delta", <the schema's fields>}.
 * Doubles are printed in their shortest round-tripping form, so a reader gets the
 * exact binary value back. A line is assembled in a buffer and written with one
 * fwrite; flush() flushes stdio and reports write errors (a full disk is an error,
 * not silent loss).
 */
#include "sinks.h"
#include "sink_avro.h"
#include "lib/json.h"
#include "lib/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct sink_state {
    tl_sink_base base;
    FILE *out;
    tl_buf buf;
    int32_t ids[5];
} sink_state;

static void kv_opt_dbl(tl_buf *b, const char *k, int has, double v)
{
    tl_json_put_key(b, k);
    if (has) tl_json_put_double(b, v);
    else tl_buf_puts(b, "null");
}

/* [v[0],...,v[n-1]] */
static void put_doubles(tl_buf *b, const double *v, int n)
{
    tl_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) tl_buf_putc(b, ',');
        tl_json_put_double(b, v[i]);
    }
    tl_buf_putc(b, ']');
}

/* Opens method m's member in an object of one member per method: a comma unless *first (which
 * it then clears), the method's name and a colon. */
static void method_member(tl_buf *b, int m, int *first)
{
    if (!*first) tl_buf_putc(b, ',');
    *first = 0;
    tl_json_put_str(b, tl_method_name((tl_method)m));
    tl_buf_putc(b, ':');
}

/* Starts s's line for a record of this type: {"type":"TYPE" */
static tl_buf *line_begin(sink_state *s, const char *type)
{
    tl_buf_clear(&s->buf);
    tl_buf_puts(&s->buf, "{\"type\":\"");
    tl_buf_puts(&s->buf, type);
    tl_buf_putc(&s->buf, '"');
    return &s->buf;
}

static tl_rc line_out(sink_state *s)
{
    tl_buf_puts(&s->buf, "}\n");
    s->base.counts.bytes += s->buf.len;
    if (fwrite(s->buf.data, 1, s->buf.len, s->out) != s->buf.len) return TL_ERROR;
    return TL_OK;
}

static tl_rc jsonl_interest(void *ctx, const tl_interest_delta *d)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "interest_delta");
    tl_json_member_str(b, "user_id", d->user_id);
    tl_json_member_str(b, "dim", tl_dim_name(d->dim));
    tl_json_member_str(b, "dim_id", d->dim_id);
    tl_json_member_str(b, "event_id", d->event_id);
    tl_json_member_i64(b, "ts", d->ts);
    tl_json_member_double(b, "f", d->f);
    tl_json_member_double(b, "h", d->h);
    tl_json_member_double(b, "weight_before", d->weight_before);
    tl_json_member_double(b, "weight_after", d->weight_after);
    tl_json_member_double(b, "decay_part", d->decay_part);
    tl_json_member_double(b, "evidence_part", d->evidence_part);
    tl_json_member_i64(b, "rank", d->rank);
    tl_json_member_str(b, "explanation", d->explanation);
    s->base.counts.interest++;
    return line_out(s);
}

static tl_rc jsonl_attribution(void *ctx, const tl_attribution *r)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "attribution");
    tl_json_member_str(b, "conversion_event_id", r->conversion_event_id);
    tl_json_member_str(b, "user_id", r->user_id);
    tl_json_member_str(b, "item_id", r->item_id);
    tl_json_member_str(b, "category_id", r->category_id);
    tl_json_member_i64(b, "ts", r->ts);
    kv_opt_dbl(b, "value", r->has_value, r->value);
    tl_json_put_key(b, "touchpoints");
    tl_buf_putc(b, '[');
    for (int i = 0; i < r->n_touchpoints; i++) {
        const tl_touchpoint *t = &r->touchpoints[i];
        tl_buf_puts(b, i ? ",{\"event_id\":" : "{\"event_id\":");
        tl_json_put_str(b, t->event_id);
        tl_json_member_str(b, "item_id", t->item_id);
        tl_json_member_str(b, "category_id", t->category_id);
        tl_json_member_str(b, "channel", t->channel);
        tl_json_member_str(b, "type", tl_event_type_name(t->type));
        tl_json_member_i64(b, "ts", t->ts);
        tl_json_member_str(b, "campaign", t->campaign);
        tl_buf_putc(b, '}');
    }
    tl_buf_putc(b, ']');
    tl_json_put_key(b, "credits");
    tl_buf_putc(b, '{');
    int first = 1;
    for (int m = 0; m < TL_M_COUNT; m++) {
        if (!r->has_method[m]) continue;
        method_member(b, m, &first);
        put_doubles(b, r->credits[m], r->n_touchpoints);
    }
    tl_buf_putc(b, '}');
    kv_opt_dbl(b, "p_conversion", r->has_model, r->p_conversion);
    kv_opt_dbl(b, "p_baseline", r->has_model, r->p_baseline);
    tl_json_put_key(b, "model_version");
    if (r->has_model) tl_json_put_i64(b, r->model_version);
    else tl_buf_puts(b, "null");
    tl_json_member_str(b, "explanation", r->explanation);
    tl_json_put_key(b, "model_status");
    if (r->has_model) {
        tl_buf_putc(b, '{');
        int first_status = 1;
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!r->model_status[m]) continue;
            method_member(b, m, &first_status);
            tl_json_put_str(b, r->model_status[m]);
        }
        tl_buf_putc(b, '}');
    } else {
        tl_buf_puts(b, "null");
    }
    tl_json_put_key(b, "shapley_stderr");   /* null, or one per touchpoint (null if unknown) */
    if (r->shapley_stderr) put_doubles(b, r->shapley_stderr, r->n_touchpoints);
    else tl_buf_puts(b, "null");
    tl_sink_count_attribution(&s->base.counts, r);
    return line_out(s);
}

static tl_rc jsonl_credit(void *ctx, const tl_credit_delta *c)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "credit_delta");
    tl_json_member_i64(b, "window_start", c->window_start);
    tl_json_member_i64(b, "window_end", c->window_end);
    tl_json_member_str(b, "dim", tl_dim_name(c->dim));
    tl_json_member_str(b, "dim_id", c->dim_id);
    tl_json_member_str(b, "method", c->method);
    tl_json_member_double(b, "credit", c->credit);
    tl_json_member_double(b, "credit_before", c->credit_before);
    tl_json_member_double(b, "conversions", c->conversions);
    kv_opt_dbl(b, "removal_effect", c->has_removal_effect, c->removal_effect);
    if (c->has_interval) {   /* only with markov.bootstrap.samples: lines stay as they were */
        tl_json_member_double(b, "credit_lo", c->credit_lo);
        tl_json_member_double(b, "credit_hi", c->credit_hi);
        tl_json_member_double(b, "interval_level", c->interval_level);
    }
    s->base.counts.credit++;
    return line_out(s);
}

static tl_rc jsonl_intent(void *ctx, const tl_intent_delta *d)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "intent_delta");
    tl_json_member_str(b, "user_id", d->user_id);
    tl_json_member_str(b, "event_id", d->event_id);
    tl_json_member_i64(b, "ts", d->ts);
    tl_json_member_i64(b, "window_ms", d->window_ms);
    tl_json_member_double(b, "p", d->p);
    tl_json_member_double(b, "previous", d->previous);
    tl_json_member_i64(b, "model_version", d->model_version);
    tl_json_member_str(b, "explanation", d->explanation);
    s->base.counts.intent++;
    return line_out(s);
}

static tl_rc jsonl_next_categories(void *ctx, const tl_next_categories *r)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "next_categories");
    tl_json_member_str(b, "user_id", r->user_id);
    tl_json_member_str(b, "event_id", r->event_id);
    tl_json_member_i64(b, "ts", r->ts);
    tl_json_member_double(b, "moved", r->moved);
    tl_nc_put_json(b, r->view);
    tl_json_member_str(b, "explanation", r->explanation);
    s->base.counts.next_categories++;
    return line_out(s);
}

static tl_rc jsonl_dlq(void *ctx, const tl_dlq_record *r)
{
    sink_state *s = ctx;
    tl_buf *b = line_begin(s, "dead_letter");
    tl_json_member_str(b, "reason", tl_dlq_reason_name(r->reason));
    tl_json_member_str(b, "error", r->error);
    tl_json_member_i64(b, "offset", r->offset);
    s->base.counts.dlq++;
    return line_out(s);
}

static tl_rc jsonl_flush(void *ctx, int timeout_ms)
{
    sink_state *s = ctx;
    return fflush(s->out) == 0 && !ferror(s->out) ? TL_OK : TL_ERROR;
}

static void state_destroy(void *ctx)
{
    sink_state *s = ctx;
    tl_buf_free(&s->buf);
}

tl_sink *tl_jsonl_sink_new(FILE *out)
{
    sink_state *s = tl_xcalloc(1, sizeof(*s));
    s->out = out;
    s->base.sink = (tl_sink){
        .name = "jsonl",
        .ctx = s,
        .emit_interest = jsonl_interest,
        .emit_attribution = jsonl_attribution,
        .emit_credit = jsonl_credit,
        .emit_dlq = jsonl_dlq,
        .emit_intent = jsonl_intent,
        .emit_next_categories = jsonl_next_categories,
        .flush = jsonl_flush,
        .destroy = state_destroy,
    };
    return &s->base.sink;
}

/* ---- encode-only Avro sink ------------------------------------------------------ */

/* avro_KIND: encodes the record with its schema id, ids[slot], and counts its bytes. */
#define AVRO_EMIT(kind, type, slot)                                                                \
    static tl_rc avro_##kind(void *ctx, const type *r)                                             \
    {                                                                                              \
        sink_state *s = ctx;                                                                       \
        tl_sink_avro_##kind(&s->base, &s->buf, s->ids[slot], r);                                   \
        s->base.counts.bytes += s->buf.len;                                                        \
        return TL_OK;                                                                              \
    }

AVRO_EMIT(interest, tl_interest_delta, 0)
AVRO_EMIT(attribution, tl_attribution, 1)
AVRO_EMIT(credit, tl_credit_delta, 2)
AVRO_EMIT(intent, tl_intent_delta, 3)
AVRO_EMIT(next_categories, tl_next_categories, 4)

static tl_rc avro_dlq(void *ctx, const tl_dlq_record *r)
{
    ((sink_state *)ctx)->base.counts.dlq++;
    return TL_OK;
}

static tl_rc avro_flush(void *ctx, int timeout_ms) { return TL_OK; }

tl_sink *tl_avro_sink_new(int32_t id_interest, int32_t id_attribution, int32_t id_credit,
                          int32_t id_intent, int32_t id_next_categories)
{
    sink_state *s = tl_xcalloc(1, sizeof(*s));
    s->ids[0] = id_interest;
    s->ids[1] = id_attribution;
    s->ids[2] = id_credit;
    s->ids[3] = id_intent;
    s->ids[4] = id_next_categories;
    s->base.sink = (tl_sink){
        .name = "avro",
        .ctx = s,
        .emit_interest = avro_interest,
        .emit_attribution = avro_attribution,
        .emit_credit = avro_credit,
        .emit_dlq = avro_dlq,
        .emit_intent = avro_intent,
        .emit_next_categories = avro_next_categories,
        .flush = avro_flush,
        .destroy = state_destroy,
    };
    return &s->base.sink;
}

void tl_sink_counts_get(const tl_sink *s, tl_sink_counts *c)
{
    *c = ((const tl_sink_base *)s->ctx)->counts;
}

void tl_sink_destroy(tl_sink *s)
{
    if (!s) return;
    if (s->destroy) s->destroy(s->ctx);
    free(s->ctx);
}
