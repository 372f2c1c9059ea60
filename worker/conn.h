/*
 * Stream connections: the transport behind struct weft_conn. An idle
 * connection is this struct and nothing else; input a protocol left
 * unconsumed and output the kernel did not take are the only buffers a
 * connection ever owns.
 */
#ifndef WEFT_WORKER_CONN_H
#define WEFT_WORKER_CONN_H

#include "shared/buf.h"
#include "worker/worker.h"

enum conn_state {
    CONN_OPEN,    /* reading and writing */
    CONN_CLOSING, /* no more reading; close once the output is flushed */
    CONN_DEAD     /* closed; freed once no callback runs on it */
};

/* Output queue marks: stop the producer above HIGH, resume below LOW. */
#define CONN_HIGH_WATER (64 * 1024)
#define CONN_LOW_WATER (16 * 1024)
/* Unconsumed input beyond this is a protocol that cannot keep up. */
#define CONN_UNPARSED_MAX (1024 * 1024)

struct weft_conn {
    ev_io io; /* io.fd is the socket */
    struct wlistener *ln;
    LIST_ENTRY(weft_conn) link;
    struct weft_conn *settle_next;
    void *data; /* the protocol's */
    struct bytes in;
    struct outq out;
    unsigned char state;  /* enum conn_state */
    unsigned char reason; /* enum weft_close_reason, once closing */
    unsigned busy : 1;    /* a callback of ours is on the stack */
    unsigned queued : 1;  /* on the worker's settle list */
    unsigned paused : 1;  /* the protocol paused reading */
    unsigned above_high : 1;
    unsigned redeliver : 1; /* hand back unconsumed input on resume */
};

/* Take the accepted socket fd for listener ln; closes fd on failure. */
void conn_new(struct wlistener *ln, int fd);

/* Settle every connection touched outside its own callbacks. */
void conn_settle_cb(struct ev_loop *loop, ev_prepare *p, int revents);

/* Close every connection of the worker now (worker exit). */
void conn_close_all(struct worker *w);

#endif
