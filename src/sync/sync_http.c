/*
 * sync_http.c: the HTTP(S) transport of an uplink, on libcurl (Debian's
 * GnuTLS build, so the process keeps one TLS stack). One easy handle per
 * uplink keeps its connection alive between batches. TLS follows the
 * security issue's client rules: the server's certificate and name are
 * verified (against `ca` or the system store), TLS 1.2 at least, and a
 * client certificate for mutual TLS when configured. A stop request aborts
 * a transfer in flight through the progress callback.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outpost/curl.h"
#include "outpost/err.h"
#include "sync_int.h"

#define ANSWER_MAX 1024

struct sync_http {
    CURL *curl;
    struct curl_slist *headers_batch, *headers_json;
    const _Atomic bool *stop;
    char answer[ANSWER_MAX + 1];
    size_t answer_len;
    int64_t retry_after_ms;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct sync_http *h = ctx;
    size_t len = size * n, room = ANSWER_MAX - h->answer_len;
    memcpy(h->answer + h->answer_len, p, len < room ? len : room);
    h->answer_len += len < room ? len : room;
    h->answer[h->answer_len] = '\0';
    return len;
}

/* Retry-After in seconds (the HTTP-date form is rare from APIs; ignored). */
static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct sync_http *h = ctx;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        char tmp[32];
        size_t k = len - (sizeof name - 1) < sizeof tmp - 1 ? len - (sizeof name - 1)
                                                             : sizeof tmp - 1;
        memcpy(tmp, p + sizeof name - 1, k);
        tmp[k] = '\0';
        char *end;
        long secs = strtol(tmp, &end, 10);
        if (end != tmp && secs >= 0 && secs < 86400)
            h->retry_after_ms = (int64_t)secs * 1000;
    }
    return len;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const struct sync_http *h = ctx;
    return atomic_load(h->stop) ? 1 : 0;
}

static int http_create(void **out, const struct op_uplink_cfg *u, const char *node,
                       const _Atomic bool *stop)
{
    (void)node;
    return sync__http_create((struct sync_http **)out, u, stop);
}

static void http_destroy(void *t)
{
    sync__http_destroy(t);
}

static int http_send(void *t, const void *body, size_t len, bool json, struct sync_answer *ans)
{
    return sync__http_post(t, body, len, json, ans);
}

static const struct sync_transport http_transport = { "http", http_create, http_destroy,
                                                      http_send };
static const struct sync_transport mqtt_transport = { "mqtt", sync__mqtt_create,
                                                      sync__mqtt_destroy, sync__mqtt_send };

const struct sync_transport *sync__transport_for(const char *url)
{
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return &http_transport;
    if (!strncmp(url, "mqtt://", 7) || !strncmp(url, "mqtts://", 8))
        return &mqtt_transport;
    return NULL;
}

int sync__http_create(struct sync_http **out, const struct op_uplink_cfg *u,
                      const _Atomic bool *stop)
{
    if (!op_curl())
        return OP_EIO;
    struct sync_http *h = op_calloc(1, sizeof(*h));
    if (!h)
        return OP_ENOMEM;
    h->stop = stop;
    h->curl = op_curl()->easy_init();
    if (!h->curl) {
        op_free(h);
        return OP_ENOMEM;
    }
    char auth[300] = "";
    if (u->token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
    h->headers_batch = op_curl()->slist_append(NULL, "Content-Type: application/x-outpost-batch");
    h->headers_json = op_curl()->slist_append(NULL, "Content-Type: application/json");
    if (auth[0]) {
        h->headers_batch = op_curl()->slist_append(h->headers_batch, auth);
        h->headers_json = op_curl()->slist_append(h->headers_json, auth);
    }
    CURL *c = h->curl;
    op_curl()->easy_setopt(c, CURLOPT_URL, u->url);
    op_curl()->easy_setopt(c, CURLOPT_POST, 1L);
    op_curl()->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    op_curl()->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)u->timeout_ms);
    op_curl()->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)u->timeout_ms);
    op_curl()->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    op_curl()->easy_setopt(c, CURLOPT_WRITEDATA, h);
    op_curl()->easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    op_curl()->easy_setopt(c, CURLOPT_HEADERDATA, h);
    op_curl()->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    op_curl()->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    op_curl()->easy_setopt(c, CURLOPT_XFERINFODATA, h);
    op_curl()->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    op_curl()->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    op_curl()->easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    op_curl()->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    op_curl()->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    /* No proxy from the environment: uplinks go where the config says. */
    op_curl()->easy_setopt(c, CURLOPT_PROXY, "");
    if (u->ca[0])
        op_curl()->easy_setopt(c, CURLOPT_CAINFO, u->ca);
    if (u->cert[0]) {
        op_curl()->easy_setopt(c, CURLOPT_SSLCERT, u->cert);
        op_curl()->easy_setopt(c, CURLOPT_SSLKEY, u->key);
    }
    *out = h;
    return OP_OK;
}

void sync__http_destroy(struct sync_http *h)
{
    if (!h)
        return;
    op_curl()->easy_cleanup(h->curl);
    op_curl()->slist_free_all(h->headers_batch);
    op_curl()->slist_free_all(h->headers_json);
    op_free(h);
}

int sync__http_post(struct sync_http *h, const void *body, size_t len, bool json,
                    struct sync_answer *ans)
{
    h->answer_len = 0;
    h->answer[0] = '\0';
    h->retry_after_ms = -1;
    op_curl()->easy_setopt(h->curl, CURLOPT_HTTPHEADER, json ? h->headers_json : h->headers_batch);
    op_curl()->easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
    op_curl()->easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode cc = op_curl()->easy_perform(h->curl);
    long status = 0;
    if (cc == CURLE_OK)
        op_curl()->easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    ans->status = (int)status;
    ans->retry_after_ms = h->retry_after_ms;
    ans->answer = h->answer;
    ans->error = cc == CURLE_OK ? NULL : op_curl()->easy_strerror(cc);
    return OP_OK;
}
