/*
 * A protocol's settings: the group named after the protocol inside a
 * listener, read by the protocol's configure hook through weft_settings_*.
 * Runs in the supervisor while a configuration is loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/util.h"
#include "supervisor/cfgctx.h"

/* Keys a protocol may read from its group. */
#define SETTINGS_KEYS_MAX 64

struct weft_settings {
    struct cfgctx *x;
    const config_setting_t *group;    /* the protocol's group, or NULL */
    const config_setting_t *listener; /* for lines when group is NULL */
    const char *lname;
    const char *pname;
    const char *read[SETTINGS_KEYS_MAX];
    int nread;
    struct weft_settings *children; /* groups inside, from weft_settings_item */
    struct weft_settings *next;     /* sibling in the parent's list */
    char name[96];                  /* "http.routes[2]" for a child */
};

struct cfgctx *settings_cfgctx(struct weft_settings *s)
{
    return s->x;
}

/* Remember that key was asked for, so it is not refused as unknown. */
static const config_setting_t *settings_get(struct weft_settings *s,
                                            const char *key)
{
    bool seen = false;

    for (int i = 0; i < s->nread && !seen; i++)
        seen = strcmp(s->read[i], key) == 0;
    if (!seen && s->nread < SETTINGS_KEYS_MAX)
        s->read[s->nread++] = key;
    return s->group ? config_setting_get_member(s->group, key) : NULL;
}

void weft_settings_error(struct weft_settings *s, const char *key,
                         const char *fmt, ...)
{
    const config_setting_t *at = NULL;
    char msg[512];
    va_list ap;

    if (key != NULL && s->group != NULL)
        at = config_setting_get_member(s->group, key);
    if (at == NULL)
        at = s->group ? s->group : s->listener;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg_err(s->x, at, "listener %s: %s%s%s: %s", s->lname, s->pname,
            key ? "." : "", key ? key : "", msg);
}

int weft_settings_int(struct weft_settings *s, const char *key,
                      long long min, long long max, long long def,
                      long long *out)
{
    const config_setting_t *v = settings_get(s, key);

    *out = def;
    if (v == NULL)
        return 1;
    long long n = config_setting_get_int64(v);
    if (!cfg_is_int(v) || n < min || n > max) {
        weft_settings_error(s, key, "expected an integer %lld..%lld", min,
                            max);
        return -1;
    }
    *out = n;
    return 0;
}

int weft_settings_bool(struct weft_settings *s, const char *key, int def,
                       int *out)
{
    const config_setting_t *v = settings_get(s, key);

    *out = def;
    if (v == NULL)
        return 1;
    if (config_setting_type(v) != CONFIG_TYPE_BOOL) {
        weft_settings_error(s, key, "expected true or false");
        return -1;
    }
    *out = config_setting_get_bool(v);
    return 0;
}

int weft_settings_string(struct weft_settings *s, const char *key,
                         const char *def, const char **out)
{
    const config_setting_t *v = settings_get(s, key);

    *out = def;
    if (v == NULL)
        return 1;
    if (config_setting_type(v) != CONFIG_TYPE_STRING) {
        weft_settings_error(s, key, "expected a string");
        return -1;
    }
    *out = config_setting_get_string(v);
    return 0;
}

int weft_settings_count(struct weft_settings *s, const char *key)
{
    const config_setting_t *v = settings_get(s, key);

    if (v == NULL)
        return 0;
    if (!config_setting_is_list(v) && !config_setting_is_array(v)) {
        weft_settings_error(s, key, "expected a list ( ... )");
        return -1;
    }
    return config_setting_length(v);
}

int weft_settings_list(struct weft_settings *s, const char *key)
{
    int n = weft_settings_count(s, key);
    const config_setting_t *v = settings_get(s, key);

    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(v, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            weft_settings_error(s, key, "entry %d is not a string", i + 1);
            return -1;
        }
    }
    return n;
}

const char *weft_settings_list_item(struct weft_settings *s, const char *key,
                                    int i)
{
    const config_setting_t *v = settings_get(s, key);

    if (v == NULL || i < 0 || i >= config_setting_length(v))
        return NULL;
    return config_setting_get_string_elem(v, i);
}

struct weft_settings *weft_settings_item(struct weft_settings *s,
                                         const char *key, int i)
{
    const config_setting_t *v = settings_get(s, key);
    const config_setting_t *g;
    struct weft_settings *c;

    if (v == NULL || i < 0 || i >= config_setting_length(v))
        return NULL;
    g = config_setting_get_elem(v, (unsigned)i);
    if (!config_setting_is_group(g)) {
        weft_settings_error(s, key, "entry %d: expected a group { ... }",
                            i + 1);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        weft_settings_error(s, key, "out of memory");
        return NULL;
    }
    c->x = s->x;
    c->group = g;
    c->listener = s->listener;
    c->lname = s->lname;
    snprintf(c->name, sizeof(c->name), "%s.%s[%d]", s->pname, key, i + 1);
    c->pname = c->name;
    c->next = s->children;
    s->children = c;
    return c;
}

/* Refuse the keys of the group that the hook never asked for. */
static void settings_check_unread(struct weft_settings *s)
{
    int n = s->group ? config_setting_length(s->group) : 0;

    for (int i = 0; i < n; i++) {
        const config_setting_t *m =
            config_setting_get_elem(s->group, (unsigned)i);
        const char *name = config_setting_name(m);
        bool seen = false;
        for (int k = 0; k < s->nread && !seen; k++)
            seen = strcmp(s->read[k], name) == 0;
        if (!seen)
            cfg_err(s->x, m, "listener %s: unknown key '%s' in %s",
                    s->lname, name, s->pname);
    }
    /* Groups handed out by weft_settings_item, checked and freed too. */
    while (s->children != NULL) {
        struct weft_settings *c = s->children;
        s->children = c->next;
        settings_check_unread(c);
        free(c);
    }
}

void *settings_configure(struct cfgctx *x, const config_setting_t *g,
                         const char *listener,
                         const struct weft_protocol *proto)
{
    struct weft_settings s = {
        .x = x,
        .group = config_setting_get_member(g, proto->name),
        .listener = g,
        .lname = listener,
        .pname = proto->name,
    };
    void *conf = NULL;

    if (s.group != NULL && !config_setting_is_group(s.group)) {
        cfg_err(x, s.group, "listener %s: %s: expected a group { ... }",
                listener, proto->name);
        return NULL;
    }
    if (proto->configure != NULL)
        conf = proto->configure(&s);
    settings_check_unread(&s);
    return conf;
}
