/*
 * Unit tests for protocols/http/parse.c. Every request is parsed whole
 * and then cut at every byte: a prefix must need more bytes, or already
 * give the answer the whole request gives. Every parse runs on a copy of
 * exactly the bytes given, so ASan sees any read past the end.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/http/parse.h"
#include "tests/unit/check_run.h"

#define HOT_ASSERT(expr, ...)                                           \
    do {                                                                \
        if (!(expr))                                                    \
            ck_abort_msg("'" #expr "' failed: " __VA_ARGS__);           \
    } while (0)

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct http_limits no_limits = { 0, 0 };
static const struct http_limits std_limits = { 8192, 16384 };

/* A malloc'd copy of exactly n bytes of s. */
static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);

    HOT_ASSERT(p != NULL, "out of memory");
    memcpy(p, s, n);
    return p;
}

/* Parse the first n bytes of s from an exact copy; req is left dangling. */
static int parse_n(const char *s, size_t n, const struct http_limits *lim)
{
    static struct http_request req;
    char *p = exact_copy(s, n);
    int r = http_parse_request(p, n, lim, &req);

    free(p);
    return r;
}

/*
 * Every proper prefix of s[0..len) needs more bytes, or gives whole's
 * error; once a prefix gives it, every longer one does too.
 */
static void check_prefixes(const char *s, size_t len,
                           const struct http_limits *lim, int whole)
{
    int failed = 0;

    for (size_t k = 0; k < len; k++) {
        int r = parse_n(s, k, lim);
        if (whole > 0 || !failed)
            HOT_ASSERT(r == 0 || (whole < 0 && r == whole),
                       "\"%s\" cut at %zu: %d, whole %d", s, k, r, whole);
        else
            HOT_ASSERT(r == whole, "\"%s\" cut at %zu: %d after %d", s, k,
                       r, whole);
        failed = r != 0;
    }
}

/* A valid request and what the parser must find in it. */
struct valid_case {
    const char *raw;
    enum http_method method;
    const char *method_str;
    const char *target;
    const char *path;
    const char *query;        /* NULL: none */
    int minor;
    size_t nheaders;
    int64_t content_length;
    bool chunked;
    bool keep_alive;
    bool expect_continue;
    const char *host;         /* NULL: absent */
};

