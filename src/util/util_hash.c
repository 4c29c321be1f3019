/*
 * util_hash.c: FNV-1a, the one hash for the small in-memory tables (names,
 * addresses) whose keys are not chosen by an attacker who profits from
 * collisions, or where a collision only costs a longer probe.
 */
#include "outpost/util.h"

uint32_t op_fnv1a32(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}
