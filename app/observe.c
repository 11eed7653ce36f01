/*
 * observe.c -- the HTTP endpoints of `tally run` and the statistics tick (observe.h).
 *
 * Threads: the tick runs on the processing thread and is the only reader of the
 * source, sink and pipeline statistics; it copies them into prom.h metrics, which the
 * HTTP threads render (four of them, lib/http.c; prom.h takes its lock to render). They
 * read users through tl_runtime_read_user (RocksDB, under the runtime's store lock),
 * health from prom.h's atomics, and /v1/attribution from Kafka, with a consumer of its
 * own per request (no state shared with the processing thread but the configuration,
 * which is read-only while the run lasts).
 */
#include "observe.h"
#include "config.h"
#include "report.h"
#include "schemas.h"
#include "topic_read.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "features/profile.h"
#include "engine/changelog.h"
#include "ingest/kafka_source.h"
#include "model/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBS_MAX_PARTS 1024
#define OBS_TOP_CREDITS 20

struct tl_observe {
    tl_http *http;
    const tl_config *c;   /* the run's, which outlives this */
    tl_app_cfg ac;        /* its settings (strings: c's) */
    int64_t stall_ms;
    int max_failures;
    /* set by attach (before the run), cleared by detach (after it) */
    _Atomic(tl_runtime *) rt;
    tl_source *src;
    tl_sink *sink;
    tl_pipeline *p;
    char *topic;
    atomic_int joined, stopping;
    /* lag series shown at the last tick, by partition */
    tl_prom_series *lag[OBS_MAX_PARTS];
    tl_prom_series *credit[OBS_TOP_CREDITS];
    char *out_topics[6];   /* interest, attribution, credit, dead-letter, intent and next
                            * categories topics (the
                            * last NULL when none) */
};

static const char *not_ready(tl_observe *o, char *buf, size_t len);

/* --- the tick ------------------------------------------------------------------------ */

static void set_count(const char *name, const char *help, uint64_t v, const char *k, const char *lv)
{
    tl_prom_counter_set(tl_prom_counter(name, help, k, lv, NULL), v);
}

static void tick_outputs(tl_observe *o)
{
    tl_sink_counts c;
    tl_sink_counts_get(o->sink, &c);
    const char *h = "Output records produced, by topic and kind.";
    static const char *const kind[6] = {"interest_delta", "attribution",  "credit_delta",
                                        "dead_letter",    "intent_delta", "next_categories"};
    const uint64_t n[6] = {c.interest, c.attribution, c.credit, c.dlq, c.intent, c.next_categories};
    for (int i = 0; i < 6; i++) {
        if (!o->out_topics[i]) continue;
        tl_prom_counter_set(tl_prom_counter("tally_outputs_total", h, "topic", o->out_topics[i],
                                            "output", kind[i], NULL),
                            n[i]);
    }
    for (int m = 0; m < TL_M_COUNT; m++)
        set_count("tally_attributions_total", "Attribution records produced, by method they carry.",
                  c.by_method[m], "method", tl_method_name((tl_method)m));
}

static void tick_lag(tl_observe *o)
{
    int32_t parts[OBS_MAX_PARTS];
    int64_t lag[OBS_MAX_PARTS];
    int n = tl_kafka_source_lag(o->src, parts, lag, OBS_MAX_PARTS);
    tl_prom_series *seen[OBS_MAX_PARTS] = {0};
    for (int i = 0; i < n; i++) {
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", (int)parts[i]);
        tl_prom_series *s =
            tl_prom_gauge("tally_consumer_lag_records",
                          "Records in the partition not processed yet (high watermark "
                          "minus the next offset to process).",
                          "topic", o->topic, "partition", ps, NULL);
        tl_prom_set(s, lag[i] >= 0 ? (double)lag[i] : NAN);
        if (parts[i] < OBS_MAX_PARTS) seen[parts[i]] = s;
        /* Shown for every owned partition, 0 unless a restore from the changelog is under
         * way (ingest/kafka_changelog.c sets it then): also without exactly_once, which has none. */
        (void)tl_changelog_remaining(parts[i]);
    }
    for (int p = 0; p < OBS_MAX_PARTS; p++) {
        if (o->lag[p] && !seen[p]) tl_prom_hide(o->lag[p]);
        o->lag[p] = seen[p];
    }
    tl_prom_set(
        tl_prom_gauge("tally_assigned_partitions", "Input partitions this instance owns.", NULL),
        n);
    uint64_t rebalances = tl_kafka_source_rebalances(o->src);
    tl_prom_counter_set(tl_prom_counter("tally_rebalances_total",
                                        "Rebalance callbacks served (assignments and revocations).",
                                        NULL),
                        rebalances);
    if (rebalances > 0) atomic_store(&o->joined, 1);
}

