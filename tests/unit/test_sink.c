/*
 * test_sink.c -- the output encoders and the JSON-lines sink.
 *
 * Avro: records encoded by sink/avro_out.c are unframed (magic 0, big-endian schema
 * id checked byte by byte) and decoded with avro-c's generic reader against
 * schemas/2-interest_delta.avsc, 11-attribution.avsc and 7-credit_delta.avsc; every
 * field is compared with the input (doubles bit for bit), the reader must consume
 * the body exactly, and avro-c re-encoding the decoded value must give the same
 * bytes. This is the independent check of the hand-written encoder.
 *
 * JSON lines: every line parses with tl_json_parse, names its type, carries every
 * field of its schema (and nothing else) with the input's value; doubles read back
 * to the same bits, nulls are JSON null, strings survive escaping.
 */
#define _GNU_SOURCE   /* open_memstream */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "lib/json.h"
#include "domain/records.h"
#include "lib/util.h"
#include "sink/avro_out.h"
#include "sink/sinks.h"

/* ---- shared inputs --------------------------------------------------------------------- */

static const char LONG_STR[] =
    "a string longer than sixty-four bytes, so that its Avro length prefix takes two bytes: "
    "\xc3\xa9\xe2\x82\xac \"quoted\" back\\slash\ttab\nnewline \x01 control";

static tl_interest_delta interest_a(void)
{
    return (tl_interest_delta){
        .user_id = "u-1",
        .dim = TL_DIM_CATEGORY,
        .dim_id = "4756105",
        .event_id = "ev-9",
        .ts = 1511544070123LL,
        .f = 1.5,
        .h = 3.0000000000000004,
        .weight_before = 0.1,
        .weight_after = 2.25,
        .decay_part = -0.5,
        .evidence_part = 1.0 / 3,
        .rank = 3,
        .explanation = "interest in category 4756105 rose from 0.1 to 2.2",
    };
}

static tl_interest_delta interest_b(void)
{
    return (tl_interest_delta){
        .user_id = "",
        .dim = TL_DIM_CHANNEL,
        .dim_id = LONG_STR,
        .event_id = "e",
        .ts = -1,
        .f = 4.9406564584124654e-324,
        .h = 1.7976931348623157e308,
        .weight_before = -0.0,
        .weight_after = 9007199254740992.0,
        .decay_part = -2.5e-7,
        .evidence_part = 1152921504606846976.0,
        .rank = 2147483647,
        .explanation = "",
    };
}

static const tl_touchpoint TPS3[3] = {
    {.event_id = "t1",
     .item_id = "i1",
     .category_id = "c1",
     .channel = "web",
     .campaign = "spring",
     .type = TL_IMPRESSION,
     .ts = 1000},
    {.event_id = "t2",
     .item_id = "i2",
     .category_id = NULL,
     .channel = NULL,
     .type = TL_CLICK,
     .ts = 2000},
    {.event_id = "t3",
     .item_id = "i3",
     .category_id = NULL,
     .channel = "app",
     .type = TL_ADD_TO_CART,
     .ts = -3000},
};
static const double LAST3[3] = {0, 0, 1}, FIRST3[3] = {1, 0, 0},
                    LIN3[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3}, TD3[3] = {1.0 / 7, 2.0 / 7, 4.0 / 7},
                    POS3[3] = {0.4, 0.2, 0.4};

/* 3 touchpoints, the five rule-based methods, a value, no category, no model */
static tl_attribution attribution_rules(void)
{
    tl_attribution r = {
        .conversion_event_id = "p1",
        .user_id = "u1",
        .item_id = "i3",
        .category_id = NULL,
        .ts = 5000,
        .value = 19.99,
        .has_value = 1,
        .touchpoints = TPS3,
        .n_touchpoints = 3,
        .explanation = "purchase of item i3 after 3 touchpoints",
    };
    r.credits[TL_M_LAST_TOUCH] = LAST3;
    r.credits[TL_M_FIRST_TOUCH] = FIRST3;
    r.credits[TL_M_LINEAR] = LIN3;
    r.credits[TL_M_TIME_DECAY] = TD3;
    r.credits[TL_M_POSITION_BASED] = POS3;
    for (int m = TL_M_LAST_TOUCH; m <= TL_M_POSITION_BASED; m++) r.has_method[m] = 1;
    return r;
}

static const tl_touchpoint TPS2[2] = {
    {.event_id = LONG_STR,
     .item_id = "",
     .category_id = "",
     .channel = "",
     .type = TL_PURCHASE,
     .ts = INT64_MIN},
    {.event_id = "x",
     .item_id = "y",
     .category_id = "z",
     .channel = NULL,
     .type = TL_FAVORITE,
     .ts = INT64_MAX},
};
static const double SE2[2] = {0.0125, INFINITY};   /* a single pair: unknown */
static const double C2[TL_M_COUNT][2] = {
    {0, 1}, {1, 0}, {0.5, 0.5}, {0.25, 0.75}, {0.5, 0.5}, {0.375, 0.625}, {-0.0, 1e-310},
};

/* 2 touchpoints, every method including the model ones, a model, no value */
static tl_attribution attribution_all(void)
{
    tl_attribution r = {
        .conversion_event_id = LONG_STR,
        .user_id = "",
        .item_id = "item",
        .category_id = "cat",
        .ts = -86400000,
        .has_value = 0,
        .value = 123.0,
        .touchpoints = TPS2,
        .n_touchpoints = 2,
        .p_conversion = 0.8125,
        .p_baseline = 1e-9,
        .model_version = 1234567890123LL,
        .has_model = 1,
        .explanation = LONG_STR,
    };
    for (int m = 0; m < TL_M_COUNT; m++) {
        r.credits[m] = C2[m];
        r.has_method[m] = 1;
    }
    r.model_status[TL_M_SHAPLEY] = "ok";
    r.model_status[TL_M_REMOVAL] = "fallback_linear";
    r.shapley_stderr = SE2;
    return r;
}

/* some methods only, with a gap (first_touch and time_decay absent) */
static tl_attribution attribution_some(void)
{
    tl_attribution r = attribution_all();
    r.has_method[TL_M_FIRST_TOUCH] = 0;
    r.has_method[TL_M_TIME_DECAY] = 0;
    r.has_method[TL_M_SHAPLEY] = 0;
    r.model_status[TL_M_SHAPLEY] = NULL;
    r.model_status[TL_M_REMOVAL] = "warming_up";
    r.shapley_stderr = NULL;
    r.p_conversion = 0;
    r.p_baseline = -0.0;
    r.model_version = 0;
    return r;
}

/* no touchpoints: methods with empty credit lists */
static tl_attribution attribution_empty(int with_methods)
{
    static const double none[1] = {0};
    tl_attribution r = {
        .conversion_event_id = "p0",
        .user_id = "u0",
        .item_id = "i0",
        .category_id = "c0",
        .ts = 0,
        .value = 0,
        .has_value = 1,
        .touchpoints = NULL,
        .n_touchpoints = 0,
        .explanation = "nothing to credit",
    };
    if (with_methods) {
        for (int m = TL_M_LAST_TOUCH; m <= TL_M_POSITION_BASED; m++) {
            r.credits[m] = none;
            r.has_method[m] = 1;
        }
    }
    return r;
}

enum {
    MANY = 70
};
static tl_touchpoint tps_many[MANY];
static double cred_many[MANY];
static char tp_ids[MANY][16];

/* 70 touchpoints: array block counts and the credit arrays take two-byte varints */
static tl_attribution attribution_many(void)
{
    for (int i = 0; i < MANY; i++) {
        snprintf(tp_ids[i], sizeof(tp_ids[i]), "tp-%d", i);
        tps_many[i] = (tl_touchpoint){
            .event_id = tp_ids[i],
            .item_id = tp_ids[i],
            .category_id = i % 3 ? tp_ids[i] : NULL,
            .channel = i % 2 ? NULL : "web",
            .type = (tl_event_type)(i % 6),
            .ts = (int64_t)i * 1000003 - 5000000,
        };
        cred_many[i] = 1.0 / MANY;
    }
    tl_attribution r = {
        .conversion_event_id = "pm",
        .user_id = "um",
        .item_id = "im",
        .ts = 99999999,
        .touchpoints = tps_many,
        .n_touchpoints = MANY,
        .explanation = "many",
    };
    r.credits[TL_M_LINEAR] = cred_many;
    r.has_method[TL_M_LINEAR] = 1;
    return r;
}

static tl_credit_delta credit_a(void)
{
    return (tl_credit_delta){
        .window_start = 1511481600000LL,
        .window_end = 1511568000000LL,
        .dim = TL_DIM_CATEGORY,
        .dim_id = "4756105",
        .method = "time_decay",
        .credit = 12.75,
        .credit_before = 10.5,
        .conversions = 3,
        .removal_effect = 0.125,
        .has_removal_effect = 1,
        .credit_lo = 11.5,
        .credit_hi = 14.25,
        .interval_level = 0.9,
        .has_interval = 1,
    };
}

