/*
 * Tests of src/store/store_query.c and store_reader.c: range order, bounds,
 * limits and cursor paging through runs of equal timestamps; aggregate
 * buckets (negative timestamps, first/last); the sensor list and its stats;
 * the read queue's cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "test_store_common.h"

struct fixture {
    char *dir;
    struct op_store *s;
};

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    struct op_store_opts o = ts_opts(f->dir);
    f->s = ts_open(&o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    op_store_close(f->s);
    ts_rmrf(f->dir);
    op_free(f);
    op_metrics_reset();
    return 0;
}

static void append_one(struct op_store *s, const char *sensor, int64_t ts, double v)
{
    assert_int_equal(ts_append(s, sensor, ts, 0, v, 1), OP_OK);
}

/* A restart keeps seq increasing past rows that left the log: one more
 * reading of sensor after reopening gets the next seq, and the store then
 * holds `total` readings. */
static void assert_seq_goes_on(struct fixture *f, const char *sensor, int64_t total)
{
    int64_t max_seq = ts_sql_int(f->dir, "SELECT max(seq) FROM readings");
    op_store_close(f->s);
    struct op_store_opts o = ts_opts(f->dir);
    f->s = ts_open(&o);
    append_one(f->s, sensor, 1, 1);
    assert_int_equal(ts_sql_int(f->dir, "SELECT max(seq) FROM readings"), max_seq + 1);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM readings"), total);
}

/* ---- range ------------------------------------------------------------- */

#define RQ(s, f, t, l)                                                                         \
    ((struct op_range_query){ .sensor = (s), .from = (f), .to = (t), .limit = (l) })
#define RQ_DESC(s, f, t, l)                                                                    \
    ((struct op_range_query){ .sensor = (s), .from = (f), .to = (t), .limit = (l), .desc = true })

#define MAX_ROWS 4096

struct rows {
    int n;
    int stop_after; /* 0: never stop */
    int64_t ts[MAX_ROWS], seq[MAX_ROWS];
    double v[MAX_ROWS];
};

/* The collectors run on reader threads, where a cmocka assert cannot jump
 * back to the test: past their capacity they stop the query, and the test
 * thread sees the short or capped count. */
static int collect_row(void *ctx, int64_t ts, double v, int64_t seq)
{
    struct rows *r = ctx;
    if (r->n >= MAX_ROWS)
        return 1;
    r->ts[r->n] = ts;
    r->v[r->n] = v;
    r->seq[r->n] = seq;
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

struct range_call {
    struct op_range_query q;
    struct rows rows;
    int rc;
};

static void range_job(struct op_store_reader *r, void *ctx)
{
    struct range_call *c = ctx;
    c->rc = op_store_query_range(r, &c->q, collect_row, &c->rows);
}

static struct range_call range(struct op_store *s, struct op_range_query q)
{
    struct range_call c = { .q = q };
    ts_read(s, range_job, &c);
    return c;
}

static void test_range_order_and_bounds(void **state)
{
    struct fixture *f = *state;
    /* Out of order across writes, and another sensor interleaved. */
    append_one(f->s, "t", 30, 3);
    append_one(f->s, "other", 20, 99);
    append_one(f->s, "t", 10, 1);
    append_one(f->s, "t", 20, 2);
    append_one(f->s, "t", 40, 4);

    struct range_call c = range(f->s, RQ("t", 0, 100, 10));
    assert_int_equal(c.rc, 4);
    int64_t want[] = { 10, 20, 30, 40 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c.rows.ts[i], want[i]);
        assert_true(c.rows.v[i] == (double)(i + 1));
    }

    c = range(f->s, RQ("t", 20, 40, 10)); /* [20, 40) */
    assert_int_equal(c.rc, 2);
    assert_int_equal(c.rows.ts[0], 20);
    assert_int_equal(c.rows.ts[1], 30);

    c = range(f->s, RQ_DESC("t", 0, 100, 3));
    assert_int_equal(c.rc, 3);
    assert_int_equal(c.rows.ts[0], 40);
    assert_int_equal(c.rows.ts[2], 20);

    c = range(f->s, RQ("nope", 0, 100, 10));
    assert_int_equal(c.rc, 0);
    c = range(f->s, RQ("t", 50, 50, 10));
    assert_int_equal(c.rc, 0);
    c = range(f->s, RQ("t", 0, 100, 0));
    assert_int_equal(c.rc, OP_EINVAL);

    /* The callback stops the query early; the count includes that row. */
    c = (struct range_call){ .q = RQ("t", 0, 100, 10), .rows = { .stop_after = 2 } };
    ts_read(f->s, range_job, &c);
    assert_int_equal(c.rc, 2);
}

