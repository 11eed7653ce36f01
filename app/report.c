/*
 * report.c -- the report behind `tally report` and GET /v1/attribution: attribution summed per channel, channel group or category,
 * per method and window (model/rollup.h), from the records tally wrote: a replay's JSON
 * lines, or `tally consume` lines of the attribution and credit-delta topics (the record
 * under "value", unions in Avro's JSON form). As a table, CSV, JSON, or one HTML page
 * with its chart drawn inline (SVG), which needs no network to view. docs/report.md.
 *
 * A line that is not a JSON object, or an attribution without what the roll-up needs,
 * is skipped and counted (the first few named by line number); other record types are
 * ignored.
 */
#include "report.h"
#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"
#include "model/rollup.h"

#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NAMED_BAD 5

static const char *method_name(int m) { return m == TL_RU_MARKOV ? "markov" : tl_method_name(m); }

/* "2017-11-25", "2017-11-25T08:30", "2017-11-25T08:30:15" (UTC) or ms since the epoch. */
static int parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out = v;
        return 0;
    }
    struct tm tm = {0};
    int n = 0, h = 0, mi = 0, sec = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3) return -1;
    if (s[n] == 'T') {
        int m = 0;
        if (sscanf(s + n, "T%2d:%2d%n", &h, &mi, &m) != 2) return -1;
        n += m;
        if (s[n] == ':') {
            if (sscanf(s + n, ":%2d%n", &sec, &m) != 1) return -1;
            n += m;
        }
    }
    if (s[n] || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static void put_time(char *out, size_t len, int64_t ms, int hours)
{
    if (ms == TL_RU_ALL) {
        snprintf(out, len, "all");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, hours ? "%Y-%m-%dT%H:00Z" : "%Y-%m-%d", &tm);
}

/* ---- reading ------------------------------------------------------------------------ */

/* Avro's JSON form of a union ({"string": "x"}, {"double": 2}) unwrapped; anything else
 * as it is. */
static const tl_json *un(const tl_json *j)
{
    if (j && j->type == TL_JSON_OBJECT && j->len == 1) return tl_json_at(j, 0);
    return j;
}

static const char *str_of(const tl_json *obj, const char *key)
{
    return tl_json_str(un(tl_json_get(obj, key)));
}

static int num_of(const tl_json *obj, const char *key, double *out)
{
    const tl_json *j = un(tl_json_get(obj, key));
    if (!j || j->type != TL_JSON_NUMBER) return -1;
    *out = j->num;
    return 0;
}

/* A time in ms: a number within +-1e16 (about 300,000 years), so that windows and
 * conversions cannot overflow. */
static int ts_of(const tl_json *obj, const char *key, int64_t *out)
{
    double d;
    if (num_of(obj, key, &d) != 0 || !(d > -1e16 && d < 1e16)) return -1;
    *out = (int64_t)d;
    return 0;
}

typedef struct report {
    tl_rollup *ru;
    tl_rollup *totals;          /* roll-up topic records, the latest per key (add_total) */
    tl_ru_dim by;
    int markov;                 /* read the credit deltas: markov is among the methods */
    int64_t from, to;
    uint64_t lines, bad, attributions, deltas, totals_read, outside, spend_rows, spend_bad;
    int spend_file;             /* --spend: its spend, not the totals' */
    uint64_t totals_spend;      /* roll-up totals read with their spend */
    unsigned char seen[TL_RU_METHODS];
    int intervals;              /* a credit delta carried a bootstrap interval */
    FILE *msgs;                 /* where skipped lines are named; NULL: nowhere */
} report;

static void say(const report *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const report *rp, const char *fmt, ...)
{
    if (!rp->msgs) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(rp->msgs, fmt, ap);
    va_end(ap);
}

/* One attribution record into the roll-up; -1 (with a reason) when it lacks a field. */
static int add_attribution(report *rp, const tl_json *o, tl_arena *a, const char **why)
{
    int64_t ts;
    const tl_json *tps = tl_json_get(o, "touchpoints"), *cr = tl_json_get(o, "credits");
    if (ts_of(o, "ts", &ts) != 0 || !tps || tps->type != TL_JSON_ARRAY || !cr ||
        cr->type != TL_JSON_OBJECT) {
        *why = "an attribution without ts (ms), touchpoints or credits";
        return -1;
    }
    if (ts < rp->from || ts >= rp->to) {
        rp->outside++;
        return 0;
    }
    tl_attribution at = {0};
    at.ts = ts;
    at.has_value = num_of(o, "value", &at.value) == 0;
    int n = (int)tl_json_len(tps);
    tl_touchpoint *tp = tl_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(*tp));
    for (int i = 0; i < n; i++) {
        const tl_json *t = tl_json_at(tps, (size_t)i);
        tp[i] = (tl_touchpoint){.channel = str_of(t, "channel"),
                                .category_id = str_of(t, "category_id"),
                                .campaign = str_of(t, "campaign")};
    }
    at.touchpoints = tp;
    at.n_touchpoints = n;
    for (int m = 0; m < TL_M_COUNT; m++) {
        const tl_json *c = tl_json_get(cr, tl_method_name(m));
        if (!c) continue;
        if (c->type != TL_JSON_ARRAY || (int)tl_json_len(c) != n) {
            *why = "credits of another length than the touchpoints";
            return -1;
        }
        double *v = tl_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(*v));
        for (int i = 0; i < n; i++) {
            const tl_json *x = tl_json_at(c, (size_t)i);
            if (!x || x->type != TL_JSON_NUMBER) {
                *why = "a credit that is not a number";
                return -1;
            }
            v[i] = x->num;
        }
        at.credits[m] = v;
        at.has_method[m] = 1;
        rp->seen[m] = 1;
    }
    const tl_json *se = un(tl_json_get(o, "shapley_stderr"));
    if (se && se->type == TL_JSON_ARRAY) {   /* null entries: unknown (infinite) */
        if ((int)tl_json_len(se) != n) {
            *why = "shapley_stderr of another length than the touchpoints";
            return -1;
        }
        double *v = tl_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(*v));
        for (int i = 0; i < n; i++) {
            const tl_json *x = tl_json_at(se, (size_t)i);
            v[i] = x && x->type == TL_JSON_NUMBER && x->num >= 0 ? x->num : INFINITY;
        }
        at.shapley_stderr = v;
    }
    tl_rollup_add(rp->ru, &at);
    rp->attributions++;
    return 0;
}

