/*
 * chat: what the files of the chat protocol share. The design is told at
 * the top of protocols/chat/chat.c; each file says its one concern:
 *
 *   parse.c    a client's line -> struct chat_cmd (pure)
 *   record.c   the bus records between workers, both ways (pure)
 *   state.c    the replica: users, rooms and who is in which
 *   outbox.c   sending records: per-receiver FIFO outboxes, retried
 *   event.c    records received: applied to the replica, told to clients
 *   command.c  a client's commands
 *   chat.c     the protocol: settings, listener and connection callbacks
 */
#ifndef WEFT_PROTOCOLS_CHAT_CHAT_H
#define WEFT_PROTOCOLS_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "weft/bus.h"
#include "weft/weft.h"

#define CHAT_NICK_MAX 32 /* bytes of a nick */
#define CHAT_ROOM_MAX 65 /* bytes of a room name, its '#' included */
/* The registry names a nick "<namespace>/<nick>" in WEFT_BUS_NAME_MAX. */
#define CHAT_NS_MAX (WEFT_BUS_NAME_MAX - 1 - CHAT_NICK_MAX)

/* Bytes at p, not NUL-terminated. */
struct chat_slice {
    const char *p;
    size_t len;
};

/* ---- parse.c ------------------------------------------------------------ */

enum chat_cmd_type {
    CHAT_CMD_NONE,    /* an empty line: ignored */
    CHAT_CMD_NICK,
    CHAT_CMD_JOIN,
    CHAT_CMD_PART,
    CHAT_CMD_MSG,
    CHAT_CMD_NAMES,
    CHAT_CMD_QUIT,
    CHAT_CMD_UNKNOWN
};

/* What is wrong with the arguments of a known command. */
enum chat_perr {
    CHAT_PERR_OK,
    CHAT_PERR_BADNICK, /* NICK's, or MSG's target that is no nick */
    CHAT_PERR_BADROOM,
    CHAT_PERR_SYNTAX   /* MSG without a target or a text */
};

/* A command line, in slices of the line it was parsed from. */
struct chat_cmd {
    enum chat_cmd_type type;
    enum chat_perr err;
    struct chat_slice word;   /* the command word as sent */
    struct chat_slice target; /* NICK's nick, a room, MSG's target */
    struct chat_slice text;   /* MSG's text, QUIT's reason (may be empty) */
    bool to_room;             /* MSG: the target is a room */
};

/*
 * Parse one line (without its LF; a CR before it is dropped here). Never
 * fails: an unknown word is CHAT_CMD_UNKNOWN, bad arguments set err.
 */
void chat_parse(const char *line, size_t len, struct chat_cmd *cmd);

/* 1..CHAT_NICK_MAX of A-Z a-z 0-9 _ - */
bool chat_nick_valid(const char *p, size_t len);

/* '#' and 1..CHAT_ROOM_MAX-1 of A-Z a-z 0-9 _ - */
bool chat_room_valid(const char *p, size_t len);

/* ---- record.c ----------------------------------------------------------- */

enum chat_rec_type {
    CHAT_REC_NICK = 1, /* nick = new, arg = old ("" for a new user) */
    CHAT_REC_JOIN,     /* arg = room */
    CHAT_REC_PART,     /* arg = room */
    CHAT_REC_QUIT,     /* text = reason */
    CHAT_REC_MSG,      /* arg = room, text */
    CHAT_REC_PRIV,     /* nick = from, arg = to, text; unicast */
    CHAT_REC_SYNC      /* flags, text = entries; unicast */
};

/* SYNC flags: the first record of a SYNC replaces what the receiver had. */
#define CHAT_SYNC_FIRST 1u

/* A record; the slices point into the buffer it was decoded from. */
struct chat_rec {
    enum chat_rec_type type;
    unsigned flags;
    uint64_t uid; /* the user, unique among its worker's */
    struct chat_slice nick, arg, text;
};

/* Bytes chat_rec_encode needs for r. */
size_t chat_rec_size(const struct chat_rec *r);

/* Encode r into buf (chat_rec_size(r) bytes); returns that size. */
size_t chat_rec_encode(const struct chat_rec *r, char *buf);

/* Decode the len bytes at p into r. 0, or -1 for a malformed record. */
int chat_rec_decode(const void *p, size_t len, struct chat_rec *r);

