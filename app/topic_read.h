/*
 * topic_read.h -- reading a topic's committed records without a consumer group, each
 * printed as one JSON object per line: `tally consume`, and the topics behind
 * GET /v1/attribution.
 */
#ifndef TL_APP_TOPIC_READ_H
#define TL_APP_TOPIC_READ_H

#include "lib/config.h"
#include "ingest/schema_store.h"

#include <stdint.h>
#include <stdio.h>

/* `tally consume`: prints topic's records to out from its beginning (or its end with
 * from_end) until max records (max < 0: no limit), every partition's end with until_end, or
 * tl_stop. 0, or 1 with the reason on stderr. */
int tl_app_print_topic(const tl_config *c, tl_schema_store *store, const char *topic, int from_end,
                       long long max, int until_end, FILE *out);

/* Reads the topics from the beginning to their current end (committed records, every
 * partition, no consumer group), writing each record to out as `tally consume` prints it
 * (decoded with store). 0, or -1 with err (a topic that does not exist, or not every
 * partition read to its end within timeout_ms). records: how many were written. */
int tl_app_read_topics(const tl_config *c, tl_schema_store *store, const char *const *topics, int n,
                       int64_t timeout_ms, FILE *out, uint64_t *records, char *err, size_t errlen);
/* The same of one topic, only the records whose key begins with key_prefix (the others are
 * not decoded). */
int tl_app_read_keyed(const tl_config *c, tl_schema_store *store, const char *topic,
                      const char *key_prefix, int64_t timeout_ms, FILE *out, uint64_t *records,
                      char *err, size_t errlen);
/* The same for one topic of text: each record's value as it is, one per line. */
int tl_app_read_values(const tl_config *c, const char *topic, int64_t timeout_ms, FILE *out,
                       uint64_t *records, char *err, size_t errlen);

#endif
