/*
 * test_file_source.c -- the file source: canonical, Taobao and JSON-lines parsing, row
 * numbers as ids, every bad-row path (message with file and line, strict vs skip),
 * CRLF, blank lines, quoting, stdin and pipes, buffer boundaries, and the real Taobao
 * files when ../shared/data is present.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "engine/source.h"
#include "lib/util.h"
#include "ingest/file_source.h"
#include "fixtures.h"

#define CANON_HEADER "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value"

static char *paths[64];   /* the files written, kept until the end */
static int n_paths;
static tl_batch b;   /* the test's batch: what the last poll gave */

static int setup(void **state)
{
    (void)state;
    tl_batch_init(&b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tl_batch_destroy(&b);
    return 0;
}

static int teardown_dir(void **state)
{
    for (int i = 0; i < n_paths; i++) free(paths[i]);
    n_paths = 0;
    return fx_teardown_tmpdir(state);
}

/* Writes len bytes to fx_tmpdir/name; returns the path (owned by the fixture). */
static const char *write_file_n(const char *name, const char *data, size_t len)
{
    const char *path = fx_write_file_n(fx_tmpdir, name, data, len);
    for (int i = 0; i < n_paths; i++)
        if (strcmp(paths[i], path) == 0) return paths[i];
    assert_true(n_paths < 64);
    paths[n_paths] = tl_xstrdup(path);
    return paths[n_paths++];
}

static const char *write_file(const char *name, const char *data)
{
    return write_file_n(name, data, strlen(data));
}

static tl_source *open_ok(const char *path, tl_file_format fmt, int strict)
{
    char err[512] = "";
    tl_source *s = tl_file_source_new(path, fmt, strict, err, sizeof err);
    if (!s) fail_msg("tl_file_source_new(%s): %s", path, err);
    return s;
}

static int poll_all(tl_source *s) { return s->poll(s->ctx, &b, 1 << 20, 0); }

/* Opens path and reads it to its end in one poll, which gives n events (in b). */
static tl_source *read_all(const char *path, tl_file_format fmt, int strict, int n)
{
    tl_source *s = open_ok(path, fmt, strict);
    assert_int_equal(poll_all(s), TL_SRC_EOF);
    assert_int_equal(b.n, n);
    return s;
}

/* The source's counts: rows read, of which bad were bad. */
static void expect_stats(tl_source *s, uint64_t rows, uint64_t bad)
{
    uint64_t r = 9, k = 9;
    tl_file_source_stats(s, &r, &k);
    assert_int_equal(r, rows);
    assert_int_equal(k, bad);
}

/* The source's last error is expect (when exact), or starts with it and, when longer,
 * has more after it. */
static void expect_error(tl_source *s, const char *expect, int exact, int longer)
{
    const char *err = tl_file_source_error(s);
    assert_non_null(err);
    if (exact) assert_string_equal(err, expect);
    else assert_true(strncmp(err, expect, strlen(expect)) == 0);
    if (!exact && longer) assert_true(strlen(err) > strlen(expect));
}

static void test_format_parse(void **state)
{
    (void)state;
    assert_int_equal(tl_file_format_parse("canonical"), TL_FMT_CANONICAL);
    assert_int_equal(tl_file_format_parse("CSV"), TL_FMT_CANONICAL);
    assert_int_equal(tl_file_format_parse("taobao"), TL_FMT_TAOBAO);
    assert_int_equal(tl_file_format_parse("jsonl"), TL_FMT_JSONL);
    assert_int_equal(tl_file_format_parse("json"), TL_FMT_JSONL);
    assert_int_equal(tl_file_format_parse("xml"), -1);
    assert_int_equal(tl_file_format_parse(NULL), -1);
    assert_string_equal(tl_file_format_name(TL_FMT_TAOBAO), "taobao");
    assert_null(tl_file_format_name((tl_file_format)7));
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256];
    char missing[128];
    snprintf(missing, sizeof missing, "%s/does-not-exist.csv", fx_tmpdir);
    assert_null(tl_file_source_new(missing, TL_FMT_TAOBAO, 0, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, "does-not-exist.csv"));
    assert_null(tl_file_source_new(fx_tmpdir, TL_FMT_TAOBAO, 0, err, sizeof err));
    assert_non_null(strstr(err, "directory"));
    assert_null(tl_file_source_new("", TL_FMT_TAOBAO, 0, err, sizeof err));
    tl_file_source_destroy(NULL);
}

