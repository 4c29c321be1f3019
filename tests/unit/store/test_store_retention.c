/*
 * Tests of src/store/store_retention.c and the deletion half of
 * store_rows.c: retention by age (several bounded steps), by byte quota
 * (oldest by seq), the sensor stats left behind, the metrics, and that seq
 * never goes back after the newest rows were deleted.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "test_store_common.h"

#define DAY_MS (86400LL * 1000)

/* Every sensors row agrees with the readings it describes, and no sensor
 * without readings is left. Returns the number of rows that disagree. */
static int64_t stats_mismatches(const char *dir)
{
    return ts_sql_int(
        dir,
        "SELECT count(*) FROM sensors s WHERE"
        " count != (SELECT count(*) FROM readings WHERE sensor_id = s.id)"
        " OR first_ts IS NOT (SELECT min(ts) FROM readings WHERE sensor_id = s.id)"
        " OR last_ts IS NOT (SELECT max(ts) FROM readings WHERE sensor_id = s.id)"
        " OR last_value IS NOT (SELECT value FROM readings WHERE sensor_id = s.id"
        "   ORDER BY ts DESC, seq DESC LIMIT 1)"
        " OR count <= 0");
}

struct age_wait {
    const char *dir;
    int64_t cutoff;
};

static bool old_rows_gone(void *ctx)
{
    struct age_wait *a = ctx;
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM readings WHERE ts < %lld",
             (long long)a->cutoff);
    return ts_sql_int(a->dir, sql) == 0;
}

static void test_retention_by_age(void **state)
{
    const char *dir = *state;
    int64_t now = op_time_now_ms();
    int64_t old = now - 10 * DAY_MS;
    struct op_store_opts o = ts_opts(dir);
    struct op_store *s = ts_open(&o);
    /* "mix" has old and new readings; "old" only old ones, more than two
     * retention steps' worth, written last so it holds the highest seq. */
    assert_int_equal(ts_append(s, "mix", old, 1, 0, 50), OP_OK);
    assert_int_equal(ts_append(s, "mix", now - 1000, 1, 100, 50), OP_OK);
    assert_int_equal(ts_append(s, "new", now - 500, 1, 0, 10), OP_OK);
    assert_int_equal(ts_append(s, "old", old, 1, 0, 12000), OP_OK);
    op_store_close(s);
    int64_t max_seq = ts_sql_int(dir, "SELECT max(seq) FROM readings");

    o.retention_age_ms = DAY_MS;
    o.retention_interval_ms = 10;
    s = ts_open(&o);
    struct age_wait a = { dir, now - DAY_MS };
    assert_true(ts_poll(old_rows_gone, &a, 15000));

    assert_int_equal(ts_sql_int(dir, "SELECT count(*) FROM readings"), 60);
    assert_int_equal(ts_sql_int(dir, "SELECT count(*) FROM sensors WHERE name = 'old'"), 0);
    assert_int_equal(ts_sql_int(dir, "SELECT count FROM sensors WHERE name = 'mix'"), 50);
    assert_int_equal(ts_sql_int(dir, "SELECT first_ts FROM sensors WHERE name = 'mix'"),
                     now - 1000);
    assert_int_equal(stats_mismatches(dir), 0);
    assert_int_equal((long)ts_metric(
                         "outpost_store_retention_deleted_readings_total{reason=\"age\"}"),
                     12050);

    /* The highest seq was deleted; new readings still get higher ones. */
    assert_int_equal(ts_append(s, "new", now, 1, 0, 1), OP_OK);
    assert_true(ts_sql_int(dir, "SELECT max(seq) FROM readings") > max_seq);
    op_store_close(s);
}

static bool age_deleted(void *ctx)
{
    return ts_metric("outpost_store_retention_deleted_readings_total{reason=\"age\"}") >=
           *(double *)ctx;
}

/* Under steady ingest the queue is never empty, so the log always holds
 * the last group's readings when the writer turns to retention; retention
 * must still run (it empties the log itself before deleting). Writes are
 * submitted without waiting, so a group is always queued. */
