/*
 * Unit tests for shared/framing.c. Most tests feed a stream through a
 * loop that behaves like weft's own delivery (keep the unconsumed tail,
 * append the next piece, parse tail and piece again, and present the
 * tail once more when the protocol paused) for many ways of splitting the
 * stream, and check that the frames found never depend on the splits.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check_run.h"
#include "weft/framing.h"

#define BAD_OPTIONS WEFT_FRAME_BAD_OPTIONS
#define FRAMES_MAX 64
#define RANDOM_RUNS 1000

/*
 * For the loops that run millions of times: Check's own ck_assert notes
 * every assertion that passes in a file, which would cost seconds.
 */
#define HOT_ASSERT(expr, ...)                                           \
    do {                                                                \
        if (!(expr))                                                    \
            ck_abort_msg("'" #expr "' failed: " __VA_ARGS__);           \
    } while (0)

/* The frames handed to the callback, end to end. */
struct frames {
    size_t n;
    size_t end[FRAMES_MAX];  /* where frame i ends in data */
    char *data;
    size_t cap;
    unsigned stop_every;     /* the callback stops after every k-th frame */
    int stopped;             /* the last frame asked to stop */
};

/* What a run over a whole stream ends with. */
struct outcome {
    struct frames f;
    long err;                /* 0, or the negative return that ended it */
    size_t tail;             /* bytes left unconsumed (when err is 0) */
};

/* One parser and its options; exact: copy the input of each call to a
 * buffer of exactly its size, so ASan sees any read past its end. */
struct parser {
    const struct weft_lines *lines;
    const struct weft_prefixed *prefixed;
    int exact;
};

/* An xorshift generator: the same cut patterns on every run. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void frames_init(struct frames *f, size_t cap, unsigned stop_every)
{
    memset(f, 0, sizeof(*f));
    f->data = malloc(cap > 0 ? cap : 1);
    HOT_ASSERT(f->data != NULL, "out of memory");
    f->cap = cap;
    f->stop_every = stop_every;
}

static void frames_free(struct frames *f)
{
    free(f->data);
    f->data = NULL;
}

/* Build the expected frames from strings (lengths by strlen). */
static void frames_from(struct frames *f, const char *const *v, size_t n)
{
    size_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += strlen(v[i]);
    frames_init(f, total, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        size_t at = f->n > 0 ? f->end[f->n - 1] : 0;
        memcpy(f->data + at, v[i], len);
        f->end[f->n++] = at + len;
    }
}

/* The frame callback: record the frame, stop when stop_every says so. */
static int collect(void *arg, const char *frame, size_t len)
{
    struct frames *f = arg;
    size_t at = f->n > 0 ? f->end[f->n - 1] : 0;

    HOT_ASSERT(f->n < FRAMES_MAX, "too many frames");
    HOT_ASSERT(at + len <= f->cap, "more frame bytes than input");
    if (len > 0)
        memcpy(f->data + at, frame, len);
    f->end[f->n++] = at + len;
    f->stopped = f->stop_every != 0 && f->n % f->stop_every == 0;
    return f->stopped;
}

static int frames_equal(const struct frames *a, const struct frames *b)
{
    if (a->n != b->n)
        return 0;
    if (a->n == 0)
        return 1;
    for (size_t i = 0; i < a->n; i++)
        if (a->end[i] != b->end[i])
            return 0;
    return memcmp(a->data, b->data, a->end[a->n - 1]) == 0;
}

/* Call the parser once, on an exact copy of data when ps->exact. */
static long parse(const struct parser *ps, const char *data, size_t len,
                  struct frames *f)
{
    char *copy = NULL;
    long used;

    if (ps->exact) {
        copy = malloc(len > 0 ? len : 1);
        HOT_ASSERT(copy != NULL, "out of memory");
        memcpy(copy, data, len);
        data = copy;
    }
    f->stopped = 0;
    if (ps->lines != NULL)
        used = weft_lines_parse(ps->lines, data, len, collect, f);
    else
        used = weft_prefixed_parse(ps->prefixed, data, len, collect, f);
    free(copy);
    HOT_ASSERT(used == WEFT_FRAME_TOO_LONG ||
               (used >= 0 && (size_t)used <= len),
               "returned %ld for %zu bytes", used, len);
    return used;
}

/* Drop the first used bytes of the tail. */
static void tail_consume(char *tail, size_t *tlen, size_t used)
{
    memmove(tail, tail + used, *tlen - used);
    *tlen -= used;
}

/*
 * One read of plen bytes, as weft's conn_deliver and conn_redeliver
 * handle it. tail (owned by the caller, as large as the whole stream)
 * holds what is left unconsumed. Returns 0, or the error of the parser.
 */
static long deliver(const struct parser *ps, char *tail, size_t *tlen,
                    const char *piece, size_t plen, struct frames *f)
{
    long used;

    if (*tlen == 0) {
        used = parse(ps, piece, plen, f);
        if (used < 0)
            return used;
        *tlen = plen - (size_t)used;
        memcpy(tail, piece + used, *tlen);
    } else {
        memcpy(tail + *tlen, piece, plen);
        *tlen += plen;
        used = parse(ps, tail, *tlen, f);
        if (used < 0)
            return used;
        tail_consume(tail, tlen, (size_t)used);
    }
    /* The protocol paused: it resumes and gets the tail again. */
    while (f->stopped && *tlen > 0) {
        used = parse(ps, tail, *tlen, f);
        if (used < 0)
            return used;
        tail_consume(tail, tlen, (size_t)used);
    }
    return 0;
}

/*
 * Run the stream in[0..len) through deliver, cut before each of the
 * ncuts ascending offsets of cuts. Fills out, which the caller frees.
 */
static void run(const struct parser *ps, const char *in, size_t len,
                const size_t *cuts, size_t ncuts, unsigned stop_every,
                struct outcome *out)
{
    char *tail = malloc(len > 0 ? len : 1);
    size_t tlen = 0, start = 0;

    HOT_ASSERT(tail != NULL, "out of memory");
    frames_init(&out->f, len, stop_every);
    out->err = 0;
    for (size_t i = 0; i <= ncuts && out->err == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end == start)
            continue; /* weft never delivers zero bytes */
        out->err = deliver(ps, tail, &tlen, in + start, end - start,
                           &out->f);
        start = end;
    }
    out->tail = tlen;
    free(tail);
}