static void test_canonical(void **state)
{
    (void)state;
    const char *path =
        write_file("canon.csv",
                   CANON_HEADER "\r\n"
                                "e1,u1,i1,c1,BROWSE,1000,search,1500,\r\n"
                                ",u2,i2,,add_to_cart,2000,,,\r\n"
                                "\r\n"
                                "e3,u1,i1,c1,Purchase,3000,ads,,19.99\r\n"
                                "  \n"
                                ",u3,i9,c2,FAVORITE,-5,,0,0");     /* no newline at the end */
    tl_source *s = read_all(path, TL_FMT_CANONICAL, 1, 4);

    tl_event *e = &b.events[0];
    assert_string_equal(e->event_id, "e1");
    assert_string_equal(e->user_id, "u1");
    assert_string_equal(e->item_id, "i1");
    assert_string_equal(e->category_id, "c1");
    assert_int_equal(e->type, TL_BROWSE);
    assert_int_equal(e->ts, 1000);
    assert_string_equal(e->channel, "search");
    assert_true(e->has_dwell && e->dwell_ms == 1500);
    assert_false(e->has_value);
    assert_false(e->has_propensity);
    assert_int_equal(e->offset, 1);
    assert_int_equal(e->partition, 0);

    e = &b.events[1];
    assert_string_equal(e->event_id, "2");      /* empty id -> row number */
    assert_null(e->category_id);
    assert_null(e->channel);
    assert_int_equal(e->type, TL_ADD_TO_CART);
    assert_false(e->has_dwell);
    assert_false(e->has_value);
    assert_int_equal(e->offset, 2);

    e = &b.events[2];                            /* blank line not counted */
    assert_string_equal(e->event_id, "e3");
    assert_int_equal(e->type, TL_PURCHASE);
    assert_true(e->has_value && e->value == 19.99);
    assert_string_equal(e->channel, "ads");
    assert_int_equal(e->offset, 3);

    e = &b.events[3];
    assert_string_equal(e->event_id, "4");
    assert_string_equal(e->item_id, "i9");
    assert_int_equal(e->type, TL_FAVORITE);
    assert_int_equal(e->ts, -5);
    assert_true(e->has_dwell && e->dwell_ms == 0);
    assert_true(e->has_value && e->value == 0);
    assert_int_equal(e->offset, 4);

    expect_stats(s, 4, 0);
    assert_null(tl_file_source_error(s));
    /* after EOF: EOF again, nothing more */
    assert_int_equal(poll_all(s), TL_SRC_EOF);
    assert_int_equal(b.n, 0);
    tl_file_source_destroy(s);
}

static void test_canonical_propensity_and_quotes(void **state)
{
    (void)state;
    const char *path = write_file("prop.csv",
                                  "\xEF\xBB\xBF" CANON_HEADER ",propensity\n"
                                  "\"e,1\",\"u\"\"x\",i,,BROWSE,1,\"\",,,0.25\n"
                                  "e2,u,i,,click,2,feed,,,\n"
                                  "e3,u,i,,click,3,feed,,,1.5\n");
    tl_source *s = read_all(path, TL_FMT_CANONICAL, 0, 2);
    /* tl_event_validate's rules apply: propensity in (0, 1] */
    char expect[256];
    snprintf(expect, sizeof expect, "%s:4: propensity 1.5 is outside (0, 1]", path);
    assert_string_equal(tl_file_source_error(s), expect);
    assert_string_equal(b.events[0].event_id, "e,1");
    assert_string_equal(b.events[0].user_id, "u\"x");
    assert_null(b.events[0].channel);
    assert_true(b.events[0].has_propensity && b.events[0].propensity == 0.25);
    assert_int_equal(b.events[1].type, TL_CLICK);
    assert_false(b.events[1].has_propensity);
    tl_file_source_destroy(s);
}

