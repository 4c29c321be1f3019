/*
 * store_sql.c: the `readings` virtual table, for SQL clients of an outpost
 * database other than the store itself: the unit tests, the integration
 * tests and operators in the sqlite3 shell (build/outpost_sqlite.so). A
 * reading is either one of the n packed in a record of the log (schema
 * version 7; see store_int.h) or one of up to STORE_CHUNK_MAX inside a
 * codec-encoded row of chunks, and SQL can take apart neither; `readings`
 * (sensor_id, ts, seq, value) yields every one of them as a row, as the view
 * of schema version 5 did. It is eponymous-only (it exists on every
 * connection that registered the module; CREATE VIRTUAL TABLE refuses it)
 * and read-only. Every scan is a full scan, chunks by id (each in (ts, seq)
 * order) and then the log in seq order (records by seq_lo, each's readings
 * in turn); SQLite applies the WHERE clause.
 *
 * This file is compiled twice: into liboutpost with SQLITE_CORE, where the
 * sqlite3_* calls below are direct, and into the loadable extension, where
 * sqlite3ext.h routes them through the routines the loader hands it.
 */
#include <sqlite3ext.h>
#include <stdbool.h>
#include <stdint.h>

#include "store_int.h"

SQLITE_EXTENSION_INIT1

/* Qualified with main: the module's table exists in main only, and a temp
 * table of the same name must not stand in for the store's. */
#define SQL_CHUNKS                                                                                 \
    "SELECT id, sensor_id, ts_lo, ts_hi, n, points, seqs FROM main.chunks ORDER BY id"
#define SQL_LOG "SELECT seq_lo, n, data FROM main.log ORDER BY seq_lo"

enum { COL_SENSOR, COL_TS, COL_SEQ, COL_VALUE };

enum { CH_ID, CH_SENSOR, CH_LO, CH_HI, CH_N, CH_POINTS, CH_SEQS };

enum { LOG_SEQ_LO, LOG_N, LOG_DATA };

struct sql_vtab {
    sqlite3_vtab base; /* first: SQLite sees only this */
    sqlite3 *db;
};

struct sql_cursor {
    sqlite3_vtab_cursor base; /* first: SQLite sees only this */
    sqlite3_stmt *chunks;     /* SQL_CHUNKS, prepared by the first xFilter */
    sqlite3_stmt *log;        /* SQL_LOG */
    struct op_codec_ctx *codec;
    struct store_pts pts; /* the current chunk's readings */
    size_t at;            /* the current one in pts, or in rec */
    int64_t sensor;       /* the current chunk's sensor */
    /* The current log record, once chunks are done: its data is the log
     * statement's, valid until that statement steps again. */
    const uint8_t *rec;
    int64_t rec_lo; /* its seq_lo */
    size_t rec_n;   /* its readings */
    bool in_log;    /* chunks are done: the reading is rec's at */
    bool eof;
};

/* Hands msg (from sqlite3_mprintf, may be NULL) to SQLite as the error of
 * the statement running the scan. */
static int scan_fail(struct sql_cursor *c, int rc, char *msg)
{
    sqlite3_vtab *vt = c->base.pVtab;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = msg;
    return rc;
}

static int step_fail(struct sql_cursor *c, int rc)
{
    sqlite3 *db = ((struct sql_vtab *)c->base.pVtab)->db;
    return scan_fail(c, rc, sqlite3_mprintf("readings: %s", sqlite3_errmsg(db)));
}

/* Each cursor has statements of its own (a self-join runs two scans at
 * once), prepared by its first scan and reset for the next ones (the inner
 * loop of a join scans many times). */
static int cursor_prepare(struct sql_cursor *c, const char *sql, sqlite3_stmt **st)
{
    sqlite3 *db = ((struct sql_vtab *)c->base.pVtab)->db;
    if (*st) {
        sqlite3_reset(*st);
        return SQLITE_OK;
    }
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc == SQLITE_OK || rc == SQLITE_NOMEM)
        return rc;
    return scan_fail(c, rc,
                     sqlite3_mprintf("readings: %s (not an outpost database of schema version 7"
                                     " or later?)",
                                     sqlite3_errmsg(db)));
}

static int chunk_corrupt(struct sql_cursor *c, const char *why)
{
    return scan_fail(c, SQLITE_CORRUPT_VTAB,
                     sqlite3_mprintf("readings: chunk %lld of sensor %lld is damaged: %s",
                                     (long long)sqlite3_column_int64(c->chunks, CH_ID),
                                     (long long)sqlite3_column_int64(c->chunks, CH_SENSOR), why));
}