static int add_delta(report *rp, const tl_json *o, const char **why)
{
    int64_t ws, we;
    double credit, before;
    const char *dim = str_of(o, "dim"), *method = str_of(o, "method");
    if (ts_of(o, "window_start", &ws) != 0 || ts_of(o, "window_end", &we) != 0 ||
        num_of(o, "credit", &credit) != 0 || num_of(o, "credit_before", &before) != 0 || !dim ||
        !method) {
        *why = "a credit delta without its window, dim, method or credits";
        return -1;
    }
    /* a chain over channels, or over categories (rollup.h); none over campaigns */
    if (!rp->markov || rp->by == TL_RU_CAMPAIGN ||
        strcmp(dim, rp->by == TL_RU_CATEGORY ? "category" : "channel") || strcmp(method, "markov"))
        return 0;
    if (ws < rp->from || ws >= rp->to) {
        rp->outside++;
        return 0;
    }
    tl_credit_delta d = {.window_start = ws,
                         .window_end = we,
                         .dim = rp->by == TL_RU_CATEGORY ? TL_DIM_CATEGORY : TL_DIM_CHANNEL,
                         .dim_id = str_of(o, "dim_id"),
                         .method = method,
                         .credit = credit,
                         .credit_before = before};
    /* the bootstrap interval, when the chain made one (absent or null otherwise) */
    d.has_interval = num_of(o, "credit_lo", &d.credit_lo) == 0 &&
        num_of(o, "credit_hi", &d.credit_hi) == 0 &&
        num_of(o, "interval_level", &d.interval_level) == 0;
    tl_rollup_add_credit_delta(rp->ru, &d);
    rp->intervals |= d.has_interval;
    rp->seen[TL_RU_MARKOV] = 1;
    rp->deltas++;
    return 0;
}

/* A record of the roll-up topic (docs/report.md, "The roll-up topic"): the totals of one
 * row so far. Those of the report's dimension and of its window's kind (hour rows for
 * --window hour, day rows otherwise) are kept per key, the latest one winning as in the
 * compacted topic, and summed into the report once the input is read. */
