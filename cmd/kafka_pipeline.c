/*
 * kafka_pipeline.c -- set-up and ordered tear-down of the Kafka pipeline.
 *
 * Shutdown order: the runtime returns after its last batch is committed (offsets
 * stored); the consumer then commits and leaves the group (its revocation closes the
 * stores, all clean); the producer is flushed; then everything is freed.
 */
#include "kafka_pipeline.h"
#include "bounds.h"
#include "observe.h"
#include "cmd.h"
#include "core/log.h"
#include "core/util.h"
#include "ingest/changelog.h"
#include "ingest/codec.h"
#include "ingest/kafka_source.h"
#include "ingest/schema_store.h"
#include "ingest/model_feed.h"
#include "sink/rollup_agg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

const char *tl_cmd_installed_schemas(void)
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

const char *tl_cmd_schema_dir(const tl_config *c)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    if (*ac.schema_dir) return ac.schema_dir;
    /* With a registry, the registry alone says what an id is: the installed files' ids
     * (1 to 4) are ids a registry gives out too, to other schemas. */
    if (*ac.registry_url) return "";
    return tl_cmd_installed_schemas();
}

int tl_cmd_schema_path(const tl_config *c, const char *name, char *out, size_t n)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    if (*ac.schema_dir) {
        snprintf(out, n, "%s/%s", ac.schema_dir, name);
        if (access(out, R_OK) == 0) return 0;
    }
    const char *dir = tl_cmd_installed_schemas();
    if (!dir) return -1;
    snprintf(out, n, "%s/%s", dir, name);
    return 0;
}

char *tl_cmd_read_schema(const tl_config *c, const char *name)
{
    char path[2400];
    if (tl_cmd_schema_path(c, name, path, sizeof(path)) != 0) return NULL;
    tl_buf b = {0};
    if (tl_buf_read_file(&b, path, SIZE_MAX, NULL, 0) == -1) return NULL;
    return b.data;
}

tl_codec *tl_cmd_codec_new(const tl_config *c, tl_schema_store **store)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    char err[512], reader[2400];
    const char *dir = tl_cmd_schema_dir(c);
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
    if (tl_cmd_schema_path(c, TL_EVENT_SCHEMA, reader, sizeof(reader)) != 0) return NULL;
    tl_codec *codec = tl_codec_new(*store, reader, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "tally: %s\n", err);
        return NULL;
    }
    tl_codec_set_max_bytes(codec, (size_t)ac.max_record_bytes);
    return codec;
}

int tl_cmd_subject_strategy(const tl_config *c, char *err, size_t errlen)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    static const char *const names[] = {"topic", "record", "topic_record"};
    const char *strategy = ac.subject_strategy;
    for (int i = 0; i < 3; i++)
        if (!strcmp(strategy, names[i])) return i;
    snprintf(err, errlen,
             "schema.registry.subject.name.strategy: expected topic, record or "
             "topic_record, got '%s'",
             strategy);
    return -1;
}

int tl_cmd_subject(const tl_config *c, const char *topic, const char *schema_json, char *out,
                   size_t n, char *err, size_t errlen)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    int strategy = tl_cmd_subject_strategy(c, err, errlen);
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

/* The Confluent id of one of tally's output schemas, registered under its subject. */
static int output_schema_id(const tl_config *c, tl_schema_store *store, const char *file,
                            const char *topic, int32_t *id)
{
    char *json = tl_cmd_read_schema(c, file);
    if (!json) {
        TL_LOG_ERROR("sink", "cannot read tally's schema %s (schema.dir, then the installed ones)",
                     file);
        return -1;
    }
    char subject[512], err[512];
    if (tl_cmd_subject(c, topic, json, subject, sizeof(subject), err, sizeof(err)) != 0) {
        TL_LOG_ERROR("sink", "output schema %s: %s", file, err);
        free(json);
        return -1;
    }
    int out = 0;
    int rc = tl_schema_store_register(store, subject, json, &out, err, sizeof(err));
    *id = out;
    free(json);
    if (rc != TL_SCHEMA_OK) {
        TL_LOG_ERROR("sink", "output schema %s for topic %s: %s", file, topic, err);
        return -1;
    }
    return 0;
}

/* The roll-up topics, made if absent with as many partitions as the input (before the
 * producer asks for them): the partials, the compacted totals and the compacted state of
 * the shared Markov chain; the shared model's updates (one partition, every instance
 * reads all of it), when model is not NULL; the spend topic (rollup.spend.topic; one
 * partition if it is made), its partition count in *spend_parts. The input's partition
 * count, or -1. */
