/*
 * store_query.c: the queries a read job runs on its reader connection:
 * ranges of one sensor's readings (with a cursor to page through them),
 * time-bucketed aggregates, the sensor list and the devices. Each query
 * reads one consistent snapshot: a single statement, or for readings a
 * scan in one read transaction (store_scan.c), and ends it before it
 * returns so the reader never pins an old snapshot (which would keep the
 * WAL from being checkpointed). Statements are prepared on first use and
 * kept for the connection's lifetime.
 */
#include <limits.h>
#include <string.h>

#include "store_int.h"

/* The scan's statements (store_scan.c). The log is a few records, read
 * whole. The chunk queries name their index, as the ORDER BY needs that
 * one's order; ?2 reaches back (asc) or forward (desc) by the sensor's
 * span, so a chunk that starts before the window and reaches into it is
 * found. */
static const char *const rsql[R_STMT_COUNT] = {
    [R_BEGIN] = "BEGIN",
    [R_COMMIT] = "COMMIT",
    [R_SCAN_SENSOR] = "SELECT id, span FROM sensors WHERE name = ?1",
    [R_SCAN_LOG] = "SELECT seq_lo, n, data FROM log ORDER BY seq_lo",
    [R_SCAN_CHUNKS_ASC] = "SELECT ts_lo, points, seqs FROM chunks INDEXED BY chunks_lo"
                          " WHERE sensor_id = ?1 AND ts_lo >= ?2 AND ts_lo <= ?3"
                          " AND ts_hi >= ?4 ORDER BY ts_lo",
    [R_SCAN_CHUNKS_DESC] = "SELECT ts_hi, points, seqs FROM chunks INDEXED BY chunks_hi"
                           " WHERE sensor_id = ?1 AND ts_hi <= ?2 AND ts_hi >= ?3"
                           " AND ts_lo <= ?4 ORDER BY ts_hi DESC",
    [R_SENSORS] = "SELECT name, count, first_ts, last_ts, last_value FROM sensors"
                  " WHERE count > 0 ORDER BY name",
    [R_DEVICE_GET] = "SELECT id, status, attributes, updated_at FROM devices WHERE id = ?1",
    [R_DEVICES] = "SELECT id, status, attributes, updated_at FROM devices ORDER BY id",
};

const char *store__rsql_of(enum store_rstmt which)
{
    return rsql[which] ? rsql[which]
           : store__rules_rsql[which] ? store__rules_rsql[which]
                                      : store__outbox_rsql[which];
}

sqlite3_stmt *store__rstmt(struct op_store_reader *r, enum store_rstmt which)
{
    if (!r->stmt[which])
        store__prepare(r->db, store__rsql_of(which), &r->stmt[which]);
    return r->stmt[which];
}
#define stmt_get store__rstmt

/* Ends a query: logs a failed step (once, here, where it happened), resets
 * the statement and drops the borrowed text bindings. */
