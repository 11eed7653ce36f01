/*
 * state.c -- the per-partition store of user records (state.h): cache, timers, writes,
 * exactly-once staging and restore. The records themselves and their encoding: user.c.
 *
 * Cache: a chained hash table of tl_user keyed by user_id (FNV-1a), grown at load
 * factor 1, plus an LRU list (head = most recent). Every record reached through
 * tl_store_get() is dirty until the next flush; eviction only ever removes clean
 * records, so a batch's state is never lost before it is written.
 *
 * RocksDB layout of a partition's database: "u" + user_id -> the encoded record;
 * "x" + be64(at) + user_id -> "" (the user's timer, so that due timers are found
 * without holding every user's in memory: only the cached users' are in the timer heap,
 * the others are read from these keys as they fall due); "m:next_offset", "m:stream_time" -> svarint. A flush writes every dirty record in one WriteBatch,
 * keys sorted (under exactly_once the records taken for the changelog come first, staged
 * in key order when they were encoded, then any others). Rejected: one key per journey touchpoint. It writes fewer bytes per
 * event but three memtable inserts instead of one, and the skip-list insert, not the
 * copy, is what costs (measured with bench/bench_engine: 230K vs 310K events/s).
 */
#include "state.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"
#include "lib/wire.h"

#include <rocksdb/c.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the store ----------------------------------------------------------------- */

struct tl_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *path;
    int32_t partition;
    tl_user **table;
    size_t nbuckets, count;
    tl_user *lru_head, *lru_tail;
    tl_user **dirty;
    size_t n_dirty, cap_dirty;
    tl_user **changed;           /* records touched since the last take_changed */
    size_t n_changed, cap_changed;
    int64_t changelog_offset, changelog_pending;
    /* The records take_changed encoded for the changelog, put in a WriteBatch as they
     * were encoded: the flush after the commit writes them without encoding again. */
    rocksdb_writebatch_t *staged;
    /* restore in progress: records buffered, written sorted by key (restore_commit) */
    tl_buf restore_bytes;
    struct restore_entry *restore_ents;
    int restore_cap;
    rocksdb_writeoptions_t *restore_wopts;   /* no WAL: restore_done flushes instead */
    int restore_unlogged;               /* restored writes not flushed to SST files yet */
    int64_t restore_offset;
    int restore_n;
    size_t cache_bytes, cache_budget;
    size_t squeeze; /* given up to memory outside the cache (tl_store_squeeze) */
    int64_t next_offset;
    /* Stored only by the owning thread, read by any (tl_store_stream_time): relaxed
     * atomic accesses, plain 64-bit moves on the targets tally runs on. */
    _Atomic int64_t stream_time;
    int64_t stream_time_saved;          /* as of the last flush: an abort goes back to it */
    /* timers: a min-heap of (at, user_id); entries whose user's timer has moved are
     * skipped when they surface */
    struct timer_ent {
        int64_t at;
        char *user_id;
    } *heap;
    size_t n_heap, cap_heap;
    /* Timers of records not in the cache are read from the store's timer keys ('x' +
     * time + user id, written with the records), in key order, from a cursor: the last
     * key handed out (disk_id NULL: none yet). disk_next is the time of the first key
     * after it (INT64_MAX: none), found again after every write. The heap then needs
     * entries only for the cached records (tl_store_flush drops the rest). */
    int64_t disk_at, disk_next;
    char *disk_id;
    tl_buf kbuf, vbuf;
    tl_store_stats st;
};

static void heap_push(tl_store *s, int64_t at, const char *user_id);
static void disk_refresh(tl_store *s);
static tl_prom_series *quarantined_counter(void);

static void lru_unlink(tl_store *s, tl_user *u)
{
    if (u->lru_prev) u->lru_prev->lru_next = u->lru_next;
    else s->lru_head = u->lru_next;
    if (u->lru_next) u->lru_next->lru_prev = u->lru_prev;
    else s->lru_tail = u->lru_prev;
    u->lru_prev = u->lru_next = NULL;
}

static void lru_push_front(tl_store *s, tl_user *u)
{
    u->lru_prev = NULL;
    u->lru_next = s->lru_head;
    if (s->lru_head) s->lru_head->lru_prev = u;
    s->lru_head = u;
    if (!s->lru_tail) s->lru_tail = u;
}

static void table_grow(tl_store *s)
{
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
    tl_user **t = tl_xcalloc(nb, sizeof(*t));
    for (size_t i = 0; i < s->nbuckets; i++) {
        tl_user *u = s->table[i];
        while (u) {
            tl_user *next = u->hnext;
            u->hnext = t[u->hash & (nb - 1)];
            t[u->hash & (nb - 1)] = u;
            u = next;
        }
    }
    free(s->table);
    s->table = t;
    s->nbuckets = nb;
}

static tl_user *table_find(tl_store *s, const char *user_id, uint64_t h)
{
    if (!s->nbuckets) return NULL;
    for (tl_user *u = s->table[h & (s->nbuckets - 1)]; u; u = u->hnext)
        if (u->hash == h && strcmp(u->user_id, user_id) == 0) return u;
    return NULL;
}

