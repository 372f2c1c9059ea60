/*
 * Worker lifecycle: fork one worker per slot, replace one that dies in the
 * same slot (backing off when it keeps dying at start), follow the workers
 * of a reload and those it replaced, stop them all.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"
#include "supervisor/config.h"
#include "supervisor/control.h"
#include "supervisor/privs.h"
#include "supervisor/super.h"
#include "worker/worker.h"

/* A worker that dies sooner than this after its start counts as a quick
 * death; quick deaths in a row delay the next start exponentially. */
#define SLOT_QUICK_S 1.0
#define SLOT_BACKOFF_MIN_S 0.1
#define SLOT_BACKOFF_MAX_S 5.0
/* Workers still alive this long after SIGQUIT are killed. */
#define STOP_KILL_S 1.5

static const char *const role_names[] = {
    [WPROC_CURRENT] = "worker",
    [WPROC_PENDING] = "new worker",
    [WPROC_OLD] = "old worker",
};

/*
 * In the new child: drop every supervisor watcher and the default loop,
 * every socket but this slot's of ls, then become the worker. Never
 * returns.
 */
static void child_become_worker(struct supervisor *sup,
                                const struct config *cfg,
                                const struct listen_set *ls, const int *rows,
                                struct wproc *self, pid_t parent)
{
    struct ev_loop *loop = sup->loop;
    struct wproc *p;
    char name[16];
    int slot = self->slot;

    ev_signal_stop(loop, &sup->sigterm);
    ev_signal_stop(loop, &sup->sigint);
    ev_signal_stop(loop, &sup->sighup);
    ev_signal_stop(loop, &sup->sigusr1);
    ev_signal_stop(loop, &sup->sigusr2);
    ev_timer_stop(loop, &sup->ready_poll);
    ev_timer_stop(loop, &sup->notify_poll);
    ev_timer_stop(loop, &sup->kill_timer);
    ev_timer_stop(loop, &sup->quit_timer);
    ev_timer_stop(loop, &sup->heartbeat_check);
    control_forget(sup->control);
    sup->control = NULL;
    /* What an upgrade handed over stays with the supervisor. */
    if (sup->ready_fd != -1)
        close(sup->ready_fd);
    if (sup->stats_fd != -1)
        close(sup->stats_fd);
    LIST_FOREACH(p, &sup->procs, link)
        ev_child_stop(loop, &p->child);
    for (int i = 0; i < CONFIG_WORKERS_MAX; i++)
        ev_timer_stop(loop, &sup->slots[i].respawn);
    ev_loop_destroy(loop);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    log_set_role(slot);

