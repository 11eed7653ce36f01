/*
 * runtime.c -- the batch loop (runtime.h).
 *
 * Ordering is the whole point of this file:
 *   1. outputs are emitted while events are processed, into the sink's buffers;
 *   2. sink flush: returns only when the destination acknowledged all of them;
 *   3. stores flush, when due: dirty user records + the next offset they reflect, one
 *      WriteBatch per partition;
 *   4. source commit: input offsets stored for the consumer group.
 * A failure before 2 completes leaves RocksDB and the group offsets where they were:
 * the process exits non-zero and a restart redoes the batch. Whatever happens after
 * 2, a restart resumes each partition from its store's offset, which may be behind
 * the group's (state is written less often than offsets) but never ahead of the
 * acknowledged outputs: events are reprocessed, never lost, and state is never
 * applied twice.
 *
 * Stores are opened when a partition is assigned (or, for sources without
 * assignments, like files, on first use) and closed when revoked: at_least_once
 * between batches, once every output in flight is acknowledged; exactly_once after
 * the open transaction is committed (or aborted and its changes dropped).
 */
#include "runtime.h"
#include "changelog.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_RUNTIME_MAX_INFLIGHT 32

/* Kafka timestamps of processed events, to observe their end-to-end latency once the
 * outputs they caused are committed. */
typedef struct tsvec {
    int64_t *v;
    int n, cap;
} tsvec;

static void tsvec_push(tsvec *t, int64_t x)
{
    TL_GROW(t->v, t->n, t->cap, 1024);
    t->v[t->n++] = x;
}

/* The runtime's metrics (prom.h), looked up once. */
typedef struct rt_metrics {
    tl_prom_series *events[TL_EVENT_TYPE_COUNT], *dead[TL_DLQ_REASON_COUNT];
    tl_prom_series *decode[TL_DLQ_REASON_COUNT];   /* NULL for reasons after decoding */
    tl_prom_series *batch_seconds, *latency_seconds, *committed, *aborted;
} rt_metrics;

static void metrics_init(rt_metrics *m)
{
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++)
        m->events[t] = tl_prom_counter("tally_events_total", "Events processed, by type.", "type",
                                       tl_event_type_name((tl_event_type)t), NULL);
    for (int r = 0; r < TL_DLQ_REASON_COUNT; r++)
        m->dead[r] = tl_prom_counter("tally_dead_letters_total",
                                     "Input records sent to the dead-letter topic, by reason.",
                                     "reason", tl_dlq_reason_name((tl_dlq_reason)r), NULL);
    for (int r = 0; r <= TL_DLQ_MALFORMED; r++)   /* framing, schema id, resolution, body */
        m->decode[r] =
            tl_prom_counter("tally_decode_errors_total",
                            "Input records that did not decode, by reason (also dead letters).",
                            "reason", tl_dlq_reason_name((tl_dlq_reason)r), NULL);
    m->batch_seconds = tl_prom_histogram(
        "tally_batch_duration_seconds",
        "Time from a batch's first event to its commit (exactly_once: the transaction).",
        tl_prom_latency_buckets, tl_prom_latency_buckets_n, NULL);
    m->latency_seconds = tl_prom_histogram(
        "tally_end_to_end_latency_seconds",
        "Time from an input record's Kafka timestamp to the commit of the outputs it caused.",
        tl_prom_latency_buckets, tl_prom_latency_buckets_n, NULL);
    const char *txh = "Transactions (exactly_once), by result.";
    m->committed = tl_prom_counter("tally_transactions_total", txh, "result", "committed", NULL);
    m->aborted = tl_prom_counter("tally_transactions_total", txh, "result", "aborted", NULL);
}

static void observe_latency(const rt_metrics *m, tsvec *t)
{
    int64_t now = tl_now_ms();
    for (int i = 0; i < t->n; i++)
        tl_prom_observe(m->latency_seconds, (double)(now - t->v[i]) / 1e3);
    t->n = 0;
}

