/*
 * Value encodings for float64 blocks, one vtable each, chosen per block by
 * estimated cost. Most sensor values are short decimals, so the decimal
 * encoding (as ALP does) finds an exponent e with v == k / 10^e for integer
 * k and hands the k to the integer coder; values that do not fit are kept
 * verbatim as exceptions. DECIMAL32 does the same for float32 readings
 * widened to double, whose decimal form lives in float32 precision. XOR
 * (Gorilla/Chimp family) and BITS (the bit patterns as integers) cover
 * genuine binary floats. Every encoding is checked bit for bit at encode
 * time, so any bit pattern (signed zeros, subnormals, infinities, NaN
 * payloads) round-trips.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "codec_int.h"

/* Powers of ten are exact doubles up to 1e22, so k / 10^e is one correctly
 * rounded IEEE division: the double nearest to the decimal k·10^-e, which
 * is what any correct decimal parser returns for the same digits. */
static const double p10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                              1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                              1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
#define DEC_MAX_E 22
/* Exponents the encoder searches; beyond this a block's integers are as
 * wide as its bit patterns, so the binary encodings win anyway. */
#define DEC_SEARCH_E 18
#define SAMPLES 32

static inline uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Round to nearest even for |y| < 2^51 without libm or a conversion that
 * could overflow: adding 1.5·2^52 leaves no fraction bits. */
static inline int64_t round_small(double y)
{
    return (int64_t)((y + 6755399441055744.0) - 6755399441055744.0);
}

static inline bool dec_try(double v, unsigned e, int64_t *k)
{
    double y = v * p10[e];
    if (!(fabs(y) < 2251799813685248.0)) /* 2^51; also rejects NaN */
        return false;
    int64_t kk = round_small(y);
    if (dbits((double)kk / p10[e]) != dbits(v))
        return false;
    *k = kk;
    return true;
}

static inline bool is_f32(double v)
{
    if (!(fabs(v) <= FLT_MAX))
        return false;
    return dbits((double)(float)v) == dbits(v);
}

static inline bool dec32_back(int64_t k, unsigned e, double *out)
{
    double back = (double)k / p10[e];
    /* Converting a double outside float's range is undefined in C. */
    if (!(fabs(back) <= FLT_MAX))
        return false;
    *out = (double)(float)back;
    return true;
}

static inline bool dec32_try(double v, unsigned e, int64_t *k)
{
    if (!is_f32(v))
        return false;
    double y = v * p10[e];
    if (!(fabs(y) < 2251799813685248.0))
        return false;
    int64_t kk = round_small(y);
    double back;
    if (!dec32_back(kk, e, &back) || dbits(back) != dbits(v))
        return false;
    *k = kk;
    return true;
}

typedef bool (*try_fn)(double, unsigned, int64_t *);

/* Picks the exponent for a block from a sample, trading exceptions
 * (about 72 bits each) against integers about 3.3 bits wider per extra
 * decimal, the way ALP samples a row group. Returns false if no exponent
 * fits more than half of the sample. */
static bool pick_exponent(const double *v, size_t n, try_fn try, unsigned *e_out,
                          uint64_t *cost_out)
{
    size_t ns = n < SAMPLES ? n : SAMPLES;
    unsigned hist[DEC_SEARCH_E + 2] = { 0 };
    for (size_t s = 0; s < ns; s++) {
        const double x = v[s * n / ns];
        int64_t k;
        unsigned e = 0;
        while (e <= DEC_SEARCH_E && !try(x, e, &k))
            e++;
        hist[e]++;
        /* Once half the sample fits no exponent, no choice can fit more
         * than half: binary floats stop here instead of trying every
         * exponent on every sample. */
        if (hist[DEC_SEARCH_E + 1] * 2 >= ns)
            return false;
    }
    unsigned best_e = 0, fit = 0;
    uint64_t best = UINT64_MAX;
    for (unsigned e = 0; e <= DEC_SEARCH_E; e++) {
        fit += hist[e];
        uint64_t cost = (uint64_t)(ns - fit) * 72 * 10 + (uint64_t)ns * e * 33;
        if (cost < best) {
            best = cost;
            best_e = e;
        }
    }
    size_t fitting = 0;
    for (unsigned e = 0; e <= best_e; e++)
        fitting += hist[e];
    *e_out = best_e;
    *cost_out = best;
    return fitting * 2 > ns;
}

static void map_decimal_with(const double *v, size_t n, struct codec_vprep *p, try_fn try)
{
    const unsigned e = p->param;
    p->nexc = 0;
    int64_t last = 0;
    bool have = false;
    for (size_t i = 0; i < n; i++) {
        int64_t k;
        if (try(v[i], e, &k)) {
            if (!have) {
                /* Leading exceptions take the first fitting integer so the
                 * sequence stays smooth. */
                for (size_t j = 0; j < i; j++)
                    p->x[j] = k;
                have = true;
            }
            p->x[i] = last = k;
        } else {
            p->epos[p->nexc] = (uint32_t)i;
            p->ebits[p->nexc++] = dbits(v[i]);
            p->x[i] = last;
        }
    }
}

