/*
 * Tests of src/store/store_sql.c, the `readings` virtual table: over a
 * database made here (log records of several sizes written with
 * store__log_put and chunks encoded with store__chunk_encode) it yields
 * every reading exactly once with its exact sensor, ts, seq and value; it
 * is read-only and eponymous-only; a damaged chunk or log record fails the
 * query with an error naming it instead of yielding wrong rows; a scan is
 * one snapshot while another connection moves the log into chunks; a
 * failed allocation fails the query cleanly; the loadable
 * extension gives a plain connection the same table; and on a real store
 * the writer compacted, readings still reads back whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "outpost/core.h"
#include "store_int.h"
#include "test_store_common.h"

/* The tables of schema version 7 that readings reads. */
static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE log(seq_lo INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY, sensor_id INTEGER NOT NULL,"
    " ts_lo INTEGER NOT NULL, ts_hi INTEGER NOT NULL, n INTEGER NOT NULL,"
    " points BLOB NOT NULL, seqs BLOB NOT NULL);"
    "CREATE INDEX chunks_lo ON chunks(sensor_id, ts_lo, ts_hi);"
    "CREATE INDEX chunks_hi ON chunks(sensor_id, ts_hi, ts_lo);"
    "CREATE TABLE sensors(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, count, first_ts,"
    " last_ts, last_value, derived, span);"
    "INSERT INTO sensors(id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');";

#define NSENSORS 3
#define NREAD    6000
/* Readings with seq <= this are in chunks, the rest in the log. */
#define CHUNKED 5000
#define TS0     1732200000000
/* The log's records, by seq: sizes that put single readings next to a
 * record's edges and bigger ones between them; the last takes the rest. */
static const int64_t log_sizes[] = { 1, 7, 300, 1, 2, 500 };
#define NLOG_RECORDS 7
/* The seq_lo of the record test_damaged_log_record_fails damages. */
#define DAMAGED_LO (CHUNKED + 1 + 1 + 7)

struct reading {
    int64_t sensor, ts, seq;
    double v;
};

struct fixture {
    char *dir;
    sqlite3 *db;
    struct reading want[NREAD]; /* by seq: want[i].seq == i + 1 */
};

/* Values the codec stores in its different ways (decimals, integers,
 * extremes, arbitrary bit patterns), every one of which must come back bit
 * for bit; timestamps irregular, with runs of equal ones. */
static double value_of(int i)
{
    switch (i % 6) {
    case 0:
        return 20.0 + (i % 100) * 0.1;
    case 1:
        return (double)(i / 6);
    case 2:
        return i % 12 == 2 ? -1e300 : 5e-324;
    case 3:
        /* Not -0.0: a REAL column of the log keeps it as 0.0. */
        return 1e15 + 0.5;
    default: {
        uint64_t bits = 0x3ff0000000000000ull ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull >> 12);
        double d;
        memcpy(&d, &bits, sizeof(d));
        return d;
    }
    }
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
}

