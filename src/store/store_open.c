/*
 * store_open.c: opening and closing the store. It creates the data
 * directory, opens the write connection, brings the schema to the current
 * version (PRAGMA user_version counts the migrations applied), opens the
 * reader connections, registers the store's metrics and starts the threads.
 * Closing runs the same steps backwards after both queues have drained.
 * It also holds the small SQLite helpers the other store files share.
 */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "store_int.h"

/* ---- schema ------------------------------------------------------------ */

/*
 * Migration i (1-based) brings a database from user_version i-1 to i. Never
 * edit a shipped entry: append a new one. auto_vacuum cannot be changed once
 * a table exists, so it is set before migration 1 runs (see db_configure).
 *
 * readings.seq is assigned by the writer, not by SQLite's rowid allocation:
 * plain rowids reuse the largest value after it is deleted, and cursors
 * built on seq (sync, paging) need it never to go backwards. meta.next_seq
 * keeps the high-water mark across restarts and deletions.
 */
const char *const op_store_file_names[] = {
    STORE_DB_FILE, STORE_DB_FILE "-wal", STORE_DB_FILE "-shm", STORE_LOCK_FILE, NULL,
};

static const char *const migrations[] = {
    /* 1: the row-per-reading layout, devices, meta. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta(key, value) VALUES('next_seq', 1);"
    "CREATE TABLE sensors("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  count INTEGER NOT NULL DEFAULT 0,"
    "  first_ts INTEGER,"
    "  last_ts INTEGER,"
    "  last_value REAL);"
    "CREATE TABLE readings("
    "  seq INTEGER PRIMARY KEY,"
    "  sensor_id INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  value REAL NOT NULL);"
    "CREATE INDEX readings_sensor_ts ON readings(sensor_id, ts);"
    "CREATE TABLE devices("
    "  id TEXT PRIMARY KEY,"
    "  status TEXT NOT NULL,"
    "  attributes TEXT NOT NULL DEFAULT '{}',"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 2: the log + sorted layout (store_rows.c). A commit appends to
     * readings_log in seq order, touching only the right edge of one
     * b-tree; the writer later moves the log in large sorted chunks into
     * readings_sorted, clustered by (sensor_id, ts, seq), so each sensor's
     * pages are written once per chunk instead of once per commit. The view
     * keeps `readings` meaning every stored reading. */
    "CREATE TABLE readings_log("
    "  seq INTEGER PRIMARY KEY,"
    "  sensor_id INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  value REAL NOT NULL);"
    "CREATE TABLE readings_sorted("
    "  sensor_id INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  value REAL NOT NULL,"
    "  PRIMARY KEY(sensor_id, ts, seq)) WITHOUT ROWID;"
    "INSERT INTO readings_sorted SELECT sensor_id, ts, seq, value FROM readings"
    "  ORDER BY sensor_id, ts, seq;"
    "UPDATE meta SET value = max(value, coalesce((SELECT max(seq) + 1 FROM readings), 1))"
    "  WHERE key = 'next_seq';"
    "INSERT INTO meta(key, value) VALUES('compact_bound', 0), ('compact_hi', 0);"
    "DROP TABLE readings;"
    "CREATE VIEW readings(sensor_id, ts, seq, value) AS"
    "  SELECT sensor_id, ts, seq, value FROM readings_sorted"
    "  UNION ALL SELECT sensor_id, ts, seq, value FROM readings_log"
    "  WHERE NOT (seq < (SELECT value FROM meta WHERE key = 'compact_bound')"
    "    AND sensor_id < (SELECT value FROM meta WHERE key = 'compact_hi'));",
    /* 3: the rule engine's integration (store_rules.c). Rules by name with
     * their canonical text; alert events as the engine emitted them. The
     * runner's cursor lives in meta under 'rules_cursor'; it reads the
     * readings after it from readings_log, where compaction leaves them
     * until it has (store_rules.c). */
    "CREATE TABLE rules("
    "  name TEXT PRIMARY KEY,"
    "  definition TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  origin TEXT NOT NULL DEFAULT 'api') WITHOUT ROWID;"
    "CREATE TABLE alerts("
    "  id INTEGER PRIMARY KEY,"
    "  rule TEXT NOT NULL,"
    "  sensor TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  cause TEXT NOT NULL,"
    "  value REAL,"
    "  threshold REAL,"
    "  since INTEGER NOT NULL,"
    "  fired_at INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL);"
    "CREATE INDEX alerts_rule_sensor ON alerts(rule, sensor, id);"
    /* Derived sensors (window rules' output) are readings like any other
     * but never go back into the rules. marks: readings a rule marked
     * important, by seq, for the uplink; ts lets retention trim them. */
    "ALTER TABLE sensors ADD COLUMN derived INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE marks(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL);"
    "CREATE INDEX marks_ts ON marks(ts);",
    /* 4: store-and-forward (store_outbox.c). outbox: the committed
     * readings in records of up to OP_OUTBOX_RECORD_MAX, keyed by their
     * first seq, until every uplink has them; uplinks: each one's cursor
     * and batch number; uplink_peers: the receiver's last position per
     * sending (node, uplink), its deduplication; dead_letters: batches a
     * receiver refused for good. */
    "CREATE TABLE outbox("
    "  seq_lo INTEGER PRIMARY KEY,"
    "  n INTEGER NOT NULL,"
    "  ts_min INTEGER NOT NULL,"
    "  ts_max INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE INDEX outbox_ts_max ON outbox(ts_max);"
    "CREATE TABLE uplinks("
    "  name TEXT PRIMARY KEY,"
    "  cursor INTEGER NOT NULL,"
    "  batch_seq INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE uplink_peers("
    "  node TEXT NOT NULL,"
    "  uplink TEXT NOT NULL,"
    "  last_pos INTEGER NOT NULL,"
    "  last_batch INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY(node, uplink)) WITHOUT ROWID;"
    "CREATE TABLE dead_letters("
    "  id INTEGER PRIMARY KEY,"
    "  uplink TEXT NOT NULL,"
    "  batch_seq INTEGER NOT NULL,"
    "  first_pos INTEGER NOT NULL,"
    "  last_pos INTEGER NOT NULL,"
    "  readings INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  answer TEXT NOT NULL,"
    "  ts INTEGER NOT NULL);",
    /* 5: positions settled out of order (uplink priorities): ranges above
     * an uplink's cursor its receiver acknowledged, and ranges above a
     * peer's last_pos this receiver stored (docs/internals/uplink.md). */
    "CREATE TABLE uplink_ranges("
    "  name TEXT NOT NULL,"
    "  lo INTEGER NOT NULL,"
    "  hi INTEGER NOT NULL,"
    "  PRIMARY KEY(name, lo)) WITHOUT ROWID;"
    "CREATE TABLE uplink_peer_ranges("
    "  node TEXT NOT NULL,"
    "  uplink TEXT NOT NULL,"
    "  lo INTEGER NOT NULL,"
    "  hi INTEGER NOT NULL,"
    "  PRIMARY KEY(node, uplink, lo)) WITHOUT ROWID;",
    /* 6: the log + chunks layout (store_layout.c). A sensor's compacted
     * readings are codec-encoded chunks of up to STORE_CHUNK_MAX, indexed
     * by both ends of their time range; sensors.span is the widest chunk's
     * ts_hi - ts_lo, where a query's scan must start. A compaction that
     * was interrupted between steps is finished here, so the log starts
     * at its front again; readings_sorted stays until the layout, which
     * can encode, has turned it into chunks at open (rows_create). */
    "CREATE TABLE chunks("
    "  id INTEGER PRIMARY KEY,"
    "  sensor_id INTEGER NOT NULL,"
    "  ts_lo INTEGER NOT NULL,"
    "  ts_hi INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  points BLOB NOT NULL,"
    "  seqs BLOB NOT NULL);"
    "CREATE INDEX chunks_lo ON chunks(sensor_id, ts_lo, ts_hi);"
    "CREATE INDEX chunks_hi ON chunks(sensor_id, ts_hi, ts_lo);"
    "ALTER TABLE sensors ADD COLUMN span INTEGER NOT NULL DEFAULT 0;"
    "DROP VIEW readings;"
    "UPDATE meta SET value = max(value,"
    "  coalesce((SELECT max(seq) + 1 FROM readings_log), 1),"
    "  coalesce((SELECT max(seq) + 1 FROM readings_sorted), 1)) WHERE key = 'next_seq';"
    "INSERT INTO readings_sorted SELECT sensor_id, ts, seq, value FROM readings_log"
    "  WHERE seq < (SELECT value FROM meta WHERE key = 'compact_bound')"
    "  AND sensor_id >= (SELECT value FROM meta WHERE key = 'compact_hi');"
    "DELETE FROM readings_log WHERE seq < (SELECT value FROM meta WHERE key = 'compact_bound');"
    "DELETE FROM meta WHERE key IN ('compact_bound', 'compact_hi');",
    /* 7: the log as one record per group (store_int.h): a commit writes one
     * row however many readings it holds. readings_log's rows become
     * records at open (rows_create), where the layout can pack them. */
    "CREATE TABLE log("
    "  seq_lo INTEGER PRIMARY KEY,"
    "  n INTEGER NOT NULL,"
    "  data BLOB NOT NULL);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- helpers shared by the store files -------------------------------- */

int store__err(sqlite3 *db, int rc, int saved_errno)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return OP_OK;
    case SQLITE_FULL:
        return OP_ENOSPC;
    case SQLITE_IOERR: {
        /* A write past RLIMIT_FSIZE fails with EFBIG and SQLite reports it
         * as SQLITE_IOERR_WRITE; only the errno tells it from a failing
         * disk. SQLite keeps it for some calls, not for a failed WAL write
         * during COMMIT, hence the errno the caller saved. */
        int e = db ? sqlite3_system_errno(db) : 0;
        if (e == 0)
            e = saved_errno;
        if (e == ENOSPC || e == EFBIG || e == EDQUOT)
            return OP_ENOSPC;
        return OP_EIO;
    }
    case SQLITE_NOMEM:
        return OP_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        /* Another process held the database past the busy timeout. */
        return OP_EBUSY;
    case SQLITE_INTERRUPT:
        /* A read ran past STORE_QUERY_MAX_MS (store_reader.c). */
        return OP_ETOOBIG;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return OP_ECORRUPT;
    default:
        return OP_EIO;
    }
}