/* The optional campaign column, alone or after propensity; the columns in another order
 * are not a header. */
static void test_canonical_campaign(void **state)
{
    (void)state;
    static const struct {
        const char *head, *row;
        int prop;
    } cases[] = {
        {",campaign", "e1,u,i,,IMPRESSION,1,ads,,,spring", 0},
        {",propensity,campaign", "e1,u,i,,IMPRESSION,1,ads,,,0.5,spring", 1},
        {",PROPENSITY,Campaign", "e1,u,i,,IMPRESSION,1,ads,,,0.5,spring", 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char text[256];
        snprintf(text, sizeof text, CANON_HEADER "%s\n%s\n%s\n", cases[k].head, cases[k].row,
                 cases[k].prop ? "e2,u,i,,BROWSE,2,,,,," : "e2,u,i,,BROWSE,2,,,,");
        const char *path = write_file("camp.csv", text);
        tl_source *s = read_all(path, TL_FMT_CANONICAL, 1, 2);
        assert_string_equal(b.events[0].campaign, "spring");
        assert_int_equal(b.events[0].has_propensity, cases[k].prop);
        assert_null(b.events[1].campaign);
        tl_file_source_destroy(s);
    }
    char err[512];
    const char *path = write_file("camp.csv", CANON_HEADER ",campaign,propensity\n");
    assert_null(tl_file_source_new(path, TL_FMT_CANONICAL, 1, err, sizeof err));
    assert_non_null(strstr(err, "[,propensity][,campaign]"));
}

static void test_canonical_header(void **state)
{
    (void)state;
    char err[512];
    char expect[256];
    /* data without a header; columns in another order */
    const char *no_header[2][2] = {
        {"nohdr.csv", "e1,u1,i1,c1,BROWSE,1000,,,\n"},
        {"order.csv", "user_id,event_id,item_id,category_id,type,ts,channel,dwell_ms,value\n"},
    };
    for (int i = 0; i < 2; i++) {
        const char *path = write_file(no_header[i][0], no_header[i][1]);
        assert_null(tl_file_source_new(path, TL_FMT_CANONICAL, 0, err, sizeof err));
        snprintf(expect, sizeof expect, "%s:1: expected the header", path);
        assert_true(strncmp(err, expect, strlen(expect)) == 0);
    }
    /* an unknown extra column */
    const char *path = write_file("extra.csv", CANON_HEADER ",extra\n");
    assert_null(tl_file_source_new(path, TL_FMT_CANONICAL, 0, err, sizeof err));
    assert_non_null(strstr(err, ":1: "));
    /* header only, and an empty file: no events, no error */
    const char *files[2] = {write_file("hdronly.csv", CANON_HEADER "\n"),
                            write_file("empty.csv", "")};
    for (int i = 0; i < 2; i++) {
        tl_source *s = read_all(files[i], TL_FMT_CANONICAL, 1, 0);
        assert_null(tl_file_source_error(s));
        tl_file_source_destroy(s);
    }
}

static void test_taobao(void **state)
{
    (void)state;
    const char *path = write_file("taobao.csv",
                                  "1,10,100,pv,1511658000\n"
                                  "2,11,101,cart,1511658001\r\n"
                                  "\n"
                                  "3,12,,fav,1511658002\n"
                                  "4,13,103,buy,1511658003");
    tl_source *s = read_all(path, TL_FMT_TAOBAO, 1, 4);
    static const tl_event_type types[4] = {TL_BROWSE, TL_ADD_TO_CART, TL_FAVORITE, TL_PURCHASE};
    for (int i = 0; i < 4; i++) {
        char id[8], user[8];
        snprintf(id, sizeof id, "%d", i + 1);
        snprintf(user, sizeof user, "%d", i + 1);
        assert_string_equal(b.events[i].event_id, id);
        assert_string_equal(b.events[i].user_id, user);
        assert_int_equal(b.events[i].type, types[i]);
        assert_int_equal(b.events[i].ts, (1511658000LL + i) * 1000);
        assert_int_equal(b.events[i].offset, i + 1);
        assert_null(b.events[i].channel);
        assert_false(b.events[i].has_dwell || b.events[i].has_value);
    }
    assert_string_equal(b.events[0].item_id, "10");
    assert_string_equal(b.events[0].category_id, "100");
    assert_null(b.events[2].category_id);
    tl_file_source_destroy(s);
}

static void test_jsonl(void **state)
{
    (void)state;
    const char *path = write_file(
        "events.jsonl",
        "{\"event_id\":\"e1\",\"user_id\":\"u1\",\"item_id\":\"i1\",\"category_id\":\"c1\","
        "\"type\":\"BROWSE\",\"ts\":1000,\"dwell_ms\":1200,\"channel\":\"feed\"}\r\n"
        "\n"
        "{\"user_id\":\"u2\",\"item_id\":\"i2\",\"type\":\"PURCHASE\",\"ts\":2000,"
        "\"value\":9.5,\"category_id\":null}\n");
    tl_source *s = read_all(path, TL_FMT_JSONL, 1, 2);
    assert_string_equal(b.events[0].event_id, "e1");
    assert_string_equal(b.events[0].channel, "feed");
    assert_true(b.events[0].has_dwell && b.events[0].dwell_ms == 1200);
    assert_int_equal(b.events[0].offset, 1);
    assert_string_equal(b.events[1].event_id, "2");     /* no id -> row number */
    assert_int_equal(b.events[1].type, TL_PURCHASE);
    assert_true(b.events[1].has_value && b.events[1].value == 9.5);
    assert_null(b.events[1].category_id);
    assert_int_equal(b.events[1].offset, 2);
    tl_file_source_destroy(s);
}

/* ---- bad rows ---------------------------------------------------------------------- */

typedef struct bad_case {
    tl_file_format fmt;
    const char *row;
    const char *msg;       /* expected text after "path:line: "; NULL = any */
} bad_case;

static const bad_case bad_cases[] = {
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1", "expected 9 columns, found 6"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,,,", "expected 9 columns, found 10"},
    {TL_FMT_CANONICAL, "e,,i,c,BROWSE,1,,,", "empty user_id"},
    {TL_FMT_CANONICAL, "e,u,,c,BROWSE,1,,,", "empty item_id"},
    {TL_FMT_CANONICAL, "e,u,i,c,xyz,1,,,", "unknown type 'xyz'"},
    {TL_FMT_CANONICAL, "e,u,i,c,,1,,,", "unknown type ''"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,12a,,,", "ts is not an integer: '12a'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,,,,", "ts is not an integer: ''"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,99999999999999999999,,,",
     "ts is not an integer: '99999999999999999999'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,9007199254740993,,,",
     "ts 9007199254740993 is outside the accepted range [-9007199254740992, 9007199254740992]"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,-9223372036854775808,,,",
     "ts -9223372036854775808 is outside the accepted range [-9007199254740992, "
     "9007199254740992]"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,-4,",
     "dwell_ms is not an integer in 0..2147483647: '-4'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,1.5,",
     "dwell_ms is not an integer in 0..2147483647: '1.5'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,,abc", "value is not a finite number: 'abc'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,,nan", "value is not a finite number: 'nan'"},
    {TL_FMT_CANONICAL, "e,u,i,c,BROWSE,1,,, 1", "value is not a finite number: ' 1'"},
    {TL_FMT_CANONICAL, "e,\"u,i,c,BROWSE,1,,,", "malformed quoted field"},
    {TL_FMT_CANONICAL, "e,\"u\"x,i,c,BROWSE,1,,,", "malformed quoted field"},
    {TL_FMT_TAOBAO, "1,2,3,pv", "expected 5 columns, found 4"},
    {TL_FMT_TAOBAO, "1,2,3,xyz,5", "unknown behavior 'xyz'"},
    {TL_FMT_TAOBAO, ",2,3,pv,5", "empty user_id"},
    {TL_FMT_TAOBAO, "1,,3,pv,5", "empty item_id"},
    {TL_FMT_TAOBAO, "1,2,3,pv,5.5", "timestamp is not an integer number of seconds: '5.5'"},
    {TL_FMT_TAOBAO, "1,2,3,pv,99999999999999999",
     "timestamp is not an integer number of seconds: '99999999999999999'"},
    {TL_FMT_JSONL, "{not json", NULL},
    {TL_FMT_JSONL, "[1,2]", NULL},
    {TL_FMT_JSONL, "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"BROWSE\"}", NULL},
    {TL_FMT_JSONL, "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"NOPE\",\"ts\":1}", NULL},
    {TL_FMT_JSONL, "{\"user_id\":\"\",\"item_id\":\"i\",\"type\":\"BROWSE\",\"ts\":1}", NULL},
    {TL_FMT_JSONL, "{\"item_id\":\"i\",\"type\":\"BROWSE\",\"ts\":1}", NULL},
};

