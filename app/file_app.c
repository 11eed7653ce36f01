/*
 * file_app.c -- the pipeline over a file (file_app.h): what `tally replay` runs.
 */
#define _XOPEN_SOURCE 700
#include "file_app.h"
#include "config.h"
#include "shutdown.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_file_app_open(tl_file_app *fa, const tl_config *c, const tl_file_app_args *a, char *err,
                     size_t errlen)
{
    memset(fa, 0, sizeof(*fa));
    const tl_app_cfg ac = tl_app_cfg_of(c);
    fa->src = tl_file_source_new(a->input, a->format, a->strict, err, errlen);
    if (!fa->src) return 1;
    tl_file_source_set_max_string(fa->src, (size_t)ac.max_string_bytes);
    fa->output = a->output;
    fa->out = strcmp(a->output, "-") ? fopen(a->output, "w") : stdout;
    if (!fa->out) {
        snprintf(err, errlen, "cannot write %s", a->output);
        return 1;
    }
    static char outbuf[1 << 20];
    setvbuf(fa->out, outbuf, _IOFBF, sizeof(outbuf));
    fa->sink = tl_jsonl_sink_new(fa->out);
    tl_runtime_opts o;
    tl_app_runtime_opts(&ac, &o);
    if (!strcmp(ac.state_dir, "./tally-state")) {   /* not set: a directory of its own */
        snprintf(fa->tmpdir, sizeof(fa->tmpdir), "/tmp/tally-replay-XXXXXX");
        if (!mkdtemp(fa->tmpdir)) {
            fa->tmpdir[0] = 0;
            snprintf(err, errlen, "cannot create a temporary state directory");
            return 1;
        }
        o.state_dir = fa->tmpdir;
    }
    char e[512];
    if (tl_pipeline_init(&fa->p, c, o.state_dir, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "configuration error: %s", e);
        return 2;
    }
    fa->pipeline_ready = 1;
    o.tick = a->tick;
    o.tick_arg = a->tick_arg;
    fa->rt = tl_runtime_new(&o, fa->sink, fa->p.stages, fa->p.n_stages);
    return 0;
}

int tl_file_app_run(tl_file_app *fa, char *err, size_t errlen)
{
    if (tl_runtime_run(fa->rt, fa->src, &tl_stop) == 0) return 0;
    const char *why = tl_file_source_error(fa->src);
    snprintf(err, errlen, "replay stopped%s%s", why ? ": " : "", why ? why : "");
    return 1;
}

int tl_file_app_close(tl_file_app *fa, char *err, size_t errlen)
{
    int rc = 0;
    tl_runtime_destroy(fa->rt);
    if (fa->pipeline_ready) tl_pipeline_destroy(&fa->p);
    if (fa->sink) tl_sink_destroy(fa->sink);
    if (fa->src) tl_file_source_destroy(fa->src);
    if (fa->out && fa->out != stdout && fclose(fa->out) != 0) {
        snprintf(err, errlen, "error writing %s", fa->output);
        rc = -1;
    }
    if (fa->tmpdir[0]) tl_rmtree(fa->tmpdir);
    memset(fa, 0, sizeof(*fa));
    return rc;
}
