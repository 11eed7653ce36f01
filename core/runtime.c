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
 * assignments, like files, on first use) and closed when revoked; both happen
 * between batches, when every store is clean.
 */
#include "runtime.h"
#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_RUNTIME_MAX_INFLIGHT 32

struct tl_runtime {
    tl_runtime_opts o;
    const tl_sink *sink;
    const tl_stage *stages;
    int n_stages;
    tl_store **stores;           /* by partition */
    int64_t *batch_next;         /* per partition: next offset after this batch, -1 = untouched */
    int64_t *pending;            /* per partition: next offset processed, not yet in the store */
    int n_parts;
    int64_t last_state_flush_ns;
    /* Processed batches whose outputs are not all acknowledged yet, oldest first. */
    struct inflight {
        uint64_t mark;           /* sink records emitted up to the end of the batch */
        int64_t *next;           /* per partition: next offset after the batch, or -1 */
        int n;
    } q[TL_RUNTIME_MAX_INFLIGHT];
    int q_head, q_len;
    const tl_source *src;
    volatile sig_atomic_t *stop;
    tl_batch batch;
    tl_arena out_arena;
    tl_runtime_stats st;
};

tl_runtime *tl_runtime_new(const tl_runtime_opts *o, const tl_sink *sink, const tl_stage *stages,
                           int n_stages)
{
    tl_runtime *rt = tl_xcalloc(1, sizeof(*rt));
    rt->o = *o;
    rt->sink = sink;
    rt->stages = stages;
    rt->n_stages = n_stages;
    tl_batch_init(&rt->batch);
    tl_arena_init(&rt->out_arena, 64 * 1024);
    rt->st.started_ns = tl_mono_ns();
    rt->last_state_flush_ns = rt->st.started_ns;
    return rt;
}

void tl_runtime_destroy(tl_runtime *rt)
{
    if (!rt) return;
    for (int p = 0; p < rt->n_parts; p++) tl_store_close(rt->stores[p]);
    free(rt->stores);
    free(rt->batch_next);
    free(rt->pending);
    for (int i = 0; i < TL_RUNTIME_MAX_INFLIGHT; i++) free(rt->q[i].next);
    tl_batch_destroy(&rt->batch);
    tl_arena_destroy(&rt->out_arena);
    free(rt);
}

static void ensure_parts(tl_runtime *rt, int32_t partition)
{
    if (partition < rt->n_parts) return;
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
}

