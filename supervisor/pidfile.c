/*
 * pid_file: written atomically (a temporary file renamed over it) once
 * weftd serves, removed at exit if it still names this process. During an
 * upgrade the old one is set aside as PATH.oldbin, as nginx does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "supervisor/super.h"

/* PATH with suffix, in buf. */
static const char *with_suffix(const char *path, const char *suffix,
                               char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", path, suffix);
    return buf;
}

int pidfile_write(struct supervisor *sup)
{
    const char *path = sup->cfg->pid_file;
    char tmp[4096];
    FILE *f;

    if (path == NULL)
        return 0;
    with_suffix(path, ".tmp", tmp, sizeof(tmp));
    f = fopen(tmp, "w");
    if (f == NULL)
        goto fail;
    if (fprintf(f, "%ld\n", (long)getpid()) < 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, path) == -1)
        goto fail;
    return 0;
fail:
    log_error("%s: %s: %s", __func__, path, strerror(errno));
    if (f != NULL)
        unlink(tmp); /* no half-written temporary left behind */
    return -1;
}

/* The pid written in path, or 0. */
static long pid_in(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

void pidfile_remove(struct supervisor *sup)
{
    const char *path = sup->cfg->pid_file;
    char old[4096];

    if (path == NULL)
        return;
    with_suffix(path, ".oldbin", old, sizeof(old));
    if (pid_in(path) == (long)getpid())
        unlink(path);
    if (pid_in(old) == (long)getpid())
        unlink(old);
}

void pidfile_set_aside(struct supervisor *sup)
{
    char old[4096];

    if (sup->cfg->pid_file != NULL)
        rename(sup->cfg->pid_file,
               with_suffix(sup->cfg->pid_file, ".oldbin", old, sizeof(old)));
}

void pidfile_restore(struct supervisor *sup)
{
    char old[4096];

    if (sup->cfg->pid_file != NULL)
        rename(with_suffix(sup->cfg->pid_file, ".oldbin", old, sizeof(old)),
               sup->cfg->pid_file);
}
