/*
 * changelog.c -- the user-state changelog (exactly-once).
 *
 * Every exactly-once transaction writes, for each user it touched, the user's whole
 * state record keyed by user id to the changelog partition equal to the input partition
 * (compaction keeps the latest), beside its outputs and its input offsets. Only once the
 * transaction is committed does a store learn the changelog offset its state reflects; it
 * writes that offset with its state at its next flush. Restoring a partition reads the
 * changelog from just after that offset to the end, so after a crash only the tail is
 * replayed and nothing local is wiped; a missing or deleted store (offset -1) is rebuilt
 * from the start. A record is the full state, so applying one again is harmless.
 */
#include "changelog.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>

typedef struct stage_arg {
    const tl_sink *sink;
    int32_t partition;
} stage_arg;

static int stage_one(void *arg, const tl_user *u, const tl_buf *value)
{
    stage_arg *a = arg;
    return a->sink->emit_state(a->sink->ctx, a->partition, u->user_id,
                               value->len ? value->data : NULL, value->len) == TL_OK
        ? 0
        : -1;
}

int tl_changelog_stage(tl_store *const *stores, int n, const tl_sink *sink)
{
    for (int p = 0; p < n; p++) {
        if (!stores[p]) continue;
        stage_arg a = {sink, p};
        if (tl_store_take_changed(stores[p], stage_one, &a) != 0) return -1;
    }
    return 0;
}

void tl_changelog_committed(tl_store *const *stores, int n, const int64_t *changelog_next)
{
    for (int p = 0; p < n; p++)
        if (changelog_next[p] >= 0 && stores[p])
            tl_store_set_changelog_offset(stores[p], changelog_next[p] - 1);
}

tl_prom_series *tl_changelog_restoring(void)
{
    return tl_prom_gauge("tally_restoring_partitions",
                         "Partitions being restored from the changelog now.", NULL);
}

tl_prom_series *tl_changelog_remaining(int32_t partition)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", (int)partition);
    return tl_prom_gauge("tally_restore_remaining_records",
                         "Changelog records left to restore, by partition.", "partition", p, NULL);
}

static tl_prom_series *restored_total(void)
{
    return tl_prom_counter("tally_restore_records_total",
                           "Changelog records restored into the local state.", NULL);
}

void tl_changelog_metrics(void)
{
    (void)tl_changelog_restoring();
    (void)restored_total();
}

int64_t tl_changelog_next_offset(const tl_store *store)
{
    return tl_store_changelog_offset(store) + 1;   /* -1 + 1 = 0: from the start */
}

int tl_changelog_replay_begin(tl_changelog_replay *r, tl_store *store, int32_t partition,
                              int64_t lo, int64_t end)
{
    *r = (tl_changelog_replay){.store = store, .partition = partition, .end = end};
    r->from = tl_changelog_next_offset(store);
    if (r->from < lo) r->from = lo;
    /* Every restored partition has its series, at 0 once restored: a dashboard sums it. */
    r->remaining = tl_changelog_remaining(partition);
    if (r->from >= end) {
        tl_prom_set(r->remaining, 0);
        TL_LOG_INFO("changelog", "restore partition=%d: up to date at offset %" PRId64,
                    (int)partition, end);
        return 0;
    }
    r->restoring = tl_changelog_restoring();
    r->restored = restored_total();
    tl_prom_set(r->restoring, tl_prom_gauge_value(r->restoring) + 1);
    tl_prom_set(r->remaining, (double)(end - r->from));
    r->t0_ns = r->reported_ns = tl_mono_ns();
    return 1;
}

int tl_changelog_replay_apply(tl_changelog_replay *r, const char *key, size_t key_len,
                              const void *value, size_t len, int64_t offset)
{
    char err[512];
    if (tl_store_restore(r->store, key, key_len, len ? value : NULL, len, offset, err,
                         sizeof(err)) != 0) {
        TL_LOG_ERROR("changelog", "%s", err);
        return -1;
    }
    if (++r->applied % 4096 == 0) {
        tl_prom_add(r->restored, 4096);
        tl_prom_set(r->remaining, (double)(r->end - offset - 1));
        tl_health_beat();
        if (tl_mono_ns() - r->reported_ns > 5 * (int64_t)1000000000) {
            r->reported_ns = tl_mono_ns();
            TL_LOG_INFO("changelog", "restoring partition=%d offset=%" PRId64 " of %" PRId64,
                        (int)r->partition, offset, r->end);
        }
    }
    return 0;
}

int tl_changelog_replay_end(tl_changelog_replay *r, int ok)
{
    char err[512];
    tl_prom_add(r->restored, (uint64_t)(r->applied % 4096));
    tl_prom_set(r->remaining, 0);
    tl_prom_set(r->restoring, tl_prom_gauge_value(r->restoring) - 1);
    int rc = ok ? 0 : -1;
    if (rc == 0 && tl_store_restore_done(r->store, err, sizeof(err)) != 0) {
        TL_LOG_ERROR("changelog", "%s", err);
        rc = -1;
    }
    double secs = (double)(tl_mono_ns() - r->t0_ns) / 1e9;
    TL_LOG_INFO("changelog",
                "restored partition=%d records=%" PRId64 " from=%" PRId64 " to=%" PRId64
                " seconds=%.2f keys_per_s=%.0f",
                (int)r->partition, r->applied, r->from, r->end, secs,
                secs > 0 ? r->applied / secs : 0.0);
    return rc;
}
