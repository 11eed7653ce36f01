/*
 * test_schema_store.c -- ingest/schema_store: the schema.dir backend (ids from file
 * names, bad and duplicate files, files added later, register by equality) and the
 * registry backend against an in-process HTTP server on 127.0.0.1 that answers with
 * recorded Confluent API responses (hit, 404, 5xx, non-Avro, cache hits, negative
 * cache, basic auth and 401 without it, POST /subjects/{s}/versions, and the look-up
 * POST /subjects/{s} of schema.registry.auto.register=false). Then the schema checks
 * (each forbidden schema refused with its message, from a file and from the registry;
 * a named type defined twice refused from its JSON text, before avro-c, which leaks on
 * it, parses it; the crafted writer that made avro-c free twice decoded as a dead
 * letter; the resolution decided by tl_schema_check_resolution agreeing with avro-c on
 * valid evolutions), and the negative cache and rate limit on a fake clock (1,000 records of
 * one unknown id cost one request; new ids past the rate cost none; an id registered
 * after its entry expired is found; the table is bounded, oldest out first; a registry
 * that is down still means retry).
 *
 * The server thread records each request before it answers, and curl returns only
 * after the answer, so the test reads the records without waiting on anything else.
 * Time in the cache tests is the store's injected clock, moved by the test: nothing
 * sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"
#include "domain/event.h"
#include "ingest/codec.h"
#include "ingest/schema_store.h"
#include "fixtures.h"

/* ------------------------------------------------------------ test server */

typedef struct route {
    const char *method, *path;
    int status;
    const char *body;
} route;

typedef struct server {
    int lfd, port, stop[2];
    pthread_t thread;
    pthread_mutex_t mu;
    const route *routes;
    int n_routes;
    const char *require_auth;   /* when set, any other Authorization header gets a 401 */
    int delay_ms;               /* answer this late (a registry's latency) */
    int n_requests;
    char url[64];   /* http://127.0.0.1:port */
    char method[16], path[256], auth[256], ctype[128];
    char *body;
} server;

/* Value of header name (case-insensitive) in the header block, copied to out. */
static void header(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n")) != NULL;) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= outlen) n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static void serve_one(server *s, int fd)
{
    tl_buf req = {0};
    char chunk[4096];
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) break;
        tl_buf_append(&req, chunk, (size_t)n);
        if (!end && (end = strstr(req.data, "\r\n\r\n")) != NULL) {
            char cl[32];
            *end = '\0';
            header(req.data, "Content-Length", cl, sizeof(cl));
            *end = '\r';
            want = (size_t)(end - req.data) + 4 + (size_t)atol(cl);
        }
        if (end) {
            end = strstr(req.data, "\r\n\r\n");   /* the buffer may have moved */
            if (req.len >= want) break;
        }
    }
    if (!end) {
        tl_buf_free(&req);
        close(fd);
        return;
    }
    *end = '\0';
    const char *bodyp = end + 4;

    pthread_mutex_lock(&s->mu);
    s->n_requests++;
    sscanf(req.data, "%15s %255s", s->method, s->path);
    header(req.data, "Authorization", s->auth, sizeof(s->auth));
    header(req.data, "Content-Type", s->ctype, sizeof(s->ctype));
    free(s->body);
    s->body = tl_xstrdup(bodyp);
    const route *r = NULL,
                unauthorized = {"", "", 401, "{\"error_code\":401,\"message\":\"Unauthorized\"}"};
    if (s->require_auth && strcmp(s->auth, s->require_auth) != 0) r = &unauthorized;
    for (int i = 0; !r && i < s->n_routes; i++)
        if (strcmp(s->routes[i].method, s->method) == 0 && strcmp(s->routes[i].path, s->path) == 0)
            r = &s->routes[i];
    int delay_ms = s->delay_ms;
    pthread_mutex_unlock(&s->mu);
    if (delay_ms > 0) poll(NULL, 0, delay_ms);

    int status = r ? r->status : 404;
    const char *body = r ? r->body : "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}";
    tl_buf resp = {0};
    tl_buf_printf(&resp,
                  "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json"
                  "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  status, strlen(body), body);
    for (size_t off = 0; off < resp.len;) {
        ssize_t n = send(fd, resp.data + off, resp.len - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    tl_buf_free(&resp);
    tl_buf_free(&req);
    close(fd);
}

static void *server_main(void *arg)
{
    server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) break;
        if (p[0].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) serve_one(s, fd);
        }
    }
    return NULL;
}

static void server_start(server *s, const route *routes, int n_routes)
{
    memset(s, 0, sizeof(*s));
    s->routes = routes;
    s->n_routes = n_routes;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(server *s)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->lfd);
    free(s->body);
    pthread_mutex_destroy(&s->mu);
}

static int server_requests(server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n_requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void server_set_routes(server *s, const route *routes, int n_routes)
{
    pthread_mutex_lock(&s->mu);
    s->routes = routes;
    s->n_routes = n_routes;
    pthread_mutex_unlock(&s->mu);
}

/* A port nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------- fixtures */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    assert_int_equal(fx_mkdtemp(tmpdir, sizeof(tmpdir), "tally-test-schema"), 0);
    return 0;
}

static int remove_tmpdir(void **state)
{
    assert_int_equal(fx_rm_rf(tmpdir), 0);
    return 0;
}

static char *repo_schema(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TALLY_SCHEMA_DIR, name);
    return fx_slurp(path, NULL);
}

/* The JSON body {"schema":"<text>"} the registry returns for a schema. */
static char *registry_body(const char *schema_text, const char *extra)
{
    tl_buf b = {0};
    tl_buf_puts(&b, "{\"subject\":\"tally.events-value\",\"version\":1,\"id\":100,");
    if (extra) tl_buf_puts(&b, extra);
    tl_buf_puts(&b, "\"schema\":");
    tl_json_put_str(&b, schema_text);
    tl_buf_putc(&b, '}');
    return b.data;
}

static const char *NOT_FOUND = "{\"error_code\":40403,\"message\":\"Schema not found\"}";

/* ----------------------------------------------------------------- tests */

static void must_contain(const char *s, const char *part)
{
    if (!strstr(s, part)) fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* tl_schema_store_get(s, id) answers code, with a message containing part (left in err,
 * of errlen bytes). */
static void get_fails(tl_schema_store *s, int32_t id, int code, const char *part, char *err,
                      size_t errlen)
{
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, id, &sc, err, errlen), code);
    must_contain(err, part);
}

/* A store made with o; fails the test with the reason when it cannot be made. */
static tl_schema_store *store_new(const tl_schema_store_opts *o)
{
    char err[512] = "";
    tl_schema_store *s = tl_schema_store_new(o, err, sizeof(err));
    if (!s) fail_msg("%s", err);
    return s;
}

