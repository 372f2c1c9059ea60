/*
 * libFuzzer target for the feed protocol's parsers (protocols/feed/):
 * the input framing of reader.c, the commands and PUB frames of topic.c,
 * the bus records of wire.c and the sequence tracking.
 *
 * The stream is run through feed_read as weft delivers it (keep the
 * unconsumed tail, append the next piece), once in one piece and once
 * split, the second time with some frames refused once (FEED_FRAME_AGAIN,
 * as a full bus does). Both runs must see the same frames. Every frame
 * goes through the parsers, whose results must hold together: a topic
 * they accept passes feed_topic_check and lies in the frame, a pattern
 * matches its own text, a record decodes to what was encoded. Input:
 *
 *   byte 0    bit 0: 0 lines, 1 prefixed; bits 1-4: pieces of 1 to 2^n
 *             bytes; bits 5-7: refuse every k-th frame once (0: never)
 *   bytes 1-2 max frame, big-endian (1 + value % 4096)
 *   bytes 3-6 seed of the split pattern
 *   then      the stream
 *
 * Build and run: see README.md in this directory.
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD 7

/* The frames seen, as one string: each frame's bytes and a length. */
struct seen {
    unsigned char *out;
    size_t n, cap;
    unsigned refuse_every; /* 0: never */
    unsigned count;
    int refused; /* the last frame was refused: take it next time */
    struct feed_seq seq;
};

static void seen_add(struct seen *s, const void *p, size_t len)
{
    if (len == 0)
        return;
    if (s->n + len > s->cap) {
        s->cap = (s->n + len) * 2;
        s->out = realloc(s->out, s->cap);
        assert(s->out != NULL);
    }
    memcpy(s->out + s->n, p, len);
    s->n += len;
}

/* The records of wire.c give back what they were given. */
static void check_records(const struct feed_msg *m, uint64_t seq)
{
    unsigned char buf[FEED_TOPIC_MAX + 4096 + 64];
    struct feed_rec r = {.topic = m->topic, .topic_len = m->topic_len,
                         .payload = m->payload, .len = m->len, .hops = 1,
                         .epoch = {seq * 7, (int32_t)(seq % 5)}, .seq = seq};
    struct feed_rec d;

    for (int kind = FEED_KIND_IN; kind <= FEED_KIND_OUT; kind++) {
        size_t n = feed_rec_encode(kind, &r, buf, sizeof(buf));
        assert(n == feed_rec_head(kind) + m->topic_len + m->len);
        assert(feed_rec_decode(kind, buf, n, &d) == 0);
        assert(d.topic_len == m->topic_len && d.len == m->len);
        assert(memcmp(d.topic, m->topic, m->topic_len) == 0);
        assert(d.len == 0 || memcmp(d.payload, m->payload, d.len) == 0);
        if (kind == FEED_KIND_OUT)
            assert(d.seq == seq && d.epoch.stamp == seq * 7);
        else
            assert(d.hops == 1);
    }
}

/* An accepted message lies in its frame and has a valid topic. */
static void check_msg(const char *f, size_t len, const struct feed_msg *m,
                      size_t max)
{
    assert(m->topic >= f && m->topic + m->topic_len <= f + len);
    assert(feed_topic_check(m->topic, m->topic_len) == NULL);
    assert(m->payload + m->len == f + len && m->len <= max);
}

/* An accepted pattern matches its own text (and more, when a prefix). */
static void check_cmd(const struct feed_cmd *c)
{
    char t[FEED_TOPIC_MAX + 2];

    assert(c->pat.len <= FEED_TOPIC_MAX);
    memcpy(t, c->pat.text, c->pat.len);
    if (c->pat.prefix) {
        t[c->pat.len] = 'x';
        assert(feed_pattern_match(&c->pat, t, c->pat.len + 1));
    } else {
        assert(feed_topic_check(t, c->pat.len) == NULL);
    }
    if (c->pat.len > 0)
        assert(feed_pattern_match(&c->pat, t, c->pat.len));
}

