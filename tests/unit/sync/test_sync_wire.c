/*
 * Tests of the sync formats: outbox records (op_sync_outbox_encode and
 * sync__rec_decode) and batches (sync__batch_* and the receiver's
 * op_sync_header_parse / op_sync_batch_decode): round trips with many
 * sensors, sealed batches with the right key, a wrong key, no key and a
 * tampered byte, every truncation of a message, a reading cap, and the
 * JSON form's shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/sec.h"
#include "sync_int.h"

#define N 3000

static char names[600][32];

static void make_readings(struct op_reading *r, size_t n, size_t nsensors)
{
    for (size_t i = 0; i < nsensors; i++)
        snprintf(names[i], sizeof names[i], "line%u/temp", (unsigned)i);
    for (size_t i = 0; i < n; i++) {
        size_t s = (i * 7) % nsensors;
        r[i] = (struct op_reading){ names[s], (uint32_t)strlen(names[s]),
                                    1732200000000 + (int64_t)i * 10, 20.0 + (double)(i % 97) / 8 };
    }
}

static void test_record_round_trip(void **state)
{
    (void)state;
    static struct op_reading r[N];
    make_readings(r, N, 600); /* more names than the table's first size */
    struct op_sync_encoder *e;
    assert_int_equal(op_sync_encoder_create(&e), OP_OK);
    struct op_buf out;
    op_buf_init(&out, 1 << 24);
    for (int round = 0; round < 2; round++) { /* the encoder is reused */
        op_buf_reset(&out);
        assert_int_equal(op_sync_outbox_encode(e, r, N, &out), OP_OK);
        struct sync_rec_dec *d;
        assert_int_equal(sync__rec_dec_create(&d), OP_OK);
        struct sync_rec rec;
        assert_int_equal(sync__rec_decode(d, out.data, out.len, N, &rec), OP_OK);
        assert_int_equal(rec.nnames, 600);
        for (size_t i = 0; i < N; i++) {
            uint32_t k = rec.sensor[i];
            assert_int_equal(rec.name_len[k], r[i].sensor_len);
            assert_memory_equal(rec.names[k], r[i].sensor, r[i].sensor_len);
            assert_int_equal(rec.ts[i], r[i].ts);
            assert_true(rec.val[i] == r[i].value);
        }
        /* A wrong count or cut bytes are refused, never read past. */
        assert_int_equal(sync__rec_decode(d, out.data, out.len, N - 1, &rec), OP_ECORRUPT);
        for (size_t cut = 0; cut < out.len; cut += 1 + cut / 8)
            assert_int_equal(sync__rec_decode(d, out.data, cut, N, &rec), OP_ECORRUPT);
        sync__rec_dec_destroy(d);
    }
    /* a few bytes a reading, names included */
    assert_true(out.len < (size_t)N * 8);
    op_buf_fini(&out);
    op_sync_encoder_destroy(e);
}

static struct sync_batch *filled_batch(size_t n)
{
    struct sync_batch *b;
    assert_int_equal(sync__batch_create(&b), OP_OK);
    static struct op_reading r[N];
    make_readings(r, n, 40);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sync__batch_add(b, r[i].sensor, r[i].sensor_len, 100 + (int64_t)i,
                                         r[i].ts, r[i].value),
                         OP_OK);
    return b;
}

static int decode(const struct op_buf *msg, const struct op_seal_key *keys, size_t nkeys,
                  size_t max, struct op_sync_batch_in *in)
{
    struct op_sync_header h;
    struct op_diag d;
    op_diag_clear(&d);
    int rc = op_sync_header_parse(msg->data, msg->len, &h, &d);
    if (rc == OP_OK)
        rc = op_sync_batch_decode(&h, keys, nkeys, max, in, &d);
    if (rc != OP_OK)
        assert_true(d.code[0] != '\0');
    return rc;
}

