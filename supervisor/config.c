#include "supervisor/config.h"
#include "supervisor/cfgctx.h"

#include <grp.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/un.h>

#include "protocols/registry.h"
#include "shared/bus.h"
#include "shared/log.h"
#include "shared/tls.h"
#include "shared/stats.h"
#include "shared/util.h"

/* Append "FILE:LINE: message" for setting s ("FILE: message" without). */
void cfg_verr(struct cfgctx *x, const config_setting_t *s, const char *fmt,
              va_list ap)
{
    struct config_errors *e = x->errs;
    const char *file = s ? config_setting_source_file(s) : NULL;
    int line = s ? (int)config_setting_source_line(s) : 0;
    int n;

    e->count++;
    if (e->len >= sizeof(e->text) - 1)
        return;
    /* A key missing at the top level has no line to point at. */
    if (line > 0)
        n = snprintf(e->text + e->len, sizeof(e->text) - e->len, "%s:%d: ",
                     file ? file : x->name, line);
    else
        n = snprintf(e->text + e->len, sizeof(e->text) - e->len, "%s: ",
                     file ? file : x->name);
    if (n > 0)
        e->len = WEFT_MIN(e->len + (size_t)n, sizeof(e->text) - 1);
    n = vsnprintf(e->text + e->len, sizeof(e->text) - e->len, fmt, ap);
    if (n > 0)
        e->len = WEFT_MIN(e->len + (size_t)n, sizeof(e->text) - 2);
    e->text[e->len++] = '\n';
    e->text[e->len] = '\0';
}

void cfg_err(struct cfgctx *x, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_verr(x, s, fmt, ap);
    va_end(ap);
}

/*
 * Refuse every member of group g whose name is neither in allowed nor
 * `extra` (a listener's protocol group; may be NULL).
 */
static void check_keys(struct cfgctx *x, const config_setting_t *g,
                       const char *const *allowed, size_t nallowed,
                       const char *extra, const char *where)
{
    int n = config_setting_length(g);

    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool ok = extra != NULL && strcmp(name, extra) == 0;
        for (size_t k = 0; k < nallowed && !ok; k++)
            ok = strcmp(name, allowed[k]) == 0;
        if (!ok)
            cfg_err(x, m, "unknown key '%s' in %s", name, where);
    }
}

bool cfg_is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/*
 * Read integer key of g into *out if present, checking lo..hi.
 * Returns 0 when absent or fine, -1 after reporting an error.
 */