static void table_remove(tl_store *s, tl_user *u)
{
    tl_user **pp = &s->table[u->hash & (s->nbuckets - 1)];
    while (*pp != u) pp = &(*pp)->hnext;
    *pp = u->hnext;
    s->count--;
}

static void user_free(tl_user *u)
{
    tl_user_clear(u);
    free(u->user_id);
    free(u);
}

static size_t memtable_bytes = (size_t)64 << 20, block_cache_bytes = (size_t)32 << 20;
static rocksdb_cache_t *block_cache;   /* shared by the stores; lives as long as the process */
static size_t block_cache_made;        /* the size it was made with */
static pthread_mutex_t block_cache_lock = PTHREAD_MUTEX_INITIALIZER;

void tl_store_memory(size_t memtable, size_t cache)
{
    pthread_mutex_lock(&block_cache_lock);
    if (memtable) memtable_bytes = memtable;
    if (cache) block_cache_bytes = cache;
    pthread_mutex_unlock(&block_cache_lock);
}

size_t tl_store_rocksdb_bound(int stores)
{
    pthread_mutex_lock(&block_cache_lock);
    size_t n = (size_t)stores * 2 * memtable_bytes + block_cache_bytes;
    pthread_mutex_unlock(&block_cache_lock);
    return n;
}

/* Sets the shared block cache in topts, made (again) when its size was changed: the
 * options take their own reference, so the stores opened with an earlier one keep it
 * while the process lets go of its own. */
static void set_shared_block_cache(rocksdb_block_based_table_options_t *topts)
{
    pthread_mutex_lock(&block_cache_lock);
    if (!block_cache || block_cache_made != block_cache_bytes) {
        if (block_cache) rocksdb_cache_destroy(block_cache);
        block_cache = rocksdb_cache_create_lru(block_cache_bytes);
        block_cache_made = block_cache_bytes;
    }
    rocksdb_block_based_options_set_block_cache(topts, block_cache);
    pthread_mutex_unlock(&block_cache_lock);
}

tl_store *tl_store_open(const char *dir, int32_t partition, size_t cache_bytes, char *err,
                        size_t errlen)
{
    tl_store *s = tl_xcalloc(1, sizeof(*s));
    char *rerr = NULL;
    (void)quarantined_counter();   /* shown at 0 from the start */
    s->partition = partition;
    s->cache_budget = cache_bytes;
    s->next_offset = -1;
    s->changelog_offset = s->changelog_pending = -1;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state.dir %s: %s", dir, strerror(errno));
        goto fail;
    }
    size_t plen = strlen(dir) + 32;
    s->path = tl_xmalloc(plen);
    snprintf(s->path, plen, "%s/p%d", dir, (int)partition);

    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    /* Levels 0 and 1 uncompressed, lz4 below (RocksDB's tuning guide): a flushed memtable
     * is rewritten by the next compactions soon, so compressing it at the flush was work
     * done twice (7% of bench_engine's CPU, all in flushes); what stays, in the lower
     * levels, is compressed once it gets there. */
    int per_level[7] = {rocksdb_no_compression, rocksdb_no_compression};
    for (int l = 2; l < 7; l++) per_level[l] = rocksdb_lz4_compression;
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_compression_per_level(s->opts, per_level, 7);
    rocksdb_options_set_max_open_files(s->opts, 256);
    pthread_mutex_lock(&block_cache_lock);
    size_t wb = memtable_bytes;
    pthread_mutex_unlock(&block_cache_lock);
    rocksdb_options_set_write_buffer_size(s->opts, wb);
    rocksdb_options_set_max_write_buffer_number(s->opts, 2);
    rocksdb_options_set_db_write_buffer_size(s->opts, 2 * wb);
    rocksdb_options_set_max_background_jobs(s->opts, 2);
    /* Most lookups are of users the store has never seen: bloom filters answer those
     * without touching the memtable's skip list or an SST block. */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
    s->topts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(s->topts,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_whole_key_filtering(s->topts, 1);
    set_shared_block_cache(s->topts);
    /* index and filter blocks in the cache (bounded), the level-0 ones pinned: else every
     * open SST file's filter and index stay in memory, growing with the users */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->topts, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->topts, 1);
    rocksdb_options_set_block_based_table_factory(s->opts, s->topts);
    s->wopts = rocksdb_writeoptions_create();
    /* The write-ahead log stays on (not synced): a flush happens every few seconds, and
     * without the log a killed process would lose everything since RocksDB last wrote a
     * memtable to disk, so a restart would replay the whole changelog instead of its
     * tail (measured: every restart restored from offset 0). */
    s->ropts = rocksdb_readoptions_create();
    s->db = rocksdb_open(s->opts, s->path, &rerr);
    if (rerr) {
        snprintf(err, errlen, "cannot open state store %s: %s", s->path, rerr);
        free(rerr);
        goto fail;
    }
    size_t vlen = 0;
    char *v = rocksdb_get(s->db, s->ropts, "m:next_offset", 13, &vlen, &rerr);
    if (rerr) {
        snprintf(err, errlen, "cannot read state store %s: %s", s->path, rerr);
        free(rerr);
        goto fail;
    }
    if (v) {
        tl_wire_rd r = {(unsigned char *)v, (unsigned char *)v + vlen, 0};
        s->next_offset = tl_wire_svarint(&r);
        free(v);
    }
    v = rocksdb_get(s->db, s->ropts, "m:changelog", 11, &vlen, &rerr);
    if (!rerr && v) {
        tl_wire_rd r = {(unsigned char *)v, (unsigned char *)v + vlen, 0};
        s->changelog_offset = s->changelog_pending = tl_wire_svarint(&r);
        free(v);
    }
    free(rerr);
    rerr = NULL;
    v = rocksdb_get(s->db, s->ropts, "m:stream_time", 13, &vlen, &rerr);
    if (!rerr && v) {
        tl_wire_rd r = {(unsigned char *)v, (unsigned char *)v + vlen, 0};
        atomic_store_explicit(&s->stream_time, tl_wire_svarint(&r), memory_order_relaxed);
        s->stream_time_saved = tl_store_stream_time(s);
        free(v);
    }
    free(rerr);
    /* Timers: read from their keys as they come due (disk_refresh), none in memory. */
    disk_refresh(s);
    table_grow(s);
    return s;
