/*
 * bounds.h -- the largest dead letter and changelog record tally can produce, checked at
 * start against the producer's and the topics' size limits (bounds.c).
 */
#ifndef TL_CMD_BOUNDS_H
#define TL_CMD_BOUNDS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "core/config.h"

/* 0 when every dead letter (and, with changelog_topic, every changelog record) fits;
 * -1 with err naming the configuration keys that bound it and the limit it exceeds. */
int tl_cmd_check_record_bounds(const tl_config *c, rd_kafka_t *producer, const char *dlq_topic,
                               const char *changelog_topic, char *err, size_t errlen);

#endif
