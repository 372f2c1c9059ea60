/*
 * weftd: the supervisor. Reads the config, opens every listening socket,
 * forks one worker per slot and keeps them running until told to stop.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "supervisor/config.h"
#include "supervisor/control.h"
#include "supervisor/privs.h"
#include "shared/util.h"
#include "supervisor/super.h"

#ifndef WEFT_SYSCONFDIR
#define WEFT_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG WEFT_SYSCONFDIR "/weft.conf"

struct options {
    const char *config; /* NULL: the default file, else built-in defaults */
    bool test;
    int workers; /* 0: as the config says */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: weftd [-c FILE] [-t] [-w N] [-V] [-h]\n"
            "  -c FILE  configuration file (default %s;\n"
            "           built-in defaults when that file does not exist)\n"
            "  -t       check the configuration and exit\n"
            "  -w N     run N workers (1..%d), whatever the config says\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n",
            DEFAULT_CONFIG, CONFIG_WORKERS_MAX);
}

/* Parse argv into *o; exits on -h, -V and on errors. */
static void parse_args(int argc, char **argv, struct options *o)
{
    int c;
    char *end;

    while ((c = getopt(argc, argv, "c:tw:Vh")) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 't':
            o->test = true;
            break;
        case 'w':
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || n < 1 ||
                n > CONFIG_WORKERS_MAX) {
                fprintf(stderr, "weftd: -w: expected 1..%d, got '%s'\n",
                        CONFIG_WORKERS_MAX, optarg);
                exit(1);
            }
            o->workers = (int)n;
            break;
        case 'V':
            printf("weftd %s\n", PACKAGE_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(1);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weftd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(1);
    }
}

/*
 * Load the named file, the default file, or the built-in defaults; the
 * path used (NULL for the built-in text) goes to *path for reloads.
 */
static struct config *load_config(const struct options *o, const char **path,
                                  struct config_errors *errs)
{
    *path = o->config;
    if (*path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        *path = DEFAULT_CONFIG;
    if (*path != NULL)
        return config_load(*path, errs);
    return config_load_string(config_default_text, "<built-in>", errs);
}

/*
 * The CPUs this process may run on, in order. Fills cpus (size CPU_SETSIZE)
 * and returns how many; 1 if the mask cannot be read.
 */
static int allowed_cpus(int *cpus)
{
    cpu_set_t set;
    int n = 0;

    if (sched_getaffinity(0, sizeof(set), &set) == -1) {
        cpus[0] = 0;
        return 1;
    }
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set))
            cpus[n++] = i;
    return n > 0 ? n : 1;
}

/*
 * Decide the worker count, each slot's CPU (used with cpu_affinity) and
 * each listener's stats row.
 */
static int plan_workers(struct supervisor *sup, const struct options *o)
{
    static int cpus[CPU_SETSIZE];

    sup->ncpus = allowed_cpus(cpus);
    sup->workers_override = o->workers;
    sup->nslots = sup_worker_count(sup, sup->cfg);
    sup->slots_seen = sup->nslots;
    sup->cpus = malloc(sizeof(int) * CONFIG_WORKERS_MAX);
    sup->rows = malloc(sizeof(int) * (sup->cfg->nlisteners + 1));
    if (sup->cpus == NULL || sup->rows == NULL)
        return -1;
    for (int i = 0; i < CONFIG_WORKERS_MAX; i++)
        sup->cpus[i] = cpus[i % sup->ncpus];
    for (size_t i = 0; i < sup->cfg->nlisteners; i++)
        sup->rows[i] = (int)i;
    return 0;
}

/* Map the stats region and describe this generation in its header. */
static int stats_open(struct supervisor *sup)
{
    struct stats_shm *s = stats_shm_create(&sup->stats_fd);

    if (s == NULL) {
        log_error("%s: shared memory for stats: %s", __func__,
                  strerror(errno));
        return -1;
    }
    sup->stats = s;
    sup->generation = 1;
    s->h.generation = sup->generation;
    s->h.workers = (uint32_t)sup->nslots;
    s->h.slots_seen = (uint32_t)sup->nslots;
    s->h.nlisteners = (uint32_t)sup->cfg->nlisteners;
    for (size_t i = 0; i < sup->cfg->nlisteners; i++)
        snprintf(s->h.listener[i], sizeof(s->h.listener[i]), "%s",
                 sup->cfg->listeners[i].name);
    return 0;
}

/*
 * The message bus, for as many slots as a reload may grow to without a
 * restart: twice the workers or the CPUs, whichever is more (at least 4,
 * at most CONFIG_WORKERS_MAX). Only the rings of endpoints in use ever
 * take memory. After an upgrade the new workers get a bus of their own:
 * the old weftd's workers keep theirs while they drain.
 */
