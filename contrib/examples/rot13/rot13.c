/*
 * rot13: a weft module built out of tree, against the installed
 * <weft/weft.h> and <weft/framing.h> only. It carries two protocols:
 *
 *   rot13  every line received comes back rot13'ed; an optional greeting
 *          line on connect; a line longer than max_line gets an error
 *          line and the connection is closed. Settings, both optional:
 *              rot13 = { max_line = 1024; greeting = "rot13 ready"; };
 *   time   on connect, one line with the current UTC time in ISO 8601
 *          ("2026-11-24T09:30:00Z"), then the connection is closed
 *          (RFC 868's idea, in text).
 *
 * Build with the Makefile next to this file; see README.md.
 */
/* strdup and gmtime_r, also with -std=c11 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/framing.h>
#include <weft/weft.h>

#define ROT13_MAX_LINE_DEFAULT 1024
#define ROT13_MAX_LINE_LIMIT (1024 * 1024)

/* What configure hands to the workers, one per rot13 listener. */
struct rot13_conf {
    struct weft_lines lines;
    char *greeting; /* NULL: no greeting */
};

/*
 * Runs in the supervisor. Returns a malloc'ed rot13_conf owned by weft
 * until rot13_unconfigure, or NULL after reporting an error (weft then
 * refuses the configuration, so NULL never reaches a worker).
 */
static void *rot13_configure(struct weft_settings *s)
{
    struct rot13_conf *rc = NULL;
    long long max_line;
    const char *greeting;
    int bad = 0;

    /* Every key is read, even after an error: one left unread is
     * refused as unknown, which would be a second, wrong, complaint. */
    if (weft_settings_int(s, "max_line", 1, ROT13_MAX_LINE_LIMIT,
                          ROT13_MAX_LINE_DEFAULT, &max_line) == -1)
        bad = 1;
    if (weft_settings_string(s, "greeting", NULL, &greeting) == -1) {
        bad = 1;
    } else if (greeting != NULL && strpbrk(greeting, "\r\n") != NULL) {
        /* The greeting is one line: a newline inside would split it. */
        weft_settings_error(s, "greeting", "must be a single line");
        bad = 1;
    }
    if (bad)
        return NULL;

    if ((rc = calloc(1, sizeof(*rc))) == NULL)
        goto nomem;
    rc->lines.delim = "\n";
    rc->lines.delim_len = 1;
    rc->lines.max_line = (size_t)max_line;
    /* Settings strings die when configure returns: keep a copy. */
    if (greeting != NULL && (rc->greeting = strdup(greeting)) == NULL)
        goto nomem;
    return rc;
nomem:
    weft_settings_error(s, NULL, "out of memory");
    free(rc);
    return NULL;
}

static void rot13_unconfigure(void *conf)
{
    struct rot13_conf *rc = conf;

    if (rc == NULL)
        return;
    free(rc->greeting);
    free(rc);
}

static const struct rot13_conf *rot13_conf_of(struct weft_conn *c)
{
    return weft_listener_conf(weft_conn_listener(c));
}

static void rot13_connection_made(struct weft_conn *c)
{
    const struct rot13_conf *rc = rot13_conf_of(c);
    static char nl[] = "\n";
    struct iovec iov[2];

    if (rc->greeting == NULL)
        return;
    iov[0].iov_base = rc->greeting;
    iov[0].iov_len = strlen(rc->greeting);
    iov[1].iov_base = nl;
    iov[1].iov_len = 1;
    (void)weft_conn_writev(c, iov, 2);
}

/* Letters move 13 places, everything else (bytes >= 0x80 too) stays. */
static char rot13_char(char ch)
{
    if ((ch >= 'a' && ch <= 'm') || (ch >= 'A' && ch <= 'M'))
        return (char)(ch + 13);
    if ((ch >= 'n' && ch <= 'z') || (ch >= 'N' && ch <= 'Z'))
        return (char)(ch - 13);
    return ch;
}

/*
 * weft_frame_fn for one line (without its "\n"; a "\r" before it stays
 * in the line and so comes back too). Returns non-zero to stop parsing
 * when the peer must slow down or the connection is going away: the
 * lines left are presented again after weft_conn_resume.
 */
static int rot13_line(void *arg, const char *line, size_t len)
{
    struct weft_conn *c = arg;
    char out[4096];
    int full = 0, rv;

    /* weft_conn_write copies, so one small buffer serves every chunk. */
    while (len > 0) {
        size_t n = len < sizeof(out) ? len : sizeof(out);
        for (size_t i = 0; i < n; i++)
            out[i] = rot13_char(line[i]);
        if ((rv = weft_conn_write(c, out, n)) == -1)
            return 1; /* closing: connection_lost follows */
        full |= rv;
        line += n;
        len -= n;
    }
    if ((rv = weft_conn_write(c, "\n", 1)) == -1)
        return 1;
    full |= rv;
    if (full)
        weft_conn_pause(c); /* resumed by rot13_writable */
    return full;
}

/*
 * The connection data of a rot13 connection that refused a line: what
 * the peer still sends is read and dropped, because closing a socket with
 * unread input makes the kernel send a reset, which may destroy the error
 * line before the peer has read it.
 */
static char rot13_draining;

#define ROT13_DRAIN_MS 5000

static size_t rot13_data(struct weft_conn *c, const char *data, size_t len)
{
    const struct rot13_conf *rc = rot13_conf_of(c);
    char err[64];
    long used;
    int n;

    if (weft_conn_data(c) == &rot13_draining)
        return len;
    used = weft_lines_parse(&rc->lines, data, len, rot13_line, c);
    if (used != WEFT_FRAME_TOO_LONG)
        return (size_t)used;
    n = snprintf(err, sizeof(err), "error: line longer than %zu bytes\n",
                 rc->lines.max_line);
    (void)weft_conn_write(c, err, (size_t)n);
    /* FIN after the error line; then wait a little for the peer's. */
    weft_conn_shutdown(c);
    weft_conn_set_idle_timeout(c, ROT13_DRAIN_MS);
    weft_conn_set_data(c, &rot13_draining);
    return len;
}

static void rot13_writable(struct weft_conn *c)
{
    weft_conn_resume(c);
}

static const struct weft_protocol rot13_protocol = {
    .name = "rot13",
    .configure = rot13_configure,
    .unconfigure = rot13_unconfigure,
    .connection_made = rot13_connection_made,
    .data_received = rot13_data,
    .writable = rot13_writable,
};

/* ---- time ------------------------------------------------------------- */

static void time_connection_made(struct weft_conn *c)
{
    static const char err[] = "error: no clock\n";
    char line[64];
    struct tm tm;
    time_t now;
    size_t n;

    now = time(NULL);
    if (now == (time_t)-1 || gmtime_r(&now, &tm) == NULL ||
        (n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ\n", &tm)) == 0)
        (void)weft_conn_write(c, err, sizeof(err) - 1);
    else
        (void)weft_conn_write(c, line, n);
    weft_conn_close(c);
}

/* A stream protocol must read: whatever the peer sends is ignored. */
static size_t time_data(struct weft_conn *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    return len;
}

static const struct weft_protocol time_protocol = {
    .name = "time",
    .connection_made = time_connection_made,
    .data_received = time_data,
};

/* ---- the module ------------------------------------------------------- */

static const struct weft_protocol *const protos[] = {
    &rot13_protocol,
    &time_protocol,
    NULL,
};

/* Declared first, for -Wmissing-variable-declarations (clang). */
extern const struct weft_module weft_module;
const struct weft_module weft_module = {
    .abi = WEFT_ABI_VERSION,
    .name = "rot13",
    .protocols = protos,
};
