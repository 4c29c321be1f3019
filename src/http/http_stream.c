/*
 * GET /v1/alerts/stream: alert events as Server-Sent Events. Each
 * subscriber is a response whose body comes from a callback
 * (MHD_create_response_from_callback) reading the subscriber's bounded
 * buffer. With nothing to send, the callback suspends the connection, so
 * an idle stream costs the event loop nothing; the rules thread
 * (op_http_alerts_publish), the replay's read job and the keepalive ticker
 * append to the buffer and resume it. Nothing here ever blocks the HTTP
 * thread: a client too slow to take what it is sent is cut once its buffer
 * holds HTTP_STREAM_BUFFER_MAX bytes, and counted.
 *
 * Resuming after Last-Event-ID (or ?since_id=) without a gap or a
 * duplicate: a replaying subscriber reads the store in pages of ids after
 * its cursor (last_id) through read jobs and ignores live events; it turns
 * live only when a page comes back short and no event newer than its
 * cursor has been published yet (published_max, checked under the lock
 * that publishing takes). An event is published after its commit, so one
 * published later is delivered live, one published earlier is in the
 * store for the next page. Live events at or below last_id are skipped.
 *
 * Locking: one mutex (hub->mu) guards the list and every subscriber. The
 * callback suspends under it, so a resume can never come first; resumes
 * are issued after unlocking (a suspended connection cannot finish, so its
 * subscriber stays valid until resumed).
 */
#include <microhttpd.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "http_int.h"
#include "outpost/err.h"

#define STREAM_BLOCK 16384       /* most bytes the library asks for at once */
#define STREAM_PAGE 256          /* events per replay read */
#define STREAM_TICK_MS 1000      /* how often the keepalive ticker looks */
#define STREAM_EVENT_MAX (64u << 10)
static const char stream_hello[] = "retry: 2000\n\n"; /* EventSource's reconnect delay */
static const char keepalive[] = ": keepalive\n\n";

enum sub_state { SUB_REPLAY, SUB_LIVE };

struct http_sub {
    struct http_streams *hub;
    struct MHD_Connection *conn;
    struct op_store_read_job job; /* the replay's page read */
    struct op_buf out;            /* bytes not yet taken by the library, from off */
    size_t off;
    int64_t last_id;              /* the newest event id framed for this client */
    int64_t last_write_ms;        /* when bytes last went out (or a keepalive was queued) */
    enum sub_state state;
    bool suspended;               /* by the callback; whoever clears it resumes */
    bool job_inflight;            /* a replay read holds the subscriber */
    bool dead;                    /* fell too far behind: end with an error */
    bool orphan;                  /* the response is gone; the job frees it */
    struct http_sub *prev, *next;
};

struct http_streams {
    struct op_http *h;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stops the ticker */
    pthread_t ticker;
    bool started, stop, closing;
    struct http_sub *head;
    int n;
    int64_t published_max; /* the newest event id published so far */
    struct op_counter *slow;
};

static int64_t mono_ms(void)
{
    return op_time_mono_ns() / 1000000;
}

/* ---- framing ------------------------------------------------------------ */

int http__sse_frame(struct op_buf *out, int64_t id, const char *json, size_t len)
{
    size_t mark = out->len;
    int rc = op_buf_appendf(out, "id: %lld\nevent: alert\n", (long long)id);
    size_t i = 0;
    do {
        const char *nl = memchr(json + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - json) : len;
        if (rc == OP_OK)
            rc = op_buf_appends(out, "data: ");
        if (rc == OP_OK)
            rc = op_buf_append(out, json + i, end - i);
        if (rc == OP_OK)
            rc = op_buf_appends(out, "\n");
        i = end + 1;
    } while (rc == OP_OK && i <= len);
    if (rc == OP_OK)
        rc = op_buf_appends(out, "\n");
    if (rc != OP_OK) { /* all or nothing: a half event would corrupt the stream */
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

/* Moves the unsent bytes to the front, so the cap counts only them. */
static void sub_compact(struct http_sub *s)
{
    if (!s->off)
        return;
    memmove(s->out.data, s->out.data + s->off, s->out.len - s->off + 1);
    s->out.len -= s->off;
    s->off = 0;
}

/* Marks s for a resume if it is suspended and nothing else holds it;
 * returns its connection (to resume after unlocking) or NULL. */
static struct MHD_Connection *take_resume(struct http_sub *s)
{
    if (!s->suspended || s->job_inflight)
        return NULL;
    s->suspended = false;
    return s->conn;
}

static void resume_all(struct MHD_Connection **conns, int n)
{
    for (int i = 0; i < n; i++)
        MHD_resume_connection(conns[i]);
}

/* ---- the body callback (the event-loop thread) ---------------------------- */

static void replay_job(struct op_store_reader *rd, struct op_store_read_job *job);

static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_sub *s = cls;
    struct http_streams *hub = s->hub;
    ssize_t ret = 0;
    pthread_mutex_lock(&hub->mu);
    size_t avail = s->out.len - s->off;
    if (s->dead) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (hub->closing) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, s->out.data + s->off, n);
        s->off += n;
        if (s->off == s->out.len) {
            op_buf_reset(&s->out);
            s->off = 0;
        }
        s->last_write_ms = mono_ms();
        ret = (ssize_t)n;
    } else {
        /* Nothing to send: read the next page of the replay, or wait for
         * the next event. The job cannot resume us before we suspend: it
         * needs the lock. */
        if (s->state == SUB_REPLAY && !s->job_inflight) {
            s->job = (struct op_store_read_job){ .fn = replay_job, .ctx = s };
            s->job_inflight = op_store_read_submit(hub->h->store, &s->job) == OP_OK;
            if (!s->job_inflight) /* the store is busy or closing: the client reconnects */
                ret = MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (ret == 0) {
            s->suspended = true;
            MHD_suspend_connection(s->conn);
        }
    }
    pthread_mutex_unlock(&hub->mu);
    return ret;
}

