/*
 * The rule engine: the sensor table, which rules select which sensor, rule
 * changes at runtime, and the evaluation loop over batches of readings and
 * ticks. The kinds themselves (threshold, rate, window, anomaly, silence)
 * live in their own files behind struct rules__kind; this file only
 * dispatches to them and emits their events.
 *
 * A sensor seen for the first time is matched against every rule once
 * (exact names and "prefix*" patterns without fnmatch); putting or removing
 * a rule updates every known sensor's slot array for that one rule. The hot
 * path (op_rules_eval) is a hash lookup, with a one-entry cache for runs of
 * the same sensor, and a walk over the sensor's slots; it allocates only
 * for sensors it has never seen.
 */
#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

#define DEFAULT_MAX_RULES 1024
#define DEFAULT_MAX_SENSORS 100000
#define MAX_RULES_LIMIT 65535 /* slots name their rule in 16 bits */

static const struct rules__kind *const kinds[] = {
    [OP_RULES_THRESHOLD] = &rules__threshold_kind, [OP_RULES_RATE] = &rules__rate_kind,
    [OP_RULES_WINDOW] = &rules__window_kind,       [OP_RULES_ANOMALY] = &rules__anomaly_kind,
    [OP_RULES_SILENCE] = &rules__silence_kind,
};

/* ---- hashing and the sensor table ------------------------------------- */

/* A multiply-rotate hash over 8-byte words; sensor names are short. */
static uint32_t hash_name(const char *p, size_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    }
    h ^= h >> 32;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static uint32_t lookup(const struct op_rules *eng, const char *name, size_t len, uint32_t h)
{
    if (!eng->table)
        return UINT32_MAX;
    for (size_t i = h & eng->tmask;; i = (i + 1) & eng->tmask) {
        const struct rules__bucket *b = &eng->table[i];
        if (!b->idx1)
            return UINT32_MAX;
        if (b->hash == h) {
            const struct rules__sensor *s = &eng->sensors[b->idx1 - 1];
            if (s->len == len && memcmp(s->name, name, len) == 0)
                return b->idx1 - 1;
        }
    }
}

static int table_grow(struct op_rules *eng)
{
    size_t cap = eng->table ? (eng->tmask + 1) * 2 : 64;
    struct rules__bucket *t = op_calloc(cap, sizeof *t);
    if (!t)
        return OP_ENOMEM;
    for (size_t k = 0; k < eng->nsensors; k++) {
        size_t i = eng->sensors[k].hash & (cap - 1);
        while (t[i].idx1)
            i = (i + 1) & (cap - 1);
        t[i].hash = eng->sensors[k].hash;
        t[i].idx1 = (uint32_t)k + 1;
    }
    op_free(eng->table);
    eng->table = t;
    eng->tmask = cap - 1;
    return OP_OK;
}

/* ---- matching ---------------------------------------------------------- */

static void classify_patterns(struct rules__rule *rule)
{
    for (uint32_t i = 0; i < rule->def.npat; i++) {
        const char *p = rule->def.pat[i];
        size_t len = strlen(p), globs = strcspn(p, "*?[");
        rule->pat_len[i] = (uint16_t)len;
        if (globs == len)
            rule->pat_class[i] = RULES__PAT_EXACT;
        else if (globs == len - 1 && p[len - 1] == '*')
            rule->pat_class[i] = RULES__PAT_PREFIX;
        else
            rule->pat_class[i] = RULES__PAT_GLOB;
    }
}

bool rules__rule_selects(const struct rules__rule *rule, const char *name, size_t len)
{
    if (rule->def.kind == OP_RULES_WINDOW && rules__is_derived_name(name, len))
        return false;
    for (uint32_t i = 0; i < rule->def.npat; i++) {
        size_t pl = rule->pat_len[i];
        switch (rule->pat_class[i]) {
        case RULES__PAT_EXACT:
            if (pl == len && memcmp(rule->def.pat[i], name, len) == 0)
                return true;
            break;
        case RULES__PAT_PREFIX:
            if (len >= pl - 1 && memcmp(rule->def.pat[i], name, pl - 1) == 0)
                return true;
            break;
        default:
            /* `*` matches across '/' (no FNM_PATHNAME): "line1/" followed
             * by a star selects line1/a/b too. name is NUL-terminated (the table's copy). */
            if (fnmatch(rule->def.pat[i], name, 0) == 0)
                return true;
        }
    }
    return false;
}

