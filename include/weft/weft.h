/*
 * weft: the protocol API.
 *
 * A protocol is a static struct weft_protocol of callbacks. weft calls
 * them from the worker's event loop; a protocol never sees libev, sockets
 * or OpenSSL. A stream connection is a struct weft_conn, the transport the
 * protocol writes to; a datagram listener is a struct weft_udp.
 *
 * Every function here runs in a worker and must be called from that
 * worker's callbacks or timers, except the weft_settings_* functions,
 * which belong to the configure hook and run in the supervisor when the
 * configuration is loaded. Functions that can fail return 0 or -1 (with
 * errno set where it says so); callbacks that report failures receive a
 * static string, NULL meaning success.
 *
 * The manual page weft-protocol(3) walks through a complete protocol.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct or a function here changes incompatibly. */
#define WEFT_ABI_VERSION 4

struct weft_conn;
struct weft_udp;
struct weft_listener;
struct weft_settings;
struct weft_timer;
struct weft_http_handler;
struct weft_reconnector;

/* Why a connection ended, as told to connection_lost. */
enum weft_close_reason {
    WEFT_CLOSE_PEER = 1, /* the peer closed its side */
    WEFT_CLOSE_LOCAL,    /* we closed it (close, abort, worker stopping) */
    WEFT_CLOSE_RESET,    /* reset by the peer or the network */
    WEFT_CLOSE_TIMEOUT,  /* the idle timeout fired */
    WEFT_CLOSE_ERROR     /* an I/O error, or a limit (output queue) hit */
};

/* A static name for a close reason ("peer", "local", ...). */
const char *weft_close_reason_str(enum weft_close_reason why);

/*
 * The callbacks of a protocol. All may be NULL but data_received on a
 * stream listener and datagram_received on a datagram listener.
 */
struct weft_protocol {
    const char *name;

    /*
     * Configuration, in the supervisor, once per listener that runs the
     * protocol, at start, at weftd -t and on reload. s is the listener's
     * group named after the protocol (empty when absent). Read it with
     * weft_settings_*; return what the workers need (handed back by
     * weft_listener_conf), or NULL. Errors reported with
     * weft_settings_error refuse the configuration; keys that were never
     * read are refused as unknown.
     */
    void *(*configure)(struct weft_settings *s);
    /* Free what configure returned. */
    void (*unconfigure)(void *conf);

    /*
     * The factory: in each worker, once per listener, before the first
     * connection. Keep per-worker state with weft_listener_set_data.
     * Returns 0, or -1 to make the worker exit (logged).
     */
    int (*start)(struct weft_listener *l);
    /* The worker is exiting: free per-worker state. */
    void (*stop)(struct weft_listener *l);

    /* A new connection is ready: set per-connection data, greet the peer. */
    void (*connection_made)(struct weft_conn *c);

    /*
     * Bytes arrived. Returns how many of them the protocol consumed; weft
     * keeps the rest and hands them back, followed by the next bytes, on
     * the next call, so a parser never buffers a partial frame itself.
     * data is valid only during the call.
     */
    size_t (*data_received)(struct weft_conn *c, const char *data,
                            size_t len);

    /*
     * The peer closed its sending side (half-close). With this callback
     * the connection stays open for writing until the protocol closes it
     * (weft_conn_close, or weft_conn_shutdown and then the peer closes).
     * Without it, weft closes the connection once the output is flushed.
     */
    void (*eof_received)(struct weft_conn *c);

    /*
     * The output queue, which had passed the high watermark, fell to the
     * low one: resume producing. Called once per crossing.
     */
    void (*writable)(struct weft_conn *c);

    /* The connection is gone; free per-connection data here. */
    void (*connection_lost)(struct weft_conn *c, enum weft_close_reason why);

    /* A datagram arrived on a UDP listener from the address `from`. */
    void (*datagram_received)(struct weft_udp *u, const char *data,
                              size_t len, const struct sockaddr *from,
                              socklen_t fromlen);

