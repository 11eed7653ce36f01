/*
 * log.c -- key=value log lines to stderr (or a file), one write(2) per line so lines
 * from librdkafka's threads and the main thread never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int tl_log_level = TL_LOG_INFO;
int tl_log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int tl_log_level_parse(const char *s)
{
    for (int i = 0; i <= TL_LOG_DEBUG; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    return -1;
}

void tl_log_write(int level, const char *component, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level < 0 ? 0 : level > TL_LOG_DEBUG ? TL_LOG_DEBUG : level],
                     component);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(tl_log_fd, line, len);
    (void)w;
}
