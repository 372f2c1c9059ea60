/*
 * Unit tests for shared/strbuf.c and supervisor/render.c: exact output for
 * small snapshots, escaping, every stats field present, and structural
 * checks of the JSON and Prometheus text produced.
 *
 * Set CHECK_RENDER_PROM or CHECK_RENDER_JSON to a file name to have
 * test_dump write a sample exposition / stats reply there, for external
 * validators (promtool check metrics, python3 -m json.tool). test_promtool
 * runs promtool itself when it is installed ($PROMTOOL, or on the PATH).
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/strbuf.h"
#include "supervisor/render.h"
#include "tests/unit/check_run.h"

/* The fields, expanded here on their own, to catch a table that drifts. */
static const char *const field_names[] = {
#define FIELD_NAME(name, kind, help) #name,
    STATS_FIELDS(FIELD_NAME)
#undef FIELD_NAME
};
static const char *const field_helps[] = {
#define FIELD_HELP(name, kind, help) help,
    STATS_FIELDS(FIELD_HELP)
#undef FIELD_HELP
};
static const bool field_counter[] = {
#define FIELD_COUNTER(name, kind, help) STATS_##kind == STATS_COUNTER,
    STATS_FIELDS(FIELD_COUNTER)
#undef FIELD_COUNTER
};

/* Occurrences of needle in hay, overlapping ones included. */
static int count_str(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Distinct counts, so a field printed in the wrong place shows. */
static void counts_fill(struct stats_counts *c, uint64_t base)
{
    for (int f = 0; f < STATS_NFIELDS; f++)
        c->v[f] = base + (uint64_t)f;
}

/* `"name": n, ...` for every field, built from the local expansion. */
static void counts_text(char *buf, size_t size, const struct stats_counts *c)
{
    size_t off = 0;

    buf[0] = '\0';
    for (int f = 0; f < STATS_NFIELDS; f++) {
        off += (size_t)snprintf(buf + off, size - off, "%s\"%s\": %" PRIu64,
                                f ? ", " : "", field_names[f], c->v[f]);
        ck_assert_uint_lt(off, size);
    }
}

/* The latency member of an object whose histogram is empty. */
#define LAT_EMPTY                                                          \
    "\"latency\": {\"count\": 0, \"sum_us\": 0, \"p50_us\": 0, "            \
    "\"p90_us\": 0, \"p99_us\": 0, \"max_us\": 0, \"buckets\": []}"

/*
 * 100 requests: 10 of at most 1 us, 40 of 8, 39 of 9 or 10, 9 of
 * 2049..2560, one of 2^26 us (67 s) and one above: sum 70 s and a bit.
 */
static void lat_fill(struct stats_counts *c)
{
    c->lat[0] = 10;
    c->lat[7] = 40;
    c->lat[8] = 39;
    c->lat[40] = 9;
    c->lat[STATS_LAT_OVER - 1] = 1;
    c->lat[STATS_LAT_OVER] = 1;
    c->lat_sum_us = 70123456;
}

/* A snapshot with two listeners, two workers and three series. */
struct fixture {
    struct stats_snapshot s;
    struct snap_listener l[2];
    struct snap_worker w[2];
    struct snap_series se[3];
};

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->s.version = "0.1.0";
    fx->s.pid = 123;
    fx->s.uptime_s = 42.7;
    fx->s.generation = 1;
    fx->s.nslots = 2;
    counts_fill(&fx->s.totals, 1000);
    fx->l[0].name = "echo";
    counts_fill(&fx->l[0].c, 100);
    fx->l[1].name = "chat";
    counts_fill(&fx->l[1].c, 200);
    fx->w[0] = (struct snap_worker){.slot = 0,
                                    .pid = 124,
                                    .generation = 1,
                                    .state = "running",
                                    .uptime_s = 41.99,
                                    .heartbeat_age_ms = 1234};
    counts_fill(&fx->w[0].c, 300);
    fx->w[1] = (struct snap_worker){.slot = 1,
                                    .pid = 125,
                                    .generation = 1,
                                    .state = "starting",
                                    .uptime_s = 0.2,
                                    .heartbeat_age_ms = -1,
                                    .stalled = true};
    counts_fill(&fx->w[1].c, 400);
    fx->se[0] = (struct snap_series){.listener = "echo", .slot = 0};
    counts_fill(&fx->se[0].c, 500);
    fx->se[1] = (struct snap_series){.listener = "echo", .slot = 1};
    counts_fill(&fx->se[1].c, 600);
    fx->se[2] = (struct snap_series){.listener = "chat", .slot = 0};
    counts_fill(&fx->se[2].c, 700);
    fx->s.listeners = fx->l;
    fx->s.nlisteners = 2;
    fx->s.workers = fx->w;
    fx->s.nworkers = 2;
    fx->s.series = fx->se;
    fx->s.nseries = 3;
}

/* The string escape at s (just after a backslash) is valid JSON. */
static bool json_escape_ok(const char *s)
{
    if (*s == 'u') {
        for (int k = 1; k <= 4; k++)
            if (strchr("0123456789abcdefABCDEF", s[k]) == NULL || !s[k])
                return false;
        return true;
    }
    return *s != '\0' && strchr("\"\\/bfnrt", *s) != NULL;
}

/*
 * A structural check of one JSON reply: a single line "{...}\n" whose
 * braces and brackets nest and balance outside strings, with strings
 * closed, free of raw control bytes and holding only valid escapes.
 */
