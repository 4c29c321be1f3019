/*
 * Table-driven tests for the threshold, rate and silence kinds
 * (src/rules/rules_threshold.c, rules_silence.c): each case is a rule, a
 * script of readings and ticks, and the exact log of events it must
 * produce. Covers exactly-at-threshold, hysteresis without flapping, `for`
 * boundaries, out-of-order readings, extreme and subnormal values, sparse
 * series, silence firing once and resolving on the next reading.
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

struct kcase {
    const char *what;
    const char *const *pairs;
    const struct tr_step *steps;
    size_t n;
    const char *log;
};

static const struct kcase cases[] = {
    /* ---- threshold ---- */
    { "above: exactly at the level does not fire; back at it resolves",
      P("kind=threshold", "sensors=s", "above=30"),
      STEPS(R(1, 30), R(2, 30.0000001), R(3, 30.0000001), R(4, 30), R(5, 29)),
      "F t s v=30.0000001 thr=30 since=2 at=2\n"
      "R t s v=30 thr=30 since=2 at=4\n" },
    { "below: exactly at the level does not fire",
      P("kind=threshold", "sensors=s", "below=10"),
      STEPS(R(1, 10), R(2, 9.99), R(3, 10), R(4, 11)),
      "F t s v=9.99 thr=10 since=2 at=2\n"
      "R t s v=10 thr=10 since=2 at=3\n" },
    { "hysteresis: crossings inside the band neither resolve nor re-fire",
      P("kind=threshold", "sensors=s", "above=30", "clear=25"),
      STEPS(R(1, 31), R(2, 29), R(3, 26), R(4, 30.5), R(5, 25.0001), R(6, 31), R(7, 25),
            R(8, 29), R(9, 30), R(10, 30.01)),
      "F t s v=31 thr=30 since=1 at=1\n"
      "R t s v=25 thr=25 since=1 at=7\n"
      "F t s v=30.01 thr=30 since=10 at=10\n" },
    { "hysteresis below: resolves only at clear",
      P("kind=threshold", "sensors=s", "below=0", "clear=2"),
      STEPS(R(1, -1), R(2, 1), R(3, -3), R(4, 1.99), R(5, 2), R(6, 0)),
      "F t s v=-1 thr=0 since=1 at=1\n"
      "R t s v=2 thr=2 since=1 at=5\n" },
    { "band with clear levels on both sides",
      P("kind=threshold", "sensors=s", "above=30", "below=10", "clear=12,28"),
      STEPS(R(1, 20), R(2, 31), R(3, 29), R(4, 20), R(5, 9), R(6, 11), R(7, 50), R(8, 12),
            R(9, 10), R(10, 30)),
      "F t s v=31 thr=30 since=2 at=2\n"
      "R t s v=20 thr=28 since=2 at=4\n"
      "F t s v=9 thr=10 since=5 at=5\n"
      "R t s v=12 thr=12 since=5 at=8\n" },
    { "for: fires when the condition has held exactly `for`",
      P("kind=threshold", "sensors=s", "above=30", "for=30s"),
      STEPS(R(0, 31), R(10000, 32), R(29999, 33), R(30000, 31), R(40000, 35), R(50000, 20)),
      "F t s v=31 thr=30 since=0 at=30000\n"
      "R t s v=20 thr=30 since=0 at=50000\n" },
    { "for: a reading back within the level restarts the count",
      P("kind=threshold", "sensors=s", "above=30", "for=30s"),
      STEPS(R(0, 31), R(20000, 29), R(40000, 31), R(69999, 31), R(70000, 31)),
      "F t s v=31 thr=30 since=40000 at=70000\n" },
    { "for: out-of-order readings count in the newest time",
      P("kind=threshold", "sensors=s", "above=30", "for=10s"),
      STEPS(R(100000, 31), R(50000, 31), R(105000, 31), R(60000, 31), R(110000, 31)),
      "F t s v=31 thr=30 since=100000 at=110000\n" },
    { "out of order: an old reading is still compared (it resolves)",
      P("kind=threshold", "sensors=s", "above=30"),
      STEPS(R(100, 31), R(50, 20), R(200, 31)),
      "F t s v=31 thr=30 since=100 at=100\n"
      "R t s v=20 thr=30 since=100 at=100\n"
      "F t s v=31 thr=30 since=200 at=200\n" },
    { "sparse: a day between readings satisfies for = 1m",
      P("kind=threshold", "sensors=s", "above=30", "for=1m"),
      STEPS(R(0, 31), R(86400000, 31), R(2 * 86400000LL, 0)),
      "F t s v=31 thr=30 since=0 at=86400000\n"
      "R t s v=0 thr=30 since=0 at=172800000\n" },
    { "extremes: near DBL_MAX both ways",
      P("kind=threshold", "sensors=s", "above=1e308", "below=-1e308"),
      STEPS(R(1, 1e308), R(2, DBL_MAX), R(3, -DBL_MAX), R(4, 0), R(5, -1e308), R(6, -DBL_MAX)),
      "F t s v=1.7976931348623157e+308 thr=1e+308 since=2 at=2\n"
      "R t s v=0 thr=1e+308 since=2 at=4\n"
      "F t s v=-1.7976931348623157e+308 thr=-1e+308 since=6 at=6\n" },
    { "subnormals: the smallest positive double is above 0",
      P("kind=threshold", "sensors=s", "above=0"),
      STEPS(R(1, -4.9e-324), R(2, 0), R(3, 4.9e-324), R(4, 0), R(5, 2.2250738585072009e-308)),
      "F t s v=4.94065645841247e-324 thr=0 since=3 at=3\n"
      "R t s v=0 thr=0 since=3 at=4\n"
      "F t s v=2.225073858507201e-308 thr=0 since=5 at=5\n" },
    { "docs/rules.md's threshold example",
      P("kind=threshold", "sensors=s", "above=30", "clear=25", "for=30s"),
      STEPS(R(0, 29), R(10000, 31), R(20000, 32), R(40000, 30.5), R(50000, 26), R(60000, 25)),
      "F t s v=30.5 thr=30 since=10000 at=40000\n"
      "R t s v=25 thr=25 since=10000 at=60000\n" },
    /* ---- rate ---- */
    { "rate: change over span, strict, with resolution",
      P("kind=rate", "sensors=s", "span=10s", "rate=5"),
      STEPS(R(0, 0), R(5000, 1), R(10000, 2), R(15000, 10), R(20000, 10), R(25000, 10),
            R(30000, 15)),
      "F t s v=9 thr=5 since=15000 at=15000\n"
      "R t s v=0 thr=5 since=15000 at=25000\n" },
    { "rate: a fall fires on the low side",
      P("kind=rate", "sensors=s", "span=10s", "rate=5", "clear=1"),
      STEPS(R(0, 100), R(10000, 90), R(20000, 88), R(30000, 87.5), R(40000, 87.5)),
      "F t s v=-10 thr=-5 since=10000 at=10000\n"
      "R t s v=-0.5 thr=-1 since=10000 at=30000\n" },
    { "rate: direction up ignores falls",
      P("kind=rate", "sensors=s", "span=10s", "rate=5", "direction=up"),
      STEPS(R(0, 100), R(10000, 90), R(20000, 100)),
      "F t s v=10 thr=5 since=20000 at=20000\n" },
    { "rate: sparse readings use the slope between them, scaled to span",
      P("kind=rate", "sensors=s", "span=1m", "rate=1"),
      STEPS(R(0, 0), R(3840000, 64), R(7680000, 192)),
      "F t s v=2 thr=1 since=7680000 at=7680000\n" },
    { "rate: out-of-order readings are ignored",
      P("kind=rate", "sensors=s", "span=10s", "rate=5"),
      STEPS(R(0, 0), R(10000, 1), R(5000, 100), R(20000, 2)), "" },
    /* ---- silence ---- */
    { "silence: fires once, resolves on the next reading, re-arms",
      P("kind=silence", "sensors=s", "silence=1m"),
      STEPS(R(0, 1), TICK(59999), TICK(60000), TICK(120000), R(130000, 1), TICK(150000),
            TICK(189999), TICK(190000)),
      "F t s v=60000 thr=60000 since=0 at=60000\n"
      "R t s v=130000 thr=60000 since=0 at=130000\n"
      "F t s v=60000 thr=60000 since=130000 at=190000\n" },
    { "silence: an exact name never seen starts its clock at the first tick",
      P("kind=silence", "sensors=s", "silence=1m"),
      STEPS(TICK(1000), TICK(60999), TICK(61000), R(62000, 5)),
      "F t s v=60000 thr=60000 since=1000 at=61000\n"
      "R t s v=61000 thr=60000 since=1000 at=62000\n" },
    { "silence: an older reading resolves too",
      P("kind=silence", "sensors=s", "silence=1m"),
      STEPS(R(100000, 1), TICK(200000), R(5, 1), TICK(200001)),
      "F t s v=100000 thr=60000 since=100000 at=200000\n"
      "R t s v=0 thr=60000 since=100000 at=5\n"
      "F t s v=100001 thr=60000 since=100000 at=200001\n" },
    { "silence: globs watch only sensors that have been seen",
      P("kind=silence", "sensors=line/*", "silence=1m"), STEPS(TICK(0), TICK(1000000000)), "" },
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct op_rules *eng = tr_case(cases[i].pairs, cases[i].steps, cases[i].n, cases[i].log, i,
                                       cases[i].what);
        op_rules_destroy(eng);
    }
}

