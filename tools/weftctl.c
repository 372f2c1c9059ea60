/*
 * weftctl: the client of weftd's control socket.
 *
 * One request per connection: connect to the UNIX socket, send one line
 * "COMMAND\n", read the reply until weftd closes the connection. JSON
 * replies are shown as text or tables (as received with --json); the
 * metrics reply is Prometheus text, printed as is; `top` asks for stats
 * every second and shows per-worker rates.
 *
 * Exit status: 0 when weftd said "ok": true; 1 when it answered with an
 * error (the message goes to stderr); 2 when it could not be reached or
 * did not answer in time, when its reply is not understood, and for
 * usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shared/stats.h"
#include "shared/util.h"
#include "tools/json.h"

#define DEFAULT_SOCKET "weft.sock" /* weftd's default, in its directory */
#define DEFAULT_TIMEOUT 10.0       /* seconds for one request */
#define REPLY_MAX (64u << 20)      /* a reply larger than this is refused */
#define TOP_INTERVAL_MS 1000

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_TROUBLE = 2 };

/*
 * The JSON name of a stats field, as a constant; it does not compile
 * unless STATS_FIELDS declares the field, so a rename cannot leave
 * weftctl asking for a name weftd no longer sends.
 */
#define FIELD(name) (&(#name)[0 * STAT_##name])

struct options {
    const char *socket;
    bool json;        /* print JSON replies as received */
    long count;       /* top: refreshes before exiting, 0 = no limit */
    double timeout;   /* seconds for one request */
};

/* The bytes weftd sent, NUL-terminated, and their parse when JSON. */
struct reply {
    char *text;
    size_t len;
    struct json_doc doc;
};

struct command {
    const char *name;
    const char *help;
    int (*run)(const struct options *o, const struct command *c);
};

/* Set by SIGINT/SIGTERM while `top` runs. */
static volatile sig_atomic_t stop_signal;

/* ---------------------------------------------------------------------
 * Small helpers
 */

/* realloc, or exit: a command-line tool has nothing better to do. */
static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "weftctl: out of memory\n");
        exit(EXIT_TROUBLE);
    }
    return p;
}

/* Milliseconds of CLOCK_MONOTONIC, with a fraction for short spans. */
static double now_ms_exact(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A duration in whole seconds, short: 42s, 5m03s, 2h05m, 3d04h. */
static void fmt_duration(char *buf, size_t size, double s)
{
    uint64_t t = s > 0 && s < 1e15 ? (uint64_t)s : 0;

    if (t < 60)
        snprintf(buf, size, "%" PRIu64 "s", t);
    else if (t < 3600)
        snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", t / 3600,
                 t / 60 % 60);
    else
        snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", t / 86400,
                 t / 3600 % 24);
}

/* A byte count or rate, in powers of 1024: 512, 50.0K, 1.2M. */
static void fmt_bytes(char *buf, size_t size, double v)
{
    static const char units[] = "KMGTPE";
    int u = -1;

    while (v >= 1024 && u < (int)sizeof(units) - 2) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.1f%c", v, units[u]);
}

/* ---------------------------------------------------------------------
 * Tables: cells of text, each column as wide as its widest cell
 */

struct table {
    size_t ncols, n, cap; /* cells, row after row; row 0 is the header */
    char **cell;
    char *align;          /* one 'l' or 'r' per column */
};

/* An empty table of ncols columns, aligned as the first ncols letters of
 * align say, the last letter standing for any column after it. */
static void table_init(struct table *t, size_t ncols, const char *align)
{
    size_t given = strlen(align);

    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->align = xrealloc(NULL, ncols);
    for (size_t i = 0; i < ncols; i++)
        t->align[i] = align[i < given ? i : given - 1];
}

/* Append one cell, printf-style; rows fill left to right. */
__attribute__((format(printf, 2, 3)))
static void table_add(struct table *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->cell = xrealloc(t->cell, t->cap * sizeof(*t->cell));
    }
    t->cell[t->n] = xrealloc(NULL, strlen(buf) + 1);
    strcpy(t->cell[t->n++], buf);
}

