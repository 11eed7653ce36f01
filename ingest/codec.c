/*
 * codec.c -- Confluent-framed Avro BehaviorEvent <-> tl_event (the checks every decoded
 * event then gets: domain/validate.c).
 *
 * What: the Kafka ingest path decodes every input record here; `produce` and the
 * tests encode with it.
 *
 * How (decode):
 *   1. Frame: length bound (TL_DLQ_OVERSIZED), magic byte and 4-byte big-endian
 *      schema id (TL_DLQ_NOT_FRAMED).
 *   2. Writer schema: a per-codec hash table id -> "writer entry" built once per id
 *      from the schema store. An entry holds everything per-record work needs: the
 *      writer schema, an avro-c resolved writer (avro_resolved_writer_new) wrapping a
 *      generic value of the reader schema, the field map, the enum map, and whether
 *      the fast path applies. Entries for incompatible writers are cached too, with
 *      their message.
 *   Then, when the entry says so, the fast path (below); otherwise steps 3 and 4.
 *   3. Validation: a walk of the Avro body against the writer schema that checks every
 *      length, index and varint against the bytes that are really there, bounds the
 *      item count of arrays and maps, and requires the body to end exactly where the
 *      record ends (TL_DLQ_MALFORMED otherwise). avro-c 1.11 trusts its input: a
 *      negative string length makes read_string() write before its buffer, a huge one
 *      asks malloc for it, a truncated string leaks its buffer. After this walk
 *      avro-c is only ever given well-formed data, so any error it still reports is a
 *      resolution failure (TL_DLQ_INCOMPATIBLE_SCHEMA), e.g. a writer union branch the
 *      reader has no counterpart for.
 *   4. avro_value_read() through the resolved writer fills the reused reader value;
 *      the fields are copied into the caller's arena.
 *
 * How (fast path): nearly every record on a topic is written with the reader schema
 * itself, and then there is nothing to resolve -- yet the generic path costs about
 * 1.06 us per typical 118-byte record (bench/bench_codec: a walk of the schema tree,
 * then avro-c's generic value machinery with a malloc and free per string). So:
 *   - once per reader (tl_codec_new), plan_fast() turns the reader's fields into a
 *     flat list (kind of value, event slot, null branch of a [null, T] union, enum
 *     symbol count), or gives up for shapes it does not cover (see there);
 *   - once per writer id (wentry_build), the writer's Parsing Canonical Form (avro_canon.c; Avro
 *     specification: full names, only the attributes that change the binary
 *     encoding, no docs, defaults, aliases or logical types) is compared with the
 *     reader's; equal means the writer's binary encoding is the reader's, so the
 *     entry is marked fast. So is a writer of an older version whose form is the
 *     reader's first k fields', when every later reader field is a union with null
 *     whose default is null (version 1 of the event schema beside version 2, which
 *     added campaign): its records are read over those k fields and the rest stay
 *     absent, as the generic path leaves them with their defaults;
 *   - per record, fast_decode() walks that list over the body once: zig-zag varints
 *     (64-bit overflow, int range), union index 0/1, enum index below the symbol
 *     count, little-endian IEEE floats and doubles, string lengths against the bytes
 *     left, and the body consumed exactly. Strings are copied into the arena, in one
 *     allocation, only after the whole body checked out, and only then is *ev
 *     written. About 0.09 us per typical record, a twelfth of the generic path.
 * The two paths must be indistinguishable: fast_decode() checks the same things in
 * the same byte order as check_value(), and both report through body_malformed() and
 * body_trailing(), so a bad record gets the same reason, the same message (down to
 * the byte offset) and an untouched *ev on either path; a good one the same event. The
 * tests decode generated, truncated, flipped and extended records both ways
 * (tl_codec_set_fast_path) and compare. Any other writer -- older, newer, reordered,
 * another namespace, enum symbols in another order -- takes steps 3 and 4 unchanged.
 *
 * Two gaps of avro-c 1.11's resolver are closed here:
 *   - defaults: it does not keep field defaults and rejects a reader field missing
 *     from the writer. So each entry resolves the writer against a *projection* of the
 *     reader schema (the reader's fields that the writer also has, in reader order);
 *     reader fields the writer lacks take the default read from the reader schema
 *     file with lib/json, and a missing field without a default makes the writer
 *     schema incompatible, as Avro's rules say.
 *   - enums: it copies the writer's enum index unchanged, whatever the reader's symbol
 *     order. The entry maps writer index -> writer symbol -> tl_event_type by name; a
 *     symbol the reader lacks is TL_DLQ_INCOMPATIBLE_SCHEMA for that record.
 *   - bytes -> string: Avro promotes, avro-c does not; the projection gives such a
 *     field a bytes type and the bytes are copied as the string.
 *
 * How (encode): hand-written Avro binary, field by field in reader-schema order
 * (zigzag varints, union branch index then value, little-endian IEEE doubles); the
 * tests cross-check it against avro-c decoding.
 *
 * Invariants: decode never reads outside buf[0..len); the writer entry of an id is
 * built once and never changes (so is its fast-path decision); the reader value and
 * avro reader are reused, so a codec belongs to one thread; a successful decode
 * writes every event field except partition and offset; a failed one leaves *ev
 * untouched unless it failed in extract() (the fast path never does); the fast path
 * is taken only for a writer with the canonical form of the reader (or of its first
 * fields, the rest null by default) and a reader plan_fast() accepted.
 *
 * Rejected alternatives: avro_resolved_reader_new (it wraps a *writer*-schema value,
 * so each record would be decoded twice: into a writer value, then read through the
 * wrapper); the legacy datum API (allocates a tree per record); decoding every
 * writer by hand without avro-c (schema resolution rules -- promotions, unions, nested
 * records -- are exactly what the library is for; the fast path only covers the case
 * with no resolution at all); compiling with
 * AVRO_ALLOW_MISSING_FIELDS_IN_RESOLVED_WRITER (a build flag of avro-c itself, and it
 * would zero-fill rather than use defaults). For the fast path: avro_schema_equal()
 * instead of canonical forms (in avro-c 1.11 it only compares the first union's
 * branches and the first enum's symbols, so ["null","string"] "equals"
 * ["null","string","int"]; the canonical form is the specification's definition of
 * "same encoding"); skipping only the validation walk and keeping avro-c for reading
 * (the walk is under a fifth of the generic cost); decoding into the caller's event as
 * the body is read (a bad record would leave it half-written, unlike the generic
 * path).
 */
#include "codec.h"
#include "avro_canon.h"
#include "lib/wire.h"

#include "lib/json.h"

#include <avro.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tl_dlq_fail (domain/validate.h) returns what a bad record returns here */
_Static_assert(TL_CODEC_BAD == -1, "tl_dlq_fail returns -1");

#define CODEC_MAX_DEPTH 64

