/*
 * rollup.c -- attribution summed per dimension, method and window (rollup.h).
 *
 * Rows live in one growing array; an open-addressing table of row indexes, keyed by the
 * hash of (window, id), finds them. A purchase adds to each row it touches once per
 * touchpoint (conversions, value, touchpoints) and once in all (purchases): the rows a
 * purchase touched are remembered in a small list for that.
 */
#include "rollup.h"
#include "lib/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    char *group;
    char **pat;
    int n_pat;
} rule;

struct tl_rollup {
    tl_ru_dim dim;
    tl_ru_window window;
    rule *rules;
    int n_rules;
    tl_rollup_row *rows;
    size_t n, cap;
    size_t *slot;          /* row index + 1; 0 = empty */
    size_t n_slot;         /* a power of 2, at least twice n */
    int sorted;
    size_t *touched;       /* rows of the purchase being added */
    double *touched_se;    /* and the sum of their touchpoints' Shapley standard errors */
    size_t n_touched, cap_touched;
};

static const char *const dim_names[TL_RU_DIMS] = {"channel", "channel_group", "category",
                                                  "campaign"};
static const char *const window_names[] = {"all", "hour", "day"};

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

int tl_ru_dim_parse(const char *s) { return parse_name(s, dim_names, TL_RU_DIMS); }
int tl_ru_window_parse(const char *s) { return parse_name(s, window_names, 3); }
const char *tl_ru_dim_name(tl_ru_dim d) { return (unsigned)d < TL_RU_DIMS ? dim_names[d] : "?"; }
const char *tl_ru_window_name(tl_ru_window w) { return (unsigned)w < 3 ? window_names[w] : "?"; }

int64_t tl_ru_window_ms(tl_ru_window w)
{
    return w == TL_RU_WINDOW_HOUR ? 3600000 : w == TL_RU_WINDOW_DAY ? 86400000 : 0;
}

/* ---- channel groups ---------------------------------------------------------------- */

static char *trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    char *o = tl_xmalloc(n + 1);
    memcpy(o, s, n);
    o[n] = 0;
    return o;
}

static void free_rule(rule *ru)
{
    free(ru->group);
    for (int j = 0; j < ru->n_pat; j++) free(ru->pat[j]);
    free(ru->pat);
}

static void free_rules(rule *rules, int n)
{
    for (int i = 0; i < n; i++) free_rule(&rules[i]);
    free(rules);
}

static int parse_rules(tl_rollup *r, const char *s, char *err, size_t errlen)
{
    while (s && *s) {
        const char *end = strchr(s, ';');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        char *whole = trimmed(s, len);
        if (*whole) {
            rule ru = {0};
            ru.group = eq ? trimmed(s, (size_t)(eq - s)) : NULL;
            if (!ru.group || !*ru.group) {
                snprintf(err, errlen, "rollup.channel.groups: '%s' is not Group=pattern,...",
                         whole);
                free(ru.group);
                free(whole);
                return -1;
            }
            for (const char *p = eq + 1, *stop = s + len; p <= stop;) {
                const char *comma = memchr(p, ',', (size_t)(stop - p));
                const char *pe = comma ? comma : stop;
                char *pat = trimmed(p, (size_t)(pe - p));
                if (!*pat) {
                    snprintf(err, errlen,
                             "rollup.channel.groups: group '%s' has an empty "
                             "pattern",
                             ru.group);
                    free(pat);
                    free_rule(&ru);
                    free(whole);
                    return -1;
                }
                ru.pat = tl_xrealloc(ru.pat, (size_t)(ru.n_pat + 1) * sizeof(*ru.pat));
                ru.pat[ru.n_pat++] = pat;
                p = pe + 1;
            }
            r->rules = tl_xrealloc(r->rules, (size_t)(r->n_rules + 1) * sizeof(*r->rules));
            r->rules[r->n_rules++] = ru;
        }
        free(whole);
        s = end ? end + 1 : NULL;
    }
    return 0;
}

/* '*' matches any run of characters, case-insensitive; iterative with one backtrack
 * point, so linear in practice and never recursive. */
static int glob_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p && tolower((unsigned char)*p) == tolower((unsigned char)*s)) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*') p++;
    return !*p;
}

