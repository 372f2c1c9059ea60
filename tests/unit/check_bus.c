/*
 * Unit tests for the bus's shared memory (shared/bus.c): the region's
 * layout and ring addressing, endpoint claims, the lazy ring set-up, the
 * reset a new process does on its inbound rings, and the name registry:
 * claims, releases, names of a worker that is gone, the backward-shift
 * deletion under collisions, two processes racing for the same names,
 * and a holder that dies with the lock.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/bus.h"
#include "tests/unit/check_run.h"

#define RING 16384u

static struct bus bus;

static void setup(void)
{
    ck_assert_int_eq(bus_create(&bus, 2, RING), 0);
}

static void teardown(void)
{
    bus_destroy(&bus);
}

/* Take endpoint e as its worker would: LIVE, with our pid. */
static void go_live(int e)
{
    atomic_store(&bus.ep[e].pid, (int32_t)getpid());
    atomic_store(&bus.ep[e].state, BUS_EP_LIVE);
}

START_TEST(test_layout)
{
    ck_assert_uint_eq(bus.h->magic, BUS_MAGIC);
    ck_assert_uint_eq(bus.h->nendpoints, 4);
    ck_assert_uint_eq(bus.h->ring_size, RING);
    ck_assert_uint_eq(bus.h->ring_stride % 4096, 0);
    ck_assert_uint_ge(bus.h->ring_stride, ring_bytes(RING));
    ck_assert_uint_eq(bus.h->rings_off % 4096, 0);
    ck_assert_uint_eq(bus.h->size,
                      bus.h->rings_off + 16 * bus.h->ring_stride);
    /* Every ring distinct, aligned, inside the region. */
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            unsigned char *r = (unsigned char *)bus_ring(&bus, a, b);
            ck_assert_uint_eq((uintptr_t)r % 4096, 0);
            ck_assert_ptr_eq(r, bus.rings + (size_t)(a * 4 + b) *
                                                bus.h->ring_stride);
            ck_assert(r + ring_bytes(RING) <=
                      (unsigned char *)bus.h + bus.h->size);
        }
}
END_TEST

START_TEST(test_bad_sizes)
{
    struct bus b;

    ck_assert_int_eq(bus_create(&b, 2, RING + 1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(bus_create(&b, 2, BUS_RING_MIN / 2), -1);
    ck_assert_int_eq(bus_create(&b, 0, RING), -1);
    ck_assert_int_eq(bus_create(&b, BUS_MAX_ENDPOINTS, RING), -1);
    ck_assert_int_eq(b.fd, -1);
}
END_TEST

START_TEST(test_ring_auto)
{
    ck_assert_uint_eq(bus_ring_auto(1), BUS_RING_AUTO_MAX);
    ck_assert_uint_eq(bus_ring_auto(2), BUS_RING_AUTO_MAX);
    /* 64 MiB over 32 * 32 rings: 64 KiB each. */
    ck_assert_uint_eq(bus_ring_auto(32), 65536);
    ck_assert_uint_eq(bus_ring_auto(256), BUS_RING_MIN);
    for (int n = 1; n <= 256; n++) {
        size_t s = bus_ring_auto(n);
        ck_assert_uint_eq(s & (s - 1), 0);
    }
}
END_TEST

START_TEST(test_claim_release)
{
    int e[4];

    for (int i = 0; i < 4; i++) {
        e[i] = bus_ep_claim(&bus, i % 2, 1);
        ck_assert_int_eq(e[i], i); /* the lowest free one */
        ck_assert_uint_eq(atomic_load(&bus.ep[i].state), BUS_EP_STARTING);
        ck_assert_uint_eq(atomic_load(&bus.ep[i].incarnation), 1);
    }
    ck_assert_int_eq(bus_ep_free_count(&bus), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), -1);
    go_live(2);
    uint32_t epoch = atomic_load(&bus.h->epoch);
    bus_ep_release(&bus, 2);
    ck_assert_uint_eq(atomic_load(&bus.ep[2].state), BUS_EP_FREE);
    /* A live endpoint leaving is announced. */
    ck_assert_uint_gt(atomic_load(&bus.h->epoch), epoch);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 2), 2);
    ck_assert_uint_eq(atomic_load(&bus.ep[2].incarnation), 2);
    ck_assert_int_eq(bus.ep[2].slot, 1);
    ck_assert_uint_eq(bus.ep[2].generation, 2);
}
END_TEST

