/*
 * The message bus's shared memory: endpoints, rings and the name
 * registry. Created by the supervisor before it forks (a memfd), used by
 * every worker; no libev here (worker/bus.c is the worker's side).
 *
 * Endpoints. Each worker process holds an endpoint, claimed for it by the
 * supervisor before the fork and released when it exits: a pool of
 * endpoints shared by every slot, as the stats blocks are, two per slot
 * the bus was sized for (a slot's worker and the one a reload replaces). An
 * endpoint's incarnation grows at each claim: a name or a peer seen with
 * another incarnation belongs to a process that is gone. An endpoint is
 * STARTING from its claim until its worker takes its first subscription
 * and turns it LIVE; only LIVE endpoints are sent to.
 *
 * Rings. One single-producer single-consumer ring (shared/ring.h) per
 * ordered pair of endpoints, the diagonal included (a worker's messages
 * to itself go through its own ring, so they keep their order with the
 * rest and never run a callback inside publish). The rings of an
 * endpoint are initialised when it is first claimed, so a pool larger
 * than what runs costs no memory. A new process on an endpoint starts
 * with empty inbound rings: it moves each head to the tail it sees
 * (bus_inbound_reset), which is the consumer's right at any time.
 *
 * Waking. A producer sends the receiver BUS_WAKE_SIGNAL (kill(2), to the
 * pid in its endpoint) when ring_put says it may be asleep; the worker's
 * loop watches that signal. A signal needs no descriptor in any process
 * (a descriptor per peer would cost every worker one per endpoint), and
 * a burst of them while the receiver wakes up collapses into one. The
 * header's epoch grows at every endpoint change (live, release) and the
 * supervisor or the worker that changed it wakes every live endpoint, so
 * workers notice peers coming and going.
 *
 * Names. An open-addressing table (linear probing) of {name, endpoint,
 * incarnation} under one process-shared robust mutex: claims are rare
 * (a chat NICK) and short, so a lock is simpler than anything lock-free,
 * and a holder that dies leaves it recoverable (EOWNERDEAD: the table is
 * rebuilt). An entry whose holder's incarnation has moved on is stale:
 * free for a claim, invisible to a lookup, and purged by the next worker
 * that notices the holder left.
 */
#ifndef WEFT_SHARED_BUS_H
#define WEFT_SHARED_BUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>

#include "shared/ring.h"

/* What wakes a worker sleeping on the bus: never used otherwise. */
#define BUS_WAKE_SIGNAL SIGURG

#define BUS_MAGIC 0x53554257u /* "WBUS" */
#define BUS_LAYOUT_VERSION 1
#define BUS_MAX_ENDPOINTS 512
#define BUS_NAME_LEN 56    /* bytes of a name entry, NUL included */
#define BUS_NAMES 65536    /* entries of the name table, a power of two */
#define BUS_RING_MIN 16384 /* a ring's data size: */
#define BUS_RING_MAX (64u << 20)
#define BUS_RING_AUTO_MAX (256u << 10)
#define BUS_RING_AUTO_BUDGET ((size_t)64 << 20) /* for the slots' rings */

enum bus_ep_state {
    BUS_EP_FREE = 0,
    BUS_EP_STARTING, /* claimed, its worker not yet on the bus */
    BUS_EP_LIVE      /* its worker consumes: send to it */
};

struct bus_endpoint {
    _Atomic uint32_t state; /* enum bus_ep_state */
    _Atomic uint32_t incarnation;
    _Atomic int32_t pid; /* set by the worker itself, before LIVE */
    int32_t slot;
    uint32_t generation;
    bool rings_ready; /* its rings were initialised (supervisor only) */
} __attribute__((aligned(64)));

struct bus_name {
    uint32_t ep;  /* holder's endpoint + 1; 0: empty entry */
    uint32_t inc; /* the holder's incarnation at the claim */
    char name[BUS_NAME_LEN];
};

_Static_assert(sizeof(struct bus_name) == 64, "one line per name");

struct bus_header {
    uint32_t magic;
    uint32_t layout_version;
    uint32_t nendpoints;
    uint32_t nslots;  /* the most worker slots this bus serves */
    _Atomic uint32_t slots_now; /* slots of the current generation */
    uint64_t ring_size;   /* data bytes of each ring */
    uint64_t ring_stride; /* ring_bytes(ring_size), page-rounded */
    uint64_t rings_off;   /* offset of ring 0 in the region */
    uint64_t size;        /* of the region */
    _Atomic uint32_t epoch; /* endpoint changes */
    pthread_mutex_t names_lock; /* process-shared, robust */
    uint32_t names_used;        /* entries not empty, stale included */
} __attribute__((aligned(64)));

/* A process's view of the region. */
struct bus {
    struct bus_header *h;
    struct bus_endpoint *ep; /* h->nendpoints */
    struct bus_name *names;  /* BUS_NAMES */
    unsigned char *rings;
    int fd;                  /* the region's memfd (-1 in workers) */
};

/*
 * The default ring data size for nslots worker slots: what keeps the
 * rings among one worker per slot within BUS_RING_AUTO_BUDGET, a power
 * of two between BUS_RING_MIN and BUS_RING_AUTO_MAX.
 */
size_t bus_ring_auto(int nslots);

/*
 * Supervisor: create and map the region for nslots slots, with
 * 2 * nslots endpoints, rings of ring_size data bytes (a power of two,
 * BUS_RING_MIN..BUS_RING_MAX). Fills *b; -1 with errno on failure
 * (nothing left open).
 */
int bus_create(struct bus *b, int nslots, size_t ring_size);

/* Unmap and close everything bus_create opened. */
void bus_destroy(struct bus *b);

/*
 * Supervisor: claim a free endpoint for a worker of slot and generation
 * about to be forked. Returns its index, or -1 when every one is held.
 */
int bus_ep_claim(struct bus *b, int slot, uint32_t generation);

/* Endpoints not held by any process. */
int bus_ep_free_count(const struct bus *b);

/* Supervisor: the worker on endpoint e exited: free it, tell the others. */
void bus_ep_release(struct bus *b, int e);

/* The ring from endpoint `from` to endpoint `to`. */
static inline struct ring *bus_ring(const struct bus *b, int from, int to)
{
    size_t i = (size_t)from * b->h->nendpoints + (size_t)to;

    return (struct ring *)(b->rings + i * b->h->ring_stride);
}

/* Wake endpoint e's worker (it may be asleep). */
void bus_wake(const struct bus *b, int e);

/* Bump the epoch and wake every live endpoint but `except` (-1: none). */
void bus_announce(struct bus *b, int except);

/* Worker on endpoint self: drop everything sent to its predecessors. */
void bus_inbound_reset(struct bus *b, int self);

/*
 * Names, from any worker; self is its endpoint. Return 0 or -errno as
 * weft_bus_name_claim / _release say; owner returns an endpoint or -1.
 */
int bus_name_claim(struct bus *b, int self, const char *name);
int bus_name_release(struct bus *b, int self, const char *name);
int bus_name_owner(struct bus *b, const char *name);

/* Remove the entries of holders that are gone. */
void bus_names_purge(struct bus *b);

/* Entries in use, stale included (tests, stats). */
uint32_t bus_names_used(struct bus *b);

#endif
