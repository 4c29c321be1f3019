/*
 * Bearer tokens and client-certificate roles. The config holds only the
 * SHA-256 of each token: a token is 32 random bytes, so a plain hash is
 * as good as a slow KDF and costs well under a microsecond per request.
 * A presented token is hashed and compared with every configured hash in
 * constant time, without stopping at the first match, so neither the
 * comparison nor the table position leaks through timing.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "sec_int.h"

#define NAME_MAX_LEN 64
#define HASH_PREFIX "sha256:"

struct auth_token {
    char name[NAME_MAX_LEN + 1];
    enum op_role role;
    uint8_t hash[OP_SHA256_LEN];
};

struct auth_cert {
    char cn[OP_CONFIG_ITEM_MAX];
    enum op_role role;
};

struct op_auth {
    int ntokens, ncerts;
    struct auth_token tokens[OP_CONFIG_LIST_MAX];
    struct auth_cert certs[OP_CONFIG_LIST_MAX];
};

static bool valid_name(const char *s, size_t len)
{
    if (!len || len > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

static int parse_hash(const char *s, size_t len, uint8_t out[OP_SHA256_LEN])
{
    size_t pl = strlen(HASH_PREFIX);
    if (len != pl + 2 * OP_SHA256_LEN || strncmp(s, HASH_PREFIX, pl))
        return OP_EINVAL;
    return sec__hex_decode(out, OP_SHA256_LEN, s + pl, len - pl) ? OP_EINVAL : OP_OK;
}

/* Splits s at spaces or tabs into at most max fields; returns the count. */
static int split_fields(const char *s, struct op_str *f, int max)
{
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *start = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (n == max)
            return max + 1;
        f[n].p = start;
        f[n].len = (size_t)(s - start);
        n++;
    }
    return n;
}

/* Points d at the config line of item, for an error about it. */
static int line_error(struct op_diag *d, const struct op_config *cfg,
                      const struct op_config_item *item, const char *key, const char *why)
{
    snprintf(d->file, sizeof d->file, "%s", cfg->source);
    d->line = item->line > 0 ? item->line : -1;
    snprintf(d->field, sizeof d->field, "%s", key);
    op_diag_set(d, "invalid_config", "%s: %s", key, why);
    return OP_EINVAL;
}

static int add_token(struct op_auth *a, const struct op_config *cfg,
                     const struct op_config_item *it, struct op_diag *d)
{
    struct op_str f[3];
    if (split_fields(it->v, f, 3) != 3)
        return line_error(d, cfg, it, "auth.token", "expected `NAME ROLE sha256:HEX`");
    struct auth_token *t = &a->tokens[a->ntokens];
    if (!valid_name(f[0].p, f[0].len))
        return line_error(d, cfg, it, "auth.token", "the name must be 1-64 of [A-Za-z0-9_.-]");
    if (op_sec_role_parse(f[1].p, f[1].len, &t->role) || t->role == OP_ROLE_PUBLIC)
        return line_error(d, cfg, it, "auth.token", "the role must be ingest, read, admin or node");
    if (parse_hash(f[2].p, f[2].len, t->hash))
        return line_error(d, cfg, it, "auth.token",
                          "the hash must be sha256: and 64 lower-case hex digits");
    for (int i = 0; i < a->ntokens; i++) {
        if (!memcmp(a->tokens[i].hash, t->hash, OP_SHA256_LEN))
            return line_error(d, cfg, it, "auth.token", "the same token appears twice");
        if (strlen(a->tokens[i].name) == f[0].len && !memcmp(a->tokens[i].name, f[0].p, f[0].len))
            return line_error(d, cfg, it, "auth.token", "the same name appears twice");
    }
    memcpy(t->name, f[0].p, f[0].len);
    t->name[f[0].len] = '\0';
    a->ntokens++;
    return OP_OK;
}

/* "CN ROLE": the role is the last field, the common name (which may hold
 * spaces) everything before it. */
static int add_cert(struct op_auth *a, const struct op_config *cfg,
                    const struct op_config_item *it, struct op_diag *d)
{
    const char *v = it->v;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    size_t sp = len;
    while (sp && v[sp - 1] != ' ' && v[sp - 1] != '\t')
        sp--;
    size_t cn_len = sp;
    while (cn_len && (v[cn_len - 1] == ' ' || v[cn_len - 1] == '\t'))
        cn_len--;
    struct auth_cert *c = &a->certs[a->ncerts];
    if (!sp || !cn_len)
        return line_error(d, cfg, it, "auth.cert_role", "expected `CN ROLE`");
    if (op_sec_role_parse(v + sp, len - sp, &c->role) || c->role == OP_ROLE_PUBLIC)
        return line_error(d, cfg, it, "auth.cert_role", "the role must be ingest, read, admin or node");
    memcpy(c->cn, v, cn_len);
    c->cn[cn_len] = '\0';
    a->ncerts++;
    return OP_OK;
}