static void test_dir_lookup(void **state)
{
    char err[512];
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR};
    tl_schema_store *s = store_new(&o);

    avro_schema_t sc = NULL;
    assert_int_equal(tl_schema_store_get(s, 1, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_non_null(sc);
    assert_string_equal(avro_schema_name(sc), "BehaviorEvent");
    assert_int_equal(tl_schema_store_get(s, 3, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "Attribution");

    /* The same object again (cached, owned by the store). */
    avro_schema_t again = NULL;
    assert_int_equal(tl_schema_store_get(s, 3, &again, err, sizeof(err)), TL_SCHEMA_OK);
    assert_ptr_equal(sc, again);

    /* Unknown id: a distinct code and a message naming the id and the directory. */
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    char want[512];
    snprintf(want, sizeof(want), "schema id 42 not found in schema.dir %s", TALLY_SCHEMA_DIR);
    assert_string_equal(err, want);
    assert_int_equal(tl_schema_store_registry_requests(s), 0);
    tl_schema_store_destroy(s);
}

static void test_dir_file_names(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    fx_write_file(tmpdir, "7-behavior_event.avsc", be);
    fx_write_file(tmpdir, "README", "not a schema");
    fx_write_file(tmpdir, "8.avsc", "not even JSON");          /* no '-': ignored */
    fx_write_file(tmpdir, "x-9-foo.avsc", "not even JSON");    /* no leading id: ignored */
    fx_write_file(tmpdir, "10-foo.avsc.bak", "not even JSON"); /* wrong suffix: ignored */
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 7, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(tl_schema_store_get(s, 8, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(tl_schema_store_get(s, 9, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(tl_schema_store_get(s, 10, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);

    /* A file added after startup is found on the first lookup of its id. */
    fx_write_file(tmpdir, "11-later.avsc", be);
    assert_int_equal(tl_schema_store_get(s, 11, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "BehaviorEvent");
    tl_schema_store_destroy(s);
    free(be);
}

static void test_dir_bad_files(void **state)
{
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};

    fx_write_file(tmpdir, "5-broken.avsc", "{\"type\": \"record\", \"name\": ");
    assert_null(tl_schema_store_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "5-broken.avsc"));
    assert_non_null(strstr(err, "not a valid Avro schema"));
    assert_int_equal(fx_rm_rf(tmpdir), 0);
    assert_int_equal(mkdir(tmpdir, 0700), 0);

    fx_write_file(tmpdir, "6-a.avsc", "\"string\"");
    fx_write_file(tmpdir, "6-b.avsc", "\"long\"");
    assert_null(tl_schema_store_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "two files for schema id 6"));
    assert_non_null(strstr(err, "6-a.avsc"));
    assert_non_null(strstr(err, "6-b.avsc"));

    tl_schema_store_opts missing = {.dir = "/nonexistent/tally-schemas"};
    assert_null(tl_schema_store_new(&missing, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/tally-schemas"));
}

static void test_register_dir(void **state)
{
    char err[512];
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR};
    tl_schema_store *s = store_new(&o);
    int id = -1;
    char *credit = repo_schema("4-credit_delta.avsc");
    assert_int_equal(
        tl_schema_store_register(s, "tally.credits-value", credit, &id, err, sizeof(err)),
        TL_SCHEMA_OK);
    assert_int_equal(id, 4);

    /* Same schema, different whitespace and docs: still equal. */
    const char *compact =
        "{\"type\":\"record\",\"name\":\"InterestDelta\",\"namespace\":\"tally\",\"fields\":["
        "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"dim\",\"type\":\"string\"},"
        "{\"name\":\"dim_id\",\"type\":\"string\"},{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"f\",\"type\":\"double\"},"
        "{\"name\":\"h\",\"type\":\"double\"},{\"name\":\"weight_before\",\"type\":\"double\"},"
        "{\"name\":\"weight_after\",\"type\":\"double\"},{\"name\":\"decay_part\",\"type\":\"double\"},"
        "{\"name\":\"evidence_part\",\"type\":\"double\"},{\"name\":\"rank\",\"type\":\"int\"},"
        "{\"name\":\"explanation\",\"type\":\"string\"}]}";
    id = -1;
    assert_int_equal(
        tl_schema_store_register(s, "tally.interest-value", compact, &id, err, sizeof(err)),
        TL_SCHEMA_OK);
    assert_int_equal(id, 2);

    /* A schema no file holds. */
    const char *other = "{\"type\":\"record\",\"name\":\"Other\",\"fields\":[{\"name\":\"a\","
                        "\"type\":\"int\"}]}";
    assert_int_equal(tl_schema_store_register(s, "x-value", other, &id, err, sizeof(err)),
                     TL_SCHEMA_NOT_FOUND);
    assert_non_null(strstr(err, "x-value"));
    assert_int_equal(tl_schema_store_register(s, "x-value", "{nope", &id, err, sizeof(err)),
                     TL_SCHEMA_INVALID);
    free(credit);
    tl_schema_store_destroy(s);
}

static void test_registry(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *hit = registry_body(be, NULL);
    char *proto = registry_body("syntax = \"proto3\";", "\"schemaType\":\"PROTOBUF\",");
    char *garbage = registry_body("{\"type\": \"recor", NULL);
    const route routes[] = {
        {"GET", "/schemas/ids/100", 200, hit},
        {"GET", "/schemas/ids/42", 404, NOT_FOUND},
        {"GET", "/schemas/ids/500", 500,
         "{\"error_code\":50001,\"message\":\"Error in the backend\"}"},
        {"GET", "/schemas/ids/7", 200, proto},
        {"GET", "/schemas/ids/8", 200, garbage},
        {"GET", "/schemas/ids/9", 200, "{\"subject\":\"no schema here\"}"},
    };
    server srv;
    server_start(&srv, routes, (int)(sizeof(routes) / sizeof(routes[0])));
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);   /* trailing '/' trimmed */
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *s = store_new(&o);
    assert_int_equal(server_requests(&srv), 0);   /* no request before the first lookup */

    /* Hit. */
    avro_schema_t sc = NULL, again = NULL;
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "BehaviorEvent");
    assert_int_equal(server_requests(&srv), 1);
    assert_string_equal(srv.method, "GET");
    assert_string_equal(srv.path, "/schemas/ids/100");
    assert_string_equal(srv.auth, "");   /* no credentials configured, none sent */

    /* Cache hit: no second request. */
    assert_int_equal(tl_schema_store_get(s, 100, &again, err, sizeof(err)), TL_SCHEMA_OK);
    assert_ptr_equal(sc, again);
    assert_int_equal(server_requests(&srv), 1);
    assert_int_equal(tl_schema_store_registry_requests(s), 1);

    /* 404 from the registry: not found, with the id and URL; cached as missing. */
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    char want[256];
    snprintf(want, sizeof(want), "schema id 42 not found at http://127.0.0.1:%d", srv.port);
    assert_string_equal(err, want);
    assert_int_equal(server_requests(&srv), 2);
    err[0] = '\0';
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_string_equal(err, want);
    assert_int_equal(server_requests(&srv), 2);

    /* 5xx: a transient error, not "not found", and not cached. */
    get_fails(s, 500, TL_SCHEMA_ERROR, "HTTP 500", err, sizeof(err));
    assert_non_null(strstr(err, "Error in the backend"));
    assert_int_equal(tl_schema_store_get(s, 500, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(server_requests(&srv), 4);

    /* A 404 that is not a registry "schema not found" (no such route: error_code 404):
     * the URL is probably wrong; that is an error, not a missing schema. */
    get_fails(s, 43, TL_SCHEMA_ERROR, "HTTP 404", err, sizeof(err));

    /* Found but unusable. */
    get_fails(s, 7, TL_SCHEMA_INVALID, "PROTOBUF", err, sizeof(err));
    get_fails(s, 8, TL_SCHEMA_INVALID, "not a valid Avro schema", err, sizeof(err));
    get_fails(s, 9, TL_SCHEMA_ERROR, "\"schema\"", err, sizeof(err));

    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(be);
    free(hit);
    free(proto);
    free(garbage);
}

static void test_registry_auth_and_order(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *hit = registry_body(be, NULL);
    const route routes[] = {
        {"GET", "/schemas/ids/100", 200, hit},
        {"GET", "/schemas/ids/42", 404, NOT_FOUND},
    };
    server srv;
    server_start(&srv, routes, 2);
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    tl_schema_store_opts o = {
        .dir = TALLY_SCHEMA_DIR, .registry_url = url, .basic_auth = "alice:s3cret"};
    tl_schema_store *s = store_new(&o);

    /* The directory is asked first: id 1 makes no request. */
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 1, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(server_requests(&srv), 0);

    /* Then the registry, with the basic auth header ("alice:s3cret" in base64). */
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(server_requests(&srv), 1);
    assert_string_equal(srv.auth, "Basic YWxpY2U6czNjcmV0");

    /* Found nowhere: the message names both places, and never the password. */
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    char want[512];
    snprintf(want, sizeof(want), "schema id 42 not found in schema.dir %s nor at %s",
             TALLY_SCHEMA_DIR, url);
    assert_string_equal(err, want);
    assert_null(strstr(err, "s3cret"));
    tl_schema_store_destroy(s);
    server_stop(&srv);

    /* Credentials inside the URL are used by curl but kept out of messages. */
    server_start(&srv, routes, 2);
    snprintf(url, sizeof(url), "http://bob:hunter2@127.0.0.1:%d", srv.port);
    tl_schema_store_opts o2 = {.registry_url = url};
    s = store_new(&o2);
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_null(strstr(err, "hunter2"));
    assert_string_equal(srv.auth, "Basic Ym9iOmh1bnRlcjI=");
    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(be);
    free(hit);
}

static void test_registry_down(void **state)
{
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    get_fails(s, 100, TL_SCHEMA_ERROR, url, err, sizeof(err));
    /* Not cached as missing: the next lookup asks again. */
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(tl_schema_store_registry_requests(s), 2);
    tl_schema_store_destroy(s);
}

/* Registers the InterestDelta schema under tally.interest-value with s, whose registry (srv)
 * answers a POST with id 42: checks that the id is the registry's, not the directory's (2).
 * Returns the schema's text, for the caller to free. */
static char *register_interest(tl_schema_store *s, const server *srv)
{
    char err[512];
    char *interest = repo_schema("2-interest_delta.avsc");
    int id = -1;
    assert_int_equal(
        tl_schema_store_register(s, "tally.interest-value", interest, &id, err, sizeof(err)),
        TL_SCHEMA_OK);
    assert_int_equal(id, 42);
    assert_string_equal(srv->method, "POST");
    return interest;
}

static void test_register_registry(void **state)
{
    const route routes[] = {
        {"POST", "/subjects/tally.interest-value/versions", 200, "{\"id\":42}"},
        {"POST", "/subjects/bad%20subject/versions", 409,
         "{\"error_code\":409,\"message\":\"Schema being registered is incompatible\"}"},
    };
    server srv;
    server_start(&srv, routes, 2);
    char err[512];
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR, .registry_url = srv.url};
    tl_schema_store *s = store_new(&o);

    char *interest = register_interest(s, &srv);
    int id = -1;
    assert_string_equal(srv.ctype, "application/vnd.schemaregistry.v1+json");
    /* The body is {"schema": "<the schema text>"}. */
    tl_arena a;
    tl_arena_init(&a, 4096);
    const tl_json *body = tl_json_parse(srv.body, strlen(srv.body), &a, err, sizeof(err));
    assert_non_null(body);
    assert_string_equal(tl_json_str(tl_json_get(body, "schema")), interest);
    tl_arena_destroy(&a);

    /* The id is now known without a lookup request. */
    int before = server_requests(&srv);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "InterestDelta");
    assert_int_equal(server_requests(&srv), before);

    /* Subjects are URL-escaped; refusals carry the registry's message. */
    assert_int_equal(tl_schema_store_register(s, "bad subject", interest, &id, err, sizeof(err)),
                     TL_SCHEMA_ERROR);
    assert_string_equal(srv.path, "/subjects/bad%20subject/versions");
    assert_non_null(strstr(err, "incompatible"));
    assert_non_null(strstr(err, "409"));

    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(interest);
}

/* A registry that wants credentials, and look-up-only registration
 * (schema.registry.auto.register=false): POST /subjects/{s}, never /versions. */
static void test_registry_401_and_lookup(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *hit = registry_body(be, NULL);
    const route routes[] = {
        {"GET", "/schemas/ids/100", 200, hit},
        {"POST", "/subjects/tally.interest-value", 200,
         "{\"subject\":\"tally.interest-value\",\"id\":42,\"version\":1,\"schema\":\"\\\"string\\\"\"}"},
        {"POST", "/subjects/missing-value", 404,
         "{\"error_code\":40401,\"message\":\"Subject 'missing-value' not found.\"}"},
        {"POST", "/subjects/other-value", 404, NOT_FOUND},
    };
    server srv;
    server_start(&srv, routes, (int)(sizeof(routes) / sizeof(routes[0])));
    pthread_mutex_lock(&srv.mu);   /* the server thread reads it under mu */
    srv.require_auth = "Basic YWxpY2U6czNjcmV0";   /* alice:s3cret */
    pthread_mutex_unlock(&srv.mu);
    char err[512];

    /* No credentials: 401 is an error (not "not found"), not cached. */
    tl_schema_store_opts o = {.registry_url = srv.url, .timeout_ms = 5000};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    get_fails(s, 100, TL_SCHEMA_ERROR, "HTTP 401", err, sizeof(err));
    assert_non_null(strstr(err, "Unauthorized"));
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(server_requests(&srv), 2);
    tl_schema_store_destroy(s);

    /* With them, looking up only. */
    tl_schema_store_opts o2 = {
        .registry_url = srv.url, .basic_auth = "alice:s3cret", .lookup_only = 1};
    s = store_new(&o2);
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    char *interest = register_interest(s, &srv);
    int id = -1;
    assert_string_equal(srv.path, "/subjects/tally.interest-value");
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "InterestDelta");

    /* A subject that does not exist, and one without this schema: not found, naming the
     * subject and the switch; never the password. */
    assert_int_equal(tl_schema_store_register(s, "missing-value", interest, &id, err, sizeof(err)),
                     TL_SCHEMA_NOT_FOUND);
    assert_string_equal(srv.path, "/subjects/missing-value");
    assert_non_null(strstr(err, "subject missing-value is not registered"));
    assert_non_null(strstr(err, "schema.registry.auto.register=false"));
    assert_int_equal(tl_schema_store_register(s, "other-value", interest, &id, err, sizeof(err)),
                     TL_SCHEMA_NOT_FOUND);
    assert_non_null(strstr(err, "subject other-value does not hold this schema"));
    assert_null(strstr(err, "s3cret"));
    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(interest);
    free(be);
    free(hit);
}

/* ------------------------------------------------------------ schema checks */

/* A BehaviorEvent writer: item_id's and user_id's types, the enum's name, ts's type,
 * and fields appended. */
static char *be_writer(const char *user_t, const char *item_t, const char *enum_name,
                       const char *ts_t, const char *extra)
{
    tl_buf b = {0};
    tl_buf_printf(
        &b,
        "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
        "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":%s},"
        "{\"name\":\"item_id\",\"type\":%s},"
        "{\"name\":\"category_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
        "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"%s\",\"symbols\":"
        "[\"IMPRESSION\",\"BROWSE\",\"CLICK\",\"FAVORITE\",\"ADD_TO_CART\",\"PURCHASE\"]}},"
        "{\"name\":\"ts\",\"type\":%s},"
        "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null},"
        "{\"name\":\"dwell_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
        "{\"name\":\"value\",\"type\":[\"null\",\"double\"],\"default\":null},"
        "{\"name\":\"propensity\",\"type\":[\"null\",\"double\"],\"default\":null}%s]}",
        user_t, item_t, enum_name, ts_t, extra ? extra : "");
    return b.data;
}

/* The writer of the report: a renamed enum, a nullable item_id and user_id twice. */
static char *crafted_writer(void)
{
    return be_writer("\"string\"", "[\"null\",\"string\"]", "EventKind", "\"long\"",
                     ",{\"name\":\"user_id\",\"type\":[\"null\",\"string\"],\"default\":null}");
}

static avro_schema_t parse(const char *json)
{
    avro_schema_t s = NULL;
    if (avro_schema_from_json_length(json, strlen(json), &s) != 0)
        fail_msg("avro-c does not parse %s: %s", json, avro_strerror());
    return s;
}

static void test_check_refuses(void **state)
{
    static char deep[2048], many[200000];
    size_t o = 0;
    for (int i = 0; i < 40; i++) o += (size_t)sprintf(deep + o, "{\"type\":\"array\",\"items\":");
    o += (size_t)sprintf(deep + o, "\"int\"");
    for (int i = 0; i < 40; i++) deep[o++] = '}';
    deep[o] = '\0';
    o = (size_t)sprintf(many, "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[");
    for (int i = 0; i <= TL_SCHEMA_MAX_NODES; i++)
        o += (size_t)sprintf(many + o, "%s\"S%d\"", i ? "," : "", i);
    sprintf(many + o, "]}");
    char *crafted = crafted_writer();
    const struct {
        const char *json, *want;
    } bad[] = {
        {crafted, "record tally.BehaviorEvent has two fields named user_id"},
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
         "{\"name\":\"b\",\"type\":\"int\"},{\"name\":\"a\",\"type\":\"long\"}]}",
         "record R has two fields named a"},
        {"{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"n\",\"symbols\":[\"A\",\"B\",\"A\"]}",
         "enum n.E has the symbol A twice"},
        {"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"b c\"]}",
         "enum E has the symbol \"b c\", not a valid Avro name"},
        {"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"\"]}",
         "enum E has the symbol \"\", not a valid Avro name"},
        {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a..b\",\"fields\":[]}",
         "the namespace \"a..b\" of record R is not a valid Avro namespace"},
        {"{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"9x\",\"size\":4}",
         "the namespace \"9x\" of fixed F is not a valid Avro namespace"},
        {"[\"null\",\"string\",\"string\"]", "a union has two branches of type string"},
        {"[\"null\",{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]},\"E\"]",
         "a union has two branches of type E"},
        {"[\"null\",[\"int\",\"long\"]]", "a union has a union as a branch"},
        {"{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}", "fixed F has a negative size"},
        {deep, "types are nested more than 32 deep"},
        {many, "the schema has more than 10000 types, fields and symbols"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        avro_schema_t s = parse(bad[i].json);
        err[0] = '\0';
        assert_int_equal(tl_schema_check(s, err, sizeof(err)), TL_SCHEMA_INVALID);
        if (strcmp(err, bad[i].want) != 0)
            fail_msg("case %zu: \"%s\", not \"%s\"", i, err, bad[i].want);
        avro_schema_decref(s);
    }

    /* Two named types of one name (avro-c's parser already refuses that in JSON;
     * a schema built in code can have it). */
    avro_schema_t r = avro_schema_record("R", "n");
    avro_schema_t e1 = avro_schema_enum_ns("E", "n"), e2 = avro_schema_enum_ns("E", "n");
    avro_schema_enum_symbol_append(e1, "A");
    avro_schema_enum_symbol_append(e2, "B");
    avro_schema_record_field_append(r, "a", e1);
    avro_schema_record_field_append(r, "b", e2);
    assert_int_equal(tl_schema_check(r, err, sizeof(err)), TL_SCHEMA_INVALID);
    assert_string_equal(err, "two types are named n.E");
    avro_schema_decref(e1);
    avro_schema_decref(e2);
    avro_schema_decref(r);

    /* What tally writes and reads passes, as do recursive types and deep-but-legal ones. */
    const char *files[] = {"1-behavior_event.avsc", "2-interest_delta.avsc", "3-attribution.avsc",
                           "4-credit_delta.avsc",   "5-attribution.avsc",    "6-attribution.avsc",
                           "7-credit_delta.avsc"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *text = repo_schema(files[i]);
        avro_schema_t s = parse(text);
        if (tl_schema_check(s, err, sizeof(err)) != TL_SCHEMA_OK) fail_msg("%s: %s", files[i], err);
        avro_schema_decref(s);
        free(text);
    }
    avro_schema_t list = parse("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
                               "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}");
    assert_int_equal(tl_schema_check(list, err, sizeof(err)), TL_SCHEMA_OK);
    avro_schema_decref(list);
    o = 0;   /* 31 arrays and their int: 32 levels, the most allowed */
    for (int i = 0; i < 31; i++) o += (size_t)sprintf(deep + o, "{\"type\":\"array\",\"items\":");
    o += (size_t)sprintf(deep + o, "\"int\"");
    for (int i = 0; i < 31; i++) deep[o++] = '}';
    deep[o] = '\0';
    avro_schema_t legal = parse(deep);
    if (tl_schema_check(legal, err, sizeof(err)) != TL_SCHEMA_OK) fail_msg("%s", err);
    avro_schema_decref(legal);
    free(crafted);
}

/* A file that parses but fails the checks does not stop the store: its id is refused,
 * with the file and the problem; at startup and when found later. */
static void test_check_dir(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *crafted = crafted_writer();
    fx_write_file(tmpdir, "1-behavior_event.avsc", be);
    fx_write_file(tmpdir, "7-crafted.avsc", crafted);
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc = NULL;
    assert_int_equal(tl_schema_store_get(s, 1, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(tl_schema_store_get(s, 7, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    char want[600];
    snprintf(want, sizeof(want),
             "schema id 7 (%s/7-crafted.avsc) is refused: record "
             "tally.BehaviorEvent has two fields named user_id",
             tmpdir);
    assert_string_equal(err, want);

    fx_write_file(tmpdir, "8-later.avsc",
                  "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}");
    get_fails(s, 8, TL_SCHEMA_INVALID, "8-later.avsc) is refused: enum E has the symbol A twice",
              err, sizeof(err));
    assert_int_equal(tl_schema_store_get(s, 8, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.invalid, 2);
    assert_int_equal(st.negative_cache_hits, 2);   /* 7 once, 8 the second time */
    assert_int_equal(st.negative_entries, 1);   /* 8; 7 is kept with the files */

    /* A refused file still counts for "two files for one id". */
    tl_schema_store_destroy(s);
    fx_write_file(tmpdir, "7-again.avsc", be);
    assert_null(tl_schema_store_new(&o, err, sizeof(err)));
    must_contain(err, "two files for schema id 7");
    free(be);
    free(crafted);
}

static void test_check_registry(void **state)
{
    char *crafted = crafted_writer();
    char *hit = registry_body(crafted, NULL);
    char *sym = registry_body("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", NULL);
    const route routes[] = {
        {"GET", "/schemas/ids/100", 200, hit},
        {"GET", "/schemas/ids/101", 200, sym},
    };
    server srv;
    server_start(&srv, routes, 2);
    char err[512];
    tl_schema_store_opts o = {.registry_url = srv.url, .timeout_ms = 5000};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    char want[512];
    snprintf(want, sizeof(want),
             "schema id 100 at %s is refused: record tally.BehaviorEvent "
             "has two fields named user_id",
             srv.url);
    assert_string_equal(err, want);
    get_fails(s, 101, TL_SCHEMA_INVALID, "enum E has the symbol A twice", err, sizeof(err));
    /* Remembered: no second request. */
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    assert_string_equal(err, want);
    assert_int_equal(server_requests(&srv), 2);

    /* Registering a schema that fails the checks: refused before any request. */
    int id;
    assert_int_equal(tl_schema_store_register(s, "x-value", crafted, &id, err, sizeof(err)),
                     TL_SCHEMA_INVALID);
    assert_string_equal(err,
                        "the schema of subject x-value is refused: record "
                        "tally.BehaviorEvent has two fields named user_id");
    assert_int_equal(server_requests(&srv), 2);
    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(crafted);
    free(hit);
    free(sym);
}

/* A named type defined twice: avro-c 1.11 refuses it but leaks what it was building, so
 * the store refuses it from the JSON text before avro-c sees it (from a file, from the
 * registry, to register), by avro-c's own full names: the cases below are the ones
 * avro-c refuses ("Cannot save enum schema"), and the valid ones it takes. */
#define SYM "\"symbols\":[\"X\"]"
static void test_check_twins(void **state)
{
    const struct {
        const char *json, *twin;
    } twice[] = {
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":["
         "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
         "{\"name\":\"b\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"Y\"]}}]}",
         "E"},
        /* an empty namespace is none */
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":["
         "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"\"," SYM "}},"
         "{\"name\":\"b\",\"type\":{\"type\":\"enum\",\"name\":\"E\"," SYM "}}]}",
         "E"},
        /* a field's type takes its record's namespace, given in the name or on its own */
        {"{\"type\":\"record\",\"name\":\"a.R\",\"fields\":["
         "{\"name\":\"x\",\"type\":{\"type\":\"enum\",\"name\":\"E\"," SYM "}},"
         "{\"name\":\"y\",\"type\":{\"type\":\"enum\",\"name\":\"a.E\"," SYM "}}]}",
         "a.E"},
        {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
         "{\"name\":\"x\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"b\","
         "\"fields\":[{\"name\":\"z\",\"type\":{\"type\":\"enum\",\"name\":\"E\"," SYM "}}]}},"
         "{\"name\":\"y\",\"type\":{\"type\":\"enum\",\"name\":\"b.E\"," SYM "}}]}",
         "b.E"},
        {"[\"int\",{\"type\":\"enum\",\"name\":\"a.b.E\"," SYM "},"
         "{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"a.b\"," SYM "}]",
         "a.b.E"},
        /* a namespace that is not a string is no namespace of its own */
        {"[\"int\",{\"type\":\"enum\",\"name\":\"E\",\"namespace\":7," SYM "},"
         "{\"type\":\"enum\",\"name\":\"E\"," SYM "}]",
         "E"},
        /* fixed in a union, a record redefining itself, a type deep in arrays and maps */
        {"[\"int\",{\"type\":\"fixed\",\"name\":\"F\",\"size\":1},"
         "{\"type\":\"fixed\",\"name\":\"F\",\"size\":2}]",
         "F"},
        {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"r\",\"type\":"
         "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}}]}",
         "R"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\","
         "\"fields\":[{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
         "[\"null\",{\"type\":\"enum\",\"name\":\"R\"," SYM "}]}}]}}",
         "n.R"},
    };
    /* One name in no namespace (an empty one) and in its record's, one name in two
     * other namespaces and referred to, a record referring to itself: no twins. */
    const char *once[] = {
        ("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
         "{\"name\":\"x\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"\"," SYM "}},"
         "{\"name\":\"y\",\"type\":{\"type\":\"enum\",\"name\":\"E\"," SYM "}}]}"),
        ("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
         "{\"name\":\"x\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"namespace\":\"b\"," SYM "}},"
         "{\"name\":\"y\",\"type\":{\"type\":\"enum\",\"name\":\"c.E\"," SYM "}},"
         "{\"name\":\"z\",\"type\":\"b.E\"}]}"),
        ("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
         "{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}"),
    };
    char err[512], want[600], name[32];
    tl_schema_store_opts o = {.dir = tmpdir};
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
        snprintf(name, sizeof(name), "%zu-twice.avsc", 20 + i);
        fx_write_file(tmpdir, name, twice[i].json);
    }
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
        snprintf(name, sizeof(name), "%zu-once.avsc", 40 + i);
        fx_write_file(tmpdir, name, once[i]);
    }
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
        assert_int_equal(tl_schema_store_get(s, (int32_t)(20 + i), &sc, err, sizeof(err)),
                         TL_SCHEMA_INVALID);
        snprintf(want, sizeof(want),
                 "schema id %zu (%s/%zu-twice.avsc) is refused: two types "
                 "are named %s",
                 20 + i, tmpdir, 20 + i, twice[i].twin);
        if (strcmp(err, want) != 0) fail_msg("case %zu: \"%s\", not \"%s\"", i, err, want);
        /* and to register */
        int id;
        assert_int_equal(
            tl_schema_store_register(s, "x-value", twice[i].json, &id, err, sizeof(err)),
            TL_SCHEMA_INVALID);
        snprintf(want, sizeof(want),
                 "the schema of subject x-value is refused: two types are "
                 "named %s",
                 twice[i].twin);
        assert_string_equal(err, want);
    }
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        if (tl_schema_store_get(s, (int32_t)(40 + i), &sc, err, sizeof(err)) != TL_SCHEMA_OK)
            fail_msg("case %zu: %s", i, err);
    /* Text that is not JSON is not a schema, with lib/json's reason. */
    fx_write_file(tmpdir, "60-broken.avsc", "{\"type\":\"enum\",\"name\":\"E\"," SYM ",}");
    get_fails(s, 60, TL_SCHEMA_INVALID,
              "60-broken.avsc is not a valid Avro schema: JSON: object key", err, sizeof(err));

    /* From the registry: refused, with the registry named, and remembered. */
    char *body = registry_body(twice[0].json, NULL);
    const route routes[] = {{"GET", "/schemas/ids/102", 200, body}};
    server srv;
    server_start(&srv, routes, 1);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    tl_schema_store_opts ro = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *r = store_new(&ro);
    snprintf(want, sizeof(want), "schema id 102 at %s is refused: two types are named E", url);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tl_schema_store_get(r, 102, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
        assert_string_equal(err, want);
    }
    assert_int_equal(server_requests(&srv), 1);
    tl_schema_store_destroy(r);
    server_stop(&srv);
    free(body);
    tl_schema_store_destroy(s);
}
#undef SYM

static void put_varint(tl_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        tl_buf_putc(b, (char)(z | 0x80));
        z >>= 7;
    }
    tl_buf_putc(b, (char)z);
}

static void put_str(tl_buf *b, const char *s)
{
    put_varint(b, (int64_t)strlen(s));
    tl_buf_puts(b, s);
}

/* The crafted writer through the codec (run under ASan by the sanitizer build): a dead
 * letter, incompatible_schema, not a crash; a valid evolution beside it decodes. */
static void test_check_codec(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *crafted = crafted_writer();
    /* fields reordered, item_id nullable, enum symbols reordered with a new one, an
     * extra field, the optional fields absent */
    const char *evolved =
        "{\"type\":\"record\",\"name\":\"BehaviorEvent\",\"namespace\":\"tally\",\"fields\":["
        "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"event_id\",\"type\":\"string\"},"
        "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
        "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":"
        "[\"PURCHASE\",\"ADD_TO_CART\",\"FAVORITE\",\"CLICK\",\"BROWSE\",\"IMPRESSION\",\"SHARE\"]}},"
        "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"note\",\"type\":\"string\"}]}";
    fx_write_file(tmpdir, "1-behavior_event.avsc", be);
    fx_write_file(tmpdir, "7-crafted.avsc", crafted);
    fx_write_file(tmpdir, "8-evolved.avsc", evolved);
    char err[512], reader[600];
    snprintf(reader, sizeof(reader), "%s/1-behavior_event.avsc", tmpdir);
    tl_schema_store_opts o = {.dir = tmpdir};
    tl_schema_store *s = store_new(&o);
    tl_codec *c = tl_codec_new(s, reader, err, sizeof(err));
    if (!c) fail_msg("%s", err);
    tl_arena a;
    tl_arena_init(&a, 4096);

    tl_buf rec = {0};
    tl_buf_append(&rec, "\0\0\0\0\7", 5);
    put_str(&rec, "e1");
    put_str(&rec, "u1");
    tl_event ev = {0};
    tl_dlq_reason reason = 0;
    for (int i = 0; i < 3; i++) {   /* again and again: never resolved, never a crash */
        assert_int_equal(tl_codec_decode(c, rec.data, rec.len, &ev, &a, &reason, err, sizeof(err)),
                         TL_CODEC_BAD);
        assert_int_equal(reason, TL_DLQ_INCOMPATIBLE_SCHEMA);
        must_contain(err, "is refused: record tally.BehaviorEvent has two fields named user_id");
    }

    tl_buf_clear(&rec);
    tl_buf_append(&rec, "\0\0\0\0\10", 5);
    put_str(&rec, "u1");
    put_str(&rec, "e1");
    put_varint(&rec, 1);          /* item_id: the string branch */
    put_str(&rec, "i1");
    put_varint(&rec, 3);          /* CLICK in the writer's order */
    put_varint(&rec, 1700000000000);
    put_str(&rec, "x");
    assert_int_equal(tl_codec_decode(c, rec.data, rec.len, &ev, &a, &reason, err, sizeof(err)),
                     TL_CODEC_OK);
    assert_string_equal(ev.event_id, "e1");
    assert_string_equal(ev.user_id, "u1");
    assert_string_equal(ev.item_id, "i1");
    assert_null(ev.category_id);
    assert_int_equal(ev.type, TL_CLICK);
    assert_int_equal(ev.ts, 1700000000000);

    tl_buf_free(&rec);
    tl_arena_destroy(&a);
    tl_codec_destroy(c);
    tl_schema_store_destroy(s);
    free(be);
    free(crafted);
}

/* tl_schema_check_resolution: the writers avro-c's resolver cannot survive are refused
 * without calling it; the valid evolutions pass, and avro-c agrees on each. */
static void test_check_resolution(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    avro_schema_t reader = parse(be);
    char err[512];
    const char *s_ = "\"string\"", *ns = "[\"null\",\"string\"]";

    /* Each ingredient alone, in pairs, and two nullable strings with a failing field:
     * the last three made avro-c free twice (or read freed memory). */
    struct {
        char *json;
        const char *want;
    } cases[] = {
        {be_writer(s_, s_, "EventType", "\"long\"", NULL), NULL},
        {be_writer(s_, ns, "EventType", "\"long\"", NULL), NULL},
        {be_writer(ns, ns, "EventType", "\"int\"", NULL), NULL},   /* int -> long */
        {be_writer(s_, s_, "EventType", "\"long\"",
                   ",{\"name\":\"extra\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"}}"),
         NULL},
        {be_writer(s_, s_, "EventKind", "\"long\"", NULL),
         "field type: the writer's enum tally.EventKind cannot be read as enum tally.EventType"},
        {be_writer(s_, ns, "EventKind", "\"long\"", NULL),
         "field type: the writer's enum tally.EventKind cannot be read as enum tally.EventType"},
        {be_writer(ns, ns, "EventKind", "\"long\"", NULL),
         "field type: the writer's enum tally.EventKind cannot be read as enum tally.EventType"},
        {be_writer(ns, ns, "EventType", "\"string\"", NULL),
         "field ts: the writer's string cannot be read as long"},
        {be_writer(s_, s_, "EventType", "[\"null\",\"long\"]", NULL), NULL},
        {be_writer(s_, s_, "EventType", "[\"null\",\"boolean\"]", NULL),
         "field ts: no branch of the writer's union can be read as long"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        avro_schema_t w = parse(cases[i].json);
        assert_int_equal(tl_schema_check(w, err, sizeof(err)), TL_SCHEMA_OK);
        err[0] = '\0';
        int rc = tl_schema_check_resolution(w, reader, err, sizeof(err));
        if (!cases[i].want) {
            if (rc != TL_SCHEMA_OK) fail_msg("case %zu refused: %s", i, err);
            avro_value_iface_t *it = avro_resolved_writer_new(w, reader);
            if (!it) fail_msg("case %zu: avro-c does not resolve it: %s", i, avro_strerror());
            avro_value_iface_decref(it);
        } else {
            assert_int_equal(rc, TL_SCHEMA_INVALID);
            if (strcmp(err, cases[i].want) != 0) fail_msg("case %zu: \"%s\"", i, err);
        }
        avro_schema_decref(w);
        free(cases[i].json);
    }

    /* Inside a union, a record failing half-way (the same double free, although the
     * union as a whole resolves) and an array whose items do not resolve (avro-c then
     * frees the item resolver it never made). */
    const struct {
        const char *r, *w, *want;
    } nested[] = {
        {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"f\",\"type\":[{\"type\":"
         "\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":"
         "\"b\",\"type\":\"string\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
         "\"symbols\":[\"X\"]}}]},\"int\"]}]}",
         "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"f\",\"type\":[{\"type\":"
         "\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"a\",\"type\":[\"null\",\"string\"]},"
         "{\"name\":\"b\",\"type\":[\"null\",\"string\"]},{\"name\":\"e\",\"type\":{\"type\":"
         "\"enum\",\"name\":\"E2\",\"symbols\":[\"X\"]}}]},\"int\"]}]}",
         "field e: the writer's enum E2 cannot be read as enum E (in a union branch that "
         "avro-c cannot resolve safely)"},
        {"{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"f\",\"type\":[{\"type\":"
         "\"array\",\"items\":\"int\"},\"string\"]}]}",
         "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"f\",\"type\":[{\"type\":"
         "\"array\",\"items\":\"string\"},\"string\"]}]}",
         "array items: the writer's string cannot be read as int (in a union branch that "
         "avro-c cannot resolve safely)"},
    };
    for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
        avro_schema_t r = parse(nested[i].r), w = parse(nested[i].w);
        assert_int_equal(tl_schema_check_resolution(w, r, err, sizeof(err)), TL_SCHEMA_INVALID);
        if (strcmp(err, nested[i].want) != 0) fail_msg("nested %zu: \"%s\"", i, err);
        avro_schema_decref(r);
        avro_schema_decref(w);
    }

    /* Recursion ends (avro-c's memo: a pair being resolved counts as resolved). */
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
                       "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    const char *list_long = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
                            "\"type\":\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    avro_schema_t lw = parse(list), lr = parse(list_long);
    assert_int_equal(tl_schema_check_resolution(lw, lr, err, sizeof(err)), TL_SCHEMA_OK);
    avro_value_iface_t *it = avro_resolved_writer_new(lw, lr);
    assert_non_null(it);
    avro_value_iface_decref(it);
    avro_schema_decref(lw);
    avro_schema_decref(lr);
    avro_schema_decref(reader);
    free(be);
}

