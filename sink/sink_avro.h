/*
 * sink_avro.h -- the step the Avro-writing sinks (the encode-only avro sink and the
 * kafka sink) take for every output record: the record, framed with its schema id,
 * replaces what the sink's buffer held, and the sink counts it. Bytes are counted by
 * the caller (the avro sink at once, the kafka sink once the producer took them).
 */
#ifndef TL_SINK_AVRO_H
#define TL_SINK_AVRO_H

#include "sinks.h"
#include "avro_out.h"

/* tl_sink_avro_KIND(b, buf, schema_id, record) for the output records whose count is the
 * member KIND of tl_sink_counts: encoded with tl_avro_put_KIND. */
#define TL_SINK_AVRO_STEP(kind, type)                                                              \
    static inline void tl_sink_avro_##kind(tl_sink_base *b, tl_buf *buf, int32_t schema_id,        \
                                           const type *r)                                          \
    {                                                                                              \
        tl_buf_clear(buf);                                                                         \
        tl_avro_put_##kind(buf, schema_id, r);                                                     \
        b->counts.kind++;                                                                          \
    }

TL_SINK_AVRO_STEP(interest, tl_interest_delta)
TL_SINK_AVRO_STEP(credit, tl_credit_delta)
TL_SINK_AVRO_STEP(intent, tl_intent_delta)
TL_SINK_AVRO_STEP(next_categories, tl_next_categories)

/* An attribution also counts each method it carries. */
static inline void tl_sink_avro_attribution(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                            const tl_attribution *r)
{
    tl_buf_clear(buf);
    tl_avro_put_attribution(buf, schema_id, r);
    tl_sink_count_attribution(&b->counts, r);
}

#endif