static void test_retention_under_steady_ingest(void **state)
{
    const char *dir = *state;
    int64_t now = op_time_now_ms();
    struct op_store_opts o = ts_opts(dir);
    o.retention_age_ms = DAY_MS;
    o.retention_interval_ms = 10;
    struct op_store *s = ts_open(&o);
    enum { N = 4000 };
    static struct op_reading rd[N][2];
    static struct op_store_write w[N];
    struct ts_waiter t;
    ts_waiter_init(&t);
    double want = 500;
    long submitted = 0;
    for (long i = 0; i < N; i++) {
        /* An old reading and a new one in every write. */
        rd[i][0] = (struct op_reading){ "steady", 6, now - 10 * DAY_MS + i, 1 };
        rd[i][1] = (struct op_reading){ "steady", 6, now + i, 2 };
        w[i] = (struct op_store_write){ .op = OP_STORE_APPEND, .readings = rd[i], .n = 2,
                                        .done = ts_done, .ctx = &t };
        while (op_store_submit(s, &w[i]) == OP_EBUSY)
            sched_yield();
        submitted++;
        if (i >= 1000 && age_deleted(&want))
            break;
    }
    ts_waiter_wait(&t, submitted);
    assert_int_equal(t.failed, 0);
    /* Retention ran while writes kept coming, not only once they stopped. */
    assert_true(age_deleted(&want));
    op_store_close(s);
    ts_waiter_fini(&t);
    assert_int_equal(stats_mismatches(dir), 0);
}

struct quota_wait {
    struct op_store *s;
    int64_t quota;
};

static bool under_quota(void *ctx)
{
    struct quota_wait *q = ctx;
    struct op_store_stats st;
    op_store_get_stats(q->s, &st);
    return st.db_bytes <= q->quota;
}

static int64_t file_size(const char *dir)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/outpost.db", dir);
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Appends n readings whose values have no pattern for the codec (about 9
 * bytes a reading in chunks), so a few thousand fill a page. */
static void append_noise(struct op_store *s, const char *sensor, int64_t ts0, size_t n)
{
    struct op_reading *r = op_calloc(n, sizeof(*r));
    assert_non_null(r);
    uint64_t x = (uint64_t)ts0 * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        r[i] = (struct op_reading){ sensor, (uint32_t)strlen(sensor), ts0 + (int64_t)i,
                                    (double)(x >> 11) / 9007199254740992.0 };
    }
    struct op_store_write w = { .op = OP_STORE_APPEND, .readings = r, .n = n };
    assert_int_equal(ts_write(s, &w), OP_OK);
    op_free(r);
}