struct tl_runtime {
    tl_runtime_opts o;
    const tl_sink *sink;
    const tl_stage *stages;
    int n_stages;
    tl_store **stores;           /* by partition */
    /* Held for writing while stores (or the array) change, for reading by other
     * threads that look users up (tl_runtime_read_user). */
    pthread_rwlock_t stores_lock;
    int64_t *batch_next;         /* per partition: next offset after this batch, -1 = untouched */
    int64_t *pending;            /* per partition: next offset processed, not yet in the store */
    int n_parts;
    int64_t last_state_flush_ns;
    /* Processed batches whose outputs are not all acknowledged yet, oldest first. */
    struct inflight {
        uint64_t mark;           /* sink records emitted up to the end of the batch */
        int64_t *next;           /* per partition: next offset after the batch, or -1 */
        int n;
        tsvec ts;                /* its events' Kafka timestamps */
    } q[TL_RUNTIME_MAX_INFLIGHT];
    int q_head, q_len;
    const tl_source *src;
    volatile sig_atomic_t *stop;
    tl_batch batch;
    /* Exactly-once: the open transaction. */
    int txn_open, txn_events, rewind, failed;
    int64_t txn_start_ns, txn_due_ns;   /* begun; to commit (eos_begin) */
    int64_t quiet_ns;            /* the events read next arrived after this (eos_begin) */
    tl_arena out_arena;
    tl_runtime_stats st;
    rt_metrics m;
    tsvec batch_ts;              /* Kafka timestamps of the events processed, not committed */
    int64_t last_tick_ns;
    size_t rss_start;            /* resident size when the first store opened */
    int64_t rss_checked_ns;
    int squeeze_level;           /* as last logged: 0 none, 1 the caches give some up, 2 half */
    int64_t squeeze_logged_ns;
};

tl_runtime *tl_runtime_new(const tl_runtime_opts *o, const tl_sink *sink, const tl_stage *stages,
                           int n_stages)
{
    tl_runtime *rt = tl_xcalloc(1, sizeof(*rt));
    rt->o = *o;
    tl_store_memory(o->memtable_bytes, o->block_cache_bytes);
    rt->sink = sink;
    rt->stages = stages;
    rt->n_stages = n_stages;
    tl_batch_init(&rt->batch);
    tl_arena_init(&rt->out_arena, 64 * 1024);
    rt->st.started_ns = tl_mono_ns();
    rt->last_state_flush_ns = rt->st.started_ns;
    metrics_init(&rt->m);
    pthread_rwlock_init(&rt->stores_lock, NULL);
    return rt;
}

void tl_runtime_destroy(tl_runtime *rt)
{
    if (!rt) return;
    pthread_rwlock_wrlock(&rt->stores_lock);
    for (int p = 0; p < rt->n_parts; p++) tl_store_close(rt->stores[p]);
    free(rt->stores);
    rt->stores = NULL;
    rt->n_parts = 0;
    pthread_rwlock_unlock(&rt->stores_lock);
    pthread_rwlock_destroy(&rt->stores_lock);
    free(rt->batch_next);
    free(rt->pending);
    for (int i = 0; i < TL_RUNTIME_MAX_INFLIGHT; i++) {
        free(rt->q[i].next);
        free(rt->q[i].ts.v);
    }
    free(rt->batch_ts.v);
    tl_batch_destroy(&rt->batch);
    tl_arena_destroy(&rt->out_arena);
    free(rt);
}

static void ensure_parts(tl_runtime *rt, int32_t partition)
{
    if (partition < rt->n_parts) return;
    pthread_rwlock_wrlock(&rt->stores_lock);
    int n = partition + 1;
    rt->stores = tl_xrealloc(rt->stores, (size_t)n * sizeof(*rt->stores));
    rt->batch_next = tl_xrealloc(rt->batch_next, (size_t)n * sizeof(*rt->batch_next));
    rt->pending = tl_xrealloc(rt->pending, (size_t)n * sizeof(*rt->pending));
    for (int p = rt->n_parts; p < n; p++) {
        rt->stores[p] = NULL;
        rt->batch_next[p] = -1;
        rt->pending[p] = -1;
    }
    rt->n_parts = n;
    pthread_rwlock_unlock(&rt->stores_lock);
}

static tl_store *open_store(tl_runtime *rt, int32_t partition)
{
    ensure_parts(rt, partition);
    if (!rt->stores[partition]) {
        char err[512];
        if (!rt->rss_start) rt->rss_start = tl_resident_bytes();   /* the process without state */
        tl_store *s =
            tl_store_open(rt->o.state_dir, partition, rt->o.cache_bytes, err, sizeof(err));
        pthread_rwlock_wrlock(&rt->stores_lock);
        rt->stores[partition] = s;
        pthread_rwlock_unlock(&rt->stores_lock);
        if (!s) {
            TL_LOG_ERROR("runtime", "%s", err);
            return NULL;
        }
        TL_LOG_INFO("runtime", "store opened partition=%d next_offset=%" PRId64, (int)partition,
                    tl_store_next_offset(rt->stores[partition]));
    }
    return rt->stores[partition];
}

