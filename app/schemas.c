/*
 * schemas.c -- the Avro schemas a deployment uses: where tally's own schema files are,
 * the writer-schema store and the event codec over it, and the registry subject a schema
 * is registered under.
 */
#include "schemas.h"
#include "config.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where tally's own schema files are, when schema.dir does not say: beside the binary in a
 * build tree (<bin>/schemas, copied there by the build), under the installation prefix
 * relative to the binary (<bin>/../share/tally/schemas, so a moved installation still
 * works), or under the prefix it was configured for (TALLY_DATA_DIR). Never the source
 * tree: a build moved elsewhere, or an image, does not have it. */
static int find_schema_dir(char *out, size_t n, char *tried, size_t tn)
{
    char exe[2048];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char cand[3][2200];
    int k = 0;
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[k++], sizeof(cand[0]), "%s/schemas", exe);
        snprintf(cand[k++], sizeof(cand[0]), "%s/../share/tally/schemas", exe);
    }
    snprintf(cand[k++], sizeof(cand[0]), "%s/schemas", TALLY_DATA_DIR);
    tried[0] = 0;
    for (int i = 0; i < k; i++) {
        char probe[2300];
        snprintf(probe, sizeof(probe), "%.2199s/" TL_EVENT_SCHEMA, cand[i]);
        if (access(probe, R_OK) == 0) {
            snprintf(out, n, "%.2199s", cand[i]);
            return 0;
        }
        size_t used = strlen(tried);
        snprintf(tried + used, tn - used, "%s%.2199s", i ? ", " : "", cand[i]);
    }
    return -1;
}

const char *tl_app_installed_schemas(void)
{
    static char dir[2200];
    char tried[4096];
    if (!dir[0] && find_schema_dir(dir, sizeof(dir), tried, sizeof(tried)) != 0) {
        fprintf(stderr,
                "tally: tally's schema files are not installed (looked in %s): set "
                "schema.dir to a directory holding them (schemas/*.avsc)\n",
                tried);
        return NULL;
    }
    return dir;
}

static const char *schema_dir(const tl_app_cfg *ac)
{
    if (*ac->schema_dir) return ac->schema_dir;
    /* With a registry, the registry alone says what an id is: the installed files' ids
     * (1 to 4) are ids a registry gives out too, to other schemas. */
    if (*ac->registry_url) return "";
    return tl_app_installed_schemas();
}

const char *tl_app_schema_dir(const tl_config *c)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    return schema_dir(&ac);
}

static int schema_path(const tl_app_cfg *ac, const char *name, char *out, size_t n)
{
    if (*ac->schema_dir) {
        snprintf(out, n, "%s/%s", ac->schema_dir, name);
        if (access(out, R_OK) == 0) return 0;
    }
    const char *dir = tl_app_installed_schemas();
    if (!dir) return -1;
    snprintf(out, n, "%s/%s", dir, name);
    return 0;
}

int tl_app_schema_path(const tl_config *c, const char *name, char *out, size_t n)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    return schema_path(&ac, name, out, n);
}

char *tl_app_read_schema(const tl_config *c, const char *name)
{
    char path[2400];
    if (tl_app_schema_path(c, name, path, sizeof(path)) != 0) return NULL;
    tl_buf b = {0};
    if (tl_buf_read_file(&b, path, SIZE_MAX, NULL, 0) == -1) return NULL;
    return b.data;
}

tl_codec *tl_app_codec_new(const tl_config *c, tl_schema_store **store)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    char err[512], reader[2400];
    const char *dir = schema_dir(&ac);
    if (!dir) return NULL;
    tl_schema_store_opts so = {
        .dir = dir,
        .registry_url = ac.registry_url,
        .basic_auth = ac.registry_user_info,
        .ca_path = ac.registry_ca,
        .lookup_only = !ac.registry_auto_register,
        .negative_cache_ms = (int)ac.registry_negative_cache_ms,
        .negative_cache_max = (int)ac.registry_negative_cache_max,
        .max_lookups_per_second = (double)ac.registry_lookups_per_s,
    };
    *store = tl_schema_store_new(&so, err, sizeof(err));
    if (!*store) {
        fprintf(stderr, "tally: %s\n", err);
        return NULL;
    }
    if (schema_path(&ac, TL_EVENT_SCHEMA, reader, sizeof(reader)) != 0) return NULL;
    tl_codec *codec = tl_codec_new(*store, reader, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "tally: %s\n", err);
        return NULL;
    }
    tl_codec_set_max_bytes(codec, (size_t)ac.max_record_bytes);
    return codec;
}

static int subject_strategy(const char *strategy, char *err, size_t errlen)
{
    static const char *const names[] = {"topic", "record", "topic_record"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(strategy, names[i])) return i;
    snprintf(err, errlen,
             "schema.registry.subject.name.strategy: expected topic, record or "
             "topic_record, got '%s'",
             strategy);
    return -1;
}

int tl_app_subject_strategy(const tl_config *c, char *err, size_t errlen)
{
    return subject_strategy(tl_app_cfg_of(c).subject_strategy, err, errlen);
}

int tl_app_subject(const tl_config *c, const char *topic, const char *schema_json, char *out,
                   size_t n, char *err, size_t errlen)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    int strategy = subject_strategy(ac.subject_strategy, err, errlen);
    if (strategy < 0) return -1;
    if (strategy == TL_SUBJECT_TOPIC) {
        snprintf(out, n, "%s-value", topic);
        return 0;
    }
    char full[256];
    if (tl_schema_full_name(schema_json, full, sizeof(full)) != 0) {
        snprintf(err, errlen, "a schema without a record name cannot be registered under %s",
                 ac.subject_strategy);
        return -1;
    }
    if (strategy == TL_SUBJECT_RECORD) snprintf(out, n, "%s", full);
    else snprintf(out, n, "%s-%s", topic, full);
    return 0;
}
