/*
 * The configuration as the supervisor built it and the workers inherit it
 * through fork: plain data, never changed once built.
 */
#ifndef WEFT_SHARED_CONF_H
#define WEFT_SHARED_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "shared/addr.h"
#include "weft/weft.h"

struct tls_conf;

#define CONFIG_NAME_MAX 64
#define CONFIG_WORKERS_MAX 256
#define CONFIG_BACKLOG_DEFAULT 511
/* defer_accept of a listener whose protocol lets the client speak first. */
#define CONFIG_DEFER_ACCEPT_DEFAULT 10
#define CONFIG_WRITE_HIGH_DEFAULT (64 * 1024)
#define CONFIG_WRITE_LOW_DEFAULT (16 * 1024)
#define CONFIG_WRITE_MAX_DEFAULT (16 * 1024 * 1024)

struct listener_conf {
    char name[CONFIG_NAME_MAX];
    struct addr addr;
    const struct weft_protocol *proto;
    void *proto_conf; /* what proto->configure returned */
    int backlog;
    int defer_accept;    /* seconds of TCP_DEFER_ACCEPT; 0 = off */
    int max_connections; /* per worker; 0 = no limit */
    int idle_timeout;    /* ms; 0 = none */
    int write_high;      /* output queue marks, bytes */
    int write_low;
    int write_max; /* 0 = no hard limit */
    struct tls_conf *tls; /* shared/tls.h; NULL: plain TCP */
    int line;
};

#define CONFIG_CONTROL_PATH_DEFAULT "weft.sock"
#define CONFIG_CONTROL_MODE_DEFAULT 0600

struct control_conf {
    char *path;     /* the control socket */
    int mode;       /* its permission bits */
    bool has_group; /* peers of this gid may issue commands too */
    unsigned gid;
    bool has_admin; /* the HTTP listener for /metrics */
    struct addr admin;
};

#define CONFIG_SHUTDOWN_TIMEOUT_DEFAULT 30
#define CONFIG_MAX_GENERATIONS_DEFAULT 4
#define CONFIG_TLS_TICKET_ROTATE_DEFAULT 3600

struct config {
    char *path;
    struct control_conf control;
    int shutdown_timeout; /* s a draining worker waits for connections */
    int max_generations;  /* generations alive at once, current included */
    char *log_file;       /* log.file (or log_file); NULL: stderr */
    int log_level;        /* enum log_level (shared/log.h) */
    bool log_syslog;      /* lines also go to syslog(3) */
    char *pid_file;       /* NULL: none */
    int workers; /* 0 = "auto" */
    bool cpu_affinity;
    int bus_ring_size; /* bytes of data of each bus ring; 0: automatic */
    int tls_ticket_rotate; /* s between two session-ticket keys */
    char *user;            /* workers run as this user; NULL: as weftd */
    uid_t uid;             /* of user */
    gid_t gid;             /* of group, or user's primary group */
    bool has_group;        /* group was set: no supplementary groups */
    long rlimit_nofile;    /* RLIMIT_NOFILE to raise to at start; 0: keep */
    bool worker_core_dumps; /* workers stay dumpable after the drop */
    struct listener_conf *listeners;
    size_t nlisteners;
    const struct weft_module **modules; /* loaded by this config */
    size_t nmodules;
};

#endif
