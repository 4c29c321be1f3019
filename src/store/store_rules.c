/*
 * store_rules.c: what the rule engine's integration keeps in the store.
 * Rules by name with their canonical definition text, alert events as the
 * engine emitted them, and the rules runner's cursor (meta 'rules_cursor':
 * the seq of the last reading the rules have seen). Alerts and the cursor
 * are written by one RULES_PROGRESS write, in one transaction, so after a
 * crash the runner resumes exactly after the readings whose events are
 * stored. Also here: the runner's own reader connection, the commit hook
 * that wakes it, and the read of committed readings in seq order.
 */
#include <string.h>

#include "store_int.h"

/* Compaction leaves the readings after the persisted cursor in the log
 * (rules_hold), so the runner reads them by the log's primary key: from
 * the record holding seq ?1 + 1 (the last one starting at or before it),
 * or from the first. */
#define ALERT_COLS                                                                  \
    "id, rule, sensor, kind, state, severity, cause, value, threshold, since, fired_at, ts"

const char *const store__rules_rsql[R_STMT_COUNT] = {
    [R_SINCE] = "SELECT seq_lo, n, data FROM log WHERE seq_lo >= coalesce((SELECT seq_lo"
                " FROM log WHERE seq_lo <= ?1 + 1 ORDER BY seq_lo DESC LIMIT 1), 0)"
                " ORDER BY seq_lo",
    [R_SENSOR_NAME] = "SELECT name, derived FROM sensors WHERE id = ?1",
    /* meta.next_seq is written when rows leave the log, so the newest seq
     * is the larger of it (minus one) and the log's newest. */
    [R_MARKS] = "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1) - 1,"
                " coalesce((SELECT seq_lo + n - 1 FROM log ORDER BY seq_lo DESC LIMIT 1), 0)),"
                " coalesce((SELECT value FROM meta WHERE key = 'rules_cursor'), -1)",
    [R_RULES] = "SELECT name, definition, updated_at, origin FROM rules ORDER BY name",
    [R_RULE_GET] = "SELECT name, definition, updated_at, origin FROM rules WHERE name = ?1",
    [R_ALERTS] = "SELECT " ALERT_COLS " FROM alerts WHERE id > ?4 AND ts >= ?1"
                 " ORDER BY id LIMIT ?2",
    [R_ALERTS_STATE] = "SELECT " ALERT_COLS " FROM alerts WHERE id > ?4 AND ts >= ?1"
                       " AND state = ?3 ORDER BY id LIMIT ?2",
    [R_ALERTS_FIRING] = "SELECT " ALERT_COLS " FROM alerts a WHERE state = 'firing'"
                        " AND NOT EXISTS (SELECT 1 FROM alerts b WHERE b.rule = a.rule"
                        " AND b.sensor = a.sensor AND b.id > a.id AND b.state = 'resolved')"
                        " ORDER BY id",
};

const char *const store__rules_wsql[W_STMT_COUNT] = {
    [W_RULE_EXISTS] = "SELECT origin = 'config' FROM rules WHERE name = ?1",
    [W_RULE_PUT] = "INSERT INTO rules(name, definition, updated_at, origin) VALUES(?1, ?2, ?3, ?4)"
                   " ON CONFLICT(name) DO UPDATE SET definition = excluded.definition,"
                   " updated_at = excluded.updated_at, origin = excluded.origin",
    [W_RULE_DELETE] = "DELETE FROM rules WHERE name = ?1",
    [W_ALERT_ADD] = "INSERT INTO alerts(rule, sensor, kind, state, severity, cause, value,"
                    " threshold, since, fired_at, ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                    " ?9, ?10, ?11)",
    [W_CURSOR_SET] = "INSERT INTO meta(key, value) VALUES('rules_cursor', ?1)"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [W_DERIVED_FLAG] = "UPDATE sensors SET derived = 1 WHERE name = ?1 AND derived = 0",
    [W_MARK_ADD] = "INSERT OR IGNORE INTO marks(seq, ts) VALUES(?1, ?2)",
    /* Marks older than every remaining reading mark nothing any more. */
    [W_MARKS_TRIM] = "DELETE FROM marks WHERE ts <"
                     " (SELECT min(first_ts) FROM sensors WHERE count > 0)",
};

/* ---- writes (writer thread) ------------------------------------------- */

static size_t alert_bytes(const struct op_store_alert *a)
{
    if (!a->rule || !a->sensor || !a->kind || !a->state || !a->severity || !a->cause)
        return 0;
    return sizeof(*a) + strlen(a->rule) + a->sensor_len + 1;
}

