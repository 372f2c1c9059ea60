/*
 * A growable string for building replies (JSON, Prometheus text).
 *
 * Errors are sticky: when memory runs out, `failed` is set and every later
 * append does nothing, so a renderer appends freely and checks once at the
 * end. Whenever data is not NULL it is NUL-terminated (data[len] == '\0'),
 * so a finished buffer can be used as a C string.
 *
 * A zeroed struct is an empty buffer; strbuf_free() returns it to that.
 */
#ifndef WEFT_SHARED_STRBUF_H
#define WEFT_SHARED_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct strbuf {
    char *data;
    size_t len;
    size_t cap;  /* bytes allocated, the terminating NUL included */
    bool failed; /* memory ran out: contents are incomplete */
};

/*
 * Append len bytes of data (which may hold NULs). Not "strbuf_append":
 * libconfig exports a function of that name, and weftd's own would
 * interpose on it (a definition in the executable wins over the
 * library's), breaking every string libconfig reads.
 */
void strbuf_add_slow(struct strbuf *b, const void *data, size_t len);

static inline void strbuf_add(struct strbuf *b, const void *data, size_t len)
{
    /* The common case, room enough: no call (HTTP heads are built here). */
    if (len != 0 && len < b->cap - b->len && !b->failed) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return;
    }
    strbuf_add_slow(b, data, len);
}

/* Append a NUL-terminated string. */
void strbuf_puts(struct strbuf *b, const char *s);

/* Append printf-style formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Append s as a JSON string literal, quotes included: '"', '\\' and
 * control characters are escaped; bytes >= 0x80 pass through unchanged
 * (the caller vouches for UTF-8). A NULL s is written as "".
 */
void strbuf_json_string(struct strbuf *b, const char *s);

/* Release the memory; b is empty (and not failed) afterwards. */
void strbuf_free(struct strbuf *b);

#endif
