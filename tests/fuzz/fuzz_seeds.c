/*
 * fuzz_seeds.c -- writes the seed corpora and dictionaries of the harnesses, at build
 * time (fuzz.cmake runs it): `fuzz_seeds OUTDIR` fills OUTDIR/<harness>/ with valid
 * inputs and writes OUTDIR/<harness>.dict.
 *
 * Every seed is made by the product's own code, never copied from a data file: events
 * come from the synthetic generator (ingest/gen.h, what `tally gen` writes) plus a few
 * edge cases; Avro records from tl_codec_encode_event and, for the other writer shapes,
 * avro-c's generic writer; CSV from tl_gen_write_csv; user records, changelog values and
 * a model checkpoint from the real stages (model/pipeline.h) run over those events on a
 * RocksDB store; properties files from the configuration tables. A seed is a starting
 * point, so each is small and valid (or nearly so: a few refused inputs mark the error
 * paths); libFuzzer mutates from there.
 *
 * The dictionaries hold the tokens a mutation cannot guess: configuration keys, field
 * and column names, enum symbols, JSON and HTTP syntax.
 */
#include "fuzz_common.h"

#include <avro.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/config.h"
#include "app/config.h"
#include "lib/json.h"
#include "engine/runtime.h"
#include "engine/source.h"
#include "engine/state.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/gen.h"
#include "ingest/schema_store.h"
#include "model/markov_share.h"
#include "model/model.h"
#include "model/pipeline.h"
#include "sink/avro_out.h"
#include "sink/sinks.h"

static const char *outdir;
static tl_arena arena, ev_arena;   /* scratch; the events' strings */

#define MAX_EVENTS 64
static tl_event events[MAX_EVENTS];
static int n_events;

/* ---- output ----------------------------------------------------------------------- */

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_seeds: cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* Stops the program when ok is 0, with err as the reason. */
static void must(int ok, const char *err)
{
    if (ok) return;
    fprintf(stderr, "fuzz_seeds: %s\n", err);
    exit(1);
}

/* Writes OUTDIR/harness/seed-NNN-what. */
static void seed(const char *harness, const char *what, const void *data, size_t n)
{
    static struct {
        const char *harness;
        int n;
    } counts[32];
    int h = 0;
    while (counts[h].harness && strcmp(counts[h].harness, harness) != 0) h++;
    counts[h].harness = harness;
    int k = counts[h].n++;
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", outdir, harness);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/%s/seed-%03d-%s", outdir, harness, k, what);
    fuzz_write_file(path, data, n);
}

/* seed() with the name printed from fmt. */
static void seedf(const char *harness, const void *data, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void seedf(const char *harness, const void *data, size_t n, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    seed(harness, what, data, n);
}

/* The file at path as a seed, when it can be read. */
static void seed_file(const char *harness, const char *what, const char *path)
{
    size_t n;
    char *bytes = fuzz_read_file(path, &n);
    if (bytes) seed(harness, what, bytes, n);
    free(bytes);
}

/* One seed per text, named <prefix><i>. */
static void seed_texts(const char *harness, const char *prefix, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++) seedf(harness, texts[i], strlen(texts[i]), "%s%zu", prefix, i);
}

/* A seed of a selector byte followed by data. */
static void seed_sel(const char *harness, const char *what, unsigned char sel, const void *data,
                     size_t n)
{
    char *b = malloc(n + 1);
    b[0] = (char)sel;
    if (n) memcpy(b + 1, data, n);
    seed(harness, what, b, n + 1);
    free(b);
}

/* A dictionary: one "token" per line, in libFuzzer's syntax. */
static void dict(const char *harness, const char *const *tokens)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s.dict", outdir, harness);
    tl_buf b = {0};
    for (int i = 0; tokens[i]; i++) {
        tl_buf_putc(&b, '"');
        for (const unsigned char *p = (const unsigned char *)tokens[i]; *p; p++) {
            if (*p == '"' || *p == '\\' || *p < 0x20 || *p >= 0x7f)
                tl_buf_printf(&b, "\\x%02X", *p);
            else tl_buf_putc(&b, (char)*p);
        }
        tl_buf_puts(&b, "\"\n");
    }
    fuzz_write_file(path, b.data, b.len);
    tl_buf_free(&b);
}

/* ---- events ----------------------------------------------------------------------- */

static void load_events(void)
{
    tl_gen_params p;
    tl_gen_params_default(&p);
    p.n_events = 40;
    p.n_users = 4;
    p.n_items = 12;
    p.n_categories = 3;
    p.n_channels = 4;
    p.span_ms = 3600 * 1000;
    p.impressions = 1;
    p.propensity = 1;
    tl_source *src = tl_gen_source_new(&p);
    tl_batch b;
    tl_batch_init(&b);
    int rc;
    do {
        rc = src->poll(src->ctx, &b, 16, 0);
        for (int i = 0; i < b.n && n_events < MAX_EVENTS - 4; i++) {
            tl_event ev = b.events[i];
            ev.event_id = tl_arena_strdup(&ev_arena, ev.event_id);
            ev.user_id = tl_arena_strdup(&ev_arena, ev.user_id);
            ev.item_id = tl_arena_strdup(&ev_arena, ev.item_id);
            ev.category_id = tl_arena_strdup(&ev_arena, ev.category_id);
            ev.channel = tl_arena_strdup(&ev_arena, ev.channel);
            events[n_events++] = ev;
        }
    } while (rc == TL_SRC_OK);
    tl_batch_destroy(&b);
    tl_gen_source_destroy(src);
    /* Edge cases the generator does not make: no optional field, text that needs
     * escaping, extreme numbers. */
    events[n_events++] = (tl_event){
        .event_id = "e-min", .user_id = "u1", .item_id = "i1", .type = TL_IMPRESSION, .ts = 0};
    events[n_events++] = (tl_event){.event_id = "e \"q\", \\",
                                    .user_id = "\xc3\xbc\xe2\x82\xac",
                                    .item_id = "i,2",
                                    .category_id = "c\t1",
                                    .channel = "",
                                    .type = TL_PURCHASE,
                                    .ts = -1,
                                    .dwell_ms = 2147483647,
                                    .has_dwell = 1,
                                    .value = 1e300,
                                    .has_value = 1,
                                    .propensity = 1,
                                    .has_propensity = 1};
    events[n_events++] = (tl_event){.event_id = "e-max",
                                    .user_id = "u2",
                                    .item_id = "i3",
                                    .category_id = "c2",
                                    .channel = "email",
                                    .type = TL_ADD_TO_CART,
                                    .ts = INT64_MAX,
                                    .dwell_ms = 0,
                                    .has_dwell = 1,
                                    .value = -0.0,
                                    .has_value = 1,
                                    .propensity = 5e-324,
                                    .has_propensity = 1};
}

