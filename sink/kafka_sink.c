/*
 * kafka_sink.c -- output records to Kafka as Confluent-framed Avro, key = user_id
 * (credit deltas: "dim:dim_id"); dead letters with their original bytes and the
 * reason in headers.
 *
 * Delivery: every message carries its sequence number (1, 2, ...) as its opaque; the
 * delivery report callback (served by rd_kafka_poll/flush on the processing thread)
 * marks it in a ring of flags and advances `acked`, the length of the acknowledged
 * prefix, so progress() tells the runtime exactly which batches are durable while
 * later ones are still in flight. flush() waits until everything is acknowledged. librdkafka retries transient errors itself (idempotent
 * producer, message.timeout.ms), so a failure here means the broker was unreachable
 * past that timeout; the runtime then stops without committing, and a restart
 * resumes from the last committed batch (at-least-once).
 *
 * Threading: emit and flush run on the processing thread; the delivery callback runs
 * there too (it is served from rd_kafka_poll/flush), so the counters need no lock.
 */
#include "sinks.h"
#include "sink_avro.h"
#include "rollup_agg.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/util.h"
#include "model/markov.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_SIZE (1u << 18)   /* > the producer's queue.buffering.max.messages */
#define MAX_ROLLUPS (2 * TL_RU_DIMS)   /* dimensions x windows (hour, day) */
#define MAX_RKTS 16                    /* topic handles kept (every topic tally writes) */

typedef struct kafka_sink {
    tl_sink_base base;
    rd_kafka_t *rk;
    tl_kafka_sink_opts o;
    char *topics[6];   /* interest, attribution, credit, dead letters, intent, next
                        * categories (the last two or NULL) */
    tl_buf buf;
    uint64_t emitted, acked, failed;
    unsigned char *ring;    /* ring[seq % RING_SIZE]: delivered, seq in (acked, emitted] */
    char last_error[256];
    /* exactly-once */
    char *changelog;
    rd_kafka_t *consumer;
    char *input_topic;
    int64_t *cl_last;       /* per partition: offset of the last changelog record delivered */
    int n_cl;
    /* roll-up partials: the sums since they were last sent */
    char *partials;
    tl_rollup *ru[MAX_ROLLUPS];
    int n_ru;
    tl_buf key;
    tl_mk_out *mk;          /* the shared Markov chain's journeys and stream times */
    int committed;          /* the last transaction was committed (not aborted) */
    /* the shared model's updates (tl_kafka_sink_set_model_share) */
    char *model_topic, *model_key;
    int (*model_take)(void *arg, tl_buf *out, size_t max_bytes);
    void (*model_clear)(void *arg);
    void *model_arg;
    /* A handle per topic written, made at its first record: a record given by topic name
     * makes librdkafka find the topic under the client's write lock, every record. */
    rd_kafka_topic_t *rkt[MAX_RKTS];
    int n_rkt;
} kafka_sink;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink *s = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    /* An aborted transaction's records come back purged: expected (the input is read
     * again), not a failure; they still count as settled for the in-flight window. */
    int purged = s->changelog &&
        (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT);
    if (m->err && !purged) {
        s->failed++;
        snprintf(s->last_error, sizeof(s->last_error), "%s [%s]", rd_kafka_err2str(m->err),
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?");
        return;
    }
    if (!m->err && s->changelog && m->rkt && !strcmp(rd_kafka_topic_name(m->rkt), s->changelog) &&
        m->partition < s->n_cl && m->offset > s->cl_last[m->partition])
        s->cl_last[m->partition] = m->offset;
    if (seq <= s->acked || seq > s->emitted) return;
    s->ring[seq % RING_SIZE] = 1;
    while (s->acked < s->emitted && s->ring[(s->acked + 1) % RING_SIZE]) {
        s->ring[(s->acked + 1) % RING_SIZE] = 0;
        s->acked++;
    }
}

/* What to add to a fatal error's message: a fenced producer is the expected way for a
 * replaced instance to end, so say so in words. */
