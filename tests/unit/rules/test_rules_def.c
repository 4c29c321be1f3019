/*
 * Tests for src/rules/rules_def.c: valid definitions and their canonical
 * form, bad definitions naming the offending field, format -> parse round
 * trips, and an allocation-failure sweep over parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/rules.h"
#include "test_rules_common.h"

#define P(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const struct {
    const char *const *pairs;
    const char *canonical;
} good[] = {
    { P("kind=threshold", "sensors=line1/*", "above=30"),
      "kind = threshold\nsensors = line1/*\nseverity = warning\nimportant = false\n"
      "max_sensors = 10000\nabove = 30\nclear = 30\nfor = 0s\n" },
    { P("kind = threshold ", "sensors= a , b/c ,x?", "below=-5", "clear=-4.5", "for=30s",
        "severity=critical", "important=true"),
      "kind = threshold\nsensors = a,b/c,x?\nseverity = critical\nimportant = true\n"
      "max_sensors = 10000\nbelow = -5\nclear = -4.5\nfor = 30s\n" },
    { P("kind=threshold", "sensors=t", "above=1e308", "below=-1e308", "clear=-1,1",
        "max_sensors=5"),
      "kind = threshold\nsensors = t\nseverity = warning\nimportant = false\nmax_sensors = 5\n"
      "above = 1e+308\nbelow = -1e+308\nclear = -1,1\nfor = 0s\n" },
    { P("kind=rate", "sensors=p", "span=5m", "rate=2.5", "direction=up", "for=90000"),
      "kind = rate\nsensors = p\nseverity = warning\nimportant = false\nmax_sensors = 10000\n"
      "span = 5m\nrate = 2.5\ndirection = up\nclear = 2.5\nfor = 90s\n" },
    { P("kind=window", "sensors=line1/temp", "window=60s", "fns=stddev, avg,count"),
      "kind = window\nsensors = line1/temp\nseverity = warning\nimportant = false\n"
      "max_sensors = 10000\nwindow = 1m\ngrace = 2s\nfns = count,avg,stddev\n" },
    { P("kind=window", "sensors=w", "window=1500ms", "alert_on=max>=30", "clear=25", "grace=0"),
      "kind = window\nsensors = w\nseverity = warning\nimportant = false\nmax_sensors = 10000\n"
      "window = 1500ms\ngrace = 0s\nalert_on = max >= 30\nclear = 25\nfor = 0s\n" },
    { P("kind=anomaly", "sensors=*"),
      "kind = anomaly\nsensors = *\nseverity = warning\nimportant = false\nmax_sensors = 10000\n"
      "method = ewma\nz = 4\nalpha = 0.05\nwarmup = 40\nmin_sd = 0\ndirection = any\n"
      "clear = 4\nfor = 0s\n" },
    { P("kind=anomaly", "sensors=m", "method=mad", "samples=32", "z=3.5", "min_sd=0.01"),
      "kind = anomaly\nsensors = m\nseverity = warning\nimportant = false\nmax_sensors = 10000\n"
      "method = mad\nz = 3.5\nsamples = 32\nwarmup = 16\nmin_sd = 0.01\ndirection = any\n"
      "clear = 3.5\nfor = 0s\n" },
    { P("kind=silence", "sensors=gw/heartbeat", "silence=2h"),
      "kind = silence\nsensors = gw/heartbeat\nseverity = warning\nimportant = false\n"
      "max_sensors = 10000\nsilence = 2h\n" },
};

static void test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct op_rules_def *def = tr_def("r1", good[i].pairs);
        struct op_buf out;
        op_buf_init(&out, 1 << 16);
        assert_int_equal(op_rules_def_format(def, &out), OP_OK);
        assert_string_equal(out.data, good[i].canonical);
        assert_string_equal(op_rules_def_name(def), "r1");

        /* The canonical lines parse back to an equal definition. */
        const char *pairs[TR_MAX_PAIRS + 1];
        size_t n = 0;
        for (char *line = out.data; *line && n < TR_MAX_PAIRS;) {
            char *nl = strchr(line, '\n');
            *nl = '\0';
            char *eq = strstr(line, " = ");
            eq[0] = '='; /* "key = v" -> "key=v" */
            memmove(eq + 1, eq + 3, strlen(eq + 3) + 1);
            pairs[n++] = line;
            line = nl + 1;
        }
        pairs[n] = NULL;
        struct op_rules_def *back = tr_def("r1", pairs);
        assert_true(op_rules_def_equal(def, back));
        op_rules_def_free(back);
        op_buf_fini(&out);
        op_rules_def_free(def);
    }
}