fail:
    tl_store_close(s);
    return NULL;
}

void tl_store_close(tl_store *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        tl_user *u = s->table[i];
        while (u) {
            tl_user *next = u->hnext;
            user_free(u);
            u = next;
        }
    }
    free(s->table);
    free(s->dirty);
    free(s->changed);
    if (s->staged) rocksdb_writebatch_destroy(s->staged);
    tl_buf_free(&s->restore_bytes);
    free(s->restore_ents);
    if (s->restore_wopts) rocksdb_writeoptions_destroy(s->restore_wopts);
    for (size_t i = 0; i < s->n_heap; i++) free(s->heap[i].user_id);
    free(s->heap);
    free(s->disk_id);
    if (s->db) rocksdb_close(s->db);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->topts) rocksdb_block_based_options_destroy(s->topts);
    if (s->wopts) rocksdb_writeoptions_destroy(s->wopts);
    if (s->ropts) rocksdb_readoptions_destroy(s->ropts);
    tl_buf_free(&s->kbuf);
    tl_buf_free(&s->vbuf);
    free(s->path);
    free(s);
}

int32_t tl_store_partition(const tl_store *s) { return s->partition; }

/* ---- timers ------------------------------------------------------------------- */

/* Heap order: time, then user id, so users due at the same time come out in the same
 * order whatever the history of the heap (eviction, restarts): the model learns in a
 * reproducible order. */
static int heap_less(const struct timer_ent *a, int64_t at, const char *id)
{
    return a->at < at || (a->at == at && strcmp(a->user_id, id) < 0);
}

static void heap_push(tl_store *s, int64_t at, const char *user_id)
{
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
        s->heap = tl_xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
    }
    size_t i = s->n_heap++;
    while (i > 0 && !heap_less(&s->heap[(i - 1) / 2], at, user_id)) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i].at = at;
    s->heap[i].user_id = tl_xstrdup(user_id);
}

/* Puts x at slot i of the heap's first n entries, moving it down past smaller children. */
static void sift_down(tl_store *s, size_t i, struct timer_ent x, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&s->heap[c + 1], s->heap[c].at, s->heap[c].user_id)) c++;
        if (heap_less(&x, s->heap[c].at, s->heap[c].user_id)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = x;
}

static void heap_pop(tl_store *s)
{
    free(s->heap[0].user_id);
    struct timer_ent last = s->heap[--s->n_heap];
    if (s->n_heap) sift_down(s, 0, last, s->n_heap);
}

static void key_timer(tl_buf *k, int64_t at, const char *user_id)
{
    tl_buf_clear(k);
    tl_buf_putc(k, 'x');
    tl_buf_reserve(k, 8);
    for (int i = 7; i >= 0; i--) k->data[k->len++] = (char)((uint64_t)at >> (8 * i));
    k->data[k->len] = '\0';
    tl_buf_puts(k, user_id);
}

/* The heap keeps at most one entry per user in the cache: re-arming a timer later (every
 * touch event does) pushes nothing; the entry is moved when it surfaces. An entry never
 * comes out later than the timer it stands for. */
void tl_store_set_timer(tl_store *s, tl_user *u, int64_t at)
{
    u->timer = at;
    if (at && (u->timer_queued == 0 || at < u->timer_queued)) {
        heap_push(s, at, u->user_id);
        u->timer_queued = at;
    }
}

/* The timer key after the cursor: its time and user id (in s->vbuf), 1; 0 when none.
 * Leaves disk_next at that key's time (INT64_MAX when none). */
