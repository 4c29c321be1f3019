/*
 * sync_uplink_int.h: the uplink thread's state, shared by the loop
 * (sync_uplink.c) and the priority classes (sync_priority.c).
 */
#ifndef OUTPOST_SYNC_UPLINK_INT_H
#define OUTPOST_SYNC_UPLINK_INT_H

#include <pthread.h>

#include "sync_int.h"

#define UPLINK_RECORDS_PER_READ 4
#define UPLINK_IDLE_MS 50
#define UPLINK_GAUGES_MS 1000
#define UPLINK_PATTERNS_MAX 32
#define DOWNSAMPLE_MAX 65536
#define UPLINK_RETRY_AFTER_MAX_MS (3600 * 1000)
/* After the store failed to commit an acknowledgement (a full disk). */
#define UPLINK_ACK_RETRY_MS 1000

struct downsample { /* a sensor's last kept step, for `downsample` */
    char *name;
    uint32_t len;
    int64_t step;       /* as of the batch being built */
    int64_t acked_step; /* as of the cursor; INT64_MIN: none yet */
};

/* Cursor commits in flight at most (sync_ack.c). */
#define UPLINK_ACKS_MAX 4

/* A cursor commit and what its batch adds to the counters once it holds. */
struct uplink_ack {
    struct op_store_write w;
    bool ranged;
    size_t points, raw, wire;
};

struct uplink {
    struct op_sync *sync;
    struct op_uplink_cfg cfg;
    struct op_store *store;
    struct op_store_reader *rd;
    const struct sync_transport *tp;
    void *transport;
    struct sync_rec_dec *dec;
    struct sync_batch *batch;
    struct op_seal_key seal;
    bool sealed;
    const char *node;
    pthread_t thread;
    bool started;

    char pat[UPLINK_PATTERNS_MAX][OP_STORE_SENSOR_MAX + 1];
    size_t npat;
    struct downsample *ds;
    size_t nds;

    int64_t batch_seq;
    /* Positions acknowledged: everything up to acked.floor (the cursor)
     * and, with priorities, ranges above it. */
    struct op_ranges acked;
    /* what the batch being built covers */
    int64_t first_pos, last_pos;
    bool ranged, sparse; /* a sync_cover's (ranged: floor = cursor) */
    int64_t *points;     /* sparse: the positions it settles */
    size_t npoints, points_cap;
    bool jumped;                /* the build skipped an acknowledged range */
    int failures;               /* attempts failed since the last ack (priorities rebuild) */
    bool ahead_last;            /* the last batch acknowledged went ahead of the cursor */
    int64_t live_pending_since; /* monotonic ns; -1: no live batch waiting */
    int64_t limit_pos; /* important_only: positions the rules have evaluated */
    int build_err;     /* a read that failed while building: the build is void */
    bool full;
    int64_t *marks;
    size_t nmarks, marks_cap;

    /* Cursor commits in flight, oldest at ack_head; acks_done counts the
     * completions (under mu), acks_taken those finished by the thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct uplink_ack acks[UPLINK_ACKS_MAX];
    size_t ack_head, ack_n;
    uint64_t acks_done, acks_taken;
    bool acks_failing; /* the last commit finished failed */

    struct op_counter *c_acked, *c_failed, *c_dead, *c_sent, *c_raw, *c_wire;
    int64_t gauges_at; /* monotonic ns of the last gauges refresh */
    _Atomic int64_t g_backlog, g_backlog_bytes, g_oldest_ms, g_last_batch;
};

struct op_sync {
    struct uplink *u;
    size_t n;
    _Atomic bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Fills the batch from the outbox after `after` (skipping acknowledged
 * ranges), as a plain batch: first_pos = after + 1. */
int sync__uplink_build(struct uplink *u, int64_t after);
/* Appends pos to a growing array; OP_ENOMEM. */
int sync__push_pos(int64_t **arr, size_t *n, size_t *cap, int64_t pos);
/* Sleeps ms unless stopped first; false once stopping. */
bool sync__nap(struct op_sync *s, int64_t ms);
bool sync__uplink_selected(const struct uplink *u, const char *name, uint32_t len);
/* While the uplink is behind, builds the batch of the first priority class
 * (before backlog) that has one ready; false: build the backlog's. */
bool sync__priority_build(struct uplink *u, int64_t now_ns);

/* Queues the commit of the cursor past the batch just built (and a dead
 * letter when dead_status is set); counts: what the batch adds to the
 * counters once committed (NULL: nothing). Waits for the oldest commit
 * first when UPLINK_ACKS_MAX are in flight. On a failure nothing is queued
 * and every commit in flight has been finished. */
int sync__ack_submit(struct uplink *u, int64_t seq, int dead_status, const char *answer,
                     const struct uplink_ack *counts);
/* Finishes every commit in flight (sync__ack_wait), or only those already
 * done (sync__ack_poll), settling those that held; the first failure. */
int sync__ack_wait(struct uplink *u);
int sync__ack_poll(struct uplink *u);
/* Whether the batch just sent may leave its commit in flight: not with
 * priorities or a ranged batch (their builds read the acknowledged state),
 * nor while commits are failing. */
bool sync__ack_pipelined(const struct uplink *u);
/* Where the next batch starts (after the last one queued) and its number. */
int64_t sync__ack_next_from(const struct uplink *u);
int64_t sync__ack_next_seq(const struct uplink *u);

#endif
