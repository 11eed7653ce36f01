/*
 * test_runtime.c -- the batch loop (engine/runtime.c) with the real stages
 * (model/pipeline.h, default configuration), an in-memory source over an array of
 * events on two partitions, and the in-memory sink (memsink.h).
 *
 * Covered: every event yields its deltas, in order, and every purchase an attribution
 * or a count; stores end at next_offset = last offset + 1 (in memory and on disk);
 * outputs and final state do not depend on batch boundaries (sizes 1, 7, all, and 1
 * with a cache that evicts everything between batches); a sink flush that fails
 * stops the loop with -1 and leaves the stores at their last written batch (state
 * written every commit with state.flush.interval.ms=0, or deferred to the end of the
 * input with a long interval), while retries are retried and counted; bad records go
 * to emit_dlq, are counted by reason, and move the offset past them; with a sink that
 * acknowledges asynchronously (progress()), batches stay in flight and each commit
 * covers only acknowledged outputs, with the same outputs and state as a plain run;
 * a stop request before the first poll ends cleanly; under exactly_once, commits start
 * commit.interval.ms apart even when each takes a while, and a transaction stays open for
 * at least half of the interval.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/config.h"
#include "lib/log.h"
#include "engine/runtime.h"
#include "engine/source.h"
#include "engine/state.h"
#include "model/pipeline.h"
#include "fixtures.h"
#include "memsink.h"

static const int64_t DAY = 86400000;

/* ---- the memory source --------------------------------------------------------------- */

typedef struct mem_bad {
    int before;              /* delivered with the batch that holds event index `before` */
    tl_dlq_reason reason;
    int32_t partition;
    int64_t offset;
} mem_bad;

typedef struct memsrc {
    const tl_event *events;
    int n, pos;
    const mem_bad *bad;
    int n_bad, bad_pos;
    int polls, commits;
    int64_t committed[4];    /* per partition: the highest next offset committed, or -1 */
    const memsink *ms;       /* when set, every commit is checked against its acks */
    int violations;          /* commits of input whose outputs were not acknowledged */
    int with_unacked;        /* commits made while some outputs were still unacknowledged */
    int regressions;         /* commits that moved an offset backwards */
} memsrc;

static int memsrc_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    (void)timeout_ms;
    memsrc *s = ctx;
    tl_batch_reset(b);
    s->polls++;
    int end = s->pos + max < s->n ? s->pos + max : s->n;
    /* bad records positioned inside this batch (or after the last event) */
    while (s->bad_pos < s->n_bad && (s->bad[s->bad_pos].before < end || end == s->n)) {
        const mem_bad *mb = &s->bad[s->bad_pos++];
        tl_dlq_record *r = tl_batch_push_bad(b);
        r->reason = mb->reason;
        r->error = tl_arena_strdup(&b->arena, "test: bad record");
        r->topic = "tally.events";
        r->partition = mb->partition;
        r->offset = mb->offset;
        char *p = tl_arena_strdup(&b->arena, "\x01garbage");
        r->payload = p;
        r->payload_len = strlen(p);
    }
    for (; s->pos < end; s->pos++) {
        const tl_event *src = &s->events[s->pos];
        tl_event *ev = tl_batch_push(b);
        *ev = *src;
        /* strings in the batch arena, as a real source does */
        ev->event_id = tl_arena_strdup(&b->arena, src->event_id);
        ev->user_id = tl_arena_strdup(&b->arena, src->user_id);
        ev->item_id = tl_arena_strdup(&b->arena, src->item_id);
        ev->category_id = tl_arena_strdup(&b->arena, src->category_id);
        ev->channel = tl_arena_strdup(&b->arena, src->channel);
    }
    return s->pos == s->n && s->bad_pos == s->n_bad ? TL_SRC_EOF : TL_SRC_OK;
}

static const tl_event *memsrc_find(const memsrc *s, const char *event_id)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->events[i].event_id, event_id) == 0) return &s->events[i];
    return NULL;
}

/* Whether input (partition, offset) is covered by the committed offsets next[]. */
static int covered(const int64_t *next, int n, int32_t partition, int64_t offset)
{
    return partition < n && next[partition] >= 0 && offset < next[partition];
}

static int memsrc_commit(void *ctx, const int64_t *next, int n)
{
    memsrc *s = ctx;
    s->commits++;
    for (int p = 0; p < n && p < 4; p++) {
        if (next[p] < 0) continue;
        if (next[p] < s->committed[p]) s->regressions++;
        else s->committed[p] = next[p];
    }
    if (!s->ms) return 0;
    if (s->ms->acked < (uint64_t)s->ms->n) s->with_unacked++;
    /* every record not yet acknowledged must come from input beyond these offsets */
    for (int i = (int)s->ms->acked; i < s->ms->n; i++) {
        const ms_record *r = &s->ms->rec[i];
        const tl_event *ev = NULL;
        if (r->kind == MS_INTEREST) ev = memsrc_find(s, r->interest.event_id);
        else if (r->kind == MS_ATTRIBUTION) ev = memsrc_find(s, r->attribution.conversion_event_id);
        if (ev && covered(next, n, ev->partition, ev->offset)) s->violations++;
        if (r->kind == MS_DLQ && covered(next, n, r->dlq.partition, r->dlq.offset)) s->violations++;
    }
    return 0;
}

