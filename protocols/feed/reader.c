/*
 * feed: input framing for data_received, over weft's framing helpers.
 *
 * Two things the helpers leave to their caller are done here. A frame
 * handler may refuse a frame (FEED_FRAME_AGAIN: the bus is full), which
 * then stays unconsumed, so the count returned is the end of the last
 * frame taken, tracked here, not what the helper consumed. And a frame
 * too long is dropped rather than fatal: a line up to its "\n", a
 * prefixed body by its length, so the stream stays in step and the
 * handler is told (frame NULL) where it was, in order with the others.
 */
#include <string.h>

#include "protocols/feed/feed.h"
#include "weft/framing.h"

#define READER_PREFIX 4 /* bytes of a body's length */

struct read_ctx {
    const char *base;
    size_t trail; /* delimiter bytes after a frame */
    size_t done;  /* end of the last frame taken, from base */
    feed_frame_fn fn;
    void *arg;
};

static int read_frame(void *arg, const char *frame, size_t len)
{
    struct read_ctx *x = arg;
    size_t end = (size_t)(frame - x->base) + len + x->trail;
    int rc = x->fn(x->arg, frame, len);

    if (rc == FEED_FRAME_AGAIN)
        return 1;
    x->done = end;
    return rc == FEED_FRAME_STOP;
}

/* Drop what is left of a frame too long; returns the bytes dropped. */
static size_t read_skip(struct feed_reader *rd, const char *data, size_t len)
{
    if (rd->skip_line) {
        const char *nl = memchr(data, '\n', len);
        if (nl == NULL)
            return len;
        rd->skip_line = false;
        return (size_t)(nl - data) + 1;
    }
    size_t n = rd->skip < len ? rd->skip : len;
    rd->skip -= n;
    return n;
}

/* The length of the body whose prefix is at p. */
static size_t read_prefix(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | u[3];
}

/* One pass of the framing helper from data; frames go through x. */
static long read_parse(const struct feed_reader *rd, const char *data,
                       size_t len, struct read_ctx *x)
{
    if (rd->framing == FEED_LINE) {
        const struct weft_lines o = {"\n", 1, rd->max};
        x->trail = 1;
        return weft_lines_parse(&o, data, len, read_frame, x);
    }
    const struct weft_prefixed o = {READER_PREFIX, (uint32_t)rd->max};
    x->trail = 0;
    return weft_prefixed_parse(&o, data, len, read_frame, x);
}

size_t feed_read(struct feed_reader *rd, const char *data, size_t len,
                 feed_frame_fn fn, void *arg)
{
    size_t pos = 0;

    for (;;) {
        pos += read_skip(rd, data + pos, len - pos);
        if (rd->skip_line || rd->skip > 0)
            return pos;
        struct read_ctx x = {.base = data + pos, .fn = fn, .arg = arg};
        long r = read_parse(rd, data + pos, len - pos, &x);
        if (r != WEFT_FRAME_TOO_LONG)
            return pos + x.done;
        /* The frame too long starts where the last one taken ended. */
        pos += x.done;
        if (rd->framing == FEED_LINE)
            rd->skip_line = true;
        else
            rd->skip = READER_PREFIX + read_prefix(data + pos);
        if (fn(arg, NULL, 0) != FEED_FRAME_NEXT)
            return pos;
    }
}