/* ------------------------------------------------ negative cache, rate limit */

static int64_t fake_now;
static int64_t fake_clock(void *arg) { return *(int64_t *)arg; }

#define MS (1000000LL)

/* A store asking the registry at url (timeout 5 s) with o's limits, on the fake clock,
 * which reads now. */
static tl_schema_store *fake_clock_store(tl_schema_store_opts o, const char *url, int64_t now)
{
    fake_now = now;
    o.registry_url = url;
    o.timeout_ms = 5000;
    o.clock_ns = fake_clock;
    o.clock_arg = &fake_now;
    return store_new(&o);
}

/* Registry routes answering "not found" for n ids: first, first + step, ... (an
 * unrouted path is a plain 404: an error). */
typedef struct missing_ids {
    route *routes;
    char (*paths)[32];
} missing_ids;

static void missing_ids_init(missing_ids *m, int first, int step, int n)
{
    m->routes = tl_xcalloc((size_t)n, sizeof(*m->routes));
    m->paths = tl_xcalloc((size_t)n, sizeof(*m->paths));
    for (int i = 0; i < n; i++) {
        snprintf(m->paths[i], sizeof(m->paths[i]), "/schemas/ids/%d", first + i * step);
        m->routes[i] = (route){"GET", m->paths[i], 404, NOT_FOUND};
    }
}

