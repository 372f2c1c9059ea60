/*
 * bus_probe: a test module that puts the message bus (weft/bus.h) on a
 * line protocol, so integration tests can drive it from sockets.
 *
 *   ID                     -> "OK <bus id> <slot>"
 *   SUB <topic>            -> "OK"; then "MSG <from> <topic> <data>" lines
 *   PSUB <prefix>          -> the same for every topic with that prefix
 *   WATCH                  -> "OK"; then "PEER <id> JOIN|LEAVE" lines
 *   PUB <topic> <data>     -> "OK" or "ERR <errno name>"
 *   SEND <id> <topic> <data>
 *   BURST <n> <topic> <data> -> publishes n messages "<data> <i>",
 *                             "OK <n> <refused>"
 *   CLAIM|RELEASE|OWNER <name> -> "OK [<id>]" or "ERR ..."
 *   SLOT <slot>            -> "OK <bus id of the slot's worker>"
 *   MAX                    -> "OK <max message bytes>"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/bus.h>
#include <weft/framing.h>
#include <weft/weft.h>

#define PROBE_SUBS 16

struct probe {
    struct weft_conn *c;
    struct weft_bus_sub *subs[PROBE_SUBS];
    int nsubs;
};

static void say(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct probe *p, const char *fmt, ...)
{
    char line[70000];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    weft_conn_write(p->c, line, (size_t)n);
}

static void say_rc(struct probe *p, int rc)
{
    if (rc == 0)
        say(p, "OK");
    else
        say(p, "ERR %s", strerrorname_np(errno));
}

static void on_msg(const struct weft_bus_msg *m, void *arg)
{
    say(arg, "MSG %d %s %.*s", m->from, m->topic, (int)m->len,
        (const char *)m->data);
}

static void on_peer(int id, int joined, void *arg)
{
    say(arg, "PEER %d %s", id, joined ? "JOIN" : "LEAVE");
}

static void add_sub(struct probe *p, struct weft_bus_sub *s)
{
    if (s == NULL) {
        say(p, "ERR %s", strerrorname_np(errno));
    } else if (p->nsubs == PROBE_SUBS) {
        weft_bus_unsubscribe(s);
        say(p, "ERR too many");
    } else {
        p->subs[p->nsubs++] = s;
        say(p, "OK");
    }
}

/* Split "a b rest": the word at *s, NUL-terminated; *s moves past it. */
static char *word(char **s)
{
    char *w = *s, *sp = strchr(w, ' ');

    if (sp != NULL) {
        *sp = '\0';
        *s = sp + 1;
    } else {
        *s = w + strlen(w);
    }
    return w;
}

static int on_line(void *arg, const char *frame, size_t len)
{
    struct probe *p = arg;
    char *line = strndup(frame, len), *rest = line, *cmd, *topic;

    if (line == NULL)
        return -1;
    if (len > 0 && line[len - 1] == '\r')
        line[len - 1] = '\0';
    cmd = word(&rest);
    if (strcmp(cmd, "ID") == 0) {
        say(p, "OK %d %d", weft_bus_id(), weft_worker_slot());
    } else if (strcmp(cmd, "SUB") == 0 || strcmp(cmd, "PSUB") == 0) {
        add_sub(p, weft_bus_subscribe(rest, cmd[0] == 'P', on_msg, p));
    } else if (strcmp(cmd, "WATCH") == 0) {
        add_sub(p, weft_bus_watch_peers(on_peer, p));
    } else if (strcmp(cmd, "PUB") == 0) {
        topic = word(&rest);
        say_rc(p, weft_bus_publish(topic, rest, strlen(rest)));
    } else if (strcmp(cmd, "SEND") == 0) {
        int to = atoi(word(&rest));
        topic = word(&rest);
        say_rc(p, weft_bus_send(to, topic, rest, strlen(rest)));
    } else if (strcmp(cmd, "BURST") == 0) {
        int n = atoi(word(&rest)), refused = 0;
        char buf[65536];
        topic = word(&rest);
        for (int i = 0; i < n; i++) {
            int k = snprintf(buf, sizeof(buf), "%s %d", rest, i);
            if (weft_bus_publish(topic, buf, (size_t)k) == -1)
                refused++;
        }
        say(p, "OK %d %d", n, refused);
    } else if (strcmp(cmd, "CLAIM") == 0) {
        say_rc(p, weft_bus_name_claim(rest));
    } else if (strcmp(cmd, "RELEASE") == 0) {
        say_rc(p, weft_bus_name_release(rest));
    } else if (strcmp(cmd, "OWNER") == 0) {
        say(p, "OK %d", weft_bus_name_owner(rest));
    } else if (strcmp(cmd, "SLOT") == 0) {
        say(p, "OK %d", weft_bus_slot_id(atoi(rest)));
    } else if (strcmp(cmd, "MAX") == 0) {
        say(p, "OK %zu", weft_bus_max_message());
    } else {
        say(p, "ERR unknown command");
    }
    free(line);
    return 0;
}

static void probe_made(struct weft_conn *c)
{
    struct probe *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        weft_conn_abort(c);
        return;
    }
    p->c = c;
    weft_conn_set_data(c, p);
}

static size_t probe_data(struct weft_conn *c, const char *data, size_t len)
{
    static const struct weft_lines lines = {"\n", 1, 65536};
    long n = weft_lines_parse(&lines, data, len, on_line, weft_conn_data(c));

    if (n < 0) {
        weft_conn_abort(c);
        return len;
    }
    return (size_t)n;
}

static void probe_lost(struct weft_conn *c, enum weft_close_reason why)
{
    struct probe *p = weft_conn_data(c);

    (void)why;
    if (p == NULL)
        return;
    for (int i = 0; i < p->nsubs; i++)
        weft_bus_unsubscribe(p->subs[i]);
    free(p);
}

static const struct weft_protocol probe_protocol = {
    .name = "bus_probe",
    .connection_made = probe_made,
    .data_received = probe_data,
    .connection_lost = probe_lost,
};

static const struct weft_protocol *const protocols[] = {&probe_protocol,
                                                        NULL};

const struct weft_module weft_module = {
    .abi = WEFT_ABI_VERSION,
    .name = "bus_probe",
    .protocols = protocols,
};
