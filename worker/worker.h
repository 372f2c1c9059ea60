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
#include <sys/socket.h>

#include "shared/conf.h"
#include "shared/stats.h"
#include "weft/weft.h"

/* What the supervisor hands a new worker. */
struct worker_spec {
    const struct config *cfg;
    int slot;
    int cpu;        /* CPU to pin to, or -1 */
    const int *fds; /* this slot's socket for each listener, in config order */
    const int *rows; /* each listener's row in the stats block */
    struct stats_block *stats; /* this worker's block in shared memory */
    struct bus *bus; /* the message bus, or NULL */
    struct tls_keys *tls_keys; /* session-ticket keys, shared */
    int bus_ep;      /* this worker's endpoint on it, or -1 */
};

void worker_main(const struct worker_spec *spec) __attribute__((noreturn));

struct worker;

struct weft_udp {
    int fd;
    struct weft_listener *ln;
};

/* One listening socket of this worker. */
struct weft_listener {
    struct worker *w;
    const struct listener_conf *conf;
    void *data; /* the protocol's per-worker state */
    struct stats_row *stats; /* this listener's row of the worker's block */
    ev_io io;
    int nconns;
    bool full;    /* stopped at max_connections */
    bool started; /* the protocol's start hook ran */
    struct weft_udp udp;
};

LIST_HEAD(conn_list, weft_conn);
LIST_HEAD(timer_list, weft_timer);
LIST_HEAD(connect_list, connect_req);
LIST_HEAD(reconnect_list, weft_reconnector);

struct worker {
    struct ev_loop *loop;
    int slot;
    bool stopping;
    bool draining; /* replaced by a reload: exit once connections end */
    bool exiting;  /* tearing down: no new outgoing connections */
    struct weft_listener *listeners;
    size_t nlisteners;
    struct conn_list conns;
    struct timer_list timers;
    struct connect_list connecting; /* weft_connect calls in progress */
    struct reconnect_list reconnectors;
    struct weft_conn *settle; /* connections to settle after callbacks */
    bool corked; /* writes wait for the settle pass (bus fan-out) */
    ev_prepare settle_w;
    char *rbuf; /* one read buffer for every connection of the worker */
    size_t rbuf_size;
    struct udp_batch *udp; /* receive area of the UDP listeners, or NULL */
    struct resolver *resolver; /* started at the first name to resolve */
    struct stats_block *stats;
    struct stats_row *out_stats; /* row of outgoing connections (and bus) */
    struct wbus *bus;            /* worker/bus.c, or NULL: no bus */
    ev_timer heartbeat;
    ev_timer accept_retry;
    bool accept_blocked; /* out of descriptors: accepting is paused */
    bool accept_logged;
    ev_signal sigterm;
    ev_signal sigdrain; /* SIGUSR2: replaced by a reload */
    ev_signal sigquit;  /* SIGQUIT: stop now */
    ev_signal sigreopen; /* SIGUSR1: reopen the log file */
    const char *log_file;
    ev_timer drain_timer; /* shutdown_timeout of a draining worker */
    int shutdown_timeout;
};

/* A draining worker whose last connection ended leaves its loop. */
void worker_check_drained(struct worker *w);

/* The worker of this process (NULL in the supervisor). */
extern struct worker *worker_self;

/* worker/accept.c */
void accept_cb(struct ev_loop *loop, ev_io *io, int revents);
/*
 * Accept what the kernel has queued, up to a batch, as new connections.
 * Returns true when there is nothing more to take now (queue empty, a
 * limit reached, an error), false when the batch ended first.
 */
bool accept_batch(struct weft_listener *ln);
void accept_retry_cb(struct ev_loop *loop, ev_timer *t, int revents);
/* Start or stop the listener's watcher as its state asks. */
void listener_update(struct weft_listener *ln);

/* worker/bus.c: the bus endpoint self of b (NULL: no bus); -1 on ENOMEM */
struct bus;
int bus_worker_init(struct worker *w, struct bus *b, int self);
/* Leave the loop's watchers and free the subscriptions (worker exit). */
void bus_worker_stop(struct worker *w);

/* worker/udp.c */
struct udp_batch *udp_batch_new(void);
void udp_batch_free(struct udp_batch *b);
void udp_cb(struct ev_loop *loop, ev_io *io, int revents);

/* worker/timer.c: free every timer still armed (worker exit). */
void timer_free_all(struct worker *w);

/* worker/connect.c: fail every connection attempt (worker exit). */
void connect_free_all(struct worker *w);

struct connect_req;
typedef void (*connect_failed_fn)(void *arg, const char *err);

/*
 * weft_connect's engine (over TLS when tls is not NULL; it is copied). On
 * success proto runs on the connection with
 * data `arg` (and c->rc = rc); on failure failed(failed_arg, reason).
 * Returns the request (cancel it with connect_cancel), or NULL.
 */
struct connect_req *connect_start(const char *hostport, unsigned timeout_ms,
                                  const struct weft_tls_client *tls,
                                  const struct weft_protocol *proto,
                                  void *arg, connect_failed_fn failed,
                                  void *failed_arg,
                                  struct weft_reconnector *rc);
/* Abandon a request in progress; nothing is called. */
void connect_cancel(struct connect_req *req);

/* worker/reconnect.c: events of a reconnector's connection. */
void reconnect_connected(struct weft_reconnector *r, struct weft_conn *c);
void reconnect_lost(struct weft_reconnector *r, enum weft_close_reason why);
void reconnect_free_all(struct worker *w);

/* worker/resolve.c: names resolved on a thread, never on the loop. */
struct resolve_req;
#define RESOLVE_MAX_ADDRS 4
struct resolve_result {
    struct sockaddr_storage addr[RESOLVE_MAX_ADDRS];
    socklen_t len[RESOLVE_MAX_ADDRS];
    int n;
    const char *err; /* static; NULL when n > 0 */
};
typedef void (*resolve_fn)(void *arg, const struct resolve_result *r);
/* Resolve host and port (numeric); done runs later on the loop. */
struct resolve_req *resolve_start(struct worker *w, const char *host,
                                  const char *port, resolve_fn done,
                                  void *arg);
/* done will not be called. */
void resolve_cancel(struct worker *w, struct resolve_req *req);
void resolve_stop(struct worker *w);

#endif
