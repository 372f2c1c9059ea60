/*
 * feed: publisher connections. Each frame (a "PUB <topic> <payload>"
 * line, or a prefixed "<topic> <payload>" body) goes as an IN record to
 * the topic's owner. No answer to a message; "ERR <reason>" to one that
 * is refused.
 *
 * Backpressure, not loss: when the owner's ring is full the frame stays
 * unconsumed, the connection is paused and put on the channel's waiting
 * list, and a timer resumes the list after FEED_RETRY_MS (weft offers
 * the unconsumed input again). The peer is paused too while the ERR
 * lines it does not read pile up past the high mark.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"

struct feed_pub {
    struct weft_conn *c;
    struct weft_listener *l;
    struct feed_lst *fl;
    struct feed_reader rd;
    LIST_ENTRY(feed_pub) link; /* in the channel's waiting list */
    bool waiting;              /* paused until there is room on the bus */
    bool full;                 /* paused until writable */
};

static void pub_timer_cb(struct weft_timer *t, void *arg);

/* Wait for room on the bus: pause, and be resumed by the timer. */
static void pub_wait(struct feed_pub *p)
{
    struct feed_chan *ch = p->fl->ch;

    weft_conn_pause(p->c);
    if (!p->waiting) {
        p->waiting = true;
        LIST_INSERT_HEAD(&ch->waiting, p, link);
    }
    if (ch->pub_timer == NULL)
        ch->pub_timer = weft_timer_once(FEED_RETRY_MS, pub_timer_cb, ch);
    if (ch->pub_timer == NULL) {
        /* No timer: resume at once rather than never. */
        weft_log(WEFT_LOG_ERROR, "feed: channel %s: no retry timer: out of "
                 "memory", ch->name);
        LIST_REMOVE(p, link);
        p->waiting = false;
        weft_conn_resume(p->c);
    }
}

/* Try again: resume every waiting publisher. */
static void pub_timer_cb(struct weft_timer *t, void *arg)
{
    struct feed_chan *ch = arg;
    struct feed_pub *p;

    (void)t;
    ch->pub_timer = NULL;
    while ((p = LIST_FIRST(&ch->waiting)) != NULL) {
        LIST_REMOVE(p, link);
        p->waiting = false;
        if (!p->full)
            weft_conn_resume(p->c);
    }
}

/* "ERR <why>": counted; stop reading while the peer does not read. */
static int pub_error(struct feed_pub *p, const char *why)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "ERR %s\n", why);
    int rc;

    weft_count(p->l, WEFT_COUNT_ERRORS, 1);
    rc = weft_conn_write(p->c, line, (size_t)n);
    if (rc == 0)
        return FEED_FRAME_NEXT;
    if (rc == 1) {
        p->full = true;
        weft_conn_pause(p->c);
    }
    return FEED_FRAME_STOP;
}

/* Send m to its topic's owner. A full ring leaves m for later. */
static int pub_send(struct feed_pub *p, const struct feed_msg *m)
{
    struct feed_chan *ch = p->fl->ch;
    struct feed_rec r = {.topic = m->topic, .topic_len = m->topic_len,
                         .payload = m->payload, .len = m->len};
    size_t n = feed_rec_encode(FEED_KIND_IN, &r, ch->scratch,
                               ch->scratch_size);
    int to = feed_owner(ch, m->topic, m->topic_len);

    if (n > 0 && weft_bus_send(to, ch->bus_in, ch->scratch, n) == 0) {
        weft_count(p->l, WEFT_COUNT_REQUESTS, 1);
        return FEED_FRAME_NEXT;
    }
    /* ESRCH: the owner left between the lookup and the send; the next
     * try looks it up again. */
    if (n > 0 && (errno == EAGAIN || errno == ESRCH)) {
        pub_wait(p);
        return FEED_FRAME_AGAIN;
    }
    weft_log(WEFT_LOG_ERROR, "feed: channel %s: send to worker %d: %s",
             ch->name, to, n > 0 ? strerror(errno) : "record too big");
    return pub_error(p, "internal error");
}

/* One frame of the publisher (NULL: one too long was dropped). */
static int pub_frame(void *arg, const char *frame, size_t len)
{
    struct feed_pub *p = arg;
    size_t max = p->fl->max_payload;
    struct feed_msg m;
    const char *why;

    if (frame == NULL)
        return pub_error(p, "message too long");
    if (p->rd.framing == FEED_PREFIXED) {
        why = feed_pub_parse_body(frame, len, max, &m);
    } else {
        if (len > 0 && frame[len - 1] == '\r')
            len--;
        if (len == 0)
            return FEED_FRAME_NEXT;
        why = feed_pub_parse_line(frame, len, max, &m);
    }
    if (why != NULL)
        return pub_error(p, why);
    return pub_send(p, &m);
}

void feed_pub_made(struct weft_conn *c)
{
    struct weft_listener *l = weft_conn_listener(c);
    struct feed_lst *fl = weft_listener_data(l);
    struct feed_pub *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        weft_log(WEFT_LOG_ERROR, "feed: out of memory");
        weft_conn_abort(c);
        return;
    }
    p->c = c;
    p->l = l;
    p->fl = fl;
    p->rd.framing = fl->conf->framing;
    /* "PUB " topic " " payload, and a "\r" some clients add. */
    p->rd.max = fl->conf->framing == FEED_LINE
                    ? 4 + FEED_TOPIC_MAX + 1 + fl->max_payload + 1
                    : FEED_TOPIC_MAX + 1 + fl->max_payload;
    weft_conn_set_data(c, p);
}

size_t feed_pub_data(struct weft_conn *c, const char *data, size_t len)
{
    struct feed_pub *p = weft_conn_data(c);

    if (p == NULL)
        return len;
    return feed_read(&p->rd, data, len, pub_frame, p);
}

void feed_pub_writable(struct weft_conn *c)
{
    struct feed_pub *p = weft_conn_data(c);

    if (p == NULL)
        return;
    p->full = false;
    if (!p->waiting)
        weft_conn_resume(c);
}

void feed_pub_lost(struct weft_conn *c)
{
    struct feed_pub *p = weft_conn_data(c);

    if (p == NULL)
        return;
    if (p->waiting)
        LIST_REMOVE(p, link);
    free(p);
}

/* The channel goes (its connections are gone): stop the retry timer. */
void feed_pub_stop(struct feed_chan *ch)
{
    if (ch->pub_timer != NULL)
        weft_timer_cancel(ch->pub_timer);
    ch->pub_timer = NULL;
}