static void test_batch_round_trip(void **state)
{
    (void)state;
    struct sync_batch *b = filled_batch(N);
    assert_int_equal(sync__batch_points(b), N);
    struct op_buf msg;
    op_buf_init(&msg, 1 << 24);
    struct sync_cover cv = { 100, 100 + N - 1, 99, false, false };
    assert_int_equal(sync__batch_encode(b, "00aa11bb22cc33dd", "cloud", 7, &cv, NULL, &msg), OP_OK);
    struct op_sync_header h;
    struct op_diag d;
    assert_int_equal(op_sync_header_parse(msg.data, msg.len, &h, &d), OP_OK);
    assert_string_equal(h.node, "00aa11bb22cc33dd");
    assert_string_equal(h.uplink, "cloud");
    assert_int_equal(h.seq, 7);
    struct op_sync_batch_in in;
    assert_int_equal(decode(&msg, NULL, 0, N, &in), OP_OK);
    assert_int_equal(in.n, N);
    assert_int_equal(in.first_pos, 100);
    assert_int_equal(in.last_pos, 100 + N - 1);
    assert_false(in.ranged); /* a plain batch stays readable by v1 receivers */
    /* Grouped per sensor, in order within each: every position once. */
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    static struct op_reading r[N];
    make_readings(r, N, 40);
    for (size_t i = 0; i < in.n; i++) {
        int64_t k = in.positions[i] - 100;
        assert_true(k >= 0 && k < N && !seen[k]);
        seen[k] = true;
        char want[64];
        snprintf(want, sizeof want, "00aa11bb22cc33dd/%.*s", (int)r[k].sensor_len, r[k].sensor);
        assert_int_equal(in.readings[i].sensor_len, strlen(want));
        assert_memory_equal(in.readings[i].sensor, want, strlen(want));
        assert_int_equal(in.readings[i].ts, r[k].ts);
        assert_true(in.readings[i].value == r[k].value);
        if (i > 0 && in.readings[i].sensor == in.readings[i - 1].sensor)
            assert_true(in.positions[i] > in.positions[i - 1]);
    }
    op_sync_batch_in_free(&in);
    /* A cap on readings below the batch's refuses it. */
    assert_int_equal(decode(&msg, NULL, 0, N - 1, &in), OP_ECORRUPT);
    /* Every truncation is an error. */
    struct op_buf cut;
    op_buf_init(&cut, 1 << 24);
    for (size_t n = 0; n < msg.len; n += 1 + n / 16) {
        op_buf_reset(&cut);
        op_buf_append(&cut, msg.data, n);
        assert_int_not_equal(decode(&cut, NULL, 0, N, &in), OP_OK);
    }
    op_buf_fini(&cut);
    op_buf_fini(&msg);
    sync__batch_destroy(b);
}

static void test_sealed_batches(void **state)
{
    (void)state;
    struct op_seal_key k1, k2;
    assert_int_equal(op_sec_seal_keygen(&k1), OP_OK);
    assert_int_equal(op_sec_seal_keygen(&k2), OP_OK);
    struct sync_batch *b = filled_batch(500);
    struct op_buf msg, plain;
    op_buf_init(&msg, 1 << 24);
    op_buf_init(&plain, 1 << 24);
    struct sync_cover cv = { 100, 599, 99, false, false };
    assert_int_equal(sync__batch_encode(b, "n1", "cloud", 3, &cv, &k1, &msg), OP_OK);
    assert_int_equal(sync__batch_encode(b, "n1", "cloud", 3, &cv, NULL, &plain), OP_OK);
    struct op_sync_batch_in in;
    struct op_seal_key both[2] = { k2, k1 }; /* rotation: the kid picks the key */
    assert_int_equal(decode(&msg, both, 2, N, &in), OP_OK);
    assert_int_equal(in.n, 500);
    op_sync_batch_in_free(&in);
    assert_int_equal(decode(&msg, &k2, 1, N, &in), OP_ENOTFOUND); /* not our key */
    assert_int_equal(decode(&msg, NULL, 0, N, &in), OP_ENOTFOUND); /* no key at all */
    assert_int_equal(decode(&plain, &k1, 1, N, &in), OP_EINVAL);   /* unsealed refused */
    /* Any flipped byte after the header fails to open. */
    struct op_sync_header h;
    struct op_diag d;
    assert_int_equal(op_sync_header_parse(msg.data, msg.len, &h, &d), OP_OK);
    size_t body = (size_t)(h.body - (const uint8_t *)msg.data);
    for (size_t i = body; i < msg.len; i += 7) {
        msg.data[i] ^= 0x20;
        assert_int_not_equal(decode(&msg, &k1, 1, N, &in), OP_OK);
        msg.data[i] ^= 0x20;
    }
    /* The batch number is bound into the seal: a replay under another
     * number does not open. */
    size_t seq_at = body - 8;
    msg.data[seq_at] ^= 1;
    assert_int_equal(decode(&msg, &k1, 1, N, &in), OP_ECORRUPT);
    op_buf_fini(&msg);
    op_buf_fini(&plain);
    sync__batch_destroy(b);
}

/* A batch sent ahead of the cursor carries its floor and what it covers
 * inside the payload (so a seal covers them); a receiver that does not know
 * the trailer refuses it rather than settle the wrong positions. */