static int add_total(report *rp, const tl_json *o, const char **why)
{
    const char *dim = str_of(o, "dim"), *id = str_of(o, "dim_id"), *window = str_of(o, "window");
    const tl_json *methods = tl_json_get(o, "methods");
    int64_t ws;
    double purchases, touchpoints;
    if (!dim || !id || !window || ts_of(o, "window_start", &ws) != 0 ||
        num_of(o, "purchases", &purchases) != 0 || num_of(o, "touchpoints", &touchpoints) != 0 ||
        !(purchases >= 0 && purchases < 1e18) || !(touchpoints >= 0 && touchpoints < 1e18) ||
        !methods || methods->type != TL_JSON_ARRAY) {
        *why = "a roll-up total without its dim, dim_id, window, counts or methods";
        return -1;
    }
    int want = tl_rollup_window(rp->ru) == TL_RU_WINDOW_HOUR ? TL_RU_WINDOW_HOUR : TL_RU_WINDOW_DAY;
    if (tl_ru_dim_parse(dim) != (int)rp->by || tl_ru_window_parse(window) != want) return 0;
    if (ws % tl_ru_window_ms((tl_ru_window)want) != 0) {
        *why = "a roll-up total whose window_start is not its window's";
        return -1;
    }
    if (ws < rp->from || ws >= rp->to) {
        rp->outside++;
        return 0;
    }
    tl_rollup_row row = {.id = (char *)id,
                         .window_start = ws,
                         .purchases = (uint64_t)purchases,
                         .touchpoints = (uint64_t)touchpoints};
    for (size_t i = 0; i < tl_json_len(methods); i++) {
        const tl_json *m = tl_json_at(methods, i);
        const char *name = str_of(m, "method");
        double c, v;
        int k = 0;
        while (k < TL_RU_METHODS && (!name || strcmp(name, method_name(k)))) k++;
        if (k == TL_RU_METHODS || num_of(m, "conversions", &c) != 0 ||
            num_of(m, "value", &v) != 0) {
            *why = "a roll-up total with a method that is not one, or without its numbers";
            return -1;
        }
        row.conversions[k] = c;
        row.value[k] = v;
        row.has[k] = 1;
    }
    double var, spend;
    if (num_of(o, "shapley_variance", &var) == 0) row.shapley_var = var;
    if (!rp->spend_file && num_of(o, "spend", &spend) == 0) {   /* schema 9: rollup.spend.topic */
        if (!(spend >= 0 && isfinite(spend))) {
            *why = "a roll-up total whose spend is not a number at least 0";
            return -1;
        }
        row.spend = spend;
        row.has_spend = 1;
        rp->totals_spend++;
    }
    const tl_json *iv = un(tl_json_get(o, "markov_interval"));   /* schema 9, with bootstrap */
    if (iv && iv->type == TL_JSON_OBJECT) {
        if (num_of(iv, "lo", &row.markov_lo) != 0 || num_of(iv, "hi", &row.markov_hi) != 0 ||
            num_of(iv, "level", &row.markov_level) != 0 || ts_of(iv, "at", &row.markov_at) != 0) {
            *why = "a roll-up total with a Markov interval without its lo, hi, level and at";
            return -1;
        }
        row.has_markov_interval = 1;
        rp->intervals = 1;
    }
    if (!rp->totals) rp->totals = tl_rollup_new(rp->by, (tl_ru_window)want, "", NULL, 0);
    tl_rollup_set(rp->totals, &row);
    for (int k = 0; k < TL_RU_METHODS; k++) rp->seen[k] |= row.has[k];
    rp->totals_read++;
    return 0;
}

static int read_input(report *rp, FILE *in, const char *name)
{
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t len;
    tl_arena a;
    tl_arena_init(&a, 1 << 16);
    while ((len = getline(&line, &cap, in)) >= 0) {
        rp->lines++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) continue;
        tl_arena_reset(&a);
        const char *why = NULL;
        const tl_json *o = tl_json_parse(line, (size_t)len, &a, err, sizeof(err));
        if (!o || o->type != TL_JSON_OBJECT) {
            why = o ? "not a JSON object" : err;
        } else {
            const tl_json *v = tl_json_get(o, "value");   /* a `tally consume` line */
            if (!tl_json_get(o, "type") && v && v->type == TL_JSON_OBJECT) o = v;
            /* a replay's records say their type; a consumed one is known by its fields */
            const char *type = str_of(o, "type");
            if (!type && tl_json_get(o, "conversion_event_id")) type = "attribution";
            if (!type && tl_json_get(o, "credit_before")) type = "credit_delta";
            if (!type && tl_json_get(o, "methods") && tl_json_get(o, "window")) type = "rollup";
            if (type && !strcmp(type, "credit_delta")) add_delta(rp, o, &why);
            else if (type && !strcmp(type, "rollup")) add_total(rp, o, &why);
            else if (type && !strcmp(type, "attribution")) add_attribution(rp, o, &a, &why);
        }
        if (why && ++rp->bad <= MAX_NAMED_BAD)
            say(rp, "tally report: %s:%" PRIu64 ": skipped: %s\n", name, rp->lines, why);
    }
    int rc = ferror(in) ? -1 : 0;
    free(line);
    tl_arena_destroy(&a);
    if (rp->totals) {
        size_t n;
        const tl_rollup_row *rows = tl_rollup_rows(rp->totals, &n);
        for (size_t i = 0; i < n; i++) tl_rollup_merge(rp->ru, &rows[i]);
    }
    return rc;
}

/* The spend file: "date,channel,spend" then one row per channel and day. A row that does
 * not parse is skipped and counted (the first few named); days outside the range are left
 * out. -1 when the file cannot be read or its header is not that one. */
static int read_spend(report *rp, const char *path, FILE *open_file)
{
    FILE *in = open_file ? open_file : fopen(path, "r");
    if (!in) {
        say(rp, "tally report: cannot read %s\n", path);
        return -1;
    }
    int64_t from_day = rp->from == INT64_MIN ? INT64_MIN : tl_floor_to(rp->from, 86400000);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t no = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (no == 1) {
            if (strcmp(line, "date,channel,spend")) {
                say(rp, "tally report: %s: the first line must be date,channel,spend\n", path);
                rc = -1;
                break;
            }
            continue;
        }
        if (len == 0) continue;
        int64_t day = 0;
        double spend = 0;
        const char *channel = NULL;
        const char *why = tl_rollup_spend_parse(line, &day, &channel, &spend);
        if (why) {
            if (++rp->spend_bad <= MAX_NAMED_BAD)
                say(rp, "tally report: %s:%" PRIu64 ": skipped: %s\n", path, no, why);
            continue;
        }
        if (day < from_day || day >= rp->to) continue;
        tl_rollup_add_spend(rp->ru, channel, day, spend);
        rp->spend_rows++;
    }
    if (ferror(in)) {
        say(rp, "tally report: error reading %s\n", path);
        rc = -1;
    }
    free(line);
    if (in != open_file) fclose(in); /* the caller's stays open */
    return rc;
}

