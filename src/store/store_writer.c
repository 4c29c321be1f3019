/*
 * store_writer.c: the write queue and the writer thread. Any thread submits
 * struct op_store_write records into a byte-capped queue; the one writer
 * thread, which owns the only write connection, takes everything queued at
 * once, applies it in one transaction (BEGIN IMMEDIATE ... COMMIT) and then
 * calls each record's done with the outcome. One fsync thus acknowledges
 * every write that arrived while the previous one ran (group commit).
 * Between groups the writer also takes bounded retention steps.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

/* ---- submit ------------------------------------------------------------ */

/* Validates w and returns the bytes it holds the submitter to keep alive,
 * which is what the queue cap accounts; 0 means invalid. */
size_t store__readings_bytes(const struct op_reading *rd, size_t n)
{
    size_t bytes = 0;
    if (!rd)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct op_reading *r = &rd[i];
        /* SQLite stores NaN as NULL, which the NOT NULL column would
         * refuse mid-group and fail every write in it: refuse it here. */
        if (!r->sensor || r->sensor_len == 0 || r->sensor_len > STORE_SENSOR_MAX ||
            !isfinite(r->value))
            return 0;
        bytes += sizeof(*r) + r->sensor_len;
    }
    return bytes;
}

static size_t write_bytes(const struct op_store_write *w)
{
    size_t bytes = sizeof(*w);
    switch (w->op) {
    case OP_STORE_APPEND: {
        size_t rb = w->n == 0 ? 0 : store__readings_bytes(w->readings, w->n);
        return rb == 0 ? 0 : bytes + rb;
    }
    case OP_STORE_DEVICE_PUT:
        if (w->attributes)
            bytes += strlen(w->attributes);
        /* fall through */
    case OP_STORE_DEVICE_STATUS:
        if (!w->status)
            return 0;
        bytes += strlen(w->status);
        /* fall through */
    case OP_STORE_DEVICE_DELETE:
        if (!w->device_id || !w->device_id[0])
            return 0;
        return bytes + strlen(w->device_id);
    case OP_STORE_RULE_PUT:
    case OP_STORE_RULE_DELETE:
    case OP_STORE_RULES_PROGRESS:
        return store__rules_write_bytes(w);
    case OP_STORE_UPLINK_ACK:
    case OP_STORE_UPLINK_RECEIVE:
        return store__outbox_write_bytes(w);
    }
    return 0;
}

int op_store_submit(struct op_store *s, struct op_store_write *w)
{
    if (!s || !w || !w->done)
        return OP_EINVAL;
    size_t bytes = write_bytes(w);
    if (bytes == 0)
        return OP_EINVAL;
    w->bytes = bytes;
    w->rc = OP_OK;
    w->next = NULL;

    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->mu);
        return OP_ESHUTDOWN;
    }
    /* A write bigger than the whole cap is let in when the queue is empty,
     * or it could never succeed; the queue may then be over the cap. */
    size_t cap = s->opts.queue_max_bytes;
    if (s->queue_bytes > 0 && (s->queue_bytes >= cap || bytes > cap - s->queue_bytes)) {
        pthread_mutex_unlock(&s->mu);
        return OP_EBUSY;
    }
    bool was_empty = s->head == NULL;
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    s->queue_bytes += bytes;
    /* The writer sleeps only when the queue is empty, so only the write
     * that makes it non-empty needs to wake it. */
    if (was_empty)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return OP_OK;
}

/* ---- writer statements ------------------------------------------------- */

static const char *const wsql[W_STMT_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_DEV_PUT] = "INSERT INTO devices(id, status, attributes, updated_at) VALUES(?1, ?2, ?3, ?4)"
                  " ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
                  " attributes = excluded.attributes, updated_at = excluded.updated_at",
    /* POST /status of the old API creates the device if it is new. */
    [W_DEV_STATUS] = "INSERT INTO devices(id, status, attributes, updated_at)"
                     " VALUES(?1, ?2, '{}', ?3)"
                     " ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
                     " updated_at = excluded.updated_at",
    [W_DEV_DELETE] = "DELETE FROM devices WHERE id = ?1",
    [W_PAGE_COUNT] = "PRAGMA page_count",
    [W_FREELIST_COUNT] = "PRAGMA freelist_count",
    [W_INCR_VACUUM] = "PRAGMA incremental_vacuum(" STORE_STR(STORE_VACUUM_PAGES) ")",
};

