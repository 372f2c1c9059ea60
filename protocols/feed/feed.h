/*
 * feed: a real-time data feed over weft's message bus. What the files of
 * protocols/feed share; the design is described at the top of feed.c.
 *
 *   topic.c      pure helpers: topics, patterns, commands, PUB frames,
 *                sequence tracking, gap records, output lines
 *   map.c        a hash map keyed by topic
 *   wire.c       the records the workers exchange on the bus
 *   reader.c     framing of publisher and subscriber input
 *   outbox.c     the owner's per-receiver queue of refused records
 *   sequencer.c  the owner side: numbering and distribution
 *   publish.c    publisher connections
 *   subscribe.c  subscriber connections and local delivery
 *   feed.c       configuration, per-worker channels, the protocol struct
 */
#ifndef WEFT_PROTOCOLS_FEED_FEED_H
#define WEFT_PROTOCOLS_FEED_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "weft/bus.h"
#include "weft/weft.h"

#define FEED_TOPIC_MAX 200    /* bytes of a topic */
#define FEED_CHANNEL_MAX 64   /* bytes of a channel name */
#define FEED_SUBS_MAX 256     /* subscriptions of one connection */
#define FEED_CMD_MAX 512      /* longest subscriber command line */
#define FEED_PEND_MAX 65536   /* subscriber output gathered before a write */
#define FEED_RETRY_MS 1       /* retry after a full ring */
#define FEED_U64_DIGITS 20

#define FEED_MESSAGE_DEFAULT 16384
#define FEED_QUEUE_DEFAULT (1024 * 1024)
#define FEED_BACKLOG_DEFAULT (16 * 1024 * 1024)

enum feed_role { FEED_PUBLISH, FEED_SUBSCRIBE };
enum feed_framing { FEED_LINE, FEED_PREFIXED };

/* What configure builds for a listener; read-only in the workers. */
struct feed_conf {
    enum feed_role role;
    enum feed_framing framing;
    size_t max_message; /* payload bytes, before the bus caps it */
    size_t max_queue;   /* subscriber output queue */
    size_t max_backlog; /* owner's queue per receiver */
    char channel[FEED_CHANNEL_MAX + 1];
};

/* ---- topic.c: pure helpers ---------------------------------------------- */

/* NULL when t[0..len) is a valid topic, else a static reason. */
const char *feed_topic_check(const char *t, size_t len);

/* NULL when name is a valid channel name, else a static reason. */
const char *feed_channel_check(const char *name);

/* FNV-1a of the topic: the same in every worker (ownership, maps). */
uint64_t feed_topic_hash(const char *t, size_t len);

/* An exact topic, or a prefix (the pattern ended with '*'). */
struct feed_pattern {
    const char *text; /* without the '*' */
    size_t len;
    bool prefix;
};

/* Parse "topic" or "prefix*". NULL, or a static reason. */
const char *feed_pattern_parse(const char *s, size_t len,
                               struct feed_pattern *p);

/* Does topic t match pattern p? */
bool feed_pattern_match(const struct feed_pattern *p, const char *t,
                        size_t tlen);

enum feed_cmd_kind { FEED_CMD_SUB, FEED_CMD_UNSUB };

/* A subscriber command line. */
struct feed_cmd {
    enum feed_cmd_kind kind;
    struct feed_pattern pat;
    const char *arg; /* the pattern as written, '*' included */
    size_t arg_len;
};

/* Parse "SUB <pattern>" or "UNSUB <pattern>". NULL, or a reason. */
const char *feed_cmd_parse(const char *line, size_t len,
                           struct feed_cmd *cmd);

/* A message from a publisher. */
struct feed_msg {
    const char *topic;
    size_t topic_len;
    const char *payload;
    size_t len;
};

/* "PUB <topic> <payload>", payload at most max bytes. NULL or reason. */
const char *feed_pub_parse_line(const char *line, size_t len, size_t max,
                                struct feed_msg *m);

/* A prefixed body "<topic> <payload>", no "\n" in it. NULL or reason. */
const char *feed_pub_parse_body(const char *body, size_t len, size_t max,
                                struct feed_msg *m);

