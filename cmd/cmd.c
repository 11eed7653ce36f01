/*
 * cmd.c -- what the subcommands share: configuration loading in priority order
 * (defaults < -c file < TALLY_* environment < -X), signals, librdkafka setup.
 *
 * Signal handlers only increment tl_stop; the loop does the ordered shutdown. A
 * second signal exits at once (130).
 */
#define _XOPEN_SOURCE 700
#include "app/config.h"
#include "cmd.h"
#include "lib/kafka.h"
#include "lib/log.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t tl_stop = 0;
static int stop_pipe[2] = {-1, -1};   /* the handler tells the shutdown watchdog */

static void on_signal(int sig)
{
    (void)sig;
    if (tl_stop++ >= 1) {
        static const char m[] = "tally: second signal: exiting now\n";
        ssize_t w = write(2, m, sizeof(m) - 1);
        (void)w;
        _exit(130);
    }
    if (stop_pipe[1] >= 0) {
        char c = 1;
        ssize_t w = write(stop_pipe[1], &c, 1);
        (void)w;
    }
}

void tl_cmd_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* SIGHUP reopens log.file when there is one; otherwise it must not end the process
     * (a service manager's reload). */
    if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGHUP, SIG_IGN);
}

static const char *_Atomic shutdown_phase = "starting";

void tl_cmd_shutdown_phase(const char *what)
{
    atomic_store_explicit(&shutdown_phase, what, memory_order_release);
}

static void *shutdown_watchdog(void *arg)
{
    int64_t ms = *(int64_t *)arg;
    free(arg);
    char c;
    while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    tl_sleep_ms(ms);
    TL_LOG_ERROR("run",
                 "shutdown.timeout.ms=%" PRId64 " passed before the shutdown finished (it "
                 "was %s); exiting now (the next start resumes from the last commit)",
                 ms, atomic_load_explicit(&shutdown_phase, memory_order_acquire));
    _exit(1);
    return NULL;
}

void tl_cmd_shutdown_timeout(int64_t ms)
{
    if (stop_pipe[0] >= 0 || pipe(stop_pipe) != 0) return;
    int64_t *arg = tl_xmalloc(sizeof(*arg));
    *arg = ms;
    pthread_t th;
    if (pthread_create(&th, NULL, shutdown_watchdog, arg) != 0) {
        free(arg);
        return;
    }
    pthread_detach(th);
}

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
    const tl_app_cfg ac = tl_cmd_settings(c);
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

typedef struct kconf_arg {
    rd_kafka_conf_t *conf;
    int producer;
    char err[512];
} kconf_arg;

static int kconf_set(void *arg, const char *name, const char *value)
{
    kconf_arg *k = arg;
    /* Consumer-group keys given without a side are meant for the consumer. */
    if (k->producer &&
        (!strcmp(name, "group.id") || !strcmp(name, "group.instance.id") ||
         !strcmp(name, "auto.offset.reset")))
        return 0;
    if (rd_kafka_conf_set(k->conf, name, value, k->err, sizeof(k->err)) != RD_KAFKA_CONF_OK) {
        if (tl_config_is_secret(name))   /* librdkafka's message may quote the value */
            snprintf(k->err, sizeof(k->err), "%s: invalid value (not shown: secret)", name);
        return -1;
    }
    return 0;
}

/* librdkafka treats a refused SASL handshake, an unverifiable certificate and a broker it
 * cannot connect to as one more connection failure and retries; what the caller sees in the
 * end is a timeout or "Broker transport failure". The reason is only in librdkafka's log
 * lines, logged from its broker threads: the first authentication failure and the last
 * connection failure are kept so that a failed command can say what happened
 * (tl_cmd_kafka_why_failed). */
static pthread_mutex_t why_mu = PTHREAD_MUTEX_INITIALIZER;
static char auth_why[512], conn_why[512];
static int why_reported;

static void note_failure(int level, const char *buf)
{
    static const char *const auth[] = {"SASL authentication error", "Authentication failed",
                                       "SSL handshake failed", "certificate verify failed"};
    if (level > 4) return;
    for (size_t i = 0; i < sizeof(auth) / sizeof(auth[0]); i++) {
        if (!strstr(buf, auth[i])) continue;
        pthread_mutex_lock(&why_mu);
        if (!auth_why[0]) snprintf(auth_why, sizeof(auth_why), "%s", buf);
        pthread_mutex_unlock(&why_mu);
        return;
    }
    /* "Connect to ipv4#127.0.0.1:1 failed: Connection refused", "Failed to resolve ..." */
    if ((strstr(buf, "Connect to ") && strstr(buf, " failed: ")) ||
        strstr(buf, "Failed to resolve")) {
        pthread_mutex_lock(&why_mu);
        snprintf(conn_why, sizeof(conn_why), "%s", buf);
        pthread_mutex_unlock(&why_mu);
    }
}

