/* Small helpers used by every part of weft. */
#ifndef WEFT_SHARED_UTIL_H
#define WEFT_SHARED_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#define countof(a) (sizeof(a) / sizeof((a)[0]))

/* The struct of type `type` whose member `member` is at `ptr`. */
#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Arguments are evaluated twice: pass plain values, never calls. */
#define WEFT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WEFT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Close fd on a failure path without losing the errno being reported. */
static inline void close_keep_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
}

#endif