/*
 * Who numbered a topic's messages, and since when: the owner's bus id
 * and the time (CLOCK_MONOTONIC ns, one clock for every process) it
 * started counting. A later epoch restarts the numbers at 1.
 */
struct feed_epoch {
    uint64_t stamp;
    int32_t owner;
};

/* <0, 0, >0 as a is older than, the same as, newer than b. */
int feed_epoch_cmp(const struct feed_epoch *a, const struct feed_epoch *b);

/* What a worker saw last of one topic. */
struct feed_seq {
    bool known;
    struct feed_epoch epoch;
    uint64_t last;
};

/* What feed_seq_note found; RESET and GAP come before the message. */
enum {
    FEED_SEQ_STALE = 1, /* an old epoch or a number seen: drop it */
    FEED_SEQ_RESET = 2, /* a new epoch: numbers start again at 1 */
    FEED_SEQ_GAP = 4    /* messages *first..*last never arrived */
};

/*
 * Note message seq of epoch e (lost_from: the first number its owner
 * dropped for this worker before it, or 0). Returns a mask of FEED_SEQ_*
 * (0: the next message, deliver it).
 */
unsigned feed_seq_note(struct feed_seq *st, const struct feed_epoch *e,
                       uint64_t seq, uint64_t lost_from, uint64_t *first,
                       uint64_t *last);

/*
 * What a subscriber that fell behind missed of one topic, told when it
 * catches up: a gap in the epoch it knew, a reset, a gap in the new one.
 */
struct feed_skip {
    bool old_gap;
    bool reset;
    bool gap;
    uint64_t old_first, old_last;
    uint64_t first, last;
};

/* Messages first..last were missed. */
void feed_skip_gap(struct feed_skip *k, uint64_t first, uint64_t last);

/* The topic's numbers restarted. */
void feed_skip_reset(struct feed_skip *k);

/* Messages counted in k (for messages_skipped). */
uint64_t feed_skip_count(const struct feed_skip *k);

/* Longest output of feed_skip_lines. */
#define FEED_SKIP_LINES_MAX (3 * (FEED_TOPIC_MAX + 2 * FEED_U64_DIGITS + 10))

/* The GAP / RESET lines for k, into out (FEED_SKIP_LINES_MAX). */
size_t feed_skip_lines(const struct feed_skip *k, const char *t, size_t tlen,
                       char *out);

/* Longest line of feed_line_* without its payload. */
#define FEED_LINE_HEAD_MAX (FEED_TOPIC_MAX + 2 * FEED_U64_DIGITS + 10)

/* "MSG <t> <seq> <payload>\n" into out; returns its length. */
size_t feed_line_msg(char *out, const char *t, size_t tlen, uint64_t seq,
                     const char *payload, size_t len);

/* "GAP <t> <first> <last>\n" into out (FEED_LINE_HEAD_MAX). */
size_t feed_line_gap(char *out, const char *t, size_t tlen, uint64_t first,
                     uint64_t last);

/* "RESET <t>\n" into out (FEED_LINE_HEAD_MAX). */
size_t feed_line_reset(char *out, const char *t, size_t tlen);

/* ---- map.c: a hash map keyed by topic ----------------------------------- */

struct feed_map_ent;

/*
 * Keys are copied; each value is vsize bytes, zeroed when added, at a
 * stable address until deleted. A zeroed struct is not a map: init it.
 */
struct feed_map {
    struct feed_map_ent **b;
    size_t nb; /* buckets, a power of two (0 until the first add) */
    size_t n;  /* entries */
    size_t vsize;
};

struct feed_map_iter {
    size_t i;
    struct feed_map_ent *next;
};

void feed_map_init(struct feed_map *m, size_t vsize);

/* The value of key, or NULL. */
void *feed_map_get(const struct feed_map *m, const char *key, size_t len);

/*
 * The value of key, added (zeroed) when absent (*added set to true).
 * NULL when memory is short.
 */
void *feed_map_put(struct feed_map *m, const char *key, size_t len,
                   bool *added);

/* The key of a value (NUL-terminated), its length in *len. */
const char *feed_map_key(const struct feed_map *m, const void *val,
                         size_t *len);

