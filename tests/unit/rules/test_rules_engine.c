/*
 * Tests for src/rules/rules_engine.c and rules_state.c: sensor selection by
 * name and glob, rules put, replaced and removed at runtime, the caps,
 * state export and restore, learning with a NULL sink, and an
 * allocation-failure sweep over engine creation, rule puts and the first
 * evaluation.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/rules.h"
#include "test_rules_common.h"

#define P(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void put(struct op_rules *eng, const char *name, const char *const *pairs,
                struct tr_log *log)
{
    struct op_rules_def *def = tr_def(name, pairs);
    struct op_rules_sink sink = tr_sink(log);
    assert_int_equal(op_rules_put(eng, def, log ? &sink : NULL), OP_OK);
    op_rules_def_free(def);
}

static void eval1(struct op_rules *eng, const char *sensor, int64_t ts, double v,
                  struct tr_log *log)
{
    struct op_reading r = tr_reading(sensor, ts, v);
    struct op_rules_sink sink = tr_sink(log);
    assert_int_equal(op_rules_eval(eng, &r, 1, log ? &sink : NULL), OP_OK);
}

static void test_selection(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        const char *sensor;
        bool match;
    } cases[] = {
        { "line1/temp", "line1/temp", true },   { "line1/temp", "line1/temp2", false },
        { "line1/temp", "line1/tem", false },   { "line1/*", "line1/temp", true },
        { "line1/*", "line1/a/b", true },       { "line1/*", "line1/", true },
        { "line1/*", "line10/temp", false },    { "line?/t*", "line2/temp", true },
        { "line?/t*", "line22/temp", false },   { "[ab]/x", "b/x", true },
        { "[ab]/x", "c/x", false },             { "[!ab]/x", "c/x", true },
        { "*", "anything:at/all", true },       { "*temp", "line1/temp", true },
        { "*temp", "line1/temp/x", false },     { "a*b*c", "aXXbYYc", true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sensors[160];
        snprintf(sensors, sizeof sensors, "sensors=%s", cases[i].pattern);
        struct op_rules *eng = tr_engine("t", P("kind=threshold", sensors, "above=0"));
        struct tr_log log;
        tr_log_init(&log);
        eval1(eng, cases[i].sensor, 1, 1, &log);
        if ((log.fired == 1) != cases[i].match)
            fail_msg("case %zu: %s vs %s", i, cases[i].pattern, cases[i].sensor);
        tr_log_fini(&log);
        op_rules_destroy(eng);
    }
}

static void test_replace_remove(void **state)
{
    (void)state;
    struct tr_log log;
    tr_log_init(&log);
    struct op_rules *eng = tr_engine("t", P("kind=threshold", "sensors=s", "above=30"));
    eval1(eng, "s", 1000, 31, &log);
    /* An equal definition (a config reload) keeps the alert. */
    put(eng, "t", P("kind=threshold", "sensors=s", "above=30.0", "for=0s"), &log);
    eval1(eng, "s", 2000, 32, &log);
    /* A different one resolves it (rule_changed) and starts afresh. */
    put(eng, "t", P("kind=threshold", "sensors=s", "above=40"), &log);
    eval1(eng, "s", 3000, 35, &log);
    eval1(eng, "s", 4000, 41, &log);
    assert_non_null(op_rules_get(eng, "t", 1));
    assert_int_equal(op_rules_remove(eng, "t", 1, NULL) == OP_OK, 1);
    assert_int_equal(op_rules_remove(eng, "t", 1, NULL), OP_ENOTFOUND);
    assert_null(op_rules_get(eng, "t", 1));
    eval1(eng, "s", 5000, 50, &log);
    assert_string_equal(tr_text(&log), "F t s v=31 thr=30 since=1000 at=1000\n"
                                      "R:rule_changed t s v=31 thr=30 since=1000 at=2000\n"
                                      "F t s v=41 thr=40 since=4000 at=4000\n");
    /* Removing with a sink reports the firing alert. */
    put(eng, "u", P("kind=threshold", "sensors=s", "below=0"), &log);
    eval1(eng, "s", 6000, -1, &log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_remove(eng, "u", 1, &sink), OP_OK);
    assert_non_null(strstr(tr_text(&log), "R:rule_removed u s v=-1 thr=0 since=6000 at=6000\n"));
    struct op_rules_stats st;
    op_rules_stats(eng, &st);
    assert_int_equal(st.rules, 0);
    assert_int_equal(st.pairs, 0);
    assert_int_equal(st.sensors, 1);
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

