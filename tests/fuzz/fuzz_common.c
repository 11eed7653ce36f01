/*
 * fuzz_common.c -- the helpers of fuzz_common.h: failure reports, scratch directory,
 * files, event comparison, and the schema shapes the codec harnesses decode with.
 *
 * The schemas: the codec resolves any writer schema to its reader, and has a fast path
 * for writers whose canonical form is the reader's. So the directory holds writers of
 * every kind the resolution handles (older and newer producers, reordered fields,
 * promoted types, the reader restated with the same canonical form, unions with extra
 * branches), writers it must refuse (a missing required field, another record, a
 * primitive), and readers of other shapes (null second in a union, non-null defaults,
 * narrower types, non-event fields) that are also registered as writers, so fuzz_codec
 * reaches the fast path under each reader.
 */
#define _GNU_SOURCE
#include "app/config.h"
#include "fuzz_common.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nFUZZ CHECK FAILED at %s:%d: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* ---- scratch directory ---------------------------------------------------------------- */

static char tmpdir[512];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void fuzz_rmtree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void remove_tmpdir(void)
{
    if (tmpdir[0]) fuzz_rmtree(tmpdir);
}

const char *fuzz_tmpdir(void) { return tmpdir; }

static tl_arena arena;

static void destroy_arena(void) { tl_arena_destroy(&arena); }

tl_arena *fuzz_arena(void) { return &arena; }

void fuzz_init(void)
{
    if (tmpdir[0]) return;
    tl_arena_init(&arena, 64 * 1024);
    atexit(destroy_arena);
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/tally-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", tmpdir, strerror(errno));
        abort();
    }
    atexit(remove_tmpdir);
    char err[256];
    const char *dest = getenv("TALLY_FUZZ_LOG");
    int to_stderr = dest && !strcmp(dest, "stderr");
    if (tl_log_configure("debug", "key_value", to_stderr ? "" : "/dev/null", err, sizeof(err)) !=
        0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
}

static FILE *devnull;

static void close_devnull(void)
{
    if (devnull) fclose(devnull);
}

const tl_json *fuzz_run_json_cmd(int (*cmd)(int, char **), int argc, char **argv,
                                 const char *out_path)
{
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        if (!devnull) fuzz_fail(__FILE__, __LINE__, "devnull", "cannot open /dev/null");
        atexit(close_devnull);
    }
    unlink(out_path);
    FILE *real_stderr = stderr;
    stderr = devnull;
    int rc = cmd(argc, argv);
    stderr = real_stderr;
    FUZZ_CHECK(rc == 0 || rc == 1, "%s: exit code %d", argv[0], rc);
    if (rc != 0) return NULL;
    size_t n;
    char *text = fuzz_read_file(out_path, &n);
    FUZZ_CHECK(text != NULL, "exit 0 but no %s", out_path);
    char jerr[128];
    const tl_json *j = tl_json_parse(text, n, &arena, jerr, sizeof(jerr));
    FUZZ_CHECK(j && j->type == TL_JSON_OBJECT, "the output is not a JSON object: %s: %.300s", jerr,
               text);
    free(text);
    return j;
}

/* ---- files ---------------------------------------------------------------------------- */

void fuzz_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

char *fuzz_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = '\0';
    *n = len;
    return buf;
}

/* ---- events --------------------------------------------------------------------------- */

int fuzz_str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

int fuzz_events_identical(const tl_event *a, const tl_event *b, const char **field)
{
#define DIFF(name, cond)                                                                           \
    if (!(cond)) {                                                                                 \
        *field = name;                                                                             \
        return 0;                                                                                  \
    }
    DIFF("event_id", fuzz_str_eq(a->event_id, b->event_id));
    DIFF("user_id", fuzz_str_eq(a->user_id, b->user_id));
    DIFF("item_id", fuzz_str_eq(a->item_id, b->item_id));
    DIFF("category_id", fuzz_str_eq(a->category_id, b->category_id));
    DIFF("channel", fuzz_str_eq(a->channel, b->channel));
    DIFF("campaign", fuzz_str_eq(a->campaign, b->campaign));
    DIFF("type", a->type == b->type);
    DIFF("ts", a->ts == b->ts);
    DIFF("has_dwell", a->has_dwell == b->has_dwell);
    DIFF("dwell_ms", !a->has_dwell || a->dwell_ms == b->dwell_ms);
    DIFF("has_value", a->has_value == b->has_value);
    DIFF("value", !a->has_value || !memcmp(&a->value, &b->value, sizeof(double)));
    DIFF("has_propensity", a->has_propensity == b->has_propensity);
    DIFF("propensity",
         !a->has_propensity || !memcmp(&a->propensity, &b->propensity, sizeof(double)));
    DIFF("partition", a->partition == b->partition);
    DIFF("offset", a->offset == b->offset);
#undef DIFF
    return 1;
}

