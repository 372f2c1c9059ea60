/*
 * The supervisor's recent events (starts, reloads, worker crashes), kept
 * in memory for the stats page and `weftctl stats`: a small ring, the
 * oldest dropped first. Plain data, written only by the supervisor.
 */
#ifndef WEFT_SUPERVISOR_EVENTS_H
#define WEFT_SUPERVISOR_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENTS_MAX 32
#define EVENT_TEXT 120

struct event {
    int64_t time_ms; /* CLOCK_REALTIME */
    char kind[12];   /* "start", "reload", "crash", "upgrade" */
    char text[EVENT_TEXT];
};

struct events {
    struct event e[EVENTS_MAX];
    size_t next;  /* where the next one goes */
    size_t count; /* up to EVENTS_MAX */
};

/* Record an event of kind (a static word) with a printf-style text. */
void events_add(struct events *ev, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The i-th event, oldest first (i < ev->count). */
const struct event *events_get(const struct events *ev, size_t i);

#endif