size_t store__rules_write_bytes(const struct op_store_write *w)
{
    size_t bytes = sizeof(*w);
    switch (w->op) {
    case OP_STORE_RULE_PUT:
        if (!w->rule_text)
            return 0;
        bytes += strlen(w->rule_text);
        /* fall through */
    case OP_STORE_RULE_DELETE:
        if (!w->rule_name || !w->rule_name[0])
            return 0;
        return bytes + strlen(w->rule_name);
    case OP_STORE_RULES_PROGRESS:
        if ((w->nalerts && !w->alerts) || (w->nmarks && !w->marks))
            return 0;
        if (w->nderived) {
            size_t rb = store__readings_bytes(w->derived, w->nderived);
            if (rb == 0)
                return 0;
            bytes += rb + w->nderived;
        }
        bytes += w->nmarks * sizeof(*w->marks);
        for (size_t i = 0; i < w->nalerts; i++) {
            size_t b = alert_bytes(&w->alerts[i]);
            if (b == 0)
                return 0;
            bytes += b;
        }
        return bytes;
    default:
        return 0;
    }
}

/* Whether the rule exists and whether it came from the config file. */
static int rule_origin(struct op_store *s, const char *name, bool *exists, bool *config)
{
    sqlite3_stmt *st = s->wstmt[W_RULE_EXISTS];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    *exists = src == SQLITE_ROW;
    *config = *exists && sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? OP_OK : store__err(s->wdb, src, 0);
}

/* Runs RULE_PUT or RULE_DELETE unless an API write meets a config rule. */
static int rule_write(struct op_store *s, struct op_store_write *w)
{
    bool exists, config;
    int rc = rule_origin(s, w->rule_name, &exists, &config);
    if (rc != OP_OK)
        return rc;
    if (config && !w->rule_config) {
        w->rule_locked = true;
        w->rc = OP_EINVAL; /* a per-write outcome; the group goes on */
        return OP_OK;
    }
    sqlite3_stmt *st;
    if (w->op == OP_STORE_RULE_DELETE) {
        st = s->wstmt[W_RULE_DELETE];
        sqlite3_bind_text(st, 1, w->rule_name, -1, SQLITE_STATIC);
        if (!exists)
            w->rc = OP_ENOTFOUND;
    } else {
        w->created = !exists;
        st = s->wstmt[W_RULE_PUT];
        sqlite3_bind_text(st, 1, w->rule_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->rule_text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, w->updated_at);
        sqlite3_bind_text(st, 4, w->rule_config ? "config" : "api", -1, SQLITE_STATIC);
    }
    rc = exists || w->op == OP_STORE_RULE_PUT ? store__exec(s->wdb, st) : OP_OK;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int mark_add(struct op_store *s, int64_t seq, int64_t ts)
{
    sqlite3_stmt *st = s->wstmt[W_MARK_ADD];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, ts);
    return store__exec(s->wdb, st);
}

/* Appends the derived readings through the layout (as readings of their
 * own sensors, flagged derived) and marks the important ones. Seqs of one
 * append are contiguous from the layout's next one. */
static int derived_append(struct op_store *s, const struct op_store_write *w)
{
    int64_t first = s->layout->next_seq(s->layout_state);
    int rc = store__append(s, w->derived, w->nderived);
    if (rc != OP_OK)
        return rc;
    sqlite3_stmt *st = s->wstmt[W_DERIVED_FLAG];
    for (size_t i = 0; i < w->nderived; i++) {
        const struct op_reading *r = &w->derived[i];
        if (i > 0 && r->sensor_len == w->derived[i - 1].sensor_len &&
            memcmp(r->sensor, w->derived[i - 1].sensor, r->sensor_len) == 0)
            continue;
        sqlite3_bind_text(st, 1, r->sensor, (int)r->sensor_len, SQLITE_STATIC);
        rc = store__exec(s->wdb, st);
        sqlite3_clear_bindings(st);
        if (rc != OP_OK)
            return rc;
        if (sqlite3_changes(s->wdb) > 0)
            store__names_changing(s);
    }
    if (!w->derived_important)
        return OP_OK;
    for (size_t i = 0; i < w->nderived; i++)
        if (w->derived_important[i] &&
            (rc = mark_add(s, first + (int64_t)i, w->derived[i].ts)) != OP_OK)
            return rc;
    return OP_OK;
}

int store__rules_trim_marks(struct op_store *s)
{
    return store__exec(s->wdb, s->wstmt[W_MARKS_TRIM]);
}

