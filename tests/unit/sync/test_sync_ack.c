/*
 * Tests of src/sync/sync_ack.c against a real store: cursor commits queued
 * while the next batches are built complete in order; the ring waits for
 * its oldest when full; the next batch starts after the last one queued.
 * A commit that fails (here: one for an uplink the store does not know) is
 * reported, the commits after it still hold as ranges above the cursor,
 * and until a commit holds again the uplink leaves none in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "outpost/core.h"
#include "outpost/sync.h"
#include "../store/test_store_common.h"
#include "sync_uplink_int.h"

static const char *const cloud[] = { "cloud" };

struct fixture {
    char *dir;
    struct op_sync_encoder *enc;
    struct op_store *s;
    struct op_store_reader *r;
    struct op_sync sync;
    struct uplink *u;
};

static int setup(void **state)
{
    struct fixture *f = op_calloc(1, sizeof(*f));
    f->dir = ts_tmpdir();
    struct op_store_opts o = ts_opts(f->dir);
    o.uplinks = cloud;
    o.nuplinks = 1;
    assert_int_equal(op_sync_encoder_create(&f->enc), OP_OK);
    o.outbox_encode = op_sync_outbox_encode;
    o.outbox_ctx = f->enc;
    f->s = ts_open(&o);
    assert_int_equal(op_store_reader_open(f->s, &f->r), OP_OK);
    assert_int_equal(ts_append(f->s, "s", 1000, 1, 0, 40), OP_OK); /* positions 1..40 */
    pthread_mutex_init(&f->sync.mu, NULL);
    pthread_cond_init(&f->sync.cv, NULL);
    struct uplink *u = f->u = op_calloc(1, sizeof(*u));
    u->sync = &f->sync;
    u->store = f->s;
    snprintf(u->cfg.name, sizeof u->cfg.name, "cloud");
    u->cfg.priority.n = 1;
    assert_int_equal(sync__batch_create(&u->batch), OP_OK);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    int64_t cursor, batch;
    assert_int_equal(op_store_uplink_get(f->r, "cloud", &cursor, &batch), OP_OK);
    assert_int_equal(cursor, 0); /* made when the store was empty */
    op_ranges_init(&u->acked, cursor);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sync__ack_wait(f->u); /* the writer holds the commits in flight until then */
    sync__batch_destroy(f->u->batch);
    op_ranges_fini(&f->u->acked);
    pthread_mutex_destroy(&f->u->mu);
    pthread_cond_destroy(&f->u->cv);
    op_free(f->u);
    op_store_reader_close(f->r);
    op_store_close(f->s);
    op_sync_encoder_destroy(f->enc);
    ts_rmrf(f->dir);
    op_free(f);
    op_metrics_reset();
    return 0;
}

/* The uplink sent positions lo..hi as its next batch. */
static int sent(struct uplink *u, int64_t lo, int64_t hi)
{
    u->first_pos = lo;
    u->last_pos = hi;
    struct uplink_ack counts = { .points = (size_t)(hi - lo + 1) };
    return sync__ack_submit(u, sync__ack_next_seq(u), 0, NULL, &counts);
}

/* The write points at the uplink's name: renaming it (to an uplink the
 * store does not know, so that its commit fails) is safe only once the
 * writer is done with every write queued so far. */
static void rename_after_done(struct uplink *u, uint64_t done, const char *name)
{
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&u->mu);
        bool ok = u->acks_done >= done;
        pthread_mutex_unlock(&u->mu);
        if (ok) {
            snprintf(u->cfg.name, sizeof u->cfg.name, "%s", name);
            return;
        }
        usleep(1000);
    }
    fail_msg("the writer did not finish %llu commits in 20 s", (unsigned long long)done);
}

/* The store's cursor and batch number for the uplink, and its one
 * acknowledged range above the cursor (lo = 0: none). */
