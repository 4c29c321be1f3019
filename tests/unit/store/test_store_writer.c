/*
 * Tests of src/store/store_writer.c and store_open.c: the schema on a new
 * file, group commit under concurrent submitters, batch atomicity as seen
 * by readers, the byte cap on the queue, input validation, device writes,
 * close draining both queues, and the metrics.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "outpost/core.h"
#include "test_store_common.h"

/* ---- open -------------------------------------------------------------- */

static void test_open_creates_schema(void **state)
{
    char path[600], text[64];
    snprintf(path, sizeof(path), "%s/a/b", (char *)*state);
    struct op_store_opts o = ts_opts(path);
    struct op_store *s = ts_open(&o);
    op_store_close(s);

    assert_int_equal(ts_sql_int(path, "PRAGMA auto_vacuum"), 2); /* INCREMENTAL */
    assert_int_equal(ts_sql_int(path, "PRAGMA user_version"), 7);
    ts_sql_text(path, "PRAGMA journal_mode", text, sizeof(text));
    assert_string_equal(text, "wal");

    /* Reopening an existing file migrates nothing and works. */
    s = ts_open(&o);
    assert_int_equal(ts_append(s, "a", 1, 1, 0, 3), OP_OK);
    op_store_close(s);
    assert_int_equal(ts_sql_int(path, "SELECT count(*) FROM readings"), 3);
}

/* A database of schema 1 (one readings table + index) is migrated through
 * every version to the log + chunks layout, with its readings and its
 * sequence intact: the readings become a chunk at open. */
static void test_open_migrates_schema_1(void **state)
{
    char path[600], db[700];
    snprintf(path, sizeof(path), "%s", (char *)*state);
    snprintf(db, sizeof(db), "%s/outpost.db", path);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(h,
                     "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
                     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                     "INSERT INTO meta(key, value) VALUES('next_seq', 8);"
                     "CREATE TABLE sensors(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                     " count INTEGER NOT NULL DEFAULT 0, first_ts INTEGER, last_ts INTEGER,"
                     " last_value REAL);"
                     "CREATE TABLE readings(seq INTEGER PRIMARY KEY, sensor_id INTEGER NOT NULL,"
                     " ts INTEGER NOT NULL, value REAL NOT NULL);"
                     "CREATE INDEX readings_sensor_ts ON readings(sensor_id, ts);"
                     "CREATE TABLE devices(id TEXT PRIMARY KEY, status TEXT NOT NULL,"
                     " attributes TEXT NOT NULL DEFAULT '{}', updated_at INTEGER NOT NULL)"
                     " WITHOUT ROWID;"
                     "INSERT INTO sensors VALUES(1, 'old', 3, 10, 30, 3.5);"
                     "INSERT INTO readings VALUES(5, 1, 10, 1.5), (6, 1, 20, 2.5), (7, 1, 30, 3.5);"
                     "PRAGMA user_version=1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);

    struct op_store_opts o = ts_opts(path);
    struct op_store *s = ts_open(&o);
    assert_int_equal(ts_append(s, "old", 40, 1, 4.5, 1), OP_OK);
    op_store_close(s);
    assert_int_equal(ts_sql_int(path, "PRAGMA user_version"), 7);
    assert_int_equal(ts_sql_int(path, "SELECT sum(n) FROM chunks"), 3);
    assert_int_equal(ts_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                      " ('readings_sorted', 'readings_log', 'readings')"),
                     0);
    assert_int_equal(ts_sql_int(path, "SELECT span FROM sensors WHERE name = 'old'"), 20);
    assert_int_equal(ts_sql_int(path, "SELECT count(*) FROM readings WHERE sensor_id = 1"), 4);
    assert_int_equal(ts_sql_int(path, "SELECT seq FROM readings WHERE ts = 40"), 8);
    assert_int_equal(ts_sql_int(path, "SELECT count FROM sensors WHERE name = 'old'"), 4);
}

