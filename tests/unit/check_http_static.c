/*
 * Unit tests for the pure helpers of static file serving:
 * protocols/http/path.c, range.c, hdate.c and mime.c. Inputs are given
 * to the functions as exact malloc'd copies and outputs written into
 * buffers of exactly the size claimed, so ASan sees a byte too far.
 */
#define _DEFAULT_SOURCE             /* timegm, gmtime_r: the oracle */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/http/hdate.h"
#include "protocols/http/mime.h"
#include "protocols/http/path.h"
#include "protocols/http/range.h"
#include "tests/unit/check_run.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define PATH_CAP 256

/* A malloc'd copy of exactly n bytes of s. */
static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);

    ck_assert_ptr_nonnull(p);
    memcpy(p, s, n);
    return p;
}

/* Normalise in[0..len) from an exact copy into a buffer of exactly cap. */
static long normalise(const char *in, size_t len, size_t cap, char *got)
{
    char *p = exact_copy(in, len);
    char *out = malloc(cap > 0 ? cap : 1);

    ck_assert_ptr_nonnull(out);
    long r = http_path_normalise(p, len, out, cap);
    if (r > 0) {
        ck_assert_uint_lt((size_t)r, cap);
        ck_assert_int_eq(out[r], '\0');
        memcpy(got, out, (size_t)r + 1);
    }
    free(out);
    free(p);
    return r;
}

/* ---- path ---- */

struct path_case {
    const char *in;
    size_t len;                 /* 0: strlen(in) */
    size_t cap;                 /* 0: PATH_CAP */
    long want;                  /* length or -status */
    const char *out;            /* when want > 0 */
};

