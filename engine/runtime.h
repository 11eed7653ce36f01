/*
 * runtime.h -- the processing loop shared by `run` (Kafka), `replay` (files), `demo`
 * and the benchmarks.
 *
 * Per batch: poll the source -> dead-letter its bad records -> run every event through
 * the stages in order, on the user's state record -> flush the sink (every output
 * acknowledged) -> every state_flush_ms, or when a store's cache is over budget, write
 * the stores with the next input offset they reflect -> commit the source. A crash
 * replays from the stores' offsets (at-least-once): the state written to RocksDB
 * always carries the offset it reflects, and a partition is resumed from that offset,
 * so state is never applied twice. Writing state every few seconds rather than every
 * batch lets a user's many events in that time cost one write.
 *
 * A stage is a struct of callbacks. Stages see events in partition order; each user's
 * events arrive in the order the source delivers them.
 *
 * Threading: one thread runs the loop, the stages, the sink's emit and flush, and the
 * source's callbacks (librdkafka serves rebalances from the poll). The stop flag may
 * be set from a signal handler.
 */
#ifndef TL_RUNTIME_H
#define TL_RUNTIME_H

#include <signal.h>
#include <stdint.h>

#include "lib/arena.h"
#include "sink.h"
#include "source.h"
#include "state.h"

typedef struct tl_stage {
    const char *name;
    void *ctx;
    /* Processes ev for user u (a record of store s); output strings go in a (reset after
     * each event). */
    tl_rc (*process)(void *ctx, tl_store *s, tl_user *u, const tl_event *ev, tl_arena *a,
                     const tl_sink *out);
    /* Optional: called before each event with its partition's store and stream time
     * (the largest event time the partition has seen, this event's included), so the
     * stage can act on timers that are due (tl_store_next_due). */
    tl_rc (*advance)(void *ctx, tl_store *s, int64_t stream_time, tl_arena *a, const tl_sink *out);
    /* Optional: called after the stores were written, so state the stage keeps outside
     * them (a model) is saved at the same point. 0 or -1. */
    int (*checkpoint)(void *ctx);
    /* Optional, exactly_once: called after each transaction is committed (committed 1) or
     * aborted (0). State the stage keeps outside the stores must leave an aborted
     * transaction as the last committed one left it: its events are processed again. */
    void (*txn_end)(void *ctx, int committed);
    void (*destroy)(void *ctx);
} tl_stage;

/* processing.guarantee. at_least_once: outputs are acknowledged before the source's
 * offsets are committed (the sink's progress()). exactly_once: each batch is a
 * transaction of the sink's (begin(), emit_state(), commit() with the offsets), so the
 * sink must have them. */
typedef enum tl_delivery {
    TL_DELIVERY_AT_LEAST_ONCE = 0,
    TL_DELIVERY_EXACTLY_ONCE
} tl_delivery;

typedef struct tl_runtime_opts {
    tl_delivery delivery;
    const char *state_dir;
    size_t cache_bytes;          /* per store */
    size_t memtable_bytes; /* per store, RocksDB's write buffer (tl_store_memory; 0: default) */
    size_t block_cache_bytes; /* shared by the stores (tl_store_memory; 0: default) */
    int batch_max_events;
    int batch_max_ms;
    int flush_timeout_ms;
    int state_flush_ms; /* write state at most this often (and when over budget) */
    /* Exactly-once: called when a partition is assigned, after its store is opened, to
     * bring it up to date from the changelog. NULL: no changelog (at-least-once). */
    int (*restore)(void *arg, tl_store *s, int32_t partition);
    void *restore_arg;
    /* Optional: called on the processing thread about once a second (and at the end),
     * to publish statistics (app/observe.c). */
    void (*tick)(void *arg);
    void *tick_arg;
    /* Optional, exactly_once: nonzero when outputs that go out with a transaction are
     * waiting (the model feeds' dead letters) while none is open, as when no input comes:
     * the runtime then opens one without input, committed at commit.interval.ms. */
    int (*pending)(void *arg);
    void *pending_arg;
} tl_runtime_opts;

typedef struct tl_runtime_stats {
    uint64_t events, batches, bad[TL_DLQ_REASON_COUNT], bad_total;
    uint64_t flush_retries;
    int64_t started_ns, busy_ns;
    int64_t poll_ns, process_ns, sink_flush_ns, state_flush_ns, commit_ns; /* time spent */
} tl_runtime_stats;

typedef struct tl_runtime tl_runtime;

/* Borrows sink and stages (the caller destroys them after tl_runtime_destroy). */
tl_runtime *tl_runtime_new(const tl_runtime_opts *o, const tl_sink *sink, const tl_stage *stages,
                           int n_stages);
void tl_runtime_destroy(tl_runtime *rt); /* closes stores (they are clean) */

/* From any thread: looks user_id up in the stores of the partitions this instance owns
 * (RocksDB, so the last state written: after every committed transaction with
 * exactly_once, every state.flush.interval.ms with at_least_once). Returns 1 (out = the
 * encoded record, *partition and *stream_time set), 0 (not found) or -1 (err). When
 * not found, owned holds the owned partitions (up to max_owned; *n_owned of them). */
int tl_runtime_read_user(tl_runtime *rt, const char *user_id, tl_buf *out, int32_t *partition,
                         int64_t *stream_time, int32_t *owned, int max_owned, int *n_owned,
                         char *err, size_t errlen);

/* Partition ownership, told by a group's source through its tl_partition_listener
 * (engine/source.h), which tl_runtime_partition_listener() points here.
 * assigned: opens the partition's store and returns in *next_offset the offset to
 * resume from (-1: the store has none; use the committed offset). 0 or -1.
 * revoked: commits what the partition has in flight and closes its store. */
int tl_runtime_assigned(tl_runtime *rt, int32_t partition, int64_t *next_offset);
void tl_runtime_revoked(tl_runtime *rt, int32_t partition);
tl_partition_listener tl_runtime_partition_listener(tl_runtime *rt);

/* Runs until the source reports EOF, *stop becomes non-zero (the current batch is
 * finished and committed first), or a fatal error. 0 on a clean end, -1 on error
 * (also when exactly_once is asked of a sink without transactions). */
int tl_runtime_run(tl_runtime *rt, const tl_source *src, volatile sig_atomic_t *stop);

const tl_runtime_stats *tl_runtime_stats_get(const tl_runtime *rt);
/* The store of a partition, if open (for summaries and queries). */
tl_store *tl_runtime_store(tl_runtime *rt, int32_t partition);

#endif