/* ---- Avro ------------------------------------------------------------------------- */

static const char *event_str(const tl_event *ev, const char *name)
{
    if (!strcmp(name, "event_id")) return ev->event_id;
    if (!strcmp(name, "user_id")) return ev->user_id;
    if (!strcmp(name, "item_id")) return ev->item_id;
    if (!strcmp(name, "category_id")) return ev->category_id;
    if (!strcmp(name, "channel")) return ev->channel;
    return NULL;
}

/* 1 when the event has a value for field name (absent optional fields pick null). */
static int event_has(const tl_event *ev, const char *name)
{
    if (!strcmp(name, "category_id") || !strcmp(name, "channel"))
        return event_str(ev, name) != NULL;
    if (!strcmp(name, "dwell_ms")) return ev->has_dwell;
    if (!strcmp(name, "value")) return ev->has_value;
    if (!strcmp(name, "propensity")) return ev->has_propensity;
    return 1;
}

/* The whole number for field name of ev: its dwell time, ts for its time, other for any
 * other field. */
static int64_t whole_of(const tl_event *ev, const char *name, int64_t ts, int64_t other)
{
    return !strcmp(name, "dwell_ms") ? ev->dwell_ms : !strcmp(name, "ts") ? ts : other;
}

/* The real number for field name of ev: its propensity, its value, or 0.5 for any other. */
static double real_of(const tl_event *ev, const char *name)
{
    return !strcmp(name, "propensity") ? ev->propensity : !strcmp(name, "value") ? ev->value : 0.5;
}

/* Fills v (of any schema) from ev, field name telling which part of ev. */
static void fill(avro_value_t *v, const tl_event *ev, const char *name)
{
    avro_schema_t s = avro_value_get_schema(v);
    avro_value_t sub;
    const char *str;
    switch (avro_value_get_type(v)) {
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            const char *fname;
            avro_value_get_by_index(v, i, &sub, &fname);
            fill(&sub, ev, fname);
        }
        break;
    case AVRO_UNION: {
        int want_null = !event_has(ev, name), pick = 0;
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            int is_null = avro_typeof(avro_schema_union_branch(s, (int)i)) == AVRO_NULL;
            if (is_null == want_null) {
                pick = (int)i;
                break;
            }
        }
        avro_value_set_branch(v, pick, &sub);
        fill(&sub, ev, name);
        break;
    }
    case AVRO_STRING:
        str = event_str(ev, name);
        avro_value_set_string(v, str ? str : "s");
        break;
    case AVRO_BYTES:
        str = event_str(ev, name);
        avro_value_set_bytes(v, (void *)(str ? str : "b"), strlen(str ? str : "b"));
        break;
    case AVRO_INT32:
        avro_value_set_int(v, (int32_t)whole_of(ev, name, ev->ts % 2000000000, 7));
        break;
    case AVRO_INT64: avro_value_set_long(v, whole_of(ev, name, ev->ts, 1)); break;
    case AVRO_FLOAT: avro_value_set_float(v, (float)real_of(ev, name)); break;
    case AVRO_DOUBLE: avro_value_set_double(v, real_of(ev, name)); break;
    case AVRO_BOOLEAN: avro_value_set_boolean(v, 1); break;
    case AVRO_NULL: avro_value_set_null(v); break;
    case AVRO_ENUM: {
        int i = avro_schema_enum_get_by_name(s, tl_event_type_name(ev->type));
        avro_value_set_enum(v, i < 0 ? 0 : i);
        break;
    }
    case AVRO_FIXED: {
        char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
        int64_t n = avro_schema_fixed_size(s);
        avro_value_set_fixed(v, buf, (size_t)(n < 64 ? n : 64));
        break;
    }
    case AVRO_ARRAY:
        for (int i = 0; i < 2; i++) {
            avro_value_append(v, &sub, NULL);
            fill(&sub, ev, "item");
        }
        break;
    case AVRO_MAP:
        avro_value_add(v, "k1", &sub, NULL, NULL);
        fill(&sub, ev, "entry");
        break;
    default: break;
    }
}

