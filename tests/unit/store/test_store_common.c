/* Helpers for the store's unit tests; see test_store_common.h. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "outpost/core.h"
#include "test_store_common.h"
#include "test_tmp.h"

char *ts_tmpdir(void)
{
    return tu_tmpdir("store");
}

void ts_rmrf(char *dir)
{
    tu_rmrf(dir);
}

struct op_store_opts ts_opts(const char *dir)
{
    return (struct op_store_opts){
        .dir = dir,
        .sync_mode = OP_SYNC_NORMAL,
        .queue_max_bytes = 1 << 20,
        .readers = 2,
    };
}

struct op_store *ts_open(const struct op_store_opts *o)
{
    struct op_store *s = NULL;
    assert_int_equal(op_store_open(&s, o), OP_OK);
    assert_non_null(s);
    assert_true(op_store_ready(s));
    return s;
}

void ts_waiter_init(struct ts_waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

void ts_waiter_fini(struct ts_waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
}

void ts_waiter_wait(struct ts_waiter *w, long n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&w->mu);
    while (w->done < n) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &dl) == ETIMEDOUT)
            break;
    }
    long got = w->done;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(got, n);
}

void ts_done(struct op_store_write *w)
{
    struct ts_waiter *t = w->ctx;
    pthread_mutex_lock(&t->mu);
    t->done++;
    if (w->rc != OP_OK)
        t->failed++;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

int ts_write(struct op_store *s, struct op_store_write *w)
{
    struct ts_waiter t;
    ts_waiter_init(&t);
    w->done = ts_done;
    w->ctx = &t;
    int rc;
    while ((rc = op_store_submit(s, w)) == OP_EBUSY)
        sched_yield();
    if (rc == OP_OK) {
        ts_waiter_wait(&t, 1);
        rc = w->rc;
    }
    ts_waiter_fini(&t);
    return rc;
}

int ts_append(struct op_store *s, const char *sensor, int64_t ts0, int64_t dt, double v0, size_t n)
{
    struct op_reading *r = op_calloc(n, sizeof(*r));
    assert_non_null(r);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct op_reading){ sensor, (uint32_t)strlen(sensor), ts0 + (int64_t)i * dt,
                                    v0 + (double)i };
    struct op_store_write w = { .op = OP_STORE_APPEND, .readings = r, .n = n };
    int rc = ts_write(s, &w);
    op_free(r);
    return rc;
}

int ts_device(struct op_store *s, enum op_store_op op, const char *id, const char *status,
              const char *attributes, int64_t updated_at)
{
    struct op_store_write w = { .op = op, .device_id = id, .status = status,
                                .attributes = attributes, .updated_at = updated_at };
    return ts_write(s, &w);
}

struct read_call {
    struct op_store_read_job job;
    ts_read_fn *fn;
    void *ctx;
    struct ts_waiter t;
};

static void read_trampoline(struct op_store_reader *r, struct op_store_read_job *job)
{
    struct read_call *c = (struct read_call *)job;
    c->fn(r, c->ctx);
    pthread_mutex_lock(&c->t.mu);
    c->t.done++;
    pthread_cond_broadcast(&c->t.cond);
    pthread_mutex_unlock(&c->t.mu);
}

void ts_read(struct op_store *s, ts_read_fn *fn, void *ctx)
{
    struct read_call c = { .job = { .fn = read_trampoline }, .fn = fn, .ctx = ctx };
    ts_waiter_init(&c.t);
    assert_int_equal(op_store_read_submit(s, &c.job), OP_OK);
    ts_waiter_wait(&c.t, 1);
    ts_waiter_fini(&c.t);
}

static sqlite3 *db_open(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/outpost.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    /* Readings in chunks are visible to SQL only through this table. */
    assert_int_equal(op_store_sql_register(db), OP_OK);
    return db;
}

int64_t ts_sql_int(const char *dir, const char *sql)
{
    sqlite3 *db = db_open(dir);
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void ts_sql_text(const char *dir, const char *sql, char *buf, size_t len)
{
    sqlite3 *db = db_open(dir);
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

double ts_metric(const char *series)
{
    struct op_buf b;
    op_buf_init(&b, 1 << 20);
    assert_int_equal(op_metrics_render(&b), OP_OK);
    double v = 0;
    size_t n = strlen(series);
    for (const char *p = b.data; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            assert_int_equal(op_parse_double(p + n + 1, (size_t)(eol - p - n - 1), &v), OP_OK);
            break;
        }
        p = eol ? eol + 1 : NULL;
    }
    op_buf_fini(&b);
    return v;
}

bool ts_poll(bool (*cond)(void *ctx), void *ctx, int ms)
{
    for (int i = 0; i <= ms / 2; i++) {
        if (cond(ctx))
            return true;
        struct timespec d = { 0, 2 * 1000 * 1000 };
        nanosleep(&d, NULL);
    }
    return cond(ctx);
}

int ts_setup_dir(void **state)
{
    *state = ts_tmpdir();
    return 0;
}

int ts_teardown_dir(void **state)
{
    ts_rmrf(*state);
    op_metrics_reset();
    return 0;
}
