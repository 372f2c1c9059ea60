/*
 * Unit tests for the shared-memory message ring (shared/ring.c): records
 * and their padding, wrap-around of the data and of the positions, a full
 * ring, and the real thing: producer processes and a consumer on
 * MAP_SHARED memory, every byte of every message checked in order, and
 * the sleep/wake protocol with an eventfd (a lost wakeup shows as a poll
 * that times out).
 *
 * Hot loops check with a plain if and ck_abort_msg: a Check assertion
 * that passes still costs a write to the runner (see check_stats.c).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/ring.h"
#include "tests/unit/check_run.h"

#define SMALL 4096u /* the smallest ring: wraps often */

/* A ring of data_size bytes in a MAP_SHARED anonymous mapping, which a
 * forked child shares. */
static struct ring *ring_new(size_t data_size)
{
    void *p = mmap(NULL, ring_bytes(data_size), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    ring_init(p, data_size);
    return p;
}

static void ring_free(struct ring *r)
{
    munmap(r, ring_bytes((size_t)r->size));
}

/* Move an empty ring's positions to pos (8-aligned): any start must do,
 * past 2^32 and across 2^64 too. Pokes both sides' private views. */
static void ring_start_at(struct ring *r, uint64_t pos)
{
    atomic_store(&r->head, pos);
    atomic_store(&r->tail, pos);
    r->head_seen = pos;
    r->tail_seen = pos;
}

/* splitmix64's finalizer: the seed of everything derived from a seq. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* The payload of message seq of sender: len bytes of xorshift. */
static void payload_fill(uint64_t seed, unsigned char *p, size_t len)
{
    uint64_t x = mix(seed) | 1;
    size_t i;

    for (i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, len - i < 8 ? len - i : 8);
    }
}

/* Payload length of message seq, at most max: one in 32 anywhere up to
 * max, the others below 256. */
static size_t payload_len(uint64_t seed, size_t max)
{
    uint64_t h = mix(seed ^ 0x5555);
    uint64_t bound = (h & 31) == 0 || max < 256 ? max + 1 : 256;

    return (size_t)((h >> 8) % bound);
}

/* Seed of message seq from sender: distinct for every pair. */
static uint64_t seed_of(unsigned sender, uint64_t seq)
{
    return seq * 4 + sender;
}

/* Put message seq of sender: seq (the a part) then its payload (b). */
static int put_seq(struct ring *r, unsigned sender, uint64_t seq,
                   unsigned char *buf, size_t max, bool *wake)
{
    uint64_t seed = seed_of(sender, seq);
    size_t len = payload_len(seed, max - sizeof(seq));

    payload_fill(seed, buf, len);
    return ring_put(r, (uint32_t)(sender << 16 | (seq & 0xffff)), &seq,
                    sizeof(seq), buf, len, wake);
}