static const struct valid_case valid[] = {
    { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "GET", "/", "/",
      NULL, 1, 1, -1, false, true, false, "a" },
    { "GET /x?y=1&z HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_GET, "GET",
      "/x?y=1&z", "/x", "y=1&z", 1, 1, -1, false, true, false,
      "example.com" },
    { "GET /? HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "GET", "/?", "/", "",
      1, 1, -1, false, true, false, "a" },
    { "HEAD /a?b?c HTTP/1.1\nHost: a\n\n", HTTP_HEAD, "HEAD", "/a?b?c",
      "/a", "b?c", 1, 1, -1, false, true, false, "a" },
    { "GET / HTTP/1.0\r\n\r\n", HTTP_GET, "GET", "/", "/", NULL, 0, 0, -1,
      false, false, false, NULL },
    { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HTTP_GET, "GET",
      "/", "/", NULL, 0, 1, -1, false, true, false, NULL },
    { "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", HTTP_GET,
      "GET", "/", "/", NULL, 0, 1, -1, false, false, false, NULL },
    { "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo,  CLOSE \r\n\r\n",
      HTTP_GET, "GET", "/", "/", NULL, 1, 2, -1, false, false, false, "a" },
    { "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", HTTP_GET,
      "GET", "/", "/", NULL, 1, 2, -1, false, true, false, "a" },
    { "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", HTTP_POST,
      "POST", "/f", "/f", NULL, 1, 2, 5, false, true, false, "a" },
    { "PUT /f HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n"
      "CONTENT-LENGTH: 0\r\n\r\n", HTTP_PUT, "PUT", "/f", "/f", NULL, 1, 3,
      0, false, true, false, "a" },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904"
      "\r\n\r\n", HTTP_POST, "POST", "/", "/", NULL, 1, 2,
      (int64_t)1 << 62, false, true, false, "a" },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n",
      HTTP_POST, "POST", "/", "/", NULL, 1, 2, -1, true, true, false, "a" },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
      HTTP_POST, "POST", "/", "/", NULL, 1, 2, -1, true, true, false, "a" },
    { "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
      "Content-Length: 10\r\n\r\n", HTTP_POST, "POST", "/", "/", NULL, 1, 3,
      10, false, true, true, "a" },
    { "DELETE /r HTTP/1.1\r\nHost:a\r\n\r\n", HTTP_DELETE, "DELETE", "/r",
      "/r", NULL, 1, 1, -1, false, true, false, "a" },
    { "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OPTIONS, "OPTIONS", "*",
      "*", NULL, 1, 1, -1, false, true, false, "a" },
    { "PATCH /p HTTP/1.1\r\nHost: \t a b \t\r\n\r\n", HTTP_PATCH, "PATCH",
      "/p", "/p", NULL, 1, 1, -1, false, true, false, "a b" },
    { "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
      HTTP_CONNECT, "CONNECT", "example.com:443", "example.com:443", NULL,
      1, 1, -1, false, true, false, "example.com:443" },
    { "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_TRACE, "TRACE", "/", "/",
      NULL, 1, 1, -1, false, true, false, "a" },
    { "GET http://example.com/x?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
      HTTP_GET, "GET", "http://example.com/x?q", "http://example.com/x",
      "q", 1, 1, -1, false, true, false, "example.com" },
    { "PURGE /c HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Odd: \x80\xff!\r\n\r\n",
      HTTP_OTHER, "PURGE", "/c", "/c", NULL, 1, 3, -1, false, true, false,
      "a" },
    { "\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "GET", "/",
      "/", NULL, 1, 1, -1, false, true, false, "a" },
    { "GET /%20 HTTP/1.1\r\nHost: \r\n\r\n", HTTP_GET, "GET", "/%20",
      "/%20", NULL, 1, 1, -1, false, true, false, "" },
};