static const char *good_row(tl_file_format fmt)
{
    switch (fmt) {
    case TL_FMT_CANONICAL: return ",u,i,c,BROWSE,1,,,";
    case TL_FMT_TAOBAO: return "1,2,3,pv,5";
    default: return "{\"user_id\":\"u\",\"item_id\":\"i\",\"type\":\"BROWSE\",\"ts\":1}";
    }
}

/* File: [header] good, bad, good. Skip: 2 events, ids 1 and 3, bad = 1. Strict: the
 * first event with OK, then ERROR with "path:line: msg". */
static void test_bad_rows(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *c = &bad_cases[k];
        int header = c->fmt == TL_FMT_CANONICAL;
        char content[1024], name[32], expect[512];
        snprintf(content, sizeof content, "%s%s\n%s\r\n%s\n", header ? CANON_HEADER "\n" : "",
                 good_row(c->fmt), c->row, good_row(c->fmt));
        snprintf(name, sizeof name, "bad%zu.txt", k);
        const char *path = write_file(name, content);
        int line = header ? 3 : 2;
        snprintf(expect, sizeof expect, "%s:%d: %s", path, line, c->msg ? c->msg : "");
        print_message("  case %zu: %s\n", k, c->row);

        /* skip and count */
        tl_source *s = read_all(path, c->fmt, 0, 2);
        assert_string_equal(b.events[0].event_id, "1");
        assert_string_equal(b.events[1].event_id, "3");
        assert_int_equal(b.events[1].offset, 3);
        expect_stats(s, 3, 1);
        expect_error(s, expect, c->msg != NULL, 1);
        tl_file_source_destroy(s);

        /* strict */
        s = open_ok(path, c->fmt, 1);
        assert_int_equal(poll_all(s), TL_SRC_OK);
        assert_int_equal(b.n, 1);
        assert_int_equal(poll_all(s), TL_SRC_ERROR);
        assert_int_equal(b.n, 0);
        expect_error(s, expect, c->msg != NULL, 0);
        assert_int_equal(poll_all(s), TL_SRC_ERROR);
        expect_stats(s, 2, 1);
        tl_file_source_destroy(s);
    }
}