static tl_credit_delta credit_b(void)
{
    return (tl_credit_delta){
        .window_start = -5,
        .window_end = INT64_MAX,
        .dim = TL_DIM_ITEM,
        .dim_id = LONG_STR,
        .method = "last_touch",
        .credit = 1.0 / 3,
        .credit_before = -0.0,
        .conversions = 0.5,
        .removal_effect = 42,
        .has_removal_effect = 0,
    };
}

/* ---- the records' flat fields ------------------------------------------------------------ */

/* How a flat field of an output record is typed. F_OPT_STR is a ["null", "string"] union in
 * Avro, null when the string is NULL; F_OPT_DBL and F_OPT_LONG are ["null", T] unions, present
 * when the int flag beside them is set; in JSON lines every absent value is null. */
typedef enum fkind {
    F_STR,
    F_OPT_STR,
    F_DIM,
    F_TYPE,
    F_INT,
    F_LONG,
    F_OPT_LONG,
    F_DBL,
    F_OPT_DBL
} fkind;

/* A field: its name in the schema, its type, where its member (and its presence flag) stand
 * in the C struct. */
typedef struct fdesc {
    const char *name;
    fkind kind;
    size_t off, has;
} fdesc;

#define FIELD(type, member, kind) {#member, kind, offsetof(type, member), 0}
#define OPT_FIELD(type, member, kind, flag)                                                        \
    {#member, kind, offsetof(type, member), offsetof(type, flag)}
#define N_FIELDS(table) (sizeof(table) / sizeof(*(table)))

static const fdesc INTEREST_FIELDS[] = {
    FIELD(tl_interest_delta, user_id, F_STR),
    FIELD(tl_interest_delta, dim, F_DIM),
    FIELD(tl_interest_delta, dim_id, F_STR),
    FIELD(tl_interest_delta, event_id, F_STR),
    FIELD(tl_interest_delta, ts, F_LONG),
    FIELD(tl_interest_delta, f, F_DBL),
    FIELD(tl_interest_delta, h, F_DBL),
    FIELD(tl_interest_delta, weight_before, F_DBL),
    FIELD(tl_interest_delta, weight_after, F_DBL),
    FIELD(tl_interest_delta, decay_part, F_DBL),
    FIELD(tl_interest_delta, evidence_part, F_DBL),
    FIELD(tl_interest_delta, rank, F_INT),
    FIELD(tl_interest_delta, explanation, F_STR),
};

/* attribution's flat fields; touchpoints, credits, model_status and shapley_stderr are
 * checked apart */
static const fdesc ATTRIBUTION_FIELDS[] = {
    FIELD(tl_attribution, conversion_event_id, F_STR),
    FIELD(tl_attribution, user_id, F_STR),
    FIELD(tl_attribution, item_id, F_STR),
    FIELD(tl_attribution, category_id, F_OPT_STR),
    FIELD(tl_attribution, ts, F_LONG),
    OPT_FIELD(tl_attribution, value, F_OPT_DBL, has_value),
    OPT_FIELD(tl_attribution, p_conversion, F_OPT_DBL, has_model),
    OPT_FIELD(tl_attribution, p_baseline, F_OPT_DBL, has_model),
    OPT_FIELD(tl_attribution, model_version, F_OPT_LONG, has_model),
    FIELD(tl_attribution, explanation, F_STR),
};

static const fdesc TOUCHPOINT_FIELDS[] = {
    FIELD(tl_touchpoint, event_id, F_STR),
    FIELD(tl_touchpoint, item_id, F_STR),
    FIELD(tl_touchpoint, category_id, F_OPT_STR),
    FIELD(tl_touchpoint, channel, F_OPT_STR),
    FIELD(tl_touchpoint, campaign, F_OPT_STR),
    FIELD(tl_touchpoint, type, F_TYPE),
    FIELD(tl_touchpoint, ts, F_LONG),
};

/* credit_delta's fields but its interval (credit_lo, credit_hi, interval_level) */
static const fdesc CREDIT_FIELDS[] = {
    FIELD(tl_credit_delta, window_start, F_LONG),
    FIELD(tl_credit_delta, window_end, F_LONG),
    FIELD(tl_credit_delta, dim, F_DIM),
    FIELD(tl_credit_delta, dim_id, F_STR),
    FIELD(tl_credit_delta, method, F_STR),
    FIELD(tl_credit_delta, credit, F_DBL),
    FIELD(tl_credit_delta, credit_before, F_DBL),
    FIELD(tl_credit_delta, conversions, F_DBL),
    OPT_FIELD(tl_credit_delta, removal_effect, F_OPT_DBL, has_removal_effect),
};

static const fdesc CREDIT_INTERVAL_FIELDS[] = {
    OPT_FIELD(tl_credit_delta, credit_lo, F_OPT_DBL, has_interval),
    OPT_FIELD(tl_credit_delta, credit_hi, F_OPT_DBL, has_interval),
    OPT_FIELD(tl_credit_delta, interval_level, F_OPT_DBL, has_interval),
};

static const fdesc INTENT_FIELDS[] = {
    FIELD(tl_intent_delta, user_id, F_STR),
    FIELD(tl_intent_delta, event_id, F_OPT_STR),
    FIELD(tl_intent_delta, ts, F_LONG),
    FIELD(tl_intent_delta, window_ms, F_LONG),
    FIELD(tl_intent_delta, p, F_DBL),
    FIELD(tl_intent_delta, previous, F_DBL),
    FIELD(tl_intent_delta, model_version, F_LONG),
    FIELD(tl_intent_delta, explanation, F_STR),
};

/* next_categories' fields outside its view */
static const fdesc NEXT_FIELDS[] = {
    FIELD(tl_next_categories, user_id, F_STR),     FIELD(tl_next_categories, event_id, F_STR),
    FIELD(tl_next_categories, ts, F_LONG),         FIELD(tl_next_categories, moved, F_DBL),
    FIELD(tl_next_categories, explanation, F_STR),
};

static const void *member(const void *rec, size_t off) { return (const char *)rec + off; }
static const char *f_str(const void *rec, const fdesc *f)
{
    return *(const char *const *)member(rec, f->off);
}
static int64_t f_long(const void *rec, const fdesc *f)
{
    return *(const int64_t *)member(rec, f->off);
}
static double f_dbl(const void *rec, const fdesc *f)
{
    return *(const double *)member(rec, f->off);
}
static int f_has(const void *rec, const fdesc *f) { return *(const int *)member(rec, f->has); }

static const char *const TYPE_SYMBOLS[TL_EVENT_TYPE_COUNT] = {
    "IMPRESSION", "BROWSE", "CLICK", "FAVORITE", "ADD_TO_CART", "PURCHASE",
};

/* ---- avro-c helpers -------------------------------------------------------------------- */

typedef struct decoded {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
} decoded;

static avro_schema_t load_schema(const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TALLY_SCHEMA_DIR, file);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *text = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            text = tl_xrealloc(text, cap);
        }
        size_t n = fread(text + len, 1, cap - len, f);
        if (n == 0) break;
        len += n;
    }
    fclose(f);
    avro_schema_t s = NULL;
    if (avro_schema_from_json_length(text, len, &s) != 0)
        fail_msg("%s does not parse: %s", path, avro_strerror());
    free(text);
    return s;
}

/* Checks the frame at b->data + off, decodes one record of `schema_file` from it and
 * returns the offset after it. */
static size_t decode_framed(const tl_buf *b, size_t off, const char *schema_file, int32_t want_id,
                            decoded *d)
{
    const unsigned char *p = (const unsigned char *)b->data + off;
    assert_true(b->len >= off + 5);
    assert_int_equal(p[0], 0);
    assert_int_equal(p[1], ((uint32_t)want_id >> 24) & 0xff);
    assert_int_equal(p[2], ((uint32_t)want_id >> 16) & 0xff);
    assert_int_equal(p[3], ((uint32_t)want_id >> 8) & 0xff);
    assert_int_equal(p[4], (uint32_t)want_id & 0xff);

    d->schema = load_schema(schema_file);
    d->iface = avro_generic_class_from_schema(d->schema);
    assert_non_null(d->iface);
    assert_int_equal(avro_generic_value_new(d->iface, &d->value), 0);

    const char *body = b->data + off + 5;
    size_t avail = b->len - off - 5;
    avro_reader_t r = avro_reader_memory(body, (int64_t)avail);
    if (avro_value_read(r, &d->value) != 0)
        fail_msg("avro-c cannot decode the %s record: %s", schema_file, avro_strerror());
    avro_reader_free(r);

    /* the encoded length, per avro-c, and its own encoding of what it read */
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(&d->value, &size), 0);
    assert_true(size <= avail);
    char *re = tl_xmalloc(size ? size : 1);
    avro_writer_t w = avro_writer_memory(re, (int64_t)size);
    assert_int_equal(avro_value_write(w, &d->value), 0);
    assert_int_equal(avro_writer_tell(w), (int64_t)size);
    avro_writer_free(w);
    assert_memory_equal(re, body, size);
    free(re);
    return off + 5 + size;
}

