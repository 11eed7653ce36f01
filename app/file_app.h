/*
 * file_app.h -- the pipeline over a file (`tally replay`): the file source, the stages of
 * `run`, and a JSON-lines sink, with the state in a temporary directory (removed at the
 * end) unless state.dir is set, so a replay never mixes with a running instance's state.
 */
#ifndef TL_APP_FILE_APP_H
#define TL_APP_FILE_APP_H

#include "lib/config.h"
#include "engine/runtime.h"
#include "ingest/file_source.h"
#include "model/pipeline.h"
#include "sink/sinks.h"

#include <stdio.h>

typedef struct tl_file_app_args {
    const char *input;      /* a file, or "-" for stdin */
    tl_file_format format;
    int strict;             /* stop at the first bad row */
    const char *output;     /* the JSON lines: a file, or "-" for stdout */
    void (*tick)(void *arg);   /* the runtime's once-a-second tick, or NULL */
    void *tick_arg;
} tl_file_app_args;

/* What a replay is made of; its parts are the caller's to read (summaries, progress). */
typedef struct tl_file_app {
    FILE *out;
    const char *output;
    tl_source *src;
    tl_sink *sink;
    tl_pipeline p;
    tl_runtime *rt;
    int pipeline_ready;
    char tmpdir[32];   /* the temporary state directory, "" when state.dir is set */
} tl_file_app;

/* Opens the file, the output, the sink, the state directory and the stages. 0; 2 with err for a
 * configuration error; 1 with err otherwise. tl_file_app_close after either. */
int tl_file_app_open(tl_file_app *fa, const tl_config *c, const tl_file_app_args *a, char *err,
                     size_t errlen);
/* Runs the file to its end (or tl_stop). 0, or 1 with err (the source's reason). */
int tl_file_app_run(tl_file_app *fa, char *err, size_t errlen);
/* Frees everything open and removes the temporary state directory. 0, or -1 with err
 * when the output could not be written in full. */
int tl_file_app_close(tl_file_app *fa, char *err, size_t errlen);

#endif
