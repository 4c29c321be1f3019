/* The rules unit tests' shared helpers (see test_rules_common.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/err.h"
#include "test_rules_common.h"

int tr_parse(const char *name, const char *const *pairs, struct op_rules_def **def,
             struct op_diag *d)
{
    struct op_rules_kv kv[TR_MAX_PAIRS];
    size_t n = 0;
    for (; pairs[n]; n++) {
        assert_true(n < TR_MAX_PAIRS);
        const char *eq = strchr(pairs[n], '=');
        assert_non_null(eq);
        kv[n].key = (struct op_str){ pairs[n], (size_t)(eq - pairs[n]) };
        kv[n].value = (struct op_str){ eq + 1, strlen(eq + 1) };
   }
    return op_rules_def_parse(name, strlen(name), kv, n, def, d);
}

struct op_rules_def *tr_def(const char *name, const char *const *pairs)
{
    struct op_rules_def *def;
    struct op_diag d;
    op_diag_clear(&d);
    int rc = tr_parse(name, pairs, &def, &d);
    if (rc != OP_OK)
        fail_msg("rule %s: %s: %s", name, d.field, d.msg);
    return def;
}

struct op_rules *tr_engine(const char *name, const char *const *pairs)
{
    struct op_rules *eng;
    assert_int_equal(op_rules_create(&eng, NULL), OP_OK);
    struct op_rules_def *def = tr_def(name, pairs);
    assert_int_equal(op_rules_put(eng, def, NULL), OP_OK);
    op_rules_def_free(def);
    return eng;
}

static void on_alert(void *ctx, const struct op_rules_alert *a)
{
    struct tr_log *l = ctx;
    char v[32], s[32], t[32], score[40] = "";
    op_fmt_double(v, a->value);
    op_fmt_double(t, a->threshold);
    if (a->kind == OP_RULES_ANOMALY) {
        op_fmt_double(s, a->score);
        snprintf(score, sizeof score, " s=%s", s);
   }
    const char *what = a->state == OP_RULES_FIRING ? "F" : "R";
    const char *cause = a->cause == OP_RULES_CAUSE_CLEARED ? "" : op_rules_cause_name(a->cause);
    op_buf_appendf(&l->buf, "%s%s%s %s %.*s v=%s%s thr=%s since=%lld at=%lld\n", what,
                   *cause ? ":" : "", cause, a->rule, (int)a->sensor_len, a->sensor, v, score, t,
                   (long long)a->since, (long long)a->ts);
    l->alerts++;
    if (a->state == OP_RULES_FIRING)
        l->fired++;
    else
        l->resolved++;
}

static void on_derived(void *ctx, const struct op_rules_derived *d)
{
    struct tr_log *l = ctx;
    char v[32];
    op_fmt_double(v, d->r.value);
    op_buf_appendf(&l->buf, "D %.*s %lld %s%s\n", (int)d->r.sensor_len, d->r.sensor,
                   (long long)d->r.ts, v, d->important ? " !" : "");
    l->derived++;
}

static void on_important(void *ctx, size_t index, const struct op_reading *r, const char *rule)
{
    struct tr_log *l = ctx;
    (void)r;
    l->important++;
    if (l->with_important)
        op_buf_appendf(&l->buf, "I %zu %s\n", index, rule);
}

void tr_log_init(struct tr_log *l)
{
    memset(l, 0, sizeof *l);
    op_buf_init(&l->buf, 1 << 24);
}

const char *tr_text(const struct tr_log *l)
{
    return l->buf.data ? l->buf.data : "";
}

void tr_log_fini(struct tr_log *l)
{
    op_buf_fini(&l->buf);
}

struct op_rules_sink tr_sink(struct tr_log *l)
{
    return (struct op_rules_sink){ on_alert, on_derived, on_important, l };
}

struct op_reading tr_reading(const char *sensor, int64_t ts, double value)
{
    return (struct op_reading){ sensor, (uint32_t)strlen(sensor), ts, value };
}

void tr_run(struct op_rules *eng, const struct tr_step *steps, size_t n, struct tr_log *l)
{
    struct op_rules_sink sink = tr_sink(l);
    for (size_t i = 0; i < n; i++) {
        if (!steps[i].sensor) {
            assert_int_equal(op_rules_tick(eng, steps[i].ts, &sink), OP_OK);
            continue;
       }
        struct op_reading r = tr_reading(steps[i].sensor, steps[i].ts, steps[i].value);
        assert_int_equal(op_rules_eval(eng, &r, 1, &sink), OP_OK);
   }
}

struct op_rules *tr_case(const char *const *pairs, const struct tr_step *steps, size_t n,
                         const char *want, size_t i, const char *what)
{
    struct op_rules *eng = tr_engine("t", pairs);
    struct tr_log log;
    tr_log_init(&log);
    tr_run(eng, steps, n, &log);
    if (strcmp(tr_text(&log), want) != 0)
        fail_msg("case %zu (%s):\n--- got\n%s--- want\n%s", i, what, tr_text(&log), want);
    tr_log_fini(&log);
    return eng;
}