static int disk_peek(tl_store *s, int64_t *at)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropts);
    if (s->disk_id) {   /* the successor of the cursor's key: the key, then a 0 byte */
        key_timer(&s->kbuf, s->disk_at, s->disk_id);
        tl_buf_putc(&s->kbuf, '\0');
        rocksdb_iter_seek(it, s->kbuf.data, s->kbuf.len);
    } else {
        rocksdb_iter_seek(it, "x", 1);
    }
    int found = 0;
    s->disk_next = INT64_MAX;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen >= 9 && k[0] == 'x') {
            int64_t t = 0;
            for (int i = 1; i <= 8; i++) t = (int64_t)((uint64_t)t << 8 | (unsigned char)k[i]);
            tl_buf_clear(&s->vbuf);
            tl_buf_append(&s->vbuf, k + 9, klen - 9);
            s->disk_next = *at = t;
            found = 1;
        }
    }
    rocksdb_iter_destroy(it);
    return found;
}

static void disk_refresh(tl_store *s)
{
    int64_t at;
    disk_peek(s, &at);
}

tl_user *tl_store_next_due(tl_store *s, int64_t now)
{
    for (;;) {
        int from_heap = s->n_heap && s->heap[0].at <= now;
        int64_t at;
        if (s->disk_next <= now && disk_peek(s, &at) && at <= now &&
            (!from_heap || !heap_less(&s->heap[0], at, s->vbuf.data))) {
            /* The next timer in (time, user id) order is a stored one: the cursor moves
             * past it; due only if it is still its record's timer (a record rewritten
             * since may have moved it, or the cached record may hold another). */
            free(s->disk_id);
            s->disk_id = tl_xstrdup(s->vbuf.data);
            s->disk_at = at;
            disk_refresh(s);
            tl_user *u = tl_store_peek(s, s->disk_id);
            if (!u || u->timer != at) continue;
            return tl_store_get(s, u->user_id);
        }
        if (!from_heap) return NULL;
        at = s->heap[0].at;
        tl_user *u = tl_store_peek(s, s->heap[0].user_id);
        heap_pop(s);
        if (!u) continue; /* the user is gone */
        if (u->timer_queued == at) u->timer_queued = 0; /* its entry is out now */
        if (u->timer == 0) continue; /* disarmed */
        if (u->timer != at) {
            /* The timer moved since this entry was queued: queue it at its time (also
             * when that is already due), so a user always comes out by an entry at
             * exactly its timer, in (time, user id) order. */
            if (u->timer_queued != u->timer) {
                heap_push(s, u->timer, u->user_id);
                u->timer_queued = u->timer;
            }
            continue;
        }
        return tl_store_get(s, u->user_id); /* due; marks it dirty */
    }
}

int64_t tl_store_observe_ts(tl_store *s, int64_t ts)
{
    /* No read-modify-write needed: this thread is the only writer. */
    int64_t now = atomic_load_explicit(&s->stream_time, memory_order_relaxed);
    if (ts <= now) return now;
    atomic_store_explicit(&s->stream_time, ts, memory_order_relaxed);
    return ts;
}

int64_t tl_store_stream_time(const tl_store *s)
{
    return atomic_load_explicit(&s->stream_time, memory_order_relaxed);
}

int64_t tl_store_next_offset(const tl_store *s) { return s->next_offset; }

static void key_profile(tl_buf *k, const char *user_id)
{
    tl_buf_clear(k);
    tl_buf_putc(k, 'u');
    tl_buf_puts(k, user_id);
}

/* A stored record that cannot be used: moved to 'q' + user_id (the last one of a user is
 * kept; with stored, the 'u' key it was read from is deleted in the same write), counted
 * and logged with its key; the caller starts the user afresh. */
static tl_prom_series *quarantined_counter(void)
{
    return tl_prom_counter("tally_state_quarantined_total",
                           "Stored or restored user records that did not decode: kept aside "
                           "under a q-prefixed key, the user started afresh.",
                           NULL);
}

static void quarantine(tl_store *s, const char *user_id, size_t id_len, const void *value,
                       size_t len, const char *why, int stored)
{
    tl_prom_add(quarantined_counter(), 1);
    s->st.quarantined++;
    tl_buf k = {0};
    tl_buf_putc(&k, 'q');
    tl_buf_append(&k, user_id, id_len);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put(wb, k.data, k.len, value, len);
    if (stored) {
        k.data[0] = 'u';
        rocksdb_writebatch_delete(wb, k.data, k.len);
    }
    char *rerr = NULL;
    rocksdb_write(s->db, s->wopts, wb, &rerr);
    rocksdb_writebatch_destroy(wb);
    tl_buf_free(&k);
    char q[512], e[256];
    char *id = tl_xstrndup(user_id, id_len); /* a changelog key is not NUL-terminated */
    TL_LOG_ERROR("state", "quarantined record store=%s user_id=%s bytes=%zu reason=%s%s%s", s->path,
                 tl_log_quote(q, sizeof(q), id), len, why, rerr ? " keep_failed=" : "",
                 rerr ? tl_log_quote(e, sizeof(e), rerr) : "");
    free(id);
    free(rerr);
}