static void tick_state(tl_runtime *rt)
{
    uint64_t cached = 0, written = 0, keys = 0, sst = 0, mem = 0;
    size_t bytes = 0, budget = 0;
    for (int p = 0; p < OBS_MAX_PARTS; p++) {
        tl_store *s = tl_runtime_store(rt, p);
        if (!s) continue;
        tl_store_stats st;
        tl_store_stats_get(s, &st);
        cached += st.users_cached;
        written += st.users_written;
        bytes += st.cache_bytes;
        budget += st.cache_budget;
        uint64_t k, f, m;
        tl_store_rocksdb_stats(s, &k, &f, &m);
        keys += k;
        sst += f;
        mem += m;
    }
    tl_prom_set(tl_prom_gauge("tally_state_keys",
                              "RocksDB's estimate of the keys in the state stores.", NULL),
                (double)keys);
    tl_prom_set(
        tl_prom_gauge("tally_state_sst_bytes", "Bytes of the state stores' SST files.", NULL),
        (double)sst);
    tl_prom_set(
        tl_prom_gauge("tally_rocksdb_memory_bytes",
                      "RocksDB memory of the state stores: memtables, table readers, block cache.",
                      NULL),
        (double)mem);
    tl_prom_set(
        tl_prom_gauge("tally_state_cached_users", "User records in the state caches.", NULL),
        (double)cached);
    tl_prom_set(tl_prom_gauge("tally_state_cache_bytes", "Memory held by the state caches.", NULL),
                (double)bytes);
    tl_prom_set(tl_prom_gauge("tally_state_cache_budget_bytes",
                              "The state caches' budget: state.cache.mb per store, less what "
                              "they give up while the process is over its memory bound.",
                              NULL),
                (double)budget);
    tl_prom_counter_set(
        tl_prom_counter("tally_state_writes_total", "User records written to RocksDB.", NULL),
        written);
}