static bool probe_decimal(const double *v, size_t n, struct codec_vprep *p)
{
    return pick_exponent(v, n, dec_try, &p->param, &p->est);
}

static void map_decimal(const double *v, size_t n, struct codec_vprep *p)
{
    map_decimal_with(v, n, p, dec_try);
}

static bool probe_decimal32(const double *v, size_t n, struct codec_vprep *p)
{
    /* Only worth trying when the block is float32 data to begin with. */
    size_t step = n / 8 ? n / 8 : 1;
    for (size_t i = 0; i < n; i += step)
        if (!is_f32(v[i]))
            return false;
    return pick_exponent(v, n, dec32_try, &p->param, &p->est);
}

static void map_decimal32(const double *v, size_t n, struct codec_vprep *p)
{
    map_decimal_with(v, n, p, dec32_try);
}

static int fin_decimal(const int64_t *x, size_t n, unsigned e, double *v)
{
    const double d = p10[e];
    for (size_t i = 0; i < n; i++)
        v[i] = (double)x[i] / d;
    return OP_OK;
}

static int fin_decimal32(const int64_t *x, size_t n, unsigned e, double *v)
{
    for (size_t i = 0; i < n; i++)
        if (!dec32_back(x[i], e, &v[i]))
            return OP_ECORRUPT;
    return OP_OK;
}

/* Common trailing zero bits of all nonzero u: float32 data widened to
 * double, or integers stored as doubles, have many. */
static unsigned common_tz(const uint64_t *u, size_t n)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= u[i];
    return acc ? (unsigned)__builtin_ctzll(acc) : 0;
}

static bool probe_binary(const double *v, size_t n, struct codec_vprep *p)
{
    (void)v;
    (void)n;
    p->param = 0;
    p->est = 0;
    return true;
}

static void map_xor(const double *v, size_t n, struct codec_vprep *p)
{
    uint64_t *u = (uint64_t *)p->x;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = dbits(v[i]);
        u[i] = b ^ prev;
        prev = b;
    }
    p->param = common_tz(u, n);
    for (size_t i = 0; i < n; i++)
        u[i] >>= p->param;
    p->nexc = 0;
}

static int fin_xor(const int64_t *x, size_t n, unsigned sh, double *v)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        prev ^= (uint64_t)x[i] << sh;
        v[i] = bitsd(prev);
    }
    return OP_OK;
}

static void map_bits(const double *v, size_t n, struct codec_vprep *p)
{
    uint64_t *u = (uint64_t *)p->x;
    for (size_t i = 0; i < n; i++)
        u[i] = dbits(v[i]);
    p->param = common_tz(u, n);
    for (size_t i = 0; i < n; i++)
        u[i] >>= p->param;
    p->nexc = 0;
}

static int fin_bits(const int64_t *x, size_t n, unsigned sh, double *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = bitsd((uint64_t)x[i] << sh);
    return OP_OK;
}

/* Indexed by wire id, in the order the encoder tries them. */
static const struct codec_venc vencs[OP_CODEC_VAL_ENC_COUNT] = {
    [OP_CODEC_VAL_DECIMAL] = { "decimal", OP_CODEC_VAL_DECIMAL, DEC_MAX_E, -1, probe_decimal,
                               map_decimal, fin_decimal },
    [OP_CODEC_VAL_DECIMAL32] = { "decimal32", OP_CODEC_VAL_DECIMAL32, DEC_MAX_E,
                                 OP_CODEC_VAL_DECIMAL, probe_decimal32, map_decimal32,
                                 fin_decimal32 },
    [OP_CODEC_VAL_XOR] = { "xor", OP_CODEC_VAL_XOR, 63, -1, probe_binary, map_xor, fin_xor },
    [OP_CODEC_VAL_BITS] = { "bits", OP_CODEC_VAL_BITS, 63, -1, probe_binary, map_bits, fin_bits },
};

const char *op_codec_val_enc_name(int enc)
{
    if (enc < 0 || enc >= OP_CODEC_VAL_ENC_COUNT)
        return "unknown";
    return vencs[enc].name;
}

static uint64_t exc_cost(const struct codec_vprep *p)
{
    uint64_t bits = 8 * codec__varint_len(p->nexc);
    uint32_t prev = 0;
    for (size_t i = 0; i < p->nexc; i++) {
        uint32_t gap = i ? p->epos[i] - prev - 1 : p->epos[i];
        bits += 8 * (8 + codec__varint_len(gap));
        prev = p->epos[i];
    }
    return bits;
}

static void write_chunk(const struct codec_venc *ve, const struct codec_vprep *p, size_t n,
                        enum codec_pack pack, const struct codec_is_plan *pl, struct cw *w)
{
    cw_u8(w, ve->id);
    cw_u8(w, p->param);
    codec__put_varint(w, p->nexc);
    uint32_t prev = 0;
    for (size_t i = 0; i < p->nexc; i++) {
        codec__put_varint(w, i ? p->epos[i] - prev - 1 : p->epos[i]);
        prev = p->epos[i];
    }
    for (size_t i = 0; i < p->nexc; i++) {
        uint8_t *b = cw_reserve(w, 8);
        if (b)
            op_le64_put(b, p->ebits[i]);
    }
    codec__is_write(p->x, n, pack, pl, w, NULL);
}