typedef enum slot {
    S_EVENT_ID = 0,
    S_USER_ID,
    S_ITEM_ID,
    S_CATEGORY_ID,
    S_CHANNEL,
    S_CAMPAIGN,
    S_TYPE,
    S_TS,
    S_DWELL,
    S_VALUE,
    S_PROPENSITY,
    S_OTHER,
    S_COUNT = S_OTHER
} slot;

static const char *const slot_names[S_COUNT] = {
    "event_id", "user_id", "item_id",  "category_id", "channel",    "campaign",
    "type",     "ts",      "dwell_ms", "value",       "propensity",
};

/* One field of the reader schema. */
typedef struct rfield {
    slot slot;
    const char *name;        /* owned by the reader schema */
    avro_schema_t schema;    /* the field's schema (borrowed from the reader) */
    avro_type_t base;        /* type of the value: the non-null branch of a union */
    avro_schema_t base_schema;
    int is_union;
    int null_branch;         /* -1 if the field cannot be null */
    int value_branch;        /* union branch of the value, -1 if none */
    const tl_json *dflt;     /* the default in the reader schema file, or NULL */
} rfield;

/* Everything decode needs for one writer schema id. */
typedef struct wentry {
    int32_t id;
    int ok;
    char *msg;                    /* !ok: why the writer is incompatible */
    avro_schema_t writer;         /* own reference */
    avro_schema_t proj;           /* projected reader schema */
    avro_value_iface_t *gen_iface;
    avro_value_iface_t *resolver;
    avro_value_t gen, rw;         /* reader value, and the resolved writer wrapping it */
    int have_values;
    int nproj;
    int *proj_field;              /* projected field index -> reader field index */
    unsigned char *missing;       /* per reader field: absent in the writer */
    int *wtype;                   /* writer enum index -> tl_event_type or -1 */
    const char **wsym;            /* writer enum symbols, for messages */
    int nwtype;
    int fast;                     /* the writer has the reader's canonical form, or its
                                     first fast_nf fields' (fast_match) */
    int fast_nf;
} wentry;

/* How the fast path reads one reader field (see "How (fast path)" above). */
typedef enum fkind {
    FK_BOOLEAN,
    FK_INT,
    FK_LONG,
    FK_FLOAT,
    FK_DOUBLE,
    FK_STRING,
    FK_ENUM
} fkind;

typedef struct fplan {
    fkind kind;              /* of the value (the non-null branch of a union) */
    slot slot;
    int is_union;            /* a two-branch union of null and the value */
    int null_branch;         /* 0 or 1 when is_union */
    int nsym;                /* FK_ENUM: symbol count */
} fplan;

struct tl_codec {
    tl_schema_store *store;
    avro_schema_t reader;
    char *reader_path;
    tl_arena json_arena;          /* the reader schema's JSON tree (defaults) */
    rfield *f;
    int nf;
    int slot_field[S_COUNT];      /* reader field index of each slot, -1 if absent */
    int type_symbol[TL_EVENT_TYPE_COUNT]; /* reader enum index of each type, -1 */
    size_t max_bytes;
    avro_reader_t areader;
    wentry **tab;                 /* open addressing by id */
    size_t cap, n;
    fplan *fp;                    /* per reader field; NULL if the reader has a shape
                                     the fast path does not handle */
    char **canon;                 /* [k]: Parsing Canonical Form of the reader schema
                                     with its first k fields, for k >= canon_min */
    int canon_min;
    int fast_on;                  /* tl_codec_set_fast_path */
};

/* ------------------------------------------------------------- schema walk */

static avro_schema_t deref(avro_schema_t s)
{
    while (s && avro_typeof(s) == AVRO_LINK) s = avro_schema_link_target(s);
    return s;
}

typedef struct cursor {
    const uint8_t *p, *start, *end;
    size_t items_left;            /* array/map items still allowed in this record */
    const char *what;             /* what went wrong */
} cursor;

static int cur_fail(cursor *c, const char *what)
{
    c->what = what;
    return -1;
}

static int rd_long(cursor *c, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (c->p >= c->end) return cur_fail(c, "truncated varint");
        uint8_t b = *c->p++;
        if (i == 9 && b > 1) return cur_fail(c, "varint longer than 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return 0;
        }
    }
    return cur_fail(c, "varint longer than 64 bits");
}

static int skip_bytes(cursor *c, int64_t n)
{
    if (n < 0) return cur_fail(c, "negative length");
    if ((uint64_t)n > (uint64_t)(c->end - c->p)) return cur_fail(c, "length past the end");
    c->p += n;
    return 0;
}

static int check_value(cursor *c, avro_schema_t s, int depth);

static int check_blocks(cursor *c, avro_schema_t items, int is_map, int depth)
{
    for (;;) {
        int64_t count, size;
        if (rd_long(c, &count)) return -1;
        if (count == 0) return 0;
        if (count < 0) {
            if (count == INT64_MIN) return cur_fail(c, "invalid block count");
            count = -count;
            if (rd_long(c, &size)) return -1;
            if (size < 0 || (uint64_t)size > (uint64_t)(c->end - c->p))
                return cur_fail(c, "invalid block size");
        }
        if ((uint64_t)count > c->items_left) return cur_fail(c, "too many array or map items");
        c->items_left -= (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            if (is_map) {
                int64_t klen;
                if (rd_long(c, &klen) || skip_bytes(c, klen)) return -1;
            }
            if (check_value(c, items, depth + 1)) return -1;
        }
    }
}

