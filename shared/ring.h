/*
 * A bounded single-producer single-consumer ring of variable-length
 * messages in shared memory, for the message bus between workers.
 *
 * The bus has one ring per ordered pair of workers (sender -> receiver):
 * exactly one process puts into a ring and exactly one takes from it, so a
 * ring needs no lock and no read-modify-write on its hot path, and a
 * sender's messages arrive in the order it put them. The ring holds no
 * pointer, only positions, so it works at any address in any process that
 * maps it. No syscall, no allocation: waking a receiver is the caller's
 * business (ring_put says when to write the receiver's eventfd).
 *
 * Layout (struct ring, then the data area; the whole is ring_bytes(), a
 * multiple of 64, and must start 64-byte aligned, as an mmap'ed region
 * and every ring_bytes() step into it are):
 *
 *   line 0  consumer: head (published), its last view of tail, the
 *           record it holds between ring_peek and ring_pop
 *   line 1  sleeping: set by the consumer before it blocks, read by the
 *           producer after each put; on its own line because the producer
 *           reads it every time and the consumer writes it rarely
 *   line 2  producer: tail (published), its last view of head, and its
 *           counters: messages put, dropped because full, high-water mark
 *   line 3  size and mask, written by ring_init, read-only after
 *   then    data: size bytes, size a power of two >= RING_MIN_DATA
 *
 * head and tail are byte positions that only grow (64 bits: they do not
 * wrap in any lifetime). The bytes in use are tail - head, the offset of
 * a position in the data is pos & mask, and all arithmetic is modulo 2^64,
 * so even a wrap of the positions would be harmless.
 *
 * Records: an 8-byte header {uint32 len, uint32 kind}, then len bytes,
 * padded to a multiple of 8, so every header is 8-byte aligned. A record
 * never wraps: when one does not fit before the end of the data, the
 * producer fills the rest with a padding record (kind RING_KIND_PAD, len
 * the bytes after its header) and writes the record at offset 0. A
 * message is at most size / 4 bytes (ring_max_message), so a record and
 * the padding before it take at most half the ring: the largest message
 * always fits once the consumer has caught up.
 *
 * Memory ordering. The producer writes the padding and the record with
 * plain stores, then stores tail with release; the consumer loads tail
 * with acquire, so every byte below the tail it saw is complete: it never
 * sees a half-written record. Symmetrically the consumer is done reading
 * a record before it stores head with release, and the producer loads
 * head with acquire before it reuses the space. Each side keeps its last
 * view of the other's position on its own line and reloads it only when
 * the ring looks full (producer) or empty (consumer), so under load each
 * shared line moves once per batch rather than once per message. A stale
 * view only ever underestimates the room or the messages available.
 *
 * Sleeping (the Dekker pattern, with seq_cst fences on both sides):
 *
 *   producer: store tail (release); fence; load sleeping
 *   consumer: store sleeping = 1;   fence; load tail, sleep if empty
 *
 * Of two seq_cst fences one comes first, so either the producer sees the
 * flag (and wakes the consumer) or the consumer sees the new tail (and
 * does not sleep): no lost wakeup. The producer that sees the flag clears
 * it with an exchange, so a burst into a sleeping consumer costs one
 * eventfd write, not one per message; a consumer that is awake has the
 * flag clear and costs the producer nothing but the fence and a load of a
 * line that stays in its cache.
 *
 * The consumer side, with one eventfd for all its rings (the bus):
 *
 *   drain every ring (ring_peek / ring_pop until NULL);
 *   ring_sleep_prepare every ring; if one says false, ring_sleep_done
 *   the others and drain again; else block on the eventfd (read it when
 *   it is readable), ring_sleep_done every ring and drain again.
 *
 * Under libev: prepare in an ev_prepare watcher, done in an ev_check.
 *
 * A producer that dies leaves the ring consistent: everything below tail
 * is whole records, and whatever it was writing past tail is unpublished.
 * The producer's state is all in the shared header, so its successor can
 * go on putting into the same ring; ring_init is for a ring no consumer
 * is using (it resets both positions).
 */
