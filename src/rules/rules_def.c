/*
 * Rule definitions: the one validator for rules, whether they come from the
 * config file's [rule.NAME] sections or from the HTTP API (which turns a
 * JSON object into key/value strings). A table names every key, the kinds
 * it applies to, its type, bounds and default; per-kind checks that relate
 * keys (a band's clear levels, a window that needs fns or alert_on) follow.
 * Every error is an op_diag with code "invalid_rule", the offending key in
 * field and one sentence in msg. The canonical formatter prints a
 * definition back as key = value lines that parse to an equal definition.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

const char *const rules__fn_names[RULES__FN_N] = {
    "count", "min", "max", "avg", "sum", "first", "last", "stddev",
};
const char *const rules__severity_names[3] = { "info", "warning", "critical" };
static const char *const kind_names[] = { "", "threshold", "rate", "window", "anomaly", "silence" };
static const char *const dir_names[] = { "any", "up", "down" };
static const char *const method_names[] = { "ewma", "mad" };
static const char *const cmp_names[] = { ">", ">=", "<", "<=" };

#define KIND_BIT(k) (1u << (k))
#define ALL_KINDS                                                                       \
    (KIND_BIT(OP_RULES_THRESHOLD) | KIND_BIT(OP_RULES_RATE) | KIND_BIT(OP_RULES_WINDOW) | \
     KIND_BIT(OP_RULES_ANOMALY) | KIND_BIT(OP_RULES_SILENCE))
#define ALERTING                                                                        \
    (KIND_BIT(OP_RULES_THRESHOLD) | KIND_BIT(OP_RULES_RATE) | KIND_BIT(OP_RULES_WINDOW) | \
     KIND_BIT(OP_RULES_ANOMALY))

enum ktype { K_KIND, K_SENSORS, K_ENUM, K_BOOL, K_INT, K_NUM, K_DUR, K_CLEAR, K_FNS, K_ALERT };

/* Scratch state of one parse: which keys were given, and clear's raw
 * numbers (their meaning depends on the kind and the other keys). */
struct raw {
    unsigned long given;
    int nclear;
    double clear[2];
};

struct key {
    const char *name;
    unsigned kinds;
    enum ktype type;
    size_t off;     /* the field in struct op_rules_def */
    size_t has_off; /* a bool set when given, or 0 */
    double min, max;
    bool min_excl;
    const char *const *names; /* K_ENUM */
    int nnames;
    const char *what; /* completes "KEY must be ..." */
};

#define OFF(f) offsetof(struct op_rules_def, f)
#define ENUM(a) a, (int)(sizeof(a) / sizeof(a[0]))