/* Print the table to out, one space between columns, then free it. */
static void table_print(struct table *t, FILE *out)
{
    size_t *width = xrealloc(NULL, t->ncols * sizeof(*width));

    memset(width, 0, t->ncols * sizeof(*width));
    for (size_t i = 0; i < t->n; i++) {
        size_t w = strlen(t->cell[i]);
        if (w > width[i % t->ncols])
            width[i % t->ncols] = w;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t col = i % t->ncols;
        bool last = col == t->ncols - 1 || i == t->n - 1;
        int pad = (int)(width[col] - strlen(t->cell[i]));
        if (t->align[col] == 'r')
            fprintf(out, "%*s", pad, "");
        fputs(t->cell[i], out);
        if (!last && t->align[col] == 'l')
            fprintf(out, "%*s", pad, "");
        fputc(last ? '\n' : ' ', out);
        free(t->cell[i]);
    }
    free(width);
    free(t->cell);
    free(t->align);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------
 * The control socket: one request, one reply
 */

/*
 * Wait until fd is ready for events or the deadline (now_ms) passes.
 * Returns 1 when ready, 0 on timeout, -1 with errno (EINTR only when a
 * stop signal came).
 */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n == -1 && (errno != EINTR || stop_signal))
            return -1;
    }
}

/*
 * A stream socket connected to the UNIX socket at path. The kernel
 * blocks connect while weftd's backlog is full: SO_SNDTIMEO bounds that
 * wait. Returns the descriptor, or -1 with a message in err.
 */
static int ctl_connect(const char *path, int64_t deadline, char *err,
                       size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int64_t left = deadline - now_ms();
    struct timeval tv;
    int fd;

    if (left < 1)
        left = 1; /* a zero timeout would mean none */
    tv.tv_sec = left / 1000;
    tv.tv_usec = left % 1000 * 1000;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "cannot connect to %s: path too long (%zu "
                 "bytes, at most %zu)", path, strlen(path),
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        const char *why = errno == EAGAIN || errno == EINPROGRESS
                              ? "timed out (weftd does not accept)"
                              : strerror(errno);
        bool absent = errno == ENOENT || errno == ECONNREFUSED;
        snprintf(err, errlen, "cannot connect to %s: %s%s", path, why,
                 absent ? " (is weftd running? -s names its socket)" : "");
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Send the request line. weftd may answer and close before reading it
 * (a refused peer): a broken pipe is then left for the read to explain.
 */
static int ctl_send(int fd, const char *line, int64_t deadline, char *err,
                    size_t errlen)
{
    size_t len = strlen(line), off = 0;

    while (off < len) {
        int ready = wait_fd(fd, POLLOUT, deadline);
        if (ready <= 0) {
            snprintf(err, errlen, "sending the request: %s",
                     ready == 0 ? "timed out" : strerror(errno));
            return -1;
        }
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
            return 0;
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "sending the request: %s",
                     strerror(errno));
            return -1;
        }
        if (n > 0)
            off += (size_t)n;
    }
    return 0;
}

/*
 * Read until weftd closes the connection. A UNIX socket whose peer
 * closed with our request unread reports ECONNRESET after the data: that
 * is the end of a reply too.
 */
static int ctl_recv(int fd, struct reply *r, int64_t deadline, char *err,
                    size_t errlen)
{
    size_t cap = 4096;

    r->text = xrealloc(NULL, cap);
    r->len = 0;
    for (;;) {
        int ready = wait_fd(fd, POLLIN, deadline);
        if (ready <= 0) {
            snprintf(err, errlen, "no %s from weftd: %s",
                     r->len ? "end of reply" : "reply",
                     ready == 0 ? "timed out" : strerror(errno));
            return -1;
        }
        if (cap - r->len < 4096) {
            cap *= 2;
            r->text = xrealloc(r->text, cap);
        }
        ssize_t n = recv(fd, r->text + r->len, cap - r->len - 1, 0);
        if (n == 0 || (n == -1 && errno == ECONNRESET && r->len > 0))
            break;
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "reading the reply: %s", strerror(errno));
            return -1;
        }
        if (n > 0)
            r->len += (size_t)n;
        if (r->len > REPLY_MAX) {
            snprintf(err, errlen, "reply larger than %u bytes", REPLY_MAX);
            return -1;
        }
    }
    r->text[r->len] = '\0';
    if (r->len == 0) {
        snprintf(err, errlen, "weftd closed the connection without a "
                 "reply");
        return -1;
    }
    return 0;
}

static void reply_free(struct reply *r)
{
    free(r->text);
    json_free(&r->doc);
    memset(r, 0, sizeof(*r));
}