/* Checks one value of schema s at c->p and moves past it. */
static int check_value(cursor *c, avro_schema_t s, int depth)
{
    int64_t v;
    s = deref(s);
    if (!s) return cur_fail(c, "unresolved schema reference");
    if (depth > CODEC_MAX_DEPTH) return cur_fail(c, "nesting too deep");
    switch (avro_typeof(s)) {
    case AVRO_NULL: return 0;
    case AVRO_BOOLEAN:
        if (c->p >= c->end) return cur_fail(c, "truncated boolean");
        if (*c->p > 1) return cur_fail(c, "boolean neither 0 nor 1");
        c->p++;
        return 0;
    case AVRO_INT32:
        if (rd_long(c, &v)) return -1;
        if (v < INT32_MIN || v > INT32_MAX) return cur_fail(c, "int out of range");
        return 0;
    case AVRO_INT64: return rd_long(c, &v);
    case AVRO_FLOAT: return skip_bytes(c, 4);
    case AVRO_DOUBLE: return skip_bytes(c, 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        if (rd_long(c, &v)) return -1;
        return skip_bytes(c, v);
    case AVRO_FIXED: return skip_bytes(c, avro_schema_fixed_size(s));
    case AVRO_ENUM:
        if (rd_long(c, &v)) return -1;
        if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
            return cur_fail(c, "enum index out of range");
        return 0;
    case AVRO_UNION:
        if (rd_long(c, &v)) return -1;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return cur_fail(c, "union branch index out of range");
        return check_value(c, avro_schema_union_branch(s, (int)v), depth + 1);
    case AVRO_RECORD: {
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            if (check_value(c, avro_schema_record_field_get_by_index(s, (int)i), depth + 1))
                return -1;
        return 0;
    }
    case AVRO_ARRAY: return check_blocks(c, avro_schema_array_items(s), 0, depth);
    case AVRO_MAP: return check_blocks(c, avro_schema_map_values(s), 1, depth);
    default: return cur_fail(c, "unsupported schema type");
    }
}

/* ----------------------------------------------------------- reader schema */

/* Fills base/union details of a reader field; -1 for a union of several non-null
 * types, which tally cannot map to one event field. */
static int classify(rfield *f)
{
    avro_schema_t s = deref(f->schema);
    f->null_branch = f->value_branch = -1;
    f->base_schema = s;
    if (avro_typeof(s) != AVRO_UNION) {
        f->base = avro_typeof(s);
        return 0;
    }
    f->is_union = 1;
    size_t n = avro_schema_union_size(s);
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = deref(avro_schema_union_branch(s, (int)i));
        if (avro_typeof(b) == AVRO_NULL) {
            if (f->null_branch < 0) f->null_branch = (int)i;
        } else if (f->value_branch < 0) {
            f->value_branch = (int)i;
            f->base = avro_typeof(b);
            f->base_schema = b;
        } else {
            return -1;
        }
    }
    if (f->value_branch < 0) f->base = AVRO_NULL;
    return 0;
}

static int base_ok(slot sl, avro_type_t t)
{
    switch (sl) {
    case S_EVENT_ID:
    case S_USER_ID:
    case S_ITEM_ID:
    case S_CATEGORY_ID:
    case S_CHANNEL:
    case S_CAMPAIGN: return t == AVRO_STRING;
    case S_TYPE: return t == AVRO_ENUM;
    case S_TS: return t == AVRO_INT64 || t == AVRO_INT32;
    case S_DWELL: return t == AVRO_INT32 || t == AVRO_INT64;
    case S_VALUE:
    case S_PROPENSITY: return t == AVRO_DOUBLE || t == AVRO_FLOAT;
    default: return 1;
    }
}

/* Whether a default from the schema file fits the field (for the slots we fill). */
static int default_ok(const rfield *f)
{
    const tl_json *d = f->dflt;
    if (!d) return 1;
    if (d->type == TL_JSON_NULL) return f->null_branch >= 0;
    switch (f->slot) {
    case S_EVENT_ID:
    case S_USER_ID:
    case S_ITEM_ID:
    case S_CATEGORY_ID:
    case S_CHANNEL:
    case S_CAMPAIGN: return d->type == TL_JSON_STRING;
    case S_TYPE:
        return d->type == TL_JSON_STRING && tl_event_type_parse(d->str, d->len) >= 0 &&
            avro_schema_enum_get_by_name(f->base_schema, d->str) >= 0;
    case S_TS: return d->type == TL_JSON_NUMBER && d->is_int;
    case S_DWELL:
        return d->type == TL_JSON_NUMBER && d->is_int && d->i >= INT32_MIN && d->i <= INT32_MAX;
    case S_VALUE:
    case S_PROPENSITY: return d->type == TL_JSON_NUMBER;
    default: return 1;
    }
}

