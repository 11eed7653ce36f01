/*
 * fuzz_http.c -- HTTP request paths and query strings of `tally run`'s endpoints
 * (/metrics, /healthz, /readyz, /v1/users/{user_id}?as_of=&top=, and the parameters of
 * /v1/attribution?by=&window=&from=&to=&methods=&format=&min_purchases=, which are
 * checked before any topic is read: here the instance has no partitions, so a valid query
 * is 503 and reading the topics is left to integration.http on a real broker).
 *
 * The routing and the query parsing (handle and user in app/observe.c) are static, and
 * the path and query are split and percent-decoded by libmicrohttpd before they reach
 * them (lib/http.c), so the harness goes in where the bytes come in: it links the
 * command's files (tally_fuzz_cmd in fuzz.cmake), starts the endpoints with tl_observe_start on a
 * loopback port, attaches a runtime whose partition 0 holds users made by the real
 * stages (tl_pipeline) from a few events, and sends each input as the request target of
 * a GET over a TCP connection. A user's record is read from RocksDB
 * (tl_runtime_read_user) and rendered by tl_profile_render, as in production.
 *
 * Input: the request target ("/v1/users/u1?as_of=1700000000000&top=3"). Inputs holding a
 * CR or LF are rejected (they would fuzz the request's header lines, not its target).
 *
 * Asserted:
 *   - the server answers every request (within 5 s) with an HTTP/1.x status line;
 *   - every answer of tally's handler is one of 200, 400, 404, 500, 503, and every JSON
 *     answer (application/json) is one JSON object, with "user_id" (a profile) or
 *     "error";
 *   - a known user's path without a query answers 200.
 */
#include "app/config.h"
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "app/observe.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/json.h"
#include "engine/runtime.h"
#include "engine/state.h"
#include "lib/util.h"
#include "model/pipeline.h"
#include "sink/sinks.h"

static const char *const users[] = {"u1", "user 2", "\xc3\xbc-3", "a%b", "x/y", "q?r&s=t"};
#define N_USERS ((int)(sizeof(users) / sizeof(users[0])))

static int port;
static tl_config *cfg;
static tl_pipeline pipeline;
static tl_sink *sink;
static tl_runtime *rt;
static tl_observe *obs;

/* A free loopback port (bound, read and released: the server binds it right after). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        fuzz_fail(__FILE__, __LINE__, "port", "%s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* Users with interests, a journey, an attribution and next categories, made by the stages
 * from events. */