int store__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "cannot prepare statement: %s", sqlite3_errmsg(db));
        *out = NULL;
    }
    return rc;
}

int store__exec(sqlite3 *db, sqlite3_stmt *st)
{
    int rc;
    errno = 0;
    do {
        rc = sqlite3_step(st);
    } while (rc == SQLITE_ROW);
    int saved = errno;
    /* sqlite3_reset repeats the step's error; the step's code is the one
     * that matters, so its return is not needed. */
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? OP_OK : store__err(db, rc, saved);
}

static int pragma_int(sqlite3 *db, sqlite3_stmt *st, int64_t *out)
{
    errno = 0;
    int rc = sqlite3_step(st);
    int saved = errno;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? OP_OK : store__err(db, rc, saved);
}

int64_t store__db_bytes_now(struct op_store *s)
{
    int64_t pages = 0, free_pages = 0;
    int rc = pragma_int(s->wdb, s->wstmt[W_PAGE_COUNT], &pages);
    if (rc == OP_OK)
        rc = pragma_int(s->wdb, s->wstmt[W_FREELIST_COUNT], &free_pages);
    if (rc != OP_OK)
        return rc;
    return (pages - free_pages) * s->page_size;
}

static char *path_join(const char *dir, const char *name)
{
    struct op_buf b;
    op_buf_init(&b, 4096);
    if (op_buf_appendf(&b, "%s/%s", dir, name) != OP_OK) {
        op_buf_fini(&b);
        return NULL;
    }
    return op_buf_steal(&b, NULL);
}

