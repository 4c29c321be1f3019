/*
 * State export and restore, so that a restart does not lose what the rules
 * knew: the store will persist the firing alerts and the open windows this
 * file lists, and seed them back into a fresh engine once the rules are put
 * again. Detector baselines (EWMA, MAD, rate samples) are not exported;
 * replaying recent history through op_rules_eval with a NULL sink rebuilds
 * them.
 */
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

size_t op_rules_alerts(const struct op_rules *eng, op_rules_alert_fn *fn, void *ctx)
{
    size_t count = 0;
    for (size_t k = 0; k < eng->nsensors; k++) {
        const struct rules__sensor *s = &eng->sensors[k];
        for (uint32_t j = 0; j < s->n; j++) {
            const struct rules__slot *slot = &s->slots[j];
            if (slot->status != RULES__FIRING)
                continue;
            const struct rules__rule *rule = eng->rules[slot->rule];
            struct op_rules_alert a = {
                .rule = rule->def.name,
                .sensor = s->name,
                .sensor_len = s->len,
                .kind = rule->def.kind,
                .state = OP_RULES_FIRING,
                .cause = OP_RULES_CAUSE_CLEARED,
                .severity = rules__severity_names[rule->def.severity],
                .value = slot->fval,
                .score = rule->def.kind == OP_RULES_ANOMALY ? slot->u.anom.fscore : slot->fval,
                .threshold = rules__level_threshold(rule, slot, OP_RULES_FIRING),
                .since = slot->since,
                .fired_at = slot->fired,
                .ts = slot->fired,
            };
            fn(ctx, &a);
            count++;
        }
    }
    return count;
}

/* The slot of (rule called rule_name, sensor), creating the sensor if it
 * is new. OP_ENOTFOUND if there is no such rule or it does not select the
 * sensor, OP_ETOOBIG if a cap kept the pair from being tracked. */
static int seed_slot(struct op_rules *eng, const char *rule_name, const char *sensor,
                     uint32_t sensor_len, struct rules__rule **rule_out,
                     struct rules__slot **slot_out)
{
    if (!rule_name || !sensor || sensor_len == 0 || sensor_len > OP_RULES_DERIVED_MAX)
        return OP_EINVAL;
    struct rules__rule *rule = rules__find_rule(eng, rule_name, strlen(rule_name));
    if (!rule)
        return OP_ENOTFOUND;
    char name[OP_RULES_DERIVED_MAX + 1];
    memcpy(name, sensor, sensor_len);
    name[sensor_len] = '\0';
    if (!rules__rule_selects(rule, name, sensor_len))
        return OP_ENOTFOUND;
    uint32_t idx;
    int rc = rules__sensor_get(eng, name, sensor_len, &idx);
    if (rc != OP_OK)
        return rc;
    struct rules__slot *slot = rules__slot_of(eng, &eng->sensors[idx], rule);
    if (!slot)
        return OP_ETOOBIG; /* the rule's max_sensors */
    *rule_out = rule;
    *slot_out = slot;
    return OP_OK;
}

int op_rules_alert_seed(struct op_rules *eng, const struct op_rules_alert *a)
{
    struct rules__rule *rule;
    struct rules__slot *slot;
    int rc = seed_slot(eng, a->rule, a->sensor, a->sensor_len, &rule, &slot);
    if (rc != OP_OK)
        return rc;
    const struct rules__level *L = &rule->level;
    slot->status = RULES__FIRING;
    slot->since = a->since;
    slot->fired = a->fired_at;
    slot->fval = a->value;
    /* Which side fired decides the clear level reported at resolution. */
    bool lo = L->use_lo && (!L->use_hi || a->score < (L->lo + L->hi) / 2);
    slot->flags = (uint8_t)((slot->flags & ~RULES__F_SIDE_LO) | (lo ? RULES__F_SIDE_LO : 0));
    if (rule->def.kind == OP_RULES_ANOMALY)
        slot->u.anom.fscore = a->score;
    if (rule->def.kind == OP_RULES_SILENCE) {
        slot->u.sil.last_seen = a->since;
        slot->flags &= (uint8_t)~RULES__F_NOCLOCK;
    }
    return OP_OK;
}

size_t op_rules_windows(const struct op_rules *eng, op_rules_window_fn *fn, void *ctx)
{
    size_t count = 0;
    for (size_t k = 0; k < eng->nsensors; k++) {
        const struct rules__sensor *s = &eng->sensors[k];
        for (uint32_t j = 0; j < s->n; j++) {
            const struct rules__slot *slot = &s->slots[j];
            const struct rules__rule *rule = eng->rules[slot->rule];
            if (rule->def.kind != OP_RULES_WINDOW || slot->n == 0)
                continue;
            struct op_rules_window w = {
                .rule = rule->def.name,
                .sensor = s->name,
                .sensor_len = s->len,
                .start = slot->u.win.start,
                .count = slot->n,
                .sum = slot->u.win.sum,
                .min = slot->u.win.min,
                .max = slot->u.win.max,
                .first = slot->u.win.first,
                .last = slot->u.win.last,
                .sum_d = slot->u.win.sum_d,
                .sum_d2 = slot->u.win.sum_d2,
            };
            fn(ctx, &w);
            count++;
        }
    }
    return count;
}

int op_rules_window_seed(struct op_rules *eng, const struct op_rules_window *w)
{
    struct rules__rule *rule = w->rule ? rules__find_rule(eng, w->rule, strlen(w->rule)) : NULL;
    if (!rule || rule->def.kind != OP_RULES_WINDOW)
        return OP_ENOTFOUND;
    if (w->count == 0 || w->start % rule->def.window_ms != 0)
        return OP_EINVAL;
    struct rules__slot *slot;
    int rc = seed_slot(eng, w->rule, w->sensor, w->sensor_len, &rule, &slot);
    if (rc != OP_OK)
        return rc;
    slot->n = w->count;
    slot->flags |= RULES__F_HISTORY;
    slot->u.win.start = w->start;
    slot->u.win.sum = w->sum;
    slot->u.win.min = w->min;
    slot->u.win.max = w->max;
    slot->u.win.first = w->first;
    slot->u.win.last = w->last;
    slot->u.win.sum_d = w->sum_d;
    slot->u.win.sum_d2 = w->sum_d2;
    return OP_OK;
}
