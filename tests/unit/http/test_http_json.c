/*
 * Request-body parsing: readings (table-driven: every rejection names its
 * status, code, index and field), device bodies, compat bodies, and an
 * allocation-failure sweep over the readings parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "http_int.h"
#include "outpost/err.h"

#define NOW 1700000000000LL

struct case_ {
    const char *body;
    int status;
    const char *code;
    long index;
    const char *field;
};

static void test_readings_rejections(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        { "", 400, "invalid_json", -1, "" },
        { "{", 400, "invalid_json", -1, "" },
        { "[{\"sensor\":\"a\",\"value\":1},]", 400, "invalid_json", -1, "" },
        { "{\"sensor\":\"a\",\"value\":1} x", 400, "invalid_json", -1, "" },
        { "[]", 422, "empty_batch", -1, "" },
        { "42", 422, "invalid_reading", -1, "" },
        { "[1]", 422, "invalid_reading", 0, "" },
        { "{\"value\":1}", 422, "invalid_reading", -1, "sensor" },
        { "{\"sensor\":\"a\"}", 422, "invalid_reading", -1, "value" },
        { "[{\"sensor\":\"a\",\"value\":1},{\"sensor\":\"b\",\"value\":\"x\"}]", 422,
          "invalid_reading", 1, "value" },
        { "[{\"sensor\":\"a\",\"value\":1},{\"sensor\":\"b\",\"value\":null}]", 422,
          "invalid_reading", 1, "value" },
        { "{\"sensor\":\"a b\",\"value\":1}", 422, "invalid_reading", -1, "sensor" },
        { "{\"sensor\":\"\",\"value\":1}", 422, "invalid_reading", -1, "sensor" },
        { "{\"sensor\":5,\"value\":1}", 422, "invalid_reading", -1, "sensor" },
        { "{\"sensor\":\"a\",\"value\":1e999}", 422, "invalid_reading", -1, "value" },
        { "{\"sensor\":\"a\",\"value\":1,\"ts\":1.5}", 422, "invalid_reading", -1, "ts" },
        { "{\"sensor\":\"a\",\"value\":1,\"ts\":-1}", 422, "invalid_reading", -1, "ts" },
        { "{\"sensor\":\"a\",\"value\":1,\"ts\":253402300800000}", 422, "invalid_reading", -1, "ts" },
        { "{\"sensor\":\"a\",\"value\":1,\"vlaue\":2}", 422, "invalid_reading", -1, "vlaue" },
        { "{\"sensor\":\"a\",\"value\":{\"x\":1}}", 422, "invalid_reading", -1, "value" },
        { "[[{\"sensor\":\"a\",\"value\":1}]]", 422, "invalid_reading", 0, "" },
        { "[{\"sensor\":\"a\",\"value\":1},{\"sensor\":\"a\",\"value\":2},{\"sensor\":\"a\",\"value\":3},"
          "{\"sensor\":\"a\",\"value\":4}]", 413, "batch_too_large", -1, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_readings rd;
        struct op_diag d;
        op_diag_clear(&d);
        const struct case_ *c = &cases[i];
        int st = http__parse_readings(c->body, strlen(c->body), 3, NOW, &rd, &d);
        if (st != c->status || strcmp(d.code, c->code) || d.index != c->index ||
            strcmp(d.field, c->field))
            fail_msg("case %zu %s: got %d %s index %ld field '%s' (%s)", i, c->body, st, d.code,
                     d.index, d.field, d.msg);
        assert_null(rd.v);
    }
}

static void test_readings_accepted(void **state)
{
    (void)state;
    const char *body = "[{\"sensor\":\"line1/temp\",\"value\":21.5,\"ts\":1732200000000},"
                       "{\"value\":-3,\"sensor\":\"x:y.z-1_2\"},"
                       "{\"sensor\":\"line1\\/temp\",\"value\":1e3,\"ts\":0}]";
    struct http_readings rd;
    struct op_diag d;
    op_diag_clear(&d);
    assert_int_equal(http__parse_readings(body, strlen(body), 10, NOW, &rd, &d), 0);
    assert_int_equal(rd.n, 3);
    assert_int_equal(rd.v[0].sensor_len, 10);
    assert_memory_equal(rd.v[0].sensor, "line1/temp", 10);
    assert_true(rd.v[0].value == 21.5 && rd.v[0].ts == 1732200000000LL);
    assert_memory_equal(rd.v[1].sensor, "x:y.z-1_2", 9);
    assert_true(rd.v[1].ts == NOW && rd.v[1].value == -3);
    /* An escaped slash decodes to the same name. */
    assert_memory_equal(rd.v[2].sensor, "line1/temp", 10);
    assert_true(rd.v[2].ts == 0 && rd.v[2].value == 1000);
    http__readings_free(&rd);

    const char *one = "{\"sensor\":\"s\",\"value\":1}";
    assert_int_equal(http__parse_readings(one, strlen(one), 1, NOW, &rd, &d), 0);
    assert_int_equal(rd.n, 1);
    http__readings_free(&rd);
}

static void test_readings_alloc_sweep(void **state)
{
    (void)state;
    const char *body = "[{\"sensor\":\"a\",\"value\":1},{\"sensor\":\"b\",\"value\":2},"
                       "{\"sensor\":\"c\",\"value\":3}]";
    for (long n = 1; n < 50; n++) {
        struct http_readings rd;
        struct op_diag d;
        op_diag_clear(&d);
        op_alloc_fail_after(n);
        int st = http__parse_readings(body, strlen(body), 100, NOW, &rd, &d);
        op_alloc_fail_after(0);
        if (st == 0) {
            assert_int_equal(rd.n, 3);
            http__readings_free(&rd);
            return;
        }
        assert_true(st == 503 || st == 400);
    }
    fail_msg("the parser never succeeded");
}

