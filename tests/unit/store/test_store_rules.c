/*
 * Tests of src/store/store_rules.c: reading committed readings by seq from
 * the log, where compaction holds those the rules have not seen (and the
 * limit of that hold), the high-water mark and the rules cursor, rule
 * put/replace/delete with the generation counter and the commit hook, alert
 * events with the firing-alerts query, and the schema surviving a reopen.
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
    struct op_store_reader *r;
};

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    struct op_store_opts o = ts_opts(f->dir);
    f->s = ts_open(&o);
    assert_int_equal(op_store_reader_open(f->s, &f->r), OP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    op_store_reader_close(f->r);
    op_store_close(f->s);
    ts_rmrf(f->dir);
    op_free(f);
    op_metrics_reset();
    return 0;
}

struct since {
    int64_t n, last_seq, bad, derived;
    double sum;
};

static int since_row(void *ctx, int64_t seq, const struct op_reading *r)
{
    struct since *c = ctx;
    if (!r) { /* a derived reading: its seq only */
        c->derived++;
        c->last_seq = seq;
        return 0;
    }
    if (seq <= c->last_seq || r->sensor_len == 0)
        c->bad++;
    c->last_seq = seq;
    c->sum += r->value;
    c->n++;
    return 0;
}

static int progress(struct op_store *s, int64_t cursor)
{
    struct op_store_write w = { .op = OP_STORE_RULES_PROGRESS, .cursor = cursor };
    return ts_write(s, &w);
}

static int rule_put(struct op_store *s, const char *name, const char *text, bool *created);

/* Reads everything after `after` by seq, a page at a time. */
static struct since read_all(struct op_store_reader *r, int64_t after)
{
    struct since c = { .last_seq = after };
    for (;;) {
        int n = op_store_read_since(r, c.last_seq, 997, since_row, &c);
        assert_true(n >= 0);
        if (n == 0)
            break;
    }
    return c;
}

/* With rules, compaction leaves the readings after the persisted cursor in
 * the log, where the runner reads them by seq; the cursor moving lets them
 * go. A write after each step is a barrier: the writer decides on
 * compaction right after a group, before it takes the next one. */
static void test_compaction_holds_unseen_readings(void **state)
{
    struct fixture *f = *state;
    int64_t seq = -1, cursor = 0;
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(cursor, -1);

    bool created;
    assert_int_equal(rule_put(f->s, "r", "kind = silence\n", &created), OP_OK);
    assert_int_equal(progress(f->s, 0), OP_OK);
    assert_int_equal(ts_append(f->s, "a", 0, 1, 0, 40000), OP_OK);
    assert_int_equal(ts_append(f->s, "b", 0, 1, 40000, 30000), OP_OK);
    assert_int_equal(progress(f->s, 0), OP_OK);
    assert_true(ts_metric("outpost_store_compacted_readings_total") == 0);

    struct since c = read_all(f->r, 0);
    assert_int_equal(c.n, 70000);
    assert_int_equal(c.bad, 0);
    assert_true(c.sum == 69999.0 * 70000.0 / 2); /* values 0..69999 in commit order */

    assert_int_equal(progress(f->s, 50000), OP_OK);
    assert_int_equal(progress(f->s, 50000), OP_OK);
    assert_true(ts_metric("outpost_store_compacted_readings_total") == 50000);
    c = read_all(f->r, 50000);
    assert_int_equal(c.n, 20000);
    assert_int_equal(c.bad, 0);
    assert_true(c.sum == (69999.0 * 70000.0 - 49999.0 * 50000.0) / 2);
    assert_int_equal(ts_sql_int(f->dir, "SELECT coalesce(sum(n), 0) FROM log"), 20000);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM readings"), 70000);
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(seq, 70000);
    assert_int_equal(cursor, 50000);
}

static bool compacted_chunk(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_store_compacted_readings_total") >= 65536;
}

static bool compacted_all(void *ctx)
{
    return ts_sql_int(ctx, "SELECT coalesce(sum(n), 0) FROM log") == 0;
}

/* A runner that never moves its cursor cannot grow the log without bound:
 * past the hold limit compaction moves everything, and the runner finds a
 * gap in the seqs (which it counts). Without rules nothing is held. */