static int ensure_rollup_topics(const tl_config *c, const char *input, const char *partials,
                                const char *state, const char *model, int *spend_parts, char *err,
                                size_t errlen)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    const char *spend = ac.spend_topic;
    rd_kafka_conf_t *conf = tl_cmd_kafka_conf(c, "producer");
    char e[512];
    rd_kafka_t *admin = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e)) : NULL;
    if (!admin) {
        if (conf) rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "roll-up topics: %.400s", conf ? e : "no Kafka configuration");
        return -1;
    }
    /* Totals are rewritten as they change: segments that roll every hour let compaction
     * keep the topic near one record per row (the active segment is never compacted). */
    static const char *const totals_cfg[] = {"segment.ms", "3600000", "min.cleanable.dirty.ratio",
                                             "0.1", NULL};
    int rc = tl_kafka_topic_ensure(admin, partials, input, 0, err, errlen) != 0 ||
            tl_kafka_topic_ensure_cfg(admin, ac.rollup_topic, input, 1, totals_cfg, err, errlen) !=
                0 ||
            tl_kafka_topic_ensure(admin, state, input, 1, err, errlen) != 0 ||
            (model && tl_kafka_topic_ensure_n(admin, model, 1, 0, NULL, err, errlen) != 0)
        ? -1
        : tl_kafka_partition_count(admin, input);
    /* the spend topic is the users': kept as it is, or made with one partition */
    *spend_parts = rc > 0 && *spend ? tl_kafka_partition_count(admin, spend) : 0;
    if (rc > 0 && *spend && *spend_parts <= 0)
        *spend_parts = tl_kafka_topic_ensure_n(admin, spend, 1, 0, NULL, err, errlen) == 0 ? 1 : 0;
    if (rc > 0 && *spend && *spend_parts <= 0) rc = -1;
    rd_kafka_destroy(admin);
    return rc;
}

/* The roll-up aggregator (sink/rollup_agg.h), under its names (app/names.h); the shared
 * Markov chain's settings from ko and mc. */
static tl_rollup_agg *start_rollups(const tl_config *c, const tl_kafka_sink_opts *ko,
                                    const tl_model_cfg *mc, const tl_app_names *names, int n_inputs,
                                    int n_spend, int eos, char *err, size_t errlen)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    const char *topic = ac.rollup_topic;
    err[0] = 0;
    rd_kafka_conf_t *cc = tl_cmd_kafka_conf(c, "consumer");
    rd_kafka_conf_t *rc = tl_cmd_kafka_conf(c, "consumer");
    rd_kafka_conf_t *pc = tl_cmd_kafka_conf(c, "producer");
    int bad = !cc || !rc || !pc ||
        rd_kafka_conf_set(cc, "group.id", names->rollup_group, err, errlen) != RD_KAFKA_CONF_OK;
    if (!bad && eos &&
        rd_kafka_conf_set(pc, "transactional.id", names->rollup_transactional_id, err, errlen) !=
            RD_KAFKA_CONF_OK)
        bad = 1;
    if (bad) {
        if (cc) rd_kafka_conf_destroy(cc);
        if (rc) rd_kafka_conf_destroy(rc);
        if (pc) rd_kafka_conf_destroy(pc);
        if (!*err) snprintf(err, errlen, "roll-up aggregator: no Kafka configuration");
        return NULL;
    }
    tl_rollup_agg_opts o = {
        .partials_topic = ko->rollup_partials_topic,
        .topic = topic,
        .dlq_topic = ac.dlq_topic,
        .id_rollup = ko->id_rollup,
        .transactional = eos,
        .commit_interval_ms = (int)ac.rollup_commit_interval_ms,
        .partitions = n_inputs,
        .dlq_max_bytes = (size_t)ac.dlq_max_record_bytes,
        .markov = ko->markov_window_ms > 0,
        .mk = {.order = ko->markov_order,
               .window_ms = ko->markov_window_ms,
               .n_inputs = n_inputs,
               .bootstrap = mc->markov_bootstrap,
               .level = mc->markov_level},
        .credit_topic = ko->topic_credit,
        .state_topic = names->rollup_state,
        .groups = ko->rollup_groups,
        .id_credit = ko->id_credit,
        .spend_topic = ac.spend_topic,
        .spend_partitions = n_spend,
    };
    rd_kafka_conf_t *sc = *o.spend_topic ? tl_cmd_kafka_conf(c, "consumer") : NULL;
    return tl_rollup_agg_start(cc, rc, pc, sc, &o, err, errlen);
}

/* One model for every instance (model/model.h): the sink takes the model's updates into
 * its transactions, and the processing thread's tick adds the other instances' from the
 * model topic before it publishes the statistics. */
