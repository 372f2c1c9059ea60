/*
 * The control socket, and the admin HTTP listener for /metrics, served by
 * the supervisor's loop: one request line in, one response out, then the
 * connection closes. Clients never block the loop: every socket is
 * non-blocking, a request is at most CTL_LINE_MAX bytes, and a client that
 * says nothing for CTL_TIMEOUT_S is answered with an error and closed.
 */
#include "supervisor/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/strbuf.h"
#include "shared/util.h"
#include "supervisor/render.h"
#include "supervisor/stats_read.h"

#define CTL_TIMEOUT_S 5.0
/* Clients served at once; more wait in the listen queue. */
#define CTL_CLIENTS_MAX 64

struct control;

struct ctl_client {
    LIST_ENTRY(ctl_client) link;
    struct control *ctl;
    ev_io io;
    ev_timer timer;
    bool http;
    bool answered; /* reading is over: writing out */
    char in[CTL_LINE_MAX + 1];
    size_t inlen;
    struct strbuf out;
    size_t sent;
    bool waiting; /* for a reload to end */
};

struct control {
    struct supervisor *sup;
    int fd;
    ev_io io;
    int admin_fd;
    ev_io admin_io;
    LIST_HEAD(, ctl_client) clients;
    int nclients;
    char *path;
    struct ctl_client *reload_waiter; /* answered when the reload ends */
    bool keep_path; /* an upgraded weftd serves on it now */
};

static void cmd_ping(struct control *ctl, struct strbuf *out);
static void cmd_version(struct control *ctl, struct strbuf *out);
static void cmd_help(struct control *ctl, struct strbuf *out);
static void cmd_stats(struct control *ctl, struct strbuf *out);
static void cmd_workers(struct control *ctl, struct strbuf *out);
static void cmd_metrics(struct control *ctl, struct strbuf *out);
static void cmd_reload(struct control *ctl, struct strbuf *out);
static void cmd_stop(struct control *ctl, struct strbuf *out);
static void cmd_reopen(struct control *ctl, struct strbuf *out);
static void cmd_upgrade(struct control *ctl, struct strbuf *out);

/* The commands, in one place; help is generated from this table. */
static const struct ctl_cmd {
    const char *name;
    const char *help;
    void (*run)(struct control *ctl, struct strbuf *out);
} ctl_cmds[] = {
    { "ping", "check that weftd answers", cmd_ping },
    { "version", "weftd's version", cmd_version },
    { "help", "this list", cmd_help },
    { "stats", "totals, per listener and per worker (JSON)", cmd_stats },
    { "workers", "the workers, one entry each (JSON)", cmd_workers },
    { "metrics", "Prometheus text exposition", cmd_metrics },
    { "reload", "load the configuration again", cmd_reload },
    { "stop", "stop weftd gracefully", cmd_stop },
    { "reopen", "reopen the log file", cmd_reopen },
    { "upgrade", "exec the weftd binary again, handing over the sockets",
      cmd_upgrade },
};

const char *ctl_parse(const char *buf, size_t len, char *name, size_t size)
{
    const char *nl = memchr(buf, '\n', len);

    if (nl == NULL)
        return len > CTL_LINE_MAX ? "line too long" : NULL;
    len = (size_t)(nl - buf);
    if (len > CTL_LINE_MAX)
        return "line too long";
    /* Trim blanks and a CR around the command. */
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    while (len > 0 && (*buf == ' ' || *buf == '\t')) {
        buf++;
        len--;
    }
    if (len == 0)
        return "empty command";
    for (size_t i = 0; i < len; i++)
        if (buf[i] < 'a' || buf[i] > 'z')
            return "unknown command";
    if (len >= size)
        return "unknown command";
    memcpy(name, buf, len);
    name[len] = '\0';
    for (size_t i = 0; i < countof(ctl_cmds); i++)
        if (strcmp(ctl_cmds[i].name, name) == 0)
            return "";
    return "unknown command";
}

static void cmd_ping(struct control *ctl, struct strbuf *out)
{
    (void)ctl;
    strbuf_puts(out, "{\"ok\": true}\n");
}