static tl_source memsrc_source(memsrc *s)
{
    return (tl_source){.name = "memory", .ctx = s, .poll = memsrc_poll, .commit = memsrc_commit};
}

/* ---- events ---------------------------------------------------------------------------- */

enum {
    NEV = 400,
    NUSERS = 12
};
static tl_event evs[NEV];
static char ev_ids[NEV][16], user_ids[NUSERS][16], cat_ids[6][8], item_ids[30][12];
static int64_t next_off[2];

static uint64_t rng;
static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33);
}

/* 12 users, user i on partition i % 2 (offsets from 0 and from 1000); types, NULL
 * categories and channels, late events up to a day, and a 30-day gap in the middle so
 * that entries fade below epsilon and are dropped. */
static void gen_events(void)
{
    rng = 42;
    for (int u = 0; u < NUSERS; u++) snprintf(user_ids[u], sizeof(user_ids[u]), "user-%d", u);
    for (int c = 0; c < 6; c++) snprintf(cat_ids[c], sizeof(cat_ids[c]), "c%d", c);
    for (int i = 0; i < 30; i++) snprintf(item_ids[i], sizeof(item_ids[i]), "item-%d", i);
    next_off[0] = 0;
    next_off[1] = 1000;
    int64_t t = 1500000000000LL;
    for (int i = 0; i < NEV; i++) {
        tl_event *e = &evs[i];
        memset(e, 0, sizeof(*e));
        int u = (int)(rnd() % NUSERS);
        if (i == NEV / 2) t += 30 * DAY;
        t += rnd() % (2 * 3600 * 1000);
        e->ts = t;
        if (rnd() % 10 == 0) e->ts -= rnd() % DAY;
        uint32_t r = rnd() % 100;
        e->type = r < 30 ? TL_IMPRESSION
            : r < 55     ? TL_BROWSE
            : r < 70     ? TL_CLICK
            : r < 78     ? TL_FAVORITE
            : r < 90     ? TL_ADD_TO_CART
                         : TL_PURCHASE;
        snprintf(ev_ids[i], sizeof(ev_ids[i]), "ev-%d", i);
        e->event_id = ev_ids[i];
        e->user_id = user_ids[u];
        e->item_id = item_ids[rnd() % 30];
        e->category_id = rnd() % 8 == 0 ? NULL : cat_ids[rnd() % 6];
        e->channel = rnd() % 3 == 0 ? NULL : rnd() % 2 ? "web" : "app";
        if (e->type == TL_PURCHASE && rnd() % 2) {
            e->has_value = 1;
            e->value = (double)(rnd() % 10000) / 100;
        }
        e->partition = u % 2;
        e->offset = next_off[u % 2]++;
    }
}

/* ---- fixture --------------------------------------------------------------------------- */

static int n_dirs;

static int setup(void **state)
{
    tl_log_level = TL_LOG_ERROR;   /* the loop's info lines would drown cmocka's */
    n_dirs = 0;
    gen_events();
    return fx_setup_tmpdir(state);
}

static int teardown(void **state) { return fx_teardown_tmpdir(state); }

/* A fresh state directory under fx_tmpdir (returned in a static slot). */
static const char *new_state_dir(void)
{
    static char dirs[16][96];
    assert_true(n_dirs < 16);
    snprintf(dirs[n_dirs], sizeof(dirs[n_dirs]), "%s/run%d", fx_tmpdir, n_dirs);
    return dirs[n_dirs++];
}

typedef struct run {
    tl_config *cfg;
    tl_pipeline p;
    tl_runtime_opts o;
    tl_runtime *rt;
    memsink ms;
    memsrc src;
    const char *dir;
} run;

/* Sets up a runtime over events[0..n) with the default configuration plus kvs. */
static void run_init(run *r, const tl_event *events, int n, int batch, const char *const *kvs)
{
    memset(r, 0, sizeof(*r));
    char err[512] = "";
    r->cfg = tl_config_new(tl_app_config);
    for (; kvs && *kvs; kvs++)
        if (tl_config_set_kv(r->cfg, *kvs, "-X", err, sizeof(err)) != 0) fail_msg("%s", err);
    r->dir = new_state_dir();
    if (tl_pipeline_init(&r->p, r->cfg, r->dir, err, sizeof(err)) != 0) fail_msg("%s", err);
    tl_app_cfg ac;
    if (tl_app_cfg_load(&ac, r->cfg, err, sizeof(err)) != 0) fail_msg("%s", err);
    tl_app_runtime_opts(&ac, &r->o);
    r->o.state_dir = r->dir;
    r->o.batch_max_events = batch;
    ms_init(&r->ms);
    r->src = (memsrc){.events = events, .n = n, .ms = &r->ms, .committed = {-1, -1, -1, -1}};
}

static void run_start(run *r)
{
    r->rt = tl_runtime_new(&r->o, &r->ms.sink, r->p.stages, r->p.n_stages);
    assert_non_null(r->rt);
}

/* Partitions handed over the way a consumer-group source does before it polls: through
 * the runtime's partition listener (engine/source.h). */
