/*
 * HTTP/1.1 request heads and chunked bodies (RFC 9112). Pure functions of
 * (buf, len): no allocation, no I/O, nothing kept between calls but the
 * caller's struct http_chunked.
 *
 * The head parser is re-run from the start on each read. It checks the
 * bytes in order and stops at the first problem, so that a request cut
 * anywhere gives either "need more" or the very answer the whole request
 * gives: a client cannot change the outcome by how it splits its writes.
 */
#include "protocols/http/parse.h"

#include <limits.h>
#include <string.h>

#define HTTP_SIZE_MAX ((uint64_t)1 << 62)   /* Content-Length, chunk size */
#define HTTP_EXT_MAX 4096                   /* chunk-ext bytes per line */

/* Step results of the head parser besides 0 (need more) and -status. */
#define STEP_OK 1
#define STEP_END 2

/*
 * Byte classes, one table load per byte, built by the compiler from the
 * RFC 9110 definitions: token characters, field-value bytes (HT, SP,
 * VCHAR, obs-text) and request-target bytes (VCHAR, obs-text).
 */
enum { C_TCHAR = 1, C_VALUE = 2, C_TARGET = 4 };

#define IS_ALNUM(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') \
                     || ((c) >= 'a' && (c) <= 'z'))
#define IS_TCHAR(c) (IS_ALNUM(c) || (c) == '!' || (c) == '#' || (c) == '$' || \
                     (c) == '%' || (c) == '&' || (c) == '\'' ||             \
                     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || \
                     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || \
                     (c) == '~')
#define IS_TARGET(c) ((c) > 0x20 && (c) != 0x7f)
#define IS_VALUE(c) (IS_TARGET(c) || (c) == ' ' || (c) == '\t')
#define CLS(c) ((IS_TCHAR(c) ? C_TCHAR : 0) | (IS_VALUE(c) ? C_VALUE : 0) | \
                (IS_TARGET(c) ? C_TARGET : 0))
#define CLS4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)

static const unsigned char byte_class[256] = {
    CLS64(0), CLS64(64), CLS64(128), CLS64(192)
};

static inline int is_class(int cls, char c)
{
    return byte_class[(unsigned char)c] & cls;
}

/*
 * Eight bytes at a time: nonzero when one of them may be below lo (lo at
 * most 0x80) or equal to DEL. False alarms only come after a true one,
 * and the caller then checks those eight bytes one by one.
 */
static inline uint64_t swar_suspect(const char *p, unsigned lo)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
    uint64_t x, d;

    memcpy(&x, p, 8);
    d = x ^ (ones * 0x7f);
    return (((x - ones * lo) & ~x) | ((d - ones) & ~d)) & high;
}

static int bytes_class(const char *p, size_t n, int cls)
{
    for (size_t i = 0; i < n; i++)
        if (!is_class(cls, p[i]))
            return 0;
    return 1;
}

/*
 * Every byte of p[0..n) is of class cls; lo is the lowest byte the class
 * allows besides HT (0x21 for targets, 0x20 for values). avail >= n bytes
 * may be read from p: a short run is read as one word when 8 are there,
 * its other bytes masked off (a false alarm only goes upwards, to them),
 * and the last word of a long run overlaps the one before.
 */
static int all_class(const char *p, size_t n, size_t avail, int cls,
                     unsigned lo)
{
    size_t i;

    if (n < 8) {
        if (avail < 8)
            return bytes_class(p, n, cls);
        uint64_t mine = ((uint64_t)1 << (8 * n)) - 1; /* little-endian */
        return (swar_suspect(p, lo) & mine) == 0 || bytes_class(p, n, cls);
    }
    for (i = 0; i + 8 <= n; i += 8)
        if (swar_suspect(p + i, lo) != 0 && !bytes_class(p + i, 8, cls))
            return 0;
    return i == n || swar_suspect(p + n - 8, lo) == 0 ||
           bytes_class(p + n - 8, 8, cls);
}

static inline char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static inline int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* p[0..n) equals the lower-case lit[0..litn), in any case. */
static int ci_equal_n(const char *p, size_t n, const char *lit, size_t litn)
{
    if (n != litn)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(p[i]) != lit[i])
            return 0;
    return 1;
}

/* ... for a string literal lit: its length is known at compile time. */
#define ci_equal(p, n, lit) ci_equal_n((p), (n), (lit), sizeof(lit) - 1)

/* The head being parsed: buf[0..len), len already cut to max_head. */
struct head {
    const char *buf;
    size_t len;
    size_t pos;
    size_t max_target;
};

