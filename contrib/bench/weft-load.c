/*
 * weft-load.c - load generator for the weft benchmarks.
 *
 * One process, one libev loop, no threads: on the 2-core machines this runs
 * on, a second load thread would only steal the core the server needs.
 *
 * Modes:
 *   pingpong  C TCP connections, each sends S bytes, waits for the S bytes
 *             echoed back, repeats for D seconds.
 *   churn     C connections in flight, each: connect, one round trip, close.
 *   idle      open C connections, one round trip each (none with -s 0,
 *             for servers that do not echo), print "idle_ready conns=N",
 *             hold them for D seconds or until SIGTERM / SIGINT.
 *   udp       C UDP sockets with one S-byte datagram in flight each.
 *
 * Every echoed byte is checked against a pattern that depends on the
 * connection, the message number and the offset, so stale, reordered or
 * corrupted data is counted as a mismatch.  Every operation has a timeout,
 * so a dead peer never stalls a slot, and the run stops by itself.
 *
 * Output is a human line and one "result key=value ..." line for scripts.
 * The exit status is 0 unless the set-up failed (bad options: 2, no event
 * loop or sockets: 1); after SIGINT it reports, then dies of SIGINT so that
 * a calling shell script stops as well.
 *
 * Build: gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
 *            -Wstrict-prototypes -Wmissing-prototypes \
 *            -o weft-load weft-load.c -lev -lm
 */

/* SOCK_NONBLOCK, SOCK_CLOEXEC: also when built without -D_GNU_SOURCE. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "hist.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define SCRATCH_SIZE    65536       /* one read or write at a time */
#define UDP_HEADER      8           /* sequence number ahead of the pattern */
#define UDP_MAX_SIZE    65507
#define TCP_MAX_SIZE    (64u << 20)
#define MAX_CONNS       100000
#define BACKOFF         0.005       /* s before a failed slot starts again */
#define IDLE_PARALLEL   128         /* connects in progress at once, idle */
#define IDLE_ATTEMPTS   3           /* tries per idle slot */
#define IDLE_SETUP_MAX  120.0       /* s: bound on the idle set-up phase */
#define FD_RESERVE      32          /* fds kept for stdio, epoll, ... */
#define LOG_OTHER_MAX   5           /* "other" errors logged to stderr */

/* Every kind of failure, declared once for the struct and the output. */
#define ERROR_KINDS(X)              \
    X(refused,    "refused")        \
    X(reset,      "reset")          \
    X(timeout,    "timeout")        \
    X(short_echo, "short")          \
    X(mismatch,   "mismatch")       \
    X(dropped,    "dropped")        \
    X(other,      "other")

enum mode { MODE_PINGPONG, MODE_CHURN, MODE_IDLE, MODE_UDP };

static const char *const mode_names[] = {
    [MODE_PINGPONG] = "pingpong",
    [MODE_CHURN] = "churn",
    [MODE_IDLE] = "idle",
    [MODE_UDP] = "udp",
};

struct options {
    const char *host;
    int port;
    enum mode mode;
    int conns;
    size_t size;
    double seconds;
    double timeout;             /* s, per operation or connection */
};

struct stats {
    uint64_t ops;
    uint64_t late;              /* udp replies that came after a timeout */
#define X(field, name) uint64_t field;
    ERROR_KINDS(X)
#undef X
    struct hist lat;
};

enum conn_state {
    CONN_FREE,                  /* no socket; the timer restarts it */
    CONN_CONNECTING,            /* non-blocking connect in progress */
    CONN_ECHOING,               /* one message out and back */
    CONN_HOLDING,               /* idle mode: round trip done, kept open */
    CONN_DONE,                  /* idle mode: given up or dropped */
};

struct bench;

/* One TCP connection slot, or one UDP socket in udp mode. */
struct conn {
    ev_io io;
    ev_timer timer;             /* timeout, or back-off when CONN_FREE */
    struct bench *bench;
    enum conn_state state;
    int fd;
    int events;                 /* what io currently watches */
    unsigned id;
    uint32_t seq;               /* message number, part of the pattern */
    int attempts;
    int failed;                 /* udp: error seen, timer resends */
    size_t sent;
    size_t rcvd;
    uint64_t t0;                /* ns: start of the current operation */
};