static void test_open_rejects_bad_opts(void **state)
{
    struct op_store *s = NULL;
    struct op_store_opts o = ts_opts(*state);
    o.readers = 0;
    assert_int_equal(op_store_open(&s, &o), OP_EINVAL);
    o = ts_opts(*state);
    o.sync_mode = 7;
    assert_int_equal(op_store_open(&s, &o), OP_EINVAL);
    /* A second store on the same directory is refused while one is open. */
    o = ts_opts(*state);
    s = ts_open(&o);
    struct op_store *s2 = NULL;
    assert_int_equal(op_store_open(&s2, &o), OP_EIO);
    assert_null(s2);
    op_store_close(s);
    /* A newer schema than this build knows is refused, not damaged. */
    assert_int_equal(ts_sql_int(*state, "PRAGMA user_version=99"), -1);
    assert_int_equal(op_store_open(&s, &o), OP_EIO);
    assert_null(s);
}

/* ---- group commit ------------------------------------------------------ */

#define GC_THREADS 8
#define GC_WRITES 250
#define GC_READINGS 4

struct gc_thread {
    struct op_store *s;
    struct ts_waiter *t;
    int id;
    struct op_reading r[GC_WRITES][GC_READINGS];
    struct op_store_write w[GC_WRITES];
    char sensor[16];
};