static int load_reader(tl_codec *c, const char *path, char *err, size_t errlen)
{
    tl_buf text = {0};
    if (tl_buf_read_file(&text, path, SIZE_MAX, NULL, 0) == -1) {
        snprintf(err, errlen, "cannot open reader schema %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    char jerr[160];
    const tl_json *root =
        tl_json_parse(text.data ? text.data : "", text.len, &c->json_arena, jerr, sizeof(jerr));
    if (!root) {
        snprintf(err, errlen, "reader schema %s: %s", path, jerr);
        goto out;
    }
    if (avro_schema_from_json_length(text.data, text.len, &c->reader) != 0) {
        c->reader = NULL;
        snprintf(err, errlen, "reader schema %s is not a valid Avro schema: %s", path,
                 avro_strerror());
        goto out;
    }
    if (avro_typeof(c->reader) != AVRO_RECORD) {
        snprintf(err, errlen, "reader schema %s is not an Avro record", path);
        goto out;
    }
    const tl_json *jfields = tl_json_get(root, "fields");
    c->nf = (int)avro_schema_record_size(c->reader);
    c->f = tl_xcalloc((size_t)c->nf + 1, sizeof(*c->f));
    for (int i = 0; i < S_COUNT; i++) c->slot_field[i] = -1;
    for (int i = 0; i < c->nf; i++) {
        rfield *f = &c->f[i];
        f->name = avro_schema_record_field_name(c->reader, i);
        f->schema = avro_schema_record_field_get_by_index(c->reader, i);
        f->slot = S_OTHER;
        for (int k = 0; k < S_COUNT; k++)
            if (strcmp(f->name, slot_names[k]) == 0) f->slot = (slot)k;
        for (size_t k = 0; k < tl_json_len(jfields); k++) {
            const tl_json *jf = tl_json_at(jfields, k);
            const char *nm = tl_json_str(tl_json_get(jf, "name"));
            if (nm && strcmp(nm, f->name) == 0) f->dflt = tl_json_get(jf, "default");
        }
        if (classify(f) != 0 || !base_ok(f->slot, f->base) ||
            (f->slot != S_OTHER && f->value_branch < 0 && f->is_union)) {
            snprintf(err, errlen,
                     "reader schema %s: field %s has a type tally cannot map "
                     "to an event field",
                     path, f->name);
            goto out;
        }
        if (f->slot == S_OTHER && f->null_branch < 0) {
            snprintf(err, errlen,
                     "reader schema %s: field %s is not an event field and "
                     "is not nullable, so events cannot be encoded",
                     path, f->name);
            goto out;
        }
        if (f->slot != S_OTHER) c->slot_field[f->slot] = i;
    }
    static const slot required[] = {S_EVENT_ID, S_USER_ID, S_ITEM_ID, S_TYPE, S_TS};
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
        if (c->slot_field[required[k]] < 0) {
            snprintf(err, errlen, "reader schema %s has no field %s", path,
                     slot_names[required[k]]);
            goto out;
        }
    }
    /* Every reader symbol must be a type tally knows; map types to reader indexes. */
    avro_schema_t en = c->f[c->slot_field[S_TYPE]].base_schema;
    int nsym = avro_schema_enum_number_of_symbols(en);
    for (int t = 0; t < TL_EVENT_TYPE_COUNT; t++)
        c->type_symbol[t] = avro_schema_enum_get_by_name(en, tl_event_type_name((tl_event_type)t));
    for (int k = 0; k < nsym; k++) {
        const char *sym = avro_schema_enum_get(en, k);
        if (tl_event_type_parse(sym, strlen(sym)) < 0) {
            snprintf(err, errlen,
                     "reader schema %s: event type symbol %s is not one tally "
                     "knows",
                     path, sym);
            goto out;
        }
    }
    for (int i = 0; i < c->nf; i++) {
        if (!default_ok(&c->f[i])) {
            snprintf(err, errlen,
                     "reader schema %s: the default of field %s does not fit "
                     "its type",
                     path, c->f[i].name);
            goto out;
        }
    }
    rc = 0;
out:
    tl_buf_free(&text);
    return rc;
}

/* ------------------------------- fast path: the plan (canonical forms: avro_canon.c) */

static void free_canon(tl_codec *c)
{
    if (c->canon)
        for (int k = 0; k <= c->nf; k++) free(c->canon[k]);
    free(c->canon);
    c->canon = NULL;
}

/* Builds c->fp when every reader field has a shape the fast path reads exactly as the
 * generic path does; leaves it NULL otherwise (every record then takes the generic
 * path). Left out on purpose: type or ts inside a union (a null there is an avro-c
 * error on the generic path), a long dwell_ms (its range error comes after the
 * generic path has half-filled the event), unions of more than null and one type,
 * and nested or repeated types in non-event fields. */
static void plan_fast(tl_codec *c)
{
    fplan *fp = tl_xcalloc((size_t)c->nf + 1, sizeof(*fp));
    for (int i = 0; i < c->nf; i++) {
        const rfield *f = &c->f[i];
        fplan *p = &fp[i];
        p->slot = f->slot;
        if (f->is_union) {
            if (avro_schema_union_size(deref(f->schema)) != 2 || f->null_branch < 0 ||
                f->value_branch < 0 || f->slot == S_TYPE || f->slot == S_TS)
                goto no;
            p->is_union = 1;
            p->null_branch = f->null_branch;
        }
        switch (f->base) {
        case AVRO_BOOLEAN: p->kind = FK_BOOLEAN; break;
        case AVRO_INT32: p->kind = FK_INT; break;
        case AVRO_INT64:
            if (f->slot == S_DWELL) goto no;
            p->kind = FK_LONG;
            break;
        case AVRO_FLOAT: p->kind = FK_FLOAT; break;
        case AVRO_DOUBLE: p->kind = FK_DOUBLE; break;
        case AVRO_STRING:
        case AVRO_BYTES: p->kind = FK_STRING; break;
        case AVRO_ENUM:
            p->kind = FK_ENUM;
            p->nsym = avro_schema_enum_number_of_symbols(f->base_schema);
            break;
        default: goto no;
        }
    }
    /* A writer of an older version, which has the reader's first fields and lacks only
     * trailing ones whose default is null, is read the same way (they stay absent). */
    c->canon_min = c->nf;
    while (c->canon_min > 0) {
        const rfield *f = &c->f[c->canon_min - 1];
        if (!f->is_union || f->null_branch < 0 || !f->dflt || f->dflt->type != TL_JSON_NULL ||
            f->slot == S_TYPE || f->slot == S_TS)
            break;
        c->canon_min--;
    }
    c->canon = tl_xcalloc((size_t)c->nf + 1, sizeof(*c->canon));
    for (int k = c->canon_min; k <= c->nf; k++)
        if (!(c->canon[k] = tl_avro_canonical_form(c->reader, k))) goto no;
    c->fp = fp;
    return;
no:
    free_canon(c);
    free(fp);
}

/* ----------------------------------------------------------- writer entries */

static void wentry_free(wentry *w)
{
    if (!w) return;
    if (w->have_values) {
        avro_value_decref(&w->rw);
        avro_value_decref(&w->gen);
    }
    if (w->resolver) avro_value_iface_decref(w->resolver);
    if (w->gen_iface) avro_value_iface_decref(w->gen_iface);
    if (w->proj) avro_schema_decref(w->proj);
    if (w->writer) avro_schema_decref(w->writer);
    TL_FREE_ALL(w->msg, w->proj_field, w->missing, w->wtype, w->wsym, w);
}

static void wentry_incompatible(wentry *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void wentry_incompatible(wentry *w, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    w->ok = 0;
    w->msg = tl_xstrdup(buf);
}

/* The enum schema of the writer's "type" field (directly or as a union branch). */
static avro_schema_t writer_type_enum(avro_schema_t writer, int *ambiguous)
{
    *ambiguous = 0;
    avro_schema_t t = deref(avro_schema_record_field_get(writer, "type"));
    if (!t) return NULL;
    if (avro_typeof(t) == AVRO_ENUM) return t;
    if (avro_typeof(t) != AVRO_UNION) return NULL;
    avro_schema_t found = NULL;
    for (size_t i = 0; i < avro_schema_union_size(t); i++) {
        avro_schema_t b = deref(avro_schema_union_branch(t, (int)i));
        if (avro_typeof(b) != AVRO_ENUM) continue;
        if (found) *ambiguous = 1;
        found = b;
    }
    return found;
}

/* Whether a writer field holds its string as Avro bytes (bytes, or a union with a
 * bytes branch and no string branch). */
static int writer_sends_bytes(avro_schema_t wf)
{
    wf = deref(wf);
    if (!wf) return 0;
    if (avro_typeof(wf) == AVRO_BYTES) return 1;
    if (avro_typeof(wf) != AVRO_UNION) return 0;
    int bytes = 0, string = 0;
    for (size_t i = 0; i < avro_schema_union_size(wf); i++) {
        avro_type_t t = avro_typeof(deref(avro_schema_union_branch(wf, (int)i)));
        bytes |= t == AVRO_BYTES;
        string |= t == AVRO_STRING;
    }
    return bytes && !string;
}

/* The reader field's schema with its string replaced by bytes (a new reference). */
static avro_schema_t bytes_variant(const rfield *f)
{
    if (!f->is_union) return avro_schema_bytes();
    avro_schema_t u = avro_schema_union();
    avro_schema_t src = deref(f->schema);
    for (size_t i = 0; i < avro_schema_union_size(src); i++) {
        avro_schema_t b = avro_schema_union_branch(src, (int)i);
        if ((int)i == f->value_branch) {
            avro_schema_t bytes = avro_schema_bytes();
            avro_schema_union_append(u, bytes);
            avro_schema_decref(bytes);
        } else {
            avro_schema_union_append(u, b);
        }
    }
    return u;
}

/* How many reader fields records of a (compatible) writer have when they take the fast
 * path, or 0 when they do not: the reader has a plan, and the writer has the canonical
 * form of the reader or of its first k fields, the rest having a null default
 * (plan_fast). The enum check is implied by the latter; it is repeated because the fast
 * path indexes w->wtype unchecked. */
static int fast_match(const tl_codec *c, const wentry *w, avro_schema_t ws)
{
    if (!c->fp) return 0;
    if (w->nwtype != c->fp[c->slot_field[S_TYPE]].nsym) return 0;
    for (int k = 0; k < w->nwtype; k++)
        if (w->wtype[k] < 0) return 0;
    int nf = (int)avro_schema_record_size(ws);
    if (nf < c->canon_min || nf > c->nf) return 0;
    char *wc = tl_avro_canonical_form(ws, -1);
    int same = wc && strcmp(wc, c->canon[nf]) == 0;
    free(wc);
    return same ? nf : 0;
}

/* Builds the entry of a writer schema. Always returns an entry; !ok when the writer
 * cannot be resolved to the reader. */
static wentry *wentry_build(tl_codec *c, int32_t id, avro_schema_t writer)
{
    wentry *w = tl_xcalloc(1, sizeof(*w));
    w->id = id;
    w->writer = avro_schema_incref(writer);
    w->ok = 1;
    avro_schema_t ws = deref(writer);
    if (avro_typeof(ws) != AVRO_RECORD) {
        wentry_incompatible(w, "writer schema id %d is not a record (its type is %s)", (int)id,
                            avro_schema_type_name(ws));
        return w;
    }
    if (strcmp(avro_schema_name(ws), avro_schema_name(c->reader)) != 0) {
        wentry_incompatible(w, "writer schema id %d is record %s, not %s", (int)id,
                            avro_schema_name(ws), avro_schema_name(c->reader));
        return w;
    }

    w->proj_field = tl_xcalloc((size_t)c->nf + 1, sizeof(*w->proj_field));
    w->missing = tl_xcalloc((size_t)c->nf + 1, 1);
    w->proj = avro_schema_record(avro_schema_name(c->reader), avro_schema_namespace(c->reader));
    for (int i = 0; i < c->nf; i++) {
        rfield *f = &c->f[i];
        if (avro_schema_record_field_get_index(ws, f->name) < 0) {
            if (!f->dflt) {
                wentry_incompatible(w,
                                    "writer schema id %d has no field %s, and the reader "
                                    "schema gives it no default",
                                    (int)id, f->name);
                return w;
            }
            w->missing[i] = 1;
            continue;
        }
        /* bytes written, string read: Avro promotes; avro-c does not, so the reader
         * view of this field takes bytes where the reader has string. */
        avro_schema_t ftype = f->schema, made = NULL;
        if (f->base == AVRO_STRING && writer_sends_bytes(avro_schema_record_field_get(ws, f->name)))
            ftype = made = bytes_variant(f);
        int arc = avro_schema_record_field_append(w->proj, f->name, ftype);
        if (made) avro_schema_decref(made);
        if (arc != 0) {
            wentry_incompatible(w, "cannot build the reader view of schema id %d: %s", (int)id,
                                avro_strerror());
            return w;
        }
        w->proj_field[w->nproj++] = i;
    }

    /* avro-c frees shared resolvers twice when a record fails to resolve half-way (a
     * nullable string beside a renamed enum, ...): decide by its rules first. */
    char why[384];
    if (tl_schema_check_resolution(ws, w->proj, why, sizeof(why)) != TL_SCHEMA_OK) {
        wentry_incompatible(w, "writer schema id %d does not resolve to the reader schema: %s",
                            (int)id, why);
        return w;
    }
    w->resolver = avro_resolved_writer_new(ws, w->proj);
    if (!w->resolver) {
        wentry_incompatible(w, "writer schema id %d does not resolve to the reader schema: %s",
                            (int)id, avro_strerror());
        return w;
    }
    w->gen_iface = avro_generic_class_from_schema(w->proj);
    if (!w->gen_iface || avro_generic_value_new(w->gen_iface, &w->gen) != 0) {
        wentry_incompatible(w, "cannot allocate a reader value for schema id %d: %s", (int)id,
                            avro_strerror());
        return w;
    }
    if (avro_resolved_writer_new_value(w->resolver, &w->rw) != 0) {
        avro_value_decref(&w->gen);
        wentry_incompatible(w, "cannot allocate a resolver value for schema id %d: %s", (int)id,
                            avro_strerror());
        return w;
    }
    w->have_values = 1;
    avro_resolved_writer_set_dest(&w->rw, &w->gen);

    /* Writer enum index -> event type, by symbol name. */
    if (!w->missing[c->slot_field[S_TYPE]]) {
        int ambiguous;
        avro_schema_t we = writer_type_enum(ws, &ambiguous);
        if (!we || ambiguous) {
            wentry_incompatible(w, "writer schema id %d: field type is not one enum", (int)id);
            return w;
        }
        avro_schema_t re = c->f[c->slot_field[S_TYPE]].base_schema;
        w->nwtype = avro_schema_enum_number_of_symbols(we);
        w->wtype = tl_xcalloc((size_t)w->nwtype + 1, sizeof(*w->wtype));
        w->wsym = tl_xcalloc((size_t)w->nwtype + 1, sizeof(*w->wsym));
        for (int k = 0; k < w->nwtype; k++) {
            const char *sym = avro_schema_enum_get(we, k);
            w->wsym[k] = sym;
            w->wtype[k] = avro_schema_enum_get_by_name(re, sym) >= 0
                ? tl_event_type_parse(sym, strlen(sym))
                : -1;
        }
    }
    w->fast_nf = fast_match(c, w, ws);
    w->fast = w->fast_nf > 0;
    return w;
}

static wentry *cache_find(tl_codec *c, int32_t id)
{
    if (!c->cap) return NULL;
    for (size_t i = ((uint32_t)id * 2654435761u) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        if (!c->tab[i]) return NULL;
        if (c->tab[i]->id == id) return c->tab[i];
    }
}

static void cache_insert(tl_codec *c, wentry *w)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        wentry **nt = tl_xcalloc(ncap, sizeof(*nt));
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->tab[i]) continue;
            size_t j = ((uint32_t)c->tab[i]->id * 2654435761u) & (ncap - 1);
            while (nt[j]) j = (j + 1) & (ncap - 1);
            nt[j] = c->tab[i];
        }
        free(c->tab);
        c->tab = nt;
        c->cap = ncap;
    }
    size_t j = ((uint32_t)w->id * 2654435761u) & (c->cap - 1);
    while (c->tab[j]) j = (j + 1) & (c->cap - 1);
    c->tab[j] = w;
    c->n++;
}

