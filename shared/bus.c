#include "shared/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/util.h"

#define BUS_PAGE 4096u
/* Claims refused once this share of the table is used (stale purged
 * first): linear probing slows down past it. */
#define BUS_NAMES_FULL (BUS_NAMES / 4 * 3)

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

size_t bus_ring_auto(int nslots)
{
    size_t n = (size_t)(nslots < 1 ? 1 : nslots);
    size_t budget = BUS_RING_AUTO_BUDGET / (n * n), size = BUS_RING_MIN;

    while (size * 2 <= budget && size * 2 <= BUS_RING_AUTO_MAX)
        size *= 2;
    return size;
}

static int names_lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int err;

    if ((err = pthread_mutexattr_init(&a)) != 0)
        return err;
    err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (err == 0)
        err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (err == 0)
        err = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return err;
}

int bus_create(struct bus *b, int nslots, size_t ring_size)
{
    size_t e = 2 * (size_t)nslots;
    size_t stride = round_up(ring_bytes(ring_size), BUS_PAGE);
    size_t off_ep = round_up(sizeof(struct bus_header), RING_LINE);
    size_t off_names = off_ep + e * sizeof(struct bus_endpoint);
    size_t rings_off = round_up(off_names + BUS_NAMES * sizeof(struct bus_name),
                                BUS_PAGE);
    size_t size;
    unsigned char *base;
    int err;

    memset(b, 0, sizeof(*b));
    b->fd = -1;
    if (nslots < 1 || e > BUS_MAX_ENDPOINTS ||
        ring_size < BUS_RING_MIN || ring_size > BUS_RING_MAX ||
        (ring_size & (ring_size - 1)) != 0) {
        errno = EINVAL;
        return -1;
    }
    size = rings_off + e * e * stride;
    b->fd = memfd_create("weft-bus", MFD_CLOEXEC);
    if (b->fd == -1 || ftruncate(b->fd, (off_t)size) == -1)
        goto fail;
    base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
    if (base == MAP_FAILED)
        goto fail;
    b->h = (struct bus_header *)base;
    b->ep = (struct bus_endpoint *)(base + off_ep);
    b->names = (struct bus_name *)(base + off_names);
    b->rings = base + rings_off;
    b->h->magic = BUS_MAGIC;
    b->h->layout_version = BUS_LAYOUT_VERSION;
    b->h->nendpoints = (uint32_t)e;
    b->h->nslots = (uint32_t)nslots;
    atomic_store(&b->h->slots_now, (uint32_t)nslots);
    b->h->ring_size = ring_size;
    b->h->ring_stride = stride;
    b->h->rings_off = rings_off;
    b->h->size = size;
    if ((err = names_lock_init(&b->h->names_lock)) != 0) {
        errno = err;
        goto fail;
    }
    return 0;
fail:
    err = errno;
    bus_destroy(b);
    errno = err;
    return -1;
}

void bus_destroy(struct bus *b)
{
    if (b->h != NULL)
        munmap(b->h, b->h->size);
    if (b->fd != -1)
        close(b->fd);
    memset(b, 0, sizeof(*b));
    b->fd = -1;
}

/*
 * The rings of endpoint e, at its first claim. A ring between e and an
 * endpoint never claimed is untouched by anyone; one between e and an
 * endpoint claimed before was initialised at that claim. Either way no
 * process uses the rings initialised here.
 */
static void bus_rings_prepare(struct bus *b, int e)
{
    int n = (int)b->h->nendpoints;

    for (int x = 0; x < n; x++) {
        if (x != e && b->ep[x].rings_ready)
            continue;
        ring_init(bus_ring(b, e, x), b->h->ring_size);
        if (x != e)
            ring_init(bus_ring(b, x, e), b->h->ring_size);
    }
    b->ep[e].rings_ready = true;
}

