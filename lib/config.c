/*
 * config.c -- loading and reading typed configuration (see config.h).
 *
 * Storage: one slot per table key (value text, parsed number, origin), in table order,
 * plus a list of "kafka.*" pass-through pairs. Values are validated when set, so
 * getters cannot fail; a getter called with a key that is in no table is a
 * programming error and aborts. Lookups are linear: configuration is read at start
 * up, never on the hot path.
 */
#include "config.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <strings.h>

typedef struct cfg_slot {
    const tl_config_def *def;
    char *value;
    double num;        /* parsed INT / DOUBLE / BOOL */
    char origin[128];
} cfg_slot;

typedef struct cfg_kv {
    char *key, *value;
} cfg_kv;

struct tl_config {
    const tl_config_component *components;
    cfg_slot *slots;
    int n_slots;
    cfg_kv *kafka;
    int n_kafka, cap_kafka;
};

static cfg_slot *cfg_find(const tl_config *c, const char *key)
{
    for (int i = 0; i < c->n_slots; i++)
        if (strcmp(c->slots[i].def->key, key) == 0) return &c->slots[i];
    return NULL;
}

/* A range's bound, as short as reads back exactly (2^53 needs 16 digits, 0.1 only 1). */
static const char *cfg_num(char *out, size_t outlen, double x)
{
    snprintf(out, outlen, "%.15g", x);
    if (strtod(out, NULL) != x) snprintf(out, outlen, "%.17g", x);
    return out;
}

static int cfg_parse(const tl_config_def *d, const char *v, double *num, char *why, size_t whylen)
{
    char *end;
    switch (d->type) {
    case TL_CT_STRING: *num = 0; return 0;
    case TL_CT_ENUM: {
        int n = 0;
        for (; d->choices[n]; n++)
            if (!strcmp(v, d->choices[n])) {
                *num = n;
                return 0;
            }
        size_t w = (size_t)snprintf(why, whylen, "expected ");
        for (int i = 0; i < n && w < whylen; i++)
            w += (size_t)snprintf(why + w, whylen - w, "%s%s", d->choices[i],
                                  i == n - 1       ? ""
                                      : i == n - 2 ? " or "
                                                   : ", ");
        if (w < whylen) snprintf(why + w, whylen - w, ", got '%s'", v);
        return -1;
    }
    case TL_CT_BOOL:
        if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) *num = 1;
        else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) *num = 0;
        else {
            snprintf(why, whylen, "expected true or false, got '%s'", v);
            return -1;
        }
        return 0;
    case TL_CT_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            snprintf(why, whylen, "expected an integer, got '%s'", v);
            return -1;
        }
        *num = (double)x;
        break;
    }
    case TL_CT_DOUBLE:
        errno = 0;
        *num = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(*num)) {
            snprintf(why, whylen, "expected a number, got '%s'", v);
            return -1;
        }
        break;
    }
    if (d->min <= d->max && (*num < d->min || *num > d->max)) {
        char lo[32], hi[32];
        snprintf(why, whylen, "%s is out of range [%s, %s]", v, cfg_num(lo, sizeof lo, d->min),
                 cfg_num(hi, sizeof hi, d->max));
        return -1;
    }
    return 0;
}

static void cfg_store(cfg_slot *s, const char *value, double num, const char *origin)
{
    free(s->value);
    s->value = tl_xstrdup(value);
    s->num = num;
    snprintf(s->origin, sizeof(s->origin), "%s", origin);
}

tl_config *tl_config_new(const tl_config_component *components)
{
    tl_config *c = tl_xcalloc(1, sizeof(*c));
    c->components = components;
    int n = 0;
    for (const tl_config_component *comp = components; comp->name; comp++)
        for (const tl_config_def *d = comp->defs; d->key; d++) n++;
    c->slots = tl_xcalloc((size_t)n, sizeof(*c->slots));
    for (const tl_config_component *comp = components; comp->name; comp++) {
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            cfg_slot *s = &c->slots[c->n_slots++];
            char why[160];
            double num = 0;
            s->def = d;
            if (cfg_parse(d, d->dflt ? d->dflt : "", &num, why, sizeof(why)) != 0 &&
                d->type != TL_CT_STRING) {
                fprintf(stderr, "tally: bad default for %s: %s\n", d->key, why);
                abort();
            }
            cfg_store(s, d->dflt ? d->dflt : "", num, "default");
        }
    }
    return c;
}

void tl_config_destroy(tl_config *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_slots; i++) free(c->slots[i].value);
    for (int i = 0; i < c->n_kafka; i++) {
        free(c->kafka[i].key);
        free(c->kafka[i].value);
    }
    free(c->slots);
    free(c->kafka);
    free(c);
}