/* ------------------------------------------------------------------ public */

tl_codec *tl_codec_new(tl_schema_store *store, const char *reader_schema_path, char *err,
                       size_t errlen)
{
    tl_codec *c = tl_xcalloc(1, sizeof(*c));
    c->store = store;
    c->max_bytes = TL_CODEC_DEFAULT_MAX_BYTES;
    tl_arena_init(&c->json_arena, 4096);
    c->reader_path = tl_xstrdup(reader_schema_path);
    if (load_reader(c, reader_schema_path, err, errlen) != 0) goto fail;
    plan_fast(c);
    c->fast_on = 1;
    c->areader = avro_reader_memory("", 0);
    if (!c->areader) {
        snprintf(err, errlen, "cannot create an Avro memory reader: %s", avro_strerror());
        goto fail;
    }
    return c;
fail:
    tl_codec_destroy(c);
    return NULL;
}

void tl_codec_destroy(tl_codec *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++) wentry_free(c->tab[i]);
    free(c->tab);
    if (c->areader) avro_reader_free(c->areader);
    if (c->reader) avro_schema_decref(c->reader);
    free(c->f);
    free(c->fp);
    free_canon(c);
    free(c->reader_path);
    tl_arena_destroy(&c->json_arena);
    free(c);
}

void tl_codec_set_max_bytes(tl_codec *c, size_t max) { c->max_bytes = max; }