static tl_user *store_load(tl_store *s, const char *user_id, uint64_t h, int create)
{
    key_profile(&s->kbuf, user_id);
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(s->db, s->ropts, s->kbuf.data, s->kbuf.len, &vlen, &rerr);
    if (rerr) {
        char q[512];
        TL_LOG_ERROR("state", "read failed store=%s error=%s", s->path,
                     tl_log_quote(q, sizeof(q), rerr));
        free(rerr);
        return NULL;
    }
    if (!v && !create) return NULL;
    tl_user *u = tl_xcalloc(1, sizeof(*u));
    u->user_id = tl_xstrdup(user_id);
    u->labelled = u->sampled = u->first_ts = u->last_purchase = u->intent_ts = INT64_MIN;
    u->hash = h;
    u->mem = tl_user_base_mem(user_id);
    if (v) {
        if (tl_user_decode(u, v, vlen) != 0) {
            /* Not this build's encoding of a user, or damaged: keep the bytes aside and
             * start the user afresh rather than stop on every restart. */
            quarantine(s, user_id, strlen(user_id), v, vlen, "does_not_decode", 1);
            tl_user_clear(u);
            free(v);
            if (!create) {
                free(u->user_id);
                free(u);
                return NULL;
            }
            u->timer = u->timer_saved = 0;
            u->labelled = u->sampled = u->first_ts = u->last_purchase = u->intent_ts = INT64_MIN;
            u->purchases = 0; /* (a record that failed late had these decoded) */
            u->expected = u->intent = 0;
            s->st.users_created++;
            v = NULL;
        } else {
            s->st.users_loaded++;
        }
        free(v);
    } else {
        s->st.users_created++;
    }
    s->cache_bytes += u->mem; /* counted now; a dirty record's growth at its flush */
    u->mem_counted = u->mem;
    if (s->count >= s->nbuckets) table_grow(s);
    u->hnext = s->table[h & (s->nbuckets - 1)];
    s->table[h & (s->nbuckets - 1)] = u;
    s->count++;
    lru_push_front(s, u);
    return u;
}

/* Appends u to the list *v of *n records (room for *cap), doubling the room when full. */
static inline void user_list_push(tl_user ***v, size_t *n, size_t *cap, tl_user *u)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = tl_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = u;
}

tl_user *tl_store_get(tl_store *s, const char *user_id)
{
    uint64_t h = tl_hash64(user_id, strlen(user_id));
    tl_user *u = table_find(s, user_id, h);
    if (u) {
        if (s->lru_head != u) {
            lru_unlink(s, u);
            lru_push_front(s, u);
        }
    } else {
        u = store_load(s, user_id, h, 1);
        if (!u) return NULL;
    }
    if (!u->dirty) {
        u->dirty = 1;
        user_list_push(&s->dirty, &s->n_dirty, &s->cap_dirty, u);
    }
    if (!u->changed) {
        u->changed = 1;
        user_list_push(&s->changed, &s->n_changed, &s->cap_changed, u);
    }
    return u;
}

/* Uses nothing of s but the database handle and its read options (RocksDB's Get is
 * thread-safe, the options are only read): no shared key buffer, no cache. */
int tl_store_read_raw(tl_store *s, const char *user_id, tl_buf *out, char *err, size_t errlen)
{
    tl_buf k = {0}; /* not s->kbuf: the owning thread uses that */
    key_profile(&k, user_id);
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(s->db, s->ropts, k.data, k.len, &vlen, &rerr);
    tl_buf_free(&k);
    tl_buf_clear(out);
    if (rerr) {
        snprintf(err, errlen, "state store %s: read failed: %s", s->path, rerr);
        free(rerr);
        return -1;
    }
    if (!v) return 0;
    tl_buf_append(out, v, vlen);
    free(v);
    return 1;
}

tl_user *tl_store_peek(tl_store *s, const char *user_id)
{
    uint64_t h = tl_hash64(user_id, strlen(user_id));
    tl_user *u = table_find(s, user_id, h);
    return u ? u : store_load(s, user_id, h, 0);
}

/* A user with nothing to keep: no record in the store (and none in the changelog). */
static int user_empty(const tl_user *u)
{
    return u->n_ent == 0 && u->n_tp == 0 && u->timer == 0 && u->labelled == INT64_MIN &&
        u->sampled == INT64_MIN && u->first_ts == INT64_MIN && u->purchases == 0 &&
        u->last_purchase == INT64_MIN && u->n_attr == 0;
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp((*(tl_user *const *)a)->user_id, (*(tl_user *const *)b)->user_id);
}

/* Puts u's record (or its deletion, when empty) in wb; s->vbuf holds the encoding. */
static void put_record(tl_store *s, rocksdb_writebatch_t *wb, const tl_user *u)
{
    key_profile(&s->kbuf, u->user_id);
    tl_buf_clear(&s->vbuf);
    if (user_empty(u)) {
        rocksdb_writebatch_delete(wb, s->kbuf.data, s->kbuf.len);
    } else {
        tl_user_encode(u, &s->vbuf);
        rocksdb_writebatch_put(wb, s->kbuf.data, s->kbuf.len, s->vbuf.data, s->vbuf.len);
    }
}

