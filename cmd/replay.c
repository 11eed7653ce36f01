/*
 * replay.c -- `tally replay`: the same stages as `run`, over a file, with the outputs
 * as JSON lines (app/file_app.c). Batch backfills and the proof that the stream and a
 * batch agree.
 */
#define _XOPEN_SOURCE 700
#include "cmd.h"
#include "progress.h"
#include "lib/log.h"
#include "lib/util.h"
#include "app/file_app.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: tally replay --input FILE --format canonical|taobao|jsonl --output FILE.jsonl\n"
    "                    [--strict] [--quiet] [-c FILE] [-X key=value ...]\n"
    "\n"
    "Runs the processing stages over a file and writes every output record as one JSON\n"
    "object per line (\"type\": \"interest_delta\" | \"attribution\" | ...), with the\n"
    "field names of the Avro schemas. FILE may be - for stdin/stdout. Bad rows are\n"
    "reported with their line and skipped (counted), or stop the replay with --strict.\n"
    "State lives in a temporary directory unless -X state.dir=DIR is given.\n"
    "\n"
    "  --input FILE     events to replay\n"
    "  --format F       canonical (CSV with header event_id,user_id,item_id,category_id,\n"
    "                   type,ts,channel,dwell_ms,value), taobao (user_id,item_id,\n"
    "                   category_id,behavior,ts_seconds) or jsonl (BehaviorEvent fields)\n"
    "  --output FILE    JSON lines out\n"
    "  --strict         stop at the first bad row\n"
    "  --quiet          no progress line (there is one only on a terminal)\n"
    "  --export-examples F.csv\n"
    "                   also write every example the model learns from: time, label,\n"
    "                   weight, its score before learning, the running rate, features\n"
    "  -c FILE          configuration file (key=value)\n"
    "  -X key=value     one configuration key (see tally config list)\n";

typedef struct replay_progress {
    tl_progress p;
    tl_runtime *rt;
    tl_source *src;
} replay_progress;

/* The runtime's once-a-second tick: the progress line. */
static void progress_tick(void *arg)
{
    replay_progress *rp = arg;
    if (!rp->rt) return;
    uint64_t bytes;
    int64_t size;
    tl_file_source_progress(rp->src, &bytes, &size);
    tl_progress_update(&rp->p, tl_runtime_stats_get(rp->rt)->events, bytes, size);
}

/* Before a replay with the model on: a file whose events all lie between two points of
 * the control grid can give the model no control moment (one is a grid point a user lives
 * through, with events on both sides), so every model credit would be linear. Said before
 * the work starts, from one quiet pass over the file; stdin is not read twice. */
static void warn_short_span(const char *input, tl_file_format fmt, const tl_config *c,
                            int64_t interval_ms)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    int64_t lo, hi;
    uint64_t n;
    if (!strcmp(input, "-") ||
        tl_file_source_span(input, fmt, (size_t)ac.max_string_bytes, &lo, &hi, &n) != 0 || n == 0 ||
        tl_floor_to(lo, interval_ms) + interval_ms < hi)
        return;
    fprintf(stderr,
            "warning: %s spans %.1f h of event time, and no multiple of "
            "model.control.interval.ms (%.1f h) lies inside it: the model can learn from no "
            "control moment, so every model credit will be linear (model_status no_negatives); "
            "a smaller model.control.interval.ms gives it some\n",
            input, (double)(hi - lo) / 3.6e6, (double)interval_ms / 3.6e6);
}