const char *tl_rollup_group(const tl_rollup *r, const char *channel)
{
    if (!channel || !*channel) return "(none)";
    for (int i = 0; i < r->n_rules; i++)
        for (int j = 0; j < r->rules[i].n_pat; j++)
            if (glob_match(r->rules[i].pat[j], channel)) return r->rules[i].group;
    return "Other";
}

/* ---- rows ------------------------------------------------------------------------- */

tl_rollup *tl_rollup_new(tl_ru_dim dim, tl_ru_window window, const char *groups, char *err,
                         size_t errlen)
{
    tl_rollup *r = tl_xcalloc(1, sizeof(*r));
    r->dim = dim;
    r->window = window;
    if (parse_rules(r, groups, err, errlen) != 0) {
        tl_rollup_destroy(r);
        return NULL;
    }
    r->n_slot = 64;
    r->slot = tl_xcalloc(r->n_slot, sizeof(*r->slot));
    return r;
}

void tl_rollup_destroy(tl_rollup *r)
{
    if (!r) return;
    free_rules(r->rules, r->n_rules);
    for (size_t i = 0; i < r->n; i++) free(r->rows[i].id);
    TL_FREE_ALL(r->rows, r->slot, r->touched, r->touched_se, r);
}

static uint64_t row_hash(const char *id, int64_t w)
{
    return tl_hash64(id, strlen(id)) ^ ((uint64_t)w * 0x9E3779B97F4A7C15ull);
}

static void reindex(tl_rollup *r)
{
    free(r->slot);
    r->slot = tl_xcalloc(r->n_slot, sizeof(*r->slot));
    for (size_t i = 0; i < r->n; i++) {
        size_t k = row_hash(r->rows[i].id, r->rows[i].window_start) & (r->n_slot - 1);
        while (r->slot[k]) k = (k + 1) & (r->n_slot - 1);
        r->slot[k] = i + 1;
    }
}

/* The slot of (id, w): its row's, or the empty one where it would go. */
static size_t probe(tl_rollup *r, const char *id, int64_t w)
{
    if (r->sorted) {   /* sorting moved the rows: the table is rebuilt once */
        reindex(r);
        r->sorted = 0;
    }
    size_t k = row_hash(id, w) & (r->n_slot - 1);
    for (; r->slot[k]; k = (k + 1) & (r->n_slot - 1)) {
        const tl_rollup_row *x = &r->rows[r->slot[k] - 1];
        if (x->window_start == w && !strcmp(x->id, id)) break;
    }
    return k;
}

static size_t row_of(tl_rollup *r, const char *id, int64_t w)
{
    size_t k = probe(r, id, w);
    if (r->slot[k]) return r->slot[k] - 1;
    TL_GROW(r->rows, r->n, r->cap, 16);
    memset(&r->rows[r->n], 0, sizeof(r->rows[r->n]));
    r->rows[r->n].id = tl_xstrdup(id);
    r->rows[r->n].window_start = w;
    r->slot[k] = ++r->n;
    if (2 * r->n > r->n_slot) {
        r->n_slot *= 2;
        reindex(r);
    }
    return r->n - 1;
}

static int64_t window_of(const tl_rollup *r, int64_t ts)
{
    int64_t len = tl_ru_window_ms(r->window);
    return len ? tl_floor_to(ts, len) : TL_RU_ALL;
}

/* The row id of a channel (a touchpoint's, a credit delta's, a spend row's): itself, or
 * its group; "(none)" for none. */
static const char *channel_id(const tl_rollup *r, const char *channel)
{
    if (r->dim == TL_RU_CHANNEL_GROUP) return tl_rollup_group(r, channel);
    return channel && *channel ? channel : "(none)";
}

static const char *id_of(const tl_rollup *r, const tl_touchpoint *t)
{
    const char *v = r->dim == TL_RU_CATEGORY ? t->category_id
        : r->dim == TL_RU_CAMPAIGN           ? t->campaign
                                             : NULL;
    if (r->dim == TL_RU_CHANNEL || r->dim == TL_RU_CHANNEL_GROUP) return channel_id(r, t->channel);
    return v && *v ? v : "(none)";
}

