/*
 * fuzz_file_source.c -- the file readers (ingest/file_source.h): canonical CSV, Taobao
 * CSV and JSON lines, as `tally replay` and `tally produce` read them.
 *
 * Input: byte 0 picks the format (bits 0-1: canonical, taobao, jsonl), strict mode
 * (bit 2) and the batch size (bits 3-5: 1 to 8 events per poll, so rows fall on batch
 * boundaries); the rest is the file, written to disk and read through
 * tl_file_source_new and poll() to the end.
 *
 * Asserted (file_source.h is the contract):
 *   - a source that cannot be opened (a bad canonical header) says why;
 *   - poll() returns OK until it returns EOF or (strict) ERROR, within a bounded number
 *     of calls, never more events than asked for;
 *   - every event has a non-empty event_id, user_id and item_id, a type in range,
 *     partition 0 and offset = its data-row number: increasing, at most the rows read;
 *   - the counts add up: events delivered = rows read - bad rows; in strict mode the
 *     source stops at the first bad row (at most one) with an error naming it.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <string.h>

#include "engine/source.h"
#include "ingest/file_source.h"

static char path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    snprintf(path, sizeof(path), "%s/input", fuzz_tmpdir());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    tl_file_format fmt = (tl_file_format)((data[0] & 3) % 3);
    int strict = (data[0] >> 2) & 1, max = 1 + ((data[0] >> 3) & 7);
    fuzz_write_file(path, data + 1, size - 1);

    char err[512] = "";
    tl_source *src = tl_file_source_new(path, fmt, strict, err, sizeof(err));
    if (!src) {
        FUZZ_CHECK(err[0] != '\0', "no message");
        FUZZ_CHECK(fmt == TL_FMT_CANONICAL, "a %s file refused at open: %s",
                   tl_file_format_name(fmt), err);
        return 0;
    }
    tl_batch b;
    tl_batch_init(&b);
    uint64_t delivered = 0;
    int64_t last_offset = 0;
    int rc = TL_SRC_OK;
    /* Every poll of a regular file consumes at least one line or ends it. */
    for (size_t polls = 0; rc == TL_SRC_OK; polls++) {
        FUZZ_CHECK(polls <= size + 2, "no end after %zu polls", polls);
        rc = src->poll(src->ctx, &b, max, 100);
        FUZZ_CHECK(rc == TL_SRC_OK || rc == TL_SRC_EOF || rc == TL_SRC_ERROR, "poll %d", rc);
        FUZZ_CHECK(b.n <= max, "%d events for a poll of %d", b.n, max);
        FUZZ_CHECK(b.n_bad == 0, "a file source put %d records in batch->bad", b.n_bad);
        uint64_t rows;
        tl_file_source_stats(src, &rows, NULL);
        for (int i = 0; i < b.n; i++) {
            const tl_event *ev = &b.events[i];
            FUZZ_CHECK(ev->event_id && ev->event_id[0], "event without an event_id");
            FUZZ_CHECK(ev->user_id && ev->user_id[0], "event without a user_id");
            FUZZ_CHECK(ev->item_id && ev->item_id[0], "event without an item_id");
            FUZZ_CHECK(ev->type >= 0 && ev->type < TL_EVENT_TYPE_COUNT, "type %d", (int)ev->type);
            FUZZ_CHECK(ev->partition == 0, "partition %d", (int)ev->partition);
            FUZZ_CHECK(ev->offset > last_offset && (uint64_t)ev->offset <= rows,
                       "offset %lld after %lld, %llu rows", (long long)ev->offset,
                       (long long)last_offset, (unsigned long long)rows);
            last_offset = ev->offset;
        }
        delivered += (uint64_t)b.n;
    }
    uint64_t rows, bad;
    tl_file_source_stats(src, &rows, &bad);
    FUZZ_CHECK(delivered + bad == rows, "%llu events + %llu bad rows != %llu rows",
               (unsigned long long)delivered, (unsigned long long)bad, (unsigned long long)rows);
    if (rc == TL_SRC_ERROR) {
        const char *e = tl_file_source_error(src);
        FUZZ_CHECK(e && e[0], "an error without a message");
        FUZZ_CHECK(!strncmp(e, path, strlen(path)), "the message does not name the file: %s", e);
    }
    if (strict) FUZZ_CHECK(bad <= 1, "strict, but %llu bad rows", (unsigned long long)bad);
    else
        FUZZ_CHECK(rc == TL_SRC_EOF, "not strict, but poll ended with %d: %s", rc,
                   tl_file_source_error(src));
    tl_batch_destroy(&b);
    tl_file_source_destroy(src);
    return 0;
}