/* The Avro body of ev in schema s (avro-c's writer), appended to out; 0 or -1. */
static int avro_body(avro_schema_t s, const tl_event *ev, tl_buf *out)
{
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    if (!iface) return -1;
    avro_value_t v;
    avro_generic_value_new(iface, &v);
    fill(&v, ev, "");
    static char buf[1 << 16];
    avro_writer_t w = avro_writer_memory(buf, sizeof(buf));
    int rc = avro_value_write(w, &v);
    if (rc == 0) tl_buf_append(out, buf, (size_t)avro_writer_tell(w));
    avro_writer_free(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    return rc ? -1 : 0;
}

static void frame_header(tl_buf *b, int32_t id)
{
    unsigned char h[5] = {0, (unsigned char)(id >> 24), (unsigned char)(id >> 16),
                          (unsigned char)(id >> 8), (unsigned char)id};
    tl_buf_append(b, h, 5);
}

/* A registry answer of fuzz_registry's input: the status and operation bytes; the
 * body follows. */
static void answer_head(tl_buf *b, unsigned char status, unsigned char op)
{
    tl_buf_clear(b);
    tl_buf_putc(b, (char)status);
    tl_buf_putc(b, (char)op);
}

/* The answer as a registry seed and its body as a JSON seed. */
static void seed_answer(const char *what, const tl_buf *b)
{
    seed("registry", what, b->data, b->len);
    seed("json", what, b->data + 2, b->len - 2);
}

static void codec_seeds(void)
{
    char dir[1100], err[512];
    snprintf(dir, sizeof(dir), "%s/schemas", fuzz_tmpdir());
    fuzz_write_schema_dir(dir);
    tl_schema_store_opts o = {.dir = dir};
    tl_schema_store *store = tl_schema_store_new(&o, err, sizeof(err));
    must(store != NULL, err);
    /* The readers in fuzz_codec's order: the product's, then fuzz_schemas[] readers. */
    int32_t rid[8];
    tl_codec *rc[8];
    int nr = 0;
    rid[nr] = FUZZ_ID_READER;
    rc[nr++] = tl_codec_new(store, fuzz_reader_schema_path(), err, sizeof(err));
    for (int i = 0; i < fuzz_n_schemas; i++) {
        if (!fuzz_schemas[i].reader) continue;
        char path[1200];
        snprintf(path, sizeof(path), "%s/%d-%s.avsc", dir, (int)fuzz_schemas[i].id,
                 fuzz_schemas[i].name);
        rid[nr] = fuzz_schemas[i].id;
        rc[nr++] = tl_codec_new(store, path, err, sizeof(err));
    }
    tl_buf b = {0};
    for (int r = 0; r < nr; r++) {
        if (!rc[r]) {
            fprintf(stderr, "fuzz_seeds: reader %d: %s\n", r, err);
            exit(1);
        }
        for (int i = 0; i < n_events; i += (r ? 7 : 3)) {
            tl_buf_clear(&b);
            if (tl_codec_encode_event(rc[r], rid[r], &events[i], &b) != 0) continue;
            char what[64];
            snprintf(what, sizeof(what), "reader%d-event%d", (int)rid[r], i);
            seed_sel("codec", what, (unsigned char)r, b.data, b.len);
        }
    }
    /* Records of every other writer shape, read by the product's reader. */
    for (int k = 0; k < fuzz_n_schemas; k++) {
        avro_schema_t ws;
        if (tl_schema_store_get(store, fuzz_schemas[k].id, &ws, err, sizeof(err)) != 0) continue;
        for (int i = 0; i < n_events; i += 11) {
            tl_buf_clear(&b);
            frame_header(&b, fuzz_schemas[k].id);
            if (avro_body(ws, &events[i], &b) != 0) continue;
            char what[64];
            snprintf(what, sizeof(what), "writer-%s-event%d", fuzz_schemas[k].name, i);
            seed_sel("codec", what, 0, b.data, b.len);
        }
    }
    /* Refused frames: short, wrong magic byte, unknown id. */
    seed_sel("codec", "short", 0, "\0\0\0", 3);
    seed_sel("codec", "magic", 0, "\1\0\0\0\1\2a", 7);
    seed_sel("codec", "unknown-id", 0, "\0\0\0\3\xe7\2a", 7);

    /* writer_schema: each schema's text, NUL, a body in it. */
    size_t n;
    char *reader = fuzz_read_file(fuzz_reader_schema_path(), &n);
    for (int k = -1; k < fuzz_n_schemas; k++) {
        const char *json = k < 0 ? reader : fuzz_schemas[k].json;
        avro_schema_t ws;
        if (avro_schema_from_json_length(json, strlen(json), &ws) != 0) continue;
        for (int i = 1; i < n_events; i += 13) {
            tl_buf_clear(&b);
            tl_buf_append(&b, json, strlen(json) + 1);
            if (avro_body(ws, &events[i], &b) != 0) continue;
            seedf("writer_schema", b.data, b.len, "%s-event%d",
                  k < 0 ? "reader" : fuzz_schemas[k].name, i);
        }
        avro_schema_decref(ws);
    }
    /* Writers that are not records at all. */
    static const char *const primitives[] = {"\"string\"", "\"long\"",
                                             "{\"type\":\"map\",\"values\":\"int\"}"};
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
        tl_buf_clear(&b);
        tl_buf_append(&b, primitives[i], strlen(primitives[i]) + 1);
        tl_buf_append(&b, "\x02\x61", 2);
        seedf("writer_schema", b.data, b.len, "primitive%zu", i);
    }

    /* registry: a registry's answers, good and bad. Byte 0: status index (0: 200,
     * 4: 404, 6: 500, 7: 401, 8: 422); byte 1: bit 0 register, bit 1 lookup only. */
    struct {
        unsigned char status, op;
        const char *what;
        const char *prefix, *suffix;   /* around the reader schema as a JSON string */
    } ans[] = {
        {0, 0, "schema", "{\"schema\":", "}"},
        {0, 0, "schema-avro",
         "{\"subject\":\"tally.events-value\",\"version\":3,\"id\":42,"
         "\"schemaType\":\"AVRO\",\"schema\":",
         "}"},
        {0, 0, "schema-protobuf", "{\"schemaType\":\"PROTOBUF\",\"schema\":", "}"},
        {0, 0, "schema-references", "{\"schema\":",
         ",\"references\":[{\"name\":\"x\","
         "\"subject\":\"y\",\"version\":1}]}"},
    };
    for (size_t i = 0; i < sizeof(ans) / sizeof(ans[0]); i++) {
        answer_head(&b, ans[i].status, ans[i].op);
        tl_buf_puts(&b, ans[i].prefix);
        tl_json_put_str(&b, reader);
        tl_buf_puts(&b, ans[i].suffix);
        seed_answer(ans[i].what, &b);
    }
    static const struct {
        unsigned char status, op;
        const char *what, *body;
    } plain[] = {
        {0, 0, "schema-invalid", "{\"schema\":\"{\\\"type\\\":\\\"nope\\\"}\"}"},
        {0, 0, "schema-primitive", "{\"schema\":\"\\\"string\\\"\"}"},
        {4, 0, "not-found", "{\"error_code\":40403,\"message\":\"Schema 42 not found\"}"},
        {4, 0, "not-a-registry", "<html><body>404 Not Found</body></html>"},
        {6, 0, "error", "{\"error_code\":50001,\"message\":\"Error in the backend data store\"}"},
        {7, 0, "unauthorized", "{\"error_code\":401,\"message\":\"Unauthorized\"}"},
        {0, 1, "registered", "{\"id\":7}"},
        {0, 3, "looked-up",
         "{\"subject\":\"s\",\"id\":7,\"version\":1,\"schema\":\"\\\"string\\\"\"}"},
        {4, 3, "subject-unknown", "{\"error_code\":40401,\"message\":\"Subject not found.\"}"},
        {4, 3, "schema-unknown", "{\"error_code\":40403,\"message\":\"Schema not found\"}"},
        {8, 1, "incompatible", "{\"error_code\":42201,\"message\":\"Invalid schema\"}"},
        {0, 1, "id-too-big", "{\"id\":2147483648}"},
        {0, 1, "id-fraction", "{\"id\":7.5}"},
        {0, 0, "empty", ""},
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        answer_head(&b, plain[i].status, plain[i].op);
        tl_buf_puts(&b, plain[i].body);
        seed_answer(plain[i].what, &b);
    }
    free(reader);
    tl_buf_free(&b);
    for (int r = 0; r < nr; r++) tl_codec_destroy(rc[r]);
    tl_schema_store_destroy(store);
}

