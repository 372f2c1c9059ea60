/*
 * Worker lifecycle: fork one worker per slot, replace one that dies in the
 * same slot (backing off when it keeps dying at start), stop them all.
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
#include "supervisor/super.h"
#include "worker/worker.h"

/* A worker that dies sooner than this after its start counts as a quick
 * death; quick deaths in a row delay the next start exponentially. */
#define SLOT_QUICK_S 1.0
#define SLOT_BACKOFF_MIN_S 0.1
#define SLOT_BACKOFF_MAX_S 5.0
/* Workers still alive this long after SIGTERM are killed. */
#define STOP_KILL_S 1.5

static void slot_spawn(struct slot *sl);

/*
 * In the new child: drop every supervisor watcher and the default loop,
 * and the sockets of other slots, then become the worker. Never returns.
 */
static void child_become_worker(struct supervisor *sup, int index,
                                pid_t parent)
{
    struct ev_loop *loop = sup->loop;
    char name[16];

    ev_signal_stop(loop, &sup->sigterm);
    ev_signal_stop(loop, &sup->sigint);
    ev_timer_stop(loop, &sup->kill_timer);
    ev_timer_stop(loop, &sup->heartbeat_check);
    control_forget(sup->control);
    sup->control = NULL;
    for (int i = 0; i < sup->nslots; i++) {
        ev_child_stop(loop, &sup->slots[i].child);
        ev_timer_stop(loop, &sup->slots[i].respawn);
    }
    ev_loop_destroy(loop);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);

    /* If the supervisor dies, so do we: no orphan keeps a port. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        _exit(1);
    snprintf(name, sizeof(name), "weftd-w%d", index);
    prctl(PR_SET_NAME, name);
    log_set_role(index);
    listen_keep_slot(&sup->ls, index);

    struct worker_spec spec = {
        .cfg = sup->cfg,
        .slot = index,
        .cpu = sup->cpus ? sup->cpus[index] : -1,
        .fds = listen_slot_fds(&sup->ls, index),
        .stats = &sup->stats->block[sup->slots[index].block],
    };
    worker_main(&spec);
}

static void slot_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct slot *sl = container_of(t, struct slot, respawn);

    (void)loop;
    (void)revents;
    slot_spawn(sl);
}

/* Log how the worker in sl ended. */
static void slot_log_exit(const struct slot *sl, int status)
{
    if (WIFSIGNALED(status))
        log_warn("%s: worker %d (pid %ld) killed by signal %d (%s)",
                 __func__, sl->index, (long)sl->pid, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        log_warn("%s: worker %d (pid %ld) exited with status %d", __func__,
                 sl->index, (long)sl->pid, WEXITSTATUS(status));
    else
        log_info("%s: worker %d (pid %ld) exited", __func__, sl->index,
                 (long)sl->pid);
}

/* All workers gone while stopping: leave the loop. */
static void sup_check_stopped(struct supervisor *sup)
{
    for (int i = 0; i < sup->nslots; i++)
        if (sup->slots[i].pid != 0)
            return;
    ev_timer_stop(sup->loop, &sup->kill_timer);
    ev_timer_stop(sup->loop, &sup->heartbeat_check);
    ev_break(sup->loop, EVBREAK_ALL);
}

/* A worker ended: replace it in its slot, at once or after a backoff. */
static void slot_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct slot *sl = container_of(w, struct slot, child);
    struct supervisor *sup = sl->sup;

    (void)revents;
    ev_child_stop(loop, w);
    slot_log_exit(sl, w->rstatus);
    sl->pid = 0;
    /* Its counts join the slot's retired totals before the block is
     * reused: no total ever goes backwards. */
    stats_block_retire(sup->stats, sl->block);
    sl->block = -1;
    sl->stalled = false;
    if (sup->stopping) {
        sup_check_stopped(sup);
        return;
    }
    if (ev_now(loop) - sl->started >= SLOT_QUICK_S) {
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
    ev_timer_start(loop, &sl->respawn);
}

static void slot_spawn(struct slot *sl)
{
    struct supervisor *sup = sl->sup;
    pid_t parent = getpid();

    sl->block = stats_block_claim(sup->stats, sl->index, 0, sup->generation);
    if (sl->block == -1)
        fatal("%s: worker %d: no free stats block", __func__, sl->index);
    pid_t pid = fork();

    if (pid == -1) {
        stats_block_retire(sup->stats, sl->block);
        sl->block = -1;
        log_error("%s: worker %d: fork: %s", __func__, sl->index,
                  strerror(errno));
        sl->quick_deaths++;
        ev_timer_set(&sl->respawn, SLOT_BACKOFF_MAX_S, 0);
        ev_timer_start(sup->loop, &sl->respawn);
        return;
    }
    if (pid == 0)
        child_become_worker(sup, sl->index, parent);
    sl->pid = pid;
    atomic_store(&sup->stats->block[sl->block].pid, (int32_t)pid);
    sl->started = ev_now(sup->loop);
    ev_child_set(&sl->child, pid, 0);
    ev_child_start(sup->loop, &sl->child);
    log_info("%s: worker %d started, pid %ld", __func__, sl->index,
             (long)pid);
}

static void kill_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct supervisor *sup = container_of(t, struct supervisor, kill_timer);

    (void)loop;
    (void)revents;
    for (int i = 0; i < sup->nslots; i++) {
        if (sup->slots[i].pid == 0)
            continue;
        log_warn("%s: worker %d (pid %ld) did not stop; killing it",
                 __func__, i, (long)sup->slots[i].pid);
        kill(sup->slots[i].pid, SIGKILL);
    }
}

