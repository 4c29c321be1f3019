/*
 * The old Python service's four routes, byte for byte as its FastAPI
 * implementation answered them (compact JSON, no trailing newline), so
 * devices written for it keep working. They are thin views over the same
 * store as the v1 API: /data writes readings, /status writes devices.
 */
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"

static const char data_ok[] = "{\"status\":\"success\",\"message\":\"Data received!\"}";
static const char status_ok[] = "{\"status\":\"success\"}";

static void compat_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc) {
        http__reply_store_error(r, w->rc);
    } else if (w->op == OP_STORE_APPEND) {
        op_counter_add(r->srv->readings_accepted, w->n);
        http__reply_static(r, 201, data_ok, "application/json");
    } else {
        http__reply_static(r, 200, status_ok, "application/json");
    }
    http__resume(r);
}

void http__h_compat_data_post(struct http_req *r)
{
    struct op_diag d;
    op_diag_clear(&d);
    double value;
    const char *body = r->body.data ? r->body.data : "";
    int st = http__parse_compat_data(body, r->body.len, &r->owned[0], &value, &d);
    if (st) {
        http__reply_error(r, (unsigned)st, &d);
        return;
    }
    r->readings.v = op_calloc(1, sizeof *r->readings.v);
    if (!r->readings.v) {
        http__reply_store_error(r, OP_ENOMEM);
        return;
    }
    r->readings.n = 1;
    r->readings.v[0] = (struct op_reading){ r->owned[0], (uint32_t)strlen(r->owned[0]),
                                            op_time_now_ms(), value };
    r->write.op = OP_STORE_APPEND;
    r->write.readings = r->readings.v;
    r->write.n = 1;
    http__submit_write(r, compat_done);
}

void http__h_compat_status_post(struct http_req *r)
{
    const char *id = http__query(r, "device_id");
    const char *status = http__query(r, "status");
    if (!id || !status) {
        http__reply_errorf(r, 400, "missing_parameter", id ? "status" : "device_id",
                           "device_id and status are required query parameters");
        return;
    }
    if (!http__valid_name(id, strlen(id), false)) {
        http__reply_errorf(r, 422, "invalid_device", "device_id",
                           "a device id is 1-128 bytes of [A-Za-z0-9_.:-]");
        return;
    }
    if (!status[0] || strlen(status) > 256) {
        http__reply_errorf(r, 422, "invalid_device", "status", "status must be 1-256 bytes");
        return;
    }
    r->write.op = OP_STORE_DEVICE_STATUS;
    r->write.device_id = id;
    r->write.status = status;
    r->write.updated_at = op_time_now_ms();
    http__submit_write(r, compat_done);
}

/* GET /data and GET /status are one flat JSON object each. */
static int data_entry(void *ctx, const struct op_sensor_info *si)
{
    struct http_json *j = ctx;
    http__json_key(j, si->name);
    http__json_double(j, si->last_value);
    return j->rc != 0;
}

static int status_entry(void *ctx, const struct op_device_info *di)
{
    struct http_json *j = ctx;
    http__json_key(j, di->id);
    http__json_str(j, di->status, strlen(di->status));
    return j->rc != 0;
}

static int list_data(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    (void)r;
    return op_store_list_sensors(rd, data_entry, j);
}

static int list_status(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    (void)r;
    return op_store_list_devices(rd, status_entry, j);
}

static void data_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, NULL, list_data);
    http__resume(job->ctx);
}

static void status_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, NULL, list_status);
    http__resume(job->ctx);
}

void http__h_compat_data_get(struct http_req *r)
{
    http__submit_read(r, data_job);
}

void http__h_compat_status_get(struct http_req *r)
{
    http__submit_read(r, status_job);
}