/* ---- JSON, JSON lines, files ---------------------------------------------------------- */

/* Records of categories.embeddings.topic (fuzz_category_embedding: categories.dim 4). */
static void category_embedding_seeds(void)
{
    static const char *const texts[] = {
        "{\"category_id\":\"c1\",\"embedding\":[0.5,-1,2e3,0]}",
        "{\"category_id\":\"c1\",\"embedding\":null}",
        "{\"category_id\":\"\\u00e9\",\"embedding\":[1,1,1,1]}",
        "{\"category_id\":\"c2\",\"embedding\":[1,2,3]}",
        "{\"category_id\":\"c3\",\"embedding\":[1,2,3,1e5]}",
        "{\"embedding\":[1,2,3,4]}",
        "[\"c1\",[1,2,3,4]]",
    };
    seed_texts("category_embedding", "record", texts, sizeof(texts) / sizeof(texts[0]));
}

static void json_seeds(void)
{
    static const char *const texts[] = {
        "null",
        "true",
        "[]",
        "{}",
        "0",
        "-0",
        "1e3",
        "-7",
        "9007199254740993",
        "1.5e-320",
        "123456789012345678901234567890",
        "\"\\u00fc\\ud83d\\ude00\\u0000\\n\\\"\\\\\\/\"",
        "[1,[2,[3,[4,[5]]]]]",
        "{\"a\":1,\"a\":2,\"b\":{\"c\":[null,false]}}",
        " \t\r\n[ 1 , \"x\" ] ",
    };
    seed_texts("json", "text", texts, sizeof(texts) / sizeof(texts[0]));
    tl_buf b = {0}, lines = {0};
    for (int i = 0; i < n_events; i++) {
        tl_buf_clear(&b);
        fuzz_event_to_json(&b, &events[i]);
        if (i % 5 == 0 || i >= n_events - 3) {
            char what[32];
            snprintf(what, sizeof(what), "event%d", i);
            seed("jsonl_event", what, b.data, b.len);
            if (i % 10 == 0) seed("json", what, b.data, b.len);
        }
        tl_buf_append(&lines, b.data, b.len);
        tl_buf_putc(&lines, i % 7 == 3 ? '\r' : '\n');
        if (i % 7 == 3) tl_buf_putc(&lines, '\n');
    }
    seed("jsonl_event", "sparse", "{\"type\":\"click\",\"ts\":1,\"user_id\":\"u\",\"x\":[1]}", 46);
    /* file_source: byte 0 = format | strict << 2 | (batch - 1) << 3. */
    seed_sel("file_source", "jsonl", 2 | 3 << 3, lines.data, lines.len);
    seed_sel("file_source", "jsonl-strict", 2 | 1 << 2, lines.data, lines.len);

    /* Canonical CSV by tally's own writer, with and without the propensity column. */
    for (int prop = 0; prop < 2; prop++) {
        tl_gen_params p;
        tl_gen_params_default(&p);
        p.n_events = 30;
        p.n_users = 3;
        p.n_items = 8;
        p.n_categories = 2;
        p.n_channels = prop ? 3 : 0;
        p.propensity = prop;
        p.impressions = prop;
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        tl_gen_write_csv(&p, f);
        fclose(f);
        /* byte 0: canonical, batch of 8; then the same strict, batch of 1 */
        seed_sel("file_source", prop ? "canonical-propensity" : "canonical", 0 | 7 << 3, text, n);
        seed_sel("file_source", prop ? "canonical-propensity-strict" : "canonical-strict",
                 0 | 1 << 2, text, n);
        free(text);
    }
    /* Taobao rows from the events. */
    static const char *const behavior[] = {"pv", "pv", "pv", "fav", "cart", "buy"};
    tl_buf_clear(&b);
    for (int i = 0; i < n_events - 3; i++)
        tl_buf_printf(&b, "%s,%s,%s,%s,%lld\n", events[i].user_id, events[i].item_id,
                      events[i].category_id ? events[i].category_id : "", behavior[events[i].type],
                      (long long)(events[i].ts / 1000));
    seed_sel("file_source", "taobao", 1 | 4 << 3, b.data, b.len);
    seed_sel("file_source", "taobao-strict", 1 | 1 << 2, b.data, b.len);
    static const char quoted[] =
        "\xEF\xBB\xBF"
        "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value\r\n"
        "\"e,1\",\"u \"\"1\"\"\",i1,,Click,1700000000000,,,\r\n\r\n"
        ",u2,i2,c1,PURCHASE,-5,email,0,1e-300\n";
    seed_sel("file_source", "canonical-quoted", 0, quoted, sizeof(quoted) - 1);
    tl_buf_free(&b);
    tl_buf_free(&lines);
}