struct bench {
    struct ev_loop *loop;
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *conns;
    int nconns;
    struct stats st;
    ev_timer run_timer;         /* end of the run, or of the idle hold */
    ev_timer setup_timer;       /* idle: bound on the set-up phase */
    ev_signal sigint;
    ev_signal sigterm;
    uint64_t t_start;
    uint64_t t_ready;           /* idle: when the set-up ended */
    int logged_other;
    int stop_signal;            /* signal that ended the run, or 0 */
    /* idle mode bookkeeping */
    int next_idle;              /* next slot to launch */
    int in_progress;
    int ready;
    int settled;                /* ready + given up */
    int announced;
    uint8_t buf[SCRATCH_SIZE];
};

static void conn_start(struct conn *c);
static void conn_begin_echo(struct conn *c);
static void conn_echo_done(struct conn *c);
static void idle_launch(struct bench *b);
static void udp_send(struct conn *c);

static uint64_t stats_errors(const struct stats *st)
{
    uint64_t n = 0;

#define X(field, name) n += st->field;
    ERROR_KINDS(X)
#undef X
    return n;
}

/*
 * Byte at offset off of message seq on connection id.  The multipliers are
 * odd so consecutive messages, offsets and connections all differ, and the
 * off >> 8 term keeps a 256-byte shift from looking like a match.
 */
static uint8_t pattern_byte(unsigned id, uint32_t seq, size_t off)
{
    return (uint8_t)(off * 7u + (off >> 8) * 11u + seq * 13u + id * 29u + 1u);
}

static void pattern_fill(uint8_t *buf, size_t len, unsigned id, uint32_t seq,
                         size_t off)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = pattern_byte(id, seq, off + i);
}

/* 0 when buf holds bytes off..off+len of the message, -1 otherwise. */
static int pattern_check(const uint8_t *buf, size_t len, unsigned id,
                         uint32_t seq, size_t off)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (buf[i] != pattern_byte(id, seq, off + i))
            return -1;
    return 0;
}

/*
 * The counter for a failed socket call.  Errors that fit no kind are
 * logged a few times, since they usually mean a local problem (no ports,
 * no fds) rather than a server fault.
 */
static uint64_t *error_counter(struct bench *b, const char *what, int err)
{
    switch (err) {
    case ECONNREFUSED:
        return &b->st.refused;
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
        return &b->st.reset;
    case ETIMEDOUT:
        return &b->st.timeout;
    default:
        if (b->logged_other++ < LOG_OTHER_MAX)
            fprintf(stderr, "weft-load: %s: %s\n", what, strerror(err));
        return &b->st.other;
    }
}

/* Watch exactly ev on the connection's fd; no syscall if nothing changes. */
static void conn_watch(struct conn *c, int ev)
{
    if (c->events == ev && ev_is_active(&c->io))
        return;
    ev_io_stop(c->bench->loop, &c->io);
    c->events = ev;
    if (ev == 0)
        return;
    ev_io_set(&c->io, c->fd, ev);
    ev_io_start(c->bench->loop, &c->io);
}

/* (Re)arm the connection's one-shot timer to fire after secs. */
static void conn_arm(struct conn *c, double secs)
{
    ev_timer_stop(c->bench->loop, &c->timer);
    ev_timer_set(&c->timer, secs, 0.0);
    ev_timer_start(c->bench->loop, &c->timer);
}

/* Stop the watchers and close the socket; the slot becomes CONN_FREE. */
static void conn_close(struct conn *c)
{
    struct bench *b = c->bench;

    ev_io_stop(b->loop, &c->io);
    ev_timer_stop(b->loop, &c->timer);
    c->events = 0;
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_FREE;
}