static void *gc_main(void *arg)
{
    struct gc_thread *g = arg;
    snprintf(g->sensor, sizeof(g->sensor), "gc/%d", g->id);
    for (int i = 0; i < GC_WRITES; i++) {
        for (int k = 0; k < GC_READINGS; k++)
            g->r[i][k] = (struct op_reading){ g->sensor, (uint32_t)strlen(g->sensor),
                                              i * GC_READINGS + k, (double)k };
        g->w[i] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = g->r[i],
                                           .n = GC_READINGS, .done = ts_done, .ctx = g->t };
        int rc;
        while ((rc = op_store_submit(g->s, &g->w[i])) == OP_EBUSY)
            sched_yield();
        if (rc != OP_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_group_commit_concurrent(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    o.sync_mode = OP_SYNC_FULL; /* each commit costs an fsync: groups form */
    struct op_store *s = ts_open(&o);
    struct ts_waiter t;
    ts_waiter_init(&t);
    static struct gc_thread g[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        g[i].s = s;
        g[i].t = &t;
        g[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, gc_main, &g[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    ts_waiter_wait(&t, GC_THREADS * GC_WRITES);
    assert_int_equal(t.failed, 0);
    for (int i = 0; i < GC_THREADS; i++)
        for (int k = 0; k < GC_WRITES; k++)
            assert_int_equal(g[i].w[k].rc, OP_OK);

    struct op_store_stats st;
    op_store_get_stats(s, &st);
    assert_true(st.commits >= 1);
    assert_true(st.commits < GC_THREADS * GC_WRITES);
    assert_int_equal((long)ts_metric("outpost_store_commits_total"), st.commits);
    assert_int_equal((long)ts_metric("outpost_store_readings_appended_total"),
                     GC_THREADS * GC_WRITES * GC_READINGS);
    assert_int_equal((long)ts_metric("outpost_store_commit_readings_count"), st.commits);
    assert_true(st.db_bytes > 0 && st.file_bytes >= st.db_bytes);
    assert_int_equal((long)ts_metric("outpost_store_db_bytes"), st.db_bytes);
    assert_true(ts_metric("outpost_store_file_bytes") > 0);

    /* A fresh connection sees every row, while the store is still open. */
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"),
                     GC_THREADS * GC_WRITES * GC_READINGS);
    assert_int_equal(ts_sql_int(*state, "SELECT count(DISTINCT seq) FROM readings"),
                     GC_THREADS * GC_WRITES * GC_READINGS);
    assert_int_equal(ts_sql_int(*state, "SELECT sum(count) FROM sensors"),
                     GC_THREADS * GC_WRITES * GC_READINGS);
    assert_int_equal(ts_sql_int(*state, "SELECT max(last_ts) FROM sensors"),
                     GC_WRITES * GC_READINGS - 1);
    op_store_close(s);
    /* The gauges outlive the store and read 0 once it is closed. */
    assert_true(ts_metric("outpost_store_file_bytes") == 0);
    ts_waiter_fini(&t);
}

/* ---- atomicity --------------------------------------------------------- */

#define AT_BATCH 500
#define AT_BATCHES 40

/* Read jobs run on reader threads, where a cmocka assert cannot jump back
 * to the test: they record, the test thread asserts. */
struct count_ctx {
    int64_t rows;
    int rc;
};

static int count_row(void *ctx, int64_t ts, double v, int64_t seq)
{
    (void)ts;
    (void)v;
    (void)seq;
    ((struct count_ctx *)ctx)->rows++;
    return 0;
}

static void read_count(struct op_store_reader *r, void *ctx)
{
    struct op_range_query q = { .sensor = "atomic", .from = INT64_MIN, .to = INT64_MAX,
                                .limit = 1000000 };
    struct count_ctx *c = ctx;
    c->rows = 0;
    c->rc = op_store_query_range(r, &q, count_row, c);
}

static void test_batches_are_atomic(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_store *s = ts_open(&o);
    static struct op_reading r[AT_BATCHES][AT_BATCH];
    static struct op_store_write w[AT_BATCHES];
    struct ts_waiter t;
    ts_waiter_init(&t);
    for (int b = 0; b < AT_BATCHES; b++) {
        for (int i = 0; i < AT_BATCH; i++)
            r[b][i] = (struct op_reading){ "atomic", 6, b * AT_BATCH + i, i };
        w[b] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = r[b], .n = AT_BATCH,
                                        .done = ts_done, .ctx = &t };
    }
    /* Readers count while the writer commits: every count they see is a
     * whole number of batches. */
    for (int b = 0; b < AT_BATCHES; b++) {
        assert_int_equal(op_store_submit(s, &w[b]), OP_OK);
        struct count_ctx c;
        ts_read(s, read_count, &c);
        assert_true(c.rc >= 0);
        assert_int_equal(c.rows % AT_BATCH, 0);
    }
    ts_waiter_wait(&t, AT_BATCHES);
    struct count_ctx c;
    ts_read(s, read_count, &c);
    assert_int_equal(c.rows, AT_BATCHES * AT_BATCH);
    op_store_close(s);
    ts_waiter_fini(&t);
}

/* ---- backpressure ------------------------------------------------------ */

/* A done callback that parks the writer until released, so that the queue
 * behind it can be filled deterministically. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool entered, open;
};

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
}

static void gate_fini(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
}

static void gate_pass(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

static void gate_done(struct op_store_write *w)
{
    gate_pass(w->ctx);
}

static void test_queue_cap_ebusy(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_reading r[10];
    for (int i = 0; i < 10; i++)
        r[i] = (struct op_reading){ "cap", 3, i, i };
    size_t one = sizeof(struct op_store_write) + 10 * (sizeof(struct op_reading) + 3);
    o.queue_max_bytes = 2 * one + one / 2; /* room for two writes, not three */
    struct op_store *s = ts_open(&o);

    struct gate g;
    gate_init(&g);
    struct op_store_write blocker = { .op = OP_STORE_APPEND, .readings = r, .n = 1,
                                      .done = gate_done, .ctx = &g };
    assert_int_equal(op_store_submit(s, &blocker), OP_OK);
    gate_wait_entered(&g); /* the writer is parked in blocker's done */

    struct ts_waiter t;
    ts_waiter_init(&t);
    struct op_store_write w[4];
    for (int i = 0; i < 4; i++)
        w[i] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = r, .n = 10,
                                        .done = ts_done, .ctx = &t };
    assert_int_equal(op_store_submit(s, &w[0]), OP_OK);
    assert_int_equal(op_store_submit(s, &w[1]), OP_OK);
    assert_int_equal(op_store_submit(s, &w[2]), OP_EBUSY);
    struct op_store_stats st;
    op_store_get_stats(s, &st);
    assert_int_equal(st.queue_bytes, 2 * one);
    assert_int_equal((long)ts_metric("outpost_store_queue_bytes"), (long)(2 * one));

    gate_open(&g);
    ts_waiter_wait(&t, 2); /* w[2] was refused: its done never runs */

    /* A write bigger than the whole cap goes in when the queue is empty,
     * and then nothing else fits until the writer has taken it. */
    struct gate g2;
    gate_init(&g2);
    struct op_store_write blocker2 = { .op = OP_STORE_APPEND, .readings = r, .n = 1,
                                       .done = gate_done, .ctx = &g2 };
    assert_int_equal(op_store_submit(s, &blocker2), OP_OK);
    gate_wait_entered(&g2);
    static struct op_reading big[200];
    for (int i = 0; i < 200; i++)
        big[i] = (struct op_reading){ "big", 3, i, i };
    w[3] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = big, .n = 200,
                                    .done = ts_done, .ctx = &t };
    assert_int_equal(op_store_submit(s, &w[3]), OP_OK);
    assert_int_equal(op_store_submit(s, &w[2]), OP_EBUSY);
    gate_open(&g2);
    ts_waiter_wait(&t, 3);
    assert_int_equal(t.failed, 0);
    op_store_close(s);
    assert_int_equal(t.done, 3);
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"), 2 + 20 + 200);
    gate_fini(&g);
    gate_fini(&g2);
    ts_waiter_fini(&t);
}

