/*
 * demo.c -- `tally demo`: the whole pipeline on an in-process broker (librdkafka's
 * mock cluster) with generated events, then a readable summary. Needs nothing but the
 * binary; exits by itself.
 *
 * Steps: start the mock cluster and create the topics; produce --events generated
 * events as framed Avro; run the Kafka pipeline until the input is consumed; print a
 * few users' top interests (read from the state stores), a few attributions with
 * their explanations (seen through a sink wrapper), and throughput.
 */
#define _XOPEN_SOURCE 700
#include "cmd.h"
#include "lib/log.h"
#include "lib/util.h"
#include "features/interest.h"
#include "ingest/codec.h"
#include "ingest/gen.h"
#include "ingest/schema_store.h"
#include "app/kafka_app.h"
#include "app/schemas.h"

#include <inttypes.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tally demo [--events N] [--users N] [--seed N] [-X key=value ...]\n"
    "\n"
    "Starts an in-process Kafka broker (librdkafka's mock cluster), produces N generated\n"
    "events (default 200000, 20000 users) to tally.events, runs the pipeline until they\n"
    "are consumed, and prints a summary: a few users' top interests, a few attributions\n"
    "with their explanations, and the throughput.\n";

#define DEMO_SHOWN 3

/* The last DEMO_SHOWN sentences of a kind of record, and how many were published. */
typedef struct last_said {
    char *s[DEMO_SHOWN];
    int n;
} last_said;

static void said(last_said *l, const char *user_id, const char *explanation)
{
    int k = l->n++ % DEMO_SHOWN;
    free(l->s[k]);
    tl_buf b = {0};
    tl_buf_printf(&b, "user %s: %s", user_id, explanation);
    l->s[k] = b.data;
}

static void print_said(last_said *l, const char *title)
{
    if (!l->n) return;
    printf("\n%s (the last records; %d published):\n", title, l->n);
    int from = l->n > DEMO_SHOWN ? l->n % DEMO_SHOWN : 0;
    for (int k = 0; k < DEMO_SHOWN && k < l->n; k++)
        printf("  %s\n", l->s[(from + k) % DEMO_SHOWN]);
}

typedef struct demo {
    tl_sink wrapper;
    tl_sink *inner;
    char *user[DEMO_SHOWN], *explanation[DEMO_SHOWN], *credits[DEMO_SHOWN];
    int n_shown;
    last_said intent, nextcat;   /* the last intent and next-category records */
    tl_features_cfg fcfg;
} demo;

static tl_rc w_interest(void *ctx, const tl_interest_delta *d)
{
    demo *dm = ctx;
    return dm->inner->emit_interest(dm->inner->ctx, d);
}

static tl_rc w_attribution(void *ctx, const tl_attribution *r)
{
    demo *dm = ctx;
    if (dm->n_shown < DEMO_SHOWN && r->n_touchpoints >= 3) {
        tl_buf b = {0};
        for (int m = 0; m < TL_M_COUNT; m++) {
            if (!r->has_method[m]) continue;
            tl_buf_printf(&b, "      %-15s", tl_method_name((tl_method)m));
            for (int i = 0; i < r->n_touchpoints && i < 8; i++)
                tl_buf_printf(&b, " %.2f", r->credits[m][i]);
            tl_buf_puts(&b, r->n_touchpoints > 8 ? " ...\n" : "\n");
        }
        dm->user[dm->n_shown] = tl_xstrdup(r->user_id);
        dm->explanation[dm->n_shown] = tl_xstrdup(r->explanation);
        dm->credits[dm->n_shown] = b.data;
        dm->n_shown++;
    }
    return dm->inner->emit_attribution(dm->inner->ctx, r);
}

static tl_rc w_credit(void *ctx, const tl_credit_delta *c)
{
    demo *dm = ctx;
    return dm->inner->emit_credit(dm->inner->ctx, c);
}

static tl_rc w_intent(void *ctx, const tl_intent_delta *d)
{
    demo *dm = ctx;
    said(&dm->intent, d->user_id, d->explanation);
    return dm->inner->emit_intent(dm->inner->ctx, d);
}

static tl_rc w_next_categories(void *ctx, const tl_next_categories *r)
{
    demo *dm = ctx;
    said(&dm->nextcat, r->user_id, r->explanation);
    return dm->inner->emit_next_categories(dm->inner->ctx, r);
}

static tl_rc w_dlq(void *ctx, const tl_dlq_record *r)
{
    demo *dm = ctx;
    return dm->inner->emit_dlq(dm->inner->ctx, r);
}

static tl_rc w_flush(void *ctx, int timeout_ms)
{
    demo *dm = ctx;
    return dm->inner->flush(dm->inner->ctx, timeout_ms);
}

static tl_rc w_progress(void *ctx, uint64_t *emitted, uint64_t *acked)
{
    demo *dm = ctx;
    return dm->inner->progress(dm->inner->ctx, emitted, acked);
}