static void tick_model(tl_observe *o)
{
    if (!o->p->model) return;
    tl_model_report r;
    tl_model_report_get(o->p->model, &r);
    tl_prom_set(tl_prom_gauge("tally_model_auc",
                              "Progressive-validation AUC of the purchase model (metrics window).",
                              NULL),
                r.auc);
    tl_prom_set(
        tl_prom_gauge("tally_model_log_loss",
                      "Progressive-validation log-loss of the purchase model (metrics window).",
                      NULL),
        r.logloss);
    tl_prom_set(tl_prom_gauge("tally_model_baseline_log_loss",
                              "Log-loss of the running purchase rate over the same window.", NULL),
                r.baseline_logloss);
    tl_prom_counter_set(tl_prom_counter("tally_model_examples_total",
                                        "Examples the purchase model learned from: purchases "
                                        "and control moments.",
                                        NULL),
                        r.examples);
    tl_prom_counter_set(tl_prom_counter("tally_model_shared_updates_total",
                                        "Model updates of the other instances added to this "
                                        "one's model (model.shared).",
                                        NULL),
                        r.shared_records);
    tl_prom_counter_set(tl_prom_counter("tally_model_shared_examples_total",
                                        "Examples the other instances learned from, added to "
                                        "this one's model with their updates.",
                                        NULL),
                        r.shared_examples);
    tl_prom_counter_set(tl_prom_counter("tally_model_shared_bad_records_total",
                                        "Records of the model topic that did not decode "
                                        "(skipped).",
                                        NULL),
                        r.shared_bad);
    if (o->p->icfg.enabled) {   /* the purchase intent's calibration (model/intent.h) */
        tl_prom_counter_set(
            tl_prom_counter("tally_intent_outcomes_total",
                            "Scored moments whose purchase intent window is over, "
                            "learned by the calibration, by whether the user bought.",
                            "bought", "true", NULL),
            r.intent_positives);
        tl_prom_counter_set(
            tl_prom_counter("tally_intent_outcomes_total",
                            "Scored moments whose purchase intent window is over, "
                            "learned by the calibration, by whether the user bought.",
                            "bought", "false", NULL),
            r.intent_outcomes - r.intent_positives);
        tl_prom_set(tl_prom_gauge("tally_intent_auc",
                                  "Progressive AUC of the purchase intents against their outcomes "
                                  "(the last 10000).",
                                  NULL),
                    r.intent_auc);
        tl_prom_set(tl_prom_gauge("tally_intent_log_loss",
                                  "Progressive log-loss of the purchase intents against their "
                                  "outcomes (the last 10000).",
                                  NULL),
                    r.intent_logloss);
    }
    tl_cat_model *cm = tl_model_categories(o->p->model);
    if (cm) {   /* the category embeddings (model/categories.h) */
        tl_cat_stats cs;
        tl_cat_model_stats(cm, &cs);
        const char *hits = "Next events scored before learning from them whose category was "
                           "among the first listed (within 1 or 5), or was the user's last "
                           "category (the rule beside it).";
        tl_prom_set(tl_prom_gauge("tally_categories", "Categories with learned embeddings.", NULL),
                    (double)cs.categories);
        set_count("tally_categories_unlearned_total",
                  "Events whose category was not learned: past categories.max.", cs.unlearned, NULL,
                  NULL);
        set_count("tally_categories_scored_total",
                  "Next events scored before learning from them (a user's events after its "
                  "first).",
                  cs.scored, NULL, NULL);
        set_count("tally_categories_hits_total", hits, cs.hit1, "within", "1");
        set_count("tally_categories_hits_total", hits, cs.hit5, "within", "5");
        set_count("tally_categories_hits_total", hits, cs.last_hit, "within", "last_category");
        tl_prom_set(tl_prom_gauge("tally_categories_external",
                                  "Categories whose embedding comes from "
                                  "categories.embeddings.topic.",
                                  NULL),
                    (double)cs.external);
        set_count("tally_categories_external_bad_records_total",
                  "Records of categories.embeddings.topic that were refused (dead-lettered).",
                  cs.external_bad, NULL, NULL);
    }
    tl_prom_counter_set(tl_prom_counter("tally_model_controls_skipped_total",
                                        "Control moments not learned: past model.controls.max "
                                        "in one gap between a user's events.",
                                        NULL),
                        r.controls_skipped);
    /* The model's weight of a fresh touch per (type, channel) it has seen: at most 64
     * series, never removed (the pairs stay). */
    tl_model_weights w[64];
    int nw = tl_model_channel_weights(o->p->model, w, 64);
    for (int i = 0; i < nw; i++)
        tl_prom_set(tl_prom_gauge("tally_model_channel_weight",
                                  "Log-odds of a purchase a fresh touch of this type on this "
                                  "channel adds, as the model has learned it.",
                                  "event_type", tl_event_type_name((tl_event_type)w[i].type),
                                  "channel", w[i].channel, NULL),
                    w[i].w[0]);
    /* Markov credit shares: the top OBS_TOP_CREDITS (bounded label cardinality). */
    const char *names[4096];
    double cr[4096];
    tl_dim dim;
    int n = tl_model_credits(o->p->model, &dim, names, cr, 4096);
    double total = 0;
    for (int i = 0; i < n; i++) total += cr[i];
    int top[OBS_TOP_CREDITS], k = 0;
    for (int i = 0; i < n; i++) {   /* insertion into a small sorted list */
        int j = k < OBS_TOP_CREDITS ? k++ : OBS_TOP_CREDITS;
        while (j > 0 && cr[top[j - 1]] < cr[i]) {
            if (j < OBS_TOP_CREDITS) top[j] = top[j - 1];
            j--;
        }
        if (j < OBS_TOP_CREDITS) top[j] = i;
    }
    tl_prom_series *now[OBS_TOP_CREDITS] = {0};
    for (int i = 0; i < k && total > 0; i++) {
        now[i] = tl_prom_gauge("tally_credit_share",
                               "Share of conversions credited by the Markov removal effect, top "
                               "channels or categories.",
                               "dim", tl_dim_name(dim), "dim_id", names[top[i]], NULL);
        tl_prom_set(now[i], cr[top[i]] / total);
    }
    for (int i = 0; i < OBS_TOP_CREDITS; i++) {
        int kept = 0;
        for (int j = 0; j < OBS_TOP_CREDITS; j++) kept |= o->credit[i] && o->credit[i] == now[j];
        if (o->credit[i] && !kept) tl_prom_hide(o->credit[i]);
    }
    memcpy(o->credit, now, sizeof(now));
}