static void run_assign(run *r, int n_parts)
{
    tl_partition_listener l = tl_runtime_partition_listener(r->rt);
    for (int p = 0; p < n_parts; p++) {
        int64_t next = 0;
        assert_int_equal(l.assigned(l.arg, p, &next), 0);
        assert_int_equal(next, -1);   /* a new store */
    }
}

static int run_loop(run *r)
{
    tl_source src = memsrc_source(&r->src);
    int rc = tl_runtime_run(r->rt, &src, NULL);
    assert_int_equal(r->src.violations, 0);
    assert_int_equal(r->src.regressions, 0);
    return rc;
}

static int run_go(run *r)
{
    run_start(r);
    return run_loop(r);
}

static void run_fini(run *r)
{
    tl_runtime_destroy(r->rt);
    tl_pipeline_destroy(&r->p);
    ms_free(&r->ms);
    tl_config_destroy(r->cfg);
}

static tl_store *open_store(const char *dir, int32_t partition)
{
    char err[512] = "";
    tl_store *s = tl_store_open(dir, partition, 1 << 20, err, sizeof(err));
    if (!s) fail_msg("%s", err);
    return s;
}

/* ---- every event yields its deltas -------------------------------------------------------- */

static void test_every_event(void **state)
{
    (void)state;
    run r;
    run_init(&r, evs, NEV, 50, NULL);
    assert_int_equal(run_go(&r), 0);

    /* interest deltas: one per event with a category (default dims), in event order */
    int k = 0, purchases = 0, attributions = 0;
    for (int i = 0; i < NEV; i++) {
        if (evs[i].type == TL_PURCHASE) purchases++;
        if (!evs[i].category_id) continue;
        const tl_interest_delta *d = ms_interest(&r.ms, k++);
        if (!d) fail_msg("no delta for event %d", i);
        assert_string_equal(d->event_id, evs[i].event_id);
        assert_string_equal(d->user_id, evs[i].user_id);
        assert_int_equal(d->dim, TL_DIM_CATEGORY);
        assert_string_equal(d->dim_id, evs[i].category_id);
        assert_true(d->ts >= evs[i].ts);
        assert_true(d->rank >= 1);
    }
    assert_int_equal(r.ms.count[MS_INTEREST], k);
    assert_int_equal(r.p.fstats.deltas, k);
    assert_true(r.p.fstats.dropped > 0);   /* the 30-day gap faded entries out */

    /* attributions: each for a purchase, in stream order, crediting earlier touch
     * events of the same user within 7 days before it, none credited twice */
    static unsigned char credited[NEV];
    memset(credited, 0, sizeof(credited));
    int last_purchase = -1;
    for (int a = 0; a < r.ms.count[MS_ATTRIBUTION]; a++) {
        const tl_attribution *at = ms_attribution(&r.ms, a);
        int pi = atoi(at->conversion_event_id + 3);
        assert_true(pi > last_purchase);
        last_purchase = pi;
        const tl_event *p = &evs[pi];
        assert_int_equal(p->type, TL_PURCHASE);
        assert_string_equal(at->user_id, p->user_id);
        assert_int_equal(at->ts, p->ts);
        assert_int_equal(at->has_value, p->has_value);
        assert_true(at->n_touchpoints >= 1);
        int64_t prev_ts = INT64_MIN;
        for (int j = 0; j < at->n_touchpoints; j++) {
            const tl_touchpoint *tp = &at->touchpoints[j];
            int ti = atoi(tp->event_id + 3);
            assert_true(ti < pi);
            assert_string_equal(evs[ti].user_id, p->user_id);
            assert_int_not_equal(evs[ti].type, TL_PURCHASE);
            assert_int_equal(tp->ts, evs[ti].ts);
            assert_true(tp->ts <= p->ts && tp->ts >= p->ts - 7 * DAY);
            assert_true(tp->ts >= prev_ts);
            prev_ts = tp->ts;
            assert_int_equal(credited[ti], 0);
            credited[ti] = 1;
        }
        attributions++;
    }
    assert_true(attributions > 0);
    assert_int_equal(r.p.astats.purchases, purchases);
    assert_int_equal(r.p.astats.attributed + r.p.astats.no_touchpoints, purchases);
    assert_int_equal(r.p.astats.attributed, attributions);

    const tl_runtime_stats *st = tl_runtime_stats_get(r.rt);
    assert_int_equal(st->events, NEV);
    assert_int_equal(st->batches, NEV / 50);
    assert_int_equal(st->bad_total, 0);
    assert_int_equal(r.src.commits, NEV / 50);
    assert_int_equal(r.src.committed[0], next_off[0]);
    assert_int_equal(r.src.committed[1], next_off[1]);
    assert_true(r.ms.flushes >= NEV / 50);   /* at least one per batch (no progress()) */
    assert_int_equal(r.ms.records_at_flush, r.ms.n);

    /* next offsets: last offset + 1 per partition, in memory ... */
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), next_off[0]);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 1)), next_off[1]);
    assert_int_equal(next_off[0] + next_off[1] - 1000, NEV);
    run_fini(&r);
    /* ... and on disk */
    tl_store *s0 = open_store(r.dir, 0), *s1 = open_store(r.dir, 1);
    assert_int_equal(tl_store_next_offset(s0), next_off[0]);
    assert_int_equal(tl_store_next_offset(s1), next_off[1]);
    /* users live in their partition's store only */
    for (int u = 0; u < NUSERS; u++) {
        tl_store *mine = u % 2 ? s1 : s0, *other = u % 2 ? s0 : s1;
        assert_non_null(tl_store_peek(mine, user_ids[u]));
        assert_null(tl_store_peek(other, user_ids[u]));
    }
    tl_store_close(s0);
    tl_store_close(s1);
}

