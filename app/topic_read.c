/*
 * topic_read.c -- reads a topic tally writes (or its input) and prints each record as
 * one JSON object per line (`tally consume`, and the topics behind GET /v1/attribution), its Avro decoded with the writer schema its frame
 * names (from the schema registry, or the installed schemas without one). Debian's kcat
 * has no Avro support, and a consumer command should not need a JVM.
 *
 * Read-committed, from the beginning or the end, without a consumer group (nothing is
 * committed); stops after --max records, or once every partition is at its end with
 * --until-end. A record that is not Confluent-framed Avro (a dead letter's value, say) is
 * printed with its bytes in base64 and the reason it was not decoded.
 */
#include "topic_read.h"
#include "kafka_client.h"
#include "shutdown.h"
#include "lib/json.h"
#include "lib/log.h"
#include "ingest/schema_store.h"

#include <avro.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_base64(tl_buf *b, const unsigned char *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    tl_buf_putc(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
            (i + 2 < n ? p[i + 2] : 0);
        tl_buf_putc(b, t[v >> 18 & 63]);
        tl_buf_putc(b, t[v >> 12 & 63]);
        tl_buf_putc(b, i + 1 < n ? t[v >> 6 & 63] : '=');
        tl_buf_putc(b, i + 2 < n ? t[v & 63] : '=');
    }
    tl_buf_putc(b, '"');
}

/* The decoders of the schema ids seen, made once each: a generic value class of a schema
 * with nested records and maps costs far more to build than a record takes to decode. */
#define DECODERS 16
typedef struct decoders {
    tl_schema_store *store;
    int n;
    int32_t id[DECODERS];
    avro_value_iface_t *iface[DECODERS];
    avro_value_t v[DECODERS];
} decoders;