/* A rule put after sensors are known is matched against them at once. */
static void test_put_matches_known_sensors(void **state)
{
    (void)state;
    struct op_rules *eng;
    assert_int_equal(op_rules_create(&eng, NULL), OP_OK);
    eval1(eng, "a/1", 1000, 1, NULL);
    eval1(eng, "a/2", 2000, 1, NULL);
    eval1(eng, "b/1", 3000, 1, NULL);
    put(eng, "quiet", P("kind=silence", "sensors=a/*", "silence=10s"), NULL);
    struct tr_log log;
    tr_log_init(&log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_tick(eng, 11500, &sink), OP_OK);
    assert_string_equal(tr_text(&log), "F quiet a/1 v=10500 thr=10000 since=1000 at=11500\n");
    assert_int_equal(op_rules_tick(eng, 12000, &sink), OP_OK);
    assert_int_equal(log.fired, 2);
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

static void test_caps(void **state)
{
    (void)state;
    struct op_rules_opts opts = { .max_rules = 2, .max_sensors = 4 };
    struct op_rules *eng;
    assert_int_equal(op_rules_create(&eng, &opts), OP_OK);
    put(eng, "a", P("kind=threshold", "sensors=*", "above=0", "max_sensors=2"), NULL);
    put(eng, "b", P("kind=threshold", "sensors=*", "above=0"), NULL);
    struct op_rules_def *c = tr_def("c", P("kind=threshold", "sensors=*", "above=0"));
    assert_int_equal(op_rules_put(eng, c, NULL), OP_ETOOBIG);
    op_rules_def_free(c);
    struct tr_log log;
    tr_log_init(&log);
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        eval1(eng, name, i, 1, &log);
    }
    /* 4 sensors tracked (engine cap); rule a holds 2 of them. */
    assert_int_equal(log.fired, 2 + 4);
    struct op_rules_stats st;
    op_rules_stats(eng, &st);
    assert_int_equal(st.sensors, 4);
    assert_int_equal(st.sensors_dropped, 2);
    assert_int_equal(st.rule_sensors_dropped, 2);
    assert_int_equal(st.pairs, 6);
    assert_true(st.bytes > 0);
    struct op_rules_rule_stats rs;
    assert_int_equal(op_rules_rule_stats(eng, "a", 1, &rs), OP_OK);
    assert_int_equal(rs.sensors, 2);
    assert_int_equal(rs.sensors_dropped, 2);
    assert_int_equal(rs.fired, 2);
    assert_int_equal(op_rules_rule_stats(eng, "zz", 2, &rs), OP_ENOTFOUND);
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

static void collect_name(void *ctx, const struct op_rules_def *def)
{
    struct op_buf *b = ctx;
    op_buf_appendf(b, "%s,", op_rules_def_name(def));
}

static void test_each_order(void **state)
{
    (void)state;
    struct op_rules *eng;
    assert_int_equal(op_rules_create(&eng, NULL), OP_OK);
    put(eng, "zeta", P("kind=silence", "sensors=a", "silence=1s"), NULL);
    put(eng, "alpha", P("kind=silence", "sensors=a", "silence=1s"), NULL);
    put(eng, "mid", P("kind=silence", "sensors=a", "silence=1s"), NULL);
    assert_int_equal(op_rules_remove(eng, "alpha", 5, NULL), OP_OK);
    put(eng, "beta", P("kind=silence", "sensors=a", "silence=1s"), NULL);
    struct op_buf b;
    op_buf_init(&b, 1024);
    assert_int_equal(op_rules_each(eng, collect_name, &b), 3);
    assert_string_equal(b.data, "zeta,mid,beta,");
    op_buf_fini(&b);
    op_rules_destroy(eng);
}

/* ---- export and restore ---------------------------------------------- */

static struct op_rules_alert saved_alerts[8];
static char saved_alert_sensor[8][32];
static int nsaved_alerts;
static struct op_rules_window saved_windows[8];
static char saved_window_sensor[8][32];
static int nsaved_windows;

static void save_alert(void *ctx, const struct op_rules_alert *a)
{
    (void)ctx;
    int i = nsaved_alerts++;
    saved_alerts[i] = *a;
    snprintf(saved_alert_sensor[i], 32, "%.*s", (int)a->sensor_len, a->sensor);
    saved_alerts[i].sensor = saved_alert_sensor[i];
    saved_alerts[i].rule = a->rule[0] == 'h' ? "hot" : a->rule[0] == 'q' ? "quiet" : "avg";
}

static void save_window(void *ctx, const struct op_rules_window *w)
{
    (void)ctx;
    int i = nsaved_windows++;
    saved_windows[i] = *w;
    snprintf(saved_window_sensor[i], 32, "%.*s", (int)w->sensor_len, w->sensor);
    saved_windows[i].sensor = saved_window_sensor[i];
    saved_windows[i].rule = "avg";
}

static struct op_rules *restore_engine(void)
{
    struct op_rules *eng;
    assert_int_equal(op_rules_create(&eng, NULL), OP_OK);
    put(eng, "hot", P("kind=threshold", "sensors=t/*", "above=30", "clear=25"), NULL);
    put(eng, "quiet", P("kind=silence", "sensors=t/*", "silence=1m"), NULL);
    put(eng, "avg", P("kind=window", "sensors=t/*", "window=1m", "grace=10s", "fns=avg,count"),
        NULL);
    return eng;
}

static void test_export_restore(void **state)
{
    (void)state;
    struct op_rules *a = restore_engine();
    struct tr_log log;
    tr_log_init(&log);
    eval1(a, "t/1", 1000, 31, &log);
    eval1(a, "t/1", 2000, 29, &log);
    eval1(a, "t/2", 3000, 10, &log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_tick(a, 62500, &sink), OP_OK); /* quiet fires for t/1 */
    nsaved_alerts = nsaved_windows = 0;
    assert_int_equal(op_rules_alerts(a, save_alert, NULL), 2);
    assert_int_equal(op_rules_windows(a, save_window, NULL), 2);
    op_rules_destroy(a);

    /* A restarted engine: same rules, seeded state. */
    struct op_rules *b = restore_engine();
    for (int i = 0; i < nsaved_alerts; i++)
        assert_int_equal(op_rules_alert_seed(b, &saved_alerts[i]), OP_OK);
    for (int i = 0; i < nsaved_windows; i++)
        assert_int_equal(op_rules_window_seed(b, &saved_windows[i]), OP_OK);
    tr_log_fini(&log);
    tr_log_init(&log);
    assert_int_equal(op_rules_alerts(b, save_alert, NULL), 2);
    /* No second firing; the seeded alerts resolve; the seeded windows
     * close with their restored readings counted. */
    eval1(b, "t/1", 30000, 24, &log);
    eval1(b, "t/2", 30000, 20, &log);
    assert_int_equal(op_rules_tick(b, 70000, &sink), OP_OK);
    assert_string_equal(tr_text(&log),
                        "R hot t/1 v=24 thr=25 since=1000 at=30000\n"
                        "R quiet t/1 v=28000 thr=60000 since=2000 at=30000\n"
                        "D t/1:count_1m 0 3\nD t/1:avg_1m 0 28\n"
                        "D t/2:count_1m 0 2\nD t/2:avg_1m 0 15\n");

    /* Seeds that do not fit. */
    struct op_rules_alert bad = saved_alerts[0];
    bad.rule = "nope";
    assert_int_equal(op_rules_alert_seed(b, &bad), OP_ENOTFOUND);
    bad.rule = "hot";
    bad.sensor = "u/1";
    bad.sensor_len = 3;
    assert_int_equal(op_rules_alert_seed(b, &bad), OP_ENOTFOUND);
    struct op_rules_window w = saved_windows[0];
    w.start = 1;
    assert_int_equal(op_rules_window_seed(b, &w), OP_EINVAL);
    w.start = 0;
    w.rule = "hot";
    assert_int_equal(op_rules_window_seed(b, &w), OP_ENOTFOUND);
    tr_log_fini(&log);
    op_rules_destroy(b);
}

/* With a NULL sink the engine learns silently (rebuilding state from
 * history); events then continue from that state. */
static void test_null_sink_and_nonfinite(void **state)
{
    (void)state;
    struct op_rules *eng = tr_engine("t", P("kind=threshold", "sensors=s", "above=30"));
    struct op_reading r[] = { tr_reading("s", 1, 31), tr_reading("s", 2, NAN),
                              tr_reading("s", 3, INFINITY) };
    assert_int_equal(op_rules_eval(eng, r, 3, NULL), OP_OK);
    struct tr_log log;
    tr_log_init(&log);
    eval1(eng, "s", 4, 10, &log);
    assert_string_equal(tr_text(&log), "R t s v=10 thr=30 since=1 at=4\n");
    struct op_rules_stats st;
    op_rules_stats(eng, &st);
    assert_int_equal(st.nonfinite, 2);
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

/* Alternating sensors in one batch (the one-entry lookup cache). */
static void test_batch_interleaved(void **state)
{
    (void)state;
    struct op_rules *eng = tr_engine("t", P("kind=window", "sensors=*", "window=1s", "fns=sum"));
    struct op_reading r[] = {
        tr_reading("a", 0, 1),    tr_reading("b", 0, 10),   tr_reading("a", 1, 2),
        tr_reading("a", 2, 3),    tr_reading("b", 5, 20),   tr_reading("ab", 0, 100),
        tr_reading("a", 1000, 0), tr_reading("b", 1000, 0), tr_reading("ab", 1000, 0),
    };
    struct tr_log log;
    tr_log_init(&log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_eval(eng, r, 9, &sink), OP_OK);
    assert_string_equal(tr_text(&log), "D a:sum_1s 0 6\nD b:sum_1s 0 30\nD ab:sum_1s 0 100\n");
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

/* Fails the k-th allocation for every k through engine creation, four
 * rule puts and the first evaluation of 40 new sensors, until a run needs
 * no failure. Every run must end without crash or leak (ASan checks the
 * latter), with OP_ENOMEM or OP_OK, and an engine that works afterwards. */
static void test_alloc_sweep(void **state)
{
    (void)state;
    const char *const *rules[] = {
        P("kind=threshold", "sensors=*", "above=0.5"),
        P("kind=window", "sensors=s*", "window=1s", "fns=avg,max", "alert_on=avg > 0.5"),
        P("kind=anomaly", "sensors=s1*", "method=mad", "samples=8", "warmup=4"),
        P("kind=rate", "sensors=s2*", "span=1s", "rate=0.1"),
        P("kind=silence", "sensors=s3,x", "silence=1s"),
    };
    static const char *const names[] = { "thr", "win", "mad", "rate", "quiet" };
    struct op_reading r[80];
    char sensor[40][8];
    for (int i = 0; i < 80; i++) {
        snprintf(sensor[i % 40], 8, "s%d", i % 40);
        r[i] = tr_reading(sensor[i % 40], i * 100, (i * 37 % 11) / 10.0);
    }
    struct op_rules_def *defs[5];
    for (int i = 0; i < 5; i++)
        defs[i] = tr_def(names[i], rules[i]);
    bool clean = false;
    long k = 1;
    for (; !clean && k < 100000; k++) {
        struct tr_log log;
        tr_log_init(&log);
        struct op_rules_sink sink = tr_sink(&log);
        op_alloc_fail_after(k);
        struct op_rules *eng;
        int rc = op_rules_create(&eng, NULL);
        bool failed = rc != OP_OK;
        if (rc == OP_OK) {
            for (int i = 0; i < 5; i++) {
                rc = op_rules_put(eng, defs[i], &sink);
                assert_true(rc == OP_OK || rc == OP_ENOMEM);
                failed |= rc != OP_OK;
            }
            rc = op_rules_eval(eng, r, 80, &sink);
            assert_true(rc == OP_OK || rc == OP_ENOMEM);
            failed |= rc != OP_OK;
            struct op_rules_stats st;
            op_rules_stats(eng, &st);
            failed |= st.alloc_failures != 0;
            assert_int_equal(op_rules_tick(eng, 100000, &sink), OP_OK);
        }
        op_alloc_fail_after(0);
        if (rc == OP_OK || eng) {
            if (eng && !failed)
                clean = true;
            if (eng) {
                /* Still usable: a put and an evaluation succeed now. */
                assert_int_equal(op_rules_put(eng, defs[0], &sink), OP_OK);
                assert_int_equal(op_rules_eval(eng, r, 80, &sink), OP_OK);
                op_rules_destroy(eng);
            }
        }
        tr_log_fini(&log);
    }
    assert_true(clean);
    print_message("alloc sweep: failed each of the first %ld allocations in turn\n", k - 2);
    for (int i = 0; i < 5; i++)
        op_rules_def_free(defs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_replace_remove),
        cmocka_unit_test(test_put_matches_known_sensors),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_each_order),
        cmocka_unit_test(test_export_restore),
        cmocka_unit_test(test_null_sink_and_nonfinite),
        cmocka_unit_test(test_batch_interleaved),
        cmocka_unit_test(test_alloc_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