/* ---- batch boundaries ------------------------------------------------------------------ */

/* Encoded records of every user, both partitions, concatenated. */
static void state_dump(const char *dir, tl_buf *out)
{
    tl_store *s[2] = {open_store(dir, 0), open_store(dir, 1)};
    for (int u = 0; u < NUSERS; u++) {
        tl_user *rec = tl_store_peek(s[u % 2], user_ids[u]);
        tl_buf_puts(out, user_ids[u]);
        tl_buf_putc(out, rec ? '+' : '-');
        if (rec) tl_user_encode(rec, out);
    }
    for (int p = 0; p < 2; p++) {
        int64_t next = tl_store_next_offset(s[p]);
        tl_buf_append(out, &next, sizeof(next));
        tl_store_close(s[p]);
    }
}

/* The runs whose state directories are a and b left the same state. */
static void assert_same_state(const char *a, const char *b)
{
    tl_buf da = {0}, db = {0};
    state_dump(a, &da);
    state_dump(b, &db);
    if (da.len != db.len || memcmp(da.data, db.data, da.len) != 0)
        fail_msg("the state in %s differs from that in %s", b, a);
    tl_buf_free(&da);
    tl_buf_free(&db);
}

static void boundaries(const char *const *kvs)
{
    static const int sizes[] = {NEV, 1, 7, 1};
    static run runs[4];
    for (int k = 0; k < 4; k++) {
        run *r = &runs[k];
        run_init(r, evs, NEV, sizes[k], kvs);
        if (k == 3) r->o.cache_bytes = 1;   /* every record evicted after each batch */
        assert_int_equal(run_go(r), 0);
        const tl_runtime_stats *st = tl_runtime_stats_get(r->rt);
        assert_int_equal(st->batches, (NEV + sizes[k] - 1) / sizes[k]);
        assert_int_equal(r->src.commits, (NEV + sizes[k] - 1) / sizes[k]);
        assert_int_equal(st->events, NEV);
        tl_runtime_destroy(r->rt);
        r->rt = NULL;
    }
    assert_true(runs[0].ms.count[MS_INTEREST] > 0);
    assert_true(runs[0].ms.count[MS_ATTRIBUTION] > 0);
    for (int k = 1; k < 4; k++) {
        char why[128] = "";
        int at = ms_compare(&runs[0].ms, &runs[k].ms, why, sizeof(why));
        if (at >= 0)
            fail_msg("run %d (batch size %d): output %d differs (%s)", k, sizes[k], at, why);
        assert_same_state(runs[0].dir, runs[k].dir);
    }
    for (int k = 0; k < 4; k++) run_fini(&runs[k]);
}

static void test_batch_boundaries(void **state)
{
    (void)state;
    boundaries(NULL);
}

static void test_batch_boundaries_all_dims(void **state)
{
    (void)state;
    static const char *const kvs[] = {"features.dims=category,item,channel",
                                      "attribution.max.touchpoints=3",
                                      "attribution.lookback.ms=43200000", NULL};
    boundaries(kvs);
}

/* ---- failures -------------------------------------------------------------------------- */

static tl_event small[12];

/* 12 events on partition 0, offsets 100..111, all at one ts: batch 1 (5 events) is
 * a, a, a, b, b; batch 2 is a, a, c, c, c; batch 3 is a, b. */
static void gen_small(void)
{
    static const char *const who[12] = {"a", "a", "a", "b", "b", "a", "a", "c", "c", "c", "a", "b"};
    static char ids[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%d", i);
        small[i] = (tl_event){.event_id = ids[i],
                              .user_id = who[i],
                              .item_id = "it",
                              .category_id = "cat",
                              .type = TL_CLICK,
                              .ts = 1600000000000LL,
                              .partition = 0,
                              .offset = 100 + i};
    }
}

/* A run over the twelve small events in batches of 5, with the default configuration
 * plus setting (NULL: none). */
static void run_init_small(run *r, const char *setting)
{
    const char *const kvs[] = {setting, NULL};
    gen_small();
    run_init(r, small, 12, 5, kvs);
}

/* The store of partition 0 in dir has no offset and no record of user. */
static void assert_no_state(const char *dir, const char *user)
{
    tl_store *s = open_store(dir, 0);
    assert_int_equal(tl_store_next_offset(s), -1);
    assert_null(tl_store_peek(s, user));
    tl_store_close(s);
}

/* Runs the small input with kvs, the sink's flushes returning the n codes of script (then
 * TL_OK); returns run_go's result. */
static int run_flushes(run *r, const char *kvs, const tl_rc *script, int n)
{
    run_init_small(r, kvs);
    assert_int_equal(ms_script_flushes(&r->ms, script, n), 0);
    return run_go(r);
}

/* State written at every commit (state.flush.interval.ms=0): a failed sink flush in
 * batch 2 leaves the store at batch 1. */
