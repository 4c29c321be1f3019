/*
 * Private to http/: the request context shared by the server, the router,
 * the JSON wrapper and the route handlers.
 */
#ifndef OUTPOST_HTTP_INT_H
#define OUTPOST_HTTP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "outpost/core.h"
#include "outpost/http.h"
#include "outpost/sec.h"
#include "outpost/store.h"
#include "outpost/util.h"

struct MHD_Connection;
struct MHD_Response;

enum http_method { HM_GET = 1, HM_POST = 2, HM_PUT = 4, HM_DELETE = 8, HM_HEAD = 16, HM_OTHER = 32 };

struct http_req;

/* A route handler runs on the event-loop thread once the body is complete.
 * It either sets a response (http__reply_*) or suspends the request and
 * hands it to the store (http__suspend), whose callback answers later. */
typedef void http_handler_fn(struct http_req *r);

enum http_body {
    HB_NONE = 0,
    HB_JSON,  /* application/json, up to http.max_body */
    HB_BATCH, /* application/x-outpost-batch, up to receiver.max_body */
};

struct http_route {
    const char *pattern; /* exact path, or a prefix ending in "{id}" */
    int method;
    http_handler_fn *fn;
    enum http_body body; /* the body it takes: 411/413/415 checks apply */
    enum op_role role;   /* who may call it (docs/security.md's role table) */
};

/* Per-route, per-status request counters, created on first use. */
#define HTTP_STATUS_SLOTS 18
#define HTTP_RESPONSE_MAX (32u << 20) /* cap on one response body */
/* libmicrohttpd's memory per connection: the request head, I/O buffers and
 * the response head. Its default (32 KiB) is cleared after every request
 * and, with 64 keep-alive clients, was 2 MiB of the daemon's peak RSS;
 * 16 KiB still takes a request head of about 12 KB (a larger one gets 431). */
#define HTTP_CONN_MEMORY (16u << 10)
struct http_route_stats {
    _Atomic(struct op_counter *) by_status[HTTP_STATUS_SLOTS];
};

/* Readings parsed from a body: sensor names point into names. */
struct http_readings {
    struct op_reading *v;
    size_t n;
    char *names;
};

struct http_req {
    struct op_http *srv;
    struct MHD_Connection *conn;
    int method;
    const struct http_route *route; /* NULL: no route for the path */
    int route_idx;
    struct op_str param;            /* the {id} part of the path */
    const char *url;
    struct op_buf body;
    int body_err;      /* 0, or the status the body earned: 413 too large, 503 over budget */
    size_t body_held;  /* bytes of body counted in op_http.body_bytes */
    bool suspended;
    bool queued;   /* a response went to the library */
    bool pending;  /* counted in op_http.pending */
    /* The answer, set by a handler or by an async completion. */
    unsigned status;
    struct MHD_Response *resp;
    /* Async work in flight. */
    struct op_store_write write;
    struct op_store_read_job job;
    struct http_readings readings;
    char *owned[2];  /* strings a handler keeps for its async work, freed with the request */
    struct op_sync_batch_in *batch_in; /* POST /v1/uplink: the decoded batch, freed likewise */
    struct {         /* parsed query parameters of the read routes */
        struct op_range_query range;
        struct op_agg_query agg;
        unsigned fns;
        int64_t count;
        bool overflow;
    } q;
    int64_t t_start_ns;
    const char *principal; /* the token name or certificate CN, when authenticated */
    char cn[OP_CONFIG_ITEM_MAX]; /* the verified client certificate's CN, if looked up */
};

struct op_http {
    const struct op_config *cfg;
    struct op_store *store;
    void *daemon; /* struct MHD_Daemon */
    uint16_t port;
    _Atomic int inflight;
    _Atomic int pending;   /* requests handed to the store, not yet answered */
    _Atomic int64_t body_bytes; /* request body bytes held (http.max_inflight) */
    _Atomic bool closing;
    struct http_deadlines *deadlines;
    struct http_route_stats *stats; /* one per route, plus one for "other" */
    struct op_counter *readings_accepted;
    struct op_histogram *batch_hist;
    struct op_histogram *latency_hist;
    const struct op_auth *auth;      /* borrowed; NULL or empty: no credentials needed */
    const struct op_tls_server *tls; /* borrowed; NULL: plain HTTP */
    struct op_limiter *limiter;
    struct op_counter *auth_fail[4]; /* by enum http_auth_fail */
    struct http_streams *streams;    /* GET /v1/alerts/stream subscribers */
    const struct op_seal_key *seal_keys; /* borrowed: keys that open uplink batches */
    size_t nseal_keys;
    struct op_counter *received, *received_dup, *received_bad;
};

