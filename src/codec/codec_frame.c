/*
 * Frames: the public entry points of the codec. A frame is a fixed header,
 * a body (every block's timestamp chunk, then every block's value chunk,
 * optionally through the entropy stage) and an XXH32 trailer over all that
 * precedes it. Decoding checks the header's limits and the checksum before
 * it allocates or parses anything. Layout: docs/internals/codec.md.
 */
#include <string.h>

#include "codec_int.h"
#include "outpost/util.h"

/* Header offsets. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_FLAGS 5
#define H_BLOCK 6
#define H_POINTS 8
#define H_BODY 12
#define H_STORED 16

static size_t nblocks(size_t n, size_t bs)
{
    return (n + bs - 1) / bs;
}

/* Largest body the encoder can write for n points in blocks of bs. */
static size_t body_bound(size_t n, size_t bs)
{
    size_t nb = nblocks(n, bs);
    return 16 * n + nb * (CODEC_IS_BOUND(0) + CODEC_VAL_BOUND(0));
}

size_t op_codec_bound(size_t n)
{
    if (n > OP_CODEC_MAX_POINTS)
        return 0;
    return OP_CODEC_HEADER_BYTES + body_bound(n, OP_CODEC_BLOCK_POINTS) +
           OP_CODEC_TRAILER_BYTES;
}

static const char *const ts_names[OP_CODEC_TS_ENC_COUNT] = { "regular", "delta", "dod", "plain" };

const char *op_codec_ts_enc_name(int enc)
{
    return enc >= 0 && enc < OP_CODEC_TS_ENC_COUNT ? ts_names[enc] : "unknown";
}

const char *op_codec_mode_name(enum op_codec_mode mode)
{
    return mode == OP_CODEC_FAST ? "fast" : mode == OP_CODEC_DEFAULT ? "default" : "unknown";
}

static enum op_codec_ts_enc ts_stat(const struct codec_is_info *in)
{
    switch (in->xform) {
    case XF_DELTA:
        return in->width == 0 ? OP_CODEC_TS_REGULAR : OP_CODEC_TS_DELTA;
    case XF_DOD:
        return OP_CODEC_TS_DOD;
    default:
        return OP_CODEC_TS_PLAIN;
    }
}

struct op_codec_ctx {
    struct codec_vscratch *vs;
    struct codec_dscratch *ds;
    uint8_t *body; /* the plain body on its way to or from the stage */
    size_t body_cap;
    void *stage_state[CODEC_FLAG_STAGE_MASK + 1];
    /* Per-block value encodings chosen for the first layout of a frame. */
    uint8_t choice[OP_CODEC_MAX_POINTS / OP_CODEC_BLOCK_POINTS + 1];
};

int op_codec_ctx_create(struct op_codec_ctx **ctx)
{
    if (!ctx)
        return OP_EINVAL;
    *ctx = op_calloc(1, sizeof **ctx);
    return *ctx ? OP_OK : OP_ENOMEM;
}

void op_codec_ctx_destroy(struct op_codec_ctx *ctx)
{
    if (!ctx)
        return;
    for (unsigned id = 0; id <= CODEC_FLAG_STAGE_MASK; id++) {
        const struct codec_stage *st = codec__stage_find(id);
        if (st && ctx->stage_state[id])
            st->state_destroy(ctx->stage_state[id]);
    }
    op_free(ctx->vs);
    op_free(ctx->ds);
    op_free(ctx->body);
    op_free(ctx);
}

/* Makes sure ctx->body holds at least n bytes (contents not kept). */
static int body_reserve(struct op_codec_ctx *ctx, size_t n)
{
    if (ctx->body && ctx->body_cap >= n)
        return OP_OK;
    op_free(ctx->body);
    ctx->body_cap = 0;
    n = n ? n : 1; /* an empty frame still gets a real pointer for memcpy */
    ctx->body = op_malloc(n);
    if (!ctx->body)
        return OP_ENOMEM;
    ctx->body_cap = n;
    return OP_OK;
}

static void *stage_state(struct op_codec_ctx *ctx, const struct codec_stage *st)
{
    if (!ctx->stage_state[st->id])
        ctx->stage_state[st->id] = st->state_create();
    return ctx->stage_state[st->id];
}

/* Writes all blocks (timestamps first, then values) into w. With reuse,
 * the value encodings chosen by an earlier layout of the same frame are
 * kept instead of searched again. */
