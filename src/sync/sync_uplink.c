/*
 * sync_uplink.c: one thread per uplink, the store-and-forward loop.
 *
 *   cursor (store) -> outbox records after it -> decode -> filter (sensors,
 *   important marks, downsampling) -> batch (per sensor) -> encode (codec,
 *   zstd, seal) -> POST -> 2xx: UPLINK_ACK(the batch's positions, batch
 *   number), which commits while the next batches are built and sent
 *   (sync_ack.c).
 *
 * Effectively once: the cursor moves only after the receiver acknowledged,
 * so a crash or an outage resends from the cursor; every reading carries its
 * position (the seq here), and the receiver stores only positions it has
 * not stored for this (node, uplink), so a resent batch, even one rebuilt
 * with other boundaries after a restart, adds nothing twice. Per-sensor
 * order holds because positions grow in commit order, except for what
 * priorities send ahead of the cursor (sync_priority.c), which is settled
 * as ranges above it.
 *
 * Failures: 5xx, 408, 425, 429, 401/403 (an operator can fix those) and
 * transport errors are retried with exponential backoff and full jitter,
 * capped, honouring Retry-After, for as long as it takes: the data waits in
 * the outbox, within retention. Other 4xx answers mean this batch will never
 * be taken: it goes to the dead letters with the answer, and the uplink
 * moves on; but a batch sent ahead of the cursor that is refused so turns
 * priorities off (a receiver that predates them) and goes again in order.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "outpost/err.h"
#include "sync_uplink_int.h"

/* ---- waiting ---------------------------------------------------------- */

bool sync__nap(struct op_sync *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&s->mu);
    return !atomic_load(&s->stop);
}

/* ---- filters ---------------------------------------------------------- */

static void patterns_parse(struct uplink *u)
{
    const char *p = u->cfg.sensors;
    while (*p && u->npat < UPLINK_PATTERNS_MAX) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n && n <= OP_STORE_SENSOR_MAX) {
            memcpy(u->pat[u->npat], p, n);
            u->pat[u->npat++][n] = '\0';
        }
        p += strcspn(p, ",");
    }
}

bool sync__uplink_selected(const struct uplink *u, const char *name, uint32_t len)
{
    if (u->npat == 0)
        return true;
    char buf[OP_STORE_SENSOR_MAX + 1];
    memcpy(buf, name, len);
    buf[len] = '\0';
    for (size_t i = 0; i < u->npat; i++)
        if (fnmatch(u->pat[i], buf, 0) == 0)
            return true;
    return false;
}

/* Keeps the first reading of each sensor in each downsample step. A step
 * already sent is not sent again after a restart only if the receiver had
 * it: the state is in memory, so a restart may send one more per sensor.
 * Every build starts again from the last batch the receiver took (a
 * partial batch is rebuilt while it waits to fill, a batch is rebuilt after
 * a failed ack), so the state is rewound to that batch's at each build
 * (downsample_rewind) and kept when the receiver takes a batch or the
 * cursor passes one (downsample_commit): the same positions get the same
 * decisions, except that a batch rebuilt after a failed local commit
 * starts from the last batch taken, so its first reading per sensor may be
 * decided otherwise (as after a restart). */
static void downsample_rewind(struct uplink *u)
{
    for (size_t i = 0; i < u->nds; i++)
        u->ds[i].step = u->ds[i].acked_step;
}

static void downsample_commit(struct uplink *u)
{
    for (size_t i = 0; i < u->nds; i++)
        u->ds[i].acked_step = u->ds[i].step;
}

