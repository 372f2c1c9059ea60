#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/worker.h"

/* Datagrams per readiness event, so TCP connections still get their turn. */
#define UDP_BATCH 64

/* Read queued datagrams into the worker's buffer and hand each over. */
void udp_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct wlistener *ln = container_of(io, struct wlistener, io);
    struct worker *w = ln->w;
    const struct weft_protocol *p = ln->conf->proto;

    (void)loop;
    (void)revents;
    for (int i = 0; i < UDP_BATCH; i++) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(io->fd, w->rbuf, w->rbuf_size, 0,
                             (struct sockaddr *)&from, &fromlen);
        if (n == -1) {
            if (errno == EAGAIN)
                return;
            /* ICMP errors of earlier sends surface here; they are no
             * reason to stop reading. */
            if (errno != EINTR && errno != ECONNREFUSED)
                log_debug("%s: listener %s: recvfrom: %s", __func__,
                          ln->conf->name, strerror(errno));
            continue;
        }
        p->datagram_received(&ln->udp, w->rbuf, (size_t)n,
                             (const struct sockaddr *)&from, fromlen);
    }
}

int weft_udp_send(struct weft_udp *u, const void *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen)
{
    ssize_t n = sendto(u->fd, data, len, MSG_NOSIGNAL, to, tolen);

    return n == -1 ? -1 : 0;
}
