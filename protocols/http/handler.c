/*
 * http: the C handler API of weft/http.h. A request for a handler owns a
 * copy of its head and body, so it lives on after the bytes it came in
 * are gone and while the handler answers later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "protocols/http/server.h"

/* Answers buffered in one read's batch before they are written out. */
#define HANDLER_BATCH_MAX (64 * 1024)

struct weft_http_request {
    struct http_conn *h; /* NULL once the connection is gone */
    const struct http_hroute *hr;
    struct http_request req; /* pointers into head */
    char *head;
    struct strbuf body;
    struct strbuf headers; /* added by the handler */
    void *data;
    weft_http_writable_fn on_writable;
    void *writable_arg;
    bool running;   /* handle() has been called */
    bool started;   /* the answer began */
    bool chunked;   /* a chunked stream */
    int status;
    uint64_t bytes; /* body bytes answered */
};

/* NUL-terminate every piece of the parsed head, in place. */
static void handler_terminate(struct http_request *req)
{
    ((char *)req->method_str)[req->method_len] = '\0';
    ((char *)req->path)[req->path_len] = '\0';
    if (req->query != NULL)
        ((char *)req->query)[req->query_len] = '\0';
    for (size_t i = 0; i < req->nheaders; i++) {
        struct http_header *hd = &req->headers[i];
        ((char *)hd->name)[hd->name_len] = '\0';
        ((char *)hd->value)[hd->value_len] = '\0';
    }
}

int http_handler_begin(struct http_conn *h, const struct http_hroute *hr,
                       const char *head, size_t len)
{
    struct weft_http_request *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->head = malloc(len + 1)) == NULL)
        goto fail;
    memcpy(r->head, head, len);
    r->head[len] = '\0';
    /* The same bytes parse the same: only the pointers move. */
    if (http_parse_request(r->head, len, NULL, &r->req) != (int)len)
        goto fail;
    handler_terminate(&r->req);
    r->h = h;
    r->hr = hr;
    h->req = r;
    return 0;
fail:
    if (r != NULL)
        free(r->head);
    free(r);
    return -1;
}

void http_handler_body(void *arg, const char *data, size_t len)
{
    struct http_conn *h = arg;

    strbuf_add(&h->req->body, data, len);
}

static void handler_free(struct weft_http_request *r)
{
    strbuf_free(&r->body);
    strbuf_free(&r->headers);
    free(r->head);
    free(r);
}

void http_handler_run(struct http_conn *h)
{
    struct weft_http_request *r = h->req;

    if (r->body.failed) {
        struct http_worker *hw = weft_listener_data(h->l);
        http_handler_abort(h);
        http_answer_status(h, &hw->out, hw, 503, NULL);
        return;
    }
    r->running = true;
    h->state = H_WAIT;
    r->hr->handler->handle(r, r->hr->conf);
}

void http_handler_abort(struct http_conn *h)
{
    struct weft_http_request *r = h->req;

    h->req = NULL;
    r->h = NULL;
    if (!r->running) {
        handler_free(r);
    } else if (r->hr->handler->aborted != NULL) {
        r->hr->handler->aborted(r, r->hr->conf);
        handler_free(r);
    }
    /* Else the handler still holds r: its answer will free it. */
}

void http_handler_writable(struct http_conn *h)
{
    struct weft_http_request *r = h->req;

    if (r->on_writable != NULL)
        r->on_writable(r, r->writable_arg);
}

/* The answer ended: free r and let the connection read on. */
static void handler_finish(struct weft_http_request *r)
{
    struct http_conn *h = r->h;

    handler_free(r);
    if (h != NULL)
        http_request_finished(h);
}

/* ---- The request -------------------------------------------------------- */

const char *weft_http_method(const struct weft_http_request *r)
{
    return r->req.method_str;
}

const char *weft_http_path(const struct weft_http_request *r, size_t *len)
{
    if (len != NULL)
        *len = r->req.path_len;
    return r->req.path;
}