static void put_member_str(tl_buf *b, const char *k, const char *v)
{
    tl_json_put_key(b, k);
    tl_json_put_str(b, v);
}

void fuzz_event_to_json(tl_buf *b, const tl_event *ev)
{
    tl_buf_puts(b, "{\"event_id\":");
    tl_json_put_str(b, ev->event_id);
    put_member_str(b, "user_id", ev->user_id);
    put_member_str(b, "item_id", ev->item_id);
    put_member_str(b, "category_id", ev->category_id);
    put_member_str(b, "channel", ev->channel);
    put_member_str(b, "type", tl_event_type_name(ev->type));
    tl_json_member_i64(b, "ts", ev->ts);
    tl_json_put_key(b, "dwell_ms");
    if (ev->has_dwell) tl_json_put_i64(b, ev->dwell_ms);
    else tl_buf_puts(b, "null");
    tl_json_put_key(b, "value");
    if (ev->has_value) tl_json_put_double(b, ev->value);
    else tl_buf_puts(b, "null");
    tl_json_put_key(b, "propensity");
    if (ev->has_propensity) tl_json_put_double(b, ev->propensity);
    else tl_buf_puts(b, "null");
    put_member_str(b, "campaign", ev->campaign);
    tl_buf_putc(b, '}');
}

/* ---- the codec ----------------------------------------------------------------------- */

typedef struct outcome {
    int rc;
    tl_dlq_reason reason;
    char err[512];
    tl_event ev;
} outcome;

/* Decodes buf on one path. The event starts with a recognisable partition and offset. */
static void decode_on(tl_codec *c, int fast, const uint8_t *buf, size_t len, outcome *o,
                      tl_arena *a)
{
    memset(o, 0, sizeof(*o));
    o->ev.partition = 7;
    o->ev.offset = 123456789;
    o->reason = TL_DLQ_REASON_COUNT;
    tl_codec_set_fast_path(c, fast);
    o->rc = tl_codec_decode(c, buf, len, &o->ev, a, &o->reason, o->err, sizeof(o->err));
    tl_codec_set_fast_path(c, 1);
}

/* Both paths on buf: they agree (see the file comment). Returns the fast path's outcome
 * in *out. */
static void decode_both(tl_codec *c, const uint8_t *data, size_t len, outcome *out, tl_arena *a)
{
    outcome gen;
    uint8_t *buf = malloc(len ? len : 1);
    if (len) memcpy(buf, data, len);
    decode_on(c, 1, buf, len, out, a);
    decode_on(c, 0, buf, len, &gen, a);
    free(buf);
    FUZZ_CHECK(out->rc == gen.rc, "fast path rc %d (%s: %s), generic path rc %d (%s: %s)", out->rc,
               out->rc ? tl_dlq_reason_name(out->reason) : "ok", out->err, gen.rc,
               gen.rc ? tl_dlq_reason_name(gen.reason) : "ok", gen.err);
    FUZZ_CHECK(out->rc == TL_CODEC_OK || out->rc == TL_CODEC_BAD, "rc %d: %s", out->rc, out->err);
    for (int k = 0; k < 2; k++) {
        const outcome *o = k ? &gen : out;
        FUZZ_CHECK(o->ev.partition == 7 && o->ev.offset == 123456789,
                   "%s path changed partition/offset to %d/%lld", k ? "generic" : "fast",
                   (int)o->ev.partition, (long long)o->ev.offset);
    }
    if (out->rc != TL_CODEC_OK) {
        FUZZ_CHECK(out->reason == gen.reason, "fast path reason %s, generic path %s",
                   tl_dlq_reason_name(out->reason), tl_dlq_reason_name(gen.reason));
        FUZZ_CHECK(out->reason >= 0 && out->reason < TL_DLQ_REASON_COUNT, "reason %d",
                   (int)out->reason);
        FUZZ_CHECK(!strcmp(out->err, gen.err), "fast path says \"%s\", generic path \"%s\"",
                   out->err, gen.err);
        FUZZ_CHECK(out->err[0] != '\0', "no message for reason %s",
                   tl_dlq_reason_name(out->reason));
        return;
    }
    const char *field = NULL;
    FUZZ_CHECK(fuzz_events_identical(&out->ev, &gen.ev, &field),
               "the paths decode field %s differently", field);
}

