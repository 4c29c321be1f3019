/*
 * Tests of src/store/store_outbox.c: with uplinks, committed readings land
 * in outbox records (through the encoder given, here one that writes the
 * values as text) in the same transaction; cursors start at the newest
 * reading and move only by UPLINK_ACK, which trims records every uplink has
 * passed and can file a dead letter; the receiver's write appends only new
 * positions per (node, uplink); retention drops old records and counts the
 * readings an uplink had not sent; the node id is made once and kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "test_store_common.h"

static int encode_text(void *ctx, const struct op_reading *r, size_t n, struct op_buf *out)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        char line[64];
        int len = snprintf(line, sizeof line, "%.*s=%g;", (int)r[i].sensor_len, r[i].sensor,
                           r[i].value);
        int rc = op_buf_append(out, line, (size_t)len);
        if (rc != OP_OK)
            return rc;
    }
    return OP_OK;
}

static const char *const two[] = { "cloud", "region" };

struct fixture {
    char *dir;
    struct op_store *s;
    struct op_store_reader *r;
};

static void reopen(struct fixture *f, const char *const *uplinks, size_t n, int64_t age_ms)
{
    if (f->s) {
        op_store_reader_close(f->r);
        op_store_close(f->s);
        op_metrics_reset();
    }
    struct op_store_opts o = ts_opts(f->dir);
    o.uplinks = uplinks;
    o.nuplinks = n;
    o.outbox_encode = encode_text;
    o.retention_age_ms = age_ms;
    o.retention_interval_ms = age_ms ? 50 : 0;
    f->s = ts_open(&o);
    assert_int_equal(op_store_reader_open(f->s, &f->r), OP_OK);
}

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    op_store_reader_close(f->r);
    op_store_close(f->s);
    ts_rmrf(f->dir);
    op_free(f);
    op_metrics_reset();
    return 0;
}

struct recs {
    int n;
    int64_t seq_lo[8], count[8];
    char data[8][256];
};

static int take(void *ctx, const struct op_outbox_record *rec)
{
    struct recs *c = ctx;
    if (c->n < 8) {
        c->seq_lo[c->n] = rec->seq_lo;
        c->count[c->n] = rec->n;
        snprintf(c->data[c->n], sizeof c->data[0], "%.*s", (int)rec->len,
                 (const char *)rec->data);
    }
    c->n++;
    return 0;
}

static int ack(struct op_store *s, const char *uplink, int64_t cursor, int64_t batch)
{
    struct op_store_write w = { .op = OP_STORE_UPLINK_ACK, .uplink_name = uplink,
                                .first_pos = 0, .last_pos = cursor, .batch_seq = batch };
    return ts_write(s, &w);
}

/* Sent ahead of the cursor (priorities): a live range, then sparse
 * important points; the cursor moves only once what lies between is
 * acknowledged, and the ranges survive a restart. */
static void test_ranges_ahead_of_the_cursor(void **state)
{
    struct fixture *f = *state;
    reopen(f, two, 1, 0);
    assert_int_equal(ts_append(f->s, "a", 0, 1, 0, 100), OP_OK); /* seqs 1..100 */
    struct op_store_write live = { .op = OP_STORE_UPLINK_ACK, .uplink_name = "cloud",
                                   .first_pos = 81, .last_pos = 100, .batch_seq = 1 };
    assert_int_equal(ts_write(f->s, &live), OP_OK);
    assert_int_equal(live.cursor, 0);
    const int64_t marks[3] = { 20, 21, 50 };
    struct op_store_write imp = { .op = OP_STORE_UPLINK_ACK, .uplink_name = "cloud",
                                  .first_pos = 20, .last_pos = 50, .ack_points = marks,
                                  .ack_npoints = 3, .batch_seq = 2 };
    assert_int_equal(ts_write(f->s, &imp), OP_OK);
    assert_int_equal(imp.cursor, 0);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM uplink_ranges"), 3);
    reopen(f, two, 1, 0);
    struct op_ranges rs;
    op_ranges_init(&rs, 0);
    assert_int_equal(op_store_uplink_ranges(f->r, "cloud", &rs), OP_OK);
    assert_int_equal(rs.n, 3);
    assert_true(op_ranges_has(&rs, 21) && op_ranges_has(&rs, 90) && !op_ranges_has(&rs, 22));
    op_ranges_fini(&rs);
    int64_t head;
    assert_int_equal(op_store_outbox_head(f->r, &head), OP_OK);
    assert_int_equal(head, 100);
    /* The backlog reaches the live range: all folds into the cursor. */
    struct op_store_write back = { .op = OP_STORE_UPLINK_ACK, .uplink_name = "cloud",
                                   .first_pos = 1, .last_pos = 80, .batch_seq = 3 };
    assert_int_equal(ts_write(f->s, &back), OP_OK);
    assert_int_equal(back.cursor, 100);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM uplink_ranges"), 0);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 0);
}

