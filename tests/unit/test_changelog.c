/*
 * test_changelog.c -- engine/changelog.c: a transaction's changed users staged through the
 * sink's emit_state, the changelog offset a store reflects after the commit, and a replay
 * of the staged records rebuilding another store to the same state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/changelog.h"
#include "fixtures.h"
#include "lib/util.h"

/* What emit_state received, in order: the changelog as a list of records. */
#define MAX_RECS 16
typedef struct recorded {
    int n;
    int32_t partition[MAX_RECS];
    char key[MAX_RECS][32];
    tl_buf value[MAX_RECS];
} recorded;

static tl_rc record_state(void *ctx, int32_t partition, const char *key, const void *value,
                          size_t len)
{
    recorded *r = ctx;
    if (r->n == MAX_RECS) return TL_ERROR;
    r->partition[r->n] = partition;
    snprintf(r->key[r->n], sizeof(r->key[0]), "%s", key);
    tl_buf_clear(&r->value[r->n]);
    if (len) tl_buf_append(&r->value[r->n], value, len);
    r->n++;
    return TL_OK;
}

static tl_store *open_store(const char *sub, int32_t p)
{
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/%s", fx_tmpdir, sub);
    tl_store *s = tl_store_open(path, p, 1 << 20, err, sizeof(err));
    if (!s) fail_msg("open %s: %s", path, err);
    return s;
}

static void touch(tl_store *s, const char *user, const char *item, double f)
{
    tl_user *u = tl_store_get(s, user);
    assert_non_null(u);
    tl_interest *e = tl_user_add_interest(u, TL_DIM_ITEM, item);
    e->f = f;
    e->h = f / 2;
    e->t = 1000;
}

static void test_stage_commit_replay(void **state)
{
    char err[256];
    tl_store *stores[2] = {NULL, open_store("a", 1)};
    touch(stores[1], "u1", "i1", 1.5);
    touch(stores[1], "u2", "i2", 2.5);
    recorded rec = {0};
    tl_sink sink = {.ctx = &rec, .emit_state = record_state};

    /* Staged: each changed user once, to its store's partition; nothing for a NULL store. */
    assert_int_equal(tl_changelog_stage(stores, 2, &sink), 0);
    assert_int_equal(rec.n, 2);
    for (int i = 0; i < 2; i++) assert_int_equal(rec.partition[i], 1);
    assert_true((!strcmp(rec.key[0], "u1") && !strcmp(rec.key[1], "u2")) ||
                (!strcmp(rec.key[0], "u2") && !strcmp(rec.key[1], "u1")));
    assert_true(rec.value[0].len > 0 && rec.value[1].len > 0);
    /* Taken: a second stage without changes writes nothing. */
    assert_int_equal(tl_changelog_stage(stores, 2, &sink), 0);
    assert_int_equal(rec.n, 2);

    /* Committed: the store reflects the record before the next offset, once flushed. */
    assert_int_equal(tl_changelog_next_offset(stores[1]), 0);
    int64_t next[2] = {-1, 2};
    tl_changelog_committed(stores, 2, next);
    assert_int_equal(tl_store_flush(stores[1], 10, err, sizeof(err)), 0);
    assert_int_equal(tl_changelog_next_offset(stores[1]), 2);

    /* Replayed into an empty store: the same users with the same state. */
    tl_store *b = open_store("b", 1);
    tl_changelog_replay r;
    assert_int_equal(tl_changelog_replay_begin(&r, b, 1, 0, rec.n), 1);
    assert_int_equal(r.from, 0);
    for (int i = 0; i < rec.n; i++)
        assert_int_equal(tl_changelog_replay_apply(&r, rec.key[i], strlen(rec.key[i]),
                                                   rec.value[i].data, rec.value[i].len, i),
                         0);
    assert_int_equal(tl_changelog_replay_end(&r, 1), 0);
    assert_int_equal(r.applied, 2);
    assert_int_equal(tl_changelog_next_offset(b), rec.n);
    for (int i = 0; i < 2; i++) {
        const char *user = i ? "u2" : "u1";
        tl_user *want = tl_store_peek(stores[1], user), *got = tl_store_peek(b, user);
        assert_non_null(want);
        assert_non_null(got);
        tl_buf x = {0}, y = {0};
        tl_user_encode(want, &x);
        tl_user_encode(got, &y);
        fx_same_bytes_free(&x, &y);
    }
    /* Up to date: nothing to read. */
    assert_int_equal(tl_changelog_replay_begin(&r, b, 1, 0, rec.n), 0);
    /* A topic compacted past the store's offset: the replay starts at its first record. */
    tl_store *c = open_store("c", 1);
    assert_int_equal(tl_changelog_replay_begin(&r, c, 1, 1, rec.n), 1);
    assert_int_equal(r.from, 1);
    assert_int_equal(tl_changelog_replay_end(&r, 0), -1);   /* reading failed */

    tl_store_close(c);
    tl_store_close(b);
    tl_store_close(stores[1]);
    for (int i = 0; i < MAX_RECS; i++) tl_buf_free(&rec.value[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TMPDIR_TEST(test_stage_commit_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
