/*
 * Configuration: one table names every key with its type, default, bounds,
 * reloadability and help; loading, --set, printing and reload all walk it
 * (nginx's ngx_command_t). The INI syntax itself is parsed by libinih; this
 * file feeds it lines through its own reader so every error names the line.
 */
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/core.h"
#include "outpost/err.h"

enum key_type { T_STR, T_INT, T_SIZE, T_DURATION, T_ENUM };

struct key {
    const char *name; /* "section.key", or "key" at top level */
    enum key_type type;
    size_t offset;
    size_t size;      /* T_STR buffer size */
    const char *def;
    int64_t min, max;
    const char *const *choices; /* T_ENUM, NULL-terminated */
    bool reloadable;
    const char *help;
};

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const sync_modes[] = { "full", "normal", NULL };

#define OFF(f) offsetof(struct op_config, f)
#define STR(f) OFF(f), sizeof(((struct op_config *)0)->f)
#define KB 1024LL
#define MB (1024LL * 1024)
#define DAY (86400000LL)

static const struct key keys[] = {
    { "listen", T_STR, STR(listen), "127.0.0.1:8080", 0, 0, NULL, false,
      "address and port to serve HTTP on (port 0 picks a free one)" },
    { "data_dir", T_STR, STR(data_dir), "./outpost-data", 0, 0, NULL, false,
      "directory holding the database" },
    { "log_level", T_ENUM, OFF(log_level), 0, "info", 0, 0, log_levels, true,
      "error | warn | info | debug" },
    { "http.max_body", T_SIZE, OFF(http_max_body), 0, "1MiB", 64, 256 * MB, NULL, false,
      "largest request body accepted (413 above)" },
    { "http.max_batch", T_INT, OFF(http_max_batch), 0, "10000", 1, 1000000, NULL, false,
      "most readings in one request (413 above)" },
    { "http.max_connections", T_INT, OFF(http_max_conns), 0, "1024", 1, 65536, NULL, false,
      "connections served at once; more are refused" },
    { "http.max_inflight", T_SIZE, OFF(http_max_inflight), 0, "16MiB", 64 * KB, 4096 * MB, NULL,
      false, "request body bytes held at once over all connections (503 above)" },
    { "http.timeout", T_DURATION, OFF(http_timeout_ms), 0, "30s", 1000, DAY, NULL, false,
      "a connection idle this long (slow headers or body included) is closed" },
    { "http.threads", T_INT, OFF(http_threads), 0, "1", 1, 64, NULL, false,
      "HTTP event-loop threads" },
    { "store.sync", T_ENUM, OFF(sync_mode), 0, "full", 0, 0, sync_modes, false,
      "full: acknowledged readings survive power loss; normal: survive a process crash" },
    { "store.queue_bytes", T_SIZE, OFF(queue_max_bytes), 0, "4MiB", 1, 4096 * MB, NULL, false,
      "cap on bytes waiting for the writer (503 above)" },
    { "store.readers", T_INT, OFF(store_readers), 0, "2", 1, 64, NULL, false,
      "reader threads for queries" },
    { "store.retention_age", T_DURATION, OFF(retention_age_ms), 0, "0", 0, 100000 * DAY, NULL,
      false, "delete readings older than this (0 keeps them forever)" },
    { "store.retention_bytes", T_SIZE, OFF(retention_bytes), 0, "0", 0, INT64_MAX / 2, NULL,
      false, "keep the database under this size, oldest readings first (0: no quota)" },
    { "store.retention_interval", T_DURATION, OFF(retention_interval_ms), 0, "1s", 10, DAY, NULL,
      false, "how often retention deletes a bounded chunk" },
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int64_t *i64_field(struct op_config *cfg, const struct key *k)
{
    return (int64_t *)((char *)cfg + k->offset);
}

static int set_value(struct op_config *cfg, const struct key *k, const char *v, struct op_diag *d)
{
    size_t len = strlen(v);
    int64_t n = 0;
    int rc = OP_OK;
    snprintf(d->field, sizeof d->field, "%s", k->name);
    switch (k->type) {
    case T_STR:
        if (len >= k->size) {
            op_diag_set(d, "invalid_config", "%s: value longer than %zu bytes", k->name,
                        k->size - 1);
            return OP_EINVAL;
        }
        memcpy((char *)cfg + k->offset, v, len + 1);
        return OP_OK;
    case T_ENUM:
        for (int i = 0; k->choices[i]; i++) {
            if (!strcmp(v, k->choices[i])) {
                *(int *)((char *)cfg + k->offset) = i;
                return OP_OK;
            }
        }
        op_diag_set(d, "invalid_config", "%s: '%s' is not one of the allowed values", k->name, v);
        return OP_EINVAL;
    case T_INT:
        rc = op_parse_i64(v, len, &n);
        break;
    case T_SIZE:
        rc = op_parse_size(v, len, &n);
        break;
    case T_DURATION:
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
    *i64_field(cfg, k) = n;
    return OP_OK;
}

void op_config_defaults(struct op_config *cfg)
{
    struct op_diag d;
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKEYS; i++) {
        op_diag_clear(&d);
        /* The defaults are constants checked by the unit tests. */
        (void)set_value(cfg, &keys[i], keys[i].def, &d);
    }
}

int op_config_set(struct op_config *cfg, const char *key, const char *value, struct op_diag *d)
{
    const struct key *k = find_key(key);
    if (!k) {
        snprintf(d->field, sizeof d->field, "%s", key);
        op_diag_set(d, "unknown_key", "unknown key '%s'", key);
        return OP_EINVAL;
    }
    return set_value(cfg, k, value, d);
}

/* inih hands us lines through this reader so we always know the line. */
struct load_ctx {
    FILE *f;
    long line;
    struct op_config *cfg;
    struct op_diag *d;
    int rc;
};

static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *lc = stream;
    char *s = fgets(str, num, lc->f);
    if (s)
        lc->line++;
    return s;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *lc = user;
    char full[128];
    if (section[0])
        snprintf(full, sizeof full, "%s.%s", section, name);
    else
        snprintf(full, sizeof full, "%s", name);
    int rc = op_config_set(lc->cfg, full, value, lc->d);
    if (rc) {
        lc->d->line = lc->line;
        lc->rc = rc;
        return 0;
    }
    return 1;
}

