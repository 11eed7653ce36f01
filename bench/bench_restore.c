/*
 * bench_restore.c -- restore rate from the changelog: fills a compacted changelog
 * partition with N user records (3 interest entries and 2 touchpoints each, the size of a
 * typical user), then times tl_kafka_changelog_restore into an empty store, as after a lost
 * disk.
 *
 *   bench_restore BOOTSTRAP [--keys N]
 * Prints keys=N seconds=S keys_per_s=R. bench/run.py restore starts a broker and runs it.
 */
#define _XOPEN_SOURCE 700
#include "engine/state.h"
#include "lib/util.h"
#include "ingest/kafka_changelog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_restore BOOTSTRAP [--keys N]\n");
        return 2;
    }
    long n = 5000000;
    if (argc == 4 && !strcmp(argv[2], "--keys")) n = atol(argv[3]);
    char err[512], topic[64], dir[] = "/tmp/tally-restore-XXXXXX";
    snprintf(topic, sizeof(topic), "restore-bench-%d", (int)(tl_now_ms() % 1000000));

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", argv[1], NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "20", NULL, 0);
    rd_kafka_conf_set(pc, "compression.type", "lz4", NULL, 0);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) return 1;

    /* The topic: one partition, compacted (created by the changelog code, as tally does,
     * with the partition count of an "input" topic we make first). */
    char input[80];
    snprintf(input, sizeof(input), "%s-input", topic);
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", argv[1], NULL, 0);
    rd_kafka_conf_set(cc, "group.id", "restore-bench", NULL, 0);
    tl_kafka_changelog *cl = tl_kafka_changelog_new(cc, topic, err, sizeof(err));
    if (!cl) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(input), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_END);
    rd_kafka_flush(prod, 30000);   /* auto-creates the input topic */
    if (tl_kafka_changelog_ensure(cl, input, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    tl_user u;
    memset(&u, 0, sizeof(u));
    u.labelled = INT64_MIN;
    for (int k = 0; k < 3; k++) {
        char id[16];
        snprintf(id, sizeof(id), "c%d", 1000 + k);
        tl_interest *e = tl_user_add_interest(&u, TL_DIM_CATEGORY, id);
        e->f = 1.5 + k;
        e->h = 3.0 + k;
        e->t = 1700000000000LL;
    }
    for (int k = 0; k < 2; k++) {
        tl_event ev = {.event_id = "e123456",
                       .item_id = "i98765",
                       .category_id = "c1001",
                       .channel = "feed",
                       .type = TL_BROWSE,
                       .ts = 1700000000000LL + k};
        tl_user_add_tp(&u, &ev, 0.4f);
    }
    tl_buf val = {0};
    tl_user_encode(&u, &val);
    tl_user_clear(&u);
    int64_t t0 = tl_mono_ns();
    for (long i = 0; i < n; i++) {
        char key[24];
        int kl = snprintf(key, sizeof(key), "u%ld", i);
        while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_KEY(key, (size_t)kl),
                                 RD_KAFKA_V_VALUE(val.data, val.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
    }
    rd_kafka_flush(prod, 600000);
    fprintf(stderr, "produced %ld records of %zu bytes in %.1f s\n", n, val.len,
            (double)(tl_mono_ns() - t0) / 1e9);

    if (!mkdtemp(dir)) return 1;
    tl_store *s = tl_store_open(dir, 0, 64 << 20, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    t0 = tl_mono_ns();
    int rc = tl_kafka_changelog_restore(cl, s, 0);
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    printf("keys=%ld seconds=%.2f keys_per_s=%.0f value_bytes=%zu\n", n, secs, n / secs, val.len);
    tl_store_close(s);
    tl_kafka_changelog_destroy(cl);
    rd_kafka_destroy(prod);
    tl_buf_free(&val);
    tl_rmtree(dir);
    return rc == 0 ? 0 : 1;
}
