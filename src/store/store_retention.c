/*
 * store_retention.c: deleting old readings by age and by a byte quota. The
 * writer calls a step between groups every retention_interval_ms; a step is
 * one transaction that deletes at most STORE_RETENTION_CHUNK readings, so
 * ingest never waits long behind it. When a step hits that bound the next
 * one follows right after the next group, until retention has caught up.
 * Freed pages are given back to the file system with incremental_vacuum
 * (the database is created with auto_vacuum=INCREMENTAL).
 */
#include "store_int.h"

bool store__retention_enabled(const struct op_store *s)
{
    return s->opts.retention_age_ms > 0 || s->opts.retention_bytes > 0;
}

int64_t store__retention_wait_ns(struct op_store *s)
{
    if (!store__retention_enabled(s))
        return -1;
    if (s->retention_behind)
        return 0;
    int64_t d = s->retention_next_ns - op_time_mono_ns();
    return d > 0 ? d : 0;
}

/* Deletes by age, then by quota, within one budget of rows. */
static int step_apply(struct op_store *s, int64_t *by_age, int64_t *by_quota, bool *over)
{
    const struct store_layout *l = s->layout;
    int64_t budget = STORE_RETENTION_CHUNK;
    int rc;

    if (s->opts.retention_age_ms > 0) {
        int64_t cutoff;
        if (__builtin_sub_overflow(op_time_now_ms(), s->opts.retention_age_ms, &cutoff))
            cutoff = INT64_MIN;
        if ((rc = l->delete_older(s->layout_state, cutoff, budget, by_age)) != OP_OK)
            return rc;
        budget -= *by_age;
    }
    if (s->opts.retention_bytes > 0 && budget > 0) {
        int64_t used = store__db_bytes_now(s);
        if (used < 0)
            return (int)used;
        if (used > s->opts.retention_bytes) {
            if ((rc = l->delete_oldest(s->layout_state, budget, by_quota)) != OP_OK)
                return rc;
            /* Deleting rows frees whole pages only once they are empty: go
             * on while there is something left to delete and the pages in
             * use are still over the quota. */
            if (*by_quota > 0) {
                if ((used = store__db_bytes_now(s)) < 0)
                    return (int)used;
                *over = used > s->opts.retention_bytes;
            }
        }
    }
    int64_t age_cutoff = INT64_MIN;
    if (s->opts.retention_age_ms > 0 &&
        __builtin_sub_overflow(op_time_now_ms(), s->opts.retention_age_ms, &age_cutoff))
        age_cutoff = INT64_MIN;
    if ((rc = store__outbox_retention(s, age_cutoff, *by_quota > 0)) != OP_OK)
        return rc;
    if (*by_age + *by_quota > 0) {
        if ((rc = store__rules_trim_marks(s)) != OP_OK)
            return rc;
        return store__exec(s->wdb, s->wstmt[W_INCR_VACUUM]);
    }
    return OP_OK;
}

void store__retention_step(struct op_store *s)
{
    int64_t by_age = 0, by_quota = 0;
    bool over = false;
    int rc;

    /* Retention works on the sorted form only (the layout keeps per-sensor
     * bounds cheap there), so the log is emptied first, all but the rows
     * the rules have not seen (rules_hold): those are the newest. The steps run back
     * to back, with no group in between: under steady ingest the log is
     * never empty between two turns of the writer, and retention would
     * never run. The log is bounded (STORE_COMPACT_ROWS plus a group), so
     * this is a bounded pause; the time cap is a guard. */
    int64_t drain_end = op_time_mono_ns() + (int64_t)STORE_RETENTION_DRAIN_MS * 1000000;
    while (s->layout->compact_wait_ns(s->layout_state, true, s->rules_hold) >= 0) {
        if (store__compact_step(s) < 0) {
            s->retention_behind = false;
            s->retention_next_ns = op_time_mono_ns() + s->opts.retention_interval_ms * 1000000;
            return;
        }
        if (op_time_mono_ns() > drain_end) {
            s->retention_behind = true;
            return;
        }
    }

    bool begun = false;
    if ((rc = store__exec(s->wdb, s->wstmt[W_BEGIN])) == OP_OK) {
        begun = true;
        s->layout->txn_begin(s->layout_state);
        rc = step_apply(s, &by_age, &by_quota, &over);
        if (rc == OP_OK)
            rc = store__exec(s->wdb, s->wstmt[W_COMMIT]);
    }

    if (rc != OP_OK) {
        OP_ERROR(STORE_SUB, "%s: retention step failed, rolled back: %s (%s)", s->path,
                 sqlite3_errmsg(s->wdb), op_err_str(rc));
        store__txn_rollback(s, begun);
        op_counter_add(rc == OP_ENOSPC ? s->m.commit_err_full : s->m.commit_err_io, 1);
        /* Try again at the next interval, not in a tight loop. */
        s->retention_behind = false;
        s->retention_next_ns = op_time_mono_ns() + s->opts.retention_interval_ms * 1000000;
        return;
    }

    store__names_settled(s);
    store__outbox_retention_committed(s);
    if (by_age > 0)
        op_counter_add(s->m.ret_age, (uint64_t)by_age);
    if (by_quota > 0)
        op_counter_add(s->m.ret_quota, (uint64_t)by_quota);
    if (by_age + by_quota > 0) {
        OP_DEBUG(STORE_SUB, "retention deleted %lld readings by age, %lld by quota",
                 (long long)by_age, (long long)by_quota);
        int64_t used = store__db_bytes_now(s);
        if (used >= 0)
            atomic_store(&s->db_bytes, used);
    }
    s->retention_behind = by_age + by_quota >= STORE_RETENTION_CHUNK || over;
    if (!s->retention_behind)
        s->retention_next_ns = op_time_mono_ns() + s->opts.retention_interval_ms * 1000000;
}
