/*
 * store_outbox.c: store-and-forward for uplinks. With uplinks configured,
 * each group commit also writes the readings it appended (in seq order) as
 * outbox records, encoded by the sync layer's callback (the store does not
 * know the codec), in the same transaction: a reading is in the outbox
 * exactly when it is committed. Each uplink has a cursor (the last
 * position it delivered), moved only by an UPLINK_ACK write once the
 * receiver acknowledged a batch; records every uplink has passed are
 * deleted in that same transaction. Retention drops records older than
 * what it keeps, counting the readings an uplink had not sent yet
 * (outpost_uplink_dropped_readings_total{uplink,reason}).
 *
 * The receiver role's write (UPLINK_RECEIVE) lives here too: it appends
 * only the readings whose position on the sending node it has not stored
 * for that (node, uplink) (a floor, and ranges above it when the sender
 * has priorities), and records what the batch settles, in one
 * transaction, so a batch resent after a lost answer is deduplicated.
 *
 * Why an outbox and not the readings tables: a backlog of hours must be
 * read back by position at several times the ingest rate, and the sorted
 * table is clustered by (sensor, ts); an index by seq on it cost a quarter
 * of ingest (docs/internals/store.md). A record costs a few bytes per
 * reading and one row per group.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "store_int.h"

const char *const store__outbox_wsql[W_STMT_COUNT] = {
    [W_OUTBOX_ADD] = "INSERT INTO outbox(seq_lo, n, ts_min, ts_max, data) VALUES(?1, ?2, ?3, ?4, ?5)",
    [W_UPLINK_SET] = "UPDATE uplinks SET cursor = max(cursor, ?2), batch_seq = ?3, updated_at = ?4"
                     " WHERE name = ?1",
    /* seq_lo bounds each of these through the primary key; without it
     * SQLite scans the whole outbox (a backlog of hours). */
    [W_OUTBOX_TRIM] = "DELETE FROM outbox WHERE seq_lo <= (SELECT min(cursor) FROM uplinks)"
                      " AND seq_lo + n - 1 <= (SELECT min(cursor) FROM uplinks)",
    [W_DEAD_ADD] = "INSERT INTO dead_letters(uplink, batch_seq, first_pos, last_pos, readings,"
                   " status, answer, ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [W_PEER_GET] = "SELECT last_pos FROM uplink_peers WHERE node = ?1 AND uplink = ?2",
    [W_PEER_SET] = "INSERT INTO uplink_peers(node, uplink, last_pos, last_batch, updated_at)"
                   " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(node, uplink) DO UPDATE SET"
                   " last_pos = max(last_pos, excluded.last_pos),"
                   " last_batch = excluded.last_batch, updated_at = excluded.updated_at",
    /* Readings an uplink had not sent in the records about to be dropped. */
    [W_OUTBOX_UNSENT] = "SELECT coalesce(sum(CASE WHEN seq_lo > ?2 THEN n"
                        " WHEN seq_lo + n - 1 > ?2 THEN seq_lo + n - 1 - ?2 ELSE 0 END), 0)"
                        " FROM outbox WHERE ts_max < ?1",
    [W_OUTBOX_DROP] = "DELETE FROM outbox WHERE ts_max < ?1",
    [W_UPLINK_CURSOR] = "SELECT cursor FROM uplinks WHERE name = ?1",
    /* Positions settled above a cursor (priorities): the sender's
     * acknowledged ranges, and the receiver's stored ranges per peer. */
    [W_RANGES_GET] = "SELECT lo, hi FROM uplink_ranges WHERE name = ?1",
    [W_RANGES_DEL] = "DELETE FROM uplink_ranges WHERE name = ?1",
    [W_RANGES_ADD] = "INSERT INTO uplink_ranges(name, lo, hi) VALUES(?1, ?2, ?3)",
    [W_PEER_RANGES_GET] = "SELECT lo, hi FROM uplink_peer_ranges WHERE node = ?1 AND uplink = ?2",
    [W_PEER_RANGES_DEL] = "DELETE FROM uplink_peer_ranges WHERE node = ?1 AND uplink = ?2",
    [W_PEER_RANGES_ADD] = "INSERT INTO uplink_peer_ranges(node, uplink, lo, hi)"
                          " VALUES(?1, ?2, ?3, ?4)",
    /* Readings of lo..hi (acknowledged ahead of the cursor) in the records
     * about to be dropped; a record holding lo starts at most
     * OP_OUTBOX_RECORD_MAX - 1 before it, which bounds the scan by key. */
    [W_OUTBOX_ACKED_DROPPED] = "SELECT coalesce(sum(min(seq_lo + n - 1, ?3) - max(seq_lo, ?2) + 1),"
                               " 0) FROM outbox WHERE seq_lo BETWEEN ?2 - " STORE_STR(
                                   OP_OUTBOX_RECORD_MAX) " AND ?3 AND seq_lo + n - 1 >= ?2"
                               " AND ts_max < ?1",
};