/* Check message p (kind, len) is message seq of sender, byte by byte. */
static void check_seq(const void *p, uint32_t kind, size_t len, unsigned sender,
                      uint64_t seq, size_t max)
{
    static unsigned char want[1 << 16];
    uint64_t seed = seed_of(sender, seq), got;
    size_t plen = payload_len(seed, max - sizeof(seq));

    if (p == NULL)
        ck_abort_msg("sender %u seq %llu: no message", sender,
                     (unsigned long long)seq);
    if (((uintptr_t)p & 7) != 0)
        ck_abort_msg("message at %p is not 8-aligned", p);
    if (len != sizeof(seq) + plen)
        ck_abort_msg("sender %u seq %llu: len %zu, want %zu", sender,
                     (unsigned long long)seq, len, sizeof(seq) + plen);
    memcpy(&got, p, sizeof(got));
    if (got != seq || kind != (uint32_t)(sender << 16 | (seq & 0xffff)))
        ck_abort_msg("sender %u: got seq %llu kind %#x, want seq %llu", sender,
                     (unsigned long long)got, kind, (unsigned long long)seq);
    payload_fill(seed, want, plen);
    if (memcmp((const char *)p + sizeof(seq), want, plen) != 0)
        ck_abort_msg("sender %u seq %llu: payload differs", sender,
                     (unsigned long long)seq);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waiting for the other process: spin a little, then let it run. */
static void backoff(unsigned *spins)
{
    if (++*spins >= 64) {
        *spins = 0;
        sched_yield();
    }
}

START_TEST(test_empty)
{
    struct ring *r = ring_new(SMALL);
    uint32_t kind = 1;
    size_t len = 1;

    ck_assert_uint_eq(ring_bytes(SMALL), sizeof(struct ring) + SMALL);
    ck_assert_uint_eq(ring_bytes(SMALL) % RING_LINE, 0);
    ck_assert_uint_eq(offsetof(struct ring, data) % RING_LINE, 0);
    /* Consumer, flag, producer and constants on lines of their own. */
    ck_assert_uint_ne(offsetof(struct ring, head) / RING_LINE,
                      offsetof(struct ring, sleeping) / RING_LINE);
    ck_assert_uint_ne(offsetof(struct ring, sleeping) / RING_LINE,
                      offsetof(struct ring, tail) / RING_LINE);
    ck_assert_uint_ne(offsetof(struct ring, tail) / RING_LINE,
                      offsetof(struct ring, size) / RING_LINE);
    ck_assert_uint_eq(ring_max_message(r), SMALL / 4);
    ck_assert_ptr_null(ring_peek(r, &kind, &len));
    ck_assert_ptr_null(ring_peek(r, &kind, &len));
    ck_assert_uint_eq(ring_used(r), 0);
    ck_assert_uint_eq(atomic_load(&r->puts), 0);
    ck_assert_uint_eq(atomic_load(&r->drops), 0);
    ck_assert(ring_sleep_prepare(r));
    ring_sleep_done(r);
    ring_free(r);
}
END_TEST

START_TEST(test_one)
{
    struct ring *r = ring_new(SMALL);
    uint32_t kind;
    size_t len;
    bool wake = false;
    const char *p;

    ck_assert_int_eq(ring_put(r, 7, "hello", 5, NULL, 0, &wake), 0);
    ck_assert(!wake);
    ck_assert_uint_eq(ring_used(r), 8 + 8);
    ck_assert_uint_eq(atomic_load(&r->puts), 1);
    p = ring_peek(r, &kind, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 8, 0);
    ck_assert_uint_eq(kind, 7);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(p, "hello", 5);
    /* Peeking again, before the pop, gives the same message. */
    ck_assert_ptr_eq(ring_peek(r, &kind, &len), p);
    ring_pop(r);
    ck_assert_ptr_null(ring_peek(r, &kind, &len));
    ck_assert_uint_eq(ring_used(r), 0);

    /* Kinds and lengths, all the way up: 0 and UINT32_MAX - 1. */
    static const uint32_t kinds[] = {0, 1, 0x10000, RING_KIND_PAD - 1};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        static unsigned char buf[SMALL / 4];
        size_t n = i == 3 ? sizeof(buf) : 3 * i + 1;
        memset(buf, (int)i + 'a', n);
        ck_assert_int_eq(ring_put(r, kinds[i], buf, n, NULL, 0, &wake), 0);
        p = ring_peek(r, &kind, &len);
        ck_assert_uint_eq(kind, kinds[i]);
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(p, buf, n);
        ring_pop(r);
    }
    ring_free(r);
}
END_TEST

START_TEST(test_concat)
{
    struct ring *r = ring_new(SMALL);
    uint32_t kind;
    size_t len;
    bool wake = false;
    const char *p;

    ck_assert_int_eq(ring_put(r, 1, "chat/room1 ", 11, "hi all", 6, &wake), 0);
    ck_assert_int_eq(ring_put(r, 2, NULL, 0, "payload", 7, &wake), 0);
    ck_assert_int_eq(ring_put(r, 3, "header", 6, NULL, 0, &wake), 0);
    p = ring_peek(r, &kind, &len);
    ck_assert_uint_eq(kind, 1);
    ck_assert_uint_eq(len, 17);
    ck_assert_mem_eq(p, "chat/room1 hi all", 17);
    ring_pop(r);
    p = ring_peek(r, &kind, &len);
    ck_assert_uint_eq(kind, 2);
    ck_assert_uint_eq(len, 7);
    ck_assert_mem_eq(p, "payload", 7);
    ring_pop(r);
    p = ring_peek(r, &kind, &len);
    ck_assert_uint_eq(kind, 3);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(p, "header", 6);
    ring_pop(r);
    ck_assert_ptr_null(ring_peek(r, &kind, &len));
    ring_free(r);
}
END_TEST