    /* Before the death signal: changing credentials clears it. */
    if (privs_drop(cfg) == -1)
        _exit(1);
    /* If the supervisor dies, so do we: no orphan keeps a port. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        _exit(1);
    snprintf(name, sizeof(name), "weftd-w%d", slot);
    prctl(PR_SET_NAME, name);
    listen_close_others(&sup->ls, ls, slot);

    struct worker_spec spec = {
        .cfg = cfg,
        .slot = slot,
        .cpu = cfg->cpu_affinity ? sup->cpus[slot] : -1,
        .fds = listen_slot_fds(ls, slot),
        .rows = rows,
        .stats = &sup->stats->block[self->block],
        .bus = &sup->bus,
        .tls_keys = sup->tls_keys,
        .bus_ep = self->bus_ep,
    };
    worker_main(&spec);
}

static void proc_child_cb(struct ev_loop *loop, ev_child *w, int revents);

struct wproc *proc_spawn(struct supervisor *sup, int slot,
                         const struct config *cfg,
                         const struct listen_set *ls, const int *rows,
                         enum wproc_role role)
{
    struct wproc *p = calloc(1, sizeof(*p));
    pid_t parent = getpid();

    if (p == NULL) {
        log_error("%s: worker %d: out of memory", __func__, slot);
        return NULL;
    }
    p->sup = sup;
    p->slot = slot;
    p->role = role;
    p->generation = sup->generation + (role == WPROC_PENDING ? 1 : 0);
    p->block = stats_block_claim(sup->stats, slot, 0, p->generation);
    if (p->block == -1) {
        /* Every block is held by a live worker: old generations still
         * draining. Refuse this start rather than lose counts. */
        log_error("%s: worker %d: no free stats block (%d worker processes "
                  "alive)", __func__, slot, STATS_BLOCKS);
        free(p);
        return NULL;
    }
    p->bus_ep = bus_ep_claim(&sup->bus, slot, p->generation);
    if (p->bus_ep == -1) {
        log_error("%s: worker %d: no free endpoint on the message bus (%u "
                  "worker processes alive)", __func__, slot,
                  sup->bus.h->nendpoints);
        stats_block_retire(sup->stats, p->block);
        free(p);
        return NULL;
    }
    /*
     * Every signal stays blocked in the child until the worker's own
     * watchers are in place (worker_main unblocks them): a SIGTERM sent
     * to a worker just forked, as when the whole group is signalled at
     * once, would otherwise run the supervisor's inherited handler and be
     * lost, leaving a worker that never stops.
     */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid == -1) {
        log_error("%s: worker %d: fork: %s", __func__, slot,
                  strerror(errno));
        stats_block_retire(sup->stats, p->block);
        bus_ep_release(&sup->bus, p->bus_ep);
        free(p);
        return NULL;
    }
    if (pid == 0)
        child_become_worker(sup, cfg, ls, rows, p, parent);
    p->pid = pid;
    atomic_store(&sup->stats->block[p->block].pid, (int32_t)pid);
    p->started = ev_now(sup->loop);
    ev_child_init(&p->child, proc_child_cb, pid, 0);
    ev_child_start(sup->loop, &p->child);
    LIST_INSERT_HEAD(&sup->procs, p, link);
    log_info("%s: %s %d started, pid %ld, generation %u", __func__,
             role_names[role], slot, (long)pid, p->generation);
    return p;
}

/* Start the current worker of slot sl, or back off if fork fails. */
static void slot_spawn(struct slot *sl)
{
    struct supervisor *sup = sl->sup;
    struct wproc *p = proc_spawn(sup, sl->index, sup->cfg, &sup->ls,
                                 sup->rows, WPROC_CURRENT);

    if (p == NULL) {
        sl->quick_deaths++;
        ev_timer_set(&sl->respawn, SLOT_BACKOFF_MAX_S, 0);
        ev_timer_start(sup->loop, &sl->respawn);
        return;
    }
    sl->cur = p;
}

static void slot_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct slot *sl = container_of(t, struct slot, respawn);

    (void)loop;
    (void)revents;
    slot_spawn(sl);
}