static void chunk_add(sqlite3 *db, struct op_codec_ctx *codec, int64_t sensor,
                      const struct store_pts *p, size_t at, size_t n)
{
    struct store_chunk_buf b = { 0 };
    assert_int_equal(store__chunk_encode(codec, p, at, n, &b), OP_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO chunks(sensor_id, ts_lo, ts_hi, n, points,"
                                        " seqs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, sensor);
    sqlite3_bind_int64(st, 2, p->ts[at]);
    sqlite3_bind_int64(st, 3, p->ts[at + n - 1]);
    sqlite3_bind_int64(st, 4, (int64_t)n);
    sqlite3_bind_blob(st, 5, b.data, (int)b.points_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, b.data + b.points_len, (int)b.seqs_len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    op_free(b.data);
}

/* Each sensor's readings with seq in [lo, hi] as chunks of up to
 * STORE_CHUNK_MAX, in (ts, seq) order as compaction writes them. */
static void chunks_add(sqlite3 *db, const struct reading *want, int64_t lo, int64_t hi)
{
    struct op_codec_ctx *codec = NULL;
    assert_int_equal(op_codec_ctx_create(&codec), OP_OK);
    for (int64_t s = 1; s <= NSENSORS; s++) {
        struct store_pts p = { 0 };
        /* ts rises with seq within a sensor (see fixture_make), so seq
         * order is (ts, seq) order. */
        for (int64_t q = lo; q <= hi; q++) {
            const struct reading *r = &want[q - 1];
            if (r->sensor == s)
                assert_int_equal(store__pts_push(&p, r->ts, r->v, r->seq), OP_OK);
        }
        for (size_t at = 0; at < p.n; at += STORE_CHUNK_MAX)
            chunk_add(db, codec, s, &p, at,
                      p.n - at < STORE_CHUNK_MAX ? p.n - at : STORE_CHUNK_MAX);
        store__pts_free(&p);
    }
    op_codec_ctx_destroy(codec);
}

/* The readings with seq in [lo, hi] as log records of log_sizes' sizes,
 * inserted last first so that only ORDER BY seq_lo, not the insertion
 * order, puts them in seq order. */
static void log_add(sqlite3 *db, const struct reading *want, int64_t lo, int64_t hi)
{
    int64_t los[NLOG_RECORDS + 1];
    size_t nrec = 0;
    for (int64_t q = lo; q <= hi; nrec++) {
        assert_true(nrec < NLOG_RECORDS);
        los[nrec] = q;
        q += nrec < sizeof(log_sizes) / sizeof(log_sizes[0]) ? log_sizes[nrec] : hi - q + 1;
    }
    assert_int_equal(nrec, NLOG_RECORDS);
    los[nrec] = hi + 1;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO log(seq_lo, n, data) VALUES (?1, ?2, ?3)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    uint8_t *data = op_malloc((size_t)(hi - lo + 1) * STORE_LOG_BYTES);
    assert_non_null(data);
    for (size_t k = nrec; k-- > 0;) {
        int64_t n = los[k + 1] - los[k];
        for (int64_t i = 0; i < n; i++) {
            const struct reading *r = &want[los[k] + i - 1];
            store__log_put(data + i * STORE_LOG_BYTES, r->sensor, r->ts, r->v);
        }
        sqlite3_bind_int64(st, 1, los[k]);
        sqlite3_bind_int64(st, 2, n);
        sqlite3_bind_blob(st, 3, data, (int)(n * STORE_LOG_BYTES), SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    op_free(data);
    sqlite3_finalize(st);
}

static sqlite3 *db_open(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/outpost.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    /* Sensors in an irregular interleaving, as commits mix them; a few
     * readings share their predecessor's ts. */
    int64_t ts[NSENSORS + 1] = { 0, TS0, TS0 - 5000, TS0 + 123 };
    for (int i = 0; i < NREAD; i++) {
        struct reading *r = &f->want[i];
        r->sensor = 1 + (i * 7 + i / 5) % NSENSORS;
        r->seq = i + 1;
        ts[r->sensor] += i % 9 == 4 ? 0 : 1000 + i % 17;
        r->ts = ts[r->sensor];
        r->v = value_of(i);
    }
    f->db = db_open(f->dir);
    exec(f->db, schema);
    exec(f->db, "BEGIN");
    chunks_add(f->db, f->want, 1, CHUNKED);
    log_add(f->db, f->want, CHUNKED + 1, NREAD);
    exec(f->db, "COMMIT");
    assert_int_equal(op_store_sql_register(f->db), OP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sqlite3_close(f->db);
    ts_rmrf(f->dir);
    op_free(f);
    return 0;
}

static int64_t sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Every row of readings, by seq, is want's reading, bit for bit. */
static void assert_reads_back(sqlite3 *db, const struct reading *want, int n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT sensor_id, ts, seq, value, typeof(value), rowid"
                                        " FROM readings ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int i = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        assert_true(i < n);
        const struct reading *r = &want[i++];
        assert_int_equal(sqlite3_column_int64(st, 0), r->sensor);
        assert_int_equal(sqlite3_column_int64(st, 1), r->ts);
        assert_int_equal(sqlite3_column_int64(st, 2), r->seq);
        double v = sqlite3_column_double(st, 3);
        assert_memory_equal(&v, &r->v, sizeof(v));
        assert_string_equal((const char *)sqlite3_column_text(st, 4), "real");
        assert_int_equal(sqlite3_column_int64(st, 5), r->seq);
    }
    assert_int_equal(rc, SQLITE_DONE);
    assert_int_equal(i, n);
    sqlite3_finalize(st);
}

static void test_reads_log_and_chunks(void **state)
{
    struct fixture *f = *state;
    assert_true(sql_int(f->db, "SELECT count(*) FROM chunks") > NSENSORS);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM log"), NLOG_RECORDS);
    assert_int_equal(sql_int(f->db, "SELECT sum(n) FROM log"), NREAD - CHUNKED);
    assert_reads_back(f->db, f->want, NREAD);

    /* As the tests query it: joined with sensors, filtered on any column. */
    int64_t b = 0, after = 0;
    for (int i = 0; i < NREAD; i++) {
        b += f->want[i].sensor == 2;
        after += f->want[i].seq > 4321;
    }
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM readings r JOIN sensors s"
                                    " ON s.id = r.sensor_id WHERE s.name = 'b'"),
                     b);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM readings WHERE seq > 4321"), after);
    assert_int_equal(sql_int(f->db, "SELECT count(DISTINCT seq) FROM readings"), NREAD);
    /* A self-join runs two cursors at once. */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM readings x JOIN readings y"
                                    " ON y.seq = x.seq + 1 WHERE x.seq > 5900"),
                     NREAD - 5900 - 1);
}

static void test_read_only_and_eponymous(void **state)
{
    struct fixture *f = *state;
    static const char *const refused[] = {
        "DELETE FROM readings",
        "INSERT INTO readings VALUES (1, 2, 3, 4.0)",
        "UPDATE readings SET value = 0",
        "CREATE VIRTUAL TABLE r2 USING readings",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *err = NULL;
        assert_int_not_equal(sqlite3_exec(f->db, refused[i], NULL, NULL, &err), SQLITE_OK);
        sqlite3_free(err);
    }
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM readings"), NREAD);
}

/* The query fails with SQLITE_CORRUPT and a message containing named (the
 * damaged chunk or record). */
static void assert_scan_fails_naming(sqlite3 *db, const char *what, const char *named)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT sensor_id, ts, seq, value FROM readings", -1, &st, NULL),
        SQLITE_OK);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_CORRUPT || !strstr(sqlite3_errmsg(db), named))
        fail_msg("%s: rc %d, %s", what, rc, sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

/* The damaged chunk of test_damaged_chunk_fails. */
static void assert_scan_fails(sqlite3 *db, const char *what)
{
    assert_scan_fails_naming(db, what, "chunk 2 of sensor 1 is damaged");
}

static void test_damaged_chunk_fails(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(sql_int(f->db, "SELECT sensor_id FROM chunks WHERE id = 2"), 1);
    static const char *const damage[] = {
        "UPDATE chunks SET points = zeroblob(length(points)) WHERE id = 2",
        "UPDATE chunks SET seqs = zeroblob(length(seqs)) WHERE id = 2",
        "UPDATE chunks SET points = substr(points, 1, length(points) - 1) WHERE id = 2",
        "UPDATE chunks SET seqs = x'' WHERE id = 2",
        /* Frames that check out but are another chunk's. */
        "UPDATE chunks SET points = (SELECT points FROM chunks WHERE id = 1) WHERE id = 2",
        "UPDATE chunks SET seqs = (SELECT seqs FROM chunks WHERE id = 3) WHERE id = 2",
        /* The row disagrees with its frames. */
        "UPDATE chunks SET n = n - 1 WHERE id = 2",
        "UPDATE chunks SET ts_hi = ts_hi - 1 WHERE id = 2",
        "UPDATE chunks SET ts_lo = ts_lo + 1 WHERE id = 2",
    };
    for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        exec(f->db, "SAVEPOINT d");
        exec(f->db, damage[i]);
        assert_scan_fails(f->db, damage[i]);
        exec(f->db, "ROLLBACK TO d; RELEASE d");
    }
    /* One flipped bit in the middle of a frame: the checksum catches it. */
    exec(f->db, "UPDATE chunks SET points = substr(points, 1, length(points) / 2)"
                " || (CASE WHEN substr(points, length(points) / 2 + 1, 1) = x'00'"
                " THEN x'01' ELSE x'00' END) || substr(points, length(points) / 2 + 2)"
                " WHERE id = 2");
    assert_scan_fails(f->db, "flipped bit");
}