    /*
     * The worker is draining (a reload replaced it): it accepts nothing
     * more and exits when its last connection closes, or when
     * shutdown_timeout closes the rest. Called once for each open
     * connection: finish the exchange in progress and close (HTTP answers
     * the next request with "Connection: close"). NULL: connections
     * simply run to their end.
     */
    void (*drain)(struct weft_conn *c);

    /*
     * 1: the client speaks first (HTTP). weftd then accepts a connection
     * only once its first bytes have arrived (TCP_DEFER_ACCEPT), so a
     * worker wakes once to accept and read it, and a connection that
     * never sends costs no worker anything. A listener's defer_accept
     * overrides this.
     */
    int client_first;
};

/* ---- Transport: writing ------------------------------------------------ */

/*
 * Queue len bytes (copied) for the peer. Returns 0 when the caller may go
 * on producing, 1 when the queue passed the high watermark (stop producing
 * until writable is called), -1 when the connection is closing or failed
 * (the bytes are dropped; connection_lost follows). A queue that passes
 * the hard limit aborts the connection (WEFT_CLOSE_ERROR).
 */
int weft_conn_write(struct weft_conn *c, const void *data, size_t len);

/* The same for several buffers, sent in order in one system call. */
int weft_conn_writev(struct weft_conn *c, const struct iovec *iov, int iovcnt);

/*
 * Queue len bytes of the open file fd from offset off, sent with
 * sendfile(2) after whatever is queued before them. weft keeps its own
 * descriptor when it has to wait, so the caller may close fd at once.
 * Returns as weft_conn_write.
 */
int weft_conn_sendfile(struct weft_conn *c, int fd, off_t off, size_t len);

/* Close once everything queued has been sent. */
void weft_conn_close(struct weft_conn *c);

/* Close now, dropping whatever is queued. */
void weft_conn_abort(struct weft_conn *c);

/*
 * Half-close: send FIN once everything queued has been sent, keep
 * reading. The connection ends when the peer closes its side too.
 */
void weft_conn_shutdown(struct weft_conn *c);

/* Bytes queued and not yet accepted by the kernel. */
size_t weft_conn_queued(const struct weft_conn *c);

/*
 * Output queue marks, in bytes, for this connection (the listener's
 * write_high, write_low and write_max by default): stop producing above
 * high, resume at low, abort above max (0: no hard limit).
 */
void weft_conn_set_watermarks(struct weft_conn *c, size_t high, size_t low,
                              size_t max);

/* ---- Transport: reading, addresses, time ------------------------------- */

/*
 * Stop and restart delivering data_received (backpressure on the peer).
 * resume also offers again, soon, the input data_received left
 * unconsumed: call it when the protocol can take more of what it had.
 */
void weft_conn_pause(struct weft_conn *c);
void weft_conn_resume(struct weft_conn *c);

/*
 * Close the connection with WEFT_CLOSE_TIMEOUT after ms milliseconds
 * without a byte read or written (0: never, the default unless the
 * listener sets idle_timeout).
 */
void weft_conn_set_idle_timeout(struct weft_conn *c, unsigned ms);

/* The peer's and our own address. Return 0, or -1 with errno set. */
int weft_conn_peer(const struct weft_conn *c, struct sockaddr_storage *ss,
                   socklen_t *len);
int weft_conn_local(const struct weft_conn *c, struct sockaddr_storage *ss,
                    socklen_t *len);

/* Per-connection data of the protocol; NULL until set. */
void *weft_conn_data(const struct weft_conn *c);
void weft_conn_set_data(struct weft_conn *c, void *data);

/* The listener that accepted c; NULL for an outgoing connection. */
struct weft_listener *weft_conn_listener(const struct weft_conn *c);

/* ---- Listeners (the factory side) ------------------------------------- */

/* What the protocol's configure returned for this listener. */
void *weft_listener_conf(const struct weft_listener *l);
/* Per-worker state of the protocol for this listener. */
void *weft_listener_data(const struct weft_listener *l);
void weft_listener_set_data(struct weft_listener *l, void *data);
/* The listener's name from the configuration. */
const char *weft_listener_name(const struct weft_listener *l);
/* The listener's idle_timeout in ms (0: none), e.g. for a relayed side. */
unsigned weft_listener_idle_timeout(const struct weft_listener *l);
/* The slot of the worker running this code, 0..workers-1. */
int weft_worker_slot(void);
/* 1 once this worker is draining (see drain), else 0. */
int weft_worker_draining(void);