static int write_body(struct op_codec_ctx *ctx, const int64_t *ts, const double *val, size_t n,
                      enum codec_pack pack, bool reuse, struct cw *w, struct op_codec_stats *st)
{
    const size_t bs = OP_CODEC_BLOCK_POINTS;
    for (size_t off = 0; off < n; off += bs) {
        size_t k = n - off < bs ? n - off : bs;
        struct codec_is_info info;
        codec__is_encode(ts + off, k, pack, w, &info);
        st->ts_enc[ts_stat(&info)]++;
    }
    st->ts_bytes = w->len;
    if (!ctx->vs && !(ctx->vs = op_malloc(sizeof *ctx->vs)))
        return OP_ENOMEM;
    int rc = OP_OK;
    for (size_t off = 0, b = 0; off < n && rc == OP_OK; off += bs, b++) {
        size_t k = n - off < bs ? n - off : bs;
        if (!reuse)
            ctx->choice[b] = 0xff;
        rc = codec__value_encode(val + off, k, pack, w, ctx->vs, &ctx->choice[b], st);
    }
    st->value_bytes = w->len - st->ts_bytes;
    if (rc == OP_OK && w->ovf)
        rc = OP_ETOOBIG;
    return rc;
}

static void put_header(uint8_t *out, size_t n, unsigned flags, size_t body_len, size_t stored)
{
    memcpy(out + H_MAGIC, CODEC_MAGIC, 4);
    out[H_VERSION] = CODEC_VERSION;
    out[H_FLAGS] = (uint8_t)flags;
    out[H_BLOCK] = (uint8_t)(OP_CODEC_BLOCK_POINTS & 0xff);
    out[H_BLOCK + 1] = (uint8_t)(OP_CODEC_BLOCK_POINTS >> 8);
    put_le32(out + H_POINTS, (uint32_t)n);
    put_le32(out + H_BODY, (uint32_t)body_len);
    put_le32(out + H_STORED, (uint32_t)stored);
}

int op_codec_encode_ctx(struct op_codec_ctx *ctx, const int64_t *ts, const double *val, size_t n,
                        enum op_codec_mode mode, uint8_t *out, size_t cap, size_t *out_len,
                        struct op_codec_stats *stats)
{
    struct op_codec_stats local;
    struct op_codec_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!ctx || (n && (!ts || !val)) || !out || !out_len ||
        (mode != OP_CODEC_DEFAULT && mode != OP_CODEC_FAST))
        return OP_EINVAL;
    if (n > OP_CODEC_MAX_POINTS)
        return OP_ETOOBIG;
    const size_t hdr = OP_CODEC_HEADER_BYTES, trl = OP_CODEC_TRAILER_BYTES;
    if (cap < hdr + trl)
        return OP_ETOOBIG;
    size_t room = cap - hdr - trl;
    const struct codec_stage *stage = mode == OP_CODEC_DEFAULT ? &codec__stage_zstd : NULL;
    size_t bb = body_bound(n, OP_CODEC_BLOCK_POINTS);
    struct cw w;
    int rc;
    size_t body_len, stored;
    unsigned flags = 0;
    if (!stage) {
        cw_init(&w, out + hdr, room);
        rc = write_body(ctx, ts, val, n, PK_BITS, false, &w, st);
        if (rc != OP_OK)
            return rc;
        body_len = stored = w.len;
    } else {
        /* The stage needs the plain body somewhere else first. */
        void *zs = stage_state(ctx, stage);
        if (!zs || body_reserve(ctx, bb) != OP_OK)
            return OP_ENOMEM;
        cw_init(&w, ctx->body, bb);
        rc = write_body(ctx, ts, val, n, PK_PLANES, false, &w, st);
        if (rc != OP_OK)
            return rc;
        long z = w.len ? stage->compress(zs, ctx->body, w.len, out + hdr, room) : OP_ETOOBIG;
        if (z == OP_ENOMEM)
            return OP_ENOMEM;
        size_t zlen = z >= 0 ? (size_t)z : SIZE_MAX;
        /* Short or noisy series can do better bit-packed without the
         * stage (its tables and the planes' slack cost more than they
         * save), so the default mode also tries the fast layout, in the
         * scratch the planes no longer need, and keeps the smaller. */
        struct op_codec_stats alt;
        memset(&alt, 0, sizeof alt);
        cw_init(&w, ctx->body, bb);
        rc = write_body(ctx, ts, val, n, PK_BITS, true, &w, &alt);
        if (rc != OP_OK)
            return rc;
        if (w.len <= zlen) {
            if (w.len > room)
                return OP_ETOOBIG;
            memcpy(out + hdr, ctx->body, w.len);
            body_len = stored = w.len;
            *st = alt;
        } else {
            body_len = st->ts_bytes + st->value_bytes;
            stored = zlen;
            flags = stage->id;
        }
    }
    put_header(out, n, flags, body_len, stored);
    put_le32(out + hdr + stored, codec__checksum(out, hdr + stored));
    *out_len = hdr + stored + trl;
    st->points = n;
    st->blocks = nblocks(n, OP_CODEC_BLOCK_POINTS);
    st->frame_bytes = *out_len;
    st->body_bytes = body_len;
    st->entropy_stage = flags != 0;
    return OP_OK;
}