static void test_flush_error(void **state)
{
    (void)state;
    run r;
    assert_int_equal(
        run_flushes(&r, "state.flush.interval.ms=0", (const tl_rc[]){TL_OK, TL_ERROR}, 2), -1);
    assert_int_equal(r.ms.flushes, 2);
    assert_int_equal(r.src.commits, 1);      /* the failed batch is not acknowledged */
    assert_int_equal(r.src.committed[0], 105);
    assert_int_equal(tl_runtime_stats_get(r.rt)->batches, 1);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), 105);
    run_fini(&r);

    /* on disk: the first batch's state and offset, nothing of the second */
    tl_store *s = open_store(r.dir, 0);
    assert_int_equal(tl_store_next_offset(s), 105);
    tl_user *a = tl_store_peek(s, "a");
    assert_non_null(a);
    tl_interest *e = tl_user_find_interest(a, TL_DIM_CATEGORY, "cat");
    assert_non_null(e);
    assert_true(e->f == 3);     /* three events at one ts, no decay */
    assert_non_null(tl_store_peek(s, "b"));
    assert_null(tl_store_peek(s, "c"));
    tl_store_close(s);
}

/* State written rarely (an hour): batch 1 succeeds but its state is not yet due, and
 * a failure in batch 2 leaves the store exactly as it was before the run. */
static void test_flush_error_deferred_state(void **state)
{
    (void)state;
    run r;
    assert_int_equal(
        run_flushes(&r, "state.flush.interval.ms=3600000", (const tl_rc[]){TL_OK, TL_ERROR}, 2),
        -1);
    assert_int_equal(r.src.commits, 1);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), -1);
    run_fini(&r);
    assert_no_state(r.dir, "a");
}

/* The same interval without failures: one state write, at the end of the input. */
static void test_deferred_state_written_at_end(void **state)
{
    (void)state;
    run r;
    run_init_small(&r, "state.flush.interval.ms=3600000");
    assert_int_equal(run_go(&r), 0);
    tl_store *s0 = tl_runtime_store(r.rt, 0);
    assert_int_equal(tl_store_next_offset(s0), 112);
    tl_store_stats st;
    tl_store_stats_get(s0, &st);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(r.src.commits, 3);
    run_fini(&r);
    tl_store *s = open_store(r.dir, 0);
    assert_int_equal(tl_store_next_offset(s), 112);
    tl_interest *e = tl_user_find_interest(tl_store_peek(s, "a"), TL_DIM_CATEGORY, "cat");
    assert_non_null(e);
    assert_true(e->f == 6);
    assert_non_null(tl_store_peek(s, "c"));
    tl_store_close(s);
}

/* A failure on the very first flush leaves the store without any offset. */
static void test_flush_error_first_batch(void **state)
{
    (void)state;
    run r;
    assert_int_equal(run_flushes(&r, "state.flush.interval.ms=0", (const tl_rc[]){TL_ERROR}, 1),
                     -1);
    assert_int_equal(r.src.commits, 0);
    tl_store *s0 = tl_runtime_store(r.rt, 0);
    assert_non_null(s0);
    assert_int_equal(tl_store_next_offset(s0), -1);
    run_fini(&r);
    assert_no_state(r.dir, "a");
}

static void test_flush_retry(void **state)
{
    (void)state;
    run r;
    assert_int_equal(run_flushes(&r, NULL, (const tl_rc[]){TL_OK, TL_RETRY, TL_RETRY}, 3), 0);
    const tl_runtime_stats *st = tl_runtime_stats_get(r.rt);
    assert_int_equal(st->flush_retries, 2);
    assert_int_equal(st->batches, 3);
    assert_true(r.ms.flushes >= 5);   /* 1 + 3 (two retries) + 1 */
    assert_int_equal(r.src.commits, 3);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), 112);
    /* all 12 deltas, the retried batch's outputs emitted once */
    assert_int_equal(r.ms.count[MS_INTEREST], 12);
    run_fini(&r);
}

/* ---- dead letters ------------------------------------------------------------------------- */

