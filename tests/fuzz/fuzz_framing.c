/*
 * libFuzzer target for shared/framing.c.
 *
 * The first bytes of the input choose a parser, its options and a way of
 * splitting the rest, the stream. The stream is run through a loop that
 * behaves like weft's delivery (keep the unconsumed tail, append the next
 * piece, parse tail and piece again, present the tail again when the
 * callback stopped) once in one piece and once split. Both runs must find
 * the same frames and end the same way, and the frames must rebuild the
 * stream they came from. Input layout:
 *
 *   byte 0    bit 0: 0 lines, 1 length-prefixed
 *             bits 1-2: the callback stops after every k-th frame (0: never)
 *             bits 3-6: pieces of 1 to 2^n bytes
 *   bytes 1-4 seed of the split pattern
 *   lines:    byte 5: delimiter length - 1 (low 3 bits); byte 6: max_line
 *             (0: no limit); then the delimiter; then the stream
 *   prefixed: byte 5: size (1, 2 or 4 by byte % 3); bytes 6-7: max,
 *             big-endian (0: no limit); then the stream
 *
 * Build and run: see README.md in this directory.
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parser and how to split the stream, read from the input. */
struct fuzz_opts {
    int prefixed;
    struct weft_lines lines;
    struct weft_prefixed pre;
    unsigned stop_every;
    unsigned piece_log;
    uint32_t seed;
};

/* The frames handed to the callback, end to end. */
struct frames {
    size_t n;
    size_t *end;             /* where frame i ends in data */
    char *data;
    unsigned stop_every;
    int stopped;
};

/* How a run over the whole stream ended. */
struct result {
    struct frames f;
    long err;                /* 0, or the negative return that ended it */
    size_t tail;             /* bytes left unconsumed when err is 0 */
};

/*
 * Read the options from the head of the input. Returns the bytes they
 * take, or 0 when the input is too short. The delimiter points into data.
 */
static size_t opts_read(struct fuzz_opts *o, const uint8_t *data,
                        size_t size)
{
    static const unsigned sizes[] = { 1, 2, 4 };

    if (size < 8)
        return 0;
    memset(o, 0, sizeof(*o));
    o->prefixed = data[0] & 1;
    o->stop_every = (data[0] >> 1) & 3;
    o->piece_log = (data[0] >> 3) & 15;
    o->seed = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
              (uint32_t)data[3] << 8 | data[4];
    if (o->prefixed) {
        o->pre.size = sizes[data[5] % 3];
        o->pre.max = (uint32_t)data[6] << 8 | data[7];
        return 8;
    }
    o->lines.delim_len = 1 + (data[5] & 7);
    o->lines.max_line = data[6];
    o->lines.delim = (const char *)data + 7;
    if (size < 7 + o->lines.delim_len)
        return 0;
    return 7 + o->lines.delim_len;
}

/* The frame callback: record the frame, stop when stop_every says so. */
static int collect(void *arg, const char *frame, size_t len)
{
    struct frames *f = arg;
    size_t at = f->n > 0 ? f->end[f->n - 1] : 0;

    if (len > 0)
        memcpy(f->data + at, frame, len);
    f->end[f->n++] = at + len;
    f->stopped = f->stop_every != 0 && f->n % f->stop_every == 0;
    return f->stopped;
}

/*
 * One call of the parser, on a copy of exactly len bytes so that the
 * sanitizer sees any read past the end.
 */
static long parse(const struct fuzz_opts *o, const char *data, size_t len,
                  struct frames *f)
{
    char *copy = malloc(len > 0 ? len : 1);
    long used;

    assert(copy != NULL);
    memcpy(copy, data, len);
    f->stopped = 0;
    if (o->prefixed)
        used = weft_prefixed_parse(&o->pre, copy, len, collect, f);
    else
        used = weft_lines_parse(&o->lines, copy, len, collect, f);
    free(copy);
    assert(used == WEFT_FRAME_TOO_LONG ||
           (used >= 0 && (size_t)used <= len));
    assert(used != 0 || !f->stopped);
    return used;
}

/* Drop the first used bytes of the tail. */
static void tail_consume(char *tail, size_t *tlen, long used)
{
    memmove(tail, tail + used, *tlen - (size_t)used);
    *tlen -= (size_t)used;
}

/* One read of plen bytes, as weft delivers it. Returns 0 or the error. */
static long deliver(const struct fuzz_opts *o, char *tail, size_t *tlen,
                    const char *piece, size_t plen, struct frames *f)
{
    long used;

    if (*tlen == 0) {
        used = parse(o, piece, plen, f);
        if (used < 0)
            return used;
        *tlen = plen - (size_t)used;
        memcpy(tail, piece + used, *tlen);
    } else {
        memcpy(tail + *tlen, piece, plen);
        *tlen += plen;
        used = parse(o, tail, *tlen, f);
        if (used < 0)
            return used;
        tail_consume(tail, tlen, used);
    }
    while (f->stopped && *tlen > 0) {
        used = parse(o, tail, *tlen, f);
        if (used < 0)
            return used;
        tail_consume(tail, tlen, used);
    }
    return 0;
}

/*
 * Run the stream through deliver, in one piece or in pieces of 1 to
 * 2^piece_log bytes drawn from the seed. r's buffers are the caller's.
 */
