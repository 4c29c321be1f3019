/*
 * libFuzzer target for configuration files: op_config_load_string over the
 * defaults (libinih's syntax, the key table, value parsing), then, when the
 * file loads, the credentials it names (op_sec_auth_create: the auth.token
 * and auth.cert_role lines). A config that loads must also print (as
 * `outpost config print` does) to text that loads again to the same
 * values, unless a printed line is longer than the reader takes.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/sec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The printed form of cfg, in a buffer the caller frees with free(). */
static char *print(const struct op_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    op_config_print(cfg, f);
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}

/* Whether some printed value holds whitespace then ';', which libinih
 * reads as the start of an inline comment. */
static bool has_inline_comment(const char *text, size_t len)
{
    for (size_t i = 1; i < len; i++)
        if (text[i] == ';' && isspace((unsigned char)text[i - 1]))
            return true;
    return false;
}

/* Printing and loading again must give the same configuration. */
static void round_trip(const struct op_config *cfg)
{
    size_t len = 0, len2 = 0;
    char *text = print(cfg, &len);
    struct op_config *again = op_malloc(sizeof *again);
    if (!text || !again) {
        free(text);
        op_free(again);
        return;
    }
    op_config_defaults(again);
    struct op_diag d;
    op_diag_clear(&d);
    /* A continuation line, or a value set with --set, may print as a line
     * longer than the reader takes: that one failure is expected. */
    if (op_config_load_string(again, text, len, "printed", &d) != OP_OK) {
        if (!strstr(d.msg, "longer than"))
            __builtin_trap();
        free(text);
        op_free(again);
        return;
    }
    /* A value holding whitespace then ';' (from a continuation line, or
     * `key =;v`) prints as text that reads back as an inline comment: a
     * known limit of the printer (INI has no quoting), left out of the
     * comparison. */
    char *text2 = print(again, &len2);
    if (text2 && (len2 != len || memcmp(text, text2, len)) && !has_inline_comment(text, len))
        __builtin_trap();
    free(text);
    free(text2);
    op_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct op_config *cfg = op_malloc(sizeof *cfg);
    if (!cfg)
        return 0;
    op_config_defaults(cfg);
    struct op_diag d;
    op_diag_clear(&d);
    int rc = op_config_load_string(cfg, (const char *)data, size, "fuzz", &d);
    if (rc == OP_OK) {
        round_trip(cfg);
        struct op_auth *a = NULL;
        op_diag_clear(&d);
        rc = op_sec_auth_create(&a, cfg, &d);
        if (rc == OP_OK)
            op_sec_auth_destroy(a);
        else if (rc != OP_EINVAL && rc != OP_ENOMEM)
            __builtin_trap();
    } else if (!d.code[0]) {
        __builtin_trap();
    }
    op_free(cfg);
    return 0;
}
