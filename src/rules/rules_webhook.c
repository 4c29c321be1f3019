/*
 * rules_webhook.c: the webhook alert sink, the only file that includes
 * libcurl (Debian's GnuTLS build, so the node keeps one TLS stack). The
 * rules runner's publish callback only formats each event and puts it in
 * a bounded queue (rules_delivery.c); a thread of its own POSTs the events
 * one at a time, in order, and retries a failed one with capped, jittered
 * backoff before it moves on. A dead or stalling receiver therefore costs
 * the rules thread nothing and ingest nothing: at worst the queue fills and
 * its oldest events are dropped, counted. Every event is also in the
 * alerts table, so nothing dropped here is lost to GET /v1/alerts.
 */
#include "outpost/curl.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outpost/err.h"
#include "outpost/rules.h"
#include "rules_int.h"

#define WH_SUB "rules:webhook"
#define WH_TIMEOUT_MS 5000
#define WH_QUEUE_MAX 1024
#define WH_BACKOFF_BASE_MS 500
#define WH_BACKOFF_MAX_MS 60000
#define WH_EVENT_MAX (64 * 1024) /* one event's JSON; far above any real one */

/* Why a retry attempt failed: the label of outpost_rules_webhook_failures_total. */
enum wh_fail { WF_STATUS, WF_CONNECT, WF_TIMEOUT, WF_TLS, WF_OTHER, WF_N };
static const char *const fail_label[WF_N] = { "status", "connect", "timeout", "tls", "other" };

struct op_rules_webhook {
    CURL *curl;
    struct curl_slist *headers;
    char *url, *ca_file, *auth;
    int64_t timeout_ms, base_ms, max_ms;
    op_rules_alert_format_fn *format;
    char errbuf[CURL_ERROR_SIZE];

    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* new events, and stop */
    bool stop;
    _Atomic bool stopping; /* read by curl's progress callback, without the lock */
    struct rules__queue q;
    struct rules__msg *cur; /* the event being delivered, owned by the thread */
    uint64_t rng;

    struct op_counter *c_sent, *c_full, *c_rejected, *c_error, *c_fail[WF_N];
};

/* ---- the publish side (rules thread) ----------------------------------- */

static struct rules__msg *msg_make(struct op_rules_webhook *wh, const struct op_store_alert *a)
{
    struct op_buf b;
    op_buf_init(&b, WH_EVENT_MAX);
    struct rules__msg *m = NULL;
    if (wh->format(a, &b) == OP_OK && (m = op_malloc(sizeof *m + b.len + 1))) {
        m->id = a->id;
        m->len = b.len;
        memcpy(m->json, b.data, b.len);
        m->json[b.len] = '\0';
    }
    op_buf_fini(&b);
    return m;
}

void op_rules_webhook_publish(void *ctx, const struct op_store_alert *events, size_t n)
{
    struct op_rules_webhook *wh = ctx;
    for (size_t i = 0; i < n; i++) {
        struct rules__msg *m = msg_make(wh, &events[i]);
        if (!m) {
            op_counter_add(wh->c_error, 1);
            continue;
        }
        pthread_mutex_lock(&wh->mu);
        struct rules__msg *dropped = rules__queue_push(&wh->q, m);
        pthread_cond_signal(&wh->cv);
        pthread_mutex_unlock(&wh->mu);
        if (dropped) {
            /* One text for every drop, so a burst logs once a second
             * (op_log_write folds repeats); the counter has the number. */
            OP_WARN(WH_SUB, "queue full: the oldest alert event was dropped");
            op_counter_add(wh->c_full, 1);
            op_free(dropped);
        }
    }
}

static double queue_gauge(void *ctx)
{
    struct op_rules_webhook *wh = ctx;
    pthread_mutex_lock(&wh->mu);
    size_t n = wh->q.n + (wh->cur != NULL);
    pthread_mutex_unlock(&wh->mu);
    return (double)n;
}

/* ---- the delivery thread -------------------------------------------------- */