static void sub_destroy(struct http_sub *s)
{
    op_buf_fini(&s->out);
    op_free(s);
}

/* The library is done with the response (the connection ended). */
static void sub_free(void *cls)
{
    struct http_sub *s = cls;
    struct http_streams *hub = s->hub;
    pthread_mutex_lock(&hub->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hub->n--;
    bool job = s->job_inflight;
    s->orphan = job;
    pthread_mutex_unlock(&hub->mu);
    if (!job)
        sub_destroy(s);
}

/* ---- replay (a reader thread) ---------------------------------------------- */

struct page {
    struct op_buf buf, scratch;
    int64_t last_id;
    int n;
    bool full;
};

static int page_one(void *ctx, const struct op_store_alert *a)
{
    struct page *p = ctx;
    op_buf_reset(&p->scratch);
    if (op_http_alert_json(a, &p->scratch) != OP_OK ||
        http__sse_frame(&p->buf, a->id, p->scratch.data, p->scratch.len) != OP_OK) {
        p->full = true; /* the rest comes with the next page */
        return 1;
    }
    p->last_id = a->id;
    p->n++;
    return 0;
}

static void replay_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_sub *s = job->ctx;
    struct http_streams *hub = s->hub;
    pthread_mutex_lock(&hub->mu);
    struct page p = { .last_id = s->last_id };
    pthread_mutex_unlock(&hub->mu);
    op_buf_init(&p.buf, HTTP_STREAM_BUFFER_MAX / 2);
    op_buf_init(&p.scratch, STREAM_EVENT_MAX);
    struct op_alert_query q = { .since = INT64_MIN, .after_id = p.last_id, .limit = STREAM_PAGE };
    int rc = op_store_query_alerts(rd, &q, page_one, &p);
    if (rc >= 0 && p.full && p.n == 0)
        rc = OP_ETOOBIG; /* one event larger than a page: cannot progress */

    pthread_mutex_lock(&hub->mu);
    struct MHD_Connection *resume = NULL;
    s->job_inflight = false;
    if (s->orphan) {
        pthread_mutex_unlock(&hub->mu);
        sub_destroy(s);
        goto out;
    }
    sub_compact(s);
    if (rc < 0 || op_buf_append(&s->out, p.buf.data, p.buf.len) != OP_OK) {
        s->dead = true;
    } else {
        s->last_id = p.last_id;
        if (!p.full && p.n < STREAM_PAGE && hub->published_max <= s->last_id)
            s->state = SUB_LIVE;
    }
    resume = take_resume(s);
    pthread_mutex_unlock(&hub->mu);
    if (resume)
        MHD_resume_connection(resume);
out:
    op_buf_fini(&p.buf);
    op_buf_fini(&p.scratch);
}

/* ---- publishing (the rules thread) ------------------------------------------ */

struct framed {
    int64_t id;
    size_t off, len;
};

/* Appends the events newer than s's cursor; false when s is over its cap. */
static bool sub_feed(struct http_sub *s, const struct framed *f, size_t n, const char *bytes)
{
    sub_compact(s);
    for (size_t i = 0; i < n; i++) {
        if (f[i].id <= s->last_id)
            continue;
        if (op_buf_append(&s->out, bytes + f[i].off, f[i].len) != OP_OK)
            return false;
        s->last_id = f[i].id;
    }
    return true;
}

