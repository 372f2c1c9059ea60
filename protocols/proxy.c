/*
 * proxy: a layer-4 TCP proxy and round-robin load balancer.
 *
 *   proxy = { upstreams = ("10.0.0.1:80", "10.0.0.2:80");
 *             connect_timeout = 2000; };
 *
 * Each client connection is paired with one connection to an upstream,
 * chosen round-robin per worker; an upstream that refuses or times out is
 * skipped for the next one, until each has been tried once. Bytes are
 * relayed both ways with backpressure, and a half-close on one side is
 * passed on as a half-close on the other. Written against weft.h alone.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocols/registry.h"

#define PROXY_TIMEOUT_DEFAULT 2000  /* ms per connection attempt */
#define PROXY_TIMEOUT_MAX 600000

/* What configure builds: plain data, read-only in the workers. */
struct proxy_conf {
    unsigned connect_timeout; /* ms */
    bool upstream_tls;        /* TLS to the upstreams */
    struct weft_tls_client tls; /* its options; strings owned */
    unsigned n;               /* upstreams, at least 1 */
    char *upstreams[];        /* "HOST:PORT", owned */
};

/* Per worker and listener: where the next client starts its search. */
struct proxy_worker {
    unsigned next;
};

/* Where the upstream side of a pair is. */
enum up_state {
    UP_NONE,       /* no attempt pending and no connection */
    UP_CONNECTING, /* weft_connect pending: failed or connection_made comes */
    UP_OPEN        /* up is live until its connection_lost */
};

/*
 * A client and its upstream. Lifetime by explicit state, not a refcount:
 * the pair has two owners, the client connection (until its
 * connection_lost sets client to NULL) and the upstream side (while state
 * is UP_CONNECTING or UP_OPEN: a pending attempt always ends in exactly
 * one of failed or connection_made, and an open upstream in exactly one
 * connection_lost). Whichever owner leaves last frees it: pair_release
 * for the client, the upstream callbacks when the client is already gone.
 * weft runs connection_lost only after the callback that closed a
 * connection has returned, so a pair is never freed under its caller.
 */
struct pair {
    const struct proxy_conf *conf;
    struct weft_conn *client; /* NULL once the client is gone */
    struct weft_conn *up;     /* non-NULL only in UP_OPEN */
    unsigned char state;      /* enum up_state */
    unsigned first;           /* index of the first upstream tried */
    unsigned tried;           /* attempts started */
    unsigned client_eof : 1;  /* the client sent FIN: upstream shut down */
    unsigned up_eof : 1;      /* the upstream sent FIN: client shut down */
};

static const struct weft_protocol proxy_upstream_protocol;

/* ---- Configuration (supervisor) ----------------------------------------- */

static void proxy_unconfigure(void *arg)
{
    struct proxy_conf *conf = arg;

    if (conf == NULL)
        return;
    for (unsigned i = 0; i < conf->n; i++)
        free(conf->upstreams[i]);
    free((char *)conf->tls.ca_file);
    free((char *)conf->tls.server_name);
    free(conf);
}

/*
 * upstream_tls, upstream_ca, upstream_server_name, upstream_verify into
 * conf. Returns 0, or -1 after reporting.
 */
static int proxy_configure_tls(struct weft_settings *s,
                               struct proxy_conf *conf)
{
    const char *ca, *name;
    int on, verify;

