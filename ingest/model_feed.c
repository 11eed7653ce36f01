/*
 * model_feed.c -- the model topic's reader (model_feed.h).
 */
#include "model_feed.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A record that did not decode, kept until it is dead-lettered. */
typedef struct dead {
    struct dead *next;
    tl_dlq_record d;            /* key, payload and error owned */
} dead;

struct tl_model_feed {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    char *topic, *own, *what, *counter;
    size_t own_len, dlq_max;
    int64_t next;               /* the next offset to apply */
    dead *dead, **dead_tail;    /* oldest first */
    dead *sent, **sent_tail;    /* handed out, in a transaction not known to have committed */
    tl_model_feed_stats st;
};

tl_model_feed *tl_model_feed_new(rd_kafka_conf_t *conf, const char *what, const char *counter,
                                 const char *topic, int64_t next, const char *own_key,
                                 size_t dlq_max_bytes, char *err, size_t errlen)
{
    char who[128];
    snprintf(who, sizeof(who), "%s consumer", what);
    rd_kafka_t *rk = tl_kafka_reader_new(conf, TL_KC_MODEL_FEED, who, err, errlen);
    if (!rk) return NULL;
    tl_model_feed *f = tl_xcalloc(1, sizeof(*f));
    f->rk = rk;
    f->topic = tl_xstrdup(topic);
    f->what = tl_xstrdup(what);
    f->counter = tl_xstrdup(counter);
    f->own = tl_xstrdup(own_key);
    f->own_len = own_key ? strlen(own_key) : 0;
    f->dlq_max = dlq_max_bytes;
    f->dead_tail = &f->dead;
    f->sent_tail = &f->sent;
    f->next = next >= 0 ? next : 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset =
        next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t ae = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (ae) {
        snprintf(err, errlen, "%s %s: assign: %s", what, topic, rd_kafka_err2str(ae));
        tl_model_feed_destroy(f);
        return NULL;
    }
    f->q = rd_kafka_queue_get_consumer(rk);
    TL_LOG_INFO("model", "reading the %s topic=%s offset=%" PRId64, what, topic, f->next);
    return f;
}

static void free_dead(dead *d);
static void free_list(dead *d);

void tl_model_feed_destroy(tl_model_feed *f)
{
    if (!f) return;
    if (f->q) rd_kafka_queue_destroy(f->q);
    rd_kafka_consumer_close(f->rk);
    rd_kafka_destroy(f->rk);
    free_list(f->dead);
    free_list(f->sent);
    TL_FREE_ALL(f->topic, f->own, f->what, f->counter, f);
}

static void free_dead(dead *d)
{
    free((void *)d->d.key);
    free((void *)d->d.payload);
    free((char *)d->d.error);
    free(d);
}

static void free_list(dead *d)
{
    while (d) {
        dead *next = d->next;
        free_dead(d);
        d = next;
    }
}

static void keep_dead(tl_model_feed *f, const rd_kafka_message_t *m, const char *err)
{
    size_t klen = m->key_len < TL_DLQ_MAX_KEY_BYTES ? m->key_len : TL_DLQ_MAX_KEY_BYTES;
    size_t vlen = f->dlq_max && m->len > f->dlq_max ? f->dlq_max : m->len;
    dead *d = tl_xcalloc(1, sizeof(*d));
    d->d = (tl_dlq_record){
        .reason = TL_DLQ_MALFORMED,
        .error = tl_xstrdup(err),
        .topic = f->topic,
        .partition = m->partition,
        .offset = m->offset,
        .key = klen ? tl_xmemdup(m->key, klen) : NULL,
        .key_len = klen,
        .key_total = m->key_len,
        .payload = vlen ? tl_xmemdup(m->payload, vlen) : NULL,
        .payload_len = vlen,
        .payload_total = m->len,
    };
    *f->dead_tail = d;
    f->dead_tail = &d->next;
}

int tl_model_feed_dead_pending(const tl_model_feed *f)
{
    int n = 0;
    for (const dead *d = f->dead; d; d = d->next) n++;
    return n;
}

int tl_model_feed_dead_letters(tl_model_feed *f, int (*emit)(void *arg, const tl_dlq_record *d),
                               void *arg)
{
    int n = 0;
    while (f->dead && emit(arg, &f->dead->d) == 0) {
        dead *d = f->dead;
        f->dead = d->next;
        if (!f->dead) f->dead_tail = &f->dead;
        d->next = NULL;
        *f->sent_tail = d;
        f->sent_tail = &d->next;
        n++;
    }
    return n;
}

int tl_model_feed_dead_settle(tl_model_feed *f, int committed)
{
    int n = 0;
    for (const dead *d = f->sent; d; d = d->next) n++;
    if (!n) return 0;
    if (committed) {
        free_list(f->sent);
    } else { /* handed out again first, in their order */
        *f->sent_tail = f->dead;
        if (!f->dead) f->dead_tail = f->sent_tail;
        f->dead = f->sent;
        TL_LOG_WARN("model",
                    "%d dead letters of the %s %s were in a transaction that did not commit: "
                    "they go in the next one",
                    n, f->what, f->topic);
    }
    f->sent = NULL;
    f->sent_tail = &f->sent;
    return n;
}

static void one(tl_model_feed *f, const rd_kafka_message_t *m, tl_feed_apply_fn apply, void *arg,
                int *applied)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            TL_LOG_WARN("model", "%s %s: %s", f->what, f->topic, rd_kafka_message_errstr(m));
        return;
    }
    if (m->offset >= f->next) f->next = m->offset + 1;
    if (f->own && m->key_len == f->own_len && m->key && !memcmp(m->key, f->own, f->own_len)) {
        f->st.own++;
        return;
    }
    char err[256] = "";
    if (apply(arg, m->payload, m->len, m->offset, err, sizeof(err)) == 0) {
        f->st.applied++;
        (*applied)++;
    } else {
        if (f->st.bad++ < 5)
            TL_LOG_WARN("model",
                        "%s %s offset %" PRId64 ": %s (skipped: a dead letter, counted in %s)",
                        f->what, f->topic, m->offset, err, f->counter);
        keep_dead(f, m, err[0] ? err : "the record does not decode");
    }
}

int tl_model_feed_poll(tl_model_feed *f, tl_feed_apply_fn apply, void *arg, int max)
{
    rd_kafka_message_t *msgs[256];
    int applied = 0, seen = 0;
    while (seen < max) {
        int want = max - seen < 256 ? max - seen : 256;
        ssize_t got = rd_kafka_consume_batch_queue(f->q, 0, msgs, (size_t)want);
        if (got <= 0) break;
        for (ssize_t i = 0; i < got; i++) {
            one(f, msgs[i], apply, arg, &applied);
            rd_kafka_message_destroy(msgs[i]);
        }
        seen += (int)got;
    }
    return applied;
}

void tl_model_feed_stats_get(const tl_model_feed *f, tl_model_feed_stats *s) { *s = f->st; }
