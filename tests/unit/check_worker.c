/*
 * Unit tests for the worker's transport and timers (worker/conn.c,
 * worker/timer.c), on a real libev loop and a socketpair: watermark
 * callbacks, the hard limit, unconsumed input kept for the next call,
 * half-close, timer order and cancel.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "worker/conn.h"
#include "tests/unit/check_run.h"

static struct worker w;
static struct stats_block wblock; /* stands in for the shared region */
static struct listener_conf lconf;
static struct weft_listener ln;
static struct weft_conn *conn; /* the connection under test */
static int peer;               /* our end of the socketpair */

static int writable_calls;
static int lost_calls;
static enum weft_close_reason lost_why;
static char seen[256];
static size_t seen_len;
static int eof_calls;

static void t_made(struct weft_conn *c)
{
    conn = c;
}

/* Consume whole 4-byte units only; record what was offered. */
static size_t t_data(struct weft_conn *c, const char *data, size_t len)
{
    (void)c;
    if (seen_len + len < sizeof(seen)) {
        memcpy(seen + seen_len, data, len);
        seen_len += len;
    }
    seen[seen_len++] = '|';
    return len - len % 4;
}

static void t_writable(struct weft_conn *c)
{
    (void)c;
    writable_calls++;
}

static void t_lost(struct weft_conn *c, enum weft_close_reason why)
{
    (void)c;
    lost_calls++;
    lost_why = why;
    conn = NULL;
}

static void t_eof(struct weft_conn *c)
{
    eof_calls++;
    weft_conn_write(c, "bye", 3);
    weft_conn_shutdown(c);
}

static const struct weft_protocol test_proto = {
    .name = "test",
    .connection_made = t_made,
    .data_received = t_data,
    .writable = t_writable,
    .connection_lost = t_lost,
};

static const struct weft_protocol halfclose_proto = {
    .name = "halfclose",
    .connection_made = t_made,
    .data_received = t_data,
    .eof_received = t_eof,
    .connection_lost = t_lost,
};

/* Run the loop until pred() or a bounded number of iterations. */
static void spin(int (*pred)(void))
{
    for (int i = 0; i < 2000 && !pred(); i++)
        ev_run(w.loop, EVRUN_NOWAIT);
}

static int conn_gone(void)
{
    return conn == NULL;
}

static void setup(void)
{
    memset(&w, 0, sizeof(w));
    w.loop = ev_loop_new(EVFLAG_AUTO);
    w.rbuf_size = 4096;
    w.rbuf = malloc(w.rbuf_size);
    LIST_INIT(&w.conns);
    LIST_INIT(&w.timers);
    LIST_INIT(&w.connecting);
    LIST_INIT(&w.reconnectors);
    ev_prepare_init(&w.settle_w, conn_settle_cb);
    worker_self = &w;
    memset(&wblock, 0, sizeof(wblock));
    w.stats = &wblock;
    w.out_stats = &wblock.row[STATS_ROW_OUTGOING];
    memset(&lconf, 0, sizeof(lconf));
    strcpy(lconf.name, "test");
    lconf.proto = &test_proto;
    lconf.write_high = 1000;
    lconf.write_low = 100;
    lconf.write_max = 0;
    memset(&ln, 0, sizeof(ln));
    ln.w = &w;
    ln.conf = &lconf;
    ln.stats = &wblock.row[0];
    writable_calls = lost_calls = eof_calls = 0;
    seen_len = 0;
    conn = NULL;
}

static void teardown(void)
{
    reconnect_free_all(&w);
    connect_free_all(&w);
    timer_free_all(&w);
    conn_close_all(&w);
    if (peer > 0)
        close(peer);
    peer = 0;
    free(w.rbuf);
    ev_loop_destroy(w.loop);
    worker_self = NULL;
}

/* A connection on one end of a socketpair; the other end is `peer`. */
static void open_conn(void)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    peer = sv[1];
    conn_new(&ln, sv[0]);
    ck_assert_ptr_nonnull(conn);
}

/*
 * Fill the socket's buffers so that what the connection writes queues;
 * returns how many bytes that took.
 */
static size_t fill_socket(void)
{
    static char junk[4096];
    size_t total = 0;
    ssize_t n;

    while ((n = write(conn->io.fd, junk, sizeof(junk))) > 0)
        total += (size_t)n;
    ck_assert_int_eq(errno, EAGAIN);
    return total;
}

static void drain_peer(void)
{
    char buf[65536];

    while (read(peer, buf, sizeof(buf)) > 0)
        ;
}

