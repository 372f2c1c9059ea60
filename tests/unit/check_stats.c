/*
 * Unit tests for the stats region (shared/stats.c) and snapshots
 * (supervisor/stats_read.c): a retired worker's counts are folded into its
 * slot, so no total goes backwards; gauges leave with their process. The
 * latency histogram: bucket boundaries, quantiles, folding, and
 * weft_count_response (worker/worker.c) on a row of its own.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervisor/stats_read.h"
#include "tests/unit/check_run.h"
#include "worker/worker.h"

static struct supervisor sup;

static void setup(void)
{
    memset(&sup, 0, sizeof(sup));
    sup.stats = stats_shm_create(NULL);
    ck_assert_ptr_nonnull(sup.stats);
    sup.nslots = 2;
    sup.stats->h.nlisteners = 2;
    strcpy(sup.stats->h.listener[0], "echo");
    strcpy(sup.stats->h.listener[1], "web");
}

static void teardown(void)
{
    munmap(sup.stats, sizeof(*sup.stats));
}

static struct stats_row *row(int b, int r)
{
    return &sup.stats->block[b].row[r];
}

/* The snapshot's series for listener index i in slot. */
static const struct stats_counts *series(const struct stats_snapshot *s,
                                         size_t i, int slot)
{
    return &s->series[i * (size_t)s->nslots + (size_t)slot].c;
}

START_TEST(test_fold_on_retire)
{
    struct stats_snapshot s;
    int b0 = stats_block_claim(sup.stats, 0, 100, 1);
    int b1 = stats_block_claim(sup.stats, 1, 101, 1);

    ck_assert_int_ge(b0, 0);
    ck_assert_int_ne(b0, b1);
    stats_add(row(b0, 0), STAT_connections_accepted, 5);
    stats_add(row(b0, 0), STAT_connections_active, 2);
    stats_add(row(b0, 1), STAT_bytes_in, 1000);
    stats_add(row(b1, 0), STAT_connections_accepted, 7);
    stats_add(row(b1, STATS_ROW_OUTGOING), STAT_connect_failures, 1);
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(s.totals.v[STAT_connections_accepted], 12);
    ck_assert_uint_eq(s.totals.v[STAT_connections_active], 2);
    ck_assert_uint_eq(s.nworkers, 2);
    ck_assert_uint_eq(s.nlisteners, 3);
    ck_assert_str_eq(s.listeners[2].name, "outgoing");
    ck_assert_uint_eq(s.listeners[2].c.v[STAT_connect_failures], 1);
    snapshot_free(&s);

    /* Worker 0 dies; a new one takes slot 0 and counts from zero. */
    stats_block_retire(sup.stats, b0);
    int b2 = stats_block_claim(sup.stats, 0, 102, 1);
    stats_add(row(b2, 0), STAT_connections_accepted, 1);
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(s.totals.v[STAT_connections_accepted], 13);
    ck_assert_uint_eq(s.totals.v[STAT_connections_active], 0); /* gone */
    ck_assert_uint_eq(s.totals.v[STAT_connections_closed], 2);  /* with it */
    ck_assert_uint_eq(series(&s, 0, 0)->v[STAT_connections_accepted], 6);
    ck_assert_uint_eq(series(&s, 0, 1)->v[STAT_connections_accepted], 7);
    ck_assert_uint_eq(series(&s, 1, 0)->v[STAT_bytes_in], 1000);
    ck_assert_uint_eq(s.listeners[0].c.v[STAT_connections_accepted], 13);
    ck_assert_uint_eq(s.nworkers, 2);
    for (size_t i = 0; i < s.nworkers; i++)
        if (s.workers[i].slot == 0) {
            ck_assert_int_eq(s.workers[i].pid, 102);
            ck_assert_uint_eq(s.workers[i].c.v[STAT_connections_accepted],
                              1);
            ck_assert_str_eq(s.workers[i].state, "starting");
        }
    snapshot_free(&s);
}
END_TEST

START_TEST(test_blocks_reused)
{
    /* More claims and retirements than blocks: none is lost. */
    for (int i = 0; i < 3 * STATS_BLOCKS; i++) {
        int b = stats_block_claim(sup.stats, i % 2, 1000 + i, 1);
        ck_assert_int_ge(b, 0);
        stats_add(row(b, 0), STAT_requests, 1);
        stats_block_retire(sup.stats, b);
    }
    struct stats_snapshot s;
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(s.totals.v[STAT_requests], 3 * STATS_BLOCKS);
    ck_assert_uint_eq(s.nworkers, 0);
    snapshot_free(&s);
}
END_TEST