static int bus_open(struct supervisor *sup)
{
    int nslots = WEFT_MIN(WEFT_MAX(2 * WEFT_MAX(sup->nslots, sup->ncpus), 4),
                          CONFIG_WORKERS_MAX);
    size_t ring = sup->cfg->bus_ring_size ? (size_t)sup->cfg->bus_ring_size
                                          : bus_ring_auto(nslots / 2);

    if (bus_create(&sup->bus, nslots, ring) == -1) {
        log_error("%s: shared memory for the message bus: %s", __func__,
                  strerror(errno));
        return -1;
    }
    atomic_store(&sup->bus.h->slots_now, (uint32_t)sup->nslots);
    return 0;
}

/*
 * Started by an upgrade: take over the old weftd's stats region (counts
 * go on from where they were; generation one more) and its sockets.
 */
static int adopt(struct supervisor *sup, struct upgrade_fds *in, char *err,
                 size_t errlen)
{
    bool steer;
    int *rows;

    sup->stats = stats_shm_adopt(in->stats);
    if (sup->stats == NULL) {
        snprintf(err, errlen, "the old weftd's stats region: %s",
                 errno == EPROTO ? "another layout than this weftd's (stop "
                                   "and start weftd to change to it)"
                                 : strerror(errno));
        return -1;
    }
    sup->stats_fd = in->stats;
    sup->generation = sup->stats->h.generation + 1;
    sup->stats->h.generation = sup->generation;
    sup->slots_seen = WEFT_MAX(sup->nslots, (int)sup->stats->h.slots_seen);
    sup->stats->h.slots_seen = (uint32_t)sup->slots_seen;
    sup->stats->h.workers = (uint32_t)sup->nslots;
    if ((rows = reload_rows(sup, sup->cfg)) == NULL) {
        snprintf(err, errlen, "too many listener names for the stats");
        return -1;
    }
    reload_name_rows(sup, sup->cfg, rows);
    free(sup->rows);
    sup->rows = rows;
    if (listen_adopt(sup->cfg, sup->nslots, in->fds, in->nfds, &sup->ls,
                     &steer, err, errlen) == -1)
        return -1;
    if (steer && listen_steer(&sup->ls, err, errlen) == -1)
        return -1;
    sup->ready_fd = in->ready;
    return 0;
}

/*
 * The listening sockets of a fresh start: those systemd passed (socket
 * activation), the others bound here. 0, or -1 with err.
 */
static int open_sockets(struct supervisor *sup, char *err, size_t errlen)
{
    struct activated act;
    int rc = activate_inherited(&act, err, errlen);

    if (rc == -1)
        return -1;
    if (rc == 1)
        log_info("%s: %zu socket(s) passed by systemd", __func__, act.n);
    rc = listen_open(sup->cfg, sup->nslots, rc == 1 ? &act : NULL, &sup->ls,
                     err, errlen);
    activate_free(&act);
    return rc;
}

static void upgrade_logged(void *arg, const char *err)
{
    (void)arg;
    if (err == NULL)
        log_info("%s: SIGUSR2: upgraded", __func__);
}

/* SIGUSR2: binary upgrade; the outcome goes to the log. */
static void usr2_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    const char *err;

    (void)loop;
    (void)revents;
    log_info("%s: SIGUSR2: upgrading the binary", __func__);
    if ((err = upgrade_start(s->data, upgrade_logged, NULL)) != NULL)
        log_error("%s: SIGUSR2: no upgrade: %s", __func__, err);
}

/* The path to exec on an upgrade: argv[0] made absolute now. */
static char *exe_path(const char *argv0)
{
    char buf[4096];
    ssize_t n;

    if (strchr(argv0, '/') != NULL)
        return realpath(argv0, NULL);
    n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

static void stop_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    struct supervisor *sup = s->data;

    (void)loop;
    (void)revents;
    /* SIGTERM drains for shutdown_timeout; Ctrl-C for a moment, and a
     * second Ctrl-C stops at once. */
    log_info("%s: %s: stopping", __func__, strsignal(s->signum));
    proc_stop(sup, s->signum == SIGINT ? STOP_GRACE_SIGINT_S
                                       : sup->cfg->shutdown_timeout);
}

static void reload_logged(void *arg, const char *err)
{
    (void)arg;
    if (err == NULL)
        log_info("%s: SIGHUP: reloaded", __func__);
}

/* SIGHUP: reload; the outcome goes to the log. */
static void hup_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    struct supervisor *sup = s->data;
    struct config_errors errs;
    const char *err;

    (void)loop;
    (void)revents;
    log_info("%s: SIGHUP: reloading the configuration", __func__);
    err = reload_start(sup, reload_logged, NULL, &errs);
    if (err != NULL)
        log_error("%s: SIGHUP: no reload: %s", __func__, err);
}

