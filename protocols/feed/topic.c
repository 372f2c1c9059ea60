/*
 * feed: pure helpers, functions of their arguments alone (unit-tested in
 * tests/unit/check_feed.c): topic and pattern checks, the commands and
 * PUB frames of the line protocol, sequence tracking with its gap and
 * reset notices, and the lines subscribers read.
 *
 * A topic is 1 to FEED_TOPIC_MAX bytes, none of them a control
 * character, a space, DEL or '*' (which ends a prefix pattern); bytes
 * above 0x7f pass, so UTF-8 topics work.
 */
#include <string.h>

#include "protocols/feed/feed.h"

static bool topic_byte_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '*';
}

/* NULL when every byte may be in a topic. */
static const char *topic_bytes_check(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!topic_byte_ok((unsigned char)t[i]))
            return "bad character in topic";
    return NULL;
}

const char *feed_topic_check(const char *t, size_t len)
{
    if (len == 0)
        return "empty topic";
    if (len > FEED_TOPIC_MAX)
        return "topic too long";
    return topic_bytes_check(t, len);
}

/* Letters, digits, '_', '-', '.': the name goes into bus topics. */
const char *feed_channel_check(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > FEED_CHANNEL_MAX)
        return "expected 1 to 64 characters";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return "expected letters, digits, '_', '-' and '.' only";
    }
    return NULL;
}