static void missing_ids_free(missing_ids *m)
{
    free(m->routes);
    free(m->paths);
}

/* A registry answering "not found" for those n ids, started in srv. */
static void missing_ids_serve(server *srv, missing_ids *m, int first, int step, int n)
{
    missing_ids_init(m, first, step, n);
    server_start(srv, m->routes, n);
}

/* 1,000 records naming one unknown id: one request; the rest from the cache. */
static void test_negative_one_id(void **state)
{
    const route routes[] = {{"GET", "/schemas/ids/42", 404, NOT_FOUND}};
    server srv;
    server_start(&srv, routes, 1);
    char err[512];
    tl_schema_store *s = fake_clock_store((tl_schema_store_opts){0}, srv.url, 1000 * MS);
    avro_schema_t sc;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
        fake_now += MS;   /* 1,000 records over 1 s, well within the 300 s default */
    }
    must_contain(err, "schema id 42 not found at");
    assert_int_equal(server_requests(&srv), 1);
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.not_found, 1);
    assert_int_equal(st.negative_cache_hits, 999);
    assert_int_equal(st.rate_limited, 0);
    assert_int_equal(st.negative_entries, 1);
    tl_schema_store_destroy(s);
    server_stop(&srv);
}

/* New ids past max_lookups_per_second are answered at once, without a request; the
 * bucket refills with time. */
