/*
 * feed: the receiving side of a worker and its subscriber connections.
 *
 * Every OUT record of the channel (feed/<channel>/out) is checked
 * against what this worker saw last of its topic (feed_seq_note): a
 * jump is a gap (messages lost on the bus), a newer epoch a reset, and
 * the topic's local subscribers hear of either ("GAP <topic> <first>
 * <last>", "RESET <topic>") before the message itself ("MSG <topic>
 * <seq> <payload>"). A topic keeps the list of the local subscribers it
 * goes to, rebuilt when a subscription changed (subs_gen), from the
 * exact subscriptions (a map) and the prefixes (a list); a connection
 * with two matching subscriptions gets each message once.
 *
 * Output is gathered per connection and written once per loop iteration
 * (a 0 ms timer) or every FEED_PEND_MAX bytes, so a burst from the bus
 * costs a subscriber one write, not one per message.
 *
 * A subscriber that does not keep up: its watermarks are max_queue and
 * max_queue / 2. A write that leaves its queue above max_queue (weft
 * returns 1) makes it skip: messages are not queued but noted per topic
 * (feed_skip) and counted in messages_skipped, and its commands wait.
 * When its queue falls to half (writable), it gets a GAP line for each
 * topic it missed (a RESET between two when the epoch changed), then
 * live messages again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"

struct sub_pat {
    char *text; /* owned; without the '*' of a prefix */
    size_t len;
    bool prefix;
};

struct feed_sub {
    struct weft_conn *c;
    struct weft_listener *l;
    struct feed_lst *fl;
    struct feed_chan *ch;
    struct feed_reader rd;
    struct sub_pat *pats;
    size_t npats, pats_cap;
    char *pend; /* output gathered, not yet written */
    size_t pend_len, pend_cap;
    LIST_ENTRY(feed_sub) dirty_link;
    bool dirty;    /* in the channel's dirty list */
    bool skipping; /* fell behind: messages are noted, not queued */
    bool closed;   /* a write failed: the connection is going */
    struct feed_map skips; /* topic -> struct feed_skip */
    uint64_t mark;         /* see topic_match */
};

/* ---- output ------------------------------------------------------------- */

/* Fell behind: skip messages, hold commands, until writable. */
static void sub_behind(struct feed_sub *s)
{
    s->skipping = true;
    weft_conn_pause(s->c);
}

/* The result of a write: closing, or past the high mark. */
static void sub_wrote(struct feed_sub *s, int rc)
{
    if (rc == -1)
        s->closed = true;
    else if (rc == 1)
        sub_behind(s);
}

/* Write what was gathered. */
static void sub_flush(struct feed_sub *s)
{
    size_t n = s->pend_len;

    if (n == 0 || s->closed)
        return;
    s->pend_len = 0;
    sub_wrote(s, weft_conn_write(s->c, s->pend, n));
}

static void sub_flush_cb(struct weft_timer *t, void *arg)
{
    struct feed_chan *ch = arg;
    struct feed_sub *s;

    (void)t;
    ch->flush_timer = NULL;
    while ((s = LIST_FIRST(&ch->dirty)) != NULL) {
        LIST_REMOVE(s, dirty_link);
        s->dirty = false;
        sub_flush(s);
    }
}

/* Flush s at the end of this loop iteration. */
static void sub_dirty(struct feed_sub *s)
{
    struct feed_chan *ch = s->ch;

    if (s->dirty)
        return;
    if (ch->flush_timer == NULL)
        ch->flush_timer = weft_timer_once(0, sub_flush_cb, ch);
    if (ch->flush_timer == NULL) {
        sub_flush(s); /* no timer: write now */
        return;
    }
    s->dirty = true;
    LIST_INSERT_HEAD(&ch->dirty, s, dirty_link);
}

/* Grow the gathered output to hold n more bytes. -1: memory short. */
static int sub_room(struct feed_sub *s, size_t n)
{
    size_t cap = s->pend_cap ? s->pend_cap : 4096;
    char *p;

    if (s->pend_len + n <= s->pend_cap)
        return 0;
    while (cap < s->pend_len + n)
        cap *= 2;
    if ((p = realloc(s->pend, cap)) == NULL)
        return -1;
    s->pend = p;
    s->pend_cap = cap;
    return 0;
}

