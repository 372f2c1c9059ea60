/*
 * Internal to the http protocol: its configuration, per-worker and
 * per-connection state, shared by http.c (connections and requests),
 * response.c (answers), static.c (files), handler.c (the C handler API)
 * and access_log.c.
 */
#ifndef WEFT_PROTOCOLS_HTTP_SERVER_H
#define WEFT_PROTOCOLS_HTTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "protocols/http/hdate.h"
#include "protocols/http/parse.h"
#include "shared/strbuf.h"
#include "weft/http.h"
#include "weft/weft.h"

#define HTTP_ROUTES_MAX 64

/* A fixed answer, its head prepared at configure but for Date. */
struct http_route {
    char *path;
    size_t path_len;
    int status;
    char *body;
    size_t body_len;
    char *pre;     /* "HTTP/1.1 200 OK\r\nServer: weft\r\nDate: " */
    size_t pre_len;
    char *post;    /* "\r\nContent-Type: ...\r\nContent-Length: N\r\n" */
    size_t post_len;
};

/* A C handler on a path prefix. */
struct http_hroute {
    char *prefix;
    size_t prefix_len;
    const struct weft_http_handler *handler;
    void *conf;
};

/* What configure builds: read-only in the workers. */
struct http_conf {
    struct http_limits limits;
    unsigned header_timeout;    /* ms for a request head to arrive whole */
    unsigned body_timeout;      /* ms between two reads of a body */
    unsigned keepalive_timeout; /* ms without a byte before closing */
    unsigned drain_grace;       /* ms an idle connection gets in a drain */
    uint64_t max_body;
    size_t nroutes;
    struct http_route routes[HTTP_ROUTES_MAX];
    size_t nhroutes;
    struct http_hroute hroutes[HTTP_ROUTES_MAX];
    /* Static files: root is NULL when none are served. */
    char *root;
    char *index;
    bool symlinks;          /* follow symlinks that leave root */
    unsigned cache_entries; /* open files kept per worker */
    unsigned cache_valid;   /* ms before a cached file is checked again */
    char *access_log;       /* path, or NULL: off */
};

struct file_cache;
struct access_log;

/* Per worker and listener. */
struct http_worker {
    char date[HTTP_DATE_LEN + 1];
    time_t date_sec;
    struct weft_timer *tick;
    struct strbuf out;        /* answers of the read being handled */
    struct http_conn *batch;  /* the connection whose read is handled */
    int root_fd;              /* the document root, or -1 */
    struct file_cache *files;
    struct access_log *log;
};

enum http_state {
    H_HEAD,    /* waiting for (the rest of) a request head */
    H_BODY,    /* reading a Content-Length body */
    H_CHUNKED, /* reading a chunked body */
    H_DONE,    /* request complete: answer it */
    H_WAIT     /* a handler has the request: wait for its answer */
};

/* What the request's answer will be, decided when its head is parsed. */
enum http_target {
    T_ROUTE,   /* a fixed route */
    T_HANDLER, /* a C handler */
    T_FILE,    /* a file under root */
    T_STATUS   /* a bare status answer (404, 405, ...) */
};

struct weft_http_request;

/* Per connection. */
struct http_conn {
    struct weft_conn *c;
    struct weft_listener *l;
    struct weft_timer *timer; /* header or body timeout, or drain grace */
    unsigned char state;      /* enum http_state */
    unsigned char target;     /* enum http_target */
    unsigned char timer_kind; /* what timer is for (http.c) */
    bool head_pending;        /* a partial head waits in the input */
    bool close_after;         /* the answer sent last ends the connection */
    bool head_only;           /* HEAD: no body in the answer */
    bool keep_alive;
    bool http10;
    bool blocked;             /* output above the high watermark */
    int status;               /* T_STATUS: the status */
    const struct http_route *route;
    const struct http_hroute *hroute;
    struct weft_http_request *req; /* T_HANDLER: the request */
    uint64_t body_left;
    struct http_chunked chunked;
    uint64_t started_us;      /* first byte of the request, monotonic */
    char *peer;               /* for the access log, or NULL */
    struct strbuf line;       /* the request line, for the access log */
    /* T_FILE: the decoded path and the conditional headers (static.c). */
    struct strbuf file;
    uint32_t fq[4];
};

