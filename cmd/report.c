/*
 * report.c -- `tally report`: its options, then the report itself (app/report.c).
 */
#include "cmd.h"
#include "app/report.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tally report --input FILE [--by channel|channel_group|category|campaign]\n"
    "                    [--window all|day|hour] [--from T] [--to T] [--methods M,...]\n"
    "                    [--format table|csv|json|html] [--output FILE] [--min-purchases N]\n"
    "                    [--spend FILE.csv]\n"
    "                    [-c FILE] [-X key=value ...]\n"
    "\n"
    "Sums the attribution records in FILE (a replay's output, or `tally consume` of the\n"
    "attribution and credit-delta topics; - for stdin) per dimension value, method and\n"
    "window: purchases, touchpoints, conversions (summed credits) and conversion value.\n"
    "\n"
    "  --by D          channel (default), channel_group (rollup.channel.groups), category,\n"
    "                  campaign (the touchpoints' campaign; no markov column)\n"
    "  --window W      all (default: one row per value over the range), day or hour (UTC)\n"
    "  --from T        purchases at or after T: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or ms\n"
    "  --to T          purchases before T\n"
    "  --methods M,... only these (default: every method in the input), e.g. linear,shapley,markov\n"
    "  --format F      table (default), csv, json or html (a page with a chart of the methods)\n"
    "  --output FILE   default: stdout\n"
    "  --min-purchases N  rows with fewer purchases are marked as too few for a stable\n"
    "                  answer (default 30)\n"
    "  --spend FILE    ad spend, CSV with the header date,channel,spend (date YYYY-MM-DD,\n"
    "                  UTC): cost per conversion and return on ad spend per method (by\n"
    "                  channel or channel_group, window all or day)\n";

int tl_cmd_report(int argc, char **argv)
{
    struct {
        const char *input, *by, *window, *from, *to, *methods, *format, *output, *min, *spend;
    } a = {0};
    const tl_cmd_opt opts[] = {
        {"--input", &a.input, NULL},
        {"--by", &a.by, NULL},
        {"--window", &a.window, NULL},
        {"--from", &a.from, NULL},
        {"--to", &a.to, NULL},
        {"--methods", &a.methods, NULL},
        {"--format", &a.format, NULL},
        {"--output", &a.output, NULL},
        {"--min-purchases", &a.min, NULL},
        {"--spend", &a.spend, NULL},
        {NULL, NULL, NULL},
    };
    tl_config *c = tl_cmd_opts_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    const tl_app_cfg ac = tl_app_cfg_of(c);
    int rc = 2;
    FILE *in = NULL, *out = NULL;
    char err[512] = "";
    tl_report_args ra = {.by = a.by,
                         .window = a.window,
                         .from = a.from,
                         .to = a.to,
                         .methods = a.methods,
                         .format = a.format,
                         .min = a.min,
                         .spend = a.spend,
                         .groups = ac.channel_groups};
    if (!a.input) {
        rc = tl_cmd_usage_error(usage, "--input is required");
        goto done;
    }
    /* the arguments first: a usage error before any file is touched */
    if ((rc = tl_report_check(&ra, err, sizeof(err))) != 0) {
        if (!strncmp(err, "configuration error", 19)) fprintf(stderr, "tally: %s\n", err);
        else rc = tl_cmd_usage_error(usage, "%s", err);
        goto done;
    }
    rc = 1;
    in = strcmp(a.input, "-") ? fopen(a.input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "tally report: cannot read %s\n", a.input);
        goto done;
    }
    out = a.output && strcmp(a.output, "-") ? fopen(a.output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "tally report: cannot write %s\n", a.output);
        goto done;
    }
    rc = tl_report_run(&ra, in, a.input, out, stderr, err, sizeof(err));
    if (rc) fprintf(stderr, "tally report: %s\n", err);
done:
    if (out && out != stdout && fclose(out) != 0) {
        fprintf(stderr, "tally report: error writing %s\n", a.output);
        rc = 1;
    }
    if (in && in != stdin) fclose(in);
    tl_config_destroy(c);
    return rc;
}
