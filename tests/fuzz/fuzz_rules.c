/*
 * libFuzzer target for rule definitions (op_rules_def_parse): the one
 * validator behind `[rule.NAME]` config sections and PUT /v1/rules/{name}.
 * The input is `key = value` lines. A definition that parses must format
 * to its canonical text, which must parse back to an equal definition.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_KV 64

static struct op_str trim(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    return (struct op_str){ p, n };
}

/* Splits text into key = value pairs (lines without '=' are skipped). */
static size_t split(const char *text, size_t len, struct op_rules_kv *kv)
{
    size_t n = 0;
    const char *p = text, *end = text + len;
    while (p < end && n < MAX_KV) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(le - p));
        if (eq) {
            kv[n].key = trim(p, (size_t)(eq - p));
            kv[n].value = trim(eq + 1, (size_t)(le - eq - 1));
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct op_rules_kv kv[MAX_KV];
    size_t n = split((const char *)data, size, kv);
    struct op_rules_def *def = NULL;
    struct op_diag d;
    op_diag_clear(&d);
    if (op_rules_def_parse("fuzz", 4, kv, n, &def, &d) != OP_OK)
        return 0;
    struct op_buf text;
    op_buf_init(&text, 1 << 16);
    if (op_rules_def_format(def, &text) == OP_OK) {
        struct op_rules_kv again[MAX_KV];
        size_t m = split(text.data, text.len, again);
        struct op_rules_def *back = NULL;
        op_diag_clear(&d);
        if (op_rules_def_parse("fuzz", 4, again, m, &back, &d) != OP_OK ||
            !op_rules_def_equal(def, back))
            abort(); /* the canonical form must parse back equal */
        op_rules_def_free(back);
    }
    op_buf_fini(&text);
    op_rules_def_free(def);
    return 0;
}
