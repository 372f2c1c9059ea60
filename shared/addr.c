#include "shared/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Parse a decimal port 1..65535 that makes up all of s. */
static int port_parse(const char *s, unsigned short *port)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (unsigned short)v;
    return 0;
}

/* Fill out with an IPv4 host ("*", "localhost" or a literal). */
static int host4_parse(const char *host, struct addr *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

    sin->sin_family = AF_INET;
    out->len = sizeof(*sin);
    if (strcmp(host, "*") == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

int addr_parse(const char *s, struct addr *out, const char **err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *hp, *colon;
    unsigned short port;

    memset(out, 0, sizeof(*out));
    out->kind = ADDR_TCP;
    if (strncmp(s, "udp://", 6) == 0) {
        out->kind = ADDR_UDP;
        s += 6;
    } else if (strncmp(s, "tcp://", 6) == 0) {
        s += 6;
    } else if (strstr(s, "://") != NULL) {
        *err = "unknown scheme (use tcp:// or udp://)";
        return -1;
    }

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            *err = "missing ']' after IPv6 address";
            return -1;
        }
        if (close[1] != ':') {
            *err = "missing :PORT";
            return -1;
        }
        hp = s + 1;
        colon = close + 1;
        if ((size_t)(close - hp) >= sizeof(host) || close == hp) {
            *err = "bad IPv6 address";
            return -1;
        }
        memcpy(host, hp, (size_t)(close - hp));
        host[close - hp] = '\0';
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        sin6->sin6_family = AF_INET6;
        out->len = sizeof(*sin6);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            *err = "bad IPv6 address";
            return -1;
        }
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *err = "missing :PORT";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *err = "IPv6 addresses go in brackets: [ADDR]:PORT";
            return -1;
        }
        if ((size_t)(colon - s) >= sizeof(host) || colon == s) {
            *err = "bad host";
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (host4_parse(host, out) == -1) {
            *err = "bad IPv4 address (names are not resolved)";
            return -1;
        }
    }

    if (port_parse(colon + 1, &port) == -1) {
        *err = "bad port (1..65535)";
        return -1;
    }
    if (out->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
    return 0;
}

bool addr_equal(const struct addr *a, const struct addr *b)
{
    return a->kind == b->kind && a->len == b->len &&
           memcmp(&a->ss, &b->ss, a->len) == 0;
}

char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, size, "(family %d)", sa->sa_family);
    }
    return buf;
}

char *addr_format(const struct addr *a, char *buf, size_t size)
{
    char sa[ADDR_STRLEN];

    sockaddr_format((const struct sockaddr *)&a->ss, sa, sizeof(sa));
    snprintf(buf, size, "%s%s", a->kind == ADDR_UDP ? "udp://" : "", sa);
    return buf;
}