int tl_runtime_assigned(tl_runtime *rt, int32_t partition, int64_t *next_offset)
{
    tl_store *s = open_store(rt, partition);
    if (!s) return -1;
    if (rt->o.restore) {
        /* Exactly-once: the changelog holds every committed transaction's state, and the
         * group's committed offset is exactly where those transactions stopped. */
        if (rt->o.restore(rt->o.restore_arg, s, partition) != 0) return -1;
        *next_offset = -1;
        return 0;
    }
    *next_offset = tl_store_next_offset(s);
    return 0;
}

/* Writes one partition's pending state. 0 or -1. */
static int flush_store(tl_runtime *rt, int32_t p)
{
    if (rt->pending[p] < 0 || !rt->stores[p]) return 0;
    char err[512];
    if (tl_store_flush(rt->stores[p], rt->pending[p], err, sizeof(err)) != 0) {
        TL_LOG_ERROR("runtime", "%s", err);
        return -1;
    }
    rt->pending[p] = -1;
    return 0;
}

static int flush_stores_only(tl_runtime *rt)
{
    for (int p = 0; p < rt->n_parts; p++)
        if (flush_store(rt, p) != 0) return -1;
    return 0;
}

static int flush_stores(tl_runtime *rt)
{
    if (flush_stores_only(rt) != 0) return -1;
    for (int k = 0; k < rt->n_stages; k++)
        if (rt->stages[k].checkpoint && rt->stages[k].checkpoint(rt->stages[k].ctx) != 0) return -1;
    rt->last_state_flush_ns = tl_mono_ns();
    return 0;
}

static int settle(tl_runtime *rt, int block);

static int eos_commit(tl_runtime *rt);

void tl_runtime_revoked(tl_runtime *rt, int32_t partition)
{
    if (partition >= rt->n_parts || !rt->stores[partition]) return;
    /* Exactly-once: the open transaction holds this partition's latest state; it is
     * committed (or aborted and dropped) before the store goes. */
    if (rt->txn_open && eos_commit(rt) != 0) rt->failed = 1;
    /* Then, once every output in flight is acknowledged
     * (and its offsets stored), the store holds no unacknowledged effect and may be
     * written; if anything fails, the next owner replays from the store's older
     * offset. */
    if (settle(rt, 1) == 0) flush_store(rt, partition);
    pthread_rwlock_wrlock(&rt->stores_lock);
    tl_store_close(rt->stores[partition]);
    rt->stores[partition] = NULL;
    pthread_rwlock_unlock(&rt->stores_lock);
    TL_LOG_INFO("runtime", "store closed partition=%d", (int)partition);
}

static int listener_assigned(void *arg, int32_t partition, int64_t *next_offset)
{
    return tl_runtime_assigned(arg, partition, next_offset);
}

static void listener_revoked(void *arg, int32_t partition) { tl_runtime_revoked(arg, partition); }

tl_partition_listener tl_runtime_partition_listener(tl_runtime *rt)
{
    return (tl_partition_listener){listener_assigned, listener_revoked, rt};
}

tl_store *tl_runtime_store(tl_runtime *rt, int32_t partition)
{
    return partition >= 0 && partition < rt->n_parts ? rt->stores[partition] : NULL;
}

int tl_runtime_read_user(tl_runtime *rt, const char *user_id, tl_buf *out, int32_t *partition,
                         int64_t *stream_time, int32_t *owned, int max_owned, int *n_owned,
                         char *err, size_t errlen)
{
    int found = 0;
    *n_owned = 0;
    pthread_rwlock_rdlock(&rt->stores_lock);
    for (int p = 0; p < rt->n_parts && found == 0; p++) {
        if (!rt->stores[p]) continue;
        if (*n_owned < max_owned) owned[(*n_owned)++] = p;
        found = tl_store_read_raw(rt->stores[p], user_id, out, err, errlen);
        if (found == 1) {
            *partition = p;
            *stream_time = tl_store_stream_time(rt->stores[p]);
        }
    }
    pthread_rwlock_unlock(&rt->stores_lock);
    return found;
}

const tl_runtime_stats *tl_runtime_stats_get(const tl_runtime *rt) { return &rt->st; }

