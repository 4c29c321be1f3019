/* Operations routes: liveness, readiness and Prometheus metrics. */
#include "http_int.h"
#include "outpost/err.h"

#define METRICS_MAX (4u << 20)

void http__h_healthz(struct http_req *r)
{
    http__reply_static(r, 200, "{\"status\":\"ok\"}", "application/json");
}

void http__h_readyz(struct http_req *r)
{
    if (op_store_ready(r->srv->store))
        http__reply_static(r, 200, "{\"status\":\"ready\"}", "application/json");
    else
        http__reply_errorf(r, 503, "not_ready", NULL, "the store is not open or its writer stopped");
}

void http__h_metrics(struct http_req *r)
{
    struct op_buf b;
    op_buf_init(&b, METRICS_MAX);
    int rc = op_metrics_render(&b);
    if (rc) {
        op_buf_fini(&b);
        http__reply_errorf(r, 500, "internal", NULL, "cannot render metrics: %s", op_err_str(rc));
        return;
    }
    http__reply_buf(r, 200, &b, "text/plain; version=0.0.4; charset=utf-8");
}
