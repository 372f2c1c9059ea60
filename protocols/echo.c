/*
 * echo: every byte received on a stream goes back to its sender, and every
 * datagram back to its source (RFC 862).
 */
#include "protocols/registry.h"

/* Echo all of it; when the peer reads slower than it sends, stop reading. */
static size_t echo_data(struct weft_conn *c, const char *data, size_t len)
{
    if (weft_conn_write(c, data, len) == 1)
        weft_conn_pause(c);
    return len;
}

static void echo_writable(struct weft_conn *c)
{
    weft_conn_resume(c);
}

static void echo_datagram(struct weft_udp *u, const char *data, size_t len,
                          const struct sockaddr *from, socklen_t fromlen)
{
    /* UDP is lossy by contract: a reply the kernel refuses is dropped. */
    (void)weft_udp_send(u, data, len, from, fromlen);
}

const struct weft_protocol echo_protocol = {
    .name = "echo",
    .data_received = echo_data,
    .writable = echo_writable,
    .datagram_received = echo_datagram,
};