static bool downsample_keep(struct uplink *u, const char *name, uint32_t len, int64_t ts)
{
    if (u->cfg.downsample_ms <= 0)
        return true;
    int64_t step = ts / u->cfg.downsample_ms - (ts % u->cfg.downsample_ms < 0);
    for (size_t i = 0; i < u->nds; i++) {
        struct downsample *d = &u->ds[i];
        if (d->len == len && !memcmp(d->name, name, len)) {
            if (step == d->step)
                return false;
            d->step = step;
            return true;
        }
    }
    if (u->nds == DOWNSAMPLE_MAX)
        return true; /* untracked: kept, not lost */
    if (u->nds % 64 == 0) {
        struct downsample *ds = op_realloc(u->ds, (u->nds + 64) * sizeof(*ds));
        if (!ds)
            return true;
        u->ds = ds;
    }
    char *copy = op_strndup(name, len);
    if (!copy)
        return true;
    u->ds[u->nds++] = (struct downsample){ copy, len, step, INT64_MIN };
    return true;
}

int sync__push_pos(int64_t **arr, size_t *n, size_t *cap, int64_t pos)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        int64_t *a = op_realloc(*arr, c * sizeof(*a));
        if (!a)
            return OP_ENOMEM;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = pos;
    return OP_OK;
}

static int mark_take(void *ctx, int64_t seq)
{
    struct uplink *u = ctx;
    if (sync__push_pos(&u->marks, &u->nmarks, &u->marks_cap, seq) != OP_OK) {
        u->build_err = OP_ENOMEM;
        return 1;
    }
    return 0;
}

/* ---- building a batch --------------------------------------------------- */

static int take_record(void *ctx, const struct op_outbox_record *rec)
{
    struct uplink *u = ctx;
    struct sync_rec r;
    int rc = sync__rec_decode(u->dec, rec->data, rec->len, (size_t)rec->n, &r);
    if (rc != OP_OK) {
        /* A record this build cannot read is skipped, loudly: it would
         * otherwise stop the uplink for good. */
        OP_ERROR(SYNC_SUB, "uplink %s: outbox record at seq %lld does not decode (%s); skipped",
                 u->cfg.name, (long long)rec->seq_lo, op_err_str(rc));
        u->last_pos = rec->seq_lo + rec->n - 1;
        return 0;
    }
    size_t mi = 0;
    u->nmarks = 0;
    /* Marks missing from the list would make marked readings look
     * unmarked and the cursor pass them: a failed read voids the build. */
    if (u->cfg.important_only) {
        int m = op_store_marks_read(u->rd, rec->seq_lo, rec->seq_lo + rec->n - 1, mark_take, u);
        if (m < 0 && !u->build_err)
            u->build_err = m;
        if (u->build_err)
            return 1;
    }
    for (size_t i = 0; i < r.n; i++) {
        int64_t seq = rec->seq_lo + (int64_t)i;
        if (seq <= u->last_pos)
            continue;
        /* Sent ahead of the cursor (priorities): read on after it. */
        const struct op_range *a = u->acked.n ? op_ranges_find(&u->acked, seq) : NULL;
        if (a) {
            u->last_pos = a->hi;
            u->jumped = true;
            return 1;
        }
        if (seq > u->limit_pos)
            return 1; /* not evaluated by the rules yet: its marks may still come */
        if (sync__batch_points(u->batch) >= (size_t)u->cfg.batch_points ||
            sync__batch_raw_bytes(u->batch) >= (size_t)u->cfg.batch_bytes) {
            u->full = true;
            return 1;
        }
        u->last_pos = seq;
        const char *name = r.names[r.sensor[i]];
        uint32_t len = r.name_len[r.sensor[i]];
        if (u->cfg.important_only) {
            while (mi < u->nmarks && u->marks[mi] < seq)
                mi++;
            if (mi == u->nmarks || u->marks[mi] != seq)
                continue;
        }
        if (!sync__uplink_selected(u, name, len) || !downsample_keep(u, name, len, r.ts[i]))
            continue;
        if (sync__batch_add(u->batch, name, len, seq, r.ts[i], r.val[i]) != OP_OK) {
            u->last_pos = seq - 1; /* retried at the next build */
            u->full = true;
            return 1;
        }
    }
    return 0;
}

