/*
 * The Range request header (RFC 9110 14.1.2, 14.2), one byte range.
 * Anything this does not understand is answered with 0, "send it all",
 * which the RFC always allows: a server MAY ignore Range.
 */
#include "protocols/http/range.h"

/* 1*DIGIT at p[*i..n), saturating at UINT64_MAX; -1 when there is none. */
static int digits_parse(const char *p, size_t n, size_t *i, uint64_t *v)
{
    size_t start = *i;

    *v = 0;
    for (; *i < n && p[*i] >= '0' && p[*i] <= '9'; (*i)++) {
        unsigned d = (unsigned)(p[*i] - '0');
        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    return *i > start ? 0 : -1;
}

/* p[0..n) is "bytes=" in any case. */
static int unit_is_bytes(const char *p, size_t n)
{
    static const char lit[] = "bytes=";

    if (n < sizeof(lit) - 1)
        return 0;
    for (size_t i = 0; i < sizeof(lit) - 1; i++) {
        char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + 32) : p[i];
        if (c != lit[i])
            return 0;
    }
    return 1;
}

int http_range_parse(const char *v, size_t len, uint64_t size,
                     uint64_t *first, uint64_t *last)
{
    size_t i = 6;                       /* past "bytes=" */
    uint64_t a, b;

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        len--;
    }
    if (!unit_is_bytes(v, len) || i == len)
        return 0;
    if (v[i] == '-') {
        /* suffix-range: the last b bytes, all of them if fewer. */
        i++;
        if (digits_parse(v, len, &i, &b) == -1 || i != len)
            return 0;
        if (b == 0 || size == 0)
            return -416;
        *first = b < size ? size - b : 0;
        *last = size - 1;
        return 1;
    }
    if (digits_parse(v, len, &i, &a) == -1 || i == len || v[i++] != '-')
        return 0;
    if (i == len) {
        b = UINT64_MAX;                 /* "A-": to the end */
    } else if (digits_parse(v, len, &i, &b) == -1 || i != len || b < a) {
        return 0;
    }
    if (a >= size)
        return -416;
    *first = a;
    *last = b < size ? b : size - 1;
    return 1;
}
