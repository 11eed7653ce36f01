/*
 * state.h -- per-user state and the per-partition RocksDB store that keeps it.
 *
 * The state model (docs/interests.md, docs/attribution.md): for every user, the
 * interest entries (dim, dim_id) -> decayed (f, h) at time t, and the journey: the
 * recent touchpoints not yet credited to a purchase (plus, for reading, the last
 * attributions: tl_last_attr). One record per user holds them all:
 * computing an interest delta's rank needs all of the user's entries anyway, so one
 * read (a cache hit, or one RocksDB Get) serves the whole event. The brief's layout of
 * one RocksDB key per (user, dim, dim_id) would need a prefix scan per event instead.
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

#include "event.h"
#include "records.h"
#include "util.h"

typedef struct tl_interest {
    char *id;           /* dim_id, owned */
    uint32_t id_len;
    double f, h;        /* as of t */
    int64_t t;
    uint8_t dim;        /* tl_dim */
} tl_interest;

typedef struct tl_journey_tp {
    char *event_id, *item_id, *category_id, *channel, *campaign;  /* one allocation:
                                                                     * event_id owns it */
    uint32_t len[5];    /* their lengths (0 for NULL), so encoding needs no strlen */
    int64_t ts;
    float share;        /* the category's share of the user's interest weight just before
                         * this touchpoint (a model feature known at that time), or -1 */
    float propensity;   /* the event's propensity, or -1 */
    int32_t dwell_ms;   /* or -1 */
    uint8_t type;       /* tl_event_type */
} tl_journey_tp;

/* The user's last attributions (newest first), for reading (features/profile.h): the
 * attribution stage records each one it emits. */
#define TL_LAST_ATTR_MAX 3          /* attributions kept per user */
#define TL_LAST_ATTR_TEXT_MAX 240   /* bytes of explanation kept (cut at a UTF-8 boundary) */

typedef struct tl_last_attr {
    char *event_id, *item_id, *category_id, *explanation;  /* one allocation: event_id
                                                             * owns it; category_id may
                                                             * be NULL */
    uint32_t len[4];    /* their lengths */
    int64_t ts;         /* the purchase's */
    double p_conversion;   /* the model's p(purchase) of the journey; NaN without a model */
} tl_last_attr;

typedef struct tl_user {
    char *user_id;      /* owned */
    tl_interest *ent;
    int n_ent, cap_ent;
    tl_journey_tp *tp;  /* journey order: (ts, arrival); tp[0..n_tp) */
    int n_tp, cap_tp;   /* cap_tp counts from tp_alloc */
    tl_journey_tp *tp_alloc;  /* the allocation tp points into: dropping the oldest
                               * touchpoints advances tp instead of moving the rest */
    int64_t timer;      /* event time at which the journey expires (0: none); set with
                         * tl_store_set_timer */
    int64_t timer_saved;  /* the timer as the store has it */
    int64_t timer_queued; /* the time of this user's entry in the timer heap (0: none
                           * known); the heap holds one entry per user, not one per
                           * re-arm */
    int64_t labelled;   /* newest touchpoint time already in a closed Markov path
                         * (INT64_MIN: none), so a touchpoint is in one path at most */
    int64_t sampled;    /* event time up to which the user's control moments are learned
                         * (INT64_MIN: none yet; model.c) */
    int64_t first_ts;   /* the time of the user's first event (INT64_MIN: none yet) */
    uint32_t purchases; /* purchases so far: with first_ts and last_purchase, the model's
                         * view of the user's own history (an intent proxy) */
    int64_t last_purchase;  /* the time of the user's last purchase (INT64_MIN: none) */
    tl_last_attr *attr; /* attr[0..n_attr), newest first; room for TL_LAST_ATTR_MAX,
                         * allocated at the user's first attribution */
    int n_attr;
    /* cache bookkeeping (state.c) */
    struct tl_user *hnext, *lru_prev, *lru_next;
    uint64_t hash;
    size_t mem;         /* bytes held, kept current by the editing functions */
    size_t mem_counted; /* the part of mem included in the store's cache total */
    uint8_t dirty;
    uint8_t changed;    /* touched since the last tl_store_take_changed */
    uint8_t staged;     /* its encoding, as taken, is in the store's staged WriteBatch */
} tl_user;

/* Record editing, for the stages. */
tl_interest *tl_user_find_interest(tl_user *u, tl_dim dim, const char *id);
tl_interest *tl_user_add_interest(tl_user *u, tl_dim dim, const char *id);
void tl_user_remove_interest(tl_user *u, int index);
/* Inserts in (ts, arrival) order and returns the slot's index; share as above. */
int tl_user_add_tp(tl_user *u, const tl_event *ev, float share);
void tl_user_remove_tps(tl_user *u, int from, int n);
/* Records an attribution as the newest (the oldest of TL_LAST_ATTR_MAX goes); the
 * explanation is cut to TL_LAST_ATTR_TEXT_MAX bytes. NULL strings but category_id are
 * kept as "". */
void tl_user_add_attribution(tl_user *u, const char *event_id, const char *item_id,
                             const char *category_id, int64_t ts, double p_conversion,
                             const char *explanation);

/* Serialisation (the RocksDB value and, later, the changelog value). */
void tl_user_encode(const tl_user *u, tl_buf *out);
int tl_user_decode(tl_user *u, const void *buf, size_t len);  /* u->user_id set by caller */
void tl_user_clear(tl_user *u);                                /* frees contents */
/* The most bytes tl_user_encode writes for a user whose strings have at most max_string
 * bytes, with at most max_interests entries and max_touchpoints touchpoints: the bound
 * of a changelog record's value, checked against the producer's limit at start. */
size_t tl_user_encoded_bound(size_t max_string, size_t max_interests, size_t max_touchpoints);

typedef struct tl_store tl_store;

typedef struct tl_store_stats {
    uint64_t users_cached, users_loaded, users_created, users_evicted, users_written;
    uint64_t flushes;
    uint64_t quarantined;   /* records that did not decode (tally_state_quarantined_total) */
    size_t cache_bytes;
    size_t timers_queued;   /* timer entries held in memory (the others are read as due) */
} tl_store_stats;

/* RocksDB's memory, for the stores opened from now on (docs/operations.md, "Memory"):
 * each store's memtables (write buffers) are at most 2 x memtable_bytes (one being
 * written, one being flushed), and every store of the process shares one block cache of
 * block_cache_bytes, which also holds the SST files' index and filter blocks, so that
 * table readers do not grow with the data. 0 keeps a setting's default (64 MiB, 32 MiB). */
void tl_store_memory(size_t memtable_bytes, size_t block_cache_bytes);

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