int sync__uplink_build(struct uplink *u, int64_t after)
{
    sync__batch_reset(u->batch);
    downsample_rewind(u);
    u->first_pos = after + 1;
    u->last_pos = after;
    u->ranged = u->sparse = false;
    u->full = false;
    /* Rules mark readings after their commit: an important-only uplink
     * waits for the rules' persisted cursor, or it would pass readings
     * before their marks exist. */
    u->limit_pos = INT64_MAX;
    u->build_err = OP_OK;
    int64_t newest, rules_cursor;
    if (u->cfg.important_only) {
        int rc = op_store_rules_marks(u->rd, &newest, &rules_cursor);
        if (rc != OP_OK)
            return rc;
        u->limit_pos = rules_cursor >= 0 ? rules_cursor : newest;
    }
    for (;;) {
        int64_t before = u->last_pos;
        u->jumped = false;
        int n = op_store_outbox_read(u->rd, u->last_pos, UPLINK_RECORDS_PER_READ, take_record, u);
        if (n < 0 || u->build_err)
            return n < 0 ? n : u->build_err;
        if (u->full || u->last_pos == before || (n < UPLINK_RECORDS_PER_READ && !u->jumped))
            return OP_OK;
    }
}

/* ---- acknowledging -------------------------------------------------------- */

/* Finishes the commits in flight; false (after a pause) when one failed:
 * whatever was built after it is void, and the loop builds again from the
 * cursor. */
static bool ack_settled(struct uplink *u)
{
    if (sync__ack_wait(u) == OP_OK)
        return true;
    sync__nap(u->sync, UPLINK_ACK_RETRY_MS);
    return false;
}

/* Commits the cursor past a batch that is not delivered (filtered out or
 * dead) and waits for the commit. */
static int ack(struct uplink *u, int64_t seq, int dead_status, const char *answer)
{
    int rc = sync__ack_submit(u, seq, dead_status, answer, NULL);
    if (rc == OP_OK)
        rc = sync__ack_wait(u);
    if (rc == OP_OK)
        downsample_commit(u);
    return rc;
}

/* Refreshes the backlog gauges once per UPLINK_GAUGES_MS; called between
 * batches and between the attempts of one, so they show an outage. */
static void gauges(struct uplink *u)
{
    int64_t now = op_time_mono_ns();
    if (now - u->gauges_at < (int64_t)UPLINK_GAUGES_MS * 1000000)
        return;
    u->gauges_at = now;
    int64_t readings = 0, bytes = 0, oldest = INT64_MAX;
    if (op_store_outbox_backlog(u->rd, u->acked.floor, &readings, &bytes, &oldest) != OP_OK)
        return;
    readings -= op_ranges_above(&u->acked);
    atomic_store(&u->g_backlog, readings > 0 ? readings : 0);
    atomic_store(&u->g_backlog_bytes, bytes);
    atomic_store(&u->g_oldest_ms, oldest == INT64_MAX ? 0 : op_time_now_ms() - oldest);
}

/* ---- sending ------------------------------------------------------------ */


static bool retryable(int status)
{
    return status == 0 || status >= 500 || status == 408 || status == 425 || status == 429 ||
           status == 401 || status == 403 || (status >= 300 && status < 400);
}

/* Full jitter: uniform in [0, min(max, min * 2^attempt)]. */
static int64_t backoff_ms(const struct uplink *u, int attempt)
{
    int64_t cap = u->cfg.backoff_min_ms;
    for (int i = 0; i < attempt && cap < u->cfg.backoff_max_ms; i++)
        cap *= 2;
    if (cap > u->cfg.backoff_max_ms)
        cap = u->cfg.backoff_max_ms;
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)op_time_mono_ns();
    return (int64_t)(r % (uint64_t)(cap + 1));
}

/* Whether the outbox still holds every position of the batch being sent.
 * Positions after the cursor are contiguous in the outbox unless retention
 * dropped unsent records (counting their readings as dropped); a batch
 * that waited through such a drop is built again from what is left, so
 * nothing counted as dropped is delivered as well. */