struct rules__rule *rules__find_rule(const struct op_rules *eng, const char *name, size_t len)
{
    if (len > OP_RULES_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < eng->max_rules; i++) {
        struct rules__rule *r = eng->rules[i];
        if (r && strlen(r->def.name) == len && memcmp(r->def.name, name, len) == 0)
            return r;
    }
    return NULL;
}

static uint16_t rule_index(const struct op_rules *eng, const struct rules__rule *rule)
{
    for (size_t i = 0; i < eng->max_rules; i++)
        if (eng->rules[i] == rule)
            return (uint16_t)i;
    return UINT16_MAX;
}

struct rules__slot *rules__slot_of(const struct op_rules *eng, const struct rules__sensor *s,
                                   const struct rules__rule *rule)
{
    uint16_t ri = rule_index(eng, rule);
    for (uint32_t j = 0; j < s->n; j++)
        if (s->slots[j].rule == ri)
            return &s->slots[j];
    return NULL;
}

static void slot_init(const struct rules__rule *rule, uint16_t ri, struct rules__slot *s)
{
    memset(s, 0, sizeof *s);
    s->rule = ri;
    rule->ops->init(rule, s);
}

/* Makes room for one more slot; OP_OK or OP_ENOMEM (s unchanged). */
static int slots_reserve(struct rules__sensor *s, uint32_t more)
{
    if (s->n + more <= s->cap)
        return OP_OK;
    uint32_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < s->n + more)
        cap *= 2;
    struct rules__slot *p = op_realloc(s->slots, (size_t)cap * sizeof *p);
    if (!p)
        return OP_ENOMEM;
    s->slots = p;
    s->cap = cap;
    return OP_OK;
}

/* Adds a slot for rule (at index ri) to sensor s if the rule's cap allows;
 * capacity must have been reserved. */
static void slot_add(struct rules__rule *rule, uint16_t ri, struct rules__sensor *s,
                     struct op_rules *eng)
{
    if (rule->nsensors >= (size_t)rule->def.max_sensors) {
        rule->dropped++;
        eng->st.rule_sensors_dropped++;
        return;
    }
    slot_init(rule, ri, &s->slots[s->n++]);
    rule->nsensors++;
    eng->st.pairs++;
}

int rules__sensor_get(struct op_rules *eng, const char *name, size_t len, uint32_t *idx)
{
    uint32_t h = hash_name(name, len);
    uint32_t k = lookup(eng, name, len, h);
    if (k != UINT32_MAX) {
        *idx = k;
        return OP_OK;
    }
    if (eng->nsensors >= eng->max_sensors)
        return OP_ETOOBIG;
    if ((eng->nsensors + 1) * 2 > (eng->table ? eng->tmask + 1 : 0) && table_grow(eng) != OP_OK)
        return OP_ENOMEM;
    if (eng->nsensors == eng->capsensors) {
        size_t cap = eng->capsensors ? eng->capsensors * 2 : 64;
        struct rules__sensor *p = op_realloc(eng->sensors, cap * sizeof *p);
        if (!p)
            return OP_ENOMEM;
        eng->sensors = p;
        eng->capsensors = cap;
    }
    struct rules__sensor s = { .len = (uint32_t)len, .hash = h, .max_ts = INT64_MIN };
    if (!(s.name = op_strndup(name, len)))
        return OP_ENOMEM;
    /* Count the rules that select it, reserve once, then fill. */
    uint32_t want = 0;
    for (size_t i = 0; i < eng->max_rules; i++)
        if (eng->rules[i] && rules__rule_selects(eng->rules[i], s.name, len))
            want++;
    if (want && slots_reserve(&s, want) != OP_OK) {
        op_free(s.name);
        return OP_ENOMEM;
    }
    for (size_t i = 0; i < eng->max_rules && want; i++)
        if (eng->rules[i] && rules__rule_selects(eng->rules[i], s.name, len))
            slot_add(eng->rules[i], (uint16_t)i, &s, eng);
    k = (uint32_t)eng->nsensors++;
    eng->sensors[k] = s;
    size_t b = h & eng->tmask;
    while (eng->table[b].idx1)
        b = (b + 1) & eng->tmask;
    eng->table[b].hash = h;
    eng->table[b].idx1 = k + 1;
    eng->st.sensors = eng->nsensors;
    *idx = k;
    return OP_OK;
}

