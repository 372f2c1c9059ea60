/*
 * HTTP handlers for test_http_handlers.py, built as a module against
 * include/weft: each one exercises a part of weft/http.h.
 *
 *   echo    answers at once: "METHOD PATH?QUERY\n", the X-Test header's
 *           value and a newline, then the body; adds X-Handler: echo.
 *   later   answers "later N\n" after `delay` ms (a timer), N counting the
 *           requests; counts aborted requests in the X-Aborted header.
 *   stream  streams `chunks` chunks of `size` bytes ('a'..'z' cycling),
 *           stopping on backpressure and going on when writable.
 *   file    answers with the file at `path`, from offset 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/http.h>
#include <weft/weft.h>

/* ---- echo ---------------------------------------------------------------- */

static void echo_handle(struct weft_http_request *r, void *conf)
{
    size_t plen, qlen, blen;
    const char *path = weft_http_path(r, &plen);
    const char *query = weft_http_query(r, &qlen);
    const char *body = weft_http_body(r, &blen);
    const char *test = weft_http_header(r, "x-test", NULL);
    size_t cap = plen + qlen + blen + 256;
    char *out = malloc(cap);
    int n;

    (void)conf;
    if (out == NULL) {
        weft_http_respond(r, 503, "text/plain", "no memory\n", 10);
        return;
    }
    n = snprintf(out, cap, "%s %s%s%s\n%s\n", weft_http_method(r), path,
                 qlen ? "?" : "", query, test ? test : "-");
    memcpy(out + n, body, blen);
    weft_http_add_header(r, "X-Handler", "echo");
    weft_http_respond(r, 200, "text/plain", out, (size_t)n + blen);
    free(out);
}

static const struct weft_http_handler echo_handler = {
    .name = "echo",
    .handle = echo_handle,
};

/* ---- later --------------------------------------------------------------- */

struct later_conf {
    long long delay;
    unsigned long count;
    unsigned long aborted;
};

static void *later_configure(struct weft_settings *s)
{
    struct later_conf *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        weft_settings_error(s, NULL, "out of memory");
        return NULL;
    }
    weft_settings_int(s, "delay", 0, 60000, 100, &c->delay);
    return c;
}

static void later_unconfigure(void *conf)
{
    free(conf);
}

/* One waiting request: the timer that answers it. */
struct later_wait {
    struct later_conf *conf;
    struct weft_timer *timer;
};

static void later_fire(struct weft_timer *t, void *arg)
{
    struct weft_http_request *r = arg;
    struct later_wait *w = weft_http_data(r);
    struct later_conf *c = w->conf;
    char body[64], ab[32];
    int n = snprintf(body, sizeof(body), "later %lu\n", ++c->count);

    (void)t;
    free(w);
    snprintf(ab, sizeof(ab), "%lu", c->aborted);
    weft_http_add_header(r, "X-Aborted", ab);
    weft_http_respond(r, 200, "text/plain", body, (size_t)n);
}

static void later_handle(struct weft_http_request *r, void *conf)
{
    struct later_wait *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        weft_http_respond(r, 503, NULL, NULL, 0);
        return;
    }
    w->conf = conf;
    weft_http_set_data(r, w);
    w->timer = weft_timer_once((unsigned)w->conf->delay, later_fire, r);
    if (w->timer == NULL) {
        free(w);
        weft_http_respond(r, 503, NULL, NULL, 0);
    }
}

/* The client left: stop the timer, which must not touch r any more. */
static void later_aborted(struct weft_http_request *r, void *conf)
{
    struct later_wait *w = weft_http_data(r);

    weft_timer_cancel(w->timer);
    free(w);
    ((struct later_conf *)conf)->aborted++;
}

static const struct weft_http_handler later_handler = {
    .name = "later",
    .configure = later_configure,
    .unconfigure = later_unconfigure,
    .handle = later_handle,
    .aborted = later_aborted,
};

/* ---- stream -------------------------------------------------------------- */

struct stream_conf {
    long long chunks, size;
};

struct stream_state {
    const struct stream_conf *conf;
    long long sent;
    char *buf;
};

static void *stream_configure(struct weft_settings *s)
{
    struct stream_conf *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        weft_settings_error(s, NULL, "out of memory");
        return NULL;
    }
    weft_settings_int(s, "chunks", 1, 1000000, 10, &c->chunks);
    weft_settings_int(s, "size", 1, 1 << 20, 1000, &c->size);
    return c;
}

static void stream_end(struct weft_http_request *r, struct stream_state *st)
{
    free(st->buf);
    free(st);
    weft_http_stream_end(r);
}

/* Write chunks until done, gone, or told to wait. */
static void stream_pump(struct weft_http_request *r, void *arg)
{
    struct stream_state *st = arg;

    while (st->sent < st->conf->chunks) {
        int rc = weft_http_stream_write(r, st->buf, (size_t)st->conf->size);
        st->sent++;
        if (rc == -1)
            break;
        if (rc == 1)
            return;
    }
    stream_end(r, st);
}

static void stream_handle(struct weft_http_request *r, void *conf)
{
    struct stream_state *st = calloc(1, sizeof(*st));
    const struct stream_conf *c = conf;

    if (st == NULL || (st->buf = malloc((size_t)c->size)) == NULL) {
        free(st);
        weft_http_respond(r, 503, NULL, NULL, 0);
        return;
    }
    st->conf = c;
    for (long long i = 0; i < c->size; i++)
        st->buf[i] = (char)('a' + i % 26);
    weft_http_on_writable(r, stream_pump, st);
    weft_http_set_data(r, st);
    if (weft_http_stream_start(r, 200, "text/plain") == -1) {
        stream_end(r, st);
        return;
    }
    stream_pump(r, st);
}

/* The connection went away mid-stream: free our state, not r. */
static void stream_aborted(struct weft_http_request *r, void *conf)
{
    struct stream_state *st = weft_http_data(r);

    (void)conf;
    free(st->buf);
    free(st);
}

static const struct weft_http_handler stream_handler = {
    .name = "stream",
    .configure = stream_configure,
    .unconfigure = later_unconfigure,
    .handle = stream_handle,
    .aborted = stream_aborted,
};

/* ---- file ---------------------------------------------------------------- */

static void *file_configure(struct weft_settings *s)
{
    const char *path;

    weft_settings_string(s, "path", NULL, &path);
    if (path == NULL) {
        weft_settings_error(s, "path", "required");
        return NULL;
    }
    return strdup(path);
}

static void file_handle(struct weft_http_request *r, void *conf)
{
    int fd = open(conf, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd == -1 || fstat(fd, &st) == -1) {
        weft_http_respond(r, 404, "text/plain", "no file\n", 8);
    } else {
        weft_http_respond_file(r, 200, "application/octet-stream", fd, 0,
                               (size_t)st.st_size);
    }
    if (fd != -1)
        close(fd);
}

static const struct weft_http_handler file_handler = {
    .name = "file",
    .configure = file_configure,
    .unconfigure = later_unconfigure,
    .handle = file_handle,
};

static const struct weft_http_handler *const handlers[] = {
    &echo_handler, &later_handler, &stream_handler, &file_handler, NULL
};

const struct weft_module weft_module = {
    .abi = WEFT_ABI_VERSION,
    .name = "http_handlers",
    .http_handlers = handlers,
};
