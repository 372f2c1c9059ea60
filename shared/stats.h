/*
 * Runtime statistics in shared memory.
 *
 * One region, created by the supervisor before it forks (a memfd, so an
 * upgraded binary can map it again), holds a header, the retired totals
 * and a pool of blocks. Each live worker process owns one block and is its
 * only writer: single-writer counters, updated with a relaxed load and
 * store (no lock prefix, no lock). The supervisor is the only reader of
 * live blocks and the only writer of everything else.
 *
 * Counters are kept per (block, listener). When a worker exits, the
 * supervisor folds its block into the retired counts of its slot before
 * the block is reused, so no total ever goes backwards. Gauges (open
 * connections) are per process and go with it.
 *
 * Every field is declared once, in STATS_FIELDS, and expanded for the
 * struct, the sums, JSON and Prometheus. Beside the fields, each row has
 * a histogram of request latencies, folded and summed like a counter.
 */
#ifndef WEFT_SHARED_STATS_H
#define WEFT_SHARED_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * X(name, kind, help): kind is COUNTER (monotonic, "_total" in
 * Prometheus) or GAUGE (a level, dropped with its process).
 */
#define STATS_FIELDS(X)                                                      \
    X(connections_accepted, COUNTER, "Connections accepted")                 \
    X(connections_closed, COUNTER, "Connections closed, for any reason")    \
    X(connections_aborted, COUNTER,                                          \
      "Connections aborted by a limit (output queue, unparsed input)")       \
    X(connections_timed_out, COUNTER, "Connections closed by idle timeout") \
    X(connections_forced, COUNTER,                                           \
      "Connections closed when shutdown_timeout ended a drain")              \
    X(connections_active, GAUGE, "Connections open now")                     \
    X(accept_paused, COUNTER,                                                \
      "Times a listener stopped accepting at max_connections")              \
    X(bytes_in, COUNTER, "Bytes received on connections")                    \
    X(bytes_out, COUNTER, "Bytes sent on connections")                       \
    X(datagrams_in, COUNTER, "Datagrams received")                           \
    X(datagrams_out, COUNTER, "Datagrams sent")                              \
    X(requests, COUNTER, "Requests or messages handled by protocols")        \
    X(responses_1xx, COUNTER, "Requests answered with a 1xx status")         \
    X(responses_2xx, COUNTER, "Requests answered with a 2xx status")         \
    X(responses_3xx, COUNTER, "Requests answered with a 3xx status")         \
    X(responses_4xx, COUNTER, "Requests answered with a 4xx status")         \
    X(responses_5xx, COUNTER, "Requests answered with a 5xx status")         \
    X(protocol_errors, COUNTER, "Protocol errors")                           \
    X(connect_failures, COUNTER, "Outgoing connection attempts that failed") \
    X(tls_handshakes, COUNTER, "TLS handshakes completed")                  \
    X(tls_resumed, COUNTER, "TLS handshakes that resumed a session")         \
    X(tls_handshake_errors, COUNTER,                                         \
      "TLS handshakes that failed (other than the kinds below)")             \
    X(tls_version_errors, COUNTER,                                           \
      "TLS handshakes refused for the protocol version")                     \
    X(tls_unknown_ca, COUNTER,                                               \
      "TLS handshakes that failed on a certificate the peer rejected")       \
    X(tls_handshake_timeouts, COUNTER,                                       \
      "TLS handshakes that did not end within handshake_timeout")            \
    X(tls_ktls, COUNTER,                                                     \
      "TLS connections whose sending the kernel encrypts (kTLS, sendfile)")  \
    X(messages_skipped, COUNTER,                                             \
      "Messages a subscriber that fell behind missed (told by a gap notice)") \
    X(bus_published, COUNTER,                                                \
      "Messages published or sent on the message bus")                       \
    X(bus_delivered, COUNTER, "Bus messages taken from the worker's rings")  \
    X(bus_dropped, COUNTER,                                                  \
      "Bus messages refused because a receiver's ring was full")             \
    X(bus_ring_high_water, GAUGE,                                            \
      "Most bytes seen waiting in one of the worker's bus rings")