/* Lets a stop abort a request in flight: curl calls this about once a
 * second while connecting and transferring. */
static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&((struct op_rules_webhook *)ctx)->stopping) ? 1 : 0;
}

/* The receiver's body is not used: read and forget it. */
static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

static enum wh_fail classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return WF_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return WF_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return WF_TLS;
    default:
        return WF_OTHER;
    }
}

/* The next event to deliver: the one being retried, else the oldest
 * queued. NULL once stopping. */
static struct rules__msg *next_event(struct op_rules_webhook *wh)
{
    pthread_mutex_lock(&wh->mu);
    while (!wh->stop && !wh->cur && wh->q.n == 0)
        pthread_cond_wait(&wh->cv, &wh->mu);
    if (!wh->stop && !wh->cur)
        wh->cur = rules__queue_pop(&wh->q);
    struct rules__msg *m = wh->stop ? NULL : wh->cur;
    pthread_mutex_unlock(&wh->mu);
    return m;
}

static void done_event(struct op_rules_webhook *wh)
{
    pthread_mutex_lock(&wh->mu);
    op_free(wh->cur);
    wh->cur = NULL;
    pthread_mutex_unlock(&wh->mu);
}

/* Sleeps ms unless stopped first; returns false when stopping. */
static bool pause_ms(struct op_rules_webhook *wh, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wh->mu);
    while (!wh->stop && pthread_cond_timedwait(&wh->cv, &wh->mu, &ts) == 0)
        ; /* woken by new events: keep waiting out the delay */
    bool go_on = !wh->stop;
    pthread_mutex_unlock(&wh->mu);
    return go_on;
}

/* One POST of m. Returns the verdict; on a retryable failure *why is set
 * and *retry_after_s holds the receiver's Retry-After (0 if none). */