/* Pages through [from, to) of sensor with page size `page`, returns the
 * rows seen. */
static struct rows page_range(struct op_store *s, const char *sensor, int64_t from, int64_t to,
                              bool desc, int page)
{
    struct rows all = { 0 };
    struct op_range_query q = RQ(sensor, from, to, page);
    q.desc = desc;
    for (int guard = 0; guard < 100; guard++) {
        struct range_call c = range(s, q);
        assert_true(c.rc >= 0);
        for (int i = 0; i < c.rows.n; i++) {
            all.ts[all.n] = c.rows.ts[i];
            all.seq[all.n] = c.rows.seq[i];
            all.v[all.n] = c.rows.v[i];
            all.n++;
        }
        if (c.rc < page)
            return all;
        q.has_after = true;
        q.after_ts = c.rows.ts[c.rows.n - 1];
        q.after_seq = c.rows.seq[c.rows.n - 1];
    }
    fail_msg("paging did not end");
    return all;
}

static struct rows page_all(struct op_store *s, bool desc, int page)
{
    return page_range(s, "dup", INT64_MIN, INT64_MAX, desc, page);
}

static void assert_strict_order(const struct rows *all, bool desc)
{
    for (int i = 1; i < all->n; i++) {
        bool after = all->ts[i] > all->ts[i - 1] ||
                     (all->ts[i] == all->ts[i - 1] && all->seq[i] > all->seq[i - 1]);
        assert_true(desc ? !after : after);
    }
}

static void test_range_cursor_through_duplicates(void **state)
{
    struct fixture *f = *state;
    /* Runs of equal ts, written in several batches and out of order. */
    assert_int_equal(ts_append(f->s, "dup", 100, 0, 0, 7), OP_OK);  /* 7 x ts 100 */
    assert_int_equal(ts_append(f->s, "dup", 50, 0, 10, 5), OP_OK);  /* 5 x ts 50 */
    assert_int_equal(ts_append(f->s, "dup", 100, 0, 20, 4), OP_OK); /* 4 more x ts 100 */
    assert_int_equal(ts_append(f->s, "dup", -5, 0, 30, 3), OP_OK);  /* 3 x ts -5 */

    for (int desc = 0; desc <= 1; desc++) {
        for (int page = 1; page <= 6; page++) {
            struct rows all = page_all(f->s, desc, page);
            assert_int_equal(all.n, 19);
            /* Strictly ordered by (ts, seq): no repeat, no gap. */
            assert_strict_order(&all, desc);
            /* Equal ts come in the order they were stored. */
            int first = desc ? 18 : 0;
            assert_int_equal(all.ts[first], -5);
            assert_true(all.v[first] == 30);
        }
    }
}

/* ---- aggregate --------------------------------------------------------- */

#define MAX_BUCKETS 32

struct agg_call {
    struct op_agg_query q;
    struct op_agg_bucket b[MAX_BUCKETS];
    int n;
    int rc;
};

static int collect_bucket(void *ctx, const struct op_agg_bucket *b)
{
    struct agg_call *c = ctx;
    if (c->n >= MAX_BUCKETS)
        return 1;
    c->b[c->n++] = *b;
    return 0;
}

static void agg_job(struct op_store_reader *r, void *ctx)
{
    struct agg_call *c = ctx;
    c->rc = op_store_query_aggregate(r, &c->q, collect_bucket, c);
}