/* Run with the given cuts and compare with what was expected. */
static void run_expect(const struct parser *ps, const char *in, size_t len,
                       const size_t *cuts, size_t ncuts, unsigned stop_every,
                       const struct outcome *want)
{
    struct outcome got;

    run(ps, in, len, cuts, ncuts, stop_every, &got);
    HOT_ASSERT(got.err == want->err, "error %ld, expected %ld (%zu cuts)",
               got.err, want->err, ncuts);
    HOT_ASSERT(frames_equal(&got.f, &want->f),
               "%zu frames, %zu expected (%zu cuts)", got.f.n, want->f.n,
               ncuts);
    HOT_ASSERT(want->err != 0 || got.tail == want->tail,
               "tail of %zu, expected %zu (%zu cuts)", got.tail, want->tail,
               ncuts);
    frames_free(&got.f);
}

/* Cut points for a random pattern: pieces of 1 to some maximum bytes. */
static size_t random_cuts(size_t *cuts, size_t len)
{
    static const size_t maxes[] = { 1, 2, 3, 5, 8, 16, 64, 1000 };
    size_t max = maxes[rng_next() % (sizeof(maxes) / sizeof(maxes[0]))];
    size_t n = 0, at = 0;

    for (;;) {
        at += 1 + rng_next() % max;
        if (at >= len)
            return n;
        cuts[n++] = at;
    }
}

/*
 * Check that in[0..len) gives want for every way of splitting it that a
 * test can afford: all at once, a byte at a time, each single cut, each
 * pair of cuts (when pairs), and random patterns, some pausing the parser
 * after every first, second or third frame.
 */
