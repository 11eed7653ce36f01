/*
 * file_source.c -- events from a canonical CSV, Taobao CSV or JSON-lines file.
 *
 * What: a tl_source over a file or stdin; see file_source.h for the formats, the row
 * numbering and the bad-row policy.
 *
 * How: the file descriptor is read with read(2) into one buffer (1 MiB to start; it
 * grows only for a longer line, up to 64 MiB). poll() cuts complete lines out of the
 * buffer with memchr, copies each line once into the batch's arena (plus room for a
 * generated id) and splits that copy in place: commas become NULs, so every string
 * field of the event points into the copy. Numbers are parsed by hand (strtod only for
 * the value and propensity doubles). Every event then goes through tl_event_validate
 * (codec.h) with ts within +-2^53 ms, so a file obeys the same rules as a Kafka topic. A
 * partial line at the end of the buffer is moved to the front before the next read.
 * When the input is not a regular file (a pipe), poll() uses poll(2): it returns what
 * it has instead of blocking once a batch holds events, and waits at most timeout_ms
 * for the first one.
 *
 * Invariants:
 *   - buf[start, end) is unread input; no complete line lies before start.
 *   - line_no counts physical lines consumed (for messages); row_no counts data rows
 *     (for ids and offsets); a bad row advances both.
 *   - once failed is set (strict bad row, bad header, I/O error) every later poll
 *     returns TL_SRC_ERROR with an empty batch; the events before the failure were
 *     delivered by the poll that hit it.
 *   - nothing of an event points into buf: the next read overwrites it.
 *
 * Alternatives rejected:
 *   - mmap: fast for regular files but not for stdin or pipes, which need the read path
 *     anyway; with 1 MiB reads the copy costs little next to parsing.
 *   - fread/getline: stdio buffering adds a copy, and fread on a pipe blocks until the
 *     whole chunk is full, which stalls `tally gen | tally replay -`.
 *   - one arena string per field: several allocations per row instead of one copy.
 *   - sscanf/strtoll for integers: slower, and they accept spaces and partial numbers
 *     that should be errors.
 */
#include "file_source.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#include "codec.h"

#define TL_FILE_CHUNK (1u << 20)          /* bytes per read(2) */
#define TL_FILE_MAX_LINE (64u << 20)      /* longest accepted line */
#define TL_FILE_MAX_WARN 100              /* bad rows logged before going quiet */
#define TL_FILE_MAX_COLS 11               /* canonical with propensity and campaign */
#define TL_FILE_ID_ROOM 21                /* a uint64 in decimal, with its NUL */

static const char canonical_header[] =
    "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value";

typedef struct tl_file_src {
    tl_source src;            /* first: the tl_source handed out */
    tl_file_format fmt;
    int strict;
    size_t max_string;   /* tl_event_validate's string bound */
    int quiet;           /* bad rows are counted, not logged */
    int fd;
    int own_fd;               /* 0 for stdin */
    int is_regular;
    char *name;               /* for messages: the path, or "stdin" */
    char *buf;
    size_t cap, start, end;
    int eof;                  /* read(2) returned 0 */
    uint64_t bytes_read;
    int64_t size;             /* of a regular file, else -1 */
    int header_done;          /* canonical: header checked (other formats: 1) */
    int n_cols;               /* canonical: 9, and one more for each optional column */
    int col_propensity;       /* canonical: the optional columns' indexes, or -1 */
    int col_campaign;
    int failed;
    uint64_t line_no, row_no, bad;
    char err[512];
    int has_err;
} tl_file_src;

/* ---- small parsers ---------------------------------------------------------------- */

