/*
 * test_codec.c -- ingest/codec and ingest/jsonl_event: Confluent framing, encode ->
 * decode round trips, the hand-written encoder checked byte for byte against avro-c,
 * schema resolution from older, newer and reordered writer schemas (real schema files
 * in a temporary schema.dir), every dead-letter reason, random and truncated inputs
 * (run the sanitizer build to make "never crashes, never leaks" meaningful), the fast
 * path against the generic one (same code, reason, message and event for generated,
 * truncated, flipped and extended records, under three reader shapes) and when it is
 * taken, event validation, and the JSON-lines form of an event.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <float.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <avro.h>

#include "lib/arena.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"
#include "fixtures.h"

#define READER TALLY_SCHEMA_DIR "/1-behavior_event.avsc"

/* ---------------------------------------------------------- writer schemas */

#define ENUM_TYPE                                                                                  \
    "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"IMPRESSION\",\"BROWSE\","            \
    "\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}"

/* Before channel and propensity existed. */
static const char *OLD_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null}]}";

/* A newer producer: a new enum symbol, and new fields of several shapes. */
static const char *NEW_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"session_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
    "\"IMPRESSION\",\"BROWSE\",\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\",\"SHARE\"]}},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":[\"null\",\"double\"],\"default\":null},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"device\",\"type\":{\"type\":\"record\",\"name\":\"Device\",\"fields\":["
    "{\"name\":\"os\",\"type\":\"string\"},{\"name\":\"mobile\",\"type\":\"boolean\"},"
    "{\"name\":\"hash\",\"type\":{\"type\":\"fixed\",\"name\":\"H4\",\"size\":4}}]}}]}";

/* Same fields, different order, reversed enum, narrower types (promoted by the reader:
 * int ts, float value, long propensity, bytes channel), category_id not nullable. */
static const char *REORDERED_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"ts\",\"type\":\"int\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
    "\"PURCHASE\",\"ADD_TO_CART\",\"FAVORITE\",\"CLICK\",\"BROWSE\",\"IMPRESSION\"]}},"
    "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":[\"null\",\"float\"],\"default\":null},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"bytes\"],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":\"long\"},"
    "{\"name\":\"dwell_ms\",\"type\":\"int\"}]}";

static const char *NO_USER_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"}]}";

static const char *INT_USER_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"int\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"}]}";

static const char *OTHER_RECORD_SCHEMA = "{\"type\":\"record\",\"name\":\"Pageview\",\"fields\":["
                                         "{\"name\":\"event_id\",\"type\":\"string\"}]}";

static const char *UNION_INT_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\",\"int\"],\"default\":null},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"}]}";

static const char *STRING_TYPE_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"}]}";

/* The reader schema written differently: docs, aliases, a full name for the enum, a
 * type as an object, no logicalType, a missing default. Same canonical form. */
