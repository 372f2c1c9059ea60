/*
 * A recursive-descent JSON reader; see json.h. The grammar is RFC 8259's,
 * strictly: no comments, no trailing commas, no NaN, no leading '+' or
 * zeros, no raw control characters in strings.
 */
#include "tools/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *start, *p, *end;
    struct json_doc *d;
    const char *err; /* static text, NULL while all is well */
    size_t err_at;
};

/* Record the first error, at the current position. Returns -1. */
static int fail(struct parser *ps, const char *what)
{
    if (ps->err == NULL) {
        ps->err = what;
        ps->err_at = (size_t)(ps->p - ps->start);
    }
    return -1;
}

static void skip_space(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* A new zeroed node; its index in *idx. Indices stay valid, pointers
 * into the array do not (it grows). */
static int node_new(struct parser *ps, size_t *idx)
{
    struct json_doc *d = ps->d;

    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct json_node *nodes = realloc(d->nodes, cap * sizeof(*nodes));
        if (nodes == NULL)
            return fail(ps, "out of memory");
        d->nodes = nodes;
        d->cap = cap;
    }
    memset(&d->nodes[d->n], 0, sizeof(d->nodes[0]));
    *idx = d->n++;
    return 0;
}

/*
 * Room for n more bytes in the pool. The pool is sized once, len + 1
 * bytes for len of input (json_parse), and that is always enough: a
 * decoded string is shorter than its quoted input, so its NUL fits; a
 * number takes its lexeme plus a NUL, but is always followed by a byte
 * that belongs to no value, or by the end of the input. So this failing
 * means a bug in the reader: a guard, not a policy.
 */
static char *pool_take(struct parser *ps, size_t n)
{
    struct json_doc *d = ps->d;

    if (d->pool_cap - d->pool_len < n) {
        fail(ps, "internal error: string pool exhausted");
        return NULL;
    }
    char *at = d->pool + d->pool_len;
    d->pool_len += n;
    return at;
}

/*
 * Length of the valid UTF-8 sequence at p (before end), or 0 when it is
 * not one: overlong forms, surrogates and code points past U+10FFFF are
 * refused, as RFC 3629 says.
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Write code point cp as UTF-8 at out; returns the bytes written. */
static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Four hex digits at ps->p (after "\u"): their value, or -1. */
static long hex4(struct parser *ps)
{
    long v = 0;

    if (ps->end - ps->p < 4)
        return fail(ps, "unexpected end of input in \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        int x = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (x == -1)
            return fail(ps, "invalid \\u escape");
        v = v << 4 | x;
    }
    ps->p += 4;
    return v;
}

/*
 * The code point of a \u escape whose "\u" was just read, joining a
 * surrogate pair written as two escapes. Returns it, or -1.
 */
static long escape_u(struct parser *ps)
{
    long hi = hex4(ps), lo;

    if (hi == -1)
        return -1;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return fail(ps, "lone low surrogate in \\u escape");
    if (hi < 0xd800 || hi > 0xdbff)
        return hi;
    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
        return fail(ps, "lone high surrogate in \\u escape");
    ps->p += 2;
    lo = hex4(ps);
    if (lo == -1)
        return -1;
    if (lo < 0xdc00 || lo > 0xdfff)
        return fail(ps, "lone high surrogate in \\u escape");
    return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
}

/* One escape after a backslash, decoded to out (4 bytes); returns its
 * length or -1. */
static int escape(struct parser *ps, char *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;
    long cp;

    if (ps->p == ps->end)
        return fail(ps, "unexpected end of input in a string");
    if (*ps->p == 'u') {
        ps->p++;
        cp = escape_u(ps);
        return cp == -1 ? -1 : (int)utf8_put(out, (unsigned)cp);
    }
    hit = memchr(from, *ps->p, sizeof(from) - 1);
    if (hit == NULL)
        return fail(ps, "invalid escape in a string");
    ps->p++;
    *out = to[hit - from];
    return 1;
}

/* Append n bytes to the string being decoded at *w, keeping a byte for
 * its NUL. */
static int string_put(struct parser *ps, char **w, const char *src,
                      size_t n)
{
    struct json_doc *d = ps->d;

    if ((size_t)(d->pool + d->pool_cap - *w) < n + 1)
        return fail(ps, "internal error: string pool exhausted");
    memcpy(*w, src, n);
    *w += n;
    return 0;
}

