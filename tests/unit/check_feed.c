/*
 * Unit tests for the pure parts of the feed protocol (protocols/feed/):
 * topics, patterns, commands and PUB frames (topic.c), sequence tracking
 * and gap records, the lines subscribers read, the topic map (map.c),
 * the bus records (wire.c), the owner's outbox (outbox.c) and the input
 * framing with its refusals and overlong frames (reader.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"
#include "tests/unit/check_run.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- topics, patterns, commands ---------------------------------------- */

START_TEST(test_topic_check)
{
    char t[FEED_TOPIC_MAX + 1];

    ck_assert_ptr_null(feed_topic_check(S("a")));
    ck_assert_ptr_null(feed_topic_check(S("prices/EUR.USD")));
    ck_assert_ptr_null(feed_topic_check(S("caf\xc3\xa9")));
    ck_assert_str_eq(feed_topic_check(S("")), "empty topic");
    ck_assert_str_eq(feed_topic_check(S("a b")), "bad character in topic");
    ck_assert_str_eq(feed_topic_check(S("a*")), "bad character in topic");
    ck_assert_str_eq(feed_topic_check(S("a\tb")), "bad character in topic");
    ck_assert_str_eq(feed_topic_check(S("a\x7f")), "bad character in topic");
    ck_assert_str_eq(feed_topic_check(S("a\rb")), "bad character in topic");
    memset(t, 'x', sizeof(t));
    ck_assert_ptr_null(feed_topic_check(t, FEED_TOPIC_MAX));
    ck_assert_str_eq(feed_topic_check(t, FEED_TOPIC_MAX + 1),
                     "topic too long");
}
END_TEST

START_TEST(test_channel_check)
{
    char name[FEED_CHANNEL_MAX + 2];

    ck_assert_ptr_null(feed_channel_check("feed"));
    ck_assert_ptr_null(feed_channel_check("a-b_c.9"));
    ck_assert_ptr_nonnull(feed_channel_check(""));
    ck_assert_ptr_nonnull(feed_channel_check("a/b"));
    ck_assert_ptr_nonnull(feed_channel_check("a b"));
    memset(name, 'c', sizeof(name));
    name[FEED_CHANNEL_MAX] = '\0';
    ck_assert_ptr_null(feed_channel_check(name));
    name[FEED_CHANNEL_MAX] = 'c';
    name[FEED_CHANNEL_MAX + 1] = '\0';
    ck_assert_ptr_nonnull(feed_channel_check(name));
}
END_TEST

START_TEST(test_pattern)
{
    struct feed_pattern p;

    ck_assert_ptr_null(feed_pattern_parse(S("a/b"), &p));
    ck_assert(!p.prefix);
    ck_assert(feed_pattern_match(&p, S("a/b")));
    ck_assert(!feed_pattern_match(&p, S("a/bc")));
    ck_assert(!feed_pattern_match(&p, S("a/")));

    ck_assert_ptr_null(feed_pattern_parse(S("a/*"), &p));
    ck_assert(p.prefix);
    ck_assert_uint_eq(p.len, 2);
    ck_assert(feed_pattern_match(&p, S("a/b")));
    ck_assert(feed_pattern_match(&p, S("a/")));
    ck_assert(!feed_pattern_match(&p, S("a")));
    ck_assert(!feed_pattern_match(&p, S("b/a")));

    /* "*" alone: every topic. */
    ck_assert_ptr_null(feed_pattern_parse(S("*"), &p));
    ck_assert(p.prefix && p.len == 0);
    ck_assert(feed_pattern_match(&p, S("anything")));

    ck_assert_str_eq(feed_pattern_parse(S("a*b"), &p),
                     "bad character in topic");
    ck_assert_str_eq(feed_pattern_parse(S("a**"), &p),
                     "bad character in topic");
    ck_assert_str_eq(feed_pattern_parse(S(""), &p), "empty topic");
}
END_TEST

