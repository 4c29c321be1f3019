/* Bounded buffers keep their cap; allocation failures are reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/util.h"

static void test_append_and_cap(void **state)
{
    (void)state;
    struct op_buf b;
    op_buf_init(&b, 10);
    assert_int_equal(op_buf_appends(&b, "hello"), OP_OK);
    assert_int_equal(op_buf_appendf(&b, "%d", 1234), OP_OK);
    assert_string_equal(b.data, "hello1234");
    assert_int_equal(op_buf_appends(&b, "xy"), OP_ETOOBIG);
    assert_string_equal(b.data, "hello1234");
    assert_int_equal(op_buf_appends(&b, "z"), OP_OK);
    assert_int_equal(b.len, 10);
    op_buf_fini(&b);
}

static void test_steal(void **state)
{
    (void)state;
    struct op_buf b;
    op_buf_init(&b, 100);
    op_buf_appends(&b, "abc");
    size_t len;
    char *p = op_buf_steal(&b, &len);
    assert_int_equal(len, 3);
    assert_string_equal(p, "abc");
    assert_null(b.data);
    op_free(p);
    op_buf_fini(&b);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    struct op_buf b;
    op_buf_init(&b, 1 << 20);
    op_alloc_fail_after(1);
    assert_int_equal(op_buf_appends(&b, "x"), OP_ENOMEM);
    op_alloc_fail_after(0);
    assert_int_equal(op_buf_appends(&b, "x"), OP_OK);
    op_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