/*
 * Count a failure on counter, close the connection and let the timer start
 * it again after a short back-off.  Never restarts synchronously, so a
 * failure inside conn_start cannot recurse.
 */
static void conn_fail(struct conn *c, uint64_t *counter)
{
    (*counter)++;
    conn_close(c);
    c->attempts++;
    conn_arm(c, BACKOFF);
}

/* Idle mode: slot c is finished with set-up, ok or given up. */
static void idle_settle(struct conn *c, int ok)
{
    struct bench *b = c->bench;

    b->in_progress--;
    b->settled++;
    if (ok) {
        b->ready++;
    } else {
        conn_close(c);
        c->state = CONN_DONE;
    }
    idle_launch(b);
}

/*
 * A non-blocking TCP socket with TCP_NODELAY.  In churn mode it also gets
 * SO_LINGER 0, so that close() sends a RST and the client port never sits
 * in TIME_WAIT.  The client closes first, so without it every connection
 * holds one of the 28232 ephemeral ports (32768-60999) for 60 s: about 470
 * conn/s sustained.  tcp_tw_reuse=2 lets loopback reuse a TIME_WAIT port
 * after 1 s, which caps the rate near 28k conn/s, and connect() then has to
 * search past tens of thousands of TIME_WAIT entries: measured against
 * weftd on the 2-core box, 14k conn/s with a p99 of 52 ms without the RST,
 * 45k conn/s with a p99 of 2.5 ms with it.  The RST goes out only after
 * the whole echo has been read, so the server has done all its work; it
 * sees a reset instead of an EOF, and as it never closes first it has no
 * TIME_WAIT either.  Returns the fd, or -1 with errno set.
 */
static int conn_socket(struct bench *b)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    int one = 1;
    int fd;

    fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1)
        return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
        goto fail;
    if (b->opt.mode == MODE_CHURN &&
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == -1)
        goto fail;
    return fd;

fail:
    close(fd);
    return -1;
}

/* Open a socket on slot c and start connecting; failures go to conn_fail. */
static void conn_start(struct conn *c)
{
    struct bench *b = c->bench;

    c->t0 = now_ns();
    /* One deadline for connect and echo: a dead peer never stalls a slot. */
    conn_arm(c, b->opt.timeout);
    c->fd = conn_socket(b);
    if (c->fd == -1) {
        conn_fail(c, error_counter(b, "socket", errno));
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&b->addr, b->addrlen) == 0) {
        conn_begin_echo(c);
        return;
    }
    if (errno != EINPROGRESS) {
        conn_fail(c, error_counter(b, "connect", errno));
        return;
    }
    c->state = CONN_CONNECTING;
    conn_watch(c, EV_WRITE);
}

/* The connect finished (writable): check how, then start the echo. */
static void conn_on_connect(struct conn *c)
{
    struct bench *b = c->bench;
    socklen_t len = sizeof(int);
    int err = 0;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    if (err != 0) {
        conn_fail(c, error_counter(b, "connect", err));
        return;
    }
    conn_begin_echo(c);
}

/*
 * Send what the socket takes of the current message.  Returns 0, or -1
 * after counting and closing on error.
 */
static int conn_send(struct conn *c)
{
    struct bench *b = c->bench;
    size_t len;
    ssize_t n;

    while (c->sent < b->opt.size) {
        len = b->opt.size - c->sent;
        if (len > sizeof b->buf)
            len = sizeof b->buf;
        pattern_fill(b->buf, len, c->id, c->seq, c->sent);
        n = send(c->fd, b->buf, len, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            conn_fail(c, error_counter(b, "send", errno));
            return -1;
        }
        c->sent += (size_t)n;
    }
    return 0;
}

