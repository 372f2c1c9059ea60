/*
 * The supervisor's state: the config, the listening sockets and one slot
 * per worker. Lives in main's frame; watchers find it with container_of.
 */
#ifndef WEFT_SUPERVISOR_SUPER_H
#define WEFT_SUPERVISOR_SUPER_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "shared/bus.h"
#include "shared/conf.h"
#include "shared/stats.h"
#include "supervisor/config.h"
#include "supervisor/events.h"
#include "supervisor/listen.h"

#include <sys/queue.h>

struct supervisor;

/* What a worker process is to the supervisor. */
enum wproc_role {
    WPROC_CURRENT, /* serves its slot for the current generation */
    WPROC_PENDING, /* started by a reload, not yet serving */
    WPROC_OLD      /* replaced by a reload (draining) or abandoned */
};

/* One worker process. */
struct wproc {
    LIST_ENTRY(wproc) link;
    struct supervisor *sup;
    pid_t pid;
    int slot;
    int block; /* its stats block */
    int bus_ep; /* its endpoint on the message bus */
    uint32_t generation;
    enum wproc_role role;
    ev_tstamp started;
    bool stalled; /* heartbeat late: logged once */
    bool quit;    /* told to stop now (SIGQUIT) */
    ev_child child;
};

/* One worker slot: its current process and its restart backoff. */
struct slot {
    struct supervisor *sup;
    int index;
    struct wproc *cur; /* NULL while no worker runs in the slot */
    int quick_deaths;  /* deaths within SLOT_QUICK_S of start, in a row */
    ev_timer respawn;
};

struct supervisor {
    struct ev_loop *loop;
    struct config *cfg;
    struct listen_set ls;
    struct stats_shm *stats;
    int stats_fd; /* the region's memfd, handed over on upgrade */
    struct bus bus; /* the message bus between workers */
    struct events events; /* recent starts, reloads and crashes */
    struct tls_keys *tls_keys; /* session-ticket keys (supervisor/tickets.c) */
    ev_timer ticket_timer;
    uint32_t generation;
    ev_tstamp started;
    ev_timer heartbeat_check;
    struct control *control;
    struct slot *slots; /* CONFIG_WORKERS_MAX of them; nslots in use */
    int nslots;
    int slots_seen; /* the most slots ever in use */
    int workers_override; /* weftd -w, or 0 */
    int ncpus;            /* CPUs this process may run on */
    int *cpus;            /* CPU for each possible slot */
    int *rows;            /* each listener's row in the stats blocks */
    LIST_HEAD(, wproc) procs; /* every worker process alive */
    struct reload *reload;    /* in progress, or NULL */
    const char *config_path;  /* NULL: the built-in configuration */
    char *exe;                /* this binary's path, for upgrades */
    char **argv;
    struct upgrade *upgrade;  /* in progress, or NULL */
    pid_t upgraded_to;        /* the weftd that took over, or 0 */
    int ready_fd;             /* upgraded from an old weftd: tell it */
    ev_timer ready_poll;
    ev_timer notify_poll; /* READY=1 once the first generation serves */
    bool stopping;
    ev_signal sigterm;
    ev_signal sigint;
    ev_signal sighup;
    ev_signal sigusr1;
    ev_signal sigusr2;
    ev_timer quit_timer; /* end of a graceful stop's grace */
    double stop_grace;
    ev_timer kill_timer;
};

/* supervisor/proc.c */
int proc_start(struct supervisor *sup);
void proc_stop(struct supervisor *sup, double grace);

/*
 * Reopen the log file (after rotation) here and in every worker
 * (SIGUSR1). 0, or -1 with errno when the supervisor's open failed.
 */
int proc_reopen_logs(struct supervisor *sup);

/* SIGINT in a terminal: drain for at most this long. */
#define STOP_GRACE_SIGINT_S 1.0
void proc_free(struct supervisor *sup);

/*
 * Fork a worker for slot running cfg on the sockets of ls, with stats
 * rows rows, in role. Returns it, or NULL (logged).
 */
struct wproc *proc_spawn(struct supervisor *sup, int slot,
                         const struct config *cfg,
                         const struct listen_set *ls, const int *rows,
                         enum wproc_role role);