static void test_invalid_writes(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_store *s = ts_open(&o);
    struct ts_waiter t;
    ts_waiter_init(&t);
    char long_name[200];
    memset(long_name, 'x', sizeof(long_name));
    struct op_reading ok = { "s", 1, 0, 1 };
    struct op_reading bad[] = {
        { "s", 0, 0, 1 },                    /* empty sensor */
        { NULL, 1, 0, 1 },                   /* no sensor */
        { long_name, sizeof(long_name), 0, 1 }, /* too long */
        { "s", 1, 0, 0.0 / 0.0 },            /* NaN */
        { "s", 1, 0, 1.0 / 0.0 },            /* infinite */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct op_reading two[2] = { ok, bad[i] };
        struct op_store_write w = { .op = OP_STORE_APPEND, .readings = two, .n = 2,
                                    .done = ts_done, .ctx = &t };
        assert_int_equal(op_store_submit(s, &w), OP_EINVAL);
    }
    struct op_store_write w = { .op = OP_STORE_APPEND, .readings = &ok, .n = 0,
                                .done = ts_done, .ctx = &t };
    assert_int_equal(op_store_submit(s, &w), OP_EINVAL); /* empty batch */
    w.n = 1;
    w.done = NULL;
    assert_int_equal(op_store_submit(s, &w), OP_EINVAL); /* no done */
    w = (struct op_store_write){ .op = OP_STORE_DEVICE_PUT, .device_id = "d", .done = ts_done,
                                 .ctx = &t };
    assert_int_equal(op_store_submit(s, &w), OP_EINVAL); /* no status */
    w = (struct op_store_write){ .op = OP_STORE_DEVICE_DELETE, .device_id = "", .done = ts_done,
                                 .ctx = &t };
    assert_int_equal(op_store_submit(s, &w), OP_EINVAL); /* empty id */
    w = (struct op_store_write){ .op = (enum op_store_op)42, .done = ts_done, .ctx = &t };
    assert_int_equal(op_store_submit(s, &w), OP_EINVAL);
    op_store_close(s);
    assert_int_equal(t.done, 0);
    ts_waiter_fini(&t);
}

/* ---- devices ----------------------------------------------------------- */

struct dev_list {
    int n;
    char text[8][128];
};

static int dev_collect(void *ctx, const struct op_device_info *di)
{
    struct dev_list *l = ctx;
    if (l->n < 8)
        snprintf(l->text[l->n], sizeof(l->text[0]), "%s|%s|%s|%lld", di->id, di->status,
                 di->attributes, (long long)di->updated_at);
    l->n++;
    return 0;
}

struct dev_read {
    struct dev_list all, one;
    int list_rc, get_rc, missing_rc;
};

static void dev_read(struct op_store_reader *r, void *ctx)
{
    struct dev_read *d = ctx;
    d->list_rc = op_store_list_devices(r, dev_collect, &d->all);
    d->get_rc = op_store_get_device(r, "cam-1", dev_collect, &d->one);
    d->missing_rc = op_store_get_device(r, "nope", dev_collect, &d->one);
}

