/*
 * json.h -- a small JSON parser (into an arena) and writer helpers (onto a tl_buf).
 *
 * Parsing: tl_json_parse() builds a read-only tree whose nodes and strings all live in
 * the caller's tl_arena; nothing needs freeing except the arena itself. The parser is
 * strict RFC 8259: one value, optional surrounding whitespace, no comments, no trailing
 * commas, strings must be valid UTF-8 with no raw control characters. Escapes, \uXXXX
 * and surrogate pairs included, are decoded to UTF-8. Nesting is limited to
 * TL_JSON_MAX_DEPTH levels so hostile input cannot exhaust the stack.
 *
 * Numbers are kept as a double (num); when the literal is integral and exactly
 * representable as an int64 (e.g. 42, -7, 1e3, 9007199254740993) is_int is set and i
 * holds the exact value.
 *
 * Accessors take and return const pointers and accept NULL (returning NULL / 0), so
 * lookups chain without checks: tl_json_str(tl_json_get(obj, "name")).
 *
 * Writing: the tl_json_put_* helpers append JSON text to a tl_buf (lib/util.h); they
 * are on the replay output path and avoid printf where they can.
 *
 * Thread safety: none needed -- no global state.
 */
#ifndef TL_JSON_H
#define TL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "util.h"

#define TL_JSON_MAX_DEPTH 256

typedef enum tl_json_type {
    TL_JSON_NULL = 0,
    TL_JSON_BOOL,
    TL_JSON_NUMBER,
    TL_JSON_STRING,
    TL_JSON_ARRAY,
    TL_JSON_OBJECT
} tl_json_type;

typedef struct tl_json tl_json;
struct tl_json {
    tl_json_type type;
    int boolean;            /* BOOL: 0 or 1 */
    int is_int;             /* NUMBER: integral and exactly representable as i */
    double num;             /* NUMBER */
    int64_t i;              /* NUMBER, valid when is_int */
    const char *str;        /* STRING: NUL-terminated UTF-8 (may hold \0: use len) */
    size_t len;             /* STRING: bytes of str; ARRAY/OBJECT: element count */
    const tl_json **items;  /* ARRAY/OBJECT: elements in document order */
    const char *key;        /* set on each member of an OBJECT: its key */
    size_t key_len;
};

/* Parses s[0..len) into a tree in a. NULL on error, with one sentence in err giving
 * the byte offset ("JSON: unexpected character 'x' at offset 12"). */
tl_json *tl_json_parse(const char *s, size_t len, tl_arena *a, char *err, size_t errlen);

/* The member named key of an object (the last one if the key repeats), or NULL. */
const tl_json *tl_json_get(const tl_json *obj, const char *key);
/* Elements of an array or members of an object; 0 for anything else or NULL. */
size_t tl_json_len(const tl_json *j);
/* Element i of an array (or member i of an object); NULL when out of range. */
const tl_json *tl_json_at(const tl_json *arr, size_t i);
/* The string of a STRING node, or NULL for any other node or NULL. */
const char *tl_json_str(const tl_json *j);
/* 1 when j is NULL (absent) or a JSON null. */
int tl_json_is_null(const tl_json *j);
const char *tl_json_type_name(tl_json_type t);   /* "null", "bool", ... "object" */

/* Writer helpers. tl_json_put_str writes s quoted and escaped; NULL writes null. The
 * output is valid UTF-8 JSON whatever s holds: control characters are escaped, and each
 * ill-formed UTF-8 sequence (its maximal subpart: an overlong form, a surrogate, a
 * truncated sequence, a stray byte) is written as U+FFFD. */
void tl_json_put_str(tl_buf *b, const char *s);
void tl_json_put_strn(tl_buf *b, const char *s, size_t n);
/* The shortest of %.15g/%.16g/%.17g that reads back exactly; NaN and +-Inf -> null. */
void tl_json_put_double(tl_buf *b, double d);
void tl_json_put_i64(tl_buf *b, int64_t v);
/* An object member after the first: ,"k": then the value. */
void tl_json_put_key(tl_buf *b, const char *k);
void tl_json_member_str(tl_buf *b, const char *k, const char *v);
void tl_json_member_strn(tl_buf *b, const char *k, const char *v, size_t n);
void tl_json_member_double(tl_buf *b, const char *k, double v);
void tl_json_member_i64(tl_buf *b, const char *k, int64_t v);
/* Length of the valid UTF-8 sequence starting at s[0] (at most n bytes; no overlong
 * forms, surrogates or code points above U+10FFFF), or 0. */
size_t tl_utf8_seq(const unsigned char *s, size_t n);
/* Writes a parsed tree back as compact JSON (integers exactly, other numbers with
 * tl_json_put_double). */
void tl_json_write(tl_buf *b, const tl_json *j);

#endif
