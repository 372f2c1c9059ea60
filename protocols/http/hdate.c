/*
 * HTTP dates (RFC 9110 5.6.7) without the C library's time functions:
 * no locale, no time zone, no static struct tm. The calendar arithmetic
 * counts days in 400-year eras (146097 days each) that start on March 1,
 * so that February, the one month of varying length, ends each year.
 */
#include "protocols/http/hdate.h"

#include <stdint.h>
#include <string.h>

#define DAY_SECS 86400
#define DATE_MIN ((int64_t)-62167219200)     /* 0000-01-01 00:00:00 */
#define DATE_MAX ((int64_t)253402300799)     /* 9999-12-31 23:59:59 */
#define EPOCH_SHIFT 719468                   /* 0000-03-01 to 1970-01-01 */

static const char day_names[7][4] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char day_names_long[7][10] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday"
};
static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* a / b rounded down, for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2)
        y--;                                /* Jan, Feb: end of last year */
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;            /* 0..399 */
    int64_t mp = m > 2 ? m - 3 : m + 9;     /* 0 = March */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - EPOCH_SHIFT;
}

/* The date of day z counted from 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += EPOCH_SHIFT;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;         /* 0..146096 */
    /* Leap days taken out so that each year of the era is 365 days. */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = era * 400 + yoe + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);

    return days[m - 1] + (m == 2 && leap);
}

/* v as n decimal digits into p. */
static void put_digits(char *p, int64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * Times outside years 0000..9999 are clamped to that range: the format
 * has four digits of year, and no file was written in either.
 */
void http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
    int64_t s = t < DATE_MIN ? DATE_MIN : t > DATE_MAX ? DATE_MAX : t;
    int64_t days = floor_div(s, DAY_SECS);
    int64_t secs = s - days * DAY_SECS;
    int64_t y;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    /* 1970-01-01 was a Thursday (4); days % 7 may be negative. */
    memcpy(out, day_names[(days % 7 + 11) % 7], 3);
    memcpy(out + 3, ", ", 2);
    put_digits(out + 5, d, 2);
    out[7] = ' ';
    memcpy(out + 8, month_names[m - 1], 3);
    out[11] = ' ';
    put_digits(out + 12, y, 4);
    out[16] = ' ';
    put_digits(out + 17, secs / 3600, 2);
    out[19] = ':';
    put_digits(out + 20, secs / 60 % 60, 2);
    out[22] = ':';
    put_digits(out + 23, secs % 60, 2);
    memcpy(out + 25, " GMT", 5);
}

/* The fields of a date as read, before any range check. */
struct hdate {
    int64_t year;
    int month;                  /* 1..12, 0 unknown name */
    int day;
    int hour, min, sec;
};

/* n decimal digits at p, or -1. */
static int64_t get_digits(const char *p, int n)
{
    int64_t v = 0;

    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* The month named by the three bytes at p (case matters), or 0. */
static int month_find(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, month_names[i], 3) == 0)
            return i + 1;
    return 0;
}

/* The three bytes at p are a day name. */
static int day_name_ok(const char *p)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(p, day_names[i], 3) == 0)
            return 1;
    return 0;
}

/* "HH:MM:SS" at p into h. */
static int time_get(const char *p, struct hdate *h)
{
    if (p[2] != ':' || p[5] != ':')
        return -1;
    h->hour = (int)get_digits(p, 2);
    h->min = (int)get_digits(p + 3, 2);
    h->sec = (int)get_digits(p + 6, 2);
    return h->hour < 0 || h->min < 0 || h->sec < 0 ? -1 : 0;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
static int imf_get(const char *p, size_t len, struct hdate *h)
{
    if (len != HTTP_DATE_LEN || !day_name_ok(p) ||
        memcmp(p + 3, ", ", 2) != 0 ||
        p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
        memcmp(p + 25, " GMT", 4) != 0)
        return -1;
    h->day = (int)get_digits(p + 5, 2);
    h->month = month_find(p + 8);
    h->year = get_digits(p + 12, 4);
    return time_get(p + 17, h);
}

/* asctime: "Sun Nov  6 08:49:37 1994", the day "06" or " 6". */
static int asctime_get(const char *p, size_t len, struct hdate *h)
{
    if (len != 24 || !day_name_ok(p) || p[3] != ' ' || p[7] != ' ' ||
        p[10] != ' ' || p[19] != ' ')
        return -1;
    h->month = month_find(p + 4);
    if (p[8] == ' ')
        h->day = (int)get_digits(p + 9, 1);
    else
        h->day = (int)get_digits(p + 8, 2);
    h->year = get_digits(p + 20, 4);
    return time_get(p + 11, h);
}

/*
 * The year now, for the two-digit years of RFC 850. This is the one
 * place the parser is not a pure function of its input.
 */
static int64_t year_now(void)
{
    int64_t y;
    int m, d;

    civil_from_days(floor_div((int64_t)time(NULL), DAY_SECS), &y, &m, &d);
    return y;
}

/*
 * RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year is the
 * one in the 100 years ending 50 years from now: RFC 9110 wants a year
 * more than 50 years ahead taken as the century before.
 */
static int rfc850_get(const char *p, size_t len, struct hdate *h)
{
    const char *comma = memchr(p, ',', len < 10 ? len : 10);
    size_t n = comma != NULL ? (size_t)(comma - p) : 0;
    int i;

    for (i = 0; i < 7; i++)
        if (n == strlen(day_names_long[i]) &&
            memcmp(p, day_names_long[i], n) == 0)
            break;
    if (i == 7 || len != n + 24)
        return -1;
    p += n;
    if (memcmp(p, ", ", 2) != 0 || p[4] != '-' || p[8] != '-' ||
        p[11] != ' ' || memcmp(p + 20, " GMT", 4) != 0)
        return -1;
    h->day = (int)get_digits(p + 2, 2);
    h->month = month_find(p + 5);
    int64_t yy = get_digits(p + 9, 2);
    if (yy < 0)
        return -1;
    int64_t top = year_now() + 50;
    h->year = top - ((top - yy) % 100 + 100) % 100;
    return time_get(p + 12, h);
}

/*
 * The day name is read but not checked against the date: a sender that
 * gets it wrong still means the date, and the date is what we compare.
 */
int http_date_parse(const char *v, size_t len, time_t *t)
{
    struct hdate h;
    int r;

    if (len < 4)
        return -1;
    if (v[3] == ',')
        r = imf_get(v, len, &h);
    else if (v[3] == ' ')
        r = asctime_get(v, len, &h);
    else
        r = rfc850_get(v, len, &h);
    if (r == -1 || h.year < 0 || h.year > 9999 || h.month == 0 ||
        h.day < 1 || h.day > days_in_month(h.year, h.month) ||
        h.hour > 23 || h.min > 59 || h.sec > 59)
        return -1;
    int64_t s = days_from_civil(h.year, h.month, h.day) * DAY_SECS +
                h.hour * 3600 + h.min * 60 + h.sec;
    if ((int64_t)(time_t)s != s)
        return -1;
    *t = (time_t)s;
    return 0;
}