/* ---- events ------------------------------------------------------------ */

void rules__emit_alert(struct rules__ev *ev, struct rules__rule *rule,
                       const struct rules__slot *s, enum op_rules_state state,
                       enum op_rules_cause cause, double value, double score, double threshold,
                       int64_t ts)
{
    if (state == OP_RULES_FIRING) {
        ev->eng->st.alerts_fired++;
        rule->fired++;
    } else {
        ev->eng->st.alerts_resolved++;
    }
    if (!ev->sink || !ev->sink->alert)
        return;
    struct op_rules_alert a = {
        .rule = rule->def.name,
        .sensor = ev->sensor->name,
        .sensor_len = ev->sensor->len,
        .kind = rule->def.kind,
        .state = state,
        .cause = cause,
        .severity = rules__severity_names[rule->def.severity],
        .value = value,
        .score = score,
        .threshold = threshold,
        .since = s->since,
        .fired_at = s->fired,
        .ts = ts,
    };
    ev->sink->alert(ev->sink->ctx, &a);
}

void rules__emit_important(struct rules__ev *ev, const struct rules__rule *rule)
{
    if (ev->r && ev->sink && ev->sink->important)
        ev->sink->important(ev->sink->ctx, ev->index, ev->r, rule->def.name);
}

/* ---- lifecycle --------------------------------------------------------- */

int op_rules_create(struct op_rules **out, const struct op_rules_opts *opts)
{
    *out = NULL;
    struct op_rules *eng = op_calloc(1, sizeof *eng);
    if (!eng)
        return OP_ENOMEM;
    eng->max_rules = opts && opts->max_rules ? opts->max_rules : DEFAULT_MAX_RULES;
    if (eng->max_rules > MAX_RULES_LIMIT)
        eng->max_rules = MAX_RULES_LIMIT;
    eng->max_sensors = opts && opts->max_sensors ? opts->max_sensors : DEFAULT_MAX_SENSORS;
    if (eng->max_sensors > UINT32_MAX - 1)
        eng->max_sensors = UINT32_MAX - 1;
    eng->rules = op_calloc(eng->max_rules, sizeof *eng->rules);
    if (!eng->rules) {
        op_free(eng);
        return OP_ENOMEM;
    }
    *out = eng;
    return OP_OK;
}

static void slot_drop(const struct rules__rule *rule, struct rules__slot *s)
{
    if (rule->ops->drop)
        rule->ops->drop(s);
}

void op_rules_destroy(struct op_rules *eng)
{
    if (!eng)
        return;
    for (size_t k = 0; k < eng->nsensors; k++) {
        struct rules__sensor *s = &eng->sensors[k];
        for (uint32_t j = 0; j < s->n; j++)
            slot_drop(eng->rules[s->slots[j].rule], &s->slots[j]);
        op_free(s->slots);
        op_free(s->name);
    }
    for (size_t i = 0; i < eng->max_rules; i++)
        op_free(eng->rules[i]);
    op_free(eng->rules);
    op_free(eng->sensors);
    op_free(eng->table);
    op_free(eng);
}

/* ---- rule changes ------------------------------------------------------ */

/* Removes rule (index ri) from every sensor, resolving its firing alerts
 * with cause, then frees it. */
