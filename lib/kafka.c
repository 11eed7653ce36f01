/*
 * kafka.c -- leaving a consumer group without librdkafka#4527's hang (kafka.h).
 */
#include "kafka.h"
#include "log.h"
#include "util.h"

static int assigned(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return 0;
    int n = l->cnt;
    rd_kafka_topic_partition_list_destroy(l);
    return n;
}

int tl_kafka_consumer_leave(rd_kafka_t *rk, int timeout_ms)
{
    int rc = 0;
    rd_kafka_resp_err_t err = rd_kafka_unsubscribe(rk);
    if (err) TL_LOG_WARN("kafka", "unsubscribe before close: %s", rd_kafka_err2str(err));
    int64_t end = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
    /* Until nothing is assigned through two polls in a row: an assignment queued before
     * the unsubscribe is served (assigned, then revoked) before close sees it. */
    for (int quiet = 0; !err && quiet < 2;) {
        if (tl_mono_ns() >= end) {
            TL_LOG_WARN("kafka", "partitions still assigned %d ms after unsubscribing; closing",
                        timeout_ms);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m) rd_kafka_message_destroy(m);
        quiet = assigned(rk) ? 0 : quiet + 1;
    }
    rd_kafka_consumer_close(rk);
    return rc;
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

rd_kafka_t *tl_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                                char *err, size_t errlen)
{
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e));
    if (!rk) {
        snprintf(err, errlen, "%s: %s", what, e);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int tl_kafka_init_transactions(rd_kafka_t *producer, const char *what, char *err, size_t errlen)
{
    rd_kafka_error_t *e = rd_kafka_init_transactions(producer, 60000);
    if (!e) return 0;
    snprintf(err, errlen, "%s: init_transactions: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return -1;
}

rd_kafka_t *tl_kafka_reader_new(rd_kafka_conf_t *conf, tl_kafka_client reader, const char *what,
                                char *err, size_t errlen)
{
    char e[512];   /* the table's settings are valid: nothing to report */
    tl_kafka_settings_apply(conf, TL_KC_READER, e, sizeof(e));
    if (reader != TL_KC_READER) tl_kafka_settings_apply(conf, reader, e, sizeof(e));
    return tl_kafka_client_new(RD_KAFKA_CONSUMER, conf, what, err, errlen);
}
