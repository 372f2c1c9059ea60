/*
 * http: the access log, in Common Log Format, one buffer per worker.
 *
 *   127.0.0.1 - - [25/Nov/2026:01:02:03 +0000] "GET / HTTP/1.1" 200 13
 *
 * Lines collect in memory and go out with one write(2) once a second, or
 * sooner when 32 KiB are waiting. The file is opened with O_APPEND, so
 * the workers' whole-buffer writes do not interleave inside a line. Once
 * a second the path is checked: when it names another file (rotated
 * away, or removed), it is opened again, so rotation needs no signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "protocols/http/server.h"

#define ACCESS_LOG_FLUSH_MS 1000
#define ACCESS_LOG_HIGH (32 * 1024)

struct access_log {
    int fd;
    char *path;
    dev_t dev;
    ino_t ino;
    struct strbuf buf;
    struct weft_timer *tick;
    time_t clf_sec;
    char clf[80]; /* "[25/Nov/2026:01:02:03 +0000]" */
};

/* Open the path (again); keep the old descriptor if that fails. */
static void access_log_reopen(struct access_log *log)
{
    struct stat st;
    int fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd == -1) {
        weft_log(WEFT_LOG_ERROR, "http: access_log %s: %s", log->path,
                 strerror(errno));
        return;
    }
    if (log->fd != -1)
        close(log->fd);
    log->fd = fd;
    if (fstat(fd, &st) == 0) {
        log->dev = st.st_dev;
        log->ino = st.st_ino;
    }
}

static void access_log_flush(struct access_log *log)
{
    size_t off = 0;

    while (off < log->buf.len && log->fd != -1) {
        ssize_t n = write(log->fd, log->buf.data + off, log->buf.len - off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            weft_log(WEFT_LOG_ERROR, "http: access_log %s: %s", log->path,
                     strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (log->buf.failed)
        strbuf_free(&log->buf);
    log->buf.len = 0;
}

static void access_log_tick(struct weft_timer *t, void *arg)
{
    struct access_log *log = arg;
    struct stat st;

    (void)t;
    access_log_flush(log);
    if (stat(log->path, &st) == -1 || st.st_dev != log->dev ||
        st.st_ino != log->ino)
        access_log_reopen(log);
}

struct access_log *access_log_open(const char *path)
{
    struct access_log *log = calloc(1, sizeof(*log));

    if (log == NULL || (log->path = strdup(path)) == NULL)
        goto fail;
    log->fd = -1;
    access_log_reopen(log);
    if (log->fd == -1)
        goto fail;
    log->tick = weft_timer_repeat(ACCESS_LOG_FLUSH_MS, access_log_tick, log);
    if (log->tick == NULL)
        goto fail;
    return log;
fail:
    access_log_close(log);
    return NULL;
}

void access_log_close(struct access_log *log)
{
    if (log == NULL)
        return;
    access_log_flush(log);
    if (log->tick != NULL)
        weft_timer_cancel(log->tick);
    if (log->fd != -1)
        close(log->fd);
    strbuf_free(&log->buf);
    free(log->path);
    free(log);
}

char *access_log_peer(struct weft_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char text[INET6_ADDRSTRLEN] = "-";

    if (weft_conn_peer(c, &ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text,
                      sizeof(text));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
                      text, sizeof(text));
    }
    return strdup(text);
}

/* The CLF time of now, made once a second. */
static const char *access_log_time(struct access_log *log, time_t now)
{
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
                                        "May", "Jun", "Jul", "Aug",
                                        "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;

    if (now != log->clf_sec || log->clf[0] == '\0') {
        log->clf_sec = now;
        gmtime_r(&now, &tm);
        snprintf(log->clf, sizeof(log->clf),
                 "[%02d/%s/%04d:%02d:%02d:%02d +0000]", tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
    }
    return log->clf;
}

/* The request line, quotes and control bytes escaped as \xHH. */
static void access_log_escape(struct strbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            char e[4] = { '\\', 'x', hex[ch >> 4], hex[ch & 15] };
            strbuf_add(b, e, 4);
        } else {
            strbuf_add(b, s + i, 1);
        }
    }
}

void access_log_add(struct access_log *log, const struct http_conn *h,
                    time_t now, int status, uint64_t bytes)
{
    struct strbuf *b = &log->buf;

    strbuf_puts(b, h->peer != NULL ? h->peer : "-");
    strbuf_add(b, " - - ", 5);
    strbuf_puts(b, access_log_time(log, now));
    strbuf_add(b, " \"", 2);
    access_log_escape(b, h->line.data, h->line.len);
    strbuf_add(b, "\" ", 2);
    http_put_u64(b, (uint64_t)status);
    strbuf_add(b, " ", 1);
    if (bytes == 0)
        strbuf_add(b, "-", 1);
    else
        http_put_u64(b, bytes);
    strbuf_add(b, "\n", 1);
    if (b->len >= ACCESS_LOG_HIGH)
        access_log_flush(log);
}
