/*
 * sync_bytes.c: the few byte-level primitives the record and wire formats
 * use: LEB128 unsigned varints, little-endian u64, u8-length strings, and
 * a reader that checks every length against what is left.
 */
#include <string.h>

#include "sync_int.h"

int sync__put_uvarint(struct op_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        tmp[n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return op_buf_append(b, tmp, n);
}

int sync__put_u64(struct op_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return op_buf_append(b, tmp, 8);
}

int sync__put_str8(struct op_buf *b, const char *s, size_t len)
{
    if (len > 255)
        return OP_EINVAL;
    uint8_t l = (uint8_t)len;
    int rc = op_buf_append(b, &l, 1);
    return rc == OP_OK ? op_buf_append(b, s, len) : rc;
}

static bool fail(struct sync_rd *r)
{
    r->bad = true;
    return false;
}

bool sync__get_uvarint(struct sync_rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->bad || r->p >= r->end)
            return fail(r);
        uint8_t c = *r->p++;
        if (shift == 63 && c > 1)
            return fail(r);
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return fail(r);
}

bool sync__get_u64(struct sync_rd *r, uint64_t *v)
{
    const uint8_t *p;
    if (!sync__get_bytes(r, 8, &p))
        return false;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    *v = x;
    return true;
}

bool sync__get_u8(struct sync_rd *r, uint8_t *v)
{
    const uint8_t *p;
    if (!sync__get_bytes(r, 1, &p))
        return false;
    *v = *p;
    return true;
}

bool sync__get_bytes(struct sync_rd *r, size_t n, const uint8_t **p)
{
    if (r->bad || (size_t)(r->end - r->p) < n)
        return fail(r);
    *p = r->p;
    r->p += n;
    return true;
}
