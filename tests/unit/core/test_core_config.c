/* Configuration: defaults, file loading with line numbers, --set, reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "outpost/err.h"

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/op-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_defaults(void **state)
{
    (void)state;
    struct op_config c;
    op_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.data_dir, "./outpost-data");
    assert_int_equal(c.sync_mode, OP_SYNC_FULL);
    assert_true(c.http_max_body == 1048576);
    assert_true(c.http_max_batch == 10000);
    assert_true(c.http_timeout_ms == 30000);
    assert_true(c.retention_age_ms == 0);
    assert_int_equal(c.log_level, OP_LOG_INFO);
}

static void test_load_file(void **state)
{
    (void)state;
    write_file("# comment\nlisten = 0.0.0.0:9000\n[store]\nsync = normal\nretention_age = 7d\n"
               "[http]\nmax_body = 64KiB\n");
    struct op_config c;
    struct op_diag d;
    op_config_defaults(&c);
    op_diag_clear(&d);
    assert_int_equal(op_config_load_file(&c, path, &d), OP_OK);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_int_equal(c.sync_mode, OP_SYNC_NORMAL);
    assert_true(c.retention_age_ms == 7LL * 86400000);
    assert_true(c.http_max_body == 65536);
    unlink(path);
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    static const struct { const char *text; long line; const char *field; } cases[] = {
        { "listen = 127.0.0.1:1\n[store]\nsyncc = full\n", 3, "store.syncc" },
        { "[store]\nsync = sometimes\n", 2, "store.sync" },
        { "\n\n[http]\nmax_batch = 0\n", 4, "http.max_batch" },
        { "[http]\ntimeout = soon\n", 2, "http.timeout" },
        { "[http]\nmax_body = 1TB\n", 2, "http.max_body" },
        { "[store\nsync=full\n", 1, "" },
        { "[rules]\n\nwebhook_url = ftp://x/y\n", 3, "rules.webhook_url" },
        { "[rules]\nwebhook_url = http:///nohost\n", 2, "rules.webhook_url" },
        { "[rules]\nwebhook_url = https://a b/\n", 2, "rules.webhook_url" },
        { "[rules]\nwebhook_queue = 0\n", 2, "rules.webhook_queue" },
        { "[uplink.c]\nurl = http://a/\n= v\n", 3, "" }, /* found by fuzz_config */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(cases[i].text);
        struct op_config c;
        struct op_diag d;
        op_config_defaults(&c);
        op_diag_clear(&d);
        assert_true(op_config_load_file(&c, path, &d) < 0);
        assert_int_equal(d.line, cases[i].line);
        assert_string_equal(d.file, path);
        assert_string_equal(d.field, cases[i].field);
        assert_true(strlen(d.msg) > 0);
        unlink(path);
    }
}

static void test_set_and_reload(void **state)
{
    (void)state;
    struct op_config live, fresh;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&live);
    op_config_defaults(&fresh);
    assert_int_equal(op_config_set(&fresh, "log_level", "debug", &d), OP_OK);
    assert_int_equal(op_config_set(&fresh, "store.sync", "normal", &d), OP_OK);
    /* Only reloadable keys move. */
    assert_int_equal(op_config_apply_reloadable(&live, &fresh), 1);
    assert_int_equal(live.log_level, OP_LOG_DEBUG);
    assert_int_equal(live.sync_mode, OP_SYNC_FULL);
    assert_int_equal(op_config_set(&live, "nope", "1", &d), OP_EINVAL);
    assert_string_equal(d.code, "unknown_key");
}

static void test_webhook_keys(void **state)
{
    (void)state;
    struct op_config c;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&c);
    assert_string_equal(c.rules_webhook_url, "");
    assert_true(c.rules_webhook_timeout_ms == 5000);
    assert_true(c.rules_webhook_queue == 1024);
    assert_int_equal(op_config_set(&c, "rules.webhook_url", "HTTPS://hooks.example:8443/a?b=1",
                                   &d), OP_OK);
    assert_string_equal(c.rules_webhook_url, "HTTPS://hooks.example:8443/a?b=1");
    assert_int_equal(op_config_set(&c, "rules.webhook_url", "http://[::1]:9/", &d), OP_OK);
    assert_int_equal(op_config_set(&c, "rules.webhook_url", "", &d), OP_OK); /* off again */
    assert_int_equal(op_config_set(&c, "rules.webhook_url", "127.0.0.1:9", &d), OP_EINVAL);
    assert_int_equal(op_config_set(&c, "rules.webhook_timeout", "50ms", &d), OP_ERANGE);
}

