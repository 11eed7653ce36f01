/*
 * state.h -- the per-partition RocksDB store of user records (the records: user.h).
 *
 * A tl_store is one input partition's state: a RocksDB database in
 * <state.dir>/p<partition>, with an in-memory cache of user records in front of it.
 * Records touched by a batch are marked dirty; tl_store_flush() writes what changed in
 * one sorted WriteBatch together with the next input offset, so the offset stored in
 * RocksDB always matches the state it reflects. Clean records are evicted, least
 * recently used first, when the cache is over its budget.
 *
 * Ownership: tl_store_get() returns a record owned by the store, valid until the next
 * tl_store_flush() or tl_store_close(). Threading: a store belongs to the thread that
 * processes its partition; only tl_store_read_raw() and tl_store_stream_time() may be
 * called from other threads (while the store is open).
 */
#ifndef TL_STATE_H
#define TL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "domain/event.h"
#include "domain/records.h"
#include "domain/user.h"
#include "lib/util.h"

typedef struct tl_store tl_store;

typedef struct tl_store_stats {
    uint64_t users_cached, users_loaded, users_created, users_evicted, users_written;
    uint64_t flushes;
    uint64_t quarantined;   /* records that did not decode (tally_state_quarantined_total) */
    size_t cache_bytes;
    size_t cache_budget;    /* state.cache.mb less what the cache gives up (tl_store_squeeze) */
    size_t timers_queued;   /* timer entries held in memory (the others are read as due) */
} tl_store_stats;

/* RocksDB's memory, for the stores opened from now on (docs/operations.md, "Memory"):
 * each store's memtables (write buffers) are at most 2 x memtable_bytes (one being
 * written, one being flushed), and every store of the process shares one block cache of
 * block_cache_bytes, which also holds the SST files' index and filter blocks, so that
 * table readers do not grow with the data. 0 keeps a setting's default (64 MiB, 32 MiB). */
void tl_store_memory(size_t memtable_bytes, size_t block_cache_bytes);
/* The most RocksDB holds for that many stores by those settings: their memtables and
 * the block cache. */
size_t tl_store_rocksdb_bound(int stores);

/* Opens (creating if needed) <dir>/p<partition>. */
tl_store *tl_store_open(const char *dir, int32_t partition, size_t cache_bytes, char *err,
                        size_t errlen);
void tl_store_close(tl_store *s);        /* does not flush */
int32_t tl_store_partition(const tl_store *s);

/* The user's record, loaded or created; marked dirty. A stored record that does not
 * decode is quarantined (kept under 'q' + user_id, counted in
 * tally_state_quarantined_total, logged with its key) and the user starts afresh. NULL
 * only when RocksDB fails to read (logged): the store is unusable, the caller stops. */
tl_user *tl_store_get(tl_store *s, const char *user_id);
/* Read-only lookup without creating or dirtying: NULL if the user is unknown. */
tl_user *tl_store_peek(tl_store *s, const char *user_id);

/* Writes every dirty record and next_offset in one WriteBatch; evicts clean records
 * past the cache budget. 0, or -1 with err. */
int tl_store_flush(tl_store *s, int64_t next_offset, char *err, size_t errlen);
/* Whether the cache is over its budget: time to flush, so that clean records can be
 * evicted. A record counts at its size now (what it holds, with its allocations'
 * overhead and its arrays' unused capacity). Over the budget also means: the records
 * changed since the last flush hold more than a quarter of it (the next flush encodes
 * them all into one RocksDB write batch). */
int tl_store_over_budget(const tl_store *s);
/* How much the cache may still grow before it is over its budget (0 when it is). */
size_t tl_store_room(const tl_store *s);
/* The process's memory is over its bound by about bytes: the cache gives that much of
 * its budget up (at most half of it) until told otherwise; 0 gives it back. */
void tl_store_squeeze(tl_store *s, size_t bytes);
/* Stream time: the largest event time the partition has seen (persisted with the
 * state). tl_store_observe_ts advances it and returns it (owning thread only).
 * tl_store_stream_time may be called from any thread: the value is a relaxed atomic
 * load of a 64-bit integer that only the owning thread stores, so a reader sees some
 * value the owner wrote (never a torn one), possibly a moment old. */
int64_t tl_store_observe_ts(tl_store *s, int64_t ts);
int64_t tl_store_stream_time(const tl_store *s);

/* The user's record as it is stored in RocksDB (the tl_user_encode bytes), appended to
 * out after clearing it: 1 found, 0 no record, -1 read error (err set). Safe to call
 * from any thread while the owning thread processes events: it does one RocksDB Get
 * and touches nothing else of the store (no cache, timers or buffers). It therefore
 * sees the state as last written to RocksDB, not the batch in progress: with
 * processing.guarantee=exactly_once the stores are written after every committed
 * transaction; with at_least_once every state.flush.interval.ms (or sooner when the
 * cache is over budget). The caller keeps s open for the duration of the call. */
int tl_store_read_raw(tl_store *s, const char *user_id, tl_buf *out, char *err, size_t errlen);

/* Timers in event time, one per user, kept in the store (they survive restarts):
 * set_timer (re)arms u's timer (0 disarms); next_due returns, one at a time, the users
 * whose timer is <= now (loaded and marked dirty, timer still set: the caller handles
 * it and re-arms or disarms), or NULL when none is due, in (time, user id) order. Only
 * the cached users' timers are held in memory; the others are read from the store. */
void tl_store_set_timer(tl_store *s, tl_user *u, int64_t at);
tl_user *tl_store_next_due(tl_store *s, int64_t now);

/* Exactly-once support. Every record reached through tl_store_get since the last call
 * is handed to fn (with its encoded value), in key order, and unmarked: the runtime sends
 * them to the changelog in the open transaction. The encodings are also staged for the
 * next tl_store_flush, which writes them without encoding again (tl_store_discard_dirty
 * drops them). */
int tl_store_take_changed(tl_store *s, int (*fn)(void *arg, const tl_user *u, const tl_buf *value),
                          void *arg);
/* Drops every dirty record from the cache (an aborted transaction's changes): the next
 * access reads the committed state back from RocksDB; the stream time goes back to its
 * value at the last flush. */
void tl_store_discard_dirty(tl_store *s);
/* The changelog offset the store's state will reflect at its next flush (written with it),
 * and the one it reflects now (-1: none). */
void tl_store_set_changelog_offset(tl_store *s, int64_t offset);
int64_t tl_store_changelog_offset(const tl_store *s);
/* Restoring: applies one changelog record (value NULL: the user has no state) straight to
 * RocksDB, with its timer index, at the changelog offset given; records are written in
 * batches, the last with tl_store_restore_done. The cache must hold no record of the user
 * (restore runs right after the store is opened). A record whose encoding this build does
 * not know is quarantined (as tl_store_get does) and the user restored as absent. 0, or -1
 * when RocksDB fails to write. */
int tl_store_restore(tl_store *s, const char *user_id, size_t id_len, const void *value, size_t len,
                     int64_t changelog_offset, char *err, size_t errlen);
int tl_store_restore_done(tl_store *s, char *err, size_t errlen);

/* The next input offset recorded by the last flush, or -1 for a new store. */
int64_t tl_store_next_offset(const tl_store *s);
void tl_store_stats_get(const tl_store *s, tl_store_stats *st);
/* RocksDB's estimates for the store: keys (users and timer index entries), bytes in SST
 * files, and memory (memtables, table readers, block cache). */
void tl_store_rocksdb_stats(tl_store *s, uint64_t *keys, uint64_t *sst_bytes, uint64_t *mem_bytes);

#endif
