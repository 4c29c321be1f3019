/*
 * store_rows.c: the log + sorted layout of readings (struct store_layout).
 * A commit appends each reading as one row of readings_log (seq, sensor_id,
 * ts, value): the right edge of one b-tree, a handful of pages per commit
 * however many sensors the group holds. Between groups the writer compacts
 * the log: a large chunk of it, sorted by (sensor_id, ts, seq), moves into
 * readings_sorted, a WITHOUT ROWID table clustered on that key, so each
 * sensor's pages are written once per chunk rather than once per commit,
 * and range queries read one sensor's readings contiguously. Queries merge
 * both tables (store_query.c). `sensors` holds each sensor's name and stats
 * (count, first_ts, last_ts, last_value).
 *
 * The one-table-plus-index layout this replaces dirtied one index page per
 * sensor per commit: with 1,000 sensors that was ~4 MB of WAL per commit
 * and 0.3 M readings/s; the log takes 2.7 M/s and the sorted moves ~1 M/s
 * (bench numbers in docs/internals/store.md).
 *
 * The append path is the hot loop of ingest, so per reading it does one
 * bind-step-reset of a cached INSERT and a few compares: sensor names are
 * resolved through an in-memory hash table (with a shortcut for runs of the
 * same sensor), and the sensor stats are summed in memory over the group and
 * written once per sensor per commit. Everything here runs on the writer
 * thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Beyond this many cached sensors the cache is emptied at a group boundary,
 * so a stream of ever-new names cannot grow the writer's memory without
 * bound; a miss costs one indexed SELECT. */
#define ROWS_CACHE_MAX 65536

enum rows_stmt {
    S_INSERT,
    S_SENSOR_GET,
    S_SENSOR_ADD,
    S_SENSOR_STATS,
    S_AGE_SENSORS,
    S_AGE_DELETE,
    S_SENSOR_FIX,
    S_SENSOR_DROP,
    S_OLDEST_SENSOR,
    S_OTHERS_FIRST_TS,
    S_DELETE_HEAD,
    S_LOG_BOUND,
    S_SENSOR_SPLIT,
    S_COMPACT_MOVE,
    S_COMPACT_DELETE,
    S_META_SET,
    S_COUNT
};