static void test_retention_by_quota(void **state)
{
    const char *dir = *state;
    struct op_store_opts o = ts_opts(dir);
    struct op_store *s = ts_open(&o);
    /* "first" holds only the oldest timestamps and must vanish entirely.
     * "back" is written with falling timestamps, so its last batch (the
     * newest by seq) holds old timestamps: the quota goes by ts, not by
     * commit order, and must delete those before newer readings. */
    append_noise(s, "first", 0, 2000);
    for (int i = 0; i < 10; i++) {
        append_noise(s, "up", i * 4000, 4000);
        append_noise(s, "back", (10 - i) * 4000, 4000);
    }
    op_store_close(s);
    int64_t total = ts_sql_int(dir, "SELECT count(*) FROM readings");
    int64_t max_seq = ts_sql_int(dir, "SELECT max(seq) FROM readings");
    int64_t size_before = file_size(dir);
    assert_int_equal(total, 82000);

    o.retention_bytes = 512 << 10;
    o.retention_interval_ms = 10;
    s = ts_open(&o);
    struct quota_wait q = { s, o.retention_bytes };
    assert_true(ts_poll(under_quota, &q, 15000));

    int64_t left = ts_sql_int(dir, "SELECT count(*) FROM readings");
    assert_true(left > 0 && left < total);
    /* The oldest by ts went: every reading newer than the oldest one left
     * is still there. The series cover [0, 1999], [0, 39999] and
     * [4000, 43999], one reading per ms. */
    int64_t m = ts_sql_int(dir, "SELECT min(ts) FROM readings");
    static const int64_t span[3][2] = { { 0, 1999 }, { 0, 39999 }, { 4000, 43999 } };
    int64_t newer = 0, at_m = 0;
    for (int k = 0; k < 3; k++) {
        int64_t lo = span[k][0] - 1 > m ? span[k][0] - 1 : m;
        newer += span[k][1] > lo ? span[k][1] - lo : 0;
        at_m += m >= span[k][0] && m <= span[k][1];
    }
    assert_true(left >= newer && left <= newer + at_m);
    /* The newest seq held old timestamps: it went, and seq still never
     * goes back (next_seq is kept in meta). */
    assert_true(ts_sql_int(dir, "SELECT max(seq) FROM readings") < max_seq);
    assert_true(ts_sql_int(dir, "SELECT value FROM meta WHERE key = 'next_seq'") > max_seq);
    assert_int_equal(ts_sql_int(dir, "SELECT count(*) FROM sensors WHERE name = 'first'"), 0);
    assert_int_equal(stats_mismatches(dir), 0);
    assert_int_equal(ts_sql_int(dir, "SELECT sum(count) FROM sensors"), left);
    assert_int_equal((long)ts_metric(
                         "outpost_store_retention_deleted_readings_total{reason=\"quota\"}"),
                     total - left);
    assert_int_equal((long)ts_metric(
                         "outpost_store_retention_deleted_readings_total{reason=\"age\"}"),
                     0);
    op_store_close(s);

    /* incremental_vacuum gave the pages back: the file shrank. */
    assert_true(file_size(dir) < size_before);
    assert_true(ts_sql_int(dir, "PRAGMA freelist_count") < 2048);
}

static bool log_empty(void *ctx)
{
    return ts_sql_int(ctx, "SELECT coalesce(sum(n), 0) FROM log") == 0;
}

/* The sensor with the oldest readings has them held in the log (the rules
 * have not seen them): the quota cannot delete those yet, and goes on to
 * the next-oldest sensor's instead of stopping. */
static void test_quota_passes_held_readings(void **state)
{
    const char *dir = *state;
    struct op_store_opts o = ts_opts(dir);
    struct op_store *s = ts_open(&o);
    for (int i = 0; i < 10; i++)
        append_noise(s, "a", 1000000 + i * 10000, 10000);
    assert_true(ts_poll(log_empty, (void *)dir, 20000));
    struct op_store_write put = { .op = OP_STORE_RULE_PUT, .rule_name = "r",
                                  .rule_text = "kind = silence\n", .updated_at = 1 };
    assert_int_equal(ts_write(s, &put), OP_OK);
    struct op_store_write seen = { .op = OP_STORE_RULES_PROGRESS, .cursor = 100000 };
    assert_int_equal(ts_write(s, &seen), OP_OK);
    append_noise(s, "old", 0, 10); /* after the rules' cursor: held in the log */
    append_noise(s, "a", 2000000, 10); /* its stats fix must see these */
    op_store_close(s);

    o.retention_bytes = 256 << 10;
    o.retention_interval_ms = 10;
    s = ts_open(&o);
    struct quota_wait q = { s, o.retention_bytes };
    assert_true(ts_poll(under_quota, &q, 15000));
    op_store_close(s);
    int64_t left = ts_sql_int(dir, "SELECT count FROM sensors WHERE name = 'a'");
    assert_true(left < 100000 + 10);
    assert_int_equal(ts_sql_int(dir, "SELECT count FROM sensors WHERE name = 'old'"), 10);
    assert_int_equal(stats_mismatches(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retention_under_steady_ingest, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_retention_by_age, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_retention_by_quota, ts_setup_dir, ts_teardown_dir),
        cmocka_unit_test_setup_teardown(test_quota_passes_held_readings, ts_setup_dir,
                                        ts_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
