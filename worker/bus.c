/*
 * The worker's side of the message bus (include/weft/bus.h): publishing
 * into the rings of shared/bus.h, and taking what arrives in this
 * worker's inbound rings to the subscribers.
 *
 * The worker joins the bus (its endpoint turns LIVE) at its first
 * subscription or peer watch; until then nothing is sent to it and its
 * loop carries no bus watcher at all, so a worker that never uses the
 * bus pays nothing. Once on the bus, every loop iteration drains the
 * inbound rings in the prepare watcher and, when all are empty, marks
 * them sleeping (the Dekker handshake of shared/ring.h) so a producer
 * knows to wake us (BUS_WAKE_SIGNAL); the check watcher after the poll
 * clears the marks. Under load the rings never look empty at prepare
 * time, so producers send no signal and nobody makes a system call per
 * message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/bus.h"
#include "shared/log.h"
#include "shared/util.h"
#include "weft/bus.h"
#include "worker/worker.h"

/* Messages taken from one ring per loop iteration, so I/O is not starved. */
#define BUS_BATCH 256

enum bus_kind { BUS_KIND_PUBLISH = 1, BUS_KIND_SEND = 2 };

/*
 * What goes before the topic in a record. inc is the sender's
 * incarnation: a ring outlives the processes on its endpoints, so what a
 * worker that died left in it is followed by what its replacement puts,
 * and only inc tells them apart.
 */
struct bus_msg_hdr {
    uint16_t topic_len;
    uint16_t unused;
    int32_t from;
    uint32_t inc;
};

struct weft_bus_sub {
    LIST_ENTRY(weft_bus_sub) link;
    char *topic; /* NULL for a peer watch */
    size_t topic_len;
    bool prefix;
    bool dead;     /* unsubscribed during a dispatch: freed after it */
    bool greeted;  /* a peer watch told of the peers already there */
    weft_bus_fn fn;
    weft_bus_peer_fn peer_fn;
    void *arg;
};

LIST_HEAD(bus_sub_list, weft_bus_sub);

struct wbus {
    struct worker *w;
    struct bus *b;
    int self;
    uint32_t self_inc; /* this process's incarnation of its endpoint */
    bool live;
    bool armed;       /* the rings are marked sleeping */
    int dispatching;  /* nesting of callbacks running */
    bool reap;        /* dead subscriptions to free */
    bool greet;       /* a peer watch waits for its first report */
    bool ran;         /* a callback ran in this prepare pass */
    uint32_t epoch;   /* the endpoint changes seen */
    uint32_t *inc;    /* each endpoint's incarnation when last seen */
    bool *alive;      /* ... and whether it was LIVE */
    struct bus_sub_list subs;
    ev_signal wake_w;
    ev_prepare prep;
    ev_check check;
    ev_idle idle;
};

static struct wbus *wbus_of(void)
{
    struct worker *w = worker_self;

    return w != NULL ? w->bus : NULL;
}

int bus_worker_init(struct worker *w, struct bus *b, int self)
{
    struct wbus *wb;

    w->bus = NULL;
    if (b == NULL || b->h == NULL || self < 0)
        return 0;
    /* The mapping stays; the descriptor is the supervisor's business. */
    if (b->fd != -1) {
        close(b->fd);
        b->fd = -1;
    }
    wb = calloc(1, sizeof(*wb));
    if (wb == NULL)
        return -1;
    wb->inc = calloc(b->h->nendpoints, sizeof(*wb->inc));
    wb->alive = calloc(b->h->nendpoints, sizeof(*wb->alive));
    if (wb->inc == NULL || wb->alive == NULL) {
        free(wb->inc);
        free(wb->alive);
        free(wb);
        return -1;
    }
    wb->w = w;
    wb->b = b;
    wb->self = self;
    LIST_INIT(&wb->subs);
    w->bus = wb;
    return 0;
}

/* ---- taking messages ----------------------------------------------------- */

