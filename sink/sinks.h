/*
 * sinks.h -- the sink implementations (engine/sink.h describes the interface).
 *
 *   jsonl:  one JSON object per record, "type" naming the record, written to a file
 *           (replay). flush() = fflush + fsync-free write; durable enough for a file.
 *   avro:   encodes each record as framed Avro and keeps only counts and bytes
 *           (benchmarks: the cost of producing outputs without a broker).
 *   kafka:  framed Avro to the output topics, key = user_id (kafka_sink.c).
 */
#ifndef TL_SINKS_H
#define TL_SINKS_H

#include <stdio.h>
#include <librdkafka/rdkafka.h>

#include "lib/config.h"
#include "engine/sink.h"
#include "lib/util.h"

typedef struct tl_sink_counts {
    uint64_t interest, attribution, credit, dlq, bytes;
    uint64_t intent;                  /* intent_delta records */
    uint64_t next_categories;         /* next_categories records */
    uint64_t by_method[TL_M_COUNT];   /* attribution records carrying each method */
} tl_sink_counts;

static inline void tl_sink_count_attribution(tl_sink_counts *c, const tl_attribution *r)
{
    c->attribution++;
    for (int m = 0; m < TL_M_COUNT; m++) c->by_method[m] += r->has_method[m];
}

/* Every implementation's state begins with this, and the tl_sink's ctx points to
 * it, so counts are read the same way whatever the sink. */
typedef struct tl_sink_base {
    tl_sink sink;
    tl_sink_counts counts;
} tl_sink_base;

/* Writes to out (not closed by destroy). */
tl_sink *tl_jsonl_sink_new(FILE *out);
/* Schema ids to frame with: interest, attribution, credit, intent, next categories. */
tl_sink *tl_avro_sink_new(int32_t id_interest, int32_t id_attribution, int32_t id_credit,
                          int32_t id_intent, int32_t id_next_categories);

typedef struct tl_kafka_sink_opts {
    const char *topic_interest, *topic_attribution, *topic_credit, *topic_dlq;
    int32_t id_interest, id_attribution, id_credit;
    const char *topic_intent;   /* NULL or empty: no intent published */
    int32_t id_intent;
    const char *topic_categories;   /* NULL or empty: no next categories published */
    int32_t id_categories;
    /* Exactly-once: conf must carry transactional.id; the sink then runs one transaction
     * per batch (begin/emit_state/commit) and writes state records to changelog_topic. */
    int transactional;
    const char *changelog_topic;
    /* Roll-up partials (rollup.topic set): every attribution and credit delta is also
     * summed per dimension value and window (channel, category, and channel_group when
     * rollup_groups has rules; hour and day), and the sums go to this topic, keyed by
     * row, once per transaction (at_least_once: once per batch), framed with id_rollup.
     * NULL: none. */
    const char *rollup_partials_topic;
    const char *rollup_groups;
    int32_t id_rollup;
    /* With the partials topic: one Markov chain for every instance (model/markov_share.h)
     * when markov_window_ms > 0: closed journeys and stream times go with the partials,
     * key "markov", instead of into the instance's own chain. */
    int markov_order;
    int64_t markov_window_ms;
} tl_kafka_sink_opts;

/* Creates its producer from conf (taken, also on failure). */
tl_sink *tl_kafka_sink_new(rd_kafka_conf_t *conf, const tl_kafka_sink_opts *o, char *err,
                           size_t errlen);
rd_kafka_t *tl_kafka_sink_handle(const tl_sink *s);
/* Exactly-once: the consumer whose group the input offsets are committed for, and the
 * input topic. Must be set before the first commit. */
void tl_kafka_sink_set_consumer(tl_sink *s, rd_kafka_t *consumer, const char *input_topic);
/* One model for every instance (model/model.h, "one model"): whenever the sink makes a
 * transaction's outputs durable (with the roll-up partials), it calls take(arg, buf,
 * max_bytes) until it returns 0, and sends each model update it appended to partition 0
 * of `topic` with `key`, in the same transaction; clear(arg) is called when a transaction
 * was aborted (what it had gathered is learned again). */
void tl_kafka_sink_set_model_share(tl_sink *s, const char *topic, const char *key,
                                   int (*take)(void *arg, tl_buf *out, size_t max_bytes),
                                   void (*clear)(void *arg), void *arg);

void tl_sink_counts_get(const tl_sink *s, tl_sink_counts *c);
void tl_sink_destroy(tl_sink *s);   /* calls s->destroy and frees s */

#endif
