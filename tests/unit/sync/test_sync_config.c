/*
 * Tests of the [uplink.NAME] sections: defaults, every kind of value, and
 * errors that name the line: unknown and repeated keys, bad values, a
 * missing or non-HTTP url, a certificate without its key, a bad name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/sync.h"

static int parse(const char *text, struct op_uplink_cfg **u, size_t *n, struct op_diag *d)
{
    struct op_config *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    op_config_defaults(cfg);
    op_diag_clear(d);
    int rc = op_config_load_string(cfg, text, strlen(text), "t.conf", d);
    if (rc == OP_OK)
        rc = op_sync_config_parse(cfg, u, n, d);
    free(cfg);
    return rc;
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    struct op_uplink_cfg *u = NULL;
    size_t n = 0;
    struct op_diag d;
    assert_int_equal(parse("[uplink.cloud]\nurl = https://c.example/v1/uplink\n"
                           "[uplink.broker]\nurl = mqtts://b.example:8883/site/7/batches\n"
                           "priority = live , important,backlog\n"
                           "[uplink.region]\nurl = http://10.0.0.2:8080/v1/uplink\n"
                           "sensors = line1/*, b\nimportant_only = true\ndownsample = 1m\n"
                           "batch_points = 10\nbatch_bytes = 64KiB\nbatch_age = 250ms\n"
                           "bandwidth = 1MiB\nformat = json\ntimeout = 2s\n",
                           &u, &n, &d),
                     OP_OK);
    assert_int_equal(n, 3);
    assert_string_equal(u[0].name, "cloud");
    assert_string_equal(u[1].url, "mqtts://b.example:8883/site/7/batches");
    assert_int_equal(u[1].priority.n, 3);
    assert_int_equal(u[1].priority.order[0], OP_PRIO_LIVE);
    assert_int_equal(u[1].priority.order[1], OP_PRIO_IMPORTANT);
    assert_int_equal(u[1].priority.order[2], OP_PRIO_BACKLOG);
    assert_int_equal(u[0].priority.n, 1); /* the default: backlog, in position order */
    u[1] = u[2]; /* the checks below are about region */
    assert_int_equal(u[0].batch_points, 50000);
    assert_int_equal(u[0].timeout_ms, 10000);
    assert_int_equal(u[0].format, OP_UPLINK_BATCH);
    assert_false(u[0].important_only);
    assert_string_equal(u[1].sensors, "line1/*, b");
    assert_true(u[1].important_only);
    assert_int_equal(u[1].downsample_ms, 60000);
    assert_int_equal(u[1].batch_bytes, 65536);
    assert_int_equal(u[1].batch_age_ms, 250);
    assert_int_equal(u[1].bandwidth, 1 << 20);
    assert_int_equal(u[1].format, OP_UPLINK_JSON);
    op_free(u);
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long line;
        const char *says;
    } cases[] = {
        { "[uplink.c]\nurl = http://a/\nbogus = 1\n", 3, "unknown key" },
        { "[uplink.c]\nurl = http://a/\nurl = http://b/\n", 3, "twice" },
        { "[uplink.c]\nurl = http://a/\nbatch_points = 0\n", 3, "outside [1, 1000000]" },
        { "[uplink.c]\nurl = http://a/\ntimeout = soon\n", 3, "duration" },
        { "[uplink.c]\nurl = http://a/\nformat = xml\n", 3, "not one of: batch, json" },
        { "[uplink.c]\nurl = http://a/\npriority = live\n", 3, "backlog last" },
        { "[uplink.c]\nurl = http://a/\npriority = backlog, live\n", 3, "backlog last" },
        { "[uplink.c]\nurl = http://a/\npriority = live, live, backlog\n", 3, "each once" },
        { "[uplink.c]\nurl = http://a/\npriority = urgent, backlog\n", 3, "important, live" },
        { "[uplink.c]\nurl = http://a/\npriority = live, backlog\ndownsample = 1s\n", 2,
          "not with important_only or downsample" },
        { "[uplink.c]\nurl = http://a/\npriority = live, backlog\nformat = json\n", 2,
          "needs format = batch" },
        { "\n[uplink.c]\nsensors = a\n", 3, "needs a url" },
        { "[uplink.c]\nurl = ftp://host/t\n", 2, "mqtt://" },
        { "[uplink.c]\nurl = mqtt://broker\n", 2, "host[:port]/topic" },
        { "[uplink.c]\nurl = mqtt://broker:99999/t\n", 2, "host[:port]/topic" },
        { "[uplink.c]\nurl = http://a/\ncert = /x.pem\n", 2, "cert and key" },
        { "[uplink.c!]\nurl = http://a/\n", 2, "name" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct op_uplink_cfg *u = NULL;
        size_t n = 0;
        struct op_diag d;
        assert_int_equal(parse(cases[i].text, &u, &n, &d), OP_EINVAL);
        assert_null(u);
        assert_string_equal(d.file, "t.conf");
        assert_int_equal(d.line, cases[i].line);
        if (!strstr(d.msg, cases[i].says))
            fail_msg("case %zu: '%s' lacks '%s'", i, d.msg, cases[i].says);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
