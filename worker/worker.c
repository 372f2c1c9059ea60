#include "worker/worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/conn.h"
#include "worker/tls.h"

/* The worker-wide read buffer: one for all connections. */
#define WORKER_RBUF_SIZE (64 * 1024)

struct worker *worker_self;

static void worker_pin(int slot, int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) == -1)
        log_warn("%s: worker %d: cannot pin to CPU %d: %s", __func__, slot,
                 cpu, strerror(errno));
}

/* Tell the supervisor the loop still turns. */
static void worker_heartbeat_cb(struct ev_loop *loop, ev_timer *t,
                                int revents)
{
    struct worker *w = container_of(t, struct worker, heartbeat);

    (void)loop;
    (void)revents;
    atomic_store_explicit(&w->stats->heartbeat_ms, stats_now_ms(true),
                          memory_order_relaxed);
}

/* SIGTERM: stop accepting, close every connection, leave the loop. */
/* SIGQUIT: stop now; connections are closed at exit. */
static void worker_sigquit_cb(struct ev_loop *loop, ev_signal *s,
                              int revents)
{
    struct worker *w = container_of(s, struct worker, sigquit);

    (void)revents;
    w->stopping = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        ev_io_stop(loop, &w->listeners[i].io);
    ev_break(loop, EVBREAK_ALL);
}

void worker_check_drained(struct worker *w)
{
    if (w->draining && LIST_EMPTY(&w->conns))
        ev_break(w->loop, EVBREAK_ALL);
}

/* shutdown_timeout passed: the connections left are closed at exit. */
static void worker_drain_timeout_cb(struct ev_loop *loop, ev_timer *t,
                                    int revents)
{
    struct worker *w = container_of(t, struct worker, drain_timer);
    int n = 0;
    struct weft_conn *c;

    (void)revents;
    LIST_FOREACH(c, &w->conns, link) {
        stats_add(conn_stats(c), STAT_connections_forced, 1);
        n++;
    }
    log_warn("%s: worker %d: shutdown_timeout (%d s) passed; closing %d "
             "connection(s)", __func__, w->slot, w->shutdown_timeout, n);
    ev_break(loop, EVBREAK_ALL);
}

/*
 * Stop accepting, tell the protocols, and leave once the last connection
 * ends or shutdown_timeout passes.
 */
static void worker_drain(struct worker *w)
{
    struct ev_loop *loop = w->loop;
    struct weft_conn *c, *next;

    if (w->draining)
        return;
    w->draining = true;
    atomic_store(&w->stats->state, WORKER_DRAINING);
    for (size_t i = 0; i < w->nlisteners; i++)
        ev_io_stop(loop, &w->listeners[i].io);
    for (c = LIST_FIRST(&w->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        conn_drain(c);
    }
    ev_timer_set(&w->drain_timer, w->shutdown_timeout, 0);
    ev_timer_start(loop, &w->drain_timer);
    worker_check_drained(w);
}

/*
 * Leave the listening sockets: take what is already queued, so that it is
 * served rather than reset, and close our copy of each socket. A socket
 * the next generation keeps stays open in its workers; one that is going
 * away (stop, a listener removed) is closed once every copy is, and new
 * connections are then refused instead of queued for nobody. Then drain.
 */
static void worker_retire(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct weft_listener *ln = &w->listeners[i];
        /* Bounded: a flood must not keep a leaving worker here. */
        for (int n = 0; n < 64 && ln->conf->addr.kind == ADDR_TCP &&
                        ev_is_active(&ln->io) && !accept_batch(ln);
             n++)
            ;
        /* Close right after the queue is empty: what arrives in between
         * is reset by the kernel, so keep that moment short. */
        ev_io_stop(w->loop, &ln->io);
        if (ln->io.fd != -1)
            close(ln->io.fd);
        ln->io.fd = -1;
        ln->udp.fd = -1;
    }
    worker_drain(w);
}

/*
 * This worker's configuration's log settings: a worker of a reload is
 * forked before the supervisor takes the new ones, so it applies its own.
 */
static void worker_log_settings(struct worker *w, const struct config *cfg)
{
    log_set_level((enum log_level)cfg->log_level);
    log_set_syslog(cfg->log_syslog);
    if (log_open_file(w->log_file) == -1)
        log_error("%s: %s: %s", __func__, w->log_file, strerror(errno));
}