/* Bytes one SYNC entry takes (see chat_sync_put). */
size_t chat_sync_entry_size(size_t nick_len, size_t room_len);

/*
 * Append to buf a SYNC entry: user uid called nick, in room (empty: the
 * user alone). Returns the bytes written (chat_sync_entry_size).
 */
size_t chat_sync_put(char *buf, uint64_t uid, const char *nick,
                     const char *room);

/*
 * Take the next entry of a SYNC's text (advanced past it). 1 with the
 * entry, 0 at the end, -1 for a malformed one.
 */
int chat_sync_next(struct chat_slice *body, uint64_t *uid,
                   struct chat_slice *nick, struct chat_slice *room);

/* ---- state.c ------------------------------------------------------------ */

/* A node of a chained hash map; the key lives in the struct around it. */
struct chat_hnode {
    struct chat_hnode *next;
    uint64_t hash;
};

struct chat_map {
    struct chat_hnode **b;
    size_t nb, n;
};

uint64_t chat_hash(const char *p, size_t len);
/* Add n under hash; -1 when memory is short (n is not added). */
int chat_map_add(struct chat_map *m, struct chat_hnode *n, uint64_t hash);
void chat_map_del(struct chat_map *m, struct chat_hnode *n);
/* The first node of hash's chain; follow ->next, checking ->hash. */
struct chat_hnode *chat_map_chain(const struct chat_map *m, uint64_t hash);
void chat_map_free(struct chat_map *m);

struct chat_member;
struct chat_client;
LIST_HEAD(chat_member_list, chat_member);

/* A user of any worker, as this worker's replica knows it. */
struct chat_user {
    struct chat_hnode node; /* in the users map, by (owner, uid) */
    LIST_ENTRY(chat_user) by_owner;
    uint64_t uid;
    int owner;                  /* bus id of its worker */
    struct chat_client *client; /* its connection when local, else NULL */
    struct chat_member_list rooms;
    char nick[CHAT_NICK_MAX + 1];
};

LIST_HEAD(chat_user_list, chat_user);

struct chat_room {
    struct chat_hnode node;
    size_t n; /* members, of every worker */
    struct chat_member_list members, local;
    char name[CHAT_ROOM_MAX + 1];
};

/* One user in one room: on the room's lists and the user's. */
struct chat_member {
    struct chat_user *user;
    struct chat_room *room;
    LIST_ENTRY(chat_member) in_room, in_local, in_user;
    bool local;
};

struct chat_state {
    int self; /* this worker's bus id */
    int nids;
    struct chat_map users, rooms;
    struct chat_user_list *by_owner; /* [nids] */
};

int chat_state_init(struct chat_state *st, int self, int nids);
/* Free everything; the clients' links to users are not touched. */
void chat_state_free(struct chat_state *st);

struct chat_user *chat_user_find(const struct chat_state *st, int owner,
                                 uint64_t uid);
/*
 * The user (owner, uid), created when new; its nick becomes nick. *made
 * says whether it was created. NULL when memory is short.
 */
struct chat_user *chat_user_get(struct chat_state *st, int owner,
                                uint64_t uid, struct chat_slice nick,
                                bool *made);
/* Take u out of every room and free it. */
void chat_user_drop(struct chat_state *st, struct chat_user *u);
/* Rename u (nick valid, at most CHAT_NICK_MAX bytes). */
void chat_user_rename(struct chat_user *u, struct chat_slice nick);

struct chat_room *chat_room_find(const struct chat_state *st,
                                 struct chat_slice name);
struct chat_member *chat_member_find(const struct chat_user *u,
                                     const struct chat_room *r);
/*
 * Put u in the room called name (created when new). Returns the
 * membership (the existing one when u is there already), NULL when
 * memory is short.
 */
struct chat_member *chat_member_add(struct chat_state *st,
                                    struct chat_user *u,
                                    struct chat_slice name);
/* Take a membership away; a room left empty is freed. */
void chat_member_del(struct chat_state *st, struct chat_member *m);

/* ---- the per-worker server and its clients ------------------------------ */

/* What configure reads from the listener's chat group. */
struct chat_conf {
    size_t max_line;
    unsigned max_rooms;
    size_t max_room_users;
    unsigned rate;  /* MSG per second, per user */
    unsigned burst; /* MSG allowed at once */
    size_t max_output;
};

/* A record waiting in an outbox. */
struct chat_pending {
    struct chat_pending *next;
    size_t len;
    char data[];
};