/*
 * Skip the empty lines a client may send before the request line
 * (RFC 9112 2.2). A CR must be followed by LF.
 */
static int head_skip_empty(struct head *h)
{
    const char *p = h->buf;

    while (h->pos < h->len) {
        if (p[h->pos] == '\n') {
            h->pos++;
        } else if (p[h->pos] == '\r') {
            if (h->pos + 1 >= h->len)
                return 0;
            if (p[h->pos + 1] != '\n')
                return -400;
            h->pos += 2;
        } else {
            return STEP_OK;
        }
    }
    return 0;
}

/* The method's enum; case matters (RFC 9110 9.1). */
static enum http_method method_lookup(const char *p, size_t n)
{
    static const struct {
        const char *s;
        size_t n;
        enum http_method m;
    } known[] = {
        { "GET", 3, HTTP_GET },         { "HEAD", 4, HTTP_HEAD },
        { "POST", 4, HTTP_POST },       { "PUT", 3, HTTP_PUT },
        { "DELETE", 6, HTTP_DELETE },   { "OPTIONS", 7, HTTP_OPTIONS },
        { "PATCH", 5, HTTP_PATCH },     { "CONNECT", 7, HTTP_CONNECT },
        { "TRACE", 5, HTTP_TRACE },
    };

    if (n == 3 && p[0] == 'G' && p[1] == 'E' && p[2] == 'T')
        return HTTP_GET; /* most requests: no table walk */
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].n == n && memcmp(known[i].s, p, n) == 0)
            return known[i].m;
    return HTTP_OTHER;
}

/* method SP: a non-empty token followed by exactly one space. */
static int head_method(struct head *h, struct http_request *req)
{
    const char *p = h->buf + h->pos;
    size_t n = h->len - h->pos;
    size_t i = 0;

    while (i < n && is_class(C_TCHAR, p[i]))
        i++;
    if (i == n)
        return 0;
    if (p[i] != ' ' || i == 0)
        return -400;
    req->method_str = p;
    req->method_len = i;
    req->method = method_lookup(p, i);
    h->pos += i + 1;
    return STEP_OK;
}

/* p[0..n) starts with the lower-case scheme prefix s, in any case. */
static int has_prefix_ci(const char *p, size_t n, const char *s, size_t sn)
{
    return n > sn && ci_equal_n(p, sn, s, sn);
}

/* host ":" port, for CONNECT (RFC 9112 3.2.3). */
static int authority_form(const char *p, size_t n)
{
    size_t colon = n;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '/' || p[i] == '?' || p[i] == '#' || p[i] == '@')
            return 0;
        if (p[i] == ':')
            colon = i;
    }
    if (colon == 0 || colon >= n - 1)
        return 0;
    for (size_t i = colon + 1; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* origin-form, '*' for OPTIONS, absolute-form, authority for CONNECT. */
static int target_form_ok(enum http_method m, const char *p, size_t n)
{
    if (p[0] == '/')
        return 1;
    if (n == 1 && p[0] == '*')
        return m == HTTP_OPTIONS;
    if (has_prefix_ci(p, n, "http://", 7) ||
        has_prefix_ci(p, n, "https://", 8))
        return 1;
    return m == HTTP_CONNECT && authority_form(p, n);
}

/*
 * request-target SP. Only the first max_target bytes are checked for bad
 * bytes: past them the answer is 414 whatever follows, and a partial
 * target gets it as soon as it is one byte too long.
 */
static int head_target(struct head *h, struct http_request *req)
{
    const char *p = h->buf + h->pos;
    size_t n = h->len - h->pos;
    size_t max = h->max_target;
    size_t scan = max != 0 && n > max + 1 ? max + 1 : n;
    const char *sp = memchr(p, ' ', scan);
    size_t t = sp != NULL ? (size_t)(sp - p) : scan;
    size_t check = max != 0 && t > max ? max : t;

    if (!all_class(p, check, n, C_TARGET, 0x21))
        return -400;
    if (max != 0 && t > max)
        return -414;
    if (sp == NULL)
        return 0;
    if (t == 0 || !target_form_ok(req->method, p, t))
        return -400;
    req->target = p;
    req->target_len = t;
    const char *q = memchr(p, '?', t);
    req->path = p;
    req->path_len = q != NULL ? (size_t)(q - p) : t;
    req->query = q != NULL ? q + 1 : NULL;
    req->query_len = q != NULL ? t - req->path_len - 1 : 0;
    h->pos += t + 1;
    return STEP_OK;
}

/*
 * HTTP-version and the end of the request line. The partial version is
 * checked against "HTTP/d.d" as it comes; a well-formed version other
 * than 1.0 and 1.1 is 505, anything else 400.
 */
static int head_version(struct head *h, struct http_request *req)
{
    static const char pat[] = "HTTP/d.d";
    const char *p = h->buf + h->pos;
    size_t n = h->len - h->pos;
    size_t m = n < 8 ? n : 8;
    size_t end;

    /* Nearly every request says HTTP/1.1 or 1.0: check those at once. */
    if (m < 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '1' && p[7] != '0'))
        for (size_t i = 0; i < m; i++) {
            if (pat[i] == 'd' ? p[i] < '0' || p[i] > '9' : p[i] != pat[i])
                return -400;
        }
    if (n < 9)
        return 0;
    if (p[8] == '\n') {
        end = 9;
    } else if (p[8] == '\r') {
        if (n < 10)
            return 0;
        if (p[9] != '\n')
            return -400;
        end = 10;
    } else {
        return -400;
    }
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return -505;
    req->minor = p[7] - '0';
    h->pos += end;
    return STEP_OK;
}

