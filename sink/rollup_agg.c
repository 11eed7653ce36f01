/*
 * rollup_agg.c -- the roll-up aggregator (rollup_agg.h).
 *
 * The loop: poll a partial, add it into its partition's totals (one tl_rollup per
 * dimension and window), and every commit interval write each changed row's totals to
 * the roll-up topic, partition for partition, then commit the partials' offsets: in one
 * transaction under exactly_once; under at_least_once after the totals are acknowledged
 * (a crash between the two adds those partials again).
 *
 * Rebalances (cooperative) are served inside consumer_poll, on this thread:
 *   - assigned: the group's committed offsets are fetched first (read_committed makes
 *     the fetch wait until no transaction holds offsets of those partitions pending), then
 *     each partition's totals are read back from the roll-up topic to its end, then the
 *     partitions start at the committed offsets;
 *   - revoked: what is held is committed, then those partitions' totals are dropped.
 * An aborted transaction drops every total and restores them the same way.
 *
 * Spend (spend_topic): a reader without a group takes every partition of the spend topic
 * from its start into two tables (per channel and per channel group, by day). A line that
 * arrives marks its day rows changed, here if this instance owns their partition (the
 * partition the producers' partitioner gives the row's key, as for the partials); a new
 * owner marks every row of the tables that is its own. A changed day row is written with
 * the tables' spend for it, so the spend in the totals is the sum of the topic's lines
 * whichever instance wrote the row, through restarts and rebalances.
 */
#include "rollup_agg.h"
#include "avro_out.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"
#include "model/rollup.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGG_MAX_PENDING 50000   /* partials held before a commit, whatever the interval */

#define RU(pt, d, w) ((pt)->ru[(d) * 3 + (w)])   /* [dimension][window]; hour and day only */
#define N_RU (TL_RU_DIMS * 3)

typedef struct part {
    int assigned;
    tl_rollup *ru[N_RU];
    tl_mk_share *mk;       /* the shared Markov chain, on the partition of its key */
    int64_t next;          /* offset after the last partial added, -1: none since the commit */
    int64_t eof;           /* end offset last reported, -1: a record came after it */
} part;

struct tl_rollup_agg {
    tl_rollup_agg_opts o;
    rd_kafka_t *consumer, *reader, *producer;
    pthread_t thread;
    int stop, drain;        /* set by tl_rollup_agg_stop (atomic access) */
    int failed;
    part *parts;
    int n_parts;
    int txn_open;
    int pending;
    int64_t last_commit_ns;
    int64_t *drain_end;     /* per partition: the end to reach before a drained stop */
    int sent_partials;      /* partials of its own sent since the drain's ends were taken */
    int64_t drain_started_ns;
    int drain_warned;
    tl_buf buf, key;
    tl_buf state;           /* the shared chain's last state read back (restore) */
    tl_rollup *mru[6];      /* the shared chain's credit deltas, as roll-up partials */
    int n_mru;
    tl_prom_series *m_partials, *m_totals, *m_bad, *m_commits, *m_restored;
    tl_prom_series *m_windows, *m_late, *m_credits;
    /* spend (spend_topic) */
    rd_kafka_t *spend;
    int n_spend;                /* the spend topic's partitions */
    int64_t *spend_eof;         /* per partition: the end offset last reported, -1: none */
    int64_t *spend_end;         /* per partition: the end to reach before a drained stop */
    /* Dead letters of bad lines, once each: spend partition q is checked by the owner of
     * partials partition q % partitions, which commits how far it checked (the group's
     * offset for the spend topic's partition q) in the transaction of the dead letters. */
    int64_t *spend_read;        /* per partition: lines below this offset are in the table */
    int64_t *spend_checked;     /* per partition: checked up to here; -1: not this instance's */
    int64_t *spend_committed;   /* per partition: spend_checked as last committed */
    tl_rollup *spend_ru[2];     /* the lines so far: per channel, per channel group; by day */
    rd_kafka_topic_t *partials_rkt;
    int32_t (*partitioner)(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                           int32_t partition_cnt, void *rkt_opaque, void *msg_opaque);
    tl_buf spend_line, spend_key;
    tl_prom_series *m_spend, *m_spend_bad;
};

static part *part_of(tl_rollup_agg *a, int32_t p)
{
    if (p >= a->n_parts) {
        int n = p + 1;
        a->parts = tl_xrealloc(a->parts, (size_t)n * sizeof(*a->parts));
        memset(a->parts + a->n_parts, 0, (size_t)(n - a->n_parts) * sizeof(*a->parts));
        for (int i = a->n_parts; i < n; i++) a->parts[i].next = a->parts[i].eof = -1;
        a->n_parts = n;
    }
    return &a->parts[p];
}

static tl_rollup *rollup_of(part *pt, tl_ru_dim d, tl_ru_window w)
{
    if (!RU(pt, d, w)) RU(pt, d, w) = tl_rollup_new(d, w, "", NULL, 0);
    return RU(pt, d, w);
}

static void drop_totals(part *pt)
{
    for (int i = 0; i < N_RU; i++) {
        tl_rollup_destroy(pt->ru[i]);
        pt->ru[i] = NULL;
    }
    tl_mk_share_destroy(pt->mk);
    pt->mk = NULL;
    pt->next = -1;
}

/* ---- producing ----------------------------------------------------------------- */