static void make_users(tl_store *s)
{
    static const char *const cats[] = {"c1", "c2", NULL};
    static const char *const chans[] = {"search", "email", NULL};
    static const tl_event_type types[] = {TL_IMPRESSION,  TL_CLICK,    TL_BROWSE,
                                          TL_ADD_TO_CART, TL_PURCHASE, TL_CLICK};
    int64_t ts = 1700000000000;
    for (int u = 0; u < N_USERS; u++) {
        for (int k = 0; k < 6; k++) {
            char eid[32], item[32];
            snprintf(eid, sizeof(eid), "e%d-%d", u, k);
            snprintf(item, sizeof(item), "i%d", k % 3);
            tl_event ev = {.event_id = eid,
                           .user_id = users[u],
                           .item_id = item,
                           .category_id = cats[k % 3],
                           .channel = chans[(k + u) % 3],
                           .type = types[k],
                           .ts = ts,
                           .dwell_ms = 1500 * k,
                           .has_dwell = k % 2,
                           .value = 19.5,
                           .has_value = types[k] == TL_PURCHASE};
            ts += 60000;
            tl_store_observe_ts(s, ev.ts);
            tl_user *usr = tl_store_get(s, users[u]);
            for (int st = 0; st < pipeline.n_stages; st++) {
                tl_rc rc = pipeline.stages[st].process(pipeline.stages[st].ctx, s, usr, &ev,
                                                       fuzz_arena(), sink);
                if (rc != TL_OK) fuzz_fail(__FILE__, __LINE__, "process", "stage %d: %d", st, rc);
            }
            tl_arena_reset(fuzz_arena());
        }
    }
    char err[512];
    if (tl_store_flush(s, 1, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "flush", "%s", err);
}

/* At exit, so LeakSanitizer's check at exit sees only what the inputs leaked. */
static void cleanup(void)
{
    tl_observe_detach(obs);
    tl_observe_stop(obs);
    tl_runtime_destroy(rt);
    tl_sink_destroy(sink);
    tl_pipeline_destroy(&pipeline);
    tl_config_destroy(cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    char err[512], listen[64], state_dir[1100];
    snprintf(state_dir, sizeof(state_dir), "%s/state", fuzz_tmpdir());
    port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    cfg = tl_config_new(tl_app_config);
    /* the next categories on: users with a next-category view, and their metrics */
    if (tl_config_set(cfg, "http.listen", listen, "fuzz", err, sizeof(err)) != 0 ||
        tl_config_set(cfg, "state.dir", state_dir, "fuzz", err, sizeof(err)) != 0 ||
        tl_config_set(cfg, "categories.enabled", "true", "fuzz", err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "config", "%s", err);
    if (tl_pipeline_init(&pipeline, cfg, state_dir, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "pipeline", "%s", err);
    tl_runtime_opts ro;
    tl_app_cfg ac;
    if (tl_app_cfg_load(&ac, cfg, err, sizeof(err)) != 0)
        fuzz_fail(__FILE__, __LINE__, "config", "%s", err);
    tl_app_runtime_opts(&ac, &ro);
    sink = tl_avro_sink_new(2, 3, 4, 12, 13);
    rt = tl_runtime_new(&ro, sink, pipeline.stages, pipeline.n_stages);
    int64_t next;
    if (tl_runtime_assigned(rt, 0, &next) != 0) fuzz_fail(__FILE__, __LINE__, "assign", "p0");
    make_users(tl_runtime_store(rt, 0));
    obs = tl_observe_start(cfg, err, sizeof(err));
    if (!obs) fuzz_fail(__FILE__, __LINE__, "observe", "%s", err);
    static const char *const topics[6] = {"tally.interest-deltas", "tally.attributions",
                                          "tally.credit-deltas",   "tally.dlq",
                                          "tally.intent-deltas",   "tally.next-categories"};
    tl_observe_attach(obs, rt, NULL, sink, &pipeline, "tally.events", topics);
    atexit(cleanup);
    return 0;
}

/* One GET of target; the whole answer (until the server closes) into resp. */
static void get(const uint8_t *target, size_t n, tl_buf *resp)
{
    tl_buf req = {0};
    tl_buf_puts(&req, "GET ");
    tl_buf_append(&req, target, n);
    tl_buf_puts(&req, " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* libFuzzer's timer (SIGALRM, every second) interrupts blocking calls: a connect
     * interrupted goes on in the background, so wait for it and read its outcome. */
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc != 0 && errno == EINTR) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        while ((rc = poll(&p, 1, 5000)) < 0 && errno == EINTR) {}
        if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) rc = 0;
        else rc = -1, errno = err ? err : ETIMEDOUT;
    }
    FUZZ_CHECK(rc == 0, "connect: %s", strerror(errno));
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;   /* the server may answer (and close) before reading it all */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char chunk[16384];
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r == 0) break;
        if (r < 0 && errno == EINTR) continue;
        FUZZ_CHECK(r > 0 || errno == ECONNRESET, "no answer: %s", strerror(errno));
        if (r < 0) break;
        tl_buf_append(resp, chunk, (size_t)r);
    }
    close(fd);
    tl_buf_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\r', size) || memchr(data, '\n', size)) return -1;
    tl_buf resp = {0};
    get(data, size, &resp);
    tl_buf_putc(&resp, '\0');
    resp.len--;
    int status = 0;
    FUZZ_CHECK(resp.len >= 12 && !strncmp(resp.data, "HTTP/1.", 7) &&
                   sscanf(resp.data + 9, "%3d", &status) == 1,
               "not an HTTP answer: %.200s", resp.data);
    const char *end = strstr(resp.data, "\r\n\r\n");
    FUZZ_CHECK(end != NULL, "no end of headers: %.200s", resp.data);
    const char *body = end + 4;
    size_t body_len = resp.len - (size_t)(body - resp.data);
    int json = strstr(resp.data, "Content-Type: application/json") != NULL &&
        strstr(resp.data, "Content-Type: application/json") < end;
    int ours = json ||
        (strstr(resp.data, "Content-Type: text/plain") &&
         strstr(resp.data, "Content-Type: text/plain") < end);
    if (ours)
        FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 500 ||
                       status == 503,
                   "status %d from tally's handler", status);
    if (json) {
        char jerr[128];
        const tl_json *j = tl_json_parse(body, body_len, fuzz_arena(), jerr, sizeof(jerr));
        FUZZ_CHECK(j && j->type == TL_JSON_OBJECT,
                   "status %d: the body is not a JSON object: "
                   "%s: %.300s",
                   status, jerr, body);
        FUZZ_CHECK(tl_json_get(j, "user_id") || tl_json_get(j, "error"),
                   "status %d: neither a profile nor an error: %.300s", status, body);
    }
    if (size == 12 && !memcmp(data, "/v1/users/u1", 12))
        FUZZ_CHECK(status == 200, "/v1/users/u1 answered %d: %.300s", status, body);
    tl_buf_free(&resp);
    tl_arena_reset(fuzz_arena());
    return 0;
}