static int queue_empty(void)
{
    drain_peer();
    return conn == NULL || weft_conn_queued(conn) == 0;
}

START_TEST(test_watermarks_once_per_crossing)
{
    static char block[600];

    open_conn();
    fill_socket();
    ck_assert_int_eq(weft_conn_write(conn, block, 600), 0);
    ck_assert_uint_eq(weft_conn_queued(conn), 600);
    ck_assert_int_eq(weft_conn_write(conn, block, 600), 1); /* 1200 > 1000 */
    ck_assert_int_eq(weft_conn_write(conn, block, 10), 1);
    spin(queue_empty);
    ck_assert_uint_eq(weft_conn_queued(conn), 0);
    ck_assert_int_eq(writable_calls, 1);
    /* Below the high mark again: no call, however often we write. */
    ck_assert_int_eq(weft_conn_write(conn, block, 500), 0);
    spin(queue_empty);
    ck_assert_int_eq(writable_calls, 1);
    /* A second crossing, a second call. */
    fill_socket();
    ck_assert_int_eq(weft_conn_write(conn, block, 600), 0);
    ck_assert_int_eq(weft_conn_write(conn, block, 600), 1);
    spin(queue_empty);
    ck_assert_int_eq(writable_calls, 2);
    ck_assert_int_eq(lost_calls, 0);
}
END_TEST

START_TEST(test_hard_limit)
{
    static char block[1500];

    lconf.write_max = 2000;
    open_conn();
    fill_socket();
    ck_assert_int_eq(weft_conn_write(conn, block, 1500), 1);
    ck_assert_int_eq(weft_conn_write(conn, block, 1500), -1); /* 3000 */
    ck_assert_int_eq(weft_conn_write(conn, block, 1), -1);
    spin(conn_gone);
    ck_assert_int_eq(lost_calls, 1);
    ck_assert_int_eq(lost_why, WEFT_CLOSE_ERROR);
}
END_TEST

/* Read from the peer until want bytes arrived (running the loop). */
static size_t peer_read_all(char *buf, size_t want)
{
    size_t got = 0;

    for (int i = 0; i < 5000 && got < want; i++) {
        ssize_t n = read(peer, buf + got, want - got);
        if (n > 0)
            got += (size_t)n;
        else
            ev_run(w.loop, EVRUN_NOWAIT);
    }
    return got;
}

/*
 * iovecs, a file range and more bytes arrive in order: sent at once
 * (_i == 0) or, behind a full socket, queued and flushed (_i == 1).
 */
START_TEST(test_writev_sendfile_order)
{
    char path[64];
    check_tmp_template(path, sizeof(path), "/tmp/weft-check-sendfile-");
    int fd = mkstemp(path);
    static char file[100000], got[100020];
    static char junk[1 << 20];

    for (size_t i = 0; i < sizeof(file); i++)
        file[i] = (char)('a' + i % 26);
    ck_assert_int_eq(write(fd, file, sizeof(file)), (ssize_t)sizeof(file));
    unlink(path);
    open_conn();
    size_t filled = _i ? fill_socket() : 0;
    struct iovec iov[3] = { { "12", 2 }, { "345", 3 }, { "", 0 } };
    ck_assert_int_eq(weft_conn_writev(conn, iov, 3), 0);
    /* From offset 10: the file's bytes 10.. follow the iovecs, then more
     * memory after the file; the socket is too small for all at once, so
     * part of the file waits in the queue with weft's own descriptor. */
    int rc = weft_conn_sendfile(conn, fd, 10, sizeof(file) - 10);
    ck_assert_int_ge(rc, 0);
    close(fd); /* weft keeps its own */
    ck_assert_int_ge(weft_conn_write(conn, "END", 3), 0);
    if (filled > 0) {
        ck_assert_uint_gt(weft_conn_queued(conn), sizeof(file) - 10);
        ck_assert_uint_le(filled, sizeof(junk));
        ck_assert_uint_eq(peer_read_all(junk, filled), filled);
    }
    size_t want = 5 + sizeof(file) - 10 + 3;
    ck_assert_uint_eq(peer_read_all(got, want), want);
    ck_assert(memcmp(got, "12345", 5) == 0);
    ck_assert(memcmp(got + 5, file + 10, sizeof(file) - 10) == 0);
    ck_assert(memcmp(got + want - 3, "END", 3) == 0);
    ck_assert_int_eq(lost_calls, 0);
    ck_assert_uint_eq(wblock.row[0].v[STAT_bytes_out], want);
}
END_TEST

