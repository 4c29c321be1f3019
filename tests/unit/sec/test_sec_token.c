/* Roles, tokens, the Authorization parser and the failure limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/sec.h"

static void test_roles(void **state)
{
    (void)state;
    static const struct {
        enum op_role have, need;
        bool ok;
    } cases[] = {
        { OP_ROLE_INGEST, OP_ROLE_INGEST, true },  { OP_ROLE_INGEST, OP_ROLE_READ, false },
        { OP_ROLE_READ, OP_ROLE_INGEST, false },   { OP_ROLE_READ, OP_ROLE_PUBLIC, true },
        { OP_ROLE_ADMIN, OP_ROLE_INGEST, true },   { OP_ROLE_ADMIN, OP_ROLE_NODE, true },
        { OP_ROLE_NODE, OP_ROLE_ADMIN, false },    { OP_ROLE_NODE, OP_ROLE_NODE, true },
        { OP_ROLE_UNSET, OP_ROLE_PUBLIC, true },   { OP_ROLE_UNSET, OP_ROLE_READ, false },
        { OP_ROLE_ADMIN, OP_ROLE_UNSET, false },   { OP_ROLE_PUBLIC, OP_ROLE_READ, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(op_sec_role_allows(cases[i].have, cases[i].need), cases[i].ok);
    enum op_role r;
    assert_int_equal(op_sec_role_parse("admin", 5, &r), OP_OK);
    assert_int_equal(r, OP_ROLE_ADMIN);
    assert_int_equal(op_sec_role_parse("adm", 3, &r), OP_EINVAL);
    assert_int_equal(op_sec_role_parse("admins", 6, &r), OP_EINVAL);
    assert_string_equal(op_sec_role_name(OP_ROLE_NODE), "node");
    assert_string_equal(op_sec_role_name(OP_ROLE_UNSET), "unset");
}

static void test_bearer_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *tok; /* NULL: rejected */
    } cases[] = {
        { "Bearer abc", "abc" },        { "bearer abc", "abc" },    { "BEARER  abc  ", "abc" },
        { "Bearer\tabc", "abc" },       { "Bearer", NULL },         { "Bearer ", NULL },
        { "Bearerabc", NULL },          { "Basic abc", NULL },      { "Bearer a b", NULL },
        { "Bearer a\"b", NULL },        { "", NULL },               { "Bearer a+/=~._-", "a+/=~._-" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct op_str t = { 0 };
        int rc = op_sec_bearer_parse(cases[i].in, strlen(cases[i].in), &t);
        if (!cases[i].tok) {
            assert_int_equal(rc, OP_EINVAL);
            continue;
        }
        assert_int_equal(rc, OP_OK);
        assert_int_equal(t.len, strlen(cases[i].tok));
        assert_memory_equal(t.p, cases[i].tok, t.len);
    }
}

static void add_line(struct op_config *c, const char *key, const char *v, long line)
{
    struct op_diag d;
    op_diag_clear(&d);
    d.line = line;
    assert_int_equal(op_config_set(c, key, v, &d), OP_OK);
}

static void test_generate_and_lookup(void **state)
{
    (void)state;
    char tok[3][OP_TOKEN_LEN + 1], line[3][OP_CONFIG_ITEM_MAX];
    static const enum op_role roles[3] = { OP_ROLE_INGEST, OP_ROLE_READ, OP_ROLE_ADMIN };
    struct op_config c;
    op_config_defaults(&c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(op_sec_token_generate(roles[i], i == 0 ? "gw-1" : NULL, tok[i],
                                               sizeof tok[i], line[i], sizeof line[i]),
                         OP_OK);
        assert_int_equal(strlen(tok[i]), OP_TOKEN_LEN);
        assert_memory_equal(tok[i], OP_TOKEN_PREFIX, strlen(OP_TOKEN_PREFIX));
        add_line(&c, "auth.token", line[i], 10 + i);
    }
    assert_string_not_equal(tok[0], tok[1]);
    assert_memory_equal(line[0], "gw-1 ingest sha256:", 19);
    assert_memory_equal(line[1], "read-", 5); /* a derived name */
    add_line(&c, "auth.cert_role", "Edge Node 7   read", 20);

    struct op_auth *a = NULL;
    struct op_diag d;
    op_diag_clear(&d);
    assert_int_equal(op_sec_auth_create(&a, &c, &d), OP_OK);
    assert_true(op_sec_auth_enabled(a));
    for (int i = 0; i < 3; i++) {
        enum op_role r = OP_ROLE_UNSET;
        const char *name = NULL;
        struct op_str t = { tok[i], strlen(tok[i]) };
        assert_int_equal(op_sec_token_lookup(a, t, &r, &name), OP_OK);
        assert_int_equal(r, roles[i]);
        assert_non_null(name);
    }
    /* One character off, a prefix, or the hash itself are all unknown. */
    tok[0][10] ^= 1;
    struct op_str t = { tok[0], strlen(tok[0]) };
    enum op_role r;
    assert_int_equal(op_sec_token_lookup(a, t, &r, NULL), OP_ENOTFOUND);
    t.len = 20;
    assert_int_equal(op_sec_token_lookup(a, t, &r, NULL), OP_ENOTFOUND);
    const char *hash = strstr(line[1], "sha256:") + 7;
    t = (struct op_str){ hash, strlen(hash) };
    assert_int_equal(op_sec_token_lookup(a, t, &r, NULL), OP_ENOTFOUND);
    assert_int_equal(op_sec_cert_role(a, "Edge Node 7", &r), OP_OK);
    assert_int_equal(r, OP_ROLE_READ);
    assert_int_equal(op_sec_cert_role(a, "Edge Node", &r), OP_ENOTFOUND);
    op_sec_auth_destroy(a);

    /* No credentials configured: auth is off. */
    op_config_defaults(&c);
    assert_int_equal(op_sec_auth_create(&a, &c, &d), OP_OK);
    assert_false(op_sec_auth_enabled(a));
    op_sec_auth_destroy(a);
    char small[8];
    assert_int_equal(op_sec_token_generate(OP_ROLE_READ, NULL, small, sizeof small, line[0],
                                           sizeof line[0]),
                     OP_EINVAL);
    assert_int_equal(op_sec_token_generate(OP_ROLE_PUBLIC, NULL, tok[0], sizeof tok[0], line[0],
                                           sizeof line[0]),
                     OP_EINVAL);
    assert_int_equal(op_sec_token_generate(OP_ROLE_READ, "bad name", tok[0], sizeof tok[0],
                                           line[0], sizeof line[0]),
                     OP_EINVAL);
}