/* A record whose data is not n readings of STORE_LOG_BYTES: reading it as
 * n would run past the blob or leave part of it unread, so the scan fails
 * naming the record's seq_lo instead. */
static void test_damaged_log_record_fails(void **state)
{
    struct fixture *f = *state;
    char named[64];
    snprintf(named, sizeof(named), "log record with seq_lo %d is damaged", DAMAGED_LO);
    assert_int_equal(sql_int(f->db, "SELECT n FROM log WHERE seq_lo = " STORE_STR(DAMAGED_LO)),
                     300);
#define AT_DAMAGED " WHERE seq_lo = " STORE_STR(DAMAGED_LO)
    static const char *const damage[] = {
        "UPDATE log SET data = substr(data, 1, length(data) - 1)" AT_DAMAGED,
        "UPDATE log SET data = data || x'00'" AT_DAMAGED,
        /* Whole readings too few or too many. */
        "UPDATE log SET data = substr(data, 1, length(data) - 24)" AT_DAMAGED,
        "UPDATE log SET n = n + 1" AT_DAMAGED,
        "UPDATE log SET data = x''" AT_DAMAGED,
        "UPDATE log SET data = x'', n = 0" AT_DAMAGED,
        "UPDATE log SET n = -1" AT_DAMAGED,
        /* n * STORE_LOG_BYTES wraps around to the data's length. */
        "UPDATE log SET n = n + (1 << 61)" AT_DAMAGED,
    };
#undef AT_DAMAGED
    for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        exec(f->db, "SAVEPOINT d");
        exec(f->db, damage[i]);
        assert_scan_fails_naming(f->db, damage[i], named);
        exec(f->db, "ROLLBACK TO d; RELEASE d");
    }
    assert_reads_back(f->db, f->want, NREAD);
}

