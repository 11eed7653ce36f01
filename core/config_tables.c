/*
 * config_tables.c -- every configuration key tally knows, one table per component.
 *
 * This file is the single source of truth for names, types, defaults, ranges and
 * docs: `tally config list` prints it, docs/configuration.md is generated from it, and
 * tl_config_set() rejects anything not in it. Keys under "kafka." are not listed: they
 * pass through to librdkafka. A range with min > max means unbounded.
 */
#include "config.h"
#include "config_tables.h"

#define NORANGE 1, 0

static const tl_config_def runtime_table[] = {
    {"log.level", TL_CT_STRING, "info", NORANGE, "error, warn, info or debug."},
    {"log.format", TL_CT_STRING, "key_value", NORANGE,
     "key_value (one line per event: ts level=... component=... message) or json (one "
     "object per line: ts, level, component, message). librdkafka's lines too."},
    {"log.file", TL_CT_STRING, "", NORANGE,
     "Append the log to this file (empty: stderr). SIGHUP reopens it (for logrotate)."},
    {"processing.guarantee", TL_CT_STRING, "exactly_once", NORANGE,
     "exactly_once: outputs, state changelog and input offsets commit together in one Kafka "
     "transaction every commit.interval.ms (docs/operations.md); at_least_once: outputs acknowledged before offsets "
     "are stored, state resumed from its own offsets."},
    {"instance.id", TL_CT_STRING, "", NORANGE,
     "This instance's stable name. Empty: the id kept in <state.dir>/instance.id (a random "
     "UUID written on first start), the same across restarts with that directory and distinct "
     "for two directories on one host. With exactly_once it makes the transactional id, so a "
     "restarted instance fences its previous incarnation."},
    {"state.changelog.topic", TL_CT_STRING, "", NORANGE,
     "Changelog of the user state (compacted; partition = input partition). Empty: "
     "<kafka.group.id>-users-changelog. Created if absent."},
    {"state.dir", TL_CT_STRING, "./tally-state", NORANGE,
     "Directory of the RocksDB state stores, one sub-directory per input partition."},
    {"state.cache.mb", TL_CT_INT, "256", 1, 1048576,
     "Memory for cached user state (profiles and journeys), in MiB, per partition's store. "
     "Clean entries past this are evicted after a commit; RocksDB's memory is separate "
     "(state.memtable.mb, state.block.cache.mb; docs/operations.md, \"Memory\")."},
    {"state.memtable.mb", TL_CT_INT, "64", 1, 65536,
     "RocksDB write buffer per partition's store, in MiB: at most two of them (one being "
     "written, one being flushed to disk)."},
    {"state.block.cache.mb", TL_CT_INT, "32", 1, 1048576,
     "RocksDB block cache shared by every store of the process, in MiB; it also holds the "
     "index and filter blocks of the state files, so that they do not grow with the users."},
    {"state.flush.interval.ms", TL_CT_INT, "10000", 0, 3600000,
     "State is written to RocksDB at the first commit after this interval (or earlier when "
     "the cache is over budget, or the records changed since hold a quarter of it). After a crash, a partition is reprocessed from the "
     "offset its state was last written at: longer intervals mean fewer writes and more "
     "reprocessing."},
    {"batch.max.events", TL_CT_INT, "100000", 1, 10000000,
     "Most events processed between two commits. At a steady input rate commit.interval.ms "
     "decides; this bounds a transaction (or batch) when there is a backlog: larger means "
     "fewer commits and a faster catch-up, and a longer wait for the events of a big "
     "transaction (docs/benchmarks.md)."},
    {"commit.interval.ms", TL_CT_INT, "100", 1, 600000,
     "How often outputs, state and offsets are committed. exactly_once: the longest a "
     "transaction stays open (events are processed as they arrive within it); "
     "at_least_once: the longest a batch collects events before it is processed."},
    {"shutdown.timeout.ms", TL_CT_INT, "30000", 0, 3600000,
     "After SIGTERM/SIGINT, the longest tally takes to finish the open batch, commit and "
     "close before it exits anyway (exit code 1; the next start resumes from the last "
     "commit). A second signal exits at once."},
    {"http.listen", TL_CT_STRING, "127.0.0.1:9464", NORANGE,
     "host:port of the HTTP server for /metrics (Prometheus), /healthz, /readyz, "
     "/v1/users/{user_id} and /v1/attribution (tally run); 0.0.0.0 for every interface, port "
     "0 for any free port; empty: no server."},
    {"health.stall.ms", TL_CT_INT, "60000", 1000, 86400000,
     "/healthz fails when the processing loop has not turned for this long (wedged)."},
    {"health.max.failures", TL_CT_INT, "10", 1, 1000000,
     "/healthz fails after this many consecutive failed commits (aborted transactions)."},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const tl_config_def ingest_table[] = {
    {"input.topics", TL_CT_STRING, "tally.events", NORANGE,
     "The input topic, one (key = user_id, value = Confluent-framed BehaviorEvent)."},
    {"schema.dir", TL_CT_STRING, "", NORANGE,
     "Directory of <id>-<name>.avsc files: writer schemas by Confluent schema id, and the "
     "ids of tally's output schemas when no registry is configured. tally's own schema files "
     "are taken from here when present, else from where they are installed "
     "(<prefix>/share/tally/schemas beside the binary; never the source tree). Empty: the "
     "installed ones."},
    {"schema.registry.url", TL_CT_STRING, "", NORANGE,
     "Confluent-API schema registry; consulted for schema ids not in schema.dir."},
    {"schema.registry.basic.auth.user.info", TL_CT_STRING, "", NORANGE,
     "user:password for the schema registry (secret)."},
    {"schema.registry.ssl.ca.location", TL_CT_STRING, "", NORANGE,
     "CA bundle for an https schema registry."},
    {"schema.registry.auto.register", TL_CT_BOOL, "true", NORANGE,
     "With a registry: register tally's output schemas at start-up (under the subjects of "
     "schema.registry.subject.name.strategy). "
     "false: only look them up there, and stop if a subject lacks the schema."},
    {"schema.registry.subject.name.strategy", TL_CT_STRING, "topic", NORANGE,
     "The subject a schema is registered under, as Confluent's serializers name it: topic "
     "(<topic>-value, TopicNameStrategy), record (<namespace>.<name>, RecordNameStrategy) or "
     "topic_record (<topic>-<namespace>.<name>, TopicRecordNameStrategy). For tally's outputs "
     "and for what tally produce registers."},
    {"schema.registry.negative.cache.ms", TL_CT_INT, "300000", 1, 86400000,
     "How long a schema id found nowhere (the registry answered not found) or refused as "
     "unusable is remembered: its records go to the dead-letter topic without a new "
     "request until then."},
    {"schema.registry.negative.cache.max", TL_CT_INT, "10000", 1, 10000000,
     "Most schema ids remembered as not found or refused; a new one past this makes the "
     "oldest forgotten."},
    {"schema.registry.max.lookups.per.second", TL_CT_INT, "20", 1, 1000000,
     "Registry lookups of schema ids not seen before, per second (bursts up to this "
     "many; time spent waiting for the registry does not count). Past it, a record with "
     "such an id goes to the dead-letter topic (unknown_schema, to be replayed) without a "
     "request, so a stream of bogus ids cannot stall a partition; while the registry is "
     "unreachable the record waits instead."},
    {"ingest.ts.min", TL_CT_INT, "946684800000", NORANGE,
     "Events with ts (ms) below this go to the dead-letter topic (default 2000-01-01)."},
    {"ingest.ts.max", TL_CT_INT, "4102444800000", NORANGE,
     "Events with ts (ms) above this go to the dead-letter topic (default 2100-01-01)."},
    {"ingest.max.record.bytes", TL_CT_INT, "1048576", 16, 104857600,
     "Larger input records go to the dead-letter topic."},
    {"ingest.key.mismatch", TL_CT_STRING, "dlq", NORANGE,
     "An input record whose key is not its user_id: dlq (dead letter, reason key_mismatch) or "
     "process (processed in the partition it came in, splitting that user's state). Counted "
     "either way (tally_key_mismatches_total)."},
    {"ingest.max.string.bytes", TL_CT_INT, "512", 16, 65536,
     "Events with a longer string field (event_id, user_id, item_id, category_id, channel) "
     "go to the dead-letter topic (reason bad_string, as do strings that are not UTF-8 or "
     "hold a NUL byte). Bounds every stored user record (docs/operations.md)."},
    {"dlq.topic", TL_CT_STRING, "tally.dlq", NORANGE,
     "Dead-letter topic: undecodable or invalid input, original bytes, reason in headers."},
    {"dlq.max.share", TL_CT_DOUBLE, "0.5", 0, 1,
     "run --until-end exits 1 when more than this share of the records it consumed went to the "
     "dead-letter topic (1: never): a run that dead-letters most of its input is a mistake "
     "(wrong topic, wrong schema) more often than a result."},
    {"dlq.max.record.bytes", TL_CT_INT, "524288", 1024, 104857600,
     "A dead letter keeps at most this many bytes of the input value (and 4096 of its key): "
     "the rest is cut, the error says so and the header tally.truncated has the original "
     "sizes. Checked at start against the producer's message.max.bytes."},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const tl_config_def features_table[] = {
    {"features.half.life.ms", TL_CT_DOUBLE, "86400000", 1, 1e15,
     "Half-life H of interest weights: a weight halves every H ms without new events."},
    {"features.alpha", TL_CT_DOUBLE, "0.5", 0, 1e9, "Weight of decayed frequency f in w."},
    {"features.beta", TL_CT_DOUBLE, "0.5", 0, 1e9, "Weight of decayed heat h in w."},
    {"features.heat.impression", TL_CT_DOUBLE, "0.1", 0, 1e9, "Heat of an IMPRESSION."},
    {"features.heat.browse", TL_CT_DOUBLE, "1", 0, 1e9, "Heat of a BROWSE."},
    {"features.heat.click", TL_CT_DOUBLE, "2", 0, 1e9, "Heat of a CLICK."},
    {"features.heat.favorite", TL_CT_DOUBLE, "3", 0, 1e9, "Heat of a FAVORITE."},
    {"features.heat.add_to_cart", TL_CT_DOUBLE, "4", 0, 1e9, "Heat of an ADD_TO_CART."},
    {"features.heat.purchase", TL_CT_DOUBLE, "5", 0, 1e9, "Heat of a PURCHASE."},
    {"features.dims", TL_CT_STRING, "category", NORANGE,
     "Interest dimensions, comma-separated: category, item, channel."},
    {"features.epsilon", TL_CT_DOUBLE, "1e-6", 0, 1e9,
     "Weights that decay below this are deleted."},
    {"features.max.interests", TL_CT_INT, "1000", 1, 100000,
     "Interest entries kept per user, all dimensions together: a new one past this replaces "
     "the weakest (by its weight at the event's time). Bounds every stored user record "
     "(docs/operations.md)."},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const tl_config_def attribution_table[] = {
    {"attribution.lookback.ms", TL_CT_INT, "604800000", 0, 1e15,
     "Touchpoints older than this before a purchase are not credited (default 7 days)."},
    {"attribution.max.touchpoints", TL_CT_INT, "50", 1, 1000,
     "At most this many of the most recent touchpoints are credited."},
    {"attribution.reset.on.conversion", TL_CT_BOOL, "true", NORANGE,
     "A purchase closes the journey: its touchpoints are not credited again."},
    {"attribution.time.decay.half.life.ms", TL_CT_DOUBLE, "604800000", 1, 1e15,
     "Half-life of the time_decay method's weights (default 7 days)."},
    {"attribution.touch.types", TL_CT_STRING, "IMPRESSION,BROWSE,CLICK,FAVORITE,ADD_TO_CART",
     NORANGE, "Event types that are touchpoints, comma-separated."},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const tl_config_def model_table[] = {
    {"model.enabled", TL_CT_BOOL, "true", NORANGE,
     "Learn the conversion model online and add model-based credits (shapley, removal) "
     "and p_conversion/p_baseline to every attribution."},
    {"model.ftrl.alpha", TL_CT_DOUBLE, "0.2", 1e-9, 1e6, "FTRL-Proximal learning rate alpha."},
    {"model.ftrl.beta", TL_CT_DOUBLE, "1", 0, 1e6, "FTRL-Proximal beta (smooths early rates)."},
    {"model.ftrl.l1", TL_CT_DOUBLE, "0", 0, 1e6,
     "FTRL-Proximal L1 regularisation: a weight stays 0 until its gradients add up to more than this (docs/attribution.md)."},
    {"model.ftrl.l2", TL_CT_DOUBLE, "0.1", 0, 1e6, "FTRL-Proximal L2 regularisation."},
    {"model.ipw", TL_CT_BOOL, "true", NORANGE,
     "Weight training examples by the inverse of their touchpoints' propensity, when the "
     "events carry one (docs/attribution.md)."},
    {"model.ipw.clip", TL_CT_DOUBLE, "20", 1, 1e6, "Largest inverse-propensity weight."},
    {"model.shapley.exact.max", TL_CT_INT, "12", 1, 20,
     "Exact Shapley values up to this many touchpoints; "
     "permutation sampling beyond."},
    {"model.shapley.samples", TL_CT_INT, "512", 2, 1000000,
     "Permutations sampled when Shapley values are not computed exactly."},
    {"model.warmup.examples", TL_CT_INT, "50", 0, 1e9,
     "Model credits only once the model has learned from this many purchases and as many "
     "control moments without one; before, shapley and removal are linear (model_status "
     "warming_up or no_negatives)."},
    {"model.control.interval.ms", TL_CT_INT, "21600000", 60000, 1e15,
     "The grid of control moments: every multiple of this much event time that a user lives "
     "through without a purchase is a negative example, with the journey as it was then "
     "(default 6 hours; docs/attribution.md)."},
    {"model.controls.max", TL_CT_INT, "256", 1, 1e6,
     "At most this many control moments are learned from one gap between a user's events; "
     "the rest are counted as skipped (tally_model_controls_skipped_total)."},
    {"model.credits.signed", TL_CT_BOOL, "false", NORANGE,
     "Signed model credits: a touchpoint the model says lowered p(purchase) keeps a negative "
     "share (shares in [-1, 1], absolute values summing to 1). Default: shares in [0, 1] of "
     "the gain, summing to 1."},
    {"model.credits.average.eta", TL_CT_INT, "1", 0, 16,
     "The model credits with its weights averaged over its versions, version t weighing about "
     "t^eta: 0 is the plain mean of the whole stream (steadiest, slowest to follow a change), "
     "1 puts 3/4 of the weight on the last half of the updates, larger forgets faster "
     "(docs/attribution.md)."},
    {"model.shared", TL_CT_BOOL, "true", NORANGE,
     "With rollup.topic set (run): one conversion model for every instance of the group. Each "
     "instance sends what its examples taught the model to the topic <group>-model, in the "
     "transaction of the outputs that made them, and adds the others' to its own model "
     "(docs/attribution.md, \"One model across instances\"). false: each instance learns "
     "only from its own partitions."},
    {"model.metrics.window", TL_CT_INT, "10000", 1, 4194304,
     "Examples in the window of the progressive log-loss and AUC."},
    {"rollup.topic", TL_CT_STRING, "", NORANGE,
     "Compacted topic of roll-up totals (run): per channel, channel group and category, hour "
     "and day, and method, the conversions, conversion value, touchpoints and purchases so far "
     "(schemas/9-rollup.avsc, key dim|window|window_start|dim_id), one answer across "
     "instances (docs/report.md). Created with as many partitions as the input. Set, the "
     "Markov chain is also one for every instance, its windows closed on a watermark "
     "(docs/attribution.md). Empty: none."},
    {"rollup.commit.interval.ms", TL_CT_INT, "1000", 10, 600000,
     "How often the roll-up aggregator writes the totals that changed and commits (its "
     "transaction): the roll-up topic's freshness; shorter rewrites the totals more often."},
    {"rollup.partials.topic", TL_CT_STRING, "", NORANGE,
     "Internal topic of roll-up partials, keyed by row, aggregated by the member of the "
     "consumer group <group>-rollup owning the row's partition; empty: <group>-rollup-partials."},
    {"rollup.spend.topic", TL_CT_STRING, "", NORANGE,
     "Topic of ad spend: each record's value one line date,channel,spend (YYYY-MM-DD, the "
     "channel as the events name it, an amount at least 0). With rollup.topic, joined into the "
     "roll-up topic's channel and channel-group day rows (spend, cost per conversion, return "
     "on ad spend; made with one partition if absent); without, into /v1/attribution's answer "
     "per channel and day. Empty: no spend."},
    {"rollup.channel.groups", TL_CT_STRING,
     "Paid Search=*search*,sem,cpc,ppc;Social=*social*,facebook,instagram,tiktok,twitter,x,"
     "linkedin,pinterest;Email=*mail*,newsletter;Display=display,banner*,cpm;"
     "Retargeting=retarget*,remarketing",
     NORANGE,
     "Channel groups for the channel_group roll-up: Group=pattern,...;... matched in order, "
     "case-insensitive, '*' any characters; unmatched channels are Other, none (none)."},
    {"markov.enabled", TL_CT_BOOL, "true", NORANGE,
     "Keep a Markov chain of closed journeys and publish credit deltas every window."},
    {"markov.window.ms", TL_CT_INT, "3600000", 1000, 1e15,
     "Event-time window after which Markov removal effects are recomputed."},
    {"markov.dim", TL_CT_STRING, "auto", NORANGE,
     "States of the chain: channel, category, or auto (channel when the events carry one)."},
    {"markov.bootstrap.samples", TL_CT_INT, "0", 0, 10000,
     "Bootstrap chains per closed window for an interval of each Markov credit (credit_lo, "
     "credit_hi); 0: none. Each costs one more solve of the chain."},
    {"markov.bootstrap.level", TL_CT_DOUBLE, "0.9", 0.5, 0.999,
     "Coverage of the Markov credits' bootstrap interval."},
    {"markov.order", TL_CT_INT, "1", 1, 4,
     "Order of the chain: its states are the last k touches (as ChannelAttribution's "
     "markov_model order); removing a channel removes every state it is part of."},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const tl_config_def sink_table[] = {
    {"output.interest.topic", TL_CT_STRING, "tally.interest-deltas", NORANGE,
     "Topic of interest_delta records (key = user_id)."},
    {"output.attribution.topic", TL_CT_STRING, "tally.attributions", NORANGE,
     "Topic of attribution records (key = user_id)."},
    {"output.credit.topic", TL_CT_STRING, "tally.credit-deltas", NORANGE,
     "Topic of credit_delta records (key = dim:dim_id)."},
    {"sink.flush.timeout.ms", TL_CT_INT, "60000", 1, 3600000,
     "Longest wait for the broker to acknowledge a batch's outputs before the batch is "
     "retried."},
    {NULL, 0, NULL, 0, 0, NULL},
};

const tl_config_component tl_config_components[] = {
    {"runtime", runtime_table},
    {"ingest", ingest_table},
    {"features", features_table},
    {"attribution", attribution_table},
    {"model", model_table},
    {"sink", sink_table},
    {NULL, NULL},
};
