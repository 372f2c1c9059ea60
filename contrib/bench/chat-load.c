/*
 * chat-load.c - load generator for weftd's chat protocol (chat.sh).
 *
 * S subscribers and P publishers join one room; the publishers send
 * "MSG #room <pub> <seq> <t_ns>" at a total rate R (messages per second,
 * paced every millisecond), and every member receives every message. Each
 * delivery's latency (the receive time minus t_ns, one clock, one machine)
 * goes into one of two histograms: publisher and receiver on the same
 * worker, or on different workers. Which worker holds a connection is
 * read from /proc when the supervisor's pid is given (-x): the server
 * side of each connection is found in /proc/net/tcp and its inode among
 * the workers' descriptors. Without -x every delivery counts as "same".
 *
 * Every receiver checks that each publisher's seq numbers arrive in
 * order, once: a hole counts as lost, anything else as disorder.
 *
 * Output: a human summary and one "result key=value ..." line.
 *
 * One process, one libev loop, no threads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "hist.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define RBUF 65536
#define MAX_CONNS 10000
#define MAX_WORKERS 64
#define PACE_S 0.001
#define SETUP_TIMEOUT_S 30.0

enum state { ST_HELLO, ST_JOINING, ST_READY };

struct conn {
    struct bench *b;
    int idx;
    bool publisher;
    int pub;             /* publisher number, or -1 */
    int worker;          /* index of the worker holding it, or -1 */
    enum state st;
    ev_io io;
    char rbuf[RBUF];
    size_t rlen;
    char *wbuf;          /* pending output */
    size_t wlen, wcap;
    uint64_t *next_seq;  /* receivers: the next seq of each publisher */
    uint64_t sent;       /* publishers: messages sent */
};

struct bench {
    struct ev_loop *loop;
    struct sockaddr_in addr;
    int nsubs, npubs, nconns;
    double rate, secs, warmup;
    long server_pid;
    const char *room;
    struct conn *conns;
    int ready;
    bool measuring, running;
    uint64_t t_start, t_measure, t_end;
    struct hist same, cross;
    uint64_t delivered, published, acks, errs, lost, disorder, refused;
    uint64_t err_first_logged;
    ev_timer pace, phase;
    ev_signal sigint;
};

static void die(const char *what)
{
    fprintf(stderr, "chat-load: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Queue text for c; the write watcher sends it. */
static void conn_queue(struct conn *c, const char *s, size_t n)
{
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + n)
            cap *= 2;
        if ((c->wbuf = realloc(c->wbuf, cap)) == NULL)
            die("realloc");
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, s, n);
    c->wlen += n;
    ev_io_stop(c->b->loop, &c->io);
    ev_io_set(&c->io, c->io.fd, EV_READ | EV_WRITE);
    ev_io_start(c->b->loop, &c->io);
}

static void conn_flush(struct conn *c)
{
    while (c->wlen > 0) {
        ssize_t n = send(c->io.fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            die("send");
        }
        memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
        c->wlen -= (size_t)n;
    }
    ev_io_stop(c->b->loop, &c->io);
    ev_io_set(&c->io, c->io.fd, EV_READ);
    ev_io_start(c->b->loop, &c->io);
}

/* "MSG #room nick pub seq t_ns": check the order, record the latency. */
static void on_delivery(struct conn *c, char *rest, uint64_t now)
{
    struct bench *b = c->b;
    char *nick = strtok(rest, " "), *spub = strtok(NULL, " "),
         *sseq = strtok(NULL, " "), *st = strtok(NULL, " ");
    int pub;
    uint64_t seq, t;

    if (nick == NULL || st == NULL)
        return;
    pub = atoi(spub);
    seq = strtoull(sseq, NULL, 10);
    t = strtoull(st, NULL, 10);
    if (pub < 0 || pub >= b->npubs)
        return;
    if (seq > c->next_seq[pub])
        b->lost += seq - c->next_seq[pub];
    else if (seq < c->next_seq[pub])
        b->disorder++;
    c->next_seq[pub] = seq + 1;
    if (!b->measuring || t < b->t_measure)
        return;
    struct conn *from = &b->conns[b->nsubs + pub];
    b->delivered++;
    hist_record(from->worker == c->worker ? &b->same : &b->cross,
                now > t ? now - t : 0);
}

