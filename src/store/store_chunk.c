/*
 * store_chunk.c: one chunk of a sensor's readings as the chunks table keeps
 * it, and the point arrays chunks are built from and decoded into. A chunk
 * holds up to STORE_CHUNK_MAX readings of one sensor in (ts, seq) order as
 * two codec frames (docs/internals/codec.md), both in the codec's fast mode
 * (bit-packed, no zstd stage: compaction runs between groups on the
 * writer thread, and queries decode on every read):
 *
 *   points  (ts, value) of each reading
 *   seqs    (seq, 0.0): the seq rides in the frame's timestamp column,
 *           whose delta coders suit it (seqs of one sensor mostly rise by
 *           a constant stride), and the constant value column costs a few
 *           bytes a block
 *
 * Both frames carry the codec's checksum, so a damaged chunk reads as
 * OP_ECORRUPT rather than as wrong readings.
 */
#include <string.h>

#include "store_int.h"

/* The value column of a seqs frame. */
static const double zeros[STORE_CHUNK_MAX];

int store__pts_reserve(struct store_pts *p, size_t n)
{
    /* Three arrays of one length: each grows from the same cap to the
     * same size, so one failing leaves the others merely larger. */
    size_t c_ts = p->cap, c_val = p->cap, c_seq = p->cap;
    if (op_reserve(&p->ts, &c_ts, n, sizeof(*p->ts), 256) != OP_OK ||
        op_reserve(&p->val, &c_val, n, sizeof(*p->val), 256) != OP_OK ||
        op_reserve(&p->seq, &c_seq, n, sizeof(*p->seq), 256) != OP_OK)
        return OP_ENOMEM;
    p->cap = c_ts;
    return OP_OK;
}

int store__pts_push(struct store_pts *p, int64_t ts, double val, int64_t seq)
{
    if (p->n == p->cap && store__pts_reserve(p, p->n + 1) != OP_OK)
        return OP_ENOMEM;
    p->ts[p->n] = ts;
    p->val[p->n] = val;
    p->seq[p->n] = seq;
    p->n++;
    return OP_OK;
}

void store__pts_free(struct store_pts *p)
{
    op_free(p->ts);
    op_free(p->val);
    op_free(p->seq);
    memset(p, 0, sizeof(*p));
}

int store__chunk_encode(struct op_codec_ctx *ctx, const struct store_pts *p, size_t at, size_t n,
                        struct store_chunk_buf *out)
{
    if (n == 0 || n > STORE_CHUNK_MAX || at + n > p->n)
        return OP_EINVAL;
    size_t bound = op_codec_bound(n);
    int rc = op_reserve(&out->data, &out->cap, 2 * bound, 1, 2 * bound);
    if (rc != OP_OK)
        return rc;
    rc = op_codec_encode_ctx(ctx, p->ts + at, p->val + at, n, OP_CODEC_FAST, out->data, bound,
                             &out->points_len, NULL);
    if (rc == OP_OK)
        rc = op_codec_encode_ctx(ctx, p->seq + at, zeros, n, OP_CODEC_FAST,
                                 out->data + out->points_len, bound, &out->seqs_len, NULL);
    return rc;
}

int store__chunk_decode(struct op_codec_ctx *ctx, const void *points, size_t points_len,
                        const void *seqs, size_t seqs_len, struct store_pts *p)
{
    struct op_codec_frame_info a, b;
    if (!points || !seqs || op_codec_frame_info(points, points_len, &a) != OP_OK ||
        op_codec_frame_info(seqs, seqs_len, &b) != OP_OK || a.points != b.points ||
        a.points > STORE_CHUNK_MAX || a.frame_bytes != points_len || b.frame_bytes != seqs_len)
        return OP_ECORRUPT;
    int rc = store__pts_reserve(p, p->n + a.points);
    if (rc != OP_OK)
        return rc;
    size_t n1 = 0, n2 = 0;
    /* The seqs frame's values (all zero) land in val first and are then
     * overwritten by the points frame's. */
    rc = op_codec_decode_ctx(ctx, seqs, seqs_len, p->seq + p->n, p->val + p->n, a.points, &n1);
    if (rc == OP_OK)
        rc = op_codec_decode_ctx(ctx, points, points_len, p->ts + p->n, p->val + p->n, a.points,
                                 &n2);
    if (rc != OP_OK)
        return rc == OP_ENOMEM ? rc : OP_ECORRUPT;
    if (n1 != a.points || n2 != a.points)
        return OP_ECORRUPT;
    p->n += a.points;
    return OP_OK;
}
