/*
 * http: static files under root.
 *
 * The request path is decoded and normalised (path.c) before any file is
 * touched, so "..", "%2e%2e" and friends never leave root. Files are
 * opened relative to root's descriptor with openat2(RESOLVE_BENEATH):
 * a symlink that leads out of root fails (403) unless `symlinks` allows
 * it. Open descriptors are kept per worker in a small LRU cache; an
 * entry older than open_file_valid ms is checked against the path with
 * one stat before it is used again, and opened anew when the file
 * changed. Bodies go out with sendfile after the head.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "protocols/http/mime.h"
#include "protocols/http/path.h"
#include "protocols/http/range.h"
#include "protocols/http/server.h"

/* What the answer needs of an open file. */
struct file_entry {
    struct file_entry *hnext;       /* hash chain */
    struct file_entry *prev, *next; /* LRU list, most recent first */
    uint32_t hash;
    int fd;
    dev_t dev;
    ino_t ino;
    off_t size;
    time_t mtime;
    uint64_t checked_ms;
    const char *type;
    char etag[48];
    char lastmod[HTTP_DATE_LEN + 1];
    size_t name_len;
    char name[]; /* relative to root, NUL-terminated */
};

struct file_cache {
    struct file_entry **bucket;
    size_t nbuckets; /* a power of two */
    size_t count, max;
    struct file_entry lru; /* sentinel */
};

/* The headers a file answer depends on, copied out of the head. */
enum { FQ_IMS, FQ_INM, FQ_RANGE, FQ_IF_RANGE, FQ_N };
static const char *const fq_names[FQ_N] = {
    "If-Modified-Since", "If-None-Match", "Range", "If-Range"
};

/* ---- The cache ---------------------------------------------------------- */

