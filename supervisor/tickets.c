/*
 * The supervisor's side of the shared TLS session-ticket keys
 * (shared/tls_keys.h): made before the first fork, rotated every
 * tls_ticket_rotate seconds and when a reload commits, so a new
 * generation never issues tickets under the key of the old one.
 */
#include <errno.h>
#include <string.h>

#include "shared/log.h"
#include "shared/tls_keys.h"
#include "shared/util.h"
#include "supervisor/super.h"

static void tickets_rotate_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct supervisor *sup = container_of(t, struct supervisor, ticket_timer);

    (void)loop;
    (void)revents;
    if (tls_keys_rotate(sup->tls_keys) == -1)
        log_error("%s: no random bytes for a new ticket key; the current "
                  "one stays", __func__);
}

int tickets_start(struct supervisor *sup)
{
    double every = sup->cfg->tls_ticket_rotate;

    if ((sup->tls_keys = tls_keys_create()) == NULL) {
        log_error("%s: TLS ticket keys: %s", __func__, strerror(errno));
        return -1;
    }
    ev_timer_init(&sup->ticket_timer, tickets_rotate_cb, every, every);
    ev_timer_start(sup->loop, &sup->ticket_timer);
    /* Never the reason the supervisor's loop keeps running. */
    ev_unref(sup->loop);
    return 0;
}

void tickets_reload(struct supervisor *sup)
{
    double every = sup->cfg->tls_ticket_rotate;

    tickets_rotate_cb(sup->loop, &sup->ticket_timer, 0);
    ev_ref(sup->loop);
    ev_timer_stop(sup->loop, &sup->ticket_timer);
    ev_timer_set(&sup->ticket_timer, every, every);
    ev_timer_start(sup->loop, &sup->ticket_timer);
    ev_unref(sup->loop);
}