static void check_splits(const struct parser *ps, const char *in,
                         size_t len, const struct outcome *want, int pairs,
                         int random_runs)
{
    size_t *cuts = calloc(len > 0 ? len : 1, sizeof(*cuts));
    size_t c[2];

    ck_assert_ptr_nonnull(cuts);
    run_expect(ps, in, len, NULL, 0, 0, want);
    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    run_expect(ps, in, len, cuts, len > 0 ? len - 1 : 0, 0, want);
    run_expect(ps, in, len, cuts, len > 0 ? len - 1 : 0, 1, want);
    for (c[0] = 1; pairs && c[0] < len; c[0]++) {
        run_expect(ps, in, len, c, 1, 0, want);
        for (c[1] = c[0] + 1; c[1] < len; c[1]++)
            run_expect(ps, in, len, c, 2, 0, want);
    }
    rng_state = 0x9e3779b97f4a7c15u;
    for (int r = 0; r < random_runs; r++) {
        size_t n = random_cuts(cuts, len);
        run_expect(ps, in, len, cuts, n, (unsigned)r % 4, want);
    }
    free(cuts);
}

/*
 * Join lines with delim (plus a trailing partial line) into buf, which
 * must be large enough; fill want with the lines. Returns the length.
 */
static size_t lines_build(char *buf, const char *const *v, size_t n,
                          const char *delim, const char *partial,
                          struct outcome *want)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        memcpy(buf + len, v[i], strlen(v[i]));
        len += strlen(v[i]);
        memcpy(buf + len, delim, strlen(delim));
        len += strlen(delim);
    }
    memcpy(buf + len, partial, strlen(partial));
    len += strlen(partial);
    frames_from(&want->f, v, n);
    want->err = 0;
    want->tail = strlen(partial);
    return len;
}

/* Check a set of lines, all splits, with the given delimiter and max. */
static void check_lines(const char *const *v, size_t n, const char *delim,
                        size_t max, const char *partial)
{
    struct weft_lines o = { delim, strlen(delim), max };
    struct parser ps = { &o, NULL, 1 };
    struct outcome want;
    char buf[512];

    size_t len = lines_build(buf, v, n, delim, partial, &want);
    ck_assert_uint_le(len, 120); /* short enough for every pair of cuts */
    check_splits(&ps, buf, len, &want, 1, RANDOM_RUNS);
    frames_free(&want.f);
}

START_TEST(test_lines_lf)
{
    static const char *const v[] = {
        "", "hello", "a\rb", "\r", "", "x y z", "\r\r", "end\r",
        "a much longer line than the others, to vary the lengths",
    };
    check_lines(v, sizeof(v) / sizeof(v[0]), "\n", 0, "tail\r");
    check_lines(v, sizeof(v) / sizeof(v[0]), "\n", 60, "");
    check_lines(v, 2, "\n", 5, ""); /* a lone delimiter at the end */
}
END_TEST

START_TEST(test_lines_crlf)
{
    static const char *const v[] = {
        "", "GET / HTTP/1.0", "a\rb", "\r", "\n", "x\ny", "\r\r", "",
        "exactly16bytes!!", "a\n\r", "\n\n",
    };
    check_lines(v, sizeof(v) / sizeof(v[0]), "\r\n", 16, "tail\r");
    check_lines(v, sizeof(v) / sizeof(v[0]), "\r\n", 0, "\r");
}
END_TEST

/* Delimiters that overlap themselves or are 8 bytes long. */
START_TEST(test_lines_long_delims)
{
    static const char *const v[] = {
        "", "a", "aa", "ba", "xaa", "b", "ab", "aaaa",
    };
    static const char *const w[] = {
        "x<<END>>", "", "<<END>>", "<<END", "one\n", "\n",
    };
    check_lines(v, sizeof(v) / sizeof(v[0]), "aab", 0, "aa");
    check_lines(v, sizeof(v) / sizeof(v[0]), "aab", 4, "a");
    check_lines(w, sizeof(w) / sizeof(w[0]), "<<END>>\n", 8, "ab<<END>>");
}
END_TEST

