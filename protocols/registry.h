/* The table of built-in protocols, looked up by name from the config. */
#ifndef WEFT_PROTOCOLS_REGISTRY_H
#define WEFT_PROTOCOLS_REGISTRY_H

#include "weft/weft.h"

/* The built-in protocol called name, or NULL. */
const struct weft_protocol *protocol_find(const char *name);

/*
 * The http handler called name that a module of the configuration being
 * loaded (the one s belongs to) gives, or NULL. Supervisor only.
 */
const struct weft_http_handler *http_handler_find(struct weft_settings *s,
                                                  const char *name);

extern const struct weft_protocol echo_protocol;
extern const struct weft_protocol proxy_protocol;
extern const struct weft_protocol http_protocol;
extern const struct weft_protocol chat_protocol;
extern const struct weft_protocol feed_protocol;

#endif
