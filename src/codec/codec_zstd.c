/*
 * The default mode's entropy stage: the whole frame body through zstd. The
 * block streams are byte-aligned (byte planes), so zstd's Huffman literals
 * and repeat matches act as the entropy coder the bit-packed fast mode
 * lacks. The only file that includes zstd.h; zstd's own allocations go
 * through op_malloc so budgets and failure injection cover them.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, ZSTD_create*_advanced */
#include <zstd.h>
#include <zstd_errors.h>

#include "codec_int.h"
#include "outpost/util.h"

/* Level 9 keeps the encoder above 100 MB/s of raw points on a small core
 * while getting within a few percent of level 19 on these streams (the
 * transforms, not zstd's match finder, do most of the work). */
#define STAGE_ZSTD_LEVEL 9

static void *zalloc(void *opaque, size_t n)
{
    (void)opaque;
    return op_malloc(n);
}

static void zfree(void *opaque, void *p)
{
    (void)opaque;
    op_free(p);
}

static const ZSTD_customMem zmem = { zalloc, zfree, NULL };

struct zstate {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
};

static void *zstate_create(void)
{
    struct zstate *z = op_malloc(sizeof *z);
    if (z)
        z->c = NULL, z->d = NULL;
    return z;
}

static void zstate_destroy(void *st)
{
    struct zstate *z = st;
    if (!z)
        return;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    op_free(z);
}

static long zstd_compress(void *st, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    struct zstate *zs = st;
    if (!zs->c && !(zs->c = ZSTD_createCCtx_advanced(zmem)))
        return OP_ENOMEM;
    ZSTD_CCtx *cc = zs->c;
    size_t z = ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(z))
        z = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, STAGE_ZSTD_LEVEL);
    /* The frame header already carries the body length and a checksum. */
    if (!ZSTD_isError(z))
        z = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
    if (!ZSTD_isError(z))
        z = ZSTD_compress2(cc, out, cap, in, len);
    if (!ZSTD_isError(z))
        return (long)z;
    if (ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation)
        return OP_ENOMEM;
    return OP_ETOOBIG;
}

static int zstd_decompress(void *st, const uint8_t *in, size_t len, uint8_t *out, size_t out_len)
{
    struct zstate *zs = st;
    if (!zs->d && !(zs->d = ZSTD_createDCtx_advanced(zmem)))
        return OP_ENOMEM;
    size_t z = ZSTD_decompressDCtx(zs->d, out, out_len, in, len);
    if (!ZSTD_isError(z))
        return z == out_len ? OP_OK : OP_ECORRUPT;
    if (ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation)
        return OP_ENOMEM;
    return OP_ECORRUPT;
}

const struct codec_stage codec__stage_zstd = { "zstd",          1,           zstate_create,
                                               zstate_destroy, zstd_compress, zstd_decompress };

/* Wire id -> stage; id 0 (no stage) has no entry. */
static const struct codec_stage *const stages[] = { NULL, &codec__stage_zstd };

const struct codec_stage *codec__stage_find(unsigned id)
{
    return id < sizeof stages / sizeof stages[0] ? stages[id] : NULL;
}