/* A stream whose line number n (from 0) is too long, all splits. */
static void check_too_long(const char *in, const char *delim, size_t max,
                           const char *const *before, size_t n)
{
    struct weft_lines o = { delim, strlen(delim), max };
    struct parser ps = { &o, NULL, 1 };
    struct outcome want;

    frames_from(&want.f, before, n);
    want.err = WEFT_FRAME_TOO_LONG;
    want.tail = 0;
    check_splits(&ps, in, strlen(in), &want, 1, RANDOM_RUNS);
    frames_free(&want.f);
}

START_TEST(test_lines_too_long_complete)
{
    static const char *const v[] = { "ok", "12345", "" };
    static const char *const w[] = { "abc", "ab\r" };

    check_too_long("ok\n12345\n\n123456\nafter\n", "\n", 5, v, 3);
    check_too_long("abc\r\nab\r\r\nabcd\r\nmore\r\n", "\r\n", 3, w, 2);
    check_too_long("abcd", "\n", 3, NULL, 0);
    check_too_long("abc\rx", "\r\n", 3, NULL, 0);
}
END_TEST

/*
 * Feed in a byte at a time; the error must come with byte number at
 * (from 1), exactly when the partial line can no longer fit in max.
 */
static void check_error_at(const char *in, const char *delim, size_t max,
                           size_t at)
{
    struct weft_lines o = { delim, strlen(delim), max };
    struct parser ps = { &o, NULL, 1 };
    struct frames f;
    char tail[256];
    size_t tlen = 0, len = strlen(in);
    long r = 0;

    ck_assert_uint_le(at, len);
    frames_init(&f, len, 0);
    for (size_t i = 0; i < at; i++) {
        r = deliver(&ps, tail, &tlen, in + i, 1, &f);
        if (i + 1 < at)
            ck_assert_msg(r == 0, "%s: error at byte %zu, not %zu", in,
                          i + 1, at);
    }
    ck_assert_msg(r == WEFT_FRAME_TOO_LONG, "%s: no error at byte %zu", in,
                  at);
    frames_free(&f);
}

START_TEST(test_lines_too_long_partial)
{
    check_error_at("abcdefgh", "\n", 3, 4);
    check_error_at("ok\nabcdefgh", "\n", 3, 7);
    check_error_at("abc\rx", "\r\n", 3, 5);
    check_error_at("abc\r\r", "\r\n", 3, 5);
    check_error_at("ab\r\r\nabcde", "\r\n", 3, 9);
    check_error_at("xyaaa", "aab", 2, 5);
    check_error_at("xyab", "aab", 2, 4);
    check_error_at("ab<<END!", "<<END>>\n", 2, 8);
    check_error_at("xy<<END>>\n", "<<END>>\n", 1, 2);
    check_error_at("x<<END>>\nxy", "<<END>>\n", 1, 11);

    /* A partial line of exactly max, or max plus a delimiter prefix. */
    struct weft_lines o = { "\r\n", 2, 3 };
    struct frames f;
    frames_init(&f, 16, 0);
    ck_assert_int_eq(weft_lines_parse(&o, "abc", 3, collect, &f), 0);
    ck_assert_int_eq(weft_lines_parse(&o, "abc\r", 4, collect, &f), 0);
    ck_assert_int_eq(weft_lines_parse(&o, "ab\r\r", 4, collect, &f), 0);
    ck_assert_uint_eq(f.n, 0);
    frames_free(&f);
}
END_TEST