int op_sec_auth_create(struct op_auth **out, const struct op_config *cfg, struct op_diag *d)
{
    struct op_auth *a = op_calloc(1, sizeof *a);
    if (!a)
        return OP_ENOMEM;
    int rc = OP_OK;
    for (int i = 0; i < cfg->auth_tokens.n && !rc; i++)
        rc = add_token(a, cfg, &cfg->auth_tokens.items[i], d);
    for (int i = 0; i < cfg->auth_cert_roles.n && !rc; i++)
        rc = add_cert(a, cfg, &cfg->auth_cert_roles.items[i], d);
    if (rc) {
        op_free(a);
        return rc;
    }
    *out = a;
    return OP_OK;
}

void op_sec_auth_destroy(struct op_auth *a)
{
    if (a)
        explicit_bzero(a, sizeof *a);
    op_free(a);
}

bool op_sec_auth_enabled(const struct op_auth *a)
{
    return a && (a->ntokens > 0 || a->ncerts > 0);
}

int op_sec_bearer_parse(const char *value, size_t len, struct op_str *token)
{
    static const char scheme[] = "Bearer";
    size_t sl = sizeof scheme - 1;
    if (len <= sl || strncasecmp(value, scheme, sl) || (value[sl] != ' ' && value[sl] != '\t'))
        return OP_EINVAL;
    size_t i = sl;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end == i)
        return OP_EINVAL;
    /* RFC 6750 token68 characters; anything else is not a token of ours. */
    for (size_t k = i; k < end; k++)
        if (!isalnum((unsigned char)value[k]) && !strchr("-._~+/=", value[k]))
            return OP_EINVAL;
    token->p = value + i;
    token->len = end - i;
    return OP_OK;
}

int op_sec_token_lookup(const struct op_auth *a, struct op_str token, enum op_role *role,
                        const char **name)
{
    uint8_t h[OP_SHA256_LEN];
    op_sec_sha256(token.p, token.len, h);
    int found = -1;
    /* Every entry is compared, whatever matched before. */
    for (int i = 0; i < a->ntokens; i++)
        if (op_sec_ct_equal(h, a->tokens[i].hash, OP_SHA256_LEN))
            found = i;
    if (found < 0)
        return OP_ENOTFOUND;
    *role = a->tokens[found].role;
    if (name)
        *name = a->tokens[found].name;
    return OP_OK;
}

int op_sec_cert_role(const struct op_auth *a, const char *cn, enum op_role *role)
{
    for (int i = 0; i < a->ncerts; i++) {
        if (!strcmp(a->certs[i].cn, cn)) {
            *role = a->certs[i].role;
            return OP_OK;
        }
    }
    return OP_ENOTFOUND;
}

int op_sec_token_generate(enum op_role role, const char *name, char *token, size_t tokenlen,
                          char *line, size_t linelen)
{
    if (role <= OP_ROLE_PUBLIC || role > OP_ROLE_NODE || tokenlen < OP_TOKEN_LEN + 1 ||
        (name && !valid_name(name, strlen(name))))
        return OP_EINVAL;
    uint8_t raw[32], h[OP_SHA256_LEN];
    if (op_sec_random(raw, sizeof raw))
        return OP_EIO;
    memcpy(token, OP_TOKEN_PREFIX, strlen(OP_TOKEN_PREFIX));
    sec__hex_encode(token + strlen(OP_TOKEN_PREFIX), raw, sizeof raw);
    token[OP_TOKEN_LEN] = '\0';
    explicit_bzero(raw, sizeof raw);
    op_sec_sha256(token, OP_TOKEN_LEN, h);
    char hh[2 * OP_SHA256_LEN + 1];
    sec__hex_encode(hh, h, sizeof h);
    hh[2 * OP_SHA256_LEN] = '\0';
    char derived[32];
    if (!name) {
        snprintf(derived, sizeof derived, "%s-%.8s", op_sec_role_name(role), hh);
        name = derived;
    }
    int n = snprintf(line, linelen, "%s %s " HASH_PREFIX "%s", name, op_sec_role_name(role), hh);
    return n > 0 && (size_t)n < linelen ? OP_OK : OP_ERANGE;
}
