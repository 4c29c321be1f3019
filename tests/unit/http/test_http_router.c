/* The route table: matches, {id} capture, 405 with Allow, 404. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "http_int.h"

static void test_routes(void **state)
{
    (void)state;
    struct op_str param = { 0 };
    int idx = -1;
    char allow[64];
    const struct http_route *rt;

    rt = http__route_find(HM_POST, "/v1/readings", &param, &idx, allow, sizeof allow);
    assert_non_null(rt);
    assert_ptr_equal(rt->fn, http__h_readings_post);
    assert_string_equal(http__route_label(idx), "/v1/readings");

    rt = http__route_find(HM_GET, "/v1/devices/cam-1", &param, &idx, allow, sizeof allow);
    assert_ptr_equal(rt->fn, http__h_device_get);
    assert_int_equal(param.len, 5);
    assert_memory_equal(param.p, "cam-1", 5);

    rt = http__route_find(HM_HEAD, "/healthz", &param, &idx, allow, sizeof allow);
    assert_ptr_equal(rt->fn, http__h_healthz);

    rt = http__route_find(HM_DELETE, "/v1/readings", &param, &idx, allow, sizeof allow);
    assert_null(rt);
    assert_string_equal(allow, "POST, GET");

    rt = http__route_find(HM_GET, "/v1/devices/a/b", &param, &idx, allow, sizeof allow);
    assert_null(rt);
    assert_string_equal(allow, "");
    rt = http__route_find(HM_GET, "/nope", &param, &idx, allow, sizeof allow);
    assert_null(rt);
    assert_string_equal(allow, "");
}

/* Every route decides who may call it: OP_ROLE_UNSET is a build-time
 * mistake this test catches, before the RBAC matrix test runs. */
static void test_every_route_has_a_role(void **state)
{
    (void)state;
    for (int i = 0; i < http__nroutes; i++) {
        if (http__routes[i].role <= OP_ROLE_UNSET || http__routes[i].role > OP_ROLE_NODE)
            fail_msg("route %s has no role", http__routes[i].pattern);
        /* Probes stay open so that orchestrators need no token; nothing
         * that writes is public. */
        if (http__routes[i].role == OP_ROLE_PUBLIC)
            assert_int_equal(http__routes[i].method, HM_GET);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_routes),
                                        cmocka_unit_test(test_every_route_has_a_role) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