enum stats_field {
#define STATS_ENUM(name, kind, help) STAT_##name,
    STATS_FIELDS(STATS_ENUM)
#undef STATS_ENUM
        STATS_NFIELDS
};

/* weft_count_response finds a status class's field by offset. */
_Static_assert(STAT_responses_5xx - STAT_responses_1xx == 4,
               "responses_1xx..5xx must follow each other");

enum stats_kind { STATS_COUNTER, STATS_GAUGE };

/* Name, kind and help of each field, in enum order. */
struct stats_field_info {
    const char *name;
    enum stats_kind kind;
    const char *help;
};
extern const struct stats_field_info stats_fields[STATS_NFIELDS];

/* Listeners counted per block; one more row for outgoing connections. */
#define STATS_MAX_LISTENERS 64
#define STATS_ROW_OUTGOING STATS_MAX_LISTENERS
#define STATS_ROWS (STATS_MAX_LISTENERS + 1)
/* Blocks: two per slot, for a slot's old and new worker during a reload. */
#define STATS_MAX_SLOTS 256
#define STATS_BLOCKS (2 * STATS_MAX_SLOTS)

#define STATS_MAGIC 0x54464557u /* "WEFT" */
/* 2: responses_1xx..5xx and the latency histogram in each row.
 * 3: messages_skipped, the bus_* and tls_* fields.
 * 4: accept_paused. */
#define STATS_LAYOUT_VERSION 4

/*
 * Request latency: a log-linear histogram of whole microseconds, as
 * HdrHistogram keeps them with two significant bits. Bucket i counts
 * the values v with stats_lat_bound(i - 1) < v <= stats_lat_bound(i):
 * one bucket per microsecond up to 8 us (0 and 1 share the first), then
 * every power of two split in STATS_LAT_SUB equal parts, so a bound is
 * never more than 25% above the values it counts. Bounds: 1, 2, .., 8,
 * 10, 12, 14, 16, 20, .., 2^STATS_LAT_LOG2_MAX us (67 s); the last
 * bucket, STATS_LAT_OVER, counts everything above, with no bound.
 */
#define STATS_LAT_SUB_BITS 2
#define STATS_LAT_SUB (1 << STATS_LAT_SUB_BITS)
#define STATS_LAT_LOG2_MAX 26
#define STATS_LAT_OVER \
    (STATS_LAT_SUB * (STATS_LAT_LOG2_MAX - STATS_LAT_SUB_BITS + 1))
#define STATS_LAT_BUCKETS (STATS_LAT_OVER + 1)
#define STATS_LAT_MAX_US ((uint64_t)1 << STATS_LAT_LOG2_MAX)

/*
 * One row of counters, written by one process: the fields, then the
 * latency histogram (sum of the values, and one count per bucket).
 */
struct stats_row {
    _Atomic uint64_t v[STATS_NFIELDS];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat[STATS_LAT_BUCKETS];
};

/* Plain counts, for sums and rendering; the histogram is a counter. */
struct stats_counts {
    uint64_t v[STATS_NFIELDS];
    uint64_t lat_sum_us;
    uint64_t lat[STATS_LAT_BUCKETS];
};

enum worker_state {
    WORKER_FREE = 0, /* block unused */
    WORKER_STARTING,
    WORKER_RUNNING,
    WORKER_DRAINING
};

/* One worker process's block; cache-line aligned, single writer. */
struct stats_block {
    _Atomic int32_t state; /* enum worker_state */
    int32_t slot;
    _Atomic int32_t pid;
    uint32_t generation;
    int64_t started_ms;            /* CLOCK_REALTIME ms, by the supervisor */
    _Atomic int64_t heartbeat_ms;  /* CLOCK_MONOTONIC ms, by the worker */
    struct stats_row row[STATS_ROWS];
} __attribute__((aligned(64)));

struct stats_header {
    uint32_t magic;
    uint32_t layout_version;
    int32_t supervisor_pid;
    uint32_t generation;
    int64_t started_ms; /* CLOCK_REALTIME ms */
    uint32_t workers;   /* slots in use */
    uint32_t slots_seen; /* the most slots ever in use */
    uint64_t generations_forced;
    uint32_t nlisteners;
    char listener[STATS_MAX_LISTENERS][64]; /* names, by row */
} __attribute__((aligned(64)));

