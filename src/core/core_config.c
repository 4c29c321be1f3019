/*
 * Configuration: one table names every key with its type, default, bounds,
 * reloadability and help; loading, --set, printing and reload all walk it
 * (nginx's ngx_command_t). The INI syntax itself is parsed by libinih; this
 * file feeds it lines through its own reader so every error names the line.
 */
#include <ini.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outpost/core.h"
#include "outpost/err.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const sync_modes[] = { "full", "normal", NULL };
static const char *const tls_versions[] = { "1.3", "1.2", NULL };

#define OFF(f) offsetof(struct op_config, f)
#define STR(f) OFF(f), sizeof(((struct op_config *)0)->f)
#define KB 1024LL
#define MB (1024LL * 1024)
#define DAY (86400000LL)

static const struct op_config_field keys[] = {
    { "listen", OP_T_STR, STR(listen), "127.0.0.1:8080", 0, 0, NULL, false,
      "address and port to serve HTTP on (port 0 picks a free one)", NULL },
    { "data_dir", OP_T_STR, STR(data_dir), "./outpost-data", 0, 0, NULL, false,
      "directory holding the database", NULL },
    { "log_level", OP_T_ENUM, OFF(log_level), 0, "info", 0, 0, log_levels, true,
      "error | warn | info | debug", NULL },
    { "user", OP_T_STR, STR(user), "", 0, 0, NULL, false,
      "when started as root, run as this user once the port is bound (before the store opens)",
      NULL },
    { "insecure_bind", OP_T_BOOL, OFF(insecure_bind), 0, "false", 0, 0, NULL, false,
      "allow a non-loopback listen address without TLS and credentials (loudly)", NULL },
    { "http.max_body", OP_T_SIZE, OFF(http_max_body), 0, "1MiB", 64, 256 * MB, NULL, false,
      "largest request body accepted (413 above)", NULL },
    { "http.max_batch", OP_T_INT, OFF(http_max_batch), 0, "10000", 1, 1000000, NULL, false,
      "most readings in one request (413 above)", NULL },
    { "http.max_connections", OP_T_INT, OFF(http_max_conns), 0, "1024", 1, 65536, NULL, false,
      "connections served at once; more are refused", NULL },
    { "http.max_inflight", OP_T_SIZE, OFF(http_max_inflight), 0, "16MiB", 64 * KB, 4096 * MB, NULL,
      false, "request body bytes held at once over all connections (503 above)", NULL },
    { "http.timeout", OP_T_DURATION, OFF(http_timeout_ms), 0, "30s", 1000, DAY, NULL, false,
      "a connection idle this long (slow headers or body included) is closed", NULL },
    { "http.threads", OP_T_INT, OFF(http_threads), 0, "1", 1, 64, NULL, false,
      "HTTP event-loop threads", NULL },
    { "store.sync", OP_T_ENUM, OFF(sync_mode), 0, "full", 0, 0, sync_modes, false,
      "full: acknowledged readings survive power loss; normal: survive a process crash", NULL },
    { "store.queue_bytes", OP_T_SIZE, OFF(queue_max_bytes), 0, "4MiB", 1, 4096 * MB, NULL, false,
      "cap on bytes waiting for the writer (503 above)", NULL },
    { "store.readers", OP_T_INT, OFF(store_readers), 0, "2", 1, 64, NULL, false,
      "reader threads for queries", NULL },
    { "store.retention_age", OP_T_DURATION, OFF(retention_age_ms), 0, "0", 0, 100000 * DAY, NULL,
      false, "delete readings older than this (0 keeps them forever)", NULL },
    { "store.retention_bytes", OP_T_SIZE, OFF(retention_bytes), 0, "0", 0, INT64_MAX / 2, NULL,
      false, "keep the database under this size, oldest readings first (0: no quota)", NULL },
    { "store.retention_interval", OP_T_DURATION, OFF(retention_interval_ms), 0, "1s", 10, DAY, NULL,
      false, "how often retention deletes a bounded chunk", NULL },
    { "tls.cert", OP_T_STR, STR(tls_cert), "", 0, 0, NULL, false,
      "PEM certificate (chain) for HTTPS; empty serves plain HTTP", NULL },
    { "tls.key", OP_T_STR, STR(tls_key), "", 0, 0, NULL, false, "PEM private key of tls.cert",
      NULL },
    { "tls.client_ca", OP_T_STR, STR(tls_client_ca), "", 0, 0, NULL, false,
      "PEM CA certificate(s); when set, clients must present a certificate it signed", NULL },
    { "tls.min_version", OP_T_ENUM, OFF(tls_min_version), 0, "1.3", 0, 0, tls_versions, false,
      "oldest TLS version accepted: 1.3 | 1.2", NULL },
    { "auth.token", OP_T_LIST, OFF(auth_tokens), 0, "", 0, 0, NULL, false,
      "NAME ROLE sha256:HEX, one per line (from `outpost token create`)", NULL },
    { "auth.cert_role", OP_T_LIST, OFF(auth_cert_roles), 0, "", 0, 0, NULL, false,
      "CN ROLE: the role of a verified client certificate, one per line", NULL },
    { "auth.max_failures", OP_T_INT, OFF(auth_max_failures), 0, "10", 1, 1000000, NULL, false,
      "failed authentications from one address before it gets 429", NULL },
    { "auth.failure_window", OP_T_DURATION, OFF(auth_failure_window_ms), 0, "1m", 1000, DAY, NULL,
      false, "the window those failures are counted in, and how long 429 lasts", NULL },
    { "rules.webhook_url", OP_T_URL, STR(rules_webhook_url), "", 0, 0, NULL, false,
      "POST every alert event here as JSON (http:// or https://; empty: no webhook)", NULL },
    { "rules.webhook_timeout", OP_T_DURATION, OFF(rules_webhook_timeout_ms), 0, "5s", 100,
      300000, NULL, false, "time allowed for one webhook request (connect included)", NULL },
    { "rules.webhook_queue", OP_T_INT, OFF(rules_webhook_queue), 0, "1024", 1, 1000000, NULL,
      false, "alert events held for the webhook; when full the oldest is dropped (counted)", NULL },
    { "rules.webhook_ca", OP_T_STR, STR(rules_webhook_ca), "", 0, 0, NULL, false,
      "PEM CA file to verify an https webhook with (empty: the system CA bundle)", NULL },
    { "rules.webhook_token", OP_T_STR, STR(rules_webhook_token), "", 0, 0, NULL, false,
      "sent to the webhook as `Authorization: Bearer TOKEN` (empty: no header)", NULL },
    { "receiver.seal_key", OP_T_LIST, OFF(receiver_seal_keys), 0, "", 0, 0, NULL, false,
      "sealing key file(s) that open sealed uplink batches; with any, unsealed ones are refused",
      NULL },
    { "receiver.max_body", OP_T_SIZE, OFF(receiver_max_body), 0, "64MiB", 1024, 1024 * MB, NULL,
      false, "largest uplink batch POST /v1/uplink accepts (bytes on the wire)", NULL },
    { "receiver.max_points", OP_T_INT, OFF(receiver_max_points), 0, "1000000", 1, 16777216, NULL,
      false, "most readings one uplink batch may hold", NULL },
    { "receiver.bind_node", OP_T_BOOL, OFF(receiver_bind_node), 0, "false", 0, 0, NULL, false,
      "a batch's node id must equal the sender's token name or certificate CN", NULL },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct op_config_field *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}