static bool topic_matches(const struct weft_bus_sub *s, const char *topic,
                          size_t len)
{
    if (s->prefix)
        return len >= s->topic_len && memcmp(topic, s->topic, s->topic_len) == 0;
    return len == s->topic_len && memcmp(topic, s->topic, len) == 0;
}

static void bus_reap(struct wbus *wb)
{
    struct weft_bus_sub *s, *next;

    if (wb->dispatching > 0 || !wb->reap)
        return;
    for (s = LIST_FIRST(&wb->subs); s != NULL; s = next) {
        next = LIST_NEXT(s, link);
        if (s->dead) {
            LIST_REMOVE(s, link);
            free(s->topic);
            free(s);
        }
    }
    wb->reap = false;
}

/* The header of a record, or false for one too short to be one. */
static bool bus_rec_hdr(const void *p, size_t len, struct bus_msg_hdr *h)
{
    if (len < sizeof(*h))
        return false;
    memcpy(h, p, sizeof(*h));
    return sizeof(*h) + h->topic_len + 1 <= len;
}

/* Hand one record to the subscribers whose topic matches. */
static void bus_dispatch(struct wbus *wb, uint32_t kind, const void *p,
                         size_t len)
{
    struct bus_msg_hdr h;
    struct weft_bus_msg m;
    const char *bytes = p;

    if (!bus_rec_hdr(p, len, &h))
        return;
    m.topic = bytes + sizeof(h);
    m.topic_len = h.topic_len;
    m.data = bytes + sizeof(h) + h.topic_len + 1;
    m.len = len - sizeof(h) - h.topic_len - 1;
    m.from = h.from;
    m.unicast = kind == BUS_KIND_SEND;
    wb->ran = true;
    wb->dispatching++;
    for (struct weft_bus_sub *s = LIST_FIRST(&wb->subs); s != NULL;
         s = LIST_NEXT(s, link))
        if (!s->dead && s->topic != NULL &&
            topic_matches(s, m.topic, m.topic_len))
            s->fn(&m, s->arg);
    wb->dispatching--;
}

static void bus_tell_peer(struct wbus *wb, int id, bool joined, bool new_only)
{
    wb->ran = true;
    wb->dispatching++;
    for (struct weft_bus_sub *s = LIST_FIRST(&wb->subs); s != NULL;
         s = LIST_NEXT(s, link))
        if (!s->dead && s->topic == NULL && (!new_only || !s->greeted))
            s->peer_fn(id, joined, s->arg);
    wb->dispatching--;
}

/*
 * Deliver what the dead incarnation inc of endpoint id left in its ring to
 * us, before its subscribers hear that it left: a peer's messages all
 * come before its leave, as they were sent. Stops at the first record of
 * another incarnation (its replacement's, delivered after the join).
 */
static void bus_drain_dead(struct wbus *wb, int id, uint32_t inc)
{
    struct ring *r = bus_ring(wb->b, id, wb->self);
    struct bus_msg_hdr h;
    uint32_t kind;
    size_t len;
    const void *p;

    while ((p = ring_peek(r, &kind, &len)) != NULL) {
        if (bus_rec_hdr(p, len, &h) && h.inc != inc)
            break;
        bus_dispatch(wb, kind, p, len);
        ring_pop(r);
        stats_add(wb->w->out_stats, STAT_bus_delivered, 1);
    }
}

/*
 * Endpoint id's state and incarnation, read together: a release and a
 * new claim between two plain loads would pair the new incarnation with
 * the old one's state (the incarnation grows before the state changes).
 */
static void bus_ep_read(const struct bus *b, uint32_t id, bool *live,
                        uint32_t *inc)
{
    const struct bus_endpoint *ep = &b->ep[id];
    uint32_t before;

    do {
        before = atomic_load(&ep->incarnation);
        *live = atomic_load(&ep->state) == BUS_EP_LIVE;
        *inc = atomic_load(&ep->incarnation);
    } while (*inc != before);
}

