/*
 * mhd_suspend.c: the ceiling of the HTTP library in the mode outpost drives
 * it, for bench/http/run.sh (server "mhd-suspend"). libmicrohttpd with its
 * epoll internal thread, as outpost runs it; every POST is suspended, handed
 * to a second thread and resumed from there, the way outpost answers only
 * after the store's commit. No parsing, no store: the difference between
 * this and outpost is outpost's own cost, and the difference between this
 * and nginx is what deferring an answer costs in this library.
 *
 * Usage: bench_mhd_suspend PORT   (127.0.0.1; SIGTERM or SIGINT stops it)
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct req {
    struct MHD_Connection *conn;
    bool answered_later;
    struct req *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct req *queue;
static struct MHD_Response *created, *ready;

/* Takes everything queued at once, like the store's writer takes a group. */
static void *resumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!queue)
            pthread_cond_wait(&cv, &mu);
        struct req *group = queue;
        queue = NULL;
        pthread_mutex_unlock(&mu);
        for (struct req *r = group, *next; r; r = next) {
            next = r->next;
            r->answered_later = true;
            MHD_resume_connection(r->conn);
        }
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    (void)cls, (void)url, (void)version, (void)data;
    if (strcmp(method, "POST") != 0)
        return MHD_queue_response(conn, MHD_HTTP_OK, ready);
    struct req *r = *ctx;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = conn;
        *ctx = r;
        return MHD_YES;
    }
    if (*size) { /* the body is read and dropped */
        *size = 0;
        return MHD_YES;
    }
    if (r->answered_later)
        return MHD_queue_response(conn, MHD_HTTP_CREATED, created);
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&mu);
    bool was_empty = queue == NULL;
    r->next = queue;
    queue = r;
    if (was_empty)
        pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    free(*ctx);
    *ctx = NULL;
}

static struct MHD_Response *json(const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r)
        MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || end == argv[1] || *end || port < 1 || port > 65535) {
        fprintf(stderr, "usage: %s PORT (1-65535)\n", argv[0]);
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the threads inherit it */
    created = json("{\"accepted\":1}");
    ready = json("{\"status\":\"ready\"}");
    pthread_t t;
    if (!created || !ready || pthread_create(&t, NULL, resumer, NULL) != 0)
        return 1;
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_LIMIT, 1024, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot serve on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