/* supervisor/reload.c */

/* Called when a reload ends: err NULL on success. */
typedef void (*reload_done_fn)(void *arg, const char *err);

/*
 * Read the configuration again and start a new generation on the same
 * sockets. Returns NULL when started (done(arg, ...) follows once the new
 * workers serve or failed), or an error without calling done; a refused
 * configuration's lines are in errs.
 */
const char *reload_start(struct supervisor *sup, reload_done_fn done,
                         void *arg, struct config_errors *errs);

/*
 * The stats row of each listener of cfg, by name (new names get new rows,
 * named when reload_name_rows is called). NULL when rows run out.
 */
int *reload_rows(const struct supervisor *sup, const struct config *cfg);
void reload_name_rows(struct supervisor *sup, const struct config *cfg,
                      const int *rows);

/* A pending worker of the reload in progress died. */
void reload_worker_died(struct supervisor *sup, struct wproc *p);

/* Give up the reload in progress (stopping). */
void reload_abort(struct supervisor *sup, const char *why);

/* supervisor/upgrade.c */

/*
 * Exec the weftd binary at our own path with our sockets and stats; NULL
 * when started (done(arg, ...) follows), or an error.
 */
const char *upgrade_start(struct supervisor *sup, reload_done_fn done,
                          void *arg);

#define UPGRADE_FDS_MAX 4096

/* What an old weftd handed over (see upgrade.c). */
struct upgrade_fds {
    int fds[UPGRADE_FDS_MAX]; /* listening sockets, in slot order */
    size_t nfds;
    int stats, control, admin, ready;
};

/* 1 with *in filled when this weftd was started by an upgrade, else 0. */
int upgrade_inherited(struct upgrade_fds *in);

/* Write to the old weftd once our workers serve. */
void upgrade_announce_when_ready(struct supervisor *sup);

/* supervisor/proc.c: an upgrade succeeded; drain our workers and exit. */
void proc_hand_over(struct supervisor *sup);

/* supervisor/pidfile.c (all do nothing without pid_file) */
int pidfile_write(struct supervisor *sup);
void pidfile_remove(struct supervisor *sup);
void pidfile_set_aside(struct supervisor *sup); /* -> PATH.oldbin */
void pidfile_restore(struct supervisor *sup);   /* <- PATH.oldbin */

/* supervisor/notify.c: sd_notify(3) without libsystemd */

/* Read and unset NOTIFY_SOCKET; every notify_* does nothing without it. */
void notify_init(void);
bool notify_enabled(void);
/* In an upgrade's child: give NOTIFY_SOCKET to the new weftd. */
void notify_pass_on(void);
/* READY=1, MAINPID and STATUS (what, if not NULL, first). */
void notify_ready(const struct supervisor *sup, const char *what);
/* READY=1 once every worker of the first generation serves. */
void notify_ready_when_serving(struct supervisor *sup);
void notify_reloading(void);  /* RELOADING=1, MONOTONIC_USEC */
void notify_stopping(void);   /* STOPPING=1 */
void notify_status(const char *status);
/* The upgraded weftd pid serves: it is the service's main process now. */
void notify_main_pid(const struct supervisor *sup, pid_t pid);

/* supervisor/activate.c: sockets passed by systemd (sd_listen_fds(3)) */

/*
 * Read LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (and unset them): 1 with
 * *act filled when sockets were passed to this process, 0 when none, -1
 * with a message in err.
 */
int activate_inherited(struct activated *act, char *err, size_t errlen);
void activate_free(struct activated *act);

/* The number of workers cfg asks for (weftd -w first). */
int sup_worker_count(const struct supervisor *sup, const struct config *cfg);

/* A heartbeat older than this marks a worker as stalled. */
#define HEARTBEAT_STALL_MS 3000

/* Every slot's current worker runs (accepts): a generation serves. */
bool proc_all_serving(const struct supervisor *sup);

/* supervisor/tickets.c: the shared TLS ticket keys and their rotation. */
int tickets_start(struct supervisor *sup);
/* A reload committed: a new current key, the timer from the new config. */
void tickets_reload(struct supervisor *sup);

#endif