static void cmd_version(struct control *ctl, struct strbuf *out)
{
    (void)ctl;
    strbuf_puts(out, "{\"ok\": true, \"version\": ");
    strbuf_json_string(out, PACKAGE_VERSION);
    strbuf_puts(out, "}\n");
}

static void cmd_help(struct control *ctl, struct strbuf *out)
{
    (void)ctl;
    strbuf_puts(out, "{\"ok\": true, \"commands\": [");
    for (size_t i = 0; i < countof(ctl_cmds); i++) {
        strbuf_puts(out, i ? ", {\"name\": " : "{\"name\": ");
        strbuf_json_string(out, ctl_cmds[i].name);
        strbuf_puts(out, ", \"help\": ");
        strbuf_json_string(out, ctl_cmds[i].help);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "]}\n");
}

/* Take a snapshot and render it with fn, or answer an error. */
static void render_with(struct control *ctl, struct strbuf *out,
                        int (*fn)(const struct stats_snapshot *,
                                  struct strbuf *))
{
    struct stats_snapshot s;

    if (snapshot_take(ctl->sup, &s) == -1) {
        render_error_json("out of memory", out);
        return;
    }
    fn(&s, out);
    snapshot_free(&s);
}

static void cmd_stats(struct control *ctl, struct strbuf *out)
{
    render_with(ctl, out, render_stats_json);
}

static void cmd_workers(struct control *ctl, struct strbuf *out)
{
    render_with(ctl, out, render_workers_json);
}

static void cmd_metrics(struct control *ctl, struct strbuf *out)
{
    render_with(ctl, out, render_prometheus);
}

static void client_answer(struct ctl_client *cl);

/*
 * The reload or upgrade a client waits for has ended: answer it with the
 * error, or with "ok" and key: value.
 */
static void answer_waiter(struct control *ctl, const char *err,
                          const char *key, long value)
{
    struct ctl_client *cl = ctl->reload_waiter;

    if (cl == NULL)
        return; /* it left before the end */
    ctl->reload_waiter = NULL;
    cl->waiting = false;
    if (err != NULL)
        render_error_json(err, &cl->out);
    else
        strbuf_printf(&cl->out, "{\"ok\": true, \"%s\": %ld}\n", key,
                      value);
    client_answer(cl);
}

static void reload_answer(void *arg, const char *err)
{
    struct control *ctl = arg;

    answer_waiter(ctl, err, "generation", (long)ctl->sup->generation);
}

/*
 * Start a reload; the answer waits for its end. A refused configuration
 * is answered at once with every FILE:LINE error.
 */
static void cmd_reload(struct control *ctl, struct strbuf *out)
{
    struct config_errors errs;
    const char *err = reload_start(ctl->sup, reload_answer, ctl, &errs);

    if (err == NULL)
        return; /* client_dispatch parks the client */
    if (errs.len > 0) {
        char msg[sizeof(errs.text) + 64];
        while (errs.len > 0 && errs.text[errs.len - 1] == '\n')
            errs.text[--errs.len] = '\0';
        snprintf(msg, sizeof(msg), "%s:\n%s", err, errs.text);
        render_error_json(msg, out);
        return;
    }
    render_error_json(err, out);
}

static void cmd_stop(struct control *ctl, struct strbuf *out)
{
    log_info("%s: stop requested on the control socket", __func__);
    proc_stop(ctl->sup, ctl->sup->cfg->shutdown_timeout);
    strbuf_puts(out, "{\"ok\": true}\n");
}

static void upgrade_answer(void *arg, const char *err)
{
    struct control *ctl = arg;

    answer_waiter(ctl, err, "pid", (long)ctl->sup->upgraded_to);
}

static void cmd_upgrade(struct control *ctl, struct strbuf *out)
{
    const char *err = upgrade_start(ctl->sup, upgrade_answer, ctl);

    if (err != NULL)
        render_error_json(err, out);
}

static void cmd_reopen(struct control *ctl, struct strbuf *out)
{
    if (proc_reopen_logs(ctl->sup) == -1)
        render_error_json(strerror(errno), out);
    else
        strbuf_puts(out, "{\"ok\": true}\n");
}

