/*
 * test_schema_store.c -- ingest/schema_store: the schema.dir backend (ids from file
 * names, bad and duplicate files, files added later, register by equality) and the
 * registry backend against an in-process HTTP server on 127.0.0.1 that answers with
 * recorded Confluent API responses (hit, 404, 5xx, non-Avro, cache hits, negative
 * cache, basic auth and 401 without it, POST /subjects/{s}/versions, and the look-up
 * POST /subjects/{s} of schema.registry.auto.register=false).
 *
 * The server thread records each request before it answers, and curl returns only
 * after the answer, so the test reads the records without waiting on anything else.
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

#include "core/arena.h"
#include "core/json.h"
#include "core/util.h"
#include "ingest/schema_store.h"

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
    int n_requests;
    char method[16], path[256], auth[256], ctype[128];
    char *body;
} server;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    tl_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) tl_buf_append(&b, chunk, n);
    fclose(f);
    return b.data;
}

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
    const route *r = NULL, unauthorized = {"", "", 401,
                                           "{\"error_code\":401,\"message\":\"Unauthorized\"}"};
    if (s->require_auth && strcmp(s->auth, s->require_auth) != 0) r = &unauthorized;
    for (int i = 0; !r && i < s->n_routes; i++)
        if (strcmp(s->routes[i].method, s->method) == 0 && strcmp(s->routes[i].path, s->path) == 0)
            r = &s->routes[i];
    pthread_mutex_unlock(&s->mu);

    int status = r ? r->status : 404;
    const char *body = r ? r->body : "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}";
    tl_buf resp = {0};
    tl_buf_printf(&resp, "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json"
                  "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
                  strlen(body), body);
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
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
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

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int make_tmpdir(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tally-test-schema-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int remove_tmpdir(void **state)
{
    rm_rf(tmpdir);
    return 0;
}

static char *repo_schema(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TALLY_SCHEMA_DIR, name);
    char *s = slurp(path);
    assert_non_null(s);
    return s;
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

static void test_dir_lookup(void **state)
{
    char err[512];
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    if (!s) fail_msg("%s", err);

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
    write_file(tmpdir, "7-behavior_event.avsc", be);
    write_file(tmpdir, "README", "not a schema");
    write_file(tmpdir, "8.avsc", "not even JSON");          /* no '-': ignored */
    write_file(tmpdir, "x-9-foo.avsc", "not even JSON");    /* no leading id: ignored */
    write_file(tmpdir, "10-foo.avsc.bak", "not even JSON"); /* wrong suffix: ignored */
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    if (!s) fail_msg("%s", err);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 7, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(tl_schema_store_get(s, 8, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(tl_schema_store_get(s, 9, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_int_equal(tl_schema_store_get(s, 10, &sc, err, sizeof(err)), TL_SCHEMA_NOT_FOUND);

    /* A file added after startup is found on the first lookup of its id. */
    write_file(tmpdir, "11-later.avsc", be);
    assert_int_equal(tl_schema_store_get(s, 11, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "BehaviorEvent");
    tl_schema_store_destroy(s);
    free(be);
}

static void test_dir_bad_files(void **state)
{
    char err[512];
    tl_schema_store_opts o = {.dir = tmpdir};

    write_file(tmpdir, "5-broken.avsc", "{\"type\": \"record\", \"name\": ");
    assert_null(tl_schema_store_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "5-broken.avsc"));
    assert_non_null(strstr(err, "not a valid Avro schema"));
    rm_rf(tmpdir);
    assert_int_equal(mkdir(tmpdir, 0700), 0);

    write_file(tmpdir, "6-a.avsc", "\"string\"");
    write_file(tmpdir, "6-b.avsc", "\"long\"");
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
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);
    int id = -1;
    char *credit = repo_schema("4-credit_delta.avsc");
    assert_int_equal(tl_schema_store_register(s, "tally.credits-value", credit, &id, err,
                                              sizeof(err)), TL_SCHEMA_OK);
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
    assert_int_equal(tl_schema_store_register(s, "tally.interest-value", compact, &id, err,
                                              sizeof(err)), TL_SCHEMA_OK);
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
        {"GET", "/schemas/ids/500", 500, "{\"error_code\":50001,\"message\":\"Error in the backend\"}"},
        {"GET", "/schemas/ids/7", 200, proto},
        {"GET", "/schemas/ids/8", 200, garbage},
        {"GET", "/schemas/ids/9", 200, "{\"subject\":\"no schema here\"}"},
    };
    server srv;
    server_start(&srv, routes, (int)(sizeof(routes) / sizeof(routes[0])));
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);   /* trailing '/' trimmed */
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);
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
    assert_int_equal(tl_schema_store_get(s, 500, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_non_null(strstr(err, "Error in the backend"));
    assert_int_equal(tl_schema_store_get(s, 500, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(server_requests(&srv), 4);

    /* A 404 that is not a registry "schema not found" (no such route: error_code 404):
     * the URL is probably wrong; that is an error, not a missing schema. */
    assert_int_equal(tl_schema_store_get(s, 43, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_non_null(strstr(err, "HTTP 404"));

    /* Found but unusable. */
    assert_int_equal(tl_schema_store_get(s, 7, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    assert_non_null(strstr(err, "PROTOBUF"));
    assert_int_equal(tl_schema_store_get(s, 8, &sc, err, sizeof(err)), TL_SCHEMA_INVALID);
    assert_non_null(strstr(err, "not a valid Avro schema"));
    assert_int_equal(tl_schema_store_get(s, 9, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_non_null(strstr(err, "\"schema\""));

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
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR, .registry_url = url,
                              .basic_auth = "alice:s3cret"};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);

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
    s = tl_schema_store_new(&o2, err, sizeof(err));
    assert_non_null(s);
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
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_non_null(strstr(err, url));
    /* Not cached as missing: the next lookup asks again. */
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(tl_schema_store_registry_requests(s), 2);
    tl_schema_store_destroy(s);
}

static void test_register_registry(void **state)
{
    const route routes[] = {
        {"POST", "/subjects/tally.interest-value/versions", 200, "{\"id\":12}"},
        {"POST", "/subjects/bad%20subject/versions", 409,
         "{\"error_code\":409,\"message\":\"Schema being registered is incompatible\"}"},
    };
    server srv;
    server_start(&srv, routes, 2);
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    tl_schema_store_opts o = {.dir = TALLY_SCHEMA_DIR, .registry_url = url};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);

    char *interest = repo_schema("2-interest_delta.avsc");
    int id = -1;
    assert_int_equal(tl_schema_store_register(s, "tally.interest-value", interest, &id, err,
                                              sizeof(err)), TL_SCHEMA_OK);
    /* The registry's id, not the directory's (2). */
    assert_int_equal(id, 12);
    assert_string_equal(srv.method, "POST");
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
    assert_int_equal(tl_schema_store_get(s, 12, &sc, err, sizeof(err)), TL_SCHEMA_OK);
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
         "{\"subject\":\"tally.interest-value\",\"id\":12,\"version\":1,\"schema\":\"\\\"string\\\"\"}"},
        {"POST", "/subjects/missing-value", 404,
         "{\"error_code\":40401,\"message\":\"Subject 'missing-value' not found.\"}"},
        {"POST", "/subjects/other-value", 404, NOT_FOUND},
    };
    server srv;
    server_start(&srv, routes, (int)(sizeof(routes) / sizeof(routes[0])));
    pthread_mutex_lock(&srv.mu);   /* the server thread reads it under mu */
    srv.require_auth = "Basic YWxpY2U6czNjcmV0";   /* alice:s3cret */
    pthread_mutex_unlock(&srv.mu);
    char url[128], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);

    /* No credentials: 401 is an error (not "not found"), not cached. */
    tl_schema_store_opts o = {.registry_url = url, .timeout_ms = 5000};
    tl_schema_store *s = tl_schema_store_new(&o, err, sizeof(err));
    assert_non_null(s);
    avro_schema_t sc;
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_non_null(strstr(err, "Unauthorized"));
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_ERROR);
    assert_int_equal(server_requests(&srv), 2);
    tl_schema_store_destroy(s);

    /* With them, looking up only. */
    tl_schema_store_opts o2 = {.registry_url = url, .basic_auth = "alice:s3cret",
                               .lookup_only = 1};
    s = tl_schema_store_new(&o2, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(tl_schema_store_get(s, 100, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    char *interest = repo_schema("2-interest_delta.avsc");
    int id = -1;
    assert_int_equal(tl_schema_store_register(s, "tally.interest-value", interest, &id, err,
                                              sizeof(err)), TL_SCHEMA_OK);
    assert_int_equal(id, 12);
    assert_string_equal(srv.method, "POST");
    assert_string_equal(srv.path, "/subjects/tally.interest-value");
    assert_int_equal(tl_schema_store_get(s, 12, &sc, err, sizeof(err)), TL_SCHEMA_OK);
    assert_string_equal(avro_schema_name(sc), "InterestDelta");

    /* A subject that does not exist, and one without this schema: not found, naming the
     * subject and the switch; never the password. */
    assert_int_equal(tl_schema_store_register(s, "missing-value", interest, &id, err,
                                              sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_string_equal(srv.path, "/subjects/missing-value");
    assert_non_null(strstr(err, "subject missing-value is not registered"));
    assert_non_null(strstr(err, "schema.registry.auto.register=false"));
    assert_int_equal(tl_schema_store_register(s, "other-value", interest, &id, err,
                                              sizeof(err)), TL_SCHEMA_NOT_FOUND);
    assert_non_null(strstr(err, "subject other-value does not hold this schema"));
    assert_null(strstr(err, "s3cret"));
    tl_schema_store_destroy(s);
    server_stop(&srv);
    free(interest);
    free(be);
    free(hit);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
