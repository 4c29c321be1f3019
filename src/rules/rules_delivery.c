/*
 * rules_delivery.c: the pure policy of the webhook sink (rules_webhook.c),
 * kept apart from its thread and its HTTP client so it can be tested
 * alone: the bounded queue of events that drops the oldest when full, what
 * an HTTP status means for an event, and how long to wait before a retry
 * (exponential backoff with full jitter, as in AWS's "Exponential Backoff
 * and Jitter": a receiver that comes back is not hit by every node at the
 * same instant).
 */
#include <string.h>

#include "outpost/err.h"
#include "outpost/util.h"
#include "rules_int.h"

int rules__queue_init(struct rules__queue *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->ring = op_calloc(cap ? cap : 1, sizeof *q->ring);
    if (!q->ring)
        return OP_ENOMEM;
    q->cap = cap ? cap : 1;
    return OP_OK;
}

size_t rules__queue_fini(struct rules__queue *q)
{
    size_t left = q->n;
    struct rules__msg *m;
    while ((m = rules__queue_pop(q)))
        op_free(m);
    op_free(q->ring);
    memset(q, 0, sizeof *q);
    return left;
}

struct rules__msg *rules__queue_push(struct rules__queue *q, struct rules__msg *m)
{
    struct rules__msg *dropped = NULL;
    /* Full: the oldest event goes, so that what the receiver gets after an
     * outage is the most recent state of things. */
    if (q->n == q->cap)
        dropped = rules__queue_pop(q);
    q->ring[(q->head + q->n) % q->cap] = m;
    q->n++;
    return dropped;
}

struct rules__msg *rules__queue_pop(struct rules__queue *q)
{
    if (q->n == 0)
        return NULL;
    struct rules__msg *m = q->ring[q->head];
    q->ring[q->head] = NULL;
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return m;
}

enum rules__verdict rules__http_verdict(long status)
{
    if (status >= 200 && status < 300)
        return RULES__DELIVERED;
    /* A 4xx says this request will never be accepted as it is (a bad token,
     * a payload the receiver refuses): retrying would only stall the events
     * behind it. 408 (timeout) and 429 (rate limit) are the exceptions. */
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        return RULES__REJECTED;
    /* 5xx, and anything odd (1xx, 3xx: redirects are not followed). */
    return RULES__RETRY;
}

int64_t rules__backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd)
{
    if (base_ms < 1)
        base_ms = 1;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    int64_t ceil = cap_ms;
    /* base * 2^attempt, without overflowing on a long outage. */
    if (attempt < 62 && base_ms <= (cap_ms >> attempt))
        ceil = base_ms << attempt;
    return (int64_t)(rnd % ((uint64_t)ceil + 1));
}

int64_t rules__retry_delay_ms(unsigned attempt, int64_t retry_after_s, int64_t base_ms,
                              int64_t cap_ms, uint64_t rnd)
{
    if (retry_after_s > 0)
        return retry_after_s >= cap_ms / 1000 ? cap_ms : retry_after_s * 1000;
    return rules__backoff_ms(attempt, base_ms, cap_ms, rnd);
}

uint64_t rules__rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