/* The scan for a delimiter stops at max_line: a huge line fails fast. */
START_TEST(test_lines_too_long_huge)
{
    struct weft_lines o = { "\r\n", 2, 100 };
    size_t len = 1 << 24;
    char *big = malloc(len);
    struct frames f;

    ck_assert_ptr_nonnull(big);
    memset(big, 'x', len);
    frames_init(&f, 16, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(weft_lines_parse(&o, big, len, collect, &f),
                         WEFT_FRAME_TOO_LONG);
    o.max_line = SIZE_MAX; /* no overflow in max + delim_len */
    ck_assert_int_eq(weft_lines_parse(&o, big, len, collect, &f), 0);
    ck_assert_uint_eq(f.n, 0);
    frames_free(&f);
    free(big);
}
END_TEST

START_TEST(test_lines_exact_max)
{
    struct weft_lines o = { "\n", 1, 4 };
    struct frames f;

    frames_init(&f, 64, 0);
    ck_assert_int_eq(weft_lines_parse(&o, "abcd\nab\n", 8, collect, &f), 8);
    ck_assert_uint_eq(f.n, 2);
    ck_assert_uint_eq(f.end[0], 4);
    ck_assert_int_eq(weft_lines_parse(&o, "abcd", 4, collect, &f), 0);
    ck_assert_int_eq(weft_lines_parse(&o, "abcde", 5, collect, &f),
                     WEFT_FRAME_TOO_LONG);
    ck_assert_int_eq(weft_lines_parse(&o, "\n", 1, collect, &f), 1);
    o.max_line = 1;
    ck_assert_int_eq(weft_lines_parse(&o, "a\n\nb", 4, collect, &f), 3);
    ck_assert_int_eq(weft_lines_parse(&o, "ab", 2, collect, &f),
                     WEFT_FRAME_TOO_LONG);
    ck_assert_uint_eq(f.n, 5);
    frames_free(&f);
}
END_TEST

START_TEST(test_lines_crlf_split)
{
    struct weft_lines o = { "\r\n", 2, 0 };
    struct parser ps = { &o, NULL, 1 };
    struct frames f;
    char tail[64];
    size_t tlen = 0;

    frames_init(&f, 64, 0);
    ck_assert_int_eq(deliver(&ps, tail, &tlen, "abc\r", 4, &f), 0);
    ck_assert_uint_eq(f.n, 0);
    ck_assert_uint_eq(tlen, 4);
    ck_assert_int_eq(deliver(&ps, tail, &tlen, "\ndef\r", 5, &f), 0);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(f.end[0], 3);
    ck_assert(memcmp(f.data, "abc", 3) == 0);
    ck_assert_uint_eq(tlen, 4);
    ck_assert_int_eq(deliver(&ps, tail, &tlen, "\n", 1, &f), 0);
    ck_assert_uint_eq(f.n, 2);
    ck_assert(memcmp(f.data + 3, "def", 3) == 0);
    ck_assert_uint_eq(tlen, 0);
    frames_free(&f);
}
END_TEST

/*
 * Messages of the given lengths, with bytes 0x00 to 0xff in them, plus
 * a partial message of partial bytes (header included).
 */
static char *prefixed_build(const struct weft_prefixed *o, const size_t *lens,
                            size_t n, size_t partial, size_t *len,
                            struct outcome *want)
{
    size_t total = partial;
    unsigned char hdr[4];

    for (size_t i = 0; i < n; i++)
        total += o->size + lens[i];
    char *buf = malloc(total + o->size + 2);
    ck_assert_ptr_nonnull(buf);
    frames_init(&want->f, total, 0);
    want->err = 0;
    want->tail = partial;
    *len = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t body = i < n ? lens[i] : partial + 2;
        ck_assert_int_eq(weft_prefixed_header(o, body, hdr), (int)o->size);
        memcpy(buf + *len, hdr, o->size);
        for (size_t k = 0; k < body; k++)
            buf[*len + o->size + k] = (char)(k * 37 + i);
        if (i < n)
            collect(&want->f, buf + *len + o->size, body);
        *len += o->size + body;
    }
    *len = total; /* the last message is cut after partial bytes */
    return buf;
}

START_TEST(test_prefixed_splits)
{
    static const size_t lens[] = { 0, 1, 0, 7, 3, 0, 20, 2 };
    static const unsigned sizes[] = { 1, 2, 4 };
    size_t n = sizeof(lens) / sizeof(lens[0]);

    for (int i = 0; i < 3; i++) {
        for (size_t partial = 0; partial < 4; partial++) {
            struct weft_prefixed o = { sizes[i], partial % 2 ? 20 : 0 };
            struct parser ps = { NULL, &o, 1 };
            struct outcome want;
            size_t len;
            char *buf = prefixed_build(&o, lens, n, partial, &len, &want);
            check_splits(&ps, buf, len, &want, partial == 1, RANDOM_RUNS);
            frames_free(&want.f);
            free(buf);
        }
    }
}
END_TEST

