/*
 * Outgoing connections: parse HOST:PORT, resolve a name off the loop,
 * connect without blocking to each address in turn, all within one
 * timeout, then hand the connection to the caller's protocol.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/addr.h"
#include "shared/hostport.h"
#include "shared/log.h"
#include "shared/util.h"
#include "worker/conn.h"
#include "worker/tls.h"

#define CONNECT_TIMEOUT_DEFAULT_MS 30000

struct connect_req {
    LIST_ENTRY(connect_req) link;
    ev_timer timer; /* the deadline, or a deferred failure report */
    const struct weft_protocol *proto;
    void *arg;
    connect_failed_fn failed;
    void *failed_arg;
    struct weft_reconnector *rc;
    struct resolve_req *resolving;
    struct weft_conn *c; /* the attempt in progress */
    struct resolve_result addrs;
    int next;             /* next address to try */
    const char *err;      /* why the last attempt failed */
    bool tls;             /* a TLS handshake follows the connect */
    bool no_verify;
    char *ca_file;        /* owned; NULL: the system's store */
    char *server_name;    /* owned: SNI and the name to check */
};

static void req_free(struct connect_req *req)
{
    struct worker *w = worker_self;

    ev_timer_stop(w->loop, &req->timer);
    if (req->resolving != NULL)
        resolve_cancel(w, req->resolving);
    if (req->c != NULL)
        conn_discard(req->c);
    LIST_REMOVE(req, link);
    free(req->ca_file);
    free(req->server_name);
    free(req);
}

/* Report the failure to the caller and forget the request. */
static void req_fail(struct connect_req *req, const char *err)
{
    connect_failed_fn failed = req->failed;
    void *arg = req->failed_arg;

    req_free(req);
    stats_add(worker_self->out_stats, STAT_connect_failures, 1);
    if (failed != NULL)
        failed(arg, err);
}

/* Report later, from the loop: never from inside weft_connect. */
static void req_fail_later(struct connect_req *req, const char *err)
{
    req->err = err;
    ev_timer_stop(worker_self->loop, &req->timer);
    ev_timer_set(&req->timer, 0, 0);
    ev_timer_start(worker_self->loop, &req->timer);
}

static void req_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct connect_req *req = container_of(t, struct connect_req, timer);

    (void)loop;
    (void)revents;
    req_fail(req, req->err ? req->err : "timed out");
}

/*
 * Start connecting to the next address. Returns 0 with an attempt in
 * flight, or -1 when no address is left (req->err says why).
 */
static int req_try_next(struct connect_req *req)
{
    while (req->next < req->addrs.n) {
        int i = req->next++;
        const struct sockaddr *sa =
            (const struct sockaddr *)&req->addrs.addr[i];
        int fd = socket(sa->sa_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            req->err = strerror(errno);
            continue;
        }
        if (connect(fd, sa, req->addrs.len[i]) == -1 &&
            errno != EINPROGRESS) {
            req->err = strerror(errno);
            close(fd);
            continue;
        }
        /* Connected or in progress: writability tells either way. */
        req->c = conn_new_outgoing(fd, req->proto, req);
        if (req->c == NULL) {
            req->err = "out of memory";
            return -1;
        }
        return 0;
    }
    return -1;
}

/* c is ready for the caller's protocol: hand it over, forget req. */
static void connect_succeeded(struct connect_req *req, struct weft_conn *c)
{
    void *arg = req->arg;
    struct weft_reconnector *rc = req->rc;

    req->c = NULL;
    req_free(req);
    c->rc = rc;
    if (rc != NULL)
        reconnect_connected(rc, c);
    conn_connected(c, arg);
}

void connect_done(struct weft_conn *c, int err)
{
    struct connect_req *req = weft_conn_data(c);

    if (err != 0) {
        req->c = NULL;
        conn_discard(c);
        req->err = strerror(err);
        if (req_try_next(req) == -1)
            req_fail(req, req->err);
        return;
    }
    if (req->tls) {
        const char *why;
        if (tls_client_start(c, req->ca_file, req->no_verify,
                             req->server_name, &why) == -1) {
            req->c = NULL;
            conn_discard(c);
            req_fail(req, why);
            return;
        }
        conn_tls_handshake(c); /* connect_tls_done follows */
        return;
    }
    connect_succeeded(req, c);
}

