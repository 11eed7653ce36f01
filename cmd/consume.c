/*
 * consume.c -- `tally consume`: its options, then the topic printed (app/topic_read.c).
 */
#include "cmd.h"
#include "app/schemas.h"
#include "app/topic_read.h"

#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "usage: tally consume --topic TOPIC [--from-end] [--max N] [--until-end]\n"
    "                     [-c FILE] [-X key=value ...]\n"
    "\n"
    "Prints the records of TOPIC as JSON lines: {\"partition\", \"offset\", \"key\",\n"
    "\"schema_id\", \"value\"}, the value decoded from Confluent-framed Avro with the writer\n"
    "schema of its id (schema.registry.url, or schema.dir / the installed schemas). Reads\n"
    "committed records only, without a consumer group.\n"
    "\n"
    "  --topic TOPIC   e.g. tally.attributions\n"
    "  --from-end      only records written from now on (default: from the beginning)\n"
    "  --max N         stop after N records\n"
    "  --until-end     stop once every partition is read to its end\n";

int tl_cmd_consume(int argc, char **argv)
{
    struct {
        const char *topic, *max;
        int from_end, until_end;
    } a = {0};
    const tl_cmd_opt opts[] = {
        {"--topic", &a.topic, NULL},
        {"--max", &a.max, NULL},
        {"--from-end", NULL, &a.from_end},
        {"--until-end", NULL, &a.until_end},
        {NULL, NULL, NULL},
    };
    tl_config *c = tl_cmd_kafka_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    if (!a.topic) {
        tl_config_destroy(c);
        return tl_cmd_usage_error(usage, "--topic is required");
    }
    long long max = a.max ? atoll(a.max) : -1;
    int rc = 1;
    tl_schema_store *store = NULL;
    tl_codec *codec = tl_app_codec_new(c, &store);   /* the schema store is what is needed */
    tl_app_signals();
    if (codec) rc = tl_app_print_topic(c, store, a.topic, a.from_end, max, a.until_end, stdout);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    tl_config_destroy(c);
    return rc;
}
