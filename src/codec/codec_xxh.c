/*
 * The frame checksum, XXH32 (seed 0) from libxxhash. The only file that
 * includes xxhash.h, so the hash can be swapped in one place.
 */
#include <xxhash.h>

#include "codec_int.h"

uint32_t codec__checksum(const uint8_t *p, size_t n)
{
    return (uint32_t)XXH32(p, n, 0);
}
