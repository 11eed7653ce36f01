/*
 * attribution.h -- per-purchase attribution over the user's journey
 * (docs/attribution.md): touchpoint selection and the rule-based credits.
 */
#ifndef TL_ATTRIBUTION_H
#define TL_ATTRIBUTION_H

#include "lib/arena.h"
#include "lib/config.h"
#include "engine/sink.h"
#include "engine/state.h"
#include "features/interest.h"
#include "model/intent.h"
#include "model/model.h"

typedef struct tl_attr_cfg {
    int64_t lookback_ms;
    int max_touchpoints;
    int reset_on_conversion;
    double time_decay_half_life_ms;
    unsigned touch_mask;          /* bit t set = type t is a touch type */
    const char *touch_types;      /* attribution.touch.types, as set */
} tl_attr_cfg;

/* The attribution stage's configuration keys (attribution.*), filled into tl_attr_cfg. */
extern const tl_config_def tl_attr_config[];

int tl_attr_cfg_load(tl_attr_cfg *ac, const tl_config *c, char *err, size_t errlen);

typedef struct tl_attr_stats {
    uint64_t purchases, attributed, no_touchpoints, touchpoints_credited, expired;
} tl_attr_stats;

/* The attribution stage. model (may be NULL) adds model-based credits and learns from
 * closed journeys; fc (may be NULL) gives touchpoints their category's interest share.
 * Expiry timers (in the store s passed to the calls) are kept only with a model: they
 * exist to label journeys. */
typedef struct tl_attr_stage {
    const tl_attr_cfg *cfg;
    const tl_features_cfg *fc;
    tl_model *model;
    const tl_intent_cfg *intent;   /* may be NULL: no intent published */
    tl_attr_stats st;
} tl_attr_stage;

/* For a purchase: selects the touchpoints, computes every method, emits one attribution
 * record (or counts a purchase without touchpoints), learns from the closed journey.
 * For a touch event: appends it to the journey, trims the journey, re-arms its timer. */
tl_rc tl_attribution_apply(tl_attr_stage *as, tl_store *s, tl_user *u, const tl_event *ev,
                           tl_arena *a, const tl_sink *out);

/* Event time reached now in store s: journeys whose timer is due expire (negative
 * examples for the model), and Markov windows close. */
tl_rc tl_attribution_advance(tl_attr_stage *as, tl_store *s, int64_t now, tl_arena *a,
                             const tl_sink *out);

/* Rule-based credits for n touchpoints with times ts[] (journey order) for a purchase
 * at pts: writes n credits summing to 1 into out. Methods: TL_M_LAST_TOUCH ..
 * TL_M_POSITION_BASED. */
void tl_credits_rule(tl_method m, int n, const int64_t *ts, int64_t pts,
                     double time_decay_half_life_ms, double *out);

#endif