static void test_ranged_round_trip(void **state)
{
    (void)state;
    struct sync_batch *b = filled_batch(300);
    struct op_seal_key k;
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    for (int sparse = 0; sparse < 2; sparse++) {
        struct op_buf msg;
        op_buf_init(&msg, 1 << 24);
        struct sync_cover cv = { 100, 399, 40, true, sparse == 1 };
        assert_int_equal(sync__batch_encode(b, "n1", "cloud", 9, &cv, &k, &msg), OP_OK);
        struct op_sync_batch_in in;
        assert_int_equal(decode(&msg, &k, 1, N, &in), OP_OK);
        assert_true(in.ranged);
        assert_int_equal(in.sparse, sparse == 1);
        assert_int_equal(in.floor, 40);
        assert_int_equal(in.n, 300);
        op_sync_batch_in_free(&in);
        /* The ranged flag cleared in the clear header: trailing bytes. */
        struct op_sync_header h;
        struct op_diag d;
        assert_int_equal(op_sync_header_parse(msg.data, msg.len, &h, &d), OP_OK);
        msg.data[4] &= (char)~4;
        assert_int_equal(decode(&msg, &k, 1, N, &in), OP_ECORRUPT);
        op_buf_fini(&msg);
    }
    /* A floor at or past first is not a batch ahead of anything. */
    struct op_buf msg;
    op_buf_init(&msg, 1 << 24);
    struct sync_cover bad = { 100, 399, 100, true, false };
    assert_int_equal(sync__batch_encode(b, "n1", "cloud", 9, &bad, NULL, &msg), OP_OK);
    struct op_sync_batch_in in;
    assert_int_equal(decode(&msg, NULL, 0, N, &in), OP_ECORRUPT);
    op_buf_fini(&msg);
    op_sec_seal_key_wipe(&k);
    sync__batch_destroy(b);
}

static void test_json_form(void **state)
{
    (void)state;
    struct sync_batch *b;
    assert_int_equal(sync__batch_create(&b), OP_OK);
    assert_int_equal(sync__batch_add(b, "a", 1, 5, 1000, 1.5), OP_OK);
    assert_int_equal(sync__batch_add(b, "b", 1, 6, 1001, -2), OP_OK);
    assert_int_equal(sync__batch_add(b, "a", 1, 7, 1002, 3), OP_OK);
    struct op_buf out;
    op_buf_init(&out, 4096);
    struct sync_cover cv = { 5, 7, 4, false, false };
    assert_int_equal(sync__batch_encode_json(b, "n1", "cloud", 2, &cv, &out), OP_OK);
    assert_string_equal(out.data,
                        "{\"node\":\"n1\",\"uplink\":\"cloud\",\"seq\":2,\"first\":5,\"last\":7,"
                        "\"readings\":[{\"sensor\":\"a\",\"ts\":1000,\"value\":1.5,\"pos\":5},"
                        "{\"sensor\":\"a\",\"ts\":1002,\"value\":3,\"pos\":7},"
                        "{\"sensor\":\"b\",\"ts\":1001,\"value\":-2,\"pos\":6}]}");
    /* Sent ahead of the cursor (priorities): the floor and what it covers. */
    op_buf_reset(&out);
    cv = (struct sync_cover){ 5, 7, 2, true, true };
    assert_int_equal(sync__batch_encode_json(b, "n1", "cloud", 3, &cv, &out), OP_OK);
    assert_non_null(strstr(out.data, "\"last\":7,\"floor\":2,\"sparse\":true,\"readings\""));
    op_buf_fini(&out);
    sync__batch_destroy(b);
}

static void test_bad_headers(void **state)
{
    (void)state;
    struct op_sync_header h;
    struct op_diag d;
    static const char *const bad[] = {
        "",
        "OPB2\x02\x02n1\x05" "cloud" "\x01\0\0\0\0\0\0\0",   /* magic */
        "OPB1\x04\x02n1\x05" "cloud" "\x01\0\0\0\0\0\0\0",   /* flags */
        "OPB1\x02\x02n/\x05" "cloud" "\x01\0\0\0\0\0\0\0",   /* '/' in the node */
        "OPB1\x02\x00\x05" "cloud" "\x01\0\0\0\0\0\0\0",     /* empty node */
        "OPB1\x02\x02n1\x05" "cl ud" "\x01\0\0\0\0\0\0\0",   /* a space in the uplink */
        "OPB1\x02\x02n1\x05" "cloud" "\x01\0\0",             /* short sequence */
    };
    static const size_t lens[] = { 0, 20, 20, 20, 18, 20, 15 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_diag_clear(&d);
        assert_int_equal(op_sync_header_parse(bad[i], lens[i], &h, &d), OP_ECORRUPT);
        assert_string_equal(d.code, "invalid_batch");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_sealed_batches),
        cmocka_unit_test(test_ranged_round_trip),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_bad_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
