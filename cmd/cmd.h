/*
 * cmd.h -- the tally command line: one function per subcommand, and the pieces they
 * share (configuration from -c / TALLY_* / -X, options, summaries).
 */
#ifndef TL_CMD_H
#define TL_CMD_H

#include <stdio.h>
#include <signal.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "allocator.h"
#include "app/config.h"
#include "app/names.h"
#include "app/kafka_client.h"
#include "app/shutdown.h"
#include "lib/config.h"
#include "model/model.h"

/* Usage error: prints msg and the command's usage to stderr, returns 2. */
int tl_cmd_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Common options. Returns 1 if argv[*i] was consumed (with its value), 0 if not an
 * option of these, -1 on error (printed). */
int tl_cmd_config_opt(tl_config *c, int argc, char **argv, int *i);
/* The configuration of a command: defaults < -c FILE < TALLY_* environment < -X. NULL
 * after printing the error. _parse also sets the log up (log.level, log.format,
 * log.file); _load leaves it alone (tally config check: the log file may be on another
 * machine). */
tl_config *tl_cmd_config_parse(int argc, char **argv, const char *usage,
                               int (*extra)(void *arg, int argc, char **argv, int *i), void *arg);
tl_config *tl_cmd_config_load(int argc, char **argv, const char *usage,
                              int (*extra)(void *arg, int argc, char **argv, int *i), void *arg);

/* A table of a command's own options, for tl_cmd_config_parse's extra hook: an
 * option either takes a value (value != NULL) or is a flag (flag != NULL). */
typedef struct tl_cmd_opt {
    const char *name;
    const char **value;
    int *flag;
} tl_cmd_opt;

typedef struct tl_cmd_opts {
    const tl_cmd_opt *opts;   /* terminated by a NULL name */
    const char *usage;
} tl_cmd_opts;

/* The extra hook over a tl_cmd_opts (arg). */
int tl_cmd_opts_parse(void *arg, int argc, char **argv, int *i);
/* tl_cmd_config_parse with the command's own options opts (terminated by a NULL name). */
tl_config *tl_cmd_opts_config_parse(int argc, char **argv, const char *usage,
                                    const tl_cmd_opt *opts);

int tl_cmd_reset(int argc, char **argv);

/* "no valid event in INPUT (ROWS rows, BAD bad)" on stderr: a file with nothing to process
 * is a mistake (replay, produce). Returns 1, the exit status. */
int tl_cmd_nothing_valid(const char *input, uint64_t rows, uint64_t bad);
/* The warning, at the end of a run or replay, that the model learned no negative example
 * (so its credits were linear), when that is so. */
void tl_cmd_warn_no_negatives(const tl_model_report *r);
/* The model's weights by channel (tl_model_channel_weights), the strongest ten, as part of
 * a summary. */
void tl_cmd_print_channel_weights(FILE *f, const tl_model *m);

int tl_cmd_consume(int argc, char **argv);
int tl_cmd_report(int argc, char **argv);

/* tl_cmd_config_parse with the command's own options opts, for a command that talks to
 * Kafka: NULL (after a usage error) also when kafka.bootstrap.servers is not set. */
tl_config *tl_cmd_kafka_config_parse(int argc, char **argv, const char *usage,
                                     const tl_cmd_opt *opts);

int tl_cmd_run(int argc, char **argv);
int tl_cmd_replay(int argc, char **argv);
int tl_cmd_produce(int argc, char **argv);
int tl_cmd_gen(int argc, char **argv);
int tl_cmd_demo(int argc, char **argv);
int tl_cmd_config(int argc, char **argv);
int tl_cmd_paths(int argc, char **argv);

#endif
