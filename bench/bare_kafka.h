/*
 * bare_kafka.h -- what the bare librdkafka peers (bare_consumer.c, bare_pipe.c) share: a
 * monotonic clock in seconds, subscribing to a topic and learning its partition count, and
 * knowing when every partition has been read to its end (enable.partition.eof=true).
 * Header-only: the peers link librdkafka and nothing of tally.
 */
#ifndef TL_BARE_KAFKA_H
#define TL_BARE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <time.h>

static inline double bare_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Subscribes the consumer rk to topic and returns the topic's partition count, or -1 when
 * its metadata does not come within 10 s. */
static inline int bare_subscribe(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) return -1;
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return parts;
}

/* Which of parts partitions are at their end: all of them once ended == parts. */
typedef struct bare_ends {
    char *at_end;
    int parts, ended;
} bare_ends;

static inline void bare_ends_init(bare_ends *e, int parts)
{
    e->at_end = calloc((size_t)parts, 1);
    e->parts = parts;
    e->ended = 0;
}

/* Notes message m: an end-of-partition event marks its partition as at its end, a record
 * marks it as not (more came after the end); other errors change nothing. */
static inline void bare_ends_note(bare_ends *e, const rd_kafka_message_t *m)
{
    if (m->partition >= e->parts) return;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && !e->at_end[m->partition]) {
        e->at_end[m->partition] = 1;
        e->ended++;
    } else if (!m->err && e->at_end[m->partition]) {
        e->at_end[m->partition] = 0;
        e->ended--;
    }
}

static inline void bare_ends_free(bare_ends *e) { free(e->at_end); }

#endif
