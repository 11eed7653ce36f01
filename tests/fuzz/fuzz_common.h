/*
 * fuzz_common.h -- what the libFuzzer harnesses of tests/fuzz share (docs/fuzzing.md).
 *
 * Conventions:
 *   - A harness is one fuzz_<name>.c defining LLVMFuzzerTestOneInput (and, when it
 *     needs set-up, LLVMFuzzerInitialize). It calls the product's public functions only;
 *     where the decoder is a static function of cmd/, the harness links the command's
 *     files (tally_fuzz_cmd, fuzz.cmake) and calls the nearest public entry.
 *   - A broken property is reported with FUZZ_CHECK: one line on stderr naming the
 *     harness's file:line and what differed, then abort(), which libFuzzer records as a
 *     crash (a crash-<sha1> file). Sanitizer reports end the run the same way.
 *   - Per-process scratch (schema directories, RocksDB stores, input files) lives in
 *     fuzz_tmpdir(), one directory under $TMPDIR made at start-up and removed at exit;
 *     tests/fuzz/run.sh points TMPDIR into the build tree and removes it too, so a
 *     crashed run leaves nothing behind in /tmp.
 *   - tally's log goes to /dev/null at debug level (so the formatting of hostile bytes
 *     in messages is exercised, not skipped); TALLY_FUZZ_LOG=stderr shows it.
 *   - Nothing here is thread-safe: libFuzzer calls a harness from one thread.
 */
#ifndef TL_FUZZ_COMMON_H
#define TL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/json.h"
#include "domain/event.h"
#include "ingest/codec.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                            \
    } while (0)

__attribute__((noreturn, format(printf, 4, 5))) void fuzz_fail(const char *file, int line,
                                                               const char *cond, const char *fmt,
                                                               ...);

/* Quiets tally's log (see above) and makes the scratch directory. Every harness's
 * initializer calls it first. */
void fuzz_init(void);

/* The model configuration of the defaults, with model and Markov chain on, the
 * checkpoint file in the scratch directory (the harness fails if the defaults do not
 * load). */
void fuzz_model_cfg(tl_model_cfg *mc, char *path, size_t path_len);

/* An arena for what one input makes (parse trees, records): fuzz_init makes it, a
 * harness resets it after each input, and it is destroyed at exit, so LeakSanitizer's
 * check at exit sees only what the inputs leaked. */
tl_arena *fuzz_arena(void);

/* The process's scratch directory (fuzz_init made it). */
const char *fuzz_tmpdir(void);

/* Writes data[0..n) to path (created or truncated). Aborts on failure: the harness
 * cannot test anything without its files. */
void fuzz_write_file(const char *path, const void *data, size_t n);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated; *n without the NUL), or
 * NULL if it cannot be opened. */
char *fuzz_read_file(const char *path, size_t *n);

/* Runs a `tally` command's entry (tl_cmd_paths, tl_cmd_report...) that writes JSON to
 * out_path, with its messages on stderr sent to /dev/null (glibc's stderr is a variable:
 * the command's fprintf(stderr) goes there, while libFuzzer, which kept its own FILE, and
 * the sanitizers, on fd 2, still report). Checks that it exits 0 or 1 (never 2, a usage
 * error: the harness's arguments are right); on 0, that out_path holds a JSON object,
 * which it returns (in fuzz_arena()); NULL on 1. */
const tl_json *fuzz_run_json_cmd(int (*cmd)(int, char **), int argc, char **argv,
                                 const char *out_path);

/* Removes a directory tree (or a file). */
void fuzz_rmtree(const char *path);

/* 1 when both strings are NULL or equal. */
int fuzz_str_eq(const char *a, const char *b);

/* Field by field, doubles bit for bit (a decoded NaN must be the same NaN): 1 if the
 * events are identical, else 0 with the first differing field's name in *field. */
int fuzz_events_identical(const tl_event *a, const tl_event *b, const char **field);

/* The event as one JSON object with the BehaviorEvent field names, every field present
 * (null when absent), as tl_event_from_json reads it; appended to b. */
void fuzz_event_to_json(tl_buf *b, const tl_event *ev);

/* Decodes buf[0..len) (copied to an exact-size block, so ASan sees a read past its end)
 * with c on the fast path and on the generic path and checks what fuzz_codec.c's comment
 * lists: same code, reason, message and event; TL_CODEC_OK or TL_CODEC_BAD only;
 * partition and offset untouched; a decoded event re-encoded in c's reader schema (tagged
 * reader_id, which must name that schema in c's store) decodes back identically.
 * Strings go into a. Returns the code. */
int fuzz_codec_check(tl_codec *c, int32_t reader_id, const uint8_t *buf, size_t len, tl_arena *a);

/* ---- schemas --------------------------------------------------------------------------
 * The schema directory the codec harnesses and the seed generator share: the product's
 * reader schema (schemas/10-behavior_event.avsc, read from TALLY_SCHEMA_DIR) as id 1, and
 * the writer and reader shapes below under their ids. */

typedef struct fuzz_schema {
    int32_t id;
    const char *name;    /* the file is <id>-<name>.avsc */
    const char *json;
    int reader;          /* also used as a reader schema by fuzz_codec */
} fuzz_schema;

extern const fuzz_schema fuzz_schemas[];
extern const int fuzz_n_schemas;

#define FUZZ_ID_READER 1

/* Creates dir and writes the product reader schema and every fuzz_schemas[] file in it. */
void fuzz_write_schema_dir(const char *dir);

/* The path of the product's reader schema. */
const char *fuzz_reader_schema_path(void);

#endif
