/*
 * log.c -- log lines, key=value or JSON, to stderr or a file (see log.h).
 *
 * A line is built in a private buffer (message formatted, secrets redacted, escaped),
 * then written with one write(2) under a mutex, so lines from librdkafka's threads and
 * the main thread never interleave, and a reopen never races a write.
 */
#include "log.h"
#include "config.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGHUP flag must be lock-free");

int tl_log_level = TL_LOG_INFO;
static int log_format = TL_LOG_KEY_VALUE;
static int log_fd = 2;
static char *log_path;                 /* NULL: stderr */
static atomic_int reopen_requested;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

#define REDACT_MAX 64
static const char *redact_values[REDACT_MAX];
static atomic_int n_redact;            /* entries below it are published */
static pthread_mutex_t redact_mu = PTHREAD_MUTEX_INITIALIZER;

#define MSG_MAX 8192                   /* a longer message is truncated */

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"key_value", "json"};

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    return -1;
}

int tl_log_level_parse(const char *s) { return name_index(level_names, TL_LOG_DEBUG + 1, s); }
int tl_log_format_parse(const char *s) { return name_index(format_names, TL_LOG_JSON + 1, s); }

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int tl_log_configure(const char *level, const char *format, const char *file, char *err,
                     size_t errlen)
{
    int lvl = tl_log_level_parse(level), fmt = tl_log_format_parse(format);
    if (lvl < 0) {
        snprintf(err, errlen, "log.level: expected error, warn, info or debug");
        return -1;
    }
    if (fmt < 0) {
        snprintf(err, errlen, "log.format: expected key_value or json");
        return -1;
    }
    int fd = 2;
    if (file && *file && (fd = open_log(file)) < 0) {
        snprintf(err, errlen, "log.file: cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&log_mu);
    if (log_fd != 2) close(log_fd);
    log_fd = fd;
    free(log_path);
    log_path = fd != 2 ? tl_xstrdup(file) : NULL;
    tl_log_level = lvl;
    log_format = fmt;
    pthread_mutex_unlock(&log_mu);
    return 0;
}

/* Called with log_mu held. On failure the old file stays and why is set. */
static int reopen_locked(char *why, size_t whylen)
{
    if (!log_path) return 0;
    int fd = open_log(log_path);
    if (fd < 0) {
        snprintf(why, whylen, "cannot reopen log.file %s: %s", log_path, strerror(errno));
        return -1;
    }
    close(log_fd);
    log_fd = fd;
    return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void emit_line(const char *line, size_t len)
{
    char why[600] = "";
    pthread_mutex_lock(&log_mu);
    if (atomic_exchange(&reopen_requested, 0)) reopen_locked(why, sizeof(why));
    write_all(log_fd, line, len);
    pthread_mutex_unlock(&log_mu);
    if (*why) TL_LOG_ERROR("log", "%s", why);
}

int tl_log_reopen(void)
{
    char why[600] = "";
    pthread_mutex_lock(&log_mu);
    int rc = reopen_locked(why, sizeof(why));
    pthread_mutex_unlock(&log_mu);
    if (rc) TL_LOG_ERROR("log", "%s", why);
    return rc;
}

static void on_sighup(int sig)
{
    (void)sig;
    atomic_store(&reopen_requested, 1);
}

void tl_log_reopen_on_sighup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sighup;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
}

/* ---- secrets -------------------------------------------------------------------------- */

void tl_log_redact_value(const char *value)
{
    if (!value || strlen(value) < TL_LOG_REDACT_MIN) return;
    pthread_mutex_lock(&redact_mu);
    int n = atomic_load(&n_redact), known = 0;
    for (int i = 0; i < n && !known; i++) known = strcmp(redact_values[i], value) == 0;
    if (!known && n < REDACT_MAX) {
        redact_values[n] = tl_xstrdup(value);
        atomic_store(&n_redact, n + 1);
    }
    pthread_mutex_unlock(&redact_mu);
}

/* s with every registered secret value replaced: s itself when it holds none, else the
 * text built in tmp. */
static const char *redact(const char *s, tl_buf *tmp)
{
    int n = atomic_load(&n_redact);
    const char *src = s;
    for (int i = 0; i < n; i++) {
        const char *v = redact_values[i], *hit = strstr(src, v);
        if (!hit) continue;
        tl_buf out = {0};
        size_t vlen = strlen(v);
        for (; hit; src = hit + vlen, hit = strstr(src, v)) {
            tl_buf_append(&out, src, (size_t)(hit - src));
            tl_buf_puts(&out, "[redacted]");
        }
        tl_buf_puts(&out, src);
        tl_buf_putc(&out, '\0');
        tl_buf_free(tmp);
        *tmp = out;
        src = tmp->data;
    }
    return src;
}

/* ---- escaping ------------------------------------------------------------------------- */

static int plain_token(const char *s)
{
    if (!*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '=' || *p == '\\') return 0;
    return 1;
}

static void put_kv_value(tl_buf *b, const char *s)
{
    if (plain_token(s)) tl_buf_puts(b, s);
    else tl_json_put_str(b, s);
}

/* Free text with control characters escaped, so that it stays on one line. */
static void put_kv_text(tl_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= ' ' && *p != 0x7f) {
            tl_buf_putc(b, (char)*p);
            continue;
        }
        char e[4] = {'\\',
                     *p == '\n'       ? 'n'
                         : *p == '\r' ? 'r'
                         : *p == '\t' ? 't'
                                      : 'x',
                     hex[*p >> 4], hex[*p & 0xf]};
        tl_buf_append(b, e, e[1] == 'x' ? 4 : 2);
    }
}