/* The order here is the canonical order of op_rules_def_format. */
static const struct key keys[] = {
    { "kind", ALL_KINDS, K_KIND, OFF(kind), 0, 0, 0, false, ENUM(kind_names),
      "one of threshold, rate, window, anomaly or silence" },
    { "sensors", ALL_KINDS, K_SENSORS, 0, 0, 0, 0, false, NULL, 0,
      "a comma-separated list of 1 to 32 sensor names or globs, each 1 to 128 bytes of "
      "[A-Za-z0-9_.:/-] and the glob characters *?[]!^" },
    { "severity", ALL_KINDS, K_ENUM, OFF(severity), 0, 0, 0, false, ENUM(rules__severity_names),
      "one of info, warning or critical" },
    { "important", ALL_KINDS, K_BOOL, OFF(important), 0, 0, 0, false, NULL, 0, "true or false" },
    { "max_sensors", ALL_KINDS, K_INT, OFF(max_sensors), 0, 1, RULES__MAX_SENSORS_LIMIT, false,
      NULL, 0, "an integer from 1 to 1000000" },
    { "above", KIND_BIT(OP_RULES_THRESHOLD), K_NUM, OFF(above), OFF(has_above), -INFINITY,
      INFINITY, false, NULL, 0, "a finite number" },
    { "below", KIND_BIT(OP_RULES_THRESHOLD), K_NUM, OFF(below), OFF(has_below), -INFINITY,
      INFINITY, false, NULL, 0, "a finite number" },
    { "span", KIND_BIT(OP_RULES_RATE), K_DUR, OFF(span_ms), 0, 1, RULES__DURATION_MAX, false,
      NULL, 0, "a duration from 1ms to 366d, such as 5m" },
    { "rate", KIND_BIT(OP_RULES_RATE), K_NUM, OFF(rate), 0, 0, INFINITY, true, NULL, 0,
      "a finite number greater than 0" },
    { "window", KIND_BIT(OP_RULES_WINDOW), K_DUR, OFF(window_ms), 0, 1, RULES__DURATION_MAX,
      false, NULL, 0, "a duration from 1ms to 366d, such as 1m" },
    { "grace", KIND_BIT(OP_RULES_WINDOW), K_DUR, OFF(grace_ms), 0, 0, RULES__DURATION_MAX, false,
      NULL, 0, "a duration from 0 to 366d, such as 2s" },
    { "fns", KIND_BIT(OP_RULES_WINDOW), K_FNS, OFF(fns), 0, 0, 0, false, NULL, 0,
      "a comma-separated list of count, min, max, avg, sum, first, last and stddev" },
    { "alert_on", KIND_BIT(OP_RULES_WINDOW), K_ALERT, 0, OFF(has_alert), 0, 0, false, NULL, 0,
      "FN OP NUMBER with FN one of the fns and OP one of >, >=, < or <=, such as avg > 30" },
    { "method", KIND_BIT(OP_RULES_ANOMALY), K_ENUM, OFF(method), 0, 0, 0, false,
      ENUM(method_names), "ewma or mad" },
    { "z", KIND_BIT(OP_RULES_ANOMALY), K_NUM, OFF(z), 0, 0, INFINITY, true, NULL, 0,
      "a finite number greater than 0" },
    { "alpha", KIND_BIT(OP_RULES_ANOMALY), K_NUM, OFF(alpha), 0, 0, 1, true, NULL, 0,
      "a number greater than 0 and at most 1" },
    { "samples", KIND_BIT(OP_RULES_ANOMALY), K_INT, OFF(samples), 0, RULES__SAMPLES_MIN,
      RULES__SAMPLES_MAX, false, NULL, 0, "an integer from 5 to 4096" },
    { "warmup", KIND_BIT(OP_RULES_ANOMALY), K_INT, OFF(warmup), 0, 2, RULES__WARMUP_MAX, false,
      NULL, 0, "a number of readings from 2 to 1000000" },
    { "min_sd", KIND_BIT(OP_RULES_ANOMALY), K_NUM, OFF(min_sd), 0, 0, INFINITY, false, NULL, 0,
      "a finite number of at least 0" },
    { "direction", KIND_BIT(OP_RULES_RATE) | KIND_BIT(OP_RULES_ANOMALY), K_ENUM, OFF(direction),
      0, 0, 0, false, ENUM(dir_names), "one of any, up or down" },
    { "clear", ALERTING, K_CLEAR, 0, 0, 0, 0, false, NULL, 0,
      "a finite number, or two (LOW,HIGH) for a band" },
    { "for", ALERTING, K_DUR, OFF(for_ms), 0, 0, RULES__DURATION_MAX, false, NULL, 0,
      "a duration from 0 to 366d, such as 30s" },
    { "silence", KIND_BIT(OP_RULES_SILENCE), K_DUR, OFF(silence_ms), 0, 1, RULES__DURATION_MAX,
      false, NULL, 0, "a duration from 1ms to 366d, such as 5m" },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static int key_index(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool given(const struct raw *raw, const char *name)
{
    int i = key_index(name);
    return i >= 0 && (raw->given & (1ul << i));
}

static int fail(struct op_diag *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct op_diag *d, const char *field, const char *fmt, ...)
{
    if (d) {
        op_diag_clear(d);
        snprintf(d->code, sizeof d->code, "invalid_rule");
        snprintf(d->field, sizeof d->field, "%s", field);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof d->msg, fmt, ap);
        va_end(ap);
    }
    return OP_EINVAL;
}

/* A value quoted in a message: at most 40 bytes of it. */
#define QV(len) (int)((len) > 40 ? 40 : (len))

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static struct op_str trim(const char *p, size_t len)
{
    while (len && is_space(*p)) {
        p++;
        len--;
    }
    while (len && is_space(p[len - 1]))
        len--;
    return (struct op_str){ p, len };
}

static bool str_is(struct op_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static bool sensor_char(char c, bool glob)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    if (c == '_' || c == '.' || c == ':' || c == '/' || c == '-')
        return true;
    return glob && (c == '*' || c == '?' || c == '[' || c == ']' || c == '!' || c == '^');
}

static int parse_sensors(struct op_rules_def *def, const struct key *k, const char *v, size_t len,
                         struct op_diag *d)
{
    size_t i = 0;
    def->npat = 0;
    for (;;) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        struct op_str item = trim(v + i, j - i);
        bool ok = item.len >= 1 && item.len <= OP_RULES_SENSOR_MAX &&
                  def->npat < OP_RULES_PATTERNS_MAX;
        for (size_t c = 0; ok && c < item.len; c++)
            ok = sensor_char(item.p[c], true);
        if (!ok)
            return fail(d, k->name, "sensors must be %s; got \"%.*s\".", k->what, QV(len), v);
        memcpy(def->pat[def->npat], item.p, item.len);
        def->pat[def->npat][item.len] = '\0';
        def->npat++;
        if (j == len)
            return OP_OK;
        i = j + 1;
    }
}

