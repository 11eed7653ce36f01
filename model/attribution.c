/*
 * attribution.c -- touchpoint selection and rule-based credits (docs/attribution.md).
 *
 * The journey (state.h) is kept in (ts, arrival) order, bounded to the last N
 * touchpoints within the lookback of its newest one. A purchase takes the entries
 * with P.ts - L <= ts <= P.ts: since the journey is sorted, that is one contiguous
 * run, found by two scans from the end. With reset on conversion that run is
 * removed, so the same touchpoint is never credited to two purchases.
 *
 * Every method writes credits for the same touchpoint list, in journey order, so a
 * consumer can line methods up column by column. Each attribution emitted is also
 * recorded in the user's record (its last TL_LAST_ATTR_MAX, state.h). Model-based methods (Shapley,
 * removal) are filled in by the model stage when it is enabled.
 */
#include "attribution.h"
#include "lib/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tl_config_def tl_attr_config[] = {
    {"attribution.lookback.ms", TL_CT_INT, "604800000", 0, 1e15,
     "Touchpoints older than this before a purchase are not credited (default 7 days).",
     TL_CFG_FIELD(tl_attr_cfg, lookback_ms)},
    {"attribution.max.touchpoints", TL_CT_INT, "50", 1, 1000,
     "At most this many of the most recent touchpoints are credited.",
     TL_CFG_FIELD(tl_attr_cfg, max_touchpoints)},
    {"attribution.reset.on.conversion", TL_CT_BOOL, "true", TL_NORANGE,
     "A purchase closes the journey: its touchpoints are not credited again.",
     TL_CFG_FIELD(tl_attr_cfg, reset_on_conversion)},
    {"attribution.time.decay.half.life.ms", TL_CT_DOUBLE, "604800000", 1, 1e15,
     "Half-life of the time_decay method's weights (default 7 days).",
     TL_CFG_FIELD(tl_attr_cfg, time_decay_half_life_ms)},
    {"attribution.touch.types", TL_CT_STRING, "IMPRESSION,BROWSE,CLICK,FAVORITE,ADD_TO_CART",
     TL_NORANGE, "Event types that are touchpoints, comma-separated.",
     TL_CFG_FIELD(tl_attr_cfg, touch_types)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

int tl_attr_cfg_load(tl_attr_cfg *ac, const tl_config *c, char *err, size_t errlen)
{
    memset(ac, 0, sizeof(*ac));
    if (tl_config_fill(c, tl_attr_config, ac, err, errlen) != 0) return -1;
    char *list = tl_xstrdup(ac->touch_types), *save = NULL;
    for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int t = tl_event_type_parse(tok, strlen(tok));
        if (t < 0) {
            snprintf(err, errlen, "attribution.touch.types: unknown event type '%s'", tok);
            free(list);
            return -1;
        }
        ac->touch_mask |= 1u << t;
    }
    free(list);
    return 0;
}

void tl_credits_rule(tl_method m, int n, const int64_t *ts, int64_t pts,
                     double time_decay_half_life_ms, double *out)
{
    if (n <= 0) return;
    switch (m) {
    case TL_M_LAST_TOUCH:
    case TL_M_FIRST_TOUCH:
        for (int i = 0; i < n; i++) out[i] = 0;
        out[m == TL_M_LAST_TOUCH ? n - 1 : 0] = 1;
        break;
    case TL_M_LINEAR:
        for (int i = 0; i < n; i++) out[i] = 1.0 / n;
        break;
    case TL_M_TIME_DECAY: {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            out[i] = exp2(-(double)(pts - ts[i]) / time_decay_half_life_ms);
            sum += out[i];
        }
        for (int i = 0; i < n; i++) out[i] /= sum;
        break;
    }
    case TL_M_POSITION_BASED:
        if (n == 1) {
            out[0] = 1;
        } else if (n == 2) {
            out[0] = out[1] = 0.5;
        } else {
            for (int i = 1; i < n - 1; i++) out[i] = 0.2 / (n - 2);
            out[0] = out[n - 1] = 0.4;
        }
        break;
    default:
        for (int i = 0; i < n; i++) out[i] = 1.0 / n;
        break;
    }
}

/* "an impression of item i58 on display 3 h before": a touchpoint for a sentence, with the
 * time before the purchase (which tells apart touchpoints that are otherwise alike). */
