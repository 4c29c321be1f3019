/*
 * `outpost codec`: encode a `ts_ms,value` CSV into codec frames, decode
 * frames back into CSV, or measure the codec on a CSV (ratio, bits per
 * point, encode/decode MB/s, chosen encodings). Series longer than one
 * frame's cap are written as frames back to back.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_int.h"
#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/util.h"

/* Inputs are read whole; this caps what one command will hold in memory. */
#define CLI_CODEC_MAX_FILE ((size_t)1 << 30)
#define CLI_CODEC_MAX_POINTS ((size_t)64 << 20)

static void codec_usage(FILE *out)
{
    fprintf(out, "usage: outpost codec encode IN.csv OUT [--fast]\n"
                 "       outpost codec decode IN OUT.csv\n"
                 "       outpost codec stats IN.csv [--fast]\n\n"
                 "CSV is `ts_ms,value` with a header line. encode writes codec frames\n"
                 "(docs/internals/codec.md); --fast skips the entropy stage.\n");
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    char *text = NULL;
    int rc = op_file_read_all(path, CLI_CODEC_MAX_FILE, &text, len);
    *data = (uint8_t *)text;
    if (rc == OP_EIO)
        fprintf(stderr, "outpost codec: %s: %s\n", path, strerror(errno));
    else if (rc != OP_OK)
        fprintf(stderr, "outpost codec: %s: %s\n", path, op_err_str(rc));
    return rc;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "outpost codec: %s: %s\n", path, strerror(errno));
        return OP_EIO;
    }
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad) {
        fprintf(stderr, "outpost codec: %s: write failed\n", path);
        return OP_EIO;
    }
    return OP_OK;
}

static int load_csv(const char *path, int64_t **ts, double **val, size_t *n)
{
    uint8_t *text;
    size_t len, bad = 0;
    int rc = read_file(path, &text, &len);
    if (rc != OP_OK)
        return rc;
    rc = op_codec_csv_parse_alloc((const char *)text, len, CLI_CODEC_MAX_POINTS, ts, val, n,
                                  &bad);
    op_free(text);
    if (rc == OP_EINVAL)
        fprintf(stderr, "outpost codec: %s:%zu: expected `ts_ms,value`\n", path, bad);
    else if (rc != OP_OK)
        fprintf(stderr, "outpost codec: %s: %s\n", path, op_err_str(rc));
    return rc;
}

/* Encodes n points as frames back to back into a buffer the caller frees. */
static int encode_all(struct op_codec_ctx *ctx, const int64_t *ts, const double *val, size_t n,
                      enum op_codec_mode mode, uint8_t **out, size_t *out_len,
                      struct op_codec_stats *sum)
{
    size_t nframes = n ? (n + OP_CODEC_MAX_POINTS - 1) / OP_CODEC_MAX_POINTS : 1;
    size_t cap = 0;
    for (size_t f = 0; f < nframes; f++) {
        size_t k = n - f * OP_CODEC_MAX_POINTS;
        cap += op_codec_bound(k < OP_CODEC_MAX_POINTS ? k : OP_CODEC_MAX_POINTS);
    }
    uint8_t *buf = op_malloc(cap);
    if (!buf)
        return OP_ENOMEM;
    memset(sum, 0, sizeof *sum);
    size_t off = 0;
    for (size_t f = 0; f < nframes; f++) {
        size_t first = f * OP_CODEC_MAX_POINTS, k = n - first, len;
        k = k < OP_CODEC_MAX_POINTS ? k : OP_CODEC_MAX_POINTS;
        struct op_codec_stats st;
        int rc = op_codec_encode_ctx(ctx, ts + first, val + first, k, mode, buf + off, cap - off,
                                     &len, &st);
        if (rc != OP_OK) {
            op_free(buf);
            return rc;
        }
        off += len;
        sum->points += st.points;
        sum->blocks += st.blocks;
        sum->frame_bytes += st.frame_bytes;
        sum->body_bytes += st.body_bytes;
        sum->ts_bytes += st.ts_bytes;
        sum->value_bytes += st.value_bytes;
        sum->exceptions += st.exceptions;
        sum->entropy_stage += st.entropy_stage;
        for (int i = 0; i < OP_CODEC_TS_ENC_COUNT; i++)
            sum->ts_enc[i] += st.ts_enc[i];
        for (int i = 0; i < OP_CODEC_VAL_ENC_COUNT; i++)
            sum->val_enc[i] += st.val_enc[i];
    }
    *out = buf;
    *out_len = off;
    return OP_OK;
}

