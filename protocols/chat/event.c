/*
 * chat: the records that come off the bus. Each is applied to this
 * worker's replica and told to the local clients it concerns, in the
 * order the bus delivers them: a worker's records reach every worker,
 * itself included, in the order it made them, so every replica applies
 * one worker's changes in one order and they all agree.
 *
 * Peers: a worker that comes onto the bus is sent a SYNC of the users of
 * this one (their nicks and rooms, as this worker published them); a
 * worker that leaves takes its users with it, and the local members of
 * their rooms are told "QUIT nick worker gone".
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "protocols/chat/chat.h"
#include "shared/util.h"

#define CHAT_IOV(p, n) ((struct iovec){(void *)(p), (n)})
#define CHAT_IOS(s) CHAT_IOV((s), strlen(s))
#define CHAT_IOSL(sl) CHAT_IOV((sl).p, (sl).len)

/* ---- telling local clients ---------------------------------------------- */

/* Every local member of room r gets the line in iov. */
static void chat_tell_room(const struct chat_room *r, struct iovec *iov,
                           int n)
{
    const struct chat_member *m;

    LIST_FOREACH(m, &r->local, in_local)
        if (m->user->client != NULL)
            (void)weft_conn_writev(m->user->client->c, iov, n);
}

/*
 * Every local client that shares a room with u gets the line once, u
 * itself only when self_too.
 */
static void chat_tell_peers_of(struct chat_server *srv,
                               const struct chat_user *u, bool self_too,
                               struct iovec *iov, int n)
{
    const struct chat_member *m, *o;

    if (++srv->mark == 0)
        srv->mark = 1;
    LIST_FOREACH(m, &u->rooms, in_user)
        LIST_FOREACH(o, &m->room->local, in_local) {
            struct chat_client *cl = o->user->client;
            if (cl == NULL || cl->mark == srv->mark ||
                (o->user == u && !self_too))
                continue;
            cl->mark = srv->mark;
            (void)weft_conn_writev(cl->c, iov, n);
        }
}

/* ---- applying records --------------------------------------------------- */

static void chat_nomem(struct chat_server *srv)
{
    weft_log(WEFT_LOG_ERROR, "chat: %s: out of memory: the replica misses "
             "a change", weft_listener_name(srv->l));
}

/*
 * The user a record of worker `from` is about, created (linked to its
 * client when it is one of ours) when the replica did not know it yet.
 */
static struct chat_user *chat_event_user(struct chat_server *srv, int from,
                                         uint64_t uid, struct chat_slice nick)
{
    bool made;
    struct chat_user *u = chat_user_get(&srv->st, from, uid, nick, &made);

    if (u == NULL)
        chat_nomem(srv);
    else if (made && from == srv->self)
        u->client = chat_client_by_uid(srv, uid);
    return u;
}

/* NICK: a new user, or a new nick told to those who share a room. */
static void chat_apply_nick(struct chat_server *srv, int from,
                            const struct chat_rec *r)
{
    struct chat_user *u = chat_user_find(&srv->st, from, r->uid);
    char old[CHAT_NICK_MAX + 1];

    if (u == NULL) {
        (void)chat_event_user(srv, from, r->uid, r->nick);
        return;
    }
    memcpy(old, u->nick, sizeof(old));
    chat_user_rename(u, r->nick);
    if (strcmp(old, u->nick) == 0)
        return;
    struct iovec iov[] = {CHAT_IOS("NICK "), CHAT_IOS(old), CHAT_IOS(" "),
                          CHAT_IOS(u->nick), CHAT_IOS("\n")};
    chat_tell_peers_of(srv, u, true, iov, (int)countof(iov));
}