static const char *tp_phrase(tl_arena *a, const tl_attribution *r, int i, int article)
{
    const tl_touchpoint *t = &r->touchpoints[i];
    char ago[32];
    tl_fmt_duration(ago, sizeof(ago), r->ts - t->ts);
    return tl_arena_printf(a, "%s%s%s of item %s%s%s %s before",
                           article ? tl_event_type_article((tl_event_type)t->type) : "the", " ",
                           tl_event_type_phrase((tl_event_type)t->type), t->item_id,
                           t->channel ? " on " : "", t->channel ? t->channel : "", ago);
}

static const char *explain(tl_arena *a, const tl_attribution *r, const double *td)
{
    int n = r->n_touchpoints;
    if (n == 1)
        return tl_arena_printf(a, "purchase of item %s: all credit to %s", r->item_id,
                               tp_phrase(a, r, 0, 1));
    char span[32];
    tl_fmt_duration(span, sizeof(span), r->ts - r->touchpoints[0].ts);
    int top = 0, ties = 0;
    for (int i = 1; i < n; i++)
        if (td[i] > td[top]) top = i;
    for (int i = 0; i < n; i++)
        if (tl_same_2dp(td[i], td[top])) {   /* a sentence cannot tell them apart */
            ties++;
            if (i > top) top = i;   /* the latest of the tied */
        }
    const char *decay;
    if (ties == n) decay = tl_arena_printf(a, "time decay gives each the same (%.2f)", td[top]);
    else if (ties == 1)
        decay = tl_arena_printf(a, "time decay gives the most (%.2f) to %s", td[top],
                                tp_phrase(a, r, top, 0));
    else
        decay = tl_arena_printf(a,
                                "time decay gives the most (%.2f each) to %d touchpoints, the "
                                "latest %s",
                                td[top], ties, tp_phrase(a, r, top, 0));
    return tl_arena_printf(a,
                           "purchase of item %s after %d touchpoints over %s: last touch %s, "
                           "first %s; %s",
                           r->item_id, n, span, tp_phrase(a, r, n - 1, 1), tp_phrase(a, r, 0, 1),
                           decay);
}

/* The end of the window of the user's latest pending intent moment (0: none). */
static int64_t intent_due(const tl_attr_stage *as, const tl_user *u)
{
    if (!u->n_pend || !as->intent) return 0;
    int64_t ts = u->pend[0].ts;
    for (int i = 1; i < u->n_pend; i++)
        if (u->pend[i].ts > ts) ts = u->pend[i].ts;   /* out of time order: any of them */
    return ts + as->intent->window_ms;
}

/* The journey expires lookback after its newest touchpoint. Without one, the user's
 * timer is the end of its last pending intent moment's window (model/intent.h): a user who
 * bought and left still has its moments decided. */
static void rearm(const tl_attr_stage *as, tl_store *s, tl_user *u)
{
    if (!s || !as->model) return;
    int64_t at = u->n_tp ? u->tp[u->n_tp - 1].ts + as->cfg->lookback_ms : intent_due(as, u);
    if (at != u->timer) tl_store_set_timer(s, u, at);
}

/* The run of journey entries a moment t credits, [*begin, end): t - L <= ts <= t, the last
 * attribution.max.touchpoints of them. Returns end. */
static int journey_at(const tl_attr_cfg *ac, const tl_user *u, int64_t t, int *begin)
{
    int end = u->n_tp;
    while (end > 0 && u->tp[end - 1].ts > t) end--;
    int b = end;
    while (b > 0 && u->tp[b - 1].ts >= t - ac->lookback_ms) b--;
    *begin = end - b > ac->max_touchpoints ? end - ac->max_touchpoints : b;
    return end;
}

