/*
 * kafka_client.h -- librdkafka clients as tally sets them up.
 */
#ifndef TL_APP_KAFKA_CLIENT_H
#define TL_APP_KAFKA_CLIENT_H

#include "lib/config.h"

#include <librdkafka/rdkafka.h>

/* A librdkafka configuration with every kafka.* (and kafka.<side>.*) key applied. */
rd_kafka_conf_t *tl_app_kafka_conf(const tl_config *c, const char *side);
/* Routes librdkafka's log lines into tally's log. */
void tl_app_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* 1 if a librdkafka client of this process failed to authenticate (SASL), to verify TLS or
 * to connect to a broker; the first call then logs "authentication failed: <librdkafka's
 * reason>" or "cannot reach Kafka at <kafka.bootstrap.servers>: <the last connection
 * error>". Called where a Kafka command fails, so a timeout says why. */
int tl_app_kafka_why_failed(const tl_config *c);
/* 1 when the cluster's topic list has topic, 0 when not, -1 when the broker does not
 * answer. Asks for every topic: a metadata request for one topic may create it. */
int tl_app_topic_exists(rd_kafka_t *rk, const char *topic);

#endif
