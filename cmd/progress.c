/*
 * progress.c -- the progress line (progress.h).
 */
#include "progress.h"
#include "lib/util.h"

#include <stdio.h>
#include <unistd.h>

void tl_progress_init(tl_progress *p, const char *what, const char *unit, int quiet)
{
    p->what = what;
    p->unit = unit;
    p->on = !quiet && isatty(STDERR_FILENO);
    p->shown = 0;
    p->t0 = p->last = tl_mono_ns();
}

/* 1234567 -> "1,234,567" */
static void thousands(char *out, size_t n, uint64_t v)
{
    char d[32];
    int len = snprintf(d, sizeof(d), "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
}

void tl_progress_update(tl_progress *p, uint64_t count, uint64_t bytes, int64_t total_bytes)
{
    if (!p->on) return;
    int64_t now = tl_mono_ns();
    if (now - p->last < 500000000) return;
    p->last = now;
    double secs = (double)(now - p->t0) / 1e9;
    char c[40], rate[40], rest[96] = "";
    thousands(c, sizeof(c), count);
    thousands(rate, sizeof(rate), secs > 0 ? (uint64_t)((double)count / secs) : 0);
    if (total_bytes > 0 && bytes > 0) {
        double done = (double)bytes / (double)total_bytes;
        char eta[32];
        tl_fmt_duration(eta, sizeof(eta), (int64_t)(secs * (1 / done - 1) * 1000));
        snprintf(rest, sizeof(rest), ", %.0f%% of %.1f MB, about %s left", 100 * done,
                 (double)total_bytes / 1e6, eta);
    }
    fprintf(stderr, "\r\033[K%s: %s %s (%s/s)%s", p->what, c, p->unit, rate, rest);
    fflush(stderr);
    p->shown = 1;
}

void tl_progress_end(tl_progress *p)
{
    if (p->shown) fputs("\r\033[K", stderr);
    p->shown = 0;
}