int tl_config_set(tl_config *c, const char *key, const char *value, const char *origin, char *err,
                  size_t errlen)
{
    if (tl_config_is_secret(key)) tl_log_redact_value(value);
    if (strncmp(key, "kafka.", 6) == 0) {
        if (!key[6]) {
            snprintf(err, errlen, "%s: key 'kafka.' names no librdkafka property", origin);
            return -1;
        }
        for (int i = 0; i < c->n_kafka; i++) {
            if (strcmp(c->kafka[i].key, key) == 0) {
                free(c->kafka[i].value);
                c->kafka[i].value = tl_xstrdup(value);
                return 0;
            }
        }
        TL_GROW(c->kafka, c->n_kafka, c->cap_kafka, 16);
        c->kafka[c->n_kafka].key = tl_xstrdup(key);
        c->kafka[c->n_kafka].value = tl_xstrdup(value);
        c->n_kafka++;
        return 0;
    }
    cfg_slot *s = cfg_find(c, key);
    if (!s) {
        snprintf(err, errlen, "%s: unknown key '%s' (see `tally config list`)", origin, key);
        return -1;
    }
    char why[200];
    double num;
    if (cfg_parse(s->def, value, &num, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: key '%s': %s", origin, key,
                 tl_config_is_secret(key) ? "invalid value (not shown: secret)" : why);
        return -1;
    }
    cfg_store(s, value, num, origin);
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int tl_config_set_kv(tl_config *c, const char *kv, const char *origin, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {   /* the text is not echoed: it may hold a secret */
        snprintf(err, errlen, "%s: expected key=value, found no '='", origin);
        return -1;
    }
    char *key = tl_xstrdup(kv);
    key[eq - kv] = '\0';
    char *k = trim(key);
    char *v = trim(key + (eq - kv) + 1);
    int rc = tl_config_set(c, k, v, origin, err, errlen);
    free(key);
    return rc;
}

int tl_config_load_file(tl_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        char origin[160];
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        if (tl_config_set_kv(c, s, origin, err, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* TALLY_FEATURES_HALF_LIFE_MS <-> features.half.life.ms; TALLY_KAFKA_X_Y -> kafka.x.y */
static void env_name(const char *key, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "TALLY_");
    for (const char *p = key; *p && n + 1 < outlen; p++)
        out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

extern char **environ;

int tl_config_load_env(tl_config *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->n_slots; i++) {
        char name[160];
        env_name(c->slots[i].def->key, name, sizeof(name));
        const char *v = getenv(name);
        if (v && tl_config_set(c, c->slots[i].def->key, v, name, err, errlen) != 0) return -1;
    }
    /* A TALLY_ variable under a configuration section (TALLY_STATE_..., TALLY_MODEL_...)
     * that names no key is a typo, refused as an unknown -X key is; other TALLY_ names
     * (TALLY_BIN, ...) are not tally's to judge. */
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "TALLY_", 6) != 0 || !strncmp(*e, "TALLY_KAFKA_", 12) || !eq) continue;
        size_t len = (size_t)(eq - *e);
        const char *sec = *e + 6, *sec_end = memchr(sec, '_', len - 6);
        if (!sec_end) sec_end = eq;
        int known = 0, section = 0;
        for (int i = 0; i < c->n_slots && !known; i++) {
            char name[160];
            env_name(c->slots[i].def->key, name, sizeof(name));
            known = strlen(name) == len && !strncmp(name, *e, len);
            const char *k = c->slots[i].def->key, *dot = strchr(k, '.');
            size_t kl = dot ? (size_t)(dot - k) : strlen(k);
            if (kl == (size_t)(sec_end - sec) && !strncasecmp(k, sec, kl)) section = 1;
        }
        if (!known && section) {
            snprintf(err, errlen,
                     "environment: %.*s: no such configuration key (tally config list)", (int)len,
                     *e);
            return -1;
        }
    }
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "TALLY_KAFKA_", 12) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char key[256];
        size_t n = (size_t)snprintf(key, sizeof(key), "kafka.");
        for (const char *p = *e + 12; p < eq && n + 1 < sizeof(key); p++)
            key[n++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        key[n] = '\0';
        if (tl_config_set(c, key, eq + 1, "environment", err, errlen) != 0) return -1;
    }
    return 0;
}

static const cfg_slot *cfg_must(const tl_config *c, const char *key)
{
    const cfg_slot *s = cfg_find(c, key);
    if (!s) {
        fprintf(stderr, "tally: internal error: configuration key '%s' is in no table\n", key);
        abort();
    }
    return s;
}

const char *tl_config_str(const tl_config *c, const char *key) { return cfg_must(c, key)->value; }
int64_t tl_config_int(const tl_config *c, const char *key)
{
    return (int64_t)cfg_must(c, key)->num;
}
double tl_config_double(const tl_config *c, const char *key) { return cfg_must(c, key)->num; }
int tl_config_bool(const tl_config *c, const char *key) { return cfg_must(c, key)->num != 0; }

