/*
 * bounds.c -- every record tally produces fits where it goes (bounds.h).
 *
 * A record larger than the producer's message.max.bytes, or than its topic's
 * max.message.bytes, fails its produce; under exactly_once that aborts the transaction,
 * and the same input makes the same record after a restart: a loop. So the records'
 * sizes are bounded by configuration (docs/operations.md, "Bounds") and the bounds are
 * checked here, once, before the first record:
 *
 *   interest delta    tl_avro_interest_bound(ingest.max.string.bytes)
 *   attribution       tl_avro_attribution_bound(ingest.max.string.bytes,
 *                     attribution.max.touchpoints)
 *   credit delta      tl_avro_credit_bound(ingest.max.string.bytes)
 *   dead letter       dlq.max.record.bytes + TL_DLQ_MAX_KEY_BYTES + BOUNDS_HEADERS
 *   changelog record  tl_user_encoded_bound(ingest.max.string.bytes,
 *                     features.max.interests, attribution.max.touchpoints)
 *                     + a user id (ingest.max.string.bytes) + BOUNDS_RECORD
 *
 * against the smaller of the producer's message.max.bytes and the topic's
 * max.message.bytes (asked of the broker; when it does not answer, the producer's limit
 * alone is checked and a warning says so).
 */
#include "bounds.h"
#include "core/log.h"
#include "core/records.h"
#include "core/state.h"
#include "sink/avro_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUNDS_HEADERS 2048   /* a dead letter's headers: reason, error (< 700), source */
#define BOUNDS_RECORD 512     /* a record's framing in a batch: lengths, timestamp, attrs */

/* The topic's max.message.bytes, or -1 when the broker does not say. */
static long long topic_limit(rd_kafka_t *rk, const char *topic)
{
    long long limit = -1;
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    const rd_kafka_DescribeConfigs_result_t *r = ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_ConfigResource_t **rs = r ? rd_kafka_DescribeConfigs_result_resources(r, &n) : NULL;
    if (n == 1 && rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t ne = 0;
        const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(rs[0], &ne);
        for (size_t i = 0; i < ne; i++)
            if (!strcmp(rd_kafka_ConfigEntry_name(e[i]), "max.message.bytes") &&
                rd_kafka_ConfigEntry_value(e[i]))
                limit = atoll(rd_kafka_ConfigEntry_value(e[i]));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return limit;
}

/* The limit a record for topic must fit: the producer's, or the topic's when smaller. */
static long long limit_for(rd_kafka_t *rk, long long producer, const char *topic,
                           const char **which)
{
    long long t = topic_limit(rk, topic);
    *which = "the producer's message.max.bytes";
    if (t < 0) {
        TL_LOG_WARN("run", "topic=%s: max.message.bytes unknown (not created yet, or not "
                    "allowed to describe it); checking the producer's limit only", topic);
        return producer;
    }
    if (t < producer) {
        *which = "the topic's max.message.bytes";
        return t;
    }
    return producer;
}

int tl_cmd_check_record_bounds(const tl_config *c, rd_kafka_t *producer,
                               const char *const outputs[TL_BOUNDS_OUTPUTS],
                               const char *changelog_topic, char *err, size_t errlen)
{
    char v[32];
    size_t n = sizeof(v);
    long long pmax = 1000000;   /* librdkafka's default */
    if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK)
        pmax = atoll(v);
    size_t S = (size_t)tl_config_int(c, "ingest.max.string.bytes");
    long long ent = tl_config_int(c, "features.max.interests");
    long long tps = tl_config_int(c, "attribution.max.touchpoints");
    long long dlq_max = tl_config_int(c, "dlq.max.record.bytes");
    char keys_s[64], keys_st[128], keys_dlq[64], keys_user[192];
    snprintf(keys_s, sizeof(keys_s), "ingest.max.string.bytes=%zu", S);
    snprintf(keys_st, sizeof(keys_st), "%s, attribution.max.touchpoints=%lld", keys_s, tps);
    snprintf(keys_dlq, sizeof(keys_dlq), "dlq.max.record.bytes=%lld plus a key and headers", dlq_max);
    snprintf(keys_user, sizeof(keys_user), "%s, features.max.interests=%lld", keys_st, ent);
    const struct {
        const char *what, *topic, *keys, *advice;
        long long bound;
    } rec[] = {
        {"an interest delta", outputs[0], keys_s, "lower it",
         (long long)tl_avro_interest_bound(S) + BOUNDS_RECORD},
        {"an attribution", outputs[1], keys_st, "lower one of them",
         (long long)tl_avro_attribution_bound(S, (size_t)tps) + BOUNDS_RECORD},
        {"a credit delta", outputs[2], keys_s, "lower it",
         (long long)tl_avro_credit_bound(S) + BOUNDS_RECORD},
        {"a dead letter", outputs[3], keys_dlq, "lower dlq.max.record.bytes",
         dlq_max + TL_DLQ_MAX_KEY_BYTES + BOUNDS_HEADERS},
        {"a user's changelog record", changelog_topic, keys_user, "lower one of them",
         (long long)(tl_user_encoded_bound(S, (size_t)ent, (size_t)tps) + S) + BOUNDS_RECORD},
    };
    for (size_t i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
        if (!rec[i].topic) continue;
        const char *which;
        long long lim = limit_for(producer, pmax, rec[i].topic, &which);
        if (rec[i].bound > lim) {
            snprintf(err, errlen, "%s on %s can reach %lld bytes (%s), more than %s (%lld): %s "
                     "or raise the limit", rec[i].what, rec[i].topic, rec[i].bound, rec[i].keys,
                     which, lim, rec[i].advice);
            return -1;
        }
        TL_LOG_DEBUG("run", "record bound: %s on %s at most %lld bytes, limit %lld", rec[i].what,
                     rec[i].topic, rec[i].bound, lim);
    }
    return 0;
}