/* mkdir -p: the data directory may be several levels deep and new. */
int op_store_dir_create(const char *dir)
{
    char *p = op_strndup(dir, strlen(dir));
    int rc = OP_OK;
    if (!p)
        return OP_ENOMEM;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            OP_ERROR(STORE_SUB, "cannot create directory %s: %s", p, strerror(errno));
            rc = OP_EIO;
            break;
        }
        *c = saved;
        if (saved == '\0')
            break;
    }
    op_free(p);
    return rc;
}

/*
 * SQLite's own locks keep two writers from corrupting the file, but two
 * stores on one directory would still each assign seq from their own
 * memory and fail each other's commits. An flock on a lock file (released
 * by the kernel when the process dies) refuses the second one up front.
 */
static int lock_dir(struct op_store *s)
{
    char *path = path_join(s->dir, STORE_LOCK_FILE);
    if (!path)
        return OP_ENOMEM;
    int rc = OP_OK;
    /* No symlinks: root opens this before dropping privileges, in a
     * directory the service user may own. */
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (s->lock_fd < 0) {
        OP_ERROR(STORE_SUB, "cannot open %s: %s", path, strerror(errno));
        rc = OP_EIO;
    } else if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            OP_ERROR(STORE_SUB, "%s is in use by another store (%s is locked)", s->dir, path);
        else
            OP_ERROR(STORE_SUB, "cannot lock %s: %s", path, strerror(errno));
        rc = OP_EIO;
    }
    op_free(path);
    return rc;
}