void tl_codec_set_fast_path(tl_codec *c, int on) { c->fast_on = on != 0; }

int tl_codec_uses_fast_path(tl_codec *c, int32_t id)
{
    const wentry *w = cache_find(c, id);
    return c->fast_on && w && w->ok && w->fast;
}

static const char *str_get(const tl_event *ev, slot s)
{
    switch (s) {
    case S_EVENT_ID: return ev->event_id;
    case S_USER_ID: return ev->user_id;
    case S_ITEM_ID: return ev->item_id;
    case S_CATEGORY_ID: return ev->category_id;
    case S_CHANNEL: return ev->channel;
    case S_CAMPAIGN: return ev->campaign;
    default: return NULL;
    }
}

static const char **str_slot(tl_event *ev, slot s)
{
    switch (s) {
    case S_EVENT_ID: return &ev->event_id;
    case S_USER_ID: return &ev->user_id;
    case S_ITEM_ID: return &ev->item_id;
    case S_CATEGORY_ID: return &ev->category_id;
    case S_CHANNEL: return &ev->channel;
    case S_CAMPAIGN: return &ev->campaign;
    default: return NULL;
    }
}

/* Sets the slot of field f to its (already validated) default. */
static void apply_default(const rfield *f, tl_event *ev, tl_arena *a)
{
    const tl_json *d = f->dflt;
    const char **sp = str_slot(ev, f->slot);
    if (sp) {
        *sp = d->type == TL_JSON_STRING ? tl_arena_strndup(a, d->str, d->len) : NULL;
        return;
    }
    int null = d->type == TL_JSON_NULL;
    switch (f->slot) {
    case S_TYPE: ev->type = (tl_event_type)tl_event_type_parse(d->str, d->len); break;
    case S_TS: ev->ts = null ? 0 : d->i; break;
    case S_DWELL:
        ev->has_dwell = !null;
        ev->dwell_ms = null ? 0 : (int32_t)d->i;
        break;
    case S_VALUE:
        ev->has_value = !null;
        ev->value = null ? 0 : d->num;
        break;
    case S_PROPENSITY:
        ev->has_propensity = !null;
        ev->propensity = null ? 0 : d->num;
        break;
    default: break;
    }
}

/* Copies one field of the decoded reader value into ev. A string slot's raw bytes are
 * noted in raw[] (checked for NULs once every field is read, in slot order, as the fast
 * path does). */
static int extract(tl_codec *c, wentry *w, const rfield *f, avro_value_t *v, tl_event *ev,
                   tl_arena *a, const char **raw, size_t *raw_len, tl_dlq_reason *reason, char *err,
                   size_t errlen)
{
    int null = 0;
    avro_value_t branch;
    if (f->is_union) {
        int d;
        if (avro_value_get_discriminant(v, &d) != 0) goto avro_fail;
        if (d == f->null_branch) {
            null = 1;
        } else {
            if (avro_value_get_current_branch(v, &branch) != 0) goto avro_fail;
            v = &branch;
        }
    }
    const char **sp = str_slot(ev, f->slot);
    if (sp) {
        const char *s;
        size_t n;
        if (null) {
            *sp = NULL;
        } else if (avro_value_get_type(v) == AVRO_BYTES) {
            const void *p;
            if (avro_value_get_bytes(v, &p, &n) != 0) goto avro_fail;
            *sp = tl_arena_strndup(a, p, n);
            raw[f->slot] = p;
            raw_len[f->slot] = n;
        } else {
            if (avro_value_get_string(v, &s, &n) != 0) goto avro_fail;
            n = n ? n - 1 : 0;   /* avro-c counts the terminating NUL */
            *sp = tl_arena_strndup(a, s, n);
            raw[f->slot] = s;
            raw_len[f->slot] = n;
        }
        return 0;
    }
    int32_t i32;
    int64_t i64;
    double d64;
    float f32;
    int e;
    switch (f->slot) {
    case S_TYPE:
        if (avro_value_get_enum(v, &e) != 0) goto avro_fail;
        if (e < 0 || e >= w->nwtype)
            return tl_dlq_fail(reason, TL_DLQ_MALFORMED, err, errlen,
                               "event type index %d out of range "
                               "(schema id %d)",
                               e, (int)w->id);
        if (w->wtype[e] < 0)
            return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen,
                               "event type %s (writer schema id %d) is not in the reader schema",
                               w->wsym[e], (int)w->id);
        ev->type = (tl_event_type)w->wtype[e];
        return 0;
    case S_TS:
        if (f->base == AVRO_INT64) {
            if (avro_value_get_long(v, &i64) != 0) goto avro_fail;
        } else {
            if (avro_value_get_int(v, &i32) != 0) goto avro_fail;
            i64 = i32;
        }
        ev->ts = i64;
        return 0;
    case S_DWELL:
        ev->has_dwell = !null;
        ev->dwell_ms = 0;
        if (null) return 0;
        if (f->base == AVRO_INT64) {
            if (avro_value_get_long(v, &i64) != 0) goto avro_fail;
            if (i64 < INT32_MIN || i64 > INT32_MAX)
                return tl_dlq_fail(reason, TL_DLQ_BAD_VALUE, err, errlen,
                                   "dwell_ms %lld is out of range", (long long)i64);
            ev->dwell_ms = (int32_t)i64;
        } else {
            if (avro_value_get_int(v, &i32) != 0) goto avro_fail;
            ev->dwell_ms = i32;
        }
        return 0;
    case S_VALUE:
    case S_PROPENSITY:
        d64 = 0;
        if (!null) {
            if (f->base == AVRO_DOUBLE) {
                if (avro_value_get_double(v, &d64) != 0) goto avro_fail;
            } else {
                if (avro_value_get_float(v, &f32) != 0) goto avro_fail;
                d64 = f32;
            }
        }
        if (f->slot == S_VALUE) {
            ev->has_value = !null;
            ev->value = d64;
        } else {
            ev->has_propensity = !null;
            ev->propensity = d64;
        }
        return 0;
    default: return 0;
    }
