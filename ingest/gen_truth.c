/*
 * gen_truth.c -- the ground-truth generator (gen_truth.h).
 *
 * How: each user is simulated on its own random stream (seeded from the seed and the
 * user's number), so users are independent and the output does not depend on the order
 * they are simulated in. A user's exposures and decision moments are drawn as Poisson
 * processes over the span, merged in time order (an exposure before a decision moment
 * at the same millisecond), and walked once: exposures join the active list, a decision
 * moment scores it and may purchase. The events of all users are then sorted by (ts,
 * user, the user's own order) and written.
 *
 * Memory: every event is held until the sort (about 32 bytes each; the defaults make
 * about 300,000).
 */
#include "gen_truth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "domain/event.h"
#include "lib/util.h"
#include "lib/rng.h"

#define DAY_MS 86400000.0
#define TRUTH_ITEMS 200
#define TRUTH_CATEGORIES 20

typedef struct truth_ev {
    int64_t ts;
    uint32_t user;
    uint32_t seq;       /* the user's own order */
    int16_t channel;    /* -1: a purchase */
    uint16_t item;
} truth_ev;

typedef struct ev_vec {
    truth_ev *v;
    size_t n, cap;
} ev_vec;

static void push(ev_vec *e, truth_ev x)
{
    TL_GROW(e->v, e->n, e->cap, 4096);
    e->v[e->n++] = x;
}

void tl_truth_params_default(tl_truth_params *p)
{
    static const tl_truth_channel ch[] = {
        {"search", 1.0, 0.2, 0}, {"social", 0.5, 0.4, 0},     {"display", 0.25, 0.6, 0},
        {"email", 0.0, 0.4, 0},  {"retarget", 0.0, 0.3, 1.5},
    };
    memset(p, 0, sizeof(*p));
    p->seed = 1;
    p->n_users = 5000;
    p->days = 28;
    p->start_ts = 1511539200000LL;   /* 2017-11-25T00:00:00+08:00 */
    p->visit_rate = 1.0;
    p->base_logit = -4.5;
    p->intent_coef = 1.0;
    p->half_life_ms = 2 * 86400000LL;
    p->window_ms = 7 * 86400000LL;
    p->max_touchpoints = 50;
    p->n_channels = (int)(sizeof(ch) / sizeof(ch[0]));
    memcpy(p->ch, ch, sizeof(ch));
    p->order_first = p->order_then = -1;
}

void tl_truth_params_null(tl_truth_params *p)
{
    for (int c = 0; c < p->n_channels; c++) p->ch[c].effect = p->ch[c].targeting = 0;
    p->order_effect = 0;
}

static int channel_index(const tl_truth_params *p, const char *name, size_t len)
{
    for (int c = 0; c < p->n_channels; c++)
        if (strlen(p->ch[c].name) == len && !memcmp(p->ch[c].name, name, len)) return c;
    return -1;
}

