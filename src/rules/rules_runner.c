/*
 * rules_runner.c: runs the rule engine on committed readings, on a thread of
 * its own, so that no rule ever delays an acknowledgement. The runner
 * follows the store by the readings' seq (assigned in commit order, never
 * reused): after each group commit the writer's commit hook sets a flag and
 * signals a condition (it never blocks on the runner), the runner reads the
 * readings after its cursor through a reader connection of its own, in
 * batches of RUNNER_BATCH, evaluates them, and calls op_rules_tick every
 * second. Alert events and the cursor are written back in one
 * RULES_PROGRESS write, so after a crash the runner resumes exactly after
 * the readings whose events are stored. Memory is bounded by the batch and
 * by the pending output (rules_pending.c); a runner that falls behind reads
 * the backlog from the store's log, where compaction leaves it, up to the
 * store's limit (STORE_COMPACT_HOLD_MAX rows); past that it counts what it
 * skipped (outpost_rules_skipped_readings_total). Rules live in the store (PUT
 * /v1/rules); when the store's rules generation moves, the runner reloads
 * the rule table into the engine, which keeps the state of unchanged rules.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "outpost/err.h"
#include "outpost/rules.h"
#include "rules_int.h"

#define RUNNER_SUB "rules"
#define RUNNER_BATCH 1024
#define RUNNER_TICK_MS 1000
/* The cursor alone is persisted at most this often: a crash re-evaluates
 * at most this much (rules state is rebuilt from it, no event is repeated
 * because events commit with the cursor). */
#define RUNNER_PERSIST_MS 1000
/* With rules, the cursor is also persisted after this many readings: the
 * store's compaction leaves the readings after the persisted cursor in
 * its log (where the runner reads them), so a stale cursor grows the log. */
#define RUNNER_PERSIST_READINGS 16384
#define RUNNER_RULES_MAX 1024

struct op_rules_runner {
    struct op_store *store;
    struct op_store_reader *rd;
    struct op_rules *eng;
    struct op_rules_sink sink;
    struct op_rules_runner_opts opts;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* the commit hook, stop, and the progress write's done */
    bool wake, stop, wdone;
    /* A new set of config rules from SIGHUP, guarded by mu; taken by the
     * rules thread. owned_cfg: the set in opts that this runner owns. */
    struct op_rules_config_rule *next_cfg;
    size_t next_ncfg;
    bool has_next_cfg;
    struct op_rules_config_rule *owned_cfg;

    uint64_t rules_gen;
    int64_t cursor, persisted, persisted_at_ms, tick_at_ms;

    struct op_reading batch[RUNNER_BATCH];
    char names[RUNNER_BATCH][OP_RULES_SENSOR_MAX];
    int64_t seqs[RUNNER_BATCH];
    size_t nbatch;
    bool seen_any; /* the read delivered a row, derived ones included */
    int64_t batch_first, batch_last;

    struct rules__pending out;
    struct op_store_write w;

    struct op_rules_stats last; /* the snapshot the counters were last advanced to */
    struct op_counter *c_evals, *c_fired, *c_resolved, *c_skipped;
    _Atomic int64_t lag;
};

/* ---- the sink --------------------------------------------------------- */

static void on_alert(void *ctx, const struct op_rules_alert *a)
{
    rules__pending_alert(&((struct op_rules_runner *)ctx)->out, a);
}

static void on_derived(void *ctx, const struct op_rules_derived *d)
{
    rules__pending_derived(&((struct op_rules_runner *)ctx)->out, d);
}

static void on_important(void *ctx, size_t index, const struct op_reading *r, const char *rule)
{
    (void)rule;
    struct op_rules_runner *rr = ctx;
    if (index < rr->nbatch)
        rules__pending_mark(&rr->out, rr->seqs[index], r->ts);
}

/* ---- writing progress --------------------------------------------------- */

static void progress_done(struct op_store_write *w)
{
    struct op_rules_runner *rr = w->ctx;
    pthread_mutex_lock(&rr->mu);
    rr->wdone = true;
    pthread_cond_broadcast(&rr->cv);
    pthread_mutex_unlock(&rr->mu);
}