static const char *READER_RESTATED_SCHEMA =
    "{\"namespace\":\"tally\",\"name\":\"BehaviorEvent\",\"type\":\"record\","
    "\"doc\":\"restated\",\"aliases\":[\"Old\"],\"fields\":["
    "{\"type\":\"string\",\"name\":\"event_id\",\"doc\":\"id\"},"
    "{\"name\":\"user_id\",\"type\":{\"type\":\"string\"}},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"tally.EventType\",\"doc\":\"d\","
    "\"symbols\":[\"IMPRESSION\",\"BROWSE\",\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":[\"null\",\"double\"],\"default\":null}]}";

/* Canonical forms that differ from the reader's: another namespace; two enum symbols
 * swapped (same encoding size, different meaning of an index). */
static const char *OTHER_NAMESPACE_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"other\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":[\"null\",\"double\"],\"default\":null}]}";

static const char *ENUM_SWAP_SCHEMA =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
    "\"IMPRESSION\",\"CLICK\",\"BROWSE\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":[\"null\",\"double\"],\"default\":null}]}";

/* Readers of other shapes (each also registered as a writer, so the fast path applies
 * when a codec reads with it): null as the second union branch, non-null defaults, a
 * non-event boolean. */
static const char *DEFAULTS_READER =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"channel\",\"type\":[\"string\",\"null\"],\"default\":\"web\"},"
    "{\"name\":\"propensity\",\"type\":[\"double\",\"null\"],\"default\":0.5},"
    "{\"name\":\"flag\",\"type\":[\"null\",\"boolean\"],\"default\":null}]}";

/* Reordered fields, reversed enum, int ts, float value and propensity, non-union
 * category_id and dwell_ms, and non-event fields of bytes, enum and long. */
static const char *NARROW_READER =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"ts\",\"type\":\"int\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":["
    "\"PURCHASE\",\"ADD_TO_CART\",\"FAVORITE\",\"CLICK\",\"BROWSE\",\"IMPRESSION\"]}},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"note\",\"type\":[\"null\",\"bytes\"],\"default\":null},"
    "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"category_id\",\"type\":\"string\"},"
    "{\"name\":\"value\",\"type\":[\"float\",\"null\"],\"default\":0.5},"
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"level\",\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"Level\","
    "\"symbols\":[\"LO\",\"MID\",\"HI\"]}],\"default\":null},"
    "{\"name\":\"propensity\",\"type\":\"float\"},"
    "{\"name\":\"seen\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"dwell_ms\",\"type\":\"int\"}]}";

/* A long dwell_ms: the reader the fast path leaves to the generic one. */
static const char *LONG_DWELL_READER =
    "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":" ENUM_TYPE "},{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"long\"],\"default\":null}]}";

enum {
    ID_READER = 1,
    ID_OLD = 10,
    ID_NEW = 11,
    ID_REORDERED = 14,
    ID_NO_USER = 12,
    ID_INT_USER = 13,
    ID_OTHER = 15,
    ID_STRING = 16,
    ID_UNION_INT = 17,
    ID_STRING_TYPE = 18,
    ID_RESTATED = 19,
    ID_OTHER_NS = 20,
    ID_ENUM_SWAP = 21,
    ID_DEFAULTS = 22,
    ID_NARROW = 23,
    ID_LONG_DWELL = 24,
};

static char tmpdir[256];
static tl_schema_store *store;
static tl_codec *codec;
static tl_arena arena;

static void write_file(const char *name, const char *text) { fx_write_file(tmpdir, name, text); }

static char *slurp(const char *path) { return fx_slurp(path, NULL); }

static int setup(void **state)
{
    assert_int_equal(fx_mkdtemp(tmpdir, sizeof(tmpdir), "tally-test-codec"), 0);
    char *reader = slurp(READER);
    write_file("1-behavior_event.avsc", reader);
    free(reader);
    write_file("10-old.avsc", OLD_SCHEMA);
    write_file("11-new.avsc", NEW_SCHEMA);
    write_file("14-reordered.avsc", REORDERED_SCHEMA);
    write_file("12-no_user.avsc", NO_USER_SCHEMA);
    write_file("13-int_user.avsc", INT_USER_SCHEMA);
    write_file("15-other.avsc", OTHER_RECORD_SCHEMA);
    write_file("16-string.avsc", "\"string\"");
    write_file("17-union_int.avsc", UNION_INT_SCHEMA);
    write_file("18-string_type.avsc", STRING_TYPE_SCHEMA);
    write_file("19-restated.avsc", READER_RESTATED_SCHEMA);
    write_file("20-other_ns.avsc", OTHER_NAMESPACE_SCHEMA);
    write_file("21-enum_swap.avsc", ENUM_SWAP_SCHEMA);
    write_file("22-defaults.avsc", DEFAULTS_READER);
    write_file("23-narrow.avsc", NARROW_READER);
    write_file("24-long_dwell.avsc", LONG_DWELL_READER);
    char *v2 = slurp(TALLY_SCHEMA_DIR "/" TL_EVENT_SCHEMA);
    write_file("30-behavior_event.avsc", v2);
    free(v2);
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};
    store = tl_schema_store_new(&o, err, sizeof(err));
    if (!store) fail_msg("%s", err);
    codec = tl_codec_new(store, READER, err, sizeof(err));
    if (!codec) fail_msg("%s", err);
    tl_arena_init(&arena, 4096);
    return 0;
}

static int teardown(void **state)
{
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    tl_arena_destroy(&arena);
    assert_int_equal(fx_rm_rf(tmpdir), 0);
    return 0;
}

/* ------------------------------------------------------------- helpers */

static tl_event full_event(void)
{
    tl_event ev = {
        .event_id = "e-1",
        .user_id = "u-42",
        .item_id = "i-9",
        .category_id = "c-3",
        .channel = "search",
        .type = TL_ADD_TO_CART,
        .ts = 1700000000123LL,
        .dwell_ms = 1500,
        .value = 19.99,
        .propensity = 0.25,
        .has_dwell = 1,
        .has_value = 1,
        .has_propensity = 1,
    };
    return ev;
}

static tl_event sparse_event(void)
{
    tl_event ev = {
        .event_id = "e-2", .user_id = "u-7", .item_id = "i-1", .type = TL_PURCHASE, .ts = -5};
    return ev;
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (!a || !b) assert_ptr_equal(a, b);
    else assert_string_equal(a, b);
}

/* The strings, the type and the time of a and b are the same. */
static void assert_event_core_equal(const tl_event *a, const tl_event *b)
{
    assert_str_eq_or_null(a->event_id, b->event_id);
    assert_str_eq_or_null(a->user_id, b->user_id);
    assert_str_eq_or_null(a->item_id, b->item_id);
    assert_str_eq_or_null(a->category_id, b->category_id);
    assert_str_eq_or_null(a->channel, b->channel);
    assert_str_eq_or_null(a->campaign, b->campaign);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->ts, b->ts);
}

/* ... and the optional numbers each has are the same. */
static void assert_events_equal(const tl_event *a, const tl_event *b)
{
    assert_event_core_equal(a, b);
    assert_int_equal(a->has_dwell, b->has_dwell);
    if (a->has_dwell) assert_int_equal(a->dwell_ms, b->dwell_ms);
    assert_int_equal(a->has_value, b->has_value);
    if (a->has_value) assert_true(a->value == b->value);
    assert_int_equal(a->has_propensity, b->has_propensity);
    if (a->has_propensity) assert_true(a->propensity == b->propensity);
}

/* c decodes b into ev (cleared first); fails the test with the codec's message
 * otherwise. decode_ok: with the file's codec. */
static void decode_ok_with(tl_codec *c, const tl_buf *b, tl_event *ev)
{
    tl_dlq_reason reason;
    char err[256] = "";
    memset(ev, 0, sizeof(*ev));
    if (tl_codec_decode(c, b->data, b->len, ev, &arena, &reason, err, sizeof(err)) != 0)
        fail_msg("decode: %s", err);
}

static void decode_ok(const tl_buf *b, tl_event *ev) { decode_ok_with(codec, b, ev); }

/* Decoding fails with reason r and a message containing want. */
static void decode_fails(const void *buf, size_t len, tl_dlq_reason r, const char *want)
{
    tl_event ev = {0};
    tl_dlq_reason reason = TL_DLQ_REASON_COUNT;
    char err[512] = "";
    int rc = tl_codec_decode(codec, buf, len, &ev, &arena, &reason, err, sizeof(err));
    if (rc != TL_CODEC_BAD) fail_msg("decode returned %d, expected -1 (%s)", rc, want);
    if (reason != r)
        fail_msg("reason %s (%s), expected %s (%s)", tl_dlq_reason_name(reason), err,
                 tl_dlq_reason_name(r), want);
    if (want && !strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static tl_codec *codec_for(const char *file)
{
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
    tl_codec *c = tl_codec_new(store, path, err, sizeof(err));
    if (!c) fail_msg("%s", err);
    return c;
}

/* A codec reading with tmpdir/file cannot be made, for a reason containing want. */
static void codec_for_fails(const char *file, const char *want)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
    if (tl_codec_new(store, path, err, sizeof(err))) fail_msg("%s: a codec was made", file);
    if (!strstr(err, want)) fail_msg("%s: error \"%s\" lacks \"%s\"", file, err, want);
}

/* avro-c helpers: set a field by name, choosing the union branch of the given type. */
static avro_value_t field_for(avro_value_t *rec, const char *name, avro_type_t t)
{
    avro_value_t f, b = {0};
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0) fail_msg("no field %s", name);
    if (avro_value_get_type(&f) != AVRO_UNION) return f;
    avro_schema_t u = avro_value_get_schema(&f);
    for (size_t i = 0; i < avro_schema_union_size(u); i++) {
        if (avro_typeof(avro_schema_union_branch(u, (int)i)) == t) {
            assert_int_equal(avro_value_set_branch(&f, (int)i, &b), 0);
            return b;
        }
    }
    fail_msg("field %s has no branch of type %d", name, (int)t);
    return f;
}

static void set_str(avro_value_t *rec, const char *name, const char *v)
{
    avro_value_t f = field_for(rec, name, v ? AVRO_STRING : AVRO_NULL);
    if (v) assert_int_equal(avro_value_set_string(&f, v), 0);
    else assert_int_equal(avro_value_set_null(&f), 0);
}

static void set_null(avro_value_t *rec, const char *name)
{
    avro_value_t f = field_for(rec, name, AVRO_NULL);
    assert_int_equal(avro_value_set_null(&f), 0);
}

/* set_<kind>(rec, name, v): the field (its branch of Avro type t) set to v by setter. */
#define NUMBER_SETTER(kind, ctype, t, setter)                                                      \
    static void set_##kind(avro_value_t *rec, const char *name, ctype v)                           \
    {                                                                                              \
        avro_value_t f = field_for(rec, name, t);                                                  \
        assert_int_equal(setter(&f, v), 0);                                                        \
    }
NUMBER_SETTER(long, int64_t, AVRO_INT64, avro_value_set_long)
NUMBER_SETTER(int, int32_t, AVRO_INT32, avro_value_set_int)
NUMBER_SETTER(double, double, AVRO_DOUBLE, avro_value_set_double)
NUMBER_SETTER(float, float, AVRO_FLOAT, avro_value_set_float)
#undef NUMBER_SETTER

static void set_enum(avro_value_t *rec, const char *name, const char *symbol)
{
    avro_value_t f = field_for(rec, name, AVRO_ENUM);
    int idx = avro_schema_enum_get_by_name(avro_value_get_schema(&f), symbol);
    assert_true(idx >= 0);
    assert_int_equal(avro_value_set_enum(&f, idx), 0);
}

typedef struct writer_rec {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t v;
} writer_rec;

static void wr_begin(writer_rec *w, int32_t id)
{
    char err[256];
    assert_int_equal(tl_schema_store_get(store, id, &w->schema, err, sizeof(err)), TL_SCHEMA_OK);
    w->iface = avro_generic_class_from_schema(w->schema);
    assert_non_null(w->iface);
    assert_int_equal(avro_generic_value_new(w->iface, &w->v), 0);
}

/* The Confluent frame of schema id in h[0..5): magic byte 0, then the id big-endian. */
static void frame_of(uint8_t *h, int32_t id)
{
    h[0] = 0;
    h[1] = (uint8_t)(id >> 24);
    h[2] = (uint8_t)(id >> 16);
    h[3] = (uint8_t)(id >> 8);
    h[4] = (uint8_t)id;
}

/* Serialises the record with avro-c, framed with id, into out (replacing it). */
static void wr_finish(writer_rec *w, int32_t id, tl_buf *out)
{
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(&w->v, &size), 0);
    tl_buf_clear(out);
    tl_buf_reserve(out, size + 5);
    frame_of((uint8_t *)out->data, id);
    avro_writer_t aw = avro_writer_memory(out->data + 5, (int64_t)size);
    assert_int_equal(avro_value_write(aw, &w->v), 0);
    assert_int_equal(avro_writer_tell(aw), (int64_t)size);
    avro_writer_free(aw);
    out->len = size + 5;
    avro_value_decref(&w->v);
    avro_value_iface_decref(w->iface);
}

/* Whether the writer schema has the field. */
static int wr_has(const writer_rec *w, const char *name)
{
    return avro_schema_record_field_get_index(w->schema, name) >= 0;
}

/* The optional event fields: written when the writer schema has them, a NULL string or
 * a number the event does not have as null. opt_number: 1 when the caller is to set the
 * number, after it has set null where the event has none. */
static void opt_str(writer_rec *w, const char *name, const char *v)
{
    if (wr_has(w, name)) set_str(&w->v, name, v);
}

static int opt_number(writer_rec *w, const char *name, int has)
{
    if (!wr_has(w, name)) return 0;
    if (!has) set_null(&w->v, name);
    return has;
}

/* ev written by avro-c with writer schema id, framed, into out (replacing it). The
 * schema must have event_id, user_id, item_id, type and ts; see opt_str for the rest. */
static void avro_c_event(int32_t id, const tl_event *ev, tl_buf *out)
{
    writer_rec w;
    wr_begin(&w, id);
    set_str(&w.v, "event_id", ev->event_id);
    set_str(&w.v, "user_id", ev->user_id);
    set_str(&w.v, "item_id", ev->item_id);
    set_enum(&w.v, "type", tl_event_type_name(ev->type));
    set_long(&w.v, "ts", ev->ts);
    opt_str(&w, "category_id", ev->category_id);
    opt_str(&w, "channel", ev->channel);
    if (opt_number(&w, "dwell_ms", ev->has_dwell)) set_int(&w.v, "dwell_ms", ev->dwell_ms);
    if (opt_number(&w, "value", ev->has_value)) set_double(&w.v, "value", ev->value);
    if (opt_number(&w, "propensity", ev->has_propensity))
        set_double(&w.v, "propensity", ev->propensity);
    wr_finish(&w, id, out);
}

/* ---------------------------------------------------------------- tests */

static void test_round_trip(void **state)
{
    tl_buf b = {0};
    tl_event in[2] = {full_event(), sparse_event()};
    for (int k = 0; k < 2; k++) {
        tl_buf_clear(&b);
        assert_int_equal(tl_codec_encode_event(codec, ID_READER, &in[k], &b), 0);
        /* Framing: magic byte and big-endian id. */
        assert_true(b.len > 5);
        assert_memory_equal(b.data, "\0\0\0\0\1", 5);
        tl_event out = {.partition = 3, .offset = 77};
        tl_dlq_reason reason;
        char err[256] = "";
        if (tl_codec_decode(codec, b.data, b.len, &out, &arena, &reason, err, sizeof(err)) != 0)
            fail_msg("decode: %s", err);
        assert_events_equal(&in[k], &out);
        /* The source's coordinates are kept; strings are copies. */
        assert_int_equal(out.partition, 3);
        assert_int_equal(out.offset, 77);
        assert_ptr_not_equal(out.event_id, in[k].event_id);
        const tl_event_limits lim = {INT64_MIN, INT64_MAX, TL_EVENT_MAX_STRING_DEFAULT};
        assert_int_equal(tl_event_validate(&out, &lim, &reason, err, sizeof(err)), 0);
    }
    /* The id is written big-endian. */
    tl_event ev = full_event();
    tl_buf_clear(&b);
    assert_int_equal(tl_codec_encode_event(codec, 0x01020304, &ev, &b), 0);
    assert_memory_equal(b.data, "\0\1\2\3\4", 5);
    /* encode appends. */
    size_t one = b.len;
    assert_int_equal(tl_codec_encode_event(codec, 0x01020304, &ev, &b), 0);
    assert_int_equal(b.len, 2 * one);
    assert_memory_equal(b.data, b.data + one, one);

    /* Empty strings, extreme numbers and non-ASCII survive. */
    tl_event odd = {.event_id = "",
                    .user_id = "\xe7\x94\xa8\xe6\x88\xb7",
                    .item_id = "i",
                    .category_id = "",
                    .type = TL_IMPRESSION,
                    .ts = INT64_MIN,
                    .dwell_ms = INT32_MIN,
                    .value = -1e308,
                    .propensity = 5e-324,
                    .has_dwell = 1,
                    .has_value = 1,
                    .has_propensity = 1};
    tl_buf_clear(&b);
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &odd, &b), 0);
    tl_event out;
    decode_ok(&b, &out);
    assert_events_equal(&odd, &out);
    tl_buf_free(&b);
}