static tl_sink *wrap(tl_sink *inner, void *arg)
{
    demo *dm = arg;
    dm->inner = inner;
    dm->wrapper =
        (tl_sink){.name = "demo",
                  .ctx = inner->ctx,
                  .emit_interest = w_interest,
                  .emit_attribution = w_attribution,
                  .emit_credit = w_credit,
                  .emit_dlq = w_dlq,
                  .emit_intent = inner->emit_intent ? w_intent : NULL,
                  .emit_next_categories = inner->emit_next_categories ? w_next_categories : NULL,
                  .flush = w_flush,
                  .progress = inner->progress ? w_progress : NULL};
    dm->wrapper.ctx = dm;
    return &dm->wrapper;
}

static int by_weight_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

static void show_profiles(tl_runtime *rt, void *arg)
{
    demo *dm = arg;
    printf("\nTop interests (weight w = alpha*f + beta*h, as of each user's latest event):\n");
    for (int k = 0; k < dm->n_shown; k++) {
        tl_user *u = NULL;
        for (int p = 0; p < 64 && !u; p++) {
            tl_store *s = tl_runtime_store(rt, p);
            if (s) u = tl_store_peek(s, dm->user[k]);
        }
        if (!u || u->n_ent == 0) continue;
        int64_t now = 0;
        for (int i = 0; i < u->n_ent; i++)
            if (u->ent[i].t > now) now = u->ent[i].t;
        double(*w)[2] = tl_xcalloc((size_t)u->n_ent, sizeof(*w));
        for (int i = 0; i < u->n_ent; i++) {
            const tl_interest *e = &u->ent[i];
            w[i][0] = (dm->fcfg.alpha * e->f + dm->fcfg.beta * e->h) *
                tl_decay((double)(now - e->t), dm->fcfg.half_life_ms);
            w[i][1] = i;
        }
        qsort(w, (size_t)u->n_ent, sizeof(*w), by_weight_desc);
        printf("  user %s:", u->user_id);
        for (int i = 0; i < u->n_ent && i < 3; i++)
            printf("%s %s %s (%.2f)", i ? "," : "", tl_dim_name(u->ent[(int)w[i][1]].dim),
                   u->ent[(int)w[i][1]].id, w[i][0]);
        printf("\n");
        free(w);
    }
}

