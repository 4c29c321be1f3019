/*
 * codec private interface: byte cursors, varints, bit and byte-plane
 * packing, the integer-sequence coder shared by timestamps and values, the
 * value-encoding and entropy-stage vtables, and the checksum wrapper.
 * Nothing outside src/codec includes this.
 */
#ifndef OUTPOST_CODEC_INT_H
#define OUTPOST_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

#define CODEC_MAGIC "OPTS"
#define CODEC_VERSION 1
/* Frame flags: the low 2 bits name the entropy stage; the rest must be 0. */
#define CODEC_FLAG_STAGE_MASK 0x03u

/* Worst case of one integer-sequence chunk for n values: 8 bytes a value
 * plus a fixed header (kind, 2 heads, min, gcd, width, exception count). */
#define CODEC_IS_BOUND(n) ((size_t)(n) * 8 + 48)

/* ---- byte cursors ----------------------------------------------------- */

/* A writer into a fixed buffer; running past cap sets ovf and drops bytes,
 * so callers check once at the end. */
struct cw {
    uint8_t *p;
    size_t len, cap;
    bool ovf;
};

/* A reader over untrusted bytes; every get checks the bounds. */
struct cr {
    const uint8_t *p;
    size_t len, pos;
};

static inline void cw_init(struct cw *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->len = 0;
    w->cap = cap;
    w->ovf = false;
}

