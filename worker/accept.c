#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/conn.h"

/* Accepts per readiness event: a flood must not starve open connections. */
#define ACCEPT_BATCH 128
/* Pause after running out of descriptors, instead of spinning on EMFILE. */
#define ACCEPT_RETRY_S 0.1

void listener_update(struct weft_listener *ln)
{
    struct worker *w = ln->w;
    int max = ln->conf->max_connections;
    bool was_full = ln->full;

    ln->full = max > 0 && ln->nconns >= max;
    /* Each pause counts once: what comes meanwhile waits in the queue. */
    if (ln->full && !was_full && ln->stats != NULL)
        stats_add(ln->stats, STAT_accept_paused, 1);
    bool on = !w->stopping && !w->draining && !w->accept_blocked &&
              !ln->full;
    if (on && !ev_is_active(&ln->io))
        ev_io_start(w->loop, &ln->io);
    else if (!on && ev_is_active(&ln->io))
        ev_io_stop(w->loop, &ln->io);
}

/* Out of descriptors or memory: stop every TCP listener for a moment. */
static void accept_block(struct worker *w, int err)
{
    if (!w->accept_logged)
        log_warn("%s: accept: %s; pausing accepts for %d ms", __func__,
                 strerror(err), (int)(ACCEPT_RETRY_S * 1000));
    w->accept_logged = true;
    w->accept_blocked = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].conf->addr.kind == ADDR_TCP)
            listener_update(&w->listeners[i]);
    ev_timer_set(&w->accept_retry, ACCEPT_RETRY_S, 0);
    ev_timer_start(w->loop, &w->accept_retry);
}

void accept_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct worker *w = container_of(t, struct worker, accept_retry);

    (void)loop;
    (void)revents;
    w->accept_blocked = false;
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].conf->addr.kind == ADDR_TCP)
            listener_update(&w->listeners[i]);
}

/*
 * The accept queue is empty: a shortage of descriptors, if there was one,
 * is over. Until then it is one episode, logged once however often the
 * retry runs short again.
 */
static void accept_drained(struct worker *w)
{
    if (!w->accept_logged)
        return;
    w->accept_logged = false;
    log_info("%s: accepting again, the queue is drained", __func__);
}

bool accept_batch(struct weft_listener *ln)
{
    int max = ln->conf->max_connections;

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (max > 0 && ln->nconns >= max) {
            listener_update(ln); /* the rest wait in the accept queue */
            return true;
        }
        int fd = accept4(ln->io.fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            switch (errno) {
            case EAGAIN:
                accept_drained(ln->w);
                return true;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                accept_block(ln->w, errno);
                return true;
            default:
                log_error("%s: listener %s: accept: %s", __func__,
                          ln->conf->name, strerror(errno));
                return true;
            }
        }
        conn_new(ln, fd);
    }
    return false;
}

void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    accept_batch(container_of(io, struct weft_listener, io));
}
