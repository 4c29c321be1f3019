/* Settled positions: a floor plus ranges, merged and folded into the floor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/util.h"

static void test_out_of_order_ranges_fold_into_the_floor(void **state)
{
    (void)state;
    struct op_ranges s;
    op_ranges_init(&s, 100);
    assert_int_equal(op_ranges_add(&s, 201, 300), OP_OK); /* live first */
    assert_int_equal(op_ranges_add(&s, 150, 150), OP_OK); /* an important one */
    assert_int_equal(op_ranges_add(&s, 151, 151), OP_OK);
    op_ranges_merge(&s);
    assert_int_equal(s.floor, 100);
    assert_int_equal(s.n, 2);
    assert_true(s.r[0].lo == 150 && s.r[0].hi == 151);
    assert_true(op_ranges_has(&s, 100) && op_ranges_has(&s, 151) && op_ranges_has(&s, 250));
    assert_false(op_ranges_has(&s, 101) || op_ranges_has(&s, 152) || op_ranges_has(&s, 301));
    assert_int_equal(op_ranges_above(&s), 102);
    /* The backlog reaches the important pair, then the live range. */
    op_ranges_add(&s, 101, 149);
    op_ranges_merge(&s);
    assert_int_equal(s.floor, 151);
    assert_int_equal(s.n, 1);
    op_ranges_add(&s, 152, 200);
    op_ranges_merge(&s);
    assert_int_equal(s.floor, 300);
    assert_int_equal(s.n, 0);
    op_ranges_fini(&s);
}

static void test_overlaps_and_raises(void **state)
{
    (void)state;
    struct op_ranges s;
    op_ranges_init(&s, 0);
    op_ranges_add(&s, 10, 20);
    op_ranges_add(&s, 15, 30);
    op_ranges_add(&s, 31, 31);  /* adjacent */
    op_ranges_add(&s, 40, 45);
    op_ranges_add(&s, -5, -1);  /* below the floor: ignored */
    op_ranges_merge(&s);
    assert_int_equal(s.n, 2);
    assert_true(s.r[0].lo == 10 && s.r[0].hi == 31);
    assert_true(s.r[1].lo == 40 && s.r[1].hi == 45);
    assert_null(op_ranges_find(&s, 35));
    assert_int_equal(op_ranges_find(&s, 42)->lo, 40);
    op_ranges_raise(&s, 35); /* swallows 10..31, touches nothing else */
    op_ranges_merge(&s);
    assert_int_equal(s.floor, 35);
    assert_int_equal(s.n, 1);
    op_ranges_raise(&s, 39); /* now adjacent to 40..45 */
    op_ranges_merge(&s);
    assert_int_equal(s.floor, 45);
    assert_int_equal(s.n, 0);
    op_ranges_clear(&s, 7);
    assert_int_equal(s.floor, 7);
    op_ranges_fini(&s);
}

static void test_many_sparse_points(void **state)
{
    (void)state;
    struct op_ranges s;
    op_ranges_init(&s, 0);
    for (int64_t p = 100000; p > 1; p -= 2) /* every even position, descending */
        assert_int_equal(op_ranges_add(&s, p, p), OP_OK);
    op_ranges_merge(&s);
    assert_int_equal(s.n, 50000);
    assert_int_equal(op_ranges_above(&s), 50000);
    for (int64_t p = 1; p < 100000; p += 2)
        op_ranges_add(&s, p, p);
    op_ranges_merge(&s);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.floor, 100000);
    op_ranges_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order_ranges_fold_into_the_floor),
        cmocka_unit_test(test_overlaps_and_raises),
        cmocka_unit_test(test_many_sparse_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
