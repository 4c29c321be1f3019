/*
 * Writes the seed corpus for fuzz_codec: small valid frames of each
 * encoding in both modes (decimal, decimal32, XOR/bits, special values,
 * irregular timestamps), so the fuzzer starts from every parser path.
 * Usage: gen_codec_corpus DIR
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_codec_corpus DIR\n");
        return 2;
    }
    enum { N = 1100 };
    static int64_t ts[N];
    static double v[N];
    uint64_t x = 88172645463325252ull;
    for (int kind = 0; kind < 6; kind++) {
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ts[i] = kind == 3 ? (int64_t)x : 1700000000000 + i * 5000 + (kind == 1 ? (int64_t)(x % 5) : 0);
            switch (kind) {
            case 0: v[i] = round(2000 + 50 * sin(i / 30.0)) / 100; break;
            case 1: v[i] = (double)(float)(1.8e-7 + (double)(x % 1000) * 1e-10); break;
            case 2: memcpy(&v[i], &x, 8); break;
            case 3: v[i] = i % 5 ? 1.5 : (i % 2 ? -0.0 : NAN); break;
            case 4: v[i] = (double)(int64_t)(x % 100000); break;
            default: v[i] = i % 7 ? 0.25 * i : INFINITY; break;
            }
        }
        for (int mode = 0; mode < 2; mode++) {
            for (int sz = 0; sz < 2; sz++) {
                size_t n = sz ? N : 40;
                uint8_t *f;
                size_t len;
                if (op_codec_encode_alloc(ts, v, n, (enum op_codec_mode)mode, &f, &len, NULL))
                    return 1;
                char path[4096];
                snprintf(path, sizeof path, "%s/seed-%d-%s-%zu", argv[1], kind,
                         op_codec_mode_name((enum op_codec_mode)mode), n);
                FILE *o = fopen(path, "wb");
                if (!o || fwrite(f, 1, len, o) != len || fclose(o))
                    return 1;
                op_free(f);
            }
        }
    }
    return 0;
}
