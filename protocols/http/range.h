/*
 * The Range request header (RFC 9110 14.2), single byte ranges only.
 */
#ifndef WEFT_PROTOCOLS_HTTP_RANGE_H
#define WEFT_PROTOCOLS_HTTP_RANGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a Range value against a representation of size bytes. Returns:
 *    1 one satisfiable range: bytes *first..*last inclusive, clipped to
 *      the size ("bytes=0-" of an empty file is unsatisfiable);
 *    0 ignore the header and send the whole (a unit other than "bytes",
 *      more than one range, or a syntax error, as RFC 9110 allows);
 *   -416 a well-formed single range none of whose bytes exist
 *      (first >= size, or a suffix "-0").
 * Accepted forms: "bytes=A-B", "bytes=A-", "bytes=-N"; the unit name
 * in any case ("Bytes="). Whitespace only at the two ends of v: the
 * grammar has none inside and browsers send none, so "bytes = 0-1" is 0.
 * A range with B < A is a syntax error (0). Numbers too big for uint64_t
 * saturate at UINT64_MAX, never overflow: a huge A is then past the end
 * (-416), a huge B or N is clipped to the size like any B or N past it.
 * On 1, first <= last < size.
 */
int http_range_parse(const char *v, size_t len, uint64_t size,
                     uint64_t *first, uint64_t *last);

#endif