static void rule_detach(struct op_rules *eng, uint16_t ri, enum op_rules_cause cause,
                        const struct op_rules_sink *sink)
{
    struct rules__rule *rule = eng->rules[ri];
    struct rules__ev ev = { .eng = eng, .sink = sink };
    for (size_t k = 0; k < eng->nsensors; k++) {
        struct rules__sensor *s = &eng->sensors[k];
        for (uint32_t j = 0; j < s->n; j++) {
            struct rules__slot *slot = &s->slots[j];
            if (slot->rule != ri)
                continue;
            if (slot->status == RULES__FIRING) {
                ev.sensor = s;
                double score = rule->def.kind == OP_RULES_ANOMALY ? slot->u.anom.fscore
                                                                  : slot->fval;
                /* No clock at hand: the event is stamped with the sensor's
                 * newest reading time. */
                rules__emit_alert(&ev, rule, slot, OP_RULES_RESOLVED, cause, slot->fval, score,
                                  rules__level_threshold(rule, slot, OP_RULES_FIRING),
                                  s->max_ts > slot->fired ? s->max_ts : slot->fired);
            }
            slot_drop(rule, slot);
            memmove(slot, slot + 1, (size_t)(s->n - j - 1) * sizeof *slot);
            s->n--;
            eng->st.pairs--;
            break; /* one slot per (rule, sensor) */
        }
    }
    if (rule->def.kind == OP_RULES_WINDOW || rule->def.kind == OP_RULES_SILENCE)
        eng->ntick--;
    eng->rules[ri] = NULL;
    eng->nrules--;
    op_free(rule);
}

/* Silence rules watch the sensors they name exactly even before their
 * first reading: those sensors are created when the rule is put. */
static int create_named_sensors(struct op_rules *eng, const struct rules__rule *rule)
{
    if (rule->def.kind != OP_RULES_SILENCE)
        return OP_OK;
    for (uint32_t i = 0; i < rule->def.npat; i++) {
        if (rule->pat_class[i] != RULES__PAT_EXACT)
            continue;
        uint32_t idx;
        int rc = rules__sensor_get(eng, rule->def.pat[i], rule->pat_len[i], &idx);
        if (rc == OP_ENOMEM)
            return rc;
        if (rc == OP_ETOOBIG)
            eng->st.sensors_dropped++;
    }
    return OP_OK;
}

int op_rules_put(struct op_rules *eng, const struct op_rules_def *def,
                 const struct op_rules_sink *sink)
{
    struct rules__rule *old = rules__find_rule(eng, def->name, strlen(def->name));
    if (old && op_rules_def_equal(&old->def, def))
        return OP_OK;
    if (!old && eng->nrules >= eng->max_rules)
        return OP_ETOOBIG;
    struct rules__rule *rule = op_calloc(1, sizeof *rule);
    if (!rule)
        return OP_ENOMEM;
    rule->def = *def;
    rule->ops = kinds[def->kind];
    classify_patterns(rule);
    rules__level_compile(rule);
    if (def->kind == OP_RULES_WINDOW) {
        char dur[24];
        rules__fmt_duration(dur, def->window_ms);
        for (int f = 0; f < RULES__FN_N; f++)
            rule->suffix_len[f] = (uint8_t)snprintf(rule->suffix[f], sizeof rule->suffix[f],
                                                    ":%s_%s", rules__fn_names[f], dur);
    }
    uint8_t *match = NULL;
    int rc = create_named_sensors(eng, rule);
    if (rc != OP_OK)
        goto fail;
    /* Phase 1 (may fail, changes nothing visible): find the sensors the
     * rule selects and reserve a slot in each. */
    rc = OP_ENOMEM;
    if (eng->nsensors && !(match = op_calloc(eng->nsensors, 1)))
        goto fail;
    for (size_t k = 0; k < eng->nsensors; k++) {
        struct rules__sensor *s = &eng->sensors[k];
        match[k] = rules__rule_selects(rule, s->name, s->len);
        /* A replaced rule's slot is freed before the new one is added. */
        if (match[k] && slots_reserve(s, 1) != OP_OK)
            goto fail;
    }
    /* Phase 2 (cannot fail). */
    size_t ri;
    if (old) {
        ri = rule_index(eng, old);
        rule_detach(eng, (uint16_t)ri, OP_RULES_CAUSE_RULE_CHANGED, sink);
    } else {
        for (ri = 0; eng->rules[ri]; ri++)
            ;
    }
    rule->seq = ++eng->seq;
    eng->rules[ri] = rule;
    eng->nrules++;
    if (def->kind == OP_RULES_WINDOW || def->kind == OP_RULES_SILENCE)
        eng->ntick++;
    for (size_t k = 0; k < eng->nsensors; k++)
        if (match[k])
            slot_add(rule, (uint16_t)ri, &eng->sensors[k], eng);
    op_free(match);
    eng->st.rules = eng->nrules;
    return OP_OK;
fail:
    op_free(match);
    op_free(rule);
    return rc;
}

