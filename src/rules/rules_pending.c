/*
 * rules_pending.c: what the rules runner has produced but not yet stored:
 * alert events, derived readings (window aggregates) and important marks.
 * They are copied out of the engine's callbacks (whose strings are borrowed
 * for the call only) into fixed-size buffers, and handed to the store as
 * one RULES_PROGRESS write with the cursor, so they commit together and a
 * crash never stores an event twice or loses one whose readings the cursor
 * has passed. A full buffer drops the newest and counts it; the runner
 * flushes at half full, so that happens only when the store cannot keep up.
 */
#include <string.h>

#include "outpost/err.h"
#include "outpost/util.h"
#include "rules_int.h"

/* Derived names fit the store (OP_STORE_SENSOR_MAX >= OP_RULES_DERIVED_MAX). */
#define PENDING_NAME_MAX OP_RULES_DERIVED_MAX
_Static_assert(OP_STORE_SENSOR_MAX >= OP_RULES_DERIVED_MAX, "derived names fit the store");

void rules__pending_init(struct rules__pending *p, struct op_counter *dropped_alerts,
                         struct op_counter *dropped_derived, struct op_counter *dropped_marks)
{
    /* p is in zeroed memory (the runner is calloc'ed): no memset, which
     * would make its ~370 KB of buffers resident before any rule runs. */
    p->nalerts = p->nderived = p->nmarks = 0;
    p->c_alerts = dropped_alerts;
    p->c_derived = dropped_derived;
    p->c_marks = dropped_marks;
}

void rules__pending_alert(struct rules__pending *p, const struct op_rules_alert *a)
{
    if (p->nalerts >= RULES__PENDING_ALERTS) {
        op_counter_add(p->c_alerts, 1);
        return;
    }
    size_t rlen = strlen(a->rule);
    char *m = op_malloc(rlen + 1 + a->sensor_len + 1);
    if (!m) {
        op_counter_add(p->c_alerts, 1);
        return;
    }
    memcpy(m, a->rule, rlen + 1);
    memcpy(m + rlen + 1, a->sensor, a->sensor_len);
    m[rlen + 1 + a->sensor_len] = '\0';
    p->alert_mem[p->nalerts] = m;
    p->alerts[p->nalerts++] = (struct op_store_alert){
        .rule = m,
        .sensor = m + rlen + 1,
        .sensor_len = a->sensor_len,
        .kind = op_rules_kind_name(a->kind),
        .state = op_rules_state_name(a->state),
        .severity = a->severity,
        .cause = op_rules_cause_name(a->cause),
        .value = a->value,
        .threshold = a->threshold,
        .since = a->since,
        .fired_at = a->fired_at,
        .ts = a->ts,
    };
}

void rules__pending_derived(struct rules__pending *p, const struct op_rules_derived *d)
{
    if (p->nderived >= RULES__PENDING_DERIVED || d->r.sensor_len > PENDING_NAME_MAX ||
        d->r.sensor_len == 0) {
        op_counter_add(p->c_derived, 1);
        return;
    }
    size_t i = p->nderived++;
    memcpy(p->derived_names[i], d->r.sensor, d->r.sensor_len);
    p->derived[i] = (struct op_reading){ p->derived_names[i], d->r.sensor_len, d->r.ts,
                                         d->r.value };
    p->derived_important[i] = d->important;
    p->any_important |= d->important;
}

void rules__pending_mark(struct rules__pending *p, int64_t seq, int64_t ts)
{
    /* One mark per reading is enough, however many rules marked it; the
     * engine reports a reading's rules one after the other. */
    if (p->nmarks > 0 && p->marks[p->nmarks - 1].seq == seq)
        return;
    if (p->nmarks >= RULES__PENDING_MARKS) {
        op_counter_add(p->c_marks, 1);
        return;
    }
    p->marks[p->nmarks++] = (struct op_store_mark){ seq, ts };
}

bool rules__pending_half_full(const struct rules__pending *p)
{
    return p->nalerts > RULES__PENDING_ALERTS / 2 || p->nderived > RULES__PENDING_DERIVED / 2 ||
           p->nmarks > RULES__PENDING_MARKS / 2;
}

bool rules__pending_empty(const struct rules__pending *p)
{
    return p->nalerts == 0 && p->nderived == 0 && p->nmarks == 0;
}

void rules__pending_fill(struct rules__pending *p, struct op_store_write *w)
{
    w->alerts = p->alerts;
    w->nalerts = p->nalerts;
    w->derived = p->derived;
    w->nderived = p->nderived;
    w->derived_important = p->any_important ? p->derived_important : NULL;
    w->marks = p->marks;
    w->nmarks = p->nmarks;
}

void rules__pending_clear(struct rules__pending *p, bool stored)
{
    if (!stored) {
        op_counter_add(p->c_alerts, p->nalerts);
        op_counter_add(p->c_derived, p->nderived);
        op_counter_add(p->c_marks, p->nmarks);
    }
    for (size_t i = 0; i < p->nalerts; i++)
        op_free(p->alert_mem[i]);
    p->nalerts = p->nderived = p->nmarks = 0;
    p->any_important = false;
}
