/*
 * feed: a real-time data feed on weft's message bus (weft/bus.h).
 *
 *   { name = "in";  listen = "127.0.0.1:7100"; protocol = "feed";
 *     feed = { role = "publish"; channel = "prices"; }; },
 *   { name = "out"; listen = "127.0.0.1:7101"; protocol = "feed";
 *     feed = { role = "subscribe"; channel = "prices"; }; }
 *
 * Publishers send "PUB <topic> <payload>" lines (or, with framing =
 * "prefixed", a 4-byte big-endian length and "<topic> <payload>");
 * subscribers send "SUB <topic>" or "SUB <prefix>*" (and UNSUB) and get
 * "MSG <topic> <seq> <payload>" lines. Listeners of one channel, on any
 * worker, form one feed; the bus topics are feed/<channel>/in and /out.
 *
 * One order per topic. A topic is numbered by one worker, its owner:
 * the worker now serving slot hash(topic) % slots (weft_bus_slot_id; the
 * next slot's while that one has nobody on the bus, as after a crash).
 * A publisher's worker sends each message to the owner (IN record,
 * weft_bus_send); the owner gives it the topic's next number and sends
 * it to every worker (OUT record, one send per receiver, itself
 * included), so every subscriber anywhere sees a topic's messages in
 * the same order with numbers 1, 2, 3, ..., and a publisher's messages
 * of one topic in the order it sent them (one ring from its worker to
 * the owner, one from the owner to each receiver). Topics are
 * independent: no order between them.
 *
 * Nothing is lost silently:
 *   - publisher side: backpressure. A full ring to the owner leaves the
 *     message unconsumed and pauses the publisher; a 1 ms timer resumes
 *     it (publish.c).
 *   - owner side: a receiver's full ring puts its records in a FIFO
 *     outbox, retried every 1 ms, bounded by max_backlog; past it the
 *     oldest are dropped and the receiver detects the gap (sequencer.c,
 *     outbox.c).
 *   - receiving side: each worker checks every topic's numbers; a jump
 *     becomes "GAP <topic> <first> <last>" for the topic's subscribers
 *     (subscribe.c, feed_seq_note).
 *   - a subscriber that does not read: past max_queue its messages are
 *     skipped and counted (messages_skipped); when its queue is down to
 *     half it gets one GAP line per topic it missed, then live messages.
 *
 * Epochs. When ownership moves (a reload or a crash replaces the owner),
 * the new owner starts the topic again at 1. Each OUT record carries its
 * epoch (the owner's bus id and when it started numbering the topic), so
 * receivers say "RESET <topic>" before the first message of a newer
 * epoch instead of reporting a false gap. IN records that reach a former
 * owner are forwarded once to the current one. What the old owner had
 * already numbered may still be on its way (in its rings or outboxes)
 * when the new owner's first message arrives: such a late message of an
 * older epoch is dropped, the RESET having told subscribers that the old
 * numbering ended there, and the worker logs it once per reset.
 *
 * State per worker: a channel (struct feed_chan) shared by the worker's
 * listeners on it, with the topic map (owner counters, what this worker
 * saw, the local subscribers of each topic). Topics are never forgotten
 * while a worker lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"
#include "protocols/registry.h"

#define FEED_MESSAGE_MAX (512 * 1024)
#define FEED_QUEUE_MIN 4096
#define FEED_BACKLOG_MIN 65536
#define FEED_SIZE_MAX (1024LL * 1024 * 1024)

/* The channels of this worker (each worker is a process of its own). */
static LIST_HEAD(, feed_chan) feed_chans = LIST_HEAD_INITIALIZER(feed_chans);

/* ---- configuration (supervisor) ----------------------------------------- */

static void feed_unconfigure(void *conf)
{
    free(conf);
}

/* role: required, "publish" or "subscribe". 0, or -1 (reported). */
static int conf_role(struct weft_settings *s, struct feed_conf *conf)
{
    const char *role;

    if (weft_settings_string(s, "role", NULL, &role) == -1)
        return -1;
    if (role != NULL && strcmp(role, "publish") == 0) {
        conf->role = FEED_PUBLISH;
    } else if (role != NULL && strcmp(role, "subscribe") == 0) {
        conf->role = FEED_SUBSCRIBE;
    } else {
        weft_settings_error(s, "role", "%s \"publish\" or \"subscribe\"",
                            role == NULL ? "required:" : "expected");
        return -1;
    }
    return 0;
}

