/*
 * chat: the records workers send each other on the bus, encoded and
 * decoded. Pure functions; a record never leaves the machine, so numbers
 * are in the host's byte order.
 *
 *   user events  type:1 uid:8 nick_len:1 nick arg_len:1 arg text...
 *   SYNC         type:1 flags:1 then entries: uid:8 nick_len:1 nick
 *                room_len:1 room (room_len 0: the user alone)
 *
 * Nicks and rooms are at most 65 bytes, so one length byte holds them;
 * the text runs to the end of the record.
 */
#include <string.h>

#include "protocols/chat/chat.h"

#define CHAT_REC_HEAD (1 + 8 + 1 + 1)

size_t chat_rec_size(const struct chat_rec *r)
{
    if (r->type == CHAT_REC_SYNC)
        return 2 + r->text.len;
    return CHAT_REC_HEAD + r->nick.len + r->arg.len + r->text.len;
}

static char *chat_put_str(char *p, struct chat_slice s)
{
    *p++ = (char)(unsigned char)s.len;
    memcpy(p, s.p, s.len);
    return p + s.len;
}

size_t chat_rec_encode(const struct chat_rec *r, char *buf)
{
    char *p = buf;

    *p++ = (char)r->type;
    if (r->type == CHAT_REC_SYNC) {
        *p++ = (char)r->flags;
    } else {
        memcpy(p, &r->uid, 8);
        p = chat_put_str(p + 8, r->nick);
        p = chat_put_str(p, r->arg);
    }
    if (r->text.len > 0)
        memcpy(p, r->text.p, r->text.len);
    return (size_t)(p - buf) + r->text.len;
}

/* A length byte and its string at *p, within end; -1 past the end. */
static int chat_get_str(const char **p, const char *end, size_t max,
                        struct chat_slice *s)
{
    if (*p >= end)
        return -1;
    s->len = (unsigned char)**p;
    s->p = *p + 1;
    if (s->len > max || s->len > (size_t)(end - s->p))
        return -1;
    *p = s->p + s->len;
    return 0;
}

int chat_rec_decode(const void *data, size_t len, struct chat_rec *r)
{
    const char *p = data, *end = p + len;

    memset(r, 0, sizeof(*r));
    if (len < 2)
        return -1;
    r->type = (enum chat_rec_type)(unsigned char)*p++;
    if (r->type == CHAT_REC_SYNC) {
        r->flags = (unsigned char)*p++;
    } else {
        if (r->type < CHAT_REC_NICK || r->type > CHAT_REC_PRIV ||
            len < CHAT_REC_HEAD)
            return -1;
        memcpy(&r->uid, p, 8);
        p += 8;
        if (chat_get_str(&p, end, CHAT_NICK_MAX, &r->nick) == -1 ||
            chat_get_str(&p, end, CHAT_ROOM_MAX, &r->arg) == -1)
            return -1;
    }
    r->text.p = p;
    r->text.len = (size_t)(end - p);
    return 0;
}

size_t chat_sync_entry_size(size_t nick_len, size_t room_len)
{
    return 8 + 1 + nick_len + 1 + room_len;
}

size_t chat_sync_put(char *buf, uint64_t uid, const char *nick,
                     const char *room)
{
    struct chat_slice n = {nick, strlen(nick)}, r = {room, strlen(room)};
    char *p = buf;

    memcpy(p, &uid, 8);
    p = chat_put_str(p + 8, n);
    p = chat_put_str(p, r);
    return (size_t)(p - buf);
}

int chat_sync_next(struct chat_slice *body, uint64_t *uid,
                   struct chat_slice *nick, struct chat_slice *room)
{
    const char *p = body->p, *end = p + body->len;

    if (body->len == 0)
        return 0;
    if (body->len < 8)
        return -1;
    memcpy(uid, p, 8);
    p += 8;
    if (chat_get_str(&p, end, CHAT_NICK_MAX, nick) == -1 ||
        chat_get_str(&p, end, CHAT_ROOM_MAX, room) == -1)
        return -1;
    body->len = (size_t)(end - p);
    body->p = p;
    return 1;
}
