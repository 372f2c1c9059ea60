#include "protocols/registry.h"

#include <string.h>

#include "shared/util.h"

static const struct weft_protocol *const builtin[] = {
    &echo_protocol,
    &proxy_protocol,
    &http_protocol,
    &chat_protocol,
    &feed_protocol,
};

const struct weft_protocol *protocol_find(const char *name)
{
    for (size_t i = 0; i < countof(builtin); i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    return NULL;
}