static void test_bad_records(void **state)
{
    (void)state;
    /* batch 1 (5 events) carries a malformed record of partition 1; after the last
     * event come a missing-field record of partition 0 and one more of partition 1 */
    static const mem_bad bad[] = {
        {.before = 2, .reason = TL_DLQ_MALFORMED, .partition = 1, .offset = 40},
        {.before = 12, .reason = TL_DLQ_MISSING_FIELD, .partition = 0, .offset = 112},
        {.before = 12, .reason = TL_DLQ_MALFORMED, .partition = 1, .offset = 41},
    };
    run r;
    run_init_small(&r, NULL);
    r.src.bad = bad;
    r.src.n_bad = 3;
    run_start(&r);
    run_assign(&r, 2);   /* partition 1 has only dead letters: its store comes from here */
    assert_int_equal(run_loop(&r), 0);

    assert_int_equal(r.ms.count[MS_DLQ], 3);
    const ms_record *d = ms_nth(&r.ms, MS_DLQ, 0);
    assert_int_equal(d->dlq.reason, TL_DLQ_MALFORMED);
    assert_int_equal(d->dlq.partition, 1);
    assert_int_equal(d->dlq.offset, 40);
    assert_string_equal(d->dlq.error, "test: bad record");
    assert_int_equal(d->dlq.payload_len, 8);
    assert_memory_equal(d->dlq.payload, "\x01garbage", 8);
    /* dead letters of a batch come before its events' outputs */
    assert_int_equal(r.ms.rec[0].kind, MS_DLQ);
    assert_int_equal(ms_nth(&r.ms, MS_DLQ, 1)->dlq.reason, TL_DLQ_MISSING_FIELD);

    const tl_runtime_stats *st = tl_runtime_stats_get(r.rt);
    assert_int_equal(st->bad_total, 3);
    assert_int_equal(st->bad[TL_DLQ_MALFORMED], 2);
    assert_int_equal(st->bad[TL_DLQ_MISSING_FIELD], 1);
    assert_int_equal(st->bad[TL_DLQ_NOT_FRAMED], 0);
    assert_int_equal(st->events, 12);
    assert_int_equal(r.ms.count[MS_INTEREST], 12);
    /* the offsets move past the dead letters too: in the source's commits ... */
    assert_int_equal(r.src.committed[0], 113);
    assert_int_equal(r.src.committed[1], 42);
    /* ... and in the stores */
    assert_non_null(tl_runtime_store(r.rt, 1));
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), 113);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 1)), 42);
    run_fini(&r);
}

/* A batch of nothing but a bad record still commits it to the source. */
static void test_bad_only(void **state)
{
    (void)state;
    static const mem_bad bad[] = {
        {.before = 0, .reason = TL_DLQ_BAD_TIMESTAMP, .partition = 0, .offset = 9},
    };
    run r;
    run_init(&r, NULL, 0, 5, NULL);
    r.src.bad = bad;
    r.src.n_bad = 1;
    assert_int_equal(run_go(&r), 0);
    assert_int_equal(r.ms.count[MS_DLQ], 1);
    assert_int_equal(r.ms.n, 1);
    assert_int_equal(tl_runtime_stats_get(r.rt)->bad[TL_DLQ_BAD_TIMESTAMP], 1);
    assert_int_equal(tl_runtime_stats_get(r.rt)->batches, 1);
    assert_int_equal(r.src.commits, 1);
    assert_int_equal(r.src.committed[0], 10);
    run_fini(&r);
}

/* ---- outputs in flight (a sink with progress()) ------------------------------------ */

/* Acknowledgements that lag behind, or come only when the runtime blocks on flush()
 * (after 32 batches in flight): commits only ever cover acknowledged outputs (checked
 * at every commit by memsrc), every batch is committed once, in order, up to the
 * last offsets, and outputs and state equal those of a plain run. */
static void inflight(int stall, int batch, const char *interval, int expect_unacked_commits)
{
    const char *kvs[] = {interval, NULL};
    static run ref, r;
    run_init(&ref, evs, NEV, NEV, kvs);
    assert_int_equal(run_go(&ref), 0);
    tl_runtime_destroy(ref.rt);
    ref.rt = NULL;

    run_init(&r, evs, NEV, batch, kvs);
    ms_use_progress(&r.ms);
    r.ms.progress_stall = stall;
    assert_int_equal(run_go(&r), 0);
    int batches = (NEV + batch - 1) / batch;
    assert_int_equal(tl_runtime_stats_get(r.rt)->batches, batches);
    assert_int_equal(r.src.commits, batches);
    assert_int_equal(r.src.committed[0], next_off[0]);
    assert_int_equal(r.src.committed[1], next_off[1]);
    assert_true(r.ms.progress_calls > 0);
    /* lagging acks: some batches were committed while later outputs were in flight */
    if (expect_unacked_commits) assert_true(r.src.with_unacked > 0);
    /* stalled acks: the runtime kept many batches in flight between flushes */
    if (stall) assert_true(r.ms.flushes >= 1 && r.ms.flushes < batches / 4);
    assert_int_equal(r.ms.acked, (uint64_t)r.ms.n);
    tl_runtime_destroy(r.rt);
    r.rt = NULL;

    char why[128] = "";
    int at = ms_compare(&ref.ms, &r.ms, why, sizeof(why));
    if (at >= 0) fail_msg("output %d differs from the plain run (%s)", at, why);
    assert_same_state(ref.dir, r.dir);
    run_fini(&ref);
    run_fini(&r);
}

static void test_inflight_lagging_acks(void **state)
{
    (void)state;
    inflight(0, 7, "state.flush.interval.ms=3600000", 1);
}

static void test_inflight_lagging_acks_state_every_batch(void **state)
{
    (void)state;
    /* state due at every batch: the runtime waits for all acks each time */
    inflight(0, 7, "state.flush.interval.ms=0", 0);
}

static void test_inflight_stalled_acks(void **state)
{
    (void)state;
    inflight(1, 1, "state.flush.interval.ms=3600000", 0);
}

/* progress() failing: the run stops with -1, nothing unacknowledged was committed
 * (memsrc checks) and no state was written. */
