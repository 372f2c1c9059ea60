/*
 * http: an HTTP/1.1 server of fixed responses, C handlers on path
 * prefixes, and static files.
 *
 *   http = { root = "/srv/www";
 *            routes = ( { path = "/hello"; status = 200;
 *                         body = "Hello, World!"; type = "text/plain"; } );
 *            handlers = ( { prefix = "/api/"; handler = "kv"; } ); };
 *
 * A request goes to the fixed route of its exact path, else to the
 * handler of the longest matching prefix, else to a file under root,
 * else 404. Keep-alive and pipelining: every request parsed from one read
 * is answered into one buffer that goes out with one write, in order. A
 * malformed request gets its status and the connection is closed after
 * it. A draining worker answers the next request with "Connection:
 * close" and closes a connection that stays idle for drain_grace.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "protocols/http/server.h"
#include "protocols/registry.h"

/* The longest request line the access log shows. */
#define HTTP_LOG_LINE_MAX 1024

/* ---- Configuration (supervisor) ---------------------------------------- */

static void http_unconfigure(void *arg)
{
    struct http_conf *conf = arg;

    if (conf == NULL)
        return;
    for (size_t i = 0; i < conf->nroutes; i++) {
        free(conf->routes[i].path);
        free(conf->routes[i].body);
        free(conf->routes[i].pre);
        free(conf->routes[i].post);
    }
    for (size_t i = 0; i < conf->nhroutes; i++) {
        struct http_hroute *hr = &conf->hroutes[i];
        if (hr->handler->unconfigure != NULL)
            hr->handler->unconfigure(hr->conf);
        free(hr->prefix);
    }
    free(conf->root);
    free(conf->index);
    free(conf->access_log);
    free(conf);
}

/* The route's head but for Date, prepared once. 0, or -1 (no memory). */
static int http_route_prepare(struct http_route *rt, const char *type)
{
    struct strbuf b = { 0 };

    strbuf_puts(&b, "HTTP/1.1 ");
    http_put_u64(&b, (uint64_t)rt->status);
    strbuf_printf(&b, " %s\r\nServer: weft\r\nDate: ",
                  http_reason(rt->status));
    rt->pre = b.data;
    rt->pre_len = b.len;
    memset(&b, 0, sizeof(b));
    strbuf_printf(&b, "\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", type,
                  rt->body_len);
    rt->post = b.data;
    rt->post_len = b.len;
    return rt->pre == NULL || rt->post == NULL ? -1 : 0;
}

/* One route group: path (required), status, body, type. */
static int http_route_load(struct weft_settings *r, struct http_route *rt)
{
    const char *path, *body, *type;
    long long status;

    weft_settings_string(r, "path", NULL, &path);
    weft_settings_int(r, "status", 200, 599, 200, &status);
    weft_settings_string(r, "body", "", &body);
    weft_settings_string(r, "type", "text/plain", &type);
    if (path == NULL || path[0] != '/') {
        weft_settings_error(r, "path", "required: a path starting with /");
        return -1;
    }
    if (!http_value_ok(type)) {
        weft_settings_error(r, "type", "no CR or LF in a header value");
        return -1;
    }
    rt->path = strdup(path);
    rt->path_len = strlen(path);
    rt->body = strdup(body);
    rt->body_len = strlen(body);
    rt->status = (int)status;
    if (rt->path == NULL || rt->body == NULL ||
        http_route_prepare(rt, type) == -1) {
        weft_settings_error(r, NULL, "out of memory");
        return -1;
    }
    return 0;
}

/* One handler group: prefix and handler (required), then its own keys. */
static int http_hroute_load(struct weft_settings *r, struct http_hroute *hr)
{
    const char *prefix, *name;

    weft_settings_string(r, "prefix", NULL, &prefix);
    weft_settings_string(r, "handler", NULL, &name);
    if (prefix == NULL || prefix[0] != '/') {
        weft_settings_error(r, "prefix", "required: a path starting with /");
        return -1;
    }
    if (name == NULL) {
        weft_settings_error(r, "handler", "required: a handler's name");
        return -1;
    }
    hr->handler = http_handler_find(r, name);
    if (hr->handler == NULL) {
        weft_settings_error(r, "handler",
                            "no http handler '%s': name the module that "
                            "gives it in `modules`", name);
        return -1;
    }
    if ((hr->prefix = strdup(prefix)) == NULL) {
        weft_settings_error(r, NULL, "out of memory");
        return -1;
    }
    hr->prefix_len = strlen(prefix);
    hr->conf = hr->handler->configure ? hr->handler->configure(r) : NULL;
    return 0;
}

