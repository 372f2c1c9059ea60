#include "supervisor/config.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/registry.h"
#include "shared/util.h"

/* What a check needs: the errors and the name to show for the file. */
struct cfgctx {
    struct config_errors *errs;
    const char *name;
};

/* Append "FILE:LINE: message" for setting s (\"FILE: message\" without). */
__attribute__((format(printf, 3, 4))) static void
cfg_err(struct cfgctx *x, const config_setting_t *s, const char *fmt, ...)
{
    struct config_errors *e = x->errs;
    const char *file = s ? config_setting_source_file(s) : NULL;
    int line = s ? (int)config_setting_source_line(s) : 0;
    va_list ap;
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
    va_start(ap, fmt);
    n = vsnprintf(e->text + e->len, sizeof(e->text) - e->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        e->len = WEFT_MIN(e->len + (size_t)n, sizeof(e->text) - 2);
    e->text[e->len++] = '\n';
    e->text[e->len] = '\0';
}

/* Refuse every member of group g whose name is not in allowed. */
static void check_keys(struct cfgctx *x, const config_setting_t *g,
                       const char *const *allowed, size_t nallowed,
                       const char *where)
{
    int n = config_setting_length(g);

    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool ok = false;
        for (size_t k = 0; k < nallowed && !ok; k++)
            ok = strcmp(name, allowed[k]) == 0;
        if (!ok)
            cfg_err(x, m, "unknown key '%s' in %s", name, where);
    }
}

static bool is_int(const config_setting_t *s)
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
    if (!is_int(s) || v < lo || v > hi) {
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
    if (!is_int(s) || v < 1 || v > CONFIG_WORKERS_MAX)
        cfg_err(x, s, "workers: expected \"auto\" or an integer 1..%d",
                CONFIG_WORKERS_MAX);
    else
        cfg->workers = (int)v;
}

static const char *const listener_keys[] = {
    "name", "listen", "protocol", "backlog", "max_connections",
};

/* Check one listener group g and fill *l; errors go to x. */
static void load_listener(struct cfgctx *x, const config_setting_t *g,
                          struct listener_conf *l)
{
    const char *s;
    const char *why;

    l->line = (int)config_setting_source_line(g);
    l->backlog = CONFIG_BACKLOG_DEFAULT;
    if (!config_setting_is_group(g)) {
        cfg_err(x, g, "listeners: each entry must be a group { ... }");
        return;
    }
    check_keys(x, g, listener_keys, countof(listener_keys), "listener");
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
        l->proto = protocol_find(s);
        if (l->proto == NULL)
            cfg_err(x, config_setting_get_member(g, "protocol"),
                    "unknown protocol '%s'", s);
    }
    get_int(x, g, "backlog", 1, 65535, &l->backlog);
    get_int(x, g, "max_connections", 0, 10000000, &l->max_connections);
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
        load_listener(x, g, &cfg->listeners[i]);
        check_transport(x, g, &cfg->listeners[i]);
        check_unique(x, list, cfg, (size_t)i);
    }
}

static const char *const top_keys[] = {
    "workers", "cpu_affinity", "listeners",
};

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
    check_keys(x, root, top_keys, countof(top_keys), "the top level");
    load_workers(x, root, cfg);
    const config_setting_t *s = config_setting_get_member(root, "cpu_affinity");
    if (s != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            cfg_err(x, s, "cpu_affinity: expected true or false");
        else
            cfg->cpu_affinity = config_setting_get_bool(s);
    }
    load_listeners(x, root, cfg);
    cfg->path = strdup(x->name);
    if (x->errs->count > 0 || cfg->path == NULL) {
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
    free(cfg->listeners);
    free(cfg->path);
    free(cfg);
}
