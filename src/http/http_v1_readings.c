/*
 * The readings routes of the v1 API: batched ingest (acknowledged only
 * after commit), range queries with a continuation cursor, aggregates and
 * the sensor list. Query parameters are checked on the event loop; the
 * queries and their JSON run on a store reader thread.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"

#define STORE_MAX_STR_(x) #x
#define STORE_MAX_STR STORE_MAX_STR_(OP_STORE_SENSOR_MAX)
#include "outpost/err.h"

#define QUERY_LIMIT_MAX 10000
#define QUERY_LIMIT_DEFAULT 1000
#define BUCKETS_MAX 10000

/* ---- POST /v1/readings -------------------------------------------- */

static void readings_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc) {
        http__reply_store_error(r, w->rc);
    } else {
        op_counter_add(r->srv->readings_accepted, w->n);
        op_histogram_observe(r->srv->batch_hist, (double)w->n);
        if (w->n == 1) {
            http__reply_static(r, 201, "{\"accepted\":1}", "application/json");
        } else {
            struct op_buf b;
            struct http_json j;
            op_buf_init(&b, 64);
            http__json_init(&j, &b);
            http__json_obj_open(&j);
            http__json_key(&j, "accepted");
            http__json_int(&j, (int64_t)w->n);
            http__json_obj_close(&j);
            if (http__json_fini(&j)) {
                op_buf_fini(&b);
                http__reply_errorf(r, 500, "internal", NULL, "cannot build the response");
            } else {
                http__reply_json(r, 201, &b);
            }
        }
    }
    http__resume(r);
}

void http__h_readings_post(struct http_req *r)
{
    struct op_diag d;
    op_diag_clear(&d);
    const char *body = r->body.data ? r->body.data : "";
    int st = http__parse_readings(body, r->body.len, (size_t)r->srv->cfg->http_max_batch,
                                  op_time_now_ms(), &r->readings, &d);
    if (st) {
        http__reply_error(r, (unsigned)st, &d);
        return;
    }
    /* Sensor names were copied out of the body: give its memory back while
     * the batch waits for the writer. */
    http__body_release(r);
    r->write.op = OP_STORE_APPEND;
    r->write.readings = r->readings.v;
    r->write.n = r->readings.n;
    http__submit_write(r, readings_done);
}

/* ---- query parameters --------------------------------------------- */

/* The parsers below see the parameters only through get, so they are pure
 * functions of the query string (tests/fuzz/fuzz_query.c drives them
 * directly). Each failure fills d as the error body wants it and returns
 * 400. */