/* ---- writing ------------------------------------------------------------------------ */

typedef struct view {
    const tl_rollup_row *rows;
    size_t n;
    int methods[TL_RU_METHODS], n_methods;
    tl_ru_dim by;
    tl_ru_window window;
    uint64_t min_purchases;
    const char *from, *to;
    int spend; /* a spend file was joined */
    const char *format; /* table, csv, json or html */
    int shapley; /* shapley is among the methods: its sampling error too */
    int markov_interval; /* rows carry the Markov credit's bootstrap interval */
} view;

/* The row's Markov interval, when it is the interval of the row's Markov conversions. */
static int has_interval(const view *v, const tl_rollup_row *r)
{
    return v->markov_interval && r->has_markov_interval;
}

/* Too few purchases for a stable answer: marked, not hidden. */
static int low_data(const view *v, const tl_rollup_row *r)
{
    return r->purchases < v->min_purchases;
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, ",%.10g", x);
    else fputc(',', f);
}

static void write_csv(FILE *f, const view *v)
{
    fprintf(f, "%s,window_start,purchases,touchpoints,low_data", tl_ru_dim_name(v->by));
    for (int k = 0; k < v->n_methods; k++)
        fprintf(f, ",%s_conversions", method_name(v->methods[k]));
    for (int k = 0; k < v->n_methods; k++)
        if (v->methods[k] != TL_RU_MARKOV) fprintf(f, ",%s_value", method_name(v->methods[k]));
    if (v->shapley) fputs(",shapley_stderr", f);
    if (v->markov_interval) fputs(",markov_lo,markov_hi,markov_level", f);
    if (v->spend) {
        fputs(",spend", f);
        for (int k = 0; k < v->n_methods; k++)
            fprintf(f, ",%s_cost_per_conversion", method_name(v->methods[k]));
        for (int k = 0; k < v->n_methods; k++)
            if (v->methods[k] != TL_RU_MARKOV) fprintf(f, ",%s_roas", method_name(v->methods[k]));
    }
    fputc('\n', f);
    for (size_t i = 0; i < v->n; i++) {
        const tl_rollup_row *r = &v->rows[i];
        char w[32];
        put_time(w, sizeof(w), r->window_start, v->window == TL_RU_WINDOW_HOUR);
        csv_field(f, r->id);
        fprintf(f, ",%s,%" PRIu64 ",%" PRIu64 ",%s", w, r->purchases, r->touchpoints,
                low_data(v, r) ? "true" : "false");
        for (int k = 0; k < v->n_methods; k++) fprintf(f, ",%.10g", r->conversions[v->methods[k]]);
        for (int k = 0; k < v->n_methods; k++)
            if (v->methods[k] != TL_RU_MARKOV) fprintf(f, ",%.10g", r->value[v->methods[k]]);
        if (v->shapley) csv_number(f, sqrt(r->shapley_var));
        if (v->markov_interval) {
            int h = has_interval(v, r);
            csv_number(f, h ? r->markov_lo : NAN);
            csv_number(f, h ? r->markov_hi : NAN);
            csv_number(f, h ? r->markov_level : NAN);
        }
        if (v->spend) { /* empty where there is no number */
            if (r->has_spend) fprintf(f, ",%.10g", r->spend);
            else fputc(',', f);
            for (int k = 0; k < v->n_methods; k++)
                csv_number(f, tl_rollup_cost_per_conversion(r, v->methods[k]));
            for (int k = 0; k < v->n_methods; k++)
                if (v->methods[k] != TL_RU_MARKOV) csv_number(f, tl_rollup_roas(r, v->methods[k]));
        }
        fputc('\n', f);
    }
}

/* A member of an object: the first without the comma tl_json_put_key puts before it. */
static void member(tl_buf *b, const char *k, int first)
{
    if (!first) {
        tl_json_put_key(b, k);
        return;
    }
    tl_json_put_str(b, k);
    tl_buf_putc(b, ':');
}

