/*
 * sync_priority.c: what an uplink sends first while it is behind (more
 * than one batch of positions past its cursor), by its `priority`:
 *
 *   important: readings a rule marked important, wherever they are in the
 *              backlog, in sparse batches that settle only their own
 *              positions;
 *   live:      the newest readings (the last batch_points positions, then
 *              each new one), so a dashboard is current while an outage's
 *              backlog drains;
 *   backlog:   from the cursor on, as without priorities (sync_uplink.c).
 *
 * A batch sent ahead of the cursor is "ranged": it tells the receiver the
 * sender's cursor (everything up to it is settled) and what else it
 * settles, and the receiver keeps the positions it stored as a floor plus
 * ranges (docs/internals/uplink.md). The backlog later reads over what was
 * sent ahead (sync__uplink_build skips acknowledged ranges); anything
 * sent twice, across a lost answer or a crash, is a duplicate by position
 * whichever class sent it, so classes need no ownership of positions.
 */
#include "sync_uplink_int.h"

/* Ranges acknowledged ahead of the cursor at most: sparse important
 * batches stop there (the backlog then sends those readings in order),
 * which bounds the state kept on both sides. */
#define PRIO_RANGES_MAX 4096

struct marked {
    struct uplink *u;
    size_t next;      /* the first point not taken yet */
    size_t new_ranges; /* separate ranges the points collected would add */
    bool stop;        /* the batch reached batch_bytes */
};

/* Marks not acknowledged yet, in position order, up to a batch, and up to
 * the ranges PRIO_RANGES_MAX leaves (adjacent marks share one). */
static int mark_collect(void *ctx, int64_t seq)
{
    struct marked *m = ctx;
    struct uplink *u = m->u;
    if (op_ranges_has(&u->acked, seq))
        return 0;
    bool joins = u->npoints && u->points[u->npoints - 1] == seq - 1;
    if (!joins && u->acked.n + m->new_ranges >= PRIO_RANGES_MAX)
        return 1;
    if (sync__push_pos(&u->points, &u->npoints, &u->points_cap, seq) != OP_OK) {
        u->build_err = OP_ENOMEM;
        return 1;
    }
    m->new_ranges += !joins;
    return u->npoints >= (size_t)u->cfg.batch_points;
}

/* Takes the marked readings of one outbox record. */
static int take_marked(void *ctx, const struct op_outbox_record *rec)
{
    struct marked *m = ctx;
    struct uplink *u = m->u;
    struct sync_rec r;
    int rc = sync__rec_decode(u->dec, rec->data, rec->len, (size_t)rec->n, &r);
    if (rc != OP_OK) {
        u->build_err = rc; /* the backlog reports and skips such a record */
        return 1;
    }
    int64_t end = rec->seq_lo + rec->n;
    while (m->next < u->npoints && u->points[m->next] < end) {
        int64_t seq = u->points[m->next++];
        if (seq < rec->seq_lo)
            continue; /* retention dropped its record: nothing to send */
        size_t i = (size_t)(seq - rec->seq_lo);
        const char *name = r.names[r.sensor[i]];
        uint32_t len = r.name_len[r.sensor[i]];
        if (!sync__uplink_selected(u, name, len))
            continue;
        if (sync__batch_raw_bytes(u->batch) + len + 16 > (size_t)u->cfg.batch_bytes) {
            m->next--; /* the next batch's */
            m->stop = true;
            return 1;
        }
        if (sync__batch_add(u->batch, name, len, seq, r.ts[i], r.val[i]) != OP_OK) {
            u->build_err = OP_ENOMEM;
            return 1;
        }
    }
    return 1;
}

static bool build_important(struct uplink *u, int64_t head)
{
    if (u->acked.n >= PRIO_RANGES_MAX)
        return false;
    sync__batch_reset(u->batch);
    u->npoints = 0;
    u->build_err = OP_OK;
    /* Any mark past the cursor will do, evaluated by the rules or not: a
     * mark made after the backlog sent its reading finds it acknowledged,
     * and a reading sent by both is a duplicate by position. */
    struct marked m = { u, 0, 0, false };
    if (op_store_marks_read(u->rd, u->acked.floor + 1, head, mark_collect, &m) < 0 ||
        u->build_err || u->npoints == 0)
        return false;
    while (m.next < u->npoints && !u->build_err && !m.stop) {
        size_t before = m.next;
        int n = op_store_outbox_read(u->rd, u->points[m.next] - 1, 1, take_marked, &m);
        if (n < 0)
            return false;
        if (n == 0 || m.next == before)
            break; /* no record holds the rest */
    }
    /* Nothing taken: retention may have dropped the records meanwhile. */
    if (u->build_err || m.next == 0)
        return false;
    u->npoints = m.next;
    u->first_pos = u->points[0];
    u->last_pos = u->points[u->npoints - 1];
    u->ranged = u->sparse = true;
    u->full = true;
    return true;
}

/* The newest positions not acknowledged yet: from the end of what was
 * sent ahead, or the last batch's worth of positions. A partial live batch
 * waits batch_age, during which the backlog is served. */
static bool build_live(struct uplink *u, int64_t head, int64_t now)
{
    if (u->acked.n >= PRIO_RANGES_MAX) /* a gap behind each live batch may start a range */
        return false;
    int64_t top = u->acked.n ? u->acked.r[u->acked.n - 1].hi : u->acked.floor;
    int64_t from = head - u->cfg.batch_points + 1;
    if (from <= top)
        from = top + 1;
    if (from > head) {
        u->live_pending_since = -1;
        return false;
    }
    if (sync__uplink_build(u, from - 1) != OP_OK || u->last_pos < from)
        return false;
    /* A batch's worth of positions (some may be filtered out) is ready. */
    bool whole = u->full || u->last_pos - from + 1 >= u->cfg.batch_points;
    if (!whole && u->cfg.batch_age_ms > 0) {
        if (u->live_pending_since < 0)
            u->live_pending_since = now;
        if ((now - u->live_pending_since) / 1000000 < u->cfg.batch_age_ms)
            return false;
    }
    u->live_pending_since = -1;
    u->ranged = true;
    return true;
}

bool sync__priority_build(struct uplink *u, int64_t now_ns)
{
    int64_t head;
    if (op_store_outbox_head(u->rd, &head) != OP_OK || head == INT64_MIN ||
        head - u->acked.floor <= u->cfg.batch_points) {
        u->live_pending_since = -1;
        return false;
    }
    /* A batch ahead is followed by one from the backlog, so a trickle of
     * new or marked readings cannot starve it: the backlog gets at least
     * every other batch, and its batches are full. */
    if (u->ahead_last)
        return false;
    for (size_t i = 0; i + 1 < u->cfg.priority.n; i++) {
        bool built = u->cfg.priority.order[i] == OP_PRIO_IMPORTANT ? build_important(u, head)
                                                                   : build_live(u, head, now_ns);
        if (built)
            return true;
    }
    return false;
}