int bus_ep_claim(struct bus *b, int slot, uint32_t generation)
{
    for (uint32_t i = 0; i < b->h->nendpoints; i++) {
        struct bus_endpoint *ep = &b->ep[i];
        if (atomic_load(&ep->state) != BUS_EP_FREE)
            continue;
        if (!ep->rings_ready)
            bus_rings_prepare(b, (int)i);
        ep->slot = slot;
        ep->generation = generation;
        atomic_store(&ep->pid, 0); /* its worker sets it */
        atomic_fetch_add(&ep->incarnation, 1);
        atomic_store(&ep->state, BUS_EP_STARTING);
        return (int)i;
    }
    return -1;
}

int bus_ep_free_count(const struct bus *b)
{
    int n = 0;

    for (uint32_t i = 0; i < b->h->nendpoints; i++)
        n += atomic_load(&b->ep[i].state) == BUS_EP_FREE;
    return n;
}

void bus_ep_release(struct bus *b, int e)
{
    bool was_live = atomic_load(&b->ep[e].state) == BUS_EP_LIVE;

    atomic_store(&b->ep[e].pid, 0);
    atomic_store(&b->ep[e].state, BUS_EP_FREE);
    if (was_live)
        bus_announce(b, e);
}

void bus_wake(const struct bus *b, int e)
{
    pid_t pid = atomic_load(&b->ep[e].pid);

    /* 0: not started yet (never the process group). A pid that exited
     * meanwhile may be anyone's: the signal is ignored by default. */
    if (pid > 0)
        kill(pid, BUS_WAKE_SIGNAL);
}

void bus_announce(struct bus *b, int except)
{
    atomic_fetch_add(&b->h->epoch, 1);
    for (uint32_t i = 0; i < b->h->nendpoints; i++)
        if ((int)i != except &&
            atomic_load(&b->ep[i].state) == BUS_EP_LIVE)
            bus_wake(b, (int)i);
}

void bus_inbound_reset(struct bus *b, int self)
{
    for (uint32_t i = 0; i < b->h->nendpoints; i++) {
        struct ring *r = bus_ring(b, (int)i, self);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

        r->tail_seen = tail;
        r->next = tail;
        r->held = false;
        atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
        atomic_store_explicit(&r->head, tail, memory_order_release);
    }
}

/* ---- names -------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

    while (*s != '\0') {
        h ^= (unsigned char)*s++;
        h *= 0x100000001b3u;
    }
    return h;
}

/* The entry's holder is the process it names, still alive. */
static bool name_valid(const struct bus *b, const struct bus_name *n)
{
    const struct bus_endpoint *ep;

    if (n->ep == 0 || n->ep > b->h->nendpoints)
        return false;
    ep = &b->ep[n->ep - 1];
    return atomic_load(&ep->state) != BUS_EP_FREE &&
           atomic_load(&ep->incarnation) == n->inc;
}

/* Remove entry i, shifting back the entries of its probe run. */
static void name_delete(struct bus *b, uint32_t i)
{
    const uint32_t mask = BUS_NAMES - 1;
    uint32_t j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (b->names[j].ep == 0)
            break;
        uint32_t home = (uint32_t)name_hash(b->names[j].name) & mask;
        /* j's entry may move to i when its home is not in (i, j]. */
        bool between = i <= j ? (i < home && home <= j)
                              : (i < home || home <= j);
        if (!between) {
            b->names[i] = b->names[j];
            i = j;
        }
    }
    memset(&b->names[i], 0, sizeof(b->names[i]));
    b->h->names_used--;
}

static void names_purge_locked(struct bus *b)
{
    if (b->h->names_used == 0)
        return;
    for (uint32_t i = 0; i < BUS_NAMES; i++)
        while (b->names[i].ep != 0 && !name_valid(b, &b->names[i]))
            name_delete(b, i);
}

/*
 * A holder died with the lock: an entry may be half moved. Put every
 * valid entry back by a fresh insertion.
 */
