/*
 * file_source.h -- a tl_source (engine/source.h) that reads events from a file or stdin.
 *
 * Formats:
 *   TL_FMT_CANONICAL  CSV with the header
 *                       event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value
 *                     and optionally the trailing columns ",propensity" and ",campaign" (in
 *                     that order, each on its own or both). ts in ms; type is the Avro
 *                     symbol (ADD_TO_CART, ...), case-insensitive; category_id, channel,
 *                     dwell_ms, value (and propensity, campaign) may be empty. Fields may be
 *                     double-quoted ("" for a quote inside), but not span lines.
 *   TL_FMT_TAOBAO     the Taobao UserBehavior CSV: no header,
 *                       user_id,item_id,category_id,behavior,ts_seconds
 *                     with behavior pv/cart/fav/buy -> BROWSE/ADD_TO_CART/FAVORITE/PURCHASE
 *                     and ts = seconds * 1000.
 *   TL_FMT_JSONL      one JSON object per line, decoded by tl_event_from_json
 *                     (ingest/codec.h).
 *
 * Rows: a data row is a non-blank line after the canonical header (blank lines are
 * skipped and do not count). Each event gets offset = its 1-based data-row number and
 * partition = 0; rows without an event id (Taobao always, canonical when the column is
 * empty, JSON when the field is absent or empty) get that number, in decimal, as their
 * id. A bad row still uses up its number, so ids stay row numbers. Lines end in LF or
 * CRLF; the last line may lack its newline.
 *
 * Bad rows (wrong column count, unparsable number, unknown type or behaviour, empty
 * user_id or item_id, invalid JSON, a value tl_event_validate rejects such as a
 * propensity outside (0, 1]) get a message naming the file and line, e.g.
 * "input.csv:17: unknown behavior 'xyz'", logged at WARN (the first 100 of them).
 * Strict: the source stops; poll() returns the events before the bad row with TL_SRC_OK,
 * then TL_SRC_ERROR, and tl_file_source_error() has the message. Otherwise the row is
 * skipped and counted (tl_file_source_stats). Skipped rows are not put into batch->bad:
 * a file is replayed by a person who gets the counts and the log, not a dead-letter topic.
 * A missing or wrong canonical header is always fatal.
 *
 * Ownership and threading: the source owns its file descriptor (stdin is not closed) and
 * buffer; events' strings live in the batch's arena. One thread uses a source at a time.
 * Release with tl_file_source_destroy(s) (same as s->destroy(s->ctx)).
 */
#ifndef TL_FILE_SOURCE_H
#define TL_FILE_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "engine/source.h"

typedef enum tl_file_format {
    TL_FMT_CANONICAL = 0,
    TL_FMT_TAOBAO,
    TL_FMT_JSONL
} tl_file_format;

/* "canonical" (or "csv"), "taobao", "jsonl" (or "json"); case-insensitive; -1 if unknown. */
int tl_file_format_parse(const char *s);
/* "canonical", "taobao", "jsonl"; NULL for an out-of-range value. */
const char *tl_file_format_name(tl_file_format fmt);

/* Opens path ("-" = stdin). For a regular file in canonical format the header is checked
 * here. Returns NULL with a message in err on failure. strict: see above. */
tl_source *tl_file_source_new(const char *path, tl_file_format fmt, int strict, char *err,
                              size_t errlen);
void tl_file_source_destroy(tl_source *s);   /* NULL is a no-op */
/* The longest string field accepted (ingest.max.string.bytes; default
 * TL_EVENT_MAX_STRING_DEFAULT): longer ones make the row bad, as on Kafka. */
void tl_file_source_set_max_string(tl_source *s, size_t max);

/* Reads the whole file at path (not stdin) once, quietly (bad rows skipped, not logged),
 * for the event-time span of its valid events: min_ts and max_ts (INT64_MAX and INT64_MIN
 * when there is none) and their number. 0, or -1 when it cannot be opened or read. */
int tl_file_source_span(const char *path, tl_file_format fmt, size_t max_string, int64_t *min_ts,
                        int64_t *max_ts, uint64_t *events);

/* The most recent error (bad row, bad header, I/O error) as "name:line: reason", or
 * NULL if there was none. Valid until the next poll or destroy. */
const char *tl_file_source_error(tl_source *s);

/* rows: data rows read so far, good and bad; bad: rows rejected. Either may be NULL. */
void tl_file_source_stats(tl_source *s, uint64_t *rows, uint64_t *bad);
/* Bytes read so far, and the file's size (-1 when not a regular file), for progress. */
void tl_file_source_progress(tl_source *s, uint64_t *bytes, int64_t *size);

#endif