/* Decodes frames back to back into arrays the caller frees. */
static int decode_all(struct op_codec_ctx *ctx, const uint8_t *in, size_t len, int64_t **ts,
                      double **val, size_t *n)
{
    size_t total = 0, off = 0;
    struct op_codec_frame_info fi;
    while (off < len) {
        int rc = op_codec_frame_info(in + off, len - off, &fi);
        if (rc != OP_OK)
            return rc;
        total += fi.points;
        if (total > CLI_CODEC_MAX_POINTS)
            return OP_ETOOBIG;
        off += fi.frame_bytes;
    }
    int64_t *t = op_malloc((total ? total : 1) * sizeof *t);
    double *v = op_malloc((total ? total : 1) * sizeof *v);
    int rc = t && v ? OP_OK : OP_ENOMEM;
    size_t got = 0;
    for (off = 0; rc == OP_OK && off < len; off += fi.frame_bytes) {
        size_t k;
        rc = op_codec_frame_info(in + off, len - off, &fi);
        if (rc == OP_OK)
            rc = op_codec_decode_ctx(ctx, in + off, fi.frame_bytes, t + got, v + got,
                                     total - got, &k);
        got += rc == OP_OK ? k : 0;
    }
    if (rc != OP_OK) {
        op_free(t);
        op_free(v);
        return rc;
    }
    *ts = t;
    *val = v;
    *n = got;
    return OP_OK;
}

static int cmd_encode(struct op_codec_ctx *ctx, const char *in, const char *out,
                      enum op_codec_mode mode)
{
    int64_t *ts = NULL;
    double *val = NULL;
    uint8_t *enc = NULL;
    size_t n, len;
    struct op_codec_stats st;
    int rc = load_csv(in, &ts, &val, &n);
    if (rc == OP_OK) {
        rc = encode_all(ctx, ts, val, n, mode, &enc, &len, &st);
        if (rc != OP_OK)
            fprintf(stderr, "outpost codec: encode: %s\n", op_err_str(rc));
    }
    if (rc == OP_OK)
        rc = write_file(out, enc, len);
    if (rc == OP_OK)
        printf("%zu points, %zu bytes, ratio %.2f\n", n, len, len ? 16.0 * (double)n / (double)len : 0);
    op_free(ts);
    op_free(val);
    op_free(enc);
    return rc;
}

static int cmd_decode(struct op_codec_ctx *ctx, const char *in, const char *out)
{
    uint8_t *data = NULL;
    int64_t *ts = NULL;
    double *val = NULL;
    size_t len, n;
    struct op_buf csv;
    op_buf_init(&csv, (size_t)4 << 30);
    int rc = read_file(in, &data, &len);
    if (rc == OP_OK) {
        rc = decode_all(ctx, data, len, &ts, &val, &n);
        if (rc != OP_OK)
            fprintf(stderr, "outpost codec: %s: %s\n", in, op_err_str(rc));
    }
    if (rc == OP_OK)
        rc = op_codec_csv_format(ts, val, n, &csv);
    if (rc == OP_OK)
        rc = write_file(out, csv.data, csv.len);
    op_buf_fini(&csv);
    op_free(data);
    op_free(ts);
    op_free(val);
    return rc;
}

