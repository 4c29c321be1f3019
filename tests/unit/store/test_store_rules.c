/*
 * Tests of src/store/store_rules.c: reading committed readings by seq
 * across the log/sorted seam, the high-water mark and the rules cursor, rule
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
    int64_t n, last_seq, bad;
    double sum;
};

static int since_row(void *ctx, int64_t seq, const struct op_reading *r)
{
    struct since *c = ctx;
    if (seq <= c->last_seq || r->sensor_len == 0)
        c->bad++;
    c->last_seq = seq;
    c->sum += r->value;
    c->n++;
    return 0;
}

static bool compacted(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_store_compacted_readings_total") >= 65536;
}

/* Paging by seq sees every committed reading once, in commit order, also
 * once most of them have moved from the log to the sorted table. */
static void test_read_since_pages_across_compaction(void **state)
{
    struct fixture *f = *state;
    int64_t seq = -1, cursor = 0;
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(cursor, -1);

    assert_int_equal(ts_append(f->s, "a", 0, 1, 0, 40000), OP_OK);
    assert_int_equal(ts_append(f->s, "b", 0, 1, 40000, 30000), OP_OK);
    assert_true(ts_poll(compacted, NULL, 20000));
    assert_int_equal(ts_append(f->s, "c", 0, 1, 70000, 100), OP_OK);

    struct since c = { .last_seq = 0 };
    int64_t after = 0;
    for (;;) {
        int n = op_store_read_since(f->r, after, 997, since_row, &c);
        assert_true(n >= 0);
        if (n == 0)
            break;
        after = c.last_seq;
    }
    assert_int_equal(c.n, 70100);
    assert_int_equal(c.bad, 0);
    /* values 0..70099 in commit order */
    assert_true(c.sum == 70099.0 * 70100.0 / 2);
    assert_int_equal(op_store_rules_marks(f->r, &seq, &cursor), OP_OK);
    assert_int_equal(seq, c.last_seq);
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
    assert_int_equal(ts_sql_int(f->dir, "PRAGMA user_version"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_since_pages_across_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_put_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_alerts_and_cursor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