/* Replaces SQLite's auto-checkpoint, which would copy the WAL into the
 * database inside COMMIT, before the group's done callbacks run; the writer
 * checkpoints after them instead (checkpoint below). */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ((struct op_store *)ctx)->wal_frames = frames;
    return SQLITE_OK;
}

const char *store__wsql(enum store_wstmt which)
{
    return wsql[which] ? wsql[which]
           : store__rules_wsql[which] ? store__rules_wsql[which]
                                      : store__outbox_wsql[which];
}

int store__writer_prepare(struct op_store *s)
{
    for (int i = 0; i < W_STMT_COUNT; i++)
        if (store__prepare(s->wdb, store__wsql((enum store_wstmt)i), &s->wstmt[i]) != SQLITE_OK)
            return OP_EIO;
    sqlite3_wal_hook(s->wdb, wal_hook, s);
    return OP_OK;
}

void store__writer_finalize(struct op_store *s)
{
    for (int i = 0; i < W_STMT_COUNT; i++) {
        sqlite3_finalize(s->wstmt[i]);
        s->wstmt[i] = NULL;
    }
}

/* ---- applying one group ------------------------------------------------ */

static int device_apply(struct op_store *s, struct op_store_write *w)
{
    sqlite3_stmt *st;
    int rc;
    switch (w->op) {
    case OP_STORE_DEVICE_PUT:
        st = s->wstmt[W_DEV_PUT];
        sqlite3_bind_text(st, 1, w->device_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, w->attributes ? w->attributes : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, w->updated_at);
        break;
    case OP_STORE_DEVICE_STATUS:
        st = s->wstmt[W_DEV_STATUS];
        sqlite3_bind_text(st, 1, w->device_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, w->updated_at);
        break;
    default:
        st = s->wstmt[W_DEV_DELETE];
        sqlite3_bind_text(st, 1, w->device_id, -1, SQLITE_STATIC);
        break;
    }
    rc = store__exec(s->wdb, st);
    /* The bound strings belong to the submitter, who may free them once
     * done has run: do not let the statement keep pointers to them. */
    sqlite3_clear_bindings(st);
    if (rc != OP_OK)
        return rc;
    if (w->op == OP_STORE_DEVICE_DELETE && sqlite3_changes(s->wdb) == 0)
        w->rc = OP_ENOTFOUND; /* a per-write outcome; the group goes on */
    return OP_OK;
}

/* Applies every write of the group; returns the first error that breaks
 * the transaction. *readings gets the readings appended. */
static int group_apply(struct op_store *s, struct op_store_write *group, int64_t *readings)
{
    int rc;
    for (struct op_store_write *w = group; w; w = w->next) {
        if (w->op == OP_STORE_APPEND) {
            rc = store__append(s, w->readings, w->n);
            *readings += (int64_t)w->n;
        } else if (w->op >= OP_STORE_UPLINK_ACK) {
            rc = store__outbox_apply(s, w, readings);
        } else if (w->op >= OP_STORE_RULE_PUT) {
            rc = store__rules_apply(s, w);
        } else {
            rc = device_apply(s, w);
        }
        if (rc != OP_OK)
            return rc;
    }
    if ((rc = store__outbox_group_end(s)) != OP_OK)
        return rc;
    return s->layout->group_end(s->layout_state);
}

/* After a failed statement or COMMIT: end the transaction if SQLite has not
 * already rolled it back itself (it may, after SQLITE_FULL or an I/O error)
 * and drop the layout's memory of rows that no longer exist. When BEGIN
 * itself failed the layout never saw the transaction: its state is that of
 * the last commit and must stay so. */
void store__txn_rollback(struct op_store *s, bool begun)
{
    if (!sqlite3_get_autocommit(s->wdb)) {
        if (store__exec(s->wdb, s->wstmt[W_ROLLBACK]) != OP_OK)
            OP_ERROR(STORE_SUB, "%s: rollback failed: %s", s->path, sqlite3_errmsg(s->wdb));
    }
    if (begun)
        s->layout->txn_abort(s->layout_state);
    store__outbox_reset(s);
    store__names_settled(s);
}

