/*
 * Tests for src/rules/rules_window.c: tumbling windows table-driven
 * (boundaries, late readings, closing by tick after grace, sparse series,
 * negative timestamps, alert_on with hysteresis and `for`, extreme and
 * subnormal values), a dense series checked against a direct computation,
 * derived names and the guard against derived series cascading.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/rules.h"
#include "test_rules_common.h"

struct wcase {
    const char *what;
    const char *const *pairs;
    const struct tr_step *steps;
    size_t n;
    const char *log;
    uint64_t late, nonfinite;
};

static const struct wcase cases[] = {
    { "a reading exactly at the boundary opens the next window",
      P("kind=window", "sensors=s", "window=1m", "fns=count,min,max,avg,sum,first,last,stddev"),
      STEPS(R(0, 1), R(30000, 3), R(59999, 2), R(60000, 10), TICK(121999), TICK(122000)),
      "D s:count_1m 0 3\nD s:min_1m 0 1\nD s:max_1m 0 3\nD s:avg_1m 0 2\nD s:sum_1m 0 6\n"
      "D s:first_1m 0 1\nD s:last_1m 0 2\nD s:stddev_1m 0 0.816496580927726\n"
      "D s:count_1m 60000 1\nD s:min_1m 60000 10\nD s:max_1m 60000 10\nD s:avg_1m 60000 10\n"
      "D s:sum_1m 60000 10\nD s:first_1m 60000 10\nD s:last_1m 60000 10\n"
      "D s:stddev_1m 60000 0\n",
      0, 0 },
    { "late readings: before the open window, or in one already closed",
      P("kind=window", "sensors=s", "window=1m", "fns=count,sum"),
      STEPS(R(60000, 1), R(59999, 5), R(90000, 2), R(120000, 4), R(100000, 9), TICK(182000),
            R(150000, 1), R(185000, 7), TICK(300000)),
      "D s:count_1m 60000 2\nD s:sum_1m 60000 3\n"
      "D s:count_1m 120000 1\nD s:sum_1m 120000 4\n"
      "D s:count_1m 180000 1\nD s:sum_1m 180000 7\n",
      3, 0 },
    { "grace: the tick closes only once end + grace has passed",
      P("kind=window", "sensors=s", "window=10s", "grace=5s", "fns=last"),
      STEPS(R(1000, 1), TICK(14999), R(9999, 2), TICK(15000), R(9000, 3)),
      "D s:last_10s 0 2\n", 1, 0 },
    { "sparse: one window per reading, empty windows emit nothing",
      P("kind=window", "sensors=s", "window=1m", "fns=count,avg"),
      STEPS(R(0, 1), R(86400000, 2), R(3 * 86400000LL, 3)),
      "D s:count_1m 0 1\nD s:avg_1m 0 1\nD s:count_1m 86400000 1\nD s:avg_1m 86400000 2\n", 0,
      0 },
    { "negative timestamps align down",
      P("kind=window", "sensors=s", "window=1m", "fns=count"),
      STEPS(R(-1, 5), R(-60000, 6), R(0, 6), R(-60001, 1)),
      "D s:count_1m -60000 2\n", 1, 0 },
    { "alert_on with hysteresis: fires at the window's end, resolves at clear",
      P("kind=window", "sensors=s", "window=1m", "alert_on=avg > 30", "clear=25"),
      STEPS(R(0, 31), R(1000, 33), R(60000, 28), R(120000, 20), R(180000, 0)),
      "F t s v=32 thr=30 since=0 at=60000\n"
      "R t s v=20 thr=25 since=0 at=180000\n",
      0, 0 },
    { "alert_on >= with for = 2m: two breaching 1m windows fire",
      P("kind=window", "sensors=s", "window=1m", "alert_on=max >= 30", "for=2m", "fns=max"),
      STEPS(R(0, 30), R(60000, 31), R(120000, 29.9), R(180000, 0)),
      "D s:max_1m 0 30\nD s:max_1m 60000 31\n"
      "F t s v=31 thr=30 since=0 at=120000\n"
      "D s:max_1m 120000 29.9\n"
      "R t s v=29.9 thr=30 since=0 at=180000\n",
      0, 0 },
    { "alert_on below, on a window closed by tick",
      P("kind=window", "sensors=s", "window=1m", "alert_on=count < 2"),
      STEPS(R(0, 1), TICK(62000), R(60000, 1), R(60001, 1), R(120000, 1)),
      "F t s v=1 thr=2 since=0 at=60000\n"
      "R t s v=2 thr=2 since=0 at=120000\n",
      0, 0 },
    { "extremes: sums past DBL_MAX are not emitted, min/max/avg are",
      P("kind=window", "sensors=s", "window=1m", "fns=count,min,max,avg,sum,stddev"),
      STEPS(R(0, DBL_MAX), R(1, DBL_MAX), R(60000, 1e308), R(60001, -1e308), R(120000, 0)),
      "D s:count_1m 0 2\nD s:min_1m 0 1.7976931348623157e+308\n"
      "D s:max_1m 0 1.7976931348623157e+308\nD s:avg_1m 0 1.7976931348623157e+308\n"
      "D s:stddev_1m 0 0\n"
      "D s:count_1m 60000 2\nD s:min_1m 60000 -1e+308\nD s:max_1m 60000 1e+308\n"
      "D s:sum_1m 60000 0\n",
      0, 3 },
    { "subnormals",
      P("kind=window", "sensors=s", "window=1m", "fns=min,max,avg,sum"),
      STEPS(R(0, 4.9406564584124654e-324), R(1, 1.4821969375237396e-323), R(60000, 0)),
      "D s:min_1m 0 4.94065645841247e-324\nD s:max_1m 0 1.48219693752374e-323\n"
      "D s:avg_1m 0 9.88131291682493e-324\nD s:sum_1m 0 1.97626258336499e-323\n",
      0, 0 },
    { "important marks the derived series",
      P("kind=window", "sensors=s", "window=1s", "fns=count", "important=true"),
      STEPS(R(0, 1), R(1000, 1)), "D s:count_1s 0 1 !\n", 0, 0 },
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct op_rules *eng = tr_case(cases[i].pairs, cases[i].steps, cases[i].n, cases[i].log, i,
                                       cases[i].what);
        struct op_rules_stats st;
        op_rules_stats(eng, &st);
        if (st.late != cases[i].late || st.nonfinite != cases[i].nonfinite)
            fail_msg("case %zu (%s): late %llu nonfinite %llu", i, cases[i].what,
                     (unsigned long long)st.late, (unsigned long long)st.nonfinite);
        op_rules_destroy(eng);
    }
}

/* The derived readings captured by the dense test. */
struct agg {
    double v[8];
    int64_t ts;
    int n;
};
static struct agg got[16];
static int ngot;

