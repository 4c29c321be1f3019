/*
 * Private to sec/: the Nettle wrapper (sec_nettle.c, the only file that
 * includes Nettle's headers, so the library can be swapped) and the
 * key-file helpers that signing and sealing share (sec_sign.c).
 */
#ifndef OUTPOST_SEC_INT_H
#define OUTPOST_SEC_INT_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "outpost/sec.h"
#include "outpost/util.h"

#define SEC_SHA512_LEN     64
#define SEC_AEAD_NONCE_LEN 12
/* Exact length of the padded base64 text of n bytes. */
#define SEC_B64_LEN(n) ((((n) + 2) / 3) * 4)

/* ---- Nettle wrapper (sec_nettle.c) ----------------------------------- */

/* A streaming SHA-512. The state is opaque here so that Nettle's types stay
 * in sec_nettle.c; a static assertion there checks that it fits. */
struct sec__sha512 {
    alignas(max_align_t) unsigned char opaque[256];
};
void sec__sha512_init(struct sec__sha512 *h);
void sec__sha512_update(struct sec__sha512 *h, const void *p, size_t n);
/* Writes the digest and wipes the state. */
void sec__sha512_digest(struct sec__sha512 *h, uint8_t out[SEC_SHA512_LEN]);

/* Ed25519 (RFC 8032, pure): the 32-byte private key is the seed. */
void sec__ed25519_public_key(uint8_t pub[OP_ED25519_KEY_LEN],
                             const uint8_t seed[OP_ED25519_KEY_LEN]);
void sec__ed25519_sign(const uint8_t pub[OP_ED25519_KEY_LEN],
                       const uint8_t seed[OP_ED25519_KEY_LEN], const void *msg, size_t n,
                       uint8_t sig[OP_ED25519_SIG_LEN]);
bool sec__ed25519_verify(const uint8_t pub[OP_ED25519_KEY_LEN], const void *msg, size_t n,
                         const uint8_t sig[OP_ED25519_SIG_LEN]);

/* ChaCha20-Poly1305 (RFC 8439), in place. The associated data is the
 * concatenation of the nad pieces in ad. decrypt checks the tag in constant
 * time and returns OP_ECORRUPT (data wiped) when it does not match. */
void sec__aead_encrypt(const uint8_t key[OP_SEAL_KEY_LEN], const uint8_t nonce[SEC_AEAD_NONCE_LEN],
                       const struct op_str *ad, size_t nad, uint8_t *data, size_t n,
                       uint8_t tag[OP_SEAL_TAG_LEN]);
int sec__aead_decrypt(const uint8_t key[OP_SEAL_KEY_LEN], const uint8_t nonce[SEC_AEAD_NONCE_LEN],
                      const struct op_str *ad, size_t nad, uint8_t *data, size_t n,
                      const uint8_t tag[OP_SEAL_TAG_LEN]);

/* Padded standard base64: encode writes exactly SEC_B64_LEN(n) characters
 * (no NUL). decode accepts only the canonical text of exactly n bytes (no
 * whitespace, zero pad bits), so one value has one spelling and a changed
 * character always changes the value: OP_EINVAL otherwise. */
void sec__b64_encode(char *dst, const uint8_t *src, size_t n);
int sec__b64_decode(uint8_t *dst, size_t n, const char *src, size_t len);

/* ---- hex and key files (sec_sign.c) ----------------------------------- */

/* Lower-case hex: encode writes 2n characters (no NUL); decode takes
 * exactly 2n lower-case digits (one spelling per value), else OP_EINVAL. */
void sec__hex_encode(char *dst, const uint8_t *src, size_t n);
int sec__hex_decode(uint8_t *dst, size_t n, const char *src, size_t len);

/* One kind of key file: its first line and how a key's kid follows from
 * its 32 bytes. Every key file has the one layout (docs/internals/sec.md):
 *   "<magic>\nkid <16 hex>\nkey <base64 of 32 bytes>\n" */
struct sec__keyfile_kind {
    const char *magic;
    void (*kid_of)(const uint8_t key[32], uint8_t kid[OP_KID_LEN]);
};

/* Reads a key file of that kind from path (at most 4 KiB) or, when path is
 * NULL, from text[0..len) (no NUL needed), and checks that its kid is the
 * key's. OP_EINVAL if malformed or too large, OP_ECORRUPT if the kid is
 * not the key's, OP_EIO with errno if path cannot be read, OP_ENOMEM. key
 * and kid are wiped on failure. */
int sec__keyfile_read(const struct sec__keyfile_kind *kind, const char *path, const char *text,
                      size_t len, uint8_t key[32], uint8_t kid[OP_KID_LEN]);
/* Creates path with mode (never replacing an existing file: OP_EIO with
 * errno EEXIST) and writes the key file; a partly written file is removed.
 * OP_EIO with errno. */
int sec__keyfile_write(const struct sec__keyfile_kind *kind, const char *path,
                       const uint8_t key[32], const uint8_t kid[OP_KID_LEN], mode_t mode);

#endif
