/*
 * chat: records onto the bus. Every record goes to each receiver with
 * weft_bus_send, so this side knows which receiver took it; a receiver
 * whose ring is full gets the record later, from its outbox: a FIFO of
 * what waits for it, retried from a short timer. While an outbox holds
 * something, whatever else is for that receiver queues behind it, so a
 * receiver sees this worker's records in the order they were made, none
 * missing, for as long as it lives; the outbox of a receiver that leaves
 * is dropped.
 *
 * Membership records (NICK, JOIN, PART, QUIT, SYNC) are always sent or
 * queued. A user's message is refused (ERR BUSY) while some receiver has
 * an outbox: it is not sent to anyone then. Once it has gone to one
 * receiver it goes to all, queued where a ring is full, so a message
 * never reaches only part of a room and the sender never has a reason to
 * send it twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/chat.h"

/* How soon a full ring is tried again, in ms. */
#define CHAT_RETRY_MS 2

static void chat_out_retry(struct weft_timer *t, void *arg);

int chat_out_init(struct chat_server *srv)
{
    srv->out = calloc((size_t)srv->nids, sizeof(*srv->out));
    if (srv->out == NULL)
        return -1;
    for (int i = 0; i < srv->nids; i++)
        srv->out[i].tail = &srv->out[i].head;
    return 0;
}

void chat_out_forget(struct chat_server *srv, int id)
{
    struct chat_outbox *ob = &srv->out[id];
    struct chat_pending *p;

    while ((p = ob->head) != NULL) {
        ob->head = p->next;
        free(p);
    }
    ob->tail = &ob->head;
    ob->n = 0;
}

void chat_out_free(struct chat_server *srv)
{
    if (srv->retry != NULL)
        weft_timer_cancel(srv->retry);
    srv->retry = NULL;
    for (int i = 0; srv->out != NULL && i < srv->nids; i++)
        chat_out_forget(srv, i);
    free(srv->out);
    srv->out = NULL;
}

static void chat_out_arm(struct chat_server *srv)
{
    if (srv->retry == NULL)
        srv->retry = weft_timer_once(CHAT_RETRY_MS, chat_out_retry, srv);
    if (srv->retry == NULL)
        weft_log(WEFT_LOG_ERROR, "chat: %s: out of memory for a timer",
                 weft_listener_name(srv->l));
}

/*
 * Send what waits for id, in order. Returns true when nothing waits any
 * more (sent, or dropped because id is gone), false when its ring is
 * still full.
 */
static bool chat_out_flush(struct chat_server *srv, int id)
{
    struct chat_outbox *ob = &srv->out[id];
    struct chat_pending *p;

    while ((p = ob->head) != NULL) {
        if (weft_bus_send(id, srv->topic, p->data, p->len) == -1) {
            if (errno == EAGAIN)
                return false;
            if (errno == ESRCH) {
                chat_out_forget(srv, id);
                return true;
            }
            weft_log(WEFT_LOG_ERROR, "chat: %s: a record for worker %d "
                     "dropped: %s", weft_listener_name(srv->l), id,
                     strerror(errno));
        }
        if ((ob->head = p->next) == NULL)
            ob->tail = &ob->head;
        ob->n--;
        free(p);
    }
    return true;
}

/* The timer: try every outbox again; wait again while one is stuck. */
static void chat_out_retry(struct weft_timer *t, void *arg)
{
    struct chat_server *srv = arg;
    bool stuck = false;

    (void)t;
    srv->retry = NULL;
    for (int i = 0; i < srv->nids; i++)
        if (srv->out[i].head != NULL && !chat_out_flush(srv, i))
            stuck = true;
    if (stuck)
        chat_out_arm(srv);
}

/* Put a copy of rec at the end of id's outbox. */
static void chat_out_queue(struct chat_server *srv, int id, const void *rec,
                           size_t len)
{
    struct chat_outbox *ob = &srv->out[id];
    struct chat_pending *p = malloc(sizeof(*p) + len);

    if (p == NULL) {
        weft_log(WEFT_LOG_ERROR, "chat: %s: out of memory: a record for "
                 "worker %d dropped", weft_listener_name(srv->l), id);
        return;
    }
    p->next = NULL;
    p->len = len;
    memcpy(p->data, rec, len);
    *ob->tail = p;
    ob->tail = &p->next;
    ob->n++;
    chat_out_arm(srv);
}

void chat_out_to(struct chat_server *srv, int id, const void *rec,
                 size_t len)
{
    if (!weft_bus_alive(id)) {
        chat_out_forget(srv, id);
        return;
    }
    if (chat_out_flush(srv, id)) {
        if (weft_bus_send(id, srv->topic, rec, len) == 0)
            return;
        if (errno != EAGAIN) {
            if (errno != ESRCH)
                weft_log(WEFT_LOG_ERROR, "chat: %s: a record for worker "
                         "%d dropped: %s", weft_listener_name(srv->l), id,
                         strerror(errno));
            return;
        }
    }
    chat_out_queue(srv, id, rec, len);
}

void chat_out_all(struct chat_server *srv, const void *rec, size_t len)
{
    for (int id = 0; id < srv->nids; id++)
        chat_out_to(srv, id, rec, len);
}

int chat_out_msg(struct chat_server *srv, const void *rec, size_t len)
{
    if (len > weft_bus_max_message()) {
        errno = EMSGSIZE;
        return -1;
    }
    for (int id = 0; id < srv->nids; id++)
        if (srv->out[id].head != NULL && weft_bus_alive(id) &&
            !chat_out_flush(srv, id)) {
            errno = EAGAIN;
            return -1;
        }
    chat_out_all(srv, rec, len);
    return 0;
}

int chat_out_priv(struct chat_server *srv, int id, const void *rec,
                  size_t len)
{
    if (len > weft_bus_max_message()) {
        errno = EMSGSIZE;
        return -1;
    }
    if (!weft_bus_alive(id)) {
        errno = ESRCH;
        return -1;
    }
    if (!chat_out_flush(srv, id)) {
        errno = EAGAIN;
        return -1;
    }
    return weft_bus_send(id, srv->topic, rec, len);
}