static bool json_shape_ok(const char *s)
{
    char stack[32];
    int depth = 0;
    bool in_str = false;
    size_t n = strlen(s);

    if (n < 3 || s[0] != '{' || s[n - 1] != '\n')
        return false;
    for (size_t i = 0; i < n - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20)
            return false;
        if (in_str) {
            if (c == '"')
                in_str = false;
            else if (c == '\\') {
                if (!json_escape_ok(s + i + 1))
                    return false;
                i += s[i + 1] == 'u' ? 5 : 1;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (depth == (int)sizeof(stack))
                return false;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[--depth] != c)
                return false;
            if (depth == 0 && i != n - 2)
                return false; /* text after the top-level object */
        }
    }
    return depth == 0 && !in_str;
}

/* What the Prometheus checker remembers between lines. */
struct prom_state {
    char help[128];   /* name of a HELP line whose TYPE is due */
    char family[128]; /* name of the last TYPE: samples must match it */
    bool histogram;   /* ... with _bucket, _sum or _count after it */
    char seen[64][128];
    int nseen;
};

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; no ':' for labels. */
static size_t prom_name_len(const char *s, bool metric)
{
    size_t i = 0;

    for (;; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || (c == ':' && metric) ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return i;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* "# HELP name text" or "# TYPE name type". */
static void prom_check_comment(struct prom_state *st, const char *line)
{
    bool help = strncmp(line, "# HELP ", 7) == 0;
    ck_assert_msg(help || strncmp(line, "# TYPE ", 7) == 0, "%s", line);
    const char *name = line + 7;
    size_t n = prom_name_len(name, true);
    ck_assert_msg(n > 0 && n < 128 && name[n] == ' ', "%s", line);
    const char *rest = name + n + 1;
    char nm[128];
    memcpy(nm, name, n);
    nm[n] = '\0';
    if (help) {
        ck_assert_msg(st->help[0] == '\0', "HELP without TYPE: %s", st->help);
        for (int i = 0; i < st->nseen; i++)
            ck_assert_msg(strcmp(st->seen[i], nm) != 0, "again: %s", line);
        ck_assert_msg(*rest != '\0', "%s", line);
        strcpy(st->help, nm);
        return;
    }
    ck_assert_msg(strcmp(st->help, nm) == 0, "TYPE without HELP: %s", line);
    st->histogram = strcmp(rest, "histogram") == 0;
    if (strcmp(rest, "counter") == 0)
        ck_assert_msg(ends_with(nm, "_total"), "%s", line);
    else if (st->histogram)
        ck_assert_msg(!ends_with(nm, "_total") && !ends_with(nm, "_bucket") &&
                          !ends_with(nm, "_sum") && !ends_with(nm, "_count"),
                      "%s", line);
    else
        ck_assert_msg(strcmp(rest, "gauge") == 0 && !ends_with(nm, "_total"),
                      "%s", line);
    ck_assert_int_lt(st->nseen, 64);
    strcpy(st->seen[st->nseen++], nm);
    strcpy(st->family, nm);
    st->help[0] = '\0';
}

/* {name="value",...}: returns what follows the closing brace. */
static const char *prom_check_labels(const char *p, const char *line)
{
    ck_assert(*p == '{');
    do {
        p++;
        size_t n = prom_name_len(p, false);
        ck_assert_msg(n > 0 && p[n] == '=' && p[n + 1] == '"', "%s", line);
        for (p += n + 2; *p != '"'; p++) {
            ck_assert_msg(*p != '\0', "unclosed: %s", line);
            if (*p == '\\') {
                p++;
                ck_assert_msg(*p == '\\' || *p == '"' || *p == 'n', "%s", line);
            }
        }
        p++;
    } while (*p == ',');
    ck_assert_msg(*p == '}', "%s", line);
    return p + 1;
}

/* name[{labels}] value, where name is the current family (with the
 * suffix of a histogram's series, for a histogram). */
static void prom_check_sample(struct prom_state *st, const char *line)
{
    size_t n = prom_name_len(line, true), fn = strlen(st->family);
    ck_assert_msg(n >= fn && strncmp(line, st->family, fn) == 0,
                  "sample outside its family %s: %s", st->family, line);
    const char *sfx = line + fn;
    size_t sn = n - fn;
    ck_assert_msg(sn == 0 ? !st->histogram
                          : st->histogram &&
                                ((sn == 7 && !strncmp(sfx, "_bucket", 7)) ||
                                 (sn == 4 && !strncmp(sfx, "_sum", 4)) ||
                                 (sn == 6 && !strncmp(sfx, "_count", 6))),
                  "sample outside its family %s: %s", st->family, line);
    const char *p = line + n;
    if (*p == '{')
        p = prom_check_labels(p, line);
    ck_assert_msg(*p == ' ' && p[1] != '\0', "%s", line);
    char *end;
    strtod(p + 1, &end);
    ck_assert_msg(*end == '\0', "bad value: %s", line);
}

/*
 * Text format 0.0.4 as promtool sees it, for what we emit: HELP then
 * TYPE once per name, samples grouped under their TYPE, valid names,
 * counters and only counters named *_total, label escapes valid.
 */
static void prom_check(const char *text)
{
    struct prom_state st = {0};
    char line[512];

    ck_assert(text[0] != '\0' && text[strlen(text) - 1] == '\n');
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        ck_assert_uint_lt(len, sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        if (line[0] == '#')
            prom_check_comment(&st, line);
        else
            prom_check_sample(&st, line);
        p = nl + 1;
    }
    ck_assert_msg(st.help[0] == '\0', "HELP without TYPE: %s", st.help);
}

/*
 * Every series of histogram name in text: buckets in rising le order,
 * cumulative, "+Inf" last, then _sum and _count, _count equal to the
 * +Inf bucket. Returns the number of series.
 */
static int prom_check_histogram(const char *text, const char *name)
{
    char bucket[160], sum[160], count[160];
    int nseries = 0;

    snprintf(bucket, sizeof(bucket), "\n%s_bucket{", name);
    snprintf(sum, sizeof(sum), "%s_sum{", name);
    snprintf(count, sizeof(count), "%s_count{", name);
    for (const char *p = strstr(text, bucket); p != NULL;
         p = strstr(p, bucket)) {
        const char *labels = p + strlen(bucket);
        const char *le = strstr(labels, "le=\"");
        ck_assert_ptr_nonnull(le);
        size_t llen = (size_t)(le - labels); /* labels before le */
        double prev_le = -1;
        uint64_t prev = 0, v = 0;
        bool inf = false;
        p++;
        while (strncmp(p, bucket + 1, strlen(bucket) - 1) == 0 &&
               strncmp(p + strlen(bucket) - 1, labels, llen) == 0) {
            const char *q = p + strlen(bucket) - 1 + llen;
            char *end;
            ck_assert_msg(strncmp(q, "le=\"", 4) == 0, "%.80s", p);
            ck_assert_msg(!inf, "a bucket after +Inf: %.80s", p);
            double bound = strncmp(q + 4, "+Inf\"", 5) == 0
                               ? INFINITY
                               : strtod(q + 4, &end);
            inf = isinf(bound);
            ck_assert_msg(bound > prev_le, "le not rising: %.80s", p);
            q = strchr(q + 4, '"');
            ck_assert_msg(q[1] == '}' && q[2] == ' ', "%.80s", p);
            v = strtoull(q + 3, &end, 10);
            ck_assert_msg(*end == '\n' && v >= prev, "not cumulative: %.80s",
                          p);
            prev = v;
            prev_le = bound;
            p = end + 1;
        }
        ck_assert_msg(inf, "no +Inf bucket last before %.80s", p);
        ck_assert_msg(strncmp(p, sum, strlen(sum)) == 0 &&
                          strncmp(p + strlen(sum), labels, llen - 1) == 0,
                      "no _sum after the buckets: %.80s", p);
        p = strchr(p, '\n') + 1;
        ck_assert_msg(strncmp(p, count, strlen(count)) == 0 &&
                          strncmp(p + strlen(count), labels, llen - 1) == 0,
                      "no _count after _sum: %.80s", p);
        p = strchr(p, '}') + 2;
        ck_assert_uint_eq(strtoull(p, NULL, 10), v);
        nseries++;
    }
    return nseries;
}

START_TEST(test_strbuf_basic)
{
    struct strbuf b = {0};
    char big[3000];

    strbuf_add(&b, "ab", 2);
    strbuf_puts(&b, "cd");
    strbuf_printf(&b, "-%d-%s-", 42, "x");
    ck_assert_str_eq(b.data, "abcd-42-x-");
    ck_assert_uint_eq(b.len, 10);
    /* Longer than the room left: the second formatting pass. */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_printf(&b, "[%s]", big);
    ck_assert_uint_eq(b.len, 10 + 2 + sizeof(big) - 1);
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_int_eq(b.data[b.len - 1], ']');
    for (int i = 0; i < 1000; i++)
        strbuf_add(&b, "0123456789", 10);
    ck_assert_uint_eq(b.len, 10 + 3001 + 10000);
    ck_assert_uint_lt(b.len, b.cap);
    ck_assert(!b.failed);
    strbuf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    strbuf_add(&b, NULL, 0); /* nothing to add, nothing allocated */
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_strbuf_failed_sticky)
{
    struct strbuf b = {0};

    strbuf_puts(&b, "kept");
    b.failed = true;
    strbuf_puts(&b, "lost");
    strbuf_printf(&b, "%d", 1);
    strbuf_json_string(&b, "x");
    ck_assert_str_eq(b.data, "kept");
    ck_assert_int_eq(render_error_json("e", &b), -1);
    strbuf_free(&b);
    ck_assert(!b.failed);
}
END_TEST

START_TEST(test_strbuf_json_string)
{
    struct strbuf b = {0};

    strbuf_json_string(&b, "plain");
    strbuf_json_string(&b, "");
    strbuf_json_string(&b, NULL);
    ck_assert_str_eq(b.data, "\"plain\"\"\"\"\"");
    b.len = 0;
    strbuf_json_string(&b, "q\"b\\n\nt\tc\x01\x1f\r|\x7f caf\xc3\xa9");
    ck_assert_str_eq(b.data, "\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001f\\u000d|"
                             "\x7f caf\xc3\xa9\"");
    strbuf_free(&b);
}
END_TEST

START_TEST(test_json_shape_checker)
{
    /* The checker itself must reject what it is there to catch. */
    ck_assert(json_shape_ok("{\"a\": [1, {\"b\": \"}]\\\"\"}]}\n"));
    ck_assert(!json_shape_ok("{\"a\": [1}\n"));
    ck_assert(!json_shape_ok("{\"a\": 1}}\n"));
    ck_assert(!json_shape_ok("{\"a\": \"x\n\"}\n"));
    ck_assert(!json_shape_ok("{\"a\": \"x}\n"));
    ck_assert(!json_shape_ok("{\"a\": \"\\x\"}\n"));
    ck_assert(!json_shape_ok("{\"a\": 1}"));
    ck_assert(!json_shape_ok("{\"a\": 1} {}\n"));
}
END_TEST

START_TEST(test_error_json)
{
    struct strbuf b = {0};

    ck_assert_int_eq(render_error_json("unknown command", &b), 0);
    ck_assert_str_eq(b.data,
                     "{\"ok\": false, \"error\": \"unknown command\"}\n");
    b.len = 0;
    ck_assert_int_eq(render_error_json("line 3: \"x\\\" \n\x02", &b), 0);
    ck_assert_str_eq(b.data, "{\"ok\": false, \"error\": "
                             "\"line 3: \\\"x\\\\\\\" \\n\\u0002\"}\n");
    ck_assert(json_shape_ok(b.data));
    strbuf_free(&b);
}
END_TEST

START_TEST(test_workers_json_exact)
{
    struct snap_worker w[2] = {
        {.slot = 0,
         .pid = 124,
         .generation = 7,
         .state = "running",
         .uptime_s = 42.9,
         .heartbeat_age_ms = 120},
        {.slot = 1,
         .pid = 125,
         .generation = 6,
         .state = "draining",
         .uptime_s = 0.5,
         .heartbeat_age_ms = -1,
         .stalled = true},
    };
    struct stats_snapshot s = {.generation = 7, .workers = w, .nworkers = 0};
    struct strbuf b = {0};

    ck_assert_int_eq(render_workers_json(&s, &b), 0);
    ck_assert_str_eq(b.data, "{\"ok\": true, \"generation\": 7, "
                             "\"workers\": []}\n");
    counts_fill(&w[0].c, 9000); /* fields not listed must not show */
    w[0].c.v[STAT_connections_active] = 3;
    w[0].c.v[STAT_connections_accepted] = 500;
    w[0].c.v[STAT_bytes_in] = 1000;
    w[0].c.v[STAT_bytes_out] = 2000;
    w[0].c.v[STAT_requests] = 50;
    w[0].c.v[STAT_tls_handshakes] = 7;
    w[0].c.v[STAT_tls_resumed] = 6;
    s.nworkers = 2;
    b.len = 0;
    ck_assert_int_eq(render_workers_json(&s, &b), 0);
    ck_assert_str_eq(
        b.data, "{\"ok\": true, \"generation\": 7, \"workers\": ["
                "{\"slot\": 0, \"pid\": 124, \"generation\": 7, \"state\": "
                "\"running\", \"uptime_s\": 42, \"heartbeat_age_ms\": 120, "
                "\"stalled\": false, \"connections_active\": 3, "
                "\"connections_accepted\": 500, \"bytes_in\": 1000, "
                "\"bytes_out\": 2000, \"requests\": 50, "
                     "\"tls_handshakes\": 7, \"tls_resumed\": 6}, "
                "{\"slot\": 1, \"pid\": 125, \"generation\": 6, \"state\": "
                "\"draining\", \"uptime_s\": 0, \"heartbeat_age_ms\": -1, "
                "\"stalled\": true, \"connections_active\": 0, "
                "\"connections_accepted\": 0, \"bytes_in\": 0, "
                "\"bytes_out\": 0, \"requests\": 0, \"tls_handshakes\": 0, "
                     "\"tls_resumed\": 0}]}\n");
    ck_assert(json_shape_ok(b.data));
    strbuf_free(&b);
}
END_TEST

START_TEST(test_stats_json_empty)
{
    struct stats_snapshot s = {.version = "0.1.0",
                               .pid = 123,
                               .uptime_s = 42.999,
                               .generation = 1,
                               .nslots = 4};
    struct strbuf b = {0};
    char t[2048], want[4096];

    counts_fill(&s.totals, 10);
    counts_text(t, sizeof(t), &s.totals);
    snprintf(want, sizeof(want),
             "{\"ok\": true, \"version\": \"0.1.0\", \"pid\": 123, "
             "\"uptime_s\": 42, \"time_ms\": 0, \"generation\": 1, \"workers_configured\": 4, "
             "\"generations_forced\": 0, "
             "\"totals\": {%s, " LAT_EMPTY "}, \"listeners\": [], "
             "\"workers\": [], \"events\": []}\n",
             t);
    ck_assert_int_eq(render_stats_json(&s, &b), 0);
    ck_assert_str_eq(b.data, want);
    ck_assert(json_shape_ok(b.data));
    strbuf_free(&b);
}
END_TEST

START_TEST(test_stats_json_exact)
{
    struct fixture fx;
    struct strbuf b = {0};
    char t[2048], l0[2048], l1[2048], w0[2048], w1[2048], want[16384];

    struct snap_event ev[2] = {{1000, "start", "weftd 0.1.0"},
                               {2000, "crash", "worker 1 \"x\""}};

    fixture_init(&fx);
    fx.s.events = ev;
    fx.s.nevents = 2;
    counts_text(t, sizeof(t), &fx.s.totals);
    counts_text(l0, sizeof(l0), &fx.l[0].c);
    counts_text(l1, sizeof(l1), &fx.l[1].c);
    counts_text(w0, sizeof(w0), &fx.w[0].c);
    counts_text(w1, sizeof(w1), &fx.w[1].c);
    snprintf(want, sizeof(want),
             "{\"ok\": true, \"version\": \"0.1.0\", \"pid\": 123, "
             "\"uptime_s\": 42, \"time_ms\": 0, \"generation\": 1, \"workers_configured\": 2, "
             "\"generations_forced\": 0, "
             "\"totals\": {%s, " LAT_EMPTY "}, "
             "\"listeners\": [{\"name\": \"echo\", %s, " LAT_EMPTY "}, "
             "{\"name\": \"chat\", %s, " LAT_EMPTY "}], "
             "\"workers\": [{\"slot\": 0, "
             "\"pid\": 124, \"generation\": 1, \"state\": \"running\", "
             "\"uptime_s\": 41, \"heartbeat_age_ms\": 1234, "
             "\"stalled\": false, %s}, {\"slot\": 1, \"pid\": 125, "
             "\"generation\": 1, \"state\": \"starting\", \"uptime_s\": 0, "
             "\"heartbeat_age_ms\": -1, \"stalled\": true, %s}], "
             "\"events\": [{\"time_ms\": 1000, \"kind\": \"start\", "
             "\"text\": \"weftd 0.1.0\"}, {\"time_ms\": 2000, "
             "\"kind\": \"crash\", \"text\": \"worker 1 \\\"x\\\"\"}]}\n",
             t, l0, l1, w0, w1);
    ck_assert_int_eq(render_stats_json(&fx.s, &b), 0);
    ck_assert_str_eq(b.data, want);
    ck_assert(json_shape_ok(b.data));
    ck_assert_int_eq(count_str(b.data, "\n"), 1);
    strbuf_free(&b);
}
END_TEST

/* The shared table and the local expansion agree, field by field. */
START_TEST(test_fields_table)
{
    ck_assert_uint_eq(sizeof(field_names) / sizeof(field_names[0]),
                      STATS_NFIELDS);
    for (int f = 0; f < STATS_NFIELDS; f++) {
        ck_assert_str_eq(stats_fields[f].name, field_names[f]);
        ck_assert_str_eq(stats_fields[f].help, field_helps[f]);
        ck_assert_int_eq(stats_fields[f].kind == STATS_COUNTER,
                         field_counter[f]);
    }
}
END_TEST

/* Every field once in totals, each listener and each worker, in order. */
START_TEST(test_stats_json_every_field)
{
    struct fixture fx;
    struct strbuf b = {0};
    char key[128];

    fixture_init(&fx);
    ck_assert_int_eq(render_stats_json(&fx.s, &b), 0);
    const char *totals = strstr(b.data, "\"totals\": {");
    ck_assert_ptr_nonnull(totals);
    const char *prev = totals;
    for (int f = 0; f < STATS_NFIELDS; f++) {
        snprintf(key, sizeof(key), "\"%s\": ", field_names[f]);
        ck_assert_int_eq(count_str(b.data, key), 1 + 2 + 2);
        const char *at = strstr(totals, key);
        ck_assert_ptr_nonnull(at);
        ck_assert_msg(at > prev, "%s out of order", field_names[f]);
        prev = at;
    }
    strbuf_free(&b);
}
END_TEST

START_TEST(test_stats_json_escape)
{
    static const char *const names[][2] = {
        {"q\"uote", "\"q\\\"uote\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"new\nline", "\"new\\nline\""},
        {"tab\tbed", "\"tab\\tbed\""},
        {"ctl\x01\x1f\x7f", "\"ctl\\u0001\\u001f\x7f\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {"\"\\\n", "\"\\\"\\\\\\n\""},
    };
    enum { N = sizeof(names) / sizeof(names[0]) };
    struct snap_listener l[N];
    struct snap_worker w = {.state = "we\"ird\n", .heartbeat_age_ms = 5};
    struct stats_snapshot s = {.version = "0.1.0\"x\\",
                               .listeners = l,
                               .nlisteners = N,
                               .workers = &w,
                               .nworkers = 1};
    struct strbuf b = {0};
    char want[128];

    memset(l, 0, sizeof(l));
    for (int i = 0; i < N; i++)
        l[i].name = names[i][0];
    ck_assert_int_eq(render_stats_json(&s, &b), 0);
    ck_assert_msg(json_shape_ok(b.data), "%.300s", b.data);
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof(want), "{\"name\": %s, ", names[i][1]);
        ck_assert_msg(strstr(b.data, want) != NULL, "%s", want);
    }
    ck_assert(strstr(b.data, "\"version\": \"0.1.0\\\"x\\\\\", ") != NULL);
    ck_assert(strstr(b.data, "\"state\": \"we\\\"ird\\n\", ") != NULL);
    b.len = 0;
    ck_assert_int_eq(render_workers_json(&s, &b), 0);
    ck_assert(json_shape_ok(b.data));
    ck_assert(strstr(b.data, "\"state\": \"we\\\"ird\\n\", ") != NULL);
    strbuf_free(&b);
}
END_TEST