static void test_device_body(void **state)
{
    (void)state;
    char *status, *attrs;
    struct op_diag d;
    op_diag_clear(&d);
    const char *ok = "{\"status\":\"online\",\"attributes\":{\"fw\":\"1.2\",\"n\":[1,2.5,true,null]}}";
    assert_int_equal(http__parse_device(ok, strlen(ok), &status, &attrs, &d), 0);
    assert_string_equal(status, "online");
    assert_string_equal(attrs, "{\"fw\":\"1.2\",\"n\":[1,2.5,true,null]}");
    op_free(status);
    op_free(attrs);

    const char *noattrs = "{\"status\":\"x\"}";
    assert_int_equal(http__parse_device(noattrs, strlen(noattrs), &status, &attrs, &d), 0);
    assert_string_equal(attrs, "{}");
    op_free(status);
    op_free(attrs);

    static const struct { const char *body; int st; const char *field; } bad[] = {
        { "{\"attributes\":{}}", 422, "status" },
        { "{\"status\":1}", 422, "status" },
        { "{\"status\":\"\"}", 422, "status" },
        { "{\"status\":\"a\",\"attributes\":[1]}", 422, "attributes" },
        { "{\"status\":\"a\",\"color\":\"red\"}", 422, "color" },
        { "[1]", 422, "" },
        { "{", 400, "" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_diag_clear(&d);
        assert_int_equal(http__parse_device(bad[i].body, strlen(bad[i].body), &status, &attrs, &d),
                         bad[i].st);
        assert_string_equal(d.field, bad[i].field);
        assert_null(status);
    }
}

/* A deeply nested body must not reach yajl's recursive tree code. */
static void test_deep_nesting_is_refused(void **state)
{
    (void)state;
    size_t n = 400000;
    char *body = op_malloc(2 * n + 64);
    assert_non_null(body);
    size_t k = (size_t)snprintf(body, 64, "{\"status\":\"x\",\"attributes\":{\"a\":");
    memset(body + k, '[', n);
    memset(body + k + n, ']', n);
    memcpy(body + k + 2 * n, "}}", 3);
    char *status, *attrs;
    struct op_diag d;
    op_diag_clear(&d);
    assert_int_equal(http__parse_device(body, strlen(body), &status, &attrs, &d), 422);
    assert_string_equal(d.code, "invalid_json");
    char *id;
    double v;
    op_diag_clear(&d);
    k = (size_t)snprintf(body, 64, "{\"id\":\"x\",\"value\":1,\"z\":");
    memset(body + k, '[', n);
    memset(body + k + n, ']', n);
    memcpy(body + k + 2 * n, "}", 2);
    assert_int_equal(http__parse_compat_data(body, strlen(body), &id, &v, &d), 422);
    op_free(body);
    /* 64 levels are fine: the outer object and 63 nested ones. */
    char ok[1024];
    k = (size_t)snprintf(ok, sizeof ok, "{\"status\":\"x\",\"attributes\":");
    for (int i = 0; i < 62; i++)
        k += (size_t)snprintf(ok + k, sizeof ok - k, "{\"a\":");
    k += (size_t)snprintf(ok + k, sizeof ok - k, "{}");
    for (int i = 0; i < 63; i++)
        ok[k++] = '}';
    ok[k] = '\0';
    op_diag_clear(&d);
    assert_int_equal(http__parse_device(ok, strlen(ok), &status, &attrs, &d), 0);
    op_free(status);
    op_free(attrs);
}

static void test_compat_body(void **state)
{
    (void)state;
    char *id;
    double v;
    struct op_diag d;
    op_diag_clear(&d);
    const char *ok = "{\"id\": \"sensor_1\", \"value\": 42.5}";
    assert_int_equal(http__parse_compat_data(ok, strlen(ok), &id, &v, &d), 0);
    assert_string_equal(id, "sensor_1");
    assert_true(v == 42.5);
    op_free(id);
    const char *bad = "{\"id\": \"sensor_1\"}";
    assert_int_equal(http__parse_compat_data(bad, strlen(bad), &id, &v, &d), 422);
    assert_string_equal(d.field, "value");
}

static void test_writer_shortest_numbers(void **state)
{
    (void)state;
    struct op_buf b;
    struct http_json j;
    op_buf_init(&b, 1024);
    http__json_init(&j, &b);
    http__json_obj_open(&j);
    http__json_key(&j, "v");
    http__json_double(&j, 0.1);
    http__json_key(&j, "s");
    http__json_str(&j, "a\"b\n", 4);
    http__json_key(&j, "raw");
    http__json_raw(&j, "{\"k\":[1,2]}", 11);
    http__json_obj_close(&j);
    assert_int_equal(http__json_fini(&j), 0);
    assert_string_equal(b.data, "{\"v\":0.1,\"s\":\"a\\\"b\\n\",\"raw\":{\"k\":[1,2]}}");
    op_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readings_rejections),
        cmocka_unit_test(test_readings_accepted),
        cmocka_unit_test(test_readings_alloc_sweep),
        cmocka_unit_test(test_device_body),
        cmocka_unit_test(test_deep_nesting_is_refused),
        cmocka_unit_test(test_compat_body),
        cmocka_unit_test(test_writer_shortest_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
