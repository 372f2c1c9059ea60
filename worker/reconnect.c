/*
 * A connection kept up: after a failed attempt or a lost connection, try
 * again after a delay that doubles from initial_ms up to max_ms, with
 * +-10% jitter so that many clients do not retry in step; a connection
 * that is made resets the delay (Twisted's ReconnectingClientFactory).
 */
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/conn.h"

struct weft_reconnector {
    LIST_ENTRY(weft_reconnector) link;
    char *hostport;
    struct weft_reconnect_opts opts;
    struct weft_tls_client tls; /* opts.tls points here: strings owned */
    const struct weft_protocol *proto;
    void *arg;
    double delay;                /* seconds before the next attempt */
    struct connect_req *pending; /* attempt in progress */
    struct weft_conn *c;         /* connection while it is up */
    ev_timer retry;
    bool stopped; /* stop asked while a connection was still closing */
};

static void reconnect_free(struct weft_reconnector *r)
{
    ev_timer_stop(worker_self->loop, &r->retry);
    if (r->pending != NULL)
        connect_cancel(r->pending);
    LIST_REMOVE(r, link);
    free(r->hostport);
    free((char *)r->tls.ca_file);
    free((char *)r->tls.server_name);
    free(r);
}

static void reconnect_failed(void *p, const char *err);

/* Start an attempt; 0, or -1 when it could not even start. */
static int reconnect_attempt(struct weft_reconnector *r)
{
    r->pending = connect_start(r->hostport, r->opts.timeout_ms, r->opts.tls,
                               r->proto, r->arg, reconnect_failed, r, r);
    return r->pending != NULL ? 0 : -1;
}

static void reconnect_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct weft_reconnector *r = container_of(t, struct weft_reconnector,
                                              retry);

    (void)loop;
    (void)revents;
    if (reconnect_attempt(r) == -1)
        reconnect_failed(r, "cannot start a connection");
}

/* Wait the current delay (with jitter), then grow it for next time. */
static void reconnect_schedule(struct weft_reconnector *r)
{
    double jitter = 0.9 + 0.2 * ((double)random() / RAND_MAX);
    double wait = r->delay * jitter;

    r->delay = WEFT_MIN(r->delay * 2, r->opts.max_ms / 1000.0);
    ev_timer_set(&r->retry, wait, 0);
    ev_timer_start(worker_self->loop, &r->retry);
}

static void reconnect_failed(void *p, const char *err)
{
    struct weft_reconnector *r = p;

    r->pending = NULL;
    log_debug("%s: %s: %s; retrying", __func__, r->hostport, err);
    reconnect_schedule(r);
}

void reconnect_connected(struct weft_reconnector *r, struct weft_conn *c)
{
    r->pending = NULL;
    r->c = c;
    r->delay = r->opts.initial_ms / 1000.0;
}

void reconnect_lost(struct weft_reconnector *r, enum weft_close_reason why)
{
    r->c = NULL;
    if (r->stopped) {
        reconnect_free(r);
        return;
    }
    log_debug("%s: %s: connection lost (%s); reconnecting", __func__,
              r->hostport, weft_close_reason_str(why));
    reconnect_schedule(r);
}

struct weft_reconnector *
weft_reconnect_start(const char *hostport,
                     const struct weft_reconnect_opts *opts,
                     const struct weft_protocol *proto, void *arg)
{
    struct weft_reconnector *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->hostport = strdup(hostport)) == NULL) {
        free(r);
        return NULL;
    }
    if (opts != NULL)
        r->opts = *opts;
    if (r->opts.tls != NULL) {
        const struct weft_tls_client *t = r->opts.tls;
        r->tls.no_verify = t->no_verify;
        r->tls.ca_file = t->ca_file ? strdup(t->ca_file) : NULL;
        r->tls.server_name = t->server_name ? strdup(t->server_name) : NULL;
        r->opts.tls = &r->tls;
        if ((t->ca_file && !r->tls.ca_file) ||
            (t->server_name && !r->tls.server_name)) {
            free((char *)r->tls.ca_file);
            free((char *)r->tls.server_name);
            free(r->hostport);
            free(r);
            return NULL;
        }
    }
    if (r->opts.initial_ms == 0)
        r->opts.initial_ms = 500;
    if (r->opts.max_ms == 0)
        r->opts.max_ms = 60000;
    r->opts.max_ms = WEFT_MAX(r->opts.max_ms, r->opts.initial_ms);
    r->proto = proto;
    r->arg = arg;
    r->delay = r->opts.initial_ms / 1000.0;
    ev_timer_init(&r->retry, reconnect_retry_cb, 0, 0);
    LIST_INSERT_HEAD(&worker_self->reconnectors, r, link);
    if (reconnect_attempt(r) == -1) {
        reconnect_free(r); /* hostport cannot be parsed */
        return NULL;
    }
    return r;
}

void weft_reconnect_stop(struct weft_reconnector *r)
{
    if (r->c != NULL) {
        /* Freed when the connection is gone (reconnect_lost). */
        r->stopped = true;
        weft_conn_close(r->c);
        return;
    }
    reconnect_free(r);
}

void reconnect_free_all(struct worker *w)
{
    while (!LIST_EMPTY(&w->reconnectors)) {
        struct weft_reconnector *r = LIST_FIRST(&w->reconnectors);
        if (r->c != NULL)
            r->c->rc = NULL;
        reconnect_free(r);
    }
}