static void test_rate_limit(void **state)
{
    missing_ids ids;
    server srv;
    missing_ids_serve(&srv, &ids, 1000, 1, 1000);
    char err[512];
    tl_schema_store *s =
        fake_clock_store((tl_schema_store_opts){.max_lookups_per_second = 5}, srv.url, 5000 * MS);
    avro_schema_t sc;
    int limited = 0;
    for (int i = 0; i < 1000; i++) {
        err[0] = '\0';
        assert_int_equal(tl_schema_store_get(s, 1000 + i, &sc, err, sizeof(err)),
                         TL_SCHEMA_NOT_FOUND);
        if (strstr(err, "was not looked up")) limited++;
    }
    assert_int_equal(server_requests(&srv), 5);   /* the bucket: one second's worth */
    assert_int_equal(limited, 995);
    char want[512];
    snprintf(want, sizeof(want),
             "schema id 1999 was not looked up at %s: more than 5 new "
             "schema ids per second (schema.registry.max.lookups.per.second); the record "
             "can be replayed",
             srv.url);
    assert_string_equal(err, want);
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.lookups, 5);
    assert_int_equal(st.not_found, 5);
    assert_int_equal(st.rate_limited, 995);
    assert_int_equal(st.negative_entries, 5);   /* a limited id is not remembered */

    /* 200 ms later: one token. A limited id is looked up once there is one. */
    fake_now += 200 * MS;
    get_fails(s, 1999, TL_SCHEMA_NOT_FOUND, "schema id 1999 not found at", err, sizeof(err));
    get_fails(s, 1998, TL_SCHEMA_NOT_FOUND, "was not looked up", err, sizeof(err));
    assert_int_equal(server_requests(&srv), 6);
    /* Remembered ids cost no token. */
    get_fails(s, 1000, TL_SCHEMA_NOT_FOUND, "schema id 1000 not found at", err, sizeof(err));
    /* A long pause fills the bucket to its size, not more. */
    fake_now += 3600 * 1000 * MS;
    for (int i = 0; i < 10; i++) tl_schema_store_get(s, 1500 + i, &sc, err, sizeof(err));
    assert_int_equal(server_requests(&srv), 11);
    tl_schema_store_destroy(s);
    server_stop(&srv);
    missing_ids_free(&ids);
}