START_TEST(test_cmd_parse)
{
    struct feed_cmd c;

    ck_assert_ptr_null(feed_cmd_parse(S("SUB a/b"), &c));
    ck_assert(c.kind == FEED_CMD_SUB && !c.pat.prefix);
    ck_assert_uint_eq(c.arg_len, 3);
    ck_assert_ptr_null(feed_cmd_parse(S("UNSUB x*"), &c));
    ck_assert(c.kind == FEED_CMD_UNSUB && c.pat.prefix);
    ck_assert_uint_eq(c.pat.len, 1);
    ck_assert_uint_eq(c.arg_len, 2);
    ck_assert_str_eq(feed_cmd_parse(S("SUB"), &c), "missing topic");
    ck_assert_str_eq(feed_cmd_parse(S("SUB "), &c), "missing topic");
    ck_assert_str_eq(feed_cmd_parse(S("UNSUB"), &c), "missing topic");
    ck_assert_str_eq(feed_cmd_parse(S("SUBX a"), &c), "unknown command");
    ck_assert_str_eq(feed_cmd_parse(S("sub a"), &c), "unknown command");
    ck_assert_str_eq(feed_cmd_parse(S("PUB a b"), &c), "unknown command");
    ck_assert_str_eq(feed_cmd_parse(S("SUB a b"), &c),
                     "bad character in topic");
    ck_assert_str_eq(feed_cmd_parse(S("SUB  a"), &c),
                     "bad character in topic");
}
END_TEST

START_TEST(test_pub_parse)
{
    struct feed_msg m;

    ck_assert_ptr_null(feed_pub_parse_line(S("PUB t hello world"), 100, &m));
    ck_assert_uint_eq(m.topic_len, 1);
    ck_assert_uint_eq(m.len, 11);
    ck_assert(memcmp(m.payload, "hello world", 11) == 0);
    /* An empty payload, with or without its space. */
    ck_assert_ptr_null(feed_pub_parse_line(S("PUB t"), 100, &m));
    ck_assert(m.topic_len == 1 && m.len == 0);
    ck_assert_ptr_null(feed_pub_parse_line(S("PUB t "), 100, &m));
    ck_assert(m.topic_len == 1 && m.len == 0);
    /* Spaces inside the payload are the payload's. */
    ck_assert_ptr_null(feed_pub_parse_line(S("PUB t  x "), 100, &m));
    ck_assert(m.len == 3 && memcmp(m.payload, " x ", 3) == 0);
    ck_assert_str_eq(feed_pub_parse_line(S("PUB  t"), 100, &m),
                     "empty topic");
    ck_assert_str_eq(feed_pub_parse_line(S("PUB"), 100, &m),
                     "missing topic");
    ck_assert_str_eq(feed_pub_parse_line(S("PUBX t"), 100, &m),
                     "unknown command");
    ck_assert_str_eq(feed_pub_parse_line(S("PUB t* x"), 100, &m),
                     "bad character in topic");
    ck_assert_ptr_null(feed_pub_parse_line(S("PUB t 12345"), 5, &m));
    ck_assert_str_eq(feed_pub_parse_line(S("PUB t 123456"), 5, &m),
                     "message too long");

    ck_assert_ptr_null(feed_pub_parse_body(S("t a b"), 100, &m));
    ck_assert(m.topic_len == 1 && m.len == 3);
    ck_assert_ptr_null(feed_pub_parse_body(S("topic"), 100, &m));
    ck_assert(m.topic_len == 5 && m.len == 0);
    ck_assert_str_eq(feed_pub_parse_body(S(""), 100, &m), "empty topic");
    ck_assert_str_eq(feed_pub_parse_body(S(" x"), 100, &m), "empty topic");
    /* Any byte but a newline, which would split the subscriber's line. */
    ck_assert_ptr_null(feed_pub_parse_body(S("t a\rb\0c"), 100, &m));
    ck_assert_uint_eq(m.len, 5);
    ck_assert_str_eq(feed_pub_parse_body(S("t a\nb"), 100, &m),
                     "newline in payload");
}
END_TEST

START_TEST(test_hash)
{
    /* FNV-1a 64 test vectors: ownership must agree in every worker. */
    ck_assert_uint_eq(feed_topic_hash(S("")), 0xcbf29ce484222325u);
    ck_assert_uint_eq(feed_topic_hash(S("a")), 0xaf63dc4c8601ec8cu);
    ck_assert_uint_eq(feed_topic_hash(S("foobar")), 0x85944171f73967e8u);
}
END_TEST

/* ---- sequences and gaps ------------------------------------------------- */

