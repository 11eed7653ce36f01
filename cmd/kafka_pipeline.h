/*
 * kafka_pipeline.h -- the Kafka pipeline as `run` and `demo` use it: schema store,
 * codec, producer, sink, stages, runtime and consumer, set up and torn down in order.
 */
#ifndef TL_KAFKA_PIPELINE_H
#define TL_KAFKA_PIPELINE_H

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
int tl_kafka_pipeline_run(const tl_config *c, int until_end, tl_sink_wrap_fn wrap,
                          tl_after_fn after, void *arg, tl_run_report *rep);

/* The schema store (schema.dir, schema.registry.*) and a codec for BehaviorEvent over
 * it; both to be destroyed by the caller. NULL with the error printed. */
tl_codec *tl_cmd_codec_new(const tl_config *c, tl_schema_store **store);

/* Where tally's own schema files are installed: beside the binary in a build tree
 * (<bin>/schemas), <bin>/../share/tally/schemas, or the configured prefix's
 * share/tally/schemas; never the source tree. NULL, with a message naming the places
 * tried, when none has them. */
const char *tl_cmd_installed_schemas(void);
/* The schema directory of the writer-schema store: schema.dir; else, without a registry,
 * the installed one, and with a registry none ("": the registry is the authority). */
const char *tl_cmd_schema_dir(const tl_config *c);
/* The path of one of tally's schema files: in schema.dir when it is there, else the
 * installed one. 0, or -1 (message printed) when not installed. */
int tl_cmd_schema_path(const tl_config *c, const char *name, char *out, size_t n);

/* The registry subject of schema_json (an Avro record) written to topic, by
 * schema.registry.subject.name.strategy: topic, record or topic_record, as Confluent's
 * serializers name them. 0, or -1 with err. */
int tl_cmd_subject(const tl_config *c, const char *topic, const char *schema_json, char *out,
                   size_t n, char *err, size_t errlen);
/* schema.registry.subject.name.strategy as one of these, or -1 with err. */
enum {
    TL_SUBJECT_TOPIC,
    TL_SUBJECT_RECORD,
    TL_SUBJECT_TOPIC_RECORD
};
int tl_cmd_subject_strategy(const tl_config *c, char *err, size_t errlen);

/* Reads one of tally's schema files (tl_cmd_schema_path) into a new string; NULL if it
 * cannot. */
char *tl_cmd_read_schema(const tl_config *c, const char *name);

#endif