struct span {
    int64_t next, last;
    bool gap;
};

static int span_take(void *ctx, const struct op_outbox_record *rec)
{
    struct span *sp = ctx;
    if (rec->seq_lo > sp->next) {
        sp->gap = true;
        return 1;
    }
    sp->next = rec->seq_lo + rec->n;
    return sp->next > sp->last;
}

static bool batch_whole(struct uplink *u)
{
    struct span sp = { u->first_pos, u->last_pos, false };
    while (!sp.gap && sp.next <= sp.last) {
        int64_t before = sp.next;
        int n = op_store_outbox_read(u->rd, sp.next - 1, 64, span_take, &sp);
        if (n < 0)
            return true; /* cannot tell: keep sending it */
        if (!sp.gap && sp.next == before)
            return false; /* nothing left at or after it */
    }
    return !sp.gap;
}

/* Sends one encoded batch until it is acknowledged or dead; false when
 * stopping first. True also when retention dropped part of the batch while
 * it waited: the loop builds it again. */
static bool deliver(struct uplink *u, const struct op_buf *msg, int64_t seq)
{
    for (int attempt = u->failures;; attempt++) {
        if (attempt > u->failures && !batch_whole(u)) {
            OP_WARN(SYNC_SUB, "uplink %s: retention dropped part of batch %lld while it"
                              " waited; building it again from what is left",
                    u->cfg.name, (long long)seq);
            return true;
        }
        struct sync_answer a;
        u->tp->send(u->transport, msg->data, msg->len, u->cfg.format == OP_UPLINK_JSON, &a);
        if (a.status >= 200 && a.status < 300) {
            u->failures = 0;
            /* The receiver has the batch: the downsampling decisions up to
             * it stand, whatever becomes of the local commit. */
            downsample_commit(u);
            /* The store may fail to commit the cursor (a full disk): the
             * batch is built and sent again later, and deduplicated. A
             * plain batch's commit overlaps the next batch's build and
             * send; the acks commit in order. */
            struct uplink_ack counts = { .points = sync__batch_points(u->batch),
                                         .raw = sync__batch_raw_bytes(u->batch),
                                         .wire = msg->len };
            int rc = sync__ack_submit(u, seq, 0, NULL, &counts);
            if (rc == OP_OK && !sync__ack_pipelined(u))
                rc = sync__ack_wait(u);
            return rc == OP_OK || sync__nap(u->sync, UPLINK_ACK_RETRY_MS);
        }
        if (atomic_load(&u->sync->stop))
            return false;
        if (!retryable(a.status) && u->ranged) {
            /* A receiver that refuses batches sent ahead of the cursor may
             * predate them: not a poison batch. Priorities are off for
             * this run and the batch goes again in position order. */
            OP_ERROR(SYNC_SUB, "uplink %s: the receiver refused a batch sent ahead of the cursor"
                               " (%d: %.200s); priorities are off until restart (upgrade the"
                               " receiver, or set priority = backlog)",
                     u->cfg.name, a.status, a.answer);
            u->cfg.priority.n = 1;
            u->failures = 0;
            return true;
        }
        if (!retryable(a.status)) {
            OP_ERROR(SYNC_SUB, "uplink %s: batch %lld (positions %lld..%lld) refused with %d;"
                               " it goes to the dead letters: %.200s",
                     u->cfg.name, (long long)seq, (long long)u->first_pos,
                     (long long)u->last_pos, a.status, a.answer);
            op_counter_add(u->c_dead, 1);
            u->failures = 0;
            return ack(u, seq, a.status, a.answer) == OP_OK ||
                   sync__nap(u->sync, UPLINK_ACK_RETRY_MS);
        }
        op_counter_add(u->c_failed, 1);
        gauges(u);
        int64_t wait = backoff_ms(u, attempt);
        /* The receiver's Retry-After wins when longer (it knows its load),
         * up to an hour, so a bad value cannot park the uplink for a day. */
        if (a.retry_after_ms > wait)
            wait = a.retry_after_ms < UPLINK_RETRY_AFTER_MAX_MS ? a.retry_after_ms
                                                                : UPLINK_RETRY_AFTER_MAX_MS;
        if (attempt == 0 || attempt % 10 == 0) {
            char why[160];
            if (a.status)
                snprintf(why, sizeof why, "HTTP %d", a.status);
            else
                snprintf(why, sizeof why, "%s", a.error ? a.error : "transfer failed");
            OP_WARN(SYNC_SUB, "uplink %s: batch %lld not delivered (%s); retry %d in %lld ms",
                    u->cfg.name, (long long)seq, why, attempt + 1, (long long)wait);
        }
        /* A commit still in flight that failed voids this batch (it was
         * built after it): it is built again after the wait. */
        if (sync__ack_wait(u) != OP_OK)
            return sync__nap(u->sync, wait > UPLINK_ACK_RETRY_MS ? wait : UPLINK_ACK_RETRY_MS);
        if (!sync__nap(u->sync, wait))
            return false;
        /* With priorities the next attempt is built again, so what came
         * in meanwhile (marked readings, newer ones) goes first once the
         * receiver is back; the batch number stays, the backoff goes on. */
        if (u->cfg.priority.n > 1) {
            u->failures = attempt + 1;
            return true;
        }
    }
}