int tl_config_each_kafka(const tl_config *c, const char *side,
                         int (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    /* Shared keys first, then side-specific ones, so the latter win. */
    static const char *const sides[] = {"consumer.", "producer."};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < c->n_kafka; i++) {
            const char *name = c->kafka[i].key + 6;
            int is_side = 0;
            for (int k = 0; k < 2; k++)
                if (strncmp(name, sides[k], strlen(sides[k])) == 0) is_side = k + 1;
            if (pass == 0 && is_side) continue;
            if (pass == 1) {
                if (!is_side || strncmp(sides[is_side - 1], side, strlen(side)) != 0) continue;
                name += strlen(sides[is_side - 1]);
            }
            int rc = fn(arg, name, c->kafka[i].value);
            if (rc) return rc;
        }
    }
    return 0;
}

const char *tl_config_kafka(const tl_config *c, const char *name)
{
    for (int i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key + 6, name) == 0) return c->kafka[i].value;
    return NULL;
}

int tl_config_is_secret(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "sasl.") != NULL ||
        strstr(key, "ssl.key.") != NULL || strstr(key, "basic.auth") != NULL ||
        strstr(key, "secret") != NULL;
}

long tl_config_secret_assignment(const char *text)
{
    const char *eq = strchr(text, '=');
    if (!eq) return -1;
    const char *end = eq, *start;
    while (end > text && end[-1] == ' ') end--;
    for (start = end; start > text && start[-1] != ' ' && start[-1] != ':'; start--) {}
    if (start == end) return -1;
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(end - start), start);
    if (!tl_config_is_secret(name)) return -1;
    while (eq[1] == ' ') eq++;
    return eq + 1 - text;
}

int tl_config_fill(const tl_config *c, const tl_config_def *defs, void *out, char *err,
                   size_t errlen)
{
    for (const tl_config_def *d = defs; d->key; d++) {
        if (!d->size) continue;
        const cfg_slot *s = cfg_find(c, d->key);
        if (!s) {
            snprintf(err, errlen, "config: %s is not among the program's keys", d->key);
            return -1;
        }
        char *f = (char *)out + d->offset;
        int ok = 1;
        switch (d->type) {
        case TL_CT_STRING:
            if ((ok = d->size == sizeof(const char *))) {
                const char *v = s->value;
                memcpy(f, &v, sizeof(v));
            }
            break;
        case TL_CT_DOUBLE:
            if ((ok = d->size == sizeof(double))) memcpy(f, &s->num, sizeof(double));
            break;
        case TL_CT_INT:
        case TL_CT_BOOL:
        case TL_CT_ENUM:
            if (d->size == sizeof(int64_t)) {
                int64_t v = (int64_t)s->num;
                memcpy(f, &v, sizeof(v));
            } else if ((ok = d->size == sizeof(int) && s->num >= INT_MIN && s->num <= INT_MAX)) {
                int v = (int)s->num;
                memcpy(f, &v, sizeof(v));
            }
            break;
        }
        if (!ok) {
            snprintf(err, errlen, "config: %s does not fit its field (%zu bytes)", d->key, d->size);
            return -1;
        }
    }
    return 0;
}

static const char *const type_names[] = {"string", "int", "double", "bool", "one of"};

/* An ENUM's choices, as "a, b, c". */
static void choices_text(const tl_config_def *d, char *out, size_t outlen)
{
    size_t w = 0;
    out[0] = '\0';
    for (int i = 0; d->choices[i] && w < outlen; i++)
        w += (size_t)snprintf(out + w, outlen - w, "%s%s", i ? ", " : "", d->choices[i]);
}

void tl_config_list(const tl_config_component *components, FILE *out, int md)
{
    for (const tl_config_component *comp = components; comp->name; comp++) {
        if (md)
            fprintf(out,
                    "\n## %s\n\n| key | type | default | range | description |\n"
                    "|---|---|---|---|---|\n",
                    comp->name);
        else fprintf(out, "# %s\n", comp->name);
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            char range[256] = "";
            if (d->type == TL_CT_ENUM) choices_text(d, range, sizeof(range));
            else if (d->min <= d->max) {
                char lo[32], hi[32];
                snprintf(range, sizeof(range), "%s..%s", cfg_num(lo, sizeof lo, d->min),
                         cfg_num(hi, sizeof hi, d->max));
            }
            if (md && d->dflt && *d->dflt)
                fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", d->key, type_names[d->type],
                        d->dflt, range, d->doc);
            else if (md)
                fprintf(out, "| `%s` | %s | (empty) | %s | %s |\n", d->key, type_names[d->type],
                        range, d->doc);
            else if (d->type == TL_CT_ENUM)
                fprintf(out, "%s (one of %s; default \"%s\")\n    %s\n", d->key, range,
                        d->dflt ? d->dflt : "", d->doc);
            else
                fprintf(out, "%s (%s, default \"%s\"%s%s)\n    %s\n", d->key, type_names[d->type],
                        d->dflt ? d->dflt : "", *range ? ", range " : "", range, d->doc);
        }
    }
}
