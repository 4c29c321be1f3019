/*
 * Sealing (src/sec/sec_seal.c): the RFC 8439 vector through the Nettle
 * wrapper, round trips from empty to large payloads, every tampered byte
 * of a sealed message, the wrong node id or sequence, swapped headers, key
 * sets, short and malformed messages, key files and an allocation-failure
 * sweep.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "outpost/util.h"
#include "sec_int.h"
#include "test_sec_common.h"

#define NODE "edge-7"
#define SEQ ((uint64_t)0x0102030405060708)
#define BUF_MAX ((size_t)64 << 20)

/* RFC 8439 section 2.8.2, with the AAD given in two pieces as sealing does. */
static void test_rfc8439_vector(void **state)
{
    (void)state;
    static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
                             "only one tip for the future, sunscreen would be it.";
    uint8_t key[32], nonce[12], aad[12], want[sizeof pt - 1], want_tag[16], tag[16];
    uint8_t data[sizeof pt - 1];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0x80 + i);
    tsec_unhex(nonce, "070000004041424344454647");
    tsec_unhex(aad, "50515253c0c1c2c3c4c5c6c7");
    tsec_unhex(want, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                "3ff4def08e4b7a9de576d26586cec64b6116");
    tsec_unhex(want_tag, "1ae10b594f09e26a7e902ecbd0600691");
    struct op_str ad[2] = { { (const char *)aad, 5 }, { (const char *)aad + 5, 7 } };
    memcpy(data, pt, sizeof data);
    sec__aead_encrypt(key, nonce, ad, 2, data, sizeof data, tag);
    assert_memory_equal(data, want, sizeof want);
    assert_memory_equal(tag, want_tag, 16);
    assert_int_equal(sec__aead_decrypt(key, nonce, ad, 2, data, sizeof data, tag), OP_OK);
    assert_memory_equal(data, pt, sizeof data);
    /* A bad tag withholds (wipes) the plaintext. */
    memcpy(data, want, sizeof data);
    tag[15] ^= 0x80;
    assert_int_equal(sec__aead_decrypt(key, nonce, ad, 2, data, sizeof data, tag), OP_ECORRUPT);
    uint8_t zero[sizeof data] = { 0 };
    assert_memory_equal(data, zero, sizeof data);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 15, 16, 63, 64, 65, 1000, (size_t)3 << 20 };
    struct op_seal_key k;
    struct op_buf sealed, opened;
    uint8_t *pt = op_malloc(sizes[8]);
    tsec_fill(pt, sizes[8], 7);
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    op_buf_init(&sealed, BUF_MAX);
    op_buf_init(&opened, BUF_MAX);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t kid[OP_KID_LEN];
        op_buf_reset(&sealed);
        op_buf_reset(&opened);
        assert_int_equal(op_sec_seal(&k, NODE, SEQ, n ? pt : NULL, n, &sealed), OP_OK);
        assert_int_equal(sealed.len, n + OP_SEAL_OVERHEAD);
        assert_memory_equal(sealed.data, "OPS1\x01", 5);
        assert_memory_equal(sealed.data + 5, k.kid, OP_KID_LEN);
        assert_int_equal(op_sec_seal_kid(sealed.data, sealed.len, kid), OP_OK);
        assert_memory_equal(kid, k.kid, OP_KID_LEN);
        if (n >= 16) /* encrypted, not copied */
            assert_memory_not_equal(sealed.data + OP_SEAL_HEADER_LEN, pt, 16);
        assert_int_equal(op_sec_open(&k, 1, NODE, SEQ, sealed.data, sealed.len, &opened), OP_OK);
        assert_int_equal(opened.len, n);
        if (n)
            assert_memory_equal(opened.data, pt, n);
    }
    /* Two seals of the same bytes differ (fresh nonce) and both open. */
    struct op_buf a, b;
    op_buf_init(&a, BUF_MAX);
    op_buf_init(&b, BUF_MAX);
    assert_int_equal(op_sec_seal(&k, NODE, 1, "same", 4, &a), OP_OK);
    assert_int_equal(op_sec_seal(&k, NODE, 1, "same", 4, &b), OP_OK);
    assert_memory_not_equal(a.data + 13, b.data + 13, 12);
    assert_memory_not_equal(a.data + OP_SEAL_HEADER_LEN, b.data + OP_SEAL_HEADER_LEN, 4);
    op_buf_reset(&opened);
    assert_int_equal(op_sec_open(&k, 1, NODE, 1, b.data, b.len, &opened), OP_OK);
    assert_string_equal(opened.data, "same");
    op_buf_fini(&a);
    op_buf_fini(&b);
    op_buf_fini(&sealed);
    op_buf_fini(&opened);
    op_sec_seal_key_wipe(&k);
    op_free(pt);
}

