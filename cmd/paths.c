/*
 * paths.c -- `tally paths`: Markov-chain attribution (model/markov.h) of an aggregated
 * path file in ChannelAttribution's format, with first-touch, last-touch and linear
 * credits beside it. The same code computes the per-window removal effects of `run`.
 *
 * The file format is markov_paths.c's (model/).
 */
#define _XOPEN_SOURCE 700
#include "cmd.h"
#include "progress.h"
#include "lib/json.h"
#include "lib/util.h"
#include "model/markov.h"
#include "model/markov_paths.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tally paths --input FILE [--order K] [--bootstrap N [--level L] [--seed S]]\n"
    "                   [--format channelattribution] [--output FILE.json]\n"
    "\n"
    "Markov-chain attribution of aggregated paths: for every channel, the\n"
    "removal effect (relative drop of the conversion probability when the channel is\n"
    "removed from the chain, computed exactly), the conversions and value it is credited\n"
    "with (in proportion to the removal effects), and first-touch, last-touch and linear\n"
    "credits of the same paths. Prints a table sorted by Markov credit.\n"
    "\n"
    "  --input FILE     paths, ChannelAttribution's format (- for stdin):\n"
    "                   path;total_conversions;total_conversion_value;total_null\n"
    "                   eta > iota > alpha;1;0.244;3\n"
    "  --order K        states are the last K touches (1 to 4, default 1), as\n"
    "                   ChannelAttribution's markov_model(order = K); removing a\n"
    "                   channel removes every state it is part of\n"
    "  --bootstrap N    also an interval for each channel's removal effect and Markov\n"
    "                   conversions, from N chains redrawn around this one (each\n"
    "                   state's transitions drawn from their Dirichlet posterior);\n"
    "                   costs N more solves\n"
    "  --level L        the interval's coverage (default 0.9)\n"
    "  --seed S         the draws' seed (default 1): the same seed, the same interval\n"
    "  --format F       channelattribution (the only format, the default)\n"
    "  --output FILE    also write the results as JSON\n"
    "  --quiet          no progress line (there is one only on a terminal)\n";

typedef struct paths_progress {
    tl_progress prog;
    int64_t size;   /* of the input file, -1 unknown */
} paths_progress;

static void on_progress(void *arg, uint64_t lines, uint64_t bytes)
{
    paths_progress *pp = arg;
    tl_progress_update(&pp->prog, lines, bytes, pp->size);
}

static const tl_markov_result *sort_res;

