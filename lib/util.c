/*
 * util.c -- checked allocation, clocks, hashing, growable buffers.
 *
 * Allocation failure aborts: tally's state is recoverable from Kafka (committed
 * offsets and, with exactly-once, the changelog), so dying loudly is safer than
 * limping on with half-applied batches.
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "tally: out of memory allocating %zu bytes\n", n);
    abort();
}

void *tl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *tl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *tl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *tl_xstrdup(const char *s) { return s ? tl_xmemdup(s, strlen(s) + 1) : NULL; }

/* Linux: /proc/self/statm's second field, in pages. */
size_t tl_resident_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long long pages;
    long page = sysconf(_SC_PAGESIZE);
    if (sscanf(buf, "%*s %llu", &pages) != 1 || page <= 0) return 0;
    return (size_t)pages * (size_t)page;
}

void tl_free_all(void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++) free(p[i]);
}

void *tl_xmemdup(const void *s, size_t n)
{
    void *p = tl_xmalloc(n ? n : 1);
    if (n) memcpy(p, s, n);
    return p;
}

char *tl_xstrndup(const char *s, size_t n)
{
    char *p = tl_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int64_t tl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tl_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void tl_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

uint64_t tl_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL;   /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void tl_buf_reserve(tl_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = tl_xrealloc(b->data, cap);
    b->cap = cap;
}

void tl_buf_append(tl_buf *b, const void *p, size_t n)
{
    tl_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tl_buf_puts(tl_buf *b, const char *s) { tl_buf_append(b, s, strlen(s)); }

void tl_buf_putc(tl_buf *b, char c)
{
    tl_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void tl_buf_vprintf(tl_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    tl_buf_reserve(b, 64);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        tl_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void tl_buf_printf(tl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tl_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void tl_buf_free(tl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tl_buf_read_file(tl_buf *b, const char *path, size_t max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[16384];
    size_t n, start = b->len;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len - start + n > max) {
            if (err) snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
            rc = -2;
            break;
        }
        tl_buf_append(b, chunk, n);
    }
    if (!rc && ferror(f)) {
        if (err) snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -2;
    }
    fclose(f);
    return rc;
}

/* %.2g of a in [1e-290, 1e-3), as printf writes it ("0.00042", "4.2e-05", "1e-07"), without
 * printf: decay parts of a few millionths are in most interest deltas' explanations. A
 * value whose third significant digit is a 5 followed by nothing much (where printf's
 * rounding of the exact binary value decides) goes to printf. */
static int fmt_small(char *out, double a)
{
    int e = (int)floor(log10(a));
    double r = a * pow(10.0, 1 - e); /* two digits before the point: [10, 100) */
    if (r < 10) r = a * pow(10.0, 1 - --e);
    else if (r >= 100) r = a * pow(10.0, 1 - ++e);
    double fl = floor(r);
    if (!(r >= 10 && r < 100) || fabs(r - fl - 0.5) < 1e-6) return snprintf(out, 24, "%.2g", a);
    int d = (int)fl + (r - fl > 0.5);
    if (d == 100) {
        d = 10;
        e++;
    }
    char *p = out;
    if (e >= -4) { /* printf's %f form: 0.000ddd */
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--) *p++ = '0';
        *p++ = (char)('0' + d / 10);
        if (d % 10) *p++ = (char)('0' + d % 10);
    } else { /* %e: d.de-XX, at least two exponent digits */
        *p++ = (char)('0' + d / 10);
        if (d % 10) {
            *p++ = '.';
            *p++ = (char)('0' + d % 10);
        }
        *p++ = 'e';
        *p++ = '-';
        int x = -e;
        if (x >= 100) *p++ = (char)('0' + x / 100);
        *p++ = (char)('0' + x / 10 % 10);
        *p++ = (char)('0' + x % 10);
    }
    *p = '\0';
    return (int)(p - out);
}

int tl_fmt_num(char *out, double x, int plus)
{
    char *p = out;
    if (x < 0) *p++ = '-';
    else if (plus) *p++ = '+';
    double a = x < 0 ? -x : x;
    if (a < 1e-3 && a >= 1e-290) return (int)(p - out) + fmt_small(p, a);
    if (!(a >= 1e-3 && a < 1e9)) {   /* zero, denormal, huge, NaN: rare, let printf do it */
        return (int)(p - out) + snprintf(p, 24, "%.2g", a);
    }
    static const double pow10[] = {1e-3, 1e-2, 1e-1, 1, 10, 100};
    int decimals = 0;   /* two significant digits below 10, none above */
    for (int e = 0; e < 6; e++) {
        if (a < pow10[e] * 10) {
            decimals = 4 - e > 0 ? 4 - e : 0;   /* 1e-3 -> 4 decimals ... 1..10 -> 1 */
            break;
        }
    }
    static const double scale[] = {1, 10, 100, 1000, 10000};
    unsigned long long v = (unsigned long long)(a * scale[decimals] + 0.5);
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n <= decimals);
    for (int i = n - 1; i >= 0; i--) {
        *p++ = digits[i];
        if (i == decimals && decimals) *p++ = '.';
    }
    *p = '\0';
    return (int)(p - out);
}

int tl_same_2dp(double x, double y)
{
    if (!(fabs(x - y) < 0.01)) return 0;   /* NaN too */
    double qx = x * 100, qy = y * 100;
    /* x*100 is within 2^-52 of 100x relatively: away from the halves and below 1e6, its
     * nearest integer is the one printf rounds 100x to. */
    double hx = qx - floor(qx) - 0.5, hy = qy - floor(qy) - 0.5;
    if (!signbit(x) && !signbit(y) && x < 1e6 && y < 1e6 && fabs(hx) > 1e-6 && fabs(hy) > 1e-6)
        return floor(qx + 0.5) == floor(qy + 0.5);
    char a[48], b[48];
    snprintf(a, sizeof(a), "%.2f", x);
    snprintf(b, sizeof(b), "%.2f", y);
    return !strcmp(a, b);
}

void tl_fmt_duration(char *out, size_t outlen, int64_t ms)
{
    if (ms < 0) ms = -ms;
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {
        {86400000, "d"},
        {3600000, "h"},
        {60000, "min"},
        {1000, "s"},
    };
    int64_t n = ms;
    const char *unit = "ms";
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms >= units[i].ms) {
            n = (ms + units[i].ms / 2) / units[i].ms;
            unit = units[i].unit;
            break;
        }
    }
    /* by hand: this runs for nearly every interest delta's explanation */
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && k < (int)sizeof(digits));
    size_t pos = 0;
    while (k > 0 && pos + 1 < outlen) out[pos++] = digits[--k];
    if (pos + 1 < outlen) out[pos++] = ' ';
    for (const char *u = unit; *u && pos + 1 < outlen; u++) out[pos++] = *u;
    out[pos] = '\0';
}

size_t tl_utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    return n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tl_rmtree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }
