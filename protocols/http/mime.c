/*
 * Content types of static files by extension: a sorted table searched
 * with bsearch on the lower-cased extension. No allocation, no state.
 */
#include "protocols/http/mime.h"

#include <stdlib.h>
#include <string.h>

#define MIME_DEFAULT "application/octet-stream"
#define MIME_EXT_MAX 8                  /* longer than any in the table */
#define UTF8 "; charset=utf-8"

struct mime {
    const char *ext;                    /* lower case */
    const char *type;
};

/* Sorted by ext in strcmp order: bsearch depends on it. */
static const struct mime mime_table[] = {
    { "avif", "image/avif" },
    { "css", "text/css" UTF8 },
    { "csv", "text/csv" UTF8 },
    { "gif", "image/gif" },
    { "gz", "application/gzip" },
    { "htm", "text/html" UTF8 },
    { "html", "text/html" UTF8 },
    { "ico", "image/x-icon" },
    { "jpeg", "image/jpeg" },
    { "jpg", "image/jpeg" },
    { "js", "text/javascript" UTF8 },
    { "json", "application/json" },
    { "map", "application/json" },
    { "md", "text/markdown" UTF8 },
    { "mjs", "text/javascript" UTF8 },
    { "mp3", "audio/mpeg" },
    { "mp4", "video/mp4" },
    { "ogg", "audio/ogg" },
    { "otf", "font/otf" },
    { "pdf", "application/pdf" },
    { "png", "image/png" },
    { "svg", "image/svg+xml" },
    { "tar", "application/x-tar" },
    { "ttf", "font/ttf" },
    { "txt", "text/plain" UTF8 },
    { "wasm", "application/wasm" },
    { "wav", "audio/wav" },
    { "webm", "video/webm" },
    { "webp", "image/webp" },
    { "woff", "font/woff" },
    { "woff2", "font/woff2" },
    { "xml", "application/xml" },
    { "zip", "application/zip" },
};

static int mime_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct mime *)elem)->ext);
}

/*
 * The extension is what follows the last '.' of the last path segment,
 * unless that '.' starts the segment: ".bashrc" is a hidden file with no
 * extension. Only letters and digits can match, so a NUL inside the name
 * cannot cut the comparison short.
 */
const char *http_mime_type(const char *name, size_t len)
{
    char ext[MIME_EXT_MAX + 1];
    size_t dot = len;

    for (size_t i = len; i > 0 && name[i - 1] != '/'; i--) {
        if (name[i - 1] == '.') {
            dot = i - 1;
            break;
        }
    }
    if (dot == len || dot == 0 || name[dot - 1] == '/')
        return MIME_DEFAULT;
    size_t n = len - dot - 1;
    if (n == 0 || n > MIME_EXT_MAX)
        return MIME_DEFAULT;
    for (size_t i = 0; i < n; i++) {
        char c = name[dot + 1 + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return MIME_DEFAULT;
        ext[i] = c;
    }
    ext[n] = '\0';
    const struct mime *m = bsearch(ext, mime_table,
                                   sizeof(mime_table) / sizeof(mime_table[0]),
                                   sizeof(mime_table[0]), mime_cmp);
    return m != NULL ? m->type : MIME_DEFAULT;
}