/* Start message seq+1 on a connected socket; the latency clock starts. */
static void conn_begin_echo(struct conn *c)
{
    struct bench *b = c->bench;

    c->state = CONN_ECHOING;
    c->seq++;
    c->sent = 0;
    c->rcvd = 0;
    if (b->opt.mode == MODE_PINGPONG) {
        /* Pingpong times each message; the others the whole connection. */
        c->t0 = now_ns();
        conn_arm(c, b->opt.timeout);
    }
    if (b->opt.size == 0) {
        /* Idle with -s 0: connected is enough (servers that do not echo). */
        conn_echo_done(c);
        return;
    }
    if (conn_send(c) == -1)
        return;
    /* Keep reading while sending: a large message would deadlock else. */
    conn_watch(c, c->sent < b->opt.size ? EV_READ | EV_WRITE : EV_READ);
}

/* The echo of the current message is complete and correct. */
static void conn_echo_done(struct conn *c)
{
    struct bench *b = c->bench;

    b->st.ops++;
    hist_record(&b->st.lat, now_ns() - c->t0);
    c->attempts = 0;
    switch (b->opt.mode) {
    case MODE_PINGPONG:
        conn_begin_echo(c);
        break;
    case MODE_CHURN:
        conn_close(c);
        conn_start(c);
        break;
    case MODE_IDLE:
        ev_timer_stop(b->loop, &c->timer);
        c->state = CONN_HOLDING;
        conn_watch(c, EV_READ);
        idle_settle(c, 1);
        break;
    case MODE_UDP:
        break;
    }
}

/*
 * Read what is there of the echo and check it.  Returns 1 when the message
 * is complete, 0 when more is to come, -1 after counting and closing.
 */
static int conn_recv(struct conn *c)
{
    struct bench *b = c->bench;
    size_t want;
    ssize_t n;

    for (;;) {
        want = b->opt.size - c->rcvd;
        if (want == 0)
            return 1;
        if (want > sizeof b->buf)
            want = sizeof b->buf;
        n = recv(c->fd, b->buf, want, 0);
        if (n == 0) {
            conn_fail(c, &b->st.short_echo);
            return -1;
        }
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            conn_fail(c, error_counter(b, "recv", errno));
            return -1;
        }
        if (pattern_check(b->buf, (size_t)n, c->id, c->seq, c->rcvd) == -1) {
            conn_fail(c, &b->st.mismatch);
            return -1;
        }
        c->rcvd += (size_t)n;
    }
}

/*
 * Idle mode, after the round trip: anything readable is either bytes the
 * server should not have sent or the end of the connection.
 */
static void conn_on_hold_event(struct conn *c)
{
    struct bench *b = c->bench;
    ssize_t n;

    n = recv(c->fd, b->buf, sizeof b->buf, 0);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0)
        b->st.mismatch++;
    else
        b->st.dropped++;
    b->ready--;
    conn_close(c);
    c->state = CONN_DONE;
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, io);
    int r;

    (void)loop;
    switch (c->state) {
    case CONN_CONNECTING:
        conn_on_connect(c);
        break;
    case CONN_ECHOING:
        if ((revents & EV_WRITE) && conn_send(c) == -1)
            return;
        r = conn_recv(c);
        if (r == 1)
            conn_echo_done(c);
        else if (r == 0 && c->sent == c->bench->opt.size)
            conn_watch(c, EV_READ);
        break;
    case CONN_HOLDING:
        conn_on_hold_event(c);
        break;
    case CONN_FREE:
    case CONN_DONE:
        break;
    }
}

/* Timer: back-off over (restart the slot) or operation timed out. */
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = container_of(w, struct conn, timer);
    struct bench *b = c->bench;

    (void)loop;
    (void)revents;
    switch (c->state) {
    case CONN_FREE:
        if (b->opt.mode == MODE_IDLE &&
            (b->announced || c->attempts >= IDLE_ATTEMPTS))
            idle_settle(c, 0);
        else
            conn_start(c);
        break;
    case CONN_CONNECTING:
    case CONN_ECHOING:
        conn_fail(c, &b->st.timeout);
        break;
    case CONN_HOLDING:
    case CONN_DONE:
        break;
    }
}