/* Decodes the chunk at the chunks statement's row into pts, checking it
 * against its row: a damaged chunk fails the scan instead of yielding wrong
 * readings or silently fewer. */
static int chunk_load(struct sql_cursor *c)
{
    sqlite3_stmt *q = c->chunks;
    c->pts.n = 0;
    c->at = 0;
    c->sensor = sqlite3_column_int64(q, CH_SENSOR);
    int rc = store__chunk_decode(
        c->codec, sqlite3_column_blob(q, CH_POINTS), (size_t)sqlite3_column_bytes(q, CH_POINTS),
        sqlite3_column_blob(q, CH_SEQS), (size_t)sqlite3_column_bytes(q, CH_SEQS), &c->pts);
    if (rc == OP_ENOMEM)
        return SQLITE_NOMEM;
    if (rc != OP_OK)
        return chunk_corrupt(c, "its frames do not decode");
    if (c->pts.n == 0 || (int64_t)c->pts.n != sqlite3_column_int64(q, CH_N))
        return chunk_corrupt(c, "it holds another number of readings than its row says");
    int64_t lo = sqlite3_column_int64(q, CH_LO), hi = sqlite3_column_int64(q, CH_HI);
    for (size_t i = 0; i < c->pts.n; i++) {
        if (c->pts.ts[i] < lo || c->pts.ts[i] > hi)
            return chunk_corrupt(c, "a reading lies outside its row's ts_lo..ts_hi");
    }
    return SQLITE_OK;
}

/* Steps the log statement to its next record and checks that its data
 * holds exactly its n readings: reading past a short blob, or silently
 * skipping a record's tail, would yield wrong readings or fewer. At the last
 * record's end, the scan ends. */
static int log_next(struct sql_cursor *c)
{
    int rc = sqlite3_step(c->log);
    if (rc == SQLITE_DONE) {
        c->eof = true;
        return SQLITE_OK;
    }
    if (rc != SQLITE_ROW)
        return step_fail(c, rc);
    c->at = 0;
    c->rec_lo = sqlite3_column_int64(c->log, LOG_SEQ_LO);
    int64_t n = sqlite3_column_int64(c->log, LOG_N);
    /* The blob before its length, as SQLite advises: the length does not
     * then convert the value and invalidate the pointer. A damaged record
     * whose data is not a blob may need converting, which can fail. */
    c->rec = sqlite3_column_blob(c->log, LOG_DATA);
    int64_t bytes = sqlite3_column_bytes(c->log, LOG_DATA);
    sqlite3 *db = ((struct sql_vtab *)c->base.pVtab)->db;
    if (!c->rec && sqlite3_errcode(db) == SQLITE_NOMEM)
        return SQLITE_NOMEM;
    /* With n >= 1 the data is then not empty, so rec is not NULL. */
    if (!store__log_record_ok(n, (int)bytes))
        return scan_fail(c, SQLITE_CORRUPT_VTAB,
                         sqlite3_mprintf("readings: log record with seq_lo %lld is damaged: its"
                                         " data has %lld bytes, not n = %lld readings of %d",
                                         (long long)c->rec_lo, (long long)bytes, (long long)n,
                                         STORE_LOG_BYTES));
    c->rec_n = (size_t)n;
    return SQLITE_OK;
}

/* Moves to the first reading of the next chunk, or past the last chunk to
 * the first log row. */
static int chunk_next(struct sql_cursor *c)
{
    int rc = sqlite3_step(c->chunks);
    if (rc == SQLITE_ROW)
        return chunk_load(c);
    if (rc != SQLITE_DONE)
        return step_fail(c, rc);
    c->in_log = true;
    return log_next(c);
}

static int vt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    int rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(sensor_id INTEGER, ts INTEGER, seq INTEGER, value REAL)");
    if (rc != SQLITE_OK)
        return rc;
    struct sql_vtab *vt = op_calloc(1, sizeof(*vt));
    if (!vt)
        return SQLITE_NOMEM;
    vt->db = db;
    *out = &vt->base;
    return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *base)
{
    op_free(base);
    return SQLITE_OK;
}

static int vt_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    (void)base;
    /* One plan, the full scan. Its high cost makes it the outer loop of a
     * join (sensors then looked up by id for each reading) rather than a
     * scan repeated for every row of the other table. */
    info->estimatedCost = 1e9;
    info->estimatedRows = 1000000000;
    return SQLITE_OK;
}

static int vt_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    (void)base;
    struct sql_cursor *c = op_calloc(1, sizeof(*c));
    if (!c)
        return SQLITE_NOMEM;
    if (op_codec_ctx_create(&c->codec) != OP_OK) {
        op_free(c);
        return SQLITE_NOMEM;
    }
    c->eof = true;
    *out = &c->base;
    return SQLITE_OK;
}

