/*
 * http: an HTTP/1.1 server of fixed responses (routes from the config).
 *
 *   http = { routes = ( { path = "/hello"; status = 200;
 *                         body = "Hello, World!"; type = "text/plain"; } );
 *            header_timeout = 10000; max_body = 1048576; };
 *
 * Keep-alive and pipelining: every request parsed from one read is
 * answered into one buffer that goes out with one write, in order. Bodies
 * (Content-Length or chunked) are read and discarded. A malformed request
 * gets its status and the connection is closed after it. A draining worker
 * answers the next request with "Connection: close" and closes a
 * connection that stays idle for a moment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/http/parse.h"
#include "protocols/registry.h"
#include "shared/strbuf.h"

#define HTTP_ROUTES_MAX 64
/* An idle keep-alive connection of a draining worker closes after this. */
#define HTTP_DRAIN_GRACE_MS 1000

struct http_route {
    char *path;
    size_t path_len;
    int status;
    char *type;
    char *body;
    size_t body_len;
};

/* What configure builds: read-only in the workers. */
struct http_conf {
    struct http_limits limits;
    unsigned header_timeout; /* ms for a request head to arrive whole */
    uint64_t max_body;
    size_t nroutes;
    struct http_route routes[HTTP_ROUTES_MAX];
};

/* Per worker and listener: the Date header and the response buffer. */
struct http_worker {
    char date[40];
    struct weft_timer *tick;
    struct strbuf out;
};

enum http_state { H_HEAD, H_BODY, H_CHUNKED, H_DONE };

/*
 * Per connection. The answer is decided when the head is parsed (its
 * bytes are gone once the body has been read) and sent when the body is.
 */
struct http_conn {
    struct weft_listener *l;
    struct weft_timer *timer; /* header timeout, or drain grace */
    const struct http_route *route; /* NULL: 404 */
    unsigned char state;      /* enum http_state */
    bool close_after;         /* last response sent: close */
    bool head_only;           /* HEAD: no body in the answer */
    bool not_allowed;         /* a method the routes do not serve */
    bool keep_alive;
    bool http10;
    uint64_t body_left;
    struct http_chunked chunked;
};

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

/* ---- Configuration (supervisor) ---------------------------------------- */

static void http_unconfigure(void *arg)
{
    struct http_conf *conf = arg;

    if (conf == NULL)
        return;
    for (size_t i = 0; i < conf->nroutes; i++) {
        free(conf->routes[i].path);
        free(conf->routes[i].type);
        free(conf->routes[i].body);
    }
    free(conf);
}

/* One route group: path (required), status, body, type. */
static int http_route_load(struct weft_settings *r, struct http_route *rt)
{
    const char *path, *body, *type;
    long long status;

    weft_settings_string(r, "path", NULL, &path);
    weft_settings_int(r, "status", 100, 599, 200, &status);
    weft_settings_string(r, "body", "", &body);
    weft_settings_string(r, "type", "text/plain", &type);
    if (path == NULL || path[0] != '/') {
        weft_settings_error(r, "path", "required: a path starting with /");
        return -1;
    }
    rt->path = strdup(path);
    rt->path_len = strlen(path);
    rt->type = strdup(type);
    rt->body = strdup(body);
    rt->body_len = strlen(body);
    rt->status = (int)status;
    if (rt->path == NULL || rt->type == NULL || rt->body == NULL) {
        weft_settings_error(r, NULL, "out of memory");
        return -1;
    }
    return 0;
}

static void *http_configure(struct weft_settings *s)
{
    struct http_conf *conf = calloc(1, sizeof(*conf));
    long long v;

    if (conf == NULL) {
        weft_settings_error(s, NULL, "out of memory");
        return NULL;
    }
    weft_settings_int(s, "max_target", 64, 1 << 20, 8192, &v);
    conf->limits.max_target = (size_t)v;
    weft_settings_int(s, "max_head", 256, 1 << 24, 16384, &v);
    conf->limits.max_head = (size_t)v;
    weft_settings_int(s, "max_body", 0, 1LL << 40, 1 << 20, &v);
    conf->max_body = (uint64_t)v;
    weft_settings_int(s, "header_timeout", 1, 3600000, 10000, &v);
    conf->header_timeout = (unsigned)v;
    int n = weft_settings_count(s, "routes");
    if (n > HTTP_ROUTES_MAX) {
        weft_settings_error(s, "routes", "at most %d routes",
                            HTTP_ROUTES_MAX);
        n = HTTP_ROUTES_MAX;
    }
    for (int i = 0; i < n; i++) {
        struct weft_settings *r = weft_settings_item(s, "routes", i);
        if (r != NULL && http_route_load(r, &conf->routes[conf->nroutes]) == 0)
            conf->nroutes++;
    }
    return conf;
}