static void decoded_free(decoded *d)
{
    avro_value_decref(&d->value);
    avro_value_iface_decref(d->iface);
    avro_schema_decref(d->schema);
}

static avro_value_t field(avro_value_t *rec, const char *name)
{
    avro_value_t v = {0};
    if (avro_value_get_by_name(rec, name, &v, NULL) != 0) fail_msg("no field %s", name);
    return v;
}

static void check_str_v(avro_value_t *v, const char *want, const char *what)
{
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_string(v, &s, &size) != 0) fail_msg("%s is not a string", what);
    /* avro-c counts the terminating NUL */
    if (size != strlen(want) + 1 || memcmp(s, want, size) != 0)
        fail_msg("%s: \"%s\", expected \"%s\"", what, s, want);
}

static void check_str(avro_value_t *rec, const char *name, const char *want)
{
    avro_value_t v = field(rec, name);
    check_str_v(&v, want, name);
}

static void check_long_v(avro_value_t *v, int64_t want, const char *what)
{
    int64_t x = 0;
    if (avro_value_get_long(v, &x) != 0) fail_msg("%s is not a long", what);
    if (x != want) fail_msg("%s: %lld, expected %lld", what, (long long)x, (long long)want);
}

static void check_long(avro_value_t *rec, const char *name, int64_t want)
{
    avro_value_t v = field(rec, name);
    check_long_v(&v, want, name);
}

static void check_dbl_v(avro_value_t *v, double want, const char *what)
{
    double x = 0;
    if (avro_value_get_double(v, &x) != 0) fail_msg("%s is not a double", what);
    if (memcmp(&x, &want, sizeof(x)) != 0) fail_msg("%s: %a, expected %a", what, x, want);
}

static void check_dbl(avro_value_t *rec, const char *name, double want)
{
    avro_value_t v = field(rec, name);
    check_dbl_v(&v, want, name);
}

/* A ["null", T] union: returns 1 and the branch when non-null. */
static int opt(avro_value_t *rec, const char *name, avro_value_t *branch)
{
    avro_value_t u = field(rec, name);
    int disc = -1;
    assert_int_equal(avro_value_get_discriminant(&u, &disc), 0);
    assert_int_equal(avro_value_get_current_branch(&u, branch), 0);
    assert_true(disc == 0 || disc == 1);
    if (disc == 0) assert_int_equal(avro_value_get_type(branch), AVRO_NULL);
    return disc;
}

static void check_opt_str(avro_value_t *rec, const char *name, const char *want)
{
    avro_value_t b;
    int has = opt(rec, name, &b);
    if (has != (want != NULL)) fail_msg("%s: null-ness differs", name);
    if (want) check_str_v(&b, want, name);
}

static void check_opt_dbl(avro_value_t *rec, const char *name, int has, double want)
{
    avro_value_t b;
    if (opt(rec, name, &b) != has) fail_msg("%s: null-ness differs", name);
    if (has) check_dbl_v(&b, want, name);
}
/* The fields of table f of rec in the decoded record v. */
static void check_fields_avro(avro_value_t *v, const void *rec, const fdesc *f, size_t n)
{
    for (const fdesc *end = f + n; f < end; f++) {
        avro_value_t x;
        switch (f->kind) {
        case F_STR: check_str(v, f->name, f_str(rec, f)); break;
        case F_OPT_STR: check_opt_str(v, f->name, f_str(rec, f)); break;
        case F_DIM: check_str(v, f->name, tl_dim_name(*(const tl_dim *)member(rec, f->off))); break;
        case F_TYPE: {
            tl_event_type t = *(const tl_event_type *)member(rec, f->off);
            int sym = -1;
            x = field(v, f->name);
            assert_int_equal(avro_value_get_enum(&x, &sym), 0);
            assert_int_equal(sym, t);
            /* the symbol, by the schema */
            avro_schema_t es = avro_value_get_schema(&x);
            assert_string_equal(avro_schema_enum_get(es, sym), TYPE_SYMBOLS[t]);
            break;
        }
        case F_INT: {
            int32_t i = 0;
            x = field(v, f->name);
            assert_int_equal(avro_value_get_int(&x, &i), 0);
            assert_int_equal(i, *(const int32_t *)member(rec, f->off));
            break;
        }
        case F_LONG: check_long(v, f->name, f_long(rec, f)); break;
        case F_OPT_LONG:
            if (opt(v, f->name, &x) != f_has(rec, f)) fail_msg("%s: null-ness differs", f->name);
            if (f_has(rec, f)) check_long_v(&x, f_long(rec, f), f->name);
            break;
        case F_DBL: check_dbl(v, f->name, f_dbl(rec, f)); break;
        case F_OPT_DBL: check_opt_dbl(v, f->name, f_has(rec, f), f_dbl(rec, f)); break;
        }
    }
}

typedef enum rec_type {
    R_INTEREST,
    R_ATTRIBUTION,
    R_CREDIT,
    R_INTENT,
    R_NEXT
} rec_type;

/* A record kind: its schema file, its flat fields, how many fields it has in all and the
 * check of the others (NULL when there are none). */
typedef struct avro_kind {
    rec_type type;
    const char *schema_file;
    const fdesc *fields;
    size_t n_fields, width;
    void (*check_rest)(avro_value_t *, const void *);
} avro_kind;

#define AVRO_KIND(type, schema_file, fields, width, check_rest)                                    \
    {type, schema_file, fields, N_FIELDS(fields), width, check_rest}

/* tally's encoder for rec of kind k */
static void put_avro(const avro_kind *k, tl_buf *b, int32_t id, const void *rec)
{
    switch (k->type) {
    case R_INTEREST: tl_avro_put_interest(b, id, rec); break;
    case R_ATTRIBUTION: tl_avro_put_attribution(b, id, rec); break;
    case R_CREDIT: tl_avro_put_credit(b, id, rec); break;
    case R_INTENT: tl_avro_put_intent(b, id, rec); break;
    case R_NEXT: tl_avro_put_next_categories(b, id, rec); break;
    }
}

/* Decodes the framed record at off of b (kind k, schema id want_id) and checks it field by
 * field against rec; returns the offset after it. */
static size_t check_framed(const tl_buf *b, size_t off, const avro_kind *k, int32_t want_id,
                           const void *rec)
{
    decoded d;
    off = decode_framed(b, off, k->schema_file, want_id, &d);
    check_fields_avro(&d.value, rec, k->fields, k->n_fields);
    if (k->check_rest) k->check_rest(&d.value, rec);
    size_t n = 0;
    avro_value_get_size(&d.value, &n);
    assert_int_equal(n, k->width);
    decoded_free(&d);
    return off;
}

/* rec of kind k, encoded with id alone in a buffer, decodes to itself and fills the
 * buffer exactly. */
static void roundtrip(const avro_kind *k, const void *rec, int32_t id)
{
    tl_buf buf = {0};
    put_avro(k, &buf, id, rec);
    assert_int_equal(check_framed(&buf, 0, k, id, rec), buf.len);
    tl_buf_free(&buf);
}

/* Two records of kind k in one buffer, the second appended after the first: each decodes
 * to itself, and together they fill the buffer exactly. */
static void roundtrip_two(const avro_kind *k, const void *a, int32_t ida, const void *b,
                          int32_t idb)
{
    tl_buf buf = {0};
    put_avro(k, &buf, ida, a);
    put_avro(k, &buf, idb, b);
    size_t off = check_framed(&buf, 0, k, ida, a);
    assert_int_equal(check_framed(&buf, off, k, idb, b), buf.len);
    tl_buf_free(&buf);
}

/* The framed size of rec of kind k, its body's size as avro-c gives it plus the frame. */
static size_t framed_size(const avro_kind *k, const void *rec, int32_t id)
{
    tl_buf buf = {0};
    decoded d;
    put_avro(k, &buf, id, rec);
    size_t n = decode_framed(&buf, 0, k->schema_file, id, &d);
    decoded_free(&d);
    tl_buf_free(&buf);
    return n;
}

/* ---- Avro: interest_delta ------------------------------------------------------------------ */

static const avro_kind INTEREST_AVRO =
    AVRO_KIND(R_INTEREST, "2-interest_delta.avsc", INTEREST_FIELDS, 13, NULL);