void tl_rollup_add(tl_rollup *r, const tl_attribution *a)
{
    int64_t w = window_of(r, a->ts);
    double value = a->has_value ? a->value : 0;
    r->n_touched = 0;
    const double *se = a->has_method[TL_M_SHAPLEY] ? a->shapley_stderr : NULL;
    for (int i = 0; i < a->n_touchpoints; i++) {
        size_t k = row_of(r, id_of(r, &a->touchpoints[i]), w);
        tl_rollup_row *x = &r->rows[k];
        x->touchpoints++;
        x->changed = 1;
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!a->has_method[m]) continue;
            x->conversions[m] += a->credits[m][i];
            x->value[m] += a->credits[m][i] * value;
            x->has[m] = 1;
        }
        size_t j = 0;
        while (j < r->n_touched && r->touched[j] != k) j++;
        if (j == r->n_touched) {
            if (r->n_touched == r->cap_touched) {
                r->cap_touched = r->cap_touched ? 2 * r->cap_touched : 8;
                r->touched = tl_xrealloc(r->touched, r->cap_touched * sizeof(*r->touched));
                r->touched_se = tl_xrealloc(r->touched_se, r->cap_touched * sizeof(*r->touched_se));
            }
            r->touched_se[r->n_touched] = 0;
            r->touched[r->n_touched++] = k;
            x->purchases++;
        }
        if (se) r->touched_se[j] += isfinite(se[i]) ? se[i] : INFINITY;
    }
    for (size_t j = 0; se && j < r->n_touched; j++)
        r->rows[r->touched[j]].shapley_var += r->touched_se[j] * r->touched_se[j];
}

void tl_rollup_add_credit_delta(tl_rollup *r, const tl_credit_delta *d)
{
    /* the chain is over channels, or over categories when the data has no channel */
    int over = r->dim == TL_RU_CATEGORY ? TL_DIM_CATEGORY : TL_DIM_CHANNEL;
    if (r->dim == TL_RU_CAMPAIGN || (int)d->dim != over || !d->method ||
        strcmp(d->method, "markov"))
        return;
    const char *id = r->dim == TL_RU_CATEGORY ? (d->dim_id && *d->dim_id ? d->dim_id : "(none)")
                                              : channel_id(r, d->dim_id);
    size_t k = row_of(r, id, window_of(r, d->window_start));   /* may move the rows */
    tl_rollup_row *x = &r->rows[k];
    x->conversions[TL_RU_MARKOV] += d->credit - d->credit_before;
    x->has[TL_RU_MARKOV] = 1;
    x->changed = 1;
    if (d->has_interval && r->dim != TL_RU_CHANNEL_GROUP &&
        (!x->has_markov_interval || d->window_end >= x->markov_at)) {
        x->markov_lo = d->credit_lo;
        x->markov_hi = d->credit_hi;
        x->markov_level = d->interval_level;
        x->markov_at = d->window_end;
        x->has_markov_interval = 1;
    }
}

