/*
 * The configuration: read with libconfig, checked whole, every error
 * reported as FILE:LINE: message. A config is built completely before it
 * is used and is never changed afterwards.
 */
#ifndef WEFT_SUPERVISOR_CONFIG_H
#define WEFT_SUPERVISOR_CONFIG_H

#include "shared/conf.h"

/* Error lines collected while loading, each "FILE:LINE: message". */
struct config_errors {
    char text[4096];
    size_t len;
    int count;
};

/*
 * Load and check the file at path. Returns a new config (free it with
 * config_free), or NULL with every error found in *errs.
 */
struct config *config_load(const char *path, struct config_errors *errs);

/* The same from text in memory; name stands for the file in messages. */
struct config *config_load_string(const char *text, const char *name,
                                  struct config_errors *errs);

void config_free(struct config *cfg);

/* The protocol called name: built in, or from one of cfg's modules. */
const struct weft_protocol *config_find_protocol(const struct config *cfg,
                                                 const char *name);

/* The built-in configuration, equal to contrib/weft.conf. */
extern const char config_default_text[];

#endif