static void all_ready(struct bench *b);

static void on_line(struct conn *c, char *line, uint64_t now)
{
    struct bench *b = c->b;
    char buf[160];

    if (strncmp(line, "MSG ", 4) == 0) {
        char *room = line + 4, *sp = strchr(room, ' ');
        if (sp != NULL) {
            *sp = '\0';
            if (strcmp(room, b->room) == 0)
                on_delivery(c, sp + 1, now);
        }
    } else if (strncmp(line, "OK MSG", 6) == 0) {
        b->acks++;
    } else if (strncmp(line, "ERR", 3) == 0) {
        b->errs++;
        /* A refused MSG (ERR BUSY, ERR RATE) reaches no member: each of
         * them will see its seq missing, which is not a loss. */
        if (c->publisher && c->st == ST_READY)
            b->refused++;
        if (b->err_first_logged++ < 5)
            fprintf(stderr, "chat-load: conn %d: %s\n", c->idx, line);
    } else if (c->st == ST_HELLO && strncmp(line, "HELLO", 5) == 0) {
        int n = snprintf(buf, sizeof(buf), "NICK load%d\nJOIN %s\n", c->idx,
                         b->room);
        c->st = ST_JOINING;
        conn_queue(c, buf, (size_t)n);
    } else if (c->st == ST_JOINING && strncmp(line, "OK JOIN", 7) == 0) {
        c->st = ST_READY;
        if (++b->ready == b->nconns)
            all_ready(b);
    }
}

static void conn_read(struct conn *c)
{
    uint64_t now;

    for (;;) {
        ssize_t n = recv(c->io.fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
        if (n == 0) {
            fprintf(stderr, "chat-load: conn %d closed by the server\n",
                    c->idx);
            exit(1);
        }
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            die("recv");
        }
        now = now_ns();
        c->rlen += (size_t)n;
        char *p = c->rbuf, *end = c->rbuf + c->rlen, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            *nl = '\0';
            if (nl > p && nl[-1] == '\r')
                nl[-1] = '\0';
            on_line(c, p, now);
            p = nl + 1;
        }
        c->rlen = (size_t)(end - p);
        memmove(c->rbuf, p, c->rlen);
        if (c->rlen == RBUF) {
            fprintf(stderr, "chat-load: a line over %d bytes\n", RBUF);
            exit(1);
        }
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, io);

    (void)loop;
    if (revents & EV_READ)
        conn_read(c);
    if (revents & EV_WRITE)
        conn_flush(c);
}

/* Publishers send what the rate says is due by now. */
static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = container_of(w, struct bench, pace);
    double elapsed = (double)(now_ns() - b->t_start) / 1e9;
    char buf[96];

    (void)loop;
    (void)revents;
    for (int i = 0; i < b->npubs; i++) {
        struct conn *c = &b->conns[b->nsubs + i];
        uint64_t due = (uint64_t)(elapsed * b->rate / b->npubs);
        /* Never more than a second behind: a stalled server is not
         * flooded with everything it missed at once. */
        if (due > c->sent + (uint64_t)(b->rate / b->npubs))
            c->sent = due - (uint64_t)(b->rate / b->npubs);
        while (c->sent < due) {
            int n = snprintf(buf, sizeof(buf), "MSG %s %d %" PRIu64 " %" PRIu64
                             "\n", b->room, i, c->sent, now_ns());
            conn_queue(c, buf, (size_t)n);
            c->sent++;
            b->published++;
        }
    }
}

static void phase_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = container_of(w, struct bench, phase);

    (void)revents;
    if (!b->measuring) {
        b->measuring = true;
        b->t_measure = now_ns();
        ev_timer_set(w, b->secs, 0);
        ev_timer_start(loop, w);
        return;
    }
    b->t_end = now_ns();
    ev_break(loop, EVBREAK_ALL);
}

