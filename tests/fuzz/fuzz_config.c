/*
 * fuzz_config.c -- properties files (lib/config.h, tl_config_load_file; `-c FILE` and
 * `tally config check`), and what the stages make of the values (tl_features_cfg_load,
 * tl_attr_cfg_load, tl_model_cfg_load, tl_app_cfg_load, tl_app_runtime_opts).
 *
 * Input: the file.
 *
 * Asserted:
 *   - a refused file has a message naming the file and a line ("FILE:LINE: ...");
 *   - a loaded file can be written back as a properties file (every table key and every
 *     kafka.* key with its value as loaded) that loads again to the same configuration:
 *     the same text and number for every table key, the same librdkafka properties for
 *     both sides;
 *   - the stages' loaders return 0, or -1 with a message.
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "app/config.h"
#include "engine/runtime.h"
#include "lib/util.h"
#include "features/interest.h"
#include "model/attribution.h"
#include "model/model.h"
#include "model/pipeline.h"

static char path[1024], back_path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    snprintf(path, sizeof(path), "%s/tally.properties", fuzz_tmpdir());
    snprintf(back_path, sizeof(back_path), "%s/written-back.properties", fuzz_tmpdir());
    return 0;
}

/* One side's librdkafka properties as the producer or consumer would get them: each
 * name once, with the last value given for it (tl_config_each_kafka lists shared keys,
 * then side-specific ones, which win), sorted by name. */
typedef struct kv_list {
    char **items;
    int n, cap;
} kv_list;

static int collect(void *arg, const char *name, const char *value)
{
    kv_list *l = arg;
    for (int i = 0; i < l->n; i++) {
        size_t nl = strlen(name);
        if (!strncmp(l->items[i], name, nl) && l->items[i][nl] == '=') {
            free(l->items[i]);
            memmove(&l->items[i], &l->items[i + 1], (size_t)(l->n - i - 1) * sizeof(char *));
            l->n--;
            break;
        }
    }
    TL_GROW(l->items, l->n, l->cap, 16);
    tl_buf b = {0};
    tl_buf_printf(&b, "%s=%s", name, value);
    l->items[l->n++] = b.data;
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void kafka_of(const tl_config *c, const char *side, kv_list *l)
{
    memset(l, 0, sizeof(*l));
    tl_config_each_kafka(c, side, collect, l);
    if (l->n) qsort(l->items, (size_t)l->n, sizeof(char *), by_text);
}

static void kv_free(kv_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
}

static int same_number(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write_file(path, data, size);
    char err[512] = "";
    tl_config *c = tl_config_new(tl_app_config);
    if (tl_config_load_file(c, path, err, sizeof(err)) != 0) {
        size_t n = strlen(path);
        FUZZ_CHECK(!strncmp(err, path, n) && err[n] == ':' && err[n + 1] >= '1' &&
                       err[n + 1] <= '9',
                   "the message does not name FILE:LINE: %s", err);
        tl_config_destroy(c);
        return 0;
    }

    /* Written back and loaded again: every table key, and each side's effective
     * librdkafka properties under that side's prefix. */
    static const char *const sides[2] = {"consumer", "producer"};
    kv_list k1[2], k2[2];
    tl_buf back = {0};
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++)
        for (const tl_config_def *d = comp->defs; d->key; d++)
            tl_buf_printf(&back, "%s=%s\n", d->key, tl_config_str(c, d->key));
    for (int k = 0; k < 2; k++) {
        kafka_of(c, sides[k], &k1[k]);
        for (int i = 0; i < k1[k].n; i++)
            tl_buf_printf(&back, "kafka.%s.%s\n", sides[k], k1[k].items[i]);
    }
    fuzz_write_file(back_path, back.data, back.len);
    tl_config *c2 = tl_config_new(tl_app_config);
    int rc2 = tl_config_load_file(c2, back_path, err, sizeof(err));
    FUZZ_CHECK(rc2 == 0, "the configuration written back does not load: %s", err);
    for (const tl_config_component *comp = tl_app_config; comp->name; comp++) {
        for (const tl_config_def *d = comp->defs; d->key; d++) {
            FUZZ_CHECK(!strcmp(tl_config_str(c, d->key), tl_config_str(c2, d->key)),
                       "%s: '%s' written back is '%s'", d->key, tl_config_str(c, d->key),
                       tl_config_str(c2, d->key));
            if (d->type == TL_CT_STRING) continue;
            FUZZ_CHECK(same_number(tl_config_double(c, d->key), tl_config_double(c2, d->key)),
                       "%s: %.17g written back is %.17g", d->key, tl_config_double(c, d->key),
                       tl_config_double(c2, d->key));
        }
    }
    for (int k = 0; k < 2; k++) {
        kafka_of(c2, sides[k], &k2[k]);
        FUZZ_CHECK(k1[k].n == k2[k].n, "%s: %d librdkafka properties, %d written back", sides[k],
                   k1[k].n, k2[k].n);
        for (int i = 0; i < k1[k].n; i++)
            FUZZ_CHECK(!strcmp(k1[k].items[i], k2[k].items[i]), "%s: '%s' written back is '%s'",
                       sides[k], k1[k].items[i], k2[k].items[i]);
        kv_free(&k1[k]);
        kv_free(&k2[k]);
    }
    tl_config_destroy(c2);
    tl_buf_free(&back);

    /* The stages' view of it. */
    tl_features_cfg fc;
    tl_attr_cfg ac;
    tl_model_cfg mc;
    err[0] = '\0';
    if (tl_features_cfg_load(&fc, c, err, sizeof(err)) != 0)
        FUZZ_CHECK(err[0], "tl_features_cfg_load failed without a message");
    err[0] = '\0';
    if (tl_attr_cfg_load(&ac, c, err, sizeof(err)) != 0)
        FUZZ_CHECK(err[0], "tl_attr_cfg_load failed without a message");
    err[0] = '\0';
    if (tl_model_cfg_load(&mc, c, err, sizeof(err)) != 0)
        FUZZ_CHECK(err[0], "tl_model_cfg_load failed without a message");
    tl_app_cfg app;
    FUZZ_CHECK(tl_app_cfg_load(&app, c, err, sizeof(err)) == 0, "tl_app_cfg_load failed: %s", err);
    tl_runtime_opts ro;
    tl_app_runtime_opts(&app, &ro);
    tl_config_destroy(c);
    return 0;
}
