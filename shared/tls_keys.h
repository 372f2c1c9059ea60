/*
 * The TLS session-ticket keys every worker shares, in shared memory, so
 * that a ticket one worker issued resumes on any other.
 *
 * The supervisor generates them (a memfd region made before the fork),
 * rotates them on a timer and at each reload: the current key encrypts
 * new tickets, the previous one still decrypts (and such a ticket is
 * renewed). Workers read both under a sequence lock: the supervisor's
 * rotation is rare and short, a reader copies 160 bytes and retries in
 * the unlikely case it raced one.
 */
#ifndef WEFT_SHARED_TLS_KEYS_H
#define WEFT_SHARED_TLS_KEYS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tls_ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

struct tls_keys {
    _Atomic uint64_t seq; /* odd while the supervisor writes */
    _Atomic uint64_t rotations;
    struct tls_ticket_key cur;
    struct tls_ticket_key prev;
};

/* Supervisor: map a fresh region with a random current key; NULL with
 * errno on failure. */
struct tls_keys *tls_keys_create(void);

/* Supervisor: the current key becomes the previous one, a new random
 * key the current one. -1 when no random bytes could be had. */
int tls_keys_rotate(struct tls_keys *k);

/* Any process: a consistent copy of both keys. */
void tls_keys_read(struct tls_keys *k, struct tls_ticket_key *cur,
                   struct tls_ticket_key *prev);

#endif
