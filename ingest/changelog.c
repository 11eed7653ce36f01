/*
 * changelog.c -- the user-state changelog on Kafka.
 *
 * Every exactly-once transaction writes, for each user the batch touched, the user's
 * whole state record keyed by user id to the changelog partition equal to the input
 * partition (compaction keeps the latest). A store records the changelog offset its
 * RocksDB contents reflect; restoring a partition reads the changelog read_committed
 * from just after that offset to the end, so after a crash only the tail is replayed
 * and nothing local is wiped. A missing or deleted store (offset -1) is rebuilt from the
 * start of the changelog.
 *
 * The restore consumer is a plain assigned consumer (no group); it is kept for the life
 * of the pipeline and used from the rebalance callback, on the processing thread.
 */
#include "changelog.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_changelog {
    rd_kafka_t *rk;
    char *topic;
};

tl_prom_series *tl_changelog_restoring(void)
{
    return tl_prom_gauge("tally_restoring_partitions",
                         "Partitions being restored from the changelog now.", NULL);
}

tl_prom_series *tl_changelog_remaining(int32_t partition)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", (int)partition);
    return tl_prom_gauge("tally_restore_remaining_records",
                         "Changelog records left to restore, by partition.", "partition", p, NULL);
}

static void restore_metrics(tl_prom_series **restoring, tl_prom_series **restored)
{
    *restoring = tl_changelog_restoring();
    *restored = tl_prom_counter("tally_restore_records_total",
                                "Changelog records restored into the local state.", NULL);
}

tl_changelog *tl_changelog_new(rd_kafka_conf_t *conf, const char *topic, char *err, size_t errlen)
{
    tl_prom_series *restoring, *restored;
    restore_metrics(&restoring, &restored);   /* shown from the start, at 0 */
    char e[512];
    tl_kafka_settings_apply(conf, TL_KC_READER, e, sizeof(e));   /* lib/kafka_settings.c */
    tl_kafka_settings_apply(conf, TL_KC_RESTORE, e, sizeof(e));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!rk) {
        snprintf(err, errlen, "changelog consumer: %s", e);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    tl_changelog *c = tl_xcalloc(1, sizeof(*c));
    c->rk = rk;
    c->topic = tl_xstrdup(topic);
    return c;
}

void tl_changelog_destroy(tl_changelog *c)
{
    if (!c) return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c->topic);
    free(c);
}

/* The topic's partition count, or -1 with *why set. A topic created a moment ago can
 * answer "leader not available" for a while: that is waited out, up to 10 s; a topic
 * that does not exist is not, unless just_created (the broker may not list it yet). */
static int partitions_of(rd_kafka_t *rk, const char *topic, int just_created,
                         rd_kafka_resp_err_t *why)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = tl_mono_ns() + 10 * (int64_t)1000000000;
    int n = -1;
    for (;;) {
        const rd_kafka_metadata_t *md = NULL;
        *why = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!*why) {
            *why = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            if (!*why && md->topics[0].partition_cnt > 0) n = md->topics[0].partition_cnt;
            else if (!*why) *why = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
            rd_kafka_metadata_destroy(md);
        }
        if (n > 0 || (*why == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && !just_created) ||
            tl_mono_ns() > deadline)
            break;
        tl_sleep_ms(100);   /* backoff before asking again */
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

int tl_kafka_partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_resp_err_t why;
    return partitions_of(rk, topic, 0, &why);
}

int tl_kafka_topic_ensure(rd_kafka_t *rk, const char *topic, const char *like, int compacted,
                          char *err, size_t errlen)
{
    return tl_kafka_topic_ensure_cfg(rk, topic, like, compacted, NULL, err, errlen);
}

int tl_kafka_topic_ensure_cfg(rd_kafka_t *rk, const char *topic, const char *like, int compacted,
                              const char *const *config, char *err, size_t errlen)
{
    rd_kafka_resp_err_t why;
    int parts = partitions_of(rk, like, 0, &why);
    if (parts <= 0) {
        snprintf(err, errlen, "input topic %s: %s%s", like, rd_kafka_err2str(why),
                 why == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? " (create it first)" : "");
        return -1;
    }
    return tl_kafka_topic_ensure_n(rk, topic, parts, compacted, config, err, errlen);
}