int fuzz_codec_check(tl_codec *c, int32_t reader_id, const uint8_t *buf, size_t len, tl_arena *a)
{
    outcome first;
    decode_both(c, buf, len, &first, a);
    if (first.rc != TL_CODEC_OK) return first.rc;
    tl_buf enc = {0};
    if (tl_codec_encode_event(c, reader_id, &first.ev, &enc) == 0) {
        outcome again;
        decode_both(c, (const uint8_t *)enc.data, enc.len, &again, a);
        FUZZ_CHECK(again.rc == TL_CODEC_OK,
                   "a decoded event, re-encoded, does not decode: "
                   "%s: %s",
                   tl_dlq_reason_name(again.reason), again.err);
        const char *field = NULL;
        FUZZ_CHECK(fuzz_events_identical(&first.ev, &again.ev, &field),
                   "a decoded event, re-encoded and decoded, differs in %s", field);
    }
    tl_buf_free(&enc);
    return first.rc;
}

/* ---- schemas -------------------------------------------------------------------------- */

#define ENUM_TYPE                                                                                  \
    "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"IMPRESSION\",\"BROWSE\","            \
    "\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}"
#define RECORD_HEAD                                                                                \
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
#define IDS                                                                                        \
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"      \
    "{\"name\":\"item_id\",\"type\":\"string\"},"
#define OPT(name, type) "{\"name\":\"" name "\",\"type\":[\"null\",\"" type "\"],\"default\":null}"

const fuzz_schema fuzz_schemas[] = {
    /* The reader written differently (docs, a type as an object, a full enum name, no
     * logicalType): the same canonical form, so it takes the fast path. */
    {2, "restated",
     "{\"namespace\":\"tally\",\"name\":\"BehaviorEvent\",\"type\":\"record\",\"doc\":\"d\","
     "\"fields\":[{\"type\":\"string\",\"name\":\"event_id\",\"doc\":\"id\"},"
     "{\"name\":\"user_id\",\"type\":{\"type\":\"string\"}},{\"name\":\"item_id\",\"type\":\"string\"}," OPT(
         "category_id",
         "string") ","
                   "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"tally.EventType\",\"symbols\":["
                   "\"IMPRESSION\",\"BROWSE\",\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}},"
                   "{\"name\":\"ts\",\"type\":\"long\"}," OPT("channel", "string") "," OPT(
                       "dwell_ms", "int") "," OPT("value", "double") "," OPT("propensity",
                                                                             "double") "]}",
     0},
    /* An older producer: no channel, no propensity. */
    {10, "old",
     RECORD_HEAD IDS OPT("category_id", "string") ",{\"name\":\"type\",\"type\":" ENUM_TYPE "},"
                                                  "{\"name\":\"ts\",\"type\":\"long\"}," OPT(
                                                      "dwell_ms", "int") "," OPT("value",
                                                                                 "double") "]}",
     0},
    /* A newer producer: a new enum symbol, new fields of every complex shape. */
    {11, "new",
     RECORD_HEAD IDS "{\"name\":\"session\",\"type\":\"string\"}," OPT(
         "category_id",
         "string") ","
                   "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
                   "\"IMPRESSION\",\"BROWSE\",\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\",\"SHARE\"]}},"
                   "{\"name\":\"ts\",\"type\":\"long\"}," OPT("channel", "string") "," OPT("dwell_ms", "int") "," OPT(
                       "value",
                       "double") "," OPT("propensity",
                                         "double") ","
                                                   "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
                                                   "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
                                                   "{\"name\":\"device\",\"type\":{\"type\":\"record\",\"name\":\"Device\",\"fields\":["
                                                   "{\"name\":\"os\",\"type\":\"string\"},{\"name\":\"mobile\",\"type\":\"boolean\"},"
                                                   "{\"name\":\"score\",\"type\":\"float\"},"
                                                   "{\"name\":\"hash\",\"type\":{\"type\":\"fixed\",\"name\":\"H4\",\"size\":4}}]}},"
                                                   "{\"name\":\"extra\",\"type\":[\"null\",\"bytes\",\"long\"],\"default\":null}]}",
     0},
    /* Reordered fields, reversed enum, promotable types (int ts, float value, long
     * propensity, bytes channel), a category_id that is not a union. */
    {12, "reordered",
     RECORD_HEAD
     "{\"name\":\"ts\",\"type\":\"int\"},"
     "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
     "\"PURCHASE\",\"ADD_TO_CART\",\"FAVORITE\",\"CLICK\",\"BROWSE\",\"IMPRESSION\"]}},"
     "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
     "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"category_id\",\"type\":\"string\"}," OPT(
         "value",
         "float") "," OPT("channel",
                          "bytes") ","
                                   "{\"name\":\"propensity\",\"type\":\"long\"},{\"name\":\"dwell_ms\",\"type\":\"int\"}]}",
     0},
    /* A union with a branch the reader cannot take. */
    {13, "union_int",
     RECORD_HEAD IDS
     "{\"name\":\"category_id\",\"type\":[\"null\",\"string\",\"int\"],\"default\":null},"
     "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"}]}",
     0},
    /* Refused: no user_id (required, no default); another record; not a record. */
    {14, "no_user",
     RECORD_HEAD
     "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
     "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"}]}",
     0},
    {15, "other",
     "{\"type\":\"record\",\"name\":\"Pageview\",\"fields\":["
     "{\"name\":\"event_id\",\"type\":\"string\"}]}",
     0},
    {16, "string", "\"string\"", 0},
    /* Readers of other shapes, also writers. */
    {20, "defaults",
     RECORD_HEAD IDS "{\"name\":\"type\",\"type\":" ENUM_TYPE
                     "},{\"name\":\"ts\",\"type\":\"long\"},"
                     "{\"name\":\"channel\",\"type\":[\"string\",\"null\"],\"default\":\"web\"},"
                     "{\"name\":\"propensity\",\"type\":[\"double\",\"null\"],\"default\":0.5},"
                     "{\"name\":\"flag\",\"type\":[\"null\",\"boolean\"],\"default\":null}]}",
     1},
    {21, "narrow",
     RECORD_HEAD
     "{\"name\":\"ts\",\"type\":\"int\"},"
     "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
     "\"PURCHASE\",\"ADD_TO_CART\",\"FAVORITE\",\"CLICK\",\"BROWSE\",\"IMPRESSION\"]}},"
     "{\"name\":\"item_id\",\"type\":\"string\"}," OPT(
         "note",
         "bytes") ","
                  "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"event_id\",\"type\":\"string\"},"
                  "{\"name\":\"category_id\",\"type\":\"string\"},"
                  "{\"name\":\"value\",\"type\":[\"float\",\"null\"],\"default\":0.5}," OPT(
                      "channel",
                      "string") ","
                                "{\"name\":\"level\",\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"Level\","
                                "\"symbols\":[\"LO\",\"MID\",\"HI\"]}],\"default\":null},"
                                "{\"name\":\"propensity\",\"type\":\"float\"}," OPT(
                                    "seen", "long") ","
                                                    "{\"name\":\"dwell_ms\",\"type\":\"int\"}]}",
     1},
    {22, "long_dwell",
     RECORD_HEAD IDS "{\"name\":\"type\",\"type\":" ENUM_TYPE
                     "},{\"name\":\"ts\",\"type\":\"long\"}," OPT("dwell_ms", "long") "]}",
     1},
};
const int fuzz_n_schemas = (int)(sizeof(fuzz_schemas) / sizeof(fuzz_schemas[0]));

