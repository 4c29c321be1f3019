/*
 * sync_config.c: the config file's [uplink.NAME] sections. core keeps
 * their lines as text; here each section is checked against a key table
 * (unknown keys, keys given twice, bad values and a missing url are errors
 * naming the line), and becomes a struct op_uplink_cfg.
 */
#include <stdio.h>
#include <string.h>

#include "outpost/err.h"
#include "sync_int.h"

#define UPLINK_KEYS_MAX 32
#define UPLINKS_MAX 16

static const char *const formats[] = { "batch", "json", NULL }; /* enum op_uplink_format */

/* "important, live, backlog": each class at most once, backlog last (it
 * is what reaches every reading). */
static int priority_parse(void *field, const char *v)
{
    struct op_uplink_priority *out = field;
    static const char *const names[] = { "important", "live", "backlog" };
    struct op_uplink_priority p = { { 0 }, 0 };
    const char *s = v, *end = v + strlen(v);
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        while (s < e && *s == ' ')
            s++;
        while (e > s && e[-1] == ' ')
            e--;
        size_t c = 0;
        while (c < 3 &&
               (strlen(names[c]) != (size_t)(e - s) || memcmp(names[c], s, (size_t)(e - s))))
            c++;
        if (c == 3 || p.n == 3 || (p.n && p.order[p.n - 1] == OP_PRIO_BACKLOG))
            return OP_EINVAL;
        for (size_t i = 0; i < p.n; i++)
            if (p.order[i] == c)
                return OP_EINVAL;
        p.order[p.n++] = (uint8_t)c;
        s = comma ? comma + 1 : end;
    }
    if (p.n == 0 || p.order[p.n - 1] != OP_PRIO_BACKLOG)
        return OP_EINVAL;
    *out = p;
    return OP_OK;
}

/* Typed and bounded by core (op_config_field_set), as the file's other
 * keys are; `priority` by priority_parse. */
