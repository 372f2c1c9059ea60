#include "worker/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"

/* How many reads one readiness event may do before other sockets run. */
#define CONN_READ_ROUNDS 4
/* iovecs per writev: enough to drain a queue of small chunks at once. */
#define CONN_IOV_MAX 64

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_redeliver(struct weft_conn *c);

const char *weft_close_reason_str(enum weft_close_reason why)
{
    switch (why) {
    case WEFT_CLOSE_PEER: return "peer";
    case WEFT_CLOSE_LOCAL: return "local";
    case WEFT_CLOSE_RESET: return "reset";
    case WEFT_CLOSE_TIMEOUT: return "timeout";
    case WEFT_CLOSE_ERROR: return "error";
    }
    return "unknown";
}

/* Mark c dead for reason why, dropping its output. */
static void conn_fail(struct weft_conn *c, enum weft_close_reason why)
{
    if (c->state == CONN_DEAD)
        return;
    c->state = CONN_DEAD;
    c->reason = (unsigned char)why;
    outq_clear(&c->out);
}

static enum weft_close_reason reason_from_errno(int err)
{
    return err == ECONNRESET || err == EPIPE ? WEFT_CLOSE_RESET
                                             : WEFT_CLOSE_ERROR;
}

static void settle_unlink(struct worker *w, struct weft_conn *c)
{
    struct weft_conn **pp = &w->settle;

    while (*pp != NULL && *pp != c)
        pp = &(*pp)->settle_next;
    if (*pp == c)
        *pp = c->settle_next;
    c->queued = 0;
}

/* Tell the protocol, close the socket, free everything; c is gone. */
static void conn_destroy(struct weft_conn *c)
{
    struct wlistener *ln = c->ln;
    const struct weft_protocol *p = ln->conf->proto;

    ev_io_stop(ln->w->loop, &c->io);
    if (c->queued)
        settle_unlink(ln->w, c);
    if (p->connection_lost != NULL)
        p->connection_lost(c, (enum weft_close_reason)c->reason);
    close(c->io.fd);
    bytes_free(&c->in);
    outq_clear(&c->out);
    LIST_REMOVE(c, link);
    free(c);
    ln->nconns--;
    if (ln->full)
        listener_update(ln);
}

/*
 * Bring c's watcher in line with its state, or destroy it once dead.
 * Called only when no callback of ours is running on c.
 */
static void conn_settle(struct weft_conn *c)
{
    struct ev_loop *loop = c->ln->w->loop;

    if (c->state == CONN_CLOSING && c->out.len == 0)
        c->state = CONN_DEAD;
    if (c->state == CONN_DEAD) {
        conn_destroy(c);
        return;
    }
    int want = c->out.len > 0 ? EV_WRITE : 0;
    if (c->state == CONN_OPEN && !c->paused)
        want |= EV_READ;
    if (want == (c->io.events & (EV_READ | EV_WRITE)) &&
        (want == 0) == !ev_is_active(&c->io))
        return;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, want);
    if (want != 0)
        ev_io_start(loop, &c->io);
}

/*
 * c changed outside a callback of its own (another connection's, a
 * timer's): settle it before the loop next waits, never under the caller.
 */
static void conn_touch(struct weft_conn *c)
{
    struct worker *w = c->ln->w;

    if (c->busy || c->queued)
        return;
    c->queued = 1;
    c->settle_next = w->settle;
    w->settle = c;
    ev_prepare_start(w->loop, &w->settle_w);
}

void conn_settle_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct worker *w = container_of(p, struct worker, settle_w);

    (void)revents;
    ev_prepare_stop(loop, p);
    while (w->settle != NULL) {
        struct weft_conn *c = w->settle;
        w->settle = c->settle_next;
        c->queued = 0;
        if (c->redeliver) {
            c->busy = 1;
            conn_redeliver(c);
            c->busy = 0;
        }
        conn_settle(c);
    }
}

/*
 * Hand data to the protocol, after whatever it left unconsumed last time.
 * Only what it does not consume is copied, into c's own buffer.
 */
static void conn_deliver(struct weft_conn *c, const char *data, size_t len)
{
    const struct weft_protocol *p = c->ln->conf->proto;
    size_t used;

    if (c->in.len == 0) {
        used = WEFT_MIN(p->data_received(c, data, len), len);
        if (used == len || c->state != CONN_OPEN)
            return;
        if (bytes_append(&c->in, data + used, len - used) == -1)
            goto fail;
    } else {
        if (bytes_append(&c->in, data, len) == -1)
            goto fail;
        used = WEFT_MIN(p->data_received(c, c->in.data, c->in.len),
                        c->in.len);
        bytes_consume(&c->in, used);
    }
    if (c->in.len <= CONN_UNPARSED_MAX)
        return;
    log_warn("%s: listener %s: %zu bytes left unparsed, closing",
             __func__, c->ln->conf->name, c->in.len);
fail:
    conn_fail(c, WEFT_CLOSE_ERROR);
}

/* The peer closed its side: flush what is queued, then close. */
static void conn_eof(struct weft_conn *c)
{
    c->state = c->out.len > 0 ? CONN_CLOSING : CONN_DEAD;
    c->reason = WEFT_CLOSE_PEER;
}