/* ---- authorization (http_auth.c) ---- */
enum http_auth_fail { HA_MISSING, HA_INVALID, HA_FORBIDDEN, HA_RATE_LIMITED };
int http__auth_start(struct op_http *h);
void http__auth_stop(struct op_http *h);
/* Checks r's credentials against its route's role; on refusal sets the
 * 401/403/429 reply and returns false. Runs once the headers are in, so
 * an unauthenticated client never gets a body buffered. */
bool http__authorize(struct http_req *r);
/* With mutual TLS: called for each new connection before its handshake. */
void http__auth_on_connection(struct op_http *h, struct MHD_Connection *conn);

/* ---- deadlines (http_deadline.c) ---- */
enum MHD_ConnectionNotificationCode;
int http__deadlines_start(struct op_http *h);
void http__deadlines_stop(struct op_http *h);
/* MHD_OPTION_NOTIFY_CONNECTION callback: tracks each connection. */
void http__deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe);
/* The next request on conn must arrive whole within http.timeout. */
void http__deadline_arm(struct op_http *h, struct MHD_Connection *conn);
/* The request arrived: no deadline while it is served. Returns false when
 * the watchdog has already cut the connection (do not serve it). */
bool http__deadline_disarm(struct MHD_Connection *conn);

/* ---- the alert stream (http_stream.c) ---- */
#define HTTP_STREAM_CLIENTS_MAX 32          /* subscribers at once; 503 beyond */
#define HTTP_STREAM_BUFFER_MAX (256u << 10) /* bytes queued per subscriber; cut beyond */
#define HTTP_STREAM_KEEPALIVE_MS 15000      /* a comment line when idle this long */
int http__streams_start(struct op_http *h);
/* Ends every stream (the drain: a stream is a request that never ends)
 * and stops the keepalives. Idempotent; before the library stops. */
void http__streams_close(struct op_http *h);
/* Frees the hub once the library has stopped (no subscriber left). */
void http__streams_stop(struct op_http *h);
/* Appends one SSE event "id: ID\nevent: alert\ndata: JSON\n\n" to out; a
 * line break inside json (the encoder writes none) starts another data
 * line, as the format requires. OP_OK, OP_ETOOBIG, OP_ENOMEM. */
int http__sse_frame(struct op_buf *out, int64_t id, const char *json, size_t len);

/* ---- router (http_router.c) ---- */
extern const struct http_route http__routes[];
extern const int http__nroutes;
int http__method_parse(const char *m);
/* Finds the route for (method, path). On a path match with the wrong
 * method returns NULL and fills allow ("GET, PUT"); on no match at all
 * returns NULL with allow empty. */
const struct http_route *http__route_find(int method, const char *path, struct op_str *param,
                                          int *idx, char *allow, size_t allowlen);
const char *http__route_label(int idx);

/* ---- replies (http_reply.c) ---- */
/* Answers with body's bytes (taken from it) as application/json / ctype. */
void http__reply_json(struct http_req *r, unsigned status, struct op_buf *body);
void http__reply_buf(struct http_req *r, unsigned status, struct op_buf *body, const char *ctype);
void http__reply_static(struct http_req *r, unsigned status, const char *body, const char *ctype);
void http__reply_empty(struct http_req *r, unsigned status);
/* Answers with resp (taken; NULL: out of memory, answered 500 later). */
void http__reply_response(struct http_req *r, unsigned status, struct MHD_Response *resp,
                          const char *ctype);