static void test_not_an_outpost_database(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(op_store_sql_register(db), OP_OK);
    char *err = NULL;
    assert_int_not_equal(sqlite3_exec(db, "SELECT * FROM readings", NULL, NULL, &err), SQLITE_OK);
    assert_non_null(strstr(err, "no such table"));
    sqlite3_free(err);
    sqlite3_close(db);
}

/* Another connection (as the writer compacting) moves every log row into a
 * chunk while a scan is in the chunks: the scan still yields every reading
 * once, from the snapshot it started in, not the moved ones twice or none. */
static void test_scan_is_one_snapshot(void **state)
{
    struct fixture *f = *state;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT seq FROM readings", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t seen = 1, sum = sqlite3_column_int64(st, 0);

    sqlite3 *w = db_open(f->dir);
    exec(w, "BEGIN");
    chunks_add(w, f->want, CHUNKED + 1, NREAD);
    exec(w, "DELETE FROM log");
    exec(w, "COMMIT");
    sqlite3_close(w);

    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        seen++;
        sum += sqlite3_column_int64(st, 0);
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(seen, NREAD);
    assert_int_equal(sum, (int64_t)NREAD * (NREAD + 1) / 2);
    /* The next scan sees the moved readings in their chunks. */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM log"), 0);
    assert_reads_back(f->db, f->want, NREAD);
}

/* Every allocation of the scan failing in turn: the query fails with
 * SQLITE_NOMEM (never a wrong count), and nothing leaks (ASan). */
