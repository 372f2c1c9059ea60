/*
 * Internal to the config loader (config.c, settings.c, module.c): the
 * error list being filled and the helpers that report into it.
 */
#ifndef WEFT_SUPERVISOR_CFGCTX_H
#define WEFT_SUPERVISOR_CFGCTX_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>

#include "supervisor/config.h"

/* What a check needs: the errors and the name to show for the file. */
struct cfgctx {
    struct config_errors *errs;
    const char *name;
    const struct config *cfg; /* being built: its modules are loaded */
};

/* Append "FILE:LINE: message" at setting s ("FILE: message" for NULL). */
void cfg_err(struct cfgctx *x, const config_setting_t *s, const char *fmt,
             ...) __attribute__((format(printf, 3, 4)));
void cfg_verr(struct cfgctx *x, const config_setting_t *s, const char *fmt,
              va_list ap) __attribute__((format(printf, 3, 0)));

bool cfg_is_int(const config_setting_t *s);

/* The loader's context of a protocol's settings. */
struct cfgctx *settings_cfgctx(struct weft_settings *s);

/*
 * Run proto's configure hook on the listener's group named after the
 * protocol (g: the listener group). Returns what the hook returned; errors
 * go to x. Every key of the protocol group must have been read.
 */
void *settings_configure(struct cfgctx *x, const config_setting_t *g,
                         const char *listener,
                         const struct weft_protocol *proto);

/* A listener's tls group g, its contexts built; NULL after reporting. */
struct tls_conf *tls_conf_load(struct cfgctx *x, const config_setting_t *g);

/*
 * Load every module named in the top-level `modules` list into cfg.
 * Errors go to x.
 */
void module_load_all(struct cfgctx *x, const config_setting_t *root,
                     struct config *cfg);

#endif