static void client_free(struct ctl_client *cl)
{
    struct ev_loop *loop = cl->ctl->sup->loop;

    if (cl->ctl->reload_waiter == cl)
        cl->ctl->reload_waiter = NULL;
    ev_io_stop(loop, &cl->io);
    ev_timer_stop(loop, &cl->timer);
    close(cl->io.fd);
    strbuf_free(&cl->out);
    LIST_REMOVE(cl, link);
    cl->ctl->nclients--;
    free(cl);
}

/* Switch cl to writing its response. */
static void client_answer(struct ctl_client *cl)
{
    struct ev_loop *loop = cl->ctl->sup->loop;

    cl->answered = true;
    ev_io_stop(loop, &cl->io);
    ev_io_set(&cl->io, cl->io.fd, EV_WRITE);
    ev_io_start(loop, &cl->io);
    ev_timer_stop(loop, &cl->timer);
    ev_timer_set(&cl->timer, CTL_TIMEOUT_S, 0);
    ev_timer_start(loop, &cl->timer); /* a client that never reads */
}

#define TYPE_TEXT "text/plain; charset=utf-8"
#define TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"

/* An HTTP response of type around body. */
static void http_respond(struct ctl_client *cl, int status, const char *why,
                         const char *type, struct strbuf *body)
{
    strbuf_printf(&cl->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                  "Cache-Control: no-store\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                  status, why, type, body->len);
    strbuf_add(&cl->out, body->data, body->len);
}

/* Does the request target (after "GET ") name path, with or without a
 * query? */
static bool http_path_is(const char *target, const char *path)
{
    size_t n = strlen(path);

    return strncmp(target, path, n) == 0 &&
           (target[n] == ' ' || target[n] == '?');
}

/* The page that polls stats.json (supervisor/stats_page.html). */
extern const char stats_page_html[];

/*
 * The admin listener: GET / (the stats page), /stats.json (what weftctl
 * stats shows) and /metrics (Prometheus).
 */
static void http_dispatch(struct ctl_client *cl)
{
    struct strbuf body = { 0 };
    const char *sp = memchr(cl->in, ' ', cl->inlen);

    if (sp == NULL || memchr(cl->in, '\n', cl->inlen) == NULL) {
        strbuf_puts(&body, "bad request\n");
        http_respond(cl, 400, "Bad Request", TYPE_TEXT, &body);
    } else if (sp - cl->in != 3 || memcmp(cl->in, "GET", 3) != 0) {
        strbuf_puts(&body, "only GET\n");
        http_respond(cl, 405, "Method Not Allowed", TYPE_TEXT, &body);
    } else if (http_path_is(sp + 1, "/metrics")) {
        cmd_metrics(cl->ctl, &body);
        http_respond(cl, 200, "OK", TYPE_PROM, &body);
    } else if (http_path_is(sp + 1, "/stats.json")) {
        cmd_stats(cl->ctl, &body);
        http_respond(cl, 200, "OK", "application/json", &body);
    } else if (http_path_is(sp + 1, "/") ||
               http_path_is(sp + 1, "/index.html")) {
        strbuf_puts(&body, stats_page_html);
        http_respond(cl, 200, "OK", "text/html; charset=utf-8", &body);
    } else {
        strbuf_puts(&body, "not found: try /, /stats.json or /metrics\n");
        http_respond(cl, 404, "Not Found", TYPE_TEXT, &body);
    }
    strbuf_free(&body);
}

/* A complete request line (or an error) is in: build the response. */
static void client_dispatch(struct ctl_client *cl, const char *err)
{
    char name[32];

    if (cl->http) {
        http_dispatch(cl);
    } else if (err == NULL) {
        err = ctl_parse(cl->in, cl->inlen, name, sizeof(name));
        if (err != NULL && *err == '\0') {
            for (size_t i = 0; i < countof(ctl_cmds); i++)
                if (strcmp(ctl_cmds[i].name, name) == 0)
                    ctl_cmds[i].run(cl->ctl, &cl->out);
            if (cl->out.len == 0 && !cl->out.failed) {
                /* Answered later (a reload in progress): no timeout. */
                cl->waiting = true;
                cl->ctl->reload_waiter = cl;
                ev_io_stop(cl->ctl->sup->loop, &cl->io);
                ev_timer_stop(cl->ctl->sup->loop, &cl->timer);
                return;
            }
        } else {
            render_error_json(err ? err : "no command", &cl->out);
        }
    } else {
        render_error_json(err, &cl->out);
    }
    client_answer(cl);
}

/*
 * Has the request ended: a line, or for HTTP the empty line after the
 * headers? cl->in is kept NUL-terminated by client_read.
 */
static bool request_complete(const struct ctl_client *cl)
{
    if (!cl->http)
        return memchr(cl->in, '\n', cl->inlen) != NULL;
    return strstr(cl->in, "\r\n\r\n") != NULL ||
           strstr(cl->in, "\n\n") != NULL;
}

static void client_read(struct ctl_client *cl)
{
    ssize_t n = read(cl->io.fd, cl->in + cl->inlen,
                     sizeof(cl->in) - 1 - cl->inlen);

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR)
            client_free(cl);
        return;
    }
    if (n == 0) {
        client_free(cl); /* gone before asking anything */
        return;
    }
    cl->inlen += (size_t)n;
    cl->in[cl->inlen] = '\0';
    if (request_complete(cl))
        client_dispatch(cl, NULL);
    else if (cl->inlen >= sizeof(cl->in) - 1)
        client_dispatch(cl, "line too long");
}