static uint32_t file_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void lru_unlink(struct file_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push(struct file_cache *fc, struct file_entry *e)
{
    e->next = fc->lru.next;
    e->prev = &fc->lru;
    fc->lru.next->prev = e;
    fc->lru.next = e;
}

static void file_entry_free(struct file_entry *e)
{
    if (e->fd != -1)
        close(e->fd);
    free(e);
}

/* Take e out of the cache and free it. */
static void cache_remove(struct file_cache *fc, struct file_entry *e)
{
    struct file_entry **pp = &fc->bucket[e->hash & (fc->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    fc->count--;
    file_entry_free(e);
}

static struct file_entry *cache_find(struct file_cache *fc, const char *name,
                                     size_t len, uint32_t hash)
{
    struct file_entry *e = fc->bucket[hash & (fc->nbuckets - 1)];

    while (e != NULL && (e->hash != hash || e->name_len != len ||
                         memcmp(e->name, name, len) != 0))
        e = e->hnext;
    return e;
}

/* Add e (not in the cache), dropping the least recently used if full. */
static void cache_add(struct file_cache *fc, struct file_entry *e)
{
    struct file_entry **b = &fc->bucket[e->hash & (fc->nbuckets - 1)];

    if (fc->count >= fc->max)
        cache_remove(fc, fc->lru.prev);
    e->hnext = *b;
    *b = e;
    lru_push(fc, e);
    fc->count++;
}

static struct file_cache *cache_new(size_t max)
{
    struct file_cache *fc = calloc(1, sizeof(*fc));
    size_t n = 16;

    while (n < max)
        n *= 2;
    if (fc == NULL || (fc->bucket = calloc(n, sizeof(*fc->bucket))) == NULL) {
        free(fc);
        return NULL;
    }
    fc->nbuckets = n;
    fc->max = max;
    fc->lru.next = fc->lru.prev = &fc->lru;
    return fc;
}

static void cache_free(struct file_cache *fc)
{
    if (fc == NULL)
        return;
    while (fc->lru.next != &fc->lru)
        cache_remove(fc, fc->lru.next);
    free(fc->bucket);
    free(fc);
}

/* ---- Opening ------------------------------------------------------------ */

/*
 * Open rel under root for reading, never out of root through a symlink
 * unless symlinks is set. Returns the descriptor, or -1 with errno
 * (EXDEV or ELOOP for an escape).
 */
static int static_open(int root_fd, const char *rel, bool symlinks)
{
    /* O_NONBLOCK: a FIFO must not block the worker; fstat refuses it. */
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

    if (!symlinks) {
        struct open_how how = { .flags = (uint64_t)flags,
                                .resolve = RESOLVE_BENEATH |
                                           RESOLVE_NO_MAGICLINKS };
        long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
        if (fd != -1 || errno != ENOSYS)
            return (int)fd;
        errno = EXDEV; /* a kernel before 5.6: refuse what we cannot check */
        return -1;
    }
    return openat(root_fd, rel, flags);
}

/* Fill a new entry for name from its open descriptor. */
static struct file_entry *file_entry_new(const char *name, size_t len,
                                         uint32_t hash, int fd,
                                         const struct stat *st)
{
    struct file_entry *e = malloc(sizeof(*e) + len + 1);

    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, len + 1);
    e->name_len = len;
    e->hash = hash;
    e->fd = fd;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtime;
    e->type = http_mime_type(name, len);
    snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx\"",
             (unsigned long long)st->st_mtime,
             (unsigned long long)st->st_size);
    http_date_format(st->st_mtime, e->lastmod);
    return e;
}

/* The stat of e still describes the file at its path. */
static bool file_entry_same(const struct file_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino &&
           e->size == st->st_size && e->mtime == st->st_mtime;
}

/*
 * The entry for name, from the cache when it is fresh, else opened.
 * Returns NULL with a status in *status (403, 404, 500, 503), or with
 * *status 301 when name is a directory (the caller redirects). Without
 * a cache the entry is the caller's to free.
 */
static struct file_entry *static_get(struct http_worker *hw,
                                     const struct http_conf *conf,
                                     const char *name, size_t len,
                                     int *status)
{
    struct file_cache *fc = hw->files;
    uint32_t hash = file_hash(name, len);
    uint64_t now = http_now_us() / 1000;
    struct file_entry *e = fc ? cache_find(fc, name, len, hash) : NULL;
    struct stat st;

    if (e != NULL) {
        bool fresh = now - e->checked_ms < conf->cache_valid;
        if (!fresh && fstatat(hw->root_fd, name, &st, 0) == 0 &&
            file_entry_same(e, &st)) {
            e->checked_ms = now;
            fresh = true;
        }
        if (fresh) {
            lru_unlink(e);
            lru_push(fc, e);
            return e;
        }
        cache_remove(fc, e);
    }
    int fd = static_open(hw->root_fd, name, conf->symlinks);
    if (fd == -1) {
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
        case ENAMETOOLONG:
            *status = 404;
            break;
        case EMFILE:
        case ENFILE:
        case ENOMEM:
            *status = 503;
            break;
        case EACCES:
        case EPERM:
        case EXDEV:
        case ELOOP:
            *status = 403;
            break;
        default:
            weft_log(WEFT_LOG_ERROR, "http: %s: open %s: %s", __func__, name,
                     strerror(errno));
            *status = 500;
        }
        return NULL;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        *status = fd != -1 && S_ISDIR(st.st_mode) ? 301 : 403;
        close(fd);
        return NULL;
    }
    if ((e = file_entry_new(name, len, hash, fd, &st)) == NULL) {
        close(fd);
        *status = 503;
        return NULL;
    }
    e->checked_ms = now;
    if (fc != NULL)
        cache_add(fc, e);
    return e;
}

/* ---- Per worker ---------------------------------------------------------- */

