#include "shared/stats.h"

#include "shared/util.h"

#include <errno.h>
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

struct stats_shm *stats_shm_adopt(int fd)
{
    struct stats_shm *s;
    struct stat st;

    if (fstat(fd, &st) == -1)
        return NULL;
    if ((size_t)st.st_size != sizeof(*s)) {
        errno = EPROTO;
        return NULL;
    }
    s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED)
        return NULL;
    if (s->h.magic != STATS_MAGIC ||
        s->h.layout_version != STATS_LAYOUT_VERSION) {
        munmap(s, sizeof(*s));
        errno = EPROTO;
        return NULL;
    }
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
}

void stats_counts_add(struct stats_counts *a, const struct stats_counts *b,
                      bool with_gauges)
{
    for (int f = 0; f < STATS_NFIELDS; f++)
        if (with_gauges || stats_fields[f].kind == STATS_COUNTER)
            a->v[f] += b->v[f];
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