/* Appends one value of a repeatable key; an empty default adds nothing. */
static int list_append(struct op_config_list *l, const struct op_config_field *k, const char *v,
                       size_t len, struct op_diag *d)
{
    if (!len)
        return OP_OK;
    if (l->n >= OP_CONFIG_LIST_MAX) {
        op_diag_set(d, "invalid_config", "%s: more than %d lines", k->name, OP_CONFIG_LIST_MAX);
        return OP_ERANGE;
    }
    if (len >= OP_CONFIG_ITEM_MAX) {
        op_diag_set(d, "invalid_config", "%s: value longer than %d bytes", k->name,
                    OP_CONFIG_ITEM_MAX - 1);
        return OP_EINVAL;
    }
    memcpy(l->items[l->n].v, v, len + 1);
    l->items[l->n].line = d->line > 0 ? d->line : 0;
    l->n++;
    return OP_OK;
}

/* The shape only (scheme, a host, no blanks or control bytes); the sink
 * that uses the URL parses it fully when it starts. */
static bool url_ok(const char *v)
{
    size_t skip = !strncasecmp(v, "http://", 7) ? 7 : !strncasecmp(v, "https://", 8) ? 8 : 0;
    if (!skip || !v[skip] || strchr("/?#:", v[skip]))
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

int op_config_field_set(void *base, const struct op_config_field *k, const char *v,
                        struct op_diag *d)
{
    char *cfg = base;
    size_t len = strlen(v);
    int64_t n = 0;
    int rc = OP_OK;
    snprintf(d->field, sizeof d->field, "%s", k->name);
    if (k->type == OP_T_URL && len && !url_ok(v)) {
        op_diag_set(d, "invalid_config",
                    "%s: '%.200s' is not an http:// or https:// URL with a host", k->name, v);
        return OP_EINVAL;
    }
    switch (k->type) {
    case OP_T_URL: /* a string once its shape is checked */
    case OP_T_STR:
        if (len >= k->size) {
            op_diag_set(d, "invalid_config", "%s: value longer than %zu bytes", k->name,
                        k->size - 1);
            return OP_EINVAL;
        }
        memcpy(cfg + k->offset, v, len + 1);
        return OP_OK;
    case OP_T_CUSTOM:
        if (k->parse(cfg + k->offset, v) == OP_OK)
            return OP_OK;
        op_diag_set(d, "invalid_config", "%s: '%.64s' is not %s", k->name, v, k->help);
        return OP_EINVAL;
    case OP_T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "false")) {
            *(bool *)(cfg + k->offset) = v[0] == 't';
            return OP_OK;
        }
        op_diag_set(d, "invalid_config", "%s: '%s' is not true or false", k->name, v);
        return OP_EINVAL;
    case OP_T_LIST:
        return list_append((struct op_config_list *)(cfg + k->offset), k, v, len, d);
    case OP_T_ENUM: {
        char allowed[160] = "";
        for (int i = 0; k->choices[i]; i++) {
            if (!strcmp(v, k->choices[i])) {
                *(int *)(cfg + k->offset) = i;
                return OP_OK;
            }
            size_t at = strlen(allowed);
            snprintf(allowed + at, sizeof allowed - at, "%s%s", i ? ", " : "", k->choices[i]);
        }
        op_diag_set(d, "invalid_config", "%s: '%.64s' is not one of: %s", k->name, v, allowed);
        return OP_EINVAL;
    }
    case OP_T_INT:
        rc = op_parse_i64(v, len, &n);
        break;
    case OP_T_SIZE:
        rc = op_parse_size(v, len, &n);
        break;
    case OP_T_DURATION:
        rc = op_parse_duration_ms(v, len, &n);
        break;
    }
    if (rc) {
        static const char *const what[] = { "", "an integer", "a size (e.g. 64KiB, 4MiB)",
                                            "a duration (e.g. 500ms, 30s, 2h, 7d)" };
        op_diag_set(d, "invalid_config", "%s: '%s' is not %s", k->name, v, what[k->type]);
        return OP_EINVAL;
    }
    /* Zero means "off" for the retention keys; bounds apply otherwise. */
    if ((n < k->min || n > k->max) && !(n == 0 && k->min == 0)) {
        op_diag_set(d, "invalid_config", "%s: %s is outside [%lld, %lld]", k->name, v,
                    (long long)k->min, (long long)k->max);
        return OP_ERANGE;
    }
    *(int64_t *)(cfg + k->offset) = n;
    return OP_OK;
}