/* ---- the write connection and the schema ------------------------------ */

int store__exec_sql(sqlite3 *db, const char *sql, const char *path)
{
    char *msg = NULL;
    errno = 0;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    int saved = errno;
    if (rc != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return store__err(db, rc, saved);
    }
    return OP_OK;
}

int store__query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int db_configure(struct op_store *s)
{
    sqlite3 *db = s->wdb;
    int rc;
    const char *sync = s->opts.sync_mode == OP_SYNC_NORMAL
                           ? "PRAGMA synchronous=NORMAL"
                           : "PRAGMA synchronous=FULL";

    /* Must precede the first table (and the switch to WAL, which writes the
     * header) or it is silently ignored. A no-op on an existing file. */
    if ((rc = store__exec_sql(db, "PRAGMA auto_vacuum=INCREMENTAL", s->path)) != OP_OK)
        return rc;

    sqlite3_stmt *st = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        OP_ERROR(STORE_SUB, "%s: cannot switch to WAL mode: %s", s->path, sqlite3_errmsg(db));
        rc = store__err(db, sqlite3_errcode(db), 0);
        sqlite3_finalize(st);
        return rc == OP_OK ? OP_EIO : rc;
    }
    sqlite3_finalize(st);

    /* synchronous=FULL in WAL mode fsyncs the WAL at every commit (survives
     * power loss); NORMAL fsyncs only at checkpoints (survives a crash of
     * the process, may lose the last commits on power loss). The page cache
     * (2 MiB) holds the writer's hot pages: appends touch the right edge of
     * the table and one leaf per sensor of the index, and a bigger cache
     * only raises the node's memory; the WAL is truncated back
     * to 32 MiB after a checkpoint so it does not keep an outlying peak size
     * (a smaller limit made the WAL shrink and regrow, which costs block
     * allocations on every cycle). */
    if ((rc = store__exec_sql(db, sync, s->path)) != OP_OK ||
        (rc = store__exec_sql(db, "PRAGMA cache_size=-2048", s->path)) != OP_OK ||
        (rc = store__exec_sql(db, "PRAGMA journal_size_limit=33554432", s->path)) != OP_OK ||
        (rc = store__exec_sql(db, "PRAGMA temp_store=MEMORY", s->path)) != OP_OK)
        return rc;
    return OP_OK;
}

