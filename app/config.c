/*
 * config.c -- the configuration of the tally program: the keys of the application's own
 * settings (the runtime and its state, the input, the outputs, the roll-ups), and the list
 * of every component's keys (app/config.h). The features, the attribution stage and the
 * model declare theirs beside their code (features/interest.c, model/attribution.c,
 * model/model.c).
 *
 * `tally config list` prints the list, docs/configuration.md is generated from it, and
 * tl_config_set() rejects anything not in it. Keys under "kafka." are not listed: they
 * pass through to librdkafka. A range with min > max means unbounded (TL_NORANGE).
 */
#include "config.h"
#include "engine/runtime.h"
#include "features/interest.h"
#include "model/attribution.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* processing.guarantee: the choice's index is its tl_delivery */
_Static_assert(TL_DELIVERY_AT_LEAST_ONCE == 0 && TL_DELIVERY_EXACTLY_ONCE == 1,
               "guarantees[] is in tl_delivery's order");
static const char *const guarantees[] = {"at_least_once", "exactly_once", NULL};
static const char *const mismatches[] = {"dlq", "process", NULL};   /* TL_KEY_MISMATCH_* */

static const tl_config_def runtime_config[] = {
    {"log.level", TL_CT_STRING, "info", TL_NORANGE, "error, warn, info or debug.",
     TL_CFG_FIELD(tl_app_cfg, log_level)},
    {"log.format", TL_CT_STRING, "key_value", TL_NORANGE,
     "key_value (one line per event: ts level=... component=... message) or json (one "
     "object per line: ts, level, component, message). librdkafka's lines too.",
     TL_CFG_FIELD(tl_app_cfg, log_format)},
    {"log.file", TL_CT_STRING, "", TL_NORANGE,
     "Append the log to this file (empty: stderr). SIGHUP reopens it (for logrotate).",
     TL_CFG_FIELD(tl_app_cfg, log_file)},
    {"processing.guarantee", TL_CT_ENUM, "exactly_once", TL_NORANGE,
     "exactly_once: outputs, state changelog and input offsets commit together in one Kafka "
     "transaction every commit.interval.ms (docs/operations.md); at_least_once: outputs acknowledged before offsets "
     "are stored, state resumed from its own offsets.",
     TL_CFG_ENUM(tl_app_cfg, guarantee, guarantees)},
    {"instance.id", TL_CT_STRING, "", TL_NORANGE,
     "This instance's stable name. Empty: the id kept in <state.dir>/instance.id (a random "
     "UUID written on first start), the same across restarts with that directory and distinct "
     "for two directories on one host. With exactly_once it makes the transactional id, so a "
     "restarted instance fences its previous incarnation.",
     TL_CFG_FIELD(tl_app_cfg, instance_id)},
    {"state.changelog.topic", TL_CT_STRING, "", TL_NORANGE,
     "Changelog of the user state (compacted; partition = input partition). Empty: "
     "<kafka.group.id>-users-changelog. Created if absent.",
     TL_CFG_FIELD(tl_app_cfg, changelog_topic)},
    {"state.dir", TL_CT_STRING, "./tally-state", TL_NORANGE,
     "Directory of the RocksDB state stores, one sub-directory per input partition.",
     TL_CFG_FIELD(tl_app_cfg, state_dir)},
    {"state.cache.mb", TL_CT_INT, "256", 1, 1048576,
     "Memory for cached user state (profiles and journeys), in MiB, per partition's store. "
     "Clean entries past this are evicted after a commit; RocksDB's memory is separate "
     "(state.memtable.mb, state.block.cache.mb; docs/operations.md, \"Memory\").",
     TL_CFG_FIELD(tl_app_cfg, cache_mb)},
    {"state.memtable.mb", TL_CT_INT, "64", 1, 65536,
     "RocksDB write buffer per partition's store, in MiB: at most two of them (one being "
     "written, one being flushed to disk).",
     TL_CFG_FIELD(tl_app_cfg, memtable_mb)},
    {"state.block.cache.mb", TL_CT_INT, "32", 1, 1048576,
     "RocksDB block cache shared by every store of the process, in MiB; it also holds the "
     "index and filter blocks of the state files, so that they do not grow with the users.",
     TL_CFG_FIELD(tl_app_cfg, block_cache_mb)},
    {"state.flush.interval.ms", TL_CT_INT, "10000", 0, 3600000,
     "State is written to RocksDB at the first commit after this interval (or earlier when "
     "the cache is over budget, or the records changed since hold a quarter of it). After a crash, a partition is reprocessed from the "
     "offset its state was last written at: longer intervals mean fewer writes and more "
     "reprocessing.",
     TL_CFG_FIELD(tl_app_cfg, state_flush_ms)},
    {"batch.max.events", TL_CT_INT, "100000", 1, 10000000,
     "Most events processed between two commits. At a steady input rate commit.interval.ms "
     "decides; this bounds a transaction (or batch) when there is a backlog: larger means "
     "fewer commits and a faster catch-up, and a longer wait for the events of a big "
     "transaction (docs/benchmarks.md).",
     TL_CFG_FIELD(tl_app_cfg, batch_max_events)},
    {"commit.interval.ms", TL_CT_INT, "100", 1, 600000,
     "How often outputs, state and offsets are committed. exactly_once: the time from one "
     "commit's start to the next, which bounds how long an event waits for its transaction "
     "to commit (events are processed as they arrive, inside the open transaction; a "
     "transaction stays open at least half of the interval, so commits slower than that "
     "lengthen the cycle); at_least_once: the longest a batch collects events before it is "
     "processed.",
     TL_CFG_FIELD(tl_app_cfg, commit_interval_ms)},
    {"shutdown.timeout.ms", TL_CT_INT, "30000", 0, 3600000,
     "After SIGTERM/SIGINT, the longest tally takes to finish the open batch, commit and "
     "close before it exits anyway (exit code 1; the next start resumes from the last "
     "commit). A second signal exits at once.",
     TL_CFG_FIELD(tl_app_cfg, shutdown_timeout_ms)},
    {"http.listen", TL_CT_STRING, "127.0.0.1:9464", TL_NORANGE,
     "host:port of the HTTP server for /metrics (Prometheus), /healthz, /readyz, "
     "/v1/users/{user_id} and /v1/attribution (tally run); 0.0.0.0 for every interface, port "
     "0 for any free port; empty: no server.",
     TL_CFG_FIELD(tl_app_cfg, http_listen)},
    {"health.stall.ms", TL_CT_INT, "60000", 1000, 86400000,
     "/healthz fails when the processing loop has not turned for this long (wedged).",
     TL_CFG_FIELD(tl_app_cfg, health_stall_ms)},
    {"health.max.failures", TL_CT_INT, "10", 1, 1000000,
     "/healthz fails after this many consecutive failed commits (aborted transactions).",
     TL_CFG_FIELD(tl_app_cfg, health_max_failures)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

static const tl_config_def ingest_config[] = {
    {"input.topics", TL_CT_STRING, "tally.events", TL_NORANGE,
     "The input topic, one (key = user_id, value = Confluent-framed BehaviorEvent).",
     TL_CFG_FIELD(tl_app_cfg, input_topics)},
    {"schema.dir", TL_CT_STRING, "", TL_NORANGE,
     "Directory of <id>-<name>.avsc files: writer schemas by Confluent schema id, and the "
     "ids of tally's output schemas when no registry is configured. tally's own schema files "
     "are taken from here when present, else from where they are installed "
     "(<prefix>/share/tally/schemas beside the binary; never the source tree). Empty: the "
     "installed ones.",
     TL_CFG_FIELD(tl_app_cfg, schema_dir)},
    {"schema.registry.url", TL_CT_STRING, "", TL_NORANGE,
     "Confluent-API schema registry; consulted for schema ids not in schema.dir.",
     TL_CFG_FIELD(tl_app_cfg, registry_url)},
    {"schema.registry.basic.auth.user.info", TL_CT_STRING, "", TL_NORANGE,
     "user:password for the schema registry (secret).",
     TL_CFG_FIELD(tl_app_cfg, registry_user_info)},
    {"schema.registry.ssl.ca.location", TL_CT_STRING, "", TL_NORANGE,
     "CA bundle for an https schema registry.", TL_CFG_FIELD(tl_app_cfg, registry_ca)},
    {"schema.registry.auto.register", TL_CT_BOOL, "true", TL_NORANGE,
     "With a registry: register tally's output schemas at start-up (under the subjects of "
     "schema.registry.subject.name.strategy). "
     "false: only look them up there, and stop if a subject lacks the schema.",
     TL_CFG_FIELD(tl_app_cfg, registry_auto_register)},
    {"schema.registry.subject.name.strategy", TL_CT_STRING, "topic", TL_NORANGE,
     "The subject a schema is registered under, as Confluent's serializers name it: topic "
     "(<topic>-value, TopicNameStrategy), record (<namespace>.<name>, RecordNameStrategy) or "
     "topic_record (<topic>-<namespace>.<name>, TopicRecordNameStrategy). For tally's outputs "
     "and for what tally produce registers.",
     TL_CFG_FIELD(tl_app_cfg, subject_strategy)},
    {"schema.registry.negative.cache.ms", TL_CT_INT, "300000", 1, 86400000,
     "How long a schema id found nowhere (the registry answered not found) or refused as "
     "unusable is remembered: its records go to the dead-letter topic without a new "
     "request until then.",
     TL_CFG_FIELD(tl_app_cfg, registry_negative_cache_ms)},
    {"schema.registry.negative.cache.max", TL_CT_INT, "10000", 1, 10000000,
     "Most schema ids remembered as not found or refused; a new one past this makes the "
     "oldest forgotten.",
     TL_CFG_FIELD(tl_app_cfg, registry_negative_cache_max)},
    {"schema.registry.max.lookups.per.second", TL_CT_INT, "20", 1, 1000000,
     "Registry lookups of schema ids not seen before, per second (bursts up to this "
     "many; time spent waiting for the registry does not count). Past it, a record with "
     "such an id goes to the dead-letter topic (unknown_schema, to be replayed) without a "
     "request, so a stream of bogus ids cannot stall a partition; while the registry is "
     "unreachable the record waits instead.",
     TL_CFG_FIELD(tl_app_cfg, registry_lookups_per_s)},
    {"ingest.ts.min", TL_CT_INT, "946684800000", -9007199254740992.0, 9007199254740992.0,
     "Events with ts (ms) below this go to the dead-letter topic (default 2000-01-01; "
     "at least -2^53).",
     TL_CFG_FIELD(tl_app_cfg, ts_min)},
    {"ingest.ts.max", TL_CT_INT, "4102444800000", -9007199254740992.0, 9007199254740992.0,
     "Events with ts (ms) above this go to the dead-letter topic (default 2100-01-01; "
     "at most 2^53).",
     TL_CFG_FIELD(tl_app_cfg, ts_max)},
    {"ingest.max.record.bytes", TL_CT_INT, "1048576", 16, 104857600,
     "Larger input records go to the dead-letter topic.",
     TL_CFG_FIELD(tl_app_cfg, max_record_bytes)},
    {"ingest.key.mismatch", TL_CT_ENUM, "dlq", TL_NORANGE,
     "An input record whose key is not its user_id: dlq (dead letter, reason key_mismatch) or "
     "process (processed in the partition it came in, splitting that user's state). Counted "
     "either way (tally_key_mismatches_total).",
     TL_CFG_ENUM(tl_app_cfg, key_mismatch, mismatches)},
    {"ingest.max.string.bytes", TL_CT_INT, "512", 16, 65536,
     "Events with a longer string field (event_id, user_id, item_id, category_id, channel) "
     "go to the dead-letter topic (reason bad_string, as do strings that are not UTF-8 or "
     "hold a NUL byte). Bounds every stored user record (docs/operations.md).",
     TL_CFG_FIELD(tl_app_cfg, max_string_bytes)},
    {"dlq.topic", TL_CT_STRING, "tally.dlq", TL_NORANGE,
     "Dead-letter topic: undecodable or invalid input, original bytes, reason in headers.",
     TL_CFG_FIELD(tl_app_cfg, dlq_topic)},
    {"dlq.max.share", TL_CT_DOUBLE, "0.5", 0, 1,
     "run --until-end exits 1 when more than this share of the records it consumed went to the "
     "dead-letter topic (1: never): a run that dead-letters most of its input is a mistake "
     "(wrong topic, wrong schema) more often than a result.",
     TL_CFG_FIELD(tl_app_cfg, dlq_max_share)},
    {"dlq.max.record.bytes", TL_CT_INT, "524288", 1024, 104857600,
     "A dead letter keeps at most this many bytes of the input value (and 4096 of its key): "
     "the rest is cut, the error says so and the header tally.truncated has the original "
     "sizes. Checked at start against the producer's message.max.bytes.",
     TL_CFG_FIELD(tl_app_cfg, dlq_max_record_bytes)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

static const tl_config_def rollup_config[] = {
    {"rollup.topic", TL_CT_STRING, "", TL_NORANGE,
     "Compacted topic of roll-up totals (run): per channel, channel group and category, hour "
     "and day, and method, the conversions, conversion value, touchpoints and purchases so far "
     "(schemas/9-rollup.avsc, key dim|window|window_start|dim_id), one answer across "
     "instances (docs/report.md). Created with as many partitions as the input. Set, the "
     "Markov chain is also one for every instance, its windows closed on a watermark "
     "(docs/attribution.md). Empty: none.",
     TL_CFG_FIELD(tl_app_cfg, rollup_topic)},
    {"rollup.commit.interval.ms", TL_CT_INT, "1000", 10, 600000,
     "How often the roll-up aggregator writes the totals that changed and commits (its "
     "transaction): the roll-up topic's freshness; shorter rewrites the totals more often.",
     TL_CFG_FIELD(tl_app_cfg, rollup_commit_interval_ms)},
    {"rollup.partials.topic", TL_CT_STRING, "", TL_NORANGE,
     "Internal topic of roll-up partials, keyed by row, aggregated by the member of the "
     "consumer group <group>-rollup owning the row's partition; empty: <group>-rollup-partials.",
     TL_CFG_FIELD(tl_app_cfg, partials_topic)},
    {"rollup.spend.topic", TL_CT_STRING, "", TL_NORANGE,
     "Topic of ad spend: each record's value one line date,channel,spend (YYYY-MM-DD, the "
     "channel as the events name it, an amount at least 0). With rollup.topic, joined into the "
     "roll-up topic's channel and channel-group day rows (spend, cost per conversion, return "
     "on ad spend; made with one partition if absent); without, into /v1/attribution's answer "
     "per channel and day. Empty: no spend.",
     TL_CFG_FIELD(tl_app_cfg, spend_topic)},
    {"rollup.channel.groups", TL_CT_STRING,
     "Paid Search=*search*,sem,cpc,ppc;Social=*social*,facebook,instagram,tiktok,twitter,x,"
     "linkedin,pinterest;Email=*mail*,newsletter;Display=display,banner*,cpm;"
     "Retargeting=retarget*,remarketing",
     TL_NORANGE,
     "Channel groups for the channel_group roll-up: Group=pattern,...;... matched in order, "
     "case-insensitive, '*' any characters; unmatched channels are Other, none (none).",
     TL_CFG_FIELD(tl_app_cfg, channel_groups)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

static const tl_config_def sink_config[] = {
    {"output.interest.topic", TL_CT_STRING, "tally.interest-deltas", TL_NORANGE,
     "Topic of interest_delta records (key = user_id).", TL_CFG_FIELD(tl_app_cfg, interest_topic)},
    {"output.attribution.topic", TL_CT_STRING, "tally.attributions", TL_NORANGE,
     "Topic of attribution records (key = user_id).", TL_CFG_FIELD(tl_app_cfg, attribution_topic)},
    {"output.credit.topic", TL_CT_STRING, "tally.credit-deltas", TL_NORANGE,
     "Topic of credit_delta records (key = dim:dim_id).", TL_CFG_FIELD(tl_app_cfg, credit_topic)},
    {"output.intent.topic", TL_CT_STRING, "tally.intent-deltas", TL_NORANGE,
     "Topic of intent_delta records (key = user_id): each user's purchase intent when it moves "
     "(intent.*). Empty: none published.",
     TL_CFG_FIELD(tl_app_cfg, intent_topic)},
    {"output.categories.topic", TL_CT_STRING, "tally.next-categories", TL_NORANGE,
     "Topic of next_categories records (key = user_id): each user's next-category "
     "distribution, embedding and categories like the user's, when they move (categories.*). "
     "Empty: none published.",
     TL_CFG_FIELD(tl_app_cfg, categories_topic)},
    {"sink.flush.timeout.ms", TL_CT_INT, "60000", 1, 3600000,
     "Longest wait for the broker to acknowledge a batch's outputs before the batch is "
     "retried.",
     TL_CFG_FIELD(tl_app_cfg, sink_flush_timeout_ms)},
    {NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL},
};

/* one component a line */
/* clang-format off */
const tl_config_component tl_app_config[] = {
    {"runtime", runtime_config},
    {"ingest", ingest_config},
    {"features", tl_features_config},
    {"attribution", tl_attr_config},
    {"model", tl_model_config},
    {"intent", tl_intent_config},
    {"categories", tl_categories_config},
    {"rollup", rollup_config},
    {"sink", sink_config},
    {NULL, NULL},
};
/* clang-format on */

void tl_app_runtime_opts(const tl_app_cfg *ac, tl_runtime_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->state_dir = ac->state_dir;
    o->cache_bytes = (size_t)ac->cache_mb << 20;
    o->memtable_bytes = (size_t)ac->memtable_mb << 20;
    o->block_cache_bytes = (size_t)ac->block_cache_mb << 20;
    o->batch_max_events = (int)ac->batch_max_events;
    o->batch_max_ms = (int)ac->commit_interval_ms;
    o->flush_timeout_ms = (int)ac->sink_flush_timeout_ms;
    o->state_flush_ms = (int)ac->state_flush_ms;
}

int tl_app_cfg_load(tl_app_cfg *ac, const tl_config *c, char *err, size_t errlen)
{
    memset(ac, 0, sizeof(*ac));
    const tl_config_def *const tables[] = {runtime_config, ingest_config, rollup_config,
                                           sink_config};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        if (tl_config_fill(c, tables[i], ac, err, errlen) != 0) return -1;
    return 0;
}

tl_app_cfg tl_app_cfg_of(const tl_config *c)
{
    tl_app_cfg ac;
    char err[256];
    if (tl_app_cfg_load(&ac, c, err, sizeof(err)) != 0) {   /* c is not the program's */
        fprintf(stderr, "tally: internal error: %s\n", err);
        exit(70);
    }
    return ac;
}