static const struct {
    const char *name;
    const char *const *pairs;
    const char *field;
    const char *msg; /* a substring of the message */
} bad[] = {
    { "r", P("sensors=a", "above=1"), "kind", "kind is required" },
    { "r", P("kind=thresh", "sensors=a"), "kind", "one of threshold" },
    { "r", P("kind=threshold", "above=1"), "sensors", "sensors is required" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "colour=red"), "colour", "Unknown" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "above=2"), "above", "twice" },
    { "r", P("kind=threshold", "kind=rate", "sensors=a"), "kind", "twice" },
    { "r", P("kind=threshold", "sensors=a"), "above", "needs above, below" },
    { "r", P("kind=threshold", "sensors=a", "above=1x"), "above", "\"1x\"" },
    { "r", P("kind=threshold", "sensors=a", "above=inf"), "above", "finite" },
    { "r", P("kind=threshold", "sensors=a", "above=-inf"), "above", "finite" },
    { "r", P("kind=threshold", "sensors=a", "above=1e999"), "above", "finite" },
    { "r", P("kind=threshold", "sensors=a", "above=nan"), "above", "finite" },
    { "r", P("kind=threshold", "sensors=a", "above="), "above", "finite" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "below=1"), "below", "less than above" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "clear=2"), "clear", "greater than above" },
    { "r", P("kind=threshold", "sensors=a", "below=1", "clear=0"), "clear", "less than below" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "clear=0,1"), "clear", "one number" },
    { "r", P("kind=threshold", "sensors=a", "above=9", "below=1", "clear=5"), "clear", "two" },
    { "r", P("kind=threshold", "sensors=a", "above=9", "below=1", "clear=0,5"), "clear",
      "within" },
    { "r", P("kind=threshold", "sensors=a", "above=9", "below=1", "clear=6,5"), "clear",
      "LOW <= HIGH" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "for=-1s"), "for", "duration" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "for=5x"), "for", "duration" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "for=400d"), "for", "366d" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "span=5m"), "span", "does not apply" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "severity=high"), "severity", "info" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "important=yes"), "important", "true" },
    { "r", P("kind=threshold", "sensors=a", "above=1", "max_sensors=0"), "max_sensors", "1 to" },
    { "r", P("kind=threshold", "sensors=a b", "above=1"), "sensors", "comma-separated" },
    { "r", P("kind=threshold", "sensors=a,,b", "above=1"), "sensors", "comma-separated" },
    { "r", P("kind=threshold", "sensors=", "above=1"), "sensors", "comma-separated" },
    { "r", P("kind=threshold", "sensors=a;b", "above=1"), "sensors", "comma-separated" },
    { "r", P("kind=rate", "sensors=a", "rate=1"), "span", "needs span" },
    { "r", P("kind=rate", "sensors=a", "span=1m"), "rate", "needs rate" },
    { "r", P("kind=rate", "sensors=a", "span=1m", "rate=0"), "rate", "greater than 0" },
    { "r", P("kind=rate", "sensors=a", "span=0", "rate=1"), "span", "from 1ms" },
    { "r", P("kind=rate", "sensors=a", "span=1m", "rate=1", "clear=2"), "clear", "0 to rate" },
    { "r", P("kind=rate", "sensors=a", "span=1m", "rate=1", "direction=left"), "direction",
      "any, up" },
    { "r", P("kind=window", "sensors=a", "fns=avg"), "window", "needs window" },
    { "r", P("kind=window", "sensors=a", "window=1m"), "fns", "fns, alert_on" },
    { "r", P("kind=window", "sensors=a", "window=1m", "fns=avg,median"), "fns", "\"median\"" },
    { "r", P("kind=window", "sensors=a", "window=1m", "fns=avg,avg"), "fns", "twice" },
    { "r", P("kind=window", "sensors=a", "window=1m", "alert_on=avg = 3"), "alert_on", "FN OP" },
    { "r", P("kind=window", "sensors=a", "window=1m", "alert_on=mean > 3"), "alert_on", "FN OP" },
    { "r", P("kind=window", "sensors=a", "window=1m", "alert_on=avg > x"), "alert_on", "FN OP" },
    { "r", P("kind=window", "sensors=a", "window=1m", "fns=avg", "clear=3"), "clear",
      "only with alert_on" },
    { "r", P("kind=window", "sensors=a", "window=1m", "fns=avg", "for=3s"), "for",
      "only with alert_on" },
    { "r", P("kind=window", "sensors=a", "window=1m", "alert_on=avg < 3", "clear=2"), "clear",
      "less than" },
    { "r", P("kind=anomaly", "sensors=a", "method=mad", "alpha=0.1"), "alpha", "ewma only" },
    { "r", P("kind=anomaly", "sensors=a", "samples=10"), "samples", "mad only" },
    { "r", P("kind=anomaly", "sensors=a", "alpha=0"), "alpha", "greater than 0" },
    { "r", P("kind=anomaly", "sensors=a", "alpha=1.5"), "alpha", "at most 1" },
    { "r", P("kind=anomaly", "sensors=a", "z=-1"), "z", "greater than 0" },
    { "r", P("kind=anomaly", "sensors=a", "warmup=1"), "warmup", "2 to" },
    { "r", P("kind=anomaly", "sensors=a", "warmup=1.5"), "warmup", "2 to" },
    { "r", P("kind=anomaly", "sensors=a", "method=mad", "samples=4"), "samples", "5 to 4096" },
    { "r", P("kind=anomaly", "sensors=a", "method=arima"), "method", "ewma or mad" },
    { "r", P("kind=anomaly", "sensors=a", "clear=5"), "clear", "0 to z" },
    { "r", P("kind=silence", "sensors=a"), "silence", "needs silence" },
    { "r", P("kind=silence", "sensors=a", "silence=1m", "for=1s"), "for", "does not apply" },
    { "", P("kind=silence", "sensors=a", "silence=1m"), "name", "rule name" },
    { "bad name", P("kind=silence", "sensors=a", "silence=1m"), "name", "rule name" },
    { "r/1", P("kind=silence", "sensors=a", "silence=1m"), "name", "rule name" },
};

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct op_rules_def *def = (void *)1;
        struct op_diag d;
        op_diag_clear(&d);
        int rc = tr_parse(bad[i].name, bad[i].pairs, &def, &d);
        if (rc != OP_EINVAL || strcmp(d.field, bad[i].field) != 0 ||
            !strstr(d.msg, bad[i].msg))
            fail_msg("case %zu: rc %d field \"%s\" msg \"%s\"", i, rc, d.field, d.msg);
        assert_null(def);
        assert_string_equal(d.code, "invalid_rule");
        /* One sentence: it ends with a full stop. */
        assert_true(d.msg[strlen(d.msg) - 1] == '.');
    }
}

