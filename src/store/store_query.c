/*
 * store_query.c: the queries a read job runs on its reader connection:
 * ranges of one sensor's readings (with a cursor to page through them),
 * time-bucketed aggregates, the sensor list and the devices. Each query is
 * one statement, hence one consistent snapshot, and is reset before it
 * returns so the reader never pins an old snapshot (which would keep the
 * WAL from being checkpointed). Statements are prepared on first use and
 * kept for the connection's lifetime.
 */
#include <limits.h>
#include <string.h>

#include "store_int.h"

/*
 * Readings live in two tables (store_rows.c): readings_sorted, clustered on
 * (sensor_id, ts, seq), and the small readings_log in commit order. A range
 * is one compound SELECT over both whose ORDER BY SQLite runs as a merge:
 * the sorted arm comes straight off the clustered key, the log arm is
 * scanned and sorted (the writer keeps the log small), and LIMIT stops the
 * merge early. The sensor is resolved inside the statement, so name and
 * rows come from one snapshot. The row-value comparison continues strictly
 * after the cursor in (ts, seq) order; SQLite seeks only with the plain
 * bounds, so the cursor's ts is folded into ?2 or ?3 as well.
 */
#define SENSOR_ID "(SELECT id FROM sensors WHERE name = ?1)"
#define ARM(table, extra)                                                           \
    "SELECT ts, value, seq FROM " table " WHERE sensor_id = " SENSOR_ID             \
    " AND ts >= ?2 AND ts < ?3" extra
/* Log rows of a chunk being compacted that already moved are skipped
 * (store_rows.c keeps the chunk's bound and done sensor ids in meta). */
#define NOT_MOVED                                                                   \
    " AND NOT (seq < (SELECT value FROM meta WHERE key = 'compact_bound')"           \
    " AND sensor_id < (SELECT value FROM meta WHERE key = 'compact_hi'))"
#define BOTH(extra)                                                                 \
    ARM("readings_sorted", extra) " UNION ALL " ARM("readings_log", extra NOT_MOVED)

static const char *const rsql[R_STMT_COUNT] = {
    [R_RANGE_ASC] = BOTH("") " ORDER BY 1, 3 LIMIT ?4",
    [R_RANGE_ASC_AFTER] = BOTH(" AND (ts, seq) > (?5, ?6)") " ORDER BY 1, 3 LIMIT ?4",
    [R_RANGE_DESC] = BOTH("") " ORDER BY 1 DESC, 3 DESC LIMIT ?4",
    [R_RANGE_DESC_AFTER] = BOTH(" AND (ts, seq) < (?5, ?6)") " ORDER BY 1 DESC, 3 DESC LIMIT ?4",
    [R_AGGREGATE] = BOTH("") " ORDER BY 1, 3",
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
    enum store_rstmt which = q->desc ? (q->has_after ? R_RANGE_DESC_AFTER : R_RANGE_DESC)
                                     : (q->has_after ? R_RANGE_ASC_AFTER : R_RANGE_ASC);
    sqlite3_stmt *st = stmt_get(r, which);
    if (!st)
        return OP_EIO;
    int64_t from = q->from, to = q->to;
    if (q->has_after) {
        /* Asc continues at ts >= after_ts, desc at ts <= after_ts; the row
         * value then skips the rows of after_ts already delivered. */
        if (!q->desc && q->after_ts > from)
            from = q->after_ts;
        if (q->desc && q->after_ts < INT64_MAX && q->after_ts + 1 < to)
            to = q->after_ts + 1;
        if (from >= to)
            return 0;
    }
    sqlite3_bind_text(st, 1, q->sensor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    /* The count is returned as an int. */
    sqlite3_bind_int64(st, 4, q->limit < INT_MAX ? q->limit : INT_MAX);
    if (q->has_after) {
        sqlite3_bind_int64(st, 5, q->after_ts);
        sqlite3_bind_int64(st, 6, q->after_seq);
    }
    int n = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1),
               sqlite3_column_int64(st, 2)) != 0)
            break;
    }
    return stmt_end(r, st, src, n);
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
    sqlite3_stmt *st = stmt_get(r, R_AGGREGATE);
    if (!st)
        return OP_EIO;
    sqlite3_bind_text(st, 1, q->sensor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q->from);
    sqlite3_bind_int64(st, 3, q->to);

    struct op_agg_bucket b = { 0 };
    int64_t end = 0; /* the current bucket holds ts in [b.start, end) */
    bool open = false, stopped = false;
    int n = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0);
        double v = sqlite3_column_double(st, 1);
        /* Rows come in (ts, seq) order, so a bucket is complete once a row
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
    if (open && !stopped && src == SQLITE_DONE) {
        n++;
        fn(ctx, &b);
    }
    return stmt_end(r, st, stopped ? SQLITE_DONE : src, n);
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
