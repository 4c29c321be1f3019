/*
 * Low-level layouts of the codec: LEB128 varints, LSB-first bit packing of
 * fixed-width integers (the fast mode's streams) and byte planes (the
 * default mode's streams, which give the entropy stage byte-aligned symbols
 * with similar statistics next to each other).
 */
#include <string.h>

#include "codec_int.h"

void codec__put_varint(struct cw *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    cw_put(w, b, n);
}

int codec__get_varint(struct cr *r, uint64_t *v)
{
    uint64_t out = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->pos >= r->len)
            return OP_ECORRUPT;
        uint8_t b = r->p[r->pos++];
        /* The 10th byte may only carry the top bit of a 64-bit value;
         * anything more would overflow, so such input is corrupt. */
        if (i == 9 && b > 1)
            return OP_ECORRUPT;
        out |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = out;
            return OP_OK;
        }
    }
    return OP_ECORRUPT;
}

size_t codec__varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void codec__bitpack(const uint64_t *u, size_t n, unsigned w, uint8_t *out)
{
    if (w == 0 || n == 0)
        return;
    uint64_t mask = w == 64 ? ~(uint64_t)0 : (((uint64_t)1 << w) - 1);
    uint64_t acc = 0;
    unsigned fill = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = u[i] & mask;
        acc |= v << fill;
        if (fill + w >= 64) {
            op_le64_put(out + o, acc);
            o += 8;
            /* The bits of v that did not fit start the next word. */
            acc = fill ? v >> (64 - fill) : 0;
            fill = fill + w - 64;
        } else {
            fill += w;
        }
    }
    for (unsigned b = 0; b < fill; b += 8)
        out[o++] = (uint8_t)(acc >> b);
}

void codec__bitunpack(const uint8_t *in, size_t n, unsigned w, uint64_t *u)
{
    if (w == 0) {
        memset(u, 0, n * sizeof *u);
        return;
    }
    size_t nbytes = (n * w + 7) / 8;
    uint64_t mask = w == 64 ? ~(uint64_t)0 : (((uint64_t)1 << w) - 1);
    size_t i = 0;
    /* Fast path: a full 8-byte load (plus one byte when a value straddles
     * it) stays inside the input. */
    for (; i < n; i++) {
        size_t bit = i * w, byte = bit >> 3;
        unsigned sh = (unsigned)(bit & 7);
        if (byte + 9 > nbytes)
            break;
        uint64_t v = op_le64_get(in + byte) >> sh;
        if (sh + w > 64)
            v |= (uint64_t)in[byte + 8] << (64 - sh);
        u[i] = v & mask;
    }
    for (; i < n; i++) {
        size_t bit = i * w, byte = bit >> 3;
        unsigned sh = (unsigned)(bit & 7);
        uint64_t v = 0;
        for (unsigned k = 0; k < 9 && byte + k < nbytes; k++) {
            uint64_t b = in[byte + k];
            /* Byte k holds value bits from 8k - sh upwards. */
            if (k == 0)
                v |= b >> sh;
            else if (8 * k - sh < 64)
                v |= b << (8 * k - sh);
        }
        u[i] = v & mask;
    }
}

void codec__planepack(const uint64_t *u, size_t n, unsigned nb, uint8_t *out)
{
    for (unsigned j = 0; j < nb; j++) {
        uint8_t *plane = out + (size_t)j * n;
        for (size_t i = 0; i < n; i++)
            plane[i] = (uint8_t)(u[i] >> (8 * j));
    }
}

void codec__planeunpack(const uint8_t *in, size_t n, unsigned nb, uint64_t *u)
{
    memset(u, 0, n * sizeof *u);
    for (unsigned j = 0; j < nb; j++) {
        const uint8_t *plane = in + (size_t)j * n;
        for (size_t i = 0; i < n; i++)
            u[i] |= (uint64_t)plane[i] << (8 * j);
    }
}