static void test_encoder_matches_avro_c(void **state)
{
    /* Byte for byte: the hand-written encoder and avro-c agree, on every field set
     * and on every optional one null. */
    tl_buf mine = {0}, theirs = {0};
    const tl_event in[] = {full_event(), sparse_event()};
    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
        tl_buf_clear(&mine);
        assert_int_equal(tl_codec_encode_event(codec, ID_READER, &in[k], &mine), 0);
        avro_c_event(ID_READER, &in[k], &theirs);
        if (mine.len != theirs.len || memcmp(mine.data, theirs.data, mine.len) != 0)
            fail_msg("event %s: the encoder's %zu bytes differ from avro-c's %zu", in[k].event_id,
                     mine.len, theirs.len);
    }
    tl_event ev = full_event();

    /* And avro-c reads what the codec writes. */
    avro_schema_t reader;
    char err[256];
    assert_int_equal(tl_schema_store_get(store, ID_READER, &reader, err, sizeof(err)), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(reader);
    avro_value_t v, f, br;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    tl_buf_clear(&mine);
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &mine), 0);
    avro_reader_t r = avro_reader_memory(mine.data + 5, (int64_t)mine.len - 5);
    assert_int_equal(avro_value_read(r, &v), 0);
    char extra;
    assert_int_not_equal(avro_read(r, &extra, 1), 0);   /* all bytes consumed */
    const char *s;
    size_t n;
    assert_int_equal(avro_value_get_by_name(&v, "user_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &s, &n), 0);
    assert_string_equal(s, "u-42");
    assert_int_equal(avro_value_get_by_name(&v, "propensity", &f, NULL), 0);
    assert_int_equal(avro_value_get_current_branch(&f, &br), 0);
    double d = 0;
    assert_int_equal(avro_value_get_double(&br, &d), 0);
    assert_true(d == 0.25);
    int e = 0;
    assert_int_equal(avro_value_get_by_name(&v, "type", &f, NULL), 0);
    assert_int_equal(avro_value_get_enum(&f, &e), 0);
    assert_string_equal(avro_schema_enum_get(avro_value_get_schema(&f), e), "ADD_TO_CART");
    avro_reader_free(r);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    tl_buf_free(&mine);
    tl_buf_free(&theirs);
}

static void test_encode_refuses(void **state)
{
    tl_buf b = {0};
    tl_buf_puts(&b, "keep");
    tl_event ev = full_event();
    ev.user_id = NULL;
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), -1);
    ev = full_event();
    ev.type = TL_EVENT_TYPE_COUNT;
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), -1);
    assert_string_equal(b.data, "keep");
    assert_int_equal(b.len, 4);
    tl_buf_free(&b);
}

static void test_old_writer(void **state)
{
    /* The old schema has no channel and no propensity. */
    tl_buf b = {0};
    tl_event want = {.event_id = "e-old",
                     .user_id = "u-1",
                     .item_id = "i-1",
                     .category_id = "c-1",
                     .type = TL_CLICK,
                     .ts = 1600000000000LL,
                     .dwell_ms = 700,
                     .has_dwell = 1,
                     .value = 2.5,
                     .has_value = 1};
    avro_c_event(ID_OLD, &want, &b);
    tl_event ev;
    decode_ok(&b, &ev);
    /* channel and propensity take their defaults (null). */
    assert_events_equal(&want, &ev);
    assert_null(ev.channel);
    assert_false(ev.has_propensity);

    /* A second record reuses the cached resolver and values. */
    const tl_event second = {
        .event_id = "e-old2", .user_id = "u-2", .item_id = "i-2", .type = TL_IMPRESSION, .ts = 1};
    avro_c_event(ID_OLD, &second, &b);
    decode_ok(&b, &ev);
    assert_events_equal(&second, &ev);
    assert_string_equal(ev.event_id, "e-old2");
    assert_null(ev.category_id);
    assert_int_equal(ev.type, TL_IMPRESSION);
    assert_false(ev.has_dwell);
    assert_false(ev.has_value);
    tl_buf_free(&b);
}

static void test_non_null_defaults(void **state)
{
    /* A reader whose fields missing from the old writer have non-null defaults. */
    tl_codec *c = codec_for("22-defaults.avsc");

    tl_buf b = {0};
    const tl_event old = {
        .event_id = "e", .user_id = "u", .item_id = "i", .type = TL_FAVORITE, .ts = 5};
    avro_c_event(ID_OLD, &old, &b);
    tl_event ev;
    decode_ok_with(c, &b, &ev);
    assert_string_equal(ev.channel, "web");
    assert_true(ev.has_propensity);
    assert_true(ev.propensity == 0.5);
    /* Fields the reader does not have are not filled. */
    assert_null(ev.category_id);
    assert_false(ev.has_dwell);
    assert_int_equal(ev.type, TL_FAVORITE);

    /* The encoder follows this reader's field order and union branch order: the
     * non-tally field "flag" is written as null, channel as branch 0. */
    tl_event in = sparse_event();
    in.channel = "app";
    tl_buf_clear(&b);
    assert_int_equal(tl_codec_encode_event(c, ID_READER, &in, &b), 0);
    static const char want[] = "\0\0\0\0\1"
                               "\6e-2"
                               "\6u-7"
                               "\6i-1"
                               "\x0a"
                               "\x09"
                               "\0\6app"
                               "\x02"
                               "\0";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    tl_codec_destroy(c);
    tl_buf_free(&b);
}

static void new_record(tl_buf *b, const char *type, int n_tags)
{
    writer_rec w;
    wr_begin(&w, ID_NEW);
    set_str(&w.v, "event_id", "e-new");
    set_str(&w.v, "user_id", "u-9");
    set_str(&w.v, "session_id", "s-123");
    set_str(&w.v, "item_id", "i-5");
    set_null(&w.v, "category_id");
    set_enum(&w.v, "type", type);
    set_long(&w.v, "ts", 1800000000000LL);
    set_str(&w.v, "channel", "email");
    set_null(&w.v, "dwell_ms");
    set_double(&w.v, "value", 100.0);
    set_double(&w.v, "propensity", 1.0);
    avro_value_t f, item, dev, x;
    assert_int_equal(avro_value_get_by_name(&w.v, "tags", &f, NULL), 0);
    for (int i = 0; i < n_tags; i++) {
        assert_int_equal(avro_value_append(&f, &item, NULL), 0);
        assert_int_equal(avro_value_set_string(&item, i % 2 ? "sale" : "new"), 0);
    }
    assert_int_equal(avro_value_get_by_name(&w.v, "attrs", &f, NULL), 0);
    assert_int_equal(avro_value_add(&f, "views", &item, NULL, NULL), 0);
    assert_int_equal(avro_value_set_long(&item, 12345678901LL), 0);
    assert_int_equal(avro_value_get_by_name(&w.v, "device", &dev, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&dev, "os", &x, NULL), 0);
    assert_int_equal(avro_value_set_string(&x, "linux"), 0);
    assert_int_equal(avro_value_get_by_name(&dev, "mobile", &x, NULL), 0);
    assert_int_equal(avro_value_set_boolean(&x, 1), 0);
    assert_int_equal(avro_value_get_by_name(&dev, "hash", &x, NULL), 0);
    assert_int_equal(avro_value_set_fixed(&x, "abcd", 4), 0);
    wr_finish(&w, ID_NEW, b);
}

