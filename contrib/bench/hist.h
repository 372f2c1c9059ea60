/*
 * hist.h - the latency histogram and clock of the bench load generators
 * (weft-load.c, chat-load.c).
 *
 * Log-linear histogram of nanoseconds: values below 2^(SUB_BITS+1) have a
 * bucket each, then every power of two is cut in 2^SUB_BITS equal buckets,
 * so the relative error stays below 1/32 (about 3 %).  Fixed size, so
 * recording never allocates.
 */
#ifndef WEFT_BENCH_HIST_H
#define WEFT_BENCH_HIST_H

#include <math.h>
#include <stdint.h>
#include <time.h>

#define HIST_SUB_BITS   5
#define HIST_SUB        (1u << HIST_SUB_BITS)
#define HIST_BUCKETS    ((64 - HIST_SUB_BITS) * HIST_SUB + 2 * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t b[HIST_BUCKETS];
};

/* Monotonic clock in nanoseconds. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Index of the bucket that holds v (see HIST_SUB_BITS). */
static inline unsigned hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    msb = 63 - (unsigned)__builtin_clzll(v);
    shift = msb - HIST_SUB_BITS;
    return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* Middle of the range of values that bucket i holds. */
static inline double hist_value(unsigned i)
{
    unsigned shift;
    uint64_t low;

    if (i < 2 * HIST_SUB)
        return i;
    shift = i / HIST_SUB - 1;
    low = (uint64_t)(i - shift * HIST_SUB) << shift;
    return (double)low + (double)((uint64_t)1 << shift) / 2.0;
}

static inline void hist_record(struct hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->count++;
}

/* Value at quantile q (0..1) in microseconds, 0 when nothing was recorded. */
static inline double hist_quantile_us(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;
    unsigned i;

    if (h->count == 0)
        return 0.0;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank)
            return hist_value(i) / 1000.0;
    }
    return hist_value(HIST_BUCKETS - 1) / 1000.0;
}

#endif