/* Read the list key with load() for each group; returns the count. */
static size_t http_load_list(struct weft_settings *s, const char *key,
                             void *items, size_t size,
                             int (*load)(struct weft_settings *, void *))
{
    int n = weft_settings_count(s, key);
    size_t got = 0;

    if (n > HTTP_ROUTES_MAX) {
        weft_settings_error(s, key, "at most %d entries", HTTP_ROUTES_MAX);
        n = HTTP_ROUTES_MAX;
    }
    for (int i = 0; i < n; i++) {
        struct weft_settings *r = weft_settings_item(s, key, i);
        if (r != NULL && load(r, (char *)items + got * size) == 0)
            got++;
    }
    return got;
}

static int http_route_load_v(struct weft_settings *r, void *item)
{
    return http_route_load(r, item);
}

static int http_hroute_load_v(struct weft_settings *r, void *item)
{
    return http_hroute_load(r, item);
}

/* root, index, symlinks, open_files, open_file_valid. */
static void http_static_configure(struct weft_settings *s,
                                  struct http_conf *conf)
{
    const char *root, *index;
    long long v;
    int b;

    weft_settings_string(s, "root", NULL, &root);
    weft_settings_string(s, "index", "index.html", &index);
    weft_settings_bool(s, "symlinks", 0, &b);
    conf->symlinks = b;
    weft_settings_int(s, "open_files", 0, 65536, 1024, &v);
    conf->cache_entries = (unsigned)v;
    weft_settings_int(s, "open_file_valid", 0, 3600000, 1000, &v);
    conf->cache_valid = (unsigned)v;
    if (strchr(index, '/') != NULL || index[0] == '\0' ||
        strcmp(index, ".") == 0 || strcmp(index, "..") == 0)
        weft_settings_error(s, "index", "a file name, without '/'");
    if (root == NULL)
        return;
    if (root[0] == '\0') {
        weft_settings_error(s, "root", "empty");
        return;
    }
    /* A root that does not exist yet answers 404, as nginx does. */
    char *real = realpath(root, NULL);
    if (real == NULL)
        weft_log(WEFT_LOG_WARN, "http: root %s: %s: files will answer 404",
                 root, strerror(errno));
    conf->root = real != NULL ? real : strdup(root);
    conf->index = strdup(index);
    if (conf->root == NULL || conf->index == NULL)
        weft_settings_error(s, NULL, "out of memory");
}

static void *http_configure(struct weft_settings *s)
{
    struct http_conf *conf = calloc(1, sizeof(*conf));
    const char *log;
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
    weft_settings_int(s, "body_timeout", 1, 3600000, 30000, &v);
    conf->body_timeout = (unsigned)v;
    weft_settings_int(s, "keepalive_timeout", 0, 86400000, 75000, &v);
    conf->keepalive_timeout = (unsigned)v;
    weft_settings_int(s, "drain_grace", 0, 3600000, 1000, &v);
    conf->drain_grace = (unsigned)v;
    weft_settings_string(s, "access_log", NULL, &log);
    if (log != NULL && (conf->access_log = strdup(log)) == NULL)
        weft_settings_error(s, "access_log", "out of memory");
    conf->nroutes = http_load_list(s, "routes", conf->routes,
                                   sizeof(conf->routes[0]),
                                   http_route_load_v);
    conf->nhroutes = http_load_list(s, "handlers", conf->hroutes,
                                    sizeof(conf->hroutes[0]),
                                    http_hroute_load_v);
    http_static_configure(s, conf);
    return conf;
}

/* ---- Per worker -------------------------------------------------------- */

/* The Date header's value, refreshed once a second by a timer. */
static void http_date_update(struct weft_timer *t, void *arg)
{
    struct http_worker *hw = arg;

    (void)t;
    hw->date_sec = time(NULL);
    http_date_format(hw->date_sec, hw->date);
}

static void http_stop(struct weft_listener *l)
{
    struct http_worker *hw = weft_listener_data(l);

    if (hw == NULL)
        return;
    if (hw->tick != NULL)
        weft_timer_cancel(hw->tick);
    http_static_stop(hw);
    access_log_close(hw->log);
    strbuf_free(&hw->out);
    free(hw);
    weft_listener_set_data(l, NULL);
}

