/*
 * test_log.c -- lib/log.c: key=value lines with quoted and escaped values, JSON lines
 * that parse back (lib/json) with ts, level, component and message, level filtering,
 * log.file with reopen after a rename (tl_log_reopen and SIGHUP), whole lines from
 * concurrent threads, librdkafka's lines in the same format, and secret config values
 * never in a line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"
#include "fixtures.h"

static char tmpdir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tally_log_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof(path), "%s/tally.log", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char err[256];
    tl_log_configure("info", "key_value", "", err, sizeof(err));   /* back to stderr */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void use(const char *level, const char *format)
{
    char err[256] = "";
    if (tl_log_configure(level, format, path, err, sizeof(err)) != 0) fail_msg("%s", err);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) fail_msg("short read of %s", p);
    fclose(f);
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void must_contain(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) fail_msg("expected '%s' in:\n%s", needle, hay);
}

static void must_not_contain(const char *hay, const char *needle)
{
    if (strstr(hay, needle)) fail_msg("did not expect '%s' in:\n%s", needle, hay);
}

/* Parses every line of text as one JSON object with ts, level, component and message
 * strings; returns the number of lines. The last line parsed stays in *last. */
static int check_json_lines(const char *text, tl_arena *a, const tl_json **last)
{
    int n = 0;
    for (const char *p = text; *p; n++) {
        const char *nl = strchr(p, '\n');
        if (!nl) fail_msg("unterminated line: %s", p);
        char err[200];
        const tl_json *j = tl_json_parse(p, (size_t)(nl - p), a, err, sizeof(err));
        if (!j || j->type != TL_JSON_OBJECT)
            fail_msg("not a JSON object (%s): %.*s", err, (int)(nl - p), p);
        static const char *const fields[] = {"ts", "level", "component", "message"};
        for (int i = 0; i < 4; i++)
            if (!tl_json_str(tl_json_get(j, fields[i])))
                fail_msg("no string %s in %.*s", fields[i], (int)(nl - p), p);
        if (last) *last = j;
        p = nl + 1;
    }
    return n;
}

/* ---- key=value ------------------------------------------------------------------------ */