/*
 * Queue bytes for s: gathered, and written at the end of the iteration,
 * or now once enough is gathered or the queue would pass max_queue.
 */
static void sub_out(struct feed_sub *s, const char *data, size_t n)
{
    if (s->closed)
        return;
    if (sub_room(s, n) == -1) {
        sub_flush(s);
        if (!s->closed)
            sub_wrote(s, weft_conn_write(s->c, data, n));
        return;
    }
    memcpy(s->pend + s->pend_len, data, n);
    s->pend_len += n;
    if (s->pend_len >= FEED_PEND_MAX ||
        weft_conn_queued(s->c) + s->pend_len > s->fl->conf->max_queue)
        sub_flush(s);
    else
        sub_dirty(s);
}

/* ---- messages ----------------------------------------------------------- */

/* What s missed of a topic; NULL when memory is short (logged). */
static struct feed_skip *sub_skip(struct feed_sub *s, const char *t,
                                  size_t tlen)
{
    bool added;
    struct feed_skip *k = feed_map_put(&s->skips, t, tlen, &added);

    if (k == NULL)
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: a gap notice lost: "
                 "out of memory", s->ch->name);
    return k;
}

/* Tell s of a reset and / or a gap of topic t before its next message. */
static void sub_notice(struct feed_sub *s, unsigned what, const char *t,
                       size_t tlen, uint64_t first, uint64_t last)
{
    char buf[2 * FEED_LINE_HEAD_MAX];
    size_t n = 0;

    if (s->skipping) {
        struct feed_skip *k = sub_skip(s, t, tlen);
        if (k != NULL && (what & FEED_SEQ_RESET))
            feed_skip_reset(k);
        if (k != NULL && (what & FEED_SEQ_GAP))
            feed_skip_gap(k, first, last);
        return;
    }
    if (what & FEED_SEQ_RESET)
        n += feed_line_reset(buf, t, tlen);
    if (what & FEED_SEQ_GAP)
        n += feed_line_gap(buf + n, t, tlen, first, last);
    sub_out(s, buf, n);
}

/* Message seq of t (its line is line[0..n)) for s, or noted as missed. */
static void sub_msg(struct feed_sub *s, const char *t, size_t tlen,
                    uint64_t seq, const char *line, size_t n)
{
    if (s->closed)
        return;
    if (!s->skipping) {
        sub_out(s, line, n);
        return;
    }
    struct feed_skip *k = sub_skip(s, t, tlen);
    if (k != NULL)
        feed_skip_gap(k, seq, seq);
    weft_count(s->l, WEFT_COUNT_GAPS, 1);
}

/* Add s to t's list unless this build already did. -1: memory short. */
static int match_add(struct feed_topic *t, struct feed_sub *s, uint64_t mark)
{
    if (s->mark == mark)
        return 0;
    if (t->nmatch == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 4;
        struct feed_sub **v = realloc(t->match, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        t->match = v;
        t->cap = cap;
    }
    s->mark = mark;
    t->match[t->nmatch++] = s;
    return 0;
}

/* Bring t's list of local subscribers up to date. */
static void topic_match(struct feed_chan *ch, struct feed_topic *t,
                        const char *name, size_t len)
{
    struct feed_sublist *sl;
    uint64_t mark;
    int bad = 0;

    if (t->gen == ch->subs_gen)
        return;
    mark = ++ch->mark;
    t->nmatch = 0;
    if ((sl = feed_map_get(&ch->exact, name, len)) != NULL)
        for (size_t i = 0; i < sl->n; i++)
            bad |= match_add(t, sl->v[i], mark);
    for (size_t i = 0; i < ch->nprefixes; i++) {
        const struct feed_prefix *p = &ch->prefixes[i];
        if (len >= p->len && memcmp(name, p->text, p->len) == 0)
            bad |= match_add(t, p->s, mark);
    }
    if (bad)
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: topic %s: not every "
                 "subscriber is served: out of memory", ch->name, name);
    t->gen = ch->subs_gen;
}

