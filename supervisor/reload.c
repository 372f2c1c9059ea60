/*
 * Reload: read the configuration again and, when it is valid, start a new
 * generation of workers on the same listening sockets (opening only those
 * of new listeners). Once every new worker serves, the old ones are told
 * to drain (SIGUSR2): they stop accepting at once, and the new ones accept
 * from the very same sockets, so nothing queued is lost. A configuration
 * that is refused, or new workers that fail to start, leave the old
 * generation serving untouched.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/util.h"
#include "supervisor/privs.h"
#include "supervisor/super.h"

/* New workers must serve within this, or the reload is abandoned. */
#define RELOAD_READY_TIMEOUT_S 8.0
#define RELOAD_POLL_S 0.01

struct reload {
    struct supervisor *sup;
    int nslots; /* the new worker count */
    struct config *cfg;
    struct listen_set ls;
    int *rows;
    struct wproc **pending; /* one per slot; NULL once it died */
    ev_timer poll;
    ev_tstamp deadline;
    bool started; /* the new workers were forked: failures are events */
    reload_done_fn done;
    void *arg;
};

int sup_worker_count(const struct supervisor *sup, const struct config *cfg)
{
    if (sup->workers_override)
        return sup->workers_override;
    return cfg->workers ? cfg->workers : sup->ncpus;
}

/* What the message bus, sized at start, cannot follow. */
static const char *reload_bus_unsupported(const struct supervisor *sup,
                                          const struct config *cfg)
{
    const struct bus *b = &sup->bus;

    if (cfg->bus_ring_size != sup->cfg->bus_ring_size)
        return "changing bus.ring_size needs a restart";
    if (sup_worker_count(sup, cfg) > (int)b->h->nslots)
        return "more workers than the message bus was sized for at start "
               "(twice the workers then, or the CPUs): restart weftd to "
               "grow it";
    if (bus_ep_free_count(b) < sup_worker_count(sup, cfg))
        return "too many workers of earlier generations are still "
               "draining; try again when they are done";
    return NULL;
}

/*
 * What this version cannot change without a restart. Returns NULL, or a
 * static reason.
 */
static const char *reload_unsupported(const struct supervisor *sup,
                                      const struct config *cfg)
{
    const struct config *old = sup->cfg;
    const struct control_conf *a = &old->control, *b = &cfg->control;
    int free_blocks = 0;
    const char *why;

    if ((why = privs_check(cfg)) != NULL)
        return why;
    if (strcmp(a->path, b->path) != 0 || a->mode != b->mode ||
        a->has_group != b->has_group || a->gid != b->gid ||
        a->has_admin != b->has_admin ||
        (b->has_admin && !addr_equal(&a->admin, &b->admin)))
        return "changing control or admin needs a restart";
    for (int i = 0; i < STATS_BLOCKS; i++)
        free_blocks += atomic_load(&sup->stats->block[i].state) ==
                       WORKER_FREE;
    if (free_blocks < sup_worker_count(sup, cfg))
        return "too many workers of earlier generations are still "
               "draining; try again when they are done";
    return reload_bus_unsupported(sup, cfg);
}

/*
 * The stats row of each listener of cfg: the row its name had before, or
 * the next unnamed one (named only when the reload commits). Returns the
 * array, or NULL when rows run out.
 */
int *reload_rows(const struct supervisor *sup, const struct config *cfg)
{
    const struct stats_header *h = &sup->stats->h;
    int *rows = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(int));
    int next = (int)h->nlisteners;

    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const char *name = cfg->listeners[i].name;
        int r = 0;
        while (r < (int)h->nlisteners && strcmp(h->listener[r], name) != 0)
            r++;
        if (r == (int)h->nlisteners) {
            if (next == STATS_MAX_LISTENERS) {
                free(rows);
                return NULL;
            }
            r = next++;
        }
        rows[i] = r;
    }
    return rows;
}

/*
 * Name the rows the new listeners got. Counts a failed reload's workers
 * left in a row that was never named do not belong to this listener.
 */
void reload_name_rows(struct supervisor *sup, const struct config *cfg,
                      const int *rows)
{
    struct stats_shm *s = sup->stats;

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        uint32_t r = (uint32_t)rows[i];
        if (r < s->h.nlisteners)
            continue;
        for (int slot = 0; slot < STATS_MAX_SLOTS; slot++)
            memset(&s->retired[slot][r], 0, sizeof(s->retired[slot][r]));
        snprintf(s->h.listener[r], sizeof(s->h.listener[r]), "%s",
                 cfg->listeners[i].name);
        s->h.nlisteners = WEFT_MAX(s->h.nlisteners, r + 1);
    }
}

/* Free what the reload built and is not handed over. */
static void reload_free(struct reload *r)
{
    ev_timer_stop(r->sup->loop, &r->poll);
    free(r->pending);
    free(r->rows);
    free(r);
}