void tl_observe_tick(void *arg)
{
    tl_observe *o = arg;
    tl_runtime *rt = atomic_load(&o->rt);
    if (!rt) return;
    const tl_runtime_stats *st = tl_runtime_stats_get(rt);
    tl_prom_counter_set(
        tl_prom_counter("tally_batches_total", "Batches (transactions) committed.", NULL),
        st->batches);
    tick_outputs(o);
    tick_lag(o);
    tick_state(rt);
    tick_model(o);
    char buf[128];
    tl_prom_set(tl_prom_gauge("tally_ready",
                              "1 when /readyz answers 200 (assigned, restored, not stopping).",
                              NULL),
                not_ready(o, buf, sizeof(buf)) ? 0 : 1);
}

/* --- HTTP ---------------------------------------------------------------------------- */

static int text(tl_buf *body, const char **type, int status, const char *msg)
{
    *type = "text/plain; charset=utf-8";
    tl_buf_puts(body, msg);
    tl_buf_putc(body, '\n');
    return status;
}

static int healthz(tl_observe *o, tl_buf *body, const char **type)
{
    int64_t since = tl_health_since_beat_ms();
    int fails = tl_health_failures();
    if (since > o->stall_ms) {
        tl_buf_printf(body, "unhealthy: the processing loop has not turned for %" PRId64 " ms\n",
                      since);
        return 503;
    }
    if (fails >= o->max_failures) {
        tl_buf_printf(body, "unhealthy: %d consecutive failed commits\n", fails);
        return 503;
    }
    return text(body, type, 200, "ok");
}

/* NULL when ready, else why not (into buf). */
static const char *not_ready(tl_observe *o, char *buf, size_t len)
{
    if (atomic_load(&o->stopping)) return "stopping";
    if (!atomic_load(&o->rt) || !atomic_load(&o->joined)) return "no partition assignment yet";
    double restoring = tl_prom_gauge_value(tl_changelog_restoring());
    if (restoring > 0) {
        snprintf(buf, len, "restoring %.0f partition(s) from the changelog", restoring);
        return buf;
    }
    return NULL;
}

static int readyz(tl_observe *o, tl_buf *body, const char **type)
{
    char buf[128];
    const char *why = not_ready(o, buf, sizeof(buf));
    if (!why) return text(body, type, 200, "ready");
    tl_buf_printf(body, "not ready: %s\n", why);
    return 503;
}

static void put_owned(tl_buf *b, const int32_t *owned, int n)
{
    tl_buf_puts(b, "\"owned_partitions\":[");
    for (int i = 0; i < n; i++) tl_buf_printf(b, "%s%d", i ? "," : "", (int)owned[i]);
    tl_buf_putc(b, ']');
}

/* id: the path's last segment, percent-decoded once already (by libmicrohttpd). */
static int user(tl_observe *o, const char *id, const tl_http_request *r, tl_buf *body,
                const char **type)
{
    *type = "application/json";
    tl_runtime *rt = atomic_load(&o->rt);
    char err[512];
    if (!*id) {
        tl_buf_puts(body, "{\"error\":\"bad user id in the path\"}\n");
        return 400;
    }
    if (!rt) {
        tl_buf_puts(body, "{\"error\":\"not processing yet\"}\n");
        return 503;
    }
    int64_t as_of = -1;
    int top = 10;
    const char *a = tl_http_arg(r, "as_of"), *t = tl_http_arg(r, "top");
    char *end;
    if (a && (as_of = strtoll(a, &end, 10), *end || as_of < 0)) {
        tl_buf_puts(body, "{\"error\":\"as_of: expected ms since the epoch\"}\n");
        return 400;
    }
    if (t && (top = (int)strtol(t, &end, 10), *end || top < 0)) {
        tl_buf_puts(body, "{\"error\":\"top: expected a count (0: all)\"}\n");
        return 400;
    }
    tl_buf rec = {0};
    int32_t partition = -1, owned[OBS_MAX_PARTS];
    int64_t stream_time = 0;
    int n_owned = 0;
    int found = tl_runtime_read_user(rt, id, &rec, &partition, &stream_time, owned, OBS_MAX_PARTS,
                                     &n_owned, err, sizeof(err));
    int status = 200;
    if (found == 1) {
        if (as_of < 0) as_of = stream_time >= 0 ? -stream_time - 1 : -1; /* or the user's newest */
        if (tl_profile_render(&o->p->fcfg, id, partition, rec.data, rec.len, as_of, top, body, err,
                              sizeof(err)) != 0)
            found = -1;
        else tl_buf_putc(body, '\n');
    }
    if (found == 0) {
        /* Other instances' assignments are not known to a group member. */
        tl_buf_puts(
            body, "{\"error\":\"unknown user in the partitions this instance owns\",\"user_id\":");
        tl_json_put_str(body, id);
        tl_buf_putc(body, ',');
        put_owned(body, owned, n_owned);
        tl_buf_puts(body,
                    ",\"other_partitions\":\"owned by other members of the consumer group\"}\n");
        status = 404;
    } else if (found < 0) {
        body->len = 0;
        tl_buf_puts(body, "{\"error\":");
        tl_json_put_str(body, err);
        tl_buf_puts(body, "}\n");
        status = 500;
    }
    tl_buf_free(&rec);
    return status;
}