static const char *const rows_sql[S_COUNT] = {
    [S_INSERT] = "INSERT INTO readings_log(seq, sensor_id, ts, value) VALUES(?1, ?2, ?3, ?4)",
    [S_SENSOR_GET] = "SELECT id FROM sensors WHERE name = ?1",
    [S_SENSOR_ADD] = "INSERT INTO sensors(name) VALUES(?1)",
    /* SET expressions all see the row as it was, so last_value compares
     * against the old last_ts. >= makes the later commit win a tie. */
    [S_SENSOR_STATS] = "UPDATE sensors SET count = count + ?2,"
                       " first_ts = min(coalesce(first_ts, ?3), ?3),"
                       " last_value = CASE WHEN last_ts IS NULL OR ?4 >= last_ts"
                       "   THEN ?5 ELSE last_value END,"
                       " last_ts = max(coalesce(last_ts, ?4), ?4)"
                       " WHERE id = ?1",
    /* Retention deletes from readings_sorted only: it compacts the log
     * first, and what stays there (rows the rules have not seen, see
     * STORE_COMPACT_HOLD_MAX) is the newest. */
    [S_AGE_SENSORS] = "SELECT id FROM sensors WHERE first_ts < ?1 ORDER BY first_ts LIMIT ?2",
    [S_AGE_DELETE] = "DELETE FROM readings_sorted WHERE (sensor_id, ts, seq) IN"
                     " (SELECT sensor_id, ts, seq FROM readings_sorted"
                     "   WHERE sensor_id = ?1 AND ts < ?2 ORDER BY ts, seq LIMIT ?3)",
    /* After deletions: the first ts comes back from the clustered key in a
     * few page reads, and from the log's held rows (few: retention runs
     * after compaction emptied the rest). Deleting the oldest readings leaves the newest one
     * while any remain, so last_ts and last_value change only when none
     * is left in readings_sorted; then the log's (held rows) are the last. */
    [S_SENSOR_FIX] = "UPDATE sensors SET count = count - ?2,"
                     " first_ts = (SELECT min(t) FROM (SELECT ts AS t FROM readings_sorted"
                     "   WHERE sensor_id = ?1 ORDER BY ts LIMIT 1) UNION ALL"
                     "   SELECT min(ts) FROM readings_log WHERE sensor_id = ?1),"
                     " last_ts = CASE WHEN EXISTS (SELECT 1 FROM readings_sorted"
                     "   WHERE sensor_id = ?1) THEN last_ts"
                     "   ELSE (SELECT max(ts) FROM readings_log WHERE sensor_id = ?1) END,"
                     " last_value = CASE WHEN EXISTS (SELECT 1 FROM readings_sorted"
                     "   WHERE sensor_id = ?1) THEN last_value"
                     "   ELSE (SELECT value FROM readings_log WHERE sensor_id = ?1"
                     "   ORDER BY ts DESC, seq DESC LIMIT 1) END"
                     " WHERE id = ?1",
    [S_SENSOR_DROP] = "DELETE FROM sensors WHERE id = ?1 AND count <= 0",
    /* The quota deletes the globally oldest readings: those of the sensor
     * with the oldest data, up to where another sensor's data begins. */
    [S_OLDEST_SENSOR] = "SELECT id FROM sensors WHERE count > 0 ORDER BY first_ts, id LIMIT 1",
    [S_OTHERS_FIRST_TS] = "SELECT min(first_ts) FROM sensors WHERE count > 0 AND id != ?1",
    [S_DELETE_HEAD] = "DELETE FROM readings_sorted WHERE (sensor_id, ts, seq) IN"
                      " (SELECT sensor_id, ts, seq FROM readings_sorted"
                      "   WHERE sensor_id = ?1 AND ts <= ?2 ORDER BY ts, seq LIMIT ?3)",
    /* Compaction: the log rows below the bound move, sorted, a range of
     * sensor ids per step; the last step deletes them from the log. */
    [S_LOG_BOUND] = "SELECT seq FROM readings_log ORDER BY seq LIMIT 1 OFFSET ?1",
    [S_SENSOR_SPLIT] = "SELECT id FROM sensors WHERE id >= ?1 ORDER BY id LIMIT 1 OFFSET ?2",
    [S_COMPACT_MOVE] = "INSERT INTO readings_sorted(sensor_id, ts, seq, value)"
                       " SELECT sensor_id, ts, seq, value FROM readings_log"
                       " WHERE seq < ?1 AND sensor_id >= ?2 AND sensor_id < ?3"
                       " ORDER BY sensor_id, ts, seq",
    [S_COMPACT_DELETE] = "DELETE FROM readings_log WHERE seq < ?1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
};

struct rows_sensor {
    struct rows_sensor *hnext; /* hash chain */
    struct rows_sensor *tnext; /* sensors touched by the current group */
    uint64_t hash;
    int64_t id;
    /* This group's readings of the sensor; g_count == 0: untouched. */
    int64_t g_count, g_min_ts, g_max_ts;
    double g_last_value;
    uint32_t len;
    char name[];
};

struct rows_state {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct rows_sensor **buckets;
    size_t nbuckets; /* a power of two */
    size_t nentries;
    struct rows_sensor *touched;
    struct rows_sensor *last; /* the sensor of the previous reading */
    int64_t next_seq;
    int64_t txn_seq;      /* next_seq when the transaction began */
    int64_t log_rows;     /* rows in readings_log, committed or in this transaction */
    int64_t txn_log_rows; /* log_rows when the transaction began */
    int64_t log_since_ns; /* op_time_mono_ns() when the log became non-empty */
    /* The chunk being compacted: log rows with seq < c_bound and sensor_id
     * < c_hi are already in readings_sorted (c_bound 0: none). Kept in meta
     * too, where queries read it to skip those rows. */
    int64_t c_bound, c_hi;
    int64_t txn_c_bound, txn_c_hi;
    int64_t *ids;    /* scratch for retention, ids_cap entries */
    size_t ids_cap;
};

/* ---- the sensor cache -------------------------------------------------- */