static tl_rc attribute(tl_attr_stage *as, tl_store *s, tl_user *u, const tl_event *ev, int first,
                       tl_arena *a, const tl_sink *out)
{
    const tl_attr_cfg *ac = as->cfg;
    tl_attr_stats *st = &as->st;
    st->purchases++;
    /* the user's history before this purchase; then this one counts */
    const tl_model_user hist = {u->purchases, u->first_ts, u->last_purchase, u->expected};
    if (u->purchases < UINT32_MAX) u->purchases++;
    if (u->last_purchase == INT64_MIN || ev->ts > u->last_purchase) u->last_purchase = ev->ts;
    int begin, end = journey_at(ac, u, ev->ts, &begin);
    int n = end - begin;
    if (n == 0) {
        st->no_touchpoints++;
        /* still a purchase the model learns from: the rate with no touchpoints */
        if (as->model && !first)
            u->expected += tl_model_learn(as->model, &hist, NULL, 0, 1, ev->ts);
        return TL_OK;
    }
    tl_touchpoint *tps = tl_arena_alloc(a, (size_t)n * sizeof(*tps));
    int64_t *ts = tl_arena_alloc(a, (size_t)n * sizeof(*ts));
    for (int i = 0; i < n; i++) {
        const tl_journey_tp *j = &u->tp[begin + i];
        /* Copied: the journey entries may be removed below, before the sink runs. */
        tps[i] = (tl_touchpoint){
            .event_id = tl_arena_strdup(a, j->event_id),
            .item_id = tl_arena_strdup(a, j->item_id),
            .category_id = tl_arena_strdup(a, j->category_id),
            .channel = tl_arena_strdup(a, j->channel),
            .campaign = tl_arena_strdup(a, j->campaign),
            .type = (tl_event_type)j->type,
            .ts = j->ts,
        };
        ts[i] = j->ts;
    }
    tl_attribution r = {
        .conversion_event_id = ev->event_id,
        .user_id = ev->user_id,
        .item_id = ev->item_id,
        .category_id = ev->category_id,
        .ts = ev->ts,
        .value = ev->value,
        .has_value = ev->has_value,
        .touchpoints = tps,
        .n_touchpoints = n,
    };
    for (int m = TL_M_LAST_TOUCH; m <= TL_M_POSITION_BASED; m++) {
        double *c = tl_arena_alloc(a, (size_t)n * sizeof(*c));
        tl_credits_rule((tl_method)m, n, ts, ev->ts, ac->time_decay_half_life_ms, c);
        r.credits[m] = c;
        r.has_method[m] = 1;
    }
    const char *explanation = explain(a, &r, r.credits[TL_M_TIME_DECAY]);
    if (as->model) {
        /* Credited with the model as it is, then learned from: the record's numbers
         * never saw its own label. */
        tl_model_credit(as->model, &hist, &u->tp[begin], n, &r, a, &explanation);
        if (!first) u->expected += tl_model_learn(as->model, &hist, &u->tp[begin], n, 1, ev->ts);
        tl_rc prc = tl_model_path(as->model, &u->tp[begin], n, 1, ev->ts, out);
        if (prc != TL_OK) return prc;
        if (u->tp[end - 1].ts > u->labelled) u->labelled = u->tp[end - 1].ts;
    }
    size_t cut = tl_utf8_cut(explanation, TL_EXPLANATION_MAX);
    if (explanation[cut]) explanation = tl_arena_strndup(a, explanation, cut);
    r.explanation = explanation;
    /* Kept in the user's record for reading (features/profile.h). */
    tl_user_add_attribution(u, ev->event_id, ev->item_id, ev->category_id, ev->ts,
                            r.has_model ? r.p_conversion : NAN, explanation);
    if (ac->reset_on_conversion) {
        tl_user_remove_tps(u, begin, n);
        rearm(as, s, u);
    }
    st->attributed++;
    st->touchpoints_credited += (uint64_t)n;
    return out->emit_attribution(out->ctx, &r);
}

static void journey_add(tl_attr_stage *as, tl_store *s, tl_user *u, const tl_event *ev)
{
    const tl_attr_cfg *ac = as->cfg;
    /* The share is a model feature: not computed without a model. */
    float share =
        as->fc && as->model ? tl_features_share(as->fc, u, ev->category_id, ev->ts) : -1.0f;
    tl_user_add_tp(u, ev, share);
    if (u->n_tp > ac->max_touchpoints) tl_user_remove_tps(u, 0, u->n_tp - ac->max_touchpoints);
    int64_t newest = u->tp[u->n_tp - 1].ts;
    int old = 0;
    while (old < u->n_tp && u->tp[old].ts < newest - ac->lookback_ms) old++;
    if (old) tl_user_remove_tps(u, 0, old);
    rearm(as, s, u);
}

/* The control moments of u before time `until`: every multiple of
 * model.control.interval.ms after u->sampled and before until is a moment u lived through
 * without a purchase, learned as a negative example with the journey as it was then (the
 * touchpoints at most a lookback old, the last max_touchpoints of them). The first event
 * of a user only starts the clock. At most model.controls.max per call; the rest are
 * counted as skipped. */