static int progress(struct op_store *s, struct op_store_write *w)
{
    int rc;
    if (w->nderived && (rc = derived_append(s, w)) != OP_OK)
        return rc;
    for (size_t i = 0; i < w->nmarks; i++)
        if ((rc = mark_add(s, w->marks[i].seq, w->marks[i].ts)) != OP_OK)
            return rc;

    sqlite3_stmt *st = s->wstmt[W_ALERT_ADD];
    for (size_t i = 0; i < w->nalerts; i++) {
        struct op_store_alert *a = &w->alerts[i];
        sqlite3_bind_text(st, 1, a->rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->sensor, (int)a->sensor_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, a->state, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, a->severity, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, a->cause, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 7, a->value);
        sqlite3_bind_double(st, 8, a->threshold);
        sqlite3_bind_int64(st, 9, a->since);
        sqlite3_bind_int64(st, 10, a->fired_at);
        sqlite3_bind_int64(st, 11, a->ts);
        rc = store__exec(s->wdb, st);
        sqlite3_clear_bindings(st);
        if (rc != OP_OK)
            return rc;
        a->id = sqlite3_last_insert_rowid(s->wdb);
    }
    if (w->cursor < 0)
        return OP_OK;
    st = s->wstmt[W_CURSOR_SET];
    sqlite3_bind_int64(st, 1, w->cursor);
    return store__exec(s->wdb, st);
}

int store__rules_apply(struct op_store *s, struct op_store_write *w)
{
    switch (w->op) {
    case OP_STORE_RULE_PUT:
    case OP_STORE_RULE_DELETE:
        return rule_write(s, w);
    case OP_STORE_RULES_PROGRESS:
        return progress(s, w);
    default:
        return OP_EINVAL;
    }
}

/* ---- the compaction hold ------------------------------------------------- */

static void hold_set(struct op_store *s)
{
    /* No cursor yet (the runner has not started): hold nothing back, the
     * runner begins with the readings committed after it starts. */
    s->rules_hold = s->rules_count == 0 || s->rules_cursor < 0 ? INT64_MAX : s->rules_cursor;
}

int store__rules_hold_load(struct op_store *s)
{
    int src = store__query_int(s->wdb, "SELECT count(*) FROM rules", &s->rules_count);
    if (src == SQLITE_OK)
        src = store__query_int(s->wdb, "SELECT coalesce((SELECT value FROM meta"
                                       " WHERE key = 'rules_cursor'), -1)", &s->rules_cursor);
    hold_set(s);
    return src == SQLITE_OK ? OP_OK : store__err(s->wdb, src, 0);
}

bool store__rules_committed(struct op_store *s, const struct op_store_write *group)
{
    bool changed = false;
    for (const struct op_store_write *w = group; w; w = w->next) {
        if (w->rc != OP_OK)
            continue;
        if (w->op == OP_STORE_RULE_PUT || w->op == OP_STORE_RULE_DELETE)
            changed = true;
        else if (w->op == OP_STORE_RULES_PROGRESS && w->cursor >= 0)
            s->rules_cursor = w->cursor;
    }
    if (changed) {
        atomic_fetch_add(&s->rules_gen, 1);
        if (store__rules_hold_load(s) != OP_OK)
            s->rules_count = 1; /* unsure: keep holding at the last cursor */
    }
    hold_set(s);
    return changed;
}

void op_store_set_commit_hook(struct op_store *s, op_store_commit_fn *fn, void *ctx)
{
    pthread_mutex_lock(&s->mu);
    s->hook = fn;
    s->hook_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&s->mu);
}

uint64_t op_store_rules_generation(struct op_store *s)
{
    return atomic_load(&s->rules_gen);
}

/* ---- the runner's reader ---------------------------------------------- */

