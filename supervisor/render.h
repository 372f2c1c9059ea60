/*
 * Replies of the control socket built from a stats snapshot: JSON for
 * `stats` and `workers`, Prometheus text (exposition format 0.0.4) for
 * `metrics`. Pure functions: they read the snapshot, append to out and
 * touch nothing else. Field names and layout are relied on by scripts.
 *
 * Each returns 0, or -1 when out has failed (memory ran out, now or
 * before); the caller owns out and frees it either way.
 */
#ifndef WEFT_SUPERVISOR_RENDER_H
#define WEFT_SUPERVISOR_RENDER_H

#include "shared/strbuf.h"
#include "supervisor/snapshot.h"

/* Everything: totals, per listener, per worker; one line. Totals and
 * each listener end with a "latency" object (count, sum_us, p50_us,
 * p90_us, p99_us, max_us, buckets as [bound_us, count] pairs). */
int render_stats_json(const struct stats_snapshot *s, struct strbuf *out);

/* Live workers with a few counts each; one line. */
int render_workers_json(const struct stats_snapshot *s, struct strbuf *out);

/* Prometheus text: every field per (listener, slot), process gauges,
 * and the histogram weft_request_duration_seconds per listener. */
int render_prometheus(const struct stats_snapshot *s, struct strbuf *out);

/* {"ok": false, "error": msg}; one line. */
int render_error_json(const char *msg, struct strbuf *out);

#endif