/*
 * One header line, or the empty line ending the head (STEP_END). A line
 * is judged only once complete. No whitespace before ':' and no line
 * starting with whitespace (obs-fold): both let two parsers disagree
 * about the fields (RFC 9112 5.1, 5.2).
 */
static int head_field(struct head *h, struct http_request *req)
{
    const char *p = h->buf + h->pos;
    size_t n = h->len - h->pos;

    if (n == 0)
        return 0;
    if (p[0] == '\n' || p[0] == '\r') {
        size_t e = p[0] == '\n' ? 1 : 2;
        if (n < e)
            return 0;
        if (e == 2 && p[1] != '\n')
            return -400;
        h->pos += e;
        return STEP_END;
    }
    const char *lf = memchr(p, '\n', n);
    if (lf == NULL)
        return 0;
    size_t next = (size_t)(lf - p) + 1;
    size_t end = next - 1;
    if (p[end - 1] == '\r')
        end--;

    size_t i = 0;
    while (i < end && is_class(C_TCHAR, p[i]))
        i++;
    if (i == 0 || i == end || p[i] != ':')
        return -400;
    size_t v = i + 1, e = end;
    while (v < e && is_ows(p[v]))
        v++;
    while (e > v && is_ows(p[e - 1]))
        e--;
    if (!all_class(p + v, e - v, n - v, C_VALUE, 0x20))
        return -400;
    if (req->nheaders == HTTP_MAX_HEADERS)
        return -431;
    struct http_header *f = &req->headers[req->nheaders++];
    f->name = p;
    f->name_len = i;
    f->value = p + v;
    f->value_len = e - v;
    h->pos += next;
    return STEP_OK;
}

/*
 * The next non-empty element of the comma-separated list p[0..n) from
 * *at on, without OWS. Returns 0 at the end of the list.
 */
static int list_next(const char *p, size_t n, size_t *at, const char **el,
                     size_t *el_len)
{
    while (*at < n) {
        const char *s = p + *at;
        const char *comma = memchr(s, ',', n - *at);
        size_t len = comma != NULL ? (size_t)(comma - s) : n - *at;

        *at += len + (comma != NULL);
        while (len > 0 && is_ows(s[0])) {
            s++;
            len--;
        }
        while (len > 0 && is_ows(s[len - 1]))
            len--;
        if (len > 0) {
            *el = s;
            *el_len = len;
            return 1;
        }
    }
    return 0;
}

