/*
 * weft's HTTP server: handlers for path prefixes.
 *
 * A module lists its handlers in struct weft_module (http_handlers); the
 * configuration puts one on a path prefix of an http listener:
 *
 *   http = { handlers = ( { prefix = "/api/"; handler = "kv";
 *                           ... the handler's own settings ... } ); };
 *
 * The http protocol parses the request, reads its body whole (up to the
 * listener's max_body) and calls handle(). The handler answers, at once
 * or later from a timer or another connection's callback, with exactly
 * one of weft_http_respond, weft_http_respond_file, or a stream
 * (weft_http_stream_start, _write..., _end). Requests pipelined behind
 * it wait: answers always go out in order.
 *
 * Every function runs in a worker, on the worker's own thread.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "weft/weft.h"

#ifdef __cplusplus
extern "C" {
#endif

struct weft_http_request;

struct weft_http_handler {
    const char *name; /* what `handler = "..."` names in the config */

    /*
     * Supervisor, while the config loads: read the handler's settings
     * from its route group (weft_settings_*; prefix and handler are
     * already read) and return what handle() gets as conf. NULL hook:
     * conf is NULL. Report errors with weft_settings_error.
     */
    void *(*configure)(struct weft_settings *s);
    void (*unconfigure)(void *conf);

    /* A request for the prefix, with its body read whole. */
    void (*handle)(struct weft_http_request *r, void *conf);

    /*
     * The connection went away before the answer ended. After this
     * returns, r is freed: drop every pointer to it. NULL hook: r stays
     * valid until the handler answers it, and the answer goes nowhere.
     */
    void (*aborted)(struct weft_http_request *r, void *conf);
};

/* ---- The request: valid until the answer ends ------------------------- */

/*
 * Each string is NUL-terminated and points into weft's copy of the
 * request; len (when not NULL) gets its length.
 */
const char *weft_http_method(const struct weft_http_request *r);
/* The path as sent (not decoded), and the query after '?' ("" if none). */
const char *weft_http_path(const struct weft_http_request *r, size_t *len);
const char *weft_http_query(const struct weft_http_request *r, size_t *len);
/* The value of the first header called name (any case), or NULL. */
const char *weft_http_header(const struct weft_http_request *r,
                             const char *name, size_t *len);
/* Header i (0..count-1): its name, and its value in *value. */
size_t weft_http_header_count(const struct weft_http_request *r);
const char *weft_http_header_at(const struct weft_http_request *r, size_t i,
                                const char **value);
/* The body, decoded from chunked if it was ("" and 0 without one). */
const char *weft_http_body(const struct weft_http_request *r, size_t *len);
/* 1 for HTTP/1.1, 0 for HTTP/1.0. */
int weft_http_minor(const struct weft_http_request *r);
/* The connection (for its peer address), or NULL once it is gone. */
struct weft_conn *weft_http_conn(const struct weft_http_request *r);

/* The handler's own per-request pointer. */
void *weft_http_data(const struct weft_http_request *r);
void weft_http_set_data(struct weft_http_request *r, void *data);

/* ---- The answer -------------------------------------------------------- */

/*
 * Add a response header before the answer starts. weft writes Date,
 * Server, Content-Length or Transfer-Encoding and Connection itself.
 * Returns 0, or -1 if the answer has started or the name or value holds
 * a CR, LF or NUL (EINVAL).
 */
int weft_http_add_header(struct weft_http_request *r, const char *name,
                         const char *value);

/*
 * Answer with status (100 < status < 600), a Content-Type (NULL: none)
 * and len bytes of body (copied). For HEAD the body is left out. Ends
 * the request: r is freed when this returns. Returns 0, or -1 when the
 * connection is gone or the answer had started (EINVAL).
 */
int weft_http_respond(struct weft_http_request *r, int status,
                      const char *type, const void *body, size_t len);

/*
 * Answer with len bytes of the open file fd from offset off, sent with
 * sendfile. weft keeps its own descriptor if it must: the caller may
 * close fd on return. Ends the request as weft_http_respond.
 */
int weft_http_respond_file(struct weft_http_request *r, int status,
                           const char *type, int fd, off_t off, size_t len);

/*
 * A streamed body of unknown length: chunked for HTTP/1.1, ended by
 * closing the connection for HTTP/1.0. stream_write returns 0 to go on,
 * 1 when the connection's output queue passed its high watermark (stop
 * and wait for the writable callback), -1 when the connection is gone
 * (call stream_end all the same, which frees r). stream_end ends the
 * request and frees r.
 */
int weft_http_stream_start(struct weft_http_request *r, int status,
                           const char *type);
int weft_http_stream_write(struct weft_http_request *r, const void *data,
                           size_t len);
void weft_http_stream_end(struct weft_http_request *r);

/* Called when a stream that got 1 from stream_write may write again. */
typedef void (*weft_http_writable_fn)(struct weft_http_request *r,
                                      void *arg);
void weft_http_on_writable(struct weft_http_request *r,
                           weft_http_writable_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