static void controls(tl_attr_stage *as, tl_user *u, int64_t until)
{
    const tl_model_cfg *mc = tl_model_cfg_of(as->model);
    if (!mc->enabled) return;
    if (u->sampled == INT64_MIN) {   /* the user's first event */
        u->sampled = until;
        return;
    }
    if (until <= u->sampled) return;
    const int64_t d = mc->control_interval_ms;
    int64_t g = tl_floor_to(u->sampled, d) + d;   /* the first grid point after sampled */
    uint64_t skipped = 0;
    int learned = 0;
    for (; g < until; g += d) {
        if (learned == mc->controls_max) {
            skipped += (uint64_t)((until - 1 - g) / d) + 1;
            break;
        }
        int begin, end = journey_at(as->cfg, u, g, &begin);
        /* (no touchpoints: u->tp may be NULL, and no offset may be applied to it) */
        const tl_model_user hist = {u->purchases, u->first_ts, u->last_purchase, u->expected};
        u->expected +=
            tl_model_learn(as->model, &hist, end > begin ? &u->tp[begin] : NULL, end - begin, 0, g);
        learned++;
    }
    if (skipped) tl_model_count_skipped(as->model, skipped);
    u->sampled = until;
}

/* The user's purchase intent at now, after event ev (NULL: its journey expired). */
static tl_rc intent(tl_attr_stage *as, tl_user *u, const tl_event *ev, int64_t now, tl_arena *a,
                    const tl_sink *out)
{
    if (!as->model || !as->intent) return TL_OK;   /* (tl_intent_update checks it is on) */
    int begin, end = journey_at(as->cfg, u, now, &begin);
    return tl_intent_update(as->intent, as->model, as->cfg->lookback_ms, u,
                            end > begin ? &u->tp[begin] : NULL, end - begin, ev, now, a, out);
}

tl_rc tl_attribution_apply(tl_attr_stage *as, tl_store *s, tl_user *u, const tl_event *ev,
                           tl_arena *a, const tl_sink *out)
{
    tl_rc rc = TL_OK;
    /* A user's first event starts its clock: a purchase that is its first event has no
     * observed time before it, and is credited but not learned as a case (its time since
     * the first event, 0, would otherwise single such purchases out). */
    int first = u->first_ts == INT64_MIN;
    if (first || ev->ts < u->first_ts) u->first_ts = ev->ts;
    if (as->model) controls(as, u, ev->ts);
    if (ev->type == TL_PURCHASE) rc = attribute(as, s, u, ev, first, a, out);
    if (rc == TL_OK && (as->cfg->touch_mask & (1u << ev->type))) journey_add(as, s, u, ev);
    if (rc == TL_OK && as->model && as->intent && as->intent->enabled) {
        rc = intent(as, u, ev, ev->ts, a, out);
        rearm(as, s, u);   /* its pending moments may have changed */
    }
    return rc;
}

tl_rc tl_attribution_advance(tl_attr_stage *as, tl_store *s, int64_t now, tl_arena *a,
                             const tl_sink *out)
{
    tl_user *u;
    while ((u = tl_store_next_due(s, now)) != NULL) {
        /* No purchase within the lookback after the last touchpoint: the touchpoints
         * not yet in an example make a negative one. The journey itself is left as it
         * is: stream time is the partition's, and a user's own events may still be
         * behind it (a stream that is not ordered by time across users), so only the
         * rules of docs/attribution.md decide what can still be credited. */
        int from = u->n_tp;
        while (from > 0 && u->tp[from - 1].ts > u->labelled) from--;
        /* The journey's expiry, or, past it (no journey, or only touchpoints a purchase
         * left behind), a timer of its intent moments alone (intent.h). */
        int expiry = u->n_tp && u->timer <= u->tp[u->n_tp - 1].ts + as->cfg->lookback_ms;
        if (as->model && expiry) controls(as, u, u->timer);
        if (expiry && from < u->n_tp) {
            if (as->model) {
                tl_rc prc =
                    tl_model_path(as->model, &u->tp[from], u->n_tp - from, 0, u->timer, out);
                if (prc != TL_OK) return prc;
            }
            u->labelled = u->tp[u->n_tp - 1].ts;
            as->st.expired++;
        }
        tl_rc rc = intent(as, u, NULL, u->timer, a, out);
        if (rc != TL_OK) return rc;
        /* a moment still pending (from a stream out of time order) keeps a timer */
        int64_t next = intent_due(as, u);
        tl_store_set_timer(s, u, next > u->timer ? next : 0);
    }
    return as->model ? tl_model_tick(as->model, now, a, out) : TL_OK;
}
