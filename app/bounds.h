/*
 * bounds.h -- the largest record of each kind tally can produce, checked at
 * start against the producer's and the topics' size limits (bounds.c).
 */
#ifndef TL_CMD_BOUNDS_H
#define TL_CMD_BOUNDS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "lib/config.h"

#define TL_BOUNDS_OUTPUTS 6

/* 0 when every record fits on its topic: outputs are the topics of interest deltas,
 * attributions, credit deltas and dead letters; with changelog_topic, changelog records
 * too; with rollups (the roll-up topic and its partials topic), roll-up records. -1 with err naming the configuration keys that bound the record and the limit it
 * exceeds; -2 with err when a topic does not exist and the broker will not create it. */
int tl_app_check_record_bounds(const tl_config *c, rd_kafka_t *producer,
                               const char *const outputs[TL_BOUNDS_OUTPUTS],
                               const char *changelog_topic, const char *const rollups[2], char *err,
                               size_t errlen);

#endif
