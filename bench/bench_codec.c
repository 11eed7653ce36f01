/*
 * bench_codec.c -- per-record cost of tl_codec_decode on the fast path (writer schema
 * = reader schema) and on the generic avro-c path, for a typical record and a sparse
 * one (all optional fields null).
 *
 *   bench_codec [--records N] [--runs N]
 *
 * Each run decodes the same framed record N times (default 1,000,000) into an arena
 * reset every 1,000 records, as a batch would; the figure is the median over the runs
 * (default 5) of wall time / N. Prints one key=value line per record and path.
 */
#include "lib/arena.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now_ns(void) { return (double)tl_mono_ns(); }

/* Median ns per decode over runs runs of n decodes; -1 if a decode fails. */
static double measure(tl_codec *c, const tl_buf *rec, long n, int runs)
{
    tl_arena a;
    tl_arena_init(&a, 64 * 1024);
    double *t = tl_xcalloc((size_t)runs, sizeof(*t));
    char err[512];
    tl_dlq_reason reason;
    tl_event ev = {0};
    volatile int64_t sink = 0;
    for (int r = -1; r < runs; r++) {   /* run -1 warms caches and the writer entry */
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (tl_codec_decode(c, rec->data, rec->len, &ev, &a, &reason, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_codec: decode failed: %s\n", err);
                free(t);
                tl_arena_destroy(&a);
                return -1;
            }
            sink += ev.ts;
            if (i % 1000 == 999) tl_arena_reset(&a);
        }
        if (r >= 0) t[r] = (now_ns() - t0) / (double)n;
        tl_arena_reset(&a);
    }
    (void)sink;   /* only there so that the decodes are not optimised away */
    double med = bench_median(t, runs);
    free(t);
    tl_arena_destroy(&a);
    return med;
}

int main(int argc, char **argv)
{
    long n = 1000000;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--records")) n = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--runs")) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_codec [--records N] [--runs N]\n");
            return 2;
        }
    }
    if (n <= 0 || runs <= 0) return 2;
    char err[512];
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR};
    tl_schema_store *store = tl_schema_store_new(&o, err, sizeof(err));
    if (!store) {
        fprintf(stderr, "bench_codec: %s\n", err);
        return 1;
    }
    tl_codec *c = tl_codec_new(store, TALLY_SCHEMA_DIR "/" TL_EVENT_SCHEMA, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "bench_codec: %s\n", err);
        return 1;
    }
    const tl_event typical = {
        .event_id = "7f3c9a52-1d4e-4b8a-9c21-5e0f6a7b8c9d",
        .user_id = "user-0004817263",
        .item_id = "item-00918273",
        .category_id = "cat-0412",
        .channel = "search",
        .type = TL_CLICK,
        .ts = 1718035200123LL,
        .dwell_ms = 4200,
        .has_dwell = 1,
        .value = 24.99,
        .has_value = 1,
        .propensity = 0.137,
        .has_propensity = 1,
    };
    const tl_event sparse = {
        .event_id = "7f3c9a52-1d4e-4b8a-9c21-5e0f6a7b8c9d",
        .user_id = "user-0004817263",
        .item_id = "item-00918273",
        .type = TL_IMPRESSION,
        .ts = 1718035200123LL,
    };
    const struct {
        const char *name;
        const tl_event *ev;
    } recs[] = {
        {"typical", &typical},
        {"sparse", &sparse},
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof(recs) / sizeof(recs[0]); k++) {
        tl_buf b = {0};
        if (tl_codec_encode_event(c, TL_EVENT_SCHEMA_ID, recs[k].ev, &b) != 0) {
            fprintf(stderr, "bench_codec: cannot encode the %s record\n", recs[k].name);
            return 1;
        }
        tl_codec_set_fast_path(c, 1);
        double fast = measure(c, &b, n, runs);
        tl_codec_set_fast_path(c, 0);
        double generic = measure(c, &b, n, runs);
        if (fast < 0 || generic < 0) rc = 1;
        printf("record=%s bytes=%zu records=%ld runs=%d fast_ns=%.1f generic_ns=%.1f "
               "speedup=%.1f\n",
               recs[k].name, b.len, n, runs, fast, generic, fast > 0 ? generic / fast : 0.0);
        tl_buf_free(&b);
    }
    tl_codec_destroy(c);
    tl_schema_store_destroy(store);
    return rc;
}
