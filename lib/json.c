/*
 * json.c -- strict JSON parser into an arena, and JSON writer helpers.
 *
 * What: tally reads JSON in three places -- schema registry responses, Avro schema
 * files (for field defaults, which avro-c 1.11 does not keep), and `replay --format
 * jsonl` input -- and writes it on the JSON-lines output path. This file covers both
 * directions with no dependency beyond libc.
 *
 * How (parser): recursive descent over a (pointer, length) span, so the input needs
 * no NUL terminator. Every node and string is allocated from the caller's arena.
 * Strings without escapes are copied with one memcpy after a validation scan; strings
 * with escapes are decoded into a buffer of the escaped length (decoding only
 * shrinks). Array and object elements are gathered in a small on-stack buffer that
 * spills to the arena, then copied once into an exact-size array. Numbers are
 * checked against the JSON grammar first, then converted with strtod (and strtoll
 * for plain integers, so 64-bit ids stay exact).
 *
 * How (writer): tl_json_put_str appends runs of bytes that need no escaping with one
 * memcpy each, and replaces bytes that are not UTF-8 by U+FFFD, one per maximal
 * subpart (as the WHATWG decoder reads them), so what tally writes is JSON whatever
 * bytes its strings hold; tl_json_put_i64 formats digits by hand; tl_json_put_double
 * prints small integral values as integers and otherwise tries %.15g, %.16g, %.17g,
 * keeping the first that strtod() reads back to the same double.
 *
 * Invariants: the parser never reads outside s[0..len); recursion depth is bounded
 * by TL_JSON_MAX_DEPTH; a returned tree is immutable; error messages are one sentence
 * with the byte offset. tl_buf contents stay NUL-terminated after every put.
 *
 * Rejected alternatives: jansson (avro-c links it, but its trees are malloc'd per
 * node and refcounted -- slow to build and easy to leak on error paths; arena
 * allocation makes cleanup free); a streaming/SAX API (the inputs are small objects
 * that callers want random access to); "%.17g" always (round-trips, but prints 0.1 as
 * 0.10000000000000001, which is noisy in output files and diffs).
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parser */

typedef struct jp {
    const char *s;
    size_t len, pos;
    tl_arena *a;
    char *err;
    size_t errlen;
    int failed;
} jp;

static void jp_fail(jp *p, const char *what)
{
    if (p->failed) return;
    p->failed = 1;
    if (p->err && p->errlen) snprintf(p->err, p->errlen, "JSON: %s at offset %zu", what, p->pos);
}