void connect_tls_done(struct weft_conn *c, const char *err)
{
    struct connect_req *req = weft_conn_data(c);

    if (err != NULL) {
        req->c = NULL;
        conn_discard(c);
        req_fail(req, err);
        return;
    }
    connect_succeeded(req, c); /* the connection settles there */
}

static void req_resolved(void *p, const struct resolve_result *r)
{
    struct connect_req *req = p;

    req->resolving = NULL;
    if (r->n == 0) {
        req_fail(req, r->err);
        return;
    }
    req->addrs = *r;
    if (req_try_next(req) == -1)
        req_fail(req, req->err);
}

/* A literal address needs no resolver: 1 with r filled, else 0. */
static int literal_addr(const char *hostport, struct resolve_result *r)
{
    struct addr a;
    const char *why;

    if (addr_parse(hostport, &a, &why) == -1 || a.kind != ADDR_TCP)
        return 0;
    r->addr[0] = a.ss;
    r->len[0] = a.len;
    r->n = 1;
    return 1;
}

struct connect_req *connect_start(const char *hostport, unsigned timeout_ms,
                                  const struct weft_tls_client *tls,
                                  const struct weft_protocol *proto,
                                  void *arg, connect_failed_fn failed,
                                  void *failed_arg,
                                  struct weft_reconnector *rc)
{
    struct worker *w = worker_self;
    char host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];

    if (w->exiting) {
        errno = ESHUTDOWN;
        return NULL;
    }
    if (hostport_split(hostport, host, sizeof(host), port, sizeof(port)) !=
        NULL) {
        errno = EINVAL;
        return NULL;
    }
    struct connect_req *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->proto = proto;
    req->arg = arg;
    req->failed = failed;
    req->failed_arg = failed_arg;
    req->rc = rc;
    if (tls != NULL) {
        req->tls = true;
        req->no_verify = tls->no_verify != 0;
        req->ca_file = tls->ca_file ? strdup(tls->ca_file) : NULL;
        req->server_name = strdup(tls->server_name ? tls->server_name : host);
        if ((tls->ca_file != NULL && req->ca_file == NULL) ||
            req->server_name == NULL) {
            free(req->ca_file);
            free(req->server_name);
            free(req);
            return NULL;
        }
    }
    LIST_INSERT_HEAD(&w->connecting, req, link);
    double s = (timeout_ms ? timeout_ms : CONNECT_TIMEOUT_DEFAULT_MS) / 1000.0;
    ev_timer_init(&req->timer, req_timer_cb, s, 0);
    ev_timer_start(w->loop, &req->timer);
    if (literal_addr(hostport, &req->addrs)) {
        if (req_try_next(req) == -1)
            req_fail_later(req, req->err);
        return req;
    }
    req->resolving = resolve_start(w, host, port, req_resolved, req);
    if (req->resolving == NULL)
        req_fail_later(req, "cannot start name resolution");
    return req;
}

void connect_cancel(struct connect_req *req)
{
    req_free(req);
}

int weft_connect(const char *hostport, unsigned timeout_ms,
                 const struct weft_protocol *proto, void *arg,
                 weft_connect_failed_fn failed)
{
    return connect_start(hostport, timeout_ms, NULL, proto, arg, failed, arg,
                         NULL) == NULL
               ? -1
               : 0;
}

int weft_connect_tls(const char *hostport, unsigned timeout_ms,
                     const struct weft_tls_client *tls,
                     const struct weft_protocol *proto, void *arg,
                     weft_connect_failed_fn failed)
{
    static const struct weft_tls_client defaults = {0};

    return connect_start(hostport, timeout_ms, tls ? tls : &defaults, proto,
                         arg, failed, arg, NULL) == NULL
               ? -1
               : 0;
}

/* Worker exit: every attempt still pending fails, so callers free arg. */
void connect_free_all(struct worker *w)
{
    while (!LIST_EMPTY(&w->connecting))
        req_fail(LIST_FIRST(&w->connecting), "worker stopping");
}
