/*
 * The one allocation wrapper. Every allocation in outpost goes through here
 * so that tests can inject failures (op_alloc_fail_after) and a later
 * memory budget has a single place to live.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/util.h"

/* Countdown to the injected failure: 0 = off, 1 = the next allocation fails. */
static _Atomic long fail_countdown;

static bool should_fail(void)
{
    long cur = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (cur > 0) {
        /* Once the countdown reaches 1 it stays there: every later
         * allocation fails too, which is what a sweep wants. */
        long next = cur > 1 ? cur - 1 : 1;
        if (atomic_compare_exchange_weak(&fail_countdown, &cur, next))
            return cur == 1;
    }
    return false;
}

void op_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n < 0 ? 0 : n);
}

void *op_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *op_calloc(size_t count, size_t n)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, n ? n : 1);
}

void *op_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void op_free(void *p)
{
    free(p);
}

int op_reserve(void *pp, size_t *cap, size_t need, size_t elem, size_t min)
{
    if (need <= *cap)
        return OP_OK;
    size_t n = *cap ? *cap : (min ? min : 1);
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return OP_ENOMEM;
        n *= 2;
    }
    if (n > SIZE_MAX / elem)
        return OP_ENOMEM;
    void *old, *p;
    /* pp points at a pointer of any object type: copied, not aliased. */
    memcpy(&old, pp, sizeof(old));
    if (!(p = op_realloc(old, n * elem)))
        return OP_ENOMEM;
    memcpy(pp, &p, sizeof(p));
    *cap = n;
    return OP_OK;
}

char *op_strndup(const char *s, size_t len)
{
    char *d = op_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
