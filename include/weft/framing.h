/*
 * weft: framing helpers for data_received.
 *
 * Pure functions of (data, len): they find the complete frames at the
 * start of data, hand each to a callback, and return how many bytes they
 * consumed. data_received returns that count, weft keeps the partial frame
 * that is left and presents it again with the next bytes, so the result is
 * the same however the stream is split or coalesced across reads, and no
 * helper keeps a buffer of its own.
 *
 *     static int on_line(void *arg, const char *line, size_t len);
 *
 *     static size_t my_data(struct weft_conn *c, const char *d, size_t n)
 *     {
 *         static const struct weft_lines lines = { "\n", 1, 1024 };
 *         long used = weft_lines_parse(&lines, d, n, on_line, c);
 *         if (used < 0) {                 // WEFT_FRAME_TOO_LONG
 *             weft_conn_write(c, "line too long\n", 14);
 *             weft_conn_close(c);
 *             return n;
 *         }
 *         return (size_t)used;
 *     }
 */
#ifndef WEFT_FRAMING_H
#define WEFT_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returned instead of a count when a frame is longer than allowed. */
#define WEFT_FRAME_TOO_LONG (-1L)
/* Returned for bad options (delimiter of 0 or more than 8 bytes, a size
 * other than 1, 2 or 4, a NULL options pointer or callback). */
#define WEFT_FRAME_BAD_OPTIONS (-2L)

/*
 * Called for each complete frame. Return 0 to go on, non-zero to stop
 * parsing after this frame (the protocol paused or closed the connection);
 * the frames left are presented again on the next call.
 */
typedef int (*weft_frame_fn)(void *arg, const char *frame, size_t len);

/* Lines ended by a delimiter of 1 to 8 bytes ("\n", "\r\n", ...). */
struct weft_lines {
    const char *delim;
    size_t delim_len;
    size_t max_line; /* longest line without its delimiter; 0: no limit */
};

/*
 * Hand each complete line of data (without its delimiter) to fn. Returns
 * the bytes consumed (complete lines with their delimiters), or
 * WEFT_FRAME_TOO_LONG when a line exceeds max_line; the lines before it
 * have been handed over by then. A partial line is too long as soon as no
 * delimiter can start within its first max_line bytes, so "abc\r" with
 * max_line 3 and "\r\n" still waits for its "\n".
 */
long weft_lines_parse(const struct weft_lines *o, const char *data,
                      size_t len, weft_frame_fn fn, void *arg);

/* Messages after a big-endian length of 1, 2 or 4 bytes. */
struct weft_prefixed {
    unsigned size;  /* bytes of the length: 1, 2 or 4 */
    uint32_t max;   /* largest message body; 0: no limit beyond the size */
};

/*
 * Hand each complete message body of data to fn. Returns the bytes
 * consumed, or WEFT_FRAME_TOO_LONG as soon as a length above max is read.
 */
long weft_prefixed_parse(const struct weft_prefixed *o, const char *data,
                         size_t len, weft_frame_fn fn, void *arg);

/*
 * Write the length prefix for a body of len bytes into out (o->size
 * bytes). Returns o->size, or -1 when len exceeds max or what size bytes
 * can hold (the smaller of the two applies), or size is not 1, 2 or 4.
 */
int weft_prefixed_header(const struct weft_prefixed *o, size_t len,
                         unsigned char out[4]);

#ifdef __cplusplus
}
#endif

#endif