/* A header value from a config or a handler may not break the head. */
static inline bool http_value_ok(const char *v)
{
    return strpbrk(v, "\r\n") == NULL;
}

/* ---- response.c --------------------------------------------------------- */

const char *http_reason(int status);

/*
 * Start a response head in out: status line, Server, Date and, when
 * extra is not NULL, extra (whole "Name: value\r\n" lines). The caller
 * adds its own headers, then http_head_end.
 */
void http_head_begin(struct strbuf *out, const struct http_worker *hw,
                     int status);
/*
 * End a head: Content-Length len (when len >= 0), the Connection header
 * for close and HTTP/1.0 keep-alive, and the empty line.
 */
void http_head_end(struct strbuf *out, const struct http_conn *h,
                   long long len);
/* Append a decimal number. */
void http_put_u64(struct strbuf *out, uint64_t v);

/* Whether the answer being written ends the connection. */
bool http_closing(const struct http_conn *h);

/* A bare answer: status and a one-line text body. */
void http_answer_status(struct http_conn *h, struct strbuf *out,
                        const struct http_worker *hw, int status,
                        const char *extra);

/*
 * Bytes for the connection of h: into the batch buffer while its read is
 * being handled (answers stay in order and go out in one write), else
 * written at once. Returns as weft_conn_write.
 */
int http_emit(struct http_conn *h, const void *data, size_t len);
/* Send the batch buffer now (before a file), if h owns it. */
int http_flush(struct http_conn *h);

/* The request of h is answered: count it, log it. */
void http_done(struct http_conn *h, int status, uint64_t bytes);

/* Microseconds of CLOCK_MONOTONIC. */
uint64_t http_now_us(void);

/* ---- static.c ------------------------------------------------------------ */

/* Per worker: open root and the file cache. 0, or -1 (logged). */
int http_static_start(struct http_worker *hw, const struct http_conf *conf);
void http_static_stop(struct http_worker *hw);

/*
 * Plan a file answer for req: decode its path into h->file and keep the
 * headers the answer depends on. Returns 0, or a status to answer with
 * (400, 403, 404, 414).
 */
int http_static_plan(struct http_conn *h, const struct http_request *req);

/* Answer the planned file request of h. */
void http_static_answer(struct http_conn *h, struct http_worker *hw,
                        const struct http_conf *conf);

/* ---- handler.c ----------------------------------------------------------- */

/*
 * A head for a handler was parsed: copy it into a new request.
 * Returns 0, or -1 (out of memory).
 */
int http_handler_begin(struct http_conn *h, const struct http_hroute *hr,
                       const char *head, size_t len);
/* Body bytes of the handler's request. */
void http_handler_body(void *arg, const char *data, size_t len);
/* The body is whole: call the handler. */
void http_handler_run(struct http_conn *h);
/* The connection is gone while a handler has its request. */
void http_handler_abort(struct http_conn *h);
/* The output queue went below its low watermark. */
void http_handler_writable(struct http_conn *h);
/* The request of h is answered (from handler.c): read the next one. */
void http_request_finished(struct http_conn *h);

/* ---- access_log.c -------------------------------------------------------- */

/* Open (append) path for this worker; NULL after logging why. */
struct access_log *access_log_open(const char *path);
void access_log_close(struct access_log *log);
/* The peer's address as text, for the log lines of c (malloc'd). */
char *access_log_peer(struct weft_conn *c);
/* One Common Log Format line for the request of h. */
void access_log_add(struct access_log *log, const struct http_conn *h,
                    time_t now, int status, uint64_t bytes);

#endif