/* Rings are set up at an endpoint's first claim, and only then. */
START_TEST(test_rings_lazy)
{
    ck_assert_uint_eq(bus_ring(&bus, 0, 1)->size, 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    for (int x = 0; x < 4; x++) {
        ck_assert_uint_eq(bus_ring(&bus, 0, x)->size, RING);
        ck_assert_uint_eq(bus_ring(&bus, x, 0)->size, RING);
    }
    ck_assert_uint_eq(bus_ring(&bus, 1, 2)->size, 0);
    /* A message in 0 -> 1 survives 1's claim: nothing is re-initialised
     * under a producer. */
    bool wake = false;
    ck_assert_int_eq(ring_put(bus_ring(&bus, 0, 1), 7, "hi", 2, NULL, 0,
                              &wake), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 1);
    ck_assert_uint_eq(ring_used(bus_ring(&bus, 0, 1)), 16);
    ck_assert_uint_eq(bus_ring(&bus, 1, 2)->size, RING);
}
END_TEST

/* A replacement starts with empty inbound rings; producers go on. */
START_TEST(test_inbound_reset)
{
    bool wake = false;
    uint32_t kind;
    size_t len;

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 1), 1);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(ring_put(bus_ring(&bus, 0, 1), 1, "old", 3, NULL,
                                  0, &wake), 0);
    bus_ep_release(&bus, 1);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 2), 1);
    bus_inbound_reset(&bus, 1);
    ck_assert_ptr_null(ring_peek(bus_ring(&bus, 0, 1), &kind, &len));
    ck_assert_int_eq(ring_put(bus_ring(&bus, 0, 1), 2, "new", 3, NULL, 0,
                              &wake), 0);
    const char *p = ring_peek(bus_ring(&bus, 0, 1), &kind, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(kind, 2);
    ck_assert_mem_eq(p, "new", 3);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 1), 1);
    ck_assert_int_eq(bus_name_claim(&bus, 0, "chat/alice"), 0);
    ck_assert_int_eq(bus_name_claim(&bus, 1, "chat/alice"), -EEXIST);
    ck_assert_int_eq(bus_name_claim(&bus, 0, "chat/alice"), -EEXIST);
    ck_assert_int_eq(bus_name_owner(&bus, "chat/alice"), 0);
    ck_assert_int_eq(bus_name_owner(&bus, "chat/bob"), -1);
    ck_assert_int_eq(bus_name_release(&bus, 1, "chat/alice"), -ENOENT);
    ck_assert_int_eq(bus_name_release(&bus, 0, "chat/alice"), 0);
    ck_assert_int_eq(bus_name_release(&bus, 0, "chat/alice"), -ENOENT);
    ck_assert_int_eq(bus_name_claim(&bus, 1, "chat/alice"), 0);
    ck_assert_int_eq(bus_name_owner(&bus, "chat/alice"), 1);
    ck_assert_uint_eq(bus_names_used(&bus), 1);
    ck_assert_int_eq(bus_name_claim(&bus, 0, ""), -EINVAL);
    char longname[BUS_NAME_LEN + 1];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[BUS_NAME_LEN] = '\0';
    ck_assert_int_eq(bus_name_claim(&bus, 0, longname), -ENAMETOOLONG);
    longname[BUS_NAME_LEN - 1] = '\0'; /* 55 bytes: the longest */
    ck_assert_int_eq(bus_name_claim(&bus, 0, longname), 0);
    ck_assert_int_eq(bus_name_owner(&bus, longname), 0);
}
END_TEST

/* A worker that exits loses its names at once, and they are purged. */
START_TEST(test_names_of_the_dead)
{
    char name[32];

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 1), 1);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        ck_assert_int_eq(bus_name_claim(&bus, i % 2, name), 0);
    }
    bus_ep_release(&bus, 1);
    ck_assert_int_eq(bus_name_owner(&bus, "n1"), -1);
    ck_assert_int_eq(bus_name_owner(&bus, "n2"), 0);
    /* The same endpoint's next process does not inherit them. */
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 2), 1);
    ck_assert_int_eq(bus_name_owner(&bus, "n1"), -1);
    ck_assert_int_eq(bus_name_release(&bus, 1, "n1"), -ENOENT);
    ck_assert_int_eq(bus_name_claim(&bus, 0, "n3"), 0); /* stale: taken */
    ck_assert_uint_eq(bus_names_used(&bus), 100);
    bus_names_purge(&bus);
    ck_assert_uint_eq(bus_names_used(&bus), 51);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        ck_assert_int_eq(bus_name_owner(&bus, name),
                         i % 2 == 0 || i == 3 ? 0 : -1);
    }
}
END_TEST

