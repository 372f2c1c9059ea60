/*
 * A listener's TLS set-up, as the supervisor builds it from the
 * configuration (supervisor/tls_conf.c) and the workers inherit it through
 * fork (worker/tls.c): OpenSSL contexts with their certificates loaded and
 * checked, so that a bad file is refused when the configuration is read,
 * never at the first handshake.
 */
#ifndef WEFT_SHARED_TLS_H
#define WEFT_SHARED_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define TLS_HANDSHAKE_TIMEOUT_DEFAULT 10000 /* ms */

/* One `sni` entry: the names it answers and its certificate. */
struct tls_sni {
    char **names; /* exact names, or "*.domain" for one label */
    size_t nnames;
    SSL_CTX *ctx;
};

struct tls_conf {
    SSL_CTX *ctx; /* the listener's own certificate: the default */
    struct tls_sni *sni;
    size_t nsni;
    unsigned char *alpn; /* protocols in wire format, or NULL */
    size_t alpn_len;
    int handshake_timeout; /* ms */
};

void tls_conf_free(struct tls_conf *t);

/*
 * The sni entry whose names match host (case-insensitive; "*.b.example"
 * matches one label before .b.example), or NULL.
 */
const struct tls_sni *tls_sni_find(const struct tls_conf *t,
                                   const char *host);

#endif
