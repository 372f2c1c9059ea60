#include "shared/log.h"

#include "shared/util.h"

#include "weft/weft.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char log_role[16] = "sup";
static enum log_level log_min = LOG_LVL_INFO;

static const char *const level_names[] = {
    [LOG_LVL_DEBUG] = "debug",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_ERROR] = "error",
};

void log_set_role(int slot)
{
    if (slot < 0)
        snprintf(log_role, sizeof(log_role), "sup");
    else
        snprintf(log_role, sizeof(log_role), "w%d", slot);
}

int log_open_file(const char *path)
{
    int fd;

    if (path == NULL)
        return 0;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    /* stderr itself: sanitizers and libraries write there too, and every
     * line goes out with one write on an O_APPEND file, whole. */
    if (dup2(fd, STDERR_FILENO) == -1) {
        close_keep_errno(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void log_set_level(enum log_level level)
{
    log_min = level;
}

/* Format one line into a stack buffer and write it at once. */
static void __attribute__((format(printf, 2, 0)))
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%ld %s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level], (long)getpid(), log_role);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: still one whole line */
    line[len++] = '\n';
    /* A short write to stderr has no better place to be reported. */
    if (write(STDERR_FILENO, line, len) == -1)
        (void)0;
    errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LVL_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

void weft_log(enum weft_log_level level, const char *fmt, ...)
{
    static const enum log_level map[] = {
        [WEFT_LOG_DEBUG] = LOG_LVL_DEBUG,
        [WEFT_LOG_INFO] = LOG_LVL_INFO,
        [WEFT_LOG_WARN] = LOG_LVL_WARN,
        [WEFT_LOG_ERROR] = LOG_LVL_ERROR,
    };
    va_list ap;

    if ((unsigned)level > WEFT_LOG_ERROR)
        level = WEFT_LOG_ERROR;
    if (map[level] < log_min)
        return;
    va_start(ap, fmt);
    log_vwrite(map[level], fmt, ap);
    va_end(ap);
}