/* What a protocol counts in weftd's stats, beside what weft counts. */
enum weft_counter {
    WEFT_COUNT_REQUESTS, /* requests or messages handled */
    WEFT_COUNT_ERRORS,   /* protocol errors (bad input from a peer) */
    WEFT_COUNT_GAPS      /* messages a slow subscriber missed (gap notices) */
};

/*
 * Add n to a counter of listener l (NULL: the worker's outgoing
 * connections). Cheap: no system call, no lock.
 */
void weft_count(struct weft_listener *l, enum weft_counter what,
                unsigned long n);

/*
 * Count one answered request of listener l (NULL: outgoing): adds 1 to
 * requests, 1 to the counter of its status class (1xx..5xx; other
 * values count only as a request) and records usec, the time from the
 * request's first byte to its answer being queued, in the latency
 * histogram. As cheap as weft_count.
 */
void weft_count_response(struct weft_listener *l, int status, uint64_t usec);

/* ---- Logging ----------------------------------------------------------- */

enum weft_log_level {
    WEFT_LOG_DEBUG,
    WEFT_LOG_INFO,
    WEFT_LOG_WARN,
    WEFT_LOG_ERROR
};

/*
 * One line in weftd's log, with the time, level, pid and worker, as
 * weftd's own lines. Put the protocol's name first: "proxy: ...".
 */