static int get_int(struct cfgctx *x, const config_setting_t *g,
                   const char *key, long long lo, long long hi, int *out)
{
    const config_setting_t *s = config_setting_get_member(g, key);

    if (s == NULL)
        return 0;
    long long v = config_setting_get_int64(s);
    if (!cfg_is_int(s) || v < lo || v > hi) {
        cfg_err(x, s, "%s: expected an integer %lld..%lld", key, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The string value of required key of g, or NULL after an error. */
static const char *get_string(struct cfgctx *x, const config_setting_t *g,
                              const char *key, const char *where)
{
    const config_setting_t *s = config_setting_get_member(g, key);

    if (s == NULL) {
        cfg_err(x, g, "%s: missing '%s'", where, key);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfg_err(x, s, "%s: expected a string", key);
        return NULL;
    }
    return config_setting_get_string(s);
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= CONFIG_NAME_MAX)
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

static void load_workers(struct cfgctx *x, const config_setting_t *root,
                         struct config *cfg)
{
    const config_setting_t *s = config_setting_get_member(root, "workers");

    cfg->workers = 0;
    if (s == NULL)
        return;
    if (config_setting_type(s) == CONFIG_TYPE_STRING &&
        strcmp(config_setting_get_string(s), "auto") == 0)
        return;
    long long v = config_setting_get_int64(s);
    if (!cfg_is_int(s) || v < 1 || v > CONFIG_WORKERS_MAX)
        cfg_err(x, s, "workers: expected \"auto\" or an integer 1..%d",
                CONFIG_WORKERS_MAX);
    else
        cfg->workers = (int)v;
}

static const char *const listener_keys[] = {
    "name",         "listen",     "protocol",  "backlog", "max_connections",
    "idle_timeout", "write_high", "write_low", "write_max", "defer_accept",
    "tls",
};

const struct weft_protocol *config_find_protocol(const struct config *cfg,
                                                 const char *name)
{
    const struct weft_protocol *p = protocol_find(name);

    for (size_t i = 0; p == NULL && i < cfg->nmodules; i++)
        for (const struct weft_protocol *const *pp =
                 cfg->modules[i]->protocols;
             pp != NULL && *pp != NULL && p == NULL; pp++)
            if (strcmp((*pp)->name, name) == 0)
                p = *pp;
    return p;
}

/* The output queue marks of listener g: low <= high <= max. */
static void load_watermarks(struct cfgctx *x, const config_setting_t *g,
                            struct listener_conf *l)
{
    const int big = 1 << 30;

    l->write_high = CONFIG_WRITE_HIGH_DEFAULT;
    l->write_low = CONFIG_WRITE_LOW_DEFAULT;
    l->write_max = CONFIG_WRITE_MAX_DEFAULT;
    if (get_int(x, g, "write_high", 1, big, &l->write_high) == -1 ||
        get_int(x, g, "write_low", 0, big, &l->write_low) == -1 ||
        get_int(x, g, "write_max", 0, big, &l->write_max) == -1)
        return;
    if (l->write_low > l->write_high)
        cfg_err(x, g, "write_low (%d) is above write_high (%d)", l->write_low,
                l->write_high);
    if (l->write_max != 0 && l->write_max < l->write_high)
        cfg_err(x, g, "write_max (%d) is below write_high (%d)",
                l->write_max, l->write_high);
}

/* Check one listener group g and fill *l; errors go to x. */
static void load_listener(struct cfgctx *x, const config_setting_t *g,
                          const struct config *cfg, struct listener_conf *l)
{
    const char *s;
    const char *why;

    l->line = (int)config_setting_source_line(g);
    l->backlog = CONFIG_BACKLOG_DEFAULT;
    if (!config_setting_is_group(g)) {
        cfg_err(x, g, "listeners: each entry must be a group { ... }");
        return;
    }
    if ((s = get_string(x, g, "name", "listener")) != NULL) {
        if (!name_valid(s))
            cfg_err(x, config_setting_get_member(g, "name"),
                    "name: 1 to %d of A-Z a-z 0-9 _ - .", CONFIG_NAME_MAX - 1);
        else
            snprintf(l->name, sizeof(l->name), "%s", s);
    }
    if ((s = get_string(x, g, "listen", "listener")) != NULL &&
        addr_parse(s, &l->addr, &why) == -1)
        cfg_err(x, config_setting_get_member(g, "listen"), "listen '%s': %s",
                s, why);
    if ((s = get_string(x, g, "protocol", "listener")) != NULL) {
        l->proto = config_find_protocol(cfg, s);
        if (l->proto == NULL)
            cfg_err(x, config_setting_get_member(g, "protocol"),
                    "unknown protocol '%s'", s);
    }
    check_keys(x, g, listener_keys, countof(listener_keys),
               l->proto ? l->proto->name : NULL, "listener");
    get_int(x, g, "backlog", 1, 65535, &l->backlog);
    const config_setting_t *tls = config_setting_get_member(g, "tls");
    if (tls != NULL) {
        if (l->addr.len != 0 && l->addr.kind != ADDR_TCP)
            cfg_err(x, tls, "tls: only on TCP listeners");
        else
            l->tls = tls_conf_load(x, tls);
    }
    /* A TLS client speaks first, whatever the protocol above it. */
    l->defer_accept = (l->proto != NULL && l->proto->client_first) ||
                              l->tls != NULL
                          ? CONFIG_DEFER_ACCEPT_DEFAULT
                          : 0;
    get_int(x, g, "defer_accept", 0, 3600, &l->defer_accept);
    get_int(x, g, "max_connections", 0, 10000000, &l->max_connections);
    get_int(x, g, "idle_timeout", 0, 86400000, &l->idle_timeout);
    load_watermarks(x, g, l);
    if (l->proto != NULL)
        l->proto_conf = settings_configure(x, g, l->name, l->proto);
}

/* The protocol must handle the listener's transport. */
static void check_transport(struct cfgctx *x, const config_setting_t *g,
                            const struct listener_conf *l)
{
    if (l->proto == NULL || l->addr.len == 0)
        return;
    bool udp = l->addr.kind == ADDR_UDP;
    if (udp && l->proto->datagram_received == NULL)
        cfg_err(x, config_setting_get_member(g, "protocol"),
                "protocol '%s' does not run over UDP", l->proto->name);
    if (!udp && l->proto->data_received == NULL)
        cfg_err(x, config_setting_get_member(g, "protocol"),
                "protocol '%s' does not run over TCP", l->proto->name);
}

/* Names and addresses must be unique across listeners. */
static void check_unique(struct cfgctx *x, const config_setting_t *list,
                         const struct config *cfg, size_t i)
{
    const struct listener_conf *l = &cfg->listeners[i];
    const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);

    for (size_t j = 0; j < i; j++) {
        const struct listener_conf *o = &cfg->listeners[j];
        if (l->name[0] != '\0' && strcmp(l->name, o->name) == 0)
            cfg_err(x, config_setting_get_member(g, "name"),
                    "listener name '%s' already used at line %d", l->name,
                    o->line);
        if (l->addr.len != 0 && addr_equal(&l->addr, &o->addr)) {
            char a[ADDR_STRLEN];
            cfg_err(x, config_setting_get_member(g, "listen"),
                    "address %s already used at line %d",
                    addr_format(&l->addr, a, sizeof(a)), o->line);
        }
    }
}

static void load_listeners(struct cfgctx *x, const config_setting_t *root,
                           struct config *cfg)
{
    const config_setting_t *list = config_setting_get_member(root, "listeners");

    if (list == NULL) {
        cfg_err(x, NULL, "no 'listeners' list");
        return;
    }
    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        cfg_err(x, list, "listeners: expected a list ( { ... }, ... )");
        return;
    }
    int n = config_setting_length(list);
    if (n == 0) {
        cfg_err(x, list, "listeners: the list is empty");
        return;
    }
    cfg->listeners = calloc((size_t)n, sizeof(*cfg->listeners));
    if (cfg->listeners == NULL) {
        cfg_err(x, list, "out of memory");
        return;
    }
    cfg->nlisteners = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        load_listener(x, g, cfg, &cfg->listeners[i]);
        check_transport(x, g, &cfg->listeners[i]);
        check_unique(x, list, cfg, (size_t)i);
    }
}