static int db_migrate(struct op_store *s)
{
    sqlite3 *db = s->wdb;
    int64_t version = 0;
    int rc;

    if ((rc = store__exec_sql(db, "BEGIN IMMEDIATE", s->path)) != OP_OK)
        return rc;
    int src = store__query_int(db, "PRAGMA user_version", &version);
    if (src != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "%s: cannot read the schema version: %s", s->path,
                 sqlite3_errmsg(db));
        rc = store__err(db, src, 0);
        goto fail;
    }
    if (version > STORE_SCHEMA_VERSION || version < 0) {
        OP_ERROR(STORE_SUB, "%s: schema version %lld is newer than this build knows (%d)",
                 s->path, (long long)version, STORE_SCHEMA_VERSION);
        rc = OP_EIO;
        goto fail;
    }
    if (version == STORE_SCHEMA_VERSION)
        return store__exec_sql(db, "COMMIT", s->path);

    for (int64_t v = version; v < STORE_SCHEMA_VERSION; v++) {
        if ((rc = store__exec_sql(db, migrations[v], s->path)) != OP_OK)
            goto fail;
        OP_INFO(STORE_SUB, "%s: schema migrated to version %lld", s->path, (long long)v + 1);
    }
    if ((rc = store__exec_sql(db, "PRAGMA user_version=" STORE_STR(STORE_SCHEMA_VERSION), s->path)) !=
        OP_OK)
        goto fail;
    return store__exec_sql(db, "COMMIT", s->path);

fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int db_open_writer(struct op_store *s)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &s->wdb, flags, NULL);
    if (rc != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "cannot open %s: %s", s->path,
                 s->wdb ? sqlite3_errmsg(s->wdb) : sqlite3_errstr(rc));
        return rc == SQLITE_NOMEM ? OP_ENOMEM : OP_EIO;
    }
    sqlite3_extended_result_codes(s->wdb, 1);
    sqlite3_busy_timeout(s->wdb, STORE_BUSY_TIMEOUT_MS);
    if ((rc = db_configure(s)) != OP_OK || (rc = db_migrate(s)) != OP_OK)
        return rc;
    int64_t page_size = 0;
    if (store__query_int(s->wdb, "PRAGMA page_size", &page_size) != SQLITE_OK || page_size <= 0) {
        OP_ERROR(STORE_SUB, "%s: cannot read the page size", s->path);
        return OP_EIO;
    }
    s->page_size = page_size;
    return OP_OK;
}

/* ---- metrics ----------------------------------------------------------- */

/*
 * The registry is process-wide and cannot unregister, while a store comes
 * and goes (tests reopen it). So a gauge never points at a store: it reads
 * the store that is open now, through this lock, and reports 0 when none is.
 */
static pthread_mutex_t gauge_mu = PTHREAD_MUTEX_INITIALIZER;
static struct op_store *gauge_store;

enum { GAUGE_QUEUE, GAUGE_DB, GAUGE_FILE };
static int gauge_ids[] = { GAUGE_QUEUE, GAUGE_DB, GAUGE_FILE };

static double gauge_read(void *ctx)
{
    int which = *(const int *)ctx;
    struct op_store_stats st = { 0 };
    pthread_mutex_lock(&gauge_mu);
    if (gauge_store)
        op_store_get_stats(gauge_store, &st);
    pthread_mutex_unlock(&gauge_mu);
    switch (which) {
    case GAUGE_QUEUE:
        return (double)st.queue_bytes;
    case GAUGE_DB:
        return (double)st.db_bytes;
    default:
        return (double)st.file_bytes;
    }
}

