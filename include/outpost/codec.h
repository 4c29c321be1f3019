/*
 * codec: lossless time-series block codec for (int64 Unix-ms timestamp,
 * float64 value) points. A frame holds up to OP_CODEC_MAX_POINTS points in
 * blocks of OP_CODEC_BLOCK_POINTS; each block picks the cheapest encoding for
 * its timestamps and for its values. The byte format is specified in
 * docs/internals/codec.md. Depends on util only (and libzstd, libxxhash).
 *
 * Every function here is reentrant and may run on any thread; none keeps
 * state between calls.
 */
#ifndef OUTPOST_CODEC_H
#define OUTPOST_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "outpost/util.h"

/* Points per block used by the encoder (the frame header carries it, so a
 * decoder accepts any block size from 1 to OP_CODEC_MAX_BLOCK_POINTS). */
#define OP_CODEC_BLOCK_POINTS 1024
#define OP_CODEC_MAX_BLOCK_POINTS 4096
/* Hard cap on the points of one frame (16 MiB of raw points); longer series
 * are cut into several frames by the caller. */
#define OP_CODEC_MAX_POINTS (1u << 20)
/* Frame header and trailer sizes, for callers that split a stream. */
#define OP_CODEC_HEADER_BYTES 20
#define OP_CODEC_TRAILER_BYTES 4

enum op_codec_mode {
    OP_CODEC_DEFAULT = 0, /* best ratio: byte-aligned streams + zstd stage */
    OP_CODEC_FAST = 1,    /* no entropy stage: bit-packed streams only */
};

/* How a block's timestamps were encoded (stats only; see the format doc). */
enum op_codec_ts_enc {
    OP_CODEC_TS_REGULAR = 0, /* constant interval: first value + step */
    OP_CODEC_TS_DELTA,       /* deltas, frame-of-reference packed */
    OP_CODEC_TS_DOD,         /* delta-of-delta, frame-of-reference packed */
    OP_CODEC_TS_PLAIN,       /* values themselves, frame-of-reference packed */
    OP_CODEC_TS_ENC_COUNT
};

/* How a block's values were encoded (stats only). */
enum op_codec_val_enc {
    OP_CODEC_VAL_DECIMAL = 0, /* v == k / 10^e for integers k (ALP-style) */
    OP_CODEC_VAL_DECIMAL32,   /* v is a float32 that reads back from k / 10^e */
    OP_CODEC_VAL_XOR,         /* bits XOR previous bits (Gorilla/Chimp family) */
    OP_CODEC_VAL_BITS,        /* bit patterns as integers (delta-friendly) */
    OP_CODEC_VAL_ENC_COUNT
};

/* What the encoder chose, filled by op_codec_encode*. Counts are blocks. */
struct op_codec_stats {
    size_t points;
    size_t blocks;
    size_t frame_bytes;  /* the whole frame, header and trailer included */
    size_t body_bytes;   /* block data before the entropy stage */
    size_t ts_bytes;     /* timestamp part of body_bytes */
    size_t value_bytes;  /* value part of body_bytes */
    size_t exceptions;   /* values stored verbatim inside decimal blocks */
    int entropy_stage;   /* 1 if the zstd stage was kept, else 0 */
    size_t ts_enc[OP_CODEC_TS_ENC_COUNT];
    size_t val_enc[OP_CODEC_VAL_ENC_COUNT];
};

/* What a frame header declares, from op_codec_frame_info. */
struct op_codec_frame_info {
    size_t points;      /* points in the frame */
    size_t frame_bytes; /* total frame length, header and trailer included */
    int version;
    int entropy_stage;  /* 1 if the body is zstd-compressed */
};

/* A reusable codec context: the zstd contexts and block scratch that one
 * call would otherwise allocate and free each time (worth keeping by a
 * caller that encodes or decodes many frames, such as an uplink). Used by
 * one thread at a time. */
struct op_codec_ctx;

/* Allocates a context; on OP_OK *ctx is the caller's to destroy. OP_ENOMEM. */
int op_codec_ctx_create(struct op_codec_ctx **ctx);
/* Frees ctx and everything it holds; NULL is a no-op. */
void op_codec_ctx_destroy(struct op_codec_ctx *ctx);

/* Largest frame op_codec_encode can produce for n points (n <=
 * OP_CODEC_MAX_POINTS); size the output buffer with it. Returns 0 if n is
 * over the cap. */