static const char *const control_keys[] = { "path", "mode", "group" };

/* A string key of group g, if present and a string; NULL otherwise. */
static const char *opt_string(struct cfgctx *x, const config_setting_t *g,
                              const char *key)
{
    const config_setting_t *s = config_setting_get_member(g, key);

    if (s == NULL)
        return NULL;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfg_err(x, s, "%s: expected a string", key);
        return NULL;
    }
    return config_setting_get_string(s);
}

/* An optional, non-empty path at key of g, copied; NULL when absent. */
static char *opt_path(struct cfgctx *x, const config_setting_t *g,
                      const char *key)
{
    const char *v = opt_string(x, g, key);
    char *copy;

    if (v == NULL)
        return NULL;
    if (*v == '\0') {
        cfg_err(x, config_setting_get_member(g, key), "%s: empty", key);
        return NULL;
    }
    if ((copy = strdup(v)) == NULL)
        cfg_err(x, NULL, "out of memory");
    return copy;
}

/* control = { path; mode; group; }: where and to whom weftd answers. */
static void load_control(struct cfgctx *x, const config_setting_t *root,
                         struct control_conf *cc)
{
    const config_setting_t *g = config_setting_get_member(root, "control");
    const char *path = NULL, *mode, *group;

    cc->mode = CONFIG_CONTROL_MODE_DEFAULT;
    if (g != NULL && !config_setting_is_group(g)) {
        cfg_err(x, g, "control: expected a group { ... }");
        g = NULL;
    }
    if (g != NULL) {
        check_keys(x, g, control_keys, countof(control_keys), NULL,
                   "control");
        path = opt_string(x, g, "path");
        if ((mode = opt_string(x, g, "mode")) != NULL) {
            char *end;
            long m = strtol(mode, &end, 8);
            if (*mode == '\0' || *end != '\0' || m < 0 || m > 0777)
                cfg_err(x, config_setting_get_member(g, "mode"),
                        "mode: expected octal permissions like \"0600\"");
            else
                cc->mode = (int)m;
        }
        if ((group = opt_string(x, g, "group")) != NULL) {
            struct group *gr = getgrnam(group);
            if (gr == NULL)
                cfg_err(x, config_setting_get_member(g, "group"),
                        "group: no group named '%s'", group);
            else {
                cc->has_group = true;
                cc->gid = (unsigned)gr->gr_gid;
            }
        }
    }
    if (path != NULL && *path == '\0')
        cfg_err(x, config_setting_get_member(g, "path"), "path: empty");
    cc->path = strdup(path && *path ? path : CONFIG_CONTROL_PATH_DEFAULT);
    if (cc->path != NULL &&
        strlen(cc->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        cfg_err(x, g, "control path too long for a UNIX socket: %s",
                cc->path);
}

/* bus = { ring_size; }: the message bus between workers, sized at start. */
static void load_bus(struct cfgctx *x, const config_setting_t *root,
                     struct config *cfg)
{
    static const char *const bus_keys[] = { "ring_size" };
    const config_setting_t *g = config_setting_get_member(root, "bus");
    int size = 0;

    cfg->bus_ring_size = 0;
    if (g == NULL)
        return;
    if (!config_setting_is_group(g)) {
        cfg_err(x, g, "bus: expected a group { ... }");
        return;
    }
    check_keys(x, g, bus_keys, countof(bus_keys), NULL, "bus");
    if (get_int(x, g, "ring_size", BUS_RING_MIN, BUS_RING_MAX, &size) == -1)
        return;
    if ((size & (size - 1)) != 0)
        cfg_err(x, config_setting_get_member(g, "ring_size"),
                "ring_size: expected a power of two, like %d", BUS_RING_MIN);
    else
        cfg->bus_ring_size = size;
}

/* admin = { listen = "HOST:PORT"; }: Prometheus metrics over HTTP. */
static void load_admin(struct cfgctx *x, const config_setting_t *root,
                       struct config *cfg)
{
    static const char *const admin_keys[] = { "listen" };
    const config_setting_t *g = config_setting_get_member(root, "admin");
    const char *s, *why;

    if (g == NULL)
        return;
    if (!config_setting_is_group(g)) {
        cfg_err(x, g, "admin: expected a group { listen = ...; }");
        return;
    }
    check_keys(x, g, admin_keys, countof(admin_keys), NULL, "admin");
    if ((s = get_string(x, g, "listen", "admin")) == NULL)
        return;
    if (addr_parse(s, &cfg->control.admin, &why) == -1 ||
        cfg->control.admin.kind != ADDR_TCP) {
        cfg_err(x, config_setting_get_member(g, "listen"),
                "listen '%s': %s", s, why ? why : "must be TCP");
        return;
    }
    cfg->control.has_admin = true;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (addr_equal(&cfg->listeners[i].addr, &cfg->control.admin))
            cfg_err(x, config_setting_get_member(g, "listen"),
                    "address %s is also listener %s", s,
                    cfg->listeners[i].name);
}

/* An optional boolean key of g into *out; absent leaves *out alone. */
static void opt_bool(struct cfgctx *x, const config_setting_t *g,
                     const char *key, bool *out)
{
    const config_setting_t *s = config_setting_get_member(g, key);

    if (s == NULL)
        return;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        cfg_err(x, s, "%s: expected true or false", key);
    else
        *out = config_setting_get_bool(s);
}

/* log.level: one of the names log_level_parse knows. */
static void load_log_level(struct cfgctx *x, const config_setting_t *g,
                           struct config *cfg)
{
    const char *v = opt_string(x, g, "level");
    enum log_level level;

    if (v == NULL)
        return;
    if (log_level_parse(v, &level) == -1)
        cfg_err(x, config_setting_get_member(g, "level"),
                "level '%s': expected \"debug\", \"info\", \"warn\" or "
                "\"error\"", v);
    else
        cfg->log_level = (int)level;
}

/*
 * log = { file; level; syslog; }, and the top-level log_file that file
 * replaces (kept as a deprecated alias; both at once are refused).
 */
static void load_log(struct cfgctx *x, const config_setting_t *root,
                     struct config *cfg)
{
    static const char *const log_keys[] = { "file", "level", "syslog" };
    const config_setting_t *g = config_setting_get_member(root, "log");
    const config_setting_t *alias = config_setting_get_member(root, "log_file");

    cfg->log_level = LOG_LVL_INFO;
    cfg->log_syslog = false;
    if (g != NULL && !config_setting_is_group(g)) {
        cfg_err(x, g, "log: expected a group { ... }");
        g = NULL;
    }
    if (g == NULL) {
        cfg->log_file = opt_path(x, root, "log_file");
        return;
    }
    check_keys(x, g, log_keys, countof(log_keys), NULL, "log");
    const config_setting_t *file = config_setting_get_member(g, "file");
    if (file != NULL && alias != NULL)
        cfg_err(x, alias, "log_file: a deprecated alias of log.file, which "
                "is set too (line %d)", (int)config_setting_source_line(file));
    else if (file != NULL)
        cfg->log_file = opt_path(x, g, "file");
    else
        cfg->log_file = opt_path(x, root, "log_file");
    load_log_level(x, g, cfg);
    opt_bool(x, g, "syslog", &cfg->log_syslog);
}

static const char *const top_keys[] = {
    "workers",         "cpu_affinity", "shutdown_timeout", "max_generations",
    "log_file",        "pid_file",     "modules",          "control",
    "admin",           "listeners",    "bus",              "log",
    "tls_ticket_rotate", "user",        "group",           "rlimit_nofile",
    "worker_core_dumps",
};

/*
 * user = "name"; group = "name";: whom the workers run as. Both are looked
 * up now, so a name that does not exist is refused with its line; group
 * defaults to the user's primary group (and then the user's supplementary
 * groups too). group without user is refused.
 */
static void load_user(struct cfgctx *x, const config_setting_t *root,
                      struct config *cfg)
{
    const char *user = opt_string(x, root, "user");
    const char *group = opt_string(x, root, "group");
    const struct passwd *pw;
    const struct group *gr;

    if (user == NULL) {
        if (group != NULL)
            cfg_err(x, config_setting_get_member(root, "group"),
                    "group: needs user");
        return;
    }
    if ((pw = getpwnam(user)) == NULL) {
        cfg_err(x, config_setting_get_member(root, "user"),
                "user: no user named '%s'", user);
        return;
    }
    cfg->uid = pw->pw_uid;
    cfg->gid = pw->pw_gid;
    if ((cfg->user = strdup(user)) == NULL)
        cfg_err(x, NULL, "out of memory");
    if (group == NULL)
        return;
    if ((gr = getgrnam(group)) == NULL) {
        cfg_err(x, config_setting_get_member(root, "group"),
                "group: no group named '%s'", group);
        return;
    }
    cfg->gid = gr->gr_gid;
    cfg->has_group = true;
}

/* rlimit_nofile = N;: descriptors per process, raised at start. */
static void load_rlimit(struct cfgctx *x, const config_setting_t *root,
                        struct config *cfg)
{
    const config_setting_t *s = config_setting_get_member(root,
                                                           "rlimit_nofile");

    cfg->rlimit_nofile = 0;
    if (s == NULL)
        return;
    long long v = config_setting_get_int64(s);
    if (!cfg_is_int(s) || v < 64 || v > (1LL << 30))
        cfg_err(x, s, "rlimit_nofile: expected an integer 64..%lld",
                1LL << 30);
    else
        cfg->rlimit_nofile = (long)v;
}

/* Check the parsed tree and build the config from it. */
static struct config *config_build(config_t *lc, struct cfgctx *x)
{
    const config_setting_t *root = config_root_setting(lc);
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL) {
        cfg_err(x, NULL, "out of memory");
        return NULL;
    }
    cfg->cpu_affinity = true;
    x->cfg = cfg;
    check_keys(x, root, top_keys, countof(top_keys), NULL, "the top level");
    module_load_all(x, root, cfg);
    load_workers(x, root, cfg);
    cfg->shutdown_timeout = CONFIG_SHUTDOWN_TIMEOUT_DEFAULT;
    get_int(x, root, "shutdown_timeout", 0, 86400, &cfg->shutdown_timeout);
    cfg->tls_ticket_rotate = CONFIG_TLS_TICKET_ROTATE_DEFAULT;
    get_int(x, root, "tls_ticket_rotate", 1, 7 * 86400,
            &cfg->tls_ticket_rotate);
    cfg->max_generations = CONFIG_MAX_GENERATIONS_DEFAULT;
    get_int(x, root, "max_generations", 1, 64, &cfg->max_generations);
    load_log(x, root, cfg);
    cfg->pid_file = opt_path(x, root, "pid_file");
    opt_bool(x, root, "cpu_affinity", &cfg->cpu_affinity);
    opt_bool(x, root, "worker_core_dumps", &cfg->worker_core_dumps);
    load_user(x, root, cfg);
    load_rlimit(x, root, cfg);
    load_listeners(x, root, cfg);
    load_control(x, root, &cfg->control);
    load_admin(x, root, cfg);
    load_bus(x, root, cfg);
    if (cfg->nlisteners > STATS_MAX_LISTENERS)
        cfg_err(x, config_setting_get_member(root, "listeners"),
                "listeners: at most %d", STATS_MAX_LISTENERS);
    cfg->path = strdup(x->name);
    if (x->errs->count > 0 || cfg->path == NULL || cfg->control.path == NULL) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Parse (from path or text), then build; one exit path for libconfig. */
static struct config *config_parse(const char *path, const char *text,
                                   const char *name,
                                   struct config_errors *errs)
{
    struct cfgctx x = { .errs = errs, .name = name };
    struct config *cfg = NULL;
    config_t lc;
    int ok;

    memset(errs, 0, sizeof(*errs));
    config_init(&lc);
    ok = path ? config_read_file(&lc, path) : config_read_string(&lc, text);
    if (ok != CONFIG_TRUE) {
        const char *file = config_error_file(&lc);
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(errs->text, sizeof(errs->text), "%s: cannot read: %s\n",
                     name, config_error_text(&lc));
        else
            snprintf(errs->text, sizeof(errs->text), "%s:%d: %s\n",
                     file ? file : name, config_error_line(&lc),
                     config_error_text(&lc));
        errs->len = strlen(errs->text);
        errs->count = 1;
        goto done;
    }
    cfg = config_build(&lc, &x);
done:
    config_destroy(&lc);
    return cfg;
}

struct config *config_load(const char *path, struct config_errors *errs)
{
    return config_parse(path, NULL, path, errs);
}

struct config *config_load_string(const char *text, const char *name,
                                  struct config_errors *errs)
{
    return config_parse(NULL, text, name, errs);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *l = &cfg->listeners[i];
        if (l->proto_conf != NULL && l->proto->unconfigure != NULL)
            l->proto->unconfigure(l->proto_conf);
        tls_conf_free(l->tls);
    }
    free(cfg->modules);
    free(cfg->listeners);
    free(cfg->control.path);
    free(cfg->log_file);
    free(cfg->pid_file);
    free(cfg->user);
    free(cfg->path);
    free(cfg);
}
