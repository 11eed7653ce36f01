/*
 * jsonl_event.c -- one JSON-lines record -> tl_event, for `replay --format jsonl`.
 *
 * What: the line is one JSON object with the BehaviorEvent field names of
 * schemas/1-behavior_event.avsc, e.g.
 *   {"event_id":"e1","user_id":"u1","item_id":"i9","type":"CLICK","ts":1700000000000,
 *    "category_id":"c3","dwell_ms":1200}
 *
 * How: lib/json parses the line into the batch arena; the event's strings point at
 * the parsed strings (already arena copies), so nothing is copied twice. Unknown
 * fields are ignored, like the fields of a newer writer schema.
 *
 * Invariants: the same conventions as the Avro codec, so both inputs give identical
 * events: absent and null optional fields are "absent" (NULL / has_ = 0); missing
 * required strings stay NULL and are reported by tl_event_validate as
 * TL_DLQ_MISSING_FIELD; type and ts cannot be left unset, so their absence makes the
 * line malformed (-1). partition and offset are left to the caller.
 *
 * Rejected alternatives: a hand-rolled scanner specialised for these keys (faster,
 * but a second JSON parser to keep correct -- escapes, surrogates, UTF-8 -- and
 * replay is dominated by the stages, not by parsing); accepting ts as an ISO-8601
 * string (the Avro field is a long; one representation keeps the formats aligned).
 */
#include "codec.h"
#include "lib/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* An optional string field: 0 with *out (NULL when absent or null), or -1. */
static int get_str(const tl_json *obj, const char *name, const char **out, char *err, size_t errlen)
{
    const tl_json *j = tl_json_get(obj, name);
    *out = NULL;
    if (tl_json_is_null(j)) return 0;
    if (j->type != TL_JSON_STRING)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                           "field %s must be a string, not a %s", name, tl_json_type_name(j->type));
    const char *nul = memchr(j->str, '\0', j->len);
    if (nul)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                           "field %s holds a NUL byte at byte %zu", name, (size_t)(nul - j->str));
    *out = j->str;
    return 0;
}

/* An optional number field: 1 if present, 0 if absent or null, -1 if not a number. */
static int get_num(const tl_json *obj, const char *name, const tl_json **out, char *err,
                   size_t errlen)
{
    const tl_json *j = tl_json_get(obj, name);
    *out = j;
    if (tl_json_is_null(j)) return 0;
    if (j->type != TL_JSON_NUMBER)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                           "field %s must be a number, not a %s", name, tl_json_type_name(j->type));
    return 1;
}

int tl_event_from_json(const char *line, size_t len, tl_event *ev, tl_arena *a, char *err,
                       size_t errlen)
{
    char jerr[128];
    const tl_json *o = tl_json_parse(line, len, a, jerr, sizeof(jerr));
    if (!o)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen, "line is not valid JSON: %s", jerr);
    if (o->type != TL_JSON_OBJECT)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen, "line is a JSON %s, not an object",
                           tl_json_type_name(o->type));

    int32_t partition = ev->partition;
    int64_t offset = ev->offset;
    memset(ev, 0, sizeof(*ev));
    ev->partition = partition;
    ev->offset = offset;

    if (get_str(o, "event_id", &ev->event_id, err, errlen) ||
        get_str(o, "user_id", &ev->user_id, err, errlen) ||
        get_str(o, "item_id", &ev->item_id, err, errlen) ||
        get_str(o, "category_id", &ev->category_id, err, errlen) ||
        get_str(o, "channel", &ev->channel, err, errlen) ||
        get_str(o, "campaign", &ev->campaign, err, errlen))
        return -1;

    const tl_json *t = tl_json_get(o, "type");
    if (tl_json_is_null(t))
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen, "field type is missing");
    if (t->type != TL_JSON_STRING)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                           "field type must be a string, not a %s", tl_json_type_name(t->type));
    int type = tl_event_type_parse(t->str, t->len);
    if (type < 0)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen, "unknown event type \"%.40s\"",
                           t->str);
    ev->type = (tl_event_type)type;

    const tl_json *n;
    int rc = get_num(o, "ts", &n, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0) return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen, "field ts is missing");
    if (!n->is_int)
        return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                           "field ts must be an integer number of ms, not %g", n->num);
    ev->ts = n->i;

    if ((rc = get_num(o, "dwell_ms", &n, err, errlen)) < 0) return -1;
    if (rc) {
        if (!n->is_int || n->i < INT32_MIN || n->i > INT32_MAX)
            return tl_dlq_fail(NULL, TL_DLQ_MALFORMED, err, errlen,
                               "field dwell_ms must be a 32-bit integer, not %g", n->num);
        ev->has_dwell = 1;
        ev->dwell_ms = (int32_t)n->i;
    }
    if ((rc = get_num(o, "value", &n, err, errlen)) < 0) return -1;
    if (rc) {
        ev->has_value = 1;
        ev->value = n->num;
    }
    if ((rc = get_num(o, "propensity", &n, err, errlen)) < 0) return -1;
    if (rc) {
        ev->has_propensity = 1;
        ev->propensity = n->num;
    }
    return 0;
}
