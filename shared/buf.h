/*
 * Buffers for connections, allocated only while they hold bytes so that an
 * idle connection owns none.
 *
 * struct bytes: one contiguous region, for input a parser has not consumed.
 * struct outq: a queue of chunks, for output the kernel has not accepted;
 * drained with writev.
 */
#ifndef WEFT_SHARED_BUF_H
#define WEFT_SHARED_BUF_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct bytes {
    char *data;
    size_t len;
    size_t cap;
};

/* Append len bytes; 0, or -1 when memory is short (b is unchanged). */
int bytes_append(struct bytes *b, const void *data, size_t len);
/* Drop the first n bytes (n <= len); frees the region once empty. */
void bytes_consume(struct bytes *b, size_t n);
void bytes_free(struct bytes *b);

struct outq_chunk;

struct outq {
    struct outq_chunk *head;
    struct outq_chunk *tail;
    size_t len; /* bytes queued in all chunks */
};

/* Smallest chunk allocated: small writes share one. */
#define OUTQ_CHUNK_MIN 4096

/* Copy len bytes to the tail; 0, or -1 when memory is short. */
int outq_append(struct outq *q, const void *data, size_t len);
/*
 * Queue len bytes of file fd from offset off; the queue owns fd from now
 * on and closes it once sent or cleared. 0, or -1 (fd not taken).
 */
int outq_append_file(struct outq *q, int fd, off_t off, size_t len);
/*
 * Fill up to max iovecs with the queued memory bytes in order, stopping at
 * the first file segment; returns the count (0 when a file segment or
 * nothing is first).
 */
int outq_iov(const struct outq *q, struct iovec *iov, int max);
/*
 * When the queue starts with a file segment: its fd, offset and length,
 * returning 1; otherwise 0.
 */
int outq_head_file(const struct outq *q, int *fd, off_t *off, size_t *len);
/* Drop the first n bytes (n <= len), freeing emptied chunks. */
void outq_consume(struct outq *q, size_t n);
void outq_clear(struct outq *q);

#endif
