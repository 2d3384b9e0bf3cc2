/* http_watchdog: the HTTP server's deadlines for slow clients (see http_server.h): every open
 * connection is tracked with its phase (awaiting its first request, receiving a request, handled,
 * idle between requests) and the time by which that phase must end; a thread shuts down the socket
 * of each connection past its deadline. libmicrohttpd's own idle timeout starts over with every byte
 * received, so a client sending one byte at a time could otherwise hold a connection (and, with a
 * thread per connection, a thread) forever. */
#include <stdlib.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/clock.h"
#include "net/http_server_internal.h"

static http_tracked_conn *tracked_of(struct MHD_Connection *mhd)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* Shuts down every connection past its deadline. Locked. */
static void watchdog_sweep(http_watchdog *w, double now)
{
    for (http_tracked_conn *t = w->head; t; t = t->next) {
        if (t->deadline <= 0 || now < t->deadline || t->fd < 0)
            continue;
        /* the connection's thread sees the end of the stream and closes it (the fd stays open until
         * libmicrohttpd reported the close, which takes this lock) */
        shutdown(t->fd, SHUT_RDWR);
        t->deadline = 0;
        w->closed++;
    }
}

static void *watchdog_main(void *arg)
{
    http_watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        watchdog_sweep(w, clock_mono());
        clock_cond_wait_until(&w->cond, &w->lock, clock_mono() + HTTP_WATCHDOG_TICK_S);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

bool http_watchdog_start(http_watchdog *w, double request_timeout_s, double idle_timeout_s)
{
    pthread_mutex_init(&w->lock, NULL);
    clock_cond_init(&w->cond);
    w->head = NULL;
    w->count = 0;
    w->closed = 0;
    w->stop = false;
    w->request_timeout_s = request_timeout_s;
    w->idle_timeout_s = idle_timeout_s;
    w->running = pthread_create(&w->thread, NULL, watchdog_main, w) == 0;
    return w->running;
}

void http_watchdog_stop(http_watchdog *w)
{
    if (w->running) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    for (http_tracked_conn *t = w->head; t;) {
        http_tracked_conn *next = t->next;
        free(t);
        t = next;
    }
    w->head = NULL;
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

void http_watchdog_opened(http_watchdog *w, struct MHD_Connection *mhd, void **socket_context)
{
    http_tracked_conn *t = xcalloc(1, sizeof *t);
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
    t->fd = info ? info->connect_fd : -1;
    t->phase = HTTP_CONN_AWAITING;
    t->deadline = clock_mono() + w->request_timeout_s;
    pthread_mutex_lock(&w->lock);
    t->next = w->head;
    if (w->head)
        w->head->prev = t;
    w->head = t;
    w->count++;
    pthread_mutex_unlock(&w->lock);
    *socket_context = t;
}

void http_watchdog_closed(http_watchdog *w, void **socket_context)
{
    http_tracked_conn *t = *socket_context;
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->count--;
    pthread_mutex_unlock(&w->lock);
    free(t);
    *socket_context = NULL;
}

void http_watchdog_request_line(http_watchdog *w, struct MHD_Connection *mhd)
{
    http_tracked_conn *t = tracked_of(mhd);
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    if (t->phase != HTTP_CONN_AWAITING) /* the first request keeps the deadline set at the connection's start */
        t->deadline = clock_mono() + w->request_timeout_s;
    t->phase = HTTP_CONN_RECEIVING;
    pthread_mutex_unlock(&w->lock);
}

void http_watchdog_handling(http_watchdog *w, struct MHD_Connection *mhd)
{
    http_tracked_conn *t = tracked_of(mhd);
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    t->phase = HTTP_CONN_HANDLING;
    t->deadline = 0;
    pthread_mutex_unlock(&w->lock);
}

void http_watchdog_answered(http_watchdog *w, struct MHD_Connection *mhd)
{
    http_tracked_conn *t = tracked_of(mhd);
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    t->phase = HTTP_CONN_IDLE;
    t->deadline = clock_mono() + w->idle_timeout_s;
    pthread_mutex_unlock(&w->lock);
}

void http_watchdog_sending(http_watchdog *w, struct MHD_Connection *mhd)
{
    http_tracked_conn *t = tracked_of(mhd);
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    t->phase = HTTP_CONN_SENDING;
    t->deadline = clock_mono() + w->idle_timeout_s;
    pthread_mutex_unlock(&w->lock);
}

unsigned long http_watchdog_closed_count(http_watchdog *w)
{
    pthread_mutex_lock(&w->lock);
    unsigned long n = w->closed;
    pthread_mutex_unlock(&w->lock);
    return n;
}