typedef struct model_share {
    tl_observe *obs;
    tl_model_feed *feed;
    tl_model *model;
    tl_sink *sink;              /* the Kafka sink, for the feed's dead letters */
} model_share;

static int share_dead_letter(void *arg, const tl_dlq_record *d)
{
    tl_sink *sink = arg;
    return sink->emit_dlq(sink->ctx, d) == TL_OK ? 0 : -1;
}

/* Called by the sink inside its transaction (before a batch's mark under at_least_once):
 * the model topic's records that did not decode go to the dead-letter topic there too. */
static int share_take(void *arg, tl_buf *out, size_t max_bytes)
{
    model_share *ms = arg;
    if (ms->feed) tl_model_feed_dead_letters(ms->feed, share_dead_letter, ms->sink);
    return tl_model_share_take(ms->model, out, max_bytes);
}

static void share_clear(void *arg) { tl_model_share_clear(((model_share *)arg)->model); }

static int share_apply(void *arg, const void *data, size_t len, int64_t offset, char *err,
                       size_t errlen)
{
    return tl_model_share_apply(arg, data, len, offset, err, errlen);
}

/* At the end of a run: the dead letters read since the last transaction, in one more
 * (exactly_once; share_take sends them), or straight away (at_least_once). */
static void share_close(model_share *ms, int eos)
{
    int n = ms->feed ? tl_model_feed_dead_pending(ms->feed) : 0;
    if (!n) return;
    tl_sink *s = ms->sink;
    int64_t none = -1;
    int ok = eos ? s->begin(s->ctx) == TL_OK && s->commit(s->ctx, &none, 0, &none) == TL_OK
                 : tl_model_feed_dead_letters(ms->feed, share_dead_letter, s) == n &&
            s->flush(s->ctx, 30000) == TL_OK;
    if (!ok)
        TL_LOG_ERROR("run",
                     "%d records of the model topic that do not decode were not written "
                     "to the dead-letter topic (they stay on the model topic; counted in "
                     "tally_model_shared_bad_records_total)",
                     n);
}

static void share_tick(void *arg)
{
    model_share *ms = arg;
    if (ms->feed) tl_model_feed_poll(ms->feed, share_apply, ms->model, 100000);
    tl_observe_tick(ms->obs);
}