static void test_aggregate_buckets(void **state)
{
    struct fixture *f = *state;
    struct {
        int64_t ts;
        double v;
    } in[] = {
        { -1500, 1 }, { -1000, 2 }, { -1, 3 }, { 0, 4 }, { 999, 5 }, { 999, 6 },
        { 1000, 7 },  { 5000, 8 },  { 500, 9 },
    };
    /* One batch per reading so that seq follows this order: the 999 pair
     * keeps 5 before 6, and 500 arrives last but sorts by ts. */
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        append_one(f->s, "agg", in[i].ts, in[i].v);

    struct agg_call c = { .q = { "agg", INT64_MIN, INT64_MAX, 1000 } };
    ts_read(f->s, agg_job, &c);
    assert_int_equal(c.rc, 5);
    assert_int_equal(c.n, 5);
    /* [-2000, -1000): -1500 */
    assert_int_equal(c.b[0].start, -2000);
    assert_int_equal(c.b[0].count, 1);
    /* [-1000, 0): -1000, -1 */
    assert_int_equal(c.b[1].start, -1000);
    assert_int_equal(c.b[1].count, 2);
    assert_true(c.b[1].first == 2 && c.b[1].last == 3);
    assert_true(c.b[1].sum == 5 && c.b[1].min == 2 && c.b[1].max == 3);
    /* [0, 1000): 0, 500, 999, 999 */
    assert_int_equal(c.b[2].start, 0);
    assert_int_equal(c.b[2].count, 4);
    assert_true(c.b[2].first == 4);
    assert_true(c.b[2].last == 6); /* equal ts: the later write is last */
    assert_true(c.b[2].min == 4 && c.b[2].max == 9 && c.b[2].sum == 24);
    assert_int_equal(c.b[3].start, 1000);
    assert_int_equal(c.b[4].start, 5000);

    /* Range bounds and a step that does not divide the range. */
    c = (struct agg_call){ .q = { "agg", -1000, 1000, 300 } };
    ts_read(f->s, agg_job, &c);
    /* -1000 -> [-1200,-900); -1 -> [-300,0); 0 -> [0,300); 500 -> [300,600);
     * 999,999 -> [900,1200) */
    assert_int_equal(c.rc, 5);
    assert_int_equal(c.b[0].start, -1200);
    assert_int_equal(c.b[1].start, -300);
    assert_int_equal(c.b[2].start, 0);
    assert_int_equal(c.b[3].start, 300);
    assert_int_equal(c.b[4].start, 900);
    assert_int_equal(c.b[4].count, 2);

    /* Timestamps at the ends of int64_t do not overflow the bucket math. */
    append_one(f->s, "edge", INT64_MIN + 1, 1);
    append_one(f->s, "edge", INT64_MAX - 1, 2);
    c = (struct agg_call){ .q = { "edge", INT64_MIN, INT64_MAX, 1000 } };
    ts_read(f->s, agg_job, &c);
    assert_int_equal(c.rc, 2);
    assert_int_equal(c.b[0].start, INT64_MIN);
    assert_int_equal(c.b[0].count, 1);
    assert_int_equal(c.b[1].count, 1);

    c = (struct agg_call){ .q = { "agg", 0, 10, 0 } };
    ts_read(f->s, agg_job, &c);
    assert_int_equal(c.rc, OP_EINVAL);
}

static bool compacted_65536(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_store_compacted_readings_total") >= 65536;
}

/* Readings live partly in chunks and partly in the log; every
 * query must see them as one series, in order, across the seam. */
static void test_queries_merge_log_and_chunks(void **state)
{
    struct fixture *f = *state;
    /* Even ts 0..139998: a log past its compaction size, so the writer
     * moves the first 65536 (ts 0..131070) into chunks. */
    assert_int_equal(ts_append(f->s, "big", 0, 2, 0, 70000), OP_OK);
    assert_true(ts_poll(compacted_65536, NULL, 20000));
    /* Odd ts 131001..131199 go to the log, interleaving both sides. */
    assert_int_equal(ts_append(f->s, "big", 131001, 2, 0.5, 100), OP_OK);

    for (int desc = 0; desc <= 1; desc++) {
        for (int page = 7; page <= 64; page *= 3) {
            struct rows all = page_range(f->s, "big", 130990, 131210, desc, page);
            assert_int_equal(all.n, 110 + 100);
            assert_strict_order(&all, desc);
            assert_int_equal(all.ts[desc ? all.n - 1 : 0], 130990);
            assert_int_equal(all.ts[desc ? 0 : all.n - 1], 131208);
        }
    }
    struct agg_call c = { .q = { "big", INT64_MIN, INT64_MAX, 1000000 } };
    ts_read(f->s, agg_job, &c);
    assert_int_equal(c.rc, 1);
    assert_int_equal(c.b[0].count, 70100);
    assert_true(c.b[0].first == 0 && c.b[0].last == 69999);

    assert_seq_goes_on(f, "big", 70101);
}

static bool log_empty(void *ctx)
{
    return ts_sql_int(ctx, "SELECT coalesce(sum(n), 0) FROM log") == 0;
}

/* Readings that arrive late make one sensor's chunks overlap in time, and
 * equal timestamps tie by seq; a chunk holds at most STORE_CHUNK_MAX
 * readings and small ones are extended. Queries must hand out every
 * reading once, in (ts, seq) order, both ways and across pages, from
 * overlapping chunks and the log at once. */
