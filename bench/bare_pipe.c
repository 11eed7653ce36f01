/*
 * bare_pipe.c -- the limit of a Kafka-to-Kafka processor on this machine and broker: a
 * librdkafka consumer-group member that, for every input record, produces one record of
 * the same size (its value copied, keyed as the input) to an output topic, and nothing
 * else. `bench/run.py pipe` runs it beside `tally run` on the same backlog, so tally's
 * throughput can be stated as a share of what consuming and producing alone achieve.
 *
 *   bench_bare_pipe BOOTSTRAP TOPIC GROUP OUT_TOPIC at_least_once|exactly_once
 *
 * at_least_once: idempotent producer, offsets auto-committed. exactly_once: a
 * transactional producer; every 100 ms (as tally's default commit interval) the consumed
 * offsets are sent to the transaction and it commits, as a Kafka Streams-like processor
 * does. Runs until every partition of TOPIC is at its end and every record produced is
 * delivered (and, exactly_once, committed). Prints one line:
 * records=N seconds=S records_per_s=R transactions=T.
 */
#include "bare_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_bare_pipe: %s: %s\n", what, why);
    exit(1);
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) die(k, err);
}

static void check(rd_kafka_error_t *e, const char *what)
{
    if (!e) return;
    die(what, rd_kafka_error_string(e));
}

/* Commits the open transaction with the consumer's positions, and begins the next. */
static void commit(rd_kafka_t *p, rd_kafka_t *c)
{
    rd_kafka_topic_partition_list_t *pos = NULL;
    if (rd_kafka_assignment(c, &pos) || rd_kafka_position(c, pos)) die("position", "failed");
    rd_kafka_consumer_group_metadata_t *g = rd_kafka_consumer_group_metadata(c);
    check(rd_kafka_send_offsets_to_transaction(p, pos, g, -1), "send_offsets_to_transaction");
    rd_kafka_consumer_group_metadata_destroy(g);
    rd_kafka_topic_partition_list_destroy(pos);
    check(rd_kafka_commit_transaction(p, -1), "commit_transaction");
    check(rd_kafka_begin_transaction(p), "begin_transaction");
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[5], "at_least_once") && strcmp(argv[5], "exactly_once"))) {
        fprintf(stderr,
                "usage: bench_bare_pipe BOOTSTRAP TOPIC GROUP OUT_TOPIC "
                "at_least_once|exactly_once\n");
        return 2;
    }
    int eos = !strcmp(argv[5], "exactly_once");
    char err[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    set(cc, "bootstrap.servers", argv[1]);
    set(cc, "group.id", argv[3]);
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.partition.eof", "true");
    set(cc, "partition.assignment.strategy", "cooperative-sticky");
    set(cc, "enable.auto.commit", eos ? "false" : "true");
    set(cc, "isolation.level", "read_committed");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!c) die("consumer", err);
    rd_kafka_poll_set_consumer(c);

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    set(pc, "bootstrap.servers", argv[1]);
    set(pc, "enable.idempotence", "true");
    set(pc, "linger.ms", "5");
    set(pc, "compression.type", "lz4");   /* tally's producer defaults */
    if (eos) {
        char tid[256];
        snprintf(tid, sizeof(tid), "bare-pipe-%s", argv[3]);
        set(pc, "transactional.id", tid);
    }
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!p) die("producer", err);
    if (eos) {
        check(rd_kafka_init_transactions(p, 30000), "init_transactions");
        check(rd_kafka_begin_transaction(p), "begin_transaction");
    }

    int parts = bare_subscribe(c, argv[2]);
    if (parts < 0) die(argv[2], "no metadata");

    bare_ends ends;
    bare_ends_init(&ends, parts);
    long long n = 0, txns = 0;
    double t0 = 0, last_commit = bare_now_s();
    while (ends.ended < parts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m) bare_ends_note(&ends, m);
        if (m && !m->err) {
            if (n++ == 0) t0 = bare_now_s();
            for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(argv[4]), RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    if (e) die("produce", rd_kafka_err2str(e));
                    break;
                }
                rd_kafka_poll(p, 10);   /* the queue drains as deliveries come back */
            }
        }
        if (m) rd_kafka_message_destroy(m);
        rd_kafka_poll(p, 0);
        if (eos && bare_now_s() - last_commit >= 0.1) {
            commit(p, c);
            txns++;
            last_commit = bare_now_s();
        }
    }
    if (eos) {
        commit(p, c);
        txns++;
    }
    if (rd_kafka_flush(p, 60000)) die("flush", "records left undelivered");
    double secs = bare_now_s() - t0;
    printf("records=%lld seconds=%.3f records_per_s=%.0f transactions=%lld\n", n, secs,
           secs > 0 ? (double)n / secs : 0.0, txns);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    bare_ends_free(&ends);
    return 0;
}
