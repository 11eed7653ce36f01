/*
 * schemas.h -- the Avro schemas a deployment uses (schema.dir, schema.registry.*).
 */
#ifndef TL_APP_SCHEMAS_H
#define TL_APP_SCHEMAS_H

#include "lib/config.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"

#include <stddef.h>

/* The schema store (schema.dir, schema.registry.*) and a codec for BehaviorEvent over
 * it; both to be destroyed by the caller. NULL with the error printed. */
tl_codec *tl_app_codec_new(const tl_config *c, tl_schema_store **store);

/* Where tally's own schema files are installed: beside the binary in a build tree
 * (<bin>/schemas), <bin>/../share/tally/schemas, or the configured prefix's
 * share/tally/schemas; never the source tree. NULL, with a message naming the places
 * tried, when none has them. */
const char *tl_app_installed_schemas(void);
/* The schema directory of the writer-schema store: schema.dir; else, without a registry,
 * the installed one, and with a registry none ("": the registry is the authority). */
const char *tl_app_schema_dir(const tl_config *c);
/* The path of one of tally's schema files: in schema.dir when it is there, else the
 * installed one. 0, or -1 (message printed) when not installed. */
int tl_app_schema_path(const tl_config *c, const char *name, char *out, size_t n);

/* The registry subject of schema_json (an Avro record) written to topic, by
 * schema.registry.subject.name.strategy: topic, record or topic_record, as Confluent's
 * serializers name them. 0, or -1 with err. */
int tl_app_subject(const tl_config *c, const char *topic, const char *schema_json, char *out,
                   size_t n, char *err, size_t errlen);
/* schema.registry.subject.name.strategy as one of these, or -1 with err. */
enum {
    TL_SUBJECT_TOPIC,
    TL_SUBJECT_RECORD,
    TL_SUBJECT_TOPIC_RECORD
};
int tl_app_subject_strategy(const tl_config *c, char *err, size_t errlen);

/* Reads one of tally's schema files (tl_app_schema_path) into a new string; NULL if it
 * cannot. */
char *tl_app_read_schema(const tl_config *c, const char *name);

#endif
