/*
 * chat: the replica of a chat listener's state that every worker keeps,
 * the users of every worker and the rooms they are in. It changes only
 * as event.c applies the records that come off the bus; nothing here
 * talks to clients or to the bus.
 *
 * A user is known by its worker's bus id and a uid unique in that worker,
 * not by its nick: a nick freed on one worker may be claimed on another
 * before every replica has heard it was freed, and two entries may then
 * carry one nick for a moment. A room exists while it has members; it
 * lists them all, and apart those of this worker, whom it tells.
 */
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/chat.h"
#include "shared/util.h"

#define CHAT_MAP_MIN 64

/* ---- the map ------------------------------------------------------------ */

uint64_t chat_hash(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* Twice the buckets, each node moved to its new chain. -1: no memory. */
static int chat_map_grow(struct chat_map *m)
{
    size_t nb = m->nb ? m->nb * 2 : CHAT_MAP_MIN;
    struct chat_hnode **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct chat_hnode *n, *next;
        for (n = m->b[i]; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int chat_map_add(struct chat_map *m, struct chat_hnode *n, uint64_t hash)
{
    if (m->n >= m->nb && chat_map_grow(m) == -1)
        return -1;
    n->hash = hash;
    n->next = m->b[hash & (m->nb - 1)];
    m->b[hash & (m->nb - 1)] = n;
    m->n++;
    return 0;
}

void chat_map_del(struct chat_map *m, struct chat_hnode *n)
{
    struct chat_hnode **pp;

    if (m->nb == 0)
        return;
    pp = &m->b[n->hash & (m->nb - 1)];
    while (*pp != NULL && *pp != n)
        pp = &(*pp)->next;
    if (*pp == n) {
        *pp = n->next;
        m->n--;
    }
}

struct chat_hnode *chat_map_chain(const struct chat_map *m, uint64_t hash)
{
    return m->nb ? m->b[hash & (m->nb - 1)] : NULL;
}

void chat_map_free(struct chat_map *m)
{
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---- users and rooms ---------------------------------------------------- */

static uint64_t chat_user_hash(int owner, uint64_t uid)
{
    uint64_t key[2] = {(uint64_t)owner, uid};

    return chat_hash((const char *)key, sizeof(key));
}

int chat_state_init(struct chat_state *st, int self, int nids)
{
    memset(st, 0, sizeof(*st));
    st->self = self;
    st->nids = nids;
    st->by_owner = calloc((size_t)nids, sizeof(*st->by_owner));
    if (st->by_owner == NULL)
        return -1;
    for (int i = 0; i < nids; i++)
        LIST_INIT(&st->by_owner[i]);
    return 0;
}

void chat_state_free(struct chat_state *st)
{
    for (int i = 0; i < st->nids; i++)
        while (!LIST_EMPTY(&st->by_owner[i]))
            chat_user_drop(st, LIST_FIRST(&st->by_owner[i]));
    chat_map_free(&st->users);
    chat_map_free(&st->rooms);
    free(st->by_owner);
    st->by_owner = NULL;
}

struct chat_user *chat_user_find(const struct chat_state *st, int owner,
                                 uint64_t uid)
{
    uint64_t h = chat_user_hash(owner, uid);

    for (struct chat_hnode *n = chat_map_chain(&st->users, h); n != NULL;
         n = n->next) {
        struct chat_user *u = container_of(n, struct chat_user, node);
        if (n->hash == h && u->owner == owner && u->uid == uid)
            return u;
    }
    return NULL;
}

void chat_user_rename(struct chat_user *u, struct chat_slice nick)
{
    size_t len = nick.len < CHAT_NICK_MAX ? nick.len : CHAT_NICK_MAX;

    memcpy(u->nick, nick.p, len);
    u->nick[len] = '\0';
}

struct chat_user *chat_user_get(struct chat_state *st, int owner,
                                uint64_t uid, struct chat_slice nick,
                                bool *made)
{
    struct chat_user *u = chat_user_find(st, owner, uid);

    *made = false;
    if (u == NULL) {
        if (owner < 0 || owner >= st->nids ||
            (u = calloc(1, sizeof(*u))) == NULL)
            return NULL;
        u->owner = owner;
        u->uid = uid;
        LIST_INIT(&u->rooms);
        if (chat_map_add(&st->users, &u->node,
                         chat_user_hash(owner, uid)) == -1) {
            free(u);
            return NULL;
        }
        LIST_INSERT_HEAD(&st->by_owner[owner], u, by_owner);
        *made = true;
    }
    chat_user_rename(u, nick);
    return u;
}

void chat_user_drop(struct chat_state *st, struct chat_user *u)
{
    while (!LIST_EMPTY(&u->rooms))
        chat_member_del(st, LIST_FIRST(&u->rooms));
    chat_map_del(&st->users, &u->node);
    LIST_REMOVE(u, by_owner);
    free(u);
}

struct chat_room *chat_room_find(const struct chat_state *st,
                                 struct chat_slice name)
{
    uint64_t h = chat_hash(name.p, name.len);

    for (struct chat_hnode *n = chat_map_chain(&st->rooms, h); n != NULL;
         n = n->next) {
        struct chat_room *r = container_of(n, struct chat_room, node);
        if (n->hash == h && strlen(r->name) == name.len &&
            memcmp(r->name, name.p, name.len) == 0)
            return r;
    }
    return NULL;
}

/* The room called name, created empty when new; NULL: no memory. */
static struct chat_room *chat_room_get(struct chat_state *st,
                                       struct chat_slice name)
{
    struct chat_room *r = chat_room_find(st, name);

    if (r != NULL || name.len > CHAT_ROOM_MAX)
        return r;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    memcpy(r->name, name.p, name.len);
    LIST_INIT(&r->members);
    LIST_INIT(&r->local);
    if (chat_map_add(&st->rooms, &r->node, chat_hash(name.p, name.len)) ==
        -1) {
        free(r);
        return NULL;
    }
    return r;
}

struct chat_member *chat_member_find(const struct chat_user *u,
                                     const struct chat_room *r)
{
    struct chat_member *m;

    LIST_FOREACH(m, &u->rooms, in_user)
        if (m->room == r)
            return m;
    return NULL;
}

struct chat_member *chat_member_add(struct chat_state *st,
                                    struct chat_user *u,
                                    struct chat_slice name)
{
    struct chat_room *r = chat_room_get(st, name);
    struct chat_member *m;

    if (r == NULL)
        return NULL;
    if ((m = chat_member_find(u, r)) != NULL)
        return m;
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        if (r->n == 0) {
            chat_map_del(&st->rooms, &r->node);
            free(r);
        }
        return NULL;
    }
    m->user = u;
    m->room = r;
    m->local = u->owner == st->self;
    LIST_INSERT_HEAD(&r->members, m, in_room);
    if (m->local)
        LIST_INSERT_HEAD(&r->local, m, in_local);
    LIST_INSERT_HEAD(&u->rooms, m, in_user);
    r->n++;
    return m;
}

void chat_member_del(struct chat_state *st, struct chat_member *m)
{
    struct chat_room *r = m->room;

    LIST_REMOVE(m, in_room);
    if (m->local)
        LIST_REMOVE(m, in_local);
    LIST_REMOVE(m, in_user);
    free(m);
    if (--r->n == 0) {
        chat_map_del(&st->rooms, &r->node);
        free(r);
    }
}