/* A decimal integer, optional sign, nothing else. 0, or -1 if not one or out of range. */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, lim;
    if (n == 0) return -1;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        if (++i == n) return -1;
    }
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) return -1;
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A finite double; s is NUL-terminated at s[n]. */
static int parse_double(const char *s, size_t n, double *out)
{
    char *end;
    if (n == 0 || isspace((unsigned char)s[0])) return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s + n || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Writes v in decimal at out (room for TL_FILE_ID_ROOM bytes), NUL-terminated. */
static char *u64_to_str(uint64_t v, char *out)
{
    char tmp[TL_FILE_ID_ROOM];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return out;
}

/* Splits line (NUL-terminated at line[len]) in place at commas. Fields are
 * NUL-terminated; f[i]/fl[i] are filled for i < maxf. Returns the number of fields
 * (possibly > maxf), or -1 for a malformed quoted field. */
static int split_csv(char *line, size_t len, char **f, size_t *fl, int maxf)
{
    char *p = line, *end = line + len;
    int n = 0;
    if (!memchr(line, '"', len)) {
        for (;;) {
            char *c = memchr(p, ',', (size_t)(end - p));
            char *fe = c ? c : end;
            if (n < maxf) {
                f[n] = p;
                fl[n] = (size_t)(fe - p);
            }
            n++;
            *fe = '\0';
            if (!c) return n;
            p = c + 1;
        }
    }
    for (;;) {
        char *w = p, *fs = p;
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end) return -1;             /* unterminated quote */
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            if (p < end && *p != ',') return -1; /* text after the closing quote */
        } else {
            while (p < end && *p != ',') {
                if (*p == '"') return -1; /* quote inside an unquoted field */
                *w++ = *p++;
            }
        }
        if (n < maxf) {
            f[n] = fs;
            fl[n] = (size_t)(w - fs);
        }
        n++;
        int more = p < end; /* *p == ',' */
        *w = '\0';
        if (!more) return n;
        p++;
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

/* pv, cart, fav, buy (any case) -> the event type; -1 otherwise. */
static int taobao_behavior(const char *s, size_t n)
{
    switch (n) {
    case 2: return strncasecmp(s, "pv", 2) == 0 ? TL_BROWSE : -1;
    case 3:
        if (strncasecmp(s, "fav", 3) == 0) return TL_FAVORITE;
        if (strncasecmp(s, "buy", 3) == 0) return TL_PURCHASE;
        return -1;
    case 4: return strncasecmp(s, "cart", 4) == 0 ? TL_ADD_TO_CART : -1;
    default: return -1;
    }
}

/* ---- errors ------------------------------------------------------------------------ */

/* Formats "name:line: msg" into s->err and logs it (the first TL_FILE_MAX_WARN). */
static void row_error(tl_file_src *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_error(tl_file_src *s, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(s->err, sizeof s->err, "%s:%llu: ", s->name, (unsigned long long)s->line_no);
    if (n < 0 || (size_t)n >= sizeof s->err) n = 0;
    va_start(ap, fmt);
    vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
    va_end(ap);
    s->has_err = 1;
    s->bad++;
    if (s->quiet) return;
    if (s->bad <= TL_FILE_MAX_WARN) TL_LOG_WARN("ingest", "bad row: %s", s->err);
    if (s->bad == TL_FILE_MAX_WARN && !s->strict)
        TL_LOG_WARN("ingest", "file=%s further bad rows are counted but not logged", s->name);
}

/* Echoes at most 60 bytes of a field inside a message. */
#define ECHO(p, n) (int)((n) > 60 ? 60 : (n)), (p)

/* ---- row parsers: 0 = event filled, -1 = bad row (row_error called) ---------------- */

static int parse_canonical(tl_file_src *s, char *line, size_t len, char *idbuf, tl_event *ev)
{
    char *f[TL_FILE_MAX_COLS];
    size_t fl[TL_FILE_MAX_COLS];
    int64_t v;
    int n = split_csv(line, len, f, fl, TL_FILE_MAX_COLS);
    if (n < 0) {
        row_error(s, "malformed quoted field");
        return -1;
    }
    if (n != s->n_cols) {
        row_error(s, "expected %d columns, found %d", s->n_cols, n);
        return -1;
    }
    ev->event_id = fl[0] ? f[0] : u64_to_str(s->row_no, idbuf);
    if (!fl[1]) {
        row_error(s, "empty user_id");
        return -1;
    }
    ev->user_id = f[1];
    if (!fl[2]) {
        row_error(s, "empty item_id");
        return -1;
    }
    ev->item_id = f[2];
    ev->category_id = fl[3] ? f[3] : NULL;
    int t = tl_event_type_parse(f[4], fl[4]);
    if (t < 0) {
        row_error(s, "unknown type '%.*s'", ECHO(f[4], fl[4]));
        return -1;
    }
    ev->type = (tl_event_type)t;
    if (parse_i64(f[5], fl[5], &ev->ts) < 0) {
        row_error(s, "ts is not an integer: '%.*s'", ECHO(f[5], fl[5]));
        return -1;
    }
    ev->channel = fl[6] ? f[6] : NULL;
    if (fl[7]) {
        if (parse_i64(f[7], fl[7], &v) < 0 || v < 0 || v > INT32_MAX) {
            row_error(s, "dwell_ms is not an integer in 0..2147483647: '%.*s'", ECHO(f[7], fl[7]));
            return -1;
        }
        ev->dwell_ms = (int32_t)v;
        ev->has_dwell = 1;
    }
    if (fl[8]) {
        if (parse_double(f[8], fl[8], &ev->value) < 0) {
            row_error(s, "value is not a finite number: '%.*s'", ECHO(f[8], fl[8]));
            return -1;
        }
        ev->has_value = 1;
    }
    int k = s->col_propensity;
    if (k >= 0 && fl[k]) {
        if (parse_double(f[k], fl[k], &ev->propensity) < 0) {
            row_error(s, "propensity is not a finite number: '%.*s'", ECHO(f[k], fl[k]));
            return -1;
        }
        ev->has_propensity = 1;
    }
    k = s->col_campaign;
    ev->campaign = k >= 0 && fl[k] ? f[k] : NULL;
    return 0;
}

static int parse_taobao(tl_file_src *s, char *line, size_t len, char *idbuf, tl_event *ev)
{
    char *f[5];
    size_t fl[5];
    int64_t sec;
    int n = split_csv(line, len, f, fl, 5);
    if (n < 0) {
        row_error(s, "malformed quoted field");
        return -1;
    }
    if (n != 5) {
        row_error(s, "expected 5 columns, found %d", n);
        return -1;
    }
    if (!fl[0]) {
        row_error(s, "empty user_id");
        return -1;
    }
    if (!fl[1]) {
        row_error(s, "empty item_id");
        return -1;
    }
    int t = taobao_behavior(f[3], fl[3]);
    if (t < 0) {
        row_error(s, "unknown behavior '%.*s'", ECHO(f[3], fl[3]));
        return -1;
    }
    if (parse_i64(f[4], fl[4], &sec) < 0 || sec > INT64_MAX / 1000 || sec < INT64_MIN / 1000) {
        row_error(s, "timestamp is not an integer number of seconds: '%.*s'", ECHO(f[4], fl[4]));
        return -1;
    }
    ev->event_id = u64_to_str(s->row_no, idbuf);
    ev->user_id = f[0];
    ev->item_id = f[1];
    ev->category_id = fl[2] ? f[2] : NULL;
    ev->type = (tl_event_type)t;
    ev->ts = sec * 1000;
    return 0;
}

static int parse_jsonl(tl_file_src *s, char *line, size_t len, char *idbuf, tl_event *ev,
                       tl_arena *a)
{
    char msg[256];
    msg[0] = '\0';
    if (tl_event_from_json(line, len, ev, a, msg, sizeof msg) < 0) {
        row_error(s, "%s", msg[0] ? msg : "invalid JSON event");
        return -1;
    }
    if (!ev->event_id || !ev->event_id[0]) ev->event_id = u64_to_str(s->row_no, idbuf);
    if (!ev->user_id || !ev->user_id[0]) {
        row_error(s, "empty user_id");
        return -1;
    }
    if (!ev->item_id || !ev->item_id[0]) {
        row_error(s, "empty item_id");
        return -1;
    }
    return 0;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Makes room and reads once. 1 = got bytes or EOF, 0 = nothing ready (wait_ms passed),
 * -1 = error (s->failed set). wait_ms < 0 blocks; only used for non-regular input. */
static int fill(tl_file_src *s, int wait_ms)
{
    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    if (s->end == s->cap) {
        if (s->cap >= TL_FILE_MAX_LINE) {
            s->line_no++;
            snprintf(s->err, sizeof s->err, "%s:%llu: line longer than %u MiB", s->name,
                     (unsigned long long)s->line_no, TL_FILE_MAX_LINE >> 20);
            goto fail;
        }
        s->cap *= 2;
        s->buf = tl_xrealloc(s->buf, s->cap);
    }
    if (!s->is_regular && wait_ms >= 0) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int r;
        do r = poll(&pfd, 1, wait_ms);
        while (r < 0 && errno == EINTR);
        if (r == 0) return 0;
    }
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->end, s->cap - s->end);
        if (n > 0) {
            s->end += (size_t)n;
            s->bytes_read += (uint64_t)n;
            return 1;
        }
        if (n == 0) {
            s->eof = 1;
            return 1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        snprintf(s->err, sizeof s->err, "%s: read failed: %s", s->name, strerror(errno));
        goto fail;
    }
fail:
    s->has_err = 1;
    s->failed = 1;
    return -1;
}

/* The next line without its line end. 1 = line, 0 = need more input (call fill),
 * 2 = end of input. */
static int next_line(tl_file_src *s, char **line, size_t *len)
{
    char *p = s->buf + s->start;
    size_t avail = s->end - s->start;
    char *nl = memchr(p, '\n', avail);
    size_t n;
    if (nl) {
        n = (size_t)(nl - p);
        s->start += n + 1;
    } else if (s->eof) {
        if (avail == 0) return 2;
        n = avail;
        s->start = s->end;
    } else {
        return 0;
    }
    if (n > 0 && p[n - 1] == '\r') n--;
    s->line_no++;
    *line = p;
    *len = n;
    return 1;
}

/* Checks the canonical header line. 0 or -1 (s->failed set). */
static int check_header(tl_file_src *s, const char *line, size_t len)
{
    size_t hl = sizeof canonical_header - 1;
    if (s->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* UTF-8 byte order mark */
        len -= 3;
    }
    if (len >= hl && strncasecmp(line, canonical_header, hl) == 0) {
        const char *p = line + hl, *end = line + len;
        s->n_cols = 9;
        s->col_propensity = s->col_campaign = -1;
        if (end - p >= 11 && strncasecmp(p, ",propensity", 11) == 0) {
            s->col_propensity = s->n_cols++;
            p += 11;
        }
        if (end - p >= 9 && strncasecmp(p, ",campaign", 9) == 0) {
            s->col_campaign = s->n_cols++;
            p += 9;
        }
        if (p == end) {
            s->header_done = 1;
            return 0;
        }
    }
    snprintf(s->err, sizeof s->err,
             "%s:%llu: expected the header '%s[,propensity][,campaign]', found '%.*s'", s->name,
             (unsigned long long)s->line_no, canonical_header, (int)(len > 120 ? 120 : len), line);
    s->has_err = 1;
    s->failed = 1;
    return -1;
}

/* Reads up to the canonical header. 1 = checked, 0 = not yet (no input ready),
 * 2 = empty input, -1 = error. */
static int read_header(tl_file_src *s, int wait_ms)
{
    for (;;) {
        char *line;
        size_t len;
        int r = next_line(s, &line, &len);
        if (r == 2) return 2;
        if (r == 0) {
            int f = fill(s, wait_ms);
            if (f <= 0) return f;
            continue;
        }
        if (is_blank(line, len)) continue;
        return check_header(s, line, len) < 0 ? -1 : 1;
    }
}

static int file_poll(void *ctx, tl_batch *b, int max, int timeout_ms)
{
    tl_file_src *s = ctx;
    tl_batch_reset(b);
    if (s->failed) return TL_SRC_ERROR;
    if (max < 1) max = 1;
    if (!s->header_done) {
        int r = read_header(s, timeout_ms);
        if (r < 0) {
            TL_LOG_ERROR("ingest", "%s", s->err);
            return TL_SRC_ERROR;
        }
        if (r == 2) return TL_SRC_EOF;
        if (r == 0) return TL_SRC_OK;
    }
    while (b->n < max) {
        char *line;
        size_t len;
        int r = next_line(s, &line, &len);
        if (r == 2) return TL_SRC_EOF;
        if (r == 0) {
            /* Pipes: hand over what we have rather than wait; wait at most timeout_ms
             * for the first event. Regular files: read now. */
            int f = fill(s, b->n > 0 ? 0 : timeout_ms);
            if (f < 0) {
                TL_LOG_ERROR("ingest", "%s", s->err);
                return b->n > 0 ? TL_SRC_OK : TL_SRC_ERROR;
            }
            if (f == 0) return TL_SRC_OK;
            continue;
        }
        if (len == 0 || ((line[0] == ' ' || line[0] == '\t') && is_blank(line, len))) continue;
        s->row_no++;
        /* One copy of the line, then room for a generated id. */
        const char *nul = memchr(line, '\0', len);
        if (nul) {
            /* the fields are cut at NULs below: such a line would lose text silently */
            row_error(s, "line holds a NUL byte at byte %zu", (size_t)(nul - line));
            if (s->strict) {
                s->failed = 1;
                return b->n > 0 ? TL_SRC_OK : TL_SRC_ERROR;
            }
            continue;
        }
        char *copy = tl_arena_alloc(&b->arena, len + 1 + TL_FILE_ID_ROOM);
        memcpy(copy, line, len);
        copy[len] = '\0';
        char *idbuf = copy + len + 1;
        tl_event *ev = tl_batch_push(b);
        int rc;
        switch (s->fmt) {
        case TL_FMT_CANONICAL: rc = parse_canonical(s, copy, len, idbuf, ev); break;
        case TL_FMT_TAOBAO: rc = parse_taobao(s, copy, len, idbuf, ev); break;
        default: rc = parse_jsonl(s, copy, len, idbuf, ev, &b->arena); break;
        }
        if (rc == 0) {
            /* The checks every source applies (codec.h), and times within +-2^53 ms
             * (util.h), the widest ingest.ts.min and ingest.ts.max allow. */
            tl_dlq_reason why;
            char msg[256];
            msg[0] = '\0';
            const tl_event_limits lim = {-TL_TIME_MAX, TL_TIME_MAX, s->max_string};
            if (tl_event_validate(ev, &lim, &why, msg, sizeof msg) < 0) {
                row_error(s, "%s", msg[0] ? msg : "invalid event");
                rc = -1;
            }
        }
        if (rc < 0) {
            b->n--; /* drop the slot */
            if (s->strict) {
                s->failed = 1;
                return b->n > 0 ? TL_SRC_OK : TL_SRC_ERROR;
            }
            continue;
        }
        ev->partition = 0;
        ev->offset = (int64_t)s->row_no;
    }
    return TL_SRC_OK;
}

static void file_destroy(void *ctx)
{
    tl_file_src *s = ctx;
    if (!s) return;
    if (s->own_fd && s->fd >= 0) close(s->fd);
    free(s->buf);
    free(s->name);
    free(s);
}

/* ---- public ------------------------------------------------------------------------ */

int tl_file_format_parse(const char *s)
{
    if (!s) return -1;
    if (!strcasecmp(s, "canonical") || !strcasecmp(s, "csv")) return TL_FMT_CANONICAL;
    if (!strcasecmp(s, "taobao")) return TL_FMT_TAOBAO;
    if (!strcasecmp(s, "jsonl") || !strcasecmp(s, "json")) return TL_FMT_JSONL;
    return -1;
}

const char *tl_file_format_name(tl_file_format fmt)
{
    switch (fmt) {
    case TL_FMT_CANONICAL: return "canonical";
    case TL_FMT_TAOBAO: return "taobao";
    case TL_FMT_JSONL: return "jsonl";
    }
    return NULL;
}

void tl_file_source_set_max_string(tl_source *src, size_t max)
{
    ((tl_file_src *)src->ctx)->max_string = max;
}

int tl_file_source_span(const char *path, tl_file_format fmt, size_t max_string, int64_t *min_ts,
                        int64_t *max_ts, uint64_t *events)
{
    char err[256];
    tl_source *src = tl_file_source_new(path, fmt, 0, err, sizeof(err));
    if (!src) return -1;
    tl_file_src *s = src->ctx;
    s->max_string = max_string;
    s->quiet = 1;
    tl_batch b;
    tl_batch_init(&b);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    uint64_t n = 0;
    int rc;
    do {
        rc = src->poll(src->ctx, &b, 4096, 0);
        for (int i = 0; i < b.n; i++) {
            if (b.events[i].ts < lo) lo = b.events[i].ts;
            if (b.events[i].ts > hi) hi = b.events[i].ts;
        }
        n += (uint64_t)b.n;
    } while (rc == TL_SRC_OK);
    tl_batch_destroy(&b);
    tl_file_source_destroy(src);
    if (rc == TL_SRC_ERROR) return -1;
    *min_ts = lo;
    *max_ts = hi;
    *events = n;
    return 0;
}

tl_source *tl_file_source_new(const char *path, tl_file_format fmt, int strict, char *err,
                              size_t errlen)
{
    tl_file_src *s = NULL;
    struct stat st;

    if (!path || !*path) {
        snprintf(err, errlen, "no input file given");
        goto fail;
    }
    if (!tl_file_format_name(fmt)) {
        snprintf(err, errlen, "unknown input format %d", (int)fmt);
        goto fail;
    }
    s = tl_xcalloc(1, sizeof *s);
    s->fd = -1;
    s->fmt = fmt;
    s->strict = strict != 0;
    s->max_string = TL_EVENT_MAX_STRING_DEFAULT;
    s->header_done = fmt != TL_FMT_CANONICAL;
    if (strcmp(path, "-") == 0) {
        s->fd = STDIN_FILENO;
        s->name = tl_xstrdup("stdin");
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
            goto fail;
        }
        s->own_fd = 1;
        s->name = tl_xstrdup(path);
    }
    if (fstat(s->fd, &st) < 0) {
        snprintf(err, errlen, "cannot stat '%s': %s", s->name, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "'%s' is a directory", s->name);
        goto fail;
    }
    s->is_regular = S_ISREG(st.st_mode);
    s->size = s->is_regular ? (int64_t)st.st_size : -1;
#ifdef POSIX_FADV_SEQUENTIAL
    if (s->is_regular) (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    s->cap = TL_FILE_CHUNK;
    s->buf = tl_xmalloc(s->cap);
    if (!s->header_done && s->is_regular && read_header(s, -1) < 0) {
        snprintf(err, errlen, "%s", s->err);
        goto fail;
    }
    /* no commit: nothing to acknowledge */
    s->src = (tl_source){.name = "file", .ctx = s, .poll = file_poll, .destroy = file_destroy};
    return &s->src;

fail:
    file_destroy(s);
    return NULL;
}

void tl_file_source_destroy(tl_source *src) { tl_source_destroy(src); }

const char *tl_file_source_error(tl_source *src)
{
    tl_file_src *s = src ? src->ctx : NULL;
    return s && s->has_err ? s->err : NULL;
}

void tl_file_source_stats(tl_source *src, uint64_t *rows, uint64_t *bad)
{
    tl_file_src *s = src ? src->ctx : NULL;
    if (rows) *rows = s ? s->row_no : 0;
    if (bad) *bad = s ? s->bad : 0;
}

void tl_file_source_progress(tl_source *src, uint64_t *bytes, int64_t *size)
{
    tl_file_src *s = src ? src->ctx : NULL;
    *bytes = s ? s->bytes_read : 0;
    *size = s ? s->size : -1;
}
