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