static void note_offset(tl_runtime *rt, int32_t partition, int64_t offset)
{
    ensure_parts(rt, partition);
    if (offset + 1 > rt->batch_next[partition]) rt->batch_next[partition] = offset + 1;
}

/* Commits the oldest in-flight batch: its offsets go to the source and become the
 * offsets the stores will be written with. */
static int commit_front(tl_runtime *rt)
{
    struct inflight *f = &rt->q[rt->q_head];
    for (int p = 0; p < f->n; p++)
        if (f->next[p] > rt->pending[p]) rt->pending[p] = f->next[p];
    int64_t t0 = tl_mono_ns();
    int rc = rt->src && rt->src->commit ? rt->src->commit(rt->src->ctx, f->next, f->n) : 0;
    rt->st.commit_ns += tl_mono_ns() - t0;
    observe_latency(&rt->m, &f->ts);
    rt->q_head = (rt->q_head + 1) % TL_RUNTIME_MAX_INFLIGHT;
    rt->q_len--;
    return rc;
}

/* Commits every in-flight batch whose outputs are acknowledged; with block, waits
 * until all are. 0, or -1 when outputs cannot be delivered. */
static int settle(tl_runtime *rt, int block)
{
    uint64_t emitted = 0, acked = UINT64_MAX;
    int64_t t0 = tl_mono_ns();
    if (block || !rt->sink->progress) {
        tl_rc rc;
        while ((rc = rt->sink->flush(rt->sink->ctx, rt->o.flush_timeout_ms)) == TL_RETRY)
            rt->st.flush_retries++;   /* a second signal exits the process (cmd.c) */
        if (rc != TL_OK) return -1;
    } else if (rt->sink->progress(rt->sink->ctx, &emitted, &acked) != TL_OK) {
        return -1;
    }
    rt->st.sink_flush_ns += tl_mono_ns() - t0;
    while (rt->q_len && rt->q[rt->q_head].mark <= acked)
        if (commit_front(rt) != 0) return -1;
    return 0;
}

/* Runs the batch's dead letters and events through the sink and the stages. */
static int run_events(tl_runtime *rt)
{
    tl_batch *b = &rt->batch;
    int64_t t0 = tl_mono_ns();
    uint64_t by_type[TL_EVENT_TYPE_COUNT] = {0};
    for (int i = 0; i < b->n_bad; i++) {
        tl_dlq_record *r = &b->bad[i];
        rt->st.bad[r->reason]++;
        rt->st.bad_total++;
        tl_prom_add(rt->m.dead[r->reason], 1);
        if (rt->m.decode[r->reason]) tl_prom_add(rt->m.decode[r->reason], 1);
        char q[512];
        TL_LOG_WARN("ingest", "dead letter reason=%s partition=%d offset=%" PRId64 " error=%s",
                    tl_dlq_reason_name(r->reason), (int)r->partition, r->offset,
                    tl_log_quote(q, sizeof(q), r->error));
        if (rt->sink->emit_dlq(rt->sink->ctx, r) != TL_OK) return -1;
        note_offset(rt, r->partition, r->offset);
    }
    for (int i = 0; i < b->n; i++) {
        const tl_event *ev = &b->events[i];
        tl_store *s = open_store(rt, ev->partition);
        if (!s) return -1;
        int64_t now = tl_store_observe_ts(s, ev->ts);
        for (int k = 0; k < rt->n_stages; k++) {
            if (!rt->stages[k].advance) continue;
            if (rt->stages[k].advance(rt->stages[k].ctx, s, now, &rt->out_arena, rt->sink) != TL_OK)
                return -1;
            tl_arena_reset(&rt->out_arena);
        }
        tl_user *u = tl_store_get(s, ev->user_id);
        if (!u) return -1;   /* RocksDB cannot be read (logged) */
        for (int k = 0; k < rt->n_stages; k++) {
            tl_rc rc = rt->stages[k].process(rt->stages[k].ctx, s, u, ev, &rt->out_arena, rt->sink);
            if (rc != TL_OK) {
                TL_LOG_ERROR("runtime", "stage %s failed event_id=%s", rt->stages[k].name,
                             ev->event_id);
                return -1;
            }
        }
        tl_arena_reset(&rt->out_arena);
        note_offset(rt, ev->partition, ev->offset);
        if ((unsigned)ev->type < TL_EVENT_TYPE_COUNT) by_type[ev->type]++;
        if (ev->log_ts > 0) tsvec_push(&rt->batch_ts, ev->log_ts);
    }
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++) {
        if (!by_type[t]) continue;
        tl_prom_add(rt->m.events[t], by_type[t]);
    }
    rt->st.events += (uint64_t)b->n;
    rt->st.process_ns += tl_mono_ns() - t0;
    return 0;
}

