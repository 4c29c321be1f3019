/*
 * Ed25519 detached signatures (src/sec/sec_sign.c): round trips, the
 * RFC 8032 vector through the Nettle wrapper, the documented prehash, key
 * and signature files on disk, every flipped bit of a file and of a
 * signature, the wrong key, malformed files and an allocation-failure
 * sweep.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "outpost/util.h"
#include "sec_int.h"
#include "test_sec_common.h"

#define SIG_LINE (OP_SIG_TEXT_SIZE - 1)

/* RFC 8032 section 7.1, test 1 (empty message), and FIPS 180-2's "abc". */
static void test_known_answers(void **state)
{
    (void)state;
    uint8_t seed[32], pub[32], want_pub[32], sig[64], want_sig[64], h[64], want_h[64];
    tsec_unhex(seed, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    tsec_unhex(want_pub, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    tsec_unhex(want_sig, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    sec__ed25519_public_key(pub, seed);
    assert_memory_equal(pub, want_pub, 32);
    sec__ed25519_sign(pub, seed, "", 0, sig);
    assert_memory_equal(sig, want_sig, 64);
    assert_true(sec__ed25519_verify(pub, "", 0, sig));
    sig[0] ^= 1;
    assert_false(sec__ed25519_verify(pub, "", 0, sig));

    tsec_unhex(want_h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    op_sec_sign_hash("abc", 3, h);
    assert_memory_equal(h, want_h, 64);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct op_sign_key k;
    struct op_verify_key v;
    uint8_t data[1000], digest[OP_SHA256_LEN];
    char sig[OP_SIG_TEXT_SIZE], sig2[OP_SIG_TEXT_SIZE], hex[OP_KID_HEX_SIZE];
    tsec_fill(data, sizeof data, 1);
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_sign_key_public(&k, &v);

    /* The kid is the first 8 bytes of SHA-256(public key). */
    op_sec_sha256(k.pub, sizeof k.pub, digest);
    assert_memory_equal(k.kid, digest, OP_KID_LEN);
    op_sec_kid_hex(k.kid, hex);
    assert_int_equal(strlen(hex), 16);

    for (size_t n = 0; n <= sizeof data; n += 250) {
        op_sec_sign(&k, data, n, sig);
        assert_int_equal(strlen(sig), SIG_LINE);
        assert_int_equal(sig[SIG_LINE - 1], '\n');
        assert_int_equal(strncmp(sig, "outpost-sig v1 ed25519 ", 23), 0);
        assert_memory_equal(sig + 23, hex, 16);
        assert_int_equal(op_sec_verify(&v, data, n, sig, strlen(sig)), OP_OK);
        /* Without the final newline too. */
        assert_int_equal(op_sec_verify(&v, data, n, sig, SIG_LINE - 1), OP_OK);
        /* Ed25519 is deterministic. */
        op_sec_sign(&k, data, n, sig2);
        assert_string_equal(sig, sig2);
    }
    op_sec_sign_key_wipe(&k);
    uint8_t zero[sizeof k] = { 0 };
    assert_memory_equal(&k, zero, sizeof k);
}

/* What docs/internals/sec.md promises a third-party verifier: Ed25519 over
 * "outpost-sign-v1\0" || SHA-512(bytes). */
static void test_prehash_format(void **state)
{
    (void)state;
    struct op_sign_key k;
    struct op_sig s;
    uint8_t data[77], msg[16 + 64];
    char sig[OP_SIG_TEXT_SIZE];
    tsec_fill(data, sizeof data, 2);
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_sign(&k, data, sizeof data, sig);
    assert_int_equal(op_sec_sig_parse(&s, sig, strlen(sig)), OP_OK);
    assert_memory_equal(s.kid, k.kid, OP_KID_LEN);
    memcpy(msg, "outpost-sign-v1\0", 16);
    op_sec_sign_hash(data, sizeof data, msg + 16);
    assert_true(sec__ed25519_verify(k.pub, msg, sizeof msg, s.sig));
    /* And not over the bare bytes or the bare hash. */
    assert_false(sec__ed25519_verify(k.pub, data, sizeof data, s.sig));
    assert_false(sec__ed25519_verify(k.pub, msg + 16, 64, s.sig));
    op_sec_sign_key_wipe(&k);
}

static void test_key_files(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir();
    char *key = tsec_path(dir, "k.key"), *pub = tsec_path(dir, "k.pub");
    char *pub2 = tsec_path(dir, "k2.pub"), *key2 = tsec_path(dir, "k2.key");
    struct op_sign_key k, k2, loaded;
    struct op_verify_key v;
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    assert_int_equal(op_sec_sign_key_write(&k, key, pub), OP_OK);
    assert_int_equal(tsec_mode(key), 0600);
    assert_int_equal(op_sec_sign_key_load(&loaded, key), OP_OK);
    assert_memory_equal(&loaded, &k, sizeof k);
    assert_int_equal(op_sec_verify_key_load(&v, pub), OP_OK);
    assert_memory_equal(v.pub, k.pub, 32);
    assert_memory_equal(v.kid, k.kid, 8);

    /* The documented layout. */
    size_t len;
    char *text = tsec_read(pub, &len);
    char hex[OP_KID_HEX_SIZE];
    op_sec_kid_hex(k.kid, hex);
    assert_int_equal(strncmp(text, "outpost-ed25519-public v1\nkid ", 30), 0);
    assert_memory_equal(text + 30, hex, 16);
    assert_int_equal(strncmp(text + 46, "\nkey ", 5), 0);
    assert_int_equal(len, 51 + 44 + 1);
    op_free(text);

    /* Never replaced: both exist. */
    assert_int_equal(op_sec_sign_keygen(&k2), OP_OK);
    assert_int_equal(op_sec_sign_key_write(&k2, key, pub2), OP_EIO);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(access(pub2, F_OK), -1);
    assert_int_equal(op_sec_sign_key_load(&loaded, key), OP_OK);
    assert_memory_equal(&loaded, &k, sizeof k);
    /* The public file exists: the new secret file is taken back. */
    assert_int_equal(op_sec_sign_key_write(&k2, key2, pub), OP_EIO);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(access(key2, F_OK), -1);

    /* Unreadable. */
    char *missing = tsec_path(dir, "missing.key");
    assert_int_equal(op_sec_sign_key_load(&loaded, missing), OP_EIO);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(op_sec_verify_key_load(&v, dir), OP_EIO);

    /* A file too large to be a key. */
    char big[8192];
    memset(big, 'a', sizeof big);
    tsec_write(missing, big, sizeof big);
    assert_int_equal(op_sec_sign_key_load(&loaded, missing), OP_EINVAL);

    op_sec_sign_key_wipe(&k);
    op_sec_sign_key_wipe(&k2);
    op_sec_sign_key_wipe(&loaded);
    op_free(missing);
    op_free(key);
    op_free(pub);
    op_free(key2);
    op_free(pub2);
    tsec_rmrf(dir);
}

static void test_hash_file(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir(), *path = tsec_path(dir, "model.bin");
    size_t n = 200 * 1000 + 7; /* more than the 64 KiB chunk, not a multiple */
    uint8_t *data = op_malloc(n), h1[64], h2[64];
    tsec_fill(data, n, 3);
    tsec_write(path, data, n);
    assert_int_equal(op_sec_sign_hash_file(path, h1), OP_OK);
    op_sec_sign_hash(data, n, h2);
    assert_memory_equal(h1, h2, 64);
    tsec_write(path, "", 0);
    assert_int_equal(op_sec_sign_hash_file(path, h1), OP_OK);
    op_sec_sign_hash("", 0, h2);
    assert_memory_equal(h1, h2, 64);
    assert_int_equal(op_sec_sign_hash_file(dir, h1), OP_EIO);
    char *missing = tsec_path(dir, "nope");
    assert_int_equal(op_sec_sign_hash_file(missing, h1), OP_EIO);
    assert_int_equal(errno, ENOENT);
    op_free(missing);
    op_free(data);
    op_free(path);
    tsec_rmrf(dir);
}

/* A signed file on disk; every single-bit change of it fails. */
static void test_every_file_bit(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir(), *path = tsec_path(dir, "update.bin");
    struct op_sign_key k;
    struct op_verify_key v;
    uint8_t data[48], h[64];
    char sig[OP_SIG_TEXT_SIZE];
    tsec_fill(data, sizeof data, 4);
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_sign_key_public(&k, &v);
    tsec_write(path, data, sizeof data);
    assert_int_equal(op_sec_sign_hash_file(path, h), OP_OK);
    op_sec_sign_hashed(&k, h, sig);
    assert_int_equal(op_sec_verify_hashed(&v, h, sig, strlen(sig)), OP_OK);
    for (size_t bit = 0; bit < 8 * sizeof data; bit++) {
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tsec_write(path, data, sizeof data);
        assert_int_equal(op_sec_sign_hash_file(path, h), OP_OK);
        assert_int_equal(op_sec_verify_hashed(&v, h, sig, strlen(sig)), OP_ECORRUPT);
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Truncated and extended. */
    assert_int_equal(op_sec_verify(&v, data, sizeof data - 1, sig, strlen(sig)), OP_ECORRUPT);
    uint8_t longer[sizeof data + 1];
    memcpy(longer, data, sizeof data);
    longer[sizeof data] = 0;
    assert_int_equal(op_sec_verify(&v, longer, sizeof longer, sig, strlen(sig)), OP_ECORRUPT);
    op_sec_sign_key_wipe(&k);
    op_free(path);
    tsec_rmrf(dir);
}

/* Every single-bit change of the signature file's text, and of the raw
 * signature bytes under a correct encoding, fails. */
static void test_every_signature_bit(void **state)
{
    (void)state;
    struct op_sign_key k;
    struct op_verify_key v;
    struct op_sig s;
    uint8_t data[100];
    char sig[OP_SIG_TEXT_SIZE], hex[OP_KID_HEX_SIZE];
    tsec_fill(data, sizeof data, 5);
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_sign_key_public(&k, &v);
    op_sec_sign(&k, data, sizeof data, sig);
    size_t len = strlen(sig);
    for (size_t bit = 0; bit < 8 * len; bit++) {
        sig[bit / 8] ^= (char)(1u << (bit % 8));
        int rc = op_sec_verify(&v, data, sizeof data, sig, len);
        assert_int_not_equal(rc, OP_OK);
        assert_true(rc == OP_EINVAL || rc == OP_ENOTFOUND || rc == OP_ECORRUPT);
        sig[bit / 8] ^= (char)(1u << (bit % 8));
    }
    assert_int_equal(op_sec_verify(&v, data, sizeof data, sig, len), OP_OK);

    /* The raw signature: each changed bit, re-encoded canonically, is a
     * well-formed file whose signature does not match. */
    assert_int_equal(op_sec_sig_parse(&s, sig, len), OP_OK);
    op_sec_kid_hex(s.kid, hex);
    for (size_t bit = 0; bit < 8 * OP_ED25519_SIG_LEN; bit++) {
        char text[OP_SIG_TEXT_SIZE];
        s.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int n = snprintf(text, sizeof text, "outpost-sig v1 ed25519 %s ", hex);
        sec__b64_encode(text + n, s.sig, OP_ED25519_SIG_LEN);
        assert_int_equal(op_sec_verify(&v, data, sizeof data, text, (size_t)n + 88), OP_ECORRUPT);
        s.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    op_sec_sign_key_wipe(&k);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct op_sign_key k1, k2;
    struct op_verify_key v2;
    struct op_sig s;
    char sig[OP_SIG_TEXT_SIZE];
    assert_int_equal(op_sec_sign_keygen(&k1), OP_OK);
    assert_int_equal(op_sec_sign_keygen(&k2), OP_OK);
    op_sec_sign_key_public(&k2, &v2);
    op_sec_sign(&k1, "model", 5, sig);
    assert_int_equal(op_sec_verify(&v2, "model", 5, sig, strlen(sig)), OP_ENOTFOUND);
    assert_int_equal(op_sec_sig_parse(&s, sig, strlen(sig)), OP_OK);
    assert_memory_equal(s.kid, k1.kid, OP_KID_LEN);
    /* A signature relabelled with the verifier's kid still fails. */
    char hex[OP_KID_HEX_SIZE];
    op_sec_kid_hex(k2.kid, hex);
    memcpy(sig + 23, hex, 16);
    assert_int_equal(op_sec_verify(&v2, "model", 5, sig, strlen(sig)), OP_ECORRUPT);
    op_sec_sign_key_wipe(&k1);
    op_sec_sign_key_wipe(&k2);
}

/* Signature files that are not: table-driven, each read from a buffer with
 * junk after it so that nothing relies on a NUL. */
static void test_malformed_signatures(void **state)
{
    (void)state;
    struct op_sign_key k;
    struct op_verify_key v;
    struct op_sig s;
    char good[OP_SIG_TEXT_SIZE];
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_sign_key_public(&k, &v);
    op_sec_sign(&k, "x", 1, good);

    char upper[OP_SIG_TEXT_SIZE], crlf[OP_SIG_TEXT_SIZE + 1], twonl[OP_SIG_TEXT_SIZE + 1],
        space[OP_SIG_TEXT_SIZE + 1], nul[OP_SIG_TEXT_SIZE], padbits[OP_SIG_TEXT_SIZE],
        alg[OP_SIG_TEXT_SIZE], ws[OP_SIG_TEXT_SIZE];
    memcpy(upper, good, sizeof good);
    for (int i = 23; i < 39; i++)
        upper[i] = (char)(upper[i] >= 'a' ? upper[i] - 32 : upper[i]);
    /* Make sure at least one kid digit was a letter to upper-case. */
    if (!memcmp(upper, good, sizeof good))
        upper[23] = 'A';
    snprintf(crlf, sizeof crlf, "%.*s\r\n", SIG_LINE - 1, good);
    snprintf(twonl, sizeof twonl, "%s\n", good);
    snprintf(space, sizeof space, "%.*s \n", SIG_LINE - 1, good);
    memcpy(nul, good, sizeof good);
    nul[60] = '\0';
    /* 64 bytes encode as 86 characters and "==": the last character
     * before the padding carries 4 unused bits, which must be zero. */
    memcpy(padbits, good, sizeof good);
    const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pos = strchr(b64, padbits[40 + 85]) - b64;
    padbits[40 + 85] = b64[pos ^ 1];
    memcpy(alg, good, sizeof good);
    memcpy(alg + 15, "ed448  ", 7);
    memcpy(ws, good, sizeof good);
    ws[50] = ' ';

    struct {
        const char *name;
        const char *text;
        size_t len;
    } cases[] = {
        { "empty", "", 0 },
        { "newline only", "\n", 1 },
        { "prefix only", "outpost-sig v1 ed25519 ", 23 },
        { "truncated by one", good, SIG_LINE - 2 },
        { "truncated kid", good, 30 },
        { "upper-case kid", upper, SIG_LINE },
        { "CRLF", crlf, SIG_LINE + 1 },
        { "two newlines", twonl, SIG_LINE + 1 },
        { "trailing space", space, SIG_LINE + 1 },
        { "NUL inside", nul, SIG_LINE },
        { "non-zero pad bits", padbits, SIG_LINE },
        { "other algorithm", alg, SIG_LINE },
        { "space in base64", ws, SIG_LINE },
        { "v2", "outpost-sig v2 ed25519 0123456789abcdef AAAA", 44 },
        { "garbage", "\xff\xfe\x00\x01 hello", 10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        memset(buf, 'Z', sizeof buf);
        memcpy(buf, cases[i].text, cases[i].len);
        int rc = op_sec_verify(&v, "x", 1, buf, cases[i].len);
        if (rc != OP_EINVAL)
            fail_msg("case '%s': got %d, want OP_EINVAL", cases[i].name, rc);
        assert_int_equal(op_sec_sig_parse(&s, buf, cases[i].len), OP_EINVAL);
    }
    /* The good one, with junk after it outside len. */
    char buf[512];
    memset(buf, 'Z', sizeof buf);
    memcpy(buf, good, SIG_LINE);
    assert_int_equal(op_sec_verify(&v, "x", 1, buf, SIG_LINE), OP_OK);
    /* A NULL text of length 0 is just empty. */
    assert_int_equal(op_sec_sig_parse(&s, NULL, 0), OP_EINVAL);
    op_sec_sign_key_wipe(&k);
}

static void test_malformed_key_files(void **state)
{
    (void)state;
    struct op_sign_key k, got;
    struct op_verify_key v;
    char hex[OP_KID_HEX_SIZE], b64seed[45], b64pub[45], other[OP_KID_HEX_SIZE];
    char secret[256], pub[256];
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    op_sec_kid_hex(k.kid, hex);
    sec__b64_encode(b64seed, k.seed, 32);
    b64seed[44] = '\0';
    sec__b64_encode(b64pub, k.pub, 32);
    b64pub[44] = '\0';
    snprintf(secret, sizeof secret, "outpost-ed25519-secret v1\nkid %s\nkey %s\n", hex, b64seed);
    snprintf(pub, sizeof pub, "outpost-ed25519-public v1\nkid %s\nkey %s\n", hex, b64pub);
    assert_int_equal(op_sec_sign_key_parse(&got, secret, strlen(secret)), OP_OK);
    assert_memory_equal(&got, &k, sizeof k);
    /* The final newline is optional. */
    assert_int_equal(op_sec_sign_key_parse(&got, secret, strlen(secret) - 1), OP_OK);
    assert_int_equal(op_sec_verify_key_parse(&v, pub, strlen(pub)), OP_OK);

    /* A well-formed file whose kid is another key's. */
    memcpy(other, hex, sizeof hex);
    other[0] = other[0] == '0' ? '1' : '0';
    char wrongkid[256];
    snprintf(wrongkid, sizeof wrongkid, "outpost-ed25519-secret v1\nkid %s\nkey %s\n", other,
             b64seed);
    assert_int_equal(op_sec_sign_key_parse(&got, wrongkid, strlen(wrongkid)), OP_ECORRUPT);
    uint8_t zero[sizeof got] = { 0 };
    assert_memory_equal(&got, zero, sizeof got); /* wiped on failure */
    snprintf(wrongkid, sizeof wrongkid, "outpost-ed25519-public v1\nkid %s\nkey %s\n", other,
             b64pub);
    assert_int_equal(op_sec_verify_key_parse(&v, wrongkid, strlen(wrongkid)), OP_ECORRUPT);

    char bad[16][320];
    int nbad = 0;
#define BAD(...) snprintf(bad[nbad++], sizeof bad[0], __VA_ARGS__)
#define V1 "outpost-ed25519-secret v1"
    BAD("%s", "");
    BAD(V1 "\n");
    BAD(V1 "\nkid %s\n", hex);
    BAD("outpost-ed25519-secret v2\nkid %s\nkey %s\n", hex, b64seed);
    BAD("%s\n", secret); /* an extra line */
    BAD(V1 "\nkey %s\nkid %s\n", b64seed, hex);
    BAD(V1 "\nkid %.15s\nkey %s\n", hex, b64seed);
    BAD(V1 "\nkid  %s\nkey %s\n", hex, b64seed);
    BAD(V1 "\nkid %s\nkey %.43s\n", hex, b64seed);
    BAD(V1 "\r\nkid %s\r\nkey %s\r\n", hex, b64seed);
    BAD(V1 "\nkid %s\nkey %s=\n", hex, b64seed);
    BAD("%s", pub); /* a public file is not a secret one */
#undef BAD
#undef V1
    for (int i = 0; i < nbad; i++) {
        int rc = op_sec_sign_key_parse(&got, bad[i], strlen(bad[i]));
        if (rc != OP_EINVAL)
            fail_msg("secret case %d: got %d, want OP_EINVAL", i, rc);
    }
    assert_int_equal(op_sec_verify_key_parse(&v, secret, strlen(secret)), OP_EINVAL);
    assert_int_equal(op_sec_verify_key_parse(&v, pub, 10), OP_EINVAL);

    /* Random bytes and random mutations of a good file: never a crash,
     * never a key the file did not hold. */
    uint32_t seed = 99;
    for (int round = 0; round < 20000; round++) {
        char buf[256];
        size_t len = strlen(secret);
        memcpy(buf, secret, len);
        seed = seed * 1103515245u + 12345u;
        size_t at = (seed >> 8) % len;
        seed = seed * 1103515245u + 12345u;
        buf[at] = (char)(seed >> 16);
        if (round % 7 == 0)
            len = at;
        int rc = op_sec_sign_key_parse(&got, buf, len);
        if (rc == OP_OK)
            assert_memory_equal(&got, &k, sizeof k);
        else
            assert_true(rc == OP_EINVAL || rc == OP_ECORRUPT);
    }
    op_sec_sign_key_wipe(&k);
    op_sec_sign_key_wipe(&got);
}

/* Fail the 1st, 2nd, ... allocation of key loading and file hashing: only
 * OP_OK or OP_ENOMEM, and (under ASan) nothing leaked. */
static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    char *dir = tsec_tmpdir();
    char *key = tsec_path(dir, "s.key"), *pub = tsec_path(dir, "s.pub");
    char *file = tsec_path(dir, "f.bin");
    struct op_sign_key k, got;
    struct op_verify_key v;
    uint8_t h[64], want[64];
    char sig[OP_SIG_TEXT_SIZE];
    assert_int_equal(op_sec_sign_keygen(&k), OP_OK);
    assert_int_equal(op_sec_sign_key_write(&k, key, pub), OP_OK);
    tsec_write(file, "payload", 7);
    op_sec_sign_hash("payload", 7, want);
    op_sec_sign_hashed(&k, want, sig);
    int done = 0;
    for (long n = 1; n < 50 && !done; n++) {
        op_alloc_fail_after(n);
        int r1 = op_sec_sign_key_load(&got, key);
        int r2 = op_sec_verify_key_load(&v, pub);
        int r3 = op_sec_sign_hash_file(file, h);
        int r4 = r2 == OP_OK && r3 == OP_OK ? op_sec_verify_hashed(&v, h, sig, strlen(sig)) : r2;
        op_alloc_fail_after(0);
        assert_true(r1 == OP_OK || r1 == OP_ENOMEM);
        assert_true(r2 == OP_OK || r2 == OP_ENOMEM);
        assert_true(r3 == OP_OK || r3 == OP_ENOMEM);
        assert_true(r4 == OP_OK || r4 == OP_ENOMEM);
        if (r1 == OP_OK)
            assert_memory_equal(&got, &k, sizeof k);
        done = r1 == OP_OK && r2 == OP_OK && r3 == OP_OK && r4 == OP_OK;
    }
    assert_true(done);
    op_sec_sign_key_wipe(&k);
    op_sec_sign_key_wipe(&got);
    op_free(key);
    op_free(pub);
    op_free(file);
    tsec_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_prehash_format),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_hash_file),
        cmocka_unit_test(test_every_file_bit),
        cmocka_unit_test(test_every_signature_bit),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_malformed_signatures),
        cmocka_unit_test(test_malformed_key_files),
        cmocka_unit_test(test_alloc_failure_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