/*
 * Ask weftd one command. Returns 0 with the reply in r (the caller frees
 * it with reply_free), or prints why not and returns -1; quietly when a
 * stop signal interrupted it.
 */
static int ctl_request(const struct options *o, const char *cmd,
                       struct reply *r)
{
    int64_t deadline = now_ms() + (int64_t)(o->timeout * 1000);
    char line[64], err[512];
    int fd, rc = -1;

    memset(r, 0, sizeof(*r));
    snprintf(line, sizeof(line), "%s\n", cmd);
    fd = ctl_connect(o->socket, deadline, err, sizeof(err));
    if (fd == -1)
        goto out;
    if (ctl_send(fd, line, deadline, err, sizeof(err)) == 0 &&
        ctl_recv(fd, r, deadline, err, sizeof(err)) == 0)
        rc = 0;
    close(fd);
out:
    if (rc == -1) {
        if (!stop_signal)
            fprintf(stderr, "weftctl: %s: %s\n", cmd, err);
        reply_free(r);
    }
    return rc;
}

/* Report a reply weftctl cannot use; returns EXIT_TROUBLE. */
static int not_understood(const char *cmd, const struct reply *r,
                          const char *why)
{
    int shown = r->len > 200 ? 200 : (int)r->len;

    while (shown > 0 && r->text[shown - 1] == '\n')
        shown--;
    fprintf(stderr, "weftctl: %s: reply not understood (%s): %.*s%s\n", cmd,
            why, shown, r->text, r->len > 200 ? "..." : "");
    return EXIT_TROUBLE;
}

/*
 * Parse a JSON reply and look at its "ok". Returns EXIT_OK, EXIT_REFUSED
 * after printing weftd's error, or EXIT_TROUBLE after saying why the
 * reply is not understood.
 */
static int reply_check(const char *cmd, struct reply *r)
{
    char err[128];
    const struct json_node *root;
    bool ok;

    if (json_parse(&r->doc, r->text, r->len, err, sizeof(err)) == -1)
        return not_understood(cmd, r, err);
    root = json_root(&r->doc);
    if (json_bool(json_get(&r->doc, root, "ok"), &ok) == -1)
        return not_understood(cmd, r, "no \"ok\": true or false");
    if (ok)
        return EXIT_OK;
    const char *msg = json_str(json_get(&r->doc, root, "error"));
    fprintf(stderr, "weftctl: %s: %s\n", cmd,
            msg != NULL ? msg : "weftd refused, without a reason");
    return EXIT_REFUSED;
}

/*
 * Ask for cmd and check the reply, as reply_check does. With --json the
 * reply is printed as received, whatever it says. When EXIT_OK, r holds
 * the reply and its parse; the caller frees it.
 */
static int ask(const struct options *o, const char *cmd, struct reply *r)
{
    int rc;

    if (ctl_request(o, cmd, r) == -1)
        return EXIT_TROUBLE;
    rc = reply_check(cmd, r);
    if (o->json && rc != EXIT_TROUBLE)
        fwrite(r->text, 1, r->len, stdout);
    if (rc != EXIT_OK)
        reply_free(r);
    return rc;
}

/* ---------------------------------------------------------------------
 * Reading values out of replies
 */

/* A counter as exact decimal text, or "-" when missing. */
static void fmt_count(char *buf, size_t size, const struct json_node *n)
{
    uint64_t v;

    if (json_uint(n, &v) == 0)
        snprintf(buf, size, "%" PRIu64, v);
    else
        snprintf(buf, size, "-");
}

/* A number member of obj, or dflt when missing or not a number. */
static double num_of(const struct json_doc *d, const struct json_node *obj,
                     const char *key, double dflt)
{
    double v;

    return json_num(json_get(d, obj, key), &v) == 0 ? v : dflt;
}

/* A string member of obj, or "-". */
static const char *str_of(const struct json_doc *d,
                          const struct json_node *obj, const char *key)
{
    const char *s = json_str(json_get(d, obj, key));

    return s != NULL ? s : "-";
}

/* A worker's state, with "stalled" shown instead of a running state. */
static const char *worker_state(const struct json_doc *d,
                                const struct json_node *w)
{
    bool stalled = false;

    json_bool(json_get(d, w, "stalled"), &stalled);
    return stalled ? "stalled" : str_of(d, w, "state");
}

