/*
 * kafka_changelog.h -- the user-state changelog's topic on Kafka (engine/changelog.h says
 * what it holds): creating the compacted topic, and restoring a partition's store from it.
 */
#ifndef TL_KAFKA_CHANGELOG_H
#define TL_KAFKA_CHANGELOG_H

#include <librdkafka/rdkafka.h>

#include "engine/state.h"

typedef struct tl_kafka_changelog tl_kafka_changelog;

/* conf: a consumer configuration (taken, also on failure) used for restores; it reads
 * with isolation.level=read_committed and no consumer group. */
tl_kafka_changelog *tl_kafka_changelog_new(rd_kafka_conf_t *conf, const char *topic, char *err,
                                           size_t errlen);
void tl_kafka_changelog_destroy(tl_kafka_changelog *c);

/* Creates the topic if absent: compacted, with as many partitions as input_topic. 0/-1. */
int tl_kafka_changelog_ensure(tl_kafka_changelog *c, const char *input_topic, char *err,
                              size_t errlen);

/* Replays partition p from the offset after the store's recorded changelog offset to
 * the end, into the store. 0 or -1 (logged). Signature fits tl_runtime_opts.restore. */
int tl_kafka_changelog_restore(void *changelog, tl_store *s, int32_t partition);
#endif
