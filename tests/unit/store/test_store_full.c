/*
 * Tests of storage-full handling in src/store/store_writer.c: when the
 * group transaction cannot be written (a file-size limit, a full file
 * system) every write of the group gets OP_ENOSPC, nothing of them is
 * stored, what was committed before stays intact, and writes succeed again
 * once there is room.
 *
 * RLIMIT_FSIZE is set in a forked child so the limit cannot leak into the
 * rest of the suite; the tmpfs variant runs only as root and always
 * unmounts.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "test_store_common.h"

#define BATCH 500

struct fixture {
    char *dir;
    char mnt[600];
    bool mounted;
    struct op_store *s;
};

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    op_store_close(f->s);
    if (f->mounted && umount2(f->mnt, 0) != 0)
        fprintf(stderr, "umount %s: %s\n", f->mnt, strerror(errno));
    ts_rmrf(f->dir);
    op_free(f);
    op_metrics_reset();
    return 0;
}

/* Appends batches until one fails; returns the readings committed before
 * and stores the failing rc. */
static int64_t fill(struct op_store *s, int *rc_out)
{
    int64_t committed = 0;
    for (int i = 0; i < 10000; i++) {
        int rc = ts_append(s, "full", committed, 1, 0, BATCH);
        if (rc != OP_OK) {
            *rc_out = rc;
            return committed;
        }
        committed += BATCH;
    }
    *rc_out = OP_OK;
    return committed;
}

/* The checks in the child exit with a distinct status instead of jumping
 * back into cmocka, which would go on running tests in the child. */
#define CHILD_CHECK(c)                                                          \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #c); \
            exit(__LINE__ % 200 + 2);                                           \
        }                                                                       \
    } while (0)

static int fsize_child(const char *dir)
{
    struct rlimit rl;
    signal(SIGXFSZ, SIG_IGN); /* as op_signals_block does in the daemon */
    CHILD_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
    rlim_t hard = rl.rlim_max;
    rl.rlim_cur = 512 * 1024;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);

    struct op_store_opts o = ts_opts(dir);
    o.sync_mode = OP_SYNC_FULL;
    struct op_store *s = NULL;
    CHILD_CHECK(op_store_open(&s, &o) == OP_OK);
    int rc;
    int64_t committed = fill(s, &rc);
    CHILD_CHECK(rc == OP_ENOSPC);
    CHILD_CHECK(committed > 0);
    CHILD_CHECK(ts_metric("outpost_store_commit_errors_total{reason=\"full\"}") >= 1);
    CHILD_CHECK(op_store_ready(s));
    /* Still full: fails again, cleanly. */
    CHILD_CHECK(ts_append(s, "full", committed, 1, 0, BATCH) == OP_ENOSPC);

    rl.rlim_cur = hard;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    CHILD_CHECK(ts_append(s, "full", committed, 1, 0, BATCH) == OP_OK);
    committed += BATCH;
    CHILD_CHECK(ts_append(s, "other", 0, 1, 0, 10) == OP_OK);
    op_store_close(s);

    char text[64];
    CHILD_CHECK(ts_sql_int(dir, "SELECT count(*) FROM readings WHERE sensor_id ="
                                " (SELECT id FROM sensors WHERE name = 'full')") == committed);
    CHILD_CHECK(ts_sql_int(dir, "SELECT count FROM sensors WHERE name = 'full'") == committed);
    CHILD_CHECK(ts_sql_int(dir, "SELECT count(DISTINCT ts) FROM readings") == committed);
    ts_sql_text(dir, "PRAGMA integrity_check", text, sizeof(text));
    CHILD_CHECK(strcmp(text, "ok") == 0);
    op_metrics_reset();
    return 0;
}

static void test_file_size_limit(void **state)
{
    struct fixture *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit(fsize_child(f->dir));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_tmpfs_full(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    if (mount("tmpfs", f->mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m") != 0) {
        fprintf(stderr, "tmpfs mount not permitted (%s): skipping\n", strerror(errno));
        skip();
    }
    f->mounted = true;

    /* Ballast to delete later: the way an operator frees space. */
    char ballast[700], data[700];
    snprintf(ballast, sizeof(ballast), "%s/ballast", f->mnt);
    snprintf(data, sizeof(data), "%s/data", f->mnt);
    FILE *b = fopen(ballast, "w");
    assert_non_null(b);
    static char zeros[64 * 1024];
    for (int i = 0; i < 8; i++)
        assert_int_equal(fwrite(zeros, 1, sizeof(zeros), b), sizeof(zeros));
    assert_int_equal(fclose(b), 0);

    struct op_store_opts o = ts_opts(data);
    o.sync_mode = OP_SYNC_FULL;
    f->s = ts_open(&o);
    int rc;
    int64_t committed = fill(f->s, &rc);
    assert_int_equal(rc, OP_ENOSPC);
    assert_true(committed > 0);
    assert_true(ts_metric("outpost_store_commit_errors_total{reason=\"full\"}") >= 1);

    assert_int_equal(unlink(ballast), 0);
    assert_int_equal(ts_append(f->s, "full", committed, 1, 0, BATCH), OP_OK);
    committed += BATCH;
    assert_int_equal(ts_device(f->s, OP_STORE_DEVICE_PUT, "d", "ok", NULL, 1), OP_OK);
    op_store_close(f->s);
    f->s = NULL;

    char text[64];
    assert_int_equal(ts_sql_int(data, "SELECT count(*) FROM readings"), committed);
    assert_int_equal(ts_sql_int(data, "SELECT count FROM sensors WHERE name = 'full'"), committed);
    assert_int_equal(ts_sql_int(data, "SELECT count(*) FROM devices"), 1);
    ts_sql_text(data, "PRAGMA integrity_check", text, sizeof(text));
    assert_string_equal(text, "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
