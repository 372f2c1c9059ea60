/*
 * feed: the owner side. Every worker of a channel takes the IN records
 * of feed/<channel>/in; for the topics it owns it gives each the next
 * number of its topic and sends the numbered OUT record to every worker
 * on the bus, itself included, one weft_bus_send per receiver. A receiver
 * whose ring is full gets its records later, in order, from its outbox,
 * retried every FEED_RETRY_MS; an outbox past max_backlog drops its
 * oldest records (outbox.c says how the receiver still learns of them).
 *
 * Ownership follows the slots: the owner of a topic is the worker now
 * serving slot hash(topic) % slots (the next slot's while that one has
 * nobody on the bus, this worker when no slot has). An IN record that
 * reaches a worker which no longer owns its topic (a reload moved it) is
 * forwarded once to the owner, so the topic keeps one numbering; a
 * forwarded record is numbered wherever it lands.
 *
 * A topic's numbers start at 1 with a new epoch whenever a worker starts
 * numbering it: the first time, and when it owns the topic again after
 * another worker numbered it meanwhile (this worker's receiving side saw
 * the newer epoch go by).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/feed/feed.h"

/*
 * While the owner's slot has nobody on the bus (a crash, a respawn), the
 * next slot that has a worker stands in: every worker reads the same
 * shared endpoints, so all agree on it. Were each to fall back to
 * itself, every publishing worker would number the topic on its own and
 * the epochs would alternate.
 */
int feed_owner(const struct feed_chan *ch, const char *t, size_t len)
{
    uint64_t slots = (uint64_t)weft_bus_slots();
    uint64_t first = slots > 0 ? feed_topic_hash(t, len) % slots : 0;

    for (uint64_t i = 0; i < slots; i++) {
        int id = weft_bus_slot_id((int)((first + i) % slots));
        if (id >= 0)
            return id;
    }
    return ch->self;
}

/* A new epoch's stamp: now, and never twice the same in this worker. */
static uint64_t seq_stamp(struct feed_chan *ch)
{
    struct timespec ts;
    uint64_t now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (now <= ch->last_stamp)
        now = ch->last_stamp + 1;
    ch->last_stamp = now;
    return now;
}

static const char *seq_bus_topic(const struct feed_chan *ch,
                                 enum feed_kind kind)
{
    return kind == FEED_KIND_IN ? ch->bus_in : ch->bus_out;
}

static void seq_timer_cb(struct weft_timer *t, void *arg);

static void seq_arm(struct feed_chan *ch)
{
    if (ch->outbox_timer == NULL)
        ch->outbox_timer = weft_timer_once(FEED_RETRY_MS, seq_timer_cb, ch);
    if (ch->outbox_timer == NULL)
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: no timer for the "
                 "outboxes: out of memory", ch->name);
}

/*
 * Forget what waits for id (it left the bus). Numbered messages were for
 * its own subscribers, gone with it; forwarded ones were not numbered
 * yet and are lost, which is logged.
 */
static void seq_outbox_drop(struct feed_chan *ch, int id)
{
    struct feed_outbox *ob = &ch->outbox[id];
    size_t in = 0;

    for (const struct feed_obent *e = ob->head; e != NULL; e = e->next)
        in += e->kind == FEED_KIND_IN;
    if (in > 0)
        weft_log(WEFT_LOG_WARN, "feed: channel %s: %zu forwarded "
                 "message(s) lost: worker %d left the bus", ch->name, in, id);
    if (ob->count > 0)
        ch->backlogged--;
    feed_outbox_clear(ob);
}

/* After a push: keep the outbox within max_backlog, saying so once. */
static void seq_trim(struct feed_chan *ch, int id)
{
    struct feed_outbox *ob = &ch->outbox[id];
    size_t in_lost;

    if (feed_outbox_trim(ob, ch->max_backlog, &in_lost) == 0)
        return;
    if (in_lost > 0)
        weft_log(WEFT_LOG_WARN, "feed: channel %s: %zu forwarded "
                 "message(s) for worker %d lost: its queue passed "
                 "max_backlog", ch->name, in_lost, id);
    /* Once per episode: an outbox that overflows drops on every push. */
    if (!ob->warned)
        weft_log(WEFT_LOG_WARN, "feed: channel %s: worker %d is behind by "
                 "more than max_backlog (%zu bytes): dropping its oldest "
                 "messages (it reports the gaps)", ch->name, id,
                 ch->max_backlog);
    ob->warned = true;
}

/*
 * Send rec (kind, len bytes, in the channel's scratch) to worker id, or
 * queue a copy behind what already waits for it. Only a record that
 * leaves first carries the losses of its topic (lost_from); rec comes
 * back as it was.
 */
static void seq_put(struct feed_chan *ch, int id, enum feed_kind kind,
                    unsigned char *rec, size_t len)
{
    struct feed_outbox *ob = &ch->outbox[id];
    bool marked = kind == FEED_KIND_OUT && ob->count == 0 && ob->lost.n > 0;

    if (marked)
        feed_outbox_mark(ob, rec, len);
    if (ob->count == 0) {
        if (weft_bus_send(id, seq_bus_topic(ch, kind), rec, len) == 0 ||
            errno == ESRCH)
            goto done; /* sent, or id has just left */
        if (errno != EAGAIN) {
            weft_log(WEFT_LOG_ERROR, "feed: channel %s: send to worker "
                     "%d: %s", ch->name, id, strerror(errno));
            goto done;
        }
    }
    if (feed_outbox_push(ob, kind, rec, len) == -1) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: message for worker %d "
                 "lost: out of memory", ch->name, id);
        goto done;
    }
    if (ob->count == 1) {
        ch->backlogged++;
        ob->warned = false;
    }
    seq_trim(ch, id);
    seq_arm(ch);
