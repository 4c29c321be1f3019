/*
 * sync_ack.c: an uplink's acknowledgements. When the receiver takes a
 * batch, the uplink queues the commit of its cursor (UPLINK_ACK) and goes
 * on building, encoding and sending the next batches while it commits: up
 * to UPLINK_ACKS_MAX commits are in flight, in a ring. The store applies
 * them in the order they were queued, so they complete in that order.
 *
 * Sending ahead of the commits loses nothing and duplicates nothing: a
 * crash before a commit resends from the committed cursor, and the
 * receiver stores each position once. When a commit fails (a full disk),
 * what was built after it is built again from the committed state: the
 * commits that held after the failed one stay as acknowledged ranges above
 * the cursor (the store keeps them so too), the rest is sent again. Until
 * a commit holds again, each one is waited for, so a disk that stays full
 * costs one resent batch per retry, not a ring's worth.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "outpost/err.h"
#include "sync_uplink_int.h"

/* finish_oldest: the oldest commit is not done yet (not an error code). */
#define ACK_NOT_DONE 1

static void ack_done(struct op_store_write *w)
{
    struct uplink *u = w->ctx;
    pthread_mutex_lock(&u->mu);
    u->acks_done++;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

static size_t slot_at(const struct uplink *u, size_t i)
{
    return (u->ack_head + i) % UPLINK_ACKS_MAX;
}

static struct uplink_ack *slot(struct uplink *u, size_t i)
{
    return &u->acks[slot_at(u, i)];
}

/* Mirrors what the store's ack did: the batch's positions join the
 * acknowledged ones, and the cursor is their floor. */
static void settle(struct uplink *u, const struct uplink_ack *a)
{
    const struct op_store_write *w = &a->w;
    if (op_ranges_cover(&u->acked, w->ack_points, w->ack_npoints, w->first_pos, w->last_pos) !=
        OP_OK) /* out of memory: a resend is deduplicated */
        op_ranges_clear(&u->acked, w->cursor);
    op_ranges_raise(&u->acked, w->cursor);
    op_ranges_merge(&u->acked);
    u->ahead_last = a->ranged;
    u->batch_seq = w->batch_seq;
    atomic_store(&u->g_last_batch, u->batch_seq);
    if (a->points) {
        op_counter_add(u->c_acked, 1);
        op_counter_add(u->c_sent, a->points);
        op_counter_add(u->c_raw, a->raw);
        op_counter_add(u->c_wire, a->wire);
    }
}

/* Finishes the oldest commit in flight (waiting for it only if `wait`);
 * ACK_NOT_DONE when it is not done yet. */
static int finish_oldest(struct uplink *u, bool wait)
{
    struct uplink_ack *a = slot(u, 0);
    pthread_mutex_lock(&u->mu);
    while (wait && u->acks_done == u->acks_taken)
        pthread_cond_wait(&u->cv, &u->mu);
    bool done = u->acks_done != u->acks_taken;
    if (done)
        u->acks_taken++;
    pthread_mutex_unlock(&u->mu);
    if (!done)
        return ACK_NOT_DONE;
    u->ack_head = (u->ack_head + 1) % UPLINK_ACKS_MAX;
    u->ack_n--;
    u->acks_failing = a->w.rc != OP_OK;
    if (a->w.rc == OP_OK)
        settle(u, a);
    return a->w.rc;
}

/* Finishes every commit in flight, or only those already done; the first
 * failure. */
static int finish(struct uplink *u, bool wait)
{
    int rc = OP_OK;
    while (u->ack_n) {
        int one = finish_oldest(u, wait);
        if (one == ACK_NOT_DONE)
            break;
        if (rc == OP_OK)
            rc = one;
    }
    return rc;
}

int sync__ack_wait(struct uplink *u)
{
    return finish(u, true);
}

int sync__ack_poll(struct uplink *u)
{
    return finish(u, false);
}

bool sync__ack_pipelined(const struct uplink *u)
{
    return u->cfg.priority.n <= 1 && !u->ranged && !u->acks_failing;
}

int sync__ack_submit(struct uplink *u, int64_t seq, int dead_status, const char *answer,
                     const struct uplink_ack *counts)
{
    if (u->ack_n == UPLINK_ACKS_MAX) {
        int rc = finish_oldest(u, true);
        if (rc != OP_OK) {
            sync__ack_wait(u);
            return rc;
        }
    }
    struct uplink_ack *a = slot(u, u->ack_n);
    *a = (struct uplink_ack){
        .w = { .op = OP_STORE_UPLINK_ACK, .uplink_name = u->cfg.name, .batch_seq = seq,
               .first_pos = u->first_pos, .last_pos = u->last_pos,
               .ack_points = u->sparse ? u->points : NULL,
               .ack_npoints = u->sparse ? u->npoints : 0, .dead_status = dead_status,
               .dead_answer = answer, .dead_readings = (int64_t)sync__batch_points(u->batch),
               .done = ack_done, .ctx = u },
        .ranged = u->ranged,
    };
    if (counts) {
        a->points = counts->points;
        a->raw = counts->raw;
        a->wire = counts->wire;
    }
    int rc;
    while ((rc = op_store_submit(u->store, &a->w)) == OP_EBUSY && sync__nap(u->sync, 5))
        ;
    if (rc == OP_OK) {
        u->ack_n++;
        return OP_OK;
    }
    sync__ack_wait(u);
    return rc;
}

int64_t sync__ack_next_from(const struct uplink *u)
{
    return u->ack_n ? u->acks[slot_at(u, u->ack_n - 1)].w.last_pos : u->acked.floor;
}

int64_t sync__ack_next_seq(const struct uplink *u)
{
    return (u->ack_n ? u->acks[slot_at(u, u->ack_n - 1)].w.batch_seq : u->batch_seq) + 1;
}
