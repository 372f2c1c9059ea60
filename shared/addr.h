/*
 * Listener addresses: "HOST:PORT", "[IPv6]:PORT", "udp://HOST:PORT",
 * "tcp://HOST:PORT". HOST is an IPv4 or IPv6 literal, "*" (every IPv4
 * address) or "localhost" (127.0.0.1); names are not resolved here.
 */
#ifndef WEFT_SHARED_ADDR_H
#define WEFT_SHARED_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum addr_kind { ADDR_TCP, ADDR_UDP };

struct addr {
    enum addr_kind kind;
    struct sockaddr_storage ss;
    socklen_t len;
};

/*
 * Parse s into *out. Returns 0, or -1 with a static reason in *err.
 * Pure: no I/O, no resolver.
 */
int addr_parse(const char *s, struct addr *out, const char **err);

/* Same transport, family, address and port. */
bool addr_equal(const struct addr *a, const struct addr *b);

/* "udp://[::1]:53", "127.0.0.1:80"; returns buf. */
char *addr_format(const struct addr *a, char *buf, size_t size);

/* Printable form of a socket address, without a transport prefix. */
char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t size);

#define ADDR_STRLEN 64

#endif