/* Print the idle_ready line and start holding for the run time. */
static void idle_announce(struct bench *b)
{
    b->announced = 1;
    b->t_ready = now_ns();
    ev_timer_stop(b->loop, &b->setup_timer);
    printf("idle_ready conns=%d\n", b->ready);
    fflush(stdout);
    ev_timer_set(&b->run_timer, b->opt.seconds, 0.0);
    ev_timer_start(b->loop, &b->run_timer);
}

/*
 * Idle mode: start slots until IDLE_PARALLEL connects are in progress, so
 * the server's accept queue is not flooded with 10000 SYNs at once; once
 * every slot is settled, announce.
 */
static void idle_launch(struct bench *b)
{
    struct conn *c;

    if (b->announced)
        return;
    while (b->in_progress < IDLE_PARALLEL && b->next_idle < b->nconns) {
        c = &b->conns[b->next_idle++];
        b->in_progress++;
        conn_start(c);
    }
    if (b->settled == b->nconns)
        idle_announce(b);
}

/* The idle set-up took too long: give up on the slots still trying. */
static void idle_setup_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = container_of(w, struct bench, setup_timer);
    struct conn *c;
    int i;

    (void)loop;
    (void)revents;
    for (i = 0; i < b->nconns; i++) {
        c = &b->conns[i];
        if (c->state == CONN_CONNECTING || c->state == CONN_ECHOING ||
            c->state == CONN_FREE) {
            if (c->state != CONN_FREE || i < b->next_idle)
                b->st.timeout++;
            conn_close(c);
            c->state = CONN_DONE;
        }
    }
    b->next_idle = b->nconns;
    b->settled = b->nconns;
    idle_announce(b);
}

/*
 * Open the UDP socket of slot c, connected so that only the server's
 * datagrams arrive and ICMP errors are reported.  Returns 0 or -1.
 */
static int udp_open(struct conn *c)
{
    struct bench *b = c->bench;

    c->fd = socket(b->addr.ss_family,
                   SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        fprintf(stderr, "%s: socket: %s\n", __func__, strerror(errno));
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&b->addr, b->addrlen) == -1) {
        fprintf(stderr, "%s: connect: %s\n", __func__, strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = CONN_ECHOING;
    conn_watch(c, EV_READ);
    return 0;
}

/* Send datagram seq+1: a sequence number, then the pattern. */
static void udp_send(struct conn *c)
{
    struct bench *b = c->bench;
    uint64_t seq;

    c->seq++;
    c->failed = 0;
    seq = c->seq;
    memcpy(b->buf, &seq, UDP_HEADER);
    pattern_fill(b->buf + UDP_HEADER, b->opt.size - UDP_HEADER, c->id, c->seq,
                 0);
    c->t0 = now_ns();
    conn_arm(c, b->opt.timeout);
    if (send(c->fd, b->buf, b->opt.size, 0) == -1) {
        /* The timer sends again; this one counts as that error, not lost. */
        (*error_counter(b, "send", errno))++;
        c->failed = 1;
    }
}

/*
 * Check one received datagram of n bytes in the scratch buffer.  Returns 1
 * when it is the reply awaited, 0 when it is a late reply to be ignored,
 * -1 when it is a bad reply (counted; the next datagram goes out).
 */
static int udp_check(struct conn *c, size_t n)
{
    struct bench *b = c->bench;
    uint64_t seq;

    if (n < UDP_HEADER) {
        b->st.short_echo++;
        return -1;
    }
    memcpy(&seq, b->buf, UDP_HEADER);
    if (seq < c->seq) {
        b->st.late++;
        return 0;
    }
    if (n < b->opt.size) {
        b->st.short_echo++;
        return -1;
    }
    if (n != b->opt.size || seq != c->seq ||
        pattern_check(b->buf + UDP_HEADER, n - UDP_HEADER, c->id, c->seq,
                      0) == -1) {
        b->st.mismatch++;
        return -1;
    }
    return 1;
}

static void udp_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, io);
    struct bench *b = c->bench;
    ssize_t n;
    int r;

    (void)loop;
    (void)revents;
    for (;;) {
        n = recv(c->fd, b->buf, sizeof b->buf, 0);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            if (!c->failed)
                (*error_counter(b, "recv", errno))++;
            c->failed = 1;
            return;
        }
        if (c->failed)
            continue;
        r = udp_check(c, (size_t)n);
        if (r == 0)
            continue;
        if (r == 1) {
            b->st.ops++;
            hist_record(&b->st.lat, now_ns() - c->t0);
        }
        udp_send(c);
    }
}

