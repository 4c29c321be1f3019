/*
 * Tests of the config file's [rule.NAME] sections: core keeps their lines
 * (with line numbers, split sections joined), rules_config.c validates each
 * whole section through op_rules_def_parse, names the line of a bad key,
 * and returns canonical texts; --print-config's form loads back the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/rules.h"

static struct op_config *load(const char *text, int want_rc, struct op_diag *d)
{
    struct op_config *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    op_config_defaults(cfg);
    op_diag_clear(d);
    assert_int_equal(op_config_load_string(cfg, text, strlen(text), "t.conf", d), want_rc);
    return cfg;
}

static void test_sections_parse_to_canonical_rules(void **state)
{
    (void)state;
    struct op_diag d;
    struct op_config *cfg = load("log_level = info\n"
                                 "[rule.hot]\nkind = threshold\nsensors = line1/*\n"
                                 "[rule.quiet]\nkind = silence\nsensors = q/*\nsilence = 1m\n"
                                 "[rule.hot]\nabove = 30\n",
                                 OP_OK, &d);
    assert_int_equal(cfg->rules.n, 6);
    assert_int_equal(cfg->rules.items[5].line, 10);
    struct op_rules_config_rule *r = NULL;
    size_t n = 0;
    assert_int_equal(op_rules_config_parse(cfg, &r, &n, &d), OP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].name, "hot");
    assert_non_null(strstr(r[0].text, "above = 30\n"));
    assert_string_equal(r[1].name, "quiet");
    assert_non_null(strstr(r[1].text, "silence = 1m\n"));
    op_rules_config_free(r, n);
    free(cfg);
}

static void test_bad_key_names_its_line(void **state)
{
    (void)state;
    struct op_diag d;
    struct op_config *cfg = load("[rule.hot]\nkind = threshold\nsensors = a\n"
                                 "above = 30\nclear = 40\n",
                                 OP_OK, &d);
    struct op_rules_config_rule *r = NULL;
    size_t n = 0;
    assert_int_equal(op_rules_config_parse(cfg, &r, &n, &d), OP_EINVAL);
    assert_null(r);
    assert_string_equal(d.file, "t.conf");
    assert_int_equal(d.line, 5);
    assert_string_equal(d.field, "clear");
    free(cfg);

    /* A missing key: the section's first line. */
    cfg = load("\n[rule.hot]\nkind = threshold\n", OP_OK, &d);
    assert_int_equal(op_rules_config_parse(cfg, &r, &n, &d), OP_EINVAL);
    assert_int_equal(d.line, 3);
    free(cfg);
}

static void test_limits(void **state)
{
    (void)state;
    struct op_diag d;
    size_t cap = (size_t)OP_CONFIG_SECTION_LINES * 24 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "[rule.many]\n");
    for (int i = 0; i <= OP_CONFIG_SECTION_LINES; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d = v\n", i);
    struct op_config *cfg = load(text, OP_EINVAL, &d);
    assert_int_equal(d.line, OP_CONFIG_SECTION_LINES + 2);
    free(cfg);
    free(text);

    /* libinih would cut a section name past 49 bytes into another name:
     * a rule's name in the file is at most 44 bytes. */
    char name[46];
    memset(name, 'n', sizeof name);
    name[44] = '\0';
    char t2[160];
    snprintf(t2, sizeof t2, "[rule.%s]\nkind = silence\n", name);
    cfg = load(t2, OP_OK, &d);
    assert_int_equal(strlen(cfg->rules.items[0].name), 44);
    free(cfg);
    name[44] = 'n';
    name[45] = '\0';
    snprintf(t2, sizeof t2, "\n[rule.%s]\nkind = silence\n", name);
    cfg = load(t2, OP_EINVAL, &d);
    assert_int_equal(d.line, 2);
    free(cfg);
}

static void test_print_round_trips(void **state)
{
    (void)state;
    struct op_diag d;
    struct op_config *cfg = load("[rule.hot]\nkind = threshold\nsensors = line1/*\nabove = 30\n",
                                 OP_OK, &d);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    assert_non_null(f);
    op_config_print(cfg, f);
    fclose(f);
    struct op_config *again = load(out, OP_OK, &d);
    assert_int_equal(again->rules.n, 3);
    assert_string_equal(again->rules.items[2].key, "above");
    assert_string_equal(again->rules.items[2].value, "30");
    free(out);
    free(cfg);
    free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_parse_to_canonical_rules),
        cmocka_unit_test(test_bad_key_names_its_line),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_print_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
