/*
 * test_model_feed.c -- ingest/model_feed.h against librdkafka's mock cluster: the dead
 * letters of a topic read for the model are handed out once per transaction that commits,
 * and again, first and in their order, after one that did not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "ingest/model_feed.h"
#include "lib/util.h"

#define TOPIC "tally-test-model"

/* A record applies unless its value starts with "bad". */
static int apply(void *arg, const void *data, size_t len, int64_t offset, char *err, size_t errlen)
{
    (void)arg, (void)offset;
    if (len >= 3 && !memcmp(data, "bad", 3)) {
        snprintf(err, errlen, "a bad record");
        return -1;
    }
    return 0;
}

/* The offsets of the dead letters handed out, in order; refuses any past `room`. */
typedef struct taken {
    int64_t offset[16];
    int n, room;
} taken;

static int take(void *arg, const tl_dlq_record *d)
{
    taken *t = arg;
    if (t->n == t->room) return -1;
    assert_string_equal(d->topic, TOPIC);
    assert_int_equal(d->reason, TL_DLQ_MALFORMED);
    t->offset[t->n++] = d->offset;
    return 0;
}

static void produce(rd_kafka_t *p, const char *value)
{
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Polls f until it keeps n dead letters not yet handed out (at most 30 s). */
static void wait_pending(tl_model_feed *f, int n)
{
    int64_t deadline = tl_mono_ns() + 30 * INT64_C(1000000000);
    while (tl_model_feed_dead_pending(f) < n && tl_mono_ns() < deadline) {
        tl_model_feed_poll(f, apply, NULL, 100);
        tl_sleep_ms(10);
    }
    assert_int_equal(tl_model_feed_dead_pending(f), n);
}

static void test_dead_letters_settle(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "test.mock.num.brokers", "1", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    assert_non_null(p);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(p);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    produce(p, "bad 0");
    produce(p, "good 1");
    produce(p, "bad 2");

    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof err),
                     RD_KAFKA_CONF_OK);
    /* as the application's consumer configuration has one (no group is joined) */
    assert_int_equal(rd_kafka_conf_set(cc, "group.id", "tally-test", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    tl_model_feed *f = tl_model_feed_new(cc, "test topic", "tally_test_bad_total", TOPIC, -1, NULL,
                                         0, err, sizeof err);
    if (!f) fail_msg("%s", err);
    wait_pending(f, 2);

    /* handed out in a transaction that does not commit */
    taken t = {.room = 16};
    assert_int_equal(tl_model_feed_dead_letters(f, take, &t), 2);
    assert_int_equal(tl_model_feed_dead_pending(f), 0);
    assert_int_equal(tl_model_feed_dead_settle(f, 0), 2);
    assert_int_equal(tl_model_feed_dead_pending(f), 2);

    /* one more arrives; the two come again first, then it */
    produce(p, "bad 3");
    wait_pending(f, 3);
    t = (taken){.room = 2};   /* the sink takes two, then refuses */
    assert_int_equal(tl_model_feed_dead_letters(f, take, &t), 2);
    assert_int_equal(t.offset[0], 0);
    assert_int_equal(t.offset[1], 2);
    assert_int_equal(tl_model_feed_dead_pending(f), 1);
    t.room = 16;
    assert_int_equal(tl_model_feed_dead_letters(f, take, &t), 1);
    assert_int_equal(t.offset[2], 3);

    /* that transaction commits: all three are forgotten */
    assert_int_equal(tl_model_feed_dead_settle(f, 1), 3);
    assert_int_equal(tl_model_feed_dead_settle(f, 0), 0);
    assert_int_equal(tl_model_feed_dead_pending(f), 0);
    t = (taken){.room = 16};
    assert_int_equal(tl_model_feed_dead_letters(f, take, &t), 0);

    tl_model_feed_stats st;
    tl_model_feed_stats_get(f, &st);
    assert_int_equal(st.bad, 3);
    assert_int_equal(st.applied, 1);
    tl_model_feed_destroy(f);
    rd_kafka_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letters_settle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
