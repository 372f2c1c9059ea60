/*
 * HTTP/1.1 request heads and chunked bodies (RFC 9112). Pure functions of
 * (buf, len): no allocation, no I/O. Every pointer in the results points
 * into the caller's buffer, which must outlive them.
 */
#ifndef WEFT_PROTOCOLS_HTTP_PARSE_H
#define WEFT_PROTOCOLS_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_CONNECT,
    HTTP_TRACE,
    HTTP_OTHER
};

/* One header field; value without leading/trailing OWS. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct http_request {
    enum http_method method;
    const char *method_str;
    size_t method_len;
    const char *target;       /* the raw request-target */
    size_t target_len;
    const char *path;         /* target up to the first '?' */
    size_t path_len;
    const char *query;        /* after the '?'; query_len 0 if none */
    size_t query_len;
    int minor;                /* HTTP/1.<minor>, 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length;   /* -1: none */
    bool chunked;             /* Transfer-Encoding: chunked */
    bool keep_alive;          /* after the version default and Connection */
    bool expect_continue;     /* Expect: 100-continue */
    const char *host;         /* NULL if absent */
    size_t host_len;
};

/* e.g. 8192 and 16384; 0 = no limit. A NULL limits pointer: no limits. */
struct http_limits {
    size_t max_target;
    size_t max_head;
};

/*
 * Parse the request head at the start of buf[0..len). Returns the head's
 * length (> 0, up to and including the empty line, and including any
 * empty lines skipped before the request line) when complete; 0 when more
 * bytes are needed and no limit is exceeded yet; or a negative HTTP
 * status:
 *   -400 bad syntax, or a framing that could be used for smuggling
 *        (RFC 9112 6.3): conflicting or malformed Content-Length,
 *        Transfer-Encoding with Content-Length or in HTTP/1.0, a missing
 *        (1.1) or repeated Host, obs-fold, a bare CR;
 *   -414 request-target longer than max_target (as soon as the partial
 *        target exceeds it);
 *   -431 head longer than max_head (as soon as the partial head exceeds
 *        it), or more than HTTP_MAX_HEADERS header fields;
 *   -501 a Transfer-Encoding other than exactly "chunked" (any case) as
 *        the only coding;
 *   -505 a version other than HTTP/1.0 or HTTP/1.1.
 * Errors are found in the order of the bytes, so a prefix of a request
 * returns either 0 or the same result as the whole request. *req is only
 * meaningful when the return is > 0.
 */
int http_parse_request(const char *buf, size_t len,
                       const struct http_limits *lim,
                       struct http_request *req);

/* The first header called name (any case), or NULL. */
const struct http_header *http_header_find(const struct http_request *req,
                                           const char *name);

/*
 * Incremental chunked-body decoder (RFC 9112 7.1), a small state machine
 * kept by the caller between calls. Start from all zeroes
 * (struct http_chunked c = {0}). total is the running body size.
 */
struct http_chunked {
    int state;
    uint64_t remaining;       /* size being read, then data left */
    size_t line;              /* chunk-extension bytes of this size line */
    uint64_t total;           /* body bytes announced so far */
};

/*
 * Feed buf[0..len). For each piece of body data calls data(arg, p, n)
 * (data may be NULL to discard). Returns the bytes consumed: all of len
 * unless done earlier. Sets *done when the last chunk and its trailer
 * section are complete; the bytes after that are not consumed (they are
 * the next request's). Returns -400 on a malformed size line, a chunk
 * size above 2^62, chunk extensions longer than 4096 bytes or a missing
 * CRLF after chunk data; -413 as soon as a chunk size takes the total
 * body over max_body (0 = no limit). After an error the state is
 * unusable.
 */
long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
                       uint64_t max_body,
                       void (*data)(void *arg, const char *p, size_t n),
                       void *arg, bool *done);

#endif
