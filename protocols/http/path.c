/*
 * Request paths to names under a document root (RFC 3986 5.2.4, applied
 * after percent-decoding). One pass over the input, no allocation.
 *
 * out holds the names kept so far, each as "/name", so a ".." only has to
 * cut back to the last '/'. A name that does not fit is not written but
 * counted in "hidden": a later ".." may still remove it, and only if some
 * are left at the end is the answer 414. So the answer depends on the
 * result, not on how long the path grew on the way there.
 */
#include "protocols/http/path.h"

/* The normalised path being built. */
struct norm {
    char *out;
    size_t cap;
    size_t len;          /* bytes of out in use, "/a/b", no NUL yet */
    size_t hidden;       /* names kept that did not fit */
};

/* The value of the hex digit c, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The byte at in[*i], decoded if it starts an escape; *i moves past it.
 * Returns the byte (0..255) or -400 for a bad escape or a byte no name
 * may hold. A literal byte is held to the same rules as a decoded one:
 * the request parser in front is not trusted to have checked.
 */
static int next_byte(const char *in, size_t len, size_t *i)
{
    int b = (unsigned char)in[*i];

    if (b == '%') {
        if (len - *i < 3)
            return -400;
        int hi = hex_value(in[*i + 1]);
        int lo = hex_value(in[*i + 2]);
        if (hi < 0 || lo < 0)
            return -400;
        b = hi << 4 | lo;
        *i += 3;
    } else {
        *i += 1;
    }
    if (b < 0x20 || b == 0x7f || b == '\\')
        return -400;
    return b;
}

/* Drop the last name kept; -403 when there is none (".." at the root). */
static int norm_pop(struct norm *n)
{
    if (n->hidden > 0) {
        n->hidden--;
        return 0;
    }
    if (n->len == 0)
        return -403;
    do
        n->len--;
    while (n->out[n->len] != '/');
    return 0;
}

/*
 * The segment from in[*i] up to the next '/', literal or decoded; *i
 * moves past that '/'. *more says a '/' ended it (so another segment,
 * maybe empty, follows); *name says it was a name, not "", "." or "..".
 * Returns 0 or -status.
 */
static int norm_segment(struct norm *n, const char *in, size_t len,
                        size_t *i, int *more, int *name)
{
    size_t seg = 0;                 /* decoded bytes of the segment */
    int dots = 1;                   /* all of them '.' */
    int fits = n->hidden == 0 && n->len + 1 < n->cap;

    if (fits)
        n->out[n->len] = '/';
    *more = 0;
    while (*i < len) {
        int b = next_byte(in, len, i);
        if (b < 0)
            return b;
        if (b == '/') {
            *more = 1;
            break;
        }
        dots = dots && b == '.';
        seg++;
        /* Room for "/" and seg bytes, and the NUL after them. */
        fits = fits && n->len + 1 + seg < n->cap;
        if (fits)
            n->out[n->len + seg] = (char)b;
    }
    *name = !(seg == 0 || (dots && seg <= 2));
    if (dots && seg == 2)
        return norm_pop(n);
    if (!*name)
        return 0;
    if (fits)
        n->len += 1 + seg;
    else
        n->hidden++;
    return 0;
}

long http_path_normalise(const char *in, size_t len, char *out, size_t cap)
{
    struct norm n = { out, cap, 0, 0 };
    size_t i = 1;
    int more, name;

    if (len == 0 || in[0] != '/')
        return -400;
    do {
        int r = norm_segment(&n, in, len, &i, &more, &name);
        if (r < 0)
            return r;
    } while (more);
    /* Ending in "/", "/." or "/.." (or nothing kept): a directory. */
    size_t total = n.len + !name;
    if (n.hidden > 0 || total >= cap)
        return -414;
    if (!name)
        out[n.len] = '/';
    out[total] = '\0';
    return (long)total;
}
