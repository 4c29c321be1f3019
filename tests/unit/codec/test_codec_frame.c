/*
 * Tests for src/codec/codec_frame.c and the encodings under it, through the
 * public API: table-driven round trips of edge cases (every special float64
 * bit pattern, extreme and disordered timestamps, block boundaries),
 * seeded property tests with random and adversarial series, every dataset
 * in OUTPOST_DATASETS, corrupt/truncated/bit-flipped frames, and an
 * allocation-failure sweep.
 */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: seeded, so a failure is reproducible from the seed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Encodes in both modes, decodes, and checks every bit of every point. */
static void roundtrip(const int64_t *ts, const double *val, size_t n)
{
    static const enum op_codec_mode modes[] = { OP_CODEC_DEFAULT, OP_CODEC_FAST };
    for (size_t m = 0; m < 2; m++) {
        uint8_t *frame = NULL;
        size_t len = 0, got = 0;
        struct op_codec_stats st;
        assert_int_equal(op_codec_encode_alloc(ts, val, n, modes[m], &frame, &len, &st), OP_OK);
        assert_true(len <= op_codec_bound(n));
        assert_int_equal(st.frame_bytes, len);
        int64_t *t2 = NULL;
        double *v2 = NULL;
        assert_int_equal(op_codec_decode_alloc(frame, len, 0, &t2, &v2, &got), OP_OK);
        assert_int_equal(got, n);
        if (n) {
            assert_memory_equal(t2, ts, n * sizeof *ts);
            assert_memory_equal(v2, val, n * sizeof *val);
        }
        op_free(t2);
        op_free(v2);
        op_free(frame);
    }
}

/* ---- table-driven edge cases ---------------------------------------------- */

static const uint64_t special_bits[] = {
    0x0000000000000000ull, /* +0 */
    0x8000000000000000ull, /* -0 */
    0x0000000000000001ull, /* smallest subnormal */
    0x800fffffffffffffull, /* largest negative subnormal */
    0x0010000000000000ull, /* DBL_MIN */
    0x7fefffffffffffffull, /* DBL_MAX */
    0xffefffffffffffffull, /* -DBL_MAX */
    0x7ff0000000000000ull, /* +inf */
    0xfff0000000000000ull, /* -inf */
    0x7ff8000000000000ull, /* quiet NaN */
    0xfff8000000000001ull, /* negative quiet NaN with payload */
    0x7ff0000000000001ull, /* signalling NaN */
    0x7ff4000000dead00ull, /* signalling NaN, other payload */
    0x7fffffffffffffffull, /* all-ones NaN */
    0x3ff0000000000000ull, /* 1.0 */
    0x3fb999999999999aull, /* 0.1 */
    0x4341c37937e08000ull, /* 1e16 */
    0x47efffffe0000000ull, /* FLT_MAX as double */
    0x36a0000000000000ull, /* smallest float32 subnormal as double */
    0x4340000000000001ull, /* 2^53 + 2 */
};
#define NSPECIAL (sizeof special_bits / sizeof special_bits[0])

static void test_special_values(void **state)
{
    (void)state;
    /* Each special value alone, in a run, and mixed with short decimals so
     * it lands in a decimal block as an exception. */
    for (size_t i = 0; i < NSPECIAL; i++) {
        int64_t ts[40];
        double v[40];
        for (size_t k = 0; k < 40; k++) {
            ts[k] = 1700000000000 + (int64_t)k * 1000;
            v[k] = k % 7 == 3 ? bits_to_double(special_bits[i]) : 20.0 + (double)k / 100;
        }
        roundtrip(ts, v, 1);
        roundtrip(ts, v, 40);
        for (size_t k = 0; k < 40; k++)
            v[k] = bits_to_double(special_bits[i]);
        roundtrip(ts, v, 40);
    }
    int64_t ts[NSPECIAL];
    double v[NSPECIAL];
    for (size_t i = 0; i < NSPECIAL; i++) {
        ts[i] = (int64_t)i;
        v[i] = bits_to_double(special_bits[i]);
    }
    roundtrip(ts, v, NSPECIAL);
}