/* Remove the entry of val (from feed_map_get / _put / _next). */
void feed_map_del(struct feed_map *m, void *val);

/*
 * Iterate: it zeroed, then feed_map_next until NULL. The value returned
 * may be deleted before the next call; nothing else may change.
 */
void *feed_map_next(const struct feed_map *m, struct feed_map_iter *it);

/* Free every entry (fn, when not NULL, on each value first). */
void feed_map_free(struct feed_map *m, void (*fn)(void *val));

/* ---- wire.c: records between workers ------------------------------------ */

/*
 * IN: from a publisher's worker to the topic's owner (bus topic
 * feed/<channel>/in). OUT: from the owner to every worker, numbered
 * (feed/<channel>/out).
 */
enum feed_kind { FEED_KIND_IN, FEED_KIND_OUT };

/* A record decoded; pointers into the bytes it came from. */
struct feed_rec {
    const char *topic;
    size_t topic_len;
    const char *payload;
    size_t len;
    unsigned hops;          /* IN: forwarded that many times */
    struct feed_epoch epoch; /* OUT */
    uint64_t seq;           /* OUT */
    uint64_t lost_from;     /* OUT: see feed_seq_note */
};

/* Header bytes of each kind, before topic and payload. */
size_t feed_rec_head(enum feed_kind kind);

/* Encode r as kind into buf (cap bytes). Its size, or 0 if too big. */
size_t feed_rec_encode(enum feed_kind kind, const struct feed_rec *r,
                       unsigned char *buf, size_t cap);

/* Decode the len bytes at p as kind. 0, or -1 when they make no sense. */
int feed_rec_decode(enum feed_kind kind, const void *p, size_t len,
                    struct feed_rec *r);

/* Set lost_from in an encoded OUT record. */
void feed_rec_set_lost(unsigned char *rec, uint64_t lost_from);

/* ---- reader.c: input framing -------------------------------------------- */

enum feed_frame_rc {
    FEED_FRAME_NEXT,  /* taken; go on */
    FEED_FRAME_STOP,  /* taken; stop here (paused, closing) */
    FEED_FRAME_AGAIN  /* not taken: present it again later */
};

/*
 * Called with each frame (a line without "\n", or a prefixed body), and
 * with frame NULL where a frame too long was dropped. Returns a
 * feed_frame_rc.
 */
typedef int (*feed_frame_fn)(void *arg, const char *frame, size_t len);

/* A connection's framing, and what is left of a frame too long. */
struct feed_reader {
    enum feed_framing framing;
    size_t max;     /* longest line (without "\n") or body */
    size_t skip;    /* prefixed: bytes of a long frame still to drop */
    bool skip_line; /* line: drop up to the next "\n" */
};

/* Hand the frames of data to fn; returns the bytes consumed. */
size_t feed_read(struct feed_reader *rd, const char *data, size_t len,
                 feed_frame_fn fn, void *arg);

/* ---- outbox.c: records a receiver's ring refused ------------------------ */

struct feed_obent {
    struct feed_obent *next;
    size_t len;
    enum feed_kind kind;
    unsigned char rec[];
};

/*
 * A FIFO of encoded records for one receiver, bounded in bytes: past the
 * bound the oldest go, and for each topic the first number dropped is
 * kept (lost) until a later record of that topic carries it.
 */
struct feed_outbox {
    struct feed_obent *head, *tail;
    size_t bytes;
    size_t count;
    struct feed_map lost; /* topic -> uint64_t first number dropped */
    uint64_t dropped;     /* records dropped, ever */
    bool warned;          /* the owner logged this backlog's drops */
};

void feed_outbox_init(struct feed_outbox *ob);

/* Queue a copy of rec. 0, or -1 when memory is short. */
int feed_outbox_push(struct feed_outbox *ob, enum feed_kind kind,
                     const unsigned char *rec, size_t len);

/* Drop the head record (sent). */
void feed_outbox_pop(struct feed_outbox *ob);

/*
 * Drop the oldest records while more than max bytes are queued (never
 * the newest). Returns how many went; *in_lost counts the IN ones.
 */
