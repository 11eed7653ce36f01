/*
 * kafka.h -- what tally's librdkafka clients share: leaving a consumer group (below), and
 * making a topic like another (its partition count; compacted or with settings).
 *
 * Leaving a group. librdkafka 2.0 (Debian bookworm's) can hang in rd_kafka_consumer_close()
 * when, under the cooperative protocol, an assignment arrives while the consumer is
 * closing (confluentinc/librdkafka#4527, fixed in 2.4): the group state waits for an
 * assign call that close has turned into an unassign. It happens when members leave
 * together -- a group stopped at once -- and tally's shutdown then waited until
 * shutdown.timeout.ms. The workaround the issue gives: unsubscribe first, serve the
 * rebalance callbacks until nothing is assigned, then close.
 */
#ifndef TL_KAFKA_H
#define TL_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>

/* Unsubscribes rk, polls it (serving its rebalance callback; records polled meanwhile are
 * dropped: nothing of them was committed) until it holds no partition or timeout_ms has
 * passed, then closes it. 0, or -1 when the assignment was still not empty at the timeout
 * (the consumer is closed anyway). */
int tl_kafka_consumer_leave(rd_kafka_t *rk, int timeout_ms);

/* The librdkafka settings tally makes, by the client they are for (kafka_settings.c, one
 * table; docs/configuration.md prints it). The defaults (TL_KC_CONSUMER, TL_KC_PRODUCER)
 * go into every client of that side before the user's kafka.* keys, which may change
 * them; the others are what a client needs to work as tally uses it, set after the
 * user's keys, which cannot change them. */
typedef enum tl_kafka_client {
    TL_KC_CONSUMER,         /* every consumer: defaults */
    TL_KC_PRODUCER,         /* every producer: defaults */
    TL_KC_INPUT,            /* the input's group consumer */
    TL_KC_INPUT_UNTIL_END,  /* ... with tally run --until-end */
    TL_KC_INPUT_EOS,        /* ... with exactly_once */
    TL_KC_READER,           /* a consumer of tally's own transactional topics, read whole */
    TL_KC_RESTORE,          /* ... the changelog restore (after TL_KC_READER) */
    TL_KC_MODEL_FEED,       /* ... the shared model's updates (after TL_KC_READER) */
    TL_KC_ROLLUP_GROUP,     /* ... the roll-up aggregator's group (after TL_KC_READER) */
    TL_KC_COUNT
} tl_kafka_client;

/* rd_kafka_new(type, conf): the client, which owns conf from then on; or NULL with "WHAT:
 * librdkafka's reason" in err, conf destroyed. */
rd_kafka_t *tl_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                                char *err, size_t errlen);

/* A consumer that reads topics without a group: tl_kafka_client_new over conf with the
 * TL_KC_READER settings and then those of reader (TL_KC_RESTORE, TL_KC_MODEL_FEED; or
 * TL_KC_READER itself for none more). */
rd_kafka_t *tl_kafka_reader_new(rd_kafka_conf_t *conf, tl_kafka_client reader, const char *what,
                                char *err, size_t errlen);

/* rd_kafka_init_transactions(producer), waiting at most 60 s: 0, or -1 with "WHAT:
 * init_transactions: librdkafka's reason" in err. */
int tl_kafka_init_transactions(rd_kafka_t *producer, const char *what, char *err, size_t errlen);

/* Sets every setting of client on conf, in the table's order. 0, or -1 with err. */
int tl_kafka_settings_apply(rd_kafka_conf_t *conf, tl_kafka_client client, char *err,
                            size_t errlen);
/* Prints the table: markdown (md) or text. */
void tl_kafka_settings_list(FILE *out, int md);

/* Creates topic if absent, with as many partitions as topic `like` (compacted: with
 * cleanup.policy=compact), and waits until the broker lists it; an existing topic must
 * have that many partitions. 0, or -1 with a message in err. */
int tl_kafka_topic_ensure(rd_kafka_t *rk, const char *topic, const char *like, int compacted,
                          char *err, size_t errlen);
/* The same with topic settings for a new topic: name, value, ..., NULL. */
int tl_kafka_topic_ensure_cfg(rd_kafka_t *rk, const char *topic, const char *like, int compacted,
                              const char *const *config, char *err, size_t errlen);

/* The same with a partition count instead of a topic to match. */
int tl_kafka_topic_ensure_n(rd_kafka_t *rk, const char *topic, int parts, int compacted,
                            const char *const *config, char *err, size_t errlen);

/* The partition count of topic, or -1 (unknown topic, no answer). */
int tl_kafka_partition_count(rd_kafka_t *rk, const char *topic);

#endif