/* Keeps the average wire rate under the budget. */
static void pace(struct uplink *u, size_t bytes, int64_t started_ns)
{
    if (u->cfg.bandwidth <= 0)
        return;
    int64_t due_ms = (int64_t)bytes * 1000 / u->cfg.bandwidth;
    int64_t spent_ms = (op_time_mono_ns() - started_ns) / 1000000;
    if (due_ms > spent_ms)
        sync__nap(u->sync, due_ms - spent_ms);
}

static void *uplink_main(void *arg)
{
    struct uplink *u = arg;
    struct op_buf msg;
    op_buf_init(&msg, (size_t)512 << 20);
    int64_t pending_since = -1;
    u->gauges_at = INT64_MIN / 2;
    while (!atomic_load(&u->sync->stop)) {
        int64_t now = op_time_mono_ns();
        gauges(u);
        /* A commit that failed voids what was built after it. */
        if (sync__ack_poll(u) != OP_OK) {
            ack_settled(u);
            continue;
        }
        /* With commits in flight (plain batches only), the next batch
         * starts after the last one sent. */
        int64_t from = sync__ack_next_from(u);
        bool ahead = u->cfg.priority.n > 1 && sync__priority_build(u, now);
        if (!ahead && sync__uplink_build(u, from) != OP_OK) {
            if (ack_settled(u))
                sync__nap(u->sync, 1000);
            continue;
        }
        if (!ahead && u->last_pos == from) { /* nothing new */
            pending_since = -1;
            if (ack_settled(u))
                sync__nap(u->sync, UPLINK_IDLE_MS);
            continue;
        }
        if (sync__batch_points(u->batch) == 0) { /* all filtered out */
            if (ack_settled(u) && ack(u, u->batch_seq, 0, NULL) != OP_OK)
                sync__nap(u->sync, UPLINK_ACK_RETRY_MS);
            continue;
        }
        /* A partial batch waits up to batch_age to fill (one built ahead
         * has waited already). */
        if (!ahead && !u->full && u->cfg.batch_age_ms > 0) {
            if (pending_since < 0)
                pending_since = now;
            int64_t left = u->cfg.batch_age_ms - (now - pending_since) / 1000000;
            if (left > 0) {
                if (ack_settled(u))
                    sync__nap(u->sync, left < UPLINK_IDLE_MS ? left : UPLINK_IDLE_MS);
                continue;
            }
        }
        pending_since = -1;
        int64_t seq = sync__ack_next_seq(u);
        op_buf_reset(&msg);
        struct sync_cover cv = { u->first_pos, u->last_pos, u->acked.floor, u->ranged, u->sparse };
        int rc = u->cfg.format == OP_UPLINK_JSON
                     ? sync__batch_encode_json(u->batch, u->node, u->cfg.name, (uint64_t)seq, &cv,
                                               &msg)
                     : sync__batch_encode(u->batch, u->node, u->cfg.name, (uint64_t)seq, &cv,
                                          u->sealed ? &u->seal : NULL, &msg);
        if (rc != OP_OK) {
            OP_ERROR(SYNC_SUB, "uplink %s: cannot encode batch %lld: %s", u->cfg.name,
                     (long long)seq, op_err_str(rc));
            if (ack_settled(u))
                sync__nap(u->sync, 1000);
            continue;
        }
        int64_t t0 = op_time_mono_ns();
        if (!deliver(u, &msg, seq))
            break;
        pace(u, msg.len, t0);
    }
    sync__ack_wait(u); /* the writer holds the commits in flight until then */
    op_buf_fini(&msg);
    return NULL;
}

