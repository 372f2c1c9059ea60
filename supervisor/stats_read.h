/* Snapshots of the shared stats for the control socket (stats_read.c). */
#ifndef WEFT_SUPERVISOR_STATS_READ_H
#define WEFT_SUPERVISOR_STATS_READ_H

#include "supervisor/snapshot.h"
#include "supervisor/super.h"

/*
 * Fill s from the shared region: retired and live counts per listener and
 * slot, live workers, totals. Returns 0, or -1 when memory is short.
 * Free with snapshot_free.
 */
int snapshot_take(const struct supervisor *sup, struct stats_snapshot *s);
void snapshot_free(struct stats_snapshot *s);

#endif