int tl_cmd_kafka_why_failed(const tl_config *c)
{
    char a[sizeof(auth_why)], n[sizeof(conn_why)];
    pthread_mutex_lock(&why_mu);
    memcpy(a, auth_why, sizeof(a));
    memcpy(n, conn_why, sizeof(n));
    int first = (a[0] || n[0]) && !why_reported;
    if (first) why_reported = 1;
    pthread_mutex_unlock(&why_mu);
    if (first && a[0])
        TL_LOG_ERROR("kafka",
                     "authentication failed: %s (check kafka.security.protocol, "
                     "kafka.sasl.* and kafka.ssl.*)",
                     a);
    else if (first)
        TL_LOG_ERROR("kafka", "cannot reach Kafka at %s (kafka.bootstrap.servers): %s",
                     tl_config_kafka(c, "bootstrap.servers")
                         ? tl_config_kafka(c, "bootstrap.servers")
                         : "(not set)",
                     n);
    return a[0] || n[0];
}

void tl_cmd_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    note_failure(level, buf);
    tl_log_kafka(level, rd_kafka_name(rk), fac, buf);
}

rd_kafka_conf_t *tl_cmd_kafka_conf(const tl_config *c, const char *side)
{
    kconf_arg k = {.conf = rd_kafka_conf_new()};
    rd_kafka_conf_set_log_cb(k.conf, tl_cmd_kafka_log);
    /* tally's defaults (lib/kafka_settings.c), before the user's keys so that those win. */
    int consumer = !strcmp(side, "consumer");
    k.producer = !consumer;
    if (tl_kafka_settings_apply(k.conf, consumer ? TL_KC_CONSUMER : TL_KC_PRODUCER, k.err,
                                sizeof(k.err)) != 0) {
        fprintf(stderr, "tally: %s\n", k.err);
        rd_kafka_conf_destroy(k.conf);
        return NULL;
    }
    if (tl_config_each_kafka(c, side, kconf_set, &k) != 0) {
        fprintf(stderr, "tally: configuration error: kafka: %s\n", k.err);
        rd_kafka_conf_destroy(k.conf);
        return NULL;
    }
    return k.conf;
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

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void tl_cmd_rmtree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* [A-Za-z0-9._-]{1,64}: what a transactional.id part may hold without surprises. */
static int valid_id(const char *s, size_t n)
{
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return 0;
    return 1;
}

int tl_cmd_instance_id(const char *state_dir, char *out, size_t outlen, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/instance.id", state_dir);
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state.dir %s: cannot create it: %s", state_dir, strerror(errno));
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f) {
        char line[128] = "";
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        line[n] = 0;
        if (!valid_id(line, n) || n >= outlen) {
            snprintf(err, errlen,
                     "%s: not an instance id (1 to 64 of A-Z a-z 0-9 . _ -); "
                     "remove it to get a new one, or set instance.id",
                     path);
            return -1;
        }
        memcpy(out, line, n + 1);
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return -1;
    }
    unsigned char b[16];
    FILE *r = fopen("/dev/urandom", "r");
    int got = r && fread(b, 1, sizeof(b), r) == sizeof(b);
    if (r) fclose(r);
    if (!got) {
        snprintf(err, errlen, "cannot read /dev/urandom for a new instance id: %s",
                 strerror(errno));
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* a version 4 (random) UUID */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char id[40];
    snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", id) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "state.dir %s: cannot write %s: %s", state_dir, path,
                 strerror(errno));
        remove(tmp);
        return -1;
    }
    snprintf(out, outlen, "%s", id);
    return 0;
}

const char *tl_cmd_group(const tl_config *c)
{
    return tl_config_kafka(c, "group.id")         ? tl_config_kafka(c, "group.id")
        : tl_config_kafka(c, "consumer.group.id") ? tl_config_kafka(c, "consumer.group.id")
                                                  : "tally";
}

tl_app_cfg tl_cmd_settings(const tl_config *c)
{
    tl_app_cfg ac;
    char err[256];
    if (tl_app_cfg_load(&ac, c, err, sizeof(err)) != 0) {   /* c is not the program's */
        fprintf(stderr, "tally: internal error: %s\n", err);
        exit(70);
    }
    return ac;
}

int tl_cmd_names(const tl_config *c, const char *instance_id, tl_app_names *n, char *err,
                 size_t errlen)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    tl_app_settings s = {.group_id = tl_cmd_group(c),
                         .changelog_topic = ac.changelog_topic,
                         .partials_topic = ac.partials_topic,
                         .instance_id = instance_id};
    return tl_app_names_make(&s, n, err, errlen);
}

tl_config *tl_cmd_kafka_config_parse(int argc, char **argv, const char *usage,
                                     const tl_cmd_opt *opts)
{
    tl_cmd_opts t = {opts, usage};
    tl_config *c = tl_cmd_config_parse(argc, argv, usage, tl_cmd_opts_parse, &t);
    if (c && !tl_config_kafka(c, "bootstrap.servers")) {
        tl_config_destroy(c);
        tl_cmd_usage_error(usage, "kafka.bootstrap.servers is not set");
        return NULL;
    }
    return c;
}

int tl_cmd_topic_exists(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    int found = 0;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        found = !strcmp(md->topics[i].topic, topic) && !md->topics[i].err;
    rd_kafka_metadata_destroy(md);
    return found;
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
