/*
 * A listener's `tls` group: certificates, versions, ciphers, ALPN and SNI,
 * turned into OpenSSL contexts when the configuration is read. Every
 * error names the setting's FILE:LINE and OpenSSL's reason, at weftd -t,
 * at start and at a reload (which then keeps the old generation).
 */
#include "shared/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "supervisor/cfgctx.h"
#include "shared/ktls.h"
#include "shared/util.h"

static const char *const tls_keys[] = {
    "cert", "key", "min_version", "ciphers", "ciphersuites", "alpn", "sni",
    "handshake_timeout",
};
static const char *const sni_keys[] = { "names", "cert", "key" };

/*
 * OpenSSL's reason for the failure: the first error queued, the cause
 * ("No such file or directory" rather than "system lib"). The queue is
 * emptied.
 */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    if (e != 0 && ERR_SYSTEM_ERROR(e))
        snprintf(buf, len, "%s", strerror(ERR_GET_REASON(e)));
    else if (r != NULL)
        snprintf(buf, len, "%s", r);
    else if (e != 0)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
    return buf;
}

/* A string key of g, or NULL (absent, or reported when not a string). */
static const char *str_of(struct cfgctx *x, const config_setting_t *g,
                          const char *key, bool required, const char *where)
{
    const config_setting_t *s = config_setting_get_member(g, key);

    if (s == NULL) {
        if (required)
            cfg_err(x, g, "%s: missing '%s'", where, key);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING ||
        *config_setting_get_string(s) == '\0') {
        cfg_err(x, s, "%s: expected a non-empty string", key);
        return NULL;
    }
    return config_setting_get_string(s);
}

static void unknown_keys(struct cfgctx *x, const config_setting_t *g,
                         const char *const *keys, size_t nkeys,
                         const char *where)
{
    for (unsigned i = 0; i < (unsigned)config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, i);
        const char *name = config_setting_name(m);
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k], name) != 0)
            k++;
        if (k == nkeys)
            cfg_err(x, m, "unknown key '%s' in %s", name, where);
    }
}

/* "Jan  2 00:00:00 2020 GMT" into buf. */
static const char *asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    if (b != NULL && ASN1_TIME_print(b, t) == 1)
        n = BIO_read(b, buf, (int)len - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
    return buf;
}

/* A certificate not valid now is refused (expired, or not yet valid). */
static bool cert_dates_bad(struct cfgctx *x, const config_setting_t *s,
                           const char *path, X509 *cert)
{
    char when[64];

    if (cert == NULL)
        return false;
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        cfg_err(x, s, "cert %s: expired on %s", path,
                asn1_time_str(X509_get0_notAfter(cert), when, sizeof(when)));
        return true;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        cfg_err(x, s, "cert %s: not valid before %s", path,
                asn1_time_str(X509_get0_notBefore(cert), when, sizeof(when)));
        return true;
    }
    return false;
}

/*
 * A server context with the certificate chain and key of group g, both
 * checked. NULL after reporting.
 */
