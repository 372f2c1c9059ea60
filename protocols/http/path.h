/*
 * Request paths to file names under a document root. Pure: no I/O, no
 * allocation; the caller gives the output buffer.
 */
#ifndef WEFT_PROTOCOLS_HTTP_PATH_H
#define WEFT_PROTOCOLS_HTTP_PATH_H

#include <stddef.h>

/*
 * Decode and normalise the path part of a request-target (no query) into
 * out[0..cap), NUL-terminated, always starting with '/':
 *   - %XX escapes are decoded (either case of hex digit); a '%' not
 *     followed by two hex digits is an error;
 *   - empty segments ("//") collapse to one '/';
 *   - "." segments are dropped and ".." removes the previous segment,
 *     after decoding, so "%2e%2e" and ".%2E" are ".." too;
 *   - a trailing '/' is kept ("/a/" stays "/a/", "/a/." gives "/a/");
 *   - an encoded slash "%2f" is decoded like any byte, and segments are
 *     cut AFTER decoding: "/a%2fb" is "/a/b", "/a%2f..%2f..%2fb" is
 *     "/a/../../b" and so 403. A file name never contains '/', so this
 *     loses nothing, and no spelling of ".." can escape the root;
 *   - the output is decoded, so it is only a fixed point of this
 *     function when it holds no '%' ("/%2525" gives "/%25").
 * The rules for bytes apply to literal bytes as much as decoded ones.
 * The first problem in the input decides the error; -414 only when the
 * path is otherwise valid, and only if the result itself (not some step
 * on the way, "/<long name>/.." is "/") does not fit.
 * Returns the length of out (>= 1) or:
 *   -400 the path does not start with a literal '/' ("%2f" will not
 *        do), a bad escape, or a decoded
 *        byte that is NUL or a control character (< 0x20, 0x7f), or a
 *        decoded '\\';
 *   -403 a ".." that would climb above the root;
 *   -414 the result does not fit in cap - 1 bytes.
 * On an error, out[0..cap) holds nothing of use.
 */
long http_path_normalise(const char *in, size_t len, char *out, size_t cap);

#endif