const char *fuzz_reader_schema_path(void) { return TALLY_SCHEMA_DIR "/" TL_EVENT_SCHEMA; }

void fuzz_write_schema_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", dir, strerror(errno));
        abort();
    }
    char path[1024];
    size_t n;
    char *reader = fuzz_read_file(fuzz_reader_schema_path(), &n);
    if (!reader) {
        fprintf(stderr, "fuzz: cannot read %s\n", fuzz_reader_schema_path());
        abort();
    }
    snprintf(path, sizeof(path), "%s/%d-behavior_event.avsc", dir, FUZZ_ID_READER);
    fuzz_write_file(path, reader, n);
    free(reader);
    for (int i = 0; i < fuzz_n_schemas; i++) {
        const fuzz_schema *s = &fuzz_schemas[i];
        snprintf(path, sizeof(path), "%s/%d-%s.avsc", dir, (int)s->id, s->name);
        fuzz_write_file(path, s->json, strlen(s->json));
    }
}

void fuzz_model_cfg(tl_model_cfg *mc, char *path, size_t path_len)
{
    char err[256];
    tl_config *c = tl_config_new(tl_app_config);
    if (tl_model_cfg_load(mc, c, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "model config", "%s", err);
    tl_config_destroy(c);
    mc->enabled = mc->markov_enabled = 1;
    snprintf(path, path_len, "%s/model.bin", fuzz_tmpdir());
}