const char *weft_http_query(const struct weft_http_request *r, size_t *len)
{
    if (len != NULL)
        *len = r->req.query_len;
    return r->req.query != NULL ? r->req.query : "";
}

const char *weft_http_header(const struct weft_http_request *r,
                             const char *name, size_t *len)
{
    const struct http_header *hd = http_header_find(&r->req, name);

    if (hd == NULL)
        return NULL;
    if (len != NULL)
        *len = hd->value_len;
    return hd->value;
}

size_t weft_http_header_count(const struct weft_http_request *r)
{
    return r->req.nheaders;
}

const char *weft_http_header_at(const struct weft_http_request *r, size_t i,
                                const char **value)
{
    if (i >= r->req.nheaders)
        return NULL;
    if (value != NULL)
        *value = r->req.headers[i].value;
    return r->req.headers[i].name;
}

const char *weft_http_body(const struct weft_http_request *r, size_t *len)
{
    if (len != NULL)
        *len = r->body.len;
    return r->body.data != NULL ? r->body.data : "";
}

int weft_http_minor(const struct weft_http_request *r)
{
    return r->req.minor;
}

struct weft_conn *weft_http_conn(const struct weft_http_request *r)
{
    return r->h != NULL ? r->h->c : NULL;
}

void *weft_http_data(const struct weft_http_request *r)
{
    return r->data;
}

void weft_http_set_data(struct weft_http_request *r, void *data)
{
    r->data = data;
}

/* ---- The answer ---------------------------------------------------------- */

static bool handler_token_ok(const char *s)
{
    return s[0] != '\0' && strpbrk(s, "\r\n:") == NULL;
}

int weft_http_add_header(struct weft_http_request *r, const char *name,
                         const char *value)
{
    if (r->started || !handler_token_ok(name) ||
        !http_value_ok(value)) {
        errno = EINVAL;
        return -1;
    }
    strbuf_puts(&r->headers, name);
    strbuf_add(&r->headers, ": ", 2);
    strbuf_puts(&r->headers, value);
    strbuf_add(&r->headers, "\r\n", 2);
    return 0;
}

/*
 * Begin an answer: check it may start, then write its head (with length
 * len, or none when len < 0) into b. Returns 0, or -1 when the answer
 * must not go out (r freed when the connection is gone).
 */
static int handler_head(struct weft_http_request *r, struct strbuf *b,
                        int status, const char *type, long long len)
{
    struct http_conn *h = r->h;

    if (r->started || status < 200 || status > 599 ||
        (type != NULL && !http_value_ok(type))) {
        errno = EINVAL;
        return -1;
    }
    r->started = true;
    r->status = status;
    if (h == NULL) {
        errno = EPIPE;
        return -1;
    }
    http_head_begin(b, weft_listener_data(h->l), status);
    if (type != NULL) {
        strbuf_add(b, "Content-Type: ", 14);
        strbuf_puts(b, type);
        strbuf_add(b, "\r\n", 2);
    }
    strbuf_add(b, r->headers.data, r->headers.len);
    http_head_end(b, h, len);
    return 0;
}

/* Write b and then data, at once or into the batch, in order. */
static int handler_send(struct weft_http_request *r, struct strbuf *b,
                        const void *data, size_t len)
{
    struct http_conn *h = r->h;
    struct http_worker *hw = weft_listener_data(h->l);
    int rc;

    if (b->failed) {
        strbuf_free(b);
        return -1;
    }
    if (hw->batch == h) {
        strbuf_add(&hw->out, b->data, b->len);
        strbuf_add(&hw->out, data, len);
        rc = 0;
        /* A stream written from handle() itself: backpressure too. */
        if (hw->out.len >= HANDLER_BATCH_MAX && (rc = http_flush(h)) == 1)
            h->blocked = true;
    } else {
        struct iovec iov[2] = { { b->data, b->len }, { (void *)data, len } };
        rc = weft_conn_writev(h->c, iov, len > 0 ? 2 : 1);
        if (rc == 1)
            h->blocked = true;
    }
    b->len = 0;
    return rc;
}