/* The longest bodies each size allows, among small ones. */
START_TEST(test_prefixed_big)
{
    static const size_t lens1[] = { 0, 255, 1, 255, 0 };
    static const size_t lens2[] = { 3, 65535, 0, 255, 256, 65535 };
    static const size_t lens4[] = { 65536, 0, 70000, 1 };
    static const struct {
        struct weft_prefixed o;
        const size_t *lens;
        size_t n;
    } cases[] = {
        { { 1, 0 }, lens1, 5 },
        { { 1, 255 }, lens1, 5 },
        { { 2, 0 }, lens2, 6 },
        { { 2, 65535 }, lens2, 6 },
        { { 4, 0 }, lens4, 4 },
        { { 4, 70000 }, lens4, 4 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parser ps = { NULL, &cases[i].o, 0 };
        struct outcome want;
        size_t len;
        char *buf = prefixed_build(&cases[i].o, cases[i].lens, cases[i].n,
                                   3, &len, &want);
        check_splits(&ps, buf, len, &want, 0, 20);
        frames_free(&want.f);
        free(buf);
    }
}
END_TEST

START_TEST(test_prefixed_too_long)
{
    struct weft_prefixed o = { 1, 5 };
    struct parser ps = { NULL, &o, 1 };
    struct outcome want;
    struct frames f;
    static const char *const a[] = { "a", "hello" };

    frames_init(&f, 64, 0);
    /* Refused on the length alone, before any of the body. */
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x06", 1, collect, &f),
                     WEFT_FRAME_TOO_LONG);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x05hell", 5, collect, &f), 0);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x05hello", 6, collect, &f), 6);
    o = (struct weft_prefixed){ 2, 300 };
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x01", 1, collect, &f), 0);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x01\x2c", 2, collect, &f), 0);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\x01\x2d", 2, collect, &f),
                     WEFT_FRAME_TOO_LONG);
    o = (struct weft_prefixed){ 4, 70000 };
    ck_assert_int_eq(weft_prefixed_parse(&o, "\0\x01\x11\x70", 4, collect,
                                         &f), 0);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\0\x01\x11\x71", 4, collect,
                                         &f), WEFT_FRAME_TOO_LONG);
    ck_assert_int_eq(weft_prefixed_parse(&o, "\xff\0\0\0", 4, collect, &f),
                     WEFT_FRAME_TOO_LONG);
    ck_assert_uint_eq(f.n, 1);
    frames_free(&f);

    /* The messages before the long one are handed over, for any split. */
    o = (struct weft_prefixed){ 1, 5 };
    frames_from(&want.f, a, 2);
    want.err = WEFT_FRAME_TOO_LONG;
    want.tail = 0;
    static const char in[] = "\x01" "a\x05hello\x06toolong\x00";
    check_splits(&ps, in, sizeof(in) - 1, &want, 1, RANDOM_RUNS);
    frames_free(&want.f);
}
END_TEST