static void test_devices(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_store *s = ts_open(&o);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_PUT, "cam-2", "online", NULL, 10), OP_OK);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_PUT, "cam-1", "online", "{\"fw\":\"1.2\"}", 11),
                     OP_OK);
    /* STATUS keeps the attributes; on a new device it creates it with {}. */
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_STATUS, "cam-1", "offline", NULL, 12), OP_OK);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_STATUS, "cam-0", "idle", NULL, 13), OP_OK);
    /* PUT replaces both. */
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_PUT, "cam-2", "busy", "{\"a\":1}", 14), OP_OK);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_PUT, "gone", "x", NULL, 15), OP_OK);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_DELETE, "gone", NULL, NULL, 0), OP_OK);
    assert_int_equal(ts_device(s, OP_STORE_DEVICE_DELETE, "gone", NULL, NULL, 0), OP_ENOTFOUND);

    struct dev_read d = { 0 };
    ts_read(s, dev_read, &d);
    assert_int_equal(d.list_rc, 3);
    assert_int_equal(d.all.n, 3);
    assert_string_equal(d.all.text[0], "cam-0|idle|{}|13");
    assert_string_equal(d.all.text[1], "cam-1|offline|{\"fw\":\"1.2\"}|12");
    assert_string_equal(d.all.text[2], "cam-2|busy|{\"a\":1}|14");
    assert_int_equal(d.get_rc, 1);
    assert_string_equal(d.one.text[0], "cam-1|offline|{\"fw\":\"1.2\"}|12");
    assert_int_equal(d.missing_rc, OP_ENOTFOUND);
    op_store_close(s);
}

/* A missing device in a group is that write's outcome only. */
static void test_device_notfound_in_group(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_store *s = ts_open(&o);
    struct gate g;
    gate_init(&g);
    struct op_reading r = { "x", 1, 1, 1 };
    struct op_store_write blocker = { .op = OP_STORE_APPEND, .readings = &r, .n = 1,
                                      .done = gate_done, .ctx = &g };
    assert_int_equal(op_store_submit(s, &blocker), OP_OK);
    gate_wait_entered(&g);

    struct ts_waiter t;
    ts_waiter_init(&t);
    struct op_store_write w[3] = {
        { .op = OP_STORE_DEVICE_PUT, .device_id = "d1", .status = "on", .done = ts_done,
          .ctx = &t },
        { .op = OP_STORE_DEVICE_DELETE, .device_id = "d9", .done = ts_done, .ctx = &t },
        { .op = OP_STORE_APPEND, .readings = &r, .n = 1, .done = ts_done, .ctx = &t },
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal(op_store_submit(s, &w[i]), OP_OK);
    gate_open(&g);
    ts_waiter_wait(&t, 3);
    assert_int_equal(w[0].rc, OP_OK);
    assert_int_equal(w[1].rc, OP_ENOTFOUND);
    assert_int_equal(w[2].rc, OP_OK);
    op_store_close(s);
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM devices"), 1);
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"), 2);
    gate_fini(&g);
    ts_waiter_fini(&t);
}

/* ---- close ------------------------------------------------------------- */

struct closer {
    struct op_store *s;
};

static void *close_main(void *arg)
{
    op_store_close(((struct closer *)arg)->s);
    return NULL;
}

struct read_gate {
    struct op_store_read_job job;
    struct gate *g;
    _Atomic int *ran;
};

static void read_gate_fn(struct op_store_reader *r, struct op_store_read_job *job)
{
    (void)r;
    struct read_gate *rg = (struct read_gate *)job;
    if (rg->g)
        gate_pass(rg->g);
    else
        atomic_fetch_add(rg->ran, 1);
}

static bool store_not_ready(void *ctx)
{
    return !op_store_ready(ctx);
}

static void test_close_drains(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    o.readers = 1;
    struct op_store *s = ts_open(&o);
    struct gate wg, rg;
    gate_init(&wg);
    gate_init(&rg);
    struct op_reading r[5];
    for (int i = 0; i < 5; i++)
        r[i] = (struct op_reading){ "drain", 5, i, i };

    /* Park the writer and the only reader, then queue work behind them. */
    struct op_store_write blocker = { .op = OP_STORE_APPEND, .readings = r, .n = 1,
                                      .done = gate_done, .ctx = &wg };
    assert_int_equal(op_store_submit(s, &blocker), OP_OK);
    _Atomic int ran = 0;
    struct read_gate rblock = { .job = { .fn = read_gate_fn }, .g = &rg };
    assert_int_equal(op_store_read_submit(s, &rblock.job), OP_OK);
    gate_wait_entered(&wg);
    gate_wait_entered(&rg);

    struct ts_waiter t;
    ts_waiter_init(&t);
    struct op_store_write w[20];
    for (int i = 0; i < 20; i++) {
        w[i] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = r, .n = 5,
                                        .done = ts_done, .ctx = &t };
        assert_int_equal(op_store_submit(s, &w[i]), OP_OK);
    }
    struct read_gate jobs[10];
    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct read_gate){ .job = { .fn = read_gate_fn }, .ran = &ran };
        assert_int_equal(op_store_read_submit(s, &jobs[i].job), OP_OK);
    }

    struct closer c = { s };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, close_main, &c), 0);
    assert_true(ts_poll(store_not_ready, s, 5000));
    /* Closing: new work is refused while the queued work still runs. */
    struct op_store_write late = { .op = OP_STORE_APPEND, .readings = r, .n = 1,
                                   .done = ts_done, .ctx = &t };
    assert_int_equal(op_store_submit(s, &late), OP_ESHUTDOWN);
    struct read_gate late_job = { .job = { .fn = read_gate_fn }, .ran = &ran };
    assert_int_equal(op_store_read_submit(s, &late_job.job), OP_ESHUTDOWN);

    gate_open(&wg);
    gate_open(&rg);
    pthread_join(th, NULL);
    assert_int_equal(t.done, 20);
    assert_int_equal(t.failed, 0);
    assert_int_equal(atomic_load(&ran), 10);
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"), 1 + 20 * 5);
    gate_fini(&wg);
    gate_fini(&rg);
    ts_waiter_fini(&t);
}