START_TEST(test_prom_process_exact)
{
    struct fixture fx;
    struct strbuf b = {0};

    fixture_init(&fx);
    fx.w[1].heartbeat_age_ms = 5;
    fx.w[0].stalled = false;
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    static const char want[] =
        "# HELP weft_build_info Version of the running weftd; "
        "the value is always 1\n"
        "# TYPE weft_build_info gauge\n"
        "weft_build_info{version=\"0.1.0\"} 1\n"
        "# HELP weft_generation Reload generation now serving\n"
        "# TYPE weft_generation gauge\n"
        "weft_generation 1\n"
        "# HELP weft_workers Worker slots configured\n"
        "# TYPE weft_workers gauge\n"
        "weft_workers 2\n"
        "# HELP weft_generations_forced_total Old generations stopped "
        "early: more were alive than max_generations\n"
        "# TYPE weft_generations_forced_total counter\n"
        "weft_generations_forced_total 0\n"
        "# HELP weft_uptime_seconds Seconds since the supervisor started\n"
        "# TYPE weft_uptime_seconds gauge\n"
        "weft_uptime_seconds 42.700\n"
        "# HELP weft_worker_heartbeat_age_seconds Seconds since the "
        "worker's last heartbeat\n"
        "# TYPE weft_worker_heartbeat_age_seconds gauge\n"
        "weft_worker_heartbeat_age_seconds{worker=\"0\",pid=\"124\"} 1.234\n"
        "weft_worker_heartbeat_age_seconds{worker=\"1\",pid=\"125\"} 0.005\n"
        "# HELP weft_worker_stalled 1 when the worker's heartbeat is older "
        "than the limit\n"
        "# TYPE weft_worker_stalled gauge\n"
        "weft_worker_stalled{worker=\"0\",pid=\"124\"} 0\n"
        "weft_worker_stalled{worker=\"1\",pid=\"125\"} 1\n"
        "# HELP weft_connections_accepted_total ";
    ck_assert_msg(strncmp(b.data, want, strlen(want)) == 0, "%.300s", b.data);
    /* No heartbeat yet: no age sample. */
    fx.w[1].heartbeat_age_ms = -1;
    b.len = 0;
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    ck_assert_int_eq(count_str(b.data, "weft_worker_heartbeat_age_seconds{"),
                     1);
    strbuf_free(&b);
}
END_TEST