/* Time since the last heartbeat: 120ms, 1.5s, 2m03s; "-" for none. */
static void fmt_heartbeat(char *buf, size_t size, double ms)
{
    if (ms < 0)
        snprintf(buf, size, "-");
    else if (ms < 1000)
        snprintf(buf, size, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, size, "%.1fs", ms / 1000);
    else
        fmt_duration(buf, size, ms / 1000);
}

/* ---------------------------------------------------------------------
 * stats and workers
 */

/*
 * One line per counter of "totals", with a column for the totals and
 * one per listener. The rows are the members of "totals", in weftd's
 * order, so a counter added to weftd shows without changing weftctl.
 */
static void show_counters(const struct json_doc *d,
                          const struct json_node *root)
{
    const struct json_node *totals = json_get(d, root, "totals");
    const struct json_node *ls = json_get(d, root, "listeners"), *l, *f;
    char buf[32];
    struct table t;

    table_init(&t, 2 + (ls != NULL ? ls->len : 0), "lr");
    table_add(&t, "%s", "");
    table_add(&t, "%s", "total");
    for (l = json_first(d, ls); l != NULL; l = json_next(d, l))
        table_add(&t, "%s", str_of(d, l, "name"));
    for (f = json_first(d, totals); f != NULL; f = json_next(d, f)) {
        if (f->type != JSON_NUMBER)
            continue; /* "latency": shown by show_requests */
        table_add(&t, "%s", f->key);
        fmt_count(buf, sizeof(buf), f);
        table_add(&t, "%s", buf);
        for (l = json_first(d, ls); l != NULL; l = json_next(d, l)) {
            fmt_count(buf, sizeof(buf), json_get(d, l, f->key));
            table_add(&t, "%s", buf);
        }
    }
    table_print(&t, stdout);
}

/*
 * A latency bound in microseconds, short, to three digits: 850us,
 * 2.56ms, 1.05s; null (above the histogram's last bound) as >67.1s, "-"
 * when missing.
 */
static void fmt_latency(char *buf, size_t size, const struct json_node *n)
{
    uint64_t us;

    if (n != NULL && n->type == JSON_NULL)
        snprintf(buf, size, ">%.3gs", (double)STATS_LAT_MAX_US / 1e6);
    else if (json_uint(n, &us) == -1)
        snprintf(buf, size, "-");
    else if (us < 1000)
        snprintf(buf, size, "%" PRIu64 "us", us);
    else if (us < 1000000)
        snprintf(buf, size, "%.3gms", (double)us / 1e3);
    else
        snprintf(buf, size, "%.3gs", (double)us / 1e6);
}

/*
 * One line per listener: requests, answers by status class and, when it
 * answered requests, the latency bounds of half and 99% of them.
 */
static void show_requests(const struct json_doc *d,
                          const struct json_node *root)
{
    static const char *const head[] = {
        "LISTENER", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "P50", "P99",
    };
    static const char *const keys[] = {
        FIELD(requests),      FIELD(responses_2xx), FIELD(responses_3xx),
        FIELD(responses_4xx), FIELD(responses_5xx),
    };
    const struct json_node *ls = json_get(d, root, "listeners");
    char buf[32];
    struct table t;

    table_init(&t, countof(head), "lr");
    for (size_t i = 0; i < countof(head); i++)
        table_add(&t, "%s", head[i]);
    for (const struct json_node *l = json_first(d, ls); l != NULL;
         l = json_next(d, l)) {
        const struct json_node *lat = json_get(d, l, "latency");
        uint64_t n = 0;
        table_add(&t, "%s", str_of(d, l, "name"));
        for (size_t k = 0; k < countof(keys); k++) {
            fmt_count(buf, sizeof(buf), json_get(d, l, keys[k]));
            table_add(&t, "%s", buf);
        }
        json_uint(json_get(d, lat, "count"), &n);
        fmt_latency(buf, sizeof(buf), n ? json_get(d, lat, "p50_us") : NULL);
        table_add(&t, "%s", buf);
        fmt_latency(buf, sizeof(buf), n ? json_get(d, lat, "p99_us") : NULL);
        table_add(&t, "%s", buf);
    }
    table_print(&t, stdout);
}

/*
 * The workers of a stats or workers reply, one line each: slot, pid,
 * generation, state, uptime, heartbeat age and their main counts.
 */