/* The value of schema id (reset, ready to read into), or NULL with err. */
static avro_value_t *decoder(decoders *d, int32_t id, char *err, size_t errlen)
{
    for (int i = 0; i < d->n; i++)
        if (d->id[i] == id) {
            avro_value_reset(&d->v[i]);
            return &d->v[i];
        }
    avro_schema_t schema;
    if (tl_schema_store_get(d->store, id, &schema, err, errlen) != TL_SCHEMA_OK) return NULL;
    if (d->n == DECODERS) {   /* more ids than expected: the oldest makes room */
        avro_value_decref(&d->v[0]);
        avro_value_iface_decref(d->iface[0]);
        memmove(d->id, d->id + 1, (DECODERS - 1) * sizeof(d->id[0]));
        memmove(d->iface, d->iface + 1, (DECODERS - 1) * sizeof(d->iface[0]));
        memmove(d->v, d->v + 1, (DECODERS - 1) * sizeof(d->v[0]));
        d->n--;
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    if (!iface || avro_generic_value_new(iface, &d->v[d->n]) != 0) {
        if (iface) avro_value_iface_decref(iface);
        snprintf(err, errlen, "schema id %d: %s", (int)id, avro_strerror());
        return NULL;
    }
    d->id[d->n] = id;
    d->iface[d->n] = iface;
    return &d->v[d->n++];
}

static void decoders_free(decoders *d)
{
    for (int i = 0; i < d->n; i++) {
        avro_value_decref(&d->v[i]);
        avro_value_iface_decref(d->iface[i]);
    }
    d->n = 0;
}

/* Appends ,"schema_id":N,"value":<json> or ,"value_base64":..,"error":.. */
static void put_value(tl_buf *b, decoders *d, const rd_kafka_message_t *m);

/* One record as a line: {"partition", "offset", "key", "schema_id", "value"}. */
static void put_line(tl_buf *line, decoders *store, const rd_kafka_message_t *m)
{
    tl_buf_clear(line);
    tl_buf_printf(line, "{\"partition\":%d,\"offset\":%" PRId64, (int)m->partition, m->offset);
    tl_buf_puts(line, ",\"key\":");
    if (m->key) tl_json_put_strn(line, m->key, m->key_len);
    else tl_buf_puts(line, "null");
    put_value(line, store, m);
    tl_buf_puts(line, "}\n");
}

/* Adds every partition of topic to l, from offset at; how many, or -1 (err says). */
static int add_partitions(rd_kafka_t *rk, const char *topic, int64_t at,
                          rd_kafka_topic_partition_list_t *l, char *err, size_t errlen)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t me = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (me || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        snprintf(err, errlen, "topic %s: %s", topic,
                 rd_kafka_err2str(me                  ? me
                                      : md->topic_cnt ? md->topics[0].err
                                                      : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    int n = md->topics[0].partition_cnt;
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset = at;
    rd_kafka_metadata_destroy(md);
    return n;
}

static int read_topics(const tl_config *c, tl_schema_store *store, const char *const *topics, int n,
                       const char *key_prefix, int64_t timeout_ms, FILE *out, uint64_t *records,
                       char *err, size_t errlen);

/* The partitions that reached their end: a partition reports its end again when more
 * records came after the first report, so they are counted once each. */
typedef struct ends {
    rd_kafka_topic_partition_list_t *seen;
} ends;

/* 1 the first time m (an end-of-partition event) names its partition, else 0. */
static int ends_first(ends *e, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (rd_kafka_topic_partition_list_find(e->seen, topic, m->partition)) return 0;
    rd_kafka_topic_partition_list_add(e->seen, topic, m->partition);
    return 1;
}

/* A consumer for reading: committed records only, end-of-partition events, no group. */
static rd_kafka_t *reader_new(const tl_config *c, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = tl_app_kafka_conf(c, "consumer");
    if (!conf) {
        snprintf(err, errlen, "bad Kafka configuration");
        return NULL;
    }
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!rk) rd_kafka_conf_destroy(conf);
    return rk;
}

int tl_app_read_topics(const tl_config *c, tl_schema_store *store, const char *const *topics, int n,
                       int64_t timeout_ms, FILE *out, uint64_t *records, char *err, size_t errlen)
{
    return read_topics(c, store, topics, n, NULL, timeout_ms, out, records, err, errlen);
}

int tl_app_read_keyed(const tl_config *c, tl_schema_store *store, const char *topic,
                      const char *key_prefix, int64_t timeout_ms, FILE *out, uint64_t *records,
                      char *err, size_t errlen)
{
    return read_topics(c, store, &topic, 1, key_prefix, timeout_ms, out, records, err, errlen);
}

int tl_app_read_values(const tl_config *c, const char *topic, int64_t timeout_ms, FILE *out,
                       uint64_t *records, char *err, size_t errlen)
{
    return read_topics(c, NULL, &topic, 1, NULL, timeout_ms, out, records, err, errlen);
}

/* store NULL: each value as it is, a line (records without a value left out). key_prefix:
 * only records whose key begins with it (NULL: all), left out before they are decoded. */
static int read_topics(const tl_config *c, tl_schema_store *store, const char *const *topics, int n,
                       const char *key_prefix, int64_t timeout_ms, FILE *out, uint64_t *records,
                       char *err, size_t errlen)
{
    size_t kp = key_prefix ? strlen(key_prefix) : 0;
    *records = 0;
    rd_kafka_t *rk = reader_new(c, err, errlen);
    if (!rk) return -1;
    int parts = 0, rc = -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < n && parts >= 0; i++) {
        int k = add_partitions(rk, topics[i], RD_KAFKA_OFFSET_BEGINNING, l, err, errlen);
        parts = k < 0 ? -1 : parts + k;
    }
    rd_kafka_resp_err_t ae = parts >= 0 ? rd_kafka_assign(rk, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(l);
    if (ae) snprintf(err, errlen, "assigning the partitions: %s", rd_kafka_err2str(ae));
    if (parts < 0 || ae) goto done;
    tl_buf line = {0};
    int at_end = 0;
    ends e = {rd_kafka_topic_partition_list_new(parts > 0 ? parts : 1)};
    decoders dec = {.store = store};
    int64_t deadline = tl_mono_ns() + timeout_ms * 1000000;
    while (at_end < parts) {
        if (tl_mono_ns() > deadline) {
            snprintf(err, errlen, "%d of %d partitions read to their end in %" PRId64 " ms", at_end,
                     parts, timeout_ms);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end += ends_first(&e, m);
        } else if (!m->err && kp && (m->key_len < kp || memcmp(m->key, key_prefix, kp))) {
            /* not asked for */
        } else if (!m->err && !store) {
            if (m->payload &&
                (fwrite(m->payload, 1, m->len, out) != m->len || fputc('\n', out) == EOF)) {
                snprintf(err, errlen, "cannot write the records read");
                rd_kafka_message_destroy(m);
                break;
            }
            *records += m->payload != NULL;
        } else if (!m->err) {
            put_line(&line, &dec, m);
            if (fwrite(line.data, 1, line.len, out) != line.len) {
                snprintf(err, errlen, "cannot write the records read");
                rd_kafka_message_destroy(m);
                break;
            }
            ++*records;
        }
        rd_kafka_message_destroy(m);
    }
    if (at_end == parts) rc = 0;
    tl_buf_free(&line);
    decoders_free(&dec);
    rd_kafka_topic_partition_list_destroy(e.seen);
done:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static void put_value(tl_buf *b, decoders *d, const rd_kafka_message_t *m)
{
    const unsigned char *p = m->payload;
    char err[512] = "";
    if (!p || m->len < 5 || p[0] != 0) {
        snprintf(err, sizeof(err), "not Confluent-framed Avro");
    } else {
        int32_t id =
            (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
        avro_value_t *v = decoder(d, id, err, sizeof(err));
        if (v) {
            avro_reader_t r = avro_reader_memory((const char *)p + 5, (int64_t)m->len - 5);
            char *json = NULL;
            if (avro_value_read(r, v) == 0 && avro_value_to_json(v, 1, &json) == 0) {
                tl_buf_printf(b, ",\"schema_id\":%d,\"value\":%s", (int)id, json);
                free(json);
                avro_reader_free(r);
                return;
            }
            snprintf(err, sizeof(err), "the body does not decode with schema id %d: %s", (int)id,
                     avro_strerror());
            avro_reader_free(r);
        }
    }
    tl_buf_puts(b, ",\"value_base64\":");
    put_base64(b, p, p ? m->len : 0);
    tl_json_member_str(b, "error", err);
}

int tl_app_print_topic(const tl_config *c, tl_schema_store *store, const char *topic, int from_end,
                       long long max, int until_end, FILE *out)
{
    int rc = 1;
    rd_kafka_t *rk = NULL;
    char err[512];
    if (!(rk = reader_new(c, err, sizeof(err)))) {
        fprintf(stderr, "tally: kafka consumer: %s\n", err);
        goto done;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    int n_parts = add_partitions(
        rk, topic, from_end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING, l, err, sizeof(err));
    if (n_parts > 0) rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (n_parts < 0) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    tl_buf line = {0};
    long long printed = 0;
    int at_end = 0;
    ends e = {rd_kafka_topic_partition_list_new(n_parts > 0 ? n_parts : 1)};
    decoders dec = {.store = store};
    while (!tl_stop && (max < 0 || printed < max) && !(until_end && at_end >= n_parts)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end += ends_first(&e, m);
        } else if (m->err) {
            fprintf(stderr, "tally: %s\n", rd_kafka_message_errstr(m));
        } else {
            put_line(&line, &dec, m);
            fwrite(line.data, 1, line.len, out);
            printed++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(out);
    decoders_free(&dec);
    rd_kafka_topic_partition_list_destroy(e.seen);
    tl_buf_free(&line);
    rc = ferror(out) ? 1 : 0;
done:
    if (rc != 0 && rk) tl_app_kafka_why_failed(c);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}
