/*
 * config.h -- typed configuration: one table per component, one place for names,
 * types, defaults, ranges and docs.
 *
 * Sources, in increasing priority: properties file (-c FILE: key=value lines, '#'
 * comments), TALLY_* environment variables (TALLY_FEATURES_HALF_LIFE_MS for
 * features.half.life.ms), -X key=value. Keys starting with "kafka." are not in a
 * table: they pass to librdkafka ("kafka.consumer." / "kafka.producer." for one side
 * only). An unknown key or a bad value is an error naming the key and where it came
 * from (file:line, env, or -X).
 *
 * Ownership: tl_config owns every string it returns; they live until
 * tl_config_destroy(). Not thread-safe for writes; reads after loading are safe.
 */
#ifndef TL_CONFIG_H
#define TL_CONFIG_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

typedef enum tl_ctype {
    TL_CT_STRING,
    TL_CT_INT,
    TL_CT_DOUBLE,
    TL_CT_BOOL,
    TL_CT_ENUM   /* one of the row's choices; its value is the choice's index */
} tl_ctype;

/* A key, declared by the component that owns it, beside the struct it fills: offset and
 * size say where tl_config_fill() puts its value (TL_CFG_FIELD; size 0: nowhere). The
 * field's C type follows the key's: STRING const char * (the config's copy), INT int or
 * int64_t (by size), DOUBLE double, BOOL int (0 or 1), ENUM int (the choice's index). */
typedef struct tl_config_def {
    const char *key;
    tl_ctype type;
    const char *dflt;         /* as text; NULL = no default (empty) */
    double min, max;          /* for INT and DOUBLE; min > max means unbounded */
    const char *doc;
    size_t offset, size;      /* the field filled (TL_CFG_FIELD); size 0: none */
    const char *const *choices;   /* ENUM: the names, NULL-terminated */
} tl_config_def;

#define TL_NORANGE 1, 0   /* min, max of a row without a range */
/* The last three members of a row: the field it fills; the field and the names of an
 * ENUM's choices; no field; no field, and an ENUM's choices. */
#define TL_CFG_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member), NULL
#define TL_CFG_ENUM(type, member, choices)                                                         \
    offsetof(type, member), sizeof(((type *)0)->member), choices
#define TL_CFG_NOFIELD 0, 0, NULL
#define TL_CFG_CHOICES(choices) 0, 0, choices   /* an ENUM read by key, not filled */

/* A component's keys: a name (a section of `tally config list`) and its rows, ended by
 * a row with key NULL. A program lists its components, ended by one with name NULL
 * (app/config.c). */
typedef struct tl_config_component {
    const char *name;
    const tl_config_def *defs;
} tl_config_component;

typedef struct tl_config tl_config;

/* Loaded with the defaults of every key of components (borrowed: they outlive c). */
tl_config *tl_config_new(const tl_config_component *components);
void tl_config_destroy(tl_config *c);

/* Each returns 0, or -1 with a message "FILE:LINE: key 'x': ..." in err. */
int tl_config_load_file(tl_config *c, const char *path, char *err, size_t errlen);
int tl_config_load_env(tl_config *c, char *err, size_t errlen);
int tl_config_set(tl_config *c, const char *key, const char *value, const char *origin, char *err,
                  size_t errlen);
/* "key=value" form of tl_config_set, for -X. */
int tl_config_set_kv(tl_config *c, const char *kv, const char *origin, char *err, size_t errlen);

/* Sets the fields of out that the rows of defs name (TL_CFG_FIELD) from c: each
 * component fills its own config struct once. 0, or -1 when a row is not one of c's keys
 * or its field's size does not fit its type (a program error, said in err). */
int tl_config_fill(const tl_config *c, const tl_config_def *defs, void *out, char *err,
                   size_t errlen);

const char *tl_config_str(const tl_config *c, const char *key);   /* "" if unset */
int64_t tl_config_int(const tl_config *c, const char *key);
double tl_config_double(const tl_config *c, const char *key);
int tl_config_bool(const tl_config *c, const char *key);

/* Iterates "kafka." keys for one side: side = "consumer" or "producer". fn gets the
 * librdkafka property name (prefix removed). Returns the first non-zero fn result. */
int tl_config_each_kafka(const tl_config *c, const char *side,
                         int (*fn)(void *arg, const char *name, const char *value), void *arg);

/* The value of kafka.NAME (NULL if unset). */
const char *tl_config_kafka(const tl_config *c, const char *name);

/* Whether a key names a secret (never printed or logged). */
int tl_config_is_secret(const char *key);
/* For text of the form "... name = value" (librdkafka's configuration dump) whose name
 * is a secret key: the offset of the value, to be redacted from there on; else -1. */
long tl_config_secret_assignment(const char *text);

/* Prints every key of components: name, type, default, range, doc (markdown when md). */
void tl_config_list(const tl_config_component *components, FILE *out, int md);

#endif
