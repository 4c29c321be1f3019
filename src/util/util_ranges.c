/*
 * util_ranges.c: a floor plus sorted closed ranges above it, for positions
 * that are settled out of order. Adds append and a merge normalizes, so a
 * batch of tens of thousands of sparse positions costs one sort, not one
 * insertion each.
 */
#include <stdlib.h>

#include "outpost/err.h"
#include "outpost/util.h"

void op_ranges_init(struct op_ranges *s, int64_t floor)
{
    *s = (struct op_ranges){ .floor = floor, .merged = true };
}

void op_ranges_fini(struct op_ranges *s)
{
    op_free(s->r);
    *s = (struct op_ranges){ 0 };
}

void op_ranges_clear(struct op_ranges *s, int64_t floor)
{
    s->floor = floor;
    s->n = 0;
    s->merged = true;
}

int op_ranges_add(struct op_ranges *s, int64_t lo, int64_t hi)
{
    if (hi <= s->floor)
        return OP_OK;
    if (op_reserve(&s->r, &s->cap, s->n + 1, sizeof(*s->r), 8) != OP_OK)
        return OP_ENOMEM;
    s->r[s->n++] = (struct op_range){ lo, hi };
    s->merged = false;
    return OP_OK;
}

int op_ranges_cover(struct op_ranges *s, const int64_t *points, size_t npoints, int64_t first,
                    int64_t last)
{
    if (!points)
        return first <= last ? op_ranges_add(s, first, last) : OP_OK;
    int rc = OP_OK;
    for (size_t i = 0; rc == OP_OK && i < npoints; i++)
        rc = op_ranges_add(s, points[i], points[i]);
    return rc;
}

void op_ranges_raise(struct op_ranges *s, int64_t floor)
{
    if (floor > s->floor) {
        s->floor = floor;
        s->merged = false;
    }
}

static int by_lo(const void *a, const void *b)
{
    const struct op_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Whether a range starting at lo touches one ending at hi. */
static bool touches(int64_t hi, int64_t lo)
{
    return hi == INT64_MAX || lo <= hi + 1;
}

void op_ranges_merge(struct op_ranges *s)
{
    if (s->merged)
        return;
    if (s->n > 1)
        qsort(s->r, s->n, sizeof(*s->r), by_lo);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct op_range c = s->r[i];
        if (touches(s->floor, c.lo)) {
            if (c.hi > s->floor)
                s->floor = c.hi;
            continue;
        }
        if (k > 0 && touches(s->r[k - 1].hi, c.lo)) {
            if (c.hi > s->r[k - 1].hi)
                s->r[k - 1].hi = c.hi;
            continue;
        }
        s->r[k++] = c;
    }
    s->n = k;
    s->merged = true;
}

const struct op_range *op_ranges_find(const struct op_ranges *s, int64_t pos)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].hi < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->r[lo].lo <= pos ? &s->r[lo] : NULL;
}

int64_t op_ranges_above(const struct op_ranges *s)
{
    int64_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->r[i].hi - s->r[i].lo + 1;
    return n;
}