static void test_hold_limit_and_no_rules(void **state)
{
    struct fixture *f = *state;
    bool created;
    assert_int_equal(rule_put(f->s, "r", "kind = silence\n", &created), OP_OK);
    assert_int_equal(progress(f->s, 0), OP_OK);
    assert_int_equal(ts_append(f->s, "a", 0, 1, 0, 4 * 65536 + 10), OP_OK);
    assert_true(ts_poll(compacted_chunk, NULL, 30000));
    assert_int_equal(ts_append(f->s, "a", 0, 1, 0, 5), OP_OK);
    /* One chunk left, which brought the log back under the limit. */
    int64_t moved = (int64_t)ts_metric("outpost_store_compacted_readings_total");
    assert_int_equal(moved, 65536);
    assert_int_equal(ts_sql_int(f->dir, "SELECT min(seq_lo) FROM log"), moved + 1);
    struct since c = read_all(f->r, 0);
    assert_int_equal(c.n, 4 * 65536 + 15 - moved);

    struct op_store_write d = { .op = OP_STORE_RULE_DELETE, .rule_name = "r" };
    assert_int_equal(ts_write(f->s, &d), OP_OK);
    assert_int_equal(ts_append(f->s, "b", 0, 1, 0, 70000), OP_OK);
    assert_true(ts_poll(compacted_all, f->dir, 30000));
}

static int hook_calls;
static void hook(void *ctx, int64_t readings)
{
    (void)ctx;
    (void)readings;
    __atomic_add_fetch(&hook_calls, 1, __ATOMIC_SEQ_CST);
}

static int rule_put(struct op_store *s, const char *name, const char *text, bool *created)
{
    struct op_store_write w = { .op = OP_STORE_RULE_PUT, .rule_name = name, .rule_text = text,
                                .updated_at = 5 };
    int rc = ts_write(s, &w);
    *created = w.created;
    return rc;
}

struct got {
    int n;
    char text[256];
};
static int got_rule(void *ctx, const struct op_rule_info *ri)
{
    struct got *g = ctx;
    snprintf(g->text, sizeof g->text, "%s", ri->text);
    g->n++;
    return 0;
}

static void test_rules_put_replace_delete(void **state)
{
    struct fixture *f = *state;
    op_store_set_commit_hook(f->s, hook, NULL);
    uint64_t gen = op_store_rules_generation(f->s);
    bool created = false;
    assert_int_equal(rule_put(f->s, "hot", "kind = threshold\n", &created), OP_OK);
    assert_true(created);
    assert_int_equal(rule_put(f->s, "hot", "kind = silence\n", &created), OP_OK);
    assert_false(created);
    assert_int_equal(op_store_rules_generation(f->s), gen + 2);
    assert_int_equal(__atomic_load_n(&hook_calls, __ATOMIC_SEQ_CST), 2);

    struct got g = { 0 };
    assert_int_equal(op_store_get_rule(f->r, "hot", got_rule, &g), 1);
    assert_string_equal(g.text, "kind = silence\n");
    assert_int_equal(op_store_get_rule(f->r, "cold", got_rule, &g), OP_ENOTFOUND);

    struct op_store_write d = { .op = OP_STORE_RULE_DELETE, .rule_name = "hot" };
    assert_int_equal(ts_write(f->s, &d), OP_OK);
    assert_int_equal(ts_write(f->s, &d), OP_ENOTFOUND);
    g.n = 0;
    assert_int_equal(op_store_list_rules(f->r, got_rule, &g), 0);
    op_store_set_commit_hook(f->s, NULL, NULL);
}

static int count_alert(void *ctx, const struct op_store_alert *a)
{
    (void)a;
    (*(int *)ctx)++;
    return 0;
}