/* After an eviction: the heap keeps the entries of cached records that stand for their
 * timer, and any already due; the evicted records' timers are in the store (they were
 * written before eviction) and come from their keys (tl_store_next_due). So the heap
 * holds about one entry per cached record, however many records have timers. */
static void heap_prune(tl_store *s)
{
    int64_t now = tl_store_stream_time(s);
    size_t k = 0;
    for (size_t i = 0; i < s->n_heap; i++) {
        struct timer_ent e = s->heap[i];
        tl_user *u = table_find(s, e.user_id, tl_hash64(e.user_id, strlen(e.user_id)));
        if ((u && u->timer_queued == e.at) || e.at <= now) s->heap[k++] = e;
        else free(e.user_id);
    }
    /* a heap again: sift down from the last parent */
    s->n_heap = k;
    for (size_t i = k / 2; i-- > 0;) sift_down(s, i, s->heap[i], k);
}

/* The cache's budget now: state.cache.mb less what it gives up to the memory around it
 * (tl_store_squeeze), at most half of it, so that a cache always keeps room to work. */
static size_t budget_now(const tl_store *s)
{
    size_t most = s->cache_budget / 2;
    return s->cache_budget - (s->squeeze < most ? s->squeeze : most);
}

int tl_store_flush(tl_store *s, int64_t next_offset, char *err, size_t errlen)
{
    if (s->n_dirty) qsort(s->dirty, s->n_dirty, sizeof(*s->dirty), cmp_user);
    rocksdb_writebatch_t *wb = s->staged ? s->staged : rocksdb_writebatch_create();
    s->staged = NULL;
    for (size_t i = 0; i < s->n_dirty; i++) {
        tl_user *u = s->dirty[i];
        if (u->timer != u->timer_saved) {
            if (u->timer_saved) {
                key_timer(&s->kbuf, u->timer_saved, u->user_id);
                rocksdb_writebatch_delete(wb, s->kbuf.data, s->kbuf.len);
            }
            if (u->timer) {
                key_timer(&s->kbuf, u->timer, u->user_id);
                rocksdb_writebatch_put(wb, s->kbuf.data, s->kbuf.len, "", 0);
            }
            u->timer_saved = u->timer;
        }
        /* Staged and not touched since: the batch holds its record already. Touched
         * since: this later put is the one that counts. */
        if (u->staged && !u->changed) continue;
        put_record(s, wb, u);
    }
    tl_buf_clear(&s->vbuf);
    tl_wire_put_svarint(&s->vbuf, next_offset);
    rocksdb_writebatch_put(wb, "m:next_offset", 13, s->vbuf.data, s->vbuf.len);
    tl_buf_clear(&s->vbuf);
    s->stream_time_saved = tl_store_stream_time(s);
    tl_wire_put_svarint(&s->vbuf, s->stream_time_saved);
    rocksdb_writebatch_put(wb, "m:stream_time", 13, s->vbuf.data, s->vbuf.len);
    if (s->changelog_pending >= 0) {
        tl_buf_clear(&s->vbuf);
        tl_wire_put_svarint(&s->vbuf, s->changelog_pending);
        rocksdb_writebatch_put(wb, "m:changelog", 11, s->vbuf.data, s->vbuf.len);
    }
    char *rerr = NULL;
    rocksdb_write(s->db, s->wopts, wb, &rerr);
    rocksdb_writebatch_clear(wb);
    s->staged = wb; /* empty, kept for the next */
    if (rerr) {
        snprintf(err, errlen, "state store %s: write failed: %s", s->path, rerr);
        free(rerr);
        return -1;
    }
    for (size_t i = 0; i < s->n_dirty; i++) {
        tl_user *u = s->dirty[i];
        u->dirty = 0;
        u->changed = 0; /* written: nothing left for a changelog (at_least_once never takes it) */
        u->staged = 0;
        s->cache_bytes += u->mem - u->mem_counted; /* unsigned wrap cancels out */
        u->mem_counted = u->mem;
    }
    s->st.users_written += s->n_dirty;
    s->n_dirty = 0;
    s->n_changed = 0; /* every changed record is also dirty: before eviction frees any */
    s->next_offset = next_offset;
    s->changelog_offset = s->changelog_pending;
    s->st.flushes++;

    /* Over the budget: evict clean records, least recently used first, down to 7/8 of
     * it; the eighth left is the room the next batches grow into (tl_store_room). Every
     * record is clean here, and cache_bytes counts each at its current size. */
    size_t budget = budget_now(s);
    if (s->cache_bytes > budget) {
        size_t low = budget - budget / 8;
        while (s->cache_bytes > low && s->lru_tail) {
            tl_user *u = s->lru_tail;
            s->cache_bytes -= u->mem_counted;
            lru_unlink(s, u);
            table_remove(s, u);
            user_free(u);
            s->st.users_evicted++;
        }
        heap_prune(s);
    }
    disk_refresh(s); /* the write may have put timers before the next one known */
    return 0;
}

/* The cache's size now: cache_bytes counts the dirty records as they were when they
 * were last counted; their growth since is added here (a batch's worth of records). And
 * the dirty records' size: what the next write of the state encodes into one RocksDB
 * write batch, kept under a quarter of the budget. */