static enum rules__verdict post(struct op_rules_webhook *wh, const struct rules__msg *m,
                                long *status, enum wh_fail *why, int64_t *retry_after_s)
{
    *status = 0;
    *retry_after_s = 0;
    wh->errbuf[0] = '\0';
    op_curl()->easy_setopt(wh->curl, CURLOPT_POSTFIELDS, (const char *)m->json);
    op_curl()->easy_setopt(wh->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
    CURLcode rc = op_curl()->easy_perform(wh->curl);
    if (rc != CURLE_OK) {
        *why = classify(rc);
        return RULES__RETRY;
    }
    op_curl()->easy_getinfo(wh->curl, CURLINFO_RESPONSE_CODE, status);
    enum rules__verdict v = rules__http_verdict(*status);
    if (v == RULES__RETRY) {
        curl_off_t ra = 0;
        /* curl parses both forms (delta-seconds and an HTTP date). */
        if (op_curl()->easy_getinfo(wh->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_s = (int64_t)ra;
        *why = WF_STATUS;
    }
    return v;
}

static void *wh_main(void *arg)
{
    struct op_rules_webhook *wh = arg;
    unsigned attempt = 0;
    struct rules__msg *m;
    while ((m = next_event(wh))) {
        long status;
        enum wh_fail why = WF_OTHER;
        int64_t retry_after_s;
        enum rules__verdict v = post(wh, m, &status, &why, &retry_after_s);
        if (v == RULES__RETRY && atomic_load(&wh->stopping))
            break; /* aborted by the stop: the event stays undelivered */
        if (v == RULES__DELIVERED) {
            op_counter_add(wh->c_sent, 1);
        } else if (v == RULES__REJECTED) {
            OP_WARN(WH_SUB, "alert %lld refused with HTTP %ld: dropped", (long long)m->id, status);
            op_counter_add(wh->c_rejected, 1);
        } else {
            int64_t ms = rules__retry_delay_ms(attempt, retry_after_s, wh->base_ms, wh->max_ms,
                                               rules__rand_next(&wh->rng));
            op_counter_add(wh->c_fail[why], 1);
            if (status)
                OP_WARN(WH_SUB, "alert %lld: HTTP %ld; retry %u in %lld ms", (long long)m->id,
                        status, attempt + 1, (long long)ms);
            else
                OP_WARN(WH_SUB, "alert %lld: %s; retry %u in %lld ms", (long long)m->id,
                        wh->errbuf[0] ? wh->errbuf : fail_label[why], attempt + 1, (long long)ms);
            attempt++;
            if (!pause_ms(wh, ms))
                break;
            continue;
        }
        attempt = 0;
        done_event(wh);
    }
    return NULL;
}

/* ---- start and stop --------------------------------------------------------- */

static int check_url(const char *url, struct op_diag *d)
{
    CURLU *u = op_curl()->url();
    char *scheme = NULL, *host = NULL;
    int rc = OP_EINVAL;
    if (!u)
        return OP_ENOMEM;
    if (op_curl()->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        op_curl()->url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        op_curl()->url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
        (!strcmp(scheme, "http") || !strcmp(scheme, "https")))
        rc = OP_OK;
    else
        op_diag_set(d, "invalid_config", "rules.webhook_url: '%.200s' is not an http(s) URL",
                    url);
    op_curl()->free(scheme);
    op_curl()->free(host);
    op_curl()->url_cleanup(u);
    return rc;
}

static void register_metrics(struct op_rules_webhook *wh)
{
    wh->c_sent = op_metrics_counter("outpost_rules_webhook_sent_total", NULL,
                                    "alert events the webhook accepted (2xx)");
    wh->c_full = op_metrics_counter("outpost_rules_webhook_dropped_total",
                                    "reason=\"queue_full\"",
                                    "alert events the webhook sink gave up on, by reason");
    wh->c_rejected = op_metrics_counter("outpost_rules_webhook_dropped_total",
                                        "reason=\"rejected\"",
                                        "alert events the webhook sink gave up on, by reason");
    wh->c_error = op_metrics_counter("outpost_rules_webhook_dropped_total", "reason=\"error\"",
                                     "alert events the webhook sink gave up on, by reason");
    for (int i = 0; i < WF_N; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "reason=\"%s\"", fail_label[i]);
        wh->c_fail[i] = op_metrics_counter("outpost_rules_webhook_failures_total", labels,
                                           "webhook delivery attempts that failed and will be"
                                           " retried, by reason");
    }
    op_metrics_gauge("outpost_rules_webhook_queue_events", NULL,
                     "alert events waiting for the webhook (the one in flight included)",
                     queue_gauge, wh);
}

/* The options that never change between requests. */
static int setup_curl(struct op_rules_webhook *wh)
{
    if (!(wh->curl = op_curl()->easy_init()))
        return OP_ENOMEM;
    wh->headers = op_curl()->slist_append(NULL, "Content-Type: application/json");
    if (wh->headers && wh->auth)
        wh->headers = op_curl()->slist_append(wh->headers, wh->auth);
    if (!wh->headers)
        return OP_ENOMEM;
    CURL *c = wh->curl;
    op_curl()->easy_setopt(c, CURLOPT_URL, wh->url);
    op_curl()->easy_setopt(c, CURLOPT_POST, 1L);
    op_curl()->easy_setopt(c, CURLOPT_HTTPHEADER, wh->headers);
    op_curl()->easy_setopt(c, CURLOPT_USERAGENT, "outpost");
    /* No signals from a thread that is not the main one (DNS timeouts). */
    op_curl()->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    op_curl()->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)wh->timeout_ms);
    op_curl()->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)wh->timeout_ms);
    op_curl()->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    op_curl()->easy_setopt(c, CURLOPT_ERRORBUFFER, wh->errbuf);
    op_curl()->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    op_curl()->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    op_curl()->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    op_curl()->easy_setopt(c, CURLOPT_XFERINFODATA, wh);
    /* Verification is curl's default; only the trust anchors may change. */
    if (wh->ca_file)
        op_curl()->easy_setopt(c, CURLOPT_CAINFO, wh->ca_file);
    return OP_OK;
}