static void test_extreme_timestamps(void **state)
{
    (void)state;
    static const int64_t pat[][6] = {
        { INT64_MIN, INT64_MAX, INT64_MIN, INT64_MAX, 0, -1 },
        { INT64_MAX, INT64_MAX - 1, INT64_MAX - 2, INT64_MIN, INT64_MIN + 1, 0 },
        { 5, 5, 5, 4, 4, 6 },              /* duplicates, going back */
        { 0, 1000, 2000, 1000000000000, 1000000001000, 1000000002000 }, /* gap */
        { -371174400000, -370569600000, -369964800000, 0, 1, 2 },       /* pre-1970 */
    };
    for (size_t p = 0; p < sizeof pat / sizeof pat[0]; p++) {
        int64_t ts[3000];
        double v[3000];
        for (size_t k = 0; k < 3000; k++) {
            ts[k] = pat[p][k % 6] + (k >= 6 && p == 2 ? (int64_t)(k / 6) : 0);
            v[k] = (double)(k % 13) * 0.5;
        }
        roundtrip(ts, v, 6);
        roundtrip(ts, v, 3000);
    }
}

static void test_block_boundaries(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 2, 3, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 5000 };
    int64_t *ts = op_malloc(5000 * sizeof *ts);
    double *v = op_malloc(5000 * sizeof *v);
    assert_non_null(ts);
    assert_non_null(v);
    for (size_t i = 0; i < 5000; i++) {
        ts[i] = 1600000000000 + (int64_t)i * 60000 + (int64_t)(i % 3);
        v[i] = round(sin((double)i / 50) * 1000) / 100;
    }
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        roundtrip(ts, v, sizes[s]);
    op_free(ts);
    op_free(v);
}

/* ---- property tests -------------------------------------------------------- */

/* One random series: a timestamp shape and a value shape drawn from the
 * kinds seen in the field plus adversarial ones. */
static void gen_series(int64_t *ts, double *v, size_t n)
{
    unsigned tk = (unsigned)(rnd() % 5), vk = (unsigned)(rnd() % 9);
    int64_t t = (int64_t)(rnd() >> 20), step = (int64_t)(rnd() % 100000) + 1;
    double x = (double)(rnd() % 100000) / 100, scale = pow(10, (double)(rnd() % 6));
    for (size_t i = 0; i < n; i++) {
        switch (tk) {
        case 0: t += step; break;
        case 1: t += step + (int64_t)(rnd() % 7) - 3; break;
        case 2: t = (int64_t)rnd(); break;
        case 3: t += rnd() % 50 == 0 ? (int64_t)(rnd() % 10000000) : step; break;
        default: t -= (int64_t)(rnd() % 3); break;
        }
        ts[i] = t;
        switch (vk) {
        case 0: x += (double)((int64_t)(rnd() % 21) - 10) / 100; v[i] = round(x * 100) / 100; break;
        case 1: v[i] = bits_to_double(rnd()); break;
        case 2: v[i] = (double)(float)((double)(rnd() % 1000000) * 1e-9); break;
        case 3: v[i] = (double)(int64_t)(rnd() % 1000000) - 500000; break;
        case 4: v[i] = rnd() % 10 ? 42.5 : bits_to_double(special_bits[rnd() % NSPECIAL]); break;
        case 5: x += 0.001 * (double)(rnd() % 3); v[i] = x; break; /* no short form */
        case 6: v[i] = (double)(int64_t)(rnd() % 2000 - 1000) / scale; break;
        case 7: v[i] = rnd() % 2 ? 1e300 : -1e-300; break;
        default: v[i] = (double)(float)bits_to_double(rnd() & 0x3fffffffe0000000ull); break;
        }
    }
}