static void test_sensor_list_limits(void **state)
{
    (void)state;
    char many[40 * 4 + 32] = "sensors=";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i ? "," : "", i);
    struct op_rules_def *def;
    struct op_diag d;
    assert_int_equal(tr_parse("r", P("kind=silence", many, "silence=1m"), &def, &d), OP_EINVAL);
    assert_string_equal(d.field, "sensors");
    *strrchr(many, ',') = '\0'; /* 32 patterns: fine */
    def = tr_def("r", P("kind=silence", many, "silence=1m"));
    op_rules_def_free(def);

    char longname[8 + 130] = "sensors=";
    memset(longname + 8, 'a', 129);
    longname[8 + 129] = '\0';
    assert_int_equal(tr_parse("r", P("kind=silence", longname, "silence=1m"), &def, &d),
                     OP_EINVAL);
    longname[8 + 128] = '\0';
    def = tr_def("r", P("kind=silence", longname, "silence=1m"));
    op_rules_def_free(def);
    assert_null(NULL);
    op_rules_def_free(NULL);
}

static void test_equal(void **state)
{
    (void)state;
    struct op_rules_def *a = tr_def("r", P("kind=threshold", "sensors=a", "above=1"));
    struct op_rules_def *b = tr_def("r", P("above=1.0", "sensors=a", "kind=threshold", "for=0"));
    struct op_rules_def *c = tr_def("r", P("kind=threshold", "sensors=a", "above=1", "for=1s"));
    struct op_rules_def *e = tr_def("s", P("kind=threshold", "sensors=a", "above=1"));
    assert_true(op_rules_def_equal(a, b));
    assert_false(op_rules_def_equal(a, c));
    assert_false(op_rules_def_equal(a, e));
    assert_int_equal(op_rules_def_kind(a), OP_RULES_THRESHOLD);
    op_rules_def_free(a);
    op_rules_def_free(b);
    op_rules_def_free(c);
    op_rules_def_free(e);
}

static void test_alloc_sweep(void **state)
{
    (void)state;
    for (long k = 1; k < 10; k++) {
        op_alloc_fail_after(k);
        struct op_rules_def *def;
        int rc = tr_parse("r", P("kind=window", "sensors=a,b*", "window=1m", "fns=avg"), &def,
                          NULL);
        op_alloc_fail_after(0);
        assert_true(rc == OP_OK || rc == OP_ENOMEM);
        if (rc == OP_OK)
            op_rules_def_free(def);
        else
            assert_null(def);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),       cmocka_unit_test(test_bad),
        cmocka_unit_test(test_sensor_list_limits), cmocka_unit_test(test_equal),
        cmocka_unit_test(test_alloc_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
