/*
 * fuzz_registry.c -- schema registry responses (ingest/schema_store.c): the bodies and
 * status codes a Confluent-API registry, or anything answering at its URL, sends back.
 *
 * The parsing of a response is static in schema_store.c (registry_fetch and
 * register_registry, over lib/json and avro-c), so the harness drives it through the
 * public functions with a real HTTP exchange: a registry of its own (libmicrohttpd, on a
 * loopback port, in this process) answers every request with the status and body of the
 * input, and a schema store pointed at it (schema.registry.url, no schema.dir) fetches a
 * writer schema (tl_schema_store_get, GET /schemas/ids/{id}) or registers an output
 * schema (tl_schema_store_register, POST /subjects/{subject}/versions, or the lookup
 * POST /subjects/{subject} when schema.registry.auto.register is off).
 *
 * Input: byte 0 picks the HTTP status (statuses[] below), byte 1 the request (bit 0:
 * register instead of get; bit 1: lookup only), the rest is the response body.
 *
 * Asserted: the result is one of the TL_SCHEMA_* codes; every failure has a message;
 * a fetched schema is a schema, and asking again returns the same cached schema without
 * a request; a registered id is in [0, INT32_MAX]; an answer other than 200 is never a
 * success. A new store per input keeps inputs independent (the store caches answers).
 */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/schema_store.h"

static const unsigned statuses[] = {200, 200, 200, 200, 404, 404, 500, 401,
                                    422, 409, 503, 400, 403, 429, 302, 200};

static struct MHD_Daemon *daemon_;
static char url[64];
static const char *reader_json;

/* The answer of the next request (set by the fuzzing thread, read by the server's). */
static pthread_mutex_t answer_mu = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *answer_body;
static size_t answer_len;
static unsigned answer_status;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *u,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state)
{
    (void)cls, (void)u, (void)method, (void)version, (void)upload;
    if (!*state) {   /* the first call announces the request */
        *state = c;
        return MHD_YES;
    }
    if (*upload_len) {   /* a POST body: read and ignored */
        *upload_len = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&answer_mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        answer_len, (void *)(answer_body ? answer_body : (const uint8_t *)""),
        MHD_RESPMEM_MUST_COPY);
    unsigned status = answer_status;
    pthread_mutex_unlock(&answer_mu);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* At exit, so LeakSanitizer's check at exit sees only what the inputs leaked. */
static void cleanup(void)
{
    MHD_stop_daemon(daemon_);
    free((char *)reader_json);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!daemon_) fuzz_fail(__FILE__, __LINE__, "daemon", "cannot start the registry");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)info->port);
    size_t n;
    reader_json = fuzz_read_file(fuzz_reader_schema_path(), &n);
    if (!reader_json) fuzz_fail(__FILE__, __LINE__, "reader", "%s", fuzz_reader_schema_path());
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    unsigned status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    int do_register = data[1] & 1, lookup_only = (data[1] >> 1) & 1;
    pthread_mutex_lock(&answer_mu);
    answer_status = status;
    answer_body = data + 2;
    answer_len = size - 2;
    pthread_mutex_unlock(&answer_mu);

    char err[512] = "";
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000, .lookup_only = lookup_only};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    FUZZ_CHECK(s != NULL, "%s", err);
    int rc;
    if (do_register) {
        int id = -1;
        rc = tl_schema_store_register(s, "tally.interest-deltas-value", reader_json, &id, err,
                                      sizeof(err));
        if (rc == TL_SCHEMA_OK) FUZZ_CHECK(id >= 0, "registered id %d", id);
    } else {
        avro_schema_t schema = NULL;
        rc = tl_schema_store_get(s, 42, &schema, err, sizeof(err));
        if (rc == TL_SCHEMA_OK) {
            FUZZ_CHECK(schema != NULL, "no schema");
            avro_schema_t again = NULL;
            uint64_t requests = tl_schema_store_registry_requests(s);
            FUZZ_CHECK(tl_schema_store_get(s, 42, &again, err, sizeof(err)) == TL_SCHEMA_OK &&
                           again == schema,
                       "a fetched schema is not cached: %s", err);
            FUZZ_CHECK(tl_schema_store_registry_requests(s) == requests,
                       "a cached schema was fetched again");
        }
    }
    FUZZ_CHECK(rc == TL_SCHEMA_OK || rc == TL_SCHEMA_ERROR || rc == TL_SCHEMA_NOT_FOUND ||
                   rc == TL_SCHEMA_INVALID,
               "rc %d", rc);
    FUZZ_CHECK(rc == TL_SCHEMA_OK || err[0], "rc %d without a message", rc);
    FUZZ_CHECK(rc != TL_SCHEMA_OK || status == 200, "HTTP %u taken as success", status);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "message not terminated");
    tl_schema_store_destroy(s);
    return 0;
}