/* Submits rr->w and waits for its commit; returns its outcome. */
static int write_wait(struct op_rules_runner *rr)
{
    int rc;
    for (int tries = 0;; tries++) {
        rr->wdone = false;
        rc = op_store_submit(rr->store, &rr->w);
        if (rc != OP_EBUSY || tries >= 1000)
            break;
        /* The queue is full of ingest: let it drain. */
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
    if (rc != OP_OK)
        return rc;
    pthread_mutex_lock(&rr->mu);
    while (!rr->wdone)
        pthread_cond_wait(&rr->cv, &rr->mu);
    pthread_mutex_unlock(&rr->mu);
    return rr->w.rc;
}

/* Writes the pending alerts and the cursor and waits for the commit. The
 * runner's own thread waits here, never the HTTP thread or the writer. */
static int flush(struct op_rules_runner *rr, bool force)
{
    int64_t now = op_time_now_ms();
    if (rules__pending_empty(&rr->out) &&
        (rr->cursor == rr->persisted || (!force && now - rr->persisted_at_ms < RUNNER_PERSIST_MS)))
        return OP_OK;
    rr->w = (struct op_store_write){ .op = OP_STORE_RULES_PROGRESS, .cursor = rr->cursor,
                                     .done = progress_done, .ctx = rr };
    rules__pending_fill(&rr->out, &rr->w);
    int rc = write_wait(rr);
    if (rc == OP_OK) {
        rr->persisted = rr->cursor;
        rr->persisted_at_ms = now;
        if (rr->opts.publish && rr->out.nalerts > 0)
            rr->opts.publish(rr->opts.publish_ctx, rr->out.alerts, rr->out.nalerts);
    } else {
        OP_ERROR(RUNNER_SUB,
                 "cannot store %zu alert event(s), %zu derived reading(s), %zu mark(s) and the"
                 " cursor: %s",
                 rr->out.nalerts, rr->out.nderived, rr->out.nmarks, op_err_str(rc));
    }
    rules__pending_clear(&rr->out, rc == OP_OK);
    return rc;
}

/* Advances the Prometheus counters to the engine's current figures. */
static void publish(struct op_rules_runner *rr)
{
    struct op_rules_stats st;
    op_rules_stats(rr->eng, &st);
    op_counter_add(rr->c_evals, st.evaluations - rr->last.evaluations);
    op_counter_add(rr->c_fired, st.alerts_fired - rr->last.alerts_fired);
    op_counter_add(rr->c_resolved, st.alerts_resolved - rr->last.alerts_resolved);
    rr->last = st;
}

/* ---- rules from the store ------------------------------------------------ */

struct loaded {
    struct op_rules_runner *rr;
    char names[RUNNER_RULES_MAX][OP_RULES_NAME_MAX + 1];
    size_t n;
};

static int load_one(void *ctx, const struct op_rule_info *ri)
{
    struct loaded *l = ctx;
    struct op_rules_kv kv[32];
    size_t n = op_rules_kv_split(ri->text, strlen(ri->text), kv, 32);
    struct op_rules_def *def = NULL;
    struct op_diag d;
    op_diag_clear(&d);
    int rc = op_rules_def_parse(ri->name, strlen(ri->name), kv, n, &def, &d);
    if (rc == OP_OK)
        rc = op_rules_put(l->rr->eng, def, &l->rr->sink);
    if (rc != OP_OK)
        OP_ERROR(RUNNER_SUB, "rule %s not loaded: %s %s", ri->name, op_err_str(rc), d.msg);
    op_rules_def_free(def);
    if (l->n < RUNNER_RULES_MAX)
        snprintf(l->names[l->n++], sizeof l->names[0], "%s", ri->name);
    return 0;
}

struct gone {
    struct loaded *l;
    char names[RUNNER_RULES_MAX][OP_RULES_NAME_MAX + 1];
    size_t n;
};

static void find_gone(void *ctx, const struct op_rules_def *def)
{
    struct gone *g = ctx;
    const char *name = op_rules_def_name(def);
    for (size_t i = 0; i < g->l->n; i++)
        if (!strcmp(g->l->names[i], name))
            return;
    if (g->n < RUNNER_RULES_MAX)
        snprintf(g->names[g->n++], sizeof g->names[0], "%s", name);
}

/* Makes the engine's rules those of the store: equal definitions keep
 * their state, changed ones restart, removed ones resolve their alerts. */
static int reload(struct op_rules_runner *rr)
{
    struct loaded *l = op_calloc(1, sizeof(*l));
    struct gone *g = op_calloc(1, sizeof(*g));
    int rc = OP_ENOMEM;
    if (!l || !g)
        goto out;
    l->rr = rr;
    rr->rules_gen = op_store_rules_generation(rr->store); /* before the read */
    rc = op_store_list_rules(rr->rd, load_one, l);
    if (rc < 0)
        goto out;
    g->l = l;
    op_rules_each(rr->eng, find_gone, g);
    for (size_t i = 0; i < g->n; i++)
        op_rules_remove(rr->eng, g->names[i], strlen(g->names[i]), &rr->sink);
    OP_INFO(RUNNER_SUB, "%zu rule(s) loaded", l->n);
    rc = OP_OK;
out:
    op_free(l);
    op_free(g);
    return rc;
}

/* ---- rules from the config file ------------------------------------------ */

struct stored {
    struct op_rules_runner *rr;
    int rc;
};

static const struct op_rules_config_rule *config_rule(const struct op_rules_runner *rr,
                                                      const char *name)
{
    for (size_t i = 0; i < rr->opts.nconfig_rules; i++)
        if (!strcmp(rr->opts.config_rules[i].name, name))
            return &rr->opts.config_rules[i];
    return NULL;
}

static int rule_write(struct op_rules_runner *rr, enum op_store_op op, const char *name,
                      const char *text)
{
    rr->w = (struct op_store_write){ .op = op, .rule_name = name, .rule_text = text,
                                     .updated_at = op_time_now_ms(), .rule_config = true,
                                     .done = progress_done, .ctx = rr };
    int rc = write_wait(rr);
    if (rc != OP_OK)
        OP_ERROR(RUNNER_SUB, "cannot %s rule %s of the config file: %s",
                 op == OP_STORE_RULE_PUT ? "store" : "delete", name, op_err_str(rc));
    return rc;
}

/* A stored rule from the config file that the file no longer has goes. */
static int drop_stale(void *ctx, const struct op_rule_info *ri)
{
    struct stored *st = ctx;
    if (ri->from_config && !config_rule(st->rr, ri->name))
        st->rc = rule_write(st->rr, OP_STORE_RULE_DELETE, ri->name, NULL);
    return st->rc != OP_OK;
}

static int stored_text(void *ctx, const struct op_rule_info *ri)
{
    char **text = ctx;
    *text = ri->from_config ? op_strndup(ri->text, strlen(ri->text)) : NULL;
    return 0;
}

/* Makes the store's config rules those of the file; an API rule of the
 * same name is replaced (the file wins, and owns the rule from then on). */
static int config_sync(struct op_rules_runner *rr)
{
    struct stored st = { rr, OP_OK };
    int rc = op_store_list_rules(rr->rd, drop_stale, &st);
    if (rc < 0 || st.rc != OP_OK)
        return rc < 0 ? rc : st.rc;
    for (size_t i = 0; i < rr->opts.nconfig_rules; i++) {
        const struct op_rules_config_rule *c = &rr->opts.config_rules[i];
        char *text = NULL;
        rc = op_store_get_rule(rr->rd, c->name, stored_text, &text);
        if (rc < 0 && rc != OP_ENOTFOUND)
            return rc;
        bool same = text && !strcmp(text, c->text);
        op_free(text);
        if (!same && (rc = rule_write(rr, OP_STORE_RULE_PUT, c->name, c->text)) != OP_OK)
            return rc;
    }
    return OP_OK;
}

/* Firing alerts from before a restart are marked firing again, so they do
 * not fire a second time; one whose rule is gone is resolved here. */
static int seed_one(void *ctx, const struct op_store_alert *sa)
{
    struct op_rules_runner *rr = ctx;
    struct op_rules_alert a = {
        .rule = sa->rule, .sensor = sa->sensor, .sensor_len = sa->sensor_len,
        .kind = OP_RULES_THRESHOLD, .state = OP_RULES_FIRING, .severity = sa->severity,
        .value = sa->value, .score = sa->value, .threshold = sa->threshold,
        .since = sa->since, .fired_at = sa->fired_at, .ts = sa->fired_at,
    };
    if (op_rules_alert_seed(rr->eng, &a) == OP_ENOTFOUND) {
        a.state = OP_RULES_RESOLVED;
        a.cause = OP_RULES_CAUSE_RULE_REMOVED;
        a.ts = op_time_now_ms();
        for (int k = OP_RULES_THRESHOLD; k <= OP_RULES_SILENCE; k++)
            if (!strcmp(op_rules_kind_name((enum op_rules_kind)k), sa->kind))
                a.kind = (enum op_rules_kind)k;
        rules__pending_alert(&rr->out, &a);
    }
    return 0;
}

/* ---- the thread ----------------------------------------------------------- */

static int take_row(void *ctx, int64_t seq, const struct op_reading *r)
{
    struct op_rules_runner *rr = ctx;
    if (!rr->seen_any)
        rr->batch_first = seq;
    rr->seen_any = true;
    rr->batch_last = seq;
    if (!r)
        return 0; /* derived: passed, not evaluated */
    size_t i = rr->nbatch++;
    uint32_t len = r->sensor_len < OP_RULES_SENSOR_MAX ? r->sensor_len : OP_RULES_SENSOR_MAX;
    memcpy(rr->names[i], r->sensor, len);
    rr->batch[i] = (struct op_reading){ rr->names[i], len, r->ts, r->value };
    rr->seqs[i] = seq;
    return 0;
}

/* Evaluates everything committed after the cursor, a batch at a time.
 * With no rules there is nothing to evaluate: the cursor jumps to the
 * newest reading without reading anything back (rules apply from the
 * moment they are added), so a node without rules pays nothing here. */
static void catch_up(struct op_rules_runner *rr)
{
    int64_t seq, cursor;
    if (op_rules_count(rr->eng) == 0) {
        if (op_store_rules_marks(rr->rd, &seq, &cursor) == OP_OK && seq > rr->cursor)
            rr->cursor = seq;
        atomic_store(&rr->lag, 0);
        return;
    }
    for (;;) {
        rr->nbatch = 0;
        rr->seen_any = false;
        int n = op_store_read_since(rr->rd, rr->cursor, RUNNER_BATCH, take_row, rr);
        if (n <= 0)
            break;
        /* Seqs are contiguous: a gap is readings the store compacted away
         * before the rules saw them (a runner stalled past the store's
         * hold limit). They are counted, not silently passed over. */
        if (rr->batch_first > rr->cursor + 1) {
            int64_t gap = rr->batch_first - rr->cursor - 1;
            OP_WARN(RUNNER_SUB, "%lld reading(s) left the log before the rules saw them",
                    (long long)gap);
            op_counter_add(rr->c_skipped, (uint64_t)gap);
        }
        op_rules_eval(rr->eng, rr->batch, rr->nbatch, &rr->sink);
        rr->cursor = rr->batch_last;
        /* Keep the pending output bounded: write it before a buffer can
         * overflow on the next batch. */
        if (rules__pending_half_full(&rr->out))
            flush(rr, true);
        if (n < RUNNER_BATCH)
            break;
    }
    if (rr->cursor - rr->persisted >= RUNNER_PERSIST_READINGS)
        flush(rr, true);
    if (op_store_rules_marks(rr->rd, &seq, &cursor) == OP_OK)
        atomic_store(&rr->lag, seq > rr->cursor ? seq - rr->cursor : 0);
}

/* The rules thread takes a SIGHUP's config rules: the store is made to
 * match them as at start; the generation then moves and the next reload
 * puts them into the engine. */
static void apply_config(struct op_rules_runner *rr, struct op_rules_config_rule *cfg, size_t n)
{
    struct op_rules_config_rule *old = rr->owned_cfg;
    size_t nold = rr->opts.nconfig_rules;
    rr->opts.config_rules = cfg;
    rr->opts.nconfig_rules = n;
    rr->owned_cfg = cfg;
    int rc = config_sync(rr);
    if (rc == OP_OK)
        OP_INFO(RUNNER_SUB, "%zu rule(s) from the config file applied", n);
    else
        OP_ERROR(RUNNER_SUB, "config rules not fully applied: %s", op_err_str(rc));
    if (old)
        op_rules_config_free(old, nold);
}

static void *runner_main(void *arg)
{
    struct op_rules_runner *rr = arg;
    for (;;) {
        pthread_mutex_lock(&rr->mu);
        if (!rr->wake && !rr->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&rr->cv, &rr->mu, &ts);
        }
        bool stop = rr->stop;
        rr->wake = false;
        struct op_rules_config_rule *cfg = NULL;
        size_t ncfg = 0;
        bool recfg = rr->has_next_cfg;
        if (recfg) {
            cfg = rr->next_cfg;
            ncfg = rr->next_ncfg;
            rr->next_cfg = NULL;
            rr->has_next_cfg = false;
        }
        pthread_mutex_unlock(&rr->mu);
        if (recfg)
            apply_config(rr, cfg, ncfg);

        if (op_store_rules_generation(rr->store) != rr->rules_gen)
            reload(rr);
        catch_up(rr);
        int64_t now = op_time_now_ms();
        if (now - rr->tick_at_ms >= RUNNER_TICK_MS) {
            op_rules_tick(rr->eng, now, &rr->sink);
            rr->tick_at_ms = now;
        }
        flush(rr, stop);
        publish(rr);
        if (stop)
            break;
    }
    return NULL;
}