static void test_avro_interest(void **state)
{
    (void)state;
    tl_interest_delta a = interest_a(), b = interest_b();
    roundtrip_two(&INTEREST_AVRO, &a, 0x01020304, &b, 7);

    /* every dimension name, and the largest schema id */
    for (int dim = 0; dim < TL_DIM_COUNT; dim++) {
        tl_interest_delta x = interest_a();
        x.dim = (tl_dim)dim;
        x.rank = -dim;
        roundtrip(&INTEREST_AVRO, &x, 0x7fffffff);
    }
    static const char *const names[] = {"category", "item", "channel"};
    for (int dim = 0; dim < TL_DIM_COUNT; dim++)
        assert_string_equal(tl_dim_name((tl_dim)dim), names[dim]);
}

/* ---- Avro: attribution ---------------------------------------------------------------------- */

static const char *const METHOD_NAMES[TL_M_COUNT] = {
    "last_touch", "first_touch", "linear", "time_decay", "position_based", "shapley", "removal",
};
static void check_attribution_avro(avro_value_t *v, const void *rec)
{
    const tl_attribution *a = rec;
    avro_value_t tps = field(v, "touchpoints");
    size_t n = 0;
    assert_int_equal(avro_value_get_size(&tps, &n), 0);
    assert_int_equal(n, a->n_touchpoints);
    for (size_t i = 0; i < n; i++) {
        avro_value_t tp;
        assert_int_equal(avro_value_get_by_index(&tps, i, &tp, NULL), 0);
        check_fields_avro(&tp, &a->touchpoints[i], TOUCHPOINT_FIELDS, N_FIELDS(TOUCHPOINT_FIELDS));
    }

    avro_value_t credits = field(v, "credits");
    size_t nm = 0, want_nm = 0;
    assert_int_equal(avro_value_get_size(&credits, &nm), 0);
    for (int m = 0; m < TL_M_COUNT; m++) want_nm += a->has_method[m] != 0;
    assert_int_equal(nm, want_nm);
    for (int m = 0; m < TL_M_COUNT; m++) {
        avro_value_t arr;
        int found = avro_value_get_by_name(&credits, METHOD_NAMES[m], &arr, NULL) == 0;
        if (found != (a->has_method[m] != 0))
            fail_msg("credits[%s]: present %d, expected %d", METHOD_NAMES[m], found,
                     a->has_method[m]);
        if (!found) continue;
        size_t k = 0;
        assert_int_equal(avro_value_get_size(&arr, &k), 0);
        assert_int_equal(k, a->n_touchpoints);
        for (size_t i = 0; i < k; i++) {
            avro_value_t c;
            assert_int_equal(avro_value_get_by_index(&arr, i, &c, NULL), 0);
            char what[64];
            snprintf(what, sizeof(what), "credits[%s][%zu]", METHOD_NAMES[m], i);
            check_dbl_v(&c, a->credits[m][i], what);
        }
    }
    /* every key is one of the methods, in the methods' order */
    int last = -1;
    for (size_t i = 0; i < nm; i++) {
        avro_value_t arr;
        const char *key = NULL;
        assert_int_equal(avro_value_get_by_index(&credits, i, &arr, &key), 0);
        int m = 0;
        while (m < TL_M_COUNT && strcmp(METHOD_NAMES[m], key) != 0) m++;
        if (m == TL_M_COUNT) fail_msg("unknown credits key %s", key);
        assert_true(m > last);
        last = m;
    }

    avro_value_t sv;
    if (opt(v, "model_status", &sv) != a->has_model) fail_msg("model_status null-ness");
    if (a->has_model) {
        size_t ns = 0, want_ns = 0;
        assert_int_equal(avro_value_get_size(&sv, &ns), 0);
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!a->model_status[m]) continue;
            want_ns++;
            avro_value_t e;
            const char *s = NULL;
            size_t sl = 0;
            if (avro_value_get_by_name(&sv, METHOD_NAMES[m], &e, NULL) != 0)
                fail_msg("model_status lacks %s", METHOD_NAMES[m]);
            assert_int_equal(avro_value_get_string(&e, &s, &sl), 0);
            assert_string_equal(s, a->model_status[m]);
        }
        assert_int_equal(ns, want_ns);
    }
    avro_value_t ev;
    if (opt(v, "shapley_stderr", &ev) != (a->shapley_stderr != NULL))
        fail_msg("shapley_stderr null-ness");
    if (a->shapley_stderr) {
        size_t ne = 0;
        assert_int_equal(avro_value_get_size(&ev, &ne), 0);
        assert_int_equal(ne, (size_t)a->n_touchpoints);
        for (size_t i = 0; i < ne; i++) {
            avro_value_t x;
            double d = 0;
            assert_int_equal(avro_value_get_by_index(&ev, i, &x, NULL), 0);
            assert_int_equal(avro_value_get_double(&x, &d), 0);
            assert_true(d == a->shapley_stderr[i]);   /* infinity too */
        }
    }
}

static const avro_kind ATTRIBUTION_AVRO =
    AVRO_KIND(R_ATTRIBUTION, "11-attribution.avsc", ATTRIBUTION_FIELDS, 14, check_attribution_avro);

/* The size bounds checked at start (app/bounds.c) hold for the largest records the
 * configuration allows: every string at its bound (multi-byte characters), every optional
 * field present, every method, the longest explanation; and they are not loose (within
 * 1% + 200 bytes), so a limit they pass is not refused for nothing. */
static char *long_string(size_t n, char c)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

static void check_bound(size_t len, size_t bound)
{
    if (len > bound || bound - len > len / 100 + 200)
        fail_msg("encoded %zu bytes, bound %zu", len, bound);
}

static void test_avro_bounds(void **state)
{
    (void)state;
    static const size_t S_cases[] = {16, 512, 4096}, TP_cases[] = {1, 50, 300};
    for (size_t si = 0; si < 3; si++) {
        size_t S = S_cases[si];
        char *s = long_string(S, 'x');
        char *text = long_string(TL_EXPLANATION_MAX, 'e');
        char *itext = long_string(511, 'i');
        tl_buf buf = {0};
        tl_interest_delta d = {.user_id = s,
                               .dim = TL_DIM_CATEGORY,
                               .dim_id = s,
                               .event_id = s,
                               .ts = INT64_MIN,
                               .rank = INT32_MIN,
                               .explanation = itext};
        tl_avro_put_interest(&buf, 0x7fffffff, &d);
        check_bound(buf.len, tl_avro_interest_bound(S));
        tl_buf_clear(&buf);
        tl_credit_delta cd = {.window_start = INT64_MIN,
                              .window_end = INT64_MAX,
                              .dim = TL_DIM_CATEGORY,
                              .dim_id = s,
                              .method = "position_based",
                              .has_removal_effect = 1};
        tl_avro_put_credit(&buf, 0x7fffffff, &cd);
        check_bound(buf.len, tl_avro_credit_bound(S) - 18);   /* the method names are shorter */
        tl_rollup_row ru = {.id = s,
                            .window_start = -((int64_t)1 << 62),
                            .purchases = UINT64_MAX >> 1,
                            .touchpoints = UINT64_MAX >> 1,
                            .shapley_var = 1,
                            .spend = 1,
                            .has_spend = 1,
                            .markov_at = INT64_MIN,
                            .has_markov_interval = 1};
        for (int m = 0; m < TL_RU_METHODS; m++) ru.has[m] = 1, ru.conversions[m] = ru.value[m] = 1;
        ru.window_start -= ru.window_start % 86400000;
        tl_buf_clear(&buf);
        tl_avro_put_rollup(&buf, 0x7fffffff, TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_HOUR, &ru);
        /* the names (dimension, window, methods in three places) are shorter than the 32
         * bytes allowed; markov has no return on ad spend */
        check_bound(buf.len, tl_avro_rollup_bound(S) - 2 * 20 - 3 * TL_RU_METHODS * 20 - 41);
        for (size_t ti = 0; ti < 3; ti++) {
            int n = (int)TP_cases[ti];
            tl_touchpoint *tp = calloc((size_t)n, sizeof(*tp));
            double *cr = calloc((size_t)n, sizeof(*cr));
            assert_true(tp && cr);
            for (int i = 0; i < n; i++)
                tp[i] = (tl_touchpoint){.event_id = s,
                                        .item_id = s,
                                        .category_id = s,
                                        .channel = s,
                                        .campaign = s,
                                        .type = 5,
                                        .ts = INT64_MIN};
            tl_attribution r = {.conversion_event_id = s,
                                .user_id = s,
                                .item_id = s,
                                .category_id = s,
                                .ts = INT64_MIN,
                                .has_value = 1,
                                .touchpoints = tp,
                                .n_touchpoints = n,
                                .has_model = 1,
                                .model_version = INT64_MIN,
                                .explanation = text};
            for (int m = 0; m < TL_M_COUNT; m++) {
                r.credits[m] = cr;
                r.has_method[m] = 1;
            }
            r.model_status[TL_M_SHAPLEY] = r.model_status[TL_M_REMOVAL] = "fallback_linear";
            r.shapley_stderr = cr;
            tl_buf_clear(&buf);
            tl_avro_put_attribution(&buf, 0x7fffffff, &r);
            /* method names are at most 14 bytes of the 32 allowed for */
            check_bound(buf.len,
                        tl_avro_attribution_bound(S, (size_t)n) - TL_M_COUNT * 18 - 18 -
                            4 * 18);   /* and the status names and values */
            free(tp);
            free(cr);
        }
        tl_buf_free(&buf);
        free(s);
        free(text);
        free(itext);
    }
}