static void client_write(struct ctl_client *cl)
{
    if (cl->out.failed) {
        client_free(cl);
        return;
    }
    ssize_t n = send(cl->io.fd, cl->out.data + cl->sent,
                     cl->out.len - cl->sent, MSG_NOSIGNAL);
    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR)
            client_free(cl);
        return;
    }
    cl->sent += (size_t)n;
    if (cl->sent == cl->out.len)
        client_free(cl);
}

static void client_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct ctl_client *cl = container_of(io, struct ctl_client, io);

    (void)loop;
    (void)revents;
    if (cl->answered)
        client_write(cl);
    else
        client_read(cl);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct ctl_client *cl = container_of(t, struct ctl_client, timer);

    (void)loop;
    (void)revents;
    if (cl->answered)
        client_free(cl); /* it does not read its answer */
    else if (cl->http)
        client_free(cl);
    else
        client_dispatch(cl, "timeout: no command within 5 s");
}

/* Only root, our own uid, or the configured group may talk to us. */
static bool peer_allowed(const struct control *ctl, int fd)
{
    const struct control_conf *cc = &ctl->sup->cfg->control;
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
        return false;
    return cred.uid == 0 || cred.uid == geteuid() ||
           (cc->has_group && cred.gid == (gid_t)cc->gid);
}

static void client_new(struct control *ctl, int fd, bool http)
{
    struct ctl_client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        close(fd);
        return;
    }
    cl->ctl = ctl;
    cl->http = http;
    LIST_INSERT_HEAD(&ctl->clients, cl, link);
    ctl->nclients++;
    ev_io_init(&cl->io, client_io_cb, fd, EV_READ);
    ev_timer_init(&cl->timer, client_timer_cb, CTL_TIMEOUT_S, 0);
    if (!http && !peer_allowed(ctl, fd)) {
        client_dispatch(cl, "permission denied");
        return;
    }
    ev_io_start(ctl->sup->loop, &cl->io);
    ev_timer_start(ctl->sup->loop, &cl->timer);
}

/* Accept what is queued on a control or admin socket. */
static void accept_clients(struct control *ctl, int lfd, bool http)
{
    while (ctl->nclients < CTL_CLIENTS_MAX) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("%s: accept: %s", __func__, strerror(errno));
            return;
        }
        client_new(ctl, fd, http);
    }
}

static void ctl_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct control *ctl = container_of(io, struct control, io);

    (void)loop;
    (void)revents;
    accept_clients(ctl, io->fd, false);
}