static const char *fenced_hint(rd_kafka_resp_err_t code)
{
    return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
            code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
        ? " (fenced: another instance with the same instance.id took over; this one stops)"
        : "";
}

/* Logs the producer's fatal error, if it has one; 1 when it had. A produce call or a
 * delivery report only says "Local: Fatal error"; the cause is kept by the handle. */
static int log_fatal(const kafka_sink *s, const char *what)
{
    char reason[512];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(s->rk, reason, sizeof(reason));
    if (!code) return 0;
    TL_LOG_ERROR("sink", "%s: fatal error: %s%s", what, reason, fenced_hint(code));
    return 1;
}

/* The handle of topic, made at its first record; NULL when none can be made (the record
 * is then produced by name, as before, and any error is librdkafka's). */
static rd_kafka_topic_t *topic_handle(kafka_sink *s, const char *topic)
{
    for (int i = 0; i < s->n_rkt; i++)
        if (!strcmp(rd_kafka_topic_name(s->rkt[i]), topic)) return s->rkt[i];
    if (s->n_rkt == MAX_RKTS) return NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, topic, NULL);
    if (rkt) s->rkt[s->n_rkt++] = rkt;
    return rkt;
}

static tl_rc produce_to(kafka_sink *s, const char *topic, int32_t partition, const void *key,
                        size_t key_len, const void *val, size_t val_len, rd_kafka_headers_t *hdrs)
{
    while (s->emitted - s->acked >= RING_SIZE - 1) rd_kafka_poll(s->rk, 10);
    void *seq = (void *)(uintptr_t)(s->emitted + 1);
    rd_kafka_vu_t vu[7];
    size_t n = 0;
    rd_kafka_topic_t *rkt = topic_handle(s, topic);
    if (rkt) vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = rkt};
    else vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = topic};
    vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_PARTITION, .u.i32 = partition};
    vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {(void *)key, key_len}};
    vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)val, val_len}};
    vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY};
    vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = seq};
    /* on success the message owns the headers */
    if (hdrs) vu[n++] = (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hdrs};
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_produceva(s->rk, vu, n);
        rd_kafka_resp_err_t err = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e) rd_kafka_error_destroy(e);
        if (!err) {
            s->emitted++;
            s->base.counts.bytes += val_len;
            return TL_OK;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(s->rk, 50);   /* serves delivery reports, frees queue room */
            continue;
        }
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        if (err == RD_KAFKA_RESP_ERR__FATAL && log_fatal(s, "produce")) return TL_ERROR;
        char q[512];
        TL_LOG_ERROR("sink", "produce failed topic=%s error=%s", topic,
                     tl_log_quote(q, sizeof(q), rd_kafka_err2str(err)));
        return TL_ERROR;
    }
}

static tl_rc produce(kafka_sink *s, const char *topic, const void *key, size_t key_len,
                     const void *val, size_t val_len, rd_kafka_headers_t *hdrs)
{
    return produce_to(s, topic, RD_KAFKA_PARTITION_UA, key, key_len, val, val_len, hdrs);
}

static tl_rc ks_interest(void *ctx, const tl_interest_delta *d)
{
    kafka_sink *s = ctx;
    tl_sink_avro_interest(&s->base, &s->buf, s->o.id_interest, d);
    return produce(s, s->o.topic_interest, d->user_id, strlen(d->user_id), s->buf.data, s->buf.len,
                   NULL);
}

static tl_rc ks_intent(void *ctx, const tl_intent_delta *d)
{
    kafka_sink *s = ctx;
    tl_sink_avro_intent(&s->base, &s->buf, s->o.id_intent, d);
    return produce(s, s->o.topic_intent, d->user_id, strlen(d->user_id), s->buf.data, s->buf.len,
                   NULL);
}

static tl_rc ks_next_categories(void *ctx, const tl_next_categories *r)
{
    kafka_sink *s = ctx;
    tl_sink_avro_next_categories(&s->base, &s->buf, s->o.id_categories, r);
    return produce(s, s->o.topic_categories, r->user_id, strlen(r->user_id), s->buf.data,
                   s->buf.len, NULL);
}

