/*
 * config.h -- every configuration key of the tally program, by component (config.c).
 */
#ifndef TL_APP_CONFIG_H
#define TL_APP_CONFIG_H

#include <stdint.h>

#include "lib/config.h"
#include "engine/runtime.h"

/* Ended by a component with name NULL; for tl_config_new and tl_config_list. */
extern const tl_config_component tl_app_config[];

enum {
    TL_KEY_MISMATCH_DLQ = 0,   /* ingest.key.mismatch=dlq */
    TL_KEY_MISMATCH_PROCESS
};

/* The application's own settings (the keys of the runtime, ingest, rollup and sink
 * sections), filled once from a configuration by tl_app_cfg_load. Strings are the
 * configuration's: valid until it is destroyed or the key is set again; an empty string
 * is an unset key. */
typedef struct tl_app_cfg {
    /* runtime */
    const char *log_level, *log_format, *log_file;
    int guarantee;                        /* tl_delivery (processing.guarantee) */
    const char *instance_id, *changelog_topic, *state_dir;
    int64_t cache_mb, memtable_mb, block_cache_mb;
    int64_t state_flush_ms, batch_max_events, commit_interval_ms, shutdown_timeout_ms;
    const char *http_listen;
    int64_t health_stall_ms, health_max_failures;
    /* ingest */
    const char *input_topics, *schema_dir;
    const char *registry_url, *registry_user_info, *registry_ca, *subject_strategy;
    int registry_auto_register;
    int64_t registry_negative_cache_ms, registry_negative_cache_max, registry_lookups_per_s;
    int64_t ts_min, ts_max, max_record_bytes, max_string_bytes;
    int key_mismatch;                     /* TL_KEY_MISMATCH_* */
    const char *dlq_topic;
    double dlq_max_share;
    int64_t dlq_max_record_bytes;
    /* rollup */
    const char *rollup_topic, *partials_topic, *spend_topic, *channel_groups;
    int64_t rollup_commit_interval_ms;
    /* sink */
    const char *interest_topic, *attribution_topic, *credit_topic, *intent_topic;
    const char *categories_topic;
    int64_t sink_flush_timeout_ms;
} tl_app_cfg;

/* The runtime's options (engine/runtime.h) from ac: state.* and the batch bounds. The
 * delivery mode stays at_least_once, and the hooks (restore, tick) unset: the caller sets
 * them for its sink (`tally run`: ac->guarantee). */
void tl_app_runtime_opts(const tl_app_cfg *ac, tl_runtime_opts *o);

/* Fills ac from c. 0, or -1 with err (a program error: c lacks the application's keys). */
int tl_app_cfg_load(tl_app_cfg *ac, const tl_config *c, char *err, size_t errlen);

/* The application's settings in c (app/config.h). c must come from tl_config_new with
 * tl_app_config, as every command's does; anything else is a program error, which
 * exits with status 70. */
tl_app_cfg tl_app_cfg_of(const tl_config *c);

#endif
