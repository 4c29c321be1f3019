/*
 * The HTTP server: libmicrohttpd in its epoll internal-thread mode (see
 * docs/design.md for the choice). This file owns the request lifecycle:
 * the first call of the access handler routes the request and checks its
 * headers, later calls collect the body under its cap, the last one runs
 * the route's handler. Handlers that need the store suspend the
 * connection; the store's thread builds the response and resumes it, so
 * the event loop never waits for a disk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_int.h"
#include "outpost/sync.h"
#include "outpost/err.h"

static const double latency_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   1 };
static const double batch_bounds[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000 };

/* The statuses we count per route; anything else lands in the last slot. */
static const unsigned counted_status[HTTP_STATUS_SLOTS] = {
    200, 201, 204, 400, 401, 403, 404, 405, 408, 411, 413, 415, 422, 429, 500, 503, 507, 0,
};

static int status_slot(unsigned status)
{
    for (int i = 0; i < HTTP_STATUS_SLOTS - 1; i++)
        if (counted_status[i] == status)
            return i;
    return HTTP_STATUS_SLOTS - 1;
}

static void count_request(struct op_http *h, int route_idx, unsigned status)
{
    struct http_route_stats *st = &h->stats[route_idx];
    int slot = status_slot(status);
    struct op_counter *c = atomic_load_explicit(&st->by_status[slot], memory_order_acquire);
    if (!c) {
        char labels[160];
        char code[16];
        if (slot == HTTP_STATUS_SLOTS - 1)
            snprintf(code, sizeof code, "other");
        else
            snprintf(code, sizeof code, "%u", status);
        snprintf(labels, sizeof labels, "route=\"%s\",code=\"%s\"", http__route_label(route_idx),
                 code);
        /* The registry returns the same series to racing callers. */
        c = op_metrics_counter("outpost_http_requests_total", labels,
                               "HTTP requests answered, by route and status code");
        atomic_store_explicit(&st->by_status[slot], c, memory_order_release);
    }
    op_counter_add(c, 1);
}

const char *http__query(struct http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

void http__suspend(struct http_req *r)
{
    r->suspended = true;
    MHD_suspend_connection(r->conn);
}

void http__resume(struct http_req *r)
{
    MHD_resume_connection(r->conn);
}

/* The store's writer thread calls this when the request's write is done. */
static void write_done_default(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc)
        http__reply_store_error(r, w->rc);
    else
        http__reply_static(r, 200, "{}", "application/json");
    http__resume(r);
}

/* Counts r as accepted (its handler may use the store) unless the node is
 * closing, in which case it answers 503. Every handler runs inside this,
 * not only those that submit work: /readyz reads the store too. The
 * increment comes before the check so that the drain, which sets closing
 * and then waits for pending to reach zero, cannot miss a request (both
 * are sequentially consistent atomics). */
static bool enter_pending(struct http_req *r)
{
    atomic_fetch_add(&r->srv->pending, 1);
    r->pending = true;
    if (atomic_load(&r->srv->closing)) {
        atomic_fetch_sub(&r->srv->pending, 1);
        r->pending = false;
        http__reply_errorf(r, 503, "shutting_down", NULL, "the node is shutting down");
        http__reply_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        return false;
    }
    return true;
}

void http__submit_write(struct http_req *r, op_store_done_fn *done)
{
    r->write.done = done ? done : write_done_default;
    r->write.ctx = r;
    /* Suspend before submitting: the writer may finish before submit
     * returns, and resume must never precede suspend. */
    http__suspend(r);
    int rc = op_store_submit(r->srv->store, &r->write);
    if (rc) {
        http__reply_store_error(r, rc);
        http__resume(r);
    }
}

void http__submit_read(struct http_req *r, op_store_read_fn *fn)
{
    r->job.fn = fn;
    r->job.ctx = r;
    http__suspend(r);
    int rc = op_store_read_submit(r->srv->store, &r->job);
    if (rc) {
        http__reply_store_error(r, rc);
        http__resume(r);
    }
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return true; /* a missing Content-Type is read as JSON */
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' ||
                                                           ct[n] == ' ');
}

