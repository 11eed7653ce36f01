/*
 * changelog.h -- the user-state changelog: what an exactly-once transaction writes to
 * it, which changelog offset a store reflects, and how a store is brought up to date
 * from it. The records travel by the sink's transactional producer (tl_sink.emit_state)
 * and come back through a reader of the topic (ingest/kafka_changelog.c); this module
 * owns what they mean.
 */
#ifndef TL_CHANGELOG_H
#define TL_CHANGELOG_H

#include "engine/sink.h"
#include "engine/state.h"

#include <stddef.h>
#include <stdint.h>

/* Writing, in the open transaction: each store's users changed since the last call, the
 * full state of each (value empty: the user has none), through sink->emit_state to the
 * changelog partition of the store's input partition. stores[p] NULL: not assigned. 0, or
 * -1 when the sink refused a record. */
int tl_changelog_stage(tl_store *const *stores, int n, const tl_sink *sink);

/* After the commit: changelog_next[p] is the offset after the last record the transaction
 * wrote for partition p (-1: none); store p then reflects the record before it, which
 * its next flush writes with its state. */
void tl_changelog_committed(tl_store *const *stores, int n, const int64_t *changelog_next);

/* Restoring one partition's store: the offset to read from, then every record from there
 * to the end applied in order, then the end. Progress is in the metrics
 * tally_restoring_partitions, tally_restore_records_total and
 * tally_restore_remaining_records, and in the log every 5 s. */
typedef struct tl_changelog_replay {
    tl_store *store;
    int32_t partition;
    int64_t from, end;   /* offsets: the first to apply, the one after the last */
    int64_t applied, t0_ns, reported_ns;
    struct tl_prom_series *restoring, *restored, *remaining;
} tl_changelog_replay;

/* The first changelog offset store needs: the one after the offset it reflects (0 for a
 * new or rebuilt store). */
int64_t tl_changelog_next_offset(const tl_store *store);
/* Starts replaying partition into store over the records [from, end) of the topic (lo:
 * its first kept offset). 1 when there are records to apply (r->from is where to read),
 * 0 when the store is up to date (nothing else to call). */
int tl_changelog_replay_begin(tl_changelog_replay *r, tl_store *store, int32_t partition,
                              int64_t lo, int64_t end);
/* Applies one record (value NULL or len 0: the user has no state) at offset. 0, or -1
 * (logged) when the store cannot write it. */
int tl_changelog_replay_apply(tl_changelog_replay *r, const char *key, size_t key_len,
                              const void *value, size_t len, int64_t offset);
/* Ends the replay; ok 0 when reading failed. 0, or -1 (logged) when the replay or the
 * store's last write failed. */
int tl_changelog_replay_end(tl_changelog_replay *r, int ok);

/* Registers the restore metrics at 0, so that they are shown before any restore. */
void tl_changelog_metrics(void);
/* The gauge of partitions being restored now (tally_restoring_partitions). */
struct tl_prom_series *tl_changelog_restoring(void);
/* The gauge tally_restore_remaining_records of one partition (created at 0): the records
 * its restore has left to apply. */
struct tl_prom_series *tl_changelog_remaining(int32_t partition);

#endif