static void test_new_writer(void **state)
{
    tl_buf b = {0};
    new_record(&b, "PURCHASE", 3);
    tl_event ev;
    decode_ok(&b, &ev);
    tl_event want = {.event_id = "e-new",
                     .user_id = "u-9",
                     .item_id = "i-5",
                     .channel = "email",
                     .type = TL_PURCHASE,
                     .ts = 1800000000000LL,
                     .value = 100.0,
                     .has_value = 1,
                     .propensity = 1.0,
                     .has_propensity = 1};
    assert_events_equal(&want, &ev);

    /* A symbol the reader does not have: that record cannot be represented. */
    new_record(&b, "SHARE", 0);
    decode_fails(b.data, b.len, TL_DLQ_INCOMPATIBLE_SCHEMA, "SHARE");

    /* Every truncation of a record with arrays, maps, records and fixed is malformed. */
    new_record(&b, "CLICK", 5);
    for (size_t k = 5; k < b.len; k++) decode_fails(b.data, k, TL_DLQ_MALFORMED, "malformed");
    decode_ok(&b, &ev);
    assert_int_equal(ev.type, TL_CLICK);
    tl_buf_free(&b);
}

static void test_reordered_writer(void **state)
{
    /* Enum symbols in another order are matched by name; int ts and float value are
     * promoted; a non-nullable category_id fills the reader's nullable one. */
    static const struct {
        const char *sym;
        tl_event_type t;
    } cases[] = {
        {"PURCHASE", TL_PURCHASE},       {"IMPRESSION", TL_IMPRESSION}, {"CLICK", TL_CLICK},
        {"ADD_TO_CART", TL_ADD_TO_CART}, {"BROWSE", TL_BROWSE},         {"FAVORITE", TL_FAVORITE},
    };
    tl_buf b = {0};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        writer_rec w;
        wr_begin(&w, ID_REORDERED);
        set_int(&w.v, "ts", 123456);
        set_enum(&w.v, "type", cases[k].sym);
        set_str(&w.v, "item_id", "i-r");
        set_str(&w.v, "user_id", "u-r");
        set_str(&w.v, "event_id", "e-r");
        set_str(&w.v, "category_id", "c-r");
        set_float(&w.v, "value", 0.5f);
        if (k % 2) {
            set_null(&w.v, "channel");
        } else {
            avro_value_t f = field_for(&w.v, "channel", AVRO_BYTES);
            assert_int_equal(avro_value_set_bytes(&f, "ads", 3), 0);
        }
        set_long(&w.v, "propensity", 1);
        set_int(&w.v, "dwell_ms", 42);
        wr_finish(&w, ID_REORDERED, &b);
        tl_event ev;
        decode_ok(&b, &ev);
        tl_event want = {.event_id = "e-r",
                         .user_id = "u-r",
                         .item_id = "i-r",
                         .category_id = "c-r",
                         .type = cases[k].t,
                         .ts = 123456,
                         .dwell_ms = 42,
                         .has_dwell = 1,
                         .value = 0.5,
                         .has_value = 1,
                         .channel = k % 2 ? NULL : "ads",
                         .propensity = 1.0,
                         .has_propensity = 1};
        assert_events_equal(&want, &ev);
    }
    tl_buf_free(&b);
}

/* A string literal as (pointer, length), embedded NULs included. */
#define BODY(lit) (lit), sizeof(lit) - 1

/* A record body each check of the parser rejects as malformed (reader schema), and the
 * message it gives. */
static const struct {
    const char *body;
    size_t n;
    const char *want;
} malformed_bodies[] = {
    /* event_id with length -1 (zigzag 0x01); claiming 2^62 bytes */
    {BODY("\x01"), "negative length"},
    {BODY("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"), "length past the end"},
    /* varints of 11 bytes, and of 10 with bits past the 64th */
    {BODY("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), "varint longer than 64 bits"},
    {BODY("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"), "varint longer than 64 bits"},
    {BODY("\x80"), "truncated varint"},
    /* three strings, then union branch 2, and -1, of ["null","string"] */
    {BODY("\2a\2b\2c\x04"), "union branch index out of range"},
    {BODY("\2a\2b\2c\x01"), "union branch index out of range"},
    /* enum index 6 of 6 symbols (zigzag 12), and -1 */
    {BODY("\2a\2b\2c\0\x0c\0\0\0\0\0"), "enum index out of range"},
    {BODY("\2a\2b\2c\0\x01\0\0\0\0\0"), "enum index out of range"},
    /* an int field (dwell_ms) out of the 32-bit range, both ways */
    {BODY("\2a\2b\2c\0\x0a\x02\0\x02\xff\xff\xff\xff\x7f\0\0"), "int out of range"},
    {BODY("\2a\2b\2c\0\x0a\x02\0\x02\x80\x80\x80\x80\x10\0\0"), "int out of range"},
    {BODY("\2a\2b\2c\0\x0a\x02\0\0\x02\0\0\0\0\0\0\0"), "length past the end"},
    {BODY("\2a\2b\2c\0\x0a\x02\0\0\0\0\0"), "1 trailing bytes"},
};

static void framed(tl_buf *b, int32_t id, const void *body, size_t n)
{
    tl_buf_clear(b);
    uint8_t h[5];
    frame_of(h, id);
    tl_buf_append(b, h, 5);
    tl_buf_append(b, body, n);
}

static void test_incompatible(void **state)
{
    /* Any body: resolution is decided before the body is read. The second record of
     * ID_NO_USER gets the cached answer. */
    static const struct {
        int32_t id;
        const char *body;
        size_t n;
        const char *want;
    } cases[] = {
        {ID_NO_USER, BODY("\2a\2b\0\0"), "user_id"},
        {ID_NO_USER, BODY("\2a\2b\0\0"), "no field user_id"},
        {ID_INT_USER, BODY("\2a\2\2b\0\0"), "schema id 13"},
        {ID_OTHER, BODY("\2a"), "Pageview"},
        {ID_STRING, BODY("\2a"), "not a record"},
        {ID_STRING_TYPE, BODY("\2a\2b\2c\2x\0"), "schema id 18"},
    };
    tl_buf b = {0};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        framed(&b, cases[k].id, cases[k].body, cases[k].n);
        decode_fails(b.data, b.len, TL_DLQ_INCOMPATIBLE_SCHEMA, cases[k].want);
    }

    /* A union with an extra branch resolves; records using that branch do not. */
    const tl_event browse = {.event_id = "e",
                             .user_id = "u",
                             .item_id = "i",
                             .category_id = "c",
                             .type = TL_BROWSE,
                             .ts = 9};
    avro_c_event(ID_UNION_INT, &browse, &b);
    tl_event ev;
    decode_ok(&b, &ev);
    assert_string_equal(ev.category_id, "c");
    assert_int_equal(ev.type, TL_BROWSE);

    writer_rec w;
    wr_begin(&w, ID_UNION_INT);
    set_str(&w.v, "event_id", "e");
    set_str(&w.v, "user_id", "u");
    set_str(&w.v, "item_id", "i");
    set_int(&w.v, "category_id", 7);
    set_enum(&w.v, "type", "BROWSE");
    set_long(&w.v, "ts", 9);
    wr_finish(&w, ID_UNION_INT, &b);
    decode_fails(b.data, b.len, TL_DLQ_INCOMPATIBLE_SCHEMA, "cannot be resolved");
    tl_buf_free(&b);
}

static void test_framing_and_limits(void **state)
{
    tl_buf b = {0};
    tl_event ev = full_event();
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);

    decode_fails(NULL, 0, TL_DLQ_NOT_FRAMED, "0 bytes");
    for (size_t k = 1; k < 5; k++) decode_fails(b.data, k, TL_DLQ_NOT_FRAMED, "shorter");
    b.data[0] = 1;
    decode_fails(b.data, b.len, TL_DLQ_NOT_FRAMED, "0x01");
    b.data[0] = 0;

    /* Unknown id. */
    b.data[4] = 99;
    decode_fails(b.data, b.len, TL_DLQ_UNKNOWN_SCHEMA, "schema id 99 not found in schema.dir");
    b.data[4] = 1;

    /* Oversized, checked before anything else; the limit itself is allowed. */
    tl_codec_set_max_bytes(codec, b.len - 1);
    decode_fails(b.data, b.len, TL_DLQ_OVERSIZED, "exceeds");
    tl_codec_set_max_bytes(codec, b.len);
    tl_event out;
    decode_ok(&b, &out);
    tl_codec_set_max_bytes(codec, TL_CODEC_DEFAULT_MAX_BYTES);
    tl_buf_free(&b);
}

/* A NUL byte inside a string would cut it silently: both paths dead-letter the record,
 * with the same reason and message. */
static void test_nul_in_string(void **state)
{
    tl_buf b = {0};
    tl_event ev = full_event();
    ev.item_id = "iXq";
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);
    char *x = memchr(b.data, 'X', b.len);
    assert_non_null(x);
    *x = '\0';
    for (int fast = 1; fast >= 0; fast--) {
        tl_codec_set_fast_path(codec, fast);
        decode_fails(b.data, b.len, TL_DLQ_BAD_STRING, "field item_id holds a NUL byte at byte 1");
    }
    tl_codec_set_fast_path(codec, 1);
    tl_buf_free(&b);
}