int op_store_reader_open(struct op_store *s, struct op_store_reader **out)
{
    *out = NULL;
    struct op_store_reader *r = op_calloc(1, sizeof(*r));
    if (!r)
        return OP_ENOMEM;
    r->s = s;
    r->deadline_ns = INT64_MAX; /* a long-lived thread's reads are not time-limited */
    int rc = sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        OP_ERROR(STORE_SUB, "cannot open %s for reading: %s", s->path,
                 r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        sqlite3_close(r->db);
        op_free(r);
        return rc == SQLITE_NOMEM ? OP_ENOMEM : OP_EIO;
    }
    sqlite3_extended_result_codes(r->db, 1);
    sqlite3_busy_timeout(r->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_exec(r->db, "PRAGMA cache_size=-1024", NULL, NULL, NULL);
    *out = r;
    return OP_OK;
}

void op_store_reader_close(struct op_store_reader *r)
{
    if (!r)
        return;
    store__reader_fini(r);
    op_free(r);
}

/* ---- reads ------------------------------------------------------------ */

/* The name of sensor id from the reader's cache, reading it on a miss.
 * Names are cached across calls (the runner's reader reads the same
 * sensors over and over), under the names seqlock (names_ready): a
 * sensor's deletion lets its id name another, and a derived sensor's
 * readings must not reach the rules. */
static int name_of(struct op_store_reader *r, int64_t id, const char **name, uint32_t *len,
                   bool *derived)
{
    struct store_name *e = &r->names[(uint64_t)id % STORE_NAME_SLOTS];
    if (e->id != id) {
        sqlite3_stmt *st = store__rstmt(r, R_SENSOR_NAME);
        if (!st)
            return OP_EIO;
        sqlite3_bind_int64(st, 1, id);
        int src = sqlite3_step(st);
        int n = src == SQLITE_ROW ? sqlite3_column_bytes(st, 0) : 0;
        const unsigned char *t = src == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        char *copy = t && n >= 1 ? op_strndup((const char *)t, (size_t)n) : NULL;
        bool derived_now = src == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
        int rc = store__rstmt_end(r, st, src == SQLITE_ROW ? SQLITE_DONE : src, OP_OK);
        if (rc != OP_OK || !copy) {
            op_free(copy);
            if (rc != OP_OK)
                return rc;
            if (src == SQLITE_ROW)
                return OP_ENOMEM;
            OP_ERROR(STORE_SUB, "a log reading names sensor %lld, which does not exist",
                     (long long)id);
            return OP_ECORRUPT;
        }
        op_free(e->name);
        *e = (struct store_name){ id, copy, (uint32_t)n, derived_now };
    }
    *name = e->name;
    *len = e->len;
    *derived = e->derived;
    return OP_OK;
}

/* Readies the reader's name cache for a read whose snapshot began between
 * two loads of names_gen, before (gen0) and after (gen1): with the same
 * even value no change to names was open or committed meanwhile, so
 * entries cached under it still hold. Otherwise the cache starts empty,
 * fills from this snapshot only, and is dropped again by the next call. */
static int names_ready(struct op_store_reader *r, uint64_t gen0, uint64_t gen1)
{
    if (!r->names && !(r->names = op_calloc(STORE_NAME_SLOTS, sizeof(*r->names))))
        return OP_ENOMEM;
    bool stable = gen0 == gen1 && (gen0 & 1) == 0;
    if (!stable || gen0 != r->names_gen) {
        for (size_t k = 0; k < STORE_NAME_SLOTS; k++) {
            op_free(r->names[k].name);
            r->names[k] = (struct store_name){ 0 };
        }
    }
    r->names_gen = stable ? gen0 : UINT64_MAX; /* never a seqlock value: clears next time */
    return OP_OK;
}

/* Hands the readings of the log record at st's row with seq > after to fn,
 * while fewer than limit were; *n counts them, *stop says fn asked to. */
static int since_record(struct op_store_reader *r, sqlite3_stmt *st, int64_t after, int64_t limit,
                        op_seq_row_fn *fn, void *ctx, int *n, bool *stop)
{
    int64_t seq_lo = sqlite3_column_int64(st, 0), cnt;
    const uint8_t *d = store__log_entries(st, &cnt);
    if (!d)
        return OP_ECORRUPT;
    for (int64_t i = after >= seq_lo ? after - seq_lo + 1 : 0; i < cnt && *n < limit; i++) {
        struct op_reading rd;
        int64_t id;
        bool derived;
        store__log_get(d + i * STORE_LOG_BYTES, &id, &rd.ts, &rd.value);
        int rc = name_of(r, id, &rd.sensor, &rd.sensor_len, &derived);
        if (rc != OP_OK)
            return rc;
        (*n)++;
        /* A derived reading is passed as NULL: its seq moves the caller on,
         * its value must not reach the rules. */
        if (fn(ctx, seq_lo + i, derived ? NULL : &rd)) {
            *stop = true;
            break;
        }
    }
    return OP_OK;
}

int op_store_read_since(struct op_store_reader *r, int64_t after_seq, int64_t limit,
                        op_seq_row_fn *fn, void *ctx)
{
    if (!r || !fn || limit < 1)
        return OP_EINVAL;
    sqlite3_stmt *begin = store__rstmt(r, R_BEGIN), *commit = store__rstmt(r, R_COMMIT);
    sqlite3_stmt *st = store__rstmt(r, R_SINCE);
    int rc = begin && commit && st ? OP_OK : OP_EIO, src = SQLITE_DONE, n = 0;
    /* One read transaction, the records and the names from one snapshot,
     * which the first step of R_SINCE takes, between two loads of the
     * names seqlock (names_ready). */
    uint64_t gen0 = atomic_load(&r->s->names_gen);
    if (rc == OP_OK)
        rc = store__rstmt_end(r, begin, sqlite3_step(begin), OP_OK);
    if (rc == OP_OK) {
        bool stop = false;
        sqlite3_bind_int64(st, 1, after_seq);
        src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            rc = names_ready(r, gen0, atomic_load(&r->s->names_gen));
        while (rc == OP_OK && !stop && n < limit && src == SQLITE_ROW) {
            rc = since_record(r, st, after_seq, limit, fn, ctx, &n, &stop);
            if (rc == OP_OK && !stop && n < limit)
                src = sqlite3_step(st);
        }
        int e = store__rstmt_end(r, st, src == SQLITE_ROW ? SQLITE_DONE : src, OP_OK);
        rc = rc != OP_OK ? rc : e;
        store__rstmt_end(r, commit, sqlite3_step(commit), OP_OK);
    }
    return rc != OP_OK ? rc : n;
}

int op_store_rules_marks(struct op_store_reader *r, int64_t *seq, int64_t *cursor)
{
    sqlite3_stmt *st = store__rstmt(r, R_MARKS);
    if (!st)
        return OP_EIO;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        *cursor = sqlite3_column_int64(st, 1);
    }
    int rc = store__rstmt_end(r, st, src, 0);
    return rc < 0 ? rc : OP_OK;
}