void store__names_changing(struct op_store *s)
{
    if (!s->names_dirty)
        atomic_fetch_add(&s->names_gen, 1); /* odd: a change is under way */
    s->names_dirty = true;
}

void store__names_settled(struct op_store *s)
{
    if (s->names_dirty)
        atomic_fetch_add(&s->names_gen, 1); /* even again: committed or undone */
    s->names_dirty = false;
}

static void group_commit(struct op_store *s, struct op_store_write *group)
{
    int64_t t0 = op_time_mono_ns();
    int64_t readings = 0;
    size_t nwrites = 0;
    int rc;

    for (struct op_store_write *w = group; w; w = w->next)
        nwrites++;

    bool begun = false;
    if ((rc = store__exec(s->wdb, s->wstmt[W_BEGIN])) == OP_OK) {
        begun = true;
        s->layout->txn_begin(s->layout_state);
        rc = group_apply(s, group, &readings);
        if (rc == OP_OK)
            rc = store__exec(s->wdb, s->wstmt[W_COMMIT]);
    }

    if (rc == OP_OK) {
        store__names_settled(s);
        atomic_fetch_add(&s->commits, 1);
        op_counter_add(s->m.commits, 1);
        op_counter_add(s->m.appended, (uint64_t)readings);
        op_histogram_observe(s->m.commit_seconds, (double)(op_time_mono_ns() - t0) / 1e9);
        op_histogram_observe(s->m.commit_readings, (double)readings);
        /* Two PRAGMA queries: not worth running for every group of a busy
         * ingest path, only often enough for a gauge. */
        if (t0 - s->db_bytes_at_ns >= STORE_DB_BYTES_REFRESH_MS * 1000000) {
            int64_t db_bytes = store__db_bytes_now(s);
            if (db_bytes >= 0)
                atomic_store(&s->db_bytes, db_bytes);
            s->db_bytes_at_ns = t0;
        }
    } else {
        /* Read the message before ROLLBACK replaces it. */
        OP_ERROR(STORE_SUB, "%s: commit of %zu writes (%lld readings) failed, rolled back: %s (%s)",
                 s->path, nwrites, (long long)readings, sqlite3_errmsg(s->wdb), op_err_str(rc));
        store__txn_rollback(s, begun);
        /* The done contract knows storage full, a locked database and I/O
         * errors only. */
        if (rc != OP_ENOSPC && rc != OP_EBUSY)
            rc = OP_EIO;
        op_counter_add(rc == OP_ENOSPC ? s->m.commit_err_full : s->m.commit_err_io, 1);
    }

    if (rc == OP_OK) {
        /* Before the done callbacks: whoever learns of the commit from a
         * done (an HTTP client told 201) finds the generation moved. */
        bool rules_changed = store__rules_committed(s, group);
        /* Called under mu so that op_store_set_commit_hook(NULL) returns
         * only once no call is in flight: the hook's owner may then free
         * its context. The hook only flags and signals. */
        if (readings > 0 || rules_changed) {
            pthread_mutex_lock(&s->mu);
            if (s->hook)
                s->hook(s->hook_ctx, readings);
            pthread_mutex_unlock(&s->mu);
        }
    }

    for (struct op_store_write *w = group, *next; w; w = next) {
        /* done may free or resubmit w: read the link first. */
        next = w->next;
        if (rc != OP_OK)
            w->rc = rc;
        w->done(w);
    }
}

/* ---- the writer thread ------------------------------------------------- */

/* A PASSIVE checkpoint never waits for readers; what a reader still uses
 * is copied by a later one. A failure (say, the database file cannot grow)
 * leaves the data safe in the WAL and is retried after the next commit. */
static void checkpoint(struct op_store *s)
{
    if (s->wal_frames < STORE_CHECKPOINT_FRAMES)
        return;
    s->wal_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK)
        OP_WARN(STORE_SUB, "%s: checkpoint failed: %s", s->path, sqlite3_errmsg(s->wdb));
}