static void assert_store(struct fixture *f, int64_t cursor, int64_t batch, int64_t lo, int64_t hi)
{
    int64_t c, b;
    assert_int_equal(op_store_uplink_get(f->r, "cloud", &c, &b), OP_OK);
    assert_int_equal(c, cursor);
    assert_int_equal(b, batch);
    struct op_ranges rs;
    op_ranges_init(&rs, c);
    assert_int_equal(op_store_uplink_ranges(f->r, "cloud", &rs), OP_OK);
    op_ranges_merge(&rs);
    assert_int_equal(rs.n, lo ? 1 : 0);
    if (lo) {
        assert_int_equal(rs.r[0].lo, lo);
        assert_int_equal(rs.r[0].hi, hi);
    }
    op_ranges_fini(&rs);
}

static void test_ring_wraps_in_order(void **state)
{
    struct fixture *f = *state;
    struct uplink *u = f->u;
    for (int64_t i = 0; i < 10; i++) {
        assert_int_equal(sync__ack_next_from(u), i * 4); /* before any commit is waited for */
        assert_int_equal(sync__ack_next_seq(u), i + 1);
        assert_true(sync__ack_pipelined(u));
        assert_int_equal(sent(u, i * 4 + 1, i * 4 + 4), OP_OK);
        assert_true(u->ack_n >= 1 && u->ack_n <= UPLINK_ACKS_MAX);
    }
    assert_int_equal(sync__ack_wait(u), OP_OK);
    assert_int_equal(u->ack_n, 0);
    assert_int_equal(u->acked.floor, 40);
    assert_int_equal(u->acked.n, 0);
    assert_int_equal(u->batch_seq, 10);
    assert_int_equal(sync__ack_next_from(u), 40);
    assert_store(f, 40, 10, 0, 0);
    /* Every uplink has passed the outbox record: trimmed. */
    assert_int_equal(ts_sql_int(f->dir, "SELECT count(*) FROM outbox"), 0);
}

static void test_failure_in_the_middle(void **state)
{
    struct fixture *f = *state;
    struct uplink *u = f->u;
    assert_int_equal(sent(u, 1, 4), OP_OK);
    rename_after_done(u, 1, "nope");
    assert_int_equal(sent(u, 5, 8), OP_OK); /* the store refuses this one */
    rename_after_done(u, 2, "cloud");
    assert_int_equal(sent(u, 9, 12), OP_OK);
    assert_int_equal(u->ack_n, 3); /* none finished by the uplink yet */
    assert_int_equal(sync__ack_wait(u), OP_ENOTFOUND);
    /* 1..4 and 9..12 held; 5..8 is to be sent again. */
    assert_int_equal(u->acked.floor, 4);
    assert_non_null(op_ranges_find(&u->acked, 10));
    assert_null(op_ranges_find(&u->acked, 6));
    assert_int_equal(u->batch_seq, 3);
    assert_int_equal(sync__ack_next_from(u), 4);
    assert_store(f, 4, 3, 9, 12);
}

static void test_no_commit_in_flight_while_failing(void **state)
{
    struct fixture *f = *state;
    struct uplink *u = f->u;
    rename_after_done(u, 0, "nope");
    assert_int_equal(sent(u, 1, 4), OP_OK);
    /* Polling finishes it without blocking once the writer is done. */
    int rc = OP_OK;
    for (int i = 0; i < 20000 && u->ack_n; i++) {
        rc = sync__ack_poll(u);
        if (u->ack_n)
            usleep(1000);
    }
    assert_int_equal(u->ack_n, 0);
    assert_int_equal(rc, OP_ENOTFOUND);
    assert_false(sync__ack_pipelined(u));
    rename_after_done(u, 1, "cloud");
    assert_int_equal(sent(u, 1, 4), OP_OK);
    assert_int_equal(sync__ack_wait(u), OP_OK);
    assert_true(sync__ack_pipelined(u));
    assert_int_equal(u->acked.floor, 4);
    /* Nothing in flight: polling is a no-op. */
    assert_int_equal(sync__ack_poll(u), OP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ring_wraps_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_in_the_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_commit_in_flight_while_failing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
