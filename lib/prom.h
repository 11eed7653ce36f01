/*
 * prom.h -- process-wide metrics in the Prometheus text format (version 0.0.4).
 *
 * A family (name, help, type) has series told apart by label values. A series is found
 * or created by tl_prom_counter/gauge/histogram (a mutex, a short list walk: call it
 * once and keep the pointer on hot paths, or at a low rate); updating a series is a
 * lock-free atomic operation from any thread. tl_prom_render writes every visible
 * series, families in the order they were first declared.
 *
 * Labels are given as a NULL-terminated list of name, value pairs; values are escaped
 * on output, so any text (a category id from the data) is safe. Series live as long
 * as the process; tl_prom_hide takes one out of the output (a revoked partition's lag)
 * until it is looked up again.
 *
 * Names follow Prometheus conventions: tally_..._total for counters, base units
 * (_seconds, _bytes) for the rest.
 */
#ifndef TL_PROM_H
#define TL_PROM_H

#include <stdint.h>
#include "util.h"

typedef struct tl_prom_series tl_prom_series;

/* name, help: static strings. ...: label name, value pairs, then NULL. */
tl_prom_series *tl_prom_counter(const char *name, const char *help, ...);
tl_prom_series *tl_prom_gauge(const char *name, const char *help, ...);
/* bounds: n ascending upper bounds (+Inf is implied), static storage. */
tl_prom_series *tl_prom_histogram(const char *name, const char *help, const double *bounds, int n,
                                  ...);

void tl_prom_add(tl_prom_series *s, uint64_t n);        /* counter += n */
void tl_prom_counter_set(tl_prom_series *s, uint64_t v); /* mirror a monotonic count */
void tl_prom_set(tl_prom_series *s, double v);          /* gauge */
void tl_prom_observe(tl_prom_series *s, double v);      /* histogram */
void tl_prom_hide(tl_prom_series *s);

double tl_prom_gauge_value(const tl_prom_series *s);

/* Appends the exposition text to out. */
void tl_prom_render(tl_buf *out);

/* Process health, for /healthz: the processing loop beats on every turn; failures
 * count consecutive failed commits (reset by a success). Any thread may read. */
void tl_health_beat(void);
int64_t tl_health_since_beat_ms(void);   /* 0 before the first beat */
void tl_health_ok(void);
void tl_health_failed(void);
int tl_health_failures(void);

/* Latency buckets in seconds, 1 ms .. 60 s. */
extern const double tl_prom_latency_buckets[];
extern const int tl_prom_latency_buckets_n;

#endif