/* Frames every event once, for all subscribers. */
static int frame_all(const struct op_store_alert *ev, size_t n, struct framed *f,
                     struct op_buf *bytes)
{
    struct op_buf json;
    op_buf_init(&json, STREAM_EVENT_MAX);
    int rc = OP_OK;
    for (size_t i = 0; i < n && rc == OP_OK; i++) {
        op_buf_reset(&json);
        f[i].id = ev[i].id;
        f[i].off = bytes->len;
        rc = op_http_alert_json(&ev[i], &json);
        if (rc == OP_OK)
            rc = http__sse_frame(bytes, ev[i].id, json.data, json.len);
        f[i].len = bytes->len - f[i].off;
    }
    op_buf_fini(&json);
    return rc;
}

static void deliver(struct http_streams *hub, const struct framed *f, size_t n,
                    const char *bytes)
{
    struct MHD_Connection *resume[HTTP_STREAM_CLIENTS_MAX];
    int nresume = 0, cut = 0;
    pthread_mutex_lock(&hub->mu);
    for (struct http_sub *s = hub->head; s; s = s->next) {
        if (s->state != SUB_LIVE || s->dead)
            continue;
        if (!sub_feed(s, f, n, bytes)) {
            s->dead = true;
            cut++;
        }
        struct MHD_Connection *c = take_resume(s);
        if (c && nresume < HTTP_STREAM_CLIENTS_MAX)
            resume[nresume++] = c;
    }
    pthread_mutex_unlock(&hub->mu);
    resume_all(resume, nresume);
    if (cut) {
        op_counter_add(hub->slow, (uint64_t)cut);
        OP_WARN("http", "alert stream: %d client(s) more than %u bytes behind: disconnected",
                cut, HTTP_STREAM_BUFFER_MAX);
    }
}

void op_http_alerts_publish(void *ctx, const struct op_store_alert *events, size_t n)
{
    struct http_streams *hub = ((struct op_http *)ctx)->streams;
    if (!hub || n == 0)
        return;
    pthread_mutex_lock(&hub->mu);
    for (size_t i = 0; i < n; i++)
        if (events[i].id > hub->published_max)
            hub->published_max = events[i].id;
    bool any = hub->n > 0 && !hub->closing;
    pthread_mutex_unlock(&hub->mu);
    if (!any)
        return;
    struct framed *f = op_calloc(n, sizeof *f);
    struct op_buf bytes;
    op_buf_init(&bytes, HTTP_RESPONSE_MAX);
    if (f && frame_all(events, n, f, &bytes) == OP_OK)
        deliver(hub, f, n, bytes.data);
    else
        OP_ERROR("http", "alert stream: cannot frame %zu event(s): out of memory", n);
    op_buf_fini(&bytes);
    op_free(f);
}

/* ---- the route -------------------------------------------------------------- */

/* Where the client resumes: Last-Event-ID (sent by a reconnecting
 * EventSource) over ?since_id=; -1 for live only. False on a bad value. */
static bool resume_point(struct http_req *r, int64_t *since)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    const char *field = "Last-Event-ID";
    if (!v) {
        v = http__query(r, "since_id");
        field = "since_id";
    }
    *since = -1;
    if (!v)
        return true;
    if (op_parse_i64(v, strlen(v), since) != OP_OK || *since < 0) {
        http__reply_errorf(r, 400, "invalid_query", field, "%s is an alert id (>= 0)", field);
        return false;
    }
    return true;
}

/* A new subscriber in the hub, or NULL when the hub is full or closing. */
static struct http_sub *sub_open(struct http_streams *hub, struct MHD_Connection *conn,
                                 int64_t since)
{
    struct http_sub *s = op_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hub = hub;
    s->conn = conn;
    s->last_write_ms = mono_ms();
    op_buf_init(&s->out, HTTP_STREAM_BUFFER_MAX);
    op_buf_appends(&s->out, stream_hello);
    pthread_mutex_lock(&hub->mu);
    bool room = hub->n < HTTP_STREAM_CLIENTS_MAX && !hub->closing;
    if (room) {
        s->state = since >= 0 ? SUB_REPLAY : SUB_LIVE;
        s->last_id = since >= 0 ? since : hub->published_max;
        s->next = hub->head;
        if (hub->head)
            hub->head->prev = s;
        hub->head = s;
        hub->n++;
    }
    pthread_mutex_unlock(&hub->mu);
    if (!room) {
        sub_destroy(s);
        return NULL;
    }
    return s;
}