static void jp_fail_char(jp *p)
{
    char what[64];
    if (p->pos >= p->len) {
        jp_fail(p, "unexpected end of input");
        return;
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(what, sizeof(what), "unexpected character '%c'", c);
    else snprintf(what, sizeof(what), "unexpected byte 0x%02x", c);
    jp_fail(p, what);
}

static void jp_ws(jp *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static tl_json *jp_node(jp *p, tl_json_type t)
{
    tl_json *j = tl_arena_alloc(p->a, sizeof(*j));
    memset(j, 0, sizeof(*j));
    j->type = t;
    return j;
}

/* The length of the well-formed UTF-8 sequence at s[0] (n >= 1 bytes available), or 0
 * with *bad set to how many bytes one U+FFFD replaces: the maximal subpart of the
 * ill-formed sequence (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal
 * Subparts", which the WHATWG UTF-8 decoder follows) -- a lead byte and the continuation
 * bytes that could still have completed it, else the one byte. The ranges are those of
 * Table 3-7: the second byte of E0, ED, F0 and F4 is narrowed so that overlong forms,
 * UTF-16 surrogates and code points above U+10FFFF are not well-formed. */
static size_t utf8_scan(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;        /* overlong */
        else if (c == 0xed) hi = 0x9f;   /* UTF-16 surrogate */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;        /* overlong */
        else if (c == 0xf4) hi = 0x8f;   /* above U+10FFFF */
    } else {
        *bad = 1;                        /* a continuation byte, C0, C1 or F5..FF */
        return 0;
    }
    size_t k = 1;
    if (n > 1 && s[1] >= lo && s[1] <= hi) {
        k = 2;
        while (k < need && k < n && (s[k] & 0xc0) == 0x80) k++;
    }
    if (k == need) return need;
    *bad = k;
    return 0;
}

size_t tl_utf8_seq(const unsigned char *s, size_t n)
{
    size_t bad;
    return utf8_scan(s, n, &bad);
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses a string starting at the opening quote; returns the decoded bytes. */
static const char *jp_string(jp *p, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t start = ++p->pos;   /* skip the quote */
    int escaped = 0;

    /* Pass 1: find the closing quote, validate UTF-8 and control characters. */
    size_t i = start;
    for (;;) {
        if (i >= p->len) {
            p->pos = i;
            jp_fail(p, "unterminated string");
            return NULL;
        }
        unsigned char c = s[i];
        if (c == '"') break;
        if (c == '\\') {
            escaped = 1;
            if (i + 1 >= p->len) {
                p->pos = i + 1;
                jp_fail(p, "unterminated string");
                return NULL;
            }
            i += 2;
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            jp_fail(p, "raw control character in string");
            return NULL;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = tl_utf8_seq(s + i, p->len - i);
        if (!n) {
            p->pos = i;
            jp_fail(p, "invalid UTF-8 in string");
            return NULL;
        }
        i += n;
    }
    size_t end = i;   /* index of the closing quote */

    if (!escaped) {
        p->pos = end + 1;
        *out_len = end - start;
        return tl_arena_strndup(p->a, p->s + start, end - start);
    }

    /* Pass 2: decode escapes; the output is never longer than the input. */
    char *out = tl_arena_alloc(p->a, end - start + 1);
    size_t o = 0;
    i = start;
    while (i < end) {
        char c = p->s[i];
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        char e = p->s[i + 1];
        p->pos = i;
        /* the two-character escapes: \" \\ \/ \b \f \n \r \t */
        static const char simple_esc[] = "\"\\/bfnrt", simple_char[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(simple_esc, e) : NULL;
        if (simple) {
            out[o++] = simple_char[simple - simple_esc];
            i += 2;
            continue;
        }
        switch (e) {
        case 'u': {
            unsigned cp, lo;
            if (end - i < 6 || hex4(p->s + i + 2, &cp) != 0) {
                jp_fail(p, "invalid \\u escape");
                return NULL;
            }
            i += 6;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - i < 6 || p->s[i] != '\\' || p->s[i + 1] != 'u' ||
                    hex4(p->s + i + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    jp_fail(p, "unpaired UTF-16 surrogate in \\u escape");
                    return NULL;
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                jp_fail(p, "unpaired UTF-16 surrogate in \\u escape");
                return NULL;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: jp_fail(p, "invalid escape in string"); return NULL;
        }
    }
    out[o] = '\0';
    p->pos = end + 1;
    *out_len = o;
    return out;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static tl_json *jp_number(jp *p)
{
    size_t start = p->pos, i = p->pos;
    int integral = 1;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len || !is_digit(p->s[i])) {
        p->pos = i;
        jp_fail_char(p);
        return NULL;
    }
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && p->s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(p->s[i])) {
            p->pos = i;
            jp_fail(p, "digit expected after the decimal point");
            return NULL;
        }
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) {
            p->pos = i;
            jp_fail(p, "digit expected in the exponent");
            return NULL;
        }
        while (i < p->len && is_digit(p->s[i])) i++;
    }

    size_t n = i - start;
    char local[64];
    char *text = n < sizeof(local) ? local : tl_arena_alloc(p->a, n + 1);
    memcpy(text, p->s + start, n);
    text[n] = '\0';

    tl_json *j = jp_node(p, TL_JSON_NUMBER);
    errno = 0;
    j->num = strtod(text, NULL);
    if (isinf(j->num)) {
        jp_fail(p, "number out of range");
        return NULL;
    }
    if (integral) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0) {
            j->is_int = 1;
            j->i = v;
        }
    } else if (j->num == floor(j->num) && j->num >= -9223372036854775808.0 &&
               j->num < 9223372036854775808.0) {
        j->is_int = 1;
        j->i = (int64_t)j->num;
    }
    p->pos = i;
    return j;
}

static int jp_literal(jp *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        jp_fail_char(p);
        return -1;
    }
    p->pos += n;
    return 0;
}

static tl_json *jp_value(jp *p, int depth);

/* Element collector: a stack buffer that spills into the arena, doubling. */
typedef struct jp_list {
    const tl_json *local[16];
    const tl_json **v;
    size_t n, cap;
} jp_list;

static void jl_init(jp_list *l)
{
    l->v = l->local;
    l->n = 0;
    l->cap = sizeof(l->local) / sizeof(l->local[0]);
}

static void jl_push(jp *p, jp_list *l, const tl_json *j)
{
    if (l->n == l->cap) {
        const tl_json **nv = tl_arena_alloc(p->a, 2 * l->cap * sizeof(*nv));
        memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap *= 2;
    }
    l->v[l->n++] = j;
}

static void jl_finish(jp *p, jp_list *l, tl_json *j)
{
    j->len = l->n;
    if (l->n) {
        j->items = tl_arena_alloc(p->a, l->n * sizeof(*j->items));
        memcpy(j->items, l->v, l->n * sizeof(*j->items));
    }
}