const char *tl_log_quote(char *out, size_t len, const char *value)
{
    tl_buf b = {0};
    put_kv_value(&b, value);
    snprintf(out, len, "%.*s", (int)b.len, b.data);
    tl_buf_free(&b);
    return out;
}

/* ---- lines ---------------------------------------------------------------------------- */

/* One event: the fields (keys[i] = vals[i]) in order, then the free-text message msg
 * (may be NULL) -- bare in key_value, "message" in json. */
static void log_event(int level, const char *component, int nf, const char *const *keys,
                      const char *const *vals, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *lname = level_names[level < 0 ? 0 : level > TL_LOG_DEBUG ? TL_LOG_DEBUG : level];
    int json = log_format == TL_LOG_JSON;
    tl_buf line = {0}, tmp = {0};
    if (json) {
        tl_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", when, lname);
        tl_json_put_str(&line, component);
    } else {
        tl_buf_printf(&line, "%s level=%s component=", when, lname);
        put_kv_value(&line, component);
    }
    for (int i = 0; i < nf + (msg != NULL); i++) {
        const char *key = i < nf ? keys[i] : "message";
        const char *val = redact(i < nf ? vals[i] : msg, &tmp);
        if (json) {
            tl_buf_putc(&line, ',');
            tl_json_put_str(&line, key);
            tl_buf_putc(&line, ':');
            tl_json_put_str(&line, val);
        } else if (i < nf) {
            tl_buf_printf(&line, " %s=", key);
            put_kv_value(&line, val);
        } else {
            tl_buf_putc(&line, ' ');
            put_kv_text(&line, val);
        }
    }
    tl_buf_puts(&line, json ? "}\n" : "\n");
    emit_line(line.data, line.len);
    tl_buf_free(&line);
    tl_buf_free(&tmp);
}

void tl_log_write(int level, const char *component, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_event(level, component, 0, NULL, NULL, msg);
}

void tl_log_kafka(int syslog_level, const char *client, const char *facility, const char *buf)
{
    int lvl = syslog_level <= 3 ? TL_LOG_ERROR
        : syslog_level <= 4     ? TL_LOG_WARN
        : syslog_level <= 6     ? TL_LOG_INFO
                                : TL_LOG_DEBUG;
    if (lvl > tl_log_level) return;
    /* librdkafka redacts the properties it knows to be sensitive in its configuration
     * dump ("  name = value" lines); tally's notion of a secret is wider. */
    char text[MSG_MAX];
    snprintf(text, sizeof(text), "%s", buf);
    long at = tl_config_secret_assignment(text);
    if (at >= 0) snprintf(text + at, sizeof(text) - (size_t)at, "[redacted]");
    static const char *const keys[] = {"client", "facility", "message"};
    const char *vals[] = {client, facility, text};
    log_event(lvl, "librdkafka", 3, keys, vals, NULL);
}
