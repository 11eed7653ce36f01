/*
 * fuzz_restore.c -- changelog restore (engine/state.h, tl_store_restore and
 * tl_store_restore_done, as ingest/kafka_changelog.c calls them for every record of the
 * compacted state topic) into a new RocksDB store, then the restored users read back
 * (tl_store_get, which decodes each stored record or quarantines it), their timers
 * (tl_store_next_due) and a flush.
 *
 * Input: changelog records, one after another, each
 *   key length (1 byte, 1..255; 0 is read as 1), key bytes,
 *   value length (2 bytes little-endian; 0xffff: a tombstone, value NULL), value bytes;
 * a record cut short by the end of the input is dropped. At most 64 records.
 *
 * Asserted (state.h is the contract):
 *   - restore and restore_done succeed, and the store then reflects the last record's
 *     changelog offset;
 *   - for every key without a NUL byte, tl_store_get returns a record (never NULL), and it
 *     is the key's last changelog value as tl_user_decode reads it (the same encoding)
 *     when that value decodes, else an empty user (a tombstone, an empty value, or a
 *     quarantined record);
 *   - tl_store_next_due hands out only users whose timer is due, each once it is
 *     disarmed, and ends;
 *   - the store flushes.
 * Opening a RocksDB store costs tens of milliseconds, so one store serves many inputs:
 * each input's keys get a prefix of their own ("<input number>:"), its changelog offsets
 * continue from the last input's, and every timer is handed out and disarmed before the
 * input ends, so no input sees another's state. The store is replaced by a new one every
 * STORE_INPUTS inputs, so a long run's database stays small.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/state.h"
#include "lib/util.h"

#define MAX_RECORDS 64
#define STORE_INPUTS 1000

typedef struct crec {
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;   /* NULL: tombstone */
    size_t vlen;
} crec;

static unsigned long n_inputs;
static tl_store *store;
static char dir[1100];
static int64_t next_offset;   /* the next changelog offset to restore at */

static void close_store(void)
{
    if (!store) return;
    tl_store_close(store);
    store = NULL;
    fuzz_rmtree(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

static int parse(const uint8_t *p, size_t n, crec *out)
{
    int k = 0;
    size_t i = 0;
    while (k < MAX_RECORDS && i < n) {
        size_t klen = p[i++];
        if (!klen) klen = 1;
        if (n - i < klen + 2) break;
        crec *r = &out[k];
        r->key = p + i;
        r->klen = klen;
        i += klen;
        size_t vlen = (size_t)p[i] | (size_t)p[i + 1] << 8;
        i += 2;
        if (vlen == 0xffff) {
            r->value = NULL;
            r->vlen = 0;
        } else {
            if (n - i < vlen) break;
            r->value = p + i;
            r->vlen = vlen;
            i += vlen;
        }
        k++;
    }
    return k;
}

static void encode_decoded(const uint8_t *v, size_t n, tl_buf *out, int *ok)
{
    tl_user u;
    memset(&u, 0, sizeof(u));
    *ok = v && n && tl_user_decode(&u, v, n) == 0;
    if (*ok) tl_user_encode(&u, out);
    tl_user_clear(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crec recs[MAX_RECORDS];
    int n = parse(data, size, recs);
    if (n == 0) return 0;

    char err[512] = "";
    if (!store || n_inputs % STORE_INPUTS == 0) {
        close_store();
        snprintf(dir, sizeof(dir), "%s/state-%lu", fuzz_tmpdir(), n_inputs / STORE_INPUTS);
        store = tl_store_open(dir, 0, 1 << 20, err, sizeof(err));
        FUZZ_CHECK(store != NULL, "%s", err);
        next_offset = 0;
        /* Registered after RocksDB's first use, so it runs before RocksDB's own
         * destructors at exit (atexit order is last in, first out). */
        static int registered;
        if (!registered++) atexit(close_store);
    }
    tl_store *s = store;
    char prefix[32];
    int plen = snprintf(prefix, sizeof(prefix), "%lu:", n_inputs++);
    int64_t first_offset = next_offset;
    next_offset += n;

    for (int i = 0; i < n; i++) {
        /* Exact-size copies: ASan sees a read past a value or key. */
        size_t klen = (size_t)plen + recs[i].klen;
        char *key = malloc(klen);
        memcpy(key, prefix, (size_t)plen);
        memcpy(key + plen, recs[i].key, recs[i].klen);
        uint8_t *value = recs[i].value ? malloc(recs[i].vlen ? recs[i].vlen : 1) : NULL;
        if (value && recs[i].vlen) memcpy(value, recs[i].value, recs[i].vlen);
        int rc =
            tl_store_restore(s, key, klen, value, recs[i].vlen, first_offset + i, err, sizeof(err));
        FUZZ_CHECK(rc == 0, "restore of record %d: %s", i, err);
        free(key);
        free(value);
    }
    FUZZ_CHECK(tl_store_restore_done(s, err, sizeof(err)) == 0, "restore_done: %s", err);
    FUZZ_CHECK(tl_store_changelog_offset(s) == first_offset + n - 1,
               "changelog offset %lld after records %lld..%lld",
               (long long)tl_store_changelog_offset(s), (long long)first_offset,
               (long long)(first_offset + n - 1));

    for (int i = 0; i < n; i++) {
        if (memchr(recs[i].key, '\0', recs[i].klen)) continue;
        int last = i;   /* the key's last record wins */
        for (int k = i + 1; k < n; k++)
            if (recs[k].klen == recs[i].klen && !memcmp(recs[k].key, recs[i].key, recs[i].klen))
                last = k;
        if (last != i) continue;
        char *id = malloc((size_t)plen + recs[i].klen + 1);
        memcpy(id, prefix, (size_t)plen);
        memcpy(id + plen, recs[i].key, recs[i].klen);
        id[plen + recs[i].klen] = '\0';
        tl_buf want = {0}, got = {0};
        int decodes;
        encode_decoded(recs[i].value, recs[i].vlen, &want, &decodes);
        tl_user *u = tl_store_get(s, id);
        FUZZ_CHECK(u != NULL, "tl_store_get(\"%s\") is NULL", id);
        if (decodes) {
            tl_user_encode(u, &got);
            FUZZ_CHECK(got.len == want.len && !memcmp(got.data, want.data, got.len),
                       "user %s: the restored record is not its last changelog value "
                       "(%zu bytes, expected %zu)",
                       id, got.len, want.len);
        } else {
            FUZZ_CHECK(u->n_ent == 0 && u->n_tp == 0 && u->n_attr == 0 && u->timer == 0,
                       "user %s: a value that does not decode restored as a record with %d "
                       "interests, %d touchpoints, %d attributions, timer %lld",
                       id, u->n_ent, u->n_tp, u->n_attr, (long long)u->timer);
        }
        tl_buf_free(&want);
        tl_buf_free(&got);
        free(id);
    }

    /* Every due user once, disarmed as it comes out. */
    int handed = 0;
    tl_user *u;
    while ((u = tl_store_next_due(s, INT64_MAX)) != NULL) {
        FUZZ_CHECK(u->timer != 0, "user %s handed out with no timer", u->user_id);
        tl_store_set_timer(s, u, 0);
        FUZZ_CHECK(++handed <= n, "more due users (%d) than records (%d)", handed, n);
    }
    FUZZ_CHECK(tl_store_flush(s, 1, err, sizeof(err)) == 0, "flush: %s", err);
    return 0;
}
