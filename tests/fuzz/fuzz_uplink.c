/*
 * libFuzzer target for the uplink formats a node reads from outside or
 * from disk (src/sync): the first byte picks what the rest is.
 *   0: a batch message as a receiver gets it (op_sync_header_parse, then
 *      op_sync_batch_decode with no key and with a fixed key);
 *   1: an outbox record (sync__rec_decode) claiming 1..4096 readings;
 *   2: readings made from the bytes, encoded as a batch (plain and
 *      sealed) and as an outbox record, which must decode to exactly them.
 * Mode 2 reaches every decoder path with valid input and the mutations of
 * modes 0 and 1 the error paths, without a seed corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "outpost/sync.h"
#include "sync_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key_text[] = "outpost-seal-key v1\n"
                               "kid bc98d3044d7d44c2\n"
                               "key WznJD4y2VnJWWJq5CLSVnXMDv0XooZY5t+s6/BlEV8U=\n";
static struct op_seal_key key;
static struct sync_rec_dec *dec;
static struct op_sync_encoder *enc;
static struct sync_batch *batch;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (op_sec_seal_key_parse(&key, key_text, strlen(key_text)) != OP_OK ||
        sync__rec_dec_create(&dec) != OP_OK || op_sync_encoder_create(&enc) != OP_OK ||
        sync__batch_create(&batch) != OP_OK)
        abort();
    return 0;
}

static void decode_message(const uint8_t *p, size_t n, const struct op_seal_key *k, size_t nk)
{
    struct op_sync_header h;
    struct op_diag d;
    op_diag_clear(&d);
    if (op_sync_header_parse(p, n, &h, &d) != OP_OK)
        return;
    struct op_sync_batch_in in;
    if (op_sync_batch_decode(&h, k, nk, 4096, &in, &d) == OP_OK) {
        for (size_t i = 0; i < in.n; i++)
            if (in.readings[i].sensor_len == 0 || in.readings[i].sensor_len > OP_STORE_SENSOR_MAX)
                abort();
        op_sync_batch_in_free(&in);
    }
}

/* Readings from the bytes: 4 bytes each (sensor 0..7, ts step, value). */
static size_t make_readings(const uint8_t *p, size_t n, struct op_reading *r, size_t cap)
{
    static const char *const names[8] = { "a", "b/c", "line1/temp", "x:y", "_", "z.z", "q-1",
                                          "longer/name/for/a/sensor" };
    size_t k = 0;
    int64_t ts = 1700000000000;
    for (size_t i = 0; i + 4 <= n && k < cap; i += 4, k++) {
        const char *s = names[p[i] & 7];
        ts += (int8_t)p[i + 1];
        int16_t v = (int16_t)(p[i + 2] | p[i + 3] << 8);
        r[k] = (struct op_reading){ s, (uint32_t)strlen(s), ts, (double)v / 4 };
    }
    return k;
}

static void round_trip(const uint8_t *p, size_t n)
{
    static struct op_reading r[1024];
    size_t k = make_readings(p, n, r, 1024);
    if (k == 0)
        return;
    struct op_buf rec;
    op_buf_init(&rec, 1 << 20);
    struct sync_rec out;
    if (op_sync_outbox_encode(enc, r, k, &rec) != OP_OK ||
        sync__rec_decode(dec, rec.data, rec.len, k, &out) != OP_OK)
        abort();
    for (size_t i = 0; i < k; i++)
        if (out.ts[i] != r[i].ts || out.val[i] != r[i].value ||
            out.name_len[out.sensor[i]] != r[i].sensor_len)
            abort();
    op_buf_fini(&rec);

    sync__batch_reset(batch);
    for (size_t i = 0; i < k; i++)
        if (sync__batch_add(batch, r[i].sensor, r[i].sensor_len, 10 + (int64_t)i, r[i].ts,
                            r[i].value) != OP_OK)
            abort();
    for (int sealed = 0; sealed < 2; sealed++) {
        struct op_buf msg;
        op_buf_init(&msg, 1 << 22);
        /* The sealed one is also ranged (sent ahead of a cursor at 5). */
        struct sync_cover cv = { 10, 10 + (int64_t)k - 1, 5, sealed == 1, false };
        if (sync__batch_encode(batch, "node1", "up", 9, &cv, sealed ? &key : NULL, &msg) != OP_OK)
            abort();
        struct op_sync_header h;
        struct op_diag d;
        struct op_sync_batch_in in;
        if (op_sync_header_parse(msg.data, msg.len, &h, &d) != OP_OK ||
            op_sync_batch_decode(&h, sealed ? &key : NULL, sealed, 4096, &in, &d) != OP_OK ||
            in.n != k || in.ranged != (sealed == 1) || (in.ranged && in.floor != 5))
            abort();
        for (size_t i = 0; i < in.n; i++) {
            size_t at = (size_t)(in.positions[i] - 10);
            if (at >= k || in.readings[i].ts != r[at].ts || in.readings[i].value != r[at].value)
                abort();
        }
        op_sync_batch_in_free(&in);
        op_buf_fini(&msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        decode_message(p, n, NULL, 0);
        decode_message(p, n, &key, 1);
        break;
    case 1: {
        if (n < 2)
            break;
        size_t count = 1 + ((size_t)(p[0] | p[1] << 8) % 4096);
        struct sync_rec out;
        sync__rec_decode(dec, p + 2, n - 2, count, &out);
        break;
    }
    default:
        round_trip(p, n);
    }
    return 0;
}