#define OFF(f) offsetof(struct op_uplink_cfg, f), sizeof(((struct op_uplink_cfg *)0)->f)
#define DAY_MS ((int64_t)86400 * 1000)
static const struct op_config_field keys[] = {
    { "url", OP_T_STR, OFF(url), "", 0, 0, NULL, false, NULL, NULL },
    { "sensors", OP_T_STR, OFF(sensors), "", 0, 0, NULL, false, NULL, NULL },
    { "important_only", OP_T_BOOL, OFF(important_only), "false", 0, 0, NULL, false, NULL, NULL },
    { "downsample", OP_T_DURATION, OFF(downsample_ms), "0s", 0, DAY_MS, NULL, false, NULL, NULL },
    { "batch_points", OP_T_INT, OFF(batch_points), "50000", 1, 1000000, NULL, false, NULL, NULL },
    { "batch_bytes", OP_T_SIZE, OFF(batch_bytes), "4MiB", 1024, (int64_t)64 << 20, NULL, false,
      NULL, NULL },
    { "batch_age", OP_T_DURATION, OFF(batch_age_ms), "1s", 0, 3600 * 1000, NULL, false, NULL,
      NULL },
    { "bandwidth", OP_T_SIZE, OFF(bandwidth), "0", 0, (int64_t)1 << 40, NULL, false, NULL, NULL },
    { "format", OP_T_ENUM, OFF(format), "batch", 0, 0, formats, false, NULL, NULL },
    { "priority", OP_T_CUSTOM, OFF(priority), "backlog", 0, 0, NULL, false,
      "important, live and backlog in the order to serve them, each once, backlog last",
      priority_parse },
    { "seal_key", OP_T_STR, OFF(seal_key), "", 0, 0, NULL, false, NULL, NULL },
    { "token", OP_T_STR, OFF(token), "", 0, 0, NULL, false, NULL, NULL },
    { "ca", OP_T_STR, OFF(ca), "", 0, 0, NULL, false, NULL, NULL },
    { "cert", OP_T_STR, OFF(cert), "", 0, 0, NULL, false, NULL, NULL },
    { "key", OP_T_STR, OFF(key), "", 0, 0, NULL, false, NULL, NULL },
    { "timeout", OP_T_DURATION, OFF(timeout_ms), "10s", 100, 600 * 1000, NULL, false, NULL, NULL },
    { "backoff_min", OP_T_DURATION, OFF(backoff_min_ms), "500ms", 1, 3600 * 1000, NULL, false,
      NULL, NULL },
    { "backoff_max", OP_T_DURATION, OFF(backoff_max_ms), "60s", 1, DAY_MS, NULL, false, NULL,
      NULL },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Out of range is as invalid as any other bad value here. */
static int set_value(struct op_uplink_cfg *u, const struct op_config_field *k, const char *v,
                     struct op_diag *d)
{
    return op_config_field_set(u, k, v, d) == OP_OK ? OP_OK : OP_EINVAL;
}

static int defaults(struct op_uplink_cfg *u, struct op_diag *d)
{
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = set_value(u, &keys[i], keys[i].def, d);
        if (rc != OP_OK)
            return rc;
    }
    return OP_OK;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > OP_SYNC_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Checks what one key cannot: the url's scheme, and key files in pairs. */
static int check(const struct op_uplink_cfg *u, struct op_diag *d)
{
    if (!u->url[0]) {
        op_diag_set(d, "invalid_config", "[uplink.%s] needs a url", u->name);
        return OP_EINVAL;
    }
    if (!sync__transport_for(u->url)) {
        op_diag_set(d, "invalid_config", "url: http://, https://, mqtt:// or mqtts:// expected");
        return OP_EINVAL;
    }
    if (!strncmp(u->url, "mqtt", 4) && sync__mqtt_url_check(u->url) != OP_OK) {
        op_diag_set(d, "invalid_config", "url: mqtt[s]://host[:port]/topic expected");
        return OP_EINVAL;
    }
    if (!u->cert[0] != !u->key[0]) {
        op_diag_set(d, "invalid_config", "cert and key go together (mutual TLS)");
        return OP_EINVAL;
    }
    if (u->priority.n > 1 && u->format == OP_UPLINK_JSON) {
        op_diag_set(d, "invalid_config", "priority other than backlog needs format = batch: a"
                                         " JSON receiver keeping only the last position would"
                                         " take the backlog behind a live batch as duplicates");
        return OP_EINVAL;
    }
    if (u->priority.n > 1 && (u->important_only || u->downsample_ms > 0)) {
        op_diag_set(d, "invalid_config", "priority other than backlog needs an uplink that sends"
                                         " every reading in position order to reorder: not with"
                                         " important_only or downsample");
        return OP_EINVAL;
    }
    if (u->backoff_min_ms > u->backoff_max_ms) {
        op_diag_set(d, "invalid_config", "backoff_min must not exceed backoff_max");
        return OP_EINVAL;
    }
    return OP_OK;
}

static int one_uplink(const struct op_config_sections *rs, const char *name, const char *file,
                      struct op_uplink_cfg *u, struct op_diag *d)
{
    struct op_config_kv kv[UPLINK_KEYS_MAX];
    size_t n = op_config_section_kv(rs, name, kv, UPLINK_KEYS_MAX);
    snprintf(d->file, sizeof d->file, "%s", file);
    d->line = n ? kv[0].line : -1;
    memset(u, 0, sizeof(*u));
    if (!valid_name(name)) {
        op_diag_set(d, "invalid_config",
                    "[uplink.%.64s]: a name is 1-64 bytes of [A-Za-z0-9_.-]", name);
        return OP_EINVAL;
    }
    snprintf(u->name, sizeof u->name, "%s", name);
    int rc = defaults(u, d);
    bool seen[NKEYS] = { false };
    for (size_t i = 0; i < n && i < UPLINK_KEYS_MAX && rc == OP_OK; i++) {
        d->line = kv[i].line;
        size_t k = 0;
        while (k < NKEYS && (strlen(keys[k].name) != kv[i].key.len ||
                             memcmp(keys[k].name, kv[i].key.p, kv[i].key.len)))
            k++;
        if (k == NKEYS) {
            op_diag_set(d, "invalid_config", "unknown key '%.*s' in [uplink.%s]",
                        (int)kv[i].key.len, kv[i].key.p, name);
            return OP_EINVAL;
        }
        if (seen[k]) {
            op_diag_set(d, "invalid_config", "%s is given twice in [uplink.%s]", keys[k].name,
                        name);
            return OP_EINVAL;
        }
        seen[k] = true;
        rc = set_value(u, &keys[k], kv[i].value.p, d);
    }
    if (rc == OP_OK && n > UPLINK_KEYS_MAX) {
        op_diag_set(d, "invalid_config", "[uplink.%s] has too many keys", name);
        rc = OP_EINVAL;
    }
    if (rc == OP_OK) {
        d->line = n ? kv[0].line : -1;
        rc = check(u, d);
    }
    return rc;
}

int op_sync_config_parse(const struct op_config *cfg, struct op_uplink_cfg **out, size_t *nout,
                         struct op_diag *d)
{
    const struct op_config_sections *rs = &cfg->uplinks;
    const char *file = cfg->source[0] ? cfg->source : "(flags)";
    *out = NULL;
    *nout = 0;
    if (rs->n == 0)
        return OP_OK;
    struct op_uplink_cfg *v = op_calloc(UPLINKS_MAX, sizeof(*v));
    if (!v)
        return OP_ENOMEM;
    size_t n = 0;
    int rc = OP_OK;
    for (int i = 0; i < rs->n && rc == OP_OK; i++) {
        if (!op_config_section_first(rs, i))
            continue;
        if (n == UPLINKS_MAX) {
            snprintf(d->file, sizeof d->file, "%s", file);
            d->line = rs->items[i].line;
            op_diag_set(d, "invalid_config", "more than %d uplinks", UPLINKS_MAX);
            rc = OP_EINVAL;
            break;
        }
        rc = one_uplink(rs, rs->items[i].name, file, &v[n++], d);
    }
    if (rc != OP_OK) {
        op_free(v);
        return rc;
    }
    *out = v;
    *nout = n;
    return OP_OK;
}