const char *const store__outbox_rsql[R_STMT_COUNT] = {
    [R_UPLINK_GET] = "SELECT cursor, batch_seq FROM uplinks WHERE name = ?1",
    [R_UPLINKS] = "SELECT name, cursor, batch_seq, updated_at FROM uplinks ORDER BY name",
    /* The record holding after + 1 (the one starting at or before it),
     * then the ones after. */
    [R_OUTBOX_READ] = "SELECT seq_lo, n, ts_min, ts_max, data FROM outbox WHERE seq_lo >="
                      " coalesce((SELECT max(seq_lo) FROM outbox WHERE seq_lo <= ?1 + 1), 0)"
                      " AND seq_lo + n - 1 > ?1 ORDER BY seq_lo LIMIT ?2",
    [R_OUTBOX_BACKLOG] = "SELECT coalesce(sum(CASE WHEN seq_lo > ?1 THEN n"
                         " ELSE seq_lo + n - 1 - ?1 END), 0),"
                         " coalesce(sum(length(data)), 0), coalesce(min(ts_min), ?2)"
                         " FROM outbox WHERE seq_lo >= coalesce((SELECT max(seq_lo) FROM outbox"
                         " WHERE seq_lo <= ?1), 0) AND seq_lo + n - 1 > ?1",
    [R_MARKS_READ] = "SELECT seq FROM marks WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
    [R_DEAD_LETTERS] = "SELECT id, uplink, batch_seq, first_pos, last_pos, readings, status,"
                       " answer, ts FROM dead_letters ORDER BY id DESC LIMIT ?1",
    [R_UPLINK_RANGES] = "SELECT lo, hi FROM uplink_ranges WHERE name = ?1 ORDER BY lo",
    [R_OUTBOX_HEAD] = "SELECT seq_lo + n - 1 FROM outbox ORDER BY seq_lo DESC LIMIT 1",
};

/* ---- open: node id and the uplinks' rows -------------------------------- */

/* Runs one statement run once at open, with an optional text ?1 and
 * integers ?2 and ?3 (unused parameters are left unbound). */
static int exec_bound(sqlite3 *db, const char *sql, const char *text, int64_t a, int64_t b)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src == SQLITE_OK) {
        int np = sqlite3_bind_parameter_count(st);
        if (text)
            sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        if (np >= 2)
            sqlite3_bind_int64(st, 2, a);
        if (np >= 3)
            sqlite3_bind_int64(st, 3, b);
        while ((src = sqlite3_step(st)) == SQLITE_ROW)
            ;
    }
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? OP_OK : store__err(db, src, 0);
}

static int node_id_load(struct op_store *s)
{
    uint64_t r = 0;
    while (r == 0) {
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
            OP_ERROR(STORE_SUB, "cannot draw a node id: %s", strerror(errno));
            return OP_EIO;
        }
        r >>= 1; /* a positive SQLite integer */
    }
    int rc = exec_bound(s->wdb, "INSERT OR IGNORE INTO meta(key, value) VALUES('node_id', ?2)",
                        NULL, (int64_t)r, 0);
    if (rc != OP_OK)
        return rc;
    int64_t id;
    int src = store__query_int(s->wdb, "SELECT value FROM meta WHERE key = 'node_id'", &id);
    if (src != SQLITE_OK)
        return store__err(s->wdb, src, 0);
    snprintf(s->node_id, sizeof s->node_id, "%016llx", (unsigned long long)id);
    return OP_OK;
}

/* Forgets uplinks no longer configured, adds new ones at the newest
 * reading (the layout's: it has read the high-water mark), and drops
 * outbox records no uplink needs. */
