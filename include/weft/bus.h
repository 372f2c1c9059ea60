/*
 * weft's message bus: messages between the worker processes.
 *
 * Every worker process has a bus id, 0..weft_bus_ids()-1, held for its
 * life (a reload or a crash gives the replacement another id, or the
 * same one with a clean ring). A message is a topic (1 to
 * WEFT_BUS_TOPIC_MAX bytes) and up to weft_bus_max_message() bytes of
 * data. It goes to every worker that subscribes to something
 * (weft_bus_publish), this one included, or to one worker
 * (weft_bus_send), through shared memory: no system call per message
 * while the receiver is busy, one eventfd write when it may be asleep.
 *
 * Delivery: callbacks run from the receiving worker's event loop, never
 * inside publish or send. Messages from one worker arrive in the order it
 * published them, exactly once to a worker that stays alive, at most once
 * to one that dies or is replaced meanwhile. A message that does not fit
 * (the receiver is that far behind) is not queued: the sender is told and
 * the drop is counted in the stats (bus_dropped), never lost silently.
 * Peer watches and messages keep one order: a worker is reported joined
 * before its first message is delivered, and everything it sent before it
 * died is delivered before it is reported gone, nothing after (its
 * replacement, which may get the same bus id, is reported joined anew).
 *
 * Names: a registry shared by every worker maps a name to the worker
 * holding it, so a name is unique across the whole server (chat nicks).
 * A worker's names are freed when it exits or dies.
 *
 * Every function runs in a worker, from its callbacks or timers.
 */
#ifndef WEFT_BUS_H
#define WEFT_BUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_BUS_TOPIC_MAX 255
#define WEFT_BUS_NAME_MAX 55

/* A message as a subscriber gets it; valid only during the callback. */
struct weft_bus_msg {
    const char *topic; /* NUL-terminated */
    size_t topic_len;
    const void *data;
    size_t len;
    int from;          /* the sender's bus id */
    int unicast;       /* 1: sent to this worker alone (weft_bus_send) */
};

struct weft_bus_sub;

typedef void (*weft_bus_fn)(const struct weft_bus_msg *m, void *arg);

/*
 * Another worker came onto the bus (joined 1: its first subscription)
 * or left it (joined 0: it exited or died; what it held, names
 * included, is gone).
 */
typedef void (*weft_bus_peer_fn)(int id, int joined, void *arg);

/*
 * Call fn for every message whose topic equals topic, or, when prefix is
 * 1, starts with it. The first subscription puts this worker on the bus:
 * from then on it gets what others publish. NULL with errno on failure
 * (ENOMEM, EINVAL for a bad topic, ENOTCONN when weftd has no bus).
 */
struct weft_bus_sub *weft_bus_subscribe(const char *topic, int prefix,
                                        weft_bus_fn fn, void *arg);

/* Call fn when a worker joins or leaves the bus. NULL with errno. */
struct weft_bus_sub *weft_bus_watch_peers(weft_bus_peer_fn fn, void *arg);

/* End a subscription or a watch; safe from inside its own callback. */
void weft_bus_unsubscribe(struct weft_bus_sub *s);

/*
 * Publish to every worker on the bus, this one included. 0 when every one
 * took it; -1 with errno EAGAIN when at least one had no room (that one
 * will never see the message, the others will, each drop is counted),
 * EMSGSIZE (data over weft_bus_max_message), EINVAL (bad topic) or
 * ENOTCONN (no bus).
 */
int weft_bus_publish(const char *topic, const void *data, size_t len);

/*
 * Send to the worker with bus id `to` alone (it may be this one). -1
 * with errno ESRCH when no worker with that id is on the bus, EAGAIN
 * when its ring is full (counted), or as weft_bus_publish.
 */
int weft_bus_send(int to, const char *topic, const void *data, size_t len);

/* This worker's bus id; -1 when weftd has no bus. */
int weft_bus_id(void);

/* How many bus ids there are (the ids of live and future workers). */
int weft_bus_ids(void);

/* 1 when the worker with that id is on the bus, else 0. */
int weft_bus_alive(int id);

/*
 * The bus id of the worker now serving slot (the newest one, during a
 * reload), or -1 when none is on the bus.
 */
int weft_bus_slot_id(int slot);

/*
 * The worker slots serving now (changes when a reload that resizes the
 * group commits), for spreading work over slots with weft_bus_slot_id;
 * 0 when weftd has no bus.
 */
int weft_bus_slots(void);

/* The most data bytes one message carries (a quarter of a ring). */
size_t weft_bus_max_message(void);

/*
 * Claim name (1..WEFT_BUS_NAME_MAX bytes) for this worker. 0, or -1 with
 * errno EEXIST (another worker, or this one, holds it), ENAMETOOLONG,
 * EINVAL (empty), ENOSPC (the registry is full) or ENOTCONN.
 */
int weft_bus_name_claim(const char *name);

/* Give back a name this worker holds. 0, or -1 with errno ENOENT. */
int weft_bus_name_release(const char *name);

/* The bus id of the worker holding name, or -1. */
int weft_bus_name_owner(const char *name);

#ifdef __cplusplus
}
#endif

#endif
