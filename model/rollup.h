/*
 * rollup.h -- attribution summed per dimension, method and event-time window: the
 * analyst's first screen (docs/report.md). Per row (dimension value, window):
 *   - purchases:   purchases with at least one touchpoint of that value;
 *   - touchpoints: touchpoints of that value credited in them;
 *   - per method, conversions (the sum of its credits to those touchpoints) and
 *     conversion value (the sum of credit x purchase value);
 *   - optionally the channel's ad spend (tl_rollup_add_spend);
 *   - for Markov, the change of its removal-effect credit over the window (from the
 *     credit deltas whose dimension is the roll-up's: channel deltas for the channel and
 *     channel-group roll-ups, category deltas -- a chain over categories, when the data
 *     has no channel -- for the category roll-up).
 * A purchase's credits of one method sum to 1, so a method's conversions over every value
 * of a dimension add up to the purchases with touchpoints (touchpoints without the
 * dimension, e.g. no channel, are summed under "(none)").
 *
 * Channel groups: rules "Group=pattern,pattern;Group=..." (rollup.channel.groups), matched
 * case-insensitively in order, '*' standing for any run of characters, the first match
 * winning; a channel no rule matches is "Other", a touchpoint without one "(none)" -- as
 * GA4's default channel grouping maps sources to groups.
 *
 * Windows: "hour" and "day" (UTC, by the purchase's event time; for Markov, the credit
 * delta's window start), or "all" (one window over everything added).
 * Ownership: the roll-up copies every string it keeps. Not thread-safe.
 */
#ifndef TL_ROLLUP_H
#define TL_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "domain/records.h"

#define TL_RU_MARKOV TL_M_COUNT          /* the column after the per-purchase methods */
#define TL_RU_METHODS (TL_M_COUNT + 1)
#define TL_RU_ALL INT64_MIN              /* window_start of the "all" window */

typedef enum tl_ru_dim {
    TL_RU_CHANNEL = 0,
    TL_RU_CHANNEL_GROUP,
    TL_RU_CATEGORY,
    TL_RU_CAMPAIGN,   /* the touchpoint event's campaign; no Markov column (no chain over it) */
    TL_RU_DIMS
} tl_ru_dim;
typedef enum tl_ru_window {
    TL_RU_WINDOW_ALL = 0,
    TL_RU_WINDOW_HOUR,
    TL_RU_WINDOW_DAY
} tl_ru_window;

typedef struct tl_rollup_row {
    char *id;                       /* the dimension's value */
    int64_t window_start;           /* ms, or TL_RU_ALL */
    uint64_t purchases, touchpoints;
    double conversions[TL_RU_METHODS], value[TL_RU_METHODS];
    unsigned char has[TL_RU_METHODS];   /* the method was seen in this row */
    /* The sampling variance of the shapley conversions: over purchases with sampled
     * Shapley credits, the square of the sum of the row's touchpoints' standard errors
     * (an upper bound: a purchase's touchpoints are taken as fully correlated). Infinite
     * when a standard error was unknown. */
    double shapley_var;
    double spend;                       /* valid when has_spend */
    int has_spend;
    /* The Markov credit's bootstrap interval from the row's latest credit delta that has
     * one (markov.bootstrap.samples): the interval of the credit at the end of that
     * window, which is the row's Markov conversions when the row sums every window from
     * the first (no --from, window all). Not kept for channel groups: the interval of a
     * sum of channels is not a sum of their intervals. */
    double markov_lo, markov_hi, markov_level;
    int64_t markov_at;                  /* that delta's window end */
    int has_markov_interval;
    int changed;                        /* added or merged into since tl_rollup_each_changed */
} tl_rollup_row;

typedef struct tl_rollup tl_rollup;

/* groups: the rules above ("" for none: every channel is "Other"). NULL with a message
 * in err when a rule is malformed ("Paid Search" without '=', an empty group or pattern). */
tl_rollup *tl_rollup_new(tl_ru_dim dim, tl_ru_window window, const char *groups, char *err,
                         size_t errlen);
void tl_rollup_destroy(tl_rollup *r);

