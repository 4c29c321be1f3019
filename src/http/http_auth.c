/*
 * Authorization: every route's role (http_router.c) against the caller's
 * credential, a bearer token or a verified client certificate mapped to a
 * role. It runs when the headers are in, before any body is read. Repeated
 * failures from one address earn 429 for the rest of the failure window,
 * which turns token guessing into a few tries a minute.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "http_int.h"
#include "outpost/err.h"

static const char *const fail_reason[] = {
    [HA_MISSING] = "missing", [HA_INVALID] = "invalid", [HA_FORBIDDEN] = "forbidden",
    [HA_RATE_LIMITED] = "rate_limited",
};

int http__auth_start(struct op_http *h)
{
    for (int i = 0; i < 4; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "reason=\"%s\"", fail_reason[i]);
        h->auth_fail[i] = op_metrics_counter("outpost_http_auth_failures_total", labels,
                                             "Requests refused by authorization, by reason");
    }
    return op_sec_limiter_create(&h->limiter, (int)h->cfg->auth_max_failures,
                                 h->cfg->auth_failure_window_ms);
}

void http__auth_stop(struct op_http *h)
{
    op_sec_limiter_destroy(h->limiter);
    h->limiter = NULL;
}

void http__auth_on_connection(struct op_http *h, struct MHD_Connection *conn)
{
    if (!h->tls || !h->tls->client_ca_pem)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci && ci->tls_session)
        op_sec_tls_session_require_client_cert(ci->tls_session);
}

/* The limiter's clock: monotonic, so that a wall clock stepped by NTP on
 * a box that booted with a wrong RTC neither extends nor ends a lockout. */
static int64_t now_ms(void)
{
    return op_time_mono_ns() / 1000000;
}

/* The client's address bytes, for the limiter: an IPv4 address, or the
 * /64 of an IPv6 one (a single host usually holds a whole /64, so keying
 * by /128 would give it endless fresh budgets). */
static size_t client_addr(struct MHD_Connection *conn, const void **p)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        *p = &((const struct sockaddr_in *)sa)->sin_addr;
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        *p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return 8;
    }
    return 0;
}

static bool refuse(struct http_req *r, enum http_auth_fail why, const char *fmt_detail)
{
    op_counter_add(r->srv->auth_fail[why], 1);
    if (why == HA_FORBIDDEN) {
        http__reply_errorf(r, 403, "forbidden", NULL, "%s", fmt_detail);
        return false;
    }
    http__reply_errorf(r, 401, "unauthorized", NULL, "%s", fmt_detail);
    http__reply_add_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                           why == HA_INVALID ? "Bearer realm=\"outpost\", error=\"invalid_token\""
                                             : "Bearer realm=\"outpost\"");
    const void *addr = NULL;
    size_t alen = client_addr(r->conn, &addr);
    op_sec_limiter_fail(r->srv->limiter, addr, alen, now_ms());
    return false;
}

/* The role of the connection's verified client certificate, if it has
 * one mapped in auth.cert_role. */
static bool cert_role(struct http_req *r, enum op_role *role)
{
    if (!r->srv->tls || !r->srv->tls->client_ca_pem)
        return false;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session || op_sec_tls_peer_cn(ci->tls_session, r->cn, sizeof r->cn))
        return false;
    if (op_sec_cert_role(r->srv->auth, r->cn, role))
        return false;
    r->principal = r->cn;
    return true;
}

static bool check_role(struct http_req *r, enum op_role have)
{
    if (op_sec_role_allows(have, r->route->role))
        return true;
    char msg[160];
    snprintf(msg, sizeof msg, "the %s role cannot call this route (it needs %s)",
             op_sec_role_name(have), op_sec_role_name(r->route->role));
    return refuse(r, HA_FORBIDDEN, msg);
}

/* Whether any credential is configured. A client CA counts: a verified
 * certificate is an identity, and one without a cert_role line gets no
 * role (rather than every role). */
static bool credentials_required(const struct op_http *h)
{
    return op_sec_auth_enabled(h->auth) || (h->tls && h->tls->client_ca_pem);
}

bool http__authorize(struct http_req *r)
{
    struct op_http *h = r->srv;
    if (r->route->role == OP_ROLE_PUBLIC || !credentials_required(h))
        return true;
    const void *addr = NULL;
    size_t alen = client_addr(r->conn, &addr);
    int64_t wait_ms = op_sec_limiter_check(h->limiter, addr, alen, now_ms());
    if (wait_ms > 0) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)((wait_ms + 999) / 1000));
        op_counter_add(h->auth_fail[HA_RATE_LIMITED], 1);
        http__reply_errorf(r, 429, "rate_limited", NULL,
                           "too many failed authentications from this address; retry later");
        http__reply_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
        return false;
    }
    enum op_role role;
    const char *authz =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (authz) {
        struct op_str tok;
        if (op_sec_bearer_parse(authz, strlen(authz), &tok))
            return refuse(r, HA_INVALID, "the Authorization header is not `Bearer <token>`");
        if (op_sec_token_lookup(h->auth, tok, &role, &r->principal))
            return refuse(r, HA_INVALID, "unknown token");
        return check_role(r, role);
    }
    if (cert_role(r, &role))
        return check_role(r, role);
    return refuse(r, HA_MISSING, "this route needs a token (Authorization: Bearer ...)");
}