int op_rules_remove(struct op_rules *eng, const char *name, size_t len,
                    const struct op_rules_sink *sink)
{
    struct rules__rule *rule = rules__find_rule(eng, name, len);
    if (!rule)
        return OP_ENOTFOUND;
    rule_detach(eng, rule_index(eng, rule), OP_RULES_CAUSE_RULE_REMOVED, sink);
    eng->st.rules = eng->nrules;
    return OP_OK;
}

const struct op_rules_def *op_rules_get(const struct op_rules *eng, const char *name, size_t len)
{
    const struct rules__rule *rule = rules__find_rule(eng, name, len);
    return rule ? &rule->def : NULL;
}

size_t op_rules_count(const struct op_rules *eng)
{
    return eng->nrules;
}

size_t op_rules_each(const struct op_rules *eng, op_rules_def_fn *fn, void *ctx)
{
    /* In order of addition: a selection by seq, fine for an admin call. */
    uint64_t after = 0;
    for (size_t done = 0; done < eng->nrules; done++) {
        const struct rules__rule *next = NULL;
        for (size_t i = 0; i < eng->max_rules; i++) {
            const struct rules__rule *r = eng->rules[i];
            if (r && r->seq > after && (!next || r->seq < next->seq))
                next = r;
        }
        after = next->seq;
        fn(ctx, &next->def);
    }
    return eng->nrules;
}

/* ---- evaluation -------------------------------------------------------- */

int op_rules_eval(struct op_rules *eng, const struct op_reading *r, size_t n,
                  const struct op_rules_sink *sink)
{
    int rc = OP_OK;
    struct rules__ev ev = { .eng = eng, .sink = sink };
    uint32_t cached = UINT32_MAX;
    uint64_t evals = 0;
    for (size_t i = 0; i < n; i++) {
        const struct op_reading *x = &r[i];
        uint32_t k = cached;
        if (k == UINT32_MAX || eng->sensors[k].len != x->sensor_len ||
            memcmp(eng->sensors[k].name, x->sensor, x->sensor_len) != 0) {
            int grc = rules__sensor_get(eng, x->sensor, x->sensor_len, &k);
            if (grc != OP_OK) {
                if (grc == OP_ETOOBIG) {
                    eng->st.sensors_dropped++;
                } else {
                    eng->st.alloc_failures++;
                    rc = grc;
                }
                cached = UINT32_MAX;
                continue;
            }
            cached = k;
        }
        struct rules__sensor *s = &eng->sensors[k];
        /* The store admits finite values only; a NaN here would read as
         * "condition cleared" to every comparison, so it is refused. */
        if (!isfinite(x->value)) {
            eng->st.nonfinite++;
            continue;
        }
        ev.ooo = x->ts < s->max_ts;
        if (ev.ooo)
            eng->st.out_of_order++;
        else
            s->max_ts = x->ts;
        ev.sensor = s;
        ev.r = x;
        ev.index = i;
        ev.ts_max = s->max_ts;
        for (uint32_t j = 0; j < s->n; j++) {
            struct rules__slot *slot = &s->slots[j];
            struct rules__rule *rule = eng->rules[slot->rule];
            rule->ops->eval(&ev, rule, slot);
        }
        evals += s->n;
    }
    eng->st.readings += n;
    eng->st.evaluations += evals;
    return rc;
}

