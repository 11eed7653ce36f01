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
 *   roll-up record    tl_avro_rollup_bound(ingest.max.string.bytes) + its key (the value
 *                     and BOUNDS_KEY), on the roll-up topic and on its partials topic
 *
 * (The shared Markov chain's records, on the partials and state topics, grow with the
 * chain: they are not bounded here.)
 *
 * against the smaller of the producer's message.max.bytes and the topic's
 * max.message.bytes (asked of the broker; when it does not answer, the producer's limit
 * alone is checked and a warning says so).
 */
#include "bounds.h"
#include "config.h"
#include "kafka_client.h"
#include "lib/log.h"
#include "domain/records.h"
#include "engine/state.h"
#include "model/attribution.h"
#include "sink/avro_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUNDS_HEADERS 2048   /* a dead letter's headers: reason, error (< 700), source */
#define BOUNDS_RECORD 512     /* a record's framing in a batch: lengths, timestamp, attrs */
#define BOUNDS_KEY 96         /* a roll-up key besides its value: dim|window|start| */

#define TOPIC_MISSING (-2)

/* One configuration value of a resource (a topic, or a broker by its id), or NULL when the
 * broker does not say; malloc'ed. *missing is set when the resource does not exist. */
static char *describe(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                      const char *key, int *missing)
{
    char *out = NULL;
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(type, name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    const rd_kafka_DescribeConfigs_result_t *r =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_ConfigResource_t **rs =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &n) : NULL;
    rd_kafka_resp_err_t e = n == 1 ? rd_kafka_ConfigResource_error(rs[0]) : RD_KAFKA_RESP_ERR__FAIL;
    if (missing) *missing = e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (n == 1 && e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t ne = 0;
        const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[0], &ne);
        for (size_t i = 0; i < ne && !out; i++)
            if (!strcmp(rd_kafka_ConfigEntry_name(ce[i]), key) && rd_kafka_ConfigEntry_value(ce[i]))
                out = strdup(rd_kafka_ConfigEntry_value(ce[i]));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return out;
}

/* 1 when the broker creates topics on first use, 0 when not, -1 when it does not say. */
static int broker_auto_creates(rd_kafka_t *rk)
{
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    char id[16];
    int have = md->broker_cnt > 0;
    if (have) snprintf(id, sizeof(id), "%d", (int)md->brokers[0].id);
    rd_kafka_metadata_destroy(md);
    if (!have) return -1;
    char *v = describe(rk, RD_KAFKA_RESOURCE_BROKER, id, "auto.create.topics.enable", NULL);
    int rc = v ? !strcmp(v, "true") : -1;
    free(v);
    return rc;
}

/* The topic's max.message.bytes, TOPIC_MISSING when it does not exist, or -1 when the
 * broker does not say. */
static long long topic_limit(rd_kafka_t *rk, const char *topic)
{
    int missing = 0;
    char *v = describe(rk, RD_KAFKA_RESOURCE_TOPIC, topic, "max.message.bytes", &missing);
    long long limit = v ? atoll(v) : missing ? TOPIC_MISSING : -1;
    free(v);
    return limit;
}

/* The limit a record for topic must fit: the producer's, or the topic's when smaller.
 * -2 with err when the topic does not exist and the broker will not create it.
 * *auto_create caches broker_auto_creates (-2: not asked yet). */
static long long limit_for(rd_kafka_t *rk, long long producer, const char *topic,
                           const char **which, int *auto_create, char *err, size_t errlen)
{
    long long t = topic_limit(rk, topic);
    *which = "the producer's message.max.bytes";
    if (t == TOPIC_MISSING) {
        if (*auto_create == -2) *auto_create = broker_auto_creates(rk);
        if (*auto_create == 0) {
            snprintf(err, errlen,
                     "topic %s does not exist, and the broker does not create "
                     "topics (auto.create.topics.enable=false): create it, or name another one",
                     topic);
            return -2;
        }
        TL_LOG_INFO("run", "topic=%s does not exist yet: %s", topic,
                    *auto_create == 1 ? "the broker creates it on first write, with its defaults"
                                      : "the broker may create it on first write");
        return producer;
    }
    if (t < 0) {
        TL_LOG_WARN("run",
                    "topic=%s: max.message.bytes unknown (not allowed to describe it, "
                    "or no answer); checking the producer's limit only",
                    topic);
        return producer;
    }
    if (t < producer) {
        *which = "the topic's max.message.bytes";
        return t;
    }
    return producer;
}

int tl_app_check_record_bounds(const tl_config *c, rd_kafka_t *producer,
                               const char *const outputs[TL_BOUNDS_OUTPUTS],
                               const char *changelog_topic, const char *const rollups[2], char *err,
                               size_t errlen)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    char v[32];
    size_t n = sizeof(v);
    long long pmax = 1000000;   /* librdkafka's default */
    if (rd_kafka_conf_get(rd_kafka_conf(producer), "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK)
        pmax = atoll(v);
    size_t S = (size_t)ac.max_string_bytes;
    tl_features_cfg fc;
    tl_attr_cfg atc;
    if (tl_features_cfg_load(&fc, c, err, errlen) != 0 ||
        tl_attr_cfg_load(&atc, c, err, errlen) != 0)
        return -1;
    long long ent = fc.max_interests;
    long long tps = atc.max_touchpoints;
    long long dlq_max = ac.dlq_max_record_bytes;
    char keys_s[64], keys_st[128], keys_dlq[64], keys_user[192];
    snprintf(keys_s, sizeof(keys_s), "ingest.max.string.bytes=%zu", S);
    snprintf(keys_st, sizeof(keys_st), "%s, attribution.max.touchpoints=%lld", keys_s, tps);
    snprintf(keys_dlq, sizeof(keys_dlq), "dlq.max.record.bytes=%lld plus a key and headers",
             dlq_max);
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
        {"an intent delta", outputs[4], keys_s, "lower it",
         (long long)tl_avro_intent_bound(S) + BOUNDS_RECORD},
        {"a next_categories record", outputs[5], keys_s, "lower it",
         (long long)tl_avro_next_categories_bound(S) + BOUNDS_RECORD},
        {"a user's changelog record", changelog_topic, keys_user, "lower one of them",
         (long long)(tl_user_encoded_bound(S, (size_t)ent, (size_t)tps) + S) + BOUNDS_RECORD},
        {"a roll-up total", rollups ? rollups[0] : NULL, keys_s, "lower it",
         (long long)(tl_avro_rollup_bound(S) + S) + BOUNDS_KEY + BOUNDS_RECORD},
        {"a roll-up partial", rollups ? rollups[1] : NULL, keys_s, "lower it",
         (long long)(tl_avro_rollup_bound(S) + S) + BOUNDS_KEY + BOUNDS_RECORD},
    };
    int auto_create = -2;
    for (size_t i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
        if (!rec[i].topic) continue;
        const char *which;
        long long lim = limit_for(producer, pmax, rec[i].topic, &which, &auto_create, err, errlen);
        if (lim < 0) return (int)lim;
        if (rec[i].bound > lim) {
            snprintf(err, errlen,
                     "%s on %s can reach %lld bytes (%s), more than %s (%lld): %s "
                     "or raise the limit",
                     rec[i].what, rec[i].topic, rec[i].bound, rec[i].keys, which, lim,
                     rec[i].advice);
            return -1;
        }
        TL_LOG_DEBUG("run", "record bound: %s on %s at most %lld bytes, limit %lld", rec[i].what,
                     rec[i].topic, rec[i].bound, lim);
    }
    return 0;
}