static void names_rebuild_locked(struct bus *b)
{
    const uint32_t mask = BUS_NAMES - 1;
    struct bus_name *keep = malloc(sizeof(*keep) * BUS_NAMES);
    uint32_t n = 0;

    if (keep == NULL)
        abort();
    for (uint32_t i = 0; i < BUS_NAMES; i++)
        if (b->names[i].ep != 0 && name_valid(b, &b->names[i])) {
            keep[n] = b->names[i];
            keep[n].name[BUS_NAME_LEN - 1] = '\0';
            n++;
        }
    memset(b->names, 0, sizeof(*b->names) * BUS_NAMES);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (uint32_t)name_hash(keep[k].name) & mask;
        while (b->names[i].ep != 0)
            i = (i + 1) & mask;
        b->names[i] = keep[k];
    }
    b->h->names_used = n;
    free(keep);
}

static void names_lock(struct bus *b)
{
    int err = pthread_mutex_lock(&b->h->names_lock);

    if (err == EOWNERDEAD) {
        names_rebuild_locked(b);
        pthread_mutex_consistent(&b->h->names_lock);
    } else if (err != 0) {
        abort(); /* ENOTRECOVERABLE: never left so by this code */
    }
}

static void names_unlock(struct bus *b)
{
    pthread_mutex_unlock(&b->h->names_lock);
}

/* The index of name's entry, or of the empty entry ending its run. */
static uint32_t name_find(const struct bus *b, const char *name)
{
    const uint32_t mask = BUS_NAMES - 1;
    uint32_t i = (uint32_t)name_hash(name) & mask;

    while (b->names[i].ep != 0 && strcmp(b->names[i].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

static int name_check(const char *name)
{
    size_t len = strnlen(name, BUS_NAME_LEN);

    if (len == 0)
        return -EINVAL;
    if (len >= BUS_NAME_LEN)
        return -ENAMETOOLONG;
    return 0;
}

int bus_name_claim(struct bus *b, int self, const char *name)
{
    struct bus_name *n;
    int rc = name_check(name);

    if (rc != 0)
        return rc;
    names_lock(b);
    if (b->h->names_used >= BUS_NAMES_FULL)
        names_purge_locked(b);
    n = &b->names[name_find(b, name)];
    if (n->ep != 0 && name_valid(b, n)) {
        rc = -EEXIST;
    } else if (n->ep == 0 && b->h->names_used >= BUS_NAMES_FULL) {
        rc = -ENOSPC;
    } else {
        if (n->ep == 0)
            b->h->names_used++;
        n->ep = (uint32_t)self + 1;
        n->inc = atomic_load(&b->ep[self].incarnation);
        strcpy(n->name, name);
    }
    names_unlock(b);
    return rc;
}

int bus_name_release(struct bus *b, int self, const char *name)
{
    int rc = -ENOENT;
    uint32_t i;

    if (name_check(name) != 0)
        return -ENOENT;
    names_lock(b);
    i = name_find(b, name);
    if (b->names[i].ep == (uint32_t)self + 1 && name_valid(b, &b->names[i])) {
        name_delete(b, i);
        rc = 0;
    }
    names_unlock(b);
    return rc;
}

int bus_name_owner(struct bus *b, const char *name)
{
    int owner = -1;
    uint32_t i;

    if (name_check(name) != 0)
        return -1;
    names_lock(b);
    i = name_find(b, name);
    if (b->names[i].ep != 0 && name_valid(b, &b->names[i]))
        owner = (int)b->names[i].ep - 1;
    names_unlock(b);
    return owner;
}

void bus_names_purge(struct bus *b)
{
    names_lock(b);
    names_purge_locked(b);
    names_unlock(b);
}

uint32_t bus_names_used(struct bus *b)
{
    uint32_t n;

    names_lock(b);
    n = b->h->names_used;
    names_unlock(b);
    return n;
}
