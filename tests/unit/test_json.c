/*
 * test_json.c -- lib/json: parsing (values, escapes, errors, bounds), accessors, and
 * the writer helpers (escaping, shortest round-trip doubles, integers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "fixtures.h"

static tl_arena arena;

static int setup(void **state)
{
    tl_arena_init(&arena, 4096);
    return 0;
}

static int teardown(void **state)
{
    tl_arena_destroy(&arena);
    return 0;
}

static const tl_json *parse_ok(const char *s)
{
    char err[128] = "";
    const tl_json *j = tl_json_parse(s, strlen(s), &arena, err, sizeof(err));
    if (!j) fail_msg("parse of %s failed: %s", s, err);
    return j;
}

/* Parsing s fails with a message containing want. */
static void parse_fails(const char *s, size_t len, const char *want)
{
    char err[128] = "";
    const tl_json *j = tl_json_parse(s, len, &arena, err, sizeof(err));
    if (j) fail_msg("parse of %.*s succeeded, expected an error", (int)len, s);
    if (!strstr(err, want))
        fail_msg("error for %.*s is \"%s\", expected \"%s\"", (int)len, s, err, want);
    assert_non_null(strstr(err, "at offset"));
}

static void test_scalars(void **state)
{
    const tl_json *j = parse_ok(" null ");
    assert_int_equal(j->type, TL_JSON_NULL);
    assert_true(tl_json_is_null(j));
    j = parse_ok("true");
    assert_int_equal(j->type, TL_JSON_BOOL);
    assert_int_equal(j->boolean, 1);
    j = parse_ok("false");
    assert_int_equal(j->type, TL_JSON_BOOL);
    assert_int_equal(j->boolean, 0);
    assert_false(tl_json_is_null(j));
    assert_true(tl_json_is_null(NULL));
}

static void test_numbers(void **state)
{
    const tl_json *j = parse_ok("42");
    assert_int_equal(j->type, TL_JSON_NUMBER);
    assert_true(j->is_int);
    assert_int_equal(j->i, 42);
    assert_true(j->num == 42.0);

    j = parse_ok("-7");
    assert_true(j->is_int);
    assert_int_equal(j->i, -7);

    j = parse_ok("1.5");
    assert_false(j->is_int);
    assert_true(j->num == 1.5);

    j = parse_ok("1e3");
    assert_true(j->is_int);
    assert_int_equal(j->i, 1000);

    j = parse_ok("-2.5E-3");
    assert_false(j->is_int);
    assert_true(j->num == -2.5e-3);

    /* 2^53 + 1 is not a double, but stays exact as an integer. */
    j = parse_ok("9007199254740993");
    assert_true(j->is_int);
    assert_int_equal(j->i, 9007199254740993LL);

    j = parse_ok("-9223372036854775808");
    assert_true(j->is_int);
    assert_true(j->i == INT64_MIN);

    j = parse_ok("9223372036854775808");   /* one past INT64_MAX */
    assert_false(j->is_int);
    assert_true(j->num == 9223372036854775808.0);

    j = parse_ok("0");
    assert_true(j->is_int);
    assert_int_equal(j->i, 0);
}

static void test_strings(void **state)
{
    const tl_json *j = parse_ok("\"plain\"");
    assert_int_equal(j->type, TL_JSON_STRING);
    assert_string_equal(j->str, "plain");
    assert_int_equal(j->len, 5);

    j = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
    assert_string_equal(j->str, "a\"b\\c/d\b\f\n\r\t");

    j = parse_ok("\"caf\\u00e9 \\u20ac\"");
    assert_string_equal(j->str, "caf\xc3\xa9 \xe2\x82\xac");

    /* U+1F600 as a surrogate pair -> 4-byte UTF-8. */
    j = parse_ok("\"\\ud83d\\ude00\"");
    assert_int_equal(j->len, 4);
    assert_memory_equal(j->str, "\xf0\x9f\x98\x80", 4);

    /* Raw UTF-8 passes through unchanged. */
    j = parse_ok("\"\xe4\xb8\xad\xf0\x9f\x98\x80\"");
    assert_string_equal(j->str, "\xe4\xb8\xad\xf0\x9f\x98\x80");

    /* \u0000 is kept; len tells where the string ends. */
    j = parse_ok("\"a\\u0000b\"");
    assert_int_equal(j->len, 3);
    assert_memory_equal(j->str, "a\0b", 3);
    assert_string_equal(tl_json_str(j), "a");
}

