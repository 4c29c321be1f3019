/*
 * The Nettle wrapper: the only file that includes Nettle's Ed25519,
 * ChaCha20-Poly1305, SHA-512 and base64 headers, so that signing
 * (sec_sign.c) and sealing (sec_seal.c) see small functions with outpost's
 * conventions and the library could be swapped in one place. Nettle is
 * GnuTLS's own crypto library, so this adds no second crypto stack.
 */
#include <stdalign.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/chacha-poly1305.h>
#include <nettle/eddsa.h>
#include <nettle/sha2.h>

#include "outpost/err.h"
#include "sec_int.h"

/* The opaque state in sec_int.h must hold Nettle's. */
_Static_assert(sizeof(struct sha512_ctx) <= sizeof(((struct sec__sha512 *)0)->opaque),
               "struct sec__sha512 is too small for Nettle's sha512_ctx");
_Static_assert(alignof(struct sha512_ctx) <= alignof(struct sec__sha512),
               "struct sec__sha512 is not aligned enough for Nettle's sha512_ctx");
_Static_assert(ED25519_KEY_SIZE == OP_ED25519_KEY_LEN &&
                   ED25519_SIGNATURE_SIZE == OP_ED25519_SIG_LEN,
               "Ed25519 sizes");
_Static_assert(CHACHA_POLY1305_KEY_SIZE == OP_SEAL_KEY_LEN &&
                   CHACHA_POLY1305_NONCE_SIZE == SEC_AEAD_NONCE_LEN &&
                   CHACHA_POLY1305_DIGEST_SIZE == OP_SEAL_TAG_LEN,
               "ChaCha20-Poly1305 sizes");

/* The largest value the key files and signatures encode (a signature). */
#define B64_MAX_BYTES 64

void sec__sha512_init(struct sec__sha512 *h)
{
    sha512_init((struct sha512_ctx *)h->opaque);
}

void sec__sha512_update(struct sec__sha512 *h, const void *p, size_t n)
{
    if (n)
        sha512_update((struct sha512_ctx *)h->opaque, n, p);
}

void sec__sha512_digest(struct sec__sha512 *h, uint8_t out[SEC_SHA512_LEN])
{
    sha512_digest((struct sha512_ctx *)h->opaque, SEC_SHA512_LEN, out);
    explicit_bzero(h, sizeof *h);
}

void sec__ed25519_public_key(uint8_t pub[OP_ED25519_KEY_LEN],
                             const uint8_t seed[OP_ED25519_KEY_LEN])
{
    ed25519_sha512_public_key(pub, seed);
}

void sec__ed25519_sign(const uint8_t pub[OP_ED25519_KEY_LEN],
                       const uint8_t seed[OP_ED25519_KEY_LEN], const void *msg, size_t n,
                       uint8_t sig[OP_ED25519_SIG_LEN])
{
    ed25519_sha512_sign(pub, seed, n, msg, sig);
}

bool sec__ed25519_verify(const uint8_t pub[OP_ED25519_KEY_LEN], const void *msg, size_t n,
                         const uint8_t sig[OP_ED25519_SIG_LEN])
{
    /* Nettle rejects a public key that is not a curve point and an S that
     * is not reduced, so a signature has one valid encoding. */
    return ed25519_sha512_verify(pub, n, msg, sig) == 1;
}

static void aead_start(struct chacha_poly1305_ctx *ctx, const uint8_t *key, const uint8_t *nonce,
                       const struct op_str *ad, size_t nad)
{
    chacha_poly1305_set_key(ctx, key);
    chacha_poly1305_set_nonce(ctx, nonce);
    for (size_t i = 0; i < nad; i++)
        if (ad[i].len)
            chacha_poly1305_update(ctx, ad[i].len, (const uint8_t *)ad[i].p);
}

void sec__aead_encrypt(const uint8_t key[OP_SEAL_KEY_LEN], const uint8_t nonce[SEC_AEAD_NONCE_LEN],
                       const struct op_str *ad, size_t nad, uint8_t *data, size_t n,
                       uint8_t tag[OP_SEAL_TAG_LEN])
{
    struct chacha_poly1305_ctx ctx;
    aead_start(&ctx, key, nonce, ad, nad);
    chacha_poly1305_encrypt(&ctx, n, data, data);
    chacha_poly1305_digest(&ctx, OP_SEAL_TAG_LEN, tag);
    explicit_bzero(&ctx, sizeof ctx);
}

int sec__aead_decrypt(const uint8_t key[OP_SEAL_KEY_LEN], const uint8_t nonce[SEC_AEAD_NONCE_LEN],
                      const struct op_str *ad, size_t nad, uint8_t *data, size_t n,
                      const uint8_t tag[OP_SEAL_TAG_LEN])
{
    struct chacha_poly1305_ctx ctx;
    uint8_t want[OP_SEAL_TAG_LEN];
    aead_start(&ctx, key, nonce, ad, nad);
    /* Nettle authenticates the ciphertext before decrypting each piece, so
     * in-place decryption is safe; the plaintext is withheld (wiped) unless
     * the whole tag matches. */
    chacha_poly1305_decrypt(&ctx, n, data, data);
    chacha_poly1305_digest(&ctx, OP_SEAL_TAG_LEN, want);
    int rc = op_sec_ct_equal(want, tag, OP_SEAL_TAG_LEN) ? OP_OK : OP_ECORRUPT;
    if (rc != OP_OK && n)
        explicit_bzero(data, n);
    explicit_bzero(&ctx, sizeof ctx);
    explicit_bzero(want, sizeof want);
    return rc;
}

void sec__b64_encode(char *dst, const uint8_t *src, size_t n)
{
    base64_encode_raw(dst, n, src);
}

int sec__b64_decode(uint8_t *dst, size_t n, const char *src, size_t len)
{
    /* Both buffers may hold a secret key; they are wiped on every path. */
    uint8_t raw[BASE64_DECODE_LENGTH(SEC_B64_LEN(B64_MAX_BYTES))];
    char again[SEC_B64_LEN(B64_MAX_BYTES)];
    size_t got = sizeof raw;
    struct base64_decode_ctx ctx;
    int rc = OP_EINVAL;
    if (n > B64_MAX_BYTES || len != SEC_B64_LEN(n))
        goto out;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &got, raw, len, src) || !base64_decode_final(&ctx) || got != n)
        goto out;
    /* Nettle skips white space inside the text; re-encoding and comparing
     * makes "one spelling per value" our rule, not a property of whatever
     * the decoder tolerates. */
    base64_encode_raw(again, n, raw);
    if (!op_sec_ct_equal(again, src, len))
        goto out;
    memcpy(dst, raw, n);
    rc = OP_OK;
out:
    explicit_bzero(raw, sizeof raw);
    explicit_bzero(again, sizeof again);
    return rc;
}