/* The channel's MSG line buffer, for a payload of len bytes. */
static char *line_buf(struct feed_chan *ch, size_t len)
{
    size_t need = FEED_LINE_HEAD_MAX + len;
    char *p;

    if (need <= ch->line_cap)
        return ch->line;
    if ((p = realloc(ch->line, need)) == NULL)
        return NULL;
    ch->line = p;
    ch->line_cap = need;
    return p;
}

/* Hand a numbered message to the local subscribers of its topic. */
static void sub_deliver(struct feed_chan *ch, struct feed_topic *t,
                        const struct feed_rec *r, unsigned what,
                        uint64_t first, uint64_t last)
{
    size_t tlen;
    const char *name = feed_map_key(&ch->topics, t, &tlen);
    char *line;
    size_t n;

    topic_match(ch, t, name, tlen);
    if (t->nmatch == 0)
        return;
    if ((line = line_buf(ch, r->len)) == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: message lost: out of "
                 "memory", ch->name);
        return;
    }
    n = feed_line_msg(line, name, tlen, r->seq, r->payload, r->len);
    for (size_t i = 0; i < t->nmatch; i++) {
        struct feed_sub *s = t->match[i];
        if (what != 0 && !s->closed)
            sub_notice(s, what, name, tlen, first, last);
        sub_msg(s, name, tlen, r->seq, line, n);
    }
}

/* feed/<channel>/out: a numbered message from a topic's owner. */
static void sub_out_cb(const struct weft_bus_msg *m, void *arg)
{
    struct feed_chan *ch = arg;
    struct feed_topic *t;
    struct feed_rec r;
    uint64_t first = 0, last = 0;
    unsigned what;

    if (feed_rec_decode(FEED_KIND_OUT, m->data, m->len, &r) == -1) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: bad record from worker "
                 "%d", ch->name, m->from);
        return;
    }
    if ((t = feed_topic_get(ch, r.topic, r.topic_len)) == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: message lost: out of "
                 "memory", ch->name);
        return;
    }
    what = feed_seq_note(&t->rx, &r.epoch, r.seq, r.lost_from, &first,
                         &last);
    if (what & FEED_SEQ_STALE) {
        if (!t->late_logged)
            weft_log(WEFT_LOG_WARN, "feed: channel %s: topic %s: message %llu"
                     " of worker %d came after its successor's first: "
                     "dropped (and any more until the next reset)", ch->name,
                     feed_map_key(&ch->topics, t, &(size_t){0}),
                     (unsigned long long)r.seq, (int)r.epoch.owner);
        t->late_logged = true;
        return;
    }
    if (what & FEED_SEQ_RESET)
        t->late_logged = false;
    sub_deliver(ch, t, &r, what, first, last);
}

/* ---- subscriptions ------------------------------------------------------ */

static struct sub_pat *pat_find(struct feed_sub *s,
                                const struct feed_pattern *p)
{
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].prefix == p->prefix && s->pats[i].len == p->len &&
            memcmp(s->pats[i].text, p->text, p->len) == 0)
            return &s->pats[i];
    return NULL;
}

/* Put s in the channel's index for sp. -1: memory short. */
static int index_add(struct feed_chan *ch, struct feed_sub *s,
                     const struct sub_pat *sp)
{
    if (sp->prefix) {
        if (ch->nprefixes == ch->prefixes_cap) {
            size_t cap = ch->prefixes_cap ? 2 * ch->prefixes_cap : 8;
            struct feed_prefix *v =
                realloc(ch->prefixes, cap * sizeof(*v));
            if (v == NULL)
                return -1;
            ch->prefixes = v;
            ch->prefixes_cap = cap;
        }
        ch->prefixes[ch->nprefixes++] =
            (struct feed_prefix){sp->text, sp->len, s};
        return 0;
    }
    bool added;
    struct feed_sublist *sl = feed_map_put(&ch->exact, sp->text, sp->len,
                                           &added);
    if (sl == NULL)
        return -1;
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? 2 * sl->cap : 4;
        struct feed_sub **v = realloc(sl->v, cap * sizeof(*v));
        if (v == NULL)
            return -1; /* an empty list stays: harmless */
        sl->v = v;
        sl->cap = cap;
    }
    sl->v[sl->n++] = s;
    return 0;
}

