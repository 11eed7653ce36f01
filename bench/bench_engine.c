/*
 * bench_engine.c -- the engine's throughput: the replay-path stages (features,
 * attribution, Avro encoding of every output, RocksDB state with its flushes) over
 * generated events, on one thread, with no JSON formatting and no broker.
 *
 *   bench_engine [--events N] [--users N] [--cache-mb N] [--baseline] [-X key=value ...]
 *
 * Prints one line of key=value figures. --baseline drains the same generator with no
 * stage at all (the bare cost of making the events), so a run can report the ratio.
 * bench/run.py runs both several times and reports medians.
 */
#define _XOPEN_SOURCE 700
#include "app/config.h"
#include "lib/config.h"
#include "engine/runtime.h"
#include "lib/util.h"
#include "ingest/gen.h"
#include "model/pipeline.h"
#include "sink/sinks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
    tl_gen_params gp;
    tl_gen_params_default(&gp);
    gp.n_events = 10000000;
    gp.n_users = 1000000;
    gp.n_items = 1000000;
    gp.n_categories = 5000;
    long cache_mb = 1024;
    int baseline = 0;
    const char *sets[16];
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--baseline")) baseline = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "-X") && n_sets < 16) sets[n_sets++] = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--events"))
            gp.n_events = strtoull(argv[++i], 0, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--users"))
            gp.n_users = (uint32_t)strtoul(argv[++i], 0, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--cache-mb"))
            cache_mb = strtol(argv[++i], 0, 10);
        else {
            fprintf(stderr,
                    "usage: bench_engine [--events N] [--users N] [--cache-mb N] [--baseline] "
                    "[-X key=value ...]\n");
            return 2;
        }
    }
    char err[512], dir[] = "/tmp/tally-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    tl_config *c = tl_config_new(tl_app_config);
    char v[64];
    snprintf(v, sizeof(v), "%ld", cache_mb);
    if (tl_config_set(c, "state.dir", dir, "bench", err, sizeof(err)) ||
        tl_config_set(c, "state.cache.mb", v, "bench", err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int i = 0; i < n_sets; i++) {
        if (tl_config_set_kv(c, sets[i], "-X", err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    tl_pipeline p;
    if (tl_pipeline_init(&p, c, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    tl_runtime_opts o;
    tl_app_cfg ac;
    if (tl_app_cfg_load(&ac, c, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    tl_app_runtime_opts(&ac, &o);
    tl_sink *sink = tl_avro_sink_new(2, 3, 4, 12, 13);
    tl_runtime *rt = tl_runtime_new(&o, sink, p.stages, baseline ? 0 : p.n_stages);
    tl_source *src = tl_gen_source_new(&gp);

    int64_t t0 = tl_mono_ns();
    int rc = tl_runtime_run(rt, src, NULL);
    double secs = (double)(tl_mono_ns() - t0) / 1e9;

    const tl_runtime_stats *st = tl_runtime_stats_get(rt);
    tl_sink_counts sc;
    tl_sink_counts_get(sink, &sc);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model=%s mode=%s events=%" PRIu64 " users=%u seconds=%.3f events_per_s=%.0f "
           "interest_deltas=%" PRIu64 " attributions=%" PRIu64 " avro_bytes=%" PRIu64
           " peak_rss_mb=%.1f cache_mb=%ld\n",
           p.model && p.mcfg.enabled ? "on" : "off", baseline ? "baseline" : "engine", st->events,
           gp.n_users, secs, (double)st->events / secs, sc.interest, sc.attribution, sc.bytes,
           (double)ru.ru_maxrss / 1024.0, cache_mb);
    tl_gen_source_destroy(src);
    tl_runtime_destroy(rt);
    tl_pipeline_destroy(&p);
    tl_sink_destroy(sink);
    tl_config_destroy(c);
    tl_rmtree(dir);
    return rc == 0 ? 0 : 1;
}