/* SIGUSR1: reopen the log file, for logrotate. */
static void usr1_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)revents;
    proc_reopen_logs(s->data);
}

static void watch_signals(struct supervisor *sup)
{
    ev_signal_init(&sup->sigusr2, usr2_cb, SIGUSR2);
    sup->sigusr2.data = sup;
    ev_signal_start(sup->loop, &sup->sigusr2);
    ev_signal_init(&sup->sigusr1, usr1_cb, SIGUSR1);
    sup->sigusr1.data = sup;
    ev_signal_start(sup->loop, &sup->sigusr1);
    ev_signal_init(&sup->sighup, hup_cb, SIGHUP);
    sup->sighup.data = sup;
    ev_signal_start(sup->loop, &sup->sighup);
    ev_signal_init(&sup->sigterm, stop_cb, SIGTERM);
    ev_signal_init(&sup->sigint, stop_cb, SIGINT);
    sup->sigterm.data = sup;
    sup->sigint.data = sup;
    ev_signal_start(sup->loop, &sup->sigterm);
    ev_signal_start(sup->loop, &sup->sigint);
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct config_errors errs;
    struct supervisor sup = { 0 };
    char err[512];
    int rc = 1;

    parse_args(argc, argv, &o);
    sup.cfg = load_config(&o, &sup.config_path, &errs);
    if (sup.cfg == NULL) {
        fputs(errs.text, stderr);
        return 1;
    }
    if (o.test) {
        printf("configuration OK\n");
        config_free(sup.cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_set_role(-1);
    if (log_open_file(sup.cfg->log_file) == -1) {
        fprintf(stderr, "weftd: log_file %s: %s\n", sup.cfg->log_file,
                strerror(errno));
        config_free(sup.cfg);
        return 1;
    }
    notify_init();
    log_set_level((enum log_level)sup.cfg->log_level);
    log_set_syslog(sup.cfg->log_syslog);
    /* Before anything is opened or forked: every process inherits it. */
    if (privs_start(sup.cfg, err, sizeof(err)) == -1) {
        log_error("%s: %s", __func__, err);
        config_free(sup.cfg);
        return 1;
    }
    privs_chown_log(sup.cfg);
    if (plan_workers(&sup, &o) == -1)
        fatal("%s: out of memory", __func__);
    sup.exe = exe_path(argv[0]);
    sup.argv = argv;
    sup.stats_fd = -1;
    sup.bus.fd = -1;
    sup.ready_fd = -1;
    static struct upgrade_fds in;
    bool upgraded = upgrade_inherited(&in);
    if (upgraded && adopt(&sup, &in, err, sizeof(err)) == -1) {
        log_error("%s: upgrade: %s", __func__, err);
        goto out;
    }
    if (!upgraded && stats_open(&sup) == -1)
        goto out;
    if (bus_open(&sup) == -1)
        goto out;
    if (!upgraded && open_sockets(&sup, err, sizeof(err)) == -1) {
        log_error("%s: %s", __func__, err);
        goto out;
    }
    sup.loop = ev_default_loop(EVFLAG_AUTO);
    if (sup.loop == NULL) {
        log_error("%s: cannot create the event loop", __func__);
        goto out;
    }
    sup.control = control_open(&sup, upgraded ? in.control : -1,
                               upgraded ? in.admin : -1, err, sizeof(err));
    if (sup.control == NULL) {
        log_error("%s: %s", __func__, err);
        goto out;
    }
    watch_signals(&sup);
    if (tickets_start(&sup) == -1)
        goto out;
    log_info("%s: weftd %s: %s, %d workers, %zu listeners", __func__,
             PACKAGE_VERSION, sup.cfg->path, sup.nslots, sup.cfg->nlisteners);
    events_add(&sup.events, upgraded ? "upgrade" : "start",
               "weftd %s, generation %u, %d workers", PACKAGE_VERSION,
               sup.generation, sup.nslots);
    if (proc_start(&sup) == -1)
        fatal("%s: out of memory", __func__);
    pidfile_write(&sup);
    upgrade_announce_when_ready(&sup);
    /* An upgraded weftd is not the service's main process yet: the old
     * one says READY=1 with our MAINPID once we serve. */
    if (!upgraded)
        notify_ready_when_serving(&sup);
    ev_run(sup.loop, 0);
    log_info("%s: all workers stopped; exiting", __func__);
    rc = 0;
    pidfile_remove(&sup);
out:
    control_close(sup.control);
    listen_close(&sup.ls);
    proc_free(&sup);
    bus_destroy(&sup.bus);
    free(sup.cpus);
    free(sup.rows);
    free(sup.exe);
    config_free(sup.cfg);
    return rc;
}