static int uplinks_sync(struct op_store *s)
{
    int rc = store__exec_sql(s->wdb,
                             "CREATE TEMP TABLE IF NOT EXISTS wanted(name TEXT PRIMARY KEY);"
                             "DELETE FROM temp.wanted", s->path);
    for (size_t i = 0; rc == OP_OK && i < s->opts.nuplinks; i++)
        rc = exec_bound(s->wdb, "INSERT OR IGNORE INTO temp.wanted(name) VALUES(?1)",
                        s->opts.uplinks[i], 0, 0);
    if (rc == OP_OK)
        rc = store__exec_sql(s->wdb, "DELETE FROM uplinks WHERE name NOT IN (SELECT name FROM"
                                     " temp.wanted)", s->path);
    if (rc == OP_OK)
        rc = store__exec_sql(s->wdb, "DELETE FROM uplink_ranges WHERE name NOT IN (SELECT name"
                                     " FROM temp.wanted)", s->path);
    if (rc == OP_OK)
        rc = exec_bound(s->wdb,
                        "INSERT OR IGNORE INTO uplinks(name, cursor, batch_seq, updated_at)"
                        " SELECT name, ?2, 0, ?3 FROM temp.wanted",
                        NULL, s->layout->next_seq(s->layout_state) - 1, op_time_now_ms());
    if (rc == OP_OK)
        rc = store__exec_sql(s->wdb, "DROP TABLE temp.wanted", s->path);
    if (rc == OP_OK)
        rc = s->opts.nuplinks ? store__exec(s->wdb, s->wstmt[W_OUTBOX_TRIM])
                              : store__exec_sql(s->wdb, "DELETE FROM outbox", s->path);
    return rc;
}

int store__outbox_open(struct op_store *s)
{
    int rc = node_id_load(s);
    if (rc == OP_OK)
        rc = store__exec(s->wdb, s->wstmt[W_BEGIN]);
    if (rc != OP_OK)
        return rc;
    rc = uplinks_sync(s);
    int end = store__exec(s->wdb, s->wstmt[rc == OP_OK ? W_COMMIT : W_ROLLBACK]);
    if (rc != OP_OK || end != OP_OK)
        return rc != OP_OK ? rc : end;
    s->outbox_on = s->opts.nuplinks > 0 && s->opts.outbox_encode;
    s->ob_dropped = op_calloc(s->opts.nuplinks ? s->opts.nuplinks * 2 : 1,
                              sizeof(*s->ob_dropped));
    s->ob_lost = op_calloc(s->opts.nuplinks ? s->opts.nuplinks * 2 : 1, sizeof(*s->ob_lost));
    if (!s->ob_dropped || !s->ob_lost)
        return OP_ENOMEM;
    for (size_t i = 0; i < s->opts.nuplinks; i++) {
        char labels[160];
        static const char *const reasons[2] = { "age", "quota" };
        for (int k = 0; k < 2; k++) {
            snprintf(labels, sizeof labels, "uplink=\"%.64s\",reason=\"%s\"", s->opts.uplinks[i],
                     reasons[k]);
            s->ob_dropped[i * 2 + (size_t)k] = op_metrics_counter(
                "outpost_uplink_dropped_readings_total", labels,
                "unsent readings dropped by retention, by uplink and reason");
        }
    }
    op_buf_init(&s->ob_buf, (size_t)256 << 20);
    return OP_OK;
}

void store__outbox_free(struct op_store *s)
{
    op_free(s->ob_rows);
    op_free(s->ob_dropped);
    op_free(s->ob_lost);
    op_buf_fini(&s->ob_buf);
}

const char *op_store_node_id(struct op_store *s)
{
    return s->node_id;
}

/* ---- the group's records (writer thread) --------------------------------- */

int store__append(struct op_store *s, const struct op_reading *r, size_t n)
{
    if (s->outbox_on && s->ob_n == 0)
        s->ob_seq_lo = s->layout->next_seq(s->layout_state);
    int rc = s->layout->append(s->layout_state, r, n);
    if (rc != OP_OK || !s->outbox_on || n == 0)
        return rc;
    if (s->ob_n + n > s->ob_cap) {
        size_t cap = s->ob_cap ? s->ob_cap : 1024;
        while (cap < s->ob_n + n)
            cap *= 2;
        struct op_reading *p = op_realloc(s->ob_rows, cap * sizeof(*p));
        if (!p)
            return OP_ENOMEM;
        s->ob_rows = p;
        s->ob_cap = cap;
    }
    memcpy(s->ob_rows + s->ob_n, r, n * sizeof(*r)); /* names stay the submitters' until done */
    s->ob_n += n;
    return OP_OK;
}