static int http_start(struct weft_listener *l)
{
    const struct http_conf *conf = weft_listener_conf(l);
    struct http_worker *hw = calloc(1, sizeof(*hw));

    if (hw == NULL)
        return -1;
    hw->root_fd = -1;
    weft_listener_set_data(l, hw);
    http_date_update(NULL, hw);
    hw->tick = weft_timer_repeat(1000, http_date_update, hw);
    if (hw->tick == NULL || http_static_start(hw, conf) == -1)
        goto fail;
    if (conf->access_log != NULL &&
        (hw->log = access_log_open(conf->access_log)) == NULL)
        goto fail;
    return 0;
fail:
    http_stop(l);
    return -1;
}

/* ---- Answers ------------------------------------------------------------ */

/* A malformed request: its status, and the connection closes after it. */
static void http_error(struct http_conn *h, struct http_worker *hw,
                       int status)
{
    h->close_after = true;
    h->head_only = false;
    weft_count(h->l, WEFT_COUNT_ERRORS, 1);
    http_answer_status(h, &hw->out, hw, status, NULL);
    if (h->req != NULL)
        http_handler_abort(h);
}

/* The fixed route's answer: its prepared head, Date, body. */
static void http_answer_route(struct http_conn *h, struct http_worker *hw)
{
    const struct http_route *rt = h->route;
    struct strbuf *out = &hw->out;

    strbuf_add(out, rt->pre, rt->pre_len);
    strbuf_add(out, hw->date, HTTP_DATE_LEN);
    strbuf_add(out, rt->post, rt->post_len);
    http_head_end(out, h, -1);
    if (!h->head_only)
        strbuf_add(out, rt->body, rt->body_len);
    if (http_closing(h))
        h->close_after = true;
    http_done(h, rt->status, h->head_only ? 0 : rt->body_len);
}

/* Answer the request that just ended (its body read). */
static void http_answer(struct http_conn *h, struct http_worker *hw,
                        const struct http_conf *conf)
{
    h->state = H_HEAD;
    switch (h->target) {
    case T_ROUTE:
        http_answer_route(h, hw);
        break;
    case T_HANDLER:
        http_handler_run(h);
        break;
    case T_FILE:
        http_static_answer(h, hw, conf);
        break;
    default:
        http_answer_status(h, &hw->out, hw, h->status,
                           h->status == 405 ? "Allow: GET, HEAD\r\n" : NULL);
        break;
    }
}

/* The C handler of the longest prefix of path, or NULL. */
static const struct http_hroute *http_hroute_find(const struct http_conf *conf,
                                                  const char *path,
                                                  size_t len)
{
    const struct http_hroute *best = NULL;

    for (size_t i = 0; i < conf->nhroutes; i++) {
        const struct http_hroute *hr = &conf->hroutes[i];
        if (hr->prefix_len <= len &&
            memcmp(hr->prefix, path, hr->prefix_len) == 0 &&
            (best == NULL || hr->prefix_len > best->prefix_len))
            best = hr;
    }
    return best;
}

/* Decide where the request whose head was just parsed goes. */
static void http_route(struct http_conn *h, const struct http_conf *conf,
                       const struct http_request *req, const char *head,
                       size_t len)
{
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;

    for (size_t i = 0; i < conf->nroutes; i++) {
        const struct http_route *rt = &conf->routes[i];
        if (rt->path_len == req->path_len &&
            memcmp(rt->path, req->path, req->path_len) == 0) {
            h->route = rt;
            h->target = get ? T_ROUTE : T_STATUS;
            h->status = 405;
            return;
        }
    }
    const struct http_hroute *hr =
        http_hroute_find(conf, req->path, req->path_len);
    if (hr != NULL) {
        h->target = T_HANDLER;
        if (http_handler_begin(h, hr, head, len) == -1) {
            h->target = T_STATUS;
            h->status = 503;
        }
        return;
    }
    h->target = T_STATUS;
    h->status = 404;
    if (conf->root != NULL) {
        int st = get ? http_static_plan(h, req) : 405;
        if (st == 0)
            h->target = T_FILE;
        else
            h->status = st;
    }
}