static void write_json(FILE *f, const view *v)
{
    tl_buf b = {0};
    tl_buf_puts(&b, "{");
    member(&b, "by", 1);
    tl_json_put_str(&b, tl_ru_dim_name(v->by));
    tl_json_member_str(&b, "window",
                       v->window == TL_RU_WINDOW_HOUR      ? "hour"
                           : v->window == TL_RU_WINDOW_DAY ? "day"
                                                           : "all");
    tl_json_put_key(&b, "from");
    if (v->from) tl_json_put_str(&b, v->from);
    else tl_buf_puts(&b, "null");
    tl_json_put_key(&b, "to");
    if (v->to) tl_json_put_str(&b, v->to);
    else tl_buf_puts(&b, "null");
    tl_buf_puts(&b, ",\"methods\":[");
    for (int k = 0; k < v->n_methods; k++) {
        if (k) tl_buf_putc(&b, ',');
        tl_json_put_str(&b, method_name(v->methods[k]));
    }
    tl_buf_printf(&b, "],\"min_purchases\":%" PRIu64 ",\"rows\":[", v->min_purchases);
    for (size_t i = 0; i < v->n; i++) {
        const tl_rollup_row *r = &v->rows[i];
        tl_buf_puts(&b, i ? ",\n{" : "\n{");
        member(&b, "id", 1);
        tl_json_put_str(&b, r->id);
        tl_json_put_key(&b, "window_start");
        if (r->window_start == TL_RU_ALL) tl_buf_puts(&b, "null");
        else tl_json_put_i64(&b, r->window_start);
        tl_buf_printf(&b,
                      ",\"purchases\":%" PRIu64 ",\"touchpoints\":%" PRIu64
                      ",\"low_data\":%s,\"conversions\":{",
                      r->purchases, r->touchpoints, low_data(v, r) ? "true" : "false");
        for (int k = 0; k < v->n_methods; k++) {
            member(&b, method_name(v->methods[k]), k == 0);
            tl_json_put_double(&b, r->conversions[v->methods[k]]);
        }
        tl_buf_puts(&b, "},\"value\":{");
        int first = 1;
        for (int k = 0; k < v->n_methods; k++) {
            if (v->methods[k] == TL_RU_MARKOV) continue;
            member(&b, method_name(v->methods[k]), first);
            first = 0;
            tl_json_put_double(&b, r->value[v->methods[k]]);
        }
        tl_buf_putc(&b, '}');
        if (v->shapley) { /* null when unknown */
            tl_json_put_key(&b, "shapley_stderr");
            tl_json_put_double(&b, sqrt(r->shapley_var));
        }
        if (v->markov_interval) {
            tl_json_put_key(&b, "markov_interval");
            if (has_interval(v, r))
                tl_buf_printf(&b, "{\"lo\":%.17g,\"hi\":%.17g,\"level\":%.17g}", r->markov_lo,
                              r->markov_hi, r->markov_level);
            else tl_buf_puts(&b, "null");
        }
        if (v->spend) {
            tl_json_put_key(&b, "spend");
            if (r->has_spend) tl_json_put_double(&b, r->spend);
            else tl_buf_puts(&b, "null");
            tl_buf_puts(&b, ",\"cost_per_conversion\":{");
            for (int k = 0; k < v->n_methods; k++) {
                member(&b, method_name(v->methods[k]), k == 0);
                tl_json_put_double(
                    &b, tl_rollup_cost_per_conversion(r, v->methods[k])); /* null when not finite */
            }
            tl_buf_puts(&b, "},\"roas\":{");
            first = 1;
            for (int k = 0; k < v->n_methods; k++) {
                if (v->methods[k] == TL_RU_MARKOV) continue;
                member(&b, method_name(v->methods[k]), first);
                first = 0;
                tl_json_put_double(&b, tl_rollup_roas(r, v->methods[k]));
            }
            tl_buf_putc(&b, '}');
        }
        tl_buf_putc(&b, '}');
    }
    tl_buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, f);
    tl_buf_free(&b);
}

/* A table line's first columns: the window (unless all) and the value, idw wide. */
static void table_key(FILE *f, const view *v, const char *window, const char *id, int idw)
{
    if (v->window != TL_RU_WINDOW_ALL) fprintf(f, "%-17s ", window);
    fprintf(f, "%-*.*s", idw, idw, id);
}

static void table_row_key(FILE *f, const view *v, const tl_rollup_row *r, int idw)
{
    char w[32];
    put_time(w, sizeof(w), r->window_start, v->window == TL_RU_WINDOW_HOUR);
    table_key(f, v, w, r->id, idw);
}