static void test_inflight_progress_error(void **state)
{
    (void)state;
    static const char *const hourly[] = {"state.flush.interval.ms=3600000", NULL};
    run r;
    run_init(&r, evs, NEV, 7, hourly);
    ms_use_progress(&r.ms);
    r.ms.progress_fail_at = 20;
    assert_int_equal(run_go(&r), -1);
    assert_true(r.src.commits < (NEV + 6) / 7);
    assert_int_equal(tl_store_next_offset(tl_runtime_store(r.rt, 0)), -1);
    run_fini(&r);
    assert_no_state(r.dir, user_ids[0]);
}

/* ---- stop ------------------------------------------------------------------------------ */

static void test_stop_before_start(void **state)
{
    (void)state;
    run r;
    run_init_small(&r, NULL);
    r.rt = tl_runtime_new(&r.o, &r.ms.sink, r.p.stages, r.p.n_stages);
    tl_source src = memsrc_source(&r.src);
    volatile sig_atomic_t stop = 1;
    assert_int_equal(tl_runtime_run(r.rt, &src, &stop), 0);
    assert_int_equal(r.src.polls, 0);
    assert_int_equal(r.ms.n, 0);
    run_fini(&r);
}

/* exactly_once is asked for, not inferred from the sink: a sink without transactions
 * (no begin, emit_state, commit) makes the run fail before it reads anything. */
static void test_exactly_once_needs_transactions(void **state)
{
    (void)state;
    run r;
    run_init_small(&r, NULL);
    r.o.delivery = TL_DELIVERY_EXACTLY_ONCE;
    run_start(&r);
    tl_source src = memsrc_source(&r.src);
    assert_int_equal(tl_runtime_run(r.rt, &src, NULL), -1);
    assert_int_equal(r.src.polls, 0);
    assert_int_equal(r.ms.n, 0);
    run_fini(&r);
}

/* The caches' budget holds between flushes too: with no room left (and before the first
 * store is open), a poll asks for at most a thousand events (each may bring a new user's
 * record), and the state written is the same as with room for everything. */
enum {
    NWIDE = 2500
};
static tl_event wide[NWIDE];
static char wide_ids[NWIDE][16], wide_users[NWIDE][16];

/* NWIDE browses, each of a new user. */
static void wide_init(void)
{
    for (int i = 0; i < NWIDE; i++) {
        snprintf(wide_ids[i], sizeof(wide_ids[i]), "w-%d", i);
        snprintf(wide_users[i], sizeof(wide_users[i]), "wu-%d", i);   /* every one new */
        wide[i] = (tl_event){.event_id = wide_ids[i],
                             .user_id = wide_users[i],
                             .item_id = "i",
                             .category_id = "c",
                             .type = TL_BROWSE,
                             .ts = 1500000000000LL + i * 1000LL,
                             .partition = 0,
                             .offset = i};
    }
}

static void test_cache_bounds_batches(void **state)
{
    (void)state;
    wide_init();
    static run runs[2];
    for (int k = 0; k < 2; k++) {
        run *r = &runs[k];
        run_init(r, wide, NWIDE, 100000, NULL);
        if (k == 1) r->o.cache_bytes = 1;   /* never any room */
        assert_int_equal(run_go(r), 0);
        const tl_runtime_stats *st = tl_runtime_stats_get(r->rt);
        assert_int_equal(st->events, NWIDE);
        /* the first batch is small either way: no store is open before it */
        assert_int_equal(st->batches, k == 0 ? 2 : (NWIDE + 999) / 1000);
        tl_runtime_destroy(r->rt);
        r->rt = NULL;
    }
    assert_same_state(runs[0].dir, runs[1].dir);
    for (int k = 0; k < 2; k++) run_fini(&runs[k]);
}

/* The process over its memory bound (its resident size when the first store opened,
 * plus the state's settings): here, memory taken after the store opened, past the small
 * settings of the second run. Its cache gives its budget up, down to half, and the state
 * is the same as the first run's, whose defaults leave room. */
static void test_memory_bound_squeezes_cache(void **state)
{
    (void)state;
    static const char *const tight[] = {"state.cache.mb=1", "state.memtable.mb=1",
                                        "state.block.cache.mb=1", NULL};
    static run runs[2];
    size_t ballast = 32 << 20;
    wide_init();
    for (int k = 0; k < 2; k++) {
        run *r = &runs[k];
        run_init(r, wide, NWIDE, 100000, k ? tight : NULL);
        run_start(r);
        run_assign(r, 1);
        char *b = k ? tl_xmalloc(ballast) : NULL;
        if (b) memset(b, 1, ballast); /* resident */
        assert_int_equal(run_loop(r), 0);
        tl_store_stats st;
        tl_store_stats_get(tl_runtime_store(r->rt, 0), &st);
        assert_int_equal(st.cache_budget, k ? r->o.cache_bytes / 2 : r->o.cache_bytes);
        assert_int_equal(st.cache_bytes > 0, 1);
        free(b);
        tl_runtime_destroy(r->rt);
        r->rt = NULL;
    }
    assert_int_equal(runs[1].o.cache_bytes, 1 << 20);
    assert_same_state(runs[0].dir, runs[1].dir);
    for (int k = 0; k < 2; k++) run_fini(&runs[k]);
}

/* ---- exactly_once: the commit interval ------------------------------------------------- */

/* A transactional memory sink whose commits take commit_ms (as a broker's would), over a
 * source that has an event ready every 6 ms. */