static void test_bad_lines_name_the_line(void **state)
{
    (void)state;
    static const char hash[] =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    char ok[160], dup[160], badhex[160];
    snprintf(ok, sizeof ok, "a read %s", hash);
    snprintf(dup, sizeof dup, "b read %s", hash);
    snprintf(badhex, sizeof badhex, "c read %.*sg", (int)strlen(hash) - 1, hash);
    static const struct {
        const char *key;
        const char *v;
    } bad[] = {
        { "auth.token", "a read" },
        { "auth.token", "a read sha256:00 extra" },
        { "auth.token", "a public sha256:00" },
        { "auth.token", "a root sha256:00" },
        { "auth.token", "a read md5:00" },
        { "auth.token", "a read sha256:00" },
        { "auth.token", "bad/name read sha256:00" },
        { "auth.cert_role", "read" },
        { "auth.cert_role", "cn superuser" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 2; i++) {
        struct op_config c;
        op_config_defaults(&c);
        snprintf(c.source, sizeof c.source, "node.conf");
        add_line(&c, "auth.token", ok, 3);
        if (i < sizeof bad / sizeof bad[0])
            add_line(&c, bad[i].key, bad[i].v, 7);
        else
            add_line(&c, "auth.token", i == sizeof bad / sizeof bad[0] ? dup : badhex, 7);
        struct op_auth *a = NULL;
        struct op_diag d;
        op_diag_clear(&d);
        assert_int_equal(op_sec_auth_create(&a, &c, &d), OP_EINVAL);
        assert_null(a);
        assert_int_equal(d.line, 7);
        assert_string_equal(d.file, "node.conf");
    }
}

static void test_limiter(void **state)
{
    (void)state;
    struct op_limiter *l = NULL;
    assert_int_equal(op_sec_limiter_create(&l, 3, 1000), OP_OK);
    const unsigned char a[4] = { 10, 0, 0, 1 }, b[4] = { 10, 0, 0, 2 };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(op_sec_limiter_check(l, a, 4, 100), 0);
        op_sec_limiter_fail(l, a, 4, 100 + i);
    }
    assert_int_equal(op_sec_limiter_check(l, a, 4, 200), 900);
    assert_int_equal(op_sec_limiter_check(l, b, 4, 200), 0); /* another address */
    assert_int_equal(op_sec_limiter_check(l, a, 4, 1100), 0); /* the window ended */
    op_sec_limiter_fail(l, a, 4, 1200);                       /* a new window */
    assert_int_equal(op_sec_limiter_check(l, a, 4, 1201), 0);
    /* A flood of addresses stays in the fixed table and never blocks b. */
    for (unsigned i = 0; i < 100000; i++) {
        unsigned char x[16] = { 0 };
        memcpy(x, &i, sizeof i);
        op_sec_limiter_fail(l, x, 16, 2000);
    }
    assert_int_equal(op_sec_limiter_check(l, b, 4, 2000), 0);
    assert_int_equal(op_sec_limiter_check(l, a, 0, 2000), 0); /* unknown address family */
    op_sec_limiter_destroy(l);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    struct op_config c;
    op_config_defaults(&c);
    add_line(&c, "auth.cert_role", "x read", 1);
    struct op_auth *a = NULL;
    struct op_diag d;
    op_diag_clear(&d);
    op_alloc_fail_after(1);
    assert_int_equal(op_sec_auth_create(&a, &c, &d), OP_ENOMEM);
    struct op_limiter *l = NULL;
    assert_int_equal(op_sec_limiter_create(&l, 1, 1), OP_ENOMEM);
    op_alloc_fail_after(0);
    assert_null(a);
    assert_null(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_generate_and_lookup),
        cmocka_unit_test(test_bad_lines_name_the_line),
        cmocka_unit_test(test_limiter),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
