/*
 * markov_paths.h -- an aggregated path file in ChannelAttribution's format read into a
 * Markov chain (markov_paths.c says the format).
 */
#ifndef TL_MARKOV_PATHS_H
#define TL_MARKOV_PATHS_H

#include "markov.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Called every 1024 lines with the lines and bytes read so far. */
typedef void (*tl_paths_progress_fn)(void *arg, uint64_t lines, uint64_t bytes);

/* Reads the whole of in (named name in messages) into m. 0, or -1 with err naming the
 * line and what is wrong with it. progress may be NULL. */
int tl_markov_read_paths(tl_markov *m, FILE *in, const char *name, tl_paths_progress_fn progress,
                         void *arg, char *err, size_t errlen);

#endif
