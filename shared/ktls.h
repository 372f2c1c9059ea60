/*
 * Whether this kernel can take over TLS records (kTLS): the "tls" upper
 * layer protocol exists, loaded or loadable.
 */
#ifndef WEFT_SHARED_KTLS_H
#define WEFT_SHARED_KTLS_H

#include <stdbool.h>

/*
 * True when the kernel knows the "tls" ULP. Probed once per process on
 * an unconnected socket (a kernel with the module answers ENOTCONN, one
 * without it ENOENT) and remembered: OpenSSL would otherwise try it, and
 * fail with two system calls, on every connection. A root process may
 * load the module by asking, so the supervisor probes before it forks.
 */
bool ktls_available(void);

#endif