static void test_avro_attribution(void **state)
{
    (void)state;
    tl_attribution r;
    r = attribution_rules();
    roundtrip(&ATTRIBUTION_AVRO, &r, 3);
    r = attribution_all();
    roundtrip(&ATTRIBUTION_AVRO, &r, 0x00ab00cd);
    r = attribution_some();
    roundtrip(&ATTRIBUTION_AVRO, &r, 300);
    r = attribution_empty(1);
    roundtrip(&ATTRIBUTION_AVRO, &r, 3);
    r = attribution_empty(0);
    roundtrip(&ATTRIBUTION_AVRO, &r, 3);
    r = attribution_many();
    roundtrip(&ATTRIBUTION_AVRO, &r, 65536);

    /* two records in one buffer */
    tl_attribution x = attribution_rules(), y = attribution_all();
    roundtrip_two(&ATTRIBUTION_AVRO, &x, 3, &y, 4);
}

/* ---- Avro: credit_delta ------------------------------------------------------------------- */

static void check_credit_interval_avro(avro_value_t *v, const void *rec)
{
    check_fields_avro(v, rec, CREDIT_INTERVAL_FIELDS, N_FIELDS(CREDIT_INTERVAL_FIELDS));
}

static const avro_kind CREDIT_AVRO =
    AVRO_KIND(R_CREDIT, "7-credit_delta.avsc", CREDIT_FIELDS, 12, check_credit_interval_avro);

static void test_avro_credit(void **state)
{
    (void)state;
    tl_credit_delta a = credit_a(), b = credit_b();
    roundtrip_two(&CREDIT_AVRO, &a, 4, &b, 0x10000000);
}

/* ---- Avro: intent_delta ------------------------------------------------------------------- */

static tl_intent_delta intent_a(void)
{
    return (tl_intent_delta){.user_id = "u7",
                             .event_id = "e9",
                             .ts = 1700000000123,
                             .window_ms = 604800000,
                             .p = 0.3125,
                             .previous = 0.0625,
                             .model_version = 4242,
                             .explanation = "p(purchase within 7 d) rose from 0.062 to 0.312"};
}

static tl_intent_delta intent_b(void)   /* moved by time: no event */
{
    return (tl_intent_delta){.user_id = "\xc3\xa9",
                             .ts = -1,
                             .window_ms = 3600000,
                             .p = 1e-300,
                             .previous = 0.5,
                             .model_version = 0,
                             .explanation = ""};
}

static const avro_kind INTENT_AVRO =
    AVRO_KIND(R_INTENT, "12-intent_delta.avsc", INTENT_FIELDS, 8, NULL);

static void test_avro_intent(void **state)
{
    (void)state;
    tl_intent_delta a = intent_a(), b = intent_b();
    roundtrip_two(&INTENT_AVRO, &a, 12, &b, 0x10000000);
    /* the bound holds for strings at their longest */
    const size_t S = 40;
    char *s = long_string(S, 'x'), *text = long_string(TL_EXPLANATION_MAX, 'y');
    tl_intent_delta big = {.user_id = s,
                           .event_id = s,
                           .ts = INT64_MIN,
                           .window_ms = INT64_MAX,
                           .model_version = INT64_MIN,
                           .explanation = text};
    tl_buf buf = {0};
    tl_avro_put_intent(&buf, 0x7fffffff, &big);
    check_bound(buf.len, tl_avro_intent_bound(S));
    tl_buf_free(&buf);
    free(s);
    free(text);
}

/* ---- Avro: next_categories ----------------------------------------------------------------- */

static tl_nc_view nc_view_a(void)
{
    tl_nc_view v = {
        .ts = 5, .p_other = 0.25f, .n = 2, .n_like = 2, .dim = 3, .emb = {0.5f, -0.125f, 3.0f}};
    v.cat[0] = (tl_nc_entry){"c1", 2, 0.5f};
    v.cat[1] = (tl_nc_entry){"\xc3\xa9", 2, 0.25f};
    v.like[0] = (tl_nc_entry){"c9", 2, 1.5f};
    v.like[1] = (tl_nc_entry){"c8", 2, 0.75f};
    return v;
}

static tl_nc_view nc_view_b(void)   /* nothing listed, no like, no embedding */
{
    tl_nc_view v = {.ts = -1, .p_other = 1.0f};
    return v;
}

static tl_next_categories next_of(const tl_nc_view *v, const char *user)
{
    return (tl_next_categories){.user_id = user,
                                .event_id = "e1",
                                .ts = 1700000000456,
                                .view = v,
                                .moved = 0.75,
                                .explanation = "next category most likely c1 (50%: ...)"};
}

static void check_nc_entries(avro_value_t *rec, const char *name, const char *pname,
                             const tl_nc_entry *e, int n)
{
    avro_value_t arr = field(rec, name), x;
    size_t k = 0;
    avro_value_get_size(&arr, &k);
    assert_int_equal(k, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(avro_value_get_by_index(&arr, i, &x, NULL), 0);
        char want[16];
        snprintf(want, sizeof(want), "%.*s", (int)e[i].len, e[i].id);
        check_str(&x, "category_id", want);
        check_dbl(&x, pname, e[i].p);
    }
}

/* next_categories' view */
static void check_next_view_avro(avro_value_t *v, const void *rec)
{
    const tl_next_categories *r = rec;
    check_nc_entries(v, "categories", "p", r->view->cat, r->view->n);
    check_dbl(v, "p_other", r->view->p_other);
    avro_value_t emb = field(v, "embedding"), x;
    size_t k = 0;
    avro_value_get_size(&emb, &k);
    assert_int_equal(k, r->view->dim);
    for (int i = 0; i < r->view->dim; i++) {
        float f = 0;
        assert_int_equal(avro_value_get_by_index(&emb, i, &x, NULL), 0);
        assert_int_equal(avro_value_get_float(&x, &f), 0);
        assert_true(f == r->view->emb[i]);
    }
    check_nc_entries(v, "like", "affinity", r->view->like, r->view->n_like);
}

static const avro_kind NEXT_AVRO =
    AVRO_KIND(R_NEXT, "13-next_categories.avsc", NEXT_FIELDS, 9, check_next_view_avro);

static void test_avro_next_categories(void **state)
{
    (void)state;
    tl_nc_view va = nc_view_a(), vb = nc_view_b();
    tl_next_categories a = next_of(&va, "u1"), b = next_of(&vb, "\xc3\xa9");
    roundtrip_two(&NEXT_AVRO, &a, 13, &b, 0x10000000);
    /* the bound holds for strings at their longest and every list full */
    const size_t S = 40;
    char *s = long_string(S, 'x'), *text = long_string(TL_EXPLANATION_MAX, 'y');
    tl_nc_view full = {
        .ts = INT64_MIN, .n = TL_NC_TOP_MAX, .n_like = TL_NC_LIKE_MAX, .dim = TL_NC_DIM_MAX};
    for (int i = 0; i < TL_NC_TOP_MAX; i++) full.cat[i] = (tl_nc_entry){s, (uint32_t)S, 0.1f};
    for (int i = 0; i < TL_NC_LIKE_MAX; i++) full.like[i] = (tl_nc_entry){s, (uint32_t)S, 9.0f};
    tl_next_categories big = {
        .user_id = s, .event_id = s, .ts = INT64_MIN, .view = &full, .explanation = text};
    tl_buf buf = {0};
    tl_avro_put_next_categories(&buf, 0x7fffffff, &big);
    check_bound(buf.len, tl_avro_next_categories_bound(S));
    tl_buf_clear(&buf);
    tl_nc_encode(&full, &buf);
    check_bound(buf.len, tl_nc_bound(S));
    tl_buf_free(&buf);
    free(s);
    free(text);
}

/* Hand-assembled bytes of a small credit_delta: the frame and Avro's zig-zag varints
 * and little-endian doubles, independent of any Avro library. */