/*
 * Greet new peer watches with the peers already known; then, when the
 * endpoints changed (or force: a record came from an incarnation not yet
 * seen), report workers gone (their names are purged first, so a
 * callback that claims one of them succeeds) and workers come.
 */
static void bus_peers_update(struct wbus *wb, bool force)
{
    struct bus *b = wb->b;
    uint32_t n = b->h->nendpoints, epoch = atomic_load(&b->h->epoch);
    bool left = false;

    /* A new watch first hears of the peers already known, then of the
     * changes, with everyone else. */
    if (wb->greet) {
        wb->greet = false;
        for (uint32_t i = 0; i < n; i++)
            if (wb->alive[i])
                bus_tell_peer(wb, (int)i, true, true);
        struct weft_bus_sub *s;
        LIST_FOREACH(s, &wb->subs, link) s->greeted = true;
    }
    if (epoch == wb->epoch && !force)
        return;
    wb->epoch = epoch;
    for (uint32_t i = 0; i < n; i++) {
        bool live;
        uint32_t inc;
        if ((int)i == wb->self)
            continue;
        bus_ep_read(b, i, &live, &inc);
        if (wb->alive[i] && (!live || inc != wb->inc[i])) {
            bus_drain_dead(wb, (int)i, wb->inc[i]);
            wb->alive[i] = false;
            if (!left)
                bus_names_purge(b);
            left = true;
            bus_tell_peer(wb, (int)i, false, false);
        }
        if (live && !wb->alive[i]) {
            wb->alive[i] = true;
            wb->inc[i] = inc;
            bus_tell_peer(wb, (int)i, true, false);
        }
    }
}

/*
 * May a record of incarnation inc from endpoint id be delivered? Yes when
 * it is ourselves or the peer as last seen. A record of another
 * incarnation comes from a replacement we have not seen come yet: look at
 * the endpoints again (reporting the predecessor gone and the replacement
 * come first). A sender that is gone again by then is never reported
 * come, so its record is dropped: at most once from a worker that dies.
 */
static bool bus_sender_known(struct wbus *wb, int id, uint32_t inc)
{
    if (id == wb->self)
        return inc == wb->self_inc;
    if (wb->alive[id] && wb->inc[id] == inc)
        return true;
    bus_peers_update(wb, true);
    return wb->alive[id] && wb->inc[id] == inc;
}

/*
 * Take up to BUS_BATCH messages from each inbound ring. Returns true when
 * a ring may have more.
 */
static bool bus_drain(struct wbus *wb)
{
    struct bus *b = wb->b;
    struct stats_row *st = wb->w->out_stats;
    uint32_t n = b->h->nendpoints;
    bool more = false;

    /* What callbacks write to connections is gathered and sent once per
     * connection when the pass is over: a fan-out of many messages to
     * the same clients costs one write each, not one per message. */
    wb->w->corked = true;
    for (uint32_t i = 0; i < n; i++) {
        struct ring *r = bus_ring(b, (int)i, wb->self);
        uint32_t kind;
        size_t len;
        const void *p = ring_peek(r, &kind, &len);
        int taken = 0;

        if (p == NULL)
            continue;
        uint64_t used = ring_used(r);
        if (used > atomic_load_explicit(&st->v[STAT_bus_ring_high_water],
                                        memory_order_relaxed))
            atomic_store_explicit(&st->v[STAT_bus_ring_high_water], used,
                                  memory_order_relaxed);
        for (; p != NULL; p = ring_peek(r, &kind, &len)) {
            struct bus_msg_hdr h;
            bool ok = bus_rec_hdr(p, len, &h);
            if (ok && bus_sender_known(wb, (int)i, h.inc))
                bus_dispatch(wb, kind, p, len);
            ring_pop(r);
            stats_add(st, STAT_bus_delivered, 1);
            if (++taken == BUS_BATCH) {
                more = true;
                break;
            }
        }
    }
    wb->w->corked = false;
    return more;
}

