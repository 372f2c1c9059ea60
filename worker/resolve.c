/*
 * Name resolution off the event loop: one resolver thread per worker,
 * started at the first name, running getaddrinfo on a queue of requests
 * and waking the loop with an ev_async when answers are ready.
 *
 * A thread rather than c-ares: getaddrinfo honours nsswitch.conf and
 * /etc/hosts exactly as every other program on the host does, needs no new
 * dependency, and outgoing connections by name are rare next to the
 * traffic they carry. Literal addresses never reach this file.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/util.h"
#include "worker/worker.h"

struct resolve_req {
    TAILQ_ENTRY(resolve_req) link;
    char host[256];
    char port[8];
    resolve_fn done;
    void *arg;
    bool cancelled;
    bool queued_in; /* still waiting for the thread */
    struct resolve_result result;
};

TAILQ_HEAD(resolve_queue, resolve_req);

struct resolver {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct resolve_queue in;  /* for the thread */
    struct resolve_queue out; /* answered, for the loop */
    ev_async async;
    struct ev_loop *loop;
};

/* Fill r from getaddrinfo for req's host and port. */
static void resolve_one(struct resolve_req *req)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    struct resolve_result *r = &req->result;

    int rc = getaddrinfo(req->host, req->port, &hints, &res);
    if (rc == EAI_NONAME || rc == EAI_NODATA) {
        r->err = "no such host";
        return;
    }
    if (rc != 0) {
        r->err = rc == EAI_AGAIN ? "name lookup failed, try again"
                                 : "name lookup failed";
        return;
    }
    for (struct addrinfo *ai = res; ai != NULL && r->n < RESOLVE_MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(r->addr[0]))
            continue;
        memcpy(&r->addr[r->n], ai->ai_addr, ai->ai_addrlen);
        r->len[r->n++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    if (r->n == 0)
        r->err = "no usable address";
}

static void *resolver_thread(void *p)
{
    struct resolver *rs = p;

    pthread_mutex_lock(&rs->mu);
    for (;;) {
        while (TAILQ_EMPTY(&rs->in))
            pthread_cond_wait(&rs->cv, &rs->mu);
        struct resolve_req *req = TAILQ_FIRST(&rs->in);
        TAILQ_REMOVE(&rs->in, req, link);
        req->queued_in = false;
        pthread_mutex_unlock(&rs->mu);
        resolve_one(req);
        pthread_mutex_lock(&rs->mu);
        TAILQ_INSERT_TAIL(&rs->out, req, link);
        ev_async_send(rs->loop, &rs->async);
    }
    return NULL;
}

/* Answers are ready: hand each to its caller, on the loop. */
static void resolver_async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct resolver *rs = container_of(a, struct resolver, async);
    struct resolve_queue done = TAILQ_HEAD_INITIALIZER(done);

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&rs->mu);
    TAILQ_CONCAT(&done, &rs->out, link);
    pthread_mutex_unlock(&rs->mu);
    while (!TAILQ_EMPTY(&done)) {
        struct resolve_req *req = TAILQ_FIRST(&done);
        TAILQ_REMOVE(&done, req, link);
        if (!req->cancelled)
            req->done(req->arg, &req->result);
        free(req);
    }
}

static struct resolver *resolver_new(struct worker *w)
{
    struct resolver *rs = calloc(1, sizeof(*rs));

    if (rs == NULL)
        return NULL;
    pthread_mutex_init(&rs->mu, NULL);
    pthread_cond_init(&rs->cv, NULL);
    TAILQ_INIT(&rs->in);
    TAILQ_INIT(&rs->out);
    rs->loop = w->loop;
    ev_async_init(&rs->async, resolver_async_cb);
    ev_async_start(w->loop, &rs->async);
    /* The loop must not keep running for the sake of this watcher. */
    ev_unref(w->loop);
    if (pthread_create(&rs->thread, NULL, resolver_thread, rs) != 0) {
        log_error("%s: cannot start the resolver thread", __func__);
        ev_ref(w->loop);
        ev_async_stop(w->loop, &rs->async);
        free(rs);
        return NULL;
    }
    pthread_detach(rs->thread);
    return rs;
}

struct resolve_req *resolve_start(struct worker *w, const char *host,
                                  const char *port, resolve_fn done,
                                  void *arg)
{
    struct resolve_req *req;

    if (strlen(host) >= sizeof(req->host) || strlen(port) >= sizeof(req->port))
        return NULL;
    if (w->resolver == NULL && (w->resolver = resolver_new(w)) == NULL)
        return NULL;
    req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    strcpy(req->host, host);
    strcpy(req->port, port);
    req->done = done;
    req->arg = arg;
    req->queued_in = true;
    pthread_mutex_lock(&w->resolver->mu);
    TAILQ_INSERT_TAIL(&w->resolver->in, req, link);
    pthread_cond_signal(&w->resolver->cv);
    pthread_mutex_unlock(&w->resolver->mu);
    return req;
}

void resolve_cancel(struct worker *w, struct resolve_req *req)
{
    struct resolver *rs = w->resolver;

    pthread_mutex_lock(&rs->mu);
    if (req->queued_in) {
        TAILQ_REMOVE(&rs->in, req, link);
        free(req);
    } else {
        req->cancelled = true; /* freed when its answer comes back */
    }
    pthread_mutex_unlock(&rs->mu);
}

/*
 * Worker exit: the thread may be inside getaddrinfo and cannot be joined
 * quickly; it ends with the process. Free what the loop side owns.
 */
void resolve_stop(struct worker *w)
{
    struct resolver *rs = w->resolver;

    if (rs == NULL)
        return;
    ev_ref(w->loop);
    ev_async_stop(w->loop, &rs->async);
}