/* The whole block of field f, from HELP to its last sample. */
static void prom_field_block(char *buf, size_t size, const struct fixture *fx,
                             int f)
{
    const char *sfx = field_counter[f] ? "_total" : "";
    size_t off = (size_t)snprintf(
        buf, size, "# HELP weft_%s%s %s\n# TYPE weft_%s%s %s\n", field_names[f],
        sfx, field_helps[f], field_names[f], sfx,
        field_counter[f] ? "counter" : "gauge");
    for (size_t i = 0; i < fx->s.nseries; i++) {
        const struct snap_series *se = &fx->s.series[i];
        off += (size_t)snprintf(buf + off, size - off,
                                "weft_%s%s{listener=\"%s\",worker=\"%d\"} "
                                "%" PRIu64 "\n",
                                field_names[f], sfx, se->listener, se->slot,
                                se->c.v[f]);
        ck_assert_uint_lt(off, size);
    }
}

START_TEST(test_prom_fields_exact)
{
    struct fixture fx;
    struct strbuf b = {0};
    char want[2048];

    fixture_init(&fx);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_field_block(want, sizeof(want), &fx, STAT_connections_accepted);
    ck_assert_str_eq(
        want, "# HELP weft_connections_accepted_total Connections accepted\n"
              "# TYPE weft_connections_accepted_total counter\n"
              "weft_connections_accepted_total{listener=\"echo\",worker=\"0\"}"
              " 500\n"
              "weft_connections_accepted_total{listener=\"echo\",worker=\"1\"}"
              " 600\n"
              "weft_connections_accepted_total{listener=\"chat\",worker=\"0\"}"
              " 700\n");
    /* Each block whole, followed by the next block or the end. */
    for (int f = 0; f < STATS_NFIELDS; f++) {
        prom_field_block(want, sizeof(want), &fx, f);
        const char *at = strstr(b.data, want);
        ck_assert_msg(at != NULL, "missing block:\n%s", want);
        at += strlen(want);
        ck_assert(*at == '\0' || strncmp(at, "# HELP ", 7) == 0);
    }
    /* The fixture's value of a field is its base plus its index. */
    snprintf(want, sizeof(want),
             "weft_connections_active{listener=\"echo\",worker=\"0\"} %d\n",
             500 + STAT_connections_active);
    ck_assert(strstr(b.data, want) != NULL);
    ck_assert(strstr(b.data, "weft_connections_active_total") == NULL);
    prom_check(b.data);
    strbuf_free(&b);
}
END_TEST