START_TEST(test_zero_length)
{
    struct ring *r = ring_new(SMALL);
    uint32_t kind;
    size_t len = 99;
    bool wake = false;

    ck_assert_int_eq(ring_put(r, 5, NULL, 0, NULL, 0, &wake), 0);
    ck_assert_int_eq(ring_put(r, 6, "", 0, "", 0, &wake), 0);
    ck_assert_uint_eq(ring_used(r), 16); /* headers only */
    ck_assert_ptr_nonnull(ring_peek(r, &kind, &len));
    ck_assert_uint_eq(kind, 5);
    ck_assert_uint_eq(len, 0);
    ring_pop(r);
    ck_assert_ptr_nonnull(ring_peek(r, &kind, &len));
    ck_assert_uint_eq(kind, 6);
    ck_assert_uint_eq(len, 0);
    ring_pop(r);
    ck_assert_ptr_null(ring_peek(r, &kind, &len));
    ring_free(r);
}
END_TEST

/* Put a message of n bytes of c; 0 or -1 as ring_put. */
static int put_n(struct ring *r, uint32_t kind, size_t n, int c)
{
    static unsigned char buf[SMALL];
    bool wake = false;

    memset(buf, c, n);
    return ring_put(r, kind, buf, n, NULL, 0, &wake);
}

/* Pop the next message and check it is n bytes of c. */
static void pop_n(struct ring *r, uint32_t want_kind, size_t n, int c)
{
    uint32_t kind;
    size_t len;
    const unsigned char *p = ring_peek(r, &kind, &len);

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(kind, want_kind);
    ck_assert_uint_eq(len, n);
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)c)
            ck_abort_msg("byte %zu of %zu: %#x, want %#x", i, n, p[i], c);
    ring_pop(r);
}

START_TEST(test_padding_edges)
{
    struct ring *r = ring_new(SMALL);

    /* Fill to 16 bytes before the end: 3 records of 1032, one of 984. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(put_n(r, 1, SMALL / 4, 'a' + i), 0);
    ck_assert_int_eq(put_n(r, 2, 976, 'd'), 0);
    ck_assert_uint_eq(ring_used(r), SMALL - 16);
    for (int i = 0; i < 3; i++)
        pop_n(r, 1, SMALL / 4, 'a' + i);
    pop_n(r, 2, 976, 'd');
    /* A record that fits the end exactly: no padding. */
    ck_assert_int_eq(put_n(r, 3, 8, 'e'), 0);
    ck_assert_uint_eq(ring_used(r), 16);
    ck_assert_uint_eq(atomic_load(&r->tail), SMALL);
    pop_n(r, 3, 8, 'e');

    /* 8 bytes before the end: room for a padding header only. */
    ring_start_at(r, 3 * SMALL - 8);
    ck_assert_int_eq(put_n(r, 4, 9, 'f'), 0); /* record of 24 */
    ck_assert_uint_eq(ring_used(r), 8 + 24);
    pop_n(r, 4, 9, 'f');
    ck_assert_uint_eq(ring_used(r), 0);
    ck_assert_uint_eq(atomic_load(&r->head), 3 * SMALL + 24);

    /* Padding then a record, and the record is at offset 0. */
    ring_start_at(r, SMALL - 40);
    ck_assert_int_eq(put_n(r, 5, 100, 'g'), 0);
    ck_assert_uint_eq(ring_used(r), 40 + 8 + 104);
    uint32_t kind;
    size_t len;
    ck_assert_ptr_eq(ring_peek(r, &kind, &len), r->data + 8);
    /* The padding went back to the producer as soon as it was skipped. */
    ck_assert_uint_eq(ring_used(r), 8 + 104);
    pop_n(r, 5, 100, 'g');

    /* The largest message fits an empty ring at any offset. */
    for (uint64_t pos = 0; pos < 2 * SMALL; pos += 8) {
        ring_start_at(r, pos);
        if (put_n(r, 6, SMALL / 4, 'h') != 0)
            ck_abort_msg("max message refused at position %llu",
                         (unsigned long long)pos);
        pop_n(r, 6, SMALL / 4, 'h');
    }
    ck_assert_uint_eq(atomic_load(&r->drops), 0);
    ring_free(r);
}
END_TEST

/* Where each test_wrap run starts its positions. */
static const uint64_t wrap_starts[] = {
    0,                              /* the start ring_init gives */
    ((uint64_t)1 << 32) - 104,      /* through 2^32, near the data's end */
    ((uint64_t)1 << 32) - 4096 + 8, /* through 2^32, near the start */
    UINT64_MAX - 103,               /* through 2^64: positions wrap to 0 */
};

/*
 * Many messages of varied sizes (up to the max, so padding comes often)
 * through the smallest ring, puts and pops interleaved at random, against
 * a model of the positions; every byte checked.
 */