typedef struct txsink {
    memsink ms;
    tl_sink sink;
    int commit_ms, begins, commits;
    int64_t commit_at[64];   /* when each commit was asked for */
} txsink;

static tl_rc tx_begin(void *ctx)
{
    ((txsink *)ctx)->begins++;
    return TL_OK;
}

static tl_rc tx_emit_state(void *ctx, int32_t partition, const char *key, const void *value,
                           size_t len)
{
    (void)ctx, (void)partition, (void)key, (void)value, (void)len;
    return TL_OK;
}

static tl_rc tx_commit(void *ctx, const int64_t *next, int n, int64_t *changelog_next)
{
    txsink *t = ctx;
    (void)next;
    if (t->commits < 64) t->commit_at[t->commits] = tl_mono_ns();
    t->commits++;
    for (int p = 0; p < n; p++) changelog_next[p] = -1;
    tl_sleep_ms(t->commit_ms);   /* the broker's part of a commit */
    t->ms.acked = (uint64_t)t->ms.n;
    return TL_OK;
}

static int trickle_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    (void)max, (void)timeout_ms;
    tl_sleep_ms(6);   /* the next event arrives */
    return memsrc_poll(ctx, b, 1, 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Runs NEV / 2 events through exactly_once with commit.interval.ms=interval_ms and commits
 * of commit_ms; returns the shortest and the median time between the starts of
 * consecutive commits (the last, at the end of the input, left out). */
static void commit_gaps(int interval_ms, int commit_ms, double *min_ms, double *median_ms)
{
    run r;
    char setting[64];
    snprintf(setting, sizeof(setting), "commit.interval.ms=%d", interval_ms);
    const char *const kvs[] = {setting, NULL};
    run_init(&r, evs, NEV / 2, 100000, kvs);
    r.o.delivery = TL_DELIVERY_EXACTLY_ONCE;
    static txsink t;
    memset(&t, 0, sizeof(t));
    t.ms = r.ms;   /* the records go to r.ms's arrays through t.ms */
    t.commit_ms = commit_ms;
    t.sink = t.ms.sink;
    t.sink.ctx = &t;
    t.sink.begin = tx_begin;
    t.sink.emit_state = tx_emit_state;
    t.sink.commit = tx_commit;
    /* the memory sink's own callbacks take its own struct: t.ms is first in txsink */
    r.src.ms = &t.ms;
    r.rt = tl_runtime_new(&r.o, &t.sink, r.p.stages, r.p.n_stages);
    assert_non_null(r.rt);
    tl_source src = {
        .name = "trickle", .ctx = &r.src, .poll = trickle_poll, .commit = memsrc_commit};
    assert_int_equal(tl_runtime_run(r.rt, &src, NULL), 0);
    assert_int_equal(tl_runtime_stats_get(r.rt)->events, NEV / 2);
    assert_int_equal(t.ms.count[MS_INTEREST] > 0, 1);
    assert_int_equal(t.begins, t.commits);
    int n = (t.commits < 64 ? t.commits : 64) - 2;   /* gaps between all but the last */
    assert_true(n >= 3);
    int64_t gaps[64];
    for (int i = 0; i < n; i++) gaps[i] = t.commit_at[i + 1] - t.commit_at[i];
    qsort(gaps, (size_t)n, sizeof(*gaps), cmp_i64);
    *min_ms = (double)gaps[0] / 1e6;
    *median_ms = (double)gaps[n / 2] / 1e6;
    r.ms = t.ms;
    run_fini(&r);
}

/* commit.interval.ms runs from one commit's start to the next: events that arrived while
 * a transaction was committing have waited since it began, so the next one commits an
 * interval after that, not an interval after its first event was read (which would be
 * interval + commit time: 370 ms here). It stays open for at least half an interval, so
 * commits longer than that (the second case) make transactions of half an interval
 * (300 + 150 ms apart; 600 counted from the first event, a poll each with no floor). The
 * medians, and bounds between the two rules, leave room for a busy machine's
 * scheduling. */
static void test_commit_interval_counts_from_commit_start(void **state)
{
    (void)state;
    double lo, mid;
    commit_gaps(300, 70, &lo, &mid);
    assert_true(lo >= 299.0);
    assert_true(mid < 360.0);
    commit_gaps(300, 300, &lo, &mid);
    assert_true(lo >= 449.0);
    assert_true(mid < 580.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_every_event),
        FX_TEST(test_batch_boundaries),
        FX_TEST(test_batch_boundaries_all_dims),
        FX_TEST(test_flush_error),
        FX_TEST(test_flush_error_deferred_state),
        FX_TEST(test_deferred_state_written_at_end),
        FX_TEST(test_flush_error_first_batch),
        FX_TEST(test_flush_retry),
        FX_TEST(test_bad_records),
        FX_TEST(test_bad_only),
        FX_TEST(test_inflight_lagging_acks),
        FX_TEST(test_inflight_lagging_acks_state_every_batch),
        FX_TEST(test_inflight_stalled_acks),
        FX_TEST(test_inflight_progress_error),
        FX_TEST(test_stop_before_start),
        FX_TEST(test_exactly_once_needs_transactions),
        FX_TEST(test_cache_bounds_batches),
        FX_TEST(test_memory_bound_squeezes_cache),
        FX_TEST(test_commit_interval_counts_from_commit_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
