/*
 * Anomaly rules: streaming detectors that score each reading against what
 * the sensor did before, then run the shared alert lifecycle on the score.
 *
 * - ewma: exponentially weighted mean and variance (alpha); score z = (x -
 *   mean) / sd. A reading scored beyond z is learned clipped to mean +- z
 *   sd, so one spike does not inflate the variance and hide the next one,
 *   while a lasting level shift is still followed within a few readings
 *   (each clipped step widens the variance).
 * - mad: median and median absolute deviation of the last `samples`
 *   readings, kept in a ring and a sorted copy (O(samples) per reading, no
 *   sort); score z = (x - median) / (1.4826 MAD), 1.4826 making MAD a
 *   consistent estimate of the standard deviation for normal noise.
 *
 * Both score a reading before learning it, and learn only: the first
 * `warmup` readings of a sensor train without being scored. sd is floored at
 * min_sd so that a series that has been constant does not flag its first
 * change of one quantisation step. Readings older than the newest one seen
 * by the rule for that sensor are ignored (counted), since both detectors
 * are sequential.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "outpost/err.h"
#include "rules_int.h"

#define MAD_SCALE 1.4826

struct rules__mad_ext {
    uint32_t cap, n, head; /* ring: data[0..cap); sorted copy: data[cap..cap+n) */
    double data[];
};

static void anomaly_init(const struct rules__rule *rule, struct rules__slot *s)
{
    (void)rule;
    s->u.anom.last_ts = INT64_MIN;
}

static double score(double dev, double sd, double min_sd)
{
    double floor_sd = min_sd > DBL_MIN ? min_sd : DBL_MIN;
    double z = dev / (sd > floor_sd ? sd : floor_sd);
    return isfinite(z) ? z : copysign(DBL_MAX, dev);
}

static void ewma_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_rules_def *d = &rule->def;
    double x = ev->r->value;
    if (s->n == 0) {
        s->u.anom.mean = x;
        s->u.anom.var = 0;
        s->n = 1;
        return;
    }
    double sd = sqrt(s->u.anom.var), dev = x - s->u.anom.mean;
    double z = score(dev, sd, d->min_sd);
    bool scored = s->n >= (uint64_t)d->warmup;
    if (scored)
        rules__level_eval(ev, rule, s, x, z, ev->r->ts, ev->r->ts);
    if (scored && fabs(z) > d->z) {
        double sd_eff = sd > d->min_sd ? sd : d->min_sd;
        x = s->u.anom.mean + copysign(d->z * sd_eff, dev);
    }
    /* West's incremental form of the exponentially weighted variance. */
    double diff = x - s->u.anom.mean, incr = d->alpha * diff;
    double mean = s->u.anom.mean + incr;
    double var = (1 - d->alpha) * (s->u.anom.var + diff * incr);
    if (isfinite(mean) && isfinite(var)) {
        s->u.anom.mean = mean;
        s->u.anom.var = var;
    } else {
        ev->eng->st.nonfinite++;
    }
    if (s->n < UINT32_MAX)
        s->n++;
}

/* First index in a[0..n) whose value is >= v. */
static uint32_t lower_bound(const double *a, uint32_t n, double v)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The k-th (0-based) smallest |a[i] - m| of sorted a[0..n): the deviations
 * grow outwards from m on both sides, so a merge of the two runs finds it in
 * O(k). */
static double kth_deviation(const double *a, uint32_t n, double m, uint32_t k)
{
    uint32_t r = lower_bound(a, n, m);
    int64_t l = (int64_t)r - 1;
    double dev = 0;
    for (uint32_t i = 0; i <= k; i++) {
        double dl = l >= 0 ? m - a[l] : INFINITY;
        double dr = r < n ? a[r] - m : INFINITY;
        if (dl <= dr) {
            dev = dl;
            l--;
        } else {
            dev = dr;
            r++;
        }
    }
    return dev;
}

static void mad_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    const struct op_rules_def *d = &rule->def;
    struct rules__mad_ext *e = s->u.anom.ext;
    if (!e) {
        uint32_t cap = (uint32_t)d->samples;
        e = op_malloc(sizeof *e + 2 * (size_t)cap * sizeof(double));
        if (!e) {
            ev->eng->st.alloc_failures++;
            return; /* tried again at the next reading */
        }
        e->cap = cap;
        e->n = e->head = 0;
        s->u.anom.ext = e;
    }
    double *ring = e->data, *sorted = e->data + e->cap;
    double x = ev->r->value;
    if (s->n >= (uint64_t)d->warmup && e->n >= 3) {
        uint32_t n = e->n;
        double med, mad;
        if (n % 2) {
            med = sorted[n / 2];
            mad = kth_deviation(sorted, n, med, n / 2);
        } else {
            med = sorted[n / 2 - 1] / 2 + sorted[n / 2] / 2;
            mad = kth_deviation(sorted, n, med, n / 2 - 1) / 2 +
                  kth_deviation(sorted, n, med, n / 2) / 2;
        }
        /* Quantised readings (2-decimal temperatures) make MAD 0 whenever
         * most of the window holds one value; the scale is then floored at
         * the data's resolution, the smallest gap between distinct values. */
        double q = INFINITY;
        for (uint32_t i = 1; i < n; i++)
            if (sorted[i] > sorted[i - 1] && sorted[i] - sorted[i - 1] < q)
                q = sorted[i] - sorted[i - 1];
        double sd = MAD_SCALE * mad;
        if (isfinite(q) && sd < q)
            sd = q;
        double z = score(x - med, sd, d->min_sd);
        rules__level_eval(ev, rule, s, x, z, ev->r->ts, ev->r->ts);
    }
    /* Learn: evict the oldest when full, insert x in order. */
    if (e->n == e->cap) {
        double old = ring[e->head];
        uint32_t i = lower_bound(sorted, e->n, old);
        memmove(sorted + i, sorted + i + 1, (e->n - i - 1) * sizeof(double));
        e->n--;
    }
    ring[e->head] = x;
    e->head = (e->head + 1) % e->cap;
    uint32_t i = lower_bound(sorted, e->n, x);
    memmove(sorted + i + 1, sorted + i, (e->n - i) * sizeof(double));
    sorted[i] = x;
    e->n++;
    if (s->n < UINT32_MAX)
        s->n++;
}

static void anomaly_eval(struct rules__ev *ev, struct rules__rule *rule, struct rules__slot *s)
{
    if (ev->r->ts < s->u.anom.last_ts) {
        ev->eng->st.ignored++;
        return;
    }
    s->u.anom.last_ts = ev->r->ts;
    if (rule->def.method == RULES__MAD)
        mad_eval(ev, rule, s);
    else
        ewma_eval(ev, rule, s);
}

static void anomaly_drop(struct rules__slot *s)
{
    op_free(s->u.anom.ext);
    s->u.anom.ext = NULL;
}

static size_t anomaly_ext_bytes(const struct rules__rule *rule, const struct rules__slot *s)
{
    return s->u.anom.ext ? sizeof(struct rules__mad_ext) + 2 * (size_t)rule->def.samples * 8 : 0;
}

const struct rules__kind rules__anomaly_kind = {
    .kind = OP_RULES_ANOMALY,
    .init = anomaly_init,
    .eval = anomaly_eval,
    .drop = anomaly_drop,
    .ext_bytes = anomaly_ext_bytes,
};