static void show_workers(const struct json_doc *d,
                         const struct json_node *workers)
{
    static const char *const head[] = {
        "SLOT",   "PID",      "GEN",      "STATE", "UPTIME", "HEARTBEAT",
        "ACTIVE", "ACCEPTED", "REQUESTS", "IN",    "OUT",
    };
    char buf[32];
    struct table t;

    table_init(&t, countof(head), "rrrlr");
    for (size_t i = 0; i < countof(head); i++)
        table_add(&t, "%s", head[i]);
    for (const struct json_node *w = json_first(d, workers); w != NULL;
         w = json_next(d, w)) {
        fmt_count(buf, sizeof(buf), json_get(d, w, "slot"));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf), json_get(d, w, "pid"));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf), json_get(d, w, "generation"));
        table_add(&t, "%s", buf);
        table_add(&t, "%s", worker_state(d, w));
        fmt_duration(buf, sizeof(buf), num_of(d, w, "uptime_s", 0));
        table_add(&t, "%s", buf);
        fmt_heartbeat(buf, sizeof(buf), num_of(d, w, "heartbeat_age_ms", -1));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf),
                  json_get(d, w, FIELD(connections_active)));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf),
                  json_get(d, w, FIELD(connections_accepted)));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf), json_get(d, w, FIELD(requests)));
        table_add(&t, "%s", buf);
        fmt_bytes(buf, sizeof(buf), num_of(d, w, FIELD(bytes_in), 0));
        table_add(&t, "%s", buf);
        fmt_bytes(buf, sizeof(buf), num_of(d, w, FIELD(bytes_out), 0));
        table_add(&t, "%s", buf);
    }
    table_print(&t, stdout);
}

/* "weftd 0.1.0, pid 123, up 5m03s, generation 1, 2 workers" */
static void show_summary(const struct json_doc *d,
                         const struct json_node *root)
{
    char up[32], pid[32], gen[32], n[32];

    fmt_duration(up, sizeof(up), num_of(d, root, "uptime_s", 0));
    fmt_count(pid, sizeof(pid), json_get(d, root, "pid"));
    fmt_count(gen, sizeof(gen), json_get(d, root, "generation"));
    fmt_count(n, sizeof(n), json_get(d, root, "workers_configured"));
    printf("weftd %s, pid %s, up %s, generation %s, %s workers\n",
           str_of(d, root, "version"), pid, up, gen, n);
}

static int cmd_stats(const struct options *o, const struct command *c)
{
    struct reply r;
    int rc = ask(o, c->name, &r);

    if (rc != EXIT_OK || o->json)
        goto out;
    const struct json_node *root = json_root(&r.doc);
    show_summary(&r.doc, root);
    putchar('\n');
    show_counters(&r.doc, root);
    putchar('\n');
    show_requests(&r.doc, root);
    putchar('\n');
    show_workers(&r.doc, json_get(&r.doc, root, "workers"));
out:
    reply_free(&r);
    return rc;
}

static int cmd_workers(const struct options *o, const struct command *c)
{
    struct reply r;
    int rc = ask(o, c->name, &r);
    char gen[32];

    if (rc != EXIT_OK || o->json)
        goto out;
    const struct json_node *root = json_root(&r.doc);
    const struct json_node *ws = json_get(&r.doc, root, "workers");
    fmt_count(gen, sizeof(gen), json_get(&r.doc, root, "generation"));
    printf("generation %s, %zu worker processes\n", gen,
           ws != NULL ? ws->len : 0);
    show_workers(&r.doc, ws);
out:
    reply_free(&r);
    return rc;
}

/* ---------------------------------------------------------------------
 * top
 */

/* One poll of stats, and when it was taken. */
struct sample {
    struct reply r;
    int64_t at_ms;
};

/* The per-second rate of counter key between two objects; -1 when
 * either lacks it. A counter never goes back: a smaller value reads 0. */
static double rate_of(const struct json_doc *d1, const struct json_node *a,
                      const struct json_doc *d2, const struct json_node *b,
                      const char *key, double seconds)
{
    uint64_t x, y;

    if (json_uint(json_get(d1, a, key), &x) == -1 ||
        json_uint(json_get(d2, b, key), &y) == -1 || seconds <= 0)
        return -1;
    return y > x ? (double)(y - x) / seconds : 0;
}

/* The worker of the previous poll with the same pid, or NULL (a new
 * process: it has no rate yet). */