int op_codec_encode(const int64_t *ts, const double *val, size_t n, enum op_codec_mode mode,
                    uint8_t *out, size_t cap, size_t *out_len, struct op_codec_stats *stats)
{
    struct op_codec_ctx *ctx;
    if (op_codec_ctx_create(&ctx) != OP_OK)
        return OP_ENOMEM;
    int rc = op_codec_encode_ctx(ctx, ts, val, n, mode, out, cap, out_len, stats);
    op_codec_ctx_destroy(ctx);
    return rc;
}

int op_codec_encode_alloc(const int64_t *ts, const double *val, size_t n, enum op_codec_mode mode,
                          uint8_t **out, size_t *out_len, struct op_codec_stats *stats)
{
    if (!out || !out_len)
        return OP_EINVAL;
    *out = NULL;
    size_t cap = op_codec_bound(n);
    if (!cap)
        return OP_ETOOBIG;
    uint8_t *buf = op_malloc(cap);
    if (!buf)
        return OP_ENOMEM;
    int rc = op_codec_encode(ts, val, n, mode, buf, cap, out_len, stats);
    if (rc != OP_OK) {
        op_free(buf);
        return rc;
    }
    /* Give back the slack of the worst-case buffer; keeping it is fine if
     * the shrink fails. */
    uint8_t *fit = op_realloc(buf, *out_len);
    *out = fit ? fit : buf;
    return OP_OK;
}

/* Header fields after the checks every decoder must make. */
struct hdr {
    size_t points, block, body_len, stored;
    unsigned stage;
};

static int parse_header(const uint8_t *in, size_t len, struct hdr *h)
{
    const size_t hdr = OP_CODEC_HEADER_BYTES, trl = OP_CODEC_TRAILER_BYTES;
    if (!in || len < hdr + trl || memcmp(in + H_MAGIC, CODEC_MAGIC, 4) != 0 ||
        in[H_VERSION] != CODEC_VERSION || (in[H_FLAGS] & ~CODEC_FLAG_STAGE_MASK))
        return OP_ECORRUPT;
    h->stage = in[H_FLAGS] & CODEC_FLAG_STAGE_MASK;
    h->block = (size_t)in[H_BLOCK] | (size_t)in[H_BLOCK + 1] << 8;
    h->points = get_le32(in + H_POINTS);
    h->body_len = get_le32(in + H_BODY);
    h->stored = get_le32(in + H_STORED);
    if (h->stage && !codec__stage_find(h->stage))
        return OP_ECORRUPT;
    if (h->block == 0 || h->block > OP_CODEC_MAX_BLOCK_POINTS || h->points > OP_CODEC_MAX_POINTS)
        return OP_ECORRUPT;
    /* The body can be no larger than the encoder's bound for its points,
     * which caps what a decoder allocates for the entropy stage. */
    if (h->body_len > body_bound(h->points, h->block))
        return OP_ECORRUPT;
    if (!h->stage && h->stored != h->body_len)
        return OP_ECORRUPT;
    if (h->stored > len - hdr - trl)
        return OP_ECORRUPT;
    return OP_OK;
}

int op_codec_frame_info(const uint8_t *in, size_t len, struct op_codec_frame_info *info)
{
    struct hdr h;
    if (!info)
        return OP_EINVAL;
    int rc = parse_header(in, len, &h);
    if (rc != OP_OK)
        return rc;
    info->points = h.points;
    info->frame_bytes = OP_CODEC_HEADER_BYTES + h.stored + OP_CODEC_TRAILER_BYTES;
    info->version = CODEC_VERSION;
    info->entropy_stage = h.stage != 0;
    return OP_OK;
}