/* /v1/attribution: `tally report` (docs/report.md) over the roll-up topic when rollup.topic
 * is set, else over the attribution and credit-delta topics, read from the beginning to
 * their current end. Those are the committed outputs of every instance, so any instance
 * gives the same answer; the cost is a read of the topics per request
 * (docs/operations.md). */
static int attribution(tl_observe *o, const tl_http_request *r, tl_buf *body, const char **type)
{
    *type = "application/json";
    if (!atomic_load(&o->rt)) {
        tl_buf_puts(body, "{\"error\":\"not processing yet\"}\n");
        return 503;
    }
    tl_report_args a = {.by = tl_http_arg(r, "by"),
                        .window = tl_http_arg(r, "window"),
                        .from = tl_http_arg(r, "from"),
                        .to = tl_http_arg(r, "to"),
                        .methods = tl_http_arg(r, "methods"),
                        .format = tl_http_arg(r, "format"),
                        .min = tl_http_arg(r, "min_purchases"),
                        .groups = o->ac.channel_groups};
    if (!a.format) a.format = "json";
    char err[512] = "", buf[128];
    /* the parameters first: a bad one is 400 before Kafka is asked */
    if (tl_report_check(&a, err, sizeof(err)) != 0) {
        tl_buf_puts(body, "{\"error\":");
        tl_json_put_str(body, err);
        tl_buf_puts(body, "}\n");
        return 400;
    }
    const char *why = not_ready(o, buf, sizeof(buf));
    if (why) { /* the topics are read with the run's Kafka settings: once it has joined */
        tl_buf_puts(body, "{\"error\":");
        tl_json_put_str(body, why);
        tl_buf_puts(body, "}\n");
        return 503;
    }
    int status = 500;
    tl_schema_store *store = NULL;
    tl_codec *codec = tl_app_codec_new(o->c, &store);
    FILE *tmp = tmpfile(), *out = NULL, *sf = NULL;
    char *text = NULL;
    size_t len = 0;
    uint64_t records = 0;
    /* the roll-up topic when there is one: its totals, far fewer records than what they sum */
    const char *rollups = o->ac.rollup_topic;
    const char *topics[2] = {o->out_topics[1], o->out_topics[2]};
    if (!codec || !tmp) {
        snprintf(err, sizeof(err), "cannot read the output topics (schemas or a scratch file)");
        goto done;
    }
    /* of the roll-up topic, the rows of the answer's dimension and window kind (key
     * dim|window|...): the others are not even decoded */
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s|%s|", a.by ? a.by : "channel",
             a.window && !strcmp(a.window, "hour") ? "hour" : "day");
    if ((*rollups ? tl_app_read_keyed(o->c, store, rollups, prefix, 60000, tmp, &records, err,
                                      sizeof(err))
                  : tl_app_read_topics(o->c, store, topics, 2, 60000, tmp, &records, err,
                                       sizeof(err))) != 0)
        goto done;
    rewind(tmp);
    /* spend, where the answer is per channel and day (the report refuses it otherwise);
     * the roll-up topic's totals carry it already */
    const char *spend_topic = o->ac.spend_topic;
    int by_channel = !a.by || strcmp(a.by, "category") != 0;
    int by_day = !a.window || strcmp(a.window, "hour") != 0;
    if (*spend_topic && by_channel && by_day && !*rollups) {
        uint64_t rows = 0;
        if (!(sf = tmpfile())) {
            snprintf(err, sizeof(err), "cannot make a scratch file for the spend");
            goto done;
        }
        fputs("date,channel,spend\n", sf);
        if (tl_app_read_values(o->c, spend_topic, 60000, sf, &rows, err, sizeof(err)) != 0)
            goto done;
        rewind(sf);
        a.spend = spend_topic; /* names it in messages */
        a.spend_file = sf;
    }
    if (!(out = open_memstream(&text, &len))) goto done;
    int rc = tl_report_run(&a, tmp, "the output topics", out, NULL, err, sizeof(err));
    fclose(out);
    out = NULL;
    if (rc == 2) {
        status = 400;
        goto done;
    }
    if (rc == 1 && records) goto done; /* records, but none an attribution: not expected */
    status = 200; /* an empty answer when nothing has been attributed yet */
    tl_buf_append(body, text, len);
    *type = !strcmp(a.format, "html") ? "text/html; charset=utf-8"
        : !strcmp(a.format, "csv")    ? "text/csv; charset=utf-8"
        : !strcmp(a.format, "table")  ? "text/plain; charset=utf-8"
                                      : "application/json";