static void test_records_cursors_and_trim(void **state)
{
    struct fixture *f = *state;
    reopen(f, NULL, 0, 0);
    assert_int_equal(ts_append(f->s, "old", 0, 1, 0, 3), OP_OK); /* before any uplink */
    char id[17];
    snprintf(id, sizeof id, "%s", op_store_node_id(f->s));
    assert_int_equal(strlen(id), 16);

    reopen(f, two, 2, 0);
    assert_string_equal(op_store_node_id(f->s), id); /* kept */
    int64_t cursor, batch;
    assert_int_equal(op_store_uplink_get(f->r, "cloud", &cursor, &batch), OP_OK);
    assert_int_equal(cursor, 3); /* starts at the newest reading */
    assert_int_equal(op_store_uplink_get(f->r, "nope", &cursor, &batch), OP_ENOTFOUND);

    assert_int_equal(ts_append(f->s, "a", 0, 1, 10, 2), OP_OK); /* seqs 4, 5 */
    assert_int_equal(ts_append(f->s, "b", 0, 1, 20, 1), OP_OK); /* seq 6 */
    struct recs c = { 0 };
    assert_int_equal(op_store_outbox_read(f->r, 3, 10, take, &c), 2);
    assert_int_equal(c.seq_lo[0], 4);
    assert_int_equal(c.count[0], 2);
    assert_string_equal(c.data[0], "a=10;a=11;");
    assert_string_equal(c.data[1], "b=20;");
    /* Reading from inside a record returns that record first. */
    c.n = 0;
    assert_int_equal(op_store_outbox_read(f->r, 4, 10, take, &c), 2);
    assert_int_equal(c.seq_lo[0], 4);

    int64_t readings, bytes, oldest;
    assert_int_equal(op_store_outbox_backlog(f->r, 4, &readings, &bytes, &oldest), OP_OK);
    assert_int_equal(readings, 2);
    assert_int_equal(oldest, 0);

    /* One uplink passing a record does not free it; both do. */
    assert_int_equal(ack(f->s, "cloud", 6, 1), OP_OK);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 2);
    assert_int_equal(ack(f->s, "region", 5, 1), OP_OK);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(ack(f->s, "nope", 5, 1), OP_ENOTFOUND);
    /* A cursor never goes back. */
    assert_int_equal(ack(f->s, "cloud", 2, 2), OP_OK);
    assert_int_equal(op_store_uplink_get(f->r, "cloud", &cursor, &batch), OP_OK);
    assert_int_equal(cursor, 6);
    assert_int_equal(batch, 2);

    /* A dead letter moves the cursor and keeps the receiver's answer. */
    struct op_store_write dl = { .op = OP_STORE_UPLINK_ACK, .uplink_name = "region", .cursor = 6,
                                 .batch_seq = 2, .first_pos = 6, .last_pos = 6,
                                 .dead_status = 422, .dead_answer = "{\"error\":1}",
                                 .dead_readings = 1 };
    assert_int_equal(ts_write(f->s, &dl), OP_OK);
    assert_int_equal(ts_sql_int(f->dir, "SELECT status FROM dead_letters"), 422);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 0);

    /* An uplink removed from the config is forgotten. */
    reopen(f, two, 1, 0);
    assert_int_equal(op_store_uplink_get(f->r, "region", &cursor, &batch), OP_ENOTFOUND);
}

static int receive(struct op_store *s, const char *node, int64_t last_pos, const int64_t *pos,
                   size_t n, int64_t *accepted)
{
    struct op_reading r[8];
    for (size_t i = 0; i < n; i++)
        r[i] = (struct op_reading){ "n1/x", 4, (int64_t)i, (double)pos[i] };
    struct op_store_write w = { .op = OP_STORE_UPLINK_RECEIVE, .uplink_name = "cloud",
                                .peer_node = node, .readings = r, .n = n, .positions = pos,
                                .last_pos = last_pos, .batch_seq = 1 };
    int rc = ts_write(s, &w);
    *accepted = w.accepted;
    return rc;
}

/* A receiver keeps what it stored per (node, uplink) as a floor plus
 * ranges: batches sent ahead of the sender's cursor, then the backlog
 * overlapping them, then a resend of everything, store each position once. */
static int receive_ranged(struct op_store *s, int64_t floor, bool sparse, int64_t first,
                          int64_t last, const int64_t *pos, size_t n, int64_t *accepted)
{
    struct op_reading r[8];
    for (size_t i = 0; i < n; i++)
        r[i] = (struct op_reading){ "n1/x", 4, (int64_t)i, (double)pos[i] };
    struct op_store_write w = { .op = OP_STORE_UPLINK_RECEIVE, .uplink_name = "cloud",
                                .peer_node = "n1", .readings = r, .n = n, .positions = pos,
                                .first_pos = first, .last_pos = last, .batch_seq = 1,
                                .peer_ranged = true, .peer_floor = floor,
                                .peer_sparse = sparse };
    int rc = ts_write(s, &w);
    *accepted = w.accepted;
    return rc;
}