static int parse_fns(struct op_rules_def *def, const struct key *k, const char *v, size_t len,
                     struct op_diag *d)
{
    size_t i = 0;
    def->fns = 0;
    for (;;) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        struct op_str item = trim(v + i, j - i);
        int f = -1;
        for (int x = 0; x < RULES__FN_N; x++)
            if (str_is(item, rules__fn_names[x]))
                f = x;
        if (f < 0)
            return fail(d, k->name, "fns must be %s; \"%.*s\" is not one of them.", k->what,
                        QV(item.len), item.p);
        if (def->fns & (1u << f))
            return fail(d, k->name, "fns lists %s twice.", rules__fn_names[f]);
        def->fns |= 1u << f;
        if (j == len)
            return OP_OK;
        i = j + 1;
    }
}

static int parse_number(const char *p, size_t len, double *out)
{
    struct op_str s = trim(p, len);
    double x;
    if (op_parse_double(s.p, s.len, &x) != OP_OK || !isfinite(x))
        return OP_EINVAL;
    *out = x;
    return OP_OK;
}

/* alert_on: FN OP NUMBER, blanks optional ("avg>30", "max >= -1.5"). */
static int parse_alert(struct op_rules_def *def, const struct key *k, const char *v, size_t len,
                       struct op_diag *d)
{
    size_t i = 0;
    while (i < len && is_space(v[i]))
        i++;
    size_t f0 = i;
    while (i < len && v[i] >= 'a' && v[i] <= 'z')
        i++;
    struct op_str fn = { v + f0, i - f0 };
    while (i < len && is_space(v[i]))
        i++;
    size_t o0 = i;
    while (i < len && (v[i] == '<' || v[i] == '>' || v[i] == '='))
        i++;
    struct op_str op = { v + o0, i - o0 };
    int f = -1, c = -1;
    for (int x = 0; x < RULES__FN_N; x++)
        if (str_is(fn, rules__fn_names[x]))
            f = x;
    for (int x = 0; x < 4; x++)
        if (str_is(op, cmp_names[x]))
            c = x;
    double level;
    if (f < 0 || c < 0 || parse_number(v + i, len - i, &level) != OP_OK)
        return fail(d, k->name, "alert_on must be %s; got \"%.*s\".", k->what, QV(len), v);
    def->alert_fn = f;
    def->alert_cmp = c;
    def->alert_level = level;
    return OP_OK;
}

static int parse_clear(struct raw *raw, const struct key *k, const char *v, size_t len,
                       struct op_diag *d)
{
    const char *comma = memchr(v, ',', len);
    raw->nclear = comma ? 2 : 1;
    size_t l0 = comma ? (size_t)(comma - v) : len;
    if (parse_number(v, l0, &raw->clear[0]) != OP_OK ||
        (comma && parse_number(comma + 1, len - l0 - 1, &raw->clear[1]) != OP_OK))
        return fail(d, k->name, "clear must be %s; got \"%.*s\".", k->what, QV(len), v);
    if (comma && raw->clear[0] > raw->clear[1])
        return fail(d, k->name, "clear LOW,HIGH must have LOW <= HIGH; got \"%.*s\".", QV(len),
                    v);
    return OP_OK;
}

