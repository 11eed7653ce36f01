/*
 * kafka_source.c -- events from a Kafka consumer group.
 *
 * Consumption: the high-level consumer with cooperative-sticky assignment; a batch is
 * what rd_kafka_consumer_poll returns until batch.max.events or commit.interval.ms.
 * Offsets: enable.auto.offset.store=false. After the runtime made a batch durable,
 * commit() stores each partition's next offset (rd_kafka_offsets_store) and
 * librdkafka's auto-commit sends them; close commits what is left. So an offset is
 * never committed before the outputs of its record were acknowledged.
 *
 * Rebalances (served inside consumer_poll, on the processing thread):
 *   - assigned: the listener (engine/source.h; the runtime) opens each partition's
 *     store, and the partition starts
 *     at the store's next offset when it has one (the store is ahead of, or equal to,
 *     the group's committed offset: it is written before offsets are stored);
 *   - revoked: events of those partitions already in the batch being filled are
 *     dropped (nothing of them was processed; the next owner reads them again), and
 *     the listener closes the stores (clean: revocation comes between batches).
 *
 * Decoding: each record goes through the codec (framing, schema id, resolution) and
 * validation; failures become dead-letter records with a copy of the original key and
 * bytes. Nothing undecodable stops the source.
 */
#include "kafka_source.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ksrc {
    tl_source src;
    rd_kafka_t *rk;
    tl_kafka_source_opts o;
    char *topic;
    tl_batch *filling;          /* the batch poll() is filling, for revocations */
    /* partition state, by partition number */
    unsigned char *assigned, *at_end;
    int64_t *next;              /* next offset to process (for lag), -1 = none read yet */
    int n_parts;
    int n_assigned;
    int retry_backoff;          /* the last batch ended on a record to retry */
    int failed;                 /* a partition's state could not be opened: stop */
    tl_prom_series *mismatches; /* tally_key_mismatches_total */
    uint64_t rebalances;
} ksrc;

static void parts_grow(ksrc *k, int32_t p)
{
    if (p < k->n_parts) return;
    int n = p + 1;
    k->assigned = tl_xrealloc(k->assigned, (size_t)n);
    k->at_end = tl_xrealloc(k->at_end, (size_t)n);
    k->next = tl_xrealloc(k->next, (size_t)n * sizeof(*k->next));
    for (int i = k->n_parts; i < n; i++) k->next[i] = -1;
    memset(k->assigned + k->n_parts, 0, (size_t)(n - k->n_parts));
    memset(k->at_end + k->n_parts, 0, (size_t)(n - k->n_parts));
    k->n_parts = n;
}

static void drop_partition_events(tl_batch *b, int32_t p)
{
    int w = 0;
    for (int i = 0; i < b->n; i++)
        if (b->events[i].partition != p) b->events[w++] = b->events[i];
    b->n = w;
    w = 0;
    for (int i = 0; i < b->n_bad; i++)
        if (b->bad[i].partition != p) b->bad[w++] = b->bad[i];
    b->n_bad = w;
}