static void write_table(FILE *f, const view *v)
{
    size_t idw = strlen(tl_ru_dim_name(v->by));
    for (size_t i = 0; i < v->n; i++)
        if (strlen(v->rows[i].id) > idw) idw = strlen(v->rows[i].id);
    if (idw > 40) idw = 40;
    table_key(f, v, "window", tl_ru_dim_name(v->by), (int)idw);
    fprintf(f, " %9s %11s", "purchases", "touchpoints");
    for (int k = 0; k < v->n_methods; k++) fprintf(f, " %14s", method_name(v->methods[k]));
    if (v->markov_interval) fprintf(f, "  %s", "markov interval");
    fputc('\n', f);
    int marked = 0;
    for (size_t i = 0; i < v->n; i++) {
        const tl_rollup_row *r = &v->rows[i];
        int low = low_data(v, r);
        marked |= low;
        table_row_key(f, v, r, (int)idw);
        fprintf(f, " %8" PRIu64 "%s %11" PRIu64, r->purchases, low ? "*" : " ", r->touchpoints);
        for (int k = 0; k < v->n_methods; k++) fprintf(f, " %14.2f", r->conversions[v->methods[k]]);
        if (has_interval(v, r))
            fprintf(f, "  %.2f - %.2f (%.0f%%)", r->markov_lo, r->markov_hi, 100 * r->markov_level);
        fputc('\n', f);
    }
    if (v->spend) {
        fprintf(f, "\ncost per conversion (spend / conversions):\n");
        table_key(f, v, "window", tl_ru_dim_name(v->by), (int)idw);
        fprintf(f, " %12s", "spend");
        for (int k = 0; k < v->n_methods; k++) fprintf(f, " %14s", method_name(v->methods[k]));
        fputc('\n', f);
        for (size_t i = 0; i < v->n; i++) {
            const tl_rollup_row *r = &v->rows[i];
            table_row_key(f, v, r, (int)idw);
            if (r->has_spend) fprintf(f, " %12.2f", r->spend);
            else fprintf(f, " %12s", "-");
            for (int k = 0; k < v->n_methods; k++) {
                double c = tl_rollup_cost_per_conversion(r, v->methods[k]);
                if (isfinite(c)) fprintf(f, " %14.2f", c);
                else fprintf(f, " %14s", "-");
            }
            fputc('\n', f);
        }
    }
    fprintf(f, "\nconversions: the sum of each method's credits (a purchase's credits sum to 1)");
    if (marked)
        fprintf(f, "\n* fewer than %" PRIu64 " purchases: too few for a stable answer",
                v->min_purchases);
    fputc('\n', f);
}

static const char *const colour[TL_RU_METHODS] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                  "#59a14f", "#edc948", "#b07aa1", "#9c755f"};

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

#define HTML_MAX_BARS 15 /* values in the chart; the table has them all */

