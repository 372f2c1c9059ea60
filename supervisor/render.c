#include "supervisor/render.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/util.h"

/* The counts `weftctl workers` shows beside each worker. */
static const enum stats_field worker_brief[] = {
    STAT_connections_active, STAT_connections_accepted,
    STAT_bytes_in,           STAT_bytes_out,
    STAT_requests,           STAT_tls_handshakes,
    STAT_tls_resumed,
};

/* A duration for output: negative or NaN (never expected) reads as 0. */
static double clamp_seconds(double s)
{
    return s >= 0 && s < 1e15 ? s : 0;
}

/* Whole seconds, floored: "uptime_s" is an integer in JSON. */
static int64_t whole_seconds(double s)
{
    return (int64_t)clamp_seconds(s);
}

static const char *json_bool(bool v)
{
    return v ? "true" : "false";
}

/*
 * Every field of c as `"name": n`, comma separated, in STATS_FIELDS
 * order, with no separator before the first or after the last.
 */
static void json_counts(struct strbuf *out, const struct stats_counts *c)
{
    for (int f = 0; f < STATS_NFIELDS; f++)
        strbuf_printf(out, "%s\"%s\": %" PRIu64, f ? ", " : "",
                      stats_fields[f].name, c->v[f]);
}

/* A latency bound in JSON: 0 for none (bucket -1, no request), null
 * for the overflow bucket, which has no bound. */
static void json_lat_bound(struct strbuf *out, int i)
{
    if (i < 0)
        strbuf_puts(out, "0");
    else if (i >= STATS_LAT_OVER)
        strbuf_puts(out, "null");
    else
        strbuf_printf(out, "%" PRIu64, stats_lat_bound((unsigned)i));
}

/*
 * "latency": {"count": n, "sum_us": n, "p50_us": b, "p90_us": b,
 * "p99_us": b, "max_us": b, "buckets": [[b, n], ...]}: a quantile is the
 * bound of the bucket it falls in, max_us the bound of the last bucket
 * with a request; buckets lists those with a request, in order.
 */
static void json_latency(struct strbuf *out, const struct stats_counts *c)
{
    static const struct {
        const char *name;
        unsigned permille;
    } q[] = {{"p50_us", 500}, {"p90_us", 900}, {"p99_us", 990}};
    int last = -1;

    strbuf_printf(out,
                  "\"latency\": {\"count\": %" PRIu64 ", \"sum_us\": %" PRIu64,
                  stats_lat_count(c), c->lat_sum_us);
    for (size_t k = 0; k < countof(q); k++) {
        strbuf_printf(out, ", \"%s\": ", q[k].name);
        json_lat_bound(out, stats_lat_quantile(c, q[k].permille));
    }
    for (int i = 0; i < STATS_LAT_BUCKETS; i++)
        if (c->lat[i] != 0)
            last = i;
    strbuf_puts(out, ", \"max_us\": ");
    json_lat_bound(out, last);
    strbuf_puts(out, ", \"buckets\": [");
    for (int i = 0, n = 0; i <= last; i++) {
        if (c->lat[i] == 0)
            continue;
        strbuf_puts(out, n++ ? ", [" : "[");
        json_lat_bound(out, i);
        strbuf_printf(out, ", %" PRIu64 "]", c->lat[i]);
    }
    strbuf_puts(out, "]}");
}

/* The members every worker object starts with, slot to stalled. */
static void json_worker_head(struct strbuf *out, const struct snap_worker *w)
{
    strbuf_printf(out,
                  "\"slot\": %d, \"pid\": %ld, \"generation\": %" PRIu32
                  ", \"state\": ",
                  w->slot, (long)w->pid, w->generation);
    strbuf_json_string(out, w->state);
    strbuf_printf(out,
                  ", \"uptime_s\": %" PRId64 ", \"heartbeat_age_ms\": %" PRId64
                  ", \"stalled\": %s",
                  whole_seconds(w->uptime_s), w->heartbeat_age_ms,
                  json_bool(w->stalled));
}

/* "listeners": [{"name": ..., <every field>}, ...] */
static void json_listeners(struct strbuf *out, const struct stats_snapshot *s)
{
    strbuf_puts(out, "\"listeners\": [");
    for (size_t i = 0; i < s->nlisteners; i++) {
        strbuf_puts(out, i ? ", {\"name\": " : "{\"name\": ");
        strbuf_json_string(out, s->listeners[i].name);
        strbuf_puts(out, ", ");
        json_counts(out, &s->listeners[i].c);
        strbuf_puts(out, ", ");
        json_latency(out, &s->listeners[i].c);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "]");
}

/* "workers": [{<head>, <every field>}, ...] */
static void json_workers_full(struct strbuf *out,
                              const struct stats_snapshot *s)
{
    strbuf_puts(out, "\"workers\": [");
    for (size_t i = 0; i < s->nworkers; i++) {
        strbuf_puts(out, i ? ", {" : "{");
        json_worker_head(out, &s->workers[i]);
        strbuf_puts(out, ", ");
        json_counts(out, &s->workers[i].c);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "]");
}

