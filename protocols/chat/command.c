/*
 * chat: a client's commands. A command checks what it can against the
 * client's own state (its nick and rooms as this worker published them),
 * sends its record and answers at once; the change itself reaches the
 * replicas, this worker's included, through the bus (event.c), and the
 * events the room sees come from there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/chat/chat.h"
#include "shared/strbuf.h"

/* The longest command word an ERR UNKNOWN echoes. */
#define CHAT_WORD_ECHO 32

static const struct chat_slice chat_none = {"", 0};

/* An ERR reply; bad: caused by bad input, counted as a protocol error. */
static void chat_err(struct chat_client *cl, bool bad, const char *what,
                     struct chat_slice arg)
{
    if (bad)
        weft_count(cl->srv->l, WEFT_COUNT_ERRORS, 1);
    if (arg.len == 0)
        chat_say(cl, "ERR %s", what);
    else
        chat_say(cl, "ERR %s %.*s", what, (int)arg.len, arg.p);
}

/* Build cl's record of type t in the server's scratch buffer. */
static size_t chat_rec_build(struct chat_client *cl, enum chat_rec_type t,
                             struct chat_slice arg, struct chat_slice text)
{
    struct chat_rec r = {
        .type = t,
        .uid = cl->uid,
        .nick = {cl->nick, strlen(cl->nick)},
        .arg = arg,
        .text = text,
    };

    return chat_rec_encode(&r, cl->srv->scratch);
}

/* Send a membership record of cl to every worker. */
static void chat_publish(struct chat_client *cl, enum chat_rec_type t,
                         struct chat_slice arg, struct chat_slice text)
{
    size_t len = chat_rec_build(cl, t, arg, text);

    chat_out_all(cl->srv, cl->srv->scratch, len);
}

/* ---- NICK --------------------------------------------------------------- */

/* Claim nick in the registry for cl; false after answering why not. */
static bool chat_nick_claim(struct chat_client *cl, struct chat_slice nick)
{
    char key[WEFT_BUS_NAME_MAX + 1];

    chat_name(cl->srv, nick.p, nick.len, key);
    if (weft_bus_name_claim(key) == 0)
        return true;
    if (errno == EEXIST)
        chat_err(cl, false, "NICKINUSE", nick);
    else
        chat_err(cl, false, "BUSY", chat_none);
    return false;
}

/*
 * cl is called nick (claimed) from now on: its old nick, copied to old
 * ("" for none), is given back and the maps follow. -1 when memory is
 * short; cl is named anyway, so that leaving gives the nick back.
 */
static int chat_nick_set(struct chat_client *cl, struct chat_slice nick,
                         char old[CHAT_NICK_MAX + 1])
{
    struct chat_server *srv = cl->srv;
    char key[WEFT_BUS_NAME_MAX + 1];
    bool first = !cl->named;

    memcpy(old, cl->nick, CHAT_NICK_MAX + 1);
    if (!first) {
        chat_name(srv, old, strlen(old), key);
        (void)weft_bus_name_release(key);
        chat_map_del(&srv->by_nick, &cl->by_nick);
    }
    memcpy(cl->nick, nick.p, nick.len);
    cl->nick[nick.len] = '\0';
    cl->named = true;
    if (chat_map_add(&srv->by_nick, &cl->by_nick,
                     chat_hash(nick.p, nick.len)) == -1)
        return -1;
    if (first && chat_map_add(&srv->by_uid, &cl->by_uid,
                              chat_hash((char *)&cl->uid, 8)) == -1)
        return -1;
    return 0;
}

/*
 * NICK: claim the new nick, then give back the old one, and tell every
 * worker (a new user, or a rename its rooms see).
 */