static const struct json_node *worker_before(const struct sample *prev,
                                             const struct json_doc *d,
                                             const struct json_node *w)
{
    const struct json_doc *pd = &prev->r.doc;
    const struct json_node *ws = json_get(pd, json_root(pd), "workers");
    uint64_t pid, p;

    if (json_uint(json_get(d, w, "pid"), &pid) == -1)
        return NULL;
    for (const struct json_node *x = json_first(pd, ws); x != NULL;
         x = json_next(pd, x))
        if (json_uint(json_get(pd, x, "pid"), &p) == 0 && p == pid)
            return x;
    return NULL;
}

/* The four rate cells of a row: accepted/s, requests/s, in/s, out/s. */
static void add_rates(struct table *t, const struct json_doc *pd,
                      const struct json_node *a, const struct json_doc *d,
                      const struct json_node *b, double seconds)
{
    static const char *const keys[] = {
        FIELD(connections_accepted), FIELD(requests),
        FIELD(bytes_in), FIELD(bytes_out),
    };
    char buf[32];

    for (size_t k = 0; k < countof(keys); k++) {
        double v = a != NULL ? rate_of(pd, a, d, b, keys[k], seconds) : -1;
        if (v < 0)
            snprintf(buf, sizeof(buf), "-");
        else if (k < 2)
            snprintf(buf, sizeof(buf), "%.0f", v);
        else
            fmt_bytes(buf, sizeof(buf), v);
        table_add(t, "%s", buf);
    }
}

/* One refresh of top: a summary line, then the per-worker rates. */
static void top_show(const struct sample *prev, const struct sample *cur)
{
    static const char *const head[] = {
        "SLOT", "PID", "STATE", "ACTIVE", "ACCEPT/s", "REQ/s", "IN/s",
        "OUT/s",
    };
    const struct json_doc *d = &cur->r.doc, *pd = &prev->r.doc;
    const struct json_node *root = json_root(d);
    double seconds = (double)(cur->at_ms - prev->at_ms) / 1000;
    char buf[32], clock[16] = "";
    time_t now = time(NULL);
    struct tm tm;
    struct table t;

    if (localtime_r(&now, &tm) != NULL)
        strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    fmt_duration(buf, sizeof(buf), num_of(d, root, "uptime_s", 0));
    printf("weftd %s  pid %.0f  up %s  generation %.0f  %s\n",
           str_of(d, root, "version"), num_of(d, root, "pid", 0), buf,
           num_of(d, root, "generation", 0), clock);
    table_init(&t, countof(head), "rrlr");
    for (size_t i = 0; i < countof(head); i++)
        table_add(&t, "%s", head[i]);
    for (const struct json_node *w =
             json_first(d, json_get(d, root, "workers"));
         w != NULL; w = json_next(d, w)) {
        fmt_count(buf, sizeof(buf), json_get(d, w, "slot"));
        table_add(&t, "%s", buf);
        fmt_count(buf, sizeof(buf), json_get(d, w, "pid"));
        table_add(&t, "%s", buf);
        table_add(&t, "%s", worker_state(d, w));
        fmt_count(buf, sizeof(buf),
                  json_get(d, w, FIELD(connections_active)));
        table_add(&t, "%s", buf);
        add_rates(&t, pd, worker_before(prev, d, w), d, w, seconds);
    }
    const struct json_node *tot = json_get(d, root, "totals");
    table_add(&t, "%s", "all");
    table_add(&t, "%s", "");
    table_add(&t, "%s", "");
    fmt_count(buf, sizeof(buf), json_get(d, tot, FIELD(connections_active)));
    table_add(&t, "%s", buf);
    add_rates(&t, pd, json_get(pd, json_root(pd), "totals"), d, tot,
              seconds);
    table_print(&t, stdout);
}

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* SIGINT and SIGTERM end top cleanly: no SA_RESTART, so that a wait
 * returns at once with EINTR. */
static void catch_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Sleep until the monotonic time at_ms, or a stop signal. */
static void sleep_until(int64_t at_ms)
{
    struct timespec ts = { at_ms / 1000, at_ms % 1000 * 1000000 };

    while (!stop_signal &&
           clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
               EINTR)
        ;
}

/* Ask for stats into s; EXIT_OK, or the exit status of the failure. */
static int top_poll(const struct options *o, struct sample *s)
{
    s->at_ms = now_ms();
    return ask(o, "stats", &s->r);
}

