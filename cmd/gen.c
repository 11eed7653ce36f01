/*
 * gen.c -- `tally gen`: synthetic events as canonical CSV (ingest/gen.c makes them).
 */
#include "cmd.h"
#include "ingest/gen.h"
#include "ingest/gen_truth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tally gen [--events N] [--users N] [--items N] [--categories N] [--channels N]\n"
    "                 [--seed N] [--impressions] [--campaigns N] [--output FILE]\n"
    "\n"
    "Writes synthetic behaviour events as canonical CSV: Zipf item and category\n"
    "popularity, sessions, a Taobao-like funnel (about 89% browse, 5.5% add-to-cart,\n"
    "3% favorite, 2.3% purchase). The same seed gives the same bytes.\n"
    "\n"
    "  --events N       events to write (default 100000)\n"
    "  --users N        distinct users (default 10000)\n"
    "  --items N        distinct items (default 50000)\n"
    "  --categories N   distinct categories (default 1000)\n"
    "  --channels N     channels, 0 for none (default 5)\n"
    "  --seed N         random seed (default 1)\n"
    "  --impressions    also write IMPRESSION and CLICK events\n"
    "  --campaigns N    N campaigns per channel (<channel>-1 ...): each session has\n"
    "                   one of its channel's, on its impressions and clicks (without\n"
    "                   --impressions, on its first event); the events are otherwise\n"
    "                   the same as without\n"
    "  --output FILE    default: stdout\n"
    "\n"
    "usage: tally gen --truth TRUTH.json [--users N] [--days N] [--seed N] [--null]\n"
    "                 [--order FIRST,THEN,EFFECT] [--output FILE]\n"
    "\n"
    "Writes impressions and purchases from a process with planted channel effects\n"
    "(docs/attribution.md, \"Ground truth\"): search, social and display raise the\n"
    "purchase log-odds, email does nothing, retarget does nothing but is shown to users\n"
    "who are likely to buy anyway. TRUTH.json gets the parameters and every user's\n"
    "intent, from which tests/integration/truth.py computes each purchase's true credits.\n"
    "\n"
    "  --users N        users (default 5000)\n"
    "  --days N         days simulated (default 28)\n"
    "  --null           every channel's effect and targeting 0, and no order effect\n"
    "  --order FIRST,THEN,EFFECT\n"
    "                   an impression of THEN after one of FIRST adds EFFECT to the\n"
    "                   purchase log-odds (fading as THEN's own does), e.g.\n"
    "                   display,search,0.5: display pays off when search follows\n";

/* The value of the option at argv[*i] (moving *i to it) into *v and, unless the option
 * takes text (--output, --truth, --order), as a number into *n. 0, or 2 after a usage
 * error: the value is missing, or is not the number it must be. */
static int opt_value(int argc, char **argv, int *i, const char **v, unsigned long long *n)
{
    const char *o = argv[*i];
    if (*i + 1 >= argc) return tl_cmd_usage_error(usage, "unknown option or missing value: %s", o);
    *v = argv[++*i];
    *n = 0;
    if (!strcmp(o, "--output") || !strcmp(o, "--truth") || !strcmp(o, "--order")) return 0;
    char *end;
    *n = strtoull(*v, &end, 10);
    if (!**v || *end) return tl_cmd_usage_error(usage, "%s: expected a number, got '%s'", o, *v);
    return 0;
}

static int gen_truth(int argc, char **argv)
{
    tl_truth_params p;
    tl_truth_params_default(&p);
    const char *output = NULL, *truth = NULL, *order = NULL;
    int null_run = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--null")) {
            null_run = 1;
            continue;
        }
        const char *v;
        unsigned long long n;
        int bad = opt_value(argc, argv, &i, &v, &n);
        if (bad) return bad;
        if (!strcmp(o, "--output")) output = v;
        else if (!strcmp(o, "--truth")) truth = v;
        else if (!strcmp(o, "--order")) order = v;
        else if (!strcmp(o, "--users")) p.n_users = n > UINT32_MAX ? 0 : (uint32_t)n;
        else if (!strcmp(o, "--days")) p.days = (double)n;
        else if (!strcmp(o, "--seed")) p.seed = n;
        else return tl_cmd_usage_error(usage, "option '%s' does not apply with --truth", o);
    }
    char err[256];
    if (order && tl_truth_params_order(&p, order, err, sizeof(err)) != 0)
        return tl_cmd_usage_error(usage, "%s", err);
    if (null_run) tl_truth_params_null(&p);
    if (tl_truth_params_check(&p, err, sizeof(err)) != 0)
        return tl_cmd_usage_error(usage, "%s", err);
    FILE *tf = fopen(truth, "w");
    if (!tf) {
        fprintf(stderr, "tally: cannot write %s\n", truth);
        return 1;
    }
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fclose(tf);
        fprintf(stderr, "tally: cannot write %s\n", output);
        return 1;
    }
    int rc = tl_truth_write(&p, out, tf);
    if (fclose(tf) != 0) rc = -1;
    if (output && fclose(out) != 0) rc = -1;
    return rc == 0 ? 0 : 1;
}

int tl_cmd_gen(int argc, char **argv)
{
    tl_gen_params p;
    tl_gen_params_default(&p);
    const char *output = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--truth")) return gen_truth(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(o, "--impressions")) {
            p.impressions = 1;
            continue;
        }
        const char *v;
        unsigned long long n;
        int bad = opt_value(argc, argv, &i, &v, &n);
        if (bad) return bad;
        if (!strcmp(o, "--output")) output = v;
        else if (!strcmp(o, "--events")) p.n_events = n;
        else if (!strcmp(o, "--users")) p.n_users = (uint32_t)n;
        else if (!strcmp(o, "--items")) p.n_items = (uint32_t)n;
        else if (!strcmp(o, "--categories")) p.n_categories = (uint32_t)n;
        else if (!strcmp(o, "--channels")) p.n_channels = (uint32_t)n;
        else if (!strcmp(o, "--seed")) p.seed = n;
        else if (!strcmp(o, "--campaigns")) p.n_campaigns = (uint32_t)n;
        else return tl_cmd_usage_error(usage, "unknown option '%s'", o);
    }
    char err[256];
    if (tl_gen_params_check(&p, err, sizeof(err)) != 0) return tl_cmd_usage_error(usage, "%s", err);
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "tally: cannot write %s\n", output);
        return 1;
    }
    int rc = tl_gen_write_csv(&p, out);
    if (output && fclose(out) != 0) rc = -1;
    return rc == 0 ? 0 : 1;
}