/* channel and framing. 0, or -1 (reported). */
static int conf_names(struct weft_settings *s, struct feed_conf *conf,
                      bool *framing_set)
{
    const char *channel, *framing, *why;
    int bad = 0, rc;

    if (weft_settings_string(s, "channel", "feed", &channel) == -1)
        bad = -1;
    else if ((why = feed_channel_check(channel)) != NULL) {
        weft_settings_error(s, "channel", "%s", why);
        bad = -1;
    } else {
        snprintf(conf->channel, sizeof(conf->channel), "%s", channel);
    }
    rc = weft_settings_string(s, "framing", "line", &framing);
    *framing_set = rc == 0;
    if (rc == -1) {
        bad = -1;
    } else if (strcmp(framing, "line") == 0) {
        conf->framing = FEED_LINE;
    } else if (strcmp(framing, "prefixed") == 0) {
        conf->framing = FEED_PREFIXED;
    } else {
        weft_settings_error(s, "framing", "expected \"line\" or "
                            "\"prefixed\"");
        bad = -1;
    }
    return bad;
}

/*
 * The sizes. *set says which were given (1 message, 2 queue), for the
 * check of keys that belong to the other role. 0, or -1 (reported).
 */
static int conf_sizes(struct weft_settings *s, struct feed_conf *conf,
                      unsigned *set)
{
    long long msg, queue, backlog;
    int bad = 0, rc;

    *set = 0;
    rc = weft_settings_int(s, "max_message", 1, FEED_MESSAGE_MAX,
                           FEED_MESSAGE_DEFAULT, &msg);
    bad |= rc == -1;
    *set |= rc == 0 ? 1 : 0;
    rc = weft_settings_int(s, "max_queue", FEED_QUEUE_MIN, FEED_SIZE_MAX,
                           FEED_QUEUE_DEFAULT, &queue);
    bad |= rc == -1;
    *set |= rc == 0 ? 2 : 0;
    rc = weft_settings_int(s, "max_backlog", FEED_BACKLOG_MIN, FEED_SIZE_MAX,
                           FEED_BACKLOG_DEFAULT, &backlog);
    bad |= rc == -1;
    conf->max_message = (size_t)msg;
    conf->max_queue = (size_t)queue;
    conf->max_backlog = (size_t)backlog;
    return bad ? -1 : 0;
}

/*
 * Read the listener's feed group. Every key is read (so none is refused
 * as unknown) before the ones of the other role are refused. Returns a
 * malloc'd feed_conf, or NULL after reporting the errors.
 */
static void *feed_configure(struct weft_settings *s)
{
    struct feed_conf *conf = calloc(1, sizeof(*conf));
    bool framing_set;
    unsigned set;
    int bad = 0;

    if (conf == NULL) {
        weft_settings_error(s, NULL, "out of memory");
        return NULL;
    }
    bad |= conf_names(s, conf, &framing_set);
    bad |= conf_sizes(s, conf, &set);
    bad |= conf_role(s, conf);
    if (bad == 0 && conf->role == FEED_SUBSCRIBE && framing_set) {
        weft_settings_error(s, "framing", "only for role \"publish\"");
        bad = -1;
    }
    if (bad == 0 && conf->role == FEED_SUBSCRIBE && (set & 1)) {
        weft_settings_error(s, "max_message", "only for role \"publish\"");
        bad = -1;
    }
    if (bad == 0 && conf->role == FEED_PUBLISH && (set & 2)) {
        weft_settings_error(s, "max_queue", "only for role \"subscribe\"");
        bad = -1;
    }
    if (bad != 0) {
        free(conf);
        return NULL;
    }
    return conf;
}

/* ---- channels (workers) ------------------------------------------------- */

struct feed_topic *feed_topic_get(struct feed_chan *ch, const char *t,
                                  size_t len)
{
    bool added;

    return feed_map_put(&ch->topics, t, len, &added);
}

static void topic_free(void *val)
{
    struct feed_topic *t = val;

    free(t->match);
}

/* Free a channel, whatever of it was set up. */
static void chan_free(struct feed_chan *ch)
{
    feed_seq_stop(ch);
    feed_sub_stop(ch);
    feed_pub_stop(ch);
    feed_map_free(&ch->topics, topic_free);
    free(ch->scratch);
    free(ch);
}