static void bus_disarm(struct wbus *wb)
{
    for (uint32_t i = 0; i < wb->b->h->nendpoints; i++)
        ring_sleep_done(bus_ring(wb->b, (int)i, wb->self));
    wb->armed = false;
}

/*
 * Mark every inbound ring sleeping. False when a message came meanwhile
 * (nothing is left marked then): do not block.
 */
static bool bus_arm(struct wbus *wb)
{
    for (uint32_t i = 0; i < wb->b->h->nendpoints; i++)
        if (!ring_sleep_prepare(bus_ring(wb->b, (int)i, wb->self))) {
            bus_disarm(wb);
            return false;
        }
    wb->armed = true;
    return true;
}

/*
 * Before the loop waits: deliver, then tell producers we may sleep.
 *
 * Not after a pass that ran callbacks, though. What a callback did to a
 * connection (a write the socket took only in part, a close, a resume)
 * is settled by the worker's settle watcher, another prepare watcher,
 * started by that change; libev runs only the prepare watchers queued
 * before this pass, so it would run after the next poll, and a poll
 * that blocked would leave, say, the rest of a write unsent until some
 * other event (the 1 s heartbeat) woke the worker. So the poll after
 * such a pass does not block, and the next pass, which runs the settle
 * watcher too, is the one that sleeps.
 */
static void bus_prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct wbus *wb = container_of(p, struct wbus, prep);
    bool more;

    (void)revents;
    wb->ran = false;
    bus_peers_update(wb, false);
    more = bus_drain(wb);
    bus_reap(wb);
    if (!more && !wb->ran)
        more = !bus_arm(wb);
    /* Messages are waiting, or changes to settle: do not block. */
    if (more || wb->ran)
        ev_idle_start(loop, &wb->idle);
}

static void bus_check_cb(struct ev_loop *loop, ev_check *c, int revents)
{
    struct wbus *wb = container_of(c, struct wbus, check);

    (void)loop;
    (void)revents;
    if (wb->armed)
        bus_disarm(wb);
}

static void bus_idle_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)revents;
    ev_idle_stop(loop, i); /* the next prepare drains */
}

static void bus_wake_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)s;
    (void)revents;
    /* Nothing: waking the loop was the point, the prepare watcher drains. */
}

/* Come onto the bus: a clean inbound side, then LIVE for the others. */
static void bus_join(struct wbus *wb)
{
    struct ev_loop *loop = wb->w->loop;
    struct bus *b = wb->b;

    bus_inbound_reset(b, wb->self);
    wb->self_inc = atomic_load(&b->ep[wb->self].incarnation);
    if (atomic_load(&b->h->epoch) == 0)
        atomic_fetch_add(&b->h->epoch, 1);
    wb->epoch = 0; /* scan the endpoints at the first prepare */
    bus_names_purge(b);
    ev_signal_init(&wb->wake_w, bus_wake_cb, BUS_WAKE_SIGNAL);
    ev_prepare_init(&wb->prep, bus_prepare_cb);
    ev_check_init(&wb->check, bus_check_cb);
    ev_idle_init(&wb->idle, bus_idle_cb);
    ev_signal_start(loop, &wb->wake_w);
    ev_prepare_start(loop, &wb->prep);
    ev_check_start(loop, &wb->check);
    /* The bus alone keeps no loop running: a draining worker exits. */
    ev_unref(loop);
    ev_unref(loop);
    ev_unref(loop);
    atomic_store(&b->ep[wb->self].pid, (int32_t)getpid());
    atomic_store(&b->ep[wb->self].state, BUS_EP_LIVE);
    bus_announce(b, wb->self);
    wb->live = true;
}