/* No reply in time: a lost datagram (unless an error was counted). */
static void udp_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = container_of(w, struct conn, timer);

    (void)loop;
    (void)revents;
    if (!c->failed)
        c->bench->st.timeout++;
    udp_send(c);
}

static void run_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct bench *b = ev_userdata(loop);

    (void)revents;
    b->stop_signal = w->signum;
    ev_break(loop, EVBREAK_ALL);
}

/*
 * Raise the soft fd limit to the hard one.  Returns the soft limit now in
 * force.
 */
static long nofile_raise(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        fprintf(stderr, "%s: getrlimit: %s\n", __func__, strerror(errno));
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            fprintf(stderr, "%s: setrlimit: %s\n", __func__, strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > INT_MAX)
        return INT_MAX;
    return (long)rl.rlim_cur;
}

/*
 * Fill b->addr from an IPv4 or IPv6 literal (brackets allowed) and port.
 * Returns 0 or -1.
 */
static int addr_parse(struct bench *b, const char *host, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&b->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&b->addr;
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(host);

    memset(&b->addr, 0, sizeof b->addr);
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        b->addrlen = sizeof *sin;
        return 0;
    }
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' &&
        len - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, len - 2);
        tmp[len - 2] = '\0';
        host = tmp;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        b->addrlen = sizeof *sin6;
        return 0;
    }
    fprintf(stderr, "%s: not an IPv4 or IPv6 address: %s\n", __func__, host);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weft-load -p port [-H host] [-m mode] [-c conns]"
            " [-s size] [-d seconds] [-t timeout_ms]\n"
            "  -H host     IPv4 or IPv6 literal (default 127.0.0.1)\n"
            "  -p port     server port (required)\n"
            "  -m mode     pingpong | churn | idle | udp (default pingpong)\n"
            "  -c conns    connections / datagrams in flight (default 50)\n"
            "  -s size     message size in bytes (default 64; udp >= %d;\n"
            "              idle: 0 = connect only, no round trip)\n"
            "  -d seconds  run time, or hold time in idle mode (default 10)\n"
            "  -t ms       per-operation timeout (default 2000)\n",
            UDP_HEADER);
}

/* strtol of a whole string within [min, max].  Returns 0 or -1. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_mode(const char *s, enum mode *out)
{
    size_t i;

    for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum mode)i;
            return 0;
        }
    }
    return -1;
}

/* Parse argv into opt.  Returns 0, or -1 after printing why. */
static int options_parse(int argc, char **argv, struct options *opt)
{
    char *end;
    long v;
    int ch;

    *opt = (struct options){ .host = "127.0.0.1", .port = 0,
                             .mode = MODE_PINGPONG, .conns = 50, .size = 64,
                             .seconds = 10.0, .timeout = 2.0 };
    while ((ch = getopt(argc, argv, "H:p:m:c:s:d:t:h")) != -1) {
        switch (ch) {
        case 'H':
            opt->host = optarg;
            break;
        case 'p':
            if (parse_long(optarg, 1, 65535, &v) == -1)
                goto bad;
            opt->port = (int)v;
            break;
        case 'm':
            if (parse_mode(optarg, &opt->mode) == -1)
                goto bad;
            break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONNS, &v) == -1)
                goto bad;
            opt->conns = (int)v;
            break;
        case 's':
            if (parse_long(optarg, 0, TCP_MAX_SIZE, &v) == -1)
                goto bad;
            opt->size = (size_t)v;
            break;
        case 'd':
            opt->seconds = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(opt->seconds > 0.0) ||
                opt->seconds > 86400.0)
                goto bad;
            break;
        case 't':
            if (parse_long(optarg, 1, 3600000, &v) == -1)
                goto bad;
            opt->timeout = (double)v / 1000.0;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc || opt->port == 0) {
        usage(stderr);
        return -1;
    }
    if (opt->size == 0 && opt->mode != MODE_IDLE) {
        fprintf(stderr, "%s: size 0 is for idle mode only\n", __func__);
        return -1;
    }
    if (opt->mode == MODE_UDP &&
        (opt->size < UDP_HEADER || opt->size > UDP_MAX_SIZE)) {
        fprintf(stderr, "%s: udp size must be %d..%d\n", __func__, UDP_HEADER,
                UDP_MAX_SIZE);
        return -1;
    }
    return 0;