START_TEST(test_header)
{
    ck_assert_uint_eq(sup.stats->h.magic, STATS_MAGIC);
    ck_assert_uint_eq(sup.stats->h.layout_version, STATS_LAYOUT_VERSION);
    ck_assert_int_eq(sup.stats->h.supervisor_pid, getpid());
    ck_assert_uint_eq(sizeof(struct stats_block) % 64, 0);
    ck_assert_str_eq(stats_fields[STAT_bytes_in].name, "bytes_in");
    ck_assert_int_eq(stats_fields[STAT_connections_active].kind,
                     STATS_GAUGE);
}
END_TEST

/* The bucket of us, checked against its bounds (without a Check
 * assertion on success: this runs a million times). */
static unsigned lat_index_checked(uint64_t us)
{
    unsigned i = stats_lat_index(us);

    if (i > STATS_LAT_OVER || us > stats_lat_bound(i) ||
        (i > 0 && us <= stats_lat_bound(i - 1)))
        ck_abort_msg("%llu us in bucket %u of bounds %llu..%llu",
                     (unsigned long long)us, i,
                     i > 0 ? (unsigned long long)stats_lat_bound(i - 1) : 0,
                     (unsigned long long)stats_lat_bound(i));
    return i;
}

START_TEST(test_lat_index_bounds)
{
    /* The scheme: one bucket per microsecond to 8 (0 with 1), then four
     * per power of two, to 2^26 us; the overflow bucket after. */
    ck_assert_int_eq(STATS_LAT_OVER, 100);
    ck_assert_int_eq(STATS_LAT_BUCKETS, 101);
    ck_assert_uint_eq(stats_lat_index(0), 0);
    ck_assert_uint_eq(stats_lat_index(1), 0);
    ck_assert_uint_eq(stats_lat_index(2), 1);
    ck_assert_uint_eq(stats_lat_index(8), 7);
    ck_assert_uint_eq(stats_lat_index(9), 8);
    ck_assert_uint_eq(stats_lat_index(10), 8);
    ck_assert_uint_eq(stats_lat_index(11), 9);
    ck_assert_uint_eq(stats_lat_index(16), 11);
    ck_assert_uint_eq(stats_lat_index(17), 12);
    ck_assert_uint_eq(stats_lat_bound(0), 1);
    ck_assert_uint_eq(stats_lat_bound(7), 8);
    ck_assert_uint_eq(stats_lat_bound(8), 10);
    ck_assert_uint_eq(stats_lat_bound(11), 16);
    ck_assert_uint_eq(stats_lat_bound(12), 20);
    ck_assert_uint_eq(stats_lat_bound(40), 2560);
    /* Every power of two is a bound, the one its own value lands on. */
    for (int k = 0; k <= STATS_LAT_LOG2_MAX; k++) {
        uint64_t p = (uint64_t)1 << k;
        unsigned i = lat_index_checked(p);
        ck_assert_uint_eq(stats_lat_bound(i), p);
        ck_assert_uint_eq(lat_index_checked(p + 1), i + 1);
        if (k > 0)
            ck_assert_uint_eq(lat_index_checked(p - 1), p - 1 <= 8 ? i - 1
                                                                    : i);
    }
    /* The top: 2^26 us is the last bound, anything above overflows. */
    ck_assert_uint_eq(stats_lat_index(STATS_LAT_MAX_US), STATS_LAT_OVER - 1);
    ck_assert_uint_eq(stats_lat_bound(STATS_LAT_OVER - 1), STATS_LAT_MAX_US);
    ck_assert_uint_eq(stats_lat_index(STATS_LAT_MAX_US + 1), STATS_LAT_OVER);
    ck_assert_uint_eq(stats_lat_index((uint64_t)1 << 40), STATS_LAT_OVER);
    ck_assert_uint_eq(stats_lat_index(UINT64_MAX), STATS_LAT_OVER);
    ck_assert_uint_eq(stats_lat_index(UINT64_MAX - 1), STATS_LAT_OVER);
    ck_assert_uint_eq(stats_lat_bound(STATS_LAT_OVER), UINT64_MAX);
    /* Bounds rise, each bucket at most 25% wider than the one below. */
    for (unsigned i = 1; i < STATS_LAT_OVER; i++) {
        uint64_t lo = stats_lat_bound(i - 1), hi = stats_lat_bound(i);
        ck_assert_uint_gt(hi, lo);
        ck_assert_uint_le(hi - lo, lo < 8 ? 1 : lo / 4);
        ck_assert_uint_eq(lat_index_checked(hi), i);
        ck_assert_uint_eq(lat_index_checked(lo + 1), i);
    }
    /* Every value up to 2^20, and a spread of larger ones. */
    for (uint64_t us = 0; us <= (1u << 20); us++)
        lat_index_checked(us);
    for (uint64_t us = 1u << 20; us < (STATS_LAT_MAX_US << 2); us += 977)
        lat_index_checked(us);
}
END_TEST