static tl_rc ks_attribution(void *ctx, const tl_attribution *r)
{
    kafka_sink *s = ctx;
    tl_sink_avro_attribution(&s->base, &s->buf, s->o.id_attribution, r);
    for (int i = 0; i < s->n_ru; i++) tl_rollup_add(s->ru[i], r);
    return produce(s, s->o.topic_attribution, r->user_id, strlen(r->user_id), s->buf.data,
                   s->buf.len, NULL);
}

static int send_partial(void *arg, const tl_buf *key, const tl_buf *val)
{
    kafka_sink *s = arg;
    return produce(s, s->partials, key->data, key->len, val->data, val->len, NULL) == TL_OK ? 0
                                                                                            : -1;
}

/* Sends the roll-up sums gathered since the last call, one partial per row, and forgets
 * them: inside the open transaction (exactly_once), or before a batch's mark is taken
 * (at_least_once), so that they are durable with the records they sum. */
static tl_rc send_partials(kafka_sink *s)
{
    /* s->buf is free between records: each produce copies it */
    int rc =
        tl_rollup_send_changed(s->ru, s->n_ru, s->o.id_rollup, &s->key, &s->buf, send_partial, s);
    for (int i = 0; i < s->n_ru; i++) tl_rollup_clear(s->ru[i]);
    tl_buf_clear(&s->buf);
    if (!rc && s->mk && tl_mk_out_take(s->mk, &s->buf)) {
        tl_buf_clear(&s->key);
        tl_buf_puts(&s->key, TL_MK_KEY);
        rc = send_partial(s, &s->key, &s->buf);
    }
    tl_buf_clear(&s->buf);
    /* under the broker's default record limit (1 MB) */
    while (!rc && s->model_take && s->model_take(s->model_arg, &s->buf, 900000)) {
        rc = produce_to(s, s->model_topic, 0, s->model_key, strlen(s->model_key), s->buf.data,
                        s->buf.len, NULL) == TL_OK
            ? 0
            : -1;
        tl_buf_clear(&s->buf);
    }
    return rc ? TL_ERROR : TL_OK;
}

static tl_rc ks_path(void *ctx, int dim, int64_t at, const char *const *states, int n,
                     int converted)
{
    kafka_sink *s = ctx;
    int rc = tl_mk_out_path(s->mk, dim, at, states, n, converted);
    if (rc != 0) {   /* the journey is left out, as the instance's own chain would */
        static int said;
        if (!said++)
            TL_LOG_WARN("sink", "the Markov chain leaves out a closed journey: %s",
                        tl_markov_strerror(rc));
    }
    return TL_OK;
}

static void ks_stream_time(void *ctx, int32_t partition, int64_t t)
{
    kafka_sink *s = ctx;
    tl_mk_out_time(s->mk, partition, t);
}