/* Both sync modes persist across close and reopen (power loss is not
 * simulated; FULL differs only in when the WAL is fsynced). */
static void test_sync_modes(void **state)
{
    for (int mode = OP_SYNC_FULL; mode <= OP_SYNC_NORMAL; mode++) {
        struct op_store_opts o = ts_opts(*state);
        o.sync_mode = mode;
        struct op_store *s = ts_open(&o);
        assert_int_equal(ts_append(s, "sync", mode * 100, 1, 0, 100), OP_OK);
        op_store_close(s);
    }
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"), 200);
    assert_int_equal(ts_sql_int(*state, "SELECT count FROM sensors WHERE name = 'sync'"), 200);
    /* Reopening twice in one process re-registers the metrics harmlessly. */
    assert_true(ts_metric("outpost_store_commits_total") >= 2);
}

/* The writer checkpoints the WAL itself (after the done callbacks): the
 * WAL stays near its 16 MiB threshold and the pages reach the database. */
static void test_wal_checkpointed(void **state)
{
    struct op_store_opts o = ts_opts(*state);
    struct op_store *s = ts_open(&o);
    for (int i = 0; i < 200; i++)
        assert_int_equal(ts_append(s, "wal", i * 5000, 1, 0, 5000), OP_OK);
    char path[600];
    struct stat db, wal;
    snprintf(path, sizeof(path), "%s/outpost.db", (char *)*state);
    assert_int_equal(stat(path, &db), 0);
    snprintf(path, sizeof(path), "%s/outpost.db-wal", (char *)*state);
    assert_int_equal(stat(path, &wal), 0);
    /* A million log rows are about 30 MiB of pages through the WAL (the
     * file itself stays small: compaction frees log pages for reuse). */
    assert_true(db.st_size > 0);
    assert_true(wal.st_size < 20 << 20);
    op_store_close(s);
    assert_int_equal(ts_sql_int(*state, "SELECT count(*) FROM readings"), 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrates_schema_1, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_creates_schema, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_rejects_bad_opts, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_group_commit_concurrent, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_batches_are_atomic, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_queue_cap_ebusy, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_invalid_writes, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_devices, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_notfound_in_group, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_close_drains, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_sync_modes, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_wal_checkpointed, ts_setup_dir, ts_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
