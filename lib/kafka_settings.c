/*
 * kafka_settings.c -- the librdkafka settings tally makes, in one table (kafka.h), which
 * the clients apply and docs/configuration.md prints.
 */
#include "kafka.h"

#include <stdio.h>

typedef struct setting {
    tl_kafka_client client;
    const char *name, *value, *why;
} setting;

static const char *const client_names[TL_KC_COUNT] = {
    [TL_KC_CONSUMER] = "every consumer",
    [TL_KC_PRODUCER] = "every producer",
    [TL_KC_INPUT] = "the input's consumer",
    [TL_KC_INPUT_UNTIL_END] = "the input's consumer, `tally run --until-end`",
    [TL_KC_INPUT_EOS] = "the input's consumer, exactly_once",
    [TL_KC_READER] = "the readers of whole partitions (restore, model, roll-ups, spend)",
    [TL_KC_RESTORE] = "the changelog restore",
    [TL_KC_MODEL_FEED] = "the shared model's reader",
    [TL_KC_ROLLUP_GROUP] = "the roll-up aggregator's group consumer",
};

static const setting settings[] = {
    {TL_KC_CONSUMER, "group.id", "tally", "the group when kafka.group.id is not set"},
    {TL_KC_CONSUMER, "auto.offset.reset", "earliest",
     "a new group reads its input from the beginning"},
    {TL_KC_CONSUMER, "queued.min.messages", "1000000",
     "librdkafka stops prefetching at 100000 queued messages and resumes only after a fetch "
     "backoff: with small records the consumer then runs dry for about 0.5 s at a time "
     "(3.6 s of 10 s idle on 1M events); memory stays bounded by queued.max.messages.kbytes"},
    {TL_KC_CONSUMER, "session.timeout.ms", "10000",
     "a crashed member's partitions move after this long (Kafka's default is 45 s)"},
    {TL_KC_PRODUCER, "partitioner", "murmur2_random",
     "keys go where Java's producer puts them (Kafka Streams, ksqlDB and every JVM client "
     "do), so a join on user_id against tally's topics finds them (docs/operations.md, "
     "\"Partitioning\")"},
    {TL_KC_PRODUCER, "enable.idempotence", "true", "no duplicates or reordering on retries"},
    {TL_KC_PRODUCER, "linger.ms", "5", "batches records for 5 ms"},
    {TL_KC_PRODUCER, "compression.type", "lz4", "the cheapest compression to make"},
    {TL_KC_INPUT, "enable.auto.offset.store", "false",
     "an offset is stored only once the outputs of its record are durable"},
    {TL_KC_INPUT, "partition.assignment.strategy", "cooperative-sticky",
     "a rebalance moves only the partitions that change owner; the others keep processing"},
    {TL_KC_INPUT_UNTIL_END, "enable.partition.eof", "true",
     "tells when a partition is read to its end"},
    {TL_KC_INPUT_EOS, "enable.auto.commit", "false",
     "offsets are committed by the producer's transactions"},
    {TL_KC_INPUT_EOS, "isolation.level", "read_committed",
     "input written by transactional producers is read once committed"},
    {TL_KC_READER, "isolation.level", "read_committed", "only what committed transactions wrote"},
    {TL_KC_READER, "enable.auto.commit", "false", "these readers keep their own positions"},
    {TL_KC_READER, "enable.partition.eof", "true", "tells when a partition is read to its end"},
    {TL_KC_READER, "auto.offset.reset", "earliest", "from the beginning"},
    {TL_KC_RESTORE, "max.partition.fetch.bytes", "16777216",
     "a restore reads one partition as fast as it can: large fetches"},
    {TL_KC_RESTORE, "queued.min.messages", "1000000", "... a deep queue"},
    {TL_KC_RESTORE, "fetch.wait.max.ms", "10", "... and no wait for a fuller fetch"},
    {TL_KC_MODEL_FEED, "enable.partition.eof", "false", "read as a stream, never to an end"},
    {TL_KC_MODEL_FEED, "fetch.wait.max.ms", "100", "the other instances' updates within 0.1 s"},
    {TL_KC_ROLLUP_GROUP, "partition.assignment.strategy", "cooperative-sticky",
     "as the input's consumer"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

int tl_kafka_settings_apply(rd_kafka_conf_t *conf, tl_kafka_client client, char *err, size_t errlen)
{
    char e[512];
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->client != client) continue;
        if (rd_kafka_conf_set(conf, s->name, s->value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka %s=%s: %s", s->name, s->value, e);
            return -1;
        }
    }
    return 0;
}

void tl_kafka_settings_list(FILE *out, int md)
{
    if (md)
        fprintf(out,
                "\n## librdkafka\n\n"
                "The settings tally makes for its Kafka clients (lib/kafka_settings.c). "
                "Besides these, the transactional ids and the roll-up aggregator's group "
                "come from tally's names (docs/operations.md, \"Names\").\n\n"
                "| client | setting | value | a `kafka.` key may change it | why |\n"
                "|---|---|---|---|---|\n");
    else fprintf(out, "# librdkafka\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        int dflt = s->client == TL_KC_CONSUMER || s->client == TL_KC_PRODUCER;
        if (md)
            fprintf(out, "| %s | `%s` | `%s` | %s | %s |\n", client_names[s->client], s->name,
                    s->value, dflt ? "yes" : "no", s->why);
        else
            fprintf(out, "%s=%s (%s; %s)\n    %s\n", s->name, s->value, client_names[s->client],
                    dflt ? "a default" : "fixed", s->why);
    }
}