/* s[0..n) is the C string want. */
static int same(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

/* The fields of one valid case. */
static void check_fields(const struct valid_case *c,
                         const struct http_request *r)
{
    ck_assert_int_eq(r->method, c->method);
    ck_assert(same(r->method_str, r->method_len, c->method_str));
    ck_assert(same(r->target, r->target_len, c->target));
    ck_assert(same(r->path, r->path_len, c->path));
    if (c->query == NULL)
        ck_assert(r->query == NULL && r->query_len == 0);
    else
        ck_assert(r->query != NULL &&
                  same(r->query, r->query_len, c->query));
    ck_assert_int_eq(r->minor, c->minor);
    ck_assert_uint_eq(r->nheaders, c->nheaders);
    ck_assert_int_eq(r->content_length, c->content_length);
    ck_assert_int_eq(r->chunked, c->chunked);
    ck_assert_int_eq(r->keep_alive, c->keep_alive);
    ck_assert_int_eq(r->expect_continue, c->expect_continue);
    if (c->host == NULL)
        ck_assert_ptr_null(r->host);
    else
        ck_assert(r->host != NULL && same(r->host, r->host_len, c->host));
}

START_TEST(test_valid)
{
    const struct valid_case *c = &valid[_i];
    size_t len = strlen(c->raw);
    struct http_request req;
    char *p = exact_copy(c->raw, len);

    ck_assert_int_eq(http_parse_request(p, len, &std_limits, &req),
                     (int)len);
    check_fields(c, &req);
    ck_assert_int_eq(http_parse_request(p, len, NULL, &req), (int)len);
    check_fields(c, &req);
    free(p);
    check_prefixes(c->raw, len, &std_limits, (int)len);
}
END_TEST

/* An invalid request and the status it must get. */
struct invalid_case {
    const char *raw;
    int status;
};

static const struct invalid_case invalid[] = {
    /* request line */
    { " GET / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400 },
    { "GET /\r\n\r\n", -400 },
    { "GET\r\n\r\n", -400 },
    { "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "CONNECT a:b HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET / http/1.1\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/11\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505 },
    { "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505 },
    { "GET / HTTP/0.9\r\n\r\n", -505 },
    /* line endings */
    { "GET / HTTP/1.1\rHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\r\n\r\r", -400 },
    { "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
    /* header syntax */
    { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", -400 },
    /* Host */
    { "GET / HTTP/1.1\r\n\r\n", -400 },
    { "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400 },
    { "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -400 },
    /* Content-Length */
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905"
      "\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999"
      "999\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
      "Content-Length: 2\r\n\r\n", -400 },
    /* Transfer-Encoding */
    { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 1\r\n\r\n", -400 },
    { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n"
      "\r\n", -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n"
      "\r\n", -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
      -501 },
    { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;a=b\r\n"
      "\r\n", -501 },
};

START_TEST(test_invalid)
{
    const struct invalid_case *c = &invalid[_i];
    /* The strings are written with their terminating "\r\n\r\n". */
    size_t len = strlen(c->raw);

    if (c->raw[len - 1] != '\n' && c->raw[len - 1] != '\r')
        len += strlen(c->raw + len + 1) + 1;  /* an embedded NUL */
    ck_assert_msg(parse_n(c->raw, len, &std_limits) == c->status,
                  "\"%s\": %d", c->raw, parse_n(c->raw, len, &std_limits));
    ck_assert_int_eq(parse_n(c->raw, len, NULL), c->status);
    check_prefixes(c->raw, len, &std_limits, c->status);
    check_prefixes(c->raw, len, &no_limits, c->status);
}
END_TEST

/* A request with a target of tlen bytes ("/aaa..."); caller frees. */
static char *long_target(size_t tlen, size_t *len)
{
    static const char pre[] = "GET ", post[] = " HTTP/1.1\r\nHost: a\r\n\r\n";
    char *s = malloc(tlen + sizeof(pre) + sizeof(post));

    ck_assert_ptr_nonnull(s);
    memcpy(s, pre, 4);
    s[4] = '/';
    memset(s + 5, 'a', tlen - 1);
    strcpy(s + 4 + tlen, post);
    *len = strlen(s);
    return s;
}

START_TEST(test_target_limit)
{
    struct http_limits lim = { 100, 0 };
    size_t len;
    char *s = long_target(100, &len);

    ck_assert_int_eq(parse_n(s, len, &lim), (int)len);
    check_prefixes(s, len, &lim, (int)len);
    free(s);

    s = long_target(101, &len);
    ck_assert_int_eq(parse_n(s, len, &lim), -414);
    check_prefixes(s, len, &lim, -414);
    /* Early: 101 target bytes and nothing after them yet. */
    ck_assert_int_eq(parse_n(s, 4 + 100, &lim), 0);
    ck_assert_int_eq(parse_n(s, 4 + 101, &lim), -414);
    free(s);

    /* A bad byte past the limit: the limit is what is seen first. */
    s = long_target(200, &len);
    s[4 + 150] = '\x01';
    ck_assert_int_eq(parse_n(s, len, &lim), -414);
    s[4 + 50] = '\x01';
    ck_assert_int_eq(parse_n(s, len, &lim), -400);
    check_prefixes(s, len, &lim, -400);
    free(s);
}
END_TEST

START_TEST(test_head_limit)
{
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789\r\n\r\n";
    size_t len = strlen(req);
    struct http_limits lim = { 0, len };

    ck_assert_int_eq(parse_n(req, len, &lim), (int)len);
    check_prefixes(req, len, &lim, (int)len);
    lim.max_head = len - 1;
    ck_assert_int_eq(parse_n(req, len, &lim), -431);
    check_prefixes(req, len, &lim, -431);
    /* Early: a head that has not ended within max_head bytes. */
    lim.max_head = 20;
    ck_assert_int_eq(parse_n(req, 20, &lim), 0);
    ck_assert_int_eq(parse_n(req, 21, &lim), -431);
    /* A body after a head within the limit is not the head's business. */
    lim.max_head = len;
    char *big = malloc(len + 1000);
    memcpy(big, req, len);
    memset(big + len, 'b', 1000);
    ck_assert_int_eq(parse_n(big, len + 1000, &lim), (int)len);
    free(big);
    /* A syntax error within the limit comes before it. */
    lim.max_head = 30;
    ck_assert_int_eq(parse_n("GET / HTTP/1.1\r\nHost : a\r\nX: aaaaaaaaaaa"
                             "aaaaaaaaaa\r\n\r\n", 50, &lim), -400);
}
END_TEST

/* A request with n "X-i: i" headers besides Host; caller frees. */
static char *many_headers(size_t n, size_t *len)
{
    char *s = malloc(64 + n * 32);
    size_t at;

    ck_assert_ptr_nonnull(s);
    at = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "X-%zu: %zu\r\n", i, i);
    strcpy(s + at, "\r\n");
    *len = at + 2;
    return s;
}

START_TEST(test_header_count)
{
    struct http_request req;
    size_t len;
    char *s = many_headers(HTTP_MAX_HEADERS - 1, &len);

    ck_assert_int_eq(http_parse_request(s, len, NULL, &req), (int)len);
    ck_assert_uint_eq(req.nheaders, HTTP_MAX_HEADERS);
    ck_assert(same(req.headers[63].value, req.headers[63].value_len, "62"));
    check_prefixes(s, len, NULL, (int)len);
    free(s);
    s = many_headers(HTTP_MAX_HEADERS, &len);
    ck_assert_int_eq(parse_n(s, len, NULL), -431);
    check_prefixes(s, len, NULL, -431);
    free(s);
}
END_TEST

START_TEST(test_pipelined)
{
    const char *two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                      "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n"
                      "\r\n";
    size_t len = strlen(two);
    struct http_request req;
    char *p = exact_copy(two, len);
    int n1 = http_parse_request(p, len, &std_limits, &req);

    ck_assert_int_eq(n1, 28);
    ck_assert(same(req.path, req.path_len, "/1"));
    int n2 = http_parse_request(p + n1, len - (size_t)n1, &std_limits, &req);
    ck_assert_int_eq(n2, (int)len - n1);
    ck_assert_int_eq(req.method, HTTP_POST);
    ck_assert(same(req.path, req.path_len, "/2"));
    ck_assert(same(req.host, req.host_len, "b"));
    ck_assert_int_eq(req.content_length, 0);
    free(p);
}
END_TEST

START_TEST(test_header_find)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: 1\r\nx-foo: 2\r\n\r\n";
    struct http_request req;
    const struct http_header *f;

    ck_assert_int_gt(http_parse_request(s, strlen(s), NULL, &req), 0);
    f = http_header_find(&req, "x-FOO");
    ck_assert(f != NULL && same(f->value, f->value_len, "1"));
    ck_assert_ptr_null(http_header_find(&req, "X-Fo"));
    ck_assert_ptr_null(http_header_find(&req, "X-Fooo"));
    ck_assert_ptr_nonnull(http_header_find(&req, "HOST"));
}
END_TEST

/* The body a chunked decoder handed out. */
struct sink {
    char buf[256];
    size_t n;
};

static void sink_data(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;

    HOT_ASSERT(n > 0 && s->n + n <= sizeof(s->buf), "piece of %zu", n);
    memcpy(s->buf + s->n, p, n);
    s->n += n;
}

/*
 * Feed s[0..len) in pieces cut at the offsets cuts[0..ncuts), each from
 * an exact copy, as a caller would: what is not consumed is presented
 * again. Returns the total consumed or the error; *done as at the end.
 */
static long chunked_run(const char *s, size_t len, const size_t *cuts,
                        size_t ncuts, uint64_t max_body, struct sink *out,
                        bool *done)
{
    struct http_chunked c;
    size_t from = 0;

    memset(&c, 0, sizeof(c));
    out->n = 0;
    *done = false;
    for (size_t i = 0; i <= ncuts && !*done; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        char *p = exact_copy(s + from, to - from);
        long r = http_chunked_feed(&c, p, to - from, max_body, sink_data, out,
                                   done);
        free(p);
        if (r < 0)
            return r;
        HOT_ASSERT((size_t)r == to - from || *done, "consumed %ld", r);
        from += (size_t)r;
    }
    return (long)from;
}

/* A chunked body, the data in it, and the bytes it takes. */
struct chunked_case {
    const char *raw;          /* the body, then the next request's bytes */
    const char *data;
    size_t body_len;          /* 0: invalid */
    long status;              /* for the invalid ones */
};

static const struct chunked_case chunked[] = {
    { "0\r\n\r\nGET", "", 5, 0 },
    { "5\r\nhello\r\n0\r\n\r\nGET", "hello", 15, 0 },
    { "5\nhello\n0\n\nGET", "hello", 11, 0 },
    { "3\r\nabc\r\nA\r\n0123456789\r\n00\r\n\r\n", "abc0123456789", 29, 0 },
    { "3;a=b;c=\"d e\"\r\nabc\r\n0 ; x\r\n\r\nGET", "abc", 29, 0 },
    { "1\r\nx\r\n0\r\nTrailer: v\r\nT2: w\r\n\r\nX", "x", 30, 0 },
    { "f\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde", 25, 0 },
    { "0000000000000000000001\r\nz\r\n0\r\n\r\n", "z", 32, 0 },
    { "\r\n", "", 0, -400 },
    { "x\r\n", "", 0, -400 },
    { ";a\r\n", "", 0, -400 },
    { "5 \r\nhello\r\n", "", 0, -400 },
    { "5\rhello", "", 0, -400 },
    { "5;a\x01\r\nhello\r\n", "", 0, -400 },
    { "5\r\nhelloX\r\n", "", 0, -400 },
    { "5\r\nhello\rX", "", 0, -400 },
    { "-5\r\nhello", "", 0, -400 },
    { "4000000000000001\r\n", "", 0, -400 },
    { "10000000000000000\r\n", "", 0, -400 },
    { "0\r\n\rX", "", 0, -400 },
    { "0\r\n Folded: x\r\n\r\n", "", 0, -400 },
    { "0\r\nT: a\rb\r\n\r\n", "", 0, -400 },
};

START_TEST(test_chunked)
{
    const struct chunked_case *c = &chunked[_i];
    size_t len = strlen(c->raw);
    struct sink out;
    size_t cuts[512];
    bool done;
    long whole = chunked_run(c->raw, len, NULL, 0, 0, &out, &done);

    if (c->body_len > 0) {
        ck_assert_int_eq(whole, (long)c->body_len);
        ck_assert(done);
        ck_assert(same(out.buf, out.n, c->data));
    } else {
        ck_assert_int_eq(whole, c->status);
    }
    /* Cut in two at every byte, then at every byte. */
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        long r = chunked_run(c->raw, len, cuts, 1, 0, &out, &done);
        HOT_ASSERT(r == whole, "cut at %zu: %ld, whole %ld", k, r, whole);
        if (whole > 0)
            HOT_ASSERT(done && same(out.buf, out.n, c->data), "cut %zu", k);
    }
    for (size_t k = 0; k + 1 < len; k++)
        cuts[k] = k + 1;
    long r = chunked_run(c->raw, len, cuts, len > 0 ? len - 1 : 0, 0, &out,
                         &done);
    ck_assert_int_eq(r, whole);
    if (whole > 0)
        ck_assert(done && same(out.buf, out.n, c->data));
}
END_TEST

START_TEST(test_chunked_limits)
{
    const char *body = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    size_t len = strlen(body);
    struct sink out;
    bool done;
    char ext[4200];
    struct http_chunked c;

    ck_assert_int_eq(chunked_run(body, len, NULL, 0, 11, &out, &done),
                     (long)len);
    ck_assert(done);
    /* 413 as soon as the size line of the second chunk is complete. */
    ck_assert_int_eq(chunked_run(body, 13, NULL, 0, 10, &out, &done), -413);
    ck_assert_int_eq(chunked_run(body, 12, NULL, 0, 10, &out, &done), 12);
    ck_assert(same(out.buf, out.n, "hello"));

    /* Extensions: 4096 bytes (';' and 4095 more) fine, 4097 not. */
    for (size_t n = 4095; n <= 4096; n++) {
        ext[0] = '1';
        ext[1] = ';';
        memset(ext + 2, 'z', n);
        strcpy(ext + 2 + n, "\r\nx\r\n0\r\n\r\n");
        long want = n == 4095 ? (long)strlen(ext) : -400;
        ck_assert_int_eq(chunked_run(ext, strlen(ext), NULL, 0, 0, &out,
                                     &done), want);
    }

    /* The largest size is accepted; data NULL discards. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(http_chunked_feed(&c, "4000000000000000\r\nab", 20, 0,
                                       NULL, NULL, &done), 20);
    ck_assert(!done);
    ck_assert_uint_eq(c.remaining, ((uint64_t)1 << 62) - 2);
    /* Done: nothing more is consumed. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(http_chunked_feed(&c, "0\r\n\r\n", 5, 0, NULL, NULL,
                                       &done), 5);
    ck_assert(done);
    ck_assert_int_eq(http_chunked_feed(&c, "GET", 3, 0, NULL, NULL, &done),
                     0);
    ck_assert(done);
}
END_TEST

/*
 * Every byte value at every place of a header value, request target and
 * field name of 1 to 18 bytes (one word masked, whole words, an
 * overlapping last word: as the parser reads them), against the RFC 9110
 * classes written out here.
 */
static int ref_target(unsigned b)
{
    return b > 0x20 && b != 0x7f;
}

static int ref_value(unsigned b)
{
    return ref_target(b) || b == ' ' || b == '\t';
}

static int ref_tchar(unsigned b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') ||
           (b >= 'A' && b <= 'Z') ||
           (b != 0 && strchr("!#$%&'*+-.^_`|~", (int)b) != NULL);
}

/* around[0], len bytes of 'a' with b at k, around[1]: parsed as the
 * reference classes say. */
static void check_byte_at(const char *const around[2], int shape, unsigned b,
                          size_t len, size_t k)
{
    char req[128];
    size_t pre = strlen(around[0]), post = strlen(around[1]);
    size_t n = pre + len + post;

    memcpy(req, around[0], pre);
    memset(req + pre, 'a', len);
    req[pre + k] = (char)b;
    memcpy(req + pre + len, around[1], post);
    int ok = shape == 0   ? ref_value(b)
             : shape == 1 ? ref_target(b)
                          : ref_tchar(b) || b == ':';
    if (shape == 0 && b == '\n' && k == len - 1)
        return; /* a bare-LF line end: the head ends there */
    int r = parse_n(req, n, &std_limits);
    HOT_ASSERT(ok ? r == (int)n : r == -400,
               "shape %d, byte 0x%02x at %zu of %zu: %d", shape, b, k, len, r);
}

START_TEST(test_byte_classes)
{
    static const char *const around[3][2] = {
        { "GET / HTTP/1.1\r\nHost: x\r\nX-A: ", "\r\n\r\n" },
        { "GET /", " HTTP/1.1\r\nHost: x\r\n\r\n" },
        { "GET / HTTP/1.1\r\nHost: x\r\nX", ": v\r\n\r\n" },
    };
    static const size_t lens[] = { 1, 5, 7, 8, 9, 18 };

    for (unsigned b = 1; b < 256; b++)
        for (size_t li = 0; li < NELEMS(lens); li++)
            for (size_t k = 0; k < lens[li]; k++)
                for (int shape = 0; shape < 3; shape++)
                    check_byte_at(around[shape], shape, b, lens[li], k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_parse");
    TCase *tc = tcase_create("http_parse");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_valid, 0, (int)NELEMS(valid));
    tcase_add_loop_test(tc, test_invalid, 0, (int)NELEMS(invalid));
    tcase_add_test(tc, test_target_limit);
    tcase_add_test(tc, test_head_limit);
    tcase_add_test(tc, test_header_count);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_header_find);
    tcase_add_test(tc, test_byte_classes);
    tcase_add_loop_test(tc, test_chunked, 0, (int)NELEMS(chunked));
    tcase_add_test(tc, test_chunked_limits);
    suite_add_tcase(s, tc);
    return check_run(s);
}