size_t op_codec_bound(size_t n);

/* Encodes n points (ts[i], val[i]) as one frame into out[0..cap). Any int64
 * and any float64 bit pattern round-trips exactly. stats may be NULL.
 * Returns OP_OK with *out_len set, OP_EINVAL for bad arguments, OP_ETOOBIG if
 * n > OP_CODEC_MAX_POINTS or cap is too small (cap >= op_codec_bound(n)
 * always suffices), OP_ENOMEM. n == 0 gives a valid empty frame. */
int op_codec_encode(const int64_t *ts, const double *val, size_t n, enum op_codec_mode mode,
                    uint8_t *out, size_t cap, size_t *out_len, struct op_codec_stats *stats);

/* As op_codec_encode, reusing ctx's buffers and zstd contexts. */
int op_codec_encode_ctx(struct op_codec_ctx *ctx, const int64_t *ts, const double *val, size_t n,
                        enum op_codec_mode mode, uint8_t *out, size_t cap, size_t *out_len,
                        struct op_codec_stats *stats);

/* As op_codec_encode, into a buffer it allocates: on OP_OK *out holds
 * *out_len bytes the caller frees with op_free. */
int op_codec_encode_alloc(const int64_t *ts, const double *val, size_t n, enum op_codec_mode mode,
                          uint8_t **out, size_t *out_len, struct op_codec_stats *stats);

/* Reads and checks the frame header at in[0..len) without decoding (len may
 * cover more than one frame: use info->frame_bytes to step to the next).
 * Returns OP_OK, or OP_ECORRUPT if the header is invalid or in is shorter
 * than the frame it declares. */
int op_codec_frame_info(const uint8_t *in, size_t len, struct op_codec_frame_info *info);

/* Decodes exactly one frame, in[0..len) (len must equal its frame_bytes),
 * into ts[0..cap) and val[0..cap). Safe on untrusted bytes: checks the
 * checksum first, then every length, count and width; never reads or writes
 * out of bounds. Returns OP_OK with *n_out points written, OP_ECORRUPT for a
 * bad frame, OP_ETOOBIG if the frame holds more than cap points, OP_ENOMEM
 * (the entropy stage needs a scratch buffer of at most op_codec_bound()
 * bytes for the frame's point count). */
int op_codec_decode(const uint8_t *in, size_t len, int64_t *ts, double *val, size_t cap,
                    size_t *n_out);

/* As op_codec_decode, reusing ctx's buffers and zstd contexts. */
int op_codec_decode_ctx(struct op_codec_ctx *ctx, const uint8_t *in, size_t len, int64_t *ts,
                        double *val, size_t cap, size_t *n_out);

/* As op_codec_decode into arrays it allocates: on OP_OK *ts and *val hold *n
 * points and the caller frees both with op_free. Allocates for at most
 * max_points (0 means OP_CODEC_MAX_POINTS); a frame declaring more gives
 * OP_ETOOBIG before anything is allocated. */
int op_codec_decode_alloc(const uint8_t *in, size_t len, size_t max_points, int64_t **ts,
                          double **val, size_t *n);

/* Short names for the stats enums ("regular", "decimal", ...). Never NULL. */
const char *op_codec_ts_enc_name(int enc);
const char *op_codec_val_enc_name(int enc);
const char *op_codec_mode_name(enum op_codec_mode mode);

/* ---- CSV interchange (the datasets' and the CLI's `ts_ms,value`) ----- */

/* Parses text[0..len): an optional header line (any first line that does
 * not start with a digit or a sign), then one `ts_ms,value` per line (LF or
 * CRLF; `nan`, `inf`, `-inf` accepted). Keeps at most max_points points.
 * On OP_OK *ts and *val hold *n points the caller frees with op_free.
 * Returns OP_EINVAL with *bad_line (1-based) set for a malformed line,
 * OP_ETOOBIG past max_points, OP_ENOMEM. */
int op_codec_csv_parse_alloc(const char *text, size_t len, size_t max_points, int64_t **ts,
                             double **val, size_t *n, size_t *bad_line);

/* Appends the header `ts_ms,value` and one line per point, values in their
 * shortest round-tripping decimal form. OP_OK, OP_ETOOBIG, OP_ENOMEM. */
int op_codec_csv_format(const int64_t *ts, const double *val, size_t n, struct op_buf *out);

#endif
