/*
 * http: the HTTP server (libmicrohttpd in its epoll internal-thread mode),
 * the router, JSON handling, the v1 API and the old service's compat API.
 * May call util, core and store.
 */
#ifndef OUTPOST_HTTP_H
#define OUTPOST_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "outpost/core.h"
#include "outpost/sec.h"
#include "outpost/store.h"

struct op_http;

/* The security the server enforces; both borrowed, both may be NULL. */
struct op_http_sec {
    const struct op_auth *auth;      /* credentials; none configured: no checks */
    const struct op_tls_server *tls; /* HTTPS (and mutual TLS with a client CA) */
    const struct op_seal_key *seal_keys; /* open sealed uplink batches (receiver.seal_key) */
    size_t nseal_keys;
};

/* Creates the listening socket for cfg->listen (bound, listening,
 * non-blocking, close-on-exec) into *fd. Separate from op_http_start so
 * that a port below 1024 is bound before root is dropped, and so that the
 * bind rule looks at the address actually bound. Returns OP_OK, OP_EINVAL
 * (bad listen address) or OP_EIO (bind failed; logged). */
int op_http_listen(const struct op_config *cfg, int *fd);
/* Whether the socket's bound address is a loopback one (127/8, ::1, or
 * v4-mapped 127/8). */
bool op_http_listen_is_loopback(int fd);

/* Starts serving on listen_fd (from op_http_listen; the server owns it
 * from now on, also on failure) on the library's own thread(s). cfg,
 * store and sec's members are borrowed and must outlive the server; sec
 * may be NULL. Returns OP_OK, OP_ENOMEM or OP_EIO (TLS or thread set-up
 * failed; logged). */
int op_http_start(struct op_http **out, const struct op_config *cfg, struct op_store *store,
                  const struct op_http_sec *sec, int listen_fd);

/* Whether the server speaks HTTPS. */
bool op_http_tls(const struct op_http *h);

/* Prints the route table, one "METHOD PATTERN ROLE" line per route (the
 * RBAC tests and docs/security.md are generated from it). */
void op_http_routes_print(FILE *out);

/* The port actually bound (useful with port 0). */
uint16_t op_http_port(const struct op_http *h);

/* Stops accepting new connections; requests in progress go on. */
void op_http_quiesce(struct op_http *h);

/* Requests begun (headers received) and not yet finished. */
int op_http_inflight(const struct op_http *h);

/* Requests accepted (body complete, handed to the store) and not yet
 * answered: what a drain waits for. After op_http_quiesce no request
 * becomes pending. */
int op_http_pending(const struct op_http *h);

/* One alert event as the JSON object GET /v1/alerts lists (id, rule,
 * sensor, kind, state, severity, cause, value, threshold, since, fired_at,
 * ts), appended to out. OP_OK, OP_ETOOBIG past out's cap, OP_ENOMEM. Any
 * thread. An op_rules_alert_format_fn, for the webhook sink. */
int op_http_alert_json(const struct op_store_alert *a, struct op_buf *out);

/* An op_rules_publish_fn (ctx is the server): hands committed alert events
 * to the GET /v1/alerts/stream subscribers. Copies and returns; never
 * waits for a client. Any one thread (the rules thread). */
void op_http_alerts_publish(void *h, const struct op_store_alert *events, size_t n);

/* Closes every connection, stops the threads and frees. NULL-safe. */
void op_http_stop(struct op_http *h);

#endif