/* Waits on s->wake for at most ns (negative: no limit). Called with s->mu. */
static void wait_for_work(struct op_store *s, int64_t ns)
{
    if (ns < 0) {
        pthread_cond_wait(&s->wake, &s->mu);
        return;
    }
    /* The condition runs on CLOCK_MONOTONIC (see sync_init); the retention
     * schedule is kept in op_time_mono_ns, so only the distance is used. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t nsec = (int64_t)ts.tv_nsec + ns % 1000000000;
    ts.tv_sec += (time_t)(ns / 1000000000 + nsec / 1000000000);
    ts.tv_nsec = (long)(nsec % 1000000000);
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
}

int64_t store__compact_step(struct op_store *s)
{
    int64_t moved = 0;
    int64_t t0 = op_time_mono_ns();
    int rc = store__exec(s->wdb, s->wstmt[W_BEGIN]);
    bool begun = rc == OP_OK;
    if (begun) {
        s->layout->txn_begin(s->layout_state);
        rc = s->layout->compact(s->layout_state, STORE_COMPACT_CHUNK, s->rules_hold, &moved);
        if (rc == OP_OK)
            rc = store__exec(s->wdb, s->wstmt[W_COMMIT]);
    }
    if (rc != OP_OK) {
        OP_ERROR(STORE_SUB, "%s: compaction step failed, rolled back: %s (%s)", s->path,
                 sqlite3_errmsg(s->wdb), op_err_str(rc));
        store__txn_rollback(s, begun);
        return rc;
    }
    op_counter_add(s->m.compacted, (uint64_t)moved);
    OP_DEBUG(STORE_SUB, "compacted %lld readings in %.1f ms", (long long)moved,
             (double)(op_time_mono_ns() - t0) / 1e6);
    return moved;
}

/* The sooner of the next retention step and the next compaction, for a
 * writer with an empty queue: 0 now, < 0 nothing scheduled. */
static int64_t idle_wait_ns(struct op_store *s)
{
    int64_t r = store__retention_wait_ns(s);
    int64_t c = s->compact_failed ? -1 : s->layout->compact_wait_ns(s->layout_state, true, s->rules_hold);
    if (r < 0)
        return c;
    return c < 0 || r < c ? r : c;
}

static void *writer_main(void *arg)
{
    struct op_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        for (;;) {
            if (s->head || s->closing)
                break;
            int64_t ns = idle_wait_ns(s);
            if (ns == 0)
                break;
            wait_for_work(s, ns);
        }
        struct op_store_write *group = s->head;
        bool closing = s->closing;
        s->head = s->tail = NULL;
        s->queue_bytes = 0;
        pthread_mutex_unlock(&s->mu);

        if (group)
            group_commit(s, group);
        else if (closing)
            break;
        /* Retention steps go between groups, one bounded step at a time, so
         * ingest waits for at most one step. Closing skips them: it should
         * be quick, and the next start catches up. */
        if (!closing && store__retention_wait_ns(s) == 0)
            store__retention_step(s);
        /* Compaction under load (the log is over its size) or when idle.
         * A failed step is not retried in a loop: the next group (which
         * may be the disk recovering) clears the flag. */
        if (!closing && group)
            s->compact_failed = false;
        if (!closing && !s->compact_failed &&
            s->layout->compact_wait_ns(s->layout_state, group == NULL, s->rules_hold) == 0)
            s->compact_failed = store__compact_step(s) < 0;
        checkpoint(s);
    }
    atomic_store(&s->writer_alive, false);
    return NULL;
}

int store__writer_start(struct op_store *s)
{
    if (store__retention_enabled(s))
        s->retention_next_ns = op_time_mono_ns(); /* catch up at once after a restart */
    atomic_store(&s->writer_alive, true);
    int e = pthread_create(&s->writer, NULL, writer_main, s);
    if (e != 0) {
        atomic_store(&s->writer_alive, false);
        OP_ERROR(STORE_SUB, "cannot start the writer thread: %s", strerror(e));
        return OP_ENOMEM;
    }
    s->writer_started = true;
    return OP_OK;
}

void store__writer_stop(struct op_store *s)
{
    if (!s->writer_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->writer_started = false;
}
