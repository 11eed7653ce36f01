/*
 * gen.c -- `tally gen`: synthetic events as canonical CSV (ingest/gen.c makes them).
 */
#include "cmd.h"
#include "ingest/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tally gen [--events N] [--users N] [--items N] [--categories N] [--channels N]\n"
    "                 [--seed N] [--impressions] [--output FILE]\n"
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
    "  --output FILE    default: stdout\n";

int tl_cmd_gen(int argc, char **argv)
{
    tl_gen_params p;
    tl_gen_params_default(&p);
    const char *output = NULL;
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
        if (i + 1 >= argc) return tl_cmd_usage_error(usage, "unknown option or missing value: %s", o);
        const char *v = argv[++i];
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        int numeric = *v && !*end;
        if (!strcmp(o, "--output")) output = v;
        else if (!numeric) return tl_cmd_usage_error(usage, "%s: expected a number, got '%s'", o, v);
        else if (!strcmp(o, "--events")) p.n_events = n;
        else if (!strcmp(o, "--users")) p.n_users = (uint32_t)n;
        else if (!strcmp(o, "--items")) p.n_items = (uint32_t)n;
        else if (!strcmp(o, "--categories")) p.n_categories = (uint32_t)n;
        else if (!strcmp(o, "--channels")) p.n_channels = (uint32_t)n;
        else if (!strcmp(o, "--seed")) p.seed = n;
        else return tl_cmd_usage_error(usage, "unknown option '%s'", o);
    }
    char err[256];
    if (tl_gen_params_check(&p, err, sizeof(err)) != 0)
        return tl_cmd_usage_error(usage, "%s", err);
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "tally: cannot write %s\n", output);
        return 1;
    }
    int rc = tl_gen_write_csv(&p, out);
    if (output && fclose(out) != 0) rc = -1;
    return rc == 0 ? 0 : 1;
}
