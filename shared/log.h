/*
 * Logging to stderr: one line per event, written with one write(2) so lines
 * from several processes never interleave. Each line carries the time, the
 * level, the pid and the role ("sup" for the supervisor, "wN" for worker N).
 * Callers put __func__ first: log_info("%s: ...", __func__).
 * A line is at most LOG_LINE_MAX bytes, its newline included: a longer one
 * is cut and ends with LOG_TRUNCATED; newlines inside a message become
 * spaces, so one event is always one line.
 */
#ifndef WEFT_SHARED_LOG_H
#define WEFT_SHARED_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

#define LOG_LINE_MAX 4096
#define LOG_TRUNCATED " [truncated]"

/* slot < 0: the supervisor; otherwise worker `slot`. */
void log_set_role(int slot);
void log_set_level(enum log_level level);

/* "debug", "info", "warn" or "error" into *out; 0, or -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Also send every line to syslog(3) (ident "weftd", facility daemon, the
 * level's priority), or stop doing so. The file or stderr keeps its lines.
 */
void log_set_syslog(bool on);

/*
 * Send log lines (and anything else written to stderr) to path, opened
 * for appending. Called again after the file was rotated, it opens the
 * file anew. NULL: back to the stderr weftd was started with (nothing to
 * do if it was never redirected). Returns 0, or -1 with errno.
 */
int log_open_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log at error level and exit(1): start-up failures, impossible states. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
