/* The alert stream's SSE framing (src/http/http_stream.c) and the alert
 * JSON it frames (op_http_alert_json, shared with GET /v1/alerts and the
 * webhook). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http_int.h"
#include "outpost/err.h"

static void frame_is(int64_t id, const char *json, const char *want)
{
    struct op_buf b;
    op_buf_init(&b, 4096);
    assert_int_equal(http__sse_frame(&b, id, json, strlen(json)), OP_OK);
    assert_string_equal(b.data, want);
    op_buf_fini(&b);
}

static void test_frames(void **state)
{
    (void)state;
    frame_is(7, "{\"id\":7}", "id: 7\nevent: alert\ndata: {\"id\":7}\n\n");
    frame_is(9223372036854775807LL, "{}",
             "id: 9223372036854775807\nevent: alert\ndata: {}\n\n");
    /* A line break would end the field: each line is a data line of its own
     * (the client joins them with "\n"). */
    frame_is(1, "a\nb", "id: 1\nevent: alert\ndata: a\ndata: b\n\n");
    frame_is(1, "a\n", "id: 1\nevent: alert\ndata: a\ndata: \n\n");
    frame_is(1, "", "id: 1\nevent: alert\ndata: \n\n");
}

static void test_frames_append_and_fail_whole(void **state)
{
    (void)state;
    struct op_buf b;
    op_buf_init(&b, 64);
    assert_int_equal(http__sse_frame(&b, 1, "{}", 2), OP_OK);
    size_t one = b.len;
    assert_int_equal(http__sse_frame(&b, 2, "{}", 2), OP_OK);
    assert_int_equal(b.len, 2 * one);
    /* Past the cap nothing of the event is left behind. */
    char big[64];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(http__sse_frame(&b, 3, big, strlen(big)), OP_ETOOBIG);
    assert_int_equal(b.len, 2 * one);
    assert_int_equal(strlen(b.data), 2 * one);
    op_buf_fini(&b);
}

static void test_alert_json(void **state)
{
    (void)state;
    struct op_store_alert a = {
        .id = 42, .rule = "hot", .sensor = "line1/temp\"x", .sensor_len = 10,
        .kind = "threshold", .state = "firing", .severity = "critical", .cause = "cleared",
        .value = 31.5, .threshold = 30, .since = 1, .fired_at = 2, .ts = 3,
    };
    struct op_buf b;
    op_buf_init(&b, 4096);
    assert_int_equal(op_http_alert_json(&a, &b), OP_OK);
    assert_string_equal(b.data,
                        "{\"id\":42,\"rule\":\"hot\",\"sensor\":\"line1/temp\",\"kind\":"
                        "\"threshold\",\"state\":\"firing\",\"severity\":\"critical\",\"cause\":"
                        "\"cleared\",\"value\":31.5,\"threshold\":30,\"since\":1,\"fired_at\":2,"
                        "\"ts\":3}");
    op_buf_fini(&b);
    op_buf_init(&b, 16);
    assert_int_equal(op_http_alert_json(&a, &b), OP_ETOOBIG);
    op_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_frames_append_and_fail_whole),
        cmocka_unit_test(test_alert_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
