#include "supervisor/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/util.h"

static int set_opt(int fd, int level, int name)
{
    int one = 1;
    return setsockopt(fd, level, name, &one, sizeof(one));
}

/*
 * Bind a plain socket (no SO_REUSEPORT) to the address and close it: with
 * SO_REUSEPORT alone, a port held by another reuseport process of the same
 * user would be silently shared instead of reported as in use.
 */
static int probe_free(const struct addr *a)
{
    int type = a->kind == ADDR_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(a->ss.ss_family, type | SOCK_CLOEXEC, 0);
    int rc = -1;

    if (fd == -1)
        return -1;
    if (a->ss.ss_family == AF_INET6 && set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY))
        goto done;
    if (type == SOCK_STREAM && set_opt(fd, SOL_SOCKET, SO_REUSEADDR) == -1)
        goto done;
    rc = bind(fd, (const struct sockaddr *)&a->ss, a->len);
done:
    if (rc == -1) {
        close_keep_errno(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/*
 * The settings of a TCP listening socket that a reload may change:
 * backlog and TCP_DEFER_ACCEPT (both take effect in place). -1 with errno.
 */
static int listen_tune(int fd, const struct listener_conf *l)
{
    int defer = l->defer_accept;

    if (listen(fd, l->backlog) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
                   sizeof(defer)) == -1)
        return -1;
    return 0;
}

/* One bound (and, for TCP, listening) reuseport socket; -1 with errno. */
static int open_one(const struct listener_conf *l)
{
    const struct addr *a = &l->addr;
    int tcp = a->kind == ADDR_TCP;
    int fd = socket(a->ss.ss_family,
                    (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
                        SOCK_CLOEXEC,
                    0);

    if (fd == -1)
        return -1;
    if (set_opt(fd, SOL_SOCKET, SO_REUSEPORT) == -1 ||
        (tcp && set_opt(fd, SOL_SOCKET, SO_REUSEADDR) == -1) ||
        /* Accepted sockets inherit TCP_NODELAY: no syscall per connection. */
        (tcp && set_opt(fd, IPPROTO_TCP, TCP_NODELAY) == -1) ||
        (a->ss.ss_family == AF_INET6 &&
         set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY) == -1) ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
        (tcp && listen_tune(fd, l) == -1)) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* Does fd have SO_REUSEPORT set? */
static bool has_reuseport(int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);

    return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on;
}

/*
 * The socket of slot s > 0 of listener lc whose slot-0 socket is first: a
 * new reuseport socket joining first's group; or first itself, shared by
 * the slots, when first has no SO_REUSEPORT (passed by systemd without
 * ReusePort=yes) or its group refuses us (created by another user: the
 * kernel only groups sockets of one uid). -1 with errno.
 */
static int open_slot(const struct listener_conf *lc, int first, int s)
{
    int fd;

    if (!has_reuseport(first))
        return first;
    fd = open_one(lc);
    if (fd == -1 && errno == EADDRINUSE) {
        if (s == 1)
            log_warn("%s: listener %s: cannot join the reuseport group of "
                     "the passed socket (another user's?): every worker "
                     "accepts on that one socket", __func__, lc->name);
        return first;
    }
    return fd;
}

/*
 * Close fds[i] unless an earlier entry is the same descriptor (slots
 * sharing one passed socket): each descriptor is closed once.
 */
static void close_once(const int *fds, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (fds[j] == fds[i])
            return;
    close(fds[i]);
}

/* An empty set (every entry -1) of n listeners by nslots; -1 with err. */
static int set_alloc(struct listen_set *set, size_t n, int nslots, char *err,
                     size_t errlen)
{
    set->nlisteners = n;
    set->nslots = nslots;
    set->fds = malloc(sizeof(int) * (n ? n : 1) * (size_t)nslots);
    if (set->fds == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n * (size_t)nslots; i++)
        set->fds[i] = -1;
    return 0;
}

static int socket_addr(int fd, struct addr *a);

/*
 * The index in act of the socket passed for lc (by name, or by address
 * when systemd gave no names), -1 when none, -2 with err when two are.
 */
static int passed_for(const struct activated *act,
                      const struct listener_conf *lc, char *err,
                      size_t errlen)
{
    int found = -1;
    struct addr a;

    for (size_t i = 0; act != NULL && i < act->n; i++) {
        bool match = act->names[i] != NULL
                         ? strcmp(act->names[i], lc->name) == 0
                         : socket_addr(act->fds[i], &a) == 0 &&
                               addr_equal(&a, &lc->addr);
        if (!match)
            continue;
        if (found != -1) {
            snprintf(err, errlen, "listener %s: systemd passed two sockets "
                     "for it (descriptors %d and %d)", lc->name,
                     act->fds[found], act->fds[i]);
            return -2;
        }
        found = (int)i;
    }
    return found;
}

/*
 * Take the passed socket fd for lc: it must be of lc's kind and bound to
 * lc's address; it is made non-blocking (workers share it) and tuned as
 * the config says. 0, or -1 with err.
 */
static int take_passed(const struct listener_conf *lc, int fd, char *err,
                       size_t errlen)
{
    char want[ADDR_STRLEN], got[ADDR_STRLEN];
    struct addr a;
    int flags;

    if (socket_addr(fd, &a) == -1) {
        snprintf(err, errlen, "listener %s: the descriptor %d systemd "
                 "passed for it is not a socket: %s", lc->name, fd,
                 strerror(errno));
        return -1;
    }
    addr_format(&lc->addr, want, sizeof(want));
    if (!addr_equal(&a, &lc->addr)) {
        snprintf(err, errlen, "listener %s: the socket systemd passed for "
                 "it (descriptor %d) is %s, the listener is %s", lc->name,
                 fd, addr_format(&a, got, sizeof(got)), want);
        return -1;
    }
    if ((flags = fcntl(fd, F_GETFL)) == -1 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
        (lc->addr.kind == ADDR_TCP &&
         (set_opt(fd, IPPROTO_TCP, TCP_NODELAY) == -1 ||
          listen_tune(fd, lc) == -1))) {
        snprintf(err, errlen, "listener %s: %s: passed socket: %s",
                 lc->name, want, strerror(errno));
        return -1;
    }
    return 0;
}

/* Every passed socket must belong to a listener; -1 with err if not. */
static int passed_all_used(const struct activated *act,
                           const struct listen_set *set, char *err,
                           size_t errlen)
{
    for (size_t i = 0; act != NULL && i < act->n; i++) {
        bool used = false;
        for (size_t l = 0; l < set->nlisteners; l++)
            used |= set->fds[l] == act->fds[i];
        if (!used) {
            snprintf(err, errlen, "the socket systemd passed as descriptor "
                     "%d (named '%s') matches no listener: its "
                     "FileDescriptorName= must be a listener's name",
                     act->fds[i], act->names[i] ? act->names[i] : "");
            return -1;
        }
    }
    return 0;
}

/*
 * The sockets of listener l for every slot: the passed one (index p in
 * act) or a new one for slot 0, then the others. -1 with errno (or with
 * err already written, *said set).
 */
static int open_listener(const struct config *cfg, size_t l,
                         const struct activated *act, int p,
                         struct listen_set *set, char *err, size_t errlen,
                         bool *said)
{
    const struct listener_conf *lc = &cfg->listeners[l];
    size_t n = cfg->nlisteners;
    int first;

    if (p >= 0) {
        if (take_passed(lc, act->fds[p], err, errlen) == -1) {
            *said = true;
            return -1;
        }
        first = act->fds[p];
    } else if (probe_free(&lc->addr) == -1 || (first = open_one(lc)) == -1) {
        return -1;
    }
    set->fds[l] = first;
    for (int s = 1; s < set->nslots; s++) {
        int fd = open_slot(lc, first, s);
        if (fd == -1)
            return -1;
        set->fds[(size_t)s * n + l] = fd;
    }
    return 0;
}

/* Why lc could not be opened, from errno, into err. */
static void open_error(const struct listener_conf *lc, char *err,
                       size_t errlen)
{
    char a[ADDR_STRLEN];

    snprintf(err, errlen, "listener %s: %s: %s%s", lc->name,
             addr_format(&lc->addr, a, sizeof(a)), strerror(errno),
             errno == EADDRINUSE ? " (another process holds the port)" : "");
}

int listen_open(const struct config *cfg, int nslots,
                const struct activated *act, struct listen_set *set,
                char *err, size_t errlen)
{
    size_t n = cfg->nlisteners;
    bool said = false;

    if (set_alloc(set, n, nslots, err, errlen) == -1)
        return -1;
    for (size_t l = 0; l < n; l++) {
        const struct listener_conf *lc = &cfg->listeners[l];
        int p = passed_for(act, lc, err, errlen);
        if (p == -2 ||
            open_listener(cfg, l, act, p, set, err, errlen, &said) == -1) {
            if (p != -2 && !said)
                open_error(lc, err, errlen);
            goto fail;
        }
    }
    if (passed_all_used(act, set, err, errlen) == 0)
        return 0;
fail:
    listen_close(set);
    return -1;
}

const int *listen_slot_fds(const struct listen_set *set, int slot)
{
    return &set->fds[(size_t)slot * set->nlisteners];
}

static size_t set_size(const struct listen_set *set)
{
    return set->nlisteners * (size_t)set->nslots;
}

/* Is fd one of set's sockets of slot (slot -1: of any slot)? */
static bool set_holds(const struct listen_set *set, int slot, int fd)
{
    for (size_t i = 0; set != NULL && i < set_size(set); i++)
        if (set->fds[i] == fd &&
            (slot == -1 || (int)(i / set->nlisteners) == slot))
            return true;
    return false;
}

void listen_close_others(const struct listen_set *cur,
                         const struct listen_set *next, int slot)
{
    for (size_t i = 0; i < set_size(cur); i++)
        if (cur->fds[i] != -1 && !set_holds(next, slot, cur->fds[i]))
            close_once(cur->fds, i);
    if (next == cur)
        return;
    for (size_t i = 0; i < set_size(next); i++)
        if (next->fds[i] != -1 && !set_holds(next, slot, next->fds[i]) &&
            !set_holds(cur, -1, next->fds[i]))
            close_once(next->fds, i);
}

void listen_drop(struct listen_set *set, const struct listen_set *keep)
{
    /* Highest slots first: closing the last socket of a reuseport group
     * moves no other socket to a new index, so steering stays right. */
    for (size_t i = set_size(set); set->fds != NULL && i-- > 0;)
        if (set->fds[i] != -1 && !set_holds(keep, -1, set->fds[i]))
            close_once(set->fds, i);
    free(set->fds);
    set->fds = NULL;
}

/*
 * Send new connections and datagrams of each listener only to the first
 * nslots sockets of its group: a classic BPF program picking one at
 * random. The sockets were added in slot order, so index i is slot i.
 */
int listen_steer(const struct listen_set *set, char *err, size_t errlen)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)set->nslots),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = { .len = countof(code), .filter = code };

    for (size_t l = 0; l < set->nlisteners; l++) {
        /* One socket shared by the slots (passed by systemd): no group. */
        if (!has_reuseport(set->fds[l]) ||
            (set->nslots > 1 &&
             set->fds[l] == set->fds[set->nlisteners + l]))
            continue;
        if (setsockopt(set->fds[l], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
                       &prog, sizeof(prog)) == -1) {
            snprintf(err, errlen, "steering connections to %d workers: %s",
                     set->nslots, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The listener of cfg listening on a, or -1. */
static int find_addr(const struct config *cfg, const struct addr *a)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (addr_equal(&cfg->listeners[i].addr, a))
            return (int)i;
    return -1;
}

int listen_reuse(const struct config *cfg_old, const struct listen_set *old,
                 const struct config *cfg, int nslots, struct listen_set *set,
                 char *err, size_t errlen)
{
    size_t n = cfg->nlisteners;

    if (set_alloc(set, n, nslots, err, errlen) == -1)
        return -1;
    for (size_t l = 0; l < n; l++) {
        const struct listener_conf *lc = &cfg->listeners[l];
        int o = find_addr(cfg_old, &lc->addr);
        for (int s = 0; s < nslots; s++) {
            int *fd = &set->fds[(size_t)s * n + l];
            if (o != -1 && s < old->nslots) {
                *fd = old->fds[(size_t)s * old->nlisteners + (size_t)o];
                /* A listening socket takes a new backlog in place. */
                if (lc->addr.kind == ADDR_TCP)
                    listen_tune(*fd, lc);
                continue;
            }
            if ((s == 0 && o == -1 && probe_free(&lc->addr) == -1) ||
                (*fd = s == 0 ? open_one(lc)
                              : open_slot(lc, set->fds[l], s)) == -1) {
                open_error(lc, err, errlen);
                listen_drop(set, old);
                return -1;
            }
        }
    }
    return 0;
}

void listen_close(struct listen_set *set)
{
    if (set->fds != NULL)
        for (size_t i = 0; i < set->nlisteners * (size_t)set->nslots; i++)
            if (set->fds[i] != -1)
                close_once(set->fds, i);
    free(set->fds);
    set->fds = NULL;
}

/* The address a listening socket is bound to, as a config would say it. */
static int socket_addr(int fd, struct addr *a)
{
    int type;
    socklen_t len = sizeof(type);

    memset(a, 0, sizeof(*a));
    a->len = sizeof(a->ss);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
        getsockname(fd, (struct sockaddr *)&a->ss, &a->len) == -1)
        return -1;
    a->kind = type == SOCK_DGRAM ? ADDR_UDP : ADDR_TCP;
    return 0;
}

int listen_adopt(const struct config *cfg, int nslots, int *fds, size_t nfds,
                 struct listen_set *set, bool *steer, char *err,
                 size_t errlen)
{
    struct addr *have = calloc(nfds ? nfds : 1, sizeof(*have));
    size_t n = cfg->nlisteners;
    char a[ADDR_STRLEN];

    if (have == NULL || set_alloc(set, n, nslots, err, errlen) == -1) {
        free(have);
        return -1;
    }
    for (size_t i = 0; i < nfds; i++)
        if (socket_addr(fds[i], &have[i]) == -1)
            have[i].len = 0;
    *steer = false;
    for (size_t l = 0; l < n; l++) {
        const struct listener_conf *lc = &cfg->listeners[l];
        size_t next = 0;
        for (int s = 0; s < nslots; s++) {
            int *fd = &set->fds[(size_t)s * n + l];
            /* The next inherited socket of this address, in slot order. */
            while (next < nfds && (fds[next] == -1 ||
                                   !addr_equal(&have[next], &lc->addr)))
                next++;
            if (next < nfds) {
                *fd = fds[next];
                fds[next++] = -1;
                /* The new binary's config may tune it differently. */
                if (lc->addr.kind == ADDR_TCP)
                    listen_tune(*fd, lc);
                continue;
            }
            if ((*fd = s == 0 ? open_one(lc)
                              : open_slot(lc, set->fds[l], s)) == -1) {
                snprintf(err, errlen, "listener %s: %s: %s", lc->name,
                         addr_format(&lc->addr, a, sizeof(a)),
                         strerror(errno));
                free(have);
                return -1;
            }
            /* A new socket joins an existing group (not a shared one). */
            *steer |= s == 0 || *fd != set->fds[l];
        }
    }
    /* Sockets this configuration no longer has: highest first. */
    for (size_t i = nfds; i-- > 0;) {
        int fd = fds[i];
        if (fd == -1)
            continue;
        /* A shared socket is listed once per slot it served. */
        for (size_t j = 0; j < nfds; j++)
            if (fds[j] == fd)
                fds[j] = -1;
        if (!set_holds(set, -1, fd))
            close(fd);
        *steer = true;
    }
    free(have);
    return 0;
}