static const struct path_case paths[] = {
    /* Normal paths. */
    { "/", 0, 0, 1, "/" },
    { "/index.html", 0, 0, 11, "/index.html" },
    { "//a///b", 0, 0, 4, "/a/b" },
    { "/a/./b", 0, 0, 4, "/a/b" },
    { "/a/b/..", 0, 0, 3, "/a/" },
    { "/a/b/../", 0, 0, 3, "/a/" },
    { "/a/b/../c", 0, 0, 4, "/a/c" },
    { "/a/", 0, 0, 3, "/a/" },
    { "/a/b/", 0, 0, 5, "/a/b/" },
    { "/a//", 0, 0, 3, "/a/" },
    { "/a/.", 0, 0, 3, "/a/" },
    { "/a/..", 0, 0, 1, "/" },
    { "/.", 0, 0, 1, "/" },
    { "/./", 0, 0, 1, "/" },
    { "///", 0, 0, 1, "/" },
    { "/...", 0, 0, 4, "/..." },
    { "/..a", 0, 0, 4, "/..a" },
    { "/a..", 0, 0, 4, "/a.." },
    { "/.a", 0, 0, 3, "/.a" },
    { "/.well-known/x", 0, 0, 14, "/.well-known/x" },
    { "/a%20b", 0, 0, 4, "/a b" },
    { "/%41%62%7e", 0, 0, 4, "/Ab~" },
    { "/caf%C3%A9", 0, 0, 6, "/caf\xc3\xa9" },
    { "/caf%c3%a9", 0, 0, 6, "/caf\xc3\xa9" },
    { "/caf\xc3\xa9", 0, 0, 6, "/caf\xc3\xa9" },
    { "/%2525", 0, 0, 4, "/%25" },
    { "/%2e%2e%2e", 0, 0, 4, "/..." },
    { "/a/%2e", 0, 0, 3, "/a/" },
    { "/a/%2e%2E/b", 0, 0, 2, "/b" },
    { "/a/.%2e", 0, 0, 1, "/" },
    /* Encoded slashes split segments like literal ones. */
    { "/a%2fb", 0, 0, 4, "/a/b" },
    { "/a%2F", 0, 0, 3, "/a/" },
    { "/%2f", 0, 0, 1, "/" },
    { "/a%2f..", 0, 0, 1, "/" },
    { "/a/b%2f..%2fc", 0, 0, 4, "/a/c" },
    /* Traversal. */
    { "/..", 0, 0, -403, NULL },
    { "/../", 0, 0, -403, NULL },
    { "/../etc/passwd", 0, 0, -403, NULL },
    { "/a/../../b", 0, 0, -403, NULL },
    { "/a/b/../../..", 0, 0, -403, NULL },
    { "/./../", 0, 0, -403, NULL },
    { "//..", 0, 0, -403, NULL },
    { "/%2e%2e/x", 0, 0, -403, NULL },
    { "/%2E%2e/", 0, 0, -403, NULL },
    { "/.%2e/", 0, 0, -403, NULL },
    { "/%2e./", 0, 0, -403, NULL },
    { "/a/%2e%2e/%2e%2e/", 0, 0, -403, NULL },
    { "/a%2f..%2f..%2fb", 0, 0, -403, NULL },
    { "/%2f..", 0, 0, -403, NULL },
    { "/a/%2F%2E%2E%2F%2E%2E", 0, 0, -403, NULL },
    /* Not a path, bad escapes, bytes no name may hold. */
    { "", 0, 0, -400, NULL },
    { "a", 0, 0, -400, NULL },
    { "%2fa", 0, 0, -400, NULL },
    { "\\a", 0, 0, -400, NULL },
    { "/%", 0, 0, -400, NULL },
    { "/a%", 0, 0, -400, NULL },
    { "/%4", 0, 0, -400, NULL },
    { "/%zz", 0, 0, -400, NULL },
    { "/%4g", 0, 0, -400, NULL },
    { "/%g4", 0, 0, -400, NULL },
    { "/%%41", 0, 0, -400, NULL },
    { "/%00", 0, 0, -400, NULL },
    { "/a%00.html", 0, 0, -400, NULL },
    { "/a\0b", 4, 0, -400, NULL },
    { "/%01", 0, 0, -400, NULL },
    { "/%0a", 0, 0, -400, NULL },
    { "/%0D%0A", 0, 0, -400, NULL },
    { "/%1f", 0, 0, -400, NULL },
    { "/%7f", 0, 0, -400, NULL },
    { "/%7F", 0, 0, -400, NULL },
    { "/a\tb", 0, 0, -400, NULL },
    { "/a\x7f", 0, 0, -400, NULL },
    { "/a\\b", 0, 0, -400, NULL },
    { "/a%5cb", 0, 0, -400, NULL },
    { "/a%5C..%5C..%5Cetc", 0, 0, -400, NULL },
    { "/..\\", 0, 0, -400, NULL },
    /* The first problem decides. */
    { "/../%zz", 0, 0, -403, NULL },
    { "/%zz/..", 0, 0, -400, NULL },
    /* Space: the result must fit, steps on the way need not. */
    { "/", 0, 2, 1, "/" },
    { "/", 0, 1, -414, NULL },
    { "/ab", 0, 4, 3, "/ab" },
    { "/abc", 0, 4, -414, NULL },
    { "/ab/", 0, 4, -414, NULL },
    { "/a/b", 0, 4, -414, NULL },
    { "/a/", 0, 4, 3, "/a/" },
    { "/a/b/..", 0, 4, 3, "/a/" },
    { "/abcdefgh/..", 0, 4, 1, "/" },
    { "/abcdefgh/../xy", 0, 4, 3, "/xy" },
    { "/x/abcdefgh/ijklmn/../..", 0, 4, 3, "/x/" },
    { "/abcdefgh/ijklmn/..", 0, 4, -414, NULL },
    { "/abcdefgh/../../", 0, 4, -403, NULL },
    { "/abcdefgh/%zz", 0, 4, -400, NULL },
    { "/a%41%41%41", 0, 5, -414, NULL },
    { "/a%41%41", 0, 5, 4, "/aAA" },
};

START_TEST(test_path)
{
    const struct path_case *c = &paths[_i];
    size_t len = c->len != 0 ? c->len : strlen(c->in);
    size_t cap = c->cap != 0 ? c->cap : PATH_CAP;
    char got[PATH_CAP];
    long r = normalise(c->in, len, cap, got);

    ck_assert_msg(r == c->want, "\"%s\" (cap %zu): %ld, want %ld", c->in,
                  cap, r, c->want);
    if (r < 0)
        return;
    ck_assert_str_eq(got, c->out);
    /* A result without '%' is a fixed point. */
    if (strchr(got, '%') == NULL) {
        char again[PATH_CAP];
        ck_assert_int_eq(normalise(got, (size_t)r, cap, again), r);
        ck_assert_str_eq(again, got);
    }
}
END_TEST