/* Log how worker p ended. */
static void proc_log_exit(struct wproc *p, int status)
{
    const char *what = role_names[p->role];
    struct events *ev = &p->sup->events;

    if (WIFSIGNALED(status)) {
        log_warn("%s: %s %d (pid %ld) killed by signal %d (%s)", __func__,
                 what, p->slot, (long)p->pid, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        events_add(ev, "crash", "%s %d (pid %ld) killed by signal %d (%s)",
                   what, p->slot, (long)p->pid, WTERMSIG(status),
                   strsignal(WTERMSIG(status)));
    } else if (WEXITSTATUS(status) != 0) {
        log_warn("%s: %s %d (pid %ld) exited with status %d", __func__,
                 what, p->slot, (long)p->pid, WEXITSTATUS(status));
        events_add(ev, "crash", "%s %d (pid %ld) exited with status %d", what,
                   p->slot, (long)p->pid, WEXITSTATUS(status));
    }
    else
        log_info("%s: %s %d (pid %ld) exited", __func__, what, p->slot,
                 (long)p->pid);
}

/* All workers gone while stopping: leave the loop. */
static void sup_check_stopped(struct supervisor *sup)
{
    if (!LIST_EMPTY(&sup->procs))
        return;
    ev_timer_stop(sup->loop, &sup->kill_timer);
    ev_timer_stop(sup->loop, &sup->quit_timer);
    ev_timer_stop(sup->loop, &sup->heartbeat_check);
    ev_break(sup->loop, EVBREAK_ALL);
}

/* The current worker of sl died: replace it, at once or after a wait. */
static void slot_replace(struct slot *sl, ev_tstamp lived)
{
    struct supervisor *sup = sl->sup;

    if (lived >= SLOT_QUICK_S) {
        sl->quick_deaths = 0;
        slot_spawn(sl);
        return;
    }
    /* One early death is replaced at once; only a worker that keeps dying
     * waits, 0.1 s, 0.2 s, ... up to SLOT_BACKOFF_MAX_S. */
    if (++sl->quick_deaths == 1) {
        slot_spawn(sl);
        return;
    }
    double delay = SLOT_BACKOFF_MIN_S * pow(2, sl->quick_deaths - 2);
    delay = WEFT_MIN(delay, SLOT_BACKOFF_MAX_S);
    log_warn("%s: worker %d died %d time(s) within %.0f s of start; "
             "next start in %.1f s",
             __func__, sl->index, sl->quick_deaths, SLOT_QUICK_S, delay);
    ev_timer_set(&sl->respawn, delay, 0);
    ev_timer_start(sup->loop, &sl->respawn);
}

/* A worker process ended: fold its stats, then act on its role. */
static void proc_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct wproc *p = container_of(w, struct wproc, child);
    struct supervisor *sup = p->sup;

    (void)revents;
    ev_child_stop(loop, w);
    proc_log_exit(p, w->rstatus);
    /* Its counts join the slot's retired totals before the block is
     * reused: no total ever goes backwards. */
    stats_block_retire(sup->stats, p->block);
    /* Its endpoint is free: the others learn it left, its names go. */
    bus_ep_release(&sup->bus, p->bus_ep);
    LIST_REMOVE(p, link);
    if (p->role == WPROC_PENDING)
        reload_worker_died(sup, p);
    if (p->role == WPROC_CURRENT && sup->slots[p->slot].cur == p) {
        sup->slots[p->slot].cur = NULL;
        if (!sup->stopping)
            slot_replace(&sup->slots[p->slot], ev_now(loop) - p->started);
    }
    free(p);
    if (sup->stopping)
        sup_check_stopped(sup);
}

/* Workers that outlive the stop's last stage are killed. */
static void kill_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct supervisor *sup = container_of(t, struct supervisor, kill_timer);
    struct wproc *p;

    (void)loop;
    (void)revents;
    LIST_FOREACH(p, &sup->procs, link) {
        log_warn("%s: %s %d (pid %ld) did not stop; killing it", __func__,
                 role_names[p->role], p->slot, (long)p->pid);
        kill(p->pid, SIGKILL);
    }
}

/* Tell every worker to stop now (SIGQUIT); kill what is left later. */
static void proc_quit(struct supervisor *sup)
{
    struct wproc *p;

    LIST_FOREACH(p, &sup->procs, link)
        kill(p->pid, SIGQUIT);
    ev_timer_stop(sup->loop, &sup->quit_timer);
    ev_timer_stop(sup->loop, &sup->kill_timer);
    ev_timer_set(&sup->kill_timer, STOP_KILL_S, 0);
    ev_timer_start(sup->loop, &sup->kill_timer);
}

static void quit_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct supervisor *sup = container_of(t, struct supervisor, quit_timer);

    (void)loop;
    (void)revents;
    log_warn("%s: workers still draining after %.1f s; stopping them now",
             __func__, sup->stop_grace);
    proc_quit(sup);
}

/* Log a worker whose loop stopped turning, and when it turns again. */
static void heartbeat_check_cb(struct ev_loop *loop, ev_timer *t,
                               int revents)
{
    struct supervisor *sup =
        container_of(t, struct supervisor, heartbeat_check);
    int64_t now = stats_now_ms(true);
    struct wproc *p;

    (void)loop;
    (void)revents;
    LIST_FOREACH(p, &sup->procs, link) {
        int64_t hb = atomic_load(&sup->stats->block[p->block].heartbeat_ms);
        bool late = hb > 0 && now - hb > HEARTBEAT_STALL_MS;
        if (late && !p->stalled)
            log_warn("%s: %s %d (pid %ld): no heartbeat for %lld ms",
                     __func__, role_names[p->role], p->slot, (long)p->pid,
                     (long long)(now - hb));
        else if (!late && p->stalled)
            log_info("%s: %s %d (pid %ld): heartbeat again", __func__,
                     role_names[p->role], p->slot, (long)p->pid);
        p->stalled = late;
    }
}