int op_config_load_file(struct op_config *cfg, const char *path, struct op_diag *d)
{
    struct load_ctx lc = { NULL, 0, cfg, d, OP_OK };
    snprintf(d->file, sizeof d->file, "%s", path);
    lc.f = fopen(path, "r");
    if (!lc.f) {
        op_diag_set(d, "invalid_config", "cannot open: %m");
        return OP_EINVAL;
    }
    ini_stop_on_first_error = true;
    int r = ini_parse_stream(read_line, &lc, on_key, &lc);
    fclose(lc.f);
    if (lc.rc)
        return lc.rc;
    if (r != 0) {
        d->line = r > 0 ? r : -1;
        op_diag_set(d, "invalid_config", "syntax error (expected `key = value` or `[section]`)");
        return OP_EINVAL;
    }
    return OP_OK;
}

int op_config_apply_reloadable(struct op_config *dst, const struct op_config *src)
{
    int changed = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (!k->reloadable)
            continue;
        size_t n = k->type == T_STR ? k->size : k->type == T_ENUM ? sizeof(int) : sizeof(int64_t);
        if (memcmp((char *)dst + k->offset, (const char *)src + k->offset, n)) {
            memcpy((char *)dst + k->offset, (const char *)src + k->offset, n);
            changed++;
        }
    }
    return changed;
}

static void print_value(const struct op_config *cfg, const struct key *k, FILE *out)
{
    const char *base = (const char *)cfg + k->offset;
    if (k->type == T_STR)
        fprintf(out, "%s", base);
    else if (k->type == T_ENUM)
        fprintf(out, "%s", k->choices[*(const int *)base]);
    else
        fprintf(out, "%lld", (long long)*(const int64_t *)base);
    if (k->type == T_DURATION)
        fputs("ms", out);
}

void op_config_print(const struct op_config *cfg, FILE *out)
{
    const char *cur_section = "";
    size_t cur_len = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        const char *dot = strchr(k->name, '.');
        size_t slen = dot ? (size_t)(dot - k->name) : 0;
        if (slen != cur_len || strncmp(k->name, cur_section, slen)) {
            fprintf(out, "\n[%.*s]\n", (int)slen, k->name);
            cur_section = k->name;
            cur_len = slen;
        }
        fprintf(out, "# %s (default %s)\n%s = ", k->help, k->def, dot ? dot + 1 : k->name);
        print_value(cfg, k, out);
        fputc('\n', out);
    }
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