START_TEST(test_prefixed_header)
{
    static const unsigned sizes[] = { 1, 2, 4 };
    static const size_t lens[] = { 0, 1, 255, 256, 65535, 65536, 70000 };
    unsigned char hdr[4];
    struct frames f;

    frames_init(&f, 0, 0);
    for (int i = 0; i < 3; i++) {
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            struct weft_prefixed o = { sizes[i], 0 };
            int fits = lens[k] <= (sizes[i] == 1 ? 255u :
                                   sizes[i] == 2 ? 65535u : UINT32_MAX);
            int r = weft_prefixed_header(&o, lens[k], hdr);
            if (!fits) {
                ck_assert_int_eq(r, -1);
                continue;
            }
            ck_assert_int_eq(r, (int)sizes[i]);
            /* The header alone: a message waiting for its body. */
            long used = weft_prefixed_parse(&o, (char *)hdr, sizes[i],
                                            collect, &f);
            ck_assert_int_eq(used, lens[k] == 0 ? (long)sizes[i] : 0);
            uint32_t n = 0;
            for (unsigned b = 0; b < sizes[i]; b++)
                n = (n << 8) | hdr[b];
            ck_assert_uint_eq(n, lens[k]);
            o.max = (uint32_t)lens[k] + 1;
            ck_assert_int_eq(weft_prefixed_header(&o, lens[k], hdr), r);
            if (lens[k] > 1) { /* a max of 0 means no limit */
                o.max = (uint32_t)lens[k] - 1;
                ck_assert_int_eq(weft_prefixed_header(&o, lens[k], hdr), -1);
            }
        }
    }
    struct weft_prefixed o = { 1, 1000 }; /* max above what 1 byte holds */
    ck_assert_int_eq(weft_prefixed_header(&o, 255, hdr), 1);
    ck_assert_int_eq(weft_prefixed_header(&o, 256, hdr), -1);
    o = (struct weft_prefixed){ 4, 0 };
    ck_assert_int_eq(weft_prefixed_header(&o, UINT32_MAX, hdr), 4);
    ck_assert(memcmp(hdr, "\xff\xff\xff\xff", 4) == 0);
    if (SIZE_MAX > UINT32_MAX)
        ck_assert_int_eq(weft_prefixed_header(&o, (size_t)UINT32_MAX + 1,
                                              hdr), -1);
    o.size = 3;
    ck_assert_int_eq(weft_prefixed_header(&o, 1, hdr), -1);
    frames_free(&f);
}
END_TEST

/* A callback that stops: the count includes that frame, no more. */
START_TEST(test_stop)
{
    struct weft_lines lo = { "\n", 1, 0 };
    struct weft_prefixed po = { 2, 0 };
    static const char lines[] = "a\nbb\n\nccc\n";
    static const char msgs[] = "\0\1a\0\2bb\0\0\0\3ccc";
    struct frames f;
    size_t pos;
    long r;

    frames_init(&f, 64, 1);
    for (pos = 0; pos < sizeof(lines) - 1; pos += (size_t)r) {
        size_t n = f.n;
        r = weft_lines_parse(&lo, lines + pos, sizeof(lines) - 1 - pos,
                             collect, &f);
        ck_assert_int_gt(r, 0);
        ck_assert_uint_eq(f.n, n + 1);
        ck_assert_uint_eq(f.end[n] - (n ? f.end[n - 1] : 0), (size_t)r - 1);
    }
    ck_assert_uint_eq(f.n, 4);
    ck_assert(memcmp(f.data, "abbccc", 6) == 0);
    frames_free(&f);

    frames_init(&f, 64, 2);
    r = weft_prefixed_parse(&po, msgs, sizeof(msgs) - 1, collect, &f);
    ck_assert_int_eq(r, 7);
    ck_assert_uint_eq(f.n, 2);
    r = weft_prefixed_parse(&po, msgs + 7, sizeof(msgs) - 8, collect, &f);
    ck_assert_int_eq(r, sizeof(msgs) - 8);
    ck_assert_uint_eq(f.n, 4);
    ck_assert_uint_eq(f.end[2], 3);
    ck_assert(memcmp(f.data, "abbccc", 6) == 0);
    frames_free(&f);
}
END_TEST

