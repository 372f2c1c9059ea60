/*
 * Binary upgrade, as nginx does it: the running supervisor forks and execs
 * the weftd found at its own path, handing over its listening sockets, the
 * stats region and the control socket as inherited descriptors named in
 * the environment. The new supervisor adopts them, starts its workers and
 * writes one byte to a pipe once they serve; the old one then lets its own
 * workers drain and exits. If the new one dies or is not ready in time,
 * the old one serves on as if nothing happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"
#include "supervisor/control.h"
#include "supervisor/super.h"

#define UPGRADE_READY_TIMEOUT_S 15.0

struct upgrade {
    struct supervisor *sup;
    pid_t pid;
    ev_io ready;
    ev_child child;
    ev_timer timer;
    reload_done_fn done;
    void *arg;
};

/* Let fd survive the exec. */
static int keep_across_exec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    return flags == -1 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

static void setenv_int(const char *name, int v)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%d", v);
    setenv(name, buf, 1);
}

/* In the forked child: describe what is handed over, then exec. */
static void upgrade_exec(struct supervisor *sup, int ready_fd)
{
    const struct listen_set *ls = &sup->ls;
    size_t n = ls->nlisteners * (size_t)ls->nslots;
    char *list = malloc(n * 12 + 1);
    size_t len = 0;

    if (list == NULL)
        _exit(127);
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (ls->fds[i] == -1 || keep_across_exec(ls->fds[i]) == -1)
            continue;
        len += (size_t)snprintf(list + len, 12, "%s%d", len ? "," : "",
                                ls->fds[i]);
    }
    int ctl = control_fd(sup->control), adm = control_admin_fd(sup->control);
    if (keep_across_exec(sup->stats_fd) == -1 || keep_across_exec(ctl) == -1 ||
        (adm != -1 && keep_across_exec(adm) == -1) ||
        keep_across_exec(ready_fd) == -1)
        _exit(127);
    setenv("WEFT_UPGRADE_FDS", list, 1);
    setenv_int("WEFT_UPGRADE_STATS", sup->stats_fd);
    setenv_int("WEFT_UPGRADE_CONTROL", ctl);
    setenv_int("WEFT_UPGRADE_ADMIN", adm);
    setenv_int("WEFT_UPGRADE_READY", ready_fd);
    /* It will be the service's main process (see notify.c). */
    notify_pass_on();
    execv(sup->exe, sup->argv);
    log_error("%s: exec %s: %s", __func__, sup->exe, strerror(errno));
    _exit(127);
}

static void upgrade_free(struct upgrade *u)
{
    struct ev_loop *loop = u->sup->loop;

    ev_io_stop(loop, &u->ready);
    close(u->ready.fd);
    ev_timer_stop(loop, &u->timer);
    ev_child_stop(loop, &u->child);
    u->sup->upgrade = NULL;
    free(u);
}

/* The new weftd failed: it goes, we stay. */
static void upgrade_fail(struct upgrade *u, const char *err)
{
    struct supervisor *sup = u->sup;
    reload_done_fn done = u->done;
    void *arg = u->arg;

    if (ev_is_active(&u->child))
        kill(u->pid, SIGTERM);
    /* It may have written its own picture into the shared header. */
    sup->stats->h.supervisor_pid = (int32_t)getpid();
    sup->stats->h.generation = sup->generation;
    sup->stats->h.workers = (uint32_t)sup->nslots;
    pidfile_restore(sup);
    upgrade_free(u);
    notify_status("upgrade failed; this weftd keeps serving");
    log_error("%s: upgrade failed: %s; this weftd (pid %ld) keeps serving",
              __func__, err, (long)getpid());
    done(arg, err);
}

/*
 * The new weftd serves: answer, stop taking control clients (it answers
 * on the same socket now), and let our workers drain; we exit after the
 * last one, leaving the sockets and the region to the new weftd.
 */
static void upgrade_done(struct upgrade *u)
{
    struct supervisor *sup = u->sup;
    reload_done_fn done = u->done;
    void *arg = u->arg;
    pid_t pid = u->pid;

    sup->upgraded_to = pid;
    upgrade_free(u);
    /* We are still the main process systemd knows: hand that over. */
    notify_main_pid(sup, pid);
    log_info("%s: weftd pid %ld serves; this one drains and exits",
             __func__, (long)pid);
    done(arg, NULL);
    control_keep_path(sup->control);
    proc_hand_over(sup);
}

static void upgrade_ready_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct upgrade *u = container_of(io, struct upgrade, ready);
    char c;

    (void)loop;
    (void)revents;
    if (read(io->fd, &c, 1) == 1)
        upgrade_done(u);
    else
        upgrade_fail(u, "the new weftd exited before it served");
}