int tl_kafka_pipeline_run(const tl_config *c, int until_end, tl_sink_wrap_fn wrap,
                          tl_after_fn after, void *arg, tl_run_report *rep)
{
    const tl_app_cfg ac = tl_cmd_settings(c);
    int rc = 1;
    char err[512];
    tl_schema_store *store = NULL;
    tl_codec *codec = NULL;
    rd_kafka_t *producer = NULL;
    tl_sink *ksink = NULL, *sink = NULL;
    tl_runtime *rt = NULL;
    tl_source *src = NULL;
    tl_changelog *changelog = NULL;
    tl_observe *obs = NULL;
    tl_rollup_agg *agg = NULL;
    model_share share = {0};
    tl_pipeline p;
    memset(rep, 0, sizeof(*rep));

    const char *topic = ac.input_topics;
    if (strchr(topic, ',')) {
        fprintf(stderr, "tally: input.topics: one input topic is supported, got '%s'\n", topic);
        return 2;
    }
    if (tl_pipeline_init(&p, c, ac.state_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: configuration error: %s\n", err);
        return 2;
    }
    codec = tl_cmd_codec_new(c, &store);
    if (!codec) goto done;
    /* From here a signal asks for an orderly stop, within shutdown.timeout.ms (connecting
     * to the broker and restoring state may block: the watchdog ends those). */
    tl_cmd_signals();
    tl_cmd_shutdown_timeout(ac.shutdown_timeout_ms);
    tl_cmd_shutdown_phase("starting (reaching the broker, making topics, restoring state)");
    obs = tl_observe_start(c, err, sizeof(err));
    if (!obs) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }

    tl_kafka_sink_opts ko = {
        .topic_interest = ac.interest_topic,
        .topic_attribution = ac.attribution_topic,
        .topic_credit = ac.credit_topic,
        .topic_dlq = ac.dlq_topic,
    };
    if (output_schema_id(c, store, "2-interest_delta.avsc", ko.topic_interest, &ko.id_interest) ||
        output_schema_id(c, store, "11-attribution.avsc", ko.topic_attribution,
                         &ko.id_attribution) ||
        output_schema_id(c, store, "7-credit_delta.avsc", ko.topic_credit, &ko.id_credit))
        goto done;

    /* an ENUM: the configuration took only exactly_once or at_least_once */
    int eos = ac.guarantee == TL_DELIVERY_EXACTLY_ONCE;
    char host[256] = "";
    const char *instance = ac.instance_id;
    if (!*instance) {
        if (tl_cmd_instance_id(ac.state_dir, host, sizeof(host), err, sizeof(err)) != 0) {
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
        instance = host;
        TL_LOG_INFO("run", "instance.id=%s (kept in %s/instance.id)", instance, ac.state_dir);
    }
    tl_app_names names;
    if (tl_cmd_names(c, instance, &names, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: configuration error: %s\n", err);
        rc = 2;
        goto done;
    }
    const char *changelog_topic = names.changelog, *txn_id = names.transactional_id;

    rd_kafka_conf_t *pconf = tl_cmd_kafka_conf(c, "producer");
    if (!pconf) goto done;
    if (eos) {
        ko.transactional = 1;
        ko.changelog_topic = changelog_topic;
        if (rd_kafka_conf_set(pconf, "transactional.id", txn_id, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(pconf);
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
        rd_kafka_conf_t *lconf = tl_cmd_kafka_conf(c, "consumer");
        if (!lconf) {
            rd_kafka_conf_destroy(pconf);
            goto done;
        }
        changelog = tl_changelog_new(lconf, changelog_topic, err, sizeof(err));
        if (!changelog || tl_changelog_ensure(changelog, topic, err, sizeof(err)) != 0) {
            rd_kafka_conf_destroy(pconf);
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
        TL_LOG_INFO("run", "exactly_once transactional.id=%s changelog=%s", txn_id,
                    changelog_topic);
    }
    const char *partials = names.partials, *rollup_state = names.rollup_state;
    const char *model_topic = names.model;
    int n_inputs = 0;
    int n_spend = 0;
    const char *rollup_topic = ac.rollup_topic;
    int shared_model = *rollup_topic && p.model && p.mcfg.enabled && p.mcfg.shared;
    if (*rollup_topic) {
        if (p.mcfg.markov_enabled) {   /* one chain for every instance */
            ko.markov_order = p.mcfg.markov_order;
            ko.markov_window_ms = p.mcfg.markov_window_ms;
        }
        ko.rollup_partials_topic = partials;
        ko.rollup_groups = ac.channel_groups;
        if (output_schema_id(c, store, "9-rollup.avsc", rollup_topic, &ko.id_rollup)) {
            rd_kafka_conf_destroy(pconf);
            goto done;
        }
        if ((n_inputs = ensure_rollup_topics(c, topic, partials, rollup_state,
                                             shared_model ? model_topic : NULL, &n_spend, err,
                                             sizeof(err))) < 0) {
            rd_kafka_conf_destroy(pconf);
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
    }
    ksink = tl_kafka_sink_new(pconf, &ko, err, sizeof(err));
    if (!ksink) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    producer = tl_kafka_sink_handle(ksink);
    if (!eos && tl_cmd_topic_exists(producer, topic) == 0) {   /* exactly_once checks it above */
        fprintf(stderr, "tally: input topic %s does not exist (create it first)\n", topic);
        goto done;
    }
    const char *const outputs[TL_BOUNDS_OUTPUTS] = {ko.topic_interest, ko.topic_attribution,
                                                    ko.topic_credit, ko.topic_dlq};
    const char *const rollups[2] = {rollup_topic, ko.rollup_partials_topic};
    int bounds = tl_cmd_check_record_bounds(c, producer, outputs, eos ? changelog_topic : NULL,
                                            *rollup_topic ? rollups : NULL, err, sizeof(err));
    if (bounds != 0) {   /* -1: a bound over a limit (configuration); -2: a topic missing */
        fprintf(stderr, "tally: %s%s\n", bounds == -1 ? "configuration error: " : "", err);
        rc = bounds == -1 ? 2 : 1;
        goto done;
    }
    if (*rollup_topic) {
        agg = start_rollups(c, &ko, &p.mcfg, &names, n_inputs, n_spend, eos, err, sizeof(err));
        if (!agg) {
            fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
    }
    if (shared_model) {
        /* this process's updates carry a key of their own: the others add them, it skips
         * them; a restarted instance adds its earlier run's updates it had not saved */
        char key[600];
        int64_t seed[3] = {tl_mono_ns(), (int64_t)time(NULL), (int64_t)getpid()};
        snprintf(key, sizeof(key), "%s/%016" PRIx64, instance, tl_hash64(seed, sizeof(seed)));
        tl_model_share_start(p.model);
        share.model = p.model;
        share.sink = ksink;
        tl_kafka_sink_set_model_share(ksink, model_topic, key, share_take, share_clear, &share);
        rd_kafka_conf_t *fconf = tl_cmd_kafka_conf(c, "consumer");
        share.feed = fconf
            ? tl_model_feed_new(fconf, model_topic, tl_model_share_next(p.model), key,
                                (size_t)ac.dlq_max_record_bytes, err, sizeof(err))
            : NULL;
        if (!share.feed) {
            if (fconf) fprintf(stderr, "tally: %s\n", err);
            goto done;
        }
        TL_LOG_INFO("run", "one model for the group: updates to and from topic=%s key=%s",
                    model_topic, key);
    }
    share.obs = obs;
    sink = wrap ? wrap(ksink, arg) : ksink;

    tl_runtime_opts o;
    tl_app_runtime_opts(&ac, &o);
    o.tick = share_tick;
    o.tick_arg = &share;
    if (eos) {
        o.delivery = TL_DELIVERY_EXACTLY_ONCE;
        o.restore = tl_changelog_restore;
        o.restore_arg = changelog;
    }
    rt = tl_runtime_new(&o, sink, p.stages, p.n_stages);

    rd_kafka_conf_t *cconf = tl_cmd_kafka_conf(c, "consumer");
    if (!cconf) goto done;
    /* Not a static group member by default: with librdkafka 2.0.2 a broker restart makes
     * a static member fenced by its own rejoin, a fatal consumer error (measured in
     * integration.eos). kafka.consumer.group.instance.id turns it on. */
    tl_kafka_source_opts so2 = {
        .topic = topic,
        .codec = codec,
        .on_partitions = tl_runtime_partition_listener(rt),
        .limits = {.ts_min = ac.ts_min,
                   .ts_max = ac.ts_max,
                   .max_string = (size_t)ac.max_string_bytes},
        .dlq_max_bytes = (size_t)ac.dlq_max_record_bytes,
        .key_mismatch_dlq = ac.key_mismatch == TL_KEY_MISMATCH_DLQ,
        .until_end = until_end,
        .exactly_once = eos,
    };
    src = tl_kafka_source_new(cconf, &so2, err, sizeof(err));
    if (!src) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    if (eos) tl_kafka_sink_set_consumer(ksink, tl_kafka_source_handle(src), topic);
    TL_LOG_INFO("run", "started topic=%s state.dir=%s until_end=%d", topic, o.state_dir, until_end);
    tl_observe_attach(obs, rt, src, ksink, &p, topic, outputs);
    int64_t t0 = tl_mono_ns();
    tl_cmd_shutdown_phase("processing, or committing the last transaction and writing the state");
    int r = tl_runtime_run(rt, src, &tl_stop);
    rep->seconds = (double)(tl_mono_ns() - t0) / 1e9;
    tl_cmd_shutdown_phase("writing the model topic's dead letters");
    if (r == 0) share_close(&share, eos);
    tl_observe_stopping(obs);
    if (after && r == 0) after(rt, arg);
    rc = r == 0 ? 0 : 1;
    /* --until-end: the roll-ups too are brought up to the last partials committed above */
    tl_cmd_shutdown_phase("stopping the roll-up aggregator (its last commit, leaving its group)");
    if (tl_rollup_agg_stop(agg, until_end && r == 0) != 0) rc = 1;
    agg = NULL;
done:
    tl_rollup_agg_stop(agg, 0);
    tl_observe_detach(obs);
    tl_cmd_shutdown_phase("closing the consumer (leaving the group)");
    if (src) tl_kafka_source_destroy(src);
    if (rt) {
        rep->rt = *tl_runtime_stats_get(rt);
        rep->features = p.fstats;
        rep->attribution = p.astats;
        if (p.model) tl_model_report_get(p.model, &rep->model);
    }
    tl_cmd_shutdown_phase("closing the stores and the model topic's reader");
    tl_runtime_destroy(rt);
    tl_model_feed_destroy(share.feed);
    tl_pipeline_destroy(&p);
    tl_cmd_shutdown_phase("delivering the last records (producer flush)");
    if (producer) {
        if (rd_kafka_flush(producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            TL_LOG_ERROR("run", "producer could not deliver everything at close");
            rc = 1;
        }
    }
    if (ksink) {   /* a wrapper, if any, belongs to the caller; this frees the producer */
        tl_sink_counts_get(ksink, &rep->out);
        tl_sink_destroy(ksink);
    }
    tl_cmd_shutdown_phase("closing the changelog reader and the HTTP server");
    tl_changelog_destroy(changelog);
    if (rc != 0) tl_cmd_kafka_why_failed(c);   /* a timeout above may have this cause */
    tl_observe_stop(obs);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    return rc;
}
