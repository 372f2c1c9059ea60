/*
 * The systemd notification protocol (sd_notify(3)), implemented here
 * rather than linked from libsystemd: it is one datagram of "KEY=VALUE"
 * lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@'
 * names one in the abstract namespace), stable for a decade, and weftd
 * should not depend on a library for that. Without $NOTIFY_SOCKET every
 * function here does nothing.
 *
 * The variable is read once at start and removed from the environment, so
 * nothing weftd starts inherits it; only a binary upgrade gets it back
 * (notify_pass_on), since the new weftd becomes the service's main process.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"
#include "supervisor/super.h"

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

void notify_init(void)
{
    const char *v = getenv("NOTIFY_SOCKET");

    if (v != NULL && (v[0] == '/' || v[0] == '@') &&
        strlen(v) < sizeof(notify_path))
        snprintf(notify_path, sizeof(notify_path), "%s", v);
    else if (v != NULL)
        log_warn("%s: NOTIFY_SOCKET '%s' is not a usable socket path; "
                 "not notifying", __func__, v);
    unsetenv("NOTIFY_SOCKET");
}

bool notify_enabled(void)
{
    return notify_path[0] != '\0';
}

void notify_pass_on(void)
{
    if (notify_enabled())
        setenv("NOTIFY_SOCKET", notify_path, 1);
}

/* Send text as one datagram to the notify socket; -1 logged. */
static int notify_send(const char *text)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(notify_path);
    socklen_t len;
    int fd, rc;

    memcpy(sun.sun_path, notify_path, n);
    if (notify_path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract: the length says where it ends */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                      (notify_path[0] == '@' ? 0 : 1));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        log_warn("%s: socket: %s", __func__, strerror(errno));
        return -1;
    }
    rc = (int)sendto(fd, text, strlen(text), MSG_NOSIGNAL,
                     (struct sockaddr *)&sun, len);
    if (rc == -1)
        log_warn("%s: %s: %s", __func__, notify_path, strerror(errno));
    close(fd);
    return rc == -1 ? -1 : 0;
}

/* Format and send one notification (nothing without NOTIFY_SOCKET). */
static void notify_sendf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!notify_enabled())
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    notify_send(buf);
}

void notify_ready(const struct supervisor *sup, const char *what)
{
    notify_sendf("READY=1\nMAINPID=%ld\nSTATUS=%s%sgeneration %u, %d "
                 "workers\n",
                 (long)getpid(), what ? what : "", what ? "; " : "",
                 sup->generation, sup->nslots);
}

void notify_reloading(void)
{
    struct timespec ts;

    /* systemd >= 253 wants the time the reload began, to tell this
     * reload's READY=1 from an earlier one's. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    notify_sendf("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu\n",
                 (unsigned long long)ts.tv_sec * 1000000ULL +
                     (unsigned long long)ts.tv_nsec / 1000ULL);
}

void notify_stopping(void)
{
    notify_sendf("STOPPING=1\nSTATUS=stopping\n");
}

void notify_status(const char *status)
{
    notify_sendf("STATUS=%s\n", status);
}

void notify_main_pid(const struct supervisor *sup, pid_t pid)
{
    notify_sendf("MAINPID=%ld\nREADY=1\nSTATUS=upgraded to pid %ld; "
                 "generation %u\n",
                 (long)pid, (long)pid, sup->generation + 1);
}

/* The first generation serves when every slot's worker runs. */
static void notify_ready_poll_cb(struct ev_loop *loop, ev_timer *t,
                                 int revents)
{
    struct supervisor *sup = t->data;

    (void)revents;
    if (!proc_all_serving(sup))
        return;
    ev_timer_stop(loop, t);
    if (!sup->stopping)
        notify_ready(sup, NULL);
}

void notify_ready_when_serving(struct supervisor *sup)
{
    if (!notify_enabled())
        return;
    ev_timer_init(&sup->notify_poll, notify_ready_poll_cb, 0.01, 0.01);
    sup->notify_poll.data = sup;
    ev_timer_start(sup->loop, &sup->notify_poll);
}