static void test_random_series(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull;
    int64_t *ts = op_malloc(4000 * sizeof *ts);
    double *v = op_malloc(4000 * sizeof *v);
    assert_non_null(ts);
    assert_non_null(v);
    for (int it = 0; it < 200; it++) {
        size_t n = (size_t)(rnd() % 4000);
        gen_series(ts, v, n);
        roundtrip(ts, v, n);
    }
    op_free(ts);
    op_free(v);
}

/* A block whose first choice comes out past the frame's bound before the
 * encoder falls back (found by the fuzzer): random timestamps fill their
 * share of the bound, and values that are small integers with one wide
 * one, among 25% binary noise, look cheap to the default mode's magnitude
 * estimate but take 7-byte planes plus the exceptions. The fallback must
 * fit in what op_codec_bound promised. */
static void test_fallback_within_bound(void **state)
{
    (void)state;
    enum { N = 122 };
    int64_t ts[N];
    double v[N];
    rng_state = 0x5eed5eed5eed5eedull;
    for (size_t i = 0; i < N; i++) {
        ts[i] = (int64_t)rnd();
        v[i] = i % 4 == 0 ? bits_to_double(rnd()) : i == 1 ? 0x1p50 : (double)(rnd() % 1000);
    }
    roundtrip(ts, v, N);
}

/* ---- encoding choices ----------------------------------------------------- */

/* Which value encoding each kind of data gets, in both modes: integers
 * (float32-exact below 2^24) stay decimal, since decimal32 would map the
 * same integers; float32 readings of short decimals get decimal32; short
 * decimals get decimal; noisy binary doubles get xor or bits. */
static void test_value_choice(void **state)
{
    (void)state;
    enum { N = 3000 };
    int64_t *ts = op_malloc(N * sizeof *ts);
    double *v = op_malloc(N * sizeof *v);
    assert_non_null(ts);
    assert_non_null(v);
    rng_state = 0x0123456789abcdefull;
    for (int kind = 0; kind < 4; kind++) {
        double x = 1000;
        for (size_t i = 0; i < N; i++) {
            ts[i] = 1600000000000 + (int64_t)i * 1000;
            x += (double)((int64_t)(rnd() % 201) - 100);
            switch (kind) {
            case 0: v[i] = x; break;
            case 1: v[i] = (double)(float)(x / 100); break;
            case 2: v[i] = x / 100; break;
            default:
                v[i] = x * 1.0000001 + bits_to_double(rnd() >> 12 | 0x3ff0000000000000ull);
                break;
            }
        }
        static const enum op_codec_mode modes[] = { OP_CODEC_DEFAULT, OP_CODEC_FAST };
        for (size_t m = 0; m < 2; m++) {
            uint8_t *frame = NULL;
            size_t len = 0;
            struct op_codec_stats st;
            assert_int_equal(op_codec_encode_alloc(ts, v, N, modes[m], &frame, &len, &st), OP_OK);
            op_free(frame);
            switch (kind) {
            case 0:
            case 2:
                assert_int_equal(st.val_enc[OP_CODEC_VAL_DECIMAL], st.blocks);
                break;
            case 1:
                assert_int_equal(st.val_enc[OP_CODEC_VAL_DECIMAL32], st.blocks);
                break;
            default:
                assert_int_equal(st.val_enc[OP_CODEC_VAL_XOR] + st.val_enc[OP_CODEC_VAL_BITS],
                                 st.blocks);
                break;
            }
            assert_int_equal(st.exceptions, 0);
        }
        roundtrip(ts, v, N);
    }
    op_free(ts);
    op_free(v);
}

/* ---- datasets ---------------------------------------------------------------- */

static void test_datasets(void **state)
{
    (void)state;
    const char *dir = getenv("OUTPOST_DATASETS");
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        print_message("skipping: OUTPOST_DATASETS unset or missing (%s)\n", dir ? dir : "unset");
        skip();
    }
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".csv"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = NULL;
        size_t len = 0, n, bad;
        int64_t *ts;
        double *v;
        assert_int_equal(op_file_read_all(path, 1u << 30, &text, &len), OP_OK);
        assert_int_equal(op_codec_csv_parse_alloc(text, len, 1u << 24, &ts, &v, &n, &bad), OP_OK);
        roundtrip(ts, v, n);
        /* The CSV text itself survives encode, decode and format. */
        struct op_buf out;
        op_buf_init(&out, (size_t)1 << 30);
        assert_int_equal(op_codec_csv_format(ts, v, n, &out), OP_OK);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, text, len);
        op_buf_fini(&out);
        op_free(text);
        op_free(ts);
        op_free(v);
        count++;
    }
    closedir(d);
    print_message("%d datasets round-tripped\n", count);
}