void weft_log(enum weft_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- UDP --------------------------------------------------------------- */

/* Send one datagram to `to`. Returns 0, or -1 with errno set. */
int weft_udp_send(struct weft_udp *u, const void *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen);

/* The listener a datagram arrived on. */
struct weft_listener *weft_udp_listener(const struct weft_udp *u);

/* ---- Timers ------------------------------------------------------------ */

typedef void (*weft_timer_fn)(struct weft_timer *t, void *arg);

/*
 * Call fn(t, arg) once after ms milliseconds; the timer is freed after
 * the call. Returns the timer, or NULL when memory is short.
 */
struct weft_timer *weft_timer_once(unsigned ms, weft_timer_fn fn, void *arg);

/* Call fn(t, arg) every ms milliseconds (ms > 0) until cancelled. */
struct weft_timer *weft_timer_repeat(unsigned ms, weft_timer_fn fn,
                                     void *arg);

/*
 * Stop and free t. Allowed from inside its own callback; for a one-shot
 * timer, only before or during its call.
 */
void weft_timer_cancel(struct weft_timer *t);

/* ---- Outgoing connections ---------------------------------------------- */

/*
 * Told why a connection attempt failed ("connection refused", "timed
 * out", "no such host", ...); arg is the one given to weft_connect.
 */
typedef void (*weft_connect_failed_fn)(void *arg, const char *err);

/*
 * Connect to "HOST:PORT" ("[IPv6]:PORT" for an IPv6 literal; HOST may be a
 * name, resolved off the event loop) within timeout_ms (0: 30 s). On
 * success, proto runs on the new connection, whose data is arg when
 * connection_made is called. On failure, failed(arg, reason) is called
 * instead, never from inside weft_connect; an attempt still pending when
 * the worker exits fails with "worker stopping". Exactly one of the two
 * follows a call that returned 0. Returns 0, or -1 when the address
 * cannot be parsed, memory is short or the worker is exiting (nothing is
 * called then).
 */
int weft_connect(const char *hostport, unsigned timeout_ms,
                 const struct weft_protocol *proto, void *arg,
                 weft_connect_failed_fn failed);

/*
 * TLS for an outgoing connection. The peer's certificate is verified
 * against ca_file (PEM), or the system's store when it is NULL, and must
 * name server_name (a host name, or an IP address), or the HOST of
 * hostport when it is NULL; a host name is also sent as SNI.
 */
struct weft_tls_client {
    const char *ca_file;
    const char *server_name;
    int no_verify; /* 1: accept any certificate (tests only) */
};

/*
 * weft_connect over TLS (1.2 or 1.3): connection_made comes once the
 * handshake is done and the certificate verified, within the same
 * timeout; a failed handshake or verification is reported to failed with
 * OpenSSL's reason ("certificate verify failed: ..."). tls is copied.
 */
int weft_connect_tls(const char *hostport, unsigned timeout_ms,
                     const struct weft_tls_client *tls,
                     const struct weft_protocol *proto, void *arg,
                     weft_connect_failed_fn failed);

/*
 * Check that hostport has the shape weft_connect takes ("HOST:PORT" or
 * "[IPv6]:PORT", port 1..65535), e.g. in a configure hook. Returns NULL,
 * or a static reason. Names are not resolved.
 */
const char *weft_hostport_check(const char *hostport);

/*
 * Keep a connection to hostport up, as Twisted's ReconnectingClientFactory
 * does: after a failed attempt or a lost connection, wait and try again,
 * the wait growing from initial_ms by factor 2 up to max_ms, with +-10%
 * jitter; a successful connection resets the wait. proto and arg are as
 * for weft_connect.
 */
struct weft_reconnect_opts {
    unsigned timeout_ms; /* per attempt; 0: 30 s */
    unsigned initial_ms; /* 0: 500 ms */
    unsigned max_ms;     /* 0: 60 s */
    const struct weft_tls_client *tls; /* NULL: plain TCP; else copied */
};

struct weft_reconnector *
weft_reconnect_start(const char *hostport,
                     const struct weft_reconnect_opts *opts,
                     const struct weft_protocol *proto, void *arg);

/* Stop reconnecting and close the current connection, if any. */
void weft_reconnect_stop(struct weft_reconnector *r);

/* ---- Configuration (configure hook, supervisor only) ------------------- */

/*
 * Read key of the protocol's settings group. Each returns 0 with the value
 * in *out, 1 when the key is absent (*out = def), or -1 after reporting a
 * wrong type or range with the key's FILE:LINE (*out = def).
 */
int weft_settings_int(struct weft_settings *s, const char *key,
                      long long min, long long max, long long def,
                      long long *out);
int weft_settings_bool(struct weft_settings *s, const char *key, int def,
                       int *out);
int weft_settings_string(struct weft_settings *s, const char *key,
                         const char *def, const char **out);

/*
 * A list or array of strings: returns the count (0 when absent), or -1
 * after reporting an entry that is not a string. Entry i with
 * weft_settings_list_item. Strings stay valid until configure returns:
 * copy what the workers need.
 */
int weft_settings_list(struct weft_settings *s, const char *key);
const char *weft_settings_list_item(struct weft_settings *s, const char *key,
                                    int i);

/*
 * A list of groups, such as routes = ( { ... }, { ... } ): the count (0
 * when absent, -1 after reporting a key that is not a list), and the
 * settings of group i, read with the same functions (its keys, too, must
 * all be read). Valid until configure returns; NULL for a bad entry
 * (reported).
 */
int weft_settings_count(struct weft_settings *s, const char *key);
struct weft_settings *weft_settings_item(struct weft_settings *s,
                                         const char *key, int i);

/*
 * Refuse the configuration: "FILE:LINE: listener NAME: protocol.KEY: ..."
 * at key's line (the group's line when key is NULL or absent).
 */
void weft_settings_error(struct weft_settings *s, const char *key,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Modules ----------------------------------------------------------- */

/*
 * A module (a shared object named in `modules`) exports one symbol,
 * WEFT_MODULE_SYMBOL, of this type. weftd refuses a module whose abi is
 * not its own WEFT_ABI_VERSION.
 */
struct weft_module {
    unsigned abi; /* WEFT_ABI_VERSION of the header it was built with */
    const char *name;
    const struct weft_protocol *const *protocols; /* NULL-terminated */
    /* Handlers for the http protocol (weft/http.h); NULL-terminated, or
     * NULL for none. A module gives protocols, handlers or both. */
    const struct weft_http_handler *const *http_handlers;
};

#define WEFT_MODULE_SYMBOL "weft_module"

#ifdef __cplusplus
}
#endif

#endif
