/* Unit tests for tools/json.c, weftctl's JSON reader. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check_run.h"
#include "tools/json.h"

/* Parse a C string that must be accepted. */
static void parse_ok(struct json_doc *d, const char *text)
{
    char err[128] = "";

    ck_assert_msg(json_parse(d, text, strlen(text), err, sizeof(err)) == 0,
                  "%s: %s", text, err);
}

START_TEST(test_reply)
{
    static const char text[] =
        "{\"ok\": true, \"pid\": 123, \"uptime_s\": 42.5, \"totals\": "
        "{\"bytes_in\": 18446744073709551615, \"connections_active\": 3}, "
        "\"workers\": [{\"slot\": 0, \"state\": \"running\", "
        "\"heartbeat_age_ms\": -1, \"stalled\": false}, {\"slot\": 1}], "
        "\"nothing\": null}\n";
    struct json_doc d;
    const struct json_node *root, *w;
    uint64_t u;
    int64_t i;
    double x;
    bool b;

    parse_ok(&d, text);
    root = json_root(&d);
    ck_assert_int_eq(root->type, JSON_OBJECT);
    ck_assert_uint_eq(root->len, 6);
    ck_assert_int_eq(json_bool(json_get(&d, root, "ok"), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(json_uint(json_get(&d, root, "pid"), &u), 0);
    ck_assert_uint_eq(u, 123);
    ck_assert_int_eq(json_num(json_get(&d, root, "uptime_s"), &x), 0);
    ck_assert(x == 42.5);
    ck_assert_int_eq(json_uint(json_get(&d, root, "uptime_s"), &u), -1);
    ck_assert_int_eq(json_uint(json_get(&d, json_get(&d, root, "totals"),
                                        "bytes_in"), &u), 0);
    ck_assert(u == UINT64_MAX); /* exact, past 2^53 */
    ck_assert_int_eq(json_get(&d, root, "nothing")->type, JSON_NULL);
    ck_assert_ptr_null(json_get(&d, root, "missing"));

    w = json_first(&d, json_get(&d, root, "workers"));
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(json_str(json_get(&d, w, "state")), "running");
    ck_assert_int_eq(json_int(json_get(&d, w, "heartbeat_age_ms"), &i), 0);
    ck_assert_int_eq(i, -1);
    ck_assert_int_eq(json_uint(json_get(&d, w, "heartbeat_age_ms"), &u),
                     -1);
    ck_assert_int_eq(json_bool(json_get(&d, w, "stalled"), &b), 0);
    ck_assert(!b);
    w = json_next(&d, w);
    ck_assert_int_eq(json_uint(json_get(&d, w, "slot"), &u), 0);
    ck_assert_uint_eq(u, 1);
    ck_assert_ptr_null(json_next(&d, w));
    json_free(&d);
    json_free(&d); /* twice is harmless */
}
END_TEST

START_TEST(test_strings)
{
    static const char text[] =
        "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4E2D\", "
        "\"\\ud83d\\ude00\", \"caf\xc3\xa9 \xf0\x9f\x98\x80\", "
        "\"x\\u0000y\", \"\"]";
    struct json_doc d;
    const struct json_node *s;

    parse_ok(&d, text);
    s = json_first(&d, json_root(&d));
    ck_assert_str_eq(json_str(s), "a\"b\\c/d\b\f\n\r\t");
    s = json_next(&d, s);
    ck_assert_str_eq(json_str(s), "\xc3\xa9\xe4\xb8\xad");
    s = json_next(&d, s);
    ck_assert_str_eq(json_str(s), "\xf0\x9f\x98\x80");
    s = json_next(&d, s);
    ck_assert_str_eq(json_str(s), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    s = json_next(&d, s);
    ck_assert_uint_eq(s->len, 3);
    ck_assert(memcmp(json_str(s), "x\0y", 4) == 0);
    s = json_next(&d, s);
    ck_assert_str_eq(json_str(s), "");
    ck_assert_uint_eq(s->len, 0);
    ck_assert_ptr_null(json_str(json_root(&d)));
    json_free(&d);
}
END_TEST

START_TEST(test_numbers)
{
    static const struct {
        const char *text;
        int uint_ok, int_ok;
        uint64_t u;
        int64_t i;
        double num;
    } cases[] = {
        { "0", 1, 1, 0, 0, 0 },
        { "-0", 1, 1, 0, 0, -0.0 },
        { "7", 1, 1, 7, 7, 7 },
        { "-7", 0, 1, 0, -7, -7 },
        { "9007199254740993", 1, 1, 9007199254740993u, 9007199254740993,
          9007199254740992.0 },
        { "9223372036854775807", 1, 1, INT64_MAX, INT64_MAX,
          9223372036854775807.0 },
        { "9223372036854775808", 1, 0, 9223372036854775808u, 0,
          9223372036854775808.0 },
        { "-9223372036854775808", 0, 1, 0, INT64_MIN,
          -9223372036854775808.0 },
        { "-9223372036854775809", 0, 0, 0, 0, -9223372036854775809.0 },
        { "18446744073709551615", 1, 0, UINT64_MAX, 0,
          18446744073709551615.0 },
        { "18446744073709551616", 0, 0, 0, 0, 18446744073709551616.0 },
        { "1.0", 0, 0, 0, 0, 1 },
        { "1e2", 0, 0, 0, 0, 100 },
        { "-12.25E+1", 0, 0, 0, 0, -122.5 },
        { "5e-1", 0, 0, 0, 0, 0.5 },
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct json_doc d;
        uint64_t u;
        int64_t i;
        double x;
        parse_ok(&d, cases[k].text);
        const struct json_node *n = json_root(&d);
        ck_assert_int_eq(n->type, JSON_NUMBER);
        ck_assert_str_eq(n->str, cases[k].text);
        ck_assert_msg((json_uint(n, &u) == 0) == cases[k].uint_ok, "%s",
                      cases[k].text);
        if (cases[k].uint_ok)
            ck_assert(u == cases[k].u);
        ck_assert_msg((json_int(n, &i) == 0) == cases[k].int_ok, "%s",
                      cases[k].text);
        if (cases[k].int_ok)
            ck_assert(i == cases[k].i);
        ck_assert_int_eq(json_num(n, &x), 0);
        /* The compiler and strtod both round to the nearest double. */
        ck_assert_msg(x == cases[k].num, "%s: %.17g", cases[k].text, x);
        json_free(&d);
    }
}
END_TEST

START_TEST(test_containers)
{
    struct json_doc d;
    const struct json_node *root, *m;
    uint64_t u;

    parse_ok(&d, " \t\r\n{\"a\": [], \"b\": {}, \"a\": 2} \n");
    root = json_root(&d);
    ck_assert_uint_eq(root->len, 3);
    m = json_get(&d, root, "a"); /* a duplicate name: the first wins */
    ck_assert_int_eq(m->type, JSON_ARRAY);
    ck_assert_uint_eq(m->len, 0);
    ck_assert_ptr_null(json_first(&d, m));
    ck_assert_int_eq(json_get(&d, root, "b")->type, JSON_OBJECT);
    ck_assert_ptr_null(json_get(&d, m, "a")); /* not an object */
    ck_assert_ptr_null(json_get(&d, NULL, "a"));
    ck_assert_int_eq(json_uint(json_next(&d, json_next(&d, m)), &u), 0);
    ck_assert_uint_eq(u, 2);
    json_free(&d);

    parse_ok(&d, "[true, false, null, \"s\", 1, [2]]");
    root = json_root(&d);
    ck_assert_uint_eq(root->len, 6);
    for (m = json_first(&d, root); m != NULL; m = json_next(&d, m))
        ck_assert_ptr_null(m->key);
    json_free(&d);
}
END_TEST

/* Each text is refused, with an error at the given offset. */
START_TEST(test_refused)
{
    static const struct {
        const char *text;
        size_t at;
        const char *what;
    } cases[] = {
        { "", 0, "end of input" },
        { " \n", 2, "end of input" },
        { "{", 1, "member name" },
        { "[", 1, "end of input" },
        { "[1,]", 3, "unexpected character" },
        { "{\"a\":1,}", 7, "member name" },
        { "{\"a\" 1}", 5, "':'" },
        { "{1: 2}", 1, "member name" },
        { "[1 2]", 3, "',' or ']'" },
        { "{\"a\": 1 \"b\"}", 8, "',' or '}'" },
        { "[1] 2", 4, "after the value" },
        { "01", 1, "after the value" },
        { "-", 1, "invalid number" },
        { "+1", 0, "unexpected character" },
        { ".5", 0, "unexpected character" },
        { "1.", 2, "after '.'" },
        { "1.e3", 2, "after '.'" },
        { "1e", 2, "exponent" },
        { "1e+", 3, "exponent" },
        { "tru", 0, "unexpected character" },
        { "nulL", 0, "unexpected character" },
        { "NaN", 0, "unexpected character" },
        { "Infinity", 0, "unexpected character" },
        { "'a'", 0, "unexpected character" },
        { "\"abc", 4, "end of input" },
        { "\"a\\x\"", 3, "invalid escape" },
        { "\"\\u12g4\"", 3, "\\u escape" },
        { "\"\\u12", 3, "end of input" },
        { "\"\\ud800\"", 7, "lone high surrogate" },
        { "\"\\ud800\\u0041\"", 13, "lone high surrogate" },
        { "\"\\udc00\"", 7, "lone low surrogate" },
        { "\"a\tb\"", 2, "control character" },
        { "\"\xc0\x80\"", 1, "UTF-8" },       /* overlong NUL */
        { "\"\xe0\x80\xaf\"", 1, "UTF-8" },   /* overlong '/' */
        { "\"\xed\xa0\x80\"", 1, "UTF-8" },   /* a surrogate */
        { "\"\xf4\x90\x80\x80\"", 1, "UTF-8" }, /* past U+10FFFF */
        { "\"\xc3\"", 1, "UTF-8" },           /* cut short */
        { "\"\x80\"", 1, "UTF-8" },           /* a lone continuation */
        { "\"\xff\"", 1, "UTF-8" },
    };
    char err[128], want[128];

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct json_doc d;
        memset(&d, 0xa5, sizeof(d));
        ck_assert_msg(json_parse(&d, cases[k].text, strlen(cases[k].text),
                                 err, sizeof(err)) == -1,
                      "accepted: %s", cases[k].text);
        snprintf(want, sizeof(want), "offset %zu: ", cases[k].at);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0 &&
                          strstr(err, cases[k].what) != NULL,
                      "%s: got '%s', want '%s...%s'", cases[k].text, err,
                      want, cases[k].what);
        ck_assert_ptr_null(d.nodes); /* left empty */
        ck_assert_ptr_null(d.pool);
        json_free(&d);
    }
}
END_TEST

/* JSON_MAX_DEPTH nested arrays are fine, one more is refused. */
START_TEST(test_depth)
{
    char text[2 * JSON_MAX_DEPTH + 3], err[128];
    struct json_doc d;

    for (int extra = 0; extra <= 1; extra++) {
        size_t n = JSON_MAX_DEPTH + (size_t)extra;
        memset(text, '[', n);
        memset(text + n, ']', n);
        int rc = json_parse(&d, text, 2 * n, err, sizeof(err));
        ck_assert_int_eq(rc, extra ? -1 : 0);
        if (extra)
            ck_assert_ptr_nonnull(strstr(err, "nesting too deep"));
        json_free(&d);
    }
}
END_TEST

/* Only len bytes are read: what follows them does not matter. */
START_TEST(test_length)
{
    struct json_doc d;
    char err[64];
    uint64_t u;

    ck_assert_int_eq(json_parse(&d, "[1]garbage", 3, err, sizeof(err)), 0);
    json_free(&d);
    ck_assert_int_eq(json_parse(&d, "12", 1, err, sizeof(err)), 0);
    ck_assert_int_eq(json_uint(json_root(&d), &u), 0);
    ck_assert_uint_eq(u, 1);
    json_free(&d);
    ck_assert_int_eq(json_parse(&d, "\"ab\"", 3, err, sizeof(err)), -1);
    ck_assert_int_eq(json_parse(&d, "true", 3, NULL, 0), -1);
}
END_TEST

START_TEST(test_null_nodes)
{
    uint64_t u;
    int64_t i;
    double x;
    bool b;
    struct json_doc d = { 0 };

    ck_assert_ptr_null(json_root(&d));
    ck_assert_ptr_null(json_first(&d, NULL));
    ck_assert_ptr_null(json_next(&d, NULL));
    ck_assert_ptr_null(json_str(NULL));
    ck_assert_int_eq(json_uint(NULL, &u), -1);
    ck_assert_int_eq(json_int(NULL, &i), -1);
    ck_assert_int_eq(json_num(NULL, &x), -1);
    ck_assert_int_eq(json_bool(NULL, &b), -1);
    parse_ok(&d, "\"1\"");
    ck_assert_int_eq(json_uint(json_root(&d), &u), -1);
    ck_assert_int_eq(json_num(json_root(&d), &x), -1);
    ck_assert_int_eq(json_bool(json_root(&d), &b), -1);
    json_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");

    tcase_add_test(tc, test_reply);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_containers);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_length);
    tcase_add_test(tc, test_null_nodes);
    suite_add_tcase(s, tc);
    return check_run(s);
}