/* SIGUSR1: the supervisor reopened the log file; so do we. */
static void worker_reopen_cb(struct ev_loop *loop, ev_signal *s,
                             int revents)
{
    struct worker *w = s->data;

    (void)loop;
    (void)revents;
    if (log_open_file(w->log_file) == -1)
        log_error("%s: %s: %s", __func__, w->log_file, strerror(errno));
}

/* SIGUSR2 (a reload replaced us) and SIGTERM (weftd stops). */
static void worker_retire_cb(struct ev_loop *loop, ev_signal *s,
                             int revents)
{
    (void)loop;
    (void)revents;
    worker_retire(s->data);
}

/* Watch this slot's socket of every listener. */
static int worker_listen(struct worker *w, const struct worker_spec *spec)
{
    const struct config *cfg = spec->cfg;

    w->listeners = calloc(cfg->nlisteners, sizeof(*w->listeners));
    if (w->listeners == NULL)
        return -1;
    w->nlisteners = cfg->nlisteners;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct weft_listener *ln = &w->listeners[i];
        ln->w = w;
        ln->conf = &cfg->listeners[i];
        ln->stats = &w->stats->row[spec->rows[i]];
        ln->udp.fd = spec->fds[i];
        ln->udp.ln = ln;
        bool udp = ln->conf->addr.kind == ADDR_UDP;
        if (udp && w->udp == NULL && (w->udp = udp_batch_new()) == NULL)
            fatal("%s: worker %d: out of memory", __func__, w->slot);
        ev_io_init(&ln->io, udp ? udp_cb : accept_cb, spec->fds[i], EV_READ);
    }
    /* Every protocol is ready before the first connection is accepted. */
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct weft_listener *ln = &w->listeners[i];
        const struct weft_protocol *p = ln->conf->proto;
        if (ln->conf->tls != NULL)
            tls_listener_setup(ln->conf->tls, spec->tls_keys);
        if (p->start != NULL && p->start(ln) == -1) {
            log_error("%s: listener %s: protocol %s failed to start",
                      __func__, ln->conf->name, p->name);
            return -1;
        }
        ln->started = true;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        ev_io_start(w->loop, &w->listeners[i].io);
    return 0;
}

/* Free what the loop held, so leak checkers see a clean exit. */
static void worker_cleanup(struct worker *w)
{
    w->exiting = true;
    reconnect_free_all(w);
    connect_free_all(w);
    conn_close_all(w);
    /* Protocols stop before the timers go: a stop hook cancels its own. */
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct weft_listener *ln = &w->listeners[i];
        ev_io_stop(w->loop, &ln->io);
        if (ln->started && ln->conf->proto->stop != NULL)
            ln->conf->proto->stop(ln);
        if (ln->io.fd != -1)
            close(ln->io.fd);
    }
    timer_free_all(w);
    bus_worker_stop(w);
    tls_client_free_all();
    resolve_stop(w);
    ev_timer_stop(w->loop, &w->accept_retry);
    ev_timer_stop(w->loop, &w->heartbeat);
    ev_timer_stop(w->loop, &w->drain_timer);
    ev_signal_stop(w->loop, &w->sigdrain);
    ev_signal_stop(w->loop, &w->sigquit);
    ev_signal_stop(w->loop, &w->sigreopen);
    /* Stopping the watcher restored SIGUSR1's default, which kills: a
     * reopen sent while this worker exits must not. */
    signal(SIGUSR1, SIG_IGN);
    ev_prepare_stop(w->loop, &w->settle_w);
    ev_signal_stop(w->loop, &w->sigterm);
    free(w->listeners);
    free(w->rbuf);
    udp_batch_free(w->udp);
    ev_loop_destroy(w->loop);
}

