/*
 * Unit tests for the stats region (shared/stats.c) and snapshots
 * (supervisor/stats_read.c): a retired worker's counts are folded into its
 * slot, so no total goes backwards; gauges leave with their process.
 */
#include <check.h>
#include <string.h>
#include <sys/mman.h>

#include "supervisor/stats_read.h"
#include "tests/unit/check_run.h"

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

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("fold");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fold_on_retire);
    tcase_add_test(tc, test_blocks_reused);
    tcase_add_test(tc, test_header);
    suite_add_tcase(s, tc);
    return check_run(s);
}