/* Tells the sink each open partition's stream time (sink.h, stream_time). */
static void tell_stream_times(tl_runtime *rt)
{
    if (!rt->sink->stream_time) return;
    for (int p = 0; p < rt->n_parts; p++)
        if (rt->stores[p])
            rt->sink->stream_time(rt->sink->ctx, p, tl_store_stream_time(rt->stores[p]));
}

/* Processes one batch and queues it as in flight. 0, or -1 on a stage failure. */
static int process_batch(tl_runtime *rt)
{
    if (run_events(rt) != 0) return -1;
    tell_stream_times(rt);
    /* Queue the batch: the mark is the number of records emitted so far. */
    uint64_t emitted = 0, acked = 0;
    if (rt->sink->progress && rt->sink->progress(rt->sink->ctx, &emitted, &acked) != TL_OK)
        return -1;
    struct inflight *f = &rt->q[(rt->q_head + rt->q_len) % TL_RUNTIME_MAX_INFLIGHT];
    rt->q_len++;
    f->mark = emitted;
    f->next = tl_xrealloc(f->next, (size_t)rt->n_parts * sizeof(*f->next));
    f->n = rt->n_parts;
    for (int p = 0; p < rt->n_parts; p++) {
        f->next[p] = rt->batch_next[p];
        rt->batch_next[p] = -1;
    }
    tsvec t = f->ts;
    t.n = 0;
    f->ts = rt->batch_ts;
    rt->batch_ts = t;
    return 0;
}

/* Exactly-once: one transaction per commit interval holds its outputs, the full new
 * state of every user it touched (changelog), and its input offsets. Events are
 * processed as they arrive, in small polls, inside the open transaction, so an event
 * waits for the next commit, not for a whole batch to be collected first. Only once the
 * transaction is committed does the state count: the stores learn the changelog offsets
 * they reflect and are written to RocksDB. An aborted transaction drops the state it
 * changed and the input is read again from the committed offsets. */
#define TL_RUNTIME_EOS_POLL_MS 5
/* Events per poll inside a transaction: small enough that processing one chunk takes
 * milliseconds, so a transaction ends close to commit.interval.ms even with a backlog. */
#define TL_RUNTIME_EOS_CHUNK 2000

/* A transaction's interval counts from when its first event may have arrived, not from
 * when it was read: events that came while the last one was committing and its state
 * written have waited since that began. So commit.interval.ms bounds an event's wait
 * for its commit (as Kafka Streams' interval runs from one commit's start to the next),
 * and a long commit shortens the next transaction instead of adding to its events' wait.
 * It stays open for at least half of the interval, so that slow commits (a large state
 * write) do not shrink transactions to a poll each. */
static int eos_begin(tl_runtime *rt)
{
    if (rt->txn_open) return 0;
    if (rt->sink->begin(rt->sink->ctx) != TL_OK) return -1;
    rt->txn_open = 1;
    rt->txn_events = 0;
    int64_t now = tl_mono_ns(), interval = (int64_t)rt->o.batch_max_ms * 1000000;
    int64_t from = rt->quiet_ns && rt->quiet_ns < now ? rt->quiet_ns : now;
    if (from < now - interval / 2) from = now - interval / 2;
    rt->txn_start_ns = now;
    rt->txn_due_ns = from + interval;
    return 0;
}

static int eos_process(tl_runtime *rt)
{
    if (eos_begin(rt) != 0) return -1;
    rt->txn_events += rt->batch.n + rt->batch.n_bad;
    return run_events(rt);
}

/* Commits the open transaction. On an abort, the state it changed is dropped and
 * rt->rewind is set: the source must be rewound to the committed offsets (at once, or,
 * inside a rebalance callback, when the poll returns). 0 or -1 (fatal). */
/* Each stage told how the transaction ended (tl_stage.txn_end). */
static void stages_txn_end(tl_runtime *rt, int committed)
{
    for (int k = 0; k < rt->n_stages; k++)
        if (rt->stages[k].txn_end) rt->stages[k].txn_end(rt->stages[k].ctx, committed);
}

