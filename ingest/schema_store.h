/*
 * schema_store.h -- Confluent schema ids to Avro writer schemas, with a cache.
 *
 * Two backends, consulted in this order for an id:
 *   1. a local directory (config schema.dir): every file named "<id>-<anything>.avsc"
 *      holds the schema of id <id> (the repository's schemas/ directory is one);
 *   2. a Confluent-API schema registry (schema.registry.url):
 *      GET {url}/schemas/ids/{id} -> {"schema": "..."}.
 * Either may be absent (NULL or ""). A schema found once is cached for the life of
 * the store; an id found nowhere is remembered as missing for
 * TL_SCHEMA_NEGATIVE_TTL_MS, so a stream of records with a bogus id does not turn
 * into a stream of registry requests.
 *
 * Ownership: the avro_schema_t handed out by tl_schema_store_get() is owned by the
 * store and valid until tl_schema_store_destroy(); callers that keep it longer take
 * their own reference with avro_schema_incref().
 *
 * Threading: every function may be called from any thread; one mutex serialises
 * them (a registry request is made with the mutex held, so concurrent lookups of
 * the same new id cost one request).
 *
 * Errors follow event.h: one sentence in (err, errlen). Return codes are the
 * TL_SCHEMA_* values below so callers can tell "this record names a schema nobody
 * has" (dead-letter it) from "the registry is unreachable" (retry, do not
 * dead-letter good records).
 */
#ifndef TL_SCHEMA_STORE_H
#define TL_SCHEMA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <avro.h>

typedef struct tl_schema_store tl_schema_store;

enum {
    TL_SCHEMA_OK = 0,
    TL_SCHEMA_ERROR = -1,      /* transient or configuration: I/O, network, HTTP 5xx/401 */
    TL_SCHEMA_NOT_FOUND = -2,  /* the id (or, for register, the schema) exists nowhere */
    TL_SCHEMA_INVALID = -3     /* found, but not a usable Avro schema */
};

#define TL_SCHEMA_NEGATIVE_TTL_MS 30000
#define TL_SCHEMA_DEFAULT_TIMEOUT_MS 10000

typedef struct tl_schema_store_opts {
    const char *dir;           /* schema.dir, or NULL/"" */
    const char *registry_url;  /* schema.registry.url, or NULL/"" */
    const char *basic_auth;    /* schema.registry.basic.auth.user.info "user:password" */
    const char *ca_path;       /* schema.registry.ssl.ca.location */
    int timeout_ms;            /* per registry request; 0 = TL_SCHEMA_DEFAULT_TIMEOUT_MS */
    int lookup_only;           /* !schema.registry.auto.register: register() only looks up */
} tl_schema_store_opts;

/* Reads and parses every schema file of opts->dir (a bad or duplicate-id file is an
 * error naming it). Makes no registry request. NULL on error. */
tl_schema_store *tl_schema_store_new(const tl_schema_store_opts *opts, char *err, size_t errlen);
void tl_schema_store_destroy(tl_schema_store *s);

/* The writer schema of id. TL_SCHEMA_OK with *out set (borrowed, see above), or a
 * TL_SCHEMA_* error: NOT_FOUND reads "schema id 42 not found in schema.dir /x nor
 * at http://registry:8081". */
int tl_schema_store_get(tl_schema_store *s, int32_t id, avro_schema_t *out,
                        char *err, size_t errlen);

/* The id of an output schema. With a registry: POST {url}/subjects/{subject}/versions
 * (registering it if new); with opts.lookup_only, POST {url}/subjects/{subject}, which
 * registers nothing and gives TL_SCHEMA_NOT_FOUND (naming the subject) when the subject
 * or this schema under it is absent. Without a registry: the id of the schema.dir file
 * whose parsed schema equals schema_json (TL_SCHEMA_NOT_FOUND if none).
 * TL_SCHEMA_INVALID if schema_json is not an Avro schema. */
int tl_schema_store_register(tl_schema_store *s, const char *subject, const char *schema_json,
                             int *id_out, char *err, size_t errlen);

/* Registry HTTP requests made so far (for metrics and tests). */
uint64_t tl_schema_store_registry_requests(tl_schema_store *s);

#endif
