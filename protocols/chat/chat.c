/*
 * chat: a line-based chat server whose users and rooms span every worker.
 *
 *   chat = { max_line = 512; max_rooms = 20; max_room_users = 1000;
 *            rate = 10; burst = 20; max_output = 262144; };
 *
 * Commands (the word in any case), one per line (LF, CRLF accepted):
 * NICK name, JOIN #room, PART #room, MSG #room text, MSG nick text,
 * NAMES #room, QUIT [reason]. Every line the server sends starts with a
 * status or event word: OK, ERR, HELLO, JOIN, PART, MSG, PRIV, NAMES,
 * QUIT, NICK (README.md shows a session).
 *
 * Design. A client is served by the worker that accepted it; the users
 * of a room are spread over every worker. Each worker keeps a replica of
 * the whole listener's state (state.c): every user, of any worker, with
 * the bus id of its worker, and every room with its members. Replicas
 * change only through records on the message bus, topic
 * "chat/<listener>" (record.c): NICK (a new user or a new nick), JOIN,
 * PART, QUIT (a user gone) and MSG to a room go to every worker; PRIV goes
 * to the worker holding the nick (weft_bus_name_owner) and SYNC to one
 * peer. A worker applies a change when the record comes off the bus, its
 * own records included (they come back through its own ring), never when
 * it makes it: the bus delivers one worker's records to everyone in the
 * order they were made, so every replica applies each worker's changes in
 * the same order and a room's members, local and remote alike, get its
 * messages exactly once, in each sender's order. A user is keyed by
 * (bus id, uid), not by nick, so a nick that moves between workers never
 * mixes up two users while records are in flight.
 *
 * Commands are checked against the client's own state (command.c): its
 * nick, and its rooms as this worker published them, which is also what
 * a SYNC tells. Nicks are unique across the server through the bus's name
 * registry ("<listener>/<nick>", so two chat listeners are two
 * namespaces); a nick changes by claiming the new one, then giving back
 * the old one.
 *
 * Peers (event.c). A worker that comes onto the bus is sent a SYNC: this
 * worker's users and their rooms. Its first record replaces what the
 * receiver had of this worker, so a replacement worker that took the bus
 * id of a dead one starts clean. A worker that leaves (it exited or was
 * killed) takes its users with it: each replica drops them and tells the
 * local members of their rooms "QUIT nick worker gone"; the registry
 * frees their nicks by itself. The bus reports a worker gone only after
 * the last of its records (bus.h), so nothing of it comes back after.
 *
 * A full ring (outbox.c). Every record is sent receiver by receiver;
 * what a full ring refuses waits in that receiver's FIFO outbox, retried
 * from a 2 ms timer, and later records for it queue behind, so no
 * membership record is lost or reordered for a receiver that lives. A
 * user's MSG is refused with ERR BUSY while a receiver has an outbox, and
 * is then sent to nobody; once sent to one worker it reaches all.
 *
 * Limits: max_line (ERR TOOLONG, the line is skipped), max_rooms and
 * max_room_users (the room's size as this worker's replica knows it), a
 * token bucket of rate MSG per second up to burst (ERR RATE), and
 * max_output, the hard limit of a client's output queue: a client that
 * does not read is aborted (counted in connections_aborted) and never
 * slows its rooms.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocols/chat/chat.h"
#include "protocols/registry.h"
#include "shared/util.h"
#include "weft/framing.h"

#define CHAT_LINE_MAX 65536
#define CHAT_OUTPUT_MIN 1024
#define CHAT_OUTPUT_MAX (1LL << 30)

/* ---- configuration (supervisor) ----------------------------------------- */

/* Read one integer key of the chat group; false after reporting it. */
static bool chat_setting(struct weft_settings *s, const char *key,
                         long long min, long long max, long long def,
                         long long *out)
{
    return weft_settings_int(s, key, min, max, def, out) != -1;
}

/*
 * Read the chat group. Returns a malloc'd chat_conf, or NULL after
 * reporting what is wrong.
 */
static void *chat_configure(struct weft_settings *s)
{
    long long line, rooms, users, rate, burst, output;
    struct chat_conf *conf;
    bool ok = true;

    ok &= chat_setting(s, "max_line", 1, CHAT_LINE_MAX, 512, &line);
    ok &= chat_setting(s, "max_rooms", 1, 100000, 20, &rooms);
    ok &= chat_setting(s, "max_room_users", 1, 10000000, 1000, &users);
    ok &= chat_setting(s, "rate", 1, 1000000, 10, &rate);
    ok &= chat_setting(s, "burst", 1, 1000000, 20, &burst);
    ok &= chat_setting(s, "max_output", CHAT_OUTPUT_MIN, CHAT_OUTPUT_MAX,
                       256 * 1024, &output);
    if (!ok)
        return NULL;
    if ((conf = malloc(sizeof(*conf))) == NULL) {
        weft_settings_error(s, NULL, "out of memory");
        return NULL;
    }
    *conf = (struct chat_conf){
        .max_line = (size_t)line,
        .max_rooms = (unsigned)rooms,
        .max_room_users = (size_t)users,
        .rate = (unsigned)rate,
        .burst = (unsigned)burst,
        .max_output = (size_t)output,
    };
    return conf;
}