/* , "events": [{"time_ms": ..., "kind": ..., "text": ...}, ...] */
static void json_events(struct strbuf *out, const struct stats_snapshot *s)
{
    strbuf_puts(out, ", \"events\": [");
    for (size_t i = 0; i < s->nevents; i++) {
        strbuf_printf(out, "%s{\"time_ms\": %" PRId64 ", \"kind\": ",
                      i ? ", " : "", s->events[i].time_ms);
        strbuf_json_string(out, s->events[i].kind);
        strbuf_puts(out, ", \"text\": ");
        strbuf_json_string(out, s->events[i].text);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "]");
}

int render_stats_json(const struct stats_snapshot *s, struct strbuf *out)
{
    strbuf_puts(out, "{\"ok\": true, \"version\": ");
    strbuf_json_string(out, s->version);
    strbuf_printf(
        out,
        ", \"pid\": %ld, \"uptime_s\": %" PRId64 ", \"time_ms\": %" PRId64
        ", \"generation\": %" PRIu32
        ", \"workers_configured\": %d, \"generations_forced\": %" PRIu64
        ", \"totals\": {",
        (long)s->pid, whole_seconds(s->uptime_s), s->time_ms, s->generation,
        s->nslots, s->generations_forced);
    json_counts(out, &s->totals);
    strbuf_puts(out, ", ");
    json_latency(out, &s->totals);
    strbuf_puts(out, "}, ");
    json_listeners(out, s);
    strbuf_puts(out, ", ");
    json_workers_full(out, s);
    json_events(out, s);
    strbuf_puts(out, "}\n");
    return out->failed ? -1 : 0;
}

int render_workers_json(const struct stats_snapshot *s, struct strbuf *out)
{
    strbuf_printf(out,
                  "{\"ok\": true, \"generation\": %" PRIu32 ", \"workers\": [",
                  s->generation);
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct snap_worker *w = &s->workers[i];
        strbuf_puts(out, i ? ", {" : "{");
        json_worker_head(out, w);
        for (size_t k = 0; k < countof(worker_brief); k++) {
            enum stats_field f = worker_brief[k];
            strbuf_printf(out, ", \"%s\": %" PRIu64, stats_fields[f].name,
                          w->c.v[f]);
        }
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "]}\n");
    return out->failed ? -1 : 0;
}

int render_error_json(const char *msg, struct strbuf *out)
{
    strbuf_puts(out, "{\"ok\": false, \"error\": ");
    strbuf_json_string(out, msg);
    strbuf_puts(out, "}\n");
    return out->failed ? -1 : 0;
}

/*
 * Append s escaped for the text format: backslash and newline always,
 * the double quote too in a label value (quoted), not in HELP text.
 */
static void prom_escape(struct strbuf *out, const char *s, bool quoted)
{
    const char *p, *run;

    if (s == NULL)
        s = "";
    for (p = run = s; *p != '\0'; p++) {
        const char *e;
        if (*p == '\\')
            e = "\\\\";
        else if (*p == '\n')
            e = "\\n";
        else if (*p == '"' && quoted)
            e = "\\\"";
        else
            continue;
        strbuf_add(out, run, (size_t)(p - run));
        strbuf_add(out, e, 2);
        run = p + 1;
    }
    strbuf_add(out, run, (size_t)(p - run));
}

/* The HELP and TYPE lines of metric weft_<name><suffix>. */
static void prom_family(struct strbuf *out, const char *name,
                        const char *suffix, const char *type, const char *help)
{
    strbuf_printf(out, "# HELP weft_%s%s ", name, suffix);
    prom_escape(out, help, false);
    strbuf_printf(out, "\n# TYPE weft_%s%s %s\n", name, suffix, type);
}

/* Gauges of the supervisor itself, one sample each. */
static void prom_process(struct strbuf *out, const struct stats_snapshot *s)
{
    prom_family(out, "build_info", "", "gauge",
                "Version of the running weftd; the value is always 1");
    strbuf_puts(out, "weft_build_info{version=\"");
    prom_escape(out, s->version, true);
    strbuf_puts(out, "\"} 1\n");
    prom_family(out, "generation", "", "gauge",
                "Reload generation now serving");
    strbuf_printf(out, "weft_generation %" PRIu32 "\n", s->generation);
    prom_family(out, "workers", "", "gauge", "Worker slots configured");
    strbuf_printf(out, "weft_workers %d\n", s->nslots);
    prom_family(out, "generations_forced", "_total", "counter",
                "Old generations stopped early: more were alive than "
                "max_generations");
    strbuf_printf(out, "weft_generations_forced_total %" PRIu64 "\n",
                  s->generations_forced);
    prom_family(out, "uptime_seconds", "", "gauge",
                "Seconds since the supervisor started");
    strbuf_printf(out, "weft_uptime_seconds %.3f\n",
                  clamp_seconds(s->uptime_s));
}