/* ---- hostile input ------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Re-seals a frame after tampering so the body parser, not the checksum,
 * has to catch the damage. Uses only the documented layout. */
extern uint32_t codec__checksum(const uint8_t *p, size_t n);
static void reseal(uint8_t *f, size_t len)
{
    put32(f + len - 4, codec__checksum(f, len - 4));
}

static void check_hostile(const uint8_t *f, size_t len)
{
    int64_t ts[64];
    double v[64];
    size_t n;
    int rc = op_codec_decode(f, len, ts, v, 64, &n);
    assert_true(rc == OP_OK || rc == OP_ECORRUPT || rc == OP_ETOOBIG);
    int64_t *t2;
    double *v2;
    rc = op_codec_decode_alloc(f, len, 1 << 16, &t2, &v2, &n);
    assert_true(rc == OP_OK || rc == OP_ECORRUPT || rc == OP_ETOOBIG);
    if (rc == OP_OK) {
        op_free(t2);
        op_free(v2);
    }
}

static void test_corrupt_frames(void **state)
{
    (void)state;
    rng_state = 12345;
    int64_t ts[3000];
    double v[3000];
    for (int variant = 0; variant < 6; variant++) {
        size_t n = variant < 3 ? 50 : 2100;
        gen_series(ts, v, n);
        uint8_t *f;
        size_t len;
        enum op_codec_mode mode = variant % 2 ? OP_CODEC_FAST : OP_CODEC_DEFAULT;
        assert_int_equal(op_codec_encode_alloc(ts, v, n, mode, &f, &len, NULL), OP_OK);
        int64_t t2[3000];
        double v2[3000];
        size_t got;
        /* Every truncation is rejected. */
        for (size_t cut = 0; cut < len; cut += (len > 400 ? 7 : 1))
            assert_int_equal(op_codec_decode(f, cut, t2, v2, 3000, &got), OP_ECORRUPT);
        /* Every single-bit flip is caught by the checksum. */
        uint8_t *g = op_malloc(len);
        assert_non_null(g);
        for (size_t i = 0; i < len; i++) {
            memcpy(g, f, len);
            g[i] ^= (uint8_t)(1u << (rnd() % 8));
            assert_int_equal(op_codec_decode(g, len, t2, v2, 3000, &got), OP_ECORRUPT);
        }
        /* Damage behind a valid checksum: never a crash, only a clean
         * error or some decoded points. */
        for (int k = 0; k < 400; k++) {
            memcpy(g, f, len);
            int flips = 1 + (int)(rnd() % 4);
            for (int j = 0; j < flips; j++)
                g[OP_CODEC_HEADER_BYTES + rnd() % (len - OP_CODEC_HEADER_BYTES - 4)] ^= (uint8_t)rnd();
            reseal(g, len);
            check_hostile(g, len);
        }
        op_free(g);
        op_free(f);
    }
    /* Headers that lie: huge counts, bad versions, bad block sizes. */
    uint8_t h[64] = { 'O', 'P', 'T', 'S', 1, 0, 0, 4 };
    put32(h + 8, 0xffffffffu);
    reseal(h, 24);
    check_hostile(h, 24);
    put32(h + 8, 1u << 20);
    put32(h + 12, 0xfffffff0u);
    put32(h + 16, 0);
    reseal(h, 24);
    check_hostile(h, 24);
    h[4] = 2;
    reseal(h, 24);
    assert_int_equal(op_codec_decode(h, 24, NULL, NULL, 0, &(size_t){ 0 }), OP_ECORRUPT);
    /* Random garbage behind a valid header. */
    for (int k = 0; k < 2000; k++) {
        uint8_t g[64] = { 'O', 'P', 'T', 'S', 1, (uint8_t)(rnd() % 2), 0, 4 };
        size_t body = rnd() % 40;
        put32(g + 8, (uint32_t)(rnd() % 70));
        put32(g + 12, (uint32_t)(g[5] ? rnd() % 200 : body));
        put32(g + 16, (uint32_t)body);
        for (size_t i = 0; i < body; i++)
            g[20 + i] = (uint8_t)rnd();
        reseal(g, 24 + body);
        check_hostile(g, 24 + body);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int64_t ts[2] = { 1, 2 };
    double v[2] = { 1, 2 };
    uint8_t out[256];
    size_t len, n;
    assert_int_equal(op_codec_encode(NULL, v, 2, OP_CODEC_FAST, out, sizeof out, &len, NULL), OP_EINVAL);
    assert_int_equal(op_codec_encode(ts, v, 2, (enum op_codec_mode)7, out, sizeof out, &len, NULL), OP_EINVAL);
    assert_int_equal(op_codec_encode(ts, v, 2, OP_CODEC_FAST, out, 10, &len, NULL), OP_ETOOBIG);
    assert_int_equal(op_codec_encode(ts, v, OP_CODEC_MAX_POINTS + 1, OP_CODEC_FAST, out, sizeof out, &len, NULL),
                     OP_ETOOBIG);
    assert_int_equal(op_codec_bound(OP_CODEC_MAX_POINTS + 1), 0);
    assert_int_equal(op_codec_encode(ts, v, 2, OP_CODEC_FAST, out, sizeof out, &len, NULL), OP_OK);
    assert_int_equal(op_codec_decode(out, len, ts, v, 1, &n), OP_ETOOBIG);
    int64_t *t2;
    double *v2;
    assert_int_equal(op_codec_decode_alloc(out, len, 1, &t2, &v2, &n), OP_ETOOBIG);
    /* A frame followed by more bytes is not one frame. */
    out[len] = 0;
    assert_int_equal(op_codec_decode(out, len + 1, ts, v, 2, &n), OP_ECORRUPT);
    struct op_codec_frame_info fi;
    assert_int_equal(op_codec_frame_info(out, len + 1, &fi), OP_OK);
    assert_int_equal(fi.frame_bytes, len);
    assert_int_equal(fi.points, 2);
}

/* ---- allocation failures ----------------------------------------------------- */

static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    rng_state = 777;
    int64_t ts[2500];
    double v[2500];
    gen_series(ts, v, 2500);
    v[7] = NAN;
    for (int mode = 0; mode < 2; mode++) {
        int ok = 0;
        for (long fail = 1; fail < 200 && !ok; fail++) {
            uint8_t *f = NULL;
            size_t len, n;
            int64_t *t2 = NULL;
            double *v2 = NULL;
            op_alloc_fail_after(fail);
            int rc = op_codec_encode_alloc(ts, v, 2500, (enum op_codec_mode)mode, &f, &len, NULL);
            int rc2 = rc == OP_OK ? op_codec_decode_alloc(f, len, 0, &t2, &v2, &n) : rc;
            op_alloc_fail_after(0);
            assert_true(rc == OP_OK || rc == OP_ENOMEM);
            assert_true(rc2 == OP_OK || rc2 == OP_ENOMEM);
            if (rc2 == OP_OK) {
                assert_int_equal(n, 2500);
                assert_memory_equal(v2, v, sizeof v);
                ok = 1;
            }
            op_free(f);
            op_free(t2);
            op_free(v2);
        }
        assert_true(ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_block_boundaries),
        cmocka_unit_test(test_random_series),
        cmocka_unit_test(test_value_choice),
        cmocka_unit_test(test_fallback_within_bound),
        cmocka_unit_test(test_datasets),
        cmocka_unit_test(test_corrupt_frames),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_alloc_failure_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