/* No body on a HEAD answer, a 204 or a 304. */
static bool handler_bodyless(const struct weft_http_request *r, int status)
{
    return r->h->head_only || status == 204 || status == 304;
}

int weft_http_respond(struct weft_http_request *r, int status,
                      const char *type, const void *body, size_t len)
{
    struct strbuf b = { 0 };
    int rc = -1;

    if (r->started && r->h != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (handler_head(r, &b, status, type,
                     status == 204 || status == 304 ? -1 : (long long)len)
        == 0) {
        struct http_conn *h = r->h;
        size_t n = handler_bodyless(r, status) ? 0 : len;
        if (http_closing(h))
            h->close_after = true;
        rc = handler_send(r, &b, body, n) == -1 ? -1 : 0;
        http_done(h, status, n);
    }
    strbuf_free(&b);
    if (r->started)
        handler_finish(r);
    return rc;
}

int weft_http_respond_file(struct weft_http_request *r, int status,
                           const char *type, int fd, off_t off, size_t len)
{
    struct strbuf b = { 0 };
    int rc = -1;

    if (r->started && r->h != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (handler_head(r, &b, status, type, (long long)len) == 0) {
        struct http_conn *h = r->h;
        bool body = !handler_bodyless(r, status);
        if (http_closing(h))
            h->close_after = true;
        rc = handler_send(r, &b, NULL, 0);
        if (rc != -1 && body && len > 0) {
            http_flush(h);
            rc = weft_conn_sendfile(h->c, fd, off, len);
        }
        http_done(h, status, body ? len : 0);
        rc = rc == -1 ? -1 : 0;
    }
    strbuf_free(&b);
    if (r->started)
        handler_finish(r);
    return rc;
}

int weft_http_stream_start(struct weft_http_request *r, int status,
                           const char *type)
{
    struct http_conn *h = r->h;
    struct strbuf b = { 0 };
    int rc = -1;

    /* HTTP/1.0 has no chunks: closing the connection ends the body. */
    if (h != NULL && !r->started && !h->head_only) {
        if (h->http10)
            h->close_after = true;
        else if (weft_http_add_header(r, "Transfer-Encoding", "chunked"))
            return -1;
    }
    if (handler_head(r, &b, status, type, -1) == 0) {
        r->chunked = !r->h->http10 && !r->h->head_only;
        if (http_closing(r->h))
            r->h->close_after = true;
        rc = handler_send(r, &b, NULL, 0);
    }
    strbuf_free(&b);
    return rc;
}

int weft_http_stream_write(struct weft_http_request *r, const void *data,
                           size_t len)
{
    struct strbuf b = { 0 };
    int rc;

    if (!r->started || r->h == NULL) {
        errno = r->started ? EPIPE : EINVAL;
        return -1;
    }
    if (len == 0 || r->h->head_only)
        return 0; /* an empty chunk would end the body */
    if (r->chunked) {
        char size[20];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        strbuf_add(&b, size, (size_t)n);
    }
    rc = handler_send(r, &b, data, len);
    if (r->chunked && rc != -1) {
        int rc2;
        strbuf_add(&b, "\r\n", 2);
        rc2 = handler_send(r, &b, NULL, 0);
        rc = rc2 != 0 ? rc2 : rc;
    }
    r->bytes += len;
    strbuf_free(&b);
    return rc;
}

void weft_http_stream_end(struct weft_http_request *r)
{
    if (r->started && r->h != NULL) {
        if (r->chunked) {
            struct strbuf b = { 0 };
            strbuf_add(&b, "0\r\n\r\n", 5);
            handler_send(r, &b, NULL, 0);
            strbuf_free(&b);
        }
        http_done(r->h, r->status, r->bytes);
    }
    handler_finish(r);
}

void weft_http_on_writable(struct weft_http_request *r,
                           weft_http_writable_fn fn, void *arg)
{
    r->on_writable = fn;
    r->writable_arg = arg;
}