/* Which worker holds each connection: see the comment at the top. */
static void classify(struct bench *b)
{
    long workers[MAX_WORKERS];
    int nworkers = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    char path[64], link[64], line[512];

    for (int i = 0; i < b->nconns; i++)
        b->conns[i].worker = -1;
    if (b->server_pid <= 0 || d == NULL) {
        if (d != NULL)
            closedir(d);
        return;
    }
    while ((e = readdir(d)) != NULL && nworkers < MAX_WORKERS) {
        long pid = atol(e->d_name), ppid = 0;
        FILE *f;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(line, sizeof(line), f) != NULL) {
            char *rp = strrchr(line, ')');
            if (rp != NULL)
                sscanf(rp + 2, "%*c %ld", &ppid);
        }
        fclose(f);
        if (ppid == b->server_pid)
            workers[nworkers++] = pid;
    }
    closedir(d);
    /* server-side inode of each connection, by the client's port */
    unsigned long *ino = calloc((size_t)b->nconns, sizeof(*ino));
    FILE *f = fopen("/proc/net/tcp", "r");
    if (ino == NULL || f == NULL)
        die("/proc/net/tcp");
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned la, lp, ra, rp;
        unsigned long inode;
        if (sscanf(line, " %*d: %x:%x %x:%x %*x %*s %*s %*s %*d %*d %lu",
                   &la, &lp, &ra, &rp, &inode) != 5)
            continue;
        if (lp != ntohs(b->addr.sin_port))
            continue;
        for (int i = 0; i < b->nconns; i++) {
            struct sockaddr_in sin;
            socklen_t len = sizeof(sin);
            if (getsockname(b->conns[i].io.fd, (struct sockaddr *)&sin,
                            &len) == 0 && ntohs(sin.sin_port) == rp)
                ino[i] = inode;
        }
    }
    fclose(f);
    for (int w = 0; w < nworkers; w++) {
        snprintf(path, sizeof(path), "/proc/%ld/fd", workers[w]);
        if ((d = opendir(path)) == NULL)
            continue;
        while ((e = readdir(d)) != NULL) {
            unsigned long inode;
            ssize_t n = readlinkat(dirfd(d), e->d_name, link,
                                   sizeof(link) - 1);
            if (n <= 0)
                continue;
            link[n] = '\0';
            if (sscanf(link, "socket:[%lu]", &inode) != 1)
                continue;
            for (int i = 0; i < b->nconns; i++)
                if (ino[i] == inode)
                    b->conns[i].worker = w;
        }
        closedir(d);
    }
    free(ino);
}

static void all_ready(struct bench *b)
{
    int per[MAX_WORKERS + 1] = {0}, pubw[MAX_WORKERS + 1] = {0};

    classify(b);
    for (int i = 0; i < b->nconns; i++) {
        int w = b->conns[i].worker < 0 ? MAX_WORKERS : b->conns[i].worker;
        per[w]++;
        pubw[w] += b->conns[i].publisher;
    }
    fprintf(stderr, "chat-load: %d connections joined %s;", b->nconns,
            b->room);
    for (int w = 0; w <= MAX_WORKERS; w++)
        if (per[w] > 0)
            fprintf(stderr, " worker %s%d: %d (%d publishing)",
                    w == MAX_WORKERS ? "?" : "", w == MAX_WORKERS ? 0 : w,
                    per[w], pubw[w]);
    fprintf(stderr, "\n");
    b->t_start = now_ns();
    ev_timer_stop(b->loop, &b->phase);
    ev_timer_init(&b->phase, phase_cb, b->warmup, 0);
    ev_timer_start(b->loop, &b->phase);
    ev_timer_start(b->loop, &b->pace);
}

static void setup_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = container_of(w, struct bench, phase);

    (void)loop;
    (void)revents;
    fprintf(stderr, "chat-load: only %d of %d connections joined within "
            "%.0f s\n", b->ready, b->nconns, SETUP_TIMEOUT_S);
    exit(1);
}

static void sigint_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_open(struct bench *b, struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd == -1)
        die("socket");
    if (connect(fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) == -1)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl_nonblock(fd) == -1)
        die("fcntl");
    c->b = b;
    c->st = ST_HELLO;
    c->next_seq = calloc((size_t)b->npubs, sizeof(uint64_t));
    if (c->next_seq == NULL)
        die("calloc");
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    ev_io_start(b->loop, &c->io);
}

