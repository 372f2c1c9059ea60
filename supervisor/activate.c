/*
 * Socket activation (sd_listen_fds(3)), read without libsystemd: when
 * LISTEN_PID is our pid, LISTEN_FDS sockets start at descriptor 3, named
 * in order by the colon-separated LISTEN_FDNAMES (FileDescriptorName= in
 * the .socket unit). listen.c matches them to listeners by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/super.h"

#define LISTEN_FDS_START 3

static void activate_unsetenv(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* A positive decimal number from s (all of it), or -1. */
static long parse_count(const char *s)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

/* Split LISTEN_FDNAMES into act->names; -1 with err. */
static int split_names(struct activated *act, const char *list, char *err,
                       size_t errlen)
{
    size_t i = 0;

    for (const char *p = list; i < act->n; i++) {
        size_t len = strcspn(p, ":");
        if ((act->names[i] = strndup(p, len)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p += len;
        if (*p == '\0')
            break;
        p++;
    }
    if (i + 1 != act->n) {
        snprintf(err, errlen, "LISTEN_FDNAMES '%s' does not name exactly "
                 "LISTEN_FDS=%zu sockets", list, act->n);
        return -1;
    }
    return 0;
}

int activate_inherited(struct activated *act, char *err, size_t errlen)
{
    long pid = parse_count(getenv("LISTEN_PID"));
    long n = parse_count(getenv("LISTEN_FDS"));
    const char *names = getenv("LISTEN_FDNAMES");
    int rc = -1;

    memset(act, 0, sizeof(*act));
    /* Meant for another process (we were exec'd by the one it was for). */
    if (pid != (long)getpid() || n <= 0) {
        activate_unsetenv();
        return 0;
    }
    if (n > ACTIVATE_FDS_MAX) {
        snprintf(err, errlen, "LISTEN_FDS: %ld sockets, at most %d", n,
                 ACTIVATE_FDS_MAX);
        goto out;
    }
    act->n = (size_t)n;
    for (size_t i = 0; i < act->n; i++) {
        act->fds[i] = LISTEN_FDS_START + (int)i;
        /* Ours: no worker or upgraded weftd inherits them by accident. */
        if (fcntl(act->fds[i], F_SETFD, FD_CLOEXEC) == -1) {
            snprintf(err, errlen, "LISTEN_FDS: descriptor %d: %s",
                     act->fds[i], strerror(errno));
            goto out;
        }
    }
    if (names != NULL && split_names(act, names, err, errlen) == -1)
        goto out;
    rc = 1;
out:
    if (rc == -1)
        activate_free(act);
    activate_unsetenv();
    return rc;
}

/* Free the names; the descriptors are the caller's (listen.c). */
void activate_free(struct activated *act)
{
    for (size_t i = 0; i < act->n; i++)
        free(act->names[i]);
    memset(act, 0, sizeof(*act));
}