/* Readings of an alert episode are marked important: the ones while
 * pending or firing and the one that resolves it, with their batch index. */
static void test_important(void **state)
{
    (void)state;
    struct op_rules *eng = tr_engine(
        "t", P("kind=threshold", "sensors=s", "above=30", "for=2ms", "important=true"));
    struct op_reading r[] = {
        tr_reading("s", 1, 10), tr_reading("s", 2, 31), tr_reading("s", 3, 31),
        tr_reading("s", 4, 32), tr_reading("s", 5, 29), tr_reading("s", 6, 10),
        tr_reading("x", 7, 99),
    };
    struct tr_log log;
    tr_log_init(&log);
    log.with_important = true;
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_eval(eng, r, 7, &sink), OP_OK);
    assert_string_equal(tr_text(&log), "I 1 t\n"
                                      "I 2 t\n"
                                      "F t s v=32 thr=30 since=2 at=4\n"
                                      "I 3 t\n"
                                      "R t s v=29 thr=30 since=2 at=5\n"
                                      "I 4 t\n");
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

/* A dense series: 100,000 readings 1 ms apart, a square wave of period 100
 * readings crossing the level; every crossing gives one event, no more. */
static void test_dense(void **state)
{
    (void)state;
    struct op_rules *eng =
        tr_engine("t", P("kind=threshold", "sensors=s", "above=0.5", "clear=-0.5"));
    enum { N = 100000 };
    static struct op_reading r[N];
    for (int i = 0; i < N; i++)
        r[i] = tr_reading("s", 1700000000000 + i, (i / 50) % 2 ? 1.0 : -1.0);
    struct tr_log log;
    tr_log_init(&log);
    struct op_rules_sink sink = tr_sink(&log);
    assert_int_equal(op_rules_eval(eng, r, N, &sink), OP_OK);
    assert_int_equal(log.fired, N / 100);
    assert_int_equal(log.resolved, N / 100 - 1);
    struct op_rules_stats st;
    op_rules_stats(eng, &st);
    assert_int_equal(st.readings, N);
    assert_int_equal(st.evaluations, N);
    tr_log_fini(&log);
    op_rules_destroy(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_important),
        cmocka_unit_test(test_dense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