static void chat_cmd_nick(struct chat_client *cl, const struct chat_cmd *cmd)
{
    char old[CHAT_NICK_MAX + 1];

    if (cmd->err != CHAT_PERR_OK) {
        chat_err(cl, true, "BADNICK", chat_none);
        return;
    }
    if (cl->named && strlen(cl->nick) == cmd->target.len &&
        memcmp(cl->nick, cmd->target.p, cmd->target.len) == 0) {
        chat_say(cl, "OK NICK %s", cl->nick);
        return;
    }
    if (!chat_nick_claim(cl, cmd->target))
        return;
    if (chat_nick_set(cl, cmd->target, old) == -1) {
        weft_log(WEFT_LOG_ERROR, "chat: out of memory; closing a client");
        weft_conn_abort(cl->c);
        return;
    }
    chat_publish(cl, CHAT_REC_NICK, (struct chat_slice){old, strlen(old)},
                 chat_none);
    chat_say(cl, "OK NICK %s", cl->nick);
}

/* ---- JOIN, PART --------------------------------------------------------- */

/* Room room of cl's own list, or -1. */
static int chat_room_index(const struct chat_client *cl,
                           struct chat_slice room)
{
    for (unsigned i = 0; i < cl->nrooms; i++)
        if (strlen(cl->rooms[i]) == room.len &&
            memcmp(cl->rooms[i], room.p, room.len) == 0)
            return (int)i;
    return -1;
}

bool chat_client_in(const struct chat_client *cl, struct chat_slice room)
{
    return chat_room_index(cl, room) != -1;
}

/* Add room to cl's own list. -1: no memory. */
static int chat_room_add(struct chat_client *cl, struct chat_slice room)
{
    if (cl->nrooms == cl->rooms_cap) {
        unsigned cap = cl->rooms_cap ? cl->rooms_cap * 2 : 4;
        void *p = realloc(cl->rooms, cap * sizeof(*cl->rooms));
        if (p == NULL)
            return -1;
        cl->rooms = p;
        cl->rooms_cap = cap;
    }
    memcpy(cl->rooms[cl->nrooms], room.p, room.len);
    cl->rooms[cl->nrooms][room.len] = '\0';
    cl->nrooms++;
    return 0;
}

static void chat_cmd_join(struct chat_client *cl, const struct chat_cmd *cmd)
{
    const struct chat_conf *conf = cl->srv->conf;
    const struct chat_room *r;

    if (cmd->err != CHAT_PERR_OK) {
        chat_err(cl, true, "BADROOM", chat_none);
        return;
    }
    if (chat_client_in(cl, cmd->target)) {
        chat_say(cl, "OK JOIN %.*s", (int)cmd->target.len, cmd->target.p);
        return;
    }
    if (cl->nrooms >= conf->max_rooms) {
        chat_err(cl, false, "TOOMANYROOMS", cmd->target);
        return;
    }
    r = chat_room_find(&cl->srv->st, cmd->target);
    if (r != NULL && r->n >= conf->max_room_users) {
        chat_err(cl, false, "ROOMFULL", cmd->target);
        return;
    }
    if (chat_room_add(cl, cmd->target) == -1) {
        chat_err(cl, false, "BUSY", chat_none);
        return;
    }
    chat_publish(cl, CHAT_REC_JOIN, cmd->target, chat_none);
    chat_say(cl, "OK JOIN %.*s", (int)cmd->target.len, cmd->target.p);
}

static void chat_cmd_part(struct chat_client *cl, const struct chat_cmd *cmd)
{
    int i;

    if (cmd->err != CHAT_PERR_OK) {
        chat_err(cl, true, "BADROOM", chat_none);
        return;
    }
    if ((i = chat_room_index(cl, cmd->target)) == -1) {
        chat_err(cl, true, "NOTINROOM", cmd->target);
        return;
    }
    memcpy(cl->rooms[i], cl->rooms[cl->nrooms - 1], sizeof(cl->rooms[i]));
    cl->nrooms--;
    chat_publish(cl, CHAT_REC_PART, cmd->target, chat_none);
    chat_say(cl, "OK PART %.*s", (int)cmd->target.len, cmd->target.p);
}

/* ---- MSG ---------------------------------------------------------------- */

