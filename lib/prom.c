/*
 * prom.c -- process-wide Prometheus metrics (prom.h).
 *
 * Families and series are singly linked lists under one mutex, taken to find or create a
 * series and to render; values are C11 atomics, so updates never take the mutex. A
 * gauge's double and a histogram's sum are kept as their bit patterns in 64-bit atomics
 * (a compare-and-swap loop adds to the sum).
 */
#include "prom.h"
#include "json.h"
#include "util.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef enum {
    P_COUNTER,
    P_GAUGE,
    P_HISTOGRAM
} ptype;

#define TL_PROM_MAX_LABELS 4

struct tl_prom_series {
    struct family *fam;
    char *labels;                  /* rendered: name="value",... (escaped), or "" */
    _Atomic uint64_t v;            /* counter value, or the gauge's bits */
    _Atomic uint64_t *buckets;     /* histogram: per bound, not cumulative; then +Inf */
    _Atomic uint64_t sum_bits;
    atomic_int hidden;
    struct tl_prom_series *next;
};

struct family {
    const char *name, *help;
    ptype type;
    const double *bounds;
    int n_bounds;
    tl_prom_series *series, **tail;
    struct family *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct family *families, **fam_tail = &families;

const double tl_prom_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,      2.5,   5,    10,    30,   60};
const int tl_prom_latency_buckets_n =
    (int)(sizeof(tl_prom_latency_buckets) / sizeof(tl_prom_latency_buckets[0]));

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void escape_value(tl_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') tl_buf_puts(b, "\\\\");
        else if (*s == '"') tl_buf_puts(b, "\\\"");
        else if (*s == '\n') tl_buf_puts(b, "\\n");
        else tl_buf_putc(b, *s);
    }
}

static char *render_labels(va_list ap)
{
    tl_buf b = {0};
    const char *k;
    for (int i = 0; i < TL_PROM_MAX_LABELS && (k = va_arg(ap, const char *)); i++) {
        const char *v = va_arg(ap, const char *);
        if (b.len) tl_buf_putc(&b, ',');
        tl_buf_printf(&b, "%s=\"", k);
        escape_value(&b, v ? v : "");
        tl_buf_putc(&b, '"');
    }
    tl_buf_putc(&b, '\0');
    return b.data;
}

static tl_prom_series *lookup(const char *name, const char *help, ptype type, const double *bounds,
                              int n_bounds, va_list ap)
{
    char *labels = render_labels(ap);
    pthread_mutex_lock(&mu);
    struct family *f = families;
    while (f && strcmp(f->name, name) != 0) f = f->next;
    if (!f) {
        f = tl_xcalloc(1, sizeof(*f));
        f->name = name;
        f->help = help;
        f->type = type;
        f->bounds = bounds;
        f->n_bounds = n_bounds;
        f->tail = &f->series;
        *fam_tail = f;
        fam_tail = &f->next;
    }
    tl_prom_series *s = f->series;
    while (s && strcmp(s->labels, labels) != 0) s = s->next;
    if (s) {
        free(labels);
    } else {
        s = tl_xcalloc(1, sizeof(*s));
        s->fam = f;
        s->labels = labels;
        if (type == P_GAUGE) atomic_store(&s->v, dbits(0.0));
        if (type == P_HISTOGRAM)
            s->buckets = tl_xcalloc((size_t)f->n_bounds + 1, sizeof(*s->buckets));
        *f->tail = s;
        f->tail = &s->next;
    }
    atomic_store(&s->hidden, 0);
    pthread_mutex_unlock(&mu);
    return s;
}

tl_prom_series *tl_prom_counter(const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    tl_prom_series *s = lookup(name, help, P_COUNTER, NULL, 0, ap);
    va_end(ap);
    return s;
}

tl_prom_series *tl_prom_gauge(const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    tl_prom_series *s = lookup(name, help, P_GAUGE, NULL, 0, ap);
    va_end(ap);
    return s;
}

tl_prom_series *tl_prom_histogram(const char *name, const char *help, const double *bounds, int n,
                                  ...)
{
    va_list ap;
    va_start(ap, n);
    tl_prom_series *s = lookup(name, help, P_HISTOGRAM, bounds, n, ap);
    va_end(ap);
    return s;
}

void tl_prom_add(tl_prom_series *s, uint64_t n)
{
    atomic_fetch_add_explicit(&s->v, n, memory_order_relaxed);
}

void tl_prom_counter_set(tl_prom_series *s, uint64_t v)
{
    atomic_store_explicit(&s->v, v, memory_order_relaxed);
}

void tl_prom_set(tl_prom_series *s, double v)
{
    atomic_store_explicit(&s->v, dbits(v), memory_order_relaxed);
}

void tl_prom_observe(tl_prom_series *s, double v)
{
    const struct family *f = s->fam;
    int i = 0;
    while (i < f->n_bounds && v > f->bounds[i]) i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {}
}

void tl_prom_hide(tl_prom_series *s) { atomic_store(&s->hidden, 1); }

double tl_prom_gauge_value(const tl_prom_series *s)
{
    return bitsd(atomic_load_explicit(&((tl_prom_series *)s)->v, memory_order_relaxed));
}

