/*
 * Taking a snapshot of the stats: the supervisor reads every live block
 * and the retired counts of the shared region, in its own loop, so the
 * picture is consistent with what it folds on worker exits.
 */
#include <stdlib.h>
#include <string.h>

#include "supervisor/stats_read.h"

#include "shared/util.h"

static const char *const state_names[] = {
    [WORKER_FREE] = "free",
    [WORKER_STARTING] = "starting",
    [WORKER_RUNNING] = "running",
    [WORKER_DRAINING] = "draining",
};

/* The name of stats row r. */
static const char *row_name(const struct stats_shm *shm, int r)
{
    return r == STATS_ROW_OUTGOING ? "outgoing" : shm->h.listener[r];
}

/* Fill one worker entry from block b (its own counts, all rows). */
static void take_worker(const struct supervisor *sup, int b,
                        struct snap_worker *w, int64_t now_real,
                        int64_t now_mono)
{
    const struct stats_block *blk = &sup->stats->block[b];
    int state = atomic_load(&blk->state);
    int64_t hb = atomic_load(&blk->heartbeat_ms);
    struct stats_counts c;

    w->slot = blk->slot;
    w->pid = atomic_load(&blk->pid);
    w->generation = blk->generation;
    w->state = state >= 0 && state <= WORKER_DRAINING ? state_names[state]
                                                       : "unknown";
    w->uptime_s = (double)(now_real - blk->started_ms) / 1000.0;
    w->heartbeat_age_ms = hb > 0 ? now_mono - hb : -1;
    w->stalled = hb > 0 && now_mono - hb > HEARTBEAT_STALL_MS;
    memset(&w->c, 0, sizeof(w->c));
    for (int r = 0; r < STATS_ROWS; r++) {
        stats_row_read(&blk->row[r], &c);
        stats_counts_add(&w->c, &c, true);
    }
}

/* Rows shown: the listeners of the header, then "outgoing". */
static int row_of(const struct stats_shm *shm, size_t i)
{
    return i < shm->h.nlisteners ? (int)i : STATS_ROW_OUTGOING;
}

int snapshot_take(const struct supervisor *sup, struct stats_snapshot *s)
{
    const struct stats_shm *shm = sup->stats;
    size_t nrows = shm->h.nlisteners + 1;
    /* Series cover every slot ever used: a slot a reload took away keeps
     * its counts, so no total goes backwards. */
    int nslots = WEFT_MAX(sup->nslots, sup->slots_seen);
    int64_t now_real = stats_now_ms(false), now_mono = stats_now_ms(true);

    memset(s, 0, sizeof(*s));
    s->version = PACKAGE_VERSION;
    s->pid = shm->h.supervisor_pid;
    s->uptime_s = (double)(now_real - shm->h.started_ms) / 1000.0;
    s->time_ms = now_real;
    s->generation = shm->h.generation;
    s->generations_forced = shm->h.generations_forced;
    s->nslots = sup->nslots;
    s->listeners = calloc(nrows, sizeof(*s->listeners));
    s->series = calloc(nrows * (size_t)nslots, sizeof(*s->series));
    s->workers = calloc(STATS_BLOCKS, sizeof(*s->workers));
    s->events = calloc(EVENTS_MAX, sizeof(*s->events));
    if (s->listeners == NULL || s->series == NULL || s->workers == NULL ||
        s->events == NULL) {
        snapshot_free(s);
        return -1;
    }
    s->nlisteners = nrows;
    s->nseries = nrows * (size_t)nslots;
    for (size_t i = 0; i < nrows; i++) {
        s->listeners[i].name = row_name(shm, row_of(shm, i));
        for (int slot = 0; slot < nslots; slot++) {
            struct snap_series *se = &s->series[i * (size_t)nslots + slot];
            se->listener = s->listeners[i].name;
            se->slot = slot;
            se->c = shm->retired[slot][row_of(shm, i)];
        }
    }
    for (int b = 0; b < STATS_BLOCKS; b++) {
        const struct stats_block *blk = &shm->block[b];
        if (atomic_load(&blk->state) == WORKER_FREE)
            continue;
        take_worker(sup, b, &s->workers[s->nworkers++], now_real, now_mono);
        for (size_t i = 0; i < nrows && blk->slot < nslots; i++) {
            struct stats_counts c;
            stats_row_read(&blk->row[row_of(shm, i)], &c);
            stats_counts_add(&s->series[i * (size_t)nslots + blk->slot].c,
                             &c, true);
        }
    }
    for (size_t i = 0; i < s->nseries; i++) {
        stats_counts_add(&s->listeners[i / (size_t)nslots].c,
                         &s->series[i].c, true);
        stats_counts_add(&s->totals, &s->series[i].c, true);
    }
    for (size_t i = 0; i < sup->events.count; i++) {
        const struct event *e = events_get(&sup->events, i);
        s->events[i] = (struct snap_event){e->time_ms, e->kind, e->text};
    }
    s->nevents = sup->events.count;
    return 0;
}

void snapshot_free(struct stats_snapshot *s)
{
    free(s->listeners);
    free(s->series);
    free(s->workers);
    free(s->events);
    memset(s, 0, sizeof(*s));
}
