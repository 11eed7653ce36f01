/*
 * bench_util.h -- what the benchmarks share: sorting doubles, and the median of a run's
 * timings (lib/util.h has the clocks: tl_mono_ns, tl_now_ms).
 */
#ifndef TL_BENCH_UTIL_H
#define TL_BENCH_UTIL_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t[0..n) and returns its median (the mean of the middle two when n is even). */
static inline double bench_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(*t), bench_cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

#endif