/* HELP and TYPE exactly once per name, samples counted per field. */
START_TEST(test_prom_once)
{
    struct fixture fx;
    struct strbuf b = {0};
    char key[160];

    fixture_init(&fx);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    for (int f = 0; f < STATS_NFIELDS; f++) {
        const char *sfx = field_counter[f] ? "_total" : "";
        snprintf(key, sizeof(key), "# HELP weft_%s%s ", field_names[f], sfx);
        ck_assert_int_eq(count_str(b.data, key), 1);
        snprintf(key, sizeof(key), "# TYPE weft_%s%s %s\n", field_names[f], sfx,
                 field_counter[f] ? "counter" : "gauge");
        ck_assert_int_eq(count_str(b.data, key), 1);
        snprintf(key, sizeof(key), "\nweft_%s%s{", field_names[f], sfx);
        ck_assert_int_eq(count_str(b.data, key), 3);
    }
    ck_assert_int_eq(count_str(b.data, "# HELP "), STATS_NFIELDS + 8);
    ck_assert_int_eq(count_str(b.data, "# TYPE "), STATS_NFIELDS + 8);
    ck_assert_int_eq(count_str(b.data, "_bucket{"), 0); /* no request yet */
    /* One listener with requests: its histogram, once. */
    lat_fill(&fx.l[1].c);
    b.len = 0;
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    ck_assert_int_eq(count_str(b.data, "# HELP "), STATS_NFIELDS + 8);
    ck_assert_int_eq(count_str(b.data, "\nweft_request_duration_seconds_bucket{"
                                       "listener=\"chat\","),
                     STATS_LAT_BUCKETS);
    ck_assert_int_eq(count_str(b.data, "listener=\"echo\",le="), 0);
    ck_assert_int_eq(prom_check_histogram(b.data,
                                          "weft_request_duration_seconds"),
                     1);
    /* No series at all: still valid, families without samples. */
    fx.s.nseries = 0;
    fx.s.nworkers = 0;
    b.len = 0;
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    strbuf_free(&b);
}
END_TEST