static void test_overlapping_chunks_merge(void **state)
{
    struct fixture *f = *state;
    /* 3,000 readings ts 0..29990: three chunks (1024, 1024, 952). */
    assert_int_equal(ts_append(f->s, "late", 0, 10, 0, 3000), OP_OK);
    assert_true(ts_poll(log_empty, f->dir, 20000));
    /* Late: 500 odd ts 5..4995, and 50 duplicates of ts 100..590. */
    assert_int_equal(ts_append(f->s, "late", 5, 10, 0.5, 500), OP_OK);
    assert_int_equal(ts_append(f->s, "late", 100, 10, 0.25, 50), OP_OK);
    assert_true(ts_poll(log_empty, f->dir, 20000));
    assert_true(ts_sql_int(f->dir, "SELECT count(*) FROM chunks a JOIN chunks b"
                                   " ON a.id < b.id AND a.ts_lo <= b.ts_hi"
                                   " AND b.ts_lo <= a.ts_hi") > 0);
    assert_int_equal(ts_sql_int(f->dir, "SELECT max(n) FROM chunks"), 1024);
    /* A few more stay in the log: ts 7..997, interleaved with both. */
    assert_int_equal(ts_append(f->s, "late", 7, 10, 0.75, 100), OP_OK);
    enum { ALL = 3000 + 500 + 50 + 100 };

    for (int desc = 0; desc <= 1; desc++) {
        for (int page = 64; page <= 4096; page *= 8) {
            struct rows all = page_range(f->s, "late", INT64_MIN, INT64_MAX, desc, page);
            assert_int_equal(all.n, ALL);
            assert_strict_order(&all, desc);
        }
        /* A window inside the overlap. */
        struct rows w = page_range(f->s, "late", 95, 605, desc, 13);
        assert_int_equal(w.n, 51 + 51 + 50 + 51);
        assert_strict_order(&w, desc);
    }
    struct agg_call c = { .q = { "late", 0, 1000, 100 } };
    ts_read(f->s, agg_job, &c);
    assert_int_equal(c.rc, 10);
    assert_int_equal(c.b[1].count, 10 + 10 + 10 + 10); /* 100..199 */
    assert_true(c.b[1].first == 10 && c.b[1].last == 19.75);

    assert_seq_goes_on(f, "late", ALL + 1);
}

/* A sensor that gets a few readings per compaction grows its newest chunk
 * instead of adding tiny ones, until the chunk holds STORE_CHUNK_FILL (128). */
static void test_small_chunks_are_extended(void **state)
{
    struct fixture *f = *state;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ts_append(f->s, "slow", round * 50, 1, 0, 50), OP_OK);
        assert_true(ts_poll(log_empty, f->dir, 20000));
    }
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM chunks"), 1);
    assert_int_equal(ts_sql_int(f->dir, "SELECT n FROM chunks"), 150);
    for (int round = 3; round < 6; round++) {
        assert_int_equal(ts_append(f->s, "slow", round * 50, 1, 0, 50), OP_OK);
        assert_true(ts_poll(log_empty, f->dir, 20000));
    }
    /* 50 + 50 + 50: past the fill mark, the next round started a chunk. */
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM chunks"), 2);
    assert_int_equal(ts_sql_int(f->dir, "SELECT min(n) FROM chunks"), 150);
    struct rows all = page_range(f->s, "slow", INT64_MIN, INT64_MAX, false, 1000);
    assert_int_equal(all.n, 300);
    assert_strict_order(&all, false);
}

/* Timestamps at both ends of int64 in one chunk make its width overflow
 * (the sensor's span saturates), and still every reading is found, by a
 * whole-range query and page by page both ways. */
static void test_extreme_timestamps(void **state)
{
    struct fixture *f = *state;
    static const int64_t tss[] = { INT64_MIN, INT64_MIN + 1, -1, 0, INT64_MAX - 1, INT64_MAX };
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(ts_append(f->s, "e", tss[i], 0, (double)i, 1), OP_OK);
    assert_true(ts_poll(log_empty, f->dir, 20000));
    assert_int_equal(ts_sql_int(f->dir, "SELECT span FROM sensors WHERE name = 'e'"), INT64_MAX);
    /* Two more in the log. */
    assert_int_equal(ts_append(f->s, "e", INT64_MIN, 0, 10, 1), OP_OK);
    assert_int_equal(ts_append(f->s, "e", INT64_MAX - 1, 0, 11, 1), OP_OK);
    for (int desc = 0; desc <= 1; desc++) {
        for (int page = 1; page <= 64; page *= 64) {
            /* `to` is exclusive: the reading at INT64_MAX is out of range. */
            struct rows all = page_range(f->s, "e", INT64_MIN, INT64_MAX, desc, page);
            assert_int_equal(all.n, 7);
            assert_strict_order(&all, desc);
        }
        struct rows w = page_range(f->s, "e", 0, INT64_MAX, desc, 1);
        assert_int_equal(w.n, 3);
    }
}

