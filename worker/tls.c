/*
 * TLS beneath a stream connection (server side): the handshake, reading
 * and writing through OpenSSL on the connection's own socket, inside the
 * worker's libev loop. worker/conn.c calls in here wherever it would read,
 * write or close the socket of a connection that has c->tls; a protocol
 * never knows.
 *
 * Non-blocking rules. SSL_do_handshake, SSL_read and SSL_write each
 * report what they wait for: SSL_ERROR_WANT_READ or _WANT_WRITE, either
 * of them for any call (a read may need to write, as in a key update, and
 * a write may need to read). tls->want records it and conn_settle watches
 * for it. A write that waits is retried with at least the same bytes: the
 * head of the output queue only grows until it is written, and
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the copy move.
 *
 * Records: queued buffers are gathered into one staging buffer of up to
 * TLS_RECORD bytes, so many small answers (pipelined HTTP) go out as one
 * record and one system call; a file segment is read into it with pread.
 *
 * The socket beneath: OpenSSL reads and writes through a BIO of our own
 * rather than its socket BIO, for two savings per connection. Corked
 * (during each callback of the connection, until it settles, see
 * conn.c), small writes are gathered and sent together: the end of the
 * handshake, the tickets, the answer to a request that came with the
 * client's Finished and a close_notify leave in one segment where they
 * took five; an answer and the close_notify after it, in one.
 * And a read that came back short means the socket is empty: the next
 * read returns "retry" without a system call until the poll says the
 * socket is readable again. Where the kernel can encrypt (kTLS),
 * OpenSSL's own socket BIO stays, since kTLS and SSL_sendfile need it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "shared/buf.h"
#include "shared/ktls.h"
#include "shared/log.h"
#include "shared/tls.h"
#include "shared/tls_keys.h"
#include "shared/util.h"
#include "worker/conn.h"
#include "worker/tls.h"

#define TLS_RECORD 16384
#define TLS_IOV_MAX 64
#define TLS_CORK 4096 /* writes gathered while corked; larger go at once */

struct tls_conn {
    SSL *ssl;
    const char *err;     /* why the handshake failed (static), or NULL */
    int want;            /* EV_READ / EV_WRITE the handshake waits for */
    int read_want;       /* what the last SSL_read waits for (0: none) */
    int write_want;      /* what the last SSL_write waits for */
    bool handshaken;
    bool ktls_send;      /* the kernel encrypts what we send: sendfile */
    bool failed;         /* no close_notify after a fatal error */
    bool notified;       /* close_notify made */
    bool own_bio;        /* tls_bio beneath, not OpenSSL's socket BIO */
    bool drained;        /* the socket was empty at the last read */
    bool rd_eof;         /* the last read met the peer's FIN */
    int fd;
    struct bytes unsent; /* bytes OpenSSL gave us that the socket refused */
    ev_timer timer;      /* the handshake's deadline */
    struct weft_conn *c;
};

/* The staging buffer of every connection of the worker (one at a time). */
static unsigned char stage[TLS_RECORD];

/* The cork of the worker: one connection at a time gathers its writes. */
static unsigned char cork[TLS_CORK];
static size_t cork_len;
static struct tls_conn *cork_owner;
static BIO_METHOD *bio_method;

static void tls_handshake_timeout_cb(struct ev_loop *loop, ev_timer *t,
                                     int revents);

/* ---- the socket beneath ------------------------------------------------ */

/*
 * One writev of what waits (the unsent bytes, then the cork when tc holds
 * it) and then data. The cork is emptied either way: what the socket does
 * not take of it joins the unsent bytes. Returns the bytes of data sent
 * (0 when none), or -1 with errno.
 */