int tl_rollup_add_spend(tl_rollup *r, const char *channel, int64_t day_ms, double spend)
{
    if (r->dim == TL_RU_CATEGORY || r->dim == TL_RU_CAMPAIGN || r->window == TL_RU_WINDOW_HOUR)
        return -1;
    size_t k = row_of(r, channel_id(r, channel), window_of(r, day_ms));
    r->rows[k].spend += spend;
    r->rows[k].has_spend = 1;
    r->rows[k].changed = 1;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

const char *tl_rollup_spend_parse(char *line, int64_t *day_ms, const char **channel, double *spend)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL, *end;
    if (!c2 || strchr(c2 + 1, ',')) return "not three fields";
    *c1 = *c2 = 0;
    int y, m, d, n = 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (c1 - line != 10 || sscanf(line, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
        line[4] != '-' || line[7] != '-' || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
        (m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
        return "the date is not YYYY-MM-DD";
    if (!c1[1]) return "the channel is empty";
    double v = strtod(c2 + 1, &end);
    if (end == c2 + 1 || *end || !isfinite(v) || v < 0)
        return "the spend is not a number at least 0";
    *day_ms = days_from_civil(y, m, d) * 86400000;
    *channel = c1 + 1;
    *spend = v;
    return NULL;
}

double tl_rollup_cost_per_conversion(const tl_rollup_row *r, int m)
{
    return r->has_spend && r->conversions[m] > 0 ? r->spend / r->conversions[m] : NAN;
}

double tl_rollup_roas(const tl_rollup_row *r, int m)
{
    return r->has_spend && r->spend > 0 && m != TL_RU_MARKOV ? r->value[m] / r->spend : NAN;
}

const tl_rollup_row *tl_rollup_find(tl_rollup *r, const char *id, int64_t window_start)
{
    size_t k = probe(r, id, window_start);
    return r->slot[k] ? &r->rows[r->slot[k] - 1] : NULL;
}

void tl_rollup_touch(tl_rollup *r, const char *id, int64_t window_start)
{
    size_t k = row_of(r, id, window_start);   /* may move the rows */
    r->rows[k].changed = 1;
}

void tl_rollup_join_spend(tl_rollup *r, tl_rollup *spend)
{
    for (size_t i = 0; i < r->n; i++) {
        tl_rollup_row *x = &r->rows[i];
        if (!x->changed) continue;
        const tl_rollup_row *s = tl_rollup_find(spend, x->id, x->window_start);
        if (!s || !s->has_spend) continue;
        x->spend = s->spend;
        x->has_spend = 1;
    }
}

void tl_rollup_merge(tl_rollup *r, const tl_rollup_row *d)
{
    size_t k = row_of(r, d->id, window_of(r, d->window_start));   /* may move the rows */
    tl_rollup_row *x = &r->rows[k];
    x->purchases += d->purchases;
    x->touchpoints += d->touchpoints;
    for (int m = 0; m < TL_RU_METHODS; m++) {
        if (!d->has[m]) continue;
        x->conversions[m] += d->conversions[m];
        x->value[m] += d->value[m];
        x->has[m] = 1;
    }
    x->shapley_var += d->shapley_var;
    if (d->has_spend) {
        x->spend += d->spend;
        x->has_spend = 1;
    }
    if (d->has_markov_interval && (!x->has_markov_interval || d->markov_at >= x->markov_at)) {
        x->markov_lo = d->markov_lo;
        x->markov_hi = d->markov_hi;
        x->markov_level = d->markov_level;
        x->markov_at = d->markov_at;
        x->has_markov_interval = 1;
    }
    x->changed = 1;
}

void tl_rollup_set(tl_rollup *r, const tl_rollup_row *d)
{
    size_t k = row_of(r, d->id, d->window_start);   /* may move the rows */
    tl_rollup_row *x = &r->rows[k];
    char *id = x->id;
    /* A copy, not a merge into zeros: 0.0 + -0.0 is 0.0, and a total read back must stay
     * as it was read, bit for bit (found by fuzz.rollup). */
    *x = *d;
    x->id = id;
    x->changed = 0;
}

int tl_rollup_each_changed(tl_rollup *r, int (*fn)(void *arg, const tl_rollup_row *row), void *arg)
{
    for (size_t i = 0; i < r->n; i++) {
        if (!r->rows[i].changed) continue;
        r->rows[i].changed = 0;
        int rc = fn(arg, &r->rows[i]);
        if (rc) return rc;
    }
    return 0;
}

void tl_rollup_clear(tl_rollup *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->rows[i].id);
    r->n = 0;
    r->sorted = 0;
    memset(r->slot, 0, r->n_slot * sizeof(*r->slot));
}

tl_ru_dim tl_rollup_dim(const tl_rollup *r) { return r->dim; }
tl_ru_window tl_rollup_window(const tl_rollup *r) { return r->window; }

static int by_window_then_linear(const void *pa, const void *pb)
{
    const tl_rollup_row *a = pa, *b = pb;
    if (a->window_start != b->window_start) return a->window_start < b->window_start ? -1 : 1;
    double x = a->conversions[TL_M_LINEAR], y = b->conversions[TL_M_LINEAR];
    if (x != y) return x > y ? -1 : 1;
    return strcmp(a->id, b->id);
}

const tl_rollup_row *tl_rollup_rows(tl_rollup *r, size_t *n)
{
    if (r->n > 1) qsort(r->rows, r->n, sizeof(*r->rows), by_window_then_linear);
    r->sorted = 1;
    *n = r->n;
    return r->rows;
}