/* Give up: drain the new workers, close the new sockets, report err. */
static void reload_fail(struct reload *r, const char *err)
{
    struct supervisor *sup = r->sup;
    reload_done_fn done = r->done;
    void *arg = r->arg;

    if (r->started) /* else reload_start reports the refusal */
        events_add(&sup->events, "reload", "failed: %s", err);
    for (int i = 0; i < r->nslots; i++) {
        struct wproc *p = r->pending[i];
        if (p == NULL)
            continue;
        /* It may have accepted connections already: let it drain them
         * rather than reset them; its exit is just logged. */
        p->role = WPROC_OLD;
        kill(p->pid, SIGUSR2);
    }
    listen_drop(&r->ls, &sup->ls);
    config_free(r->cfg);
    sup->reload = NULL;
    reload_free(r);
    log_warn("%s: reload failed: %s; generation %u keeps serving", __func__,
             err, sup->generation);
    if (!sup->stopping) {
        char status[600];
        snprintf(status, sizeof(status), "reload failed: %.500s", err);
        notify_ready(sup, status);
    }
    if (done != NULL)
        done(arg, err);
}

/*
 * At most max_generations alive, the current one included: the oldest
 * draining generations beyond that are told to stop now (SIGQUIT), and
 * each is logged and counted.
 */
static void reload_cap_generations(struct supervisor *sup)
{
    int max = sup->cfg->max_generations;
    struct wproc *p;

    for (;;) {
        /* The generations still alive besides the current one. */
        uint32_t oldest = sup->generation;
        int alive = 1;
        for (uint32_t g = 1; g < sup->generation; g++) {
            bool found = false;
            LIST_FOREACH(p, &sup->procs, link)
                found |= p->role == WPROC_OLD && p->generation == g &&
                         !p->quit;
            if (found) {
                alive++;
                oldest = WEFT_MIN(oldest, g);
            }
        }
        if (alive <= max)
            return;
        log_warn("%s: %d generations alive, max_generations is %d: "
                 "stopping generation %u now", __func__, alive, max, oldest);
        sup->stats->h.generations_forced++;
        LIST_FOREACH(p, &sup->procs, link) {
            if (p->role == WPROC_OLD && p->generation == oldest) {
                p->quit = true;
                kill(p->pid, SIGQUIT);
            }
        }
    }
}

/*
 * Every new worker serves: swap generations, tell the old ones to drain.
 * With another worker count, traffic is first steered to the slots that
 * stay, so the sockets of slots that go receive nothing more before their
 * old workers take what is queued and close them.
 */
static void reload_commit(struct reload *r)
{
    struct supervisor *sup = r->sup;
    reload_done_fn done = r->done;
    void *arg = r->arg;
    char err[256];

    if (r->nslots != sup->nslots &&
        listen_steer(&r->ls, err, sizeof(err)) == -1) {
        reload_fail(r, err);
        return;
    }
    int nmax = WEFT_MAX(sup->nslots, r->nslots);

    for (int i = 0; i < nmax; i++) {
        struct slot *sl = &sup->slots[i];
        if (sl->cur != NULL) {
            sl->cur->role = WPROC_OLD;
            kill(sl->cur->pid, SIGUSR2);
        }
        ev_timer_stop(sup->loop, &sl->respawn);
        sl->cur = i < r->nslots ? r->pending[i] : NULL;
        if (sl->cur != NULL)
            sl->cur->role = WPROC_CURRENT;
        sl->quick_deaths = 0;
    }
    sup->nslots = r->nslots;
    atomic_store(&sup->bus.h->slots_now, (uint32_t)r->nslots);
    sup->slots_seen = WEFT_MAX(sup->slots_seen, r->nslots);
    sup->stats->h.slots_seen = (uint32_t)sup->slots_seen;
    sup->stats->h.workers = (uint32_t)r->nslots;
    /* Our copies of removed listeners' sockets close now; each socket
     * goes once the old workers, which take what is queued first, have
     * closed theirs. */
    listen_drop(&sup->ls, &r->ls);
    sup->ls = r->ls;
    reload_name_rows(sup, r->cfg, r->rows);
    config_free(sup->cfg);
    sup->cfg = r->cfg;
    /* The new log level and syslog setting, here; the new workers took
     * them at start, the old ones keep theirs until they exit. */
    log_set_level((enum log_level)sup->cfg->log_level);
    log_set_syslog(sup->cfg->log_syslog);
    privs_chown_log(sup->cfg);
    tickets_reload(sup);
    free(sup->rows);
    sup->rows = r->rows;
    r->rows = NULL;
    sup->generation++;
    sup->stats->h.generation = sup->generation;
    reload_cap_generations(sup);
    sup->reload = NULL;
    reload_free(r);
    events_add(&sup->events, "reload", "generation %u serving, %d workers",
               sup->generation, sup->nslots);
    log_info("%s: generation %u serving; the previous one drains", __func__,
             sup->generation);
    notify_ready(sup, NULL);
    /* A log file the new configuration names: here and in the new
     * workers (the old ones keep theirs until they exit). */
    proc_reopen_logs(sup);
    if (done != NULL)
        done(arg, NULL);
}

