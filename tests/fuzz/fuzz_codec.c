/*
 * libFuzzer target for codec frames (untrusted bytes from uplinks and
 * peers). Each input is decoded as is, which mostly exercises the header
 * and checksum checks, and again with its checksum recomputed, so the
 * mutations reach the body parsers. Whatever decodes must re-encode and
 * decode to the same bits in both modes. The input is also read as raw
 * points (16 bytes each: int64 timestamp, float64 bits), so the encoder's
 * choices meet arbitrary series directly, not only ones that decode.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

uint32_t codec__checksum(const uint8_t *p, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounded so a frame declaring a million points stays a fast input. */
#define FUZZ_MAX_POINTS 65536

static void check_decoded(const int64_t *ts, const double *val, size_t n)
{
    for (int mode = 0; mode < 2; mode++) {
        uint8_t *f;
        size_t len, m;
        int64_t *t2;
        double *v2;
        if (op_codec_encode_alloc(ts, val, n, (enum op_codec_mode)mode, &f, &len, NULL) != OP_OK)
            __builtin_trap();
        if (op_codec_decode_alloc(f, len, n ? n : 1, &t2, &v2, &m) != OP_OK || m != n ||
            (n && (memcmp(t2, ts, n * sizeof *ts) || memcmp(v2, val, n * sizeof *val))))
            __builtin_trap();
        op_free(f);
        op_free(t2);
        op_free(v2);
    }
}

static void one(const uint8_t *buf, size_t len)
{
    int64_t *ts;
    double *val;
    size_t n;
    int rc = op_codec_decode_alloc(buf, len, FUZZ_MAX_POINTS, &ts, &val, &n);
    if (rc == OP_OK) {
        check_decoded(ts, val, n);
        op_free(ts);
        op_free(val);
    } else if (rc != OP_ECORRUPT && rc != OP_ETOOBIG) {
        __builtin_trap();
    }
}

/* The input's bytes as points, round-tripped in both modes. */
static void raw_points(const uint8_t *data, size_t size)
{
    size_t n = size / 16;
    if (n == 0 || n > FUZZ_MAX_POINTS)
        return;
    int64_t *ts = op_malloc(n * sizeof *ts);
    double *val = op_malloc(n * sizeof *val);
    if (ts && val) {
        for (size_t i = 0; i < n; i++) {
            memcpy(&ts[i], data + 16 * i, 8);
            memcpy(&val[i], data + 16 * i + 8, 8);
        }
        check_decoded(ts, val, n);
    }
    op_free(ts);
    op_free(val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    raw_points(data, size);
    struct op_codec_frame_info fi;
    if (size >= OP_CODEC_HEADER_BYTES + OP_CODEC_TRAILER_BYTES) {
        uint8_t *copy = op_malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        /* Point the header at the input's real length, then reseal. */
        size_t stored = size - OP_CODEC_HEADER_BYTES - OP_CODEC_TRAILER_BYTES;
        for (int i = 0; i < 4; i++)
            copy[16 + i] = (uint8_t)(stored >> (8 * i));
        if (!(copy[5] & 3))
            memcpy(copy + 12, copy + 16, 4);
        uint32_t c = codec__checksum(copy, size - OP_CODEC_TRAILER_BYTES);
        for (int i = 0; i < 4; i++)
            copy[size - 4 + i] = (uint8_t)(c >> (8 * i));
        if (op_codec_frame_info(copy, size, &fi) == OP_OK)
            one(copy, size);
        op_free(copy);
    }
    return 0;
}