int http_static_start(struct http_worker *hw, const struct http_conf *conf)
{
    if (conf->root == NULL)
        return 0;
    hw->root_fd = open(conf->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (hw->root_fd == -1)
        weft_log(WEFT_LOG_WARN, "http: root %s: %s: files answer 404",
                 conf->root, strerror(errno));
    if (conf->cache_entries > 0 &&
        (hw->files = cache_new(conf->cache_entries)) == NULL)
        return -1;
    return 0;
}

void http_static_stop(struct http_worker *hw)
{
    cache_free(hw->files);
    hw->files = NULL;
    if (hw->root_fd != -1)
        close(hw->root_fd);
    hw->root_fd = -1;
}

/* ---- Requests ------------------------------------------------------------ */

/*
 * h->file holds: the decoded path, NUL, then for each of fq_names the
 * value and a NUL; h->fq[i] is the offset of value i, 0 when absent.
 */
int http_static_plan(struct http_conn *h, const struct http_request *req)
{
    char path[4096];
    long n = http_path_normalise(req->path, req->path_len, path,
                                 sizeof(path));

    if (n < 0)
        return (int)-n;
    h->file.len = 0;
    strbuf_add(&h->file, path, (size_t)n + 1);
    for (int i = 0; i < FQ_N; i++) {
        const struct http_header *hd = http_header_find(req, fq_names[i]);
        h->fq[i] = 0;
        if (hd != NULL) {
            h->fq[i] = (uint32_t)h->file.len;
            strbuf_add(&h->file, hd->value, hd->value_len);
            strbuf_add(&h->file, "", 1);
        }
    }
    return h->file.failed ? 503 : 0;
}

static const char *fq_get(const struct http_conn *h, int i)
{
    return h->fq[i] != 0 ? h->file.data + h->fq[i] : NULL;
}

/* An entity tag in a list of them ("*" matches all), compared weakly. */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, elen) == 0 &&
            (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' ' ||
             p[elen] == '\t'))
            return true;
        while (*p != '\0' && *p != ',')
            p++;
    }
    return false;
}

/* RFC 9110 13.2.2: If-None-Match decides when present, else IMS. */
static bool static_not_modified(const struct http_conn *h,
                                const struct file_entry *e)
{
    const char *inm = fq_get(h, FQ_INM), *ims = fq_get(h, FQ_IMS);
    time_t t;

    if (inm != NULL)
        return etag_listed(inm, e->etag);
    return ims != NULL && http_date_parse(ims, strlen(ims), &t) == 0 &&
           e->mtime <= t;
}

/* If-Range: the Range applies only to the representation it names. */
static bool static_range_applies(const struct http_conn *h,
                                 const struct file_entry *e)
{
    const char *ifr = fq_get(h, FQ_IF_RANGE);
    time_t t;

    if (ifr == NULL)
        return true;
    if (ifr[0] == '"')
        return strcmp(ifr, e->etag) == 0;
    return http_date_parse(ifr, strlen(ifr), &t) == 0 && t == e->mtime;
}

/* The decoded path percent-encoded again for a Location header. */
static void static_encode(struct strbuf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("/-._~!$&'()*+,;=:@", *p)) {
            strbuf_add(b, p, 1);
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            strbuf_add(b, e, 3);
        }
    }
}

/* 301 to the directory's path with a slash. */
static void static_redirect(struct http_conn *h, struct http_worker *hw)
{
    struct strbuf loc = { 0 };

    strbuf_puts(&loc, "Location: ");
    static_encode(&loc, h->file.data);
    strbuf_puts(&loc, "/\r\n");
    http_answer_status(h, &hw->out, hw, loc.failed ? 503 : 301,
                       loc.failed ? NULL : loc.data);
    strbuf_free(&loc);
}