void bus_worker_stop(struct worker *w)
{
    struct wbus *wb = w->bus;
    struct weft_bus_sub *s;

    if (wb == NULL)
        return;
    if (wb->live) {
        ev_ref(w->loop);
        ev_ref(w->loop);
        ev_ref(w->loop);
        ev_signal_stop(w->loop, &wb->wake_w);
        ev_prepare_stop(w->loop, &wb->prep);
        ev_check_stop(w->loop, &wb->check);
        ev_idle_stop(w->loop, &wb->idle);
    }
    while ((s = LIST_FIRST(&wb->subs)) != NULL) {
        LIST_REMOVE(s, link);
        free(s->topic);
        free(s);
    }
    free(wb->inc);
    free(wb->alive);
    free(wb);
    w->bus = NULL;
}

/* ---- the API ------------------------------------------------------------- */

static int topic_check(const char *topic, size_t *len)
{
    *len = topic != NULL ? strnlen(topic, WEFT_BUS_TOPIC_MAX + 1) : 0;
    return *len == 0 || *len > WEFT_BUS_TOPIC_MAX ? -1 : 0;
}

static struct weft_bus_sub *bus_sub_add(struct wbus *wb,
                                        struct weft_bus_sub *s)
{
    LIST_INSERT_HEAD(&wb->subs, s, link);
    if (!wb->live)
        bus_join(wb);
    return s;
}

struct weft_bus_sub *weft_bus_subscribe(const char *topic, int prefix,
                                        weft_bus_fn fn, void *arg)
{
    struct wbus *wb = wbus_of();
    struct weft_bus_sub *s;
    size_t len;

    if (wb == NULL) {
        errno = ENOTCONN;
        return NULL;
    }
    if (fn == NULL || topic_check(topic, &len) == -1) {
        errno = EINVAL;
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (s->topic = strndup(topic, len)) == NULL) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->topic_len = len;
    s->prefix = prefix != 0;
    s->fn = fn;
    s->arg = arg;
    s->greeted = true;
    return bus_sub_add(wb, s);
}

struct weft_bus_sub *weft_bus_watch_peers(weft_bus_peer_fn fn, void *arg)
{
    struct wbus *wb = wbus_of();
    struct weft_bus_sub *s;

    if (wb == NULL) {
        errno = ENOTCONN;
        return NULL;
    }
    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->peer_fn = fn;
    s->arg = arg;
    wb->greet = true;
    return bus_sub_add(wb, s);
}

void weft_bus_unsubscribe(struct weft_bus_sub *s)
{
    struct wbus *wb = wbus_of();

    if (s == NULL || wb == NULL)
        return;
    s->dead = true;
    wb->reap = true;
    bus_reap(wb);
}

size_t weft_bus_max_message(void)
{
    struct wbus *wb = wbus_of();

    if (wb == NULL)
        return 0;
    return (size_t)(wb->b->h->ring_size / 4) - sizeof(struct bus_msg_hdr) -
           WEFT_BUS_TOPIC_MAX - 1;
}

/*
 * Put one message into the ring to endpoint `to`. Returns 0, or -1 with
 * errno EAGAIN (full, counted).
 */
static int bus_put(struct wbus *wb, int to, uint32_t kind, const void *head,
                   size_t hlen, const void *data, size_t len)
{
    bool wake = false;

    if (ring_put(bus_ring(wb->b, wb->self, to), kind, head, hlen, data, len,
                 &wake) == -1) {
        stats_add(wb->w->out_stats, STAT_bus_dropped, 1);
        return -1;
    }
    if (wake)
        bus_wake(wb->b, to);
    return 0;
}

/* The record's head: header, topic and its NUL, into buf. */
static int bus_head(struct wbus *wb, const char *topic, size_t len,
                    unsigned char *buf, size_t *hlen)
{
    struct bus_msg_hdr h = {.from = wb->self, .inc = wb->self_inc};
    size_t tlen;

    if (topic_check(topic, &tlen) == -1) {
        errno = EINVAL;
        return -1;
    }
    if (len > weft_bus_max_message()) {
        errno = EMSGSIZE;
        return -1;
    }
    h.topic_len = (uint16_t)tlen;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), topic, tlen);
    buf[sizeof(h) + tlen] = '\0';
    *hlen = sizeof(h) + tlen + 1;
    return 0;
}