/* Content-Length: 1*DIGIT up to 2^62, or -1. */
static int64_t content_length_parse(const char *p, size_t n)
{
    uint64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (HTTP_SIZE_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    return (int64_t)v;
}

/* What the fields say about framing and the connection. */
struct head_meta {
    size_t hosts;
    bool te;                 /* some Transfer-Encoding seen */
    size_t te_codings;       /* codings in all of them */
    bool te_last_chunked;
    bool conn_close;
    bool conn_keep_alive;
};

/* Fold one field into req and m. Returns 0 or -status. */
static int field_apply(const struct http_header *f, struct http_request *req,
                       struct head_meta *m)
{
    const char *el;
    size_t el_len, at = 0;

    if (ci_equal(f->name, f->name_len, "host")) {
        if (++m->hosts > 1)
            return -400;
        req->host = f->value;
        req->host_len = f->value_len;
    } else if (ci_equal(f->name, f->name_len, "content-length")) {
        int64_t cl = content_length_parse(f->value, f->value_len);
        if (cl < 0 || (req->content_length >= 0 && cl != req->content_length))
            return -400;
        req->content_length = cl;
    } else if (ci_equal(f->name, f->name_len, "transfer-encoding")) {
        m->te = true;
        while (list_next(f->value, f->value_len, &at, &el, &el_len)) {
            m->te_codings++;
            m->te_last_chunked = ci_equal(el, el_len, "chunked");
        }
    } else if (ci_equal(f->name, f->name_len, "connection")) {
        while (list_next(f->value, f->value_len, &at, &el, &el_len)) {
            if (ci_equal(el, el_len, "close"))
                m->conn_close = true;
            else if (ci_equal(el, el_len, "keep-alive"))
                m->conn_keep_alive = true;
        }
    } else if (ci_equal(f->name, f->name_len, "expect")) {
        if (ci_equal(f->value, f->value_len, "100-continue"))
            req->expect_continue = true;
    }
    return 0;
}

/*
 * The checks that need the whole head: message framing (RFC 9112 6.3),
 * Host (RFC 9112 3.2) and persistence (RFC 9112 9.3).
 */
static int head_finish(struct http_request *req)
{
    struct head_meta m;
    int r;

    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < req->nheaders; i++)
        if ((r = field_apply(&req->headers[i], req, &m)) != 0)
            return r;
    if (req->minor == 1 && m.hosts == 0)
        return -400;
    if (m.te) {
        if (req->minor == 0 || req->content_length >= 0 ||
            m.te_codings == 0)
            return -400;
        if (m.te_codings != 1 || !m.te_last_chunked)
            return -501;
        req->chunked = true;
    }
    if (req->minor == 1)
        req->keep_alive = !m.conn_close;
    else
        req->keep_alive = m.conn_keep_alive && !m.conn_close;
    return 0;
}

/* The steps of a head in order; 0 or -status stop them. */
static int head_parse(struct head *h, struct http_request *req)
{
    int r;

    if ((r = head_skip_empty(h)) <= 0 || (r = head_method(h, req)) <= 0 ||
        (r = head_target(h, req)) <= 0 || (r = head_version(h, req)) <= 0)
        return r;
    while ((r = head_field(h, req)) == STEP_OK)
        ;
    if (r <= 0)
        return r;
    if ((r = head_finish(req)) < 0)
        return r;
    return STEP_OK;
}

/*
 * Parse a request head; see parse.h. Only the first max_head bytes are
 * ever looked at (INT_MAX without a limit, as the length is an int): a
 * head not complete within them is 431 once more bytes have come.
 */
int http_parse_request(const char *buf, size_t len,
                       const struct http_limits *lim,
                       struct http_request *req)
{
    size_t cap = lim != NULL && lim->max_head != 0 ? lim->max_head : INT_MAX;
    struct head h;
    int r;

    if (cap > INT_MAX)
        cap = INT_MAX;
    h.buf = buf;
    h.len = len < cap ? len : cap;
    h.pos = 0;
    h.max_target = lim != NULL ? lim->max_target : 0;
    memset(req, 0, offsetof(struct http_request, headers));
    req->nheaders = 0;
    req->content_length = -1;
    req->chunked = req->keep_alive = req->expect_continue = false;
    req->host = NULL;
    req->host_len = 0;
    r = head_parse(&h, req);
    if (r == 0)
        return len > cap ? -431 : 0;
    return r < 0 ? r : (int)h.pos;
}

const struct http_header *http_header_find(const struct http_request *req,
                                           const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *f = &req->headers[i];
        size_t k = 0;

        if (f->name_len != n)
            continue;
        while (k < n && ascii_lower(f->name[k]) == ascii_lower(name[k]))
            k++;
        if (k == n)
            return f;
    }
    return NULL;
}

/* The chunked decoder's states; 0 is the start. */
enum {
    CH_SIZE = 0,        /* first hex digit of a size line */
    CH_SIZE_MORE,       /* more digits, ';', or the line end */
    CH_EXT_WS,          /* BWS between the size and ';' */
    CH_EXT,             /* chunk-ext up to the line end */
    CH_SIZE_LF,         /* CR seen on the size line */
    CH_DATA,
    CH_DATA_CR,         /* CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER,         /* start of a trailer line, or the final CRLF */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_END_LF,          /* CR of the final empty line seen */
    CH_DONE,
    CH_FAILED
};

static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * A size line is complete: a zero size starts the trailer section, any
 * other the data, unless it would take the body past max_body.
 */
static int chunk_size_end(struct http_chunked *c, uint64_t max_body)
{
    if (c->remaining == 0) {
        c->state = CH_TRAILER;
        return 0;
    }
    if (max_body != 0 && c->remaining > max_body - c->total)
        return -413;
    c->total += c->remaining;
    c->state = CH_DATA;
    return 0;
}