/* ---- start and stop --------------------------------------------------------- */

static double g_backlog(void *ctx)
{
    return (double)atomic_load(&((struct uplink *)ctx)->g_backlog);
}
static double g_backlog_bytes(void *ctx)
{
    return (double)atomic_load(&((struct uplink *)ctx)->g_backlog_bytes);
}
static double g_oldest(void *ctx)
{
    return (double)atomic_load(&((struct uplink *)ctx)->g_oldest_ms) / 1000.0;
}
static double g_last_batch(void *ctx)
{
    return (double)atomic_load(&((struct uplink *)ctx)->g_last_batch);
}

/* One labelled series of a per-uplink counter. */
static struct op_counter *counter(const struct uplink *u, const char *name, const char *label,
                                  const char *help)
{
    char l[200];
    snprintf(l, sizeof l, "uplink=\"%s\",%s", u->cfg.name, label);
    return op_metrics_counter(name, l, help);
}

static const struct {
    const char *name, *help;
    op_gauge_fn *fn;
} gauge_table[] = {
    { "outpost_uplink_backlog_readings", "readings not yet acknowledged", g_backlog },
    { "outpost_uplink_backlog_bytes", "outbox bytes not yet acknowledged", g_backlog_bytes },
    { "outpost_uplink_oldest_unsent_age_seconds",
      "age (by its timestamp) of the oldest reading not yet acknowledged", g_oldest },
    { "outpost_uplink_last_acked_batch", "number of the last batch acked", g_last_batch },
};

/* Points the uplink's gauges at it, or (on) false, at nothing: the
 * registry outlives the uplinks, and a scrape after the stop must not call
 * into freed memory. */
static void gauges_register(struct uplink *u, bool on)
{
    char l[160];
    snprintf(l, sizeof l, "uplink=\"%s\"", u->cfg.name);
    for (size_t i = 0; i < sizeof gauge_table / sizeof gauge_table[0]; i++)
        op_metrics_gauge(gauge_table[i].name, l, gauge_table[i].help,
                         on ? gauge_table[i].fn : NULL, on ? u : NULL);
}

static void metrics(struct uplink *u)
{
    static const char batches[] = "batches by outcome: acked, failed (an attempt to retry),"
                                  " dead (refused for good)";
    static const char bytes[] = "bytes acknowledged: raw (name + 16 per reading) and on the wire";
    char l[160];
    snprintf(l, sizeof l, "uplink=\"%s\"", u->cfg.name);
    u->c_acked = counter(u, "outpost_uplink_batches_total", "result=\"acked\"", batches);
    u->c_failed = counter(u, "outpost_uplink_batches_total", "result=\"failed\"", batches);
    u->c_dead = counter(u, "outpost_uplink_batches_total", "result=\"dead\"", batches);
    u->c_raw = counter(u, "outpost_uplink_bytes_total", "stage=\"raw\"", bytes);
    u->c_wire = counter(u, "outpost_uplink_bytes_total", "stage=\"wire\"", bytes);
    u->c_sent = op_metrics_counter("outpost_uplink_readings_total", l,
                                   "readings the receiver acknowledged");
    gauges_register(u, true);
}