/*
 * Poll stats every second and show the rates between two polls, until
 * a signal or o->count refreshes. On a terminal each refresh replaces
 * the last one; otherwise they follow each other.
 */
static int cmd_top(const struct options *o, const struct command *c)
{
    struct sample a = { 0 }, b = { 0 }, *prev = &a, *cur = &b, *tmp;
    bool tty = isatty(STDOUT_FILENO);
    int64_t next = now_ms();
    int rc;

    (void)c;
    catch_stop_signals();
    rc = top_poll(o, prev);
    for (long n = 0; rc == EXIT_OK && (o->count == 0 || n < o->count);
         n++) {
        next += TOP_INTERVAL_MS;
        sleep_until(next);
        if (stop_signal || (rc = top_poll(o, cur)) != EXIT_OK)
            break;
        fputs(tty ? "\033[H\033[2J" : n > 0 ? "\n" : "", stdout);
        top_show(prev, cur);
        fflush(stdout);
        reply_free(&prev->r);
        tmp = prev;
        prev = cur;
        cur = tmp;
    }
    reply_free(&a.r);
    reply_free(&b.r);
    return stop_signal ? EXIT_OK : rc;
}

/* ---------------------------------------------------------------------
 * The other commands
 */

static int cmd_ping(const struct options *o, const struct command *c)
{
    struct reply r;
    double t0 = now_ms_exact();
    int rc = ask(o, c->name, &r);

    if (rc == EXIT_OK && !o->json)
        printf("weftd answers on %s (%.1f ms)\n", o->socket,
               now_ms_exact() - t0);
    reply_free(&r);
    return rc;
}

static int cmd_version(const struct options *o, const struct command *c)
{
    struct reply r;
    int rc = ask(o, c->name, &r);

    if (rc == EXIT_OK && !o->json)
        printf("weftd %s (weftctl %s)\n",
               str_of(&r.doc, json_root(&r.doc), "version"), PACKAGE_VERSION);
    reply_free(&r);
    return rc;
}

/*
 * Ask, and on success say what was done: before, the reply's numeric
 * field (if field is not NULL), after.
 */
static int ask_say(const struct options *o, const struct command *c,
                   const char *before, const char *field, const char *after)
{
    struct reply r;
    int rc = ask(o, c->name, &r);
    char v[32] = "";

    if (rc == EXIT_OK && !o->json) {
        if (field != NULL)
            fmt_count(v, sizeof(v),
                      json_get(&r.doc, json_root(&r.doc), field));
        printf("%s%s%s\n", before, v, after);
    }
    reply_free(&r);
    return rc;
}

static int cmd_reload(const struct options *o, const struct command *c)
{
    return ask_say(o, c, "reloaded: generation ", "generation", " serves");
}

static int cmd_stop(const struct options *o, const struct command *c)
{
    return ask_say(o, c, "weftd is stopping", NULL, "");
}

static int cmd_reopen(const struct options *o, const struct command *c)
{
    return ask_say(o, c, "log file reopened", NULL, "");
}

static int cmd_upgrade(const struct options *o, const struct command *c)
{
    return ask_say(o, c, "upgraded: weftd pid ", "pid", " serves");
}

/* The commands weftd itself lists, with their help. */
static int cmd_help(const struct options *o, const struct command *c)
{
    struct reply r;
    int rc = ask(o, c->name, &r);
    struct table t;

    if (rc != EXIT_OK || o->json)
        goto out;
    const struct json_node *cmds =
        json_get(&r.doc, json_root(&r.doc), "commands");
    table_init(&t, 2, "ll");
    for (const struct json_node *x = json_first(&r.doc, cmds); x != NULL;
         x = json_next(&r.doc, x)) {
        table_add(&t, "  %s", str_of(&r.doc, x, "name"));
        table_add(&t, "%s", str_of(&r.doc, x, "help"));
    }
    printf("weftd at %s knows:\n", o->socket);
    table_print(&t, stdout);
out:
    reply_free(&r);
    return rc;
}

/*
 * Prometheus text is printed as is. An error comes as JSON even here:
 * a reply starting with '{' is checked like any other.
 */
