/* Unit tests for shared/log.c: level names, one whole line per event. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "tests/unit/check_run.h"

static char tmp_path[64];

/* Send the log to a fresh temporary file. */
static void log_to_tmp(void)
{
    check_tmp_template(tmp_path, sizeof(tmp_path), "/tmp/check_log.");
    int fd = mkstemp(tmp_path);
    ck_assert_int_ne(fd, -1);
    close(fd);
    ck_assert_int_eq(log_open_file(tmp_path), 0);
}

/* Everything logged so far (a static buffer); back to stderr. */
static char *log_read(size_t *len)
{
    static char buf[4 * LOG_LINE_MAX];
    int fd = open(tmp_path, O_RDONLY);

    ck_assert_int_ne(fd, -1);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_ge(n, 0);
    close(fd);
    unlink(tmp_path);
    ck_assert_int_eq(log_open_file(NULL), 0);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

START_TEST(test_level_parse)
{
    enum log_level l;

    ck_assert_int_eq(log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_DEBUG);
    ck_assert_int_eq(log_level_parse("warn", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_WARN);
    ck_assert_int_eq(log_level_parse("error", &l), 0);
    ck_assert_int_eq(log_level_parse("info", &l), 0);
    ck_assert_int_eq(l, LOG_LVL_INFO);
    ck_assert_int_eq(log_level_parse("warning", &l), -1);
    ck_assert_int_eq(log_level_parse("INFO", &l), -1);
    ck_assert_int_eq(log_level_parse("", &l), -1);
}
END_TEST

START_TEST(test_line_and_level)
{
    size_t len;

    log_to_tmp();
    log_set_role(3);
    log_set_level(LOG_LVL_WARN);
    log_info("%s: hidden", "f");
    log_warn("%s: shown %d", "f", 42);
    log_set_level(LOG_LVL_INFO);
    char *s = log_read(&len);
    ck_assert_ptr_null(strstr(s, "hidden"));
    ck_assert_ptr_nonnull(strstr(s, " warn  ["));
    ck_assert_ptr_nonnull(strstr(s, " w3] f: shown 42\n"));
    ck_assert_int_eq(s[len - 1], '\n');
    ck_assert_ptr_eq(strchr(s, '\n'), s + len - 1);
}
END_TEST

START_TEST(test_newlines_flattened)
{
    size_t len;

    log_to_tmp();
    log_info("a\nb\r\nc");
    char *s = log_read(&len);
    ck_assert_ptr_eq(strchr(s, '\n'), s + len - 1);
    ck_assert_ptr_nonnull(strstr(s, "] a b  c\n"));
}
END_TEST

START_TEST(test_long_line_cut)
{
    static char big[3 * LOG_LINE_MAX];
    size_t len;

    memset(big, 'x', sizeof(big) - 1);
    log_to_tmp();
    log_info("%s", big);
    log_info("after");
    char *s = log_read(&len);
    char *nl = strchr(s, '\n');
    ck_assert_ptr_nonnull(nl);
    /* The first line: exactly LOG_LINE_MAX bytes, the mark at its end. */
    ck_assert_uint_eq((size_t)(nl - s) + 1, LOG_LINE_MAX);
    ck_assert_int_eq(memcmp(nl - strlen(LOG_TRUNCATED), LOG_TRUNCATED,
                            strlen(LOG_TRUNCATED)),
                     0);
    ck_assert_ptr_nonnull(strstr(nl + 1, "] after\n"));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_level_parse);
    tcase_add_test(tc, test_line_and_level);
    tcase_add_test(tc, test_newlines_flattened);
    tcase_add_test(tc, test_long_line_cut);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(log_suite());
}
