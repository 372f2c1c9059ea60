/*
 * A consistent picture of the stats, taken by the supervisor from the
 * shared region (supervisor/stats_read.c) and rendered as JSON or as
 * Prometheus text (supervisor/render.c). Plain data: the renderers are
 * pure functions of it.
 */
#ifndef WEFT_SUPERVISOR_SNAPSHOT_H
#define WEFT_SUPERVISOR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/stats.h"

/* One live worker process: its own counts since it started. */
struct snap_worker {
    int slot;
    pid_t pid;
    uint32_t generation;
    const char *state;        /* "starting", "running", "draining" */
    double uptime_s;
    int64_t heartbeat_age_ms; /* -1: no heartbeat yet */
    bool stalled;             /* heartbeat older than the limit */
    struct stats_counts c;    /* summed over its rows, gauges included */
};

/* One listener ("outgoing" for connections protocols opened): all slots,
 * retired and live, gauges of live processes included; c.lat is its
 * latency histogram, summed the same way. */
struct snap_listener {
    const char *name;
    struct stats_counts c;
};

/*
 * One Prometheus series set: a listener in a worker slot, retired and
 * live together, so it never goes backwards when a worker is replaced.
 */
struct snap_series {
    const char *listener;
    int slot;
    struct stats_counts c;
};

struct snap_event {
    int64_t time_ms; /* CLOCK_REALTIME */
    const char *kind;
    const char *text;
};

struct stats_snapshot {
    const char *version;
    pid_t pid;
    double uptime_s;
    int64_t time_ms; /* CLOCK_REALTIME when taken: rates between two */
    uint32_t generation;
    uint64_t generations_forced; /* over max_generations, stopped early */
    int nslots;
    struct stats_counts totals; /* everything, gauges of live processes */
    struct snap_listener *listeners;
    size_t nlisteners;
    struct snap_worker *workers;
    size_t nworkers;
    struct snap_series *series;
    size_t nseries;
    struct snap_event *events; /* recent events, oldest first */
    size_t nevents;
};

#endif