/*
 * A string starting at the opening quote, decoded into the pool (see
 * pool_take for why it fits). *out and *len receive the text,
 * NUL-terminated, and its length.
 */
static int parse_string(struct parser *ps, const char **out, size_t *len)
{
    char *buf = ps->d->pool + ps->d->pool_len, *w = buf, esc[4];
    const unsigned char *u;
    size_t n;

    ps->p++;
    for (;;) {
        if (ps->p == ps->end)
            return fail(ps, "unexpected end of input in a string");
        u = (const unsigned char *)ps->p;
        if (*u == '"')
            break;
        if (*u < 0x20)
            return fail(ps, "control character in a string");
        if (*u == '\\') {
            ps->p++;
            int k = escape(ps, esc);
            if (k == -1 || string_put(ps, &w, esc, (size_t)k) == -1)
                return -1;
            continue;
        }
        n = utf8_len(u, (const unsigned char *)ps->end);
        if (n == 0)
            return fail(ps, "invalid UTF-8 in a string");
        if (string_put(ps, &w, ps->p, n) == -1)
            return -1;
        ps->p += n;
    }
    ps->p++;
    *len = (size_t)(w - buf);
    *w = '\0';
    pool_take(ps, *len + 1); /* string_put kept room for it */
    *out = buf;
    return 0;
}

static bool is_digit(const struct parser *ps)
{
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

/* The value of the decimal digits [p, end) in *mag; false when it does
 * not fit in 64 bits. */
static bool integer_fits(const char *p, const char *end, uint64_t *mag)
{
    uint64_t v = 0;

    for (; p < end; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *mag = v;
    return true;
}

/* A number into node idx: its lexeme, double and, if exact, integer. */
static int parse_number(struct parser *ps, size_t idx)
{
    const char *from = ps->p, *digits;
    bool integral = true;

    if (*ps->p == '-')
        ps->p++;
    digits = ps->p;
    if (!is_digit(ps))
        return fail(ps, "invalid number");
    if (*ps->p++ != '0')
        while (is_digit(ps))
            ps->p++;
    const char *digits_end = ps->p;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        integral = false;
        if (!is_digit(ps))
            return fail(ps, "invalid number: no digit after '.'");
        while (is_digit(ps))
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        integral = false;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!is_digit(ps))
            return fail(ps, "invalid number: no digit in the exponent");
        while (is_digit(ps))
            ps->p++;
    }
    size_t n = (size_t)(ps->p - from);
    char *text = pool_take(ps, n + 1);
    if (text == NULL)
        return -1;
    memcpy(text, from, n);
    text[n] = '\0';

    struct json_node *node = &ps->d->nodes[idx];
    node->type = JSON_NUMBER;
    node->str = text;
    node->len = n;
    node->neg = *from == '-';
    node->num = strtod(text, NULL);
    node->integral = integral && integer_fits(digits, digits_end, &node->mag);
    return 0;
}

/* The literal word (true, false, null) at ps->p, or -1. */
static int parse_word(struct parser *ps, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    return 0;
}

static int parse_value(struct parser *ps, int depth, size_t *idx);

/*
 * The members or elements of the container in node idx, whose opening
 * bracket was just read, up to and including close. Objects read a key
 * and a colon before each value.
 */