static ssize_t bio_send(struct tls_conn *tc, const void *data, size_t len)
{
    struct iovec iov[3];
    size_t corked = cork_owner == tc ? cork_len : 0, done;
    int n = 0;
    ssize_t w;

    if (tc->unsent.len > 0)
        iov[n++] = (struct iovec){ tc->unsent.data, tc->unsent.len };
    if (corked > 0)
        iov[n++] = (struct iovec){ cork, corked };
    if (len > 0)
        iov[n++] = (struct iovec){ (void *)data, len };
    if (n == 0)
        return 0;
    do
        w = n == 1 ? write(tc->fd, iov[0].iov_base, iov[0].iov_len)
                   : writev(tc->fd, iov, n);
    while (w == -1 && errno == EINTR);
    if (corked > 0)
        cork_len = 0;
    if (w == -1 && errno != EAGAIN)
        return -1; /* the connection is lost: so is what waited */
    done = w > 0 ? (size_t)w : 0;
    size_t gone = WEFT_MIN(done, tc->unsent.len);
    bytes_consume(&tc->unsent, gone);
    done -= gone;
    gone = WEFT_MIN(done, corked);
    done -= gone;
    if (corked > 0) {
        if (bytes_append(&tc->unsent, cork + gone, corked - gone) == -1) {
            errno = ENOMEM;
            return -1;
        }
    }
    if (w == -1) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)done;
}

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *tc = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (cork_owner == tc && tc->unsent.len == 0 &&
        cork_len + (size_t)len <= sizeof(cork)) {
        memcpy(cork + cork_len, data, (size_t)len);
        cork_len += (size_t)len;
        return len;
    }
    n = bio_send(tc, data, (size_t)len);
    if (n > 0)
        return (int)n;
    if (n == 0 || errno == EAGAIN) {
        BIO_set_retry_write(b);
        errno = EAGAIN;
    }
    return -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    struct tls_conn *tc = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (tc->drained) {
        BIO_set_retry_read(b);
        errno = EAGAIN;
        return -1;
    }
    do
        n = read(tc->fd, buf, (size_t)len);
    while (n == -1 && errno == EINTR);
    if (n == -1 && errno == EAGAIN) {
        tc->drained = true;
        BIO_set_retry_read(b);
        return -1;
    }
    if (n > 0 && n < len)
        tc->drained = true;
    if (n == 0)
        tc->rd_eof = true;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_conn *tc = BIO_get_data(b);

    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        /* Corked, the flush comes when the callback ends. */
        if (cork_owner == tc || tc->unsent.len == 0)
            return 1;
        if (bio_send(tc, NULL, 0) == -1 && errno != EAGAIN)
            return 0;
        if (tc->unsent.len == 0)
            return 1;
        BIO_set_retry_write(b);
        return 0;
    case BIO_CTRL_EOF:
        return tc->rd_eof;
    case BIO_CTRL_WPENDING:
        return (long)(tc->unsent.len + (cork_owner == tc ? cork_len : 0));
    case BIO_CTRL_DUP:
        return 1;
    case BIO_C_GET_FD:
        if (ptr != NULL)
            *(int *)ptr = tc->fd;
        return tc->fd;
    default:
        return 0;
    }
}

/* The BIO for tc: ours, or OpenSSL's socket BIO where kTLS may run. */
static int bio_attach(struct tls_conn *tc, int fd)
{
    BIO *b;

    tc->fd = fd;
    if (ktls_available())
        return SSL_set_fd(tc->ssl, fd) == 1 ? 0 : -1;
    if (bio_method == NULL) {
        bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                  "weft socket");
        if (bio_method == NULL ||
            BIO_meth_set_write(bio_method, bio_write) != 1 ||
            BIO_meth_set_read(bio_method, bio_read) != 1 ||
            BIO_meth_set_ctrl(bio_method, bio_ctrl) != 1) {
            BIO_meth_free(bio_method);
            bio_method = NULL;
            return -1;
        }
    }
    if ((b = BIO_new(bio_method)) == NULL)
        return -1;
    BIO_set_data(b, tc);
    BIO_set_init(b, 1);
    SSL_set_bio(tc->ssl, b, b);
    tc->own_bio = true;
    return 0;
}

void tls_cork(struct weft_conn *c)
{
    if (c->tls != NULL && c->tls->own_bio && cork_owner == NULL) {
        cork_owner = c->tls;
        cork_len = 0;
    }
}