START_TEST(test_seq_in_order)
{
    struct feed_seq st = {0};
    struct feed_epoch e = {100, 1};
    uint64_t f = 0, l = 0;

    /* Joining mid-stream is no gap. */
    ck_assert_uint_eq(feed_seq_note(&st, &e, 7, 0, &f, &l), 0);
    ck_assert_uint_eq(feed_seq_note(&st, &e, 8, 0, &f, &l), 0);
    ck_assert_uint_eq(feed_seq_note(&st, &e, 11, 0, &f, &l), FEED_SEQ_GAP);
    ck_assert(f == 9 && l == 10);
    /* Seen, or older: dropped. */
    ck_assert_uint_eq(feed_seq_note(&st, &e, 11, 0, &f, &l), FEED_SEQ_STALE);
    ck_assert_uint_eq(feed_seq_note(&st, &e, 3, 0, &f, &l), FEED_SEQ_STALE);
    ck_assert_uint_eq(feed_seq_note(&st, &e, 0, 0, &f, &l), FEED_SEQ_STALE);
    ck_assert_uint_eq(st.last, 11);
    /* lost_from is covered by the jump it comes with. */
    ck_assert_uint_eq(feed_seq_note(&st, &e, 14, 12, &f, &l), FEED_SEQ_GAP);
    ck_assert(f == 12 && l == 13);
}
END_TEST

START_TEST(test_seq_first_lost)
{
    struct feed_seq st = {0};
    struct feed_epoch e = {100, 1};
    uint64_t f = 0, l = 0;

    /* The owner dropped 5..9 for us before we knew the topic. */
    ck_assert_uint_eq(feed_seq_note(&st, &e, 10, 5, &f, &l), FEED_SEQ_GAP);
    ck_assert(f == 5 && l == 9);
    ck_assert_uint_eq(feed_seq_note(&st, &e, 11, 0, &f, &l), 0);
}
END_TEST

START_TEST(test_seq_epochs)
{
    struct feed_seq st = {0};
    struct feed_epoch old = {100, 1}, newer = {200, 0}, tie = {200, 3};
    uint64_t f = 0, l = 0;

    ck_assert_uint_eq(feed_seq_note(&st, &old, 41, 0, &f, &l), 0);
    ck_assert_uint_eq(feed_seq_note(&st, &newer, 1, 0, &f, &l),
                      FEED_SEQ_RESET);
    /* The old owner's backlog, late: dropped. */
    ck_assert_uint_eq(feed_seq_note(&st, &old, 42, 0, &f, &l),
                      FEED_SEQ_STALE);
    ck_assert_uint_eq(feed_seq_note(&st, &newer, 2, 0, &f, &l), 0);
    /* A newer epoch whose first numbers never came. */
    ck_assert_uint_eq(feed_seq_note(&st, &tie, 4, 0, &f, &l),
                      FEED_SEQ_RESET | FEED_SEQ_GAP);
    ck_assert(f == 1 && l == 3);
    ck_assert_int_lt(feed_epoch_cmp(&old, &newer), 0);
    ck_assert_int_lt(feed_epoch_cmp(&newer, &tie), 0);
    ck_assert_int_eq(feed_epoch_cmp(&tie, &tie), 0);
}
END_TEST

START_TEST(test_skip)
{
    struct feed_skip k = {0};
    char out[FEED_SKIP_LINES_MAX + 1];
    size_t n;

    ck_assert_uint_eq(feed_skip_lines(&k, S("t"), out), 0);
    feed_skip_gap(&k, 5, 5);
    feed_skip_gap(&k, 6, 6);
    feed_skip_gap(&k, 7, 9); /* a bus gap while skipping */
    feed_skip_gap(&k, 10, 10);
    ck_assert_uint_eq(feed_skip_count(&k), 6);
    n = feed_skip_lines(&k, S("t"), out);
    out[n] = '\0';
    ck_assert_str_eq(out, "GAP t 5 10\n");

    feed_skip_reset(&k);
    feed_skip_gap(&k, 1, 3);
    ck_assert_uint_eq(feed_skip_count(&k), 9);
    n = feed_skip_lines(&k, S("t"), out);
    out[n] = '\0';
    ck_assert_str_eq(out, "GAP t 5 10\nRESET t\nGAP t 1 3\n");

    /* A second reset: the middle epoch is over, its gap goes. */
    feed_skip_reset(&k);
    feed_skip_gap(&k, 1, 2);
    n = feed_skip_lines(&k, S("t"), out);
    out[n] = '\0';
    ck_assert_str_eq(out, "GAP t 5 10\nRESET t\nGAP t 1 2\n");

    struct feed_skip r = {0};
    feed_skip_reset(&r);
    feed_skip_gap(&r, 1, 1);
    n = feed_skip_lines(&r, S("t"), out);
    out[n] = '\0';
    ck_assert_str_eq(out, "RESET t\nGAP t 1 1\n");
}
END_TEST

