#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/worker.h"

/* Datagrams taken per recvmmsg: one syscall instead of UDP_BATCH. */
#define UDP_BATCH 16
/* Rounds per readiness event, so TCP connections still get their turn. */
#define UDP_ROUNDS 4
/* Room for the largest UDP payload, so nothing is ever truncated. */
#define UDP_MAX 65536

/*
 * The receive area of a worker: UDP_BATCH slots of UDP_MAX bytes. Pages of
 * a slot become resident only as far as datagrams fill them.
 */
struct udp_batch {
    struct mmsghdr msg[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage from[UDP_BATCH];
    char *data;
};

struct udp_batch *udp_batch_new(void)
{
    struct udp_batch *b = calloc(1, sizeof(*b));

    if (b == NULL || (b->data = malloc((size_t)UDP_BATCH * UDP_MAX)) == NULL) {
        free(b);
        return NULL;
    }
    for (int i = 0; i < UDP_BATCH; i++) {
        b->iov[i].iov_base = b->data + (size_t)i * UDP_MAX;
        b->iov[i].iov_len = UDP_MAX;
        b->msg[i].msg_hdr.msg_iov = &b->iov[i];
        b->msg[i].msg_hdr.msg_iovlen = 1;
        b->msg[i].msg_hdr.msg_name = &b->from[i];
    }
    return b;
}

void udp_batch_free(struct udp_batch *b)
{
    if (b != NULL)
        free(b->data);
    free(b);
}

/* Take up to UDP_BATCH datagrams in one call; the count, or -1 (errno). */
static int udp_recv(int fd, struct udp_batch *b)
{
    for (int i = 0; i < UDP_BATCH; i++)
        b->msg[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
    return recvmmsg(fd, b->msg, UDP_BATCH, 0, NULL);
}

/* Read queued datagrams in batches and hand each to the protocol. */
void udp_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct weft_listener *ln = container_of(io, struct weft_listener, io);
    struct udp_batch *b = ln->w->udp;
    const struct weft_protocol *p = ln->conf->proto;

    (void)loop;
    (void)revents;
    for (int round = 0; round < UDP_ROUNDS; round++) {
        int n = udp_recv(io->fd, b);
        if (n == -1) {
            if (errno == EAGAIN)
                return;
            /* ICMP errors of earlier sends surface here; they are no
             * reason to stop reading. */
            if (errno != EINTR && errno != ECONNREFUSED)
                log_debug("%s: listener %s: recvmmsg: %s", __func__,
                          ln->conf->name, strerror(errno));
            continue;
        }
        stats_add(ln->stats, STAT_datagrams_in, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            stats_add(ln->stats, STAT_bytes_in, b->msg[i].msg_len);
            p->datagram_received(&ln->udp, b->iov[i].iov_base,
                                 b->msg[i].msg_len,
                                 (const struct sockaddr *)&b->from[i],
                                 b->msg[i].msg_hdr.msg_namelen);
        }
        if (n < UDP_BATCH)
            return; /* the queue is empty: skip the EAGAIN call */
    }
}

int weft_udp_send(struct weft_udp *u, const void *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen)
{
    ssize_t n = sendto(u->fd, data, len, MSG_NOSIGNAL, to, tolen);

    if (n == -1)
        return -1;
    stats_add(u->ln->stats, STAT_datagrams_out, 1);
    stats_add(u->ln->stats, STAT_bytes_out, (uint64_t)n);
    return 0;
}

struct weft_listener *weft_udp_listener(const struct weft_udp *u)
{
    return u->ln;
}