/* Parses one key's value into def. */
static int parse_value(struct op_rules_def *def, struct raw *raw, const struct key *k,
                       struct op_str value, struct op_diag *d)
{
    char *base = (char *)def;
    struct op_str v = trim(value.p, value.len);
    switch (k->type) {
    case K_KIND:
    case K_ENUM:
        for (int i = 0; i < k->nnames; i++)
            if (k->names[i][0] && str_is(v, k->names[i])) {
                if (k->type == K_KIND)
                    *(enum op_rules_kind *)(base + k->off) = (enum op_rules_kind)i;
                else
                    *(int *)(base + k->off) = i;
                return OP_OK;
            }
        break;
    case K_BOOL:
        if (str_is(v, "true") || str_is(v, "false")) {
            *(bool *)(base + k->off) = str_is(v, "true");
            return OP_OK;
        }
        break;
    case K_INT: {
        int64_t x;
        if (op_parse_i64(v.p, v.len, &x) == OP_OK && x >= (int64_t)k->min &&
            x <= (int64_t)k->max) {
            *(int64_t *)(base + k->off) = x;
            return OP_OK;
        }
        break;
    }
    case K_DUR: {
        int64_t x;
        if (op_parse_duration_ms(v.p, v.len, &x) == OP_OK && x >= (int64_t)k->min &&
            x <= (int64_t)k->max) {
            *(int64_t *)(base + k->off) = x;
            return OP_OK;
        }
        break;
    }
    case K_NUM: {
        double x;
        if (parse_number(v.p, v.len, &x) == OP_OK && (k->min_excl ? x > k->min : x >= k->min) &&
            x <= k->max) {
            *(double *)(base + k->off) = x;
            if (k->has_off)
                *(bool *)(base + k->has_off) = true;
            return OP_OK;
        }
        break;
    }
    case K_SENSORS:
        return parse_sensors(def, k, v.p, v.len, d);
    case K_FNS:
        return parse_fns(def, k, v.p, v.len, d);
    case K_ALERT:
        if (parse_alert(def, k, v.p, v.len, d) != OP_OK)
            return OP_EINVAL;
        def->has_alert = true;
        return OP_OK;
    case K_CLEAR:
        return parse_clear(raw, k, v.p, v.len, d);
    }
    return fail(d, k->name, "%s must be %s; got \"%.*s\".", k->name, k->what, QV(v.len), v.p);
}

static void set_defaults(struct op_rules_def *def)
{
    def->severity = 1; /* warning */
    def->max_sensors = 10000;
    def->grace_ms = 2000;
    def->z = 4.0;
    def->alpha = 0.05;
    def->samples = 64;
}

/* Checks that relate keys, per kind, and fills defaults that depend on
 * other keys. */
