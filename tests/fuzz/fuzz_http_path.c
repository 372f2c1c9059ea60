/*
 * libFuzzer target for protocols/http/path.c, range.c and hdate.c.
 *
 * The same bytes go to each parser, each from a copy of exactly them:
 *   - http_path_normalise must agree with a slow reference below (whole
 *     segments kept in a table, no output limit), and its result must
 *     start with '/', hold no NUL, no "//", no "." or ".." segment, be
 *     shorter than cap and, when it holds no '%', normalise to itself;
 *   - http_range_parse gives 1, 0 or -416, and on 1 first <= last < size;
 *   - a date http_date_parse accepts is formatted, parsed again and is the
 *     same time; and any 8 bytes, as a time, survive format and parse.
 * Input layout:
 *
 *   byte 0    the path's output cap: 0 means 4096, else the byte
 *   byte 1    the representation size for Range: below 240 itself, else
 *             UINT64_MAX >> 4 * (byte - 240)
 *   rest      the bytes (paths only up to 4096 of them)
 *
 * Build and run: see README.md in this directory.
 */
#undef NDEBUG
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/http/hdate.h"
#include "protocols/http/path.h"
#include "protocols/http/range.h"

#define PATH_MAX_IN 4096
#define DATE_MIN ((int64_t)-62167219200)     /* 0000-01-01 00:00:00 */
#define DATE_MAX ((int64_t)253402300799)     /* 9999-12-31 23:59:59 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *exact_copy(const char *p, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);

    assert(c != NULL);
    memcpy(c, p, n);
    return c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The reference: decode one byte at a time; at each '/' (or the end)
 * judge the segment just read, keeping the names as (start, length) in
 * a decoded copy. Result in out (PATH_MAX_IN * 2 bytes), or -status;
 * lengths are not limited here, the caller compares with its cap.
 */
static long ref_normalise(const char *in, size_t len, char *out)
{
    static char dec[PATH_MAX_IN];
    static size_t st[PATH_MAX_IN], sl[PATH_MAX_IN];
    size_t nd = 0, depth = 0, seg = 0, i = 1;
    int dirend = 1;

    if (len == 0 || in[0] != '/')
        return -400;
    for (;;) {
        int c = -1;
        if (i < len) {
            c = (unsigned char)in[i++];
            if (c == '%') {
                if (i + 2 > len || hexval(in[i]) < 0 || hexval(in[i + 1]) < 0)
                    return -400;
                c = hexval(in[i]) * 16 + hexval(in[i + 1]);
                i += 2;
            }
            if (c < 0x20 || c == 0x7f || c == '\\')
                return -400;
        }
        if (c != -1 && c != '/') {
            dec[nd++] = (char)c;
            continue;
        }
        size_t n = nd - seg;
        if (n == 2 && dec[seg] == '.' && dec[seg + 1] == '.') {
            if (depth == 0)
                return -403;
            depth--;
            dirend = 1;
        } else if (n == 0 || (n == 1 && dec[seg] == '.')) {
            dirend = 1;
        } else {
            st[depth] = seg;
            sl[depth++] = n;
            dirend = 0;
        }
        seg = nd;
        if (c == -1)
            break;
    }
    size_t o = 0;
    for (size_t k = 0; k < depth; k++) {
        out[o++] = '/';
        memcpy(out + o, dec + st[k], sl[k]);
        o += sl[k];
    }
    if (dirend || o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return (long)o;
}

static void fuzz_path(const char *in, size_t len, size_t cap)
{
    static char want[PATH_MAX_IN * 2];
    char *copy = exact_copy(in, len);
    char *out = malloc(cap);

    assert(out != NULL);
    long r = http_path_normalise(copy, len, out, cap);
    long ref = ref_normalise(in, len, want);
    if (ref > 0 && (size_t)ref >= cap)
        ref = -414;
    assert(r == ref);
    if (r > 0) {
        size_t n = (size_t)r;
        assert(n < cap && out[n] == '\0' && strlen(out) == n);
        assert(memcmp(out, want, n + 1) == 0);
        assert(out[0] == '/');
        assert(strstr(out, "//") == NULL);
        assert(strstr(out, "/./") == NULL && strstr(out, "/../") == NULL);
        assert(!(n >= 2 && memcmp(out + n - 2, "/.", 2) == 0));
        assert(!(n >= 3 && memcmp(out + n - 3, "/..", 3) == 0));
        assert(strchr(out, '\\') == NULL);
        if (strchr(out, '%') == NULL) {
            char *again = malloc(cap);
            assert(again != NULL);
            assert(http_path_normalise(out, n, again, cap) == r);
            assert(memcmp(again, out, n + 1) == 0);
            free(again);
        }
    } else {
        assert(r == -400 || r == -403 || r == -414);
    }
    free(out);
    free(copy);
}

static void fuzz_range(const char *in, size_t len, uint64_t size)
{
    char *copy = exact_copy(in, len);
    uint64_t first = 7, last = 7;
    int r = http_range_parse(copy, len, size, &first, &last);

    assert(r == 1 || r == 0 || r == -416);
    if (r == 1)
        assert(first <= last && last < size);
    else
        assert(first == 7 && last == 7);
    free(copy);
}

static void fuzz_date(const char *in, size_t len)
{
    char *copy = exact_copy(in, len);
    char out[HTTP_DATE_LEN + 1];
    time_t t, back;

    if (http_date_parse(copy, len, &t) == 0) {
        assert((int64_t)t >= DATE_MIN && (int64_t)t <= DATE_MAX);
        http_date_format(t, out);
        assert(strlen(out) == HTTP_DATE_LEN);
        assert(http_date_parse(out, HTTP_DATE_LEN, &back) == 0);
        assert(back == t);
    }
    free(copy);
    /* Any time, clamped to the years that have four digits. */
    if (len >= 8) {
        int64_t s;
        memcpy(&s, in, 8);
        http_date_format((time_t)s, out);
        assert(strlen(out) == HTTP_DATE_LEN);
        assert(http_date_parse(out, HTTP_DATE_LEN, &back) == 0);
        s = s < DATE_MIN ? DATE_MIN : s > DATE_MAX ? DATE_MAX : s;
        assert((int64_t)back == s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = data[0] == 0 ? 4096 : data[0];
    uint64_t rsize = data[1] < 240 ? data[1]
                                   : UINT64_MAX >> (4 * (data[1] - 240));
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    fuzz_path(in, len < PATH_MAX_IN ? len : PATH_MAX_IN, cap);
    fuzz_range(in, len, rsize);
    fuzz_date(in, len);
    return 0;
}
