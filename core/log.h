/*
 * log.h -- one line per event, key=value.
 *
 *   TL_LOG_INFO("ingest", "assigned partitions=%d", n);
 *   -> 2026-11-22T09:42:36.123Z level=info component=ingest assigned partitions=3
 *
 * Levels below tl_log_level are filtered before the arguments are formatted. Logging
 * is thread-safe (one write(2) per line). Secrets are never passed to the logger:
 * config values whose keys look secret are redacted by config.c before they could be.
 */
#ifndef TL_LOG_H
#define TL_LOG_H

enum { TL_LOG_ERROR = 0, TL_LOG_WARN, TL_LOG_INFO, TL_LOG_DEBUG };

extern int tl_log_level;
void tl_log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tl_log_level_parse(const char *s);   /* -1 if unknown */

#define TL_LOG(lvl, comp, ...)                                   \
    do {                                                         \
        if ((lvl) <= tl_log_level)                               \
            tl_log_write((lvl), (comp), __VA_ARGS__);            \
    } while (0)
#define TL_LOG_ERROR(comp, ...) TL_LOG(TL_LOG_ERROR, comp, __VA_ARGS__)
#define TL_LOG_WARN(comp, ...)  TL_LOG(TL_LOG_WARN, comp, __VA_ARGS__)
#define TL_LOG_INFO(comp, ...)  TL_LOG(TL_LOG_INFO, comp, __VA_ARGS__)
#define TL_LOG_DEBUG(comp, ...) TL_LOG(TL_LOG_DEBUG, comp, __VA_ARGS__)

#endif
