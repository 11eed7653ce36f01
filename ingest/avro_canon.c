/*
 * avro_canon.c -- an Avro schema's Parsing Canonical Form (avro_canon.h).
 */
#include "avro_canon.h"
#include "lib/util.h"

#include <stdio.h>

/* Appends str JSON-escaped, without quotes (Avro names and symbols never need
 * escaping; this only keeps an odd schema from producing an ambiguous form). */
static void canon_chars(tl_buf *o, const char *str)
{
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\') tl_buf_printf(o, "\\%c", *p);
        else if (*p < 0x20) tl_buf_printf(o, "\\u%04x", *p);
        else tl_buf_putc(o, (char)*p);
    }
}

static void canon_string(tl_buf *o, const char *str)
{
    tl_buf_putc(o, '"');
    canon_chars(o, str);
    tl_buf_putc(o, '"');
}

/* "namespace.name", or "name" when the type has no namespace. */
static void canon_fullname(tl_buf *o, avro_schema_t s)
{
    const char *ns = avro_schema_namespace(s);
    tl_buf_putc(o, '"');
    if (ns && *ns) {
        canon_chars(o, ns);
        tl_buf_putc(o, '.');
    }
    canon_chars(o, avro_schema_name(s));
    tl_buf_putc(o, '"');
}

/* Appends the Parsing Canonical Form of s (Avro specification, "Transforming into
 * Parsing Canonical Form"): full names, only the attributes that matter to the binary
 * encoding (name, type, fields, symbols, items, values, size, in that order), no doc,
 * aliases, defaults or logical types, no white space. A named type that appears again
 * (an avro-c link) is written as its full name. -1 for a type avro-c 1.11 cannot
 * hold in a schema (never for a parsed one). */
static int canon(tl_buf *o, avro_schema_t s);

/* A record's canonical form with only its first nf fields. */
static int canon_record(tl_buf *o, avro_schema_t s, size_t nf)
{
    tl_buf_puts(o, "{\"name\":");
    canon_fullname(o, s);
    tl_buf_puts(o, ",\"type\":\"record\",\"fields\":[");
    for (size_t i = 0; i < nf; i++) {
        tl_buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
        canon_string(o, avro_schema_record_field_name(s, (int)i));
        tl_buf_puts(o, ",\"type\":");
        if (canon(o, avro_schema_record_field_get_by_index(s, (int)i))) return -1;
        tl_buf_putc(o, '}');
    }
    tl_buf_puts(o, "]}");
    return 0;
}

static int canon(tl_buf *o, avro_schema_t s)
{
    switch (avro_typeof(s)) {
    case AVRO_STRING: tl_buf_puts(o, "\"string\""); return 0;
    case AVRO_BYTES: tl_buf_puts(o, "\"bytes\""); return 0;
    case AVRO_INT32: tl_buf_puts(o, "\"int\""); return 0;
    case AVRO_INT64: tl_buf_puts(o, "\"long\""); return 0;
    case AVRO_FLOAT: tl_buf_puts(o, "\"float\""); return 0;
    case AVRO_DOUBLE: tl_buf_puts(o, "\"double\""); return 0;
    case AVRO_BOOLEAN: tl_buf_puts(o, "\"boolean\""); return 0;
    case AVRO_NULL: tl_buf_puts(o, "\"null\""); return 0;
    case AVRO_LINK: canon_fullname(o, avro_schema_link_target(s)); return 0;
    case AVRO_RECORD: return canon_record(o, s, avro_schema_record_size(s));
    case AVRO_ENUM: {
        tl_buf_puts(o, "{\"name\":");
        canon_fullname(o, s);
        tl_buf_puts(o, ",\"type\":\"enum\",\"symbols\":[");
        int n = avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < n; i++) {
            if (i) tl_buf_putc(o, ',');
            canon_string(o, avro_schema_enum_get(s, i));
        }
        tl_buf_puts(o, "]}");
        return 0;
    }
    case AVRO_FIXED:
        tl_buf_puts(o, "{\"name\":");
        canon_fullname(o, s);
        tl_buf_printf(o, ",\"type\":\"fixed\",\"size\":%lld}",
                      (long long)avro_schema_fixed_size(s));
        return 0;
    case AVRO_ARRAY:
        tl_buf_puts(o, "{\"type\":\"array\",\"items\":");
        if (canon(o, avro_schema_array_items(s))) return -1;
        tl_buf_putc(o, '}');
        return 0;
    case AVRO_MAP:
        tl_buf_puts(o, "{\"type\":\"map\",\"values\":");
        if (canon(o, avro_schema_map_values(s))) return -1;
        tl_buf_putc(o, '}');
        return 0;
    case AVRO_UNION: {
        tl_buf_putc(o, '[');
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++) {
            if (i) tl_buf_putc(o, ',');
            if (canon(o, avro_schema_union_branch(s, (int)i))) return -1;
        }
        tl_buf_putc(o, ']');
        return 0;
    }
    default: return -1;
    }
}

char *tl_avro_canonical_form(avro_schema_t s, int nf)
{
    tl_buf o = {0};
    if ((nf < 0 ? canon(&o, s) : canon_record(&o, s, (size_t)nf)) != 0) {
        tl_buf_free(&o);
        return NULL;
    }
    return o.data;
}