avro_fail:
    return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen,
                       "field %s (writer schema id %d) cannot be read as the reader's type: %s",
                       f->name, (int)w->id, avro_strerror());
}

/* The two TL_DLQ_MALFORMED messages, shared by both paths so they cannot drift. */
static int body_malformed(const cursor *cur, int32_t id, tl_dlq_reason *reason, char *err,
                          size_t errlen)
{
    return tl_dlq_fail(reason, TL_DLQ_MALFORMED, err, errlen,
                       "Avro body (schema id %d) is malformed: %s at byte %zu of %zu", (int)id,
                       cur->what, (size_t)(cur->p - cur->start), (size_t)(cur->end - cur->start));
}

static int body_trailing(const cursor *cur, int32_t id, tl_dlq_reason *reason, char *err,
                         size_t errlen)
{
    return tl_dlq_fail(reason, TL_DLQ_MALFORMED, err, errlen,
                       "Avro body (schema id %d) has %zu trailing bytes after the record", (int)id,
                       (size_t)(cur->end - cur->p));
}

/* rd_long() with the one-byte varint (lengths, indexes, small numbers) inline. */
static inline int rd_long_fast(cursor *c, int64_t *out)
{
    if (c->p < c->end && !(*c->p & 0x80)) {
        uint8_t b = *c->p++;
        *out = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        return 0;
    }
    return rd_long(c, out);
}

/* The fast path: one pass over the body in the reader's field order (it is the
 * writer's), checking exactly what check_value() checks, in the same order and at the
 * same byte, so failures carry the generic path's reason and message. Values are
 * kept in locals and strings as (pointer, length) into buf; only once the whole body
 * is known to be good are the strings copied into the arena (one allocation) and *ev
 * written, so a bad record leaves *ev untouched, as on the generic path. */
static int fast_decode(const tl_codec *c, const wentry *w, const uint8_t *b, size_t len,
                       tl_event *ev, tl_arena *a, tl_dlq_reason *reason, char *err, size_t errlen)
{
    cursor cur = {
        .p = b + TL_CODEC_FRAME_HEADER, .start = b + TL_CODEC_FRAME_HEADER, .end = b + len};
    const uint8_t *sp[S_TYPE] = {0};   /* the string slots precede S_TYPE */
    size_t sn[S_TYPE];
    int64_t ts = 0;
    int32_t dwell = 0;
    double value = 0, propensity = 0;
    int type = 0, has_dwell = 0, has_value = 0, has_propensity = 0;
    for (int i = 0; i < w->fast_nf; i++) {
        const fplan *p = &c->fp[i];
        int64_t v;
        if (p->is_union) {
            if (rd_long_fast(&cur, &v)) goto malformed;
            if (v < 0 || v > 1) {
                cur_fail(&cur, "union branch index out of range");
                goto malformed;
            }
            if (v == p->null_branch) continue;   /* the slot stays NULL / absent */
        }
        switch (p->kind) {
        case FK_BOOLEAN:
            if (cur.p >= cur.end) {
                cur_fail(&cur, "truncated boolean");
                goto malformed;
            }
            if (*cur.p > 1) {
                cur_fail(&cur, "boolean neither 0 nor 1");
                goto malformed;
            }
            cur.p++;
            break;
        case FK_INT:
        case FK_LONG:
            if (rd_long_fast(&cur, &v)) goto malformed;
            if (p->kind == FK_INT && (v < INT32_MIN || v > INT32_MAX)) {
                cur_fail(&cur, "int out of range");
                goto malformed;
            }
            if (p->slot == S_TS) {
                ts = v;
            } else if (p->slot == S_DWELL) {   /* FK_INT only (plan_fast) */
                has_dwell = 1;
                dwell = (int32_t)v;
            }
            break;
        case FK_FLOAT:
        case FK_DOUBLE: {
            int n = p->kind == FK_FLOAT ? 4 : 8;
            if ((size_t)(cur.end - cur.p) < (size_t)n) {
                cur_fail(&cur, "length past the end");
                goto malformed;
            }
            double d;
            if (n == 4) {
                uint32_t u32 = tl_le_get_u32(cur.p);
                float f32;
                memcpy(&f32, &u32, 4);
                d = f32;
            } else {
                d = tl_le_get_f64(cur.p);
            }
            cur.p += n;
            if (p->slot == S_VALUE) {
                has_value = 1;
                value = d;
            } else if (p->slot == S_PROPENSITY) {
                has_propensity = 1;
                propensity = d;
            }
            break;
        }
        case FK_STRING:
            if (rd_long_fast(&cur, &v)) goto malformed;
            if (v < 0) {
                cur_fail(&cur, "negative length");
                goto malformed;
            }
            if ((uint64_t)v > (uint64_t)(cur.end - cur.p)) {
                cur_fail(&cur, "length past the end");
                goto malformed;
            }
            if (p->slot < S_TYPE) {
                sp[p->slot] = cur.p;
                sn[p->slot] = (size_t)v;
            }
            cur.p += v;
            break;
        case FK_ENUM:
            if (rd_long_fast(&cur, &v)) goto malformed;
            if (v < 0 || v >= p->nsym) {
                cur_fail(&cur, "enum index out of range");
                goto malformed;
            }
            if (p->slot == S_TYPE) type = w->wtype[v];
            break;
        }
    }
    if (cur.p != cur.end) return body_trailing(&cur, w->id, reason, err, errlen);

    size_t total = 0;
    for (int k = 0; k < S_TYPE; k++) {
        if (!sp[k]) continue;
        if (tl_string_check_nul(slot_names[k], sp[k], sn[k], reason, err, errlen))
            return TL_CODEC_BAD;
        total += sn[k] + 1;
    }
    char *dst = total ? tl_arena_alloc(a, total) : NULL;
    const char *str[S_TYPE] = {0};
    for (int k = 0; k < S_TYPE; k++) {
        if (!sp[k]) continue;
        memcpy(dst, sp[k], sn[k]);
        dst[sn[k]] = '\0';
        str[k] = dst;
        dst += sn[k] + 1;
    }
    /* One assignment: every field not named is zeroed, like the generic path's memset
     * (and cheaper: no store-to-load round trip through a local event). */
    *ev = (tl_event){
        .event_id = str[S_EVENT_ID],
        .user_id = str[S_USER_ID],
        .item_id = str[S_ITEM_ID],
        .category_id = str[S_CATEGORY_ID],
        .channel = str[S_CHANNEL],
        .campaign = str[S_CAMPAIGN],
        .type = (tl_event_type)type,
        .ts = ts,
        .dwell_ms = dwell,
        .value = value,
        .propensity = propensity,
        .has_dwell = has_dwell != 0,
        .has_value = has_value != 0,
        .has_propensity = has_propensity != 0,
        .partition = ev->partition,
        .offset = ev->offset,
    };
    return TL_CODEC_OK;
malformed:
    return body_malformed(&cur, w->id, reason, err, errlen);
}