/*
 * Liveness of each live worker process, labelled by slot and pid (a slot
 * has two processes during a reload). A worker without a heartbeat yet
 * has no age sample rather than a made-up one.
 */
static void prom_workers(struct strbuf *out, const struct stats_snapshot *s)
{
    prom_family(out, "worker_heartbeat_age_seconds", "", "gauge",
                "Seconds since the worker's last heartbeat");
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct snap_worker *w = &s->workers[i];
        if (w->heartbeat_age_ms < 0)
            continue;
        strbuf_printf(out,
                      "weft_worker_heartbeat_age_seconds"
                      "{worker=\"%d\",pid=\"%ld\"} %" PRId64 ".%03d\n",
                      w->slot, (long)w->pid, w->heartbeat_age_ms / 1000,
                      (int)(w->heartbeat_age_ms % 1000));
    }
    prom_family(out, "worker_stalled", "", "gauge",
                "1 when the worker's heartbeat is older than the limit");
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct snap_worker *w = &s->workers[i];
        strbuf_printf(out,
                      "weft_worker_stalled{worker=\"%d\",pid=\"%ld\"} %d\n",
                      w->slot, (long)w->pid, w->stalled ? 1 : 0);
    }
}

/* Field f: HELP and TYPE once, then one sample per (listener, slot). */
static void prom_field(struct strbuf *out, const struct stats_snapshot *s,
                       int f)
{
    const struct stats_field_info *fi = &stats_fields[f];
    bool counter = fi->kind == STATS_COUNTER;
    const char *suffix = counter ? "_total" : "";

    prom_family(out, fi->name, suffix, counter ? "counter" : "gauge", fi->help);
    for (size_t i = 0; i < s->nseries; i++) {
        const struct snap_series *se = &s->series[i];
        strbuf_printf(out, "weft_%s%s{listener=\"", fi->name, suffix);
        prom_escape(out, se->listener, true);
        strbuf_printf(out, "\",worker=\"%d\"} %" PRIu64 "\n", se->slot,
                      se->c.v[f]);
    }
}

/* Microseconds as seconds, exactly and short: 1500 is 0.0015, 2000000
 * is 2. */
static void prom_seconds(struct strbuf *out, uint64_t us)
{
    char frac[24];
    int n = snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000);

    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    strbuf_printf(out, "%" PRIu64 "%s%s", us / 1000000, n ? "." : "", frac);
}

/* The start of a latency sample, up to its listener label's value:
 * weft_request_duration_seconds<suffix>{listener="<name>" */
static void prom_lat_sample(struct strbuf *out, const char *suffix,
                            const char *listener)
{
    strbuf_printf(out, "weft_request_duration_seconds%s{listener=\"", suffix);
    prom_escape(out, listener, true);
    strbuf_puts(out, "\"");
}

/*
 * The latency histogram, per listener over all its workers (a hundred
 * buckets per worker slot would be too many series), for the listeners
 * that answered a request: each bucket cumulative, "+Inf" last, then
 * _sum and _count, which is the +Inf bucket. Counts never go back (the
 * histogram is folded like a counter), so a listener's series, once
 * there, stay.
 */
static void prom_latency(struct strbuf *out, const struct stats_snapshot *s)
{
    prom_family(out, "request_duration_seconds", "", "histogram",
                "Time from a request's first byte to its answer being "
                "queued, over all workers");
    for (size_t i = 0; i < s->nlisteners; i++) {
        const struct snap_listener *l = &s->listeners[i];
        uint64_t cum = 0;
        if (stats_lat_count(&l->c) == 0)
            continue;
        for (unsigned b = 0; b < STATS_LAT_BUCKETS; b++) {
            cum += l->c.lat[b];
            prom_lat_sample(out, "_bucket", l->name);
            strbuf_puts(out, ",le=\"");
            if (b < STATS_LAT_OVER)
                prom_seconds(out, stats_lat_bound(b));
            else
                strbuf_puts(out, "+Inf");
            strbuf_printf(out, "\"} %" PRIu64 "\n", cum);
        }
        prom_lat_sample(out, "_sum", l->name);
        strbuf_puts(out, "} ");
        prom_seconds(out, l->c.lat_sum_us);
        strbuf_puts(out, "\n");
        prom_lat_sample(out, "_count", l->name);
        strbuf_printf(out, "} %" PRIu64 "\n", cum);
    }
}

/*
 * Metric by metric, so that all samples of one name are together, as the
 * format requires.
 */
int render_prometheus(const struct stats_snapshot *s, struct strbuf *out)
{
    prom_process(out, s);
    prom_workers(out, s);
    for (int f = 0; f < STATS_NFIELDS; f++)
        prom_field(out, s, f);
    prom_latency(out, s);
    return out->failed ? -1 : 0;
}
