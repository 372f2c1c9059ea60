/* Unit tests for supervisor/config.c: loading and every kind of error. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "supervisor/config.h"
#include "tests/unit/check_run.h"

static char dir[64];
static char path[256];

static void setup(void)
{
    check_tmp_template(dir, sizeof(dir), "/tmp/weft-check-config-");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/weft.conf", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Load text from a file; expect failure with "PATH:line: " (line 0:
 * "PATH: ") and `what`. */
static void expect_error(const char *text, int line, const char *what)
{
    struct config_errors errs;
    char want[300];

    write_file(text);
    struct config *cfg = config_load(path, &errs);
    ck_assert_msg(cfg == NULL, "accepted:\n%s", text);
    if (line > 0)
        snprintf(want, sizeof(want), "%s:%d: ", path, line);
    else
        snprintf(want, sizeof(want), "%s: ", path);
    ck_assert_msg(strstr(errs.text, want) != NULL, "want '%s' in '%s'", want,
                  errs.text);
    ck_assert_msg(strstr(errs.text, what) != NULL, "want '%s' in '%s'", what,
                  errs.text);
}

static struct config *load_ok(const char *text)
{
    struct config_errors errs;

    write_file(text);
    struct config *cfg = config_load(path, &errs);
    ck_assert_msg(cfg != NULL, "refused: %s", errs.text);
    return cfg;
}

#define L1 "listeners = ( { name = \"e\"; listen = \"127.0.0.1:7\"; " \
           "protocol = \"echo\"; } );\n"

START_TEST(test_valid)
{
    struct config *cfg = load_ok(
        "workers = 3;\n"
        "cpu_affinity = false;\n"
        "listeners = (\n"
        "  { name = \"echo\"; listen = \"127.0.0.1:7007\"; protocol = \"echo\";"
        " backlog = 100; max_connections = 5; },\n"
        "  { name = \"echo-udp\"; listen = \"udp://127.0.0.1:7007\";"
        " protocol = \"echo\"; },\n"
        "  { name = \"v6\"; listen = \"[::1]:7008\"; protocol = \"echo\"; }\n"
        ");\n");

    ck_assert_int_eq(cfg->workers, 3);
    ck_assert(!cfg->cpu_affinity);
    ck_assert_uint_eq(cfg->nlisteners, 3);
    ck_assert_str_eq(cfg->listeners[0].name, "echo");
    ck_assert_int_eq(cfg->listeners[0].backlog, 100);
    ck_assert_int_eq(cfg->listeners[0].max_connections, 5);
    ck_assert_int_eq(cfg->listeners[0].line, 4);
    ck_assert_int_eq(cfg->listeners[1].addr.kind, ADDR_UDP);
    ck_assert_int_eq(cfg->listeners[1].backlog, CONFIG_BACKLOG_DEFAULT);
    ck_assert_str_eq(cfg->listeners[2].proto->name, "echo");
    ck_assert_str_eq(cfg->path, path);
    config_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
    struct config *cfg = load_ok(L1);

    ck_assert_int_eq(cfg->workers, 0); /* auto */
    ck_assert(cfg->cpu_affinity);
    ck_assert_int_eq(cfg->listeners[0].max_connections, 0);
    config_free(cfg);
    cfg = load_ok("workers = \"auto\";\n" L1);
    ck_assert_int_eq(cfg->workers, 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_log)
{
    struct config *cfg = load_ok(L1);

    ck_assert_ptr_null(cfg->log_file);
    ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
    ck_assert(!cfg->log_syslog);
    config_free(cfg);
    cfg = load_ok("log = { file = \"/tmp/w.log\"; level = \"debug\";"
                  " syslog = true; };\n" L1);
    ck_assert_str_eq(cfg->log_file, "/tmp/w.log");
    ck_assert_int_eq(cfg->log_level, LOG_LVL_DEBUG);
    ck_assert(cfg->log_syslog);
    config_free(cfg);
    /* The deprecated alias, alone or beside a log group without file. */
    cfg = load_ok("log_file = \"/tmp/a.log\";\n" L1);
    ck_assert_str_eq(cfg->log_file, "/tmp/a.log");
    config_free(cfg);
    cfg = load_ok("log_file = \"/tmp/a.log\";\nlog = { level = \"warn\"; };\n"
                  L1);
    ck_assert_str_eq(cfg->log_file, "/tmp/a.log");
    ck_assert_int_eq(cfg->log_level, LOG_LVL_WARN);
    config_free(cfg);
    expect_error("log = {\n level = \"loud\"; };\n" L1, 2, "level 'loud'");
    expect_error("log_file = \"/a\";\nlog = { file = \"/b\"; };\n" L1, 1,
                 "deprecated alias");
    expect_error("log = {\n file = \"\"; };\n" L1, 2, "file: empty");
    expect_error("\nlog = 3;\n" L1, 2, "log: expected a group");
    expect_error("log = {\n\n syslog = 1; };\n" L1, 3, "syslog: expected");
}
END_TEST

START_TEST(test_builtin_matches_contrib)
{
    struct config_errors errs;
    const char *src = getenv("WEFT_SRCDIR");
    char file[512];
    static char text[65536];

    struct config *cfg = config_load_string(config_default_text,
                                            "<built-in>", &errs);
    ck_assert_msg(cfg != NULL, "%s", errs.text);
    config_free(cfg);
    /* Run from make check: the text is contrib/weft.conf, byte for byte. */
    snprintf(file, sizeof(file), "%s/contrib/weft.conf", src ? src : ".");
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "cannot open %s", file);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_str_eq(text, config_default_text);
}
END_TEST