static int by_credit(const void *pa, const void *pb)
{
    const tl_markov_channel *a = &sort_res->channels[*(const int *)pa];
    const tl_markov_channel *b = &sort_res->channels[*(const int *)pb];
    if (a->markov_conversions != b->markov_conversions)
        return a->markov_conversions > b->markov_conversions ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void print_table(const tl_markov_result *res, const int *order, double seconds)
{
    int w = 7;
    for (int i = 0; i < res->n; i++) {
        int l = (int)strlen(res->channels[i].name);
        if (l > w) w = l;
    }
    printf("paths %" PRIu64 ", conversions %.10g, nulls %.10g, value %.10g, "
           "p(conversion) %.6f, order %d (%d states), %.3f s\n\n",
           res->paths, res->conversions, res->nulls, res->value, res->conversion_probability,
           res->order, res->chain_states, seconds);
    char iv[40] = "";
    if (res->bootstrap_samples)
        snprintf(iv, sizeof(iv), "markov %.0f%% interval", 100 * res->bootstrap_level);
    printf("%-*s  %14s  %18s  %21s  %14s  %12s  %12s  %12s\n", w, "channel", "removal_effect",
           "markov_conversions", iv, "markov_value", "first_touch", "last_touch", "linear");
    for (int i = 0; i < res->n; i++) {
        const tl_markov_channel *c = &res->channels[order[i]];
        if (res->bootstrap_samples)
            snprintf(iv, sizeof(iv), "%.2f - %.2f", c->markov_conversions_lo,
                     c->markov_conversions_hi);
        printf("%-*s  %14.6f  %18.2f  %21s  %14.2f  %12.2f  %12.2f  %12.2f\n", w, c->name,
               c->removal_effect, c->markov_conversions, iv, c->markov_value, c->first_conversions,
               c->last_conversions, c->linear_conversions);
    }
    if (res->bootstrap_samples)
        printf("\nintervals: the central %.0f%% of %d chains redrawn around this one "
               "(--bootstrap; each state's transitions, Dirichlet given its counts)\n",
               100 * res->bootstrap_level, res->bootstrap_samples);
}

static void put_field(tl_buf *b, const char *key, double v, int comma)
{
    tl_buf_printf(b, "\"%s\": ", key);
    tl_json_put_double(b, v);
    if (comma) tl_buf_puts(b, ", ");
}

static int write_json(const char *path, const tl_markov_result *res, const int *order,
                      double seconds)
{
    tl_buf b = {0};
    tl_buf_puts(&b, "{\"channels\": [");
    for (int i = 0; i < res->n; i++) {
        const tl_markov_channel *c = &res->channels[order[i]];
        tl_buf_puts(&b, i ? ",\n  {" : "\n  {");
        tl_buf_puts(&b, "\"channel\": ");
        tl_json_put_str(&b, c->name);
        tl_buf_puts(&b, ", ");
        put_field(&b, "removal_effect", c->removal_effect, 1);
        put_field(&b, "markov_conversions", c->markov_conversions, 1);
        put_field(&b, "markov_value", c->markov_value, 1);
        put_field(&b, "first_touch", c->first_conversions, 1);
        put_field(&b, "last_touch", c->last_conversions, 1);
        put_field(&b, "linear", c->linear_conversions, 1);
        put_field(&b, "first_touch_value", c->first_value, 1);
        put_field(&b, "last_touch_value", c->last_value, 1);
        put_field(&b, "linear_value", c->linear_value, res->bootstrap_samples > 0);
        if (res->bootstrap_samples) {
            put_field(&b, "removal_effect_lo", c->removal_effect_lo, 1);
            put_field(&b, "removal_effect_hi", c->removal_effect_hi, 1);
            put_field(&b, "markov_conversions_lo", c->markov_conversions_lo, 1);
            put_field(&b, "markov_conversions_hi", c->markov_conversions_hi, 0);
        }
        tl_buf_putc(&b, '}');
    }
    tl_buf_puts(&b, res->n ? "\n],\n" : "],\n");
    put_field(&b, "conversion_probability", res->conversion_probability, 1);
    tl_buf_printf(&b,
                  "\"paths\": %" PRIu64 ", \"order\": %d, \"states\": %d, "
                  "\"bootstrap_samples\": %d, ",
                  res->paths, res->order, res->chain_states, res->bootstrap_samples);
    if (res->bootstrap_samples) put_field(&b, "bootstrap_level", res->bootstrap_level, 1);
    put_field(&b, "conversions", res->conversions, 1);
    put_field(&b, "nulls", res->nulls, 1);
    put_field(&b, "value", res->value, 1);
    put_field(&b, "seconds", seconds, 0);
    tl_buf_puts(&b, "}\n");
    FILE *out = fopen(path, "w");
    int ok = out && fwrite(b.data, 1, b.len, out) == b.len;
    if (out && fclose(out) != 0) ok = 0;
    if (!ok) fprintf(stderr, "tally: cannot write %s: %s\n", path, strerror(errno));
    tl_buf_free(&b);
    return ok ? 0 : -1;
}

int tl_cmd_paths(int argc, char **argv)
{
    struct {
        const char *input, *format, *output, *order, *bootstrap, *level, *seed;
        int help, quiet;
    } a = {0};
    const tl_cmd_opt opts[] = {
        {"--input", &a.input, NULL},
        {"--format", &a.format, NULL},
        {"--order", &a.order, NULL},
        {"--bootstrap", &a.bootstrap, NULL},
        {"--level", &a.level, NULL},
        {"--seed", &a.seed, NULL},
        {"--output", &a.output, NULL},
        {"--help", NULL, &a.help},
        {"-h", NULL, &a.help},
        {"--quiet", NULL, &a.quiet},
        {NULL, NULL, NULL},
    };
    tl_cmd_opts t = {opts, usage};
    for (int i = 1; i < argc; i++) {
        int r = tl_cmd_opts_parse(&t, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) return tl_cmd_usage_error(usage, "unknown option '%s'", argv[i]);
    }
    if (a.help) {
        fputs(usage, stdout);
        return 0;
    }
    if (!a.input) return tl_cmd_usage_error(usage, "--input is required");
    if (a.format && strcmp(a.format, "channelattribution") != 0)
        return tl_cmd_usage_error(usage,
                                  "unknown format '%s' (channelattribution is the one "
                                  "format)",
                                  a.format);

    int korder = 1;
    if (a.order) {
        char *end;
        long v = strtol(a.order, &end, 10);
        if (end == a.order || *end || v < 1 || v > TL_MARKOV_MAX_ORDER)
            return tl_cmd_usage_error(usage, "--order: expected 1 to %d, got '%s'",
                                      TL_MARKOV_MAX_ORDER, a.order);
        korder = (int)v;
    }

    long samples = 0;
    double level = 0.9;
    unsigned long long seed = 1;
    char *end;
    if (a.bootstrap &&
        (samples = strtol(a.bootstrap, &end, 10),
         end == a.bootstrap || *end || samples < 2 || samples > 100000))
        return tl_cmd_usage_error(usage, "--bootstrap: expected 2 to 100000 samples, got '%s'",
                                  a.bootstrap);
    if (a.level &&
        (level = strtod(a.level, &end), end == a.level || *end || !(level > 0) || !(level < 1)))
        return tl_cmd_usage_error(usage,
                                  "--level: expected a number between 0 and 1 (0.9 for "
                                  "90%%), got '%s'",
                                  a.level);
    if (a.seed && (seed = strtoull(a.seed, &end, 10), end == a.seed || *end))
        return tl_cmd_usage_error(usage, "--seed: expected a whole number, got '%s'", a.seed);

    int64_t t0 = tl_mono_ns();
    int use_stdin = !strcmp(a.input, "-");
    FILE *in = use_stdin ? stdin : fopen(a.input, "r");
    if (!in) {
        fprintf(stderr, "tally: cannot read %s: %s\n", a.input, strerror(errno));
        return 1;
    }
    const char *name = use_stdin ? "stdin" : a.input;
    tl_markov *m = tl_markov_new_order(korder);
    paths_progress pp = {.size = -1};
    struct stat st;
    if (!use_stdin && fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) pp.size = st.st_size;
    tl_progress_init(&pp.prog, "paths", "lines", a.quiet);
    tl_markov_result res = {0};
    int *order = NULL, rc = 1;
    char err[512];
    int rd = tl_markov_read_paths(m, in, name, on_progress, &pp, err, sizeof(err));
    tl_progress_end(&pp.prog);
    if (!use_stdin) fclose(in);
    if (rd != 0) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    int e = tl_markov_removal_effects(m, &res);
    if (e == TL_MARKOV_OK && samples) e = tl_markov_bootstrap(m, (int)samples, seed, level, &res);
    if (e != TL_MARKOV_OK) {
        fprintf(stderr, "tally: %s: %s\n", name, tl_markov_strerror(e));
        goto done;
    }
    double seconds = (double)(tl_mono_ns() - t0) / 1e9;
    order = tl_xmalloc(((size_t)res.n + 1) * sizeof(*order));
    for (int i = 0; i < res.n; i++) order[i] = i;
    sort_res = &res;
    qsort(order, (size_t)res.n, sizeof(*order), by_credit);
    print_table(&res, order, seconds);
    if (a.output && write_json(a.output, &res, order, seconds) != 0) goto done;
    rc = 0;
done:
    free(order);
    tl_markov_result_free(&res);
    tl_markov_destroy(m);
    return rc;
}