static size_t cache_now(const tl_store *s, size_t *dirty)
{
    size_t n = s->cache_bytes, d = 0;
    for (size_t i = 0; i < s->n_dirty; i++) {
        n += s->dirty[i]->mem - s->dirty[i]->mem_counted;
        d += s->dirty[i]->mem;
    }
    *dirty = d;
    return n;
}

int tl_store_over_budget(const tl_store *s)
{
    size_t dirty, n = cache_now(s, &dirty), budget = budget_now(s);
    return n > budget || dirty > budget / 4;
}

size_t tl_store_room(const tl_store *s)
{
    size_t dirty, n = cache_now(s, &dirty), budget = budget_now(s);
    size_t room = n < budget ? budget - n : 0;
    size_t wroom = dirty < budget / 4 ? budget / 4 - dirty : 0;
    return room < wroom ? room : wroom;
}

void tl_store_squeeze(tl_store *s, size_t bytes) { s->squeeze = bytes; }

void tl_store_stats_get(const tl_store *s, tl_store_stats *st)
{
    *st = s->st;
    st->users_cached = s->count;
    st->cache_bytes = s->cache_bytes;
    st->cache_budget = budget_now(s);
    st->timers_queued = s->n_heap;
}

/* ---- exactly-once support -------------------------------------------------------- */

int tl_store_take_changed(tl_store *s, int (*fn)(void *arg, const tl_user *u, const tl_buf *value),
                          void *arg)
{
    int rc = 0;
    /* In key order: the store's write after the commit inserts them in that order. */
    if (s->n_changed) qsort(s->changed, s->n_changed, sizeof(*s->changed), cmp_user);
    if (!s->staged) s->staged = rocksdb_writebatch_create();
    for (size_t i = 0; i < s->n_changed; i++) {
        tl_user *u = s->changed[i];
        u->changed = 0;
        if (rc) continue;
        put_record(s, s->staged, u); /* an empty record: a deletion, and an empty value */
        u->staged = 1;
        rc = fn(arg, u, &s->vbuf);
    }
    s->n_changed = 0;
    return rc;
}

void tl_store_set_changelog_offset(tl_store *s, int64_t offset) { s->changelog_pending = offset; }
int64_t tl_store_changelog_offset(const tl_store *s) { return s->changelog_offset; }

/* Restoring writes straight to RocksDB in WriteBatches of RESTORE_BATCH records, each
 * with the changelog offset it reaches, so an interrupted restore resumes where it
 * stopped. No read per record: a restored record's timer is indexed anew; an index key
 * of the timer it replaced may remain, and is skipped when it comes due (the user's
 * timer no longer matches it). */
#define RESTORE_BATCH 50000

/* A buffered restore record: key and value in restore_bytes. Written in key order, the
 * memtable's skip list inserts each next to the previous one (RocksDB keeps the last
 * insert position), several times cheaper than inserting in changelog order. */
struct restore_entry {
    size_t koff, voff;
    uint32_t klen, vlen, seq;
    int del;
};

static _Thread_local const char *restore_sort_base;

static int restore_entry_cmp(const void *x, const void *y)
{
    const struct restore_entry *a = x, *b = y;
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(restore_sort_base + a->koff, restore_sort_base + b->koff, n);
    if (c) return c;
    if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
    return a->seq < b->seq ? -1 : 1; /* the same key: changelog order, the last wins */
}

static void restore_add(tl_store *s, const void *key, size_t klen, const void *value, size_t vlen,
                        int del)
{
    if (s->restore_n == s->restore_cap) {
        s->restore_cap = s->restore_cap ? 2 * s->restore_cap : 1024;
        s->restore_ents =
            tl_xrealloc(s->restore_ents, (size_t)s->restore_cap * sizeof(*s->restore_ents));
    }
    struct restore_entry *e = &s->restore_ents[s->restore_n];
    e->seq = (uint32_t)s->restore_n++;
    e->del = del;
    e->koff = s->restore_bytes.len;
    e->klen = (uint32_t)klen;
    tl_buf_append(&s->restore_bytes, key, klen);
    e->voff = s->restore_bytes.len;
    e->vlen = (uint32_t)vlen;
    if (vlen) tl_buf_append(&s->restore_bytes, value, vlen);
}