bad:
    fprintf(stderr, "%s: bad value for -%c: %s\n", __func__, ch, optarg);
    return -1;
}

/*
 * Allocate the slots and the loop's watchers.  In idle mode the number of
 * connections is cut to what the fd limit allows.  Returns 0 or -1.
 */
static int bench_init(struct bench *b)
{
    long nofile = nofile_raise();
    int i;

    b->loop = ev_default_loop(EVFLAG_AUTO);
    if (b->loop == NULL) {
        fprintf(stderr, "%s: no libev loop\n", __func__);
        return -1;
    }
    ev_set_userdata(b->loop, b);
    b->nconns = b->opt.conns;
    if (b->nconns > nofile - FD_RESERVE) {
        b->nconns = (int)(nofile - FD_RESERVE);
        fprintf(stderr, "%s: fd limit %ld: %d connections, not %d\n",
                __func__, nofile, b->nconns, b->opt.conns);
        if (b->nconns < 1)
            return -1;
    }
    b->conns = calloc((size_t)b->nconns, sizeof *b->conns);
    if (b->conns == NULL) {
        fprintf(stderr, "%s: calloc: %s\n", __func__, strerror(errno));
        return -1;
    }
    for (i = 0; i < b->nconns; i++) {
        struct conn *c = &b->conns[i];

        c->bench = b;
        c->fd = -1;
        c->id = (unsigned)i;
        c->state = CONN_FREE;
        ev_init(&c->io, b->opt.mode == MODE_UDP ? udp_io_cb : conn_io_cb);
        ev_init(&c->timer,
                b->opt.mode == MODE_UDP ? udp_timer_cb : conn_timer_cb);
    }
    ev_init(&b->run_timer, run_timer_cb);
    ev_init(&b->setup_timer, idle_setup_cb);
    ev_signal_init(&b->sigint, signal_cb, SIGINT);
    ev_signal_init(&b->sigterm, signal_cb, SIGTERM);
    ev_signal_start(b->loop, &b->sigint);
    ev_signal_start(b->loop, &b->sigterm);
    ev_unref(b->loop);
    ev_unref(b->loop);
    return 0;
}

/* Start every slot of a timed mode, and the run timer.  Returns 0 or -1. */
static int bench_start(struct bench *b)
{
    int i;

    b->t_start = now_ns();
    if (b->opt.mode == MODE_IDLE) {
        ev_timer_set(&b->setup_timer, IDLE_SETUP_MAX, 0.0);
        ev_timer_start(b->loop, &b->setup_timer);
        idle_launch(b);
        return 0;
    }
    for (i = 0; i < b->nconns; i++) {
        if (b->opt.mode != MODE_UDP) {
            conn_start(&b->conns[i]);
            continue;
        }
        if (udp_open(&b->conns[i]) == -1)
            return -1;
        udp_send(&b->conns[i]);
    }
    ev_timer_set(&b->run_timer, b->opt.seconds, 0.0);
    ev_timer_start(b->loop, &b->run_timer);
    return 0;
}

/* CPU time (user + system) used by this process so far, in seconds. */
static double self_cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) == -1)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * Print the human line and the machine-readable "result" line.  The
 * client's own CPU use is reported too: near 100 % means the load
 * generator, not the server, set the pace.
 */