START_TEST(test_syntax)
{
    expect_error("workers = 2;\nlisteners = (\n  { name = \"e\" \n", 4,
                 "syntax error");
    expect_error("workers = 2;\n\nx = = 3;\n" L1, 3, "syntax error");
    expect_error("workers = 2;\nworkers = 3;\n" L1, 2, "duplicate");
}
END_TEST

START_TEST(test_unknown_keys)
{
    expect_error("workers = 2;\nwrokers = 3;\n" L1, 2,
                 "unknown key 'wrokers'");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";\n"
                 "   protocol = \"echo\";\n   colour = \"red\"; }\n);\n",
                 4, "unknown key 'colour'");
}
END_TEST

START_TEST(test_types)
{
    expect_error("\nworkers = 2.5;\n" L1, 2, "workers");
    expect_error("workers = \"many\";\n" L1, 1, "workers");
    expect_error("workers = 0;\n" L1, 1, "workers");
    expect_error("workers = 257;\n" L1, 1, "workers");
    expect_error("cpu_affinity = 1;\n" L1, 1, "cpu_affinity");
    expect_error("listeners = (\n { name = 5; listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\"; }\n);\n", 2, "name: expected a string");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 "\n protocol = \"echo\"; backlog = \"x\"; }\n);\n", 3,
                 "backlog");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 "\n protocol = \"echo\"; max_connections = -1; }\n);\n", 3,
                 "max_connections");
    expect_error("listeners = \"echo\";\n", 1, "expected a list");
    expect_error("listeners = ( 5 );\n", 1, "must be a group");
    expect_error("listeners = ( );\n", 1, "empty");
}
END_TEST

START_TEST(test_missing)
{
    expect_error("workers = 1;\n", 0, "no 'listeners'");
    expect_error("listeners = (\n { name = \"e\"; protocol = \"echo\"; }\n);\n",
                 2, "missing 'listen'");
    expect_error("listeners = (\n { listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\"; }\n);\n", 2, "missing 'name'");
}
END_TEST

#define ECHO_AT(name, addr) \
    " { name = \"" name "\"; listen = \"" addr "\"; protocol = \"echo\"; }"

START_TEST(test_duplicates)
{
    expect_error("listeners = (\n" ECHO_AT("a", "127.0.0.1:7") ",\n"
                 ECHO_AT("a", "127.0.0.1:8") "\n);\n",
                 3, "name 'a' already used at line 2");
    expect_error("listeners = (\n" ECHO_AT("a", "127.0.0.1:7") ",\n"
                 ECHO_AT("b", "tcp://127.0.0.1:7") "\n);\n",
                 3, "address 127.0.0.1:7 already used at line 2");
    /* The same port over TCP and UDP is not a duplicate. */
    config_free(load_ok("listeners = (\n" ECHO_AT("a", "127.0.0.1:7") ",\n"
                        ECHO_AT("b", "udp://127.0.0.1:7") "\n);\n"));
}
END_TEST

START_TEST(test_bad_values)
{
    expect_error("listeners = (\n { name = \"e\";\n listen = \"127.0.0.1\";"
                 " protocol = \"echo\"; }\n);\n", 3, "missing :PORT");
    expect_error("listeners = (\n { name = \"e\"; listen = \"300.1.1.1:80\";"
                 "\n protocol = \"echo\"; }\n);\n", 2, "bad IPv4");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 "\n protocol = \"gopher\"; }\n);\n", 3,
                 "unknown protocol 'gopher'");
    expect_error("listeners = (\n { name = \"has space\";"
                 " listen = \"127.0.0.1:7\"; protocol = \"echo\"; }\n);\n", 2,
                 "name:");
}
END_TEST