/* After an array element or object member: ',' (1: another follows), the closing bracket
 * (0: done), anything else an error (-1). */
static int jp_after_member(jp *p, char close)
{
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        return 1;
    }
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    jp_fail_char(p);
    return -1;
}

/* Steps over an opening bracket and the white space after it: 1 when close follows (an
 * empty array or object, its close stepped over too), else 0. */
static int jp_open(jp *p, char close)
{
    p->pos++;
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 1;
    }
    return 0;
}

static tl_json *jp_array(jp *p, int depth)
{
    tl_json *j = jp_node(p, TL_JSON_ARRAY);
    if (jp_open(p, ']')) return j;
    jp_list l;
    jl_init(&l);
    for (;;) {
        tl_json *v = jp_value(p, depth + 1);
        if (!v) return NULL;
        jl_push(p, &l, v);
        int more = jp_after_member(p, ']');
        if (more < 0) return NULL;
        if (!more) break;
    }
    jl_finish(p, &l, j);
    return j;
}

/* After white space, 1 if the next character is c (not consumed); else 0, the parse
 * failed with msg ("unexpected end of input" at the end). */
static int jp_expect(jp *p, char c, const char *msg)
{
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) return 1;
    if (p->pos < p->len) jp_fail(p, msg);
    else jp_fail_char(p);
    return 0;
}

static tl_json *jp_object(jp *p, int depth)
{
    tl_json *j = jp_node(p, TL_JSON_OBJECT);
    if (jp_open(p, '}')) return j;
    jp_list l;
    jl_init(&l);
    for (;;) {
        if (!jp_expect(p, '"', "object key (a string) expected")) return NULL;
        size_t klen;
        const char *key = jp_string(p, &klen);
        if (!key) return NULL;
        if (!jp_expect(p, ':', "':' expected after object key")) return NULL;
        p->pos++;
        tl_json *v = jp_value(p, depth + 1);
        if (!v) return NULL;
        v->key = key;
        v->key_len = klen;
        jl_push(p, &l, v);
        int more = jp_after_member(p, '}');
        if (more < 0) return NULL;
        if (!more) break;
    }
    jl_finish(p, &l, j);
    return j;
}

static tl_json *jp_value(jp *p, int depth)
{
    if (depth > TL_JSON_MAX_DEPTH) {
        jp_fail(p, "nesting too deep");
        return NULL;
    }
    jp_ws(p);
    if (p->pos >= p->len) {
        jp_fail(p, "unexpected end of input");
        return NULL;
    }
    tl_json *j;
    switch (p->s[p->pos]) {
    case '{': return jp_object(p, depth);
    case '[': return jp_array(p, depth);
    case '"': {
        size_t n;
        const char *s = jp_string(p, &n);
        if (!s) return NULL;
        j = jp_node(p, TL_JSON_STRING);
        j->str = s;
        j->len = n;
        return j;
    }
    case 't':
        if (jp_literal(p, "true")) return NULL;
        j = jp_node(p, TL_JSON_BOOL);
        j->boolean = 1;
        return j;
    case 'f':
        if (jp_literal(p, "false")) return NULL;
        return jp_node(p, TL_JSON_BOOL);
    case 'n':
        if (jp_literal(p, "null")) return NULL;
        return jp_node(p, TL_JSON_NULL);
    default: return jp_number(p);
    }
}

tl_json *tl_json_parse(const char *s, size_t len, tl_arena *a, char *err, size_t errlen)
{
    jp p = {.s = s, .len = s ? len : 0, .pos = 0, .a = a, .err = err, .errlen = errlen};
    if (err && errlen) err[0] = '\0';
    tl_json *j = jp_value(&p, 0);
    if (!j) return NULL;
    jp_ws(&p);
    if (p.pos != p.len) {
        jp_fail(&p, "trailing characters after the JSON value");
        return NULL;
    }
    return j;
}

/* ---------------------------------------------------------------- accessors */

const tl_json *tl_json_get(const tl_json *obj, const char *key)
{
    if (!obj || obj->type != TL_JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->len; i-- > 0;) {
        const tl_json *m = obj->items[i];
        if (m->key_len == kl && memcmp(m->key, key, kl) == 0) return m;
    }
    return NULL;
}

size_t tl_json_len(const tl_json *j)
{
    return j && (j->type == TL_JSON_ARRAY || j->type == TL_JSON_OBJECT) ? j->len : 0;
}

const tl_json *tl_json_at(const tl_json *arr, size_t i)
{
    return i < tl_json_len(arr) ? arr->items[i] : NULL;
}

const char *tl_json_str(const tl_json *j) { return j && j->type == TL_JSON_STRING ? j->str : NULL; }

int tl_json_is_null(const tl_json *j) { return !j || j->type == TL_JSON_NULL; }

