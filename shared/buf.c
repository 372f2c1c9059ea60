#include "shared/buf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/util.h"

int bytes_append(struct bytes *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (b->len + len < b->len)
        return -1;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void bytes_consume(struct bytes *b, size_t n)
{
    if (n >= b->len) {
        bytes_free(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void bytes_free(struct bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/*
 * A chunk holds bytes in data[start..end), or, when fd != -1, the file
 * range [off + start, off + end) of fd.
 */
struct outq_chunk {
    struct outq_chunk *next;
    size_t start; /* first unsent byte */
    size_t end;   /* one past the last queued byte */
    size_t cap;
    int fd;
    off_t off;
    char data[];
};

static struct outq_chunk *chunk_new(size_t want)
{
    size_t cap = WEFT_MAX(want, OUTQ_CHUNK_MIN - sizeof(struct outq_chunk));
    struct outq_chunk *ch = malloc(sizeof(*ch) + cap);

    if (ch == NULL)
        return NULL;
    ch->next = NULL;
    ch->start = 0;
    ch->end = 0;
    ch->cap = cap;
    ch->fd = -1;
    ch->off = 0;
    return ch;
}

static void chunk_link(struct outq *q, struct outq_chunk *ch)
{
    if (q->tail != NULL)
        q->tail->next = ch;
    else
        q->head = ch;
    q->tail = ch;
}

static void chunk_free(struct outq_chunk *ch)
{
    if (ch->fd != -1)
        close(ch->fd);
    free(ch);
}

int outq_append(struct outq *q, const void *data, size_t len)
{
    const char *p = data;
    struct outq_chunk *t = q->tail;

    if (len == 0)
        return 0;
    /* Fill what is left of the tail first, then one chunk for the rest. */
    size_t room = t && t->fd == -1 ? t->cap - t->end : 0;
    size_t first = WEFT_MIN(room, len);
    struct outq_chunk *ch = NULL;
    if (len > first && (ch = chunk_new(len - first)) == NULL)
        return -1;
    if (first > 0) {
        memcpy(t->data + t->end, p, first);
        t->end += first;
    }
    if (ch != NULL) {
        memcpy(ch->data, p + first, len - first);
        ch->end = len - first;
        chunk_link(q, ch);
    }
    q->len += len;
    return 0;
}

int outq_append_file(struct outq *q, int fd, off_t off, size_t len)
{
    struct outq_chunk *ch = malloc(sizeof(*ch));

    if (ch == NULL)
        return -1;
    ch->next = NULL;
    ch->start = 0;
    ch->end = len;
    ch->cap = 0;
    ch->fd = fd;
    ch->off = off;
    chunk_link(q, ch);
    q->len += len;
    return 0;
}

int outq_head_file(const struct outq *q, int *fd, off_t *off, size_t *len)
{
    const struct outq_chunk *ch = q->head;

    if (ch == NULL || ch->fd == -1)
        return 0;
    *fd = ch->fd;
    *off = ch->off + (off_t)ch->start;
    *len = ch->end - ch->start;
    return 1;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max)
{
    int n = 0;

    for (struct outq_chunk *ch = q->head; ch != NULL && ch->fd == -1 && n < max;
         ch = ch->next) {
        iov[n].iov_base = ch->data + ch->start;
        iov[n].iov_len = ch->end - ch->start;
        n++;
    }
    return n;
}

void outq_consume(struct outq *q, size_t n)
{
    while (n > 0 && q->head != NULL) {
        struct outq_chunk *ch = q->head;
        size_t avail = ch->end - ch->start;
        if (n < avail) {
            ch->start += n;
            q->len -= n;
            return;
        }
        n -= avail;
        q->len -= avail;
        q->head = ch->next;
        chunk_free(ch);
    }
    if (q->head == NULL)
        q->tail = NULL;
}

void outq_clear(struct outq *q)
{
    while (q->head != NULL) {
        struct outq_chunk *ch = q->head;
        q->head = ch->next;
        chunk_free(ch);
    }
    q->tail = NULL;
    q->len = 0;
}