/* A bad first row in strict mode: ERROR straight away. Many bad rows: all counted. */
static void test_bad_counts(void **state)
{
    (void)state;
    tl_buf buf = {0};
    for (int i = 1; i <= 1000; i++)
        tl_buf_printf(&buf, "%d,%d,7,%s,%d\n", i, i, i % 4 == 0 ? "oops" : "pv", 1000 + i);
    const char *path = write_file_n("many_bad.csv", buf.data, buf.len);
    tl_buf_free(&buf);
    tl_source *s = open_ok(path, TL_FMT_TAOBAO, 0);
    int n = 0, rc;
    do {
        rc = s->poll(s->ctx, &b, 100, 0);
        for (int i = 0; i < b.n; i++) {
            long id = strtol(b.events[i].event_id, NULL, 10);
            assert_true(id % 4 != 0);
            assert_int_equal(b.events[i].offset, id);
            assert_int_equal(strtol(b.events[i].user_id, NULL, 10), id);
            n++;
        }
    } while (rc == TL_SRC_OK);
    assert_int_equal(rc, TL_SRC_EOF);
    assert_int_equal(n, 750);
    expect_stats(s, 1000, 250);
    char expect[256];
    snprintf(expect, sizeof expect, "%s:1000: unknown behavior 'oops'", path);
    assert_string_equal(tl_file_source_error(s), expect);
    tl_file_source_destroy(s);

    path = write_file("first_bad.csv", "1,2,3,zz,5\n1,2,3,pv,5\n");
    s = open_ok(path, TL_FMT_TAOBAO, 1);
    assert_int_equal(poll_all(s), TL_SRC_ERROR);
    assert_int_equal(b.n, 0);
    snprintf(expect, sizeof expect, "%s:1: unknown behavior 'zz'", path);
    assert_string_equal(tl_file_source_error(s), expect);
    tl_file_source_destroy(s);
}