#ifndef WEFT_SHARED_RING_H
#define WEFT_SHARED_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_LINE 64
#define RING_MIN_DATA 4096u
/* len is 32 bits, and so is a padding record's. */
#define RING_MAX_DATA ((uint64_t)1 << 32)
/* The kind of a padding record; ring_put refuses it. */
#define RING_KIND_PAD UINT32_MAX

/* The header of a record in the data area. */
struct ring_rec {
    uint32_t len;  /* bytes after the header, before the padding to 8 */
    uint32_t kind; /* the caller's, or RING_KIND_PAD */
};

struct ring {
    /* Written by the consumer. */
    _Alignas(RING_LINE) _Atomic uint64_t head;
    uint64_t tail_seen; /* its last view of tail (consumer only) */
    uint64_t next;      /* head after the record it holds (consumer only) */
    bool held;          /* ring_peek returned a record not yet popped */

    /* Set by the consumer before it blocks, cleared by either side. */
    _Alignas(RING_LINE) _Atomic uint32_t sleeping;

    /* Written by the producer. */
    _Alignas(RING_LINE) _Atomic uint64_t tail;
    uint64_t head_seen;          /* its last view of head (producer only) */
    _Atomic uint64_t puts;       /* messages put */
    _Atomic uint64_t drops;      /* messages refused: ring full */
    _Atomic uint64_t high_water; /* the most bytes seen in use, padding
                                    included */

    /* Written by ring_init only. */
    _Alignas(RING_LINE) uint64_t size; /* bytes of data, a power of two */
    uint64_t mask;                     /* size - 1 */

    _Alignas(RING_LINE) unsigned char data[];
};

_Static_assert(sizeof(struct ring) % RING_LINE == 0,
               "the data area starts on a cache line");

/* The bytes to reserve for a ring of data_size bytes of data. */
size_t ring_bytes(size_t data_size);

/*
 * Make the ring_bytes(data_size) bytes at r an empty ring. data_size is a
 * power of two, RING_MIN_DATA <= data_size <= RING_MAX_DATA (asserted).
 * Only the header is written: untouched data pages cost nothing. No
 * process may be using the ring meanwhile.
 */
void ring_init(struct ring *r, size_t data_size);

/* The longest message the ring takes: its data size / 4. */
size_t ring_max_message(const struct ring *r);

/*
 * Producer: put one message of kind, the bytes a[0..alen) followed by
 * b[0..blen) (so a header and a payload go in without being joined
 * first; either may be NULL when its length is 0). Returns 0, or -1 with
 * errno EAGAIN when the ring has no room (counted in drops; nothing in
 * the ring changes), EMSGSIZE when alen + blen > ring_max_message(r), or
 * EINVAL when kind is RING_KIND_PAD.
 *
 * Sets *wake to true (and never to false, so a batch can share one flag)
 * when the consumer may be asleep: the caller then writes the consumer's
 * eventfd.
 */
int ring_put(struct ring *r, uint32_t kind, const void *a, size_t alen,
             const void *b, size_t blen, bool *wake);

/*
 * Consumer: the next message, its kind in *kind and its length in *len;
 * NULL when the ring is empty. The bytes are in the ring (8-byte
 * aligned) and stay valid until ring_pop. Calling it again before
 * ring_pop returns the same message.
 *
 * A record that cannot be one (a corrupt producer) makes the consumer
 * skip everything published: NULL with errno EBADMSG.
 */
const void *ring_peek(struct ring *r, uint32_t *kind, size_t *len);

/* Consumer: release the message ring_peek returned. */
void ring_pop(struct ring *r);

/*
 * Consumer: declare that it may block. False when a message is already
 * there (the flag is then cleared again: do not block); true when the
 * producer will now report wake for its next put.
 */
bool ring_sleep_prepare(struct ring *r);

/* Consumer: awake again (clears the flag, set or not). */
void ring_sleep_done(struct ring *r);

/* Bytes in use, padding included; any process may ask. */
size_t ring_used(const struct ring *r);

#endif
