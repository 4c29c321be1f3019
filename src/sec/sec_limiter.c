/*
 * The failed-authentication limiter: a fixed table of client addresses,
 * each with the start of its current window and the failures counted in
 * it. An address past the limit is refused (429) until its window ends.
 * The table never grows: addresses hash into 4-way buckets and a new
 * address takes the bucket's stalest entry, so a flood of spoofed-looking
 * addresses costs memory fixed at start-up (and can only make the limiter
 * forget, never block the wrong address).
 */
#include <pthread.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"

#define LIM_BUCKETS 256
#define LIM_WAYS 4
#define LIM_ADDR_MAX 16 /* an IPv6 address; IPv4 uses 4 */

struct lim_entry {
    uint8_t addr[LIM_ADDR_MAX];
    uint8_t len; /* 0: empty */
    int count;
    int64_t window_start_ms;
};

struct op_limiter {
    pthread_mutex_t mu;
    int max;
    int64_t window_ms;
    struct lim_entry e[LIM_BUCKETS][LIM_WAYS];
};

int op_sec_limiter_create(struct op_limiter **out, int max, int64_t window_ms)
{
    struct op_limiter *l = op_calloc(1, sizeof *l);
    if (!l)
        return OP_ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    l->max = max;
    l->window_ms = window_ms;
    *out = l;
    return OP_OK;
}

void op_sec_limiter_destroy(struct op_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    op_free(l);
}

/* FNV-1a: addresses are not secret and buckets only spread the load. */
static unsigned bucket_of(const uint8_t *a, size_t n)
{
    return op_fnv1a32(a, n) % LIM_BUCKETS;
}

/* The entry for addr, or NULL; with create, the bucket's stalest entry is
 * recycled for it. */
static struct lim_entry *find(struct op_limiter *l, const uint8_t *a, size_t n, bool create)
{
    struct lim_entry *b = l->e[bucket_of(a, n)], *victim = &b[0];
    for (int i = 0; i < LIM_WAYS; i++) {
        if (b[i].len == n && !memcmp(b[i].addr, a, n))
            return &b[i];
        if (b[i].len == 0 || (victim->len && b[i].window_start_ms < victim->window_start_ms))
            victim = &b[i];
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    memcpy(victim->addr, a, n);
    victim->len = (uint8_t)n;
    return victim;
}

int64_t op_sec_limiter_check(struct op_limiter *l, const void *addr, size_t addrlen,
                             int64_t now_ms)
{
    if (!addrlen || addrlen > LIM_ADDR_MAX)
        return 0;
    int64_t wait = 0;
    pthread_mutex_lock(&l->mu);
    struct lim_entry *e = find(l, addr, addrlen, false);
    if (e && e->count >= l->max) {
        int64_t end = e->window_start_ms + l->window_ms;
        wait = end > now_ms ? end - now_ms : 0;
    }
    pthread_mutex_unlock(&l->mu);
    return wait;
}

void op_sec_limiter_fail(struct op_limiter *l, const void *addr, size_t addrlen, int64_t now_ms)
{
    if (!addrlen || addrlen > LIM_ADDR_MAX)
        return;
    pthread_mutex_lock(&l->mu);
    struct lim_entry *e = find(l, addr, addrlen, true);
    if (e->count == 0 || now_ms - e->window_start_ms >= l->window_ms) {
        e->window_start_ms = now_ms;
        e->count = 0;
    }
    e->count++;
    pthread_mutex_unlock(&l->mu);
}
