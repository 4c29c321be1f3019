/*
 * The Prometheus registry: families of series registered at start-up under
 * a lock, updated with lock-free atomics from any thread, rendered in the
 * text exposition format at scrape time. Registering an existing
 * name+labels returns the existing series, so a component that is closed
 * and reopened (the store in tests, a reload) keeps its counters.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "outpost/core.h"
#include "outpost/err.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct op_counter {
    _Atomic uint64_t v;
};

struct op_histogram {
    int n;
    double *bounds;
    _Atomic uint64_t *buckets; /* n + 1, the last is +Inf; not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits; /* a double, updated by compare-and-swap */
};

struct series {
    char *labels;
    struct op_counter counter;
    struct op_histogram hist;
    op_gauge_fn *gauge_fn;
    void *gauge_ctx;
    struct series *next;
};

struct family {
    char *name;
    char *help;
    enum mtype type;
    struct series *head, *tail;
    struct family *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families, *families_tail;

static struct family *family_get(const char *name, const char *help, enum mtype type)
{
    for (struct family *f = families; f; f = f->next)
        if (!strcmp(f->name, name))
            return f->type == type ? f : NULL;
    struct family *f = op_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->name = op_strndup(name, strlen(name));
    f->help = op_strndup(help, strlen(help));
    if (!f->name || !f->help) {
        op_free(f->name);
        op_free(f->help);
        op_free(f);
        return NULL;
    }
    f->type = type;
    if (families_tail)
        families_tail->next = f;
    else
        families = f;
    families_tail = f;
    return f;
}

/* Returns the series name{labels}, creating it; *created says which. */
static struct series *series_get(const char *name, const char *labels, const char *help,
                                 enum mtype type, bool *created)
{
    const char *l = labels ? labels : "";
    *created = false;
    struct family *f = family_get(name, help, type);
    if (!f)
        return NULL;
    for (struct series *s = f->head; s; s = s->next)
        if (!strcmp(s->labels, l))
            return s;
    struct series *s = op_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->labels = op_strndup(l, strlen(l));
    if (!s->labels) {
        op_free(s);
        return NULL;
    }
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    *created = true;
    return s;
}

struct op_counter *op_metrics_counter(const char *name, const char *labels, const char *help)
{
    bool created;
    pthread_mutex_lock(&reg_lock);
    struct series *s = series_get(name, labels, help, M_COUNTER, &created);
    pthread_mutex_unlock(&reg_lock);
    return s ? &s->counter : NULL;
}

void op_counter_add(struct op_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t op_counter_get(const struct op_counter *c)
{
    return c ? atomic_load_explicit(&c->v, memory_order_relaxed) : 0;
}

struct op_histogram *op_metrics_histogram(const char *name, const char *labels, const char *help,
                                          const double *bounds, int nbounds)
{
    bool created;
    pthread_mutex_lock(&reg_lock);
    struct series *s = series_get(name, labels, help, M_HISTOGRAM, &created);
    struct op_histogram *h = s ? &s->hist : NULL;
    if (h && created) {
        h->bounds = op_malloc(sizeof(double) * (size_t)nbounds);
        h->buckets = op_calloc((size_t)nbounds + 1, sizeof(_Atomic uint64_t));
        if (!h->bounds || !h->buckets) {
            /* Leave it usable as an empty histogram: observe checks n. */
            op_free(h->bounds);
            op_free((void *)h->buckets);
            h->bounds = NULL;
            h->buckets = NULL;
        } else {
            memcpy(h->bounds, bounds, sizeof(double) * (size_t)nbounds);
            h->n = nbounds;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return h;
}

void op_histogram_observe(struct op_histogram *h, double v)
{
    if (!h || !h->buckets)
        return;
    int i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed), next;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += v;
        memcpy(&next, &d, sizeof d);
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, next,
                                                    memory_order_relaxed, memory_order_relaxed));
}

int op_metrics_gauge(const char *name, const char *labels, const char *help, op_gauge_fn *fn,
                     void *ctx)
{
    bool created;
    pthread_mutex_lock(&reg_lock);
    struct series *s = series_get(name, labels, help, M_GAUGE, &created);
    if (s) {
        s->gauge_fn = fn;
        s->gauge_ctx = ctx;
    }
    pthread_mutex_unlock(&reg_lock);
    return s ? OP_OK : OP_ENOMEM;
}

static int fmt_value(struct op_buf *out, double v)
{
    char num[32];
    if (isnan(v))
        return op_buf_appends(out, "NaN");
    if (isinf(v))
        return op_buf_appends(out, v > 0 ? "+Inf" : "-Inf");
    op_fmt_double(num, v);
    return op_buf_appends(out, num);
}

/* name{labels,extra} — joins the series labels and an extra label. */
static int put_name(struct op_buf *out, const char *name, const char *suffix, const char *labels,
                    const char *extra)
{
    int rc = op_buf_appendf(out, "%s%s", name, suffix);
    bool l = labels[0] != '\0', e = extra && extra[0];
    if (!rc && (l || e))
        rc = op_buf_appendf(out, "{%s%s%s}", labels, l && e ? "," : "", e ? extra : "");
    return rc ? rc : op_buf_append(out, " ", 1);
}

static int render_histogram(struct op_buf *out, const struct family *f, struct series *s)
{
    struct op_histogram *h = &s->hist;
    uint64_t cum = 0;
    int rc = OP_OK;
    char le[48];
    for (int i = 0; i <= h->n && !rc; i++) {
        cum += h->buckets ? atomic_load(&h->buckets[i]) : 0;
        if (i < h->n) {
            char num[32];
            op_fmt_double(num, h->bounds[i]);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        rc = put_name(out, f->name, "_bucket", s->labels, le);
        if (!rc)
            rc = op_buf_appendf(out, "%llu\n", (unsigned long long)cum);
    }
    uint64_t bits = atomic_load(&h->sum_bits);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    if (!rc)
        rc = put_name(out, f->name, "_sum", s->labels, NULL);
    if (!rc)
        rc = fmt_value(out, sum);
    if (!rc)
        rc = op_buf_append(out, "\n", 1);
    if (!rc)
        rc = put_name(out, f->name, "_count", s->labels, NULL);
    if (!rc)
        rc = op_buf_appendf(out, "%llu\n", (unsigned long long)cum);
    return rc;
}

int op_metrics_render(struct op_buf *out)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    int rc = OP_OK;
    pthread_mutex_lock(&reg_lock);
    for (struct family *f = families; f && !rc; f = f->next) {
        rc = op_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                            type_names[f->type]);
        for (struct series *s = f->head; s && !rc; s = s->next) {
            if (f->type == M_HISTOGRAM) {
                rc = render_histogram(out, f, s);
                continue;
            }
            rc = put_name(out, f->name, "", s->labels, NULL);
            if (rc)
                break;
            if (f->type == M_COUNTER)
                rc = op_buf_appendf(out, "%llu", (unsigned long long)op_counter_get(&s->counter));
            else
                rc = fmt_value(out, s->gauge_fn ? s->gauge_fn(s->gauge_ctx) : 0.0);
            if (!rc)
                rc = op_buf_append(out, "\n", 1);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void op_metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    struct family *f = families;
    while (f) {
        struct family *fn = f->next;
        struct series *s = f->head;
        while (s) {
            struct series *sn = s->next;
            op_free(s->labels);
            op_free(s->hist.bounds);
            op_free((void *)s->hist.buckets);
            op_free(s);
            s = sn;
        }
        op_free(f->name);
        op_free(f->help);
        op_free(f);
        f = fn;
    }
    families = families_tail = NULL;
    pthread_mutex_unlock(&reg_lock);
}
