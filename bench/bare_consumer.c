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
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);

    /* Partition count, to know when every partition reached its end. */
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
        fprintf(stderr, "no metadata for %s\n", argv[2]);
        return 1;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    char *at_end = calloc((size_t)parts, 1);
    int ended = 0;
    long long n = 0;
    size_t bytes = 0;
    double t0 = 0;
    while (ended < parts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition < parts && !at_end[m->partition]) {
                at_end[m->partition] = 1;
                ended++;
            }
        } else if (!m->err) {
            if (n++ == 0) t0 = now_s();
            bytes += m->len;
            if (m->partition < parts && at_end[m->partition]) {
                at_end[m->partition] = 0;
                ended--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    double secs = now_s() - t0;
    printf("records=%lld bytes=%zu seconds=%.3f records_per_s=%.0f\n", n, bytes, secs,
           secs > 0 ? (double)n / secs : 0.0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(at_end);
    return 0;
}