int op_rules_tick(struct op_rules *eng, int64_t now_ms, const struct op_rules_sink *sink)
{
    if (!eng->ntick)
        return OP_OK;
    struct rules__ev ev = { .eng = eng, .sink = sink };
    for (size_t k = 0; k < eng->nsensors; k++) {
        struct rules__sensor *s = &eng->sensors[k];
        ev.sensor = s;
        ev.ts_max = s->max_ts;
        for (uint32_t j = 0; j < s->n; j++) {
            struct rules__slot *slot = &s->slots[j];
            struct rules__rule *rule = eng->rules[slot->rule];
            if (rule->ops->tick)
                rule->ops->tick(&ev, rule, slot, now_ms);
        }
    }
    return OP_OK;
}

/* ---- statistics -------------------------------------------------------- */

void op_rules_stats(const struct op_rules *eng, struct op_rules_stats *out)
{
    *out = eng->st;
    size_t bytes = sizeof *eng + eng->max_rules * sizeof *eng->rules +
                   eng->nrules * sizeof(struct rules__rule) +
                   eng->capsensors * sizeof *eng->sensors +
                   (eng->table ? (eng->tmask + 1) * sizeof *eng->table : 0);
    for (size_t k = 0; k < eng->nsensors; k++) {
        const struct rules__sensor *s = &eng->sensors[k];
        bytes += s->len + 1 + (size_t)s->cap * sizeof *s->slots;
        for (uint32_t j = 0; j < s->n; j++) {
            const struct rules__rule *rule = eng->rules[s->slots[j].rule];
            if (rule->ops->ext_bytes)
                bytes += rule->ops->ext_bytes(rule, &s->slots[j]);
        }
    }
    out->bytes = bytes;
}

int op_rules_rule_stats(const struct op_rules *eng, const char *name, size_t len,
                        struct op_rules_rule_stats *out)
{
    const struct rules__rule *rule = rules__find_rule(eng, name, len);
    if (!rule)
        return OP_ENOTFOUND;
    out->sensors = rule->nsensors;
    out->sensors_dropped = rule->dropped;
    out->fired = rule->fired;
    return OP_OK;
}

const char *op_rules_state_name(enum op_rules_state s)
{
    return s == OP_RULES_FIRING ? "firing" : s == OP_RULES_RESOLVED ? "resolved" : "unknown";
}

const char *op_rules_cause_name(enum op_rules_cause c)
{
    switch (c) {
    case OP_RULES_CAUSE_CLEARED:
        return "cleared";
    case OP_RULES_CAUSE_RULE_CHANGED:
        return "rule_changed";
    case OP_RULES_CAUSE_RULE_REMOVED:
        return "rule_removed";
    }
    return "unknown";
}

bool op_rules_selects_any(const struct op_rules *eng, const char *name, size_t len)
{
    for (size_t i = 0; i < eng->max_rules; i++)
        if (eng->rules[i] && rules__rule_selects(eng->rules[i], name, len))
            return true;
    return false;
}

int64_t op_rules_history_ms(const struct op_rules *eng)
{
    int64_t h = 0;
    for (size_t i = 0; i < eng->max_rules; i++) {
        const struct rules__rule *r = eng->rules[i];
        if (!r)
            continue;
        const struct op_rules_def *d = &r->def;
        /* A window: the open one and the grace; a rate: the span and the
         * sample spacing (span/8); a hold: its duration. */
        int64_t need = d->for_ms;
        if (d->kind == OP_RULES_WINDOW)
            need += d->window_ms + d->grace_ms;
        else if (d->kind == OP_RULES_RATE)
            need += d->span_ms + d->span_ms / 8;
        if (need > h)
            h = need;
    }
    return h;
}
