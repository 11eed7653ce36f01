/*
 * kafka_changelog.c -- the user-state changelog's topic on Kafka: creating it (compacted,
 * partitioned as the input) and reading a partition of it back, read_committed, into the
 * replay of engine/changelog.c, which says what the records mean and applies them.
 *
 * The restore consumer is a plain assigned consumer (no group); it is kept for the life
 * of the pipeline and used from the rebalance callback, on the processing thread.
 */
#include "kafka_changelog.h"
#include "engine/changelog.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_kafka_changelog {
    rd_kafka_t *rk;
    char *topic;
};

tl_kafka_changelog *tl_kafka_changelog_new(rd_kafka_conf_t *conf, const char *topic, char *err,
                                           size_t errlen)
{
    tl_changelog_metrics();   /* shown from the start, at 0 */
    rd_kafka_t *rk = tl_kafka_reader_new(conf, TL_KC_RESTORE, "changelog consumer", err, errlen);
    if (!rk) return NULL;
    tl_kafka_changelog *c = tl_xcalloc(1, sizeof(*c));
    c->rk = rk;
    c->topic = tl_xstrdup(topic);
    return c;
}

void tl_kafka_changelog_destroy(tl_kafka_changelog *c)
{
    if (!c) return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c->topic);
    free(c);
}

int tl_kafka_changelog_ensure(tl_kafka_changelog *c, const char *input_topic, char *err,
                              size_t errlen)
{
    return tl_kafka_topic_ensure(c->rk, c->topic, input_topic, 1, err, errlen);
}

int tl_kafka_changelog_restore(void *arg, tl_store *s, int32_t partition)
{
    tl_kafka_changelog *c = arg;
    int64_t lo = 0, hi = 0;
    /* A changelog created moments ago may not have leaders for its partitions yet. */
    rd_kafka_resp_err_t qe;
    int64_t deadline = tl_mono_ns() + 60 * (int64_t)1000000000;
    while ((qe = rd_kafka_query_watermark_offsets(c->rk, c->topic, partition, &lo, &hi, 10000)) &&
           (qe == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
            qe == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            qe == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
            qe == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
            qe == RD_KAFKA_RESP_ERR__TRANSPORT) &&
           tl_mono_ns() < deadline) {
        TL_LOG_INFO("changelog", "waiting for topic=%s partition=%d: %s", c->topic, (int)partition,
                    rd_kafka_err2str(qe));
        rd_kafka_poll(c->rk, 200);   /* serves metadata refreshes; also the wait */
    }
    if (qe) {
        TL_LOG_ERROR("changelog", "cannot read the end of topic=%s partition=%d: %s", c->topic,
                     (int)partition, rd_kafka_err2str(qe));
        return -1;
    }
    tl_changelog_replay r;
    if (!tl_changelog_replay_begin(&r, s, partition, lo, hi)) return 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition)->offset = r.from;
    rd_kafka_assign(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int ok = 1, done = 0;
    /* Messages in batches from the consumer queue: one call per thousands of records. */
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_message_t *ms[4096];
    while (!done) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, ms, 4096);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = ms[i];
            if (done) {
                /* past the end or after an error: not used */
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done = 1;
            } else if (m->err) {
                TL_LOG_WARN("changelog", "restore partition=%d: %s", (int)partition,
                            rd_kafka_message_errstr(m));
            } else if (m->key &&
                       tl_changelog_replay_apply(&r, m->key, m->key_len, m->payload, m->len,
                                                 m->offset) != 0) {
                ok = 0;
                done = 1;
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_queue_destroy(q);
    int rc = tl_changelog_replay_end(&r, ok);
    rd_kafka_assign(c->rk, NULL);
    return rc;
}