static void test_receive_out_of_order(void **state)
{
    struct fixture *f = *state;
    reopen(f, NULL, 0, 0);
    int64_t acc;
    const int64_t live[2] = { 90, 91 };
    assert_int_equal(receive_ranged(f->s, 9, false, 90, 91, live, 2, &acc), OP_OK);
    assert_int_equal(acc, 2);
    const int64_t imp[2] = { 30, 60 };
    assert_int_equal(receive_ranged(f->s, 9, true, 30, 60, imp, 2, &acc), OP_OK);
    assert_int_equal(acc, 2);
    assert_int_equal(receive_ranged(f->s, 9, true, 30, 60, imp, 2, &acc), OP_OK); /* resent */
    assert_int_equal(acc, 0);
    /* The backlog, plain: 10..91 holds the important and live ones. */
    const int64_t back[6] = { 10, 30, 31, 60, 89, 90 };
    assert_int_equal(receive(f->s, "n1", 91, back, 6, &acc), OP_OK);
    assert_int_equal(acc, 3);
    assert_int_equal(ts_sql_int(f->dir, "SELECT last_pos FROM uplink_peers"), 91);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM uplink_peer_ranges"), 0);
    assert_int_equal(receive(f->s, "n1", 91, back, 6, &acc), OP_OK);
    assert_int_equal(acc, 0);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM readings"), 7);
}

static void test_receive_dedups_by_position(void **state)
{
    struct fixture *f = *state;
    reopen(f, NULL, 0, 0);
    int64_t acc;
    const int64_t p1[3] = { 10, 11, 12 };
    assert_int_equal(receive(f->s, "n1", 12, p1, 3, &acc), OP_OK);
    assert_int_equal(acc, 3);
    assert_int_equal(receive(f->s, "n1", 12, p1, 3, &acc), OP_OK); /* resent */
    assert_int_equal(acc, 0);
    const int64_t p2[3] = { 12, 13, 14 }; /* overlapping */
    assert_int_equal(receive(f->s, "n1", 14, p2, 3, &acc), OP_OK);
    assert_int_equal(acc, 2);
    assert_int_equal(receive(f->s, "n2", 12, p1, 3, &acc), OP_OK); /* another node */
    assert_int_equal(acc, 3);
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM readings"), 8);
    assert_int_equal(ts_sql_int(f->dir, "SELECT sum(value) FROM readings"),
                     10 + 11 + 12 + 13 + 14 + 10 + 11 + 12);
}

static bool dropped(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_uplink_dropped_readings_total{uplink=\"cloud\",reason=\"age\"}") >=
           2;
}

static void test_retention_counts_unsent_drops(void **state)
{
    struct fixture *f = *state;
    reopen(f, two, 1, 60000);
    int64_t now = op_time_now_ms();
    assert_int_equal(ts_append(f->s, "a", now - 3600000, 1, 0, 2), OP_OK); /* an hour old */
    assert_int_equal(ts_append(f->s, "a", now, 1, 5, 1), OP_OK);
    assert_true(ts_poll(dropped, NULL, 10000));
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(ts_sql_int(f->dir, "SELECT n FROM outbox"), 1);
}

static bool dropped_one(void *ctx)
{
    (void)ctx;
    return ts_metric("outpost_uplink_dropped_readings_total{uplink=\"cloud\",reason=\"age\"}") >=
           1;
}

/* A reading acknowledged ahead of the cursor (priorities) was sent: when
 * retention drops its record it is not counted as dropped. */
static void test_retention_skips_readings_sent_ahead(void **state)
{
    struct fixture *f = *state;
    reopen(f, two, 1, 60000);
    int64_t cursor, batch;
    assert_int_equal(op_store_uplink_get(f->r, "cloud", &cursor, &batch), OP_OK);
    int64_t now = op_time_now_ms();
    /* Acknowledged before it is appended: retention may run any moment
     * after the append. */
    struct op_store_write w = { .op = OP_STORE_UPLINK_ACK, .uplink_name = "cloud",
                                .first_pos = cursor + 3, .last_pos = cursor + 3, .batch_seq = 1 };
    assert_int_equal(ts_write(f->s, &w), OP_OK);
    assert_int_equal(w.cursor, cursor); /* cursor + 1 and + 2 are not acknowledged */
    assert_int_equal(ts_append(f->s, "a", now - 3600000, 1, 0, 3), OP_OK); /* old, one record */
    assert_int_equal(ts_append(f->s, "a", now, 1, 5, 1), OP_OK);
    assert_true(ts_poll(dropped_one, NULL, 10000));
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 1);
    assert_int_equal(
        ts_metric("outpost_uplink_dropped_readings_total{uplink=\"cloud\",reason=\"age\"}"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records_cursors_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_dedups_by_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_ahead_of_the_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_counts_unsent_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_skips_readings_sent_ahead, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
