/*
 * feed: the owner's queue of records for one receiver whose bus ring was
 * full. Records leave in the order they came, so a receiver sees each
 * topic's numbers in order whether they went at once or waited here.
 *
 * Bounded in record bytes: past the bound the oldest records go. A
 * receiver notices a number missing when a later one of the topic
 * arrives, unless it never saw the topic before; so the first number
 * dropped of each topic is kept (lost) and written into the next record
 * of that topic that leaves (lost_from), from which the receiver reports
 * the gap in any case.
 */
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"

void feed_outbox_init(struct feed_outbox *ob)
{
    memset(ob, 0, sizeof(*ob));
    feed_map_init(&ob->lost, sizeof(uint64_t));
}

int feed_outbox_push(struct feed_outbox *ob, enum feed_kind kind,
                     const unsigned char *rec, size_t len)
{
    struct feed_obent *e = malloc(sizeof(*e) + len);

    if (e == NULL)
        return -1;
    e->next = NULL;
    e->len = len;
    e->kind = kind;
    memcpy(e->rec, rec, len);
    if (ob->tail != NULL)
        ob->tail->next = e;
    else
        ob->head = e;
    ob->tail = e;
    ob->bytes += len;
    ob->count++;
    return 0;
}

void feed_outbox_pop(struct feed_outbox *ob)
{
    struct feed_obent *e = ob->head;

    if (e == NULL)
        return;
    ob->head = e->next;
    if (ob->head == NULL)
        ob->tail = NULL;
    ob->bytes -= e->len;
    ob->count--;
    free(e);
}

/*
 * An OUT record is dropped: its topic's loss starts at its number, or
 * earlier if it carried an older loss itself. Memory short: the receiver
 * still sees the jump if it knows the topic.
 */
static void outbox_note_lost(struct feed_outbox *ob, const struct feed_obent *e)
{
    struct feed_rec r;
    bool added;
    uint64_t *first, from;

    if (feed_rec_decode(FEED_KIND_OUT, e->rec, e->len, &r) == -1)
        return;
    from = r.lost_from != 0 && r.lost_from < r.seq ? r.lost_from : r.seq;
    first = feed_map_put(&ob->lost, r.topic, r.topic_len, &added);
    if (first != NULL && (added || from < *first))
        *first = from;
}

size_t feed_outbox_trim(struct feed_outbox *ob, size_t max, size_t *in_lost)
{
    size_t n = 0;

    *in_lost = 0;
    while (ob->bytes > max && ob->head != ob->tail) {
        if (ob->head->kind == FEED_KIND_OUT)
            outbox_note_lost(ob, ob->head);
        else
            (*in_lost)++;
        feed_outbox_pop(ob);
        n++;
    }
    ob->dropped += n;
    return n;
}

void feed_outbox_mark(struct feed_outbox *ob, unsigned char *rec, size_t len)
{
    struct feed_rec r;
    uint64_t *first;

    if (ob->lost.n == 0 || feed_rec_decode(FEED_KIND_OUT, rec, len, &r) == -1)
        return;
    first = feed_map_get(&ob->lost, r.topic, r.topic_len);
    if (first == NULL)
        return;
    if (r.lost_from == 0 || *first < r.lost_from)
        feed_rec_set_lost(rec, *first);
    feed_map_del(&ob->lost, first);
}

void feed_outbox_clear(struct feed_outbox *ob)
{
    while (ob->head != NULL)
        feed_outbox_pop(ob);
    feed_map_free(&ob->lost, NULL);
}