static void test_malformed(void **state)
{
    tl_buf b = {0};
    tl_event ev = full_event();
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);

    /* Every truncation of the body. */
    for (size_t k = 5; k < b.len; k++) decode_fails(b.data, k, TL_DLQ_MALFORMED, "malformed");
    /* Trailing bytes. */
    tl_buf_putc(&b, 0);
    decode_fails(b.data, b.len, TL_DLQ_MALFORMED, "1 trailing byte");

    /* A body for each check of the parser. */
    tl_buf m = {0};
    for (size_t k = 0; k < sizeof(malformed_bodies) / sizeof(malformed_bodies[0]); k++) {
        framed(&m, ID_READER, malformed_bodies[k].body, malformed_bodies[k].n);
        decode_fails(m.data, m.len, TL_DLQ_MALFORMED, malformed_bodies[k].want);
    }
    /* The smallest valid body decodes (all optionals null). */
    framed(&m, ID_READER, "\2a\2b\2c\0\x0a\x02\0\0\0\0", 13);
    tl_event out;
    decode_ok(&m, &out);
    assert_int_equal(out.type, TL_PURCHASE);
    assert_int_equal(out.ts, 1);

    /* A writer array claiming more items than the bytes could hold. */
    tl_buf_clear(&b);
    new_record(&b, "CLICK", 0);
    /* Find the empty tags array: after "...propensity" union+double comes 0x00 (tags end). */
    for (size_t k = 5; k + 1 < b.len; k++) {
        if ((uint8_t)b.data[k] == 0 && (uint8_t)b.data[k + 1] == 0x02 &&
            memcmp(b.data + k + 2, "\nviews", 6) == 0) {
            tl_buf big = {0};
            tl_buf_append(&big, b.data, k);
            tl_buf_append(&big, "\xfe\xff\xff\xff\x0f", 5);   /* count 2^31-1 */
            tl_buf_append(&big, b.data + k + 1, b.len - k - 1);
            decode_fails(big.data, big.len, TL_DLQ_MALFORMED, "too many");
            tl_buf_free(&big);
            break;
        }
        if (k + 2 == b.len) fail_msg("tags array not found in the encoding");
    }
    tl_buf_free(&b);
    tl_buf_free(&m);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_rand(void) { return fx_xorshift64(&rng); }

static void check_any(const void *buf, size_t len, int *n_ok)
{
    tl_event ev = {0};
    tl_dlq_reason reason = TL_DLQ_REASON_COUNT;
    char err[512];
    int rc = tl_codec_decode(codec, buf, len, &ev, &arena, &reason, err, sizeof(err));
    if (rc == 0) {
        assert_non_null(ev.event_id);
        assert_non_null(ev.user_id);
        assert_non_null(ev.item_id);
        assert_true((unsigned)ev.type < TL_EVENT_TYPE_COUNT);
        (*n_ok)++;
    } else {
        assert_int_equal(rc, TL_CODEC_BAD);
        assert_true(reason < TL_DLQ_REASON_COUNT);
        assert_true(strlen(err) > 0);
    }
}

static void test_random_inputs(void **state)
{
    static const int32_t ids[] = {ID_READER, ID_OLD, ID_NEW, ID_REORDERED, ID_UNION_INT, 999};
    uint8_t buf[256];
    int n_ok = 0;
    /* Random bodies behind valid frames. */
    for (int i = 0; i < 30000; i++) {
        size_t len = 5 + next_rand() % 120;
        int32_t id = ids[next_rand() % (sizeof(ids) / sizeof(ids[0]))];
        frame_of(buf, id);
        for (size_t k = 5; k < len; k++) {
            uint64_t r = next_rand();
            /* Mostly small bytes, so lengths and indexes are often plausible. */
            buf[k] = (uint8_t)(r % 4 == 0 ? r >> 8 : (r >> 8) % 16);
        }
        uint8_t *copy = malloc(len);   /* exact size, so ASan sees any over-read */
        memcpy(copy, buf, len);
        check_any(copy, len, &n_ok);
        free(copy);
        if (i % 1000 == 0) tl_arena_reset(&arena);
    }
    /* Mutations of valid records of every writer schema. */
    tl_buf b = {0};
    tl_event ev = full_event();
    for (int i = 0; i < 20000; i++) {
        int kind = (int)(next_rand() % 3);
        if (kind == 0) {
            tl_buf_clear(&b);
            assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);
        } else if (kind == 1) {
            new_record(&b, "FAVORITE", (int)(next_rand() % 4));
        } else {
            avro_c_event(ID_OLD, &ev, &b);   /* its fields the old schema has */
        }
        int flips = 1 + (int)(next_rand() % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = 5 + next_rand() % (b.len - 5);
            b.data[at] = (char)next_rand();
        }
        size_t len = b.len;
        if (next_rand() % 4 == 0) len = 5 + next_rand() % (b.len - 4);
        uint8_t *copy = malloc(len);
        memcpy(copy, b.data, len);
        check_any(copy, len, &n_ok);
        free(copy);
        if (i % 1000 == 0) tl_arena_reset(&arena);
    }
    /* Some inputs must have decoded, or the loop tested nothing but rejection. */
    assert_true(n_ok > 100);
    tl_buf_free(&b);
}

/* ------------------------------------------------ fast path vs generic path */

/* Field by field, doubles bit for bit (a flipped byte can make a NaN). */
static void assert_events_identical(const tl_event *a, const tl_event *b)
{
    assert_event_core_equal(a, b);
    assert_int_equal(a->has_dwell, b->has_dwell);
    assert_int_equal(a->dwell_ms, b->dwell_ms);
    assert_int_equal(a->has_value, b->has_value);
    assert_memory_equal(&a->value, &b->value, sizeof(double));
    assert_int_equal(a->has_propensity, b->has_propensity);
    assert_memory_equal(&a->propensity, &b->propensity, sizeof(double));
    assert_int_equal(a->partition, b->partition);
    assert_int_equal(a->offset, b->offset);
}

typedef struct diff_stats {
    int ok, bad;
    int by_reason[TL_DLQ_REASON_COUNT];
} diff_stats;

/* Decodes buf[0..len) (copied to an exact-size block, so ASan sees any over-read) on
 * the fast path and on the generic path: same code, reason, message and event. A
 * failed decode leaves the event as it was on both paths. Returns the code. */
static int diff_one(tl_codec *c, const void *buf, size_t len, diff_stats *st)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    tl_event before;
    memset(&before, 0x5a, sizeof(before));   /* never dereferenced */
    before.partition = 7;
    before.offset = 12345;
    tl_event ev[2] = {before, before};
    tl_dlq_reason reason[2] = {TL_DLQ_REASON_COUNT, TL_DLQ_REASON_COUNT};
    char err[2][512] = {"", ""};
    int rc[2];
    for (int k = 0; k < 2; k++) {
        tl_codec_set_fast_path(c, k == 0);
        rc[k] = tl_codec_decode(c, copy, len, &ev[k], &arena, &reason[k], err[k], sizeof(err[k]));
    }
    tl_codec_set_fast_path(c, 1);
    free(copy);
    if (rc[0] != rc[1] || (rc[0] != 0 && (reason[0] != reason[1] || strcmp(err[0], err[1]))))
        fail_msg("fast path: %d %s \"%s\"; generic path: %d %s \"%s\"", rc[0],
                 tl_dlq_reason_name(reason[0]), err[0], rc[1], tl_dlq_reason_name(reason[1]),
                 err[1]);
    if (rc[0] == 0) {
        assert_events_identical(&ev[0], &ev[1]);
        st->ok++;
    } else {
        assert_int_equal(rc[0], TL_CODEC_BAD);
        assert_memory_equal(&ev[0], &before, sizeof(before));
        assert_memory_equal(&ev[1], &before, sizeof(before));
        st->bad++;
        st->by_reason[reason[0]]++;
    }
    return rc[0];
}

/* The record, every truncation of it, byte flips in its body, appended bytes. */
static void diff_record(tl_codec *c, const tl_buf *rec, diff_stats *st)
{
    if (diff_one(c, rec->data, rec->len, st) != 0) fail_msg("a valid record does not decode");
    for (size_t k = 0; k < rec->len; k++) diff_one(c, rec->data, k, st);
    uint8_t *m = malloc(rec->len + 4);
    for (int i = 0; i < 12; i++) {
        memcpy(m, rec->data, rec->len);
        int flips = 1 + (int)(next_rand() % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = 5 + next_rand() % (rec->len - 5);
            uint64_t r = next_rand();
            /* Half the flips are small values, so they land on plausible lengths,
             * indexes and varints; the other half are any byte. */
            m[at] = (uint8_t)(r % 2 ? r >> 8 : (r >> 8) % 8);
        }
        diff_one(c, m, rec->len, st);
    }
    for (size_t extra = 1; extra <= 3; extra++) {
        memcpy(m, rec->data, rec->len);
        for (size_t k = 0; k < extra; k++) m[rec->len + k] = (uint8_t)next_rand();
        assert_int_equal(diff_one(c, m, rec->len + extra, st), TL_CODEC_BAD);
    }
    free(m);
}

/* A random string in a: empty, short, or (rarely) long; any byte but NUL. */
static char *rand_string(tl_arena *a)
{
    uint64_t r = next_rand();
    size_t n;
    switch (r % 16) {
    case 0: n = 0; break;
    case 1: n = 128 + (size_t)(next_rand() % 2000); break;   /* multi-byte length */
    default: n = 1 + (size_t)(next_rand() % 40); break;
    }
    char *s = tl_arena_alloc(a, n + 1);
    for (size_t k = 0; k < n; k++) {
        uint64_t x = next_rand();
        s[k] = (char)(x % 3 ? 'a' + (x >> 8) % 26 : 1 + (x >> 8) % 255);
    }
    s[n] = '\0';
    return s;
}