int tls_uncork(struct weft_conn *c)
{
    struct tls_conn *tc = c->tls;

    if (tc == NULL || !tc->own_bio)
        return 0;
    if (cork_owner == tc || tc->unsent.len > 0) {
        ssize_t n = bio_send(tc, NULL, 0);
        if (cork_owner == tc)
            cork_owner = NULL;
        if (n == -1 && errno != EAGAIN)
            return -1;
    }
    return 0;
}

bool tls_unsent(const struct weft_conn *c)
{
    return c->tls != NULL && c->tls->unsent.len > 0;
}

void tls_readable(struct weft_conn *c)
{
    if (c->tls != NULL)
        c->tls->drained = false;
}

void tls_close_notify(struct weft_conn *c)
{
    struct tls_conn *tc = c->tls;

    if (tc == NULL || tc->notified || !tc->handshaken || tc->failed)
        return;
    tc->notified = true;
    SSL_shutdown(tc->ssl);
    ERR_clear_error();
}

/* ---- listener set-up ---------------------------------------------------- */

/* The ticket keys the supervisor shares and rotates. */
static struct tls_keys *ticket_keys;

/*
 * Session tickets with the shared keys: encrypt with the current one;
 * decrypt with the current (1) or the previous (2: OpenSSL then issues a
 * fresh ticket); an unknown name (0) means a full handshake.
 */
static int tls_ticket_cb(SSL *ssl, unsigned char *key_name,
                         unsigned char *iv, EVP_CIPHER_CTX *ectx,
                         EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ticket_key keys[2];
    const struct tls_ticket_key *k = &keys[0];
    OSSL_PARAM params[3];
    int rc = 1;

    (void)ssl;
    tls_keys_read(ticket_keys, &keys[0], &keys[1]);
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)
            rc = -1;
        else
            memcpy(key_name, k->name, sizeof(k->name));
    } else if (memcmp(key_name, keys[0].name, sizeof(k->name)) == 0) {
        rc = 1;
    } else if (memcmp(key_name, keys[1].name, sizeof(k->name)) == 0) {
        k = &keys[1];
        rc = 2;
    } else {
        rc = 0;
    }
    if (rc > 0) {
        params[0] = OSSL_PARAM_construct_octet_string(
            OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                     (char *)"SHA256", 0);
        params[2] = OSSL_PARAM_construct_end();
        if ((enc ? EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes,
                                      iv)
                 : EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes,
                                      iv)) != 1 ||
            EVP_MAC_CTX_set_params(hctx, params) != 1)
            rc = -1;
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