static inline void cw_put(struct cw *w, const void *src, size_t n)
{
    if (n > w->cap - w->len) {
        w->ovf = true;
        return;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static inline void cw_u8(struct cw *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    cw_put(w, &b, 1);
}

/* A position in a writer to come back to: the length and whether it had
 * overflowed by then. An attempt that ran past cap and is rewound (to be
 * replaced by a smaller fallback) must not leave the overflow behind. */
struct cw_mark {
    size_t len;
    bool ovf;
};

static inline struct cw_mark cw_mark(const struct cw *w)
{
    struct cw_mark m = { w->len, w->ovf };
    return m;
}

/* Bytes written since m, or SIZE_MAX if the writer overflowed since (then
 * some were dropped and the length understates them). */
static inline size_t cw_since(const struct cw *w, struct cw_mark m)
{
    return w->ovf && !m.ovf ? SIZE_MAX : w->len - m.len;
}

static inline void cw_rewind(struct cw *w, struct cw_mark m)
{
    w->len = m.len;
    w->ovf = m.ovf;
}

/* Reserves n bytes and returns where to write them, or NULL on overflow. */
static inline uint8_t *cw_reserve(struct cw *w, size_t n)
{
    if (n > w->cap - w->len) {
        w->ovf = true;
        return NULL;
    }
    uint8_t *at = w->p + w->len;
    w->len += n;
    return at;
}


static inline void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline int cr_u8(struct cr *r, unsigned *v)
{
    if (r->pos >= r->len)
        return OP_ECORRUPT;
    *v = r->p[r->pos++];
    return OP_OK;
}

/* Returns a pointer to the next n bytes and skips them, or NULL. */
static inline const uint8_t *cr_take(struct cr *r, size_t n)
{
    if (n > r->len - r->pos)
        return NULL;
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

void codec__put_varint(struct cw *w, uint64_t v);
int codec__get_varint(struct cr *r, uint64_t *v);
size_t codec__varint_len(uint64_t v);

static inline uint64_t zz_enc(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t zz_dec(uint64_t u)
{
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

/* Bits needed to hold v (0 for 0). */
static inline unsigned bitlen64(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

/* ---- packing (codec_bits.c) ------------------------------------------- */

/* Packs the low w bits (0..64) of u[0..n) LSB-first into out, which has
 * room for (n*w+7)/8 bytes. */
void codec__bitpack(const uint64_t *u, size_t n, unsigned w, uint8_t *out);
/* Inverse of codec__bitpack; in holds exactly (n*w+7)/8 bytes. */
void codec__bitunpack(const uint8_t *in, size_t n, unsigned w, uint64_t *u);
/* Byte planes: byte j of every value, for j < nb, plane after plane. */
void codec__planepack(const uint64_t *u, size_t n, unsigned nb, uint8_t *out);
void codec__planeunpack(const uint8_t *in, size_t n, unsigned nb, uint64_t *u);

/* ---- integer sequences (codec_intseq.c) ------------------------------- */

enum codec_xform { XF_NONE = 0, XF_DELTA = 1, XF_DOD = 2, XF_COUNT };
enum codec_pack { PK_BITS = 0, PK_PLANES = 1, PK_COUNT };

/* What codec__is_encode chose, for stats. */
struct codec_is_info {
    enum codec_xform xform;
    unsigned width;
};

/* What codec__is_plan chose for one sequence: the transform and its
 * estimated cost, plus (bit-packed plans) the residuals' minimum and the
 * histogram of their offsets' bit lengths, which codec__is_write reuses
 * instead of computing them again. */
struct codec_is_plan {
    enum codec_pack pack;
    enum codec_xform xform;
    uint64_t cost;
    int64_t mn;
    unsigned width;     /* bit length of the largest offset from mn */
    unsigned hist[65];
};

/* Estimates x[0..n) (1 <= n <= OP_CODEC_BLOCK_POINTS) under every
 * transform in two passes over x (ranges, then histograms or magnitudes),
 * fills pl with the cheapest and returns its estimated cost in bits:
 * bit-packed cost is the exact PFOR size ignoring the divisor, plane cost a
 * stand-in for what the entropy stage will spend. */
uint64_t codec__is_plan(const int64_t *x, size_t n, enum codec_pack pack,
                        struct codec_is_plan *pl);
/* Writes x[0..n) as one chunk of at most CODEC_IS_BOUND(n) bytes with the
 * transform pl chose (for the same x and pack). Returns the cost in bits
 * (exact when bit-packed, pl's estimate for planes). */
uint64_t codec__is_write(const int64_t *x, size_t n, enum codec_pack pack,
                         const struct codec_is_plan *pl, struct cw *w,
                         struct codec_is_info *info);
/* Plan and write in one call; with w NULL, only the plan's cost. */
uint64_t codec__is_encode(const int64_t *x, size_t n, enum codec_pack pack, struct cw *w,
                          struct codec_is_info *info);
/* Decodes one chunk of n (<= OP_CODEC_MAX_BLOCK_POINTS) values into x.
 * OP_OK or OP_ECORRUPT. */
int codec__is_decode(struct cr *r, size_t n, int64_t *x);

/* ---- value encodings (codec_value.c) ----------------------------------- */

/* Every value encoding maps a block of doubles to a parameter byte, a list
 * of values kept verbatim (exceptions) and a sequence of integers, which
 * the integer-sequence coder stores; only the mapping differs. */
struct codec_vprep {
    unsigned param;   /* decimal exponent or bit shift */
    uint64_t est;     /* the probe's cost on its sample (see codec_venc) */
    size_t nexc;
    int64_t *x;       /* n integers */
    uint32_t *epos;   /* nexc increasing positions */
    uint64_t *ebits;  /* nexc raw bit patterns */
};

struct codec_venc {
    const char *name;
    uint8_t id;        /* the byte on the wire, == enum op_codec_val_enc */
    unsigned max_param;
    /* The encoding this one refines, or -1. Where both apply, a
     * refinement fits every value its base fits at the same parameter,
     * with the same integer (decimal32 vs decimal on float32 data), so it
     * is mapped only when its probe estimate beats the base's on the same
     * sample; otherwise it would at best tie. */
    int refines;
    /* Looks at a sample of v[0..n) (a few dozen values at most), sets
     * p->param and p->est (comparable between an encoding and the one it
     * refines); false if the encoding does not apply to this block. */
    bool (*probe)(const double *v, size_t n, struct codec_vprep *p);
    /* Maps all of v[0..n) with p->param into p's arrays (room for n). */
    void (*map)(const double *v, size_t n, struct codec_vprep *p);
    /* Turns n decoded integers back into doubles; exceptions are patched
     * afterwards by the caller. OP_OK or OP_ECORRUPT. */
    int (*finish)(const int64_t *x, size_t n, unsigned param, double *v);
};

/* Encoder scratch for one block: one set of arrays per candidate (heap,
 * per call; the encoder's blocks are OP_CODEC_BLOCK_POINTS long). */
struct codec_vscratch {
    int64_t x[OP_CODEC_VAL_ENC_COUNT][OP_CODEC_BLOCK_POINTS];
    uint32_t epos[OP_CODEC_VAL_ENC_COUNT][OP_CODEC_BLOCK_POINTS];
    uint64_t ebits[OP_CODEC_VAL_ENC_COUNT][OP_CODEC_BLOCK_POINTS];
};

/* Decoder scratch for one block of up to OP_CODEC_MAX_BLOCK_POINTS. */
struct codec_dscratch {
    int64_t x[OP_CODEC_MAX_BLOCK_POINTS];
    uint32_t epos[OP_CODEC_MAX_BLOCK_POINTS];
};

/* Worst case of one value chunk: id, param, exception count, then an
 * integer chunk (the encoder falls back to the bit-pattern encoding
 * without exceptions when anything else would be larger). */
#define CODEC_VAL_BOUND(n) (3 + CODEC_IS_BOUND(n))

/* Encodes one block of values (n <= OP_CODEC_BLOCK_POINTS) with the
 * cheapest applicable encoding, or with *choice if it is below
 * OP_CODEC_VAL_ENC_COUNT (a second layout of the same block reuses the
 * first one's decision); *choice is set to the encoding used. OP_OK, or
 * OP_ETOOBIG if w overflowed. */
int codec__value_encode(const double *v, size_t n, enum codec_pack pack, struct cw *w,
                        struct codec_vscratch *s, uint8_t *choice, struct op_codec_stats *stats);
/* Decodes one value chunk of n values. OP_OK or OP_ECORRUPT. */
int codec__value_decode(struct cr *r, size_t n, double *v, struct codec_dscratch *s);

/* ---- entropy stages (codec_zstd.c) ------------------------------------ */

/* An optional whole-body stage. A stage keeps its contexts in a state
 * object that a codec context owns (state_create/state_destroy), so
 * repeated calls do not rebuild them. compress returns the compressed
 * length or a negative op_err (OP_ETOOBIG if it does not fit in cap, which
 * callers treat as "store the body as is"); decompress must produce
 * exactly out_len bytes or return OP_ECORRUPT. */
struct codec_stage {
    const char *name;
    uint8_t id; /* frame flags & CODEC_FLAG_STAGE_MASK */
    void *(*state_create)(void);
    void (*state_destroy)(void *st);
    long (*compress)(void *st, const uint8_t *in, size_t len, uint8_t *out, size_t cap);
    int (*decompress)(void *st, const uint8_t *in, size_t len, uint8_t *out, size_t out_len);
};

extern const struct codec_stage codec__stage_zstd;
/* Looks a stage up by its wire id; NULL if unknown (0 = none is not one). */
const struct codec_stage *codec__stage_find(unsigned id);

/* ---- checksum (codec_xxh.c) ------------------------------------------- */

uint32_t codec__checksum(const uint8_t *p, size_t n);

#endif
