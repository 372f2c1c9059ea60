/* Splitting "HOST:PORT" and "[IPv6]:PORT" (shared/hostport.c). */
#ifndef WEFT_SHARED_HOSTPORT_H
#define WEFT_SHARED_HOSTPORT_H

#include <stddef.h>

#include "weft/weft.h"

#define HOSTPORT_HOST_MAX 256
#define HOSTPORT_PORT_MAX 8

/*
 * Split s into host (brackets removed) and its port (1..65535, as
 * digits). Returns NULL, or a static reason with host and port undefined.
 */
const char *hostport_split(const char *s, char *host, size_t hlen,
                           char *port, size_t plen);

#endif
