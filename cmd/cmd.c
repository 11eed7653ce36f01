/*
 * cmd.c -- what the subcommands share: configuration loading in priority order
 * (defaults < -c file < TALLY_* environment < -X), their own options, and the lines of
 * their summaries. Signals and librdkafka set-up are the application's (app/shutdown.c,
 * app/kafka_client.c).
 */
#include "app/config.h"
#include "cmd.h"
#include "lib/log.h"
#include "lib/util.h"

#include <inttypes.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_cmd_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("tally: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

tl_config *tl_cmd_config_parse(int argc, char **argv, const char *usage,
                               int (*extra)(void *arg, int argc, char **argv, int *i), void *arg)
{
    tl_config *c = tl_cmd_config_load(argc, argv, usage, extra, arg);
    if (!c) return NULL;
    char err[512];
    const tl_app_cfg ac = tl_app_cfg_of(c);
    if (tl_log_configure(ac.log_level, ac.log_format, ac.log_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: configuration error: %s\n", err);
        tl_config_destroy(c);
        return NULL;
    }
    if (*ac.log_file) tl_log_reopen_on_sighup();
    return c;
}

tl_config *tl_cmd_config_load(int argc, char **argv, const char *usage,
                              int (*extra)(void *arg, int argc, char **argv, int *i), void *arg)
{
    tl_config *c = tl_config_new(tl_app_config);
    char err[512];
    const char *file = NULL;
    /* First pass: options, -c remembered, -X applied after the file and env. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            tl_config_destroy(c);
            exit(0);
        }
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            if (++i >= argc) goto missing;
            file = argv[i];
        } else if (!strcmp(argv[i], "-X")) {
            if (++i >= argc) goto missing;
        } else if (extra) {
            int r = extra(arg, argc, argv, &i);
            if (r < 0) goto fail;
            if (r == 0) {
                tl_cmd_usage_error(usage, "unknown option '%s'", argv[i]);
                goto fail;
            }
        } else {
            tl_cmd_usage_error(usage, "unknown option '%s'", argv[i]);
            goto fail;
        }
    }
    if (file && tl_config_load_file(c, file, err, sizeof(err)) != 0) goto error;
    if (tl_config_load_env(c, err, sizeof(err)) != 0) goto error;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            i++;
        } else if (!strcmp(argv[i], "-X")) {
            if (tl_config_set_kv(c, argv[++i], "-X", err, sizeof(err)) != 0) goto error;
        }
    }
    return c;
missing:
    tl_cmd_usage_error(usage, "option %s needs a value", argv[argc - 1]);
    goto fail;
error:
    fprintf(stderr, "tally: configuration error: %s\n", err);
fail:
    tl_config_destroy(c);
    return NULL;
}

int tl_cmd_opts_parse(void *arg, int argc, char **argv, int *i)
{
    const tl_cmd_opts *t = arg;
    for (const tl_cmd_opt *o = t->opts; o->name; o++) {
        if (strcmp(argv[*i], o->name) != 0) continue;
        if (o->flag) {
            *o->flag = 1;
            return 1;
        }
        if (*i + 1 >= argc) {
            tl_cmd_usage_error(t->usage, "option %s needs a value", argv[*i]);
            return -1;
        }
        *o->value = argv[++*i];
        return 1;
    }
    return 0;
}

tl_config *tl_cmd_opts_config_parse(int argc, char **argv, const char *usage,
                                    const tl_cmd_opt *opts)
{
    tl_cmd_opts t = {opts, usage};
    return tl_cmd_config_parse(argc, argv, usage, tl_cmd_opts_parse, &t);
}

tl_config *tl_cmd_kafka_config_parse(int argc, char **argv, const char *usage,
                                     const tl_cmd_opt *opts)
{
    tl_config *c = tl_cmd_opts_config_parse(argc, argv, usage, opts);
    if (c && !tl_config_kafka(c, "bootstrap.servers")) {
        tl_config_destroy(c);
        tl_cmd_usage_error(usage, "kafka.bootstrap.servers is not set");
        return NULL;
    }
    return c;
}

int tl_cmd_nothing_valid(const char *input, uint64_t rows, uint64_t bad)
{
    fprintf(stderr, "tally: no valid event in %s (%" PRIu64 " rows, %" PRIu64 " bad)\n", input,
            rows, bad);
    return 1;
}

void tl_cmd_warn_no_negatives(const tl_model_report *r)
{
    if (r->examples && r->examples == r->positives)
        fprintf(stderr,
                "warning: the model learned from no control moment (one for every "
                "model.control.interval.ms a user lives through without a purchase): "
                "the data may span less than that; model credits are linear "
                "(model_status no_negatives)\n");
}

void tl_cmd_print_channel_weights(FILE *f, const tl_model *m)
{
    tl_model_weights w[10];
    int n = tl_model_channel_weights(m, w, 10);
    if (!n) return;
    fprintf(f,
            "        model weights by channel (log-odds a touch adds when fresh, 1 day and 4 "
            "days old; the strongest %d):\n",
            n);
    for (int i = 0; i < n; i++)
        fprintf(f, "          %s on %s: %+.3f, %+.3f, %+.3f\n",
                tl_event_type_name((tl_event_type)w[i].type), w[i].channel, w[i].w[0], w[i].w[3],
                w[i].w[5]);
}