/* The file name under root for the planned path: index for a directory. */
static size_t static_name(const struct http_conn *h,
                          const struct http_conf *conf, char *name,
                          size_t cap)
{
    const char *path = h->file.data + 1; /* without the leading '/' */
    size_t len = strlen(path);
    int n;

    if (len == 0 || path[len - 1] == '/')
        n = snprintf(name, cap, "%s%s", path, conf->index);
    else
        n = snprintf(name, cap, "%s", path);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* A directory's index is missing: 403 if the directory exists. */
static int static_no_index(struct http_worker *hw, const struct http_conn *h)
{
    const char *dir = h->file.data[1] != '\0' ? h->file.data + 1 : ".";
    struct stat st;

    if (fstatat(hw->root_fd, dir, &st, 0) == 0 && S_ISDIR(st.st_mode))
        return 403;
    return 404;
}

/* No file to send: the status static_get gave, refined. */
static void static_failed(struct http_conn *h, struct http_worker *hw,
                          int status, bool dir)
{
    if (status == 301 && !dir) {
        static_redirect(h, hw);
        return;
    }
    if (status == 301)
        status = 403; /* the index is a directory */
    else if (status == 404 && dir && hw->root_fd != -1)
        status = static_no_index(hw, h);
    http_answer_status(h, &hw->out, hw, status, NULL);
}

/*
 * The status for the file e: 304, 206 or 416 for the conditional and
 * Range headers, else 200; [*first, *last] is the part to send.
 */
static int static_decide(const struct http_conn *h,
                         const struct file_entry *e, uint64_t *first,
                         uint64_t *last)
{
    const char *range = fq_get(h, FQ_RANGE);
    uint64_t size = (uint64_t)e->size;

    *first = 0;
    *last = size - 1;
    if (static_not_modified(h, e))
        return 304;
    if (range == NULL || h->head_only || !static_range_applies(h, e))
        return 200;
    int r = http_range_parse(range, strlen(range), size, first, last);
    if (r == 1)
        return 206;
    *first = 0;
    *last = size - 1;
    return r == 0 ? 200 : 416;
}

/* The head of a file answer; returns the body bytes it announces. */
static uint64_t static_head(struct strbuf *out, const struct http_conn *h,
                            const struct http_worker *hw,
                            const struct file_entry *e, int status,
                            uint64_t first, uint64_t last)
{
    uint64_t size = (uint64_t)e->size, n = 0;

    http_head_begin(out, hw, status);
    if (status != 416) {
        strbuf_puts(out, "Last-Modified: ");
        strbuf_add(out, e->lastmod, HTTP_DATE_LEN);
        strbuf_puts(out, "\r\nETag: ");
        strbuf_puts(out, e->etag);
        strbuf_puts(out, "\r\n");
    }
    if (status == 200 || status == 206) {
        n = size == 0 ? 0 : last - first + 1;
        strbuf_puts(out, "Content-Type: ");
        strbuf_puts(out, e->type);
        strbuf_puts(out, "\r\nAccept-Ranges: bytes\r\n");
    }
    if (status == 206 || status == 416) {
        strbuf_puts(out, "Content-Range: bytes ");
        if (status == 206) {
            http_put_u64(out, first);
            strbuf_add(out, "-", 1);
            http_put_u64(out, last);
        } else {
            strbuf_add(out, "*", 1);
        }
        strbuf_add(out, "/", 1);
        http_put_u64(out, size);
        strbuf_puts(out, "\r\n");
    }
    http_head_end(out, h, status == 304 ? -1 : (long long)n);
    return n;
}

void http_static_answer(struct http_conn *h, struct http_worker *hw,
                        const struct http_conf *conf)
{
    char name[4200];
    size_t len = static_name(h, conf, name, sizeof(name));
    bool dir = h->file.data[strlen(h->file.data) - 1] == '/';
    struct file_entry *e = NULL;
    uint64_t first, last, n;
    int status = 404;

    if (hw->root_fd != -1 && len > 0)
        e = static_get(hw, conf, name, len, &status);
    if (e == NULL) {
        static_failed(h, hw, status, dir);
        return;
    }
    status = static_decide(h, e, &first, &last);
    n = static_head(&hw->out, h, hw, e, status, first, last);
    if (http_closing(h))
        h->close_after = true;
    if (h->head_only || status == 304)
        n = 0;
    if (n > 0) {
        http_flush(h);
        weft_conn_sendfile(h->c, e->fd, (off_t)first, (size_t)n);
    }
    http_done(h, status, n);
    if (hw->files == NULL)
        file_entry_free(e);
}
