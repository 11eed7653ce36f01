/*
 * event.h -- the behaviour event, tally's one input record.
 *
 * Conventions (for every tl_ header):
 *   - Symbols carry the tl_ prefix, then the module name (tl_event_, tl_arena_, ...).
 *   - Functions return 0 on success and -1 on error unless documented otherwise;
 *     an error message, where one is useful, goes into a caller-provided buffer
 *     (char *err, size_t errlen) and is one plain sentence.
 *   - Pointers inside a tl_event are borrowed: they point into the buffer the event
 *     was decoded from (usually a tl_arena owned by the batch) and live as long as it.
 *   - Optional fields are NULL (strings) or have a has_ flag (numbers).
 */
#ifndef TL_EVENT_H
#define TL_EVENT_H

#include <stdint.h>
#include <stddef.h>

typedef enum tl_event_type {
    TL_IMPRESSION = 0,
    TL_BROWSE,
    TL_CLICK,
    TL_FAVORITE,
    TL_ADD_TO_CART,
    TL_PURCHASE,
    TL_EVENT_TYPE_COUNT
} tl_event_type;

typedef struct tl_event {
    const char *event_id;     /* required */
    const char *user_id;      /* required */
    const char *item_id;      /* required */
    const char *category_id;  /* optional: NULL when absent */
    const char *channel;      /* optional: NULL when absent */
    const char *campaign;     /* optional: NULL when absent (reader schema version 2) */
    tl_event_type type;
    int64_t ts;               /* event time, ms since the epoch */
    int32_t dwell_ms;         /* valid when has_dwell */
    double value;             /* valid when has_value */
    double propensity;        /* valid when has_propensity */
    unsigned has_dwell : 1, has_value : 1, has_propensity : 1;
    /* Where the event came from: input partition (0 for files) and offset
     * (the Kafka offset, or the 1-based data row of a file). */
    int32_t partition;
    int64_t offset;
    int64_t log_ts;           /* the Kafka record's timestamp (ms), 0 when unknown */
} tl_event;

/* "ADD_TO_CART" etc. (the Avro enum symbol); NULL for an out-of-range value. */
const char *tl_event_type_name(tl_event_type t);
/* "add-to-cart" etc., for explanations. */
const char *tl_event_type_phrase(tl_event_type t);
/* The indefinite article for that phrase: "an" (impression, add to cart) or "a". */
static inline const char *tl_event_type_article(tl_event_type t)
{
    return t == TL_IMPRESSION || t == TL_ADD_TO_CART ? "an" : "a";
}
/* Parses an Avro symbol ("ADD_TO_CART"), case-insensitively; -1 if unknown. */
int tl_event_type_parse(const char *s, size_t len);

#endif