START_TEST(test_prom_label_escape)
{
    struct fixture fx;
    struct strbuf b = {0};

    fixture_init(&fx);
    fx.se[1].listener = "a\"b\\c\nd";
    fx.s.version = "1\"\\\n";
    fx.l[0].name = "e\"\\\n";
    lat_fill(&fx.l[0].c);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    ck_assert_int_eq(count_str(b.data, "{listener=\"e\\\"\\\\\\n\",le="),
                     STATS_LAT_BUCKETS);
    ck_assert_int_eq(prom_check_histogram(b.data,
                                          "weft_request_duration_seconds"),
                     1);
    ck_assert_int_eq(count_str(b.data, "{listener=\"a\\\"b\\\\c\\nd\","
                                       "worker=\"1\"} "),
                     STATS_NFIELDS);
    ck_assert(strstr(b.data, "weft_build_info{version=\"1\\\"\\\\\\n\"} 1\n") !=
              NULL);
    strbuf_free(&b);
}
END_TEST

START_TEST(test_stats_json_latency)
{
    struct fixture fx;
    struct strbuf b = {0};
    static const char want[] =
        "\"latency\": {\"count\": 100, \"sum_us\": 70123456, "
        "\"p50_us\": 8, \"p90_us\": 2560, \"p99_us\": 67108864, "
        "\"max_us\": null, \"buckets\": [[1, 10], [8, 40], [10, 39], "
        "[2560, 9], [67108864, 1], [null, 1]]}";

    fixture_init(&fx);
    lat_fill(&fx.s.totals);
    lat_fill(&fx.l[1].c);
    ck_assert_int_eq(render_stats_json(&fx.s, &b), 0);
    ck_assert(json_shape_ok(b.data));
    ck_assert_int_eq(count_str(b.data, want), 2);
    ck_assert_int_eq(count_str(b.data, LAT_EMPTY), 1); /* echo */
    ck_assert_int_eq(count_str(b.data, "\"latency\": "), 3);
    /* Totals and listeners only: not in worker objects. */
    ck_assert_ptr_null(strstr(strstr(b.data, "\"workers\": ["), "latency"));
    ck_assert_msg(strstr(b.data, "\"name\": \"chat\", ") <
                      strstr(strstr(b.data, "\"listeners\""), want),
                  "%s", b.data);
    /* Below the overflow bucket: every bound a number. */
    fx.l[1].c.lat[STATS_LAT_OVER] = 0;
    fx.l[1].c.lat[STATS_LAT_OVER - 1] = 2;
    b.len = 0;
    ck_assert_int_eq(render_stats_json(&fx.s, &b), 0);
    ck_assert(strstr(b.data, "\"p99_us\": 67108864, \"max_us\": 67108864, "
                             "\"buckets\": [[1, 10], [8, 40], [10, 39], "
                             "[2560, 9], [67108864, 2]]}") != NULL);
    strbuf_free(&b);
}
END_TEST