static int metrics_register(struct store_metrics *m)
{
    static const double commit_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                            0.005,  0.01,    0.025,  0.05,  0.1,
                                            0.25,   0.5,     1 };
    static const double reading_bounds[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

    m->commits = op_metrics_counter("outpost_store_commits_total", NULL,
                                    "Group transactions committed by the store writer.");
    m->commit_err_full =
        op_metrics_counter("outpost_store_commit_errors_total", "reason=\"full\"",
                           "Group transactions that failed and were rolled back, by reason.");
    m->commit_err_io =
        op_metrics_counter("outpost_store_commit_errors_total", "reason=\"io\"",
                           "Group transactions that failed and were rolled back, by reason.");
    m->appended = op_metrics_counter("outpost_store_readings_appended_total", NULL,
                                     "Readings committed to the store.");
    m->ret_age = op_metrics_counter("outpost_store_retention_deleted_readings_total",
                                    "reason=\"age\"", "Readings deleted by retention, by reason.");
    m->ret_quota =
        op_metrics_counter("outpost_store_retention_deleted_readings_total", "reason=\"quota\"",
                           "Readings deleted by retention, by reason.");
    m->compacted = op_metrics_counter("outpost_store_compacted_readings_total", NULL,
                                      "Readings moved from the write log to sorted storage.");
    m->commit_seconds = op_metrics_histogram(
        "outpost_store_commit_seconds", NULL, "Time to apply and commit one group transaction.",
        commit_bounds, (int)(sizeof(commit_bounds) / sizeof(commit_bounds[0])));
    m->commit_readings = op_metrics_histogram(
        "outpost_store_commit_readings", NULL, "Readings per committed group transaction.",
        reading_bounds, (int)(sizeof(reading_bounds) / sizeof(reading_bounds[0])));
    if (!m->commits || !m->commit_err_full || !m->commit_err_io || !m->appended ||
        !m->ret_age || !m->ret_quota || !m->compacted || !m->commit_seconds || !m->commit_readings)
        return OP_ENOMEM;

    /* A second registration of the same gauge (the store reopened in one
     * process) may be refused by the registry; the first one already reads
     * whichever store is open, so the result is deliberately ignored. */
    (void)op_metrics_gauge("outpost_store_queue_bytes", NULL,
                           "Bytes of writes waiting for the store writer.", gauge_read,
                           &gauge_ids[GAUGE_QUEUE]);
    (void)op_metrics_gauge("outpost_store_db_bytes", NULL,
                           "Bytes of database pages in use (not on the freelist).", gauge_read,
                           &gauge_ids[GAUGE_DB]);
    (void)op_metrics_gauge("outpost_store_file_bytes", NULL,
                           "Bytes of the database and WAL files on disk.", gauge_read,
                           &gauge_ids[GAUGE_FILE]);
    return OP_OK;
}

/* ---- open / close ------------------------------------------------------ */

static void store_free(struct op_store *s)
{
    if (s->readers) {
        for (int i = 0; i < s->nreaders; i++) {
            store__reader_fini(&s->readers[i]);
        }
        op_free(s->readers);
    }
    if (s->layout_state)
        s->layout->destroy(s->layout_state);
    store__outbox_free(s);
    store__writer_finalize(s);
    if (s->wdb && sqlite3_close(s->wdb) != SQLITE_OK)
        OP_ERROR(STORE_SUB, "%s: close: %s", s->path, sqlite3_errmsg(s->wdb));
    if (s->sync_inited) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->rmu);
        pthread_cond_destroy(&s->rwake);
    }
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    op_free(s->dir);
    op_free(s->path);
    op_free(s->wal_path);
    op_free(s);
}

static int sync_init(struct op_store *s)
{
    pthread_condattr_t ca;
    /* The writer's timed wait (retention) must not jump with the wall clock. */
    if (pthread_condattr_init(&ca) != 0)
        return OP_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&s->mu, NULL) == 0;
    ok = ok && pthread_cond_init(&s->wake, &ca) == 0;
    ok = ok && pthread_mutex_init(&s->rmu, NULL) == 0;
    ok = ok && pthread_cond_init(&s->rwake, NULL) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        OP_ERROR(STORE_SUB, "cannot create locks");
        return OP_ENOMEM;
    }
    s->sync_inited = true;
    return OP_OK;
}

/* SQLite's allocation statistics take a global mutex on every malloc it
 * does (~8% of the writer in perf). Nothing here reads them, and this is
 * the only SQLite user in the process, so turn them off before the first
 * connection initializes the library. */