static void test_avro_credit_bytes(void **state)
{
    (void)state;
    tl_credit_delta c = {
        .window_start = 1,
        .window_end = -64,
        .dim = TL_DIM_ITEM,
        .dim_id = "ab",
        .method = "linear",
        .credit = 1.0,
        .credit_before = 2.0,
        .conversions = -0.0,
        .has_removal_effect = 0,
    };
    static const unsigned char want[] = {
        0,    0,    0,    1,    2,                      /* magic, id 258 */
        0x02,                               /* 1 */
        0x7f,                               /* -64 */
        0x08, 'i',  't',  'e',  'm',           /* "item" */
        0x04, 'a',  'b',  0x0c, 'l', 'i', 'n',  'e',  'a',
        'r',  0,    0,    0,    0,   0,   0,    0xf0, 0x3f,       /* 1.0 */
        0,    0,    0,    0,    0,   0,   0x00, 0x40,       /* 2.0 */
        0,    0,    0,    0,    0,   0,   0x00, 0x80,       /* -0.0 */
        0x00,                               /* null branch: no removal effect */
        0x00, 0x00, 0x00,                   /* nor an interval */
    };
    tl_buf buf = {0};
    tl_avro_put_credit(&buf, 258, &c);
    assert_int_equal(buf.len, sizeof(want));
    assert_memory_equal(buf.data, want, sizeof(want));
    tl_buf_free(&buf);
}

/* A roll-up row through tally's encoder: avro-c decodes it against 9-rollup.avsc to the
 * same fields (the costs computed by hand), tally's own decoder reads back the same row,
 * and every shorter prefix or a changed name is refused with a message -- but for the
 * prefix that is the same row in 8-rollup.avsc's layout (no spend), which is read too. */
static void test_avro_rollup(void **state)
{
    (void)state;
    tl_rollup_row row = {.id = "Paid Search",
                         .window_start = 1511568000000LL - 3600000,
                         .purchases = 3,
                         .touchpoints = 7,
                         .shapley_var = 0.25,
                         .spend = 100,
                         .has_spend = 1,
                         .markov_lo = 1.25,
                         .markov_hi = 2.5,
                         .markov_level = 0.9,
                         .markov_at = 1511568000000LL,
                         .has_markov_interval = 1};
    row.conversions[TL_M_LINEAR] = 2.5;
    row.value[TL_M_LINEAR] = 40.0;
    row.has[TL_M_LINEAR] = 1;
    row.conversions[TL_M_SHAPLEY] = -0.5;
    row.value[TL_M_SHAPLEY] = 1e-300;
    row.has[TL_M_SHAPLEY] = 1;
    row.conversions[TL_RU_MARKOV] = 1.75;
    row.has[TL_RU_MARKOV] = 1;
    tl_buf buf = {0}, key = {0};
    /* without spend and interval: schema 8's layout, then a null spend, two empty maps and
     * a null interval */
    row.has_spend = row.has_markov_interval = 0;
    tl_avro_put_rollup(&buf, 9, TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_HOUR, &row);
    size_t len8 = buf.len - 4;
    assert_memory_equal(buf.data + len8, "\0\0\0\0", 4);
    tl_buf_clear(&buf);
    row.has_spend = row.has_markov_interval = 1;
    tl_avro_put_rollup(&buf, 9, TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_HOUR, &row);
    tl_avro_rollup_key(&key, TL_RU_CHANNEL_GROUP, TL_RU_WINDOW_HOUR, &row);
    assert_int_equal(key.len, strlen("channel_group|hour|1511564400000|Paid Search"));
    assert_memory_equal(key.data, "channel_group|hour|1511564400000|Paid Search", key.len);

    decoded d;
    assert_int_equal(decode_framed(&buf, 0, "9-rollup.avsc", 9, &d), buf.len);
    check_str(&d.value, "dim", "channel_group");
    check_str(&d.value, "dim_id", "Paid Search");
    check_str(&d.value, "window", "hour");
    check_long(&d.value, "window_start", row.window_start);
    check_long(&d.value, "window_end", row.window_start + 3600000);
    check_long(&d.value, "purchases", 3);
    check_long(&d.value, "touchpoints", 7);
    check_opt_dbl(&d.value, "shapley_variance", 1, 0.25);
    avro_value_t methods = field(&d.value, "methods"), m;
    size_t n = 0;
    avro_value_get_size(&methods, &n);
    assert_int_equal(n, 3);
    static const char *const names[] = {"linear", "shapley", "markov"};
    const double conv[] = {2.5, -0.5, 1.75}, val[] = {40.0, 1e-300, 0};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(avro_value_get_by_index(&methods, i, &m, NULL), 0);
        check_str(&m, "method", names[i]);
        check_dbl(&m, "conversions", conv[i]);
        check_dbl(&m, "value", val[i]);
    }
    check_opt_dbl(&d.value, "spend", 1, 100.0);
    /* cost per conversion: spend / conversions where they are above 0; return on ad
     * spend: value / spend, not for markov */
    static const char *const cost_names[2][2] = {{"linear", "markov"}, {"linear", "shapley"}};
    const double costs[2][2] = {{100 / 2.5, 100 / 1.75}, {40.0 / 100, 1e-300 / 100}};
    for (int map = 0; map < 2; map++) {
        avro_value_t mv = field(&d.value, map == 0 ? "cost_per_conversion" : "roas"), v;
        avro_value_get_size(&mv, &n);
        assert_int_equal(n, 2);
        for (int i = 0; i < 2; i++) {
            double x = 0;
            assert_int_equal(avro_value_get_by_name(&mv, cost_names[map][i], &v, NULL), 0);
            assert_int_equal(avro_value_get_double(&v, &x), 0);
            assert_true(x == costs[map][i]);
        }
    }
    avro_value_t ivr;
    assert_int_equal(opt(&d.value, "markov_interval", &ivr), 1);
    check_dbl(&ivr, "lo", 1.25);
    check_dbl(&ivr, "hi", 2.5);
    check_dbl(&ivr, "level", 0.9);
    check_long(&ivr, "at", 1511568000000LL);
    decoded_free(&d);

    tl_rollup_rec rec;
    char err[256];
    assert_int_equal(tl_avro_get_rollup(buf.data, buf.len, &rec, err, sizeof(err)), 0);
    assert_int_equal(rec.schema_id, 9);
    assert_true(rec.row.has_spend && rec.row.spend == 100);
    assert_true(rec.row.has_markov_interval && rec.row.markov_lo == 1.25 &&
                rec.row.markov_hi == 2.5 && rec.row.markov_level == 0.9 &&
                rec.row.markov_at == 1511568000000LL);
    assert_int_equal(rec.dim, TL_RU_CHANNEL_GROUP);
    assert_int_equal(rec.window, TL_RU_WINDOW_HOUR);
    assert_string_equal(rec.row.id, "Paid Search");
    assert_true(rec.row.window_start == row.window_start);
    assert_true(rec.row.purchases == 3 && rec.row.touchpoints == 7);
    for (int k = 0; k < TL_RU_METHODS; k++) {
        assert_int_equal(rec.row.has[k], row.has[k]);
        assert_true(rec.row.conversions[k] == row.conversions[k]);
        assert_true(rec.row.value[k] == row.value[k]);
    }
    assert_true(rec.row.shapley_var == 0.25);
    free(rec.row.id);
    for (size_t len = 0; len < buf.len; len++) {
        int rc = tl_avro_get_rollup(buf.data, len, &rec, err, sizeof(err));
        if (rc == 0 && len != len8)
            fail_msg("a record cut to %zu of %zu bytes was read", len, buf.len);
        if (len == len8) {
            assert_int_equal(rc, 0);
            assert_false(rec.row.has_spend);
            assert_true(rec.row.purchases == 3 && rec.row.shapley_var == 0.25);
            free(rec.row.id);
        }
    }
    /* a method name tally does not know, a window start that is not the hour's */
    char *at = memmem(buf.data, buf.len, "markov", 6);
    assert_non_null(at);
    at[0] = 'n';
    assert_int_equal(tl_avro_get_rollup(buf.data, buf.len, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown method"));
    tl_buf_clear(&buf);
    row.window_start += 1;
    tl_avro_put_rollup(&buf, 9, TL_RU_CHANNEL, TL_RU_WINDOW_HOUR, &row);
    assert_int_equal(tl_avro_get_rollup(buf.data, buf.len, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "window"));
    tl_buf_free(&buf);
    tl_buf_free(&key);
}

/* ---- JSON lines ------------------------------------------------------------------------------ */

static const tl_json *jget(const tl_json *o, const char *k)
{
    const tl_json *v = tl_json_get(o, k);
    if (!v) fail_msg("field %s missing", k);
    return v;
}

static void jstr(const tl_json *o, const char *k, const char *want)
{
    const tl_json *v = jget(o, k);
    if (!want) {
        if (v->type != TL_JSON_NULL) fail_msg("%s: expected null", k);
        return;
    }
    if (v->type != TL_JSON_STRING) fail_msg("%s: not a string", k);
    if (v->len != strlen(want) || memcmp(v->str, want, v->len) != 0)
        fail_msg("%s: \"%s\", expected \"%s\"", k, v->str, want);
}

static void jdbl_v(const tl_json *v, double want, const char *what)
{
    if (!v || v->type != TL_JSON_NUMBER) fail_msg("%s: not a number", what);
    if (memcmp(&v->num, &want, sizeof(want)) != 0)
        fail_msg("%s: %a (%.17g), expected %a (%.17g)", what, v->num, v->num, want, want);
}

static void jdbl(const tl_json *o, const char *k, double want) { jdbl_v(jget(o, k), want, k); }

static void jopt_dbl(const tl_json *o, const char *k, int has, double want)
{
    const tl_json *v = jget(o, k);
    if (!has) {
        if (v->type != TL_JSON_NULL) fail_msg("%s: expected null", k);
        return;
    }
    jdbl_v(v, want, k);
}

static void ji64(const tl_json *o, const char *k, int64_t want)
{
    const tl_json *v = jget(o, k);
    if (v->type != TL_JSON_NUMBER || !v->is_int) fail_msg("%s: not an integer", k);
    if (v->i != want) fail_msg("%s: %lld, expected %lld", k, (long long)v->i, (long long)want);
}

/* The fields of table f of rec in the JSON object o. */
static void check_fields_json(const tl_json *o, const void *rec, const fdesc *f, size_t n)
{
    for (const fdesc *end = f + n; f < end; f++) {
        switch (f->kind) {
        case F_STR:
        case F_OPT_STR: jstr(o, f->name, f_str(rec, f)); break;
        case F_DIM: jstr(o, f->name, tl_dim_name(*(const tl_dim *)member(rec, f->off))); break;
        case F_TYPE:
            jstr(o, f->name, TYPE_SYMBOLS[*(const tl_event_type *)member(rec, f->off)]);
            break;
        case F_INT: ji64(o, f->name, *(const int32_t *)member(rec, f->off)); break;
        case F_LONG: ji64(o, f->name, f_long(rec, f)); break;
        case F_OPT_LONG:
            if (f_has(rec, f)) ji64(o, f->name, f_long(rec, f));
            else assert_int_equal(jget(o, f->name)->type, TL_JSON_NULL);
            break;
        case F_DBL: jdbl(o, f->name, f_dbl(rec, f)); break;
        case F_OPT_DBL: jopt_dbl(o, f->name, f_has(rec, f), f_dbl(rec, f)); break;
        }
    }
}

/* A JSON line of record type `type`: its flat fields (table f) are rec's, and it has width
 * members in all. */
static void check_line(const tl_json *o, const char *type, const void *rec, const fdesc *f,
                       size_t n, size_t width)
{
    jstr(o, "type", type);
    check_fields_json(o, rec, f, n);
    assert_int_equal(tl_json_len(o), width);
}

static void check_attribution_json(const tl_json *o, const tl_attribution *a)
{
    check_line(o, "attribution", a, ATTRIBUTION_FIELDS, N_FIELDS(ATTRIBUTION_FIELDS), 15);
    const tl_json *tps = jget(o, "touchpoints");
    assert_int_equal(tps->type, TL_JSON_ARRAY);
    assert_int_equal(tl_json_len(tps), a->n_touchpoints);
    for (int i = 0; i < a->n_touchpoints; i++) {
        const tl_json *t = tl_json_at(tps, (size_t)i);
        const tl_touchpoint *w = &a->touchpoints[i];
        assert_int_equal(t->type, TL_JSON_OBJECT);
        check_fields_json(t, w, TOUCHPOINT_FIELDS, N_FIELDS(TOUCHPOINT_FIELDS));
        assert_int_equal(tl_json_len(t), 7);
    }
    const tl_json *cr = jget(o, "credits");
    assert_int_equal(cr->type, TL_JSON_OBJECT);
    size_t want_nm = 0;
    for (int m = 0; m < TL_M_COUNT; m++) {
        const tl_json *arr = tl_json_get(cr, METHOD_NAMES[m]);
        if (!a->has_method[m]) {
            if (arr) fail_msg("credits has %s", METHOD_NAMES[m]);
            continue;
        }
        want_nm++;
        if (!arr || arr->type != TL_JSON_ARRAY) fail_msg("credits lacks %s", METHOD_NAMES[m]);
        assert_int_equal(tl_json_len(arr), a->n_touchpoints);
        for (int i = 0; i < a->n_touchpoints; i++) {
            char what[64];
            snprintf(what, sizeof(what), "credits.%s[%d]", METHOD_NAMES[m], i);
            jdbl_v(tl_json_at(arr, (size_t)i), a->credits[m][i], what);
        }
    }
    assert_int_equal(tl_json_len(cr), want_nm);
    const tl_json *st = jget(o, "model_status");
    if (!a->has_model) {
        assert_int_equal(st->type, TL_JSON_NULL);
    } else {
        size_t want_ns = 0;
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!a->model_status[m]) continue;
            want_ns++;
            jstr(st, METHOD_NAMES[m], a->model_status[m]);
        }
        assert_int_equal(tl_json_len(st), want_ns);
    }
    const tl_json *se = jget(o, "shapley_stderr");
    if (!a->shapley_stderr) {
        assert_int_equal(se->type, TL_JSON_NULL);
    } else {
        assert_int_equal(tl_json_len(se), (size_t)a->n_touchpoints);
        for (int i = 0; i < a->n_touchpoints; i++) {
            const tl_json *x = tl_json_at(se, (size_t)i);
            if (isfinite(a->shapley_stderr[i])) assert_true(x->num == a->shapley_stderr[i]);
            else assert_int_equal(x->type, TL_JSON_NULL); /* unknown: null */
        }
    }
}

