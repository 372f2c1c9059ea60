/*
 * http: writing answers. Heads are assembled with memcpy, not printf:
 * this runs once per request.
 */
#include <string.h>
#include <time.h>

#include "protocols/http/server.h"

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

uint64_t http_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void http_put_u64(struct strbuf *out, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    strbuf_add(out, tmp + n, sizeof(tmp) - n);
}

#define ADD_LIT(out, s) strbuf_add((out), (s), sizeof(s) - 1)

void http_head_begin(struct strbuf *out, const struct http_worker *hw,
                     int status)
{
    const char *why = http_reason(status);

    ADD_LIT(out, "HTTP/1.1 ");
    http_put_u64(out, (uint64_t)status);
    strbuf_add(out, " ", 1);
    strbuf_puts(out, why);
    ADD_LIT(out, "\r\nServer: weft\r\nDate: ");
    strbuf_add(out, hw->date, HTTP_DATE_LEN);
    ADD_LIT(out, "\r\n");
}

bool http_closing(const struct http_conn *h)
{
    return !h->keep_alive || h->close_after || weft_worker_draining();
}

void http_head_end(struct strbuf *out, const struct http_conn *h,
                   long long len)
{
    if (len >= 0) {
        ADD_LIT(out, "Content-Length: ");
        http_put_u64(out, (uint64_t)len);
        ADD_LIT(out, "\r\n");
    }
    if (http_closing(h))
        ADD_LIT(out, "Connection: close\r\n\r\n");
    else if (h->http10)
        ADD_LIT(out, "Connection: keep-alive\r\n\r\n");
    else
        ADD_LIT(out, "\r\n");
}

void http_answer_status(struct http_conn *h, struct strbuf *out,
                        const struct http_worker *hw, int status,
                        const char *extra)
{
    const char *why = http_reason(status);
    size_t wlen = strlen(why);
    uint64_t n = 0;

    http_head_begin(out, hw, status);
    if (extra != NULL)
        strbuf_puts(out, extra);
    if (status == 304) {
        /* No body and no Content-Length: a 304 describes the file. */
        http_head_end(out, h, -1);
    } else {
        n = wlen + 5; /* "404 " + reason + "\n" */
        ADD_LIT(out, "Content-Type: text/plain\r\n");
        http_head_end(out, h, (long long)n);
        if (!h->head_only) {
            http_put_u64(out, (uint64_t)status);
            strbuf_add(out, " ", 1);
            strbuf_add(out, why, wlen);
            strbuf_add(out, "\n", 1);
        } else {
            n = 0;
        }
    }
    if (http_closing(h))
        h->close_after = true;
    http_done(h, status, n);
}

int http_emit(struct http_conn *h, const void *data, size_t len)
{
    struct http_worker *hw = weft_listener_data(h->l);

    if (hw->batch == h) {
        strbuf_add(&hw->out, data, len);
        return 0;
    }
    return weft_conn_write(h->c, data, len);
}

int http_flush(struct http_conn *h)
{
    struct http_worker *hw = weft_listener_data(h->l);
    int rc = 0;

    if (hw->batch == h && hw->out.len > 0) {
        rc = weft_conn_write(h->c, hw->out.data, hw->out.len);
        hw->out.len = 0;
    }
    return rc;
}

void http_done(struct http_conn *h, int status, uint64_t bytes)
{
    struct http_worker *hw = weft_listener_data(h->l);
    uint64_t now = http_now_us();

    weft_count_response(h->l, status,
                        now > h->started_us ? now - h->started_us : 0);
    if (hw->log != NULL)
        access_log_add(hw->log, h, hw->date_sec, status, bytes);
}