static void run(const struct fuzz_opts *o, const char *in, size_t len,
                int split, struct result *r)
{
    char *tail = malloc(len > 0 ? len : 1);
    uint32_t x = o->seed | 1;
    size_t tlen = 0, pos = 0;

    assert(tail != NULL);
    r->f.n = 0;
    r->f.stop_every = o->stop_every;
    r->err = 0;
    while (pos < len && r->err == 0) {
        size_t plen = len - pos;
        if (split) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t want = 1 + x % ((size_t)1 << o->piece_log);
            if (want < plen)
                plen = want;
        }
        r->err = deliver(o, tail, &tlen, in + pos, plen, &r->f);
        pos += plen;
    }
    r->tail = tlen;
    free(tail);
}

/* Offset of the first delimiter in p[0..n), or n: the plain way. */
static size_t naive_find(const char *p, size_t n, const char *d, size_t dl)
{
    for (size_t s = 0; s + dl <= n; s++)
        if (memcmp(p + s, d, dl) == 0)
            return s;
    return n;
}

/* Can the partial line p[0..n) still end within max bytes? */
static int naive_may_fit(const char *p, size_t n, const char *d, size_t dl,
                         size_t max)
{
    if (max == 0 || n <= max)
        return 1;
    for (size_t s = 0; s <= max; s++) {
        size_t k = n - s < dl ? n - s : dl;
        if (memcmp(p + s, d, k) == 0)
            return 1;
    }
    return 0;
}

/* The lines found rebuild the stream, and what is left is right. */
static void check_lines(const struct weft_lines *o, const char *in,
                        size_t len, const struct result *r)
{
    size_t pos = 0, at = 0;

    for (size_t i = 0; i < r->f.n; i++) {
        size_t n = r->f.end[i] - at;
        assert(o->max_line == 0 || n <= o->max_line);
        assert(naive_find(in + pos, len - pos, o->delim, o->delim_len) == n);
        assert(memcmp(in + pos, r->f.data + at, n) == 0);
        pos += n + o->delim_len;
        at = r->f.end[i];
    }
    const char *rest = in + pos;
    size_t left = len - pos;
    if (r->err == 0) {
        assert(r->tail == left);
        assert(naive_find(rest, left, o->delim, o->delim_len) == left);
        assert(naive_may_fit(rest, left, o->delim, o->delim_len,
                             o->max_line));
    } else {
        assert(r->err == WEFT_FRAME_TOO_LONG);
        assert(o->max_line != 0);
        assert(!naive_may_fit(rest, left, o->delim, o->delim_len,
                              o->max_line));
    }
}

/* The messages found rebuild the stream, and what is left is right. */
static void check_prefixed(const struct weft_prefixed *o, const char *in,
                           size_t len, const struct result *r)
{
    size_t pos = 0, at = 0;
    unsigned char hdr[4];

    for (size_t i = 0; i < r->f.n; i++) {
        size_t n = r->f.end[i] - at;
        assert(weft_prefixed_header(o, n, hdr) == (int)o->size);
        assert(pos + o->size + n <= len);
        assert(memcmp(in + pos, hdr, o->size) == 0);
        assert(memcmp(in + pos + o->size, r->f.data + at, n) == 0);
        pos += o->size + n;
        at = r->f.end[i];
    }
    size_t left = len - pos;
    if (left < o->size) {
        assert(r->err == 0 && r->tail == left);
        return;
    }
    uint32_t n = 0;
    for (unsigned b = 0; b < o->size; b++)
        n = (n << 8) | (unsigned char)in[pos + b];
    if (o->max != 0 && n > o->max) {
        assert(r->err == WEFT_FRAME_TOO_LONG);
    } else {
        assert(r->err == 0 && r->tail == left);
        assert(n > left - o->size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_opts o;
    struct result whole, split;
    size_t head = opts_read(&o, data, size);

    if (head == 0)
        return 0;
    const char *in = (const char *)data + head;
    size_t len = size - head;
    /* Every frame takes at least a byte, and no more bytes than in. */
    whole.f.end = malloc((len + 1) * sizeof(size_t));
    whole.f.data = malloc(len + 1);
    split.f.end = malloc((len + 1) * sizeof(size_t));
    split.f.data = malloc(len + 1);
    assert(whole.f.end && whole.f.data && split.f.end && split.f.data);

    run(&o, in, len, 0, &whole);
    run(&o, in, len, 1, &split);
    assert(whole.err == split.err);
    assert(whole.f.n == split.f.n);
    if (whole.f.n > 0) {
        size_t bytes = whole.f.end[whole.f.n - 1];
        assert(memcmp(whole.f.end, split.f.end,
                      whole.f.n * sizeof(size_t)) == 0);
        assert(memcmp(whole.f.data, split.f.data, bytes) == 0);
    }
    if (whole.err == 0)
        assert(whole.tail == split.tail);
    if (o.prefixed)
        check_prefixed(&o.pre, in, len, &whole);
    else
        check_lines(&o.lines, in, len, &whole);

    free(whole.f.end);
    free(whole.f.data);
    free(split.f.end);
    free(split.f.data);
    return 0;
}
