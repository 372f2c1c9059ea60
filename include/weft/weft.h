/*
 * weft: the protocol API.
 *
 * A protocol is a static struct of callbacks. weft calls them from the
 * worker's event loop; a protocol never sees libev or sockets. A stream
 * connection is a struct weft_conn, the transport the protocol writes to;
 * a datagram listener is a struct weft_udp.
 *
 * All functions here must be called from the worker that owns the object,
 * from inside a callback or a timer of that worker.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_conn;
struct weft_udp;

/* Why a connection ended, as told to connection_lost. */
enum weft_close_reason {
    WEFT_CLOSE_PEER = 1,    /* the peer closed its side */
    WEFT_CLOSE_LOCAL,       /* we closed it (close, abort, shutdown) */
    WEFT_CLOSE_RESET,       /* reset by the peer or the network */
    WEFT_CLOSE_TIMEOUT,     /* a timeout fired */
    WEFT_CLOSE_ERROR        /* an I/O error or a protocol limit */
};

/* A static name for a close reason ("peer", "local", ...). */
const char *weft_close_reason_str(enum weft_close_reason why);

/*
 * The callbacks of a protocol. Any may be NULL except data_received for a
 * stream protocol and datagram_received for a datagram one; a protocol that
 * leaves one of those NULL cannot be used on that kind of listener.
 */
struct weft_protocol {
    const char *name;

    /* A new connection is ready: set per-connection data, greet the peer. */
    void (*connection_made)(struct weft_conn *c);

    /*
     * Bytes arrived. Returns how many of them the protocol consumed; weft
     * keeps the rest and hands them back, followed by the next bytes, on
     * the next call, so a parser never buffers a partial frame itself.
     * The data pointer is valid only during the call.
     */
    size_t (*data_received)(struct weft_conn *c, const char *data,
                            size_t len);

    /*
     * The output queue, which had crossed the high watermark, fell below
     * the low one: resume producing.
     */
    void (*writable)(struct weft_conn *c);

    /* The connection is gone; free per-connection data here. */
    void (*connection_lost)(struct weft_conn *c, enum weft_close_reason why);

    /* A datagram arrived on a UDP listener from the address `from`. */
    void (*datagram_received)(struct weft_udp *u, const char *data,
                              size_t len, const struct sockaddr *from,
                              socklen_t fromlen);
};

/*
 * Queue len bytes (copied) for the peer. Returns 0 when the caller may go
 * on producing, 1 when the queue passed the high watermark (stop producing
 * until writable is called), -1 when the connection is closing or failed
 * (the bytes are dropped; connection_lost follows).
 */
int weft_conn_write(struct weft_conn *c, const void *data, size_t len);

/* Close once everything queued has been sent. */
void weft_conn_close(struct weft_conn *c);

/* Close now, dropping whatever is queued. */
void weft_conn_abort(struct weft_conn *c);

/* Stop and restart delivering data_received (backpressure on a peer). */
void weft_conn_pause(struct weft_conn *c);
void weft_conn_resume(struct weft_conn *c);

/* Bytes queued and not yet accepted by the kernel. */
size_t weft_conn_queued(const struct weft_conn *c);

/* Per-connection data of the protocol; NULL until set. */
void *weft_conn_data(const struct weft_conn *c);
void weft_conn_set_data(struct weft_conn *c, void *data);

/* Send one datagram to `to`. Returns 0, or -1 with errno set. */
int weft_udp_send(struct weft_udp *u, const void *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen);

#ifdef __cplusplus
}
#endif

#endif
