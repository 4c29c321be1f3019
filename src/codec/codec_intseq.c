/*
 * The integer-sequence coder shared by timestamps and by the integers the
 * value encodings produce. A chunk picks one transform (none, delta,
 * delta-of-delta), then stores the residuals as frame of reference: a
 * minimum, a common divisor and fixed-width offsets, either bit-packed with
 * patched exceptions (PFOR, fast mode) or as byte planes (default mode,
 * where the entropy stage does the rest). All arithmetic wraps modulo 2^64,
 * so every int64 sequence round-trips, extremes included.
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

/* Median of up to 15 evenly spaced samples: the base byte planes are
 * centred on, so typical residuals are small after zigzag and stay in the
 * low plane instead of straddling a byte boundary. */
static int64_t center(const uint64_t *r, size_t n)
{
    int64_t s[15];
    size_t ns = n < 15 ? n : 15;
    for (size_t i = 0; i < ns; i++) {
        int64_t v = (int64_t)r[i * n / ns];
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

/* Estimated bits of the residuals of one transform, without writing:
 * bit-packed mode uses the exact PFOR size, plane mode the sum of
 * magnitudes, which tracks what an entropy coder will spend. */
static uint64_t estimate(const uint64_t *r, size_t m, size_t n, enum codec_pack pack)
{
    uint64_t bits = 8;
    for (size_t i = 0; i < m; i++)
        bits += 8 * codec__varint_len(zz_enc((int64_t)r[i]));
    if (m == n)
        return bits;
    int64_t mn = (int64_t)r[m], mx = mn;
    for (size_t i = m + 1; i < n; i++) {
        int64_t v = (int64_t)r[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    bits += 8 * (codec__varint_len(zz_enc(mn)) + 3);
    if (pack == PK_PLANES) {
        uint64_t sum = 0, c = (uint64_t)center(r + m, n - m);
        for (size_t i = m; i < n; i++)
            sum += bitlen64(zz_enc((int64_t)(r[i] - c)));
        /* A constant sequence costs nothing after the entropy stage; any
         * spread costs at least about a bit a value. */
        return bits + sum + (mx != mn ? (n - m) : 0);
    }
    unsigned hist[65] = { 0 };
    for (size_t i = m; i < n; i++)
        hist[bitlen64(r[i] - (uint64_t)mn)]++;
    unsigned wmax = 64;
    while (wmax > 0 && hist[wmax] == 0)
        wmax--;
    /* Exact PFOR cost for the best width ignoring the divisor. */
    uint64_t best = UINT64_MAX;
    for (unsigned w = 0; w <= wmax; w++) {
        uint64_t c = (uint64_t)(n - m) * w;
        for (unsigned b = w + 1; b <= wmax; b++)
            c += (uint64_t)hist[b] * (8 + 8 * ((b - w + 6) / 7));
        best = c < best ? c : best;
    }
    return bits + best;
}

/* Writes the chunk for transform xf. u is scratch of n values. Returns the
 * cost in bits (exact for bit packing, estimated for planes). */
static uint64_t write_chunk(const int64_t *x, size_t n, enum codec_xform xf,
                            enum codec_pack pack, struct cw *w, uint64_t *u,
                            struct codec_is_info *info)
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
    size_t cnt = n - m;
    uint64_t *r = u + m;
    int64_t mn = (int64_t)r[0];
    for (size_t i = 1; i < cnt; i++)
        mn = (int64_t)r[i] < mn ? (int64_t)r[i] : mn;
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
        int64_t c = center(r, cnt);
        /* Snap the centre onto the divisor's lattice through r[0]. */
        int64_t off = (int64_t)((uint64_t)c - r[0]);
        c = (int64_t)(r[0] + (uint64_t)(off / (int64_t)g * (int64_t)g));
        for (size_t i = 0; i < cnt; i++) {
            r[i] = zz_enc((int64_t)(r[i] - (uint64_t)c) / (int64_t)g);
            mx = r[i] > mx ? r[i] : mx;
        }
        mn = c;
    } else {
        for (size_t i = 0; i < cnt; i++) {
            r[i] = (r[i] - (uint64_t)mn) / g;
            mx = r[i] > mx ? r[i] : mx;
        }
    }
    unsigned width = bitlen64(mx);
    codec__put_varint(w, zz_enc(mn));
    codec__put_varint(w, g);
    if (pack == PK_PLANES) {
        cw_u8(w, width);
        unsigned nb = (width + 7) / 8;
        uint8_t *out = cw_reserve(w, (size_t)nb * cnt);
        if (out)
            codec__planepack(r, cnt, nb, out);
        info->width = width;
        return 8 * (w->len - start);
    }
    /* PFOR: the width that minimises packed bits plus exceptions. */
    unsigned hist[65] = { 0 };
    for (size_t i = 0; i < cnt; i++)
        hist[bitlen64(r[i])]++;
    uint64_t best = UINT64_MAX;
    unsigned bw = width;
    size_t nexc = 0;
    for (unsigned wd = 0; wd <= width; wd++) {
        uint64_t c = (uint64_t)cnt * wd;
        size_t ne = 0;
        for (unsigned b = wd + 1; b <= width; b++) {
            c += (uint64_t)hist[b] * (8 + 8 * ((b - wd + 6) / 7));
            ne += hist[b];
        }
        if (c < best) {
            best = c;
            bw = wd;
            nexc = ne;
        }
    }
    cw_u8(w, bw);
    codec__put_varint(w, nexc);
    uint8_t *out = cw_reserve(w, (cnt * bw + 7) / 8);
    if (out)
        codec__bitpack(r, cnt, bw, out);
    if (nexc) {
        size_t prev = 0;
        bool first = true;
        for (size_t i = 0; i < cnt; i++) {
            if (bw < 64 && (r[i] >> bw)) {
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

uint64_t codec__is_encode(const int64_t *x, size_t n, enum codec_pack pack, struct cw *w,
                          struct codec_is_info *info)
{
    uint64_t u[OP_CODEC_BLOCK_POINTS];
    struct codec_is_info tmp;
    enum codec_xform best = XF_NONE;
    uint64_t bestc = UINT64_MAX;
    for (int xf = XF_NONE; xf < XF_COUNT; xf++) {
        size_t m = residuals(x, n, (enum codec_xform)xf, u);
        uint64_t c = estimate(u, m, n, pack);
        if (c < bestc) {
            bestc = c;
            best = (enum codec_xform)xf;
        }
    }
    if (!info)
        info = &tmp;
    if (!w) {
        info->xform = best;
        info->width = 0;
        return bestc;
    }
    size_t start = w->len;
    uint64_t c = write_chunk(x, n, best, pack, w, u, info);
    /* The estimate ignores the divisor and exceptions' exact gaps, so a
     * pathological chunk could come out past the bound the frame promises;
     * then the plain transform, which never does, replaces it. */
    if (w->len - start > CODEC_IS_BOUND(n) - 16 && best != XF_NONE) {
        w->len = start;
        c = write_chunk(x, n, XF_NONE, pack, w, u, info);
    }
    return pack == PK_BITS ? c : bestc;
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