static void chat_unconfigure(void *conf)
{
    free(conf);
}

size_t chat_rec_max(const struct chat_conf *conf)
{
    return 1 + 8 + 1 + CHAT_NICK_MAX + 1 + CHAT_ROOM_MAX + conf->max_line;
}

/* ---- the per-worker server ---------------------------------------------- */

/*
 * The nicks' namespace in the registry: the listener's name, or, when
 * "<name>/<nick>" would not fit a registry name, its first characters
 * and a hash of the whole (the same in every worker).
 */
static void chat_namespace(struct chat_server *srv, const char *name)
{
    size_t len = strlen(name);

    if (len <= CHAT_NS_MAX) {
        memcpy(srv->ns, name, len + 1);
        return;
    }
    snprintf(srv->ns, sizeof(srv->ns), "%.*s~%08x", CHAT_NS_MAX - 9, name,
             (unsigned)chat_hash(name, len));
}

void chat_name(const struct chat_server *srv, const char *nick,
               size_t nick_len, char buf[WEFT_BUS_NAME_MAX + 1])
{
    snprintf(buf, WEFT_BUS_NAME_MAX + 1, "%s/%.*s", srv->ns, (int)nick_len,
             nick);
}

static void chat_stop(struct weft_listener *l)
{
    struct chat_server *srv = weft_listener_data(l);

    if (srv == NULL)
        return;
    weft_bus_unsubscribe(srv->sub);
    weft_bus_unsubscribe(srv->watch);
    chat_out_free(srv);
    chat_state_free(&srv->st);
    chat_map_free(&srv->by_uid);
    chat_map_free(&srv->by_nick);
    free(srv->scratch);
    free(srv);
    weft_listener_set_data(l, NULL);
}

/*
 * The listener's state in this worker: an empty replica, and the worker
 * on the bus (subscribed to the listener's topic, watching peers).
 * Returns 0, or -1 (logged) when there is no bus or no memory.
 */
static int chat_start(struct weft_listener *l)
{
    struct chat_server *srv = calloc(1, sizeof(*srv));
    const char *name = weft_listener_name(l);

    if (srv == NULL)
        goto nomem;
    weft_listener_set_data(l, srv);
    srv->l = l;
    srv->conf = weft_listener_conf(l);
    srv->self = weft_bus_id();
    srv->nids = weft_bus_ids();
    if (srv->self < 0) {
        weft_log(WEFT_LOG_ERROR, "chat: %s: weftd has no message bus", name);
        goto fail;
    }
    srv->next_uid = (uint64_t)getpid() << 32;
    chat_namespace(srv, name);
    snprintf(srv->topic, sizeof(srv->topic), "chat/%s", name);
    if (chat_state_init(&srv->st, srv->self, srv->nids) == -1 ||
        chat_out_init(srv) == -1 ||
        (srv->scratch = malloc(chat_rec_max(srv->conf))) == NULL)
        goto nomem;
    srv->sub = weft_bus_subscribe(srv->topic, 0, chat_event_recv, srv);
    srv->watch = weft_bus_watch_peers(chat_event_peer, srv);
    if (srv->sub == NULL || srv->watch == NULL) {
        weft_log(WEFT_LOG_ERROR, "chat: %s: cannot join the bus: %m", name);
        goto fail;
    }
    return 0;
nomem:
    weft_log(WEFT_LOG_ERROR, "chat: %s: out of memory", name);
fail:
    chat_stop(l);
    return -1;
}

/* ---- clients ------------------------------------------------------------ */

int chat_say(struct chat_client *cl, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return 0;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if ((rc = weft_conn_write(cl->c, line, (size_t)n)) == 1)
        cl->full = true;
    return rc;
}

struct chat_client *chat_client_by_uid(const struct chat_server *srv,
                                       uint64_t uid)
{
    uint64_t h = chat_hash((const char *)&uid, 8);

    for (struct chat_hnode *n = chat_map_chain(&srv->by_uid, h); n != NULL;
         n = n->next) {
        struct chat_client *cl = container_of(n, struct chat_client, by_uid);
        if (n->hash == h && cl->uid == uid)
            return cl;
    }
    return NULL;
}

