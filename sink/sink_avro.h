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

static inline void tl_sink_avro_interest(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                         const tl_interest_delta *d)
{
    tl_buf_clear(buf);
    tl_avro_put_interest(buf, schema_id, d);
    b->counts.interest++;
}

static inline void tl_sink_avro_attribution(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                            const tl_attribution *r)
{
    tl_buf_clear(buf);
    tl_avro_put_attribution(buf, schema_id, r);
    tl_sink_count_attribution(&b->counts, r);
}

static inline void tl_sink_avro_credit(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                       const tl_credit_delta *c)
{
    tl_buf_clear(buf);
    tl_avro_put_credit(buf, schema_id, c);
    b->counts.credit++;
}

static inline void tl_sink_avro_intent(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                       const tl_intent_delta *d)
{
    tl_buf_clear(buf);
    tl_avro_put_intent(buf, schema_id, d);
    b->counts.intent++;
}

static inline void tl_sink_avro_next_categories(tl_sink_base *b, tl_buf *buf, int32_t schema_id,
                                                const tl_next_categories *r)
{
    tl_buf_clear(buf);
    tl_avro_put_next_categories(buf, schema_id, r);
    b->counts.next_categories++;
}

#endif
