/*
 * attribution.h -- per-purchase attribution over the user's journey
 * (docs/attribution.md): touchpoint selection and the rule-based credits.
 */
#ifndef TL_ATTRIBUTION_H
#define TL_ATTRIBUTION_H

#include "core/arena.h"
#include "core/config.h"
#include "core/sink.h"
#include "core/state.h"

typedef struct tl_attr_cfg {
    int64_t lookback_ms;
    int max_touchpoints;
    int reset_on_conversion;
    double time_decay_half_life_ms;
    unsigned touch_mask;          /* bit t set = type t is a touch type */
} tl_attr_cfg;

int tl_attr_cfg_load(tl_attr_cfg *ac, const tl_config *c, char *err, size_t errlen);

typedef struct tl_attr_stats {
    uint64_t purchases, attributed, no_touchpoints, touchpoints_credited;
} tl_attr_stats;

/* For a purchase: selects the touchpoints, computes every rule-based method, emits one
 * attribution record (or counts a purchase without touchpoints). For a touch event:
 * appends it to the journey and trims the journey. */
tl_rc tl_attribution_apply(const tl_attr_cfg *ac, tl_user *u, const tl_event *ev,
                           tl_arena *a, const tl_sink *out, tl_attr_stats *st);

/* Rule-based credits for n touchpoints with times ts[] (journey order) for a purchase
 * at pts: writes n credits summing to 1 into out. Methods: TL_M_LAST_TOUCH ..
 * TL_M_POSITION_BASED. */
void tl_credits_rule(tl_method m, int n, const int64_t *ts, int64_t pts,
                     double time_decay_half_life_ms, double *out);

#endif