static int parse_body(struct op_codec_ctx *ctx, const uint8_t *body, size_t len,
                      const struct hdr *h, int64_t *ts, double *val)
{
    if (!ctx->ds && !(ctx->ds = op_malloc(sizeof *ctx->ds)))
        return OP_ENOMEM;
    struct cr r = { body, len, 0 };
    int rc = OP_OK;
    for (size_t off = 0; off < h->points && rc == OP_OK; off += h->block) {
        size_t k = h->points - off < h->block ? h->points - off : h->block;
        rc = codec__is_decode(&r, k, ts + off);
    }
    for (size_t off = 0; off < h->points && rc == OP_OK; off += h->block) {
        size_t k = h->points - off < h->block ? h->points - off : h->block;
        rc = codec__value_decode(&r, k, val + off, ctx->ds);
    }
    /* Trailing bytes mean the frame is not what the encoder wrote. */
    if (rc == OP_OK && r.pos != r.len)
        rc = OP_ECORRUPT;
    return rc;
}

int op_codec_decode_ctx(struct op_codec_ctx *ctx, const uint8_t *in, size_t len, int64_t *ts,
                        double *val, size_t cap, size_t *n_out)
{
    struct hdr h;
    if (!ctx || !n_out || (cap && (!ts || !val)))
        return OP_EINVAL;
    *n_out = 0;
    int rc = parse_header(in, len, &h);
    if (rc != OP_OK)
        return rc;
    const size_t hdr = OP_CODEC_HEADER_BYTES;
    if (len != hdr + h.stored + OP_CODEC_TRAILER_BYTES ||
        get_le32(in + hdr + h.stored) != codec__checksum(in, hdr + h.stored))
        return OP_ECORRUPT;
    if (h.points > cap)
        return OP_ETOOBIG;
    if (h.points == 0)
        return h.body_len == 0 ? OP_OK : OP_ECORRUPT;
    const uint8_t *body = in + hdr;
    if (h.stage) {
        const struct codec_stage *st = codec__stage_find(h.stage);
        void *zs = stage_state(ctx, st);
        if (!zs || body_reserve(ctx, h.body_len) != OP_OK)
            return OP_ENOMEM;
        rc = st->decompress(zs, body, h.stored, ctx->body, h.body_len);
        if (rc != OP_OK)
            return rc;
        body = ctx->body;
    }
    rc = parse_body(ctx, body, h.body_len, &h, ts, val);
    if (rc == OP_OK)
        *n_out = h.points;
    return rc;
}

int op_codec_decode(const uint8_t *in, size_t len, int64_t *ts, double *val, size_t cap,
                    size_t *n_out)
{
    struct op_codec_ctx *ctx;
    if (n_out)
        *n_out = 0;
    if (op_codec_ctx_create(&ctx) != OP_OK)
        return OP_ENOMEM;
    int rc = op_codec_decode_ctx(ctx, in, len, ts, val, cap, n_out);
    op_codec_ctx_destroy(ctx);
    return rc;
}

int op_codec_decode_alloc(const uint8_t *in, size_t len, size_t max_points, int64_t **ts,
                          double **val, size_t *n)
{
    struct op_codec_frame_info info;
    if (!ts || !val || !n)
        return OP_EINVAL;
    *ts = NULL;
    *val = NULL;
    *n = 0;
    if (max_points == 0 || max_points > OP_CODEC_MAX_POINTS)
        max_points = OP_CODEC_MAX_POINTS;
    int rc = op_codec_frame_info(in, len, &info);
    if (rc != OP_OK)
        return rc;
    if (info.points > max_points)
        return OP_ETOOBIG;
    size_t cnt = info.points ? info.points : 1;
    int64_t *t = op_malloc(cnt * sizeof *t);
    double *v = op_malloc(cnt * sizeof *v);
    if (!t || !v) {
        rc = OP_ENOMEM;
    } else {
        rc = op_codec_decode(in, len, t, v, info.points, n);
    }
    if (rc != OP_OK) {
        op_free(t);
        op_free(v);
        return rc;
    }
    *ts = t;
    *val = v;
    return OP_OK;
}
