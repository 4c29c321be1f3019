/*
 * Tests for src/codec/codec_bits.c and codec_intseq.c: varints at every
 * length and their corrupt forms, bit packing at every width, byte planes,
 * integer-sequence chunks on extreme sequences in both packings, exact
 * division by every kind of common divisor, and the PFOR width the planner
 * picks against a brute-force search.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec_int.h"

static void test_varint(void **state)
{
    (void)state;
    static const uint64_t vals[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63,
                                     UINT64_MAX };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[16];
        struct cw w;
        cw_init(&w, buf, sizeof buf);
        codec__put_varint(&w, vals[i]);
        assert_false(w.ovf);
        assert_int_equal(w.len, codec__varint_len(vals[i]));
        struct cr r = { buf, w.len, 0 };
        uint64_t got;
        assert_int_equal(codec__get_varint(&r, &got), OP_OK);
        assert_true(got == vals[i]);
        /* Every truncation fails. */
        for (size_t cut = 0; cut < w.len; cut++) {
            struct cr t = { buf, cut, 0 };
            assert_int_equal(codec__get_varint(&t, &got), OP_ECORRUPT);
        }
    }
    /* Eleven continuation bytes, and a tenth byte that overflows. */
    uint8_t bad[11];
    memset(bad, 0xff, sizeof bad);
    struct cr r = { bad, sizeof bad, 0 };
    uint64_t got;
    assert_int_equal(codec__get_varint(&r, &got), OP_ECORRUPT);
    bad[9] = 0x02;
    struct cr r2 = { bad, 10, 0 };
    assert_int_equal(codec__get_varint(&r2, &got), OP_ECORRUPT);
}

static void test_bitpack_every_width(void **state)
{
    (void)state;
    uint64_t u[67], back[67];
    uint8_t buf[67 * 8 + 8];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned w = 0; w <= 64; w++) {
        for (size_t n = 0; n <= 67; n += 1 + (n > 10) * 13) {
            uint64_t mask = w == 64 ? ~(uint64_t)0 : (((uint64_t)1 << w) - 1);
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                u[i] = x & mask;
            }
            memset(buf, 0xaa, sizeof buf);
            codec__bitpack(u, n, w, buf);
            size_t nbytes = (n * w + 7) / 8;
            /* Nothing is written past the packed size. */
            assert_int_equal(buf[nbytes], 0xaa);
            codec__bitunpack(buf, n, w, back);
            assert_memory_equal(back, u, n * sizeof *u);
        }
    }
}

static void test_planes(void **state)
{
    (void)state;
    uint64_t u[100], back[100];
    uint8_t buf[800];
    for (unsigned nb = 0; nb <= 8; nb++) {
        for (size_t i = 0; i < 100; i++)
            u[i] = nb == 8 ? ~(uint64_t)i * 0x0101010101010101ull
                           : (i * 0x0123456789abcdefull) & ((((uint64_t)1 << (8 * nb)) - 1));
        codec__planepack(u, 100, nb, buf);
        codec__planeunpack(buf, 100, nb, back);
        assert_memory_equal(back, u, sizeof u);
    }
}

static void is_roundtrip(const int64_t *x, size_t n)
{
    for (int pack = 0; pack < PK_COUNT; pack++) {
        uint8_t buf[CODEC_IS_BOUND(OP_CODEC_BLOCK_POINTS)];
        struct cw w;
        cw_init(&w, buf, sizeof buf);
        codec__is_encode(x, n, (enum codec_pack)pack, &w, NULL);
        assert_false(w.ovf);
        assert_true(w.len <= CODEC_IS_BOUND(n));
        int64_t back[OP_CODEC_BLOCK_POINTS];
        struct cr r = { buf, w.len, 0 };
        assert_int_equal(codec__is_decode(&r, n, back), OP_OK);
        assert_int_equal(r.pos, w.len);
        assert_memory_equal(back, x, n * sizeof *x);
        /* A chunk cut short is corrupt, never an overread. */
        for (size_t cut = 0; cut < w.len; cut += 1 + w.len / 50) {
            struct cr t = { buf, cut, 0 };
            assert_int_equal(codec__is_decode(&t, n, back), OP_ECORRUPT);
        }
    }
}

static void test_intseq_extremes(void **state)
{
    (void)state;
    int64_t x[OP_CODEC_BLOCK_POINTS];
    for (int shape = 0; shape < 8; shape++) {
        for (size_t i = 0; i < OP_CODEC_BLOCK_POINTS; i++) {
            switch (shape) {
            case 0: x[i] = i % 2 ? INT64_MAX : INT64_MIN; break;
            case 1: x[i] = INT64_MAX - (int64_t)i; break;
            case 2: x[i] = (int64_t)i * 5 - 1000; break;         /* divisor 5 */
            case 3: x[i] = i == 500 ? INT64_MIN : 7; break;       /* one huge exception */
            case 4: x[i] = (int64_t)(i * i * 3); break;           /* constant second difference */
            case 5: x[i] = (int64_t)((uint64_t)i * 0x9e3779b97f4a7c15ull); break;
            case 6: x[i] = i % 3 ? 0 : (int64_t)1 << 62; break;
            default: x[i] = -(int64_t)(i << 52); break; /* wide, stride 2^52 */
            }
        }
        for (size_t n = 1; n <= OP_CODEC_BLOCK_POINTS; n = n * 3 + 1)
            is_roundtrip(x, n);
        is_roundtrip(x, OP_CODEC_BLOCK_POINTS);
    }
}

