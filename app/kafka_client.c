/*
 * kafka_client.c -- librdkafka clients as tally sets them up: tally's defaults
 * (lib/kafka_settings.c) under the user's kafka.* keys, librdkafka's log lines in tally's
 * log, and the reason a client failed to connect kept so that a command can say it.
 */
#include "kafka_client.h"
#include "lib/kafka.h"
#include "lib/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct kconf_arg {
    rd_kafka_conf_t *conf;
    int producer;
    char err[512];
} kconf_arg;

static int kconf_set(void *arg, const char *name, const char *value)
{
    kconf_arg *k = arg;
    /* Consumer-group keys given without a side are meant for the consumer. */
    if (k->producer &&
        (!strcmp(name, "group.id") || !strcmp(name, "group.instance.id") ||
         !strcmp(name, "auto.offset.reset")))
        return 0;
    if (rd_kafka_conf_set(k->conf, name, value, k->err, sizeof(k->err)) != RD_KAFKA_CONF_OK) {
        if (tl_config_is_secret(name))   /* librdkafka's message may quote the value */
            snprintf(k->err, sizeof(k->err), "%s: invalid value (not shown: secret)", name);
        return -1;
    }
    return 0;
}

/* librdkafka treats a refused SASL handshake, an unverifiable certificate and a broker it
 * cannot connect to as one more connection failure and retries; what the caller sees in the
 * end is a timeout or "Broker transport failure". The reason is only in librdkafka's log
 * lines, logged from its broker threads: the first authentication failure and the last
 * connection failure are kept so that a failed command can say what happened
 * (tl_app_kafka_why_failed). */
static pthread_mutex_t why_mu = PTHREAD_MUTEX_INITIALIZER;
static char auth_why[512], conn_why[512];
static int why_reported;

static void note_failure(int level, const char *buf)
{
    static const char *const auth[] = {"SASL authentication error", "Authentication failed",
                                       "SSL handshake failed", "certificate verify failed"};
    if (level > 4) return;
    for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
        if (!strstr(buf, auth[i])) continue;
        pthread_mutex_lock(&why_mu);
        if (!auth_why[0]) snprintf(auth_why, sizeof(auth_why), "%s", buf);
        pthread_mutex_unlock(&why_mu);
        return;
    }
    /* "Connect to ipv4#127.0.0.1:1 failed: Connection refused", "Failed to resolve ..." */
    if ((strstr(buf, "Connect to ") && strstr(buf, " failed: ")) ||
        strstr(buf, "Failed to resolve")) {
        pthread_mutex_lock(&why_mu);
        snprintf(conn_why, sizeof(conn_why), "%s", buf);
        pthread_mutex_unlock(&why_mu);
    }
}

int tl_app_kafka_why_failed(const tl_config *c)
{
    char a[sizeof(auth_why)], n[sizeof(conn_why)];
    pthread_mutex_lock(&why_mu);
    memcpy(a, auth_why, sizeof(a));
    memcpy(n, conn_why, sizeof(n));
    int first = (a[0] || n[0]) && !why_reported;
    if (first) why_reported = 1;
    pthread_mutex_unlock(&why_mu);
    if (first && a[0])
        TL_LOG_ERROR("kafka",
                     "authentication failed: %s (check kafka.security.protocol, "
                     "kafka.sasl.* and kafka.ssl.*)",
                     a);
    else if (first)
        TL_LOG_ERROR("kafka", "cannot reach Kafka at %s (kafka.bootstrap.servers): %s",
                     tl_config_kafka(c, "bootstrap.servers")
                         ? tl_config_kafka(c, "bootstrap.servers")
                         : "(not set)",
                     n);
    return a[0] || n[0];
}

void tl_app_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    note_failure(level, buf);
    tl_log_kafka(level, rd_kafka_name(rk), fac, buf);
}

rd_kafka_conf_t *tl_app_kafka_conf(const tl_config *c, const char *side)
{
    kconf_arg k = {.conf = rd_kafka_conf_new()};
    rd_kafka_conf_set_log_cb(k.conf, tl_app_kafka_log);
    /* tally's defaults (lib/kafka_settings.c), before the user's keys so that those win. */
    int consumer = !strcmp(side, "consumer");
    k.producer = !consumer;
    if (tl_kafka_settings_apply(k.conf, consumer ? TL_KC_CONSUMER : TL_KC_PRODUCER, k.err,
                                sizeof(k.err)) != 0) {
        fprintf(stderr, "tally: %s\n", k.err);
        rd_kafka_conf_destroy(k.conf);
        return NULL;
    }
    if (tl_config_each_kafka(c, side, kconf_set, &k) != 0) {
        fprintf(stderr, "tally: configuration error: kafka: %s\n", k.err);
        rd_kafka_conf_destroy(k.conf);
        return NULL;
    }
    return k.conf;
}

int tl_app_topic_exists(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    int found = 0;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        found = !strcmp(md->topics[i].topic, topic) && !md->topics[i].err;
    rd_kafka_metadata_destroy(md);
    return found;
}
