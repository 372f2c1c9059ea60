#include "shared/ring.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#define RING_ALIGN 8u
#define RING_HDR ((uint64_t)sizeof(struct ring_rec))

_Static_assert(sizeof(struct ring_rec) == RING_ALIGN, "8-byte header");

/* Bytes a record of len bytes takes: header, then len padded to 8. */
static inline uint64_t ring_rec_size(uint64_t len)
{
    return RING_HDR + ((len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1));
}

/* Single-writer counter: a load and a store, no lock prefix. */
static inline void ring_count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

size_t ring_bytes(size_t data_size)
{
    return sizeof(struct ring) + data_size;
}

void ring_init(struct ring *r, size_t data_size)
{
    assert(data_size >= RING_MIN_DATA && data_size <= RING_MAX_DATA);
    assert((data_size & (data_size - 1)) == 0);
    assert(((uintptr_t)r & (RING_LINE - 1)) == 0);
    memset(r, 0, sizeof(*r));
    r->size = data_size;
    r->mask = data_size - 1;
    atomic_store_explicit(&r->head, 0, memory_order_relaxed);
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
    /* Release: a process that sees tail sees the rest of the header. */
    atomic_store_explicit(&r->tail, 0, memory_order_release);
}

size_t ring_max_message(const struct ring *r)
{
    return (size_t)(r->size / 4);
}

/*
 * The producer's room check: true when need more bytes fit after tail.
 * head_seen is a position the consumer has passed, so a stale one only
 * underestimates the room; it is reloaded when the room looks short.
 */
static bool ring_room(struct ring *r, uint64_t tail, uint64_t need)
{
    if (tail + need - r->head_seen <= r->size)
        return true;
    /* Acquire: the consumer finished reading what it released. */
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    return tail + need - r->head_seen <= r->size;
}

static void ring_write_hdr(struct ring *r, uint64_t off, uint32_t len,
                           uint32_t kind)
{
    struct ring_rec h = {.len = len, .kind = kind};

    memcpy(r->data + off, &h, sizeof(h));
}

/*
 * The high-water mark, after a put that left the ring at tail. Measured
 * against a fresh head, but head is reloaded only when the estimate from
 * the stale one beats the mark: the mark stays exact and, once it has
 * settled, costs nothing.
 */
static void ring_note_used(struct ring *r, uint64_t tail)
{
    uint64_t hw = atomic_load_explicit(&r->high_water, memory_order_relaxed);

    if (tail - r->head_seen <= hw)
        return;
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - r->head_seen > hw)
        atomic_store_explicit(&r->high_water, tail - r->head_seen,
                              memory_order_relaxed);
}

int ring_put(struct ring *r, uint32_t kind, const void *a, size_t alen,
             const void *b, size_t blen, bool *wake)
{
    size_t max = ring_max_message(r);

    if (kind == RING_KIND_PAD) {
        errno = EINVAL;
        return -1;
    }
    if (alen > max || blen > max - alen) {
        errno = EMSGSIZE;
        return -1;
    }

    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t off = tail & r->mask;
    uint64_t rec = ring_rec_size(alen + blen);
    /* Not enough before the end: pad to it, and start again at 0. */
    uint64_t pad = r->size - off < rec ? r->size - off : 0;

    if (!ring_room(r, tail, pad + rec)) {
        ring_count(&r->drops);
        errno = EAGAIN;
        return -1;
    }
    if (pad != 0) {
        ring_write_hdr(r, off, (uint32_t)(pad - RING_HDR), RING_KIND_PAD);
        off = 0;
    }
    ring_write_hdr(r, off, (uint32_t)(alen + blen), kind);
    if (alen != 0)
        memcpy(r->data + off + RING_HDR, a, alen);
    if (blen != 0)
        memcpy(r->data + off + RING_HDR + alen, b, blen);
    tail += pad + rec;
    /* Release: the record is complete before the consumer can see it. */
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    ring_count(&r->puts);
    ring_note_used(r, tail);

    /* Pairs with the fence in ring_sleep_prepare: either it sees the new
     * tail or this sees its flag. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->sleeping, memory_order_relaxed) != 0 &&
        atomic_exchange_explicit(&r->sleeping, 0, memory_order_relaxed) != 0)
        *wake = true;
    return 0;
}

/* Give up on a ring whose records make no sense: skip what is there. */
static const void *ring_corrupt(struct ring *r)
{
    atomic_store_explicit(&r->head, r->tail_seen, memory_order_release);
    errno = EBADMSG;
    return NULL;
}

const void *ring_peek(struct ring *r, uint32_t *kind, size_t *len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t rec;
    struct ring_rec h;

    for (;;) {
        if (head == r->tail_seen) {
            /* Acquire: what the producer wrote below tail is visible. */
            r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head == r->tail_seen)
                return NULL;
        }
        uint64_t off = head & r->mask;
        uint64_t avail = r->tail_seen - head;
        uint64_t to_end = r->size - off;

        memcpy(&h, r->data + off, sizeof(h));
        rec = ring_rec_size(h.len);
        if (rec > avail || rec > to_end)
            return ring_corrupt(r);
        if (h.kind != RING_KIND_PAD)
            break;
        if (rec != to_end)
            return ring_corrupt(r);
        /* Release the padding now: it is room for the producer. */
        head += rec;
        atomic_store_explicit(&r->head, head, memory_order_release);
    }
    r->next = head + rec;
    r->held = true;
    *kind = h.kind;
    *len = h.len;
    return r->data + (head & r->mask) + RING_HDR;
}

void ring_pop(struct ring *r)
{
    assert(r->held);
    r->held = false;
    /* Release: done reading the record before the producer reuses it. */
    atomic_store_explicit(&r->head, r->next, memory_order_release);
}

bool ring_sleep_prepare(struct ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

    atomic_store_explicit(&r->sleeping, 1, memory_order_relaxed);
    /* Pairs with the fence in ring_put: see its tail or it sees the flag. */
    atomic_thread_fence(memory_order_seq_cst);
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (r->tail_seen != head) {
        atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
        return false;
    }
    return true;
}

void ring_sleep_done(struct ring *r)
{
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
}

/*
 * head first: tail is never behind a head already seen (the consumer
 * moved head only up to a tail it had loaded), so the difference cannot
 * go below zero even while both sides move.
 */
size_t ring_used(const struct ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

    return (size_t)(tail - head);
}