static int eos_commit(tl_runtime *rt)
{
    const tl_sink *k = rt->sink;
    rt->txn_open = 0;
    int64_t t_state = tl_mono_ns();
    rt->quiet_ns = t_state;
    if (tl_changelog_stage(rt->stores, rt->n_parts, k) != 0) return -1;
    tell_stream_times(rt);
    int64_t *cl = tl_xmalloc((size_t)(rt->n_parts ? rt->n_parts : 1) * sizeof(*cl));
    int64_t t0 = tl_mono_ns();
    tl_rc rc = k->commit(k->ctx, rt->batch_next, rt->n_parts, cl);
    int64_t t1 = tl_mono_ns();
    rt->st.commit_ns += t1 - t0;
    if (rc == TL_OK) {
        for (int p = 0; p < rt->n_parts; p++) {
            if (rt->batch_next[p] >= 0 && rt->batch_next[p] > rt->pending[p])
                rt->pending[p] = rt->batch_next[p];
            rt->batch_next[p] = -1;
        }
        tl_changelog_committed(rt->stores, rt->n_parts, cl);
        free(cl);
        rt->st.batches++;
        tl_prom_add(rt->m.committed, 1);
        tl_prom_observe(rt->m.batch_seconds, (double)(tl_mono_ns() - rt->txn_start_ns) / 1e9);
        observe_latency(&rt->m, &rt->batch_ts);
        tl_health_ok();
        /* Committed: the stores take it now, so their dirty records are only ever those of
         * a transaction still open, which an abort can drop. (Stages' own checkpoints, the
         * model's, still follow state.flush.interval.ms.) */
        int frc = flush_stores_only(rt);
        stages_txn_end(rt, 1);
        int64_t t2 = tl_mono_ns();
        rt->st.state_flush_ns += t2 - t1;
        TL_LOG_DEBUG("runtime",
                     "committed events=%d open_ms=%.1f changelog_ms=%.1f "
                     "commit_ms=%.1f store_ms=%.1f",
                     rt->txn_events, (double)(t_state - rt->txn_start_ns) / 1e6,
                     (double)(t0 - t_state) / 1e6, (double)(t1 - t0) / 1e6,
                     (double)(t2 - t1) / 1e6);
        return frc;
    }
    free(cl);
    if (rc == TL_RETRY && rt->src && rt->src->rewind) {
        /* Aborted (e.g. a rebalance changed the group's generation mid-transaction):
         * forget its changes and read its input again from the committed positions. */
        TL_LOG_WARN("runtime", "transaction aborted; rewinding to the committed offsets");
        for (int p = 0; p < rt->n_parts; p++) {
            if (rt->stores[p]) tl_store_discard_dirty(rt->stores[p]);
            rt->batch_next[p] = -1;
        }
        stages_txn_end(rt, 0);
        tl_prom_add(rt->m.aborted, 1);
        tl_health_failed();
        rt->batch_ts.n = 0;
        rt->rewind = 1;
        return 0;
    }
    return -1;
}

static int eos_rewind(tl_runtime *rt)
{
    rt->rewind = 0;
    tl_batch_reset(&rt->batch);   /* read before the rewind: it comes again */
    return rt->src->rewind(rt->src->ctx);
}

/* The process's memory against its bound (docs/operations.md, "Memory"): its resident
 * size when the first store opened, plus per open store its cache and RocksDB's memory.
 * When the resident size and a margin (a quarter of each cache's budget: what its next
 * batches and RocksDB's next memtable grow into before the caches are next evicted) pass
 * it, the caches give the excess up, evenly: the allocator's free space between records,
 * and anything else the settings do not name, count against them. */