START_TEST(test_prom_histogram)
{
    struct fixture fx;
    struct strbuf b = {0};
    static const char *const want[] = {
        "# HELP weft_request_duration_seconds Time from a request's first "
        "byte to its answer being queued, over all workers\n"
        "# TYPE weft_request_duration_seconds histogram\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"0.000001\"} 10\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"0.000002\"} 10\n",
        "le=\"0.000007\"} 10\n",
        "le=\"0.000008\"} 50\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"0.00001\"} 89\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"0.000012\"} 89\n",
        "le=\"0.002048\"} 89\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"0.00256\"} 98\n",
        "le=\"1\"} 98\n", /* 1 s is not a bound */
        "le=\"58.720256\"} 98\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"67.108864\"} 99\n"
        "weft_request_duration_seconds_bucket{listener=\"chat\","
        "le=\"+Inf\"} 100\n"
        "weft_request_duration_seconds_sum{listener=\"chat\"} 70.123456\n"
        "weft_request_duration_seconds_count{listener=\"chat\"} 100\n",
    };

    fixture_init(&fx);
    lat_fill(&fx.l[1].c);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(want[i], "le=\"1\"") != NULL) {
            ck_assert_ptr_null(strstr(b.data, want[i]));
            continue;
        }
        ck_assert_msg(strstr(b.data, want[i]) != NULL, "missing:\n%s",
                      want[i]);
    }
    /* The histogram comes last; the sum is exact. */
    ck_assert(ends_with(b.data, "_count{listener=\"chat\"} 100\n"));
    ck_assert_int_eq(prom_check_histogram(b.data,
                                          "weft_request_duration_seconds"),
                     1);
    /* A second listener, and sums of whole seconds. */
    lat_fill(&fx.l[0].c);
    fx.l[0].c.lat_sum_us = 3000000;
    fx.l[0].c.lat[3] = 7;
    b.len = 0;
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    prom_check(b.data);
    ck_assert_int_eq(prom_check_histogram(b.data,
                                          "weft_request_duration_seconds"),
                     2);
    ck_assert(strstr(b.data, "_sum{listener=\"echo\"} 3\n") != NULL);
    ck_assert(strstr(b.data, "_count{listener=\"echo\"} 107\n") != NULL);
    ck_assert(strstr(b.data, "_bucket{listener=\"echo\",le=\"0.000004\"} "
                             "17\n") != NULL);
    strbuf_free(&b);
}
END_TEST

