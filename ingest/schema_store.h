/*
 * schema_store.h -- Confluent schema ids to Avro writer schemas, with a cache.
 *
 * Two backends, consulted in this order for an id:
 *   1. a local directory (config schema.dir): every file named "<id>-<anything>.avsc"
 *      holds the schema of id <id> (the repository's schemas/ directory is one);
 *   2. a Confluent-API schema registry (schema.registry.url):
 *      GET {url}/schemas/ids/{id} -> {"schema": "..."}.
 * Either may be absent (NULL or ""). A schema found once is cached for the life of
 * the store. An id found nowhere (or found but refused) is remembered as such for
 * opts.negative_cache_ms in a table of at most opts.negative_cache_max ids (the oldest
 * is forgotten first), so a stream of records with a bogus id does not turn into a
 * stream of registry requests; and registry lookups of ids not in either cache are
 * rate-limited (opts.max_lookups_per_second, a token bucket holding one second's
 * worth): past the limit such an id is answered TL_SCHEMA_NOT_FOUND at once, without
 * a request, unless the registry's last answer was a transport failure, in which case
 * it is TL_SCHEMA_ERROR (retry), as any lookup is while the registry is down.
 *
 * Every schema handed out has passed tl_schema_check() (duplicate field names, enum
 * symbols, named types or union branches, invalid names, nesting deeper than
 * TL_SCHEMA_MAX_DEPTH, ...): avro-c accepts such schemas and then mishandles them, so a
 * schema failing it is TL_SCHEMA_INVALID, with a message naming the problem.
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
    TL_SCHEMA_NOT_FOUND = -2,  /* the id (or, for register, the schema) exists nowhere, or
                                * was not looked up (max_lookups_per_second) */
    TL_SCHEMA_INVALID = -3     /* found, but not a usable Avro schema */
};

#define TL_SCHEMA_DEFAULT_TIMEOUT_MS 10000
#define TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MS 300000
#define TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MAX 10000
#define TL_SCHEMA_DEFAULT_MAX_LOOKUPS_PER_SECOND 20
#define TL_SCHEMA_MAX_DEPTH 32      /* nested types (record, union, array, map) */
#define TL_SCHEMA_MAX_NODES 10000   /* types, fields and symbols in one schema */

typedef struct tl_schema_store_opts {
    const char *dir;           /* schema.dir, or NULL/"" */
    const char *registry_url;  /* schema.registry.url, or NULL/"" */
    const char *basic_auth;    /* schema.registry.basic.auth.user.info "user:password" */
    const char *ca_path;       /* schema.registry.ssl.ca.location */
    int timeout_ms;            /* per registry request; 0 = TL_SCHEMA_DEFAULT_TIMEOUT_MS */
    int lookup_only;           /* !schema.registry.auto.register: register() only looks up */
    /* schema.registry.negative.cache.ms; 0 = TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MS */
    int negative_cache_ms;
    /* schema.registry.negative.cache.max; 0 = TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MAX */
    int negative_cache_max;
    /* schema.registry.max.lookups.per.second; 0 = TL_SCHEMA_DEFAULT_MAX_LOOKUPS_PER_SECOND */
    double max_lookups_per_second;
    /* The clock of the negative cache and the rate limit, in ns; NULL = tl_mono_ns.
     * For tests. */
    int64_t (*clock_ns)(void *arg);
    void *clock_arg;
} tl_schema_store_opts;

/* Counters since tl_schema_store_new (the runtime turns them into metrics). */
typedef struct tl_schema_store_stats {
    uint64_t requests;            /* registry HTTP requests of any kind */
    uint64_t lookups;             /* GET /schemas/ids/{id} made by tl_schema_store_get */
    uint64_t not_found;           /* lookups the registry answered "not found" (404xx) */
    uint64_t lookup_errors;       /* lookups that failed (transport, 5xx, 401): retried */
    uint64_t invalid;             /* schemas refused: not Avro, or failing tl_schema_check */
    uint64_t negative_cache_hits; /* gets answered from a remembered miss or refusal */
    uint64_t rate_limited;        /* gets of a new id answered without a lookup */
    uint64_t negative_evictions;  /* remembered ids forgotten to make room */
    uint64_t negative_entries;    /* ids remembered as missing or refused now (a gauge) */
} tl_schema_store_stats;

/* Reads and parses every schema file of opts->dir (an unparseable or duplicate-id file
 * is an error naming it; a file that parses but fails tl_schema_check is not: its id
 * answers TL_SCHEMA_INVALID). Makes no registry request. NULL on error. */
tl_schema_store *tl_schema_store_new(const tl_schema_store_opts *opts, char *err, size_t errlen);
void tl_schema_store_destroy(tl_schema_store *s);

/* The writer schema of id. TL_SCHEMA_OK with *out set (borrowed, see above), or a
 * TL_SCHEMA_* error: NOT_FOUND reads "schema id 42 not found in schema.dir /x nor
 * at http://registry:8081". */
int tl_schema_store_get(tl_schema_store *s, int32_t id, avro_schema_t *out, char *err,
                        size_t errlen);

/* The id of an output schema. With a registry: POST {url}/subjects/{subject}/versions
 * (registering it if new); with opts.lookup_only, POST {url}/subjects/{subject}, which
 * registers nothing and gives TL_SCHEMA_NOT_FOUND (naming the subject) when the subject
 * or this schema under it is absent. Without a registry: the id of the schema.dir file
 * whose parsed schema equals schema_json (TL_SCHEMA_NOT_FOUND if none).
 * TL_SCHEMA_INVALID if schema_json is not an Avro schema or fails tl_schema_check. */
int tl_schema_store_register(tl_schema_store *s, const char *subject, const char *schema_json,
                             int *id_out, char *err, size_t errlen);

/* Registry HTTP requests made so far (stats.requests). */
uint64_t tl_schema_store_registry_requests(tl_schema_store *s);

/* A snapshot of the counters. */
void tl_schema_store_stats_get(tl_schema_store *s, tl_schema_store_stats *out);

/* The checks every handed-out schema passes: TL_SCHEMA_OK, or TL_SCHEMA_INVALID with
 * the problem in err ("record tally.BehaviorEvent has two fields named user_id"). */
int tl_schema_check(avro_schema_t schema, char *err, size_t errlen);

/* Whether avro_resolved_writer_new(writer, reader) succeeds, decided without calling
 * it (by avro-c 1.11's own rules: record and enum names, fields by name, int/long/float
 * promotions, union branches). TL_SCHEMA_OK: it does, and never runs into its failure
 * clean-up, which frees resolvers shared with other fields twice (the crash of a writer
 * with a renamed enum and two ["null","string"] fields read as string).
 * TL_SCHEMA_INVALID with the reason in err otherwise. Call it with the very reader
 * schema the resolver is to be given. Both schemas are only read. */
/* The full name of the named type (a record, enum or fixed) a schema's JSON text defines
 * at its root, by Avro's rules as avro-c applies them ("tally.Attribution"). 0, or -1 when
 * the text is not JSON or names no type. */
int tl_schema_full_name(const char *json, char *out, size_t n);

int tl_schema_check_resolution(avro_schema_t writer, avro_schema_t reader, char *err,
                               size_t errlen);

#endif
