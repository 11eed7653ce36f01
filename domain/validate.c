/*
 * validate.c -- the checks an event gets from every source after decoding (validate.h).
 */
#include "validate.h"
#include "lib/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tl_dlq_fail(tl_dlq_reason *reason, tl_dlq_reason r, char *err, size_t errlen, const char *fmt,
                ...)
{
    if (reason) *reason = r;
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tl_string_check_nul(const char *field, const void *s, size_t len, tl_dlq_reason *reason,
                        char *err, size_t errlen)
{
    const char *z = len ? memchr(s, 0, len) : NULL;
    if (!z) return 0;
    return tl_dlq_fail(reason, TL_DLQ_BAD_STRING, err, errlen,
                       "field %s holds a NUL byte at byte %zu", field,
                       (size_t)(z - (const char *)s));
}

int tl_event_validate(const tl_event *ev, const tl_event_limits *lim, tl_dlq_reason *reason,
                      char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t off;
    } strs[] = {
        /* the first n_required are required */
        {"event_id", offsetof(tl_event, event_id)},
        {"user_id", offsetof(tl_event, user_id)},
        {"item_id", offsetof(tl_event, item_id)},
        {"category_id", offsetof(tl_event, category_id)},
        {"channel", offsetof(tl_event, channel)},
        {"campaign", offsetof(tl_event, campaign)},
    };
    const size_t n_required = 3;
    for (size_t i = 0; i < n_required; i++) {
        const char *s = *(const char *const *)((const char *)ev + strs[i].off);
        if (!s || !*s)
            return tl_dlq_fail(reason, TL_DLQ_MISSING_FIELD, err, errlen, "required field %s is %s",
                               strs[i].name, s ? "empty" : "missing");
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const unsigned char *s = *(const unsigned char *const *)((const char *)ev + strs[i].off);
        if (!s) continue;
        /* One pass for the length and whether any byte is not ASCII (most ids are). */
        size_t n = 0;
        unsigned char high = 0;
        while (s[n]) high |= s[n++];
        if (n > lim->max_string)
            return tl_dlq_fail(reason, TL_DLQ_BAD_STRING, err, errlen,
                               "field %s is %zu bytes long, more than ingest.max.string.bytes=%zu",
                               strs[i].name, n, lim->max_string);
        for (size_t k = 0; (high & 0x80) && k < n;) {
            size_t step = tl_utf8_seq(s + k, n - k);
            if (!step)
                return tl_dlq_fail(reason, TL_DLQ_BAD_STRING, err, errlen,
                                   "field %s is not valid UTF-8 (byte %zu)", strs[i].name, k);
            k += step;
        }
    }
    if (ev->ts < lim->ts_min || ev->ts > lim->ts_max)
        return tl_dlq_fail(reason, TL_DLQ_BAD_TIMESTAMP, err, errlen,
                           "ts %lld is outside the accepted range [%lld, %lld]", (long long)ev->ts,
                           (long long)lim->ts_min, (long long)lim->ts_max);
    if ((unsigned)ev->type >= TL_EVENT_TYPE_COUNT)
        return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen, "event type %d is out of range",
                           (int)ev->type);
    if (ev->has_dwell && ev->dwell_ms < 0)
        return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen, "dwell_ms %d is negative",
                           (int)ev->dwell_ms);
    if (ev->has_value && !isfinite(ev->value))
        return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen, "value %g is not a finite number",
                           ev->value);
    if (ev->has_propensity && !isfinite(ev->propensity))
        return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen,
                           "propensity %g is not a finite number", ev->propensity);
    if (ev->has_propensity && !(ev->propensity > 0 && ev->propensity <= 1))
        return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen, "propensity %g is outside (0, 1]",
                           ev->propensity);
    return 0;
}
