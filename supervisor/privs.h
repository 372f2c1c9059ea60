/*
 * Least privilege and limits: the supervisor stays root (it binds on
 * reload, owns the control socket, reads TLS keys on reload); each worker
 * drops to cfg->user right after fork, before any protocol code runs.
 */
#ifndef WEFT_SUPERVISOR_PRIVS_H
#define WEFT_SUPERVISOR_PRIVS_H

#include <stddef.h>

#include "shared/conf.h"

/*
 * Whether this process can run cfg's workers as cfg->user: NULL, or a
 * static reason (user set to another user and weftd not root).
 */
const char *privs_check(const struct config *cfg);

/*
 * At start, before forking: refuse what privs_check refuses, warn when
 * root without user, raise RLIMIT_NOFILE. Returns 0, or -1 with the
 * reason in err.
 */
int privs_start(const struct config *cfg, char *err, size_t errlen);

/*
 * Raise RLIMIT_NOFILE to n (the soft limit; the hard one too when root).
 * Returns 0, or -1 with the reason in err.
 */
int privs_rlimit_nofile(long n, char *err, size_t errlen);

/*
 * The log file (stderr, when log_file is set) belongs to cfg->user, who
 * must reopen it after SIGUSR1. Logs a failure; returns 0 or -1.
 */
int privs_chown_log(const struct config *cfg);

/*
 * In a new worker: raise RLIMIT_NOFILE to what cfg asks (a reload may
 * have changed it), become cfg->user (groups, gid, uid, in that order),
 * check that root cannot be regained, set no_new_privs, and make the
 * process dumpable again if cfg->worker_core_dumps. Does nothing but the
 * last two when cfg->user is NULL or weftd is not root. Returns 0, or -1
 * after logging.
 */
int privs_drop(const struct config *cfg);

#endif