/* ---- buffers, stdin, pipes ----------------------------------------------------------- */

/* 300k rows (about 9 MiB) read in batches of 999: every buffer boundary splits a line
 * somewhere; ids, offsets and values must all survive. Plus a 3 MiB line. */
static void test_large(void **state)
{
    (void)state;
    enum {
        N = 300000
    };
    tl_buf buf = {0};
    for (int i = 1; i <= N; i++)
        tl_buf_printf(&buf, "%d,%d,%d,%s,%d\n", i % 977, i, i % 31, i % 10 ? "pv" : "buy",
                      1511658000 + i);
    const char *path = write_file_n("large.csv", buf.data, buf.len);
    tl_buf_free(&buf);
    tl_source *s = open_ok(path, TL_FMT_TAOBAO, 1);
    int n = 0, rc, polls = 0;
    do {
        rc = s->poll(s->ctx, &b, 999, 0);
        polls++;
        assert_true(b.n <= 999);
        for (int i = 0; i < b.n; i++) {
            n++;
            char want[16];
            snprintf(want, sizeof want, "%d", n);
            assert_string_equal(b.events[i].item_id, want);
            assert_string_equal(b.events[i].event_id, want);
            assert_int_equal(b.events[i].ts, (1511658000LL + n) * 1000);
            assert_int_equal(b.events[i].type, n % 10 ? TL_BROWSE : TL_PURCHASE);
        }
    } while (rc == TL_SRC_OK);
    assert_int_equal(rc, TL_SRC_EOF);
    assert_int_equal(n, N);
    assert_true(polls >= N / 999);
    tl_file_source_destroy(s);

    size_t big = 3u << 20;
    char *line = tl_xmalloc(big + 256);
    int off = snprintf(line, 256, "%s\ne1,u1,", CANON_HEADER);
    memset(line + off, 'x', big);
    off += (int)big;
    off += snprintf(line + off, 256, ",c,BROWSE,5,,,\ne2,u2,i2,c,BROWSE,6,,,\n");
    path = write_file_n("longline.csv", line, (size_t)off);
    free(line);
    /* a line longer than the read buffer, its long field allowed */
    s = open_ok(path, TL_FMT_CANONICAL, 1);
    tl_file_source_set_max_string(s, big);
    assert_int_equal(poll_all(s), TL_SRC_EOF);
    assert_int_equal(b.n, 2);
    assert_int_equal(strlen(b.events[0].item_id), big);
    assert_string_equal(b.events[1].item_id, "i2");
    tl_file_source_destroy(s);
    /* by default such a field makes the row bad, as on Kafka */
    s = read_all(path, TL_FMT_CANONICAL, 0, 1);
    assert_string_equal(b.events[0].item_id, "i2");
    assert_non_null(strstr(tl_file_source_error(s),
                           "item_id is 3145728 bytes long, more than "
                           "ingest.max.string.bytes=512"));
    tl_file_source_destroy(s);
}