static int cmd_stats(struct op_codec_ctx *ctx, const char *in, enum op_codec_mode mode)
{
    int64_t *ts = NULL, *ts2 = NULL;
    double *val = NULL, *val2 = NULL;
    uint8_t *enc = NULL;
    size_t n, len = 0, n2 = 0;
    struct op_codec_stats st;
    double te = 1e30, td = 1e30;
    int rc = load_csv(in, &ts, &val, &n);
    /* Best of a few runs: the figures are for a quiet core. */
    for (int rep = 0; rc == OP_OK && rep < 5; rep++) {
        op_free(enc);
        enc = NULL;
        int64_t t0 = op_time_mono_ns();
        rc = encode_all(ctx, ts, val, n, mode, &enc, &len, &st);
        double t = (double)(op_time_mono_ns() - t0) / 1e9;
        te = t < te ? t : te;
    }
    for (int rep = 0; rc == OP_OK && rep < 5; rep++) {
        op_free(ts2);
        op_free(val2);
        ts2 = NULL;
        val2 = NULL;
        int64_t t0 = op_time_mono_ns();
        rc = decode_all(ctx, enc, len, &ts2, &val2, &n2);
        double t = (double)(op_time_mono_ns() - t0) / 1e9;
        td = t < td ? t : td;
    }
    if (rc == OP_OK && (n2 != n || memcmp(ts, ts2, n * sizeof *ts) != 0 ||
                        memcmp(val, val2, n * sizeof *val) != 0)) {
        fprintf(stderr, "outpost codec: round trip mismatch\n");
        rc = OP_ECORRUPT;
    }
    if (rc == OP_OK) {
        double raw = 16.0 * (double)n;
        printf("file          %s\n", in);
        printf("mode          %s\n", op_codec_mode_name(mode));
        printf("points        %zu (%zu blocks)\n", n, st.blocks);
        printf("raw bytes     %.0f (16 per point)\n", raw);
        printf("encoded bytes %zu\n", len);
        printf("ratio         %.2f\n", len ? raw / (double)len : 0);
        printf("bits/point    %.3f\n", n ? 8.0 * (double)len / (double)n : 0);
        printf("encode        %.1f MB/s\n", te > 0 ? raw / te / 1e6 : 0);
        printf("decode        %.1f MB/s\n", td > 0 ? raw / td / 1e6 : 0);
        printf("body          %zu bytes before the entropy stage (timestamps %zu, values %zu)\n",
               st.body_bytes, st.ts_bytes, st.value_bytes);
        printf("entropy stage %s\n", st.entropy_stage ? "zstd" : "none");
        printf("timestamps   ");
        for (int i = 0; i < OP_CODEC_TS_ENC_COUNT; i++)
            if (st.ts_enc[i])
                printf(" %s=%zu", op_codec_ts_enc_name(i), st.ts_enc[i]);
        printf("\nvalues       ");
        for (int i = 0; i < OP_CODEC_VAL_ENC_COUNT; i++)
            if (st.val_enc[i])
                printf(" %s=%zu", op_codec_val_enc_name(i), st.val_enc[i]);
        printf(" (exceptions %zu)\n", st.exceptions);
    } else {
        fprintf(stderr, "outpost codec: stats: %s\n", op_err_str(rc));
    }
    op_free(ts);
    op_free(val);
    op_free(ts2);
    op_free(val2);
    op_free(enc);
    return rc;
}

int op_cli_codec(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    enum op_codec_mode mode = OP_CODEC_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            codec_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--fast")) {
            mode = OP_CODEC_FAST;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "outpost codec: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            codec_usage(stderr);
            return 2;
        }
    }
    int want = npos > 0 && !strcmp(pos[0], "stats") ? 2 : 3;
    if (npos != want ||
        (strcmp(pos[0], "encode") && strcmp(pos[0], "decode") && strcmp(pos[0], "stats"))) {
        codec_usage(stderr);
        return 2;
    }
    struct op_codec_ctx *ctx;
    if (op_codec_ctx_create(&ctx) != OP_OK) {
        fprintf(stderr, "outpost codec: out of memory\n");
        return 1;
    }
    int rc;
    if (!strcmp(pos[0], "encode"))
        rc = cmd_encode(ctx, pos[1], pos[2], mode);
    else if (!strcmp(pos[0], "decode"))
        rc = cmd_decode(ctx, pos[1], pos[2]);
    else
        rc = cmd_stats(ctx, pos[1], mode);
    op_codec_ctx_destroy(ctx);
    return rc == OP_OK ? 0 : 1;
}