/* Log a worker whose loop stopped turning, and when it turns again. */
static void heartbeat_check_cb(struct ev_loop *loop, ev_timer *t,
                               int revents)
{
    struct supervisor *sup = container_of(t, struct supervisor,
                                          heartbeat_check);
    int64_t now = stats_now_ms(true);

    (void)loop;
    (void)revents;
    for (int i = 0; i < sup->nslots; i++) {
        struct slot *sl = &sup->slots[i];
        if (sl->pid == 0 || sl->block == -1)
            continue;
        int64_t hb = atomic_load(&sup->stats->block[sl->block].heartbeat_ms);
        bool late = hb > 0 && now - hb > HEARTBEAT_STALL_MS;
        if (late && !sl->stalled)
            log_warn("%s: worker %d (pid %ld): no heartbeat for %lld ms",
                     __func__, i, (long)sl->pid, (long long)(now - hb));
        else if (!late && sl->stalled)
            log_info("%s: worker %d (pid %ld): heartbeat again", __func__,
                     i, (long)sl->pid);
        sl->stalled = late;
    }
}

int proc_start(struct supervisor *sup)
{
    sup->slots = calloc((size_t)sup->nslots, sizeof(*sup->slots));
    if (sup->slots == NULL)
        return -1;
    ev_timer_init(&sup->kill_timer, kill_timer_cb, STOP_KILL_S, 0);
    ev_timer_init(&sup->heartbeat_check, heartbeat_check_cb, 1.0, 1.0);
    ev_timer_start(sup->loop, &sup->heartbeat_check);
    for (int i = 0; i < sup->nslots; i++) {
        struct slot *sl = &sup->slots[i];
        sl->sup = sup;
        sl->index = i;
        sl->block = -1;
        ev_child_init(&sl->child, slot_child_cb, 0, 0);
        ev_timer_init(&sl->respawn, slot_respawn_cb, 0, 0);
    }
    for (int i = 0; i < sup->nslots; i++)
        slot_spawn(&sup->slots[i]);
    return 0;
}

/* Tell every worker to stop; the loop ends when the last one is gone. */
void proc_stop(struct supervisor *sup)
{
    if (sup->stopping)
        return;
    sup->stopping = true;
    for (int i = 0; i < sup->nslots; i++) {
        struct slot *sl = &sup->slots[i];
        ev_timer_stop(sup->loop, &sl->respawn);
        if (sl->pid != 0)
            kill(sl->pid, SIGTERM);
    }
    ev_timer_start(sup->loop, &sup->kill_timer);
    sup_check_stopped(sup);
}

void proc_free(struct supervisor *sup)
{
    free(sup->slots);
    sup->slots = NULL;
}