static void test_progress_alerts_and_cursor(void **state)
{
    struct fixture *f = *state;
    struct op_store_alert a[3] = {
        { .rule = "hot", .sensor = "s1xx", .sensor_len = 2, .kind = "threshold",
          .state = "firing", .severity = "warning", .cause = "cleared", .value = 31,
          .threshold = 30, .since = 10, .fired_at = 20, .ts = 20 },
        { .rule = "hot", .sensor = "s2", .sensor_len = 2, .kind = "threshold",
          .state = "firing", .severity = "warning", .cause = "cleared", .ts = 30 },
        { .rule = "hot", .sensor = "s1", .sensor_len = 2, .kind = "threshold",
          .state = "resolved", .severity = "warning", .cause = "cleared", .ts = 40 },
    };
    struct op_store_write w = { .op = OP_STORE_RULES_PROGRESS, .alerts = a, .nalerts = 3,
                                .cursor = 42 };
    assert_int_equal(ts_write(f->s, &w), OP_OK);

    int64_t seq, cursor;
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(cursor, 42);

    int n = 0;
    struct op_alert_query q = { .state = NULL, .since = 0, .limit = 10 };
    assert_int_equal(op_store_query_alerts(f->r, &q, count_alert, &n), 3);
    q.state = "firing";
    q.since = 25;
    n = 0;
    assert_int_equal(op_store_query_alerts(f->r, &q, count_alert, &n), 1);
    n = 0;
    /* s1 resolved after it fired; s2 still fires. */
    assert_int_equal(op_store_firing_alerts(f->r, count_alert, &n), 1);

    /* The tables and the cursor survive a reopen. */
    op_store_reader_close(f->r);
    op_store_close(f->s);
    struct op_store_opts o = ts_opts(f->dir);
    f->s = ts_open(&o);
    assert_int_equal(op_store_reader_open(f->s, &f->r), OP_OK);
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(cursor, 42);
    assert_int_equal(ts_sql_int(f->dir, "PRAGMA user_version"), 7);
}

/* Derived readings commit with the cursor, are readings for queries, and
 * never come back through read_since; marks land for the important ones. */
static void test_progress_derived_and_marks(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ts_append(f->s, "a", 1000, 1, 0, 3), OP_OK); /* seqs 1..3 */
    struct op_reading d[2] = { { "a:avg_1m", 8, 0, 1.0 }, { "a:max_1m", 8, 0, 2.0 } };
    uint8_t imp[2] = { 0, 1 };
    struct op_store_mark m[1] = { { 2, 1001 } };
    struct op_store_write w = { .op = OP_STORE_RULES_PROGRESS, .cursor = 3, .derived = d,
                                .derived_important = imp, .nderived = 2, .marks = m,
                                .nmarks = 1 };
    assert_int_equal(ts_write(f->s, &w), OP_OK);
    assert_int_equal(ts_append(f->s, "a", 2000, 1, 0, 1), OP_OK); /* seq 6 */

    struct since c = read_all(f->r, 0);
    assert_int_equal(c.n, 4); /* 1, 2, 3, 6 as readings; 4 and 5 (derived) as seqs only */
    assert_int_equal(c.derived, 2);
    assert_int_equal(c.last_seq, 6);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM readings r JOIN sensors s"
                                        " ON s.id = r.sensor_id WHERE s.derived = 1"), 2);
    assert_int_equal(ts_sql_int(f->dir, "SELECT group_concat(seq) = '2,5' FROM marks"), 1);

    /* A derived name over the store's cap makes the write invalid. */
    struct op_reading longname = { "x", OP_STORE_SENSOR_MAX + 1, 0, 1.0 };
    char buf[OP_STORE_SENSOR_MAX + 2];
    memset(buf, 'x', sizeof buf);
    longname.sensor = buf;
    struct op_store_write bad = { .op = OP_STORE_RULES_PROGRESS, .cursor = 6,
                                  .derived = &longname, .nderived = 1 };
    assert_int_equal(op_store_submit(f->s, &bad), OP_EINVAL);
}

/* Rules from the config file cannot be changed by API writes. */
static void test_config_rules_are_locked(void **state)
{
    struct fixture *f = *state;
    struct op_store_write w = { .op = OP_STORE_RULE_PUT, .rule_name = "hot",
                                .rule_text = "kind = silence\n", .rule_config = true };
    assert_int_equal(ts_write(f->s, &w), OP_OK);
    struct op_store_write api = { .op = OP_STORE_RULE_PUT, .rule_name = "hot",
                                  .rule_text = "kind = threshold\n" };
    assert_int_equal(ts_write(f->s, &api), OP_EINVAL);
    assert_true(api.rule_locked);
    struct op_store_write del = { .op = OP_STORE_RULE_DELETE, .rule_name = "hot" };
    assert_int_equal(ts_write(f->s, &del), OP_EINVAL);
    assert_true(del.rule_locked);
    struct got g = { 0 };
    assert_int_equal(op_store_get_rule(f->r, "hot", got_rule, &g), 1);
    assert_string_equal(g.text, "kind = silence\n");
    del.rule_config = true;
    del.rule_locked = false;
    assert_int_equal(ts_write(f->s, &del), OP_OK);
    assert_int_equal(op_store_get_rule(f->r, "hot", got_rule, &g), OP_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compaction_holds_unseen_readings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_limit_and_no_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_put_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_alerts_and_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_derived_and_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_rules_are_locked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