size_t feed_outbox_trim(struct feed_outbox *ob, size_t max, size_t *in_lost);

/*
 * Before an OUT record goes: set its lost_from from the lost numbers of
 * its topic, which are then forgotten.
 */
void feed_outbox_mark(struct feed_outbox *ob, unsigned char *rec, size_t len);

/* Drop everything. */
void feed_outbox_clear(struct feed_outbox *ob);

/* ---- per-worker state --------------------------------------------------- */

struct feed_sub;
struct feed_pub;

/* One topic as this worker knows it (value of feed_chan.topics). */
struct feed_topic {
    /* Owner side: the epoch and last number given here (stamp 0: none). */
    struct feed_epoch own;
    uint64_t own_seq;
    /* Receiving side. */
    struct feed_seq rx;
    bool late_logged; /* a late message was logged since the last reset */
    /* The local subscribers it goes to, valid while gen == subs_gen. */
    uint64_t gen;
    struct feed_sub **match;
    size_t nmatch, cap;
};

/* A prefix subscription, in the channel's list. */
struct feed_prefix {
    char *text;
    size_t len;
    struct feed_sub *s;
};

/* The subscribers of one exact topic (value of feed_chan.exact). */
struct feed_sublist {
    struct feed_sub **v;
    size_t n, cap;
};

/*
 * A channel in this worker, shared by its listeners on that channel:
 * the bus subscriptions, the topics, the owner's outboxes, the local
 * subscribers. Freed when its last listener stops.
 */
struct feed_chan {
    LIST_ENTRY(feed_chan) link;
    char name[FEED_CHANNEL_MAX + 1];
    char bus_in[FEED_CHANNEL_MAX + 16];
    char bus_out[FEED_CHANNEL_MAX + 16];
    int refs;
    int self;           /* this worker's bus id */
    size_t max_backlog; /* the largest of its listeners' */
    struct weft_bus_sub *sub_in, *sub_out, *watch;
    unsigned char *scratch; /* one record being built */
    size_t scratch_size;    /* weft_bus_max_message() */
    struct feed_map topics; /* -> struct feed_topic */
    uint64_t last_stamp;

    /* Owner side. */
    struct feed_outbox *outbox; /* one per bus id */
    int nids;
    size_t backlogged; /* outboxes not empty */
    struct weft_timer *outbox_timer;

    /* Publishers waiting for room on the bus. */
    LIST_HEAD(, feed_pub) waiting;
    struct weft_timer *pub_timer;

    /* Subscribers. */
    struct feed_map exact; /* -> struct feed_sublist */
    struct feed_prefix *prefixes;
    size_t nprefixes, prefixes_cap;
    uint64_t subs_gen; /* moves when a subscription changes */
    uint64_t mark;     /* dedup stamp for building match lists */
    LIST_HEAD(, feed_sub) dirty; /* with output gathered */
    struct weft_timer *flush_timer;
    char *line; /* one MSG line */
    size_t line_cap;
};

/* Per listener and worker. */
struct feed_lst {
    struct feed_chan *ch;
    const struct feed_conf *conf;
    size_t max_payload; /* max_message capped by the bus */
};

/* feed.c */
struct feed_topic *feed_topic_get(struct feed_chan *ch, const char *t,
                                  size_t len);

/* sequencer.c */
int feed_seq_start(struct feed_chan *ch);
void feed_seq_stop(struct feed_chan *ch);
int feed_owner(const struct feed_chan *ch, const char *t, size_t len);

/* publish.c */
void feed_pub_made(struct weft_conn *c);
size_t feed_pub_data(struct weft_conn *c, const char *data, size_t len);
void feed_pub_writable(struct weft_conn *c);
void feed_pub_lost(struct weft_conn *c);
void feed_pub_stop(struct feed_chan *ch);

/* subscribe.c */
int feed_sub_start(struct feed_chan *ch);
void feed_sub_stop(struct feed_chan *ch);
void feed_sub_made(struct weft_conn *c);
size_t feed_sub_data(struct weft_conn *c, const char *data, size_t len);
void feed_sub_writable(struct weft_conn *c);
void feed_sub_lost(struct weft_conn *c);

#endif