/* ---- configuration ---------------------------------------------------------------- */

static void config_seeds(void)
{
    tl_buf all = {0}, one = {0};
    tl_buf_puts(&all, "# every key at its default\n");
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++) {
        tl_buf_clear(&one);
        tl_buf_printf(&one, "! component %s\n", comp->name);
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            tl_buf_printf(&all, "%s=%s\n", d->key, d->dflt ? d->dflt : "");
            /* values of every type at the edges of their range */
            if (d->type == TL_CT_BOOL) tl_buf_printf(&one, "%s = yes\n", d->key);
            else if (d->type == TL_CT_INT && d->min <= d->max)
                tl_buf_printf(&one, "  %s=%.0f  \n", d->key, d->max);
            else if (d->type == TL_CT_DOUBLE && d->min <= d->max)
                tl_buf_printf(&one, "%s\t=\t%.17g\n", d->key, d->min);
            else tl_buf_printf(&one, "%s=%s\n", d->key, d->dflt ? d->dflt : "x");
        }
        seed("config", comp->name, one.data, one.len);
    }
    tl_buf_puts(&all,
                "kafka.bootstrap.servers=127.0.0.1:9092\n"
                "kafka.consumer.fetch.max.bytes=1048576\n"
                "kafka.producer.linger.ms=5\n"
                "kafka.sasl.password=not-a-real-secret\n");
    seed("config", "all-defaults", all.data, all.len);
    static const char bad[] = "state.dir=/var/lib/tally\nno.such.key=1\n";
    seed("config", "unknown-key", bad, sizeof(bad) - 1);
    tl_buf_free(&all);
    tl_buf_free(&one);
}

/* ---- state, changelog, model, paths --------------------------------------------------- */

/* The stages over the events on a store; then the records, changelog sequences, a model
 * checkpoint and path files. */
