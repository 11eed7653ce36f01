/*
 * util.h -- small helpers shared by every stage: checked allocation, time, hashing,
 * string buffers.
 */
#ifndef TL_UTIL_H
#define TL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

void *tl_xmalloc(size_t n);             /* aborts on out-of-memory */
void *tl_xcalloc(size_t n, size_t size);
void *tl_xrealloc(void *p, size_t n);
char *tl_xstrdup(const char *s);        /* NULL in, NULL out */
void *tl_xmemdup(const void *s, size_t n);
char *tl_xstrndup(const char *s, size_t n);   /* n bytes of s, then a NUL */
/* Frees each of its arguments, in order (any may be NULL): a destructor's owned arrays
 * and the record itself in one statement, TL_FREE_ALL(r->a, r->b, r). */
#define TL_FREE_ALL(...)                                                                           \
    tl_free_all((void *[]){__VA_ARGS__}, sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))
void tl_free_all(void *const *p, size_t n);
/* Room for one more element in arr, a growable array of n elements with room for cap (an
 * lvalue): while full, arr is reallocated with twice the room (first, the first time). */
#define TL_GROW(arr, n, cap, first)                                                                \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : (first);                                                   \
            (arr) = tl_xrealloc((arr), (size_t)(cap) * sizeof(*(arr)));                            \
        }                                                                                          \
    } while (0)

int64_t tl_now_ms(void);                /* wall clock, ms since the epoch */
int64_t tl_mono_ns(void);               /* monotonic clock, ns */
size_t tl_resident_bytes(void);         /* the process's resident memory; 0 if unknown */
void tl_sleep_ms(int64_t ms);           /* the whole time, also when a signal interrupts */

uint64_t tl_hash64(const void *data, size_t len);   /* FNV-1a 64 */

/* Little-endian fixed-width fields, for the binary checkpoints (model, metrics). The
 * put functions return the position after what they wrote. */
#include <string.h>
/* The largest multiple of d (> 0) at or before t, also for negative t (floor, not
 * truncation toward 0). */
static inline int64_t tl_floor_to(int64_t t, int64_t d) { return t - ((t % d) + d) % d; }

/* Times in ms since the epoch. An event's lies within +-TL_TIME_MAX (2^53, about 285,000
 * years either side of 1970; ingest.ts.min and ingest.ts.max cannot reach past it), and a
 * configured span is at most 10^15 ms, so a stored time (an event's time plus a span, as
 * a timer is) lies within +-TL_STORED_TIME_MAX, or is INT64_MIN, "none". Within these,
 * the difference of two times, or a time plus a span, cannot overflow an int64. */
#define TL_TIME_MAX (INT64_C(1) << 53)
#define TL_STORED_TIME_MAX (INT64_C(1) << 54)
static inline int tl_stored_time_ok(int64_t t)
{
    return t == INT64_MIN || (t >= -TL_STORED_TIME_MAX && t <= TL_STORED_TIME_MAX);
}
/* the same, not "none": a time that must be there */
static inline int tl_stored_time_set(int64_t t) { return t != INT64_MIN && tl_stored_time_ok(t); }

static inline char *tl_le_put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) *p++ = (char)(v >> (8 * i));
    return p;
}
static inline char *tl_le_put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) *p++ = (char)(v >> (8 * i));
    return p;
}
static inline char *tl_le_put_f64(char *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    return tl_le_put_u64(p, v);
}
static inline uint32_t tl_le_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t tl_le_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static inline double tl_le_get_f64(const unsigned char *p)
{
    uint64_t v = tl_le_get_u64(p);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* A growable byte buffer. */
typedef struct tl_buf {
    char *data;
    size_t len, cap;
} tl_buf;

void tl_buf_reserve(tl_buf *b, size_t extra);
void tl_buf_append(tl_buf *b, const void *p, size_t n);
void tl_buf_puts(tl_buf *b, const char *s);
void tl_buf_putc(tl_buf *b, char c);
void tl_buf_printf(tl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_buf_vprintf(tl_buf *b, const char *fmt, va_list ap);
void tl_buf_free(tl_buf *b);
/* Appends the whole file at path to b (its contents stay NUL-terminated). 0; -1 when it
 * cannot be opened, -2 when it cannot be read or holds more than max bytes (b then holds
 * what was read before); err gets one sentence naming the file (err may be NULL). */
int tl_buf_read_file(tl_buf *b, const char *path, size_t max, char *err, size_t errlen);

/* Removes dir and everything below it (temporary state), as far as it can. */
void tl_rmtree(const char *dir);
static inline void tl_buf_clear(tl_buf *b) { b->len = 0; }

/* Formats x with two significant digits for reading ("4.3", "0.41", "120", "-0.0052"),
 * with a leading '+' for non-negative x when plus is set. Returns the length written
 * (out needs 32 bytes). Much cheaper than snprintf's %g on the per-event path. */
int tl_fmt_num(char *out, double x, int plus);

/* 1 when x and y are less than 0.01 apart and read the same with printf's "%.2f", decided
 * without printing them except near a rounding boundary (or for negative values, -0.0
 * too, or large ones), where printf decides. */
int tl_same_2dp(double x, double y);

/* Formats a duration in ms as "40 s", "12 min", "2 h", "3 d" (one unit, rounded). */
void tl_fmt_duration(char *out, size_t outlen, int64_t ms);

/* The length of the longest prefix of s of at most max bytes that does not end inside a
 * UTF-8 sequence (strlen(s) when that is at most max). */
size_t tl_utf8_cut(const char *s, size_t max);

#endif