static int validate_kind(struct op_rules_def *def, const struct raw *raw, struct op_diag *d)
{
    bool has_clear = given(raw, "clear");
    switch (def->kind) {
    case OP_RULES_THRESHOLD:
        if (!def->has_above && !def->has_below)
            return fail(d, "above", "A threshold rule needs above, below or both.");
        if (def->has_above && def->has_below && !(def->below < def->above))
            return fail(d, "below",
                        "below must be less than above (the rule fires outside that band).");
        if (def->has_above && def->has_below) {
            def->clear_lo = def->below;
            def->clear_hi = def->above;
            if (has_clear) {
                if (raw->nclear != 2)
                    return fail(d, "clear",
                                "clear must be two numbers LOW,HIGH for a band (above and below).");
                if (raw->clear[0] < def->below || raw->clear[1] > def->above)
                    return fail(d, "clear", "clear LOW,HIGH must lie within below and above.");
                def->clear_lo = raw->clear[0];
                def->clear_hi = raw->clear[1];
            }
        } else if (def->has_above) {
            def->clear_hi = def->above;
            if (has_clear && raw->nclear != 1)
                return fail(d, "clear", "clear must be one number for a rule with only above.");
            if (has_clear && raw->clear[0] > def->above)
                return fail(d, "clear", "clear must not be greater than above (the alert "
                                        "resolves when the value falls to clear).");
            if (has_clear)
                def->clear_hi = raw->clear[0];
        } else {
            def->clear_lo = def->below;
            if (has_clear && raw->nclear != 1)
                return fail(d, "clear", "clear must be one number for a rule with only below.");
            if (has_clear && raw->clear[0] < def->below)
                return fail(d, "clear", "clear must not be less than below (the alert "
                                        "resolves when the value rises to clear).");
            if (has_clear)
                def->clear_lo = raw->clear[0];
        }
        return OP_OK;
    case OP_RULES_RATE:
        if (!given(raw, "span"))
            return fail(d, "span", "A rate rule needs span, the time the change is measured over.");
        if (!given(raw, "rate"))
            return fail(d, "rate", "A rate rule needs rate, the change over span that fires it.");
        def->clear_hi = def->rate;
        if (has_clear && (raw->nclear != 1 || raw->clear[0] < 0 || raw->clear[0] > def->rate))
            return fail(d, "clear", "clear must be one number from 0 to rate.");
        if (has_clear)
            def->clear_hi = raw->clear[0];
        return OP_OK;
    case OP_RULES_WINDOW:
        if (!given(raw, "window"))
            return fail(d, "window", "A window rule needs window, the length of its windows.");
        if (!def->fns && !def->has_alert)
            return fail(d, "fns", "A window rule needs fns, alert_on or both.");
        if (!def->has_alert && (has_clear || given(raw, "for")))
            return fail(d, has_clear ? "clear" : "for",
                        "%s applies to a window rule only with alert_on.",
                        has_clear ? "clear" : "for");
        if (def->has_alert) {
            bool high = def->alert_cmp == RULES__GT || def->alert_cmp == RULES__GE;
            def->clear_hi = def->alert_level;
            if (has_clear && raw->nclear != 1)
                return fail(d, "clear", "clear must be one number for a window rule.");
            if (has_clear && (high ? raw->clear[0] > def->alert_level
                                   : raw->clear[0] < def->alert_level))
                return fail(d, "clear", "clear must not be %s the alert_on level.",
                            high ? "greater than" : "less than");
            if (has_clear)
                def->clear_hi = raw->clear[0];
        }
        return OP_OK;
    case OP_RULES_ANOMALY:
        if (def->method == RULES__MAD && given(raw, "alpha"))
            return fail(d, "alpha", "alpha applies to method ewma only.");
        if (def->method == RULES__EWMA && given(raw, "samples"))
            return fail(d, "samples", "samples applies to method mad only.");
        if (def->method == RULES__MAD)
            def->alpha = 0;
        else
            def->samples = 0;
        if (!given(raw, "warmup")) {
            /* EWMA: about 2/alpha readings for the variance to settle;
             * MAD: half a window of samples. */
            double w = def->method == RULES__EWMA ? ceil(2.0 / def->alpha) : def->samples / 2.0;
            def->warmup = w < 2 ? 2 : w > RULES__WARMUP_MAX ? RULES__WARMUP_MAX : (int64_t)w;
        }
        def->clear_hi = def->z;
        if (has_clear && (raw->nclear != 1 || raw->clear[0] < 0 || raw->clear[0] > def->z))
            return fail(d, "clear", "clear must be one number from 0 to z.");
        if (has_clear)
            def->clear_hi = raw->clear[0];
        return OP_OK;
    case OP_RULES_SILENCE:
        if (!given(raw, "silence"))
            return fail(d, "silence",
                        "A silence rule needs silence, the time without a reading that fires it.");
        return OP_OK;
    }
    return OP_EINVAL;
}