/* An id registered after its "not found" is found once the entry expires. */
static void test_negative_expiry(void **state)
{
    char *be = repo_schema("1-behavior_event.avsc");
    char *hit = registry_body(be, NULL);
    const route missing[] = {{"GET", "/schemas/ids/42", 404, NOT_FOUND}};
    const route registered[] = {{"GET", "/schemas/ids/42", 200, hit}};
    server srv;
    server_start(&srv, missing, 1);
    char err[512];
    tl_schema_store *s =
        fake_clock_store((tl_schema_store_opts){.negative_cache_ms = 60000}, srv.url, 0);
    avro_schema_t sc = NULL;
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    server_set_routes(&srv, registered, 1);   /* the producer registers it */
    fake_now += 59999 * MS;
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(server_requests(&srv), 1);
    fake_now += 1 * MS;
    assert_int_equal(tl_schema_store_get(s, 42, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "BehaviorEvent");
    assert_int_equal(server_requests(&srv), 2);
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.negative_entries, 0);
    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(be);
    free(hit);
}

/* At most negative_cache_max ids are remembered; the oldest goes first. */
static void test_negative_bounded(void **state)
{
    missing_ids few;
    server srv;
    missing_ids_serve(&srv, &few, 1, 1, 4);
    char err[512];
    tl_schema_store *s = fake_clock_store(
        (tl_schema_store_opts){.negative_cache_max = 3, .max_lookups_per_second = 100}, srv.url, 0);
    avro_schema_t sc;
    for (int id = 1; id <= 4; id++)
        assert_int_equal(tl_schema_store_get(s, id, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.negative_entries, 3);
    assert_int_equal(st.negative_evictions, 1);
    assert_int_equal(server_requests(&srv), 4);
    for (int id = 2; id <= 4; id++)   /* still remembered */
        assert_int_equal(tl_schema_store_get(s, id, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(server_requests(&srv), 4);
    assert_int_equal(tl_schema_store_get(s, 1, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(server_requests(&srv), 5);   /* forgotten: asked again, and 2 goes */
    assert_int_equal(tl_schema_store_get(s, 2, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(server_requests(&srv), 6);

    /* Churn through many ids: the table stays at its bound and every remembered id is
     * still found (the hash table's deletions keep the others reachable). */
    tl_schema_store_destroy(s);
    missing_ids many;
    missing_ids_init(&many, 0, 64, 400);   /* ids 64 apart: they collide in the hash table */
    server_set_routes(&srv, many.routes, 400);
    s = fake_clock_store(
        (tl_schema_store_opts){.negative_cache_max = 50, .max_lookups_per_second = 1e9}, srv.url,
        0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(tl_schema_store_get(s, i * 64, &sc, err, sizeof(err)),
                         TL_SCHEMA_NOT_FOUND);
    int before = server_requests(&srv);
    assert_int_equal(before, 6 + 400);
    for (int i = 350; i < 400; i++) tl_schema_store_get(s, i * 64, &sc, err, sizeof(err));
    assert_int_equal(server_requests(&srv), before);
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.negative_entries, 50);
    assert_int_equal(st.negative_evictions, 350);
    assert_int_equal(st.negative_cache_hits, 50);
    tl_schema_store_destroy(s);
    server_stop(&srv);
    missing_ids_free(&few);
    missing_ids_free(&many);
}

/* While the registry is down, a rate-limited id is "retry", not "not found": an
 * outage never turns good records into dead letters. */
static void test_rate_limit_registry_down(void **state)
{
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    tl_schema_store *s =
        fake_clock_store((tl_schema_store_opts){.max_lookups_per_second = 2}, url, 0);
    avro_schema_t sc;
    for (int i = 0; i < 10; i++)
        assert_int_equal(tl_schema_store_get(s, 100 + i, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    must_contain(err, "is failing, and schema id 109 waits its turn");
    tl_schema_store_stats st;
    tl_schema_store_stats_get(s, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.lookup_errors, 2);
    assert_int_equal(st.rate_limited, 8);
    assert_int_equal(st.negative_entries, 0);
    tl_schema_store_destroy(s);
}

/* 1,000 records with 1,000 distinct unknown ids against a registry that takes 20 ms
 * an answer, on the real clock: the default limit of 20 lookups a second asks about
 * a few dozen of them, not all 1,000 (which took 22 s in the report). */
static void test_rate_limit_timing(void **state)
{
    missing_ids ids;
    server srv;
    missing_ids_serve(&srv, &ids, 5000, 1, 1000);
    pthread_mutex_lock(&srv.mu);
    srv.delay_ms = 20;
    pthread_mutex_unlock(&srv.mu);
    char err[512];
    tl_schema_store_opts o = {.registry_url = srv.url, .timeout_ms = 5000};
    tl_schema_store *s = store_new(&o);
    avro_schema_t sc;
    int64_t t0 = tl_mono_ns();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tl_schema_store_get(s, 5000 + i, &sc, err, sizeof(err)),
                         TL_SCHEMA_NOT_FOUND);
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    int n = server_requests(&srv);
    print_message("1000 distinct unknown ids, 20 ms registry: %d requests, %.2f s\n", n, secs);
    /* The bucket allows 20 at once and 20 a second after: never more than that. */
    assert_true(n >= 20 && n <= 20 + (int)(20 * secs) + 1);
    tl_schema_store_destroy(s);
    server_stop(&srv);
    missing_ids_free(&ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_lookup),
        cmocka_unit_test_setup_teardown(test_dir_file_names, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_dir_bad_files, make_tmpdir, remove_tmpdir),
        cmocka_unit_test(test_register_dir),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_registry_auth_and_order),
        cmocka_unit_test(test_registry_down),
        cmocka_unit_test(test_register_registry),
        cmocka_unit_test(test_registry_401_and_lookup),
        cmocka_unit_test(test_check_refuses),
        cmocka_unit_test_setup_teardown(test_check_dir, make_tmpdir, remove_tmpdir),
        cmocka_unit_test(test_check_registry),
        cmocka_unit_test_setup_teardown(test_check_twins, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_check_codec, make_tmpdir, remove_tmpdir),
        cmocka_unit_test(test_check_resolution),
        cmocka_unit_test(test_negative_one_id),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_negative_expiry),
        cmocka_unit_test(test_negative_bounded),
        cmocka_unit_test(test_rate_limit_registry_down),
        cmocka_unit_test(test_rate_limit_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