void op_config_defaults(struct op_config *cfg)
{
    struct op_diag d;
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKEYS; i++) {
        op_diag_clear(&d);
        /* The defaults are constants checked by the unit tests. */
        (void)op_config_field_set(cfg, &keys[i], keys[i].def, &d);
    }
}

int op_config_set(struct op_config *cfg, const char *key, const char *value, struct op_diag *d)
{
    const struct op_config_field *k = find_key(key);
    if (!k) {
        snprintf(d->field, sizeof d->field, "%s", key);
        op_diag_set(d, "unknown_key", "unknown key '%s'", key);
        return OP_EINVAL;
    }
    return op_config_field_set(cfg, k, value, d);
}

/* inih hands us lines through this reader so we always know the line. */
struct load_ctx {
    FILE *f;
    long line;
    struct op_config *cfg;
    struct op_diag *d;
    int rc;
};

/* Stops the parse at the current line with reason in d (inih sees the end
 * of the file; load_stream reports lc->rc). */
static char *line_error(struct load_ctx *lc, const char *reason)
{
    lc->d->line = lc->line;
    op_diag_set(lc->d, "invalid_config", "%s", reason);
    lc->rc = OP_EINVAL;
    return NULL;
}

/* inih's line buffer holds num - 1 bytes (INI_MAX_LINE, fixed when the
 * library was built). Given a longer line through fgets, it would take the
 * first num - 1 bytes as the whole line and parse the rest as a line of
 * its own: the value silently cut short and its tail read as another key
 * (found by tests/fuzz/fuzz_config.c). A NUL byte would likewise hide the
 * rest of its line. Both are errors that name the line. */
/* libinih keeps at most this many bytes of a section name and cuts the
 * rest silently (MAX_SECTION - 1 in its ini.c, not in its header), which
 * would turn a long [rule.NAME] into another rule's name. */
