/*
 * sync_mqtt.c: the MQTT transport of an uplink (url mqtt://host[:port]/topic
 * or mqtts://...), on libmosquitto loaded on first use. A batch is one
 * QoS 1 PUBLISH of the same bytes an HTTP receiver gets; the broker's
 * PUBACK is the acknowledgement (docs/uplink.md). The client runs
 * synchronously on the uplink's thread: connect when needed, publish, then
 * step the network loop until the PUBACK for that message id arrives, the
 * uplink's timeout passes, or the node stops. A broken connection is
 * dropped and made again at the next attempt; the batch is then published
 * again, and the consumer deduplicates by position as any receiver does.
 * The `token` is sent as the MQTT password (user name: the node id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/mosq.h"
#include "sync_int.h"

struct sync_mqtt {
    struct mosquitto *m;
    const struct op_mosq *api;
    const _Atomic bool *stop;
    char host[256], topic[512];
    int port;
    int64_t timeout_ms;
    bool connected;
    int waiting_mid;
    bool acked;
    int connack;        /* -1 until the CONNACK, then its result code */
    int64_t last_io_ns; /* the last PUBACK: an idle link is made again */
    char id[128], node[80];
    bool tls;
    const struct op_uplink_cfg *cfg; /* the uplink's, which outlives the transport */
    char error[400];
};

/* Past this without traffic the broker may have dropped us (keepalive 30 s
 * and nobody serviced the loop between batches): connect again. */
#define MQTT_IDLE_NS ((int64_t)20 * 1000000000)

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    ((struct sync_mqtt *)obj)->connack = rc;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    struct sync_mqtt *q = obj;
    if (mid == q->waiting_mid)
        q->acked = true;
}

/* mqtt[s]://host[:port]/topic; the topic is everything after the first
 * '/' following the authority. */
static int parse_url(struct sync_mqtt *q, const char *url, bool *tls)
{
    const char *p = url;
    *tls = !strncmp(p, "mqtts://", 8);
    p += *tls ? 8 : 7;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1])
        return OP_EINVAL;
    size_t alen = (size_t)(slash - p);
    const char *colon = memchr(p, ':', alen);
    size_t hlen = colon ? (size_t)(colon - p) : alen;
    if (hlen == 0 || hlen >= sizeof q->host || strlen(slash + 1) >= sizeof q->topic)
        return OP_EINVAL;
    memcpy(q->host, p, hlen);
    q->host[hlen] = '\0';
    q->port = *tls ? 8883 : 1883;
    if (colon) {
        int64_t port;
        if (op_parse_i64(colon + 1, alen - hlen - 1, &port) || port < 1 || port > 65535)
            return OP_EINVAL;
        q->port = (int)port;
    }
    snprintf(q->topic, sizeof q->topic, "%s", slash + 1);
    return OP_OK;
}

int sync__mqtt_url_check(const char *url)
{
    struct sync_mqtt q;
    bool tls;
    return parse_url(&q, url, &tls);
}

/* Credentials, TLS and callbacks on a new or reinitialised client. */
static int client_setup(struct sync_mqtt *q, const char *node)
{
    const struct op_mosq *api = q->api;
    const struct op_uplink_cfg *u = q->cfg;
    if (u->token[0] && api->username_pw_set(q->m, node, u->token) != MOSQ_ERR_SUCCESS)
        return OP_EINVAL;
    if (q->tls &&
        (api->tls_set(q->m, u->ca[0] ? u->ca : NULL, u->ca[0] ? NULL : "/etc/ssl/certs",
                      u->cert[0] ? u->cert : NULL, u->key[0] ? u->key : NULL,
                      NULL) != MOSQ_ERR_SUCCESS ||
         api->tls_opts_set(q->m, 1 /* SSL_VERIFY_PEER */, "tlsv1.2", NULL) != MOSQ_ERR_SUCCESS))
        return OP_EINVAL;
    api->publish_callback_set(q->m, on_publish);
    api->connect_callback_set(q->m, on_connect);
    return OP_OK;
}