struct cl_scan {
    int count;
    const char *first;
    bool differ;
};

static enum MHD_Result scan_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    struct cl_scan *sc = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        return MHD_YES;
    if (sc->count++ == 0)
        sc->first = value;
    else if (strcmp(sc->first, value))
        sc->differ = true;
    return MHD_YES;
}

/* Two different Content-Length headers mean two readings of where the
 * body ends: behind a proxy that is request smuggling, and RFC 9112 6.3
 * makes it an error. The library takes one of them silently. */
static bool conflicting_lengths(struct MHD_Connection *conn)
{
    struct cl_scan sc = { 0, NULL, false };
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_content_length, &sc);
    return sc.differ;
}

static bool is_batch_type(const char *ct)
{
    size_t n = strlen("application/x-outpost-batch");
    return ct && strncasecmp(ct, "application/x-outpost-batch", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Header checks for routes that take a body; sets a reply on failure. */
static void check_body_headers(struct http_req *r)
{
    const struct op_config *cfg = r->srv->cfg;
    bool batch = r->route->body == HB_BATCH;
    int64_t max = batch ? cfg->receiver_max_body : cfg->http_max_body;
    r->body.max = (size_t)max;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!cl && !(te && strcasestr(te, "chunked"))) {
        http__reply_errorf(r, 411, "length_required", NULL,
                           "a request body needs Content-Length or chunked encoding");
        return;
    }
    int64_t len;
    if (cl && (op_parse_i64(cl, strlen(cl), &len) || len > max)) {
        http__reply_errorf(r, 413, "body_too_large", NULL, "the body is larger than %lld bytes",
                           (long long)max);
        return;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (batch ? !is_batch_type(ct) : !is_json_type(ct))
        http__reply_errorf(r, 415, "unsupported_media_type", NULL,
                           "Content-Type must be %s, not %.64s",
                           batch ? "application/x-outpost-batch" : "application/json", ct);
}

static struct http_req *req_create(struct op_http *h, struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
    struct http_req *r = op_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = h;
    r->conn = conn;
    r->url = url;
    r->t_start_ns = op_time_mono_ns();
    r->method = http__method_parse(method);
    r->route_idx = http__nroutes; /* "other" until routed */
    op_buf_init(&r->body, (size_t)h->cfg->http_max_body);
    atomic_fetch_add(&h->inflight, 1);

    char allow[64] = "";
    if (atomic_load(&h->closing)) {
        http__reply_errorf(r, 503, "shutting_down", NULL, "the node is shutting down");
        http__reply_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        return r;
    }
    r->route = http__route_find(r->method, url, &r->param, &r->route_idx, allow, sizeof allow);
    if (conflicting_lengths(conn)) {
        http__reply_errorf(r, 400, "invalid_request", NULL,
                           "conflicting Content-Length headers");
        http__reply_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    } else if (!r->route && allow[0]) {
        http__reply_errorf(r, 405, "method_not_allowed", NULL, "%s is not allowed on %.128s",
                           method, url);
        http__reply_add_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    } else if (!r->route) {
        http__reply_errorf(r, 404, "not_found", NULL, "no route for %.16s %.128s", method, url);
    } else if (!http__authorize(r)) {
        /* refused: the reply is set */
    } else if (r->route->body != HB_NONE) {
        check_body_headers(r);
    }
    return r;
}

void http__body_release(struct http_req *r)
{
    atomic_fetch_sub(&r->srv->body_bytes, (int64_t)r->body_held);
    r->body_held = 0;
    op_buf_fini(&r->body);
}

/* Takes a chunk of the body, within the request's cap (413) and the
 * server-wide budget of body bytes held (503): with many connections each
 * sending a large body, memory stays bounded by http.max_inflight, not by
 * connections x http.max_body. After a failure the rest is discarded. */
static void take_body(struct http_req *r, const char *p, size_t n)
{
    if (r->body_err)
        return;
    struct op_http *h = r->srv;
    int64_t held = atomic_fetch_add(&h->body_bytes, (int64_t)n) + (int64_t)n;
    if (held > h->cfg->http_max_inflight) {
        atomic_fetch_sub(&h->body_bytes, (int64_t)n);
        r->body_err = 503;
    } else {
        r->body_held += n;
        int rc = op_buf_append(&r->body, p, n);
        if (rc)
            r->body_err = rc == OP_ETOOBIG ? 413 : 503;
    }
    if (r->body_err)
        http__body_release(r);
}

static void req_free(struct http_req *r)
{
    http__body_release(r);
    http__readings_free(&r->readings);
    op_free(r->owned[0]);
    op_free(r->owned[1]);
    if (r->batch_in) {
        op_sync_batch_in_free(r->batch_in);
        op_free(r->batch_in);
    }
    if (r->resp)
        MHD_destroy_response(r->resp);
    op_free(r);
}

static enum MHD_Result queue_reply(struct http_req *r)
{
    if (!r->resp)
        http__reply_errorf(r, 500, "internal", NULL, "no response was produced");
    if (!r->resp)
        return MHD_NO; /* out of memory even for the error: drop the connection */
    r->queued = true;
    enum MHD_Result ok = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct op_http *h = cls;
    struct http_req *r = *con_cls;
    if (!r) {
        r = req_create(h, conn, url, method);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        /* Errors found in the headers are answered at once; the rest of any
         * body is then discarded by the library. */
        return r->resp ? queue_reply(r) : MHD_YES;
    }
    if (r->queued) {
        *upload_size = 0; /* answered from the headers: drop the body */
        return MHD_YES;
    }
    if (*upload_size) {
        take_body(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->suspended || r->status)
        return queue_reply(r); /* resumed after async work */
    if (r->body_err == 413) {
        http__reply_errorf(r, 413, "body_too_large", NULL, "the body is larger than %zu bytes",
                           r->body.max);
        return queue_reply(r);
    }
    if (r->body_err) {
        http__reply_errorf(r, 503, "overloaded", NULL,
                           "too many request bodies in flight; retry after the Retry-After delay");
        return queue_reply(r);
    }
    if (!http__deadline_disarm(conn))
        return MHD_NO; /* the watchdog cut it while it arrived */
    if (!enter_pending(r))
        return queue_reply(r);
    r->route->fn(r);
    /* A suspended request is answered when it is resumed: the library
     * calls us again and the branch above queues the reply. */
    return r->suspended ? MHD_YES : queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct op_http *h = cls;
    struct http_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    count_request(h, r->route_idx, r->status ? r->status : 499);
    if (r->pending)
        atomic_fetch_sub(&h->pending, 1);
    http__deadline_arm(h, conn);
    op_histogram_observe(h->latency_hist, (double)(op_time_mono_ns() - r->t_start_ns) / 1e9);
    atomic_fetch_sub(&h->inflight, 1);
    req_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    OP_DEBUG("http", "%s", msg);
}

static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *v6)
{
    struct addrinfo *res;
    uint16_t port;
    if (op_config_listen_resolve(listen, &res, &port))
        return OP_EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    *v6 = res->ai_family == AF_INET6;
    if (*v6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    freeaddrinfo(res);
    return OP_OK;
}

int op_http_listen(const struct op_config *cfg, int *fd)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    bool v6 = false;
    memset(&ss, 0, sizeof ss);
    if (resolve(cfg->listen, &ss, &len, &v6)) {
        OP_ERROR("http", "cannot use listen address '%s' (expected HOST:PORT)", cfg->listen);
        return OP_EINVAL;
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (v6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(s, (struct sockaddr *)&ss, len) || listen(s, SOMAXCONN)) {
        OP_ERROR("http", "cannot listen on %s: %s", cfg->listen, strerror(errno));
        if (s >= 0)
            close(s);
        return OP_EIO;
    }
    *fd = s;
    return OP_OK;
}

bool op_http_listen_is_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static double gauge_body_bytes(void *ctx)
{
    return (double)atomic_load(&((struct op_http *)ctx)->body_bytes);
}

static void register_metrics(struct op_http *h)
{
    op_metrics_gauge("outpost_http_body_bytes", NULL,
                     "Request body bytes held (capped by http.max_inflight)", gauge_body_bytes, h);
    h->readings_accepted = op_metrics_counter("outpost_ingest_readings_total", NULL,
                                              "Readings acknowledged (committed) over HTTP");
    h->batch_hist = op_metrics_histogram("outpost_ingest_batch_readings", NULL,
                                         "Readings per accepted ingest request", batch_bounds,
                                         (int)(sizeof batch_bounds / sizeof batch_bounds[0]));
    h->latency_hist = op_metrics_histogram(
        "outpost_http_request_duration_seconds", NULL, "Time from request headers to response",
        latency_bounds, (int)(sizeof latency_bounds / sizeof latency_bounds[0]));
}

static void free_server(struct op_http *h)
{
    http__streams_stop(h);
    http__auth_stop(h);
    http__deadlines_stop(h);
    op_free(h->stats);
    op_free(h);
}

int op_http_start(struct op_http **out, const struct op_config *cfg, struct op_store *store,
                  const struct op_http_sec *sec, int listen_fd)
{
    struct op_http *h = op_calloc(1, sizeof *h);
    if (!h) {
        close(listen_fd);
        return OP_ENOMEM;
    }
    h->cfg = cfg;
    h->store = store;
    h->auth = sec ? sec->auth : NULL;
    h->tls = sec ? sec->tls : NULL;
    h->seal_keys = sec ? sec->seal_keys : NULL;
    h->nseal_keys = sec ? sec->nseal_keys : 0;
    h->received = op_metrics_counter("outpost_receiver_readings_total", "result=\"stored\"",
                                     "readings in uplink batches received, by outcome");
    h->received_dup = op_metrics_counter("outpost_receiver_readings_total",
                                         "result=\"duplicate\"",
                                         "readings in uplink batches received, by outcome");
    h->received_bad = op_metrics_counter("outpost_receiver_bad_batches_total", NULL,
                                         "uplink batches refused (bad header, seal or payload)");
    h->stats = op_calloc((size_t)http__nroutes + 1, sizeof *h->stats);
    if (!h->stats) {
        op_free(h);
        close(listen_fd);
        return OP_ENOMEM;
    }
    register_metrics(h);
    if (http__deadlines_start(h) || http__auth_start(h) || http__streams_start(h)) {
        free_server(h);
        close(listen_fd);
        return OP_ENOMEM;
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const struct op_tls_server *tls = h->tls;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned timeout_s = (unsigned)((cfg->http_timeout_ms + 999) / 1000);
    /* The logger comes first so that the library logs through it from the
     * first option on. */
    struct MHD_OptionItem opts[16] = {
        { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h },
        { MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->http_max_conns, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout_s, NULL },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http__deadline_notify, h },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)HTTP_CONN_MEMORY, NULL },
    };
    int n = 7; /* the rest are optional; the zeroed tail is MHD_OPTION_END */
    if (cfg->http_threads > 1)
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
                                             (intptr_t)cfg->http_threads, NULL };
    if (tls) {
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert_pem };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key_pem };
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                             (void *)tls->priorities };
    }
    if (tls && tls->client_ca_pem)
        opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, tls->client_ca_pem };
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        /* The library closes a listen socket it was given, also here. */
        OP_ERROR("http", "cannot serve on %s (TLS or thread set-up failed)", cfg->listen);
        free_server(h);
        return OP_EIO;
    }
    h->port = bound_port(listen_fd);
    *out = h;
    return OP_OK;
}

uint16_t op_http_port(const struct op_http *h)
{
    return h->port;
}

void op_http_quiesce(struct op_http *h)
{
    atomic_store(&h->closing, true);
    http__streams_close(h);
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int op_http_inflight(const struct op_http *h)
{
    return atomic_load(&((struct op_http *)h)->inflight);
}

int op_http_pending(const struct op_http *h)
{
    return atomic_load(&((struct op_http *)h)->pending);
}

void op_http_stop(struct op_http *h)
{
    if (!h)
        return;
    http__streams_close(h);
    MHD_stop_daemon(h->daemon);
    free_server(h);
}

bool op_http_tls(const struct op_http *h)
{
    return h->tls != NULL;
}
