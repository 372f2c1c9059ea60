/*
 * Stream connections: the transport behind struct weft_conn, accepted or
 * outgoing. An idle connection is this struct and nothing else; input a
 * protocol left unconsumed and output the kernel did not take are the only
 * buffers a connection ever owns.
 */
#ifndef WEFT_WORKER_CONN_H
#define WEFT_WORKER_CONN_H

#include <stdint.h>

#include "shared/buf.h"
#include "worker/worker.h"

enum conn_state {
    CONN_CONNECTING, /* outgoing, waiting for the handshake */
    CONN_HANDSHAKE,  /* accepted on a TLS listener, TLS handshake running */
    CONN_OPEN,       /* reading and writing */
    CONN_CLOSING,    /* no more reading; close once the output is flushed */
    CONN_DEAD        /* closed; freed once no callback runs on it */
};

/* Unconsumed input beyond this is a protocol that cannot keep up. */
#define CONN_UNPARSED_MAX (1024 * 1024)

struct conn_idle;

struct weft_conn {
    ev_io io; /* io.fd is the socket */
    const struct weft_protocol *proto;
    struct weft_listener *ln;     /* NULL for an outgoing connection */
    struct weft_reconnector *rc;  /* the reconnector that made it, or NULL */
    LIST_ENTRY(weft_conn) link;
    struct weft_conn *settle_next;
    void *data; /* the protocol's */
    struct conn_idle *idle; /* idle timeout, allocated when set */
    struct tls_conn *tls;   /* worker/tls.c, or NULL for plain TCP */
    struct bytes in;
    struct outq out;
    uint32_t high, low, max; /* output queue marks */
    unsigned char state;     /* enum conn_state */
    unsigned char reason;    /* enum weft_close_reason, once closing */
    unsigned busy : 1;       /* a callback of ours is on the stack */
    unsigned queued : 1;     /* on the worker's settle list */
    unsigned paused : 1;     /* the protocol paused reading */
    unsigned above_high : 1;
    unsigned redeliver : 1; /* hand back unconsumed input on resume */
    unsigned eof : 1;       /* the peer closed its side */
    unsigned shut_req : 1;  /* weft_conn_shutdown: FIN after the queue */
    unsigned shut_done : 1;
    unsigned limited : 1; /* aborted by a limit (counted as aborted) */
    unsigned flush_soon : 1; /* written while corked: flush when settled */
};

/* The stats row c counts in: its listener's, or the outgoing row. */
static inline struct stats_row *conn_stats(const struct weft_conn *c)
{
    return c->ln ? c->ln->stats : worker_self->out_stats;
}

/* Take the accepted socket fd for listener ln; closes fd on failure. */
void conn_new(struct weft_listener *ln, int fd);

/*
 * An outgoing connection on fd, connect() in progress: proto runs once it
 * completes (conn_connected), data is the caller's until then.
 */
struct weft_conn *conn_new_outgoing(int fd, const struct weft_protocol *proto,
                                    void *data);

/* The handshake of c completed (err == 0) or failed (err: errno). */
void connect_done(struct weft_conn *c, int err);

/* c is connected: run its protocol's connection_made. */
void conn_connected(struct weft_conn *c, void *data);

/* Start the TLS handshake of c (its tls set); the step that ends it
 * makes the connection (or, outgoing, calls connect_tls_done). */
void conn_tls_handshake(struct weft_conn *c);

/* worker/connect.c: the TLS handshake of outgoing c ended (err: why not). */
void connect_tls_done(struct weft_conn *c, const char *err);

/* Drop a connection that never connected; its protocol is not told. */
void conn_discard(struct weft_conn *c);

/* The worker drains: tell c's protocol (once). */
void conn_drain(struct weft_conn *c);

/* Settle every connection touched outside its own callbacks. */
void conn_settle_cb(struct ev_loop *loop, ev_prepare *p, int revents);

/*
 * Close every connection of the worker now (worker exit), after
 * connect_free_all has dropped those still connecting.
 */
void conn_close_all(struct worker *w);

#endif