/* Produces the generated events to topic; 0 or -1. */
static int produce_events(const tl_config *c, rd_kafka_t *rk, const char *topic,
                          const tl_gen_params *gp)
{
    tl_schema_store *store = NULL;
    tl_codec *codec = tl_app_codec_new(c, &store);
    if (!codec) {
        tl_schema_store_destroy(store);
        return -1;
    }
    tl_source *src = tl_gen_source_new(gp);
    tl_batch b;
    tl_batch_init(&b);
    tl_buf buf = {0};
    int prc, rc = 0;
    do {
        prc = src->poll(src->ctx, &b, 10000, 0);
        for (int i = 0; i < b.n && rc == 0; i++) {
            tl_buf_clear(&buf);
            tl_codec_encode_event(codec, TL_EVENT_SCHEMA_ID, &b.events[i], &buf);
            rd_kafka_resp_err_t e;
            while ((e = rd_kafka_producev(
                        rk, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_KEY(b.events[i].user_id, strlen(b.events[i].user_id)),
                        RD_KAFKA_V_VALUE(buf.data, buf.len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
            if (e) rc = -1;
        }
    } while (prc == TL_SRC_OK && rc == 0);
    if (rc == 0 && rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) rc = -1;
    tl_buf_free(&buf);
    tl_batch_destroy(&b);
    tl_gen_source_destroy(src);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    return rc;
}

typedef struct demo_args {
    tl_gen_params gp;
} demo_args;

static int demo_opt(void *arg, int argc, char **argv, int *i)
{
    demo_args *a = arg;
    if (strcmp(argv[*i], "--events") && strcmp(argv[*i], "--users") && strcmp(argv[*i], "--seed"))
        return 0;
    if (*i + 1 >= argc) {
        tl_cmd_usage_error(usage, "option %s needs a value", argv[*i]);
        return -1;
    }
    unsigned long long v = strtoull(argv[*i + 1], NULL, 10);
    if (!strcmp(argv[*i], "--events")) a->gp.n_events = v;
    else if (!strcmp(argv[*i], "--users")) a->gp.n_users = (uint32_t)v;
    else a->gp.seed = v;
    (*i)++;
    return 1;
}

int tl_cmd_demo(int argc, char **argv)
{
    demo_args a;
    tl_gen_params_default(&a.gp);
    a.gp.n_events = 200000;
    a.gp.n_users = 20000;
    tl_config *c = tl_cmd_config_parse(argc, argv, usage, demo_opt, &a);
    if (!c) return 2;
    const tl_app_cfg ac = tl_app_cfg_of(c);
    char err[512], tmpdir[] = "/tmp/tally-demo-XXXXXX";
    int rc = 1;
    demo dm;
    memset(&dm, 0, sizeof(dm));
    if (tl_gen_params_check(&a.gp, err, sizeof(err)) != 0) {
        tl_config_destroy(c);
        return tl_cmd_usage_error(usage, "%s", err);
    }
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "tally: cannot create a temporary directory\n");
        tl_config_destroy(c);
        return 1;
    }
    if (tl_log_level == TL_LOG_INFO) tl_log_level = TL_LOG_WARN;   /* keep the summary readable */

    /* The mock cluster lives inside this producer handle until it is destroyed. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_log_cb(conf, tl_app_kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "tally: cannot start the in-process broker: %s\n", err);
        rd_kafka_conf_destroy(conf);
        goto done;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    const char *topics[] = {
        "tally.events", "tally.interest-deltas", "tally.attributions",   "tally.credit-deltas",
        "tally.dlq",    "tally.intent-deltas",   "tally.next-categories"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        rd_kafka_mock_topic_create(mc, topics[i], i == 0 ? 4 : 4, 1);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

    printf("tally demo: in-process broker at %s; producing %" PRIu64 " generated events "
           "(%u users) to tally.events ...\n",
           bootstrap, a.gp.n_events, a.gp.n_users);
    fflush(stdout);
    if (produce_events(c, rk, "tally.events", &a.gp) != 0) {
        fprintf(stderr, "tally: producing the demo events failed\n");
        goto done;
    }
    if (tl_config_set(c, "kafka.bootstrap.servers", bootstrap, "demo", err, sizeof(err)) ||
        tl_config_set(c, "kafka.group.id", "tally-demo", "demo", err, sizeof(err)) ||
        /* librdkafka's mock cluster does not keep transactional offsets: the in-process
         * demo runs at-least-once (the tests prove exactly-once on a real broker). */
        tl_config_set(c, "processing.guarantee", "at_least_once", "demo", err, sizeof(err)) ||
        tl_config_set(c, "state.dir", tmpdir, "demo", err, sizeof(err)) ||
        /* the purchase intent and the next categories are off by default (their cost); the
         * demo shows them */
        tl_config_set(c, "intent.enabled", "true", "demo", err, sizeof(err)) ||
        tl_config_set(c, "categories.enabled", "true", "demo", err, sizeof(err)) ||
        /* a free port, so the demo runs beside a tally that serves the default one */
        (!strcmp(ac.http_listen, "127.0.0.1:9464") &&
         tl_config_set(c, "http.listen", "127.0.0.1:0", "demo", err, sizeof(err)))) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    if (tl_features_cfg_load(&dm.fcfg, c, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally: %s\n", err);
        goto done;
    }
    printf("running the pipeline: ingest -> features -> attribution -> sink ...\n");
    fflush(stdout);
    tl_run_report r;
    if (tl_kafka_app_run(c, 1, wrap, show_profiles, &dm, &r) != 0) goto done;

    printf("\nAttributions (credits per touchpoint, in journey order; shapley and removal come "
           "from the online model):\n");
    for (int k = 0; k < dm.n_shown; k++)
        printf("  user %s: %s\n%s", dm.user[k], dm.explanation[k], dm.credits[k]);
    print_said(&dm.intent, "Purchase intent");
    print_said(&dm.nextcat, "Next categories");
    double busy = (double)r.rt.busy_ns / 1e9;
    printf("\nThroughput: %" PRIu64 " events in %.2f s of processing = %.0f events/s (%.2f s "
           "in all, with joining the group and draining)\n"
           "Outputs:    %" PRIu64 " interest deltas, %" PRIu64 " attributions (%" PRIu64
           " purchases, %" PRIu64 " without touchpoints), %" PRIu64 " dead letters\n",
           r.rt.events, busy, busy > 0 ? (double)r.rt.events / busy : 0.0, r.seconds,
           r.out.interest, r.out.attribution, r.attribution.purchases, r.attribution.no_touchpoints,
           r.rt.bad_total);
    if (r.model.examples)
        printf("Model:      %" PRIu64 " journeys learned (%" PRIu64
               " ended in a purchase), version %" PRIu64
               "; progressive AUC %.3f and log-loss %.3f against %.3f and %.3f for the "
               "running conversion rate\n",
               r.model.examples, r.model.positives, r.model.version, r.model.auc, r.model.logloss,
               r.model.baseline_auc, r.model.baseline_logloss);
    if (r.model.markov_windows)
        printf("Markov:     %" PRIu64 " hourly windows closed, %" PRIu64
               " credit deltas published\n",
               r.model.markov_windows, r.model.credit_deltas);
    rc = r.rt.events == a.gp.n_events ? 0 : 1;
    if (rc)
        fprintf(stderr, "tally: expected %" PRIu64 " events, processed %" PRIu64 "\n",
                a.gp.n_events, r.rt.events);
done:
    for (int k = 0; k < dm.n_shown; k++) {
        free(dm.user[k]);
        free(dm.explanation[k]);
        free(dm.credits[k]);
    }
    for (int k = 0; k < DEMO_SHOWN; k++) {
        free(dm.intent.s[k]);
        free(dm.nextcat.s[k]);
    }
    if (rk) rd_kafka_destroy(rk);
    tl_rmtree(tmpdir);
    tl_config_destroy(c);
    return rc;
}