static int cmd_metrics(const struct options *o, const struct command *c)
{
    struct reply r;
    int rc = EXIT_OK;

    if (ctl_request(o, c->name, &r) == -1)
        return EXIT_TROUBLE;
    if (r.text[0] == '{')
        rc = reply_check(c->name, &r);
    if (rc == EXIT_OK)
        fwrite(r.text, 1, r.len, stdout);
    reply_free(&r);
    return rc;
}

static const struct command commands[] = {
    { "ping", "check that weftd answers", cmd_ping },
    { "version", "print weftd's version", cmd_version },
    { "stats", "counters: totals, per listener, per worker", cmd_stats },
    { "workers", "worker processes: pid, state, uptime, heartbeat, counts",
      cmd_workers },
    { "top", "per-worker rates, refreshed every second", cmd_top },
    { "metrics", "the counters as Prometheus text", cmd_metrics },
    { "reload", "load the configuration again", cmd_reload },
    { "stop", "stop the workers and weftd, gracefully", cmd_stop },
    { "reopen", "reopen the log file (after it was rotated)", cmd_reopen },
    { "upgrade", "exec the new weftd binary, handing over the sockets",
      cmd_upgrade },
    { "help", "list the commands weftd itself knows", cmd_help },
};

/* ---------------------------------------------------------------------
 * Options
 */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: weftctl [-s SOCKET] [--json] [-t SECONDS] COMMAND\n"
            "       weftctl [-s SOCKET] [-n COUNT] top\n"
            "  -s, --socket SOCKET  weftd's control socket (default %s)\n"
            "  -j, --json           print weftd's JSON replies as "
            "received\n"
            "  -n, --count COUNT    top: stop after COUNT refreshes\n"
            "  -t, --timeout SECS   give up on a request after SECS "
            "(default %.0f)\n"
            "  -V, --version        print weftctl's version and exit\n"
            "  -h, --help           print this help and exit\n"
            "commands:\n",
            DEFAULT_SOCKET, DEFAULT_TIMEOUT);
    for (size_t i = 0; i < countof(commands); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "exit status: 0 ok, 1 weftd answered with an error, 2 "
                 "weftd not reached,\n  no reply in time, reply not "
                 "understood, or a usage error\n");
}

/* A usage error: the message, a pointer to -h, exit 2. */
__attribute__((noreturn, format(printf, 1, 2)))
static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("weftctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (weftctl -h for help)\n", stderr);
    exit(EXIT_TROUBLE);
}

/* A number in [min, max] from an option argument, or a usage error. */
static double number_arg(const char *opt, const char *arg, double min,
                         double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= min && v <= max))
        usage_error("%s: expected a number from %g to %g, got '%s'", opt,
                    min, max, arg);
    return v;
}

/* A count of at least 1 from an option argument, or a usage error. */
static long count_arg(const char *opt, const char *arg)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < 1)
        usage_error("%s: expected a whole number from 1, got '%s'", opt,
                    arg);
    return v;
}

/* Parse argv into *o; returns the command. Exits on -h, -V, errors. */
static const struct command *parse_args(int argc, char **argv,
                                        struct options *o)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "count", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "s:jn:t:Vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': o->socket = optarg; break;
        case 'j': o->json = true; break;
        case 'n': o->count = count_arg("-n", optarg); break;
        case 't': o->timeout = number_arg("-t", optarg, 0.001, 86400); break;
        case 'V': printf("weftctl %s\n", PACKAGE_VERSION); exit(EXIT_OK);
        case 'h': usage(stdout); exit(EXIT_OK);
        default: usage(stderr); exit(EXIT_TROUBLE);
        }
    }
    if (optind == argc)
        usage_error("no command");
    if (optind + 1 < argc)
        usage_error("one command at a time: unexpected '%s'",
                    argv[optind + 1]);
    for (size_t i = 0; i < countof(commands); i++)
        if (strcmp(argv[optind], commands[i].name) == 0) {
            if (o->count != 0 && commands[i].run != cmd_top)
                usage_error("-n applies to top only");
            return &commands[i];
        }
    usage_error("unknown command '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
    struct options o = { DEFAULT_SOCKET, false, 0, DEFAULT_TIMEOUT };
    const struct command *c = parse_args(argc, argv, &o);
    int rc = c->run(&o, c);

    if (fflush(stdout) == EOF || ferror(stdout)) {
        fprintf(stderr, "weftctl: writing the output: %s\n",
                strerror(errno));
        return EXIT_TROUBLE;
    }
    return rc;
}
