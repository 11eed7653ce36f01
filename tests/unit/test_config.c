/*
 * test_config.c -- lib/config.c: defaults, properties files (comments, blank lines,
 * whitespace, CRLF), precedence file < TALLY_* environment < -X, errors naming the
 * key and where it came from (FILE:LINE, the variable, -X) for unknown keys, bad
 * numbers and booleans and out-of-range values, kafka.* pass-through with the
 * consumer./producer. side keys winning over shared ones, secrets kept out of error
 * messages, and `config list` printing every key of the tables.
 */
#define _GNU_SOURCE   /* open_memstream, setenv */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "app/config.h"
#include "fixtures.h"

extern char **environ;

static char tmpdir[64];
static char path[128];
static tl_config *cfg;

/* Removes every TALLY_* variable, so the test does not depend on its environment. */
static void clear_tally_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "TALLY_", 6) != 0) continue;
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (n >= sizeof(name)) n = sizeof(name) - 1;
            memcpy(name, *e, n);
            name[n] = '\0';
            break;
        }
        if (!name[0]) return;
        unsetenv(name);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_tally_env();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tally_cfg_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof(path), "%s/tally.properties", tmpdir);
    cfg = tl_config_new(tl_app_config);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tl_config_destroy(cfg);
    cfg = NULL;
    unlink(path);
    clear_tally_env();
    return rmdir(tmpdir);
}