#define INIH_SECTION_MAX 49

static bool section_too_long(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '[')
        return false;
    const char *end = strchr(line, ']');
    size_t len = end ? (size_t)(end - line - 1) : strlen(line + 1);
    return len > INIH_SECTION_MAX;
}

static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *lc = stream;
    int n = 0, c = EOF;
    while (n < num - 1 && (c = getc(lc->f)) != EOF) {
        str[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return NULL;
    str[n] = '\0';
    lc->line++;
    if (memchr(str, '\0', (size_t)n))
        return line_error(lc, "the line holds a NUL byte");
    if (section_too_long(str))
        return line_error(lc, "the section name is longer than 49"
                              " bytes (a rule's name in [rule.NAME] at most 44)");
    if (str[n - 1] != '\n' && (c = getc(lc->f)) != EOF && c != '\n') {
        char msg[64];
        snprintf(msg, sizeof msg, "the line is longer than %d bytes", num - 1);
        return line_error(lc, msg);
    }
    return str;
}

/* A line of a named section ([rule.NAME], [uplink.NAME]), kept as text:
 * the owning subsystem validates whole sections (and names the line of a
 * bad key). */
static int section_line(struct load_ctx *lc, struct op_config_sections *rs, const char *kind,
                        const char *rule, const char *key, const char *value)
{
    lc->d->line = lc->line;
    if (rs->n >= OP_CONFIG_SECTION_LINES) {
        op_diag_set(lc->d, "invalid_config", "more than %d lines in [%s.*] sections",
                    OP_CONFIG_SECTION_LINES, kind);
        return OP_EINVAL;
    }
    /* libinih hands "= value" over with an empty key; printed back it
     * would read as the previous key's continuation line. */
    if (!key[0]) {
        op_diag_set(lc->d, "invalid_config", "a line in [%s.%.64s] has no key before '='", kind,
                    rule);
        return OP_EINVAL;
    }
    struct op_config_section_line *l = &rs->items[rs->n];
    if (!rule[0] || strlen(rule) >= sizeof l->name || strlen(key) >= sizeof l->key ||
        strlen(value) >= sizeof l->value) {
        op_diag_set(lc->d, "invalid_config",
                    "name (1-64 bytes), key or value (under 192 bytes) too long in [%s.%.64s]",
                    kind, rule);
        return OP_EINVAL;
    }
    snprintf(l->name, sizeof l->name, "%s", rule);
    snprintf(l->key, sizeof l->key, "%s", key);
    snprintf(l->value, sizeof l->value, "%s", value);
    l->line = lc->line;
    rs->n++;
    return OP_OK;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *lc = user;
    if (!strncmp(section, "rule.", 5)) {
        lc->rc = section_line(lc, &lc->cfg->rules, "rule", section + 5, name, value);
        return lc->rc == OP_OK;
    }
    if (!strncmp(section, "uplink.", 7)) {
        lc->rc = section_line(lc, &lc->cfg->uplinks, "uplink", section + 7, name, value);
        return lc->rc == OP_OK;
    }
    char full[128];
    if (section[0])
        snprintf(full, sizeof full, "%s.%s", section, name);
    else
        snprintf(full, sizeof full, "%s", name);
    lc->d->line = lc->line;
    int rc = op_config_set(lc->cfg, full, value, lc->d);
    if (rc) {
        lc->rc = rc;
        return 0;
    }
    return 1;
}

static int load_stream(struct op_config *cfg, FILE *f, const char *name, struct op_diag *d)
{
    struct load_ctx lc = { f, 0, cfg, d, OP_OK };
    snprintf(d->file, sizeof d->file, "%s", name);
    snprintf(cfg->source, sizeof cfg->source, "%s", name);
    ini_stop_on_first_error = true;
    int r = ini_parse_stream(read_line, &lc, on_key, &lc);
    if (lc.rc)
        return lc.rc;
    d->line = -1;
    if (r != 0) {
        d->line = r > 0 ? r : -1;
        op_diag_set(d, "invalid_config", "syntax error (expected `key = value` or `[section]`)");
        return OP_EINVAL;
    }
    return OP_OK;
}

int op_config_load_file(struct op_config *cfg, const char *path, struct op_diag *d)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(d->file, sizeof d->file, "%s", path);
        op_diag_set(d, "invalid_config", "cannot open: %m");
        return OP_EINVAL;
    }
    int rc = load_stream(cfg, f, path, d);
    fclose(f);
    return rc;
}