START_TEST(test_lines)
{
    char out[FEED_LINE_HEAD_MAX + 16];
    char topic[FEED_TOPIC_MAX];
    size_t n;

    n = feed_line_msg(out, S("a/b"), 42, S("x y"));
    ck_assert_uint_eq(n, 15);
    ck_assert(memcmp(out, "MSG a/b 42 x y\n", n) == 0);
    n = feed_line_msg(out, S("a"), 1, NULL, 0);
    ck_assert(memcmp(out, "MSG a 1 \n", n) == 0 && n == 9);
    n = feed_line_gap(out, S("a"), 0, UINT64_MAX);
    ck_assert(memcmp(out, "GAP a 0 18446744073709551615\n", n) == 0);
    n = feed_line_reset(out, S("a"));
    ck_assert(memcmp(out, "RESET a\n", n) == 0 && n == 8);
    /* The longest heads fit their bound. */
    memset(topic, 't', sizeof(topic));
    ck_assert_uint_le(feed_line_gap(out, topic, sizeof(topic), UINT64_MAX,
                                    UINT64_MAX),
                      FEED_LINE_HEAD_MAX);
    ck_assert_uint_le(feed_line_msg(out, topic, sizeof(topic), UINT64_MAX,
                                    NULL, 0),
                      FEED_LINE_HEAD_MAX);
}
END_TEST

/* ---- the map ------------------------------------------------------------ */

START_TEST(test_map)
{
    struct feed_map m;
    struct feed_map_iter it = {0};
    char key[32];
    bool added;
    size_t n = 0, len;

    feed_map_init(&m, sizeof(uint64_t));
    ck_assert_ptr_null(feed_map_get(&m, S("x")));
    for (int i = 0; i < 1000; i++) {
        int k = snprintf(key, sizeof(key), "topic/%d", i);
        uint64_t *v = feed_map_put(&m, key, (size_t)k, &added);
        ck_assert(v != NULL && added && *v == 0);
        *v = (uint64_t)i;
    }
    ck_assert_uint_eq(m.n, 1000);
    uint64_t *v = feed_map_put(&m, S("topic/500"), &added);
    ck_assert(!added && *v == 500);
    ck_assert_str_eq(feed_map_key(&m, v, &len), "topic/500");
    ck_assert_uint_eq(len, 9);
    /* A prefix of a key is another key. */
    ck_assert_ptr_null(feed_map_get(&m, S("topic/5000")));
    ck_assert_ptr_null(feed_map_get(&m, S("topic/")));
    feed_map_del(&m, v);
    ck_assert_ptr_null(feed_map_get(&m, S("topic/500")));
    /* Delete the odd ones while iterating; every entry is seen once. */
    while ((v = feed_map_next(&m, &it)) != NULL) {
        n++;
        if (*v % 2 == 1)
            feed_map_del(&m, v);
    }
    ck_assert_uint_eq(n, 999);
    ck_assert_uint_eq(m.n, 499); /* 999 left, 500 of them odd */
    v = feed_map_get(&m, S("topic/998"));
    ck_assert(v != NULL && *v == 998);
    ck_assert_ptr_null(feed_map_get(&m, S("topic/999")));
    feed_map_free(&m, NULL);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(feed_map_get(&m, S("topic/998")));
    /* Usable again after free. */
    ck_assert_ptr_nonnull(feed_map_put(&m, S("again"), &added));
    feed_map_free(&m, NULL);
}
END_TEST

/* ---- records ------------------------------------------------------------ */

