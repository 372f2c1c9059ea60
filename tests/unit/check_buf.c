/* Unit tests for shared/buf.c: input bytes and the output queue. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "shared/buf.h"
#include "tests/unit/check_run.h"

START_TEST(test_bytes)
{
    struct bytes b = { 0 };

    ck_assert_int_eq(bytes_append(&b, "hello ", 6), 0);
    ck_assert_int_eq(bytes_append(&b, "world", 5), 0);
    ck_assert_uint_eq(b.len, 11);
    ck_assert(memcmp(b.data, "hello world", 11) == 0);
    bytes_consume(&b, 6);
    ck_assert_uint_eq(b.len, 5);
    ck_assert(memcmp(b.data, "world", 5) == 0);
    bytes_consume(&b, 5);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_null(b.data); /* an empty buffer holds no memory */
    ck_assert_int_eq(bytes_append(&b, "", 0), 0);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_bytes_grow)
{
    struct bytes b = { 0 };
    char chunk[1000];

    for (int i = 0; i < 300; i++) {
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        ck_assert_int_eq(bytes_append(&b, chunk, sizeof(chunk)), 0);
    }
    ck_assert_uint_eq(b.len, 300000);
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(b.data[i * 1000 + 999], 'a' + i % 26);
    bytes_free(&b);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

/* Drain q through outq_iov / outq_consume in steps of `step` bytes. */
static size_t drain(struct outq *q, char *out, size_t step)
{
    size_t got = 0;

    while (q->len > 0) {
        struct iovec iov[4];
        int n = outq_iov(q, iov, 4);
        size_t take = step;
        ck_assert_int_gt(n, 0);
        for (int i = 0; i < n && take > 0; i++) {
            size_t k = iov[i].iov_len < take ? iov[i].iov_len : take;
            memcpy(out + got, iov[i].iov_base, k);
            got += k;
            take -= k;
            outq_consume(q, k);
            if (k < iov[i].iov_len)
                break;
        }
    }
    return got;
}

START_TEST(test_outq_order)
{
    static char in[100000], out[100000];
    struct outq q = { 0 };
    size_t off = 0;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)(i * 7 + i / 251);
    /* Sizes that straddle chunk boundaries. */
    size_t sizes[] = { 1, 10, 4000, 4096, 5000, 3, 20000, 1, 60000 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        if (off + n > sizeof(in))
            n = sizeof(in) - off;
        ck_assert_int_eq(outq_append(&q, in + off, n), 0);
        off += n;
    }
    ck_assert_uint_eq(q.len, off);
    ck_assert_uint_eq(drain(&q, out, 777), off);
    ck_assert(memcmp(in, out, off) == 0);
    ck_assert_ptr_null(q.head);
    ck_assert_ptr_null(q.tail);
}
END_TEST

START_TEST(test_outq_interleave)
{
    struct outq q = { 0 };
    char out[64];

    outq_append(&q, "abc", 3);
    outq_consume(&q, 2);
    outq_append(&q, "def", 3);
    ck_assert_uint_eq(q.len, 4);
    ck_assert_uint_eq(drain(&q, out, 1), 4);
    ck_assert(memcmp(out, "cdef", 4) == 0);
    outq_append(&q, "xyz", 3);
    ck_assert_uint_eq(q.len, 3);
    outq_clear(&q);
    ck_assert_uint_eq(q.len, 0);
    ck_assert_ptr_null(q.head);
    struct iovec iov[1];
    ck_assert_int_eq(outq_iov(&q, iov, 1), 0);
}
END_TEST

START_TEST(test_outq_iov_limit)
{
    struct outq q = { 0 };
    static char big[OUTQ_CHUNK_MIN * 3];
    struct iovec iov[2];

    /* Each append larger than the room left makes a new chunk. */
    for (int i = 0; i < 3; i++)
        outq_append(&q, big, sizeof(big));
    ck_assert_int_eq(outq_iov(&q, iov, 2), 2);
    ck_assert_uint_eq(iov[0].iov_len + iov[1].iov_len, 2 * sizeof(big));
    outq_clear(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");

    tcase_add_test(tc, test_bytes);
    tcase_add_test(tc, test_bytes_grow);
    tcase_add_test(tc, test_outq_order);
    tcase_add_test(tc, test_outq_interleave);
    tcase_add_test(tc, test_outq_iov_limit);
    suite_add_tcase(s, tc);
    return check_run(s);
}