/* cap 0: nothing can be written, and nothing is. */
START_TEST(test_path_cap0)
{
    char out[1] = { 'x' };

    ck_assert_int_eq(http_path_normalise("/", 1, out, 0), -414);
    ck_assert_int_eq(http_path_normalise("/..", 3, out, 0), -403);
    ck_assert_int_eq(out[0], 'x');
}
END_TEST

/* Long paths: 414 by the result's length, not the input's. */
START_TEST(test_path_long)
{
    enum { N = 10000, CAP = 4096 };
    char *in = malloc(N + 1);
    char *got = malloc(N + 1);

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(got);
    /* "/aaaa...": a name of N - 1 bytes. */
    memset(in, 'a', N);
    in[0] = '/';
    ck_assert_int_eq(normalise(in, N, CAP, got), -414);
    ck_assert_int_eq(normalise(in, CAP - 1, CAP, got), CAP - 1);
    ck_assert_int_eq(normalise(in, CAP, CAP, got), -414);
    /* "/a/.." over and over then "/z": only "/z" is left. */
    size_t n = 0;
    while (n + 5 <= N - 2) {
        memcpy(in + n, "/a/..", 5);
        n += 5;
    }
    memcpy(in + n, "/z", 2);
    n += 2;
    ck_assert_int_eq(normalise(in, n, CAP, got), 2);
    ck_assert_str_eq(got, "/z");
    /* "/%41" over and over: decoding shrinks, the result decides. */
    n = 0;
    while (n + 4 <= N) {
        memcpy(in + n, n == 0 ? "/%41" : "%41", n == 0 ? 4 : 3);
        n += n == 0 ? 4 : 3;
    }
    long want = (long)(1 + (n - 1) / 3);
    ck_assert_int_eq(normalise(in, n, (size_t)want + 1, got), want);
    ck_assert_int_eq(normalise(in, n, (size_t)want, got), -414);
    free(in);
    free(got);
}
END_TEST

/* ---- Range ---- */

struct range_case {
    const char *v;
    uint64_t size;
    int want;
    uint64_t first, last;
};

static const struct range_case ranges[] = {
    { "bytes=0-0", 10, 1, 0, 0 },
    { "bytes=0-", 10, 1, 0, 9 },
    { "bytes=-1", 10, 1, 9, 9 },
    { "bytes=-0", 10, -416, 0, 0 },
    { "bytes=0-9", 10, 1, 0, 9 },
    { "bytes=3-5", 10, 1, 3, 5 },
    { "bytes=9-9", 10, 1, 9, 9 },
    { "bytes=9-", 10, 1, 9, 9 },
    { "bytes=5-2", 10, 0, 0, 0 },
    { "bytes=10-", 10, -416, 0, 0 },
    { "bytes=10-20", 10, -416, 0, 0 },
    { "bytes=11-11", 10, -416, 0, 0 },
    { "bytes=5-100", 10, 1, 5, 9 },
    { "bytes=0-10", 10, 1, 0, 9 },
    { "bytes=-9", 10, 1, 1, 9 },
    { "bytes=-10", 10, 1, 0, 9 },
    { "bytes=-100", 10, 1, 0, 9 },
    { "bytes=007-008", 10, 1, 7, 8 },
    /* More than one range, or list syntax: send it all. */
    { "bytes=0-1,3-4", 10, 0, 0, 0 },
    { "bytes=0-1, 3-4", 10, 0, 0, 0 },
    { "bytes=0-1,", 10, 0, 0, 0 },
    { "bytes=,0-1", 10, 0, 0, 0 },
    /* Other units, garbage. */
    { "items=0-1", 10, 0, 0, 0 },
    { "byte=0-1", 10, 0, 0, 0 },
    { "bytesx=0-1", 10, 0, 0, 0 },
    { "bytes", 10, 0, 0, 0 },
    { "bytes=", 10, 0, 0, 0 },
    { "bytes 0-1", 10, 0, 0, 0 },
    { "bytes = 0-1", 10, 0, 0, 0 },
    { "bytes= 0-1", 10, 0, 0, 0 },
    { "bytes=0 -1", 10, 0, 0, 0 },
    { "bytes=-", 10, 0, 0, 0 },
    { "bytes=--1", 10, 0, 0, 0 },
    { "bytes=-1-", 10, 0, 0, 0 },
    { "bytes=1-2-3", 10, 0, 0, 0 },
    { "bytes=a-b", 10, 0, 0, 0 },
    { "bytes=1-b", 10, 0, 0, 0 },
    { "bytes=+1-2", 10, 0, 0, 0 },
    { "bytes=0x1-2", 10, 0, 0, 0 },
    { "bytes=1", 10, 0, 0, 0 },
    { "", 10, 0, 0, 0 },
    { "=0-1", 10, 0, 0, 0 },
    /* Whitespace at the ends of the value only. */
    { " bytes=0-1 ", 10, 1, 0, 1 },
    { "\tbytes=0-1\t", 10, 1, 0, 1 },
    /* The unit in any case. */
    { "Bytes=0-0", 10, 1, 0, 0 },
    { "BYTES=1-", 10, 1, 1, 9 },
    { "bYtEs=-2", 10, 1, 8, 9 },
    /* An empty representation has no byte to send. */
    { "bytes=0-", 0, -416, 0, 0 },
    { "bytes=0-0", 0, -416, 0, 0 },
    { "bytes=-1", 0, -416, 0, 0 },
    { "bytes=-0", 0, -416, 0, 0 },
    { "bytes=5-2", 0, 0, 0, 0 },
    /* Numbers past uint64_t saturate: first unsatisfiable, last clipped. */
    { "bytes=0-99999999999999999999999", 10, 1, 0, 9 },
    { "bytes=99999999999999999999-", 10, -416, 0, 0 },
    { "bytes=99999999999999999999-99999999999999999999", 10, -416, 0, 0 },
    { "bytes=99999999999999999999-1", 10, 0, 0, 0 },
    { "bytes=-99999999999999999999", 10, 1, 0, 9 },
    { "bytes=0-18446744073709551615", 10, 1, 0, 9 },
    { "bytes=0-18446744073709551616", 10, 1, 0, 9 },
    { "bytes=18446744073709551615-", UINT64_MAX, -416, 0, 0 },
    { "bytes=18446744073709551614-", UINT64_MAX, 1, UINT64_MAX - 1,
      UINT64_MAX - 1 },
    { "bytes=-18446744073709551615", UINT64_MAX, 1, 0, UINT64_MAX - 1 },
    { "bytes=-1", UINT64_MAX, 1, UINT64_MAX - 1, UINT64_MAX - 1 },
};

