/* The metrics registry renders the Prometheus text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "outpost/err.h"

static double seven(void *ctx)
{
    (void)ctx;
    return 7;
}

static void test_render(void **state)
{
    (void)state;
    struct op_counter *a = op_metrics_counter("outpost_test_total", "route=\"/a\"", "Test");
    struct op_counter *b = op_metrics_counter("outpost_test_total", "route=\"/b\"", "Test");
    /* Same name and labels: the same series. */
    assert_ptr_equal(a, op_metrics_counter("outpost_test_total", "route=\"/a\"", "Test"));
    op_counter_add(a, 2);
    op_counter_add(b, 5);
    static const double bounds[] = { 1, 10 };
    struct op_histogram *h = op_metrics_histogram("outpost_test_seconds", NULL, "Hist", bounds, 2);
    op_histogram_observe(h, 0.5);
    op_histogram_observe(h, 5);
    op_histogram_observe(h, 50);
    op_metrics_gauge("outpost_test_bytes", NULL, "Gauge", seven, NULL);

    struct op_buf out;
    op_buf_init(&out, 1 << 16);
    assert_int_equal(op_metrics_render(&out), OP_OK);
    const char *want[] = {
        "# TYPE outpost_test_total counter\n",
        "outpost_test_total{route=\"/a\"} 2\n",
        "outpost_test_total{route=\"/b\"} 5\n",
        "# TYPE outpost_test_seconds histogram\n",
        "outpost_test_seconds_bucket{le=\"1\"} 1\n",
        "outpost_test_seconds_bucket{le=\"10\"} 2\n",
        "outpost_test_seconds_bucket{le=\"+Inf\"} 3\n",
        "outpost_test_seconds_sum 55.5\n",
        "outpost_test_seconds_count 3\n",
        "outpost_test_bytes 7\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_non_null(strstr(out.data, want[i]));
    op_buf_fini(&out);
    op_metrics_reset();
}

static void test_type_clash_is_refused(void **state)
{
    (void)state;
    assert_non_null(op_metrics_counter("outpost_x_total", NULL, "x"));
    assert_null(op_metrics_histogram("outpost_x_total", NULL, "x", (double[]){ 1 }, 1));
    op_metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_type_clash_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
