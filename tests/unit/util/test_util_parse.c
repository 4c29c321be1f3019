/* Checked number, size and duration parsing; shortest double formatting. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/util.h"

static int p64(const char *s, int64_t *v) { return op_parse_i64(s, strlen(s), v); }

static void test_i64(void **state)
{
    (void)state;
    static const struct { const char *in; int rc; int64_t want; } cases[] = {
        { "0", OP_OK, 0 },
        { "-12", OP_OK, -12 },
        { "+7", OP_OK, 7 },
        { "9223372036854775807", OP_OK, INT64_MAX },
        { "-9223372036854775808", OP_OK, INT64_MIN },
        { "9223372036854775808", OP_ERANGE, 0 },
        { "", OP_EINVAL, 0 },
        { " 1", OP_EINVAL, 0 },
        { "1 ", OP_EINVAL, 0 },
        { "1.5", OP_EINVAL, 0 },
        { "0x10", OP_EINVAL, 0 },
        { "abc", OP_EINVAL, 0 },
        { "123456789012345678901234567890123", OP_EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 0;
        int rc = p64(cases[i].in, &v);
        assert_int_equal(rc, cases[i].rc);
        if (rc == OP_OK)
            assert_true(v == cases[i].want);
    }
}

static void test_i64_not_nul_terminated(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(op_parse_i64("12345", 2, &v), OP_OK);
    assert_true(v == 12);
}

static void test_double(void **state)
{
    (void)state;
    double v;
    assert_int_equal(op_parse_double("21.5", 4, &v), OP_OK);
    assert_true(v == 21.5);
    assert_int_equal(op_parse_double("-1e-3", 5, &v), OP_OK);
    assert_true(v == -1e-3);
    assert_int_equal(op_parse_double("1e999", 5, &v), OP_ERANGE);
    assert_int_equal(op_parse_double("nan", 3, &v), OP_EINVAL);
    assert_int_equal(op_parse_double("1.5x", 4, &v), OP_EINVAL);
}

static void test_duration(void **state)
{
    (void)state;
    static const struct { const char *in; int rc; int64_t want; } cases[] = {
        { "500ms", OP_OK, 500 },  { "5s", OP_OK, 5000 },     { "2h", OP_OK, 7200000 },
        { "7d", OP_OK, 604800000 }, { "3m", OP_OK, 180000 }, { "250", OP_OK, 250 },
        { "0", OP_OK, 0 },        { "5x", OP_EINVAL, 0 },    { "s", OP_EINVAL, 0 },
        { "-5s", OP_EINVAL, 0 },  { "1.5s", OP_EINVAL, 0 },
        { "9223372036854775807d", OP_ERANGE, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        int rc = op_parse_duration_ms(cases[i].in, strlen(cases[i].in), &v);
        assert_int_equal(rc, cases[i].rc);
        if (rc == OP_OK)
            assert_true(v == cases[i].want);
    }
}

static void test_size(void **state)
{
    (void)state;
    static const struct { const char *in; int rc; int64_t want; } cases[] = {
        { "1MiB", OP_OK, 1048576 }, { "64k", OP_OK, 65536 }, { "10", OP_OK, 10 },
        { "2G", OP_OK, 2147483648LL }, { "3B", OP_OK, 3 },  { "1TB", OP_EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        int rc = op_parse_size(cases[i].in, strlen(cases[i].in), &v);
        assert_int_equal(rc, cases[i].rc);
        if (rc == OP_OK)
            assert_true(v == cases[i].want);
    }
}

static void test_fmt_double_shortest(void **state)
{
    (void)state;
    static const struct { double v; const char *want; } cases[] = {
        { 21.5, "21.5" }, { 0.1, "0.1" }, { 42.0, "42" }, { -0.005, "-0.005" },
        { 1e-7, "1e-07" }, { 0.30000000000000004, "0.30000000000000004" },
        { 1732200000000.0, "1732200000000" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_fmt_double(buf, cases[i].v);
        assert_string_equal(buf, cases[i].want);
    }
    /* Every formatted value reads back bit-exactly. */
    srand(7);
    for (int i = 0; i < 10000; i++) {
        uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        op_fmt_double(buf, v);
        assert_true(strtod(buf, NULL) == v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_i64_not_nul_terminated),
        cmocka_unit_test(test_double),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_fmt_double_shortest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