static void test_objects_arrays(void **state)
{
    const tl_json *j = parse_ok("{\"a\": 1, \"b\": [true, null, \"x\", {\"c\": -1}], \"a\": 2,"
                                " \"empty\": {}, \"none\": []}");
    assert_int_equal(j->type, TL_JSON_OBJECT);
    assert_int_equal(tl_json_len(j), 5);
    /* A repeated key: the last one wins. */
    assert_int_equal(tl_json_get(j, "a")->i, 2);
    const tl_json *b = tl_json_get(j, "b");
    assert_int_equal(b->type, TL_JSON_ARRAY);
    assert_int_equal(tl_json_len(b), 4);
    assert_int_equal(tl_json_at(b, 0)->type, TL_JSON_BOOL);
    assert_int_equal(tl_json_at(b, 1)->type, TL_JSON_NULL);
    assert_string_equal(tl_json_str(tl_json_at(b, 2)), "x");
    assert_int_equal(tl_json_get(tl_json_at(b, 3), "c")->i, -1);
    assert_null(tl_json_at(b, 4));
    assert_null(tl_json_get(j, "missing"));
    assert_null(tl_json_get(b, "a"));            /* not an object */
    assert_null(tl_json_get(NULL, "a"));
    assert_null(tl_json_str(tl_json_get(j, "a"))); /* not a string */
    assert_int_equal(tl_json_len(tl_json_get(j, "empty")), 0);
    assert_int_equal(tl_json_len(tl_json_get(j, "none")), 0);
    assert_int_equal(tl_json_len(tl_json_get(j, "a")), 0);
    assert_string_equal(tl_json_at(j, 1)->key, "b");

    /* Many elements: the collector spills from the stack to the arena. */
    char big[8192];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s%d", i ? "," : "", i);
    big[n++] = ']';
    big[n] = '\0';
    j = parse_ok(big);
    assert_int_equal(tl_json_len(j), 1000);
    for (int i = 0; i < 1000; i++) assert_int_equal(tl_json_at(j, (size_t)i)->i, i);
}

