/*
 * rollup_agg.h -- the roll-up aggregator: one answer however many instances run.
 *
 * Each instance's pipeline sends what its transactions add to the roll-ups as partial
 * records (kafka_sink.c), keyed by row, to an internal topic. Every instance also runs
 * this aggregator, a consumer group of its own over that topic: the partition of a row's
 * key belongs to exactly one member, which adds the partials into the row's totals and
 * writes the new totals to the same partition of the compacted roll-up topic -- Kafka
 * Streams' repartition-and-aggregate. Under exactly_once, the totals and the partials'
 * offsets are committed in one transaction, so the compacted topic is the aggregator's
 * state: a new owner of a partition restores its totals from it (reading it to its end,
 * read_committed, after the group's committed offset for that partition is stable, i.e.
 * the previous owner's transaction is over). Sums do not depend on which instance owned
 * which input, so 1 or N instances give the same totals (up to the order of floating
 * additions, about 1e-15 relative).
 *
 * A record that does not decode is sent to the dead-letter topic with its reason, in the
 * same transaction, and counted. Threading: one thread of its own.
 */
#ifndef TL_ROLLUP_AGG_H
#define TL_ROLLUP_AGG_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "lib/util.h"
#include "model/markov_share.h"
#include "model/rollup.h"

typedef struct tl_rollup_agg_opts {
    const char *partials_topic, *topic, *dlq_topic;
    int32_t id_rollup;        /* the frame of the totals written */
    int transactional;        /* exactly_once: pconf carries transactional.id */
    int commit_interval_ms;
    int partitions;           /* of the partials topic (a drained stop waits to own them all) */
    size_t dlq_max_bytes;     /* a dead letter's value is cut to this (dlq.max.record.bytes) */
    /* One Markov chain for every instance (model/markov_share.h), on when markov is set:
     * the owner of the key "markov" publishes its credit deltas to credit_topic (framed
     * with id_credit), sends their roll-up partials (channel groups by groups), and keeps
     * its state in the compacted state_topic. */
    int markov;
    tl_mk_share_cfg mk;
    const char *credit_topic, *state_topic, *groups;
    int32_t id_credit;
    /* Ad spend (rollup.spend.topic; NULL or empty: none), each record's value one line
     * "date,channel,spend": every instance reads all of it into one table per channel
     * and per channel group (groups) and day, and the owner of a day row of those
     * dimensions writes the row with the table's spend (set, not added: a row's spend is
     * always the sum of the topic's lines for it) and the costs that follow. */
    const char *spend_topic;
    int spend_partitions;     /* of spend_topic */
} tl_rollup_agg_opts;

typedef struct tl_rollup_agg tl_rollup_agg;

/* Each row of ru[0..n) marked changed, as a framed roll-up record (id) and its key, handed
 * to send(arg, key, value); the marks are cleared. 0, or send's first non-zero return. */
int tl_rollup_send_changed(tl_rollup *const *ru, int n, int32_t id, tl_buf *key, tl_buf *val,
                           int (*send)(void *arg, const tl_buf *key, const tl_buf *val), void *arg);

/* Starts the aggregator's thread. cconf: its group's consumer (group.id set), rconf: the
 * reader of the roll-up topic on assignments (no group), pconf: its producer (its
 * partitioner is the one that placed the partials), sconf: the spend topic's reader (no
 * group; NULL without spend_topic); all taken, also on failure. NULL with a message in
 * err. */
tl_rollup_agg *tl_rollup_agg_start(rd_kafka_conf_t *cconf, rd_kafka_conf_t *rconf,
                                   rd_kafka_conf_t *pconf, rd_kafka_conf_t *sconf,
                                   const tl_rollup_agg_opts *o, char *err, size_t errlen);
/* Stops it: with drain, after every partition it owns is read to its end (the pipeline
 * has committed its last partials: tally run --until-end); commits what it holds, leaves
 * the group, frees everything. 0, or -1 if it failed (logged). */
int tl_rollup_agg_stop(tl_rollup_agg *a, int drain);

#endif
