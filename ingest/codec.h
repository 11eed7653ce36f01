/*
 * codec.h -- BehaviorEvent records: Confluent-framed Avro <-> tl_event, event
 * validation, and the JSON-lines form of an event.
 *
 * Wire format (Confluent): byte 0 = magic 0, bytes 1..4 = schema id (big-endian),
 * then the Avro binary encoding of one record in the writer schema named by the id.
 * The codec resolves any writer schema to its reader schema (TL_EVENT_SCHEMA, version 2
 * of the event schema; version 1 lacks campaign) with Avro's rules: writer-only fields are skipped, reader-only fields take
 * their default (an error if they have none), types are promoted (int -> long ...),
 * enum symbols are matched by name.
 *
 * Ownership: strings of a decoded event are copied into the caller's arena and live
 * as long as it (event.h). The codec borrows the schema store, which must outlive it.
 * ev->partition and ev->offset are left untouched by decode and from_json (the source
 * sets them).
 *
 * Threading: a codec is used by one thread (it reuses Avro values between calls);
 * several codecs may share one schema store.
 *
 * Return codes of tl_codec_decode: 0; TL_CODEC_BAD (-1): the record is bad, *reason
 * says why and err has one sentence -- dead-letter it; TL_CODEC_RETRY (-2): the
 * writer schema could not be fetched for a reason that is not the record's fault
 * (registry unreachable) -- do not dead-letter, retry or stop.
 */
#ifndef TL_CODEC_H
#define TL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "domain/event.h"
#include "domain/records.h"
#include "schema_store.h"
#include "domain/validate.h"
#include "lib/util.h"

typedef struct tl_codec tl_codec;

/* tally's reader schema of events, in the schema directory, and its id there: what
 * tally produce and the demo write with when no registry gives another id. */
#define TL_EVENT_SCHEMA "10-behavior_event.avsc"
#define TL_EVENT_SCHEMA_ID 10

enum {
    TL_CODEC_OK = 0,
    TL_CODEC_BAD = -1,
    TL_CODEC_RETRY = -2
};

#define TL_CODEC_DEFAULT_MAX_BYTES (1024 * 1024)
#define TL_CODEC_FRAME_HEADER 5

/* Loads the reader schema (a BehaviorEvent-shaped record) from reader_schema_path.
 * Fails if the file is not an Avro record, or if a field tally knows has a type it
 * cannot map (e.g. ts not a long). NULL on error. */
tl_codec *tl_codec_new(tl_schema_store *store, const char *reader_schema_path, char *err,
                       size_t errlen);
void tl_codec_destroy(tl_codec *c);

/* Records longer than max bytes (frame included) are TL_DLQ_OVERSIZED. */
void tl_codec_set_max_bytes(tl_codec *c, size_t max);

/* Decodes one framed record into *ev (see the return codes above). Reasons:
 * TL_DLQ_OVERSIZED, TL_DLQ_NOT_FRAMED (shorter than 5 bytes or magic byte != 0),
 * TL_DLQ_UNKNOWN_SCHEMA, TL_DLQ_INCOMPATIBLE_SCHEMA (the writer schema does not
 * resolve to the reader's, or the record uses a writer union branch / enum symbol the
 * reader cannot represent), TL_DLQ_MALFORMED (body truncated, invalid, or followed
 * by extra bytes). Never reads outside buf[0..len). */
int tl_codec_decode(tl_codec *c, const void *buf, size_t len, tl_event *ev, tl_arena *a,
                    tl_dlq_reason *reason, char *err, size_t errlen);

/* The fast path (codec.c): records whose writer schema has the reader schema's
 * canonical form are decoded by a hand-written parser instead of avro-c's resolver,
 * with the same results, reasons and messages. It is on by default; off makes every
 * record take the generic path (for tests and benchmarks that compare the two). */
void tl_codec_set_fast_path(tl_codec *c, int on);

/* 1 when the next record of writer schema id would take the fast path: the id has
 * been decoded before, its schema has the reader's canonical form, and the fast path
 * is on. 0 otherwise. For tests and diagnostics. */
int tl_codec_uses_fast_path(tl_codec *c, int32_t id);

/* Appends the framed Avro encoding of ev in the reader schema, tagged with schema_id
 * (the id under which the reader schema is registered), to out. -1 if ev cannot be
 * represented (a required string is NULL, type out of range). */
int tl_codec_encode_event(tl_codec *c, int32_t schema_id, const tl_event *ev, tl_buf *out);

/* (jsonl_event.c) One JSON object with the BehaviorEvent field names: "type" is the
 * enum symbol (case-insensitive), "ts" integral ms; optional fields may be absent or
 * null; unknown fields are ignored. Missing or null event_id/user_id/item_id are left
 * NULL for tl_event_validate to report as TL_DLQ_MISSING_FIELD. -1 (a malformed line)
 * when the text is not a JSON object, type or ts is missing, or a field has the wrong
 * JSON type or is out of range. Strings are allocated in a. */
int tl_event_from_json(const char *line, size_t len, tl_event *ev, tl_arena *a, char *err,
                       size_t errlen);

#endif