static void test_print_round_trips(void **state)
{
    (void)state;
    struct op_config c, back;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&c);
    op_config_set(&c, "store.retention_bytes", "10MiB", &d);
    op_config_set(&c, "http.timeout", "2s", &d);
    op_config_set(&c, "insecure_bind", "true", &d);
    op_config_set(&c, "tls.min_version", "1.2", &d);
    op_config_set(&c, "auth.token", "gw1 ingest sha256:00", &d);
    op_config_set(&c, "auth.token", "ops admin sha256:11", &d);
    snprintf(path, sizeof path, "/tmp/op-cfg-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    op_config_print(&c, f);
    fclose(f);
    op_config_defaults(&back);
    assert_int_equal(op_config_load_file(&back, path, &d), OP_OK);
    assert_int_equal(back.auth_tokens.n, 2);
    assert_string_equal(back.auth_tokens.items[1].v, "ops admin sha256:11");
    assert_true(back.auth_tokens.items[1].line > 0);
    assert_true(back.insecure_bind);
    /* Lines and the source name differ by design; the values must not. */
    for (int i = 0; i < back.auth_tokens.n; i++)
        back.auth_tokens.items[i].line = 0;
    memset(back.source, 0, sizeof back.source);
    assert_memory_equal(&c, &back, sizeof c);
    unlink(path);
}

static void test_load_string_and_bools(void **state)
{
    (void)state;
    struct op_config c;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&c);
    static const char ok[] = "insecure_bind = true\n[auth]\ntoken = a read sha256:aa\n";
    assert_int_equal(op_config_load_string(&c, ok, sizeof ok - 1, "mem", &d), OP_OK);
    assert_true(c.insecure_bind);
    assert_int_equal(c.auth_tokens.items[0].line, 3);
    static const char bad[] = "log_level = info\n\ninsecure_bind = yes\n[http]\n";
    op_diag_clear(&d);
    assert_int_equal(op_config_load_string(&c, bad, sizeof bad - 1, "mem", &d), OP_EINVAL);
    assert_int_equal(d.line, 3);
    assert_string_equal(d.field, "insecure_bind");
    assert_int_equal(op_config_load_string(&c, "", 0, "mem", &d), OP_OK);

    /* libinih reads 199 bytes of a line: a longer one must be an error,
     * never a value cut short with its tail read as another key (found
     * by the config fuzzer). */
    char longline[400];
    int n = snprintf(longline, sizeof longline, "data_dir = %0250d listen=9.9.9.9:1\n", 0);
    op_diag_clear(&d);
    op_config_defaults(&c);
    assert_int_equal(op_config_load_string(&c, longline, (size_t)n, "mem", &d), OP_EINVAL);
    assert_int_equal(d.line, 1);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    static const char nul[] = "log_level = info\0listen = 9.9.9.9:1\n";
    op_diag_clear(&d);
    assert_int_equal(op_config_load_string(&c, nul, sizeof nul - 1, "mem", &d), OP_EINVAL);
}

static void test_listen_split(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(op_config_listen_split("127.0.0.1:8080", host, sizeof host, &port), OP_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(op_config_listen_split("[::1]:0", host, sizeof host, &port), OP_OK);
    assert_string_equal(host, "[::1]");
    assert_int_equal(op_config_listen_split("nohost", host, sizeof host, &port), OP_EINVAL);
    assert_int_equal(op_config_listen_split("h:70000", host, sizeof host, &port), OP_EINVAL);
}

/* etc/outpost.conf documents every key with its default: loading it must
 * change nothing. */
static void test_shipped_file_is_the_defaults(void **state)
{
    (void)state;
    struct op_config c, def;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&def);
    op_config_defaults(&c);
    if (op_config_load_file(&c, OUTPOST_ETC_CONF, &d))
        fail_msg("%s:%ld: %s", d.file, d.line, d.msg);
    memset(c.source, 0, sizeof c.source);
    assert_memory_equal(&c, &def, sizeof c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_set_and_reload),
        cmocka_unit_test(test_webhook_keys),
        cmocka_unit_test(test_print_round_trips),
        cmocka_unit_test(test_listen_split),
        cmocka_unit_test(test_load_string_and_bools),
        cmocka_unit_test(test_shipped_file_is_the_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