/* user, group, rlimit_nofile, worker_core_dumps (supervisor/privs.c). */
START_TEST(test_privs)
{
    struct config *cfg = load_ok(L1);

    ck_assert_ptr_null(cfg->user);
    ck_assert_int_eq(cfg->rlimit_nofile, 0);
    ck_assert(!cfg->worker_core_dumps);
    config_free(cfg);
    /* root exists everywhere: uid 0, primary group 0. */
    cfg = load_ok("user = \"root\";\nrlimit_nofile = 4096;\n"
                  "worker_core_dumps = true;\n" L1);
    ck_assert_str_eq(cfg->user, "root");
    ck_assert_int_eq(cfg->uid, 0);
    ck_assert_int_eq(cfg->gid, 0);
    ck_assert(!cfg->has_group);
    ck_assert_int_eq(cfg->rlimit_nofile, 4096);
    ck_assert(cfg->worker_core_dumps);
    config_free(cfg);
    cfg = load_ok("user = \"root\"; group = \"root\";\n" L1);
    ck_assert(cfg->has_group);
    config_free(cfg);
    expect_error("workers = 1;\nuser = \"no-such-user\";\n" L1, 2,
                 "user: no user named 'no-such-user'");
    expect_error("user = \"root\";\n\ngroup = \"no-such-group\";\n" L1,
                 3, "group: no group named 'no-such-group'");
    expect_error("group = \"root\";\n" L1, 1, "group: needs user");
    expect_error("user = 0;\n" L1, 1, "user: expected a string");
    expect_error("\nrlimit_nofile = 10;\n" L1, 2,
                 "rlimit_nofile: expected an integer 64..");
    expect_error("worker_core_dumps = 1;\n" L1, 1,
                 "worker_core_dumps: expected true or false");
}
END_TEST

#define PX_HEAD "listeners = (\n { name = \"p\"; listen = \"127.0.0.1:7\";" \
                " protocol = \"proxy\";\n"

START_TEST(test_protocol_settings)
{
    struct config *cfg = load_ok(
        PX_HEAD "   proxy = { upstreams = (\"127.0.0.1:9\"); }; }\n);\n");

    ck_assert_ptr_nonnull(cfg->listeners[0].proto_conf);
    config_free(cfg);
    expect_error(PX_HEAD "   proxy = { upstreams = (\"127.0.0.1:9\");\n"
                 "     bogus = 1; }; }\n);\n", 4,
                 "listener p: unknown key 'bogus' in proxy");
    expect_error(PX_HEAD "   proxy = 5; }\n);\n", 3,
                 "proxy: expected a group");
    expect_error(PX_HEAD "   proxy = { upstreams = (\"127.0.0.1:9\");\n"
                 "     connect_timeout = \"soon\"; }; }\n);\n", 4,
                 "proxy.connect_timeout");
    /* A protocol's group under a listener of another protocol. */
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\";\n   proxy = { }; }\n);\n", 3,
                 "unknown key 'proxy' in listener");
}
END_TEST

START_TEST(test_listener_limits)
{
    struct config *cfg = load_ok(
        "listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
        " protocol = \"echo\"; idle_timeout = 500; write_high = 2000;"
        " write_low = 10; write_max = 0; }\n);\n");

    ck_assert_int_eq(cfg->listeners[0].idle_timeout, 500);
    ck_assert_int_eq(cfg->listeners[0].write_high, 2000);
    ck_assert_int_eq(cfg->listeners[0].write_low, 10);
    ck_assert_int_eq(cfg->listeners[0].write_max, 0);
    config_free(cfg);
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\";\n idle_timeout = -5; }\n);\n", 3,
                 "idle_timeout");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\"; write_high = 100;"
                 " write_low = 200; }\n);\n", 2, "write_low (200) is above");
    expect_error("listeners = (\n { name = \"e\"; listen = \"127.0.0.1:7\";"
                 " protocol = \"echo\"; write_high = 100;"
                 " write_max = 50; }\n);\n", 2, "write_max (50) is below");
}
END_TEST

START_TEST(test_modules)
{
    expect_error("modules = (\n  \"/nonexistent/x.so\" );\n" L1, 2,
                 "module /nonexistent/x.so: ");
    expect_error("modules = ( 5 );\n" L1, 1, "entry 1 is not a string");
    expect_error("modules = \"x.so\";\n" L1, 1, "expected a list");
    /* A shared object without the weft_module symbol. */
    expect_error("modules = ( \"libm.so.6\" );\n" L1, 1,
                 "no 'weft_module' symbol");
}
END_TEST

START_TEST(test_all_errors_reported)
{
    struct config_errors errs;

    write_file("wrokers = 1;\n"
               "listeners = (\n"
               " { name = \"e\"; listen = \"x\"; protocol = \"nope\"; }\n"
               ");\n");
    ck_assert_ptr_null(config_load(path, &errs));
    ck_assert_int_eq(errs.count, 3);
}
END_TEST

START_TEST(test_unreadable)
{
    struct config_errors errs;

    ck_assert_ptr_null(config_load("/nonexistent/weft.conf", &errs));
    ck_assert(strstr(errs.text, "/nonexistent/weft.conf: cannot read") !=
              NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_builtin_matches_contrib);
    tcase_add_test(tc, test_syntax);
    tcase_add_test(tc, test_unknown_keys);
    tcase_add_test(tc, test_types);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_privs);
    tcase_add_test(tc, test_all_errors_reported);
    tcase_add_test(tc, test_protocol_settings);
    tcase_add_test(tc, test_listener_limits);
    tcase_add_test(tc, test_modules);
    tcase_add_test(tc, test_log);
    tcase_add_test(tc, test_unreadable);
    suite_add_tcase(s, tc);
    return check_run(s);
}