static int64_t pick_i64(void)
{
    static const int64_t v[] = {INT64_MIN,
                                INT64_MIN + 1,
                                INT64_MAX,
                                0,
                                1,
                                -1,
                                63,
                                64,
                                -64,
                                -65,
                                INT32_MIN,
                                INT32_MAX,
                                (int64_t)INT32_MAX + 1,
                                (int64_t)INT32_MIN - 1,
                                1700000000123LL,
                                -1700000000123LL};
    uint64_t r = next_rand();
    return r % 3 ? v[(r >> 8) % (sizeof(v) / sizeof(v[0]))] : (int64_t)next_rand() >> (r % 64);
}

static int32_t pick_i32(void)
{
    static const int32_t v[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, 0,    1,    -1,  63,
                                64,        -64,           -65,       1500, 8191, 8192};
    uint64_t r = next_rand();
    return r % 3 ? v[(r >> 8) % (sizeof(v) / sizeof(v[0]))] : (int32_t)(uint32_t)next_rand();
}

static double pick_double(void)
{
    static const double v[] = {0.0,     -0.0,     1.0,     0.25,     1e-300,    5e-324, -5e-324,
                               DBL_MAX, -DBL_MAX, DBL_MIN, INFINITY, -INFINITY, NAN,    19.99};
    uint64_t r = next_rand();
    if (r % 3) return v[(r >> 8) % (sizeof(v) / sizeof(v[0]))];
    uint64_t bits = next_rand();
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* Event i: type i % 6, optional fields present by the bits of i / 6, the rest random. */
static tl_event gen_event(int i, tl_arena *a)
{
    int opt = i / TL_EVENT_TYPE_COUNT;
    tl_event ev = {
        .event_id = rand_string(a),
        .user_id = rand_string(a),
        .item_id = rand_string(a),
        .category_id = opt & 1 ? rand_string(a) : NULL,
        .channel = opt & 2 ? rand_string(a) : NULL,
        .type = (tl_event_type)(i % TL_EVENT_TYPE_COUNT),
        .ts = pick_i64(),
        .has_dwell = (opt & 4) != 0,
        .has_value = (opt & 8) != 0,
        .has_propensity = (opt & 16) != 0,
    };
    if (ev.has_dwell) ev.dwell_ms = pick_i32();
    if (ev.has_value) ev.value = pick_double();
    if (ev.has_propensity) ev.propensity = pick_double();
    return ev;
}

static void test_fast_path_matches_generic(void **state)
{
    diff_stats st = {0};
    tl_arena gen;
    tl_arena_init(&gen, 4096);
    tl_buf b = {0};
    /* Generated events: every type with every combination of optional fields. */
    for (int i = 0; i < 1200; i++) {
        tl_event ev = gen_event(i, &gen);
        tl_buf_clear(&b);
        assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);
        diff_record(codec, &b, &st);
        /* What the generic path gives is what was encoded. */
        tl_event out;
        decode_ok(&b, &out);
        assert_events_identical(&ev, &out);
        tl_arena_reset(&gen);
        tl_arena_reset(&arena);
    }
    assert_true(tl_codec_uses_fast_path(codec, ID_READER));

    /* Random bodies, mostly small bytes so lengths and indexes are often plausible. */
    uint8_t buf[96];
    for (int i = 0; i < 20000; i++) {
        size_t len = 5 + next_rand() % (sizeof(buf) - 5);
        memcpy(buf, "\0\0\0\0\1", 5);
        for (size_t k = 5; k < len; k++) {
            uint64_t r = next_rand();
            buf[k] = (uint8_t)(r % 4 == 0 ? r >> 8 : (r >> 8) % 16);
        }
        diff_one(codec, buf, len, &st);
        if (i % 1000 == 0) tl_arena_reset(&arena);
    }

    /* Hand-made bodies for each check the parser makes. */
    tl_buf m = {0};
    for (size_t k = 0; k < sizeof(malformed_bodies) / sizeof(malformed_bodies[0]); k++) {
        framed(&m, ID_READER, malformed_bodies[k].body, malformed_bodies[k].n);
        if (diff_one(codec, m.data, m.len, &st) != TL_CODEC_BAD)
            fail_msg("case %zu (%s) decodes", k, malformed_bodies[k].want);
        decode_fails(m.data, m.len, TL_DLQ_MALFORMED, malformed_bodies[k].want);
    }
    /* Boundaries that are valid: the largest int dwell, a 10-byte varint ts. */
    framed(&m, ID_READER,
           BODY("\2a\2b\2c\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\0\x02"
                "\xfe\xff\xff\xff\x0f\0\0"));
    assert_int_equal(diff_one(codec, m.data, m.len, &st), 0);

    /* Both outcomes were exercised, and malformed bodies of every kind. */
    assert_true(st.ok > 5000);
    assert_true(st.by_reason[TL_DLQ_MALFORMED] > 100000);
    assert_true(st.by_reason[TL_DLQ_NOT_FRAMED] > 1000);   /* truncations inside the frame */
    tl_buf_free(&m);
    tl_buf_free(&b);
    tl_arena_destroy(&gen);
}

/* A record of DEFAULTS_READER written by avro-c, with the non-event boolean set (as only
 * avro-c can write it) in most; i picks the type and which optional fields are null. */
static void defaults_record(tl_buf *out, tl_arena *gen, int i)
{
    writer_rec w;
    wr_begin(&w, ID_DEFAULTS);
    set_str(&w.v, "event_id", rand_string(gen));
    set_str(&w.v, "user_id", rand_string(gen));
    set_str(&w.v, "item_id", rand_string(gen));
    set_enum(&w.v, "type", tl_event_type_name((tl_event_type)(i % 6)));
    set_long(&w.v, "ts", pick_i64());
    set_str(&w.v, "channel", i % 4 ? rand_string(gen) : NULL);
    if (i % 3) set_double(&w.v, "propensity", pick_double());
    else set_null(&w.v, "propensity");
    avro_value_t f = field_for(&w.v, "flag", i % 5 ? AVRO_BOOLEAN : AVRO_NULL);
    if (i % 5) assert_int_equal(avro_value_set_boolean(&f, i % 2), 0);
    else assert_int_equal(avro_value_set_null(&f), 0);
    wr_finish(&w, ID_DEFAULTS, out);
}

/* A record of NARROW_READER written by avro-c, with its non-event fields set. */
static void narrow_record(tl_buf *out, tl_arena *gen, int i)
{
    (void)i;
    static const char *const syms[] = {"PURCHASE", "ADD_TO_CART", "FAVORITE",
                                       "CLICK",    "BROWSE",      "IMPRESSION"};
    writer_rec w;
    wr_begin(&w, ID_NARROW);
    set_int(&w.v, "ts", pick_i32());
    set_enum(&w.v, "type", syms[next_rand() % 6]);
    set_str(&w.v, "item_id", rand_string(gen));
    if (next_rand() % 2) {
        avro_value_t f = field_for(&w.v, "note", AVRO_BYTES);
        assert_int_equal(avro_value_set_bytes(&f, "\0\1\2", next_rand() % 4), 0);
    } else {
        set_null(&w.v, "note");
    }
    set_str(&w.v, "user_id", rand_string(gen));
    set_str(&w.v, "event_id", rand_string(gen));
    set_str(&w.v, "category_id", rand_string(gen));
    if (next_rand() % 2) set_float(&w.v, "value", (float)pick_double());
    else set_null(&w.v, "value");
    set_str(&w.v, "channel", next_rand() % 2 ? rand_string(gen) : NULL);
    if (next_rand() % 2) {
        avro_value_t f = field_for(&w.v, "level", AVRO_ENUM);
        assert_int_equal(avro_value_set_enum(&f, (int)(next_rand() % 3)), 0);
    } else {
        set_null(&w.v, "level");
    }
    avro_value_t f;
    assert_int_equal(avro_value_get_by_name(&w.v, "propensity", &f, NULL), 0);
    assert_int_equal(avro_value_set_float(&f, (float)pick_double()), 0);
    if (next_rand() % 2) set_long(&w.v, "seen", pick_i64());
    else set_null(&w.v, "seen");
    set_int(&w.v, "dwell_ms", pick_i32());
    wr_finish(&w, ID_NARROW, out);
}

/* A generated event made to fit NARROW_READER: an int ts, a category, dwell_ms and a
 * propensity. */
static void narrow_fit(tl_event *ev, tl_arena *gen)
{
    if (ev->ts < INT32_MIN || ev->ts > INT32_MAX) ev->ts = (int32_t)ev->ts;
    ev->category_id = rand_string(gen);   /* not nullable in this reader */
    ev->has_dwell = ev->has_propensity = 1;
}

/* 300 records through diff_record with c, reading schema id: for odd i a generated event
 * (made to fit by fit, when given) encoded by the codec, for even i one avro-c writes
 * (avro_c_rec); then c takes the fast path for id. */