START_TEST(test_range)
{
    const struct range_case *c = &ranges[_i];
    size_t len = strlen(c->v);
    char *v = exact_copy(c->v, len);
    uint64_t first = 12345, last = 12345;
    int r = http_range_parse(v, len, c->size, &first, &last);

    free(v);
    ck_assert_msg(r == c->want, "\"%s\" of %llu: %d, want %d", c->v,
                  (unsigned long long)c->size, r, c->want);
    if (r == 1) {
        ck_assert_uint_eq(first, c->first);
        ck_assert_uint_eq(last, c->last);
        ck_assert(first <= last && last < c->size);
    } else {
        ck_assert_uint_eq(first, 12345);
        ck_assert_uint_eq(last, 12345);
    }
}
END_TEST

/* ---- dates ---- */

struct format_case {
    int64_t t;
    const char *s;
};

static const struct format_case formats[] = {
    { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
    { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
    { 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
    { 2147483648LL, "Tue, 19 Jan 2038 03:14:08 GMT" },
    { 951825600, "Tue, 29 Feb 2000 12:00:00 GMT" },
    { 4107542399LL, "Sun, 28 Feb 2100 23:59:59 GMT" },
    { 4107542400LL, "Mon, 01 Mar 2100 00:00:00 GMT" },
    { -1, "Wed, 31 Dec 1969 23:59:59 GMT" },
    { -2208988800LL, "Mon, 01 Jan 1900 00:00:00 GMT" },
    { 253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT" },
    { -62167219200LL, "Sat, 01 Jan 0000 00:00:00 GMT" },
};

START_TEST(test_date_format)
{
    const struct format_case *c = &formats[_i];
    char out[HTTP_DATE_LEN + 1];
    time_t t;

    memset(out, 'x', sizeof(out));
    http_date_format((time_t)c->t, out);
    ck_assert_str_eq(out, c->s);
    ck_assert_int_eq(http_date_parse(out, HTTP_DATE_LEN, &t), 0);
    ck_assert_int_eq((int64_t)t, c->t);
}
END_TEST

/* Times past the four-digit years are written as the nearest limit. */
START_TEST(test_date_clamp)
{
    char out[HTTP_DATE_LEN + 1];

    http_date_format((time_t)253402300800LL, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_date_format((time_t)INT64_MAX, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_date_format((time_t)INT64_MIN, out);
    ck_assert_str_eq(out, "Sat, 01 Jan 0000 00:00:00 GMT");
}
END_TEST

/* Against the C library, in odd steps from 1900 to 2160. */
START_TEST(test_date_oracle)
{
    char out[HTTP_DATE_LEN + 1], want[64];
    struct tm tm;
    time_t t, back;

    for (int64_t s = -2208988800LL; s < 6000000000LL; s += 7919 * 1013) {
        t = (time_t)s;
        ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        http_date_format(t, out);
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
        ck_assert_int_eq((int64_t)back, s);
    }
}
END_TEST

struct parse_case {
    const char *s;
    int want;
    int64_t t;
};

static const struct parse_case parses[] = {
    { "Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },
    { "Sun Nov  6 08:49:37 1994", 0, 784111777 },
    { "Sun Nov 06 08:49:37 1994", 0, 784111777 },
    { "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
    { "Wed, 31 Dec 1969 23:59:59 GMT", 0, -1 },
    { "Tue, 29 Feb 2000 12:00:00 GMT", 0, 951825600 },
    { "Mon, 01 Mar 2100 00:00:00 GMT", 0, 4107542400LL },
    { "Fri, 31 Dec 9999 23:59:59 GMT", 0, 253402300799LL },
    { "Thu Jan  1 00:00:00 1970", 0, 0 },
    { "Tue Feb 29 12:00:00 2000", 0, 951825600 },
    /* A day name that does not match the date is tolerated. */
    { "Mon, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },
    { "Fri Nov  6 08:49:37 1994", 0, 784111777 },
    { "Monday, 06-Nov-94 08:49:37 GMT", 0, 784111777 },
    /* Out of range. */
    { "Sun, 06 Foo 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 32 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 31 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 00 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 29 Feb 2100 08:49:37 GMT", -1, 0 },
    { "Sun, 29 Feb 1999 08:49:37 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 24:00:00 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 23:60:00 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 23:59:60 GMT", -1, 0 },
    { "Sun Nov 32 08:49:37 1994", -1, 0 },
    { "Sun Nov  0 08:49:37 1994", -1, 0 },
    { "Sunday, 06-Nov-94 24:49:37 GMT", -1, 0 },
    { "Sunday, 31-Apr-94 08:49:37 GMT", -1, 0 },
    /* Not the grammar. */
    { "", -1, 0 },
    { "Sun", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37 GMTx", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37 UTC", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37 gmt", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37", -1, 0 },
    { "Sun, 6 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun,  6 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 06 nov 1994 08:49:37 GMT", -1, 0 },
    { "sun, 06 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Xyz, 06 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 06 Nov 94 08:49:37 GMT", -1, 0 },
    { "Sun, 06 Nov 199x 08:49:37 GMT", -1, 0 },
    { "Sun, -6 Nov 1994 08:49:37 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 8:49:37 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 08-49-37 GMT", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:3x GMT", -1, 0 },
    { "Sun, 06 Nov 1994 08:49:37 GMT\n", -1, 0 },
    { "Sun, 06-Nov-94 08:49:37 GMT", -1, 0 },
    { "Sunday, 06-Nov-1994 08:49:37 GMT", -1, 0 },
    { "Sunday, 06 Nov 94 08:49:37 GMT", -1, 0 },
    { "Sunday 06-Nov-94 08:49:37 GMT", -1, 0 },
    { "Funday, 06-Nov-94 08:49:37 GMT", -1, 0 },
    { "Sundays, 06-Nov-94 08:49:37 GMT", -1, 0 },
    { "Sunday, 06-Nov-94 08:49:37 GMT ", -1, 0 },
    { "Sunday, 06-Nov-9x 08:49:37 GMT", -1, 0 },
    { "Sun Nov  6 08:49:37 1994 ", -1, 0 },
    { "Sun Nov 6 08:49:37 1994", -1, 0 },
    { "Sun Nov  6 08:49:37 94", -1, 0 },
    { "Sun  Nov 6 08:49:37 1994", -1, 0 },
    { "Sun Nov  6 08:49:37  1994", -1, 0 },
    { "Sun Nov x6 08:49:37 1994", -1, 0 },
    { "784111777", -1, 0 },
};

START_TEST(test_date_parse)
{
    const struct parse_case *c = &parses[_i];
    size_t len = strlen(c->s);
    char *v = exact_copy(c->s, len);
    time_t t = 42;
    int r = http_date_parse(v, len, &t);

    free(v);
    ck_assert_msg(r == c->want, "\"%s\": %d, want %d", c->s, r, c->want);
    if (r == 0)
        ck_assert_int_eq((int64_t)t, c->t);
    else
        ck_assert_int_eq((int64_t)t, 42);
}
END_TEST

/* Parse "Monday, 01-Jan-YY 00:00:00 GMT"; the year it meant, or -1. */
static int64_t rfc850_year(int yy)
{
    char s[40];
    time_t t;
    struct tm tm;

    snprintf(s, sizeof(s), "Monday, 01-Jan-%02d 00:00:00 GMT", yy);
    if (http_date_parse(s, strlen(s), &t) == -1)
        return -1;
    ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
    ck_assert_int_eq(tm.tm_mon, 0);
    ck_assert_int_eq(tm.tm_mday, 1);
    return (int64_t)tm.tm_year + 1900;
}

/*
 * RFC 850 two-digit years: the 100 years ending 50 years from now. This
 * reads the clock like the parser does; run at the turn of a year, the
 * two could see different years.
 */
START_TEST(test_date_rfc850_window)
{
    time_t now = time(NULL);
    struct tm tm;

    ck_assert_ptr_nonnull(gmtime_r(&now, &tm));
    int64_t year = (int64_t)tm.tm_year + 1900;
    ck_assert_int_eq(rfc850_year((int)((year + 50) % 100)), year + 50);
    ck_assert_int_eq(rfc850_year((int)((year + 51) % 100)), year - 49);
    ck_assert_int_eq(rfc850_year((int)(year % 100)), year);
    ck_assert_int_eq(rfc850_year((int)((year + 99) % 100)), year - 1);
    /* The RFC's own example, while 1994 is inside the window. */
    if (year <= 2043) {
        time_t t;
        ck_assert_int_eq(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT",
                                         30, &t), 0);
        ck_assert_int_eq((int64_t)t, 784111777);
    }
    for (int yy = 0; yy < 100; yy++) {
        int64_t y = rfc850_year(yy);
        ck_assert(y % 100 == yy && y > year - 50 && y <= year + 50);
    }
}
END_TEST

/* Each form, written from the same time, parses back to it. */
START_TEST(test_date_round_trip)
{
    static const char *const days[] = {
        "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
        "Saturday"
    };
    time_t now = time(NULL);
    struct tm nt;

    ck_assert_ptr_nonnull(gmtime_r(&now, &nt));
    int64_t year_now = (int64_t)nt.tm_year + 1900;
    for (int64_t s = 0; s < 4102444800LL; s += 86400 * 37 + 3671) {
        char imf[HTTP_DATE_LEN + 1], other[64];
        time_t t = (time_t)s, back;
        struct tm tm;
        int64_t y;

        http_date_format(t, imf);
        ck_assert_int_eq(http_date_parse(imf, HTTP_DATE_LEN, &back), 0);
        ck_assert_int_eq((int64_t)back, s);
        ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
        strftime(other, sizeof(other), "%a %b %e %H:%M:%S %Y", &tm);
        ck_assert_int_eq(http_date_parse(other, strlen(other), &back), 0);
        ck_assert_int_eq((int64_t)back, s);
        /* RFC 850 only where the two-digit year is unambiguous now. */
        y = (int64_t)tm.tm_year + 1900;
        if (y <= year_now - 50 || y > year_now + 50)
            continue;
        char mon[8];
        strftime(mon, sizeof(mon), "%b", &tm);
        snprintf(other, sizeof(other), "%s, %02d-%s-%02d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, mon, (int)(y % 100),
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        ck_assert_int_eq(http_date_parse(other, strlen(other), &back), 0);
        ck_assert_int_eq((int64_t)back, s);
    }
}
END_TEST

/* ---- MIME ---- */

struct mime_case {
    const char *name;
    size_t len;                 /* 0: strlen(name) */
    const char *type;
};

#define HTML "text/html; charset=utf-8"
#define OCTETS "application/octet-stream"

static const struct mime_case mimes[] = {
    { "index.html", 0, HTML },
    { "index.HTML", 0, HTML },
    { "INDEX.Htm", 0, HTML },
    { "style.css", 0, "text/css; charset=utf-8" },
    { "app.js", 0, "text/javascript; charset=utf-8" },
    { "app.mjs", 0, "text/javascript; charset=utf-8" },
    { "data.json", 0, "application/json" },
    { "notes.txt", 0, "text/plain; charset=utf-8" },
    { "photo.JPG", 0, "image/jpeg" },
    { "photo.jpeg", 0, "image/jpeg" },
    { "logo.svg", 0, "image/svg+xml" },
    { "font.woff2", 0, "font/woff2" },
    { "font.woff", 0, "font/woff" },
    { "/srv/www/img/a.png", 0, "image/png" },
    { "a.b.c.txt", 0, "text/plain; charset=utf-8" },
    { "a.tar.gz", 0, "application/gzip" },
    { "a.tar", 0, "application/x-tar" },
    { "app.wasm", 0, "application/wasm" },
    /* No extension. */
    { "README", 0, OCTETS },
    { "Makefile", 0, OCTETS },
    { "", 0, OCTETS },
    { ".", 0, OCTETS },
    { "..", 0, OCTETS },
    { ".bashrc", 0, OCTETS },
    { "dir/.html", 0, OCTETS },
    { "a.", 0, OCTETS },
    { "index.html.", 0, OCTETS },
    { "dir.html/file", 0, OCTETS },
    { "dir.d/", 0, OCTETS },
    /* Unknown or odd extensions. */
    { "a.exe", 0, OCTETS },
    { "a.htmlx", 0, OCTETS },
    { "a.h", 0, OCTETS },
    { "a.verylongextension", 0, OCTETS },
    { "a.ht-ml", 0, OCTETS },
    { "a.js\0", 5, OCTETS },
    { "a.j\0s", 5, OCTETS },
    /* Only len bytes count. */
    { "a.htmlzzz", 6, HTML },
};

START_TEST(test_mime)
{
    const struct mime_case *c = &mimes[_i];
    size_t len = c->len != 0 ? c->len : strlen(c->name);
    char *name = exact_copy(c->name, len);
    const char *type = http_mime_type(name, len);

    free(name);
    ck_assert_msg(strcmp(type, c->type) == 0, "\"%s\": %s, want %s",
                  c->name, type, c->type);
}
END_TEST

/* Every extension the header promises is known (and the table sorted). */
START_TEST(test_mime_all)
{
    static const char *const exts[] = {
        "html", "htm", "css", "js", "mjs", "json", "txt", "xml", "svg",
        "png", "jpg", "jpeg", "gif", "webp", "ico", "avif", "woff",
        "woff2", "ttf", "otf", "pdf", "wasm", "mp4", "webm", "mp3", "ogg",
        "wav", "zip", "gz", "tar", "csv", "md", "map",
    };
    char name[32];

    for (size_t i = 0; i < NELEMS(exts); i++) {
        snprintf(name, sizeof(name), "f.%s", exts[i]);
        const char *type = http_mime_type(name, strlen(name));
        ck_assert_msg(strcmp(type, OCTETS) != 0, "%s unknown", exts[i]);
        if (strncmp(type, "text/", 5) == 0)
            ck_assert_ptr_nonnull(strstr(type, "; charset=utf-8"));
        for (char *p = name; *p != '\0'; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        ck_assert_str_eq(http_mime_type(name, strlen(name)), type);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_static");
    TCase *tc = tcase_create("http_static");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_path, 0, (int)NELEMS(paths));
    tcase_add_test(tc, test_path_cap0);
    tcase_add_test(tc, test_path_long);
    tcase_add_loop_test(tc, test_range, 0, (int)NELEMS(ranges));
    tcase_add_loop_test(tc, test_date_format, 0, (int)NELEMS(formats));
    tcase_add_test(tc, test_date_clamp);
    tcase_add_test(tc, test_date_oracle);
    tcase_add_loop_test(tc, test_date_parse, 0, (int)NELEMS(parses));
    tcase_add_test(tc, test_date_rfc850_window);
    tcase_add_test(tc, test_date_round_trip);
    tcase_add_loop_test(tc, test_mime, 0, (int)NELEMS(mimes));
    tcase_add_test(tc, test_mime_all);
    suite_add_tcase(s, tc);
    return check_run(s);
}
