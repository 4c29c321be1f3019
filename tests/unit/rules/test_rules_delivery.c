/* The webhook sink's delivery policy (src/rules/rules_delivery.c): the
 * bounded queue drops the oldest, statuses map to deliver/give up/retry,
 * and the backoff is full-jitter exponential, capped, with Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/util.h"
#include "rules_int.h"

static struct rules__msg *msg(int64_t id)
{
    struct rules__msg *m = op_malloc(sizeof *m + 1);
    assert_non_null(m);
    m->id = id;
    m->len = 0;
    m->json[0] = '\0';
    return m;
}

static void test_queue_fifo_and_drop_oldest(void **state)
{
    (void)state;
    struct rules__queue q;
    assert_int_equal(rules__queue_init(&q, 3), OP_OK);
    assert_null(rules__queue_pop(&q));
    for (int64_t id = 1; id <= 3; id++)
        assert_null(rules__queue_push(&q, msg(id)));
    /* Full: each push pushes the oldest out, in order. */
    for (int64_t id = 4; id <= 7; id++) {
        struct rules__msg *d = rules__queue_push(&q, msg(id));
        assert_non_null(d);
        assert_int_equal(d->id, id - 3);
        op_free(d);
    }
    assert_int_equal(q.n, 3);
    struct rules__msg *m = rules__queue_pop(&q);
    assert_int_equal(m->id, 5);
    op_free(m);
    /* Wrapping around the ring keeps the order. */
    assert_null(rules__queue_push(&q, msg(8)));
    int64_t want[] = { 6, 7, 8 };
    for (size_t i = 0; i < 3; i++) {
        m = rules__queue_pop(&q);
        assert_non_null(m);
        assert_int_equal(m->id, want[i]);
        op_free(m);
    }
    assert_null(rules__queue_pop(&q));
    assert_null(rules__queue_push(&q, msg(9)));
    assert_int_equal(rules__queue_fini(&q), 1); /* frees what was left */
}

static void test_queue_of_one(void **state)
{
    (void)state;
    struct rules__queue q;
    assert_int_equal(rules__queue_init(&q, 1), OP_OK);
    assert_null(rules__queue_push(&q, msg(1)));
    struct rules__msg *d = rules__queue_push(&q, msg(2));
    assert_int_equal(d->id, 1);
    op_free(d);
    assert_int_equal(rules__queue_fini(&q), 1);
}

static void test_verdicts(void **state)
{
    (void)state;
    static const struct { long status; enum rules__verdict v; } cases[] = {
        { 200, RULES__DELIVERED }, { 201, RULES__DELIVERED }, { 204, RULES__DELIVERED },
        { 299, RULES__DELIVERED }, { 400, RULES__REJECTED }, { 401, RULES__REJECTED },
        { 403, RULES__REJECTED },  { 404, RULES__REJECTED },  { 413, RULES__REJECTED },
        { 422, RULES__REJECTED },  { 499, RULES__REJECTED },  { 408, RULES__RETRY },
        { 429, RULES__RETRY },     { 500, RULES__RETRY },     { 502, RULES__RETRY },
        { 503, RULES__RETRY },     { 599, RULES__RETRY },     { 301, RULES__RETRY },
        { 100, RULES__RETRY },     { 0, RULES__RETRY },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(rules__http_verdict(cases[i].status), cases[i].v);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    /* The ceiling doubles from the base and stops at the cap; the delay is
     * anywhere in [0, ceiling] (full jitter). */
    static const struct { unsigned attempt; int64_t ceil; } cases[] = {
        { 0, 500 }, { 1, 1000 }, { 2, 2000 }, { 3, 4000 }, { 6, 32000 }, { 7, 60000 },
        { 8, 60000 }, { 40, 60000 }, { 63, 60000 }, { 64, 60000 }, { 1000, 60000 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned a = cases[i].attempt;
        int64_t c = cases[i].ceil;
        assert_int_equal(rules__backoff_ms(a, 500, 60000, 0), 0);
        assert_int_equal(rules__backoff_ms(a, 500, 60000, (uint64_t)c), c);
        assert_int_equal(rules__backoff_ms(a, 500, 60000, (uint64_t)c + 1), 0);
        assert_int_equal(rules__backoff_ms(a, 500, 60000, UINT64_MAX),
                         (int64_t)(UINT64_MAX % (uint64_t)(c + 1)));
    }
}

static void test_backoff_is_spread(void **state)
{
    (void)state;
    /* Drawn from the generator, delays cover the range: no two nodes in
     * lockstep. */
    uint64_t rng = 42;
    int64_t lo = INT64_MAX, hi = 0, sum = 0;
    const int n = 4000;
    for (int i = 0; i < n; i++) {
        int64_t d = rules__backoff_ms(3, 500, 60000, rules__rand_next(&rng));
        assert_true(d >= 0 && d <= 4000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
    }
    assert_true(lo < 100 && hi > 3900);
    assert_true(sum / n > 1800 && sum / n < 2200); /* uniform: mean near 2000 */
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(rules__retry_delay_ms(0, 3, 500, 60000, 12345), 3000);
    assert_int_equal(rules__retry_delay_ms(9, 1, 500, 60000, 12345), 1000);
    /* Capped: a receiver cannot park the sink for an hour. */
    assert_int_equal(rules__retry_delay_ms(0, 3600, 500, 60000, 1), 60000);
    assert_int_equal(rules__retry_delay_ms(0, INT64_MAX, 500, 60000, 1), 60000);
    /* None given: the backoff. */
    assert_int_equal(rules__retry_delay_ms(2, 0, 500, 60000, 700), 700);
    assert_int_equal(rules__retry_delay_ms(0, 0, 500, 60000, 700), 700 % 501);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_fifo_and_drop_oldest),
        cmocka_unit_test(test_queue_of_one),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_is_spread),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
