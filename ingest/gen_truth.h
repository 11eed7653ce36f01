/*
 * gen_truth.h -- events with a known answer: a data-generating process in which every
 * channel's incremental effect on purchasing is planted, so that attribution methods can
 * be scored against the truth (docs/attribution.md, "Ground truth").
 *
 * The process, per user u (independent of the other users):
 *   - a latent intent z_u ~ N(0, 1);
 *   - exposures (IMPRESSION events) on each channel c, a Poisson process of rate
 *     rate_c * exp(targeting_c * z_u - targeting_c^2 / 2) per day (the mean rate is rate_c;
 *     a channel with targeting > 0 is shown more to users who are likely to buy anyway);
 *   - decision moments, a Poisson process of visit_rate per day; at a moment t the user
 *     buys (a PURCHASE event) with probability
 *         p(t) = sigmoid(base_logit + intent_coef * z_u + sum_e effect_c(e) * 2^(-(t - t_e) / half_life))
 *     over the user's active exposures e: those since the user's last purchase, at most
 *     window_ms before t, the last max_touchpoints of them. A purchase ends the effect
 *     of every exposure before it;
 *   - optionally an order effect: an active exposure of channel order_then that comes
 *     after an active exposure of channel order_first adds order_effect * 2^(-age /
 *     half_life) (its own age) to the sum above, once however many order_first exposures
 *     came before it (e.g. a display impression that pays off only when a search
 *     follows). The same exposures in the other order add nothing.
 * The active exposures are exactly the touchpoints tally credits with
 * attribution.lookback.ms = window_ms, attribution.max.touchpoints = max_touchpoints and
 * attribution.reset.on.conversion = true, so a purchase's true credits are the Shapley
 * values (and removal effects) of v(S) = p(t) over its touchpoints S.
 *
 * Output: the events as canonical CSV in time order (ids "t1".., users "u1"..,
 * items "i1".."i200" in categories "c1".."c20", the channel on every IMPRESSION), and
 * a JSON document with the parameters and every user's z_u (the truth a reference needs,
 * tests/integration/truth.py). Same seed, same bytes (on one platform: libm).
 */
#ifndef TL_GEN_TRUTH_H
#define TL_GEN_TRUTH_H

#include <stdint.h>
#include <stdio.h>

#define TL_TRUTH_MAX_CHANNELS 16

typedef struct tl_truth_channel {
    char name[32];
    double effect;      /* added to the purchase log-odds by a fresh exposure */
    double rate;        /* mean exposures per user and day */
    double targeting;   /* how much exposure follows intent (0: at random) */
} tl_truth_channel;

typedef struct tl_truth_params {
    uint64_t seed;
    uint32_t n_users;
    double days;
    int64_t start_ts;
    double visit_rate;       /* decision moments per user and day */
    double base_logit;
    double intent_coef;
    int64_t half_life_ms;    /* of an exposure's effect */
    int64_t window_ms;       /* an exposure's effect ends this long after it */
    int max_touchpoints;
    int n_channels;
    tl_truth_channel ch[TL_TRUTH_MAX_CHANNELS];
    int order_first, order_then;   /* channel indexes; -1: no order effect */
    double order_effect;
} tl_truth_params;

/* Defaults: seed 1, 5,000 users, 28 days from 2017-11-25, 1 visit a day, base logit -4.5,
 * intent 1, half-life 2 days, window 7 days, 50 touchpoints, and the channels (effect,
 * mean rate) search (1.0, 0.2/day), social (0.5, 0.4/day), display (0.25, 0.6/day),
 * email (0, 0.4/day), retarget (0, 0.3/day, targeting 1.5); no order effect. */
void tl_truth_params_default(tl_truth_params *p);

/* Every channel's effect and targeting, and the order effect, set to 0 (the null run:
 * nothing links exposures to purchases, so any credit a model gives depends on nothing
 * but its labels). */
void tl_truth_params_null(tl_truth_params *p);

/* Sets the order effect from "FIRST,THEN,EFFECT" (two channel names and a number, e.g.
 * "display,search,0.5"). 0, or -1 with a message naming what is wrong. */
int tl_truth_params_order(tl_truth_params *p, const char *spec, char *err, size_t errlen);

/* 0, or -1 with a message naming the bad parameter. */
int tl_truth_params_check(const tl_truth_params *p, char *err, size_t errlen);

/* Writes the events to events and the truth document to truth. 0, or -1 on a write
 * error. */
int tl_truth_write(const tl_truth_params *p, FILE *events, FILE *truth);

#endif
