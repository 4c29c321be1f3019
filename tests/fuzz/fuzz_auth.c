/*
 * libFuzzer target for the Authorization header: op_sec_bearer_parse over
 * the header value's bytes (libmicrohttpd hands over a NUL-terminated
 * string; the length passed is the string's), then op_sec_token_lookup
 * against a fixed set of two generated tokens, built once. A lookup that
 * succeeds must have been given one of those two tokens.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/sec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Built once: the credentials every input is checked against. Each token
 * has a buffer of exactly the documented size, so ASan sees an overrun. */
static struct op_auth *auth;
static char *tokens[2];

static void release(void)
{
    op_sec_auth_destroy(auth);
    op_free(tokens[0]);
    op_free(tokens[1]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const enum op_role roles[2] = { OP_ROLE_INGEST, OP_ROLE_ADMIN };
    static const char *const names[2] = { "fuzz-ingest", "fuzz-admin" };
    struct op_config *cfg = op_malloc(sizeof *cfg);
    if (!cfg)
        abort();
    op_config_defaults(cfg);
    for (int i = 0; i < 2; i++) {
        char line[OP_CONFIG_ITEM_MAX];
        struct op_diag d;
        op_diag_clear(&d);
        tokens[i] = op_malloc(OP_TOKEN_LEN + 1);
        if (!tokens[i] ||
            op_sec_token_generate(roles[i], names[i], tokens[i], OP_TOKEN_LEN + 1, line,
                                  sizeof line) != OP_OK ||
            op_config_set(cfg, "auth.token", line, &d) != OP_OK)
            abort();
    }
    struct op_diag d;
    op_diag_clear(&d);
    if (op_sec_auth_create(&auth, cfg, &d) != OP_OK)
        abort();
    op_free(cfg);
    atexit(release);
    /* The generated tokens themselves must be found, with their roles. */
    for (int i = 0; i < 2; i++) {
        enum op_role role;
        struct op_str tok = { tokens[i], strlen(tokens[i]) };
        if (strlen(tokens[i]) != OP_TOKEN_LEN ||
            op_sec_token_lookup(auth, tok, &role, NULL) != OP_OK || role != roles[i])
            abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = op_malloc(size + 1);
    if (!value)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    size_t len = strlen(value); /* a header value is a C string */
    struct op_str tok;
    if (op_sec_bearer_parse(value, len, &tok) == OP_OK) {
        if (tok.len == 0 || tok.p < value || tok.p + tok.len > value + len)
            __builtin_trap();
        enum op_role role = OP_ROLE_UNSET;
        const char *name = NULL;
        int rc = op_sec_token_lookup(auth, tok, &role, &name);
        if (rc == OP_OK) {
            int i = role == OP_ROLE_INGEST ? 0 : 1;
            if ((role != OP_ROLE_INGEST && role != OP_ROLE_ADMIN) || !name ||
                tok.len != strlen(tokens[i]) || memcmp(tok.p, tokens[i], tok.len))
                __builtin_trap();
        } else if (rc != OP_ENOTFOUND) {
            __builtin_trap();
        }
    }
    op_free(value);
    return 0;
}