struct chat_client *chat_client_by_nick(const struct chat_server *srv,
                                        struct chat_slice nick)
{
    uint64_t h = chat_hash(nick.p, nick.len);

    for (struct chat_hnode *n = chat_map_chain(&srv->by_nick, h); n != NULL;
         n = n->next) {
        struct chat_client *cl = container_of(n, struct chat_client, by_nick);
        if (n->hash == h && strlen(cl->nick) == nick.len &&
            memcmp(cl->nick, nick.p, nick.len) == 0)
            return cl;
    }
    return NULL;
}

static void chat_made(struct weft_conn *c)
{
    struct chat_server *srv = weft_listener_data(weft_conn_listener(c));
    struct chat_client *cl = calloc(1, sizeof(*cl));
    size_t max = srv->conf->max_output;

    if (cl == NULL) {
        weft_log(WEFT_LOG_ERROR, "chat: out of memory for a client");
        weft_conn_abort(c);
        return;
    }
    cl->c = c;
    cl->srv = srv;
    cl->uid = ++srv->next_uid;
    cl->tokens = srv->conf->burst; /* last = 0: the bucket is full */
    weft_conn_set_data(c, cl);
    weft_conn_set_watermarks(c, max / 2, max / 8, max);
    chat_say(cl, "HELLO weft-chat");
}

/* What one weft_lines_parse call went through. */
struct chat_input {
    struct chat_client *cl;
    size_t used; /* bytes of the lines handed over, LFs included */
};

static void chat_too_long(struct chat_client *cl)
{
    weft_count(cl->srv->l, WEFT_COUNT_REQUESTS, 1);
    weft_count(cl->srv->l, WEFT_COUNT_ERRORS, 1);
    chat_say(cl, "ERR TOOLONG");
}

static int chat_on_line(void *arg, const char *line, size_t len)
{
    struct chat_input *in = arg;
    size_t n = len > 0 && line[len - 1] == '\r' ? len - 1 : len;

    in->used += len + 1;
    if (n > in->cl->srv->conf->max_line) {
        chat_too_long(in->cl);
        return in->cl->full ? 1 : 0;
    }
    return chat_command(in->cl, line, len);
}

/*
 * Hand each whole line to chat_command. A line over max_line is answered
 * ERR TOOLONG and skipped up to its LF, however many reads that takes;
 * the connection goes on. Stops early at QUIT (the rest is dropped) and
 * when a reply passed the high mark (input paused until writable).
 */
static size_t chat_data(struct weft_conn *c, const char *data, size_t len)
{
    struct chat_client *cl = weft_conn_data(c);
    size_t done = 0;

    if (cl == NULL)
        return len; /* connection_made failed: aborted */
    const struct weft_lines lines = {"\n", 1, cl->srv->conf->max_line + 1};
    while (done < len && !cl->quit) {
        if (cl->discarding) {
            const char *nl = memchr(data + done, '\n', len - done);
            if (nl == NULL)
                return len;
            done = (size_t)(nl - data) + 1;
            cl->discarding = false;
            continue;
        }
        struct chat_input in = {cl, 0};
        long n = weft_lines_parse(&lines, data + done, len - done,
                                  chat_on_line, &in);
        if (n >= 0) {
            done += (size_t)n;
            if (cl->full && !cl->quit)
                weft_conn_pause(c);
            return cl->quit ? len : done;
        }
        done += in.used; /* the lines before the long one */
        chat_too_long(cl);
        cl->discarding = true;
    }
    return len;
}

/* The client reads again: take its commands again. */
static void chat_writable(struct weft_conn *c)
{
    struct chat_client *cl = weft_conn_data(c);

    if (cl == NULL)
        return;
    cl->full = false;
    weft_conn_resume(c);
}

static void chat_lost(struct weft_conn *c, enum weft_close_reason why)
{
    struct chat_client *cl = weft_conn_data(c);
    struct chat_user *u;

    (void)why;
    if (cl == NULL)
        return;
    chat_client_gone(cl);
    u = chat_user_find(&cl->srv->st, cl->srv->self, cl->uid);
    if (u != NULL)
        u->client = NULL; /* its QUIT is on its way */
    free(cl->rooms);
    free(cl);
}

const struct weft_protocol chat_protocol = {
    .name = "chat",
    .configure = chat_configure,
    .unconfigure = chat_unconfigure,
    .start = chat_start,
    .stop = chat_stop,
    .connection_made = chat_made,
    .data_received = chat_data,
    .writable = chat_writable,
    .connection_lost = chat_lost,
};