static void on_commit(void *ctx, int64_t readings)
{
    (void)readings;
    struct op_rules_runner *rr = ctx;
    pthread_mutex_lock(&rr->mu);
    rr->wake = true;
    pthread_cond_signal(&rr->cv);
    pthread_mutex_unlock(&rr->mu);
}

static double lag_gauge(void *ctx)
{
    return (double)atomic_load(&((struct op_rules_runner *)ctx)->lag);
}

int op_rules_runner_start(struct op_rules_runner **out, struct op_store *store,
                          const struct op_rules_runner_opts *opts)
{
    *out = NULL;
    struct op_rules_runner *rr = op_calloc(1, sizeof(*rr));
    if (!rr)
        return OP_ENOMEM;
    rr->store = store;
    if (opts)
        rr->opts = *opts;
    rr->sink = (struct op_rules_sink){ .alert = on_alert, .derived = on_derived,
                                       .important = on_important, .ctx = rr };
    pthread_mutex_init(&rr->mu, NULL);
    pthread_cond_init(&rr->cv, NULL);
    rr->c_evals = op_metrics_counter("outpost_rules_evaluations_total", NULL,
                                     "(reading, rule) pairs evaluated");
    rr->c_fired = op_metrics_counter("outpost_rules_alerts_total", "state=\"firing\"",
                                     "alert events by state");
    rr->c_resolved = op_metrics_counter("outpost_rules_alerts_total", "state=\"resolved\"",
                                        "alert events by state");
    rules__pending_init(
        &rr->out,
        op_metrics_counter("outpost_rules_alerts_dropped_total", NULL,
                           "alert events that could not be stored"),
        op_metrics_counter("outpost_rules_derived_dropped_total", NULL,
                           "derived readings not stored (the store failed)"),
        op_metrics_counter("outpost_rules_marks_dropped_total", NULL,
                           "important marks that could not be stored"));
    rr->c_skipped = op_metrics_counter("outpost_rules_skipped_readings_total", NULL,
                                       "committed readings the rules never evaluated because"
                                       " the runner fell too far behind");
    op_metrics_gauge("outpost_rules_lag_readings", NULL,
                     "committed readings the rules have not evaluated yet", lag_gauge, rr);

    int rc = op_store_reader_open(store, &rr->rd);
    if (rc == OP_OK)
        rc = config_sync(rr);
    if (rc == OP_OK)
        rc = op_rules_create(&rr->eng, NULL);
    if (rc == OP_OK)
        rc = reload(rr);
    int64_t seq = 0, cursor = -1, replayed = 0;
    if (rc == OP_OK)
        rc = op_store_rules_marks(rr->rd, &seq, &cursor);
    /* A first start does not evaluate the history: rules begin with the
     * readings committed from now on. A restart rebuilds the state the
     * readings up to the cursor left, then seeds the alerts still firing. */
    if (rc == OP_OK && cursor >= 0)
        rc = rules__replay(rr->eng, rr->rd, cursor, &replayed);
    if (rc == OP_OK) {
        rc = op_store_firing_alerts(rr->rd, seed_one, rr);
        rc = rc < 0 ? rc : OP_OK;
    }
    if (rc != OP_OK)
        goto fail;
    if (replayed > 0)
        OP_INFO(RUNNER_SUB, "rule state rebuilt from %lld stored reading(s)", (long long)replayed);
    rr->cursor = cursor >= 0 ? cursor : seq;
    rr->persisted = cursor;
    rr->tick_at_ms = op_time_now_ms();
    if ((rc = flush(rr, true)) != OP_OK)
        goto fail;
    op_rules_stats(rr->eng, &rr->last);
    op_store_set_commit_hook(store, on_commit, rr);
    if (pthread_create(&rr->thread, NULL, runner_main, rr) != 0) {
        op_store_set_commit_hook(store, NULL, NULL);
        rc = OP_ENOMEM;
        goto fail;
    }
    rr->started = true;
    rr->wake = true; /* catch up with what was committed while down */
    OP_INFO(RUNNER_SUB, "runner started at seq %lld (newest %lld)", (long long)rr->cursor,
            (long long)seq);
    *out = rr;
    return OP_OK;
fail:
    OP_ERROR(RUNNER_SUB, "cannot start the rules runner: %s", op_err_str(rc));
    op_rules_runner_stop(rr);
    return rc;
}