static void check_credit_json(const tl_json *o, const tl_credit_delta *c)
{
    /* the interval's members are there only with an interval */
    check_line(o, "credit_delta", c, CREDIT_FIELDS, N_FIELDS(CREDIT_FIELDS),
               c->has_interval ? 13 : 10);
    if (c->has_interval)
        check_fields_json(o, c, CREDIT_INTERVAL_FIELDS, N_FIELDS(CREDIT_INTERVAL_FIELDS));
}

static void check_nc_json(const tl_json *arr, const char *pname, const tl_nc_entry *e, int n)
{
    assert_int_equal(tl_json_len(arr), n);
    for (int i = 0; i < n; i++) {
        const tl_json *x = tl_json_at(arr, i);
        const char *id = tl_json_str(tl_json_get(x, "category_id"));
        assert_non_null(id);
        assert_int_equal(strlen(id), e[i].len);
        assert_memory_equal(id, e[i].id, e[i].len);
        jdbl(x, pname, e[i].p);
    }
}

static void check_next_json(const tl_json *o, const tl_next_categories *r)
{
    check_line(o, "next_categories", r, NEXT_FIELDS, N_FIELDS(NEXT_FIELDS), 10);
    check_nc_json(jget(o, "categories"), "p", r->view->cat, r->view->n);
    jdbl(o, "p_other", r->view->p_other);
    const tl_json *emb = jget(o, "embedding");
    assert_int_equal(tl_json_len(emb), r->view->dim);
    for (int i = 0; i < r->view->dim; i++) jdbl_v(tl_json_at(emb, i), r->view->emb[i], "embedding");
    check_nc_json(jget(o, "like"), "affinity", r->view->like, r->view->n_like);
}

/* A JSON-lines sink writing to memory, and an arena for the lines parsed back. */
typedef struct jsonl_mem {
    char *out;
    size_t len;
    FILE *f;
    tl_sink *s;
    tl_arena a;
} jsonl_mem;

static void jsonl_mem_open(jsonl_mem *m)
{
    m->out = NULL;
    m->len = 0;
    m->f = open_memstream(&m->out, &m->len);
    assert_non_null(m->f);
    m->s = tl_jsonl_sink_new(m->f);
    assert_non_null(m->s);
    tl_arena_init(&m->a, 1 << 16);
}

static void jsonl_mem_close(jsonl_mem *m)
{
    tl_sink_destroy(m->s);
    fclose(m->f);
    free(m->out);
    tl_arena_destroy(&m->a);
}

/* What was written, split into lines, each a JSON object (in m's arena): one record a line,
 * no blank lines, a final newline, at most max lines. Returns the number of lines. */
