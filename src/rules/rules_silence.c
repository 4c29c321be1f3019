/*
 * Silence rules: fire when a sensor has sent no reading for `silence`,
 * measured by op_rules_tick's now against the newest reading's timestamp
 * (so now must be on the readings' clock). The alert fires once, at the
 * first tick where now - last >= silence, and resolves at the sensor's next
 * reading, whatever its timestamp: any reading shows the sensor is alive.
 *
 * A sensor the rule names exactly is watched even if it has never sent
 * anything: its clock starts at the first tick after the rule was put (or
 * at its newest reading, if the engine has seen one).
 */
#include "outpost/err.h"
#include "rules_int.h"

static void silence_init(const struct rules__rule *rule, struct rules__slot *s)
{
    (void)rule;
    s->flags |= RULES__F_NOCLOCK;
    s->u.sil.last_seen = INT64_MIN;
}

static void silence_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_reading *x = ev->r;
    if (s->status == RULES__FIRING) {
        int64_t gap = rules__sub_sat(x->ts, s->u.sil.last_seen);
        if (gap < 0)
            gap = 0;
        s->status = RULES__IDLE;
        rules__emit_alert(ev, rule, s, OP_RULES_RESOLVED, OP_RULES_CAUSE_CLEARED, (double)gap,
                          (double)gap, (double)rule->def.silence_ms, x->ts);
        if (rule->def.important)
            rules__emit_important(ev, rule);
    }
    if ((s->flags & RULES__F_NOCLOCK) || x->ts > s->u.sil.last_seen)
        s->u.sil.last_seen = x->ts;
    s->flags &= (uint8_t)~RULES__F_NOCLOCK;
}

static void silence_tick(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s,
                         int64_t now_ms)
{
    if (s->flags & RULES__F_NOCLOCK) {
        s->u.sil.last_seen = ev->ts_max != INT64_MIN ? ev->ts_max : now_ms;
        s->flags &= (uint8_t)~RULES__F_NOCLOCK;
    }
    if (s->status != RULES__IDLE)
        return;
    int64_t quiet = rules__sub_sat(now_ms, s->u.sil.last_seen);
    if (quiet < rule->def.silence_ms)
        return;
    s->status = RULES__FIRING;
    s->since = s->u.sil.last_seen;
    s->fired = now_ms;
    s->fval = (double)quiet;
    rules__emit_alert(ev, rule, s, OP_RULES_FIRING, OP_RULES_CAUSE_CLEARED, (double)quiet,
                      (double)quiet, (double)rule->def.silence_ms, now_ms);
}

const struct rules__kind rules__silence_kind = {
    .kind = OP_RULES_SILENCE,
    .init = silence_init,
    .eval = silence_eval,
    .tick = silence_tick,
};