static void bound_memory(tl_runtime *rt)
{
    int64_t now = tl_mono_ns();
    if (now - rt->rss_checked_ns < 10000000) return;   /* at most every 10 ms */
    rt->rss_checked_ns = now;
    size_t rss = tl_resident_bytes(), bound, room;
    int open = 0;
    for (int p = 0; p < rt->n_parts; p++) open += rt->stores[p] != NULL;
    if (!rss || !rt->rss_start || !open) return;
    bound = rt->rss_start + tl_store_rocksdb_bound(open) + (size_t)open * rt->o.cache_bytes;
    room = (size_t)open * (rt->o.cache_bytes / 4);
    size_t over = rss + room > bound ? rss + room - bound : 0, each = over / (size_t)open;
    for (int p = 0; p < rt->n_parts; p++)
        if (rt->stores[p]) tl_store_squeeze(rt->stores[p], each);
    /* said when it starts, when the caches are at half of their budget (the most they
     * give up: past it the bound is not held) and when it ends; at most once a minute,
     * so that a resident size going to and fro across the line does not flood the log
     * (tally_state_cache_budget_bytes follows it) */
    int level = !each ? 0 : each < rt->o.cache_bytes / 2 ? 1 : 2;
    if (level == rt->squeeze_level ||
        (rt->squeeze_logged_ns && now - rt->squeeze_logged_ns < 60 * 1000000000LL))
        return;
    rt->squeeze_level = level;
    rt->squeeze_logged_ns = now;
    if (level == 2)
        TL_LOG_WARN("runtime",
                    "memory over its bound: resident=%zuMiB bound=%zuMiB; the state caches are "
                    "at half of state.cache.mb, the most they give up (docs/operations.md, "
                    "\"Memory\")",
                    rss >> 20, bound >> 20);
    else if (level == 1)
        TL_LOG_INFO("runtime",
                    "memory near its bound: resident=%zuMiB bound=%zuMiB; each state cache gives "
                    "up %.1fMiB of state.cache.mb while it is",
                    rss >> 20, bound >> 20, (double)each / (1 << 20));
    else
        TL_LOG_INFO("runtime", "memory within its bound again: resident=%zuMiB bound=%zuMiB",
                    rss >> 20, bound >> 20);
}

static int over_budget(tl_runtime *rt)
{
    bound_memory(rt);
    for (int p = 0; p < rt->n_parts; p++)
        if (rt->stores[p] && tl_store_over_budget(rt->stores[p])) return 1;
    return 0;
}

/* At most max, and no more events than the stores' caches have room for: an event grows
 * a cache by at most about TL_RUNTIME_EVENT_BYTES (a new user's record), and the caches
 * are written and evicted after the batch (or transaction) that takes one past its
 * budget, so the cache exceeds state.cache.mb by at most a batch of that size. At least
 * TL_RUNTIME_MIN_ROOM events, so that a full cache still makes progress. */
#define TL_RUNTIME_EVENT_BYTES 1024
#define TL_RUNTIME_MIN_ROOM 1000
static int batch_room(const tl_runtime *rt, int max)
{
    int open = 0;
    for (int p = 0; p < rt->n_parts; p++) {
        if (!rt->stores[p]) continue;
        open++;
        size_t room = tl_store_room(rt->stores[p]) / TL_RUNTIME_EVENT_BYTES;
        if (room < TL_RUNTIME_MIN_ROOM) room = TL_RUNTIME_MIN_ROOM;
        if (room < (size_t)max) max = (int)room;
    }
    /* no store open yet (a source that opens them at its first events): its budget is
     * not known, so the first batch is a small one */
    return open || max < TL_RUNTIME_MIN_ROOM ? max : TL_RUNTIME_MIN_ROOM;
}

/* After a batch: commit what is acknowledged; write state when due. */
static int after_batch(tl_runtime *rt)
{
    int block = rt->q_len == TL_RUNTIME_MAX_INFLIGHT;
    int due = tl_mono_ns() - rt->last_state_flush_ns >= (int64_t)rt->o.state_flush_ms * 1000000 ||
        over_budget(rt);
    /* The stores may only be written once every effect they hold is acknowledged. */
    if (settle(rt, block || due) != 0) return -1;
    if (!due) return 0;
    int64_t t0 = tl_mono_ns();
    int rc = flush_stores(rt);
    rt->st.state_flush_ns += tl_mono_ns() - t0;
    return rc;
}

/* The end of a run: everything acknowledged, committed and written. */
static int finish(tl_runtime *rt)
{
    if (settle(rt, 1) != 0) return -1;
    int rc = flush_stores(rt);
    if (rt->o.tick) rt->o.tick(rt->o.tick_arg);
    return rc;
}

/* Every turn of the processing loop: a heartbeat, and about once a second the tick. */
static void loop_turn(tl_runtime *rt)
{
    tl_health_beat();
    int64_t now = tl_mono_ns();
    if (rt->o.tick && now - rt->last_tick_ns >= 1000000000) {
        rt->last_tick_ns = now;
        rt->o.tick(rt->o.tick_arg);
    }
}

