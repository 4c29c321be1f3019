/*
 * Building responses: JSON bodies, the DESIGN.md error body, and the map
 * from store errors to statuses. Safe to call from the store's threads:
 * creating a libmicrohttpd response only allocates.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"

static void set_response(struct http_req *r, unsigned status, struct MHD_Response *resp,
                         const char *ctype)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->status = status;
    r->resp = resp;
    if (resp && ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
}

void http__reply_response(struct http_req *r, unsigned status, struct MHD_Response *resp,
                          const char *ctype)
{
    set_response(r, status, resp, ctype);
}

void http__reply_json(struct http_req *r, unsigned status, struct op_buf *body)
{
    http__reply_buf(r, status, body, "application/json");
}

void http__reply_buf(struct http_req *r, unsigned status, struct op_buf *body, const char *ctype)
{
    size_t len;
    char *data = op_buf_steal(body, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, op_free);
    if (!resp)
        op_free(data);
    set_response(r, status, resp, ctype);
}

void http__reply_static(struct http_req *r, unsigned status, const char *body, const char *ctype)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    set_response(r, status, resp, ctype);
}

void http__reply_empty(struct http_req *r, unsigned status)
{
    set_response(r, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT),
                  NULL);
}

void http__reply_add_header(struct http_req *r, const char *name, const char *value)
{
    if (r->resp)
        MHD_add_response_header(r->resp, name, value);
}

void http__reply_error(struct http_req *r, unsigned status, const struct op_diag *d)
{
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, 4096);
    http__json_init(&j, &b);
    http__json_obj_open(&j);
    http__json_key(&j, "error");
    http__json_obj_open(&j);
    http__json_key(&j, "code");
    http__json_str(&j, d->code, strlen(d->code));
    http__json_key(&j, "message");
    http__json_str(&j, d->msg, strlen(d->msg));
    if (d->index >= 0) {
        http__json_key(&j, "index");
        http__json_int(&j, d->index);
    }
    if (d->field[0]) {
        http__json_key(&j, "field");
        http__json_str(&j, d->field, strlen(d->field));
    }
    http__json_obj_close(&j);
    http__json_obj_close(&j);
    if (http__json_fini(&j)) {
        /* Only an allocation failure gets here: answer without a body. */
        op_buf_fini(&b);
        http__reply_empty(r, status);
        return;
    }
    http__reply_json(r, status, &b);
    if (status == 503)
        http__reply_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

void http__reply_errorf(struct http_req *r, unsigned status, const char *code, const char *field,
                        const char *fmt, ...)
{
    struct op_diag d;
    op_diag_clear(&d);
    snprintf(d.code, sizeof d.code, "%s", code);
    if (field)
        snprintf(d.field, sizeof d.field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.msg, sizeof d.msg, fmt, ap);
    va_end(ap);
    http__reply_error(r, status, &d);
}

void http__reply_store_error(struct http_req *r, int rc)
{
    switch (rc) {
    case OP_EBUSY:
        http__reply_errorf(r, 503, "overloaded", NULL,
                           "the write queue is full; retry after the Retry-After delay");
        break;
    case OP_ENOSPC:
        http__reply_errorf(r, 507, "storage_full",  NULL,
                           "the storage is full; nothing of this request was stored");
        break;
    case OP_ESHUTDOWN:
        http__reply_errorf(r, 503, "shutting_down", NULL, "the node is shutting down");
        break;
    case OP_ENOTFOUND:
        http__reply_errorf(r, 404, "not_found", NULL, "not found");
        break;
    case OP_ENOMEM:
        http__reply_errorf(r, 503, "overloaded", NULL, "out of memory; retry later");
        break;
    case OP_ETOOBIG:
        http__reply_errorf(r, 422, "query_too_large", NULL,
                           "the query ran past its time limit: narrow the range or use a larger "
                           "step");
        break;
    default:
        http__reply_errorf(r, 500, "storage_error", NULL, "the store failed: %s",
                           op_err_str(rc));
        break;
    }
}

void http__reply_json_doc(struct http_req *r, struct http_json *j, struct op_buf *b, int rc)
{
    int jrc = http__json_fini(j);
    if (rc < 0) {
        op_buf_fini(b);
        http__reply_store_error(r, rc);
    } else if (jrc) {
        op_buf_fini(b);
        http__reply_errorf(r, 500, "internal", NULL, "cannot build the response: %s",
                           op_err_str(jrc));
    } else {
        http__reply_json(r, 200, b);
    }
}

void http__reply_list(struct http_req *r, struct op_store_reader *rd, const char *key,
                      http_list_fn *fn)
{
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, HTTP_RESPONSE_MAX);
    http__json_init(&j, &b);
    http__json_obj_open(&j);
    if (key) {
        http__json_key(&j, key);
        http__json_arr_open(&j);
    }
    int rc = fn(r, rd, &j);
    if (key)
        http__json_arr_close(&j);
    http__json_obj_close(&j);
    http__reply_json_doc(r, &j, &b, rc);
}