START_TEST(test_wire)
{
    unsigned char buf[512];
    struct feed_rec r = {.topic = "a/b", .topic_len = 3, .payload = "hi!",
                         .len = 3, .hops = 1};
    struct feed_rec d;
    size_t n;

    n = feed_rec_encode(FEED_KIND_IN, &r, buf, sizeof(buf));
    ck_assert_uint_eq(n, feed_rec_head(FEED_KIND_IN) + 6);
    ck_assert_int_eq(feed_rec_decode(FEED_KIND_IN, buf, n, &d), 0);
    ck_assert(d.topic_len == 3 && memcmp(d.topic, "a/b", 3) == 0);
    ck_assert(d.len == 3 && memcmp(d.payload, "hi!", 3) == 0);
    ck_assert_uint_eq(d.hops, 1);

    r.epoch = (struct feed_epoch){123456789, 3};
    r.seq = 77;
    r.lost_from = 0;
    n = feed_rec_encode(FEED_KIND_OUT, &r, buf, sizeof(buf));
    ck_assert_uint_eq(n, feed_rec_head(FEED_KIND_OUT) + 6);
    feed_rec_set_lost(buf, 70);
    ck_assert_int_eq(feed_rec_decode(FEED_KIND_OUT, buf, n, &d), 0);
    ck_assert(d.epoch.stamp == 123456789 && d.epoch.owner == 3);
    ck_assert(d.seq == 77 && d.lost_from == 70 && d.len == 3);

    /* Too short, a topic past the end, no room to encode. */
    ck_assert_int_eq(feed_rec_decode(FEED_KIND_OUT, buf, 10, &d), -1);
    ck_assert_int_eq(feed_rec_decode(FEED_KIND_OUT, buf,
                                     feed_rec_head(FEED_KIND_OUT) + 2, &d),
                     -1);
    ck_assert_uint_eq(feed_rec_encode(FEED_KIND_OUT, &r, buf, 20), 0);
    /* An empty payload. */
    r.len = 0;
    n = feed_rec_encode(FEED_KIND_OUT, &r, buf, sizeof(buf));
    ck_assert_int_eq(feed_rec_decode(FEED_KIND_OUT, buf, n, &d), 0);
    ck_assert_uint_eq(d.len, 0);
}
END_TEST

/* An OUT record of topic t, number seq, into buf; its size. */
static size_t out_rec(unsigned char *buf, const char *t, uint64_t seq)
{
    struct feed_rec r = {.topic = t, .topic_len = strlen(t), .payload = "p",
                         .len = 1, .epoch = {1, 0}, .seq = seq};

    return feed_rec_encode(FEED_KIND_OUT, &r, buf, 256);
}

static uint64_t rec_lost(const unsigned char *rec, size_t len)
{
    struct feed_rec r;

    ck_assert_int_eq(feed_rec_decode(FEED_KIND_OUT, rec, len, &r), 0);
    return r.lost_from;
}

START_TEST(test_outbox)
{
    struct feed_outbox ob;
    unsigned char buf[256];
    size_t n = 0, in_lost;

    feed_outbox_init(&ob);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        n = out_rec(buf, seq % 2 ? "odds" : "even", seq);
        ck_assert_int_eq(feed_outbox_push(&ob, FEED_KIND_OUT, buf, n), 0);
    }
    ck_assert_uint_eq(ob.count, 10);
    ck_assert_uint_eq(ob.bytes, 10 * n);
    /* Keep 4 records: 1..6 go, the first lost of each topic is kept. */
    ck_assert_uint_eq(feed_outbox_trim(&ob, 4 * n, &in_lost), 6);
    ck_assert_uint_eq(in_lost, 0);
    ck_assert_uint_eq(ob.count, 4);
    ck_assert_uint_eq(ob.lost.n, 2);
    /* 7 (odd) leaves first: it carries odd's loss, from 1. */
    feed_outbox_mark(&ob, ob.head->rec, ob.head->len);
    ck_assert_uint_eq(rec_lost(ob.head->rec, ob.head->len), 1);
    ck_assert_uint_eq(ob.lost.n, 1);
    /* Dropped in turn while marked: odd's loss still starts at 1. */
    ck_assert_uint_eq(feed_outbox_trim(&ob, 3 * n, &in_lost), 1);
    feed_outbox_pop(&ob); /* 8 (even) */
    ck_assert(ob.head != NULL);
    feed_outbox_mark(&ob, ob.head->rec, ob.head->len); /* 9 (odd) */
    ck_assert_uint_eq(rec_lost(ob.head->rec, ob.head->len), 1);
    feed_outbox_pop(&ob);
    feed_outbox_mark(&ob, ob.head->rec, ob.head->len); /* 10 (even) */
    ck_assert_uint_eq(rec_lost(ob.head->rec, ob.head->len), 2);
    ck_assert_uint_eq(ob.lost.n, 0);
    feed_outbox_pop(&ob);
    ck_assert(ob.head == NULL && ob.tail == NULL && ob.bytes == 0);
    /* The newest record stays however small the bound. */
    ck_assert_int_eq(feed_outbox_push(&ob, FEED_KIND_IN, buf, n), 0);
    ck_assert_int_eq(feed_outbox_push(&ob, FEED_KIND_IN, buf, n), 0);
    ck_assert_uint_eq(feed_outbox_trim(&ob, 1, &in_lost), 1);
    ck_assert_uint_eq(in_lost, 1);
    ck_assert_uint_eq(ob.count, 1);
    ck_assert_uint_eq(ob.dropped, 8);
    feed_outbox_clear(&ob);
    ck_assert_uint_eq(ob.count, 0);
}
END_TEST