static int alo_run(tl_runtime *rt)
{
    const tl_source *src = rt->src;
    for (;;) {
        loop_turn(rt);
        if (rt->stop && *rt->stop) {
            TL_LOG_INFO("runtime", "stopping: committing what is in flight");
            return finish(rt);
        }
        int64_t tp = tl_mono_ns();
        int prc = src->poll(src->ctx, &rt->batch, batch_room(rt, rt->o.batch_max_events),
                            rt->o.batch_max_ms);
        int64_t polled = tl_mono_ns() - tp;
        rt->st.poll_ns += polled;
        TL_LOG_DEBUG("runtime", "polled events=%d bad=%d ms=%.1f", rt->batch.n, rt->batch.n_bad,
                     (double)polled / 1e6);
        if (prc == TL_SRC_ERROR) return -1;
        if (rt->batch.n || rt->batch.n_bad) {
            int64_t t0 = tl_mono_ns();
            if (process_batch(rt) != 0 || after_batch(rt) != 0) {
                TL_LOG_ERROR("runtime",
                             "outputs not delivered; a restart resumes from the last "
                             "committed offsets");
                return -1;
            }
            rt->st.batches++;
            rt->st.busy_ns += tl_mono_ns() - t0;
            tl_prom_observe(rt->m.batch_seconds, (double)(tl_mono_ns() - t0) / 1e9);
        } else if (settle(rt, 0) != 0) {
            return -1;
        }
        if (prc == TL_SRC_EOF) return finish(rt);
    }
}

static int eos_run(tl_runtime *rt)
{
    const tl_source *src = rt->src;
    for (;;) {
        loop_turn(rt);
        int stopping = rt->stop && *rt->stop;
        int prc = TL_SRC_OK;
        if (!stopping) {
            int timeout = TL_RUNTIME_EOS_POLL_MS;
            if (rt->txn_open) {
                int64_t left = (rt->txn_due_ns - tl_mono_ns()) / 1000000;
                if (left < timeout) timeout = left > 0 ? (int)left : 0;
            }
            int max = rt->o.batch_max_events - (rt->txn_open ? rt->txn_events : 0);
            if (max > TL_RUNTIME_EOS_CHUNK) max = TL_RUNTIME_EOS_CHUNK;
            max = batch_room(rt, max);
            int64_t tp = tl_mono_ns();
            prc = src->poll(src->ctx, &rt->batch, max > 0 ? max : 1, timeout);
            int64_t polled = tl_mono_ns();
            rt->st.poll_ns += polled - tp;
            if (!rt->txn_open && !rt->batch.n && !rt->batch.n_bad) rt->quiet_ns = polled;
            if (prc == TL_SRC_ERROR || rt->failed) return -1;
            if (rt->rewind && eos_rewind(rt) != 0) return -1;
        } else {
            tl_batch_reset(&rt->batch);   /* processed already */
        }
        int64_t t0 = tl_mono_ns();
        if ((rt->batch.n || rt->batch.n_bad) && eos_process(rt) != 0) goto failed;
        if (!rt->txn_open && !stopping && rt->o.pending && rt->o.pending(rt->o.pending_arg) &&
            eos_begin(rt) != 0)
            goto failed;
        if (rt->txn_open &&
            (stopping || prc == TL_SRC_EOF || rt->txn_events >= rt->o.batch_max_events ||
             tl_mono_ns() >= rt->txn_due_ns || over_budget(rt))) {
            if (eos_commit(rt) != 0) goto failed;
            if (rt->rewind) {
                if (eos_rewind(rt) != 0) return -1;
                continue;   /* EOF or a stop: the input comes again first */
            }
            if (after_batch(rt) != 0) goto failed;
        }
        rt->st.busy_ns += tl_mono_ns() - t0;
        if (stopping) TL_LOG_INFO("runtime", "stopping: the open transaction is committed");
        if (stopping || prc == TL_SRC_EOF) return finish(rt);
    }
failed:
    TL_LOG_ERROR("runtime",
                 "transaction not committed; a restart resumes from the last committed "
                 "offsets");
    return -1;
}

int tl_runtime_run(tl_runtime *rt, const tl_source *src, volatile sig_atomic_t *stop)
{
    rt->src = src;
    rt->stop = stop;
    if (rt->o.delivery == TL_DELIVERY_AT_LEAST_ONCE) return alo_run(rt);
    if (!rt->sink->begin || !rt->sink->emit_state || !rt->sink->commit) {
        TL_LOG_ERROR("runtime", "exactly_once needs a transactional sink; sink %s has none",
                     rt->sink->name ? rt->sink->name : "?");
        return -1;
    }
    return eos_run(rt);
}
