/*
 * store_layout.c: the log + chunks layout of readings (struct store_layout).
 * A commit appends the group's readings to the log as one record (a blob of
 * fixed-size entries, see store_int.h; several past STORE_LOG_RECORD_MAX):
 * one row at the right edge of one b-tree per commit, however many readings
 * and sensors the group holds. Between groups the writer compacts the log:
 * a large part of it is read in seq order, sorted in memory by
 * (sensor_id, ts, seq) and written as chunks (store_chunk.c), one row of up
 * to STORE_CHUNK_MAX codec-encoded readings per sensor, so a compaction of
 * 65,536 readings over 1,000 sensors inserts about 1,000 small rows instead
 * of 65,536 b-tree entries. Queries merge the log and the chunks
 * (store_scan.c). `sensors` holds each sensor's name and stats (count,
 * first_ts, last_ts, last_value) and span, the widest ts_hi - ts_lo of its
 * chunks, which bounds where a query must start looking.
 *
 * The layouts this replaces: one table plus a (sensor, ts) index dirtied
 * an index page per sensor per commit (0.3 M readings/s with 1,000
 * sensors); the log plus a row-per-reading sorted table spent over half of
 * batched ingest's CPU moving rows into that table, and then a log of one
 * row per reading was the largest cost left (docs/internals/store.md).
 *
 * The append path is the hot loop of ingest, so per reading it copies 24
 * bytes into the group's record and does a few compares: sensor names are
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
#define LAYOUT_CACHE_MAX 65536

enum layout_stmt {
    S_LOG_ADD,
    S_SENSOR_GET,
    S_SENSOR_ADD,
    S_SENSOR_STATS,
    S_AGE_SENSORS,
    S_AGE_CHUNKS,
    S_CUT_CHUNKS,
    S_SENSOR_FIX,
    S_SENSOR_DROP,
    S_OLDEST_SENSOR,
    S_OTHERS_FIRST_TS,
    S_LOG_HEAD,
    S_LOG_DELETE,
    S_TAIL,
    S_CHUNK_ADD,
    S_CHUNK_SET,
    S_CHUNK_DELETE,
    S_SPAN,
    S_META_SET,
    S_COUNT
};

#define CHUNK_COLS "id, ts_lo, ts_hi, n, points, seqs"

static const char *const layout_sql[S_COUNT] = {
    [S_LOG_ADD] = "INSERT INTO log(seq_lo, n, data) VALUES(?1, ?2, ?3)",
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
    /* Retention deletes from chunks only: it compacts the log first, and
     * what stays there (rows the rules have not seen, see
     * STORE_COMPACT_HOLD_MAX) is the newest. */
    [S_AGE_SENSORS] = "SELECT id FROM sensors WHERE first_ts < ?1 ORDER BY first_ts LIMIT ?2",
    /* Chunks wholly older than the cutoff, oldest first. */
    [S_AGE_CHUNKS] = "SELECT id, n FROM chunks INDEXED BY chunks_hi"
                     " WHERE sensor_id = ?1 AND ts_hi < ?2 ORDER BY ts_hi LIMIT 1",
    /* Chunks the cutoff falls inside: rewritten without the old readings. */
    [S_CUT_CHUNKS] = "SELECT " CHUNK_COLS " FROM chunks INDEXED BY chunks_hi"
                     " WHERE sensor_id = ?1 AND ts_hi >= ?2 AND ts_lo < ?2 LIMIT 1",
    /* After deletions: the first ts comes from the chunks' index and from
     * the log's held readings (?3..?5, NULL when none; few: retention runs
     * after compaction emptied the rest). Deleting the oldest readings
     * leaves the newest one while any remain, so last_ts and last_value
     * change only when no chunk is left; then the log's are the last. */
    [S_SENSOR_FIX] = "UPDATE sensors SET count = count - ?2,"
                     " first_ts = coalesce(min((SELECT min(ts_lo) FROM chunks"
                     "   WHERE sensor_id = ?1), ?3),"
                     "   (SELECT min(ts_lo) FROM chunks WHERE sensor_id = ?1), ?3),"
                     " last_ts = CASE WHEN EXISTS (SELECT 1 FROM chunks"
                     "   WHERE sensor_id = ?1) THEN last_ts ELSE ?4 END,"
                     " last_value = CASE WHEN EXISTS (SELECT 1 FROM chunks"
                     "   WHERE sensor_id = ?1) THEN last_value ELSE ?5 END"
                     " WHERE id = ?1",
    [S_SENSOR_DROP] = "DELETE FROM sensors WHERE id = ?1 AND count <= 0",
    /* The quota deletes the globally oldest readings: those of the sensor
     * with the oldest data, up to where another sensor's data begins. */
    [S_OLDEST_SENSOR] = "SELECT id FROM sensors WHERE count > 0 ORDER BY first_ts, id"
                        " LIMIT 1 OFFSET ?1",
    [S_OTHERS_FIRST_TS] = "SELECT min(first_ts) FROM (SELECT id, first_ts FROM sensors"
                          " WHERE count > 0 ORDER BY first_ts, id LIMIT -1 OFFSET ?2)"
                          " WHERE id != ?1",
    /* Compaction reads the front of the log by its primary key. */
    [S_LOG_HEAD] = "SELECT seq_lo, n, data FROM log ORDER BY seq_lo",
    [S_LOG_DELETE] = "DELETE FROM log WHERE seq_lo <= ?1",
    /* The sensor's newest chunk, which compaction may append to. */
    [S_TAIL] = "SELECT " CHUNK_COLS " FROM chunks INDEXED BY chunks_lo"
               " WHERE sensor_id = ?1 ORDER BY ts_lo DESC LIMIT 1",
    [S_CHUNK_ADD] = "INSERT INTO chunks(sensor_id, ts_lo, ts_hi, n, points, seqs)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_CHUNK_SET] = "UPDATE chunks SET ts_lo = ?2, ts_hi = ?3, n = ?4, points = ?5, seqs = ?6"
                    " WHERE id = ?1",
    [S_CHUNK_DELETE] = "DELETE FROM chunks WHERE id = ?1",
    [S_SPAN] = "UPDATE sensors SET span = ?2 WHERE id = ?1 AND span < ?2",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
};