/* ---- input framing ------------------------------------------------------ */

/* What the frame handler saw, and how it answers. */
struct seen {
    char out[4096]; /* frames, each followed by '|'; '!' for too long */
    size_t n;
    int refuse; /* refuse (AGAIN) the frame starting with this byte */
};

static int seen_frame(void *arg, const char *frame, size_t len)
{
    struct seen *s = arg;

    if (frame == NULL) {
        s->out[s->n++] = '!';
        return FEED_FRAME_NEXT;
    }
    if (len > 0 && frame[0] == s->refuse) {
        s->refuse = 0; /* taken next time */
        return FEED_FRAME_AGAIN;
    }
    memcpy(s->out + s->n, frame, len);
    s->n += len;
    s->out[s->n++] = '|';
    return FEED_FRAME_NEXT;
}

/*
 * Feed in through rd as weft does (unconsumed bytes come back with the
 * next piece), cut into pieces of at most `piece` bytes. Returns what
 * the handler saw.
 */
static const char *run_reader(struct feed_reader rd, const char *in,
                              size_t len, size_t piece, int refuse,
                              struct seen *s)
{
    char buf[4096];
    size_t held = 0, pos = 0;

    memset(s, 0, sizeof(*s));
    s->refuse = refuse;
    while (pos < len || held > 0) {
        size_t k = len - pos < piece ? len - pos : piece;
        memcpy(buf + held, in + pos, k);
        pos += k;
        held += k;
        size_t used = feed_read(&rd, buf, held, seen_frame, s);
        ck_assert_uint_le(used, held);
        memmove(buf, buf + used, held - used);
        held -= used;
        if (k == 0 && used == 0)
            break; /* a partial frame at the end */
    }
    s->out[s->n] = '\0';
    return s->out;
}

START_TEST(test_reader_lines)
{
    static const char in[] = "PUB a 1\nPUB b 2\r\n\nTOOLONGLINE!!\nPUB c\n";
    struct feed_reader rd = {.framing = FEED_LINE, .max = 8};
    struct seen s;

    for (size_t piece = 1; piece <= sizeof(in); piece++) {
        ck_assert_str_eq(run_reader(rd, S(in), piece, 0, &s),
                         "PUB a 1|PUB b 2\r||!PUB c|");
        /* A refused frame comes again, in its place. */
        ck_assert_str_eq(run_reader(rd, S(in), piece, 'P', &s),
                         "PUB a 1|PUB b 2\r||!PUB c|");
    }
    /* A long line at the very end, still open. */
    ck_assert_str_eq(run_reader(rd, S("abc\n0123456789"), 3, 0, &s),
                     "abc|!");
}
END_TEST

START_TEST(test_reader_prefixed)
{
    static const char in[] = "\0\0\0\3abc"
                             "\0\0\0\x0c" "0123456789ab"
                             "\0\0\0\0"
                             "\0\0\0\2xy";
    struct feed_reader rd = {.framing = FEED_PREFIXED, .max = 8};
    struct seen s;

    for (size_t piece = 1; piece <= sizeof(in); piece++) {
        ck_assert_str_eq(run_reader(rd, S(in), piece, 0, &s), "abc|!|xy|");
        ck_assert_str_eq(run_reader(rd, S(in), piece, 'x', &s),
                         "abc|!|xy|");
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("feed");
    TCase *tc = tcase_create("feed");

    tcase_add_test(tc, test_topic_check);
    tcase_add_test(tc, test_channel_check);
    tcase_add_test(tc, test_pattern);
    tcase_add_test(tc, test_cmd_parse);
    tcase_add_test(tc, test_pub_parse);
    tcase_add_test(tc, test_hash);
    tcase_add_test(tc, test_seq_in_order);
    tcase_add_test(tc, test_seq_first_lost);
    tcase_add_test(tc, test_seq_epochs);
    tcase_add_test(tc, test_skip);
    tcase_add_test(tc, test_lines);
    tcase_add_test(tc, test_map);
    tcase_add_test(tc, test_wire);
    tcase_add_test(tc, test_outbox);
    tcase_add_test(tc, test_reader_lines);
    tcase_add_test(tc, test_reader_prefixed);
    suite_add_tcase(s, tc);
    return check_run(s);
}