static void chat_apply_join(struct chat_server *srv, int from,
                            const struct chat_rec *r)
{
    struct chat_user *u = chat_event_user(srv, from, r->uid, r->nick);
    struct chat_room *room;

    if (u == NULL)
        return;
    room = chat_room_find(&srv->st, r->arg);
    if (room != NULL && chat_member_find(u, room) != NULL)
        return;
    struct chat_member *m = chat_member_add(&srv->st, u, r->arg);
    if (m == NULL) {
        chat_nomem(srv);
        return;
    }
    struct iovec iov[] = {CHAT_IOS("JOIN "), CHAT_IOS(m->room->name),
                          CHAT_IOS(" "), CHAT_IOS(u->nick), CHAT_IOS("\n")};
    chat_tell_room(m->room, iov, (int)countof(iov));
}

static void chat_apply_part(struct chat_server *srv, int from,
                            const struct chat_rec *r)
{
    struct chat_user *u = chat_user_find(&srv->st, from, r->uid);
    struct chat_room *room = chat_room_find(&srv->st, r->arg);
    struct chat_member *m;

    if (u == NULL || room == NULL || (m = chat_member_find(u, room)) == NULL)
        return;
    struct iovec iov[] = {CHAT_IOS("PART "), CHAT_IOS(room->name),
                          CHAT_IOS(" "), CHAT_IOS(u->nick), CHAT_IOS("\n")};
    chat_tell_room(room, iov, (int)countof(iov));
    chat_member_del(&srv->st, m);
}

/* A user gone: "QUIT nick reason" to those who shared a room with it. */
static void chat_user_quit(struct chat_server *srv, struct chat_user *u,
                           struct chat_slice reason)
{
    struct iovec iov[] = {CHAT_IOS("QUIT "), CHAT_IOS(u->nick),
                          CHAT_IOS(" "), CHAT_IOSL(reason),
                          CHAT_IOS("\n")};
    chat_tell_peers_of(srv, u, false, iov, (int)countof(iov));
    chat_user_drop(&srv->st, u);
}

static void chat_apply_quit(struct chat_server *srv, int from,
                            const struct chat_rec *r)
{
    struct chat_user *u = chat_user_find(&srv->st, from, r->uid);

    if (u != NULL)
        chat_user_quit(srv, u, r->text);
}

/* MSG to a room: its local members, the sender among them. */
static void chat_apply_msg(struct chat_server *srv, const struct chat_rec *r)
{
    struct chat_room *room = chat_room_find(&srv->st, r->arg);

    if (room == NULL || LIST_EMPTY(&room->local))
        return;
    struct iovec iov[] = {CHAT_IOS("MSG "), CHAT_IOS(room->name),
                          CHAT_IOS(" "), CHAT_IOSL(r->nick),
                          CHAT_IOS(" "), CHAT_IOSL(r->text),
                          CHAT_IOS("\n")};
    chat_tell_room(room, iov, (int)countof(iov));
}

/* PRIV: one local client, if it still has that nick. */
static void chat_apply_priv(struct chat_server *srv, const struct chat_rec *r)
{
    struct chat_client *cl = chat_client_by_nick(srv, r->arg);

    if (cl == NULL)
        return; /* gone or renamed since the sender looked it up */
    struct iovec iov[] = {CHAT_IOS("PRIV "), CHAT_IOSL(r->nick),
                          CHAT_IOS(" "), CHAT_IOSL(r->text),
                          CHAT_IOS("\n")};
    (void)weft_conn_writev(cl->c, iov, (int)countof(iov));
}

/*
 * SYNC: worker from's users and their rooms. Its first record replaces
 * whatever this replica had of that worker; nobody is told (nothing
 * happened, the replica only catches up).
 */
static void chat_apply_sync(struct chat_server *srv, int from,
                            const struct chat_rec *r)
{
    struct chat_slice body = r->text, nick, room;
    uint64_t uid;
    int rc;

    if (from < 0 || from >= srv->nids)
        return;
    if (r->flags & CHAT_SYNC_FIRST)
        while (!LIST_EMPTY(&srv->st.by_owner[from]))
            chat_user_drop(&srv->st, LIST_FIRST(&srv->st.by_owner[from]));
    while ((rc = chat_sync_next(&body, &uid, &nick, &room)) == 1) {
        struct chat_user *u = chat_event_user(srv, from, uid, nick);
        if (u == NULL)
            return;
        if (room.len > 0 && chat_member_add(&srv->st, u, room) == NULL) {
            chat_nomem(srv);
            return;
        }
    }
    if (rc == -1)
        weft_log(WEFT_LOG_WARN, "chat: %s: a malformed SYNC from worker %d",
                 weft_listener_name(srv->l), from);
}

