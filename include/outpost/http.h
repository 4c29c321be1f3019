/*
 * http: the HTTP server (libmicrohttpd in its epoll internal-thread mode),
 * the router, JSON handling, the v1 API and the old service's compat API.
 * May call util, core and store.
 */
#ifndef OUTPOST_HTTP_H
#define OUTPOST_HTTP_H

#include <stdint.h>

#include "outpost/core.h"
#include "outpost/store.h"

struct op_http;

/* Binds cfg->listen and starts serving on the library's own thread(s).
 * cfg and store are borrowed and must outlive the server. Returns OP_OK,
 * OP_EINVAL (bad listen address) or OP_EIO (bind failed; logged). */
int op_http_start(struct op_http **out, const struct op_config *cfg, struct op_store *store);

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

/* Closes every connection, stops the threads and frees. NULL-safe. */
void op_http_stop(struct op_http *h);

#endif