int tl_kafka_topic_ensure_n(rd_kafka_t *rk, const char *topic, int parts, int compacted,
                            const char *const *config, char *err, size_t errlen)
{
    rd_kafka_resp_err_t why;
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, -1, e, sizeof(e));
    if (!nt) {
        snprintf(err, errlen, "topic %s: %s", topic, e);
        return -1;
    }
    if (compacted) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    for (int i = 0; config && config[i]; i += 2)
        rd_kafka_NewTopic_set_config(nt, config[i], config[i + 1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t te = n ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
        if (!te || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = 0;
            if (!te)
                TL_LOG_INFO("kafka", "created topic=%s partitions=%d%s", topic, parts,
                            compacted ? " compacted" : "");
        } else {
            snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(te));
        }
        rd_kafka_event_destroy(ev);
    } else {
        snprintf(err, errlen, "topic %s: no answer from the broker", topic);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (rc == 0) {
        /* Also waits until the broker lists a topic just created, so that the producer
         * finds it at once. */
        int have = partitions_of(rk, topic, 1, &why);
        if (have > 0 && have != parts) {
            snprintf(err, errlen, "topic %s has %d partitions, %d expected", topic, have, parts);
            rc = -1;
        }
    }
    return rc;
}

int tl_changelog_ensure(tl_changelog *c, const char *input_topic, char *err, size_t errlen)
{
    return tl_kafka_topic_ensure(c->rk, c->topic, input_topic, 1, err, errlen);
}

int tl_changelog_restore(void *arg, tl_store *s, int32_t partition)
{
    tl_changelog *c = arg;
    int64_t from = tl_store_changelog_offset(s) + 1;   /* -1 + 1 = 0: from the start */
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
    if (from < lo) from = lo;
    /* Every restored partition has its series, at 0 once restored: a dashboard sums it. */
    tl_prom_series *remaining = tl_changelog_remaining(partition);
    if (from >= hi) {
        tl_prom_set(remaining, 0);
        TL_LOG_INFO("changelog", "restore partition=%d: up to date at offset %" PRId64,
                    (int)partition, hi);
        return 0;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition)->offset = from;
    rd_kafka_assign(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    tl_prom_series *restoring, *restored;
    restore_metrics(&restoring, &restored);
    tl_prom_set(restoring, tl_prom_gauge_value(restoring) + 1);
    tl_prom_set(remaining, (double)(hi - from));
    int64_t t0 = tl_mono_ns(), n = 0, last_report = t0;
    char err[512];
    int rc = 0, done = 0;
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
            } else if (m->key) {
                if (tl_store_restore(s, m->key, m->key_len, m->len ? m->payload : NULL, m->len,
                                     m->offset, err, sizeof(err)) != 0) {
                    TL_LOG_ERROR("changelog", "%s", err);
                    rc = -1;
                    done = 1;
                }
                if (++n % 4096 == 0) {
                    tl_prom_add(restored, 4096);
                    tl_prom_set(remaining, (double)(hi - m->offset - 1));
                    tl_health_beat();
                    if (tl_mono_ns() - last_report > 5 * (int64_t)1000000000) {
                        last_report = tl_mono_ns();
                        TL_LOG_INFO("changelog",
                                    "restoring partition=%d offset=%" PRId64 " of %" PRId64,
                                    (int)partition, m->offset, hi);
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_queue_destroy(q);
    tl_prom_add(restored, (uint64_t)(n % 4096));
    tl_prom_set(remaining, 0);
    tl_prom_set(restoring, tl_prom_gauge_value(restoring) - 1);
    if (rc == 0 && tl_store_restore_done(s, err, sizeof(err)) != 0) {
        TL_LOG_ERROR("changelog", "%s", err);
        rc = -1;
    }
    rd_kafka_assign(c->rk, NULL);
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    TL_LOG_INFO("changelog",
                "restored partition=%d records=%" PRId64 " from=%" PRId64 " to=%" PRId64
                " seconds=%.2f keys_per_s=%.0f",
                (int)partition, n, from, hi, secs, secs > 0 ? n / secs : 0.0);
    return rc;
}