static int copy_opts(struct op_rules_webhook *wh, const struct op_rules_webhook_opts *o,
                     struct op_diag *d)
{
    wh->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : WH_TIMEOUT_MS;
    wh->base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : WH_BACKOFF_BASE_MS;
    wh->max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : WH_BACKOFF_MAX_MS;
    wh->format = o->format;
    if (!(wh->url = op_strndup(o->url, strlen(o->url))))
        return OP_ENOMEM;
    if (o->ca_file && o->ca_file[0]) {
        if (access(o->ca_file, R_OK)) {
            snprintf(d->field, sizeof d->field, "rules.webhook_ca");
            op_diag_set(d, "invalid_config", "rules.webhook_ca: cannot read %.200s: %m",
                        o->ca_file);
            return OP_EINVAL;
        }
        if (!(wh->ca_file = op_strndup(o->ca_file, strlen(o->ca_file))))
            return OP_ENOMEM;
    }
    if (o->token && o->token[0]) {
        struct op_buf b;
        op_buf_init(&b, 1024);
        if (op_buf_appendf(&b, "Authorization: Bearer %s", o->token) == OP_OK)
            wh->auth = op_buf_steal(&b, NULL);
        op_buf_fini(&b);
        if (!wh->auth)
            return OP_ENOMEM;
    }
    return rules__queue_init(&wh->q, o->queue_max ? o->queue_max : WH_QUEUE_MAX);
}

int op_rules_webhook_start(struct op_rules_webhook **out, const struct op_rules_webhook_opts *o,
                           struct op_diag *d)
{
    *out = NULL;
    if (!o->url || !o->format)
        return OP_EINVAL;
    snprintf(d->field, sizeof d->field, "rules.webhook_url");
    int rc = check_url(o->url, d);
    if (rc != OP_OK)
        return rc;
    /* libcurl is loaded here, on first use (outpost/curl.h). */
    if (!op_curl()) {
        op_diag_set(d, "invalid_config", "the webhook needs libcurl, which cannot be loaded");
        return OP_EIO;
    }
    struct op_rules_webhook *wh = op_calloc(1, sizeof *wh);
    if (!wh)
        return OP_ENOMEM;
    pthread_mutex_init(&wh->mu, NULL);
    pthread_cond_init(&wh->cv, NULL);
    wh->rng = (uint64_t)op_time_mono_ns() ^ ((uint64_t)getpid() << 32);
    if ((rc = copy_opts(wh, o, d)) == OP_OK)
        rc = setup_curl(wh);
    if (rc == OP_OK) {
        register_metrics(wh);
        if (pthread_create(&wh->thread, NULL, wh_main, wh) != 0)
            rc = OP_ENOMEM;
        else
            wh->started = true;
    }
    if (rc != OP_OK) {
        op_rules_webhook_stop(wh);
        return rc;
    }
    OP_INFO(WH_SUB, "posting alert events to %s (timeout %lld ms, queue %zu)", wh->url,
            (long long)wh->timeout_ms, wh->q.cap);
    *out = wh;
    return OP_OK;
}

void op_rules_webhook_stop(struct op_rules_webhook *wh)
{
    if (!wh)
        return;
    if (wh->started) {
        pthread_mutex_lock(&wh->mu);
        wh->stop = true;
        atomic_store(&wh->stopping, true);
        pthread_cond_broadcast(&wh->cv);
        pthread_mutex_unlock(&wh->mu);
        pthread_join(wh->thread, NULL);
    }
    size_t left = rules__queue_fini(&wh->q) + (wh->cur != NULL);
    if (left)
        OP_WARN(WH_SUB, "stopping with %zu alert event(s) not delivered (they are in the"
                        " alerts table)", left);
    op_free(wh->cur);
    if (wh->curl)
        op_curl()->easy_cleanup(wh->curl);
    op_curl()->slist_free_all(wh->headers);
    op_free(wh->url);
    op_free(wh->ca_file);
    op_free(wh->auth);
    pthread_mutex_destroy(&wh->mu);
    pthread_cond_destroy(&wh->cv);
    op_free(wh);
}