void http__h_alerts_stream(struct http_req *r)
{
    int64_t since;
    if (!resume_point(r, &since))
        return;
    struct http_sub *s = sub_open(r->srv->streams, r->conn, since);
    if (!s) {
        http__reply_errorf(r, 503, "too_many_streams", NULL,
                           "at most %d alert streams at once; retry later",
                           HTTP_STREAM_CLIENTS_MAX);
        http__reply_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, sub_read, s, sub_free);
    if (!resp) {
        sub_free(s);
        http__reply_errorf(r, 503, "overloaded", NULL, "out of memory; retry later");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    http__reply_response(r, 200, resp, "text/event-stream");
    /* The stream is idle between events by design: the server's idle
     * timeout must not cut it. Keepalives find a vanished client. */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
}

/* ---- keepalives, start and stop ------------------------------------------------ */

static void *ticker_main(void *arg)
{
    struct http_streams *hub = arg;
    pthread_mutex_lock(&hub->mu);
    while (!hub->stop) {
        struct MHD_Connection *resume[HTTP_STREAM_CLIENTS_MAX];
        int nresume = 0;
        int64_t now = mono_ms();
        for (struct http_sub *s = hub->head; s; s = s->next) {
            if (s->dead || s->job_inflight || now - s->last_write_ms < HTTP_STREAM_KEEPALIVE_MS)
                continue;
            sub_compact(s);
            if (op_buf_appends(&s->out, keepalive) != OP_OK)
                s->dead = true;
            s->last_write_ms = now;
            struct MHD_Connection *c = take_resume(s);
            if (c && nresume < HTTP_STREAM_CLIENTS_MAX)
                resume[nresume++] = c;
        }
        pthread_mutex_unlock(&hub->mu);
        resume_all(resume, nresume);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += STREAM_TICK_MS / 1000;
        pthread_mutex_lock(&hub->mu);
        if (!hub->stop)
            pthread_cond_timedwait(&hub->cv, &hub->mu, &ts);
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

static double clients_gauge(void *ctx)
{
    struct http_streams *hub = ctx;
    pthread_mutex_lock(&hub->mu);
    int n = hub->n;
    pthread_mutex_unlock(&hub->mu);
    return (double)n;
}

int http__streams_start(struct op_http *h)
{
    struct http_streams *hub = op_calloc(1, sizeof *hub);
    if (!hub)
        return OP_ENOMEM;
    hub->h = h;
    pthread_mutex_init(&hub->mu, NULL);
    pthread_cond_init(&hub->cv, NULL);
    hub->slow = op_metrics_counter("outpost_rules_stream_slow_clients_total", NULL,
                                   "alert stream clients disconnected because they fell more"
                                   " than 256 KiB behind");
    op_metrics_gauge("outpost_rules_stream_clients", NULL,
                     "clients of GET /v1/alerts/stream", clients_gauge, hub);
    if (pthread_create(&hub->ticker, NULL, ticker_main, hub)) {
        pthread_mutex_destroy(&hub->mu);
        pthread_cond_destroy(&hub->cv);
        op_free(hub);
        return OP_ENOMEM;
    }
    hub->started = true;
    h->streams = hub;
    return OP_OK;
}

void http__streams_close(struct op_http *h)
{
    struct http_streams *hub = h->streams;
    if (!hub)
        return;
    struct MHD_Connection *resume[HTTP_STREAM_CLIENTS_MAX];
    int nresume = 0;
    pthread_mutex_lock(&hub->mu);
    bool first = !hub->closing;
    hub->closing = true;
    hub->stop = true;
    pthread_cond_signal(&hub->cv);
    /* A subscriber held by a replay read is resumed when the read ends. */
    for (struct http_sub *s = hub->head; s && first; s = s->next) {
        struct MHD_Connection *c = take_resume(s);
        if (c && nresume < HTTP_STREAM_CLIENTS_MAX)
            resume[nresume++] = c;
    }
    pthread_mutex_unlock(&hub->mu);
    resume_all(resume, nresume);
    /* No keepalive may resume a connection once the library is stopping. */
    if (first && hub->started)
        pthread_join(hub->ticker, NULL);
}

void http__streams_stop(struct op_http *h)
{
    struct http_streams *hub = h->streams;
    if (!hub)
        return;
    http__streams_close(h);
    pthread_mutex_destroy(&hub->mu);
    pthread_cond_destroy(&hub->cv);
    op_free(hub);
    h->streams = NULL;
}
