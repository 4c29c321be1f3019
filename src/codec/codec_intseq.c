/*
 * The integer-sequence coder shared by timestamps and by the integers the
 * value encodings produce. A chunk picks one transform (none, delta,
 * delta-of-delta), then stores the residuals as frame of reference: a
 * minimum, a common divisor and fixed-width offsets, either bit-packed with
 * patched exceptions (PFOR, fast mode) or as byte planes (default mode,
 * where the entropy stage does the rest). All arithmetic wraps modulo 2^64,
 * so every int64 sequence round-trips, extremes included.
 *
 * The encoder plans before it writes: two passes over the input cost all
 * three transforms at once (ranges, then bit-length histograms or
 * magnitudes), and the write reuses the winner's minimum and histogram
 * instead of estimating again.
 */
#include <string.h>

#include "codec_int.h"

/* kind byte: bits 0-1 transform, bits 2-3 packing, bits 4-7 zero. */
#define KIND(xf, pk) ((unsigned)(xf) | (unsigned)(pk) << 2)

/* Residuals of transform xf: the first `order` values become heads, the
 * rest residuals r[order..n) (as uint64, wrapping). Returns the order. */
static size_t residuals(const int64_t *x, size_t n, enum codec_xform xf, uint64_t *r)
{
    const uint64_t *ux = (const uint64_t *)x;
    size_t m = (size_t)xf < n ? (size_t)xf : n;
    for (size_t i = 0; i < m; i++)
        r[i] = ux[i];
    if (xf == XF_NONE) {
        memcpy(r, ux, n * sizeof *r);
    } else if (xf == XF_DELTA) {
        for (size_t i = 1; i < n; i++)
            r[i] = ux[i] - ux[i - 1];
    } else {
        if (n > 1)
            r[1] = ux[1] - ux[0];
        for (size_t i = 2; i < n; i++)
            r[i] = (ux[i] - ux[i - 1]) - (ux[i - 1] - ux[i - 2]);
    }
    return m;
}

