/*
 * Request deadlines against slow clients. libmicrohttpd's own timeout is
 * an idle timeout: a client that sends one byte of its headers or body
 * every few seconds (slowloris) never trips it. Here every connection
 * carries a deadline: a request must arrive whole (headers and body)
 * within http.timeout of the connection being ready for it. A watchdog
 * thread shuts down the socket of a connection past its deadline; the
 * library then sees the error and closes it through its normal path, so
 * no descriptor is ever closed behind its back.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "http_int.h"
#include "outpost/err.h"

#define WATCH_INTERVAL_MS 200

struct http_conn {
    int fd;
    _Atomic int64_t deadline_ms; /* 0: disarmed (a request is being served) */
    bool answered;               /* a request on it completed */
    struct http_conn *prev, *next;
};

struct http_deadlines {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    int64_t timeout_ms;
    struct http_conn *head;
    struct op_counter *cut;
    struct op_counter *unused; /* closed without a completed request */
};

static int64_t now_ms(void)
{
    return op_time_mono_ns() / 1000000;
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void http__deadline_arm(struct op_http *h, struct MHD_Connection *conn)
{
    struct http_conn *c = conn_of(conn);
    if (!c)
        return;
    c->answered = true; /* called when a request completes */
    atomic_store(&c->deadline_ms, now_ms() + h->deadlines->timeout_ms);
}

bool http__deadline_disarm(struct MHD_Connection *conn)
{
    struct http_conn *c = conn_of(conn);
    /* The deadline is always armed while a request arrives; 0 here means
     * the watchdog took it (and shut the socket down) first. */
    return !c || atomic_exchange(&c->deadline_ms, 0) != 0;
}

void http__deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
    struct http_deadlines *dl = ((struct op_http *)cls)->deadlines;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        http__auth_on_connection(cls, conn);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct http_conn *c = op_calloc(1, sizeof *c);
        *socket_context = c;
        if (!c || !ci)
            return; /* untracked: the idle timeout still applies */
        c->fd = ci->connect_fd;
        atomic_store(&c->deadline_ms, now_ms() + dl->timeout_ms);
        pthread_mutex_lock(&dl->mu);
        c->next = dl->head;
        if (dl->head)
            dl->head->prev = c;
        dl->head = c;
        pthread_mutex_unlock(&dl->mu);
        return;
    }
    struct http_conn *c = *socket_context;
    if (!c)
        return;
    /* No request ever completed: a failed TLS handshake (a refused client
     * certificate), a client cut before its first request, or one that
     * connected and sent nothing. libmicrohttpd reports none of these. */
    if (!c->answered)
        op_counter_add(dl->unused, 1);
    pthread_mutex_lock(&dl->mu);
    if (c->prev)
        c->prev->next = c->next;
    else if (dl->head == c)
        dl->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&dl->mu);
    op_free(c);
    *socket_context = NULL;
}

static void *watch(void *arg)
{
    struct http_deadlines *dl = arg;
    pthread_mutex_lock(&dl->mu);
    while (!dl->stop) {
        int64_t now = now_ms();
        for (struct http_conn *c = dl->head; c; c = c->next) {
            int64_t d = atomic_load(&c->deadline_ms);
            /* Only one of the watchdog and the request's dispatch takes an
             * armed deadline: a request that started being served is never
             * cut (its answer could be lost after its write committed). */
            if (d && d < now && atomic_compare_exchange_strong(&c->deadline_ms, &d, 0)) {
                shutdown(c->fd, SHUT_RDWR);
                op_counter_add(dl->cut, 1);
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&dl->wake, &dl->mu, &ts);
    }
    pthread_mutex_unlock(&dl->mu);
    return NULL;
}

int http__deadlines_start(struct op_http *h)
{
    struct http_deadlines *dl = op_calloc(1, sizeof *dl);
    if (!dl)
        return OP_ENOMEM;
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->wake, NULL);
    dl->timeout_ms = h->cfg->http_timeout_ms;
    dl->unused = op_metrics_counter(
        "outpost_http_connections_unused_total", NULL,
        "Connections closed before any request completed (failed TLS handshakes, clients cut "
        "before their first request, connections that sent nothing)");
    dl->cut = op_metrics_counter("outpost_http_slow_requests_cut_total", NULL,
                                 "Connections closed because a request did not arrive whole "
                                 "within http.timeout");
    if (pthread_create(&dl->thread, NULL, watch, dl)) {
        op_free(dl);
        return OP_ENOMEM;
    }
    h->deadlines = dl;
    return OP_OK;
}

void http__deadlines_stop(struct op_http *h)
{
    struct http_deadlines *dl = h->deadlines;
    if (!dl)
        return;
    pthread_mutex_lock(&dl->mu);
    dl->stop = true;
    pthread_cond_signal(&dl->wake);
    pthread_mutex_unlock(&dl->mu);
    pthread_join(dl->thread, NULL);
    pthread_mutex_destroy(&dl->mu);
    pthread_cond_destroy(&dl->wake);
    op_free(dl);
    h->deadlines = NULL;
}