/* {"error":{"code":..,"message":..,"index":..,"field":..}} from d. */
void http__reply_error(struct http_req *r, unsigned status, const struct op_diag *d);
void http__reply_errorf(struct http_req *r, unsigned status, const char *code, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Ends the JSON document j wrote into b and answers 200 with it, or the
 * error for rc (< 0, from the store) or for the writer's own failure. */
struct http_json;
void http__reply_json_doc(struct http_req *r, struct http_json *j, struct op_buf *b, int rc);
/* On a reader thread: answers r with {"key": [...]} (or a bare {...} when
 * key is NULL) whose elements fn writes (it may read r: its query, the
 * server); fn returns what the store query returned. */
typedef int http_list_fn(struct http_req *r, struct op_store_reader *rd, struct http_json *j);
void http__reply_list(struct http_req *r, struct op_store_reader *rd, const char *key,
                      http_list_fn *fn);
/* Maps a store error to its status and error body. */
void http__reply_store_error(struct http_req *r, int rc);
void http__reply_add_header(struct http_req *r, const char *name, const char *value);

/* ---- bodies (http_server.c) ---- */
/* Frees r's body and gives its bytes back to the server-wide budget. */
void http__body_release(struct http_req *r);

/* ---- async (http_server.c) ---- */
/* Suspends the connection; the completion calls http__resume. */
void http__suspend(struct http_req *r);
void http__resume(struct http_req *r);
/* Submits r->write (already filled) with the standard completion. */
void http__submit_write(struct http_req *r, op_store_done_fn *done);
/* Runs fn on a reader thread; fn must set a response. */
void http__submit_read(struct http_req *r, op_store_read_fn *fn);
const char *http__query(struct http_req *r, const char *key);

/* ---- JSON (http_json.c: the only file that includes yajl) ---- */
int http__parse_readings(const char *body, size_t len, size_t max_batch, int64_t now_ms,
                         struct http_readings *out, struct op_diag *d);
void http__readings_free(struct http_readings *rd);
/* PUT /v1/devices body -> status and canonical attributes text (the caller
 * frees both with op_free). */
int http__parse_device(const char *body, size_t len, char **status, char **attributes,
                       struct op_diag *d);
/* PUT /v1/rules/{name} body: a JSON object of key -> string, number or
 * bool, turned into `key = value` lines in *text (the caller frees it with
 * op_free) for op_rules_kv_split. 0, or the status with d filled. */
int http__parse_rule(const char *body, size_t len, char **text, struct op_diag *d);
/* POST /data body {"id": ..., "value": ...}; id points into *idbuf (freed by caller). */
int http__parse_compat_data(const char *body, size_t len, char **id, double *value,
                            struct op_diag *d);

/* A streaming JSON writer over yajl_gen into a bounded op_buf. */
struct http_json {
    void *gen; /* yajl_gen */
    struct op_buf *out;
    int rc;    /* first error (buffer cap or encoder state) */
};
int http__json_init(struct http_json *j, struct op_buf *out);
int http__json_fini(struct http_json *j); /* returns j->rc */
void http__json_obj_open(struct http_json *j);
void http__json_obj_close(struct http_json *j);
void http__json_arr_open(struct http_json *j);
void http__json_arr_close(struct http_json *j);
void http__json_key(struct http_json *j, const char *k);
void http__json_str(struct http_json *j, const char *s, size_t len);
void http__json_double(struct http_json *j, double v);
void http__json_int(struct http_json *j, int64_t v);
void http__json_null(struct http_json *j);
/* Emits already-validated JSON text as one value (re-encoded, not copied). */
void http__json_raw(struct http_json *j, const char *text, size_t len);

/* ---- validation shared by handlers ---- */
bool http__valid_name(const char *s, size_t len, bool allow_slash);
/* As http__valid_name with a cap of max bytes (queries accept the longer
 * names the node makes itself: derived series, received readings). */
bool http__valid_name_max(const char *s, size_t len, bool allow_slash, size_t max);

/* ---- query parameters of the read routes (http_v1_readings.c) ---- */
/* Returns the decoded value of query parameter key (NUL-terminated, owned
 * by ctx), or NULL when it is absent. */
typedef const char *http_param_fn(void *ctx, const char *key);
/* GET /v1/readings: sensor, from, to, limit, order, cursor. Fills q (its
 * sensor points into get's storage; limit is the one asked for) and
 * returns 0, or returns 400 with the error body's code, field and message
 * in d. Pure: reads only through get. */
int http__parse_range_params(http_param_fn *get, void *ctx, struct op_range_query *q,
                             struct op_diag *d);
/* GET /v1/readings/aggregate: sensor, from, to, step, fn. *fns gets one bit
 * per requested function. Same contract as http__parse_range_params. */
int http__parse_agg_params(http_param_fn *get, void *ctx, struct op_agg_query *q, unsigned *fns,
                           struct op_diag *d);

/* ---- handlers ---- */
void http__h_readings_post(struct http_req *r);
void http__h_readings_get(struct http_req *r);
void http__h_readings_aggregate(struct http_req *r);
void http__h_sensors(struct http_req *r);
void http__h_device_put(struct http_req *r);
void http__h_device_get(struct http_req *r);
void http__h_device_delete(struct http_req *r);
void http__h_devices_list(struct http_req *r);
void http__h_compat_data_post(struct http_req *r);
void http__h_compat_data_get(struct http_req *r);
void http__h_compat_status_post(struct http_req *r);
void http__h_compat_status_get(struct http_req *r);
void http__h_rule_put(struct http_req *r);
void http__h_rule_get(struct http_req *r);
void http__h_rule_delete(struct http_req *r);
void http__h_rules_list(struct http_req *r);
void http__h_alerts(struct http_req *r);
void http__h_alerts_stream(struct http_req *r);
void http__h_uplink_post(struct http_req *r);
void http__h_uplinks(struct http_req *r);
void http__h_dead_letters(struct http_req *r);
void http__h_healthz(struct http_req *r);
void http__h_readyz(struct http_req *r);
void http__h_metrics(struct http_req *r);

#endif
