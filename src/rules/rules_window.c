/*
 * Window rules: tumbling windows [k*window, (k+1)*window) aligned to the
 * Unix epoch, one open window per (rule, sensor). A reading exactly at a
 * boundary belongs to the window it starts. A window closes when a reading
 * at or after its end arrives, or when op_rules_tick's now passes its end
 * plus grace; it then emits one derived reading per fn (stamped with the
 * window's start) and evaluates alert_on on the aggregate. Empty windows
 * emit nothing.
 *
 * The accumulator is constant-size and division-free per reading: count,
 * sum, min, max, first, last, and the sums of (x - first) and its square,
 * from which avg and the population stddev are computed at close without
 * the cancellation of a plain sum of squares. Aggregates outside the
 * double range (a sum near 1.8e308) are counted and not emitted.
 */
#include <math.h>
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

/* floor(ts / w) * w without overflow near INT64_MIN. */
static int64_t align_down(int64_t ts, int64_t w)
{
    int64_t q = ts / w;
    if (ts % w < 0)
        q--;
    int64_t start;
    if (__builtin_mul_overflow(q, w, &start))
        return ts;
    return start;
}

static int64_t window_end(const struct rules__rule *rule, const struct rules__slot *s)
{
    return rules__add_sat(s->u.win.start, rule->def.window_ms);
}

static void window_init(const struct rules__rule *rule, struct rules__slot *s)
{
    (void)rule;
    (void)s;
}

void rules__window_close(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_rules_def *d = &rule->def;
    double n = (double)s->n, agg[RULES__FN_N];
    agg[RULES__FN_COUNT] = n;
    agg[RULES__FN_MIN] = s->u.win.min;
    agg[RULES__FN_MAX] = s->u.win.max;
    agg[RULES__FN_SUM] = s->u.win.sum;
    agg[RULES__FN_FIRST] = s->u.win.first;
    agg[RULES__FN_LAST] = s->u.win.last;
    agg[RULES__FN_AVG] = s->u.win.first + s->u.win.sum_d / n;
    double var = (s->u.win.sum_d2 - s->u.win.sum_d * (s->u.win.sum_d / n)) / n;
    /* Rounding can make var slightly negative; NaN (overflow) stays NaN. */
    agg[RULES__FN_STDDEV] = var > 0 ? sqrt(var) : isnan(var) ? var : 0.0;
    s->n = 0;

    if (d->fns) {
        char name[OP_RULES_DERIVED_MAX + 1];
        size_t base = ev->sensor->len;
        bool fits = base + 32 <= OP_RULES_DERIVED_MAX;
        if (fits)
            memcpy(name, ev->sensor->name, base);
        for (int f = 0; f < RULES__FN_N; f++) {
            if (!(d->fns & (1u << f)))
                continue;
            if (!fits) {
                ev->eng->st.derived_dropped++;
                continue;
            }
            if (!isfinite(agg[f])) {
                ev->eng->st.nonfinite++;
                continue;
            }
            memcpy(name + base, rule->suffix[f], rule->suffix_len[f]);
            ev->eng->st.derived++;
            if (!ev->sink || !ev->sink->derived)
                continue;
            struct op_rules_derived out = {
                .rule = d->name,
                .r = { .sensor = name,
                       .sensor_len = (uint32_t)(base + rule->suffix_len[f]),
                       .ts = s->u.win.start,
                       .value = agg[f] },
                .important = d->important,
            };
            ev->sink->derived(ev->sink->ctx, &out);
        }
    }
    if (d->has_alert) {
        double v = agg[d->alert_fn];
        /* The condition began at the window's start and is known at its
         * end, so `for = 2m` over 1m windows fires after two windows. */
        if (isfinite(v))
            rules__level_eval(ev, rule, s, v, v, s->u.win.start, window_end(rule, s));
        else
            ev->eng->st.nonfinite++;
    }
}

/* A reading older than the open window's start, or inside a window that
 * has already closed, is late: counted and ignored (its window's
 * aggregates were emitted already). */
static void window_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_reading *x = ev->r;
    if (s->n) {
        if (x->ts < s->u.win.start) {
            ev->eng->st.late++;
            return;
        }
        if (x->ts >= window_end(rule, s))
            rules__window_close(ev, rule, s);
    } else if ((s->flags & RULES__F_HISTORY) && x->ts < window_end(rule, s)) {
        ev->eng->st.late++;
        return;
    }
    double v = x->value;
    if (!s->n) {
        s->u.win.start = align_down(x->ts, rule->def.window_ms);
        s->u.win.sum = s->u.win.min = s->u.win.max = s->u.win.first = s->u.win.last = v;
        s->u.win.sum_d = s->u.win.sum_d2 = 0;
        s->n = 1;
        s->flags |= RULES__F_HISTORY;
        return;
    }
    double dv = v - s->u.win.first;
    if (s->n < UINT32_MAX)
        s->n++;
    s->u.win.sum += v;
    s->u.win.sum_d += dv;
    s->u.win.sum_d2 += dv * dv;
    if (v < s->u.win.min)
        s->u.win.min = v;
    if (v > s->u.win.max)
        s->u.win.max = v;
    s->u.win.last = v;
}

static void window_tick(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s,
                        int64_t now_ms)
{
    if (s->n && now_ms >= rules__add_sat(window_end(rule, s), rule->def.grace_ms))
        rules__window_close(ev, rule, s);
}

const struct rules__kind rules__window_kind = {
    .kind = OP_RULES_WINDOW,
    .init = window_init,
    .eval = window_eval,
    .tick = window_tick,
};