void worker_main(const struct worker_spec *spec)
{
    struct worker w = { .slot = spec->slot };

    worker_pin(spec->slot, spec->cpu);
    /* Ctrl-C reaches the whole process group: only the supervisor acts on
     * it, and stops the workers itself. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    w.loop = ev_loop_new(EVFLAG_AUTO);
    w.stats = spec->stats;
    w.out_stats = &w.stats->row[STATS_ROW_OUTGOING];
    atomic_store(&w.stats->pid, (int32_t)getpid());
    w.rbuf_size = WORKER_RBUF_SIZE;
    w.rbuf = malloc(w.rbuf_size);
    if (w.loop == NULL || w.rbuf == NULL ||
        bus_worker_init(&w, spec->bus, spec->bus_ep) == -1)
        fatal("%s: worker %d: out of memory", __func__, spec->slot);
    worker_self = &w;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    LIST_INIT(&w.conns);
    LIST_INIT(&w.timers);
    LIST_INIT(&w.connecting);
    LIST_INIT(&w.reconnectors);
    ev_prepare_init(&w.settle_w, conn_settle_cb);
    ev_timer_init(&w.accept_retry, accept_retry_cb, 0, 0);
    ev_signal_init(&w.sigterm, worker_retire_cb, SIGTERM);
    ev_signal_init(&w.sigdrain, worker_retire_cb, SIGUSR2);
    w.sigterm.data = &w;
    w.sigdrain.data = &w;
    ev_signal_start(w.loop, &w.sigterm);
    ev_signal_start(w.loop, &w.sigdrain);
    w.log_file = spec->cfg->log_file;
    worker_log_settings(&w, spec->cfg);
    ev_signal_init(&w.sigreopen, worker_reopen_cb, SIGUSR1);
    w.sigreopen.data = &w;
    ev_signal_start(w.loop, &w.sigreopen); /* never SIGUSR1's default */
    ev_signal_init(&w.sigquit, worker_sigquit_cb, SIGQUIT);
    ev_signal_start(w.loop, &w.sigquit);
    /* The supervisor forked us with every signal blocked (see proc.c):
     * what arrived meanwhile is delivered now, to our watchers. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ev_timer_init(&w.drain_timer, worker_drain_timeout_cb, 0, 0);
    w.shutdown_timeout = spec->cfg->shutdown_timeout;
    if (worker_listen(&w, spec) == -1) {
        worker_cleanup(&w);
        exit(1);
    }
    ev_timer_init(&w.heartbeat, worker_heartbeat_cb, 1.0, 1.0);
    ev_timer_start(w.loop, &w.heartbeat);
    worker_heartbeat_cb(w.loop, &w.heartbeat, 0);
    atomic_store(&w.stats->state, WORKER_RUNNING);
    log_info("%s: worker %d serving %zu listeners", __func__, spec->slot,
             w.nlisteners);
    ev_run(w.loop, 0);
    log_info("%s: worker %d stopping", __func__, spec->slot);
    worker_cleanup(&w);
    exit(0);
}

void *weft_listener_conf(const struct weft_listener *l)
{
    return l->conf->proto_conf;
}

void *weft_listener_data(const struct weft_listener *l)
{
    return l->data;
}

void weft_listener_set_data(struct weft_listener *l, void *data)
{
    l->data = data;
}

const char *weft_listener_name(const struct weft_listener *l)
{
    return l->conf->name;
}

unsigned weft_listener_idle_timeout(const struct weft_listener *l)
{
    return (unsigned)l->conf->idle_timeout;
}

void weft_count(struct weft_listener *l, enum weft_counter what,
                unsigned long n)
{
    struct stats_row *r = l ? l->stats : worker_self->out_stats;

    static const enum stats_field field[] = {
        [WEFT_COUNT_REQUESTS] = STAT_requests,
        [WEFT_COUNT_ERRORS] = STAT_protocol_errors,
        [WEFT_COUNT_GAPS] = STAT_messages_skipped,
    };

    if ((unsigned)what < countof(field))
        stats_add(r, field[what], n);
}

void weft_count_response(struct weft_listener *l, int status, uint64_t usec)
{
    struct stats_row *r = l ? l->stats : worker_self->out_stats;
    /* 1xx..5xx -> 0..4; anything else wraps to a large class. */
    unsigned cls = (unsigned)status / 100 - 1;

    stats_add(r, STAT_requests, 1);
    if (cls < 5)
        stats_add(r, (enum stats_field)(STAT_responses_1xx + cls), 1);
    stats_lat_add(r, usec);
}

int weft_worker_draining(void)
{
    return worker_self && worker_self->draining;
}

int weft_worker_slot(void)
{
    return worker_self ? worker_self->slot : -1;
}