int weft_bus_publish(const char *topic, const void *data, size_t len)
{
    struct wbus *wb = wbus_of();
    unsigned char head[sizeof(struct bus_msg_hdr) + WEFT_BUS_TOPIC_MAX + 1];
    size_t hlen;
    int full = 0;

    if (wb == NULL) {
        errno = ENOTCONN;
        return -1;
    }
    if (bus_head(wb, topic, len, head, &hlen) == -1)
        return -1;
    stats_add(wb->w->out_stats, STAT_bus_published, 1);
    for (uint32_t i = 0; i < wb->b->h->nendpoints; i++)
        if (atomic_load_explicit(&wb->b->ep[i].state, memory_order_acquire) ==
                BUS_EP_LIVE &&
            bus_put(wb, (int)i, BUS_KIND_PUBLISH, head, hlen, data, len) == -1)
            full++;
    if (full > 0) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

int weft_bus_send(int to, const char *topic, const void *data, size_t len)
{
    struct wbus *wb = wbus_of();
    unsigned char head[sizeof(struct bus_msg_hdr) + WEFT_BUS_TOPIC_MAX + 1];
    size_t hlen;

    if (wb == NULL) {
        errno = ENOTCONN;
        return -1;
    }
    if (bus_head(wb, topic, len, head, &hlen) == -1)
        return -1;
    if (!weft_bus_alive(to)) {
        errno = ESRCH;
        return -1;
    }
    stats_add(wb->w->out_stats, STAT_bus_published, 1);
    if (bus_put(wb, to, BUS_KIND_SEND, head, hlen, data, len) == -1) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

int weft_bus_id(void)
{
    struct wbus *wb = wbus_of();

    return wb != NULL ? wb->self : -1;
}

int weft_bus_ids(void)
{
    struct wbus *wb = wbus_of();

    return wb != NULL ? (int)wb->b->h->nendpoints : 0;
}

int weft_bus_slots(void)
{
    struct wbus *wb = wbus_of();

    return wb != NULL ? (int)atomic_load(&wb->b->h->slots_now) : 0;
}

int weft_bus_alive(int id)
{
    struct wbus *wb = wbus_of();

    if (wb == NULL || id < 0 || id >= (int)wb->b->h->nendpoints)
        return 0;
    return atomic_load(&wb->b->ep[id].state) == BUS_EP_LIVE;
}

int weft_bus_slot_id(int slot)
{
    struct wbus *wb = wbus_of();
    int best = -1;

    if (wb == NULL)
        return -1;
    for (uint32_t i = 0; i < wb->b->h->nendpoints; i++) {
        const struct bus_endpoint *ep = &wb->b->ep[i];
        if (atomic_load(&ep->state) != BUS_EP_LIVE || ep->slot != slot)
            continue;
        if (best == -1 || ep->generation > wb->b->ep[best].generation)
            best = (int)i;
    }
    return best;
}

static int bus_errno(int rc)
{
    if (rc >= 0)
        return rc;
    errno = -rc;
    return -1;
}

int weft_bus_name_claim(const char *name)
{
    struct wbus *wb = wbus_of();

    if (wb == NULL) {
        errno = ENOTCONN;
        return -1;
    }
    return bus_errno(bus_name_claim(wb->b, wb->self, name));
}

int weft_bus_name_release(const char *name)
{
    struct wbus *wb = wbus_of();

    if (wb == NULL) {
        errno = ENOENT;
        return -1;
    }
    return bus_errno(bus_name_release(wb->b, wb->self, name));
}

int weft_bus_name_owner(const char *name)
{
    struct wbus *wb = wbus_of();

    return wb != NULL ? bus_name_owner(wb->b, name) : -1;
}