static void test_errors(void **state)
{
    parse_fails("", 0, "unexpected end of input");
    parse_fails("   ", 3, "unexpected end of input");
    parse_fails("[1,2,]", 6, "unexpected character ']'");
    parse_fails("{\"a\":1,}", 8, "object key");
    parse_fails("{\"a\" 1}", 7, "':' expected");
    parse_fails("{1:2}", 5, "object key");
    parse_fails("\"abc", 4, "unterminated string");
    parse_fails("\"ab\\", 4, "unterminated string");
    parse_fails("\"\\x\"", 4, "invalid escape");
    parse_fails("\"\\u12\"", 6, "invalid \\u escape");
    parse_fails("\"\\ud83d\"", 8, "unpaired UTF-16 surrogate");
    parse_fails("\"\\ude00\"", 8, "unpaired UTF-16 surrogate");
    parse_fails("\"\\ud83d\\u0041\"", 14, "unpaired UTF-16 surrogate");
    parse_fails("\"a\nb\"", 5, "raw control character");
    parse_fails("\"\xff\"", 3, "invalid UTF-8");
    parse_fails("\"\xc0\xaf\"", 4, "invalid UTF-8");          /* overlong '/' */
    parse_fails("\"\xed\xa0\x80\"", 5, "invalid UTF-8");      /* encoded surrogate */
    parse_fails("\"\xe4\xb8\"", 4, "invalid UTF-8");          /* truncated sequence */
    parse_fails("01", 2, "trailing characters");
    parse_fails("1.", 2, "decimal point");
    parse_fails("1e+", 3, "exponent");
    parse_fails("-", 1, "unexpected end of input");
    parse_fails("+1", 2, "unexpected character '+'");
    parse_fails("1e999", 5, "out of range");
    parse_fails("nul", 3, "unexpected character 'n'");
    parse_fails("tru", 3, "unexpected character 't'");
    parse_fails("{} x", 4, "trailing characters");
    parse_fails("[1 2]", 5, "unexpected character '2'");
    parse_fails("\x01", 1, "unexpected byte 0x01");

    /* The offset in the message points at the problem. */
    char err[128];
    assert_null(tl_json_parse("[1,2,]", 6, &arena, err, sizeof(err)));
    assert_non_null(strstr(err, "offset 5"));

    /* Nesting beyond TL_JSON_MAX_DEPTH is refused, not a stack overflow. */
    size_t deep = 100000;
    char *s = malloc(deep);
    memset(s, '[', deep);
    parse_fails(s, deep, "nesting too deep");
    free(s);

    /* Just under the limit is fine. */
    char ok[2 * TL_JSON_MAX_DEPTH + 1];
    memset(ok, '[', TL_JSON_MAX_DEPTH);
    memset(ok + TL_JSON_MAX_DEPTH, ']', TL_JSON_MAX_DEPTH);
    assert_non_null(tl_json_parse(ok, 2 * TL_JSON_MAX_DEPTH, &arena, err, sizeof(err)));
}

