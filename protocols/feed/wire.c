/*
 * feed: the records workers exchange on the bus. A fixed header, the
 * topic, the payload. Every worker runs the same binary, so the header
 * is a struct in host order; it is copied in and out with memcpy, since
 * the bus hands data at any alignment.
 *
 *   IN   {topic_len, hops}                        topic payload
 *   OUT  {stamp, seq, lost_from, owner, topic_len} topic payload
 */
#include <string.h>

#include "protocols/feed/feed.h"

struct wire_in {
    uint16_t topic_len;
    uint8_t hops;
    uint8_t unused[5];
};

struct wire_out {
    uint64_t stamp;
    uint64_t seq;
    uint64_t lost_from;
    int32_t owner;
    uint16_t topic_len;
    uint16_t unused;
};

_Static_assert(sizeof(struct wire_in) == 8, "IN header");
_Static_assert(sizeof(struct wire_out) == 32, "OUT header");

size_t feed_rec_head(enum feed_kind kind)
{
    return kind == FEED_KIND_IN ? sizeof(struct wire_in)
                                : sizeof(struct wire_out);
}

size_t feed_rec_encode(enum feed_kind kind, const struct feed_rec *r,
                       unsigned char *buf, size_t cap)
{
    size_t head = feed_rec_head(kind);
    size_t n = head + r->topic_len + r->len;

    if (n > cap || r->topic_len > FEED_TOPIC_MAX)
        return 0;
    if (kind == FEED_KIND_IN) {
        struct wire_in h = {.topic_len = (uint16_t)r->topic_len,
                            .hops = (uint8_t)r->hops};
        memcpy(buf, &h, sizeof(h));
    } else {
        struct wire_out h = {.stamp = r->epoch.stamp,
                             .seq = r->seq,
                             .lost_from = r->lost_from,
                             .owner = r->epoch.owner,
                             .topic_len = (uint16_t)r->topic_len};
        memcpy(buf, &h, sizeof(h));
    }
    memcpy(buf + head, r->topic, r->topic_len);
    if (r->len != 0)
        memcpy(buf + head + r->topic_len, r->payload, r->len);
    return n;
}

int feed_rec_decode(enum feed_kind kind, const void *p, size_t len,
                    struct feed_rec *r)
{
    const char *bytes = p;
    size_t head = feed_rec_head(kind);
    size_t tlen;

    memset(r, 0, sizeof(*r));
    if (len < head)
        return -1;
    if (kind == FEED_KIND_IN) {
        struct wire_in h;
        memcpy(&h, p, sizeof(h));
        tlen = h.topic_len;
        r->hops = h.hops;
    } else {
        struct wire_out h;
        memcpy(&h, p, sizeof(h));
        tlen = h.topic_len;
        r->epoch.stamp = h.stamp;
        r->epoch.owner = h.owner;
        r->seq = h.seq;
        r->lost_from = h.lost_from;
    }
    if (tlen == 0 || tlen > FEED_TOPIC_MAX || tlen > len - head)
        return -1;
    r->topic = bytes + head;
    r->topic_len = tlen;
    r->payload = bytes + head + tlen;
    r->len = len - head - tlen;
    return 0;
}

void feed_rec_set_lost(unsigned char *rec, uint64_t lost_from)
{
    memcpy(rec + offsetof(struct wire_out, lost_from), &lost_from,
           sizeof(lost_from));
}
