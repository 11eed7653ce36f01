/*
 * names.c -- the names of tally's enums, as they appear in Avro symbols, JSON output,
 * metrics labels and explanations. One table per enum, so a name is defined once.
 */
#include "event.h"
#include "records.h"

#include <strings.h>
#include <string.h>

static const char *const type_names[TL_EVENT_TYPE_COUNT] = {
    "IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART", "PURCHASE",
};
static const char *const type_phrases[TL_EVENT_TYPE_COUNT] = {
    "impression", "browse", "click", "favorite", "add-to-cart", "purchase",
};

const char *tl_event_type_name(tl_event_type t)
{
    return (unsigned)t < TL_EVENT_TYPE_COUNT ? type_names[t] : NULL;
}

const char *tl_event_type_phrase(tl_event_type t)
{
    return (unsigned)t < TL_EVENT_TYPE_COUNT ? type_phrases[t] : "event";
}

int tl_event_type_parse(const char *s, size_t len)
{
    for (int i = 0; i < TL_EVENT_TYPE_COUNT; i++)
        if (strlen(type_names[i]) == len && strncasecmp(s, type_names[i], len) == 0) return i;
    return -1;
}

static const char *const dim_names[TL_DIM_COUNT] = {"category", "item", "channel"};

const char *tl_dim_name(tl_dim d) { return (unsigned)d < TL_DIM_COUNT ? dim_names[d] : "?"; }

int tl_dim_parse(const char *s)
{
    for (int i = 0; i < TL_DIM_COUNT; i++)
        if (strcasecmp(s, dim_names[i]) == 0) return i;
    return -1;
}

static const char *const method_names[TL_M_COUNT] = {
    "last_touch", "first_touch", "linear", "time_decay", "position_based", "shapley", "removal",
};

const char *tl_method_name(tl_method m) { return (unsigned)m < TL_M_COUNT ? method_names[m] : "?"; }

static const char *const dlq_names[TL_DLQ_REASON_COUNT] = {
    "not_framed",    "unknown_schema", "incompatible_schema", "malformed",  "missing_field",
    "bad_timestamp", "oversized",      "bad_value",           "bad_string", "key_mismatch",
};

const char *tl_dlq_reason_name(tl_dlq_reason r)
{
    return (unsigned)r < TL_DLQ_REASON_COUNT ? dlq_names[r] : "unknown";
}
