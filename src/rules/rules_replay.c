/*
 * rules_replay.c: rebuilding the engine's state after a restart. Open
 * windows, `for` holds, rate samples and silence clocks live in memory; the
 * readings that shaped them are in the store. At start the runner feeds the
 * engine, with no sink (so nothing is emitted twice), each selected
 * sensor's readings of the last op_rules_history_ms before its newest, up to
 * the persisted cursor: readings after the cursor are evaluated normally
 * right after. Per-sensor order is what the engine needs (its state is per
 * rule and sensor), so the replay goes sensor by sensor through the
 * clustered (sensor, ts) key.
 */
#include <string.h>

#include "outpost/err.h"
#include "outpost/store.h"
#include "rules_int.h"

#define REPLAY_PAGE 1024
/* A bound on start-up work: state older than this many readings back is
 * left to rebuild itself from live readings. */
#define REPLAY_MAX_READINGS 2000000

struct replay {
    struct op_rules *eng;
    struct op_store_reader *rd;
    int64_t upto_seq, history_ms, total;
    char name[OP_RULES_SENSOR_MAX + 1];
    uint32_t len;
    struct op_reading buf[REPLAY_PAGE];
    size_t n;
    int64_t last_ts, last_seq;
    int rc;
};

static int replay_row(void *ctx, int64_t ts, double value, int64_t seq)
{
    struct replay *rp = ctx;
    rp->last_ts = ts;
    rp->last_seq = seq;
    if (seq <= rp->upto_seq)
        rp->buf[rp->n++] = (struct op_reading){ rp->name, rp->len, ts, value };
    return 0;
}

static int replay_sensor(void *ctx, const struct op_sensor_info *si)
{
    struct replay *rp = ctx;
    size_t len = strlen(si->name);
    if (len > OP_RULES_SENSOR_MAX || !op_rules_selects_any(rp->eng, si->name, len))
        return 0;
    memcpy(rp->name, si->name, len + 1);
    rp->len = (uint32_t)len;
    struct op_range_query q = { .sensor = rp->name, .to = INT64_MAX, .limit = REPLAY_PAGE };
    if (__builtin_sub_overflow(si->last_ts, rp->history_ms, &q.from))
        q.from = INT64_MIN;
    for (;;) {
        rp->n = 0;
        int got = op_store_query_range(rp->rd, &q, replay_row, rp);
        if (got < 0) {
            rp->rc = got;
            return 1;
        }
        op_rules_eval(rp->eng, rp->buf, rp->n, NULL);
        rp->total += (int64_t)rp->n;
        if (got < REPLAY_PAGE || rp->total >= REPLAY_MAX_READINGS)
            break;
        q.has_after = true;
        q.after_ts = rp->last_ts;
        q.after_seq = rp->last_seq;
    }
    return rp->total >= REPLAY_MAX_READINGS;
}

int rules__replay(struct op_rules *eng, struct op_store_reader *rd, int64_t upto_seq,
                  int64_t *replayed)
{
    *replayed = 0;
    if (op_rules_count(eng) == 0)
        return OP_OK;
    struct replay *rp = op_calloc(1, sizeof(*rp));
    if (!rp)
        return OP_ENOMEM;
    rp->eng = eng;
    rp->rd = rd;
    rp->upto_seq = upto_seq;
    rp->history_ms = op_rules_history_ms(eng);
    int rc = op_store_list_sensors(rd, replay_sensor, rp);
    *replayed = rp->total;
    rc = rc < 0 ? rc : rp->rc;
    op_free(rp);
    return rc;
}