static void on_derived(void *ctx, const struct op_rules_derived *d)
{
    (void)ctx;
    static const char *const fns[] = { ":count", ":min", ":max", ":avg",
                                       ":sum",   ":first", ":last", ":stddev" };
    if (ngot == 0 || got[ngot - 1].ts != d->r.ts) {
        assert_true(ngot < 16);
        got[ngot].ts = d->r.ts;
        got[ngot++].n = 0;
    }
    for (int f = 0; f < 8; f++)
        if (memmem(d->r.sensor, d->r.sensor_len, fns[f], strlen(fns[f])))
            got[ngot - 1].v[f] = d->r.value;
    got[ngot - 1].n++;
}

/* 600,000 readings 1 ms apart with a large offset (the case where a naive
 * sum of squares loses every digit of the stddev), against a two-pass
 * computation per window. */
static void test_dense(void **state)
{
    (void)state;
    struct op_rules *eng = tr_engine(
        "t", P("kind=window", "sensors=s", "window=1m",
               "fns=count,min,max,avg,sum,first,last,stddev"));
    enum { N = 600000, W = 60000 };
    static struct op_reading r[N];
    for (int i = 0; i < N; i++)
        r[i] = tr_reading("s", i, 1e9 + sin(i * 0.001) + (i % 7) * 0.25);
    struct op_rules_sink sink = { NULL, on_derived, NULL, NULL };
    ngot = 0;
    assert_int_equal(op_rules_eval(eng, r, N, &sink), OP_OK);
    assert_int_equal(op_rules_tick(eng, N + 2000, &sink), OP_OK);
    assert_int_equal(ngot, N / W);
    for (int w = 0; w < N / W; w++) {
        const struct op_reading *x = r + (size_t)w * W;
        double sum = 0, mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < W; i++) {
            sum += x[i].value;
            mn = fmin(mn, x[i].value);
            mx = fmax(mx, x[i].value);
        }
        double mean = 0;
        for (int i = 0; i < W; i++)
            mean += x[i].value - 1e9;
        mean = 1e9 + mean / W;
        double m2 = 0;
        for (int i = 0; i < W; i++)
            m2 += (x[i].value - mean) * (x[i].value - mean);
        double sd = sqrt(m2 / W);
        assert_int_equal(got[w].ts, (int64_t)w * W);
        assert_int_equal(got[w].n, 8);
        assert_true(got[w].v[0] == W);
        assert_true(got[w].v[1] == mn && got[w].v[2] == mx && got[w].v[4] == sum);
        assert_true(got[w].v[5] == x[0].value && got[w].v[6] == x[W - 1].value);
        assert_true(fabs(got[w].v[3] - mean) <= 1e-6);
        if (fabs(got[w].v[7] - sd) > 1e-9)
            fail_msg("window %d: stddev %.17g want %.17g", w, got[w].v[7], sd);
    }
    op_rules_destroy(eng);
}

/* Derived series never feed window rules (no cascade), and a sensor name
 * too long for a derived name is counted rather than truncated. */
static void test_derived_names(void **state)
{
    (void)state;
    struct op_rules *eng = tr_engine("t", P("kind=window", "sensors=*", "window=1s", "fns=avg"));
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct op_reading r[] = {
        tr_reading("s:avg_1s", 0, 1),    tr_reading("s:avg_1s", 1000, 1),
        tr_reading("s:stddev_5m", 0, 1), tr_reading("s:stddev_5m", 1000, 1),
        tr_reading("s:avg_x", 0, 1),     tr_reading("s:avg_x", 1000, 1),
        tr_reading(longname, 0, 1),      tr_reading(longname, 1000, 1),
    };
    struct tr_log log;
    tr_log_init(&log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_eval(eng, r, sizeof r / sizeof r[0], &sink), OP_OK);
    assert_string_equal(tr_text(&log), "D s:avg_x:avg_1s 0 1\n");
    struct op_rules_stats st;
    op_rules_stats(eng, &st);
    assert_int_equal(st.derived_dropped, 1);
    assert_int_equal(st.pairs, 2); /* s:avg_x and the long name */
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_derived_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
