/*
 * TLS beneath a stream connection (worker/tls.c), for worker/conn.c.
 */
#ifndef WEFT_WORKER_TLS_H
#define WEFT_WORKER_TLS_H

#include <stdbool.h>
#include <sys/types.h>

struct weft_conn;
struct tls_conf;

struct tls_keys;

/*
 * A listener's contexts, once per worker: SNI and ALPN callbacks, and
 * session tickets with the shared keys (NULL: OpenSSL's own, per worker).
 */
void tls_listener_setup(const struct tls_conf *t, struct tls_keys *keys);

/* Server side on c's socket, handshake to come. 0, or -1 (no memory). */
int tls_conn_start(struct weft_conn *c, const struct tls_conf *t);

/*
 * Client side on c's socket (connected): verify against ca_file (NULL:
 * the system's store) unless no_verify, for name (SNI and certificate
 * check). 0, or -1 with a static reason in *err.
 */
int tls_client_start(struct weft_conn *c, const char *ca_file,
                     bool no_verify, const char *name, const char **err);

/* Free the worker's client contexts (worker exit). */
void tls_client_free_all(void);

/* Why c's handshake failed (static). */
const char *tls_error(const struct weft_conn *c);

/* Send close_notify when the session is sound, then free (c->tls NULL). */
void tls_conn_free(struct weft_conn *c);

/*
 * Gather c's small writes from now on (one connection at a time) until
 * tls_uncork, which sends them at once; -1 for a socket error. Bytes the
 * socket refuses stay with c: tls_unsent is then true, and tls_uncork on
 * writable sends them.
 */
void tls_cork(struct weft_conn *c);
int tls_uncork(struct weft_conn *c);
bool tls_unsent(const struct weft_conn *c);

/* The poll says c's socket is readable: reads may call the kernel. */
void tls_readable(struct weft_conn *c);

/* Make c's close_notify (once, after a good handshake), corked or not. */
void tls_close_notify(struct weft_conn *c);

/* One handshake step: 1 done, 0 waiting (see tls_want), -1 failed
 * (counted). */
int tls_handshake(struct weft_conn *c);

/* EV_READ or EV_WRITE the handshake waits for. */
int tls_want(const struct weft_conn *c);

/* What the last read or write waits for, when it is not the obvious
 * (a read that must write, a write that must read); 0 otherwise. */
int tls_read_want(const struct weft_conn *c);
int tls_write_want(const struct weft_conn *c);

bool tls_handshaken(const struct weft_conn *c);

/* As read(2): bytes, 0 at the end, -1 with errno (EAGAIN: see tls_want). */
ssize_t tls_read(struct weft_conn *c, void *buf, size_t len);

/* Decrypted bytes wait in OpenSSL: read again before polling. */
bool tls_pending(const struct weft_conn *c);

/*
 * One TLS write of the head of c's queue. Returns the bytes of the queue
 * written (to consume), 0 when waiting (see tls_want), -1 with errno.
 */
ssize_t tls_write_queue(struct weft_conn *c);

/* worker/conn.c: the handshake of c failed or timed out: drop it. */
void conn_handshake_failed(struct weft_conn *c);

#endif