int store__rstmt_end(struct op_store_reader *r, sqlite3_stmt *st, int src, int delivered)
{
    int rc = OP_OK;
    if (src != SQLITE_DONE && src != SQLITE_ROW) {
        rc = store__err(r->db, src, 0);
        OP_ERROR(STORE_SUB, "query failed: %s", sqlite3_errmsg(r->db));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc != OP_OK ? rc : delivered;
}
#define stmt_end store__rstmt_end

int op_store_query_range(struct op_store_reader *r, const struct op_range_query *q, op_row_fn *fn,
                         void *ctx)
{
    if (!r || !q || !q->sensor || !fn || q->limit < 1)
        return OP_EINVAL;
    if (q->from >= q->to)
        return 0;
    struct store_scan sc = { 0 };
    if (q->has_after)
        store__scan_after(&sc, q->desc, q->after_ts, q->after_seq);
    int64_t limit = q->limit < INT_MAX ? q->limit : INT_MAX; /* the count is an int */
    int n = 0, rc = store__scan_open(&sc, r, q->sensor, q->desc, q->from, q->to, limit);
    int64_t ts, seq;
    double v;
    while (rc == OP_OK && n < limit && (rc = store__scan_next(&sc, &ts, &v, &seq)) == 1) {
        rc = OP_OK;
        n++;
        if (fn(ctx, ts, v, seq) != 0)
            break;
    }
    rc = store__scan_close(&sc, rc < 0 ? rc : OP_OK);
    return rc != OP_OK ? rc : n;
}

/* The bucket holding ts: [floor(ts / step) * step, that + step), each
 * bound clamped where it would leave int64_t. */
static void bucket_bounds(int64_t ts, int64_t step, int64_t *start, int64_t *end)
{
    int64_t rem = ts % step;
    if (rem < 0)
        rem += step; /* C division truncates toward zero; buckets floor */
    if (__builtin_sub_overflow(ts, rem, start))
        *start = INT64_MIN;
    if (__builtin_add_overflow(ts, step - rem, end))
        *end = INT64_MAX; /* the last bucket runs to the end of time */
}

int op_store_query_aggregate(struct op_store_reader *r, const struct op_agg_query *q,
                             op_bucket_fn *fn, void *ctx)
{
    if (!r || !q || !q->sensor || !fn || q->step_ms < 1)
        return OP_EINVAL;
    if (q->from >= q->to)
        return 0;
    struct store_scan sc = { 0 };
    int rc = store__scan_open(&sc, r, q->sensor, false, q->from, q->to, -1);
    struct op_agg_bucket b = { 0 };
    int64_t end = 0, ts, seq; /* the current bucket holds ts in [b.start, end) */
    double v;
    bool open = false, stopped = false;
    int n = 0;
    while (rc == OP_OK && (rc = store__scan_next(&sc, &ts, &v, &seq)) == 1) {
        rc = OP_OK;
        /* Readings come in (ts, seq) order, so a bucket is complete once one
         * lands past its end, and a new bucket only needs a division then. */
        if (!open || ts >= end) {
            if (open) {
                n++;
                if (fn(ctx, &b) != 0) {
                    stopped = true;
                    break;
                }
            }
            bucket_bounds(ts, q->step_ms, &b.start, &end);
            b.count = 0;
            b.sum = 0;
            b.min = b.max = b.first = v;
            open = true;
        }
        b.count++;
        b.sum += v;
        if (v < b.min)
            b.min = v;
        if (v > b.max)
            b.max = v;
        b.last = v; /* ties in ts: the later seq comes later */
    }
    if (rc == 0 && open && !stopped) {
        n++;
        fn(ctx, &b);
    }
    rc = store__scan_close(&sc, rc < 0 ? rc : OP_OK);
    return rc != OP_OK ? rc : n;
}

int op_store_list_sensors(struct op_store_reader *r, op_sensor_fn *fn, void *ctx)
{
    if (!r || !fn)
        return OP_EINVAL;
    sqlite3_stmt *st = stmt_get(r, R_SENSORS);
    if (!st)
        return OP_EIO;
    int n = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_sensor_info si = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .count = sqlite3_column_int64(st, 1),
            .first_ts = sqlite3_column_int64(st, 2),
            .last_ts = sqlite3_column_int64(st, 3),
            .last_value = sqlite3_column_double(st, 4),
        };
        if (!si.name) {
            src = SQLITE_NOMEM;
            break;
        }
        n++;
        if (fn(ctx, &si) != 0)
            break;
    }
    return stmt_end(r, st, src, n);
}

/* Fills di from the current row; NULL text only comes from an allocation
 * failure, as every column is NOT NULL. */
static bool device_row(sqlite3_stmt *st, struct op_device_info *di)
{
    di->id = (const char *)sqlite3_column_text(st, 0);
    di->status = (const char *)sqlite3_column_text(st, 1);
    di->attributes = (const char *)sqlite3_column_text(st, 2);
    di->updated_at = sqlite3_column_int64(st, 3);
    return di->id && di->status && di->attributes;
}

int op_store_get_device(struct op_store_reader *r, const char *id, op_device_fn *fn, void *ctx)
{
    if (!r || !id || !fn)
        return OP_EINVAL;
    sqlite3_stmt *st = stmt_get(r, R_DEVICE_GET);
    if (!st)
        return OP_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int n = 0, src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        struct op_device_info di;
        if (device_row(st, &di)) {
            n = 1;
            fn(ctx, &di);
        } else {
            src = SQLITE_NOMEM;
        }
    }
    int rc = stmt_end(r, st, src, n);
    return rc == 0 ? OP_ENOTFOUND : rc;
}

int op_store_list_devices(struct op_store_reader *r, op_device_fn *fn, void *ctx)
{
    if (!r || !fn)
        return OP_EINVAL;
    sqlite3_stmt *st = stmt_get(r, R_DEVICES);
    if (!st)
        return OP_EIO;
    int n = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_device_info di;
        if (!device_row(st, &di)) {
            src = SQLITE_NOMEM;
            break;
        }
        n++;
        if (fn(ctx, &di) != 0)
            break;
    }
    return stmt_end(r, st, src, n);
}