static uint64_t name_hash(const char *p, uint32_t len)
{
    /* FNV-1a: names are short, and runs of one sensor skip hashing anyway. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint32_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void cache_clear(struct rows_state *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct rows_sensor *e = st->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            op_free(e);
        }
        st->buckets[i] = NULL;
    }
    st->nentries = 0;
    st->touched = NULL;
    st->last = NULL;
}

static void cache_grow(struct rows_state *st)
{
    size_t n = st->nbuckets * 2;
    struct rows_sensor **b = op_calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct rows_sensor *e = st->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    op_free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

/* Finds the sensor's id in the database, adding the sensor if it is new. */
static int sensor_resolve(struct rows_state *st, const char *name, uint32_t len, int64_t *id)
{
    sqlite3_stmt *q = st->st[S_SENSOR_GET];
    sqlite3_bind_text(q, 1, name, (int)len, SQLITE_STATIC);
    errno = 0;
    int rc = sqlite3_step(q);
    int saved = errno;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        rc = SQLITE_DONE;
    }
    int err = rc == SQLITE_DONE ? OP_OK : store__err(st->db, rc, saved);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (err != OP_OK || *id > 0)
        return err;

    q = st->st[S_SENSOR_ADD];
    sqlite3_bind_text(q, 1, name, (int)len, SQLITE_STATIC);
    err = store__exec(st->db, q);
    sqlite3_clear_bindings(q);
    if (err == OP_OK)
        *id = sqlite3_last_insert_rowid(st->db);
    return err;
}

static int sensor_get(struct rows_state *st, const char *name, uint32_t len,
                      struct rows_sensor **out)
{
    uint64_t h = name_hash(name, len);
    struct rows_sensor *e = st->buckets[h & (st->nbuckets - 1)];
    for (; e; e = e->hnext) {
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0) {
            *out = e;
            return OP_OK;
        }
    }

    int64_t id = 0;
    int rc = sensor_resolve(st, name, len, &id);
    if (rc != OP_OK)
        return rc;
    if (!(e = op_malloc(sizeof(*e) + len)))
        return OP_ENOMEM;
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, len);
    e->len = len;
    e->hash = h;
    e->id = id;
    if (st->nentries >= st->nbuckets)
        cache_grow(st);
    size_t b = h & (st->nbuckets - 1);
    e->hnext = st->buckets[b];
    st->buckets[b] = e;
    st->nentries++;
    *out = e;
    return OP_OK;
}

/* ---- the vtable -------------------------------------------------------- */

static void rows_destroy(void *state)
{
    struct rows_state *st = state;
    if (!st)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    if (st->buckets)
        cache_clear(st);
    op_free(st->buckets);
    op_free(st->ids);
    op_free(st);
}

static int rows_create(struct op_store *s, sqlite3 *db, void **state)
{
    struct rows_state *st = op_calloc(1, sizeof(*st));
    sqlite3_stmt *q = NULL;
    int rc;

    *state = NULL;
    if (!st)
        return OP_ENOMEM;
    st->db = db;
    st->nbuckets = 1024;
    if (!(st->buckets = op_calloc(st->nbuckets, sizeof(*st->buckets)))) {
        rc = OP_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (store__prepare(db, rows_sql[i], &st->st[i]) != SQLITE_OK) {
            rc = OP_EIO;
            goto fail;
        }
    }

    /* The next seq is past both the saved high-water mark and any row of
     * the log: the mark is written when rows leave the log (compaction),
     * not at every commit, so the log's own maximum covers the rest. */
    static const char next_seq_sql[] =
        "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1),"
        " coalesce((SELECT max(seq) FROM readings_log), 0) + 1),"
        " (SELECT count(*) FROM readings_log),"
        " coalesce((SELECT value FROM meta WHERE key = 'compact_bound'), 0),"
        " coalesce((SELECT value FROM meta WHERE key = 'compact_hi'), 0)";
    rc = sqlite3_prepare_v2(db, next_seq_sql, -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st->next_seq = sqlite3_column_int64(q, 0);
        st->log_rows = sqlite3_column_int64(q, 1);
        st->c_bound = sqlite3_column_int64(q, 2);
        st->c_hi = sqlite3_column_int64(q, 3);
        st->log_since_ns = op_time_mono_ns();
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "%s: cannot read the sequence: %s", s->path, sqlite3_errmsg(db));
        rc = store__err(db, rc, 0);
        goto fail;
    }
    st->txn_seq = st->next_seq;
    *state = st;
    return OP_OK;

fail:
    rows_destroy(st);
    return rc;
}

static void rows_txn_begin(void *state)
{
    struct rows_state *st = state;
    st->txn_seq = st->next_seq;
    st->txn_log_rows = st->log_rows;
    st->txn_c_bound = st->c_bound;
    st->txn_c_hi = st->c_hi;
}

