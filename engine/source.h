/*
 * source.h -- where events come from: Kafka (ingest/kafka_source.c), a file
 * (ingest/file_source.c: canonical CSV, Taobao CSV, JSON lines), the synthetic
 * generator (ingest/gen.c), or memory (tests).
 *
 * A source fills a tl_batch. Events' strings live in the batch's arena. Records that
 * cannot become events (undecodable, invalid) are returned in batch->bad with the
 * reason; the runtime sends them to the dead-letter sink and counts them. commit()
 * is called once the outputs of the input up to the given offsets are durable; only
 * then may the source acknowledge it (store Kafka offsets). That may be several
 * batches later: the runtime keeps processing while outputs are in flight.
 * Threading: one thread calls a source.
 */
#ifndef TL_SOURCE_H
#define TL_SOURCE_H

#include "domain/event.h"
#include "lib/arena.h"
#include "domain/records.h"

typedef struct tl_batch {
    tl_event *events;
    int n, cap;
    tl_dlq_record *bad;      /* strings and payload copies in arena */
    int n_bad, cap_bad;
    tl_arena arena;
} tl_batch;

void tl_batch_init(tl_batch *b);
void tl_batch_reset(tl_batch *b);          /* empties it, keeps memory */
tl_event *tl_batch_push(tl_batch *b);      /* a zeroed slot at the end */
tl_dlq_record *tl_batch_push_bad(tl_batch *b);
void tl_batch_destroy(tl_batch *b);

/* Who is told when a source that belongs to a group gains or loses a partition (the
 * Kafka source calls it from its rebalances, on the processing thread, between
 * batches). The application points it at the runtime (tl_runtime_assigned and
 * tl_runtime_revoked), which opens and closes the partition's state.
 *   assigned: 0 and, in *next_offset, the offset to resume from (-1: none; the group's
 *             committed offset then), or -1 when the partition cannot be taken (its
 *             state cannot be opened): the source then stops with an error.
 *   revoked:  the partition is gone; the events of it not yet returned by poll() were
 *             dropped by the source (the partition's next owner reads them again). */
typedef struct tl_partition_listener {
    int (*assigned)(void *arg, int32_t partition, int64_t *next_offset);
    void (*revoked)(void *arg, int32_t partition);
    void *arg;
} tl_partition_listener;

/* poll() results */
enum {
    TL_SRC_OK = 0,
    TL_SRC_EOF = 1,
    TL_SRC_ERROR = -1
};

typedef struct tl_source {
    const char *name;
    void *ctx;
    /* Resets b and fills it with at most max events (or bad records). Returns
     * TL_SRC_OK (possibly with an empty batch when timeout_ms passed with nothing
     * to read), TL_SRC_EOF when a finite input is exhausted (b may still hold the
     * last events), TL_SRC_ERROR on a fatal error (message logged). */
    int (*poll)(void *ctx, tl_batch *b, int max, int timeout_ms);
    /* The outputs caused by input up to these offsets are durable: acknowledge it.
     * next[p] is the next offset to read in partition p, or -1 for a partition with
     * nothing to acknowledge; n is the length of next. 0 or -1. May be NULL for
     * sources with nothing to acknowledge (files). */
    int (*commit)(void *ctx, const int64_t *next, int n);
    /* Optional (exactly-once): go back to the last committed positions of every assigned
     * partition, after a transaction was aborted. 0 or -1. */
    int (*rewind)(void *ctx);
    void (*destroy)(void *ctx);
} tl_source;

/* s->destroy(s->ctx); NULL is a no-op. */
void tl_source_destroy(tl_source *s);

#endif
