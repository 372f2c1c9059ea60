#include "shared/stats.h"

#include "shared/log.h"
#include "shared/util.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const struct stats_field_info stats_fields[STATS_NFIELDS] = {
#define STATS_INFO(name, kind, help) {#name, STATS_##kind, help},
    STATS_FIELDS(STATS_INFO)
#undef STATS_INFO
};

int64_t stats_now_ms(bool monotonic)
{
    struct timespec ts;

    clock_gettime(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct stats_shm *stats_shm_create(int *fdp)
{
    int fd = memfd_create("weft-stats", MFD_CLOEXEC);
    struct stats_shm *s;

    if (fd == -1)
        return NULL;
    if (ftruncate(fd, sizeof(*s)) == -1) {
        close_keep_errno(fd);
        return NULL;
    }
    s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        close_keep_errno(fd);
        return NULL;
    }
    /* Kept open so that an upgraded binary can map the same region. */
    if (fdp != NULL)
        *fdp = fd;
    else
        close(fd);
    s->h.magic = STATS_MAGIC;
    s->h.layout_version = STATS_LAYOUT_VERSION;
    s->h.supervisor_pid = (int32_t)getpid();
    s->h.started_ms = stats_now_ms(false);
    return s;
}

/*
 * The header is read on its own first: a region of another layout may
 * have another size, and the operator needs to hear which layout it is.
 */
struct stats_shm *stats_shm_adopt(int fd)
{
    struct stats_shm *s;
    struct stats_header h;
    struct stat st;

    if (fstat(fd, &st) == -1)
        return NULL;
    if (st.st_size < (off_t)sizeof(h) ||
        pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        h.magic != STATS_MAGIC) {
        log_error("%s: the inherited descriptor is not a weft stats region "
                  "(%lld bytes)", __func__, (long long)st.st_size);
        errno = EPROTO;
        return NULL;
    }
    if (h.layout_version != STATS_LAYOUT_VERSION ||
        (size_t)st.st_size != sizeof(*s)) {
        log_error("%s: the old weftd's stats region has layout %" PRIu32
                  " (%lld bytes), this weftd layout %d (%zu bytes): an "
                  "upgrade cannot carry the counts across layouts; stop and "
                  "start weftd instead",
                  __func__, h.layout_version, (long long)st.st_size,
                  STATS_LAYOUT_VERSION, sizeof(*s));
        errno = EPROTO;
        return NULL;
    }
    s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED)
        return NULL;
    s->h.supervisor_pid = (int32_t)getpid();
    return s;
}

int stats_block_claim(struct stats_shm *s, int slot, pid_t pid,
                      uint32_t generation)
{
    for (int b = 0; b < STATS_BLOCKS; b++) {
        struct stats_block *blk = &s->block[b];
        if (atomic_load(&blk->state) != WORKER_FREE)
            continue;
        memset(blk->row, 0, sizeof(blk->row));
        blk->slot = slot;
        blk->generation = generation;
        blk->started_ms = stats_now_ms(false);
        atomic_store(&blk->pid, (int32_t)pid);
        atomic_store(&blk->heartbeat_ms, 0);
        atomic_store(&blk->state, WORKER_STARTING);
        return b;
    }
    return -1;
}

void stats_row_read(const struct stats_row *r, struct stats_counts *out)
{
    for (int f = 0; f < STATS_NFIELDS; f++)
        out->v[f] = atomic_load_explicit(&r->v[f], memory_order_relaxed);
    out->lat_sum_us =
        atomic_load_explicit(&r->lat_sum_us, memory_order_relaxed);
    for (int i = 0; i < STATS_LAT_BUCKETS; i++)
        out->lat[i] = atomic_load_explicit(&r->lat[i], memory_order_relaxed);
}

void stats_counts_add(struct stats_counts *a, const struct stats_counts *b,
                      bool with_gauges)
{
    for (int f = 0; f < STATS_NFIELDS; f++)
        if (with_gauges || stats_fields[f].kind == STATS_COUNTER)
            a->v[f] += b->v[f];
    /* The histogram only grows: it is folded like a counter. */
    a->lat_sum_us += b->lat_sum_us;
    for (int i = 0; i < STATS_LAT_BUCKETS; i++)
        a->lat[i] += b->lat[i];
}

uint64_t stats_lat_bound(unsigned i)
{
    if (i >= STATS_LAT_OVER)
        return UINT64_MAX;
    if (i < 2 * STATS_LAT_SUB)
        return i + 1; /* one microsecond wide */
    /* Bucket i covers [m << shift, (m + 1) << shift) of us - 1, with m in
     * [SUB, 2 * SUB): see stats_lat_index. */
    unsigned shift = (i >> STATS_LAT_SUB_BITS) - 1;
    uint64_t m = i - (shift << STATS_LAT_SUB_BITS);
    return (m + 1) << shift;
}

uint64_t stats_lat_count(const struct stats_counts *c)
{
    uint64_t n = 0;

    for (int i = 0; i < STATS_LAT_BUCKETS; i++)
        n += c->lat[i];
    return n;
}

int stats_lat_quantile(const struct stats_counts *c, unsigned permille)
{
    uint64_t n = stats_lat_count(c), rank, seen = 0;

    if (n == 0)
        return -1;
    if (permille > 1000)
        permille = 1000;
    /* ceil(n * permille / 1000), without overflowing n * permille. */
    rank = n / 1000 * permille + (n % 1000 * permille + 999) / 1000;
    if (rank == 0)
        rank = 1;
    for (int i = 0; i < STATS_LAT_BUCKETS; i++) {
        seen += c->lat[i];
        if (seen >= rank)
            return i;
    }
    return STATS_LAT_OVER; /* not reached: seen ends at n */
}

void stats_block_retire(struct stats_shm *s, int b)
{
    struct stats_block *blk = &s->block[b];
    struct stats_counts c;

    for (int r = 0; r < STATS_ROWS; r++) {
        stats_row_read(&blk->row[r], &c);
        /* Connections still open died with their worker: closed now, so
         * accepted - closed stays the number open. */
        c.v[STAT_connections_closed] += c.v[STAT_connections_active];
        stats_counts_add(&s->retired[blk->slot][r], &c, false);
    }
    memset(blk->row, 0, sizeof(blk->row));
    atomic_store(&blk->pid, 0);
    atomic_store(&blk->state, WORKER_FREE);
}
