/*
 * cmd.h -- the tally command line: one function per subcommand, and the pieces they
 * share (configuration from -c / TALLY_* / -X, signal handling, librdkafka setup).
 */
#ifndef TL_CMD_H
#define TL_CMD_H

#include <stdio.h>
#include <signal.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "app/config.h"
#include "app/names.h"
#include "lib/config.h"
#include "model/model.h"

extern volatile sig_atomic_t tl_stop;   /* incremented by SIGINT/SIGTERM */
void tl_cmd_signals(void);
/* After the first SIGINT/SIGTERM, exits with 1 if the process is still there ms later
 * (shutdown.timeout.ms). A second signal exits at once (130). */
void tl_cmd_shutdown_timeout(int64_t ms);
/* What the shutdown is doing now (a constant string), named by the watchdog's message if
 * shutdown.timeout.ms passes. */
void tl_cmd_shutdown_phase(const char *what);

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

/* Removes a directory tree (temporary state). */
void tl_cmd_rmtree(const char *dir);

/* A librdkafka configuration with every kafka.* (and kafka.<side>.*) key applied. */
rd_kafka_conf_t *tl_cmd_kafka_conf(const tl_config *c, const char *side);
/* Routes librdkafka's log lines into tally's log. */
void tl_cmd_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* 1 if a librdkafka client of this process failed to authenticate (SASL), to verify TLS or
 * to connect to a broker; the first call then logs "authentication failed: <librdkafka's
 * reason>" or "cannot reach Kafka at <kafka.bootstrap.servers>: <the last connection
 * error>". Called where a Kafka command fails, so a timeout says why. */
int tl_cmd_kafka_why_failed(const tl_config *c);

/* The application's settings in c (app/config.h). c must come from tl_config_new with
 * tl_app_config, as every command's does; anything else is a program error, which
 * exits with status 70. */
tl_app_cfg tl_cmd_settings(const tl_config *c);

/* The consumer group (kafka.group.id, kafka.consumer.group.id, or tally's default "tally"). */
const char *tl_cmd_group(const tl_config *c);
/* The deployment's Kafka names (app/names.h) from c and the resolved instance id. 0 or -1
 * (err: a name too long). */
int tl_cmd_names(const tl_config *c, const char *instance_id, tl_app_names *n, char *err,
                 size_t errlen);

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

/* 1 when the cluster's topic list has topic, 0 when not, -1 when the broker does not
 * answer. Asks for every topic: a metadata request for one topic may create it. */
int tl_cmd_topic_exists(rd_kafka_t *rk, const char *topic);
int tl_cmd_consume(int argc, char **argv);
int tl_cmd_report(int argc, char **argv);

/* Reads the topics from the beginning to their current end (committed records, every
 * partition, no consumer group), writing each record to out as `tally consume` prints it
 * (decoded with store). 0, or -1 with err (a topic that does not exist, or not every
 * partition read to its end within timeout_ms). records: how many were written. */
typedef struct tl_schema_store tl_schema_store;
int tl_cmd_read_topics(const tl_config *c, tl_schema_store *store, const char *const *topics, int n,
                       int64_t timeout_ms, FILE *out, uint64_t *records, char *err, size_t errlen);
/* The same of one topic, only the records whose key begins with key_prefix (the others are
 * not decoded). */
int tl_cmd_read_keyed(const tl_config *c, tl_schema_store *store, const char *topic,
                      const char *key_prefix, int64_t timeout_ms, FILE *out, uint64_t *records,
                      char *err, size_t errlen);
/* The same for one topic of text: each record's value as it is, one per line. */
int tl_cmd_read_values(const tl_config *c, const char *topic, int64_t timeout_ms, FILE *out,
                       uint64_t *records, char *err, size_t errlen);

/* The report itself (docs/report.md), for the command and for `run`'s /v1/attribution:
 * the options as `tally report` takes them (NULL: the default), over the records of in
 * (replay JSON lines or `tally consume` lines; name names it in messages). Writes the
 * answer to out and names skipped lines on msgs (NULL: nowhere). 0; 1 when nothing could
 * be reported (no record, unreadable input); 2 when an option is bad. err says why. */
typedef struct tl_report_args {
    const char *by, *window, *from, *to, *methods, *format, *min, *spend;
    const char *groups;   /* rollup.channel.groups */
    FILE *spend_file;     /* the spend CSV already open (spend then only names it), or NULL */
} tl_report_args;
/* The options alone: 0, or 2 with err (as tl_report_run would refuse them). */
int tl_report_check(const tl_report_args *a, char *err, size_t errlen);
int tl_report_run(const tl_report_args *a, FILE *in, const char *name, FILE *out, FILE *msgs,
                  char *err, size_t errlen);

/* tl_cmd_config_parse with the command's own options opts, for a command that talks to
 * Kafka: NULL (after a usage error) also when kafka.bootstrap.servers is not set. */
tl_config *tl_cmd_kafka_config_parse(int argc, char **argv, const char *usage,
                                     const tl_cmd_opt *opts);

/* This instance's id when instance.id is not set: the one kept in <state_dir>/instance.id,
 * made (a random UUID) and written there on first use, so that it stays the same across
 * restarts of one state directory and differs between two state directories on one host.
 * Creates state_dir if needed. 0, or -1 with err (state.dir cannot be created, read or
 * written, or the file holds something else than an id). */
int tl_cmd_instance_id(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen);

int tl_cmd_run(int argc, char **argv);
int tl_cmd_replay(int argc, char **argv);
int tl_cmd_produce(int argc, char **argv);
int tl_cmd_gen(int argc, char **argv);
int tl_cmd_demo(int argc, char **argv);
int tl_cmd_config(int argc, char **argv);
int tl_cmd_paths(int argc, char **argv);

#endif
