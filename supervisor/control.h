/*
 * The supervisor's control socket (weftctl talks to it) and the optional
 * admin HTTP listener serving /metrics.
 */
#ifndef WEFT_SUPERVISOR_CONTROL_H
#define WEFT_SUPERVISOR_CONTROL_H

#include <stddef.h>

#include "supervisor/super.h"

/* The longest request line, without its newline. */
#define CTL_LINE_MAX 4096

/*
 * Parse the request in buf[0..len): a command name on one line. Returns
 * NULL when no whole line is there yet, "" with the command in name, or a
 * static error ("empty command", "unknown command", "line too long").
 */
const char *ctl_parse(const char *buf, size_t len, char *name, size_t size);

/*
 * Open the control socket (replacing a stale one, refusing a live one;
 * or take `inherited`, the listening socket of the weftd this one
 * upgrades, when it is not -1) and the admin listener, and watch them in
 * sup's loop. NULL with a message in err.
 */
struct control *control_open(struct supervisor *sup, int inherited,
                             int inherited_admin, char *err, size_t errlen);

/* The control and admin sockets (handed to an upgraded weftd; -1: none). */
int control_fd(const struct control *ctl);
int control_admin_fd(const struct control *ctl);

/* At exit, leave the socket file: an upgraded weftd answers on it. */
void control_keep_path(struct control *ctl);

/* Supervisor exit: close everything and remove the socket file. */
void control_close(struct control *ctl);

/* In a new worker: drop the watchers and descriptors, keep the file. */
void control_forget(struct control *ctl);

#endif