static int vt_close(sqlite3_vtab_cursor *base)
{
    struct sql_cursor *c = (struct sql_cursor *)base;
    sqlite3_finalize(c->chunks);
    sqlite3_finalize(c->log);
    op_codec_ctx_destroy(c->codec);
    store__pts_free(&c->pts);
    op_free(c);
    return SQLITE_OK;
}

static int vt_filter(sqlite3_vtab_cursor *base, int idx_num, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    (void)idx_num, (void)idx_str, (void)argc, (void)argv;
    struct sql_cursor *c = (struct sql_cursor *)base;
    c->eof = true;
    c->in_log = false;
    c->pts.n = c->at = 0;
    c->rec = NULL;
    c->rec_n = 0;
    int rc = cursor_prepare(c, SQL_CHUNKS, &c->chunks);
    if (rc == SQLITE_OK)
        rc = cursor_prepare(c, SQL_LOG, &c->log);
    if (rc != SQLITE_OK)
        return rc;
    /* No transaction of its own: the statement reading this table holds a
     * read transaction on main from its first step to its reset (SQLite
     * verifies main's schema for it), and both statements run inside it, so
     * a scan sees one snapshot even while the writer compacts. */
    c->eof = false;
    return chunk_next(c);
}

static int vt_next(sqlite3_vtab_cursor *base)
{
    struct sql_cursor *c = (struct sql_cursor *)base;
    if (!c->in_log) {
        if (++c->at < c->pts.n)
            return SQLITE_OK;
        return chunk_next(c);
    }
    if (++c->at < c->rec_n)
        return SQLITE_OK;
    return log_next(c);
}

static int vt_eof(sqlite3_vtab_cursor *base)
{
    return ((struct sql_cursor *)base)->eof;
}

static int vt_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col)
{
    struct sql_cursor *c = (struct sql_cursor *)base;
    if (c->in_log) {
        int64_t sensor, ts;
        double value;
        store__log_get(c->rec + c->at * STORE_LOG_BYTES, &sensor, &ts, &value);
        if (col == COL_VALUE)
            sqlite3_result_double(ctx, value);
        else
            sqlite3_result_int64(ctx, col == COL_SENSOR ? sensor
                                      : col == COL_TS   ? ts
                                                        : c->rec_lo + (int64_t)c->at);
        return SQLITE_OK;
    }
    switch (col) {
    case COL_SENSOR:
        sqlite3_result_int64(ctx, c->sensor);
        break;
    case COL_TS:
        sqlite3_result_int64(ctx, c->pts.ts[c->at]);
        break;
    case COL_SEQ:
        sqlite3_result_int64(ctx, c->pts.seq[c->at]);
        break;
    default:
        sqlite3_result_double(ctx, c->pts.val[c->at]);
        break;
    }
    return SQLITE_OK;
}

/* seq is unique across the log and the chunks, so it serves as the rowid. */
static int vt_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    struct sql_cursor *c = (struct sql_cursor *)base;
    *rowid = c->in_log ? c->rec_lo + (int64_t)c->at : c->pts.seq[c->at];
    return SQLITE_OK;
}

/* No xCreate makes the table eponymous-only, no xUpdate read-only. */
static const sqlite3_module readings_module = {
    .iVersion = 0,
    .xConnect = vt_connect,
    .xBestIndex = vt_best_index,
    .xDisconnect = vt_disconnect,
    .xOpen = vt_open,
    .xClose = vt_close,
    .xFilter = vt_filter,
    .xNext = vt_next,
    .xEof = vt_eof,
    .xColumn = vt_column,
    .xRowid = vt_rowid,
};

int op_store_sql_register(struct sqlite3 *db)
{
    int rc = sqlite3_create_module_v2(db, "readings", &readings_module, NULL, NULL);
    return rc == SQLITE_OK ? OP_OK : OP_EIO;
}

#ifndef SQLITE_CORE
/* The loadable extension's entry point, named after the file as
 * sqlite3_load_extension looks it up ("outpost_sqlite" -> outpostsqlite);
 * the only symbol the extension exports. */
__attribute__((visibility("default"))) int
sqlite3_outpostsqlite_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

int sqlite3_outpostsqlite_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    if (op_store_sql_register(db) == OP_OK)
        return SQLITE_OK;
    *err = sqlite3_mprintf("outpost_sqlite: cannot register readings: %s", sqlite3_errmsg(db));
    return SQLITE_ERROR;
}
#endif
