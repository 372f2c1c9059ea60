#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/ktls.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

bool ktls_available(void)
{
    static int known = -1; /* -1 not probed, else 0/1 */
    int fd;

    if (known >= 0)
        return known == 1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false; /* no socket now: ask again next time */
    known = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3) == 0 ||
            errno != ENOENT;
    close(fd);
    return known == 1;
}