/* The bit-pattern encoding, which never exceeds CODEC_VAL_BOUND(n). */
static void write_bits(const double *v, size_t n, enum codec_pack pack, struct codec_vprep *p,
                       struct cw *w)
{
    struct codec_is_plan pl;
    map_bits(v, n, p);
    codec__is_plan(p->x, n, pack, &pl);
    write_chunk(&vencs[OP_CODEC_VAL_BITS], p, n, pack, &pl, w);
}

int codec__value_encode(const double *v, size_t n, enum codec_pack pack, struct cw *w,
                        struct codec_vscratch *s, uint8_t *choice, struct op_codec_stats *stats)
{
    struct codec_vprep prep[OP_CODEC_VAL_ENC_COUNT];
    struct codec_is_plan plan[OP_CODEC_VAL_ENC_COUNT];
    bool probed[OP_CODEC_VAL_ENC_COUNT] = { false };
    const bool forced = *choice < OP_CODEC_VAL_ENC_COUNT;
    int best = -1;
    uint64_t bestc = UINT64_MAX;
    for (int id = 0; id < OP_CODEC_VAL_ENC_COUNT; id++) {
        prep[id].x = s->x[id];
        prep[id].epos = s->epos[id];
        prep[id].ebits = s->ebits[id];
        prep[id].nexc = 0;
    }
    for (int id = 0; id < OP_CODEC_VAL_ENC_COUNT; id++) {
        const struct codec_venc *ve = &vencs[id];
        struct codec_vprep *p = &prep[id];
        if (forced && id != *choice)
            continue;
        /* Binary encodings are only tried when the decimal ones struggle:
         * many exceptions, or integers wider than 32 bits a value. */
        if (id >= OP_CODEC_VAL_XOR && best >= 0 && prep[best].nexc * 16 <= n &&
            bestc <= (uint64_t)n * 32)
            break;
        if (!ve->probe(v, n, p))
            continue;
        probed[id] = true;
        /* A refinement that does not beat its base on the sample would
         * map the same integers: skip the full pass and its costing. */
        if (!forced && ve->refines >= 0 && probed[ve->refines] && p->est >= prep[ve->refines].est)
            continue;
        ve->map(v, n, p);
        uint64_t c = exc_cost(p) + codec__is_plan(p->x, n, pack, &plan[id]);
        if (c < bestc) {
            bestc = c;
            best = id;
        }
    }
    struct cw_mark start = cw_mark(w);
    if (best < 0) {
        /* A forced decimal choice that no longer applies (cannot happen for
         * the same block, but keeps the contract total). */
        best = OP_CODEC_VAL_BITS;
        write_bits(v, n, pack, &prep[best], w);
    } else {
        write_chunk(&vencs[best], &prep[best], n, pack, &plan[best], w);
    }
    if (cw_since(w, start) > CODEC_VAL_BOUND(n) && best != OP_CODEC_VAL_BITS) {
        /* Keeps the frame bound: bit patterns without exceptions never
         * exceed it. The attempt may have run past the end of w, which
         * is sized by that bound, so its overflow goes with it. */
        cw_rewind(w, start);
        best = OP_CODEC_VAL_BITS;
        write_bits(v, n, pack, &prep[best], w);
    }
    if (w->ovf)
        return OP_ETOOBIG;
    *choice = (uint8_t)best;
    if (stats) {
        stats->val_enc[best]++;
        stats->exceptions += prep[best].nexc;
    }
    return OP_OK;
}

int codec__value_decode(struct cr *r, size_t n, double *v, struct codec_dscratch *s)
{
    unsigned id, param;
    uint64_t nexc;
    if (cr_u8(r, &id) || id >= OP_CODEC_VAL_ENC_COUNT || cr_u8(r, &param) ||
        param > vencs[id].max_param || codec__get_varint(r, &nexc) || nexc > n)
        return OP_ECORRUPT;
    uint32_t *epos = s->epos;
    size_t pos = 0;
    for (uint64_t i = 0; i < nexc; i++) {
        uint64_t gap;
        if (codec__get_varint(r, &gap) || gap >= n - (i ? pos + 1 : 0))
            return OP_ECORRUPT;
        pos = i ? pos + 1 + (size_t)gap : (size_t)gap;
        epos[i] = (uint32_t)pos;
    }
    const uint8_t *ebytes = cr_take(r, (size_t)nexc * 8);
    if (!ebytes)
        return OP_ECORRUPT;
    int64_t *x = s->x;
    int rc = codec__is_decode(r, n, x);
    if (rc == OP_OK)
        rc = vencs[id].finish(x, n, param, v);
    if (rc != OP_OK)
        return rc;
    for (uint64_t i = 0; i < nexc; i++)
        v[epos[i]] = bitsd(op_le64_get(ebytes + 8 * i));
    return OP_OK;
}