/* Keep the request line for the access log (the head ends in "\n"). */
static void http_log_line(struct http_conn *h, const char *head, size_t len)
{
    const char *end;

    while (len > 0 && (*head == '\r' || *head == '\n')) {
        head++;
        len--;
    }
    end = memchr(head, '\n', len);
    h->line.len = 0;
    if (end == NULL)
        return;
    while (end > head && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    size_t n = (size_t)(end - head);
    strbuf_add(&h->line, head, n < HTTP_LOG_LINE_MAX ? n : HTTP_LOG_LINE_MAX);
}

/* A head was parsed: route it and set up for its body. */
static void http_begin(struct http_conn *h, struct http_worker *hw,
                       const struct http_conf *conf,
                       const struct http_request *req, const char *head,
                       size_t len)
{
    h->head_only = req->method == HTTP_HEAD;
    h->keep_alive = req->keep_alive;
    h->http10 = req->minor == 0;
    if (hw->log != NULL)
        http_log_line(h, head, len);
    http_route(h, conf, req, head, len);
    if (req->chunked) {
        memset(&h->chunked, 0, sizeof(h->chunked));
        h->state = H_CHUNKED;
    } else if (req->content_length > 0) {
        if (conf->max_body && (uint64_t)req->content_length > conf->max_body) {
            http_error(h, hw, 413);
            return;
        }
        h->body_left = (uint64_t)req->content_length;
        h->state = H_BODY;
    } else {
        h->state = H_DONE;
    }
    if (h->state != H_DONE && req->expect_continue)
        http_emit(h, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/*
 * Consume body bytes of the request in progress: handed to the handler
 * that takes the request, or dropped. Returns the bytes used; sets
 * h->state to H_DONE at the end of the body.
 */
static size_t http_body(struct http_conn *h, struct http_worker *hw,
                        const struct http_conf *conf, const char *data,
                        size_t len)
{
    if (h->state == H_BODY) {
        size_t n = len < h->body_left ? len : (size_t)h->body_left;
        if (h->req != NULL)
            http_handler_body(h, data, n);
        h->body_left -= n;
        if (h->body_left == 0)
            h->state = H_DONE;
        return n;
    }
    bool done = false;
    long n = http_chunked_feed(&h->chunked, data, len, conf->max_body,
                               h->req ? http_handler_body : NULL, h, &done);
    if (n < 0) {
        http_error(h, hw, (int)-n);
        return len;
    }
    if (done)
        h->state = H_DONE;
    return (size_t)n;
}

/* ---- Connections -------------------------------------------------------- */

enum http_timer_kind { TM_NONE, TM_HEAD, TM_BODY, TM_GRACE };

static void http_timer_stop(struct http_conn *h)
{
    if (h->timer != NULL)
        weft_timer_cancel(h->timer);
    h->timer = NULL;
    h->timer_kind = TM_NONE;
}

/*
 * A head or a body did not arrive in time (slowloris): 408 and close. A
 * drain grace ended: close the idle connection.
 */
static void http_timeout(struct weft_timer *t, void *arg)
{
    struct http_conn *h = arg;
    struct http_worker *hw = weft_listener_data(h->l);

    (void)t;
    h->timer = NULL;
    if (h->timer_kind != TM_GRACE) {
        if (h->timer_kind == TM_HEAD)
            h->line.len = 0; /* the request line never came whole */
        hw->out.len = 0;
        http_error(h, hw, 408);
        weft_conn_write(h->c, hw->out.data, hw->out.len);
        hw->out.len = 0;
    }
    h->timer_kind = TM_NONE;
    weft_conn_close(h->c);
}

/* Arm the timer of kind for ms, unless one of that kind runs already. */
static void http_timer_arm(struct http_conn *h, unsigned char kind,
                           unsigned ms)
{
    if (h->timer != NULL && h->timer_kind == kind)
        return;
    http_timer_stop(h);
    h->timer = weft_timer_once(ms, http_timeout, h);
    h->timer_kind = h->timer != NULL ? kind : TM_NONE;
}

static void http_made(struct weft_conn *c)
{
    struct http_conn *h = calloc(1, sizeof(*h));
    const struct http_conf *conf;
    struct http_worker *hw;

    if (h == NULL) {
        weft_conn_abort(c);
        return;
    }
    h->c = c;
    h->l = weft_conn_listener(c);
    conf = weft_listener_conf(h->l);
    hw = weft_listener_data(h->l);
    weft_conn_set_data(c, h);
    if (conf->keepalive_timeout > 0)
        weft_conn_set_idle_timeout(c, conf->keepalive_timeout);
    if (hw->log != NULL)
        h->peer = access_log_peer(c);
}

/* After a read: the timer the connection's state needs. */
static void http_timers(struct http_conn *h, const struct http_conf *conf,
                        bool partial, bool progress)
{
    if (h->close_after || h->state == H_WAIT) {
        http_timer_stop(h);
    } else if (h->state == H_HEAD) {
        /* A partial head waits at most header_timeout; a whole one never. */
        if (partial)
            http_timer_arm(h, TM_HEAD, conf->header_timeout);
        else if (h->timer_kind != TM_GRACE)
            http_timer_stop(h);
    } else {
        /* body_timeout runs between two reads that bring body bytes. */
        if (progress && h->timer_kind == TM_BODY)
            http_timer_stop(h);
        http_timer_arm(h, TM_BODY, conf->body_timeout);
    }
}

/*
 * Parse and answer as many requests as data holds; everything answered
 * goes out in one write at the end. A request a handler has stops the
 * loop: the rest waits, unread, for its answer.
 */
static size_t http_data(struct weft_conn *c, const char *data, size_t len)
{
    struct http_conn *h = weft_conn_data(c);
    const struct http_conf *conf = weft_listener_conf(h->l);
    struct http_worker *hw = weft_listener_data(h->l);
    struct http_request req;
    bool partial = false, progress = false;
    size_t used = 0;

    if (h->state == H_WAIT)
        return 0;
    hw->batch = h;
    if (!h->head_pending)
        h->started_us = http_now_us();
    while (used < len && !h->close_after && h->state != H_WAIT) {
        if (h->state == H_BODY || h->state == H_CHUNKED) {
            used += http_body(h, hw, conf, data + used, len - used);
            progress = true;
            if (h->state != H_DONE)
                break;
        } else {
            int n = http_parse_request(data + used, len - used,
                                       &conf->limits, &req);
            if (n < 0) {
                h->line.len = 0;
                http_error(h, hw, -n);
                used = len;
                break;
            }
            if (n == 0) {
                partial = true;
                break;
            }
            http_begin(h, hw, conf, &req, data + used, (size_t)n);
            used += (size_t)n;
        }
        if (h->state == H_DONE)
            http_answer(h, hw, conf);
    }
    h->head_pending = partial;
    hw->batch = NULL;
    http_timers(h, conf, partial, progress);
    if (hw->out.failed) {
        strbuf_free(&hw->out);
        weft_conn_abort(c);
        return len;
    }
    if (hw->out.len > 0 && weft_conn_write(c, hw->out.data, hw->out.len) == 1)
        h->blocked = true;
    hw->out.len = 0;
    /* A handler still answering closes when it ends (request_finished). */
    if (h->close_after && h->state != H_WAIT) {
        weft_conn_close(c);
        return len;
    }
    /*
     * Behind a handler's request, reading goes on (the bytes stay
     * unconsumed) so that a client that leaves is seen at once.
     */
    if (h->blocked)
        weft_conn_pause(c);
    return used;
}

void http_request_finished(struct http_conn *h)
{
    struct http_worker *hw = weft_listener_data(h->l);

    h->req = NULL;
    h->state = H_HEAD;
    if (hw->batch == h)
        return; /* answered inside http_data: its loop goes on */
    if (h->close_after)
        weft_conn_close(h->c);
    else if (!h->blocked)
        weft_conn_resume(h->c);
}

static void http_writable(struct weft_conn *c)
{
    struct http_conn *h = weft_conn_data(c);

    h->blocked = false;
    if (h->req != NULL)
        http_handler_writable(h);
    else
        weft_conn_resume(c);
}

/* The worker drains: an idle connection closes after a short grace. */
static void http_drain(struct weft_conn *c)
{
    struct http_conn *h = weft_conn_data(c);
    const struct http_conf *conf;

    if (h == NULL || h->state != H_HEAD || h->head_pending ||
        h->timer != NULL)
        return;
    conf = weft_listener_conf(h->l);
    http_timer_arm(h, TM_GRACE, conf->drain_grace);
}

static void http_lost(struct weft_conn *c, enum weft_close_reason why)
{
    struct http_conn *h = weft_conn_data(c);

    (void)why;
    if (h == NULL)
        return;
    http_timer_stop(h);
    if (h->req != NULL)
        http_handler_abort(h);
    strbuf_free(&h->line);
    strbuf_free(&h->file);
    free(h->peer);
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
    .client_first = 1,
};
