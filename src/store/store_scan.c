/*
 * store_scan.c: one sensor's readings in (ts, seq) order, ascending or
 * descending, from the two places they live (store_layout.c): the log,
 * a few records of one group each, and the chunks, up to STORE_CHUNK_MAX
 * codec-encoded readings each. Range queries and aggregates
 * (store_query.c) read through it.
 *
 * A scan is a merge of runs: the sensor's log readings in the window (the
 * log's few records, filtered) and each chunk, decoded when the merge
 * reaches it.
 * Chunks of a sensor may overlap in time (readings that arrived late), so
 * they come from an index on one end of their range, ascending by ts_lo
 * (descending by ts_hi), and a chunk is decoded before any reading at or
 * past its start is handed out; everything decoded but not yet handed out
 * stays in its run. Memory is thus a few chunks for data that arrives in
 * order, and grows only with how many chunks overlap one instant. The
 * sensor's span (its widest chunk) bounds how far before the window the
 * index scan starts. All statements run in one read transaction, so the
 * log, the chunks and the sensor's row come from one snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Reading the layout's rows, for every reader of them (scans, the rules
 * runner, compaction and retention on the writer). Not in store_chunk.c,
 * which the SQLite extension also builds and which must not log. */

const uint8_t *store__log_entries(sqlite3_stmt *st, int64_t *n)
{
    const uint8_t *d = sqlite3_column_blob(st, 2);
    *n = sqlite3_column_int64(st, 1);
    if (d && store__log_record_ok(*n, sqlite3_column_bytes(st, 2)))
        return d;
    OP_ERROR(STORE_SUB, "log record %lld does not hold %lld readings: the database is damaged",
             (long long)sqlite3_column_int64(st, 0), (long long)*n);
    return NULL;
}

int store__chunk_decode_cols(struct op_codec_ctx *ctx, sqlite3_stmt *st, int col,
                             struct store_pts *p)
{
    return store__chunk_decode(ctx, sqlite3_column_blob(st, col),
                               (size_t)sqlite3_column_bytes(st, col),
                               sqlite3_column_blob(st, col + 1),
                               (size_t)sqlite3_column_bytes(st, col + 1), p);
}