int proc_start(struct supervisor *sup)
{
    sup->slots = calloc(CONFIG_WORKERS_MAX, sizeof(*sup->slots));
    if (sup->slots == NULL)
        return -1;
    LIST_INIT(&sup->procs);
    ev_timer_init(&sup->kill_timer, kill_timer_cb, STOP_KILL_S, 0);
    ev_timer_init(&sup->quit_timer, quit_timer_cb, 0, 0);
    ev_timer_init(&sup->heartbeat_check, heartbeat_check_cb, 1.0, 1.0);
    ev_timer_start(sup->loop, &sup->heartbeat_check);
    for (int i = 0; i < CONFIG_WORKERS_MAX; i++) {
        struct slot *sl = &sup->slots[i];
        sl->sup = sup;
        sl->index = i;
        ev_timer_init(&sl->respawn, slot_respawn_cb, 0, 0);
    }
    for (int i = 0; i < sup->nslots; i++)
        slot_spawn(&sup->slots[i]);
    return 0;
}

/*
 * Stop: every worker takes what is queued, stops accepting and drains
 * (SIGTERM); after grace seconds the rest are told to stop now. Asked
 * again while stopping, stop now. The loop ends with the last worker.
 */
void proc_stop(struct supervisor *sup, double grace)
{
    struct wproc *p;

    if (sup->stopping) {
        proc_quit(sup);
        return;
    }
    sup->stopping = true;
    notify_stopping();
    ev_timer_stop(sup->loop, &sup->notify_poll);
    sup->stop_grace = grace;
    reload_abort(sup, "weftd is stopping");
    for (int i = 0; i < CONFIG_WORKERS_MAX; i++)
        ev_timer_stop(sup->loop, &sup->slots[i].respawn);
    LIST_FOREACH(p, &sup->procs, link)
        kill(p->pid, SIGTERM);
    /* The workers take what is queued and close their copies; once ours
     * are closed too, new connections are refused, not queued for nobody. */
    listen_close(&sup->ls);
    ev_timer_set(&sup->quit_timer, grace, 0);
    ev_timer_start(sup->loop, &sup->quit_timer);
    sup_check_stopped(sup);
}

void proc_hand_over(struct supervisor *sup)
{
    struct wproc *p;

    sup->stopping = true;
    reload_abort(sup, "weftd was upgraded");
    for (int i = 0; i < CONFIG_WORKERS_MAX; i++)
        ev_timer_stop(sup->loop, &sup->slots[i].respawn);
    /* Our workers take what is queued and close their copies; the new
     * weftd's hold the sockets open. */
    LIST_FOREACH(p, &sup->procs, link) {
        p->role = WPROC_OLD;
        kill(p->pid, SIGUSR2);
    }
    listen_close(&sup->ls);
    sup->stop_grace = sup->cfg->shutdown_timeout;
    ev_timer_set(&sup->quit_timer, sup->stop_grace, 0);
    ev_timer_start(sup->loop, &sup->quit_timer);
    sup_check_stopped(sup);
}

int proc_reopen_logs(struct supervisor *sup)
{
    struct wproc *p;

    /* No log file (any more): back to the stderr weftd started with. */
    if (log_open_file(sup->cfg->log_file) == -1) {
        log_error("%s: %s: %s", __func__,
                  sup->cfg->log_file ? sup->cfg->log_file : "stderr",
                  strerror(errno));
        return -1;
    }
    if (sup->cfg->log_file == NULL)
        return 0;
    /* The workers reopen it as their user. */
    privs_chown_log(sup->cfg);
    LIST_FOREACH(p, &sup->procs, link)
        kill(p->pid, SIGUSR1);
    log_info("%s: log file reopened", __func__);
    return 0;
}

void proc_free(struct supervisor *sup)
{
    free(sup->slots);
    sup->slots = NULL;
}

bool proc_all_serving(const struct supervisor *sup)
{
    for (int i = 0; i < sup->nslots; i++) {
        const struct wproc *p = sup->slots[i].cur;
        if (p == NULL || atomic_load(&sup->stats->block[p->block].state) !=
                             WORKER_RUNNING)
            return false;
    }
    return true;
}