static double chat_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Take a token from cl's bucket (rate per second, up to burst). */
static bool chat_rate_take(struct chat_client *cl)
{
    const struct chat_conf *conf = cl->srv->conf;
    double now = chat_now();

    cl->tokens += (now - cl->last) * conf->rate;
    if (cl->tokens > conf->burst)
        cl->tokens = conf->burst;
    cl->last = now;
    if (cl->tokens < 1.0)
        return false;
    cl->tokens -= 1.0;
    return true;
}

/* A message that was not sent: its token back, and why. */
static void chat_msg_refused(struct chat_client *cl, struct chat_slice to)
{
    cl->tokens += 1.0;
    if (errno == EAGAIN)
        chat_err(cl, false, "BUSY", chat_none);
    else if (errno == EMSGSIZE)
        chat_err(cl, true, "TOOLONG", chat_none);
    else
        chat_err(cl, false, "NOSUCHNICK", to);
}

/* MSG #room text: to every member of every worker, through the bus. */
static void chat_msg_room(struct chat_client *cl, const struct chat_cmd *cmd)
{
    size_t len;

    if (!chat_client_in(cl, cmd->target)) {
        chat_err(cl, true, "NOTINROOM", cmd->target);
        return;
    }
    if (!chat_rate_take(cl)) {
        chat_err(cl, false, "RATE", chat_none);
        return;
    }
    len = chat_rec_build(cl, CHAT_REC_MSG, cmd->target, cmd->text);
    if (chat_out_msg(cl->srv, cl->srv->scratch, len) == -1) {
        chat_msg_refused(cl, cmd->target);
        return;
    }
    chat_say(cl, "OK MSG");
}

/* MSG nick text: to the worker holding nick (the registry says which). */
static void chat_msg_priv(struct chat_client *cl, const struct chat_cmd *cmd)
{
    char key[WEFT_BUS_NAME_MAX + 1];
    size_t len;
    int owner;

    chat_name(cl->srv, cmd->target.p, cmd->target.len, key);
    if ((owner = weft_bus_name_owner(key)) == -1) {
        chat_err(cl, false, "NOSUCHNICK", cmd->target);
        return;
    }
    if (!chat_rate_take(cl)) {
        chat_err(cl, false, "RATE", chat_none);
        return;
    }
    len = chat_rec_build(cl, CHAT_REC_PRIV, cmd->target, cmd->text);
    if (chat_out_priv(cl->srv, owner, cl->srv->scratch, len) == -1) {
        chat_msg_refused(cl, cmd->target);
        return;
    }
    chat_say(cl, "OK MSG");
}

static void chat_cmd_msg(struct chat_client *cl, const struct chat_cmd *cmd)
{
    if (cmd->err == CHAT_PERR_SYNTAX)
        chat_err(cl, true, "SYNTAX", (struct chat_slice){"MSG", 3});
    else if (cmd->err == CHAT_PERR_BADROOM)
        chat_err(cl, true, "BADROOM", chat_none);
    else if (cmd->err == CHAT_PERR_BADNICK)
        chat_err(cl, true, "NOSUCHNICK", cmd->target);
    else if (cmd->to_room)
        chat_msg_room(cl, cmd);
    else
        chat_msg_priv(cl, cmd);
}

/* ---- NAMES -------------------------------------------------------------- */

static int chat_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The nicks in room, sorted, each once: the replica's, except that cl
 * itself is where its own list says (a JOIN or PART of its own may not
 * have come back through the bus yet). NULL when memory is short.
 */
static const char **chat_names(struct chat_client *cl, struct chat_slice room,
                               size_t *n)
{
    const struct chat_room *r = chat_room_find(&cl->srv->st, room);
    const struct chat_member *m;
    const char **v = malloc(((r ? r->n : 0) + 1) * sizeof(*v));

    *n = 0;
    if (v == NULL)
        return NULL;
    if (r != NULL)
        LIST_FOREACH(m, &r->members, in_room)
            if (m->user->owner != cl->srv->self || m->user->uid != cl->uid)
                v[(*n)++] = m->user->nick;
    if (chat_client_in(cl, room))
        v[(*n)++] = cl->nick;
    qsort(v, *n, sizeof(*v), chat_strcmp);
    return v;
}

