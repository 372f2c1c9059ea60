#include "shared/tls_keys.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/rand.h>

static int key_new(struct tls_ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, (int)sizeof(*k)) == 1 ? 0 : -1;
}

struct tls_keys *tls_keys_create(void)
{
    struct tls_keys *k = mmap(NULL, sizeof(*k), PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (k == MAP_FAILED)
        return NULL;
    /* Both start random: a "previous" key nobody ever used is harmless. */
    if (key_new(&k->cur) == -1 || key_new(&k->prev) == -1) {
        munmap(k, sizeof(*k));
        errno = EIO;
        return NULL;
    }
    return k;
}

int tls_keys_rotate(struct tls_keys *k)
{
    struct tls_ticket_key fresh;

    if (key_new(&fresh) == -1)
        return -1;
    atomic_fetch_add_explicit(&k->seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    k->prev = k->cur;
    k->cur = fresh;
    atomic_fetch_add_explicit(&k->seq, 1, memory_order_release);
    atomic_fetch_add_explicit(&k->rotations, 1, memory_order_relaxed);
    memset(&fresh, 0, sizeof(fresh));
    return 0;
}

void tls_keys_read(struct tls_keys *k, struct tls_ticket_key *cur,
                   struct tls_ticket_key *prev)
{
    uint64_t s1, s2;

    do {
        while ((s1 = atomic_load_explicit(&k->seq, memory_order_acquire)) & 1)
            ;
        *cur = k->cur;
        *prev = k->prev;
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&k->seq, memory_order_relaxed);
    } while (s1 != s2);
}
