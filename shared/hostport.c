/*
 * "HOST:PORT" and "[IPv6]:PORT" as weft_connect takes them: split and
 * checked in one place for the connector and for configurations.
 */
#include "shared/hostport.h"

#include <stdio.h>
#include <string.h>

const char *hostport_split(const char *s, char *host, size_t hlen,
                           char *port, size_t plen)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    long n = 0;

    if (colon == NULL || colon[1] == '\0')
        return "no port (expected HOST:PORT)";
    size_t hostlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hostlen < 3 || s[hostlen - 1] != ']')
            return "unbalanced brackets (expected [IPv6]:PORT)";
        h = s + 1;
        hostlen -= 2;
    } else if (memchr(s, ':', hostlen) != NULL) {
        return "an IPv6 address needs brackets: [IPv6]:PORT";
    }
    if (hostlen == 0)
        return "no host (expected HOST:PORT)";
    for (const char *p = colon + 1; *p != '\0'; p++)
        if (*p < '0' || *p > '9' || (n = n * 10 + (*p - '0')) > 65535)
            return "port is not a number in 1..65535";
    if (n == 0)
        return "port is not a number in 1..65535";
    if (hostlen >= hlen || strlen(colon + 1) >= plen)
        return "host name too long";
    memcpy(host, h, hostlen);
    host[hostlen] = '\0';
    snprintf(port, plen, "%ld", n);
    return NULL;
}

const char *weft_hostport_check(const char *hostport)
{
    char host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];

    return hostport_split(hostport, host, sizeof(host), port, sizeof(port));
}
