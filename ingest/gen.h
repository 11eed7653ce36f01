/*
 * gen.h -- the synthetic behaviour-event generator, as a tl_source and as a CSV writer.
 *
 * The output looks like the Taobao UserBehavior data: Zipf-popular categories and items
 * (items belong to categories), users with skewed activity, sessions (events seconds to
 * minutes apart, a user's sessions hours apart), a funnel near Taobao's (about 89.2%
 * BROWSE, 5.5% ADD_TO_CART, 3.1% FAVORITE, 2.3% PURCHASE), purchases mostly of an item
 * browsed or carted earlier in the session, dwell_ms on browses, a fixed price per item
 * as the value of purchases, a channel per session, and optionally IMPRESSION/CLICK
 * events and a propensity. The output is in time order (ts non-decreasing overall, so
 * also per user).
 *
 * Ids: events "g1", "g2", ... (offset = the number, partition 0, so a CSV written by
 * tl_gen_write_csv has event gN on data row N); users "u1".."u<n_users>", items
 * "i1".."i<n_items>", categories "c1".."c<n_categories>", channels "search", "feed",
 * "ads", "email", "social", "direct", "affiliate", "push", then "ch9", "ch10", ...
 *
 * Determinism: the same parameters give the same events, byte for byte, on the same
 * platform (the sampler uses libm's log/exp, whose last bits may differ elsewhere).
 *
 * Memory: O(n_users + n_items); about 16 bytes per user and 8 per item.
 * Ownership: a source owns everything it uses; event strings live in the batch's arena
 * (channel names in the source). One thread uses a source at a time.
 */
#ifndef TL_GEN_H
#define TL_GEN_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include "engine/source.h"

typedef struct tl_gen_params {
    uint64_t seed;
    uint64_t n_events;          /* 0 = endless (the source never reaches EOF) */
    uint32_t n_users;           /* >= 1 */
    uint32_t n_items;           /* >= n_categories */
    uint32_t n_categories;      /* >= 1 */
    uint32_t n_channels;        /* 0 = no channel field */
    int64_t start_ts;           /* ms since the epoch, the first event's time (about) */
    int64_t span_ms;            /* roughly the time the n_events cover (endless: the
                                   time 10 events per user would cover) */
    double session_events;      /* mean events per session, >= 1 */
    double zipf_s;              /* popularity exponent of categories and of items, > 0 */
    double user_skew;           /* sigma of the lognormal user activity, >= 0 */
    int impressions;            /* also emit IMPRESSION and CLICK events */
    int propensity;             /* emit a propensity on every event */
    uint32_t n_campaigns;       /* campaigns per channel (0: none): a session has one of
                                   its channel's, "<channel>-<k>" (from a hash: the events
                                   are otherwise those without campaigns), and its
                                   IMPRESSION and CLICK events carry it (without
                                   impressions, its first event does) */
} tl_gen_params;

/* Defaults: seed 42, 1,000,000 events, 100,000 users, 50,000 items, 1,000 categories,
 * 5 channels, start 2017-11-25T00:00:00+08:00, span 9 days, 8 events per session,
 * zipf_s 1.1, user_skew 1.0, no impressions, no propensity. */
void tl_gen_params_default(tl_gen_params *p);

/* 0, or -1 with a message naming the bad parameter. */
int tl_gen_params_check(const tl_gen_params *p, char *err, size_t errlen);

/* A source producing p->n_events events (max per poll); NULL if the parameters are
 * invalid (see tl_gen_params_check). p is copied. */
tl_source *tl_gen_source_new(const tl_gen_params *p);
void tl_gen_source_destroy(tl_source *s);   /* NULL is a no-op */

/* Writes the events as canonical CSV (file_source.h), with the header; the propensity
 * column only when p->propensity, the campaign column only when p->n_campaigns. 0, or -1 on invalid parameters or a write error
 * (errno tells which). */
int tl_gen_write_csv(const tl_gen_params *p, FILE *out);

#endif