/* "channel", "channel_group", "category", "campaign" / "all", "hour", "day"; -1 if unknown. */
int tl_ru_dim_parse(const char *s);
int tl_ru_window_parse(const char *s);
const char *tl_ru_dim_name(tl_ru_dim d);

/* The group a channel falls in under r's rules (NULL channel: "(none)"). */
const char *tl_rollup_group(const tl_rollup *r, const char *channel);

/* One attribution record; purchase value 0 when it has none. */
void tl_rollup_add(tl_rollup *r, const tl_attribution *a);
/* One Markov credit delta (its credit - credit_before); ignored when its dimension is
 * not the roll-up's (above), its method is not "markov", or the roll-up is by campaign. */
void tl_rollup_add_credit_delta(tl_rollup *r, const tl_credit_delta *d);

/* Ad spend of a channel on the UTC day starting at day_ms, joined into the row of the
 * channel's value (its group for channel_group): cost per conversion (spend / a method's
 * conversions) and return on ad spend (a method's conversion value / spend) follow. A row
 * may have spend and no purchase (money spent for nothing credited). -1 for a category
 * roll-up, a campaign roll-up or hour windows (spend is per channel and day), else 0. */
int tl_rollup_add_spend(tl_rollup *r, const char *channel, int64_t day_ms, double spend);

/* One line of ad spend, "YYYY-MM-DD,channel,spend" (UTC day, the channel as the events
 * name it, an amount at least 0; a trailing CR or LF is ignored): its day's start in ms,
 * the channel (pointing into line, which is cut in place) and the amount. NULL, or why the
 * line is not one (a short phrase). */
const char *tl_rollup_spend_parse(char *line, int64_t *day_ms, const char **channel, double *spend);

/* Method m's cost per conversion in row r (spend / conversions) and its return on ad spend
 * (conversion value / spend; none for Markov, whose credits carry no value): NAN where
 * the row has no spend or there is nothing to divide by. */
double tl_rollup_cost_per_conversion(const tl_rollup_row *r, int m);
double tl_rollup_roas(const tl_rollup_row *r, int m);

/* r's row of id and window start, or NULL when r has none. */
const tl_rollup_row *tl_rollup_find(tl_rollup *r, const char *id, int64_t window_start);
/* Marks r's row of id and window start changed, making it when r has none. */
void tl_rollup_touch(tl_rollup *r, const char *id, int64_t window_start);
/* Each changed row of r that spend (a roll-up of the same dimension, by day, filled with
 * tl_rollup_add_spend) has a row for takes that row's spend: set, not added. */
void tl_rollup_join_spend(tl_rollup *r, tl_rollup *spend);

/* Adds a row's sums (purchases, touchpoints, each method's conversions and value, the
 * Shapley variance, the spend; x's Markov interval if it is of a later window than r's) into r's row of the same id and of the window of r that holds x's
 * window start (the same start when r's windows are x's; "all" takes every window; a day
 * its hours). x was made by a roll-up of the same dimension (e.g. a partial read back from
 * Kafka, or a total of the roll-up topic). */
void tl_rollup_merge(tl_rollup *r, const tl_rollup_row *x);
/* Sets r's row of x's id and window start to x's sums (a total read back), unmarked. */
void tl_rollup_set(tl_rollup *r, const tl_rollup_row *x);
/* Calls fn on each row added or merged into since the last call, and forgets the mark;
 * stops at the first non-zero return and returns it. */
int tl_rollup_each_changed(tl_rollup *r, int (*fn)(void *arg, const tl_rollup_row *row), void *arg);
/* Forgets every row (the rules stay). */
void tl_rollup_clear(tl_rollup *r);
tl_ru_dim tl_rollup_dim(const tl_rollup *r);
tl_ru_window tl_rollup_window(const tl_rollup *r);
const char *tl_ru_window_name(tl_ru_window w);
/* A window's length in ms (0 for "all"). */
int64_t tl_ru_window_ms(tl_ru_window w);

/* The rows, sorted by window, then by linear conversions (descending), then by id; valid
 * until the next add or destroy. */
const tl_rollup_row *tl_rollup_rows(tl_rollup *r, size_t *n);

#endif
