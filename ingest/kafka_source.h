/*
 * kafka_source.h -- the Kafka consumer-group source (engine/source.h).
 */
#ifndef TL_KAFKA_SOURCE_H
#define TL_KAFKA_SOURCE_H

#include <librdkafka/rdkafka.h>

#include "engine/source.h"
#include "ingest/codec.h"

typedef struct tl_kafka_source_opts {
    const char *topic;        /* the input topic */
    tl_codec *codec;          /* borrowed */
    tl_partition_listener on_partitions;   /* told of assignments and revocations */
    tl_event_limits limits;   /* tl_event_validate's bounds */
    size_t dlq_max_bytes;     /* most bytes of a value a dead letter keeps (0: no limit) */
    int key_mismatch_dlq;     /* a key other than the user_id: dead letter (else processed,
                               * counted) */
    int until_end;            /* EOF once every assigned partition is consumed to its end */
    int exactly_once;         /* offsets go in the sink's transactions, not through commit() */
} tl_kafka_source_opts;

/* Takes ownership of conf (also on failure). */
tl_source *tl_kafka_source_new(rd_kafka_conf_t *conf, const tl_kafka_source_opts *o, char *err,
                               size_t errlen);
/* Commits stored offsets, leaves the group, frees everything. */
void tl_kafka_source_destroy(tl_source *s);
rd_kafka_t *tl_kafka_source_handle(tl_source *s);

/* The assigned partitions (up to max) and each one's lag: the high watermark last seen
 * by the consumer minus the next offset to process, -1 when not known yet. Local
 * information only (no request). Returns the count. Processing thread only. */
int tl_kafka_source_lag(tl_source *s, int32_t *parts, int64_t *lag, int max);
/* Rebalance callbacks served so far (assignments and revocations). */
uint64_t tl_kafka_source_rebalances(const tl_source *s);

#endif