static int rows_append(void *state, const struct op_reading *rd, size_t n)
{
    struct rows_state *st = state;
    sqlite3_stmt *ins = st->st[S_INSERT];
    struct rows_sensor *e = st->last;
    int64_t seq = st->next_seq;
    int rc = OP_OK;

    /* Successful system calls leave errno alone, so clearing it once lets a
     * failed insert (a page spilled to a full WAL) be told apart. */
    errno = 0;
    for (size_t i = 0; i < n; i++) {
        const struct op_reading *r = &rd[i];
        if (!e || e->len != r->sensor_len || memcmp(e->name, r->sensor, r->sensor_len) != 0) {
            if ((rc = sensor_get(st, r->sensor, r->sensor_len, &e)) != OP_OK)
                break;
        }
        sqlite3_bind_int64(ins, 1, seq);
        sqlite3_bind_int64(ins, 2, e->id);
        sqlite3_bind_int64(ins, 3, r->ts);
        sqlite3_bind_double(ins, 4, r->value);
        int src = sqlite3_step(ins);
        if (src != SQLITE_DONE) {
            rc = store__err(st->db, src, errno);
            sqlite3_reset(ins);
            break;
        }
        sqlite3_reset(ins);
        seq++;

        if (e->g_count == 0) {
            e->g_min_ts = e->g_max_ts = r->ts;
            e->g_last_value = r->value;
            e->tnext = st->touched;
            st->touched = e;
        } else {
            if (r->ts < e->g_min_ts)
                e->g_min_ts = r->ts;
            /* >=: of readings with equal ts the later one is the last. */
            if (r->ts >= e->g_max_ts) {
                e->g_max_ts = r->ts;
                e->g_last_value = r->value;
            }
        }
        e->g_count++;
    }
    st->last = e;
    if (st->log_rows == 0 && seq > st->next_seq)
        st->log_since_ns = op_time_mono_ns();
    st->log_rows += seq - st->next_seq;
    st->next_seq = seq;
    return rc;
}

static int rows_group_end(void *state)
{
    struct rows_state *st = state;
    sqlite3_stmt *q = st->st[S_SENSOR_STATS];
    int rc;

    for (struct rows_sensor *e = st->touched; e; e = e->tnext) {
        sqlite3_bind_int64(q, 1, e->id);
        sqlite3_bind_int64(q, 2, e->g_count);
        sqlite3_bind_int64(q, 3, e->g_min_ts);
        sqlite3_bind_int64(q, 4, e->g_max_ts);
        sqlite3_bind_double(q, 5, e->g_last_value);
        if ((rc = store__exec(st->db, q)) != OP_OK)
            return rc;
        e->g_count = 0;
    }
    st->touched = NULL;
    if (st->nentries > ROWS_CACHE_MAX)
        cache_clear(st);
    return OP_OK;
}

static void rows_txn_abort(void *state)
{
    struct rows_state *st = state;
    /* Sensors added in the rolled-back transaction are gone and the group
     * sums are void; the cache is only a cache, so drop all of it. */
    cache_clear(st);
    st->next_seq = st->txn_seq;
    st->log_rows = st->txn_log_rows;
    st->c_bound = st->txn_c_bound;
    st->c_hi = st->txn_c_hi;
}

/* ---- retention --------------------------------------------------------- */

static int ids_reserve(struct rows_state *st, size_t n)
{
    if (n <= st->ids_cap)
        return OP_OK;
    int64_t *p = op_realloc(st->ids, n * sizeof(*p));
    if (!p)
        return OP_ENOMEM;
    st->ids = p;
    st->ids_cap = n;
    return OP_OK;
}

/* Takes n deleted readings off the sensor's stats, recomputes its bounds and
 * drops it if nothing is left. *dropped is set when it was. */
static int sensor_fix(struct rows_state *st, int64_t id, int64_t n, bool *dropped)
{
    sqlite3_stmt *q = st->st[S_SENSOR_FIX];
    int rc;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, n);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    q = st->st[S_SENSOR_DROP];
    sqlite3_bind_int64(q, 1, id);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    if (sqlite3_changes(st->db) > 0)
        *dropped = true;
    return OP_OK;
}