static bool valid_name(const char *name, size_t len)
{
    if (len < 1 || len > OP_RULES_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

int op_rules_def_parse(const char *name, size_t name_len, const struct op_rules_kv *kv, size_t n,
                       struct op_rules_def **out, struct op_diag *d)
{
    *out = NULL;
    if (!name || !valid_name(name, name_len))
        return fail(d, "name", "A rule name must be 1 to %d bytes of [A-Za-z0-9_.-].",
                    OP_RULES_NAME_MAX);
    struct op_rules_def *def = op_calloc(1, sizeof *def);
    if (!def)
        return OP_ENOMEM;
    memcpy(def->name, name, name_len);
    set_defaults(def);
    struct raw raw = { 0 };
    int rc;

    /* The kind decides which keys apply, so it is found first. */
    for (size_t i = 0; i < n; i++)
        if (str_is(trim(kv[i].key.p, kv[i].key.len), "kind")) {
            if ((rc = parse_value(def, &raw, &keys[0], kv[i].value, d)) != OP_OK)
                goto fail;
        }
    if (!def->kind) {
        rc = fail(d, "kind", "kind is required: one of threshold, rate, window, anomaly or "
                             "silence.");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        /* Keys and values are trimmed of blanks, as the config file's are. */
        struct op_str key = trim(kv[i].key.p, kv[i].key.len);
        int ki = -1;
        for (size_t j = 0; j < NKEYS; j++)
            if (str_is(key, keys[j].name))
                ki = (int)j;
        char field[64];
        snprintf(field, sizeof field, "%.*s", QV(key.len), key.p);
        if (ki < 0) {
            rc = fail(d, field, "Unknown rule key \"%s\" (see docs/rules.md for the keys).",
                      field);
            goto fail;
        }
        if (raw.given & (1ul << ki)) {
            rc = fail(d, field, "%s is given twice.", field);
            goto fail;
        }
        raw.given |= 1ul << ki;
        if (!(keys[ki].kinds & KIND_BIT(def->kind))) {
            rc = fail(d, field, "%s does not apply to a %s rule.", field,
                      kind_names[def->kind]);
            goto fail;
        }
        if (ki != 0 && (rc = parse_value(def, &raw, &keys[ki], kv[i].value, d)) != OP_OK)
            goto fail;
    }
    if (!given(&raw, "sensors")) {
        rc = fail(d, "sensors", "sensors is required: the sensor names or globs the rule watches.");
        goto fail;
    }
    if ((rc = validate_kind(def, &raw, d)) != OP_OK)
        goto fail;
    *out = def;
    return OP_OK;
fail:
    op_free(def);
    return rc;
}

void op_rules_def_free(struct op_rules_def *def)
{
    op_free(def);
}

const char *op_rules_def_name(const struct op_rules_def *def)
{
    return def->name;
}

enum op_rules_kind op_rules_def_kind(const struct op_rules_def *def)
{
    return def->kind;
}

const char *op_rules_kind_name(enum op_rules_kind k)
{
    return k >= OP_RULES_THRESHOLD && k <= OP_RULES_SILENCE ? kind_names[k] : "unknown";
}

bool op_rules_def_equal(const struct op_rules_def *a, const struct op_rules_def *b)
{
    if (strcmp(a->name, b->name) || a->kind != b->kind || a->npat != b->npat)
        return false;
    for (uint32_t i = 0; i < a->npat; i++)
        if (strcmp(a->pat[i], b->pat[i]))
            return false;
    return a->severity == b->severity && a->important == b->important &&
           a->max_sensors == b->max_sensors && a->has_above == b->has_above &&
           a->has_below == b->has_below && a->above == b->above && a->below == b->below &&
           a->clear_lo == b->clear_lo && a->clear_hi == b->clear_hi && a->for_ms == b->for_ms &&
           a->span_ms == b->span_ms && a->rate == b->rate && a->direction == b->direction &&
           a->window_ms == b->window_ms && a->grace_ms == b->grace_ms && a->fns == b->fns &&
           a->has_alert == b->has_alert && a->alert_fn == b->alert_fn &&
           a->alert_cmp == b->alert_cmp && a->alert_level == b->alert_level &&
           a->method == b->method && a->z == b->z && a->alpha == b->alpha &&
           a->min_sd == b->min_sd && a->warmup == b->warmup && a->samples == b->samples &&
           a->silence_ms == b->silence_ms;
}

/* ---- canonical form ---------------------------------------------------- */

size_t rules__fmt_duration(char *buf, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t scale;
    } units[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
    if (ms == 0)
        return (size_t)snprintf(buf, 24, "0s");
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].scale == 0)
            return (size_t)snprintf(buf, 24, "%lld%s", (long long)(ms / units[i].scale),
                                    units[i].unit);
    return (size_t)snprintf(buf, 24, "%lldms", (long long)ms);
}