START_TEST(test_sendfile_short_file)
{
    char path[64];
    check_tmp_template(path, sizeof(path), "/tmp/weft-check-sendfile-");
    int fd = mkstemp(path);

    unlink(path);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    open_conn();
    fill_socket();
    /* Promised 10 bytes, the file has 3: the connection fails, no hang. */
    ck_assert_int_ge(weft_conn_sendfile(conn, fd, 0, 10), 0);
    close(fd);
    spin(queue_empty);
    ck_assert_int_eq(lost_calls, 1);
    ck_assert_int_eq(lost_why, WEFT_CLOSE_ERROR);
}
END_TEST

START_TEST(test_addresses_and_pause)
{
    struct sockaddr_storage ss;
    socklen_t len;

    open_conn();
    ck_assert_int_eq(weft_conn_peer(conn, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_UNIX);
    ck_assert_int_eq(weft_conn_local(conn, &ss, &len), 0);
    ck_assert_ptr_eq(weft_conn_listener(conn), &ln);
    weft_conn_pause(conn);
    ck_assert_int_eq(write(peer, "wxyz", 4), 4);
    for (int i = 0; i < 50; i++)
        ev_run(w.loop, EVRUN_NOWAIT);
    ck_assert_uint_eq(seen_len, 0); /* nothing delivered while paused */
    weft_conn_resume(conn);
    for (int i = 0; i < 50 && seen_len == 0; i++)
        ev_run(w.loop, EVRUN_NOWAIT);
    ck_assert(memcmp(seen, "wxyz|", 5) == 0);
}
END_TEST

static int seen_two_calls(void)
{
    return memchr(seen, '|', seen_len) != NULL &&
           memchr(seen, '|', seen_len) != memrchr(seen, '|', seen_len);
}

START_TEST(test_unconsumed_kept)
{
    open_conn();
    ck_assert_int_eq(write(peer, "abcdefghij", 10), 10);
    spin(seen_two_calls); /* stops after the first call: one '|' */
    ck_assert_int_eq(write(peer, "kl", 2), 2);
    spin(seen_two_calls);
    ck_assert_uint_eq(wblock.row[0].v[STAT_bytes_in], 12);
    ck_assert_uint_eq(wblock.row[0].v[STAT_connections_accepted], 1);
    ck_assert_uint_eq(wblock.row[0].v[STAT_connections_active], 1);
    /* First call: all 10; 8 consumed; second: "ij" kept, then "kl". */
    ck_assert_msg(seen_len == 16, "seen: %.*s", (int)seen_len, seen);
    ck_assert(memcmp(seen, "abcdefghij|ijkl|", 16) == 0);
}
END_TEST

static int peer_eof;
static char peer_got[16];

static int peer_sees_eof(void)
{
    ssize_t n = read(peer, peer_got, sizeof(peer_got));
    if (n == 0)
        peer_eof = 1;
    return peer_eof;
}

START_TEST(test_half_close)
{
    lconf.proto = &halfclose_proto;
    open_conn();
    ck_assert_int_eq(shutdown(peer, SHUT_WR), 0);
    peer_eof = 0;
    /* eof_received writes "bye" and shuts down: the peer reads it, then
     * EOF; the connection then ends with reason "peer". */
    spin(peer_sees_eof);
    ck_assert_int_eq(eof_calls, 1);
    ck_assert(peer_eof);
    spin(conn_gone);
    ck_assert_int_eq(lost_calls, 1);
    ck_assert_int_eq(lost_why, WEFT_CLOSE_PEER);
}
END_TEST

START_TEST(test_idle_timeout)
{
    lconf.idle_timeout = 20;
    open_conn();
    spin(conn_gone);
    for (int i = 0; i < 100 && conn != NULL; i++)
        ev_run(w.loop, EVRUN_ONCE);
    ck_assert_int_eq(lost_calls, 1);
    ck_assert_int_eq(lost_why, WEFT_CLOSE_TIMEOUT);
    ck_assert_uint_eq(wblock.row[0].v[STAT_connections_timed_out], 1);
    lconf.idle_timeout = 0;
}
END_TEST

static char order[16];
static int norder;
static int repeats;
static struct weft_timer *cancel_me;

static void t_mark(struct weft_timer *t, void *arg)
{
    (void)t;
    order[norder++] = *(const char *)arg;
}

static void t_repeat(struct weft_timer *t, void *arg)
{
    (void)arg;
    if (++repeats == 3)
        weft_timer_cancel(t);
}

static int timers_done(void)
{
    return LIST_EMPTY(&w.timers);
}

START_TEST(test_timers)
{
    norder = repeats = 0;
    ck_assert_ptr_nonnull(weft_timer_once(30, t_mark, "c"));
    ck_assert_ptr_nonnull(weft_timer_once(10, t_mark, "a"));
    ck_assert_ptr_nonnull(weft_timer_once(20, t_mark, "b"));
    cancel_me = weft_timer_once(15, t_mark, "x");
    ck_assert_ptr_nonnull(cancel_me);
    weft_timer_cancel(cancel_me);
    ck_assert_ptr_nonnull(weft_timer_repeat(5, t_repeat, NULL));
    ck_assert_ptr_null(weft_timer_repeat(0, t_repeat, NULL));
    for (int i = 0; i < 1000 && !timers_done(); i++)
        ev_run(w.loop, EVRUN_ONCE);
    ck_assert_int_eq(norder, 3);
    ck_assert(memcmp(order, "abc", 3) == 0);
    ck_assert_int_eq(repeats, 3);
}
END_TEST

/* ---- outgoing connections ---- */

static int client_made;
static const char *client_err;
static int client_failed;
static struct weft_conn *client;

static void c_made(struct weft_conn *c)
{
    client_made++;
    client = c;
    ck_assert_ptr_eq(weft_conn_data(c), &client_made);
    ck_assert_ptr_null(weft_conn_listener(c));
    weft_conn_write(c, "hi", 2);
}

static size_t c_data(struct weft_conn *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    return len;
}

static void c_lost(struct weft_conn *c, enum weft_close_reason why)
{
    (void)c;
    (void)why;
    client = NULL;
}

static const struct weft_protocol client_proto = {
    .name = "client",
    .connection_made = c_made,
    .data_received = c_data,
    .connection_lost = c_lost,
};

static void c_failed(void *arg, const char *err)
{
    ck_assert_ptr_eq(arg, &client_made);
    client_failed++;
    client_err = err;
}

/* A listening socket on a free loopback port; its port in *port. */
static int listen_any(int *port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int client_settled(void)
{
    return client_made > 0 || client_failed > 0;
}

static void run_until(int (*pred)(void))
{
    for (int i = 0; i < 500 && !pred(); i++)
        ev_run(w.loop, EVRUN_ONCE);
}

START_TEST(test_connect_ok)
{
    char hp[64];
    int port, lfd = listen_any(&port);

    client_made = client_failed = 0;
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    ck_assert_int_eq(weft_connect(hp, 2000, &client_proto, &client_made,
                                  c_failed), 0);
    ck_assert_int_eq(client_made + client_failed, 0); /* never at once */
    run_until(client_settled);
    ck_assert_int_eq(client_made, 1);
    int fd = accept(lfd, NULL, NULL);
    char buf[2];
    ck_assert_int_eq(read(fd, buf, 2), 2);
    ck_assert(memcmp(buf, "hi", 2) == 0);
    close(fd);
    close(lfd);
}
END_TEST

START_TEST(test_connect_by_name)
{
    char hp[64];
    int port, lfd = listen_any(&port);

    client_made = client_failed = 0;
    snprintf(hp, sizeof(hp), "localhost:%d", port);
    ck_assert_int_eq(weft_connect(hp, 5000, &client_proto, &client_made,
                                  c_failed), 0);
    run_until(client_settled);
    ck_assert_msg(client_made == 1, "failed: %s", client_err);
    close(lfd);
}
END_TEST

START_TEST(test_connect_refused)
{
    char hp[64];
    int port, lfd = listen_any(&port);

    close(lfd); /* nothing listens there now */
    client_made = client_failed = 0;
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    ck_assert_int_eq(weft_connect(hp, 2000, &client_proto, &client_made,
                                  c_failed), 0);
    ck_assert_int_eq(client_failed, 0);
    run_until(client_settled);
    ck_assert_int_eq(client_failed, 1);
    ck_assert_int_eq(client_made, 0);
    ck_assert_str_eq(client_err, strerror(ECONNREFUSED));
    ck_assert_uint_eq(wblock.row[STATS_ROW_OUTGOING].v[STAT_connect_failures],
                      1);
}
END_TEST

START_TEST(test_connect_errors)
{
    client_made = client_failed = 0;
    ck_assert_int_eq(weft_connect("nocolon", 100, &client_proto,
                                  &client_made, c_failed), -1);
    ck_assert_int_eq(weft_connect("host:port", 100, &client_proto,
                                  &client_made, c_failed), -1);
    ck_assert_int_eq(weft_connect("no-such-host.invalid:80", 5000,
                                  &client_proto, &client_made, c_failed), 0);
    run_until(client_settled);
    /* "no such host", or a lookup error where no resolver answers. */
    ck_assert_int_eq(client_failed, 1);
    ck_assert_int_eq(client_made, 0);
    ck_assert_ptr_nonnull(client_err);
}
END_TEST

static int conn_gone_client(void)
{
    return client == NULL;
}

static int reconnects_seen(void)
{
    return client_made >= 2;
}

START_TEST(test_reconnector)
{
    struct weft_reconnect_opts o = { .timeout_ms = 1000, .initial_ms = 10,
                                     .max_ms = 40 };
    char hp[64];
    int port, lfd = listen_any(&port);

    close(lfd);
    client_made = client_failed = 0;
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    struct weft_reconnector *r =
        weft_reconnect_start(hp, &o, &client_proto, &client_made);
    ck_assert_ptr_nonnull(r);
    /* Down: attempts fail and are retried with backoff. */
    for (int i = 0; i < 20; i++)
        ev_run(w.loop, EVRUN_ONCE);
    ck_assert_int_eq(client_made, 0);
    /* Up again on the same port: it connects. */
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    run_until(client_settled);
    ck_assert_int_eq(client_made, 1);
    /* The server drops it: the reconnector connects again. */
    int fd = accept(lfd, NULL, NULL);
    close(fd);
    run_until(reconnects_seen);
    ck_assert_int_eq(client_made, 2);
    weft_reconnect_stop(r);
    run_until(conn_gone_client);
    close(lfd);
}
END_TEST

/*
 * A throwaway TLS server in a child process: a fresh P-256 key and a
 * self-signed certificate, one handshake on lfd, then reads until the
 * client closes.
 */
static pid_t tls_peer(int lfd)
{
    pid_t pid = fork();

    ck_assert_int_ne(pid, -1);
    if (pid != 0)
        return pid;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (key == NULL || x == NULL || ctx == NULL)
        _exit(1);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_sign(x, key, EVP_sha256()) == 0 ||
        SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1)
        _exit(1);
    int fd = accept(lfd, NULL, NULL);
    SSL *ssl = SSL_new(ctx);
    char buf[256];
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        _exit(1);
    while (SSL_read(ssl, buf, sizeof(buf)) > 0)
        ;
    _exit(0);
}

static int closer_made;

/* A client that closes as soon as it is made, with nothing queued. */
static void closer_made_cb(struct weft_conn *c)
{
    closer_made++;
    weft_conn_close(c);
}

static const struct weft_protocol closer_proto = {
    .name = "closer",
    .connection_made = closer_made_cb,
    .data_received = c_data,
};

static int closer_settled(void)
{
    return closer_made > 0 || client_failed > 0;
}

/* The connection is freed inside connection_made: nothing may touch it
 * after (ASan run). */
START_TEST(test_connect_tls_close_at_once)
{
    struct weft_tls_client tls = { .no_verify = 1 };
    char hp[64];
    int port, status, lfd = listen_any(&port);
    pid_t peer_pid = tls_peer(lfd);

    closer_made = client_failed = 0;
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    ck_assert_int_eq(weft_connect_tls(hp, 5000, &tls, &closer_proto,
                                      &client_made, c_failed), 0);
    run_until(closer_settled);
    ck_assert_msg(closer_made == 1, "failed: %s", client_err);
    /* The peer ends at our close (its last ticket may meet a reset). */
    ck_assert_int_eq(waitpid(peer_pid, &status, 0), peer_pid);
    close(lfd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("transport");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_watermarks_once_per_crossing);
    tcase_add_test(tc, test_hard_limit);
    tcase_add_test(tc, test_unconsumed_kept);
    tcase_add_loop_test(tc, test_writev_sendfile_order, 0, 2);
    tcase_add_test(tc, test_sendfile_short_file);
    tcase_add_test(tc, test_addresses_and_pause);
    tcase_add_test(tc, test_half_close);
    tcase_add_test(tc, test_idle_timeout);
    tcase_add_test(tc, test_timers);
    tcase_add_test(tc, test_connect_ok);
    tcase_add_test(tc, test_connect_by_name);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_connect_errors);
    tcase_add_test(tc, test_reconnector);
    tcase_add_test(tc, test_connect_tls_close_at_once);
    suite_add_tcase(s, tc);
    return check_run(s);
}