int op_rules_runner_reconfig(struct op_rules_runner *rr, const struct op_rules_config_rule *rules,
                             size_t n)
{
    struct op_rules_config_rule *copy = op_calloc(n ? n : 1, sizeof(*copy));
    if (!copy)
        return OP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = rules[i];
        if (!(copy[i].text = op_strndup(rules[i].text, strlen(rules[i].text)))) {
            op_rules_config_free(copy, i);
            return OP_ENOMEM;
        }
    }
    pthread_mutex_lock(&rr->mu);
    if (rr->has_next_cfg)
        op_rules_config_free(rr->next_cfg, rr->next_ncfg);
    rr->next_cfg = copy;
    rr->next_ncfg = n;
    rr->has_next_cfg = true;
    rr->wake = true;
    pthread_cond_signal(&rr->cv);
    pthread_mutex_unlock(&rr->mu);
    return OP_OK;
}

void op_rules_runner_stop(struct op_rules_runner *rr)
{
    if (!rr)
        return;
    if (rr->started) {
        op_store_set_commit_hook(rr->store, NULL, NULL);
        pthread_mutex_lock(&rr->mu);
        rr->stop = true;
        pthread_cond_signal(&rr->cv);
        pthread_mutex_unlock(&rr->mu);
        pthread_join(rr->thread, NULL);
    }
    rules__pending_clear(&rr->out, true);
    if (rr->has_next_cfg)
        op_rules_config_free(rr->next_cfg, rr->next_ncfg);
    if (rr->owned_cfg)
        op_rules_config_free(rr->owned_cfg, rr->opts.nconfig_rules);
    op_rules_destroy(rr->eng);
    op_store_reader_close(rr->rd);
    pthread_mutex_destroy(&rr->mu);
    pthread_cond_destroy(&rr->cv);
    op_free(rr);
}

size_t op_rules_kv_split(const char *text, size_t len, struct op_rules_kv *kv, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len && n < max) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        const char *eq = memchr(text + i, '=', j - i);
        if (eq) {
            kv[n].key = (struct op_str){ text + i, (size_t)(eq - (text + i)) };
            kv[n].value = (struct op_str){ eq + 1, (size_t)(text + j - (eq + 1)) };
            n++;
        }
        i = j + 1;
    }
    return n;
}