START_TEST(test_wrap)
{
    enum { MESSAGES = 200000, QCAP = SMALL / 8 };
    struct ring *r = ring_new(SMALL);
    uint64_t start = wrap_starts[_i], mtail = start, mhead = start;
    uint64_t ends[QCAP]; /* the model's head after each queued message */
    uint64_t put = 0, got = 0, pads = 0, exact = 0, fulls = 0, rnd = _i;
    unsigned char buf[SMALL / 4];
    size_t qh = 0, qn = 0;
    bool wake = false;

    ring_start_at(r, start);
    while (got < MESSAGES) {
        rnd = mix(rnd);
        if (put < MESSAGES && (rnd & 3) != 0) {
            /* The model: the record, and padding before it if it must. */
            size_t plen = payload_len(seed_of(0, put), SMALL / 4 - 8);
            uint64_t rec = 8 + ((8 + plen + 7) & ~(uint64_t)7);
            uint64_t to_end = SMALL - (mtail & (SMALL - 1));
            uint64_t need = (to_end < rec ? to_end : 0) + rec;
            bool fits = mtail + need - mhead <= SMALL;
            int rc = put_seq(r, 0, put, buf, SMALL / 4, &wake);

            if (rc != (fits ? 0 : -1) || (rc == -1 && errno != EAGAIN))
                ck_abort_msg("put %llu: %d (errno %d), %llu used, %llu "
                             "needed",
                             (unsigned long long)put, rc, errno,
                             (unsigned long long)(mtail - mhead),
                             (unsigned long long)need);
            if (rc == -1) {
                fulls++;
                continue;
            }
            pads += to_end < rec;
            exact += to_end == rec;
            mtail += need;
            ends[(qh + qn) % QCAP] = mtail;
            qn++;
            put++;
        } else if (qn > 0) {
            uint32_t kind;
            size_t len;
            const void *p = ring_peek(r, &kind, &len);

            check_seq(p, kind, len, 0, got, SMALL / 4);
            ring_pop(r);
            mhead = ends[qh];
            qh = (qh + 1) % QCAP;
            qn--;
            got++;
        } else {
            continue;
        }
        if (atomic_load(&r->tail) != mtail || atomic_load(&r->head) != mhead ||
            ring_used(r) != mtail - mhead)
            ck_abort_msg("head %llu tail %llu, model %llu %llu",
                         (unsigned long long)atomic_load(&r->head),
                         (unsigned long long)atomic_load(&r->tail),
                         (unsigned long long)mhead, (unsigned long long)mtail);
    }
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_uint_eq(ring_used(r), 0);
    ck_assert_uint_eq(atomic_load(&r->puts), MESSAGES);
    ck_assert_uint_eq(atomic_load(&r->drops), fulls);
    /* It went round many times, padded often, fitted the end exactly
     * and found the ring full. */
    ck_assert_uint_gt(mtail - start, 1000 * SMALL);
    ck_assert_uint_gt(pads, 1000);
    ck_assert_uint_gt(exact, 10);
    ck_assert_uint_gt(fulls, 1000);
    if (start > UINT64_MAX / 2)
        ck_assert_uint_lt(atomic_load(&r->tail), start); /* wrapped 2^64 */
    else if (start != 0)
        ck_assert_uint_gt(atomic_load(&r->tail), (uint64_t)1 << 32);
    ring_free(r);
}
END_TEST