static int param_error(struct op_diag *d, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int param_error(struct op_diag *d, const char *code, const char *field, const char *fmt, ...)
{
    snprintf(d->code, sizeof d->code, "%s", code);
    snprintf(d->field, sizeof d->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return 400;
}

/* Reads an optional integer parameter; 400 when it is present but not an
 * integer. */
static int param_i64(http_param_fn *get, void *ctx, const char *name, int64_t def, int64_t *out,
                     struct op_diag *d)
{
    const char *v = get(ctx, name);
    *out = def;
    if (!v || !op_parse_i64(v, strlen(v), out))
        return 0;
    return param_error(d, "invalid_parameter", name, "%s must be an integer", name);
}

/* The sensor parameter and the from/to range shared by the read routes. */
static int params_sensor_range(http_param_fn *get, void *ctx, const char **sensor, int64_t *from,
                               int64_t *to, struct op_diag *d)
{
    *sensor = get(ctx, "sensor");
    if (!*sensor)
        return param_error(d, "missing_parameter", "sensor", "sensor is required");
    if (!http__valid_name_max(*sensor, strlen(*sensor), true, OP_STORE_SENSOR_MAX))
        return param_error(d, "invalid_parameter", "sensor",
                           "sensor must be 1-" STORE_MAX_STR " bytes of [A-Za-z0-9_.:/-]");
    int rc = param_i64(get, ctx, "from", INT64_MIN, from, d);
    if (!rc)
        rc = param_i64(get, ctx, "to", INT64_MAX, to, d);
    if (rc)
        return rc;
    if (*from > *to)
        return param_error(d, "invalid_parameter", "from", "from must not be after to");
    return 0;
}

static bool parse_cursor(const char *c, int64_t *ts, int64_t *seq)
{
    const char *us = strchr(c, '_');
    return us && !op_parse_i64(c, (size_t)(us - c), ts) &&
           !op_parse_i64(us + 1, strlen(us + 1), seq);
}

int http__parse_range_params(http_param_fn *get, void *ctx, struct op_range_query *q,
                             struct op_diag *d)
{
    memset(q, 0, sizeof *q);
    int rc = params_sensor_range(get, ctx, &q->sensor, &q->from, &q->to, d);
    if (!rc)
        rc = param_i64(get, ctx, "limit", QUERY_LIMIT_DEFAULT, &q->limit, d);
    if (rc)
        return rc;
    if (q->limit < 1 || q->limit > QUERY_LIMIT_MAX)
        return param_error(d, "invalid_parameter", "limit", "limit must be in [1, %d]",
                           QUERY_LIMIT_MAX);
    const char *order = get(ctx, "order");
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        return param_error(d, "invalid_parameter", "order", "order must be asc or desc");
    q->desc = order && !strcmp(order, "desc");
    const char *cursor = get(ctx, "cursor");
    if (cursor) {
        if (!parse_cursor(cursor, &q->after_ts, &q->after_seq))
            return param_error(d, "invalid_parameter", "cursor",
                               "cursor must be a value returned in next");
        q->has_after = true;
    }
    return 0;
}

/* Aggregate functions: the index is the bit in r->q.fns and the order of
 * the keys in each bucket. */
enum agg_fn { AF_AVG, AF_MIN, AF_MAX, AF_COUNT, AF_SUM, AF_FIRST, AF_LAST, NFNS };
static const char *const fn_names[NFNS] = { "avg", "min", "max", "count", "sum", "first", "last" };
#define AF_BIT(f) (1u << (f))

static bool parse_fns(const char *s, unsigned *out)
{
    *out = 0;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int found = -1;
        for (int i = 0; i < NFNS; i++)
            if (strlen(fn_names[i]) == len && !strncmp(s, fn_names[i], len))
                found = i;
        if (found < 0)
            return false;
        *out |= AF_BIT(found);
        s += len + (comma ? 1 : 0);
    }
    return *out != 0;
}

int http__parse_agg_params(http_param_fn *get, void *ctx, struct op_agg_query *q, unsigned *fns,
                           struct op_diag *d)
{
    memset(q, 0, sizeof *q);
    int rc = params_sensor_range(get, ctx, &q->sensor, &q->from, &q->to, d);
    if (rc)
        return rc;
    const char *step = get(ctx, "step");
    q->step_ms = 60000;
    if (step && (op_parse_duration_ms(step, strlen(step), &q->step_ms) || q->step_ms < 1))
        return param_error(d, "invalid_parameter", "step",
                           "step must be a positive duration such as 500ms, 60s, 5m, 1h, 1d");
    const char *fn = get(ctx, "fn");
    *fns = AF_BIT(AF_AVG) | AF_BIT(AF_MIN) | AF_BIT(AF_MAX) | AF_BIT(AF_COUNT);
    if (fn && !parse_fns(fn, fns))
        return param_error(d, "invalid_parameter", "fn",
                           "fn must be a comma list of avg, min, max, count, sum, first, last");
    return 0;
}

/* The getter the handlers pass: libmicrohttpd's decoded arguments. */
static const char *conn_param(void *ctx, const char *key)
{
    return http__query(ctx, key);
}

/* ---- GET /v1/readings ----------------------------------------------- */

struct range_emit {
    struct http_req *r;
    struct http_json *j;
    int64_t last_ts, last_seq;
};

static int emit_row(void *ctx, int64_t ts, double value, int64_t seq)
{
    struct range_emit *e = ctx;
    struct http_req *r = e->r;
    /* One row more than the limit was asked for: its presence means
     * there is a next page. */
    if (++r->q.count > r->q.range.limit - 1) {
        r->q.overflow = true;
        return 1;
    }
    http__json_obj_open(e->j);
    http__json_key(e->j, "ts");
    http__json_int(e->j, ts);
    http__json_key(e->j, "value");
    http__json_double(e->j, value);
    http__json_obj_close(e->j);
    e->last_ts = ts;
    e->last_seq = seq;
    return e->j->rc != 0;
}

/* Starts the answer of a per-sensor read: {"sensor": "...", */
static void sensor_doc_begin(struct op_buf *b, struct http_json *j, const char *sensor)
{
    op_buf_init(b, HTTP_RESPONSE_MAX);
    http__json_init(j, b);
    http__json_obj_open(j);
    http__json_key(j, "sensor");
    http__json_str(j, sensor, strlen(sensor));
}

static void range_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_req *r = job->ctx;
    struct op_buf b;
    struct http_json j;
    sensor_doc_begin(&b, &j, r->q.range.sensor);
    struct range_emit e = { r, &j, 0, 0 };
    http__json_key(&j, "readings");
    http__json_arr_open(&j);
    int rc = op_store_query_range(rd, &r->q.range, emit_row, &e);
    http__json_arr_close(&j);
    http__json_key(&j, "next");
    if (r->q.overflow) {
        char cur[48];
        int n = snprintf(cur, sizeof cur, "%" PRId64 "_%" PRId64, e.last_ts, e.last_seq);
        http__json_str(&j, cur, (size_t)n);
    } else {
        http__json_null(&j);
    }
    http__json_obj_close(&j);
    http__reply_json_doc(r, &j, &b, rc);
    http__resume(r);
}