/* Residual j (j >= the transform's order) computed from x in place. */
static inline uint64_t resid_at(const uint64_t *ux, enum codec_xform xf, size_t j)
{
    if (xf == XF_NONE)
        return ux[j];
    if (xf == XF_DELTA)
        return ux[j] - ux[j - 1];
    return (ux[j] - ux[j - 1]) - (ux[j - 1] - ux[j - 2]);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* |a - b| for signed values, exact in uint64. */
static inline uint64_t absdiff(int64_t a, int64_t b)
{
    return a >= b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
}

/* Exact division by g of values known to be multiples of g, without a
 * hardware divide per value: shift out g's factor of two, then multiply by
 * the inverse of its odd part modulo 2^64 (exact for multiples; Granlund &
 * Montgomery 1994). */
struct exact_div {
    unsigned shift;
    uint64_t inv;
};

static struct exact_div exact_div_init(uint64_t g)
{
    struct exact_div d;
    d.shift = (unsigned)__builtin_ctzll(g);
    uint64_t odd = g >> d.shift, inv = odd;
    /* Newton's iteration doubles the correct low bits: 3 → 6 → … → 96. */
    for (int i = 0; i < 5; i++)
        inv *= 2 - odd * inv;
    d.inv = inv;
    return d;
}

static inline uint64_t exact_udiv(uint64_t v, struct exact_div d)
{
    return (v >> d.shift) * d.inv;
}

static inline int64_t exact_sdiv(int64_t v, struct exact_div d)
{
    return (int64_t)((uint64_t)(v >> d.shift) * d.inv);
}

/* Median of up to 15 evenly spaced samples of the residuals r[m..n) of xf:
 * the base byte planes are centred on, so typical residuals are small after
 * zigzag and stay in the low plane instead of straddling a byte boundary. */
static int64_t center(const uint64_t *ux, enum codec_xform xf, size_t m, size_t n)
{
    int64_t s[15];
    size_t cnt = n - m, ns = cnt < 15 ? cnt : 15;
    for (size_t i = 0; i < ns; i++) {
        int64_t v = (int64_t)resid_at(ux, xf, m + i * cnt / ns);
        size_t j = i;
        for (; j > 0 && s[j - 1] > v; j--)
            s[j] = s[j - 1];
        s[j] = v;
    }
    return s[ns / 2];
}

/* Common divisor of r[i] - r[0] over the block. A sample first: its gcd is a
 * multiple of the block's, so a sample gcd of 1 settles it in a few steps,
 * and only series on a coarse grid (sensor steps) pay a full pass. */
static uint64_t common_divisor(const uint64_t *r, size_t n)
{
    if (n < 2)
        return 1;
    int64_t r0 = (int64_t)r[0];
    uint64_t g = 0;
    size_t step = n / 16 ? n / 16 : 1;
    for (size_t i = 1; i < n && g != 1; i += step)
        g = gcd64(absdiff((int64_t)r[i], r0), g);
    if (g <= 1)
        return 1;
    for (size_t i = 1; i < n && g != 1; i++) {
        uint64_t d = absdiff((int64_t)r[i], r0);
        if (d % g)
            g = gcd64(d, g);
    }
    return g ? g : 1;
}

/* The PFOR width for cnt residual offsets whose bit lengths (all <= wmax)
 * are in hist: the one that minimises packed bits plus exceptions, each
 * costed as a one-byte gap and the varint of its high bits. Among equal
 * costs the narrowest wins. With above(t) the count of offsets longer than
 * t bits, an exception's varint takes ceil((b - w) / 7) bytes, so
 *   cost(w) = cnt·w + 8·above(w) + 8·Σ_{k≥0} above(w + 7k),
 * and both sums come from two suffix passes instead of a pass per width. */
static uint64_t pfor_width(const unsigned *hist, unsigned wmax, size_t cnt, unsigned *bw_out,
                           size_t *nexc_out)
{
    uint64_t above[65 + 7], stride[65 + 7];
    for (unsigned t = wmax; t < wmax + 7; t++)
        above[t] = stride[t] = 0;
    uint64_t best = (uint64_t)cnt * wmax;
    unsigned bw = wmax;
    for (unsigned t = wmax; t-- > 0;) {
        above[t] = above[t + 1] + hist[t + 1];
        /* Every exception costs at least 16 bits, so once those alone
         * exceed the best, no narrower width can match it. */
        if (16 * above[t] > best)
            break;
        stride[t] = above[t] + stride[t + 7];
        uint64_t c = (uint64_t)cnt * t + 8 * (above[t] + stride[t]);
        if (c <= best) {
            best = c;
            bw = t;
        }
    }
    *bw_out = bw;
    *nexc_out = (size_t)above[bw];
    return best;
}

static inline void minmax(int64_t v, int64_t *mn, int64_t *mx)
{
    *mn = v < *mn ? v : *mn;
    *mx = v > *mx ? v : *mx;
}

/* Records in pl the transform with the lowest cost (the first on a tie)
 * and returns it. */
static enum codec_xform pick_cheapest(const uint64_t *cost, const int64_t *mn,
                                      struct codec_is_plan *pl)
{
    enum codec_xform best = XF_NONE;
    for (int xf = XF_NONE + 1; xf < XF_COUNT; xf++)
        if (cost[xf] < cost[best])
            best = (enum codec_xform)xf;
    pl->xform = best;
    pl->cost = cost[best];
    pl->mn = mn[best];
    return best;
}

/* Bit-packed estimate: the exact PFOR size of each transform's residuals
 * (ignoring the divisor), from one histogram pass over all three. */
static void plan_bits(const uint64_t *ux, size_t n, const int64_t *mn, const int64_t *mx,
                      uint64_t *cost, struct codec_is_plan *pl)
{
    unsigned hist[XF_COUNT][65];
    memset(hist, 0, sizeof hist);
    const uint64_t m0 = (uint64_t)mn[XF_NONE], m1 = (uint64_t)mn[XF_DELTA],
                   m2 = (uint64_t)mn[XF_DOD];
    if (n > 0)
        hist[XF_NONE][bitlen64(ux[0] - m0)]++;
    if (n > 1) {
        hist[XF_NONE][bitlen64(ux[1] - m0)]++;
        hist[XF_DELTA][bitlen64(ux[1] - ux[0] - m1)]++;
    }
    for (size_t i = 2; i < n; i++) {
        uint64_t d = ux[i] - ux[i - 1], dp = ux[i - 1] - ux[i - 2];
        hist[XF_NONE][bitlen64(ux[i] - m0)]++;
        hist[XF_DELTA][bitlen64(d - m1)]++;
        hist[XF_DOD][bitlen64(d - dp - m2)]++;
    }
    for (int xf = XF_NONE; xf < XF_COUNT; xf++) {
        size_t m = (size_t)xf < n ? (size_t)xf : n;
        if (m < n) {
            unsigned bw;
            size_t ne;
            unsigned wmax = bitlen64((uint64_t)mx[xf] - (uint64_t)mn[xf]);
            cost[xf] += pfor_width(hist[xf], wmax, n - m, &bw, &ne);
        }
    }
    enum codec_xform best = pick_cheapest(cost, mn, pl);
    pl->width = bitlen64((uint64_t)mx[best] - (uint64_t)mn[best]);
    memcpy(pl->hist, hist[best], sizeof pl->hist);
}

/* Byte-plane estimate: the sum of the residuals' magnitudes around each
 * transform's centre, which tracks what an entropy coder will spend; a
 * constant sequence costs nothing after the stage, any spread at least
 * about a bit a value. */
static void plan_planes(const uint64_t *ux, size_t n, const int64_t *mn, const int64_t *mx,
                        uint64_t *cost, struct codec_is_plan *pl)
{
    uint64_t c[XF_COUNT] = { 0, 0, 0 }, sum[XF_COUNT] = { 0, 0, 0 };
    for (int xf = XF_NONE; xf < XF_COUNT; xf++) {
        size_t m = (size_t)xf < n ? (size_t)xf : n;
        if (m < n)
            c[xf] = (uint64_t)center(ux, (enum codec_xform)xf, m, n);
    }
    if (n > 0)
        sum[XF_NONE] += bitlen64(zz_enc((int64_t)(ux[0] - c[XF_NONE])));
    if (n > 1) {
        sum[XF_NONE] += bitlen64(zz_enc((int64_t)(ux[1] - c[XF_NONE])));
        sum[XF_DELTA] += bitlen64(zz_enc((int64_t)(ux[1] - ux[0] - c[XF_DELTA])));
    }
    for (size_t i = 2; i < n; i++) {
        uint64_t d = ux[i] - ux[i - 1], dp = ux[i - 1] - ux[i - 2];
        sum[XF_NONE] += bitlen64(zz_enc((int64_t)(ux[i] - c[XF_NONE])));
        sum[XF_DELTA] += bitlen64(zz_enc((int64_t)(d - c[XF_DELTA])));
        sum[XF_DOD] += bitlen64(zz_enc((int64_t)(d - dp - c[XF_DOD])));
    }
    for (int xf = XF_NONE; xf < XF_COUNT; xf++) {
        size_t m = (size_t)xf < n ? (size_t)xf : n;
        if (m < n)
            cost[xf] += sum[xf] + (mx[xf] != mn[xf] ? n - m : 0);
    }
    pick_cheapest(cost, mn, pl);
}

uint64_t codec__is_plan(const int64_t *x, size_t n, enum codec_pack pack,
                        struct codec_is_plan *pl)
{
    const uint64_t *ux = (const uint64_t *)x;
    /* One pass finds every transform's residual range. */
    int64_t mn[XF_COUNT] = { INT64_MAX, INT64_MAX, INT64_MAX };
    int64_t mx[XF_COUNT] = { INT64_MIN, INT64_MIN, INT64_MIN };
    if (n > 0)
        minmax(x[0], &mn[XF_NONE], &mx[XF_NONE]);
    if (n > 1) {
        minmax(x[1], &mn[XF_NONE], &mx[XF_NONE]);
        minmax((int64_t)(ux[1] - ux[0]), &mn[XF_DELTA], &mx[XF_DELTA]);
    }
    for (size_t i = 2; i < n; i++) {
        uint64_t d = ux[i] - ux[i - 1], dp = ux[i - 1] - ux[i - 2];
        minmax(x[i], &mn[XF_NONE], &mx[XF_NONE]);
        minmax((int64_t)d, &mn[XF_DELTA], &mx[XF_DELTA]);
        minmax((int64_t)(d - dp), &mn[XF_DOD], &mx[XF_DOD]);
    }
    /* Fixed parts: kind byte, heads, and (with residuals) base, divisor,
     * width and exception count. */
    uint64_t cost[XF_COUNT];
    for (int xf = XF_NONE; xf < XF_COUNT; xf++) {
        size_t m = (size_t)xf < n ? (size_t)xf : n;
        cost[xf] = 8;
        if (m > 0)
            cost[xf] += 8 * codec__varint_len(zz_enc(x[0]));
        if (m > 1)
            cost[xf] += 8 * codec__varint_len(zz_enc((int64_t)(ux[1] - ux[0])));
        if (m < n)
            cost[xf] += 8 * (codec__varint_len(zz_enc(mn[xf])) + 3);
    }
    pl->pack = pack;
    if (pack == PK_BITS)
        plan_bits(ux, n, mn, mx, cost, pl);
    else
        plan_planes(ux, n, mn, mx, cost, pl);
    return pl->cost;
}

/* Writes the chunk for transform xf. u is scratch of n values; pl, if it
 * planned this transform, saves recomputing its minimum and histogram.
 * Returns the cost in bits (exact for bit packing, estimated for planes). */
static uint64_t write_chunk(const int64_t *x, size_t n, enum codec_xform xf,
                            enum codec_pack pack, struct cw *w, uint64_t *u,
                            struct codec_is_info *info, const struct codec_is_plan *pl)
{
    size_t start = w->len;
    size_t m = residuals(x, n, xf, u);
    cw_u8(w, KIND(xf, pack));
    for (size_t i = 0; i < m; i++)
        codec__put_varint(w, zz_enc((int64_t)u[i]));
    info->xform = xf;
    info->width = 0;
    if (m == n)
        return 8 * (w->len - start);
    if (pl && (pl->xform != xf || pl->pack != pack))
        pl = NULL;
    size_t cnt = n - m;
    uint64_t *r = u + m;
    int64_t mn;
    if (pl) {
        mn = pl->mn;
    } else {
        mn = (int64_t)r[0];
        for (size_t i = 1; i < cnt; i++)
            mn = (int64_t)r[i] < mn ? (int64_t)r[i] : mn;
    }
    uint64_t g = common_divisor(r, cnt);
    uint64_t mx = 0;
    if (pack == PK_PLANES) {
        int64_t mxs = mn;
        for (size_t i = 0; i < cnt; i++)
            mxs = (int64_t)r[i] > mxs ? (int64_t)r[i] : mxs;
        /* Signed division by the divisor is exact only while differences
         * fit in int64; wider blocks keep a divisor of 1, which wraps
         * correctly. */
        if ((uint64_t)mxs - (uint64_t)mn >= (uint64_t)1 << 63)
            g = 1;
        int64_t c = center(u, XF_NONE, m, n);
        /* Snap the centre onto the divisor's lattice through r[0]. */
        int64_t off = (int64_t)((uint64_t)c - r[0]);
        c = (int64_t)(r[0] + (uint64_t)(off / (int64_t)g * (int64_t)g));
        struct exact_div dv = exact_div_init(g);
        for (size_t i = 0; i < cnt; i++) {
            r[i] = zz_enc(exact_sdiv((int64_t)(r[i] - (uint64_t)c), dv));
            mx = r[i] > mx ? r[i] : mx;
        }
        unsigned width = bitlen64(mx);
        codec__put_varint(w, zz_enc(c));
        codec__put_varint(w, g);
        cw_u8(w, width);
        unsigned nb = (width + 7) / 8;
        uint8_t *out = cw_reserve(w, (size_t)nb * cnt);
        if (out)
            codec__planepack(r, cnt, nb, out);
        info->width = width;
        return 8 * (w->len - start);
    }
    /* Offsets from the minimum, in units of the divisor; with a divisor of
     * 1 the plan's histogram already describes them. */
    unsigned hist_own[65];
    const unsigned *hist;
    unsigned width;
    if (g == 1 && pl) {
        for (size_t i = 0; i < cnt; i++)
            r[i] -= (uint64_t)mn;
        hist = pl->hist;
        width = pl->width;
    } else {
        struct exact_div dv = exact_div_init(g);
        memset(hist_own, 0, sizeof hist_own);
        for (size_t i = 0; i < cnt; i++) {
            r[i] = exact_udiv(r[i] - (uint64_t)mn, dv);
            hist_own[bitlen64(r[i])]++;
            mx |= r[i];
        }
        hist = hist_own;
        width = bitlen64(mx);
    }
    unsigned bw;
    size_t nexc;
    pfor_width(hist, width, cnt, &bw, &nexc);
    codec__put_varint(w, zz_enc(mn));
    codec__put_varint(w, g);
    cw_u8(w, bw);
    codec__put_varint(w, nexc);
    uint8_t *out = cw_reserve(w, (cnt * bw + 7) / 8);
    if (out)
        codec__bitpack(r, cnt, bw, out);
    if (nexc) {
        size_t prev = 0;
        bool first = true;
        for (size_t i = 0; i < cnt; i++) {
            if (r[i] >> bw) {
                codec__put_varint(w, first ? i : i - prev - 1);
                codec__put_varint(w, r[i] >> bw);
                prev = i;
                first = false;
            }
        }
    }
    info->width = bw;
    return 8 * (w->len - start);
}

uint64_t codec__is_write(const int64_t *x, size_t n, enum codec_pack pack,
                         const struct codec_is_plan *pl, struct cw *w,
                         struct codec_is_info *info)
{
    uint64_t u[OP_CODEC_BLOCK_POINTS];
    struct codec_is_info tmp;
    if (!info)
        info = &tmp;
    struct cw_mark start = cw_mark(w);
    uint64_t c = write_chunk(x, n, pl->xform, pack, w, u, info, pl);
    /* The estimate ignores the divisor and exceptions' exact gaps, so a
     * pathological chunk could come out past the bound the frame promises;
     * then the plain transform, which never does, replaces it. */
    if (cw_since(w, start) > CODEC_IS_BOUND(n) - 16 && pl->xform != XF_NONE) {
        cw_rewind(w, start);
        c = write_chunk(x, n, XF_NONE, pack, w, u, info, NULL);
    }
    return pack == PK_BITS ? c : pl->cost;
}

uint64_t codec__is_encode(const int64_t *x, size_t n, enum codec_pack pack, struct cw *w,
                          struct codec_is_info *info)
{
    struct codec_is_plan pl;
    codec__is_plan(x, n, pack, &pl);
    if (!w) {
        if (info) {
            info->xform = pl.xform;
            info->width = 0;
        }
        return pl.cost;
    }
    return codec__is_write(x, n, pack, &pl, w, info);
}

int codec__is_decode(struct cr *r, size_t n, int64_t *x)
{
    uint64_t *u = (uint64_t *)x;
    unsigned kind;
    if (cr_u8(r, &kind) || (kind >> 4) != 0)
        return OP_ECORRUPT;
    unsigned xf = kind & 3, pack = (kind >> 2) & 3;
    if (xf >= XF_COUNT || pack >= PK_COUNT)
        return OP_ECORRUPT;
    size_t m = xf < n ? xf : n;
    uint64_t head[2] = { 0, 0 };
    for (size_t i = 0; i < m; i++) {
        uint64_t v;
        if (codec__get_varint(r, &v))
            return OP_ECORRUPT;
        head[i] = (uint64_t)zz_dec(v);
    }
    size_t cnt = n - m;
    if (cnt) {
        uint64_t zmin, g, nexc = 0;
        unsigned width;
        if (codec__get_varint(r, &zmin) || codec__get_varint(r, &g) || g == 0 ||
            cr_u8(r, &width) || width > 64)
            return OP_ECORRUPT;
        uint64_t *res = u + m;
        if (pack == PK_PLANES) {
            unsigned nb = (width + 7) / 8;
            const uint8_t *in = cr_take(r, (size_t)nb * cnt);
            if (!in)
                return OP_ECORRUPT;
            codec__planeunpack(in, cnt, nb, res);
            /* Planes hold zigzag offsets from a base (see write_chunk). */
            uint64_t base = (uint64_t)zz_dec(zmin);
            for (size_t i = 0; i < cnt; i++)
                res[i] = base + (uint64_t)zz_dec(res[i]) * g;
        } else {
            if (codec__get_varint(r, &nexc) || nexc > cnt || (nexc && width == 64))
                return OP_ECORRUPT;
            const uint8_t *in = cr_take(r, (cnt * width + 7) / 8);
            if (!in)
                return OP_ECORRUPT;
            codec__bitunpack(in, cnt, width, res);
            size_t pos = 0;
            for (uint64_t e = 0; e < nexc; e++) {
                uint64_t gap, hi;
                if (codec__get_varint(r, &gap) || codec__get_varint(r, &hi))
                    return OP_ECORRUPT;
                /* Positions strictly increase and stay inside the chunk. */
                if (gap >= cnt - (e ? pos + 1 : 0))
                    return OP_ECORRUPT;
                pos = e ? pos + 1 + (size_t)gap : (size_t)gap;
                res[pos] |= hi << width;
            }
            uint64_t mn = (uint64_t)zz_dec(zmin);
            if (g == 1) {
                for (size_t i = 0; i < cnt; i++)
                    res[i] += mn;
            } else {
                for (size_t i = 0; i < cnt; i++)
                    res[i] = res[i] * g + mn;
            }
        }
    }
    for (size_t i = 0; i < m; i++)
        u[i] = head[i];
    if (xf == XF_DELTA) {
        for (size_t i = 1; i < n; i++)
            u[i] += u[i - 1];
    } else if (xf == XF_DOD && n > 1) {
        uint64_t d = u[1];
        u[1] = u[0] + d;
        for (size_t i = 2; i < n; i++) {
            d += u[i];
            u[i] = u[i - 1] + d;
        }
    }
    return OP_OK;
}
