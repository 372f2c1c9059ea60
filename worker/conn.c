#include "worker/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/tls.h"
#include "shared/util.h"
#include "worker/tls.h"

/* How many reads one readiness event may do before other sockets run. */
#define CONN_READ_ROUNDS 4
/* iovecs per writev: enough to drain a queue of small chunks at once. */
#define CONN_IOV_MAX 64
/* writev/sendfile calls per flush: a file segment then memory, and so on. */
#define CONN_FLUSH_ROUNDS 8

/* The idle timeout of a connection, allocated only when one is set. */
struct conn_idle {
    ev_timer timer;
    struct weft_conn *c;
    ev_tstamp last; /* last byte read or written */
    ev_tstamp after;
};

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

static const char *conn_name(const struct weft_conn *c)
{
    return c->ln ? c->ln->conf->name : "outgoing";
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

static void conn_active(struct weft_conn *c)
{
    if (c->idle != NULL)
        c->idle->last = ev_now(worker_self->loop);
}

/* n bytes went out: count them, and they are activity. */
static void conn_sent(struct weft_conn *c, size_t n)
{
    stats_add(conn_stats(c), STAT_bytes_out, n);
    conn_active(c);
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

/* Close the socket and free everything of c, telling nobody. */
static void conn_free(struct weft_conn *c)
{
    struct worker *w = worker_self;

    ev_io_stop(w->loop, &c->io);
    if (c->queued)
        settle_unlink(w, c);
    if (c->idle != NULL) {
        ev_timer_stop(w->loop, &c->idle->timer);
        free(c->idle);
    }
    tls_conn_free(c);
    close(c->io.fd);
    bytes_free(&c->in);
    outq_clear(&c->out);
    LIST_REMOVE(c, link);
    free(c);
}

/* Tell the protocol (and a reconnector), then free c. */
static void conn_destroy(struct weft_conn *c)
{
    struct weft_listener *ln = c->ln;
    struct weft_reconnector *rc = c->rc;
    enum weft_close_reason why = (enum weft_close_reason)c->reason;
    struct stats_row *st = conn_stats(c);

    ev_io_stop(worker_self->loop, &c->io);
    stats_add(st, STAT_connections_closed, 1);
    stats_sub(st, STAT_connections_active, 1);
    if (why == WEFT_CLOSE_TIMEOUT)
        stats_add(st, STAT_connections_timed_out, 1);
    if (c->limited)
        stats_add(st, STAT_connections_aborted, 1);
    if (c->proto->connection_lost != NULL)
        c->proto->connection_lost(c, why);
    conn_free(c);
    if (rc != NULL)
        reconnect_lost(rc, why);
    if (ln != NULL) {
        ln->nconns--;
        if (ln->full)
            listener_update(ln);
    }
    worker_check_drained(worker_self);
}

/* The half-close steps that wait for an empty queue or the peer's FIN. */
static void conn_settle_shutdown(struct weft_conn *c)
{
    if (c->state != CONN_OPEN || !c->shut_req || c->out.len > 0 ||
        (c->tls != NULL && tls_unsent(c)))
        return;
    if (!c->shut_done) {
        if (shutdown(c->io.fd, SHUT_WR) == -1) {
            conn_fail(c, reason_from_errno(errno));
            return;
        }
        c->shut_done = 1;
    }
    if (c->eof) {
        c->state = CONN_DEAD;
        c->reason = WEFT_CLOSE_PEER;
    }
}

static void conn_touch(struct weft_conn *c);
static void conn_flush(struct weft_conn *c);

/*
 * Bring c's watcher in line with its state, or destroy it once dead.
 * Called only when no callback of ours is running on c.
 */
static void conn_settle(struct weft_conn *c)
{
    struct ev_loop *loop = worker_self->loop;

    if (c->flush_soon) {
        /* Written while the worker was corked: one write for all of it. */
        c->flush_soon = 0;
        c->busy = 1;
        conn_flush(c);
        c->busy = 0;
    }
    if (c->tls != NULL) {
        /* What this callback wrote goes now, in one write, with the
         * close_notify when it was the last. */
        if (c->state == CONN_CLOSING && c->out.len == 0)
            tls_close_notify(c);
        if (tls_uncork(c) == -1)
            conn_fail(c, reason_from_errno(errno));
    }
    conn_settle_shutdown(c);
    if (c->state == CONN_CLOSING && c->out.len == 0 &&
        (c->tls == NULL || !tls_unsent(c)))
        c->state = CONN_DEAD;
    if (c->state == CONN_DEAD) {
        conn_destroy(c);
        return;
    }
    if (c->redeliver)
        conn_touch(c); /* resumed inside its own callback: deliver soon */
    int want = c->out.len > 0 || c->state == CONN_CONNECTING ||
                       (c->tls != NULL && tls_unsent(c))
                   ? EV_WRITE
                   : 0;
    if (c->state == CONN_OPEN && !c->paused && !c->eof)
        want |= EV_READ;
    if (c->tls != NULL) {
        /* OpenSSL may need to write to read, or to read to write. */
        if (c->state == CONN_HANDSHAKE)
            want = tls_want(c) | (tls_unsent(c) ? EV_WRITE : 0);
        if (want & EV_READ)
            want |= tls_read_want(c);
        if (c->out.len > 0)
            want |= tls_write_want(c);
    }
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
    struct worker *w = worker_self;

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
    size_t used;

    if (c->in.len == 0) {
        used = c->proto->data_received(c, data, len);
        used = WEFT_MIN(used, len);
        if (used == len || c->state != CONN_OPEN)
            return;
        if (bytes_append(&c->in, data + used, len - used) == -1)
            goto fail;
    } else {
        if (bytes_append(&c->in, data, len) == -1)
            goto fail;
        used = c->proto->data_received(c, c->in.data, c->in.len);
        bytes_consume(&c->in, WEFT_MIN(used, c->in.len));
    }
    if (c->in.len <= CONN_UNPARSED_MAX)
        return;
    log_warn("%s: %s: %zu bytes left unparsed, closing", __func__,
             conn_name(c), c->in.len);
    c->limited = 1;
fail:
    conn_fail(c, WEFT_CLOSE_ERROR);
}

/*
 * The peer closed its side. A protocol that handles half-closes decides
 * what follows; otherwise flush what is queued, then close.
 */
static void conn_eof(struct weft_conn *c)
{
    c->eof = 1;
    if (c->proto->eof_received != NULL) {
        c->proto->eof_received(c);
        return;
    }
    if (c->state == CONN_OPEN) {
        c->state = c->out.len > 0 ? CONN_CLOSING : CONN_DEAD;
        c->reason = WEFT_CLOSE_PEER;
    }
}

/*
 * Bytes OpenSSL decrypted and still holds are invisible to the poll: when
 * c could take them now, have its watcher called again soon (in this
 * round of callbacks, after the others pending; freeing c cancels it).
 */
static void conn_tls_more(struct weft_conn *c)
{
    if (c->tls != NULL && c->state == CONN_OPEN && !c->paused && !c->eof &&
        tls_pending(c))
        ev_feed_event(worker_self->loop, &c->io, EV_READ);
}

/* Read into the worker's buffer and deliver, a few rounds at most. */
static void conn_read(struct weft_conn *c)
{
    struct worker *w = worker_self;

    for (int i = 0; i < CONN_READ_ROUNDS; i++) {
        if (c->state != CONN_OPEN || c->paused || c->eof)
            return;
        ssize_t n = c->tls ? tls_read(c, w->rbuf, w->rbuf_size)
                           : read(c->io.fd, w->rbuf, w->rbuf_size);
        if (n > 0) {
            conn_active(c);
            stats_add(conn_stats(c), STAT_bytes_in, (uint64_t)n);
            conn_deliver(c, w->rbuf, (size_t)n);
            /* The socket is empty: skip the EAGAIN read. Not so when
             * OpenSSL holds decrypted bytes the poll cannot see. */
            if ((size_t)n < w->rbuf_size && (c->tls == NULL ||
                                              !tls_pending(c)))
                return;
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
    conn_tls_more(c);
}

/*
 * One write of the queue's head: sendfile for a file segment, writev for
 * the memory before the next one. Returns the bytes sent, 0 when the
 * socket is full, -1 after failing c.
 */
static ssize_t conn_flush_once(struct weft_conn *c)
{
    struct iovec iov[CONN_IOV_MAX];
    ssize_t sent;
    size_t len = 0;
    off_t off;
    int fd;
    int file;

    if (c->tls != NULL) {
        sent = tls_write_queue(c);
        if (sent == -1) {
            conn_fail(c, reason_from_errno(errno));
            return -1;
        }
        outq_consume(&c->out, (size_t)sent);
        return sent;
    }
    file = outq_head_file(&c->out, &fd, &off, &len);
    if (file)
        sent = sendfile(c->io.fd, fd, &off, len);
    else
        sent = writev(c->io.fd, iov, outq_iov(&c->out, iov, CONN_IOV_MAX));
    if (sent == -1) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        conn_fail(c, reason_from_errno(errno));
        return -1;
    }
    if (file && sent == 0) {
        /* The file is shorter than promised: nothing more will come. */
        log_warn("%s: %s: file ended before the length queued", __func__,
                 conn_name(c));
        conn_fail(c, WEFT_CLOSE_ERROR);
        return -1;
    }
    outq_consume(&c->out, (size_t)sent);
    return sent;
}

/* Write what the kernel takes of the queue; resume a paused producer. */
static void conn_flush(struct weft_conn *c)
{
    for (int i = 0; i < CONN_FLUSH_ROUNDS && c->out.len > 0; i++) {
        ssize_t n = conn_flush_once(c);
        if (n <= 0)
            break;
        conn_sent(c, (size_t)n);
    }
    if (c->above_high && c->out.len <= c->low && c->state == CONN_OPEN) {
        c->above_high = 0;
        if (c->proto->writable != NULL)
            c->proto->writable(c);
    }
}

/* Input kept while paused goes back to the protocol once it resumes. */
static void conn_redeliver(struct weft_conn *c)
{
    c->redeliver = 0;
    if (c->in.len == 0 || c->state != CONN_OPEN || c->paused)
        return;
    size_t used = c->proto->data_received(c, c->in.data, c->in.len);
    bytes_consume(&c->in, WEFT_MIN(used, c->in.len));
}

/* An outgoing connection became writable: the handshake is over. */
static void conn_check_connect(struct weft_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    connect_done(c, err);
}

static void conn_made(struct weft_conn *c);

/*
 * A handshake step; once done, the protocol meets the connection. Corked
 * until c settles: the end of the handshake, the tickets and the answer
 * to a request that came with the client's last flight go out together.
 */
static void conn_tls_step(struct weft_conn *c)
{
    int rc;

    tls_cork(c);
    rc = tls_handshake(c);

    if (rc == 0) {
        conn_settle(c);
        return;
    }
    if (c->ln == NULL) {
        /* Outgoing: the connection attempt ends here, either way. */
        connect_tls_done(c, rc == 1 ? NULL : tls_error(c));
        return;
    }
    if (rc == -1) {
        conn_handshake_failed(c);
        return;
    }
    if (c->ln->conf->idle_timeout > 0)
        weft_conn_set_idle_timeout(c, (unsigned)c->ln->conf->idle_timeout);
    conn_made(c);
}

void conn_tls_handshake(struct weft_conn *c)
{
    c->state = CONN_HANDSHAKE;
    conn_tls_step(c);
}

void conn_handshake_failed(struct weft_conn *c)
{
    struct weft_listener *ln = c->ln;

    conn_free(c);
    ln->nconns--;
    if (ln->full)
        listener_update(ln);
    worker_check_drained(worker_self);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct weft_conn *c = container_of(io, struct weft_conn, io);

    (void)loop;
    if (c->state == CONN_CONNECTING) {
        conn_check_connect(c);
        return;
    }
    if (c->tls != NULL) {
        if (revents & EV_READ)
            tls_readable(c);
        /* Bytes the socket refused earlier go first. A failure shows in
         * the read that follows (in a handshake) or fails c. */
        if ((revents & EV_WRITE) && tls_unsent(c) && tls_uncork(c) == -1) {
            if (c->state == CONN_HANDSHAKE)
                tls_readable(c);
            else
                conn_fail(c, reason_from_errno(errno));
        }
    }
    if (c->state == CONN_HANDSHAKE) {
        conn_tls_step(c);
        return;
    }
    /* OpenSSL may read to write or write to read: a write event is also
     * for a read that waits for it, and the other way round. */
    if (c->tls != NULL) {
        tls_cork(c); /* until conn_settle: one write for this callback's */
        if ((revents & EV_WRITE) && tls_read_want(c) == EV_WRITE)
            revents |= EV_READ;
        if ((revents & EV_READ) && tls_write_want(c) == EV_READ &&
            c->out.len > 0)
            revents |= EV_WRITE;
    }
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

static void conn_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct conn_idle *idle = container_of(t, struct conn_idle, timer);
    struct weft_conn *c = idle->c;
    ev_tstamp left = idle->last + idle->after - ev_now(loop);

    (void)revents;
    if (left > 0) {
        /* Activity since the timer was set: wait for the rest only. */
        ev_timer_set(t, left, 0);
        ev_timer_start(loop, t);
        return;
    }
    conn_fail(c, WEFT_CLOSE_TIMEOUT);
    conn_settle(c);
}

void weft_conn_set_idle_timeout(struct weft_conn *c, unsigned ms)
{
    struct ev_loop *loop = worker_self->loop;

    if (ms == 0) {
        if (c->idle != NULL)
            ev_timer_stop(loop, &c->idle->timer);
        free(c->idle);
        c->idle = NULL;
        return;
    }
    if (c->idle == NULL) {
        c->idle = calloc(1, sizeof(*c->idle));
        if (c->idle == NULL) {
            log_error("%s: %s: out of memory", __func__, conn_name(c));
            return;
        }
        c->idle->c = c;
        ev_timer_init(&c->idle->timer, conn_idle_cb, 0, 0);
    }
    ev_timer_stop(loop, &c->idle->timer);
    c->idle->after = ms / 1000.0;
    c->idle->last = ev_now(loop);
    ev_timer_set(&c->idle->timer, c->idle->after, 0);
    ev_timer_start(loop, &c->idle->timer);
}

/* A connection on fd for proto, not yet on any list of its listener. */
static struct weft_conn *conn_alloc(int fd, const struct weft_protocol *proto,
                                    struct weft_listener *ln)
{
    struct weft_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        log_error("%s: %s: out of memory", __func__,
                  ln ? ln->conf->name : "outgoing");
        close(fd);
        return NULL;
    }
    c->proto = proto;
    c->ln = ln;
    c->high = ln ? (uint32_t)ln->conf->write_high : CONFIG_WRITE_HIGH_DEFAULT;
    c->low = ln ? (uint32_t)ln->conf->write_low : CONFIG_WRITE_LOW_DEFAULT;
    c->max = ln ? (uint32_t)ln->conf->write_max : CONFIG_WRITE_MAX_DEFAULT;
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    LIST_INSERT_HEAD(&worker_self->conns, c, link);
    return c;
}

/*
 * Run connection_made on a fresh connection, hand it what OpenSSL has
 * decrypted already (bytes that came with the peer's last handshake
 * flight, which no poll will report), then settle it.
 */
static void conn_made(struct weft_conn *c)
{
    struct stats_row *st = conn_stats(c);

    stats_add(st, STAT_connections_accepted, 1);
    stats_add(st, STAT_connections_active, 1);
    c->state = CONN_OPEN;
    c->busy = 1;
    if (c->proto->connection_made != NULL)
        c->proto->connection_made(c);
    if (c->tls != NULL && c->state == CONN_OPEN && tls_pending(c))
        conn_read(c);
    c->busy = 0;
    conn_settle(c);
}

void conn_new(struct weft_listener *ln, int fd)
{
    struct weft_conn *c = conn_alloc(fd, ln->conf->proto, ln);

    if (c == NULL)
        return;
    ln->nconns++;
    if (ln->conf->tls != NULL) {
        if (tls_conn_start(c, ln->conf->tls) == -1) {
            log_error("%s: %s: out of memory for TLS", __func__,
                      ln->conf->name);
            conn_handshake_failed(c);
            return;
        }
        conn_tls_handshake(c); /* TCP_DEFER_ACCEPT: the hello is here */
        return;
    }
    if (ln->conf->idle_timeout > 0)
        weft_conn_set_idle_timeout(c, (unsigned)ln->conf->idle_timeout);
    conn_made(c);
}

struct weft_conn *conn_new_outgoing(int fd, const struct weft_protocol *proto,
                                    void *data)
{
    struct weft_conn *c = conn_alloc(fd, proto, NULL);

    if (c == NULL)
        return NULL;
    c->state = CONN_CONNECTING;
    c->data = data;
    ev_io_set(&c->io, fd, EV_WRITE);
    ev_io_start(worker_self->loop, &c->io);
    return c;
}

void conn_connected(struct weft_conn *c, void *data)
{
    c->data = data;
    conn_made(c);
}

void conn_drain(struct weft_conn *c)
{
    if (c->state != CONN_OPEN || c->proto->drain == NULL)
        return;
    c->busy = 1;
    c->proto->drain(c);
    c->busy = 0;
    conn_settle(c);
}

void conn_discard(struct weft_conn *c)
{
    conn_free(c);
}

void conn_close_all(struct worker *w)
{
    while (!LIST_EMPTY(&w->conns)) {
        struct weft_conn *c = LIST_FIRST(&w->conns);
        if (c->state == CONN_HANDSHAKE) {
            conn_handshake_failed(c);
            continue;
        }
        conn_fail(c, WEFT_CLOSE_LOCAL);
        conn_destroy(c);
    }
    w->settle = NULL;
}

/*
 * The marks after adding to the queue: 1 above high, 0 below, -1 when the
 * hard limit was passed and c is being aborted.
 */
static int conn_check_queue(struct weft_conn *c)
{
    if (c->max != 0 && c->out.len > c->max) {
        log_warn("%s: %s: output queue passed %u bytes; aborting",
                 __func__, conn_name(c), (unsigned)c->max);
        c->limited = 1;
        conn_fail(c, WEFT_CLOSE_ERROR);
        conn_touch(c);
        return -1;
    }
    if (c->out.len > c->high)
        c->above_high = 1;
    conn_touch(c);
    return c->above_high ? 1 : 0;
}

/* Drop the first n bytes of iov[0..*cnt), updating the array in place. */
static const struct iovec *iov_skip(const struct iovec *iov, int *cnt,
                                    size_t n, struct iovec *first)
{
    while (*cnt > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        (*cnt)--;
    }
    if (*cnt > 0 && n > 0) {
        first->iov_base = (char *)iov->iov_base + n;
        first->iov_len = iov->iov_len - n;
    } else if (*cnt > 0) {
        *first = *iov;
    }
    return iov;
}

int weft_conn_writev(struct weft_conn *c, const struct iovec *iov, int iovcnt)
{
    struct iovec first;
    ssize_t sent = 0;

    if (c->state != CONN_OPEN || c->shut_req || iovcnt < 0)
        return -1;
    if (worker_self->corked)
        c->flush_soon = 1;
    else if (c->out.len == 0 && iovcnt > 0 && c->tls == NULL) {
        /* Nothing queued: try the socket first, so no copy is made. */
        struct msghdr mh = { .msg_iov = (struct iovec *)iov,
                             .msg_iovlen = (size_t)WEFT_MIN(iovcnt, IOV_MAX) };
        /* One buffer (an HTTP batch): send(2) skips importing an iovec. */
        sent = iovcnt == 1
                   ? send(c->io.fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL)
                   : sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
        if (sent == -1 && errno != EAGAIN && errno != EINTR) {
            conn_fail(c, reason_from_errno(errno));
            conn_touch(c);
            return -1;
        }
        if (sent > 0)
            conn_sent(c, (size_t)sent);
    }
    bool was_empty = c->out.len == 0;
    iov = iov_skip(iov, &iovcnt, sent > 0 ? (size_t)sent : 0, &first);
    for (int i = 0; i < iovcnt; i++) {
        const struct iovec *v = i == 0 ? &first : &iov[i];
        if (outq_append(&c->out, v->iov_base, v->iov_len) == -1) {
            log_error("%s: %s: out of memory", __func__, conn_name(c));
            conn_fail(c, WEFT_CLOSE_ERROR);
            conn_touch(c);
            return -1;
        }
    }
    /* TLS: one record now, as plain TCP sends at once. Corked: send once
     * the queue reaches the low mark, so gathering never makes a queue
     * a client drains look like one it does not read. */
    bool now = c->flush_soon ? c->out.len >= c->low && c->out.len > 0
                             : was_empty && c->tls != NULL && c->out.len > 0;
    for (int i = 0; now && i < CONN_FLUSH_ROUNDS && c->out.len > 0; i++) {
        ssize_t n = conn_flush_once(c);
        if (n == -1) {
            conn_touch(c);
            return -1;
        }
        if (n == 0)
            break;
        conn_sent(c, (size_t)n);
    }
    return conn_check_queue(c);
}

int weft_conn_write(struct weft_conn *c, const void *data, size_t len)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };

    return weft_conn_writev(c, &iov, 1);
}

