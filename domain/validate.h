/*
 * validate.h -- what makes a decoded event acceptable, whatever its source: required
 * fields, string bounds and UTF-8, the time range, numbers in range (validate.c). A
 * rejected event becomes a dead letter with the reason and message these give.
 */
#ifndef TL_VALIDATE_H
#define TL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "records.h"

/* The bounds tl_event_validate checks; a user's stored state is bounded by them
 * (docs/operations.md, "Bounds"). */
typedef struct tl_event_limits {
    int64_t ts_min, ts_max;   /* accepted event times, inclusive */
    size_t max_string;        /* bytes of each string field (ingest.max.string.bytes) */
} tl_event_limits;
#define TL_EVENT_MAX_STRING_DEFAULT 512   /* ingest.max.string.bytes' default */

/* Semantic checks every source applies after decoding. 0, or -1 with *reason:
 * TL_DLQ_MISSING_FIELD (event_id, user_id or item_id NULL or empty),
 * TL_DLQ_BAD_TIMESTAMP (ts outside [ts_min, ts_max]), TL_DLQ_BAD_STRING (a string field
 * longer than max_string bytes or not valid UTF-8; the decoders report NUL bytes inside
 * a string the same way), TL_DLQ_BAD_VALUE (negative dwell_ms, non-finite value or
 * propensity, propensity outside (0, 1], type out of range). */
int tl_event_validate(const tl_event *ev, const tl_event_limits *lim, tl_dlq_reason *reason,
                      char *err, size_t errlen);
/* The first NUL byte in the len bytes of a decoded string field, as the TL_DLQ_BAD_STRING
 * error: 0 when there is none, else -1 with *reason and err set. */
int tl_string_check_nul(const char *field, const void *s, size_t len, tl_dlq_reason *reason,
                        char *err, size_t errlen);

/* Sets *reason to r (when reason is not NULL) and err to the formatted message (when
 * err is not NULL); returns -1. For decoders reporting a bad record. */
int tl_dlq_fail(tl_dlq_reason *reason, tl_dlq_reason r, char *err, size_t errlen, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

#endif