static void upgrade_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct upgrade *u = container_of(w, struct upgrade, child);

    (void)revents;
    ev_child_stop(loop, w);
    upgrade_fail(u, "the new weftd exited before it served (see the log)");
}

static void upgrade_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct upgrade *u = container_of(t, struct upgrade, timer);

    (void)loop;
    (void)revents;
    upgrade_fail(u, "the new weftd did not serve in time");
}

const char *upgrade_start(struct supervisor *sup, reload_done_fn done,
                          void *arg)
{
    int pipefd[2];
    struct upgrade *u;

    if (sup->stopping)
        return "weftd is stopping";
    if (sup->reload != NULL || sup->upgrade != NULL)
        return "a reload or an upgrade is already in progress";
    if (sup->exe == NULL)
        return "the path of the weftd binary is unknown";
    u = calloc(1, sizeof(*u));
    if (u == NULL || pipe2(pipefd, O_CLOEXEC) == -1) {
        free(u);
        return strerror(errno);
    }
    pidfile_set_aside(sup);
    pid_t pid = fork();
    if (pid == -1) {
        int err = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        free(u);
        pidfile_restore(sup);
        return strerror(err);
    }
    if (pid == 0)
        upgrade_exec(sup, pipefd[1]);
    close(pipefd[1]);
    u->sup = sup;
    u->pid = pid;
    u->done = done;
    u->arg = arg;
    ev_io_init(&u->ready, upgrade_ready_cb, pipefd[0], EV_READ);
    ev_io_start(sup->loop, &u->ready);
    ev_child_init(&u->child, upgrade_child_cb, pid, 0);
    ev_child_start(sup->loop, &u->child);
    ev_timer_init(&u->timer, upgrade_timer_cb, UPGRADE_READY_TIMEOUT_S, 0);
    ev_timer_start(sup->loop, &u->timer);
    sup->upgrade = u;
    log_info("%s: started %s (pid %ld) with our sockets", __func__, sup->exe,
             (long)pid);
    return NULL;
}

/* ---- The new weftd's side ------------------------------------------- */

/* An integer from the environment, or -1. */
static int env_int(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? atoi(v) : -1;
}

int upgrade_inherited(struct upgrade_fds *in)
{
    const char *list = getenv("WEFT_UPGRADE_FDS");

    memset(in, 0, sizeof(*in));
    if (list == NULL)
        return 0;
    in->stats = env_int("WEFT_UPGRADE_STATS");
    in->control = env_int("WEFT_UPGRADE_CONTROL");
    in->admin = env_int("WEFT_UPGRADE_ADMIN");
    in->ready = env_int("WEFT_UPGRADE_READY");
    for (const char *p = list; *p != '\0' && in->nfds < UPGRADE_FDS_MAX;) {
        in->fds[in->nfds++] = atoi(p);
        p += strcspn(p, ",");
        p += *p == ',';
    }
    unsetenv("WEFT_UPGRADE_FDS");
    unsetenv("WEFT_UPGRADE_STATS");
    unsetenv("WEFT_UPGRADE_CONTROL");
    unsetenv("WEFT_UPGRADE_ADMIN");
    unsetenv("WEFT_UPGRADE_READY");
    /* Ours now: not to be passed on to workers' exec (they do not exec),
     * nor to a later upgrade by accident. */
    for (size_t i = 0; i < in->nfds; i++)
        fcntl(in->fds[i], F_SETFD, FD_CLOEXEC);
    int own[] = { in->stats, in->control, in->admin, in->ready };
    for (size_t i = 0; i < countof(own); i++)
        if (own[i] != -1)
            fcntl(own[i], F_SETFD, FD_CLOEXEC);
    return 1;
}

/* Tell the old weftd, once every worker of ours serves. */
static void upgrade_ready_poll_cb(struct ev_loop *loop, ev_timer *t,
                                  int revents)
{
    struct supervisor *sup = t->data;

    (void)revents;
    if (!proc_all_serving(sup))
        return;
    ev_timer_stop(loop, t);
    if (write(sup->ready_fd, "1", 1) != 1)
        log_warn("%s: telling the old weftd: %s", __func__, strerror(errno));
    close(sup->ready_fd);
    sup->ready_fd = -1;
    log_info("%s: serving; the old weftd drains", __func__);
}

void upgrade_announce_when_ready(struct supervisor *sup)
{
    if (sup->ready_fd == -1)
        return;
    ev_timer_init(&sup->ready_poll, upgrade_ready_poll_cb, 0.01, 0.01);
    sup->ready_poll.data = sup;
    ev_timer_start(sup->loop, &sup->ready_poll);
}