done:
    if (marked)
        feed_rec_set_lost(rec, 0);
}

/* Send what waits for id, in order, until its ring is full again. */
static void seq_flush(struct feed_chan *ch, int id)
{
    struct feed_outbox *ob = &ch->outbox[id];
    struct feed_obent *e;

    while ((e = ob->head) != NULL) {
        if (e->kind == FEED_KIND_OUT)
            feed_outbox_mark(ob, e->rec, e->len);
        if (weft_bus_send(id, seq_bus_topic(ch, e->kind), e->rec, e->len) ==
            -1) {
            if (errno == EAGAIN)
                return;
            if (errno == ESRCH) {
                seq_outbox_drop(ch, id);
                return;
            }
            weft_log(WEFT_LOG_ERROR, "feed: channel %s: send to worker "
                     "%d: %s", ch->name, id, strerror(errno));
        }
        feed_outbox_pop(ob);
    }
    ch->backlogged--;
}

static void seq_timer_cb(struct weft_timer *t, void *arg)
{
    struct feed_chan *ch = arg;

    (void)t;
    ch->outbox_timer = NULL;
    for (int id = 0; id < ch->nids; id++)
        if (ch->outbox[id].count > 0)
            seq_flush(ch, id);
    if (ch->backlogged > 0)
        seq_arm(ch);
}

/* Pass an IN record on to the topic's owner, marked as forwarded. */
static void seq_forward(struct feed_chan *ch, int owner, struct feed_rec *r)
{
    size_t n;

    r->hops = 1;
    n = feed_rec_encode(FEED_KIND_IN, r, ch->scratch, ch->scratch_size);
    if (n > 0)
        seq_put(ch, owner, FEED_KIND_IN, ch->scratch, n);
}

/* Does t need a new epoch before this worker numbers it? */
static bool seq_epoch_stale(const struct feed_topic *t)
{
    if (t->own.stamp == 0)
        return true;
    /* Another worker numbered it after us: our count is not the last. */
    return t->rx.known && feed_epoch_cmp(&t->rx.epoch, &t->own) > 0;
}

/* Number an IN record of a topic we own and send it to every worker. */
static void seq_number(struct feed_chan *ch, struct feed_rec *r)
{
    struct feed_topic *t = feed_topic_get(ch, r->topic, r->topic_len);
    size_t n;

    if (t == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: message lost: out of "
                 "memory", ch->name);
        return;
    }
    if (seq_epoch_stale(t)) {
        t->own.stamp = seq_stamp(ch);
        t->own.owner = ch->self;
        t->own_seq = 0;
    }
    r->epoch = t->own;
    r->seq = ++t->own_seq;
    r->lost_from = 0;
    n = feed_rec_encode(FEED_KIND_OUT, r, ch->scratch, ch->scratch_size);
    if (n == 0) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: message of %zu bytes "
                 "too big for the bus", ch->name, r->len);
        return;
    }
    for (int id = 0; id < ch->nids; id++)
        if (weft_bus_alive(id))
            seq_put(ch, id, FEED_KIND_OUT, ch->scratch, n);
}

/* feed/<channel>/in: a message from a publisher's worker. */
static void seq_in_cb(const struct weft_bus_msg *m, void *arg)
{
    struct feed_chan *ch = arg;
    struct feed_rec r;
    int owner;

    if (feed_rec_decode(FEED_KIND_IN, m->data, m->len, &r) == -1) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: bad record from worker "
                 "%d", ch->name, m->from);
        return;
    }
    owner = feed_owner(ch, r.topic, r.topic_len);
    if (owner != ch->self && r.hops == 0)
        seq_forward(ch, owner, &r);
    else
        seq_number(ch, &r);
}

/* A worker left the bus: nothing waits for it any more. */
static void seq_peer_cb(int id, int joined, void *arg)
{
    struct feed_chan *ch = arg;

    if (!joined && id >= 0 && id < ch->nids)
        seq_outbox_drop(ch, id);
}

/* Take the channel's IN records and watch peers. 0, or -1 (logged). */
int feed_seq_start(struct feed_chan *ch)
{
    ch->nids = weft_bus_ids();
    ch->outbox = calloc((size_t)ch->nids, sizeof(*ch->outbox));
    if (ch->outbox == NULL)
        return -1;
    for (int id = 0; id < ch->nids; id++)
        feed_outbox_init(&ch->outbox[id]);
    ch->sub_in = weft_bus_subscribe(ch->bus_in, 0, seq_in_cb, ch);
    ch->watch = weft_bus_watch_peers(seq_peer_cb, ch);
    if (ch->sub_in == NULL || ch->watch == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: bus: %s", ch->name,
                 strerror(errno));
        return -1;
    }
    return 0;
}

void feed_seq_stop(struct feed_chan *ch)
{
    weft_bus_unsubscribe(ch->sub_in);
    weft_bus_unsubscribe(ch->watch);
    ch->sub_in = ch->watch = NULL;
    if (ch->outbox_timer != NULL)
        weft_timer_cancel(ch->outbox_timer);
    ch->outbox_timer = NULL;
    for (int id = 0; ch->outbox != NULL && id < ch->nids; id++)
        feed_outbox_clear(&ch->outbox[id]);
    free(ch->outbox);
    ch->outbox = NULL;
    ch->backlogged = 0;
}