static void state_seeds(void)
{
    char state_dir[1100], err[512];
    snprintf(state_dir, sizeof(state_dir), "%s/state", fuzz_tmpdir());
    tl_config *c = tl_config_new(tl_app_config);
    /* the purchase intent on, with an hour's window, and the next categories: records with
     * pending intent moments and a next-category view, and a checkpoint whose calibration
     * has learned outcomes and with category embeddings */
    must(tl_config_set(c, "state.dir", state_dir, "seeds", err, sizeof(err)) == 0 &&
             tl_config_set(c, "markov.window.ms", "600000", "seeds", err, sizeof(err)) == 0 &&
             tl_config_set(c, "intent.enabled", "true", "seeds", err, sizeof(err)) == 0 &&
             tl_config_set(c, "intent.window.ms", "3600000", "seeds", err, sizeof(err)) == 0 &&
             tl_config_set(c, "categories.enabled", "true", "seeds", err, sizeof(err)) == 0,
         err);
    tl_pipeline p;
    must(tl_pipeline_init(&p, c, state_dir, err, sizeof(err)) == 0, err);
    tl_model_share_start(p.model);   /* for the model_share seeds below */
    tl_sink *sink = tl_avro_sink_new(2, 3, 4, 12, 13);
    tl_store *s = tl_store_open(state_dir, 0, 1 << 20, err, sizeof(err));
    must(s != NULL, err);
    /* Empty model checkpoint (a new model), then one after the events. */
    tl_model_checkpoint(p.model);
    char model_path[1200];
    snprintf(model_path, sizeof(model_path), "%s/model.bin", state_dir);
    seed_file("model_checkpoint", "new", model_path);

    const char *ids[MAX_EVENTS];
    int n_ids = 0;
    for (int i = 0; i < n_events; i++) {
        const tl_event *ev = &events[i];
        if (ev->ts <= 0 || ev->ts == INT64_MAX) continue;   /* edge times: not for the stages */
        int64_t now = tl_store_observe_ts(s, ev->ts);
        for (int st = 0; st < p.n_stages; st++)
            if (p.stages[st].advance) p.stages[st].advance(p.stages[st].ctx, s, now, &arena, sink);
        tl_user *u = tl_store_get(s, ev->user_id);
        for (int st = 0; st < p.n_stages; st++)
            p.stages[st].process(p.stages[st].ctx, s, u, ev, &arena, sink);
        int known = 0;
        for (int k = 0; k < n_ids; k++) known |= !strcmp(ids[k], ev->user_id);
        if (!known) ids[n_ids++] = ev->user_id;
        tl_arena_reset(&arena);
    }
    must(tl_store_flush(s, 1, err, sizeof(err)) == 0, err);
    tl_model_tick(p.model, events[n_events - 4].ts + 3600 * 1000, &arena, sink);
    tl_model_checkpoint(p.model);
    seed_file("model_checkpoint", "trained", model_path);
    /* a sequence model's checkpoint (model.kind=seq, dim 4, 16 buckets: as the harness) */
    {
        tl_model_cfg mc = *tl_model_cfg_of(p.model);
        mc.kind = TL_MODEL_SEQ;
        mc.seq_dim = 4;
        mc.seq_buckets = 16;
        char seq_path[1200];
        snprintf(seq_path, sizeof(seq_path), "%s/seq-model.bin", fuzz_tmpdir());
        tl_model *sm = tl_model_new(&mc, seq_path, err, sizeof(err));
        must(sm != NULL, err);
        tl_model_share_start(sm); /* its update is a model_share seed */
        tl_journey_tp tps[2] = {{.ts = 1000, .type = TL_IMPRESSION, .channel = "search"},
                                {.ts = 2000, .type = TL_CLICK, .category_id = "c1"}};
        tl_model_learn(sm, NULL, tps, 2, 1, 3000);
        tl_model_learn(sm, NULL, tps, 1, 0, 4000);
        tl_model_checkpoint(sm);
        tl_buf supd = {0};
        if (tl_model_share_take(sm, &supd, 1 << 20))
            seed("model_share", "seq_update", supd.data, supd.len);
        tl_buf_free(&supd);
        tl_model_destroy(sm);
        seed_file("model_checkpoint", "seq", seq_path);
    }
    /* the model updates those events made: whole, and a part of a larger one */
    tl_buf upd = {0};
    if (tl_model_share_take(p.model, &upd, 1 << 20))
        seed("model_share", "update", upd.data, upd.len);
    tl_buf_free(&upd);

    /* User records; changelog sequences of them (key length, key, value length, value). */
    tl_buf rec = {0}, log = {0};
    for (int k = 0; k < n_ids; k++) {
        if (tl_store_read_raw(s, ids[k], &rec, err, sizeof(err)) != 1) continue;
        seedf("user_record", rec.data, rec.len, "user-%s", ids[k]);
        size_t kl = strlen(ids[k]);
        tl_buf_putc(&log, (char)kl);
        tl_buf_append(&log, ids[k], kl);
        tl_buf_putc(&log, (char)(rec.len & 0xff));
        tl_buf_putc(&log, (char)(rec.len >> 8));
        tl_buf_append(&log, rec.data, rec.len);
        seedf("restore", log.data + (log.len - (1 + kl + 2 + rec.len)), 1 + kl + 2 + rec.len,
              "user-%s", ids[k]);
    }
    /* ... all of them, then a tombstone for the first and its record again. */
    if (n_ids) {
        size_t kl = strlen(ids[0]);
        tl_buf_putc(&log, (char)kl);
        tl_buf_append(&log, ids[0], kl);
        tl_buf_append(&log, "\xff\xff", 2);
        seed("restore", "all-and-tombstone", log.data, log.len);
    }
    static const char corrupt[] = "\x02u9\x03\x00\x09\x01\x02";
    seed("restore", "unknown-version", corrupt, sizeof(corrupt) - 1);
    tl_buf_free(&rec);
    tl_buf_free(&log);
    tl_store_close(s);

    /* Path files: each user's channels in event order, a path per user. */
    tl_buf f = {0};
    tl_buf_puts(&f, "path;total_conversions;total_conversion_value;total_null\n");
    for (int k = 0; k < n_ids; k++) {
        int conv = 0, first = 1;
        double value = 0;
        for (int i = 0; i < n_events; i++) {
            if (strcmp(events[i].user_id, ids[k]) || !events[i].channel) continue;
            tl_buf_printf(&f, "%s%s", first ? "" : " > ", events[i].channel);
            first = 0;
            if (events[i].type == TL_PURCHASE) {
                conv++;
                value += events[i].has_value ? events[i].value : 0;
            }
        }
        if (first) tl_buf_puts(&f, "direct");
        tl_buf_printf(&f, ";%d;%.3f;%d\n", conv, value, 1 + k);
    }
    seed("paths", "users", f.data, f.len);
    static const char reordered[] = "total_null;other;\"path\";total_conversions\r\n"
                                    "2;x;\"eta > iota > alpha > eta\";1\r\n\r\n"
                                    "0;y;  beta  ;0.5\n"
                                    "3;z;alpha>alpha>beta;0\n";
    seed("paths", "reordered-columns", reordered, sizeof(reordered) - 1);
    static const char minimal[] = "path;total_conversions\nc1;1\n";
    seed("paths", "minimal", minimal, sizeof(minimal) - 1);
    tl_buf_free(&f);
    tl_sink_destroy(sink);
    tl_pipeline_destroy(&p);
    tl_config_destroy(c);
}

/* ---- report ------------------------------------------------------------------------- */