/* Take s out of the channel's index for sp. */
static void index_del(struct feed_chan *ch, struct feed_sub *s,
                      const struct sub_pat *sp)
{
    if (sp->prefix) {
        for (size_t i = 0; i < ch->nprefixes; i++)
            if (ch->prefixes[i].s == s && ch->prefixes[i].text == sp->text) {
                ch->prefixes[i] = ch->prefixes[--ch->nprefixes];
                return;
            }
        return;
    }
    struct feed_sublist *sl = feed_map_get(&ch->exact, sp->text, sp->len);
    if (sl == NULL)
        return;
    for (size_t i = 0; i < sl->n; i++)
        if (sl->v[i] == s) {
            sl->v[i] = sl->v[--sl->n];
            break;
        }
    if (sl->n == 0) {
        free(sl->v);
        feed_map_del(&ch->exact, sl);
    }
}

/* SUB: NULL (subscribed, or already), or a reason. */
static const char *sub_add(struct feed_sub *s, const struct feed_pattern *p)
{
    struct sub_pat sp = {NULL, p->len, p->prefix};

    if (pat_find(s, p) != NULL)
        return NULL;
    if (s->npats == FEED_SUBS_MAX)
        return "too many subscriptions";
    if (s->npats == s->pats_cap) {
        size_t cap = s->pats_cap ? 2 * s->pats_cap : 4;
        struct sub_pat *v = realloc(s->pats, cap * sizeof(*v));
        if (v == NULL)
            return "out of memory";
        s->pats = v;
        s->pats_cap = cap;
    }
    if ((sp.text = malloc(p->len + 1)) == NULL)
        return "out of memory";
    memcpy(sp.text, p->text, p->len);
    sp.text[p->len] = '\0';
    if (index_add(s->ch, s, &sp) == -1) {
        free(sp.text);
        return "out of memory";
    }
    s->pats[s->npats++] = sp;
    s->ch->subs_gen++;
    return NULL;
}

/* UNSUB: NULL, or a reason. */
static const char *sub_del(struct feed_sub *s, const struct feed_pattern *p)
{
    struct sub_pat *sp = pat_find(s, p);

    if (sp == NULL)
        return "not subscribed";
    index_del(s->ch, s, sp);
    free(sp->text);
    *sp = s->pats[--s->npats];
    s->ch->subs_gen++;
    return NULL;
}

/* "ERR <why>" (counted) or "OK SUB|UNSUB <pattern>", in the stream. */
static int sub_reply(struct feed_sub *s, const char *why,
                     const struct feed_cmd *cmd)
{
    char line[FEED_CMD_MAX + 64];
    int n;

    if (why != NULL) {
        weft_count(s->l, WEFT_COUNT_ERRORS, 1);
        n = snprintf(line, sizeof(line), "ERR %s\n", why);
    } else {
        n = snprintf(line, sizeof(line), "OK %s %.*s\n",
                     cmd->kind == FEED_CMD_SUB ? "SUB" : "UNSUB",
                     (int)cmd->arg_len, cmd->arg);
    }
    sub_out(s, line, (size_t)n);
    /* Behind: the next commands wait until it reads (sub_behind). */
    return s->skipping || s->closed ? FEED_FRAME_STOP : FEED_FRAME_NEXT;
}

/* One command line (NULL: one too long was dropped). */
static int sub_frame(void *arg, const char *frame, size_t len)
{
    struct feed_sub *s = arg;
    struct feed_cmd cmd;
    const char *why;

    if (frame == NULL)
        return sub_reply(s, "line too long", NULL);
    if (len > 0 && frame[len - 1] == '\r')
        len--;
    if (len == 0)
        return FEED_FRAME_NEXT;
    if ((why = feed_cmd_parse(frame, len, &cmd)) != NULL)
        return sub_reply(s, why, NULL);
    weft_count(s->l, WEFT_COUNT_REQUESTS, 1);
    why = cmd.kind == FEED_CMD_SUB ? sub_add(s, &cmd.pat)
                                   : sub_del(s, &cmd.pat);
    return sub_reply(s, why, &cmd);
}