static int rules_rows(struct op_store_reader *r, sqlite3_stmt *st, op_rule_fn *fn, void *ctx)
{
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_rule_info ri = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .text = (const char *)sqlite3_column_text(st, 1),
            .updated_at = sqlite3_column_int64(st, 2),
            .from_config = !strcmp((const char *)sqlite3_column_text(st, 3), "config"),
        };
        n++;
        if (fn(ctx, &ri))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}

int op_store_list_rules(struct op_store_reader *r, op_rule_fn *fn, void *ctx)
{
    sqlite3_stmt *st = r && fn ? store__rstmt(r, R_RULES) : NULL;
    return st ? rules_rows(r, st, fn, ctx) : OP_EINVAL;
}

int op_store_get_rule(struct op_store_reader *r, const char *name, op_rule_fn *fn, void *ctx)
{
    sqlite3_stmt *st = r && fn && name ? store__rstmt(r, R_RULE_GET) : NULL;
    if (!st)
        return OP_EINVAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int n = rules_rows(r, st, fn, ctx);
    return n == 0 ? OP_ENOTFOUND : n;
}

static int alert_rows(struct op_store_reader *r, sqlite3_stmt *st, op_alert_fn *fn, void *ctx)
{
    int src, n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct op_store_alert a = {
            .id = sqlite3_column_int64(st, 0),
            .rule = (const char *)sqlite3_column_text(st, 1),
            .sensor = (const char *)sqlite3_column_text(st, 2),
            .sensor_len = (uint32_t)sqlite3_column_bytes(st, 2),
            .kind = (const char *)sqlite3_column_text(st, 3),
            .state = (const char *)sqlite3_column_text(st, 4),
            .severity = (const char *)sqlite3_column_text(st, 5),
            .cause = (const char *)sqlite3_column_text(st, 6),
            .value = sqlite3_column_double(st, 7),
            .threshold = sqlite3_column_double(st, 8),
            .since = sqlite3_column_int64(st, 9),
            .fired_at = sqlite3_column_int64(st, 10),
            .ts = sqlite3_column_int64(st, 11),
        };
        n++;
        if (fn(ctx, &a))
            break;
    }
    return store__rstmt_end(r, st, src, n);
}

int op_store_query_alerts(struct op_store_reader *r, const struct op_alert_query *q,
                          op_alert_fn *fn, void *ctx)
{
    if (!r || !q || !fn || q->limit < 1)
        return OP_EINVAL;
    sqlite3_stmt *st = store__rstmt(r, q->state ? R_ALERTS_STATE : R_ALERTS);
    if (!st)
        return OP_EIO;
    sqlite3_bind_int64(st, 1, q->since);
    sqlite3_bind_int64(st, 2, q->limit);
    sqlite3_bind_int64(st, 4, q->after_id);
    if (q->state)
        sqlite3_bind_text(st, 3, q->state, -1, SQLITE_STATIC);
    return alert_rows(r, st, fn, ctx);
}

int op_store_firing_alerts(struct op_store_reader *r, op_alert_fn *fn, void *ctx)
{
    sqlite3_stmt *st = r && fn ? store__rstmt(r, R_ALERTS_FIRING) : NULL;
    return st ? alert_rows(r, st, fn, ctx) : OP_EINVAL;
}