int sync__mqtt_create(void **out, const struct op_uplink_cfg *u, const char *node,
                      const _Atomic bool *stop)
{
    const struct op_mosq *api = op_mosq();
    if (!api)
        return OP_EIO;
    struct sync_mqtt *q = op_calloc(1, sizeof(*q));
    if (!q)
        return OP_ENOMEM;
    q->api = api;
    q->stop = stop;
    q->timeout_ms = u->timeout_ms;
    q->cfg = u;
    int rc = parse_url(q, u->url, &q->tls);
    snprintf(q->id, sizeof q->id, "outpost-%s-%s", node, u->name);
    /* A clean session: what was not acknowledged is published again. */
    if (rc == OP_OK && !(q->m = api->new_(q->id, true, q)))
        rc = OP_ENOMEM;
    if (rc == OP_OK)
        rc = client_setup(q, node);
    if (rc != OP_OK) {
        sync__mqtt_destroy(q);
        return rc;
    }
    snprintf(q->node, sizeof q->node, "%s", node);
    *out = q;
    return OP_OK;
}

void sync__mqtt_destroy(void *t)
{
    struct sync_mqtt *q = t;
    if (!q)
        return;
    if (q->m) {
        if (q->connected)
            q->api->disconnect(q->m);
        q->api->destroy(q->m);
    }
    op_free(q);
}

/* Ends the connection and empties the client: libmosquitto keeps QoS 1
 * messages without their PUBACK and would send them again after a
 * reconnect, beside our own resend, one more batch each time. */
static void drop(struct sync_mqtt *q, const char *why, struct sync_answer *ans)
{
    snprintf(q->error, sizeof q->error, "mqtt %s:%d: %s", q->host, q->port, why);
    if (q->connected)
        q->api->disconnect(q->m);
    q->connected = false;
    if (q->api->reinitialise(q->m, q->id, true, q) != MOSQ_ERR_SUCCESS ||
        client_setup(q, q->node) != OP_OK)
        snprintf(q->error, sizeof q->error, "mqtt %s:%d: cannot reset the client", q->host,
                 q->port);
    ans->error = q->error;
}

int sync__mqtt_send(void *t, const void *body, size_t len, bool json, struct sync_answer *ans)
{
    (void)json;
    struct sync_mqtt *q = t;
    *ans = (struct sync_answer){ .status = 0, .retry_after_ms = -1, .answer = "" };
    int err;
    if (q->connected && op_time_mono_ns() - q->last_io_ns > MQTT_IDLE_NS)
        drop(q, "idle", ans);
    if (!q->connected) {
        q->connack = -1;
        if ((err = q->api->connect(q->m, q->host, q->port, 30)) != MOSQ_ERR_SUCCESS) {
            drop(q, q->api->strerror(err), ans);
            return OP_OK;
        }
        q->connected = true;
    }
    if (len > (size_t)INT32_MAX) {
        ans->status = 413;
        return OP_OK;
    }
    q->acked = false;
    q->waiting_mid = -1;
    int mid = 0;
    if ((err = q->api->publish(q->m, &mid, q->topic, (int)len, body, 1, false)) !=
        MOSQ_ERR_SUCCESS) {
        drop(q, q->api->strerror(err), ans);
        return OP_OK;
    }
    q->waiting_mid = mid;
    int64_t end = op_time_mono_ns() + q->timeout_ms * 1000000;
    /* The CONNACK, the PUBLISH and the PUBACK all go through this loop. */
    while (!q->acked) {
        if (q->connack > 0) { /* refused: bad credentials, not authorised, ... */
            char why[64];
            snprintf(why, sizeof why, "connection refused (CONNACK %d)", q->connack);
            drop(q, why, ans);
            return OP_OK;
        }
        if (atomic_load(q->stop) || op_time_mono_ns() > end) {
            drop(q, q->api->strerror(MOSQ_ERR_TIMEOUT), ans);
            return OP_OK;
        }
        if ((err = q->api->loop(q->m, 100, 1)) != MOSQ_ERR_SUCCESS) {
            drop(q, q->api->strerror(err), ans);
            return OP_OK;
        }
    }
    q->last_io_ns = op_time_mono_ns();
    ans->status = 200;
    return OP_OK;
}