static void bench_report(const struct bench *b, uint64_t t_end)
{
    const struct stats *st = &b->st;
    const char *mode = mode_names[b->opt.mode];
    double secs, rate_secs, rate, p50, p99, cpu_pct;
    uint64_t t_rate_end;
    const char *sep = "";

    /* Idle: the rate is of the set-up, the seconds are those held. */
    t_rate_end = b->opt.mode == MODE_IDLE && b->announced ? b->t_ready : t_end;
    secs = (double)(t_end - (b->opt.mode == MODE_IDLE && b->announced ?
                             b->t_ready : b->t_start)) / 1e9;
    rate_secs = (double)(t_rate_end - b->t_start) / 1e9;
    rate = rate_secs > 0 ? (double)st->ops / rate_secs : 0.0;
    p50 = hist_quantile_us(&st->lat, 0.50);
    p99 = hist_quantile_us(&st->lat, 0.99);
    cpu_pct = 100.0 * self_cpu_seconds() /
              ((double)(t_end - b->t_start) / 1e9);

    printf("%s: %d conns, %zu B, %.2f s: %" PRIu64 " ops, %.1f ops/s, "
           "p50 %.1f us, p99 %.1f us, client cpu %.0f %%, errors %" PRIu64
           " (", mode, b->nconns, b->opt.size, secs, st->ops, rate, p50, p99,
           cpu_pct, stats_errors(st));
#define X(field, name) \
    printf("%s%s %" PRIu64, sep, name, st->field); \
    sep = ", ";
    ERROR_KINDS(X)
#undef X
    printf(")\n");

    printf("result mode=%s conns=%d size=%zu seconds=%.2f ops=%" PRIu64
           " ops_per_s=%.1f p50_us=%.1f p99_us=%.1f errors=%" PRIu64,
           mode, b->nconns, b->opt.size, secs, st->ops, rate, p50, p99,
           stats_errors(st));
#define X(field, name) printf(" %s=%" PRIu64, name, st->field);
    ERROR_KINDS(X)
#undef X
    if (b->opt.mode == MODE_UDP)
        printf(" loss=%" PRIu64 " late=%" PRIu64, st->timeout, st->late);
    if (b->opt.mode == MODE_IDLE)
        printf(" ready=%d", b->ready);
    printf(" client_cpu_pct=%.0f\n", cpu_pct);
    fflush(stdout);
}

/*
 * Close everything.  TCP sockets are reset rather than closed (SO_LINGER 0)
 * so that thousands of idle or pingpong connections do not leave their
 * ports in TIME_WAIT for the next run (see conn_socket).
 */
static void bench_close(struct bench *b)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    int i;

    for (i = 0; i < b->nconns; i++) {
        if (b->conns[i].fd == -1)
            continue;
        if (b->opt.mode != MODE_UDP)
            (void)setsockopt(b->conns[i].fd, SOL_SOCKET, SO_LINGER, &lg,
                             sizeof lg);
        conn_close(&b->conns[i]);
    }
    free(b->conns);
}

int main(int argc, char **argv)
{
    static struct bench bench;  /* big scratch buffer: not on the stack */
    struct bench *b = &bench;
    uint64_t t_end;

    if (options_parse(argc, argv, &b->opt) == -1)
        return 2;
    if (addr_parse(b, b->opt.host, b->opt.port) == -1)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (bench_init(b) == -1 || bench_start(b) == -1)
        return 1;
    ev_run(b->loop, 0);
    t_end = now_ns();
    if (b->opt.mode == MODE_IDLE && !b->announced) {
        /* Stopped by a signal during set-up: still say how far it got. */
        printf("idle_ready conns=%d\n", b->ready);
    }
    bench_report(b, t_end);
    bench_close(b);
    if (b->stop_signal == SIGINT) {
        /*
         * Ctrl-C: report, then die of SIGINT so that a calling shell sees
         * the interrupt and stops too, instead of going on with its script.
         */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    return 0;
}