/* Logs e, what an incremental (un)assignment returned, and frees it: nothing when NULL. */
static void log_assign_error(const char *what, rd_kafka_error_t *e)
{
    if (!e) return;
    TL_LOG_ERROR("ingest", "%s failed: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ksrc *k = opaque;
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    k->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t next = -1;
            if (k->o.on_partitions.assigned(k->o.on_partitions.arg, tp->partition, &next) != 0) {
                /* No state, no processing: the poll stops the run (exit 1); a restart,
                 * once the cause (logged by the store) is fixed, tries again. */
                TL_LOG_ERROR("ingest", "cannot open state for partition=%d: stopping",
                             (int)tp->partition);
                k->failed = 1;
                return; /* nothing assigned: the partitions stay with the group */
            }
            if (next >= 0) tp->offset = next;
            parts_grow(k, tp->partition);
            k->assigned[tp->partition] = 1;
            k->at_end[tp->partition] = 0;
            k->next[tp->partition] = next;
            k->n_assigned++;
            TL_LOG_INFO("ingest", "assigned topic=%s partition=%d start=%s%" PRId64, tp->topic,
                        (int)tp->partition, next >= 0 ? "" : "committed/", next >= 0 ? next : 0);
        }
        if (cooperative) log_assign_error("assign", rd_kafka_incremental_assign(rk, parts));
        else rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (k->filling) drop_partition_events(k->filling, p);
            k->o.on_partitions.revoked(k->o.on_partitions.arg, p);
            if (p < k->n_parts && k->assigned[p]) {
                k->assigned[p] = 0;
                k->n_assigned--;
            }
            TL_LOG_INFO("ingest", "revoked topic=%s partition=%d", parts->elems[i].topic, (int)p);
        }
        if (cooperative) log_assign_error("unassign", rd_kafka_incremental_unassign(rk, parts));
        else rd_kafka_assign(rk, NULL);
    } else {
        TL_LOG_ERROR("ingest", "rebalance error: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

/* The dead letter of m: its key and value as they came, cut to what the dead-letter topic
 * takes (TL_DLQ_MAX_KEY_BYTES, dlq.max.record.bytes; the error says so and the header
 * tally.truncated keeps the sizes), so that no record is too large to dead-letter. */
static void add_bad(const ksrc *k, tl_batch *b, const rd_kafka_message_t *m, tl_dlq_reason reason,
                    const char *error)
{
    tl_dlq_record *r = tl_batch_push_bad(b);
    r->reason = reason;
    r->topic = tl_arena_strdup(&b->arena, rd_kafka_topic_name(m->rkt));
    r->partition = m->partition;
    r->offset = m->offset;
    r->key_total = m->key_len;
    r->payload_total = m->len;
    r->key_len = m->key_len < TL_DLQ_MAX_KEY_BYTES ? m->key_len : TL_DLQ_MAX_KEY_BYTES;
    r->payload_len = m->len;
    if (k->o.dlq_max_bytes && r->payload_len > k->o.dlq_max_bytes)
        r->payload_len = k->o.dlq_max_bytes;
    if (r->key_len) r->key = tl_arena_strndup(&b->arena, m->key, r->key_len);
    if (r->payload_len) r->payload = tl_arena_strndup(&b->arena, m->payload, r->payload_len);
    if (r->key_len < r->key_total || r->payload_len < r->payload_total) {
        char cut[640];
        snprintf(cut, sizeof(cut),
                 "%s (dead letter cut to the first %zu of %zu key bytes and "
                 "%zu of %zu value bytes)",
                 error, r->key_len, r->key_total, r->payload_len, r->payload_total);
        r->error = tl_arena_strdup(&b->arena, cut);
    } else {
        r->error = tl_arena_strdup(&b->arena, error);
    }
}

/* Decodes m into the batch (an event or a dead letter). Returns -1 when the record
 * cannot be judged now (the schema registry is unreachable): the caller rewinds the
 * partition to it and ends the batch, so the record is read again later. */
static int take_message(ksrc *k, tl_batch *b, const rd_kafka_message_t *m)
{
    char err[512];
    tl_dlq_reason reason;
    tl_event *ev = tl_batch_push(b);
    int rc =
        tl_codec_decode(k->o.codec, m->payload, m->len, ev, &b->arena, &reason, err, sizeof(err));
    if (rc == TL_CODEC_RETRY) {
        b->n--;
        char q[512];
        TL_LOG_WARN("ingest",
                    "cannot decode now, will retry partition=%d offset=%" PRId64 " error=%s",
                    (int)m->partition, m->offset, tl_log_quote(q, sizeof(q), err));
        return -1;
    }
    if (rc != TL_CODEC_OK || tl_event_validate(ev, &k->o.limits, &reason, err, sizeof(err)) != 0) {
        b->n--; /* the slot goes back */
        add_bad(k, b, m, reason, err);
        return 0;
    }
    if (m->key_len != strlen(ev->user_id) || memcmp(m->key, ev->user_id, m->key_len) != 0) {
        /* The user's state lives in the partition of its user_id's key: another key puts
         * this event beside state of other users, and splits the user's own. */
        tl_prom_add(k->mismatches, 1);
        if (k->o.key_mismatch_dlq) {
            b->n--;
            snprintf(err, sizeof(err),
                     "the record's key (%zu bytes) is not its user_id '%.64s' "
                     "(the user's state is kept by the partition of that key)",
                     m->key_len, ev->user_id);
            add_bad(k, b, m, TL_DLQ_KEY_MISMATCH, err);
            return 0;
        }
    }
    ev->partition = m->partition;
    ev->offset = m->offset;
    int64_t log_ts = rd_kafka_message_timestamp(m, NULL);
    ev->log_ts = log_ts > 0 ? log_ts : 0;
    return 0;
}

static void rewind_to(ksrc *k, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, k->topic, m->partition)->offset = m->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(k->rk, l, 5000);
    if (e) {
        TL_LOG_ERROR("ingest", "seek failed partition=%d: %s", (int)m->partition,
                     rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static int all_at_end(const ksrc *k)
{
    if (k->n_assigned == 0) return 0;
    for (int p = 0; p < k->n_parts; p++)
        if (k->assigned[p] && !k->at_end[p]) return 0;
    return 1;
}

static int ks_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    ksrc *k = ctx;
    tl_batch_reset(b);
    if (k->retry_backoff) {
        /* Back off for one batch interval before reading the record again, so an
         * unreachable registry is not hammered (heartbeats are librdkafka's own). */
        k->retry_backoff = 0;
        tl_sleep_ms(timeout_ms);
    }
    k->filling = b;
    int64_t deadline = tl_mono_ns() + (int64_t)timeout_ms * 1000000, left = 1;
    while (b->n + b->n_bad < max) {
        /* While records are there, take them without reading the clock for each; wait
         * (for what is left of the timeout) only when none is. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 0);
        if (!m && !k->failed) {
            left = (deadline - tl_mono_ns()) / 1000000;
            if (left > 0) m = rd_kafka_consumer_poll(k->rk, (int)left);
        }
        if (k->failed) { /* set by the rebalance callback this poll served */
            if (m) rd_kafka_message_destroy(m);
            k->filling = NULL;
            return TL_SRC_ERROR;
        }
        if (!m) {
            if (left <= 0) break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            parts_grow(k, m->partition);
            k->at_end[m->partition] = 1;
            rd_kafka_message_destroy(m);
            if (k->o.until_end && all_at_end(k)) break;
            continue;
        }
        if (m->err) {
            /* Consumer errors are reports (broker down, ...): librdkafka recovers. */
            char q[512];
            TL_LOG_WARN("ingest", "consumer error=%s",
                        tl_log_quote(q, sizeof(q), rd_kafka_message_errstr(m)));
            /* Bad credentials do not heal by retrying: stop with the reason. */
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL ||
                m->err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
                m->err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
                m->err == RD_KAFKA_RESP_ERR__SSL; /* e.g. certificate verify failed */
            if (fatal && m->err != RD_KAFKA_RESP_ERR__FATAL)
                TL_LOG_ERROR("ingest",
                             "authentication failed: %s (check kafka.sasl.* / kafka.ssl.*)",
                             rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal) {
                k->filling = NULL;
                return TL_SRC_ERROR;
            }
            continue;
        }
        parts_grow(k, m->partition);
        k->at_end[m->partition] = 0;
        k->next[m->partition] = m->offset + 1;
        if (take_message(k, b, m) != 0) {
            rewind_to(k, m);
            rd_kafka_message_destroy(m);
            k->retry_backoff = 1;
            break;
        }
        rd_kafka_message_destroy(m);
    }
    k->filling = NULL;
    return k->o.until_end && all_at_end(k) ? TL_SRC_EOF : TL_SRC_OK;
}

static int ks_commit(void *ctx, const int64_t *next, int n)
{
    ksrc *k = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n && p < k->n_parts; p++)
        if (next[p] >= 0 && k->assigned[p])
            rd_kafka_topic_partition_list_add(l, k->topic, p)->offset = next[p];
    rd_kafka_resp_err_t err =
        l->cnt ? rd_kafka_offsets_store(k->rk, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(l);
    if (err && err != RD_KAFKA_RESP_ERR__STATE) {
        TL_LOG_ERROR("ingest", "offsets store failed: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static int ks_rewind(void *ctx)
{
    ksrc *k = ctx;
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(k->rk, &l);
    if (!err && l->cnt) err = rd_kafka_committed(k->rk, l, 30000);
    if (!err) {
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_error_t *e = l->cnt ? rd_kafka_seek_partitions(k->rk, l, 30000) : NULL;
        if (e) {
            TL_LOG_ERROR("ingest", "rewind: seek failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            err = RD_KAFKA_RESP_ERR__FAIL;
        }
    } else {
        TL_LOG_ERROR("ingest", "rewind: committed offsets unavailable: %s", rd_kafka_err2str(err));
    }
    if (l) rd_kafka_topic_partition_list_destroy(l);
    return err ? -1 : 0;
}

static void ks_destroy(void *ctx) { (void)ctx; }

tl_source *tl_kafka_source_new(rd_kafka_conf_t *conf, const tl_kafka_source_opts *o, char *err,
                               size_t errlen)
{
    ksrc *k = tl_xcalloc(1, sizeof(*k));
    char e[512];
    k->o = *o;
    k->mismatches = tl_prom_counter("tally_key_mismatches_total",
                                    "Input records whose key is not their user_id "
                                    "(dead-lettered or processed: ingest.key.mismatch).",
                                    NULL);
    k->topic = tl_xstrdup(o->topic);
    /* tally's requirements (lib/kafka_settings.c); a user's kafka.* keys were applied
     * before and may not override these. */
    if (tl_kafka_settings_apply(conf, TL_KC_INPUT, e, sizeof(e)) != 0 ||
        (o->until_end && tl_kafka_settings_apply(conf, TL_KC_INPUT_UNTIL_END, e, sizeof(e))) ||
        (o->exactly_once && tl_kafka_settings_apply(conf, TL_KC_INPUT_EOS, e, sizeof(e)))) {
        snprintf(err, errlen, "kafka consumer: %s", e);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, k);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!k->rk) { /* conf is still ours */
        snprintf(err, errlen, "kafka consumer: %s", e);
        goto fail;
    }
    conf = NULL; /* owned by rk */
    rd_kafka_poll_set_consumer(k->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, k->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        snprintf(err, errlen, "kafka consumer: subscribe to %s failed: %s", k->topic,
                 rd_kafka_err2str(rerr));
        goto fail;
    }
    k->src = (tl_source){.name = "kafka",
                         .ctx = k,
                         .poll = ks_poll,
                         .commit = o->exactly_once ? NULL : ks_commit,
                         .rewind = o->exactly_once ? ks_rewind : NULL,
                         .destroy = ks_destroy};
    return &k->src;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    if (k->rk) rd_kafka_destroy(k->rk);
    free(k->topic);
    free(k);
    return NULL;
}

rd_kafka_t *tl_kafka_source_handle(tl_source *s) { return ((ksrc *)s->ctx)->rk; }

void tl_kafka_source_destroy(tl_source *s)
{
    if (!s) return;
    ksrc *k = s->ctx;
    rd_kafka_resp_err_t err =
        k->o.exactly_once ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_commit(k->rk, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        TL_LOG_WARN("ingest", "final offset commit: %s", rd_kafka_err2str(err));
    tl_kafka_consumer_leave(k->rk, 10000); /* revokes (closing stores), leaves the group */
    rd_kafka_destroy(k->rk);
    TL_FREE_ALL(k->assigned, k->at_end, k->next, k->topic, k);
}

int tl_kafka_source_lag(tl_source *s, int32_t *parts, int64_t *lag, int max)
{
    ksrc *k = s->ctx;
    int n = 0;
    for (int p = 0; p < k->n_parts && n < max; p++) {
        if (!k->assigned[p]) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(k->rk, k->topic, p, &lo, &hi);
        int64_t pos = k->next[p];
        if (pos < 0) { /* nothing read since the assignment: the fetch position */
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, k->topic, p);
            if (!rd_kafka_position(k->rk, l) && l->elems[0].offset >= 0) pos = l->elems[0].offset;
            rd_kafka_topic_partition_list_destroy(l);
        }
        parts[n] = p;
        lag[n++] = hi >= 0 && pos >= 0 ? (hi > pos ? hi - pos : 0) : -1;
    }
    return n;
}

uint64_t tl_kafka_source_rebalances(const tl_source *s)
{
    return ((const ksrc *)s->ctx)->rebalances;
}