static void test_key_value(void **state)
{
    (void)state;
    use("info", "key_value");
    TL_LOG_INFO("ingest", "assigned partitions=%d", 3);
    TL_LOG_WARN("ingest", "bad row: %s", "line one\nline \"two\"\tend\x01");
    tl_log_kafka(3, "rdkafka#consumer-1", "FAIL", "broker down: \"Connection refused\"\nretry");
    char q[64];
    assert_string_equal(tl_log_quote(q, sizeof(q), "plain-token_1.2"), "plain-token_1.2");
    assert_string_equal(tl_log_quote(q, sizeof(q), "two words"), "\"two words\"");
    assert_string_equal(tl_log_quote(q, sizeof(q), "a=\"b\"\\"), "\"a=\\\"b\\\"\\\\\"");
    assert_string_equal(tl_log_quote(q, sizeof(q), ""), "\"\"");

    char *text = slurp(path);
    assert_int_equal(count_lines(text), 3);
    char *l1 = text, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    /* 2026-11-22T09:42:36.123Z level=info component=ingest assigned partitions=3 */
    assert_int_equal(l1[4], '-');
    assert_int_equal(l1[23], 'Z');
    assert_memory_equal(l1 + 24, " level=info component=ingest assigned partitions=3\n", 51);
    must_contain(l2, "level=warn component=ingest bad row: line one\\nline \"two\"\\tend\\x01\n");
    must_contain(l3,
                 "level=error component=librdkafka client=rdkafka#consumer-1 facility=FAIL "
                 "message=\"broker down: \\\"Connection refused\\\"\\nretry\"\n");
    free(text);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void test_json(void **state)
{
    (void)state;
    use("debug", "json");
    const char *nasty =
        "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 bad \xff\xfe end";
    TL_LOG_DEBUG("runtime", "polled events=%d", 12);
    TL_LOG_ERROR("comp \"x\"", "%s", nasty);
    tl_log_kafka(7, "rdkafka#producer-2", "CONF", "[thrd:app]:   linger.ms = 5");

    char *text = slurp(path);
    tl_arena a;
    tl_arena_init(&a, 4096);
    const tl_json *j = NULL;
    assert_int_equal(check_json_lines(text, &a, &j), 3);
    /* the last line: librdkafka's, with its own fields */
    assert_string_equal(tl_json_str(tl_json_get(j, "component")), "librdkafka");
    assert_string_equal(tl_json_str(tl_json_get(j, "level")), "debug");
    assert_string_equal(tl_json_str(tl_json_get(j, "client")), "rdkafka#producer-2");
    assert_string_equal(tl_json_str(tl_json_get(j, "facility")), "CONF");
    assert_string_equal(tl_json_str(tl_json_get(j, "message")), "[thrd:app]:   linger.ms = 5");

    /* the second: every character comes back, invalid UTF-8 as U+FFFD */
    char *l2 = strchr(text, '\n') + 1;
    char err[200];
    j = tl_json_parse(l2, (size_t)(strchr(l2, '\n') - l2), &a, err, sizeof(err));
    assert_non_null(j);
    assert_string_equal(tl_json_str(tl_json_get(j, "component")), "comp \"x\"");
    assert_string_equal(tl_json_str(tl_json_get(j, "level")), "error");
    assert_string_equal(tl_json_str(tl_json_get(j, "message")),
                        "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 bad "
                        "\xef\xbf\xbd\xef\xbf\xbd end");
    const char *ts = tl_json_str(tl_json_get(j, "ts"));
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    tl_arena_destroy(&a);
    free(text);
}

/* ---- levels --------------------------------------------------------------------------- */

static int formatted;
static int side_effect(void) { return ++formatted; }

static void test_levels(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(tl_log_configure("verbose", "json", path, err, sizeof(err)), -1);
    must_contain(err, "log.level");
    assert_int_equal(tl_log_configure("info", "xml", path, err, sizeof(err)), -1);
    must_contain(err, "log.format");
    assert_int_equal(tl_log_configure("info", "json", "/nonexistent/dir/x.log", err, sizeof(err)),
                     -1);
    must_contain(err, "log.file");
    assert_int_equal(tl_log_format_parse("JSON"), TL_LOG_JSON);
    assert_int_equal(tl_log_level_parse("Warn"), TL_LOG_WARN);

    use("warn", "key_value");
    TL_LOG_DEBUG("x", "debug %d", side_effect());
    TL_LOG_INFO("x", "info %d", side_effect());
    TL_LOG_WARN("x", "warn %d", side_effect());
    TL_LOG_ERROR("x", "error %d", side_effect());
    tl_log_kafka(6, "c", "F", "librdkafka info");      /* syslog 6 = info: filtered */
    tl_log_kafka(4, "c", "F", "librdkafka warning");   /* syslog 4 = warning */
    assert_int_equal(formatted, 2);   /* filtered levels do not even format */
    char *text = slurp(path);
    assert_int_equal(count_lines(text), 3);
    must_contain(text, "level=warn component=x warn 1\n");
    must_contain(text, "level=error component=x error 2\n");
    must_contain(text,
                 "level=warn component=librdkafka client=c facility=F "
                 "message=\"librdkafka warning\"\n");
    must_not_contain(text, "info");
    free(text);
}

/* ---- log.file and reopen -------------------------------------------------------------- */

static void test_reopen(void **state)
{
    (void)state;
    char rotated[160], rotated2[160];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    snprintf(rotated2, sizeof(rotated2), "%s.2", path);
    use("info", "key_value");
    TL_LOG_INFO("t", "first");
    assert_int_equal(rename(path, rotated), 0);
    TL_LOG_INFO("t", "second");            /* still the renamed file: not reopened yet */
    assert_int_equal(tl_log_reopen(), 0);
    TL_LOG_INFO("t", "third");

    char *old = slurp(rotated), *cur = slurp(path);
    assert_int_equal(count_lines(old), 2);
    must_contain(old, "first");
    must_contain(old, "second");
    assert_int_equal(count_lines(cur), 1);
    must_contain(cur, "third");
    free(old);
    free(cur);

    /* SIGHUP: the handler only flags; the next line reopens */
    tl_log_reopen_on_sighup();
    assert_int_equal(rename(path, rotated2), 0);
    assert_int_equal(raise(SIGHUP), 0);
    TL_LOG_INFO("t", "fourth");
    old = slurp(rotated2);
    cur = slurp(path);
    assert_int_equal(count_lines(old), 1);
    must_contain(old, "third");
    assert_int_equal(count_lines(cur), 1);
    must_contain(cur, "fourth");
    free(old);
    free(cur);
    signal(SIGHUP, SIG_DFL);
}

/* ---- threads -------------------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 2000

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[3000];
    memset(pad, 'a' + id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++) {
        /* long lines (over PIPE_BUF) and short ones, and librdkafka's entry point */
        if (i % 3 == 0) TL_LOG_INFO("thread", "id=%d i=%d pad=%s", id, i, pad + (i % 2900));
        else if (i % 3 == 1) TL_LOG_INFO("thread", "id=%d i=%d", id, i);
        else tl_log_kafka(6, "rdkafka#consumer-9", "THRD", pad + 2990);
        if (id == 0 && i % 500 == 0) tl_log_reopen();
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    use("info", "json");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    char *text = slurp(path);
    tl_arena a;
    tl_arena_init(&a, 1 << 16);
    assert_int_equal(check_json_lines(text, &a, NULL), THREADS * PER_THREAD);
    tl_arena_destroy(&a);
    free(text);
}

