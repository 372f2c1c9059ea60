/*
 * Framing helpers for data_received: lines ended by a short delimiter and
 * messages after a big-endian length. Pure functions of (data, len): no
 * allocation, no I/O, no state kept between calls.
 *
 * Besides a count or WEFT_FRAME_TOO_LONG, both parsers return
 * WEFT_FRAME_BAD_OPTIONS when their options are unusable (NULL options,
 * delimiter or callback, a delimiter of 0 or more than 8 bytes, a length
 * size other than 1, 2, 4).
 */
#include "weft/framing.h"

#include <limits.h>
#include <string.h>

#define FRAMING_DELIM_MAX 8

/*
 * The count is returned as a long: never look at more bytes than a long
 * can count. The bytes left out are simply presented again next time.
 */
static size_t framing_clamp(size_t len)
{
    return len > (size_t)LONG_MAX ? (size_t)LONG_MAX : len;
}

/*
 * Offset of the first whole occurrence of delim (dlen bytes) in the n
 * bytes at p, or n when there is none. A one-byte delimiter, the usual
 * "\n", is a plain memchr; longer ones look for their first byte and
 * compare the rest.
 */
static size_t delim_find(const char *p, size_t n, const char *delim,
                         size_t dlen)
{
    const char *end = p + n;
    const char *q = p;

    if (dlen == 1) {
        q = memchr(p, delim[0], n);
        return q == NULL ? n : (size_t)(q - p);
    }
    while ((size_t)(end - q) >= dlen) {
        q = memchr(q, delim[0], (size_t)(end - q) - (dlen - 1));
        if (q == NULL)
            break;
        if (memcmp(q + 1, delim + 1, dlen - 1) == 0)
            return (size_t)(q - p);
        q++;
    }
    return n;
}

/*
 * The n bytes at p hold no whole delimiter and more than max bytes: can
 * the line still end within max bytes? Only if a delimiter starting at
 * some offset <= max runs past the end, i.e. the bytes from there on are
 * a prefix of it ("abc\r" with max 3 and "\r\n" may still be fine).
 */
static int delim_may_end(const char *p, size_t n, size_t max,
                         const char *delim, size_t dlen)
{
    size_t s = n >= dlen ? n - dlen + 1 : 0;

    for (; s <= max; s++)
        if (memcmp(p + s, delim, n - s) == 0)
            return 1;
    return 0;
}

/*
 * Hand each complete line of data to fn, without its delimiter. The
 * search for a delimiter is bounded by max_line, so an endless line costs
 * max_line bytes of scanning, not the whole buffer. Returns the bytes
 * consumed, WEFT_FRAME_TOO_LONG once a line, complete or not, can only be
 * longer than max_line, or WEFT_FRAME_BAD_OPTIONS.
 */
long weft_lines_parse(const struct weft_lines *o, const char *data,
                      size_t len, weft_frame_fn fn, void *arg)
{
    size_t pos = 0;

    if (o == NULL || o->delim == NULL || o->delim_len == 0 ||
        o->delim_len > FRAMING_DELIM_MAX || fn == NULL)
        return WEFT_FRAME_BAD_OPTIONS;
    len = framing_clamp(len);

    size_t dlen = o->delim_len;
    size_t max = o->max_line;
    while (pos < len) {
        const char *p = data + pos;
        size_t avail = len - pos;
        size_t window = avail;

        /* A delimiter starting after max would end a line too long. */
        if (max != 0 && avail > max && avail - max > dlen)
            window = max + dlen;
        size_t off = delim_find(p, window, o->delim, dlen);
        if (off == window) {
            if (max != 0 && avail > max &&
                !delim_may_end(p, avail, max, o->delim, dlen))
                return WEFT_FRAME_TOO_LONG;
            break;
        }
        pos += off + dlen;
        if (fn(arg, p, off) != 0)
            break;
    }
    return (long)pos;
}

/* The length prefix of size bytes at p, big-endian. */
static uint32_t prefix_read(const unsigned char *p, unsigned size)
{
    uint32_t n = 0;

    for (unsigned i = 0; i < size; i++)
        n = (n << 8) | p[i];
    return n;
}

/* The largest length that size bytes can hold, or 0 for a bad size. */
static uint32_t prefix_limit(unsigned size)
{
    switch (size) {
    case 1:
        return UINT8_MAX;
    case 2:
        return UINT16_MAX;
    case 4:
        return UINT32_MAX;
    default:
        return 0;
    }
}

/*
 * Hand each complete message body of data to fn. A length above max is
 * refused as soon as it is read, before its body has arrived. Returns the
 * bytes consumed, WEFT_FRAME_TOO_LONG, or WEFT_FRAME_BAD_OPTIONS.
 */
long weft_prefixed_parse(const struct weft_prefixed *o, const char *data,
                         size_t len, weft_frame_fn fn, void *arg)
{
    size_t pos = 0;

    if (o == NULL || prefix_limit(o->size) == 0 || fn == NULL)
        return WEFT_FRAME_BAD_OPTIONS;
    len = framing_clamp(len);

    size_t size = o->size;
    while (len - pos >= size) {
        const char *p = data + pos;
        uint32_t n = prefix_read((const unsigned char *)p, o->size);

        if (o->max != 0 && n > o->max)
            return WEFT_FRAME_TOO_LONG;
        if (n > len - pos - size)
            break;
        pos += size + n;
        if (fn(arg, p + size, n) != 0)
            break;
    }
    return (long)pos;
}

/*
 * Write the big-endian length of a body of len bytes into out. Returns
 * o->size, or -1 when len exceeds max or the size, or the size is bad.
 */
int weft_prefixed_header(const struct weft_prefixed *o, size_t len,
                         unsigned char out[4])
{
    uint32_t limit = prefix_limit(o->size);

    if (limit == 0)
        return -1;
    if (o->max != 0 && o->max < limit)
        limit = o->max;
    if (len > limit)
        return -1;
    for (unsigned i = 0; i < o->size; i++)
        out[i] = (unsigned char)(len >> 8 * (o->size - 1 - i));
    return (int)o->size;
}