static int uplink_init(struct op_sync *s, struct uplink *u, const struct op_uplink_cfg *cfg,
                       struct op_store *store)
{
    u->sync = s;
    u->cfg = *cfg;
    u->store = store;
    u->node = op_store_node_id(store);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    patterns_parse(u);
    metrics(u);
    int rc;
    if (cfg->seal_key[0]) {
        if ((rc = op_sec_seal_key_load(&u->seal, cfg->seal_key)) != OP_OK) {
            OP_ERROR(SYNC_SUB, "uplink %s: cannot load the sealing key %s: %s", cfg->name,
                     cfg->seal_key, op_err_str(rc));
            return rc;
        }
        u->sealed = true;
    }
    if ((rc = op_store_reader_open(store, &u->rd)) != OP_OK ||
        (rc = (u->tp = sync__transport_for(cfg->url)) ? OP_OK : OP_EINVAL) != OP_OK ||
        (rc = u->tp->create(&u->transport, cfg, u->node, &s->stop)) != OP_OK ||
        (rc = sync__rec_dec_create(&u->dec)) != OP_OK ||
        (rc = sync__batch_create(&u->batch)) != OP_OK)
        return rc;
    int64_t cursor;
    if ((rc = op_store_uplink_get(u->rd, cfg->name, &cursor, &u->batch_seq)) != OP_OK) {
        OP_ERROR(SYNC_SUB, "uplink %s: the store has no cursor for it: %s", cfg->name,
                 op_err_str(rc));
        return rc;
    }
    op_ranges_init(&u->acked, cursor);
    if ((rc = op_store_uplink_ranges(u->rd, cfg->name, &u->acked)) != OP_OK)
        return rc;
    u->live_pending_since = -1;
    atomic_store(&u->g_last_batch, u->batch_seq);
    return OP_OK;
}

int op_sync_start(struct op_sync **out, struct op_store *store, const struct op_uplink_cfg *ups,
                  size_t n)
{
    *out = NULL;
    if (n == 0)
        return OP_OK;
    struct op_sync *s = op_calloc(1, sizeof(*s));
    if (!s)
        return OP_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->u = op_calloc(n, sizeof(*s->u));
    int rc = s->u ? OP_OK : OP_ENOMEM;
    for (size_t i = 0; i < n && rc == OP_OK; i++, s->n++)
        rc = uplink_init(s, &s->u[i], &ups[i], store);
    for (size_t i = 0; i < s->n && rc == OP_OK; i++) {
        if (pthread_create(&s->u[i].thread, NULL, uplink_main, &s->u[i]) != 0)
            rc = OP_ENOMEM;
        else
            s->u[i].started = true;
        OP_INFO(SYNC_SUB, "uplink %s to %s from position %lld (node %s)", s->u[i].cfg.name,
                s->u[i].cfg.url, (long long)s->u[i].acked.floor, s->u[i].node);
    }
    if (rc != OP_OK) {
        op_sync_stop(s);
        return rc;
    }
    *out = s;
    return OP_OK;
}

void op_sync_stop(struct op_sync *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        struct uplink *u = &s->u[i];
        if (u->started)
            pthread_join(u->thread, NULL);
        gauges_register(u, false);
        if (u->tp)
            u->tp->destroy(u->transport);
        sync__rec_dec_destroy(u->dec);
        sync__batch_destroy(u->batch);
        op_store_reader_close(u->rd);
        op_sec_seal_key_wipe(&u->seal);
        for (size_t k = 0; k < u->nds; k++)
            op_free(u->ds[k].name);
        op_free(u->ds);
        op_free(u->marks);
        op_free(u->points);
        op_ranges_fini(&u->acked);
        pthread_mutex_destroy(&u->mu);
        pthread_cond_destroy(&u->cv);
    }
    op_free(s->u);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    op_free(s);
}
