#include "supervisor/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int listen_open(const struct config *cfg, int nslots, struct listen_set *set,
                char *err, size_t errlen)
{
    char a[ADDR_STRLEN];
    size_t n = cfg->nlisteners;
    const struct listener_conf *lc = NULL;

    if (set_alloc(set, n, nslots, err, errlen) == -1)
        return -1;
    for (size_t l = 0; l < n; l++) {
        lc = &cfg->listeners[l];
        addr_format(&lc->addr, a, sizeof(a));
        if (probe_free(&lc->addr) == -1)
            goto fail;
        for (int s = 0; s < nslots; s++) {
            int fd = open_one(lc);
            if (fd == -1)
                goto fail;
            set->fds[(size_t)s * n + l] = fd;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "listener %s: %s: %s%s", lc->name, a,
             strerror(errno),
             errno == EADDRINUSE ? " (another process holds the port)" : "");
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
            close(cur->fds[i]);
    if (next == cur)
        return;
    for (size_t i = 0; i < set_size(next); i++)
        if (next->fds[i] != -1 && !set_holds(next, slot, next->fds[i]) &&
            !set_holds(cur, -1, next->fds[i]))
            close(next->fds[i]);
}

void listen_drop(struct listen_set *set, const struct listen_set *keep)
{
    /* Highest slots first: closing the last socket of a reuseport group
     * moves no other socket to a new index, so steering stays right. */
    for (size_t i = set_size(set); set->fds != NULL && i-- > 0;)
        if (set->fds[i] != -1 && !set_holds(keep, -1, set->fds[i]))
            close(set->fds[i]);
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
    char a[ADDR_STRLEN];
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
                (*fd = open_one(lc)) == -1) {
                snprintf(err, errlen, "listener %s: %s: %s%s", lc->name,
                         addr_format(&lc->addr, a, sizeof(a)),
                         strerror(errno),
                         errno == EADDRINUSE
                             ? " (another process holds the port)"
                             : "");
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
                close(set->fds[i]);
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
            if ((*fd = open_one(lc)) == -1) {
                snprintf(err, errlen, "listener %s: %s: %s", lc->name,
                         addr_format(&lc->addr, a, sizeof(a)),
                         strerror(errno));
                free(have);
                return -1;
            }
            *steer = true; /* a new socket joins an existing group */
        }
    }
    /* Sockets this configuration no longer has: highest first. */
    for (size_t i = nfds; i-- > 0;)
        if (fds[i] != -1) {
            close(fds[i]);
            fds[i] = -1;
            *steer = true;
        }
    free(have);
    return 0;
}