int op_config_load_string(struct op_config *cfg, const char *text, size_t len, const char *name,
                          struct op_diag *d)
{
    if (!len) /* fmemopen refuses an empty buffer; an empty file sets nothing */
        return OP_OK;
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        op_diag_set(d, "invalid_config", "cannot read configuration text: %m");
        return OP_ENOMEM;
    }
    int rc = load_stream(cfg, f, name, d);
    fclose(f);
    return rc;
}

int op_config_apply_reloadable(struct op_config *dst, const struct op_config *src)
{
    int changed = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct op_config_field *k = &keys[i];
        if (!k->reloadable)
            continue;
        size_t n = k->type == OP_T_STR || k->type == OP_T_URL ? k->size
                   : k->type == OP_T_ENUM                     ? sizeof(int)
                                                              : sizeof(int64_t);
        if (memcmp((char *)dst + k->offset, (const char *)src + k->offset, n)) {
            memcpy((char *)dst + k->offset, (const char *)src + k->offset, n);
            changed++;
        }
    }
    return changed;
}

static void print_value(const struct op_config *cfg, const struct op_config_field *k, FILE *out)
{
    const char *base = (const char *)cfg + k->offset;
    if (k->type == OP_T_STR || k->type == OP_T_URL)
        fprintf(out, "%s", base);
    else if (k->type == OP_T_ENUM)
        fprintf(out, "%s", k->choices[*(const int *)base]);
    else if (k->type == OP_T_BOOL)
        fputs(*(const bool *)base ? "true" : "false", out);
    else
        fprintf(out, "%lld", (long long)*(const int64_t *)base);
    if (k->type == OP_T_DURATION)
        fputs("ms", out);
}

static void print_key(const struct op_config *cfg, const struct op_config_field *k,
                      const char *shortname, FILE *out)
{
    fprintf(out, "# %s (default %s)\n", k->help, k->def[0] ? k->def : "empty");
    if (k->type != OP_T_LIST) {
        fprintf(out, "%s = ", shortname);
        print_value(cfg, k, out);
        fputc('\n', out);
        return;
    }
    const struct op_config_list *l = (const void *)((const char *)cfg + k->offset);
    for (int i = 0; i < l->n; i++)
        fprintf(out, "%s = %s\n", shortname, l->items[i].v);
}

size_t op_config_section_kv(const struct op_config_sections *rs, const char *name,
                            struct op_config_kv *kv, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < rs->n; i++) {
        const struct op_config_section_line *l = &rs->items[i];
        if (strcmp(l->name, name))
            continue;
        if (n < max)
            kv[n] = (struct op_config_kv){ { l->key, strlen(l->key) },
                                           { l->value, strlen(l->value) }, l->line };
        n++;
    }
    return n;
}

bool op_config_section_first(const struct op_config_sections *rs, int i)
{
    for (int k = 0; k < i; k++)
        if (!strcmp(rs->items[k].name, rs->items[i].name))
            return false;
    return true;
}

static void print_sections(const struct op_config_sections *rs, const char *kind, FILE *out)
{
    for (int i = 0; i < rs->n; i++) {
        if (i == 0 || strcmp(rs->items[i].name, rs->items[i - 1].name))
            fprintf(out, "\n[%s.%s]\n", kind, rs->items[i].name);
        fprintf(out, "%s = %s\n", rs->items[i].key, rs->items[i].value);
    }
}

void op_config_print(const struct op_config *cfg, FILE *out)
{
    const char *cur_section = "";
    size_t cur_len = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct op_config_field *k = &keys[i];
        const char *dot = strchr(k->name, '.');
        size_t slen = dot ? (size_t)(dot - k->name) : 0;
        if (slen != cur_len || strncmp(k->name, cur_section, slen)) {
            fprintf(out, "\n[%.*s]\n", (int)slen, k->name);
            cur_section = k->name;
            cur_len = slen;
        }
        print_key(cfg, k, dot ? dot + 1 : k->name, out);
    }
    print_sections(&cfg->rules, "rule", out);
    print_sections(&cfg->uplinks, "uplink", out);
}

int op_config_listen_split(const char *listen, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= hostlen)
        return OP_EINVAL;
    int64_t p;
    if (op_parse_i64(colon + 1, strlen(colon + 1), &p) || p < 0 || p > 65535)
        return OP_EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    *port = (uint16_t)p;
    return OP_OK;
}

int op_config_listen_resolve(const char *listen, struct addrinfo **res, uint16_t *port)
{
    char host[128];
    if (op_config_listen_split(listen, host, sizeof host, port))
        return OP_EINVAL;
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    *res = NULL;
    if (getaddrinfo(h, NULL, &hints, res) || !*res)
        return OP_EINVAL;
    return OP_OK;
}