void chat_event_recv(const struct weft_bus_msg *m, void *arg)
{
    struct chat_server *srv = arg;
    struct chat_rec r;

    if (m->from < 0 || m->from >= srv->nids ||
        chat_rec_decode(m->data, m->len, &r) == -1) {
        weft_log(WEFT_LOG_WARN, "chat: %s: a malformed record from worker "
                 "%d", weft_listener_name(srv->l), m->from);
        return;
    }
    switch (r.type) {
    case CHAT_REC_NICK: chat_apply_nick(srv, m->from, &r); break;
    case CHAT_REC_JOIN: chat_apply_join(srv, m->from, &r); break;
    case CHAT_REC_PART: chat_apply_part(srv, m->from, &r); break;
    case CHAT_REC_QUIT: chat_apply_quit(srv, m->from, &r); break;
    case CHAT_REC_MSG: chat_apply_msg(srv, &r); break;
    case CHAT_REC_PRIV: chat_apply_priv(srv, &r); break;
    case CHAT_REC_SYNC: chat_apply_sync(srv, m->from, &r); break;
    }
}

/* ---- peers -------------------------------------------------------------- */

/* Add one SYNC entry to buf, sending buf first when it would not fit. */
static void chat_sync_add(struct chat_server *srv, int id, char *buf,
                          size_t *len, size_t max, uint64_t uid,
                          const char *nick, const char *room)
{
    if (*len + chat_sync_entry_size(strlen(nick), strlen(room)) > max) {
        chat_out_to(srv, id, buf, *len);
        buf[1] = 0; /* the next ones add to the first */
        *len = 2;
    }
    *len += chat_sync_put(buf + *len, uid, nick, room);
}

/*
 * Send worker id every local user and its rooms, as this worker has
 * published them, in as many records as it takes (the first one marked
 * CHAT_SYNC_FIRST). Through id's outbox: after everything published
 * before, which the SYNC therefore includes.
 */
static void chat_sync_send(struct chat_server *srv, int id)
{
    size_t max = weft_bus_max_message(), len = 2;
    char *buf = malloc(max);

    if (buf == NULL) {
        weft_log(WEFT_LOG_ERROR, "chat: %s: out of memory: no SYNC for "
                 "worker %d", weft_listener_name(srv->l), id);
        return;
    }
    buf[0] = (char)CHAT_REC_SYNC;
    buf[1] = (char)CHAT_SYNC_FIRST;
    for (size_t b = 0; b < srv->by_uid.nb; b++)
        for (struct chat_hnode *n = srv->by_uid.b[b]; n != NULL;
             n = n->next) {
            struct chat_client *cl =
                container_of(n, struct chat_client, by_uid);
            chat_sync_add(srv, id, buf, &len, max, cl->uid, cl->nick, "");
            for (unsigned i = 0; i < cl->nrooms; i++)
                chat_sync_add(srv, id, buf, &len, max, cl->uid, cl->nick,
                              cl->rooms[i]);
        }
    chat_out_to(srv, id, buf, len);
    free(buf);
}

/* Worker id left: its users are gone, and their rooms are told. */
static void chat_peer_left(struct chat_server *srv, int id)
{
    static const struct chat_slice why = {"worker gone", 11};
    struct chat_user_list *users = &srv->st.by_owner[id];

    chat_out_forget(srv, id);
    while (!LIST_EMPTY(users))
        chat_user_quit(srv, LIST_FIRST(users), why);
}

void chat_event_peer(int id, int joined, void *arg)
{
    struct chat_server *srv = arg;

    if (id < 0 || id >= srv->nids || id == srv->self)
        return;
    if (joined)
        chat_sync_send(srv, id);
    else
        chat_peer_left(srv, id);
}