int tl_cmd_replay(int argc, char **argv)
{
    struct {
        const char *input, *format, *output, *export_examples;
        int strict, quiet;
    } a = {0};
    const tl_cmd_opt opts[] = {
        {"--input", &a.input, NULL},
        {"--format", &a.format, NULL},
        {"--output", &a.output, NULL},
        {"--strict", NULL, &a.strict},
        {"--quiet", NULL, &a.quiet},
        {"--export-examples", &a.export_examples, NULL},
        {NULL, NULL, NULL},
    };
    tl_config *c = tl_cmd_opts_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    int rc = 1;
    char err[600];
    tl_file_app fa = {0};
    FILE *examples = NULL;

    if (!a.input || !a.format || !a.output) {
        rc = tl_cmd_usage_error(usage, "--input, --format and --output are required");
        goto done;
    }
    int fmt = tl_file_format_parse(a.format);
    if (fmt < 0) {
        rc = tl_cmd_usage_error(usage, "unknown format '%s'", a.format);
        goto done;
    }
    replay_progress prog = {0};
    tl_file_app_args fargs = {.input = a.input,
                              .format = (tl_file_format)fmt,
                              .strict = a.strict,
                              .output = a.output,
                              .tick = progress_tick,
                              .tick_arg = &prog};
    int orc = tl_file_app_open(&fa, c, &fargs, err, sizeof(err));
    if (orc != 0) {
        fprintf(stderr, "tally: %s\n", err);
        rc = orc;
        goto done;
    }
    tl_pipeline *p = &fa.p;
    if (a.export_examples) {
        if (!p->model || !p->mcfg.enabled) {
            rc = tl_cmd_usage_error(usage, "--export-examples needs model.enabled=true");
            goto done;
        }
        examples = fopen(a.export_examples, "w");
        if (!examples) {
            fprintf(stderr, "tally: cannot write %s\n", a.export_examples);
            goto done;
        }
        tl_model_export_examples(p->model, examples);
    }
    if (p->model && p->mcfg.enabled)
        warn_short_span(a.input, (tl_file_format)fmt, c, p->mcfg.control_interval_ms);
    if (tl_model_categories(p->model) && *p->ccfg.embeddings_topic)
        fprintf(stderr,
                "tally: warning: categories.embeddings.topic (%s) is read by tally run only: "
                "this replay learns every category's embedding itself\n",
                p->ccfg.embeddings_topic);
    prog.src = fa.src;
    tl_progress_init(&prog.p, "replay", "events", a.quiet);
    prog.rt = fa.rt;
    tl_app_signals();
    int64_t t0 = tl_mono_ns();
    int run = tl_file_app_run(&fa, err, sizeof(err));
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    tl_progress_end(&prog.p);
    if (run != 0) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    uint64_t rows, bad;
    tl_file_source_stats(fa.src, &rows, &bad);
    tl_sink_counts sc;
    tl_sink_counts_get(fa.sink, &sc);
    const tl_runtime_stats *st = tl_runtime_stats_get(fa.rt);
    fprintf(stderr,
            "replay: %" PRIu64 " events from %" PRIu64 " rows (%" PRIu64 " bad rows skipped) in "
            "%.2f s (%.0f events/s)\n"
            "        %" PRIu64 " interest deltas, %" PRIu64 " attributions; %" PRIu64
            " purchases, %" PRIu64 " without touchpoints\n",
            st->events, rows, bad, secs, secs > 0 ? (double)st->events / secs : 0.0, sc.interest,
            sc.attribution, p->astats.purchases, p->astats.no_touchpoints);
    tl_model_report mr;
    if (p->model) tl_model_report_get(p->model, &mr);
    if (p->model && p->mcfg.enabled) {
        fprintf(stderr,
                "        model: %" PRIu64 " examples (%" PRIu64 " purchases), version %" PRIu64
                "; progressive log-loss %.4f and AUC %.4f over the last %d, against the running "
                "rate's %.4f and %.4f\n"
                "        model credits: %" PRIu64 " attributions (%" PRIu64 " warming up, %" PRIu64
                " before any negative example, %" PRIu64 " fell back to linear, %" PRIu64
                " sampled)\n",
                mr.examples, mr.positives, mr.version, mr.logloss, mr.auc, p->mcfg.metrics_window,
                mr.baseline_logloss, mr.baseline_auc, mr.credited, mr.warming_up, mr.no_negatives,
                mr.fallbacks, mr.sampled);
        if (p->icfg.enabled && mr.intent_outcomes)
            fprintf(stderr,
                    "        intent: %" PRIu64 " outcomes learned (%" PRIu64
                    " purchases within intent.window.ms); progressive log-loss %.4f and AUC "
                    "%.4f of the intents scored for them\n",
                    mr.intent_outcomes, mr.intent_positives, mr.intent_logloss, mr.intent_auc);
        tl_cat_model *cm = tl_model_categories(p->model);
        if (cm) {
            tl_cat_stats cs;
            tl_cat_model_stats(cm, &cs);
            double n = cs.scored ? (double)cs.scored : 1;
            fprintf(stderr,
                    "        next categories: %" PRIu64 " records; %" PRIu64
                    " categories learned (%" PRIu64 " events not: categories.max); of %" PRIu64
                    " next events scored, %.1f%% in the first category, %.1f%% in the first 5 "
                    "(the user's last category: %.1f%%), log-loss %.4f\n",
                    sc.next_categories, cs.categories, cs.unlearned, cs.scored,
                    100 * (double)cs.hit1 / n, 100 * (double)cs.hit5 / n,
                    100 * (double)cs.last_hit / n, cs.logloss / n);
        }
        tl_cmd_print_channel_weights(stderr, p->model);
        tl_cmd_warn_no_negatives(&mr);
    }
    if (p->model && p->mcfg.markov_enabled) {
        fprintf(stderr, "        markov: %" PRIu64 " windows closed, %" PRIu64 " credit deltas",
                mr.markov_windows, mr.credit_deltas);
        if (mr.markov_dropped)
            fprintf(stderr, ", %" PRIu64 " journeys left out (too many states)", mr.markov_dropped);
        fputc('\n', stderr);
    }
    rc = 0;
    if (st->events == 0) rc = tl_cmd_nothing_valid(a.input, rows, bad);
done:
    if (tl_file_app_close(&fa, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: %s\n", err);
        rc = 1;
    }
    if (examples && fclose(examples) != 0) rc = 1;
    tl_config_destroy(c);
    return rc;
}