static void admin_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct control *ctl = container_of(io, struct control, admin_io);

    (void)loop;
    (void)revents;
    accept_clients(ctl, io->fd, true);
}

/*
 * Is a weftd answering on path? A file nobody listens on is a leftover
 * of a weftd that died: it may be replaced.
 */
static bool socket_live(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd == -1)
        return false;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return live;
}

/* Bind the UNIX control socket with its mode; -1 with a message. */
static int control_listen(const struct control_conf *cc, char *err,
                          size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cc->path);
    if (lstat(cc->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "control socket %s: exists and is not a "
                     "socket", cc->path);
            return -1;
        }
        if (socket_live(cc->path)) {
            snprintf(err, errlen, "control socket %s: another weftd is "
                     "running and answering on it", cc->path);
            return -1;
        }
        unlink(cc->path); /* stale: its weftd is gone */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
        chmod(cc->path, (mode_t)cc->mode) == -1 ||
        (cc->has_group && chown(cc->path, (uid_t)-1, (gid_t)cc->gid) == -1) ||
        listen(fd, 64) == -1) {
        snprintf(err, errlen, "control socket %s: %s", cc->path,
                 strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

/* Bind the admin HTTP listener; -1 with a message. */
static int admin_listen(const struct addr *a, char *err, size_t errlen)
{
    char s[ADDR_STRLEN];
    int one = 1;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
                                         SOCK_CLOEXEC, 0);

    if (fd == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
        listen(fd, 64) == -1) {
        snprintf(err, errlen, "admin listener %s: %s",
                 addr_format(a, s, sizeof(s)), strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

int control_fd(const struct control *ctl)
{
    return ctl->fd;
}

void control_keep_path(struct control *ctl)
{
    ctl->keep_path = true;
}

int control_admin_fd(const struct control *ctl)
{
    return ctl->admin_fd;
}

struct control *control_open(struct supervisor *sup, int inherited,
                             int inherited_admin, char *err, size_t errlen)
{
    const struct control_conf *cc = &sup->cfg->control;
    struct control *ctl = calloc(1, sizeof(*ctl));

    if (ctl == NULL || (ctl->path = strdup(cc->path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(ctl);
        return NULL;
    }
    ctl->sup = sup;
    ctl->admin_fd = -1;
    LIST_INIT(&ctl->clients);
    ctl->fd = inherited != -1 ? inherited : control_listen(cc, err, errlen);
    if (ctl->fd == -1)
        goto fail;
    if (cc->has_admin && inherited_admin != -1)
        ctl->admin_fd = inherited_admin;
    else if (cc->has_admin &&
        (ctl->admin_fd = admin_listen(&cc->admin, err, errlen)) == -1) {
        close(ctl->fd);
        unlink(ctl->path);
        goto fail;
    }
    ev_io_init(&ctl->io, ctl_accept_cb, ctl->fd, EV_READ);
    ev_io_start(sup->loop, &ctl->io);
    if (ctl->admin_fd != -1) {
        ev_io_init(&ctl->admin_io, admin_accept_cb, ctl->admin_fd, EV_READ);
        ev_io_start(sup->loop, &ctl->admin_io);
    }
    return ctl;
fail:
    free(ctl->path);
    free(ctl);
    return NULL;
}

/* Stop watching and close every descriptor; unlink the socket if asked. */
static void control_release(struct control *ctl, bool unlink_path)
{
    struct ev_loop *loop = ctl->sup->loop;

    while (!LIST_EMPTY(&ctl->clients))
        client_free(LIST_FIRST(&ctl->clients));
    ev_io_stop(loop, &ctl->io);
    close(ctl->fd);
    if (ctl->admin_fd != -1) {
        ev_io_stop(loop, &ctl->admin_io);
        close(ctl->admin_fd);
    }
    if (unlink_path)
        unlink(ctl->path);
    free(ctl->path);
    free(ctl);
}

void control_close(struct control *ctl)
{
    if (ctl != NULL)
        control_release(ctl, !ctl->keep_path);
}

void control_forget(struct control *ctl)
{
    if (ctl != NULL)
        control_release(ctl, false);
}