/* Are all new workers up? Polled until they are or the deadline. */
static void reload_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct reload *r = container_of(t, struct reload, poll);
    struct supervisor *sup = r->sup;

    (void)revents;
    for (int i = 0; i < r->nslots; i++) {
        int b = r->pending[i]->block;
        if (atomic_load(&sup->stats->block[b].state) != WORKER_RUNNING) {
            if (ev_now(loop) > r->deadline)
                reload_fail(r, "the new workers did not start in time");
            return;
        }
    }
    reload_commit(r);
}

void reload_worker_died(struct supervisor *sup, struct wproc *p)
{
    struct reload *r = sup->reload;

    if (r == NULL)
        return;
    for (int i = 0; i < r->nslots; i++)
        if (r->pending[i] == p)
            r->pending[i] = NULL;
    reload_fail(r, "a new worker exited while starting (see the log)");
}

void reload_abort(struct supervisor *sup, const char *why)
{
    if (sup->reload != NULL)
        reload_fail(sup->reload, why);
}

/* Load the configuration from where the running one came from. */
static struct config *reload_load(const struct supervisor *sup,
                                  struct config_errors *errs)
{
    if (sup->config_path == NULL)
        return config_load_string(config_default_text, "<built-in>", errs);
    return config_load(sup->config_path, errs);
}

/* Fork the new generation's worker of every slot; -1 on a failure. */
static int reload_spawn(struct reload *r)
{
    struct supervisor *sup = r->sup;

    for (int i = 0; i < r->nslots; i++) {
        r->pending[i] = proc_spawn(sup, i, r->cfg, &r->ls, r->rows,
                                   WPROC_PENDING);
        if (r->pending[i] == NULL)
            return -1;
    }
    return 0;
}

/* reload_start once it is sure to run: NULL, or why it was refused. */
static const char *reload_begin(struct supervisor *sup, reload_done_fn done,
                                void *arg, struct config_errors *errs)
{
    static char err[512];
    const char *why;
    struct reload *r;

    struct config *cfg = reload_load(sup, errs);
    if (cfg == NULL) {
        log_error("%s: configuration refused; generation %u keeps serving",
                  __func__, sup->generation);
        for (const char *l = errs->text; *l != '\0';) {
            size_t n = strcspn(l, "\n");
            log_error("%s: %.*s", __func__, (int)n, l);
            l += n + (l[n] == '\n');
        }
        return "configuration refused";
    }
    if ((why = reload_unsupported(sup, cfg)) != NULL) {
        log_error("%s: reload refused: %s", __func__, why);
        config_free(cfg);
        return why;
    }
    int nslots = sup_worker_count(sup, cfg);
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->pending = calloc((size_t)nslots,
                                          sizeof(*r->pending))) == NULL ||
        (r->rows = reload_rows(sup, cfg)) == NULL) {
        why = r != NULL && r->pending != NULL
                  ? "too many listener names for the stats (64 at most)"
                  : "out of memory";
        if (r != NULL)
            free(r->pending);
        free(r);
        config_free(cfg);
        return why;
    }
    r->sup = sup;
    r->nslots = nslots;
    r->cfg = cfg;
    r->done = done;
    r->arg = arg;
    ev_timer_init(&r->poll, reload_poll_cb, RELOAD_POLL_S, RELOAD_POLL_S);
    if (listen_reuse(sup->cfg, &sup->ls, cfg, nslots, &r->ls, err,
                     sizeof(err)) == -1) {
        config_free(cfg);
        reload_free(r);
        return err;
    }
    sup->reload = r;
    r->done = NULL; /* a failure now is reported by the return value */
    if (reload_spawn(r) == -1) {
        reload_fail(r, "cannot start the new workers");
        return "cannot start the new workers";
    }
    r->done = done;
    r->started = true;
    r->deadline = ev_now(sup->loop) + RELOAD_READY_TIMEOUT_S;
    ev_timer_start(sup->loop, &r->poll);
    log_info("%s: configuration %s accepted; starting generation %u with "
             "%d workers", __func__, cfg->path, sup->generation + 1, nslots);
    return NULL;
}

/*
 * systemd hears RELOADING=1 when a reload begins and READY=1 when it ends,
 * whatever the outcome (reload_commit, reload_fail, or a refusal here).
 * A request while stopping or while another reload runs changes nothing,
 * and says nothing.
 */
const char *reload_start(struct supervisor *sup, reload_done_fn done,
                         void *arg, struct config_errors *errs)
{
    char status[600];
    const char *err;

    errs->count = 0;
    errs->len = 0;
    errs->text[0] = '\0';
    if (sup->stopping)
        return "weftd is stopping";
    if (sup->reload != NULL || sup->upgrade != NULL)
        return "a reload or an upgrade is already in progress";
    notify_reloading();
    err = reload_begin(sup, done, arg, errs);
    if (err != NULL) {
        snprintf(status, sizeof(status), "reload refused: %.500s", err);
        notify_ready(sup, status);
        events_add(&sup->events, "reload", "refused: %s%s%.80s", err,
                   errs->count > 0 ? ": " : "", errs->text);
    }
    return err;
}
