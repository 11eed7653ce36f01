/*
 * log.h -- one line per event, key=value or JSON.
 *
 *   TL_LOG_INFO("ingest", "assigned partitions=%d", n);
 *   key_value: 2026-11-22T09:42:36.123Z level=info component=ingest assigned partitions=3
 *   json:      {"ts":"2026-11-22T09:42:36.123Z","level":"info","component":"ingest",
 *               "message":"assigned partitions=3"}   (on one line)
 *
 * Levels below tl_log_level are filtered before the arguments are formatted. Every
 * event stays on one line: in key_value, control characters in the message are written
 * as escapes (\n, \t, \x01) and field values with spaces, quotes, '=' or control
 * characters are quoted with JSON escapes (tl_log_quote does the same for a value a
 * caller puts in its message); in json, strings are JSON-escaped and invalid UTF-8 is
 * replaced by U+FFFD.
 *
 * Thread safety: any thread may log (librdkafka logs from its own threads); lines are
 * written whole, one write(2) each, under a mutex. tl_log_configure and tl_log_level
 * are set at start up, before other threads log.
 *
 * Secrets: config.c registers the value of every secret key as it is set
 * (tl_log_redact_value) and every line has those values replaced by "[redacted]";
 * librdkafka's configuration dumps ("name = value") are redacted by key name.
 */
#ifndef TL_LOG_H
#define TL_LOG_H

#include <stddef.h>

enum {
    TL_LOG_ERROR = 0,
    TL_LOG_WARN,
    TL_LOG_INFO,
    TL_LOG_DEBUG
};
enum {
    TL_LOG_KEY_VALUE = 0,
    TL_LOG_JSON
};

extern int tl_log_level;
void tl_log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tl_log_level_parse(const char *s);    /* -1 if unknown */
int tl_log_format_parse(const char *s);   /* "key_value" or "json"; -1 if unknown */

/* Sets level, format and destination from log.level, log.format and log.file (empty
 * file: stderr; otherwise opened for appending, created 0644). Returns 0, or -1 with a
 * message naming the key in err (nothing changed then). */
int tl_log_configure(const char *level, const char *format, const char *file, char *err,
                     size_t errlen);

/* Reopens log.file by its name (after logrotate renamed it): later lines go to the new
 * file. A no-op for stderr. Returns 0, or -1 if the file cannot be opened (lines keep
 * going to the old one, and one error line says why). */
int tl_log_reopen(void);
/* Installs a SIGHUP handler that only sets an atomic flag; the next line logged reopens
 * the file first. */
void tl_log_reopen_on_sighup(void);

/* One librdkafka log line (its log_cb): syslog level, client name, facility, text. */
void tl_log_kafka(int syslog_level, const char *client, const char *facility, const char *buf);

/* Never log this value: every later line has it replaced by "[redacted]". Values
 * shorter than TL_LOG_REDACT_MIN are not registered (they would blank out common words
 * such as a SASL mechanism's name); up to 64 values are kept. */
#define TL_LOG_REDACT_MIN 6
void tl_log_redact_value(const char *value);

/* value as a key_value field value: as it is when it is a plain token, else quoted
 * and escaped. Writes at most len bytes (truncating) and returns out. */
const char *tl_log_quote(char *out, size_t len, const char *value);

#define TL_LOG(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) <= tl_log_level) tl_log_write((lvl), (comp), __VA_ARGS__);                       \
    } while (0)
#define TL_LOG_ERROR(comp, ...) TL_LOG(TL_LOG_ERROR, comp, __VA_ARGS__)
#define TL_LOG_WARN(comp, ...) TL_LOG(TL_LOG_WARN, comp, __VA_ARGS__)
#define TL_LOG_INFO(comp, ...) TL_LOG(TL_LOG_INFO, comp, __VA_ARGS__)
#define TL_LOG_DEBUG(comp, ...) TL_LOG(TL_LOG_DEBUG, comp, __VA_ARGS__)

#endif
