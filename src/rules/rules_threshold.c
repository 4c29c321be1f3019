/*
 * The alert lifecycle shared by every kind that compares a quantity with a
 * level (threshold, rate, window alert_on, anomaly), and the two kinds that
 * are nothing more than that: threshold (the reading itself) and rate (the
 * change of the reading over a span).
 *
 * Lifecycle: idle -> pending when the condition starts -> firing once it
 * has held for `for` (at once when for = 0) -> idle again when the quantity
 * is back within the clear level(s). Pending falls back to idle silently if
 * the condition stops before `for`. Comparisons are strict (above = 30 does
 * not fire at exactly 30) unless alert_on says >= or <=.
 */
#include <math.h>
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

void rules__level_compile(struct rules__rule *rule)
{
    const struct op_rules_def *d = &rule->def;
    struct rules__level *L = &rule->level;
    memset(L, 0, sizeof *L);
    L->for_ms = d->for_ms;
    switch (d->kind) {
    case OP_RULES_THRESHOLD:
        L->use_hi = d->has_above;
        L->hi = d->above;
        L->clear_hi = d->clear_hi;
        L->use_lo = d->has_below;
        L->lo = d->below;
        L->clear_lo = d->clear_lo;
        break;
    case OP_RULES_RATE:
    case OP_RULES_ANOMALY: {
        /* A symmetric limit on a signed quantity (change, z-score). */
        double lim = d->kind == OP_RULES_RATE ? d->rate : d->z;
        L->use_hi = d->direction != RULES__DIR_DOWN;
        L->use_lo = d->direction != RULES__DIR_UP;
        L->hi = lim;
        L->lo = -lim;
        L->clear_hi = d->clear_hi;
        L->clear_lo = -d->clear_hi;
        break;
    }
    case OP_RULES_WINDOW:
        if (!d->has_alert)
            break;
        L->incl = d->alert_cmp == RULES__GE || d->alert_cmp == RULES__LE;
        if (d->alert_cmp == RULES__GT || d->alert_cmp == RULES__GE) {
            L->use_hi = true;
            L->hi = d->alert_level;
            L->clear_hi = d->clear_hi;
        } else {
            L->use_lo = true;
            L->lo = d->alert_level;
            L->clear_lo = d->clear_hi;
        }
        break;
    case OP_RULES_SILENCE:
        break;
    }
}

double rules__level_threshold(const struct rules__rule *rule, const struct rules__slot *s,
                              enum op_rules_state state)
{
    const struct rules__level *L = &rule->level;
    if (rule->def.kind == OP_RULES_SILENCE)
        return (double)rule->def.silence_ms;
    bool lo = s->flags & RULES__F_SIDE_LO;
    if (state == OP_RULES_FIRING)
        return lo ? L->lo : L->hi;
    return lo ? L->clear_lo : L->clear_hi;
}

static bool above(double x, double level, bool incl)
{
    return incl ? x >= level : x > level;
}

static bool below(double x, double level, bool incl)
{
    return incl ? x <= level : x < level;
}

void rules__level_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s,
                       double value, double score, int64_t start, int64_t ts)
{
    const struct rules__level *L = &rule->level;
    bool hi = L->use_hi && above(score, L->hi, L->incl);
    bool lo = L->use_lo && below(score, L->lo, L->incl);
    bool resolved = false;
    switch (s->status) {
    case RULES__IDLE:
        if (!hi && !lo)
            break;
        s->since = start;
        s->status = RULES__PENDING;
        /* With for = 0 it fires on this reading. */
        __attribute__((fallthrough));
    case RULES__PENDING:
        if (!hi && !lo) {
            s->status = RULES__IDLE;
            break;
        }
        if (rules__sub_sat(ts, s->since) < L->for_ms)
            break;
        s->status = RULES__FIRING;
        s->flags = (uint8_t)((s->flags & ~RULES__F_SIDE_LO) | (hi ? 0 : RULES__F_SIDE_LO));
        s->fired = ts;
        s->fval = value;
        if (rule->def.kind == OP_RULES_ANOMALY)
            s->u.anom.fscore = score;
        rules__emit_alert(ev, rule, s, OP_RULES_FIRING, OP_RULES_CAUSE_CLEARED, value, score,
                          hi ? L->hi : L->lo, ts);
        break;
    case RULES__FIRING:
        /* Still beyond a clear level on either side: keep firing. */
        if ((L->use_hi && above(score, L->clear_hi, L->incl)) ||
            (L->use_lo && below(score, L->clear_lo, L->incl)))
            break;
        s->status = RULES__IDLE;
        resolved = true;
        rules__emit_alert(ev, rule, s, OP_RULES_RESOLVED, OP_RULES_CAUSE_CLEARED, value, score,
                          rules__level_threshold(rule, s, OP_RULES_RESOLVED), ts);
        break;
    }
    /* The readings of an episode (pending, firing, and the one that ends
     * it) are important; a window rule marks its derived series instead. */
    if (rule->def.important && rule->def.kind != OP_RULES_WINDOW &&
        (resolved || s->status != RULES__IDLE))
        rules__emit_important(ev, rule);
}