static int rows_delete_older(void *state, int64_t cutoff, int64_t max_rows, int64_t *deleted)
{
    struct rows_state *st = state;
    sqlite3_stmt *q = st->st[S_AGE_SENSORS];
    size_t nids = 0;
    bool dropped = false;
    int rc;

    *deleted = 0;
    if ((rc = ids_reserve(st, (size_t)max_rows)) != OP_OK)
        return rc;
    /* Collect first: the loop below changes the table being scanned. Each
     * listed sensor has at least one row to delete, so max_rows sensors
     * are enough to use the whole budget. */
    sqlite3_bind_int64(q, 1, cutoff);
    sqlite3_bind_int64(q, 2, max_rows);
    errno = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        st->ids[nids++] = sqlite3_column_int64(q, 0);
    int err = rc == SQLITE_DONE ? OP_OK : store__err(st->db, rc, errno);
    sqlite3_reset(q);
    if (err != OP_OK)
        return err;

    q = st->st[S_AGE_DELETE];
    for (size_t i = 0; i < nids && *deleted < max_rows; i++) {
        sqlite3_bind_int64(q, 1, st->ids[i]);
        sqlite3_bind_int64(q, 2, cutoff);
        sqlite3_bind_int64(q, 3, max_rows - *deleted);
        if ((rc = store__exec(st->db, q)) != OP_OK)
            return rc;
        int64_t n = sqlite3_changes64(st->db);
        *deleted += n;
        if (n > 0 && (err = sensor_fix(st, st->ids[i], n, &dropped)) != OP_OK)
            return err;
    }
    /* A dropped sensor's id must not be used again by the cache. */
    if (dropped)
        cache_clear(st);
    return OP_OK;
}

/* Reads one integer column of a one-row query; *found says if a row (with
 * a non-NULL value) came back. */
static int query_one(struct rows_state *st, sqlite3_stmt *q, int64_t *out, bool *found)
{
    errno = 0;
    int src = sqlite3_step(q);
    int saved = errno;
    *found = src == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL;
    if (*found)
        *out = sqlite3_column_int64(q, 0);
    int rc = (src == SQLITE_ROW || src == SQLITE_DONE) ? OP_OK : store__err(st->db, src, saved);
    sqlite3_reset(q);
    return rc;
}

static int rows_delete_oldest(void *state, int64_t max_rows, int64_t *deleted)
{
    struct rows_state *st = state;
    bool dropped = false, found;
    int rc = OP_OK;

    *deleted = 0;
    while (*deleted < max_rows) {
        int64_t id, bound = INT64_MAX;
        if ((rc = query_one(st, st->st[S_OLDEST_SENSOR], &id, &found)) != OP_OK || !found)
            break;
        /* Up to where the next-oldest sensor's data begins (inclusive, so
         * equal timestamps still make progress). */
        sqlite3_bind_int64(st->st[S_OTHERS_FIRST_TS], 1, id);
        if ((rc = query_one(st, st->st[S_OTHERS_FIRST_TS], &bound, &found)) != OP_OK)
            break;
        if (!found)
            bound = INT64_MAX;
        sqlite3_stmt *q = st->st[S_DELETE_HEAD];
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_int64(q, 2, bound);
        sqlite3_bind_int64(q, 3, max_rows - *deleted);
        if ((rc = store__exec(st->db, q)) != OP_OK)
            break;
        int64_t n = sqlite3_changes64(st->db);
        if (n == 0)
            break; /* stats and rows disagree: do not spin */
        *deleted += n;
        if ((rc = sensor_fix(st, id, n, &dropped)) != OP_OK)
            break;
    }
    if (dropped)
        cache_clear(st);
    return rc;
}

/* ---- compaction -------------------------------------------------------- */

static int meta_set(struct rows_state *st, const char *key, int64_t value)
{
    sqlite3_stmt *q = st->st[S_META_SET];
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, value);
    return store__exec(st->db, q);
}

/* Log rows a compaction may move: those with seq <= hold, or all of them
 * once the log is over STORE_COMPACT_HOLD_MAX. Seqs in the log are
 * contiguous (appends take the next one, rollbacks give them back, only
 * compaction deletes, from the front), so the log holds exactly
 * [next_seq - log_rows, next_seq). */
static int64_t log_movable(const struct rows_state *st, int64_t hold)
{
    if (st->log_rows >= STORE_COMPACT_HOLD_MAX)
        return st->log_rows;
    int64_t first = st->next_seq - st->log_rows;
    if (hold < first)
        return 0;
    return hold - first + 1 < st->log_rows ? hold - first + 1 : st->log_rows;
}

