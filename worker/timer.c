/* Timers for protocols: once or repeating, in milliseconds, cancellable. */
#include <stdlib.h>

#include "shared/util.h"
#include "worker/worker.h"

struct weft_timer {
    ev_timer ev;
    weft_timer_fn fn;
    void *arg;
    LIST_ENTRY(weft_timer) link;
    bool repeat;
    bool running;   /* fn is on the stack */
    bool cancelled; /* cancelled from inside fn: free after it returns */
};

static void timer_free(struct weft_timer *t)
{
    ev_timer_stop(worker_self->loop, &t->ev);
    LIST_REMOVE(t, link);
    free(t);
}

static void timer_cb(struct ev_loop *loop, ev_timer *ev, int revents)
{
    struct weft_timer *t = container_of(ev, struct weft_timer, ev);

    (void)loop;
    (void)revents;
    t->running = true;
    t->fn(t, t->arg);
    t->running = false;
    if (!t->repeat || t->cancelled)
        timer_free(t);
}

static struct weft_timer *timer_new(unsigned ms, bool repeat,
                                    weft_timer_fn fn, void *arg)
{
    struct weft_timer *t = calloc(1, sizeof(*t));
    double s = ms / 1000.0;

    if (t == NULL)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    t->repeat = repeat;
    ev_timer_init(&t->ev, timer_cb, s, repeat ? s : 0);
    ev_timer_start(worker_self->loop, &t->ev);
    LIST_INSERT_HEAD(&worker_self->timers, t, link);
    return t;
}

struct weft_timer *weft_timer_once(unsigned ms, weft_timer_fn fn, void *arg)
{
    return timer_new(ms, false, fn, arg);
}

struct weft_timer *weft_timer_repeat(unsigned ms, weft_timer_fn fn,
                                     void *arg)
{
    if (ms == 0)
        return NULL;
    return timer_new(ms, true, fn, arg);
}

void weft_timer_cancel(struct weft_timer *t)
{
    if (t->running) {
        t->cancelled = true;
        ev_timer_stop(worker_self->loop, &t->ev);
        return;
    }
    timer_free(t);
}

void timer_free_all(struct worker *w)
{
    while (!LIST_EMPTY(&w->timers))
        timer_free(LIST_FIRST(&w->timers));
}
