/*
 * Helpers shared by the store's unit tests: a temporary data directory,
 * opening a store with test defaults, waiting for writes and read jobs, and
 * a second SQLite connection to check what really reached the file.
 */
#ifndef TEST_STORE_COMMON_H
#define TEST_STORE_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "outpost/err.h"
#include "outpost/store.h"

/* A fresh directory under $TMPDIR (or /tmp); ts_rmrf removes it. */
char *ts_tmpdir(void);
void ts_rmrf(char *dir);

/* cmocka setup/teardown for tests whose state is just such a directory;
 * teardown also empties the metrics registry. */
int ts_setup_dir(void **state);
int ts_teardown_dir(void **state);

/* Test defaults: sync NORMAL, 1 MiB queue, 2 readers, retention off. */
struct op_store_opts ts_opts(const char *dir);
struct op_store *ts_open(const struct op_store_opts *o);

/* Counts done callbacks; wait blocks until n have arrived (or fails the
 * test after 20 s). */
struct ts_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    long done;
    long failed; /* done with rc != OP_OK */
};
void ts_waiter_init(struct ts_waiter *w);
void ts_waiter_fini(struct ts_waiter *w);
void ts_waiter_wait(struct ts_waiter *w, long n);
/* A done callback for writes whose ctx is a struct ts_waiter. */
void ts_done(struct op_store_write *w);

/* Submits w (retrying on OP_EBUSY) and waits for its done; returns w->rc. */
int ts_write(struct op_store *s, struct op_store_write *w);
/* Appends n readings of one sensor: ts = ts0 + i * dt, value = v0 + i. */
int ts_append(struct op_store *s, const char *sensor, int64_t ts0, int64_t dt, double v0, size_t n);
int ts_device(struct op_store *s, enum op_store_op op, const char *id, const char *status,
              const char *attributes, int64_t updated_at);

/* Runs fn(reader, ctx) on a reader thread and waits for it. */
typedef void ts_read_fn(struct op_store_reader *r, void *ctx);
void ts_read(struct op_store *s, ts_read_fn *fn, void *ctx);

/* The first column of the first row of sql, on a new connection to the
 * database in dir; -1 if no row. */
int64_t ts_sql_int(const char *dir, const char *sql);
/* Same for a text result, copied into buf. */
void ts_sql_text(const char *dir, const char *sql, char *buf, size_t len);

/* The value of one series in op_metrics_render's output (0 if absent). */
double ts_metric(const char *series);

/* Polls cond(ctx) every 2 ms for up to ms milliseconds. */
bool ts_poll(bool (*cond)(void *ctx), void *ctx, int ms);

#endif