/* SNI: switch to the certificate of the entry naming the host. */
static int tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_conf *t = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct tls_sni *e;

    (void)alert;
    if (host == NULL || (e = tls_sni_find(t, host)) == NULL)
        return SSL_TLSEXT_ERR_OK; /* the listener's own certificate */
    SSL_set_SSL_CTX(ssl, e->ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the first of our protocols the client offers. */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    const struct tls_conf *t = arg;
    unsigned char *sel;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, t->alpn, (unsigned)t->alpn_len,
                              in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void tls_ctx_setup(SSL_CTX *ctx, const struct tls_conf *t)
{
    /* Tickets only: a session cache of one worker resumes nowhere else. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (ticket_keys != NULL)
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    if (t->nsni > 0) {
        SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, (void *)t);
    }
    if (t->alpn != NULL)
        SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, (void *)t);
}

void tls_listener_setup(const struct tls_conf *t, struct tls_keys *keys)
{
    ticket_keys = keys;
    tls_ctx_setup(t->ctx, t);
    /* After SSL_set_SSL_CTX the ALPN callback of the new context runs. */
    for (size_t i = 0; i < t->nsni; i++)
        tls_ctx_setup(t->sni[i].ctx, t);
}

const struct tls_sni *tls_sni_find(const struct tls_conf *t, const char *host)
{
    const char *dot = strchr(host, '.');

    for (size_t i = 0; i < t->nsni; i++)
        for (size_t k = 0; k < t->sni[i].nnames; k++) {
            const char *n = t->sni[i].names[k];
            if (strcasecmp(n, host) == 0)
                return &t->sni[i];
            if (n[0] == '*' && dot != NULL && dot != host &&
                strcasecmp(n + 1, dot) == 0)
                return &t->sni[i];
        }
    return NULL;
}

/* ---- one connection ---------------------------------------------------- */

/* name: an IP literal is checked as an address and sent as no SNI. */
static int client_name(SSL *ssl, const char *name)
{
    unsigned char buf[16];

    if (inet_pton(AF_INET, name, buf) == 1 ||
        inet_pton(AF_INET6, name, buf) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
                   ? 0
                   : -1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 &&
                   SSL_set1_host(ssl, name) == 1
               ? 0
               : -1;
}

/* A TLS state for c under ctx, its BIO attached; NULL when out of memory
 * (or when name, if given, is no server name). */
static struct tls_conn *tls_conn_new(struct weft_conn *c, SSL_CTX *ctx,
                                     const char *name)
{
    struct tls_conn *tc = calloc(1, sizeof(*tc));

    if (tc == NULL || (tc->ssl = SSL_new(ctx)) == NULL ||
        bio_attach(tc, c->io.fd) == -1 ||
        (name != NULL && client_name(tc->ssl, name) == -1)) {
        if (tc != NULL)
            SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        return NULL;
    }
    tc->c = c;
    return tc;
}

int tls_conn_start(struct weft_conn *c, const struct tls_conf *t)
{
    struct tls_conn *tc = tls_conn_new(c, t->ctx, NULL);

    if (tc == NULL)
        return -1;
    SSL_set_accept_state(tc->ssl);
    tc->want = EV_READ;
    ev_timer_init(&tc->timer, tls_handshake_timeout_cb,
                  t->handshake_timeout / 1000.0, 0);
    ev_timer_start(worker_self->loop, &tc->timer);
    c->tls = tc;
    return 0;
}

void tls_conn_free(struct weft_conn *c)
{
    struct tls_conn *tc = c->tls;

    if (tc == NULL)
        return;
    ev_timer_stop(worker_self->loop, &tc->timer);
    /* close_notify, once, without waiting for the peer's; with whatever
     * is corked or unsent, as far as the socket takes it now. */
    tls_close_notify(c);
    if (tc->own_bio)
        (void)bio_send(tc, NULL, 0);
    if (cork_owner == tc) {
        cork_owner = NULL;
        cork_len = 0;
    }
    SSL_free(tc->ssl);
    ERR_clear_error();
    bytes_free(&tc->unsent);
    free(tc);
    c->tls = NULL;
}

/* ---- client side --------------------------------------------------------- */

/* Client contexts of this worker, one per (CA file, verify) pair. */
struct client_ctx {
    char *ca_file; /* NULL: the system's store */
    bool no_verify;
    SSL_CTX *ctx;
};
static struct client_ctx *client_ctxs;
static size_t nclient_ctxs;

static SSL_CTX *client_ctx_new(const char *ca_file, bool no_verify)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (ktls_available())
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_verify(ctx, no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       NULL);
    if ((ca_file != NULL
             ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
             : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The worker's context for these options, made at first use. */
static SSL_CTX *client_ctx_get(const char *ca_file, bool no_verify)
{
    struct client_ctx *more;

    for (size_t i = 0; i < nclient_ctxs; i++) {
        struct client_ctx *cc = &client_ctxs[i];
        if (cc->no_verify == no_verify &&
            (cc->ca_file == NULL ? ca_file == NULL
                                 : ca_file != NULL &&
                                       strcmp(cc->ca_file, ca_file) == 0))
            return cc->ctx;
    }
    more = realloc(client_ctxs, (nclient_ctxs + 1) * sizeof(*more));
    if (more == NULL)
        return NULL;
    client_ctxs = more;
    struct client_ctx *cc = &client_ctxs[nclient_ctxs];
    cc->ca_file = ca_file ? strdup(ca_file) : NULL;
    cc->no_verify = no_verify;
    if ((ca_file != NULL && cc->ca_file == NULL) ||
        (cc->ctx = client_ctx_new(ca_file, no_verify)) == NULL) {
        free(cc->ca_file);
        ERR_clear_error();
        return NULL;
    }
    nclient_ctxs++;
    return cc->ctx;
}

void tls_client_free_all(void)
{
    for (size_t i = 0; i < nclient_ctxs; i++) {
        free(client_ctxs[i].ca_file);
        SSL_CTX_free(client_ctxs[i].ctx);
    }
    free(client_ctxs);
    client_ctxs = NULL;
    nclient_ctxs = 0;
}


int tls_client_start(struct weft_conn *c, const char *ca_file,
                     bool no_verify, const char *name, const char **err)
{
    SSL_CTX *ctx = client_ctx_get(ca_file, no_verify);
    struct tls_conn *tc;

    if (ctx == NULL) {
        *err = ca_file != NULL ? "TLS: cannot load the CA file"
                               : "TLS: cannot load the system's CAs";
        return -1;
    }
    if ((tc = tls_conn_new(c, ctx, name)) == NULL) {
        *err = "TLS: out of memory or a bad server name";
        return -1;
    }
    SSL_set_connect_state(tc->ssl);
    tc->want = EV_WRITE;
    /* The connect timeout covers the handshake: no timer of our own. */
    ev_timer_init(&tc->timer, tls_handshake_timeout_cb, 0, 0);
    c->tls = tc;
    return 0;
}

int tls_want(const struct weft_conn *c)
{
    return c->tls->want;
}

int tls_read_want(const struct weft_conn *c)
{
    return c->tls->read_want;
}

int tls_write_want(const struct weft_conn *c)
{
    return c->tls->write_want;
}

bool tls_handshaken(const struct weft_conn *c)
{
    return c->tls->handshaken;
}

/* Which failure kind a handshake error is, for the stats. */
static enum stats_field tls_failure_kind(unsigned long e)
{
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
        return STAT_tls_version_errors;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        return STAT_tls_unknown_ca;
    default:
        return STAT_tls_handshake_errors;
    }
}

/*
 * What a failed call (rc <= 0) of OpenSSL means: 1 to wait (tc->want
 * set), 0 for a clean end (close_notify or EOF), -1 for an error.
 */
static int tls_result(struct tls_conn *tc, int rc)
{
    int err = SSL_get_error(tc->ssl, rc);

    switch (err) {
    case SSL_ERROR_WANT_READ:
        tc->want = EV_READ;
        return 1;
    case SSL_ERROR_WANT_WRITE:
        tc->want = EV_WRITE;
        return 1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        tc->failed = true;
        if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET))
            return errno == 0 ? 0 : -1;
        return -1;
    default:
        tc->failed = true;
        return -1;
    }
}

/* A static reason for a failed handshake: the verification's, or
 * OpenSSL's. */
static const char *tls_reason(struct tls_conn *tc)
{
    long v = SSL_get_verify_result(tc->ssl);
    const char *r;

    if (v != X509_V_OK)
        return X509_verify_cert_error_string(v);
    r = ERR_reason_error_string(ERR_peek_error());
    return r != NULL ? r : "TLS handshake failed";
}

const char *tls_error(const struct weft_conn *c)
{
    return c->tls != NULL && c->tls->err != NULL ? c->tls->err
                                                 : "TLS handshake failed";
}

int tls_handshake(struct weft_conn *c)
{
    struct tls_conn *tc = c->tls;
    struct stats_row *st = conn_stats(c);
    int rc = SSL_do_handshake(tc->ssl);

    if (rc == 1) {
        tc->handshaken = true;
        tc->want = 0;
        ev_timer_stop(worker_self->loop, &tc->timer);
        stats_add(st, STAT_tls_handshakes, 1);
        tc->ktls_send = BIO_get_ktls_send(SSL_get_wbio(tc->ssl)) > 0;
        if (tc->ktls_send)
            stats_add(st, STAT_tls_ktls, 1);
        if (SSL_session_reused(tc->ssl))
            stats_add(st, STAT_tls_resumed, 1);
        return 1;
    }
    switch (tls_result(tc, rc)) {
    case 1:
        return 0;
    case 0:
        /* Closed before the handshake ended (a port probe). */
        stats_add(st, STAT_tls_handshake_errors, 1);
        break;
    default:
        stats_add(st, tls_failure_kind(ERR_peek_error()), 1);
        tc->err = tls_reason(tc);
        log_debug("%s: %s: handshake: %s", __func__,
                  c->ln ? c->ln->conf->name : "outgoing", tc->err);
        break;
    }
    if (tc->err == NULL)
        tc->err = "TLS handshake failed: connection closed";
    ERR_clear_error();
    return -1;
}

static void tls_handshake_timeout_cb(struct ev_loop *loop, ev_timer *t,
                                     int revents)
{
    struct tls_conn *tc = container_of(t, struct tls_conn, timer);

    (void)loop;
    (void)revents;
    stats_add(conn_stats(tc->c), STAT_tls_handshake_timeouts, 1);
    tc->failed = true;
    conn_handshake_failed(tc->c);
}

ssize_t tls_read(struct weft_conn *c, void *buf, size_t len)
{
    struct tls_conn *tc = c->tls;
    int n = SSL_read(tc->ssl, buf, (int)WEFT_MIN(len, (size_t)INT32_MAX));

    if (n > 0) {
        tc->read_want = 0;
        return n;
    }
    switch (tls_result(tc, n)) {
    case 1:
        tc->read_want = tc->want;
        errno = EAGAIN;
        return -1;
    case 0:
        return 0;
    default:
        ERR_clear_error();
        errno = ECONNRESET;
        return -1;
    }
}

bool tls_pending(const struct weft_conn *c)
{
    return SSL_has_pending(c->tls->ssl) == 1;
}

/*
 * Gather the head of the queue into the staging buffer: memory buffers
 * up to the next file segment, or a piece of that file. Returns the bytes,
 * or -1 with errno from pread.
 */
static ssize_t tls_gather(struct weft_conn *c)
{
    struct iovec iov[TLS_IOV_MAX];
    size_t len = 0, flen;
    int fd;
    off_t off;

    if (outq_head_file(&c->out, &fd, &off, &flen)) {
        ssize_t n = pread(fd, stage, WEFT_MIN(flen, sizeof(stage)), off);
        if (n == 0)
            errno = EIO; /* shorter than promised */
        return n > 0 ? n : -1;
    }
    int cnt = outq_iov(&c->out, iov, TLS_IOV_MAX);
    for (int i = 0; i < cnt && len < sizeof(stage); i++) {
        size_t n = WEFT_MIN(iov[i].iov_len, sizeof(stage) - len);
        memcpy(stage + len, iov[i].iov_base, n);
        len += n;
    }
    return (ssize_t)len;
}

/* With kernel TLS a file goes out as with plain TCP: no copy through us. */
static ssize_t tls_sendfile(struct weft_conn *c, int fd, off_t off,
                            size_t len)
{
    struct tls_conn *tc = c->tls;
    ossl_ssize_t n = SSL_sendfile(tc->ssl, fd, off, len, 0);

    if (n > 0) {
        tc->write_want = 0;
        return n;
    }
    if (n == 0) {
        errno = EIO;
    } else if (tls_result(tc, (int)n) == 1) {
        tc->write_want = tc->want;
        return 0;
    }
    ERR_clear_error();
    return -1;
}

ssize_t tls_write_queue(struct weft_conn *c)
{
    struct tls_conn *tc = c->tls;
    ssize_t len;
    size_t flen;
    int n, fd;
    off_t off;

    if (tc->ktls_send && outq_head_file(&c->out, &fd, &off, &flen))
        return tls_sendfile(c, fd, off, flen);
    if ((len = tls_gather(c)) <= 0)
        return -1;
    n = SSL_write(tc->ssl, stage, (int)len);
    if (n > 0) {
        tc->write_want = 0;
        return n;
    }
    if (tls_result(tc, n) == 1) {
        tc->write_want = tc->want;
        return 0;
    }
    ERR_clear_error();
    errno = EPIPE;
    return -1;
}