/* ---- threshold --------------------------------------------------------- */

static void threshold_init(const struct rules__rule *rule, struct rules__slot *s)
{
    (void)rule;
    (void)s;
}

/* An out-of-order reading is compared like any other, but `for` is
 * measured in the sensor's newest time so an old reading cannot stretch
 * or shorten a duration. */
static void threshold_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    rules__level_eval(ev, rule, s, ev->r->value, ev->r->value, ev->ts_max, ev->ts_max);
}

const struct rules__kind rules__threshold_kind = {
    .kind = OP_RULES_THRESHOLD,
    .init = threshold_init,
    .eval = threshold_eval,
};

/* ---- rate -------------------------------------------------------------- */

/* Samples kept to measure the change over span: at most one per span/8,
 * and enough of them (10) that one at least span old is always kept. The
 * change is the slope between the reading and the newest sample at least
 * span older, times span: "changed by more than rate within span". */
#define RATE_SUB 8
#define RATE_RING 10

struct rules__rate_ext {
    int64_t ts[RATE_RING];
    double v[RATE_RING];
    uint8_t head; /* next write */
    uint8_t n;
};

static void rate_init(const struct rules__rule *rule, struct rules__slot *s)
{
    (void)rule;
    s->u.rate.last_ts = INT64_MIN;
}

static void rate_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_reading *x = ev->r;
    if (x->ts < s->u.rate.last_ts) {
        ev->eng->st.ignored++;
        return;
    }
    struct rules__rate_ext *e = s->u.rate.ext;
    if (!e) {
        e = op_calloc(1, sizeof *e);
        if (!e) {
            ev->eng->st.alloc_failures++;
            return; /* tried again at the next reading */
        }
        s->u.rate.ext = e;
    }
    s->u.rate.last_ts = x->ts;
    int64_t span = rule->def.span_ms;
    int64_t cut = rules__sub_sat(x->ts, span);
    for (int k = 1; k <= e->n; k++) {
        int i = (e->head + RATE_RING - k) % RATE_RING;
        if (e->ts[i] > cut)
            continue;
        /* x->ts - e->ts[i] >= span >= 1, and span/dt <= 1 cannot overflow */
        double ratio = (double)span / (double)rules__sub_sat(x->ts, e->ts[i]);
        double delta = (x->value - e->v[i]) * ratio;
        if (isfinite(delta))
            rules__level_eval(ev, rule, s, delta, delta, x->ts, x->ts);
        else
            ev->eng->st.nonfinite++;
        break;
    }
    int64_t step = span / RATE_SUB > 0 ? span / RATE_SUB : 1;
    int newest = (e->head + RATE_RING - 1) % RATE_RING;
    if (e->n == 0 || rules__sub_sat(x->ts, e->ts[newest]) >= step) {
        e->ts[e->head] = x->ts;
        e->v[e->head] = x->value;
        e->head = (uint8_t)((e->head + 1) % RATE_RING);
        if (e->n < RATE_RING)
            e->n++;
    }
}

static void rate_drop(struct rules__slot *s)
{
    op_free(s->u.rate.ext);
    s->u.rate.ext = NULL;
}

static size_t rate_ext_bytes(const struct rules__rule *rule, const struct rules__slot *s)
{
    (void)rule;
    return s->u.rate.ext ? sizeof(struct rules__rate_ext) : 0;
}

const struct rules__kind rules__rate_kind = {
    .kind = OP_RULES_RATE,
    .init = rate_init,
    .eval = rate_eval,
    .drop = rate_drop,
    .ext_bytes = rate_ext_bytes,
};