static void report_seeds(void)
{
    /* the first byte picks the dimension and window (fuzz_report.c) */
    static const char replay[] =
        "\x04{\"type\":\"attribution\",\"conversion_event_id\":\"p1\",\"user_id\":\"u1\","
        "\"item_id\":\"i1\",\"category_id\":\"c1\",\"ts\":1511600000000,\"value\":20,"
        "\"touchpoints\":[{\"event_id\":\"e1\",\"item_id\":\"i2\",\"category_id\":\"c2\","
        "\"channel\":\"search\",\"type\":\"IMPRESSION\",\"ts\":1511590000000},"
        "{\"event_id\":\"e2\",\"item_id\":\"i3\",\"category_id\":null,\"channel\":null,"
        "\"type\":\"BROWSE\",\"ts\":1511595000000}],\"credits\":{\"last_touch\":[0,1],"
        "\"linear\":[0.5,0.5],\"shapley\":[0.75,0.25]},\"shapley_stderr\":[0.01,null]}\n"
        "{\"type\":\"credit_delta\",\"window_start\":1511596800000,\"window_end\":"
        "1511600400000,\"dim\":\"channel\",\"dim_id\":\"search\",\"method\":\"markov\","
        "\"credit\":1.5,\"credit_before\":0.5,\"conversions\":2}\n"
        "{\"type\":\"interest_delta\",\"user_id\":\"u1\"}\n";
    seed("report", "replay", replay, sizeof(replay) - 1);
    static const char consume[] =
        "\x02{\"partition\":0,\"offset\":7,\"key\":\"u1\",\"schema_id\":3,\"value\":{"
        "\"conversion_event_id\":\"p1\",\"ts\":1511600000000,\"value\":{\"double\":9.5},"
        "\"touchpoints\":[{\"channel\":{\"string\":\"email\"},\"category_id\":{\"string\":"
        "\"c9\"}}],\"credits\":{\"linear\":[1],\"removal\":[1]}}}\n";
    seed("report", "consume", consume, sizeof(consume) - 1);
    static const char spend[] =
        "\x81{\"type\":\"attribution\",\"ts\":1511600000000,\"value\":5,\"touchpoints\":["
        "{\"channel\":\"search\"}],\"credits\":{\"linear\":[1]}}\n"
        "\0date,channel,spend\n2017-11-25,search,12.5\n2017-11-25,tv,3\n";
    seed("report", "spend", spend, sizeof(spend) - 1);
}

/* ---- HTTP --------------------------------------------------------------------------- */

static void http_seeds(void)
{
    static const char *const targets[] = {
        "/metrics",
        "/healthz",
        "/readyz",
        "/",
        "/v1/users/u1",
        "/v1/attribution?by=category&window=day&from=2017-11-25&to=1512000000000",
        "/v1/attribution?by=nothing",
        "/v1/attribution?format=html&methods=linear,markov",
        "/v1/attribution?min_purchases=-1&window=hour",
        "/v1/users/u1?as_of=1700000000000&top=3",
        "/v1/users/user%202?top=0",
        "/v1/users/%C3%BC-3",
        "/v1/users/a%25b",
        "/v1/users/x%2Fy",
        "/v1/users/q%3Fr%26s%3Dt?as_of=0&top=1",
        "/v1/users/nobody",
        "/v1/users/",
        "/v1/users/u1?top=-1",
        "/v1/users/u1?as_of=abc",
        "/v1/users/u1?as_of=&top=",
        "/v1/users/u1?as_of=9223372036854775807&top=2147483648",
    };
    seed_texts("http", "target", targets, sizeof(targets) / sizeof(targets[0]));
}

/* ---- dictionaries --------------------------------------------------------------------- */

static void dictionaries(void)
{
    static const char *const json[] = {"{",    "}",   "[",       "]",       ":",    ",",
                                       "\"",   "\\u", "\\ud83d", "\\udc00", "true", "false",
                                       "null", "-0",  "1e308",   "e-",      "\\\"", NULL};
    dict("json", json);
    static const char *const event[] = {"\"event_id\":",    "\"user_id\":",        "\"item_id\":",
                                        "\"category_id\":", "\"channel\":",        "\"type\":",
                                        "\"ts\":",          "\"dwell_ms\":",       "\"value\":",
                                        "\"propensity\":",  "\"campaign\":",       "\"IMPRESSION\"",
                                        "\"BROWSE\"",       "\"CLICK\"",           "\"FAVORITE\"",
                                        "\"ADD_TO_CART\"",  "\"PURCHASE\"",        "null",
                                        "2147483648",       "9223372036854775808", NULL};
    dict("jsonl_event", event);
    static const char *const file[] = {
        "event_id,user_id,item_id,category_id,type,ts,channel,dwell_ms,value",
        ",propensity",
        ",campaign",
        "IMPRESSION",
        "BROWSE",
        "CLICK",
        "FAVORITE",
        "ADD_TO_CART",
        "PURCHASE",
        "pv",
        "cart",
        "fav",
        "buy",
        "\"\"",
        "\r\n",
        "\xEF\xBB\xBF",
        "\"event_id\":",
        "\"type\":",
        "\"ts\":",
        "9223372036854775807",
        NULL};
    dict("file_source", file);
    static const char *const registry[] = {
        "\"schema\":",  "\"schemaType\":", "\"AVRO\"", "\"id\":",   "\"error_code\":",
        "\"message\":", "40401",           "40403",    "\"type\":", "\"record\"",
        "\"fields\":",  "\"name\":",       NULL};
    dict("registry", registry);
    static const char *const avro[] = {"\"type\"",
                                       "\"record\"",
                                       "\"enum\"",
                                       "\"array\"",
                                       "\"map\"",
                                       "\"fixed\"",
                                       "\"union\"",
                                       "\"null\"",
                                       "\"boolean\"",
                                       "\"int\"",
                                       "\"long\"",
                                       "\"float\"",
                                       "\"double\"",
                                       "\"bytes\"",
                                       "\"string\"",
                                       "\"name\"",
                                       "\"namespace\"",
                                       "\"fields\"",
                                       "\"symbols\"",
                                       "\"items\"",
                                       "\"values\"",
                                       "\"size\"",
                                       "\"default\"",
                                       "\"aliases\"",
                                       "\"doc\"",
                                       "\"logicalType\"",
                                       "\"timestamp-millis\"",
                                       "\"BehaviorEvent\"",
                                       "\"tally\"",
                                       "\"EventType\"",
                                       "\"event_id\"",
                                       "\"user_id\"",
                                       "\"item_id\"",
                                       "\"category_id\"",
                                       "\"channel\"",
                                       "\"ts\"",
                                       "\"dwell_ms\"",
                                       "\"value\"",
                                       "\"propensity\"",
                                       "\"campaign\"",
                                       NULL};
    dict("writer_schema", avro);
    static const char *const paths[] = {"path",
                                        "total_conversions",
                                        "total_conversion_value",
                                        "total_null",
                                        ";",
                                        " > ",
                                        "\"",
                                        "1e308",
                                        "-0",
                                        "nan",
                                        "inf",
                                        NULL};
    dict("paths", paths);
    /* Avro strings as they are on the wire: the zig-zag length, then the bytes */
    static const char *const rollup[] = {"\x0C"
                                         "linear",
                                         "\x14"
                                         "last_touch",
                                         "\x16"
                                         "first_touch",
                                         "\x14"
                                         "time_decay",
                                         "\x1C"
                                         "position_based",
                                         "\x0E"
                                         "shapley",
                                         "\x0E"
                                         "removal",
                                         "\x0C"
                                         "markov",
                                         "\x0E"
                                         "channel",
                                         "\x10"
                                         "category",
                                         "\x1A"
                                         "channel_group",
                                         "\x08"
                                         "hour",
                                         "\x06"
                                         "day",
                                         NULL};
    dict("rollup", rollup);
    static const char *const http[] = {
        "/v1/users/", "/metrics", "/healthz", "/readyz", "?",   "&",  "=",  "as_of=",
        "top=",       "%",        "%00",      "%25",     "%2F", "u1", "..", NULL};
    dict("http", http);
    /* The configuration keys, from the tables. */
    static const char *keys[1024];
    static char storage[1024][160];
    int n = 0;
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++)
        for (const tl_config_def *d = comp->defs; d->key && n < 1000; d++) {
            snprintf(storage[n], sizeof(storage[n]), "%s=", d->key);
            keys[n] = storage[n];
            n++;
        }
    static const char *const extra[] = {"kafka.",
                                        "kafka.consumer.",
                                        "kafka.producer.",
                                        "#",
                                        "!",
                                        "true",
                                        "false",
                                        "yes",
                                        "1e308",
                                        "-1",
                                        NULL};
    for (int i = 0; extra[i]; i++) keys[n++] = extra[i];
    keys[n] = NULL;
    dict("config", keys);
}