/* The channel of conf, new: on the bus. NULL (logged) on failure. */
static struct feed_chan *chan_new(const struct feed_conf *conf)
{
    struct feed_chan *ch = calloc(1, sizeof(*ch));

    if (ch == NULL)
        return NULL;
    snprintf(ch->name, sizeof(ch->name), "%s", conf->channel);
    snprintf(ch->bus_in, sizeof(ch->bus_in), "feed/%s/in", ch->name);
    snprintf(ch->bus_out, sizeof(ch->bus_out), "feed/%s/out", ch->name);
    feed_map_init(&ch->topics, sizeof(struct feed_topic));
    feed_map_init(&ch->exact, sizeof(struct feed_sublist));
    LIST_INIT(&ch->waiting);
    LIST_INIT(&ch->dirty);
    if ((ch->self = weft_bus_id()) < 0) {
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: weftd has no message "
                 "bus", ch->name);
        goto fail;
    }
    ch->scratch_size = weft_bus_max_message();
    if ((ch->scratch = malloc(ch->scratch_size)) == NULL)
        goto fail;
    if (feed_sub_start(ch) == -1 || feed_seq_start(ch) == -1)
        goto fail;
    return ch;
fail:
    chan_free(ch);
    return NULL;
}

static struct feed_chan *chan_get(const struct feed_conf *conf)
{
    struct feed_chan *ch;

    LIST_FOREACH(ch, &feed_chans, link)
        if (strcmp(ch->name, conf->channel) == 0)
            return ch;
    if ((ch = chan_new(conf)) != NULL)
        LIST_INSERT_HEAD(&feed_chans, ch, link);
    return ch;
}

/*
 * In each worker, per listener: join (or create) the channel. The
 * payload limit is max_message, capped so that an OUT record with the
 * longest topic fits in one bus message.
 */
static int feed_start(struct weft_listener *l)
{
    const struct feed_conf *conf = weft_listener_conf(l);
    struct feed_lst *fl = calloc(1, sizeof(*fl));
    size_t cap;

    if (fl == NULL || (fl->ch = chan_get(conf)) == NULL) {
        free(fl);
        return -1;
    }
    fl->conf = conf;
    fl->ch->refs++;
    if (conf->max_backlog > fl->ch->max_backlog)
        fl->ch->max_backlog = conf->max_backlog;
    cap = fl->ch->scratch_size - feed_rec_head(FEED_KIND_OUT) -
          FEED_TOPIC_MAX;
    fl->max_payload = conf->max_message < cap ? conf->max_message : cap;
    weft_listener_set_data(l, fl);
    return 0;
}

static void feed_stop(struct weft_listener *l)
{
    struct feed_lst *fl = weft_listener_data(l);

    if (fl == NULL)
        return;
    if (--fl->ch->refs == 0) {
        LIST_REMOVE(fl->ch, link);
        chan_free(fl->ch);
    }
    free(fl);
    weft_listener_set_data(l, NULL);
}

/* ---- the protocol: each callback goes to the listener's role ------------ */

static bool feed_is_pub(const struct weft_conn *c)
{
    const struct feed_lst *fl = weft_listener_data(weft_conn_listener(c));

    return fl->conf->role == FEED_PUBLISH;
}

static void feed_made(struct weft_conn *c)
{
    if (feed_is_pub(c))
        feed_pub_made(c);
    else
        feed_sub_made(c);
}

static size_t feed_data(struct weft_conn *c, const char *data, size_t len)
{
    return feed_is_pub(c) ? feed_pub_data(c, data, len)
                          : feed_sub_data(c, data, len);
}

static void feed_writable(struct weft_conn *c)
{
    if (feed_is_pub(c))
        feed_pub_writable(c);
    else
        feed_sub_writable(c);
}

static void feed_lost(struct weft_conn *c, enum weft_close_reason why)
{
    (void)why;
    if (feed_is_pub(c))
        feed_pub_lost(c);
    else
        feed_sub_lost(c);
}

const struct weft_protocol feed_protocol = {
    .name = "feed",
    .configure = feed_configure,
    .unconfigure = feed_unconfigure,
    .start = feed_start,
    .stop = feed_stop,
    .connection_made = feed_made,
    .data_received = feed_data,
    .writable = feed_writable,
    .connection_lost = feed_lost,
};