static tl_store *open_store(tl_runtime *rt, int32_t partition)
{
    ensure_parts(rt, partition);
    if (!rt->stores[partition]) {
        char err[512];
        rt->stores[partition] = tl_store_open(rt->o.state_dir, partition, rt->o.cache_bytes, err,
                                              sizeof(err));
        if (!rt->stores[partition]) {
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
        if (rt->stages[k].checkpoint && rt->stages[k].checkpoint(rt->stages[k].ctx) != 0)
            return -1;
    rt->last_state_flush_ns = tl_mono_ns();
    return 0;
}

static int settle(tl_runtime *rt, int block);

void tl_runtime_revoked(tl_runtime *rt, int32_t partition)
{
    if (partition >= rt->n_parts || !rt->stores[partition]) return;
    /* Revocations come between batches. Once every output in flight is acknowledged
     * (and its offsets stored), the store holds no unacknowledged effect and may be
     * written; if anything fails, the next owner replays from the store's older
     * offset. */
    if (settle(rt, 1) == 0) flush_store(rt, partition);
    tl_store_close(rt->stores[partition]);
    rt->stores[partition] = NULL;
    TL_LOG_INFO("runtime", "store closed partition=%d", (int)partition);
}

tl_store *tl_runtime_store(tl_runtime *rt, int32_t partition)
{
    return partition >= 0 && partition < rt->n_parts ? rt->stores[partition] : NULL;
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
        while ((rc = rt->sink->flush(rt->sink->ctx, rt->o.flush_timeout_ms)) == TL_RETRY) {
            rt->st.flush_retries++;
            if (rt->stop && *rt->stop > 1) return -1;   /* a second signal: give up now */
        }
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
    for (int i = 0; i < b->n_bad; i++) {
        tl_dlq_record *r = &b->bad[i];
        rt->st.bad[r->reason]++;
        rt->st.bad_total++;
        TL_LOG_WARN("ingest", "dead letter reason=%s partition=%d offset=%" PRId64 " error=\"%s\"",
                    tl_dlq_reason_name(r->reason), (int)r->partition, r->offset, r->error);
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
    }
    rt->st.events += (uint64_t)b->n;
    rt->st.process_ns += tl_mono_ns() - t0;
    return 0;
}

/* Processes one batch and queues it as in flight. 0, or -1 on a stage failure. */
static int process_batch(tl_runtime *rt)
{
    if (run_events(rt) != 0) return -1;
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
    return 0;
}

typedef struct state_arg {
    const tl_sink *sink;
    int32_t partition;
} state_arg;

static int send_state(void *arg, const tl_user *u, const tl_buf *value)
{
    state_arg *a = arg;
    return a->sink->emit_state(a->sink->ctx, a->partition, u->user_id,
                               value->len ? value->data : NULL, value->len) == TL_OK ? 0 : -1;
}

/* Exactly-once: one transaction per batch holds its outputs, the full new state of every
 * user it touched (changelog), and its input offsets. Only once it is committed does the
 * state count: the stores learn the changelog offsets they reflect, and are written to
 * RocksDB when due. If the transaction fails, the process stops; on restart the
 * partitions are restored from the changelog and resume from the committed offsets. */
static int eos_batch(tl_runtime *rt)
{
    const tl_sink *k = rt->sink;
    if (k->begin(k->ctx) != TL_OK) return -1;
    if (run_events(rt) != 0) return -1;
    for (int p = 0; p < rt->n_parts; p++) {
        if (!rt->stores[p]) continue;
        state_arg a = {k, p};
        if (tl_store_take_changed(rt->stores[p], send_state, &a) != 0) return -1;
    }
    int64_t *cl = tl_xmalloc((size_t)(rt->n_parts ? rt->n_parts : 1) * sizeof(*cl));
    int64_t t0 = tl_mono_ns();
    tl_rc rc = k->commit(k->ctx, rt->batch_next, rt->n_parts, cl);
    rt->st.commit_ns += tl_mono_ns() - t0;
    if (rc == TL_OK) {
        for (int p = 0; p < rt->n_parts; p++) {
            if (rt->batch_next[p] >= 0 && rt->batch_next[p] > rt->pending[p])
                rt->pending[p] = rt->batch_next[p];
            if (cl[p] >= 0 && rt->stores[p]) tl_store_set_changelog_offset(rt->stores[p], cl[p] - 1);
            rt->batch_next[p] = -1;
        }
        free(cl);
        /* Committed: the stores take it now, so their dirty records are only ever those of
         * a transaction still open, which an abort can drop. (Stages' own checkpoints, the
         * model's, still follow state.flush.interval.ms.) */
        return flush_stores_only(rt);
    }
    free(cl);
    if (rc == TL_RETRY && rt->src && rt->src->rewind) {
        /* Aborted (e.g. a rebalance changed the group's generation mid-batch): forget the
         * batch's changes and read its input again from the committed positions. */
        TL_LOG_WARN("runtime", "transaction aborted; rewinding to the committed offsets");
        for (int p = 0; p < rt->n_parts; p++) {
            if (rt->stores[p]) tl_store_discard_dirty(rt->stores[p]);
            rt->batch_next[p] = -1;
        }
        rt->st.aborted++;
        return rt->src->rewind(rt->src->ctx);
    }
    return -1;
}

/* After a batch: commit what is acknowledged; write state when due. */
static int after_batch(tl_runtime *rt)
{
    int block = rt->q_len == TL_RUNTIME_MAX_INFLIGHT;
    int due = tl_mono_ns() - rt->last_state_flush_ns >= (int64_t)rt->o.state_flush_ms * 1000000;
    for (int p = 0; p < rt->n_parts && !due; p++)
        if (rt->stores[p] && tl_store_over_budget(rt->stores[p])) due = 1;
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
    return flush_stores(rt);
}

int tl_runtime_run(tl_runtime *rt, const tl_source *src, volatile sig_atomic_t *stop)
{
    rt->src = src;
    rt->stop = stop;
    for (;;) {
        if (stop && *stop) {
            TL_LOG_INFO("runtime", "stopping: committing what is in flight");
            return finish(rt);
        }
        int64_t tp = tl_mono_ns();
        int prc = src->poll(src->ctx, &rt->batch, rt->o.batch_max_events, rt->o.batch_max_ms);
        int64_t polled = tl_mono_ns() - tp;
        rt->st.poll_ns += polled;
        TL_LOG_DEBUG("runtime", "polled events=%d bad=%d ms=%.1f", rt->batch.n, rt->batch.n_bad,
                     (double)polled / 1e6);
        if (prc == TL_SRC_ERROR) return -1;
        if (rt->batch.n || rt->batch.n_bad) {
            int64_t t0 = tl_mono_ns();
            int failed = rt->sink->begin ? eos_batch(rt) != 0 : process_batch(rt) != 0;
            if (failed || after_batch(rt) != 0) {
                TL_LOG_ERROR("runtime", "outputs not delivered; a restart resumes from the last "
                                        "committed offsets");
                return -1;
            }
            rt->st.batches++;
            rt->st.busy_ns += tl_mono_ns() - t0;
        } else if (settle(rt, 0) != 0) {
            return -1;
        }
        if (prc == TL_SRC_EOF) return finish(rt);
    }
}