START_TEST(test_full)
{
    struct ring *r = ring_new(SMALL);
    int n = 0;

    /* 64-byte messages, records of 72: 56 fit, 64 bytes stay free. */
    while (put_n(r, (uint32_t)n, 64, n) == 0)
        n++;
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(n, SMALL / 72);
    ck_assert_uint_eq(ring_used(r), SMALL - 64);
    ck_assert_uint_eq(atomic_load(&r->drops), 1);
    ck_assert_int_eq(put_n(r, 999, 0, 0), 0); /* a header still fits */
    ck_assert_int_eq(put_n(r, 999, 64, 0), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(put_n(r, 999, 64, 0), -1);
    ck_assert_uint_eq(atomic_load(&r->drops), 3);
    ck_assert_uint_eq(atomic_load(&r->puts), (uint64_t)n + 1);
    ck_assert_uint_eq(ring_used(r), SMALL - 56);

    /* One pop makes room for padding (56 bytes to the end) and one
     * record at the start. */
    pop_n(r, 0, 64, 0);
    ck_assert_int_eq(put_n(r, 1000, 64, 0xaa), 0);
    ck_assert_uint_eq(ring_used(r), SMALL);
    ck_assert_uint_eq(atomic_load(&r->high_water), SMALL);
    ck_assert_int_eq(put_n(r, 1001, 0, 0), -1);
    ck_assert_uint_eq(atomic_load(&r->drops), 4);

    /* Nothing already in the ring was disturbed. */
    for (int i = 1; i < n; i++)
        pop_n(r, (uint32_t)i, 64, i);
    pop_n(r, 999, 0, 0);
    pop_n(r, 1000, 64, 0xaa);
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_uint_eq(ring_used(r), 0);
    /* And all the room is back. */
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(put_n(r, (uint32_t)i, 64, i), 0);
    ck_assert_uint_eq(atomic_load(&r->drops), 4);
    ring_free(r);
}
END_TEST

START_TEST(test_too_long)
{
    struct ring *r = ring_new(SMALL);
    static unsigned char buf[SMALL];
    size_t max = ring_max_message(r);
    bool wake = false;

    errno = 0;
    ck_assert_int_eq(ring_put(r, 1, buf, max + 1, NULL, 0, &wake), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(ring_put(r, 1, buf, max, buf, 1, &wake), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(ring_put(r, 1, buf, 1, buf, max, &wake), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    /* Lengths whose sum wraps size_t. */
    ck_assert_int_eq(ring_put(r, 1, buf, SIZE_MAX, buf, 2, &wake), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_int_eq(ring_put(r, 1, buf, 2, buf, SIZE_MAX, &wake), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    /* The reserved kind. */
    ck_assert_int_eq(ring_put(r, RING_KIND_PAD, buf, 1, NULL, 0, &wake), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* None of it is a drop, nor in the ring. */
    ck_assert_uint_eq(atomic_load(&r->drops), 0);
    ck_assert_uint_eq(atomic_load(&r->puts), 0);
    ck_assert_uint_eq(ring_used(r), 0);
    ck_assert_int_eq(ring_put(r, 1, buf, max - 10, buf, 10, &wake), 0);
    ck_assert_uint_eq(ring_used(r), 8 + max);
    ring_free(r);
}
END_TEST

START_TEST(test_corrupt)
{
    struct ring *r = ring_new(SMALL);
    struct ring_rec h;

    ck_assert_int_eq(put_n(r, 1, 10, 'x'), 0);
    ck_assert_int_eq(put_n(r, 2, 10, 'y'), 0);
    /* A length past what was published. */
    memcpy(&h, r->data, sizeof(h));
    h.len = 1000;
    memcpy(r->data, &h, sizeof(h));
    errno = 0;
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_uint_eq(ring_used(r), 0);
    /* The ring works again. */
    ck_assert_int_eq(put_n(r, 3, 10, 'z'), 0);
    pop_n(r, 3, 10, 'z');
    /* Padding that does not reach the end. */
    ring_start_at(r, SMALL - 64);
    ck_assert_int_eq(put_n(r, 4, 100, 'w'), 0);
    h.len = 8;
    h.kind = RING_KIND_PAD;
    memcpy(r->data + SMALL - 64, &h, sizeof(h));
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_uint_eq(ring_used(r), 0);
    ring_free(r);
}
END_TEST

START_TEST(test_wake_flag)
{
    struct ring *r = ring_new(SMALL);
    bool wake = false;

    /* Awake consumer: no wake. */
    ck_assert_int_eq(put_n(r, 1, 1, 0), 0);
    ck_assert_int_eq(ring_put(r, 1, "x", 1, NULL, 0, &wake), 0);
    ck_assert(!wake);
    /* Messages there: the consumer must not sleep, the flag is clear. */
    ck_assert(!ring_sleep_prepare(r));
    ck_assert_uint_eq(atomic_load(&r->sleeping), 0);
    ck_assert_int_eq(ring_put(r, 1, "x", 1, NULL, 0, &wake), 0);
    ck_assert(!wake);
    /* A held message counts as there. */
    ck_assert_ptr_nonnull(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert(!ring_sleep_prepare(r));
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
        ring_pop(r);
    }
    /* Empty: may sleep; the first put wakes it, the next ones do not. */
    ck_assert(ring_sleep_prepare(r));
    ck_assert_int_eq(ring_put(r, 1, "x", 1, NULL, 0, &wake), 0);
    ck_assert(wake);
    wake = false;
    ck_assert_int_eq(ring_put(r, 1, "x", 1, NULL, 0, &wake), 0);
    ck_assert(!wake);
    ring_sleep_done(r);
    /* A refused put reports no wake: nothing new to read. */
    ck_assert_ptr_nonnull(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ring_pop(r);
    ck_assert_ptr_nonnull(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ring_pop(r);
    ck_assert(ring_sleep_prepare(r));
    ck_assert_int_eq(ring_put(r, 1, NULL, SMALL, NULL, 0, &wake), -1);
    ck_assert(!wake);
    ring_sleep_done(r);
    ck_assert_int_eq(ring_put(r, 1, "x", 1, NULL, 0, &wake), 0);
    ck_assert(!wake);
    ring_free(r);
}
END_TEST

/* What the children of a test report back, in a MAP_SHARED page. */
struct child_report {
    uint64_t eagain; /* puts refused */
    uint64_t wakes;  /* eventfd writes */
    uint64_t sleeps; /* pauses between bursts */
};

static struct child_report *reports_new(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0, 4096);
    return p;
}

/*
 * Fork a child that runs fn(arg) and exits with its status. It dies with
 * the test process, so a failed check never leaves it spinning.
 */
static pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t parent = getpid(), pid = fork();

    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
            _exit(3);
        _exit(fn(arg));
    }
    return pid;
}

static void reap(pid_t pid, const char *who)
{
    int status;

    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        ck_abort_msg("%s: status %#x", who, status);
}

enum { CROSS_DATA = 16384 };

struct producer {
    struct ring *r;
    unsigned sender;
    uint64_t count;
    int efd; /* -1: spin on a full ring, nobody sleeps */
    struct child_report *rep;
};

/* Put count messages, retrying on a full ring. */
static int produce(void *arg)
{
    struct producer *p = arg;
    static unsigned char buf[CROSS_DATA];
    unsigned spins = 0;

    for (uint64_t seq = 0; seq < p->count;) {
        bool wake = false;
        if (put_seq(p->r, p->sender, seq, buf, CROSS_DATA / 4, &wake) == 0) {
            seq++;
            continue;
        }
        if (errno != EAGAIN)
            return 1;
        p->rep->eagain++;
        backoff(&spins);
    }
    return 0;
}

START_TEST(test_cross_process)
{
    enum { MESSAGES = 1000000 };
    struct ring *r = ring_new(CROSS_DATA);
    struct child_report *rep = reports_new();
    struct producer p = {r, 0, MESSAGES, -1, rep};
    double t0 = now_s();
    pid_t pid = spawn(produce, &p);
    unsigned spins = 0;

    for (uint64_t seq = 0; seq < MESSAGES;) {
        uint32_t kind;
        size_t len;
        const void *m = ring_peek(r, &kind, &len);
        if (m == NULL) {
            backoff(&spins);
            continue;
        }
        check_seq(m, kind, len, 0, seq, CROSS_DATA / 4);
        ring_pop(r);
        seq++;
    }
    reap(pid, "producer");
    double dt = now_s() - t0;
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_uint_eq(atomic_load(&r->puts), MESSAGES);
    ck_assert_uint_eq(atomic_load(&r->drops), rep->eagain);
    printf("ring: %d messages between two processes in %.2f s "
           "(%.0f/s), %llu puts refused as full, high water %llu/%u\n",
           MESSAGES, dt, MESSAGES / dt, (unsigned long long)rep->eagain,
           (unsigned long long)atomic_load(&r->high_water), CROSS_DATA);
    munmap(rep, 4096);
    ring_free(r);
}
END_TEST

/* The bus's shape: one consumer polling the rings of two producers. */
START_TEST(test_two_producers)
{
    enum { MESSAGES = 500000 };
    struct ring *r[2] = {ring_new(CROSS_DATA), ring_new(CROSS_DATA)};
    struct child_report *rep = reports_new();
    struct producer p[2] = {{r[0], 1, MESSAGES, -1, &rep[0]},
                            {r[1], 2, MESSAGES, -1, &rep[1]}};
    uint64_t next[2] = {0, 0};
    double t0 = now_s();
    pid_t pid[2] = {spawn(produce, &p[0]), spawn(produce, &p[1])};
    unsigned spins = 0;

    while (next[0] < MESSAGES || next[1] < MESSAGES) {
        bool any = false;
        for (int i = 0; i < 2; i++) {
            uint32_t kind;
            size_t len;
            const void *m;
            /* A batch from each in turn, as an event loop would. */
            for (int k = 0; k < 64; k++) {
                if ((m = ring_peek(r[i], &kind, &len)) == NULL)
                    break;
                check_seq(m, kind, len, p[i].sender, next[i], CROSS_DATA / 4);
                ring_pop(r[i]);
                next[i]++;
                any = true;
            }
        }
        if (!any)
            backoff(&spins);
    }
    reap(pid[0], "producer 1");
    reap(pid[1], "producer 2");
    double dt = now_s() - t0;
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_null(ring_peek(r[i], &(uint32_t){0}, &(size_t){0}));
        ck_assert_uint_eq(atomic_load(&r[i]->puts), MESSAGES);
        ck_assert_uint_eq(atomic_load(&r[i]->drops), rep[i].eagain);
        ring_free(r[i]);
    }
    printf("ring: 2 x %d messages from two processes to one in %.2f s, "
           "%llu + %llu puts refused as full\n",
           MESSAGES, dt, (unsigned long long)rep[0].eagain,
           (unsigned long long)rep[1].eagain);
    munmap(rep, 4096);
}
END_TEST

enum { WAKE_MESSAGES = 100000, WAKE_TIMEOUT_MS = 2000 };

/*
 * Put the messages in bursts with pauses between them, and write the
 * eventfd only when ring_put says so. Bursts of 1 to 512 messages; the
 * pauses from none to 2 ms, so the consumer sometimes drains the ring and
 * sleeps, and sometimes does not.
 */
static int produce_bursts(void *arg)
{
    struct producer *p = arg;
    static unsigned char buf[CROSS_DATA];
    uint64_t seq = 0, rnd = 42;
    unsigned spins = 0;
    double deadline = now_s() + 20;

    while (seq < p->count) {
        rnd = mix(rnd);
        uint64_t burst = 1 + (rnd & 511);
        for (uint64_t n = 0; n < burst && seq < p->count;) {
            bool wake = false;
            if (put_seq(p->r, 0, seq, buf, CROSS_DATA / 4, &wake) == -1) {
                if (errno != EAGAIN || now_s() > deadline)
                    return 1;
                p->rep->eagain++;
                backoff(&spins);
                continue;
            }
            if (wake) {
                uint64_t one = 1;
                if (write(p->efd, &one, sizeof(one)) != sizeof(one))
                    return 2;
                p->rep->wakes++;
            }
            seq++;
            n++;
        }
        unsigned pause = (unsigned)(rnd >> 20) % 4;
        if (pause != 0) {
            /* 0, ~25 us, ~250 us or ~2 ms */
            usleep(pause == 1 ? 25 : pause == 2 ? 250 : 2000);
            p->rep->sleeps++;
        }
    }
    return 0;
}

START_TEST(test_sleep_wake)
{
    struct ring *r = ring_new(CROSS_DATA);
    struct child_report *rep = reports_new();
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct producer p = {r, 0, WAKE_MESSAGES, efd, rep};
    uint64_t seq = 0, prepared = 0, blocked = 0, spurious = 0;
    double t0 = now_s();

    ck_assert_int_ne(efd, -1);
    pid_t pid = spawn(produce_bursts, &p);
    while (seq < WAKE_MESSAGES) {
        uint32_t kind;
        size_t len;
        const void *m;
        while ((m = ring_peek(r, &kind, &len)) != NULL) {
            check_seq(m, kind, len, 0, seq, CROSS_DATA / 4);
            ring_pop(r);
            seq++;
        }
        if (seq == WAKE_MESSAGES)
            break;
        prepared++;
        if (!ring_sleep_prepare(r))
            continue;
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        int n = poll(&pfd, 1, WAKE_TIMEOUT_MS);
        if (n == 0)
            ck_abort_msg("lost wakeup: no event in %d ms with %llu of %d "
                         "messages received",
                         WAKE_TIMEOUT_MS, (unsigned long long)seq,
                         WAKE_MESSAGES);
        ck_assert_int_eq(n, 1);
        uint64_t v;
        ck_assert_int_eq(read(efd, &v, sizeof(v)), sizeof(v));
        ring_sleep_done(r);
        blocked++;
        if (ring_used(r) == 0)
            spurious++;
    }
    reap(pid, "producer");
    double dt = now_s() - t0;
    ck_assert_ptr_null(ring_peek(r, &(uint32_t){0}, &(size_t){0}));
    ck_assert_uint_eq(atomic_load(&r->puts), WAKE_MESSAGES);
    /* At most one wake per time the consumer raised the flag (a producer
     * can see it raised just before the consumer, having found a message,
     * lowers it again: that wake finds the consumer awake). */
    ck_assert_uint_ge(rep->wakes, 1);
    ck_assert_uint_le(rep->wakes, prepared);
    printf("ring: %d messages in bursts with %llu pauses, %.2f s: %llu "
           "eventfd writes (%.4f per message), consumer blocked %llu times "
           "(%llu woken with nothing new), %llu puts refused as full\n",
           WAKE_MESSAGES, (unsigned long long)rep->sleeps, dt,
           (unsigned long long)rep->wakes, (double)rep->wakes / WAKE_MESSAGES,
           (unsigned long long)blocked, (unsigned long long)spurious,
           (unsigned long long)rep->eagain);
    close(efd);
    munmap(rep, 4096);
    ring_free(r);
}
END_TEST

/* Spins of up to ~0.3 us, on both sides: found by trying, the delays
 * that make a missing fence (either one) show within a few thousand
 * messages on x86. */
enum { RACE_MESSAGES = 50000, RACE_DELAY = 127 };

/*
 * One message at a time: wait until the consumer has taken the last one,
 * then, after a short random delay, put the next. The consumer, after a
 * random delay of its own, goes to sleep right after each message, so
 * every put races with a ring_sleep_prepare, at varied offsets: without
 * both fences, the store buffer lets each side miss the other's store,
 * and the consumer sleeps on a message.
 */
static int produce_pingpong(void *arg)
{
    struct producer *p = arg;
    unsigned char buf[64];
    uint64_t rnd = 7;
    double deadline = now_s() + 20;

    for (uint64_t seq = 0; seq < p->count; seq++) {
        bool wake = false;
        unsigned spins = 0;
        while (ring_used(p->r) != 0) {
            if (now_s() > deadline)
                return 1;
            backoff(&spins);
        }
        rnd = mix(rnd);
        for (volatile unsigned d = 0; d < (rnd & RACE_DELAY); d++)
            ;
        if (put_seq(p->r, 0, seq, buf, 64, &wake) == -1)
            return 2;
        if (wake) {
            uint64_t one = 1;
            if (write(p->efd, &one, sizeof(one)) != sizeof(one))
                return 3;
            p->rep->wakes++;
        }
    }
    return 0;
}

START_TEST(test_wake_race)
{
    struct ring *r = ring_new(SMALL);
    struct child_report *rep = reports_new();
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct producer p = {r, 0, RACE_MESSAGES, efd, rep};
    uint64_t seq = 0, blocked = 0, rnd = 99;
    double t0 = now_s();

    ck_assert_int_ne(efd, -1);
    pid_t pid = spawn(produce_pingpong, &p);
    while (seq < RACE_MESSAGES) {
        uint32_t kind;
        size_t len;
        const void *m = ring_peek(r, &kind, &len);
        if (m != NULL) {
            check_seq(m, kind, len, 0, seq, 64);
            ring_pop(r);
            seq++;
            continue;
        }
        rnd = mix(rnd);
        for (volatile unsigned d = 0; d < (rnd & RACE_DELAY); d++)
            ;
        if (!ring_sleep_prepare(r))
            continue;
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        if (poll(&pfd, 1, WAKE_TIMEOUT_MS) == 0)
            ck_abort_msg("lost wakeup: no event in %d ms with message %llu "
                         "outstanding (%zu bytes in the ring)",
                         WAKE_TIMEOUT_MS, (unsigned long long)seq,
                         ring_used(r));
        uint64_t v;
        ck_assert_int_eq(read(efd, &v, sizeof(v)), sizeof(v));
        ring_sleep_done(r);
        blocked++;
    }
    reap(pid, "producer");
    printf("ring: %d messages one at a time in %.2f s: %llu eventfd "
           "writes, consumer blocked %llu times\n",
           RACE_MESSAGES, now_s() - t0, (unsigned long long)rep->wakes,
           (unsigned long long)blocked);
    close(efd);
    munmap(rep, 4096);
    ring_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("records");
    TCase *pr = tcase_create("processes");

    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_one);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_zero_length);
    tcase_add_test(tc, test_padding_edges);
    tcase_add_loop_test(tc, test_wrap, 0,
                        (int)(sizeof(wrap_starts) / sizeof(wrap_starts[0])));
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_wake_flag);
    suite_add_tcase(s, tc);
    tcase_add_test(pr, test_cross_process);
    tcase_add_test(pr, test_two_producers);
    tcase_add_test(pr, test_sleep_wake);
    tcase_add_test(pr, test_wake_race);
    suite_add_tcase(s, pr);
    return check_run(s);
}
