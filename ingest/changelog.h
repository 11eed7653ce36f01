/*
 * changelog.h -- the state changelog on Kafka (exactly-once): creating the compacted
 * topic, and restoring a partition's store from it.
 */
#ifndef TL_CHANGELOG_H
#define TL_CHANGELOG_H

#include <librdkafka/rdkafka.h>

#include "engine/state.h"

typedef struct tl_changelog tl_changelog;

/* conf: a consumer configuration (taken, also on failure) used for restores; it reads
 * with isolation.level=read_committed and no consumer group. */
tl_changelog *tl_changelog_new(rd_kafka_conf_t *conf, const char *topic, char *err, size_t errlen);
void tl_changelog_destroy(tl_changelog *c);

/* Creates the topic if absent: compacted, with as many partitions as input_topic. 0/-1. */
int tl_changelog_ensure(tl_changelog *c, const char *input_topic, char *err, size_t errlen);

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

/* Replays partition p from the offset after the store's recorded changelog offset to
 * the end, into the store. 0 or -1 (logged). Signature fits tl_runtime_opts.restore. */
int tl_changelog_restore(void *changelog, tl_store *s, int32_t partition);
/* The gauge of partitions being restored now (tally_restoring_partitions). */
struct tl_prom_series *tl_changelog_restoring(void);
/* The gauge tally_restore_remaining_records of one partition (created at 0): the records
 * its restore has left to apply. */
struct tl_prom_series *tl_changelog_remaining(int32_t partition);

#endif
