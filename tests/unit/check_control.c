/* Unit tests for the control request parser (supervisor/control.c). */
#include <check.h>
#include <string.h>

#include "supervisor/control.h"
#include "tests/unit/check_run.h"

/* Parse s as one request; returns the error, "" for success. */
static const char *parse(const char *s, char *name, size_t size)
{
    return ctl_parse(s, strlen(s), name, size);
}

START_TEST(test_commands)
{
    static const char *const ok[] = { "ping", "version", "help", "stats",
                                      "workers", "metrics", "reload",
                                      "stop" };
    char name[32], line[64];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(line, sizeof(line), "%s\n", ok[i]);
        ck_assert_str_eq(parse(line, name, sizeof(name)), "");
        ck_assert_str_eq(name, ok[i]);
    }
    ck_assert_str_eq(parse("  stats \r\n", name, sizeof(name)), "");
    ck_assert_str_eq(name, "stats");
}
END_TEST

START_TEST(test_errors)
{
    char name[32];
    static char big[CTL_LINE_MAX + 10];

    ck_assert_ptr_null(parse("sta", name, sizeof(name))); /* no line yet */
    ck_assert_str_eq(parse("\n", name, sizeof(name)), "empty command");
    ck_assert_str_eq(parse(" \r\n", name, sizeof(name)), "empty command");
    ck_assert_str_eq(parse("bogus\n", name, sizeof(name)), "unknown command");
    ck_assert_str_eq(parse("STATS\n", name, sizeof(name)),
                     "unknown command");
    ck_assert_str_eq(parse("stats now\n", name, sizeof(name)),
                     "unknown command");
    ck_assert_str_eq(ctl_parse("st\0ts\n", 6, name, sizeof(name)),
                     "unknown command");
    ck_assert_str_eq(parse("\xff\xfe\n", name, sizeof(name)),
                     "unknown command");
    ck_assert_str_eq(parse("pingpingpingpingpingpingpingpingping\n", name,
                           sizeof(name)),
                     "unknown command");
    memset(big, 'a', sizeof(big) - 1);
    ck_assert_str_eq(parse(big, name, sizeof(name)), "line too long");
    big[CTL_LINE_MAX + 2] = '\n';
    ck_assert_str_eq(parse(big, name, sizeof(name)), "line too long");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return check_run(s);
}