int tl_codec_decode(tl_codec *c, const void *buf, size_t len, tl_event *ev, tl_arena *a,
                    tl_dlq_reason *reason, char *err, size_t errlen)
{
    const uint8_t *b = buf;
    if (len > c->max_bytes)
        return tl_dlq_fail(reason, TL_DLQ_OVERSIZED, err, errlen,
                           "record of %zu bytes exceeds the limit of %zu bytes", len, c->max_bytes);
    if (!b || len < TL_CODEC_FRAME_HEADER)
        return tl_dlq_fail(reason, TL_DLQ_NOT_FRAMED, err, errlen,
                           "record of %zu bytes is shorter than the 5-byte schema registry header",
                           len);
    if (b[0] != 0)
        return tl_dlq_fail(reason, TL_DLQ_NOT_FRAMED, err, errlen,
                           "record starts with byte 0x%02x, not the schema registry magic byte 0",
                           b[0]);
    int32_t id = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) |
                           (uint32_t)b[4]);

    wentry *w = cache_find(c, id);
    if (!w) {
        avro_schema_t writer;
        char serr[512];
        int rc = tl_schema_store_get(c->store, id, &writer, serr, sizeof(serr));
        if (rc == TL_SCHEMA_NOT_FOUND)
            return tl_dlq_fail(reason, TL_DLQ_UNKNOWN_SCHEMA, err, errlen, "%s", serr);
        if (rc == TL_SCHEMA_INVALID)
            return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen, "%s", serr);
        if (rc != TL_SCHEMA_OK) {
            tl_dlq_fail(reason, TL_DLQ_UNKNOWN_SCHEMA, err, errlen, "%s", serr);
            return TL_CODEC_RETRY;
        }
        w = wentry_build(c, id, writer);
        cache_insert(c, w);
    }
    if (!w->ok) return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen, "%s", w->msg);
    if (w->fast && c->fast_on) return fast_decode(c, w, b, len, ev, a, reason, err, errlen);

    size_t body_len = len - TL_CODEC_FRAME_HEADER;
    cursor cur = {.p = b + TL_CODEC_FRAME_HEADER,
                  .start = b + TL_CODEC_FRAME_HEADER,
                  .end = b + len,
                  .items_left = body_len + 1024};
    if (check_value(&cur, w->writer, 0) != 0) return body_malformed(&cur, id, reason, err, errlen);
    if (cur.p != cur.end) return body_trailing(&cur, id, reason, err, errlen);

    avro_reader_memory_set_source(c->areader, (const char *)cur.start, (int64_t)body_len);
    if (avro_value_read(c->areader, &w->rw) != 0)
        return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen,
                           "record (schema id %d) cannot be resolved to the reader schema: %s",
                           (int)id, avro_strerror());

    /* Filled aside: a record refused half-way leaves *ev as it was, as on the fast path. */
    tl_event out = {.partition = ev->partition, .offset = ev->offset};
    const char *raw[S_TYPE] = {0};
    size_t raw_len[S_TYPE] = {0};
    for (int k = 0; k < w->nproj; k++) {
        avro_value_t fv;
        const rfield *f = &c->f[w->proj_field[k]];
        if (avro_value_get_by_index(&w->gen, (size_t)k, &fv, NULL) != 0)
            return tl_dlq_fail(reason, TL_DLQ_INCOMPATIBLE_SCHEMA, err, errlen,
                               "record (schema id %d) lacks field %s after resolution: %s", (int)id,
                               f->name, avro_strerror());
        if (extract(c, w, f, &fv, &out, a, raw, raw_len, reason, err, errlen) != 0)
            return TL_CODEC_BAD;
    }
    for (int k = 0; k < S_TYPE; k++)
        if (raw[k] && tl_string_check_nul(slot_names[k], raw[k], raw_len[k], reason, err, errlen))
            return TL_CODEC_BAD;
    for (int i = 0; i < c->nf; i++)
        if (w->missing[i]) apply_default(&c->f[i], &out, a);
    *ev = out;
    return TL_CODEC_OK;
}

/* ---------------------------------------------------------------- encoding */

/* Avro's long, string, double and float (lib/wire.h). */
static void put_long(tl_buf *out, int64_t v) { tl_wire_put_svarint(out, v); }

static void put_string(tl_buf *out, const char *s)
{
    size_t n = strlen(s);
    put_long(out, (int64_t)n);
    tl_buf_append(out, s, n);
}

int tl_codec_encode_event(tl_codec *c, int32_t schema_id, const tl_event *ev, tl_buf *out)
{
    if ((unsigned)ev->type >= TL_EVENT_TYPE_COUNT || c->type_symbol[ev->type] < 0) return -1;
    if (!ev->event_id || !ev->user_id || !ev->item_id) return -1;
    size_t start = out->len;
    uint8_t hdr[TL_CODEC_FRAME_HEADER] = {0, (uint8_t)((uint32_t)schema_id >> 24),
                                          (uint8_t)((uint32_t)schema_id >> 16),
                                          (uint8_t)((uint32_t)schema_id >> 8), (uint8_t)schema_id};
    tl_buf_append(out, hdr, sizeof(hdr));
    for (int i = 0; i < c->nf; i++) {
        const rfield *f = &c->f[i];
        const char *sv = str_get(ev, f->slot);
        int present;
        switch (f->slot) {
        case S_DWELL: present = ev->has_dwell; break;
        case S_VALUE: present = ev->has_value; break;
        case S_PROPENSITY: present = ev->has_propensity; break;
        case S_OTHER: present = 0; break;
        case S_TYPE:
        case S_TS: present = 1; break;
        default: present = sv != NULL; break;
        }
        if (!present) {
            if (f->null_branch < 0) goto fail;
            put_long(out, f->null_branch);
            continue;
        }
        if (f->is_union) put_long(out, f->value_branch);
        switch (f->slot) {
        case S_TYPE: put_long(out, c->type_symbol[ev->type]); break;
        case S_TS:
            if (f->base == AVRO_INT32 && (ev->ts < INT32_MIN || ev->ts > INT32_MAX)) goto fail;
            put_long(out, ev->ts);
            break;
        case S_DWELL: put_long(out, ev->dwell_ms); break;
        case S_VALUE:
        case S_PROPENSITY: {
            double d = f->slot == S_VALUE ? ev->value : ev->propensity;
            if (f->base == AVRO_FLOAT) tl_wire_put_f32(out, (float)d);
            else tl_wire_put_f64(out, d);
            break;
        }
        default: put_string(out, sv); break;
        }
    }
    return 0;
fail:
    out->len = start;
    if (out->data) out->data[start] = '\0';
    return -1;
}