/* ---- Per worker -------------------------------------------------------- */

/* The Date header's value, refreshed once a second by a timer. */
static void http_date_update(struct weft_timer *t, void *arg)
{
    struct http_worker *hw = arg;
    time_t now = time(NULL);
    struct tm tm;

    (void)t;
    gmtime_r(&now, &tm);
    strftime(hw->date, sizeof(hw->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int http_start(struct weft_listener *l)
{
    struct http_worker *hw = calloc(1, sizeof(*hw));

    if (hw == NULL)
        return -1;
    http_date_update(NULL, hw);
    hw->tick = weft_timer_repeat(1000, http_date_update, hw);
    weft_listener_set_data(l, hw);
    return hw->tick == NULL ? -1 : 0;
}

static void http_stop(struct weft_listener *l)
{
    struct http_worker *hw = weft_listener_data(l);

    if (hw == NULL)
        return;
    if (hw->tick != NULL)
        weft_timer_cancel(hw->tick);
    strbuf_free(&hw->out);
    free(hw);
}

/* ---- Responses ---------------------------------------------------------- */

/* Status line and headers of a response into out. */
static void http_head(struct strbuf *out, const struct http_worker *hw,
                      int status, const char *type, size_t len, bool close,
                      bool keep_alive_10, const char *extra)
{
    strbuf_printf(out,
                  "HTTP/1.1 %d %s\r\nServer: weft\r\nDate: %s\r\n%s"
                  "Content-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                  status, reason(status), hw->date, extra, type, len,
                  close           ? "Connection: close\r\n"
                  : keep_alive_10 ? "Connection: keep-alive\r\n"
                                  : "");
}

/* An error answer; the connection closes after it. */
static void http_error(struct http_conn *h, struct strbuf *out,
                       const struct http_worker *hw, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

    http_head(out, hw, status, "text/plain", (size_t)n, true, false, "");
    strbuf_add(out, body, (size_t)n);
    h->close_after = true;
    weft_count(h->l, WEFT_COUNT_ERRORS, 1);
}

/* Decide the answer to the request whose head was just parsed. */
static void http_plan(struct http_conn *h, const struct http_conf *conf,
                      const struct http_request *req)
{
    h->route = NULL;
    for (size_t i = 0; i < conf->nroutes && h->route == NULL; i++)
        if (conf->routes[i].path_len == req->path_len &&
            memcmp(conf->routes[i].path, req->path, req->path_len) == 0)
            h->route = &conf->routes[i];
    h->head_only = req->method == HTTP_HEAD;
    h->not_allowed = req->method != HTTP_GET && req->method != HTTP_HEAD;
    h->keep_alive = req->keep_alive;
    h->http10 = req->minor == 0;
}

/* Send the answer planned for the request that just ended. */
static void http_answer(struct http_conn *h, const struct http_worker *hw,
                        struct strbuf *out)
{
    bool close = !h->keep_alive || weft_worker_draining();
    bool ka10 = h->http10 && !close;
    const struct http_route *rt = h->route;

    if (rt == NULL) {
        static const char nf[] = "404 Not Found\n";
        http_head(out, hw, 404, "text/plain", sizeof(nf) - 1, close, ka10,
                  "");
        if (!h->head_only)
            strbuf_add(out, nf, sizeof(nf) - 1);
    } else if (h->not_allowed) {
        static const char na[] = "405 Method Not Allowed\n";
        http_head(out, hw, 405, "text/plain", sizeof(na) - 1, close, ka10,
                  "Allow: GET, HEAD\r\n");
        strbuf_add(out, na, sizeof(na) - 1);
    } else {
        http_head(out, hw, rt->status, rt->type, rt->body_len, close, ka10,
                  "");
        if (!h->head_only)
            strbuf_add(out, rt->body, rt->body_len);
    }
    h->close_after = close;
    weft_count(h->l, WEFT_COUNT_REQUESTS, 1);
}

/* ---- Connections -------------------------------------------------------- */

static void http_timer_stop(struct http_conn *h)
{
    if (h->timer != NULL)
        weft_timer_cancel(h->timer);
    h->timer = NULL;
}

/* The head did not arrive in time (slowloris), or a drain grace ended. */
static void http_timeout(struct weft_timer *t, void *arg)
{
    struct weft_conn *c = arg;
    struct http_conn *h = weft_conn_data(c);
    struct http_worker *hw = weft_listener_data(h->l);

    (void)t;
    h->timer = NULL;
    if (h->state == H_HEAD && !weft_worker_draining()) {
        hw->out.len = 0;
        http_error(h, &hw->out, hw, 408);
        weft_conn_write(c, hw->out.data, hw->out.len);
        hw->out.len = 0;
    }
    weft_conn_close(c);
}

static void http_made(struct weft_conn *c)
{
    struct http_conn *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        weft_conn_abort(c);
        return;
    }
    h->l = weft_conn_listener(c);
    weft_conn_set_data(c, h);
}

/*
 * Consume body bytes of the request in progress. Returns the bytes used;
 * sets h->state back to H_HEAD at the end of the body.
 */
static size_t http_body(struct http_conn *h, const struct http_conf *conf,
                        struct strbuf *out, const struct http_worker *hw,
                        const char *data, size_t len)
{
    if (h->state == H_BODY) {
        size_t n = len < h->body_left ? len : (size_t)h->body_left;
        h->body_left -= n;
        if (h->body_left == 0)
            h->state = H_DONE;
        return n;
    }
    bool done = false;
    long n = http_chunked_feed(&h->chunked, data, len, conf->max_body, NULL,
                               NULL, &done);
    if (n < 0) {
        http_error(h, out, hw, (int)-n);
        return len;
    }
    if (done)
        h->state = H_DONE;
    return (size_t)n;
}

/* A head was parsed: set up for its body. */
static void http_begin(struct http_conn *h, const struct http_conf *conf,
                       struct strbuf *out, const struct http_worker *hw,
                       const struct http_request *req)
{
    http_plan(h, conf, req);
    if (req->chunked) {
        memset(&h->chunked, 0, sizeof(h->chunked));
        h->state = H_CHUNKED;
    } else if (req->content_length > 0) {
        if (conf->max_body && (uint64_t)req->content_length > conf->max_body) {
            http_error(h, out, hw, 413);
            return;
        }
        h->body_left = (uint64_t)req->content_length;
        h->state = H_BODY;
    } else {
        h->state = H_DONE;
    }
    if (h->state != H_DONE && req->expect_continue)
        strbuf_puts(out, "HTTP/1.1 100 Continue\r\n\r\n");
}

/*
 * Parse and answer as many requests as data holds; everything answered
 * goes out in one write at the end.
 */
static size_t http_data(struct weft_conn *c, const char *data, size_t len)
{
    struct http_conn *h = weft_conn_data(c);
    const struct http_conf *conf = weft_listener_conf(h->l);
    struct http_worker *hw = weft_listener_data(h->l);
    struct strbuf *out = &hw->out;
    struct http_request req;
    size_t used = 0;

    out->len = 0;
    while (used < len && !h->close_after) {
        if (h->state == H_BODY || h->state == H_CHUNKED) {
            used += http_body(h, conf, out, hw, data + used, len - used);
            if (h->state != H_DONE)
                break;
        } else {
            int n = http_parse_request(data + used, len - used,
                                       &conf->limits, &req);
            if (n < 0) {
                http_error(h, out, hw, -n);
                used = len;
                break;
            }
            if (n == 0)
                break;
            used += (size_t)n;
            http_begin(h, conf, out, hw, &req);
        }
        if (h->state == H_DONE) {
            http_answer(h, hw, out);
            h->state = H_HEAD;
        }
    }
    /* A partial head waits at most header_timeout; a whole one, never. */
    if (h->state == H_HEAD && used < len && !h->close_after) {
        if (h->timer == NULL)
            h->timer = weft_timer_once(conf->header_timeout, http_timeout, c);
    } else {
        http_timer_stop(h);
    }
    if (out->len > 0 && weft_conn_write(c, out->data, out->len) == 1)
        weft_conn_pause(c);
    out->len = 0;
    if (h->close_after) {
        weft_conn_close(c);
        return len;
    }
    return used;
}

static void http_writable(struct weft_conn *c)
{
    weft_conn_resume(c);
}

/* The worker drains: an idle connection closes after a short grace. */
static void http_drain(struct weft_conn *c)
{
    struct http_conn *h = weft_conn_data(c);

    if (h == NULL || h->state != H_HEAD || h->timer != NULL)
        return;
    h->timer = weft_timer_once(HTTP_DRAIN_GRACE_MS, http_timeout, c);
}

static void http_lost(struct weft_conn *c, enum weft_close_reason why)
{
    struct http_conn *h = weft_conn_data(c);

    (void)why;
    if (h == NULL)
        return;
    http_timer_stop(h);
    free(h);
}

const struct weft_protocol http_protocol = {
    .name = "http",
    .configure = http_configure,
    .unconfigure = http_unconfigure,
    .start = http_start,
    .stop = http_stop,
    .connection_made = http_made,
    .data_received = http_data,
    .writable = http_writable,
    .connection_lost = http_lost,
    .drain = http_drain,
};
