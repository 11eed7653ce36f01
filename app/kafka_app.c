/*
 * kafka_app.c -- set-up and ordered tear-down of the Kafka pipeline: the composition
 * root of `tally run` and `tally demo`. tl_kafka_app_run is app_open (each piece in
 * its own open_* function, in dependency order), app_run and app_close (the reverse).
 *
 * Shutdown order: the runtime returns after its last batch is committed (offsets
 * stored); the consumer then commits and leaves the group (its revocation closes the
 * stores, all clean); the producer is flushed; then everything is freed.
 */
#include "kafka_app.h"
#include "bounds.h"
#include "config.h"
#include "kafka_client.h"
#include "names.h"
#include "observe.h"
#include "schemas.h"
#include "shutdown.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ingest/kafka_changelog.h"
#include "lib/kafka.h"
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

/* The Confluent id of one of tally's output schemas, registered under its subject. */
static int output_schema_id(const tl_config *c, tl_schema_store *store, const char *file,
                            const char *topic, int32_t *id)
{
    char *json = tl_app_read_schema(c, file);
    if (!json) {
        TL_LOG_ERROR("sink", "cannot read tally's schema %s (schema.dir, then the installed ones)",
                     file);
        return -1;
    }
    char subject[512], err[512];
    if (tl_app_subject(c, topic, json, subject, sizeof(subject), err, sizeof(err)) != 0) {
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
static int ensure_rollup_topics(const tl_config *c, const tl_app_cfg *ac, const char *input,
                                const char *partials, const char *state, const char *model,
                                int *spend_parts, char *err, size_t errlen)
{
    const char *spend = ac->spend_topic;
    rd_kafka_conf_t *conf = tl_app_kafka_conf(c, "producer");
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
            tl_kafka_topic_ensure_cfg(admin, ac->rollup_topic, input, 1, totals_cfg, err, errlen) !=
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
static tl_rollup_agg *start_rollups(const tl_config *c, const tl_app_cfg *ac,
                                    const tl_kafka_sink_opts *ko, const tl_model_cfg *mc,
                                    const tl_app_names *names, int n_inputs, int n_spend, int eos,
                                    char *err, size_t errlen)
{
    const char *topic = ac->rollup_topic;
    err[0] = 0;
    rd_kafka_conf_t *cc = tl_app_kafka_conf(c, "consumer");
    rd_kafka_conf_t *rc = tl_app_kafka_conf(c, "consumer");
    rd_kafka_conf_t *pc = tl_app_kafka_conf(c, "producer");
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
        .dlq_topic = ac->dlq_topic,
        .id_rollup = ko->id_rollup,
        .transactional = eos,
        .commit_interval_ms = (int)ac->rollup_commit_interval_ms,
        .partitions = n_inputs,
        .dlq_max_bytes = (size_t)ac->dlq_max_record_bytes,
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
        .spend_topic = ac->spend_topic,
        .spend_partitions = n_spend,
    };
    rd_kafka_conf_t *sc = *o.spend_topic ? tl_app_kafka_conf(c, "consumer") : NULL;
    return tl_rollup_agg_start(cc, rc, pc, sc, &o, err, errlen);
}

/* One model for every instance (model/model.h): the sink takes the model's updates into
 * its transactions, and the processing thread's tick adds the other instances' from the
 * model topic before it publishes the statistics. */
typedef struct model_share {
    tl_observe *obs;
    tl_model_feed *feed;
    tl_model *model;
    tl_sink *sink;              /* the Kafka sink, for the feeds' dead letters */
    tl_model_feed *emb;         /* categories.embeddings.topic's reader, or NULL */
} model_share;

static int share_dead_letter(void *arg, const tl_dlq_record *d)
{
    tl_sink *sink = arg;
    return sink->emit_dlq(sink->ctx, d) == TL_OK ? 0 : -1;
}

/* Called by the sink inside its transaction (before a batch's mark under at_least_once):
 * the model topic's records that did not decode go to the dead-letter topic there too.
 * The sink calls share_clear at the start of a transaction after one that did not
 * commit, so the dead letters handed out before this call were committed. */
static int share_take(void *arg, tl_buf *out, size_t max_bytes)
{
    model_share *ms = arg;
    tl_model_feed *feeds[2] = {ms->feed, ms->emb};
    for (int i = 0; i < 2; i++)
        if (feeds[i]) {
            tl_model_feed_dead_settle(feeds[i], 1);
            tl_model_feed_dead_letters(feeds[i], share_dead_letter, ms->sink);
        }
    return tl_model_share_take(ms->model, out, max_bytes);
}

/* What the transaction that did not commit took is taken again: its model updates are
 * made anew as its input is processed again, its dead letters are handed out again. */
static void share_clear(void *arg)
{
    model_share *ms = arg;
    tl_model_share_clear(ms->model);
    if (ms->feed) tl_model_feed_dead_settle(ms->feed, 0);
    if (ms->emb) tl_model_feed_dead_settle(ms->emb, 0);
}

static int share_apply(void *arg, const void *data, size_t len, int64_t offset, char *err,
                       size_t errlen)
{
    return tl_model_share_apply(arg, data, len, offset, err, errlen);
}

static int emb_apply(void *arg, const void *data, size_t len, int64_t offset, char *err,
                     size_t errlen)
{
    return tl_cat_external(arg, data, len, err, errlen);
}

/* At the end of a run: the dead letters read since the last transaction, in one more
 * (exactly_once; share_take sends them), or straight away (at_least_once). */
static void share_close(model_share *ms, int eos)
{
    int nf = ms->feed ? tl_model_feed_dead_pending(ms->feed) : 0;
    int ne = ms->emb ? tl_model_feed_dead_pending(ms->emb) : 0;
    if (!nf && !ne) return;
    tl_sink *s = ms->sink;
    int64_t none = -1;
    int ok = eos ? s->begin(s->ctx) == TL_OK && s->commit(s->ctx, &none, 0, &none) == TL_OK
                 : (!nf || tl_model_feed_dead_letters(ms->feed, share_dead_letter, s) == nf) &&
            (!ne || tl_model_feed_dead_letters(ms->emb, share_dead_letter, s) == ne) &&
            s->flush(s->ctx, 30000) == TL_OK;
    if (!ok)
        TL_LOG_ERROR("run",
                     "%d records of the model topic and %d of the category embeddings topic "
                     "that do not decode were not written to the dead-letter topic (they stay "
                     "on their topics; counted in tally_model_shared_bad_records_total and "
                     "tally_categories_external_bad_records_total)",
                     nf, ne);
}

/* Dead letters of the feeds wait for a transaction: when no input opens one, the
 * runtime opens one for them. */
static int share_pending(void *arg)
{
    model_share *ms = arg;
    return (ms->feed && tl_model_feed_dead_pending(ms->feed)) ||
        (ms->emb && tl_model_feed_dead_pending(ms->emb));
}

static void share_tick(void *arg)
{
    model_share *ms = arg;
    if (ms->feed) tl_model_feed_poll(ms->feed, share_apply, ms->model, 100000);
    if (ms->emb) tl_model_feed_poll(ms->emb, emb_apply, tl_model_categories(ms->model), 100000);
    tl_observe_tick(ms->obs);
}

/* A running `tally run`: what app_open puts together, app_run runs and app_close takes
 * apart, in that order. Every pointer is NULL until made, so app_close undoes whatever
 * app_open got to. */
typedef struct kafka_app {
    const tl_config *c;
    tl_app_cfg ac;
    int until_end, eos;
    const char *topic;
    char host[256];
    const char *instance;
    tl_app_names names;
    tl_pipeline p;
    int p_init;
    tl_schema_store *store;
    tl_codec *codec;
    tl_observe *obs;
    tl_kafka_sink_opts ko;
    const char *outputs[TL_BOUNDS_OUTPUTS];
    tl_kafka_changelog *changelog;
    int n_inputs, n_spend, shared_model;
    tl_sink *ksink, *sink;
    rd_kafka_t *producer;
    tl_rollup_agg *agg;
    model_share share;
    tl_runtime *rt;
    tl_source *src;
} kafka_app;

/* Prints err as tally's error; returns rc. */
static int failed(int rc, const char *prefix, const char *err)
{
    fprintf(stderr, "tally: %s%s\n", prefix, err);
    return rc;
}

/* The output topics' schema ids and the sink's options. 0 or 1. The intent topic only when
 * intent is published (intent.enabled with the model on), and the next categories' only
 * when they are (categories.enabled with the model on): else it is not registered,
 * checked nor required to exist. */
static int open_outputs(kafka_app *a)
{
    int intent = a->p.icfg.enabled && a->p.mcfg.enabled && *a->ac.intent_topic;
    int cats = a->p.ccfg.enabled && a->p.mcfg.enabled && *a->ac.categories_topic;
    a->ko = (tl_kafka_sink_opts){
        .topic_interest = a->ac.interest_topic,
        .topic_attribution = a->ac.attribution_topic,
        .topic_credit = a->ac.credit_topic,
        .topic_dlq = a->ac.dlq_topic,
        .topic_intent = intent ? a->ac.intent_topic : NULL,
        .topic_categories = cats ? a->ac.categories_topic : NULL,
    };
    const char *const outs[TL_BOUNDS_OUTPUTS] = {a->ko.topic_interest, a->ko.topic_attribution,
                                                 a->ko.topic_credit,   a->ko.topic_dlq,
                                                 a->ko.topic_intent,   a->ko.topic_categories};
    memcpy(a->outputs, outs, sizeof(outs));
    return output_schema_id(a->c, a->store, "2-interest_delta.avsc", a->ko.topic_interest,
                            &a->ko.id_interest) ||
            output_schema_id(a->c, a->store, "11-attribution.avsc", a->ko.topic_attribution,
                             &a->ko.id_attribution) ||
            output_schema_id(a->c, a->store, "7-credit_delta.avsc", a->ko.topic_credit,
                             &a->ko.id_credit) ||
            (intent &&
             output_schema_id(a->c, a->store, "12-intent_delta.avsc", a->ko.topic_intent,
                              &a->ko.id_intent)) ||
            (cats &&
             output_schema_id(a->c, a->store, "13-next_categories.avsc", a->ko.topic_categories,
                              &a->ko.id_categories))
        ? 1
        : 0;
}

/* The instance's id and the deployment's names (app/names.h). 0, 1 or 2. */
static int open_names(kafka_app *a)
{
    char err[512];
    a->instance = a->ac.instance_id;
    if (!*a->instance) {
        if (tl_app_instance_id(a->ac.state_dir, a->host, sizeof(a->host), err, sizeof(err)) != 0)
            return failed(1, "", err);
        a->instance = a->host;
        TL_LOG_INFO("run", "instance.id=%s (kept in %s/instance.id)", a->instance, a->ac.state_dir);
    }
    if (tl_app_names_of(a->c, a->instance, &a->names, err, sizeof(err)) != 0)
        return failed(2, "configuration error: ", err);
    return 0;
}

/* exactly_once: the transactional id on pconf, and the changelog (made if absent).
 * 0 or 1. */
static int open_changelog(kafka_app *a, rd_kafka_conf_t *pconf)
{
    char err[512];
    a->ko.transactional = 1;
    a->ko.changelog_topic = a->names.changelog;
    if (rd_kafka_conf_set(pconf, "transactional.id", a->names.transactional_id, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK)
        return failed(1, "", err);
    rd_kafka_conf_t *lconf = tl_app_kafka_conf(a->c, "consumer");
    if (!lconf) return 1;
    a->changelog = tl_kafka_changelog_new(lconf, a->names.changelog, err, sizeof(err));
    if (!a->changelog || tl_kafka_changelog_ensure(a->changelog, a->topic, err, sizeof(err)) != 0)
        return failed(1, "", err);
    TL_LOG_INFO("run", "exactly_once transactional.id=%s changelog=%s", a->names.transactional_id,
                a->names.changelog);
    return 0;
}

/* rollup.topic: the sink's roll-up options and the roll-up topics (made if absent). 0 or
 * 1. */
static int open_rollup_topics(kafka_app *a)
{
    char err[512];
    if (a->p.mcfg.markov_enabled) {   /* one chain for every instance */
        a->ko.markov_order = a->p.mcfg.markov_order;
        a->ko.markov_window_ms = a->p.mcfg.markov_window_ms;
    }
    a->ko.rollup_partials_topic = a->names.partials;
    a->ko.rollup_groups = a->ac.channel_groups;
    if (output_schema_id(a->c, a->store, "9-rollup.avsc", a->ac.rollup_topic, &a->ko.id_rollup))
        return 1;
    a->n_inputs = ensure_rollup_topics(
        a->c, &a->ac, a->topic, a->names.partials, a->names.rollup_state,
        a->shared_model ? a->names.model : NULL, &a->n_spend, err, sizeof(err));
    return a->n_inputs < 0 ? failed(1, "", err) : 0;
}

/* The Kafka sink (the producer), checked against the topics' limits. 0, 1 or 2. */
static int open_sink(kafka_app *a, rd_kafka_conf_t *pconf)
{
    char err[512];
    a->ksink = tl_kafka_sink_new(pconf, &a->ko, err, sizeof(err));
    if (!a->ksink) return failed(1, "", err);
    a->producer = tl_kafka_sink_handle(a->ksink);
    if (!a->eos && tl_app_topic_exists(a->producer, a->topic) == 0) {   /* exactly_once: above */
        fprintf(stderr, "tally: input topic %s does not exist (create it first)\n", a->topic);
        return 1;
    }
    const char *const rollups[2] = {a->ac.rollup_topic, a->ko.rollup_partials_topic};
    int bounds = tl_app_check_record_bounds(a->c, a->producer, a->outputs,
                                            a->eos ? a->names.changelog : NULL,
                                            *a->ac.rollup_topic ? rollups : NULL, err, sizeof(err));
    /* -1: a bound over a limit (configuration); -2: a topic missing */
    if (bounds != 0)
        return failed(bounds == -1 ? 2 : 1, bounds == -1 ? "configuration error: " : "", err);
    return 0;
}

/* model.shared: this process's updates go out in the sink's transactions, the others'
 * come in from the model topic. 0 or 1. */
static int open_model_share(kafka_app *a)
{
    char err[512], key[600];
    /* this process's updates carry a key of their own: the others add them, it skips
     * them; a restarted instance adds its earlier run's updates it had not saved */
    int64_t seed[3] = {tl_mono_ns(), (int64_t)time(NULL), (int64_t)getpid()};
    snprintf(key, sizeof(key), "%s/%016" PRIx64, a->instance, tl_hash64(seed, sizeof(seed)));
    tl_model_share_start(a->p.model);
    a->share.model = a->p.model;
    a->share.sink = a->ksink;
    tl_kafka_sink_set_model_share(a->ksink, a->names.model, key, share_take, share_clear,
                                  &a->share);
    rd_kafka_conf_t *fconf = tl_app_kafka_conf(a->c, "consumer");
    if (!fconf) return 1;
    a->share.feed = tl_model_feed_new(fconf, "model topic", "tally_model_shared_bad_records_total",
                                      a->names.model, tl_model_share_next(a->p.model), key,
                                      (size_t)a->ac.dlq_max_record_bytes, err, sizeof(err));
    if (!a->share.feed) return failed(1, "", err);
    TL_LOG_INFO("run", "one model for the group: updates to and from topic=%s key=%s",
                a->names.model, key);
    return 0;
}

/* categories.embeddings.topic: externally computed category embeddings, read from the
 * topic's start and followed by the tick (model/categories.h, tl_cat_external); its bad
 * records go to the dead-letter topic with the outputs. 0 or 1. */
static int open_embeddings(kafka_app *a)
{
    const char *topic = a->p.ccfg.embeddings_topic;
    if (!tl_model_categories(a->p.model) || !topic || !*topic) return 0;
    char err[512];
    rd_kafka_conf_t *conf = tl_app_kafka_conf(a->c, "consumer");
    if (!conf) return 1;
    a->share.emb = tl_model_feed_new(conf, "category embeddings topic",
                                     "tally_categories_external_bad_records_total", topic, -1, NULL,
                                     (size_t)a->ac.dlq_max_record_bytes, err, sizeof(err));
    if (!a->share.emb) return failed(1, "", err);
    a->share.model = a->p.model;
    a->share.sink = a->ksink;
    if (!a->shared_model)   /* the sink's hook for the dead letters, without model updates */
        tl_kafka_sink_set_model_share(a->ksink, NULL, NULL, share_take, share_clear, &a->share);
    return 0;
}

/* The runtime over the sink (wrapped, if asked), and the consumer that feeds it. 0 or 1. */
static int open_runtime(kafka_app *a, tl_sink_wrap_fn wrap, void *arg)
{
    char err[512];
    a->share.obs = a->obs;
    a->sink = wrap ? wrap(a->ksink, arg) : a->ksink;
    tl_runtime_opts o;
    tl_app_runtime_opts(&a->ac, &o);
    o.tick = share_tick;
    o.tick_arg = &a->share;
    o.pending = share_pending;
    o.pending_arg = &a->share;
    if (a->eos) {
        o.delivery = TL_DELIVERY_EXACTLY_ONCE;
        o.restore = tl_kafka_changelog_restore;
        o.restore_arg = a->changelog;
    }
    a->rt = tl_runtime_new(&o, a->sink, a->p.stages, a->p.n_stages);
    rd_kafka_conf_t *cconf = tl_app_kafka_conf(a->c, "consumer");
    if (!cconf) return 1;
    /* Not a static group member by default: with librdkafka 2.0.2 a broker restart makes
     * a static member fenced by its own rejoin, a fatal consumer error (measured in
     * integration.eos). kafka.consumer.group.instance.id turns it on. */
    tl_kafka_source_opts so = {
        .topic = a->topic,
        .codec = a->codec,
        .on_partitions = tl_runtime_partition_listener(a->rt),
        .limits = {.ts_min = a->ac.ts_min,
                   .ts_max = a->ac.ts_max,
                   .max_string = (size_t)a->ac.max_string_bytes},
        .dlq_max_bytes = (size_t)a->ac.dlq_max_record_bytes,
        .key_mismatch_dlq = a->ac.key_mismatch == TL_KEY_MISMATCH_DLQ,
        .until_end = a->until_end,
        .exactly_once = a->eos,
    };
    a->src = tl_kafka_source_new(cconf, &so, err, sizeof(err));
    if (!a->src) return failed(1, "", err);
    if (a->eos) tl_kafka_sink_set_consumer(a->ksink, tl_kafka_source_handle(a->src), a->topic);
    TL_LOG_INFO("run", "started topic=%s state.dir=%s until_end=%d", a->topic, o.state_dir,
                a->until_end);
    tl_observe_attach(a->obs, a->rt, a->src, a->ksink, &a->p, a->topic, a->outputs);
    return 0;
}

/* Puts a run together, in order: the stages, the codec, the HTTP server, the outputs'
 * schemas, the names, the changelog, the roll-up topics, the sink, the roll-up
 * aggregator, the shared model, the runtime and the consumer. 0, or the exit status (1,
 * or 2 for a configuration error) with the error printed; app_close undoes it either
 * way. */
static int app_open(kafka_app *a, tl_sink_wrap_fn wrap, void *arg)
{
    char err[512];
    if (strchr(a->topic, ',')) {
        fprintf(stderr, "tally: input.topics: one input topic is supported, got '%s'\n", a->topic);
        return 2;
    }
    if (tl_pipeline_init(&a->p, a->c, a->ac.state_dir, err, sizeof(err)) != 0)
        return failed(2, "configuration error: ", err);
    a->p_init = 1;
    if (a->eos) tl_model_undo_start(a->p.model);   /* an aborted transaction's learning */
    a->codec = tl_app_codec_new(a->c, &a->store);
    if (!a->codec) return 1;
    /* From here a signal asks for an orderly stop, within shutdown.timeout.ms (connecting
     * to the broker and restoring state may block: the watchdog ends those). */
    tl_app_signals();
    tl_app_shutdown_timeout(a->ac.shutdown_timeout_ms);
    tl_app_shutdown_phase("starting (reaching the broker, making topics, restoring state)");
    a->obs = tl_observe_start(a->c, err, sizeof(err));
    if (!a->obs) return failed(1, "", err);
    int rc = open_outputs(a);
    if (!rc) rc = open_names(a);
    if (rc) return rc;
    rd_kafka_conf_t *pconf = tl_app_kafka_conf(a->c, "producer");
    if (!pconf) return 1;
    a->shared_model = *a->ac.rollup_topic && a->p.model && a->p.mcfg.enabled && a->p.mcfg.shared;
    if ((a->eos && (rc = open_changelog(a, pconf))) ||
        (*a->ac.rollup_topic && (rc = open_rollup_topics(a)))) {
        rd_kafka_conf_destroy(pconf);
        return rc;
    }
    if ((rc = open_sink(a, pconf))) return rc;   /* the sink owns pconf, also on failure */
    if (*a->ac.rollup_topic) {
        a->agg = start_rollups(a->c, &a->ac, &a->ko, &a->p.mcfg, &a->names, a->n_inputs, a->n_spend,
                               a->eos, err, sizeof(err));
        if (!a->agg) return failed(1, "", err);
    }
    if (a->shared_model && (rc = open_model_share(a))) return rc;
    if ((rc = open_embeddings(a))) return rc;
    return open_runtime(a, wrap, arg);
}

/* Processes until the end (--until-end), a signal or an error; then what follows a clean
 * end: the model topic's last dead letters, the after hook, the roll-ups' last commit.
 * 0 or 1. */
static int app_run(kafka_app *a, tl_after_fn after, void *arg, tl_run_report *rep)
{
    int64_t t0 = tl_mono_ns();
    tl_app_shutdown_phase("processing, or committing the last transaction and writing the state");
    int r = tl_runtime_run(a->rt, a->src, &tl_stop);
    rep->seconds = (double)(tl_mono_ns() - t0) / 1e9;
    tl_app_shutdown_phase("writing the model topic's dead letters");
    if (r == 0) share_close(&a->share, a->eos);
    tl_observe_stopping(a->obs);
    if (after && r == 0) after(a->rt, arg);
    int rc = r == 0 ? 0 : 1;
    /* --until-end: the roll-ups too are brought up to the last partials committed above */
    tl_app_shutdown_phase("stopping the roll-up aggregator (its last commit, leaving its group)");
    if (tl_rollup_agg_stop(a->agg, a->until_end && r == 0) != 0) rc = 1;
    a->agg = NULL;
    return rc;
}

/* Takes apart what app_open made, in reverse order, filling rep; returns rc, or 1 when
 * the last records could not be delivered. */
static int app_close(kafka_app *a, int rc, tl_run_report *rep)
{
    tl_rollup_agg_stop(a->agg, 0);
    tl_observe_detach(a->obs);
    tl_app_shutdown_phase("closing the consumer (leaving the group)");
    if (a->src) tl_kafka_source_destroy(a->src);
    if (a->rt) {
        rep->rt = *tl_runtime_stats_get(a->rt);
        rep->features = a->p.fstats;
        rep->attribution = a->p.astats;
        if (a->p.model) tl_model_report_get(a->p.model, &rep->model);
    }
    tl_app_shutdown_phase("closing the stores and the model topic's reader");
    tl_runtime_destroy(a->rt);
    tl_model_feed_destroy(a->share.feed);
    tl_model_feed_destroy(a->share.emb);
    if (a->p_init) tl_pipeline_destroy(&a->p);
    tl_app_shutdown_phase("delivering the last records (producer flush)");
    if (a->producer && rd_kafka_flush(a->producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        TL_LOG_ERROR("run", "producer could not deliver everything at close");
        rc = 1;
    }
    if (a->ksink) {   /* a wrapper, if any, belongs to the caller; this frees the producer */
        tl_sink_counts_get(a->ksink, &rep->out);
        tl_sink_destroy(a->ksink);
    }
    tl_app_shutdown_phase("closing the changelog reader and the HTTP server");
    tl_kafka_changelog_destroy(a->changelog);
    if (rc != 0) tl_app_kafka_why_failed(a->c);   /* a timeout above may have this cause */
    tl_observe_stop(a->obs);
    tl_codec_destroy(a->codec);
    tl_schema_store_destroy(a->store);
    return rc;
}

int tl_kafka_app_run(const tl_config *c, int until_end, tl_sink_wrap_fn wrap, tl_after_fn after,
                     void *arg, tl_run_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    kafka_app *a = tl_xcalloc(1, sizeof(*a));
    a->c = c;
    a->ac = tl_app_cfg_of(c);
    a->until_end = until_end;
    a->eos = a->ac.guarantee == TL_DELIVERY_EXACTLY_ONCE;
    a->topic = a->ac.input_topics;
    int rc = app_open(a, wrap, arg);
    if (rc == 0) rc = app_run(a, after, arg, rep);
    /* before the stages exist, nothing else does: the early configuration errors */
    rc = a->p_init ? app_close(a, rc, rep) : rc;
    free(a);
    return rc;
}