/* ---- sensors ----------------------------------------------------------- */

struct sensor_list {
    int n;
    char name[8][32];
    struct op_sensor_info si[8];
    int rc;
};

static int collect_sensor(void *ctx, const struct op_sensor_info *si)
{
    struct sensor_list *l = ctx;
    if (l->n >= 8)
        return 1;
    snprintf(l->name[l->n], sizeof(l->name[0]), "%s", si->name);
    l->si[l->n] = *si;
    l->n++;
    return 0;
}

static void sensors_job(struct op_store_reader *r, void *ctx)
{
    struct sensor_list *l = ctx;
    l->rc = op_store_list_sensors(r, collect_sensor, l);
}

static void test_sensor_stats(void **state)
{
    struct fixture *f = *state;
    struct op_reading batch[] = {
        { "b", 1, 100, 1 }, { "a", 1, 5, 10 }, { "b", 1, 300, 3 },
        { "b", 1, 300, 4 }, /* same ts as the previous: this one is last */
        { "b", 1, 200, 2 },
    };
    struct op_store_write w = { .op = OP_STORE_APPEND, .readings = batch, .n = 5 };
    assert_int_equal(ts_write(f->s, &w), OP_OK);
    append_one(f->s, "b", 50, 7);  /* older than last_ts: last_value stays */
    append_one(f->s, "a", 5, 11);  /* ties with a's last_ts in a later commit: wins */

    struct sensor_list l = { 0 };
    ts_read(f->s, sensors_job, &l);
    assert_int_equal(l.rc, 2);
    assert_string_equal(l.name[0], "a");
    assert_string_equal(l.name[1], "b");
    assert_int_equal(l.si[0].count, 2);
    assert_int_equal(l.si[0].first_ts, 5);
    assert_int_equal(l.si[0].last_ts, 5);
    assert_true(l.si[0].last_value == 11);
    assert_int_equal(l.si[1].count, 5);
    assert_int_equal(l.si[1].first_ts, 50);
    assert_int_equal(l.si[1].last_ts, 300);
    assert_true(l.si[1].last_value == 4);
}

/* ---- the read queue ---------------------------------------------------- */

struct blocker {
    struct op_store_read_job job;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool entered, open;
};

static void block_fn(struct op_store_reader *r, struct op_store_read_job *job)
{
    (void)r;
    struct blocker *b = (struct blocker *)job;
    pthread_mutex_lock(&b->mu);
    b->entered = true;
    pthread_cond_broadcast(&b->cond);
    while (!b->open)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static _Atomic int noop_runs;

static void noop_fn(struct op_store_reader *r, struct op_store_read_job *job)
{
    (void)r;
    (void)job;
    atomic_fetch_add(&noop_runs, 1);
}

static void test_read_queue_cap(void **state)
{
    struct fixture *f = *state;
    struct blocker b[2];
    for (int i = 0; i < 2; i++) {
        memset(&b[i], 0, sizeof(b[i]));
        b[i].job.fn = block_fn;
        pthread_mutex_init(&b[i].mu, NULL);
        pthread_cond_init(&b[i].cond, NULL);
        assert_int_equal(op_store_read_submit(f->s, &b[i].job), OP_OK);
    }
    for (int i = 0; i < 2; i++) { /* both readers are parked */
        pthread_mutex_lock(&b[i].mu);
        while (!b[i].entered)
            pthread_cond_wait(&b[i].cond, &b[i].mu);
        pthread_mutex_unlock(&b[i].mu);
    }
    static struct op_store_read_job jobs[1025];
    atomic_store(&noop_runs, 0);
    for (int i = 0; i < 1024; i++) {
        jobs[i].fn = noop_fn;
        assert_int_equal(op_store_read_submit(f->s, &jobs[i]), OP_OK);
    }
    jobs[1024].fn = noop_fn;
    assert_int_equal(op_store_read_submit(f->s, &jobs[1024]), OP_EBUSY);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&b[i].mu);
        b[i].open = true;
        pthread_cond_broadcast(&b[i].cond);
        pthread_mutex_unlock(&b[i].mu);
    }
    /* Closing (in teardown) runs the rest; check here with a fresh close. */
    op_store_close(f->s);
    f->s = NULL;
    assert_int_equal(atomic_load(&noop_runs), 1024);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_destroy(&b[i].mu);
        pthread_cond_destroy(&b[i].cond);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_range_order_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cursor_through_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_merge_log_and_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_chunks_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_chunks_are_extended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extreme_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_queue_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
