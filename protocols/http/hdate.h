/*
 * HTTP dates (RFC 9110 5.6.7).
 */
#ifndef WEFT_PROTOCOLS_HTTP_HDATE_H
#define WEFT_PROTOCOLS_HTTP_HDATE_H

#include <stddef.h>
#include <time.h>

/* Length of an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define HTTP_DATE_LEN 29

/*
 * Write t as an IMF-fixdate into out (HTTP_DATE_LEN + 1 bytes with the
 * NUL). No locale, no strftime. A t before 0000-01-01 or after
 * 9999-12-31 23:59:59 is written as that limit (the year has 4 digits).
 */
void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/*
 * Parse an HTTP date in any of the three forms a recipient must accept
 * (IMF-fixdate, obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", and
 * asctime "Sun Nov  6 08:49:37 1994"). Returns 0 and sets *t (UTC), or
 * -1 when v is not a valid date (then If-Modified-Since is ignored).
 * Exactly the grammar: names in their case, no extra spaces, nothing
 * after the date. Fields must be in range: day 1 to the month's length
 * (leap years counted), hour 0-23, minute and second 0-59 (no leap
 * second), year 0000-9999. The day name must be one, but a day name that
 * does not match the date is tolerated: the date is what counts. An
 * RFC 850 two-digit year is taken in the 100 years ending 50 years from
 * now (RFC 9110: one more than 50 years ahead is the century before),
 * so for that form alone the answer depends on the clock.
 */
int http_date_parse(const char *v, size_t len, time_t *t);

#endif