const char *tl_json_type_name(tl_json_type t)
{
    static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* ------------------------------------------------------------------ writer */

/* 0: byte copied as is; otherwise the character after the backslash ('u' = \u00XX). */
static const char esc_table[256] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',  ['\r'] = 'r', [0x00] = 'u',
    [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',  [0x05] = 'u', [0x06] = 'u',
    [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u',  [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',  [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u',  [0x1c] = 'u', [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

void tl_json_put_strn(tl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        tl_buf_append(b, "null", 4);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    /* Room for the common case (nothing to escape or replace) in one reservation. */
    tl_buf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] >= 0x80) {
            /* Strings come from outside (a stored record, a path file, a request path)
             * and need not be UTF-8; JSON text must be: what is not becomes U+FFFD. */
            size_t bad, k = utf8_scan(u + i, n - i, &bad);
            if (k) {
                i += k;
                continue;
            }
            tl_buf_append(b, s + run, i - run);
            tl_buf_append(b, "\xef\xbf\xbd", 3);
            i += bad;
            run = i;
            continue;
        }
        char e = esc_table[u[i]];
        if (!e) {
            i++;
            continue;
        }
        tl_buf_append(b, s + run, i - run);
        if (e == 'u') {
            char esc[6] = {'\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 0xf]};
            tl_buf_append(b, esc, 6);
        } else {
            char two[2] = {'\\', e};
            tl_buf_append(b, two, 2);
        }
        run = ++i;
    }
    tl_buf_append(b, s + run, n - run);
    tl_buf_putc(b, '"');
}

void tl_json_put_str(tl_buf *b, const char *s) { tl_json_put_strn(b, s, s ? strlen(s) : 0); }

void tl_json_put_i64(tl_buf *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    tl_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void tl_json_put_key(tl_buf *b, const char *k)
{
    tl_buf_putc(b, ',');
    tl_json_put_str(b, k);
    tl_buf_putc(b, ':');
}

void tl_json_member_str(tl_buf *b, const char *k, const char *v)
{
    tl_json_put_key(b, k);
    tl_json_put_str(b, v);
}

void tl_json_member_strn(tl_buf *b, const char *k, const char *v, size_t n)
{
    tl_json_put_key(b, k);
    tl_json_put_strn(b, v, n);
}

void tl_json_member_double(tl_buf *b, const char *k, double v)
{
    tl_json_put_key(b, k);
    tl_json_put_double(b, v);
}

void tl_json_member_i64(tl_buf *b, const char *k, int64_t v)
{
    tl_json_put_key(b, k);
    tl_json_put_i64(b, v);
}

void tl_json_put_double(tl_buf *b, double d)
{
    if (!isfinite(d)) {
        tl_buf_append(b, "null", 4);
        return;
    }
    /* Integral values below 2^53 print exactly as integers. */
    if (d == 0 && signbit(d)) {
        tl_buf_append(b, "-0", 2);
        return;
    }
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d) {
        tl_json_put_i64(b, (int64_t)d);
        return;
    }
    static const char *const fmts[] = {"%.15g", "%.16g", "%.17g"};
    tl_buf_reserve(b, 32);
    char *out = b->data + b->len;
    int n = 0;
    for (int k = 0; k < 3; k++) {
        n = snprintf(out, 32, fmts[k], d);
        if (k == 2 || strtod(out, NULL) == d) break;
    }
    b->len += (size_t)n;
}

void tl_json_write(tl_buf *b, const tl_json *j)
{
    if (!j) {
        tl_buf_append(b, "null", 4);
        return;
    }
    switch (j->type) {
    case TL_JSON_NULL: tl_buf_append(b, "null", 4); break;
    case TL_JSON_BOOL: tl_buf_puts(b, j->boolean ? "true" : "false"); break;
    case TL_JSON_NUMBER:
        if (j->is_int) tl_json_put_i64(b, j->i);
        else tl_json_put_double(b, j->num);
        break;
    case TL_JSON_STRING: tl_json_put_strn(b, j->str, j->len); break;
    case TL_JSON_ARRAY:
        tl_buf_putc(b, '[');
        for (size_t i = 0; i < j->len; i++) {
            if (i) tl_buf_putc(b, ',');
            tl_json_write(b, j->items[i]);
        }
        tl_buf_putc(b, ']');
        break;
    case TL_JSON_OBJECT:
        tl_buf_putc(b, '{');
        for (size_t i = 0; i < j->len; i++) {
            if (i) tl_buf_putc(b, ',');
            tl_json_put_strn(b, j->items[i]->key, j->items[i]->key_len);
            tl_buf_putc(b, ':');
            tl_json_write(b, j->items[i]);
        }
        tl_buf_putc(b, '}');
        break;
    }
}