static void sqlite_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int op_store_open(struct op_store **out, const struct op_store_opts *opts)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct op_store *s = NULL;
    int rc;

    pthread_once(&once, sqlite_configure);

    if (!out || !opts || !opts->dir || !opts->dir[0] || opts->readers < 1 ||
        opts->readers > STORE_MAX_READERS ||
        (opts->sync_mode != OP_SYNC_FULL && opts->sync_mode != OP_SYNC_NORMAL) ||
        opts->retention_age_ms < 0 || opts->retention_bytes < 0 ||
        opts->retention_interval_ms < 0 || opts->retention_interval_ms > STORE_MAX_INTERVAL_MS)
        return OP_EINVAL;
    *out = NULL;

    if (!(s = op_calloc(1, sizeof(*s))))
        return OP_ENOMEM;
    s->lock_fd = -1;
    s->opts = *opts;
    if (s->opts.queue_max_bytes == 0)
        s->opts.queue_max_bytes = STORE_DEFAULT_QUEUE_BYTES;
    if (s->opts.retention_interval_ms == 0)
        s->opts.retention_interval_ms = STORE_DEFAULT_RETENTION_INTERVAL_MS;
    s->layout = &store__layout_chunks;
    s->dir = op_strndup(opts->dir, strlen(opts->dir));
    s->path = s->dir ? path_join(s->dir, STORE_DB_FILE) : NULL;
    s->wal_path = s->dir ? path_join(s->dir, STORE_DB_FILE "-wal") : NULL;
    if (!s->dir || !s->path || !s->wal_path) {
        rc = OP_ENOMEM;
        goto fail;
    }
    s->opts.dir = s->dir;

    if ((rc = sync_init(s)) != OP_OK || (rc = metrics_register(&s->m)) != OP_OK ||
        (rc = op_store_dir_create(s->dir)) != OP_OK || (rc = lock_dir(s)) != OP_OK ||
        (rc = db_open_writer(s)) != OP_OK ||
        (rc = store__writer_prepare(s)) != OP_OK ||
        (rc = s->layout->create(s, s->wdb, &s->layout_state)) != OP_OK ||
        (rc = store__rules_hold_load(s)) != OP_OK || (rc = store__outbox_open(s)) != OP_OK)
        goto fail;

    int64_t db_bytes = store__db_bytes_now(s);
    atomic_store(&s->db_bytes, db_bytes > 0 ? db_bytes : 0);

    /* Reader connections are opened after the schema exists, so a read-only
     * connection never sees a file without its tables. */
    if ((rc = store__readers_open(s)) != OP_OK || (rc = store__writer_start(s)) != OP_OK)
        goto fail;
    if ((rc = store__readers_start(s)) != OP_OK) {
        store__writer_stop(s);
        goto fail;
    }

    pthread_mutex_lock(&gauge_mu);
    gauge_store = s;
    pthread_mutex_unlock(&gauge_mu);

    OP_INFO(STORE_SUB, "opened %s (layout %s, sync %s, %d readers)", s->path, s->layout->name,
            s->opts.sync_mode == OP_SYNC_NORMAL ? "normal" : "full", s->opts.readers);
    *out = s;
    return OP_OK;

fail:
    if (rc == OP_ECORRUPT || rc == OP_ENOSPC)
        rc = OP_EIO; /* the contract: open fails with OP_EIO or OP_ENOMEM */
    store__readers_stop(s);
    store_free(s);
    return rc;
}

void op_store_close(struct op_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&gauge_mu);
    if (gauge_store == s)
        gauge_store = NULL;
    pthread_mutex_unlock(&gauge_mu);

    /* Both queues refuse new work from here on (OP_ESHUTDOWN). Then the
     * writer commits what is queued, calling every done, and the readers
     * run the jobs already queued; only then are the threads joined. */
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->rmu);
    s->rclosing = true;
    pthread_mutex_unlock(&s->rmu);

    store__writer_stop(s);
    store__readers_stop(s);
    OP_INFO(STORE_SUB, "closed %s", s->path);
    store_free(s);
}

bool op_store_ready(struct op_store *s)
{
    if (!s)
        return false;
    pthread_mutex_lock(&s->mu);
    bool ready = !s->closing && atomic_load(&s->writer_alive);
    pthread_mutex_unlock(&s->mu);
    return ready;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

void op_store_get_stats(struct op_store *s, struct op_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    out->queue_bytes = (int64_t)s->queue_bytes;
    pthread_mutex_unlock(&s->mu);
    out->db_bytes = atomic_load(&s->db_bytes);
    out->file_bytes = file_size(s->path) + file_size(s->wal_path);
    out->commits = atomic_load(&s->commits);
}
