#include "supervisor/events.h"

#include <stdarg.h>
#include <stdio.h>

#include "shared/stats.h"

void events_add(struct events *ev, const char *kind, const char *fmt, ...)
{
    struct event *e = &ev->e[ev->next];
    va_list ap;

    e->time_ms = stats_now_ms(false);
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    ev->next = (ev->next + 1) % EVENTS_MAX;
    if (ev->count < EVENTS_MAX)
        ev->count++;
}

const struct event *events_get(const struct events *ev, size_t i)
{
    size_t first = (ev->next + EVENTS_MAX - ev->count) % EVENTS_MAX;

    return &ev->e[(first + i) % EVENTS_MAX];
}
