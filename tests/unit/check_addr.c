/* Unit tests for shared/addr.c: listener address parsing. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "shared/addr.h"
#include "shared/hostport.h"
#include "tests/unit/check_run.h"

static struct addr parse_ok(const char *s)
{
    struct addr a;
    const char *err = NULL;

    ck_assert_msg(addr_parse(s, &a, &err) == 0, "%s: %s", s, err);
    return a;
}

static void parse_bad(const char *s)
{
    struct addr a;
    const char *err = NULL;

    ck_assert_msg(addr_parse(s, &a, &err) == -1, "accepted '%s'", s);
    ck_assert_ptr_nonnull(err);
}

static void check_format(const char *in, const char *want)
{
    char buf[ADDR_STRLEN];
    struct addr a = parse_ok(in);

    ck_assert_str_eq(addr_format(&a, buf, sizeof(buf)), want);
}

START_TEST(test_ipv4)
{
    struct addr a = parse_ok("127.0.0.1:7007");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

    ck_assert_int_eq(a.kind, ADDR_TCP);
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_int_eq(ntohs(sin->sin_port), 7007);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    ck_assert_int_eq(a.len, sizeof(struct sockaddr_in));
    check_format("127.0.0.1:7007", "127.0.0.1:7007");
    check_format("tcp://10.1.2.3:1", "10.1.2.3:1");
    check_format("*:80", "0.0.0.0:80");
    check_format("localhost:65535", "127.0.0.1:65535");
}
END_TEST

START_TEST(test_ipv6)
{
    struct addr a = parse_ok("[::1]:443");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;

    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_int_eq(ntohs(sin6->sin6_port), 443);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    check_format("[::1]:443", "[::1]:443");
    check_format("[::]:8080", "[::]:8080");
    check_format("udp://[fe80::1]:53", "udp://[fe80::1]:53");
}
END_TEST

START_TEST(test_udp)
{
    struct addr a = parse_ok("udp://127.0.0.1:7007");

    ck_assert_int_eq(a.kind, ADDR_UDP);
    check_format("udp://127.0.0.1:7007", "udp://127.0.0.1:7007");
}
END_TEST

START_TEST(test_bad)
{
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1:-1", "300.1.1.1:80",
        "1.2.3:80", "example.com:80", "::1:80", "[::1]80", "[::1:80",
        "[]:80", "[zz::1]:80", "[127.0.0.1]:80", "http://1.2.3.4:80",
        "udp://", "udp://[::1]", "127.0.0.1:99999999999999999999",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i]);
}
END_TEST

START_TEST(test_equal)
{
    struct addr a = parse_ok("127.0.0.1:7007");
    struct addr b = parse_ok("tcp://127.0.0.1:7007");
    struct addr u = parse_ok("udp://127.0.0.1:7007");
    struct addr p = parse_ok("127.0.0.1:7008");
    struct addr v6 = parse_ok("[::1]:7007");

    ck_assert(addr_equal(&a, &b));
    ck_assert(!addr_equal(&a, &u));
    ck_assert(!addr_equal(&a, &p));
    ck_assert(!addr_equal(&a, &v6));
}
END_TEST

START_TEST(test_hostport)
{
    char host[HOSTPORT_HOST_MAX], port[HOSTPORT_PORT_MAX];

    ck_assert_ptr_null(hostport_split("example.com:80", host, sizeof(host),
                                      port, sizeof(port)));
    ck_assert_str_eq(host, "example.com");
    ck_assert_str_eq(port, "80");
    ck_assert_ptr_null(hostport_split("[::1]:0443", host, sizeof(host),
                                      port, sizeof(port)));
    ck_assert_str_eq(host, "::1");
    ck_assert_str_eq(port, "443");
    static const char *const bad[] = {
        "example.com", "example.com:", ":80", "[::1]", "[::1:80", "[]:80",
        "::1:80", "a:0", "a:65536", "a:8x", "a:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(weft_hostport_check(bad[i]) != NULL, "accepted %s",
                      bad[i]);
    ck_assert_ptr_null(weft_hostport_check("127.0.0.1:65535"));
    char tiny[4];
    ck_assert_ptr_nonnull(hostport_split("longname:1", tiny, sizeof(tiny),
                                         port, sizeof(port)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_ipv4);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_udp);
    tcase_add_test(tc, test_bad);
    tcase_add_test(tc, test_equal);
    tcase_add_test(tc, test_hostport);
    suite_add_tcase(s, tc);
    return check_run(s);
}