/* The whole region. Untouched pages of the pools cost no memory. */
struct stats_shm {
    struct stats_header h;
    struct stats_counts retired[STATS_MAX_SLOTS][STATS_ROWS];
    struct stats_block block[STATS_BLOCKS];
};

/* Add n to field f of row r: the block's own process only. */
static inline void stats_add(struct stats_row *r, enum stats_field f,
                             uint64_t n)
{
    uint64_t v = atomic_load_explicit(&r->v[f], memory_order_relaxed);
    atomic_store_explicit(&r->v[f], v + n, memory_order_relaxed);
}

static inline void stats_sub(struct stats_row *r, enum stats_field f,
                             uint64_t n)
{
    uint64_t v = atomic_load_explicit(&r->v[f], memory_order_relaxed);
    atomic_store_explicit(&r->v[f], v - n, memory_order_relaxed);
}

/*
 * The latency bucket of us microseconds. Bucketing us - 1 on the plain
 * log-linear scale makes every bound inclusive (2^k lands in the bucket
 * bounded by 2^k). No branch: x | STATS_LAT_SUB keeps the shift at 0 for
 * small values (and the argument of clzll non-zero), and the clamp to
 * the overflow bucket compiles to a conditional move.
 */
static inline unsigned stats_lat_index(uint64_t us)
{
    uint64_t x = us - (us != 0);
    unsigned shift = (unsigned)(63 - STATS_LAT_SUB_BITS) -
                     (unsigned)__builtin_clzll(x | STATS_LAT_SUB);
    uint64_t i = ((uint64_t)shift << STATS_LAT_SUB_BITS) + (x >> shift);

    return i < STATS_LAT_OVER ? (unsigned)i : STATS_LAT_OVER;
}

/* Record one request of us microseconds: the row's own process only. */
static inline void stats_lat_add(struct stats_row *r, uint64_t us)
{
    _Atomic uint64_t *b = &r->lat[stats_lat_index(us)];

    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(
        &r->lat_sum_us,
        atomic_load_explicit(&r->lat_sum_us, memory_order_relaxed) + us,
        memory_order_relaxed);
}

/* The inclusive upper bound of bucket i in microseconds; UINT64_MAX for
 * the overflow bucket (and anything past it). */
uint64_t stats_lat_bound(unsigned i);

/* Requests in the histogram of c: the sum of its buckets. */
uint64_t stats_lat_count(const struct stats_counts *c);

/*
 * The bucket holding quantile permille/1000 of c, by nearest rank (the
 * smallest bucket whose cumulative count reaches ceil(count * q)): its
 * bound is a value at least that share of requests did not exceed.
 * -1 when c has no request.
 */
int stats_lat_quantile(const struct stats_counts *c, unsigned permille);

/* Milliseconds of CLOCK_REALTIME or CLOCK_MONOTONIC. */
int64_t stats_now_ms(bool monotonic);

/*
 * Create and map the region (a memfd, whose descriptor goes to *fd when
 * fd is not NULL); NULL with errno on failure.
 */
struct stats_shm *stats_shm_create(int *fd);

/*
 * Map the region of the weftd this one upgrades, from its descriptor.
 * NULL with errno (EPROTO: another layout, whose version is logged) on
 * failure.
 */
struct stats_shm *stats_shm_adopt(int fd);

/* A free block, marked starting for slot; -1 when none is free. */
int stats_block_claim(struct stats_shm *s, int slot, pid_t pid,
                      uint32_t generation);

/*
 * The worker in block b has exited: fold its counters into the retired
 * counts of its slot (gauges are dropped; connections it still had open
 * count as closed) and free the block.
 */
void stats_block_retire(struct stats_shm *s, int b);

/* Read row r of block b into out (counters and gauges). */
void stats_row_read(const struct stats_row *r, struct stats_counts *out);

/* a += b, field by field; gauges too when with_gauges. */
void stats_counts_add(struct stats_counts *a, const struct stats_counts *b,
                      bool with_gauges);

#endif