static void test_stdin(void **state)
{
    (void)state;
    const char *path = write_file("stdin.csv", CANON_HEADER "\ne1,u1,i1,,BROWSE,5,,,\n");
    int saved = dup(STDIN_FILENO);
    int fd = open(path, O_RDONLY);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDIN_FILENO) >= 0);
    close(fd);
    tl_source *s = read_all("-", TL_FMT_CANONICAL, 1, 1);
    assert_string_equal(b.events[0].event_id, "e1");
    tl_file_source_destroy(s);
    /* stdin is not closed by the source */
    assert_true(fcntl(STDIN_FILENO, F_GETFD) >= 0);

    /* a bad header on a pipe is found by poll, named "stdin:1" */
    int p[2];
    assert_int_equal(pipe(p), 0);
    const char *txt = "nope\n";
    assert_int_equal(write(p[1], txt, strlen(txt)), (ssize_t)strlen(txt));
    close(p[1]);
    assert_true(dup2(p[0], STDIN_FILENO) >= 0);
    close(p[0]);
    s = open_ok("-", TL_FMT_CANONICAL, 0);
    assert_int_equal(poll_all(s), TL_SRC_ERROR);
    assert_true(strncmp(tl_file_source_error(s), "stdin:1: expected the header", 28) == 0);
    tl_file_source_destroy(s);

    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);
}

/* A pipe whose writer is still open: poll returns what is there (a partial line stays
 * buffered), an empty batch after timeout_ms when nothing comes, then the rest. */
static void test_pipe_partial(void **state)
{
    (void)state;
    int p[2];
    char devpath[64];
    assert_int_equal(pipe(p), 0);
    snprintf(devpath, sizeof devpath, "/dev/fd/%d", p[0]);
    const char *part1 = "1,2,3,pv,10\n4,5,6,ca";
    assert_int_equal(write(p[1], part1, strlen(part1)), (ssize_t)strlen(part1));
    tl_source *s = open_ok(devpath, TL_FMT_TAOBAO, 1);
    assert_int_equal(s->poll(s->ctx, &b, 100, 10), TL_SRC_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.events[0].user_id, "1");
    assert_int_equal(s->poll(s->ctx, &b, 100, 10), TL_SRC_OK);
    assert_int_equal(b.n, 0);
    const char *part2 = "rt,20\n7,8,9,buy,30";
    assert_int_equal(write(p[1], part2, strlen(part2)), (ssize_t)strlen(part2));
    close(p[1]);
    int rc = s->poll(s->ctx, &b, 100, -1);
    int n = b.n;
    assert_true(n >= 1);
    assert_string_equal(b.events[0].user_id, "4");
    assert_int_equal(b.events[0].type, TL_ADD_TO_CART);
    if (rc == TL_SRC_OK) {
        rc = s->poll(s->ctx, &b, 100, -1);
        n += b.n;
    }
    assert_int_equal(rc, TL_SRC_EOF);
    assert_int_equal(n, 2);
    uint64_t rows;
    tl_file_source_stats(s, &rows, NULL);
    assert_int_equal(rows, 3);
    tl_file_source_destroy(s);
    close(p[0]);
}

/* ---- the real Taobao files ------------------------------------------------------------ */