int weft_conn_sendfile(struct weft_conn *c, int fd, off_t off, size_t len)
{
    if (c->state != CONN_OPEN || c->shut_req)
        return -1;
    if (c->out.len == 0 && len > 0 && c->tls == NULL) {
        ssize_t n = sendfile(c->io.fd, fd, &off, len);
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            conn_fail(c, reason_from_errno(errno));
            conn_touch(c);
            return -1;
        }
        if (n > 0) {
            conn_sent(c, (size_t)n);
            len -= (size_t)n; /* off was advanced by sendfile */
        }
    }
    if (len == 0)
        return conn_check_queue(c);
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own == -1 || outq_append_file(&c->out, own, off, len) == -1) {
        log_error("%s: %s: cannot queue the file: %s", __func__,
                  conn_name(c), strerror(errno));
        if (own != -1)
            close(own);
        conn_fail(c, WEFT_CLOSE_ERROR);
        conn_touch(c);
        return -1;
    }
    return conn_check_queue(c);
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

void weft_conn_shutdown(struct weft_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->shut_req = 1;
    conn_touch(c);
}

void weft_conn_pause(struct weft_conn *c)
{
    c->paused = 1;
    conn_touch(c);
}

void weft_conn_resume(struct weft_conn *c)
{
    if (!c->paused && c->in.len == 0)
        return;
    c->paused = 0;
    if (c->in.len > 0)
        c->redeliver = 1;
    conn_touch(c);
    conn_tls_more(c);
}

size_t weft_conn_queued(const struct weft_conn *c)
{
    return c->out.len;
}

void weft_conn_set_watermarks(struct weft_conn *c, size_t high, size_t low,
                              size_t max)
{
    c->high = (uint32_t)WEFT_MIN(high, UINT32_MAX);
    c->low = (uint32_t)WEFT_MIN(low, c->high);
    c->max = max == 0 ? 0 : (uint32_t)WEFT_MIN(WEFT_MAX(max, high),
                                               UINT32_MAX);
}

int weft_conn_peer(const struct weft_conn *c, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    *len = sizeof(*ss);
    return getpeername(c->io.fd, (struct sockaddr *)ss, len);
}

int weft_conn_local(const struct weft_conn *c, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    *len = sizeof(*ss);
    return getsockname(c->io.fd, (struct sockaddr *)ss, len);
}

void *weft_conn_data(const struct weft_conn *c)
{
    return c->data;
}

void weft_conn_set_data(struct weft_conn *c, void *data)
{
    c->data = data;
}

struct weft_listener *weft_conn_listener(const struct weft_conn *c)
{
    return c->ln;
}
