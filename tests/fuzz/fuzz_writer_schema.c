/*
 * fuzz_writer_schema.c -- writer schemas: a schema file as a producer would register it,
 * parsed by the schema store (ingest/schema_store.h, a schema.dir file found on a miss)
 * and resolved by the codec (ingest/codec.h) against the product's reader schema, then a
 * record body decoded with it.
 *
 * Input: the writer schema's JSON text, a NUL byte, then the Avro body of one record in
 * that schema (no NUL: an empty body). The harness writes the schema as the file of id 2
 * in a schema directory that holds the reader as id 1, opens a new store and codec (the
 * codec caches every writer it has seen: a new one per input keeps inputs independent and
 * memory flat), and decodes the framed body: the schema is found by the directory rescan
 * on a miss, parsed by avro-c, checked and planned by the codec (fast path when its
 * canonical form is the reader's).
 *
 * Asserted: the same properties as fuzz_codec (fast path and generic path agree in code,
 * reason, message and event; only TL_CODEC_OK or TL_CODEC_BAD; partition and offset
 * untouched; a decoded event re-encoded in the reader schema decodes back identically),
 * and that a schema the store cannot use is reported as a bad record with a reason and
 * a message, never as a crash or TL_CODEC_RETRY.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"

#define WRITER_ID 2

static char dir[1024], writer_path[1200];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    snprintf(dir, sizeof(dir), "%s/schemas", fuzz_tmpdir());
    if (mkdir(dir, 0755) != 0) fuzz_fail(__FILE__, __LINE__, "mkdir", "%s", dir);
    /* Only the reader: the writer's file is written per input. */
    size_t n;
    char *reader = fuzz_read_file(fuzz_reader_schema_path(), &n);
    if (!reader) fuzz_fail(__FILE__, __LINE__, "reader", "%s", fuzz_reader_schema_path());
    char path[1200];
    snprintf(path, sizeof(path), "%s/%d-reader.avsc", dir, FUZZ_ID_READER);
    fuzz_write_file(path, reader, n);
    free(reader);
    snprintf(writer_path, sizeof(writer_path), "%s/%d-writer.avsc", dir, WRITER_ID);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t schema_len = nul ? (size_t)(nul - data) : size;
    const uint8_t *body = nul ? nul + 1 : data + size;
    size_t body_len = (size_t)(data + size - body);

    char err[512] = "";
    /* The store scans the directory (the reader only) now; the writer's file, written
     * after, is found by the rescan of a miss, as a file dropped in at run time is. */
    tl_schema_store_opts o = {.dir = dir};
    tl_schema_store *store = tl_schema_store_new(&o, err, sizeof(err));
    FUZZ_CHECK(store != NULL, "%s", err);
    fuzz_write_file(writer_path, data, schema_len);
    tl_codec *c = tl_codec_new(store, fuzz_reader_schema_path(), err, sizeof(err));
    FUZZ_CHECK(c != NULL, "%s", err);

    uint8_t *frame = malloc(TL_CODEC_FRAME_HEADER + body_len);
    frame[0] = 0;
    frame[1] = frame[2] = frame[3] = 0;
    frame[4] = WRITER_ID;
    if (body_len) memcpy(frame + TL_CODEC_FRAME_HEADER, body, body_len);
    fuzz_codec_check(c, FUZZ_ID_READER, frame, TL_CODEC_FRAME_HEADER + body_len, fuzz_arena());
    /* A second record of the same writer: the entry cached by the first. */
    fuzz_codec_check(c, FUZZ_ID_READER, frame, TL_CODEC_FRAME_HEADER + body_len, fuzz_arena());
    free(frame);

    tl_codec_destroy(c);
    tl_schema_store_destroy(store);
    unlink(writer_path);
    tl_arena_reset(fuzz_arena());
    return 0;
}