typedef struct taobao_counts {
    uint64_t rows, by_type[TL_EVENT_TYPE_COUNT], users;   /* users: runs of equal user_id */
    double secs;
} taobao_counts;

static int count_taobao(const char *path, taobao_counts *tc)
{
    char err[512];
    char last_user[64] = "";
    if (access(path, R_OK) != 0) return -1;
    memset(tc, 0, sizeof *tc);
    tl_source *s = tl_file_source_new(path, TL_FMT_TAOBAO, 1, err, sizeof err);
    if (!s) fail_msg("%s", err);
    int64_t t0 = tl_mono_ns();
    int rc;
    do {
        rc = s->poll(s->ctx, &b, 4096, 0);
        for (int i = 0; i < b.n; i++) {
            tc->by_type[b.events[i].type]++;
            if (strcmp(last_user, b.events[i].user_id) != 0) {
                tc->users++;
                snprintf(last_user, sizeof last_user, "%s", b.events[i].user_id);
            }
        }
        tc->rows += (uint64_t)b.n;
    } while (rc == TL_SRC_OK);
    tc->secs = (double)(tl_mono_ns() - t0) / 1e9;
    assert_int_equal(rc, TL_SRC_EOF);
    expect_stats(s, tc->rows, 0);
    tl_file_source_destroy(s);
    return 0;
}

static void test_real_taobao(void **state)
{
    (void)state;
    const char *journeys = TALLY_SOURCE_DIR "/../shared/data/taobao/user_behavior_journeys.csv";
    const char *slice = TALLY_SOURCE_DIR "/../shared/data/taobao/user_behavior_slice.csv";
    taobao_counts tc;
    if (count_taobao(journeys, &tc) < 0) {
        print_message("  SKIP: %s not found (the shared Taobao data is not on this machine)\n",
                      journeys);
        skip();
    }
    /* counts from ../shared/data/README.md */
    assert_int_equal(tc.rows, 10000);
    assert_int_equal(tc.by_type[TL_BROWSE], 9046);
    assert_int_equal(tc.by_type[TL_ADD_TO_CART], 536);
    assert_int_equal(tc.by_type[TL_FAVORITE], 212);
    assert_int_equal(tc.by_type[TL_PURCHASE], 206);
    assert_int_equal(tc.users, 114);     /* grouped by user */

    if (count_taobao(slice, &tc) < 0) {
        print_message("  SKIP: %s not found\n", slice);
        return;
    }
    assert_int_equal(tc.rows, 110300);
    assert_int_equal(tc.by_type[TL_BROWSE], 98361);
    assert_int_equal(tc.by_type[TL_ADD_TO_CART], 6063);
    assert_int_equal(tc.by_type[TL_FAVORITE], 3383);
    assert_int_equal(tc.by_type[TL_PURCHASE], 2493);
    print_message("  slice: %llu rows in %.4f s (%.1f M rows/s)\n", (unsigned long long)tc.rows,
                  tc.secs, (double)tc.rows / tc.secs / 1e6);
}

int main(void)
{
    tl_log_level = TL_LOG_ERROR;     /* bad rows are logged at WARN; keep the output short */
    const struct CMUnitTest tests[] = {
        FX_TEST(test_format_parse),
        FX_TEST(test_open_errors),
        FX_TEST(test_canonical),
        FX_TEST(test_canonical_propensity_and_quotes),
        FX_TEST(test_canonical_campaign),
        FX_TEST(test_canonical_header),
        FX_TEST(test_taobao),
        FX_TEST(test_jsonl),
        FX_TEST(test_bad_rows),
        FX_TEST(test_bad_counts),
        FX_TEST(test_large),
        FX_TEST(test_stdin),
        FX_TEST(test_pipe_partial),
        FX_TEST(test_real_taobao),
    };
    return cmocka_run_group_tests(tests, fx_setup_tmpdir, teardown_dir);
}