/* Records for one receiver that its ring had no room for, in order. */
struct chat_outbox {
    struct chat_pending *head, **tail;
    size_t n;
};

/* One chat listener in one worker. */
struct chat_server {
    struct weft_listener *l;
    const struct chat_conf *conf;
    int self, nids;
    struct chat_state st;
    struct chat_map by_uid, by_nick; /* local clients with a nick */
    struct chat_outbox *out;         /* [nids] */
    struct weft_timer *retry;        /* while an outbox is not empty */
    struct weft_bus_sub *sub, *watch;
    uint64_t next_uid;
    unsigned mark;
    char *scratch; /* where a record is built: chat_rec_max() bytes */
    char ns[CHAT_NS_MAX + 1]; /* the nicks' namespace in the registry */
    char topic[WEFT_BUS_TOPIC_MAX + 1];
};

/* One connection. */
struct chat_client {
    struct weft_conn *c;
    struct chat_server *srv;
    struct chat_hnode by_uid, by_nick; /* in srv's maps once named */
    uint64_t uid;
    double tokens, last; /* the MSG token bucket; last in seconds */
    /* The rooms as this worker published them: what SYNC tells and
     * commands check (the replica learns them back through the bus). */
    char (*rooms)[CHAT_ROOM_MAX + 1];
    unsigned nrooms, rooms_cap;
    unsigned mark;   /* for telling each client once (event.c) */
    bool named;      /* NICK succeeded: nick is set, in the maps */
    bool discarding; /* skipping the rest of a line that was too long */
    bool quit;       /* QUIT: closing */
    bool full;       /* a reply passed the high mark: input paused */
    char nick[CHAT_NICK_MAX + 1];
};

/* chat.c: the most bytes a record of this listener takes. */
size_t chat_rec_max(const struct chat_conf *conf);
/* chat.c: queue a line (its LF added) for cl; 1 when cl is above its
 * high watermark (cl->full is set then). */
int chat_say(struct chat_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The registry name of nick: "<ns>/<nick>" into buf. */
void chat_name(const struct chat_server *srv, const char *nick,
               size_t nick_len, char buf[WEFT_BUS_NAME_MAX + 1]);
struct chat_client *chat_client_by_uid(const struct chat_server *srv,
                                       uint64_t uid);
struct chat_client *chat_client_by_nick(const struct chat_server *srv,
                                        struct chat_slice nick);
bool chat_client_in(const struct chat_client *cl, struct chat_slice room);

/* ---- outbox.c ----------------------------------------------------------- */

int chat_out_init(struct chat_server *srv);
void chat_out_free(struct chat_server *srv);

/*
 * A membership record (NICK, JOIN, PART, QUIT) to every worker on the bus,
 * this one included, or a SYNC to one: sent, or queued behind what waits
 * for that receiver and retried, so none is lost or reordered while the
 * receiver lives.
 */
void chat_out_all(struct chat_server *srv, const void *rec, size_t len);
void chat_out_to(struct chat_server *srv, int id, const void *rec,
                 size_t len);

/*
 * A user's message to every worker (MSG to a room) or to one (PRIV): 0,
 * or -1 with errno EAGAIN when a receiver is behind (nothing was sent),
 * EMSGSIZE, or ESRCH (PRIV: that worker is gone). Once sent to one
 * receiver it reaches all: a ring found full then queues it.
 */
int chat_out_msg(struct chat_server *srv, const void *rec, size_t len);
int chat_out_priv(struct chat_server *srv, int id, const void *rec,
                  size_t len);

/* Worker id left the bus: what waited for it is dropped. */
void chat_out_forget(struct chat_server *srv, int id);

/* ---- event.c ------------------------------------------------------------ */

/* The bus subscription's and the peer watch's callbacks; arg is srv. */
void chat_event_recv(const struct weft_bus_msg *m, void *arg);
void chat_event_peer(int id, int joined, void *arg);

/* ---- command.c ---------------------------------------------------------- */

/*
 * Handle one line of cl (without its LF). Returns 0 to go on with the
 * next line, 1 to stop (QUIT, or cl's output is above its high mark).
 */
int chat_command(struct chat_client *cl, const char *line, size_t len);

/* cl's connection ended without QUIT: tell the others it left. */
void chat_client_gone(struct chat_client *cl);

#endif
