/*
 * libFuzzer target for protocols/http/parse.c.
 *
 * The input is read twice. As a request head: parsed whole, then every
 * prefix of it, each from a copy of exactly its bytes; a prefix must need
 * more bytes or give the whole's error, a complete head's fields must lie
 * inside it. As a chunked body: decoded in one piece and in pieces cut by
 * a seed; both must consume the same bytes, hand out the same data and
 * end the same way. Input layout:
 *
 *   byte 0    max_target: 0 none, else 8 * byte
 *   byte 1    max_head: 0 none, else 16 * byte
 *   byte 2    the chunked pieces are 1 to 2^(byte % 8) bytes
 *   byte 3    max_body for the chunked decoder: 0 none, else 4 * byte
 *   rest      the bytes (heads only up to 4096 of them)
 *
 * Build and run: see README.md in this directory.
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/http/parse.h"

#define HEAD_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse an exact copy of p[0..n). */
static int parse_exact(const char *p, size_t n,
                       const struct http_limits *lim,
                       struct http_request *req, char **copy)
{
    *copy = malloc(n > 0 ? n : 1);
    assert(*copy != NULL);
    memcpy(*copy, p, n);
    return http_parse_request(*copy, n, lim, req);
}

/* q[0..qn) lies inside p[0..n). */
static int inside(const char *q, size_t qn, const char *p, size_t n)
{
    return q >= p && qn <= n && (size_t)(q - p) <= n - qn;
}

/* The fields of a complete head of n bytes at p point into it. */
static void check_head(const struct http_request *r, const char *p, int n)
{
    size_t hn = (size_t)n;

    assert(inside(r->method_str, r->method_len, p, hn));
    assert(inside(r->target, r->target_len, p, hn) && r->target_len > 0);
    assert(r->path == r->target && r->path_len <= r->target_len);
    assert(r->query == NULL || r->path_len + 1 + r->query_len ==
                                   r->target_len);
    assert(r->minor == 0 || r->minor == 1);
    assert(r->nheaders <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < r->nheaders; i++) {
        assert(inside(r->headers[i].name, r->headers[i].name_len, p, hn));
        assert(inside(r->headers[i].value, r->headers[i].value_len, p, hn));
    }
    assert(r->minor == 0 || r->host != NULL);
    assert(!(r->chunked && r->content_length >= 0));
    assert(r->content_length <= (int64_t)1 << 62);
}

static void fuzz_head(const char *in, size_t len,
                      const struct http_limits *lim)
{
    static struct http_request req;
    char *copy;
    int whole = parse_exact(in, len, lim, &req, &copy);
    int failed = 0;

    assert(whole == 0 || whole == -400 || whole == -414 || whole == -431 ||
           whole == -501 || whole == -505 ||
           (whole > 0 && (size_t)whole <= len));
    if (whole > 0)
        check_head(&req, copy, whole);
    free(copy);
    if (whole > 0)
        len = (size_t)whole;     /* longer prefixes are the same head */
    for (size_t k = 0; k < len; k++) {
        int r = parse_exact(in, k, lim, &req, &copy);
        free(copy);
        if (failed)
            assert(r == whole);
        else
            assert(r == 0 || (whole < 0 && r == whole));
        failed = r != 0;
    }
}

/* The body a decoder handed out, and how it ended. */
struct body {
    char *data;
    size_t n;
    long consumed;           /* or the error */
    bool done;
};

static void body_add(void *arg, const char *p, size_t n)
{
    struct body *b = arg;

    assert(n > 0);
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

/* Decode in[0..len) in pieces of 1..2^log bytes (all of it if log < 0). */
static void chunked_run(const char *in, size_t len, int log, uint32_t seed,
                        uint64_t max_body, struct body *b)
{
    struct http_chunked c;
    size_t pos = 0;
    uint32_t x = seed | 1;

    memset(&c, 0, sizeof(c));
    b->n = 0;
    b->done = false;
    b->consumed = 0;
    while (pos < len && !b->done) {
        size_t plen = len - pos;
        if (log >= 0) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t want = 1 + x % ((size_t)1 << log);
            if (want < plen)
                plen = want;
        }
        char *copy = malloc(plen);
        assert(copy != NULL);
        memcpy(copy, in + pos, plen);
        long r = http_chunked_feed(&c, copy, plen, max_body, body_add, b,
                                   &b->done);
        free(copy);
        if (r < 0) {
            assert(r == -400 || r == -413);
            b->consumed = r;
            return;
        }
        assert((size_t)r == plen || (b->done && (size_t)r < plen));
        pos += (size_t)r;
    }
    b->consumed = (long)pos;
}

static void fuzz_chunked(const char *in, size_t len, int log,
                         uint64_t max_body)
{
    struct body whole, split;

    whole.data = malloc(len + 1);
    split.data = malloc(len + 1);
    assert(whole.data != NULL && split.data != NULL);
    chunked_run(in, len, -1, 0, max_body, &whole);
    chunked_run(in, len, log, (uint32_t)len * 2654435761u, max_body, &split);
    assert(whole.consumed == split.consumed);
    if (whole.consumed >= 0) {
        assert(whole.done == split.done);
        assert(whole.n == split.n);
        assert(memcmp(whole.data, split.data, whole.n) == 0);
        assert(max_body == 0 || whole.n <= max_body);
    } else {
        /* The split run stopped at the same byte: it saw at most as much. */
        assert(split.n <= whole.n || whole.consumed == -413);
    }
    free(whole.data);
    free(split.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_limits lim;

    if (size < 4)
        return 0;
    lim.max_target = (size_t)data[0] * 8;
    lim.max_head = (size_t)data[1] * 16;
    const char *in = (const char *)data + 4;
    size_t len = size - 4;
    fuzz_head(in, len < HEAD_MAX ? len : HEAD_MAX, &lim);
    fuzz_chunked(in, len, data[2] % 8, (uint64_t)data[3] * 4);
    return 0;
}