/* Numbers from the frame, through the sequence tracker. */
static void check_seq(struct feed_seq *st, const unsigned char *f, size_t len)
{
    struct feed_epoch e = {len > 0 ? f[0] % 3 : 0, 0};
    uint64_t seq = len > 1 ? f[1] % 16 : 0;
    uint64_t lost = len > 2 ? f[2] % 16 : 0;
    uint64_t first = 0, last = 0;
    struct feed_seq before = *st;
    unsigned what = feed_seq_note(st, &e, seq, lost, &first, &last);

    if (what & FEED_SEQ_STALE) {
        assert(st->known == before.known && st->last == before.last);
        return;
    }
    assert(st->known && st->last == seq && st->epoch.stamp == e.stamp);
    if (what & FEED_SEQ_GAP)
        assert(first >= 1 && first <= last && last < seq);
    if (what & FEED_SEQ_RESET)
        assert(before.known && feed_epoch_cmp(&e, &before.epoch) > 0);
}

static int frame_cb(void *arg, const char *f, size_t len)
{
    struct seen *s = arg;
    struct feed_msg m;
    struct feed_cmd c;
    size_t max = len;

    if (f == NULL) {
        seen_add(s, "!", 1);
        return FEED_FRAME_NEXT;
    }
    if (s->refused) {
        s->refused = 0;
    } else if (s->refuse_every != 0 && ++s->count % s->refuse_every == 0) {
        s->refused = 1;
        return FEED_FRAME_AGAIN; /* the next call presents it again */
    }
    if (feed_pub_parse_line(f, len, max, &m) == NULL) {
        check_msg(f, len, &m, max);
        check_records(&m, len + 1);
    }
    if (feed_pub_parse_body(f, len, max, &m) == NULL) {
        check_msg(f, len, &m, max);
        assert(m.len == 0 || memchr(m.payload, '\n', m.len) == NULL);
    }
    if (feed_cmd_parse(f, len, &c) == NULL)
        check_cmd(&c);
    check_seq(&s->seq, (const unsigned char *)f, len);
    seen_add(s, f, len);
    seen_add(s, &len, sizeof(len));
    return FEED_FRAME_NEXT;
}

/* The next piece size: 1 to 2^log bytes, from an xorshift generator. */
static size_t next_piece(uint32_t *x, unsigned log)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return 1 + *x % ((size_t)1 << log);
}

/* Deliver the stream as weft does, in pieces (whole when log is 0). */
static void run(struct feed_reader rd, const uint8_t *in, size_t len,
                unsigned log, uint32_t seed, struct seen *s)
{
    unsigned char *buf = malloc(len + 1);
    size_t held = 0, pos = 0;
    uint32_t x = seed | 1;

    assert(buf != NULL);
    for (;;) {
        size_t k = log == 0 ? len - pos : next_piece(&x, log);
        if (k > len - pos)
            k = len - pos;
        memcpy(buf + held, in + pos, k);
        pos += k;
        held += k;
        size_t used = feed_read(&rd, (const char *)buf, held, frame_cb, s);
        assert(used <= held);
        memmove(buf, buf + used, held - used);
        held -= used;
        if (pos == len && used == 0 && !s->refused)
            break;
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feed_reader rd = {0};
    struct seen whole = {0}, split = {0};

    if (size < HEAD)
        return 0;
    rd.framing = data[0] & 1 ? FEED_PREFIXED : FEED_LINE;
    rd.max = 1 + (((size_t)data[1] << 8 | data[2]) % 4096);
    uint32_t seed = (uint32_t)data[3] << 24 | (uint32_t)data[4] << 16 |
                    (uint32_t)data[5] << 8 | data[6];
    unsigned log = 1 + ((data[0] >> 1) & 15);
    split.refuse_every = (data[0] >> 5) & 7;
    run(rd, data + HEAD, size - HEAD, 0, seed, &whole);
    run(rd, data + HEAD, size - HEAD, log, seed, &split);
    assert(whole.n == split.n &&
           (whole.n == 0 || memcmp(whole.out, split.out, whole.n) == 0));
    free(whole.out);
    free(split.out);
    return 0;
}
