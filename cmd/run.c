/*
 * run.c -- `tally run`: the Kafka pipeline until SIGINT/SIGTERM (or, with
 * --until-end, until the input is consumed to its end).
 */
#include "cmd.h"
#include "app/kafka_app.h"
#include "app/schemas.h"
#include "lib/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tally run [-c FILE] [-X key=value ...] [--until-end]\n"
    "\n"
    "Consumes BehaviorEvent records (Confluent-framed Avro) from input.topics as part of\n"
    "the consumer group kafka.group.id, keeps interest and journey state in state.dir,\n"
    "and publishes interest_delta and attribution records to output.interest.topic and\n"
    "output.attribution.topic; undecodable or invalid input goes to dlq.topic. With\n"
    "processing.guarantee=exactly_once (the default) outputs, state changelog and input\n"
    "offsets commit in one transaction every commit.interval.ms; with at_least_once input\n"
    "offsets are committed only after the outputs they caused are acknowledged.\n"
    "Serves /metrics, /healthz, /readyz and /v1/users/{user_id} on http.listen.\n"
    "SIGINT/SIGTERM finish and commit the open transaction, then exit 0 (or 1 after\n"
    "shutdown.timeout.ms); a second signal exits at once.\n"
    "\n"
    "  -c FILE        configuration file (key=value lines; see tally config list)\n"
    "  -X key=value   one configuration key; kafka.* keys go to librdkafka, e.g.\n"
    "                 -X kafka.bootstrap.servers=127.0.0.1:9092\n"
    "  --until-end    exit 0 once every assigned partition is consumed to its end\n";

int tl_cmd_run(int argc, char **argv)
{
    int until_end = 0;
    const tl_cmd_opt opts[] = {{"--until-end", NULL, &until_end}, {NULL, NULL, NULL}};
    tl_config *c = tl_cmd_kafka_config_parse(argc, argv, usage, opts);
    if (!c) return 2;
    const tl_app_cfg ac = tl_app_cfg_of(c);
    tl_run_report r;
    TL_LOG_INFO("run", "allocator=%s", tl_cmd_allocator());
    int rc = tl_kafka_app_run(c, until_end, NULL, NULL, NULL, &r);
    fprintf(stderr,
            "run: %" PRIu64 " events, %" PRIu64 " dead letters, %" PRIu64
            " interest deltas, %" PRIu64 " attributions in %.2f s\n",
            r.rt.events, r.rt.bad_total, r.out.interest, r.out.attribution, r.seconds);
    uint64_t consumed = r.rt.events + r.rt.bad_total;
    double share = consumed ? (double)r.rt.bad_total / (double)consumed : 0;
    if (rc == 0 && until_end && share > ac.dlq_max_share) {
        fprintf(stderr,
                "tally: %" PRIu64 " of the %" PRIu64 " records consumed (%.0f%%) went to the "
                "dead-letter topic, more than dlq.max.share=%g: see their tally.reason "
                "headers\n",
                r.rt.bad_total, consumed, 100 * share, ac.dlq_max_share);
        rc = 1;
    }
    if (r.model.examples)
        fprintf(stderr,
                "run: model version %" PRIu64 ", %" PRIu64 " examples, progressive AUC %.4f "
                "log-loss %.4f (running rate: %.4f, %.4f)\n",
                r.model.version, r.model.examples, r.model.auc, r.model.logloss,
                r.model.baseline_auc, r.model.baseline_logloss);
    tl_cmd_warn_no_negatives(&r.model);
    fprintf(stderr,
            "run: time in poll %.2f s, processing %.2f s, waiting for acks %.2f s, "
            "writing state %.2f s, committing %.2f s\n",
            r.rt.poll_ns / 1e9, r.rt.process_ns / 1e9, r.rt.sink_flush_ns / 1e9,
            r.rt.state_flush_ns / 1e9, r.rt.commit_ns / 1e9);
    tl_config_destroy(c);
    return rc;
}