bool rules__is_derived_name(const char *name, size_t len)
{
    /* ...:FN_<digits><unit> with unit ms, s, m, h or d */
    size_t i = len;
    while (i > 0 && name[i - 1] >= 'a' && name[i - 1] <= 'z')
        i--;
    struct op_str unit = { name + i, len - i };
    if (!(str_is(unit, "ms") || str_is(unit, "s") || str_is(unit, "m") || str_is(unit, "h") ||
          str_is(unit, "d")))
        return false;
    size_t digits_end = i;
    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
        i--;
    if (i == digits_end || i == 0 || name[i - 1] != '_')
        return false;
    size_t fn_end = i - 1;
    for (int f = 0; f < RULES__FN_N; f++) {
        size_t fl = strlen(rules__fn_names[f]);
        if (fn_end >= fl + 1 && memcmp(name + fn_end - fl, rules__fn_names[f], fl) == 0 &&
            name[fn_end - fl - 1] == ':')
            return true;
    }
    return false;
}

/* Writes key k's canonical value for def into b, or returns false when
 * the key does not apply to this definition. */
static bool format_value(const struct op_rules_def *def, const struct key *k, char *b, size_t cap)
{
    const char *base = (const char *)def;
    bool window_alert = def->kind == OP_RULES_WINDOW && def->has_alert;
    if (!(k->kinds & KIND_BIT(def->kind)))
        return false;
    if (k->has_off && k->type == K_NUM && !*(const bool *)(base + k->has_off))
        return false;
    if ((!strcmp(k->name, "clear") || !strcmp(k->name, "for")) && def->kind == OP_RULES_WINDOW &&
        !window_alert)
        return false;
    if ((!strcmp(k->name, "alpha") && def->method != RULES__EWMA) ||
        (!strcmp(k->name, "samples") && def->method != RULES__MAD))
        return false;
    char num[32], num2[32];
    switch (k->type) {
    case K_KIND:
        snprintf(b, cap, "%s", kind_names[def->kind]);
        return true;
    case K_ENUM:
        snprintf(b, cap, "%s", k->names[*(const int *)(base + k->off)]);
        return true;
    case K_BOOL:
        snprintf(b, cap, "%s", *(const bool *)(base + k->off) ? "true" : "false");
        return true;
    case K_INT:
        snprintf(b, cap, "%lld", (long long)*(const int64_t *)(base + k->off));
        return true;
    case K_DUR:
        rules__fmt_duration(num, *(const int64_t *)(base + k->off));
        snprintf(b, cap, "%s", num);
        return true;
    case K_NUM:
        op_fmt_double(num, *(const double *)(base + k->off));
        snprintf(b, cap, "%s", num);
        return true;
    case K_SENSORS: {
        size_t off = 0;
        b[0] = '\0';
        for (uint32_t i = 0; i < def->npat && off < cap; i++)
            off += (size_t)snprintf(b + off, cap - off, "%s%s", i ? "," : "", def->pat[i]);
        return true;
    }
    case K_FNS: {
        if (!def->fns)
            return false;
        size_t off = 0;
        b[0] = '\0';
        for (int f = 0; f < RULES__FN_N && off < cap; f++)
            if (def->fns & (1u << f))
                off += (size_t)snprintf(b + off, cap - off, "%s%s", off ? "," : "",
                                        rules__fn_names[f]);
        return true;
    }
    case K_ALERT:
        if (!def->has_alert)
            return false;
        op_fmt_double(num, def->alert_level);
        snprintf(b, cap, "%s %s %s", rules__fn_names[def->alert_fn], cmp_names[def->alert_cmp],
                 num);
        return true;
    case K_CLEAR:
        if (def->kind == OP_RULES_THRESHOLD && def->has_above && def->has_below) {
            op_fmt_double(num, def->clear_lo);
            op_fmt_double(num2, def->clear_hi);
            snprintf(b, cap, "%s,%s", num, num2);
        } else {
            bool lo = def->kind == OP_RULES_THRESHOLD && !def->has_above;
            op_fmt_double(num, lo ? def->clear_lo : def->clear_hi);
            snprintf(b, cap, "%s", num);
        }
        return true;
    }
    return false;
}

int op_rules_def_format(const struct op_rules_def *def, struct op_buf *out)
{
    /* sensors is the longest value: 32 patterns of 128 bytes and commas */
    char val[OP_RULES_PATTERNS_MAX * (OP_RULES_SENSOR_MAX + 1) + 1];
    for (size_t i = 0; i < NKEYS; i++) {
        if (!format_value(def, &keys[i], val, sizeof val))
            continue;
        int rc = op_buf_appendf(out, "%s = %s\n", keys[i].name, val);
        if (rc != OP_OK)
            return rc;
    }
    return OP_OK;
}