void store__outbox_reset(struct op_store *s)
{
    s->ob_n = 0;
    /* A burst's worth of scratch is not kept for ever. */
    if (s->ob_cap > (size_t)4 * OP_OUTBOX_RECORD_MAX) {
        op_free(s->ob_rows);
        s->ob_rows = NULL;
        s->ob_cap = 0;
    }
}

static int record_add(struct op_store *s, int64_t seq_lo, const struct op_reading *r, size_t n)
{
    int64_t tmin = r[0].ts, tmax = r[0].ts;
    for (size_t i = 1; i < n; i++) {
        tmin = r[i].ts < tmin ? r[i].ts : tmin;
        tmax = r[i].ts > tmax ? r[i].ts : tmax;
    }
    op_buf_reset(&s->ob_buf);
    int rc = s->opts.outbox_encode(s->opts.outbox_ctx, r, n, &s->ob_buf);
    if (rc != OP_OK)
        return rc;
    sqlite3_stmt *st = s->wstmt[W_OUTBOX_ADD];
    sqlite3_bind_int64(st, 1, seq_lo);
    sqlite3_bind_int64(st, 2, (int64_t)n);
    sqlite3_bind_int64(st, 3, tmin);
    sqlite3_bind_int64(st, 4, tmax);
    sqlite3_bind_blob(st, 5, s->ob_buf.data, (int)s->ob_buf.len, SQLITE_STATIC);
    rc = store__exec(s->wdb, st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* The group's appends took contiguous seqs from ob_seq_lo. */
int store__outbox_group_end(struct op_store *s)
{
    if (!s->outbox_on || s->ob_n == 0)
        return OP_OK;
    int64_t seq = s->ob_seq_lo;
    int rc = OP_OK;
    for (size_t off = 0; off < s->ob_n && rc == OP_OK; off += OP_OUTBOX_RECORD_MAX) {
        size_t n = s->ob_n - off < OP_OUTBOX_RECORD_MAX ? s->ob_n - off : OP_OUTBOX_RECORD_MAX;
        rc = record_add(s, seq + (int64_t)off, s->ob_rows + off, n);
    }
    store__outbox_reset(s);
    return rc;
}

/* ---- acknowledgements and the receiver (writer thread) -------------------- */

static int uplink_cursor(struct op_store *s, const char *name, int64_t *cursor, bool *found);

/* Reads the ranges a GET statement (keyed by k1, and k2 when not NULL)
 * returns into rs. */
/* Adds the (lo, hi) rows of a bound statement to rs; *src gets the last
 * step's result (SQLITE_DONE when all were read). */
static int ranges_rows(sqlite3_stmt *st, struct op_ranges *rs, int *src)
{
    int rc = OP_OK;
    while (rc == OP_OK && (*src = sqlite3_step(st)) == SQLITE_ROW)
        rc = op_ranges_add(rs, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    return rc;
}

static int ranges_read(struct op_store *s, int get, const char *k1, const char *k2,
                       struct op_ranges *rs)
{
    sqlite3_stmt *st = s->wstmt[get];
    sqlite3_bind_text(st, 1, k1, -1, SQLITE_STATIC);
    if (k2)
        sqlite3_bind_text(st, 2, k2, -1, SQLITE_STATIC);
    int src, rc = ranges_rows(st, rs, &src);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != OP_OK)
        return rc;
    return src == SQLITE_DONE ? OP_OK : store__err(s->wdb, src, 0);
}

/* Replaces the stored ranges of (k1[, k2]) with rs's (merged). */
static int ranges_write(struct op_store *s, int del, int add, const char *k1, const char *k2,
                        const struct op_ranges *rs)
{
    sqlite3_stmt *st = s->wstmt[del];
    int keys = k2 ? 2 : 1;
    sqlite3_bind_text(st, 1, k1, -1, SQLITE_STATIC);
    if (k2)
        sqlite3_bind_text(st, 2, k2, -1, SQLITE_STATIC);
    int rc = store__exec(s->wdb, st);
    sqlite3_clear_bindings(st);
    st = s->wstmt[add];
    for (size_t i = 0; rc == OP_OK && i < rs->n; i++) {
        sqlite3_bind_text(st, 1, k1, -1, SQLITE_STATIC);
        if (k2)
            sqlite3_bind_text(st, 2, k2, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, keys + 1, rs->r[i].lo);
        sqlite3_bind_int64(st, keys + 2, rs->r[i].hi);
        rc = store__exec(s->wdb, st);
        sqlite3_clear_bindings(st);
    }
    return rc;
}

/* The cursor becomes the highest position below which everything is
 * acknowledged; what is acknowledged above it stays as ranges. */
static int ack_positions(struct op_store *s, struct op_store_write *w, bool *found)
{
    int64_t cursor;
    int rc = uplink_cursor(s, w->uplink_name, &cursor, found);
    if (rc != OP_OK || !*found)
        return rc;
    struct op_ranges rs;
    op_ranges_init(&rs, cursor);
    rc = ranges_read(s, W_RANGES_GET, w->uplink_name, NULL, &rs);
    size_t stored = rs.n;
    if (rc == OP_OK)
        rc = op_ranges_cover(&rs, w->ack_points, w->ack_npoints, w->first_pos, w->last_pos);
    op_ranges_merge(&rs);
    if (rc == OP_OK && (stored || rs.n))
        rc = ranges_write(s, W_RANGES_DEL, W_RANGES_ADD, w->uplink_name, NULL, &rs);
    w->cursor = rs.floor;
    op_ranges_fini(&rs);
    if (rc != OP_OK)
        return rc;
    sqlite3_stmt *st = s->wstmt[W_UPLINK_SET];
    sqlite3_bind_text(st, 1, w->uplink_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, w->cursor);
    sqlite3_bind_int64(st, 3, w->batch_seq);
    sqlite3_bind_int64(st, 4, op_time_now_ms());
    rc = store__exec(s->wdb, st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int ack(struct op_store *s, struct op_store_write *w)
{
    int64_t now = op_time_now_ms();
    bool found;
    int rc = ack_positions(s, w, &found);
    if (rc != OP_OK)
        return rc;
    if (!found) {
        w->rc = OP_ENOTFOUND; /* not a configured uplink; the group goes on */
        return OP_OK;
    }
    sqlite3_stmt *st;
    if (w->dead_status != 0) {
        st = s->wstmt[W_DEAD_ADD];
        sqlite3_bind_text(st, 1, w->uplink_name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, w->batch_seq);
        sqlite3_bind_int64(st, 3, w->first_pos);
        sqlite3_bind_int64(st, 4, w->last_pos);
        sqlite3_bind_int64(st, 5, w->dead_readings);
        sqlite3_bind_int(st, 6, w->dead_status);
        sqlite3_bind_text(st, 7, w->dead_answer ? w->dead_answer : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, now);
        rc = store__exec(s->wdb, st);
        sqlite3_clear_bindings(st);
        if (rc != OP_OK)
            return rc;
    }
    return store__exec(s->wdb, s->wstmt[W_OUTBOX_TRIM]);
}

static int peer_last(struct op_store *s, const struct op_store_write *w, int64_t *last)
{
    sqlite3_stmt *st = s->wstmt[W_PEER_GET];
    sqlite3_bind_text(st, 1, w->peer_node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->uplink_name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    *last = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : INT64_MIN;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? OP_OK : store__err(s->wdb, src, 0);
}

/* The positions stored for (peer_node, uplink_name): its last_pos and the
 * ranges above it. */
static int peer_load(struct op_store *s, const struct op_store_write *w, struct op_ranges *rs)
{
    int64_t last;
    int rc = peer_last(s, w, &last);
    op_ranges_init(rs, last);
    if (rc == OP_OK)
        rc = ranges_read(s, W_PEER_RANGES_GET, w->peer_node, w->uplink_name, rs);
    op_ranges_merge(rs); /* lookups need them sorted, whatever order the rows came in */
    return rc;
}

/* What the batch settles for its sender: a plain batch (no floor) all up
 * to its highest position; else its floor and its range, or only its own
 * positions. */
static int peer_settle(const struct op_store_write *w, struct op_ranges *rs)
{
    int64_t top = w->last_pos;
    for (size_t i = 0; i < w->n; i++)
        top = w->positions[i] > top ? w->positions[i] : top;
    if (!w->peer_ranged) {
        /* The mark covers what was stored even if the batch's last_pos
         * says less (a sender of another make). */
        op_ranges_raise(rs, top);
        return OP_OK;
    }
    /* Whatever was stored is settled, also readings a malformed batch
     * places before its first_pos. */
    int64_t low = w->first_pos;
    for (size_t i = 0; i < w->n; i++)
        low = w->positions[i] < low ? w->positions[i] : low;
    op_ranges_raise(rs, w->peer_floor);
    return op_ranges_cover(rs, w->peer_sparse ? w->positions : NULL, w->n, low, top);
}

static int append_fresh(struct op_store *s, struct op_store_write *w, const struct op_ranges *rs,
                        size_t *fresh_out)
{
    size_t fresh = 0;
    for (size_t i = 0; i < w->n; i++)
        fresh += !op_ranges_has(rs, w->positions[i]);
    *fresh_out = fresh;
    if (fresh == w->n)
        return store__append(s, w->readings, w->n);
    if (fresh == 0)
        return OP_OK;
    struct op_reading *sub = op_malloc(fresh * sizeof(*sub));
    if (!sub)
        return OP_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (!op_ranges_has(rs, w->positions[i]))
            sub[k++] = w->readings[i];
    /* The outbox copies the structs; their names stay the submitter's. */
    int rc = store__append(s, sub, fresh);
    op_free(sub);
    return rc;
}

/* Appends the readings of a received batch that are new; a batch resent
 * after a lost answer (or overlapping one) adds only what was missing. */
static int receive(struct op_store *s, struct op_store_write *w, int64_t *readings)
{
    struct op_ranges rs;
    int rc = peer_load(s, w, &rs);
    size_t stored = rs.n, fresh = 0;
    if (rc == OP_OK)
        rc = append_fresh(s, w, &rs, &fresh);
    if (rc == OP_OK)
        rc = peer_settle(w, &rs);
    op_ranges_merge(&rs);
    if (rc == OP_OK && (stored || rs.n))
        rc = ranges_write(s, W_PEER_RANGES_DEL, W_PEER_RANGES_ADD, w->peer_node, w->uplink_name,
                          &rs);
    int64_t floor = rs.floor;
    op_ranges_fini(&rs);
    if (rc != OP_OK)
        return rc;
    w->accepted = (int64_t)fresh;
    w->duplicates = (int64_t)(w->n - fresh);
    *readings += (int64_t)fresh;
    sqlite3_stmt *st = s->wstmt[W_PEER_SET];
    sqlite3_bind_text(st, 1, w->peer_node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->uplink_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, floor);
    sqlite3_bind_int64(st, 4, w->batch_seq);
    sqlite3_bind_int64(st, 5, op_time_now_ms());
    rc = store__exec(s->wdb, st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store__outbox_apply(struct op_store *s, struct op_store_write *w, int64_t *readings)
{
    return w->op == OP_STORE_UPLINK_ACK ? ack(s, w) : receive(s, w, readings);
}

size_t store__outbox_write_bytes(const struct op_store_write *w)
{
    size_t bytes = sizeof(*w);
    if (!w->uplink_name || !w->uplink_name[0])
        return 0;
    bytes += strlen(w->uplink_name);
    if (w->op == OP_STORE_UPLINK_ACK)
        return bytes + (w->dead_answer ? strlen(w->dead_answer) : 0);
    if (!w->peer_node || !w->peer_node[0] || !w->positions || w->n == 0)
        return 0;
    size_t rb = store__readings_bytes(w->readings, w->n);
    return rb == 0 ? 0 : bytes + rb + w->n * sizeof(*w->positions) + strlen(w->peer_node);
}

/* ---- retention (writer thread, inside the step's transaction) ------------- */

static int uplink_cursor(struct op_store *s, const char *name, int64_t *cursor, bool *found)
{
    sqlite3_stmt *st = s->wstmt[W_UPLINK_CURSOR];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    *found = src == SQLITE_ROW;
    *cursor = *found ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? OP_OK : store__err(s->wdb, src, 0);
}

/* Drops the records whose readings are all older than bound, noting per
 * uplink the readings it had not sent; they are counted (and logged) only
 * once the step commits (store__outbox_retention_committed). */
/* Readings in the records older than bound that the uplink's receiver
 * acknowledged ahead of its cursor (priorities): sent, so not dropped. */
static int acked_dropped(struct op_store *s, const char *name, int64_t bound, int64_t *acked)
{
    struct op_ranges rs;
    op_ranges_init(&rs, INT64_MIN);
    int rc = ranges_read(s, W_RANGES_GET, name, NULL, &rs);
    sqlite3_stmt *st = s->wstmt[W_OUTBOX_ACKED_DROPPED];
    for (size_t k = 0; rc == OP_OK && k < rs.n; k++) {
        sqlite3_bind_int64(st, 1, bound);
        sqlite3_bind_int64(st, 2, rs.r[k].lo);
        sqlite3_bind_int64(st, 3, rs.r[k].hi);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *acked += sqlite3_column_int64(st, 0);
        else
            rc = store__err(s->wdb, src, 0);
        sqlite3_reset(st);
    }
    op_ranges_fini(&rs);
    return rc;
}

static int drop_older(struct op_store *s, int64_t bound, int reason)
{
    for (size_t i = 0; i < s->opts.nuplinks; i++) {
        int64_t cursor;
        bool found;
        int rc = uplink_cursor(s, s->opts.uplinks[i], &cursor, &found);
        if (rc != OP_OK)
            return rc;
        if (!found)
            continue;
        sqlite3_stmt *st = s->wstmt[W_OUTBOX_UNSENT];
        sqlite3_bind_int64(st, 1, bound);
        sqlite3_bind_int64(st, 2, cursor);
        int src = sqlite3_step(st);
        int64_t lost = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (src != SQLITE_ROW)
            return store__err(s->wdb, src, 0);
        int64_t acked = 0;
        if (lost > 0 && (rc = acked_dropped(s, s->opts.uplinks[i], bound, &acked)) != OP_OK)
            return rc;
        s->ob_lost[i * 2 + (size_t)reason] += lost - acked;
    }
    sqlite3_stmt *st = s->wstmt[W_OUTBOX_DROP];
    sqlite3_bind_int64(st, 1, bound);
    return store__exec(s->wdb, st);
}

void store__outbox_retention_committed(struct op_store *s)
{
    if (!s->outbox_on)
        return;
    bool any = false;
    for (size_t i = 0; i < s->opts.nuplinks * 2; i++) {
        int64_t lost = s->ob_lost[i];
        if (lost <= 0)
            continue;
        op_counter_add(s->ob_dropped[i], (uint64_t)lost);
        if (!s->ob_drop_episode)
            OP_WARN(STORE_SUB,
                    "retention (%s) dropped %lld reading(s) uplink %s had not sent;"
                    " further drops of this episode are only counted",
                    i % 2 ? "quota" : "age", (long long)lost, s->opts.uplinks[i / 2]);
        any = true;
    }
    /* An episode: consecutive steps that drop unsent readings. */
    s->ob_drop_episode = any;
}

int store__outbox_retention(struct op_store *s, int64_t age_cutoff, bool quota_deleted)
{
    if (!s->outbox_on)
        return OP_OK;
    memset(s->ob_lost, 0, s->opts.nuplinks * 2 * sizeof(*s->ob_lost));
    int rc = OP_OK;
    if (age_cutoff != INT64_MIN)
        rc = drop_older(s, age_cutoff, 0);
    if (rc == OP_OK && quota_deleted) {
        /* The quota deleted the oldest readings: unsent records older than
         * every reading kept go with them. */
        sqlite3_stmt *q = NULL;
        int src = sqlite3_prepare_v2(
            s->wdb, "SELECT min(first_ts) FROM sensors WHERE count > 0", -1, &q, NULL);
        int64_t bound = INT64_MIN;
        if (src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW &&
            sqlite3_column_type(q, 0) != SQLITE_NULL)
            bound = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        if (src != SQLITE_ROW && src != SQLITE_DONE)
            return store__err(s->wdb, src, 0);
        if (bound != INT64_MIN)
            rc = drop_older(s, bound, 1);
    }
    return rc;
}

/* ---- reads (any reader) ------------------------------------------------- */

int op_store_uplink_get(struct op_store_reader *r, const char *name, int64_t *cursor,
                        int64_t *batch_seq)
{
    sqlite3_stmt *st = r && name ? store__rstmt(r, R_UPLINK_GET) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *cursor = sqlite3_column_int64(st, 0);
        *batch_seq = sqlite3_column_int64(st, 1);
    }
    int rc = store__rstmt_end(r, st, src, src == SQLITE_ROW);
    return rc < 0 ? rc : rc == 0 ? OP_ENOTFOUND : OP_OK;
}

int op_store_uplink_ranges(struct op_store_reader *r, const char *name, struct op_ranges *rs)
{
    sqlite3_stmt *st = r && name ? store__rstmt(r, R_UPLINK_RANGES) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src, rc = ranges_rows(st, rs, &src);
    if (rc != OP_OK) {
        store__rstmt_end(r, st, SQLITE_DONE, 0);
        return rc;
    }
    op_ranges_merge(rs);
    int end = store__rstmt_end(r, st, src, 0);
    return end < 0 ? end : OP_OK;
}

int op_store_outbox_head(struct op_store_reader *r, int64_t *head)
{
    sqlite3_stmt *st = r ? store__rstmt(r, R_OUTBOX_HEAD) : NULL;
    if (!st)
        return OP_EINVAL;
    int src = sqlite3_step(st);
    *head = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : INT64_MIN;
    int rc = store__rstmt_end(r, st, src, 0);
    return rc < 0 ? rc : OP_OK;
}

int op_store_outbox_read(struct op_store_reader *r, int64_t after, int64_t limit,
                         op_outbox_fn *fn, void *ctx)
{
    sqlite3_stmt *st = r && fn && limit > 0 ? store__rstmt(r, R_OUTBOX_READ) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, limit);
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_outbox_record rec = {
            .seq_lo = sqlite3_column_int64(st, 0),
            .n = sqlite3_column_int64(st, 1),
            .ts_min = sqlite3_column_int64(st, 2),
            .ts_max = sqlite3_column_int64(st, 3),
            .data = sqlite3_column_blob(st, 4),
            .len = (size_t)sqlite3_column_bytes(st, 4),
        };
        n++;
        if (fn(ctx, &rec))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}

int op_store_outbox_backlog(struct op_store_reader *r, int64_t after, int64_t *readings,
                            int64_t *bytes, int64_t *oldest_ts)
{
    sqlite3_stmt *st = r ? store__rstmt(r, R_OUTBOX_BACKLOG) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, INT64_MAX);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *readings = sqlite3_column_int64(st, 0);
        *bytes = sqlite3_column_int64(st, 1);
        *oldest_ts = sqlite3_column_int64(st, 2);
    }
    int rc = store__rstmt_end(r, st, src, 0);
    return rc < 0 ? rc : OP_OK;
}

int op_store_marks_read(struct op_store_reader *r, int64_t lo, int64_t hi, op_mark_fn *fn,
                        void *ctx)
{
    sqlite3_stmt *st = r && fn ? store__rstmt(r, R_MARKS_READ) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (fn(ctx, sqlite3_column_int64(st, 0)))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}

int op_store_dead_letters(struct op_store_reader *r, int64_t limit, op_dead_letter_fn *fn,
                          void *ctx)
{
    sqlite3_stmt *st = r && fn && limit > 0 ? store__rstmt(r, R_DEAD_LETTERS) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_int64(st, 1, limit);
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_dead_letter dl = {
            .id = sqlite3_column_int64(st, 0),
            .uplink = (const char *)sqlite3_column_text(st, 1),
            .batch_seq = sqlite3_column_int64(st, 2),
            .first_pos = sqlite3_column_int64(st, 3),
            .last_pos = sqlite3_column_int64(st, 4),
            .readings = sqlite3_column_int64(st, 5),
            .status = sqlite3_column_int(st, 6),
            .answer = (const char *)sqlite3_column_text(st, 7),
            .ts = sqlite3_column_int64(st, 8),
        };
        n++;
        if (fn(ctx, &dl))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}

int op_store_list_uplinks(struct op_store_reader *r, op_uplink_fn *fn, void *ctx)
{
    sqlite3_stmt *st = r && fn ? store__rstmt(r, R_UPLINKS) : NULL;
    if (!st)
        return OP_EINVAL;
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_uplink_info ui = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .cursor = sqlite3_column_int64(st, 1),
            .batch_seq = sqlite3_column_int64(st, 2),
            .updated_at = sqlite3_column_int64(st, 3),
            .oldest_ts = INT64_MAX,
        };
        /* The backlog on this reader's snapshot (another statement). */
        op_store_outbox_backlog(r, ui.cursor, &ui.backlog, &ui.backlog_bytes, &ui.oldest_ts);
        n++;
        if (fn(ctx, &ui))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}