/* Roll-up records: a row with every method, one with none, a channel group by the day
 * with spend (and so its costs). */
static void rollup_seeds(void)
{
    tl_rollup_row row = {.id = "search",
                         .window_start = 1511568000000LL,
                         .purchases = 4,
                         .touchpoints = 9,
                         .shapley_var = 0.5};
    for (int m = 0; m < TL_RU_METHODS; m++) {
        row.conversions[m] = 1.0 + m / 8.0;
        row.value[m] = m == TL_RU_MARKOV ? 0 : 12.5 * m;
        row.has[m] = 1;
    }
    tl_buf b = {0};
    tl_avro_put_rollup(&b, 9, TL_RU_CHANNEL, TL_RU_WINDOW_HOUR, &row);
    seed("rollup", "channel-hour", b.data, b.len);
    tl_buf_clear(&b);
    tl_rollup_row empty = {.id = "(none)", .window_start = 0};
    tl_avro_put_rollup(&b, 9, TL_RU_CATEGORY, TL_RU_WINDOW_DAY, &empty);
    seed("rollup", "category-day-empty", b.data, b.len);
    tl_buf_clear(&b);
    row.id = "Paid Search";
    row.has[TL_M_SHAPLEY] = 0;
    row.spend = 250;
    row.has_spend = 1;
    tl_avro_put_rollup(&b, 1 << 20, TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_DAY, &row);
    seed("rollup", "group-day", b.data, b.len);
    tl_buf_free(&b);
}

/* The shared Markov chain's records: a sender's partial, and an owner's state after a
 * window closed (selector: bit 0 state, bits 1-2 input partitions - 1). */
static int ignore_delta(void *arg, const tl_credit_delta *d)
{
    (void)arg, (void)d;
    return 0;
}

static void markov_share_seeds(void)
{
    tl_mk_out *o = tl_mk_out_new(1, 3600000);
    const char *abc[] = {"search", "social", "search"}, *c[] = {"email"};
    tl_mk_out_path(o, TL_DIM_CHANNEL, 1000, abc, 3, 1);
    tl_mk_out_path(o, TL_DIM_CHANNEL, 2000, c, 1, 0);
    tl_mk_out_path(o, TL_DIM_CHANNEL, 3600000 + 5, c, 1, 1);
    tl_mk_out_time(o, 0, 3600000 + 10);
    tl_mk_out_time(o, 1, 7200000);
    tl_buf b = {0};
    tl_buf_putc(&b, 1 << 1);   /* a partial, 2 input partitions */
    tl_mk_out_take(o, &b);
    seed("markov_share", "partial", b.data, b.len);
    tl_mk_share_cfg cfg = {.order = 1, .window_ms = 3600000, .n_inputs = 2};
    tl_mk_share *s = tl_mk_share_new(&cfg);
    char err[256];
    must(tl_mk_share_add(s, b.data + 1, b.len - 1, err, sizeof(err)) == 0, err);
    tl_mk_share_close(s, ignore_delta, NULL);
    tl_buf_clear(&b);
    tl_buf_putc(&b, 1 | 1 << 1);   /* a state, 2 input partitions */
    tl_mk_share_state(s, &b);
    seed("markov_share", "state", b.data, b.len);
    tl_buf_free(&b);
    tl_mk_share_destroy(s);
    tl_mk_out_destroy(o);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    make_dir(outdir);
    fuzz_init();
    tl_arena_init(&arena, 64 * 1024);
    tl_arena_init(&ev_arena, 64 * 1024);
    load_events();
    codec_seeds();
    json_seeds();
    category_embedding_seeds();
    config_seeds();
    state_seeds();
    http_seeds();
    report_seeds();
    rollup_seeds();
    markov_share_seeds();
    dictionaries();
    tl_arena_destroy(&arena);
    tl_arena_destroy(&ev_arena);
    return 0;
}
