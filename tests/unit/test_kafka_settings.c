/*
 * test_kafka_settings.c -- the librdkafka settings table (lib/kafka_settings.c): every
 * client's settings are names and values librdkafka takes, and they land in the
 * configuration, later clients overriding earlier ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/kafka.h"

static void expect(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char got[256];
    size_t n = sizeof(got);
    assert_int_equal(rd_kafka_conf_get(conf, name, got, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(got, value);
}

/* librdkafka refuses an unknown name or a bad value: a typo in the table fails here. */
static void test_every_client_applies(void **state)
{
    (void)state;
    for (int c = 0; c < TL_KC_COUNT; c++) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512] = "";
        if (tl_kafka_settings_apply(conf, (tl_kafka_client)c, err, sizeof(err)) != 0)
            fail_msg("client %d: %s", c, err);
        rd_kafka_conf_destroy(conf);
    }
}

static void test_values(void **state)
{
    (void)state;
    char err[512] = "";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_PRODUCER, err, sizeof(err)), 0);
    expect(conf, "partitioner", "murmur2_random");
    expect(conf, "compression.type", "lz4");
    rd_kafka_conf_destroy(conf);

    conf = rd_kafka_conf_new();
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_CONSUMER, err, sizeof(err)), 0);
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_INPUT, err, sizeof(err)), 0);
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_INPUT_EOS, err, sizeof(err)), 0);
    expect(conf, "session.timeout.ms", "10000");
    expect(conf, "partition.assignment.strategy", "cooperative-sticky");
    expect(conf, "isolation.level", "read_committed");
    expect(conf, "enable.auto.offset.store", "false");
    rd_kafka_conf_destroy(conf);

    /* the shared model's reader reads as a stream: its eof overrides the readers' */
    conf = rd_kafka_conf_new();
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_READER, err, sizeof(err)), 0);
    expect(conf, "enable.partition.eof", "true");
    assert_int_equal(tl_kafka_settings_apply(conf, TL_KC_MODEL_FEED, err, sizeof(err)), 0);
    expect(conf, "enable.partition.eof", "false");
    expect(conf, "isolation.level", "read_committed");
    rd_kafka_conf_destroy(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_client_applies),
        cmocka_unit_test(test_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
