/*
 * feed: a hash map from topic to a fixed-size value. Separate chaining
 * with the FNV-1a hash kept in each entry, so growing rehashes nothing
 * and a lookup compares keys only when hashes agree. One allocation per
 * entry: header, value (aligned as malloc aligns), key with its NUL. The
 * table doubles when it holds as many entries as buckets.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/feed/feed.h"

#define MAP_MIN_BUCKETS 16

struct feed_map_ent {
    struct feed_map_ent *next;
    uint64_t hash;
    size_t klen;
};

/* Where the value starts in an entry. */
#define MAP_VAL_OFF                                                         \
    ((sizeof(struct feed_map_ent) + alignof(max_align_t) - 1) /             \
     alignof(max_align_t) * alignof(max_align_t))

static void *ent_val(const struct feed_map_ent *e)
{
    return (char *)e + MAP_VAL_OFF;
}

static char *ent_key(const struct feed_map *m, const struct feed_map_ent *e)
{
    return (char *)e + MAP_VAL_OFF + m->vsize;
}

static struct feed_map_ent *val_ent(const void *val)
{
    return (struct feed_map_ent *)(void *)((char *)val - MAP_VAL_OFF);
}

void feed_map_init(struct feed_map *m, size_t vsize)
{
    memset(m, 0, sizeof(*m));
    m->vsize = vsize;
}

static struct feed_map_ent *map_find(const struct feed_map *m, uint64_t h,
                                     const char *key, size_t len)
{
    if (m->nb == 0)
        return NULL;
    for (struct feed_map_ent *e = m->b[h & (m->nb - 1)]; e != NULL;
         e = e->next)
        if (e->hash == h && e->klen == len &&
            memcmp(ent_key(m, e), key, len) == 0)
            return e;
    return NULL;
}

void *feed_map_get(const struct feed_map *m, const char *key, size_t len)
{
    struct feed_map_ent *e = map_find(m, feed_topic_hash(key, len), key, len);

    return e != NULL ? ent_val(e) : NULL;
}

/* Double the buckets (or make the first ones). -1 when memory is short. */
static int map_grow(struct feed_map *m)
{
    size_t nb = m->nb ? m->nb * 2 : MAP_MIN_BUCKETS;
    struct feed_map_ent **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct feed_map_ent *e, *next;
        for (e = m->b[i]; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

void *feed_map_put(struct feed_map *m, const char *key, size_t len,
                   bool *added)
{
    uint64_t h = feed_topic_hash(key, len);
    struct feed_map_ent *e = map_find(m, h, key, len);

    *added = false;
    if (e != NULL)
        return ent_val(e);
    if (m->n >= m->nb && map_grow(m) == -1)
        return NULL;
    e = calloc(1, MAP_VAL_OFF + m->vsize + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->klen = len;
    memcpy(ent_key(m, e), key, len);
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    m->n++;
    *added = true;
    return ent_val(e);
}

const char *feed_map_key(const struct feed_map *m, const void *val,
                         size_t *len)
{
    const struct feed_map_ent *e = val_ent(val);

    *len = e->klen;
    return ent_key(m, e);
}

void feed_map_del(struct feed_map *m, void *val)
{
    struct feed_map_ent *e = val_ent(val);
    struct feed_map_ent **pp = &m->b[e->hash & (m->nb - 1)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    m->n--;
    free(e);
}

/* The next entry is found before this one is returned: it may go. */
void *feed_map_next(const struct feed_map *m, struct feed_map_iter *it)
{
    struct feed_map_ent *e = it->next;

    while (e == NULL && it->i < m->nb)
        e = m->b[it->i++];
    if (e == NULL)
        return NULL;
    it->next = e->next;
    return ent_val(e);
}

void feed_map_free(struct feed_map *m, void (*fn)(void *val))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct feed_map_ent *e, *next;
        for (e = m->b[i]; e != NULL; e = next) {
            next = e->next;
            if (fn != NULL)
                fn(ent_val(e));
            free(e);
        }
    }
    free(m->b);
    m->b = NULL;
    m->nb = 0;
    m->n = 0;
}
