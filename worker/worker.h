/*
 * A worker process: one libev loop accepting on its slot's sockets and
 * running protocols on the connections. Entered from the supervisor right
 * after fork; never returns.
 */
#ifndef WEFT_WORKER_WORKER_H
#define WEFT_WORKER_WORKER_H

#include <ev.h>
#include <stdbool.h>
#include <sys/queue.h>

#include "shared/conf.h"
#include "weft/weft.h"

/* What the supervisor hands a new worker. */
struct worker_spec {
    const struct config *cfg;
    int slot;
    int cpu;        /* CPU to pin to, or -1 */
    const int *fds; /* this slot's socket for each listener, in config order */
};

void worker_main(const struct worker_spec *spec) __attribute__((noreturn));

struct worker;

struct weft_udp {
    int fd;
    struct wlistener *ln;
};

/* One listening socket of this worker. */
struct wlistener {
    struct worker *w;
    const struct listener_conf *conf;
    ev_io io;
    int nconns;
    bool full;         /* stopped at max_connections */
    struct weft_udp udp;
};

LIST_HEAD(conn_list, weft_conn);

struct worker {
    struct ev_loop *loop;
    int slot;
    bool stopping;
    struct wlistener *listeners;
    size_t nlisteners;
    struct conn_list conns;
    struct weft_conn *settle; /* connections to settle after callbacks */
    ev_prepare settle_w;
    char *rbuf; /* one read buffer for every connection of the worker */
    size_t rbuf_size;
    struct udp_batch *udp; /* receive area of the UDP listeners, or NULL */
    ev_timer accept_retry;
    bool accept_blocked; /* out of descriptors: accepting is paused */
    bool accept_logged;
    ev_signal sigterm;
};

/* worker/accept.c */
void accept_cb(struct ev_loop *loop, ev_io *io, int revents);
void accept_retry_cb(struct ev_loop *loop, ev_timer *t, int revents);
/* Start or stop the listener's watcher as its state asks. */
void listener_update(struct wlistener *ln);

/* worker/udp.c */
struct udp_batch *udp_batch_new(void);
void udp_batch_free(struct udp_batch *b);
void udp_cb(struct ev_loop *loop, ev_io *io, int revents);

#endif