static uint64_t xs_state = 0x243f6a8885a308d3ull;

static uint64_t xs(void)
{
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return xs_state;
}

/* Multiples of a common divisor (odd, even, a power of two, huge) around
 * a base of either sign, within int64: they round-trip, and bit-packed,
 * the divisor shrinks them to the multipliers' few bits. */
static void test_intseq_divisors(void **state)
{
    (void)state;
    static const uint64_t divs[] = { 2, 3, 5, 6, 1000, 3u << 10, (uint64_t)1 << 40,
                                     450283905890997363ull /* 3^37 */, (uint64_t)1 << 58 };
    static const int64_t bases[] = { 0, -1000003, INT64_MIN / 2, INT64_MAX - ((int64_t)1 << 62) };
    int64_t x[OP_CODEC_BLOCK_POINTS];
    for (size_t d = 0; d < sizeof divs / sizeof divs[0]; d++) {
        for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
            for (size_t i = 0; i < OP_CODEC_BLOCK_POINTS; i++)
                x[i] = (int64_t)((uint64_t)bases[b] + (xs() % 16 - 8) * divs[d]);
            for (size_t n = 2; n <= OP_CODEC_BLOCK_POINTS; n = n * 4 + 3)
                is_roundtrip(x, n);
            uint8_t buf[CODEC_IS_BOUND(OP_CODEC_BLOCK_POINTS)];
            struct cw w;
            cw_init(&w, buf, sizeof buf);
            codec__is_encode(x, OP_CODEC_BLOCK_POINTS, PK_BITS, &w, NULL);
            assert_true(w.len <= OP_CODEC_BLOCK_POINTS * 4 / 8 + 32);
        }
    }
}

/* What the PFOR width costs by the format's rules, the slow way: packed
 * bits plus a one-byte gap and the high bits' varint per exception. */
static uint64_t pfor_cost(const uint64_t *r, size_t n, unsigned w)
{
    uint64_t c = (uint64_t)n * w;
    for (size_t i = 0; i < n; i++) {
        unsigned b = bitlen64(r[i]);
        if (b > w)
            c += 8 + 8 * codec__varint_len(r[i] >> w);
    }
    return c;
}

/* A plan's width must be the cheapest by brute force (the narrowest among
 * equals), and writing with the plan gives what encoding in one call does. */
static void test_intseq_pfor_width(void **state)
{
    (void)state;
    int64_t x[OP_CODEC_BLOCK_POINTS];
    uint64_t r[OP_CODEC_BLOCK_POINTS];
    for (int it = 0; it < 400; it++) {
        size_t n = 1 + xs() % OP_CODEC_BLOCK_POINTS;
        unsigned base_w = (unsigned)(xs() % 40), out_w = base_w + (unsigned)(xs() % 25);
        unsigned out_every = 1 + (unsigned)(xs() % 200);
        for (size_t i = 0; i < n; i++) {
            /* Outliers are wider; 0 and 1 up front keep the divisor at 1. */
            unsigned wd = i % out_every == 0 ? out_w : base_w;
            uint64_t m = wd >= 63 ? ~(uint64_t)0 >> 1 : ((uint64_t)1 << wd) - 1;
            x[i] = i < 2 ? (int64_t)i : (int64_t)(xs() & m);
        }
        struct codec_is_plan pl;
        codec__is_plan(x, n, PK_BITS, &pl);
        uint8_t a[CODEC_IS_BOUND(OP_CODEC_BLOCK_POINTS)], b[sizeof a];
        struct cw wa, wb;
        cw_init(&wa, a, sizeof a);
        cw_init(&wb, b, sizeof b);
        codec__is_write(x, n, PK_BITS, &pl, &wa, NULL);
        codec__is_encode(x, n, PK_BITS, &wb, NULL);
        assert_int_equal(wa.len, wb.len);
        assert_memory_equal(a, b, wa.len);
        if (pl.xform != XF_NONE)
            continue;
        /* Parse kind, base, divisor and width of the plain chunk. */
        struct cr rd = { a, wa.len, 0 };
        unsigned kind, width;
        uint64_t zmin, g;
        assert_int_equal(cr_u8(&rd, &kind), OP_OK);
        assert_int_equal(codec__get_varint(&rd, &zmin), OP_OK);
        assert_int_equal(codec__get_varint(&rd, &g), OP_OK);
        assert_int_equal(cr_u8(&rd, &width), OP_OK);
        if (g != 1)
            continue;
        uint64_t mn = (uint64_t)zz_dec(zmin);
        for (size_t i = 0; i < n; i++)
            r[i] = (uint64_t)x[i] - mn;
        unsigned best_w = 0;
        uint64_t best = UINT64_MAX;
        for (unsigned wd = 0; wd <= 64; wd++) {
            uint64_t c = pfor_cost(r, n, wd);
            if (c < best) {
                best = c;
                best_w = wd;
            }
        }
        assert_int_equal(width, best_w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_bitpack_every_width),
        cmocka_unit_test(test_planes),
        cmocka_unit_test(test_intseq_extremes),
        cmocka_unit_test(test_intseq_divisors),
        cmocka_unit_test(test_intseq_pfor_width),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