static void write_props(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void must_contain(const char *err, const char *want)
{
    if (!strstr(err, want)) fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void must_not_contain(const char *err, const char *secret)
{
    if (strstr(err, secret)) fail_msg("error \"%s\" reveals \"%s\"", err, secret);
}

static void set_ok(const char *kv)
{
    char err[512] = "";
    if (tl_config_set_kv(cfg, kv, "-X", err, sizeof(err)) != 0) fail_msg("-X %s: %s", kv, err);
}

/* ---- defaults ------------------------------------------------------------------------- */

static int count_cb(void *arg, const char *name, const char *value)
{
    (void)name, (void)value;
    (*(int *)arg)++;
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    assert_string_equal(tl_config_str(cfg, "log.level"), "info");
    assert_string_equal(tl_config_str(cfg, "state.dir"), "./tally-state");
    assert_int_equal(tl_config_int(cfg, "state.cache.mb"), 256);
    assert_int_equal(tl_config_int(cfg, "batch.max.events"), 100000);
    assert_int_equal(tl_config_int(cfg, "commit.interval.ms"), 100);
    assert_string_equal(tl_config_str(cfg, "input.topics"), "tally.events");
    assert_string_equal(tl_config_str(cfg, "schema.registry.url"), "");
    assert_int_equal(tl_config_int(cfg, "ingest.ts.min"), 946684800000LL);
    assert_int_equal(tl_config_int(cfg, "ingest.ts.max"), 4102444800000LL);
    assert_true(tl_config_double(cfg, "features.half.life.ms") == 86400000.0);
    assert_true(tl_config_double(cfg, "features.alpha") == 0.5);
    assert_true(tl_config_double(cfg, "features.beta") == 0.5);
    assert_true(tl_config_double(cfg, "features.heat.impression") == 0.1);
    assert_true(tl_config_double(cfg, "features.heat.purchase") == 5);
    assert_true(tl_config_double(cfg, "features.epsilon") == 1e-6);
    assert_string_equal(tl_config_str(cfg, "features.dims"), "category");
    assert_int_equal(tl_config_int(cfg, "attribution.lookback.ms"), 604800000);
    assert_int_equal(tl_config_int(cfg, "attribution.max.touchpoints"), 50);
    assert_int_equal(tl_config_bool(cfg, "attribution.reset.on.conversion"), 1);
    assert_true(tl_config_double(cfg, "attribution.time.decay.half.life.ms") == 604800000.0);
    assert_string_equal(tl_config_str(cfg, "attribution.touch.types"),
                        "IMPRESSION,BROWSE,CLICK,FAVORITE,ADD_TO_CART");
    assert_string_equal(tl_config_str(cfg, "output.interest.topic"), "tally.interest-deltas");
    assert_string_equal(tl_config_str(cfg, "dlq.topic"), "tally.dlq");
    assert_int_equal(tl_config_int(cfg, "sink.flush.timeout.ms"), 60000);
    assert_null(tl_config_kafka(cfg, "bootstrap.servers"));
    int n = 0;
    assert_int_equal(tl_config_each_kafka(cfg, "consumer", count_cb, &n), 0);
    assert_int_equal(tl_config_each_kafka(cfg, "producer", count_cb, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- files ------------------------------------------------------------------------------ */

static void test_file_loading(void **state)
{
    (void)state;
    write_props("# a comment\n"
                "! also a comment\n"
                "\n"
                "   \t\n"
                "   features.alpha = 0.25   \n"
                "state.dir=/var/lib/tally\n"
                "  # an indented comment with key=value inside\n"
                "kafka.sasl.jaas.config=a=b c=d\n"
                "batch.max.events=\t42\r\n"
                "attribution.reset.on.conversion=FALSE\n"
                "schema.registry.url=\n"
                "log.level=debug");   /* no final newline */
    char err[512] = "";
    if (tl_config_load_file(cfg, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_true(tl_config_double(cfg, "features.alpha") == 0.25);
    assert_string_equal(tl_config_str(cfg, "state.dir"), "/var/lib/tally");
    assert_string_equal(tl_config_kafka(cfg, "sasl.jaas.config"), "a=b c=d");
    assert_int_equal(tl_config_int(cfg, "batch.max.events"), 42);
    assert_int_equal(tl_config_bool(cfg, "attribution.reset.on.conversion"), 0);
    assert_string_equal(tl_config_str(cfg, "schema.registry.url"), "");
    assert_string_equal(tl_config_str(cfg, "log.level"), "debug");
    /* untouched keys keep their defaults */
    assert_true(tl_config_double(cfg, "features.beta") == 0.5);

    assert_int_equal(tl_config_load_file(cfg, "/nonexistent/tally.properties", err, sizeof(err)),
                     -1);
    must_contain(err, "/nonexistent/tally.properties");
}

static void test_bool_forms(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "True", "1", "yes", "YES"};
    static const char *const no[] = {"false", "FALSE", "0", "no", "No"};
    char kv[128];
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        set_ok("attribution.reset.on.conversion=false");
        snprintf(kv, sizeof(kv), "attribution.reset.on.conversion=%s", yes[i]);
        set_ok(kv);
        assert_int_equal(tl_config_bool(cfg, "attribution.reset.on.conversion"), 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
        set_ok("attribution.reset.on.conversion=true");
        snprintf(kv, sizeof(kv), "attribution.reset.on.conversion=%s", no[i]);
        set_ok(kv);
        assert_int_equal(tl_config_bool(cfg, "attribution.reset.on.conversion"), 0);
    }
}

/* ---- precedence ------------------------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    char err[512] = "";
    write_props("features.alpha=0.1\n"
                "features.beta=0.2\n"
                "state.cache.mb=64\n"
                "kafka.bootstrap.servers=file:9092\n"
                "kafka.client.id=from-file\n");
    setenv("TALLY_FEATURES_ALPHA", "0.3", 1);
    setenv("TALLY_STATE_CACHE_MB", "128", 1);
    setenv("TALLY_KAFKA_BOOTSTRAP_SERVERS", "env:9092", 1);
    setenv("TALLY_ATTRIBUTION_RESET_ON_CONVERSION", "no", 1);

    assert_int_equal(tl_config_load_file(cfg, path, err, sizeof(err)), 0);
    if (tl_config_load_env(cfg, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_true(tl_config_double(cfg, "features.alpha") == 0.3);   /* env over file */
    assert_true(tl_config_double(cfg, "features.beta") == 0.2);    /* file over default */
    assert_int_equal(tl_config_int(cfg, "state.cache.mb"), 128);
    assert_int_equal(tl_config_bool(cfg, "attribution.reset.on.conversion"), 0);
    assert_string_equal(tl_config_kafka(cfg, "bootstrap.servers"), "env:9092");
    assert_string_equal(tl_config_kafka(cfg, "client.id"), "from-file");

    set_ok("features.alpha=0.4");                                   /* -X over env */
    set_ok(" kafka.bootstrap.servers = x:9092 ");
    assert_true(tl_config_double(cfg, "features.alpha") == 0.4);
    assert_int_equal(tl_config_int(cfg, "state.cache.mb"), 128);
    assert_string_equal(tl_config_kafka(cfg, "bootstrap.servers"), "x:9092");
}

static void test_env_bad_value(void **state)
{
    (void)state;
    char err[512] = "";
    setenv("TALLY_BATCH_MAX_EVENTS", "lots", 1);
    assert_int_equal(tl_config_load_env(cfg, err, sizeof(err)), -1);
    must_contain(err, "TALLY_BATCH_MAX_EVENTS");
    must_contain(err, "batch.max.events");
    assert_int_equal(tl_config_int(cfg, "batch.max.events"), 100000);
}

/* A TALLY_ variable under a configuration section that names no key is refused, as an
 * unknown -X key is; TALLY_ names outside the sections are left alone. */
static void test_env_unknown_key(void **state)
{
    (void)state;
    char err[512] = "";
    setenv("TALLY_BIN", "/usr/bin/tally", 1);
    setenv("TALLY_TEST_BOOTSTRAP", "x:1", 1);
    assert_int_equal(tl_config_load_env(cfg, err, sizeof(err)), 0);
    setenv("TALLY_STATE_DIRR", "/x", 1);
    assert_int_equal(tl_config_load_env(cfg, err, sizeof(err)), -1);
    must_contain(err, "TALLY_STATE_DIRR");
    must_contain(err, "no such configuration key");
    unsetenv("TALLY_STATE_DIRR");
    setenv("TALLY_MODEL_WARMUP_EXAMPLE", "3", 1);
    assert_int_equal(tl_config_load_env(cfg, err, sizeof(err)), -1);
    must_contain(err, "TALLY_MODEL_WARMUP_EXAMPLE");
    unsetenv("TALLY_MODEL_WARMUP_EXAMPLE");
    unsetenv("TALLY_BIN");
    unsetenv("TALLY_TEST_BOOTSTRAP");
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_unknown_key(void **state)
{
    (void)state;
    char err[512] = "", want[256];
    write_props("# header\n"
                "features.alpha=0.7\n"
                "\n"
                "features.alpah=1\n"
                "features.beta=0.9\n");
    assert_int_equal(tl_config_load_file(cfg, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4", path);
    must_contain(err, want);
    must_contain(err, "features.alpah");
    assert_true(tl_config_double(cfg, "features.alpha") == 0.7);   /* before the error */
    assert_true(tl_config_double(cfg, "features.beta") == 0.5);    /* after: not applied */

    assert_int_equal(tl_config_set_kv(cfg, "no.such.key=1", "-X", err, sizeof(err)), -1);
    must_contain(err, "-X");
    must_contain(err, "no.such.key");

    assert_int_equal(tl_config_set_kv(cfg, "kafka.=1", "-X", err, sizeof(err)), -1);
    must_contain(err, "kafka.");

    /* a line that is not key=value */
    write_props("features.alpha=0.7\n"
                "just some words\n");
    assert_int_equal(tl_config_load_file(cfg, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2", path);
    must_contain(err, want);
}

typedef struct bad_case {
    const char *key, *value;
} bad_case;

static void test_bad_values(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"state.cache.mb", "12abc"},
        {"state.cache.mb", ""},
        {"state.cache.mb", "1.5"},
        {"state.cache.mb", "0"},                        /* range 1..1048576 */
        {"state.cache.mb", "1048577"},
        {"batch.max.events", "99999999999999999999"},   /* overflows int64 */
        {"batch.max.events", "-1"},
        {"ingest.ts.min", "1e3"},
        {"attribution.max.touchpoints", "1001"},
        {"attribution.lookback.ms", "-5"},
        {"features.alpha", "abc"},
        {"features.alpha", "-0.1"},
        {"features.alpha", "nan"},
        {"features.alpha", "inf"},
        {"features.alpha", "1e400"},
        {"features.alpha", "0.5x"},
        {"features.half.life.ms", "0"},
        {"features.half.life.ms", ""},
        {"attribution.reset.on.conversion", "maybe"},
        {"attribution.reset.on.conversion", "2"},
        {"attribution.reset.on.conversion", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const bad_case *c = &cases[i];
        tl_config *fresh = tl_config_new(tl_app_config);
        char err[512] = "", kv[256];
        /* through -X */
        snprintf(kv, sizeof(kv), "%s=%s", c->key, c->value);
        if (tl_config_set_kv(fresh, kv, "-X", err, sizeof(err)) != -1)
            fail_msg("%s was accepted", kv);
        must_contain(err, c->key);
        must_contain(err, "-X");
        /* the old value stays */
        tl_config *ref = tl_config_new(tl_app_config);
        assert_string_equal(tl_config_str(fresh, c->key), tl_config_str(ref, c->key));
        tl_config_destroy(ref);
        /* through a file: FILE:LINE and the key */
        char text[300], want[200];
        snprintf(text, sizeof(text), "# bad value on line 2\n%s\n", kv);
        write_props(text);
        if (tl_config_load_file(fresh, path, err, sizeof(err)) != -1)
            fail_msg("file with %s was accepted", kv);
        snprintf(want, sizeof(want), "%s:2", path);
        must_contain(err, want);
        must_contain(err, c->key);
        tl_config_destroy(fresh);
    }

    /* the bounds themselves are accepted */
    set_ok("state.cache.mb=1");
    set_ok("state.cache.mb=1048576");
    assert_int_equal(tl_config_int(cfg, "state.cache.mb"), 1048576);
    set_ok("attribution.max.touchpoints=1000");
    set_ok("features.alpha=0");
    set_ok("ingest.ts.min=-5");   /* unbounded */
    assert_int_equal(tl_config_int(cfg, "ingest.ts.min"), -5);
    set_ok("features.epsilon=2.5e-3");
    assert_true(tl_config_double(cfg, "features.epsilon") == 2.5e-3);
}

/* ---- kafka pass-through ------------------------------------------------------------------ */

typedef struct kv_list {
    char names[32][64], values[32][64];
    int n;
    int stop_at;   /* return 7 at this call (1-based); 0 = never */
} kv_list;

static int collect(void *arg, const char *name, const char *value)
{
    kv_list *l = arg;
    assert_true(l->n < 32);
    snprintf(l->names[l->n], 64, "%s", name);
    snprintf(l->values[l->n], 64, "%s", value);
    l->n++;
    return l->n == l->stop_at ? 7 : 0;
}

/* The value librdkafka ends up with when the properties are set in call order. */
static const char *final_value(const kv_list *l, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) v = l->values[i];
    return v;
}

static void test_kafka_sides(void **state)
{
    (void)state;
    /* side keys set before and after the shared ones: they win either way */
    set_ok("kafka.producer.linger.ms=5");
    set_ok("kafka.bootstrap.servers=b:9092");
    set_ok("kafka.linger.ms=1");
    set_ok("kafka.consumer.group.id=g1");
    set_ok("kafka.auto.offset.reset=latest");
    set_ok("kafka.consumer.auto.offset.reset=earliest");
    set_ok("kafka.linger.ms=2");   /* replaces the shared 1 */

    kv_list p = {.n = 0};
    assert_int_equal(tl_config_each_kafka(cfg, "producer", collect, &p), 0);
    assert_string_equal(final_value(&p, "bootstrap.servers"), "b:9092");
    assert_string_equal(final_value(&p, "linger.ms"), "5");
    assert_string_equal(final_value(&p, "auto.offset.reset"), "latest");
    assert_null(final_value(&p, "group.id"));
    for (int i = 0; i < p.n; i++) {
        if (strncmp(p.names[i], "consumer.", 9) == 0 || strncmp(p.names[i], "producer.", 9) == 0)
            fail_msg("prefix passed through: %s", p.names[i]);
    }
    assert_int_equal(p.n, 4);   /* bootstrap, linger 2, offset reset, linger 5 */

    kv_list c = {.n = 0};
    assert_int_equal(tl_config_each_kafka(cfg, "consumer", collect, &c), 0);
    assert_string_equal(final_value(&c, "bootstrap.servers"), "b:9092");
    assert_string_equal(final_value(&c, "linger.ms"), "2");
    assert_string_equal(final_value(&c, "group.id"), "g1");
    assert_string_equal(final_value(&c, "auto.offset.reset"), "earliest");
    assert_int_equal(c.n, 5);

    assert_string_equal(tl_config_kafka(cfg, "linger.ms"), "2");
    assert_string_equal(tl_config_kafka(cfg, "bootstrap.servers"), "b:9092");
    assert_null(tl_config_kafka(cfg, "group.id"));

    /* a non-zero callback result stops the walk and is returned */
    kv_list s = {.n = 0, .stop_at = 2};
    assert_int_equal(tl_config_each_kafka(cfg, "consumer", collect, &s), 7);
    assert_int_equal(s.n, 2);
}

/* ---- secrets -------------------------------------------------------------------------- */

static void test_secret_names(void **state)
{
    (void)state;
    static const char *const secret[] = {
        "kafka.sasl.password",         "kafka.sasl.username",
        "kafka.sasl.jaas.config",      "kafka.ssl.key.password",
        "kafka.ssl.keystore.password", "schema.registry.basic.auth.user.info",
        "kafka.client.secret",
    };
    static const char *const plain[] = {
        "kafka.bootstrap.servers", "features.alpha", "schema.registry.url",
        "kafka.ssl.ca.location",   "state.dir",      "kafka.security.protocol",
    };
    for (size_t i = 0; i < sizeof(secret) / sizeof(*secret); i++)
        if (!tl_config_is_secret(secret[i])) fail_msg("%s is not treated as secret", secret[i]);
    for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++)
        if (tl_config_is_secret(plain[i])) fail_msg("%s is treated as secret", plain[i]);
}

/* Whatever goes wrong on a line that names a secret, its value is not in the error. */
static void test_secret_not_in_errors(void **state)
{
    (void)state;
    char err[512];

    /* an unknown secret-looking key */
    assert_int_equal(
        tl_config_set_kv(cfg, "schema.registry.password=hunter2", "-X", err, sizeof(err)), -1);
    must_contain(err, "schema.registry.password");
    must_not_contain(err, "hunter2");

    write_props("sasl.password=hunter2\n");
    assert_int_equal(tl_config_load_file(cfg, path, err, sizeof(err)), -1);
    must_not_contain(err, "hunter2");

    /* properties-file "key value" and "key: value" forms are not accepted; the error
     * says which line, but must not echo the password */
    write_props("kafka.bootstrap.servers=b:9092\n"
                "kafka.sasl.password hunter2\n");
    memset(err, 0, sizeof(err));
    assert_int_equal(tl_config_load_file(cfg, path, err, sizeof(err)), -1);
    char want[200];
    snprintf(want, sizeof(want), "%s:2", path);
    must_contain(err, want);
    must_not_contain(err, "hunter2");

    memset(err, 0, sizeof(err));
    assert_int_equal(tl_config_set_kv(cfg, "kafka.sasl.password: hunter2", "-X", err, sizeof(err)),
                     -1);
    must_not_contain(err, "hunter2");

    /* a non-secret bad value is shown, which is what makes the error useful */
    assert_int_equal(tl_config_set_kv(cfg, "features.alpha=zzz", "-X", err, sizeof(err)), -1);
    must_contain(err, "zzz");
}

/* ---- list ------------------------------------------------------------------------------ */

static char *list_text(int md)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    tl_config_list(tl_app_config, f, md);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void test_list(void **state)
{
    (void)state;
    char *text = list_text(0), *md = list_text(1);
    int keys = 0;
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++) {
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            keys++;
            /* plain form: the key starts a line */
            char want[200];
            snprintf(want, sizeof(want), "\n%s (", d->key);
            if (!strstr(text, want) && strncmp(text, want + 1, strlen(want + 1)) != 0)
                fail_msg("`config list` lacks %s", d->key);
            snprintf(want, sizeof(want), "| `%s` |", d->key);
            if (!strstr(md, want)) fail_msg("`config list --md` lacks %s", d->key);
            if (d->doc && !strstr(text, d->doc)) fail_msg("doc of %s missing", d->key);
        }
    }
    /* one table row per key, no more */
    int rows = 0;
    for (const char *p = md; (p = strstr(p, "\n| `")); p++) rows++;
    assert_int_equal(rows, keys);
    /* a few keys written out here, so an emptied table cannot pass */
    static const char *const known[] = {
        "state.dir",
        "state.cache.mb",
        "batch.max.events",
        "commit.interval.ms",
        "input.topics",
        "schema.registry.url",
        "dlq.topic",
        "features.half.life.ms",
        "features.dims",
        "features.epsilon",
        "attribution.lookback.ms",
        "attribution.touch.types",
        "output.credit.topic",
        "sink.flush.timeout.ms",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (!strstr(text, known[i]) || !strstr(md, known[i])) fail_msg("%s not listed", known[i]);
    assert_true(keys >= (int)(sizeof(known) / sizeof(*known)));
    /* defaults and ranges are printed */
    if (!strstr(md, "| `features.half.life.ms` | double | `86400000` |"))
        fail_msg("markdown row of features.half.life.ms is wrong:\n%s", md);
    must_contain(text, "state.cache.mb (int, default \"256\"");
    free(text);
    free(md);
}

/* The printed ranges are the real bounds: each reads back to the table's min and max
 * (a bound rounded for printing would document a limit the code does not apply). */
static void test_list_ranges_exact(void **state)
{
    (void)state;
    char *text = list_text(0);
    char wrong[256] = "";
    int checked = 0;
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++) {
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            if (d->min > d->max) continue;
            char want[200];
            snprintf(want, sizeof(want), "\n%s (", d->key);
            const char *line = strstr(text, want);
            assert_non_null(line);
            const char *r = strstr(line, ", range ");
            const char *eol = strchr(line + 1, '\n');
            if (!r || (eol && r > eol)) fail_msg("no range printed for %s", d->key);
            /* "range LO..HI)": split at the "..", since strtod would take "1." */
            const char *dots = strstr(r + 8, "..");
            const char *close = dots ? strchr(dots, ')') : NULL;
            if (!dots || !close) fail_msg("range of %s unreadable", d->key);
            char lo_s[64], hi_s[64];
            snprintf(lo_s, sizeof(lo_s), "%.*s", (int)(dots - (r + 8)), r + 8);
            snprintf(hi_s, sizeof(hi_s), "%.*s", (int)(close - (dots + 2)), dots + 2);
            double lo = strtod(lo_s, NULL), hi = strtod(hi_s, NULL);
            if ((lo != d->min || hi != d->max) && !*wrong)
                snprintf(wrong, sizeof(wrong),
                         "range of %s printed as %s..%s, table says "
                         "%.17g..%.17g",
                         d->key, lo_s, hi_s, d->min, d->max);
            checked++;
        }
    }
    free(text);
    if (*wrong) fail_msg("%s", wrong);
    assert_true(checked >= 10);

    /* the out-of-range error states the real bound too */
    char err[512] = "";
    assert_int_equal(tl_config_set_kv(cfg, "state.cache.mb=1048577", "-X", err, sizeof(err)), -1);
    must_contain(err, "1048576");
}

/* ---- rows declared beside a component, filled into its struct ------------------------- */

typedef struct fill_cfg {
    const char *name;
    int count;
    int64_t big;
    double ratio;
    int on;
    int colour;
} fill_cfg;

static const char *const colours[] = {"red", "green", "blue", NULL};

static const tl_config_def fill_defs[] = {
    {"t.name", TL_CT_STRING, "x", TL_NORANGE, "a string", TL_CFG_FIELD(fill_cfg, name)},
    {"t.count", TL_CT_INT, "3", 0, 100, "an int", TL_CFG_FIELD(fill_cfg, count)},
    {"t.big", TL_CT_INT, "5000000000", TL_NORANGE, "an int64", TL_CFG_FIELD(fill_cfg, big)},
    {"t.ratio", TL_CT_DOUBLE, "0.5", 0, 1, "a double", TL_CFG_FIELD(fill_cfg, ratio)},
    {"t.on", TL_CT_BOOL, "false", TL_NORANGE, "a bool", TL_CFG_FIELD(fill_cfg, on)},
    {"t.colour", TL_CT_ENUM, "green", TL_NORANGE, "an enum",
     TL_CFG_ENUM(fill_cfg, colour, colours)},
    {"t.unbound", TL_CT_INT, "1", TL_NORANGE, "no field", TL_CFG_NOFIELD},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

static const tl_config_component fill_components[] = {{"t", fill_defs}, {NULL, NULL}};

static void test_fill(void **state)
{
    (void)state;
    char err[256] = "";
    tl_config *c = tl_config_new(fill_components);
    fill_cfg f;
    memset(&f, 0x5a, sizeof(f));
    assert_int_equal(tl_config_fill(c, fill_defs, &f, err, sizeof(err)), 0);
    assert_string_equal(f.name, "x");
    assert_int_equal(f.count, 3);
    assert_true(f.big == 5000000000LL);
    assert_true(f.ratio == 0.5);
    assert_int_equal(f.on, 0);
    assert_int_equal(f.colour, 1);
    assert_int_equal(tl_config_set(c, "t.name", "y", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_config_set(c, "t.big", "-7", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_config_set(c, "t.on", "yes", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_config_set(c, "t.colour", "blue", "-X", err, sizeof(err)), 0);
    assert_int_equal(tl_config_fill(c, fill_defs, &f, err, sizeof(err)), 0);
    assert_string_equal(f.name, "y");
    assert_true(f.big == -7);
    assert_int_equal(f.on, 1);
    assert_int_equal(f.colour, 2);
    /* an ENUM takes only its choices, and the error lists them */
    assert_int_equal(tl_config_set(c, "t.colour", "Blue", "-X", err, sizeof(err)), -1);
    assert_string_equal(err, "-X: key 't.colour': expected red, green or blue, got 'Blue'");
    assert_string_equal(tl_config_str(c, "t.colour"), "blue");
    tl_config_destroy(c);
}

/* Rows of a component the program does not list, or a field of the wrong size: an error
 * (a program's mistake, found by its first test), never a write out of bounds. */
typedef struct small_cfg {
    char flag;
} small_cfg;

static void test_fill_errors(void **state)
{
    (void)state;
    char err[256] = "";
    tl_config *c = tl_config_new(tl_app_config);
    fill_cfg f;
    assert_int_equal(tl_config_fill(c, fill_defs, &f, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.name"));
    tl_config_destroy(c);
    const tl_config_def bad[] = {
        {"t.count", TL_CT_INT, "3", 0, 100, "an int", TL_CFG_FIELD(small_cfg, flag)},
        {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
    };
    c = tl_config_new(fill_components);
    small_cfg sm = {0};
    assert_int_equal(tl_config_fill(c, bad, &sm, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not fit"));
    assert_int_equal(sm.flag, 0);
    tl_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_defaults),
        FX_TEST(test_file_loading),
        FX_TEST(test_bool_forms),
        FX_TEST(test_precedence),
        FX_TEST(test_env_bad_value),
        FX_TEST(test_env_unknown_key),
        FX_TEST(test_unknown_key),
        FX_TEST(test_bad_values),
        FX_TEST(test_kafka_sides),
        FX_TEST(test_secret_names),
        FX_TEST(test_secret_not_in_errors),
        FX_TEST(test_list),
        FX_TEST(test_list_ranges_exact),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_fill_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