uint64_t feed_topic_hash(const char *t, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)t[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* "prefix*" (the prefix may be empty: every topic) or an exact topic. */
const char *feed_pattern_parse(const char *s, size_t len,
                               struct feed_pattern *p)
{
    p->text = s;
    p->prefix = len > 0 && s[len - 1] == '*';
    p->len = p->prefix ? len - 1 : len;
    if (!p->prefix)
        return feed_topic_check(s, len);
    if (p->len > FEED_TOPIC_MAX)
        return "topic too long";
    return topic_bytes_check(p->text, p->len);
}

bool feed_pattern_match(const struct feed_pattern *p, const char *t,
                        size_t tlen)
{
    if (p->prefix)
        return tlen >= p->len && memcmp(t, p->text, p->len) == 0;
    return tlen == p->len && memcmp(t, p->text, tlen) == 0;
}

/* Does line[0..len) start with word and a space? */
static bool word_is(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len > n && memcmp(line, word, n) == 0 && line[n] == ' ';
}

const char *feed_cmd_parse(const char *line, size_t len, struct feed_cmd *cmd)
{
    size_t skip;

    if (word_is(line, len, "SUB")) {
        cmd->kind = FEED_CMD_SUB;
        skip = 4;
    } else if (word_is(line, len, "UNSUB")) {
        cmd->kind = FEED_CMD_UNSUB;
        skip = 6;
    } else if ((len == 3 && memcmp(line, "SUB", 3) == 0) ||
               (len == 5 && memcmp(line, "UNSUB", 5) == 0)) {
        return "missing topic";
    } else {
        return "unknown command";
    }
    cmd->arg = line + skip;
    cmd->arg_len = len - skip;
    if (cmd->arg_len == 0)
        return "missing topic";
    return feed_pattern_parse(cmd->arg, cmd->arg_len, &cmd->pat);
}

/*
 * "<topic> <payload>" or "<topic>" (an empty payload): the topic ends at
 * the first space, the payload is everything after it.
 */
static const char *pub_split(const char *s, size_t len, size_t max,
                             struct feed_msg *m)
{
    const char *sp = memchr(s, ' ', len);
    const char *why;

    m->topic = s;
    m->topic_len = sp != NULL ? (size_t)(sp - s) : len;
    m->payload = sp != NULL ? sp + 1 : s + len;
    m->len = len - (size_t)(m->payload - s);
    if ((why = feed_topic_check(m->topic, m->topic_len)) != NULL)
        return why;
    return m->len > max ? "message too long" : NULL;
}

const char *feed_pub_parse_line(const char *line, size_t len, size_t max,
                                struct feed_msg *m)
{
    if (word_is(line, len, "PUB"))
        return pub_split(line + 4, len - 4, max, m);
    if (len == 3 && memcmp(line, "PUB", 3) == 0)
        return "missing topic";
    return "unknown command";
}

/* A body may hold any byte but "\n", which would split the MSG line. */
const char *feed_pub_parse_body(const char *body, size_t len, size_t max,
                                struct feed_msg *m)
{
    const char *why = pub_split(body, len, max, m);

    if (why == NULL && m->len > 0 && memchr(m->payload, '\n', m->len))
        why = "newline in payload";
    return why;
}

int feed_epoch_cmp(const struct feed_epoch *a, const struct feed_epoch *b)
{
    if (a->stamp != b->stamp)
        return a->stamp < b->stamp ? -1 : 1;
    if (a->owner != b->owner)
        return a->owner < b->owner ? -1 : 1;
    return 0;
}

/* Report first..last as missing when the range is not empty. */
static unsigned seq_gap(uint64_t first, uint64_t last, uint64_t *gf,
                        uint64_t *gl)
{
    if (first == 0 || first > last)
        return 0;
    *gf = first;
    *gl = last;
    return FEED_SEQ_GAP;
}

/*
 * The first message seen of a topic is where this worker starts: no gap
 * unless its owner says it dropped earlier ones for us. In one epoch a
 * number must follow the last; a jump is a gap. A newer epoch is a
 * reset, with a gap when its first numbers did not arrive; an older one
 * is late (its owner was replaced meanwhile) and dropped.
 */
unsigned feed_seq_note(struct feed_seq *st, const struct feed_epoch *e,
                       uint64_t seq, uint64_t lost_from, uint64_t *first,
                       uint64_t *last)
{
    unsigned what = 0;

    if (seq == 0)
        return FEED_SEQ_STALE;
    if (!st->known) {
        st->known = true;
        what = seq_gap(lost_from, seq - 1, first, last);
    } else {
        int cmp = feed_epoch_cmp(e, &st->epoch);
        if (cmp < 0 || (cmp == 0 && seq <= st->last))
            return FEED_SEQ_STALE;
        if (cmp > 0)
            what = FEED_SEQ_RESET | seq_gap(1, seq - 1, first, last);
        else
            what = seq_gap(st->last + 1, seq - 1, first, last);
    }
    st->epoch = *e;
    st->last = seq;
    return what;
}

void feed_skip_gap(struct feed_skip *k, uint64_t first, uint64_t last)
{
    if (!k->gap) {
        k->gap = true;
        k->first = first;
        k->last = last;
        return;
    }
    if (first < k->first)
        k->first = first;
    if (last > k->last)
        k->last = last;
}

/*
 * The gap so far belongs to the old epoch. A second reset forgets the
 * middle epoch's gap: that epoch is over, the reset says so.
 */
void feed_skip_reset(struct feed_skip *k)
{
    if (!k->reset) {
        k->reset = true;
        k->old_gap = k->gap;
        k->old_first = k->first;
        k->old_last = k->last;
    }
    k->gap = false;
}

uint64_t feed_skip_count(const struct feed_skip *k)
{
    uint64_t n = 0;

    if (k->old_gap)
        n += k->old_last - k->old_first + 1;
    if (k->gap)
        n += k->last - k->first + 1;
    return n;
}

size_t feed_skip_lines(const struct feed_skip *k, const char *t, size_t tlen,
                       char *out)
{
    size_t n = 0;

    if (k->reset && k->old_gap)
        n += feed_line_gap(out + n, t, tlen, k->old_first, k->old_last);
    if (k->reset)
        n += feed_line_reset(out + n, t, tlen);
    if (k->gap)
        n += feed_line_gap(out + n, t, tlen, k->first, k->last);
    return n;
}

/* v in decimal at out; returns the digits written. */
static size_t put_u64(char *out, uint64_t v)
{
    char tmp[FEED_U64_DIGITS];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* "<word> <topic>" at out; returns its length. */
static size_t put_head(char *out, const char *word, size_t wlen,
                       const char *t, size_t tlen)
{
    memcpy(out, word, wlen);
    out[wlen] = ' ';
    memcpy(out + wlen + 1, t, tlen);
    return wlen + 1 + tlen;
}

size_t feed_line_msg(char *out, const char *t, size_t tlen, uint64_t seq,
                     const char *payload, size_t len)
{
    size_t n = put_head(out, "MSG", 3, t, tlen);

    out[n++] = ' ';
    n += put_u64(out + n, seq);
    out[n++] = ' ';
    if (len != 0)
        memcpy(out + n, payload, len);
    n += len;
    out[n++] = '\n';
    return n;
}

size_t feed_line_gap(char *out, const char *t, size_t tlen, uint64_t first,
                     uint64_t last)
{
    size_t n = put_head(out, "GAP", 3, t, tlen);

    out[n++] = ' ';
    n += put_u64(out + n, first);
    out[n++] = ' ';
    n += put_u64(out + n, last);
    out[n++] = '\n';
    return n;
}

size_t feed_line_reset(char *out, const char *t, size_t tlen)
{
    size_t n = put_head(out, "RESET", 5, t, tlen);

    out[n++] = '\n';
    return n;
}
