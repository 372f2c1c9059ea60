/*
 * The supervisor's state: the config, the listening sockets and one slot
 * per worker. Lives in main's frame; watchers find it with container_of.
 */
#ifndef WEFT_SUPERVISOR_SUPER_H
#define WEFT_SUPERVISOR_SUPER_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "shared/conf.h"
#include "shared/stats.h"
#include "supervisor/listen.h"

struct supervisor;

struct slot {
    struct supervisor *sup;
    int index;
    pid_t pid;          /* 0 while no worker runs in the slot */
    ev_tstamp started;  /* when the current worker was forked */
    int quick_deaths;   /* deaths within SLOT_QUICK_S of start, in a row */
    int block;          /* its stats block, -1 while no worker runs */
    bool stalled;       /* heartbeat late: logged once */
    ev_child child;
    ev_timer respawn;
};

struct supervisor {
    struct ev_loop *loop;
    struct config *cfg;
    struct listen_set ls;
    struct stats_shm *stats;
    uint32_t generation;
    ev_tstamp started;
    ev_timer heartbeat_check;
    struct control *control;
    struct slot *slots;
    int nslots;
    int *cpus;  /* CPU for each slot, or NULL without affinity */
    bool stopping;
    ev_signal sigterm;
    ev_signal sigint;
    ev_timer kill_timer;
};

/* supervisor/proc.c */
int proc_start(struct supervisor *sup);
void proc_stop(struct supervisor *sup);
void proc_free(struct supervisor *sup);

/* A heartbeat older than this marks a worker as stalled. */
#define HEARTBEAT_STALL_MS 3000

#endif
