/*
 * bare_consumer.c -- the peer for the Kafka benchmark: a librdkafka consumer-group
 * member that drains a topic to its end and does nothing with the records, so that
 * `tally run` can be reported as a ratio of what the client library alone achieves on
 * the same broker, topic and machine.
 *
 *   bench_bare_consumer BOOTSTRAP TOPIC GROUP
 *
 * Prints one line: records=N seconds=S records_per_s=R (time from the first record to
 * the end of the last partition).
 */
#include "bare_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_bare_consumer BOOTSTRAP TOPIC GROUP\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {
        {"bootstrap.servers", argv[1]},
        {"group.id", argv[3]},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "true"},
        {"partition.assignment.strategy", "cooperative-sticky"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);

    /* Partition count, to know when every partition reached its end. */
    int parts = bare_subscribe(rk, argv[2]);
    if (parts < 0) {
        fprintf(stderr, "no metadata for %s\n", argv[2]);
        return 1;
    }
    bare_ends ends;
    bare_ends_init(&ends, parts);
    long long n = 0;
    size_t bytes = 0;
    double t0 = 0;
    while (ends.ended < parts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        bare_ends_note(&ends, m);
        if (!m->err) {
            if (n++ == 0) t0 = bare_now_s();
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    double secs = bare_now_s() - t0;
    printf("records=%lld bytes=%zu seconds=%.3f records_per_s=%.0f\n", n, bytes, secs,
           secs > 0 ? (double)n / secs : 0.0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    bare_ends_free(&ends);
    return 0;
}