int tl_truth_params_order(tl_truth_params *p, const char *spec, char *err, size_t errlen)
{
    const char *c1 = strchr(spec, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    char *end = NULL;
    double effect = c2 ? strtod(c2 + 1, &end) : 0;
    if (!c2 || end == c2 + 1 || *end || !isfinite(effect) || fabs(effect) > 20) {
        snprintf(err, errlen,
                 "order: expected FIRST,THEN,EFFECT (two channels and a number in [-20, 20], "
                 "e.g. display,search,0.5), got '%s'",
                 spec);
        return -1;
    }
    int first = channel_index(p, spec, (size_t)(c1 - spec));
    int then = channel_index(p, c1 + 1, (size_t)(c2 - c1 - 1));
    if (first < 0 || then < 0) {
        char names[TL_TRUTH_MAX_CHANNELS * 34] = "";
        for (int c = 0; c < p->n_channels; c++) {
            if (c) strcat(names, ", ");
            strcat(names, p->ch[c].name);
        }
        snprintf(err, errlen, "order: '%.*s' is not a channel (the channels: %s)",
                 first < 0 ? (int)(c1 - spec) : (int)(c2 - c1 - 1), first < 0 ? spec : c1 + 1,
                 names);
        return -1;
    }
    p->order_first = first;
    p->order_then = then;
    p->order_effect = effect;
    return 0;
}

int tl_truth_params_check(const tl_truth_params *p, char *err, size_t errlen)
{
    if (p->n_users < 1 || p->n_users > 10000000) {
        snprintf(err, errlen, "users: expected 1..10000000, got %u", p->n_users);
        return -1;
    }
    if (!(p->days > 0 && p->days <= 3650)) {
        snprintf(err, errlen, "days: expected more than 0 and at most 3650, got %g", p->days);
        return -1;
    }
    if (p->n_channels < 1 || p->n_channels > TL_TRUTH_MAX_CHANNELS) {
        snprintf(err, errlen, "channels: expected 1..%d", TL_TRUTH_MAX_CHANNELS);
        return -1;
    }
    for (int c = 0; c < p->n_channels; c++) {
        const tl_truth_channel *k = &p->ch[c];
        if (!(k->rate >= 0 && k->rate <= 100) || !isfinite(k->effect) || !isfinite(k->targeting) ||
            fabs(k->targeting) > 5) {
            snprintf(err, errlen, "channel %s: rate must be in [0, 100], targeting in [-5, 5]",
                     k->name);
            return -1;
        }
    }
    if ((p->order_first >= 0 || p->order_then >= 0) &&
        (p->order_first < 0 || p->order_first >= p->n_channels || p->order_then < 0 ||
         p->order_then >= p->n_channels || !isfinite(p->order_effect))) {
        snprintf(err, errlen, "order: two channels of the %d and a finite effect", p->n_channels);
        return -1;
    }
    if (p->half_life_ms <= 0 || p->window_ms <= 0 || p->max_touchpoints < 1 ||
        !(p->visit_rate > 0 && p->visit_rate <= 100)) {
        snprintf(err, errlen, "half-life, window, touchpoints and visit rate must be positive");
        return -1;
    }
    return 0;
}

/* Poisson process of rate per_day over [0, span_ms): appends its times to out. */
static void poisson_times(gen_rng *r, double per_day, double span_ms, int16_t channel, ev_vec *out,
                          uint32_t user)
{
    if (per_day <= 0) return;
    double mean_gap = DAY_MS / per_day;
    for (double t = rng_exp(r, mean_gap); t < span_ms; t += rng_exp(r, mean_gap))
        push(out,
             (truth_ev){.ts = (int64_t)t,
                        .user = user,
                        .channel = channel,
                        .item = (uint16_t)rng_below(r, TRUTH_ITEMS)});
}

static int by_user_time(const void *a, const void *b)
{
    const truth_ev *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    /* exposures (channel >= 0) before a decision moment (-1) at the same ms */
    return (x->channel < y->channel) - (x->channel > y->channel);
}

static int by_time(const void *a, const void *b)
{
    const truth_ev *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Simulates user u; appends its events (exposures and purchases) to out. */
static double simulate_user(const tl_truth_params *p, uint32_t u, ev_vec *out, ev_vec *tmp)
{
    gen_rng r;
    rng_seed(&r, p->seed * 0x9E3779B97F4A7C15ull + u + 1);
    double z = normal2(rng_unit(&r), rng_unit(&r));
    double span = p->days * DAY_MS;
    tmp->n = 0;
    for (int c = 0; c < p->n_channels; c++) {
        const tl_truth_channel *k = &p->ch[c];
        double rate = k->rate * exp(k->targeting * z - k->targeting * k->targeting / 2);
        poisson_times(&r, rate, span, (int16_t)c, tmp, u);
    }
    poisson_times(&r, p->visit_rate, span, -1, tmp, u);
    qsort(tmp->v, tmp->n, sizeof(*tmp->v), by_user_time);

    /* The active exposures: indexes into tmp, oldest first, at most max_touchpoints. */
    size_t *act = tl_xmalloc((size_t)p->max_touchpoints * sizeof(*act));
    int n_act = 0;
    uint32_t seq = 0;
    for (size_t i = 0; i < tmp->n; i++) {
        truth_ev e = tmp->v[i];
        if (e.channel >= 0) {
            if (n_act == p->max_touchpoints) {
                memmove(act, act + 1, (size_t)(n_act - 1) * sizeof(*act));
                n_act--;
            }
            act[n_act++] = i;
            e.seq = seq++;
            push(out, e);
            continue;
        }
        double x = p->base_logit + p->intent_coef * z;
        int first_seen = 0;   /* an active order_first exposure before this one */
        for (int j = 0; j < n_act; j++) {
            const truth_ev *x_e = &tmp->v[act[j]];
            int64_t age = e.ts - x_e->ts;
            if (age > p->window_ms) continue;
            double fade = exp2(-(double)age / (double)p->half_life_ms);
            x += p->ch[x_e->channel].effect * fade;
            if (x_e->channel == p->order_then && first_seen) x += p->order_effect * fade;
            if (x_e->channel == p->order_first) first_seen = 1;
        }
        double prob = 1.0 / (1.0 + exp(-x));
        if (rng_unit(&r) < prob) {
            e.seq = seq++;
            push(out, e);
            n_act = 0;
        }
    }
    free(act);
    return z;
}

int tl_truth_write(const tl_truth_params *p, FILE *events, FILE *truth)
{
    ev_vec all = {0}, tmp = {0};
    double *z = tl_xmalloc((size_t)p->n_users * sizeof(*z));
    for (uint32_t u = 0; u < p->n_users; u++) z[u] = simulate_user(p, u, &all, &tmp);
    qsort(all.v, all.n, sizeof(*all.v), by_time);

    fputs("event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value\n", events);
    for (size_t i = 0; i < all.n; i++) {
        const truth_ev *e = &all.v[i];
        unsigned item = e->item + 1u, cat = e->item % TRUTH_CATEGORIES + 1u;
        long long ts = (long long)(p->start_ts + e->ts);
        if (e->channel >= 0)
            fprintf(events, "t%zu,u%u,i%u,c%u,IMPRESSION,%lld,%s,,\n", i + 1, e->user + 1, item,
                    cat, ts, p->ch[e->channel].name);
        else   /* the price: 10.00 to 59.75, a function of the item */
            fprintf(events, "t%zu,u%u,i%u,c%u,PURCHASE,%lld,,,%u.%02u\n", i + 1, e->user + 1, item,
                    cat, ts, 10 + item % 50, item % 4 * 25);
    }

    fprintf(truth, "{\"seed\": %llu, \"users\": %u, \"days\": %.17g, \"start_ts\": %lld,\n",
            (unsigned long long)p->seed, p->n_users, p->days, (long long)p->start_ts);
    fprintf(truth, " \"visit_rate\": %.17g, \"base_logit\": %.17g, \"intent_coef\": %.17g,\n",
            p->visit_rate, p->base_logit, p->intent_coef);
    fprintf(truth, " \"half_life_ms\": %lld, \"window_ms\": %lld, \"max_touchpoints\": %d,\n",
            (long long)p->half_life_ms, (long long)p->window_ms, p->max_touchpoints);
    fputs(" \"channels\": [", truth);
    for (int c = 0; c < p->n_channels; c++)
        fprintf(
            truth,
            "%s\n  {\"name\": \"%s\", \"effect\": %.17g, \"rate\": %.17g, \"targeting\": %.17g}",
            c ? "," : "", p->ch[c].name, p->ch[c].effect, p->ch[c].rate, p->ch[c].targeting);
    fputs("],\n \"order\": ", truth);
    if (p->order_first >= 0)
        fprintf(truth, "{\"first\": \"%s\", \"then\": \"%s\", \"effect\": %.17g}",
                p->ch[p->order_first].name, p->ch[p->order_then].name, p->order_effect);
    else fputs("null", truth);
    fputs(",\n \"intent\": {", truth);
    for (uint32_t u = 0; u < p->n_users; u++)
        fprintf(truth, "%s\"u%u\": %.17g", u ? ", " : "", u + 1, z[u]);
    fputs("}}\n", truth);

    free(z);
    free(all.v);
    free(tmp.v);
    int bad = fflush(events) != 0 || ferror(events) || fflush(truth) != 0 || ferror(truth);
    return bad ? -1 : 0;
}
