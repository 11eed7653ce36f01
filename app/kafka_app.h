/*
 * kafka_app.h -- the Kafka application as `run` and `demo` use it: schema store,
 * codec, producer, sink, stages, runtime and consumer, set up and torn down in order.
 */
#ifndef TL_APP_KAFKA_APP_H
#define TL_APP_KAFKA_APP_H

#include "lib/config.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"
#include "engine/runtime.h"
#include "model/pipeline.h"
#include "sink/sinks.h"

typedef struct tl_run_report {
    tl_runtime_stats rt;
    tl_sink_counts out;
    tl_features_stats features;
    tl_attr_stats attribution;
    tl_model_report model;
    double seconds;
} tl_run_report;

/* Optional hook: wraps the Kafka sink (e.g. to look at records as they pass). */
typedef tl_sink *(*tl_sink_wrap_fn)(tl_sink *inner, void *arg);
/* Optional hook: runs after processing ends, before the stores close. */
typedef void (*tl_after_fn)(tl_runtime *rt, void *arg);

/* 0 on a clean end (signal, or end of input with until_end), 1 on error. */
int tl_kafka_app_run(const tl_config *c, int until_end, tl_sink_wrap_fn wrap, tl_after_fn after,
                     void *arg, tl_run_report *rep);

#endif
