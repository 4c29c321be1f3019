/*
 * The devices routes of the v1 API: a device is an id with a status, a
 * JSON object of attributes and the time of its last update.
 */
#include <microhttpd.h>
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"

static void write_device(struct http_json *j, const struct op_device_info *di)
{
    http__json_obj_open(j);
    http__json_key(j, "id");
    http__json_str(j, di->id, strlen(di->id));
    http__json_key(j, "status");
    http__json_str(j, di->status, strlen(di->status));
    http__json_key(j, "attributes");
    http__json_raw(j, di->attributes, strlen(di->attributes));
    http__json_key(j, "updated_at");
    http__json_int(j, di->updated_at);
    http__json_obj_close(j);
}

/* Replies with one device document (used after PUT and for GET). */
static void reply_device(struct http_req *r, const struct op_device_info *di)
{
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, HTTP_RESPONSE_MAX);
    http__json_init(&j, &b);
    write_device(&j, di);
    http__reply_json_doc(r, &j, &b, 0);
}

/* The {id} segment, checked; replies 422 and returns NULL when invalid. */
static const char *device_id(struct http_req *r)
{
    if (!http__valid_name(r->param.p, r->param.len, false)) {
        http__reply_errorf(r, 422, "invalid_device", "id",
                           "a device id is 1-128 bytes of [A-Za-z0-9_.:-]");
        return NULL;
    }
    return r->param.p; /* the last path segment: NUL-terminated */
}

static void put_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc) {
        http__reply_store_error(r, w->rc);
    } else {
        struct op_device_info di = { w->device_id, w->status, w->attributes, w->updated_at };
        reply_device(r, &di);
    }
    http__resume(r);
}

void http__h_device_put(struct http_req *r)
{
    const char *id = device_id(r);
    if (!id)
        return;
    struct op_diag d;
    op_diag_clear(&d);
    const char *body = r->body.data ? r->body.data : "";
    int st = http__parse_device(body, r->body.len, &r->owned[0], &r->owned[1], &d);
    if (st) {
        http__reply_error(r, (unsigned)st, &d);
        return;
    }
    r->write.op = OP_STORE_DEVICE_PUT;
    r->write.device_id = id;
    r->write.status = r->owned[0];
    r->write.attributes = r->owned[1];
    r->write.updated_at = op_time_now_ms();
    http__submit_write(r, put_done);
}

static int got_device(void *ctx, const struct op_device_info *di)
{
    reply_device(ctx, di);
    return 0;
}

static void get_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_req *r = job->ctx;
    int rc = op_store_get_device(rd, r->param.p, got_device, r);
    if (rc == OP_ENOTFOUND)
        http__reply_errorf(r, 404, "device_not_found", "id", "no device '%.128s'", r->param.p);
    else if (rc < 0)
        http__reply_store_error(r, rc);
    http__resume(r);
}

void http__h_device_get(struct http_req *r)
{
    if (device_id(r))
        http__submit_read(r, get_job);
}

static void delete_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc == OP_ENOTFOUND)
        http__reply_errorf(r, 404, "device_not_found", "id", "no device '%.128s'", w->device_id);
    else if (w->rc)
        http__reply_store_error(r, w->rc);
    else
        http__reply_empty(r, 204);
    http__resume(r);
}

void http__h_device_delete(struct http_req *r)
{
    const char *id = device_id(r);
    if (!id)
        return;
    r->write.op = OP_STORE_DEVICE_DELETE;
    r->write.device_id = id;
    http__submit_write(r, delete_done);
}

static int list_one(void *ctx, const struct op_device_info *di)
{
    struct http_json *j = ctx;
    write_device(j, di);
    return j->rc != 0;
}

static int list_devices(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    (void)r;
    return op_store_list_devices(rd, list_one, j);
}

static void list_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, "devices", list_devices);
    http__resume(job->ctx);
}

void http__h_devices_list(struct http_req *r)
{
    http__submit_read(r, list_job);
}