/* ---- secrets -------------------------------------------------------------------------- */

static void test_secrets(void **state)
{
    (void)state;
    tl_config *c = tl_config_new(tl_app_config);
    char err[512];
    assert_int_equal(tl_config_set_kv(c, "kafka.sasl.password=SECRET1", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_config_set_kv(c, "schema.registry.basic.auth.user.info=alice:pw-SECRET2",
                                      "-X", err, sizeof(err)),
                     0);
    assert_int_equal(tl_config_set_kv(c, "kafka.sasl.username=bob", "-X", err, sizeof(err)), 0);
    assert_int_equal(
        tl_config_set_kv(c, "kafka.ssl.key.location=/k/SECRET3.pem", "-X", err, sizeof(err)), 0);
    assert_int_equal(
        tl_config_set_kv(c, "kafka.bootstrap.servers=SECRET0host:9092", "-X", err, sizeof(err)), 0);

    for (int f = 0; f < 2; f++) {
        use("debug", f ? "json" : "key_value");
        /* a value that reaches a message by any route */
        TL_LOG_ERROR("sink", "auth failed password=%s twice=%sSECRET1",
                     tl_config_kafka(c, "sasl.password"), "SECRET1");
        TL_LOG_INFO("ingest", "registry user=%s",
                    tl_config_str(c, "schema.registry.basic.auth.user.info"));
        /* librdkafka's configuration dump: the properties it redacts itself, and those it
         * prints but tally counts as secret (short values too) */
        tl_log_kafka(7, "rdkafka#producer-1", "CONF", "[thrd:app]:   sasl.password = [redacted]");
        tl_log_kafka(7, "rdkafka#producer-1", "CONF", "[thrd:app]:   sasl.username = bob");
        tl_log_kafka(7, "rdkafka#producer-1", "CONF",
                     "[thrd:app]:   ssl.key.location = /k/SECRET3.pem");
        tl_log_kafka(7, "rdkafka#producer-1", "SASL", "SECRET1 in a librdkafka message");
        tl_log_kafka(7, "rdkafka#producer-1", "CONF",
                     "[thrd:app]:   metadata.broker.list = SECRET0host:9092");

        char *text = slurp(path);
        assert_int_equal(count_lines(text), 7);
        must_not_contain(text, "SECRET1");
        must_not_contain(text, "SECRET2");
        must_not_contain(text, "SECRET3");
        must_not_contain(text, "= bob");
        must_contain(text, "[redacted]");
        must_contain(text, "sasl.username = [redacted]");
        must_contain(text, "metadata.broker.list = SECRET0host:9092");   /* not a secret */
        if (f) {
            tl_arena a;
            tl_arena_init(&a, 4096);
            assert_int_equal(check_json_lines(text, &a, NULL), 7);
            tl_arena_destroy(&a);
        }
        free(text);
        assert_int_equal(unlink(path), 0);
    }
    /* a secret in a value that fails validation is not echoed either */
    assert_int_equal(
        tl_config_set_kv(c, "schema.registry.password=SECRET4", "-X", err, sizeof(err)), -1);
    must_not_contain(err, "SECRET4");
    tl_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_key_value), FX_TEST(test_json),    FX_TEST(test_levels),
        FX_TEST(test_reopen),    FX_TEST(test_threads), FX_TEST(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