static void report(struct bench *b)
{
    double secs = (double)(b->t_end - b->t_measure) / 1e9;
    double rate = secs > 0 ? (double)b->delivered / secs : 0;
    uint64_t holes = b->refused * (uint64_t)b->nconns;

    /* Holes left by refused messages are accounted, not lost. */
    b->lost = b->lost > holes ? b->lost - holes : 0;

    printf("chat-load: %d subscribers, %d publishers, %.0f msg/s published "
           "for %.1f s\n", b->nsubs, b->npubs, b->rate, secs);
    printf("  delivered %.0f/s; latency same worker p50 %.0f us p99 %.0f "
           "us (%" PRIu64 "), across workers p50 %.0f us p99 %.0f us (%"
           PRIu64 ")\n", rate, hist_quantile_us(&b->same, 0.5),
           hist_quantile_us(&b->same, 0.99), b->same.count,
           hist_quantile_us(&b->cross, 0.5),
           hist_quantile_us(&b->cross, 0.99), b->cross.count);
    printf("  published %" PRIu64 ", acknowledged %" PRIu64 ", refused %"
           PRIu64 ", errors %" PRIu64 ", lost %" PRIu64 ", out of order %"
           PRIu64 "\n", b->published, b->acks, b->refused, b->errs, b->lost,
           b->disorder);
    printf("result delivered_per_s=%.0f same_p50_us=%.1f same_p99_us=%.1f "
           "same_n=%" PRIu64 " cross_p50_us=%.1f cross_p99_us=%.1f cross_n=%"
           PRIu64 " published=%" PRIu64 " refused=%" PRIu64 " errors=%" PRIu64
           " lost=%" PRIu64 " disorder=%" PRIu64 "\n",
           rate, hist_quantile_us(&b->same, 0.5),
           hist_quantile_us(&b->same, 0.99), b->same.count,
           hist_quantile_us(&b->cross, 0.5),
           hist_quantile_us(&b->cross, 0.99), b->cross.count, b->published,
           b->refused, b->errs, b->lost, b->disorder);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chat-load [-h HOST] -p PORT [-s SUBSCRIBERS] "
            "[-P PUBLISHERS] [-r MSG_PER_S] [-d SECONDS] [-w WARMUP] "
            "[-x WEFTD_PID] [-n #ROOM]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct bench b = {
        .nsubs = 50, .npubs = 2, .rate = 1000, .secs = 10, .warmup = 1,
        .room = "#bench",
    };
    const char *host = "127.0.0.1";
    int port = 0, opt;

    while ((opt = getopt(argc, argv, "h:p:s:P:r:d:w:x:n:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': b.nsubs = atoi(optarg); break;
        case 'P': b.npubs = atoi(optarg); break;
        case 'r': b.rate = atof(optarg); break;
        case 'd': b.secs = atof(optarg); break;
        case 'w': b.warmup = atof(optarg); break;
        case 'x': b.server_pid = atol(optarg); break;
        case 'n': b.room = optarg; break;
        default: usage();
        }
    }
    b.nconns = b.nsubs + b.npubs;
    if (port <= 0 || port > 65535 || b.nsubs < 0 || b.npubs < 1 ||
        b.nconns > MAX_CONNS || b.rate <= 0 || b.secs <= 0 || b.warmup < 0)
        usage();
    b.addr.sin_family = AF_INET;
    b.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &b.addr.sin_addr) != 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    b.loop = ev_default_loop(0);
    b.conns = calloc((size_t)b.nconns, sizeof(*b.conns));
    if (b.loop == NULL || b.conns == NULL)
        die("start");
    for (int i = 0; i < b.nconns; i++) {
        b.conns[i].idx = i;
        b.conns[i].publisher = i >= b.nsubs;
        b.conns[i].pub = i >= b.nsubs ? i - b.nsubs : -1;
        conn_open(&b, &b.conns[i]);
    }
    ev_timer_init(&b.pace, pace_cb, PACE_S, PACE_S);
    ev_timer_init(&b.phase, setup_timeout_cb, SETUP_TIMEOUT_S, 0);
    ev_timer_start(b.loop, &b.phase);
    ev_signal_init(&b.sigint, sigint_cb, SIGINT);
    ev_signal_start(b.loop, &b.sigint);
    ev_run(b.loop, 0);
    if (b.t_end == 0)
        b.t_end = now_ns();
    report(&b);
    return 0;
}