START_TEST(test_render_failed)
{
    struct fixture fx;
    struct strbuf b = {.failed = true};

    fixture_init(&fx);
    ck_assert_int_eq(render_stats_json(&fx.s, &b), -1);
    ck_assert_int_eq(render_workers_json(&fx.s, &b), -1);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), -1);
    ck_assert_int_eq(render_error_json("x", &b), -1);
    ck_assert_ptr_null(b.data);
}
END_TEST

/* Write text to the file named by environment variable var, if set. */
static void dump_to(const char *var, const char *text)
{
    const char *path = getenv(var);

    if (path == NULL || *path == '\0')
        return;
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: cannot open %s", __func__, path);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Samples for external validators; see the comment at the top. */
START_TEST(test_dump)
{
    struct fixture fx;
    struct strbuf b = {0};

    fixture_init(&fx);
    fx.se[1].listener = "a\"b\\c\nd";
    fx.l[1].name = "q\"\\\n\t\x01";
    lat_fill(&fx.l[0].c);
    lat_fill(&fx.l[1].c);
    lat_fill(&fx.s.totals);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    dump_to("CHECK_RENDER_PROM", b.data);
    b.len = 0;
    ck_assert_int_eq(render_stats_json(&fx.s, &b), 0);
    ck_assert_int_eq(render_workers_json(&fx.s, &b), 0);
    ck_assert_int_eq(render_error_json("bad \"x\"\n", &b), 0);
    dump_to("CHECK_RENDER_JSON", b.data);
    strbuf_free(&b);
}
END_TEST

/* The path of promtool: $PROMTOOL, else the first on the PATH; NULL
 * when there is none. */
static char *promtool_path(void)
{
    static char buf[4096];
    const char *env = getenv("PROMTOOL"), *path = getenv("PATH");

    if (env != NULL && *env != '\0')
        return access(env, X_OK) == 0 ? (char *)env : NULL;
    for (const char *p = path; p != NULL && *p != '\0';) {
        const char *colon = strchr(p, ':');
        int n = colon ? (int)(colon - p) : (int)strlen(p);
        snprintf(buf, sizeof(buf), "%.*s/promtool", n, p);
        if (n > 0 && access(buf, X_OK) == 0)
            return buf;
        p = colon ? colon + 1 : NULL;
    }
    return NULL;
}

/* promtool check metrics on a sample with histograms, when installed. */
START_TEST(test_promtool)
{
    struct fixture fx;
    struct strbuf b = {0};
    char file[] = "/tmp/check_render_XXXXXX", cmd[8192];
    char *tool = promtool_path();

    if (tool == NULL) {
        fprintf(stderr, "test_promtool: no promtool: skipped\n");
        return;
    }
    fixture_init(&fx);
    fx.se[1].listener = "a\"b\\c\nd";
    fx.l[1].name = "q\"\\\n\t\x01";
    lat_fill(&fx.l[0].c);
    lat_fill(&fx.l[1].c);
    ck_assert_int_eq(render_prometheus(&fx.s, &b), 0);
    int fd = mkstemp(file);
    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", tool, file);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char said[4096];
    size_t n = fread(said, 1, sizeof(said) - 1, p);
    said[n] = '\0';
    int status = pclose(p);
    unlink(file);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "promtool check metrics: status %d:\n%s", status, said);
    strbuf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("render");

    tcase_add_test(tc, test_strbuf_basic);
    tcase_add_test(tc, test_strbuf_failed_sticky);
    tcase_add_test(tc, test_strbuf_json_string);
    tcase_add_test(tc, test_json_shape_checker);
    tcase_add_test(tc, test_error_json);
    tcase_add_test(tc, test_workers_json_exact);
    tcase_add_test(tc, test_stats_json_empty);
    tcase_add_test(tc, test_stats_json_exact);
    tcase_add_test(tc, test_fields_table);
    tcase_add_test(tc, test_stats_json_every_field);
    tcase_add_test(tc, test_stats_json_escape);
    tcase_add_test(tc, test_prom_process_exact);
    tcase_add_test(tc, test_prom_fields_exact);
    tcase_add_test(tc, test_prom_once);
    tcase_add_test(tc, test_prom_label_escape);
    tcase_add_test(tc, test_stats_json_latency);
    tcase_add_test(tc, test_prom_histogram);
    tcase_add_test(tc, test_promtool);
    tcase_add_test(tc, test_render_failed);
    tcase_add_test(tc, test_dump);
    suite_add_tcase(s, tc);
    return check_run(s);
}