START_TEST(test_lat_quantile)
{
    static struct stats_counts c;

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(stats_lat_quantile(&c, 500), -1);
    ck_assert_uint_eq(stats_lat_count(&c), 0);
    c.lat[stats_lat_index(5)] = 1;
    for (unsigned q = 0; q <= 1000; q += 100)
        ck_assert_int_eq(stats_lat_quantile(&c, q), 4);
    /* 100 requests: 10 at 1 us, 40 at 8, 39 at 10, 9 at 2.5 ms, one at
     * 67 s, one above. */
    memset(&c, 0, sizeof(c));
    c.lat[0] = 10;
    c.lat[7] = 40;
    c.lat[8] = 39;
    c.lat[40] = 9;
    c.lat[STATS_LAT_OVER - 1] = 1;
    c.lat[STATS_LAT_OVER] = 1;
    ck_assert_uint_eq(stats_lat_count(&c), 100);
    ck_assert_int_eq(stats_lat_quantile(&c, 0), 0);
    ck_assert_int_eq(stats_lat_quantile(&c, 100), 0);  /* rank 10 */
    ck_assert_int_eq(stats_lat_quantile(&c, 101), 7);  /* rank 11 */
    ck_assert_int_eq(stats_lat_quantile(&c, 500), 7);  /* rank 50 */
    ck_assert_int_eq(stats_lat_quantile(&c, 501), 8);  /* rank 51 */
    ck_assert_int_eq(stats_lat_quantile(&c, 890), 8);
    ck_assert_int_eq(stats_lat_quantile(&c, 900), 40);
    ck_assert_int_eq(stats_lat_quantile(&c, 980), 40);
    ck_assert_int_eq(stats_lat_quantile(&c, 990), STATS_LAT_OVER - 1);
    ck_assert_int_eq(stats_lat_quantile(&c, 991), STATS_LAT_OVER);
    ck_assert_int_eq(stats_lat_quantile(&c, 1000), STATS_LAT_OVER);
    ck_assert_int_eq(stats_lat_quantile(&c, 5000), STATS_LAT_OVER);
    /* Counts near 2^64: the rank must not overflow. */
    memset(&c, 0, sizeof(c));
    c.lat[3] = UINT64_MAX / 2;
    c.lat[9] = UINT64_MAX / 2 - 1;
    ck_assert_int_eq(stats_lat_quantile(&c, 500), 3);
    ck_assert_int_eq(stats_lat_quantile(&c, 501), 9);
    ck_assert_int_eq(stats_lat_quantile(&c, 999), 9);
}
END_TEST

/* The count of the bucket holding us. */
static uint64_t lat_of(const struct stats_counts *c, uint64_t us)
{
    return c->lat[stats_lat_index(us)];
}

START_TEST(test_lat_fold_on_retire)
{
    struct stats_snapshot s;
    int b0 = stats_block_claim(sup.stats, 0, 100, 1);
    int b1 = stats_block_claim(sup.stats, 1, 101, 1);

    for (int k = 0; k < 10; k++)
        stats_lat_add(row(b0, 1), 150);
    stats_lat_add(row(b0, 1), 90000000); /* above the last bound */
    stats_lat_add(row(b1, 1), 150);
    stats_lat_add(row(b1, 0), 3);
    stats_lat_add(row(b1, STATS_ROW_OUTGOING), 2000);
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(stats_lat_count(&s.totals), 14);
    ck_assert_uint_eq(s.totals.lat_sum_us, 11 * 150 + 90000000 + 3 + 2000);
    ck_assert_uint_eq(lat_of(&s.totals, 150), 11);
    ck_assert_uint_eq(s.totals.lat[STATS_LAT_OVER], 1);
    ck_assert_uint_eq(stats_lat_count(&s.listeners[0].c), 1);
    ck_assert_uint_eq(stats_lat_count(&s.listeners[1].c), 12);
    ck_assert_uint_eq(stats_lat_count(&s.listeners[2].c), 1);
    ck_assert_uint_eq(lat_of(&s.listeners[2].c, 2000), 1);
    ck_assert_uint_eq(lat_of(series(&s, 1, 0), 150), 10);
    ck_assert_uint_eq(lat_of(series(&s, 1, 1), 150), 1);
    snapshot_free(&s);

    /* Worker 0 dies: its histogram stays in its slot; the next one adds. */
    stats_block_retire(sup.stats, b0);
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(stats_lat_count(&s.totals), 14);
    ck_assert_uint_eq(s.totals.lat_sum_us, 11 * 150 + 90000000 + 3 + 2000);
    ck_assert_uint_eq(lat_of(series(&s, 1, 0), 150), 10);
    snapshot_free(&s);
    int b2 = stats_block_claim(sup.stats, 0, 102, 1);
    ck_assert_uint_eq(row(b2, 1)->lat[stats_lat_index(150)], 0);
    stats_lat_add(row(b2, 1), 150);
    stats_block_retire(sup.stats, b1);
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    ck_assert_uint_eq(stats_lat_count(&s.totals), 15);
    ck_assert_uint_eq(lat_of(&s.totals, 150), 12);
    ck_assert_uint_eq(lat_of(series(&s, 1, 0), 150), 11);
    ck_assert_uint_eq(lat_of(series(&s, 1, 1), 150), 1);
    ck_assert_uint_eq(stats_lat_count(&s.listeners[2].c), 1);
    ck_assert_int_eq(stats_lat_quantile(&s.listeners[1].c, 500),
                     (int)stats_lat_index(150));
    snapshot_free(&s);
}
END_TEST