done:
    if (status != 200) {
        tl_buf_puts(body, "{\"error\":");
        tl_json_put_str(body, err[0] ? err : "cannot make the report");
        tl_buf_puts(body, "}\n");
    }
    if (out) fclose(out);
    free(text);
    if (tmp) fclose(tmp);
    if (sf) fclose(sf);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    return status;
}

static int handle(void *arg, const char *path, const tl_http_request *r, tl_buf *body,
                  const char **type)
{
    tl_observe *o = arg;
    if (!strcmp(path, "/metrics")) {
        *type = "text/plain; version=0.0.4; charset=utf-8";
        tl_prom_render(body);
        return 200;
    }
    if (!strcmp(path, "/healthz")) return healthz(o, body, type);
    if (!strcmp(path, "/readyz")) return readyz(o, body, type);
    if (!strncmp(path, "/v1/users/", 10)) return user(o, path + 10, r, body, type);
    if (!strcmp(path, "/v1/attribution")) return attribution(o, r, body, type);
    return text(body, type, 404,
                "not found: try /metrics, /healthz, /readyz, /v1/users/{user_id} "
                "or /v1/attribution");
}

/* --- life cycle ---------------------------------------------------------------------- */

tl_observe *tl_observe_start(const tl_config *c, char *err, size_t errlen)
{
    const tl_app_cfg ac = tl_app_cfg_of(c);
    tl_observe *o = tl_xcalloc(1, sizeof(*o));
    tl_prom_set(tl_prom_gauge("tally_build_info", "tally's version and librdkafka's; always 1.",
                              "version", TALLY_VERSION, "librdkafka", rd_kafka_version_str(), NULL),
                1);
    o->c = c;
    o->ac = ac;
    o->stall_ms = ac.health_stall_ms;
    o->max_failures = (int)ac.health_max_failures;
    const char *listen = ac.http_listen;
    if (*listen) {
        o->http = tl_http_start(listen, handle, o, err, errlen);
        if (!o->http) {
            free(o);
            return NULL;
        }
        TL_LOG_INFO("http",
                    "listening on %s (port %d): /metrics /healthz /readyz /v1/users/{user_id} "
                    "/v1/attribution",
                    listen, tl_http_port(o->http));
    }
    return o;
}

void tl_observe_attach(tl_observe *o, tl_runtime *rt, tl_source *src, tl_sink *sink, tl_pipeline *p,
                       const char *topic, const char *const out_topics[6])
{
    for (int i = 0; i < 6; i++) {
        free(o->out_topics[i]);
        o->out_topics[i] = out_topics[i] ? tl_xstrdup(out_topics[i]) : NULL;
    }
    o->src = src;
    o->sink = sink;
    o->p = p;
    free(o->topic);
    o->topic = tl_xstrdup(topic);
    atomic_store(&o->rt, rt);
}

void tl_observe_detach(tl_observe *o)
{
    if (!o) return;
    atomic_store(&o->rt, NULL);
}

void tl_observe_stopping(tl_observe *o) { atomic_store(&o->stopping, 1); }

void tl_observe_stop(tl_observe *o)
{
    if (!o) return;
    tl_http_stop(o->http);
    free(o->topic);
    for (int i = 0; i < 6; i++) free(o->out_topics[i]);
    free(o);
}