    if (weft_settings_bool(s, "upstream_tls", 0, &on) == -1 ||
        weft_settings_string(s, "upstream_ca", NULL, &ca) == -1 ||
        weft_settings_string(s, "upstream_server_name", NULL, &name) == -1 ||
        weft_settings_bool(s, "upstream_verify", 1, &verify) == -1)
        return -1;
    conf->upstream_tls = on;
    conf->tls.no_verify = !verify;
    if (ca != NULL && access(ca, R_OK) == -1) {
        weft_settings_error(s, "upstream_ca", "%s: %s", ca, strerror(errno));
        return -1;
    }
    if ((ca != NULL && (conf->tls.ca_file = strdup(ca)) == NULL) ||
        (name != NULL && (conf->tls.server_name = strdup(name)) == NULL)) {
        weft_settings_error(s, NULL, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * Read upstreams (required, non-empty) and connect_timeout. Returns a
 * malloc'd proxy_conf owning copies of the strings, or NULL after
 * reporting the errors.
 */
static void *proxy_configure(struct weft_settings *s)
{
    struct proxy_conf *conf = NULL;
    long long timeout;
    int bad = 0;

    if (weft_settings_int(s, "connect_timeout", 1, PROXY_TIMEOUT_MAX,
                          PROXY_TIMEOUT_DEFAULT, &timeout) == -1)
        bad = 1;
    int n = weft_settings_list(s, "upstreams");
    if (n == -1)
        return NULL;
    if (n == 0) {
        weft_settings_error(s, "upstreams", "required: a non-empty list of "
                            "\"HOST:PORT\" strings");
        return NULL;
    }
    conf = calloc(1, sizeof(*conf) + (size_t)n * sizeof(conf->upstreams[0]));
    if (conf == NULL)
        goto nomem;
    conf->connect_timeout = (unsigned)timeout;
    if (proxy_configure_tls(s, conf) == -1)
        bad = 1;
    for (int i = 0; i < n; i++) {
        const char *hp = weft_settings_list_item(s, "upstreams", i);
        const char *why = weft_hostport_check(hp);
        if (why != NULL) {
            weft_settings_error(s, "upstreams", "entry %d \"%s\": %s", i + 1,
                                hp, why);
            bad = 1;
            continue;
        }
        if ((conf->upstreams[conf->n] = strdup(hp)) == NULL)
            goto nomem;
        conf->n++;
    }
    if (bad)
        goto fail;
    return conf;
nomem:
    weft_settings_error(s, NULL, "out of memory");
fail:
    proxy_unconfigure(conf);
    return NULL;
}

/* ---- Per-worker state --------------------------------------------------- */

/* Start each worker at a different upstream: slot modulo their count. */
static int proxy_start(struct weft_listener *l)
{
    const struct proxy_conf *conf = weft_listener_conf(l);
    struct proxy_worker *pw = malloc(sizeof(*pw));

    if (pw == NULL)
        return -1;
    pw->next = (unsigned)weft_worker_slot() % conf->n;
    weft_listener_set_data(l, pw);
    return 0;
}

static void proxy_stop(struct weft_listener *l)
{
    free(weft_listener_data(l));
    weft_listener_set_data(l, NULL);
}

/* ---- The pair ----------------------------------------------------------- */

/* Free p once neither the client nor an upstream side holds it. */
static void pair_release(struct pair *p)
{
    if (p->client == NULL && p->state == UP_NONE)
        free(p);
}

static void proxy_up_failed(void *arg, const char *err);

/*
 * Start an attempt on the next upstream not tried yet for this client.
 * When every one has been tried, close the client: nothing was sent to
 * it, so it sees the connection end without a byte. The client is
 * paused throughout, so what it sent waits in its socket.
 */
static void pair_connect_next(struct pair *p)
{
    const struct proxy_conf *conf = p->conf;

    while (p->tried < conf->n) {
        const char *hp = conf->upstreams[(p->first + p->tried) % conf->n];
        p->tried++;
        int rc = conf->upstream_tls
                     ? weft_connect_tls(hp, conf->connect_timeout, &conf->tls,
                                        &proxy_upstream_protocol, p,
                                        proxy_up_failed)
                     : weft_connect(hp, conf->connect_timeout,
                                    &proxy_upstream_protocol, p,
                                    proxy_up_failed);
        if (rc == 0) {
            p->state = UP_CONNECTING;
            return;
        }
    }
    weft_conn_close(p->client);
}

/* An attempt failed: try the next upstream, unless the client left. */
static void proxy_up_failed(void *arg, const char *err)
{
    struct pair *p = arg;
    const struct proxy_conf *conf = p->conf;

    weft_log(WEFT_LOG_DEBUG, "proxy: upstream %s: %s",
             conf->upstreams[(p->first + p->tried - 1) % conf->n], err);
    p->state = UP_NONE;
    if (p->client == NULL) {
        free(p);
        return;
    }
    pair_connect_next(p);
}

/*
 * Copy bytes from one side to the other. When the destination's queue
 * passes its high watermark, stop reading the source until the
 * destination's writable callback. Returns what was consumed: all of it,
 * since weft_conn_write copies (or drops it when dst is closing, and
 * then dst's connection_lost ends the pair).
 */
static size_t pair_relay(struct weft_conn *src, struct weft_conn *dst,
                         const char *data, size_t len)
{
    if (weft_conn_write(dst, data, len) == 1)
        weft_conn_pause(src);
    return len;
}

/* Once both sides have sent FIN, close both (each after its flush). */
static void pair_check_done(struct pair *p)
{
    if (!p->client_eof || !p->up_eof)
        return;
    if (p->client != NULL)
        weft_conn_close(p->client);
    if (p->state == UP_OPEN)
        weft_conn_close(p->up);
}

/*
 * One side was lost for reason why: end the other. A reset is passed on
 * as an abort. After an error or an idle timeout, bytes still queued for
 * the other side may never drain (its peer is not reading either), so it
 * is aborted too; otherwise it is closed once its queue is flushed.
 */
static void pair_end_other(struct weft_conn *other, enum weft_close_reason why)
{
    int stuck = (why == WEFT_CLOSE_ERROR || why == WEFT_CLOSE_TIMEOUT) &&
                weft_conn_queued(other) > 0;

    if (why == WEFT_CLOSE_RESET || stuck)
        weft_conn_abort(other);
    else
        weft_conn_close(other);
}

/* ---- Client side -------------------------------------------------------- */

/*
 * A client arrived: pause it, pick this worker's next upstream and connect.
 * The pair is the client's data from here on.
 */
static void proxy_client_made(struct weft_conn *c)
{
    struct weft_listener *l = weft_conn_listener(c);
    const struct proxy_conf *conf = weft_listener_conf(l);
    struct proxy_worker *pw = weft_listener_data(l);
    struct pair *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        weft_conn_abort(c);
        return;
    }
    p->conf = conf;
    p->client = c;
    p->state = UP_NONE;
    p->first = pw->next;
    pw->next = (pw->next + 1) % conf->n;
    weft_conn_set_data(c, p);
    weft_conn_pause(c);
    pair_connect_next(p);
}

/*
 * Client bytes. The client is paused until the upstream is connected; if
 * bytes come anyway, leave them to weft (consume none) and pause again.
 * With the upstream gone, the client is closing: drop them.
 */
static size_t proxy_client_data(struct weft_conn *c, const char *data,
                                size_t len)
{
    struct pair *p = weft_conn_data(c);

    if (p->state == UP_CONNECTING) {
        weft_conn_pause(c);
        return 0;
    }
    if (p->state != UP_OPEN)
        return len;
    return pair_relay(c, p->up, data, len);
}

/* The client half-closed: pass the FIN on once the upstream is flushed. */
static void proxy_client_eof(struct weft_conn *c)
{
    struct pair *p = weft_conn_data(c);

    p->client_eof = 1;
    if (p->state == UP_OPEN)
        weft_conn_shutdown(p->up);
    pair_check_done(p);
}

/* The client drained its queue: read the upstream again. */
static void proxy_client_writable(struct weft_conn *c)
{
    struct pair *p = weft_conn_data(c);

    if (p->state == UP_OPEN)
        weft_conn_resume(p->up);
}

/*
 * The client is gone. A pending attempt keeps the pair alive and frees it
 * when it ends; an open upstream is ended (pair_end_other) and frees it
 * in its own connection_lost. p is not touched after the last call.
 */
static void proxy_client_lost(struct weft_conn *c, enum weft_close_reason why)
{
    struct pair *p = weft_conn_data(c);

    if (p == NULL)
        return; /* out of memory in connection_made */
    p->client = NULL;
    if (p->state != UP_OPEN) {
        pair_release(p);
        return;
    }
    pair_end_other(p->up, why);
}

/* ---- Upstream side ------------------------------------------------------ */

/* Connected: pair up and let the client's bytes flow (data is the pair). */
static void proxy_up_made(struct weft_conn *up)
{
    struct pair *p = weft_conn_data(up);

    p->state = UP_OPEN;
    p->up = up;
    if (p->client == NULL) {
        weft_conn_close(up); /* the client left while we connected */
        return;
    }
    /* The client's idle timeout covers the relayed side too, so neither
     * lingers when the other stops moving. */
    weft_conn_set_idle_timeout(
        up, weft_listener_idle_timeout(weft_conn_listener(p->client)));
    weft_conn_resume(p->client);
    if (p->client_eof)
        weft_conn_shutdown(up);
}

static size_t proxy_up_data(struct weft_conn *up, const char *data,
                            size_t len)
{
    struct pair *p = weft_conn_data(up);

    if (p->client == NULL)
        return len; /* closing: nobody to tell */
    return pair_relay(up, p->client, data, len);
}

/* The upstream half-closed: pass the FIN on once the client is flushed. */
static void proxy_up_eof(struct weft_conn *up)
{
    struct pair *p = weft_conn_data(up);

    p->up_eof = 1;
    if (p->client != NULL)
        weft_conn_shutdown(p->client);
    pair_check_done(p);
}

/* The upstream drained its queue: read the client again. */
static void proxy_up_writable(struct weft_conn *up)
{
    struct pair *p = weft_conn_data(up);

    if (p->client != NULL)
        weft_conn_resume(p->client);
}

/* The upstream is gone: end the client too, or free the pair if it left. */
static void proxy_up_lost(struct weft_conn *up, enum weft_close_reason why)
{
    struct pair *p = weft_conn_data(up);
    struct weft_conn *client = p->client;

    p->up = NULL;
    p->state = UP_NONE;
    if (client == NULL) {
        free(p);
        return;
    }
    pair_end_other(client, why);
}

static const struct weft_protocol proxy_upstream_protocol = {
    .name = "proxy-upstream",
    .connection_made = proxy_up_made,
    .data_received = proxy_up_data,
    .eof_received = proxy_up_eof,
    .writable = proxy_up_writable,
    .connection_lost = proxy_up_lost,
};

const struct weft_protocol proxy_protocol = {
    .name = "proxy",
    .configure = proxy_configure,
    .unconfigure = proxy_unconfigure,
    .start = proxy_start,
    .stop = proxy_stop,
    .connection_made = proxy_client_made,
    .data_received = proxy_client_data,
    .eof_received = proxy_client_eof,
    .writable = proxy_client_writable,
    .connection_lost = proxy_client_lost,
};