static size_t jsonl_mem_lines(jsonl_mem *m, const tl_json **lines, size_t max)
{
    size_t n = 0;
    for (char *p = m->out; p < m->out + m->len; n++) {
        char *nl = memchr(p, '\n', (size_t)(m->out + m->len - p));
        if (!nl) fail_msg("line %zu has no newline", n + 1);
        if (nl == p) fail_msg("line %zu is blank", n + 1);
        if (n == max) fail_msg("more than %zu lines", max);
        char err[256] = "";
        lines[n] = tl_json_parse(p, (size_t)(nl - p), &m->a, err, sizeof(err));
        if (!lines[n]) fail_msg("line %zu does not parse: %s: %.*s", n + 1, err, (int)(nl - p), p);
        assert_int_equal(lines[n]->type, TL_JSON_OBJECT);
        p = nl + 1;
    }
    return n;
}

/* The sink's counts are these. */
static tl_sink_counts assert_counts(const tl_sink *s, uint64_t interest, uint64_t attribution,
                                    uint64_t credit, uint64_t dlq)
{
    tl_sink_counts k;
    tl_sink_counts_get(s, &k);
    assert_int_equal(k.interest, interest);
    assert_int_equal(k.attribution, attribution);
    assert_int_equal(k.credit, credit);
    assert_int_equal(k.dlq, dlq);
    return k;
}

static void test_jsonl(void **state)
{
    (void)state;
    jsonl_mem m;
    jsonl_mem_open(&m);
    tl_sink *s = m.s;

    tl_interest_delta ia = interest_a(), ib = interest_b();
    tl_attribution at[6] = {attribution_rules(),  attribution_all(),    attribution_some(),
                            attribution_empty(1), attribution_empty(0), attribution_many()};
    tl_credit_delta ca = credit_a(), cb = credit_b();
    const char payload[] = {'\0', 'x', '\xff'};
    tl_dlq_record dlq = {
        .reason = TL_DLQ_MALFORMED,
        .error = "Avro body does not decode: \"truncated\"",
        .topic = "tally.events",
        .partition = 2,
        .offset = 81,
        .key = "k",
        .key_len = 1,
        .payload = payload,
        .payload_len = sizeof(payload),
    };

    assert_int_equal(s->emit_interest(s->ctx, &ia), TL_OK);
    assert_int_equal(s->emit_interest(s->ctx, &ib), TL_OK);
    for (int i = 0; i < 6; i++) assert_int_equal(s->emit_attribution(s->ctx, &at[i]), TL_OK);
    assert_int_equal(s->emit_credit(s->ctx, &ca), TL_OK);
    assert_int_equal(s->emit_credit(s->ctx, &cb), TL_OK);
    assert_int_equal(s->emit_dlq(s->ctx, &dlq), TL_OK);
    tl_intent_delta na = intent_a(), nb = intent_b();
    assert_int_equal(s->emit_intent(s->ctx, &na), TL_OK);
    assert_int_equal(s->emit_intent(s->ctx, &nb), TL_OK);
    tl_nc_view va = nc_view_a(), vb = nc_view_b();
    tl_next_categories xa = next_of(&va, "u1"), xb = next_of(&vb, "\xc3\xa9");
    assert_int_equal(s->emit_next_categories(s->ctx, &xa), TL_OK);
    assert_int_equal(s->emit_next_categories(s->ctx, &xb), TL_OK);
    assert_int_equal(s->flush(s->ctx, 1000), TL_OK);
    tl_sink_counts counts = assert_counts(s, 2, 6, 2, 1);
    assert_int_equal(counts.bytes, m.len);
    assert_int_equal(counts.intent, 2);
    assert_int_equal(counts.next_categories, 2);

    /* one record a line */
    assert_true(m.len > 0);
    const tl_json *lines[16];
    assert_int_equal(jsonl_mem_lines(&m, lines, 16), 15);
    check_line(lines[0], "interest_delta", &ia, INTEREST_FIELDS, N_FIELDS(INTEREST_FIELDS), 14);
    check_line(lines[1], "interest_delta", &ib, INTEREST_FIELDS, N_FIELDS(INTEREST_FIELDS), 14);
    for (int i = 0; i < 6; i++) check_attribution_json(lines[2 + i], &at[i]);
    check_credit_json(lines[8], &ca);
    check_credit_json(lines[9], &cb);
    jstr(lines[10], "type", "dead_letter");
    jstr(lines[10], "reason", "malformed");
    jstr(lines[10], "error", dlq.error);
    ji64(lines[10], "offset", 81);
    check_line(lines[11], "intent_delta", &na, INTENT_FIELDS, N_FIELDS(INTENT_FIELDS), 9);
    check_line(lines[12], "intent_delta", &nb, INTENT_FIELDS, N_FIELDS(INTENT_FIELDS), 9);
    check_next_json(lines[13], &xa);
    check_next_json(lines[14], &xb);
    jsonl_mem_close(&m);
}

/* Doubles that are hard to print: each reads back to the same bits. */
static void test_jsonl_doubles(void **state)
{
    (void)state;
    static const double vals[] = {
        0.1,
        0.2,
        0.30000000000000004,
        1.0 / 3,
        2.0 / 3,
        1e-300,
        4.9406564584124654e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        123456789.12345679,
        0.5,
        -0.0,
        0.0,
        9007199254740993.0,
        1152921504606846976.0,
        -1e22,
        1e21,
        5e-324 * 3,
        100,
        -7.25,
        0.70710678118654757,
        1.0000000000000002,
        0.99999999999999989,
    };
    const size_t nv = sizeof(vals) / sizeof(*vals);
    jsonl_mem m;
    jsonl_mem_open(&m);
    tl_sink *s = m.s;
    for (size_t i = 0; i < nv; i++) {
        tl_interest_delta d = interest_a();
        d.f = vals[i];
        d.h = -vals[i];
        d.weight_after = vals[(i + 1) % nv];
        assert_int_equal(s->emit_interest(s->ctx, &d), TL_OK);
    }
    assert_int_equal(s->flush(s->ctx, 1000), TL_OK);
    const tl_json *lines[sizeof(vals) / sizeof(*vals)];
    assert_int_equal(jsonl_mem_lines(&m, lines, nv), nv);
    for (size_t i = 0; i < nv; i++) {
        jdbl(lines[i], "f", vals[i]);
        jdbl(lines[i], "h", -vals[i]);
        jdbl(lines[i], "weight_after", vals[(i + 1) % nv]);
    }
    jsonl_mem_close(&m);
}

/* A write error is reported by flush, not lost. */
static void test_jsonl_write_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        /* no /dev/full: a read-only stream fails the same way */
        f = fopen("/dev/null", "r");
    }
    assert_non_null(f);
    tl_sink *s = tl_jsonl_sink_new(f);
    tl_interest_delta d = interest_a();
    tl_rc rc = s->emit_interest(s->ctx, &d);
    tl_rc frc = s->flush(s->ctx, 1000);
    assert_true(rc == TL_ERROR || frc == TL_ERROR);
    tl_sink_destroy(s);
    fclose(f);
}

/* The encode-only sink counts records and their framed bytes. */
static void test_avro_sink_counts(void **state)
{
    (void)state;
    tl_sink *s = tl_avro_sink_new(2, 3, 4, 12, 13);
    tl_interest_delta d = interest_a();
    tl_attribution r = attribution_rules();
    tl_credit_delta c = credit_a();
    tl_dlq_record q = {.reason = TL_DLQ_OVERSIZED, .error = "big"};
    assert_int_equal(s->emit_interest(s->ctx, &d), TL_OK);
    assert_int_equal(s->emit_attribution(s->ctx, &r), TL_OK);
    assert_int_equal(s->emit_credit(s->ctx, &c), TL_OK);
    assert_int_equal(s->emit_credit(s->ctx, &c), TL_OK);
    assert_int_equal(s->emit_dlq(s->ctx, &q), TL_OK);
    assert_int_equal(s->flush(s->ctx, 10), TL_OK);
    tl_sink_counts k = assert_counts(s, 1, 1, 2, 1);
    /* bytes: the sizes avro-c gives for the decoded records, plus 5 per frame */
    size_t total = framed_size(&INTEREST_AVRO, &d, 2) + framed_size(&ATTRIBUTION_AVRO, &r, 3) +
        2 * framed_size(&CREDIT_AVRO, &c, 4);
    assert_int_equal(k.bytes, total);
    tl_sink_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_interest),
        cmocka_unit_test(test_avro_attribution),
        cmocka_unit_test(test_avro_credit),
        cmocka_unit_test(test_avro_intent),
        cmocka_unit_test(test_avro_next_categories),
        cmocka_unit_test(test_avro_rollup),
        cmocka_unit_test(test_avro_credit_bytes),
        cmocka_unit_test(test_avro_bounds),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_jsonl_doubles),
        cmocka_unit_test(test_jsonl_write_error),
        cmocka_unit_test(test_avro_sink_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