/*
 * Many names in a table this size collide in long probe runs; deleting
 * every other one (backward shift) must leave every survivor findable.
 */
START_TEST(test_names_delete_runs)
{
    enum { N = 20000 };
    char name[32];

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "user-%d", i);
        ck_assert_int_eq(bus_name_claim(&bus, 0, name), 0);
    }
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "user-%d", i);
        ck_assert_int_eq(bus_name_release(&bus, 0, name), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "user-%d", i);
        if (bus_name_owner(&bus, name) != (i % 2 ? 0 : -1))
            ck_abort_msg("%s: owner %d", name, bus_name_owner(&bus, name));
    }
    ck_assert_uint_eq(bus_names_used(&bus), N / 2);
}
END_TEST

START_TEST(test_names_full)
{
    char name[32];
    int i;

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    for (i = 0; i < BUS_NAMES; i++) {
        snprintf(name, sizeof(name), "%d", i);
        int rc = bus_name_claim(&bus, 0, name);
        if (rc == -ENOSPC)
            break;
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_int_eq(i, BUS_NAMES / 4 * 3);
    /* A name already there is still answered. */
    ck_assert_int_eq(bus_name_claim(&bus, 0, "0"), -EEXIST);
}
END_TEST

/*
 * Two processes claim the same 2000 names at once: each name ends up
 * with exactly one of them, and each knows which.
 */
START_TEST(test_names_race)
{
    enum { N = 2000 };
    char name[32];
    int pipefd[2];
    pid_t pid;

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    ck_assert_int_eq(bus_ep_claim(&bus, 1, 1), 1);
    ck_assert_int_eq(pipe(pipefd), 0);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        int won = 0;
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof(name), "race-%d", i);
            won += bus_name_claim(&bus, 1, name) == 0;
        }
        if (write(pipefd[1], &won, sizeof(won)) != sizeof(won))
            _exit(2);
        _exit(0);
    }
    int won = 0, child_won = 0, status;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "race-%d", i);
        won += bus_name_claim(&bus, 0, name) == 0;
    }
    ck_assert_int_eq(read(pipefd[0], &child_won, sizeof(child_won)),
                     sizeof(child_won));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(won + child_won, N);
    int mine = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "race-%d", i);
        int o = bus_name_owner(&bus, name);
        ck_assert(o == 0 || o == 1);
        mine += o == 0;
    }
    ck_assert_int_eq(mine, won);
    ck_assert_uint_eq(bus_names_used(&bus), N);
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

/* A process that dies holding the lock: the next one recovers it. */
START_TEST(test_names_owner_dead)
{
    pid_t pid;
    int status;

    ck_assert_int_eq(bus_ep_claim(&bus, 0, 1), 0);
    ck_assert_int_eq(bus_name_claim(&bus, 0, "keep"), 0);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        pthread_mutex_lock(&bus.h->names_lock);
        _exit(0); /* with the lock held */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(bus_name_owner(&bus, "keep"), 0);
    ck_assert_int_eq(bus_name_claim(&bus, 0, "more"), 0);
    ck_assert_uint_eq(bus_names_used(&bus), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("region");
    TCase *tn = tcase_create("names");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_ring_auto);
    tcase_add_test(tc, test_claim_release);
    tcase_add_test(tc, test_rings_lazy);
    tcase_add_test(tc, test_inbound_reset);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tn, setup, teardown);
    tcase_add_test(tn, test_names);
    tcase_add_test(tn, test_names_of_the_dead);
    tcase_add_test(tn, test_names_delete_runs);
    tcase_add_test(tn, test_names_full);
    tcase_add_test(tn, test_names_race);
    tcase_add_test(tn, test_names_owner_dead);
    suite_add_tcase(s, tn);
    return check_run(s);
}