void http__h_readings_get(struct http_req *r)
{
    struct op_diag d;
    op_diag_clear(&d);
    if (http__parse_range_params(conn_param, r, &r->q.range, &d)) {
        http__reply_error(r, 400, &d);
        return;
    }
    /* One row more than the limit is asked for: its presence means there
     * is a next page (emit_row). */
    r->q.range.limit++;
    http__submit_read(r, range_job);
}

/* ---- GET /v1/readings/aggregate ------------------------------------- */

static int emit_bucket(void *ctx, const struct op_agg_bucket *bk)
{
    struct range_emit *e = ctx;
    struct http_req *r = e->r;
    if (++r->q.count > BUCKETS_MAX) {
        r->q.overflow = true;
        return 1;
    }
    double vals[NFNS] = { bk->sum / (double)bk->count, bk->min, bk->max, (double)bk->count,
                          bk->sum, bk->first, bk->last };
    http__json_obj_open(e->j);
    http__json_key(e->j, "ts");
    http__json_int(e->j, bk->start);
    for (int i = 0; i < NFNS; i++) {
        if (!(r->q.fns & AF_BIT(i)))
            continue;
        http__json_key(e->j, fn_names[i]);
        if (i == AF_COUNT)
            http__json_int(e->j, bk->count);
        else
            http__json_double(e->j, vals[i]);
    }
    http__json_obj_close(e->j);
    return e->j->rc != 0;
}

static void aggregate_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    struct http_req *r = job->ctx;
    struct op_buf b;
    struct http_json j;
    sensor_doc_begin(&b, &j, r->q.agg.sensor);
    struct range_emit e = { r, &j, 0, 0 };
    http__json_key(&j, "step");
    http__json_int(&j, r->q.agg.step_ms);
    http__json_key(&j, "buckets");
    http__json_arr_open(&j);
    int rc = op_store_query_aggregate(rd, &r->q.agg, emit_bucket, &e);
    http__json_arr_close(&j);
    http__json_obj_close(&j);
    if (r->q.overflow) {
        http__json_fini(&j);
        op_buf_fini(&b);
        http__reply_errorf(r, 422, "too_many_buckets", "step",
                           "more than %d buckets: use a larger step or a shorter range",
                           BUCKETS_MAX);
    } else {
        http__reply_json_doc(r, &j, &b, rc);
    }
    http__resume(r);
}

void http__h_readings_aggregate(struct http_req *r)
{
    struct op_diag d;
    op_diag_clear(&d);
    if (http__parse_agg_params(conn_param, r, &r->q.agg, &r->q.fns, &d)) {
        http__reply_error(r, 400, &d);
        return;
    }
    http__submit_read(r, aggregate_job);
}

/* ---- GET /v1/sensors -------------------------------------------------- */

static int emit_sensor(void *ctx, const struct op_sensor_info *si)
{
    struct http_json *j = ctx;
    http__json_obj_open(j);
    http__json_key(j, "sensor");
    http__json_str(j, si->name, strlen(si->name));
    http__json_key(j, "count");
    http__json_int(j, si->count);
    http__json_key(j, "first_ts");
    http__json_int(j, si->first_ts);
    http__json_key(j, "last_ts");
    http__json_int(j, si->last_ts);
    http__json_key(j, "last_value");
    http__json_double(j, si->last_value);
    http__json_obj_close(j);
    return j->rc != 0;
}

static int list_sensors(struct http_req *r, struct op_store_reader *rd, struct http_json *j)
{
    (void)r;
    return op_store_list_sensors(rd, emit_sensor, j);
}

static void sensors_job(struct op_store_reader *rd, struct op_store_read_job *job)
{
    http__reply_list(job->ctx, rd, "sensors", list_sensors);
    http__resume(job->ctx);
}

void http__h_sensors(struct http_req *r)
{
    http__submit_read(r, sensors_job);
}