static SSL_CTX *ctx_with_cert(struct cfgctx *x, const config_setting_t *g,
                              const char *where)
{
    const char *cert = str_of(x, g, "cert", true, where);
    const char *key = str_of(x, g, "key", true, where);
    char why[256];
    SSL_CTX *ctx;

    if (cert == NULL || key == NULL)
        return NULL;
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        cfg_err(x, g, "tls: %s", ssl_reason(why, sizeof(why)));
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        cfg_err(x, config_setting_get_member(g, "cert"), "cert %s: %s", cert,
                ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (cert_dates_bad(x, config_setting_get_member(g, "cert"), cert,
                       SSL_CTX_get0_certificate(ctx)))
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        cfg_err(x, config_setting_get_member(g, "key"), "key %s (of cert %s): "
                "%s", key, cert, ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        cfg_err(x, config_setting_get_member(g, "key"),
                "key %s does not match cert %s: %s", key, cert,
                ssl_reason(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Whole records per read: one system call, not two, per record. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* No renegotiation: a client asking for one gets a refusal. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (ktls_available())
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * min_version, ciphers, ciphersuites of g applied to ctx; errors are
 * reported when report is true (once per listener, not per sni entry).
 */
static void ctx_tune(struct cfgctx *x, const config_setting_t *g,
                     SSL_CTX *ctx, bool report)
{
    struct cfgctx quiet = *x;
    struct config_errors sink = {0};

    if (!report) {
        quiet.errs = &sink;
        x = &quiet;
    }
    const char *v = str_of(x, g, "min_version", false, "tls");
    int version = TLS1_2_VERSION;
    char why[256];

    if (v != NULL) {
        if (strcasecmp(v, "TLSv1.2") == 0 || strcmp(v, "1.2") == 0)
            version = TLS1_2_VERSION;
        else if (strcasecmp(v, "TLSv1.3") == 0 || strcmp(v, "1.3") == 0)
            version = TLS1_3_VERSION;
        else
            cfg_err(x, config_setting_get_member(g, "min_version"),
                    "min_version '%s': expected \"TLSv1.2\" or \"TLSv1.3\"",
                    v);
    }
    SSL_CTX_set_min_proto_version(ctx, version);
    if ((v = str_of(x, g, "ciphers", false, "tls")) != NULL &&
        SSL_CTX_set_cipher_list(ctx, v) != 1)
        cfg_err(x, config_setting_get_member(g, "ciphers"), "ciphers '%s': %s",
                v, ssl_reason(why, sizeof(why)));
    if ((v = str_of(x, g, "ciphersuites", false, "tls")) != NULL &&
        SSL_CTX_set_ciphersuites(ctx, v) != 1)
        cfg_err(x, config_setting_get_member(g, "ciphersuites"),
                "ciphersuites '%s': %s", v, ssl_reason(why, sizeof(why)));
}

/* alpn = ( "h2", "http/1.1" ): the wire format, length-prefixed names. */
static void load_alpn(struct cfgctx *x, const config_setting_t *g,
                      struct tls_conf *t)
{
    const config_setting_t *s = config_setting_get_member(g, "alpn");
    size_t len = 0;

    if (s == NULL)
        return;
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_err(x, s, "alpn: expected a list of strings");
        return;
    }
    int n = config_setting_length(s);
    if (n == 0 || (t->alpn = malloc((size_t)n * 256)) == NULL) {
        cfg_err(x, s, n == 0 ? "alpn: empty" : "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *p = config_setting_get_string_elem(s, i);
        size_t plen = p ? strlen(p) : 0;
        if (plen == 0 || plen > 255) {
            cfg_err(x, s, "alpn: item %d: expected a string of 1..255 bytes",
                    i + 1);
            return;
        }
        t->alpn[len++] = (unsigned char)plen;
        memcpy(t->alpn + len, p, plen);
        len += plen;
    }
    t->alpn_len = len;
}

/* A name of an sni entry: a host name, or "*." and one. */
static bool sni_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (n == 0 || n > 253 || *s == '\0' || *s == '.')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return false;
    return true;
}

static void load_sni_entry(struct cfgctx *x, const config_setting_t *e,
                           const config_setting_t *tlsg, struct tls_sni *sni)
{
    const config_setting_t *names = config_setting_get_member(e, "names");

    unknown_keys(x, e, sni_keys, countof(sni_keys), "sni");
    if (names == NULL || (!config_setting_is_array(names) &&
                          !config_setting_is_list(names)) ||
        config_setting_length(names) == 0) {
        cfg_err(x, names ? names : e, "sni: 'names' must be a list of names");
        return;
    }
    int n = config_setting_length(names);
    if ((sni->names = calloc((size_t)n, sizeof(char *))) == NULL) {
        cfg_err(x, e, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *s = config_setting_get_string_elem(names, i);
        if (s == NULL || !sni_name_ok(s)) {
            cfg_err(x, names, "sni: names item %d: expected a host name or "
                    "\"*.domain\"", i + 1);
            continue;
        }
        sni->names[sni->nnames++] = strdup(s);
    }
    if ((sni->ctx = ctx_with_cert(x, e, "sni")) != NULL)
        ctx_tune(x, tlsg, sni->ctx, false);
}

static void load_sni(struct cfgctx *x, const config_setting_t *g,
                     struct tls_conf *t)
{
    const config_setting_t *s = config_setting_get_member(g, "sni");

    if (s == NULL)
        return;
    if (!config_setting_is_list(s) || config_setting_length(s) == 0) {
        cfg_err(x, s, "sni: expected a list of groups ( { names = ...; "
                "cert = ...; key = ...; } )");
        return;
    }
    int n = config_setting_length(s);
    if ((t->sni = calloc((size_t)n, sizeof(*t->sni))) == NULL) {
        cfg_err(x, s, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (!config_setting_is_group(e)) {
            cfg_err(x, e, "sni: each entry must be a group { ... }");
            continue;
        }
        load_sni_entry(x, e, g, &t->sni[t->nsni++]);
    }
}

struct tls_conf *tls_conf_load(struct cfgctx *x, const config_setting_t *g)
{
    struct tls_conf *t = calloc(1, sizeof(*t));
    int errs = x->errs->count;

    if (t == NULL) {
        cfg_err(x, g, "out of memory");
        return NULL;
    }
    if (!config_setting_is_group(g)) {
        cfg_err(x, g, "tls: expected a group { cert = ...; key = ...; }");
        free(t);
        return NULL;
    }
    unknown_keys(x, g, tls_keys, countof(tls_keys), "tls");
    t->handshake_timeout = TLS_HANDSHAKE_TIMEOUT_DEFAULT;
    const config_setting_t *h = config_setting_get_member(g,
                                                          "handshake_timeout");
    if (h != NULL) {
        long long v = config_setting_get_int64(h);
        if (!cfg_is_int(h) || v < 1 || v > 3600000)
            cfg_err(x, h, "handshake_timeout: expected an integer 1..3600000 "
                    "(ms)");
        else
            t->handshake_timeout = (int)v;
    }
    if ((t->ctx = ctx_with_cert(x, g, "tls")) != NULL)
        ctx_tune(x, g, t->ctx, true);
    load_alpn(x, g, t);
    load_sni(x, g, t);
    if (x->errs->count != errs) {
        tls_conf_free(t);
        return NULL;
    }
    return t;
}

void tls_conf_free(struct tls_conf *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    for (size_t i = 0; i < t->nsni; i++) {
        for (size_t k = 0; k < t->sni[i].nnames; k++)
            free(t->sni[i].names[k]);
        free(t->sni[i].names);
        SSL_CTX_free(t->sni[i].ctx);
    }
    free(t->sni);
    free(t->alpn);
    free(t);
}
