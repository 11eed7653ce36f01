/*
 * produce.c -- `tally produce`: a file of events into a Kafka topic as
 * Confluent-framed Avro (BehaviorEvent), key = user_id.
 */
#include "cmd.h"
#include "progress.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/file_source.h"
#include "ingest/schema_store.h"
#include "app/kafka_app.h"
#include "app/schemas.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tally produce --input FILE --format canonical|taobao|jsonl --topic TOPIC\n"
    "                     [--schema-id N] [--strict] [--quiet] [-c FILE] [-X key=value ...]\n"
    "\n"
    "Writes every event of FILE to TOPIC as Confluent-framed Avro (BehaviorEvent in\n"
    "tally's reader schema, schemas/10-behavior_event.avsc, framed with schema id N;\n"
    "default: with schema.registry.url the id the registry gives it under TOPIC-value\n"
    "(registered if needed), else 10), key = user_id, and waits\n"
    "until the broker acknowledged all of them. Bad rows are reported and skipped\n"
    "(or stop with --strict). On a terminal a progress line shows the count, the rate\n"
    "and the time left (--quiet: none).\n";

static void produce_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    uint64_t *failed = opaque;
    if (m->err) {
        if ((*failed)++ == 0)
            TL_LOG_ERROR("produce", "delivery failed: %s", rd_kafka_err2str(m->err));
    }
}

int tl_cmd_produce(int argc, char **argv)
{
    struct {
        const char *input, *format, *topic, *schema_id;
        int strict, quiet;
    } a = {0};
    const tl_cmd_opt opts[] = {
        {"--input", &a.input, NULL},
        {"--format", &a.format, NULL},
        {"--topic", &a.topic, NULL},
        {"--schema-id", &a.schema_id, NULL},
        {"--strict", NULL, &a.strict},
        {"--quiet", NULL, &a.quiet},
        {NULL, NULL, NULL},
    };
    tl_config *c = tl_cmd_opts_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    const tl_app_cfg ac = tl_app_cfg_of(c);
    int rc = 1;
    char err[512];
    tl_schema_store *store = NULL;
    tl_codec *codec = NULL;
    tl_source *src = NULL;
    rd_kafka_t *rk = NULL;
    uint64_t failed = 0, sent = 0;
    tl_batch b;
    tl_buf buf = {0};
    tl_batch_init(&b);

    if (!a.input || !a.format || !a.topic) {
        rc = tl_cmd_usage_error(usage, "--input, --format and --topic are required");
        goto done;
    }
    int fmt = tl_file_format_parse(a.format);
    if (fmt < 0) {
        rc = tl_cmd_usage_error(usage, "unknown format '%s'", a.format);
        goto done;
    }
    int32_t schema_id = TL_EVENT_SCHEMA_ID;
    if (a.schema_id) {
        char *end;
        errno = 0;
        long id = strtol(a.schema_id, &end, 10);
        if (!*a.schema_id || *end || errno || id < 0 || id > INT32_MAX) {
            rc = tl_cmd_usage_error(usage, "--schema-id: expected a number from 0 to %d, got '%s'",
                                    INT32_MAX, a.schema_id);
            goto done;
        }
        schema_id = (int32_t)id;
    }
    codec = tl_app_codec_new(c, &store);
    if (!codec) goto done;
    if (!a.schema_id && *ac.registry_url) {
        /* With a registry the id is the registry's: BehaviorEvent under <topic>-value, as
         * a producer with a Confluent serializer would register it. */
        char subject[512];
        char *json = tl_app_read_schema(c, TL_EVENT_SCHEMA);
        int id = 0;
        if (!json) snprintf(err, sizeof(err), "cannot read tally's BehaviorEvent schema");
        int r = !json ? TL_SCHEMA_ERROR
            : tl_app_subject(c, a.topic, json, subject, sizeof(subject), err, sizeof(err)) != 0
            ? TL_SCHEMA_INVALID
            : tl_schema_store_register(store, subject, json, &id, err, sizeof(err));
        free(json);
        if (r != TL_SCHEMA_OK) {
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
        schema_id = id;
        fprintf(stderr, "produce: BehaviorEvent is schema id %d under subject %s\n", id, subject);
    }
    src = tl_file_source_new(a.input, (tl_file_format)fmt, a.strict, err, sizeof(err));
    if (!src) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    rd_kafka_conf_t *conf = tl_app_kafka_conf(c, "producer");
    if (!conf) goto done;
    rd_kafka_conf_set_dr_msg_cb(conf, produce_dr);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "tally: kafka producer: %s\n", err);
        goto done;
    }
    tl_app_signals();
    int prc;
    tl_progress prog;
    tl_progress_init(&prog, "produce", "events", a.quiet);
    do {
        prc = src->poll(src->ctx, &b, 10000, 0);
        if (prc == TL_SRC_ERROR) {
            fprintf(stderr, "tally: %s\n", tl_file_source_error(src));
            goto done;
        }
        for (int i = 0; i < b.n; i++) {
            const tl_event *ev = &b.events[i];
            tl_buf_clear(&buf);
            tl_codec_encode_event(codec, schema_id, ev, &buf);
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a.topic),
                                          RD_KAFKA_V_KEY(ev->user_id, strlen(ev->user_id)),
                                          RD_KAFKA_V_VALUE(buf.data, buf.len),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                          RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 50);
            if (e) {
                fprintf(stderr, "tally: produce to %s failed: %s\n", a.topic, rd_kafka_err2str(e));
                goto done;
            }
            sent++;
        }
        rd_kafka_poll(rk, 0);
        uint64_t bytes;
        int64_t size;
        tl_file_source_progress(src, &bytes, &size);
        tl_progress_update(&prog, sent, bytes, size);
    } while (prc != TL_SRC_EOF && !tl_stop);
    tl_progress_end(&prog);
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "tally: not every event was acknowledged within 60 s\n");
        goto done;
    }
    uint64_t rows, bad;
    tl_file_source_stats(src, &rows, &bad);
    fprintf(stderr,
            "produce: %" PRIu64 " events to %s (%" PRIu64 " bad rows skipped), %" PRIu64
            " failed\n",
            sent, a.topic, bad, failed);
    rc = failed ? 1 : 0;
    if (sent == 0) rc = tl_cmd_nothing_valid(a.input, rows, bad);
done:
    if (rc != 0 && rk) tl_app_kafka_why_failed(c);
    if (rk) rd_kafka_destroy(rk);
    if (src) tl_file_source_destroy(src);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    tl_batch_destroy(&b);
    tl_buf_free(&buf);
    tl_config_destroy(c);
    return rc;
}