static void test_allocation_failures(void **state)
{
    struct fixture *f = *state;
    bool passed = false;
    for (long n = 1; n < 100 && !passed; n++) {
        sqlite3_stmt *st = NULL;
        op_alloc_fail_after(n);
        int rc = sqlite3_prepare_v2(f->db, "SELECT count(*) FROM readings", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            assert_int_equal(sqlite3_column_int64(st, 0), NREAD);
            passed = true;
        } else if (rc != SQLITE_NOMEM) {
            fail_msg("allocation %ld failing: rc %d, %s", n, rc, sqlite3_errmsg(f->db));
        }
        op_alloc_fail_after(0);
        sqlite3_finalize(st);
    }
    assert_true(passed);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM readings"), NREAD);
}

/* build/outpost_sqlite.so gives a connection that did not register the
 * module the same table (sanitizer builds make no extension). */
static void test_loadable_extension(void **state)
{
#ifdef OUTPOST_SQLITE_EXT
    struct fixture *f = *state;
    sqlite3 *db = db_open(f->dir);
    char *err = NULL;
    assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, NULL),
                     SQLITE_OK);
    if (sqlite3_load_extension(db, OUTPOST_SQLITE_EXT, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", OUTPOST_SQLITE_EXT, err);
    assert_reads_back(db, f->want, NREAD);
    exec(db, "UPDATE chunks SET points = zeroblob(length(points)) WHERE id = 2");
    assert_scan_fails(db, "through the extension");
    sqlite3_close(db);
#else
    (void)state;
    skip();
#endif
}

/* ---- a real store ---------------------------------------------------- */

static bool compacted_9000(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_store_compacted_readings_total") >= 9000;
}

/* Readings the writer compacted into chunks and readings still in its log
 * read back whole through ts_sql_int, which registers the table. */
static void test_store_compacted_and_log(void **state)
{
    const char *dir = *state;
    struct op_store_opts o = ts_opts(dir);
    struct op_store *s = ts_open(&o);
    if (ts_sql_int(dir, "SELECT count(*) FROM sqlite_master WHERE name = 'chunks'") != 1) {
        op_store_close(s);
        skip(); /* the database is not laid out as log + chunks */
    }
    /* value = 0.5 + (ts - TS0) / 1000 for every reading of every sensor. */
    static const char *const names[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++)
        assert_int_equal(ts_append(s, names[i], TS0, 1000, 0.5, 3000), OP_OK);
    /* The writer compacts the log after 2 s of idleness. */
    assert_true(ts_poll(compacted_9000, NULL, 20000));
    assert_int_equal(ts_append(s, "a", TS0 + 3000000, 1000, 3000.5, 50), OP_OK);
    op_store_close(s);

    assert_true(ts_sql_int(dir, "SELECT count(*) FROM chunks") >= 3);
    assert_true(ts_sql_int(dir, "SELECT coalesce(sum(n), 0) FROM log") > 0);
    assert_int_equal(ts_sql_int(dir, "SELECT count(*) FROM readings"), 9050);
    assert_int_equal(ts_sql_int(dir, "SELECT count(DISTINCT seq) FROM readings"), 9050);
    assert_int_equal(ts_sql_int(dir, "SELECT count(DISTINCT sensor_id || ':' || ts)"
                                     " FROM readings"),
                     9050);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM readings WHERE value = 0.5 + (ts - %lld) / 1e3", (long long)TS0);
    assert_int_equal(ts_sql_int(dir, sql), 9050);
    assert_int_equal(ts_sql_int(dir, "SELECT count(*) FROM readings r JOIN sensors s"
                                     " ON s.id = r.sensor_id WHERE s.name = 'a'"),
                     3050);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_log_and_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_and_eponymous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_chunk_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_log_record_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_is_one_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loadable_extension, setup, teardown),
        cmocka_unit_test(test_not_an_outpost_database),
        cmocka_unit_test_setup_teardown(test_store_compacted_and_log, ts_setup_dir,
                                        ts_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