/* One more chunk-ext byte: counted, and no control bytes but HT. */
static int chunk_ext_byte(struct http_chunked *c, char ch)
{
    if (!is_class(C_VALUE, ch) || ++c->line > HTTP_EXT_MAX)
        return -400;
    return 0;
}

/* One byte of the size line: the size in hex and its extensions. */
static int chunk_size_byte(struct http_chunked *c, char ch, uint64_t max)
{
    int d = hex_value(ch);

    switch (c->state) {
    case CH_SIZE:
        if (d < 0)
            return -400;
        c->remaining = (uint64_t)d;
        c->line = 0;
        c->state = CH_SIZE_MORE;
        return 0;
    case CH_SIZE_MORE:
        if (d >= 0) {
            if (c->remaining > (HTTP_SIZE_MAX - (uint64_t)d) / 16)
                return -400;
            c->remaining = c->remaining * 16 + (uint64_t)d;
            return 0;
        }
        if (ch == '\r') {
            c->state = CH_SIZE_LF;
            return 0;
        }
        if (ch == '\n')
            return chunk_size_end(c, max);
        c->state = ch == ';' ? CH_EXT : is_ows(ch) ? CH_EXT_WS : CH_FAILED;
        return c->state == CH_FAILED ? -400 : chunk_ext_byte(c, ch);
    case CH_EXT_WS:
        if (ch == ';')
            c->state = CH_EXT;
        else if (!is_ows(ch))
            return -400;
        return chunk_ext_byte(c, ch);
    case CH_EXT:
        if (ch == '\r') {
            c->state = CH_SIZE_LF;
            return 0;
        }
        if (ch == '\n')
            return chunk_size_end(c, max);
        return chunk_ext_byte(c, ch);
    default: /* CH_SIZE_LF */
        return ch == '\n' ? chunk_size_end(c, max) : -400;
    }
}

/* One byte after the data or in the trailer section. */
static int chunk_tail_byte(struct http_chunked *c, char ch)
{
    switch (c->state) {
    case CH_DATA_CR:
        c->state = ch == '\r' ? CH_DATA_LF : ch == '\n' ? CH_SIZE : CH_FAILED;
        break;
    case CH_DATA_LF:
    case CH_TRAILER_LF:
        c->state = ch != '\n' ? CH_FAILED
                   : c->state == CH_DATA_LF ? CH_SIZE : CH_TRAILER;
        break;
    case CH_TRAILER:
        /* A trailer line may not start with whitespace (obs-fold). */
        c->state = ch == '\r'   ? CH_END_LF
                   : ch == '\n' ? CH_DONE
                   : is_class(C_TARGET, ch) ? CH_TRAILER_LINE : CH_FAILED;
        break;
    case CH_TRAILER_LINE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (ch == '\n')
            c->state = CH_TRAILER;
        else if (!is_class(C_VALUE, ch))
            c->state = CH_FAILED;
        break;
    case CH_END_LF:
        c->state = ch == '\n' ? CH_DONE : CH_FAILED;
        break;
    default:
        c->state = CH_FAILED;
        break;
    }
    return c->state == CH_FAILED ? -400 : 0;
}

/* As much chunk data as is there, straight to the callback. */
static size_t chunk_data(struct http_chunked *c, const char *p, size_t n,
                         void (*data)(void *, const char *, size_t),
                         void *arg)
{
    if (n > c->remaining)
        n = (size_t)c->remaining;
    if (data != NULL)
        data(arg, p, n);
    c->remaining -= n;
    if (c->remaining == 0)
        c->state = CH_DATA_CR;
    return n;
}

/*
 * Decode chunked body bytes; see parse.h. The data goes to the callback
 * in pieces as large as the input allows; only the framing is read one
 * byte at a time.
 */
long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
                       uint64_t max_body,
                       void (*data)(void *arg, const char *p, size_t n),
                       void *arg, bool *done)
{
    size_t pos = 0;
    int r;

    if (len > LONG_MAX)
        len = LONG_MAX;
    *done = false;
    if (c->state == CH_FAILED)
        return -400;
    while (pos < len && c->state != CH_DONE) {
        if (c->state == CH_DATA) {
            pos += chunk_data(c, buf + pos, len - pos, data, arg);
            continue;
        }
        if (c->state <= CH_SIZE_LF)
            r = chunk_size_byte(c, buf[pos], max_body);
        else
            r = chunk_tail_byte(c, buf[pos]);
        if (r < 0) {
            c->state = CH_FAILED;
            return r;
        }
        pos++;
    }
    *done = c->state == CH_DONE;
    return (long)pos;
}