/* librdkafka's transactional errors: abortable ones abort (1), others are fatal (-1). */
static int txn_failed(tl_rollup_agg *a, const char *what, rd_kafka_error_t *e)
{
    int abortable = rd_kafka_error_txn_requires_abort(e);
    TL_LOG_WARN("rollup", "transaction %s: %s%s", what, rd_kafka_error_string(e),
                abortable ? "; aborting it, the totals are read back" : "");
    rd_kafka_error_destroy(e);
    if (!abortable) {
        a->failed = 1;
        return -1;
    }
    rd_kafka_error_t *x = rd_kafka_abort_transaction(a->producer, -1);
    a->txn_open = 0;
    if (x) {
        TL_LOG_ERROR("rollup", "abort failed: %s", rd_kafka_error_string(x));
        rd_kafka_error_destroy(x);
        a->failed = 1;
        return -1;
    }
    return 1;
}

static int ensure_txn(tl_rollup_agg *a)
{
    if (!a->o.transactional || a->txn_open) return 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(a->producer);
    if (e) {
        TL_LOG_ERROR("rollup", "begin transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        a->failed = 1;
        return -1;
    }
    a->txn_open = 1;
    return 0;
}

static int produce(tl_rollup_agg *a, const char *topic, int32_t partition, const tl_buf *key,
                   const void *val, size_t len, rd_kafka_headers_t *h)
{
    for (;;) {
        rd_kafka_resp_err_t err;
        if (h)
            err = rd_kafka_producev(
                a->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_KEY(key->data, key->len), RD_KAFKA_V_VALUE((void *)val, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(
                a->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_KEY(key->data, key->len), RD_KAFKA_V_VALUE((void *)val, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!err) return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(a->producer, 50);
            continue;
        }
        if (h) rd_kafka_headers_destroy(h);
        TL_LOG_ERROR("rollup", "produce to %s failed: %s", topic, rd_kafka_err2str(err));
        a->failed = 1;
        return -1;
    }
}

typedef struct send_arg {
    int (*send)(void *arg, const tl_buf *key, const tl_buf *val);
    void *arg;
    tl_buf *key, *val;
    const tl_rollup *ru;
    int32_t id;
} send_arg;

static int send_row(void *arg, const tl_rollup_row *row)
{
    send_arg *t = arg;
    tl_buf_clear(t->key);
    tl_avro_rollup_key(t->key, tl_rollup_dim(t->ru), tl_rollup_window(t->ru), row);
    tl_buf_clear(t->val);
    tl_avro_put_rollup(t->val, t->id, tl_rollup_dim(t->ru), tl_rollup_window(t->ru), row);
    return t->send(t->arg, t->key, t->val);
}

int tl_rollup_send_changed(tl_rollup *const *ru, int n, int32_t id, tl_buf *key, tl_buf *val,
                           int (*send)(void *arg, const tl_buf *key, const tl_buf *val), void *arg)
{
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (!ru[i]) continue;
        send_arg t = {send, arg, key, val, ru[i], id};
        rc = tl_rollup_each_changed(ru[i], send_row, &t);
    }
    return rc;
}

typedef struct to_part {
    tl_rollup_agg *a;
    const char *topic;
    int32_t partition;
    tl_prom_series *count;
    int sent;
} to_part;

static int send_to(void *arg, const tl_buf *key, const tl_buf *val)
{
    to_part *t = arg;
    t->sent++;
    if (t->count) tl_prom_add(t->count, 1);
    return produce(t->a, t->topic, t->partition, key, val->data, val->len, NULL);
}

static int restore_all(tl_rollup_agg *a);
static void spend_own(tl_rollup_agg *a, int32_t p);

/* ---- the shared Markov chain (model/markov_share.h) ------------------------------ */

static int emit_credit(void *arg, const tl_credit_delta *d)
{
    tl_rollup_agg *a = arg;
    if (ensure_txn(a) != 0) return -1;
    char key[600];
    int n = snprintf(key, sizeof(key), "%s:%s", tl_dim_name(d->dim), d->dim_id);
    tl_buf_clear(&a->key);
    tl_buf_append(&a->key, key, (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1);
    tl_buf_clear(&a->buf);
    tl_avro_put_credit(&a->buf, a->o.id_credit, d);
    for (int i = 0; i < a->n_mru; i++) tl_rollup_add_credit_delta(a->mru[i], d);
    tl_prom_add(a->m_credits, 1);
    return produce(a, a->o.credit_topic, RD_KAFKA_PARTITION_UA, &a->key, a->buf.data, a->buf.len,
                   NULL);
}

/* Inside the transaction: the credit deltas' roll-up partials, and each changed chain's
 * state. 0 or -1. */
static int markov_flush(tl_rollup_agg *a)
{
    to_part t = {a, a->o.partials_topic, RD_KAFKA_PARTITION_UA, NULL, 0};
    int rc =
        tl_rollup_send_changed(a->mru, a->n_mru, a->o.id_rollup, &a->key, &a->buf, send_to, &t);
    for (int i = 0; i < a->n_mru; i++) tl_rollup_clear(a->mru[i]);
    if (t.sent) a->sent_partials = 1;
    for (int p = 0; p < a->n_parts && !rc; p++) {
        tl_mk_share *mk = a->parts[p].mk;
        if (!mk || !tl_mk_share_dirty(mk)) continue;
        tl_buf_clear(&a->key);
        tl_buf_puts(&a->key, TL_MK_KEY);
        tl_buf_clear(&a->buf);
        tl_mk_share_state(mk, &a->buf);
        tl_prom_counter_set(a->m_windows, tl_mk_share_windows(mk));
        tl_prom_counter_set(a->m_late, tl_mk_share_late(mk));
        rc = produce(a, a->o.state_topic, p, &a->key, a->buf.data, a->buf.len, NULL);
    }
    return rc;
}

static tl_mk_share *share_of(tl_rollup_agg *a, part *pt)
{
    if (!pt->mk) pt->mk = tl_mk_share_new(&a->o.mk);
    return pt->mk;
}

/* Writes the changed totals and commits the partials' offsets. 0, or -1 (fatal). */
static int commit(tl_rollup_agg *a)
{
    a->last_commit_ns = tl_mono_ns();
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(a->n_parts ? a->n_parts : 1);
    for (int p = 0; p < a->n_parts; p++)
        if (a->parts[p].next >= 0)
            rd_kafka_topic_partition_list_add(l, a->o.partials_topic, p)->offset = a->parts[p].next;
    for (int q = 0; q < a->n_spend; q++)
        if (a->spend_checked[q] > a->spend_committed[q])
            rd_kafka_topic_partition_list_add(l, a->o.spend_topic, q)->offset = a->spend_checked[q];
    if (!l->cnt && !a->txn_open) {
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
    }
    int rc = ensure_txn(a);
    for (int p = 0; p < a->n_parts && !rc; p++) {
        to_part t = {a, a->o.topic, p, a->m_totals, 0};
        for (int d = 0; a->spend && d < 2; d++)
            if (RU(&a->parts[p], d, TL_RU_WINDOW_DAY))
                tl_rollup_join_spend(RU(&a->parts[p], d, TL_RU_WINDOW_DAY), a->spend_ru[d]);
        rc = tl_rollup_send_changed(a->parts[p].ru, N_RU, a->o.id_rollup, &a->key, &a->buf, send_to,
                                    &t);
    }
    if (!rc) rc = markov_flush(a);
    if (!rc && a->o.transactional) {
        rd_kafka_error_t *e = NULL;
        if (l->cnt) {
            rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(a->consumer);
            e = rd_kafka_send_offsets_to_transaction(a->producer, l, md, -1);
            rd_kafka_consumer_group_metadata_destroy(md);
        }
        if (!e) e = rd_kafka_commit_transaction(a->producer, -1);
        if (!e) a->txn_open = 0;
        else if ((rc = txn_failed(a, "commit", e)) > 0) rc = restore_all(a);
    } else if (!rc) {
        rd_kafka_resp_err_t err = rd_kafka_flush(a->producer, 60000);
        if (!err && l->cnt) err = rd_kafka_commit(a->consumer, l, 0);
        if (err) {
            TL_LOG_ERROR("rollup", "commit: %s", rd_kafka_err2str(err));
            rc = -1;
            a->failed = 1;
        }
    }
    if (!rc) {
        for (int p = 0; p < a->n_parts; p++) a->parts[p].next = -1;
        for (int q = 0; q < a->n_spend; q++)
            if (a->spend_checked[q] > a->spend_committed[q])
                a->spend_committed[q] = a->spend_checked[q];
        a->pending = 0;
        tl_prom_add(a->m_commits, 1);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc < 0 ? -1 : 0;
}

/* ---- reading -------------------------------------------------------------------- */

static void dead_letter(tl_rollup_agg *a, const rd_kafka_message_t *m, const char *error)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    char part_s[16], off[24];
    snprintf(part_s, sizeof(part_s), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    TL_LOG_WARN("rollup", "dead letter topic=%s partition=%s offset=%s: %s", topic, part_s, off,
                error);
    if (ensure_txn(a) != 0) return;
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "tally.reason", -1, tl_dlq_reason_name(TL_DLQ_MALFORMED), -1);
    rd_kafka_header_add(h, "tally.error", -1, error, -1);
    rd_kafka_header_add(h, "tally.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "tally.source.partition", -1, part_s, -1);
    rd_kafka_header_add(h, "tally.source.offset", -1, off, -1);
    tl_buf key = {0};
    tl_buf_append(&key, m->key ? m->key : "",
                  m->key ? (m->key_len < TL_DLQ_MAX_KEY_BYTES ? m->key_len : TL_DLQ_MAX_KEY_BYTES)
                         : 0);
    produce(a, a->o.dlq_topic, RD_KAFKA_PARTITION_UA, &key, m->payload,
            m->len < a->o.dlq_max_bytes ? m->len : a->o.dlq_max_bytes, h);
    tl_buf_free(&key);
}

/* A partial that cannot be added: counted and dead-lettered. */
static void bad_partial(tl_rollup_agg *a, const rd_kafka_message_t *m, const char *error)
{
    tl_prom_add(a->m_bad, 1);
    dead_letter(a, m, error);
}

/* Decodes m into rec; on failure dead-letters it (from the partials topic) or, for a
 * total read back, says so (it is skipped: the next total of its key replaces it). */
static int decode(tl_rollup_agg *a, const rd_kafka_message_t *m, tl_rollup_rec *rec, int partial)
{
    char err[256];
    if (m->payload && tl_avro_get_rollup(m->payload, m->len, rec, err, sizeof(err)) == 0) return 0;
    if (!m->payload) snprintf(err, sizeof(err), "roll-up record: no value");
    if (partial) {
        bad_partial(a, m, err);
    } else {
        tl_prom_add(a->m_bad, 1);
        TL_LOG_WARN("rollup", "topic=%s partition=%d offset=%" PRId64 " skipped: %s", a->o.topic,
                    (int)m->partition, m->offset, err);
    }
    return -1;
}

/* Reads partition p of topic from its start to its end, handing each record to fn. The
 * number of records, or -1. */
static int64_t read_back(tl_rollup_agg *a, const char *topic, int32_t p,
                         void (*fn)(tl_rollup_agg *a, part *pt, const rd_kafka_message_t *m))
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t qe;
    int64_t deadline = tl_mono_ns() + 60 * (int64_t)1000000000;
    while ((qe = rd_kafka_query_watermark_offsets(a->reader, topic, p, &lo, &hi, 10000)) &&
           tl_mono_ns() < deadline)
        rd_kafka_poll(a->reader, 200);   /* a topic created moments ago: no leader yet */
    if (qe) {
        TL_LOG_ERROR("rollup", "cannot read the end of topic=%s partition=%d: %s", topic, (int)p,
                     rd_kafka_err2str(qe));
        return -1;
    }
    if (hi <= lo) return 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(a->reader, l);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t n = 0;
    for (int done = 0; !done;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(a->reader, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = 1;
        } else if (m->err) {
            TL_LOG_WARN("rollup", "reading back topic=%s partition=%d: %s", topic, (int)p,
                        rd_kafka_message_errstr(m));
        } else {
            fn(a, part_of(a, p), m);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(a->reader, NULL);
    return n;
}

static void total_back(tl_rollup_agg *a, part *pt, const rd_kafka_message_t *m)
{
    tl_rollup_rec rec;
    if (decode(a, m, &rec, 0) != 0) return;
    tl_rollup_set(rollup_of(pt, rec.dim, rec.window), &rec.row);
    free(rec.row.id);
}

static void state_back(tl_rollup_agg *a, part *pt, const rd_kafka_message_t *m)
{
    (void)pt;
    if (!m->key || m->key_len != strlen(TL_MK_KEY) || memcmp(m->key, TL_MK_KEY, m->key_len) ||
        !m->payload)
        return;   /* the chain's state is the latest record of its key */
    tl_buf_clear(&a->state);
    tl_buf_append(&a->state, m->payload, m->len);
}

/* ---- spend ------------------------------------------------------------------------ */

/* The partials topic's partition of a day row's key (the producers' partitioner), or -1. */
static int32_t spend_partition(tl_rollup_agg *a, tl_ru_dim d, const char *id, int64_t day)
{
    tl_rollup_row row = {.id = (char *)id, .window_start = day};
    tl_buf_clear(&a->spend_key);
    tl_avro_rollup_key(&a->spend_key, d, TL_RU_WINDOW_DAY, &row);
    return a->o.partitions > 0 ? a->partitioner(a->partials_rkt, a->spend_key.data,
                                                a->spend_key.len, a->o.partitions, NULL, NULL)
                               : -1;
}

/* The partials partition whose owner checks spend partition q for bad lines (q modulo
 * the partials' partition count), or -1 when that count is unknown. */
static int32_t spend_checker(const tl_rollup_agg *a, int q)
{
    return a->o.partitions > 0 ? q % a->o.partitions : -1;
}

/* Marks the day row (d, id, day) changed when partition p is its and this instance's own
 * (p -1: whichever it is). 1 when marked. */
static int spend_touch(tl_rollup_agg *a, tl_ru_dim d, const char *id, int64_t day, int32_t p)
{
    int32_t q = spend_partition(a, d, id, day);
    if (q < 0 || (p >= 0 && q != p) || q >= a->n_parts || (p < 0 && !a->parts[q].assigned))
        return 0;
    tl_rollup_touch(rollup_of(&a->parts[q], d, TL_RU_WINDOW_DAY), id, day);
    a->pending++;
    return 1;
}

/* A new owner of partition p: its day rows with spend are written (with the tables'). */
static void spend_own(tl_rollup_agg *a, int32_t p)
{
    for (int d = 0; a->spend && d < 2; d++) {
        size_t n = 0;
        const tl_rollup_row *rows = tl_rollup_rows(a->spend_ru[d], &n);
        for (size_t i = 0; i < n; i++)
            spend_touch(a, (tl_ru_dim)d, rows[i].id, rows[i].window_start, p);
    }
}

/* Why m is not a spend line (NULL: it is one, into day, channel, v). */
static const char *parse_spend(tl_rollup_agg *a, const rd_kafka_message_t *m, int64_t *day,
                               const char **channel, double *v)
{
    tl_buf_clear(&a->spend_line);
    if (m->payload) tl_buf_append(&a->spend_line, m->payload, m->len);
    tl_buf_putc(&a->spend_line, 0);
    return memchr(a->spend_line.data, 0, a->spend_line.len - 1)
        ? "a NUL byte in the line"
        : tl_rollup_spend_parse(a->spend_line.data, day, channel, v);
}

/* Line m of spend partition q: into the table the first time it is read; when q is this
 * instance's to check and m is past what was checked, a bad line is dead-lettered. A line
 * read again (after a seek back to the committed check) is only checked. */
static void add_spend(tl_rollup_agg *a, const rd_kafka_message_t *m, int32_t q)
{
    int64_t day = 0;
    double v = 0;
    const char *channel = NULL;
    const char *why = parse_spend(a, m, &day, &channel, &v);
    int fresh = m->offset >= a->spend_read[q];
    if (a->spend_checked[q] >= 0 && m->offset >= a->spend_checked[q]) {
        if (why) {
            char msg[320];
            snprintf(msg, sizeof(msg), "not a spend line (date,channel,spend expected): %s", why);
            dead_letter(a, m, msg);
            a->pending++;
        }
        a->spend_checked[q] = m->offset + 1;
    }
    if (!fresh) return;
    a->spend_read[q] = m->offset + 1;
    if (why) {
        static int said;
        tl_prom_add(a->m_spend_bad, 1);
        if (said++ < 5)
            TL_LOG_WARN("rollup",
                        "spend topic=%s partition=%d offset=%" PRId64 " skipped: %s "
                        "(date,channel,spend expected; counted in "
                        "tally_rollup_spend_bad_records_total)",
                        a->o.spend_topic, (int)m->partition, m->offset, why);
        return;
    }
    tl_prom_add(a->m_spend, 1);
    for (int d = 0; d < 2; d++) {
        tl_rollup_add_spend(a->spend_ru[d], channel, day, v);
        const char *id = d == TL_RU_CHANNEL ? channel : tl_rollup_group(a->spend_ru[d], channel);
        spend_touch(a, (tl_ru_dim)d, id, day, -1);
    }
}

/* What has arrived on the spend topic, without waiting. */
static void poll_spend(tl_rollup_agg *a)
{
    for (int i = 0; i < 1000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(a->spend, 0);
        if (!m) return;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < a->n_spend)
                a->spend_eof[m->partition] = m->offset;
        } else if (m->err) {
            TL_LOG_WARN("rollup", "spend topic=%s: %s", a->o.spend_topic,
                        rd_kafka_message_errstr(m));
        } else {
            if (m->partition >= 0 && m->partition < a->n_spend) {
                a->spend_eof[m->partition] = -1;
                add_spend(a, m, m->partition);
            }
        }
        rd_kafka_message_destroy(m);
    }
}

/* Drained: every partition of the spend topic read to the end it had when first asked. */
static int spend_drained(tl_rollup_agg *a)
{
    if (!a->spend) return 1;
    if (!a->spend_end) {
        a->spend_end = tl_xmalloc((size_t)(a->n_spend ? a->n_spend : 1) * sizeof(*a->spend_end));
        for (int q = 0; q < a->n_spend; q++) {
            int64_t lo = 0, hi = -1;
            if (rd_kafka_query_watermark_offsets(a->spend, a->o.spend_topic, q, &lo, &hi, 10000)) {
                free(a->spend_end);
                a->spend_end = NULL;   /* ask again next time */
                return 0;
            }
            a->spend_end[q] = hi > lo ? hi : -1;
        }
    }
    for (int q = 0; q < a->n_spend; q++)
        if (a->spend_end[q] >= 0 && a->spend_eof[q] < a->spend_end[q]) return 0;
    return 1;
}

/* The spend topic's reader, from the start of every partition. 0, or -1 with err. */
static int start_spend(tl_rollup_agg *a, rd_kafka_conf_t *sconf, const char *partitioner, char *err,
                       size_t errlen)
{
    static const struct {
        const char *name;
        int32_t (*fn)(const rd_kafka_topic_t *, const void *, size_t, int32_t, void *, void *);
    } parts[] = {
        {"murmur2_random", rd_kafka_msg_partitioner_murmur2_random},
        {"murmur2", rd_kafka_msg_partitioner_murmur2},
        {"consistent_random", rd_kafka_msg_partitioner_consistent_random},
        {"consistent", rd_kafka_msg_partitioner_consistent},
        {"fnv1a_random", rd_kafka_msg_partitioner_fnv1a_random},
        {"fnv1a", rd_kafka_msg_partitioner_fnv1a},
    };
    const char *name = *partitioner ? partitioner : "consistent_random"; /* librdkafka's default */
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && !a->partitioner; i++)
        if (!strcmp(parts[i].name, name)) a->partitioner = parts[i].fn;
    if (!a->partitioner) {
        snprintf(err, errlen,
                 "rollup.spend.topic: the producer's partitioner %s is not one "
                 "whose partition of a key can be known (murmur2_random, murmur2, "
                 "consistent_random, consistent, fnv1a_random, fnv1a)",
                 name);
        rd_kafka_conf_destroy(sconf);
        return -1;
    }
    a->spend = tl_kafka_reader_new(sconf, TL_KC_READER, "roll-up spend reader", err, errlen);
    if (!a->spend) return -1;
    a->n_spend = a->o.spend_partitions;
    if (a->n_spend <= 0) {
        snprintf(err, errlen, "rollup.spend.topic %s: cannot find its partitions",
                 a->o.spend_topic);
        return -1;
    }
    a->spend_eof = tl_xmalloc((size_t)a->n_spend * sizeof(*a->spend_eof));
    a->spend_read = tl_xcalloc((size_t)a->n_spend, sizeof(*a->spend_read));
    a->spend_checked = tl_xmalloc((size_t)a->n_spend * sizeof(*a->spend_checked));
    a->spend_committed = tl_xmalloc((size_t)a->n_spend * sizeof(*a->spend_committed));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(a->n_spend);
    for (int q = 0; q < a->n_spend; q++) {
        a->spend_eof[q] = a->spend_checked[q] = a->spend_committed[q] = -1;
        rd_kafka_topic_partition_list_add(l, a->o.spend_topic, q)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t ae = rd_kafka_assign(a->spend, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (ae) {
        snprintf(err, errlen, "rollup.spend.topic %s: assign: %s", a->o.spend_topic,
                 rd_kafka_err2str(ae));
        return -1;
    }
    for (int d = 0; d < 2; d++)
        if (!(a->spend_ru[d] =
                  tl_rollup_new((tl_ru_dim)d, TL_RU_WINDOW_DAY, a->o.groups, err, errlen)))
            return -1;
    a->partials_rkt = rd_kafka_topic_new(a->producer, a->o.partials_topic, NULL);
    a->m_spend = tl_prom_counter(
        "tally_rollup_spend_records_total",
        "Lines of ad spend read from rollup.spend.topic (by every instance).", NULL);
    a->m_spend_bad = tl_prom_counter(
        "tally_rollup_spend_bad_records_total",
        "Records of rollup.spend.topic that are not a line date,channel,spend.", NULL);
    return 0;
}

/* Partition p's totals (and the shared chain's state) read back to their ends. 0 or -1. */
static int restore(tl_rollup_agg *a, int32_t p)
{
    drop_totals(part_of(a, p));
    int64_t n = read_back(a, a->o.topic, p, total_back);
    if (n < 0) return -1;
    tl_prom_add(a->m_restored, (uint64_t)n);
    if (a->o.markov) {
        tl_buf_clear(&a->state);
        if (read_back(a, a->o.state_topic, p, state_back) < 0) return -1;
        if (a->state.len) {
            char err[256];
            part *pt = part_of(a, p);
            if (tl_mk_share_restore(share_of(a, pt), a->state.data, a->state.len, err,
                                    sizeof(err)) != 0) {
                tl_prom_add(a->m_bad, 1);
                TL_LOG_WARN("rollup", "topic=%s partition=%d: the Markov chain starts afresh: %s",
                            a->o.state_topic, (int)p, err);
            }
        }
    }
    spend_own(a, p);
    TL_LOG_INFO("rollup", "restored partition=%d totals=%" PRId64 "%s", (int)p, n,
                part_of(a, p)->mk ? " and the Markov chain" : "");
    return 0;
}

/* The spend partitions of l's partials partitions become this instance's to check: from
 * the group's committed offset for each (0 when none), reading again from there what was
 * already read. 0 or -1. */
static int spend_take_over(tl_rollup_agg *a, const rd_kafka_topic_partition_list_t *l)
{
    if (!a->spend) return 0;
    rd_kafka_topic_partition_list_t *sl = rd_kafka_topic_partition_list_new(a->n_spend);
    for (int q = 0; q < a->n_spend; q++)
        for (int i = 0; i < l->cnt; i++)
            if (spend_checker(a, q) == l->elems[i].partition)
                rd_kafka_topic_partition_list_add(sl, a->o.spend_topic, q);
    rd_kafka_resp_err_t e = sl->cnt ? rd_kafka_committed(a->consumer, sl, 60000) : 0;
    rd_kafka_topic_partition_list_t *back =
        rd_kafka_topic_partition_list_new(sl->cnt ? sl->cnt : 1);
    for (int i = 0; i < sl->cnt && !e; i++) {
        int32_t q = sl->elems[i].partition;
        int64_t from = sl->elems[i].offset >= 0 ? sl->elems[i].offset : 0;
        a->spend_checked[q] = a->spend_committed[q] = from;
        if (from < a->spend_read[q]) {
            rd_kafka_topic_partition_list_add(back, a->o.spend_topic, q)->offset = from;
            a->spend_eof[q] = -1;
        }
    }
    if (!e && back->cnt) {
        rd_kafka_error_t *se = rd_kafka_seek_partitions(a->spend, back, 30000);
        if (se) {
            TL_LOG_ERROR("rollup", "spend topic %s: seek: %s", a->o.spend_topic,
                         rd_kafka_error_string(se));
            rd_kafka_error_destroy(se);
            e = RD_KAFKA_RESP_ERR__FAIL;
        }
    } else if (e) {
        TL_LOG_ERROR("rollup", "spend topic %s: committed offsets: %s", a->o.spend_topic,
                     rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(back);
    rd_kafka_topic_partition_list_destroy(sl);
    return e ? -1 : 0;
}

/* The committed offsets of l's partitions, stable (read_committed), into l; then each
 * partition's totals read back. 0 or -1. */
static int take_over(tl_rollup_agg *a, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_resp_err_t e = rd_kafka_committed(a->consumer, l, 60000);
    if (e) {
        TL_LOG_ERROR("rollup", "committed offsets: %s", rd_kafka_err2str(e));
        return -1;
    }
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        if (restore(a, l->elems[i].partition) != 0) return -1;
    }
    return spend_take_over(a, l);
}

/* After an abort: every assigned partition's totals read back, and reading resumes
 * from the committed offsets. */
static int restore_all(tl_rollup_agg *a)
{
    for (int i = 0; i < a->n_mru; i++) tl_rollup_clear(a->mru[i]); /* of the aborted one */
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(a->n_parts ? a->n_parts : 1);
    for (int p = 0; p < a->n_parts; p++)
        if (a->parts[p].assigned) rd_kafka_topic_partition_list_add(l, a->o.partials_topic, p);
    int rc = take_over(a, l);
    if (!rc && l->cnt) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(a->consumer, l, 30000);
        if (e) {
            TL_LOG_ERROR("rollup", "seek: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (rc) a->failed = 1;
    return rc;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    tl_rollup_agg *a = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (take_over(a, parts) != 0) {
            a->failed = 1;
            return; /* nothing assigned: the group gives the partitions to another member */
        }
        for (int i = 0; i < parts->cnt; i++) {
            part *pt = part_of(a, parts->elems[i].partition);
            pt->assigned = 1;
            pt->eof = -1;
            TL_LOG_INFO("rollup", "assigned partition=%d", (int)parts->elems[i].partition);
        }
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e) {
            TL_LOG_ERROR("rollup", "assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            a->failed = 1;
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (!a->failed) commit(a); /* what is held, before the next owner reads it back */
        for (int i = 0; i < parts->cnt; i++) {
            part *pt = part_of(a, parts->elems[i].partition);
            pt->assigned = 0;
            drop_totals(pt);
            for (int q = 0; q < a->n_spend; q++)
                if (spend_checker(a, q) == parts->elems[i].partition)
                    a->spend_checked[q] = a->spend_committed[q] = -1;
            TL_LOG_INFO("rollup", "revoked partition=%d", (int)parts->elems[i].partition);
        }
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) rd_kafka_error_destroy(e);
    } else {
        TL_LOG_ERROR("rollup", "rebalance error: %s", rd_kafka_err2str(err));
    }
}

static void add_partial(tl_rollup_agg *a, const rd_kafka_message_t *m)
{
    part *pt = part_of(a, m->partition);
    pt->eof = -1;
    tl_rollup_rec rec;
    char err[256];
    if (m->key && m->key_len == strlen(TL_MK_KEY) && !memcmp(m->key, TL_MK_KEY, m->key_len)) {
        if (!a->o.markov) {
            bad_partial(a, m,
                        "a Markov partial, and this instance shares no chain (markov.enabled)");
        } else if (tl_mk_share_add(share_of(a, pt), m->payload, m->len, err, sizeof(err)) != 0) {
            bad_partial(a, m, err);
        } else if (tl_mk_share_close(pt->mk, emit_credit, a) != 0) {
            a->failed = 1;
        }
    } else if (decode(a, m, &rec, 1) == 0) {
        tl_rollup_merge(rollup_of(pt, rec.dim, rec.window), &rec.row);
        free(rec.row.id);
        tl_prom_add(a->m_partials, 1);
    }
    pt->next = m->offset + 1;
    a->pending++;
}

/* Drained (tally run --until-end, this instance alone in the group): every partition of
 * the partials topic assigned here -- a member that was killed holds its partitions until
 * its session expires, so that is waited for, up to AGG_DRAIN_OWN_S -- and read to the end
 * it had when the drain began, and committed without sending partials of its own (the
 * shared chain's credit deltas), which would have to be read in turn. */
#define AGG_DRAIN_OWN_S 120
static int drained(tl_rollup_agg *a)
{
    int any = 0;
    if (!a->drain_started_ns) a->drain_started_ns = tl_mono_ns();
    int owned = 0;
    for (int p = 0; p < a->n_parts; p++) owned += a->parts[p].assigned;
    if (owned < a->o.partitions) {
        if (tl_mono_ns() - a->drain_started_ns < (int64_t)AGG_DRAIN_OWN_S * 1000000000) return 0;
        if (!a->drain_warned++)
            TL_LOG_WARN("rollup",
                        "%d partitions of %s are not this instance's after %d s: the "
                        "roll-ups are brought up to date for those it owns only",
                        owned, a->o.partials_topic, AGG_DRAIN_OWN_S);
    }
    if (!spend_drained(a)) return 0;
    if (!a->drain_end) {
        a->sent_partials = 0;
        a->drain_end = tl_xmalloc((size_t)(a->n_parts ? a->n_parts : 1) * sizeof(*a->drain_end));
        for (int p = 0; p < a->n_parts; p++) {
            int64_t lo = 0, hi = -1;
            if (a->parts[p].assigned &&
                rd_kafka_query_watermark_offsets(a->consumer, a->o.partials_topic, p, &lo, &hi,
                                                 10000))
                hi = INT64_MAX; /* unknown: ask again next time */
            a->drain_end[p] = hi;
        }
    }
    for (int p = 0; p < a->n_parts; p++) {
        if (!a->parts[p].assigned) continue;
        any = 1;
        if (a->drain_end[p] == INT64_MAX || a->parts[p].eof < a->drain_end[p]) {
            if (a->drain_end[p] == INT64_MAX) {
                free(a->drain_end);
                a->drain_end = NULL;
            }
            return 0;
        }
    }
    if (!any || commit(a) != 0) return !any ? 0 : 1;
    if (a->sent_partials) { /* read to the new ends */
        free(a->drain_end);
        a->drain_end = NULL;
        return 0;
    }
    return 1;
}

static void *run(void *arg)
{
    tl_rollup_agg *a = arg;
    a->last_commit_ns = tl_mono_ns();
    const int64_t interval = (int64_t)a->o.commit_interval_ms * 1000000;
    while (!a->failed) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(a->consumer, 50);
        if (m) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                part_of(a, m->partition)->eof = m->offset;
            else if (m->err) TL_LOG_WARN("rollup", "consume: %s", rd_kafka_message_errstr(m));
            else add_partial(a, m);
            rd_kafka_message_destroy(m);
        }
        if (a->spend) poll_spend(a);
        if ((a->pending && tl_mono_ns() - a->last_commit_ns >= interval) ||
            a->pending >= AGG_MAX_PENDING)
            if (commit(a) != 0) break;
        if (__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE) &&
            (!__atomic_load_n(&a->drain, __ATOMIC_ACQUIRE) || drained(a)))
            break;
    }
    if (!a->failed) commit(a);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------- */

static void destroy(tl_rollup_agg *a)
{
    if (a->consumer) {
        tl_kafka_consumer_leave(a->consumer, 10000); /* the revocation commits what is held */
        rd_kafka_destroy(a->consumer);
    }
    if (a->reader) {
        rd_kafka_consumer_close(a->reader);
        rd_kafka_destroy(a->reader);
    }
    if (a->spend) {
        rd_kafka_consumer_close(a->spend);
        rd_kafka_destroy(a->spend);
    }
    if (a->partials_rkt) rd_kafka_topic_destroy(a->partials_rkt);
    if (a->producer) {
        rd_kafka_flush(a->producer, 30000);
        rd_kafka_destroy(a->producer);
    }
    TL_FREE_ALL(a->spend_eof, a->spend_read, a->spend_checked, a->spend_committed, a->spend_end);
    for (int d = 0; d < 2; d++) tl_rollup_destroy(a->spend_ru[d]);
    tl_buf_free(&a->spend_line);
    tl_buf_free(&a->spend_key);
    for (int p = 0; p < a->n_parts; p++) drop_totals(&a->parts[p]);
    free(a->parts);
    free(a->drain_end);
    tl_buf_free(&a->buf);
    tl_buf_free(&a->key);
    tl_buf_free(&a->state);
    for (int i = 0; i < a->n_mru; i++) tl_rollup_destroy(a->mru[i]);
    TL_FREE_ALL((char *)a->o.partials_topic, (char *)a->o.topic, (char *)a->o.dlq_topic,
                (char *)a->o.credit_topic, (char *)a->o.state_topic, (char *)a->o.groups,
                (char *)a->o.spend_topic, a);
}

tl_rollup_agg *tl_rollup_agg_start(rd_kafka_conf_t *cconf, rd_kafka_conf_t *rconf,
                                   rd_kafka_conf_t *pconf, rd_kafka_conf_t *sconf,
                                   const tl_rollup_agg_opts *o, char *err, size_t errlen)
{
    tl_rollup_agg *a = tl_xcalloc(1, sizeof(*a));
    a->o = *o;
    a->o.partials_topic = tl_xstrdup(o->partials_topic);
    a->o.topic = tl_xstrdup(o->topic);
    a->o.dlq_topic = tl_xstrdup(o->dlq_topic);
    a->o.credit_topic = tl_xstrdup(o->credit_topic ? o->credit_topic : "");
    a->o.state_topic = tl_xstrdup(o->state_topic ? o->state_topic : "");
    a->o.groups = tl_xstrdup(o->groups ? o->groups : "");
    a->o.spend_topic = o->spend_topic && *o->spend_topic ? tl_xstrdup(o->spend_topic) : NULL;
    a->m_partials =
        tl_prom_counter("tally_rollup_partials_total",
                        "Roll-up partials added into the totals this instance owns.", NULL);
    a->m_totals = tl_prom_counter("tally_rollup_totals_written_total",
                                  "Roll-up totals written to the roll-up topic.", NULL);
    a->m_bad =
        tl_prom_counter("tally_rollup_bad_records_total",
                        "Roll-up records that did not decode (partials: also dead letters).", NULL);
    a->m_commits =
        tl_prom_counter("tally_rollup_commits_total", "Roll-up aggregator commits.", NULL);
    a->m_restored = tl_prom_counter("tally_rollup_restored_total",
                                    "Roll-up totals read back on assignments.", NULL);
    a->m_windows =
        tl_prom_counter("tally_markov_shared_windows_total",
                        "Windows of the shared Markov chain closed (by its owner).", NULL);
    a->m_late =
        tl_prom_counter("tally_markov_shared_late_journeys_total",
                        "Journeys that reached the shared chain after their window closed.", NULL);
    a->m_credits =
        tl_prom_counter("tally_markov_shared_credit_deltas_total",
                        "Credit deltas published by the owner of the shared Markov chain.", NULL);
    char why[512]; /* lib/kafka_settings.c */
    tl_kafka_settings_apply(cconf, TL_KC_READER, why, sizeof(why));
    tl_kafka_settings_apply(cconf, TL_KC_ROLLUP_GROUP, why, sizeof(why));
    tl_kafka_settings_apply(rconf, TL_KC_READER, why, sizeof(why));
    rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
    rd_kafka_conf_set_opaque(cconf, a);
    /* the producer's partitioner, before the producer takes its configuration */
    char part_name[64] = "";
    size_t part_sz = sizeof(part_name);
    rd_kafka_conf_get(pconf, "partitioner", part_name, &part_sz);
    a->consumer = tl_kafka_client_new(RD_KAFKA_CONSUMER, cconf, "roll-up consumer", err, errlen);
    a->reader = a->consumer
        ? tl_kafka_client_new(RD_KAFKA_CONSUMER, rconf, "roll-up reader", err, errlen)
        : NULL;
    a->producer = a->reader
        ? tl_kafka_client_new(RD_KAFKA_PRODUCER, pconf, "roll-up producer", err, errlen)
        : NULL;
    if (!a->consumer) rd_kafka_conf_destroy(rconf);
    if (!a->reader) rd_kafka_conf_destroy(pconf);
    if (!a->producer) {
        if (sconf) rd_kafka_conf_destroy(sconf);
        goto fail;
    }
    if (!a->o.spend_topic && sconf) rd_kafka_conf_destroy(sconf);
    if (a->o.spend_topic && start_spend(a, sconf, part_name, err, errlen) != 0) goto fail;
    if (o->markov)
        for (int d = TL_RU_CHANNEL; d <= TL_RU_CATEGORY; d++) {
            if (d == TL_RU_CHANNEL_GROUP && !*a->o.groups) continue;
            for (int w = TL_RU_WINDOW_HOUR; w <= TL_RU_WINDOW_DAY; w++) {
                tl_rollup *r =
                    tl_rollup_new((tl_ru_dim)d, (tl_ru_window)w, a->o.groups, err, errlen);
                if (!r) goto fail;
                a->mru[a->n_mru++] = r;
            }
        }
    if (o->transactional &&
        tl_kafka_init_transactions(a->producer, "roll-up producer", err, errlen) != 0)
        goto fail;
    rd_kafka_poll_set_consumer(a->consumer);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, a->o.partials_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(a->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (se) {
        snprintf(err, errlen, "roll-up consumer: subscribe %s: %s", a->o.partials_topic,
                 rd_kafka_err2str(se));
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        snprintf(err, errlen, "roll-up aggregator: cannot start its thread");
        goto fail;
    }
    TL_LOG_INFO("rollup", "aggregating %s into %s%s", a->o.partials_topic, a->o.topic,
                o->transactional ? " (exactly_once)" : "");
    return a;
fail:
    destroy(a);
    return NULL;
}

int tl_rollup_agg_stop(tl_rollup_agg *a, int drain)
{
    if (!a) return 0;
    __atomic_store_n(&a->drain, drain, __ATOMIC_RELEASE);
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
    pthread_join(a->thread, NULL);
    int rc = a->failed ? -1 : 0;
    destroy(a);
    return rc;
}