/* ---- the connection ----------------------------------------------------- */

void feed_sub_made(struct weft_conn *c)
{
    struct weft_listener *l = weft_conn_listener(c);
    struct feed_lst *fl = weft_listener_data(l);
    struct feed_sub *s = calloc(1, sizeof(*s));
    size_t q = fl->conf->max_queue;

    if (s == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: out of memory");
        weft_conn_abort(c);
        return;
    }
    s->c = c;
    s->l = l;
    s->fl = fl;
    s->ch = fl->ch;
    s->rd.framing = FEED_LINE;
    s->rd.max = FEED_CMD_MAX;
    feed_map_init(&s->skips, sizeof(struct feed_skip));
    /* Above max_queue nothing more is queued but what was gathered, one
     * message and the replies of one read: room for that before weft
     * aborts the connection. */
    weft_conn_set_watermarks(c, q, q / 2,
                             q + 4 * FEED_PEND_MAX +
                                 2 * weft_bus_max_message());
    weft_conn_set_data(c, s);
}

size_t feed_sub_data(struct weft_conn *c, const char *data, size_t len)
{
    struct feed_sub *s = weft_conn_data(c);

    if (s == NULL)
        return len;
    if (s->skipping)
        return 0; /* commands wait until it reads again */
    return feed_read(&s->rd, data, len, sub_frame, s);
}

/*
 * The queue fell to half: tell what was missed, a topic at a time, and
 * go live again; if the notices fill the queue again, the rest wait for
 * the next call.
 */
void feed_sub_writable(struct weft_conn *c)
{
    struct feed_sub *s = weft_conn_data(c);
    struct feed_map_iter it = {0};
    char buf[FEED_SKIP_LINES_MAX];
    struct feed_skip *k;

    if (s == NULL)
        return;
    while (s->skipping && (k = feed_map_next(&s->skips, &it)) != NULL) {
        size_t tlen;
        const char *t = feed_map_key(&s->skips, k, &tlen);
        size_t n = feed_skip_lines(k, t, tlen, buf);
        feed_map_del(&s->skips, k);
        if (n == 0)
            continue;
        int rc = weft_conn_write(c, buf, n);
        if (rc != 0) {
            sub_wrote(s, rc);
            return;
        }
    }
    s->skipping = false;
    weft_conn_resume(c);
}

void feed_sub_lost(struct weft_conn *c)
{
    struct feed_sub *s = weft_conn_data(c);

    if (s == NULL)
        return;
    for (size_t i = 0; i < s->npats; i++) {
        index_del(s->ch, s, &s->pats[i]);
        free(s->pats[i].text);
    }
    if (s->npats > 0)
        s->ch->subs_gen++;
    if (s->dirty)
        LIST_REMOVE(s, dirty_link);
    feed_map_free(&s->skips, NULL);
    free(s->pats);
    free(s->pend);
    free(s);
}

/* ---- the channel -------------------------------------------------------- */

int feed_sub_start(struct feed_chan *ch)
{
    ch->subs_gen = 1;
    ch->sub_out = weft_bus_subscribe(ch->bus_out, 0, sub_out_cb, ch);
    if (ch->sub_out == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: bus: %s", ch->name,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static void sublist_free(void *val)
{
    struct feed_sublist *sl = val;

    free(sl->v);
}

void feed_sub_stop(struct feed_chan *ch)
{
    weft_bus_unsubscribe(ch->sub_out);
    ch->sub_out = NULL;
    if (ch->flush_timer != NULL)
        weft_timer_cancel(ch->flush_timer);
    ch->flush_timer = NULL;
    feed_map_free(&ch->exact, sublist_free);
    free(ch->prefixes);
    ch->prefixes = NULL;
    ch->nprefixes = ch->prefixes_cap = 0;
    free(ch->line);
    ch->line = NULL;
    ch->line_cap = 0;
}