struct layout_sensor {
    struct layout_sensor *hnext; /* hash chain */
    struct layout_sensor *tnext; /* sensors touched by the current group */
    uint64_t hash;
    int64_t id;
    /* This group's readings of the sensor; g_count == 0: untouched. */
    int64_t g_count, g_min_ts, g_max_ts;
    double g_last_value;
    uint32_t len;
    char name[];
};

/* A log row being compacted. */
struct log_row {
    int64_t sensor, ts, seq;
    double value;
};

struct layout_state {
    struct op_store *s;
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct layout_sensor **buckets;
    size_t nbuckets; /* a power of two */
    size_t nentries;
    struct layout_sensor *touched;
    struct layout_sensor *last; /* the sensor of the previous reading */
    int64_t next_seq;
    int64_t txn_seq;      /* next_seq when the transaction began */
    int64_t log_rows;     /* readings in the log, committed or in this transaction */
    int64_t txn_log_rows; /* log_rows when the transaction began */
    int64_t log_since_ns; /* op_time_mono_ns() when the log became non-empty */
    int64_t *ids;    /* scratch for retention, ids_cap entries */
    size_t ids_cap;
    /* Compaction's and retention's scratch, kept between steps. */
    struct log_row *rows; /* in seq order */
    size_t rows_cap;
    uint32_t *perm; /* rows by sensor, rows_cap entries */
    struct log_row *seg; /* one sensor's rows, when they need sorting */
    size_t seg_cap;
    struct store_pts pts;
    struct store_chunk_buf cbuf;
    struct op_codec_ctx *codec;
    /* This group's readings as log entries not written yet: grp_seq is the
     * first one's seq. A full record is written as soon as it is full, so
     * a large group does not hold all its entries in memory. */
    uint8_t *grp;
    size_t grp_n, grp_cap; /* entries, and bytes allocated */
    int64_t grp_seq;
    /* Retention's per-step table of the log's held readings by sensor. */
    struct log_bounds *bounds;
    size_t bounds_cap;
    bool bounds_built;
    /* The rest of a record compaction split (STORE_LOG_BYTES each). */
    uint8_t *rest;
    size_t rest_cap;
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

static void cache_clear(struct layout_state *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct layout_sensor *e = st->buckets[i], *next;
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

static void cache_grow(struct layout_state *st)
{
    size_t n = st->nbuckets * 2;
    struct layout_sensor **b = op_calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct layout_sensor *e = st->buckets[i], *next;
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
static int sensor_resolve(struct layout_state *st, const char *name, uint32_t len, int64_t *id)
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

static int sensor_get(struct layout_state *st, const char *name, uint32_t len,
                      struct layout_sensor **out)
{
    uint64_t h = name_hash(name, len);
    struct layout_sensor *e = st->buckets[h & (st->nbuckets - 1)];
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

static int legacy_convert(struct layout_state *st, const char *path);
static int legacy_log_convert(struct layout_state *st, const char *path);

static void layout_destroy(void *state)
{
    struct layout_state *st = state;
    if (!st)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    if (st->buckets)
        cache_clear(st);
    op_free(st->buckets);
    op_free(st->ids);
    op_free(st->rows);
    op_free(st->perm);
    op_free(st->seg);
    store__pts_free(&st->pts);
    op_free(st->cbuf.data);
    op_free(st->grp);
    op_free(st->rest);
    op_free(st->bounds);
    op_codec_ctx_destroy(st->codec);
    op_free(st);
}

static int layout_create(struct op_store *s, sqlite3 *db, void **state)
{
    struct layout_state *st = op_calloc(1, sizeof(*st));
    sqlite3_stmt *q = NULL;
    int rc;

    *state = NULL;
    if (!st)
        return OP_ENOMEM;
    st->s = s;
    st->db = db;
    if ((rc = op_codec_ctx_create(&st->codec)) != OP_OK)
        goto fail;
    st->nbuckets = 1024;
    if (!(st->buckets = op_calloc(st->nbuckets, sizeof(*st->buckets)))) {
        rc = OP_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (store__prepare(db, layout_sql[i], &st->st[i]) != SQLITE_OK) {
            rc = OP_EIO;
            goto fail;
        }
    }

    if ((rc = legacy_convert(st, s->path)) != OP_OK ||
        (rc = legacy_log_convert(st, s->path)) != OP_OK)
        goto fail;

    /* The next seq is past both the saved high-water mark and any row of
     * the log: the mark is written when rows leave the log (compaction),
     * not at every commit, so the log's own maximum covers the rest. */
    static const char next_seq_sql[] =
        "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1),"
        " coalesce((SELECT seq_lo + n FROM log ORDER BY seq_lo DESC LIMIT 1), 1)),"
        " coalesce((SELECT sum(n) FROM log), 0)";
    rc = sqlite3_prepare_v2(db, next_seq_sql, -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st->next_seq = sqlite3_column_int64(q, 0);
        st->log_rows = sqlite3_column_int64(q, 1);
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
    layout_destroy(st);
    return rc;
}

static void layout_txn_begin(void *state)
{
    struct layout_state *st = state;
    st->txn_seq = st->next_seq;
    st->txn_log_rows = st->log_rows;
    st->bounds_built = false;
}

static int grp_write(struct layout_state *st);

static int grp_reserve(struct layout_state *st, size_t n)
{
    return op_reserve(&st->grp, &st->grp_cap, (st->grp_n + n) * STORE_LOG_BYTES, 1,
                      64 * STORE_LOG_BYTES);
}

static int layout_append(void *state, const struct op_reading *rd, size_t n)
{
    struct layout_state *st = state;
    struct layout_sensor *e = st->last;
    int64_t seq = st->next_seq;
    size_t room = STORE_LOG_RECORD_MAX - st->grp_n;
    int rc = grp_reserve(st, n < room ? n : room);

    for (size_t i = 0; rc == OP_OK && i < n; i++) {
        const struct op_reading *r = &rd[i];
        if (!e || e->len != r->sensor_len || memcmp(e->name, r->sensor, r->sensor_len) != 0) {
            if ((rc = sensor_get(st, r->sensor, r->sensor_len, &e)) != OP_OK)
                break;
        }
        if (st->grp_n == 0)
            st->grp_seq = seq;
        store__log_put(st->grp + st->grp_n++ * STORE_LOG_BYTES, e->id, r->ts, r->value);
        seq++;
        if (st->grp_n == STORE_LOG_RECORD_MAX && (rc = grp_write(st)) == OP_OK && i + 1 < n)
            rc = grp_reserve(st, n - i - 1 < STORE_LOG_RECORD_MAX ? n - i - 1
                                                                  : STORE_LOG_RECORD_MAX);

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

/* Writes entries [at, at + n) of buf as the record of seqs seq_lo.. */
static int log_add(struct layout_state *st, int64_t seq_lo, const uint8_t *buf, size_t n)
{
    sqlite3_stmt *q = st->st[S_LOG_ADD];
    sqlite3_bind_int64(q, 1, seq_lo);
    sqlite3_bind_int64(q, 2, (int64_t)n);
    sqlite3_bind_blob(q, 3, buf, (int)(n * STORE_LOG_BYTES), SQLITE_STATIC);
    int rc = store__exec(st->db, q);
    sqlite3_clear_bindings(q);
    return rc;
}

/* The group's entries not written yet as one record. */
static int grp_write(struct layout_state *st)
{
    int rc = st->grp_n ? log_add(st, st->grp_seq, st->grp, st->grp_n) : OP_OK;
    st->grp_n = 0;
    return rc;
}

static int layout_group_end(void *state)
{
    struct layout_state *st = state;
    sqlite3_stmt *q = st->st[S_SENSOR_STATS];
    int rc;

    if ((rc = grp_write(st)) != OP_OK)
        return rc;
    for (struct layout_sensor *e = st->touched; e; e = e->tnext) {
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
    if (st->nentries > LAYOUT_CACHE_MAX)
        cache_clear(st);
    return OP_OK;
}

static void layout_txn_abort(void *state)
{
    struct layout_state *st = state;
    /* Sensors added in the rolled-back transaction are gone and the group
     * sums are void; the cache is only a cache, so drop all of it. */
    cache_clear(st);
    st->next_seq = st->txn_seq;
    st->log_rows = st->txn_log_rows;
    st->grp_n = 0;
}

/* ---- retention --------------------------------------------------------- */

/* Steps q once: true with a row, false at the end (*rc says whether that
 * end is an error). The caller resets q. */
static bool step_row(struct layout_state *st, sqlite3_stmt *q, int *rc)
{
    errno = 0;
    int src = sqlite3_step(q);
    *rc = (src == SQLITE_ROW || src == SQLITE_DONE) ? OP_OK : store__err(st->db, src, errno);
    return src == SQLITE_ROW;
}

/* A sensor's readings still in the log (held there for the rules): the
 * smallest ts, and the newest by (ts, seq) with its value. */
struct log_bounds {
    int64_t id; /* 0: an empty slot */
    int64_t min_ts, max_ts;
    double last;
};

/* The slot of id in the open-addressed bounds table (cap a power of two). */
static struct log_bounds *bounds_slot(struct log_bounds *t, size_t cap, int64_t id)
{
    size_t k = (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
    while (t[k].id != 0 && t[k].id != id)
        k = (k + 1) & (cap - 1);
    return &t[k];
}

static int bounds_grow(struct layout_state *st)
{
    size_t cap = st->bounds_cap ? st->bounds_cap * 2 : 1024;
    struct log_bounds *t = op_calloc(cap, sizeof(*t));
    if (!t)
        return OP_ENOMEM;
    for (size_t k = 0; k < st->bounds_cap; k++)
        if (st->bounds[k].id != 0)
            *bounds_slot(t, cap, st->bounds[k].id) = st->bounds[k];
    op_free(st->bounds);
    st->bounds = t;
    st->bounds_cap = cap;
    return OP_OK;
}

/* One pass over the log for the bounds of every sensor in it: a retention
 * step fixes up to thousands of sensors, and with the rules behind the log
 * holds up to STORE_COMPACT_HOLD_MAX readings, which must not be read once
 * per sensor. The log does not change within a step (bounds_built is
 * cleared at each transaction's start). */
static int bounds_build(struct layout_state *st)
{
    sqlite3_stmt *q = st->st[S_LOG_HEAD];
    size_t used = 0;
    int rc = OP_OK;
    if (st->bounds)
        memset(st->bounds, 0, st->bounds_cap * sizeof(*st->bounds));
    while (rc == OP_OK && step_row(st, q, &rc)) {
        int64_t n, id, ts;
        double v;
        const uint8_t *d = store__log_entries(q, &n);
        if (!d)
            rc = OP_ECORRUPT;
        for (int64_t i = 0; d && rc == OP_OK && i < n; i++) {
            store__log_get(d + i * STORE_LOG_BYTES, &id, &ts, &v);
            if (2 * (used + 1) > st->bounds_cap && (rc = bounds_grow(st)) != OP_OK)
                break;
            struct log_bounds *b = bounds_slot(st->bounds, st->bounds_cap, id);
            if (b->id == 0) {
                *b = (struct log_bounds){ id, ts, ts, v };
                used++;
                continue;
            }
            if (ts < b->min_ts)
                b->min_ts = ts;
            if (ts >= b->max_ts) /* >=: the later seq wins a tie */
                b->max_ts = ts, b->last = v;
        }
    }
    sqlite3_reset(q);
    st->bounds_built = rc == OP_OK;
    return rc;
}

/* The sensor's held readings' bounds, or NULL (in *out) when it has none. */
static int log_sensor(struct layout_state *st, int64_t sensor, const struct log_bounds **out)
{
    *out = NULL;
    /* Retention compacts first, so the log is usually empty here. */
    if (st->log_rows == 0)
        return OP_OK;
    int rc = st->bounds_built ? OP_OK : bounds_build(st);
    if (rc == OP_OK && st->bounds_cap > 0) {
        const struct log_bounds *b = bounds_slot(st->bounds, st->bounds_cap, sensor);
        *out = b->id == sensor ? b : NULL;
    }
    return rc;
}

/* Takes n deleted readings off the sensor's stats, recomputes its bounds and
 * drops it if nothing is left. *dropped is set when it was. */
static int sensor_fix(struct layout_state *st, int64_t id, int64_t n, bool *dropped)
{
    sqlite3_stmt *q = st->st[S_SENSOR_FIX];
    const struct log_bounds *b;
    int rc = log_sensor(st, id, &b);
    if (rc != OP_OK)
        return rc;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, n);
    if (b) {
        sqlite3_bind_int64(q, 3, b->min_ts);
        sqlite3_bind_int64(q, 4, b->max_ts);
        sqlite3_bind_double(q, 5, b->last);
    }
    rc = store__exec(st->db, q);
    sqlite3_clear_bindings(q);
    if (rc != OP_OK)
        return rc;
    q = st->st[S_SENSOR_DROP];
    sqlite3_bind_int64(q, 1, id);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    if (sqlite3_changes(st->db) > 0) {
        store__names_changing(st->s);
        *dropped = true;
    }
    return OP_OK;
}

static int chunk_delete(struct layout_state *st, int64_t id)
{
    sqlite3_bind_int64(st->st[S_CHUNK_DELETE], 1, id);
    return store__exec(st->db, st->st[S_CHUNK_DELETE]);
}

/* Deletes the chunks q selects (id, n; one per run, bound by the caller)
 * one at a time until none is left or budget readings went. A step thus
 * deletes at most budget + STORE_CHUNK_MAX - 1 readings. */
static int chunks_drop(struct layout_state *st, sqlite3_stmt *q, int64_t budget, int64_t *deleted)
{
    int rc = OP_OK;
    *deleted = 0;
    while (*deleted < budget && step_row(st, q, &rc)) {
        int64_t id = sqlite3_column_int64(q, 0), n = sqlite3_column_int64(q, 1);
        sqlite3_reset(q);
        if ((rc = chunk_delete(st, id)) != OP_OK)
            break;
        *deleted += n;
    }
    sqlite3_reset(q);
    return rc;
}

/* Writes pts[at, at + n) as chunk id (0: a new chunk of the sensor) and
 * widens *span to it. */
static int chunk_put(struct layout_state *st, int64_t sensor, int64_t id, size_t at, size_t n,
                     int64_t *span)
{
    int rc = store__chunk_encode(st->codec, &st->pts, at, n, &st->cbuf);
    if (rc != OP_OK)
        return rc;
    int64_t lo = st->pts.ts[at], hi = st->pts.ts[at + n - 1];
    sqlite3_stmt *q = st->st[id ? S_CHUNK_SET : S_CHUNK_ADD];
    sqlite3_bind_int64(q, 1, id ? id : sensor);
    sqlite3_bind_int64(q, 2, lo);
    sqlite3_bind_int64(q, 3, hi);
    sqlite3_bind_int64(q, 4, (int64_t)n);
    sqlite3_bind_blob(q, 5, st->cbuf.data, (int)st->cbuf.points_len, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, st->cbuf.data + st->cbuf.points_len, (int)st->cbuf.seqs_len,
                      SQLITE_STATIC);
    rc = store__exec(st->db, q);
    sqlite3_clear_bindings(q);
    int64_t w;
    if (__builtin_sub_overflow(hi, lo, &w))
        w = INT64_MAX; /* the chunk covers all time */
    if (w > *span)
        *span = w;
    return rc;
}

static int span_widen(struct layout_state *st, int64_t sensor, int64_t span)
{
    sqlite3_stmt *q = st->st[S_SPAN];
    sqlite3_bind_int64(q, 1, sensor);
    sqlite3_bind_int64(q, 2, span);
    return store__exec(st->db, q);
}

/* Decodes the chunk at q's current row (CHUNK_COLS) into st->pts. */
static int chunk_load(struct layout_state *st, sqlite3_stmt *q)
{
    st->pts.n = 0;
    int rc = store__chunk_decode_cols(st->codec, q, 4, &st->pts);
    if (rc == OP_ECORRUPT)
        OP_ERROR(STORE_SUB, "chunk %lld does not decode: the database is damaged",
                 (long long)sqlite3_column_int64(q, 0));
    return rc;
}

/* Rewrites the sensor's chunks that the cutoff falls inside without their
 * readings older than it; *removed counts those. After a rewrite a chunk
 * starts at or past the cutoff, so the query (LIMIT 1) moves on by itself. */
static int chunks_cut(struct layout_state *st, int64_t sensor, int64_t cutoff, int64_t *removed)
{
    sqlite3_stmt *q = st->st[S_CUT_CHUNKS];
    int rc = OP_OK;
    int64_t span = 0;
    *removed = 0;
    sqlite3_bind_int64(q, 1, sensor);
    sqlite3_bind_int64(q, 2, cutoff);
    while (step_row(st, q, &rc)) {
        int64_t id = sqlite3_column_int64(q, 0);
        rc = chunk_load(st, q);
        sqlite3_reset(q);
        if (rc != OP_OK)
            break;
        size_t old = 0;
        while (old < st->pts.n && st->pts.ts[old] < cutoff)
            old++;
        if (old == 0 || old == st->pts.n) {
            rc = OP_ECORRUPT; /* the row's bounds disagree with its readings */
            break;
        }
        size_t keep = st->pts.n - old;
        memmove(st->pts.ts, st->pts.ts + old, keep * sizeof(*st->pts.ts));
        memmove(st->pts.val, st->pts.val + old, keep * sizeof(*st->pts.val));
        memmove(st->pts.seq, st->pts.seq + old, keep * sizeof(*st->pts.seq));
        st->pts.n = keep;
        if ((rc = chunk_put(st, sensor, id, 0, keep, &span)) != OP_OK)
            break;
        *removed += (int64_t)old;
    }
    sqlite3_reset(q);
    return rc;
}

/* Deletes the sensor's readings with ts < cutoff: its chunks that end
 * before it, oldest first, while the budget lasts, then the older part of
 * a chunk the cutoff falls inside. *n counts what went. */
static int sensor_trim(struct layout_state *st, int64_t id, int64_t cutoff, int64_t budget,
                       int64_t *n)
{
    sqlite3_stmt *q = st->st[S_AGE_CHUNKS];
    int64_t whole = 0, cut = 0;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, cutoff);
    int rc = chunks_drop(st, q, budget, &whole);
    if (rc == OP_OK && whole < budget)
        rc = chunks_cut(st, id, cutoff, &cut);
    *n = whole + cut;
    return rc;
}

static int layout_delete_older(void *state, int64_t cutoff, int64_t max_rows, int64_t *deleted)
{
    struct layout_state *st = state;
    sqlite3_stmt *q = st->st[S_AGE_SENSORS];
    size_t nids = 0;
    bool dropped = false;
    int rc;

    *deleted = 0;
    if ((rc = op_reserve(&st->ids, &st->ids_cap, (size_t)max_rows, sizeof(*st->ids), 1)) != OP_OK)
        return rc;
    /* Collect first: the loop below changes the table being scanned. Each
     * listed sensor has at least one reading to delete, so max_rows sensors
     * are enough to use the whole budget, unless its old readings are held
     * in the log for the rules (they go once the rules have seen them). */
    sqlite3_bind_int64(q, 1, cutoff);
    sqlite3_bind_int64(q, 2, max_rows);
    while (step_row(st, q, &rc))
        st->ids[nids++] = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (rc != OP_OK)
        return rc;

    for (size_t i = 0; i < nids && *deleted < max_rows; i++) {
        int64_t n = 0;
        if ((rc = sensor_trim(st, st->ids[i], cutoff, max_rows - *deleted, &n)) != OP_OK)
            return rc;
        *deleted += n;
        if (n > 0 && (rc = sensor_fix(st, st->ids[i], n, &dropped)) != OP_OK)
            return rc;
    }
    /* A dropped sensor's id must not be used again by the cache. */
    if (dropped)
        cache_clear(st);
    return OP_OK;
}

/* Reads one integer column of a one-row query; *found says if a row (with
 * a non-NULL value) came back. */
static int query_one(struct layout_state *st, sqlite3_stmt *q, int64_t *out, bool *found)
{
    int rc;
    *found = step_row(st, q, &rc) && sqlite3_column_type(q, 0) != SQLITE_NULL;
    if (*found)
        *out = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    return rc;
}

static int layout_delete_oldest(void *state, int64_t max_rows, int64_t *deleted)
{
    struct layout_state *st = state;
    bool dropped = false, found;
    int64_t skip = 0; /* oldest sensors whose oldest readings are held in the log */
    int rc = OP_OK;

    *deleted = 0;
    while (*deleted < max_rows) {
        int64_t id, bound = INT64_MAX, n = 0;
        sqlite3_bind_int64(st->st[S_OLDEST_SENSOR], 1, skip);
        if ((rc = query_one(st, st->st[S_OLDEST_SENSOR], &id, &found)) != OP_OK || !found)
            break;
        /* Up to where the next-oldest sensor's data begins (inclusive, so
         * equal timestamps still make progress). */
        sqlite3_bind_int64(st->st[S_OTHERS_FIRST_TS], 1, id);
        sqlite3_bind_int64(st->st[S_OTHERS_FIRST_TS], 2, skip);
        if ((rc = query_one(st, st->st[S_OTHERS_FIRST_TS], &bound, &found)) != OP_OK)
            break;
        if (!found)
            bound = INT64_MAX;
        /* Through the bound, inclusive: ts < bound + 1. */
        int64_t cutoff = bound < INT64_MAX ? bound + 1 : INT64_MAX;
        if ((rc = sensor_trim(st, id, cutoff, max_rows - *deleted, &n)) != OP_OK)
            break;
        if (n == 0) {
            skip++; /* held for the rules: the next-oldest goes first */
            continue;
        }
        *deleted += n;
        if ((rc = sensor_fix(st, id, n, &dropped)) != OP_OK)
            break;
    }
    if (dropped)
        cache_clear(st);
    return rc;
}

/* ---- compaction -------------------------------------------------------- */

static int meta_set(struct layout_state *st, const char *key, int64_t value)
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
static int64_t log_movable(const struct layout_state *st, int64_t hold)
{
    if (st->log_rows >= STORE_COMPACT_HOLD_MAX)
        return st->log_rows;
    int64_t first = st->next_seq - st->log_rows;
    if (hold < first)
        return 0;
    return hold - first + 1 < st->log_rows ? hold - first + 1 : st->log_rows;
}

/* The first want readings of the log (by seq) into st->rows; *got how
 * many. A record that holds more than are wanted is split: the rest is
 * kept in st->rest, to be written back as a record of its own. */
static int log_read(struct layout_state *st, int64_t want, size_t *got, size_t *rest_n)
{
    *got = *rest_n = 0;
    /* rows and perm have one length, as store__pts_reserve's arrays. */
    size_t c_rows = st->rows_cap, c_perm = st->rows_cap;
    if (op_reserve(&st->rows, &c_rows, (size_t)want, sizeof(*st->rows), 1024) != OP_OK ||
        op_reserve(&st->perm, &c_perm, (size_t)want, sizeof(*st->perm), 1024) != OP_OK)
        return OP_ENOMEM;
    st->rows_cap = c_rows;
    sqlite3_stmt *q = st->st[S_LOG_HEAD];
    int rc = OP_OK;
    while (*got < (size_t)want && step_row(st, q, &rc)) {
        int64_t n, seq_lo = sqlite3_column_int64(q, 0);
        const uint8_t *d = store__log_entries(q, &n);
        if (!d) {
            rc = OP_ECORRUPT;
            break;
        }
        int64_t k = n < want - (int64_t)*got ? n : want - (int64_t)*got;
        for (int64_t i = 0; i < k; i++) {
            struct log_row *r = &st->rows[(*got)++];
            store__log_get(d + i * STORE_LOG_BYTES, &r->sensor, &r->ts, &r->value);
            r->seq = seq_lo + i;
        }
        if (k < n) {
            size_t bytes = (size_t)(n - k) * STORE_LOG_BYTES;
            if ((rc = op_reserve(&st->rest, &st->rest_cap, bytes, 1, bytes)) != OP_OK)
                break;
            memcpy(st->rest, d + k * STORE_LOG_BYTES, bytes);
            *rest_n = (size_t)(n - k);
        }
    }
    sqlite3_reset(q);
    return rc;
}

struct sensor_idx {
    int64_t sensor;
    uint32_t idx;
};

static int sensor_idx_cmp(const void *pa, const void *pb)
{
    const struct sensor_idx *a = pa, *b = pb;
    if (a->sensor != b->sensor)
        return a->sensor < b->sensor ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int row_cmp_ts(const void *pa, const void *pb)
{
    const struct log_row *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/*
 * Orders rows[0..n) (read in seq order) by sensor into st->perm, in seq
 * order within a sensor. Sensor ids are small and dense, so a counting
 * sort does it in two linear passes (a comparison sort of the whole step
 * took a quarter of compaction's time); sparse ids fall back to sorting
 * (sensor, index) pairs. Each sensor's readings mostly arrive in ts
 * order: sensor_compact sorts the few that did not. An index, rather than
 * a sorted copy of the rows, keeps the step's memory at one copy.
 */
static int log_order(struct layout_state *st, size_t n)
{
    const struct log_row *r = st->rows;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        lo = r[i].sensor < lo ? r[i].sensor : lo;
        hi = r[i].sensor > hi ? r[i].sensor : hi;
    }
    size_t range = n ? (size_t)(hi - lo) + 1 : 0;
    size_t *count = range <= 4 * n + 1024 ? op_calloc(range + 1, sizeof(*count)) : NULL;
    if (count) {
        for (size_t i = 0; i < n; i++)
            count[r[i].sensor - lo + 1]++;
        for (size_t k = 1; k <= range; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            st->perm[count[r[i].sensor - lo]++] = (uint32_t)i;
        op_free(count);
        return OP_OK;
    }
    struct sensor_idx *p = op_malloc(n * sizeof(*p));
    if (!p)
        return OP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        p[i] = (struct sensor_idx){ r[i].sensor, (uint32_t)i };
    qsort(p, n, sizeof(*p), sensor_idx_cmp);
    for (size_t i = 0; i < n; i++)
        st->perm[i] = p[i].idx;
    op_free(p);
    return OP_OK;
}

/* One sensor's rows (rows[idx[0..n)]) in (ts, seq) order: in place when
 * they already are (the common case), else a sorted copy in st->seg
 * (*copied). */
static int sensor_rows(struct layout_state *st, const uint32_t *idx, size_t n, bool *copied)
{
    const struct log_row *r = st->rows;
    *copied = false;
    for (size_t k = 1; k < n; k++)
        if (r[idx[k]].ts < r[idx[k - 1]].ts)
            *copied = true;
    if (!*copied)
        return OP_OK;
    if (op_reserve(&st->seg, &st->seg_cap, n, sizeof(*st->seg), n) != OP_OK)
        return OP_ENOMEM;
    for (size_t k = 0; k < n; k++)
        st->seg[k] = r[idx[k]];
    qsort(st->seg, n, sizeof(*st->seg), row_cmp_ts);
    return OP_OK;
}

/* Writes one sensor's compacted rows (rows[idx[0..n)], in seq order) as
 * chunks: appended to its newest chunk while that is small and they all
 * come after it, the rest in new chunks of up to STORE_CHUNK_MAX. */
static int sensor_compact(struct layout_state *st, const uint32_t *idx, size_t n)
{
    sqlite3_stmt *q = st->st[S_TAIL];
    bool copied;
    int rc = sensor_rows(st, idx, n, &copied);
    if (rc != OP_OK)
        return rc;
    const struct log_row *first = copied ? &st->seg[0] : &st->rows[idx[0]];
    int64_t sensor = first->sensor, tail = 0, span = 0;

    st->pts.n = 0;
    sqlite3_bind_int64(q, 1, sensor);
    if (step_row(st, q, &rc) && sqlite3_column_int64(q, 3) < STORE_CHUNK_FILL &&
        first->ts >= sqlite3_column_int64(q, 2)) {
        tail = sqlite3_column_int64(q, 0);
        rc = chunk_load(st, q);
    }
    sqlite3_reset(q);
    if (rc != OP_OK || (rc = store__pts_reserve(&st->pts, st->pts.n + n)) != OP_OK)
        return rc;
    for (size_t k = 0; k < n; k++) {
        const struct log_row *r = copied ? &st->seg[k] : &st->rows[idx[k]];
        store__pts_push(&st->pts, r->ts, r->value, r->seq);
    }
    for (size_t at = 0; at < st->pts.n; at += STORE_CHUNK_MAX) {
        size_t k = st->pts.n - at < STORE_CHUNK_MAX ? st->pts.n - at : STORE_CHUNK_MAX;
        if ((rc = chunk_put(st, sensor, at == 0 ? tail : 0, at, k, &span)) != OP_OK)
            return rc;
    }
    return span_widen(st, sensor, span);
}

/*
 * One compaction step: the first max_rows rows of the log (by seq, none
 * above the hold) become chunks and leave the log, in one transaction. A
 * step of 65,536 readings takes a few milliseconds (sorting and encoding
 * in memory, one row per sensor), which is the longest ingest waits
 * behind it.
 */
static int layout_compact(void *state, int64_t max_rows, int64_t hold, int64_t *moved)
{
    struct layout_state *st = state;
    size_t got = 0, rest_n = 0;
    int rc;

    *moved = 0;
    int64_t movable = log_movable(st, hold);
    if (movable == 0)
        return OP_OK;
    rc = log_read(st, movable < max_rows ? movable : max_rows, &got, &rest_n);
    if (rc != OP_OK || got == 0)
        return rc;
    int64_t last_seq = st->rows[got - 1].seq;
    if ((rc = log_order(st, got)) != OP_OK)
        return rc;
    const uint32_t *perm = st->perm;
    for (size_t i = 0, j; i < got; i = j) {
        int64_t sensor = st->rows[perm[i]].sensor;
        for (j = i + 1; j < got && st->rows[perm[j]].sensor == sensor; j++)
            ;
        if ((rc = sensor_compact(st, perm + i, j - i)) != OP_OK)
            return rc;
    }

    /* The rows leave the log; its maximum seq no longer proves the
     * high-water mark, so the mark is saved with them. */
    sqlite3_stmt *q = st->st[S_LOG_DELETE];
    sqlite3_bind_int64(q, 1, last_seq);
    if ((rc = store__exec(st->db, q)) != OP_OK)
        return rc;
    if (rest_n > 0 && (rc = log_add(st, last_seq + 1, st->rest, rest_n)) != OP_OK)
        return rc;
    st->log_rows -= (int64_t)got;
    if (st->log_rows < 0)
        st->log_rows = 0;
    if ((rc = meta_set(st, "next_seq", st->next_seq)) != OP_OK)
        return rc;
    st->log_since_ns = op_time_mono_ns();
    *moved = (int64_t)got;
    return OP_OK;
}

/* Writes the sensor's readings gathered in st->pts as full chunks (all of
 * them with last), keeping the rest gathered. */
static int legacy_flush(struct layout_state *st, int64_t sensor, bool last, int64_t *span)
{
    size_t at = 0;
    int rc = OP_OK;
    while (rc == OP_OK && st->pts.n - at >= (last ? 1 : STORE_CHUNK_MAX)) {
        size_t k = st->pts.n - at < STORE_CHUNK_MAX ? st->pts.n - at : STORE_CHUNK_MAX;
        rc = chunk_put(st, sensor, 0, at, k, span);
        at += k;
    }
    if (rc == OP_OK && last)
        rc = span_widen(st, sensor, *span);
    st->pts.n = 0;
    return rc;
}

/* Begins the conversion of an older schema's table: OP_ENOTFOUND when the
 * database has no such table (nothing to convert), else a transaction. */
static int legacy_begin(struct layout_state *st, const char *table, const char *path)
{
    sqlite3_stmt *q = NULL;
    int64_t found = 0;
    int src = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                         " AND name = ?1", -1, &q, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
        if ((src = sqlite3_step(q)) == SQLITE_ROW)
            found = sqlite3_column_int64(q, 0), src = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (src != SQLITE_OK)
        return store__err(st->db, src, 0);
    return found ? store__exec_sql(st->db, "BEGIN IMMEDIATE", path) : OP_ENOTFOUND;
}

/*
 * A database from before schema 6 keeps its compacted readings in
 * readings_sorted (one row each, clustered by sensor and time); they
 * become chunks here, in one transaction at open, and the table goes. The
 * writer has not started, so nothing else uses the connection.
 */
static int legacy_convert(struct layout_state *st, const char *path)
{
    int rc = legacy_begin(st, "readings_sorted", path);
    if (rc != OP_OK)
        return rc == OP_ENOTFOUND ? OP_OK : rc;
    OP_INFO(STORE_SUB, "%s: converting the readings to chunks (once)", path);
    sqlite3_stmt *q = NULL;
    if (store__prepare(st->db, "SELECT sensor_id, ts, seq, value FROM readings_sorted"
                               " ORDER BY sensor_id, ts, seq", &q) != SQLITE_OK)
        rc = OP_EIO;
    int64_t sensor = 0, span = 0, rows = 0;
    st->pts.n = 0;
    while (rc == OP_OK && step_row(st, q, &rc)) {
        int64_t id = sqlite3_column_int64(q, 0);
        if (id != sensor && sensor != 0)
            rc = legacy_flush(st, sensor, true, &span);
        if (id != sensor)
            span = 0;
        sensor = id;
        if (rc == OP_OK)
            rc = store__pts_push(&st->pts, sqlite3_column_int64(q, 1),
                                 sqlite3_column_double(q, 3), sqlite3_column_int64(q, 2));
        if (rc == OP_OK && st->pts.n == STORE_CHUNK_MAX)
            rc = legacy_flush(st, sensor, false, &span);
        rows++;
    }
    sqlite3_finalize(q);
    if (rc == OP_OK && sensor != 0)
        rc = legacy_flush(st, sensor, true, &span);
    if (rc == OP_OK)
        rc = store__exec_sql(st->db, "DROP TABLE readings_sorted", path);
    if (rc == OP_OK)
        rc = store__exec_sql(st->db, "COMMIT", path);
    if (rc != OP_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    OP_INFO(STORE_SUB, "%s: %lld readings now in chunks", path, (long long)rows);
    return OP_OK;
}

/*
 * A database from before schema 7 keeps its log as one row per reading in
 * readings_log; the rows become records here, at open, in one transaction
 * (the log is small: compaction keeps it so), and the table goes.
 */
static int legacy_log_convert(struct layout_state *st, const char *path)
{
    int rc = legacy_begin(st, "readings_log", path);
    if (rc != OP_OK)
        return rc == OP_ENOTFOUND ? OP_OK : rc;
    sqlite3_stmt *q = NULL;
    if (store__prepare(st->db, "SELECT seq, sensor_id, ts, value FROM readings_log ORDER BY seq",
                       &q) != SQLITE_OK)
        rc = OP_EIO;
    int64_t seq_lo = 0, prev = 0;
    st->grp_n = 0;
    while (rc == OP_OK && step_row(st, q, &rc)) {
        int64_t seq = sqlite3_column_int64(q, 0);
        /* A record holds consecutive seqs only. */
        if (st->grp_n > 0 && (seq != prev + 1 || st->grp_n == STORE_LOG_RECORD_MAX)) {
            rc = log_add(st, seq_lo, st->grp, st->grp_n);
            st->grp_n = 0;
        }
        if (st->grp_n == 0)
            seq_lo = seq;
        if (rc == OP_OK && (rc = grp_reserve(st, 1)) == OP_OK)
            store__log_put(st->grp + st->grp_n++ * STORE_LOG_BYTES, sqlite3_column_int64(q, 1),
                           sqlite3_column_int64(q, 2), sqlite3_column_double(q, 3));
        prev = seq;
    }
    sqlite3_finalize(q);
    if (rc == OP_OK && st->grp_n > 0)
        rc = log_add(st, seq_lo, st->grp, st->grp_n);
    st->grp_n = 0;
    if (rc == OP_OK)
        rc = store__exec_sql(st->db, "DROP TABLE readings_log", path);
    if (rc == OP_OK)
        rc = store__exec_sql(st->db, "COMMIT", path);
    if (rc != OP_OK)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int64_t layout_compact_wait_ns(void *state, bool idle, int64_t hold)
{
    struct layout_state *st = state;
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

static int64_t layout_next_seq(const void *state)
{
    return ((const struct layout_state *)state)->next_seq;
}

const struct store_layout store__layout_chunks = {
    .name = "chunks",
    .create = layout_create,
    .destroy = layout_destroy,
    .txn_begin = layout_txn_begin,
    .append = layout_append,
    .next_seq = layout_next_seq,
    .group_end = layout_group_end,
    .txn_abort = layout_txn_abort,
    .delete_older = layout_delete_older,
    .delete_oldest = layout_delete_oldest,
    .compact = layout_compact,
    .compact_wait_ns = layout_compact_wait_ns,
};