static void chat_cmd_names(struct chat_client *cl, const struct chat_cmd *cmd)
{
    struct strbuf b = {0};
    const char **v;
    size_t n;

    if (cmd->err != CHAT_PERR_OK) {
        chat_err(cl, true, "BADROOM", chat_none);
        return;
    }
    if ((v = chat_names(cl, cmd->target, &n)) == NULL) {
        chat_err(cl, false, "BUSY", chat_none);
        return;
    }
    strbuf_printf(&b, "NAMES %.*s", (int)cmd->target.len, cmd->target.p);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            strbuf_printf(&b, " %s", v[i]);
    strbuf_puts(&b, "\n");
    free(v);
    if (b.failed) {
        chat_err(cl, false, "BUSY", chat_none);
    } else if (weft_conn_write(cl->c, b.data, b.len) == 1) {
        cl->full = true;
    }
    strbuf_free(&b);
    chat_say(cl, "OK NAMES %.*s", (int)cmd->target.len, cmd->target.p);
}

/* ---- QUIT and leaving --------------------------------------------------- */

/*
 * cl leaves: every worker is told (QUIT reason), its nick is given back
 * and it is no longer found by uid or nick.
 */
static void chat_client_leave(struct chat_client *cl, struct chat_slice why)
{
    struct chat_server *srv = cl->srv;
    char key[WEFT_BUS_NAME_MAX + 1];

    if (!cl->named)
        return;
    chat_publish(cl, CHAT_REC_QUIT, chat_none, why);
    chat_name(srv, cl->nick, strlen(cl->nick), key);
    (void)weft_bus_name_release(key);
    chat_map_del(&srv->by_nick, &cl->by_nick);
    chat_map_del(&srv->by_uid, &cl->by_uid);
    cl->named = false;
}

void chat_client_gone(struct chat_client *cl)
{
    static const struct chat_slice why = {"connection closed", 17};

    chat_client_leave(cl, why);
}

static void chat_cmd_quit(struct chat_client *cl, const struct chat_cmd *cmd)
{
    static const struct chat_slice why = {"quit", 4};

    chat_say(cl, "OK QUIT");
    chat_client_leave(cl, cmd->text.len > 0 ? cmd->text : why);
    cl->quit = true;
    weft_conn_close(cl->c);
}

/* ---- the dispatch ------------------------------------------------------- */

int chat_command(struct chat_client *cl, const char *line, size_t len)
{
    struct chat_cmd cmd;

    chat_parse(line, len, &cmd);
    if (cmd.type == CHAT_CMD_NONE)
        return 0;
    weft_count(cl->srv->l, WEFT_COUNT_REQUESTS, 1);
    if (cmd.type == CHAT_CMD_UNKNOWN) {
        if (cmd.word.len > CHAT_WORD_ECHO)
            cmd.word.len = CHAT_WORD_ECHO;
        chat_err(cl, true, "UNKNOWN", cmd.word);
    } else if (!cl->named && cmd.type != CHAT_CMD_NICK &&
               cmd.type != CHAT_CMD_QUIT) {
        chat_err(cl, true, "NONICK", chat_none);
    } else {
        switch (cmd.type) {
        case CHAT_CMD_NICK: chat_cmd_nick(cl, &cmd); break;
        case CHAT_CMD_JOIN: chat_cmd_join(cl, &cmd); break;
        case CHAT_CMD_PART: chat_cmd_part(cl, &cmd); break;
        case CHAT_CMD_MSG: chat_cmd_msg(cl, &cmd); break;
        case CHAT_CMD_NAMES: chat_cmd_names(cl, &cmd); break;
        case CHAT_CMD_QUIT: chat_cmd_quit(cl, &cmd); break;
        default: break;
        }
    }
    return cl->quit || cl->full ? 1 : 0;
}