/* Every bit of a sealed message, changed alone, stops it opening, with the
 * code for the part it falls in, and releases nothing. */
static void test_every_bit_tampered(void **state)
{
    (void)state;
    struct op_seal_key k;
    struct op_buf sealed, opened;
    uint8_t pt[70];
    tsec_fill(pt, sizeof pt, 8);
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    op_buf_init(&sealed, BUF_MAX);
    op_buf_init(&opened, BUF_MAX);
    assert_int_equal(op_sec_seal(&k, NODE, SEQ, pt, sizeof pt, &sealed), OP_OK);
    uint8_t *m = (uint8_t *)sealed.data;
    for (size_t bit = 0; bit < 8 * sealed.len; bit++) {
        size_t at = bit / 8;
        m[at] ^= (uint8_t)(1u << (bit % 8));
        int want = at < 5 ? OP_EINVAL : at < 13 ? OP_ENOTFOUND : OP_ECORRUPT;
        int rc = op_sec_open(&k, 1, NODE, SEQ, m, sealed.len, &opened);
        if (rc != want)
            fail_msg("byte %zu bit %zu: got %d, want %d", at, bit % 8, rc, want);
        assert_int_equal(opened.len, 0);
        m[at] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(op_sec_open(&k, 1, NODE, SEQ, m, sealed.len, &opened), OP_OK);
    assert_memory_equal(opened.data, pt, sizeof pt);

    /* Truncated anywhere, or extended. */
    for (size_t len = 0; len < sealed.len; len++) {
        op_buf_reset(&opened);
        int rc = op_sec_open(&k, 1, NODE, SEQ, m, len, &opened);
        assert_int_equal(rc, len < OP_SEAL_OVERHEAD ? OP_EINVAL : OP_ECORRUPT);
        assert_int_equal(opened.len, 0);
    }
    assert_int_equal(op_buf_append(&sealed, "", 1), OP_OK);
    op_buf_reset(&opened);
    assert_int_equal(op_sec_open(&k, 1, NODE, SEQ, sealed.data, sealed.len, &opened),
                     OP_ECORRUPT);
    op_buf_fini(&sealed);
    op_buf_fini(&opened);
    op_sec_seal_key_wipe(&k);
}

static void test_binding(void **state)
{
    (void)state;
    struct op_seal_key k;
    struct op_buf a, b, opened;
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    op_buf_init(&a, BUF_MAX);
    op_buf_init(&b, BUF_MAX);
    op_buf_init(&opened, BUF_MAX);
    assert_int_equal(op_sec_seal(&k, "node-1", 41, "batch 41", 8, &a), OP_OK);
    assert_int_equal(op_sec_seal(&k, "node-1", 42, "batch 42", 8, &b), OP_OK);

    static const struct {
        const char *node;
        uint64_t seq;
    } wrong[] = {
        { "node-2", 41 }, { "node-10", 41 }, { "node-", 41 }, { "", 41 },
        { "node-1", 42 }, { "node-1", 40 },  { "node-1", 41 | (uint64_t)1 << 63 },
        { "node-1", 0 },
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        assert_int_equal(op_sec_open(&k, 1, wrong[i].node, wrong[i].seq, a.data, a.len, &opened),
                         OP_ECORRUPT);
    assert_int_equal(opened.len, 0);
    assert_int_equal(op_sec_open(&k, 1, "node-1", 41, a.data, a.len, &opened), OP_OK);

    /* b's header on a's body, and the other way round. */
    uint8_t swapped[8 + OP_SEAL_OVERHEAD];
    memcpy(swapped, b.data, OP_SEAL_HEADER_LEN);
    memcpy(swapped + OP_SEAL_HEADER_LEN, a.data + OP_SEAL_HEADER_LEN, a.len - OP_SEAL_HEADER_LEN);
    op_buf_reset(&opened);
    assert_int_equal(op_sec_open(&k, 1, "node-1", 41, swapped, sizeof swapped, &opened),
                     OP_ECORRUPT);
    assert_int_equal(op_sec_open(&k, 1, "node-1", 42, swapped, sizeof swapped, &opened),
                     OP_ECORRUPT);
    op_buf_fini(&a);
    op_buf_fini(&b);
    op_buf_fini(&opened);
    op_sec_seal_key_wipe(&k);
}

static void test_key_sets_and_arguments(void **state)
{
    (void)state;
    struct op_seal_key keys[3];
    struct op_buf sealed, opened;
    for (int i = 0; i < 3; i++)
        assert_int_equal(op_sec_seal_keygen(&keys[i]), OP_OK);
    op_buf_init(&sealed, BUF_MAX);
    op_buf_init(&opened, BUF_MAX);
    assert_int_equal(op_sec_seal(&keys[1], NODE, 5, "rotated", 7, &sealed), OP_OK);
    assert_int_equal(op_sec_open(keys, 3, NODE, 5, sealed.data, sealed.len, &opened), OP_OK);
    assert_string_equal(opened.data, "rotated");
    op_buf_reset(&opened);
    assert_int_equal(op_sec_open(&keys[2], 1, NODE, 5, sealed.data, sealed.len, &opened),
                     OP_ENOTFOUND);
    assert_int_equal(op_sec_open(NULL, 0, NODE, 5, sealed.data, sealed.len, &opened),
                     OP_ENOTFOUND);
    /* A key set whose kid matches but whose key differs. */
    struct op_seal_key impostor = keys[2];
    memcpy(impostor.kid, keys[1].kid, OP_KID_LEN);
    assert_int_equal(op_sec_open(&impostor, 1, NODE, 5, sealed.data, sealed.len, &opened),
                     OP_ECORRUPT);
    assert_int_equal(opened.len, 0);

    /* Short or foreign messages. */
    uint8_t kid[OP_KID_LEN];
    assert_int_equal(op_sec_open(keys, 3, NODE, 5, NULL, 0, &opened), OP_EINVAL);
    assert_int_equal(op_sec_seal_kid(NULL, 100, kid), OP_EINVAL);
    assert_int_equal(op_sec_seal_kid("OPS1", 4, kid), OP_EINVAL);
    char other[64] = "OPS2";
    assert_int_equal(op_sec_seal_kid(other, sizeof other, kid), OP_EINVAL);
    memcpy(other, "OPS1\x02", 5);
    assert_int_equal(op_sec_seal_kid(other, sizeof other, kid), OP_EINVAL);

    /* NULL arguments. */
    assert_int_equal(op_sec_seal(&keys[0], NULL, 1, "x", 1, &sealed), OP_EINVAL);
    assert_int_equal(op_sec_seal(&keys[0], NODE, 1, NULL, 1, &sealed), OP_EINVAL);
    assert_int_equal(op_sec_seal(NULL, NODE, 1, "x", 1, &sealed), OP_EINVAL);
    assert_int_equal(op_sec_seal(&keys[0], NODE, 1, "x", 1, NULL), OP_EINVAL);
    assert_int_equal(op_sec_open(keys, 3, NULL, 5, sealed.data, sealed.len, &opened), OP_EINVAL);
    assert_int_equal(op_sec_open(keys, 3, NODE, 5, sealed.data, sealed.len, NULL), OP_EINVAL);

    /* out is appended to, and left as it was on failure. */
    struct op_buf out;
    op_buf_init(&out, 100);
    assert_int_equal(op_buf_appends(&out, "keep:"), OP_OK);
    assert_int_equal(op_sec_seal(&keys[0], NODE, 1, "0123456789", 10, &out), OP_OK);
    assert_int_equal(out.len, 5 + 10 + OP_SEAL_OVERHEAD);
    uint8_t big[100] = { 0 };
    assert_int_equal(op_sec_seal(&keys[0], NODE, 1, big, sizeof big, &out), OP_ETOOBIG);
    assert_int_equal(out.len, 5 + 10 + OP_SEAL_OVERHEAD);
    assert_memory_equal(out.data, "keep:", 5);
    op_buf_reset(&opened);
    assert_int_equal(op_buf_appends(&opened, "pre:"), OP_OK);
    assert_int_equal(op_sec_open(keys, 3, NODE, 1, out.data + 5, out.len - 5, &opened), OP_OK);
    assert_string_equal(opened.data, "pre:0123456789");
    assert_int_equal(op_sec_open(keys, 3, NODE, 2, out.data + 5, out.len - 5, &opened),
                     OP_ECORRUPT);
    assert_string_equal(opened.data, "pre:0123456789");
    struct op_buf tiny;
    op_buf_init(&tiny, 4);
    assert_int_equal(op_sec_open(keys, 3, NODE, 1, out.data + 5, out.len - 5, &tiny), OP_ETOOBIG);
    assert_int_equal(tiny.len, 0);
    op_buf_fini(&tiny);
    op_buf_fini(&out);
    op_buf_fini(&sealed);
    op_buf_fini(&opened);
    for (int i = 0; i < 3; i++)
        op_sec_seal_key_wipe(&keys[i]);
}

static void test_key_files(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir(), *path = tsec_path(dir, "seal.key");
    struct op_seal_key k, got;
    uint8_t digest[OP_SHA256_LEN], buf[20 + 32];
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    /* The kid is SHA-256("outpost-seal-kid-v1\0" || key), first 8 bytes. */
    memcpy(buf, "outpost-seal-kid-v1", 20);
    memcpy(buf + 20, k.key, 32);
    op_sec_sha256(buf, sizeof buf, digest);
    assert_memory_equal(k.kid, digest, OP_KID_LEN);

    assert_int_equal(op_sec_seal_key_write(&k, path), OP_OK);
    assert_int_equal(tsec_mode(path), 0600);
    assert_int_equal(op_sec_seal_key_load(&got, path), OP_OK);
    assert_memory_equal(&got, &k, sizeof k);
    assert_int_equal(op_sec_seal_key_write(&k, path), OP_EIO);
    assert_int_equal(errno, EEXIST);

    size_t len;
    char *text = tsec_read(path, &len);
    assert_int_equal(strncmp(text, "outpost-seal-key v1\nkid ", 24), 0);
    assert_int_equal(op_sec_seal_key_parse(&got, text, len), OP_OK);
    /* Each changed byte: malformed, or a kid that is not the key's. */
    for (size_t i = 0; i < len; i++) {
        text[i] ^= 0x01;
        int rc = op_sec_seal_key_parse(&got, text, len);
        assert_true(rc == OP_EINVAL || rc == OP_ECORRUPT);
        text[i] ^= 0x01;
    }
    /* A signing key file is not a sealing key file. */
    struct op_sign_key sk;
    char *skey = tsec_path(dir, "s.key"), *spub = tsec_path(dir, "s.pub");
    assert_int_equal(op_sec_sign_keygen(&sk), OP_OK);
    assert_int_equal(op_sec_sign_key_write(&sk, skey, spub), OP_OK);
    assert_int_equal(op_sec_seal_key_load(&got, skey), OP_EINVAL);
    assert_int_equal(op_sec_seal_key_parse(&got, "", 0), OP_EINVAL);
    assert_int_equal(op_sec_seal_key_parse(&got, "\xff\x00garbage", 9), OP_EINVAL);
    op_sec_sign_key_wipe(&sk);
    op_free(skey);
    op_free(spub);
    op_free(text);
    op_free(path);
    tsec_rmrf(dir);
    op_sec_seal_key_wipe(&k);
    op_sec_seal_key_wipe(&got);
}

/* Fail the 1st, 2nd, ... allocation of key loading, sealing and opening:
 * only OP_OK or OP_ENOMEM, out as it was, and (under ASan) nothing leaked. */
static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir(), *path = tsec_path(dir, "seal.key");
    struct op_seal_key k, got;
    uint8_t pt[3000];
    tsec_fill(pt, sizeof pt, 9);
    assert_int_equal(op_sec_seal_keygen(&k), OP_OK);
    assert_int_equal(op_sec_seal_key_write(&k, path), OP_OK);
    int done = 0;
    for (long n = 1; n < 50 && !done; n++) {
        struct op_buf sealed, opened;
        op_buf_init(&sealed, BUF_MAX);
        op_buf_init(&opened, BUF_MAX);
        op_alloc_fail_after(n);
        int r1 = op_sec_seal_key_load(&got, path);
        int r2 = op_sec_seal(&k, NODE, SEQ, pt, sizeof pt, &sealed);
        int r3 = r2 == OP_OK ? op_sec_open(&k, 1, NODE, SEQ, sealed.data, sealed.len, &opened)
                             : r2;
        op_alloc_fail_after(0);
        assert_true(r1 == OP_OK || r1 == OP_ENOMEM);
        assert_true(r2 == OP_OK || r2 == OP_ENOMEM);
        assert_true(r3 == OP_OK || r3 == OP_ENOMEM);
        if (r2 != OP_OK)
            assert_int_equal(sealed.len, 0);
        if (r3 != OP_OK)
            assert_int_equal(opened.len, 0);
        else
            assert_memory_equal(opened.data, pt, sizeof pt);
        done = r1 == OP_OK && r3 == OP_OK;
        op_buf_fini(&sealed);
        op_buf_fini(&opened);
    }
    assert_true(done);
    op_sec_seal_key_wipe(&k);
    op_sec_seal_key_wipe(&got);
    op_free(path);
    tsec_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8439_vector),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_bit_tampered),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_key_sets_and_arguments),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_alloc_failure_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