/*
 * One compaction step. A chunk is the first max_rows rows of the log (by
 * seq); it moves one range of STORE_COMPACT_SENSORS sensor ids per step, so
 * a step dirties the pages of that many sensors only: that bounds both the
 * page cache a step holds until its commit and how long ingest waits
 * behind it. The step that reaches the last sensor deletes the chunk from
 * the log. Between steps queries skip the chunk's moved rows in the log
 * (meta holds the chunk's bound and the sensor ids done), so no reading is
 * seen twice or missed, also across a restart.
 */
static int rows_compact(void *state, int64_t max_rows, int64_t hold, int64_t *moved)
{
    struct rows_state *st = state;
    bool found;
    int rc;

    *moved = 0;
    if (st->c_bound == 0) {
        int64_t movable = log_movable(st, hold);
        if (movable == 0)
            return OP_OK;
        int64_t bound;
        sqlite3_bind_int64(st->st[S_LOG_BOUND], 1, movable < max_rows ? movable : max_rows);
        if ((rc = query_one(st, st->st[S_LOG_BOUND], &bound, &found)) != OP_OK)
            return rc;
        st->c_bound = found ? bound : st->next_seq;
        st->c_hi = 0; /* sensor ids start at 1 */
    }
    int64_t lo = st->c_hi, hi;
    sqlite3_bind_int64(st->st[S_SENSOR_SPLIT], 1, lo);
    sqlite3_bind_int64(st->st[S_SENSOR_SPLIT], 2, STORE_COMPACT_SENSORS);
    if ((rc = query_one(st, st->st[S_SENSOR_SPLIT], &hi, &found)) != OP_OK)
        return rc;
    if (!found)
        hi = INT64_MAX;
    sqlite3_stmt *q = st->st[S_COMPACT_MOVE];
    sqlite3_bind_int64(q, 1, st->c_bound);
    sqlite3_bind_int64(q, 2, lo);
    sqlite3_bind_int64(q, 3, hi);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    *moved = sqlite3_changes64(st->db);
    if (hi != INT64_MAX) {
        st->c_hi = hi;
        if ((rc = meta_set(st, "compact_bound", st->c_bound)) != OP_OK)
            return rc;
        return meta_set(st, "compact_hi", hi);
    }

    /* The last range: the chunk leaves the log. Its maximum seq no longer
     * proves the high-water mark, so the mark is saved with it. */
    q = st->st[S_COMPACT_DELETE];
    sqlite3_bind_int64(q, 1, st->c_bound);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    st->log_rows -= sqlite3_changes64(st->db);
    if (st->log_rows < 0)
        st->log_rows = 0;
    st->c_bound = st->c_hi = 0;
    if ((rc = meta_set(st, "next_seq", st->next_seq)) != OP_OK ||
        (rc = meta_set(st, "compact_bound", 0)) != OP_OK ||
        (rc = meta_set(st, "compact_hi", 0)) != OP_OK)
        return rc;
    st->log_since_ns = op_time_mono_ns();
    return OP_OK;
}

static int64_t rows_compact_wait_ns(void *state, bool idle, int64_t hold)
{
    struct rows_state *st = state;
    if (st->c_bound != 0)
        return 0;
    int64_t movable = log_movable(st, hold);
    if (movable == 0)
        return -1;
    /* Under load, wait for a chunk worth a pass over the sensors: a runner
     * a little behind would otherwise make many small ones. */
    if (st->log_rows >= STORE_COMPACT_ROWS &&
        (movable == st->log_rows || movable >= STORE_COMPACT_ROWS / 4))
        return 0;
    if (!idle)
        return -1;
    int64_t due = st->log_since_ns + (int64_t)STORE_COMPACT_IDLE_MS * 1000000;
    int64_t d = due - op_time_mono_ns();
    return d > 0 ? d : 0;
}

static int64_t rows_next_seq(const void *state)
{
    return ((const struct rows_state *)state)->next_seq;
}

const struct store_layout store__layout_log = {
    .name = "log",
    .create = rows_create,
    .destroy = rows_destroy,
    .txn_begin = rows_txn_begin,
    .append = rows_append,
    .next_seq = rows_next_seq,
    .group_end = rows_group_end,
    .txn_abort = rows_txn_abort,
    .delete_older = rows_delete_older,
    .delete_oldest = rows_delete_oldest,
    .compact = rows_compact,
    .compact_wait_ns = rows_compact_wait_ns,
};
