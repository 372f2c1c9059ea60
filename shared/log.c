#include "shared/log.h"

#include "shared/util.h"

#include "weft/weft.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_role[16] = "sup";
static enum log_level log_min = LOG_LVL_INFO;
static bool log_syslog;
/* The stderr weftd started with, once log_open_file moved it to a file. */
static int log_stderr_saved = -1;

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

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < countof(level_names); i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_set_syslog(bool on)
{
    if (on && !log_syslog)
        /* Connect now: a worker forked later shares the socket. */
        openlog("weftd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!on && log_syslog)
        closelog();
    log_syslog = on;
}

/* Put the original stderr back, if a log file replaced it. */
static int log_restore_stderr(void)
{
    if (log_stderr_saved == -1)
        return 0;
    return dup2(log_stderr_saved, STDERR_FILENO) == -1 ? -1 : 0;
}

int log_open_file(const char *path)
{
    int fd;

    if (path == NULL)
        return log_restore_stderr();
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    if (log_stderr_saved == -1)
        log_stderr_saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
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

/*
 * The message part of a line: newlines and carriage returns become spaces
 * so that one event stays one line.
 */
static void log_flatten(char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\n' || p[i] == '\r')
            p[i] = ' ';
}

static int syslog_priority(enum log_level level)
{
    static const int prio[] = {
        [LOG_LVL_DEBUG] = LOG_DEBUG,
        [LOG_LVL_INFO] = LOG_INFO,
        [LOG_LVL_WARN] = LOG_WARNING,
        [LOG_LVL_ERROR] = LOG_ERR,
    };
    return prio[level];
}

/*
 * Format one line into a stack buffer and write it at once: O_APPEND and a
 * single write(2) keep lines of several processes whole. A message too
 * long for LOG_LINE_MAX is cut and marked, never split. syslog, when on,
 * gets the same line without the time (syslog stamps its own).
 */
static void __attribute__((format(printf, 2, 0)))
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    static const char mark[] = LOG_TRUNCATED;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int t = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    int n = t + snprintf(line + t, sizeof(line) - (size_t)t, "%-5s [%ld %s] ",
                         level_names[level], (long)getpid(), log_role);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 1) {
        /* Room for the mark and the newline, within LOG_LINE_MAX. */
        len = sizeof(line) - sizeof(mark);
        memcpy(line + len, mark, sizeof(mark) - 1);
        len += sizeof(mark) - 1;
    }
    log_flatten(line + n, len - (size_t)n);
    line[len++] = '\n';
    /* A short write to stderr has no better place to be reported. */
    if (write(STDERR_FILENO, line, len) == -1)
        (void)0;
    if (log_syslog)
        syslog(syslog_priority(level), "%.*s", (int)(len - 1 - (size_t)t),
               line + t);
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