START_TEST(test_bad_options)
{
    struct weft_lines lo = { "\n", 0, 0 };
    struct weft_prefixed po = { 3, 0 };
    struct frames f;

    frames_init(&f, 16, 0);
    ck_assert_int_eq(weft_lines_parse(&lo, "a\n", 2, collect, &f),
                     BAD_OPTIONS);
    lo = (struct weft_lines){ "123456789", 9, 0 };
    ck_assert_int_eq(weft_lines_parse(&lo, "a\n", 2, collect, &f),
                     BAD_OPTIONS);
    lo = (struct weft_lines){ NULL, 1, 0 };
    ck_assert_int_eq(weft_lines_parse(&lo, "a\n", 2, collect, &f),
                     BAD_OPTIONS);
    lo = (struct weft_lines){ "12345678", 8, 0 };
    ck_assert_int_eq(weft_lines_parse(&lo, "a12345678", 9, collect, &f), 9);
    ck_assert_int_eq(weft_lines_parse(&lo, "a\n", 2, NULL, NULL),
                     BAD_OPTIONS);
    ck_assert_int_eq(weft_prefixed_parse(&po, "\0\0\0", 3, collect, &f),
                     BAD_OPTIONS);
    po.size = 0;
    ck_assert_int_eq(weft_prefixed_parse(&po, "", 0, collect, &f),
                     BAD_OPTIONS);
    po.size = 8;
    ck_assert_int_eq(weft_prefixed_parse(&po, "", 0, collect, &f),
                     BAD_OPTIONS);
    po.size = 1;
    ck_assert_int_eq(weft_prefixed_parse(&po, "\0", 1, NULL, NULL),
                     BAD_OPTIONS);
    ck_assert_uint_eq(f.n, 1);
    frames_free(&f);
}
END_TEST

START_TEST(test_empty)
{
    struct weft_lines lo = { "\r\n", 2, 3 };
    struct weft_prefixed po = { 4, 0 };
    struct frames f;

    frames_init(&f, 16, 0);
    ck_assert_int_eq(weft_lines_parse(&lo, NULL, 0, collect, &f), 0);
    ck_assert_int_eq(weft_prefixed_parse(&po, NULL, 0, collect, &f), 0);
    ck_assert_uint_eq(f.n, 0);
    frames_free(&f);
}
END_TEST

/*
 * Every prefix of some awkward inputs, each in a buffer of exactly its
 * size: the sanitizer build catches any read past len.
 */
START_TEST(test_no_overread)
{
    static const struct weft_lines lopts[] = {
        { "\n", 1, 0 }, { "\n", 1, 3 }, { "\r\n", 2, 0 }, { "\r\n", 2, 3 },
        { "aab", 3, 2 }, { "<<END>>\n", 8, 0 }, { "<<END>>\n", 8, 4 },
    };
    static const struct weft_prefixed popts[] = {
        { 1, 0 }, { 2, 0 }, { 4, 0 }, { 1, 3 }, { 2, 300 }, { 4, 9 },
    };
    static const char in[] = "ab\r\nabc\r\r\naa\naab<<END>>\nx<<END>>"
                             "\0\0\0\0\1\0\3abc\0\0\0\2\r\n\r";
    struct frames f;

    for (size_t start = 0; start < sizeof(in) - 1; start++) {
        for (size_t end = start; end <= sizeof(in) - 1; end++) {
            size_t len = end - start;
            char *buf = malloc(len > 0 ? len : 1);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, in + start, len);
            for (size_t i = 0; i < sizeof(lopts) / sizeof(lopts[0]); i++) {
                frames_init(&f, len, 0);
                weft_lines_parse(&lopts[i], buf, len, collect, &f);
                frames_free(&f);
            }
            for (size_t i = 0; i < sizeof(popts) / sizeof(popts[0]); i++) {
                frames_init(&f, len, 0);
                weft_prefixed_parse(&popts[i], buf, len, collect, &f);
                frames_free(&f);
            }
            free(buf);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("framing");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lines_lf);
    tcase_add_test(tc, test_lines_crlf);
    tcase_add_test(tc, test_lines_long_delims);
    tcase_add_test(tc, test_lines_too_long_complete);
    tcase_add_test(tc, test_lines_too_long_partial);
    tcase_add_test(tc, test_lines_too_long_huge);
    tcase_add_test(tc, test_lines_exact_max);
    tcase_add_test(tc, test_lines_crlf_split);
    tcase_add_test(tc, test_prefixed_splits);
    tcase_add_test(tc, test_prefixed_big);
    tcase_add_test(tc, test_prefixed_too_long);
    tcase_add_test(tc, test_prefixed_header);
    tcase_add_test(tc, test_stop);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_no_overread);
    suite_add_tcase(s, tc);
    return check_run(s);
}