static int parse_items(struct parser *ps, int depth, size_t idx, char close)
{
    bool object = close == '}';
    size_t prev = 0, child, count = 0;
    const char *key = NULL;
    size_t key_len = 0;

    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        skip_space(ps);
        if (object) {
            if (ps->p == ps->end || *ps->p != '"')
                return fail(ps, "expected a member name");
            if (parse_string(ps, &key, &key_len) == -1)
                return -1;
            skip_space(ps);
            if (ps->p == ps->end || *ps->p != ':')
                return fail(ps, "expected ':' after a member name");
            ps->p++;
        }
        if (parse_value(ps, depth + 1, &child) == -1)
            return -1;
        ps->d->nodes[child].key = key;
        ps->d->nodes[child].key_len = key_len;
        if (prev == 0)
            ps->d->nodes[idx].first = child;
        else
            ps->d->nodes[prev].next = child;
        prev = child;
        ps->d->nodes[idx].len = ++count;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* One value, after optional whitespace; its node's index in *idx. */
static int parse_value(struct parser *ps, int depth, size_t *idx)
{
    struct json_node *node;

    skip_space(ps);
    if (ps->p == ps->end)
        return fail(ps, "unexpected end of input");
    if (depth >= JSON_MAX_DEPTH)
        return fail(ps, "nesting too deep");
    if (node_new(ps, idx) == -1)
        return -1;
    node = &ps->d->nodes[*idx];
    switch (*ps->p) {
    case '{':
        node->type = JSON_OBJECT;
        ps->p++;
        return parse_items(ps, depth, *idx, '}');
    case '[':
        node->type = JSON_ARRAY;
        ps->p++;
        return parse_items(ps, depth, *idx, ']');
    case '"':
        node->type = JSON_STRING;
        return parse_string(ps, &node->str, &node->len);
    case 't':
    case 'f':
        node->type = JSON_BOOL;
        node->b = *ps->p == 't';
        return parse_word(ps, node->b ? "true" : "false");
    case 'n':
        node->type = JSON_NULL;
        return parse_word(ps, "null");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, *idx);
        return fail(ps, "unexpected character");
    }
}

int json_parse(struct json_doc *d, const char *buf, size_t len, char *err,
               size_t errlen)
{
    struct parser ps = { buf, buf, buf + len, d, NULL, 0 };
    size_t root;

    memset(d, 0, sizeof(*d));
    d->pool_cap = len + 1;
    d->pool = malloc(d->pool_cap);
    if (d->pool == NULL) {
        fail(&ps, "out of memory");
        goto fail;
    }
    if (parse_value(&ps, 0, &root) == -1)
        goto fail;
    skip_space(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "unexpected data after the value");
        goto fail;
    }
    return 0;
fail:
    if (errlen > 0)
        snprintf(err, errlen, "offset %zu: %s", ps.err_at, ps.err);
    json_free(d);
    return -1;
}

void json_free(struct json_doc *d)
{
    free(d->nodes);
    free(d->pool);
    memset(d, 0, sizeof(*d));
}

const struct json_node *json_root(const struct json_doc *d)
{
    return d->n > 0 ? &d->nodes[0] : NULL;
}

const struct json_node *json_first(const struct json_doc *d,
                                   const struct json_node *n)
{
    return n != NULL && n->first != 0 ? &d->nodes[n->first] : NULL;
}

const struct json_node *json_next(const struct json_doc *d,
                                  const struct json_node *n)
{
    return n != NULL && n->next != 0 ? &d->nodes[n->next] : NULL;
}

const struct json_node *json_get(const struct json_doc *d,
                                 const struct json_node *obj,
                                 const char *key)
{
    size_t n = strlen(key);

    if (obj == NULL || obj->type != JSON_OBJECT)
        return NULL;
    for (const struct json_node *m = json_first(d, obj); m != NULL;
         m = json_next(d, m))
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    return NULL;
}

const char *json_str(const struct json_node *n)
{
    return n != NULL && n->type == JSON_STRING ? n->str : NULL;
}

int json_uint(const struct json_node *n, uint64_t *out)
{
    if (n == NULL || n->type != JSON_NUMBER || !n->integral ||
        (n->neg && n->mag != 0))
        return -1;
    *out = n->mag;
    return 0;
}

int json_int(const struct json_node *n, int64_t *out)
{
    if (n == NULL || n->type != JSON_NUMBER || !n->integral)
        return -1;
    if (!n->neg && n->mag > (uint64_t)INT64_MAX)
        return -1;
    if (n->neg && n->mag > (uint64_t)INT64_MAX + 1)
        return -1;
    /* -2^63 has no positive twin: negate in unsigned arithmetic. */
    *out = n->neg ? (int64_t)(0 - n->mag) : (int64_t)n->mag;
    return 0;
}

int json_num(const struct json_node *n, double *out)
{
    if (n == NULL || n->type != JSON_NUMBER)
        return -1;
    *out = n->num;
    return 0;
}

int json_bool(const struct json_node *n, bool *out)
{
    if (n == NULL || n->type != JSON_BOOL)
        return -1;
    *out = n->b;
    return 0;
}