static tl_rc ks_credit(void *ctx, const tl_credit_delta *c)
{
    kafka_sink *s = ctx;
    char key[512];
    int n = snprintf(key, sizeof(key), "%s:%s", tl_dim_name(c->dim), c->dim_id);
    tl_sink_avro_credit(&s->base, &s->buf, s->o.id_credit, c);
    for (int i = 0; i < s->n_ru; i++) tl_rollup_add_credit_delta(s->ru[i], c);
    return produce(s, s->o.topic_credit, key, (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1,
                   s->buf.data, s->buf.len, NULL);
}

static tl_rc ks_dlq(void *ctx, const tl_dlq_record *r)
{
    kafka_sink *s = ctx;
    char part[16], off[24];
    snprintf(part, sizeof(part), "%" PRId32, r->partition);
    snprintf(off, sizeof(off), "%" PRId64, r->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "tally.reason", -1, tl_dlq_reason_name(r->reason), -1);
    rd_kafka_header_add(h, "tally.error", -1, r->error ? r->error : "", -1);
    rd_kafka_header_add(h, "tally.source.topic", -1, r->topic ? r->topic : "", -1);
    rd_kafka_header_add(h, "tally.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "tally.source.offset", -1, off, -1);
    if (r->key_len < r->key_total || r->payload_len < r->payload_total) {
        char sizes[64];
        snprintf(sizes, sizeof(sizes), "key=%zu,value=%zu", r->key_total, r->payload_total);
        rd_kafka_header_add(h, "tally.truncated", -1, sizes, -1);
    }
    s->base.counts.dlq++;
    return produce(s, s->o.topic_dlq, r->key, r->key_len, r->payload, r->payload_len, h);
}

/* 1 (and logged) when a delivery failed. */
static int delivery_failed(const kafka_sink *s)
{
    if (!s->failed) return 0;
    if (log_fatal(s, "delivery")) return 1;
    char q[512];
    TL_LOG_ERROR("sink", "delivery failed messages=%" PRIu64 " last_error=%s", s->failed,
                 tl_log_quote(q, sizeof(q), s->last_error));
    return 1;
}

static tl_rc ks_flush(void *ctx, int timeout_ms)
{
    kafka_sink *s = ctx;
    if (send_partials(s) != TL_OK) return TL_ERROR;
    rd_kafka_resp_err_t err = rd_kafka_flush(s->rk, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        TL_LOG_WARN("sink", "outputs not acknowledged within timeout_ms=%d in_queue=%d", timeout_ms,
                    rd_kafka_outq_len(s->rk));
        return TL_RETRY;
    }
    return delivery_failed(s) ? TL_ERROR : TL_OK;
}

static tl_rc ks_progress(void *ctx, uint64_t *emitted, uint64_t *acked)
{
    kafka_sink *s = ctx;
    if (send_partials(s) != TL_OK) return TL_ERROR;
    rd_kafka_poll(s->rk, 0);   /* serves delivery reports */
    *emitted = s->emitted;
    *acked = s->acked;
    return delivery_failed(s) ? TL_ERROR : TL_OK;
}

/* librdkafka's transactional error classes (INTRODUCTION.md, "Transactional producer
 * API"): retriable -> call again; abortable -> abort the transaction, the batch fails;
 * fatal (e.g. fenced by a newer instance with the same transactional.id) -> stop. */
static tl_rc txn_error(kafka_sink *s, const char *what, rd_kafka_error_t *e)
{
    if (rd_kafka_error_is_fatal(e)) {
        TL_LOG_ERROR("sink", "transaction %s: fatal error: %s%s", what, rd_kafka_error_string(e),
                     fenced_hint(rd_kafka_error_code(e)));
    } else if (rd_kafka_error_txn_requires_abort(e)) {
        TL_LOG_WARN("sink", "transaction %s: %s; aborting it", what, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_error_t *a = rd_kafka_abort_transaction(s->rk, -1);
        if (a) {
            TL_LOG_ERROR("sink", "abort failed: %s", rd_kafka_error_string(a));
            rd_kafka_error_destroy(a);
            return TL_ERROR;
        }
        return TL_RETRY;   /* aborted cleanly: the caller rewinds and carries on */
    } else {
        TL_LOG_ERROR("sink", "transaction %s: %s", what, rd_kafka_error_string(e));
    }
    rd_kafka_error_destroy(e);
    return TL_ERROR;
}

static tl_rc ks_begin(void *ctx)
{
    kafka_sink *s = ctx;
    for (int p = 0; p < s->n_cl; p++) s->cl_last[p] = -1;
    if (!s->committed) {   /* what an aborted transaction gathered is redone */
        for (int i = 0; i < s->n_ru; i++) tl_rollup_clear(s->ru[i]);
        if (s->mk) tl_mk_out_clear(s->mk);
        if (s->model_clear) s->model_clear(s->model_arg);
    }
    s->committed = 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(s->rk);
    return e ? txn_error(s, "begin", e) : TL_OK;
}

static tl_rc ks_emit_state(void *ctx, int32_t partition, const char *key, const void *value,
                           size_t len)
{
    kafka_sink *s = ctx;
    if (partition >= s->n_cl) {
        int n = partition + 1;
        s->cl_last = tl_xrealloc(s->cl_last, (size_t)n * sizeof(*s->cl_last));
        for (int p = s->n_cl; p < n; p++) s->cl_last[p] = -1;
        s->n_cl = n;
    }
    return produce_to(s, s->changelog, partition, key, strlen(key), value, len, NULL);
}

static tl_rc ks_commit(void *ctx, const int64_t *next, int n, int64_t *changelog_next)
{
    kafka_sink *s = ctx;
    if (send_partials(s) != TL_OK) {
        rd_kafka_error_t *a = rd_kafka_abort_transaction(s->rk, -1);
        if (a) rd_kafka_error_destroy(a);
        return TL_ERROR;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int p = 0; p < n; p++)
        if (next[p] >= 0) rd_kafka_topic_partition_list_add(l, s->input_topic, p)->offset = next[p];
    rd_kafka_error_t *e = NULL;
    for (int attempt = 0; attempt < 10; attempt++) {
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(s->consumer);
        e = l->cnt ? rd_kafka_send_offsets_to_transaction(s->rk, l, md, -1) : NULL;
        rd_kafka_consumer_group_metadata_destroy(md);
        if (!e || !rd_kafka_error_is_retriable(e)) break;
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e) return txn_error(s, "send offsets", e);
    for (int attempt = 0; attempt < 10; attempt++) {
        e = rd_kafka_commit_transaction(s->rk, -1);
        if (!e || !rd_kafka_error_is_retriable(e)) break;
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    if (e) return txn_error(s, "commit", e);
    s->committed = 1;
    for (int p = 0; p < n; p++)
        changelog_next[p] = p < s->n_cl && s->cl_last[p] >= 0 ? s->cl_last[p] + 1 : -1;
    return TL_OK;
}

void tl_kafka_sink_set_consumer(tl_sink *sink, rd_kafka_t *consumer, const char *input_topic)
{
    kafka_sink *s = sink->ctx;
    s->consumer = consumer;
    free(s->input_topic);
    s->input_topic = tl_xstrdup(input_topic);
}

void tl_kafka_sink_set_model_share(tl_sink *sink, const char *topic, const char *key,
                                   int (*take)(void *arg, tl_buf *out, size_t max_bytes),
                                   void (*clear)(void *arg), void *arg)
{
    kafka_sink *s = sink->ctx;
    free(s->model_topic);
    free(s->model_key);
    s->model_topic = tl_xstrdup(topic);
    s->model_key = tl_xstrdup(key);
    s->model_take = take;
    s->model_clear = clear;
    s->model_arg = arg;
}

static void ks_destroy(void *ctx)
{
    kafka_sink *s = ctx;
    TL_FREE_ALL(s->model_topic, s->model_key, s->changelog, s->input_topic, s->cl_last,
                s->partials);
    for (int i = 0; i < s->n_ru; i++) tl_rollup_destroy(s->ru[i]);
    tl_mk_out_destroy(s->mk);
    tl_buf_free(&s->key);
    for (int i = 0; i < 6; i++) free(s->topics[i]);
    tl_buf_free(&s->buf);
    free(s->ring);
    for (int i = 0; i < s->n_rkt; i++) rd_kafka_topic_destroy(s->rkt[i]);
    if (s->rk) rd_kafka_destroy(s->rk);
}

rd_kafka_t *tl_kafka_sink_handle(const tl_sink *sink) { return ((kafka_sink *)sink->ctx)->rk; }

/* Asks the broker for every output topic's partitions before the first record: else
 * the first produce to a topic made a moment ago (the changelog, created at start) waits
 * for librdkafka's next metadata refresh, and with it the first commit (measured: 0.65 s).
 * A topic the broker does not know is named now; it may still be created on first use. */
static void learn_topics(kafka_sink *s)
{
    const char *names[8] = {s->topics[0], s->topics[1], s->topics[2], s->topics[3],
                            s->topics[4], s->topics[5], s->changelog, s->partials};
    for (int i = 0; i < 8; i++) {
        if (!names[i]) continue;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, names[i], NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, rkt, &md, 10000);
        if (!e) {
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
            rd_kafka_metadata_destroy(md);
        }
        if (e && e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
            TL_LOG_WARN("sink", "output topic %s: %s (the broker may create it on first use)",
                        names[i], rd_kafka_err2str(e));
        rd_kafka_topic_destroy(rkt);
    }
}

tl_sink *tl_kafka_sink_new(rd_kafka_conf_t *conf, const tl_kafka_sink_opts *o, char *err,
                           size_t errlen)
{
    kafka_sink *s = tl_xcalloc(1, sizeof(*s));
    s->o = *o;
    s->ring = tl_xcalloc(RING_SIZE, 1);
    const char *names[4] = {o->topic_interest, o->topic_attribution, o->topic_credit, o->topic_dlq};
    for (int i = 0; i < 4; i++) {
        if (!names[i] || !*names[i]) {
            snprintf(err, errlen, "kafka sink: an output topic name is empty");
            goto fail;
        }
        s->topics[i] = tl_xstrdup(names[i]);
    }
    s->o.topic_interest = s->topics[0];
    s->o.topic_attribution = s->topics[1];
    s->o.topic_credit = s->topics[2];
    s->o.topic_dlq = s->topics[3];
    if (o->topic_intent && *o->topic_intent) s->topics[4] = tl_xstrdup(o->topic_intent);
    s->o.topic_intent = s->topics[4];
    if (o->topic_categories && *o->topic_categories) s->topics[5] = tl_xstrdup(o->topic_categories);
    s->o.topic_categories = s->topics[5];
    if (o->rollup_partials_topic && *o->rollup_partials_topic) {
        s->partials = tl_xstrdup(o->rollup_partials_topic);
        const char *groups = o->rollup_groups ? o->rollup_groups : "";
        for (int d = TL_RU_CHANNEL; d < TL_RU_DIMS; d++) {
            if (d == TL_RU_CHANNEL_GROUP && !*groups) continue;   /* all "Other": nothing said */
            for (int w = TL_RU_WINDOW_HOUR; w <= TL_RU_WINDOW_DAY; w++) {
                tl_rollup *r = tl_rollup_new((tl_ru_dim)d, (tl_ru_window)w, groups, err, errlen);
                if (!r) goto fail;
                s->ru[s->n_ru++] = r;
            }
        }
        if (o->markov_window_ms > 0) s->mk = tl_mk_out_new(o->markov_order, o->markov_window_ms);
    }
    s->o.rollup_partials_topic = s->partials;
    s->o.rollup_groups = NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, s);
    char e[512];
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!s->rk) {
        snprintf(err, errlen, "kafka producer: %s", e);
        goto fail;
    }
    conf = NULL;   /* owned by the producer */
    s->base.sink = (tl_sink){
        .name = "kafka",
        .ctx = s,
        .emit_interest = ks_interest,
        .emit_attribution = ks_attribution,
        .emit_credit = ks_credit,
        .emit_dlq = ks_dlq,
        .flush = ks_flush,
        .progress = ks_progress,
        .destroy = ks_destroy,
    };
    if (s->topics[4]) s->base.sink.emit_intent = ks_intent;
    if (s->topics[5]) s->base.sink.emit_next_categories = ks_next_categories;
    if (s->mk) {
        s->base.sink.emit_path = ks_path;
        s->base.sink.stream_time = ks_stream_time;
    }
    if (o->transactional) {
        s->changelog = tl_xstrdup(o->changelog_topic);
        if (tl_kafka_init_transactions(s->rk, "kafka producer", err, errlen) != 0) goto fail;
        /* One transaction per batch, committed synchronously: nothing is in flight
         * between batches, so no progress() pipelining. */
        s->base.sink.progress = NULL;
        s->base.sink.begin = ks_begin;
        s->base.sink.emit_state = ks_emit_state;
        s->base.sink.commit = ks_commit;
    }
    learn_topics(s);
    return &s->base.sink;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    ks_destroy(s);
    free(s);
    return NULL;
}