static int restore_commit(tl_store *s, char *err, size_t errlen)
{
    if (!s->restore_n) return 0;
    restore_sort_base = s->restore_bytes.data;
    qsort(s->restore_ents, (size_t)s->restore_n, sizeof(*s->restore_ents), restore_entry_cmp);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    const char *base = s->restore_bytes.data;
    for (int i = 0; i < s->restore_n; i++) {
        const struct restore_entry *e = &s->restore_ents[i];
        if (i + 1 < s->restore_n && e[1].klen == e->klen &&
            !memcmp(base + e[1].koff, base + e->koff, e->klen))
            continue; /* a later record of the same key follows */
        if (e->del) rocksdb_writebatch_delete(wb, base + e->koff, e->klen);
        else rocksdb_writebatch_put(wb, base + e->koff, e->klen, base + e->voff, e->vlen);
    }
    tl_buf_clear(&s->vbuf);
    tl_wire_put_svarint(&s->vbuf, s->restore_offset);
    rocksdb_writebatch_put(wb, "m:changelog", 11, s->vbuf.data, s->vbuf.len);
    char *rerr = NULL;
    if (!s->restore_wopts) {
        s->restore_wopts = rocksdb_writeoptions_create();
        rocksdb_writeoptions_disable_WAL(s->restore_wopts, 1);
    }
    rocksdb_write(s->db, s->restore_wopts, wb, &rerr);
    s->restore_unlogged = 1;
    rocksdb_writebatch_destroy(wb);
    s->restore_n = 0;
    tl_buf_clear(&s->restore_bytes);
    if (rerr) {
        snprintf(err, errlen, "state store %s: restore write failed: %s", s->path, rerr);
        free(rerr);
        return -1;
    }
    s->changelog_offset = s->changelog_pending = s->restore_offset;
    disk_refresh(s); /* the restored timers */
    return 0;
}

int tl_store_restore(tl_store *s, const char *user_id, size_t id_len, const void *value, size_t len,
                     int64_t changelog_offset, char *err, size_t errlen)
{
    tl_buf_clear(&s->kbuf);
    tl_buf_putc(&s->kbuf, 'u');
    tl_buf_append(&s->kbuf, user_id, id_len);
    if (value && len) {
        int64_t timer = 0;
        if (tl_user_encoded_timer(value, len, &timer) != 0) {
            /* The user's last record wins: an older good one must not come back. */
            char why[64];
            snprintf(why, sizeof(why), "changelog_offset_%lld", (long long)changelog_offset);
            quarantine(s, user_id, id_len, value, len, why, 0);
            restore_add(s, s->kbuf.data, s->kbuf.len, NULL, 0, 1);
            s->restore_offset = changelog_offset;
            if (s->restore_n >= RESTORE_BATCH) return restore_commit(s, err, errlen);
            return 0;
        }
        restore_add(s, s->kbuf.data, s->kbuf.len, value, len, 0);
        if (timer) {
            char *id = tl_xstrndup(user_id, id_len);
            key_timer(&s->kbuf, timer, id);
            restore_add(s, s->kbuf.data, s->kbuf.len, NULL, 0, 0);
            free(id);
        }
    } else {
        restore_add(s, s->kbuf.data, s->kbuf.len, NULL, 0, 1);
    }
    s->restore_offset = changelog_offset;
    if (s->restore_n >= RESTORE_BATCH) return restore_commit(s, err, errlen);
    return 0;
}

/* Restored records skip the WAL (a bulk load: the changelog is their log). Before
 * processing writes logged records on top of them, they are flushed to SST files: a
 * crash can then lose only logged writes' memtable, which the WAL brings back, never a
 * restored record under a logged one. */
int tl_store_restore_done(tl_store *s, char *err, size_t errlen)
{
    if (restore_commit(s, err, errlen) != 0) return -1;
    if (!s->restore_unlogged) return 0;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *rerr = NULL;
    rocksdb_flush(s->db, fo, &rerr);
    rocksdb_flushoptions_destroy(fo);
    if (rerr) {
        snprintf(err, errlen, "state store %s: flush after restore failed: %s", s->path, rerr);
        free(rerr);
        return -1;
    }
    s->restore_unlogged = 0;
    return 0;
}

void tl_store_discard_dirty(tl_store *s)
{
    for (size_t i = 0; i < s->n_dirty; i++) {
        tl_user *u = s->dirty[i];
        s->cache_bytes -= u->mem_counted;
        lru_unlink(s, u);
        table_remove(s, u);
        user_free(u);
    }
    s->n_dirty = 0;
    s->n_changed = 0;
    if (s->staged) rocksdb_writebatch_clear(s->staged);
    /* The stream time too: the events read again must find it where the committed state
     * left it -- else timers would fall due before the events that precede them, and the
     * stream time told to the sink would run ahead of the outputs made so far (the shared
     * Markov chain's watermark would pass journeys still to come). */
    atomic_store_explicit(&s->stream_time, s->stream_time_saved, memory_order_relaxed);
}

void tl_store_rocksdb_stats(tl_store *s, uint64_t *keys, uint64_t *sst_bytes, uint64_t *mem_bytes)
{
    uint64_t v = 0, mem = 0;
    *keys = rocksdb_property_int(s->db, "rocksdb.estimate-num-keys", &v) == 0 ? v : 0;
    *sst_bytes = rocksdb_property_int(s->db, "rocksdb.total-sst-files-size", &v) == 0 ? v : 0;
    if (rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &v) == 0) mem += v;
    if (rocksdb_property_int(s->db, "rocksdb.estimate-table-readers-mem", &v) == 0) mem += v;
    if (rocksdb_property_int(s->db, "rocksdb.block-cache-usage", &v) == 0) mem += v;
    *mem_bytes = mem;
}
