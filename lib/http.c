/*
 * http.c -- the operational HTTP server (http.h) on libmicrohttpd's internal thread.
 */
#include "http.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct tl_http {
    struct MHD_Daemon *d;
    tl_http_handler h;
    void *arg;
    int port;
};

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) return -1;
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host)) return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!hl || !strcmp(host, "*")) sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost")) sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) return -1;
    return 0;
}

const char *tl_http_arg(const tl_http_request *r, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state)
{
    tl_http *s = cls;
    (void)version;
    (void)upload;
    if (!*state) {   /* the first call only announces the request */
        *state = s;
        return MHD_YES;
    }
    tl_buf body = {0};
    const char *type = "text/plain; charset=utf-8";
    int status;
    if (*upload_len || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
        *upload_len = 0;
        status = 405;
        tl_buf_puts(&body, "only GET and HEAD\n");
    } else {
        status = s->h(s->arg, url, (const tl_http_request *)c, &body, &type);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body.len, body.data ? body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    tl_buf_free(&body);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* libmicrohttpd's own messages (a failed bind, a refused connection) join tally's log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    TL_LOG_WARN("http", "%s", msg);
}

tl_http *tl_http_start(const char *listen, tl_http_handler h, void *arg, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0) {
        snprintf(err, errlen, "http.listen: expected host:port (IPv4), got '%s'", listen);
        return NULL;
    }
    tl_http *s = tl_xcalloc(1, sizeof(*s));
    s->h = h;
    s->arg = arg;
    /* The port argument only names the port in libmicrohttpd's messages: it binds the
     * address given by MHD_OPTION_SOCK_ADDR. */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa.sin_port),
                            NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                            /* a slow request (/v1/attribution reads two topics) must not
                             * hold up /healthz and /metrics: 4 threads answer */
                            MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen,
                 "http.listen: cannot listen on %s (in use, or not an address of this "
                 "host)",
                 listen);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    return s;
}

int tl_http_port(const tl_http *s) { return s->port; }

void tl_http_stop(tl_http *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}