static void diff_reader(tl_codec *c, int32_t id, void (*fit)(tl_event *, tl_arena *),
                        void (*avro_c_rec)(tl_buf *, tl_arena *, int), diff_stats *st)
{
    tl_arena gen;
    tl_arena_init(&gen, 4096);
    tl_buf b = {0};
    for (int i = 0; i < 300; i++) {
        if (i % 2) {
            tl_event ev = gen_event(i, &gen);
            if (fit) fit(&ev, &gen);
            tl_buf_clear(&b);
            assert_int_equal(tl_codec_encode_event(c, id, &ev, &b), 0);
        } else {
            avro_c_rec(&b, &gen, i);
        }
        diff_record(c, &b, st);
        tl_arena_reset(&gen);
        tl_arena_reset(&arena);
    }
    assert_true(tl_codec_uses_fast_path(c, id));
    tl_buf_free(&b);
    tl_arena_destroy(&gen);
}

static void test_fast_path_other_readers(void **state)
{
    /* Readers of other shapes take the fast path for their own schema, and agree with
     * the generic path on valid and corrupted records. */
    diff_stats st = {0};
    tl_codec *dc = codec_for("22-defaults.avsc");
    diff_reader(dc, ID_DEFAULTS, NULL, defaults_record, &st);
    /* Booleans other than 0 and 1, and truncated ones. */
    tl_buf m = {0};
    framed(&m, ID_DEFAULTS, BODY("\2a\2b\2c\0\0\2\2\x02\x02"));
    assert_int_equal(diff_one(dc, m.data, m.len, &st), TL_CODEC_BAD);
    framed(&m, ID_DEFAULTS, BODY("\2a\2b\2c\0\0\2\2\x02"));
    assert_int_equal(diff_one(dc, m.data, m.len, &st), TL_CODEC_BAD);
    framed(&m, ID_DEFAULTS, BODY("\2a\2b\2c\0\0\2\2\x02\x01"));
    assert_int_equal(diff_one(dc, m.data, m.len, &st), 0);
    tl_codec_destroy(dc);

    tl_codec *nc = codec_for("23-narrow.avsc");
    diff_reader(nc, ID_NARROW, narrow_fit, narrow_record, &st);
    tl_codec_destroy(nc);

    assert_true(st.ok > 2000);
    assert_true(st.by_reason[TL_DLQ_MALFORMED] > 50000);
    tl_buf_free(&m);
}

/* Decodes b and returns whether its id then takes the fast path. */
static int fast_after_decode(tl_codec *c, const tl_buf *b)
{
    tl_event ev = {0};
    tl_dlq_reason reason;
    char err[512];
    tl_codec_decode(c, b->data, b->len, &ev, &arena, &reason, err, sizeof(err));
    int32_t id =
        (int32_t)(((uint32_t)(uint8_t)b->data[1] << 24) | ((uint32_t)(uint8_t)b->data[2] << 16) |
                  ((uint32_t)(uint8_t)b->data[3] << 8) | (uint8_t)b->data[4]);
    return tl_codec_uses_fast_path(c, id);
}

/* tally's reader schema, version 2 (campaign added): records of version 1 writers (id 1
 * here) take the fast path over their fields with campaign absent, exactly as the generic
 * path reads them; version 2 records carry the campaign; every truncation of either gives
 * the same answer on both paths. */
static void test_campaign_reader(void **state)
{
    (void)state;
    char err[512];
    tl_codec *c2 = tl_codec_new(store, TALLY_SCHEMA_DIR "/" TL_EVENT_SCHEMA, err, sizeof(err));
    if (!c2) fail_msg("%s", err);
    tl_buf b = {0};
    tl_event ev = full_event(), out;
    diff_stats st = {0};
    /* a version 1 record */
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);
    decode_ok_with(c2, &b, &out);
    assert_true(tl_codec_uses_fast_path(c2, ID_READER));
    assert_null(out.campaign);
    assert_events_equal(&ev, &out);
    for (size_t len = 0; len <= b.len; len++) diff_one(c2, b.data, len, &st);
    /* a version 2 record, with and without a campaign */
    for (int k = 0; k < 2; k++) {
        ev.campaign = k ? "spring-sale" : NULL;
        tl_buf_clear(&b);
        assert_int_equal(tl_codec_encode_event(c2, 30, &ev, &b), 0);
        decode_ok_with(c2, &b, &out);
        assert_true(tl_codec_uses_fast_path(c2, 30));
        assert_events_equal(&ev, &out);
        for (size_t len = 0; len <= b.len; len++) diff_one(c2, b.data, len, &st);
        /* the version 1 reader skips the campaign it does not know */
        decode_ok(&b, &out);
        assert_false(tl_codec_uses_fast_path(codec, 30));
        assert_null(out.campaign);
        ev.campaign = NULL;
        assert_events_equal(&ev, &out);
    }
    assert_int_equal(st.ok, 3);   /* the three whole records */
    tl_buf_free(&b);
    tl_codec_destroy(c2);
}

static void test_fast_path_decision(void **state)
{
    tl_buf b = {0};
    tl_event ev = full_event();
    /* Only ids already seen have a decision. */
    assert_false(tl_codec_uses_fast_path(codec, 4242));

    /* The reader's own id, and the reader written differently (same canonical form). */
    assert_int_equal(tl_codec_encode_event(codec, ID_READER, &ev, &b), 0);
    assert_true(fast_after_decode(codec, &b));
    tl_buf_clear(&b);
    assert_int_equal(tl_codec_encode_event(codec, ID_RESTATED, &ev, &b), 0);
    assert_true(fast_after_decode(codec, &b));
    tl_event out;
    decode_ok(&b, &out);
    assert_events_equal(&ev, &out);

    /* The switch. */
    tl_codec_set_fast_path(codec, 0);
    assert_false(tl_codec_uses_fast_path(codec, ID_READER));
    tl_codec_set_fast_path(codec, 1);
    assert_true(tl_codec_uses_fast_path(codec, ID_READER));

    /* Any other canonical form goes through avro-c. Swapped enum symbols: the index a
     * record carries means another type, which only resolution by name gets right. */
    tl_event click = {.event_id = "e", .user_id = "u", .item_id = "i", .type = TL_CLICK, .ts = 3};
    avro_c_event(ID_ENUM_SWAP, &click, &b);
    assert_false(fast_after_decode(codec, &b));
    decode_ok(&b, &out);
    assert_int_equal(out.type, TL_CLICK);

    framed(&b, ID_OTHER_NS, BODY("\2a\2b\2c\0\x0a\x02\0\0\0\0"));
    assert_false(fast_after_decode(codec, &b));
    new_record(&b, "CLICK", 1);
    assert_false(fast_after_decode(codec, &b));
    framed(&b, ID_NO_USER, BODY("\2a\2b\0\0"));
    assert_false(fast_after_decode(codec, &b));
    click.ts = 77;
    avro_c_event(ID_OLD, &click, &b);
    assert_false(fast_after_decode(codec, &b));

    /* A reader the fast path does not handle (long dwell_ms): its own schema still
     * takes the generic path, which range-checks dwell_ms. */
    tl_codec *lc = codec_for("24-long_dwell.avsc");
    framed(&b, ID_LONG_DWELL, BODY("\2a\2b\2c\x0a\x02\x02\x80\x80\x80\x80\x80\x80\x01"));
    assert_false(fast_after_decode(lc, &b));
    tl_dlq_reason reason = TL_DLQ_REASON_COUNT;
    char err[256] = "";
    assert_int_equal(tl_codec_decode(lc, b.data, b.len, &out, &arena, &reason, err, sizeof(err)),
                     TL_CODEC_BAD);
    assert_int_equal(reason, TL_DLQ_BAD_VALUE);
    assert_non_null(strstr(err, "dwell_ms"));
    tl_codec_destroy(lc);
    tl_buf_free(&b);
}

static void test_store_unreachable_is_retry(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);   /* nothing listens there now */
    char url[64], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);
    tl_codec *c = tl_codec_new(s, READER, err, sizeof(err));
    assert_non_null(c);
    tl_buf b = {0};
    tl_event ev = full_event();
    assert_int_equal(tl_codec_encode_event(c, 5, &ev, &b), 0);
    tl_dlq_reason reason;
    assert_int_equal(tl_codec_decode(c, b.data, b.len, &ev, &arena, &reason, err, sizeof(err)),
                     TL_CODEC_RETRY);
    assert_non_null(strstr(err, url));
    tl_codec_destroy(c);
    tl_schema_store_destroy(s);
    tl_buf_free(&b);
}

