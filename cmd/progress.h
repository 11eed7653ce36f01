/*
 * progress.h -- one self-rewriting progress line on stderr for the commands that read a
 * file (replay, produce, paths): count, rate, and with a known size the share done and an
 * estimate of the time left. Only when stderr is a terminal and --quiet is not given; a
 * log or a pipe gets nothing.
 */
#ifndef TL_CMD_PROGRESS_H
#define TL_CMD_PROGRESS_H

#include <stdint.h>

typedef struct tl_progress {
    const char *what, *unit;   /* "replay", "events" */
    int on, shown;
    int64_t t0, last;
} tl_progress;

void tl_progress_init(tl_progress *p, const char *what, const char *unit, int quiet);
/* count done so far; bytes of total_bytes read (total_bytes < 0: unknown). Rewrites the
 * line at most twice a second. */
void tl_progress_update(tl_progress *p, uint64_t count, uint64_t bytes, int64_t total_bytes);
/* Clears the line (the command's summary follows). */
void tl_progress_end(tl_progress *p);

#endif