/* Finite values as the JSON writer prints them: integers as integers, others in the
 * shortest of %.15g, %.16g and %.17g that reads back exactly ("0.0025", not
 * "0.0025000000000000001"). */
static void put_double(tl_buf *b, double d)
{
    if (isnan(d)) tl_buf_puts(b, "NaN");
    else if (isinf(d)) tl_buf_puts(b, d > 0 ? "+Inf" : "-Inf");
    else tl_json_put_double(b, d);
}

/* name{labels[,extra]} */
static void put_name(tl_buf *b, const char *name, const char *suffix, const char *labels,
                     const char *extra)
{
    tl_buf_puts(b, name);
    tl_buf_puts(b, suffix);
    if (!*labels && !extra) return;
    tl_buf_putc(b, '{');
    tl_buf_puts(b, labels);
    if (extra) {
        if (*labels) tl_buf_putc(b, ',');
        tl_buf_puts(b, extra);
    }
    tl_buf_putc(b, '}');
}

static void render_histogram(tl_buf *b, const struct family *f, tl_prom_series *s)
{
    uint64_t cum = 0;
    char le[64];
    for (int i = 0; i <= f->n_bounds; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < f->n_bounds) {
            tl_buf num = {0};
            put_double(&num, f->bounds[i]);
            snprintf(le, sizeof(le), "le=\"%.*s\"", (int)num.len, num.data);
            tl_buf_free(&num);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        put_name(b, f->name, "_bucket", s->labels, le);
        tl_buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    put_name(b, f->name, "_sum", s->labels, NULL);
    tl_buf_putc(b, ' ');
    put_double(b, bitsd(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
    tl_buf_putc(b, '\n');
    put_name(b, f->name, "_count", s->labels, NULL);
    tl_buf_printf(b, " %llu\n", (unsigned long long)cum);
}

/* The process_* metrics of Prometheus' client libraries (Linux: /proc), read at each
 * scrape. A value that cannot be read is left out. */
static void render_process(tl_buf *out)
{
    static const char *const help[][3] = {
        {"process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds."},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."},
        {"process_start_time_seconds", "gauge",
         "Start time of the process since the epoch, in seconds."},
        {"process_open_fds", "gauge", "Number of open file descriptors."},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors."},
    };
    double v[6];
    int have[6] = {0};
    double tck = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    unsigned long utime, stime, vsize;
    unsigned long long start;
    long rss;
    if (p && tck > 0 &&
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
               "%*d %llu %lu %ld",
               &utime, &stime, &start, &vsize, &rss) == 5) {
        v[0] = (double)(utime + stime) / tck;
        v[1] = (double)rss * page;
        v[2] = (double)vsize;
        have[0] = have[1] = have[2] = 1;
        FILE *st = fopen("/proc/stat", "r");
        char line[256];
        while (st && fgets(line, sizeof(line), st)) {
            unsigned long long btime;
            if (sscanf(line, "btime %llu", &btime) == 1) {
                v[3] = (double)btime + (double)start / tck;
                have[3] = 1;
                break;
            }
        }
        if (st) fclose(st);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int k = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;) k += e->d_name[0] != '.';
        closedir(d);
        v[4] = k - 1;   /* without the one reading the directory */
        have[4] = 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        v[5] = (double)rl.rlim_cur;
        have[5] = 1;
    }
    for (int i = 0; i < 6; i++) {
        if (!have[i]) continue;
        tl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", help[i][0], help[i][2], help[i][0],
                      help[i][1], help[i][0]);
        put_double(out, v[i]);
        tl_buf_putc(out, '\n');
    }
}

void tl_prom_render(tl_buf *out)
{
    static const char *const tname[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&mu);
    for (const struct family *f = families; f; f = f->next) {
        int any = 0;
        for (const tl_prom_series *s = f->series; s && !any; s = s->next)
            any = !atomic_load(&s->hidden);
        if (!any) continue;
        tl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                      tname[f->type]);
        for (tl_prom_series *s = f->series; s; s = s->next) {
            if (atomic_load(&s->hidden)) continue;
            if (f->type == P_HISTOGRAM) {
                render_histogram(out, f, s);
                continue;
            }
            put_name(out, f->name, "", s->labels, NULL);
            tl_buf_putc(out, ' ');
            uint64_t v = atomic_load_explicit(&s->v, memory_order_relaxed);
            if (f->type == P_COUNTER) tl_buf_printf(out, "%llu", (unsigned long long)v);
            else put_double(out, bitsd(v));
            tl_buf_putc(out, '\n');
        }
    }
    pthread_mutex_unlock(&mu);
    render_process(out);
}

static _Atomic int64_t beat_ns;
static atomic_int failures;

void tl_health_beat(void) { atomic_store_explicit(&beat_ns, tl_mono_ns(), memory_order_relaxed); }

int64_t tl_health_since_beat_ms(void)
{
    int64_t b = atomic_load_explicit(&beat_ns, memory_order_relaxed);
    return b ? (tl_mono_ns() - b) / 1000000 : 0;
}

void tl_health_ok(void) { atomic_store(&failures, 0); }
void tl_health_failed(void) { atomic_fetch_add(&failures, 1); }
int tl_health_failures(void) { return atomic_load(&failures); }
