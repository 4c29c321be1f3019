/*
 * rules_config.c: the config file's [rule.NAME] sections. core keeps their
 * lines as text (it does not know rules); here each section goes through
 * the one validator (op_rules_def_parse), so a rule in the file and the
 * same rule over the API are checked alike, and a bad one stops start-up
 * with the file, the line of the offending key and the reason.
 */
#include <stdio.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/util.h"
#include "rules_int.h"

#define CONFIG_KEYS_MAX 32

/* Points the diagnostic at the line of the key it names. */
static void locate(struct op_diag *d, const struct op_rules_kv *kv, const long *lines, size_t n,
                   const char *file)
{
    snprintf(d->file, sizeof d->file, "%s", file);
    d->line = n ? lines[0] : -1;
    for (size_t i = 0; i < n; i++)
        if (kv[i].key.len == strlen(d->field) && !memcmp(kv[i].key.p, d->field, kv[i].key.len))
            d->line = lines[i];
}

static int one_rule(const struct op_config_sections *rs, const char *name, const char *file,
                    struct op_rules_config_rule *out, struct op_diag *d)
{
    struct op_config_kv ckv[CONFIG_KEYS_MAX];
    struct op_rules_kv kv[CONFIG_KEYS_MAX] = { 0 };
    long lines[CONFIG_KEYS_MAX] = { 0 };
    size_t n = op_config_section_kv(rs, name, ckv, CONFIG_KEYS_MAX);
    if (n > CONFIG_KEYS_MAX) {
        snprintf(d->file, sizeof d->file, "%s", file);
        d->line = ckv[CONFIG_KEYS_MAX - 1].line;
        op_diag_set(d, "invalid_rule", "[rule.%s] has more than %d keys", name,
                    CONFIG_KEYS_MAX);
        return OP_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        kv[i] = (struct op_rules_kv){ ckv[i].key, ckv[i].value };
        lines[i] = ckv[i].line;
    }
    struct op_rules_def *def = NULL;
    int rc = op_rules_def_parse(name, strlen(name), kv, n, &def, d);
    if (rc != OP_OK) {
        locate(d, kv, lines, n, file);
        return rc;
    }
    struct op_buf text;
    op_buf_init(&text, 16 * 1024);
    rc = op_rules_def_format(def, &text);
    op_rules_def_free(def);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (rc == OP_OK && !(out->text = op_buf_steal(&text, NULL)))
        rc = OP_ENOMEM;
    op_buf_fini(&text);
    return rc;
}

int op_rules_config_parse(const struct op_config *cfg, struct op_rules_config_rule **out,
                          size_t *nout, struct op_diag *d)
{
    const struct op_config_sections *rs = &cfg->rules;
    const char *file = cfg->source[0] ? cfg->source : "(flags)";
    *out = NULL;
    *nout = 0;
    if (rs->n == 0)
        return OP_OK;
    struct op_rules_config_rule *v = op_calloc((size_t)rs->n, sizeof(*v));
    if (!v)
        return OP_ENOMEM;
    size_t n = 0;
    int rc = OP_OK;
    for (int i = 0; i < rs->n && rc == OP_OK; i++)
        if (op_config_section_first(rs, i))
            rc = one_rule(rs, rs->items[i].name, file, &v[n++], d);
    if (rc != OP_OK) {
        op_rules_config_free(v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return OP_OK;
}

void op_rules_config_free(struct op_rules_config_rule *rules, size_t n)
{
    if (!rules)
        return;
    for (size_t i = 0; i < n; i++)
        op_free(rules[i].text);
    op_free(rules);
}
