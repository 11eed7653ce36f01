/*
 * fuzz_codec.c -- the Avro codec's decoder (ingest/codec.h, tl_codec_decode) on
 * Confluent-framed records, fast path against generic path.
 *
 * Input: byte 0 picks the reader schema (the product's, or one of the other reader
 * shapes of fuzz_common.c); the rest is the record as it would come from Kafka (magic
 * byte, schema id, Avro body). The schema id selects a writer among the files of the
 * schema directory (fuzz_common.c), so resolution from older, newer, reordered and
 * refused writers is reached as well as the fast path (a writer with the reader's
 * canonical form).
 *
 * Asserted, on every input:
 *   - the fast path and the generic path give the same return code, and on failure the
 *     same reason and message, on success the same event, field by field and doubles
 *     bit for bit (codec.h: "with the same results, reasons and messages");
 *   - the return code is TL_CODEC_OK or TL_CODEC_BAD (the schema directory answers every
 *     id: TL_CODEC_RETRY would mean a registry error with no registry), with a reason in
 *     range and a message on failure;
 *   - partition and offset of the event are left untouched (codec.h);
 *   - a decoded event re-encoded in the reader schema (tl_codec_encode_event) decodes
 *     back to the identical event, on both paths.
 * The record is copied to an exact-size block so ASan sees any read past its end.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"

typedef struct reader {
    int32_t id;
    tl_codec *codec;
} reader;

static tl_schema_store *store;
static reader readers[8];
static int n_readers;

/* At exit, so LeakSanitizer's check at exit sees only what the inputs leaked. */
static void cleanup(void)
{
    for (int i = 0; i < n_readers; i++) tl_codec_destroy(readers[i].codec);
    tl_schema_store_destroy(store);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    char dir[1024], err[512], path[1200];
    snprintf(dir, sizeof(dir), "%s/schemas", fuzz_tmpdir());
    fuzz_write_schema_dir(dir);
    tl_schema_store_opts o = {.dir = dir};
    store = tl_schema_store_new(&o, err, sizeof(err));
    if (!store) fuzz_fail(__FILE__, __LINE__, "store", "%s", err);
    readers[n_readers].id = FUZZ_ID_READER;
    readers[n_readers++].codec = tl_codec_new(store, fuzz_reader_schema_path(), err, sizeof(err));
    for (int i = 0; i < fuzz_n_schemas; i++) {
        if (!fuzz_schemas[i].reader) continue;
        snprintf(path, sizeof(path), "%s/%d-%s.avsc", dir, (int)fuzz_schemas[i].id,
                 fuzz_schemas[i].name);
        readers[n_readers].id = fuzz_schemas[i].id;
        readers[n_readers++].codec = tl_codec_new(store, path, err, sizeof(err));
    }
    for (int i = 0; i < n_readers; i++)
        if (!readers[i].codec) fuzz_fail(__FILE__, __LINE__, "codec", "reader %d: %s", i, err);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const reader *r = &readers[data[0] % n_readers];
    fuzz_codec_check(r->codec, r->id, data + 1, size - 1, fuzz_arena());
    tl_arena_reset(fuzz_arena());
    return 0;
}