static void write_html(FILE *f, const view *v, const report *rp)
{
    /* The chart: totals per value over every window of the range. */
    size_t n = 0;
    tl_rollup_row *tot = tl_xcalloc(v->n ? v->n : 1, sizeof(*tot));
    for (size_t i = 0; i < v->n; i++) {
        size_t j = 0;
        while (j < n && strcmp(tot[j].id, v->rows[i].id)) j++;
        if (j == n) tot[n++].id = v->rows[i].id;
        tot[j].purchases += v->rows[i].purchases;
        for (int m = 0; m < TL_RU_METHODS; m++) tot[j].conversions[m] += v->rows[i].conversions[m];
    }
    if (n > HTML_MAX_BARS) n = HTML_MAX_BARS; /* rows come sorted by linear conversions */
    double max = 0;
    for (size_t j = 0; j < n; j++)
        for (int k = 0; k < v->n_methods; k++)
            if (tot[j].conversions[v->methods[k]] > max) max = tot[j].conversions[v->methods[k]];
    if (max <= 0) max = 1;

    const int bar = 14, gap = 10, label = 170, plot = 640;
    int group = v->n_methods * bar + gap;
    int height = 30 + (int)n * group + 20;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>tally: "
          "attribution by ",
          f);
    html_text(f, tl_ru_dim_name(v->by));
    fputs("</title>\n<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
          "table{border-collapse:collapse;margin-top:16px}td,th{padding:3px 8px;text-align:right;"
          "border-bottom:1px solid #ddd}td:first-child,th:first-child{text-align:left}"
          ".low{color:#999}.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 "
          "12px;vertical-align:-1px}</style></head><body>\n<h1>Attribution by ",
          f);
    html_text(f, tl_ru_dim_name(v->by));
    fprintf(f,
            "</h1>\n<p>%" PRIu64 " purchases with touchpoints; %s to %s. Conversions are the "
            "sum of each method's credits: every purchase's credits sum to 1.</p>\n",
            rp->attributions, v->from ? v->from : "the first record", v->to ? v->to : "the last");
    fputs("<p class=\"key\">", f);
    for (int k = 0; k < v->n_methods; k++) {
        fprintf(f, "<span style=\"background:%s\"></span>", colour[v->methods[k]]);
        html_text(f, method_name(v->methods[k]));
    }
    fprintf(f,
            "</p>\n<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" role=\"img\" aria-label=\"conversions per method and value\">\n",
            label + plot + 80, height);
    for (size_t j = 0; j < n; j++) {
        int y0 = 20 + (int)j * group;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"13\">", label - 8,
                y0 + v->n_methods * bar / 2 + 4);
        html_text(f, tot[j].id);
        fputs("</text>\n", f);
        for (int k = 0; k < v->n_methods; k++) {
            double c = tot[j].conversions[v->methods[k]];
            int w = c > 0 ? (int)lround(c / max * plot) : 0;
            fprintf(f,
                    "<rect class=\"bar\" data-method=\"%s\" x=\"%d\" y=\"%d\" width=\"%d\" "
                    "height=\"%d\" fill=\"%s\"><title>%s: %.2f</title></rect>"
                    "<text x=\"%d\" y=\"%d\" font-size=\"10\">%.1f</text>\n",
                    method_name(v->methods[k]), label, y0 + k * bar, w, bar - 2,
                    colour[v->methods[k]], method_name(v->methods[k]), c, label + w + 4,
                    y0 + k * bar + bar - 4, c);
        }
    }
    fprintf(f, "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n</svg>\n", label,
            label, height - 10);
    free(tot);

    fputs("<table><tr><th>", f);
    html_text(f, tl_ru_dim_name(v->by));
    if (v->window != TL_RU_WINDOW_ALL) fputs("</th><th>window", f);
    fputs("</th><th>purchases</th><th>touchpoints</th>", f);
    for (int k = 0; k < v->n_methods; k++) fprintf(f, "<th>%s</th>", method_name(v->methods[k]));
    if (v->spend) {
        fputs("<th>spend</th>", f);
        for (int k = 0; k < v->n_methods; k++)
            fprintf(f, "<th>cost per conversion, %s</th>", method_name(v->methods[k]));
    }
    fputs("</tr>\n", f);
    int marked = 0;
    for (size_t i = 0; i < v->n; i++) {
        const tl_rollup_row *r = &v->rows[i];
        int low = low_data(v, r);
        marked |= low;
        fprintf(f, "<tr%s><td>", low ? " class=\"low\"" : "");
        html_text(f, r->id);
        if (v->window != TL_RU_WINDOW_ALL) {
            char w[32];
            put_time(w, sizeof(w), r->window_start, v->window == TL_RU_WINDOW_HOUR);
            fprintf(f, "</td><td>%s", w);
        }
        fprintf(f, "</td><td>%" PRIu64 "%s</td><td>%" PRIu64 "</td>", r->purchases, low ? "*" : "",
                r->touchpoints);
        for (int k = 0; k < v->n_methods; k++) {
            double se = sqrt(r->shapley_var);
            fprintf(f, "<td>%.2f", r->conversions[v->methods[k]]);
            if (v->methods[k] == TL_M_SHAPLEY && se > 0) /* the sampling error, if any */
                fprintf(f, isfinite(se) ? " ± %.2f" : " ± ?", se);
            if (v->methods[k] == TL_RU_MARKOV && has_interval(v, r))
                fprintf(f, " (%.2f–%.2f, %.0f%%)", r->markov_lo, r->markov_hi,
                        100 * r->markov_level);
            fputs("</td>", f);
        }
        if (v->spend) {
            if (r->has_spend) fprintf(f, "<td>%.2f</td>", r->spend);
            else fputs("<td>-</td>", f);
            for (int k = 0; k < v->n_methods; k++) {
                double c = tl_rollup_cost_per_conversion(r, v->methods[k]);
                if (isfinite(c)) fprintf(f, "<td>%.2f</td>", c);
                else fputs("<td>-</td>", f);
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    if (marked)
        fprintf(f,
                "<p class=\"low\">* fewer than %" PRIu64 " purchases: too few for a stable "
                "answer.</p>\n",
                v->min_purchases);
    fputs("</body></html>\n", f);
}

/* ---- the command -------------------------------------------------------------------- */

static int pick_methods(view *v, const char *list, const report *rp)
{
    v->n_methods = 0;
    for (int m = 0; m < TL_RU_METHODS; m++) {
        if (m == TL_RU_MARKOV && v->by == TL_RU_CAMPAIGN) continue; /* no chain over them */
        if (!list) {
            if (rp->seen[m]) v->methods[v->n_methods++] = m;
            continue;
        }
        size_t l = strlen(method_name(m));
        for (const char *p = list; p;) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            if (n == l && !strncmp(p, method_name(m), l)) { /* once, however often named */
                v->methods[v->n_methods++] = m;
                break;
            }
            p = c ? c + 1 : NULL;
        }
    }
    if (list) { /* every name must be a method */
        for (const char *p = list; p;) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            int ok = 0;
            for (int m = 0; m < TL_RU_METHODS && !ok; m++)
                ok = n == strlen(method_name(m)) && !strncmp(p, method_name(m), n);
            if (!ok) return -1;
            p = c ? c + 1 : NULL;
        }
    }
    return 0;
}

/* The options parsed and checked into rp and v, and the roll-up made (rp->ru, which the
 * caller destroys, also on failure): 0, or 2 with err. */
