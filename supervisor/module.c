/*
 * Protocol modules: shared objects named in the top-level `modules` list,
 * loaded by the supervisor while the configuration is read, so that every
 * worker forked afterwards has them. A module is never unloaded: protocols
 * it gave may be running in a worker of any generation.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/registry.h"
#include "supervisor/cfgctx.h"
#include "weft/http.h"

/* Open path and check its weft_module symbol; NULL after an error at at. */
static const struct weft_module *module_open(struct cfgctx *x,
                                             const config_setting_t *at,
                                             const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        cfg_err(x, at, "module %s: %s", path, dlerror());
        return NULL;
    }
    const struct weft_module *m = dlsym(h, WEFT_MODULE_SYMBOL);
    if (m == NULL) {
        cfg_err(x, at, "module %s: no '%s' symbol: not a weft module", path,
                WEFT_MODULE_SYMBOL);
        goto fail;
    }
    if (m->abi != WEFT_ABI_VERSION) {
        cfg_err(x, at,
                "module %s: built for weft ABI version %u, this weftd has "
                "ABI version %u: rebuild it against this weft",
                path, m->abi, (unsigned)WEFT_ABI_VERSION);
        goto fail;
    }
    if (m->name == NULL || (m->protocols == NULL && m->http_handlers == NULL)) {
        cfg_err(x, at, "module %s: no name, or neither protocols nor "
                "http handlers", path);
        goto fail;
    }
    return m;
fail:
    dlclose(h);
    return NULL;
}

/* The module's handler called name, or NULL. */
static const struct weft_http_handler *
module_handler(const struct weft_module *m, const char *name)
{
    for (const struct weft_http_handler *const *hp = m->http_handlers;
         hp != NULL && *hp != NULL; hp++)
        if (strcmp((*hp)->name, name) == 0)
            return *hp;
    return NULL;
}

const struct weft_http_handler *http_handler_find(struct weft_settings *s,
                                                  const char *name)
{
    const struct config *cfg = settings_cfgctx(s)->cfg;
    const struct weft_http_handler *h = NULL;

    for (size_t i = 0; h == NULL && i < cfg->nmodules; i++)
        h = module_handler(cfg->modules[i], name);
    return h;
}

/*
 * A module may not redefine a protocol or a handler another gave: 0, or
 * -1 after an error.
 */
static int module_names_free(struct cfgctx *x, const config_setting_t *at,
                             const struct config *cfg,
                             const struct weft_module *m)
{
    for (const struct weft_protocol *const *pp = m->protocols;
         pp != NULL && *pp != NULL; pp++) {
        if (config_find_protocol(cfg, (*pp)->name) != NULL) {
            cfg_err(x, at, "module %s: protocol '%s' is already defined",
                    config_setting_get_string(at), (*pp)->name);
            return -1;
        }
    }
    for (const struct weft_http_handler *const *hp = m->http_handlers;
         hp != NULL && *hp != NULL; hp++) {
        for (size_t i = 0; i < cfg->nmodules; i++) {
            if (module_handler(cfg->modules[i], (*hp)->name) != NULL) {
                cfg_err(x, at, "module %s: http handler '%s' is already "
                        "defined", config_setting_get_string(at),
                        (*hp)->name);
                return -1;
            }
        }
    }
    return 0;
}

void module_load_all(struct cfgctx *x, const config_setting_t *root,
                     struct config *cfg)
{
    const config_setting_t *list = config_setting_get_member(root, "modules");

    if (list == NULL)
        return;
    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        cfg_err(x, list, "modules: expected a list of paths");
        return;
    }
    int n = config_setting_length(list);
    cfg->modules = calloc((size_t)n + 1, sizeof(*cfg->modules));
    if (cfg->modules == NULL) {
        cfg_err(x, list, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            cfg_err(x, e, "modules: entry %d is not a string", i + 1);
            continue;
        }
        const struct weft_module *m =
            module_open(x, e, config_setting_get_string(e));
        if (m != NULL && module_names_free(x, e, cfg, m) == 0)
            cfg->modules[cfg->nmodules++] = m;
    }
}
