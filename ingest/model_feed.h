/*
 * model_feed.h -- reading a topic of records for the model: the other instances' model
 * updates from the model topic (docs/attribution.md, "One model across instances"; the
 * updates: model/model.h), and externally computed category embeddings
 * (categories.embeddings.topic; model/categories.h).
 *
 * A plain assigned consumer (no group) of partition 0 of the topic, read_committed, from
 * a given offset: every instance reads every record, and each knows how far it has read
 * (the model's checkpoint keeps it for the model topic). Records keyed with the reader's
 * own key (if it has one) are its own updates, already in its model, and are skipped.
 * Polled without blocking from the processing thread, which owns the model.
 */
#ifndef TL_MODEL_FEED_H
#define TL_MODEL_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "domain/records.h"

typedef struct tl_model_feed tl_model_feed;

/* 0, or -1 with a message when the record does not decode. */
typedef int (*tl_feed_apply_fn)(void *arg, const void *data, size_t len, int64_t offset, char *err,
                                size_t errlen);

typedef struct tl_model_feed_stats {
    uint64_t applied, own, bad;
} tl_model_feed_stats;

/* conf: a consumer configuration (taken, also on failure). what: the topic's role in
 * messages ("model topic"); counter: the metric its bad records are counted in. next: the
 * offset to read from (-1: the start of the topic). own_key: NULL, or the key of records
 * to skip. dlq_max_bytes: the most of a bad record's value its dead letter keeps (0:
 * all). */
tl_model_feed *tl_model_feed_new(rd_kafka_conf_t *conf, const char *what, const char *counter,
                                 const char *topic, int64_t next, const char *own_key,
                                 size_t dlq_max_bytes, char *err, size_t errlen);
void tl_model_feed_destroy(tl_model_feed *f);

/* Applies what has arrived, at most max records, without waiting: the number applied.
 * A record that does not decode is skipped, logged (the first few) and counted, and kept
 * as a dead letter (reason malformed) until tl_model_feed_dead_letters; its offset still
 * counts as read. */
int tl_model_feed_poll(tl_model_feed *f, tl_feed_apply_fn apply, void *arg, int max);

/* Hands the dead letters kept so far to emit, oldest first; stops at the first it did not
 * take (emit returns 0 for taken). The number taken. Called where a dead letter is durable
 * with the outputs: inside a transaction under exactly_once. Those taken are kept until
 * tl_model_feed_dead_settle says how their transaction ended. */
int tl_model_feed_dead_letters(tl_model_feed *f, int (*emit)(void *arg, const tl_dlq_record *d),
                               void *arg);

/* The transaction of the dead letters handed out since the last call committed (they are
 * forgotten; also under at_least_once, where they were produced outside a transaction),
 * or did not (they are handed out again, before the others, by the next
 * tl_model_feed_dead_letters). The number settled. */
int tl_model_feed_dead_settle(tl_model_feed *f, int committed);

/* The number of dead letters kept and not yet handed out. */
int tl_model_feed_dead_pending(const tl_model_feed *f);

void tl_model_feed_stats_get(const tl_model_feed *f, tl_model_feed_stats *s);

#endif