static int setup(const tl_report_args *a, report *rp, view *v, char *err, size_t errlen)
{
    int by = tl_ru_dim_parse(a->by ? a->by : "channel");
    int window = tl_ru_window_parse(a->window ? a->window : "all");
    const char *format = a->format ? a->format : "table";
    char *end = NULL;
    long long min = a->min ? strtoll(a->min, &end, 10) : 30;
    if (by < 0 || window < 0) {
        snprintf(err, errlen, "unknown %s '%s'", by < 0 ? "--by" : "--window",
                 by < 0 ? a->by : a->window);
        return 2;
    }
    if ((a->from && parse_time(a->from, &rp->from) != 0) ||
        (a->to && parse_time(a->to, &rp->to) != 0)) {
        snprintf(err, errlen, "--from/--to: not YYYY-MM-DD[THH:MM[:SS]] or ms");
        return 2;
    }
    if (a->min && (end == a->min || *end || min < 0)) {
        snprintf(err, errlen, "--min-purchases: not a count");
        return 2;
    }
    if (by == TL_RU_CAMPAIGN && a->methods && strstr(a->methods, "markov")) {
        snprintf(err, errlen,
                 "--by campaign has no markov column: the Markov chain is over "
                 "channels (or categories), not campaigns");
        return 2;
    }
    if (a->spend && (by == TL_RU_CATEGORY || by == TL_RU_CAMPAIGN || window == TL_RU_WINDOW_HOUR)) {
        snprintf(err, errlen,
                 "--spend is per channel and day: --by channel or channel_group, "
                 "--window all or day");
        return 2;
    }
    if (strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json") &&
        strcmp(format, "html")) {
        snprintf(err, errlen, "unknown --format '%s'", format);
        return 2;
    }
    rp->by = (tl_ru_dim)by;
    rp->markov = !a->methods || strstr(a->methods, "markov") != NULL;
    char gerr[256];
    rp->ru = tl_rollup_new((tl_ru_dim)by, (tl_ru_window)window, a->groups ? a->groups : "", gerr,
                           sizeof(gerr));
    if (!rp->ru) {
        snprintf(err, errlen, "configuration error: %s", gerr);
        return 2;
    }
    *v = (view){.by = (tl_ru_dim)by,
                .window = (tl_ru_window)window,
                .min_purchases = (uint64_t)min,
                .from = a->from,
                .to = a->to,
                .spend = a->spend != NULL,
                .format = format};
    if (pick_methods(v, a->methods, rp) != 0) {
        snprintf(err, errlen,
                 "--methods: one of them is not a method (last_touch, first_touch, "
                 "linear, time_decay, position_based, shapley, removal, markov)");
        return 2;
    }
    return 0;
}

int tl_report_check(const tl_report_args *a, char *err, size_t errlen)
{
    report rp = {.from = INT64_MIN, .to = INT64_MAX};
    view v;
    int rc = setup(a, &rp, &v, err, errlen);
    tl_rollup_destroy(rp.ru);
    return rc;
}

int tl_report_run(const tl_report_args *a, FILE *in, const char *name, FILE *out, FILE *msgs,
                  char *err, size_t errlen)
{
    report rp = {.from = INT64_MIN, .to = INT64_MAX, .msgs = msgs};
    view v;
    int rc = setup(a, &rp, &v, err, errlen);
    if (rc) goto done;
    rc = 1;
    rp.spend_file = a->spend != NULL;
    if (read_input(&rp, in, name) != 0) {
        snprintf(err, errlen, "error reading %s", name);
        goto done;
    }
    if (a->spend && read_spend(&rp, a->spend, a->spend_file) != 0) {
        snprintf(err, errlen, "cannot use the spend file %s", a->spend);
        goto done;
    }
    v.spend |= rp.totals_spend > 0; /* the roll-up topic's spend (rollup.spend.topic) */
    pick_methods(&v, a->methods, &rp); /* again: without a list, the methods seen */
    for (int k = 0; k < v.n_methods; k++) {
        v.shapley |= v.methods[k] == TL_M_SHAPLEY;
        /* the interval is of the credit's level: it is the row's number only when the row
         * sums the deltas of every window from the first */
        v.markov_interval |= v.methods[k] == TL_RU_MARKOV && v.window == TL_RU_WINDOW_ALL &&
            !a->from && v.by != TL_RU_CHANNEL_GROUP && rp.intervals;
    }
    v.rows = tl_rollup_rows(rp.ru, &v.n);
    if (!strcmp(v.format, "csv")) write_csv(out, &v);
    else if (!strcmp(v.format, "json")) write_json(out, &v);
    else if (!strcmp(v.format, "html")) write_html(out, &v, &rp);
    else write_table(out, &v);
    say(&rp,
        "report: %" PRIu64 " attributions, %" PRIu64 " Markov credit deltas and %" PRIu64
        " roll-up totals from %" PRIu64 " lines (%" PRIu64 " outside the range, %" PRIu64
        " skipped); %zu rows\n",
        rp.attributions, rp.deltas, rp.totals_read, rp.lines, rp.outside, rp.bad, v.n);
    if (a->spend)
        say(&rp, "        spend: %" PRIu64 " rows joined, %" PRIu64 " skipped\n", rp.spend_rows,
            rp.spend_bad);
    rc = rp.attributions || rp.deltas || rp.totals_read ? 0 : 1;
    if (rc) snprintf(err, errlen, "no attribution record in %s", name);
done:
    tl_rollup_destroy(rp.ru);
    tl_rollup_destroy(rp.totals);
    return rc;
}
