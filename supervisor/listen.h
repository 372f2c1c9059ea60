/*
 * The listening sockets, owned by the supervisor: for every listener, one
 * SO_REUSEPORT socket per worker slot, opened before any worker is forked
 * and kept open for the supervisor's life, so a replaced worker inherits the
 * very socket (and accept queue) of the worker before it.
 */
#ifndef WEFT_SUPERVISOR_LISTEN_H
#define WEFT_SUPERVISOR_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/conf.h"

struct listen_set {
    int *fds; /* fds[slot * nlisteners + listener] */
    size_t nlisteners;
    int nslots;
};

/* Sockets passed by systemd (supervisor/activate.c). */
#define ACTIVATE_FDS_MAX 256

struct activated {
    int fds[ACTIVATE_FDS_MAX];
    char *names[ACTIVATE_FDS_MAX]; /* NULL when LISTEN_FDNAMES is unset */
    size_t n;
};

/*
 * Open every listener's sockets for nslots slots. With act (may be NULL),
 * a listener that systemd passed a socket for (by name: the socket's
 * FileDescriptorName= is the listener's name; by address when systemd
 * gave no names) uses it for slot 0, and for the other slots new
 * SO_REUSEPORT sockets in its group when it has SO_REUSEPORT, else the
 * same socket. A passed socket that matches no listener, or not the
 * address of its listener, is an error. Returns 0, or -1 with a message
 * in err and nothing left open.
 */
int listen_open(const struct config *cfg, int nslots,
                const struct activated *act, struct listen_set *set,
                char *err, size_t errlen);

/* The sockets of one slot, one per listener in config order. */
const int *listen_slot_fds(const struct listen_set *set, int slot);

/*
 * In a new worker: close every socket of cur and of next (the set the
 * worker runs on; may be cur) but next's sockets of `slot`.
 */
void listen_close_others(const struct listen_set *cur,
                         const struct listen_set *next, int slot);

/*
 * The sockets of a reloaded configuration for nslots slots: those of
 * listeners whose address cfg_old already has, in slots old has, are
 * taken from old (same descriptors, so nothing queued is lost; the backlog
 * is updated), the others opened (appended to the reuseport group).
 * Returns 0, or -1 with a message and nothing opened.
 */
int listen_reuse(const struct config *cfg_old, const struct listen_set *old,
                 const struct config *cfg, int nslots, struct listen_set *set,
                 char *err, size_t errlen);

/*
 * Steer each listener's traffic to the first set->nslots sockets of its
 * reuseport group (after the worker count changed). 0, or -1 with err.
 */
int listen_steer(const struct listen_set *set, char *err, size_t errlen);

/*
 * The sockets of an upgraded weftd: for each listener and slot of cfg,
 * the next of the inherited fds[0..nfds) bound to its address (they come
 * in slot order), or a new socket. Inherited sockets left over are closed
 * and their entries set to -1. *steer says whether a group changed size
 * (listen_steer). Returns 0, or -1 with a message.
 */
int listen_adopt(const struct config *cfg, int nslots, int *fds, size_t nfds,
                 struct listen_set *set, bool *steer, char *err,
                 size_t errlen);

/*
 * Forget set, closing only the sockets that keep (may be NULL) does not
 * hold.
 */
void listen_drop(struct listen_set *set, const struct listen_set *keep);

void listen_close(struct listen_set *set);

#endif
