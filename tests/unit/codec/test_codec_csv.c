/*
 * Tests for src/codec/codec_csv.c: header handling, CRLF, non-finite
 * values, malformed lines with their line numbers, the point cap, and
 * format/parse round trips.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

static void test_parse_ok(void **state)
{
    (void)state;
    static const char text[] = "ts_ms,value\r\n1,2.5\r\n-3,-0\n\n4,nan\n5,-inf\n6,1e-300";
    int64_t *ts;
    double *v;
    size_t n, bad;
    assert_int_equal(op_codec_csv_parse_alloc(text, sizeof text - 1, 100, &ts, &v, &n, &bad), OP_OK);
    assert_int_equal(n, 5);
    assert_true(ts[1] == -3 && v[0] == 2.5 && signbit(v[1]) && isnan(v[2]) && isinf(v[3]) && v[3] < 0);
    assert_true(v[4] == 1e-300);
    struct op_buf out;
    op_buf_init(&out, 4096);
    assert_int_equal(op_codec_csv_format(ts, v, n, &out), OP_OK);
    assert_string_equal(out.data, "ts_ms,value\n1,2.5\n-3,-0\n4,nan\n5,-inf\n6,1e-300\n");
    op_buf_fini(&out);
    op_free(ts);
    op_free(v);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        size_t line;
    } cases[] = {
        { "ts_ms,value\n1,2\n3\n", OP_EINVAL, 3 },
        { "1,2\n2,x\n", OP_EINVAL, 2 },
        { "ts,value\n1, 2\n", OP_EINVAL, 2 },
        { "1,2\n99999999999999999999,1\n", OP_EINVAL, 2 },
        { "1,2\n2,3\n3,4\n4,5\n", OP_ETOOBIG, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t *ts;
        double *v;
        size_t n, bad = 0;
        int rc = op_codec_csv_parse_alloc(cases[i].text, strlen(cases[i].text), 3, &ts, &v, &n, &bad);
        assert_int_equal(rc, cases[i].rc);
        if (rc == OP_EINVAL)
            assert_int_equal(bad, cases[i].line);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
