#include "shared/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First allocation: a stats reply of a small server fits in a few. */
#define STRBUF_MIN 256

/*
 * Make room for n more bytes and the terminating NUL. Returns 0, or -1
 * when b has failed already or fails now (size overflow, no memory); the
 * contents are left as they were.
 */
static int strbuf_reserve(struct strbuf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n < b->cap - b->len)
        return 0;
    if (n >= SIZE_MAX / 2 - b->len)
        goto fail;
    size_t need = b->len + n + 1;
    size_t cap = b->cap ? b->cap : STRBUF_MIN;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->failed = true;
    return -1;
}

void strbuf_add_slow(struct strbuf *b, const void *data, size_t len)
{
    if (len == 0 || strbuf_reserve(b, len) == -1)
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void strbuf_puts(struct strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

/*
 * Format straight into the free room; only when the text does not fit,
 * grow to its exact size and format again.
 */
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;

    if (b->failed)
        return;
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        goto fail;
    if ((size_t)n >= room) {
        if (strbuf_reserve(b, (size_t)n) == -1)
            goto fail;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return;
fail:
    b->failed = true;
    /* A truncated first attempt overwrote the terminator. */
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

/* Append the escape sequence of c, one of '"', '\\' or a control byte. */
static void strbuf_json_escape(struct strbuf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', (char)c, '0', '0', hex[c >> 4], hex[c & 15]};
    size_t n = 2;

    if (c == '\n')
        e[1] = 'n';
    else if (c == '\t')
        e[1] = 't';
    else if (c != '"' && c != '\\') {
        e[1] = 'u';
        n = 6;
    }
    strbuf_add(b, e, n);
}

/* Copy runs of plain bytes in one append each; escape the rest. */
void strbuf_json_string(struct strbuf *b, const char *s)
{
    const char *p, *run;

    if (s == NULL)
        s = "";
    strbuf_add(b, "\"", 1);
    for (p = run = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        strbuf_add(b, run, (size_t)(p - run));
        strbuf_json_escape(b, c);
        run = p + 1;
    }
    strbuf_add(b, run, (size_t)(p - run));
    strbuf_add(b, "\"", 1);
}

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}