static void test_codec_new_errors(void **state)
{
    char err[512];
    assert_null(tl_codec_new(store, "/nonexistent/reader.avsc", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/reader.avsc"));

    codec_for_fails("16-string.avsc", "not an Avro record");
    /* NO_USER_SCHEMA as a reader: no user_id field. */
    codec_for_fails("12-no_user.avsc", "no field user_id");
    /* STRING_TYPE_SCHEMA as a reader: type is not an enum. */
    codec_for_fails("18-string_type.avsc", "field type");
    /* NEW_SCHEMA as a reader: session_id is neither an event field nor nullable. */
    codec_for_fails("11-new.avsc", "session_id");

    /* A reader enum with a symbol tally has no tl_event_type for. */
    char *text = slurp(READER);
    char *at = strstr(text, "\"PURCHASE\"]");
    assert_non_null(at);
    tl_buf b = {0};
    tl_buf_append(&b, text, (size_t)(at - text));
    tl_buf_puts(&b, "\"PURCHASE\", \"SHARE\"]");
    tl_buf_puts(&b, at + strlen("\"PURCHASE\"]"));
    write_file("reader-share.avsc", b.data);   /* no id prefix: not a store schema */
    codec_for_fails("reader-share.avsc", "SHARE");

    /* A default that does not fit its field. */
    tl_buf_clear(&b);
    at = strstr(text, "\"default\": null}\n  ]");
    assert_non_null(at);
    tl_buf_append(&b, text, (size_t)(at - text));
    tl_buf_puts(&b, "\"default\": \"high\"}\n  ]");
    tl_buf_puts(&b, at + strlen("\"default\": null}\n  ]"));
    write_file("reader-bad-default.avsc", b.data);
    codec_for_fails("reader-bad-default.avsc", "default of field propensity");
    tl_buf_free(&b);
    free(text);
}

static void test_validate(void **state)
{
    tl_dlq_reason reason;
    char err[256];
    tl_event ev = full_event();
    const int64_t lo = 946684800000LL, hi = 4102444800000LL;
    tl_event_limits lim = {lo, hi, 16};
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), 0);

#define EXPECT(mutation, r, text)                                                                  \
    do {                                                                                           \
        ev = full_event();                                                                         \
        mutation;                                                                                  \
        reason = TL_DLQ_REASON_COUNT;                                                              \
        err[0] = '\0';                                                                             \
        assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), -1);             \
        assert_int_equal(reason, r);                                                               \
        if (!strstr(err, text)) fail_msg("\"%s\" lacks \"%s\"", err, text);                        \
    } while (0)

    EXPECT(ev.event_id = "", TL_DLQ_MISSING_FIELD, "event_id is empty");
    EXPECT(ev.user_id = NULL, TL_DLQ_MISSING_FIELD, "user_id is missing");
    EXPECT(ev.item_id = "", TL_DLQ_MISSING_FIELD, "item_id");
    EXPECT(ev.ts = lo - 1, TL_DLQ_BAD_TIMESTAMP, "946684799999");
    EXPECT(ev.ts = hi + 1, TL_DLQ_BAD_TIMESTAMP, "4102444800001");
    EXPECT(ev.dwell_ms = -1, TL_DLQ_BAD_VALUE, "dwell_ms -1");
    EXPECT(ev.value = NAN, TL_DLQ_BAD_VALUE, "value");
    EXPECT(ev.value = INFINITY, TL_DLQ_BAD_VALUE, "value");
    EXPECT(ev.propensity = 0, TL_DLQ_BAD_VALUE, "propensity 0 is outside (0, 1]");
    EXPECT(ev.propensity = 1.0000001, TL_DLQ_BAD_VALUE, "propensity");
    EXPECT(ev.propensity = -0.5, TL_DLQ_BAD_VALUE, "propensity");
    EXPECT(ev.propensity = NAN, TL_DLQ_BAD_VALUE, "propensity");
    EXPECT(ev.type = (tl_event_type)17, TL_DLQ_BAD_VALUE, "type");
    /* strings: at most max_string bytes, valid UTF-8 (the decoders report NULs) */
    EXPECT(ev.item_id = "i-0123456789abcde", TL_DLQ_BAD_STRING,
           "item_id is 17 bytes long, more than ingest.max.string.bytes=16");
    EXPECT(ev.channel = "caf\xc3", TL_DLQ_BAD_STRING, "channel is not valid UTF-8 (byte 3)");
    EXPECT(ev.category_id = "\xed\xa0\x80", TL_DLQ_BAD_STRING, "category_id is not valid UTF-8");
    EXPECT(ev.user_id = "u\xc0\xaf", TL_DLQ_BAD_STRING, "user_id is not valid UTF-8 (byte 1)");
#undef EXPECT
    ev = full_event();
    ev.item_id = "i-0123456789abcd";   /* 16 bytes: at the bound */
    ev.channel = "caf\xc3\xa9\xf0\x9f\x98\x80";
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), 0);
    assert_int_equal(tl_string_check_nul("item_id", "ab", 2, &reason, err, sizeof(err)), 0);
    assert_int_equal(tl_string_check_nul("item_id", "a\0b", 3, &reason, err, sizeof(err)), -1);
    assert_int_equal(reason, TL_DLQ_BAD_STRING);
    assert_string_equal(err, "field item_id holds a NUL byte at byte 1");

    /* Bounds are inclusive; flags gate the optional checks. */
    ev = full_event();
    ev.ts = lo;
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), 0);
    ev.ts = hi;
    ev.propensity = 1.0;
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), 0);
    ev.has_dwell = 0;
    ev.dwell_ms = -5;
    ev.has_value = 0;
    ev.value = NAN;
    ev.has_propensity = 0;
    ev.propensity = 7;
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), 0);
}

static int from_json(const char *s, tl_event *ev, char *err, size_t n)
{
    return tl_event_from_json(s, strlen(s), ev, &arena, err, n);
}

static void test_from_json(void **state)
{
    char err[256] = "";
    tl_event ev = {.partition = 2, .offset = 9};
    const char *full = "{\"event_id\":\"e-1\",\"user_id\":\"u-42\",\"item_id\":\"i-9\","
                       "\"category_id\":\"c-3\",\"type\":\"ADD_TO_CART\",\"ts\":1700000000123,"
                       "\"channel\":\"search\",\"dwell_ms\":1500,\"value\":19.99,"
                       "\"propensity\":0.25,\"extra\":{\"ignored\":[1,2]}}";
    if (from_json(full, &ev, err, sizeof(err)) != 0) fail_msg("%s", err);
    tl_event want = full_event();
    assert_events_equal(&want, &ev);
    assert_int_equal(ev.partition, 2);
    assert_int_equal(ev.offset, 9);

    /* Absent and null optionals; the type symbol is case-insensitive. */
    const char *sparse = "{\"event_id\":\"e-2\",\"user_id\":\"u-7\",\"item_id\":\"i-1\","
                         "\"type\":\"purchase\",\"ts\":-5,\"channel\":null,\"value\":null}";
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(from_json(sparse, &ev, err, sizeof(err)), 0);
    want = sparse_event();
    assert_events_equal(&want, &ev);

    /* Escapes decode; integral floats are fine for ts. */
    const char *esc = "{\"event_id\":\"e\\u00e9\",\"user_id\":\"u\\\"q\",\"item_id\":\"i\","
                      "\"type\":\"CLICK\",\"ts\":1e3}";
    assert_int_equal(from_json(esc, &ev, err, sizeof(err)), 0);
    assert_string_equal(ev.event_id, "e\xc3\xa9");
    assert_string_equal(ev.user_id, "u\"q");
    assert_int_equal(ev.ts, 1000);

    /* Missing required strings are left for validation. */
    assert_int_equal(
        from_json("{\"item_id\":\"i\",\"type\":\"CLICK\",\"ts\":1}", &ev, err, sizeof(err)), 0);
    assert_null(ev.event_id);
    tl_dlq_reason reason;
    const tl_event_limits lim = {0, 10, TL_EVENT_MAX_STRING_DEFAULT};
    assert_int_equal(tl_event_validate(&ev, &lim, &reason, err, sizeof(err)), -1);
    assert_int_equal(reason, TL_DLQ_MISSING_FIELD);

#define BAD(text, want_msg)                                                                        \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(from_json(text, &ev, err, sizeof(err)), -1);                              \
        if (!strstr(err, want_msg)) fail_msg("\"%s\" lacks \"%s\"", err, want_msg);                \
    } while (0)

    BAD("{\"event_id\":\"e\"", "not valid JSON");
    BAD("[1,2]", "not an object");
    BAD("{\"event_id\":5,\"type\":\"CLICK\",\"ts\":1}", "event_id must be a string");
    BAD("{\"ts\":1}", "type is missing");
    BAD("{\"type\":\"SHARE\",\"ts\":1}", "unknown event type \"SHARE\"");
    BAD("{\"type\":3,\"ts\":1}", "type must be a string");
    BAD("{\"type\":\"CLICK\"}", "ts is missing");
    BAD("{\"type\":\"CLICK\",\"ts\":\"2024-01-01\"}", "ts must be a number");
    BAD("{\"type\":\"CLICK\",\"ts\":1.5}", "integer");
    BAD("{\"type\":\"CLICK\",\"ts\":1,\"dwell_ms\":3000000000}", "dwell_ms");
    BAD("{\"type\":\"CLICK\",\"ts\":1,\"value\":\"9.99\"}", "value must be a number");
    BAD("{\"type\":\"CLICK\",\"ts\":1,\"propensity\":true}", "propensity must be a number");
#undef BAD
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encoder_matches_avro_c),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_old_writer),
        cmocka_unit_test(test_non_null_defaults),
        cmocka_unit_test(test_new_writer),
        cmocka_unit_test(test_reordered_writer),
        cmocka_unit_test(test_incompatible),
        cmocka_unit_test(test_framing_and_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_random_inputs),
        cmocka_unit_test(test_fast_path_matches_generic),
        cmocka_unit_test(test_fast_path_other_readers),
        cmocka_unit_test(test_fast_path_decision),
        cmocka_unit_test(test_campaign_reader),
        cmocka_unit_test(test_store_unreachable_is_retry),
        cmocka_unit_test(test_codec_new_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_from_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
