/*
 * profile.h -- one user's state rendered as JSON for reading (GET /v1/users/{user_id}):
 * interest weights as of a given time, the open journey and the last attributions
 * (docs/interests.md, "Profile").
 */
#ifndef TL_PROFILE_H
#define TL_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "features/interest.h"

/* Renders the encoded user record rec[0..len) (tl_user_encode bytes, e.g. from
 * tl_store_read_raw) of user_id in partition, appending to out:
 *
 *   {"user_id", "partition", "as_of",
 *    "interests": [{"dim", "id", "f", "h", "w", "last_ts", "explanation"}, ...],
 *    "journey": [{"event_id", "type", "ts", "item_id", "category_id", "channel",
 *                 "dwell_ms"}, ...],
 *    "last_attributions": [{"event_id", "ts", "item_id", "category_id",
 *                           "p_conversion", "explanation"}, ...]}
 *
 * as_of_ms < 0 stands for "the later of -as_of_ms - 1 (e.g. the partition's stream time, 0
 * when unknown) and the user's own newest time (interests, journey, attributions)".
 * Interests: f and h decayed from the entry's time (last_ts) to as_of_ms exactly as the
 * interest deltas decay them, w = alpha*f + beta*h; the top_n by w (top_n <= 0: all),
 * highest first, ties by dimension then id; each with one sentence on its weight. Journey
 * in journey order; last attributions (the purchase's event id, time, item and category,
 * the model's p(purchase) or null without a model, the attribution record's explanation
 * cut to TL_LAST_ATTR_TEXT_MAX bytes) newest first, none for a version 2 record. Absent strings, a dwell of -1 and non-finite numbers are null.
 * 0, or -1 with err when the record does not decode (out is then left as it was).
 * Thread-safe: reads only its arguments. */
int tl_profile_render(const tl_features_cfg *fc, const char *user_id, int32_t partition,
                      const void *rec, size_t len, int64_t as_of_ms, int top_n, tl_buf *out,
                      char *err, size_t errlen);

#endif