/* Read into the worker's buffer and deliver, a few rounds at most. */
static void conn_read(struct weft_conn *c)
{
    struct worker *w = c->ln->w;

    for (int i = 0; i < CONN_READ_ROUNDS; i++) {
        if (c->state != CONN_OPEN || c->paused)
            return;
        ssize_t n = read(c->io.fd, w->rbuf, w->rbuf_size);
        if (n > 0) {
            conn_deliver(c, w->rbuf, (size_t)n);
            if ((size_t)n < w->rbuf_size)
                return; /* the socket is empty: skip the EAGAIN read */
        } else if (n == 0) {
            conn_eof(c);
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN)
                conn_fail(c, reason_from_errno(errno));
            return;
        }
    }
}

/* Write as much of the queue as the kernel takes, in one writev. */
static void conn_flush(struct weft_conn *c)
{
    struct iovec iov[CONN_IOV_MAX];
    int n = outq_iov(&c->out, iov, CONN_IOV_MAX);

    if (n == 0)
        return;
    ssize_t sent = writev(c->io.fd, iov, n);
    if (sent == -1) {
        if (errno != EAGAIN && errno != EINTR)
            conn_fail(c, reason_from_errno(errno));
        return;
    }
    outq_consume(&c->out, (size_t)sent);
    if (c->above_high && c->out.len <= CONN_LOW_WATER) {
        c->above_high = 0;
        const struct weft_protocol *p = c->ln->conf->proto;
        if (p->writable != NULL && c->state == CONN_OPEN)
            p->writable(c);
    }
}

/* Input kept while paused goes back to the protocol once it resumes. */
static void conn_redeliver(struct weft_conn *c)
{
    const struct weft_protocol *p = c->ln->conf->proto;

    c->redeliver = 0;
    if (c->in.len == 0 || c->state != CONN_OPEN || c->paused)
        return;
    size_t used = p->data_received(c, c->in.data, c->in.len);
    bytes_consume(&c->in, WEFT_MIN(used, c->in.len));
}

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct weft_conn *c = container_of(io, struct weft_conn, io);

    (void)loop;
    c->busy = 1;
    if (revents & EV_WRITE)
        conn_flush(c);
    if (c->redeliver)
        conn_redeliver(c);
    if (revents & EV_READ)
        conn_read(c);
    c->busy = 0;
    conn_settle(c);
}

void conn_new(struct wlistener *ln, int fd)
{
    struct worker *w = ln->w;
    struct weft_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        log_error("%s: listener %s: out of memory", __func__, ln->conf->name);
        close(fd);
        return;
    }
    c->ln = ln;
    c->state = CONN_OPEN;
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    LIST_INSERT_HEAD(&w->conns, c, link);
    ln->nconns++;
    const struct weft_protocol *p = ln->conf->proto;
    if (p->connection_made != NULL) {
        c->busy = 1;
        p->connection_made(c);
        c->busy = 0;
    }
    conn_settle(c);
}

void conn_close_all(struct worker *w)
{
    while (!LIST_EMPTY(&w->conns)) {
        struct weft_conn *c = LIST_FIRST(&w->conns);
        if (c->state != CONN_DEAD)
            conn_fail(c, WEFT_CLOSE_LOCAL);
        conn_destroy(c);
    }
    w->settle = NULL;
}

/* Queue what the kernel does not take at once; see weft.h. */
int weft_conn_write(struct weft_conn *c, const void *data, size_t len)
{
    const char *p = data;

    if (c->state != CONN_OPEN)
        return -1;
    if (c->out.len == 0 && len > 0) {
        /* Nothing queued: try the socket first, so no copy is made. */
        ssize_t n = send(c->io.fd, p, len, MSG_NOSIGNAL);
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            conn_fail(c, reason_from_errno(errno));
            conn_touch(c);
            return -1;
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    if (len == 0)
        return c->above_high ? 1 : 0;
    if (outq_append(&c->out, p, len) == -1) {
        log_error("%s: listener %s: out of memory", __func__,
                  c->ln->conf->name);
        conn_fail(c, WEFT_CLOSE_ERROR);
        conn_touch(c);
        return -1;
    }
    if (c->out.len > CONN_HIGH_WATER)
        c->above_high = 1;
    conn_touch(c);
    return c->above_high ? 1 : 0;
}

void weft_conn_close(struct weft_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_CLOSING;
    c->reason = WEFT_CLOSE_LOCAL;
    conn_touch(c);
}

void weft_conn_abort(struct weft_conn *c)
{
    conn_fail(c, WEFT_CLOSE_LOCAL);
    conn_touch(c);
}

void weft_conn_pause(struct weft_conn *c)
{
    c->paused = 1;
    conn_touch(c);
}

void weft_conn_resume(struct weft_conn *c)
{
    if (!c->paused)
        return;
    c->paused = 0;
    if (c->in.len > 0)
        c->redeliver = 1;
    conn_touch(c);
}

size_t weft_conn_queued(const struct weft_conn *c)
{
    return c->out.len;
}

void *weft_conn_data(const struct weft_conn *c)
{
    return c->data;
}

void weft_conn_set_data(struct weft_conn *c, void *data)
{
    c->data = data;
}
