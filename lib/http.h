/*
 * http.h -- a small HTTP/1.1 server for tally's operational endpoints (libmicrohttpd,
 * a pool of four threads, GET and HEAD only).
 *
 * The handler runs on the server's threads, several at once, never on the processing
 * thread: whatever it reads must be safe to read concurrently (atomics, prom.h metrics,
 * RocksDB Gets).
 */
#ifndef TL_HTTP_H
#define TL_HTTP_H

#include "util.h"

typedef struct tl_http tl_http;

typedef struct tl_http_request tl_http_request;

/* A query argument of the request (?key=value, decoded), or NULL. */
const char *tl_http_arg(const tl_http_request *r, const char *key);

/* Fills body, sets *content_type (a static string) and returns the status code. path
 * is the request path without the query, percent-decoded once (by libmicrohttpd). */
typedef int (*tl_http_handler)(void *arg, const char *path, const tl_http_request *r, tl_buf *body,
                               const char **content_type);

/* listen: "host:port" (host may be empty or "0.0.0.0" for every interface; port 0 picks
 * a free one). NULL with a message on error (bad address, port in use). */
tl_http *tl_http_start(const char *listen, tl_http_handler h, void *arg, char *err, size_t errlen);
int tl_http_port(const tl_http *s);   /* the port bound */
void tl_http_stop(tl_http *s);        /* NULL is a no-op; waits for the handler to return */

#endif
