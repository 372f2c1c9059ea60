#include "supervisor/privs.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "shared/log.h"

const char *privs_check(const struct config *cfg)
{
    static char why[160];
    struct rlimit rl;

    if (cfg->user != NULL && geteuid() != 0 && cfg->uid != geteuid())
        return "user requires starting as root";
    /* Root may raise the hard limit; anyone else stops at it. */
    if (cfg->rlimit_nofile > 0 && geteuid() != 0 &&
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < (rlim_t)cfg->rlimit_nofile) {
        snprintf(why, sizeof(why),
                 "rlimit_nofile %ld: the hard limit is %llu (raise it as "
                 "root or in the service unit)",
                 cfg->rlimit_nofile, (unsigned long long)rl.rlim_max);
        return why;
    }
    return NULL;
}

/* The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open), or -1. */
static long nr_open(void)
{
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    long n = -1;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &n) != 1)
        n = -1;
    fclose(f);
    return n;
}

int privs_rlimit_nofile(long n, char *err, size_t errlen)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)n;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        snprintf(err, errlen, "rlimit_nofile: %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
        return 0; /* never lowered */
    bool above = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want;
    if (above && geteuid() != 0)
        goto hard;
    rl.rlim_cur = want;
    if (above)
        rl.rlim_max = want; /* root; needs CAP_SYS_RESOURCE all the same */
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        return 0;
    long ceiling = nr_open();
    if (errno == EPERM && ceiling > 0 && n > ceiling) {
        snprintf(err, errlen,
                 "rlimit_nofile %ld: above the kernel's fs.nr_open (%ld)", n,
                 ceiling);
        return -1;
    }
    if (errno != EPERM) {
        snprintf(err, errlen, "rlimit_nofile %ld: %s", n, strerror(errno));
        return -1;
    }
    getrlimit(RLIMIT_NOFILE, &rl);
hard:
    snprintf(err, errlen,
             "rlimit_nofile %ld: the hard limit is %llu (raise it as root or "
             "in the service unit)",
             n, (unsigned long long)rl.rlim_max);
    return -1;
}

int privs_start(const struct config *cfg, char *err, size_t errlen)
{
    const char *why = privs_check(cfg);

    if (why != NULL) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (cfg->user == NULL && geteuid() == 0)
        log_warn("%s: running as root with no 'user': the workers run "
                 "protocol code as root too", __func__);
    if (cfg->rlimit_nofile > 0 &&
        privs_rlimit_nofile(cfg->rlimit_nofile, err, errlen) == -1)
        return -1;
    return 0;
}

int privs_chown_log(const struct config *cfg)
{
    if (cfg->log_file == NULL || cfg->user == NULL || geteuid() != 0)
        return 0;
    if (fchown(STDERR_FILENO, cfg->uid, (gid_t)-1) == -1) {
        log_error("%s: %s: %s", __func__, cfg->log_file, strerror(errno));
        return -1;
    }
    return 0;
}

/* The supplementary groups: group alone if set, else the user's own. */
static int privs_set_groups(const struct config *cfg)
{
    if (cfg->has_group) {
        if (setgroups(1, &cfg->gid) == -1) {
            log_error("%s: setgroups %u: %s", __func__, (unsigned)cfg->gid,
                      strerror(errno));
            return -1;
        }
        return 0;
    }
    if (initgroups(cfg->user, cfg->gid) == -1) {
        log_error("%s: initgroups %s: %s", __func__, cfg->user,
                  strerror(errno));
        return -1;
    }
    return 0;
}

/* Become cfg->user for good: real, effective and saved ids. */
static int privs_set_ids(const struct config *cfg)
{
    if (privs_set_groups(cfg) == -1)
        return -1;
    if (setgid(cfg->gid) == -1) {
        log_error("%s: setgid %u: %s", __func__, (unsigned)cfg->gid,
                  strerror(errno));
        return -1;
    }
    if (setuid(cfg->uid) == -1) {
        log_error("%s: setuid %u (%s): %s", __func__, (unsigned)cfg->uid,
                  cfg->user, strerror(errno));
        return -1;
    }
    /* A uid 0 left anywhere (saved id, a bug) would let this succeed. */
    if (cfg->uid != 0 && setuid(0) != -1) {
        log_error("%s: root could be regained after setuid %u", __func__,
                  (unsigned)cfg->uid);
        return -1;
    }
    return 0;
}

int privs_drop(const struct config *cfg)
{
    char err[256];

    /* After a reload, what the new config asks; still root to raise it. */
    if (cfg->rlimit_nofile > 0 &&
        privs_rlimit_nofile(cfg->rlimit_nofile, err, sizeof(err)) == -1) {
        log_error("%s: %s", __func__, err);
        return -1;
    }
    if (cfg->user != NULL && geteuid() == 0 && privs_set_ids(cfg) == -1)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        log_error("%s: PR_SET_NO_NEW_PRIVS: %s", __func__, strerror(errno));
        return -1;
    }
    /* setuid cleared it: a crash after the drop dumps core only if asked. */
    if (cfg->worker_core_dumps && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1) {
        log_error("%s: PR_SET_DUMPABLE: %s", __func__, strerror(errno));
        return -1;
    }
    return 0;
}