static void test_bounds(void **state)
{
    /* The parser only looks at s[0..len): what follows does not matter. */
    char err[128];
    const char *s = "[1,2]garbage";
    const tl_json *j = tl_json_parse(s, 5, &arena, err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(tl_json_len(j), 2);
    /* ...and a closing quote just past len is not seen. */
    assert_null(tl_json_parse("\"abc\"", 4, &arena, err, sizeof(err)));
    assert_null(tl_json_parse("12", 0, &arena, err, sizeof(err)));
    j = tl_json_parse("123456", 2, &arena, err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(j->i, 12);

    /* Every prefix of a document is parsed without reading past it (run under ASan,
     * each prefix is copied to a buffer of exactly its length). */
    const char *doc = "{\"k\":[1.5e3,\"\\ud83d\\ude00\",true,null,{\"x\":\"y\\n\"}],\"n\":-0.25}";
    size_t n = strlen(doc);
    for (size_t k = 0; k < n; k++) {
        char *p = malloc(k ? k : 1);
        memcpy(p, doc, k);
        assert_null(tl_json_parse(p, k, &arena, err, sizeof(err)));
        free(p);
    }
    assert_non_null(tl_json_parse(doc, n, &arena, err, sizeof(err)));
}

static char *put_str(tl_buf *b, const char *s)
{
    tl_buf_clear(b);
    tl_json_put_str(b, s);
    return b->data;
}

static char *put_double(tl_buf *b, double d)
{
    tl_buf_clear(b);
    tl_json_put_double(b, d);
    return b->data;
}

static void test_put_str(void **state)
{
    tl_buf b = {0};
    assert_string_equal(put_str(&b, "abc"), "\"abc\"");
    assert_string_equal(put_str(&b, ""), "\"\"");
    assert_string_equal(put_str(&b, NULL), "null");
    assert_string_equal(put_str(&b, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(put_str(&b, "\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
    assert_string_equal(put_str(&b, "\x01\x1f"), "\"\\u0001\\u001f\"");
    assert_string_equal(put_str(&b, "caf\xc3\xa9/"), "\"caf\xc3\xa9/\"");
    tl_buf_clear(&b);
    tl_json_put_strn(&b, "a\0b", 3);
    assert_string_equal(b.data, "\"a\\u0000b\"");
    assert_int_equal(b.len, strlen(b.data));

    /* Appends: previous content stays. */
    tl_buf_clear(&b);
    tl_buf_puts(&b, "x=");
    tl_json_put_str(&b, "y");
    assert_string_equal(b.data, "x=\"y\"");

    /* Escaped output parses back to the input, for every byte value 1..127. */
    char all[128];
    for (int i = 1; i < 128; i++) all[i - 1] = (char)i;
    all[127] = '\0';
    put_str(&b, all);
    char err[128];
    const tl_json *j = tl_json_parse(b.data, b.len, &arena, err, sizeof(err));
    assert_non_null(j);
    assert_string_equal(j->str, all);
    tl_buf_free(&b);
}

/* put_str of n bytes, parsed back: the output must be JSON whatever the input. */
static const char *put_parsed(tl_buf *b, const char *s, size_t n, size_t *out_len)
{
    tl_buf_clear(b);
    tl_json_put_strn(b, s, n);
    assert_int_equal(b->len, strlen(b->data));
    char err[128];
    const tl_json *j = tl_json_parse(b->data, b->len, &arena, err, sizeof(err));
    if (!j) fail_msg("output for %zu bytes is not JSON: %s", n, err);
    assert_int_equal(j->type, TL_JSON_STRING);
    *out_len = j->len;
    return j->str;
}

#define FFFD "\xef\xbf\xbd"

/* Bytes that are not UTF-8 are written as U+FFFD, one per maximal subpart (Unicode 15,
 * 3.9; the WHATWG decoder), so the output is always JSON; UTF-8 passes unchanged. */
static void test_put_str_invalid_utf8(void **state)
{
    /* (sizeof, not strlen: a case may hold a NUL) */
#define C(in, want) {in, sizeof(in) - 1, want, sizeof(want) - 1}
    const struct {
        const char *in;
        size_t n;
        const char *want;
        size_t wn;
    } cases[] = {
        /* a stray byte */
        C("\xff", FFFD),
        C("a\xff"
          "b",
          "a" FFFD "b"),
        C("\xfe\xff", FFFD FFFD),
        C("\x80", FFFD),                                  /* lone continuation byte */
        C("\x80\xbf", FFFD FFFD),
        C("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD),       /* F5: no lead byte at all */
        /* overlong encodings: C0/C1 are never leads; E0 and F0 need A0/90 and up next */
        C("\xc0\xaf", FFFD FFFD),                          /* '/' in 2 bytes */
        C("\xc1\xbf", FFFD FFFD),
        C("\xe0\x80\xaf", FFFD FFFD FFFD),                 /* '/' in 3 bytes */
        C("\xe0\x9f\xbf", FFFD FFFD FFFD),                 /* U+07FF in 3 bytes */
        C("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD),        /* '/' in 4 bytes */
        C("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD),        /* U+FFFF in 4 bytes */
        /* UTF-16 surrogates encoded as UTF-8 (CESU): ED must be followed by 80..9F */
        C("\xed\xa0\x80", FFFD FFFD FFFD),                 /* U+D800 */
        C("\xed\xbf\xbf", FFFD FFFD FFFD),                 /* U+DFFF */
        C("\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD),   /* a pair */
        /* above U+10FFFF */
        C("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
        /* truncated sequences: the lead and the continuations so far are one U+FFFD */
        C("\xc3", FFFD),
        C("\xe4\xb8", FFFD),
        C("\xe4\xb8x", FFFD "x"),
        C("\xf0\x9f\x98", FFFD),
        C("\xf0\x9f\x98!", FFFD "!"),
        C("\xf0\x9f", FFFD),
        C("\xe4\xb8\xe4\xb8\xad", FFFD "\xe4\xb8\xad"),      /* cut, then whole */
        C("\xf0\x9f\x98\xc3\xa9", FFFD "\xc3\xa9"),
        /* Unicode's own example (Table 3-8) */
        C("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
          "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d"),
        /* control characters are still escaped next to replaced bytes */
        C("\x01\xff\n\x00\xc3", "\x01" FFFD "\n\0" FFFD),
        /* well-formed: unchanged, 4-byte characters and the boundaries of each range */
        C("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),             /* U+1F600 */
        C("\xf0\x90\x80\x80", "\xf0\x90\x80\x80"),             /* U+10000 */
        C("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"),             /* U+10FFFF */
        C("\xf3\xbf\xbf\xbf", "\xf3\xbf\xbf\xbf"),             /* U+FFFFF */
        C("\xe0\xa0\x80", "\xe0\xa0\x80"),                     /* U+0800 */
        C("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"), /* U+D7FF, U+E000 */
        C("\xef\xbf\xbd", FFFD),                              /* U+FFFD itself */
        C("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf"),             /* U+0080, U+07FF */
        C("caf\xc3\xa9 \xe4\xb8\xad", "caf\xc3\xa9 \xe4\xb8\xad"),
    };
#undef C
    tl_buf b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n;
        const char *got = put_parsed(&b, cases[i].in, cases[i].n, &n);
        if (n != cases[i].wn || memcmp(got, cases[i].want, n) != 0)
            fail_msg("case %zu: wrote %s", i, b.data);
    }
    /* The replacement is in the output bytes, not only in what parses back. */
    tl_buf_clear(&b);
    tl_json_put_strn(&b, "\xed\xa0\x80", 3);
    assert_string_equal(b.data, "\"" FFFD FFFD FFFD "\"");

    /* Every string of up to two bytes, and many random longer ones, writes as JSON;
     * what is already UTF-8 (the parser decides) comes back unchanged. */
    char in[8];
    for (int x = 0; x < 256 * 256 + 256; x++) {
        size_t n = x < 256 ? 1 : 2;
        in[0] = (char)(x < 256 ? x : x >> 8);
        in[1] = (char)x;
        size_t got_n;
        const char *got = put_parsed(&b, in, n, &got_n);
        char err[128];
        tl_buf q = {0};
        tl_buf_putc(&q, '"');
        tl_buf_append(&q, in, n);
        tl_buf_putc(&q, '"');
        const tl_json *j = tl_json_parse(q.data, q.len, &arena, err, sizeof(err));
        if (j && (got_n != n || memcmp(got, in, n) != 0)) fail_msg("UTF-8 %02x.. changed", x);
        tl_buf_free(&q);
        tl_arena_reset(&arena);
    }
    uint64_t r = 0x243f6a8885a308d3ULL;
    for (int k = 0; k < 200000; k++) {
        size_t n = 1 + k % 8;
        for (size_t i = 0; i < n; i++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            /* mostly bytes from 0x80 up, where the sequences are */
            in[i] = (char)(r % 5 ? 0x80 | (r >> 8) : r >> 8);
        }
        size_t got_n;
        put_parsed(&b, in, n, &got_n);
        tl_arena_reset(&arena);
    }
    tl_buf_free(&b);

    /* tl_utf8_seq: the length of a well-formed sequence, 0 for anything else. */
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xe4\xb8\xad", 3), 3);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xed\xa0\x80", 3), 0);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xc0\xaf", 2), 0);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xc3\xa9", 2), 2);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"a", 1), 1);
    assert_int_equal(tl_utf8_seq((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
}

static void test_put_numbers(void **state)
{
    tl_buf b = {0};
    assert_string_equal(put_double(&b, 0.1), "0.1");
    assert_string_equal(put_double(&b, 3.0), "3");
    assert_string_equal(put_double(&b, -2.5), "-2.5");
    assert_string_equal(put_double(&b, 0.0), "0");
    assert_string_equal(put_double(&b, -0.0), "-0");
    assert_string_equal(put_double(&b, 1.0 / 3.0), "0.3333333333333333");   /* 16 digits */
    assert_string_equal(put_double(&b, 0.1 + 0.2), "0.30000000000000004");  /* 17 digits */
    assert_string_equal(put_double(&b, 1e300), "1e+300");
    assert_string_equal(put_double(&b, 5e-324), "4.94065645841247e-324");  /* %.15g suffices */
    assert_string_equal(put_double(&b, 1700000000000.0), "1700000000000");
    assert_string_equal(put_double(&b, NAN), "null");
    assert_string_equal(put_double(&b, INFINITY), "null");
    assert_string_equal(put_double(&b, -INFINITY), "null");

    /* Every finite double reads back exactly, and never needs more than 17 digits. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (!isfinite(d)) continue;
        put_double(&b, d);
        double back = strtod(b.data, NULL);
        if (memcmp(&back, &d, sizeof(d)) != 0 && !(d == 0 && back == 0))
            fail_msg("%.17g printed as %s reads back as %.17g", d, b.data, back);
        /* ...and is the first of %.15g, %.16g, %.17g that does (integers below 2^53
         * excepted: they print as plain integers). */
        char ref[40];
        if (d == floor(d) && fabs(d) < 9007199254740992.0) {
            snprintf(ref, sizeof(ref), "%lld", (long long)d);
        } else {
            for (int p = 15; p <= 17; p++) {
                snprintf(ref, sizeof(ref), "%.*g", p, d);
                if (strtod(ref, NULL) == d) break;
            }
        }
        assert_string_equal(b.data, ref);
    }

    tl_buf_clear(&b);
    tl_json_put_i64(&b, 0);
    tl_buf_putc(&b, ' ');
    tl_json_put_i64(&b, -1);
    tl_buf_putc(&b, ' ');
    tl_json_put_i64(&b, INT64_MAX);
    tl_buf_putc(&b, ' ');
    tl_json_put_i64(&b, INT64_MIN);
    assert_string_equal(b.data, "0 -1 9223372036854775807 -9223372036854775808");
    tl_buf_free(&b);
}

static void test_round_trip(void **state)
{
    const char *docs[] = {
        "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\\"y\\\\z\\n\",\"d\":{\"e\":-0.5,\"f\":[]}}",
        "[1.5,-2,1e+300,0.1,\"\\u0001\",\"caf\xc3\xa9\",{}]",
        "\"just a string\"",
        "-9223372036854775808",
        "9007199254740993",
    };
    tl_buf b1 = {0}, b2 = {0};
    char err[128];
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        const tl_json *j = tl_json_parse(docs[i], strlen(docs[i]), &arena, err, sizeof(err));
        assert_non_null(j);
        tl_buf_clear(&b1);
        tl_json_write(&b1, j);
        /* Compact documents print back byte for byte. */
        assert_string_equal(b1.data, docs[i]);
        const tl_json *j2 = tl_json_parse(b1.data, b1.len, &arena, err, sizeof(err));
        assert_non_null(j2);
        tl_buf_clear(&b2);
        tl_json_write(&b2, j2);
        assert_string_equal(b1.data, b2.data);
    }
    /* Whitespace and escapes normalise. */
    const char *loose = " { \"a\" : [ 1 , 2.50 ] , \"s\" : \"\\u0041\\/\" } ";
    const tl_json *j = tl_json_parse(loose, strlen(loose), &arena, err, sizeof(err));
    assert_non_null(j);
    tl_buf_clear(&b1);
    tl_json_write(&b1, j);
    assert_string_equal(b1.data, "{\"a\":[1,2.5],\"s\":\"A/\"}");
    tl_buf_free(&b1);
    tl_buf_free(&b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_scalars),     FX_TEST(test_numbers),
        FX_TEST(test_strings),     FX_TEST(test_objects_arrays),
        FX_TEST(test_errors),      FX_TEST(test_bounds),
        FX_TEST(test_put_str),     FX_TEST(test_put_str_invalid_utf8),
        FX_TEST(test_put_numbers), FX_TEST(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