START_TEST(test_count_response)
{
    static struct worker w;
    struct weft_listener l = {.w = &w};
    struct stats_snapshot s;
    static const int statuses[] = {100, 199, 200, 204, 299, 301, 404,
                                   418, 500, 599, 0, 99, 600, 999, -200};
    int b = stats_block_claim(sup.stats, 0, 100, 1);

    l.stats = row(b, 1);
    w.out_stats = row(b, STATS_ROW_OUTGOING);
    worker_self = &w;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        weft_count_response(&l, statuses[i], 100 * i);
    weft_count_response(NULL, 502, 5000000);
    worker_self = NULL;
    ck_assert_int_eq(snapshot_take(&sup, &s), 0);
    const struct stats_counts *c = &s.listeners[1].c;
    ck_assert_uint_eq(c->v[STAT_requests], 15);
    ck_assert_uint_eq(c->v[STAT_responses_1xx], 2);
    ck_assert_uint_eq(c->v[STAT_responses_2xx], 3);
    ck_assert_uint_eq(c->v[STAT_responses_3xx], 1);
    ck_assert_uint_eq(c->v[STAT_responses_4xx], 2);
    ck_assert_uint_eq(c->v[STAT_responses_5xx], 2);
    ck_assert_uint_eq(stats_lat_count(c), 15);
    ck_assert_uint_eq(c->lat_sum_us, 100 * (14 * 15 / 2));
    ck_assert_uint_eq(c->lat[0], 1); /* 0 us */
    const struct stats_counts *o = &s.listeners[2].c;
    ck_assert_str_eq(s.listeners[2].name, "outgoing");
    ck_assert_uint_eq(o->v[STAT_requests], 1);
    ck_assert_uint_eq(o->v[STAT_responses_5xx], 1);
    ck_assert_uint_eq(lat_of(o, 5000000), 1);
    ck_assert_uint_eq(s.totals.v[STAT_requests], 16);
    ck_assert_uint_eq(s.listeners[0].c.v[STAT_requests], 0);
    snapshot_free(&s);
}
END_TEST

START_TEST(test_adopt_layout)
{
    int fd;
    struct stats_shm *a = stats_shm_create(&fd), *b;

    ck_assert_ptr_nonnull(a);
    b = stats_shm_adopt(fd);
    ck_assert_ptr_nonnull(b);
    munmap(b, sizeof(*b));
    /* Another layout version: refused, the region left alone. */
    a->h.layout_version = STATS_LAYOUT_VERSION - 1;
    errno = 0;
    ck_assert_ptr_null(stats_shm_adopt(fd));
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_uint_eq(a->h.layout_version, STATS_LAYOUT_VERSION - 1);
    a->h.layout_version = STATS_LAYOUT_VERSION;
    a->h.magic = 0;
    ck_assert_ptr_null(stats_shm_adopt(fd));
    ck_assert_int_eq(errno, EPROTO);
    a->h.magic = STATS_MAGIC;
    munmap(a, sizeof(*a));
    /* Another size, as an older layout has: refused before mapping. */
    ck_assert_int_eq(ftruncate(fd, sizeof(struct stats_shm) / 2), 0);
    errno = 0;
    ck_assert_ptr_null(stats_shm_adopt(fd));
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_int_eq(ftruncate(fd, 16), 0);
    ck_assert_ptr_null(stats_shm_adopt(fd));
    ck_assert_int_eq(errno, EPROTO);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("fold");
    TCase *lat = tcase_create("latency");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fold_on_retire);
    tcase_add_test(tc, test_blocks_reused);
    tcase_add_test(tc, test_header);
    tcase_add_test(tc, test_adopt_layout);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(lat, setup, teardown);
    tcase_add_test(lat, test_lat_index_bounds);
    tcase_add_test(lat, test_lat_quantile);
    tcase_add_test(lat, test_lat_fold_on_retire);
    tcase_add_test(lat, test_count_response);
    suite_add_tcase(s, lat);
    return check_run(s);
}