/* (ts, seq) of a > b, lexicographically. */
static bool key_gt(int64_t ts_a, int64_t seq_a, int64_t ts_b, int64_t seq_b)
{
    return ts_a > ts_b || (ts_a == ts_b && seq_a > seq_b);
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* A free run slot (its buffers kept from earlier use), or NULL. */
static struct store_run *run_new(struct store_scan *sc)
{
    struct op_store_reader *r = sc->r;
    size_t had = r->runs_cap;
    if (op_reserve(&r->runs, &r->runs_cap, sc->nruns + 1, sizeof(*r->runs), 4) != OP_OK)
        return NULL;
    memset(r->runs + had, 0, (r->runs_cap - had) * sizeof(*r->runs));
    struct store_run *run = &r->runs[sc->nruns];
    run->p.n = 0;
    return run;
}

/* Keeps the readings of the run inside the window (lo, hi) and adds it to
 * the merge when any is left. */
static void run_add(struct store_scan *sc, struct store_run *run)
{
    const struct store_pts *p = &run->p;
    size_t a = 0, b = p->n;
    while (a < b && !key_gt(p->ts[a], p->seq[a], sc->lo_ts, sc->lo_seq))
        a++;
    while (b > a && !key_gt(sc->hi_ts, sc->hi_seq, p->ts[b - 1], p->seq[b - 1]))
        b--;
    run->lo = a;
    run->hi = b;
    if (a < b)
        sc->nruns++;
}

/* The run whose next reading comes first, or -1 when all are empty. */
static int run_best(const struct store_scan *sc)
{
    const struct store_run *runs = sc->r->runs;
    int best = -1;
    int64_t bts = 0, bseq = 0;
    for (size_t i = 0; i < sc->nruns; i++) {
        const struct store_run *run = &runs[i];
        size_t k = sc->desc ? run->hi - 1 : run->lo;
        int64_t ts = run->p.ts[k], seq = run->p.seq[k];
        if (best < 0 || (sc->desc ? key_gt(ts, seq, bts, bseq) : key_gt(bts, bseq, ts, seq))) {
            best = (int)i;
            bts = ts;
            bseq = seq;
        }
    }
    return best;
}

/* Steps the chunk statement to the next candidate. */
static void chunk_next(struct store_scan *sc)
{
    int src = sqlite3_step(sc->chunks);
    sc->pending = src == SQLITE_ROW;
    if (sc->pending)
        sc->pend_key = sqlite3_column_int64(sc->chunks, 0);
    else if (src != SQLITE_DONE)
        sc->src = src;
}

/* Decodes the pending chunk into a run and steps past it. */
static int chunk_open(struct store_scan *sc)
{
    struct store_run *run = run_new(sc);
    if (!run)
        return OP_ENOMEM;
    int rc = store__chunk_decode_cols(sc->r->codec, sc->chunks, 1, &run->p);
    if (rc != OP_OK) {
        if (rc == OP_ECORRUPT)
            OP_ERROR(STORE_SUB, "a chunk of sensor %s does not decode: the database is damaged",
                     sc->sensor);
        return rc;
    }
    run_add(sc, run);
    chunk_next(sc);
    return OP_OK;
}

struct pt {
    int64_t ts, seq;
    double val;
};

static int pt_cmp(const void *pa, const void *pb)
{
    const struct pt *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorts a run by (ts, seq), for log readings of a sensor that arrived out
 * of ts order (a backfill): O(n log n), as a reader's C loops are not
 * under the query time limit. */
static int run_sort(struct store_pts *p)
{
    struct pt *t = op_malloc(p->n * sizeof(*t));
    if (!t)
        return OP_ENOMEM;
    for (size_t i = 0; i < p->n; i++)
        t[i] = (struct pt){ p->ts[i], p->seq[i], p->val[i] };
    qsort(t, p->n, sizeof(*t), pt_cmp);
    for (size_t i = 0; i < p->n; i++)
        p->ts[i] = t[i].ts, p->seq[i] = t[i].seq, p->val[i] = t[i].val;
    op_free(t);
    return OP_OK;
}

/* The sensor's log readings inside the window, sorted, as the first run:
 * the log is a few records (the writer keeps it small), read whole and
 * filtered here. Of a range query only the first (asc) or last (desc)
 * limit can be handed out. */
static int log_load(struct store_scan *sc, int64_t sensor_id, int64_t limit)
{
    sqlite3_stmt *st = store__rstmt(sc->r, R_SCAN_LOG);
    struct store_run *run = run_new(sc);
    if (!st)
        return OP_EIO;
    if (!run)
        return OP_ENOMEM;
    int src, rc = OP_OK;
    bool sorted = true;
    struct store_pts *p = &run->p;
    while (rc == OP_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq_lo = sqlite3_column_int64(st, 0), n;
        const uint8_t *d = store__log_entries(st, &n);
        if (!d) {
            rc = OP_ECORRUPT;
            break;
        }
        for (int64_t i = 0; rc == OP_OK && i < n; i++) {
            int64_t id, ts, seq = seq_lo + i;
            double v;
            store__log_get(d + i * STORE_LOG_BYTES, &id, &ts, &v);
            if (id != sensor_id || !key_gt(ts, seq, sc->lo_ts, sc->lo_seq) ||
                !key_gt(sc->hi_ts, sc->hi_seq, ts, seq))
                continue;
            if (p->n > 0 && ts < p->ts[p->n - 1])
                sorted = false;
            rc = store__pts_push(p, ts, v, seq);
        }
    }
    rc = store__rstmt_end(sc->r, st, rc != OP_OK || src == SQLITE_ROW ? SQLITE_DONE : src, rc);
    if (rc != OP_OK)
        return rc;
    if (!sorted && (rc = run_sort(p)) != OP_OK)
        return rc;
    run->lo = 0;
    run->hi = p->n;
    if (limit >= 0 && (int64_t)p->n > limit) {
        if (sc->desc)
            run->lo = p->n - (size_t)limit;
        else
            run->hi = (size_t)limit;
    }
    if (run->lo < run->hi)
        sc->nruns++;
    return OP_OK;
}

/* The sensor's id and span, or *id = 0 for a sensor never seen. */
static int sensor_find(struct store_scan *sc, int64_t *id, int64_t *span)
{
    sqlite3_stmt *st = store__rstmt(sc->r, R_SCAN_SENSOR);
    if (!st)
        return OP_EIO;
    sqlite3_bind_text(st, 1, sc->sensor, -1, SQLITE_STATIC);
    *id = 0;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *span = sqlite3_column_int64(st, 1);
        src = SQLITE_DONE;
    }
    return store__rstmt_end(sc->r, st, src, OP_OK);
}

int store__scan_open(struct store_scan *sc, struct op_store_reader *r, const char *sensor,
                     bool desc, int64_t from, int64_t to, int64_t log_limit)
{
    sc->r = r;
    sc->sensor = sensor;
    sc->desc = desc;
    /* The window is the open interval (lo, hi) of (ts, seq) keys: seqs are
     * >= 1, so (from - 1, INT64_MAX) < (ts, seq) means ts >= from and
     * (ts, seq) < (to, INT64_MIN) means ts < to. A cursor (scan_after)
     * narrows it further. */
    int64_t lo_ts = from == INT64_MIN ? INT64_MIN : from - 1;
    int64_t lo_seq = from == INT64_MIN ? INT64_MIN : INT64_MAX;
    if (!sc->lo_set || key_gt(lo_ts, lo_seq, sc->lo_ts, sc->lo_seq))
        sc->lo_ts = lo_ts, sc->lo_seq = lo_seq;
    if (!sc->hi_set || key_gt(sc->hi_ts, sc->hi_seq, to, INT64_MIN))
        sc->hi_ts = to, sc->hi_seq = INT64_MIN;
    sc->nruns = 0;
    sc->chunks = NULL;
    sc->pending = false;
    sc->src = SQLITE_OK;
    if (!r->codec && op_codec_ctx_create(&r->codec) != OP_OK)
        return OP_ENOMEM;

    sqlite3_stmt *begin = store__rstmt(r, R_BEGIN);
    if (!begin)
        return OP_EIO;
    int rc = store__rstmt_end(r, begin, sqlite3_step(begin), OP_OK);
    if (rc != OP_OK)
        return rc;
    sc->in_txn = true;
    int64_t id = 0, span = 0;
    if ((rc = sensor_find(sc, &id, &span)) != OP_OK || id == 0)
        return rc;
    if ((rc = log_load(sc, id, log_limit)) != OP_OK)
        return rc;

    sqlite3_stmt *st = store__rstmt(r, desc ? R_SCAN_CHUNKS_DESC : R_SCAN_CHUNKS_ASC);
    if (!st)
        return OP_EIO;
    sqlite3_bind_int64(st, 1, id);
    /* A span of INT64_MAX stands for a chunk wider than int64 can hold
     * (chunk_put saturates): no bound then. */
    if (span == INT64_MAX)
        sqlite3_bind_int64(st, 2, desc ? INT64_MAX : INT64_MIN);
    else
        sqlite3_bind_int64(st, 2, desc ? sat_add(sc->hi_ts, span) : sat_add(sc->lo_ts, -span));
    sqlite3_bind_int64(st, 3, desc ? sc->lo_ts : sc->hi_ts);
    sqlite3_bind_int64(st, 4, desc ? sc->hi_ts : sc->lo_ts);
    sc->chunks = st;
    chunk_next(sc);
    return sc->src == SQLITE_OK ? OP_OK : store__err(r->db, sc->src, 0);
}

void store__scan_after(struct store_scan *sc, bool desc, int64_t ts, int64_t seq)
{
    if (desc) {
        sc->hi_set = true;
        sc->hi_ts = ts, sc->hi_seq = seq;
    } else {
        sc->lo_set = true;
        sc->lo_ts = ts, sc->lo_seq = seq;
    }
}

int store__scan_next(struct store_scan *sc, int64_t *ts, double *val, int64_t *seq)
{
    int best, rc;
    for (;;) {
        best = run_best(sc);
        if (!sc->pending)
            break;
        /* A chunk must join the merge before any reading at or past its
         * start (asc: ts_lo; desc: ts_hi) is handed out. */
        if (best >= 0) {
            const struct store_run *run = &sc->r->runs[best];
            int64_t head = run->p.ts[sc->desc ? run->hi - 1 : run->lo];
            if (sc->desc ? sc->pend_key < head : sc->pend_key > head)
                break;
        }
        if ((rc = chunk_open(sc)) != OP_OK)
            return rc;
    }
    if (sc->src != SQLITE_OK)
        return store__err(sc->r->db, sc->src, 0);
    if (best < 0)
        return 0;
    struct store_run *run = &sc->r->runs[best];
    size_t k = sc->desc ? --run->hi : run->lo++;
    *ts = run->p.ts[k];
    *val = run->p.val[k];
    *seq = run->p.seq[k];
    if (run->lo == run->hi) {
        /* Swap the spent run out of the active ones, buffers and all. */
        struct store_run t = *run;
        *run = sc->r->runs[sc->nruns - 1];
        sc->r->runs[--sc->nruns] = t;
    }
    return 1;
}

int store__scan_close(struct store_scan *sc, int rc)
{
    if (sc->chunks) {
        int e = store__rstmt_end(sc->r, sc->chunks, sc->src == SQLITE_OK ? SQLITE_DONE : sc->src,
                                 OP_OK);
        if (rc >= 0 && e != OP_OK)
            rc = e;
        sc->chunks = NULL;
    }
    /* A run's buffers are kept for the next scan up to a few chunks' worth;
     * a big one (a sensor with many log readings, many overlapping chunks)
     * is given back, so a reader's memory does not stay at its peak. */
    for (size_t k = 0; k < sc->r->runs_cap; k++)
        if (sc->r->runs[k].p.cap > 4 * STORE_CHUNK_MAX)
            store__pts_free(&sc->r->runs[k].p);
    if (sc->r->runs_cap > 16) {
        for (size_t k = 0; k < sc->r->runs_cap; k++)
            store__pts_free(&sc->r->runs[k].p);
        op_free(sc->r->runs);
        sc->r->runs = NULL;
        sc->r->runs_cap = 0;
    }
    if (sc->in_txn) {
        sqlite3_stmt *commit = store__rstmt(sc->r, R_COMMIT);
        if (commit)
            store__rstmt_end(sc->r, commit, sqlite3_step(commit), OP_OK);
        sc->in_txn = false;
    }
    return rc;
}
